//! What the plan says about a task: its text, agencies, KPI targets and the
//! milestones its schedule produces. Built by `crate::plan`, carried by
//! commands and events.

use crate::domain::ids::{AgencyCode, KpiKey, MilestoneId, PersonName};
use crate::domain::reminders::PolicyOverride;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskDefinition {
    pub title: String,
    pub text: String,
    pub lead: AgencyCode,
    pub advisory: Vec<AgencyCode>,
    pub implementers: Vec<AgencyCode>,
    /// Cơ quan phối hợp: they see the task and hear of its deadlines to
    /// coordinate, and owe nothing. Absent from definitions before 0.9.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub coordinators: Vec<AgencyCode>,
    /// The deadline wording of the document, verbatim.
    pub deadline: Option<String>,
    pub source: SourceRef,
    pub kpis: Vec<KpiTarget>,
    /// Overrides of the plan's reminder policy for this task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reminders: Option<PolicyOverride>,
}

impl TaskDefinition {
    pub fn is_implementer(&self, agency: &AgencyCode) -> bool {
        self.implementers.contains(agency)
    }

    pub fn is_coordinator(&self, agency: &AgencyCode) -> bool {
        self.coordinators.contains(agency)
    }

    /// The lead and advisory agencies approve, return and extend.
    pub fn is_supervisor(&self, agency: &AgencyCode) -> bool {
        &self.lead == agency || self.advisory.contains(agency)
    }

    pub fn kpi(&self, key: &KpiKey) -> Option<&KpiTarget> {
        self.kpis.iter().find(|k| &k.key == key)
    }
}

/// Where the task is in the source document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceRef {
    pub document: Option<String>,
    pub section: String,
    pub line: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Comparator {
    AtLeast,
    MoreThan,
    AtMost,
    LessThan,
    Equal,
    About,
    Between,
}

impl Comparator {
    pub const NAMES: [&'static str; 7] = [
        "at_least",
        "more_than",
        "at_most",
        "less_than",
        "equal",
        "about",
        "between",
    ];

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "at_least" => Self::AtLeast,
            "more_than" => Self::MoreThan,
            "at_most" => Self::AtMost,
            "less_than" => Self::LessThan,
            "equal" => Self::Equal,
            "about" => Self::About,
            "between" => Self::Between,
            _ => return None,
        })
    }
}

/// The number a KPI must reach: a single value or a range.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetValue {
    Value(f64),
    Range { min: f64, max: f64 },
}

/// Which way a KPI is better, as the document words it: "ít nhất", "tăng"
/// (higher), "giảm", "không quá" (lower), or a figure to hit (within).
/// A range target is met at or above its lower bound when higher is better,
/// at or below its upper bound when lower is, and only inside it when within.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Better {
    Higher,
    Lower,
    Within,
}

impl Better {
    pub const NAMES: [&'static str; 3] = ["higher", "lower", "within"];

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "higher" => Some(Self::Higher),
            "lower" => Some(Self::Lower),
            "within" => Some(Self::Within),
            _ => None,
        }
    }

    /// What a comparator says by itself (a KPI stored before `better`).
    pub fn implied_by(c: Comparator) -> Self {
        match c {
            Comparator::AtLeast | Comparator::MoreThan => Self::Higher,
            Comparator::AtMost | Comparator::LessThan => Self::Lower,
            Comparator::Equal | Comparator::About | Comparator::Between => Self::Within,
        }
    }
}

/// How far from an "about" target a value still meets it (2 %).
pub const ABOUT_TOLERANCE: f64 = 0.02;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    pub value: f64,
    pub year: i32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KpiTarget {
    pub key: KpiKey,
    pub label: String,
    pub comparator: Comparator,
    pub target: TargetValue,
    pub unit: String,
    pub per_year: bool,
    pub baseline: Option<Baseline>,
    /// Which way is better; absent in KPIs stored before it, which follow
    /// their comparator (see [`Better::implied_by`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub better: Option<Better>,
}

