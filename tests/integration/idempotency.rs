//! All or nothing, part two: a plan load is one transaction, and a write
//! that names an idempotency key (`--request-id`, `Idempotency-Key`) is
//! carried out once; each scenario on SQLite and PostgreSQL.

use crate::helpers::*;
use crate::on_both_stores;
use crate::web::App;
use kehoach::domain::task::TaskAction;
use kehoach::engine::EngineError;
use kehoach::store::requests::RequestId;
use serde_json::{json, Value};

/// Makes every insert of an event of `aggregate_id` fail, as a disk or a
/// constraint might half-way through a load.
async fn fail_inserts_of(engine: &kehoach::engine::Engine, aggregate_id: &str) {
    let sql = match engine.store.kind() {
        "sqlite" => format!(
            "CREATE TRIGGER fail_mid BEFORE INSERT ON events WHEN NEW.aggregate_id = '{aggregate_id}' \
             BEGIN SELECT RAISE(ABORT, 'injected failure'); END;"
        ),
        _ => format!(
            "CREATE FUNCTION fail_mid() RETURNS trigger AS $$ BEGIN \
               IF NEW.aggregate_id = '{aggregate_id}' THEN RAISE EXCEPTION 'injected failure'; END IF; \
               RETURN NEW; END $$ LANGUAGE plpgsql; \
             CREATE TRIGGER fail_mid BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION fail_mid();"
        ),
    };
    kehoach::with_pool!(&engine.store, pool => sqlx::raw_sql(&sql).execute(pool).await.map(|_| ())).unwrap();
}

async fn heal(engine: &kehoach::engine::Engine) {
    let sql = match engine.store.kind() {
        "sqlite" => "DROP TRIGGER fail_mid;",
        _ => "DROP TRIGGER fail_mid ON events; DROP FUNCTION fail_mid();",
    };
    kehoach::with_pool!(&engine.store, pool => sqlx::raw_sql(sql).execute(pool).await.map(|_| ())).unwrap();
}

async fn a_load_that_fails_half_way_writes_nothing(kind: &str) {
    let db = TestDb::of(kind).await;
    let engine = db.engine(clock("2023-01-05")).await;
    let before = event_count(&db).await;
    // A task near the end of the file: the plan and 30-odd tasks come before it.
    fail_inserts_of(&engine, "duc-pho-de-an-13/IV.5").await;
    let err = engine.load_plan(&shipped_plan()).await.unwrap_err();
    assert!(
        matches!(err, EngineError::Persistence { .. }) && err.to_string().contains("injected failure"),
        "{err}"
    );
    assert_eq!(event_count(&db).await, before, "nothing of a failed load is written");
    engine.catch_up().await.unwrap();
    assert!(engine.store.plan_views().await.unwrap().is_empty());
    assert!(engine.store.task_views().await.unwrap().is_empty());

    // Healed, the same load writes the whole plan, as on a store that never failed.
    heal(&engine).await;
    let loaded = engine.load_plan(&shipped_plan()).await.unwrap();
    let reference = TestDb::of(kind).await;
    let written = reference
        .engine(clock("2023-01-05"))
        .await
        .load_plan(&shipped_plan())
        .await
        .unwrap()
        .events_written;
    assert_eq!(loaded.events_written, written);
    assert_eq!(event_count(&db).await, before + written);
}
on_both_stores!(failed_load, a_load_that_fails_half_way_writes_nothing);

fn submit(note: &str) -> TaskAction {
    TaskAction::Submit {
        milestone: mid("register-2024"),
        agency: None,
        note: note.into(),
        attachments: vec![],
    }
}

async fn the_same_key_twice_acts_once(kind: &str) {
    let db = TestDb::of(kind).await;
    let engine = db.engine(clock("2024-03-20")).await;
    engine.load_plan(&shipped_plan()).await.unwrap();
    let by = actor(&engine, "UBND", "Trần Thị B").await;
    let other = actor(&engine, "UBND", "Hồ Văn K").await;
    let id = RequestId::parse("nop-2024-ubnd").unwrap();
    let before = event_count(&db).await;
    let m = mid("register-2024");
    let first = engine
        .act(&key("III.1.2"), by.clone(), &m, submit("Đăng ký"), Some(&id))
        .await
        .unwrap();
    let written = event_count(&db).await - before;
    assert!(written >= 1 && !first.replayed && first.warnings.is_empty());
    let again = engine
        .act(&key("III.1.2"), by.clone(), &m, submit("Đăng ký"), Some(&id))
        .await
        .unwrap();
    assert!(again.replayed);
    assert_eq!(event_count(&db).await - before, written, "a retry writes nothing");
    assert_eq!(
        format!("{:?}", again.milestone),
        format!("{:?}", first.milestone),
        "a retry returns the first outcome"
    );
    // The key is on the events it produced.
    let tagged = all_events(&engine)
        .await
        .into_iter()
        .filter(|e| e.metadata.contains("\"request_id\":\"nop-2024-ubnd\""))
        .count();
    assert_eq!(tagged as i64, written);

    // The same key for another request is refused, and writes nothing.
    let err = engine
        .act(&key("III.1.2"), by, &m, submit("Khác"), Some(&id))
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::RequestReused(_)), "{err}");
    // Keys belong to their account: another account's is another request
    // (here refused by the rules, since UBND's obligation is submitted).
    let err = engine
        .act(&key("III.1.2"), other, &m, submit("Đăng ký"), Some(&id))
        .await
        .unwrap_err();
    assert_eq!(err.task_error().map(|e| e.code()), Some("already_submitted"), "{err}");
    assert_eq!(event_count(&db).await - before, written);
    engine.catch_up().await.unwrap();
    let summary = kehoach::audit::verify::verify(&engine.store, |_| {}).await.unwrap();
    assert!(summary.is_ok(), "{:?}", summary.err());
}
on_both_stores!(same_key_twice, the_same_key_twice_acts_once);

