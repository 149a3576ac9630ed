//! KPI targets read from an item's text: "đạt từ 85% trở lên", "trên 65%",
//! "ít nhất 01 mô hình", "khoảng 92%", "từ 70% đến 75%", "từ 3-4m2",
//! "ít nhất 10.000 ngày công", with a baseline "(năm 2021 đạt khoảng 2,5m2)"
//! in the text or in a footnote.

use super::words::{fold, number, slug};
use regex::Regex;
use std::sync::LazyLock;

#[derive(Debug, Clone, PartialEq)]
pub struct Kpi {
    pub key: String,
    pub label: String,
    /// A comparator name of the plan format (`at_least`, `between` …).
    pub comparator: &'static str,
    pub value: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub unit: String,
    pub per_year: bool,
    pub baseline: Option<(f64, i32)>,
    /// The words the target was read from, for the report.
    pub quote: String,
}

const NUM: &str = r"\d{1,3}(?:\.\d{3})+|\d+(?:[.,]\d+)?";
/// Units counted in whole numbers, and others a target is written in.
const UNITS: [&str; 50] = [
    "mô hình",
    "chính sách",
    "ngày công",
    "lượt người",
    "lượt",
    "người",
    "hộ",
    "cuộc",
    "văn bản",
    "hội nghị",
    "công trình",
    "lớp",
    "tin bài",
    "tin",
    "bài",
    "km",
    "ha",
    "tỷ đồng",
    "triệu đồng",
    "xã",
    "thôn",
    "sản phẩm",
    "câu lạc bộ",
    "tổ",
    "đợt",
    "buổi",
    "cơ sở",
    "doanh nghiệp",
    "hợp tác xã",
    "điểm",
    "tuyến",
    "chương trình",
    "đề án",
    "kế hoạch",
    "phường",
    "trường",
    "học sinh",
    "lao động",
    "việc làm",
    "m2",
    "lượt khách",
    "khách",
    "ngày",
    "giường",
    "buồng",
    "hội viên",
    "đoàn viên",
    "đảng viên",
    "hồ sơ",
    "thủ tục",
];

static RE_QUANTITY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"(?i)(?P<a>{NUM})\s*(?P<ua>%|m2|m²)?\s*(?:(?:-|–|—|đến|tới)\s*(?P<b>{NUM}))?\s*(?P<u>%|m2|m²)?"
    ))
    .expect("valid")
});
static RE_BASELINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"(?i)năm\s+(?P<y>(?:19|20)\d\d)\s*[^.;()\d]{{0,90}}?(?:đạt|là|có|ở mức|được)\s*(?:khoảng|gần|trên|dưới|xấp xỉ)?\s*(?P<v>{NUM})\s*(?P<u>%|m2|m²)?"
    ))
    .expect("valid")
});

/// Words right before a number that make it a target, with the comparator.
const BEFORE: [(&str, &str); 22] = [
    ("không dưới", "at_least"),
    ("không thấp hơn", "at_least"),
    ("không ít hơn", "at_least"),
    ("tối thiểu", "at_least"),
    ("ít nhất", "at_least"),
    ("từ", "at_least"),
    ("không vượt quá", "at_most"),
    ("không quá", "at_most"),
    ("tối đa", "at_most"),
    ("không cao hơn", "at_most"),
    ("không nhiều hơn", "at_most"),
    ("thấp hơn", "less_than"),
    ("ít hơn", "less_than"),
    ("dưới", "less_than"),
    ("cao hơn", "more_than"),
    ("nhiều hơn", "more_than"),
    ("vượt", "more_than"),
    ("trên", "more_than"),
    ("hơn", "more_than"),
    ("khoảng", "about"),
    ("xấp xỉ", "about"),
    ("gần", "about"),
];

/// Comparators that make the number after them a target whatever its unit.
fn firm_comparator(words: &str) -> bool {
    const FIRM: [&str; 9] = [
        "ít nhất",
        "tối thiểu",
        "không dưới",
        "không ít hơn",
        "khoảng",
        "xấp xỉ",
        "tối đa",
        "không quá",
        "trên",
    ];
    FIRM.iter().any(|f| words == *f || words.ends_with(&format!(" {f}")))
}

/// Units that count time or age, never a target's.
const TIME_WORDS: [&str; 8] = ["tuổi", "năm", "tháng", "tuần", "giờ", "phút", "lần", "kỳ"];

/// Words right before a number that make it something else (a document
/// number, a date, an ordinal).
const NOT_A_TARGET: [&str; 22] = [
    "số",
    "đề án",
    "nghị quyết",
    "quyết định",
    "chỉ thị",
    "kế hoạch",
    "kết luận",
    "thông tư",
    "nghị định",
    "ngày",
    "tháng",
    "quý",
    "năm",
    "khóa",
    "khoá",
    "lần thứ",
    "mức độ",
    "điều",
    "khoản",
    "giai đoạn",
    "luật",
    "hướng dẫn",
];