impl fmt::Display for KpiTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = match self.comparator {
            Comparator::AtLeast => "≥ ",
            Comparator::MoreThan => "> ",
            Comparator::AtMost => "≤ ",
            Comparator::LessThan => "< ",
            Comparator::Equal => "",
            Comparator::About => "≈ ",
            Comparator::Between => "",
        };
        let number = match self.target {
            TargetValue::Value(v) => format!("{sign}{}", format_number(v)),
            TargetValue::Range { min, max } => format!("{}–{}", format_number(min), format_number(max)),
        };
        f.write_str(&unit_after(number, &self.unit))?;
        if self.per_year {
            f.write_str("/năm")?;
        }
        Ok(())
    }
}

impl KpiTarget {
    /// Which way is better: as set, else as the comparator implies.
    pub fn better(&self) -> Better {
        self.better.unwrap_or_else(|| Better::implied_by(self.comparator))
    }

    /// Whether `value` meets the target. A range is judged by which way is
    /// better: "giảm 0,4 – 0,6 %/năm" with higher better is met by 0,8 %.
    pub fn met_by(&self, value: f64) -> bool {
        if !value.is_finite() {
            return false;
        }
        let (lo, hi) = match self.target {
            TargetValue::Value(v) => (v, v),
            TargetValue::Range { min, max } => (min.min(max), min.max(max)),
        };
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0);
        let (lo_t, hi_t) = match self.comparator {
            Comparator::About => (ABOUT_TOLERANCE * lo.abs() + 1e-12, ABOUT_TOLERANCE * hi.abs() + 1e-12),
            _ => (0.0, 0.0),
        };
        let at_least = |b: f64, tol: f64| value >= b - tol || close(value, b);
        let at_most = |b: f64, tol: f64| value <= b + tol || close(value, b);
        match self.comparator {
            Comparator::AtLeast => at_least(lo, 0.0),
            Comparator::MoreThan => value > lo && !close(value, lo),
            Comparator::AtMost => at_most(hi, 0.0),
            Comparator::LessThan => value < hi && !close(value, hi),
            Comparator::Equal | Comparator::Between | Comparator::About => match self.better() {
                Better::Higher => at_least(lo, lo_t),
                Better::Lower => at_most(hi, hi_t),
                Better::Within => at_least(lo, lo_t) && at_most(hi, hi_t),
            },
        }
    }

    /// A reported value with this KPI's unit, as people read it:
    /// "2 mô hình", "85%", "1.5" (no unit).
    pub fn value_text(&self, value: f64) -> String {
        with_unit(value, &self.unit)
    }

    /// The KPI's label and a value: "Số mô hình dân vận khéo: 2 mô hình".
    pub fn reading(&self, value: f64) -> String {
        format!("{}: {}", self.label, self.value_text(value))
    }
}

/// A number as Vietnamese write it: `.` groups thousands, `,` marks
/// decimals, at most three decimals, no trailing zeros, never "-0"
/// (`1234.5` → `1.234,5`; `0.8` → `0,8`).
pub fn format_number(v: f64) -> String {
    if !v.is_finite() {
        return v.to_string();
    }
    let fixed = format!("{:.3}", v.abs());
    let (whole, fraction) = fixed.split_once('.').unwrap_or((&fixed, ""));
    let fraction = fraction.trim_end_matches('0');
    let mut grouped = String::new();
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            grouped.push('.');
        }
        grouped.push(c);
    }
    let negative = v < 0.0 && (whole != "0" || !fraction.is_empty());
    let sign = if negative { "-" } else { "" };
    if fraction.is_empty() {
        format!("{sign}{grouped}")
    } else {
        format!("{sign}{grouped},{fraction}")
    }
}

/// A value with its unit, spaced the way [`KpiTarget`]'s Display spaces it
/// ("85%", "2 mô hình").
pub fn with_unit(v: f64, unit: &str) -> String {
    unit_after(format_number(v), unit)
}

/// A number already written, followed by its unit: "%" right after it, any
/// other unit spaced.
pub fn unit_after(number: String, unit: &str) -> String {
    match unit.trim() {
        "" => number,
        "%" => format!("{number}%"),
        u => format!("{number} {u}"),
    }
}