async fn the_cli_takes_a_request_id(kind: &str) {
    let db = TestDb::of(kind).await;
    let plan = shipped_plan_path();
    let load = |id: &str| kehoach(&db, &["plan", "load", plan.to_str().unwrap(), "--request-id", id]);
    let first = load("nap-1");
    assert!(first.status.success(), "{}", stderr(&first));
    let again = load("nap-1");
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(stdout(&again), stdout(&first), "the first report, again");
    assert!(stderr(&again).contains("đã được thực hiện"), "{}", stderr(&again));
    let email = cli_user(&db, "UBND", "Trần Thị B", "member");
    let submit = |id: &str, note: &str| {
        kehoach(
            &db,
            &[
                "--now",
                "2024-03-20",
                "--format",
                "json",
                "task",
                "submit",
                "III.1.2",
                "--milestone",
                "register-2024",
                "--user",
                &email,
                "--note",
                note,
                "--request-id",
                id,
            ],
        )
    };
    let before = event_count(&db).await;
    let first = submit("nop-1", "Đăng ký");
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    let written = event_count(&db).await - before;
    let again = submit("nop-1", "Đăng ký");
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    assert_eq!(stdout(&again), stdout(&first));
    assert!(stderr(&again).contains("nop-1"), "{}", stderr(&again));
    assert_eq!(event_count(&db).await - before, written);

    let other = submit("nop-1", "Khác");
    assert_eq!(other.status.code(), Some(4), "{}", stderr(&other));
    assert_eq!(stderr(&other).trim().lines().count(), 1, "{}", stderr(&other));
    let bad = submit("khóa có dấu", "Đăng ký");
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
    assert!(stderr(&bad).contains("--request-id"), "{}", stderr(&bad));
    assert_eq!(event_count(&db).await - before, written);
}
on_both_stores!(cli_request_id, the_cli_takes_a_request_id);

async fn an_idempotency_key_replays_the_first_response(kind: &str) {
    let app = App::shipped(kind, "2023-01-10").await;
    let member = app.token("BDV", "Nguyễn Văn An", "member").await;
    let admin = app.token("UBKT", "Phạm Quản", "admin").await;
    let path = "/api/tasks/II.1.1/milestones/complete/report";
    let post = |key: &'static str, body: Value| {
        let auth = format!("Bearer {member}");
        let body = serde_json::to_vec(&body).unwrap();
        async move {
            http(
                app.port,
                "POST",
                path,
                &[
                    ("Authorization", &auth),
                    ("Content-Type", "application/json"),
                    ("Idempotency-Key", key),
                ],
                &body,
            )
            .await
        }
    };
    let before = app.events().await;
    let first = post("bao-cao-1", json!({ "note": "Đã triển khai" })).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.header("idempotent-replayed"), None);
    let written = app.events().await - before;
    let again = post("bao-cao-1", json!({ "note": "Đã triển khai" })).await;
    assert_eq!((again.status, again.body.as_str()), (200, first.body.as_str()));
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(app.events().await - before, written, "a replay writes nothing");

    let other = post("bao-cao-1", json!({ "note": "Nội dung khác" })).await;
    assert_eq!(
        (other.status, other.json()["error"]["code"].clone()),
        (409, json!("idempotency_key_reused"))
    );
    let bad = post("khóa/xấu", json!({ "note": "Đã triển khai" })).await;
    assert_eq!(
        (bad.status, bad.json()["error"]["code"].clone()),
        (400, json!("bad_idempotency_key"))
    );
    assert_eq!(app.events().await - before, written);

    // A plan upload with a key: the retry gets the first report.
    let text = std::fs::read(shipped_plan_path()).unwrap();
    let upload = || {
        let auth = format!("Bearer {admin}");
        let text = text.clone();
        async move {
            http(
                app.port,
                "POST",
                "/api/plans",
                &[("Authorization", &auth), ("Idempotency-Key", "tai-len-1")],
                &text,
            )
            .await
        }
    };
    let first = upload().await;
    assert_eq!(first.status, 200, "{}", first.body);
    let again = upload().await;
    assert_eq!((again.status, again.body.as_str()), (200, first.body.as_str()));
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
}
on_both_stores!(http_idempotency, an_idempotency_key_replays_the_first_response);
