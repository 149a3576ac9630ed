//! Legal deadlines (issue 22, item 1), on both databases: III.1.2's 2024
//! registration is due Sunday 31/03/2024; under the Civil Code it ends at
//! the end of Monday 01/04/2024. A part submitted and approved on 01/04 is
//! on time, a part still open is overdue from 02/04, the 7-day overdue
//! reminder goes out on 08/04 (the 7th day after the legal deadline, to a
//! real SMTP server), and `task show`, the task page, the digest and the
//! review report show both dates.

use crate::helpers::*;
use crate::on_both_stores;
use crate::web::App;
use serde_json::Value;

const FROM: &str = "Thị ủy Đức Phổ <kehoach@ducpho.example>";
const BOTH: &str = "31/03/2024 (Chủ nhật; theo Điều 148 BLDS: 01/04/2024)";
const REGISTER_2024: &str = "Đăng ký xây dựng, nhân rộng mô hình “Dân vận khéo” năm 2024";

fn run(db: &TestDb, smtp: &str, args: &[&str]) -> String {
    let out = bin()
        .args(["--db", &db.url()])
        .args(args)
        .env("KEHOACH_SMTP_URL", smtp)
        .env("KEHOACH_MAIL_FROM", FROM)
        .output()
        .expect("run kehoach");
    assert!(out.status.success(), "{args:?}: {}{}", stdout(&out), stderr(&out));
    stdout(&out)
}

/// The register-2024 part of `agency` in `task show --format json`.
fn part(show: &Value, agency: &str) -> Value {
    let m = show["milestones"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == "register-2024")
        .expect("register-2024")
        .clone();
    m["obligations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["agency"] == agency)
        .unwrap_or_else(|| panic!("{agency} part in {m}"))
        .clone()
}

fn show(db: &TestDb, now: &str) -> Value {
    let text = run(
        db,
        "smtp://127.0.0.1:9",
        &["--now", now, "--format", "json", "task", "show", "III.1.2"],
    );
    serde_json::from_str(&text).expect("task show json")
}

async fn deadlines_follow_the_civil_code(kind: &str) {
    let app = App::shipped(kind, "2024-02-01T08:00:00+07:00").await;
    let db = app.db();
    let smtp = SmtpServer::start();
    let ubnd = cli_user(db, "UBND", "Nguyễn Văn Ủy", "member");
    let btv = cli_user(db, "BTV", "Lê Văn Thường", "supervisor");
    let register = ["III.1.2", "--milestone", "register-2024"];
    // UBND submits on Monday 01/04 at 09:00; BTV approves at 10:00.
    let act = |at: &str, action: &str, extra: &[&str]| {
        let args = [&["--now", at, "task", action][..], &register, extra].concat();
        run(db, "smtp://127.0.0.1:9", &args);
    };
    act("2024-04-01T09:00:00+07:00", "submit", &["--user", &ubnd]);
    act(
        "2024-04-01T10:00:00+07:00",
        "approve",
        &["--user", &btv, "--agency", "UBND", "--note", "Đồng ý"],
    );

    // On 01/04 the open parts are still due; on 02/04 they are overdue.
    let monday = show(db, "2024-04-01T17:00:00+07:00");
    let ubnd_part = part(&monday, "UBND");
    assert_eq!(ubnd_part["status"], "approved");
    assert_eq!(ubnd_part["timeliness"], "on_time", "{ubnd_part}");
    assert_eq!(ubnd_part["due"], "2024-03-31");
    assert_eq!(ubnd_part["due_legal"], "2024-04-01");
    assert_eq!(part(&monday, "MTTQ")["timeliness"], "not_yet_due");
    let tuesday = show(db, "2024-04-02T08:00:00+07:00");
    assert_eq!(part(&tuesday, "MTTQ")["timeliness"], "overdue");
    assert_eq!(part(&tuesday, "UBND")["timeliness"], "on_time");

    // MTTQ's list of overdue parts agrees with the judgement.
    let mttq = app.user("MTTQ", "Hồ Thị Mặt", "member").await;
    for (now, listed) in [
        ("2024-04-01T17:00:00+07:00", false),
        ("2024-04-02T08:00:00+07:00", true),
    ] {
        app.clock.set(at(now));
        let (cookie, _) = app.session(&mttq).await;
        let page = app.page("/inbox?overdue=1", &cookie).await;
        assert_eq!(page.status, 200, "{}", page.body);
        assert_eq!(page.body.contains(REGISTER_2024), listed, "overdue list at {now}");
    }

    // `task show` in text: both dates, and "đúng hạn" for UBND.
    let text = run(
        db,
        "smtp://127.0.0.1:9",
        &["--now", "2024-04-02", "task", "show", "III.1.2"],
    );
    assert!(text.contains(BOTH), "{text}");
    let ubnd_line = text
        .lines()
        .find(|l| l.contains(BOTH) && l.contains("Ủy ban nhân dân"))
        .unwrap_or_else(|| panic!("UBND's row in {text}"));
    assert!(ubnd_line.contains("đúng hạn"), "{ubnd_line}");

    // The task page: both dates, UBND on time, MTTQ overdue.
    app.clock.set(at("2024-04-02T09:00:00+07:00"));
    let user = app.user("BTV", "Phạm Thị Kiểm", "supervisor").await;
    let (cookie, _) = app.session(&user).await;
    let page = app.page("/tasks/duc-pho-de-an-13/III.1.2", &cookie).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains(BOTH), "task page shows both dates");

    // The digests: from 02/04 on the open parts are overdue; the 7-day
    // overdue reminder comes on Monday 08/04, not on Friday 05/04 as it
    // would counted from Sunday.
    run(
        db,
        &smtp.url(),
        &["--now", "2024-03-25", "simulate", "--until", "2024-04-09"],
    );
    let messages = smtp.messages();
    let to_mttq: Vec<&Value> = messages
        .iter()
        .filter(|m| {
            m["rcpt_to"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a == "mttq@ducpho.example")
        })
        .filter(|m| {
            digest_items(m["text"].as_str().unwrap_or_default())
                .iter()
                .any(|(t, title)| t == "III.1.2" && title.starts_with(REGISTER_2024))
        })
        .collect();
    let windows: Vec<&str> = to_mttq.iter().map(|m| m["window"].as_str().unwrap()).collect();
    assert!(
        windows.contains(&"2024-04-01"),
        "the day of the legal deadline: {windows:?}"
    );
    assert!(
        windows.contains(&"2024-04-08"),
        "7 days after the legal deadline: {windows:?}"
    );
    assert!(!windows.contains(&"2024-04-05"), "not counted from Sunday: {windows:?}");
    let overdue = to_mttq.iter().find(|m| m["window"] == "2024-04-08").unwrap();
    let body = overdue["text"].as_str().unwrap();
    assert!(body.contains("quá hạn 7 ngày"), "{body}");
    assert!(body.contains(BOTH), "the digest shows both dates: {body}");

    // The review report of 2024.
    let html = review_report(db, "2024-04-10", "2024");
    assert!(html.contains(BOTH), "the review report shows both dates");
}
on_both_stores!(civil_code_deadlines, deadlines_follow_the_civil_code);
