//! Trustworthy time on both stores: simulated time belongs to simulation
//! stores only; every event carries the time the database recorded it,
//! covered by the hash chain; `audit verify` catches recorded times that go
//! back and production claims far from their recorded time.

use crate::helpers::*;
use crate::on_both_stores;
use kehoach::audit::canonical::event_hash;
use kehoach::audit::verify::verify;
use kehoach::engine::Engine;
use kehoach::store::info::StoreMode;
use kehoach::store::Store;
use serde_json::Value;

const PLAN: &str = "workflows/duc-pho-de-an-13.toml";

fn ok(out: &std::process::Output) -> String {
    assert!(out.status.success(), "{}{}", stdout(out), stderr(out));
    stdout(out)
}

/// A refusal for simulated time: exit 2, one line naming why.
fn refused(out: &std::process::Output, what: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(2), "{what}: {err}{}", stdout(out));
    assert_eq!(err.trim().lines().count(), 1, "{what}: {err}");
    assert!(
        err.contains("--now") && err.contains("kho mô phỏng") && err.contains("kho thật"),
        "{what}: {err}"
    );
}

async fn events(db: &TestDb) -> Vec<kehoach::store::feed::FeedEvent> {
    let store = Store::open(&db.db_url()).await.unwrap();
    assert_eq!(store.settle(std::time::Duration::from_secs(30)).await.unwrap(), None);
    let events = store.read_feed(Default::default(), 100_000).await.unwrap();
    store.close().await;
    events
}

async fn simulated_time_is_refused_on_a_production_store(kind: &str) {
    let db = TestDb::production(kind).await;
    // A new store with --now: refused before anything is written, so it can
    // still be made a simulation store later.
    refused(
        &kehoach(&db, &["--now", "2024-01-05", "plan", "load", PLAN]),
        "plan load on a new store",
    );
    assert_eq!(event_count(&db).await, 0);

    // Without --now the store becomes a production store.
    ok(&kehoach(&db, &["plan", "load", PLAN]));
    let mttq = cli_user(&db, "MTTQ", "Hồ Thị Mặt", "member");
    let bdv = cli_user(&db, "BDV", "Nguyễn Văn An", "supervisor");
    let before = event_count(&db).await;
    let users = ok(&kehoach(&db, &["--format", "json", "user", "list"]));
    let now = "2024-03-20T09:00:00+07:00";
    let acting = ["II.1.2", "--milestone", "complete", "--user", &mttq];
    let deciding = ["II.1.2", "--milestone", "complete", "--user", &bdv, "--agency", "MTTQ"];
    let writes: Vec<Vec<&str>> = vec![
        vec!["plan", "load", PLAN],
        [&["task", "report"][..], &acting, &["--note", "x"]].concat(),
        [&["task", "submit"][..], &acting].concat(),
        [&["task", "approve"][..], &deciding].concat(),
        [&["task", "return"][..], &deciding, &["--reason", "x"]].concat(),
        [
            &["task", "extend"][..],
            &deciding,
            &["--until", "2024-12-31", "--reason", "x"],
        ]
        .concat(),
        [&["task", "waive"][..], &deciding, &["--reason", "x"]].concat(),
        [&["task", "cancel"][..], &deciding, &["--reason", "x"]].concat(),
        vec!["remind", "--once"],
        vec!["simulate", "--until", "2024-04-01"],
        vec!["audit", "checkpoint"],
        vec!["serve", "--listen", "127.0.0.1:0"],
        vec![
            "user",
            "add",
            "--agency",
            "BDV",
            "--name",
            "Nguyễn Văn An",
            "--email",
            "an@bdv.example",
            "--role",
            "supervisor",
        ],
        vec!["user", "link", "--email", "an@bdv.example"],
        vec!["token", "create", "--email", "an@bdv.example"],
        vec!["store", "init"],
    ];
    for args in &writes {
        let mut with_now = vec!["--now", now];
        with_now.extend(args);
        refused(&kehoach(&db, &with_now), &args.join(" "));
    }
    // KEHOACH_NOW is the same flag.
    let env = bin()
        .args(["--db", &db.url(), "plan", "load", PLAN])
        .env("KEHOACH_NOW", now)
        .output()
        .unwrap();
    refused(&env, "KEHOACH_NOW plan load");
    // simulate moves its own clock: refused on a production store even without --now.
    let simulate = kehoach(&db, &["simulate", "--until", "2030-01-01"]);
    assert_eq!(simulate.status.code(), Some(2), "{}", stderr(&simulate));
    assert!(stderr(&simulate).contains("kho mô phỏng"), "{}", stderr(&simulate));
    // A production store cannot become a simulation store.
    let init = kehoach(&db, &["store", "init", "--simulation"]);
    assert_eq!(init.status.code(), Some(2), "{}", stderr(&init));
    assert!(stderr(&init).contains("đã được tạo là kho thật"), "{}", stderr(&init));

    assert_eq!(event_count(&db).await, before, "nothing written");
    assert_eq!(ok(&kehoach(&db, &["--format", "json", "user", "list"])), users);

    // Reading with --now is fine.
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("review.html");
    let reads: Vec<Vec<&str>> = vec![
        vec!["task", "list"],
        vec!["task", "show", "II.1.2"],
        vec!["audit", "history", "II.1.2"],
        vec!["audit", "plan", "--as-of", "2024-03-31"],
        vec!["audit", "verify"],
        vec!["--format", "jsonl", "audit", "export"],
        vec!["outbox", "list"],
        vec![
            "report",
            "review",
            "--year",
            "2024",
            "--output",
            report.to_str().unwrap(),
        ],
        vec!["views", "rebuild"],
        vec!["user", "list"],
    ];
    for args in &reads {
        let mut with_now = vec!["--now", now];
        with_now.extend(args);
        ok(&kehoach(&db, &with_now));
    }
    assert!(!std::fs::read_to_string(&report).unwrap().contains("MÔ PHỎNG"));
    let verified = ok(&kehoach(&db, &["--format", "json", "audit", "verify"]));
    let verified: Value = serde_json::from_str(&verified).unwrap();
    assert_eq!(verified["summary"]["store"], "kho thật");
    assert_eq!(event_count(&db).await, before);
    // Production events carry no simulation mark.
    assert!(events(&db)
        .await
        .iter()
        .all(|e| e.metadata_value().unwrap().get("simulated").is_none()));
}
on_both_stores!(now_on_production, simulated_time_is_refused_on_a_production_store);

