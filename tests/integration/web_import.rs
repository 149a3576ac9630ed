//! A plan imported from its document on the web, on both databases:
//! `POST /api/plans/import` answers the draft and its doubts and keeps the
//! document; bad documents get their one line and a 4xx, and write
//! nothing; only admins may import; the review form loads the plan as the
//! admin, recording the document, which then downloads from the plan (API
//! and page) and which `audit verify` checks.

use crate::evidence::{multipart, sha256_hex};
use crate::helpers::*;
use crate::on_both_stores;
use crate::web::App;
use kehoach::store::Store;
use serde_json::Value;

const DOCX: &str = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";

fn fixture() -> Vec<u8> {
    std::fs::read(repo_root().join("tests/fixtures/import/ubnd-ba-to-table/plan.docx")).unwrap()
}

async fn count(store: &Store, sql: &str) -> i64 {
    kehoach::with_pool!(store, pool => sqlx::query_scalar::<_, i64>(sql).fetch_one(pool).await.unwrap())
}

/// Events and stored files, to show that nothing was written.
async fn written(store: &Store) -> (i64, i64) {
    (
        count(store, "SELECT count(*) FROM events").await,
        count(store, "SELECT count(*) FROM evidence_files").await,
    )
}

async fn import(app: &App, auth: &[(&str, &str)], name: &str, bytes: &[u8]) -> Resp {
    let (content_type, body) = multipart(&[], &[("file", name, bytes)]);
    let mut headers = auth.to_vec();
    headers.push(("Content-Type", content_type.as_str()));
    http(app.port, "POST", "/api/plans/import", &headers, &body).await
}

/// An OLE2 compound file whose directory names `stream` (UTF-16), as Word
/// writes a password-protected document or an old .doc.
fn ole2_with(stream: &str) -> Vec<u8> {
    let mut bytes = vec![0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];
    bytes.resize(512, 0);
    bytes.extend(stream.encode_utf16().flat_map(u16::to_le_bytes));
    bytes.resize(4096, 0);
    bytes
}

async fn api_import_answers_the_draft_and_keeps_the_document(kind: &str) {
    let app = App::shipped(kind, "2025-03-01T09:00:00+07:00").await;
    let admin = app.token("UBKT", "Phạm Thanh Tra", "admin,auditor").await;
    let bearer = format!("Bearer {admin}");
    let bytes = fixture();
    let (events_before, files_before) = written(&app.engine.store).await;

    let r = import(
        &app,
        &[("Authorization", bearer.as_str())],
        "Kế hoạch Ba Tơ.docx",
        &bytes,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v["document"]["file"], "Kế hoạch Ba Tơ.docx");
    assert_eq!(v["document"]["sha256"], sha256_hex(&bytes));
    assert_eq!(v["document"]["size"], bytes.len());
    assert_eq!(v["document"]["media_type"], DOCX);
    assert_eq!(v["layout"], "table");
    assert_eq!(v["counts"]["tasks"], 34, "{}", v["counts"]);
    assert_eq!(v["tasks"].as_array().unwrap().len(), 34);
    assert!(!v["agencies"].as_array().unwrap().is_empty());
    assert!(v["doubts"].is_array());
    let draft = v["draft"].as_str().unwrap();
    assert!(draft.contains("[[tasks]]") && draft.contains("emails = []"), "{draft}");
    // Each task carries its source and agencies by code; each doubt its words.
    let task = &v["tasks"][0];
    assert!(task["text"].as_str().is_some_and(|t| !t.is_empty()) && task["line"].as_u64().is_some());
    for d in v["doubts"].as_array().unwrap() {
        assert!(d["message"].as_str().is_some_and(|m| !m.is_empty()), "{d}");
    }

    // Kept by its hash, loaded nothing.
    let (events, files) = written(&app.engine.store).await;
    assert_eq!((events, files), (events_before, files_before + 1));
    let stored = app
        .engine
        .store
        .get_file(&kehoach::domain::task::FileHash::parse(&sha256_hex(&bytes)).unwrap())
        .await
        .unwrap()
        .expect("the document is kept");
    assert_eq!((stored.bytes, stored.media_type.as_str()), (bytes.clone(), DOCX));
    // The same document again: the same draft, stored once.
    let again = import(
        &app,
        &[("Authorization", bearer.as_str())],
        "Kế hoạch Ba Tơ.docx",
        &bytes,
    )
    .await;
    assert_eq!(again.json()["draft"], v["draft"]);
    assert_eq!(written(&app.engine.store).await, (events_before, files_before + 1));

    // A text file is kept as UTF-8 text.
    let text = std::fs::read(repo_root().join("tests/fixtures/import/huyen-uy-son-tinh/plan.txt")).unwrap();
    let r = import(&app, &[("Authorization", bearer.as_str())], "son-tinh.txt", &text).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["document"]["media_type"], "text/plain; charset=utf-8");
}
on_both_stores!(
    api_import_answers_the_draft,
    api_import_answers_the_draft_and_keeps_the_document
);

