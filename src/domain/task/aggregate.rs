//! The Task aggregate: one task of a plan and its milestones. Pure: no I/O
//! and no clock; who and when come in the command's stamp.

use super::commands::{TaskAction, TaskCommand};
use super::definition::{Actor, MilestoneSpec, ObligationMode, ObligationRef, Stamp, TaskDefinition};
use super::errors::TaskError;
use super::events::{AddressOutcome, AddressResult, Change, DefinitionChanges, KpiValue, TaskEvent};
use super::evidence::Filed;
use super::inputs;
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

/// What one agency owes on a milestone (or, for a joint milestone, what the
/// implementers owe together): its own reports, submission, decision,
/// extension and timeliness.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Obligation {
    /// The owing agency; None for the joint obligation.
    pub agency: Option<AgencyCode>,
    pub status: MilestoneStatus,
    /// The deadline in force: the plan's date, or the extension.
    pub due: NaiveDate,
    pub extended_until: Option<NaiveDate>,
    pub submitted: Option<Stamp>,
    pub approved: Option<Stamp>,
    /// Who waived or cancelled it.
    pub closed: Option<Stamp>,
    pub last_reason: Option<String>,
    pub reports: u32,
    /// Latest value reported for each KPI.
    pub kpis: BTreeMap<KpiKey, f64>,
    /// Accounts that reported on or submitted the current round (since the
    /// last return): none of them may decide it.
    #[serde(default)]
    pub round: Vec<String>,
    /// For the joint obligation: the agency that submitted it.
    #[serde(default)]
    pub fulfilled_by: Option<AgencyCode>,
    /// Cancelled because the plan no longer lists the milestone.
    #[serde(default)]
    pub removed_by_plan: bool,
    /// What was filed in the current round (reports, then the submission),
    /// for the approver; cleared when the obligation is returned.
    #[serde(default)]
    pub filed: Vec<Filed>,
    /// The last row of a sheet of the state already reached about it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded: Option<super::records::Recorded>,
}

impl Obligation {
    fn new(agency: Option<AgencyCode>, due: NaiveDate) -> Self {
        Self {
            agency,
            status: MilestoneStatus::Open,
            due,
            extended_until: None,
            submitted: None,
            approved: None,
            closed: None,
            last_reason: None,
            reports: 0,
            kpis: BTreeMap::new(),
            round: Vec::new(),
            fulfilled_by: None,
            removed_by_plan: false,
            filed: Vec::new(),
            recorded: None,
        }
    }

    pub fn reference(&self) -> ObligationRef {
        ObligationRef::of(self.agency.as_ref())
    }

    /// The agency code, or "chung" for the joint obligation, as people read it.
    pub fn label(&self) -> String {
        self.agency
            .as_ref()
            .map_or_else(|| "chung".to_string(), |a| a.to_string())
    }

    /// Whether `agency` owes this obligation (alone, or jointly as an implementer).
    /// Whether reminders still go out for it: owed, and not recorded from
    /// the files as never done ("không thực hiện").
    pub fn reminded(&self) -> bool {
        matches!(self.status, MilestoneStatus::Open | MilestoneStatus::Returned)
            && !self
                .recorded
                .as_ref()
                .is_some_and(|r| r.state == super::records::RecordedState::NotDone)
    }

    /// The day it was done, for an approved obligation: the day a sheet of
    /// the state already reached claims, else the approval's local day.
    pub fn completed_on(&self, tz: chrono_tz::Tz) -> Option<NaiveDate> {
        if self.status != MilestoneStatus::Approved {
            return None;
        }
        self.recorded.as_ref().and_then(|r| r.done_on).or_else(|| {
            self.approved
                .as_ref()
                .map(|s| crate::domain::dates::local_date(s.at, tz))
        })
    }

    pub fn owed_by(&self, agency: &AgencyCode, implementers: &[AgencyCode]) -> bool {
        match &self.agency {
            Some(a) => a == agency,
            None => implementers.contains(agency),
        }
    }

    /// How far along it is, to pick the state a joint obligation inherits.
    fn progress(&self) -> (u8, u32) {
        let rank = match self.status {
            MilestoneStatus::Approved => 5,
            MilestoneStatus::Submitted => 4,
            MilestoneStatus::Returned => 3,
            MilestoneStatus::Open => 2,
            MilestoneStatus::Waived => 1,
            MilestoneStatus::Cancelled => 0,
        };
        (rank, self.reports)
    }

    /// The value this obligation gives a KPI and where it stands: approved
    /// (the value filed in the round the supervisor approved), awaiting
    /// approval, returned, or only reported as progress. Only an approved
    /// value is a result; a waived or cancelled obligation gives none.
    pub fn kpi_value(&self, key: &KpiKey) -> Option<(f64, KpiStanding)> {
        let latest = self.kpis.get(key).copied();
        match self.status {
            MilestoneStatus::Approved => self
                .filed
                .iter()
                .rev()
                .flat_map(|f| f.kpis.iter().rev())
                .find(|k| &k.key == key)
                .map(|k| k.value)
                .or(latest)
                .map(|v| (v, KpiStanding::Approved)),
            MilestoneStatus::Submitted => latest.map(|v| (v, KpiStanding::AwaitingApproval)),
            MilestoneStatus::Returned => latest.map(|v| (v, KpiStanding::Returned)),
            MilestoneStatus::Open => latest.map(|v| (v, KpiStanding::Reported)),
            MilestoneStatus::Waived | MilestoneStatus::Cancelled => None,
        }
    }

    fn record_round(&mut self, by: &Actor) {
        if let Some(account) = by.account_id() {
            if !self.round.iter().any(|a| a == account) {
                self.round.push(account.to_string());
            }
        }
    }
}

/// Where a reported KPI value stands (see [`Obligation::kpi_value`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KpiStanding {
    Approved,
    AwaitingApproval,
    Returned,
    /// Reported as progress, not submitted.
    Reported,
}

impl KpiStanding {
    /// How a value that is not (yet) a result is marked: "chờ duyệt".
    pub fn label_vi(self) -> &'static str {
        match self {
            Self::Approved => "đã duyệt",
            Self::AwaitingApproval => "chờ duyệt",
            Self::Returned => "bị trả lại",
            Self::Reported => "báo cáo tiến độ, chưa nộp",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Milestone {
    pub spec: MilestoneSpec,
    /// One per implementing agency, in the plan's order, or one joint obligation.
    pub obligations: Vec<Obligation>,
    /// Derived from the obligations: pending while any is, approved once
    /// every one is closed and one was approved.
    pub status: MilestoneStatus,
    /// Messages queued about this milestone, and their delivery.
    #[serde(default)]
    pub reminders: Vec<ReminderRecord>,
}

/// A queued message and how its delivery to each agency went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReminderRecord {
    /// Unique within the milestone: the point's key, scoped to its obligation.
    pub key: String,
    /// None in release 0.1 records, which were about every implementer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub obligation: Option<ObligationRef>,
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
    /// Release 0.1 and 0.2: sent as a whole.
    Sent { message_id: String, at: DateTime<Utc> },
    /// Release 0.1 and 0.2: an attempt failed (`next_attempt` None: for good).
    Failed {
        attempts: u32,
        error: String,
        next_attempt: Option<DateTime<Utc>>,
    },
    /// In a digest fixed before sending, and where each of its addresses stands.
    Digest {
        message_id: String,
        addresses: BTreeMap<String, AddressState>,
        attempts: u32,
        /// The first attempt: retries stop some days after it.
        first_attempt: Option<DateTime<Utc>>,
        /// The latest attempt.
        last_attempt: Option<DateTime<Utc>>,
        /// The next attempt, when addresses are deferred; None when the
        /// digest is new or re-queued (send now) or nothing is left to try.
        next_attempt: Option<DateTime<Utc>>,
        last_error: Option<String>,
        formed_at: DateTime<Utc>,
    },
}

/// Where one address of a digest stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum AddressState {
    Pending,
    Accepted { reply: String },
    Rejected { reply: String },
    Deferred { reply: String },
    GaveUp { reply: String },
}

