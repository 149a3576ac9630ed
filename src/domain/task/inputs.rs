//! Bounds on what a person's action may carry, checked by the aggregate
//! (lengths, KPI values) and by the engine before an extension (the plan
//! period), so that the CLI, the API and the pages refuse alike.

use super::definition::KpiTarget;
use super::errors::TaskError;
use chrono::NaiveDate;

/// Characters a note (report, submission, approval) may have.
pub const NOTE_MAX_CHARS: usize = 4000;
/// Characters a reason (return, extension, waiver, cancellation) may have.
pub const REASON_MAX_CHARS: usize = 1000;
/// Characters one evidence line (a link or a document number) may have.
pub const EVIDENCE_MAX_CHARS: usize = 1000;
/// Evidence lines one report may carry.
pub const EVIDENCE_MAX_ITEMS: usize = 50;

/// Units whose values are counted things: whole numbers.
pub const COUNT_UNITS: [&str; 10] = [
    "mô hình",
    "chính sách",
    "ngày công",
    "người",
    "lượt",
    "hộ",
    "cuộc",
    "văn bản",
    "hội nghị",
    "công trình",
];

/// What a KPI's values may be, from its unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KpiKind {
    /// `%`: from 0 to 100.
    Percent,
    /// A counted unit (`COUNT_UNITS`): a whole number, 0 or more.
    Count,
    /// Anything else (`m2/người`…): a number, 0 or more.
    Measure,
}

impl KpiKind {
    pub fn of(target: &KpiTarget) -> Self {
        let unit = target.unit.trim();
        if unit == "%" {
            Self::Percent
        } else if COUNT_UNITS.contains(&unit) {
            Self::Count
        } else {
            Self::Measure
        }
    }

    /// The largest value a KPI of this kind takes (percentages), if any.
    pub fn max(self) -> Option<f64> {
        matches!(self, Self::Percent).then_some(100.0)
    }
}

/// A text field within its length, without control characters (but line
/// breaks and tabs) or bidi controls (`domain::text`).
pub fn check_length(field: &'static str, value: &str, max: usize) -> Result<(), TaskError> {
    let chars = value.chars().count();
    if chars > max {
        return Err(TaskError::TooLong { field, max, chars });
    }
    if let Some(code) = crate::domain::text::forbidden_in(value) {
        return Err(TaskError::ForbiddenCharacter { field, code });
    }
    Ok(())
}

/// The evidence of a report: not too many lines, none too long.
pub fn check_evidence(evidence: &[String]) -> Result<(), TaskError> {
    if evidence.len() > EVIDENCE_MAX_ITEMS {
        return Err(TaskError::TooManyEvidence {
            max: EVIDENCE_MAX_ITEMS,
            given: evidence.len(),
        });
    }
    evidence
        .iter()
        .try_for_each(|e| check_length("minh chứng", e, EVIDENCE_MAX_CHARS))
}

/// Evidence files: at most `ATTACHMENTS_MAX_ITEMS`, each named (no
/// directories, no control characters) within `ATTACHMENT_NAME_MAX_CHARS`.
pub fn check_attachments(files: &[super::Attachment]) -> Result<(), TaskError> {
    use super::evidence::{ATTACHMENTS_MAX_ITEMS, ATTACHMENT_NAME_MAX_CHARS};
    if files.len() > ATTACHMENTS_MAX_ITEMS {
        return Err(TaskError::TooManyEvidence {
            max: ATTACHMENTS_MAX_ITEMS,
            given: files.len(),
        });
    }
    files
        .iter()
        .try_for_each(|f| check_length("tên tệp minh chứng", &f.name, ATTACHMENT_NAME_MAX_CHARS))
}

