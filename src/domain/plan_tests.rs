//! The rules of the plan aggregate, in given/when/then form: directory
//! changes queue notices to the old addresses, and their delivery is recorded.

use super::*;
use crate::domain::ids::PersonName;
use crate::domain::task::{Channel, Principal};
use cqrs_es::test::TestFramework;

type Tf = TestFramework<Plan>;

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn code(s: &str) -> AgencyCode {
    AgencyCode::parse(s).unwrap()
}

fn header() -> PlanHeader {
    PlanHeader {
        id: PlanId::parse("duc-pho-de-an-13").unwrap(),
        title: "Kế hoạch thực hiện Đề án 13".into(),
        issuer: code("BTV"),
        document: None,
        start: NaiveDate::from_ymd_opt(2022, 11, 23).unwrap(),
        end: NaiveDate::from_ymd_opt(2026, 12, 31).unwrap(),
        time_zone: "Asia/Ho_Chi_Minh".into(),
        yearly_report: "15/12".into(),
        first_year: 2023,
        last_year: 2026,
        five_year_review: NaiveDate::from_ymd_opt(2026, 12, 31).unwrap(),
        reminders: ReminderPolicy::default(),
        calendar: WorkCalendar::default(),
        checkpoint_at: DEFAULT_CHECKPOINT_AT.into(),
        extend_until: None,
        deadline_rule: Default::default(),
        mail: Default::default(),
    }
}

fn agency(c: &str, emails: &[&str], members: &[(&str, &[&str])]) -> Agency {
    Agency {
        code: code(c),
        name: format!("Cơ quan {c}"),
        short: None,
        aliases: vec![],
        emails: emails.iter().map(|e| e.to_string()).collect(),
        members: members
            .iter()
            .map(|(name, emails)| Member {
                name: name.to_string(),
                emails: emails.iter().map(|e| e.to_string()).collect(),
            })
            .collect(),
    }
}

fn directory() -> Vec<Agency> {
    vec![
        agency("BDV", &["bdv@ducpho.example"], &[]),
        agency("UBND", &["ubnd@ducpho.example"], &[]),
        agency(
            "CTXH",
            &[],
            &[
                ("Hội Phụ nữ", &["hoi-phu-nu@ducpho.example"]),
                ("Hội Nông dân", &["hoi-nong-dan@ducpho.example"]),
            ],
        ),
    ]
}

fn loader() -> Stamp {
    Stamp {
        by: Actor::system_on("plan-loader", "test", "test"),
        at: at("2024-02-01T01:00:00Z"),
    }
}

fn operator() -> Stamp {
    Stamp {
        by: Actor::operator("root", "may-chu"),
        at: at("2024-03-01T02:30:00Z"),
    }
}

fn dispatcher() -> Stamp {
    Stamp {
        by: Actor::system_on("dispatcher", "test", "test"),
        at: at("2024-03-01T03:00:00Z"),
    }
}

/// The plan file all loads here come from (the same text: only the
/// directory in the command differs).
fn src() -> PlanSource {
    PlanSource {
        file: "plan.toml".into(),
        sha256: "0".repeat(64),
        document: None,
    }
}

fn registered() -> Vec<PlanEvent> {
    vec![PlanEvent::PlanRegistered {
        header: header(),
        agencies: directory(),
        source: Some(src()),
        stamp: loader(),
    }]
}

fn sync(agencies: Vec<Agency>, stamp: Stamp) -> PlanCommand {
    PlanCommand::Sync(SyncPlan {
        header: header(),
        agencies,
        source: src(),
        stamp,
    })
}

fn redirected() -> Vec<Agency> {
    let mut agencies = directory();
    agencies[1].emails = vec!["ubnd-moi@elsewhere.example".into()];
    agencies
}

fn ubnd_notice() -> PlanEvent {
    PlanEvent::DirectoryNoticeQueued {
        key: "directory-1-UBND".into(),
        agency: code("UBND"),
        to: vec!["ubnd@ducpho.example".into()],
        removed: vec!["ubnd@ducpho.example".into()],
        added: vec!["ubnd-moi@elsewhere.example".into()],
        stamp: operator(),
    }
}