/// Where a delivery stands, as the outbox shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// Still to send (or to send again to some addresses).
    Queued,
    /// Delivered to at least one address, nothing left to try.
    Sent,
    /// Nothing delivered, nothing left to try.
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Sent => "sent",
            Self::Failed => "failed",
        }
    }
}

impl Delivery {
    pub fn status(&self) -> DeliveryStatus {
        match self {
            Delivery::Sent { .. } => DeliveryStatus::Sent,
            Delivery::Failed { next_attempt, .. } => {
                if next_attempt.is_some() {
                    DeliveryStatus::Queued
                } else {
                    DeliveryStatus::Failed
                }
            }
            Delivery::Digest { addresses, .. } => {
                let states = || addresses.values();
                if states().any(|s| matches!(s, AddressState::Pending | AddressState::Deferred { .. })) {
                    DeliveryStatus::Queued
                } else if states().any(|s| matches!(s, AddressState::Accepted { .. })) {
                    DeliveryStatus::Sent
                } else {
                    DeliveryStatus::Failed
                }
            }
        }
    }

    /// The addresses the next attempt goes to: those pending or deferred.
    pub fn to_try(&self) -> Vec<String> {
        match self {
            Delivery::Digest { addresses, .. } => addresses
                .iter()
                .filter(|(_, s)| matches!(s, AddressState::Pending | AddressState::Deferred { .. }))
                .map(|(a, _)| a.clone())
                .collect(),
            _ => vec![],
        }
    }

    /// Some address failed and nothing is left to try: `outbox retry` may
    /// put it back in the queue.
    pub fn failed_for_good(&self) -> bool {
        match self {
            Delivery::Sent { .. } => false,
            Delivery::Failed { next_attempt, .. } => next_attempt.is_none(),
            Delivery::Digest { addresses, .. } => {
                self.status() != DeliveryStatus::Queued
                    && addresses
                        .values()
                        .any(|s| matches!(s, AddressState::Rejected { .. } | AddressState::GaveUp { .. }))
            }
        }
    }

    /// The Message-ID it was (or is to be) sent under.
    pub fn message_id(&self) -> Option<&str> {
        match self {
            Delivery::Sent { message_id, .. } | Delivery::Digest { message_id, .. } => Some(message_id),
            Delivery::Failed { .. } => None,
        }
    }
}

impl ReminderRecord {
    /// Whether the dispatcher may put this item in a new digest to `agency`:
    /// not yet in one, or (release 0.2) failed with a retry to come.
    fn may_form(&self, agency: &AgencyCode) -> bool {
        match self.deliveries.get(agency) {
            None => true,
            Some(d @ Delivery::Failed { .. }) => d.status() == DeliveryStatus::Queued,
            Some(_) => false,
        }
    }

    /// Whether this item is in digest `message_id` to `agency` with addresses left to try.
    fn in_flight(&self, agency: &AgencyCode, message_id: &str) -> bool {
        self.deliveries
            .get(agency)
            .is_some_and(|d| d.message_id() == Some(message_id) && d.status() == DeliveryStatus::Queued)
    }

    /// Whether this record stands for point `key` of obligation `ob`. A record
    /// without an obligation (release 0.1) went to every implementer, so it
    /// stands for that point of every obligation.
    fn stands_for(&self, key: &str, ob: &ObligationRef) -> bool {
        let (base, scope) = split_key(&self.key);
        let mine = match &self.obligation {
            Some(o) => o == ob,
            None => scope.is_none(),
        };
        mine && (base == key || self.covers.iter().any(|c| c == key))
    }
}

/// The stored key of a point of an obligation: `before-7:UBND`; the joint
/// obligation's points keep the bare key.
pub fn obligation_key(key: &str, ob: &ObligationRef) -> String {
    match ob {
        ObligationRef::Agency(a) => format!("{key}:{a}"),
        ObligationRef::Joint => key.to_string(),
    }
}

/// A stored key's point and obligation scope (`before-7:UBND` → (`before-7`, UBND)).
pub fn split_key(key: &str) -> (&str, Option<&str>) {
    match key.split_once(':') {
        Some((base, scope)) => (base, Some(scope)),
        None => (key, None),
    }
}

impl Milestone {
    fn new(spec: MilestoneSpec, implementers: &[AgencyCode]) -> Self {
        let mut m = Self {
            spec,
            obligations: Vec::new(),
            status: MilestoneStatus::Open,
            reminders: Vec::new(),
        };
        m.reconcile(implementers);
        m
    }

    pub fn is_joint(&self) -> bool {
        self.spec.obligation == ObligationMode::Joint
    }

    pub fn obligation(&self, ob: &ObligationRef) -> Option<&Obligation> {
        self.obligations.iter().find(|o| &o.reference() == ob)
    }

    /// The obligation an agency's code names: that agency's own, or the
    /// joint one when it is an implementer of `def`.
    pub fn obligation_named(&self, def: &TaskDefinition, code: &AgencyCode) -> Option<&Obligation> {
        self.obligations
            .iter()
            .find(|o| o.agency.as_ref() == Some(code) || (o.agency.is_none() && def.is_implementer(code)))
    }

    fn obligation_mut(&mut self, ob: &ObligationRef) -> Option<&mut Obligation> {
        self.obligations.iter_mut().find(|o| &o.reference() == ob)
    }

    /// Whether point `key` of obligation `ob` is already recorded, itself or
    /// as covered by a later one.
    pub fn has_reminder(&self, key: &str, ob: &ObligationRef) -> bool {
        self.reminders.iter().any(|r| r.stands_for(key, ob))
    }

    fn count(&self, kind: ReminderKind, ob: &ObligationRef) -> usize {
        self.reminders
            .iter()
            .filter(|r| r.kind == kind && r.obligation.as_ref().is_none_or(|o| o == ob))
            .count()
    }

    /// The earliest deadline still owed, or once nothing is owed the latest
    /// one there was.
    pub fn due(&self) -> NaiveDate {
        let pending = self
            .obligations
            .iter()
            .filter(|o| o.status.is_pending())
            .map(|o| o.due)
            .min();
        pending
            .or_else(|| self.obligations.iter().map(|o| o.due).max())
            .unwrap_or(self.spec.due)
    }

    /// Whether any obligation's deadline was moved.
    pub fn extended(&self) -> bool {
        self.obligations.iter().any(|o| o.extended_until.is_some())
    }

