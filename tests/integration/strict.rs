//! Strict inputs and outputs over real HTTP, on both databases: bounded
//! notes and reasons, KPI values checked against their KPI, extensions
//! within the plan, Vietnamese numbers in forms, JSON bodies that must be
//! objects, UTF-8 only, empty parameters refused; security headers on every
//! page, Vietnamese 404 and 405, and notices carried by the session.

use crate::helpers::*;
use crate::on_both_stores;
use crate::web::{encode, App};
use serde_json::{json, Value};

const PLAN: &str = "duc-pho-de-an-13";
/// Implementers UBND and others; KPIs: a percentage and a count of models.
const TASK: &str = "II.2.1.1";

fn code(r: &Resp) -> Value {
    r.json()["error"]["code"].clone()
}

async fn first_milestone(app: &App, token: &str) -> String {
    let t = app.get(&format!("/api/tasks/{TASK}"), token).await.json();
    t["milestones"][0]["id"].as_str().unwrap().to_string()
}

async fn refused_inputs_write_nothing(kind: &str) {
    let app = App::shipped(kind, "2023-06-01").await;
    let member = app.token("UBND", "Trần Thị B", "member").await;
    let lead = app.token("BTV", "Lê Thị Bình", "supervisor").await;
    let auditor = app.token("UBKT", "Phạm Kiểm", "auditor").await;
    let m = first_milestone(&app, &member).await;
    let report = format!("/api/tasks/{TASK}/milestones/{m}/report");
    let before = app.events().await;

    let long_note = "ồ".repeat(4001);
    let r = app.post(&report, &member, &json!({ "note": long_note })).await;
    assert_eq!((r.status, code(&r)), (422, json!("too_long")), "{}", r.body);
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("ghi chú quá dài"));
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("4000"));
    let ok_note = "ồ".repeat(4000);
    for (value, what) in [
        (json!(-5), "negative"),
        (json!(150.5), "over 100"),
        (json!(1e308), "huge"),
    ] {
        let r = app
            .post(
                &report,
                &member,
                &json!({ "kpis": { "dan-van-trong-chuong-trinh": value } }),
            )
            .await;
        assert_eq!(
            (r.status, code(&r)),
            (422, json!("kpi_out_of_range")),
            "{what}: {}",
            r.body
        );
    }
    let r = app
        .post(&report, &member, &json!({ "kpis": { "mo-hinh-dan-van-kheo": 2.5 } }))
        .await;
    assert_eq!((r.status, code(&r)), (422, json!("kpi_out_of_range")), "{}", r.body);
    // The body must be a JSON object, in UTF-8, with numbers a double holds.
    let auth = format!("Bearer {member}");
    let headers = [("Authorization", auth.as_str()), ("Content-Type", "application/json")];
    let r = http(
        app.port,
        "POST",
        &report,
        &headers,
        br#"{"kpis": {"mo-hinh-dan-van-kheo": 1e400}}"#,
    )
    .await;
    assert_eq!(r.status, 400, "a number a double cannot hold: {}", r.body);
    for body in [
        &b"[\"x\"]"[..],
        b"\"note\"",
        b"42",
        b"null",
        b"{\"note\": \"\xff\xfe\"}",
    ] {
        let r = http(app.port, "POST", &report, &headers, body).await;
        assert_eq!(r.status, 400, "{}: {}", String::from_utf8_lossy(body), r.body);
        assert!(r.json()["error"]["message"].is_string());
    }
    let r = http(app.port, "POST", &report, &headers, b"[\"x\"]").await;
    assert_eq!(code(&r), json!("json_not_object"));

    // Reasons are bounded; an extension stays within the plan period.
    let extend = format!("/api/tasks/{TASK}/milestones/{m}/extend");
    let r = app
        .post(
            &extend,
            &lead,
            &json!({ "agency": "UBND", "until": "2024-12-31", "reason": "x".repeat(1001) }),
        )
        .await;
    assert_eq!((r.status, code(&r)), (422, json!("too_long")), "{}", r.body);
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("lý do"));
    let r = app
        .post(
            &extend,
            &lead,
            &json!({ "agency": "UBND", "until": "9999-12-31", "reason": "chậm" }),
        )
        .await;
    assert_eq!(
        (r.status, code(&r)),
        (422, json!("extension_beyond_plan")),
        "{}",
        r.body
    );
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("2026-12-31"));

    // Given means given, in the declared format.
    for (body, status, code_) in [
        (
            json!({ "agency": "", "until": "2024-12-31", "reason": "x" }),
            400,
            "bad_request",
        ),
        (
            json!({ "agency": "UBND", "until": "31/12/2024", "reason": "x" }),
            400,
            "bad_request",
        ),
        (
            json!({ "agency": "UBND", "until": "", "reason": "x" }),
            400,
            "bad_request",
        ),
        (json!({ "agency": "UBND", "reason": "x" }), 422, "until_required"),
    ] {
        let r = app.post(&extend, &lead, &body).await;
        assert_eq!((r.status, code(&r)), (status, json!(code_)), "{body}: {}", r.body);
    }
    let r = app
        .get(
            &format!("/api/plans/{PLAN}/as-of?at=2024-03-31&since=2024-03-31"),
            &auditor,
        )
        .await;
    assert_eq!((r.status, code(&r)), (422, json!("since_not_before_at")));
    let r = app
        .get(&format!("/api/plans/{PLAN}/as-of?at=31/03/2024"), &auditor)
        .await;
    assert_eq!(r.status, 400, "dates as the description declares them: {}", r.body);

    // Empty and unknown statuses, and parameters outside their declared form.
    let long_plan = format!("plan={}", "a".repeat(65));
    for q in [
        "status=",
        "status=%20",
        "status=done",
        "plan=",
        "agency=",
        "overdue=yes",
        "page=0",
        "per_page=100000",
        "sort=colour",
        "year=24",
        "due_before=31/12/2024",
        long_plan.as_str(),
    ] {
        let r = app.get(&format!("/api/tasks?{q}"), &member).await;
        assert_eq!(r.status, 400, "{q}: {}", r.body);
    }
    assert_eq!(app.events().await, before, "nothing written by a refused input");

    // What is within the bounds is taken.
    let r = app
        .post(
            &report,
            &member,
            &json!({ "note": ok_note, "kpis": { "dan-van-trong-chuong-trinh": 100, "mo-hinh-dan-van-kheo": 3 } }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = app
        .post(
            &extend,
            &lead,
            &json!({ "agency": "UBND", "until": "2026-12-31", "reason": "chậm" }),
        )
        .await;
    assert_eq!(r.status, 200, "the period's last day is allowed: {}", r.body);
}
on_both_stores!(refused_inputs_write_nothing, refused_inputs_write_nothing);

async fn forms_read_vietnamese_numbers(kind: &str) {
    let app = App::shipped(kind, "2023-06-01").await;
    let member = app.user("UBND", "Trần Thị B", "member").await;
    let token = app.engine.create_api_token(&member, "test", operator()).await.unwrap();
    let (cookie, csrf) = app.session(&member).await;
    let m = first_milestone(&app, &token).await;
    let action = format!("/tasks/{PLAN}/{TASK}/milestones/{m}/report");
    let page = format!("/tasks/{PLAN}/{TASK}");
    let shown = app.page(&page, &cookie).await;
    assert!(
        shown.body.contains("1.000 là một nghìn"),
        "the form says how numbers are read"
    );
    assert!(shown.body.contains(r#"maxlength="4000""#));
    let before = app.events().await;

    for (value, why) in [
        ("1,000", "hai cách"),
        ("12.5", "không phải số"),
        ("1e308", "không phải số"),
    ] {
        let r = app
            .form(
                &action,
                &cookie,
                &[("csrf", &csrf), ("kpi.mo-hinh-dan-van-kheo", value)],
            )
            .await;
        assert_eq!(r.status, 400, "{value}: {}", r.body);
        assert!(r.body.contains(why), "{value}: {}", r.body);
    }
    let r = app
        .form(
            &action,
            &cookie,
            &[("csrf", &csrf), ("kpi.dan-van-trong-chuong-trinh", "150,5")],
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    let r = app
        .form(&action, &cookie, &[("csrf", &csrf), ("note", &"a".repeat(4001))])
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.contains("ghi chú quá dài"), "{}", r.body);
    // Invalid UTF-8 in a form is refused, not stored as U+FFFD.
    let body = format!("csrf={csrf}&note=%FF%FEabc");
    let r = http(
        app.port,
        "POST",
        &action,
        &[
            ("Cookie", cookie.as_str()),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        body.as_bytes(),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("UTF-8"), "{}", r.body);
    assert!(
        r.header("content-type").is_some_and(|t| t.starts_with("text/html")),
        "a page, not JSON, for a page's form"
    );
    assert_eq!(app.events().await, before, "nothing written");

    let r = app
        .form(
            &action,
            &cookie,
            &[
                ("csrf", &csrf),
                ("kpi.mo-hinh-dan-van-kheo", "1.000"),
                ("kpi.dan-van-trong-chuong-trinh", "12,5"),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let t = app.get(&format!("/api/tasks/{TASK}"), &token).await.json();
    let mine = t["milestones"][0]["obligations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["agency"] == "UBND")
        .cloned()
        .unwrap();
    let h = app.get(&format!("/api/tasks/{TASK}/history"), &token).await.body;
    // The history writes them the Vietnamese way too.
    assert!(h.contains("1.000") && h.contains("12,5"), "{mine}\n{h}");
}
on_both_stores!(forms_read_vietnamese_numbers, forms_read_vietnamese_numbers);

async fn notices_come_from_the_session(kind: &str) {
    let app = App::shipped(kind, "2023-06-01").await;
    let member = app.user("UBND", "Trần Thị B", "member").await;
    let token = app.engine.create_api_token(&member, "test", operator()).await.unwrap();
    let (cookie, csrf) = app.session(&member).await;
    let (other_cookie, _) = app.session(&member).await;
    let m = first_milestone(&app, &token).await;
    let page = format!("/tasks/{PLAN}/{TASK}");

    // A crafted URL shows nothing of itself.
    let crafted = format!("{page}?done=approve&m={}", encode("<script>alert(1)</script>"));
    let r = app.page(&crafted, &cookie).await;
    assert_eq!(r.status, 200);
    assert!(
        !r.body.contains("alert(1)") && !r.body.contains("Đã ghi nhận"),
        "{}",
        r.body
    );

    let r = app
        .form(
            &format!("{page}/milestones/{m}/report"),
            &cookie,
            &[("csrf", &csrf), ("note", "Đã triển khai")],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let to = r.header("location").unwrap().to_string();
    let query = to
        .split_once('?')
        .map_or("", |(_, q)| q.split('#').next().unwrap_or(""));
    assert!(
        query.split('&').all(|pair| pair.starts_with("m=")),
        "the redirect carries no message, only the milestone to open: {to}"
    );
    // Another session of the same account does not see it; this one sees it once.
    assert!(!app.page(&page, &other_cookie).await.body.contains("Đã ghi nhận"));
    let shown = app.page(&to, &cookie).await;
    // Inside the milestone acted on (where the page lands), by its title.
    let start = shown.body.find(&format!("id=\"m-{m}\"")).expect("the milestone");
    let section = &shown.body[start..start + shown.body[start..].find("</details>").unwrap()];
    assert!(section.contains("Đã ghi nhận: báo cáo tiến độ mốc «"), "{}", shown.body);
    assert!(!section.contains(&format!("mốc {m}")), "{section}");
    assert!(!app.page(&to, &cookie).await.body.contains("Đã ghi nhận"), "shown once");
}
on_both_stores!(notices_come_from_the_session, notices_come_from_the_session);

fn assert_secured(path: &str, r: &Resp) {
    let csp = r
        .header("content-security-policy")
        .unwrap_or_else(|| panic!("{path}: no CSP"));
    for part in ["default-src 'none'", "script-src 'none'", "frame-ancestors 'none'"] {
        assert!(csp.contains(part), "{path}: {csp}");
    }
    assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
    assert_eq!(r.header("x-frame-options"), Some("DENY"), "{path}");
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"), "{path}");
    assert_eq!(r.header("referrer-policy"), Some("same-origin"), "{path}");
    if path != "/static/style.css" {
        assert_eq!(r.header("cache-control"), Some("no-store"), "{path}");
    }
    if r.header("content-type").is_some_and(|t| t.starts_with("text/html")) {
        assert!(
            !r.body.contains("<script") && !r.body.contains(" style="),
            "{path}: inline script or style"
        );
    }
}

async fn every_page_has_security_headers(kind: &str) {
    let app = App::shipped(kind, "2023-06-01").await;
    let admin = app.user("UBKT", "Phạm Thanh Tra", "admin,auditor").await;
    let token = app.engine.create_api_token(&admin, "test", operator()).await.unwrap();
    let (cookie, _) = app.session(&admin).await;
    let pages = [
        "/".to_string(),
        "/inbox".into(),
        "/queue".into(),
        format!("/tasks/{PLAN}/{TASK}"),
        format!("/tasks/{PLAN}/II.1.1?as_of=2023-01-01"),
        format!("/plans/{PLAN}"),
        "/admin".into(),
        format!("/admin/users/{}", admin.id),
        "/static/style.css".into(),
        "/khong-co".into(),
    ];
    for path in &pages {
        let r = app.page(path, &cookie).await;
        assert!(r.status < 500, "{path}: {}", r.status);
        assert_secured(path, &r);
    }
    for path in ["/signin", "/health", "/ready"] {
        assert_secured(path, &http(app.port, "GET", path, &[], b"").await);
    }
    for path in [
        "/api/me",
        "/api/plans",
        "/api/tasks",
        "/api/tasks/II.1.1",
        "/api/tasks/II.1.1/history",
        "/api/queue",
        "/api/openapi.json",
        "/api/khong-co",
    ] {
        assert_secured(path, &app.get(path, &token).await);
    }
    let r = app
        .post(&format!("/api/tasks/{TASK}/milestones/x/report"), &token, &json!({}))
        .await;
    assert_secured("POST /api/tasks/…", &r);
}
on_both_stores!(every_page_has_security_headers, every_page_has_security_headers);

async fn unknown_pages_and_methods_in_vietnamese(kind: &str) {
    let app = App::shipped(kind, "2023-06-01").await;
    let user = app.user("UBND", "Trần Thị B", "member").await;
    let (cookie, _) = app.session(&user).await;

    let r = app.page("/khong-co-trang-nay", &cookie).await;
    assert_eq!(r.status, 404);
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    assert!(r.body.contains("Không có trang này"), "{}", r.body);
    let r = http(app.port, "GET", "/khong-co", &[], b"").await;
    assert_eq!(r.status, 404);
    assert!(r.body.contains("Không có trang này"), "anonymous too: {}", r.body);

    let r = http(app.port, "DELETE", "/inbox", &[("Cookie", cookie.as_str())], b"").await;
    assert_eq!(r.status, 405);
    assert!(r.body.contains("phương thức không dùng được"), "{}", r.body);
    assert!(r.header("allow").is_some_and(|a| a.contains("GET")));

    // A plan upload over the limit is refused before anything reads it.
    let big = format!("plan={}", "a".repeat(1024 * 1024 + 1));
    let r = http(
        app.port,
        "POST",
        "/admin/plans",
        &[
            ("Cookie", cookie.as_str()),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        big.as_bytes(),
    )
    .await;
    assert_eq!(r.status, 413);
    assert!(r.body.contains("quá lớn"), "{}", r.body);

    let r = http(app.port, "GET", "/api/khong-co", &[], b"").await;
    assert_eq!((r.status, code(&r)), (404, json!("not_found")));
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_lowercase()
        .contains("không có"));
    let r = http(app.port, "DELETE", "/api/tasks", &[], b"").await;
    assert_eq!((r.status, code(&r)), (405, json!("method_not_allowed")));
}
on_both_stores!(
    unknown_pages_and_methods_in_vietnamese,
    unknown_pages_and_methods_in_vietnamese
);

/// The CLI refuses the same inputs, as bad input (exit 2), writing nothing.
async fn cli_refuses_out_of_bounds(kind: &str) {
    let db = TestDb::of(kind).await;
    let out = kehoach(&db, &["plan", "load", shipped_plan_path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let member = cli_user(&db, "UBND", "Trần Thị B", "member");
    let lead = cli_user(&db, "BTV", "Lê Thị Bình", "supervisor");
    let before = event_count(&db).await;
    let long = "a".repeat(4001);
    let report = |extra: &[&str]| {
        let mut args = vec![
            "task",
            "report",
            "II.2.1.1",
            "--milestone",
            "report-2023",
            "--user",
            &member,
        ];
        args.extend_from_slice(extra);
        kehoach(&db, &args)
    };
    for (out, says) in [
        (report(&["--note", &long]), "ghi chú quá dài"),
        (report(&["--kpi", "dan-van-trong-chuong-trinh=150.5"]), "từ 0 đến 100"),
        (report(&["--kpi", "mo-hinh-dan-van-kheo=2.5"]), "số nguyên"),
        (
            kehoach(
                &db,
                &[
                    "task",
                    "extend",
                    "II.2.1.1",
                    "--milestone",
                    "report-2023",
                    "--agency",
                    "UBND",
                    "--user",
                    &lead,
                    "--until",
                    "9999-12-31",
                    "--reason",
                    "chậm",
                ],
            ),
            "vượt quá thời kỳ",
        ),
    ] {
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(stderr(&out).contains(says), "{says}: {}", stderr(&out));
        assert_eq!(stderr(&out).trim().lines().count(), 1, "one line: {}", stderr(&out));
    }
    assert_eq!(event_count(&db).await, before, "nothing written");
}
on_both_stores!(cli_refuses_out_of_bounds, cli_refuses_out_of_bounds);

/// The description states the limits the domain enforces.
async fn description_states_the_limits(kind: &str) {
    use kehoach::domain::task::inputs::{EVIDENCE_MAX_ITEMS, NOTE_MAX_CHARS, REASON_MAX_CHARS};
    let app = App::shipped(kind, "2023-06-01").await;
    let d = http(app.port, "GET", "/api/openapi.json", &[], b"").await.json();
    let input = &d["components"]["schemas"]["ActionInput"];
    assert_eq!(input["additionalProperties"], json!(false));
    assert_eq!(input["properties"]["note"]["maxLength"], json!(NOTE_MAX_CHARS));
    assert_eq!(input["properties"]["reason"]["maxLength"], json!(REASON_MAX_CHARS));
    assert_eq!(input["properties"]["evidence"]["maxItems"], json!(EVIDENCE_MAX_ITEMS));
    assert_eq!(input["properties"]["until"]["format"], json!("date"));
    assert_eq!(
        d["components"]["schemas"]["TaskId"]["pattern"],
        json!("^[IVXL]+(\\.[0-9]+)*$")
    );
    for (_, item) in d["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            for status in ["400", "401", "404"] {
                assert!(op["responses"][status].is_object(), "{method} {status}");
            }
        }
    }
}
on_both_stores!(description_states_the_limits, description_states_the_limits);

#[test]
fn oversized_plan_files_are_refused_before_parsing() {
    let db = TestDb::sqlite();
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("lon-qua.toml");
    // Valid TOML (a comment), only too large.
    let mut text = std::fs::read_to_string(shipped_plan_path()).unwrap();
    while text.len() as u64 <= kehoach::plan::PLAN_MAX_BYTES {
        text.push_str("# chú thích cho đủ lớn ..........................................\n");
    }
    std::fs::write(&big, &text).unwrap();
    for command in ["check", "load"] {
        let out = kehoach(&db, &["plan", command, big.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{command}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains("lon-qua.toml") && err.contains("quá lớn"),
            "{command}: {err}"
        );
    }
    let out = kehoach(&db, &["task", "list"]);
    assert!(!stdout(&out).contains("II.1.1"), "nothing loaded");
}