async fn a_simulation_store_marks_every_event(kind: &str) {
    let db = TestDb::production(kind).await;
    let init = ok(&kehoach(&db, &["--now", "2024-01-05", "store", "init", "--simulation"]));
    assert!(init.contains("kho mô phỏng"), "{init}");
    let again = ok(&kehoach(&db, &["store", "init", "--simulation"]));
    assert!(again.contains("không ghi gì"), "{again}");
    ok(&kehoach(&db, &["--now", "2024-01-05", "plan", "load", PLAN]));
    let mttq = cli_user(&db, "MTTQ", "Hồ Thị Mặt", "member");
    ok(&kehoach(
        &db,
        &[
            "--now",
            "2024-03-20T09:00:00+07:00",
            "task",
            "submit",
            "II.1.2",
            "--milestone",
            "complete",
            "--user",
            &mttq,
        ],
    ));
    // E-mails as files in a Maildir's new/, for Python's parser.
    let outbox = tempfile::tempdir().unwrap();
    let remind = bin()
        .args([
            "--db",
            &db.url(),
            "--now",
            "2024-03-29T08:00:00+07:00",
            "remind",
            "--once",
        ])
        .env("KEHOACH_OUTBOX_DIR", outbox.path().join("new"))
        .output()
        .unwrap();
    ok(&remind);
    ok(&kehoach(&db, &["--now", "2024-04-01", "audit", "checkpoint"]));

    let all = events(&db).await;
    assert_eq!(
        (all[0].aggregate_type.as_str(), all[0].event_type.as_str()),
        ("Store", "StoreInitialised"),
        "the store's first event says what it is"
    );
    let mut previous: Option<String> = None;
    for e in &all {
        let m = e.metadata_value().unwrap();
        assert_eq!(
            m["simulated"],
            Value::Bool(true),
            "{} #{}: {m}",
            e.aggregate_id,
            e.sequence
        );
        let recorded = m["recorded_at"].as_str().unwrap_or_else(|| panic!("recorded_at: {m}"));
        let t = chrono::DateTime::parse_from_rfc3339(recorded).unwrap();
        assert!(recorded.ends_with('Z') && recorded.len() == 24, "{recorded}");
        // These commands ran one after the other. On SQLite the feed order is
        // the order of the clock readings, so recorded times never go back.
        // On PostgreSQL the feed is ordered by transaction id, and `remind`
        // queues reminders for several tasks side by side
        // (`scheduling::schedule`): one transaction may take its id before
        // another yet read the clock after it. A step back of a few
        // milliseconds is allowed there, as docs/operations.md says ("Recorded
        // time"); `audit verify` refuses steps back beyond 5 s.
        if let Some(p) = &previous {
            let slack = if kind == "postgres" {
                chrono::Duration::seconds(1)
            } else {
                chrono::Duration::zero()
            };
            assert!(
                t + slack >= chrono::DateTime::parse_from_rfc3339(p).unwrap(),
                "{p} then {recorded}"
            );
        }
        previous = Some(recorded.to_string());
        // The claimed time is the simulated one, not the recorded one.
        if e.aggregate_id.ends_with("II.1.2") && e.event_type == "MilestoneSubmitted" {
            assert!(m["at"].as_str().unwrap().starts_with("2024-03-20T02:00:00"), "{m}");
        }
    }
    let verified: Value = serde_json::from_str(&ok(&kehoach(&db, &["--format", "json", "audit", "verify"]))).unwrap();
    assert_eq!(verified["summary"]["store"], "kho mô phỏng");

    // recorded_at in the history (json, csv, text) and in the export.
    let history: Value =
        serde_json::from_str(&ok(&kehoach(&db, &["--format", "json", "audit", "history", "II.1.2"]))).unwrap();
    assert!(history["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["recorded_at"].as_str().is_some_and(|r| r.len() == 29)));
    let csv = ok(&kehoach(&db, &["--format", "csv", "audit", "history", "II.1.2"]));
    assert!(csv.starts_with("Số thứ tự,Thời điểm,Người thực hiện,Việc,Chi tiết,Mã băm,Kho ghi lúc\n"));
    // The store's time in the plan's zone, to the millisecond: dd/mm/yyyy HH:MM:SS,mmm.
    let shape = regex::Regex::new(r#","\d{2}/\d{2}/\d{4} \d{2}:\d{2}:\d{2},\d{3}"$"#).unwrap();
    assert!(shape.is_match(csv.lines().nth(1).unwrap()), "{csv}");
    let text = ok(&kehoach(&db, &["audit", "history", "II.1.2"]));
    assert!(text.contains("Kho ghi lúc"), "{text}");
    let export = ok(&kehoach(&db, &["--format", "jsonl", "audit", "export"]));
    assert!(export.contains("\"recorded_at\"") && export.contains("\"simulated\":true"));

    // The marks people see.
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("review.html");
    ok(&kehoach(
        &db,
        &[
            "report",
            "review",
            "--year",
            "2024",
            "--output",
            report.to_str().unwrap(),
        ],
    ));
    assert!(std::fs::read_to_string(&report).unwrap().contains("MÔ PHỎNG"));
    let parsed = std::process::Command::new(python())
        .arg(repo_root().join("tests/support/parse_eml.py"))
        .arg(outbox.path())
        .output()
        .unwrap();
    let mails: Value = serde_json::from_slice(&ok(&parsed).into_bytes()).unwrap();
    let mails = mails.as_array().unwrap();
    assert!(!mails.is_empty(), "reminders were written");
    for m in mails {
        assert!(
            m["subject"].as_str().unwrap().starts_with("[MÔ PHỎNG] "),
            "{}",
            m["subject"]
        );
        assert!(m["text"].as_str().unwrap().contains("MÔ PHỎNG") && m["html"].as_str().unwrap().contains("MÔ PHỎNG"));
    }
}
on_both_stores!(simulation_marks, a_simulation_store_marks_every_event);

/// `simulate` on a database with no events makes it a simulation store.
#[test]
fn simulate_creates_a_simulation_store() {
    let db = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(TestDb::production("sqlite"));
    let outbox = tempfile::tempdir().unwrap();
    let out = bin()
        .args([
            "--db",
            &db.url(),
            "--now",
            "2024-03-01",
            "simulate",
            "--until",
            "2024-03-02",
        ])
        .env("KEHOACH_OUTBOX_DIR", outbox.path())
        .output()
        .unwrap();
    ok(&out);
    ok(&kehoach(&db, &["--now", "2024-03-01", "plan", "load", PLAN]));
    let verify = ok(&kehoach(&db, &["audit", "verify"]));
    assert!(verify.contains("kho mô phỏng"), "{verify}");
}

/// Rewrites one aggregate's chain with `change` applied to the metadata of
/// event `sequence`, re-hashing the chain so that only what the change
/// means can be caught.
async fn rewrite_metadata(engine: &Engine, id: &str, sequence: i64, change: impl Fn(&mut Value)) {
    let events: Vec<_> = all_events(engine)
        .await
        .into_iter()
        .filter(|e| e.aggregate_id == id)
        .collect();
    let mut prev = String::new();
    for e in &events {
        let mut metadata = e.metadata_value().unwrap();
        if e.sequence == sequence {
            change(&mut metadata);
        }
        let hash = event_hash(
            &prev,
            &e.aggregate_type,
            id,
            e.sequence,
            &e.event_type,
            &e.event_version,
            &e.payload_value().unwrap(),
            &metadata,
        );
        let text = metadata.to_string().replace('\'', "''");
        let update = format!(
            "UPDATE events SET metadata = '{text}', prev_hash = '{prev}', hash = '{hash}' WHERE aggregate_id = '{id}' AND sequence = {}",
            e.sequence
        );
        match &engine.store {
            Store::Sqlite(p) => sqlx::query(&update).execute(p).await.map(|_| ()),
            Store::Postgres(p) => sqlx::query(&update.replace("SET metadata = '", "SET metadata = json '"))
                .execute(p)
                .await
                .map(|_| ()),
        }
        .unwrap();
        prev = hash;
    }
}

async fn a_recorded_time_moved_back_is_caught(kind: &str) {
    let db = TestDb::of(kind).await;
    let engine = db.engine(clock("2024-01-05")).await;
    engine.load_plan(&shipped_plan()).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    act(
        &engine,
        "II.1.2",
        "MTTQ",
        "Hồ Thị Mặt",
        kehoach::domain::task::TaskAction::Submit {
            milestone: mid("complete"),
            agency: None,
            note: String::new(),
            attachments: vec![],
        },
    )
    .await
    .unwrap();
    engine.catch_up().await.unwrap();
    assert!(verify(&engine.store, |_| {}).await.unwrap().is_ok());

    // The submission claims it was recorded an hour earlier: re-hashed, the
    // chain still holds, but the recorded time goes back in feed order.
    let id = "duc-pho-de-an-13/II.1.2";
    let last = all_events(&engine)
        .await
        .into_iter()
        .filter(|e| e.aggregate_id == id)
        .count() as i64;
    rewrite_metadata(&engine, id, last, |m| {
        let t = chrono::DateTime::parse_from_rfc3339(m["recorded_at"].as_str().unwrap()).unwrap();
        let earlier = (t - chrono::Duration::hours(1)).with_timezone(&chrono::Utc);
        m["recorded_at"] = Value::from(earlier.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string());
    })
    .await;
    let p = verify(&engine.store, |_| {}).await.unwrap().expect_err("caught");
    assert_eq!((p.aggregate_id.as_str(), p.sequence), (id, last), "{p}");
    assert!(p.what.contains("lùi lại"), "{p}");
    let out = kehoach(&db, &["audit", "verify"]);
    assert_eq!(out.status.code(), Some(5));
    let err = stderr(&out);
    assert!(
        err.trim().lines().count() == 1 && err.contains("II.1.2 #") && err.contains("lùi lại"),
        "{err}"
    );
}
on_both_stores!(recorded_time_moved_back, a_recorded_time_moved_back_is_caught);

/// On a production store, an action that claims a time far from when the
/// store recorded it is a backdated (or postdated) claim.
async fn a_backdated_claim_on_a_production_store_is_caught(kind: &str) {
    let db = TestDb::production(kind).await;
    // An engine whose clock is off by a year writes to a production store.
    let engine = db.engine(clock("2023-01-05")).await;
    engine.load_plan(&shipped_plan()).await.unwrap();
    assert_eq!(engine.mode(), StoreMode::Production);
    let p = verify(&engine.store, |_| {}).await.unwrap().expect_err("caught");
    assert!(p.what.contains("lệch quá 10 phút"), "{p}");
    assert!(p.found.starts_with("2023-01-0"), "{p}");
    let out = kehoach(&db, &["audit", "verify"]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    // The same on a simulation store is what simulations are for.
    let sim = TestDb::of(kind).await;
    let engine = sim.engine(clock("2023-01-05")).await;
    engine.load_plan(&shipped_plan()).await.unwrap();
    engine.catch_up().await.unwrap();
    assert!(verify(&engine.store, |_| {}).await.unwrap().is_ok());
}
on_both_stores!(backdated_claim, a_backdated_claim_on_a_production_store_is_caught);

/// The kind of store is kept in a table and in the hashed event: changing
/// the table is caught.
async fn a_changed_store_kind_is_caught(kind: &str) {
    let db = TestDb::of(kind).await;
    let engine = db.engine(clock("2024-01-05")).await;
    engine.load_plan(&shipped_plan()).await.unwrap();
    engine.catch_up().await.unwrap();
    assert!(verify(&engine.store, |_| {}).await.unwrap().is_ok());
    let flip = "UPDATE store_info SET simulation = false";
    kehoach::with_pool!(&engine.store, p => sqlx::query(flip).execute(p).await.map(|_| ())).unwrap();
    let p = verify(&engine.store, |_| {}).await.unwrap().expect_err("caught");
    assert_eq!(p.aggregate_type, "Store", "{p}");
}
on_both_stores!(changed_store_kind, a_changed_store_kind_is_caught);

/// A store made by the release before store kinds: production ("kho cũ"),
/// it verifies, takes no --now for writes, and a table saying otherwise is caught.
async fn a_store_from_the_previous_release_is_production(kind: &str) {
    let db = TestDb::production(kind).await;
    let fixtures = repo_root().join("tests/fixtures/release-0.1");
    match &db {
        TestDb::Sqlite { path, .. } => {
            std::fs::copy(fixtures.join("store.db"), path).unwrap();
        }
        TestDb::Postgres { .. } => {
            let dump = std::fs::read_to_string(fixtures.join("store.postgres.sql")).unwrap();
            let pool = sqlx::PgPool::connect(&db.url()).await.unwrap();
            sqlx::raw_sql(&dump).execute(&pool).await.unwrap();
            pool.close().await;
        }
    }
    let verified = ok(&kehoach(&db, &["audit", "verify"]));
    assert!(verified.contains("kho cũ"), "{verified}");
    let before = event_count(&db).await;
    refused(
        &kehoach(&db, &["--now", "2024-01-05", "audit", "checkpoint"]),
        "checkpoint",
    );
    assert_eq!(event_count(&db).await, before);
    // A new event on it is recorded, unmarked, and still verifies.
    ok(&kehoach(&db, &["audit", "checkpoint"]));
    ok(&kehoach(&db, &["audit", "verify"]));
    let store = Store::open(&db.db_url()).await.unwrap();
    assert_eq!(store.mode().await.unwrap(), StoreMode::Legacy);
    let flip = "UPDATE store_info SET simulation = true";
    kehoach::with_pool!(&store, p => sqlx::query(flip).execute(p).await.map(|_| ())).unwrap();
    store.close().await;
    let out = kehoach(&db, &["audit", "verify"]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
}
on_both_stores!(previous_release, a_store_from_the_previous_release_is_production);
