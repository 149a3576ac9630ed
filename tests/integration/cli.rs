//! The binary as a user runs it, on both stores.

use crate::helpers::*;
use crate::on_both_stores;
use std::process::Command;

#[test]
fn plan_check_passes_the_shipped_plan_and_reports_each_mistake() {
    let db = TestDb::sqlite();
    let ok = kehoach(&db, &["plan", "check", "workflows/duc-pho-de-an-13.toml"]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    assert!(stdout(&ok).contains("45 nhiệm vụ"));

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    let text = std::fs::read_to_string(shipped_plan_path()).unwrap();
    let text = text
        .replacen("lead = \"BTV\"", "lead = \"BTX\"", 1)
        .replacen("id = \"II.1.2\"", "id = \"II.1.1\"", 1)
        .replacen("quarter = 1, year = 2023", "quarter = 1, year = 2031", 1);
    std::fs::write(&bad, text).unwrap();
    let out = kehoach(&db, &["plan", "check", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let errors: Vec<String> = stderr(&out)
        .lines()
        .filter(|l| l.starts_with(bad.to_str().unwrap()))
        .map(String::from)
        .collect();
    assert_eq!(errors.len(), 3, "{}", stderr(&out));
    for e in &errors {
        let rest = &e[bad.to_str().unwrap().len() + 1..];
        let mut parts = rest.splitn(3, ':');
        assert!(
            parts.next().unwrap().parse::<u32>().is_ok() && parts.next().unwrap().parse::<u32>().is_ok(),
            "not file:line:col: {e}"
        );
    }
    assert!(errors.iter().any(|e| e.contains("\"BTX\"")));
    assert!(errors.iter().any(|e| e.contains("II.1.1 lặp lại")));
    assert!(errors.iter().any(|e| e.contains("31/03/2031 nằm ngoài thời kỳ")));
    // And nothing was written: loading the bad file fails before touching the store.
    let load = kehoach(&db, &["plan", "load", bad.to_str().unwrap()]);
    assert_eq!(load.status.code(), Some(2));
    let list = kehoach(&db, &["--format", "json", "task", "list"]);
    assert!(list.status.success(), "{}", stderr(&list));
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&list.stdout).unwrap(),
        serde_json::json!([])
    );
}

async fn the_cli_flow(kind: &str) {
    let db = TestDb::of(kind).await;
    let load = kehoach(
        &db,
        &["--now", "2023-01-02", "plan", "load", "workflows/duc-pho-de-an-13.toml"],
    );
    assert!(load.status.success(), "{}", stderr(&load));
    let again = kehoach(&db, &["plan", "load", "workflows/duc-pho-de-an-13.toml"]);
    assert!(stdout(&again).contains("0 sự kiện mới"), "{}", stdout(&again));

    let list = kehoach(&db, &["--format", "json", "task", "list"]);
    assert!(list.status.success(), "{}", stderr(&list));
    let tasks: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    let tasks = tasks.as_array().unwrap();
    assert_eq!(tasks.len(), 45);
    let find = |id: &str| tasks.iter().find(|t| t["id"] == id).unwrap().clone();
    let t = find("II.1.2");
    assert_eq!(t["milestones"].as_array().unwrap().len(), 1);
    assert_eq!(t["milestones"][0]["due"], "2023-03-31");
    assert_eq!(t["lead"], "BTV");
    let t = find("III.1.2");
    let registers: Vec<&str> = t["milestones"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["id"].as_str().unwrap().starts_with("register-"))
        .map(|m| m["due"].as_str().unwrap())
        .collect();
    assert_eq!(registers, ["2023-03-31", "2024-03-31", "2025-03-31", "2026-03-31"]);

    // People act as their accounts; the agency comes from the account.
    let ubnd = cli_user(&db, "UBND", "Trần Thị B", "member");
    let bdv_namesake = cli_user(&db, "BDV", "Trần Thị B", "supervisor");
    let mttq = cli_user(&db, "MTTQ", "Đỗ F", "member,supervisor");
    let submit = kehoach(
        &db,
        &[
            "--now",
            "2024-03-20",
            "task",
            "submit",
            "III.1.2",
            "--milestone",
            "register-2024",
            "--user",
            &ubnd,
            "--note",
            "Đăng ký",
        ],
    );
    assert!(submit.status.success(), "{}", stderr(&submit));
    let approve_as = |user: &str| -> Vec<String> {
        [
            "task",
            "approve",
            "III.1.2",
            "--milestone",
            "register-2024",
            "--user",
            user,
        ]
        .map(String::from)
        .to_vec()
    };
    for (args, code, needle) in [
        (approve_as(&ubnd), 3, "không có vai trò"),
        (approve_as(&mttq), 3, "không phải cơ quan lãnh đạo"),
        (approve_as("ai.do@ducpho.example"), 2, "không có tài khoản"),
        (
            [approve_as(&mttq), vec!["--agency".into(), "XYZ".into()]].concat(),
            2,
            "không có cơ quan XYZ",
        ),
        (
            [
                "task",
                "approve",
                "III.9.9",
                "--milestone",
                "register-2024",
                "--user",
                &bdv_namesake,
            ]
            .map(String::from)
            .to_vec(),
            2,
            "không có nhiệm vụ III.9.9",
        ),
        (
            [
                "task",
                "extend",
                "III.1.2",
                "--milestone",
                "register-2024",
                "--user",
                &bdv_namesake,
                "--until",
                "31/02/2024",
                "--reason",
                "x",
            ]
            .map(String::from)
            .to_vec(),
            2,
            "ngày không tồn tại",
        ),
        (
            [
                "--now",
                "2024-03-21",
                "task",
                "approve",
                "III.1.2",
                "--milestone",
                "register-2024",
                "--user",
                &bdv_namesake,
                "--agency",
                "MTTQ",
            ]
            .map(String::from)
            .to_vec(),
            3,
            "chưa được nộp",
        ),
    ] {
        let before = event_count(&db).await;
        let out = kehoach(&db, &args.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(out.status.code(), Some(code), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        assert!(err.contains(needle), "{err}");
        assert_eq!(event_count(&db).await, before, "{args:?} wrote nothing");
    }
    // A supervisor who happens to share the submitter's name is another
    // account, and approves UBND's obligation: only that one.
    let approve = kehoach(
        &db,
        &[
            "--now",
            "2024-03-25",
            "--format",
            "json",
            "task",
            "approve",
            "III.1.2",
            "--milestone",
            "register-2024",
            "--user",
            &bdv_namesake,
        ],
    );
    assert!(approve.status.success(), "{}", stderr(&approve));
    let done: serde_json::Value = serde_json::from_slice(&approve.stdout).unwrap();
    assert_eq!(done["status"], "open", "{done}");
    assert_eq!(
        done["obligations"][1],
        serde_json::json!({ "agency": "UBND", "status": "approved" })
    );
    assert_eq!(
        done["obligations"][3],
        serde_json::json!({ "agency": "MTTQ", "status": "open" })
    );
    let again = kehoach(
        &db,
        &[
            "task",
            "submit",
            "III.1.2",
            "--milestone",
            "register-2024",
            "--user",
            &ubnd,
        ],
    );
    assert_eq!(again.status.code(), Some(3));
    assert!(stderr(&again).contains("đã được duyệt"));

    let show = kehoach(&db, &["--format", "json", "task", "show", "III.1.2"]);
    let shown: serde_json::Value = serde_json::from_slice(&show.stdout).unwrap();
    let m = shown["milestones"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == "register-2024")
        .unwrap();
    assert_eq!(m["status"], "open");
    let obligation = |agency: &str| {
        m["obligations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["agency"] == agency)
            .unwrap()
            .clone()
    };
    assert_eq!(obligation("UBND")["status"], "approved");
    assert_eq!(obligation("UBND")["timeliness"], "on_time");
    assert_eq!(obligation("UBND")["due"], "2024-03-31");
    assert_eq!(obligation("UBND")["approved"]["by"]["email"], bdv_namesake.as_str());
    assert_eq!(obligation("UBND")["submitted"]["by"]["email"], ubnd.as_str());
    assert_eq!(obligation("MTTQ")["status"], "open");

    let filtered = kehoach(
        &db,
        &[
            "--now",
            "2024-04-01",
            "--format",
            "json",
            "task",
            "list",
            "--agency",
            "ubkt",
        ],
    );
    let filtered: serde_json::Value = serde_json::from_slice(&filtered.stdout).unwrap();
    assert_eq!(filtered.as_array().unwrap().len(), 1, "UBKT has one task (IV.6)");
    let overdue_on = |date: &str| -> Vec<String> {
        let out = kehoach(&db, &["--now", date, "--format", "json", "task", "list", "--overdue"]);
        let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        list.as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_str().unwrap().to_string())
            .collect()
    };
    // In June 2023 only the one-off Q1 tasks and the first "Dân vận khéo"
    // registration are late; the yearly reports are not due until 15/12.
    assert_eq!(overdue_on("2023-06-01"), ["II.1.1", "II.1.2", "III.1.2"]);
    assert!(overdue_on("2024-01-02").contains(&"IV.6".to_string()));
    // MTTQ's part of register-2024 is still owed after the deadline.
    assert!(overdue_on("2024-04-02").contains(&"III.1.2".to_string()));

    // A progress report with a KPI value against the task's target (II.2.1.3
    // is one town-wide figure: a joint obligation MTTQ reports for all).
    let report = kehoach(
        &db,
        &[
            "--now",
            "2023-11-20",
            "task",
            "report",
            "II.2.1.3",
            "--milestone",
            "report-2023",
            "--user",
            &mttq,
            "--kpi",
            "ban-ttnd-gsdtcd-hieu-qua=86,5",
            "--evidence",
            "https://ducpho.example/bc/2023",
        ],
    );
    assert!(report.status.success(), "{}", stderr(&report));
    let bad_kpi = kehoach(
        &db,
        &[
            "task",
            "report",
            "II.2.1.3",
            "--milestone",
            "report-2023",
            "--user",
            &mttq,
            "--kpi",
            "khong-co=1",
        ],
    );
    assert_eq!(bad_kpi.status.code(), Some(3));
    assert!(
        stderr(&bad_kpi).contains("không có chỉ tiêu khong-co"),
        "{}",
        stderr(&bad_kpi)
    );
    let show = kehoach(&db, &["--format", "json", "task", "show", "II.2.1.3"]);
    let shown: serde_json::Value = serde_json::from_slice(&show.stdout).unwrap();
    assert_eq!(shown["milestones"][0]["kpis"]["ban-ttnd-gsdtcd-hieu-qua"], 86.5);
    assert_eq!(shown["milestones"][0]["reports"], 1);

    let table = kehoach(&db, &["task", "list"]);
    assert!(stdout(&table).contains("Nhiệm vụ") && stdout(&table).contains("45 nhiệm vụ"));
    let rebuild = kehoach(&db, &["views", "rebuild"]);
    assert!(stdout(&rebuild).contains("sự kiện"), "{}", stdout(&rebuild));
}
on_both_stores!(cli_flow, the_cli_flow);

#[test]
fn an_unreachable_database_is_one_line_and_no_panic() {
    let out = bin()
        .args(["--db", "postgres://postgres@127.0.0.1:1/none", "task", "list"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("không kết nối được") && !err.contains("panicked"), "{err}");
    let bad = bin().args(["--db", "mysql://x/y", "task", "list"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

/// `serve` with no configuration at all: creates ./data/kehoach.db, loads
/// ./workflows, keeps running, and stops cleanly on Ctrl-C (SIGINT).
#[test]
fn serve_starts_with_no_configuration_and_stops_on_ctrl_c() {
    // The one setting: a free port instead of 8080, so tests can run side by side.
    let (dir, port, mut child) = serve_in_new_dir(&[]);
    let loaded = wait_until_loaded(&dir.path().join("data/kehoach.db"), &mut child);
    assert_eq!(loaded, 45, "serve should load the shipped plan");
    // Its first reminder pass writes e-mails as files (no SMTP configured).
    let outbox = dir.path().join("data/outbox");
    let count = || std::fs::read_dir(&outbox).map(|d| d.count()).unwrap_or(0);
    for _ in 0..300 {
        if count() > 0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(child.try_wait().unwrap().is_none(), "serve keeps running");
    // Its HTTP server answers health and readiness checks.
    assert_eq!(http_get(port, "/health").status, 200, "health");
    let ready = http_get(port, "/ready");
    assert!(ready.status == 200 && ready.json()["ready"] == true, "{ready:?}");
    // With no SMTP server configured, reminders are written as .eml files;
    // the first pass runs at start. Ctrl-C once it has written some (a stop
    // during a pass lets the digest in hand finish, then takes no more).
    let outbox = dir.path().join("data/outbox");
    let emails = || {
        std::fs::read_dir(&outbox)
            .map(|d| {
                d.filter_map(Result::ok)
                    .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
                    .count()
            })
            .unwrap_or(0)
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    while emails() == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "serve should stop cleanly: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("đang dừng"));
    assert!(emails() > 0, "serve should write reminders to ./data/outbox");
}

/// Without a web address set, the links `serve` sends lead to where it
/// listens (`--listen`), not to port 8080; a web address set that names
/// another address is said once, at start.
#[test]
fn links_lead_to_where_serve_listens() {
    let start = |base_url: Option<&str>| {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("workflows")).unwrap();
        std::fs::copy(shipped_plan_path(), dir.path().join("workflows/plan.toml")).unwrap();
        let port = free_port();
        let mut command = bin();
        command
            .args(["serve", "--poll", "0.2", "--listen", &format!("127.0.0.1:{port}")])
            .env_remove("KEHOACH_BASE_URL")
            .env_remove("KEHOACH_LISTEN")
            .env("KEHOACH_LOG", "info")
            .current_dir(dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        if let Some(url) = base_url {
            command.env("KEHOACH_BASE_URL", url);
        }
        (dir, port, command.spawn().unwrap())
    };
    let first_email = |dir: &std::path::Path, child: &mut std::process::Child| {
        let outbox = dir.join("data/outbox");
        for _ in 0..600 {
            let found = std::fs::read_dir(&outbox)
                .into_iter()
                .flatten()
                .filter_map(Result::ok)
                .find(|e| e.path().extension().is_some_and(|x| x == "eml"));
            if let Some(e) = found {
                std::thread::sleep(std::time::Duration::from_millis(200));
                // Decoded by Python's `email` package (tests/support/parse_eml.py).
                let maildir = tempfile::tempdir().unwrap();
                std::fs::create_dir(maildir.path().join("new")).unwrap();
                std::fs::copy(e.path(), maildir.path().join("new/m.eml")).unwrap();
                let out = Command::new(python())
                    .arg(repo_root().join("tests/support/parse_eml.py"))
                    .arg(maildir.path())
                    .output()
                    .unwrap();
                let parsed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("parse_eml.py");
                return format!("{}\n{}", parsed[0]["text"], parsed[0]["html"]);
            }
            assert!(child.try_wait().unwrap().is_none(), "serve stopped");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("no e-mail written");
    };

    let (dir, port, mut child) = start(None);
    let email = first_email(dir.path(), &mut child);
    let _ = child.kill();
    let log = String::from_utf8_lossy(&child.wait_with_output().unwrap().stderr).into_owned();
    assert!(email.contains(&format!("http://127.0.0.1:{port}/")), "{email}");
    assert!(!email.contains("127.0.0.1:8080"), "{email}");
    assert!(!log.contains("khác địa chỉ serve đang nghe"), "{log}");

    let (dir, port, mut child) = start(Some("http://127.0.0.1:1"));
    let email = first_email(dir.path(), &mut child);
    let _ = child.kill();
    let log = String::from_utf8_lossy(&child.wait_with_output().unwrap().stderr).into_owned();
    assert!(
        email.contains("http://127.0.0.1:1/"),
        "the address set is kept: {email}"
    );
    assert_eq!(
        log.matches("khác địa chỉ serve đang nghe").count(),
        1,
        "said once, at start: {log}"
    );
    assert!(log.contains(&format!("127.0.0.1:{port}")), "{log}");
}

#[test]
fn a_second_serve_on_one_sqlite_file_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("k.db");
    let start = |port: u16| {
        bin()
            .args(["serve", "--poll", "0.2", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--db", db.to_str().unwrap()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let first_port = free_port();
    let mut first = start(first_port);
    let ready = (0..300).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(100));
        std::net::TcpStream::connect(("127.0.0.1", first_port)).is_ok()
    });
    assert!(ready, "the first serve did not start");
    let second = start(free_port()).wait_with_output().unwrap();
    let err = stderr(&second);
    assert_eq!(second.status.code(), Some(2), "{err}");
    assert!(
        err.contains("đã có một tiến trình serve khác") && err.trim().lines().count() == 1,
        "{err}"
    );
    // The lock dies with its process, even killed: then a new serve starts.
    first.kill().unwrap();
    first.wait().unwrap();
    let third_port = free_port();
    let mut third = start(third_port);
    let ready = (0..300).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(100));
        std::net::TcpStream::connect(("127.0.0.1", third_port)).is_ok()
    });
    third.kill().unwrap();
    third.wait().unwrap();
    assert!(ready, "a serve after the first was killed did not start");
}

#[test]
fn serve_on_a_port_in_use_is_one_line_and_exit_2() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let out = bin()
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--db", dir.path().join("k.db").to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("không mở được cổng") && err.trim().lines().count() == 1,
        "{err}"
    );
}
