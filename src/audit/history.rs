//! What happened to a task, and what was true as of any instant, replayed
//! from the events: shared by `audit history`/`audit plan`, the API and the
//! auditors' pages.

use super::asof::{replay_until, Stored, StoredPlan};
use crate::domain::dates::{format_vn, local_date, parse_date};
use crate::domain::deadline::Deadlines;
use crate::domain::ids::{AgencyCode, MilestoneId, TaskKey};
use crate::domain::plan::{Agency, PlanEvent};
use crate::domain::reminders::reminder_label;
use crate::domain::task::{format_number, AddressOutcome, DeliveryStatus, KpiValue, MilestoneStatus, Task, TaskEvent};
use crate::projections::json::obligation_json;
use crate::projections::views::{obligation_timeliness, timeliness, Timeliness};
use crate::store::{Store, StoreError};
use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// An instant given as RFC 3339, or a date meaning the end of that local day.
pub fn parse_as_of(s: &str, tz: Tz) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s.trim()) {
        return Ok(t.with_timezone(&Utc));
    }
    let date = parse_date(s).map_err(|e| e.to_string())?;
    let next = (date + Duration::days(1)).and_hms_opt(0, 0, 0).expect("midnight");
    tz.from_local_datetime(&next)
        .earliest()
        .map(|t| t.with_timezone(&Utc) - Duration::nanoseconds(1))
        .ok_or_else(|| format!("{s:?} không phải thời điểm có thật"))
}

/// The names people read for a task's milestones and KPIs, from the task
/// as it stood when an event happened.
struct Names<'a>(&'a Task);

