//! The read side: view types and the queries the CLI (and later the web
//! server and scheduler) use.

use crate::domain::dates::local_date;
use crate::domain::deadline::Deadlines;
use crate::domain::ids::{AgencyCode, TaskKey};
use crate::domain::plan::Plan;
use crate::domain::task::{Delivery, DeliveryStatus, Milestone, MilestoneStatus, Obligation, Task};
use crate::store::{Store, StoreError};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanView {
    pub id: String,
    pub version: i64,
    pub plan: Plan,
}

impl PlanView {
    pub fn empty(id: &str) -> Self {
        Self {
            id: id.to_string(),
            version: 0,
            plan: Plan::default(),
        }
    }

    /// The outbox rows of the plan's directory notices: one per notice, to
    /// the agency's old addresses (milestone `directory`, kind `directory`).
    pub fn outbox_rows(&self) -> Vec<OutboxRow> {
        let tz = self.tz();
        self.plan
            .notices
            .iter()
            .map(|n| {
                let (status, attempts, next, message_id, error) = delivery_columns(n.delivery.as_ref());
                OutboxRow {
                    aggregate_id: self.id.clone(),
                    milestone_id: DIRECTORY_NOTICE.to_string(),
                    reminder_key: n.key.clone(),
                    agency: n.agency.to_string(),
                    role: DIRECTORY_NOTICE.to_string(),
                    kind: DIRECTORY_NOTICE.to_string(),
                    window_day: None,
                    queued_at: instant_text(n.changed_at),
                    due: local_date(n.changed_at, tz).to_string(),
                    status: status.to_string(),
                    attempts,
                    next_attempt_at: next,
                    message_id,
                    last_error: error,
                }
            })
            .collect()
    }

    /// How the plan's deadlines are judged and shown.
    pub fn deadlines(&self) -> Deadlines<'_> {
        Deadlines::of_plan(Some(&self.plan))
    }

    /// The plan's time zone (Vietnam's until the plan says otherwise).
    pub fn tz(&self) -> chrono_tz::Tz {
        self.plan
            .header
            .as_ref()
            .map_or(chrono_tz::Asia::Ho_Chi_Minh, |h| h.tz())
    }
}

/// The loaded plan of the task `task_id` (`plan/task`), if any.
pub fn plan_of<'a>(plans: &'a [PlanView], task_id: &str) -> Option<&'a PlanView> {
    let plan = task_id.split_once('/').map_or("", |(p, _)| p);
    plans.iter().find(|v| v.id == plan)
}

/// How the deadlines of the task `task_id` (`plan/task`) are judged: its
/// plan's rule and calendar, or the default where the plan is not loaded.
pub fn deadlines_for<'a>(plans: &'a [PlanView], task_id: &str) -> Deadlines<'a> {
    Deadlines::of_plan(plan_of(plans, task_id).map(|v| &v.plan))
}

