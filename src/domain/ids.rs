//! Identifiers that can only be built by parsing, so unchecked strings never
//! reach the core.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a string is not a valid identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} không hợp lệ: {value:?} ({hint})")]
pub struct IdError {
    pub kind: &'static str,
    pub value: String,
    pub hint: &'static str,
}

macro_rules! string_id {
    ($(#[$meta:meta])* $name:ident, $kind:literal, $hint:literal, $check:expr) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn parse(value: &str) -> Result<Self, IdError> {
                let check: fn(&str) -> bool = $check;
                if check(value) {
                    Ok(Self(value.to_string()))
                } else {
                    Err(IdError { kind: $kind, value: value.to_string(), hint: $hint })
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(value: String) -> Result<Self, IdError> {
                Self::parse(&value)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::parse(s)
            }
        }
    };
}

fn is_slug(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

string_id!(
    /// A plan's id, for example `duc-pho-de-an-13`.
    PlanId,
    "mã kế hoạch",
    "chữ thường ASCII, chữ số và '-'",
    is_slug
);

string_id!(
    /// A task's id inside its plan, in the plan's own numbering: `II.1.1`, `IV.5`.
    TaskId,
    "mã nhiệm vụ",
    "các phần cách nhau bởi '.', phần đầu là số La Mã, ví dụ II.1.1",
    |s| {
        let mut parts = s.split('.');
        let first = parts.next().unwrap_or("");
        s.len() <= 64
            && !first.is_empty()
            && first.bytes().all(|b| matches!(b, b'I' | b'V' | b'X' | b'L'))
            && parts.all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    }
);

string_id!(
    /// A milestone's id inside its task: `complete`, `register-2024`.
    MilestoneId,
    "mã mốc",
    "chữ thường ASCII, chữ số và '-'",
    is_slug
);

string_id!(
    /// A KPI target's key inside its task.
    KpiKey,
    "mã chỉ tiêu",
    "chữ thường ASCII, chữ số và '-'",
    is_slug
);

string_id!(
    /// An agency code from the plan's directory: `BDV`, `UBND`.
    AgencyCode,
    "mã cơ quan",
    "2–10 chữ in hoa ASCII hoặc chữ số, ví dụ BDV",
    |s| (2..=10).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
);

impl AgencyCode {
    /// Parses user input, where `bdv` means `BDV`.
    pub fn parse_loose(value: &str) -> Result<Self, IdError> {
        Self::parse(&value.trim().to_ascii_uppercase())
    }
}

/// The aggregate id of a task: `<plan id>/<task id>`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TaskKey {
    pub plan: PlanId,
    pub task: TaskId,
}

impl TaskKey {
    pub fn new(plan: PlanId, task: TaskId) -> Self {
        Self { plan, task }
    }

    /// Parses `plan/task`.
    pub fn parse(value: &str) -> Result<Self, IdError> {
        let (plan, task) = value.split_once('/').ok_or_else(|| IdError {
            kind: "mã tổng hợp nhiệm vụ",
            value: value.to_string(),
            hint: "dạng <mã kế hoạch>/<mã nhiệm vụ>",
        })?;
        Ok(Self::new(PlanId::parse(plan)?, TaskId::parse(task)?))
    }
}

impl fmt::Display for TaskKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.plan, self.task)
    }
}

/// A person's display name as given in a request ("Nguyễn Văn A").
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PersonName(String);

impl PersonName {
    /// A name as stored (events and account rows read back through this):
    /// never stricter than when it was written, so that no stored record
    /// stops reading. New names go through [`PersonName::parse_new`].
    pub fn parse(value: &str) -> Result<Self, IdError> {
        let normalized = value.split_whitespace().collect::<Vec<_>>().join(" ");
        if normalized.is_empty() || normalized.chars().count() > 200 || normalized.chars().any(char::is_control) {
            return Err(IdError {
                kind: "họ tên",
                value: super::text::printable(value).into_owned(),
                hint: "không được để trống, tối đa 200 ký tự, không có ký tự điều khiển",
            });
        }
        Ok(Self(normalized))
    }

    /// A name given for a new account: also without bidi controls, which
    /// would make it read differently from what it is.
    pub fn parse_new(value: &str) -> Result<Self, IdError> {
        if value.chars().any(super::text::is_bidi_control) {
            return Err(IdError {
                kind: "họ tên",
                value: super::text::printable(value).into_owned(),
                hint: "không được có ký tự điều khiển hướng chữ (như U+202E)",
            });
        }
        Self::parse(value)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for PersonName {
    type Error = IdError;
    fn try_from(value: String) -> Result<Self, IdError> {
        Self::parse(&value)
    }
}

impl From<PersonName> for String {
    fn from(name: PersonName) -> String {
        name.0
    }
}

impl fmt::Display for PersonName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_ids_follow_the_plan_numbering() {
        for ok in ["II.1.1", "II.2.1.11", "III.2.3.4", "IV.5"] {
            assert_eq!(TaskId::parse(ok).unwrap().as_str(), ok);
        }
        for bad in ["", "2.1", "II..1", "II.a", "ii.1", "II.1."] {
            assert!(TaskId::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn agency_codes_are_upper_case_and_loose_parsing_upper_cases() {
        assert!(AgencyCode::parse("bdv").is_err());
        assert_eq!(AgencyCode::parse_loose(" bdv ").unwrap().as_str(), "BDV");
        assert!(AgencyCode::parse("B").is_err());
        assert!(AgencyCode::parse("BĐV").is_err());
    }

    #[test]
    fn task_keys_round_trip() {
        let key = TaskKey::parse("duc-pho-de-an-13/III.1.2").unwrap();
        assert_eq!(key.task.as_str(), "III.1.2");
        assert_eq!(key.to_string(), "duc-pho-de-an-13/III.1.2");
        assert!(TaskKey::parse("III.1.2").is_err());
    }

    #[test]
    fn person_names_normalise_spacing() {
        // Names are shown, never compared: rules compare account ids.
        let a = PersonName::parse("  Nguyễn   Văn A ").unwrap();
        assert_eq!(a.as_str(), "Nguyễn Văn A");
        assert!(PersonName::parse("   ").is_err());
        // A stored name with a bidi mark still reads; a new one is refused.
        assert!(PersonName::parse("Lê\u{200E} Văn").is_ok());
        assert!(PersonName::parse_new("Lê\u{202E} Văn").is_err());
        assert!(PersonName::parse_new("Lê Văn").is_ok());
    }
}
