//! The rules of the task aggregate, in given/when/then form.

use super::*;
use crate::domain::ids::{AgencyCode, KpiKey, MilestoneId, PersonName, PlanId, TaskId};
use crate::domain::reminders::{Recipient, ReminderKind, Role};
use chrono::{DateTime, NaiveDate, Utc};
use cqrs_es::test::TestFramework;

type Tf = TestFramework<Task>;

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn code(s: &str) -> AgencyCode {
    AgencyCode::parse(s).unwrap()
}

fn mid(s: &str) -> MilestoneId {
    MilestoneId::parse(s).unwrap()
}

/// An account of `agency` named `name`; its id is `acc-<agency>-<name>`.
fn person(agency: &str, name: &str) -> Stamp {
    account(agency, name, &format!("acc-{agency}-{name}"))
}

fn account(agency: &str, name: &str, id: &str) -> Stamp {
    Stamp {
        by: Actor::account(Principal {
            account: id.into(),
            email: format!("{id}@ducpho.example"),
            name: PersonName::parse(name).unwrap(),
            agency: code(agency),
            channel: Channel::Cli {
                os_user: "test".into(),
                host: "test".into(),
            },
        }),
        at: at("2024-03-20T02:00:00Z"),
    }
}

fn system() -> Stamp {
    Stamp {
        by: Actor::system_on("plan-loader", "test", "test"),
        at: at("2024-01-01T00:00:00Z"),
    }
}

fn ob(agency: &str) -> Option<ObligationRef> {
    Some(ObligationRef::Agency(code(agency)))
}

fn definition() -> TaskDefinition {
    TaskDefinition {
        title: "Xây dựng, nhân rộng mô hình “Dân vận khéo”".into(),
        text: "Xây dựng, nhân rộng ít nhất 01 mô hình “Dân vận khéo”/năm".into(),
        lead: code("BTV"),
        advisory: vec![code("BDV")],
        implementers: vec![code("UBND"), code("MTTQ")],
        coordinators: vec![],
        deadline: Some("Trước 31/3 hàng năm".into()),
        source: SourceRef {
            document: None,
            section: "III.1.2".into(),
            line: 1,
        },
        kpis: vec![KpiTarget {
            better: None,
            key: KpiKey::parse("mo-hinh").unwrap(),
            label: "Mô hình “Dân vận khéo”".into(),
            comparator: Comparator::AtLeast,
            target: TargetValue::Value(1.0),
            unit: "mô hình".into(),
            per_year: true,
            baseline: None,
        }],
        reminders: None,
    }
}

fn spec(id: &str, due: (i32, u32, u32)) -> MilestoneSpec {
    MilestoneSpec {
        id: mid(id),
        title: format!("Mốc {id}"),
        kind: MilestoneKind::Yearly,
        due: NaiveDate::from_ymd_opt(due.0, due.1, due.2).unwrap(),
        obligation: ObligationMode::Each,
    }
}

fn sync(specs: Vec<MilestoneSpec>, def: TaskDefinition) -> TaskCommand {
    TaskCommand {
        stamp: system(),
        action: TaskAction::SyncFromPlan {
            plan: PlanId::parse("duc-pho-de-an-13").unwrap(),
            task: TaskId::parse("III.1.2").unwrap(),
            definition: def,
            milestones: specs,
        },
    }
}

fn registered() -> Vec<TaskEvent> {
    let mut task = Task::default();
    let events = task
        .decide(sync(vec![spec("register-2024", (2024, 3, 31))], definition()))
        .unwrap();
    for e in &events {
        cqrs_es::Aggregate::apply(&mut task, e.clone());
    }
    events
}

fn submitted_by(agency: &str, name: &str) -> TaskEvent {
    TaskEvent::MilestoneSubmitted {
        milestone: mid("register-2024"),
        obligation: ob(agency),
        note: "Đã đăng ký".into(),
        attachments: vec![],
        stamp: person(agency, name),
    }
}

fn cmd(stamp: Stamp, action: TaskAction) -> TaskCommand {
    TaskCommand { stamp, action }
}

#[tokio::test]
async fn registering_from_the_plan_opens_each_milestone() {
    let events = Tf::with(())
        .given_no_previous_events()
        .when_async(sync(
            vec![
                spec("register-2024", (2024, 3, 31)),
                spec("register-2025", (2025, 3, 31)),
            ],
            definition(),
        ))
        .await
        .inspect_result()
        .unwrap();
    assert_eq!(
        events.iter().map(TaskEvent::name).collect::<Vec<_>>(),
        ["TaskRegistered", "MilestoneOpened", "MilestoneOpened"]
    );
}

#[tokio::test]
async fn syncing_an_unchanged_definition_emits_nothing() {
    Tf::with(())
        .given(registered())
        .when_async(sync(vec![spec("register-2024", (2024, 3, 31))], definition()))
        .await
        .then_expect_events(vec![]);
}

#[tokio::test]
async fn a_changed_plan_emits_only_the_amendments() {
    let mut def = definition();
    def.implementers.push(code("CTXH"));
    let events = Tf::with(())
        .given(registered())
        .when_async(sync(vec![spec("register-2024", (2024, 4, 15))], def))
        .await
        .inspect_result()
        .unwrap();
    assert_eq!(events.len(), 2);
    match &events[0] {
        TaskEvent::TaskAmended { changes, .. } => {
            assert!(changes.title.is_none());
            assert_eq!(changes.implementers.as_ref().unwrap().to.len(), 3);
        }
        other => panic!("expected an amendment, got {other:?}"),
    }
    assert!(
        matches!(&events[1], TaskEvent::MilestoneAmended { due: Some(c), .. } if c.to == NaiveDate::from_ymd_opt(2024, 4, 15).unwrap())
    );
}

#[tokio::test]
async fn a_milestone_removed_from_the_plan_is_cancelled_not_deleted() {
    let events = Tf::with(())
        .given(registered())
        .when_async(sync(vec![], definition()))
        .await
        .inspect_result()
        .unwrap();
    assert!(matches!(&events[..], [TaskEvent::MilestoneCancelled { .. }]));
}