/// A reported value against its KPI: finite, 0 or more, at most 100 for a
/// percentage, whole for a count.
pub fn check_kpi_value(target: &KpiTarget, value: f64) -> Result<(), TaskError> {
    let key = target.key.clone();
    if !value.is_finite() {
        return Err(TaskError::KpiNotFinite { key });
    }
    let kind = KpiKind::of(target);
    let bound = |rule: &'static str| TaskError::KpiOutOfRange {
        key: key.clone(),
        value,
        rule,
    };
    if value < 0.0 {
        return Err(bound("không được âm"));
    }
    match kind {
        KpiKind::Percent if value > 100.0 => Err(bound("là tỉ lệ phần trăm, từ 0 đến 100")),
        KpiKind::Count if value.fract() != 0.0 => Err(bound("là số đếm, phải là số nguyên")),
        // A count beyond what f64 holds exactly is not a count anyone reports.
        KpiKind::Count if value > 9_007_199_254_740_991.0 => Err(bound("quá lớn")),
        _ => Ok(()),
    }
}

/// An extension's new date within what the plan allows (its period's end,
/// or the later date the plan sets with `period.extend_until`).
pub fn check_extension(until: NaiveDate, latest: NaiveDate) -> Result<(), TaskError> {
    if until > latest {
        return Err(TaskError::ExtensionBeyondPlan {
            requested: until,
            latest,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::KpiKey;
    use crate::domain::task::{Comparator, TargetValue};

    fn kpi(unit: &str) -> KpiTarget {
        KpiTarget {
            better: None,
            key: KpiKey::parse("k").unwrap(),
            label: "k".into(),
            comparator: Comparator::AtLeast,
            target: TargetValue::Value(1.0),
            unit: unit.into(),
            per_year: false,
            baseline: None,
        }
    }

    #[test]
    fn negative_zero_is_reported_as_zero() {
        let key = crate::domain::ids::KpiKey::parse("ty-le").unwrap();
        let v = super::super::KpiValue::new(key, -0.0);
        assert!(v.value == 0.0 && v.value.is_sign_positive());
    }

    #[test]
    fn percentages_stay_between_0_and_100() {
        let p = kpi("%");
        assert!(check_kpi_value(&p, 0.0).is_ok());
        assert!(check_kpi_value(&p, 100.0).is_ok());
        assert!(check_kpi_value(&p, 85.5).is_ok());
        for bad in [-5.0, 150.5, 1e308, f64::NAN, f64::INFINITY] {
            assert!(check_kpi_value(&p, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn counts_are_whole_and_not_negative() {
        let c = kpi("mô hình");
        assert!(check_kpi_value(&c, 3.0).is_ok());
        assert!(check_kpi_value(&c, 10000.0).is_ok());
        assert_eq!(check_kpi_value(&c, 2.5).unwrap_err().code(), "kpi_out_of_range");
        assert!(check_kpi_value(&c, -1.0).is_err());
        assert!(check_kpi_value(&c, 1e308).is_err());
        let m = kpi("m2/người");
        assert!(check_kpi_value(&m, 2.75).is_ok());
        assert!(check_kpi_value(&m, -0.5).is_err());
    }

    #[test]
    fn lengths_count_characters_not_bytes() {
        assert!(check_length("ghi chú", &"ệ".repeat(NOTE_MAX_CHARS), NOTE_MAX_CHARS).is_ok());
        let e = check_length("ghi chú", &"a".repeat(NOTE_MAX_CHARS + 1), NOTE_MAX_CHARS).unwrap_err();
        assert_eq!(e.code(), "too_long");
        assert!(e.to_string().contains("ghi chú") && e.to_string().contains("4000"));
    }

    #[test]
    fn extensions_end_with_the_plan() {
        let end = NaiveDate::from_ymd_opt(2026, 12, 31).unwrap();
        assert!(check_extension(end, end).is_ok());
        let far = NaiveDate::from_ymd_opt(9999, 12, 31).unwrap();
        assert_eq!(check_extension(far, end).unwrap_err().code(), "extension_beyond_plan");
    }
}
