//! Digests people can read, through a real SMTP server (aiosmtpd), on both
//! stores: at most the 20 most urgent items in full, then counts by state
//! with links to the filtered inbox; milestones counted as milestones; each
//! item under one state only; no e-mail over 200 KB; and one plan's many
//! digests do not hold up another plan's.

use crate::helpers::*;
use crate::on_both_stores;
use serde_json::Value;
use std::collections::BTreeSet;

const PLAN: &str = "workflows/duc-pho-de-an-13.toml";
const FROM: &str = "Thị ủy Đức Phổ <kehoach@ducpho.example>";
const BASE: &str = "https://kehoach.ducpho.example";
const MAX_BYTES: u64 = 200 * 1024;

fn with_mail(db: &TestDb, smtp: &SmtpServer, args: &[&str]) -> String {
    let out = bin()
        .args(["--db", &db.url()])
        .args(args)
        .env("KEHOACH_SMTP_URL", smtp.url())
        .env("KEHOACH_MAIL_FROM", FROM)
        .env("KEHOACH_BASE_URL", BASE)
        .output()
        .expect("run kehoach");
    assert!(out.status.success(), "{args:?}: {}{}", stdout(&out), stderr(&out));
    stdout(&out)
}

fn ok(db: &TestDb, args: &[&str]) -> String {
    let out = kehoach(db, args);
    assert!(out.status.success(), "{args:?}: {}{}", stdout(&out), stderr(&out));
    stdout(&out)
}

