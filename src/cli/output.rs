//! What the CLI prints: tables lined up by
//! display width, so Vietnamese text with combining marks stays aligned.

use crate::domain::ids::AgencyCode;
pub use crate::projections::json::task_json;
use crate::projections::views::{
    deadlines_for, obligation_timeliness, plan_of, timeliness, PlanView, TaskView, Timeliness,
};
use chrono::NaiveDate;
use serde::Serialize;
use unicode_width::UnicodeWidthStr;

/// Agencies by name (the code where the plan does not list it).
fn names(plan: Option<&crate::domain::plan::Plan>, list: &[AgencyCode]) -> String {
    list.iter()
        .map(|a| plan.map_or_else(|| a.to_string(), |p| p.agency_name(a)))
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn print_json<T: Serialize>(value: &T) {
    println!("{}", serde_json::to_string_pretty(value).expect("JSON output"));
}

/// Cuts `s` to at most `width` display columns.
pub fn fit(s: &str, width: usize) -> String {
    if s.width() <= width {
        return s.to_string();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        let w = unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
        if used + w + 1 > width {
            break;
        }
        out.push(c);
        used += w;
    }
    out.push('…');
    out
}

/// Renders rows as a table whose columns line up by display width.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.width()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.width());
        }
    }
    let line = |cells: Vec<&str>| -> String {
        let mut s = String::new();
        for (i, cell) in cells.iter().enumerate() {
            s.push_str(cell);
            if i + 1 < cells.len() {
                s.push_str(&" ".repeat(widths[i] - cell.width() + 2));
            }
        }
        s.trim_end().to_string()
    };
    let mut out = vec![
        line(header.to_vec()),
        widths.iter().map(|w| "─".repeat(*w)).collect::<Vec<_>>().join("  "),
    ];
    out.extend(rows.iter().map(|r| line(r.iter().map(String::as_str).collect())));
    out.join("\n")
}

/// The timeliness label, with "QUÁ HẠN" shouted so it stands out in a table.
fn timeliness_vi(t: Timeliness) -> String {
    match t {
        Timeliness::Overdue => t.label_vi().to_uppercase(),
        _ => t.label_vi().to_string(),
    }
}

/// One line per task: its next pending milestone, or its last one.
pub fn task_table(views: &[TaskView], today: NaiveDate, plans: &[PlanView]) -> String {
    let rows: Vec<Vec<String>> = views
        .iter()
        .filter_map(|v| {
            let def = v.task.definition.as_ref()?;
            let dl = deadlines_for(plans, &v.id);
            let plan = plan_of(plans, &v.id).map(|p| &p.plan);
            let next = v.open_milestones().next().or(v.task.milestones.last());
            let (mid, due, state) = match next {
                Some(m) => (
                    m.spec.id.to_string(),
                    dl.shown(m.due()),
                    format!("{} · {}", m.status.label_vi(), timeliness_vi(timeliness(m, today, dl))),
                ),
                None => (String::new(), String::new(), String::new()),
            };
            let state = if v.task.withdrawn {
                "đã rút khỏi kế hoạch".to_string()
            } else {
                state
            };
            Some(vec![
                v.id.split_once('/').map_or(v.id.clone(), |(_, t)| t.to_string()),
                fit(&def.title, 48),
                fit(&names(plan, std::slice::from_ref(&def.lead)), 24),
                fit(&names(plan, &def.implementers), 24),
                mid,
                due,
                state,
            ])
        })
        .collect();
    table(
        &[
            "Mã",
            "Nhiệm vụ",
            "Lãnh đạo",
            "Thực hiện",
            "Mã mốc kế tiếp",
            "Hạn",
            "Trạng thái",
        ],
        &rows,
    )
}

