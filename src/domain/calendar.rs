//! Placeholder until the full working-day calendar lands.
use chrono::{Datelike, NaiveDate, Weekday};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct WorkCalendar {
    holidays: BTreeMap<NaiveDate, String>,
    workdays: BTreeMap<NaiveDate, String>,
}

impl WorkCalendar {
    pub fn new(
        holidays: impl IntoIterator<Item = (NaiveDate, String)>,
        workdays: impl IntoIterator<Item = (NaiveDate, String)>,
    ) -> Self {
        Self {
            holidays: holidays.into_iter().collect(),
            workdays: workdays.into_iter().collect(),
        }
    }

    pub fn is_working_day(&self, d: NaiveDate) -> bool {
        if self.workdays.contains_key(&d) {
            return true;
        }
        !self.holidays.contains_key(&d) && !matches!(d.weekday(), Weekday::Sat | Weekday::Sun)
    }

    pub fn on_or_before(&self, d: NaiveDate) -> NaiveDate {
        let mut x = d;
        for _ in 0..370 {
            if self.is_working_day(x) {
                return x;
            }
            x = x.pred_opt().unwrap_or(x);
        }
        d
    }

    pub fn next_on_or_after(&self, d: NaiveDate) -> NaiveDate {
        let mut x = d;
        for _ in 0..370 {
            if self.is_working_day(x) {
                return x;
            }
            x = x.succ_opt().unwrap_or(x);
        }
        d
    }

    pub fn holiday_name(&self, d: NaiveDate) -> Option<&str> {
        self.holidays.get(&d).map(String::as_str)
    }
}