/// Every rule a digest keeps, checked on one received e-mail.
fn check_digest(m: &Value) {
    let subject = m["subject"].as_str().unwrap();
    let text = m["text"].as_str().unwrap();
    let html = m["html"].as_str().unwrap();
    let size = m["size"].as_u64().unwrap();
    assert!(size <= MAX_BYTES, "{subject}: {size} bytes");
    let items = digest_items(text);
    assert!(items.len() <= 20, "{subject}: {} items in full", items.len());
    let distinct: BTreeSet<&(String, String)> = items.iter().collect();
    assert_eq!(
        distinct.len(),
        items.len(),
        "an item listed twice in {subject}:\n{text}"
    );
    // The subject's counts are the body's, counted in parts (docs/words.md).
    let total = digest_total(text).unwrap_or_else(|| panic!("no total in {subject}:\n{text}"));
    assert!(
        total.contains(" phần việc của ") && total.ends_with(" nhiệm vụ"),
        "{total}"
    );
    // One count: the list's "trong N phần việc" is the total's N.
    if let Some(rest) = text.split("cần làm trước trong ").nth(1) {
        let n = rest.split(' ').next().unwrap();
        assert!(
            total.starts_with(&format!("{n} phần việc ")),
            "{total} vs the list's {n}"
        );
    }
    let single = subject.contains("] Mốc “");
    assert!(
        single || subject.contains(&format!(": {total}")),
        "{subject} vs {total}"
    );
    // Counts by state, each with its link to the filtered inbox, in both parts.
    assert!(text.contains("Theo trạng thái:"), "{text}");
    assert!(text.contains(&format!("— xem danh sách: {BASE}/")), "{text}");
    assert!(html.contains(&format!("<a href=\"{BASE}/inbox?")) || html.contains(&format!("<a href=\"{BASE}/queue?")));
    // Each item's link goes straight to its milestone and agency.
    let task_links: Vec<&str> = text
        .split_whitespace()
        .filter(|w| w.starts_with(&format!("{BASE}/tasks/")))
        .collect();
    assert!(!task_links.is_empty(), "{text}");
    for link in &task_links {
        assert!(link.contains("?m=") && link.contains("#m-"), "{subject}: {link}");
    }
    // Milestones by title, never by id (yearly ids end in -YYYY), outside links.
    let words = |s: &str| -> String {
        s.split(|c: char| c.is_whitespace() || matches!(c, '"' | '<' | '>'))
            .filter(|w| !w.starts_with(&format!("{BASE}/tasks/")))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let (text, html) = (words(text), words(html));
    for year in 2023..=2026 {
        assert!(
            !text.contains(&format!("-{year}")) && !html.contains(&format!("-{year}")),
            "{subject}: a milestone id"
        );
    }
}

/// The shipped plan from 01/03/2024 to 30/11/2026 with nothing done: the
/// first five days simulated day by day, then a pass every six months and
/// on the last day (each gathers six months of reminders, overdue repeats
/// and escalations: larger digests than a day-by-day simulation makes,
/// which takes over an hour for the whole period).
async fn the_shipped_plan_to_its_end_with_nothing_done(kind: &str) {
    let db = TestDb::of(kind).await;
    let smtp = SmtpServer::start();
    ok(&db, &["--now", "2024-02-01", "plan", "load", PLAN]);
    with_mail(
        &db,
        &smtp,
        &["--now", "2024-03-01", "simulate", "--until", "2024-03-05"],
    );
    let passes = [
        "2024-04-01",
        "2024-10-01",
        "2025-04-01",
        "2025-10-01",
        "2026-04-01",
        "2026-11-30",
    ];
    for day in &passes {
        with_mail(
            &db,
            &smtp,
            &["--now", &format!("{day}T08:00:00+07:00"), "remind", "--once"],
        );
    }
    let messages = smtp.messages();
    assert!(messages.len() > 50, "{} e-mails", messages.len());
    let largest = messages.iter().map(|m| m["size"].as_u64().unwrap()).max().unwrap();
    for m in &messages {
        check_digest(m);
    }
    // The digests that hold more than twenty items say how many there are.
    let long: Vec<&Value> = messages
        .iter()
        .filter(|m| m["text"].as_str().unwrap().contains("phần việc cần làm trước trong"))
        .collect();
    assert!(!long.is_empty(), "some digest has more than 20 items");
    println!(
        "{kind}: {} e-mails over {} passes, largest {largest} bytes, {} with more than 20 items",
        messages.len(),
        passes.len() + 5,
        long.len()
    );
}
on_both_stores!(shipped_plan_digests, the_shipped_plan_to_its_end_with_nothing_done);

/// MTTQ advises on III.2.1.2 and implements its own part: it hears of its
/// own submission (as advisory) and of its return (as implementer). When
/// both are pending, its digest lists the milestone once, as returned, with
/// the reason; and the submission notice is still recorded as delivered.
async fn a_submitted_then_returned_milestone_shows_once_as_returned(kind: &str) {
    let db = TestDb::of(kind).await;
    let smtp = SmtpServer::start();
    ok(&db, &["--now", "2024-02-01", "plan", "load", PLAN]);
    let mttq = cli_user(&db, "MTTQ", "Hồ Thị Mặt", "member");
    let btv = cli_user(&db, "BTV", "Lê Văn Thường", "supervisor");
    // The morning's reminders go out first, so what follows is a digest of its own.
    with_mail(&db, &smtp, &["--now", "2024-03-20T08:00:00+07:00", "remind", "--once"]);
    let morning: BTreeSet<String> = smtp.messages().iter().map(|m| m["file"].to_string()).collect();
    let milestone = ["III.2.1.2", "--milestone", "report-2024"];
    ok(
        &db,
        &[
            &["--now", "2024-03-20T09:00:00+07:00", "task", "submit"][..],
            &milestone,
            &["--user", &mttq],
        ]
        .concat(),
    );
    ok(
        &db,
        &[
            &["--now", "2024-03-20T09:30:00+07:00", "task", "return"][..],
            &milestone,
            &["--user", &btv, "--agency", "MTTQ", "--reason", "Thiếu số liệu quý I"],
        ]
        .concat(),
    );
    with_mail(&db, &smtp, &["--now", "2024-03-20T10:00:00+07:00", "remind", "--once"]);
    let messages = smtp.messages();
    let mttq_mail: Vec<&Value> = messages
        .iter()
        .filter(|m| !morning.contains(&m["file"].to_string()))
        .filter(|m| {
            m["rcpt_to"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a == "mttq@ducpho.example")
        })
        .collect();
    assert_eq!(mttq_mail.len(), 1, "one digest to MTTQ");
    let m = mttq_mail[0];
    check_digest(m);
    let text = m["text"].as_str().unwrap();
    let lines: Vec<(String, String)> = digest_items(text)
        .into_iter()
        .filter(|(t, title)| t == "III.2.1.2" && title.starts_with("Báo cáo kết quả thực hiện năm 2024"))
        .collect();
    assert_eq!(lines.len(), 1, "{text}");
    assert!(lines[0].1.contains("(phần của Ủy ban Mặt trận Tổ quốc"), "{lines:?}");
    assert!(
        text.contains("[MỐC BỊ TRẢ LẠI]") && !text.contains("[MỐC ĐÃ NỘP, CHỜ DUYỆT]"),
        "{text}"
    );
    assert!(text.contains("Thiếu số liệu quý I"), "{text}");
    assert!(text.contains("thông báo trước đó về cùng mốc đã được gộp"), "{text}");
    assert!(
        text.contains(&format!(
            "Bị trả lại, cần nộp lại: 1 phần việc — xem danh sách: {BASE}/inbox?status=returned&plan=duc-pho-de-an-13"
        )),
        "{text}"
    );
    // Both notices were delivered in that one digest: nothing left queued for MTTQ.
    let queued = ok(&db, &["--format", "json", "outbox", "list", "--status", "queued"]);
    let queued: Value = serde_json::from_str(&queued).unwrap();
    assert!(
        !queued.as_array().unwrap().iter().any(|r| r["agency"] == "MTTQ"),
        "{queued}"
    );
    let sent = ok(&db, &["--format", "json", "outbox", "list", "--status", "sent"]);
    let sent: Value = serde_json::from_str(&sent).unwrap();
    let about: Vec<&Value> = sent
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            r["agency"] == "MTTQ"
                && r["milestone_id"] == "report-2024"
                && r["aggregate_id"] == "duc-pho-de-an-13/III.2.1.2"
        })
        .collect();
    assert!(about.len() >= 2, "both notices recorded as sent: {about:?}");
    let id = m["message_id"].as_str().unwrap().trim_matches(|c| c == '<' || c == '>');
    assert!(about.iter().all(|r| r["message_id"] == id), "{about:?}");
}
on_both_stores!(
    one_state_per_item,
    a_submitted_then_returned_milestone_shows_once_as_returned
);