#[tokio::test]
async fn registering_a_plan_queues_no_notice() {
    let events = Tf::with(())
        .given_no_previous_events()
        .when_async(sync(directory(), loader()))
        .await
        .inspect_result()
        .unwrap();
    assert_eq!(events.len(), 1);
    assert!(matches!(events[0], PlanEvent::PlanRegistered { .. }));
}

#[tokio::test]
async fn redirecting_an_agency_notifies_its_old_address_in_the_same_command() {
    let events = Tf::with(())
        .given(registered())
        .when_async(sync(redirected(), operator()))
        .await
        .inspect_result()
        .unwrap();
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(matches!(events[0], PlanEvent::PlanAmended { agencies: Some(_), .. }));
    assert_eq!(events[1], ubnd_notice());
}

#[tokio::test]
async fn a_member_losing_an_address_notifies_that_address_only() {
    let mut agencies = directory();
    agencies[2].members[0].emails = vec![];
    Tf::with(())
        .given(registered())
        .when_async(sync(agencies, operator()))
        .await
        .then_expect_events(vec![
            PlanEvent::PlanAmended {
                header: None,
                source: Some(src()),
                agencies: Some(Change {
                    from: directory(),
                    to: {
                        let mut a = directory();
                        a[2].members[0].emails = vec![];
                        a
                    },
                }),
                stamp: operator(),
            },
            PlanEvent::DirectoryNoticeQueued {
                key: "directory-1-CTXH".into(),
                agency: code("CTXH"),
                to: vec!["hoi-phu-nu@ducpho.example".into()],
                removed: vec!["hoi-phu-nu@ducpho.example".into()],
                added: vec![],
                stamp: operator(),
            },
        ]);
}

#[tokio::test]
async fn an_added_address_is_told_to_every_old_address() {
    let mut agencies = directory();
    agencies[0].emails.push("them@elsewhere.example".into());
    let events = Tf::with(())
        .given(registered())
        .when_async(sync(agencies, operator()))
        .await
        .inspect_result()
        .unwrap();
    assert_eq!(
        events[1],
        PlanEvent::DirectoryNoticeQueued {
            key: "directory-1-BDV".into(),
            agency: code("BDV"),
            to: vec!["bdv@ducpho.example".into()],
            removed: vec![],
            added: vec!["them@elsewhere.example".into()],
            stamp: operator(),
        }
    );
}

#[tokio::test]
async fn renaming_an_agency_or_recasing_an_address_queues_no_notice() {
    let mut agencies = directory();
    agencies[0].name = "Ban Dân vận Thị ủy Đức Phổ".into();
    agencies[1].emails = vec!["UBND@DucPho.example".into()];
    let events = Tf::with(())
        .given(registered())
        .when_async(sync(agencies, operator()))
        .await
        .inspect_result()
        .unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
}

#[tokio::test]
async fn a_second_change_gets_a_new_key() {
    let mut given = registered();
    given.push(PlanEvent::PlanAmended {
        header: None,
        source: Some(src()),
        agencies: Some(Change {
            from: directory(),
            to: redirected(),
        }),
        stamp: operator(),
    });
    given.push(ubnd_notice());
    let events = Tf::with(())
        .given(given)
        .when_async(sync(directory(), operator()))
        .await
        .inspect_result()
        .unwrap();
    assert!(
        matches!(&events[1], PlanEvent::DirectoryNoticeQueued { key, to, .. }
            if key == "directory-2-UBND" && to == &vec!["ubnd-moi@elsewhere.example".to_string()]),
        "{events:?}"
    );
}

