//! The plan file as written, with the position of every value that a
//! diagnostic may need to point at. See `docs/plan-format.md`.

use serde::Deserialize;
use toml::Spanned;

pub type S<T> = Spanned<T>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPlanFile {
    pub plan: RawPlan,
    #[serde(default)]
    pub defaults: RawDefaults,
    #[serde(default)]
    pub agencies: Vec<RawAgency>,
    #[serde(default)]
    pub tasks: Vec<RawTask>,
    pub reminders: Option<S<RawReminders>>,
    pub calendar: Option<RawCalendar>,
    pub audit: Option<RawAudit>,
    pub mail: Option<RawMail>,
}

/// `[mail]`: how the plan's e-mails present themselves.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMail {
    pub sender_name: Option<S<String>>,
    pub subject_prefix: Option<S<String>>,
}

/// `[audit]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAudit {
    /// Cron expression in the plan's zone: when `serve` records a checkpoint.
    pub checkpoint_at: Option<S<String>>,
}

/// `[reminders]` and `[tasks.reminders]`; every key optional.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawReminders {
    pub before_days: Option<S<Vec<i64>>>,
    pub send_at: Option<S<String>>,
    pub overdue_every_days: Option<S<i64>>,
    pub escalate_after_days: Option<S<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCalendar {
    #[serde(default)]
    pub holidays: Vec<RawDay>,
    #[serde(default)]
    pub workdays: Vec<RawDay>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDay {
    pub date: S<String>,
    pub name: String,
    /// Not yet confirmed by the year's official notice.
    #[serde(default)]
    pub estimate: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPlan {
    pub id: S<String>,
    pub title: S<String>,
    pub issuer: S<String>,
    pub document: Option<String>,
    pub period: RawPeriod,
    pub time_zone: Option<S<String>>,
    /// `civil-code` (default) or `as-written`.
    pub deadline_rule: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPeriod {
    pub start: S<String>,
    pub end: S<String>,
    pub extend_until: Option<S<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDefaults {
    pub yearly_report: Option<S<String>>,
    pub reporting_years: Option<S<RawYears>>,
    pub five_year_review: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawYears {
    pub first: i32,
    pub last: i32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAgency {
    pub code: S<String>,
    pub name: S<String>,
    #[serde(default)]
    pub short: Option<S<String>>,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub emails: Vec<S<String>>,
    #[serde(default)]
    pub members: Vec<RawMember>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMember {
    pub name: S<String>,
    #[serde(default)]
    pub emails: Vec<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTask {
    pub id: S<String>,
    pub title: S<String>,
    pub text: S<String>,
    pub lead: S<String>,
    #[serde(default)]
    pub advisory: Vec<S<String>>,
    pub implementers: S<Vec<S<String>>>,
    /// Cơ quan phối hợp: see the task, owe nothing.
    #[serde(default)]
    pub coordinators: Vec<S<String>>,
    pub deadline: Option<String>,
    pub source: RawSource,
    pub schedule: Option<S<RawSchedule>>,
    pub milestones: Option<S<Vec<S<RawSchedule>>>>,
    #[serde(default)]
    pub kpis: Vec<S<RawKpi>>,
    pub reminders: Option<S<RawReminders>>,
    /// "each" (every implementer owes each milestone, the default) or "joint".
    pub obligation: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSource {
    pub section: String,
    pub line: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSchedule {
    pub kind: S<String>,
    pub key: Option<S<String>>,
    pub title: Option<String>,
    pub due: Option<S<String>>,
    pub month: Option<S<String>>,
    pub quarter: Option<S<i64>>,
    pub year: Option<S<i64>>,
    /// Overrides the task's `obligation` for this schedule's milestones.
    pub obligation: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKpi {
    pub key: S<String>,
    pub label: String,
    pub comparator: S<String>,
    pub value: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub unit: String,
    #[serde(default)]
    pub per_year: bool,
    pub baseline: Option<RawBaseline>,
    /// `higher`, `lower` or `within`.
    pub better: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBaseline {
    pub value: f64,
    pub year: i32,
}
