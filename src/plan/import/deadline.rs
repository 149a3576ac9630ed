//! Deadline wordings ("Trong quý I/2023", "Trước 31/3 hàng năm",
//! "Thường xuyên", "định kỳ 6 tháng" …) read into milestone schedules of the
//! plan format.

use super::words::fold_keeping;
use regex::Regex;
use std::sync::LazyLock;

/// One schedule table of the plan format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    /// Due on one date (`once`).
    Once {
        day: u32,
        month: u32,
        year: i32,
    },
    MonthEnd {
        month: u32,
        year: i32,
    },
    QuarterEnd {
        quarter: u32,
        year: i32,
    },
    /// Every reporting year, on a day (`yearly` with `due`), or on the plan's
    /// yearly report day (`yearly` without `due`).
    Yearly {
        day: Option<(u32, u32)>,
        key: String,
        title: String,
    },
    /// Progress reported once a year on the plan's report day.
    Ongoing,
    /// The review at the end of the period.
    PeriodReview {
        title: String,
    },
}

impl Schedule {
    fn yearly_on(day: u32, month: u32) -> Self {
        Schedule::Yearly {
            day: Some((day, month)),
            key: format!("han-{day:02}-{month:02}"),
            title: format!("Hạn {day:02}/{month:02} hằng năm"),
        }
    }

    /// The years a schedule names, to size the plan's period.
    pub fn year(&self) -> Option<i32> {
        match self {
            Schedule::Once { year, .. } | Schedule::MonthEnd { year, .. } | Schedule::QuarterEnd { year, .. } => {
                Some(*year)
            }
            _ => None,
        }
    }
}

static RE_DAY_MONTH_YEAR: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(\d{1,2})\s*[/.-]\s*(\d{1,2})\s*[/.-]\s*(\d{4})").expect("valid"));
static RE_DAY_MONTH_YEARLY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:trước|đến|chậm nhất|vào)\s*(?:ngày\s*)?(\d{1,2})\s*(?:/|-|tháng)\s*(\d{1,2})\s*(?:của\s*)?(?:hằng|hàng|mỗi)\s*năm")
        .expect("valid")
});
static RE_DAY_MONTH_YEARLY_IN_TEXT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:trước|đến|chậm nhất|vào)\s*(?:ngày\s*)?(\d{1,2})\s*(?:/|-|tháng)\s*(\d{1,2})\s*(?:của\s*)?(?:hằng|hàng|mỗi)\s*năm")
        .expect("valid")
});
static RE_BARE_YEAR: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(?:đến|trước|trong)?\s*(\d{4})$").expect("valid"));
static RE_MONTH_YEAR: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"tháng\s*(\d{1,2})\s*(?:năm|/|-)\s*(\d{4})").expect("valid"));
static RE_QUARTER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"quý\s*(iv|iii|ii|i|[1-4])\s*(?:năm|/|-)?\s*(\d{4})").expect("valid"));
static RE_HALF_YEAR: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"6 tháng (đầu|cuối) năm\s*(\d{4})").expect("valid"));
static RE_YEAR: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"(?:^|\s)năm\s*(\d{4})").expect("valid"));
static RE_PERIOD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"giai đoạn\s*(\d{4})\s*(?:đến|-|–)?\s*(\d{4})?").expect("valid"));

