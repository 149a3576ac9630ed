//! Tamper evidence on both stores: a scripted history verifies; each kind of
//! tampering is caught and pinned to the right event.

use crate::helpers::*;
use crate::on_both_stores;
use kehoach::audit::canonical::event_hash;
use kehoach::audit::verify::{verify, Problem};
use kehoach::domain::task::TaskAction;
use kehoach::engine::Engine;
use kehoach::store::Store;

/// Submissions, a return, an approval, an extension, reminders, checkpoints.
pub(crate) async fn scripted(kind: &str) -> (TestDb, Engine) {
    let db = TestDb::of(kind).await;
    let clock = clock("2023-01-05");
    let engine = db.engine(clock.clone()).await;
    engine.load_plan(&shipped_plan()).await.unwrap();
    engine.checkpoint().await.unwrap();
    clock.set(at("2024-03-20T09:00:00+07:00"));
    let m = || mid("register-2024");
    act(
        &engine,
        "III.1.2",
        "UBND",
        "Trần Thị B",
        TaskAction::Submit {
            milestone: m(),
            agency: None,
            note: "Đăng ký".into(),
            attachments: vec![],
        },
    )
    .await
    .unwrap();
    act(
        &engine,
        "III.1.2",
        "BDV",
        "Võ Văn E",
        TaskAction::Return {
            milestone: m(),
            agency: None,
            reason: "Thiếu minh chứng".into(),
        },
    )
    .await
    .unwrap();
    act(
        &engine,
        "III.1.2",
        "UBND",
        "Trần Thị B",
        TaskAction::Submit {
            milestone: m(),
            agency: None,
            note: "Đã bổ sung".into(),
            attachments: vec![],
        },
    )
    .await
    .unwrap();
    clock.set(at("2024-03-28T10:00:00+07:00"));
    act(
        &engine,
        "III.1.2",
        "BTV",
        "Nguyễn Kiên",
        TaskAction::Approve {
            milestone: m(),
            agency: None,
            note: String::new(),
        },
    )
    .await
    .unwrap();
    act(
        &engine,
        "II.1.2",
        "BTV",
        "Nguyễn Kiên",
        TaskAction::Extend {
            milestone: mid("complete"),
            agency: Some(kehoach::domain::ids::AgencyCode::parse("UBND").unwrap()),
            until: "2024-06-30".parse().unwrap(),
            reason: "Bổ sung nhiệm vụ".into(),
        },
    )
    .await
    .unwrap();
    clock.set(at("2024-03-29T08:00:00+07:00"));
    kehoach::scheduling::schedule(&engine, at("2024-03-29T08:00:00+07:00"))
        .await
        .unwrap();
    engine.checkpoint().await.unwrap();
    engine.catch_up().await.unwrap();
    (db, engine)
}

async fn problem(engine: &Engine) -> Problem {
    verify(&engine.store, |_| {})
        .await
        .unwrap()
        .expect_err("tampering must be detected")
}

/// Runs one statement against the store; `?`-free SQL written for both databases.
pub(crate) async fn sql(store: &Store, sqlite: &str, postgres: &str) {
    match store {
        Store::Sqlite(p) => sqlx::query(sqlite).execute(p).await.map(|_| ()).unwrap(),
        Store::Postgres(p) => sqlx::query(postgres).execute(p).await.map(|_| ()).unwrap(),
    }
}

async fn sequence_of(store: &Store, task: &str, event_type: &str) -> i64 {
    let q = "SELECT max(sequence) FROM events WHERE aggregate_id = $1 AND event_type = $2";
    let id = format!("duc-pho-de-an-13/{task}");
    match store {
        Store::Sqlite(p) => sqlx::query_scalar(q)
            .bind(id)
            .bind(event_type)
            .fetch_one(p)
            .await
            .unwrap(),
        Store::Postgres(p) => sqlx::query_scalar(q)
            .bind(id)
            .bind(event_type)
            .fetch_one(p)
            .await
            .unwrap(),
    }
}