pub fn task_detail(view: &TaskView, today: NaiveDate, plan: &PlanView) -> String {
    let dl = plan.deadlines();
    let p = Some(&plan.plan);
    let Some(def) = &view.task.definition else {
        return view.id.clone();
    };
    let mut out = vec![
        format!("{} — {}", view.id, def.title),
        String::new(),
        def.text.clone(),
        String::new(),
        format!("Cơ quan lãnh đạo:  {}", plan.plan.agency_name(&def.lead)),
        format!("Cơ quan tham mưu:  {}", names(p, &def.advisory)),
        format!("Cơ quan thực hiện: {}", names(p, &def.implementers)),
    ];
    if !def.coordinators.is_empty() {
        out.push(format!("Cơ quan phối hợp:  {}", names(p, &def.coordinators)));
    }
    if let Some(d) = &def.deadline {
        out.push(format!("Thời gian:         {d}"));
    }
    out.push(format!(
        "Nguồn:             {} (dòng {})",
        def.source.section, def.source.line
    ));
    if view.task.withdrawn {
        out.push("Nhiệm vụ đã bị rút khỏi kế hoạch.".into());
    }
    if !def.kpis.is_empty() {
        out.push(String::new());
        let rows: Vec<Vec<String>> = def
            .kpis
            .iter()
            .map(|k| {
                let latest = view
                    .task
                    .milestones
                    .iter()
                    .rev()
                    .find_map(|m| m.kpis().get(&k.key).copied())
                    .map_or(String::new(), |v| k.value_text(v));
                let baseline = k
                    .baseline
                    .map_or(String::new(), |b| format!("{} (năm {})", k.value_text(b.value), b.year));
                vec![k.key.to_string(), fit(&k.label, 50), k.to_string(), baseline, latest]
            })
            .collect();
        out.push(table(
            &["Chỉ tiêu", "Nội dung", "Mục tiêu", "Cơ sở", "Báo cáo gần nhất"],
            &rows,
        ));
    }
    out.push(String::new());
    let rows: Vec<Vec<String>> = view
        .task
        .milestones
        .iter()
        .flat_map(|m| {
            // One row per obligation; the milestone's id and title on its first.
            m.obligations.iter().enumerate().map(move |(i, o)| {
                let (id, title) = if i == 0 {
                    (m.spec.id.to_string(), fit(&m.spec.title, 40))
                } else {
                    (String::new(), String::new())
                };
                vec![
                    id,
                    title,
                    fit(
                        &o.agency
                            .as_ref()
                            .map_or_else(|| "Chung".to_string(), |a| plan.plan.agency_name(a)),
                        28,
                    ),
                    dl.shown(o.due),
                    o.status.label_vi().to_string(),
                    timeliness_vi(obligation_timeliness(o, today, dl)),
                    o.submitted
                        .as_ref()
                        .map_or(String::new(), |s| plan.plan.actor_text(&s.by)),
                    o.approved
                        .as_ref()
                        .map_or(String::new(), |s| plan.plan.actor_text(&s.by)),
                ]
            })
        })
        .collect();
    out.push(table(
        &[
            "Mã mốc",
            "Nội dung",
            "Cơ quan",
            "Hạn",
            "Trạng thái",
            "Tiến độ",
            "Người nộp",
            "Người duyệt",
        ],
        &rows,
    ));
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_line_up_vietnamese_text_by_display_width() {
        let t = table(
            &["Mã", "Nội dung"],
            &[
                vec!["II.1.1".into(), "Quán triệt".into()],
                vec!["IV.5".into(), "Đánh giá".into()],
            ],
        );
        let lines: Vec<&str> = t.lines().collect();
        let col = |l: &str| {
            l.split("  ").next().unwrap().width()
                + l[l.split("  ").next().unwrap().len()..]
                    .chars()
                    .take_while(|c| *c == ' ')
                    .count()
        };
        assert_eq!(col(lines[2]), col(lines[3]));
        assert_eq!(col(lines[0]), col(lines[2]));
    }

    #[test]
    fn fit_cuts_by_display_width() {
        assert_eq!(fit("Dân vận khéo", 20), "Dân vận khéo");
        assert_eq!(fit("Dân vận khéo", 6).width(), 6);
    }
}
