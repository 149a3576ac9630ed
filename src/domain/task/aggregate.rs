//! The Task aggregate: one task of a plan and its milestones. Pure: no I/O
//! and no clock; who and when come in the command's stamp.

use super::commands::{DeliveryOutcome, TaskAction, TaskCommand};
use super::definition::{Actor, MilestoneSpec, Stamp, TaskDefinition};
use super::errors::TaskError;
use super::events::{Change, DefinitionChanges, KpiValue, TaskEvent};
use crate::domain::ids::{AgencyCode, KpiKey, MilestoneId, TaskKey};
use crate::domain::reminders::{with_advisory, Recipient, ReminderKind, Role};
use chrono::{DateTime, NaiveDate, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MilestoneStatus {
    Open,
    Submitted,
    Returned,
    Approved,
    Waived,
    Cancelled,
}

impl MilestoneStatus {
    pub const NAMES: [&'static str; 6] = ["open", "submitted", "returned", "approved", "waived", "cancelled"];

    pub fn as_str(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    /// Parses a status name, or says which names there are.
    pub fn parse_named(s: &str) -> Result<Self, String> {
        Self::parse(s).ok_or_else(|| format!("trạng thái không có: {s:?} (dùng {})", Self::NAMES.join(", ")))
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "open" => Self::Open,
            "submitted" => Self::Submitted,
            "returned" => Self::Returned,
            "approved" => Self::Approved,
            "waived" => Self::Waived,
            "cancelled" => Self::Cancelled,
            _ => return None,
        })
    }

    /// Still expected from the implementers: counts for deadlines and reminders.
    pub fn is_pending(self) -> bool {
        matches!(self, Self::Open | Self::Returned | Self::Submitted)
    }

    pub fn label_vi(self) -> &'static str {
        match self {
            Self::Open => "đang thực hiện",
            Self::Submitted => "đã nộp, chờ duyệt",
            Self::Returned => "bị trả lại",
            Self::Approved => "đã duyệt",
            Self::Waived => "được miễn",
            Self::Cancelled => "đã hủy",
        }
    }
}

impl fmt::Display for MilestoneStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label_vi())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Milestone {
    pub spec: MilestoneSpec,
    pub extended_until: Option<NaiveDate>,
    pub status: MilestoneStatus,
    pub submitted: Option<Stamp>,
    pub approved: Option<Stamp>,
    /// Who waived or cancelled it.
    pub closed: Option<Stamp>,
    pub last_reason: Option<String>,
    pub reports: u32,
    /// Latest value reported for each KPI.
    pub kpis: BTreeMap<KpiKey, f64>,
    /// Messages queued about this milestone, and their delivery.
    #[serde(default)]
    pub reminders: Vec<ReminderRecord>,
}

/// A queued message and how its delivery to each agency went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReminderRecord {
    pub key: String,
    pub kind: ReminderKind,
    pub covers: Vec<String>,
    pub recipients: Vec<Recipient>,
    pub window: Option<NaiveDate>,
    pub note: Option<String>,
    pub queued_at: DateTime<Utc>,
    pub deliveries: BTreeMap<AgencyCode, Delivery>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum Delivery {
    Sent {
        message_id: String,
        at: DateTime<Utc>,
    },
    Failed {
        attempts: u32,
        error: String,
        next_attempt: Option<DateTime<Utc>>,
    },
}

impl ReminderRecord {
    pub fn delivered_to(&self, agency: &AgencyCode) -> bool {
        matches!(self.deliveries.get(agency), Some(Delivery::Sent { .. }))
    }
}

impl Milestone {
    fn new(spec: MilestoneSpec) -> Self {
        Self {
            spec,
            extended_until: None,
            status: MilestoneStatus::Open,
            submitted: None,
            approved: None,
            closed: None,
            last_reason: None,
            reports: 0,
            kpis: BTreeMap::new(),
            reminders: Vec::new(),
        }
    }

    /// Whether a reminder point is already recorded, itself or as covered by a later one.
    pub fn has_reminder(&self, key: &str) -> bool {
        self.reminders
            .iter()
            .any(|r| r.key == key || r.covers.iter().any(|c| c == key))
    }