async fn bad_documents_get_one_line_and_write_nothing(kind: &str) {
    let app = App::shipped(kind, "2025-03-01T09:00:00+07:00").await;
    let admin = app.token("UBKT", "Phạm Thanh Tra", "admin").await;
    let bearer = format!("Bearer {admin}");
    let before = written(&app.engine.store).await;
    let max = kehoach::plan::import::error::DOCUMENT_MAX_BYTES;
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("cu.doc", ole2_with("WordDocument"), 415, "Word 97"),
        ("macro.docm", fixture(), 415, "macro"),
        ("mat-khau.docx", ole2_with("EncryptedPackage"), 415, "mật khẩu"),
        (
            "anh.docx",
            b"\x89PNG\r\n\x1a\n0000".to_vec(),
            415,
            "không phải văn bản Word",
        ),
        ("latin1.txt", b"K\xca HO\xa0CH\n".to_vec(), 415, "UTF-8"),
        ("hong.docx", b"PK\x03\x04 not really a zip".to_vec(), 422, "hỏng"),
        (
            "trong.txt",
            "KẾ HOẠCH\nKhông có gì để làm.\n".as_bytes().to_vec(),
            422,
            "không tìm thấy nhiệm vụ",
        ),
        ("lon.txt", vec![b'a'; max + 1], 413, "quá lớn"),
        ("rat-lon.txt", vec![b'a'; max + 2 * 1024 * 1024], 413, "quá lớn"),
    ];
    for (name, bytes, status, words) in cases {
        let r = import(&app, &[("Authorization", bearer.as_str())], name, &bytes).await;
        assert_eq!(r.status, status, "{name}: {}", r.body);
        let message = r.json()["error"]["message"].as_str().unwrap().to_string();
        assert_eq!(message.lines().count(), 1, "{name}: {message}");
        assert!(message.contains(words), "{name}: {message}");
        assert_eq!(written(&app.engine.store).await, before, "{name}: nothing written");
    }
    // No file part, a second file, a body that is not multipart.
    let (content_type, body) = multipart(&[("directory", "duc-pho-de-an-13")], &[]);
    let r = http(
        app.port,
        "POST",
        "/api/plans/import",
        &[
            ("Authorization", bearer.as_str()),
            ("Content-Type", content_type.as_str()),
        ],
        &body,
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    let r = http(
        app.port,
        "POST",
        "/api/plans/import",
        &[("Authorization", bearer.as_str()), ("Content-Type", "text/plain")],
        b"KE HOACH",
    )
    .await;
    assert_eq!(r.status, 415, "{}", r.body);
    assert_eq!(written(&app.engine.store).await, before);
}
on_both_stores!(bad_documents_are_refused, bad_documents_get_one_line_and_write_nothing);