    /// Reports on every obligation.
    pub fn reports(&self) -> u32 {
        self.obligations.iter().map(|o| o.reports).sum()
    }

    /// The latest value reported for each KPI, over every obligation.
    pub fn kpis(&self) -> BTreeMap<KpiKey, f64> {
        let mut out = BTreeMap::new();
        for o in &self.obligations {
            out.extend(o.kpis.iter().map(|(k, v)| (k.clone(), *v)));
        }
        out
    }

    /// The last approval, if every obligation is closed.
    pub fn approved(&self) -> Option<&Stamp> {
        if self.status != MilestoneStatus::Approved {
            return None;
        }
        self.obligations
            .iter()
            .filter_map(|o| o.approved.as_ref())
            .max_by_key(|s| s.at)
    }

    fn closed_by_plan(&self) -> bool {
        self.status == MilestoneStatus::Cancelled && self.obligations.iter().all(|o| o.removed_by_plan)
    }

    /// Makes the obligations match the implementers and the mode, and
    /// derives the milestone's status. Obligations of agencies that are no
    /// longer implementers are cancelled if still pending; switching to
    /// joint keeps the most advanced obligation's state, switching back
    /// gives it to the agency that fulfilled it.
    fn reconcile(&mut self, implementers: &[AgencyCode]) {
        let joint = self.is_joint() || implementers.is_empty();
        let planned = self.spec.due;
        if joint {
            if !self.obligations.iter().any(|o| o.agency.is_none()) {
                let inherited = self.obligations.iter().max_by_key(|o| o.progress()).cloned();
                let ob = match inherited {
                    Some(o) if o.progress() > (2, 0) => Obligation {
                        fulfilled_by: o.agency.clone().or(o.fulfilled_by.clone()),
                        agency: None,
                        ..o
                    },
                    _ => Obligation::new(None, planned),
                };
                self.obligations = vec![ob];
            }
        } else {
            if let Some(pos) = self.obligations.iter().position(|o| o.agency.is_none()) {
                let j = self.obligations.remove(pos);
                if let Some(a) = j.fulfilled_by.clone().filter(|a| implementers.contains(a)) {
                    self.obligations.push(Obligation {
                        agency: Some(a),
                        fulfilled_by: None,
                        ..j
                    });
                }
            }
            for a in implementers {
                if !self.obligations.iter().any(|o| o.agency.as_ref() == Some(a)) {
                    self.obligations.push(Obligation::new(Some(a.clone()), planned));
                }
            }
            for o in &mut self.obligations {
                let listed = o.agency.as_ref().is_some_and(|a| implementers.contains(a));
                if !listed && o.status.is_pending() {
                    o.status = MilestoneStatus::Cancelled;
                }
            }
            let order = |o: &Obligation| implementers.iter().position(|a| Some(a) == o.agency.as_ref());
            self.obligations.sort_by_key(|o| order(o).unwrap_or(usize::MAX));
        }
        for o in &mut self.obligations {
            o.due = o.extended_until.unwrap_or(planned);
        }
        self.status = derive_status(&self.obligations);
    }
}

fn derive_status(obligations: &[Obligation]) -> MilestoneStatus {
    let has = |s: MilestoneStatus| obligations.iter().any(|o| o.status == s);
    if obligations.is_empty() || has(MilestoneStatus::Open) && !has(MilestoneStatus::Returned) {
        MilestoneStatus::Open
    } else if has(MilestoneStatus::Returned) {
        MilestoneStatus::Returned
    } else if has(MilestoneStatus::Submitted) {
        MilestoneStatus::Submitted
    } else if has(MilestoneStatus::Approved) {
        MilestoneStatus::Approved
    } else if has(MilestoneStatus::Waived) {
        MilestoneStatus::Waived
    } else {
        MilestoneStatus::Cancelled
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

/// What a supervisor's action needs of the obligation it decides.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Decision {
    Approve,
    Return,
    Extend,
    Waive,
    Cancel,
}

impl Decision {
    fn verb(self) -> &'static str {
        match self {
            Self::Approve => "duyệt",
            Self::Return => "trả lại",
            Self::Extend => "gia hạn",
            Self::Waive => "miễn",
            Self::Cancel => "hủy",
        }
    }

    /// Approve and return decide a submission; the rest act on any obligation still owed.
    fn applies_to(self, o: &Obligation) -> bool {
        match self {
            Self::Approve | Self::Return => o.status == MilestoneStatus::Submitted,
            _ => o.status.is_pending(),
        }
    }

    /// Whether the accounts of the current round are barred (four eyes).
    fn four_eyes(self) -> bool {
        matches!(self, Self::Approve | Self::Return | Self::Waive)
    }
}

impl Task {
    pub fn milestone(&self, id: &MilestoneId) -> Option<&Milestone> {
        self.milestones.iter().find(|m| &m.spec.id == id)
    }

    fn milestone_mut(&mut self, id: &MilestoneId) -> Option<&mut Milestone> {
        self.milestones.iter_mut().find(|m| &m.spec.id == id)
    }

    fn sort_milestones(&mut self) {
        self.milestones
            .sort_by(|a, b| (a.spec.due, &a.spec.id).cmp(&(b.spec.due, &b.spec.id)));
    }

    fn implementers(&self) -> &[AgencyCode] {
        self.definition.as_ref().map_or(&[], |d| d.implementers.as_slice())
    }