fn assert_names(p: &Problem, task: &str, sequence: i64) {
    assert_eq!(
        (p.aggregate_id.as_str(), p.sequence),
        (format!("duc-pho-de-an-13/{task}").as_str(), sequence),
        "{p}"
    );
}

async fn a_clean_history_verifies(kind: &str) {
    let (_db, engine) = scripted(kind).await;
    let summary = verify(&engine.store, |_| {})
        .await
        .unwrap()
        .expect("clean store verifies");
    assert_eq!(summary.tasks, 45);
    assert_eq!(summary.checkpoints, 2);
    assert!(summary.events > 250);
    assert_eq!(summary.views, 45);
}
on_both_stores!(clean_history, a_clean_history_verifies);

async fn events_are_stored_in_canonical_form_and_other_layouts_still_verify(kind: &str) {
    let (_db, engine) = scripted(kind).await;
    // What kehoach writes is the canonical text itself.
    for e in all_events(&engine).await {
        let canonical = kehoach::audit::canonical::canonical_json(&e.payload_value().unwrap());
        assert_eq!(e.payload, canonical, "{} #{}", e.aggregate_id, e.sequence);
    }
    // The same content laid out differently (as a tool might rewrite it)
    // is not tampering: verify parses it and finds the same hash.
    sql(
        &engine.store,
        "UPDATE events SET payload = ' ' || payload || ' ', metadata = metadata || '  '",
        "UPDATE events SET payload = (' ' || payload::text || ' ')::json, metadata = (metadata::jsonb)::json",
    )
    .await;
    let respaced = all_events(&engine).await;
    assert!(
        respaced.iter().all(|e| e.payload.starts_with(' ')),
        "the layout really changed"
    );
    let summary = verify(&engine.store, |_| {})
        .await
        .unwrap()
        .expect("same content verifies");
    assert_eq!(summary.events as usize, respaced.len());
}
on_both_stores!(
    canonical_storage,
    events_are_stored_in_canonical_form_and_other_layouts_still_verify
);

async fn an_edited_payload_is_caught(kind: &str) {
    let (_db, engine) = scripted(kind).await;
    let seq = sequence_of(&engine.store, "III.1.2", "MilestoneReturned").await;
    sql(
        &engine.store,
        "UPDATE events SET payload = replace(payload, 'Thiếu minh chứng', 'Không có gì') WHERE event_type = 'MilestoneReturned'",
        "UPDATE events SET payload = replace(payload::text, 'Thiếu minh chứng', 'Không có gì')::json WHERE event_type = 'MilestoneReturned'",
    )
    .await;
    let p = problem(&engine).await;
    assert_names(&p, "III.1.2", seq);
    assert!(p.what.contains("bị sửa"), "{p}");
}
on_both_stores!(edited_payload, an_edited_payload_is_caught);

async fn edited_metadata_is_caught(kind: &str) {
    let (_db, engine) = scripted(kind).await;
    let seq = sequence_of(&engine.store, "III.1.2", "MilestoneApproved").await;
    // The actor of the approval, as an insider might "correct" it.
    sql(
        &engine.store,
        "UPDATE events SET metadata = replace(metadata, 'Nguyễn Kiên', 'Người khác') WHERE event_type = 'MilestoneApproved'",
        "UPDATE events SET metadata = replace(metadata::text, 'Nguyễn Kiên', 'Người khác')::json WHERE event_type = 'MilestoneApproved'",
    )
    .await;
    assert_names(&problem(&engine).await, "III.1.2", seq);
}
on_both_stores!(edited_metadata, edited_metadata_is_caught);

