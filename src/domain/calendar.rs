//! Working days in Vietnam: weekends, public holidays (ngày nghỉ lễ, Tết) and
//! the Saturdays worked in exchange for a bridge day (ngày làm bù).
//!
//! A reminder that falls on a non-working day goes out on the previous working
//! day ([`WorkCalendar::on_or_before`]); a period that ends on a non-working day
//! ends on the next working day (Bộ luật Dân sự 2015, Điều 147–148;
//! [`WorkCalendar::next_on_or_after`]). Pure: no I/O, no clock.

use chrono::{Datelike, NaiveDate, Weekday};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// How far the day-by-day searches walk before giving up. A calendar that
/// marks a whole year as holiday is a configuration error, not a reason to
/// loop forever; the searches then return the date they were given.
const MAX_STEPS: u32 = 370;

/// The working-day calendar of one country's public sector.
///
/// A date listed in `workdays` is a working day even on a weekend (a làm-bù
/// Saturday); otherwise a date listed in `holidays` is not; otherwise Monday
/// to Friday are working days. Each entry carries its name for display.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct WorkCalendar {
    holidays: BTreeMap<NaiveDate, String>,
    workdays: BTreeMap<NaiveDate, String>,
    /// Entries of either list not yet confirmed by the year's official
    /// notice (absent in plans stored before this field).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    estimates: BTreeSet<NaiveDate>,
}

impl WorkCalendar {
    /// No holidays and no make-up days: weekends only.
    pub const fn empty() -> Self {
        Self {
            holidays: BTreeMap::new(),
            workdays: BTreeMap::new(),
            estimates: BTreeSet::new(),
        }
    }

    /// Builds a calendar from its holidays and its make-up working days. A date
    /// listed twice in the same list keeps its last name.
    pub fn new(
        holidays: impl IntoIterator<Item = (NaiveDate, String)>,
        workdays: impl IntoIterator<Item = (NaiveDate, String)>,
    ) -> Self {
        Self {
            holidays: holidays.into_iter().collect(),
            workdays: workdays.into_iter().collect(),
            estimates: BTreeSet::new(),
        }
    }

    /// The same calendar with these entries marked as estimates.
    pub fn with_estimates(mut self, dates: impl IntoIterator<Item = NaiveDate>) -> Self {
        self.estimates = dates.into_iter().collect();
        self
    }