#[tokio::test]
async fn implementers_submit_and_nobody_else_does() {
    let ok = Tf::with(())
        .given(registered())
        .when_async(cmd(
            person("UBND", "Trần Thị B"),
            TaskAction::Submit {
                milestone: mid("register-2024"),
                agency: None,
                note: String::new(),
                attachments: vec![],
            },
        ))
        .await
        .inspect_result();
    // The submission tells the approvers, in the same commit.
    match ok.as_deref() {
        Ok(
            [TaskEvent::MilestoneSubmitted { .. }, TaskEvent::ReminderQueued {
                key,
                kind,
                recipients,
                window,
                ..
            }],
        ) => {
            assert_eq!(
                (key.as_str(), *kind, *window),
                ("submitted-1:UBND", ReminderKind::Submitted, None)
            );
            let to: Vec<(&str, Role)> = recipients.iter().map(|r| (r.agency.as_str(), r.role)).collect();
            assert_eq!(to, [("BTV", Role::Lead), ("BDV", Role::Advisory)]);
        }
        other => panic!("unexpected {other:?}"),
    }

    let refused = Tf::with(())
        .given(registered())
        .when_async(cmd(
            person("BTG", "Lê Văn C"),
            TaskAction::Submit {
                milestone: mid("register-2024"),
                agency: None,
                note: String::new(),
                attachments: vec![],
            },
        ))
        .await
        .inspect_result();
    assert_eq!(refused.unwrap_err().code(), "not_implementer");
}

#[tokio::test]
async fn only_lead_or_advisory_approve_return_and_extend() {
    let mut given = registered();
    given.push(submitted_by("UBND", "Trần Thị B"));
    for action in [
        TaskAction::Approve {
            milestone: mid("register-2024"),
            agency: None,
            note: String::new(),
        },
        TaskAction::Return {
            milestone: mid("register-2024"),
            agency: None,
            reason: "Thiếu minh chứng".into(),
        },
        TaskAction::Extend {
            milestone: mid("register-2024"),
            agency: Some(code("UBND")),
            until: NaiveDate::from_ymd_opt(2024, 4, 30).unwrap(),
            reason: "Lùi lịch".into(),
        },
    ] {
        let refused = Tf::with(())
            .given(given.clone())
            .when_async(cmd(person("UBND", "Phạm D"), action.clone()))
            .await
            .inspect_result();
        assert_eq!(refused.unwrap_err().code(), "not_supervisor");
        for supervisor in ["BTV", "BDV"] {
            let ok = Tf::with(())
                .given(given.clone())
                .when_async(cmd(person(supervisor, "Võ E"), action.clone()))
                .await
                .inspect_result();
            let events = ok.unwrap();
            assert!(!events.is_empty(), "{supervisor} may {action:?}");
            // Approvals and returns tell the submitting agency.
            if !matches!(action, TaskAction::Extend { .. }) {
                assert!(
                    matches!(events.get(1), Some(TaskEvent::ReminderQueued { recipients, .. }) if recipients[0].agency.as_str() == "UBND"),
                    "{events:?}"
                );
            }
        }
    }
}

#[tokio::test]
async fn four_eyes_compares_accounts_never_names() {
    let approve = || TaskAction::Approve {
        milestone: mid("register-2024"),
        agency: Some(code("UBND")),
        note: String::new(),
    };
    // The account that submitted, since moved to BDV, may not decide its round.
    let mut given = registered();
    given.push(TaskEvent::MilestoneSubmitted {
        milestone: mid("register-2024"),
        obligation: ob("UBND"),
        note: String::new(),
        attachments: vec![],
        stamp: account("UBND", "Nguyễn Văn An", "acc-1"),
    });
    Tf::with(())
        .given(given.clone())
        .when_async(cmd(account("BDV", "Nguyễn Văn An", "acc-1"), approve()))
        .await
        .then_expect_error(TaskError::FourEyes {
            account: "acc-1".into(),
            milestone: mid("register-2024"),
            obligation: "UBND".into(),
            action: "duyệt",
        });
    // Another person with the same name (and a name written differently) may.
    for (name, id) in [
        ("Nguyễn Văn An", "acc-2"),
        ("nguye\u{302}\u{303}n Va\u{306}n An\u{200b}", "acc-3"),
    ] {
        let ok = Tf::with(())
            .given(given.clone())
            .when_async(cmd(account("BDV", name, id), approve()))
            .await
            .inspect_result();
        assert!(
            matches!(ok.as_deref(), Ok([TaskEvent::MilestoneApproved { .. }, ..])),
            "{ok:?}"
        );
    }
    // The author of a report in the round counts too, and a return starts a new round.
    let mut reported = registered();
    reported.push(TaskEvent::ProgressReported {
        milestone: mid("register-2024"),
        obligation: ob("UBND"),
        note: "Báo cáo".into(),
        kpis: vec![],
        evidence: vec![],
        attachments: vec![],
        stamp: account("UBND", "Lê Văn Báo", "acc-4"),
    });
    reported.push(submitted_by("UBND", "Trần Thị B"));
    let refused = Tf::with(())
        .given(reported.clone())
        .when_async(cmd(account("BDV", "Lê Văn Báo", "acc-4"), approve()))
        .await
        .inspect_result();
    assert_eq!(refused.unwrap_err().code(), "four_eyes");
    reported.push(TaskEvent::MilestoneReturned {
        milestone: mid("register-2024"),
        obligation: ob("UBND"),
        reason: "Bổ sung".into(),
        stamp: person("BDV", "Võ E"),
    });
    reported.push(submitted_by("UBND", "Trần Thị B"));
    let ok = Tf::with(())
        .given(reported)
        .when_async(cmd(account("BDV", "Lê Văn Báo", "acc-4"), approve()))
        .await
        .inspect_result();
    assert!(ok.is_ok(), "{ok:?}");
}

#[tokio::test]
async fn an_agency_never_decides_its_own_obligation() {
    // UBND implements and advises, as on II.2.1.4.
    let mut def = definition();
    def.advisory = vec![code("UBND")];
    let mut task = Task::default();
    let mut given = task
        .decide(sync(vec![spec("register-2024", (2024, 3, 31))], def))
        .unwrap();
    for e in &given {
        cqrs_es::Aggregate::apply(&mut task, e.clone());
    }
    given.push(submitted_by("UBND", "Trần Thị B"));
    given.push(submitted_by("MTTQ", "Đỗ F"));
    for action in [
        TaskAction::Approve {
            milestone: mid("register-2024"),
            agency: Some(code("UBND")),
            note: String::new(),
        },
        TaskAction::Return {
            milestone: mid("register-2024"),
            agency: Some(code("UBND")),
            reason: "x".into(),
        },
        TaskAction::Waive {
            milestone: mid("register-2024"),
            agency: Some(code("UBND")),
            reason: "x".into(),
        },
    ] {
        let refused = Tf::with(())
            .given(given.clone())
            .when_async(cmd(person("UBND", "Chủ tịch"), action))
            .await
            .inspect_result();
        assert_eq!(refused.unwrap_err().code(), "own_obligation");
    }
    // Without naming one, the only obligation UBND may decide is MTTQ's.
    let ok = Tf::with(())
        .given(given)
        .when_async(cmd(
            person("UBND", "Chủ tịch"),
            TaskAction::Approve {
                milestone: mid("register-2024"),
                agency: None,
                note: String::new(),
            },
        ))
        .await
        .inspect_result()
        .unwrap();
    assert!(matches!(&ok[0], TaskEvent::MilestoneApproved { obligation, .. } if *obligation == ob("MTTQ")));
}

