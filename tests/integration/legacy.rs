//! A store made by release 0.1 (before obligations and principals) opens,
//! replays and verifies with this release, on both databases.

use crate::helpers::*;
use crate::on_both_stores;
use serde_json::Value;

fn json_of(out: &std::process::Output) -> Value {
    assert!(out.status.success(), "{}", stderr(out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(out)))
}

fn obligation<'a>(task: &'a Value, milestone: &str, agency: Option<&str>) -> &'a Value {
    let m = task["milestones"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == milestone)
        .unwrap_or_else(|| panic!("no milestone {milestone}"));
    m["obligations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["agency"].as_str() == agency)
        .unwrap_or_else(|| panic!("no obligation {agency:?} in {m}"))
}

async fn a_release_0_1_store_opens_replays_and_verifies(kind: &str) {
    let db = TestDb::release_0_1(kind).await;
    let verify = kehoach(&db, &["audit", "verify"]);
    assert!(verify.status.success(), "{}{}", stdout(&verify), stderr(&verify));
    assert!(stdout(&verify).contains("255 sự kiện"), "{}", stdout(&verify));

    // The history shows who acted then: an agency and a name, channel unknown.
    let history = json_of(&kehoach(&db, &["--format", "json", "audit", "history", "II.1.2"]));
    let timeline = history["timeline"].as_array().unwrap();
    let returned = timeline.iter().find(|e| e["event"] == "MilestoneReturned").unwrap();
    assert_eq!(returned["actor"]["agency"], "BDV");
    assert_eq!(returned["actor"]["person"], "Nguyễn Văn An");
    assert_eq!(returned["actor"]["channel"], "legacy");
    assert_eq!(returned["hash"].as_str().unwrap().len(), 64);
    let loaded = &timeline[0];
    assert_eq!(loaded["actor"]["system"], "plan-loader");
    assert_eq!(loaded["actor"]["channel"], "system");

    // The shared milestone UBND submitted counts for UBND: its obligation is
    // approved (late: 03/04 for 31/03), MTTQ's is still owed and overdue.
    let show = json_of(&kehoach(
        &db,
        &["--now", "2023-04-05", "--format", "json", "task", "show", "III.1.2"],
    ));
    let ubnd = obligation(&show, "register-2023", Some("UBND"));
    assert_eq!(ubnd["status"], "approved");
    assert_eq!(ubnd["timeliness"], "approved_late");
    assert_eq!(ubnd["submitted"]["by"]["person"], "Trần Thị B");
    let mttq = obligation(&show, "register-2023", Some("MTTQ"));
    assert_eq!(
        (mttq["status"].as_str(), mttq["timeliness"].as_str()),
        (Some("open"), Some("overdue"))
    );
    // Its deadlines are judged by the Civil Code (the plan of that release
    // had no such field): III.1.2's 2024 registration, due Sunday
    // 31/03/2024, ends on Monday 01/04 and is shown with both dates.
    let show_2024 = json_of(&kehoach(
        &db,
        &["--now", "2024-04-01", "--format", "json", "task", "show", "III.1.2"],
    ));
    let reg = obligation(&show_2024, "register-2024", Some("MTTQ"));
    assert_eq!(
        (reg["due"].as_str(), reg["due_legal"].as_str()),
        (Some("2024-03-31"), Some("2024-04-01"))
    );
    assert_eq!(reg["timeliness"], "not_yet_due");
    let text = stdout(&kehoach(&db, &["--now", "2024-04-02", "task", "show", "III.1.2"]));
    assert!(
        text.contains("31/03/2024 (Chủ nhật; theo Điều 148 BLDS: 01/04/2024)"),
        "{text}"
    );
    // MTTQ's resubmission on II.1.2 waits for a decision; UBND's part is open.
    let ii12 = json_of(&kehoach(&db, &["--format", "json", "task", "show", "II.1.2"]));
    assert_eq!(obligation(&ii12, "complete", Some("MTTQ"))["status"], "submitted");
    assert_eq!(obligation(&ii12, "complete", Some("UBND"))["status"], "open");
    // The extension of IV.4 moved its only obligation.
    let iv4 = json_of(&kehoach(&db, &["--format", "json", "task", "show", "IV.4"]));
    assert_eq!(obligation(&iv4, "report-2023", Some("BTG"))["due"], "2024-06-30");

    // Loading this release's plan marks II.1.1 joint: the approved part of
    // BTG becomes the joint obligation, fulfilled by BTG.
    let load = kehoach(&db, &["plan", "load", "workflows/duc-pho-de-an-13.toml"]);
    assert!(load.status.success(), "{}", stderr(&load));
    let ii11 = json_of(&kehoach(&db, &["--format", "json", "task", "show", "II.1.1"]));
    let joint = obligation(&ii11, "complete", None);
    assert_eq!(joint["status"], "approved");
    assert_eq!(joint["fulfilled_by"], "BTG");
    assert_eq!(ii11["milestones"][0]["obligations"].as_array().unwrap().len(), 1);

    // New actions by accounts append to the old chains, and all of it verifies.
    let mttq = cli_user(&db, "MTTQ", "Hồ Thị Mặt", "member");
    let submit = kehoach(
        &db,
        &[
            "task",
            "submit",
            "III.1.2",
            "--milestone",
            "register-2024",
            "--user",
            &mttq,
        ],
    );
    assert!(submit.status.success(), "{}", stderr(&submit));
    let verify = kehoach(&db, &["audit", "verify"]);
    assert!(verify.status.success(), "{}{}", stdout(&verify), stderr(&verify));
    let rebuild = kehoach(&db, &["views", "rebuild"]);
    assert!(rebuild.status.success(), "{}", stderr(&rebuild));
}
on_both_stores!(release_0_1_store, a_release_0_1_store_opens_replays_and_verifies);

