//! Engine scenarios, each run against SQLite and PostgreSQL.

use crate::helpers::*;
use crate::on_both_stores;
use kehoach::domain::ids::AgencyCode;
use kehoach::domain::task::{Actor, MilestoneStatus, ObligationRef, Task, TaskAction};
use kehoach::engine::EngineError;
use kehoach::projections;
use std::sync::Arc;

async fn loading_twice_adds_nothing_and_rebuild_reproduces_the_views(kind: &str) {
    let db = TestDb::of(kind).await;
    let engine = db.engine(clock("2023-01-05")).await;
    let plan = shipped_plan();
    let first = engine.load_plan(&plan).await.unwrap();
    assert_eq!(first.tasks, 45);
    assert!(first.events_written > 45);
    let second = engine.load_plan(&plan).await.unwrap();
    assert_eq!(
        second.events_written, 0,
        "loading the same plan again must not add events"
    );

    let applied = engine.catch_up().await.unwrap();
    assert_eq!(applied.applied as i64, engine.store.event_count().await.unwrap());
    let before = engine.store.view_dump().await.unwrap();
    assert_eq!(engine.store.task_views().await.unwrap().len(), 45);
    let rebuilt = projections::rebuild(&engine.store).await.unwrap();
    assert_eq!(rebuilt.applied, applied.applied);
    assert_eq!(
        engine.store.view_dump().await.unwrap(),
        before,
        "a rebuild must reproduce the same views"
    );
}
on_both_stores!(
    loading_twice_and_rebuild,
    loading_twice_adds_nothing_and_rebuild_reproduces_the_views
);

async fn submit_approve_and_the_rules(kind: &str) {
    let db = TestDb::of(kind).await;
    let clock = clock("2024-03-20");
    let engine = db.engine(clock.clone()).await;
    engine.load_plan(&shipped_plan()).await.unwrap();
    let m = || mid("register-2024");

    let err = act(
        &engine,
        "III.1.2",
        "BTG",
        "Lê C",
        TaskAction::Submit {
            milestone: m(),
            agency: None,
            note: String::new(),
            attachments: vec![],
        },
    )
    .await
    .unwrap_err();
    assert_eq!(err.task_error().map(|e| e.code()), Some("not_implementer"));
    act(
        &engine,
        "III.1.2",
        "UBND",
        "Trần Thị B",
        TaskAction::Submit {
            milestone: m(),
            agency: None,
            note: "Đăng ký 2 mô hình".into(),
            attachments: vec![],
        },
    )
    .await
    .unwrap();
    // UBND submitted its own obligation; it is not a supervisor of III.1.2.
    let err = act(
        &engine,
        "III.1.2",
        "UBND",
        "Trần Thị B",
        TaskAction::Approve {
            milestone: m(),
            agency: None,
            note: String::new(),
        },
    )
    .await
    .unwrap_err();
    assert_eq!(err.task_error().map(|e| e.code()), Some("not_supervisor"));
    let err = act(
        &engine,
        "III.1.2",
        "MTTQ",
        "Đỗ F",
        TaskAction::Approve {
            milestone: m(),
            agency: None,
            note: String::new(),
        },
    )
    .await
    .unwrap_err();
    assert_eq!(err.task_error().map(|e| e.code()), Some("not_supervisor"));
    act(
        &engine,
        "III.1.2",
        "BDV",
        "Võ E",
        TaskAction::Return {
            milestone: m(),
            agency: None,
            reason: "Bổ sung minh chứng".into(),
        },
    )
    .await
    .unwrap();
    clock.set(at("2024-03-28"));
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
    let err = act(
        &engine,
        "III.1.2",
        "UBND",
        "Trần Thị B",
        TaskAction::Submit {
            milestone: m(),
            agency: None,
            note: String::new(),
            attachments: vec![],
        },
    )
    .await
    .unwrap_err();
    assert_eq!(err.task_error().map(|e| e.code()), Some("already_approved"));

    engine.catch_up().await.unwrap();
    let view = engine.store.task_view(&key("III.1.2")).await.unwrap().unwrap();
    let milestone = view.task.milestone(&m()).unwrap();
    let ubnd = milestone
        .obligation(&ObligationRef::Agency(AgencyCode::parse("UBND").unwrap()))
        .unwrap();
    assert_eq!(ubnd.status, MilestoneStatus::Approved);
    assert_eq!(ubnd.approved.as_ref().unwrap().at, at("2024-03-28"));
    assert_eq!(ubnd.submitted.as_ref().unwrap().by.to_string(), "Trần Thị B (UBND)");
    // The other implementers still owe their own part.
    assert_eq!(milestone.status, MilestoneStatus::Open);
    assert_eq!(
        milestone
            .obligations
            .iter()
            .filter(|o| o.status == MilestoneStatus::Open)
            .count(),
        5
    );

    // Who and when are in every event's metadata, from the request.
    let events = all_events(&engine).await;
    let approval = events.iter().find(|e| e.event_type == "MilestoneApproved").unwrap();
    let metadata = approval.metadata_value().unwrap();
    let approver = account(&engine, "BTV", "Nguyễn Kiên").await;
    assert_eq!(metadata["agency"], "BTV");
    assert_eq!(metadata["name"], "Nguyễn Kiên");
    assert_eq!(metadata["account"], approver.id.as_str());
    assert_eq!(metadata["email"], approver.email.as_str());
    assert_eq!(metadata["channel"], "cli");
    assert_eq!(metadata["at"], at("2024-03-28").to_rfc3339());
    assert!(events.iter().all(|e| e.metadata_value().unwrap().get("at").is_some()));
}
on_both_stores!(submit_approve, submit_approve_and_the_rules);

