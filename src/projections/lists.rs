//! The index the lists read: the inbox, the approval queue, a plan's tasks
//! and `GET /api/tasks` search, filter, sort and page `obligation_index`
//! instead of decoding every task view, so a page costs what it shows, not
//! what the store holds.
//!
//! One row per task, milestone, obligation and *viewer*: each agency the
//! task involves (lead, advisory, implementer) and `*` for those who see
//! everything. A list reads the rows of one viewer, so its cost follows
//! what that viewer may see.

use super::views::{numbering_key, TaskView, Timeliness};
use crate::domain::ids::AgencyCode;
use crate::domain::plan::Plan;
use crate::domain::task::MilestoneStatus;
use crate::store::{Store, StoreError};
use chrono::NaiveDate;
use serde::Serialize;
use unicode_normalization::UnicodeNormalization;

/// The viewer of the rows that those who see everything read.
pub const EVERYONE: &str = "*";

/// The viewer's roles on the task, as bits of `roles`.
pub const LEAD: i64 = 1;
pub const ADVISORY: i64 = 2;
pub const IMPLEMENTER: i64 = 4;
/// Cơ quan phối hợp: sees the task, owes nothing.
pub const COORDINATOR: i64 = 8;

/// One row of `obligation_index`. Flags are 0 or 1; texts absent are ''.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct ListRow {
    pub aggregate_id: String,
    /// The agency whose lists hold the row, or `*`.
    pub viewer: String,
    /// '' for the one row of a task without milestones.
    pub milestone_id: String,
    /// The owing agency, '' for a joint obligation.
    pub obligation: String,
    pub plan_id: String,
    pub task_id: String,
    /// The task id in the plan's numbering, sortable as text.
    pub task_order: String,
    pub milestone_order: i64,
    pub title: String,
    pub milestone_title: String,
    pub status: String,
    /// The deadline in force as written, ISO.
    pub due: String,
    /// The day it was approved, in the plan's time zone, ISO.
    pub approved_on: String,
    /// RFC 3339 UTC.
    pub submitted_at: String,
    pub submitted_by: String,
    pub withdrawn: i64,
    /// The viewer's roles on the task (`LEAD | ADVISORY | IMPLEMENTER`).
    pub roles: i64,
    /// The viewer owes this obligation (alone or jointly).
    pub owes: i64,
    /// It is the viewer's to do or to follow: owed by it, or the viewer
    /// implements nothing on the task (lead, advisory, `*`).
    pub concerns: i64,
    /// The viewer is a lead or advisory agency of the task.
    pub supervises: i64,
    /// Task id, task title and milestone title, folded (see `fold`).
    pub search: String,
    /// The day the deadline ends by law (the next working day after a
    /// deadline on a day off, where the plan follows the Civil Code), ISO;
    /// what overdue, the windows and the counts are judged against.
    pub due_legal: String,
}

/// Lower case without accents, `đ` as `d`: how search text is stored and
/// how a query is compared with it ("Dân vận" and "dan van" match).
pub fn fold(text: &str) -> String {
    text.nfd()
        .filter(|c| !('\u{0300}'..='\u{036f}').contains(c) && !c.is_control())
        .map(|c| match c {
            'đ' | 'Đ' => 'd',
            c => c,
        })
        .flat_map(char::to_lowercase)
        .collect()
}

/// A task id as text that sorts in the plan's numbering: II.2 before II.10.
pub fn task_order(task_id: &str) -> String {
    numbering_key(task_id)
        .iter()
        .map(|n| format!("{n:06}"))
        .collect::<Vec<_>>()
        .join(".")
}

impl ListRow {
    pub fn status(&self) -> Option<MilestoneStatus> {
        MilestoneStatus::parse(&self.status)
    }

    /// How the obligation stands against its deadline on `today`, as
    /// `views::obligation_timeliness` says of the obligation itself.
    pub fn timeliness(&self, today: NaiveDate) -> Timeliness {
        let due = NaiveDate::parse_from_str(&self.due_legal, "%Y-%m-%d").ok();
        match self.status() {
            Some(MilestoneStatus::Approved) => {
                let on = NaiveDate::parse_from_str(&self.approved_on, "%Y-%m-%d").ok();
                match (on, due) {
                    (Some(on), Some(due)) if on > due => Timeliness::ApprovedLate,
                    _ => Timeliness::OnTime,
                }
            }
            Some(MilestoneStatus::Waived | MilestoneStatus::Cancelled) | None => Timeliness::Closed,
            Some(_) if due.is_some_and(|d| today > d) => Timeliness::Overdue,
            Some(_) => Timeliness::NotYetDue,
        }
    }
}