    /// Decides which events a command produces, or why it is refused.
    pub fn decide(&self, command: TaskCommand) -> Result<Vec<TaskEvent>, TaskError> {
        let TaskCommand { stamp, action } = command;
        if action.is_system() {
            if !stamp.by.is_system() {
                return Err(TaskError::SystemOnly);
            }
        } else if action.is_operation() {
            if matches!(stamp.by, Actor::Legacy { .. }) {
                return Err(TaskError::SystemOnly);
            }
        } else if !matches!(stamp.by, Actor::Account(_)) {
            return Err(TaskError::PersonRequired);
        }
        check_lengths(&action)?;
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
                agency,
                note,
                kpis,
                evidence,
                attachments,
            } => {
                let (def, _, o) = self.implementer_action(&stamp, &milestone, agency.as_ref())?;
                require_owed(&milestone, o, "báo cáo thêm")?;
                check_kpis(def, &kpis)?;
                if note.trim().is_empty() && kpis.is_empty() && evidence.is_empty() && attachments.is_empty() {
                    return Err(TaskError::EmptyReport);
                }
                Ok(vec![TaskEvent::ProgressReported {
                    milestone,
                    obligation: Some(o.reference()),
                    note,
                    kpis,
                    evidence,
                    attachments,
                    stamp,
                }])
            }
            TaskAction::Submit {
                milestone,
                agency,
                note,
                attachments,
            } => {
                let (_, m, o) = self.implementer_action(&stamp, &milestone, agency.as_ref())?;
                require_owed(&milestone, o, "nộp lại")?;
                let ob = o.reference();
                // The supervisors decide; the others sharing a joint
                // obligation hear that it is submitted for them all.
                let by = stamp.by.agency().cloned();
                let mut recipients = self.supervisors_as_recipients();
                for other in self.owners(o, by.as_ref()) {
                    if Some(&other.agency) != by.as_ref() && !recipients.iter().any(|r| r.agency == other.agency) {
                        recipients.push(other);
                    }
                }
                let n = m.count(ReminderKind::Submitted, &ob) + 1;
                let key = obligation_key(&format!("submitted-{n}"), &ob);
                let notice = notice(&milestone, &ob, key, ReminderKind::Submitted, recipients, None, &stamp);
                Ok(vec![
                    TaskEvent::MilestoneSubmitted {
                        milestone,
                        obligation: Some(ob),
                        note,
                        attachments,
                        stamp,
                    },
                    notice,
                ])
            }
            TaskAction::Approve {
                milestone,
                agency,
                note,
            } => {
                let (_, o) = self.supervisor_action(&stamp, &milestone, agency.as_ref(), Decision::Approve)?;
                let ob = o.reference();
                let key = obligation_key("approved", &ob);
                let notice = notice(
                    &milestone,
                    &ob,
                    key,
                    ReminderKind::Approved,
                    self.owners(o, None),
                    None,
                    &stamp,
                );
                Ok(vec![
                    TaskEvent::MilestoneApproved {
                        milestone,
                        obligation: Some(ob),
                        note,
                        stamp,
                    },
                    notice,
                ])
            }
            TaskAction::Return {
                milestone,
                agency,
                reason,
            } => {
                let (m, o) = self.supervisor_action(&stamp, &milestone, agency.as_ref(), Decision::Return)?;
                require_reason(&reason)?;
                let ob = o.reference();
                let n = m.count(ReminderKind::Returned, &ob) + 1;
                let key = obligation_key(&format!("returned-{n}"), &ob);
                let notice = notice(
                    &milestone,
                    &ob,
                    key,
                    ReminderKind::Returned,
                    self.owners(o, None),
                    Some(reason.clone()),
                    &stamp,
                );
                Ok(vec![
                    TaskEvent::MilestoneReturned {
                        milestone,
                        obligation: Some(ob),
                        reason,
                        stamp,
                    },
                    notice,
                ])
            }
            TaskAction::Extend {
                milestone,
                agency,
                until,
                reason,
            } => {
                let (m, o) = self.supervisor_action(&stamp, &milestone, agency.as_ref(), Decision::Extend)?;
                require_reason(&reason)?;
                if until <= o.due {
                    return Err(TaskError::ExtensionNotLater {
                        current: o.due,
                        requested: until,
                    });
                }
                // The agency that owes it (every one sharing a joint
                // obligation) hears of the new deadline and why.
                let ob = o.reference();
                let n = m.count(ReminderKind::Extended, &ob) + 1;
                let key = obligation_key(&format!("extended-{n}"), &ob);
                let note = format!(
                    "Hạn mới: {} (trước đây {}). Lý do: {reason}",
                    crate::domain::dates::format_vn(until),
                    crate::domain::dates::format_vn(o.due)
                );
                let notice = notice(
                    &milestone,
                    &ob,
                    key,
                    ReminderKind::Extended,
                    self.owners(o, None),
                    Some(note),
                    &stamp,
                );
                Ok(vec![
                    TaskEvent::DeadlineExtended {
                        milestone,
                        obligation: Some(ob),
                        from: o.due,
                        until,
                        reason,
                        stamp,
                    },
                    notice,
                ])
            }
            TaskAction::Discuss {
                milestone,
                agency,
                text,
            } => {
                let (def, m) = self.live_milestone(&milestone)?;
                let me = stamp.by.agency().ok_or(TaskError::PersonRequired)?;
                if text.trim().is_empty() {
                    return Err(TaskError::EmptyMessage);
                }
                let implements = def.is_implementer(me) && agency.as_ref().is_none_or(|a| a == me);
                let o = if implements {
                    self.implementer_action(&stamp, &milestone, agency.as_ref())?.2
                } else if def.is_supervisor(me) {
                    match agency.as_ref() {
                        Some(code) => named_obligation(def, m, code)?,
                        None if m.obligations.len() == 1 => &m.obligations[0],
                        None => return Err(unknown_obligation(m, "")),
                    }
                } else {
                    return Err(TaskError::NotInvolved { agency: me.clone() });
                };
                let ob = o.reference();
                // The other side hears of it: the supervisors when the owing
                // agency writes, the owing agency (or every implementer of a
                // joint obligation) when a supervisor does.
                let recipients = if implements {
                    self.supervisors_as_recipients()
                } else {
                    match &o.agency {
                        Some(a) => vec![implementer(a.clone())],
                        None => def.implementers.iter().cloned().map(implementer).collect(),
                    }
                };
                let n = m.count(ReminderKind::Message, &ob) + 1;
                let key = obligation_key(&format!("message-{n}"), &ob);
                let notice = notice(
                    &milestone,
                    &ob,
                    key,
                    ReminderKind::Message,
                    recipients,
                    Some(text.clone()),
                    &stamp,
                );
                Ok(vec![
                    TaskEvent::MessagePosted {
                        milestone,
                        obligation: ob,
                        text,
                        stamp,
                    },
                    notice,
                ])
            }
            TaskAction::QueueReminder {
                milestone,
                obligation,
                key,
                kind,
                covers,
                recipients,
                window,
            } => {
                let (_, m) = self.known_milestone(&milestone)?;
                let Some(o) = m.obligation(&obligation) else {
                    return Ok(vec![]);
                };
                let deadline_kind = matches!(
                    kind,
                    ReminderKind::Upcoming | ReminderKind::Overdue | ReminderKind::Escalation
                );
                let still_expected =
                    !self.withdrawn && matches!(o.status, MilestoneStatus::Open | MilestoneStatus::Returned);
                // Idempotent: a point already recorded, or one about work no
                // longer expected, is quietly skipped (the state moved on).
                if m.has_reminder(&key, &obligation) || (deadline_kind && !still_expected) || recipients.is_empty() {
                    return Ok(vec![]);
                }
                Ok(vec![TaskEvent::ReminderQueued {
                    milestone,
                    key: obligation_key(&key, &obligation),
                    obligation: Some(obligation),
                    kind,
                    covers,
                    recipients,
                    window,
                    note: None,
                    stamp,
                }])
            }
            TaskAction::FormDigest {
                agency,
                items,
                message_id,
                addresses,
            } => {
                // Strict: a dispatcher working from a stale view learns that
                // another digest has these items, and sends nothing.
                for (milestone, key) in &items {
                    let m = self.known_milestone(milestone)?.1;
                    let record =
                        m.reminders
                            .iter()
                            .find(|r| &r.key == key)
                            .ok_or_else(|| TaskError::UnknownReminder {
                                milestone: milestone.clone(),
                                key: key.clone(),
                            })?;
                    if !record.may_form(&agency) {
                        return Err(TaskError::AlreadyInDigest {
                            milestone: milestone.clone(),
                            key: key.clone(),
                        });
                    }
                }
                Ok(self
                    .records(&items, |r| r.may_form(&agency))
                    .map(|(milestone, key)| TaskEvent::ReminderBatched {
                        milestone,
                        key,
                        agency: agency.clone(),
                        message_id: message_id.clone(),
                        addresses: addresses.clone(),
                        stamp: stamp.clone(),
                    })
                    .collect())
            }
            TaskAction::RecordAttempt {
                agency,
                items,
                message_id,
                attempt,
                results,
                next_attempt,
            } => Ok(self
                .records(&items, |r| r.in_flight(&agency, &message_id))
                .map(|(milestone, key)| TaskEvent::ReminderAttempted {
                    milestone,
                    key,
                    agency: agency.clone(),
                    message_id: message_id.clone(),
                    attempt,
                    results: results.clone(),
                    next_attempt,
                    stamp: stamp.clone(),
                })
                .collect()),
            TaskAction::Requeue { agency, items } => Ok(self
                .records(&items, |r| {
                    r.deliveries.get(&agency).is_some_and(Delivery::failed_for_good)
                })
                .map(|(milestone, key)| TaskEvent::ReminderRequeued {
                    milestone,
                    key,
                    agency: agency.clone(),
                    stamp: stamp.clone(),
                })
                .collect()),
            TaskAction::Waive {
                milestone,
                agency,
                reason,
            } => {
                let (_, o) = self.supervisor_action(&stamp, &milestone, agency.as_ref(), Decision::Waive)?;
                require_reason(&reason)?;
                let ob = o.reference();
                let key = obligation_key("waived", &ob);
                let notice = notice(
                    &milestone,
                    &ob,
                    key,
                    ReminderKind::Waived,
                    self.owners(o, None),
                    Some(reason.clone()),
                    &stamp,
                );
                Ok(vec![
                    TaskEvent::MilestoneWaived {
                        milestone,
                        obligation: Some(ob),
                        reason,
                        stamp,
                    },
                    notice,
                ])
            }
            TaskAction::RecordFromSheet { sheet, rows } => self.record_rows(&stamp, &sheet, rows),
            TaskAction::Cancel {
                milestone,
                agency,
                reason,
            } => {
                let (_, o) = self.supervisor_action(&stamp, &milestone, agency.as_ref(), Decision::Cancel)?;
                require_reason(&reason)?;
                Ok(vec![TaskEvent::MilestoneCancelled {
                    milestone,
                    obligation: Some(o.reference()),
                    reason,
                    stamp,
                }])
            }
        }
    }

    /// The rows of a sheet about this task, each on the obligation of its
    /// agency: refused (with the row) where it contradicts the record —
    /// an obligation already approved, submitted or closed, an agency that
    /// owes nothing there, a claimed day after the recording.
    fn record_rows(
        &self,
        stamp: &Stamp,
        sheet: &super::records::SheetRef,
        rows: Vec<super::records::RecordRow>,
    ) -> Result<Vec<TaskEvent>, TaskError> {
        use super::records::RecordedState;
        let refuse = |row: u32, reason: String| TaskError::SheetRow { row, reason };
        let mut events = Vec::new();
        let mut seen: Vec<ObligationRef> = Vec::new();
        for r in rows {
            let (def, m) = self
                .live_milestone(&r.milestone)
                .map_err(|e| refuse(r.row, e.to_string()))?;
            if !def.is_implementer(&r.agency) {
                return Err(refuse(
                    r.row,
                    format!(
                        "{} không phải cơ quan thực hiện nhiệm vụ này nên không có nghĩa vụ ở mốc {}",
                        r.agency, r.milestone
                    ),
                ));
            }
            let o = m
                .obligations
                .iter()
                .find(|o| o.owed_by(&r.agency, &def.implementers))
                .ok_or_else(|| refuse(r.row, unknown_obligation(m, r.agency.as_str()).to_string()))?;
            let ob = o.reference();
            if seen.contains(&ob) {
                return Err(refuse(
                    r.row,
                    format!(
                        "nghĩa vụ của {} ở mốc {} đã có ở một dòng khác của bảng",
                        o.label(),
                        r.milestone
                    ),
                ));
            }
            seen.push(ob.clone());
            match o.status {
                MilestoneStatus::Approved => {
                    return Err(refuse(
                        r.row,
                        format!("mốc {} của {} đã được duyệt trong hệ thống", r.milestone, o.label()),
                    ))
                }
                MilestoneStatus::Submitted => {
                    return Err(refuse(
                        r.row,
                        format!(
                            "mốc {} của {} đã nộp và đang chờ duyệt trong hệ thống",
                            r.milestone,
                            o.label()
                        ),
                    ))
                }
                MilestoneStatus::Waived | MilestoneStatus::Cancelled => {
                    return Err(refuse(
                        r.row,
                        format!(
                            "mốc {} của {} đã đóng ({})",
                            r.milestone,
                            o.label(),
                            o.status.label_vi()
                        ),
                    ))
                }
                MilestoneStatus::Open | MilestoneStatus::Returned => {}
            }
            match (r.state, r.done_on) {
                (RecordedState::Done, None) => {
                    return Err(refuse(r.row, "đã hoàn thành nhưng thiếu ngày hoàn thành".into()))
                }
                (RecordedState::Done, Some(day)) if day > stamp.at.date_naive().succ_opt().unwrap_or(day) => {
                    return Err(refuse(
                        r.row,
                        format!("ngày hoàn thành {} ở tương lai", day.format("%d/%m/%Y")),
                    ))
                }
                (state, Some(_)) if state != RecordedState::Done => {
                    return Err(refuse(
                        r.row,
                        format!(
                            "ngày hoàn thành chỉ ghi khi trạng thái là \"đã hoàn thành\" (dòng ghi \"{}\")",
                            state.label_vi()
                        ),
                    ))
                }
                _ => {}
            }
            for (field, text) in [("ghi chú", &r.note), ("hồ sơ", &r.record)] {
                if let Err(e) = inputs::check_length(field, text, inputs::NOTE_MAX_CHARS) {
                    return Err(refuse(r.row, e.to_string()));
                }
            }
            events.push(TaskEvent::ObligationRecorded {
                milestone: r.milestone,
                obligation: ob,
                state: r.state,
                done_on: r.done_on,
                note: r.note,
                record: r.record,
                sheet: sheet.clone(),
                row: r.row,
                stamp: stamp.clone(),
            });
        }
        Ok(events)
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

    /// The agencies an obligation's outcome concerns besides its
    /// supervisors: the agency that owes it; for a joint obligation every
    /// implementer sharing it, the one that submitted (or `submitting`) first.
    fn owners(&self, o: &Obligation, submitting: Option<&AgencyCode>) -> Vec<Recipient> {
        let mut first = submitter(o);
        if o.agency.is_some() {
            return first;
        }
        if let Some(a) = submitting {
            if first.is_empty() {
                first.push(implementer(a.clone()));
            }
        }
        let implementers = self
            .definition
            .as_ref()
            .map(|d| d.implementers.clone())
            .unwrap_or_default();
        for a in implementers {
            if !first.iter().any(|r| r.agency == a) {
                first.push(implementer(a));
            }
        }
        first
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

    /// An implementer acts on its own obligation (or the joint one).
    fn implementer_action(
        &self,
        stamp: &Stamp,
        id: &MilestoneId,
        named: Option<&AgencyCode>,
    ) -> Result<(&TaskDefinition, &Milestone, &Obligation), TaskError> {
        let (def, m) = self.live_milestone(id)?;
        let agency = stamp.by.agency().ok_or(TaskError::PersonRequired)?;
        if !def.is_implementer(agency) {
            return Err(TaskError::NotImplementer {
                agency: agency.clone(),
                implementers: def.implementers.clone(),
            });
        }
        if let Some(requested) = named.filter(|n| *n != agency) {
            return Err(TaskError::NotYourObligation {
                agency: agency.clone(),
                requested: requested.clone(),
            });
        }
        let o = m
            .obligations
            .iter()
            .find(|o| o.owed_by(agency, &def.implementers))
            .ok_or_else(|| unknown_obligation(m, agency.as_str()))?;
        Ok((def, m, o))
    }

    /// A lead or advisory agency decides one obligation: named, or the only
    /// one the decision could be about. Never its own, and never by an
    /// account of the round it decides.
    fn supervisor_action(
        &self,
        stamp: &Stamp,
        id: &MilestoneId,
        named: Option<&AgencyCode>,
        decision: Decision,
    ) -> Result<(&Milestone, &Obligation), TaskError> {
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
        let own = |o: &Obligation| o.owed_by(agency, &def.implementers);
        let o = match named {
            Some(code) => named_obligation(def, m, code)?,
            None if m.obligations.len() == 1 => &m.obligations[0],
            None => {
                let candidates: Vec<&Obligation> = m
                    .obligations
                    .iter()
                    .filter(|o| decision.applies_to(o) && !own(o))
                    .collect();
                match candidates.as_slice() {
                    [one] => one,
                    // Nothing to decide: name the one that explains why (an
                    // approval made meanwhile, else any other agency's).
                    [] => m
                        .obligations
                        .iter()
                        .filter(|o| !own(o))
                        .find(|o| o.status == MilestoneStatus::Approved)
                        .or_else(|| m.obligations.iter().find(|o| !own(o)))
                        .unwrap_or(&m.obligations[0]),
                    many => {
                        return Err(TaskError::AgencyRequired {
                            milestone: id.clone(),
                            choices: many.iter().map(|o| o.label()).collect::<Vec<_>>().join(", "),
                        })
                    }
                }
            }
        };
        if own(o) {
            return Err(TaskError::OwnObligation {
                agency: agency.clone(),
                milestone: id.clone(),
                action: decision.verb(),
            });
        }
        match decision {
            Decision::Approve | Decision::Return => require_submitted(id, o)?,
            _ => require_not_closed(id, o, decision.verb())?,
        }
        if decision.four_eyes() {
            if let Some(account) = stamp.by.account_id().filter(|a| o.round.iter().any(|r| r == a)) {
                return Err(TaskError::FourEyes {
                    account: account.to_string(),
                    milestone: id.clone(),
                    obligation: o.label(),
                    action: decision.verb(),
                });
            }
        }
        Ok((m, o))
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
                    let title = change(&m.spec.title, &spec.title);
                    let due = change(&m.spec.due, &spec.due);
                    let obligation = change(&m.spec.obligation, &spec.obligation);
                    if title.is_some() || due.is_some() || obligation.is_some() {
                        events.push(TaskEvent::MilestoneAmended {
                            milestone: spec.id.clone(),
                            title,
                            due,
                            obligation,
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
                    obligation: None,
                    reason: REMOVED_FROM_PLAN.to_string(),
                    stamp: stamp.clone(),
                });
            }
        }
        Ok(events)
    }

    /// The obligations an event changes. New events name theirs; release
    /// 0.1 events did not, and are read as follows: a report or submission
    /// counts for the obligation of the agency that made it (the joint one
    /// if the milestone is joint); an approval or return decides every
    /// submitted obligation (there was one submission at a time); an
    /// extension, waiver or cancellation applies to every obligation still
    /// owed. A cancellation by the plan (no obligation) closes every one.
    fn targets<'a>(
        m: &'a mut Milestone,
        ob: Option<&ObligationRef>,
        by: &Actor,
        legacy: Legacy,
    ) -> Vec<&'a mut Obligation> {
        if let Some(ob) = ob {
            return m.obligation_mut(ob).into_iter().collect();
        }
        let joint = m.is_joint();
        m.obligations
            .iter_mut()
            .filter(|o| match legacy {
                Legacy::ByActor => {
                    o.agency.is_none() && joint || by.agency().is_some_and(|a| o.agency.as_ref() == Some(a))
                }
                Legacy::Submitted => o.status == MilestoneStatus::Submitted,
                Legacy::Owed => o.status.is_pending(),
            })
            .collect()
    }
}