async fn concurrent_double_approval_has_exactly_one_winner(kind: &str) {
    let db = TestDb::of(kind).await;
    let setup = db.engine(clock("2024-03-20")).await;
    setup.load_plan(&shipped_plan()).await.unwrap();
    act(
        &setup,
        "III.1.2",
        "UBND",
        "Trần Thị B",
        TaskAction::Submit {
            milestone: mid("register-2024"),
            agency: None,
            note: String::new(),
            attachments: vec![],
        },
    )
    .await
    .unwrap();

    // Deterministic: two loads of the same version, two commits; the second loses.
    use cqrs_es::persist::PersistedEventStore;
    use cqrs_es::EventStore;
    let store_a = PersistedEventStore::<_, Task>::new_event_store(setup.store.repository());
    let store_b = PersistedEventStore::<_, Task>::new_event_store(setup.store.repository());
    let id = key("III.1.2").to_string();
    let ctx_a = store_a.load_aggregate(&id).await.unwrap();
    let ctx_b = store_b.load_aggregate(&id).await.unwrap();
    let (ve, pg) = (actor(&setup, "BDV", "Võ E").await, actor(&setup, "BDV", "Phan G").await);
    let approve = |who: &Actor| kehoach::domain::task::TaskEvent::MilestoneApproved {
        milestone: mid("register-2024"),
        obligation: Some(ObligationRef::Agency(AgencyCode::parse("UBND").unwrap())),
        note: String::new(),
        stamp: setup.stamp(who.clone()),
    };
    store_a
        .commit(vec![approve(&ve)], ctx_a, Default::default())
        .await
        .unwrap();
    let lost = store_b.commit(vec![approve(&pg)], ctx_b, Default::default()).await;
    assert!(
        matches!(lost, Err(cqrs_es::AggregateError::AggregateConflict)),
        "{lost:?}"
    );

    // Through the engine, from separate connections racing: one approval wins,
    // every other attempt is a conflict or sees the approval already made.
    act(
        &setup,
        "III.1.2",
        "UBND",
        "Trần Thị B",
        TaskAction::Submit {
            milestone: mid("register-2025"),
            agency: None,
            note: String::new(),
            attachments: vec![],
        },
    )
    .await
    .unwrap();
    let mut engines = Vec::new();
    for _ in 0..6 {
        engines.push(Arc::new(db.engine(clock("2024-03-21")).await));
    }
    let attempts = engines.iter().enumerate().map(|(i, e)| {
        let e = e.clone();
        tokio::spawn(async move {
            let who = if i % 2 == 0 {
                ("BDV", format!("Cán bộ {i}"))
            } else {
                ("BTV", format!("Lãnh đạo {i}"))
            };
            act(
                &e,
                "III.1.2",
                who.0,
                &who.1,
                TaskAction::Approve {
                    milestone: mid("register-2025"),
                    agency: None,
                    note: String::new(),
                },
            )
            .await
        })
    });
    let results: Vec<Result<(), EngineError>> = futures::future::join_all(attempts)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    let wins = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(wins, 1, "{results:?}");
    for r in results.iter().filter_map(|r| r.as_ref().err()) {
        let acceptable =
            matches!(r, EngineError::Conflict(_)) || r.task_error().is_some_and(|e| e.code() == "already_approved");
        assert!(acceptable, "unexpected refusal: {r}");
    }
    let approvals = all_events(&setup)
        .await
        .iter()
        .filter(|e| e.event_type == "MilestoneApproved")
        .count();
    assert_eq!(approvals, 2);
}
on_both_stores!(
    concurrent_double_approval,
    concurrent_double_approval_has_exactly_one_winner
);

