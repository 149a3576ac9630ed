//! The Plan aggregate: the plan's header, settings and agency directory, so
//! that changes to them (an agency's e-mail, the time zone) have a history too.

use super::calendar::WorkCalendar;
use super::dates::DayMonth;
use super::directory::{self, DirectoryNotice};
use super::ids::{AgencyCode, PlanId};
use super::reminders::ReminderPolicy;
use super::task::events::Change;
use super::task::{Actor, Delivery, DeliveryOutcome, Stamp};
use chrono::{DateTime, NaiveDate, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub name: String,
    pub emails: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Agency {
    pub code: AgencyCode,
    pub name: String,
    /// A short name for where space is tight ("UBND thị xã"); absent in
    /// events before it existed, and then not written (hashes unchanged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub short: Option<String>,
    pub aliases: Vec<String>,
    pub emails: Vec<String>,
    pub members: Vec<Member>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanHeader {
    pub id: PlanId,
    pub title: String,
    pub issuer: AgencyCode,
    pub document: Option<String>,
    pub start: NaiveDate,
    pub end: NaiveDate,
    /// IANA name, for example `Asia/Ho_Chi_Minh`.
    pub time_zone: String,
    /// `DD/MM` on which ongoing tasks report each year.
    pub yearly_report: String,
    pub first_year: i32,
    pub last_year: i32,
    pub five_year_review: NaiveDate,
    #[serde(default)]
    pub reminders: ReminderPolicy,
    #[serde(default)]
    pub calendar: WorkCalendar,
    /// Cron expression (plan zone) at which `serve` records an audit checkpoint.
    #[serde(default = "default_checkpoint_at")]
    pub checkpoint_at: String,
    /// The latest date a deadline may be extended to, where the plan allows
    /// extensions past its period's end (`period.extend_until`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extend_until: Option<NaiveDate>,
    /// Whether a deadline on a non-working day ends on the next working day
    /// (the Civil Code, the default: plans stored before this field follow it).
    #[serde(default, skip_serializing_if = "crate::domain::deadline::DeadlineRule::is_default")]
    pub deadline_rule: crate::domain::deadline::DeadlineRule,
    /// Who the plan's e-mails are from and how their subjects start.
    #[serde(default, skip_serializing_if = "MailIdentity::is_empty")]
    pub mail: MailIdentity,
}

/// How a plan's e-mails present themselves (`[mail]` of the plan file).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MailIdentity {
    /// The sender's name people see ("Văn phòng Thị ủy Đức Phổ"); the
    /// address stays `KEHOACH_MAIL_FROM`'s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender_name: Option<String>,
    /// What every subject starts with ("[Thị ủy Đức Phổ]").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_prefix: Option<String>,
}

/// The subject prefix of plans that set none.
pub const DEFAULT_SUBJECT_PREFIX: &str = "[kehoach]";

impl MailIdentity {
    pub fn is_empty(&self) -> bool {
        self.sender_name.is_none() && self.subject_prefix.is_none()
    }

    pub fn subject_prefix(&self) -> &str {
        self.subject_prefix.as_deref().unwrap_or(DEFAULT_SUBJECT_PREFIX)
    }

    /// `from` ("Name <address>" or a bare address) with the plan's sender
    /// name in front of its address, where the plan sets one.
    pub fn sender(&self, from: &str) -> String {
        let Some(name) = &self.sender_name else {
            return from.to_string();
        };
        let address = match (from.rfind('<'), from.rfind('>')) {
            (Some(i), Some(j)) if i < j => &from[i + 1..j],
            _ => from.trim(),
        };
        let name = name.replace(['"', '\\', '<', '>'], " ");
        format!("{} <{address}>", name.trim())
    }
}

pub const DEFAULT_CHECKPOINT_AT: &str = "0 0 23 * * *";

fn default_checkpoint_at() -> String {
    DEFAULT_CHECKPOINT_AT.to_string()
}

impl PlanHeader {
    pub fn tz(&self) -> chrono_tz::Tz {
        self.time_zone.parse().unwrap_or(chrono_tz::Asia::Ho_Chi_Minh)
    }

    /// One line when a year of the plan's period has begun by `today` and
    /// days off of that year are still marked as estimates: deadlines and
    /// reminders are counted on a calendar nobody has confirmed.
    pub fn calendar_warning(&self, today: NaiveDate) -> Option<String> {
        use chrono::Datelike;
        let due = self.calendar.estimates_due(self.start.year(), self.end.year(), today);
        if due.is_empty() {
            return None;
        }
        let mut years: Vec<String> = due.iter().map(|d| d.year().to_string()).collect();
        years.dedup();
        let days: Vec<String> = due.iter().map(|d| d.format("%d/%m/%Y").to_string()).collect();
        Some(format!(
            "lịch ngày nghỉ năm {} của kế hoạch {} còn {} ngày ước tính ({}): đối chiếu với thông báo chính thức về lịch nghỉ lễ, Tết rồi sửa mục [calendar] của tệp kế hoạch (bỏ estimate = true)",
            years.join(", "),
            self.id,
            due.len(),
            days.join(", ")
        ))
    }

    /// The latest date a deadline of this plan may be extended to.
    pub fn latest_extension(&self) -> NaiveDate {
        self.extend_until.map_or(self.end, |d| d.max(self.end))
    }

    pub fn yearly_report_day(&self) -> Option<DayMonth> {
        DayMonth::parse(&self.yearly_report).ok()
    }
}

/// The file a plan was loaded from: its name as given and the SHA-256 of
/// its bytes, so that the record says exactly which text was in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanSource {
    pub file: String,
    pub sha256: String,
    /// The document (Word or text) the plan file was imported from on the
    /// web, kept content-addressed with the evidence files. Absent for a
    /// plan file written by hand, and in every event before it existed (so
    /// their canonical form, and their hashes, are unchanged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document: Option<SourceDocument>,
}

