//! A plan that changes an agency's e-mail addresses cannot do it silently:
//! the old addresses are told, once, through a real SMTP server (aiosmtpd),
//! on both stores.

use crate::helpers::*;
use crate::on_both_stores;
use serde_json::Value;

const FROM: &str = "Thị ủy Đức Phổ <kehoach@ducpho.example>";
const OLD: &str = "ubnd@ducpho.example";
const NEW: &str = "van-thu.ubnd@elsewhere.example";

fn with_mail(db: &TestDb, smtp: &str, args: &[&str]) -> std::process::Output {
    bin()
        .args(["--db", &db.url()])
        .args(args)
        .env("KEHOACH_SMTP_URL", smtp)
        .env("KEHOACH_MAIL_FROM", FROM)
        .output()
        .expect("run kehoach")
}

/// A copy of the shipped plan with UBND's address replaced.
fn redirected_plan(dir: &std::path::Path) -> std::path::PathBuf {
    let text = std::fs::read_to_string(shipped_plan_path()).expect("shipped plan");
    let line = format!("emails = [\"{OLD}\"]");
    assert_eq!(
        text.matches(&line).count(),
        1,
        "UBND's address appears once in the plan"
    );
    let path = dir.join("duc-pho-de-an-13.toml");
    std::fs::write(&path, text.replace(&line, &format!("emails = [\"{NEW}\"]"))).expect("write plan copy");
    path
}

fn notices(messages: &[Value]) -> Vec<&Value> {
    messages
        .iter()
        .filter(|m| {
            m["subject"]
                .as_str()
                .unwrap_or_default()
                .contains("Thay đổi địa chỉ e-mail")
        })
        .collect()
}

fn to(m: &Value, address: &str) -> bool {
    m["rcpt_to"].as_array().unwrap().iter().any(|a| a == address)
}