/// The status of UBND's obligation on the first milestone of a task view.
fn ubnd_part(view: &kehoach::projections::views::TaskView) -> MilestoneStatus {
    let ubnd = ObligationRef::Agency(AgencyCode::parse("UBND").unwrap());
    view.task.milestones[0].obligation(&ubnd).unwrap().status
}

async fn a_crash_between_commit_and_projection_is_caught_up(kind: &str) {
    let db = TestDb::of(kind).await;
    {
        let engine = db.engine(clock("2023-03-01")).await;
        engine.load_plan(&shipped_plan()).await.unwrap();
        // The account exists before (its creation is an event of its own).
        account(&engine, "UBND", "Trần Thị B").await;
        engine.catch_up().await.unwrap();
        // The command commits; the process "dies" before any projection runs.
        act(
            &engine,
            "II.1.2",
            "UBND",
            "Trần Thị B",
            TaskAction::Submit {
                milestone: mid("complete"),
                agency: None,
                note: String::new(),
                attachments: vec![],
            },
        )
        .await
        .unwrap();
        let stale = engine.store.task_view(&key("II.1.2")).await.unwrap().unwrap();
        assert_eq!(ubnd_part(&stale), MilestoneStatus::Open);
        engine.store.close().await;
    }
    let restarted = db.engine(clock("2023-03-02")).await;
    let caught = restarted.catch_up().await.unwrap();
    assert_eq!(caught.applied, 2, "the submission and its notice to the approvers");
    let fresh = restarted.store.task_view(&key("II.1.2")).await.unwrap().unwrap();
    assert_eq!(ubnd_part(&fresh), MilestoneStatus::Submitted);
    assert_eq!(
        restarted.catch_up().await.unwrap().applied,
        0,
        "a second catch-up applies nothing"
    );
    let due: Vec<_> = restarted.store.due_until("2023-03-31".parse().unwrap()).await.unwrap();
    assert!(due
        .iter()
        .any(|(task, m, _, status)| task.ends_with("/II.1.2") && m == "complete" && status == "open"));
}
on_both_stores!(crash_then_catch_up, a_crash_between_commit_and_projection_is_caught_up);

