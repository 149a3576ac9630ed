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
        let unit = if self.unit == "%" {
            self.unit.clone()
        } else {
            format!(" {}", self.unit)
        };
        match self.target {
            TargetValue::Value(v) => write!(f, "{sign}{v}{unit}")?,
            TargetValue::Range { min, max } => write!(f, "{min}–{max}{unit}")?,
        }
        if self.per_year {
            f.write_str("/năm")?;
        }
        Ok(())
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

/// One milestone as the plan defines it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MilestoneSpec {
    pub id: MilestoneId,
    pub title: String,
    pub kind: MilestoneKind,
    /// Local date in the plan's time zone; the deadline is the end of that day.
    pub due: NaiveDate,
}

/// Who did something: a person acting for an agency, or the engine itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Actor {
    Agency { agency: AgencyCode, person: PersonName },
    System { system: String },
}

impl Actor {
    pub fn person(agency: AgencyCode, person: PersonName) -> Self {
        Self::Agency { agency, person }
    }

    pub fn system(component: &str) -> Self {
        Self::System {
            system: component.to_string(),
        }
    }

    pub fn agency(&self) -> Option<&AgencyCode> {
        match self {
            Self::Agency { agency, .. } => Some(agency),
            Self::System { .. } => None,
        }
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Agency { agency, person } => write!(f, "{person} ({agency})"),
            Self::System { system } => write!(f, "hệ thống: {system}"),
        }
    }
}

/// Who asked, and when: comes with every command, from the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    pub by: Actor,
    pub at: DateTime<Utc>,
}