#[tokio::test]
async fn each_implementer_owes_its_own_obligation() {
    let mut task = registered_task();
    let m = task.milestone(&mid("register-2024")).unwrap();
    let owners: Vec<String> = m.obligations.iter().map(Obligation::label).collect();
    assert_eq!(owners, ["UBND", "MTTQ"]);
    for e in [
        submitted_by("UBND", "Trần Thị B"),
        TaskEvent::MilestoneApproved {
            milestone: mid("register-2024"),
            obligation: ob("UBND"),
            note: String::new(),
            stamp: person("BDV", "Võ E"),
        },
    ] {
        cqrs_es::Aggregate::apply(&mut task, e);
    }
    let m = task.milestone(&mid("register-2024")).unwrap();
    let statuses: Vec<MilestoneStatus> = m.obligations.iter().map(|o| o.status).collect();
    assert_eq!(statuses, [MilestoneStatus::Approved, MilestoneStatus::Open]);
    assert_eq!(m.status, MilestoneStatus::Open, "MTTQ still owes its part");
    // MTTQ can still report and submit its own; it cannot act on UBND's.
    let report = |agency: Option<&str>| {
        cmd(
            person("MTTQ", "Đỗ F"),
            TaskAction::ReportProgress {
                milestone: mid("register-2024"),
                agency: agency.map(code),
                note: "Đăng ký 1 mô hình".into(),
                kpis: vec![],
                evidence: vec![],
                attachments: vec![],
            },
        )
    };
    assert!(task.decide(report(None)).is_ok());
    assert_eq!(
        task.decide(report(Some("UBND"))).unwrap_err().code(),
        "not_your_obligation"
    );
    // Two submitted obligations: the supervisor must say which.
    cqrs_es::Aggregate::apply(&mut task, submitted_by("MTTQ", "Đỗ F"));
    let mut two = registered_task();
    cqrs_es::Aggregate::apply(&mut two, submitted_by("UBND", "Trần Thị B"));
    cqrs_es::Aggregate::apply(&mut two, submitted_by("MTTQ", "Đỗ F"));
    let approve = cmd(
        person("BDV", "Võ E"),
        TaskAction::Approve {
            milestone: mid("register-2024"),
            agency: None,
            note: String::new(),
        },
    );
    assert_eq!(two.decide(approve).unwrap_err().code(), "agency_required");
}

#[tokio::test]
async fn a_joint_milestone_is_one_obligation_any_implementer_fulfils() {
    let mut joint = spec("register-2024", (2024, 3, 31));
    joint.obligation = ObligationMode::Joint;
    let mut task = Task::default();
    for e in task.decide(sync(vec![joint], definition())).unwrap() {
        cqrs_es::Aggregate::apply(&mut task, e);
    }
    let submit = cmd(
        person("MTTQ", "Đỗ F"),
        TaskAction::Submit {
            milestone: mid("register-2024"),
            agency: None,
            note: String::new(),
            attachments: vec![],
        },
    );
    let events = task.decide(submit).unwrap();
    assert!(matches!(
        &events[0],
        TaskEvent::MilestoneSubmitted {
            obligation: Some(ObligationRef::Joint),
            ..
        }
    ));
    for e in events {
        cqrs_es::Aggregate::apply(&mut task, e);
    }
    let m = task.milestone(&mid("register-2024")).unwrap();
    assert_eq!(m.obligations.len(), 1);
    assert_eq!(m.obligations[0].fulfilled_by, Some(code("MTTQ")));
    assert_eq!(m.status, MilestoneStatus::Submitted);
    // UBND owes it jointly, so it cannot decide it even if it advised.
    let refused = task.decide(cmd(
        person("UBND", "Chủ tịch"),
        TaskAction::Submit {
            milestone: mid("register-2024"),
            agency: None,
            note: String::new(),
            attachments: vec![],
        },
    ));
    assert_eq!(refused.unwrap_err().code(), "already_submitted");
}

#[test]
fn release_0_1_events_map_to_the_obligation_of_the_agency_that_acted() {
    // A shared milestone submitted by UBND and approved by BDV, as release 0.1 stored it.
    let mut task = registered_task();
    for json in [
        r#"{"MilestoneSubmitted":{"milestone":"register-2024","note":"","stamp":{"by":{"agency":"UBND","person":"Trần Thị B"},"at":"2024-03-20T02:00:00Z"}}}"#,
        r#"{"MilestoneApproved":{"milestone":"register-2024","note":"","stamp":{"by":{"agency":"BDV","person":"Võ E"},"at":"2024-04-02T02:00:00Z"}}}"#,
        r#"{"ReminderQueued":{"milestone":"register-2024","key":"overdue-7","kind":"overdue","covers":[],"recipients":[{"agency":"MTTQ","role":"implementer"}],"window":"2024-04-07","note":null,"stamp":{"by":{"system":"scheduler"},"at":"2024-04-07T01:00:00Z"}}}"#,
    ] {
        let e: TaskEvent = serde_json::from_str(json).unwrap();
        cqrs_es::Aggregate::apply(&mut task, e);
    }
    let m = task.milestone(&mid("register-2024")).unwrap();
    let statuses: Vec<MilestoneStatus> = m.obligations.iter().map(|o| o.status).collect();
    assert_eq!(statuses, [MilestoneStatus::Approved, MilestoneStatus::Open]);
    assert!(matches!(
        &m.obligations[0].submitted,
        Some(Stamp {
            by: Actor::Legacy { .. },
            ..
        })
    ));
    // The old point stands for that point of every obligation.
    assert!(m.has_reminder("overdue-7", &ObligationRef::Agency(code("MTTQ"))));
    assert!(!m.has_reminder("overdue-14", &ObligationRef::Agency(code("MTTQ"))));
}