impl PlanSource {
    /// The file's name without the directories it was read from (what a
    /// page shows and a download is named).
    pub fn file_name(&self) -> String {
        std::path::Path::new(&self.file)
            .file_name()
            .map_or_else(|| self.file.clone(), |n| n.to_string_lossy().into_owned())
    }
}

/// An original document a plan was imported from: its file name as
/// uploaded, the SHA-256 and size of its bytes and its media type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceDocument {
    pub file: String,
    pub sha256: String,
    pub size: u64,
    pub media_type: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
// Events live briefly between decide and serialisation; boxing would only add noise.
#[allow(clippy::large_enum_variant)]
pub enum PlanEvent {
    PlanRegistered {
        header: PlanHeader,
        agencies: Vec<Agency>,
        /// Absent in release 0.1 events.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        source: Option<PlanSource>,
        stamp: Stamp,
    },
    /// A load that changed the header, the directory, or only the file
    /// (its tasks): `source` is the file now in force.
    PlanAmended {
        header: Option<Change<PlanHeader>>,
        agencies: Option<Change<Vec<Agency>>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        source: Option<PlanSource>,
        stamp: Stamp,
    },
    /// A directory change took addresses from an agency (or added some):
    /// its old addresses `to` are owed a notice. Queued by the amending command.
    DirectoryNoticeQueued {
        key: String,
        agency: AgencyCode,
        to: Vec<String>,
        removed: Vec<String>,
        added: Vec<String>,
        stamp: Stamp,
    },
    DirectoryNoticeSent {
        key: String,
        message_id: String,
        reply: String,
        stamp: Stamp,
    },
    DirectoryNoticeFailed {
        key: String,
        attempt: u32,
        error: String,
        /// None once the dispatcher gives up.
        next_attempt: Option<DateTime<Utc>>,
        stamp: Stamp,
    },
}