impl Names<'_> {
    /// "mốc “Đăng ký mô hình năm 2024”": a milestone by its title (by its
    /// id only when the task does not know it).
    fn milestone(&self, id: &MilestoneId) -> String {
        match self.0.milestone(id) {
            Some(m) => format!("mốc “{}”", m.spec.title),
            None => format!("mốc {id}"),
        }
    }

    /// "Số mô hình: 2 mô hình, Tỷ lệ: 85%": reported values by KPI label and unit.
    fn kpis(&self, values: &[KpiValue]) -> String {
        let def = self.0.definition.as_ref();
        values
            .iter()
            .map(|k| match def.and_then(|d| d.kpi(&k.key)) {
                Some(target) => target.reading(k.value),
                None => format!("{}: {}", k.key, format_number(k.value)),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The non-empty parts of an entry's details, joined.
fn details(parts: &[String]) -> String {
    parts
        .iter()
        .filter(|s| !s.is_empty())
        .cloned()
        .collect::<Vec<_>>()
        .join("; ")
}

/// What an event means, in Vietnamese, and its details: milestones by
/// title, KPIs by label and unit, reminders by what they are. `task` is the
/// task as it stood once the event had happened (names come from it).
pub fn describe(e: &TaskEvent, task: &Task, tz: Tz) -> (String, String) {
    let due = |d: &NaiveDate| format_vn(*d);
    let names = Names(task);
    let ms = |id: &MilestoneId| names.milestone(id);
    match e {
        TaskEvent::TaskRegistered { definition, .. } => (
            "Đăng ký nhiệm vụ từ kế hoạch".into(),
            format!(
                "lãnh đạo {}; thực hiện {}",
                definition.lead,
                definition
                    .implementers
                    .iter()
                    .map(|a| a.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
        TaskEvent::TaskAmended { changes, .. } => {
            let mut parts = Vec::new();
            if changes.title.is_some() {
                parts.push("tiêu đề".to_string());
            }
            if changes.text.is_some() {
                parts.push("nội dung".into());
            }
            if let Some(c) = &changes.lead {
                parts.push(format!("lãnh đạo {} → {}", c.from, c.to));
            }
            if let Some(c) = &changes.implementers {
                let j = |v: &Vec<crate::domain::ids::AgencyCode>| {
                    v.iter().map(|a| a.as_str()).collect::<Vec<_>>().join(",")
                };
                parts.push(format!("thực hiện {} → {}", j(&c.from), j(&c.to)));
            }
            if changes.advisory.is_some() {
                parts.push("cơ quan tham mưu".into());
            }
            if changes.coordinators.is_some() {
                parts.push("cơ quan phối hợp".into());
            }
            if changes.kpis.is_some() {
                parts.push("chỉ tiêu".into());
            }
            ("Kế hoạch sửa đổi nhiệm vụ".into(), parts.join("; "))
        }
        TaskEvent::TaskWithdrawn { reason, .. } => ("Rút nhiệm vụ khỏi kế hoạch".into(), reason.clone()),
        TaskEvent::TaskReinstated { .. } => ("Đưa nhiệm vụ trở lại kế hoạch".into(), String::new()),
        TaskEvent::MilestoneOpened { milestone, .. } => (
            format!("Mở mốc “{}”", milestone.title),
            format!("hạn {}", due(&milestone.due)),
        ),
        TaskEvent::MilestoneAmended { milestone, due: d, .. } => (
            format!("Kế hoạch sửa {}", ms(milestone)),
            d.as_ref()
                .map(|c| format!("hạn {} → {}", due(&c.from), due(&c.to)))
                .unwrap_or_else(|| "tiêu đề".into()),
        ),
        TaskEvent::ProgressReported {
            milestone,
            note,
            kpis,
            evidence,
            attachments,
            ..
        } => (
            format!("Báo cáo tiến độ {}", ms(milestone)),
            details(&[note.clone(), names.kpis(kpis), evidence.join(" "), files(attachments)]),
        ),
        TaskEvent::MilestoneSubmitted {
            milestone,
            note,
            attachments,
            ..
        } => (
            format!("Nộp {}", ms(milestone)),
            details(&[note.clone(), files(attachments)]),
        ),
        TaskEvent::MilestoneApproved { milestone, note, .. } => (format!("Duyệt {}", ms(milestone)), note.clone()),
        TaskEvent::MilestoneReturned { milestone, reason, .. } => {
            (format!("Trả lại {}", ms(milestone)), reason.clone())
        }
        TaskEvent::DeadlineExtended {
            milestone,
            from,
            until,
            reason,
            ..
        } => (
            format!("Gia hạn {}", ms(milestone)),
            format!("{} → {}: {reason}", due(from), due(until)),
        ),
        TaskEvent::MilestoneWaived { milestone, reason, .. } => (format!("Miễn {}", ms(milestone)), reason.clone()),
        TaskEvent::MilestoneCancelled { milestone, reason, .. } => (format!("Hủy {}", ms(milestone)), reason.clone()),
        TaskEvent::MessagePosted {
            milestone,
            obligation,
            text,
            ..
        } => (
            format!(
                "Trao đổi về {}{}",
                ms(milestone),
                obligation
                    .agency()
                    .map_or_else(String::new, |a| format!(" (phần của {a})"))
            ),
            text.clone(),
        ),
        TaskEvent::ObligationRecorded {
            milestone,
            obligation,
            state,
            done_on,
            note,
            record,
            sheet,
            row,
            ..
        } => {
            let owner = obligation
                .agency()
                .map_or_else(|| "nghĩa vụ chung".to_string(), ToString::to_string);
            let mut details = vec![format!("{owner}: {}", state.label_vi())];
            if let Some(d) = done_on {
                details.push(format!("ngày hoàn thành {}", due(d)));
            }
            if !note.is_empty() {
                details.push(note.clone());
            }
            if !record.is_empty() {
                details.push(format!("hồ sơ lưu tại {record}"));
            }
            details.push(format!("bảng {} (SHA-256 {}), dòng {row}", sheet.file, sheet.sha256));
            (format!("Ghi nhận từ hồ sơ {}", ms(milestone)), details.join("; "))
        }
        TaskEvent::ReminderQueued {
            milestone,
            key,
            recipients,
            ..
        } => (
            format!("Xếp hàng {} ({})", reminder_label(key), ms(milestone)),
            recipients
                .iter()
                .map(|r| format!("{} ({})", r.agency, r.role.label_vi()))
                .collect::<Vec<_>>()
                .join(", "),
        ),
        TaskEvent::ReminderSent {
            milestone,
            key,
            agency,
            message_id,
            ..
        } => (
            format!("Đã gửi {} ({}) đến {agency}", reminder_label(key), ms(milestone)),
            message_id.clone(),
        ),
        TaskEvent::ReminderFailed {
            milestone,
            key,
            agency,
            attempt,
            error,
            ..
        } => (
            format!(
                "Gửi {} ({}) đến {agency} lỗi lần {attempt}",
                reminder_label(key),
                ms(milestone)
            ),
            error.clone(),
        ),
        TaskEvent::ReminderBatched {
            milestone,
            key,
            agency,
            message_id,
            addresses,
            ..
        } => (
            format!(
                "Đưa {} ({}) vào thư tổng hợp gửi {agency}",
                reminder_label(key),
                ms(milestone)
            ),
            format!("{message_id} → {}", addresses.join(", ")),
        ),
        TaskEvent::ReminderAttempted {
            milestone,
            key,
            agency,
            message_id,
            attempt,
            results,
            next_attempt,
            ..
        } => (
            format!(
                "Gửi {} ({}) đến {agency}, lần {attempt}",
                reminder_label(key),
                ms(milestone)
            ),
            format!(
                "{message_id}: {}{}",
                results
                    .iter()
                    .map(|r| format!("{} {} ({})", r.address, address_outcome_vi(r.outcome), r.reply))
                    .collect::<Vec<_>>()
                    .join("; "),
                next_attempt.map_or(String::new(), |t| {
                    format!("; thử lại lúc {}", t.with_timezone(&tz).format("%H:%M %d/%m/%Y"))
                })
            ),
        ),
        TaskEvent::ReminderRequeued {
            milestone, key, agency, ..
        } => (
            format!(
                "Xếp hàng gửi lại {} ({}) đến {agency}",
                reminder_label(key),
                ms(milestone)
            ),
            String::new(),
        ),
    }
}

/// The first instant a plan's record holds (its first load), as people read it.
pub fn record_start_text(at: DateTime<Utc>, tz: Tz) -> String {
    format!(
        "{} lúc {}",
        format_vn(at.with_timezone(&tz).date_naive()),
        at.with_timezone(&tz).format("%H:%M")
    )
}

/// A task's state, for `--as-of` output.
pub fn state_json(task: &Task, today: NaiveDate, dl: Deadlines<'_>) -> Value {
    let Some(def) = &task.definition else {
        return json!(null);
    };
    json!({
        "withdrawn": task.withdrawn,
        "lead": def.lead,
        "advisory": def.advisory,
        "implementers": def.implementers,
        "milestones": task.milestones.iter().map(|m| json!({
            "id": m.spec.id,
            "due": m.due().to_string(),
            "due_legal": dl.legal(m.due()).to_string(),
            "status": m.status.as_str(),
            "timeliness": timeliness(m, today, dl),
            "reminders_sent": reminders_sent(m),
            "obligations": m.obligations.iter().map(|o| obligation_json(o, today, dl, false)).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

/// One line of a task's history.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub sequence: i64,
    pub at: DateTime<chrono::FixedOffset>,
    pub actor: crate::domain::task::Actor,
    pub event: &'static str,
    pub what: String,
    pub details: String,
    pub hash: Option<String>,
    /// When the store recorded the event, by the database's clock (none
    /// for events written before recorded times existed).
    pub recorded_at: Option<DateTime<chrono::FixedOffset>>,
    /// Who acted, as people read it: the person and the agency's name.
    #[serde(skip)]
    pub actor_text: String,
    /// The details as a page shows them: e-mail deliveries without their
    /// Message-IDs, server replies and file paths (those stay in the
    /// export and `audit history`).
    #[serde(skip)]
    pub page_details: String,
}

impl Entry {
    /// Whether the entry is about e-mail delivery (queued, batched,
    /// attempted, sent, failed, requeued reminders), which the task page
    /// shows only when asked to.
    pub fn is_delivery(&self) -> bool {
        self.event.starts_with("Reminder")
    }
}

/// What a page shows of an event's details: deliveries say to which
/// addresses and how it went, never a Message-ID, a server's reply or a
/// path; every other event its details as they are.
fn page_details(e: &TaskEvent, details: &str) -> String {
    match e {
        TaskEvent::ReminderSent { .. } | TaskEvent::ReminderRequeued { .. } => String::new(),
        TaskEvent::ReminderFailed { .. } => "máy chủ thư chưa nhận; sẽ thử lại".into(),
        TaskEvent::ReminderBatched { addresses, .. } => format!("đến {}", addresses.join(", ")),
        TaskEvent::ReminderAttempted { results, .. } => results
            .iter()
            .map(|r| format!("{} {}", r.address, address_outcome_vi(r.outcome)))
            .collect::<Vec<_>>()
            .join("; "),
        _ => details.to_string(),
    }
}

/// A task's history up to `as_of` (all of it without), and its state then.
pub struct History {
    pub key: TaskKey,
    pub title: String,
    pub as_of: Option<DateTime<Utc>>,
    pub entries: Vec<Entry>,
    pub state: Option<Task>,
    pub tz: Tz,
    /// The agencies the task names (its latest definition).
    agencies: Vec<AgencyCode>,
}

impl History {
    pub fn new(key: TaskKey, events: &[Stored], as_of: Option<DateTime<Utc>>, tz: Tz) -> Self {
        let mut task = Task::default();
        let mut entries = Vec::new();
        for s in events {
            cqrs_es::Aggregate::apply(&mut task, s.event.clone());
            if as_of.is_some_and(|t| s.event.stamp().at > t) {
                continue;
            }
            let (what, details) = describe(&s.event, &task, tz);
            let page_details = page_details(&s.event, &details);
            entries.push(Entry {
                actor_text: s.event.stamp().by.to_string(),
                page_details,
                sequence: s.sequence,
                at: s.event.stamp().at.with_timezone(&tz).fixed_offset(),
                actor: s.event.stamp().by.clone(),
                event: s.event.name(),
                what,
                details,
                hash: s.hash.clone(),
                recorded_at: s.metadata["recorded_at"]
                    .as_str()
                    .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                    .map(|t| t.with_timezone(&tz).fixed_offset()),
            });
        }
        let title = events
            .iter()
            .find_map(|s| match &s.event {
                TaskEvent::TaskRegistered { definition, .. } => Some(definition.title.clone()),
                _ => None,
            })
            .unwrap_or_default();
        let agencies = task
            .definition
            .map(|d| {
                let mut all = vec![d.lead];
                all.extend(d.advisory);
                all.extend(d.implementers);
                all.extend(d.coordinators);
                all.sort();
                all.dedup();
                all
            })
            .unwrap_or_default();
        Self {
            key,
            title,
            as_of,
            entries,
            state: as_of.map(|t| replay_until(events, t)),
            tz,
            agencies,
        }
    }

    /// A task's history read from the store: its events up to `as_of`,
    /// with the directory changes that concern it.
    pub async fn read(store: &Store, key: TaskKey, as_of: Option<DateTime<Utc>>, tz: Tz) -> Result<Self, StoreError> {
        let events = store.task_events(&key.to_string()).await?;
        let plan_events = store.plan_events(key.plan.as_str()).await?;
        Ok(Self::new(key, &events, as_of, tz).with_directory_changes(&plan_events))
    }

    /// Adds the changes of the agency directory that concern this task: a
    /// change to the e-mail addresses or members of an agency the task
    /// names (lead, advisory or implementer), with who made it and from
    /// which file, in time order among the task's own events.
    pub fn with_directory_changes(mut self, plan_events: &[StoredPlan]) -> Self {
        let involved = self.agencies.clone();
        for s in plan_events {
            let PlanEvent::PlanAmended {
                agencies: Some(change),
                source,
                stamp,
                ..
            } = &s.event
            else {
                continue;
            };
            if self.as_of.is_some_and(|t| stamp.at > t) {
                continue;
            }
            let lines: Vec<String> = involved
                .iter()
                .filter_map(|code| {
                    let before = change.from.iter().find(|a| &a.code == code);
                    let after = change.to.iter().find(|a| &a.code == code);
                    directory_change(code, before, after)
                })
                .collect();
            if lines.is_empty() {
                continue;
            }
            let file = source
                .as_ref()
                .map(|s| format!("; tệp {} (SHA-256 {})", s.file, &s.sha256[..s.sha256.len().min(12)]))
                .unwrap_or_default();
            // A page names the file, never where it was on the server.
            let file_name = source
                .as_ref()
                .map(|s| {
                    format!(
                        "; tệp {} (SHA-256 {})",
                        s.file_name(),
                        &s.sha256[..s.sha256.len().min(12)]
                    )
                })
                .unwrap_or_default();
            self.entries.push(Entry {
                actor_text: stamp.by.to_string(),
                sequence: s.sequence,
                at: stamp.at.with_timezone(&self.tz).fixed_offset(),
                actor: stamp.by.clone(),
                event: "PlanAmended",
                what: format!("Thay đổi danh bạ cơ quan trong kế hoạch {}", self.key.plan),
                details: format!("{}{file}", lines.join("; ")),
                page_details: format!("{}{file_name}", lines.join("; ")),
                hash: s.hash.clone(),
                recorded_at: s.metadata["recorded_at"]
                    .as_str()
                    .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                    .map(|t| t.with_timezone(&self.tz).fixed_offset()),
            });
        }
        self.entries.sort_by_key(|e| e.at);
        self.with_names(plan_events)
    }

    /// The history as people read it: every agency code in what happened
    /// and its details replaced by the agency's name in the plan's
    /// directory (the latest one, with the names of removed agencies kept).
    fn with_names(mut self, plan_events: &[StoredPlan]) -> Self {
        let mut plan = crate::domain::plan::Plan::default();
        let mut names: BTreeMap<String, String> = BTreeMap::new();
        for s in plan_events {
            cqrs_es::Aggregate::apply(&mut plan, s.event.clone());
            for a in &plan.agencies {
                names.insert(a.code.to_string(), a.name.clone());
            }
        }
        if names.is_empty() {
            return self;
        }
        // Only what the engine wrote is renamed: a note, a reason or a
        // message is shown exactly as its author wrote it.
        const GENERATED: [&str; 10] = [
            "TaskRegistered",
            "TaskAmended",
            "MilestoneOpened",
            "MilestoneAmended",
            "ReminderQueued",
            "ReminderSent",
            "ReminderBatched",
            "ReminderRequeued",
            "ReminderAttempted",
            "PlanAmended",
        ];
        let name_of = |code: &str| names.get(code).map(String::as_str);
        let owner_named = |text: &str| match text.split_once(": ") {
            Some((owner, rest)) => format!("{}: {rest}", named(owner, name_of)),
            None => text.to_string(),
        };
        for e in &mut self.entries {
            e.actor_text = named(&e.actor.to_string(), name_of);
            e.what = named(&e.what, name_of);
            if GENERATED.contains(&e.event) {
                e.details = named(&e.details, name_of);
                e.page_details = named(&e.page_details, name_of);
            } else if e.event == "ObligationRecorded" {
                // "UBND: đã hoàn thành; …": the owner is the engine's words.
                e.details = owner_named(&e.details);
                e.page_details = owner_named(&e.page_details);
            }
        }
        self
    }

    /// The documented JSON shape (`audit history --format json`, `GET /api/tasks/{task}/history`).
    pub fn to_json(&self, dl: Deadlines<'_>) -> Value {
        json!({
            "task": self.key.task,
            "plan": self.key.plan,
            "as_of": self.as_of.map(|t| t.to_rfc3339()),
            "timeline": self.entries.iter().map(|e| json!({
                "sequence": e.sequence, "at": e.at.to_rfc3339(), "actor": e.actor.to_json(), "event": e.event,
                "what": e.what, "details": e.details, "hash": e.hash,
                "recorded_at": e.recorded_at.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, false)),
            })).collect::<Vec<_>>(),
            "state": self.state.as_ref().zip(self.as_of).map(|(task, t)| state_json(task, local_date(t, self.tz), dl)),
        })
    }
}

/// `text` with every agency code that stands as a word (not inside an
/// address, a key or a longer word) replaced by the agency's name, as
/// `name_of` gives it (codes it does not know stay).
pub fn named<'a>(text: &str, name_of: impl Fn(&str) -> Option<&'a str>) -> String {
    static CODE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let re = CODE.get_or_init(|| regex::Regex::new(r"[A-Z][A-Z0-9_]{1,15}").expect("code pattern"));
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for m in re.find_iter(text) {
        let before = text[..m.start()].chars().next_back();
        let after = text[m.end()..].chars().next();
        let joined_before =
            before.is_some_and(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '@' | '.' | ':' | '/'));
        let joined_after = after.is_some_and(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '@' | '/'));
        if joined_before || joined_after {
            continue;
        }
        let Some(name) = name_of(m.as_str()) else {
            continue;
        };
        out.push_str(&text[last..m.start()]);
        out.push_str(name);
        last = m.end();
    }
    out.push_str(&text[last..]);
    out
}

/// What changed in one agency's directory entry, in Vietnamese, or None.
fn directory_change(code: &AgencyCode, before: Option<&Agency>, after: Option<&Agency>) -> Option<String> {
    let emails = |a: Option<&Agency>| -> Vec<String> {
        a.map(|a| {
            a.emails
                .iter()
                .chain(a.members.iter().flat_map(|m| &m.emails))
                .cloned()
                .collect()
        })
        .unwrap_or_default()
    };
    let members = |a: Option<&Agency>| -> Vec<String> {
        a.map(|a| a.members.iter().map(|m| m.name.clone()).collect())
            .unwrap_or_default()
    };
    let (old, new) = (emails(before), emails(after));
    let (old_members, new_members) = (members(before), members(after));
    if old == new && old_members == new_members {
        return None;
    }
    let mut parts = Vec::new();
    if old != new {
        parts.push(format!("e-mail {} → {}", list(&old), list(&new)));
    }
    if old_members != new_members {
        parts.push(format!("thành viên {} → {}", list(&old_members), list(&new_members)));
    }
    Some(format!("{code}: {}", parts.join(", ")))
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "(không có)".into()
    } else {
        items.join(", ")
    }
}

fn address_outcome_vi(o: AddressOutcome) -> &'static str {
    match o {
        AddressOutcome::Accepted => "đã nhận",
        AddressOutcome::Rejected => "từ chối vĩnh viễn",
        AddressOutcome::Deferred => "tạm hoãn",
    }
}

/// Reminders delivered for a milestone.
pub fn reminders_sent(m: &crate::domain::task::Milestone) -> usize {
    m.reminders
        .iter()
        .flat_map(|r| r.deliveries.values())
        .filter(|d| d.status() == DeliveryStatus::Sent)
        .count()
}

/// Milestones by where they stand: the inspectors' counts.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub on_time: u32,
    pub overdue: u32,
    pub not_yet_due: u32,
    pub approved_late: u32,
}

impl Counts {
    /// Đúng hạn, quá hạn, chưa đến hạn, trễ hạn, as table cells.
    pub fn cells(&self) -> [String; 4] {
        [self.on_time, self.overdue, self.not_yet_due, self.approved_late].map(|n| n.to_string())
    }

    fn add(&mut self, t: Timeliness) {
        match t {
            Timeliness::OnTime => self.on_time += 1,
            Timeliness::Overdue => self.overdue += 1,
            Timeliness::NotYetDue => self.not_yet_due += 1,
            Timeliness::ApprovedLate => self.approved_late += 1,
            Timeliness::Closed => {}
        }
    }
}

/// One task in a plan's standing.
#[derive(Debug, Clone, Serialize)]
pub struct TaskStanding {
    pub id: String,
    pub title: String,
    pub withdrawn: bool,
    pub pending: usize,
    pub approved: usize,
    pub counts: Counts,
}

/// Where a plan's tasks stand on a day, with counts per implementing agency.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Standing {
    pub tasks: Vec<TaskStanding>,
    pub agencies: BTreeMap<String, Counts>,
}

impl Standing {
    /// Adds a task as it stands on `today`.
    pub fn add(&mut self, id: &str, task: &Task, today: NaiveDate, dl: Deadlines<'_>) {
        let Some(def) = &task.definition else { return };
        let mut counts = Counts::default();
        if !task.withdrawn {
            // Counted per obligation: an agency's counts are its own part
            // (a joint obligation counts for each implementer).
            for o in task.milestones.iter().flat_map(|m| &m.obligations) {
                let t = obligation_timeliness(o, today, dl);
                counts.add(t);
                for a in def.implementers.iter().filter(|a| o.owed_by(a, &def.implementers)) {
                    self.agencies.entry(a.to_string()).or_default().add(t);
                }
            }
        }
        self.tasks.push(TaskStanding {
            id: id.to_string(),
            title: def.title.clone(),
            withdrawn: task.withdrawn,
            pending: task.milestones.iter().filter(|m| m.status.is_pending()).count(),
            approved: task
                .milestones
                .iter()
                .filter(|m| m.status == MilestoneStatus::Approved)
                .count(),
            counts,
        });
    }
}

/// What changed on a task's milestones between two replays.
pub fn changes(id: &str, old: &Task, task: &Task) -> Vec<Value> {
    let mut out = Vec::new();
    for m in &task.milestones {
        for o in &m.obligations {
            let was = old.milestone(&m.spec.id).and_then(|w| w.obligation(&o.reference()));
            let status_changed = was.is_none_or(|w| w.status != o.status);
            let due_changed = was.is_some_and(|w| w.due != o.due);
            if status_changed || due_changed {
                out.push(json!({
                    "task": id, "milestone": m.spec.id, "agency": o.agency,
                    "status_before": was.map(|w| w.status.as_str()), "status": o.status.as_str(),
                    "due_before": was.map(|w| w.due.to_string()), "due": o.due.to_string(),
                }));
            }
        }
    }
    if old.withdrawn != task.withdrawn {
        out.push(json!({ "task": id, "withdrawn": task.withdrawn }));
    }
    out
}

/// The tasks of one plan (every plan with `None`) replayed as of `at`, and
/// what changed since `since`.
pub struct PlanAsOf {
    pub at: DateTime<Utc>,
    pub since: Option<DateTime<Utc>>,
    pub today: NaiveDate,
    pub standing: Standing,
    pub changes: Vec<Value>,
}

impl PlanAsOf {
    pub async fn replay(
        store: &Store,
        plan: Option<&str>,
        at: DateTime<Utc>,
        since: Option<DateTime<Utc>>,
        tz: Tz,
    ) -> Result<Self, StoreError> {
        let today = local_date(at, tz);
        let mut standing = Standing::default();
        let mut all_changes = Vec::new();
        let plans = store.plan_views().await?;
        let prefix = plan.map(|p| format!("{p}/"));
        for view in store.task_views().await? {
            if prefix.as_ref().is_some_and(|p| !view.id.starts_with(p)) {
                continue;
            }
            let events = store.task_events(&view.id).await?;
            let task = replay_until(&events, at);
            if task.definition.is_none() {
                continue;
            }
            let id = view.id.split_once('/').map_or(view.id.clone(), |(_, t)| t.to_string());
            if let Some(b) = since {
                all_changes.extend(changes(&id, &replay_until(&events, b), &task));
            }
            standing.add(
                &id,
                &task,
                today,
                crate::projections::views::deadlines_for(&plans, &view.id),
            );
        }
        Ok(Self {
            at,
            since,
            today,
            standing,
            changes: all_changes,
        })
    }

    pub fn to_json(&self) -> Value {
        json!({
            "as_of": self.at.to_rfc3339(),
            "since": self.since.map(|b| b.to_rfc3339()),
            "tasks": self.standing.tasks,
            "agencies": self.standing.agencies,
            "changes": self.changes,
        })
    }
}

/// A report's or submission's evidence files, by name ("tệp: a.pdf, b.jpg");
/// empty without files.
fn files(attachments: &[crate::domain::task::Attachment]) -> String {
    if attachments.is_empty() {
        return String::new();
    }
    let names: Vec<&str> = attachments.iter().map(|a| a.name.as_str()).collect();
    format!("tệp: {}", names.join(", "))
}