#[tokio::test]
async fn an_approved_milestone_cannot_be_submitted_again_but_a_returned_one_can() {
    let mut approved = registered();
    approved.push(submitted_by("UBND", "Trần Thị B"));
    let mut returned = approved.clone();
    approved.push(TaskEvent::MilestoneApproved {
        milestone: mid("register-2024"),
        obligation: ob("UBND"),
        note: String::new(),
        stamp: person("BDV", "Võ E"),
    });
    returned.push(TaskEvent::MilestoneReturned {
        milestone: mid("register-2024"),
        obligation: ob("UBND"),
        reason: "Bổ sung".into(),
        stamp: person("BDV", "Võ E"),
    });
    let submit = || {
        cmd(
            person("UBND", "Trần Thị B"),
            TaskAction::Submit {
                milestone: mid("register-2024"),
                agency: None,
                note: "Lần 2".into(),
                attachments: vec![],
            },
        )
    };

    let refused = Tf::with(()).given(approved).when_async(submit()).await.inspect_result();
    assert_eq!(refused.unwrap_err().code(), "already_approved");
    let ok = Tf::with(()).given(returned).when_async(submit()).await.inspect_result();
    assert!(matches!(
        ok.as_deref(),
        Ok([TaskEvent::MilestoneSubmitted { .. }, TaskEvent::ReminderQueued { .. }])
    ));
}

#[tokio::test]
async fn approval_requires_a_submission_and_a_return_requires_a_reason() {
    let approve = cmd(
        person("BDV", "Võ E"),
        TaskAction::Approve {
            milestone: mid("register-2024"),
            agency: None,
            note: String::new(),
        },
    );
    let refused = Tf::with(())
        .given(registered())
        .when_async(approve)
        .await
        .inspect_result();
    assert_eq!(refused.unwrap_err().code(), "not_submitted");

    let mut given = registered();
    given.push(submitted_by("UBND", "Trần Thị B"));
    Tf::with(())
        .given(given)
        .when_async(cmd(
            person("BDV", "Võ E"),
            TaskAction::Return {
                milestone: mid("register-2024"),
                agency: None,
                reason: "  ".into(),
            },
        ))
        .await
        .then_expect_error(TaskError::ReasonRequired);
}

#[tokio::test]
async fn an_extension_must_move_the_deadline_later_and_records_both_dates() {
    let stamp = person("BTV", "Võ E");
    Tf::with(())
        .given(registered())
        .when_async(cmd(
            stamp.clone(),
            TaskAction::Extend {
                milestone: mid("register-2024"),
                agency: Some(code("UBND")),
                until: NaiveDate::from_ymd_opt(2024, 3, 1).unwrap(),
                reason: "x".into(),
            },
        ))
        .await
        .then_expect_error(TaskError::ExtensionNotLater {
            current: NaiveDate::from_ymd_opt(2024, 3, 31).unwrap(),
            requested: NaiveDate::from_ymd_opt(2024, 3, 1).unwrap(),
        });
    Tf::with(())
        .given(registered())
        .when_async(cmd(
            stamp.clone(),
            TaskAction::Extend {
                milestone: mid("register-2024"),
                agency: Some(code("UBND")),
                until: NaiveDate::from_ymd_opt(2024, 4, 30).unwrap(),
                reason: "Lùi lịch".into(),
            },
        ))
        .await
        .then_expect_events(vec![
            TaskEvent::DeadlineExtended {
                milestone: mid("register-2024"),
                obligation: ob("UBND"),
                from: NaiveDate::from_ymd_opt(2024, 3, 31).unwrap(),
                until: NaiveDate::from_ymd_opt(2024, 4, 30).unwrap(),
                reason: "Lùi lịch".into(),
                stamp: stamp.clone(),
            },
            // The agency that owes it hears of the new deadline and why.
            TaskEvent::ReminderQueued {
                milestone: mid("register-2024"),
                obligation: ob("UBND"),
                key: "extended-1:UBND".into(),
                kind: ReminderKind::Extended,
                covers: vec![],
                recipients: vec![Recipient {
                    agency: code("UBND"),
                    role: Role::Implementer,
                }],
                window: None,
                note: Some("Hạn mới: 30/04/2024 (trước đây 31/03/2024). Lý do: Lùi lịch".into()),
                stamp,
            },
        ]);
}

#[tokio::test]
async fn reports_are_checked_against_the_task_kpis() {
    let report = |key: &str| {
        cmd(
            person("MTTQ", "Đỗ F"),
            TaskAction::ReportProgress {
                milestone: mid("register-2024"),
                agency: None,
                note: String::new(),
                kpis: vec![KpiValue {
                    key: KpiKey::parse(key).unwrap(),
                    value: 2.0,
                }],
                evidence: vec![],
                attachments: vec![],
            },
        )
    };
    let refused = Tf::with(())
        .given(registered())
        .when_async(report("khac"))
        .await
        .inspect_result();
    assert_eq!(refused.unwrap_err().code(), "unknown_kpi");
    let ok = Tf::with(())
        .given(registered())
        .when_async(report("mo-hinh"))
        .await
        .inspect_result();
    assert!(matches!(ok.as_deref(), Ok([TaskEvent::ProgressReported { .. }])));
}

#[tokio::test]
async fn plan_loads_are_attributed_and_the_system_cannot_approve() {
    // An administrator's account may load a plan (the web layer checks the role).
    let mut as_admin = sync(vec![], definition());
    as_admin.stamp = person("UBKT", "Phạm Thanh Tra");
    let events = Tf::with(())
        .given_no_previous_events()
        .when_async(as_admin)
        .await
        .inspect_result()
        .unwrap();
    assert!(matches!(&events[0], TaskEvent::TaskRegistered { stamp, .. } if stamp.by.account_id().is_some()));
    // Release 0.1 actors never act again.
    let mut legacy = sync(vec![], definition());
    legacy.stamp.by = Actor::Legacy {
        agency: code("BTV"),
        person: PersonName::parse("Võ E").unwrap(),
    };
    Tf::with(())
        .given_no_previous_events()
        .when_async(legacy)
        .await
        .then_expect_error(TaskError::SystemOnly);
    let mut given = registered();
    given.push(submitted_by("UBND", "Trần Thị B"));
    Tf::with(())
        .given(given)
        .when_async(cmd(
            system(),
            TaskAction::Approve {
                milestone: mid("register-2024"),
                agency: None,
                note: String::new(),
            },
        ))
        .await
        .then_expect_error(TaskError::PersonRequired);
}