/// The rows of one task: for each viewer, each milestone's obligations (a
/// task without milestones has one row per viewer, with no milestone).
/// `audit verify` compares the stored index with these rows.
pub fn list_rows(view: &TaskView, plan: Option<&Plan>) -> Vec<ListRow> {
    let Some(def) = &view.task.definition else {
        return Vec::new();
    };
    let dl = crate::domain::deadline::Deadlines::of_plan(plan);
    let (plan_id, task_id) = view.id.split_once('/').unwrap_or(("", &view.id));
    let mut viewers: Vec<(String, i64)> = vec![(EVERYONE.to_string(), 0)];
    for a in std::iter::once(&def.lead)
        .chain(&def.advisory)
        .chain(&def.implementers)
        .chain(&def.coordinators)
    {
        if !viewers.iter().any(|(v, _)| v == a.as_str()) {
            let roles = role_bits(def, a);
            viewers.push((a.to_string(), roles));
        }
    }
    let base = ListRow {
        aggregate_id: view.id.clone(),
        viewer: String::new(),
        milestone_id: String::new(),
        obligation: String::new(),
        plan_id: plan_id.to_string(),
        task_id: task_id.to_string(),
        task_order: task_order(task_id),
        milestone_order: 0,
        title: def.title.clone(),
        milestone_title: String::new(),
        status: String::new(),
        due: String::new(),
        approved_on: String::new(),
        submitted_at: String::new(),
        submitted_by: String::new(),
        withdrawn: i64::from(view.task.withdrawn),
        roles: 0,
        owes: 0,
        concerns: 1,
        supervises: 0,
        search: fold(&format!("{task_id} {}", def.title)),
        due_legal: String::new(),
    };
    let mut per_obligation: Vec<ListRow> = Vec::new();
    for (i, m) in view.task.milestones.iter().enumerate() {
        for o in &m.obligations {
            per_obligation.push(ListRow {
                milestone_id: m.spec.id.to_string(),
                obligation: o.agency.as_ref().map_or_else(String::new, |a| a.to_string()),
                milestone_order: i as i64,
                milestone_title: m.spec.title.clone(),
                status: o.status.as_str().to_string(),
                due: o.due.to_string(),
                due_legal: dl.legal(o.due).to_string(),
                approved_on: o.completed_on(dl.tz).map_or_else(String::new, |d| d.to_string()),
                submitted_at: o
                    .submitted
                    .as_ref()
                    .map_or_else(String::new, |s| super::views::instant_text(s.at)),
                submitted_by: o.submitted.as_ref().map_or_else(String::new, |s| s.by.to_string()),
                search: fold(&format!("{task_id} {} {}", def.title, m.spec.title)),
                ..base.clone()
            });
        }
    }
    if per_obligation.is_empty() {
        per_obligation.push(base);
    }
    let mut rows = Vec::with_capacity(per_obligation.len() * viewers.len());
    for (viewer, roles) in &viewers {
        let agency = AgencyCode::parse(viewer).ok();
        for r in &per_obligation {
            let owes = agency.as_ref().is_some_and(|a| {
                !r.milestone_id.is_empty()
                    && (r.obligation == a.as_str() || (r.obligation.is_empty() && def.implementers.contains(a)))
            });
            rows.push(ListRow {
                viewer: viewer.clone(),
                roles: *roles,
                owes: i64::from(owes),
                concerns: i64::from(owes || roles & IMPLEMENTER == 0),
                supervises: i64::from(roles & (LEAD | ADVISORY) != 0),
                ..r.clone()
            });
        }
    }
    rows
}

/// An agency's roles on a task, as `roles` bits.
pub fn role_bits(def: &crate::domain::task::TaskDefinition, a: &AgencyCode) -> i64 {
    let mut bits = 0;
    if &def.lead == a {
        bits |= LEAD;
    }
    if def.advisory.contains(a) {
        bits |= ADVISORY;
    }
    if def.implementers.contains(a) {
        bits |= IMPLEMENTER;
    }
    if def.coordinators.contains(a) {
        bits |= COORDINATOR;
    }
    bits
}

