//! The yearly evaluation and the five-year review: a self-contained,
//! printable HTML report in Vietnamese, built from the state of every task as
//! it stood at the end of the year (or of the plan period), replayed from the
//! events, and stamped with the checkpoint root the store verified against.
//!
//! Everything a plan author or a user wrote (titles, agency names, people's
//! names) reaches the page through the template's auto-escaping; the inline
//! SVG charts are built here and escape their own text.

use crate::audit::asof::replay_until;
use crate::audit::verify::verify;
use crate::domain::dates::{deadline_instant, format_vn, local_date};
use crate::domain::ids::AgencyCode;
use crate::domain::plan::{Plan, PlanHeader};
use crate::domain::task::inputs::KpiKind;
use crate::domain::task::ABOUT_TOLERANCE;
use crate::domain::task::{
    format_number as number, with_unit, Baseline, Better, Comparator, KpiStanding, KpiTarget, Milestone, TargetValue,
    Task,
};
use crate::engine::Engine;
use crate::projections::views::{obligation_timeliness, Timeliness};
use crate::store::StoreError;
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use minijinja::{context, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

const HTML_TEMPLATE: &str = include_str!("../../templates/report/review.html");
const HTML_NAME: &str = "review.html";

/// What the report covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The yearly evaluation: milestones due within that year, state at its end.
    Year(i32),
    /// The five-year review: every milestone, state at the end of the plan period.
    Period,
}

/// A rendered report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Review {
    pub html: String,
    pub title: String,
    /// Tasks listed in section 3 (those with a milestone in scope).
    pub tasks: usize,
    /// Milestones in scope.
    pub milestones: usize,
    /// The latest checkpoint root, when the store verified and has one.
    pub root: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("lỗi mẫu báo cáo {template}: {source}")]
    Template {
        template: &'static str,
        #[source]
        source: minijinja::Error,
    },
    #[error("chưa nạp kế hoạch nào: hãy nạp kế hoạch (kehoach plan load <tệp>) trước khi lập báo cáo")]
    NoPlan,
    #[error("năm {year} nằm ngoài thời kỳ của kế hoạch ({first}–{last}): chỉ lập được báo cáo năm cho các năm {first}–{last}")]
    YearOutsidePeriod { year: i32, first: i32, last: i32 },
}

/// Writes the report for `scope` from the engine's store.
pub async fn review(engine: &Engine, scope: Scope) -> Result<Review, ReportError> {
    engine.catch_up().await?;
    let plan = engine
        .store
        .plan_views()
        .await?
        .into_iter()
        .map(|v| v.plan)
        .find(|p| p.header.is_some())
        .ok_or(ReportError::NoPlan)?;
    let header = plan.header.clone().ok_or(ReportError::NoPlan)?;
    let tz = header.tz();
    let (first, last) = (header.start.year(), header.end.year());
    let period_end = match scope {
        Scope::Year(year) if year < first || year > last => {
            return Err(ReportError::YearOutsidePeriod { year, first, last })
        }
        Scope::Year(year) => NaiveDate::from_ymd_opt(year, 12, 31).expect("31 December exists"),
        Scope::Period => header.end,
    };
    let now = engine.clock.now();
    let end_instant = deadline_instant(period_end, tz);
    let as_of = end_instant.min(now);

    // When the record begins: before it, nothing was recorded, and the
    // report says so rather than showing bare zeros.
    let record_start = engine.store.record_start(header.id.as_str()).await?;
    let views = engine.store.task_views().await?;
    let integrity = match verify(&engine.store, |_| {}).await? {
        Ok(summary) => Integrity::Verified(summary.last_root),
        Err(problem) => Integrity::Broken(problem.to_string()),
    };

    let prefix = format!("{}/", header.id);
    let mut tasks = Vec::new();
    let mut withdrawn = 0;
    for view in views.iter().filter(|v| v.id.starts_with(&prefix)) {
        let events = engine.store.task_events(&view.id).await?;
        let task = replay_until(&events, as_of);
        if task.definition.is_none() {
            continue; // not yet registered at that time
        }
        if task.withdrawn {
            withdrawn += 1;
            continue;
        }
        let id = view.id[prefix.len()..].to_string();
        tasks.push((id, task));
    }

    let facts = Facts {
        plan: &plan,
        header: &header,
        scope,
        now,
        as_of,
        as_of_is_end: as_of == end_instant,
        before_record: record_start.filter(|start| as_of < *start),
        integrity,
        tasks: &tasks,
        withdrawn,
        simulation: engine.is_simulation(),
    };
    facts.render()
}