#[tokio::test]
async fn a_withdrawn_task_refuses_work_and_is_reinstated_when_it_returns_to_the_plan() {
    let mut given = registered();
    given.push(TaskEvent::TaskWithdrawn {
        reason: "Bỏ khỏi kế hoạch".into(),
        stamp: system(),
    });
    let refused = Tf::with(())
        .given(given.clone())
        .when_async(cmd(
            person("UBND", "Trần Thị B"),
            TaskAction::Submit {
                milestone: mid("register-2024"),
                agency: None,
                note: String::new(),
                attachments: vec![],
            },
        ))
        .await
        .inspect_result();
    assert_eq!(refused.unwrap_err(), TaskError::Withdrawn);
    let events = Tf::with(())
        .given(given)
        .when_async(sync(vec![spec("register-2024", (2024, 3, 31))], definition()))
        .await
        .inspect_result()
        .unwrap();
    assert!(matches!(&events[..], [TaskEvent::TaskReinstated { .. }]));
}

fn queue(key: &str, kind: ReminderKind, covers: &[&str]) -> TaskCommand {
    TaskCommand {
        stamp: system(),
        action: TaskAction::QueueReminder {
            milestone: mid("register-2024"),
            obligation: ObligationRef::Agency(code("UBND")),
            key: key.into(),
            kind,
            covers: covers.iter().map(|c| c.to_string()).collect(),
            recipients: vec![Recipient {
                agency: code("UBND"),
                role: Role::Implementer,
            }],
            window: NaiveDate::from_ymd_opt(2024, 3, 29),
        },
    }
}

#[tokio::test]
async fn a_reminder_point_is_queued_once_even_when_covered() {
    let events = Tf::with(())
        .given(registered())
        .when_async(queue("before-0", ReminderKind::Upcoming, &["before-1", "before-3"]))
        .await
        .inspect_result()
        .unwrap();
    assert!(matches!(&events[..], [TaskEvent::ReminderQueued { .. }]));
    let mut given = registered();
    given.extend(events);
    for key in ["before-0", "before-3"] {
        Tf::with(())
            .given(given.clone())
            .when_async(queue(key, ReminderKind::Upcoming, &[]))
            .await
            .then_expect_events(vec![]);
    }
    // People cannot queue reminders.
    let mut by_person = queue("before-7", ReminderKind::Upcoming, &[]);
    by_person.stamp = person("BDV", "Võ E");
    Tf::with(())
        .given(given)
        .when_async(by_person)
        .await
        .then_expect_error(TaskError::SystemOnly);
}

#[tokio::test]
async fn no_deadline_reminders_once_the_work_is_submitted() {
    let mut given = registered();
    given.push(submitted_by("UBND", "Trần Thị B"));
    Tf::with(())
        .given(given)
        .when_async(queue("overdue-7", ReminderKind::Overdue, &[]))
        .await
        .then_expect_events(vec![]);
}

fn digest_action(action: TaskAction) -> TaskCommand {
    TaskCommand {
        stamp: system(),
        action,
    }
}

fn result(address: &str, outcome: AddressOutcome) -> AddressResult {
    AddressResult {
        address: address.into(),
        outcome,
        reply: "reply".into(),
    }
}

/// The task after `events`, and how its one reminder stands with UBND.
fn delivery_after(events: &[TaskEvent]) -> Delivery {
    let mut task = Task::default();
    for e in events {
        cqrs_es::Aggregate::apply(&mut task, e.clone());
    }
    task.milestone(&mid("register-2024")).unwrap().reminders[0]
        .deliveries
        .get(&code("UBND"))
        .cloned()
        .unwrap()
}

#[test]
fn a_digest_is_fixed_then_tried_per_address_until_nothing_is_left() {
    let mut given = registered();
    given.extend(
        registered_task()
            .decide(queue("before-0", ReminderKind::Upcoming, &[]))
            .unwrap(),
    );
    let items = vec![(mid("register-2024"), "before-0:UBND".to_string())];
    let task = |events: &[TaskEvent]| {
        let mut t = Task::default();
        for e in events {
            cqrs_es::Aggregate::apply(&mut t, e.clone());
        }
        t
    };
    let form = digest_action(TaskAction::FormDigest {
        agency: code("UBND"),
        items: items.clone(),
        message_id: "m@x".into(),
        addresses: vec!["a@x.vn".into(), "b@x.vn".into()],
    });
    let formed = task(&given).decide(form.clone()).unwrap();
    assert!(matches!(&formed[..], [TaskEvent::ReminderBatched { .. }]));
    given.extend(formed);
    // Formed once only: a second digest cannot take the item.
    assert!(matches!(
        task(&given).decide(form),
        Err(TaskError::AlreadyInDigest { .. })
    ));
    assert_eq!(delivery_after(&given).status(), DeliveryStatus::Queued);
    assert_eq!(delivery_after(&given).to_try(), ["a@x.vn", "b@x.vn"]);

    // a@ takes it, b@ is deferred: only b@ is left, to try later.
    let attempt = |n: u32, results: Vec<AddressResult>, next: bool| {
        digest_action(TaskAction::RecordAttempt {
            agency: code("UBND"),
            items: items.clone(),
            message_id: "m@x".into(),
            attempt: n,
            results,
            next_attempt: next.then(|| "2024-03-01T01:00:00Z".parse().unwrap()),
        })
    };
    let first = task(&given)
        .decide(attempt(
            1,
            vec![
                result("a@x.vn", AddressOutcome::Accepted),
                result("b@x.vn", AddressOutcome::Deferred),
            ],
            true,
        ))
        .unwrap();
    given.extend(first);
    assert_eq!(delivery_after(&given).status(), DeliveryStatus::Queued);
    assert_eq!(delivery_after(&given).to_try(), ["b@x.vn"]);
    // The last attempt: b@ is given up, the item counts as sent (a@ has it),
    // and `outbox retry` may put b@ back.
    let last = task(&given)
        .decide(attempt(2, vec![result("b@x.vn", AddressOutcome::Deferred)], false))
        .unwrap();
    given.extend(last);
    let d = delivery_after(&given);
    assert_eq!(d.status(), DeliveryStatus::Sent);
    assert!(d.failed_for_good());
    assert_eq!(d.to_try(), Vec::<String>::new());
    // An attempt recorded again after the end changes nothing.
    assert_eq!(
        task(&given)
            .decide(attempt(3, vec![result("b@x.vn", AddressOutcome::Accepted)], false))
            .unwrap(),
        vec![]
    );
    // Re-queued by an operator: b@ only, same Message-ID.
    let requeue = TaskCommand {
        stamp: Stamp {
            by: Actor::operator("root", "host"),
            at: "2024-03-09T01:00:00Z".parse().unwrap(),
        },
        action: TaskAction::Requeue {
            agency: code("UBND"),
            items: items.clone(),
        },
    };
    let again = task(&given).decide(requeue).unwrap();
    assert!(matches!(&again[..], [TaskEvent::ReminderRequeued { .. }]));
    given.extend(again);
    let d = delivery_after(&given);
    assert_eq!(
        (d.status(), d.to_try(), d.message_id()),
        (DeliveryStatus::Queued, vec!["b@x.vn".to_string()], Some("m@x"))
    );
}