/// The viewer's roles, as people read them ("Lãnh đạo, Thực hiện").
pub fn roles_label(roles: i64) -> String {
    let labels: Vec<&str> = [
        (LEAD, "Lãnh đạo"),
        (ADVISORY, "Tham mưu"),
        (IMPLEMENTER, "Thực hiện"),
        (COORDINATOR, "Phối hợp"),
    ]
    .iter()
    .filter(|(bit, _)| roles & bit != 0)
    .map(|(_, label)| *label)
    .collect();
    if labels.is_empty() {
        "Theo dõi".into()
    } else {
        labels.join(", ")
    }
}

/// The columns of a row, in the order `ListRow` declares them.
pub const COLUMNS: &str =
    "aggregate_id, viewer, milestone_id, obligation, plan_id, task_id, task_order, milestone_order, \
     title, milestone_title, status, due, approved_on, submitted_at, submitted_by, withdrawn, roles, owes, concerns, \
     supervises, search, due_legal";

/// Rows per INSERT: 22 columns, well under both databases' bind limits.
pub(crate) const ROWS_PER_INSERT: usize = 400;

/// Writes rows in a few multi-row INSERTs, inside the projection's transaction.
macro_rules! insert_list_rows {
    ($tx:ident, $db:ty, $rows:expr) => {
        for chunk in $rows.chunks($crate::projections::lists::ROWS_PER_INSERT) {
            let mut q = sqlx::QueryBuilder::<$db>::new("INSERT INTO obligation_index (");
            q.push($crate::projections::lists::COLUMNS).push(") ");
            q.push_values(chunk, |mut b, r| {
                b.push_bind(&r.aggregate_id)
                    .push_bind(&r.viewer)
                    .push_bind(&r.milestone_id)
                    .push_bind(&r.obligation)
                    .push_bind(&r.plan_id)
                    .push_bind(&r.task_id)
                    .push_bind(&r.task_order)
                    .push_bind(r.milestone_order)
                    .push_bind(&r.title)
                    .push_bind(&r.milestone_title)
                    .push_bind(&r.status)
                    .push_bind(&r.due)
                    .push_bind(&r.approved_on)
                    .push_bind(&r.submitted_at)
                    .push_bind(&r.submitted_by)
                    .push_bind(r.withdrawn)
                    .push_bind(r.roles)
                    .push_bind(r.owes)
                    .push_bind(r.concerns)
                    .push_bind(r.supervises)
                    .push_bind(&r.search)
                    .push_bind(&r.due_legal);
            });
            q.build()
                .execute(&mut *$tx)
                .await
                .map_err(StoreError::query("cập nhật chỉ mục danh sách"))?;
        }
    };
}
pub(crate) use insert_list_rows;

/// What a list shows: obligations to do or follow, obligations to approve,
/// or tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    Inbox,
    Queue,
    Tasks,
}

/// The sort orders a list takes (`sort=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sort {
    #[default]
    Due,
    DueDesc,
    Task,
    Title,
}

impl Sort {
    pub const NAMES: [&'static str; 4] = ["due", "-due", "task", "title"];

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "due" => Self::Due,
            "-due" => Self::DueDesc,
            "task" => Self::Task,
            "title" => Self::Title,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Due => "due",
            Self::DueDesc => "-due",
            Self::Task => "task",
            Self::Title => "title",
        }
    }

    /// ORDER BY of a list of obligations: the chosen key, then a total order.
    fn obligation_order(self) -> &'static str {
        match self {
            Self::Due => "o.due, o.task_order, o.milestone_order, o.obligation",
            Self::DueDesc => "o.due DESC, o.task_order, o.milestone_order, o.obligation",
            Self::Task => "o.task_order, o.plan_id, o.milestone_order, o.obligation",
            Self::Title => "o.title, o.task_order, o.milestone_order, o.obligation",
        }
    }

    /// ORDER BY of a list of tasks (rows grouped by task).
    fn task_order(self) -> &'static str {
        match self {
            Self::Due => "MIN(o.due), MIN(o.task_order), o.aggregate_id",
            Self::DueDesc => "MIN(o.due) DESC, MIN(o.task_order), o.aggregate_id",
            Self::Task => "MIN(o.task_order), o.aggregate_id",
            Self::Title => "MIN(o.title), MIN(o.task_order), o.aggregate_id",
        }
    }
}

/// Items per page unless asked otherwise, and at most.
pub const PER_PAGE: u32 = 50;
pub const MAX_PER_PAGE: u32 = 200;
/// Rows an export holds at most; past that the list must be narrowed.
pub const EXPORT_LIMIT: u32 = 20_000;