/// How a release 0.1 event without an obligation finds the ones it changes.
#[derive(Clone, Copy)]
enum Legacy {
    ByActor,
    Submitted,
    Owed,
}

fn change<T: PartialEq + Clone>(from: &T, to: &T) -> Option<Change<T>> {
    (from != to).then(|| Change {
        from: from.clone(),
        to: to.clone(),
    })
}

fn unknown_obligation(m: &Milestone, agency: &str) -> TaskError {
    TaskError::UnknownObligation {
        milestone: m.spec.id.clone(),
        agency: agency.to_string(),
        known: m
            .obligations
            .iter()
            .map(Obligation::label)
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// An implementer may report on or submit an obligation still owed and not waiting for a decision.
fn require_owed(milestone: &MilestoneId, o: &Obligation, action: &'static str) -> Result<(), TaskError> {
    match o.status {
        MilestoneStatus::Open | MilestoneStatus::Returned => Ok(()),
        MilestoneStatus::Submitted => Err(TaskError::AlreadySubmitted {
            milestone: milestone.clone(),
        }),
        MilestoneStatus::Approved => Err(TaskError::AlreadyApproved {
            milestone: milestone.clone(),
            action,
        }),
        status => Err(TaskError::Closed {
            milestone: milestone.clone(),
            status,
        }),
    }
}

fn require_submitted(milestone: &MilestoneId, o: &Obligation) -> Result<(), TaskError> {
    match o.status {
        MilestoneStatus::Submitted => Ok(()),
        MilestoneStatus::Approved => Err(TaskError::AlreadyApproved {
            milestone: milestone.clone(),
            action: "duyệt lại hay trả lại",
        }),
        status => Err(TaskError::NotSubmitted {
            milestone: milestone.clone(),
            status,
        }),
    }
}

fn require_not_closed(milestone: &MilestoneId, o: &Obligation, action: &'static str) -> Result<(), TaskError> {
    match o.status {
        MilestoneStatus::Approved => Err(TaskError::AlreadyApproved {
            milestone: milestone.clone(),
            action,
        }),
        MilestoneStatus::Waived | MilestoneStatus::Cancelled => Err(TaskError::Closed {
            milestone: milestone.clone(),
            status: o.status,
        }),
        _ => Ok(()),
    }
}

/// The agency that submitted an obligation, as the recipient of the decision.
/// The obligation a supervisor names by its agency (`Milestone::obligation_named`).
fn named_obligation<'m>(
    def: &TaskDefinition,
    m: &'m Milestone,
    code: &AgencyCode,
) -> Result<&'m Obligation, TaskError> {
    m.obligation_named(def, code)
        .ok_or_else(|| unknown_obligation(m, code.as_str()))
}