    /// The entries still marked as estimates, in date order.
    pub fn estimates(&self) -> impl Iterator<Item = NaiveDate> + '_ {
        self.estimates.iter().copied()
    }

    /// The estimates of the years of `first..=last` that have begun by
    /// `today`: days to confirm against the official notice now.
    pub fn estimates_due(&self, first: i32, last: i32, today: NaiveDate) -> Vec<NaiveDate> {
        self.estimates
            .iter()
            .copied()
            .filter(|d| d.year() >= first && d.year() <= last && d.year() <= today.year())
            .collect()
    }

    /// Whether civil servants work on `d`: a listed make-up day always, a listed
    /// holiday never, otherwise Monday to Friday.
    pub fn is_working_day(&self, d: NaiveDate) -> bool {
        if self.workdays.contains_key(&d) {
            return true;
        }
        if self.holidays.contains_key(&d) {
            return false;
        }
        !matches!(d.weekday(), Weekday::Sat | Weekday::Sun)
    }

    /// `d` if it is a working day, else the nearest earlier working day: the
    /// day a reminder due on `d` goes out. Returns `d` itself when no working
    /// day is found within [`MAX_STEPS`] days.
    pub fn on_or_before(&self, d: NaiveDate) -> NaiveDate {
        self.search(d, NaiveDate::pred_opt)
    }

    /// `d` if it is a working day, else the nearest later working day: a period
    /// ending on a non-working day ends on the next working day (Bộ luật Dân sự
    /// 2015, Điều 148). Returns `d` itself when no working day is found within
    /// [`MAX_STEPS`] days.
    pub fn next_on_or_after(&self, d: NaiveDate) -> NaiveDate {
        self.search(d, NaiveDate::succ_opt)
    }

    /// The name of the holiday listed on `d`, if any. Plain weekends have none.
    pub fn holiday_name(&self, d: NaiveDate) -> Option<&str> {
        self.holidays.get(&d).map(String::as_str)
    }

    /// The name of the make-up working day listed on `d`, if any.
    pub fn workday_name(&self, d: NaiveDate) -> Option<&str> {
        self.workdays.get(&d).map(String::as_str)
    }

    /// The listed holidays, in date order.
    pub fn holidays(&self) -> impl Iterator<Item = (NaiveDate, &str)> + '_ {
        self.holidays.iter().map(|(d, n)| (*d, n.as_str()))
    }

    /// The listed make-up working days, in date order.
    pub fn workdays(&self) -> impl Iterator<Item = (NaiveDate, &str)> + '_ {
        self.workdays.iter().map(|(d, n)| (*d, n.as_str()))
    }

    /// Walks from `start` with `step` (one day back or forward) to the first
    /// working day, giving up after [`MAX_STEPS`] steps or at the end of
    /// chrono's range.
    fn search(&self, start: NaiveDate, step: fn(&NaiveDate) -> Option<NaiveDate>) -> NaiveDate {
        let mut d = start;
        for _ in 0..=MAX_STEPS {
            if self.is_working_day(d) {
                return d;
            }
            match step(&d) {
                Some(next) => d = next,
                None => break,
            }
        }
        start
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn named(days: &[(NaiveDate, &str)]) -> Vec<(NaiveDate, String)> {
        days.iter().map(|(d, n)| (*d, n.to_string())).collect()
    }

    /// Tết Giáp Thìn 2024 (off Thursday 08/02 to Wednesday 14/02) and the
    /// 30/4–1/5 bridge of 2024 (Monday 29/04 off, Saturday 04/05 worked).
    fn vn_2024() -> WorkCalendar {
        let tet = "Tết Nguyên đán Giáp Thìn";
        WorkCalendar::new(
            named(&[
                (date(2024, 1, 1), "Tết Dương lịch"),
                (date(2024, 2, 8), tet),
                (date(2024, 2, 9), tet),
                (date(2024, 2, 12), tet),
                (date(2024, 2, 13), tet),
                (date(2024, 2, 14), tet),
                (date(2024, 4, 29), "Nghỉ hoán đổi (làm bù thứ Bảy 04/5/2024)"),
                (date(2024, 4, 30), "Ngày Chiến thắng"),
                (date(2024, 5, 1), "Ngày Quốc tế Lao động"),
            ]),
            named(&[(date(2024, 5, 4), "Làm bù cho ngày nghỉ 29/4/2024")]),
        )
    }

    #[test]
    fn default_calendar_has_weekends_only() {
        let cal = WorkCalendar::default();
        // 2024-06-03 is a Monday.
        for (offset, working) in [true, true, true, true, true, false, false].into_iter().enumerate() {
            let d = date(2024, 6, 3 + offset as u32);
            assert_eq!(cal.is_working_day(d), working, "{d}");
        }
        assert!(cal.is_working_day(date(2024, 1, 1)), "no holidays without a list");
        assert_eq!(cal.holiday_name(date(2024, 6, 8)), None);
    }

    #[test]
    fn weekend_moves_back_to_friday_and_forward_to_monday() {
        let cal = WorkCalendar::default();
        let (fri, sat, sun, mon) = (date(2024, 6, 7), date(2024, 6, 8), date(2024, 6, 9), date(2024, 6, 10));
        assert_eq!(cal.on_or_before(sat), fri);
        assert_eq!(cal.on_or_before(sun), fri);
        assert_eq!(cal.on_or_before(fri), fri);
        assert_eq!(cal.next_on_or_after(sat), mon);
        assert_eq!(cal.next_on_or_after(sun), mon);
        assert_eq!(cal.next_on_or_after(mon), mon);
    }

    #[test]
    fn holiday_on_a_weekday_is_not_working() {
        let cal = vn_2024();
        let hung_kings = date(2024, 4, 18); // Thursday, not in this calendar
        assert!(cal.is_working_day(hung_kings));
        let cal = WorkCalendar::new(named(&[(hung_kings, "Giỗ Tổ Hùng Vương")]), Vec::new());
        assert!(!cal.is_working_day(hung_kings));
        assert_eq!(cal.holiday_name(hung_kings), Some("Giỗ Tổ Hùng Vương"));
        assert_eq!(cal.on_or_before(hung_kings), date(2024, 4, 17));
        assert_eq!(cal.next_on_or_after(hung_kings), date(2024, 4, 19));
    }

    #[test]
    fn new_year_monday_goes_back_to_the_previous_friday() {
        let cal = vn_2024();
        assert_eq!(cal.holiday_name(date(2024, 1, 1)), Some("Tết Dương lịch"));
        assert_eq!(cal.on_or_before(date(2024, 1, 1)), date(2023, 12, 29));
        assert_eq!(cal.next_on_or_after(date(2023, 12, 30)), date(2024, 1, 2));
    }

    #[test]
    fn make_up_saturday_is_a_working_day() {
        let cal = vn_2024();
        let sat = date(2024, 5, 4);
        assert!(cal.is_working_day(sat));
        assert_eq!(cal.workday_name(sat), Some("Làm bù cho ngày nghỉ 29/4/2024"));
        assert_eq!(cal.holiday_name(sat), None);
        assert_eq!(cal.on_or_before(sat), sat);
        // Sunday 05/05 goes back to the make-up Saturday, not to Friday 03/05.
        assert_eq!(cal.on_or_before(date(2024, 5, 5)), sat);
        assert_eq!(cal.next_on_or_after(sat), sat);
        // An ordinary Saturday stays off.
        assert!(!cal.is_working_day(date(2024, 5, 11)));
    }

    #[test]
    fn workday_wins_over_a_holiday_listed_on_the_same_date() {
        let d = date(2024, 5, 4);
        let cal = WorkCalendar::new(named(&[(d, "nhầm")]), named(&[(d, "Làm bù")]));
        assert!(cal.is_working_day(d));
    }

    #[test]
    fn bridge_before_30_april_goes_back_across_the_weekend() {
        let cal = vn_2024();
        // 27/04–01/05 off: the last working day before is Friday 26/04.
        for day in [
            date(2024, 4, 27),
            date(2024, 4, 29),
            date(2024, 4, 30),
            date(2024, 5, 1),
        ] {
            assert_eq!(cal.on_or_before(day), date(2024, 4, 26), "{day}");
            assert_eq!(cal.next_on_or_after(day), date(2024, 5, 2), "{day}");
        }
    }

    #[test]
    fn inside_tet_goes_back_to_the_last_working_day_before_tet() {
        let cal = vn_2024();
        // Off from Thursday 08/02 through Wednesday 14/02 (the weekend included).
        let last_before = date(2024, 2, 7);
        for day in 8..=14 {
            let d = date(2024, 2, day);
            assert!(!cal.is_working_day(d), "{d}");
            assert_eq!(cal.on_or_before(d), last_before, "{d}");
        }
        assert_eq!(cal.holiday_name(date(2024, 2, 12)), Some("Tết Nguyên đán Giáp Thìn"));
        // The Saturday and Sunday inside the block are off but not listed.
        assert_eq!(cal.holiday_name(date(2024, 2, 10)), None);
        // The first working day after Tết is its own reminder day.
        assert_eq!(cal.on_or_before(date(2024, 2, 15)), date(2024, 2, 15));
    }

    #[test]
    fn next_on_or_after_crosses_tet() {
        let cal = vn_2024();
        let first_after = date(2024, 2, 15);
        for day in 8..=14 {
            let d = date(2024, 2, day);
            assert_eq!(cal.next_on_or_after(d), first_after, "{d}");
        }
        assert_eq!(cal.next_on_or_after(date(2024, 2, 7)), date(2024, 2, 7));
    }

    #[test]
    fn all_holiday_calendar_returns_the_input() {
        // Every day from 2023-01-01 to 2025-09-26: more than MAX_STEPS either side of `d`.
        let start = date(2023, 1, 1);
        let every_day = (0..1000).map(|i| (start + chrono::Days::new(i), "nghỉ".to_string()));
        let cal = WorkCalendar::new(every_day, Vec::new());
        let d = date(2024, 6, 15);
        assert!(!cal.is_working_day(d));
        assert_eq!(cal.on_or_before(d), d);
        assert_eq!(cal.next_on_or_after(d), d);
    }

    #[test]
    fn search_stops_at_the_ends_of_the_date_range() {
        let cal = WorkCalendar::new(named(&[(NaiveDate::MIN, "x"), (NaiveDate::MAX, "y")]), Vec::new());
        assert_eq!(cal.on_or_before(NaiveDate::MIN), NaiveDate::MIN);
        assert_eq!(cal.next_on_or_after(NaiveDate::MAX), NaiveDate::MAX);
    }

    #[test]
    fn iterators_are_in_date_order() {
        let cal = vn_2024();
        let days: Vec<NaiveDate> = cal.holidays().map(|(d, _)| d).collect();
        let mut sorted = days.clone();
        sorted.sort();
        assert_eq!(days, sorted);
        assert_eq!(days.len(), 9);
        assert_eq!(
            cal.workdays().collect::<Vec<_>>(),
            vec![(date(2024, 5, 4), "Làm bù cho ngày nghỉ 29/4/2024")]
        );
    }

    #[test]
    fn serde_round_trip() {
        let cal = vn_2024();
        let json = serde_json::to_string(&cal).unwrap();
        assert!(
            json.contains("\"2024-05-04\":\"Làm bù cho ngày nghỉ 29/4/2024\""),
            "{json}"
        );
        let back: WorkCalendar = serde_json::from_str(&json).unwrap();
        assert_eq!(back, cal);
        assert_eq!(WorkCalendar::default(), WorkCalendar::new(Vec::new(), Vec::new()));
    }

    #[test]
    fn estimates_are_due_once_their_year_has_begun() {
        let cal = WorkCalendar::new([(date(2026, 9, 1), "Quốc khánh".to_string())], [])
            .with_estimates([date(2026, 9, 1), date(2027, 9, 3)]);
        assert!(cal.estimates_due(2022, 2026, date(2025, 12, 31)).is_empty());
        assert_eq!(cal.estimates_due(2022, 2026, date(2026, 1, 1)), [date(2026, 9, 1)]);
        // 2027 is outside the period, however late it is.
        assert_eq!(cal.estimates_due(2022, 2026, date(2027, 6, 1)), [date(2026, 9, 1)]);
        // A calendar stored before the field existed reads with none.
        let old: WorkCalendar = serde_json::from_str(r#"{"holidays":{},"workdays":{}}"#).unwrap();
        assert_eq!(old.estimates().count(), 0);
        assert!(!serde_json::to_string(&old).unwrap().contains("estimates"));
    }
}
