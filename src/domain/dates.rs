//! Calendar values of the plan: dates, days of the year, months, and the
//! rule that a deadline is the end of its local day.

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DateError {
    #[error("ngày không đúng định dạng: {0:?} (dùng YYYY-MM-DD hoặc DD/MM/YYYY)")]
    Format(String),
    /// Where only `YYYY-MM-DD` is accepted (the API): the hint names no other form.
    #[error("ngày không đúng định dạng: {0:?} (dùng YYYY-MM-DD, ví dụ 2024-03-31)")]
    IsoFormat(String),
    #[error("ngày không tồn tại: {0:?}")]
    Impossible(String),
    #[error("ngày/tháng không đúng định dạng: {0:?} (dùng DD/MM, ví dụ 31/03)")]
    DayMonthFormat(String),
    #[error("tháng không đúng định dạng: {0:?} (dùng MM/YYYY, ví dụ 01/2023)")]
    MonthFormat(String),
}

fn numbers(s: &str, sep: char) -> Option<Vec<u32>> {
    s.split(sep)
        .map(|p| {
            if p.is_empty() || p.len() > 4 {
                None
            } else {
                p.parse().ok()
            }
        })
        .collect()
}

/// Parses `YYYY-MM-DD` or `DD/MM/YYYY`; 31/02 is reported as impossible.
pub fn parse_date(s: &str) -> Result<NaiveDate, DateError> {
    let t = s.trim();
    let (y, m, d) = match (numbers(t, '-'), numbers(t, '/')) {
        (Some(p), _) if p.len() == 3 && t.len() == 10 => (p[0], p[1], p[2]),
        (_, Some(p)) if p.len() == 3 && p[2] >= 1000 => (p[2], p[1], p[0]),
        _ => return Err(DateError::Format(s.to_string())),
    };
    NaiveDate::from_ymd_opt(y as i32, m, d).ok_or_else(|| DateError::Impossible(s.to_string()))
}

/// A date exactly as `YYYY-MM-DD` (RFC 3339 `full-date`), as the API
/// declares it: nothing around it, two-digit month and day.
pub fn parse_iso_date(s: &str) -> Result<NaiveDate, DateError> {
    let b = s.as_bytes();
    let shaped = b.len() == 10
        && b.iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        });
    if !shaped {
        return Err(DateError::IsoFormat(s.to_string()));
    }
    parse_date(s)
}

/// Formats a date the Vietnamese way, `dd/mm/yyyy`.
pub fn format_vn(date: NaiveDate) -> String {
    date.format("%d/%m/%Y").to_string()
}

/// A day of the year, `DD/MM`, for yearly deadlines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayMonth {
    pub day: u32,
    pub month: u32,
}

impl DayMonth {
    pub fn parse(s: &str) -> Result<Self, DateError> {
        let p = numbers(s.trim(), '/')
            .filter(|p| p.len() == 2)
            .ok_or_else(|| DateError::DayMonthFormat(s.to_string()))?;
        let (day, month) = (p[0], p[1]);
        // 2024 is a leap year, so 29/02 passes here and fails in the years that lack it.
        if NaiveDate::from_ymd_opt(2024, month, day).is_none() {
            return Err(DateError::Impossible(s.to_string()));
        }
        Ok(Self { day, month })
    }

    pub fn in_year(self, year: i32) -> Option<NaiveDate> {
        NaiveDate::from_ymd_opt(year, self.month, self.day)
    }
}

impl fmt::Display for DayMonth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}/{:02}", self.day, self.month)
    }
}

/// Parses `MM/YYYY` or `YYYY-MM` and returns the last day of that month.
pub fn parse_month_end(s: &str) -> Result<NaiveDate, DateError> {
    let t = s.trim();
    let (y, m) = match (numbers(t, '/'), numbers(t, '-')) {
        (Some(p), _) if p.len() == 2 => (p[1], p[0]),
        (_, Some(p)) if p.len() == 2 => (p[0], p[1]),
        _ => return Err(DateError::MonthFormat(s.to_string())),
    };
    if !(1..=12).contains(&m) || y < 1000 {
        return Err(DateError::MonthFormat(s.to_string()));
    }
    Ok(last_day_of_month(y as i32, m))
}