/// The KPI targets of an item. `footnotes` may hold the baseline.
pub fn read(text: &str, footnotes: &[String]) -> Vec<Kpi> {
    let mut out = Vec::new();
    for clause in clauses(text) {
        read_clause(&clause, &mut out);
    }
    let baselines: Vec<(f64, i32, Option<String>)> = footnotes
        .iter()
        .flat_map(|f| baselines_in(f))
        .map(|(_, v, y, u)| (v, y, u))
        .collect();
    for (value, year, unit) in baselines {
        let target = out
            .iter_mut()
            .filter(|k| k.baseline.is_none())
            .rev()
            .find(|k| unit.as_deref().is_none_or(|u| k.unit.starts_with(u)));
        if let Some(k) = target {
            k.baseline = Some((value, year));
        }
    }
    let mut keys: Vec<String> = Vec::new();
    for k in &mut out {
        let base = {
            let s = slug(&strip_numbers(&k.label), 40);
            if s.is_empty() {
                "chi-tieu".to_string()
            } else {
                s
            }
        };
        let mut key = base.clone();
        let mut n = 2;
        while keys.contains(&key) {
            key = format!("{base}-{n}");
            n += 1;
        }
        keys.push(key.clone());
        k.key = key;
    }
    out
}

fn strip_numbers(s: &str) -> String {
    s.chars().filter(|c| !c.is_ascii_digit() && *c != '%').collect()
}

/// Sentences and clauses: a target is read inside one. Splits on ". " and
/// "; " (never inside a number such as "0.4" or "10.000").
fn clauses(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let chars: Vec<char> = text.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        let next = chars.get(i + 1).copied().unwrap_or(' ');
        if (*c == '.' || *c == ';') && next.is_whitespace() {
            out.push(std::mem::take(&mut current));
        } else {
            current.push(*c);
        }
    }
    out.push(current);
    out.into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Baselines "năm 2021 đạt khoảng 2,5m2": (byte range, value, year, unit).
fn baselines_in(text: &str) -> Vec<(std::ops::Range<usize>, f64, i32, Option<String>)> {
    RE_BASELINE
        .captures_iter(text)
        .filter_map(|c| {
            let value = number(&c["v"])?;
            let year = c["y"].parse().ok()?;
            let unit = c.name("u").map(|u| {
                if u.as_str() == "%" {
                    "%".to_string()
                } else {
                    "m2".to_string()
                }
            });
            Some((c.get(0)?.range(), value, year, unit))
        })
        .collect()
}

