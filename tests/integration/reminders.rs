//! Reminders delivered to a real SMTP server (aiosmtpd), on both stores.

use crate::helpers::*;
use crate::on_both_stores;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

const FROM: &str = "Thị ủy Đức Phổ <kehoach@ducpho.example>";

fn with_mail(db: &TestDb, smtp: &str, args: &[&str], extra: &[(&str, &str)]) -> std::process::Output {
    let mut c = bin();
    c.args(["--db", &db.url()])
        .args(args)
        .env("KEHOACH_SMTP_URL", smtp)
        .env("KEHOACH_MAIL_FROM", FROM);
    for (k, v) in extra {
        c.env(k, v);
    }
    c.output().expect("run kehoach")
}

fn load(db: &TestDb) {
    let out = kehoach(
        db,
        &["--now", "2024-02-01", "plan", "load", "workflows/duc-pho-de-an-13.toml"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
}

/// The title of III.1.2's 2024 registration, as digests name it.
const REGISTER_2024: &str = "Đăng ký xây dựng, nhân rộng mô hình “Dân vận khéo” năm 2024";

/// Whether a digest lists `milestone` (by its title) of `task`.
fn about(m: &Value, task: &str, milestone: &str) -> bool {
    digest_items(m["text"].as_str().unwrap_or_default())
        .iter()
        .any(|(t, title)| t == task && title.starts_with(milestone))
}

fn to(m: &Value, address: &str) -> bool {
    m["rcpt_to"].as_array().unwrap().iter().any(|a| a == address)
}

async fn a_month_of_reminders_reaches_the_agencies(kind: &str) {
    let db = TestDb::of(kind).await;
    let smtp = SmtpServer::start();
    load(&db);
    let out = with_mail(
        &db,
        &smtp.url(),
        &["--now", "2024-03-01", "simulate", "--until", "2024-04-10"],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("thư đã gửi"), "{}", stdout(&out));
    let messages = smtp.messages();
    assert!(!messages.is_empty());

    // Every implementing agency of III.1.2 is reminded of the 2024 registration before 31/03/2024 …
    for address in [
        "tthdnd@ducpho.example",
        "ubnd@ducpho.example",
        "tmgv@ducpho.example",
        "mttq@ducpho.example",
        "ducb@ducpho.example",
    ] {
        let before: Vec<&Value> = messages
            .iter()
            .filter(|m| {
                to(m, address) && about(m, "III.1.2", REGISTER_2024) && m["window"].as_str().unwrap() <= "2024-03-29"
            })
            .collect();
        assert!(
            !before.is_empty(),
            "{address} got no reminder for III.1.2 register-2024"
        );
        assert!(before
            .iter()
            .any(|m| m["text"].as_str().unwrap().contains("31/03/2024")));
    }
    // … CTXH through its member organisations, and BDV copied as the advisory agency.
    assert!(
        messages
            .iter()
            .any(|m| to(m, "hoi-phu-nu@ducpho.example") && about(m, "III.1.2", REGISTER_2024)),
        "CTXH members"
    );
    assert!(messages.iter().any(|m| to(m, "bdv@ducpho.example")
        && about(m, "III.1.2", REGISTER_2024)
        && m["text"].as_str().unwrap().contains("cơ quan tham mưu")));

    // Nothing was submitted, so after the deadline BTV is told, with UBKT copied.
    let escalation = |address: &str| {
        messages.iter().any(|m| {
            to(m, address)
                && about(m, "III.1.2", REGISTER_2024)
                && m["window"].as_str().unwrap() > "2024-03-31"
                && m["text"].as_str().unwrap().contains("Ủy ban Kiểm tra")
        })
    };
    assert!(escalation("btv@ducpho.example"), "no escalation to BTV");
    assert!(escalation("ubkt@ducpho.example"), "UBKT not copied");

    // At most one e-mail per agency per morning to each of its addresses
    // (one SMTP transaction per address), and every header reads back.
    let mut per_morning: BTreeMap<(String, String, String), usize> = BTreeMap::new();
    let mut ids = BTreeSet::new();
    for m in &messages {
        let rcpt = m["rcpt_to"].to_string();
        *per_morning
            .entry((
                m["to"].as_str().unwrap().to_string(),
                m["window"].as_str().unwrap().to_string(),
                rcpt.clone(),
            ))
            .or_default() += 1;
        assert!(
            ids.insert((m["message_id"].as_str().unwrap().to_string(), rcpt)),
            "duplicate Message-ID {} to one address",
            m["message_id"]
        );
        let subject = m["subject"].as_str().unwrap();
        // The plan's own subject prefix and sender name ([mail]).
        assert!(subject.starts_with("[MÔ PHỎNG] [Thị ủy Đức Phổ] "), "{subject}");
        assert!(
            subject.contains("ngày") && !subject.contains("=?"),
            "subject not decoded: {subject}"
        );
        // 08:00 in Hanoi (01:00 UTC), written in +07:00.
        assert!(m["date"].as_str().unwrap().ends_with("08:00:00 +0700"), "{}", m["date"]);
        assert_eq!(m["from"], "Văn phòng Thị ủy Đức Phổ <kehoach@ducpho.example>");
        assert_eq!(m["mail_from"], "kehoach@ducpho.example");
        assert!(m["html"].as_str().unwrap().contains("<table"), "HTML alternative");
    }
    assert!(per_morning.values().all(|n| *n == 1), "{per_morning:?}");
    // Points missed before the first run (14, 7 and 3 days before) collapse,
    // and a milestone both reminded and escalated (UBKT implements IV.6 and
    // inspects) is one line: a digest lists each (task, milestone,
    // obligation) once.
    for m in &messages {
        let text = m["text"].as_str().unwrap();
        let items = digest_items(text);
        let seen: BTreeSet<&(String, String)> = items.iter().collect();
        assert_eq!(seen.len(), items.len(), "an item twice in {}:\n{text}", m["subject"]);
        assert!(!items.is_empty(), "items found in {}", m["subject"]);
    }
    let ubnd = messages.iter().filter(|m| to(m, "ubnd@ducpho.example")).count();
    assert!(
        ubnd < 41,
        "UBND has many tasks but gets one digest a morning at most, got {ubnd}"
    );

    // The same simulation again sends nothing new.
    let again = with_mail(
        &db,
        &smtp.url(),
        &["--now", "2024-03-01", "simulate", "--until", "2024-04-10"],
        &[],
    );
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(
        smtp.messages().len(),
        messages.len(),
        "a second run must not send again"
    );
}
on_both_stores!(a_month_of_reminders, a_month_of_reminders_reaches_the_agencies);

async fn a_crash_after_the_server_accepted_resends_with_the_same_message_id(kind: &str) {
    let db = TestDb::of(kind).await;
    let smtp = SmtpServer::start();
    load(&db);
    let now = "2024-03-29T08:00:00+07:00";
    let crashed = with_mail(
        &db,
        &smtp.url(),
        &["--now", now, "remind", "--once"],
        &[("KEHOACH_CRASH_AFTER_SEND", "1")],
    );
    assert_eq!(crashed.status.code(), Some(70), "{}", stderr(&crashed));
    let first = smtp.messages();
    assert_eq!(first.len(), 1, "the process died right after the first accepted digest");

    let restarted = with_mail(&db, &smtp.url(), &["--now", now, "remind", "--once"], &[]);
    assert!(restarted.status.success(), "{}", stderr(&restarted));
    let all = smtp.messages();
    let id = first[0]["message_id"].as_str().unwrap();
    let copies: Vec<&Value> = all.iter().filter(|m| m["message_id"] == id).collect();
    assert_eq!(copies.len(), 2, "re-sent once, with the same Message-ID");
    assert_eq!(copies[0]["text"], copies[1]["text"]);
    let queued = kehoach(&db, &["--format", "json", "outbox", "list", "--status", "queued"]);
    assert_eq!(
        serde_json::from_slice::<Value>(&queued.stdout).unwrap(),
        serde_json::json!([]),
        "nothing left behind"
    );
    let sent = kehoach(&db, &["--format", "json", "outbox", "list", "--status", "sent"]);
    let sent: Value = serde_json::from_slice(&sent.stdout).unwrap();
    let bare = id.trim_start_matches('<').trim_end_matches('>');
    assert!(
        sent.as_array().unwrap().iter().any(|r| r["message_id"] == bare),
        "{sent}"
    );
}
on_both_stores!(
    crash_after_accept,
    a_crash_after_the_server_accepted_resends_with_the_same_message_id
);

async fn a_server_that_is_down_or_refuses_leads_to_retries_then_a_visible_failure(kind: &str) {
    let db = TestDb::of(kind).await;
    load(&db);
    // Nothing listens on this port.
    let down = format!("smtp://127.0.0.1:{}", free_port());
    let attempts = [("KEHOACH_SMTP_MAX_ATTEMPTS", "3")];
    // Backoff is 1 then 4 minutes: three passes, each after the previous wait.
    for now in [
        "2024-03-29T08:00:00+07:00",
        "2024-03-29T08:01:30+07:00",
        "2024-03-29T08:06:00+07:00",
    ] {
        let out = with_mail(&db, &down, &["--now", now, "remind", "--once"], &attempts);
        assert!(
            out.status.success(),
            "a failed delivery is recorded, not fatal: {}",
            stderr(&out)
        );
    }
    let failed = kehoach(&db, &["--format", "json", "outbox", "list", "--status", "failed"]);
    let failed: Value = serde_json::from_slice(&failed.stdout).unwrap();
    let failed = failed.as_array().unwrap();
    assert!(!failed.is_empty(), "after the last attempt the failure is visible");
    assert!(failed
        .iter()
        .all(|r| r["attempts"] == 3 && r["last_error"].as_str().is_some_and(|e| !e.is_empty())));
    let queued = kehoach(&db, &["--format", "json", "outbox", "list", "--status", "queued"]);
    assert_eq!(
        serde_json::from_slice::<Value>(&queued.stdout).unwrap(),
        serde_json::json!([])
    );
    let table = kehoach(&db, &["outbox", "list", "--status", "failed"]);
    assert!(stdout(&table).contains("failed"), "{}", stdout(&table));

    // A server that refuses every recipient: retried too, then failed, with its reply.
    let refusing = SmtpServer::start_refusing();
    let db2 = TestDb::of(kind).await;
    load(&db2);
    let one = [("KEHOACH_SMTP_MAX_ATTEMPTS", "1")];
    let out = with_mail(
        &db2,
        &refusing.url(),
        &["--now", "2024-03-29T08:00:00+07:00", "remind", "--once"],
        &one,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let failed = kehoach(&db2, &["--format", "json", "outbox", "list", "--status", "failed"]);
    let failed: Value = serde_json::from_slice(&failed.stdout).unwrap();
    assert!(!failed.as_array().unwrap().is_empty());
    assert!(
        failed[0]["last_error"].as_str().unwrap().contains("550"),
        "{}",
        failed[0]
    );
}
on_both_stores!(
    smtp_failures,
    a_server_that_is_down_or_refuses_leads_to_retries_then_a_visible_failure
);

/// Two `serve` processes on one PostgreSQL database queue each reminder
/// once and deliver each digest once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_serve_processes_queue_each_reminder_once() {
    let db = TestDb::postgres().await;
    let smtp = SmtpServer::start();
    let mut children: Vec<std::process::Child> = (0..2)
        .map(|_| {
            bin()
                .args([
                    "--db",
                    &db.url(),
                    "--now",
                    "2024-04-08T07:59:00+07:00",
                    "serve",
                    "--poll",
                    "0.2",
                    "--listen",
                    "127.0.0.1:0",
                ])
                .env("KEHOACH_SMTP_URL", smtp.url())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let engine = db.engine(clock("2024-04-08")).await;
    let kehoach::store::Store::Postgres(pool) = &engine.store else {
        unreachable!()
    };
    // Both processes run a first pass at start and another at 08:00; wait for them.
    let mut stable = 0;
    let mut last = -1_i64;
    for _ in 0..600 {
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'ReminderQueued'")
            .fetch_one(pool)
            .await
            .unwrap();
        stable = if n == last && n > 0 { stable + 1 } else { 0 };
        last = n;
        if stable >= 20 {
            break;
        }
    }
    for child in &mut children {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        assert!(child.wait().unwrap().success());
    }
    assert!(last > 20, "both processes ran the scheduler ({last} reminders)");
    let duplicates: Vec<(String, i64)> = sqlx::query_as(
        "SELECT aggregate_id || ' ' || (payload::jsonb -> 'ReminderQueued' ->> 'milestone') || ' ' || (payload::jsonb -> 'ReminderQueued' ->> 'key'), count(*)
           FROM events WHERE event_type = 'ReminderQueued'
          GROUP BY 1 HAVING count(*) > 1",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    assert!(duplicates.is_empty(), "queued twice: {duplicates:?}");
    let messages = smtp.messages();
    assert!(!messages.is_empty());
    let mut ids = BTreeSet::new();
    for m in &messages {
        // One SMTP transaction per address: a Message-ID once per address.
        assert!(
            ids.insert((m["message_id"].as_str().unwrap().to_string(), m["rcpt_to"].to_string())),
            "sent twice: {} to {}",
            m["message_id"],
            m["rcpt_to"]
        );
    }
}

/// A submission tells the approvers; the approval tells the submitting agency.
async fn state_changes_are_notified(kind: &str) {
    let db = TestDb::of(kind).await;
    let smtp = SmtpServer::start();
    load(&db);
    let ubnd = cli_user(&db, "UBND", "Trần Thị B", "member");
    let bdv = cli_user(&db, "BDV", "Võ Văn E", "supervisor");
    // Each morning's reminders go out first, so the notices below come in
    // digests of their own (a digest lists its 20 most urgent items in
    // full, and a backlog of overdue items would come before them).
    let morning = |day: &str| {
        let out = with_mail(&db, &smtp.url(), &["--now", day, "remind", "--once"], &[]);
        assert!(out.status.success(), "{}", stderr(&out));
    };
    morning("2024-03-20T08:00:00+07:00");
    let submit = kehoach(
        &db,
        &[
            "--now",
            "2024-03-20T09:00:00+07:00",
            "task",
            "submit",
            "III.1.2",
            "--milestone",
            "register-2024",
            "--user",
            &ubnd,
        ],
    );
    assert!(submit.status.success(), "{}", stderr(&submit));
    let out = with_mail(
        &db,
        &smtp.url(),
        &["--now", "2024-03-20T09:00:05+07:00", "remind", "--once"],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    morning("2024-03-21T08:00:00+07:00");
    let approve = kehoach(
        &db,
        &[
            "--now",
            "2024-03-21T10:00:00+07:00",
            "task",
            "approve",
            "III.1.2",
            "--milestone",
            "register-2024",
            "--user",
            &bdv,
        ],
    );
    assert!(approve.status.success(), "{}", stderr(&approve));
    let out = with_mail(
        &db,
        &smtp.url(),
        &["--now", "2024-03-21T10:00:05+07:00", "remind", "--once"],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let messages = smtp.messages();
    let notice = |address: &str, words: &str| {
        messages.iter().any(|m| {
            to(m, address) && about(m, "III.1.2", REGISTER_2024) && m["subject"].as_str().unwrap().contains(words)
        })
    };
    assert!(notice("btv@ducpho.example", "chờ duyệt"), "BTV told of the submission");
    assert!(notice("bdv@ducpho.example", "chờ duyệt"), "BDV told of the submission");
    assert!(
        notice("ubnd@ducpho.example", "đã được duyệt"),
        "UBND told of the approval"
    );
    // UBND's approved part gets no more deadline reminders; MTTQ still owes its own.
    let later = with_mail(
        &db,
        &smtp.url(),
        &["--now", "2024-03-29T08:00:00+07:00", "remind", "--once"],
        &[],
    );
    assert!(later.status.success());
    // Whether that morning's digest to `agency` was about the registration
    // (as the outbox records it: a digest lists only its 20 most urgent
    // items in full, and overdue ones come first).
    let sent = kehoach(&db, &["--format", "json", "outbox", "list", "--status", "sent"]);
    let sent: Value = serde_json::from_slice(&sent.stdout).unwrap();
    let reminded = |agency: &str| {
        sent.as_array().unwrap().iter().any(|r| {
            r["agency"] == agency
                && r["window_day"] == "2024-03-29"
                && r["aggregate_id"] == "duc-pho-de-an-13/III.1.2"
                && r["milestone_id"] == "register-2024"
        })
    };
    assert!(!reminded("UBND"), "UBND's part is done");
    assert!(reminded("MTTQ"), "MTTQ's part is still owed");
}
on_both_stores!(state_change_notices, state_changes_are_notified);