/// A plan of `agencies` agencies, each implementing one task due three days
/// after 06/01/2025, so that each gets a digest that morning.
fn plan_text(id: &str, agencies: usize) -> String {
    let mut t = format!(
        "[plan]\nid = \"{id}\"\ntitle = \"Kế hoạch {id}\"\nissuer = \"CQ000\"\n\
         period = {{ start = \"2025-01-01\", end = \"2025-12-31\" }}\n\n\
         [reminders]\nbefore_days = [3]\nsend_at = \"0 0 8 * * *\"\n\n"
    );
    for a in 0..agencies {
        t.push_str(&format!(
            "[[agencies]]\ncode = \"CQ{a:03}\"\nname = \"Cơ quan {a} của {id}\"\nemails = [\"cq{a:03}@{id}.example\"]\n\n"
        ));
    }
    for i in 0..agencies {
        t.push_str(&format!(
            "[[tasks]]\nid = \"I.{}\"\ntitle = \"Nhiệm vụ {i}\"\ntext = \"Nội dung nhiệm vụ {i}.\"\n\
             lead = \"CQ000\"\nimplementers = [\"CQ{i:03}\"]\n\
             source = {{ section = \"I\", line = {} }}\n\
             schedule = {{ kind = \"once\", due = \"2025-01-09\", title = \"Hoàn thành\" }}\n\n",
            i + 1,
            i + 1
        ));
    }
    t
}

/// Two plans: "a-lon" with 60 agencies, each owed a digest, and "z-nho"
/// (after it in every order by name) with two. In one delivery pass the
/// plans take turns, so the small plan's digests are attempted among the
/// first four, not after the large plan's sixty.
async fn a_large_plan_does_not_hold_up_a_small_one(kind: &str) {
    let db = TestDb::of(kind).await;
    let smtp = SmtpServer::start();
    let dir = tempfile::tempdir().unwrap();
    for (id, n) in [("a-lon", 60), ("z-nho", 2)] {
        let path = dir.path().join(format!("{id}.toml"));
        std::fs::write(&path, plan_text(id, n)).unwrap();
        ok(&db, &["--now", "2025-01-02", "plan", "load", path.to_str().unwrap()]);
    }
    with_mail(&db, &smtp, &["--now", "2025-01-06T08:00:00+07:00", "remind", "--once"]);
    let export = ok(&db, &["--format", "jsonl", "audit", "export"]);
    // The plan of each attempt, in the order they were recorded.
    let attempts: Vec<String> = export
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["kind"] == "event" && e["payload"].get("ReminderAttempted").is_some())
        .map(|e| {
            e["aggregate_id"]
                .as_str()
                .unwrap()
                .split('/')
                .next()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(attempts.len(), 62, "{attempts:?}");
    let small: Vec<usize> = attempts
        .iter()
        .enumerate()
        .filter(|(_, p)| *p == "z-nho")
        .map(|(i, _)| i)
        .collect();
    assert_eq!(small, [1, 3], "the plans take turns: {attempts:?}");
    let last_large = attempts.iter().rposition(|p| p == "a-lon").unwrap();
    assert!(small.iter().all(|i| *i < last_large));
    assert_eq!(smtp.messages().len(), 62);
}
on_both_stores!(plans_take_turns, a_large_plan_does_not_hold_up_a_small_one);