/// An implementing agency as the recipient of a notice.
fn implementer(agency: AgencyCode) -> Recipient {
    Recipient {
        agency,
        role: Role::Implementer,
    }
}

fn submitter(o: &Obligation) -> Vec<Recipient> {
    let agency = o
        .agency
        .clone()
        .or_else(|| o.submitted.as_ref().and_then(|s| s.by.agency().cloned()));
    agency.map(|a| vec![implementer(a)]).unwrap_or_default()
}

/// A state-change notice, queued in the same commit as the change itself.
fn notice(
    milestone: &MilestoneId,
    ob: &ObligationRef,
    key: String,
    kind: ReminderKind,
    recipients: Vec<Recipient>,
    note: Option<String>,
    stamp: &Stamp,
) -> TaskEvent {
    TaskEvent::ReminderQueued {
        milestone: milestone.clone(),
        obligation: Some(ob.clone()),
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
        let Some(target) = def.kpi(&kv.key) else {
            return Err(TaskError::UnknownKpi {
                key: kv.key.clone(),
                known: def.kpis.iter().map(|k| k.key.as_str()).collect::<Vec<_>>().join(", "),
            });
        };
        inputs::check_kpi_value(target, kv.value)?;
    }
    Ok(())
}

/// Notes, reasons and evidence within their lengths (`inputs`).
fn check_lengths(action: &TaskAction) -> Result<(), TaskError> {
    use inputs::{check_length, NOTE_MAX_CHARS, REASON_MAX_CHARS};
    match action {
        TaskAction::ReportProgress {
            note,
            evidence,
            attachments,
            ..
        } => {
            check_length("ghi chú", note, NOTE_MAX_CHARS)?;
            inputs::check_evidence(evidence)?;
            inputs::check_attachments(attachments)
        }
        TaskAction::Submit { note, attachments, .. } => {
            check_length("ghi chú", note, NOTE_MAX_CHARS)?;
            inputs::check_attachments(attachments)
        }
        TaskAction::Approve { note, .. } => check_length("ghi chú", note, NOTE_MAX_CHARS),
        TaskAction::Discuss { text, .. } => check_length("tin nhắn", text, NOTE_MAX_CHARS),
        TaskAction::Return { reason, .. }
        | TaskAction::Extend { reason, .. }
        | TaskAction::Waive { reason, .. }
        | TaskAction::Cancel { reason, .. } => check_length("lý do", reason, REASON_MAX_CHARS),
        _ => Ok(()),
    }
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
        let implementers = self.implementers().to_vec();
        // The milestone an event changes, and whether the obligations must be
        // matched again to the implementers (the definition or the spec changed).
        let mut touched: Option<MilestoneId> = None;
        let mut all = false;
        match event {
            TaskEvent::TaskRegistered {
                plan, task, definition, ..
            } => {
                self.key = Some(TaskKey::new(plan, task));
                self.definition = Some(definition);
                all = true;
            }
            TaskEvent::TaskAmended { changes, .. } => {
                if let Some(def) = self.definition.as_mut() {
                    changes.apply_to(def);
                }
                all = true;
            }
            TaskEvent::TaskWithdrawn { .. } => self.withdrawn = true,
            TaskEvent::TaskReinstated { .. } => self.withdrawn = false,
            TaskEvent::MilestoneOpened { milestone, .. } => {
                self.milestones.retain(|m| m.spec.id != milestone.id);
                self.milestones.push(Milestone::new(milestone, &implementers));
            }
            TaskEvent::MilestoneAmended {
                milestone,
                title,
                due,
                obligation,
                ..
            } => {
                if let Some(m) = self.milestone_mut(&milestone) {
                    if let Some(t) = &title {
                        m.spec.title = t.to.clone();
                    }
                    if let Some(d) = &due {
                        m.spec.due = d.to;
                    }
                    if let Some(o) = &obligation {
                        m.spec.obligation = o.to;
                    }
                }
                touched = Some(milestone);
            }
            TaskEvent::ProgressReported {
                milestone,
                obligation,
                note,
                kpis,
                evidence,
                attachments,
                ..
            } => {
                if let Some(m) = self.milestone_mut(&milestone) {
                    for o in Self::targets(m, obligation.as_ref(), &stamp.by, Legacy::ByActor) {
                        o.reports += 1;
                        o.record_round(&stamp.by);
                        for kv in &kpis {
                            o.kpis.insert(kv.key.clone(), kv.value);
                        }
                        o.filed.push(Filed {
                            submission: false,
                            note: note.clone(),
                            kpis: kpis.clone(),
                            evidence: evidence.clone(),
                            attachments: attachments.clone(),
                            stamp: stamp.clone(),
                        });
                    }
                }
                touched = Some(milestone);
            }
            TaskEvent::MilestoneSubmitted {
                milestone,
                obligation,
                note,
                attachments,
                ..
            } => {
                if let Some(m) = self.milestone_mut(&milestone) {
                    for o in Self::targets(m, obligation.as_ref(), &stamp.by, Legacy::ByActor) {
                        o.status = MilestoneStatus::Submitted;
                        o.submitted = Some(stamp.clone());
                        o.record_round(&stamp.by);
                        o.filed.push(Filed {
                            submission: true,
                            note: note.clone(),
                            kpis: Vec::new(),
                            evidence: Vec::new(),
                            attachments: attachments.clone(),
                            stamp: stamp.clone(),
                        });
                        if o.agency.is_none() {
                            o.fulfilled_by = stamp.by.agency().cloned();
                        }
                    }
                }
                touched = Some(milestone);
            }
            TaskEvent::MilestoneApproved {
                milestone, obligation, ..
            } => {
                if let Some(m) = self.milestone_mut(&milestone) {
                    for o in Self::targets(m, obligation.as_ref(), &stamp.by, Legacy::Submitted) {
                        o.status = MilestoneStatus::Approved;
                        o.approved = Some(stamp.clone());
                    }
                }
                touched = Some(milestone);
            }
            TaskEvent::MilestoneReturned {
                milestone,
                obligation,
                reason,
                ..
            } => {
                if let Some(m) = self.milestone_mut(&milestone) {
                    for o in Self::targets(m, obligation.as_ref(), &stamp.by, Legacy::Submitted) {
                        o.status = MilestoneStatus::Returned;
                        o.last_reason = Some(reason.clone());
                        o.round.clear();
                        o.filed.clear();
                    }
                }
                touched = Some(milestone);
            }
            TaskEvent::DeadlineExtended {
                milestone,
                obligation,
                until,
                reason,
                ..
            } => {
                if let Some(m) = self.milestone_mut(&milestone) {
                    for o in Self::targets(m, obligation.as_ref(), &stamp.by, Legacy::Owed) {
                        o.extended_until = Some(until);
                        o.last_reason = Some(reason.clone());
                    }
                }
                touched = Some(milestone);
            }
            TaskEvent::MilestoneWaived {
                milestone,
                obligation,
                reason,
                ..
            } => {
                if let Some(m) = self.milestone_mut(&milestone) {
                    for o in Self::targets(m, obligation.as_ref(), &stamp.by, Legacy::Owed) {
                        o.status = MilestoneStatus::Waived;
                        o.closed = Some(stamp.clone());
                        o.last_reason = Some(reason.clone());
                    }
                }
                touched = Some(milestone);
            }
            TaskEvent::MilestoneCancelled {
                milestone,
                obligation,
                reason,
                ..
            } => {
                if let Some(m) = self.milestone_mut(&milestone) {
                    // Without an obligation: the plan dropped the milestone
                    // (or, in release 0.1, a person cancelled all of it).
                    let by_plan = obligation.is_none() && !matches!(stamp.by, Actor::Legacy { .. });
                    for o in Self::targets(m, obligation.as_ref(), &stamp.by, Legacy::Owed) {
                        o.status = MilestoneStatus::Cancelled;
                        o.closed = Some(stamp.clone());
                        o.last_reason = Some(reason.clone());
                        o.removed_by_plan = by_plan;
                    }
                }
                touched = Some(milestone);
            }
            // A message changes no state: the discussion is read from the
            // events, and its notice is the ReminderQueued beside it.
            TaskEvent::MessagePosted { .. } => {}
            TaskEvent::ObligationRecorded {
                milestone,
                obligation,
                state,
                done_on,
                sheet,
                row,
                ..
            } => {
                if let Some(m) = self.milestone_mut(&milestone) {
                    if let Some(o) = m.obligation_mut(&obligation) {
                        match state {
                            super::records::RecordedState::Done => {
                                o.status = MilestoneStatus::Approved;
                                o.approved = Some(stamp.clone());
                                o.round.clear();
                            }
                            super::records::RecordedState::InProgress => o.reports += 1,
                            _ => {}
                        }
                        o.recorded = Some(super::records::Recorded {
                            state,
                            done_on,
                            sheet: sheet.clone(),
                            row,
                        });
                    }
                }
                touched = Some(milestone);
            }
            TaskEvent::ReminderQueued {
                milestone,
                obligation,
                key,
                kind,
                covers,
                recipients,
                window,
                note,
                ..
            } => {
                if let Some(m) = self.milestone_mut(&milestone) {
                    m.reminders.push(ReminderRecord {
                        key,
                        obligation,
                        kind,
                        covers,
                        recipients,
                        window,
                        note,
                        queued_at: stamp.at,
                        deliveries: BTreeMap::new(),
                    })
                }
            }
            TaskEvent::ReminderSent {
                milestone,
                key,
                agency,
                message_id,
                ..
            } => {
                if let Some(r) = self.reminder_mut(&milestone, &key) {
                    r.deliveries.insert(
                        agency,
                        Delivery::Sent {
                            message_id,
                            at: stamp.at,
                        },
                    );
                }
            }
            TaskEvent::ReminderFailed {
                milestone,
                key,
                agency,
                attempt,
                error,
                next_attempt,
                ..
            } => {
                if let Some(r) = self.reminder_mut(&milestone, &key) {
                    r.deliveries.insert(
                        agency,
                        Delivery::Failed {
                            attempts: attempt,
                            error,
                            next_attempt,
                        },
                    );
                }
            }
            TaskEvent::ReminderBatched {
                milestone,
                key,
                agency,
                message_id,
                addresses,
                ..
            } => {
                if let Some(r) = self.reminder_mut(&milestone, &key) {
                    r.deliveries.insert(
                        agency,
                        Delivery::Digest {
                            message_id,
                            addresses: addresses.into_iter().map(|a| (a, AddressState::Pending)).collect(),
                            attempts: 0,
                            first_attempt: None,
                            last_attempt: None,
                            next_attempt: None,
                            last_error: None,
                            formed_at: stamp.at,
                        },
                    );
                }
            }
            TaskEvent::ReminderAttempted {
                milestone,
                key,
                agency,
                attempt,
                results,
                next_attempt,
                ..
            } => {
                if let Some(Delivery::Digest {
                    addresses,
                    attempts,
                    first_attempt,
                    last_attempt,
                    next_attempt: next,
                    last_error,
                    ..
                }) = self
                    .reminder_mut(&milestone, &key)
                    .and_then(|r| r.deliveries.get_mut(&agency))
                {
                    for result in &results {
                        let state = match result.outcome {
                            AddressOutcome::Accepted => AddressState::Accepted {
                                reply: result.reply.clone(),
                            },
                            AddressOutcome::Rejected => AddressState::Rejected {
                                reply: result.reply.clone(),
                            },
                            AddressOutcome::Deferred if next_attempt.is_some() => AddressState::Deferred {
                                reply: result.reply.clone(),
                            },
                            AddressOutcome::Deferred => AddressState::GaveUp {
                                reply: result.reply.clone(),
                            },
                        };
                        addresses.insert(result.address.clone(), state);
                    }
                    if next_attempt.is_none() {
                        for state in addresses.values_mut() {
                            if matches!(state, AddressState::Pending) {
                                *state = AddressState::GaveUp { reply: String::new() };
                            }
                        }
                    }
                    *attempts = attempt;
                    first_attempt.get_or_insert(stamp.at);
                    *last_attempt = Some(stamp.at);
                    *next = next_attempt;
                    let errors: Vec<String> = results
                        .iter()
                        .filter(|r| r.outcome != AddressOutcome::Accepted)
                        .map(AddressResult::described)
                        .collect();
                    *last_error = (!errors.is_empty()).then(|| errors.join("; "));
                }
            }
            TaskEvent::ReminderRequeued {
                milestone, key, agency, ..
            } => {
                if let Some(r) = self.reminder_mut(&milestone, &key) {
                    match r.deliveries.get_mut(&agency) {
                        Some(Delivery::Digest {
                            addresses,
                            first_attempt,
                            next_attempt,
                            ..
                        }) => {
                            for state in addresses.values_mut() {
                                if matches!(state, AddressState::Rejected { .. } | AddressState::GaveUp { .. }) {
                                    *state = AddressState::Pending;
                                }
                            }
                            // A new lifetime of retries from the next attempt.
                            *first_attempt = None;
                            *next_attempt = None;
                        }
                        // A release 0.1 failure: the item is queued afresh.
                        Some(Delivery::Failed { .. }) => {
                            r.deliveries.remove(&agency);
                        }
                        _ => {}
                    }
                }
            }
        }
        let implementers = self.implementers().to_vec();
        for m in &mut self.milestones {
            if all || touched.as_ref() == Some(&m.spec.id) {
                m.reconcile(&implementers);
            }
        }
        self.sort_milestones();
    }
}

impl Task {
    /// The items (milestone, key) of `items` whose record exists and passes
    /// `wanted`: what a dispatcher or operator action applies to. Others are
    /// quietly skipped (the state moved on: a re-run is harmless).
    fn records<'a>(
        &'a self,
        items: &'a [(MilestoneId, String)],
        wanted: impl Fn(&ReminderRecord) -> bool + 'a,
    ) -> impl Iterator<Item = (MilestoneId, String)> + 'a {
        items
            .iter()
            .filter(move |(milestone, key)| {
                self.milestone(milestone)
                    .and_then(|m| m.reminders.iter().find(|r| &r.key == key))
                    .is_some_and(&wanted)
            })
            .cloned()
    }

    fn reminder_mut(&mut self, milestone: &MilestoneId, key: &str) -> Option<&mut ReminderRecord> {
        self.milestone_mut(milestone)?
            .reminders
            .iter_mut()
            .find(|r| r.key == key)
    }
}