/// The filters, sort and page of a list request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListQuery {
    /// Folded search text.
    pub q: Option<String>,
    /// The text as typed, to show back in the form.
    pub q_raw: Option<String>,
    pub plan: Option<String>,
    pub agency: Option<AgencyCode>,
    pub status: Option<MilestoneStatus>,
    pub year: Option<i32>,
    pub overdue: bool,
    /// Open milestones due on or before (the API's `due_before`).
    pub due_before: Option<NaiveDate>,
    /// Due in this calendar month, or in the next 30 days (`due_within`).
    pub due_within: Option<DueWithin>,
    /// Due on or after (the start page's next deadlines; no parameter).
    pub due_from: Option<NaiveDate>,
    pub sort: Sort,
    pub page: u32,
    pub per_page: u32,
}

/// A window of deadlines a list is narrowed to (`due_within=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DueWithin {
    /// From the first to the last day of today's month.
    Month,
    /// From today to 30 days after it.
    Next30Days,
}

impl DueWithin {
    pub const NAMES: [&'static str; 2] = ["month", "30d"];

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "month" => Some(Self::Month),
            "30d" => Some(Self::Next30Days),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Month => "month",
            Self::Next30Days => "30d",
        }
    }

    /// "Hạn trong tháng này", as the filter is offered.
    pub fn label_vi(self) -> &'static str {
        match self {
            Self::Month => "Hạn trong tháng này",
            Self::Next30Days => "Hạn trong 30 ngày tới",
        }
    }

    /// The first and last day of the window, both included.
    pub fn days(self, today: NaiveDate) -> (NaiveDate, NaiveDate) {
        use chrono::Datelike;
        match self {
            Self::Month => {
                let first = today.with_day(1).expect("day 1 exists");
                let next = if today.month() == 12 {
                    NaiveDate::from_ymd_opt(today.year() + 1, 1, 1)
                } else {
                    NaiveDate::from_ymd_opt(today.year(), today.month() + 1, 1)
                }
                .expect("the first of a month exists");
                (first, next.pred_opt().expect("a day before the first"))
            }
            Self::Next30Days => (today, today + chrono::Duration::days(30)),
        }
    }
}

/// A parameter of a list that cannot be taken: 400 (422 in the API).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{name}: {why}")]
pub struct BadParam {
    pub name: &'static str,
    pub why: String,
}

fn bad(name: &'static str, why: impl Into<String>) -> BadParam {
    BadParam { name, why: why.into() }
}

/// The list parameters this module reads.
pub const PARAMS: [&str; 10] = [
    "q",
    "plan",
    "agency",
    "status",
    "year",
    "overdue",
    "due_within",
    "sort",
    "page",
    "per_page",
];

