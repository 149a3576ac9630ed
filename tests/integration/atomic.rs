//! All or nothing: several commands written in one transaction
//! (`Engine::execute_tasks_atomically`, `store::repository::Batch`), each
//! scenario on SQLite and PostgreSQL.

use crate::helpers::*;
use crate::on_both_stores;
use cqrs_es::persist::{PersistedEventStore, PersistenceError};
use cqrs_es::CqrsFramework;
use kehoach::audit::verify::verify;
use kehoach::domain::ids::TaskKey;
use kehoach::domain::task::{Task, TaskAction, TaskCommand};
use kehoach::engine::{Engine, EngineError};
use kehoach::store::repository::Batch;
use serde_json::Value;
use std::sync::Arc;

fn report(milestone: &str, note: &str) -> TaskAction {
    TaskAction::ReportProgress {
        milestone: mid(milestone),
        agency: None,
        note: note.into(),
        kpis: vec![],
        evidence: vec![],
        attachments: vec![],
    }
}

/// UBND reports on two tasks it implements.
async fn two_reports(engine: &Engine, note: &str) -> Vec<(TaskKey, TaskCommand)> {
    let ubnd = actor(engine, "UBND", "Trần Thị B").await;
    vec![
        (
            key("III.1.2"),
            TaskCommand {
                stamp: engine.stamp(ubnd.clone()),
                action: report("register-2024", note),
            },
        ),
        (
            key("II.1.2"),
            TaskCommand {
                stamp: engine.stamp(ubnd),
                action: report("complete", note),
            },
        ),
    ]
}

/// A store with the shipped plan and the accounts the scenarios act as,
/// created before anything is counted.
async fn loaded(kind: &str) -> (TestDb, Engine) {
    let db = TestDb::of(kind).await;
    let engine = db.engine(clock("2024-03-20")).await;
    engine.load_plan(&shipped_plan()).await.unwrap();
    account(&engine, "UBND", "Trần Thị B").await;
    account(&engine, "BTG", "Lê C").await;
    (db, engine)
}

async fn assert_verifies(engine: &Engine) {
    engine.catch_up().await.unwrap();
    let summary = verify(&engine.store, |_| {}).await.unwrap();
    assert!(summary.is_ok(), "{:?}", summary.err());
}

/// Stored events as the store holds them, without the commit time and the
/// hash of what came before (the chains of two stores differ there).
async fn stored(engine: &Engine, from: usize) -> Vec<(String, i64, String, String, Value)> {
    all_events(engine)
        .await
        .into_iter()
        .skip(from)
        .map(|e| {
            let mut metadata: Value = serde_json::from_str(&e.metadata).unwrap();
            metadata.as_object_mut().unwrap().remove("recorded_at");
            (e.aggregate_id, e.sequence, e.event_type, e.payload, metadata)
        })
        .collect()
}

