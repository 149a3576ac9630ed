//! The draft written out: a plan file of `workflows/` (TOML, with the
//! reasons and doubts as comments), the JSON report, and the summary a
//! person reads on the terminal.

use super::deadline::Schedule;
use super::{Draft, DraftTask};
use serde_json::json;
use std::fmt::Write as _;

/// A TOML basic string.
pub fn q(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => {}
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn list(items: impl IntoIterator<Item = String>) -> String {
    let items: Vec<String> = items.into_iter().map(|s| q(&s)).collect();
    format!("[{}]", items.join(", "))
}

fn num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

fn comment(s: &str) -> String {
    s.lines().map(|l| format!("# {l}")).collect::<Vec<_>>().join("\n")
}

/// The schedule tables of a task, with keys unique in the task.
fn schedule_tables(t: &DraftTask) -> Vec<String> {
    let mut used: Vec<String> = Vec::new();
    let mut unique = |base: &str| {
        let mut key = base.to_string();
        let mut n = 2;
        while used.contains(&key) {
            key = format!("{base}-{n}");
            n += 1;
        }
        used.push(key.clone());
        key
    };
    t.schedules
        .iter()
        .map(|s| match s {
            Schedule::Once { day, month, year } => {
                let key = unique("complete");
                format!(
                    "{{ kind = \"once\", due = \"{year:04}-{month:02}-{day:02}\", key = {} }}",
                    q(&key)
                )
            }
            Schedule::MonthEnd { month, year } => {
                let key = unique("complete");
                format!(
                    "{{ kind = \"month_end\", month = \"{month:02}/{year}\", key = {} }}",
                    q(&key)
                )
            }
            Schedule::QuarterEnd { quarter, year } => {
                let key = unique("complete");
                format!(
                    "{{ kind = \"quarter_end\", quarter = {quarter}, year = {year}, key = {} }}",
                    q(&key)
                )
            }
            Schedule::Yearly { day, key, title } => {
                let key = unique(key);
                match day {
                    Some((d, m)) => format!(
                        "{{ kind = \"yearly\", due = \"{d:02}/{m:02}\", key = {}, title = {} }}",
                        q(&key),
                        q(title)
                    ),
                    None => format!("{{ kind = \"yearly\", key = {}, title = {} }}", q(&key), q(title)),
                }
            }
            Schedule::Ongoing => {
                let key = unique("report");
                format!("{{ kind = \"ongoing\", key = {} }}", q(&key))
            }
            Schedule::PeriodReview { title } => {
                let key = unique("five-year-review");
                format!(
                    "{{ kind = \"period_review\", key = {}, title = {} }}",
                    q(&key),
                    q(title)
                )
            }
        })
        .collect()
}

pub fn toml(d: &Draft) -> String {
    let code = |i: usize| d.agencies[i].code.clone();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Bản nháp kế hoạch do `kehoach plan import` đọc từ {}.",
        d.document
    );
    let _ = writeln!(
        out,
        "# {} nhiệm vụ, {} cơ quan, {} điểm cần xem lại (xem báo cáo --report). Điền địa chỉ e-mail",
        d.tasks.len(),
        d.agencies.len(),
        d.doubts.len()
    );
    let _ = writeln!(
        out,
        "# của từng cơ quan, kiểm tra các điểm nghi vấn, rồi `kehoach plan check` và `plan load`."
    );
    let _ = writeln!(out, "# Định dạng: docs/plan-format.md.\n");
    let _ = writeln!(out, "[plan]");
    let _ = writeln!(out, "id = {}", q(&d.plan_id));
    let _ = writeln!(out, "title = {}", q(&d.title));
    let _ = writeln!(out, "issuer = {}", q(&code(d.issuer)));
    let _ = writeln!(out, "document = {}", q(&d.document));
    let _ = writeln!(
        out,
        "period = {{ start = \"{}\", end = \"{}\" }}",
        d.period.0, d.period.1
    );
    let _ = writeln!(out, "time_zone = \"Asia/Ho_Chi_Minh\"\n");
    let _ = writeln!(
        out,
        "# Không có trong văn bản: ngày báo cáo hằng năm, các năm báo cáo, ngày tổng kết."
    );
    let _ = writeln!(out, "[defaults]");
    let _ = writeln!(out, "yearly_report = \"15/12\"");
    let _ = writeln!(
        out,
        "reporting_years = {{ first = {}, last = {} }}",
        d.reporting_years.0, d.reporting_years.1
    );
    let _ = writeln!(out, "five_year_review = \"{}\"\n", d.period.1);
    for a in &d.agencies {
        let _ = writeln!(out, "[[agencies]]");
        let _ = writeln!(out, "code = {}", q(&a.code));
        let _ = writeln!(out, "name = {}", q(&a.name));
        if !a.aliases.is_empty() {
            let _ = writeln!(out, "aliases = {}", list(a.aliases.iter().cloned()));
        }
        match &a.known {
            Some(known) => {
                let _ = writeln!(out, "emails = {}", list(known.emails.iter().cloned()));
                if !known.members.is_empty() {
                    let _ = writeln!(out, "members = [");
                    for m in &known.members {
                        let _ = writeln!(
                            out,
                            "  {{ name = {}, emails = {} }},",
                            q(&m.name),
                            list(m.emails.iter().cloned())
                        );
                    }
                    let _ = writeln!(out, "]");
                }
            }
            None if !a.emails.is_empty() => {
                let _ = writeln!(out, "emails = {}", list(a.emails.iter().cloned()));
            }
            None => {
                let _ = writeln!(out, "# chưa có địa chỉ: điền emails = [\"…\"] trước khi nạp");
                let _ = writeln!(out, "emails = []");
            }
        }
        out.push('\n');
    }
    for t in &d.tasks {
        for doubt in d.doubts.iter().filter(|x| x.task.as_deref() == Some(&t.id)) {
            let _ = writeln!(out, "{}", comment(&format!("CẦN XEM: {}", doubt.message)));
        }
        let _ = writeln!(out, "[[tasks]]");
        let _ = writeln!(out, "id = {}", q(&t.id));
        let _ = writeln!(out, "title = {}", q(&t.title));
        let _ = writeln!(out, "text = {}", q(&t.text));
        let _ = writeln!(out, "lead = {}", q(&code(t.lead)));
        let _ = writeln!(out, "advisory = {}", list(t.advisory.iter().map(|i| code(*i))));
        let _ = writeln!(out, "implementers = {}", list(t.implementers.iter().map(|i| code(*i))));
        if !t.coordinators.is_empty() {
            let _ = writeln!(out, "coordinators = {}", list(t.coordinators.iter().map(|i| code(*i))));
        }
        let _ = writeln!(out, "{}", comment(&t.obligation_reason));
        let _ = writeln!(out, "obligation = {}", q(t.obligation));
        if let Some(w) = &t.deadline {
            let _ = writeln!(out, "deadline = {}", q(w));
        }
        let _ = writeln!(out, "source = {{ section = {}, line = {} }}", q(&t.section), t.line);
        let tables = schedule_tables(t);
        if tables.len() == 1 {
            let _ = writeln!(out, "schedule = {}", tables[0]);
        } else {
            let _ = writeln!(out, "milestones = [");
            for s in tables {
                let _ = writeln!(out, "  {s},");
            }
            let _ = writeln!(out, "]");
        }
        for k in &t.kpis {
            let _ = writeln!(out, "\n[[tasks.kpis]]");
            let _ = writeln!(out, "key = {}", q(&k.key));
            let _ = writeln!(out, "label = {}", q(&k.label));
            let _ = writeln!(out, "comparator = {}", q(k.comparator));
            if let Some(v) = k.value {
                let _ = writeln!(out, "value = {}", num(v));
            }
            if let (Some(lo), Some(hi)) = (k.min, k.max) {
                let _ = writeln!(out, "min = {}", num(lo));
                let _ = writeln!(out, "max = {}", num(hi));
                // A range a plan sets as a target ("phấn đấu từ 75% đến 80%",
                // "giảm từ 0,4 – 0,6%") is nearly always a floor: doing better
                // must not read "chưa đạt". Check it against the wording.
                let _ = writeln!(
                    out,
                    "# Khoảng mục tiêu: đạt khi từ mức thấp trở lên; sửa thành \"within\" nếu chỉ đạt khi nằm trong khoảng."
                );
                let _ = writeln!(out, "better = \"higher\"");
            }
            let _ = writeln!(out, "unit = {}", q(&k.unit));
            if k.per_year {
                let _ = writeln!(out, "per_year = true");
            }
            if let Some((v, y)) = k.baseline {
                let _ = writeln!(out, "baseline = {{ value = {}, year = {y} }}", num(v));
            }
        }
        out.push('\n');
    }
    out
}