async fn a_changed_plan_is_amended_and_a_removed_task_withdrawn(kind: &str) {
    let db = TestDb::of(kind).await;
    let engine = db.engine(clock("2023-01-05")).await;
    let plan = shipped_plan();
    engine.load_plan(&plan).await.unwrap();

    let mut changed = plan.clone();
    let t = changed.tasks.iter_mut().find(|t| t.id.as_str() == "II.1.2").unwrap();
    t.milestones[0].due = "2023-04-30".parse().unwrap();
    let t = changed.tasks.iter_mut().find(|t| t.id.as_str() == "IV.6").unwrap();
    t.definition
        .implementers
        .push(kehoach::domain::ids::AgencyCode::parse("BDV").unwrap());
    changed.tasks.retain(|t| t.id.as_str() != "IV.4");
    let report = engine.load_plan(&changed).await.unwrap();
    assert_eq!(report.events_written, 3);
    assert_eq!(report.withdrawn, 1);
    assert_eq!(engine.load_plan(&changed).await.unwrap().events_written, 0);

    let types: Vec<String> = all_events(&engine)
        .await
        .into_iter()
        .rev()
        .take(3)
        .map(|e| e.event_type)
        .collect();
    assert_eq!(types, ["TaskWithdrawn", "TaskAmended", "MilestoneAmended"]);
    engine.catch_up().await.unwrap();
    let withdrawn = engine.store.task_view(&key("IV.4")).await.unwrap().unwrap();
    assert!(withdrawn.task.withdrawn);
    assert!(withdrawn.version > 1, "the withdrawn task keeps its history");
    let moved = engine.store.task_view(&key("II.1.2")).await.unwrap().unwrap();
    assert_eq!(moved.task.milestones[0].due().to_string(), "2023-04-30");
    // Bringing the task back reinstates it.
    engine.load_plan(&plan).await.unwrap();
    engine.catch_up().await.unwrap();
    assert!(
        !engine
            .store
            .task_view(&key("IV.4"))
            .await
            .unwrap()
            .unwrap()
            .task
            .withdrawn
    );
}
on_both_stores!(plan_amendment, a_changed_plan_is_amended_and_a_removed_task_withdrawn);

/// On PostgreSQL, an event whose transaction commits late must not be
/// skipped by a reader that already saw a later-numbered event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_feed_never_skips_a_late_commit() {
    // A store with no event at all, not even a simulation store's first.
    let db = TestDb::production("postgres").await;
    let engine = db.engine(clock("2023-01-05")).await;
    let kehoach::store::Store::Postgres(pool) = &engine.store else {
        unreachable!()
    };
    let insert =
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
                  VALUES ('Probe', $1, 1, 'Probe', '1', '{}', '{}')";
    let mut slow = pool.begin().await.unwrap();
    sqlx::query(insert).bind("slow").execute(&mut *slow).await.unwrap();
    let mut fast = pool.begin().await.unwrap();
    sqlx::query(insert).bind("fast").execute(&mut *fast).await.unwrap();
    fast.commit().await.unwrap();

    // "fast" has the higher position but "slow" is still open: nothing is readable yet.
    let seen = engine.store.read_feed(Default::default(), 100).await.unwrap();
    assert!(
        seen.is_empty(),
        "read past an open transaction: {:?}",
        seen.iter().map(|e| &e.aggregate_id).collect::<Vec<_>>()
    );
    slow.commit().await.unwrap();
    let seen: Vec<String> = all_events(&engine).await.into_iter().map(|e| e.aggregate_id).collect();
    assert_eq!(seen, ["slow", "fast"]);
}

/// Two engines loading the same plan at once: the engine's own commands
/// retry on conflict, so both succeed and the store holds one copy.
async fn concurrent_plan_loads_retry_and_do_not_duplicate(kind: &str) {
    let db = TestDb::of(kind).await;
    let plan = Arc::new(shipped_plan());
    let mut loads = Vec::new();
    for _ in 0..3 {
        let engine = db.engine(clock("2023-01-05")).await;
        let plan = plan.clone();
        loads.push(tokio::spawn(async move { engine.load_plan(&plan).await }));
    }
    for load in futures::future::join_all(loads).await {
        load.unwrap().expect("every concurrent load succeeds");
    }
    let engine = db.engine(clock("2023-01-06")).await;
    let single = TestDb::of(kind).await;
    let reference = single.engine(clock("2023-01-05")).await;
    reference.load_plan(&plan).await.unwrap();
    assert_eq!(
        engine.store.event_count().await.unwrap(),
        reference.store.event_count().await.unwrap()
    );
}
on_both_stores!(concurrent_plan_loads, concurrent_plan_loads_retry_and_do_not_duplicate);
