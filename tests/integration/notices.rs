//! Personal notices (issue 21, item 5), delivered to a real SMTP server
//! (aiosmtpd) on both stores: supervisors hear of a submission waiting for
//! them, the officer who filed hears of the return and the approval at
//! their own address, each kind can be turned off, a server that cannot
//! be reached delays a notice without losing it, and an older store never
//! mails people about its past.

use crate::helpers::*;
use crate::on_both_stores;
use kehoach::domain::notices::NoticeKind;
use serde_json::Value;

const FROM: &str = "Thị ủy Đức Phổ <kehoach@ducpho.example>";
const BASE: &str = "https://kehoach.ducpho.example";
const PLAN: &str = "workflows/duc-pho-de-an-13.toml";
const MILESTONE: [&str; 3] = ["III.2.1.2", "--milestone", "report-2024"];

fn run(db: &TestDb, smtp: &str, args: &[&str]) -> String {
    let out = bin()
        .args(["--db", &db.url()])
        .args(args)
        .env("KEHOACH_SMTP_URL", smtp)
        .env("KEHOACH_MAIL_FROM", FROM)
        .env("KEHOACH_BASE_URL", BASE)
        .output()
        .expect("run kehoach");
    assert!(out.status.success(), "{args:?}: {}{}", stdout(&out), stderr(&out));
    stdout(&out)
}

fn remind(db: &TestDb, smtp: &str, at: &str) -> String {
    run(db, smtp, &["--now", at, "remind", "--once"])
}

/// The personal notices received so far (their Message-IDs start `personal.`).
fn personal(smtp: &SmtpServer) -> Vec<Value> {
    smtp.messages()
        .into_iter()
        .filter(|m| m["message_id"].as_str().unwrap_or_default().starts_with("<personal."))
        .collect()
}