    fn count(&self, kind: ReminderKind) -> usize {
        self.reminders.iter().filter(|r| r.kind == kind).count()
    }

    /// The deadline in force: the extension if any, else the plan's date.
    pub fn due(&self) -> NaiveDate {
        self.extended_until.unwrap_or(self.spec.due)
    }

    fn closed_by_plan(&self) -> bool {
        self.status == MilestoneStatus::Cancelled
            && matches!(
                self.closed,
                Some(Stamp {
                    by: Actor::System { .. },
                    ..
                })
            )
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Task {
    pub key: Option<TaskKey>,
    pub definition: Option<TaskDefinition>,
    /// In due-date order.
    pub milestones: Vec<Milestone>,
    pub withdrawn: bool,
}

const REMOVED_FROM_PLAN: &str = "Mốc không còn trong kế hoạch";

impl Task {
    pub fn milestone(&self, id: &MilestoneId) -> Option<&Milestone> {
        self.milestones.iter().find(|m| &m.spec.id == id)
    }

    fn milestone_mut(&mut self, id: &MilestoneId) -> Option<&mut Milestone> {
        self.milestones.iter_mut().find(|m| &m.spec.id == id)
    }

    fn on_milestone(&mut self, id: &MilestoneId, f: impl FnOnce(&mut Milestone)) {
        if let Some(m) = self.milestone_mut(id) {
            f(m)
        }
    }

    fn sort_milestones(&mut self) {
        self.milestones
            .sort_by(|a, b| (a.due(), &a.spec.id).cmp(&(b.due(), &b.spec.id)));
    }

    /// Decides which events a command produces, or why it is refused.
    pub fn decide(&self, command: TaskCommand) -> Result<Vec<TaskEvent>, TaskError> {
        let TaskCommand { stamp, action } = command;
        if action.is_system() {
            if !matches!(stamp.by, Actor::System { .. }) {
                return Err(TaskError::SystemOnly);
            }
        } else if stamp.by.agency().is_none() {
            return Err(TaskError::PersonRequired);
        }
        match action {
            TaskAction::SyncFromPlan {
                plan,
                task,
                definition,
                milestones,
            } => self.sync(TaskKey::new(plan, task), definition, milestones, stamp),
            TaskAction::Withdraw { reason } => {
                let _ = self.definition()?;
                Ok(if self.withdrawn {
                    vec![]
                } else {
                    vec![TaskEvent::TaskWithdrawn { reason, stamp }]
                })
            }
            TaskAction::ReportProgress {
                milestone,
                note,
                kpis,
                evidence,
            } => {
                let (def, m) = self.implementer_action(&stamp, &milestone)?;
                match m.status {
                    MilestoneStatus::Open | MilestoneStatus::Returned => {}
                    MilestoneStatus::Submitted => return Err(TaskError::AlreadySubmitted { milestone }),
                    MilestoneStatus::Approved => {
                        return Err(TaskError::AlreadyApproved {
                            milestone,
                            action: "báo cáo thêm",
                        })
                    }
                    status => return Err(TaskError::Closed { milestone, status }),
                }
                check_kpis(def, &kpis)?;
                if note.trim().is_empty() && kpis.is_empty() && evidence.is_empty() {
                    return Err(TaskError::EmptyReport);
                }
                Ok(vec![TaskEvent::ProgressReported {
                    milestone,
                    note,
                    kpis,
                    evidence,
                    stamp,
                }])
            }
            TaskAction::Submit { milestone, note } => {
                let (_, m) = self.implementer_action(&stamp, &milestone)?;
                match m.status {
                    MilestoneStatus::Open | MilestoneStatus::Returned => {}
                    MilestoneStatus::Submitted => return Err(TaskError::AlreadySubmitted { milestone }),
                    MilestoneStatus::Approved => {
                        return Err(TaskError::AlreadyApproved {
                            milestone,
                            action: "nộp lại",
                        })
                    }
                    status => return Err(TaskError::Closed { milestone, status }),
                }
                let recipients = self.supervisors_as_recipients();
                let key = format!("submitted-{}", m.count(ReminderKind::Submitted) + 1);
                let notice = notice(&milestone, key, ReminderKind::Submitted, recipients, None, &stamp);
                Ok(vec![TaskEvent::MilestoneSubmitted { milestone, note, stamp }, notice])
            }
            TaskAction::Approve { milestone, note } => {
                let m = self.supervisor_action(&stamp, &milestone)?;
                self.require_submitted(m)?;
                if let (Some(sub), Actor::Agency { person, .. }) = (&m.submitted, &stamp.by) {
                    if matches!(&sub.by, Actor::Agency { person: submitter, .. } if submitter.same_person(person)) {
                        return Err(TaskError::FourEyes {
                            person: person.to_string(),
                            milestone,
                        });
                    }
                }
                let notice = notice(
                    &milestone,
                    "approved".into(),
                    ReminderKind::Approved,
                    submitter(m),
                    None,
                    &stamp,
                );
                Ok(vec![TaskEvent::MilestoneApproved { milestone, note, stamp }, notice])
            }
            TaskAction::Return { milestone, reason } => {
                let m = self.supervisor_action(&stamp, &milestone)?;
                self.require_submitted(m)?;
                require_reason(&reason)?;
                let key = format!("returned-{}", m.count(ReminderKind::Returned) + 1);
                let notice = notice(
                    &milestone,
                    key,
                    ReminderKind::Returned,
                    submitter(m),
                    Some(reason.clone()),
                    &stamp,
                );
                Ok(vec![
                    TaskEvent::MilestoneReturned {
                        milestone,
                        reason,
                        stamp,
                    },
                    notice,
                ])
            }
            TaskAction::Extend {
                milestone,
                until,
                reason,
            } => {
                let m = self.supervisor_action(&stamp, &milestone)?;
                self.require_not_closed(m, "gia hạn")?;
                require_reason(&reason)?;
                if until <= m.due() {
                    return Err(TaskError::ExtensionNotLater {
                        current: m.due(),
                        requested: until,
                    });
                }
                Ok(vec![TaskEvent::DeadlineExtended {
                    milestone,
                    from: m.due(),
                    until,
                    reason,
                    stamp,
                }])
            }
            TaskAction::QueueReminder {
                milestone,
                key,
                kind,
                covers,
                recipients,
                window,
            } => {
                let (_, m) = self.known_milestone(&milestone)?;
                let deadline_kind = matches!(
                    kind,
                    ReminderKind::Upcoming | ReminderKind::Overdue | ReminderKind::Escalation
                );
                let still_expected =
                    !self.withdrawn && matches!(m.status, MilestoneStatus::Open | MilestoneStatus::Returned);
                // Idempotent: a point already recorded, or one about work no
                // longer expected, is quietly skipped (the state moved on).
                if m.has_reminder(&key) || (deadline_kind && !still_expected) || recipients.is_empty() {
                    return Ok(vec![]);
                }
                Ok(vec![TaskEvent::ReminderQueued {
                    milestone,
                    key,
                    kind,
                    covers,
                    recipients,
                    window,
                    note: None,
                    stamp,
                }])
            }
            TaskAction::RecordDelivery {
                milestone,
                key,
                agency,
                outcome,
            } => {
                let (_, m) = self.known_milestone(&milestone)?;
                let record = m
                    .reminders
                    .iter()
                    .find(|r| r.key == key)
                    .ok_or_else(|| TaskError::UnknownReminder {
                        milestone: milestone.clone(),
                        key: key.clone(),
                    })?;
                if record.delivered_to(&agency) {
                    return Ok(vec![]);
                }
                Ok(vec![match outcome {
                    DeliveryOutcome::Sent {
                        message_id,
                        addresses,
                        reply,
                    } => TaskEvent::ReminderSent {
                        milestone,
                        key,
                        agency,
                        message_id,
                        addresses,
                        reply,
                        stamp,
                    },
                    DeliveryOutcome::Failed {
                        attempt,
                        error,
                        next_attempt,
                    } => TaskEvent::ReminderFailed {
                        milestone,
                        key,
                        agency,
                        attempt,
                        error,
                        next_attempt,
                        stamp,
                    },
                }])
            }
            TaskAction::Waive { milestone, reason } => {
                self.close(stamp, milestone, reason, "miễn", |milestone, reason, stamp| {
                    TaskEvent::MilestoneWaived {
                        milestone,
                        reason,
                        stamp,
                    }
                })
            }
            TaskAction::Cancel { milestone, reason } => {
                self.close(stamp, milestone, reason, "hủy", |milestone, reason, stamp| {
                    TaskEvent::MilestoneCancelled {
                        milestone,
                        reason,
                        stamp,
                    }
                })
            }
        }
    }

    /// Waiving and cancelling share their rules: a supervisor, a reason, a milestone still open.
    fn close(
        &self,
        stamp: Stamp,
        milestone: MilestoneId,
        reason: String,
        action: &'static str,
        event: fn(MilestoneId, String, Stamp) -> TaskEvent,
    ) -> Result<Vec<TaskEvent>, TaskError> {
        let m = self.supervisor_action(&stamp, &milestone)?;
        self.require_not_closed(m, action)?;
        require_reason(&reason)?;
        Ok(vec![event(milestone, reason, stamp)])
    }

    fn definition(&self) -> Result<&TaskDefinition, TaskError> {
        self.definition.as_ref().ok_or(TaskError::NotRegistered)
    }

    fn known_milestone(&self, id: &MilestoneId) -> Result<(&TaskDefinition, &Milestone), TaskError> {
        let def = self.definition()?;
        let m = self.milestone(id).ok_or_else(|| TaskError::UnknownMilestone {
            milestone: id.clone(),
            known: self
                .milestones
                .iter()
                .map(|m| m.spec.id.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        })?;
        Ok((def, m))
    }

    /// The lead and advisory agencies, as recipients of a submission notice.
    fn supervisors_as_recipients(&self) -> Vec<Recipient> {
        let Some(def) = &self.definition else { return vec![] };
        with_advisory(
            vec![Recipient {
                agency: def.lead.clone(),
                role: Role::Lead,
            }],
            &def.advisory,
        )
    }

    fn live_milestone(&self, id: &MilestoneId) -> Result<(&TaskDefinition, &Milestone), TaskError> {
        if self.definition.is_some() && self.withdrawn {
            return Err(TaskError::Withdrawn);
        }
        self.known_milestone(id)
    }

    fn implementer_action(&self, stamp: &Stamp, id: &MilestoneId) -> Result<(&TaskDefinition, &Milestone), TaskError> {
        let (def, m) = self.live_milestone(id)?;
        let agency = stamp.by.agency().ok_or(TaskError::PersonRequired)?;
        if !def.is_implementer(agency) {
            return Err(TaskError::NotImplementer {
                agency: agency.clone(),
                implementers: def.implementers.clone(),
            });
        }
        Ok((def, m))
    }

    fn supervisor_action(&self, stamp: &Stamp, id: &MilestoneId) -> Result<&Milestone, TaskError> {
        let (def, m) = self.live_milestone(id)?;
        let agency = stamp.by.agency().ok_or(TaskError::PersonRequired)?;
        if !def.is_supervisor(agency) {
            let mut supervisors: Vec<AgencyCode> = vec![def.lead.clone()];
            supervisors.extend(def.advisory.iter().filter(|a| **a != def.lead).cloned());
            return Err(TaskError::NotSupervisor {
                agency: agency.clone(),
                supervisors,
            });
        }
        Ok(m)
    }

    fn require_submitted(&self, m: &Milestone) -> Result<(), TaskError> {
        match m.status {
            MilestoneStatus::Submitted => Ok(()),
            MilestoneStatus::Approved => Err(TaskError::AlreadyApproved {
                milestone: m.spec.id.clone(),
                action: "duyệt lại hay trả lại",
            }),
            status => Err(TaskError::NotSubmitted {
                milestone: m.spec.id.clone(),
                status,
            }),
        }
    }

    fn require_not_closed(&self, m: &Milestone, action: &'static str) -> Result<(), TaskError> {
        match m.status {
            MilestoneStatus::Approved => Err(TaskError::AlreadyApproved {
                milestone: m.spec.id.clone(),
                action,
            }),
            MilestoneStatus::Waived | MilestoneStatus::Cancelled => Err(TaskError::Closed {
                milestone: m.spec.id.clone(),
                status: m.status,
            }),
            _ => Ok(()),
        }
    }

    fn sync(
        &self,
        key: TaskKey,
        definition: TaskDefinition,
        specs: Vec<MilestoneSpec>,
        stamp: Stamp,
    ) -> Result<Vec<TaskEvent>, TaskError> {
        let mut events = Vec::new();
        match (&self.key, &self.definition) {
            (Some(existing), _) if *existing != key => return Err(TaskError::WrongIdentity(existing.to_string())),
            (Some(_), Some(old)) => {
                if self.withdrawn {
                    events.push(TaskEvent::TaskReinstated { stamp: stamp.clone() });
                }
                let changes = DefinitionChanges::between(old, &definition);
                if !changes.is_empty() {
                    events.push(TaskEvent::TaskAmended {
                        changes,
                        stamp: stamp.clone(),
                    });
                }
            }
            _ => events.push(TaskEvent::TaskRegistered {
                plan: key.plan,
                task: key.task,
                definition,
                stamp: stamp.clone(),
            }),
        }
        for spec in &specs {
            match self.milestone(&spec.id) {
                Some(m) if !m.closed_by_plan() => {
                    let title = (m.spec.title != spec.title).then(|| Change {
                        from: m.spec.title.clone(),
                        to: spec.title.clone(),
                    });
                    let due = (m.spec.due != spec.due).then_some(Change {
                        from: m.spec.due,
                        to: spec.due,
                    });
                    if title.is_some() || due.is_some() {
                        events.push(TaskEvent::MilestoneAmended {
                            milestone: spec.id.clone(),
                            title,
                            due,
                            stamp: stamp.clone(),
                        });
                    }
                }
                _ => events.push(TaskEvent::MilestoneOpened {
                    milestone: spec.clone(),
                    stamp: stamp.clone(),
                }),
            }
        }
        for m in &self.milestones {
            let still_planned = specs.iter().any(|s| s.id == m.spec.id);
            if !still_planned && m.status.is_pending() {
                events.push(TaskEvent::MilestoneCancelled {
                    milestone: m.spec.id.clone(),
                    reason: REMOVED_FROM_PLAN.to_string(),
                    stamp: stamp.clone(),
                });
            }
        }
        Ok(events)
    }
}

/// The agency that submitted a milestone, as the recipient of the decision.
fn submitter(m: &Milestone) -> Vec<Recipient> {
    m.submitted
        .as_ref()
        .and_then(|s| s.by.agency())
        .map(|a| {
            vec![Recipient {
                agency: a.clone(),
                role: Role::Implementer,
            }]
        })
        .unwrap_or_default()
}

/// A state-change notice, queued in the same commit as the change itself.
fn notice(
    milestone: &MilestoneId,
    key: String,
    kind: ReminderKind,
    recipients: Vec<Recipient>,
    note: Option<String>,
    stamp: &Stamp,
) -> TaskEvent {
    TaskEvent::ReminderQueued {
        milestone: milestone.clone(),
        key,
        kind,
        covers: vec![],
        recipients,
        window: None,
        note,
        stamp: stamp.clone(),
    }
}

fn require_reason(reason: &str) -> Result<(), TaskError> {
    if reason.trim().is_empty() {
        Err(TaskError::ReasonRequired)
    } else {
        Ok(())
    }
}

fn check_kpis(def: &TaskDefinition, kpis: &[KpiValue]) -> Result<(), TaskError> {
    for kv in kpis {
        if def.kpi(&kv.key).is_none() {
            return Err(TaskError::UnknownKpi {
                key: kv.key.clone(),
                known: def.kpis.iter().map(|k| k.key.as_str()).collect::<Vec<_>>().join(", "),
            });
        }
        if !kv.value.is_finite() {
            return Err(TaskError::KpiNotFinite { key: kv.key.clone() });
        }
    }
    Ok(())
}

impl Aggregate for Task {
    const TYPE: &'static str = "Task";
    type Command = TaskCommand;
    type Event = TaskEvent;
    type Error = TaskError;
    type Services = ();

    async fn handle(&mut self, command: Self::Command, _: &(), sink: &EventSink<Self>) -> Result<(), Self::Error> {
        for event in self.decide(command)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        let stamp = event.stamp().clone();
        match event {
            TaskEvent::TaskRegistered {
                plan, task, definition, ..
            } => {
                self.key = Some(TaskKey::new(plan, task));
                self.definition = Some(definition);
            }
            TaskEvent::TaskAmended { changes, .. } => {
                if let Some(def) = self.definition.as_mut() {
                    changes.apply_to(def);
                }
            }
            TaskEvent::TaskWithdrawn { .. } => self.withdrawn = true,
            TaskEvent::TaskReinstated { .. } => self.withdrawn = false,
            TaskEvent::MilestoneOpened { milestone, .. } => {
                self.milestones.retain(|m| m.spec.id != milestone.id);
                self.milestones.push(Milestone::new(milestone));
            }
            TaskEvent::MilestoneAmended {
                milestone, title, due, ..
            } => self.on_milestone(&milestone, |m| {
                if let Some(t) = &title {
                    m.spec.title = t.to.clone();
                }
                if let Some(d) = &due {
                    m.spec.due = d.to;
                }
            }),
            TaskEvent::ProgressReported { milestone, kpis, .. } => self.on_milestone(&milestone, |m| {
                m.reports += 1;
                for kv in &kpis {
                    m.kpis.insert(kv.key.clone(), kv.value);
                }
            }),
            TaskEvent::MilestoneSubmitted { milestone, .. } => self.on_milestone(&milestone, |m| {
                m.status = MilestoneStatus::Submitted;
                m.submitted = Some(stamp.clone());
            }),
            TaskEvent::MilestoneApproved { milestone, .. } => self.on_milestone(&milestone, |m| {
                m.status = MilestoneStatus::Approved;
                m.approved = Some(stamp.clone());
            }),
            TaskEvent::MilestoneReturned { milestone, reason, .. } => self.on_milestone(&milestone, |m| {
                m.status = MilestoneStatus::Returned;
                m.last_reason = Some(reason.clone());
            }),
            TaskEvent::DeadlineExtended {
                milestone,
                until,
                reason,
                ..
            } => self.on_milestone(&milestone, |m| {
                m.extended_until = Some(until);
                m.last_reason = Some(reason.clone());
            }),
            TaskEvent::MilestoneWaived { milestone, reason, .. } => self.on_milestone(&milestone, |m| {
                m.status = MilestoneStatus::Waived;
                m.closed = Some(stamp.clone());
                m.last_reason = Some(reason.clone());
            }),
            TaskEvent::ReminderQueued {
                milestone,
                key,
                kind,
                covers,
                recipients,
                window,
                note,
                ..
            } => self.on_milestone(&milestone, |m| {
                m.reminders.push(ReminderRecord {
                    key,
                    kind,
                    covers,
                    recipients,
                    window,
                    note,
                    queued_at: stamp.at,
                    deliveries: BTreeMap::new(),
                })
            }),
            TaskEvent::ReminderSent {
                milestone,
                key,
                agency,
                message_id,
                ..
            } => self.on_milestone(&milestone, |m| {
                if let Some(r) = m.reminders.iter_mut().find(|r| r.key == key) {
                    r.deliveries.insert(
                        agency,
                        Delivery::Sent {
                            message_id,
                            at: stamp.at,
                        },
                    );
                }
            }),
            TaskEvent::ReminderFailed {
                milestone,
                key,
                agency,
                attempt,
                error,
                next_attempt,
                ..
            } => self.on_milestone(&milestone, |m| {
                if let Some(r) = m.reminders.iter_mut().find(|r| r.key == key) {
                    r.deliveries.insert(
                        agency,
                        Delivery::Failed {
                            attempts: attempt,
                            error,
                            next_attempt,
                        },
                    );
                }
            }),
            TaskEvent::MilestoneCancelled { milestone, reason, .. } => self.on_milestone(&milestone, |m| {
                m.status = MilestoneStatus::Cancelled;
                m.closed = Some(stamp.clone());
                m.last_reason = Some(reason.clone());
            }),
        }
        self.sort_milestones();
    }
}