fn schedule_json(s: &Schedule) -> serde_json::Value {
    match s {
        Schedule::Once { day, month, year } => json!({"kind": "once", "due": format!("{year:04}-{month:02}-{day:02}")}),
        Schedule::MonthEnd { month, year } => json!({"kind": "month_end", "month": format!("{month:02}/{year}")}),
        Schedule::QuarterEnd { quarter, year } => json!({"kind": "quarter_end", "quarter": quarter, "year": year}),
        Schedule::Yearly { day, key, title } => {
            json!({"kind": "yearly", "due": day.map(|(d, m)| format!("{d:02}/{m:02}")), "key": key, "title": title})
        }
        Schedule::Ongoing => json!({"kind": "ongoing"}),
        Schedule::PeriodReview { title } => json!({"kind": "period_review", "title": title}),
    }
}

pub fn report(d: &Draft) -> serde_json::Value {
    let code = |i: &usize| d.agencies[*i].code.clone();
    json!({
        "document": d.document,
        "layout": d.layout,
        "plan": {
            "id": d.plan_id,
            "title": d.title,
            "issuer": code(&d.issuer),
            "period": { "start": d.period.0.to_string(), "end": d.period.1.to_string() },
        },
        "counts": {
            "tasks": d.tasks.len(),
            "agencies": d.agencies.len(),
            "milestone_series": d.tasks.iter().map(|t| t.schedules.len()).sum::<usize>(),
            "kpis": d.tasks.iter().map(|t| t.kpis.len()).sum::<usize>(),
            "doubts": d.doubts.len(),
        },
        "agencies": d.agencies.iter().map(|a| json!({
            "code": a.code,
            "name": a.name,
            "aliases": a.aliases,
            "mentions": a.mentions,
            "first_line": a.first_line,
            "known": a.known.is_some(),
            "emails": a.known.as_ref().map(|k| k.emails.clone()).unwrap_or_else(|| a.emails.clone()),
        })).collect::<Vec<_>>(),
        "tasks": d.tasks.iter().map(|t| json!({
            "id": t.id,
            "title": t.title,
            "text": t.text,
            "section": t.section,
            "line": t.line,
            "lead": code(&t.lead),
            "advisory": t.advisory.iter().map(code).collect::<Vec<_>>(),
            "implementers": t.implementers.iter().map(code).collect::<Vec<_>>(),
            "coordinators": t.coordinators.iter().map(code).collect::<Vec<_>>(),
            "deadline": t.deadline,
            "schedules": t.schedules.iter().map(schedule_json).collect::<Vec<_>>(),
            "kpis": t.kpis.iter().map(|k| json!({
                "key": k.key, "label": k.label, "comparator": k.comparator, "value": k.value,
                "min": k.min, "max": k.max, "unit": k.unit, "per_year": k.per_year,
                "baseline": k.baseline.map(|(v, y)| json!({"value": v, "year": y})),
                "quote": k.quote,
            })).collect::<Vec<_>>(),
            "obligation": t.obligation,
            "obligation_reason": t.obligation_reason,
            "doubts": d.doubts.iter().filter(|x| x.task.as_deref() == Some(&t.id)).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "doubts": d.doubts,
    })
}

pub fn summary(d: &Draft) -> String {
    let mut out = String::new();
    let layout = if d.layout == "table" {
        "bảng nhiệm vụ"
    } else {
        "văn bản có mục đánh số"
    };
    let _ = writeln!(
        out,
        "{}: {} nhiệm vụ, {} cơ quan ({layout}); cơ quan ban hành: {}.",
        d.document,
        d.tasks.len(),
        d.agencies.len(),
        d.agencies[d.issuer].name
    );
    if d.doubts.is_empty() {
        let _ = writeln!(
            out,
            "Không có điểm nghi vấn. Điền địa chỉ e-mail của các cơ quan rồi kiểm tra bằng `kehoach plan check`."
        );
        return out;
    }
    let _ = writeln!(out, "{} điểm cần xem lại:", d.doubts.len());
    for doubt in &d.doubts {
        let task = doubt.task.as_deref().map(|t| format!(" [{t}]")).unwrap_or_default();
        let quote: String = doubt.quote.chars().take(100).collect();
        let quote = if quote.is_empty() {
            String::new()
        } else {
            format!(" — “{quote}”")
        };
        let _ = writeln!(out, "  dòng {}{task}: {}{quote}", doubt.line, doubt.message);
    }
    out
}