fn to(m: &Value) -> Vec<String> {
    m["rcpt_to"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect()
}

fn task_action(db: &TestDb, at: &str, action: &str, extra: &[&str]) {
    let args = [&["--now", at, "task", action][..], &MILESTONE, extra].concat();
    run(db, "smtp://127.0.0.1:9", &args);
}

async fn people_are_told_at_their_own_address(kind: &str) {
    let db = TestDb::of(kind).await;
    let smtp = SmtpServer::start();
    run(&db, &smtp.url(), &["--now", "2024-02-01", "plan", "load", PLAN]);
    let mttq = cli_user(&db, "MTTQ", "Hồ Thị Mặt", "member");
    let btv = cli_user(&db, "BTV", "Lê Văn Thường", "supervisor");
    let quiet = cli_user(&db, "BTV", "Trần Văn Lặng", "supervisor");
    let member = cli_user(&db, "BTV", "Ngô Thị Thành Viên", "member");
    // The morning's digests first, so that what follows is about the actions.
    remind(&db, &smtp.url(), "2024-03-20T08:00:00+07:00");
    assert!(personal(&smtp).is_empty(), "nobody did anything yet");

    // One of the two supervisors turns submissions off on /account.
    let store = kehoach::store::Store::open(&db.db_url()).await.unwrap();
    let quiet_id = id_of(&store, &quiet).await;
    kehoach::notification::personal::set_settings(&store, &quiet_id, &[(NoticeKind::Submission, false)])
        .await
        .unwrap();

    // MTTQ submits: the supervisor of the lead agency hears of it at his
    // own address, not the one who turned it off, nor a plain member.
    task_action(&db, "2024-03-20T09:00:00+07:00", "submit", &["--user", &mttq]);
    remind(&db, &smtp.url(), "2024-03-20T09:05:00+07:00");
    let got = personal(&smtp);
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(to(&got[0]), vec![btv.clone()]);
    let subject = got[0]["subject"].as_str().unwrap();
    assert!(subject.contains("đã nộp, chờ anh/chị duyệt"), "{subject}");
    let text = got[0]["text"].as_str().unwrap();
    assert!(text.contains("Hồ Thị Mặt (Ủy ban Mặt trận Tổ quốc"), "{text}");
    assert!(text.contains("phần của Ủy ban Mặt trận Tổ quốc"), "{text}");
    assert!(text.contains("lúc 09:00 ngày 20/03/2024"), "{text}");
    assert!(
        text.contains(&format!(
            "{BASE}/tasks/duc-pho-de-an-13/III.2.1.2?m=report-2024&a=MTTQ&do=approve#m-report-2024-MTTQ"
        )),
        "{text}"
    );
    assert!(!to(&got[0]).contains(&member) && !to(&got[0]).contains(&quiet));

    // BTV returns it: the officer who filed is told at her own address,
    // with the reason and a link to report again.
    let reason = "Thiếu số liệu quý I";
    task_action(
        &db,
        "2024-03-20T09:30:00+07:00",
        "return",
        &["--user", &btv, "--agency", "MTTQ", "--reason", reason],
    );
    remind(&db, &smtp.url(), "2024-03-20T09:35:00+07:00");
    let got = personal(&smtp);
    let returned: Vec<&Value> = got.iter().filter(|m| to(m) == [mttq.clone()]).collect();
    assert_eq!(returned.len(), 1, "{got:#?}");
    let text = returned[0]["text"].as_str().unwrap().replace("\r\n", "\n");
    assert!(returned[0]["subject"].as_str().unwrap().contains("bị trả lại"));
    assert!(text.contains(&format!("Lý do trả lại:\n> {reason}")), "{text}");
    assert!(text.contains("Kính gửi Hồ Thị Mặt"), "{text}");
    assert!(text.contains("&do=report#m-report-2024-MTTQ"), "{text}");

    // She submits again; BTV approves while the mail server cannot be
    // reached: nothing is lost, the next pass delivers it, once.
    task_action(&db, "2024-03-20T10:00:00+07:00", "submit", &["--user", &mttq]);
    task_action(
        &db,
        "2024-03-20T10:30:00+07:00",
        "approve",
        &["--user", &btv, "--agency", "MTTQ", "--note", "Đồng ý"],
    );
    let before = personal(&smtp).len();
    remind(&db, "smtp://127.0.0.1:9", "2024-03-20T10:35:00+07:00");
    assert_eq!(personal(&smtp).len(), before);
    let (status, error): (String, Option<String>) = sqlx_row(
        &store,
        "SELECT status, last_error FROM personal_notices WHERE kind = 'decision' ORDER BY created_at DESC LIMIT 1",
    )
    .await;
    assert_eq!(status, "queued");
    assert!(error.is_some());
    // Meanwhile BTV turns submissions off: the notice of the second
    // submission, made but not yet sent, is not sent.
    let btv_id = id_of(&store, &btv).await;
    kehoach::notification::personal::set_settings(&store, &btv_id, &[(NoticeKind::Submission, false)])
        .await
        .unwrap();
    remind(&db, &smtp.url(), "2024-03-20T11:00:00+07:00");
    remind(&db, &smtp.url(), "2024-03-20T11:05:00+07:00");
    let got = personal(&smtp);
    let approved: Vec<&Value> = got
        .iter()
        .filter(|m| m["subject"].as_str().unwrap().contains("đã được duyệt"))
        .collect();
    assert_eq!(approved.len(), 1, "{got:#?}");
    assert_eq!(to(approved[0]), vec![mttq.clone()]);
    assert!(approved[0]["text"]
        .as_str()
        .unwrap()
        .replace("\r\n", "\n")
        .contains("Ý kiến:\n> Đồng ý"));
    // BTV heard of the first submission only; the one who turned it off from the start, of none.
    assert_eq!(got.iter().filter(|m| to(m) == [btv.clone()]).count(), 1, "{got:#?}");
    let (status, why): (String, Option<String>) = sqlx_row(
        &store,
        "SELECT status, last_error FROM personal_notices WHERE kind = 'submission' ORDER BY created_at DESC LIMIT 1",
    )
    .await;
    assert_eq!(status, "cancelled", "{why:?}");
    assert!(got.iter().all(|m| !to(m).contains(&quiet) && !to(m).contains(&member)));
    // Every notice names a person, never an agency code alone, and says where to change the settings.
    for m in &got {
        let text = m["text"].as_str().unwrap();
        assert!(text.contains(&format!("{BASE}/account")), "{text}");
        assert!(!text.contains("(MTTQ)") && !text.contains("(BTV)"), "{text}");
    }
    store.close().await;
}
on_both_stores!(people_are_told, people_are_told_at_their_own_address);

async fn id_of(store: &kehoach::store::Store, email: &str) -> String {
    let users = store.all_users().await.unwrap();
    users
        .into_iter()
        .find(|(u, _)| u.email.to_string() == email)
        .unwrap()
        .0
        .id
}

async fn sqlx_row(store: &kehoach::store::Store, sql: &str) -> (String, Option<String>) {
    match store {
        kehoach::store::Store::Sqlite(p) => sqlx::query_as(sql).fetch_one(p).await.unwrap(),
        kehoach::store::Store::Postgres(p) => sqlx::query_as(sql).fetch_one(p).await.unwrap(),
    }
}

/// A store of release 0.2 (decisions, returns and approvals in its past)
/// opens under this release and mails nobody about them.
async fn an_older_store_mails_nobody_about_its_past(kind: &str) {
    let db = TestDb::release(kind, "release-0.2").await;
    let smtp = SmtpServer::start();
    remind(&db, &smtp.url(), "2026-12-07T08:00:00+07:00");
    assert!(personal(&smtp).is_empty(), "{:#?}", personal(&smtp));
}
on_both_stores!(older_store_notices, an_older_store_mails_nobody_about_its_past);