/// The store of the release before the PostgreSQL feed's own-writers horizon
/// (`tests/fixtures/release-0.2`, see its `make.sh`): two plans (one imported
/// from a Word document, with coordinating agencies), accounts and their
/// history, an evidence file, a return, a baseline sheet, reminders delivered
/// to aiosmtpd, two checkpoints. This release opens it (migration 0019 adds
/// the writers' trigger), reads it in the same order, verifies it, and goes
/// on writing to it.
async fn a_release_0_2_store_opens_replays_and_verifies(kind: &str) {
    let db = TestDb::release(kind, "release-0.2").await;
    let verify = kehoach(&db, &["audit", "verify"]);
    let said = stdout(&verify);
    assert!(verify.status.success(), "{said}{}", stderr(&verify));
    for part in [
        "648 sự kiện",
        "2 điểm kiểm",
        "79 khung nhìn khớp",
        "5 tài khoản",
        "1 tệp minh chứng",
        "kho mô phỏng",
    ] {
        assert!(said.contains(part), "{part}: {said}");
    }
    // The views it left are the views this release makes of its events, in
    // its order: a rebuild applies every event once and verifies the same.
    let rebuild = kehoach(&db, &["--format", "json", "views", "rebuild"]);
    assert!(rebuild.status.success(), "{}", stderr(&rebuild));
    assert!(stdout(&rebuild).contains("648"), "{}", stdout(&rebuild));
    let verify = kehoach(&db, &["audit", "verify"]);
    assert!(verify.status.success(), "{}{}", stdout(&verify), stderr(&verify));

    // What people did then reads back: the return's reason, the sheet.
    let shipped = ["--plan", "duc-pho-de-an-13"];
    let history = json_of(&kehoach(
        &db,
        &[&["--format", "json", "audit", "history", "II.1.2"][..], &shipped].concat(),
    ));
    let returned = history["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event"] == "MilestoneReturned")
        .expect("the return");
    assert_eq!(returned["actor"]["name"], "Nguyễn Văn An");
    assert_eq!(returned["actor"]["channel"], "cli");
    let iii12 = json_of(&kehoach(
        &db,
        &[
            &["--now", "2023-04-21", "--format", "json", "task", "show", "III.1.2"][..],
            &shipped,
        ]
        .concat(),
    ));
    assert_eq!(
        obligation(&iii12, "register-2023", Some("UBND"))["timeliness"],
        "on_time"
    );
    assert_eq!(
        obligation(&iii12, "register-2023", Some("MTTQ"))["timeliness"],
        "approved_late"
    );
    // The imported plan's coordinating agencies are still there.
    let list = json_of(&kehoach(&db, &["--format", "json", "task", "list"]));
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|t| t["coordinators"].as_array().is_some_and(|c| !c.is_empty())),
        "a task with coordinators"
    );

    // New actions append to the old chains; a checkpoint over old and new
    // events, and all of it verifies.
    let report = |task: &str, milestone: &str, user: &str| {
        kehoach(
            &db,
            &[
                &["--now", "2024-01-10", "task", "report", task, "--milestone", milestone][..],
                &shipped,
                &["--user", user, "--note", "sau khi nâng cấp"],
            ]
            .concat(),
        )
    };
    // BTG does not implement II.1.2: refused, nothing written.
    let refused = report("II.1.2", "complete", "tuyen@btg.example");
    assert_eq!(refused.status.code(), Some(3), "{}", stderr(&refused));
    let mat = cli_user(&db, "MTTQ", "Hồ Văn Mới", "member");
    let report = report("III.1.2", "register-2024", &mat);
    assert!(report.status.success(), "{}", stderr(&report));
    let checkpoint = kehoach(&db, &["--now", "2024-01-10", "audit", "checkpoint"]);
    assert!(checkpoint.status.success(), "{}", stderr(&checkpoint));
    let verify = kehoach(&db, &["audit", "verify"]);
    assert!(verify.status.success(), "{}{}", stdout(&verify), stderr(&verify));
    assert!(stdout(&verify).contains("3 điểm kiểm"), "{}", stdout(&verify));
}
on_both_stores!(release_0_2_store, a_release_0_2_store_opens_replays_and_verifies);