enum Integrity {
    Verified(Option<String>),
    Broken(String),
}

/// Everything the report is made from, gathered; rendering is pure.
struct Facts<'a> {
    plan: &'a Plan,
    header: &'a PlanHeader,
    scope: Scope,
    now: DateTime<Utc>,
    as_of: DateTime<Utc>,
    /// Whether `as_of` is the end of the year / period (not clipped to now).
    as_of_is_end: bool,
    /// When the record began, if that is after `as_of`.
    before_record: Option<DateTime<Utc>>,
    integrity: Integrity,
    tasks: &'a [(String, Task)],
    withdrawn: usize,
    /// Made from a simulation store: marked "MÔ PHỎNG".
    simulation: bool,
}

/// The counts inspectors expect, for a set of milestones.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Counts {
    total: usize,
    on_time: usize,
    late: usize,
    overdue: usize,
    not_yet_due: usize,
    closed: usize,
}

impl Counts {
    fn add(&mut self, t: Timeliness) {
        self.total += 1;
        match t {
            Timeliness::OnTime => self.on_time += 1,
            Timeliness::ApprovedLate => self.late += 1,
            Timeliness::Overdue => self.overdue += 1,
            Timeliness::NotYetDue => self.not_yet_due += 1,
            Timeliness::Closed => self.closed += 1,
        }
    }

    /// The segments of a stacked bar, in legend order.
    fn segments(&self) -> [(usize, Timeliness); 5] {
        [
            (self.on_time, Timeliness::OnTime),
            (self.late, Timeliness::ApprovedLate),
            (self.overdue, Timeliness::Overdue),
            (self.not_yet_due, Timeliness::NotYetDue),
            (self.closed, Timeliness::Closed),
        ]
    }

    fn to_value(self) -> Value {
        context! {
            total => self.total,
            on_time => self.on_time,
            late => self.late,
            overdue => self.overdue,
            not_yet_due => self.not_yet_due,
            closed => self.closed,
        }
    }
}

const LEGEND: [Timeliness; 5] = Timeliness::LEGEND;

fn timeliness_color(t: Timeliness) -> &'static str {
    match t {
        Timeliness::OnTime => "#1e7b34",
        Timeliness::ApprovedLate => "#c77700",
        Timeliness::Overdue => "#b3261e",
        Timeliness::NotYetDue => "#1f5fa8",
        Timeliness::Closed => "#9e9e9e",
    }
}

const MET_COLOR: &str = "#1e7b34";
const UNMET_COLOR: &str = "#b3261e";
const TARGET_COLOR: &str = "#1e7b34";