#[tokio::test]
async fn the_dispatcher_records_delivery_once() {
    let mut given = registered();
    given.push(ubnd_notice());
    let sent = PlanCommand::RecordNoticeDelivery {
        key: "directory-1-UBND".into(),
        outcome: DeliveryOutcome::Sent {
            message_id: "directory.ubnd.abc@ducpho.example".into(),
            addresses: vec!["ubnd@ducpho.example".into()],
            reply: "250 OK".into(),
        },
        stamp: dispatcher(),
    };
    Tf::with(())
        .given(given.clone())
        .when_async(sent.clone())
        .await
        .then_expect_events(vec![PlanEvent::DirectoryNoticeSent {
            key: "directory-1-UBND".into(),
            message_id: "directory.ubnd.abc@ducpho.example".into(),
            reply: "250 OK".into(),
            stamp: dispatcher(),
        }]);

    let mut plan = Plan::default();
    for e in given {
        plan.apply(e);
    }
    for e in plan.decide_command(sent.clone()).unwrap() {
        plan.apply(e);
    }
    assert!(plan.notice("directory-1-UBND").unwrap().is_sent());
    assert_eq!(plan.decide_command(sent).unwrap(), vec![], "sent once");
}

#[tokio::test]
async fn only_the_system_records_delivery_of_known_notices() {
    let mut given = registered();
    given.push(ubnd_notice());
    let failed = |key: &str, stamp: Stamp| PlanCommand::RecordNoticeDelivery {
        key: key.into(),
        outcome: DeliveryOutcome::Failed {
            attempt: 1,
            error: "máy chủ thư không trả lời".into(),
            next_attempt: Some(at("2024-03-01T03:01:00Z")),
        },
        stamp,
    };
    Tf::with(())
        .given(given.clone())
        .when_async(failed("directory-9-UBND", dispatcher()))
        .await
        .then_expect_error(PlanError::UnknownNotice("directory-9-UBND".into()));
    let person = Stamp {
        by: Actor::account(Principal {
            account: "acc-1".into(),
            email: "tra@ducpho.example".into(),
            name: PersonName::parse("Phạm Thanh Tra").unwrap(),
            agency: code("UBKT"),
            channel: Channel::Cli {
                os_user: "tra".into(),
                host: "may".into(),
            },
        }),
        at: at("2024-03-01T03:00:00Z"),
    };
    Tf::with(())
        .given(given)
        .when_async(failed("directory-1-UBND", person))
        .await
        .then_expect_error(PlanError::SystemOnly);
}

fn with_document(sha: &str) -> PlanSource {
    PlanSource {
        document: Some(crate::domain::plan::SourceDocument {
            file: "Kế hoạch.docx".into(),
            sha256: sha.repeat(64),
            size: 43_640,
            media_type: "application/vnd.openxmlformats-officedocument.wordprocessingml.document".into(),
        }),
        ..src()
    }
}

fn sync_from(source: PlanSource) -> PlanCommand {
    PlanCommand::Sync(SyncPlan {
        header: header(),
        agencies: directory(),
        source,
        stamp: operator(),
    })
}

/// Events written before plans had an original document read and write
/// back byte for byte: their canonical form (and so their hash) is unchanged.
#[test]
fn a_source_without_a_document_keeps_its_old_shape() {
    let old = r#"{"file":"plan.toml","sha256":"00"}"#;
    let source: PlanSource = serde_json::from_str(old).unwrap();
    assert_eq!(source.document, None);
    assert_eq!(serde_json::to_string(&source).unwrap(), old);
    let with = serde_json::to_value(with_document("a")).unwrap();
    assert_eq!(with["document"]["file"], "Kế hoạch.docx");
    assert_eq!(with["document"]["size"], 43_640);
}

#[tokio::test]
async fn the_same_text_from_a_document_records_the_document_once() {
    let events = Tf::with(())
        .given(registered())
        .when_async(sync_from(with_document("a")))
        .await
        .inspect_result()
        .unwrap();
    assert!(
        matches!(&events[..], [PlanEvent::PlanAmended { header: None, agencies: None, source: Some(s), .. }] if s.document.is_some()),
        "{events:?}"
    );
    let mut history = registered();
    history.extend(events);
    for (source, changes) in [(with_document("a"), 0), (src(), 0), (with_document("b"), 1)] {
        let events = Tf::with(())
            .given(history.clone())
            .when_async(sync_from(source))
            .await
            .inspect_result()
            .unwrap();
        assert_eq!(events.len(), changes, "{events:?}");
    }
}