impl ListQuery {
    /// Reads the list parameters (others are ignored). An empty value is no
    /// filter when `empty_is_none` (a submitted form), else refused.
    pub fn parse<'a>(
        params: impl IntoIterator<Item = (&'a str, &'a str)>,
        empty_is_none: bool,
    ) -> Result<Self, BadParam> {
        let mut query = ListQuery {
            page: 1,
            per_page: PER_PAGE,
            ..Default::default()
        };
        for (name, value) in params {
            let Some(name) = PARAMS.iter().find(|p| **p == name).copied() else {
                continue;
            };
            if name == "q" && value.chars().count() > 100 {
                return Err(bad(name, "từ khóa tìm kiếm dài quá 100 ký tự"));
            }
            if value.trim().is_empty() {
                if empty_is_none {
                    continue;
                }
                return Err(bad(name, "không được để trống"));
            }
            // A form's fields are trimmed; the API takes values exactly as
            // its description declares them.
            query.set(name, if empty_is_none { value.trim() } else { value })?;
        }
        Ok(query)
    }

    fn set(&mut self, name: &'static str, value: &str) -> Result<(), BadParam> {
        match name {
            "q" => {
                self.q = Some(fold(value.trim()));
                self.q_raw = Some(value.to_string());
            }
            "plan" => {
                crate::domain::ids::PlanId::parse(value)
                    .map_err(|e| bad(name, format!("mã kế hoạch không hợp lệ: {e}")))?;
                self.plan = Some(value.to_string());
            }
            "agency" => {
                self.agency = Some(
                    AgencyCode::parse(&value.to_ascii_uppercase())
                        .map_err(|e| bad(name, format!("mã cơ quan không hợp lệ: {e}")))?,
                );
            }
            "status" => {
                self.status = Some(MilestoneStatus::parse(value).ok_or_else(|| {
                    bad(
                        name,
                        format!(
                            "không có trạng thái {value:?} (dùng {})",
                            MilestoneStatus::NAMES.join(", ")
                        ),
                    )
                })?);
            }
            "year" => {
                let year: i32 = Some(value)
                    .filter(|v| v.len() == 4 && v.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|v| v.parse().ok())
                    .filter(|y| (1900..=2999).contains(y))
                    .ok_or_else(|| bad(name, format!("năm {value:?} phải là số có bốn chữ số, ví dụ 2025")))?;
                self.year = Some(year);
            }
            "overdue" => {
                self.overdue = match value {
                    "1" | "true" => true,
                    "0" | "false" => false,
                    _ => return Err(bad(name, format!("{value:?} (dùng 1 để chỉ xem mốc quá hạn)"))),
                };
            }
            "due_within" => {
                self.due_within = Some(DueWithin::parse(value).ok_or_else(|| {
                    bad(
                        name,
                        format!(
                            "không có khoảng hạn {value:?} (dùng {})",
                            DueWithin::NAMES.join(" hoặc ")
                        ),
                    )
                })?);
            }
            "sort" => {
                self.sort = Sort::parse(value).ok_or_else(|| {
                    bad(
                        name,
                        format!("không sắp xếp được theo {value:?} (dùng {})", Sort::NAMES.join(", ")),
                    )
                })?;
            }
            "page" => self.page = positive(name, value, u32::MAX)?,
            "per_page" => self.per_page = positive(name, value, MAX_PER_PAGE)?,
            _ => {}
        }
        Ok(())
    }

    /// The parameters as a query string (without `page` and `format`), for
    /// links that keep the filters.
    pub fn filters_query(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        let mut add = |k: &str, v: String| parts.push(format!("{k}={}", urlencode(&v)));
        if let Some(q) = &self.q_raw {
            add("q", q.clone());
        }
        if let Some(p) = &self.plan {
            add("plan", p.clone());
        }
        if let Some(a) = &self.agency {
            add("agency", a.to_string());
        }
        if let Some(s) = self.status {
            add("status", s.as_str().to_string());
        }
        if let Some(y) = self.year {
            add("year", y.to_string());
        }
        if self.overdue {
            add("overdue", "1".into());
        }
        if let Some(d) = self.due_within {
            add("due_within", d.as_str().into());
        }
        if self.sort != Sort::Due {
            add("sort", self.sort.as_str().to_string());
        }
        if self.per_page != PER_PAGE {
            add("per_page", self.per_page.to_string());
        }
        parts.join("&")
    }

    fn offset(&self) -> u64 {
        u64::from(self.page.saturating_sub(1)) * u64::from(self.per_page)
    }
}

/// The link to an obligation on its task page: the milestone opened, the
/// page scrolled to the agency's part (`#m-{milestone}-{agency}`), and
/// `open` the form to show ("approve" from the queue).
pub fn obligation_link(plan: &str, task: &str, milestone: &str, agency: &str, open: Option<&str>) -> String {
    let mut path = format!("/tasks/{}/{}", urlencode(plan), urlencode(task));
    if milestone.is_empty() {
        return path;
    }
    path.push_str(&format!("?m={}", urlencode(milestone)));
    if let Some(action) = open {
        path.push_str(&format!("&a={}&do={action}", urlencode(agency)));
    }
    path.push_str(&format!("#m-{milestone}-{agency}"));
    path
}

/// Percent-encodes a query value.
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn positive(name: &'static str, value: &str, max: u32) -> Result<u32, BadParam> {
    Some(value)
        .filter(|v| !v.starts_with('0') && v.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|v| v.parse::<u32>().ok())
        .filter(|n| (1..=max).contains(n))
        .ok_or_else(|| bad(name, format!("{value:?} phải là số nguyên từ 1 đến {max}")))
}

/// Who asks: an agency's member, or someone who sees everything.
#[derive(Debug, Clone)]
pub struct Asker {
    pub agency: AgencyCode,
    pub sees_everything: bool,
}

/// One page of a list and how many items the whole list has.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: u64,
    pub page: u32,
    pub per_page: u32,
}

impl<T> Page<T> {
    pub fn pages(&self) -> u64 {
        self.total.div_ceil(u64::from(self.per_page.max(1))).max(1)
    }
}

/// A WHERE clause under construction, with its text binds.
struct Where {
    sql: String,
    binds: Vec<String>,
}

impl Where {
    fn new() -> Self {
        Self {
            sql: String::from(" WHERE 1 = 1"),
            binds: Vec::new(),
        }
    }

