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

fn person(agency: &str, name: &str) -> Stamp {
    Stamp {
        by: Actor::person(code(agency), PersonName::parse(name).unwrap()),
        at: at("2024-03-20T02:00:00Z"),
    }
}

fn system() -> Stamp {
    Stamp {
        by: Actor::system("plan-loader"),
        at: at("2024-01-01T00:00:00Z"),
    }
}

fn definition() -> TaskDefinition {
    TaskDefinition {
        title: "Xây dựng, nhân rộng mô hình “Dân vận khéo”".into(),
        text: "Xây dựng, nhân rộng ít nhất 01 mô hình “Dân vận khéo”/năm".into(),
        lead: code("BTV"),
        advisory: vec![code("BDV")],
        implementers: vec![code("UBND"), code("MTTQ")],
        deadline: Some("Trước 31/3 hàng năm".into()),
        source: SourceRef {
            document: None,
            section: "III.1.2".into(),
            line: 1,
        },
        kpis: vec![KpiTarget {
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
        note: "Đã đăng ký".into(),
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
                note: String::new(),
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
                ("submitted-1", ReminderKind::Submitted, None)
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
                note: String::new(),
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
            note: String::new(),
        },
        TaskAction::Return {
            milestone: mid("register-2024"),
            reason: "Thiếu minh chứng".into(),
        },
        TaskAction::Extend {
            milestone: mid("register-2024"),
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
async fn the_submitter_cannot_approve_their_own_milestone() {
    let mut given = registered();
    // The same person may act for two agencies; four-eyes is about the person.
    given.push(submitted_by("UBND", "Nguyễn Văn A"));
    Tf::with(())
        .given(given)
        .when_async(cmd(
            person("BDV", "nguyễn  văn a"),
            TaskAction::Approve {
                milestone: mid("register-2024"),
                note: String::new(),
            },
        ))
        .await
        .then_expect_error(TaskError::FourEyes {
            person: "nguyễn văn a".into(),
            milestone: mid("register-2024"),
        });
}

#[tokio::test]
async fn an_approved_milestone_cannot_be_submitted_again_but_a_returned_one_can() {
    let mut approved = registered();
    approved.push(submitted_by("UBND", "Trần Thị B"));
    let mut returned = approved.clone();
    approved.push(TaskEvent::MilestoneApproved {
        milestone: mid("register-2024"),
        note: String::new(),
        stamp: person("BDV", "Võ E"),
    });
    returned.push(TaskEvent::MilestoneReturned {
        milestone: mid("register-2024"),
        reason: "Bổ sung".into(),
        stamp: person("BDV", "Võ E"),
    });
    let submit = || {
        cmd(
            person("UBND", "Trần Thị B"),
            TaskAction::Submit {
                milestone: mid("register-2024"),
                note: "Lần 2".into(),
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
                until: NaiveDate::from_ymd_opt(2024, 4, 30).unwrap(),
                reason: "Lùi lịch".into(),
            },
        ))
        .await
        .then_expect_events(vec![TaskEvent::DeadlineExtended {
            milestone: mid("register-2024"),
            from: NaiveDate::from_ymd_opt(2024, 3, 31).unwrap(),
            until: NaiveDate::from_ymd_opt(2024, 4, 30).unwrap(),
            reason: "Lùi lịch".into(),
            stamp,
        }]);
}

#[tokio::test]
async fn reports_are_checked_against_the_task_kpis() {
    let report = |key: &str| {
        cmd(
            person("MTTQ", "Đỗ F"),
            TaskAction::ReportProgress {
                milestone: mid("register-2024"),
                note: String::new(),
                kpis: vec![KpiValue {
                    key: KpiKey::parse(key).unwrap(),
                    value: 2.0,
                }],
                evidence: vec![],
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
async fn people_cannot_issue_plan_commands_and_the_system_cannot_approve() {
    let mut as_person = sync(vec![], definition());
    as_person.stamp = person("BTV", "Võ E");
    Tf::with(())
        .given_no_previous_events()
        .when_async(as_person)
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
                note: String::new(),
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

#[tokio::test]
async fn deliveries_are_recorded_per_agency_and_once() {
    let mut given = registered();
    given.extend(
        registered_task()
            .decide(queue("before-0", ReminderKind::Upcoming, &[]))
            .unwrap(),
    );
    let sent = |attempt: u32| TaskCommand {
        stamp: system(),
        action: TaskAction::RecordDelivery {
            milestone: mid("register-2024"),
            key: "before-0".into(),
            agency: code("UBND"),
            outcome: if attempt == 0 {
                DeliveryOutcome::Sent {
                    message_id: "m@x".into(),
                    addresses: vec!["ubnd@ducpho.example".into()],
                    reply: "250 OK".into(),
                }
            } else {
                DeliveryOutcome::Failed {
                    attempt,
                    error: "421 try later".into(),
                    next_attempt: None,
                }
            },
        },
    };
    let failed = Tf::with(())
        .given(given.clone())
        .when_async(sent(1))
        .await
        .inspect_result()
        .unwrap();
    assert!(matches!(&failed[..], [TaskEvent::ReminderFailed { attempt: 1, .. }]));
    let ok = Tf::with(())
        .given(given.clone())
        .when_async(sent(0))
        .await
        .inspect_result()
        .unwrap();
    given.extend(ok);
    Tf::with(())
        .given(given)
        .when_async(sent(0))
        .await
        .then_expect_events(vec![]);
}

fn registered_task() -> Task {
    let mut task = Task::default();
    for e in registered() {
        cqrs_es::Aggregate::apply(&mut task, e);
    }
    task
}