async fn only_admins_import(kind: &str) {
    let app = App::shipped(kind, "2025-03-01T09:00:00+07:00").await;
    let bytes = fixture();
    let mut tokens = Vec::new();
    for roles in ["member", "supervisor", "auditor"] {
        tokens.push((roles, app.token("UBND", "Trần Văn Cán", roles).await));
    }
    let admin = app.user("UBKT", "Phạm Thanh Tra", "admin").await;
    let (cookie, csrf) = app.session(&admin).await;
    let before = written(&app.engine.store).await;
    for (roles, token) in tokens {
        let r = import(
            &app,
            &[("Authorization", &format!("Bearer {token}"))],
            "plan.docx",
            &bytes,
        )
        .await;
        assert_eq!(r.status, 403, "{roles}: {}", r.body);
        assert_eq!(r.json()["error"]["code"], "forbidden_role");
    }
    let r = import(&app, &[], "plan.docx", &bytes).await;
    assert_eq!(r.status, 401, "{}", r.body);
    // A session must send its CSRF token.
    let r = import(&app, &[("Cookie", cookie.as_str())], "plan.docx", &bytes).await;
    assert_eq!((r.status, r.json()["error"]["code"].as_str()), (403, Some("csrf")));
    assert_eq!(written(&app.engine.store).await, before);
    let r = import(
        &app,
        &[("Cookie", cookie.as_str()), ("X-CSRF-Token", csrf.as_str())],
        "plan.docx",
        &bytes,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
}
on_both_stores!(only_admins_import_documents, only_admins_import);

/// The review form as the page would post it, from the API's report: every
/// field as read, every agency given `emails`.
fn review_form(report: &Value, csrf: &str, emails: impl Fn(usize, &str) -> String) -> Vec<(String, String)> {
    let agencies = report["agencies"].as_array().unwrap();
    let index = |code: &Value| agencies.iter().position(|a| &a["code"] == code).unwrap().to_string();
    let mut form: Vec<(String, String)> = vec![
        ("csrf".into(), csrf.into()),
        ("document".into(), report["document"]["sha256"].as_str().unwrap().into()),
        ("file_name".into(), report["document"]["file"].as_str().unwrap().into()),
        ("directory".into(), String::new()),
        ("draft".into(), sha256_hex(report["draft"].as_str().unwrap().as_bytes())),
        ("plan-id".into(), report["plan"]["id"].as_str().unwrap().into()),
        ("plan-title".into(), report["plan"]["title"].as_str().unwrap().into()),
        ("plan-issuer".into(), index(&report["plan"]["issuer"])),
    ];
    for (i, a) in agencies.iter().enumerate() {
        let code = a["code"].as_str().unwrap();
        form.push((format!("a{i}-name"), a["name"].as_str().unwrap().into()));
        form.push((format!("a{i}-code"), code.into()));
        let aliases: Vec<&str> = a["aliases"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        form.push((format!("a{i}-aliases"), aliases.join("; ")));
        form.push((format!("a{i}-emails"), emails(i, code)));
    }
    for (t, task) in report["tasks"].as_array().unwrap().iter().enumerate() {
        form.push((format!("t{t}-title"), task["title"].as_str().unwrap().into()));
        form.push((format!("t{t}-lead"), index(&task["lead"])));
        for role in ["implementers", "advisory", "coordinators"] {
            for code in task[role].as_array().unwrap() {
                form.push((format!("t{t}-{role}"), index(code)));
            }
        }
        form.push((format!("t{t}-deadline"), task["deadline"].as_str().unwrap_or("").into()));
        form.push((format!("t{t}-obligation"), task["obligation"].as_str().unwrap().into()));
    }
    form
}

fn set(form: &mut [(String, String)], name: &str, value: &str) {
    form.iter_mut().find(|(k, _)| k == name).unwrap().1 = value.to_string();
}

async fn post_review(app: &App, cookie: &str, form: &[(String, String)]) -> Resp {
    let text: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let (content_type, body) = multipart(&text, &[]);
    http(
        app.port,
        "POST",
        "/admin/plans/import/load",
        &[("Cookie", cookie), ("Content-Type", content_type.as_str())],
        &body,
    )
    .await
}

async fn review_loads_the_plan_with_its_document(kind: &str) {
    let app = App::shipped(kind, "2025-03-01T09:00:00+07:00").await;
    let admin = app.user("UBKT", "Phạm Thanh Tra", "admin").await;
    let (cookie, csrf) = app.session(&admin).await;
    let bytes = fixture();

    // The upload on the admin page shows the review screen.
    let (content_type, body) = multipart(&[("csrf", &csrf), ("directory", "")], &[("file", "Ba Tơ.docx", &bytes)]);
    let page = http(
        app.port,
        "POST",
        "/admin/plans/import",
        &[("Cookie", cookie.as_str()), ("Content-Type", content_type.as_str())],
        &body,
    )
    .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Xem lại kế hoạch nhập từ văn bản"), "{}", page.body);
    assert!(page.body.contains("Cần xem lại") || page.body.contains("Nạp kế hoạch"));
    // A bad document on the admin page: its line, nothing kept.
    let before = written(&app.engine.store).await;
    let (content_type, body) = multipart(&[("csrf", &csrf)], &[("file", "cu.doc", &ole2_with("WordDocument"))]);
    let refused = http(
        app.port,
        "POST",
        "/admin/plans/import",
        &[("Cookie", cookie.as_str()), ("Content-Type", content_type.as_str())],
        &body,
    )
    .await;
    assert_eq!(refused.status, 415, "{}", refused.body);
    assert!(refused.body.contains("lưu lại dạng .docx"), "{}", refused.body);
    assert!(
        refused.body.contains("id=\"import-plan\""),
        "the admin page, to try again"
    );
    // Over the limit: said on the admin page too, before the body is read.
    let big = vec![b'a'; kehoach::plan::import::error::DOCUMENT_MAX_BYTES + 2 * 1024 * 1024];
    let (content_type, body) = multipart(&[("csrf", &csrf)], &[("file", "lon.txt", &big)]);
    let refused = http(
        app.port,
        "POST",
        "/admin/plans/import",
        &[("Cookie", cookie.as_str()), ("Content-Type", content_type.as_str())],
        &body,
    )
    .await;
    assert_eq!(refused.status, 413, "{}", refused.body);
    assert!(refused.body.contains("tệp quá lớn"), "{}", refused.body);
    assert_eq!(written(&app.engine.store).await, before);

    let r = import(
        &app,
        &[("Cookie", cookie.as_str()), ("X-CSRF-Token", csrf.as_str())],
        "Ba Tơ.docx",
        &bytes,
    )
    .await;
    let report = r.json();
    let plan = report["plan"]["id"].as_str().unwrap().to_string();

    // Without addresses: the review again, with the message and what was typed.
    let mut form = review_form(&report, &csrf, |_, _| String::new());
    set(&mut form, "a1-name", "Tên đã sửa của cơ quan");
    let events = written(&app.engine.store).await.0;
    let r = post_review(&app, &cookie, &form).await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.contains("cần ít nhất một địa chỉ e-mail"), "{}", r.body);
    assert!(r.body.contains("value=\"Tên đã sửa của cơ quan\""), "kept as typed");
    assert_eq!(written(&app.engine.store).await.0, events, "nothing loaded");
    // A deadline wording nobody can read: said next to the task.
    let mut form = review_form(&report, &csrf, |_, code| {
        format!("{}@bato.example", code.to_lowercase())
    });
    set(&mut form, "t0-deadline", "khi nào xong thì thôi");
    let r = post_review(&app, &cookie, &form).await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.contains("không hiểu thời hạn"), "{}", r.body);
    assert_eq!(written(&app.engine.store).await.0, events, "nothing loaded");

    // Corrected and addressed: loaded as the admin, with the document.
    let mut form = review_form(&report, &csrf, |_, code| {
        format!("{}@bato.example", code.to_lowercase())
    });
    set(&mut form, "a1-name", "Tên đã sửa của cơ quan");
    let r = post_review(&app, &cookie, &form).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.header("location"), Some(format!("/plans/{plan}").as_str()));
    let page = app.page(&format!("/plans/{plan}"), &cookie).await;
    assert!(page.body.contains("Đã nạp kế hoạch"), "{}", page.body);
    assert!(
        page.body.contains("Văn bản gốc") && page.body.contains(&sha256_hex(&bytes)),
        "{}",
        page.body
    );

    let registered = all_events(&app.engine)
        .await
        .into_iter()
        .find(|e| e.aggregate_type == "Plan" && e.aggregate_id == plan)
        .expect("the plan's load event");
    let payload: Value = serde_json::from_str(&registered.payload).unwrap();
    let source = &payload["PlanRegistered"]["source"];
    assert_eq!(source["document"]["sha256"], sha256_hex(&bytes), "{payload}");
    assert_eq!(source["document"]["file"], "Ba Tơ.docx");
    assert_eq!(source["document"]["media_type"], DOCX);
    assert_eq!(source["file"], format!("{plan}.toml"));
    let by = &payload["PlanRegistered"]["stamp"]["by"];
    assert_eq!(by["email"], admin.email.to_string(), "{by}");
    let agencies = payload["PlanRegistered"]["agencies"].as_array().unwrap();
    let renamed = agencies
        .iter()
        .find(|a| a["name"] == "Tên đã sửa của cơ quan")
        .expect("renamed");
    assert!(
        renamed["aliases"]
            .as_array()
            .unwrap()
            .contains(&report["agencies"][1]["name"]),
        "the document's spelling stays an alias: {renamed}"
    );

    // The original downloads, exactly, for anyone signed in (an auditor, a member).
    for roles in ["auditor", "member"] {
        let token = app.token("BDV", "Người Xem", roles).await;
        let r = app.get(&format!("/api/plans/{plan}/document"), &token).await;
        assert_eq!(r.status, 200, "{roles}: {}", r.body);
        assert_eq!(sha256_hex(&r.bytes), sha256_hex(&bytes));
        assert_eq!(r.header("content-type"), Some(DOCX));
        assert!(r.header("content-disposition").unwrap().starts_with("attachment;"));
    }
    let r = app.page(&format!("/plans/{plan}/document"), &cookie).await;
    assert_eq!((r.status, sha256_hex(&r.bytes)), (200, sha256_hex(&bytes)));
    let r = http(app.port, "GET", &format!("/api/plans/{plan}/document"), &[], b"").await;
    assert_eq!(r.status, 401);
    let token = app.token("BDV", "Người Xem", "member").await;
    let r = app.get("/api/plans/duc-pho-de-an-13/document", &token).await;
    assert_eq!(r.status, 404, "a plan written by hand has no document: {}", r.body);

    // Loading the same again writes nothing.
    let events = written(&app.engine.store).await.0;
    let r = post_review(&app, &cookie, &form).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(written(&app.engine.store).await.0, events);

    // audit verify checks the document: fine, then missing.
    let verify = kehoach(app.db(), &["audit", "verify"]);
    assert!(verify.status.success(), "{}{}", stdout(&verify), stderr(&verify));
    assert!(stdout(&verify).contains("1 văn bản gốc"), "{}", stdout(&verify));
    let store = &app.engine.store;
    kehoach::with_pool!(store, pool => sqlx::query("DELETE FROM evidence_files WHERE sha256 = $1")
        .bind(sha256_hex(&bytes))
        .execute(pool)
        .await
        .map(|_| ())
        .unwrap());
    let verify = kehoach(app.db(), &["audit", "verify"]);
    assert_eq!(verify.status.code(), Some(5), "{}", stdout(&verify));
    assert!(
        stderr(&verify).contains("văn bản gốc \"Ba Tơ.docx\"") && stderr(&verify).contains(&plan),
        "{}",
        stderr(&verify)
    );
}
on_both_stores!(review_loads_the_plan, review_loads_the_plan_with_its_document);
