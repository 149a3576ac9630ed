//! Legal deadlines. Under the Civil Code 2015 (Bộ luật Dân sự, Điều 147–148),
//! a period whose last day is a weekend or public holiday ends at the end of
//! the next working day. A plan says whether its deadlines follow that rule
//! (`deadline_rule = "civil-code"`, the default) or are judged as written
//! (`"as-written"`); the plan's calendar says what a working day is.
//!
//! The document's date stays the deadline people read and the events carry;
//! the legal one is what timeliness, counts, reminders and escalation are
//! judged against, and every place that shows a deadline shows both when they
//! differ ([`Deadlines::shown`]). Pure: no I/O, no clock.

use super::calendar::WorkCalendar;
use super::plan::{Plan, PlanHeader};
use chrono::{Datelike, NaiveDate, Weekday};
use serde::{Deserialize, Serialize};

/// How a plan's deadlines are judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeadlineRule {
    /// A deadline on a non-working day ends at the end of the next working day.
    #[default]
    CivilCode,
    /// The date as written, whatever day it is.
    AsWritten,
}

impl DeadlineRule {
    pub const NAMES: [&'static str; 2] = ["civil-code", "as-written"];

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "civil-code" => Some(Self::CivilCode),
            "as-written" => Some(Self::AsWritten),
            _ => None,
        }
    }

    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

/// A calendar of weekends only, for plans stored without one.
static WEEKENDS_ONLY: WorkCalendar = WorkCalendar::empty();

/// How one plan's deadlines are judged and shown: its time zone (the day an
/// approval counts for), its rule and its calendar. Cheap to copy.
#[derive(Debug, Clone, Copy)]
pub struct Deadlines<'a> {
    pub tz: chrono_tz::Tz,
    rule: DeadlineRule,
    calendar: &'a WorkCalendar,
}

impl<'a> Deadlines<'a> {
    /// The plan's own.
    pub fn of(header: &'a PlanHeader) -> Self {
        Self {
            tz: header.tz(),
            rule: header.deadline_rule,
            calendar: &header.calendar,
        }
    }

    /// The plan's, or, for a task whose plan is not known, the Civil Code on
    /// weekends alone in Vietnam's time zone.
    pub fn of_plan(plan: Option<&'a Plan>) -> Self {
        plan.and_then(|p| p.header.as_ref())
            .map_or_else(Self::default_vn, Self::of)
    }

    /// The Civil Code, weekends only, Vietnam's zone.
    pub fn default_vn() -> Self {
        Self {
            tz: chrono_tz::Asia::Ho_Chi_Minh,
            rule: DeadlineRule::CivilCode,
            calendar: &WEEKENDS_ONLY,
        }
    }

    /// The day a deadline written as `due` ends on, by the plan's rule.
    pub fn legal(&self, due: NaiveDate) -> NaiveDate {
        match self.rule {
            DeadlineRule::CivilCode => self.calendar.next_on_or_after(due),
            DeadlineRule::AsWritten => due,
        }
    }

    /// Why `due` is not a working day: the holiday's name, else the weekday.
    fn why_off(&self, due: NaiveDate) -> String {
        match self.calendar.holiday_name(due) {
            Some(name) => name.to_string(),
            None => weekday_vi(due.weekday()).to_string(),
        }
    }

    /// The note that goes after a deadline that moves, without parentheses:
    /// "Chủ nhật; theo Điều 148 BLDS: 01/04/2024"; `None` when it does not.
    pub fn moved_note(&self, due: NaiveDate) -> Option<String> {
        let legal = self.legal(due);
        (legal != due).then(|| {
            format!(
                "{}; theo Điều 148 BLDS: {}",
                self.why_off(due),
                super::dates::format_vn(legal)
            )
        })
    }

    /// A deadline as people read it: "31/03/2024", or, when the law moves it,
    /// "31/03/2024 (Chủ nhật; theo Điều 148 BLDS: 01/04/2024)".
    pub fn shown(&self, due: NaiveDate) -> String {
        let written = super::dates::format_vn(due);
        match self.moved_note(due) {
            Some(note) => format!("{written} ({note})"),
            None => written,
        }
    }
}

/// The Vietnamese name of a weekday, as written in a sentence.
fn weekday_vi(d: Weekday) -> &'static str {
    match d {
        Weekday::Mon => "Thứ Hai",
        Weekday::Tue => "Thứ Ba",
        Weekday::Wed => "Thứ Tư",
        Weekday::Thu => "Thứ Năm",
        Weekday::Fri => "Thứ Sáu",
        Weekday::Sat => "Thứ Bảy",
        Weekday::Sun => "Chủ nhật",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn with(rule: DeadlineRule, cal: &WorkCalendar) -> Deadlines<'_> {
        Deadlines {
            tz: chrono_tz::Asia::Ho_Chi_Minh,
            rule,
            calendar: cal,
        }
    }

    #[test]
    fn a_sunday_deadline_ends_on_monday_under_the_civil_code() {
        let cal = WorkCalendar::default();
        let dl = with(DeadlineRule::CivilCode, &cal);
        assert_eq!(dl.legal(d("2024-03-31")), d("2024-04-01"));
        assert_eq!(
            dl.shown(d("2024-03-31")),
            "31/03/2024 (Chủ nhật; theo Điều 148 BLDS: 01/04/2024)"
        );
        assert_eq!(dl.legal(d("2024-03-29")), d("2024-03-29"));
        assert_eq!(dl.shown(d("2024-03-29")), "29/03/2024");
        let as_written = with(DeadlineRule::AsWritten, &cal);
        assert_eq!(as_written.legal(d("2024-03-31")), d("2024-03-31"));
        assert_eq!(as_written.shown(d("2024-03-31")), "31/03/2024");
    }

    #[test]
    fn a_holiday_deadline_names_the_holiday_and_skips_the_whole_break() {
        let cal = WorkCalendar::new(
            [
                (d("2025-04-30"), "Ngày Giải phóng miền Nam".to_string()),
                (d("2025-05-01"), "Ngày Quốc tế Lao động".to_string()),
                (d("2025-05-02"), "Nghỉ bù".to_string()),
            ],
            [],
        );
        let dl = with(DeadlineRule::CivilCode, &cal);
        assert_eq!(dl.legal(d("2025-04-30")), d("2025-05-05"));
        assert_eq!(
            dl.shown(d("2025-04-30")),
            "30/04/2025 (Ngày Giải phóng miền Nam; theo Điều 148 BLDS: 05/05/2025)"
        );
    }

    #[test]
    fn the_rule_reads_from_its_file_name_and_defaults_to_the_civil_code() {
        assert_eq!(DeadlineRule::parse("civil-code"), Some(DeadlineRule::CivilCode));
        assert_eq!(DeadlineRule::parse("as-written"), Some(DeadlineRule::AsWritten));
        assert_eq!(DeadlineRule::parse("civil"), None);
        assert!(DeadlineRule::default().is_default());
        let json = serde_json::to_string(&DeadlineRule::AsWritten).unwrap();
        assert_eq!(json, "\"as-written\"");
    }
}
