//! Evidence files on both databases: attached from the CLI, the API
//! (multipart) and the task form; type found from the content; the size
//! limit; the hash in the event; served only to those who may see the
//! task; `audit verify` and the export (with verify.py) check the bytes.

use crate::helpers::*;
use crate::on_both_stores;
use crate::web::App;
use kehoach::store::Store;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const TASK: &str = "III.1.2";
const MILESTONE: &str = "register-2024";
const PAGE: &str = "/tasks/duc-pho-de-an-13/III.1.2";

/// A small, valid one-page PDF (with a correct cross-reference table).
pub fn tiny_pdf() -> Vec<u8> {
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 100] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
        "<< /Length 44 >>\nstream\nBT /F1 18 Tf 20 40 Td (Bao cao 2024) Tj ET\nendstream",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ];
    let mut pdf = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, body) in objects.iter().enumerate() {
        offsets.push(pdf.len());
        pdf.extend_from_slice(format!("{} 0 obj\n{body}\nendobj\n", i + 1).as_bytes());
    }
    let xref = pdf.len();
    pdf.extend_from_slice(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes());
    for o in offsets {
        pdf.extend_from_slice(format!("{o:010} 00000 n \n").as_bytes());
    }
    pdf.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    pdf
}

/// A valid 1×1 PNG.
pub fn tiny_png() -> Vec<u8> {
    hex::decode(
        "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000a49444154789c63000100000500010d0a2db40000000049454e44ae426082",
    )
    .unwrap()
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
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

/// Changes one byte of a stored file, as someone with database access could.
pub async fn change_one_byte(store: &Store, sha256: &str) {
    let file = store
        .get_file(&kehoach::domain::task::FileHash::parse(sha256).unwrap())
        .await
        .unwrap()
        .expect("stored file");
    let mut bytes = file.bytes;
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    kehoach::with_pool!(store, pool => sqlx::query("UPDATE evidence_files SET bytes = $1 WHERE sha256 = $2")
        .bind(bytes)
        .bind(sha256)
        .execute(pool)
        .await
        .map(|_| ())
        .unwrap());
}

/// The attachments of the task's events of this type, from the event rows.
async fn attachments_in_events(store: &Store, event_type: &str) -> Vec<Value> {
    assert_eq!(store.settle(std::time::Duration::from_secs(30)).await.unwrap(), None);
    let mut found = Vec::new();
    let mut after = kehoach::store::feed::Cursor::default();
    loop {
        let page = store.read_feed(after, 1000).await.unwrap();
        let Some(last) = page.last().map(|e| e.cursor) else {
            break;
        };
        for e in page {
            if e.aggregate_id.ends_with(TASK) && e.event_type == event_type {
                let payload: Value = serde_json::from_str(&e.payload).unwrap();
                found.extend(
                    payload[event_type]["attachments"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default(),
                );
            }
        }
        after = last;
    }
    found
}

fn export_and_check(db: &TestDb, dir: &std::path::Path, name: &str) -> (bool, String) {
    let file = dir.join(name);
    let out = kehoach(
        db,
        &[
            "--format",
            "jsonl",
            "audit",
            "export",
            "--output",
            file.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "export: {}", stderr(&out));
    let verified = std::process::Command::new(python())
        .arg(repo_root().join("docs/audit/verify.py"))
        .arg(&file)
        .output()
        .expect("run verify.py");
    (verified.status.success(), stdout(&verified))
}

on_both_stores!(cli_attaches_checks_and_verifies, cli_attaches_checks_and_verifies_on);
async fn cli_attaches_checks_and_verifies_on(kind: &str) {
    let db = TestDb::of(kind).await;
    let load = kehoach(
        &db,
        &["--now", "2024-01-02", "plan", "load", "workflows/duc-pho-de-an-13.toml"],
    );
    assert!(load.status.success(), "{}", stderr(&load));
    let ubnd = cli_user(&db, "UBND", "Trần Thị B", "member");
    let files = tempfile::tempdir().unwrap();
    let put = |name: &str, bytes: &[u8]| {
        let path = files.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path.to_str().unwrap().to_string()
    };
    let (pdf, png) = (tiny_pdf(), tiny_png());
    let report_pdf = put("Báo cáo.pdf", &pdf);
    // A photo whose name says PDF: stored as what it is.
    let photo = put("anh-hien-truong.pdf", &png);
    let text = put("ghi-chu.pdf", b"just some text, not a PDF");
    let exe = put("setup.pdf", b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff");
    let big = put(
        "lon.pdf",
        &[b"%PDF-1.4\n".as_slice(), &vec![b'0'; 1024 * 1024]].concat(),
    );
    let store = Store::open(&db.db_url()).await.unwrap();
    // `task report` (or `submit`) by the UBND member with these files.
    let action = |verb: &str, attach: &[&str]| {
        let mut args = vec!["--now", "2024-03-10", "task", verb, TASK, "--milestone", MILESTONE];
        args.extend(["--user", &ubnd, "--note", "Đã đăng ký mô hình"]);
        for a in attach {
            args.extend(["--attach", a]);
        }
        args.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    let report = |attach: &[&str]| action("report", attach);
    let run = |args: Vec<String>, env: &[(&str, &str)]| {
        bin()
            .args(["--db", &db.url()])
            .args(&args)
            .envs(env.iter().copied())
            .output()
            .unwrap()
    };

    // Refused: content that is none of the accepted types, whatever the
    // name; a file that is not there; a file over the limit. Nothing written.
    let before = written(&store).await;
    for (path, why) in [
        (&text, "ghi-chu.pdf"),
        (&exe, "setup.pdf"),
        (&"/không/có/tệp.pdf".to_string(), "/không/có/tệp.pdf"),
    ] {
        let out = run(report(&[&report_pdf, path]), &[]);
        assert_eq!(out.status.code(), Some(2), "{path}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains(why) && err.trim().lines().count() == 1, "{err}");
    }
    let out = run(report(&[&big]), &[("KEHOACH_MAX_FILE_MB", "1")]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("lon.pdf") && stderr(&out).contains("giới hạn 1 MB"),
        "{}",
        stderr(&out)
    );
    assert_eq!(written(&store).await, before, "nothing written by refused attachments");

    // Accepted: the PDF and the photo named .pdf.
    let out = run(report(&[&report_pdf, &photo]), &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let submit = run(action("submit", &[&report_pdf]), &[]);
    assert!(submit.status.success(), "{}", stderr(&submit));

    // The events carry each file's SHA-256, name, size and the type found from the content.
    let reported = attachments_in_events(&store, "ProgressReported").await;
    assert_eq!(reported.len(), 2, "{reported:?}");
    assert_eq!(reported[0]["sha256"], sha256_hex(&pdf));
    assert_eq!(reported[0]["name"], "Báo cáo.pdf");
    assert_eq!(reported[0]["media_type"], "application/pdf");
    assert_eq!(reported[0]["size"], pdf.len());
    assert_eq!(reported[1]["sha256"], sha256_hex(&png));
    assert_eq!(reported[1]["media_type"], "image/png");
    let submitted = attachments_in_events(&store, "MilestoneSubmitted").await;
    assert_eq!(submitted[0]["sha256"], sha256_hex(&pdf));
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM evidence_files WHERE media_type <> 'application/toml'"
        )
        .await,
        2,
        "stored once each"
    );

    // The history names the files.
    let history = kehoach(&db, &["--format", "json", "audit", "history", TASK]);
    assert!(
        stdout(&history).contains("tệp: Báo cáo.pdf, anh-hien-truong.pdf"),
        "{}",
        stdout(&history)
    );

    // verify and the export check the bytes; one changed byte fails both.
    let verify = kehoach(&db, &["audit", "verify"]);
    assert!(verify.status.success(), "{}", stderr(&verify));
    assert!(stdout(&verify).contains("2 tệp minh chứng khớp"), "{}", stdout(&verify));
    let work = tempfile::tempdir().unwrap();
    let (ok, said) = export_and_check(&db, work.path(), "clean.jsonl");
    assert!(ok && said.contains("2 evidence files"), "{said}");

    change_one_byte(&store, &sha256_hex(&png)).await;
    let verify = kehoach(&db, &["audit", "verify"]);
    assert_eq!(verify.status.code(), Some(5), "{}", stdout(&verify));
    let err = stderr(&verify);
    assert!(
        err.contains("III.1.2")
            && err.contains("anh-hien-truong.pdf")
            && err.contains("#")
            && err.trim().lines().count() == 1,
        "{err}"
    );
    let (ok, said) = export_and_check(&db, work.path(), "tampered.jsonl");
    assert!(
        !ok && said.starts_with("FAIL") && said.contains(&sha256_hex(&png)),
        "{said}"
    );
    store.close().await;
}

/// A multipart/form-data body: text fields, then files (field, name, bytes).
pub fn multipart(text: &[(&str, &str)], files: &[(&str, &str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = format!("----kehoach{}", rand::random::<u64>());
    let mut body = Vec::new();
    for (name, value) in text {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").as_bytes(),
        );
    }
    for (field, name, bytes) in files {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

pub async fn post_multipart(app: &App, path: &str, auth: (&str, &str), body: (String, Vec<u8>)) -> Resp {
    http(app.port, "POST", path, &[auth, ("Content-Type", &body.0)], &body.1).await
}

on_both_stores!(api_and_form_uploads_are_served_to_who_may_see, api_and_form_uploads_on);
async fn api_and_form_uploads_on(kind: &str) {
    let one_mib = kehoach::config::SecuritySettings {
        max_file_bytes: 1024 * 1024,
        ..Default::default()
    };
    let app = App::start_with(kind, "2024-03-10T09:00:00+07:00", &shipped_plan(), |s| {
        s.with_security(one_mib)
    })
    .await;
    let store = &app.engine.store;
    let member = app.token("UBND", "Trần Thị B", "member").await;
    let bearer = format!("Bearer {member}");
    let act = |action: &str| format!("/api/tasks/{TASK}/milestones/{MILESTONE}/{action}");
    let (pdf, png) = (tiny_pdf(), tiny_png());

    // Refused before anything is written: text named .pdf (415), a file
    // over the limit (413), a part that is not UTF-8 (400).
    let before = written(store).await;
    let payload = json!({ "note": "Báo cáo" }).to_string();
    let r = post_multipart(
        &app,
        &act("report"),
        ("Authorization", &bearer),
        multipart(
            &[("payload", &payload)],
            &[("files", "a.pdf", &pdf), ("files", "b.pdf", b"plain text")],
        ),
    )
    .await;
    assert_eq!(r.status, 415, "{}", r.body);
    assert!(
        r.json()["error"]["message"].as_str().unwrap().contains("b.pdf"),
        "{}",
        r.body
    );
    let big = [b"%PDF-1.4\n".as_slice(), &vec![b'0'; 1024 * 1024]].concat();
    let r = post_multipart(
        &app,
        &act("report"),
        ("Authorization", &bearer),
        multipart(&[("payload", &payload)], &[("files", "lon.pdf", &big)]),
    )
    .await;
    assert_eq!(r.status, 413, "{}", r.body);
    assert!(r.body.contains("lon.pdf"), "{}", r.body);
    let r = http(
        app.port,
        "POST",
        &act("report"),
        &[
            ("Authorization", &bearer),
            ("Content-Type", "multipart/form-data; boundary=x"),
        ],
        b"--x\r\nContent-Disposition: form-data; name=\"payload\"\r\n\r\n\xff\xfe\r\n--x--\r\n",
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(written(store).await, before, "nothing written by refused uploads");

    // The API takes the JSON as `payload` and the files as `files`.
    let payload = json!({ "note": "Đã đăng ký", "kpis": { "mo-hinh-dan-van-kheo": 2 } }).to_string();
    let r = post_multipart(
        &app,
        &act("report"),
        ("Authorization", &bearer),
        multipart(
            &[("payload", &payload)],
            &[("files", "Báo cáo.pdf", &pdf), ("files", "ảnh.pdf", &png)],
        ),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let reported = attachments_in_events(store, "ProgressReported").await;
    assert_eq!(reported[0]["sha256"], sha256_hex(&pdf));
    assert_eq!(reported[1]["sha256"], sha256_hex(&png));
    assert_eq!(
        reported[1]["media_type"], "image/png",
        "the type comes from the content"
    );

    // The task form takes multipart too (the submission, with the photo).
    let ubnd = app.user("UBND", "Lê Văn C", "member").await;
    let (cookie, csrf) = app.session(&ubnd).await;
    let r = post_multipart(
        &app,
        &format!("{PAGE}/milestones/{MILESTONE}/submit"),
        ("Cookie", &cookie),
        multipart(
            &[("csrf", &csrf), ("note", "Nộp kèm ảnh"), ("confirm", "1")],
            &[("files", "C:\\ảnh\\hiện trường.png", &png), ("files", "", b"")],
        ),
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let submitted = attachments_in_events(store, "MilestoneSubmitted").await;
    assert_eq!(submitted.len(), 1, "the empty file input is skipped: {submitted:?}");
    assert_eq!(submitted[0]["name"], "hiện trường.png");

    // Downloads: the API, as an attachment with nosniff and the stored type.
    let r = app
        .get(&format!("/api/tasks/{TASK}/files/{}", sha256_hex(&pdf)), &member)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.bytes, pdf);
    assert_eq!(r.header("content-type"), Some("application/pdf"));
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    let disposition = r.header("content-disposition").unwrap();
    assert!(
        disposition.starts_with("attachment;") && disposition.contains("filename*=UTF-8''B%C3%A1o%20c%C3%A1o.pdf"),
        "{disposition}"
    );

    // The approver (advisory BDV) sees the files on the task page, downloads
    // them and views the PDF in the browser, sandboxed.
    let bdv = app.user("BDV", "Võ Văn E", "supervisor").await;
    let (bdv_cookie, _) = app.session(&bdv).await;
    let page = app.page(PAGE, &bdv_cookie).await;
    let link = format!("{PAGE}/files/{}", sha256_hex(&png));
    assert!(
        page.body.contains(&link) && page.body.contains("hiện trường.png"),
        "{}",
        page.body
    );
    let r = app.page(&link, &bdv_cookie).await;
    assert_eq!((r.status, r.bytes.clone()), (200, png.clone()));
    assert!(r.header("content-disposition").unwrap().starts_with("attachment;"));
    let r = app
        .page(&format!("{PAGE}/files/{}?view=1", sha256_hex(&pdf)), &bdv_cookie)
        .await;
    assert_eq!(r.status, 200);
    assert!(r.header("content-disposition").unwrap().starts_with("inline;"));
    assert!(r.header("content-security-policy").unwrap().contains("sandbox"));
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));

    // Someone of an agency the task does not involve: refused, bytes not sent.
    let outsider = app.token("LLVT", "Đinh Văn F", "supervisor").await;
    let r = app
        .get(&format!("/api/tasks/{TASK}/files/{}", sha256_hex(&pdf)), &outsider)
        .await;
    assert!([403, 404].contains(&r.status), "{}", r.status);
    assert!(!r.bytes.windows(pdf.len()).any(|w| w == pdf.as_slice()));
    let llvt = app.user("LLVT", "Đinh Văn G", "supervisor").await;
    let (llvt_cookie, _) = app.session(&llvt).await;
    let r = app.page(&link, &llvt_cookie).await;
    assert!([403, 404].contains(&r.status), "{}", r.status);
    // A file of another task, or no such file: 404 even where the task is visible.
    let r = app
        .get(&format!("/api/tasks/II.1.2/files/{}", sha256_hex(&pdf)), &member)
        .await;
    assert_eq!(r.status, 404, "{}", r.body);
    let r = app
        .get(&format!("/api/tasks/{TASK}/files/{}", "0".repeat(64)), &member)
        .await;
    assert_eq!(r.status, 404, "{}", r.body);

    // Approved; then one changed byte is caught by verify.
    let bdv_token = app.engine.create_api_token(&bdv, "test", operator()).await.unwrap();
    let r = app
        .post(
            &act("approve"),
            &bdv_token,
            &json!({ "agency": "UBND", "note": "Đồng ý" }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let verify = kehoach(app.db(), &["audit", "verify"]);
    assert!(verify.status.success(), "{}", stderr(&verify));
    change_one_byte(store, &sha256_hex(&pdf)).await;
    let verify = kehoach(app.db(), &["audit", "verify"]);
    assert_eq!(verify.status.code(), Some(5), "{}", stdout(&verify));
    assert!(stderr(&verify).contains("Báo cáo.pdf"), "{}", stderr(&verify));
}