/// Today in the zone of the plans loaded (the first one's), and that zone.
pub fn today_in(plans: &[PlanView], now: DateTime<Utc>) -> (NaiveDate, chrono_tz::Tz) {
    let tz = plans.first().map_or(chrono_tz::Asia::Ho_Chi_Minh, PlanView::tz);
    (local_date(now, tz), tz)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskView {
    pub id: String,
    pub version: i64,
    pub updated_at: Option<DateTime<Utc>>,
    pub task: Task,
}

/// The milestone, role and kind of a directory notice's outbox row.
pub const DIRECTORY_NOTICE: &str = "directory";

/// status, attempts, next attempt, Message-ID and last error of a delivery.
type DeliveryColumns = (&'static str, i64, Option<String>, Option<String>, Option<String>);

fn delivery_columns(delivery: Option<&Delivery>) -> DeliveryColumns {
    let Some(d) = delivery else {
        return ("queued", 0, None, None, None);
    };
    let status = d.status();
    let message_id = d.message_id().map(str::to_string);
    match d {
        Delivery::Sent { .. } => (status.as_str(), 0, None, message_id, None),
        Delivery::Failed {
            attempts,
            error,
            next_attempt,
        } => (
            status.as_str(),
            i64::from(*attempts),
            next_attempt.map(instant_text),
            message_id,
            Some(error.clone()),
        ),
        Delivery::Digest {
            attempts,
            next_attempt,
            last_error,
            ..
        } => (
            status.as_str(),
            i64::from(*attempts),
            next_attempt
                .filter(|_| status == DeliveryStatus::Queued)
                .map(instant_text),
            message_id,
            last_error.clone(),
        ),
    }
}

/// One queued message to one agency, as the dispatcher reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct OutboxRow {
    pub aggregate_id: String,
    pub milestone_id: String,
    pub reminder_key: String,
    pub agency: String,
    pub role: String,
    pub kind: String,
    pub window_day: Option<String>,
    pub queued_at: String,
    pub due: String,
    /// queued, sent or failed (gave up).
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: Option<String>,
    pub message_id: Option<String>,
    pub last_error: Option<String>,
}

/// Instants in the outbox are stored as RFC 3339 UTC with a fixed shape, so
/// they compare correctly as text on both databases.
pub fn instant_text(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// How a milestone stands against its deadline on a given day, in the three
/// counts inspectors use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Timeliness {
    /// Chưa đến hạn: not done, deadline not passed.
    NotYetDue,
    /// Quá hạn: not done, deadline passed.
    Overdue,
    /// Đúng hạn: approved by the deadline.
    OnTime,
    /// Approved after the deadline.
    ApprovedLate,
    /// Waived or cancelled.
    Closed,
}

impl Timeliness {
    /// The order of legends in reports and charts: done first, then late,
    /// overdue, still due, closed.
    pub const LEGEND: [Timeliness; 5] = [
        Timeliness::OnTime,
        Timeliness::ApprovedLate,
        Timeliness::Overdue,
        Timeliness::NotYetDue,
        Timeliness::Closed,
    ];

    /// The CSS class pages, charts and reports colour it by.
    pub fn css_class(self) -> &'static str {
        match self {
            Timeliness::OnTime => "on-time",
            Timeliness::ApprovedLate => "late",
            Timeliness::Overdue => "overdue",
            Timeliness::NotYetDue => "pending",
            Timeliness::Closed => "closed",
        }
    }

    /// In Vietnamese, as the CLI shows it.
    pub fn label_vi(self) -> &'static str {
        match self {
            Timeliness::NotYetDue => "chưa đến hạn",
            Timeliness::Overdue => "quá hạn",
            Timeliness::OnTime => "đúng hạn",
            Timeliness::ApprovedLate => "trễ hạn",
            Timeliness::Closed => "miễn, hủy",
        }
    }
}

/// How one obligation stands against its legal deadline on `today`: an
/// approval counts for its day in the plan's zone, and a deadline on a
/// non-working day ends on the next working day where the plan follows the
/// Civil Code (see `domain::deadline`).
pub fn obligation_timeliness(o: &Obligation, today: NaiveDate, dl: Deadlines<'_>) -> Timeliness {
    let due = dl.legal(o.due);
    match o.status {
        MilestoneStatus::Approved => match o.completed_on(dl.tz) {
            Some(day) if day > due => Timeliness::ApprovedLate,
            _ => Timeliness::OnTime,
        },
        MilestoneStatus::Waived | MilestoneStatus::Cancelled => Timeliness::Closed,
        _ if today > due => Timeliness::Overdue,
        _ => Timeliness::NotYetDue,
    }
}

/// Where a milestone stands for one agency: its own obligation where it owes
/// one (alone, or jointly), else the milestone as a whole (for the lead and
/// advisory agencies, who follow every obligation): due date (as written),
/// status and timeliness.
pub fn standing_for(
    m: &Milestone,
    agency: &AgencyCode,
    implementers: &[AgencyCode],
    today: NaiveDate,
    dl: Deadlines<'_>,
) -> (NaiveDate, MilestoneStatus, Timeliness) {
    match m.obligations.iter().find(|o| o.owed_by(agency, implementers)) {
        Some(o) => (o.due, o.status, obligation_timeliness(o, today, dl)),
        None => (m.due(), m.status, timeliness(m, today, dl)),
    }
}