fn read_clause(clause: &str, out: &mut Vec<Kpi>) {
    let mut text = clause.to_string();
    let mut baselines = Vec::new();
    // A baseline in the text is in parentheses: "(năm 2020 đạt 45%)"; a
    // year outside them is the target's own ("đến năm 2025 đạt 80%").
    for (open, _) in clause.match_indices('(') {
        let Some(close) = clause[open..].find(')').map(|i| open + i) else {
            continue;
        };
        for (range, value, year, unit) in baselines_in(&clause[open..close]) {
            let range = open + range.start..open + range.end;
            baselines.push((value, year, unit));
            text.replace_range(range.clone(), &" ".repeat(range.len()));
        }
    }
    let folded_clause = fold(clause);
    let per_year = ["hằng năm", "hàng năm", "mỗi năm", "một năm", "/năm", "trong năm"]
        .iter()
        .any(|p| folded_clause.contains(&fold(p)) || clause.to_lowercase().contains(p));
    let start_len = out.len();
    for c in RE_QUANTITY.captures_iter(&text) {
        let Some(whole) = c.get(0) else { continue };
        let a = &c["a"];
        // A number glued to letters or other digits ("6 không" is read below;
        // "mức độ 3" and "04/2022" are not targets).
        let before_text = &text[..whole.start()];
        let after_text = &text[whole.end()..];
        if before_text.ends_with(|ch: char| ch.is_alphanumeric() || ch == '/' || ch == '(' || ch == '.' || ch == ',')
            || (after_text.starts_with('/') && after_text[1..].starts_with(|ch: char| ch.is_ascii_digit()))
            || after_text.starts_with(')')
        {
            continue;
        }
        // Only the words of this phrase: "Hằng năm, 100% …" is not "năm 100".
        let phrase_start = before_text.rfind([',', ':', ';']).map(|i| i + 1).unwrap_or(0);
        let before = fold(&before_text[phrase_start..]);
        let before_words: Vec<&str> = before.split(' ').collect();
        let tail = |n: usize| before_words[before_words.len().saturating_sub(n)..].join(" ");
        if NOT_A_TARGET.iter().any(|w| {
            let n = w.split(' ').count();
            tail(n) == *w
        }) {
            continue;
        }
        let unit_symbol = c.name("u").or(c.name("ua")).map(|m| m.as_str());
        let after = fold(after_text);
        let unit = match unit_symbol {
            Some("%") => "%".to_string(),
            Some(_) => {
                if after.starts_with("người") || after.starts_with("/người") {
                    "m2/người".to_string()
                } else {
                    "m2".to_string()
                }
            }
            None => match UNITS
                .iter()
                .find(|u| after == **u || after.starts_with(&format!("{u} ")) || after.starts_with(&format!("{u}/")))
            {
                Some(u) => u.to_string(),
                // After a firm comparator ("ít nhất 20 camera", "khoảng
                // 3.000 cây xanh") any countable word is the unit; ages and
                // spans of time are not targets.
                None => match after
                    .split([' ', '/'])
                    .next()
                    .filter(|w| !w.is_empty() && w.chars().all(char::is_alphabetic))
                {
                    Some(word) if firm_comparator(&tail(2)) && !TIME_WORDS.contains(&word) => word.to_string(),
                    _ => continue,
                },
            },
        };
        let comparator_before = BEFORE.iter().find(|(w, _)| {
            let n = w.split(' ').count();
            tail(n) == *w
        });
        let b = c.name("b").and_then(|b| number(b.as_str()));
        let Some(va) = number(a) else { continue };
        // A bare year or a whole count with no comparator and no unit of a
        // target is not read as one.
        if unit != "%" && comparator_before.is_none() && (1900.0..2100.0).contains(&va) && b.is_none() {
            continue;
        }
        // A count with no comparator is a target only after "đạt" or with
        // "trở lên": "mô hình bảo vệ 4 lớp" names a thing, it sets no target.
        let reached =
            tail(1) == "đạt" || tail(2) == "phấn đấu" || after.starts_with("trở lên") || after.contains(" trở lên");
        if unit != "%" && comparator_before.is_none() && b.is_none() && !reached {
            continue;
        }
        let (comparator, value, min, max) = match b {
            Some(vb) if vb >= va => ("between", None, Some(va), Some(vb)),
            Some(_) => continue,
            None => {
                let after_lower = after.as_str();
                let comparator = if after_lower.starts_with("trở lên")
                    || after_lower.contains(" trở lên") && after_lower.find("trở lên").is_some_and(|i| i < 30)
                {
                    "at_least"
                } else if after_lower.starts_with("trở xuống") {
                    "at_most"
                } else {
                    match comparator_before {
                        Some((_, "at_least")) => "at_least",
                        Some((_, cmp)) => cmp,
                        None => "at_least",
                    }
                };
                (comparator, Some(va), None, None)
            }
        };
        let quote = clause.trim().to_string();
        out.push(Kpi {
            key: String::new(),
            label: label_of(clause),
            comparator,
            value,
            min,
            max,
            unit,
            per_year,
            baseline: None,
            quote,
        });
    }
    for (value, year, unit) in baselines {
        if let Some(k) = out[start_len..]
            .iter_mut()
            .rev()
            .find(|k| unit.as_deref().is_none_or(|u| k.unit.starts_with(u)))
        {
            k.baseline = Some((value, year));
        }
    }
}

