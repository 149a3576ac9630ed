//! The plan overview chart: every task of a plan on a timeline of the plan
//! period, with a marker per milestone coloured by where it stands today.
//! Pure (no I/O, no clock): the page hands in the views and today's date and
//! gets inline SVG back.

use crate::domain::dates::format_vn;
use crate::domain::ids::TaskKey;
use crate::domain::task::Milestone;
use crate::projections::views::{numbering_key, timeliness, PlanView, TaskView, Timeliness};
use crate::templates::escape_html as escape;
use chrono::{Datelike, Days, NaiveDate};
use std::fmt::Write;

/// Width of the drawing, in viewBox units.
const WIDTH: f64 = 1200.0;
/// Left edge of the plot: the task ids sit to its left.
const PLOT_LEFT: f64 = 104.0;
const PLOT_RIGHT: f64 = WIDTH - 24.0;
/// Baseline of the year labels; the rows start just below.
const AXIS_Y: f64 = 66.0;
const ROWS_TOP: f64 = 74.0;
const ROW_HEIGHT: f64 = 18.0;
const FONT: &str = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Noto Sans', 'Helvetica Neue', Arial, sans-serif";
const TODAY_COLOR: &str = "#d81b60";
const LINK_COLOR: &str = "#1f5fa8";
const GRID_COLOR: &str = "#d9d9d9";

/// The legend's order, and the order markers are drawn in within a row (the
/// last on top: an overdue milestone is never hidden under another).
const LEGEND: [Timeliness; 5] = Timeliness::LEGEND;

fn draw_order(t: Timeliness) -> u8 {
    match t {
        Timeliness::Closed => 0,
        Timeliness::NotYetDue => 1,
        Timeliness::OnTime => 2,
        Timeliness::ApprovedLate => 3,
        Timeliness::Overdue => 4,
    }
}

fn color(t: Timeliness) -> &'static str {
    match t {
        Timeliness::OnTime => "#1e7b34",
        Timeliness::ApprovedLate => "#e07b00",
        Timeliness::Overdue => "#c62828",
        Timeliness::NotYetDue => "#1f5fa8",
        Timeliness::Closed => "#bdbdbd",
    }
}