async fn an_event_deleted_from_the_middle_is_caught(kind: &str) {
    let (_db, engine) = scripted(kind).await;
    let seq = sequence_of(&engine.store, "III.1.2", "MilestoneReturned").await;
    let del = format!("DELETE FROM events WHERE aggregate_id = 'duc-pho-de-an-13/III.1.2' AND sequence = {seq}");
    sql(&engine.store, &del, &del).await;
    let p = problem(&engine).await;
    assert_names(&p, "III.1.2", seq);
    assert!(
        p.what.contains("thiếu sự kiện") && p.found.contains(&(seq + 1).to_string()),
        "{p}"
    );
}
on_both_stores!(deleted_middle, an_event_deleted_from_the_middle_is_caught);

async fn the_last_events_deleted_are_caught(kind: &str) {
    let (_db, engine) = scripted(kind).await;
    let last = sequence_of(&engine.store, "III.1.2", "MilestoneApproved").await;
    let del = format!("DELETE FROM events WHERE aggregate_id = 'duc-pho-de-an-13/III.1.2' AND sequence >= {last}");
    sql(&engine.store, &del, &del).await;
    // The chain itself is still consistent; the checkpoint taken after it is not.
    let p = problem(&engine).await;
    assert_names(&p, "III.1.2", last);
    assert!(p.what.contains("bị xóa"), "{p}");
}
on_both_stores!(deleted_last, the_last_events_deleted_are_caught);

async fn reordered_events_are_caught(kind: &str) {
    let (_db, engine) = scripted(kind).await;
    let seq = sequence_of(&engine.store, "III.1.2", "MilestoneReturned").await;
    let id = "duc-pho-de-an-13/III.1.2";
    for stmt in [
        format!("UPDATE events SET sequence = 1000000 WHERE aggregate_id = '{id}' AND sequence = {seq}"),
        format!(
            "UPDATE events SET sequence = {seq} WHERE aggregate_id = '{id}' AND sequence = {}",
            seq + 1
        ),
        format!(
            "UPDATE events SET sequence = {} WHERE aggregate_id = '{id}' AND sequence = 1000000",
            seq + 1
        ),
    ] {
        sql(&engine.store, &stmt, &stmt).await;
    }
    assert_names(&problem(&engine).await, "III.1.2", seq);
}
on_both_stores!(reordered, reordered_events_are_caught);

/// Rewrites II.1.2's whole chain as an insider could, hashes and all,
/// moving its first milestone's deadline: every link still checks.
pub(crate) async fn rewrite_ii_1_2(engine: &Engine) {
    let id = "duc-pho-de-an-13/II.1.2";
    let events: Vec<kehoach::store::feed::FeedEvent> = all_events(engine)
        .await
        .into_iter()
        .filter(|e| e.aggregate_id == id)
        .collect();
    let mut prev = String::new();
    for e in &events {
        let mut payload = e.payload_value().unwrap();
        if e.sequence == 2 {
            payload["MilestoneOpened"]["milestone"]["due"] = serde_json::json!("2026-12-31");
        }
        let hash = event_hash(
            &prev,
            &e.aggregate_type,
            id,
            e.sequence,
            &e.event_type,
            &e.event_version,
            &payload,
            &e.metadata_value().unwrap(),
        );
        let text = payload.to_string().replace('\'', "''");
        let sqlite = format!(
            "UPDATE events SET payload = '{text}', prev_hash = '{prev}', hash = '{hash}' WHERE aggregate_id = '{id}' AND sequence = {}",
            e.sequence
        );
        let postgres = sqlite.replace("SET payload = '", "SET payload = json '");
        sql(&engine.store, &sqlite, &postgres).await;
        prev = hash;
    }
}

/// The rewritten chain checks link by link, but the checkpoint remembers its old head.
async fn a_consistently_rewritten_chain_is_caught_by_the_checkpoint(kind: &str) {
    let (_db, engine) = scripted(kind).await;
    let id = "duc-pho-de-an-13/II.1.2";
    rewrite_ii_1_2(&engine).await;
    let p = problem(&engine).await;
    assert_eq!(p.aggregate_id, id, "{p}");
    assert!(p.what.contains("viết lại"), "{p}");
}
on_both_stores!(
    rewritten_chain,
    a_consistently_rewritten_chain_is_caught_by_the_checkpoint
);