async fn redirecting_an_agency_tells_its_old_address(kind: &str) {
    let db = TestDb::of(kind).await;
    let smtp = SmtpServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let shipped = shipped_plan_path();
    let out = kehoach(&db, &["--now", "2024-02-01", "plan", "load", shipped.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let copy = redirected_plan(dir.path());
    let out = kehoach(
        &db,
        &[
            "--now",
            "2024-02-05T10:15:00+07:00",
            "plan",
            "load",
            copy.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));

    let now = "2024-02-06T08:00:00+07:00";
    let out = with_mail(&db, &smtp.url(), &["--now", now, "remind", "--once"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let messages = smtp.messages();
    let sent = notices(&messages);
    assert_eq!(sent.len(), 1, "one notice: {:?}", sent);
    let notice = sent[0];
    assert_eq!(notice["rcpt_to"], serde_json::json!([OLD]), "only the old address");
    assert!(!to(notice, NEW), "the new address is not told");
    // Python keeps the CR LF line ends of the decoded part.
    let text = notice["text"].as_str().unwrap().replace("\r\n", "\n");
    for needle in [
        "Ủy ban nhân dân thị xã (UBND)",
        &format!("Địa chỉ bị gỡ khỏi danh mục:\n  - {OLD}"),
        &format!("Địa chỉ được thêm vào danh mục:\n  - {NEW}"),
        "Người thay đổi: Người vận hành ",
        "Thời điểm thay đổi: 10:15 ngày 05/02/2024",
        "liên hệ ngay Ban Dân vận Thị ủy",
    ] {
        assert!(text.contains(needle), "{needle:?} not in\n{text}");
    }
    assert_eq!(notice["from"], FROM);
    assert!(notice["html"].as_str().unwrap().contains(NEW));
    // Whatever else this pass sent to UBND went to its new address only.
    assert!(
        messages.iter().filter(|m| to(m, OLD)).count() == 1,
        "the old address got the notice and nothing else"
    );

    // A second pass sends nothing again.
    let again = with_mail(&db, &smtp.url(), &["--now", now, "remind", "--once"]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(smtp.messages().len(), messages.len(), "nothing sent twice");

    // The outbox and the plan view show it sent, under its Message-ID.
    let listed = kehoach(&db, &["--format", "json", "outbox", "list", "--status", "sent"]);
    assert!(listed.status.success(), "{}", stderr(&listed));
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    let rows: Vec<&Value> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "directory")
        .collect();
    assert_eq!(rows.len(), 1, "{listed}");
    assert_eq!(rows[0]["aggregate_id"], "duc-pho-de-an-13");
    assert_eq!(rows[0]["reminder_key"], "directory-1-UBND");
    assert_eq!(rows[0]["agency"], "UBND");
    let id = notice["message_id"].as_str().unwrap();
    assert_eq!(format!("<{}>", rows[0]["message_id"].as_str().unwrap()), id);

    let engine = db.engine(clock(now)).await;
    engine.catch_up().await.unwrap();
    let plan = engine
        .store
        .plan_view("duc-pho-de-an-13")
        .await
        .unwrap()
        .expect("plan view");
    let n = plan.plan.notice("directory-1-UBND").expect("notice on the plan");
    assert!(n.is_sent(), "{n:?}");
    assert_eq!(n.to, [OLD]);
    let events = all_events(&engine).await;
    let recorded: Vec<_> = events
        .iter()
        .filter(|e| e.event_type == "DirectoryNoticeSent")
        .collect();
    assert_eq!(recorded.len(), 1);
    assert!(
        recorded[0].payload.contains("\"dispatcher\""),
        "{}",
        recorded[0].payload
    );
    engine.store.close().await;

    let verified = kehoach(&db, &["audit", "verify"]);
    assert!(verified.status.success(), "{}{}", stdout(&verified), stderr(&verified));

    // Loading the same file again changes nothing and queues nothing.
    let out = kehoach(&db, &["--now", "2024-02-07", "plan", "load", copy.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = with_mail(
        &db,
        &smtp.url(),
        &["--now", "2024-02-07T08:00:00+07:00", "remind", "--once"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(notices(&smtp.messages()).len(), 1);
}
on_both_stores!(redirected_agency, redirecting_an_agency_tells_its_old_address);

/// A server that refuses every recipient: the notice stays queued with the
/// dispatcher's backoff, and is sent on a later pass once mail works.
async fn a_refused_notice_is_retried_with_backoff(kind: &str) {
    let db = TestDb::of(kind).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let shipped = shipped_plan_path();
    assert!(
        kehoach(&db, &["--now", "2024-02-01", "plan", "load", shipped.to_str().unwrap()])
            .status
            .success()
    );
    let copy = redirected_plan(dir.path());
    assert!(
        kehoach(&db, &["--now", "2024-02-05", "plan", "load", copy.to_str().unwrap()])
            .status
            .success()
    );

    // Nothing listens there: a transient failure (a 5xx would be final at once).
    let down = format!("smtp://127.0.0.1:{}", free_port());
    let out = with_mail(&db, &down, &["--now", "2024-02-06T08:00:00+07:00", "remind", "--once"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let queued = kehoach(&db, &["--format", "json", "outbox", "list", "--status", "queued"]);
    let queued: Value = serde_json::from_slice(&queued.stdout).unwrap();
    let row = queued
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == "directory")
        .unwrap_or_else(|| panic!("notice still queued: {queued}"));
    assert_eq!(row["attempts"], 1);
    assert_eq!(
        row["next_attempt_at"], "2024-02-06T01:01:00Z",
        "first backoff is one minute"
    );
    assert!(!row["last_error"].as_str().unwrap().contains('\n'));

    let up = SmtpServer::start();
    let out = with_mail(
        &db,
        &up.url(),
        &["--now", "2024-02-06T08:02:00+07:00", "remind", "--once"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let sent = notices(&up.messages()).len();
    assert_eq!(sent, 1, "sent once mail works");
    let verified = kehoach(&db, &["audit", "verify"]);
    assert!(verified.status.success(), "{}{}", stdout(&verified), stderr(&verified));
}
on_both_stores!(refused_notice, a_refused_notice_is_retried_with_backoff);