/// How a milestone stands: its most pressing obligation (overdue before
/// still due, a late approval before an on-time one).
pub fn timeliness(m: &Milestone, today: NaiveDate, dl: Deadlines<'_>) -> Timeliness {
    let rank = |t: Timeliness| match t {
        Timeliness::Overdue => 0,
        Timeliness::NotYetDue => 1,
        Timeliness::ApprovedLate => 2,
        Timeliness::OnTime => 3,
        Timeliness::Closed => 4,
    };
    m.obligations
        .iter()
        .map(|o| obligation_timeliness(o, today, dl))
        .min_by_key(|t| rank(*t))
        .unwrap_or(Timeliness::Closed)
}

impl TaskView {
    pub fn empty(id: &str) -> Self {
        Self {
            id: id.to_string(),
            version: 0,
            updated_at: None,
            task: Task::default(),
        }
    }

    /// Milestones still expected (open, submitted or returned) on a live task.
    pub fn open_milestones(&self) -> impl Iterator<Item = &Milestone> {
        let live = !self.task.withdrawn;
        self.task
            .milestones
            .iter()
            .filter(move |m| live && m.status.is_pending())
    }

    /// The outbox rows this task's queued messages make: one per recipient agency.
    pub fn outbox_rows(&self) -> Vec<OutboxRow> {
        let mut rows = Vec::new();
        for m in &self.task.milestones {
            for r in &m.reminders {
                for rcpt in &r.recipients {
                    let (status, attempts, next, message_id, error) = delivery_columns(r.deliveries.get(&rcpt.agency));
                    rows.push(OutboxRow {
                        aggregate_id: self.id.clone(),
                        milestone_id: m.spec.id.to_string(),
                        reminder_key: r.key.clone(),
                        agency: rcpt.agency.to_string(),
                        role: serde_json::to_value(rcpt.role)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_string))
                            .unwrap_or_default(),
                        kind: r.kind.as_str().to_string(),
                        window_day: r.window.map(|d| d.to_string()),
                        queued_at: instant_text(r.queued_at),
                        due: m.due().to_string(),
                        status: status.to_string(),
                        attempts,
                        next_attempt_at: next,
                        message_id,
                        last_error: error,
                    });
                }
            }
        }
        rows
    }

    pub fn involves(&self, agency: &AgencyCode) -> bool {
        self.task.definition.as_ref().is_some_and(|d| {
            &d.lead == agency
                || d.advisory.contains(agency)
                || d.implementers.contains(agency)
                || d.coordinators.contains(agency)
        })
    }

    pub fn key(&self) -> Option<TaskKey> {
        TaskKey::parse(&self.id).ok()
    }
}

/// Sorts task ids in the plan's numbering: II.2.1.2 before II.2.1.10, part
/// III before part IV.
pub fn numbering_key(id: &str) -> Vec<u32> {
    id.split(['/', '.'])
        .map(|part| {
            if let Ok(n) = part.parse::<u32>() {
                return n;
            }
            let roman: Option<u32> = part
                .chars()
                .map(|c| match c {
                    'I' => Some(1),
                    'V' => Some(5),
                    'X' => Some(10),
                    'L' => Some(50),
                    _ => None,
                })
                .collect::<Option<Vec<u32>>>()
                .map(|digits| {
                    digits.iter().enumerate().fold(0i64, |acc, (i, d)| {
                        if digits.get(i + 1).is_some_and(|next| next > d) {
                            acc - i64::from(*d)
                        } else {
                            acc + i64::from(*d)
                        }
                    }) as u32
                });
            roman.unwrap_or(0)
        })
        .collect()
}

const OUTBOX_COLUMNS: &str =
    "aggregate_id, milestone_id, reminder_key, agency, role, kind, window_day, queued_at, due, \
     status, attempts, next_attempt_at, message_id, last_error";

/// Parses a stored view, naming it if it is corrupt.
pub(crate) fn decode<T: for<'de> Deserialize<'de>>(id: &str, payload: &str) -> Result<T, StoreError> {
    serde_json::from_str(payload).map_err(|e| StoreError::Corrupt {
        context: format!("khung nhìn {id}"),
        reason: e.to_string(),
    })
}

const SELECT_ALL_TASK_VIEWS: &str = "SELECT aggregate_id, payload FROM task_view";