/// A short label: the clause without its lead-in words, at most 120 characters.
fn label_of(clause: &str) -> String {
    let mut s = clause.trim().trim_end_matches(['.', ';', ',']).to_string();
    for lead in [
        "Hằng năm, ",
        "Hàng năm, ",
        "Phấn đấu ",
        "Trong đó, ",
        "Trong nhiệm kỳ, ",
    ] {
        if let Some(rest) = s.strip_prefix(lead) {
            s = super::words::capitalise(rest);
        }
    }
    if s.chars().count() > 120 {
        let cut: String = s.chars().take(117).collect();
        let cut = cut.rsplit_once(' ').map(|(a, _)| a.to_string()).unwrap_or(cut);
        s = format!("{cut}…");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Comparator, value, min, max, baseline (value, year).
    type Shape = (&'static str, Option<f64>, Option<f64>, Option<f64>, Option<(f64, i32)>);

    fn shapes(text: &str, footnotes: &[&str]) -> Vec<Shape> {
        let footnotes: Vec<String> = footnotes.iter().map(|s| s.to_string()).collect();
        read(text, &footnotes)
            .into_iter()
            .map(|k| (k.comparator, k.value, k.min, k.max, k.baseline))
            .collect()
    }

    #[test]
    fn targets_of_the_shipped_plan() {
        assert_eq!(
            shapes("Hằng năm, 100% cơ quan, đơn vị, địa phương đưa nội dung công tác dân vận vào chương trình. Xây dựng, nhân rộng ít nhất 01 mô hình “Dân vận khéo” phù hợp với chức năng, nhiệm vụ.", &[]),
            vec![("at_least", Some(100.0), None, None, None), ("at_least", Some(1.0), None, None, None)]
        );
        assert_eq!(
            shapes("Ban Thanh tra nhân dân hoạt động có hiệu quả đạt từ 85% trở lên.", &[]),
            vec![("at_least", Some(85.0), None, None, None)]
        );
        assert_eq!(
            shapes(
                "Tỷ lệ hộ nghèo toàn thị xã giảm bình quân hằng năm từ 0,4 – 0,6%. ",
                &[]
            ),
            vec![("between", None, Some(0.4), Some(0.6), None)]
        );
        assert_eq!(
            shapes("Tỷ lệ lao động qua đào tạo trên 65%. Phấn đấu có ít nhất 30% học sinh tốt nghiệp THCS; Có ít nhất 40% học sinh tốt nghiệp THPT.", &[]),
            vec![("more_than", Some(65.0), None, None, None), ("at_least", Some(30.0), None, None, None), ("at_least", Some(40.0), None, None, None)]
        );
        assert_eq!(
            shapes(
                "Phấn đấu Khu dân cư đạt tiêu chuẩn “Khu dân cư 6 không”, đạt tỷ lệ trên 84%. ",
                &[]
            ),
            vec![("more_than", Some(84.0), None, None, None)]
        );
        assert_eq!(
            shapes("Phấn đấu tỷ lệ người dân đồng thuận đạt khoảng 92%.", &[]),
            vec![("about", Some(92.0), None, None, None)]
        );
        assert_eq!(
            shapes("Phấn đấu 100% thủ tục hành chính có đủ điều kiện, được cung cấp trực tuyến mức độ 3 và 4. Trong đó, ít nhất 90% thủ tục hành chính được tích hợp. Mức độ hài lòng đạt tối thiểu 95%. ", &[]),
            vec![("at_least", Some(100.0), None, None, None), ("at_least", Some(90.0), None, None, None), ("at_least", Some(95.0), None, None, None)]
        );
        assert_eq!(shapes("Phấn đấu vận động Nhân dân đóng góp ít nhất 10.000 ngày công để xây dựng nông thôn mới nâng cao hằng năm.", &[]), vec![("at_least", Some(10000.0), None, None, None)]);
        assert_eq!(
            shapes("Từ 70% đến 75% vỉa hè trước nhà ở không có tình trạng lấn chiếm.", &[]),
            vec![("between", None, Some(70.0), Some(75.0), None)]
        );
        assert_eq!(
            shapes(
                "Phấn đấu diện tích cây xanh bình quân trên mỗi người dân đô thị đạt từ 3-4m2.",
                &["Diện tích cây xanh bình quân trên mỗi người dân đô thị năm 2021 đạt khoảng 2,5m2."]
            ),
            vec![("between", None, Some(3.0), Some(4.0), Some((2.5, 2021)))]
        );
        assert_eq!(
            shapes(
                "Mặt trận chủ trì giám sát ít nhất 01 chính sách; phản biện được ít nhất 02 chính sách liên quan.",
                &[]
            )
            .len(),
            2
        );
        assert!(shapes("Đề án 13; Nghị quyết số 25-NQ/TW ngày 03/6/2013; tổng kết 05 năm thực hiện; Trước 31/3 hàng năm; giai đoạn 2022 - 2026", &[]).is_empty());
        assert!(shapes("(1) Công tác huy động nguồn lực; (2) Phát huy vai trò", &[]).is_empty());
    }

    #[test]
    fn other_shapes() {
        assert_eq!(
            shapes("Tỷ lệ hộ nghèo dưới 2%.", &[]),
            vec![("less_than", Some(2.0), None, None, None)]
        );
        assert_eq!(
            shapes("Tỷ lệ tái nghèo không quá 5%.", &[]),
            vec![("at_most", Some(5.0), None, None, None)]
        );
        assert_eq!(
            shapes("Thu hút trên 1.500 lượt người tham gia.", &[]),
            vec![("more_than", Some(1500.0), None, None, None)]
        );
        assert_eq!(
            shapes("Tỷ lệ che phủ rừng đạt trên 52% (năm 2020 đạt 45%).", &[]),
            vec![("more_than", Some(52.0), None, None, Some((45.0, 2020)))]
        );
        assert_eq!(
            shapes("Cây xanh đạt 3 – 4 m2/người (năm 2024 đạt khoảng 2,5 m2).", &[]),
            vec![("between", None, Some(3.0), Some(4.0), Some((2.5, 2024)))]
        );
        assert_eq!(
            shapes("Giảm bình quân hằng năm từ 1 – 1,5%.", &[]),
            vec![("between", None, Some(1.0), Some(1.5), None)]
        );
    }
}