impl Facts<'_> {
    fn tz(&self) -> chrono_tz::Tz {
        self.header.tz()
    }

    /// The local day the timeliness is judged on: the day of the as-of instant
    /// (the first day after the year when it is the year's end, so that a
    /// deadline of 31/12 not met by then counts as overdue).
    fn judged_on(&self) -> NaiveDate {
        local_date(self.as_of, self.tz())
    }

    fn in_scope(&self, m: &Milestone) -> bool {
        match self.scope {
            // The plan's own year of the milestone, even if extended into the next one.
            Scope::Year(y) => m.spec.due.year() == y,
            Scope::Period => true,
        }
    }

    fn title(&self) -> String {
        match self.scope {
            Scope::Year(y) => format!("Báo cáo đánh giá kết quả thực hiện Kế hoạch năm {y}"),
            Scope::Period => {
                let (first, last) = (self.header.start.year(), self.header.end.year());
                format!(
                    "Báo cáo tổng kết {:02} năm thực hiện Đề án 13 ({first}–{last})",
                    last - first + 1
                )
            }
        }
    }

    fn agency_name(&self, code: &AgencyCode) -> String {
        self.plan.agency_name(code)
    }

    fn render(&self) -> Result<Review, ReportError> {
        let tz = self.tz();
        let dl = crate::domain::deadline::Deadlines::of(self.header);
        let today = self.judged_on();
        let mut summary = Counts::default();
        let mut by_agency: BTreeMap<AgencyCode, Counts> = BTreeMap::new();
        let mut task_rows = Vec::new();
        for (id, task) in self.tasks {
            let Some(def) = &task.definition else { continue };
            let mut rows = Vec::new();
            // One row per obligation: each agency's part is judged on its own.
            for m in task.milestones.iter().filter(|m| self.in_scope(m)) {
                for o in &m.obligations {
                    let t = obligation_timeliness(o, today, dl);
                    summary.add(t);
                    for a in def.implementers.iter().filter(|a| o.owed_by(a, &def.implementers)) {
                        by_agency.entry(a.clone()).or_default().add(t);
                    }
                    rows.push(context! {
                        id => m.spec.id.to_string(),
                        title => m.spec.title.clone(),
                        agency => o.agency.as_ref().map_or_else(|| "Chung".to_string(), |a| self.agency_name(a)),
                        due => dl.shown(o.due),
                        extended_from => o.extended_until.map(|_| format_vn(m.spec.due)),
                        status => o.status.label_vi(),
                        completed => o.completed_on(tz).map(format_vn),
                        recorded => o.recorded.is_some(),
                        approved_by => o.approved.as_ref().map(|s| self.plan.actor_text(&s.by)),
                        timeliness => Timeliness::label_vi(t),
                        class => t.css_class(),
                    });
                }
            }
            if rows.is_empty() {
                continue;
            }
            task_rows.push(context! {
                id => id.clone(),
                title => def.title.clone(),
                lead => self.agency_name(&def.lead),
                implementers => def.implementers.iter().map(|a| self.agency_name(a)).collect::<Vec<_>>().join("; "),
                milestones => rows,
            });
        }

        let widest = by_agency.values().map(|c| c.total).max().unwrap_or(0);
        let agencies: Vec<Value> = by_agency
            .iter()
            .map(|(code, c)| {
                context! {
                    code => code.to_string(),
                    name => self.agency_name(code),
                    counts => c.to_value(),
                    bar => Value::from_safe_string(stacked_bar(c, widest)),
                }
            })
            .collect();
        let legend: Vec<Value> = LEGEND
            .iter()
            .map(|t| {
                context! {
                    label => Timeliness::label_vi(*t),
                    swatch => Value::from_safe_string(swatch(timeliness_color(*t))),
                }
            })
            .collect();

        let kpis = self.kpi_rows();
        let title = self.title();
        let due_so_far = summary.on_time + summary.late + summary.overdue;
        let on_time_rate = (due_so_far > 0).then(|| percent(summary.on_time, due_so_far));
        let done_rate = (due_so_far > 0).then(|| percent(summary.on_time + summary.late, due_so_far));
        let (verified, integrity_text, root) = match &self.integrity {
            Integrity::Verified(Some(root)) => (
                true,
                format!("Dữ liệu đã được kiểm tra toàn vẹn; gốc điểm kiểm: {root}"),
                Some(root.clone()),
            ),
            Integrity::Verified(None) => (
                true,
                "Dữ liệu đã được kiểm tra toàn vẹn; chưa có điểm kiểm".to_string(),
                None,
            ),
            Integrity::Broken(problem) => (false, problem.clone(), None),
        };
        let issuer = self.agency_name(&self.header.issuer);
        let ctx = context! {
            title => title.clone(),
            issuer => issuer.to_uppercase(),
            plan_title => self.header.title.clone(),
            document => self.header.document.clone(),
            scope => self.scope_text(),
            produced => format_vn(local_date(self.now, tz)),
            as_of => self.as_of_text(),
            before_record => self.before_record.map(|t| super::history::record_start_text(t, tz)),
            verified => verified,
            integrity => integrity_text,
            withdrawn => self.withdrawn,
            is_period => matches!(self.scope, Scope::Period),
            summary => summary.to_value(),
            due_so_far => due_so_far,
            on_time_rate => on_time_rate,
            done_rate => done_rate,
            legend => legend,
            agencies => agencies,
            tasks => task_rows.clone(),
            kpis => kpis,
            simulation => self.simulation,
        };
        let html = render_html(&ctx)?;
        Ok(Review {
            html,
            title,
            tasks: task_rows.len(),
            milestones: summary.total,
            root,
        })
    }

    fn scope_text(&self) -> String {
        match self.scope {
            Scope::Year(y) => format!("năm {y} (các mốc có hạn trong năm {y})"),
            Scope::Period => format!(
                "cả thời kỳ thực hiện, từ {} đến {}",
                format_vn(self.header.start),
                format_vn(self.header.end)
            ),
        }
    }

    fn as_of_text(&self) -> String {
        let tz = self.tz();
        if self.as_of_is_end {
            let last_day = local_date(self.as_of, tz).pred_opt().unwrap_or(self.header.end);
            format!("hết ngày {}", format_vn(last_day))
        } else {
            let local = self.as_of.with_timezone(&tz);
            format!(
                "{} ngày {} (thời điểm lập báo cáo, trước khi kết thúc kỳ báo cáo)",
                local.format("%H:%M"),
                format_vn(local.date_naive())
            )
        }
    }

    /// Section 4: every KPI target of the live tasks, with the values
    /// reported. Only approved values are results ("đạt / chưa đạt"); a
    /// value awaiting approval, returned or only reported as progress is
    /// shown as such. Where several agencies report one KPI, each one's
    /// value is listed, with the sum of the approved ones for a count.
    fn kpi_rows(&self) -> Vec<Value> {
        let mut out = Vec::new();
        for (id, task) in self.tasks {
            let Some(def) = &task.definition else { continue };
            for target in &def.kpis {
                let entries = self.kpi_entries(task, target);
                let count = KpiKind::of(target) == KpiKind::Count;
                let points: Vec<(String, Option<f64>)> = entries
                    .iter()
                    .map(|(label, parts)| (label.clone(), result_of(target, parts)))
                    .collect();
                let reported: Vec<Value> = entries
                    .iter()
                    .filter(|(_, parts)| !parts.is_empty())
                    .map(|(label, parts)| {
                        let approved: Vec<f64> = parts
                            .iter()
                            .filter(|p| p.standing == KpiStanding::Approved)
                            .map(|p| p.value)
                            .collect();
                        let shown: Vec<Value> = parts
                            .iter()
                            .map(|p| {
                                let is_result = p.standing == KpiStanding::Approved;
                                context! {
                                    who => p.who.clone(),
                                    value => with_unit(p.value, &target.unit),
                                    result => is_result,
                                    met => is_result && target.met_by(p.value),
                                    state => p.standing.label_vi(),
                                }
                            })
                            .collect();
                        context! {
                            label => label.clone(),
                            parts => shown,
                            sum => (count && parts.len() > 1 && !approved.is_empty())
                                .then(|| with_unit(approved.iter().sum(), &target.unit)),
                        }
                    })
                    .collect();
                let has_data = !reported.is_empty();
                out.push(context! {
                    task_id => id.clone(),
                    task_title => def.title.clone(),
                    label => target.label.clone(),
                    target => target.to_string(),
                    baseline => target.baseline.map(|b| baseline_text(&b, &target.unit)),
                    values => reported,
                    has_data => has_data,
                    chart => has_data.then(|| Value::from_safe_string(kpi_chart(&points, target))),
                });
            }
        }
        out
    }

    /// The values of one KPI, each obligation's with where it stands: for a
    /// year, per milestone of that year that has any; for the period, per
    /// year (that year's latest milestone with any), with the silent years
    /// empty.
    fn kpi_entries(&self, task: &Task, target: &KpiTarget) -> Vec<(String, Vec<KpiPart>)> {
        let several = |m: &Milestone| m.obligations.len() > 1;
        let parts = |m: &Milestone| -> Vec<KpiPart> {
            m.obligations
                .iter()
                .filter_map(|o| {
                    let (value, standing) = o.kpi_value(&target.key)?;
                    value.is_finite().then(|| KpiPart {
                        who: o.agency.as_ref().filter(|_| several(m)).map(|a| self.agency_name(a)),
                        value,
                        standing,
                    })
                })
                .collect()
        };
        match self.scope {
            Scope::Year(y) => task
                .milestones
                .iter()
                .filter(|m| m.spec.due.year() == y)
                .map(|m| (format_vn(m.spec.due), parts(m)))
                .filter(|(_, p)| !p.is_empty())
                .collect(),
            Scope::Period => {
                let mut by_year: BTreeMap<i32, (NaiveDate, &str, Vec<KpiPart>)> = BTreeMap::new();
                for m in &task.milestones {
                    let p = parts(m);
                    if p.is_empty() {
                        continue;
                    }
                    let key = (m.spec.due, m.spec.id.as_str());
                    match by_year.get(&m.spec.due.year()) {
                        Some(slot) if (slot.0, slot.1) > key => {}
                        _ => {
                            by_year.insert(m.spec.due.year(), (key.0, key.1, p));
                        }
                    }
                }
                let years: BTreeSet<i32> = (self.header.first_year..=self.header.last_year)
                    .chain(by_year.keys().copied())
                    .collect();
                years
                    .into_iter()
                    .map(|y| (y.to_string(), by_year.remove(&y).map(|s| s.2).unwrap_or_default()))
                    .collect()
            }
        }
    }
}