/// Task view rows decoded, in the plans' own numbering.
fn in_numbering(rows: &[(String, String)]) -> Result<Vec<TaskView>, StoreError> {
    let mut views = rows
        .iter()
        .map(|(id, p)| decode::<TaskView>(id, p))
        .collect::<Result<Vec<_>, _>>()?;
    views.sort_by_cached_key(|v| {
        let (plan, task) = v.id.split_once('/').unwrap_or(("", &v.id));
        (plan.to_string(), numbering_key(task))
    });
    Ok(views)
}

impl crate::store::snapshot::Snapshot {
    /// Every task view in the snapshot, in the plans' own numbering.
    pub async fn task_views(&mut self) -> Result<Vec<TaskView>, StoreError> {
        let rows: Vec<(String, String)> = crate::with_snapshot!(self, conn => sqlx::query_as(SELECT_ALL_TASK_VIEWS)
            .fetch_all(conn)
            .await
            .map_err(StoreError::query("đọc danh sách nhiệm vụ"))?);
        in_numbering(&rows)
    }
}

impl Store {
    /// Every task view, in the plans' own numbering.
    pub async fn task_views(&self) -> Result<Vec<TaskView>, StoreError> {
        let rows: Vec<(String, String)> = crate::with_pool!(self, pool => sqlx::query_as(SELECT_ALL_TASK_VIEWS)
            .fetch_all(pool)
            .await
            .map_err(StoreError::query("đọc danh sách nhiệm vụ"))?);
        in_numbering(&rows)
    }

    pub async fn task_view(&self, key: &TaskKey) -> Result<Option<TaskView>, StoreError> {
        let row: Option<String> = crate::with_pool!(self, pool => sqlx::query_scalar("SELECT payload FROM task_view WHERE aggregate_id = $1")
            .bind(key.to_string())
            .fetch_optional(pool)
            .await
            .map_err(StoreError::query("đọc nhiệm vụ"))?);
        row.map(|p| decode(&key.to_string(), &p)).transpose()
    }

    /// Each plan's id and version, without its payload: what a cache of
    /// plan views compares with (`PlanViewCache`).
    pub async fn plan_versions(&self) -> Result<Vec<(String, i64)>, StoreError> {
        crate::with_pool!(self, pool => sqlx::query_as("SELECT plan_id, version FROM plan_view ORDER BY plan_id")
            .fetch_all(pool)
            .await
            .map_err(StoreError::query("đọc kế hoạch")))
    }

    pub async fn plan_views(&self) -> Result<Vec<PlanView>, StoreError> {
        let rows: Vec<(String, String)> = crate::with_pool!(self, pool => sqlx::query_as("SELECT plan_id, payload FROM plan_view ORDER BY plan_id")
            .fetch_all(pool)
            .await
            .map_err(StoreError::query("đọc kế hoạch"))?);
        rows.iter().map(|(id, p)| decode(id, p)).collect()
    }

    pub async fn plan_view(&self, id: &str) -> Result<Option<PlanView>, StoreError> {
        let row: Option<String> = crate::with_pool!(self, pool => sqlx::query_scalar("SELECT payload FROM plan_view WHERE plan_id = $1")
            .bind(id)
            .fetch_optional(pool)
            .await
            .map_err(StoreError::query("đọc kế hoạch"))?);
        row.map(|p| decode(id, &p)).transpose()
    }

    /// Open milestones due on or before `until`, from the due-date index.
    pub async fn due_until(&self, until: NaiveDate) -> Result<Vec<(String, String, String, String)>, StoreError> {
        crate::with_pool!(self, pool => sqlx::query_as(
            "SELECT aggregate_id, milestone_id, due, status FROM due_index WHERE due <= $1 ORDER BY due, aggregate_id, milestone_id",
        )
        .bind(until.to_string())
        .fetch_all(pool)
        .await
        .map_err(StoreError::query("đọc chỉ mục hạn")))
    }

    /// Open milestones of every plan whose next reminder day is on or before
    /// `until`: (task, milestone, day), sorted. The condition is the index
    /// range alone: with a plan filter in SQL as well, PostgreSQL without
    /// fresh statistics chose to scan the whole table (60 ms at a million
    /// rows instead of 1).
    pub async fn reminders_due(&self, until: NaiveDate) -> Result<Vec<(String, String, String)>, StoreError> {
        let mut rows: Vec<(String, String, String)> = crate::with_pool!(self, pool => sqlx::query_as(
            "SELECT aggregate_id, milestone_id, next_reminder FROM due_index WHERE next_reminder <= $1",
        )
        .bind(until.to_string())
        .fetch_all(pool)
        .await
        .map_err(StoreError::query("đọc chỉ mục nhắc hạn"))?);
        rows.sort();
        Ok(rows)
    }