/// The kind of schedule a milestone came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MilestoneKind {
    Once,
    MonthEnd,
    QuarterEnd,
    Yearly,
    Ongoing,
    PeriodReview,
}

impl MilestoneKind {
    pub const NAMES: [&'static str; 6] = ["once", "month_end", "quarter_end", "yearly", "ongoing", "period_review"];

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "once" => Self::Once,
            "month_end" => Self::MonthEnd,
            "quarter_end" => Self::QuarterEnd,
            "yearly" => Self::Yearly,
            "ongoing" => Self::Ongoing,
            "period_review" => Self::PeriodReview,
            _ => return None,
        })
    }
}

/// Whether a milestone is owed by each implementing agency on its own or
/// once by all of them together.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObligationMode {
    /// Every implementer owes it (the default).
    #[default]
    Each,
    /// One obligation that any implementer may fulfil.
    Joint,
}

impl ObligationMode {
    pub const NAMES: [&'static str; 2] = ["each", "joint"];

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "each" => Some(Self::Each),
            "joint" => Some(Self::Joint),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

/// One milestone as the plan defines it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MilestoneSpec {
    pub id: MilestoneId,
    pub title: String,
    pub kind: MilestoneKind,
    /// Local date in the plan's time zone; the deadline is the end of that day.
    pub due: NaiveDate,
    /// Absent in release 0.1 events, which meant one shared milestone; such
    /// events are read as `each` (see docs/audit/canonical-form.md).
    #[serde(default)]
    pub obligation: ObligationMode,
}

/// Which obligation of a milestone an event is about: one agency's, or the
/// joint one. Stored as the agency code or `"joint"`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum ObligationRef {
    Agency(AgencyCode),
    Joint,
}

impl ObligationRef {
    pub fn agency(&self) -> Option<&AgencyCode> {
        match self {
            Self::Agency(a) => Some(a),
            Self::Joint => None,
        }
    }

    pub fn of(agency: Option<&AgencyCode>) -> Self {
        agency.map_or(Self::Joint, |a| Self::Agency(a.clone()))
    }
}

impl TryFrom<String> for ObligationRef {
    type Error = crate::domain::ids::IdError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        if s == "joint" {
            Ok(Self::Joint)
        } else {
            AgencyCode::parse(&s).map(Self::Agency)
        }
    }
}

impl From<ObligationRef> for String {
    fn from(o: ObligationRef) -> String {
        o.to_string()
    }
}

impl fmt::Display for ObligationRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Agency(a) => write!(f, "{a}"),
            Self::Joint => f.write_str("joint"),
        }
    }
}

/// How an account reached kehoach when it acted. Never a secret: a web
/// session is named by the SHA-256 of its id, an API token by its id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "channel", rename_all = "snake_case")]
pub enum Channel {
    Web {
        session: String,
    },
    Api {
        token: String,
        token_label: String,
    },
    Cli {
        os_user: String,
        host: String,
    },
    /// A sheet of the state already reached, uploaded on the admin page or
    /// given to `kehoach plan baseline` (`via`: "web" or "cli").
    Sheet {
        file: String,
        sha256: String,
        via: String,
    },
}

impl Channel {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Web { .. } => "web",
            Self::Api { .. } => "api",
            Self::Cli { .. } => "cli",
            Self::Sheet { .. } => "sheet",
        }
    }

    /// Where the action came from, as people read it.
    pub fn label_vi(&self) -> &'static str {
        match self {
            Self::Web { .. } => "web",
            Self::Api { .. } => "API",
            Self::Cli { .. } => "dòng lệnh",
            Self::Sheet { .. } => "ghi nhận từ hồ sơ",
        }
    }
}

/// A person's account as it was at the moment of the action: rules compare
/// `account`, never names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    pub account: String,
    pub email: String,
    pub name: PersonName,
    pub agency: AgencyCode,
    #[serde(flatten)]
    pub channel: Channel,
}