pub fn last_day_of_month(year: i32, month: u32) -> NaiveDate {
    let (ny, nm) = if month == 12 { (year + 1, 1) } else { (year, month + 1) };
    NaiveDate::from_ymd_opt(ny, nm, 1)
        .expect("first of a month exists")
        .pred_opt()
        .expect("a day before")
}

/// The last day of quarter `q` (1–4) of `year`.
pub fn quarter_end(year: i32, quarter: u32) -> Option<NaiveDate> {
    (1..=4).contains(&quarter).then(|| last_day_of_month(year, quarter * 3))
}

/// The instant a deadline passes: the end of its local day in `tz`.
pub fn deadline_instant(due: NaiveDate, tz: Tz) -> DateTime<Utc> {
    let next = due
        .succ_opt()
        .expect("dates in range")
        .and_hms_opt(0, 0, 0)
        .expect("midnight");
    tz.from_local_datetime(&next)
        .earliest()
        .expect("midnight exists in the plan zone")
        .with_timezone(&Utc)
}

/// The local calendar date of an instant in `tz`.
pub fn local_date(at: DateTime<Utc>, tz: Tz) -> NaiveDate {
    at.with_timezone(&tz).date_naive()
}

/// Whole days from `today` to `due` (negative when overdue).
pub fn days_until(today: NaiveDate, due: NaiveDate) -> i64 {
    (due - today).num_days()
}

pub fn year_of(date: NaiveDate) -> i32 {
    date.year()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_date_spellings_and_rejects_impossible_dates() {
        let d = NaiveDate::from_ymd_opt(2023, 3, 31).unwrap();
        assert_eq!(parse_date("2023-03-31").unwrap(), d);
        assert_eq!(parse_date("31/03/2023").unwrap(), d);
        assert_eq!(
            parse_date("31/02/2023"),
            Err(DateError::Impossible("31/02/2023".into()))
        );
        assert_eq!(
            parse_date("2023-02-29"),
            Err(DateError::Impossible("2023-02-29".into()))
        );
        assert!(matches!(parse_date("March 31"), Err(DateError::Format(_))));
    }

    #[test]
    fn day_month_checks_the_calendar() {
        let dm = DayMonth::parse("31/03").unwrap();
        assert_eq!(dm.in_year(2025), NaiveDate::from_ymd_opt(2025, 3, 31));
        assert!(matches!(DayMonth::parse("31/04"), Err(DateError::Impossible(_))));
        assert_eq!(DayMonth::parse("29/02").unwrap().in_year(2023), None);
    }

    #[test]
    fn month_and_quarter_ends() {
        assert_eq!(
            parse_month_end("01/2023").unwrap(),
            NaiveDate::from_ymd_opt(2023, 1, 31).unwrap()
        );
        assert_eq!(
            parse_month_end("2024-02").unwrap(),
            NaiveDate::from_ymd_opt(2024, 2, 29).unwrap()
        );
        assert_eq!(quarter_end(2023, 1), NaiveDate::from_ymd_opt(2023, 3, 31));
        assert_eq!(quarter_end(2023, 4), NaiveDate::from_ymd_opt(2023, 12, 31));
        assert_eq!(quarter_end(2023, 5), None);
    }

    #[test]
    fn a_deadline_is_the_end_of_the_local_day() {
        let tz: Tz = "Asia/Ho_Chi_Minh".parse().unwrap();
        let due = NaiveDate::from_ymd_opt(2024, 3, 31).unwrap();
        // Midnight in Hanoi is 17:00 UTC the day before.
        assert_eq!(deadline_instant(due, tz).to_rfc3339(), "2024-03-31T17:00:00+00:00");
    }
}