    /// Messages still to deliver whose next attempt is due at `now`, for
    /// every agency or one.
    pub async fn outbox_due(&self, now: DateTime<Utc>, agency: Option<&str>) -> Result<Vec<OutboxRow>, StoreError> {
        crate::with_pool!(self, pool => sqlx::query_as(&format!(
            "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE status = 'queued' AND (next_attempt_at IS NULL OR next_attempt_at <= $1)
                AND agency = COALESCE($2, agency)
             ORDER BY agency, aggregate_id, milestone_id, reminder_key",
        ))
        .bind(instant_text(now))
        .bind(agency)
        .fetch_all(pool)
        .await
        .map_err(StoreError::query("đọc hộp thư đi")))
    }

    /// The whole outbox, optionally of one status, newest first.
    pub async fn outbox(&self, status: Option<&str>) -> Result<Vec<OutboxRow>, StoreError> {
        crate::with_pool!(self, pool => sqlx::query_as(&format!(
            "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE ($1 = '' OR status = $1)
             ORDER BY queued_at DESC, agency, aggregate_id, milestone_id, reminder_key",
        ))
        .bind(status.unwrap_or(""))
        .fetch_all(pool)
        .await
        .map_err(StoreError::query("đọc hộp thư đi")))
    }

    /// Task views by id, for the ids given.
    pub async fn task_views_by_id(&self, ids: &[String]) -> Result<Vec<TaskView>, StoreError> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(200) {
            let placeholders = (1..=chunk.len())
                .map(|i| format!("${i}"))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!("SELECT aggregate_id, payload FROM task_view WHERE aggregate_id IN ({placeholders})");
            let rows: Vec<(String, String)> = crate::with_pool!(self, pool => {
                let mut q = sqlx::query_as(&sql);
                for id in chunk {
                    q = q.bind(id);
                }
                q.fetch_all(pool).await.map_err(StoreError::query("đọc nhiệm vụ"))?
            });
            for (id, p) in rows {
                out.push(decode::<TaskView>(&id, &p)?);
            }
        }
        Ok(out)
    }

    /// The raw rows of every view, for comparing two builds of them.
    pub async fn view_dump(&self) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::new();
        for sql in [
            "SELECT plan_id || ' ' || payload FROM plan_view ORDER BY plan_id",
            "SELECT aggregate_id || ' ' || payload FROM task_view ORDER BY aggregate_id",
            "SELECT aggregate_id || ' ' || milestone_id || ' ' || due || ' ' || status || ' ' || COALESCE(next_reminder, '-') FROM due_index ORDER BY aggregate_id, milestone_id",
            "SELECT aggregate_id || ' ' || milestone_id || ' ' || reminder_key || ' ' || agency || ' ' || status FROM outbox
             ORDER BY aggregate_id, milestone_id, reminder_key, agency",
            "SELECT aggregate_id || ' ' || viewer || ' ' || milestone_id || ' ' || obligation || ' ' || status || ' ' || due || ' ' || search
             FROM obligation_index ORDER BY aggregate_id, viewer, milestone_id, obligation",
        ] {
            let rows: Vec<String> = crate::with_pool!(self, pool => sqlx::query_scalar(sql).fetch_all(pool).await.map_err(StoreError::query("đọc khung nhìn"))?);
            out.extend(rows);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::numbering_key;

    #[test]
    fn task_ids_sort_in_the_plan_numbering() {
        let mut ids = vec!["IV.1", "II.2.1.10", "III.1.1", "II.2.1.2", "II.1.1"];
        ids.sort_by_key(|i| numbering_key(i));
        assert_eq!(ids, ["II.1.1", "II.2.1.2", "II.2.1.10", "III.1.1", "IV.1"]);
    }
}