/// One obligation's value of a KPI, with where it stands.
struct KpiPart {
    /// The agency's name, where several report the KPI.
    who: Option<String>,
    value: f64,
    standing: KpiStanding,
}

/// What the chart plots for an entry: the approved value, or, where several
/// agencies' values are approved, the least favourable one (its bar is
/// green only when every agency met the target). None without an approved
/// value.
fn result_of(target: &KpiTarget, parts: &[KpiPart]) -> Option<f64> {
    let approved = parts
        .iter()
        .filter(|p| p.standing == KpiStanding::Approved)
        .map(|p| p.value);
    match target.better() {
        Better::Lower => approved.reduce(f64::max),
        Better::Higher | Better::Within => approved.reduce(f64::min),
    }
}

fn render_html(ctx: &Value) -> Result<String, ReportError> {
    let template_error = |source| ReportError::Template {
        template: HTML_NAME,
        source,
    };
    let env = crate::templates::environment(&[(HTML_NAME, HTML_TEMPLATE)]).map_err(template_error)?;
    env.get_template(HTML_NAME)
        .and_then(|t| t.render(ctx))
        .map_err(template_error)
}

use crate::templates::escape_html as escape;

fn baseline_text(b: &Baseline, unit: &str) -> String {
    format!("{} (năm {})", with_unit(b.value, unit), b.year)
}