#[test]
fn a_rejected_address_is_final_at_once_and_only_the_engine_records_attempts() {
    let mut given = registered();
    given.extend(
        registered_task()
            .decide(queue("before-0", ReminderKind::Upcoming, &[]))
            .unwrap(),
    );
    let items = vec![(mid("register-2024"), "before-0:UBND".to_string())];
    let mut task = Task::default();
    for e in &given {
        cqrs_es::Aggregate::apply(&mut task, e.clone());
    }
    for e in task
        .decide(digest_action(TaskAction::FormDigest {
            agency: code("UBND"),
            items: items.clone(),
            message_id: "m@x".into(),
            addresses: vec!["a@x.vn".into()],
        }))
        .unwrap()
    {
        cqrs_es::Aggregate::apply(&mut task, e);
    }
    let rejected = TaskAction::RecordAttempt {
        agency: code("UBND"),
        items,
        message_id: "m@x".into(),
        attempt: 1,
        results: vec![result("a@x.vn", AddressOutcome::Rejected)],
        next_attempt: None,
    };
    let by_person = TaskCommand {
        stamp: person("UBND", "Trần Thị B"),
        action: rejected.clone(),
    };
    assert_eq!(task.decide(by_person), Err(TaskError::SystemOnly));
    for e in task.decide(digest_action(rejected)).unwrap() {
        cqrs_es::Aggregate::apply(&mut task, e);
    }
    let d = task.milestone(&mid("register-2024")).unwrap().reminders[0].deliveries[&code("UBND")].clone();
    assert_eq!(d.status(), DeliveryStatus::Failed);
    assert!(d.failed_for_good());
}

fn registered_task() -> Task {
    let mut task = Task::default();
    for e in registered() {
        cqrs_es::Aggregate::apply(&mut task, e);
    }
    task
}

fn attachment(name: &str, byte: u8) -> crate::domain::task::Attachment {
    use sha2::Digest;
    crate::domain::task::Attachment {
        sha256: crate::domain::task::FileHash::parse(&hex::encode(sha2::Sha256::digest([byte]))).unwrap(),
        name: name.into(),
        size: 1,
        media_type: "application/pdf".into(),
    }
}

#[test]
fn the_round_keeps_what_was_filed_until_it_is_returned() {
    let mut task = registered_task();
    let report = cmd(
        person("UBND", "Trần Thị B"),
        TaskAction::ReportProgress {
            milestone: mid("register-2024"),
            agency: None,
            note: String::new(),
            kpis: vec![],
            evidence: vec![],
            attachments: vec![attachment("bien-ban.pdf", 1)],
        },
    );
    // A file alone is a report.
    let events = task.decide(report).unwrap();
    let TaskEvent::ProgressReported { attachments, .. } = &events[0] else {
        panic!("{events:?}")
    };
    assert_eq!(attachments[0].name, "bien-ban.pdf");
    for e in events {
        cqrs_es::Aggregate::apply(&mut task, e);
    }
    let submit = cmd(
        person("UBND", "Trần Thị B"),
        TaskAction::Submit {
            milestone: mid("register-2024"),
            agency: None,
            note: "Đã đăng ký".into(),
            attachments: vec![attachment("anh.jpg", 2)],
        },
    );
    for e in task.decide(submit).unwrap() {
        cqrs_es::Aggregate::apply(&mut task, e);
    }
    let o = |task: &Task| task.milestone(&mid("register-2024")).unwrap().obligations[0].clone();
    let filed = o(&task).filed;
    assert_eq!(filed.len(), 2);
    assert!(!filed[0].submission && filed[1].submission);
    assert_eq!(filed[1].note, "Đã đăng ký");
    assert_eq!(filed[1].attachments[0].name, "anh.jpg");
    cqrs_es::Aggregate::apply(
        &mut task,
        TaskEvent::MilestoneReturned {
            milestone: mid("register-2024"),
            obligation: ob("UBND"),
            reason: "Thiếu biên bản".into(),
            stamp: person("BDV", "Võ E"),
        },
    );
    assert!(o(&task).filed.is_empty(), "a returned round starts again");
}

#[test]
fn events_without_files_serialize_as_before() {
    let e = submitted_by("UBND", "Trần Thị B");
    let json = serde_json::to_value(&e).unwrap();
    assert!(!json.to_string().contains("attachments"), "{json}");
    let back: TaskEvent = serde_json::from_value(json).unwrap();
    assert_eq!(back, e);
    let bad = serde_json::json!({"sha256": "xyz", "name": "a", "size": 1, "media_type": "a/b"});
    assert!(serde_json::from_value::<crate::domain::task::Attachment>(bad).is_err());
}

#[test]
fn kpi_values_read_with_label_and_unit() {
    let def = definition();
    let target = &def.kpis[0];
    assert_eq!(target.value_text(2.0), "2 mô hình");
    assert_eq!(target.reading(2.5), "Mô hình “Dân vận khéo”: 2,5 mô hình");
    assert_eq!(with_unit(85.0, "%"), "85%");
    assert_eq!(with_unit(-0.0, ""), "0");
    assert_eq!(format_number(0.4000001), "0,4");
}

#[test]
fn actors_read_as_vietnamese_names() {
    assert_eq!(system().by.to_string(), "Hệ thống (nạp kế hoạch)");
    assert_eq!(
        Actor::operator("kiem", "may-chu").to_string(),
        "Người vận hành kiem (máy may-chu)"
    );
    assert_eq!(person("UBND", "Nguyễn Văn A").by.to_string(), "Nguyễn Văn A (UBND)");
    let cli = Channel::Cli {
        os_user: "a".into(),
        host: "b".into(),
    };
    assert_eq!(cli.label_vi(), "dòng lệnh");
}