    /// Adds `AND <clause>`, where each `?` in the clause is the next bind.
    fn and(&mut self, clause: &str, values: &[&str]) {
        self.sql.push_str(" AND ");
        let mut values = values.iter();
        for c in clause.chars() {
            if c == '?' {
                self.binds
                    .push(values.next().expect("a value per placeholder").to_string());
                self.sql.push_str(&format!("${}", self.binds.len()));
            } else {
                self.sql.push(c);
            }
        }
    }
}

/// Escapes LIKE's wildcards in a search text.
fn like_pattern(q: &str) -> String {
    let escaped: String = q
        .chars()
        .flat_map(|c| match c {
            '%' | '_' | '\\' => vec!['\\', c],
            c => vec![c],
        })
        .collect();
    format!("%{escaped}%")
}

/// The conditions of a list: the viewer whose rows are read (the agency
/// filter's, else the asker's, `*` for those who see everything), the
/// asker's visibility when it reads another agency's rows, the kind's own
/// rule, then the filters.
fn conditions(kind: ListKind, query: &ListQuery, asker: &Asker, today: NaiveDate) -> Where {
    let mut w = Where::new();
    let own = asker.agency.to_string();
    let viewer = match (kind, &query.agency, asker.sees_everything) {
        (ListKind::Queue, _, _) => own.clone(),
        (_, Some(a), _) => a.to_string(),
        (_, None, true) => EVERYONE.to_string(),
        (_, None, false) => own.clone(),
    };
    w.and("o.viewer = ?", &[&viewer]);
    if !asker.sees_everything && viewer != own {
        // Another agency's rows, of the tasks the asker may see.
        w.and(
            "EXISTS (SELECT 1 FROM obligation_index w WHERE w.aggregate_id = o.aggregate_id AND w.viewer = ?)",
            &[&own],
        );
    }
    let pending = "o.status IN ('open', 'returned', 'submitted')";
    match kind {
        ListKind::Inbox => {
            w.and("o.withdrawn = 0 AND o.concerns = 1", &[]);
            if query.status.is_none() {
                w.and(pending, &[]);
            }
        }
        ListKind::Queue => {
            w.and(
                "o.withdrawn = 0 AND o.supervises = 1 AND o.owes = 0 AND o.status = 'submitted'",
                &[],
            );
            if let Some(a) = &query.agency {
                w.and("o.obligation = ?", &[a.as_str()]);
            }
        }
        ListKind::Tasks => {}
    }
    if let Some(s) = query.status {
        w.and("o.status = ?", &[s.as_str()]);
    }
    if let Some(p) = &query.plan {
        w.and("o.plan_id = ?", &[p]);
    }
    if let Some(y) = query.year {
        w.and(
            "o.due >= ? AND o.due <= ?",
            &[&format!("{y:04}-01-01"), &format!("{y:04}-12-31")],
        );
    }
    if query.overdue {
        w.and(pending, &[]);
        w.and("o.withdrawn = 0 AND o.due_legal < ?", &[&today.to_string()]);
    }
    if let Some(window) = query.due_within {
        let (from, to) = window.days(today);
        w.and(
            "o.withdrawn = 0 AND o.due_legal >= ? AND o.due_legal <= ?",
            &[&from.to_string(), &to.to_string()],
        );
    }
    if let Some(d) = query.due_from {
        w.and("o.withdrawn = 0 AND o.due_legal >= ?", &[&d.to_string()]);
    }
    if let Some(d) = query.due_before {
        w.and(pending, &[]);
        w.and("o.withdrawn = 0 AND o.due_legal <= ?", &[&d.to_string()]);
    }
    if let Some(q) = &query.q {
        w.and("o.search LIKE ? ESCAPE '\\'", &[&like_pattern(q)]);
    }
    w
}

async fn count(store: &Store, sql: &str, binds: &[String]) -> Result<u64, StoreError> {
    let n: i64 = crate::with_pool!(store, pool => {
        let mut q = sqlx::query_scalar(sql);
        for b in binds {
            q = q.bind(b);
        }
        q.fetch_one(pool).await.map_err(StoreError::query("đếm danh sách"))?
    });
    Ok(n.max(0) as u64)
}

impl Store {
    /// One page of the obligations of an inbox or a queue, and how many
    /// there are, from the index alone.
    pub async fn list_obligations(
        &self,
        kind: ListKind,
        query: &ListQuery,
        asker: &Asker,
        today: NaiveDate,
    ) -> Result<Page<ListRow>, StoreError> {
        let w = conditions(kind, query, asker, today);
        self.page_of(
            query,
            &w,
            format!("SELECT COUNT(*) FROM obligation_index o{}", w.sql),
            format!(
                "SELECT {} FROM obligation_index o{} ORDER BY {}",
                prefixed(COLUMNS),
                w.sql,
                query.sort.obligation_order()
            ),
        )
        .await
    }