fn percent(part: usize, whole: usize) -> String {
    let p = part as f64 * 100.0 / whole as f64;
    format!("{}%", number((p * 10.0).round() / 10.0))
}

fn swatch(color: &str) -> String {
    format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="12" height="12" viewBox="0 0 12 12" aria-hidden="true"><rect x="0" y="0" width="12" height="12" fill="{color}"/></svg>"#
    )
}

const BAR_WIDTH: f64 = 130.0;
const BAR_HEIGHT: f64 = 16.0;

/// A stacked horizontal bar of the counts, scaled so that `widest` milestones
/// fill the whole width (rows of one table compare by length).
fn stacked_bar(c: &Counts, widest: usize) -> String {
    let aria = c
        .segments()
        .iter()
        .map(|(n, t)| format!("{}: {n}", Timeliness::label_vi(*t)))
        .collect::<Vec<_>>()
        .join(", ");
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" aria-label="{aria}">"#,
        w = BAR_WIDTH,
        h = BAR_HEIGHT,
        aria = escape(&aria),
    );
    let _ = write!(
        svg,
        r##"<rect x="0" y="0" width="{BAR_WIDTH}" height="{BAR_HEIGHT}" fill="#f3f3f3" stroke="#cccccc" stroke-width="0.5"/>"##
    );
    let scale = widest.max(c.total);
    if scale > 0 {
        let mut x = 0.0;
        for (n, t) in c.segments() {
            if n == 0 {
                continue;
            }
            let w = BAR_WIDTH * n as f64 / scale as f64;
            let _ = write!(
                svg,
                r#"<rect x="{x:.2}" y="0" width="{w:.2}" height="{BAR_HEIGHT}" fill="{}"><title>{}: {n}</title></rect>"#,
                timeliness_color(t),
                escape(Timeliness::label_vi(t)),
            );
            if w >= 14.0 {
                let _ = write!(
                    svg,
                    r##"<text x="{:.2}" y="12" font-size="10" text-anchor="middle" fill="#ffffff" font-family="Arial, sans-serif">{n}</text>"##,
                    x + w / 2.0,
                );
            }
            x += w;
        }
    }
    svg.push_str("</svg>");
    svg
}

/// The values drawn as dashed target lines: both ends of a range, else the target itself.
fn target_lines(target: &KpiTarget) -> Vec<f64> {
    match target.target {
        TargetValue::Range { min, max } if min != max => vec![min, max],
        TargetValue::Range { min, .. } => vec![min],
        TargetValue::Value(v) => vec![v],
    }
}

const CHART_WIDTH: f64 = 260.0;
const CHART_HEIGHT: f64 = 130.0;
const CHART_LEFT: f64 = 40.0;
const CHART_RIGHT: f64 = 8.0;
const CHART_TOP: f64 = 12.0;
const CHART_BOTTOM: f64 = 20.0;