/// Reporting rhythms, in the words plans use.
type Rhythm = (&'static str, fn() -> Vec<Schedule>);
const RECURRING: [Rhythm; 10] = [
    ("định kỳ 6 tháng", half_yearly),
    ("6 tháng một lần", half_yearly),
    ("6 tháng 1 lần", half_yearly),
    ("sáu tháng", half_yearly),
    ("hằng quý", quarterly),
    ("hàng quý", quarterly),
    ("mỗi quý", quarterly),
    ("định kỳ quý", quarterly),
    ("hằng tháng", monthly),
    ("hàng tháng", monthly),
];

fn half_yearly() -> Vec<Schedule> {
    vec![Schedule::yearly_on(30, 6), Schedule::yearly_on(31, 12)]
}

/// The wording folded for matching: lower case, new tone placement, but
/// keeping '/' and '-' between numbers.
fn prepare(wording: &str) -> String {
    fold_keeping(&wording.replace(['–', '—'], "-"), "/-.")
}

/// Reads a deadline wording. `None` when nothing in it is understood.
pub fn read(wording: &str) -> Option<Vec<Schedule>> {
    let text = prepare(wording);
    let mut out: Vec<Schedule> = Vec::new();
    let mut rest = text.clone();
    let mut take = |re: &Regex, rest: &mut String, f: &mut dyn FnMut(&regex::Captures) -> Option<Schedule>| {
        let mut found = Vec::new();
        for c in re.captures_iter(rest) {
            if let Some(s) = f(&c) {
                found.push((c.get(0).map(|m| m.range()).unwrap_or(0..0), s));
            }
        }
        for (range, s) in found.into_iter().rev() {
            rest.replace_range(range, " ");
            out.push(s);
        }
    };
    take(&RE_DAY_MONTH_YEARLY, &mut rest, &mut |c| {
        let (d, m) = (c[1].parse().ok()?, c[2].parse().ok()?);
        valid_day(d, m, 2024).then(|| Schedule::yearly_on(d, m))
    });
    take(&RE_DAY_MONTH_YEAR, &mut rest, &mut |c| {
        let (d, m, y) = (c[1].parse().ok()?, c[2].parse().ok()?, c[3].parse().ok()?);
        valid_day(d, m, y).then_some(Schedule::Once {
            day: d,
            month: m,
            year: y,
        })
    });
    take(&RE_HALF_YEAR, &mut rest, &mut |c| {
        let y = c[2].parse().ok()?;
        Some(if &c[1] == "đầu" {
            Schedule::Once {
                day: 30,
                month: 6,
                year: y,
            }
        } else {
            Schedule::Once {
                day: 31,
                month: 12,
                year: y,
            }
        })
    });
    take(&RE_QUARTER, &mut rest, &mut |c| {
        let q = match &c[1] {
            "i" | "1" => 1,
            "ii" | "2" => 2,
            "iii" | "3" => 3,
            _ => 4,
        };
        Some(Schedule::QuarterEnd {
            quarter: q,
            year: c[2].parse().ok()?,
        })
    });
    take(&RE_MONTH_YEAR, &mut rest, &mut |c| {
        let m: u32 = c[1].parse().ok()?;
        (1..=12).contains(&m).then_some(Schedule::MonthEnd {
            month: m,
            year: c[2].parse().ok()?,
        })
    });
    let mut recurring_found = false;
    if let Some((phrase, make)) = RECURRING.iter().find(|(phrase, _)| rest.contains(phrase)) {
        rest = rest.replace(phrase, " ");
        out.extend(make());
        recurring_found = true;
    }
    if !recurring_found {
        let ongoing = [
            "phấn đấu đến",
            "thường xuyên",
            "hằng năm",
            "hàng năm",
            "mỗi năm",
            "liên tục",
            "giai đoạn",
            "cả nhiệm kỳ",
            "trong nhiệm kỳ",
        ];
        let ongoing_hit = ongoing.iter().any(|p| rest.contains(p)) || RE_PERIOD.is_match(&rest);
        if ongoing_hit && !out.iter().any(|s| matches!(s, Schedule::Ongoing)) {
            // "Quý I/2023 và hằng năm": the single date and a yearly report.
            if out.is_empty() || !out.iter().all(|s| matches!(s, Schedule::Yearly { .. })) {
                out.push(Schedule::Ongoing);
            }
            rest = RE_PERIOD.replace_all(&rest, " ").into_owned();
        }
    }
    if out.is_empty() {
        // "Năm 2026", "Trong năm 2026": the end of that year.
        for c in RE_YEAR.captures_iter(&rest) {
            if let Ok(y) = c[1].parse() {
                out.push(Schedule::Once {
                    day: 31,
                    month: 12,
                    year: y,
                });
            }
        }
        if out.is_empty() {
            if let Some(c) = RE_BARE_YEAR.captures(rest.trim()) {
                out.push(Schedule::Once {
                    day: 31,
                    month: 12,
                    year: c[1].parse().ok()?,
                });
            }
        }
    }
    (!out.is_empty()).then_some(out)
}

/// The reporting rhythm an item's text names ("Định kỳ 6 tháng báo cáo",
/// "hằng quý báo cáo"): the first one found.
pub fn recurring_in(text: &str) -> Vec<Schedule> {
    let f = prepare(text);
    RECURRING
        .iter()
        .find(|(phrase, _)| f.contains(phrase))
        .map(|(_, make)| make())
        .unwrap_or_default()
}

/// Steps an item's text dates with a year ("sơ kết giữa kỳ vào Quý
/// IV/2027", "trước ngày 30/6/2026", "trong tháng 6 năm 2027").
pub fn dated_in(text: &str) -> Vec<Schedule> {
    let f = prepare(text);
    let mut out = Vec::new();
    for c in RE_QUARTER.captures_iter(&f) {
        if let (Some(q), Ok(y)) = (quarter_of(&c[1]), c[2].parse()) {
            out.push(Schedule::QuarterEnd { quarter: q, year: y });
        }
    }
    // A date with "ngày …" before it names a document ("Nghị quyết …
    // ngày 10/10/2022"), not a step; only "trước/đến/vào/trong" ones count.
    let a_step = |c: &regex::Captures| {
        let before = &f[..c.get(0).map_or(0, |m| m.start())];
        let tail: String = before
            .chars()
            .rev()
            .take(14)
            .collect::<String>()
            .chars()
            .rev()
            .collect();
        ["trước", "đến", "vào", "chậm nhất", "trong"]
            .iter()
            .any(|w| tail.contains(w))
    };
    for c in RE_MONTH_YEAR.captures_iter(&f) {
        if let (true, Ok(m), Ok(y)) = (a_step(&c), c[1].parse::<u32>(), c[2].parse()) {
            if (1..=12).contains(&m) {
                out.push(Schedule::MonthEnd { month: m, year: y });
            }
        }
    }
    for c in RE_DAY_MONTH_YEAR.captures_iter(&f) {
        if !a_step(&c) {
            continue;
        }
        if let (Ok(d), Ok(m), Ok(y)) = (c[1].parse(), c[2].parse(), c[3].parse()) {
            if valid_day(d, m, y) {
                out.push(Schedule::Once {
                    day: d,
                    month: m,
                    year: y,
                });
            }
        }
    }
    out
}

fn quarter_of(numeral: &str) -> Option<u32> {
    match numeral {
        "i" | "1" => Some(1),
        "ii" | "2" => Some(2),
        "iii" | "3" => Some(3),
        "iv" | "4" => Some(4),
        _ => None,
    }
}

/// Yearly days named inside an item's text ("đăng ký …: Trước 31/3 hàng
/// năm"): milestones beside the one the deadline line gives.
pub fn yearly_days_in_text(text: &str) -> Vec<Schedule> {
    let text = prepare(text);
    let mut out: Vec<Schedule> = Vec::new();
    for c in RE_DAY_MONTH_YEARLY_IN_TEXT.captures_iter(&text) {
        if let (Ok(d), Ok(m)) = (c[1].parse(), c[2].parse()) {
            let s = Schedule::yearly_on(d, m);
            if valid_day(d, m, 2024) && !out.contains(&s) {
                out.push(s);
            }
        }
    }
    out
}

fn quarterly() -> Vec<Schedule> {
    vec![
        Schedule::yearly_on(31, 3),
        Schedule::yearly_on(30, 6),
        Schedule::yearly_on(30, 9),
        Schedule::yearly_on(31, 12),
    ]
}

fn monthly() -> Vec<Schedule> {
    (1..=12u32)
        .map(|m| {
            let last = match m {
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            Schedule::yearly_on(last, m)
        })
        .collect()
}

fn valid_day(d: u32, m: u32, y: i32) -> bool {
    chrono::NaiveDate::from_ymd_opt(y, m, d).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn once(day: u32, month: u32, year: i32) -> Schedule {
        Schedule::Once { day, month, year }
    }

    #[test]
    fn wordings_of_the_shipped_plan() {
        assert_eq!(
            read("Trong tháng 01 năm 2023."),
            Some(vec![Schedule::MonthEnd { month: 1, year: 2023 }])
        );
        assert_eq!(
            read("Trong quý I/2023. "),
            Some(vec![Schedule::QuarterEnd { quarter: 1, year: 2023 }])
        );
        assert_eq!(read("Thường xuyên."), Some(vec![Schedule::Ongoing]));
        assert_eq!(read(" Thường xuyên "), Some(vec![Schedule::Ongoing]));
        assert_eq!(
            read("Phối hợp theo giai đoạn hoặc thường xuyên hàng năm."),
            Some(vec![Schedule::Ongoing])
        );
        assert_eq!(read("Trước 31/3 hàng năm"), Some(vec![Schedule::yearly_on(31, 3)]));
    }

    #[test]
    fn wordings_beyond_the_shipped_plan() {
        assert_eq!(
            read("Quý III/2025"),
            Some(vec![Schedule::QuarterEnd { quarter: 3, year: 2025 }])
        );
        assert_eq!(read("6 tháng đầu năm 2026"), Some(vec![once(30, 6, 2026)]));
        assert_eq!(read("Năm 2026"), Some(vec![once(31, 12, 2026)]));
        assert_eq!(read("Trước ngày 15/4 hằng năm"), Some(vec![Schedule::yearly_on(15, 4)]));
        assert_eq!(read("Giai đoạn 2025 - 2030"), Some(vec![Schedule::Ongoing]));
        assert_eq!(
            read("Trong tháng 6 năm 2025"),
            Some(vec![Schedule::MonthEnd { month: 6, year: 2025 }])
        );
        assert_eq!(
            read("Tháng 6/2025"),
            Some(vec![Schedule::MonthEnd { month: 6, year: 2025 }])
        );
        assert_eq!(read("trước ngày 30/6/2025"), Some(vec![once(30, 6, 2025)]));
        assert_eq!(
            read("định kỳ 6 tháng"),
            Some(vec![Schedule::yearly_on(30, 6), Schedule::yearly_on(31, 12)])
        );
        assert_eq!(read("Hằng quý").map(|v| v.len()), Some(4));
        assert_eq!(
            read("Trong quý IV/2025"),
            Some(vec![Schedule::QuarterEnd { quarter: 4, year: 2025 }])
        );
        assert_eq!(read("Hằng năm"), Some(vec![Schedule::Ongoing]));
        assert_eq!(read("không rõ"), None);
    }

    #[test]
    fn yearly_days_named_in_an_item() {
        let text = "Xây dựng, nhân rộng ít nhất 01 mô hình “Dân vận khéo”/năm (đăng ký xây dựng, nhân rộng mô hình: Trước 31/3 hàng năm và tổng kết, đánh giá hàng năm).";
        assert_eq!(yearly_days_in_text(text), vec![Schedule::yearly_on(31, 3)]);
    }
}