#[test]
fn audit_verify_from_the_cli_fails_with_exit_5_and_one_line() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (db, engine) = rt.block_on(scripted("sqlite"));
    let ok = kehoach(&db, &["audit", "verify"]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    assert!(stdout(&ok).contains("Hợp lệ"), "{}", stdout(&ok));
    rt.block_on(sql(
        &engine.store,
        "UPDATE events SET payload = replace(payload, 'Đã bổ sung', 'Sửa') WHERE event_type = 'MilestoneSubmitted'",
        "",
    ));
    let bad = kehoach(&db, &["audit", "verify"]);
    assert_eq!(bad.status.code(), Some(5));
    let err = stderr(&bad);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("duc-pho-de-an-13/III.1.2 #"), "{err}");
}

fn json_of(out: &std::process::Output) -> serde_json::Value {
    assert!(out.status.success(), "{}", stderr(out));
    serde_json::from_slice(&out.stdout).expect("JSON output")
}

/// The status of UBND's obligation on a milestone of a replayed state.
fn milestone_status(state: &serde_json::Value, id: &str) -> String {
    state["milestones"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == id)
        .unwrap()["obligations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["agency"] == "UBND")
        .unwrap()["status"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn history_as_of_shows_that_days_state(kind: &str) {
    let (db, _engine) = scripted(kind).await;
    let before = json_of(&kehoach(
        &db,
        &[
            "--format",
            "json",
            "audit",
            "history",
            "III.1.2",
            "--as-of",
            "2024-03-15",
        ],
    ));
    assert_eq!(milestone_status(&before["state"], "register-2024"), "open");
    assert!(before["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["at"].as_str().unwrap() < "2024-03-16"));
    let mid_way = json_of(&kehoach(
        &db,
        &[
            "--format",
            "json",
            "audit",
            "history",
            "III.1.2",
            "--as-of",
            "2024-03-21",
        ],
    ));
    assert_eq!(milestone_status(&mid_way["state"], "register-2024"), "submitted");
    let events: Vec<&str> = mid_way["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert!(
        events.contains(&"MilestoneReturned") && !events.contains(&"MilestoneApproved"),
        "{events:?}"
    );
    let now = json_of(&kehoach(&db, &["--format", "json", "audit", "history", "III.1.2"]));
    let last = now["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event"] == "MilestoneApproved")
        .unwrap();
    assert_eq!(last["actor"]["name"], "Nguyễn Kiên");
    assert_eq!(last["actor"]["agency"], "BTV");
    assert_eq!(last["actor"]["channel"], "cli");
    assert!(last["actor"]["email"].as_str().unwrap().ends_with("@ducpho.example"));
    assert!(last["actor"]["account"].as_str().is_some_and(|a| !a.is_empty()));
    assert_eq!(last["hash"].as_str().unwrap().len(), 64);
    // Text and CSV, as inspectors read them.
    let text = kehoach(&db, &["audit", "history", "III.1.2", "--as-of", "2024-03-21"]);
    assert!(
        stdout(&text).contains("Trạng thái tại 21/03/2024 23:59"),
        "{}",
        stdout(&text)
    );
    let csv = kehoach(&db, &["--format", "csv", "audit", "history", "III.1.2"]);
    assert!(stdout(&csv).starts_with("Số thứ tự,Thời điểm,Người thực hiện,Việc,Chi tiết,Mã băm,Kho ghi lúc\n"));

    let plan = json_of(&kehoach(
        &db,
        &[
            "--format",
            "json",
            "audit",
            "plan",
            "--as-of",
            "2024-03-31",
            "--since",
            "2024-03-01",
        ],
    ));
    let changes = plan["changes"].as_array().unwrap();
    assert!(changes.iter().any(|c| c["task"] == "III.1.2"
        && c["milestone"] == "register-2024"
        && c["agency"] == "UBND"
        && c["status"] == "approved"));
    assert!(
        changes
            .iter()
            .any(|c| c["task"] == "II.1.2" && c["due"] == "2024-06-30"),
        "the extension shows as a change"
    );
    let ubnd = &plan["agencies"]["UBND"];
    assert!(
        ubnd["on_time"].as_u64().unwrap() >= 1 && ubnd["overdue"].as_u64().unwrap() >= 1,
        "{ubnd}"
    );
}
on_both_stores!(history_as_of, history_as_of_shows_that_days_state);

/// The independent Python verifier agrees with `audit verify`.
async fn the_python_verifier_agrees(kind: &str) {
    let (db, engine) = scripted(kind).await;
    // A small float, which JSON writers spell differently: the canonical form fixes one spelling.
    // (A percentage: a count of models must be whole.)
    let kpi = kehoach::domain::task::KpiValue {
        key: kehoach::domain::ids::KpiKey::parse("dan-van-trong-chuong-trinh").unwrap(),
        value: 0.00005,
    };
    let report = TaskAction::ReportProgress {
        milestone: mid("report-2024"),
        agency: None,
        note: "Số nhỏ".into(),
        kpis: vec![kpi],
        evidence: vec![],
        attachments: vec![],
    };
    act(&engine, "II.2.1.1", "UBND", "Trần Thị B", report).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let export = |name: &str| {
        let path = dir.path().join(name);
        let out = kehoach(
            &db,
            &[
                "audit",
                "export",
                "--format",
                "jsonl",
                "--output",
                path.to_str().unwrap(),
            ],
        );
        assert!(out.status.success(), "{}", stderr(&out));
        path
    };
    let python_verify = |path: &std::path::Path| {
        std::process::Command::new(python())
            .arg(repo_root().join("docs/audit/verify.py"))
            .arg(path)
            .output()
            .expect("run verify.py")
    };
    let clean = python_verify(&export("clean.jsonl"));
    assert!(clean.status.success(), "{}{}", stdout(&clean), stderr(&clean));
    assert!(kehoach(&db, &["audit", "verify"]).status.success());

    sql(
        &engine.store,
        "UPDATE events SET metadata = replace(metadata, 'Nguyễn Kiên', 'Người khác') WHERE event_type = 'MilestoneApproved'",
        "UPDATE events SET metadata = replace(metadata::text, 'Nguyễn Kiên', 'Người khác')::json WHERE event_type = 'MilestoneApproved'",
    )
    .await;
    let tampered = python_verify(&export("tampered.jsonl"));
    assert_eq!(
        tampered.status.code(),
        Some(1),
        "{}{}",
        stdout(&tampered),
        stderr(&tampered)
    );
    assert!(stdout(&tampered).contains("III.1.2"), "{}", stdout(&tampered));
    assert_eq!(kehoach(&db, &["audit", "verify"]).status.code(), Some(5));
}
on_both_stores!(python_verifier, the_python_verifier_agrees);

/// The verifier's own tests (Python's unittest), run with the Rust suite.
#[test]
fn the_python_verifier_passes_its_own_tests() {
    let out = std::process::Command::new(python())
        .args(["-m", "unittest", "docs/audit/test_verify.py"])
        .current_dir(repo_root())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("run python unittest");
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
}

/// The Inspection Committee's e-mails carry the latest checkpoint root, so
/// roots leave the system and a later rewrite cannot match them.
#[test]
fn inspectors_receive_the_latest_root_by_email() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (db, _engine) = rt.block_on(scripted("sqlite"));
    let verified = json_of(&kehoach(&db, &["--format", "json", "audit", "verify"]));
    let root = verified["summary"]["last_root"].as_str().unwrap().to_string();
    let smtp = SmtpServer::start();
    let out = bin()
        .args([
            "--db",
            &db.url(),
            "--now",
            "2024-04-08T08:00:00+07:00",
            "remind",
            "--once",
        ])
        .env("KEHOACH_SMTP_URL", smtp.url())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let messages = smtp.messages();
    let ubkt: Vec<&serde_json::Value> = messages
        .iter()
        .filter(|m| {
            m["rcpt_to"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a == "ubkt@ducpho.example")
        })
        .collect();
    assert!(!ubkt.is_empty(), "UBKT gets escalations");
    assert!(
        ubkt.iter().all(|m| m["text"].as_str().unwrap().contains(&root)),
        "root {root} in UBKT's mail"
    );
    // And how to use it, in both parts.
    let command = format!("kehoach audit verify --root {root}");
    for m in &ubkt {
        for part in ["text", "html"] {
            let body = m[part].as_str().unwrap();
            assert!(
                body.contains(&command) && body.contains("lưu giữ"),
                "{part} part says how to use the root: {body}"
            );
        }
    }
    // The command as the e-mail gives it passes on this store.
    let out = kehoach(&db, &["audit", "verify", "--root", &root]);
    assert!(out.status.success(), "{}", stderr(&out));
    let others = messages.iter().filter(|m| {
        !m["rcpt_to"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "ubkt@ducpho.example")
    });
    assert!(others.clone().count() > 0 && others.into_iter().all(|m| !m["text"].as_str().unwrap().contains(&root)));
}

/// The review reports: the year's report shows that year's state, the
/// five-year review covers the period, both name the checkpoint root, and
/// the five-year review renders in a real browser (screenshot kept as an
/// artifact in target/test-artifacts/).
#[test]
fn review_reports_read_as_reports() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (db, _engine) = rt.block_on(scripted("sqlite"));
    let dir = tempfile::tempdir().unwrap();
    let year = dir.path().join("2024.html");
    let out = kehoach(
        &db,
        &[
            "--now",
            "2026-01-15",
            "report",
            "review",
            "--year",
            "2024",
            "--output",
            year.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let html = std::fs::read_to_string(&year).unwrap();
    assert!(
        html.contains("Báo cáo đánh giá kết quả thực hiện Kế hoạch năm 2024") || html.contains("BÁO CÁO ĐÁNH GIÁ"),
        "title"
    );
    assert!(
        html.contains("Đăng ký xây dựng, nhân rộng mô hình “Dân vận khéo” năm 2024") && html.contains("Nguyễn Kiên"),
        "the approval and who approved it"
    );
    assert!(
        html.contains("Dữ liệu đã được kiểm tra toàn vẹn"),
        "integrity statement"
    );
    assert!(html.contains("<svg"), "charts");
    assert!(
        !html.contains("Đăng ký xây dựng, nhân rộng mô hình “Dân vận khéo” năm 2025"),
        "a yearly report keeps to its year"
    );
    assert!(!html.contains("register-2024"), "milestones by title, not id");

    let period = dir.path().join("period.html");
    let out = kehoach(
        &db,
        &[
            "--now",
            "2026-01-15",
            "report",
            "review",
            "--period",
            "--output",
            period.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let root = json_of(&kehoach(&db, &["--format", "json", "audit", "verify"]))["summary"]["last_root"]
        .as_str()
        .unwrap()
        .to_string();
    let html = std::fs::read_to_string(&period).unwrap();
    assert!(html.contains(&root), "the report states the root it was produced from");

    let artifacts = repo_root().join("target/test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let shot = artifacts.join("review-period.png");
    let _ = std::fs::remove_file(&shot);
    let profile = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1000,1400",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", period.display()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("chromium is required (scripts/test-services installs it)");
    assert!(status.success());
    let size = std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0);
    assert!(size > 20_000, "a rendered page, not a blank one ({size} bytes)");
}
