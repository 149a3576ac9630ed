//! What the Inspection Committee asks of the record: which agency has not
//! done its part, who exactly did each thing, and through which channel.

use crate::helpers::*;
use crate::on_both_stores;
use crate::web::App;
use serde_json::{json, Value};

fn json_of(out: &std::process::Output) -> Value {
    assert!(out.status.success(), "{}", stderr(out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(out)))
}

fn obligation<'a>(task: &'a Value, milestone: &str, agency: &str) -> &'a Value {
    task["milestones"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == milestone)
        .unwrap()["obligations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["agency"] == agency)
        .unwrap_or_else(|| panic!("no obligation of {agency}"))
}

/// UBND registers its "Dân vận khéo" model for 2024, BDV approves it: only
/// UBND's obligation is done; MTTQ's is still owed, overdue after 31/03 and
/// reminded, and the counts and the review report say exactly that.
async fn each_implementer_answers_for_its_own_obligation(kind: &str) {
    let db = TestDb::of(kind).await;
    let load = kehoach(
        &db,
        &["--now", "2024-01-02", "plan", "load", "workflows/duc-pho-de-an-13.toml"],
    );
    assert!(load.status.success(), "{}", stderr(&load));
    let ubnd = cli_user(&db, "UBND", "Trần Thị B", "member");
    let bdv = cli_user(&db, "BDV", "Võ Văn E", "supervisor");
    let run = |args: &[&str]| {
        let out = kehoach(&db, args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        out
    };
    run(&[
        "--now",
        "2024-03-20",
        "task",
        "submit",
        "III.1.2",
        "--milestone",
        "register-2024",
        "--user",
        &ubnd,
    ]);
    run(&[
        "--now",
        "2024-03-25",
        "task",
        "approve",
        "III.1.2",
        "--milestone",
        "register-2024",
        "--user",
        &bdv,
    ]);

    let show = json_of(&kehoach(
        &db,
        &["--now", "2024-04-02", "--format", "json", "task", "show", "III.1.2"],
    ));
    let mine = obligation(&show, "register-2024", "UBND");
    assert_eq!(
        (mine["status"].as_str(), mine["timeliness"].as_str()),
        (Some("approved"), Some("on_time"))
    );
    assert_eq!(mine["approved"]["by"]["email"], bdv.as_str());
    for other in ["TTHDND", "TMGV", "MTTQ", "CTXH", "DUCB"] {
        let o = obligation(&show, "register-2024", other);
        assert_eq!(
            (o["status"].as_str(), o["timeliness"].as_str()),
            (Some("open"), Some("overdue")),
            "{other}"
        );
    }

    // Reminded: the overdue reminders of 08/04 are about MTTQ's part, never UBND's.
    run(&["--now", "2024-04-08T08:00:00+07:00", "remind", "--once"]);
    let outbox = json_of(&kehoach(&db, &["--format", "json", "outbox", "list"]));
    let about_register = |agency: &str| -> Vec<String> {
        outbox
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| {
                r["aggregate_id"].as_str().unwrap().ends_with("/III.1.2")
                    && r["milestone_id"] == "register-2024"
                    && r["kind"] == "overdue"
                    && r["agency"] == agency
            })
            .map(|r| r["reminder_key"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(about_register("UBND").is_empty(), "UBND did its part");
    assert_eq!(about_register("MTTQ"), ["overdue-7:MTTQ"]);

    // Per-agency counts and what changed in March.
    let plan = json_of(&kehoach(
        &db,
        &[
            "--format",
            "json",
            "audit",
            "plan",
            "--as-of",
            "2024-04-02",
            "--since",
            "2024-03-01",
        ],
    ));
    let changed: Vec<(String, String)> = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["task"] == "III.1.2" && c["milestone"] == "register-2024")
        .map(|c| {
            (
                c["agency"].as_str().unwrap().to_string(),
                c["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(changed, [("UBND".to_string(), "approved".to_string())]);
    let standing = plan["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == "III.1.2")
        .unwrap()
        .clone();
    // III.1.2 as of 02/04/2024, counted per obligation: the six of
    // register-2023 and of review-2023 overdue, and the six of register-2024
    // overdue but UBND's, which is on time.
    assert_eq!(standing["counts"]["on_time"], 1, "{standing}");
    assert_eq!(standing["counts"]["overdue"], 6 + 6 + 5, "{standing}");

    // The review report of 2024 has one row per obligation.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("review-2024.html");
    run(&[
        "--now",
        "2024-04-08",
        "report",
        "review",
        "--year",
        "2024",
        "--output",
        file.to_str().unwrap(),
    ]);
    let html = std::fs::read_to_string(&file).unwrap();
    let row = |agency: &str| -> String {
        html.split("<tr>")
            .find(|r| r.contains(&format!("<td>{REGISTER_2024}</td>")) && r.contains(&format!("<td>{agency}</td>")))
            .unwrap_or_else(|| panic!("no register-2024 row for {agency}"))
            .to_string()
    };
    assert!(
        row("Ủy ban nhân dân thị xã").contains("đúng hạn") && row("Ủy ban nhân dân thị xã").contains("Võ Văn E"),
        "{}",
        row("Ủy ban nhân dân thị xã")
    );
    assert!(
        row("Ủy ban Mặt trận Tổ quốc Việt Nam thị xã").contains("quá hạn"),
        "{}",
        row("Ủy ban Mặt trận Tổ quốc Việt Nam thị xã")
    );
}
on_both_stores!(obligations_per_agency, each_implementer_answers_for_its_own_obligation);

/// The title of III.1.2's milestone register-2024, as reports show it.
const REGISTER_2024: &str = "Đăng ký xây dựng, nhân rộng mô hình “Dân vận khéo” năm 2024";

/// UBND implements and advises on II.2.1.4 and still cannot approve its own
/// obligation; two people with the same name are two accounts.
async fn separation_of_duties_is_by_account(kind: &str) {
    let db = TestDb::of(kind).await;
    let load = kehoach(
        &db,
        &["--now", "2023-01-02", "plan", "load", "workflows/duc-pho-de-an-13.toml"],
    );
    assert!(load.status.success(), "{}", stderr(&load));
    let ubnd_member = cli_user(&db, "UBND", "Lê Văn Nghèo", "member");
    let ubnd_chief = cli_user(&db, "UBND", "Phạm Chủ Tịch", "supervisor");
    let report = kehoach(
        &db,
        &[
            "--now",
            "2023-11-01",
            "task",
            "submit",
            "II.2.1.4",
            "--milestone",
            "report-2023",
            "--user",
            &ubnd_member,
        ],
    );
    assert!(report.status.success(), "{}", stderr(&report));
    let before = event_count(&db).await;
    let refused = kehoach(
        &db,
        &[
            "--now",
            "2023-11-02",
            "task",
            "approve",
            "II.2.1.4",
            "--milestone",
            "report-2023",
            "--user",
            &ubnd_chief,
        ],
    );
    assert_eq!(refused.status.code(), Some(3), "{}", stderr(&refused));
    let err = stderr(&refused);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("UBND không được tự duyệt nghĩa vụ của chính mình"),
        "{err}"
    );
    assert_eq!(event_count(&db).await, before, "nothing written");

    // Two different people named Nguyễn Văn An: UBND's submits, BDV's approves.
    let an_ubnd = cli_user(&db, "UBND", "Nguyễn Văn An", "member");
    let an_bdv = cli_user(&db, "BDV", "Nguyễn Văn An", "supervisor");
    for (user, action, now) in [(&an_ubnd, "submit", "2024-03-20"), (&an_bdv, "approve", "2024-03-21")] {
        let out = kehoach(
            &db,
            &[
                "--now",
                now,
                "task",
                action,
                "III.1.2",
                "--milestone",
                "register-2024",
                "--user",
                user,
            ],
        );
        assert!(out.status.success(), "{action}: {}", stderr(&out));
    }
    let show = json_of(&kehoach(&db, &["--format", "json", "task", "show", "III.1.2"]));
    let o = obligation(&show, "register-2024", "UBND");
    assert_eq!(o["status"], "approved");
    assert_eq!(o["submitted"]["by"]["name"], o["approved"]["by"]["name"]);
    assert_ne!(o["submitted"]["by"]["account"], o["approved"]["by"]["account"]);
}
on_both_stores!(separation_by_account, separation_of_duties_is_by_account);

/// Every human action in the history names its account's e-mail and its
/// channel, whether it came from a page, the API or the command line.
async fn every_action_is_bound_to_an_account(kind: &str) {
    let app = App::shipped(kind, "2024-03-10").await;
    let web_user = app.user("UBND", "Trần Web", "member").await;
    let (cookie, csrf) = app.session(&web_user).await;
    let api_token = app.token("MTTQ", "Đỗ Api", "member").await;
    let cli_email = cli_user(app.db(), "CTXH", "Hồ Cli", "member");
    let task = "/tasks/duc-pho-de-an-13/III.1.2";

    let r = app
        .form(
            &format!("{task}/milestones/register-2024/report"),
            &cookie,
            &[("csrf", &csrf), ("agency", "UBND"), ("note", "Qua trang web")],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let r = app
        .post(
            "/api/tasks/III.1.2/milestones/register-2024/report",
            &api_token,
            &json!({ "note": "Qua API", "agency": "MTTQ" }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let out = kehoach(
        app.db(),
        &[
            "--now",
            "2024-03-10",
            "task",
            "report",
            "III.1.2",
            "--milestone",
            "register-2024",
            "--user",
            &cli_email,
            "--note",
            "Qua dòng lệnh",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));

    let history = json_of(&kehoach(app.db(), &["--format", "json", "audit", "history", "III.1.2"]));
    let people: Vec<&Value> = history["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["actor"]["account"].is_string())
        .collect();
    assert_eq!(people.len(), 3, "{people:?}");
    let by_channel = |channel: &str| -> &Value {
        people
            .iter()
            .find(|e| e["actor"]["channel"] == channel)
            .unwrap_or_else(|| panic!("no {channel} action"))
    };
    let web = by_channel("web");
    assert_eq!(web["actor"]["email"], web_user.email.as_str());
    assert_eq!(web["actor"]["account"], web_user.id.as_str());
    assert_eq!(
        web["actor"]["session"].as_str().unwrap().len(),
        32,
        "a hash of the session, not the cookie"
    );
    assert!(!cookie.contains(web["actor"]["session"].as_str().unwrap()));
    let api = by_channel("api");
    assert_eq!(api["actor"]["agency"], "MTTQ");
    assert_eq!(api["actor"]["token_label"], "test");
    assert!(
        !api_token.contains(api["actor"]["token"].as_str().unwrap()),
        "the token id is not the token"
    );
    let cli = by_channel("cli");
    assert_eq!(cli["actor"]["email"], cli_email.as_str());
    assert!(cli["actor"]["os_user"].as_str().is_some_and(|u| !u.is_empty()));
    assert!(cli["actor"]["host"].as_str().is_some_and(|h| !h.is_empty()));
    // The plan was loaded by the operator at this host; nothing is anonymous.
    let loaded = &history["timeline"][0]["actor"];
    assert_eq!(loaded["channel"], "cli");
    assert!(loaded["operator"].is_string() && loaded["host"].is_string(), "{loaded}");
    assert!(history["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["actor"]["channel"].is_string() && e["recorded_at"].is_string()));
}
on_both_stores!(actions_bound_to_accounts, every_action_is_bound_to_an_account);

/// A `serve` process on `db`, its port, and the process.
async fn serve_on(db: &TestDb, workdir: &std::path::Path) -> (u16, std::process::Child) {
    let port = free_port();
    let mut child = bin()
        .args(["--db", &db.url(), "serve", "--poll", "0.2", "--workflows"])
        .arg(workdir.join("workflows"))
        .env("KEHOACH_LISTEN", format!("127.0.0.1:{port}"))
        .env("KEHOACH_OUTBOX_DIR", workdir.join("outbox"))
        .env("KEHOACH_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    for _ in 0..300 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            && http(port, "GET", "/ready", &[], b"").await.status == 200
        {
            return (port, child);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("serve did not become ready");
}

/// How many events loads of a plan wrote (plan and task amendments, openings).
fn plan_loads(db: &TestDb) -> usize {
    let out = kehoach(db, &["--format", "jsonl", "audit", "export"]);
    assert!(out.status.success(), "{}", stderr(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| {
            let e: Value = serde_json::from_str(l).unwrap();
            matches!(
                e["event_type"].as_str(),
                Some("PlanRegistered" | "PlanAmended" | "TaskAmended" | "MilestoneAmended" | "MilestoneOpened")
            )
        })
        .count()
}

/// Stops `serve` as Ctrl-C would and returns what it logged.
fn stop(child: std::process::Child) -> String {
    // SAFETY: signalling our own child process.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// An administrator uploads a plan that gives UBND another address: the
/// change shows in the history of UBND's tasks with the admin's account, and
/// restarting `serve` keeps the uploaded plan instead of the file.
async fn plan_changes_are_attributed_and_kept(kind: &str) {
    let db = TestDb::of(kind).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("workflows")).unwrap();
    let text = std::fs::read_to_string(shipped_plan_path()).unwrap();
    std::fs::write(dir.path().join("workflows/duc-pho-de-an-13.toml"), &text).unwrap();
    let (port, serve) = serve_on(&db, dir.path()).await;

    let admin = cli_user(&db, "UBKT", "Phạm Thanh Tra", "admin,auditor");
    let token = json_of(&kehoach(
        &db,
        &["--format", "json", "token", "create", "--email", &admin],
    ))["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(text.contains("\"ubnd@ducpho.example\""));
    let uploaded = text.replace("\"ubnd@ducpho.example\"", "\"ubnd.moi@ducpho.example\"");
    let auth = format!("Bearer {token}");
    let r = http(
        port,
        "POST",
        "/api/plans",
        &[("Authorization", &auth), ("Content-Type", "application/toml")],
        uploaded.as_bytes(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);

    let history = json_of(&kehoach(&db, &["--format", "json", "audit", "history", "II.2.1.4"]));
    let change = history["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event"] == "PlanAmended")
        .unwrap_or_else(|| panic!("no directory change in {history}"));
    assert_eq!(change["actor"]["email"], admin.as_str());
    assert_eq!(change["actor"]["channel"], "api");
    let details = change["details"].as_str().unwrap();
    assert!(
        details.contains("Ủy ban nhân dân thị xã")
            && details.contains("ubnd@ducpho.example")
            && details.contains("ubnd.moi@ducpho.example"),
        "{details}"
    );
    assert!(details.contains("kế-hoạch-tải-lên.toml"), "{details}");
    // A task UBND is not on does not show it.
    let iv6 = json_of(&kehoach(&db, &["--format", "json", "audit", "history", "IV.6"]));
    assert!(!iv6["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["event"] == "PlanAmended"));

    // A restart keeps the plan loaded later through the web, and says so.
    let logged = stop(serve);
    assert!(!logged.contains("giữ kế hoạch"), "{logged}");
    let before = plan_loads(&db);
    let (port, serve) = serve_on(&db, dir.path()).await;
    let plans = http(port, "GET", "/api/plans", &[("Authorization", &auth)], b"")
        .await
        .json();
    assert_eq!(plans[0]["source"]["file"], "kế-hoạch-tải-lên.toml", "{plans}");
    assert_eq!(plans[0]["loaded"]["by"]["email"], admin.as_str());
    let logged = stop(serve);
    assert!(logged.contains("giữ kế hoạch đang có hiệu lực"), "{logged}");
    assert_eq!(plan_loads(&db), before, "nothing reverted");
    let verify = kehoach(&db, &["audit", "verify"]);
    assert!(verify.status.success(), "{}", stderr(&verify));
}
on_both_stores!(plan_changes_attributed, plan_changes_are_attributed_and_kept);