#[test]
fn the_history_names_milestones_by_title_and_kpis_by_label() {
    use crate::audit::history::describe;
    let mut task = Task::default();
    let mut lines = Vec::new();
    let reported = TaskEvent::ProgressReported {
        milestone: mid("register-2024"),
        obligation: ob("UBND"),
        note: "Đã xây dựng".into(),
        kpis: vec![KpiValue::new(KpiKey::parse("mo-hinh").unwrap(), 2.0)],
        evidence: vec![],
        attachments: vec![],
        stamp: person("UBND", "Nguyễn Văn A"),
    };
    let queued = TaskEvent::ReminderQueued {
        milestone: mid("register-2024"),
        obligation: ob("UBND"),
        key: "before-7:UBND".into(),
        kind: ReminderKind::Upcoming,
        covers: vec![],
        recipients: vec![Recipient {
            agency: code("UBND"),
            role: Role::Implementer,
        }],
        window: None,
        note: None,
        stamp: system(),
    };
    for e in registered()
        .into_iter()
        .chain([reported, submitted_by("UBND", "Nguyễn Văn A"), queued])
    {
        cqrs_es::Aggregate::apply(&mut task, e.clone());
        let (what, details) = describe(&e, &task, chrono_tz::Asia::Ho_Chi_Minh);
        lines.push(format!("{what} — {details}"));
    }
    let text = lines.join("\n");
    for shown in [
        "Mở mốc “Mốc register-2024” — hạn 31/03/2024",
        "Báo cáo tiến độ mốc “Mốc register-2024” — Đã xây dựng; Mô hình “Dân vận khéo”: 2 mô hình",
        "Nộp mốc “Mốc register-2024” — Đã đăng ký",
        "Xếp hàng thư nhắc trước hạn 7 ngày (phần của UBND) (mốc “Mốc register-2024”) — UBND (cơ quan thực hiện)",
    ] {
        assert!(text.contains(shown), "{shown:?} not in\n{text}");
    }
    for raw in ["mo-hinh", "= 2", "before-7", "2.0"] {
        assert!(!text.contains(raw), "{raw:?} in\n{text}");
    }
}

fn discuss(agency: Option<&str>, text: &str) -> TaskAction {
    TaskAction::Discuss {
        milestone: mid("register-2024"),
        agency: agency.map(code),
        text: text.into(),
    }
}

/// The recipients of the notice a message queues.
fn message_recipients(events: &[TaskEvent]) -> Vec<(String, crate::domain::reminders::Role)> {
    events
        .iter()
        .find_map(|e| match e {
            TaskEvent::ReminderQueued {
                kind: ReminderKind::Message,
                recipients,
                ..
            } => Some(recipients.iter().map(|r| (r.agency.to_string(), r.role)).collect()),
            _ => None,
        })
        .expect("a message notice")
}

#[test]
fn a_message_goes_to_the_other_side_of_the_obligation() {
    use crate::domain::reminders::Role;
    let mut task = registered_task();
    // The owing agency writes: the lead and advisory agencies hear of it.
    let events = task
        .decide(cmd(person("MTTQ", "Đỗ Thị Mai"), discuss(None, "Xin hỏi mẫu đăng ký")))
        .unwrap();
    assert!(matches!(
        &events[0],
        TaskEvent::MessagePosted { obligation, text, .. }
            if obligation.agency() == Some(&code("MTTQ")) && text == "Xin hỏi mẫu đăng ký"
    ));
    assert_eq!(
        message_recipients(&events),
        [("BTV".to_string(), Role::Lead), ("BDV".to_string(), Role::Advisory)]
    );
    for e in &events {
        cqrs_es::Aggregate::apply(&mut task, e.clone());
    }
    // A supervisor answers on that agency's part: the agency hears of it,
    // and the notice's key counts the messages of the obligation.
    let events = task
        .decide(cmd(
            person("BDV", "Nguyễn Văn An"),
            discuss(Some("MTTQ"), "Dùng mẫu số 2"),
        ))
        .unwrap();
    assert_eq!(message_recipients(&events), [("MTTQ".to_string(), Role::Implementer)]);
    assert!(matches!(&events[1], TaskEvent::ReminderQueued { key, .. } if key.starts_with("message-2")));
    // A supervisor must say whose part when there are several.
    assert!(task
        .decide(cmd(person("BDV", "Nguyễn Văn An"), discuss(None, "Chung chung")))
        .is_err());
    // An agency with no place on the task, and an empty message, are refused.
    assert!(matches!(
        task.decide(cmd(person("TMGV", "Phạm Thu"), discuss(Some("MTTQ"), "Chen vào"))),
        Err(TaskError::NotInvolved { .. })
    ));
    assert!(matches!(
        task.decide(cmd(person("UBND", "Trần Văn Ủy"), discuss(None, " \n "))),
        Err(TaskError::EmptyMessage)
    ));
    // An implementer cannot write on another implementer's part.
    assert!(matches!(
        task.decide(cmd(person("UBND", "Trần Văn Ủy"), discuss(Some("MTTQ"), "Của MTTQ"))),
        Err(TaskError::NotInvolved { .. })
    ));
}

/// Runs each (stamp, action) on the task, keeping every event in order.
fn run(mut history: Vec<TaskEvent>, steps: Vec<(Stamp, TaskAction)>) -> Vec<TaskEvent> {
    let mut task = Task::default();
    for e in &history {
        cqrs_es::Aggregate::apply(&mut task, e.clone());
    }
    for (stamp, action) in steps {
        for e in task.decide(cmd(stamp, action)).unwrap() {
            cqrs_es::Aggregate::apply(&mut task, e.clone());
            history.push(e);
        }
    }
    history
}

/// The personal notice the event of `name` (the last one) calls for.
fn notice_after(history: &[TaskEvent], name: &str) -> Option<crate::domain::notices::Addressed> {
    let at = history.iter().rposition(|e| e.name() == name).expect(name);
    crate::domain::notices::addressed(&history[..=at])
}