/// A small bar chart of a KPI's values (one bar per label, green when the
/// target is met, red when not, a dash when nothing was reported), with the
/// target as a dashed line or, for ranges and "about", a shaded band, and the
/// baseline as a dotted grey line.
fn kpi_chart(points: &[(String, Option<f64>)], target: &KpiTarget) -> String {
    let values: Vec<f64> = points
        .iter()
        .filter_map(|(_, v)| *v)
        .filter(|v| v.is_finite())
        .collect();
    let (t_lo, t_hi, band) = match (target.target, target.comparator) {
        (TargetValue::Range { min, max }, _) => (min.min(max), min.max(max), true),
        (TargetValue::Value(v), Comparator::About) => {
            (v - ABOUT_TOLERANCE * v.abs(), v + ABOUT_TOLERANCE * v.abs(), true)
        }
        (TargetValue::Value(v), _) => (v, v, false),
    };
    let baseline = target.baseline.map(|b| b.value).filter(|v| v.is_finite());
    let mut lo: f64 = 0.0;
    let mut hi: f64 = 0.0;
    for v in values.iter().copied().chain([t_lo, t_hi]).chain(baseline) {
        if v.is_finite() {
            lo = lo.min(v);
            hi = hi.max(v);
        }
    }
    if hi - lo <= f64::EPSILON {
        hi = lo + 1.0;
    }
    hi += (hi - lo) * 0.15;
    let plot_w = CHART_WIDTH - CHART_LEFT - CHART_RIGHT;
    let plot_h = CHART_HEIGHT - CHART_TOP - CHART_BOTTOM;
    let y = |v: f64| CHART_TOP + (hi - v) / (hi - lo) * plot_h;
    let x_axis = y(0.0);

    let aria = format!("Biểu đồ chỉ tiêu {}: mục tiêu {}", target.label, target);
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" aria-label="{aria}" font-family="Arial, sans-serif">"#,
        w = CHART_WIDTH,
        h = CHART_HEIGHT,
        aria = escape(&aria),
    );
    // Target band or line, under the bars.
    let right = CHART_WIDTH - CHART_RIGHT;
    if band {
        let _ = write!(
            svg,
            r#"<rect x="{CHART_LEFT}" y="{:.2}" width="{plot_w:.2}" height="{:.2}" fill="{TARGET_COLOR}" fill-opacity="0.15"/>"#,
            y(t_hi),
            (y(t_lo) - y(t_hi)).max(1.0),
        );
    }
    for v in target_lines(target) {
        let yy = y(v);
        let _ = write!(
            svg,
            r#"<line x1="{CHART_LEFT}" y1="{yy:.2}" x2="{right}" y2="{yy:.2}" stroke="{TARGET_COLOR}" stroke-width="1" stroke-dasharray="4 3"/><text x="{:.2}" y="{:.2}" font-size="9" text-anchor="end" fill="{TARGET_COLOR}">{}</text>"#,
            CHART_LEFT - 3.0,
            yy + 3.0,
            escape(&number(v)),
        );
    }
    if let Some(b) = baseline {
        let yy = y(b);
        let _ = write!(
            svg,
            r##"<line x1="{CHART_LEFT}" y1="{yy:.2}" x2="{right}" y2="{yy:.2}" stroke="#777777" stroke-width="1" stroke-dasharray="1 2"/><text x="{right}" y="{:.2}" font-size="8" text-anchor="end" fill="#777777">gốc {}</text>"##,
            yy - 2.0,
            escape(&number(b)),
        );
    }
    // Axes.
    let _ = write!(
        svg,
        r##"<line x1="{CHART_LEFT}" y1="{CHART_TOP}" x2="{CHART_LEFT}" y2="{:.2}" stroke="#999999" stroke-width="0.8"/><line x1="{CHART_LEFT}" y1="{x_axis:.2}" x2="{right}" y2="{x_axis:.2}" stroke="#999999" stroke-width="0.8"/><text x="{:.2}" y="{:.2}" font-size="9" text-anchor="end" fill="#555555">0</text>"##,
        CHART_TOP + plot_h,
        CHART_LEFT - 3.0,
        x_axis + 3.0,
    );
    if points.is_empty() {
        let _ = write!(
            svg,
            r##"<text x="{:.2}" y="{:.2}" font-size="10" text-anchor="middle" fill="#777777">chưa có số liệu</text>"##,
            CHART_LEFT + plot_w / 2.0,
            CHART_TOP + plot_h / 2.0,
        );
    }
    let slot = plot_w / points.len().max(1) as f64;
    let bar_w = (slot * 0.6).min(34.0);
    let label_y = CHART_HEIGHT - 6.0;
    for (i, (label, v)) in points.iter().enumerate() {
        let cx = CHART_LEFT + slot * (i as f64 + 0.5);
        let _ = write!(
            svg,
            r##"<text x="{cx:.2}" y="{label_y:.2}" font-size="9" text-anchor="middle" fill="#333333">{}</text>"##,
            escape(label),
        );
        match v.filter(|v| v.is_finite()) {
            Some(v) => {
                let met = target.met_by(v);
                let (top, bottom) = (y(v.max(0.0)), y(v.min(0.0)));
                let color = if met { MET_COLOR } else { UNMET_COLOR };
                let verdict = if met { "đạt" } else { "chưa đạt" };
                let _ = write!(
                    svg,
                    r##"<rect x="{:.2}" y="{top:.2}" width="{bar_w:.2}" height="{:.2}" fill="{color}"><title>{}: {} ({verdict})</title></rect><text x="{cx:.2}" y="{:.2}" font-size="9" text-anchor="middle" fill="{color}" stroke="#ffffff" stroke-width="2.5" paint-order="stroke">{}</text>"##,
                    cx - bar_w / 2.0,
                    (bottom - top).max(0.5),
                    escape(label),
                    escape(&number(v)),
                    (top - 2.0).max(9.0),
                    escape(&number(v)),
                );
            }
            None => {
                let _ = write!(
                    svg,
                    r##"<text x="{cx:.2}" y="{:.2}" font-size="10" text-anchor="middle" fill="#999999">—</text>"##,
                    x_axis - 3.0,
                );
            }
        }
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::KpiKey;

    fn kpi(comparator: Comparator, target: TargetValue) -> KpiTarget {
        KpiTarget {
            better: None,
            key: KpiKey::parse("k").unwrap(),
            label: "Tỷ lệ <thử> & \"nháy\"".into(),
            comparator,
            target,
            unit: "%".into(),
            per_year: false,
            baseline: None,
        }
    }

    #[test]
    fn meets_each_comparator() {
        let v = |c| kpi(c, TargetValue::Value(85.0));
        assert!(v(Comparator::AtLeast).met_by(85.0));
        assert!(v(Comparator::AtLeast).met_by(90.0));
        assert!(!v(Comparator::AtLeast).met_by(84.9));
        assert!(!v(Comparator::MoreThan).met_by(85.0));
        assert!(v(Comparator::MoreThan).met_by(85.1));
        assert!(v(Comparator::AtMost).met_by(85.0));
        assert!(!v(Comparator::AtMost).met_by(85.1));
        assert!(!v(Comparator::LessThan).met_by(85.0));
        assert!(v(Comparator::LessThan).met_by(84.0));
        assert!(v(Comparator::Equal).met_by(85.0));
        assert!(!v(Comparator::Equal).met_by(85.5));
        assert!(!v(Comparator::AtLeast).met_by(f64::NAN));
    }

    #[test]
    fn about_is_within_two_percent_relative() {
        let t = kpi(Comparator::About, TargetValue::Value(92.0));
        // 2% of 92 is 1.84.
        assert!(t.met_by(92.0));
        assert!(t.met_by(90.2));
        assert!(t.met_by(93.84));
        assert!(!t.met_by(90.1));
        assert!(!t.met_by(93.9));
        let zero = kpi(Comparator::About, TargetValue::Value(0.0));
        assert!(zero.met_by(0.0));
        assert!(!zero.met_by(0.1));
    }

    #[test]
    fn between_is_inclusive() {
        let t = kpi(Comparator::Between, TargetValue::Range { min: 0.4, max: 0.6 });
        assert!(t.met_by(0.4));
        assert!(t.met_by(0.5));
        assert!(t.met_by(0.6));
        assert!(!t.met_by(0.39));
        assert!(!t.met_by(0.61));
        // A range with a one-sided comparator uses the side that matters.
        let at_least = kpi(Comparator::AtLeast, TargetValue::Range { min: 3.0, max: 4.0 });
        assert!(at_least.met_by(3.0));
        assert!(at_least.met_by(5.0));
        assert!(!at_least.met_by(2.9));
    }

    #[test]
    fn numbers_are_written_without_noise() {
        assert_eq!(number(85.0), "85");
        assert_eq!(number(0.45), "0,45");
        assert_eq!(number(2.0 / 3.0), "0,667");
        assert_eq!(number(-0.0001), "0");
        assert_eq!(with_unit(3.5, "m²"), "3,5 m²");
        assert_eq!(with_unit(85.0, "%"), "85%");
    }

    /// Checks that every tag is closed in order, attributes are quoted and
    /// no raw `&`, `<` or non-number sneaks into the text.
    fn assert_well_formed(svg: &str) {
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""), "{svg}");
        assert!(svg.ends_with("</svg>"), "{svg}");
        assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
        let mut stack: Vec<String> = Vec::new();
        let mut rest = svg;
        while let Some(start) = rest.find('<') {
            let text = &rest[..start];
            assert!(!text.contains('>'), "stray '>' in text {text:?}");
            check_entities(text);
            let end = rest[start..].find('>').expect("tag closed") + start;
            let tag = &rest[start + 1..end];
            assert!(!tag.contains('<'), "'<' inside tag {tag:?}");
            assert_eq!(tag.matches('"').count() % 2, 0, "unbalanced quotes in {tag:?}");
            if let Some(name) = tag.strip_prefix('/') {
                assert_eq!(stack.pop().as_deref(), Some(name), "closing {name} out of order");
            } else if !tag.ends_with('/') {
                let name = tag.split_whitespace().next().expect("tag name");
                stack.push(name.to_string());
            }
            rest = &rest[end + 1..];
        }
        assert!(rest.is_empty(), "text after the root: {rest:?}");
        assert!(stack.is_empty(), "unclosed tags {stack:?}");
    }

    fn check_entities(text: &str) {
        for (i, _) in text.match_indices('&') {
            let entity = &text[i..];
            assert!(
                ["&amp;", "&lt;", "&gt;", "&quot;", "&#39;"]
                    .iter()
                    .any(|e| entity.starts_with(e)),
                "raw '&' in {text:?}"
            );
        }
    }

    #[test]
    fn stacked_bar_is_well_formed_empty_and_full() {
        let empty = stacked_bar(&Counts::default(), 0);
        assert_well_formed(&empty);
        assert!(!empty.contains("<title>"));

        let mut c = Counts::default();
        for t in [
            Timeliness::OnTime,
            Timeliness::OnTime,
            Timeliness::ApprovedLate,
            Timeliness::Overdue,
            Timeliness::NotYetDue,
            Timeliness::Closed,
        ] {
            c.add(t);
        }
        let full = stacked_bar(&c, 12);
        assert_well_formed(&full);
        assert_eq!(full.matches("<title>").count(), 5);
        assert!(full.contains("<title>đúng hạn: 2</title>"));
        // Half the widest row: the segments end at half the width.
        assert!(full.contains(r#"x="54.17" y="0" width="10.83""#), "{full}");
    }

    #[test]
    fn kpi_chart_is_well_formed_empty_and_with_data() {
        let mut t = kpi(Comparator::Between, TargetValue::Range { min: 0.4, max: 0.6 });
        let empty = kpi_chart(&[], &t);
        assert_well_formed(&empty);
        assert!(empty.contains("chưa có số liệu"));
        // The label's markup is escaped in the accessible name.
        assert!(empty.contains("&lt;thử&gt; &amp; &quot;nháy&quot;"));

        t.baseline = Some(Baseline { value: 0.3, year: 2021 });
        let points = vec![
            ("2023".to_string(), Some(0.5)),
            ("2024".to_string(), None),
            ("2025".to_string(), Some(0.7)),
            ("<x>".to_string(), Some(-0.2)),
        ];
        let chart = kpi_chart(&points, &t);
        assert_well_formed(&chart);
        assert!(chart.contains(&format!(r#"fill="{MET_COLOR}"><title>2023: 0,5 (đạt)</title>"#)));
        assert!(chart.contains(&format!(r#"fill="{UNMET_COLOR}"><title>2025: 0,7 (chưa đạt)</title>"#)));
        assert!(chart.contains("&lt;x&gt;"));
        assert!(chart.contains("gốc 0,3"));

        let line = kpi_chart(
            &[("2024".into(), Some(120.0))],
            &kpi(Comparator::AtLeast, TargetValue::Value(85.0)),
        );
        assert_well_formed(&line);
        assert!(line.contains("stroke-dasharray=\"4 3\""));
    }
}