    /// How many obligations an inbox or a queue holds (the start page's
    /// counts and the menu's "Chờ duyệt (n)").
    pub async fn count_obligations(
        &self,
        kind: ListKind,
        query: &ListQuery,
        asker: &Asker,
        today: NaiveDate,
    ) -> Result<u64, StoreError> {
        let w = conditions(kind, query, asker, today);
        count(
            self,
            &format!("SELECT COUNT(*) FROM obligation_index o{}", w.sql),
            &w.binds,
        )
        .await
    }

    /// One page of the ids of the tasks a list holds, and how many there
    /// are, from the index alone.
    pub async fn list_task_ids(
        &self,
        query: &ListQuery,
        asker: &Asker,
        today: NaiveDate,
    ) -> Result<Page<String>, StoreError> {
        let w = conditions(ListKind::Tasks, query, asker, today);
        let page: Page<(String,)> = self
            .page_of(
                query,
                &w,
                format!("SELECT COUNT(DISTINCT o.aggregate_id) FROM obligation_index o{}", w.sql),
                format!(
                    "SELECT o.aggregate_id FROM obligation_index o{} GROUP BY o.aggregate_id ORDER BY {}",
                    w.sql,
                    query.sort.task_order()
                ),
            )
            .await?;
        Ok(Page {
            items: page.items.into_iter().map(|(id,)| id).collect(),
            total: page.total,
            page: page.page,
            per_page: page.per_page,
        })
    }

    /// The query's page of the rows `sql` (ordered, without LIMIT) reads,
    /// and the number `count_sql` counts, both with the binds of `w`.
    async fn page_of<T>(
        &self,
        query: &ListQuery,
        w: &Where,
        count_sql: String,
        sql: String,
    ) -> Result<Page<T>, StoreError>
    where
        T: Send
            + Unpin
            + for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
            + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>,
    {
        let total = count(self, &count_sql, &w.binds).await?;
        let sql = format!("{sql} LIMIT {} OFFSET {}", query.per_page, query.offset());
        let items: Vec<T> = crate::with_pool!(self, pool => {
            let mut q = sqlx::query_as(&sql);
            for b in &w.binds {
                q = q.bind(b);
            }
            q.fetch_all(pool).await.map_err(StoreError::query("đọc danh sách"))?
        });
        Ok(Page {
            items,
            total,
            page: query.page,
            per_page: query.per_page,
        })
    }

    /// The counts per implementing agency of a plan's page (đúng hạn, quá
    /// hạn, chưa đến hạn, trễ hạn), over every task of the plan the
    /// asker may see, counted by the database from the rows each agency
    /// owes: the same as `Standing::add` over those tasks' views (a test
    /// compares them), without decoding any view.
    pub async fn plan_agency_counts(
        &self,
        plan: &str,
        asker: &Asker,
        today: NaiveDate,
    ) -> Result<std::collections::BTreeMap<String, crate::audit::history::Counts>, StoreError> {
        let mut w = Where::new();
        w.and("o.plan_id = ? AND o.owes = 1 AND o.viewer <> ?", &[plan, EVERYONE]);
        w.and("o.withdrawn = 0 AND o.milestone_id <> ''", &[]);
        if !asker.sees_everything {
            w.and(
                "EXISTS (SELECT 1 FROM obligation_index w WHERE w.aggregate_id = o.aggregate_id AND w.viewer = ?)",
                &[asker.agency.as_str()],
            );
        }
        let today = today.to_string();
        w.binds.push(today);
        let t = format!("${}", w.binds.len());
        let pending = "o.status NOT IN ('approved', 'waived', 'cancelled')";
        let sql = format!(
            "SELECT o.viewer,
                    SUM(CASE WHEN o.status = 'approved' AND (o.approved_on = '' OR o.approved_on <= o.due_legal) THEN 1 ELSE 0 END),
                    SUM(CASE WHEN {pending} AND o.due_legal < {t} THEN 1 ELSE 0 END),
                    SUM(CASE WHEN {pending} AND o.due_legal >= {t} THEN 1 ELSE 0 END),
                    SUM(CASE WHEN o.status = 'approved' AND o.approved_on > o.due_legal THEN 1 ELSE 0 END)
               FROM obligation_index o{} GROUP BY o.viewer ORDER BY o.viewer",
            w.sql
        );
        let rows: Vec<(String, i64, i64, i64, i64)> = crate::with_pool!(self, pool => {
            let mut q = sqlx::query_as(&sql);
            for b in &w.binds {
                q = q.bind(b);
            }
            q.fetch_all(pool).await.map_err(StoreError::query("đếm theo cơ quan"))?
        });
        let n = |v: i64| u32::try_from(v).unwrap_or(u32::MAX);
        Ok(rows
            .into_iter()
            .map(|(agency, on_time, overdue, not_yet_due, approved_late)| {
                let counts = crate::audit::history::Counts {
                    on_time: n(on_time),
                    overdue: n(overdue),
                    not_yet_due: n(not_yet_due),
                    approved_late: n(approved_late),
                };
                (agency, counts)
            })
            .collect())
    }