#[test]
fn people_are_told_of_decisions_on_what_they_filed_messages_to_them_and_submissions_for_them() {
    use crate::domain::notices::{Addressees, NoticeKind};
    let m = mid("register-2024");
    let mai = person("MTTQ", "Đỗ Thị Mai");
    let lan = account("MTTQ", "Lê Thị Lan", "acc-lan");
    let an = person("BDV", "Nguyễn Văn An");
    let report = TaskAction::ReportProgress {
        milestone: m.clone(),
        agency: None,
        note: "Đã chọn mô hình".into(),
        kpis: vec![],
        evidence: vec![],
        attachments: vec![],
    };
    let submit = TaskAction::Submit {
        milestone: m.clone(),
        agency: None,
        note: "Đã đăng ký".into(),
        attachments: vec![],
    };
    // Lan reports, Mai submits: the supervisors of the task (lead BTV,
    // advisory BDV) are told, but not the two who filed.
    let history = run(registered(), vec![(lan.clone(), report), (mai.clone(), submit.clone())]);
    let n = notice_after(&history, "MilestoneSubmitted").unwrap();
    assert_eq!(n.kind, NoticeKind::Submission);
    assert_eq!(n.obligation, ob("MTTQ").unwrap());
    assert_eq!(
        n.to,
        Addressees::Supervisors {
            agencies: vec![code("BTV"), code("BDV")],
            except: vec!["acc-MTTQ-Đỗ Thị Mai".to_string(), "acc-lan".to_string()],
        }
    );
    // An's return reaches both who filed the round, by account.
    let returned = TaskAction::Return {
        milestone: m.clone(),
        agency: Some(code("MTTQ")),
        reason: "Thiếu số liệu".into(),
    };
    let history = run(history, vec![(an.clone(), returned)]);
    let n = notice_after(&history, "MilestoneReturned").unwrap();
    assert_eq!(n.kind, NoticeKind::Decision);
    assert_eq!(
        n.to,
        Addressees::Accounts(vec!["acc-MTTQ-Đỗ Thị Mai".into(), "acc-lan".into()])
    );
    // Mai answers: An took part (he returned it), so he alone is told.
    let history = run(history, vec![(mai.clone(), discuss(None, "Đã bổ sung"))]);
    let n = notice_after(&history, "MessagePosted").unwrap();
    assert_eq!(
        (n.kind, n.to),
        (
            NoticeKind::Message,
            Addressees::Accounts(vec!["acc-BDV-Nguyễn Văn An".into()])
        )
    );
    // An writes back: those of MTTQ who took part are told, not An.
    let history = run(history, vec![(an.clone(), discuss(Some("MTTQ"), "Cảm ơn"))]);
    let n = notice_after(&history, "MessagePosted").unwrap();
    assert_eq!(
        n.to,
        Addressees::Accounts(vec!["acc-MTTQ-Đỗ Thị Mai".into(), "acc-lan".into()])
    );
    // Mai submits again and An approves: only Mai filed this round.
    let approve = TaskAction::Approve {
        milestone: m.clone(),
        agency: Some(code("MTTQ")),
        note: "Đồng ý".into(),
    };
    let history = run(history, vec![(mai.clone(), submit), (an, approve)]);
    let n = notice_after(&history, "MilestoneApproved").unwrap();
    assert_eq!(n.to, Addressees::Accounts(vec!["acc-MTTQ-Đỗ Thị Mai".into()]));
    // A first question from an agency no supervisor has answered yet goes
    // to the supervisors; one from a supervisor to an agency where nobody
    // has acted goes only to the agency's digest.
    let history = run(
        registered(),
        vec![(person("UBND", "Trần Văn Ủy"), discuss(None, "Hỏi mẫu"))],
    );
    let n = notice_after(&history, "MessagePosted").unwrap();
    assert_eq!(
        n.to,
        Addressees::Supervisors {
            agencies: vec![code("BTV"), code("BDV")],
            except: vec!["acc-UBND-Trần Văn Ủy".into()],
        }
    );
    let history = run(
        registered(),
        vec![(person("BTV", "Lê Văn Thường"), discuss(Some("UBND"), "Nhắc"))],
    );
    assert_eq!(notice_after(&history, "MessagePosted"), None);
    // Events that are not a person's action on an obligation call for none.
    assert_eq!(crate::domain::notices::addressed(&registered()), None);
}

/// The agencies a queued notice of `kind` goes to, in order.
fn notice_recipients(events: &[TaskEvent], kind: ReminderKind) -> Vec<String> {
    events
        .iter()
        .find_map(|e| match e {
            TaskEvent::ReminderQueued {
                kind: k, recipients, ..
            } if *k == kind => Some(recipients.iter().map(|r| r.agency.to_string()).collect()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("a {kind:?} notice in {events:?}"))
}

#[test]
fn every_agency_sharing_a_joint_obligation_hears_of_its_submission_and_decisions() {
    let mut joint = spec("register-2024", (2024, 3, 31));
    joint.obligation = ObligationMode::Joint;
    let history = run(Task::default().decide(sync(vec![joint], definition())).unwrap(), vec![]);
    let submit = TaskAction::Submit {
        milestone: mid("register-2024"),
        agency: None,
        note: String::new(),
        attachments: vec![],
    };
    // MTTQ submits: the supervisors decide, UBND (sharing it) is told.
    let history = run(history, vec![(person("MTTQ", "Đỗ F"), submit.clone())]);
    assert_eq!(
        notice_recipients(&history, ReminderKind::Submitted),
        ["BTV", "BDV", "UBND"]
    );
    // The return reaches both, the one that submitted first.
    let returned = TaskAction::Return {
        milestone: mid("register-2024"),
        agency: None,
        reason: "Thiếu số liệu".into(),
    };
    let history = run(history, vec![(person("BDV", "An"), returned)]);
    assert_eq!(notice_recipients(&history, ReminderKind::Returned), ["MTTQ", "UBND"]);
    // UBND submits this time, and the approval reaches both.
    let history = run(history, vec![(person("UBND", "Ủy"), submit)]);
    let approve = TaskAction::Approve {
        milestone: mid("register-2024"),
        agency: None,
        note: String::new(),
    };
    let history = run(history, vec![(person("BDV", "An"), approve)]);
    assert_eq!(notice_recipients(&history, ReminderKind::Approved), ["UBND", "MTTQ"]);
    // An obligation of one agency still tells only that agency.
    let history = run(
        registered(),
        vec![(
            person("MTTQ", "Đỗ F"),
            TaskAction::Submit {
                milestone: mid("register-2024"),
                agency: None,
                note: String::new(),
                attachments: vec![],
            },
        )],
    );
    assert_eq!(notice_recipients(&history, ReminderKind::Submitted), ["BTV", "BDV"]);
}