/// A fixed `"channel"` value in the stored form of actors that are not accounts.
macro_rules! channel_tag {
    ($name:ident, $value:literal) => {
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
        pub enum $name {
            #[default]
            #[serde(rename = $value)]
            Tag,
        }
    };
}
channel_tag!(SystemChannel, "system");
channel_tag!(OperatorChannel, "cli");

/// Who did something: an account (through the web, the API or the CLI), an
/// operator at a terminal without an account (loading plans, creating the
/// first administrator), the engine itself, or, in events written before
/// accounts existed, an agency and a free-text name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Actor {
    Account(Principal),
    Operator {
        operator: String,
        host: String,
        #[serde(default)]
        channel: OperatorChannel,
    },
    System {
        system: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        version: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        host: Option<String>,
        #[serde(default)]
        channel: SystemChannel,
    },
    /// Release 0.1 events: `{"agency": …, "person": …}`, no account.
    Legacy {
        agency: AgencyCode,
        person: PersonName,
    },
}

impl Actor {
    pub fn account(principal: Principal) -> Self {
        Self::Account(principal)
    }

    /// The engine's own component, with the release and host that ran it.
    pub fn system_on(component: &str, version: &str, host: &str) -> Self {
        Self::System {
            system: component.to_string(),
            version: Some(version.to_string()),
            host: Some(host.to_string()),
            channel: SystemChannel::Tag,
        }
    }

    /// An account of `agency` named `name` (id `acc-<agency>-<name>`), for unit tests.
    #[cfg(test)]
    pub fn test_person(agency: AgencyCode, name: PersonName) -> Self {
        Self::Account(Principal {
            account: format!("acc-{agency}-{name}"),
            email: "test@ducpho.example".into(),
            name,
            agency,
            channel: Channel::Cli {
                os_user: "test".into(),
                host: "test".into(),
            },
        })
    }

    pub fn operator(os_user: &str, host: &str) -> Self {
        Self::Operator {
            operator: os_user.to_string(),
            host: host.to_string(),
            channel: OperatorChannel::Tag,
        }
    }

    /// The agency a person acted for (accounts and release 0.1 actors).
    pub fn agency(&self) -> Option<&AgencyCode> {
        match self {
            Self::Account(p) => Some(&p.agency),
            Self::Legacy { agency, .. } => Some(agency),
            Self::System { .. } | Self::Operator { .. } => None,
        }
    }

    /// The account id, which separation-of-duties rules compare.
    pub fn account_id(&self) -> Option<&str> {
        match self {
            Self::Account(p) => Some(&p.account),
            _ => None,
        }
    }

    pub fn is_system(&self) -> bool {
        matches!(self, Self::System { .. })
    }

    /// The actor as histories show it: its stored fields, with `channel`
    /// always present (`legacy` for release 0.1 actors).
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        if let serde_json::Value::Object(map) = &mut v {
            map.entry("channel").or_insert_with(|| self.channel().into());
        }
        v
    }

    /// web, api, cli or system; `legacy` for release 0.1 actors, whose channel was not recorded.
    pub fn channel(&self) -> &'static str {
        match self {
            Self::Account(p) => p.channel.name(),
            Self::Operator { .. } => "cli",
            Self::System { .. } => "system",
            Self::Legacy { .. } => "legacy",
        }
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Account(p) => write!(f, "{} ({})", p.name, p.agency),
            Self::Legacy { agency, person } => write!(f, "{person} ({agency})"),
            Self::Operator { operator, host, .. } => write!(f, "Người vận hành {operator} (máy {host})"),
            Self::System { system, .. } => write!(f, "Hệ thống ({})", system_label(system)),
        }
    }
}

/// The Vietnamese name of an engine component, as people read it.
pub fn system_label(component: &str) -> &str {
    match component {
        "plan-loader" => "nạp kế hoạch",
        "scheduler" => "bộ lập lịch nhắc việc",
        "dispatcher" => "bộ gửi thư",
        "audit" => "kiểm toán",
        other => other,
    }
}

/// Who asked, and when: comes with every command, from the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    pub by: Actor,
    pub at: DateTime<Utc>,
}