/// Why a task named in a request could not be found.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error("không có kế hoạch {plan:?} (đã nạp: {loaded})")]
    UnknownPlan { plan: String, loaded: String },
    #[error("chưa nạp kế hoạch nào; chạy `kehoach plan load workflows/*.toml`")]
    NoPlans,
    #[error("có nhiều kế hoạch ({0}); dùng --plan hoặc dạng kế-hoạch/mã")]
    Ambiguous(String),
    #[error(transparent)]
    BadId(#[from] crate::domain::ids::IdError),
}

/// Finds the plan a task id belongs to: `plan/task`, the given plan, or the only plan loaded.
pub fn resolve_task(plans: &[PlanView], task: &str, plan: Option<&str>) -> Result<(TaskKey, PlanView), LookupError> {
    let (plan_id, task_id) = match (task.split_once('/'), plan) {
        (Some((p, t)), _) => (Some(p.to_string()), t.to_string()),
        (None, p) => (p.map(str::to_string), task.to_string()),
    };
    let loaded = || plans.iter().map(|p| p.id.as_str()).collect::<Vec<_>>().join(", ");
    let view = match plan_id {
        Some(p) => plans
            .iter()
            .find(|v| v.id == p)
            .ok_or_else(|| LookupError::UnknownPlan {
                plan: p.clone(),
                loaded: loaded(),
            })?,
        None => match plans {
            [only] => only,
            [] => return Err(LookupError::NoPlans),
            _ => return Err(LookupError::Ambiguous(loaded())),
        },
    };
    let key = TaskKey::parse(&format!("{}/{}", view.id, task_id))?;
    Ok((key, view.clone()))
}

/// Which tasks a listing keeps (`task list`, `GET /api/tasks`).
#[derive(Debug, Clone, Default)]
pub struct TaskFilter {
    pub plan: Option<String>,
    pub agency: Option<AgencyCode>,
    pub status: Option<MilestoneStatus>,
    pub due_before: Option<NaiveDate>,
    pub overdue: bool,
}

impl TaskFilter {
    pub fn matches(&self, v: &TaskView, today: NaiveDate, dl: Deadlines<'_>) -> bool {
        self.plan.as_deref().is_none_or(|p| v.id.starts_with(&format!("{p}/")))
            && self.agency.as_ref().is_none_or(|a| v.involves(a))
            && self
                .status
                .is_none_or(|s| v.task.milestones.iter().any(|m| m.status == s))
            && self
                .due_before
                .is_none_or(|d| v.open_milestones().any(|m| dl.legal(m.due()) <= d))
            && (!self.overdue
                || v.open_milestones()
                    .any(|m| timeliness(m, today, dl) == Timeliness::Overdue))
    }
}

/// The plan views decoded once per version and shared. A web page needs
/// the plans (time zone, titles, agencies' names), and a plan of 2,000
/// agencies is megabytes of JSON: decoding it on every request made each
/// page cost, in time and memory, what the store holds. A request now
/// reads the (id, version) pairs and takes the shared copy while they are
/// unchanged; a plan loaded or changed by any process changes its version,
/// and the next request decodes the plans again.
#[derive(Debug, Clone, Default)]
pub struct PlanViewCache {
    held: std::sync::Arc<std::sync::Mutex<Option<HeldPlans>>>,
}

/// The plans decoded, and the (id, version) pairs they were decoded at.
#[derive(Debug)]
struct HeldPlans {
    versions: Vec<(String, i64)>,
    plans: std::sync::Arc<[PlanView]>,
}

impl PlanViewCache {
    pub async fn get(&self, store: &Store) -> Result<std::sync::Arc<[PlanView]>, StoreError> {
        let versions = store.plan_versions().await?;
        if let Some(held) = self.held.lock().expect("plan cache").as_ref() {
            if held.versions == versions {
                return Ok(held.plans.clone());
            }
        }
        let plans: std::sync::Arc<[PlanView]> = store.plan_views().await?.into();
        // What was read is what is kept: its own versions, not the ones
        // compared (a plan may have changed between the two reads).
        let versions = plans.iter().map(|p| (p.id.clone(), p.version)).collect();
        *self.held.lock().expect("plan cache") = Some(HeldPlans {
            versions,
            plans: plans.clone(),
        });
        Ok(plans)
    }
}