async fn a_batch_writes_what_single_commands_write(kind: &str) {
    let ((_one, a), (_many, b)) = (loaded(kind).await, loaded(kind).await);
    let before = all_events(&a).await.len();
    assert_eq!(before, all_events(&b).await.len());
    for (key, command) in two_reports(&a, "Đã làm").await {
        a.execute(&key, command).await.unwrap();
    }
    b.execute_tasks_atomically(two_reports(&b, "Đã làm").await)
        .await
        .unwrap();
    let (singles, batched) = (stored(&a, before).await, stored(&b, before).await);
    assert_eq!(batched.len(), 2);
    // Account ids are random per store; everything else is the same.
    let without_ids = |events: Vec<(String, i64, String, String, Value)>| {
        events
            .into_iter()
            .map(|(id, seq, ty, payload, mut m)| {
                let account = m.as_object_mut().unwrap().remove("account").unwrap();
                let payload = payload.replace(account.as_str().unwrap(), "ACCOUNT");
                (id, seq, ty, payload, m)
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(without_ids(singles), without_ids(batched));
    assert_verifies(&b).await;
    // One transaction, one commit time.
    let times: Vec<String> = all_events(&b)
        .await
        .into_iter()
        .skip(before)
        .map(|e| serde_json::from_str::<Value>(&e.metadata).unwrap()["recorded_at"].to_string())
        .collect();
    assert_eq!(times[0], times[1]);
}
on_both_stores!(batch_like_singles, a_batch_writes_what_single_commands_write);

async fn one_rejected_command_rejects_the_batch(kind: &str) {
    let (db, engine) = loaded(kind).await;
    let before = event_count(&db).await;
    let mut commands = two_reports(&engine, "Đã làm").await;
    // BTG does not implement III.1.1: the last command is refused.
    commands.push((
        key("III.1.1"),
        TaskCommand {
            stamp: engine.stamp(actor(&engine, "BTG", "Lê C").await),
            action: TaskAction::Submit {
                milestone: mid("complete"),
                agency: None,
                note: String::new(),
                attachments: vec![],
            },
        },
    ));
    let err = engine.execute_tasks_atomically(commands).await.unwrap_err();
    match &err {
        EngineError::Rejected { task, .. } => assert_eq!(task, "III.1.1", "{err}"),
        other => panic!("expected a rejection, got {other}"),
    }
    assert_eq!(event_count(&db).await, before, "a rejected batch writes nothing");
}
on_both_stores!(rejected_batch, one_rejected_command_rejects_the_batch);

/// A batch decided on stale state is refused by the primary key, and none of
/// its events are written, not even those of the aggregate nobody touched.
async fn a_stale_batch_writes_nothing(kind: &str) {
    let (db, engine) = loaded(kind).await;
    let commands = two_reports(&engine, "Lô cũ").await;
    let batch = Batch::new(&engine.store);
    let tasks: CqrsFramework<Task, _> =
        CqrsFramework::new(PersistedEventStore::new_event_store(batch.repository()), vec![], ());
    for (key, command) in commands {
        tasks
            .execute_with_metadata(&key.to_string(), command, Default::default())
            .await
            .unwrap();
    }
    assert_eq!(batch.len(), 2);
    // Meanwhile someone reports on the second task.
    let (key2, command2) = two_reports(&engine, "Người khác").await.remove(1);
    engine.execute(&key2, command2).await.unwrap();
    let before = event_count(&db).await;
    let lost = batch.commit().await;
    assert!(matches!(lost, Err(PersistenceError::OptimisticLockError)), "{lost:?}");
    assert_eq!(event_count(&db).await, before, "nothing of a stale batch is written");
}
on_both_stores!(stale_batch, a_stale_batch_writes_nothing);

/// Batches racing on the same tasks from several engines: each is retried
/// until it is decided on the current state; every report is stored once.
async fn concurrent_batches_retry_without_duplicates(kind: &str) {
    let (db, setup) = loaded(kind).await;
    let before = event_count(&db).await;
    let mut runs = Vec::new();
    for i in 0..4 {
        let engine = Arc::new(db.engine(clock("2024-03-20")).await);
        let commands = two_reports(&engine, &format!("Lần {i}")).await;
        runs.push(tokio::spawn(
            async move { engine.execute_tasks_atomically(commands).await },
        ));
    }
    for run in futures::future::join_all(runs).await {
        run.unwrap().expect("every batch is retried until it commits");
    }
    assert_eq!(event_count(&db).await, before + 8);
    let notes: Vec<String> = all_events(&setup)
        .await
        .into_iter()
        .filter(|e| e.event_type == "ProgressReported" && e.aggregate_id.ends_with("/III.1.2"))
        .map(|e| e.payload)
        .collect();
    for i in 0..4 {
        assert_eq!(
            notes.iter().filter(|p| p.contains(&format!("Lần {i}"))).count(),
            1,
            "{notes:?}"
        );
    }
    assert_verifies(&setup).await;
}
on_both_stores!(concurrent_batches, concurrent_batches_retry_without_duplicates);