/// `label_vi` with a capital first letter, for the legend and tooltips.
fn label(t: Timeliness) -> String {
    let l = t.label_vi();
    let mut chars = l.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// One marker, a shape per standing (so that colour is not the only cue):
/// a dot when approved on time, a square when approved late, a diamond when
/// overdue, a ring when not yet due, a small grey dot when closed. `attrs`
/// (with a leading space) and `title` are already escaped; an empty title
/// leaves the tooltip out.
fn marker(t: Timeliness, x: f64, y: f64, attrs: &str, title: &str) -> String {
    let fill = color(t);
    let (tag, shape) = match t {
        Timeliness::OnTime => ("circle", format!(r#"cx="{x:.1}" cy="{y:.1}" r="5" fill="{fill}""#)),
        Timeliness::ApprovedLate => (
            "rect",
            format!(
                r#"x="{:.1}" y="{:.1}" width="9" height="9" fill="{fill}""#,
                x - 4.5,
                y - 4.5
            ),
        ),
        Timeliness::Overdue => (
            "path",
            format!(r#"d="M{x:.1} {:.1}l6 6-6 6-6-6z" fill="{fill}""#, y - 6.0),
        ),
        Timeliness::NotYetDue => (
            "circle",
            format!(r##"cx="{x:.1}" cy="{y:.1}" r="4" fill="#ffffff" stroke="{fill}" stroke-width="1.8""##),
        ),
        Timeliness::Closed => ("circle", format!(r#"cx="{x:.1}" cy="{y:.1}" r="3.5" fill="{fill}""#)),
    };
    if title.is_empty() {
        format!("<{tag}{attrs} {shape}/>")
    } else {
        format!("<{tag}{attrs} {shape}><title>{title}</title></{tag}>")
    }
}

/// A task drawn as a row: its id, title and milestones with their standing.
struct Row<'a> {
    key: TaskKey,
    title: &'a str,
    milestones: Vec<(&'a Milestone, Timeliness)>,
}

/// The dates the x axis spans: the plan period, widened to take in every
/// milestone (an extension may run past the period's end); without a period,
/// the milestones' own span. Never empty.
fn span(plan: &PlanView, rows: &[Row], today: NaiveDate) -> (NaiveDate, NaiveDate) {
    let dues = rows.iter().flat_map(|r| r.milestones.iter().map(|(m, _)| m.due()));
    let period = plan.plan.header.as_ref().map(|h| (h.start, h.end));
    let (mut start, mut end) = period.unwrap_or((NaiveDate::MAX, NaiveDate::MIN));
    for d in dues {
        start = start.min(d);
        end = end.max(d);
    }
    if start > end {
        // Nothing to go by: the year around today.
        start = today;
        end = today;
    }
    if end <= start {
        start = start.checked_sub_days(Days::new(183)).unwrap_or(start);
        end = end.checked_add_days(Days::new(183)).unwrap_or(end);
    }
    (start, end)
}

/// The plan period on the x axis, one row per task (in plan order), a marker per milestone coloured by where it stands today.
///
/// Tasks of other plans are left out, and so are tasks withdrawn from the
/// plan (a line under the chart says how many). Each task id links to the
/// task's page (`/tasks/{plan}/{task}`) and carries the task title as a
/// tooltip; each marker has the class `ms ms-{on-time|late|overdue|pending|closed}`,
/// `data-milestone` and a tooltip with the milestone, its deadline in force
/// and its standing. A year label marks each 1 January and a "Hôm nay" line
/// marks `today` when it falls inside the axis.
pub fn plan_timeline_svg(plan: &PlanView, tasks: &[TaskView], today: chrono::NaiveDate) -> String {
    let plan_id = plan.plan.header.as_ref().map_or(plan.id.as_str(), |h| h.id.as_str());
    let deadlines = plan.deadlines();
    let mut withdrawn = 0usize;
    let mut rows: Vec<Row> = Vec::new();
    for view in tasks {
        let Some(key) = view.task.key.clone().or_else(|| view.key()) else {
            continue;
        };
        if key.plan.as_str() != plan_id {
            continue;
        }
        if view.task.withdrawn {
            withdrawn += 1;
            continue;
        }
        let mut milestones: Vec<(&Milestone, Timeliness)> = view
            .task
            .milestones
            .iter()
            .map(|m| (m, timeliness(m, today, deadlines)))
            .collect();
        milestones.sort_by_key(|(m, t)| (draw_order(*t), m.due()));
        rows.push(Row {
            title: view.task.definition.as_ref().map_or("", |d| d.title.as_str()),
            key,
            milestones,
        });
    }
    rows.sort_by_cached_key(|r| numbering_key(r.key.task.as_str()));

    let (start, end) = span(plan, &rows, today);
    let days = (end - start).num_days() as f64;
    let x = |d: NaiveDate| PLOT_LEFT + (d - start).num_days() as f64 / days * (PLOT_RIGHT - PLOT_LEFT);
    let rows_bottom = ROWS_TOP + ROW_HEIGHT * rows.len().max(1) as f64;
    let today_shown = (start..=end).contains(&today);
    let mut height = rows_bottom + 8.0;
    if today_shown {
        height += 16.0;
    }
    if withdrawn > 0 {
        height += 16.0;
    }
    let height = height.ceil();

    let mut counts = [0usize; 5];
    for r in &rows {
        for (_, t) in &r.milestones {
            counts[LEGEND.iter().position(|l| l == t).unwrap_or(0)] += 1;
        }
    }
    let total: usize = counts.iter().sum();
    let plan_title = plan.plan.header.as_ref().map_or(plan_id, |h| h.title.as_str());
    let standing = LEGEND
        .iter()
        .zip(counts)
        .map(|(t, n)| format!("{n} {}", t.label_vi()))
        .collect::<Vec<_>>()
        .join(", ");
    let aria = format!(
        "Tiến độ {plan_title}: {} nhiệm vụ, {total} mốc, từ {} đến {}: {standing}",
        rows.len(),
        format_vn(start),
        format_vn(end),
    );

    let mut svg = String::with_capacity(4096 + total * 300 + rows.len() * 300);
    let _ = write!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" class="plan-timeline" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" role="group" aria-label="{}" font-family="{FONT}" font-size="12" fill="#222222">"##,
        escape(&aria),
    );

    // Heading and legend.
    let _ = write!(
        svg,
        r#"<text x="8" y="18" font-size="13" font-weight="600">Giai đoạn {} – {} · {} nhiệm vụ · {total} mốc</text>"#,
        format_vn(start),
        format_vn(end),
        rows.len(),
    );
    let mut lx = 14.0;
    for (t, n) in LEGEND.iter().zip(counts) {
        let text = format!("{} ({n})", label(*t));
        let _ = write!(
            svg,
            r#"<g class="legend legend-{}">{}<text x="{:.1}" y="44">{}</text></g>"#,
            t.css_class(),
            marker(*t, lx, 40.0, "", ""),
            lx + 10.0,
            escape(&text),
        );
        lx += 10.0 + 7.0 * text.chars().count() as f64 + 24.0;
    }

    // Row stripes, then the grid over them.
    for i in (1..rows.len()).step_by(2) {
        let _ = write!(
            svg,
            r##"<rect x="0" y="{:.1}" width="{WIDTH}" height="{ROW_HEIGHT}" fill="#f5f7fa"/>"##,
            ROWS_TOP + ROW_HEIGHT * i as f64,
        );
    }
    let _ = write!(
        svg,
        r##"<path d="M{PLOT_LEFT} {ROWS_TOP}V{rows_bottom:.1}M{PLOT_RIGHT} {ROWS_TOP}V{rows_bottom:.1}" stroke="#9e9e9e" stroke-width="1"/>"##
    );
    for year in start.year()..=end.year() {
        let Some(jan1) = NaiveDate::from_ymd_opt(year, 1, 1).filter(|d| (start..=end).contains(d)) else {
            continue;
        };
        let gx = x(jan1);
        let _ = write!(
            svg,
            r##"<g class="year"><path d="M{gx:.1} {:.1}V{rows_bottom:.1}" stroke="{GRID_COLOR}" stroke-width="1"/><text x="{:.1}" y="{AXIS_Y}" fill="#555555">{year}</text></g>"##,
            AXIS_Y - 12.0,
            gx + 4.0,
        );
    }

    // Today, under the markers (so that it never takes their tooltips); its label below the rows.
    let mut foot = rows_bottom + 8.0;
    if today_shown {
        let tx = x(today);
        let anchor_x = tx.clamp(PLOT_LEFT + 50.0, PLOT_RIGHT - 50.0);
        let _ = write!(
            svg,
            r#"<g class="today"><path d="M{tx:.1} {:.1}V{:.1}" stroke="{TODAY_COLOR}" stroke-width="1.5" stroke-dasharray="5 3"/><text x="{anchor_x:.1}" y="{:.1}" text-anchor="middle" fill="{TODAY_COLOR}" font-weight="600">Hôm nay {}</text></g>"#,
            AXIS_Y - 12.0,
            rows_bottom + 4.0,
            foot + 8.0,
            format_vn(today),
        );
        foot += 16.0;
    }

    // The rows.
    for (i, row) in rows.iter().enumerate() {
        let cy = ROWS_TOP + ROW_HEIGHT * (i as f64 + 0.5);
        let task = escape(row.key.task.as_str());
        let tooltip = if row.title.is_empty() {
            task.clone()
        } else {
            format!("{task} — {}", escape(row.title))
        };
        let _ = write!(
            svg,
            r#"<g class="row" data-task="{task}"><a href="/tasks/{}/{task}"><title>{tooltip}</title><text x="8" y="{:.1}" fill="{LINK_COLOR}">{task}</text></a>"#,
            escape(row.key.plan.as_str()),
            cy + 4.0,
        );
        let first = row.milestones.iter().map(|(m, _)| m.due()).min();
        let last = row.milestones.iter().map(|(m, _)| m.due()).max();
        if let (Some(first), Some(last)) = (first, last) {
            if first < last {
                let _ = write!(
                    svg,
                    r##"<path d="M{:.1} {cy:.1}H{:.1}" stroke="#c5cbd3" stroke-width="2"/>"##,
                    x(first),
                    x(last),
                );
            }
        }
        for (m, t) in &row.milestones {
            let due = m.due();
            let mut title = format!("{} · {}\nHạn: {}", row.key.task, m.spec.title, deadlines.shown(due));
            if m.extended() {
                let _ = write!(title, " (đã gia hạn, hạn gốc {})", format_vn(m.spec.due));
            }
            let _ = write!(title, "\n{} — {}", label(*t), m.status.label_vi());
            let attrs = format!(
                r#" class="ms ms-{}" data-milestone="{}""#,
                t.css_class(),
                escape(m.spec.id.as_str())
            );
            svg.push_str(&marker(*t, x(due), cy, &attrs, &escape(&title)));
        }
        svg.push_str("</g>");
    }
    if rows.is_empty() {
        let _ = write!(
            svg,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#777777">Chưa có nhiệm vụ nào.</text>"##,
            (PLOT_LEFT + PLOT_RIGHT) / 2.0,
            ROWS_TOP + 13.0,
        );
    }

    if withdrawn > 0 {
        let _ = write!(
            svg,
            r##"<text x="8" y="{:.1}" font-size="11" fill="#777777">Không hiển thị {withdrawn} nhiệm vụ đã rút khỏi kế hoạch.</text>"##,
            foot + 8.0,
        );
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::{AgencyCode, PersonName};
    use crate::domain::plan::Plan;
    use crate::domain::task::{Actor, Stamp, TaskAction, TaskCommand};
    use crate::plan::PlanDefinition;
    use chrono::{DateTime, Utc};
    use cqrs_es::Aggregate;
    use std::path::Path;

    fn date(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn shipped_definition() -> PlanDefinition {
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows/duc-pho-de-an-13.toml");
        crate::plan::parse_file(&file).expect("the shipped plan is valid")
    }

    fn loader() -> Stamp {
        Stamp {
            by: Actor::system_on("plan-loader", "test", "test"),
            at: at("2022-12-01T00:00:00Z"),
        }
    }

    /// The views the projections would hold after loading `def` over the
    /// tasks in `stored` (tasks no longer in `def` are withdrawn).
    fn load(def: &PlanDefinition, mut stored: Vec<TaskView>) -> (PlanView, Vec<TaskView>) {
        let keys: Vec<TaskKey> = stored.iter().filter_map(|v| v.task.key.clone()).collect();
        let (sync, commands) = crate::plan::load::commands(def, &keys, &loader());
        let mut plan = Plan::default();
        for e in plan.decide(sync).unwrap() {
            plan.apply(e);
        }
        for (key, command) in commands {
            let id = key.to_string();
            let pos = stored.iter().position(|v| v.id == id).unwrap_or_else(|| {
                stored.push(TaskView::empty(&id));
                stored.len() - 1
            });
            run(&mut stored[pos], command);
        }
        let view = PlanView {
            id: def.header.id.to_string(),
            version: 1,
            plan,
        };
        (view, stored)
    }

    fn run(view: &mut TaskView, command: TaskCommand) {
        for e in view.task.decide(command).expect("command accepted") {
            view.task.apply(e);
            view.version += 1;
        }
    }

    fn person(agency: &str, name: &str, when: &str) -> Stamp {
        Stamp {
            by: Actor::test_person(AgencyCode::parse(agency).unwrap(), PersonName::parse(name).unwrap()),
            at: at(when),
        }
    }

    fn task<'a>(tasks: &'a mut [TaskView], id: &str) -> &'a mut TaskView {
        tasks
            .iter_mut()
            .find(|v| v.task.key.as_ref().is_some_and(|k| k.task.as_str() == id))
            .unwrap_or_else(|| panic!("task {id} missing"))
    }

    /// Submits (each implementer, or one for a joint milestone) and approves
    /// (lead) every obligation of the first milestone of a task.
    fn approve_first(view: &mut TaskView, submitted: &str, approved: &str) {
        let def = view.task.definition.clone().unwrap();
        let milestone = view.task.milestones[0].spec.id.clone();
        let owners: Vec<Option<AgencyCode>> = view.task.milestones[0]
            .obligations
            .iter()
            .map(|o| o.agency.clone())
            .collect();
        for owner in owners {
            let by = owner.clone().unwrap_or_else(|| def.implementers[0].clone());
            run(
                view,
                TaskCommand {
                    stamp: person(by.as_str(), "Nguyễn Văn An", submitted),
                    action: TaskAction::Submit {
                        milestone: milestone.clone(),
                        agency: None,
                        note: "Đã hoàn thành".into(),
                        attachments: vec![],
                    },
                },
            );
            run(
                view,
                TaskCommand {
                    stamp: person(def.lead.as_str(), "Trần Thị Bình", approved),
                    action: TaskAction::Approve {
                        milestone: milestone.clone(),
                        agency: owner,
                        note: String::new(),
                    },
                },
            );
        }
    }

    /// The shipped plan loaded in December 2022, with II.1.1 approved on time,
    /// II.1.2 approved late and the first milestone of III.1.1 waived.
    fn shipped() -> (PlanView, Vec<TaskView>) {
        let (plan, mut tasks) = load(&shipped_definition(), Vec::new());
        approve_first(
            task(&mut tasks, "II.1.1"),
            "2023-01-20T02:00:00Z",
            "2023-01-25T02:00:00Z",
        );
        approve_first(
            task(&mut tasks, "II.1.2"),
            "2023-04-03T02:00:00Z",
            "2023-04-10T02:00:00Z",
        );
        let view = task(&mut tasks, "III.1.1");
        let lead = view.task.definition.as_ref().unwrap().lead.to_string();
        let milestone = view.task.milestones[0].spec.id.clone();
        let owners: Vec<Option<AgencyCode>> = view.task.milestones[0]
            .obligations
            .iter()
            .map(|o| o.agency.clone())
            .collect();
        for owner in owners {
            run(
                view,
                TaskCommand {
                    stamp: person(&lead, "Lê Văn Cường", "2023-02-01T02:00:00Z"),
                    action: TaskAction::Waive {
                        milestone: milestone.clone(),
                        agency: owner,
                        reason: "Không còn phù hợp".into(),
                    },
                },
            );
        }
        (plan, tasks)
    }

    fn today() -> NaiveDate {
        date("2024-06-15")
    }

    /// The task ids of the rows, top to bottom.
    fn row_ids(svg: &str) -> Vec<&str> {
        svg.split(r#"<g class="row" data-task=""#)
            .skip(1)
            .map(|s| &s[..s.find('"').unwrap()])
            .collect()
    }

    /// The markup of one task's row.
    fn row<'a>(svg: &'a str, id: &str) -> &'a str {
        let start = svg
            .find(&format!(r#"<g class="row" data-task="{id}">"#))
            .unwrap_or_else(|| panic!("no row {id}"));
        let end = svg[start..].find("</g>").unwrap() + start;
        &svg[start..end]
    }

    /// Every tag closed in order, attributes quoted, no raw `<` or `&` in text.
    fn assert_well_formed(svg: &str) {
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(svg.ends_with("</svg>"));
        assert!(!svg.contains("NaN") && !svg.contains("inf"));
        let mut stack: Vec<&str> = Vec::new();
        let mut rest = svg;
        while let Some(open) = rest.find('<') {
            let text = &rest[..open];
            assert!(!text.contains('>'), "stray '>' in {text:?}");
            for (i, _) in text.match_indices('&') {
                assert!(
                    ["&amp;", "&lt;", "&gt;", "&quot;", "&#39;"]
                        .iter()
                        .any(|e| text[i..].starts_with(e)),
                    "raw '&' in {text:?}"
                );
            }
            let close = rest[open..].find('>').expect("tag closed") + open;
            let tag = &rest[open + 1..close];
            assert!(!tag.contains('<'), "'<' inside {tag:?}");
            assert_eq!(tag.matches('"').count() % 2, 0, "unbalanced quotes in {tag:?}");
            if let Some(name) = tag.strip_prefix('/') {
                assert_eq!(stack.pop(), Some(name), "</{name}> out of order");
            } else if !tag.ends_with('/') {
                stack.push(tag.split_whitespace().next().unwrap());
            }
            rest = &rest[close + 1..];
        }
        assert!(rest.is_empty() && stack.is_empty(), "unclosed {stack:?}");
    }

    #[test]
    fn one_marker_per_milestone_of_each_live_task() {
        let (plan, tasks) = shipped();
        // III.2.3.4 leaves the plan file: its task is withdrawn.
        let mut def = shipped_definition();
        def.tasks.retain(|t| t.id.as_str() != "III.2.3.4");
        let (_, tasks) = load(&def, tasks);
        assert!(tasks.iter().any(|v| v.id.ends_with("/III.2.3.4") && v.task.withdrawn));
        let live: Vec<&TaskView> = tasks.iter().filter(|v| !v.task.withdrawn).collect();
        assert_eq!(live.len(), 44);
        let expected: usize = live.iter().map(|v| v.task.milestones.len()).sum();
        assert!(expected > 150, "the shipped plan has {expected} milestones");

        let svg = plan_timeline_svg(&plan, &tasks, today());
        assert_well_formed(&svg);
        assert_eq!(svg.matches(r#"class="ms "#).count(), expected);
        assert_eq!(row_ids(&svg).len(), 44);
        assert!(!svg.contains(r#"data-task="III.2.3.4""#));
        assert!(svg.contains("Không hiển thị 1 nhiệm vụ đã rút khỏi kế hoạch."));
        // Each standing is counted the way `timeliness` judges it.
        for t in LEGEND {
            let n = live
                .iter()
                .flat_map(|v| &v.task.milestones)
                .filter(|m| timeliness(m, today(), plan.deadlines()) == t)
                .count();
            assert_eq!(
                svg.matches(&format!(r#"class="ms ms-{}""#, t.css_class())).count(),
                n,
                "{t:?}"
            );
            assert!(svg.contains(&format!("{} ({n})", label(t))), "legend for {t:?}");
        }
        assert!(svg.len() < 150_000, "{} bytes", svg.len());
    }

    #[test]
    fn markers_show_where_each_milestone_stands() {
        let (plan, tasks) = shipped();
        let svg = plan_timeline_svg(&plan, &tasks, today());
        let first = |id: &str| {
            let v = tasks.iter().find(|v| v.id.ends_with(&format!("/{id}"))).unwrap();
            v.task.milestones[0].spec.id.to_string()
        };
        let marker = |class: &str, milestone: &str| format!(r#"class="ms ms-{class}" data-milestone="{milestone}""#);
        assert!(row(&svg, "II.1.1").contains(&marker("on-time", &first("II.1.1"))));
        assert!(row(&svg, "II.1.2").contains(&marker("late", &first("II.1.2"))));
        assert!(row(&svg, "III.1.1").contains(&marker("closed", &first("III.1.1"))));

        // Every open milestone due before today is overdue, and says so.
        let mut overdue = 0;
        for v in &tasks {
            let id = v.task.key.as_ref().unwrap().task.as_str();
            for m in v.task.milestones.iter().filter(|m| m.status.is_pending()) {
                let class = if m.due() < today() { "overdue" } else { "pending" };
                overdue += usize::from(class == "overdue");
                assert!(
                    row(&svg, id).contains(&marker(class, m.spec.id.as_str())),
                    "{id} {}",
                    m.spec.id
                );
            }
        }
        assert!(overdue > 20, "{overdue} overdue");
        assert_eq!(svg.matches(r#"class="ms ms-overdue""#).count(), overdue);
        // The tooltip: milestone, title, deadline as dd/mm/yyyy and the standing.
        let v = tasks.iter().find(|v| v.id.ends_with("/II.1.2")).unwrap();
        let m = &v.task.milestones[0];
        assert!(row(&svg, "II.1.2").contains(&format!(
            "<title>II.1.2 · {}\nHạn: {}\nTrễ hạn — đã duyệt</title>",
            escape(&m.spec.title),
            escape(&plan.deadlines().shown(m.due())),
        )));
    }

    #[test]
    fn rows_follow_the_plan_numbering_and_link_to_their_task() {
        let (plan, mut tasks) = shipped();
        tasks.reverse();
        let svg = plan_timeline_svg(&plan, &tasks, today());
        let ids = row_ids(&svg);
        let in_file: Vec<String> = shipped_definition().tasks.iter().map(|t| t.id.to_string()).collect();
        assert_eq!(ids, in_file);
        let pos = |id: &str| ids.iter().position(|i| *i == id).unwrap();
        assert!(pos("II.2.1.2") < pos("II.2.1.10"));
        assert!(pos("III.2.3.4") < pos("IV.1"));
        assert!(svg.contains(r#"<a href="/tasks/duc-pho-de-an-13/II.2.1.10"><title>II.2.1.10 — "#));
        assert!(row(&svg, "II.1.1").contains(r##"fill="#1f5fa8">II.1.1</text></a>"##));
    }

    #[test]
    fn titles_are_escaped() {
        let (plan, mut tasks) = shipped();
        let v = task(&mut tasks, "II.1.1");
        v.task.definition.as_mut().unwrap().title = r#"<script>alert("x")</script> & 'y'"#.into();
        v.task.milestones[0].spec.title = "<b>mốc</b>".into();
        let svg = plan_timeline_svg(&plan, &tasks, today());
        assert_well_formed(&svg);
        assert!(!svg.contains("<script>") && !svg.contains("<b>"));
        assert!(svg.contains("II.1.1 — &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;</title>"));
        assert!(svg.contains("II.1.1 · &lt;b&gt;mốc&lt;/b&gt;\nHạn: "));
    }

    #[test]
    fn the_axis_spans_the_period_with_years_and_today() {
        let (plan, tasks) = shipped();
        let svg = plan_timeline_svg(&plan, &tasks, today());
        assert!(svg.contains("Giai đoạn 23/11/2022 – 31/12/2026"));
        for year in 2023..=2026 {
            assert!(svg.contains(&format!(r##"fill="#555555">{year}</text>"##)), "{year}");
        }
        assert!(!svg.contains(">2022</text>") && !svg.contains(">2027</text>"));
        assert_eq!(svg.matches(r#"<g class="today">"#).count(), 1);
        assert!(svg.contains("Hôm nay 15/06/2024</text>"));
        // 15/06/2024 is 570 of the 1499 days: that far along the plot.
        let expected = PLOT_LEFT + 570.0 / 1499.0 * (PLOT_RIGHT - PLOT_LEFT);
        assert!(
            svg.contains(&format!(r#"<path d="M{expected:.1} "#)),
            "today at {expected:.1}"
        );
        // The accessible frame.
        assert!(svg.contains(r#"viewBox="0 0 1200 "#));
        assert!(
            !svg.contains("style="),
            "no inline style: the CSP allows only the stylesheet"
        );
        assert!(svg.contains(r#"role="group" aria-label="Tiến độ Kế hoạch thực hiện Đề án số 13-ĐA/TU "#));
        assert!(svg.contains(" - 2026: 45 nhiệm vụ, 179 mốc, từ 23/11/2022 đến 31/12/2026: 1 đúng hạn, "));

        for outside in [date("2022-01-01"), date("2027-01-01")] {
            let svg = plan_timeline_svg(&plan, &tasks, outside);
            assert_well_formed(&svg);
            assert!(!svg.contains("class=\"today\"") && !svg.contains("Hôm nay"));
        }
    }

    #[test]
    fn without_a_period_the_milestones_set_the_axis() {
        let (plan, tasks) = shipped();
        let headless = PlanView::empty(&plan.id);
        let first = tasks
            .iter()
            .flat_map(|v| &v.task.milestones)
            .map(|m| m.due())
            .min()
            .unwrap();
        let last = tasks
            .iter()
            .flat_map(|v| &v.task.milestones)
            .map(|m| m.due())
            .max()
            .unwrap();
        let svg = plan_timeline_svg(&headless, &tasks, today());
        assert_well_formed(&svg);
        assert!(svg.contains(&format!("Giai đoạn {} – {}", format_vn(first), format_vn(last))));
        assert_eq!(row_ids(&svg).len(), 45);

        // Nothing at all: an empty chart, still well formed.
        let svg = plan_timeline_svg(&headless, &[], today());
        assert_well_formed(&svg);
        assert!(svg.contains("Chưa có nhiệm vụ nào.") && svg.contains("Hôm nay"));
        assert!(!svg.contains("class=\"ms "));
    }

    #[test]
    fn an_extended_milestone_sits_at_its_new_deadline_even_past_the_period() {
        let (plan, mut tasks) = shipped();
        let view = task(&mut tasks, "IV.5");
        let lead = view.task.definition.as_ref().unwrap().lead.to_string();
        let last = view.task.milestones.last().unwrap().clone();
        assert_eq!(last.due(), date("2026-12-31"));
        run(
            view,
            TaskCommand {
                stamp: person(&lead, "Lê Văn Cường", "2026-12-20T02:00:00Z"),
                action: TaskAction::Extend {
                    milestone: last.spec.id.clone(),
                    agency: None,
                    until: date("2027-03-31"),
                    reason: "Chờ số liệu tổng kết".into(),
                },
            },
        );
        let svg = plan_timeline_svg(&plan, &tasks, date("2027-01-15"));
        assert_well_formed(&svg);
        assert!(svg.contains("Giai đoạn 23/11/2022 – 31/03/2027"));
        assert!(svg.contains(r##"fill="#555555">2027</text>"##));
        let row = row(&svg, "IV.5");
        let marker = format!(
            r#"<circle class="ms ms-pending" data-milestone="{}" cx="{PLOT_RIGHT:.1}" "#,
            last.spec.id
        );
        assert!(row.contains(&marker), "{row}");
        assert!(row.contains("Hạn: 31/03/2027 (đã gia hạn, hạn gốc 31/12/2026)\nChưa đến hạn — đang thực hiện</title>"));
        assert!(svg.contains("Hôm nay 15/01/2027"));
    }

    #[test]
    fn tasks_of_other_plans_are_left_out() {
        let (plan, mut tasks) = shipped();
        let mut other = tasks[0].clone();
        other.task.key = Some(TaskKey::parse("ke-hoach-khac/II.1.1").unwrap());
        other.id = "ke-hoach-khac/II.1.1".into();
        tasks.push(other);
        let svg = plan_timeline_svg(&plan, &tasks, today());
        assert_eq!(row_ids(&svg).len(), 45);
        assert!(!svg.contains("ke-hoach-khac"));
    }
}
