//! Personal notices: who, besides the agency's digest, is told of an event
//! at their own address. An account hears of the decisions on what it filed
//! (approved, returned), of messages addressed to it, and, as a supervisor,
//! of submissions waiting for its decision.
//!
//! Pure: from a task's events up to the one concerned, the accounts to
//! tell, or the agencies whose supervisors are told (their accounts are
//! found by the caller, who also applies each account's settings).

use super::ids::{AgencyCode, MilestoneId};
use super::task::{ObligationRef, Stamp, Task, TaskDefinition, TaskEvent};
use cqrs_es::Aggregate;

/// What a personal notice is about; each can be turned off on `/account`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum NoticeKind {
    /// A decision on what the account filed: approved or returned.
    Decision,
    /// A message in a discussion the account takes part in.
    Message,
    /// A submission waiting for the account's decision (supervisors).
    Submission,
}

impl NoticeKind {
    pub const ALL: [Self; 3] = [Self::Decision, Self::Message, Self::Submission];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Decision => "decision",
            Self::Message => "message",
            Self::Submission => "submission",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// As the settings on `/account` name it.
    pub fn label_vi(self) -> &'static str {
        match self {
            Self::Decision => "Khi mốc tôi đã nộp được duyệt hoặc bị trả lại",
            Self::Message => "Khi có trao đổi gửi tôi trên mốc tôi đã báo cáo, nộp, duyệt hoặc trao đổi",
            Self::Submission => "Khi có mốc được nộp, chờ tôi duyệt (người duyệt)",
        }
    }
}

/// Who is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Addressees {
    /// These accounts, by id.
    Accounts(Vec<String>),
    /// Every supervisor account of these agencies, but the accounts listed
    /// (those who filed the round: they may not decide it).
    Supervisors {
        agencies: Vec<AgencyCode>,
        except: Vec<String>,
    },
}

/// A personal notice an event calls for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addressed {
    pub kind: NoticeKind,
    pub milestone: MilestoneId,
    pub obligation: ObligationRef,
    pub to: Addressees,
}

/// The notice the last of `history` (a task's events in order) calls for,
/// if any.
pub fn addressed(history: &[TaskEvent]) -> Option<Addressed> {
    let (event, before) = history.split_last()?;
    addressed_after(&replayed(before), before, event)
}

/// The task as `events` leave it.
pub fn replayed(events: &[TaskEvent]) -> Task {
    let mut task = Task::default();
    for e in events {
        task.apply(e.clone());
    }
    task
}

/// [`addressed`], with the task as the events `before` left it already at
/// hand (`state`), for a caller that needs it too.
pub fn addressed_after(state: &Task, before: &[TaskEvent], event: &TaskEvent) -> Option<Addressed> {
    let (milestone, obligation, stamp) = about(event)?;
    let actor = stamp.by.account_id()?.to_string();
    let def = state.definition.clone()?;
    let current = |t: &Task| t.milestone(milestone).and_then(|m| m.obligation(obligation)).cloned();
    let o_before = current(state)?;
    let without_actor = |accounts: Vec<String>| -> Vec<String> {
        let mut v: Vec<String> = accounts.into_iter().filter(|a| *a != actor).collect();
        v.sort();
        v.dedup();
        v
    };
    let (kind, to) = match event {
        TaskEvent::MilestoneSubmitted { .. } => {
            let mut after = state.clone();
            after.apply(event.clone());
            let mut round = current(&after)?.round;
            round.sort();
            round.dedup();
            (
                NoticeKind::Submission,
                Addressees::Supervisors {
                    agencies: deciders(&def, |a| o_before.owed_by(a, &def.implementers)),
                    except: round,
                },
            )
        }
        TaskEvent::MilestoneApproved { .. } | TaskEvent::MilestoneReturned { .. } => (
            NoticeKind::Decision,
            Addressees::Accounts(without_actor(o_before.round)),
        ),
        TaskEvent::MessagePosted { .. } => {
            let owes = |a: &AgencyCode| o_before.owed_by(a, &def.implementers);
            let from_owner = stamp.by.agency().is_some_and(owes);
            // The other side's accounts that took part in this obligation.
            let others: Vec<String> = before
                .iter()
                .filter_map(|e| {
                    let (m, o, s) = about(e)?;
                    let agency = s.by.agency()?;
                    (m == milestone && o == obligation && owes(agency) != from_owner)
                        .then(|| s.by.account_id().map(str::to_string))
                        .flatten()
                })
                .collect();
            let others = without_actor(others);
            if others.is_empty() && from_owner {
                // Nobody of the supervisors has taken part yet: the question is theirs.
                (
                    NoticeKind::Message,
                    Addressees::Supervisors {
                        agencies: deciders(&def, owes),
                        except: vec![actor.clone()],
                    },
                )
            } else {
                (NoticeKind::Message, Addressees::Accounts(others))
            }
        }
        _ => return None,
    };
    let empty = match &to {
        Addressees::Accounts(a) => a.is_empty(),
        Addressees::Supervisors { agencies, .. } => agencies.is_empty(),
    };
    (!empty).then(|| Addressed {
        kind,
        milestone: milestone.clone(),
        obligation: obligation.clone(),
        to,
    })
}

/// The lead and advisory agencies of the task that may decide an
/// obligation (never the agency that owes it).
fn deciders(def: &TaskDefinition, owes: impl Fn(&AgencyCode) -> bool) -> Vec<AgencyCode> {
    let mut v: Vec<AgencyCode> = std::iter::once(&def.lead)
        .chain(def.advisory.iter())
        .filter(|a| !owes(a))
        .cloned()
        .collect();
    v.dedup();
    v
}

/// The milestone, obligation and stamp of a person's action on an
/// obligation (reports, submissions, decisions, messages).
fn about(e: &TaskEvent) -> Option<(&MilestoneId, &ObligationRef, &Stamp)> {
    match e {
        TaskEvent::ProgressReported {
            milestone,
            obligation: Some(o),
            stamp,
            ..
        }
        | TaskEvent::MilestoneSubmitted {
            milestone,
            obligation: Some(o),
            stamp,
            ..
        }
        | TaskEvent::MilestoneApproved {
            milestone,
            obligation: Some(o),
            stamp,
            ..
        }
        | TaskEvent::MilestoneReturned {
            milestone,
            obligation: Some(o),
            stamp,
            ..
        }
        | TaskEvent::DeadlineExtended {
            milestone,
            obligation: Some(o),
            stamp,
            ..
        } => Some((milestone, o, stamp)),
        TaskEvent::MessagePosted {
            milestone,
            obligation,
            stamp,
            ..
        } => Some((milestone, obligation, stamp)),
        _ => None,
    }
}