impl DomainEvent for PlanEvent {
    fn event_type(&self) -> String {
        match self {
            Self::PlanRegistered { .. } => "PlanRegistered",
            Self::PlanAmended { .. } => "PlanAmended",
            Self::DirectoryNoticeQueued { .. } => "DirectoryNoticeQueued",
            Self::DirectoryNoticeSent { .. } => "DirectoryNoticeSent",
            Self::DirectoryNoticeFailed { .. } => "DirectoryNoticeFailed",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SyncPlan {
    pub header: PlanHeader,
    pub agencies: Vec<Agency>,
    pub source: PlanSource,
    pub stamp: Stamp,
}

/// Every command on a plan: the loader's sync, and the dispatcher's record
/// of a directory notice's delivery.
#[derive(Debug, Clone, PartialEq)]
// Commands live briefly between the engine and decide.
#[allow(clippy::large_enum_variant)]
pub enum PlanCommand {
    Sync(SyncPlan),
    RecordNoticeDelivery {
        key: String,
        outcome: DeliveryOutcome,
        stamp: Stamp,
    },
}

impl From<SyncPlan> for PlanCommand {
    fn from(sync: SyncPlan) -> Self {
        Self::Sync(sync)
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    #[error("chỉ hệ thống (nạp kế hoạch) được thay đổi kế hoạch")]
    SystemOnly,
    #[error("kế hoạch đã đăng ký với mã {0}")]
    WrongIdentity(PlanId),
    #[error("không có thông báo thay đổi danh mục {0}")]
    UnknownNotice(String),
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub header: Option<PlanHeader>,
    pub agencies: Vec<Agency>,
    /// The file in force, and who loaded it when (none before release 0.2).
    #[serde(default)]
    pub source: Option<PlanSource>,
    #[serde(default)]
    pub loaded: Option<Stamp>,
    /// Notices owed to the old addresses of changed directory entries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notices: Vec<DirectoryNotice>,
}

impl Plan {
    pub fn agency(&self, code: &AgencyCode) -> Option<&Agency> {
        self.agencies.iter().find(|a| &a.code == code)
    }

    /// An agency's name in the directory, its code where the directory
    /// does not list it.
    pub fn agency_name(&self, code: &AgencyCode) -> String {
        self.agency(code).map_or_else(|| code.to_string(), |a| a.name.clone())
    }

    /// The name of the agency whose code is `code` as written, if listed.
    pub fn agency_name_of(&self, code: &str) -> Option<&str> {
        self.agencies
            .iter()
            .find(|a| a.code.as_str() == code)
            .map(|a| a.name.as_str())
    }

    /// How the plan's e-mails present themselves (nothing set: the defaults).
    pub fn mail(&self) -> &MailIdentity {
        static DEFAULTS: MailIdentity = MailIdentity {
            sender_name: None,
            subject_prefix: None,
        };
        self.header.as_ref().map_or(&DEFAULTS, |h| &h.mail)
    }

    /// Who acted, as people read it: the person's name and agency name,
    /// never an account id or an agency code.
    pub fn actor_text(&self, actor: &crate::domain::task::Actor) -> String {
        use crate::domain::task::Actor;
        match actor {
            Actor::Account(p) => format!("{} — {}", p.name, self.agency_name(&p.agency)),
            Actor::Legacy { agency, person } => format!("{person} — {}", self.agency_name(agency)),
            other => other.to_string(),
        }
    }

    pub fn notice(&self, key: &str) -> Option<&DirectoryNotice> {
        self.notices.iter().find(|n| n.key == key)
    }

    /// Decides any plan command. A sync that changes an agency's addresses
    /// also queues, in the same command, a notice to the old addresses of
    /// each such agency (see `domain::directory`).
    pub fn decide_command(&self, cmd: PlanCommand) -> Result<Vec<PlanEvent>, PlanError> {
        match cmd {
            PlanCommand::Sync(sync) => {
                let mut events = self.decide(sync)?;
                let notices: Vec<PlanEvent> = events
                    .iter()
                    .filter_map(|e| match e {
                        PlanEvent::PlanAmended {
                            agencies: Some(change),
                            stamp,
                            ..
                        } => Some(self.directory_notices(&change.from, &change.to, stamp)),
                        _ => None,
                    })
                    .flatten()
                    .collect();
                events.extend(notices);
                Ok(events)
            }
            PlanCommand::RecordNoticeDelivery { key, outcome, stamp } => {
                if !stamp.by.is_system() {
                    return Err(PlanError::SystemOnly);
                }
                let notice = self.notice(&key).ok_or_else(|| PlanError::UnknownNotice(key.clone()))?;
                if notice.is_sent() {
                    return Ok(vec![]);
                }
                Ok(vec![match outcome {
                    DeliveryOutcome::Sent { message_id, reply, .. } => PlanEvent::DirectoryNoticeSent {
                        key,
                        message_id,
                        reply,
                        stamp,
                    },
                    DeliveryOutcome::Failed {
                        attempt,
                        error,
                        next_attempt,
                    } => PlanEvent::DirectoryNoticeFailed {
                        key,
                        attempt,
                        error,
                        next_attempt,
                        stamp,
                    },
                }])
            }
        }
    }

    fn directory_notices(&self, from: &[Agency], to: &[Agency], stamp: &Stamp) -> Vec<PlanEvent> {
        let change = directory::next_change_number(&self.notices);
        directory::address_changes(from, to)
            .into_iter()
            .map(|c| PlanEvent::DirectoryNoticeQueued {
                key: directory::notice_key(change, &c.agency),
                agency: c.agency,
                to: c.to,
                removed: c.removed,
                added: c.added,
                stamp: stamp.clone(),
            })
            .collect()
    }

    pub fn decide(&self, cmd: SyncPlan) -> Result<Vec<PlanEvent>, PlanError> {
        if matches!(cmd.stamp.by, Actor::Legacy { .. }) {
            return Err(PlanError::SystemOnly);
        }
        let Some(old) = &self.header else {
            return Ok(vec![PlanEvent::PlanRegistered {
                header: cmd.header,
                agencies: cmd.agencies,
                source: Some(cmd.source),
                stamp: cmd.stamp,
            }]);
        };
        if old.id != cmd.header.id {
            return Err(PlanError::WrongIdentity(old.id.clone()));
        }
        let header = (old != &cmd.header).then(|| Change {
            from: old.clone(),
            to: cmd.header.clone(),
        });
        let agencies = (self.agencies != cmd.agencies).then(|| Change {
            from: self.agencies.clone(),
            to: cmd.agencies.clone(),
        });
        // The same text again is no change, unless it now comes with an
        // original document that the record does not have yet.
        let same_file = self.source.as_ref().is_some_and(|s| {
            s.sha256 == cmd.source.sha256 && (cmd.source.document.is_none() || s.document == cmd.source.document)
        });
        if header.is_none() && agencies.is_none() && same_file {
            return Ok(vec![]);
        }
        Ok(vec![PlanEvent::PlanAmended {
            header,
            agencies,
            source: Some(cmd.source),
            stamp: cmd.stamp,
        }])
    }
}

impl Aggregate for Plan {
    const TYPE: &'static str = "Plan";
    type Command = PlanCommand;
    type Event = PlanEvent;
    type Error = PlanError;
    type Services = ();

    async fn handle(&mut self, command: PlanCommand, _: &(), sink: &EventSink<Self>) -> Result<(), PlanError> {
        for event in self.decide_command(command)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: PlanEvent) {
        match event {
            PlanEvent::PlanRegistered {
                header,
                agencies,
                source,
                stamp,
            } => {
                self.header = Some(header);
                self.agencies = agencies;
                self.source = source;
                self.loaded = Some(stamp);
            }
            PlanEvent::PlanAmended {
                header,
                agencies,
                source,
                stamp,
            } => {
                if let Some(h) = header {
                    self.header = Some(h.to);
                }
                if let Some(a) = agencies {
                    self.agencies = a.to;
                }
                if source.is_some() {
                    self.source = source;
                }
                self.loaded = Some(stamp);
            }
            PlanEvent::DirectoryNoticeQueued {
                key,
                agency,
                to,
                removed,
                added,
                stamp,
            } => {
                if self.notice(&key).is_none() {
                    self.notices
                        .push(directory::queued(key, agency, to, removed, added, &stamp));
                }
            }
            PlanEvent::DirectoryNoticeSent {
                key, message_id, stamp, ..
            } => {
                if let Some(n) = self.notices.iter_mut().find(|n| n.key == key) {
                    n.delivery = Some(Delivery::Sent {
                        message_id,
                        at: stamp.at,
                    });
                }
            }
            PlanEvent::DirectoryNoticeFailed {
                key,
                attempt,
                error,
                next_attempt,
                ..
            } => {
                if let Some(n) = self.notices.iter_mut().find(|n| n.key == key) {
                    n.delivery = Some(Delivery::Failed {
                        attempts: attempt,
                        error,
                        next_attempt,
                    });
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