    /// The task views of the ids given, in that order (ids without a view
    /// are left out).
    pub async fn task_views_in_order(&self, ids: &[String]) -> Result<Vec<TaskView>, StoreError> {
        let mut views = self.task_views_by_id(ids).await?;
        views.sort_by_key(|v| ids.iter().position(|id| id == &v.id));
        Ok(views)
    }

    /// Every task that involves an agency, through the index (its calendar).
    pub async fn task_views_involving(&self, agency: &AgencyCode) -> Result<Vec<TaskView>, StoreError> {
        let ids: Vec<String> = crate::with_pool!(self, pool => sqlx::query_scalar(
            "SELECT DISTINCT o.aggregate_id FROM obligation_index o WHERE o.viewer = $1",
        )
        .bind(agency.as_str())
        .fetch_all(pool)
        .await
        .map_err(StoreError::query("đọc danh sách"))?);
        self.task_views_by_id(&ids).await
    }

    /// Every task of one plan the asker may see, in the plan's numbering,
    /// read through the index (for the plan page's chart and counts).
    pub async fn plan_task_views(&self, plan: &str, asker: &Asker) -> Result<Vec<TaskView>, StoreError> {
        let viewer = if asker.sees_everything {
            EVERYONE.to_string()
        } else {
            asker.agency.to_string()
        };
        let ids: Vec<String> = crate::with_pool!(self, pool => sqlx::query_scalar(
            "SELECT o.aggregate_id FROM obligation_index o WHERE o.viewer = $1 AND o.plan_id = $2
             GROUP BY o.aggregate_id ORDER BY MIN(o.task_order), o.aggregate_id",
        )
        .bind(viewer)
        .bind(plan)
        .fetch_all(pool)
        .await
        .map_err(StoreError::query("đọc danh sách"))?);
        self.task_views_in_order(&ids).await
    }
}

/// `COLUMNS` with the table alias `o.`.
fn prefixed(columns: &str) -> String {
    columns
        .split(',')
        .map(|c| format!("o.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_text_is_folded() {
        assert_eq!(fold("Dân vận KHÉO Đức Phổ"), "dan van kheo duc pho");
        assert_eq!(fold("Mô hình"), fold("mo hinh"));
    }

    #[test]
    fn task_order_sorts_in_the_plan_numbering() {
        assert!(task_order("II.2") < task_order("II.10"));
        assert!(task_order("III.1") < task_order("IV.1"));
    }

    #[test]
    fn parameters_are_checked() {
        let q = ListQuery::parse([("q", "Dân"), ("page", "2"), ("sort", "-due"), ("status", "")], true).unwrap();
        assert_eq!(
            (q.q.as_deref(), q.page, q.sort, q.status),
            (Some("dan"), 2, Sort::DueDesc, None)
        );
        assert_eq!(q.filters_query(), "q=D%C3%A2n&sort=-due");
        for (k, v) in [
            ("page", "0"),
            ("per_page", "1000"),
            ("year", "20x5"),
            ("sort", "x"),
            ("status", "done"),
        ] {
            assert_eq!(ListQuery::parse([(k, v)], true).unwrap_err().name, k);
        }
        assert!(ListQuery::parse([("status", "")], false).is_err());
        for (k, v) in [("page", "01"), ("page", "+1"), ("year", " 2024"), ("year", "+202")] {
            assert!(ListQuery::parse([(k, v)], false).is_err(), "{k}={v:?}");
        }
        assert_eq!(fold("a\u{0}b"), "ab");
    }

    #[test]
    fn like_wildcards_are_escaped() {
        assert_eq!(like_pattern("50%_"), "%50\\%\\_%");
    }
}
