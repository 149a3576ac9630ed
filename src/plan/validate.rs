//! Turns a raw plan file into a `PlanDefinition`, reporting every problem
//! found rather than stopping at the first.

use super::diagnostics::Reporter;
use super::raw::*;
use super::{PlanDefinition, PlanTask};
use crate::domain::calendar::WorkCalendar;
use crate::domain::dates::{parse_date, parse_month_end, quarter_end, DayMonth};
use crate::domain::deadline::DeadlineRule;
use crate::domain::ids::{AgencyCode, KpiKey, MilestoneId, PlanId, TaskId};
use crate::domain::plan::{Agency, Member, PlanHeader, PlanSource};
use crate::domain::reminders::{PolicyOverride, ReminderPolicy};
use crate::domain::task::{
    Baseline, Better, Comparator, KpiTarget, MilestoneKind, MilestoneSpec, ObligationMode, SourceRef, TargetValue,
    TaskDefinition,
};
use chrono::{Datelike, NaiveDate};
use chrono_tz::Tz;
use std::collections::HashMap;
use std::str::FromStr;

const DEFAULT_TZ: &str = "Asia/Ho_Chi_Minh";

struct Ctx<'r, 'a> {
    r: &'r mut Reporter<'a>,
    agencies: HashMap<String, usize>,
    start: Option<NaiveDate>,
    end: Option<NaiveDate>,
    years: Option<(i32, i32)>,
    yearly_report: Option<DayMonth>,
    five_year_review: Option<NaiveDate>,
}

fn known_list(map: &HashMap<String, usize>) -> String {
    let mut codes: Vec<&str> = map.keys().map(String::as_str).collect();
    codes.sort_unstable();
    format!("các mã đã khai báo: {}", codes.join(", "))
}

impl Ctx<'_, '_> {
    fn date(&mut self, value: &S<String>, what: &str) -> Option<NaiveDate> {
        match parse_date(value.get_ref()) {
            Ok(d) => Some(d),
            Err(e) => {
                self.r.error(value.span(), format!("{what}: {e}"), None);
                None
            }
        }
    }

    fn agency(&mut self, value: &S<String>, role: &str) -> Option<AgencyCode> {
        let raw = value.get_ref();
        if self.agencies.contains_key(raw) {
            return AgencyCode::parse(raw).ok();
        }
        let hint = match self.agencies.keys().find(|k| k.eq_ignore_ascii_case(raw)) {
            Some(k) => format!("ý bạn là {k}?"),
            None => known_list(&self.agencies),
        };
        self.r.error(
            value.span(),
            format!("mã cơ quan không có trong danh mục ({role}): {raw:?}"),
            Some(hint),
        );
        None
    }

    fn agencies(&mut self, values: &[S<String>], role: &str) -> Vec<AgencyCode> {
        let mut out: Vec<AgencyCode> = Vec::new();
        for v in values {
            if let Some(code) = self.agency(v, role) {
                if out.contains(&code) {
                    self.r.error(
                        v.span(),
                        format!("mã cơ quan {code} lặp lại trong danh sách {role}"),
                        None,
                    );
                } else {
                    out.push(code);
                }
            }
        }
        out
    }

    fn in_period(&mut self, due: NaiveDate, span: std::ops::Range<usize>, what: &str) -> bool {
        if let (Some(start), Some(end)) = (self.start, self.end) {
            if due < start || due > end {
                self.r.error(
                    span,
                    format!("{what}: hạn {} nằm ngoài thời kỳ của kế hoạch", due.format("%d/%m/%Y")),
                    Some(format!(
                        "thời kỳ từ {} đến {}",
                        start.format("%d/%m/%Y"),
                        end.format("%d/%m/%Y")
                    )),
                );
                return false;
            }
        }
        true
    }

    fn emails(&mut self, values: &[S<String>]) -> Vec<String> {
        let mut out = Vec::new();
        for v in values {
            let e = v.get_ref().trim();
            let valid = e.split_once('@').is_some_and(|(l, d)| !l.is_empty() && d.contains('.'))
                && !e
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || matches!(c, ',' | ';' | '<' | '>' | '"'));
            if valid {
                out.push(e.to_string());
            } else {
                self.r.error(
                    v.span(),
                    format!("địa chỉ e-mail không hợp lệ: {e:?}"),
                    Some("dạng ten@ducpho.example".into()),
                );
            }
        }
        out
    }
}

pub fn validate(raw: RawPlanFile, r: &mut Reporter<'_>) -> Option<PlanDefinition> {
    let before = r.diagnostics.len();
    let mut ctx = Ctx {
        r,
        agencies: HashMap::new(),
        start: None,
        end: None,
        years: None,
        yearly_report: None,
        five_year_review: None,
    };

    // Header.
    let plan_id = PlanId::parse(raw.plan.id.get_ref())
        .map_err(|e| ctx.r.error(raw.plan.id.span(), e.to_string(), None))
        .ok();
    ctx.start = ctx.date(&raw.plan.period.start, "ngày bắt đầu thời kỳ");
    ctx.end = ctx.date(&raw.plan.period.end, "ngày kết thúc thời kỳ");
    if let (Some(s), Some(e)) = (ctx.start, ctx.end) {
        if s > e {
            ctx.r.error(
                raw.plan.period.end.span(),
                "ngày kết thúc thời kỳ trước ngày bắt đầu",
                None,
            );
            ctx.end = None;
        }
    }
    let extend_until = raw
        .plan
        .period
        .extend_until
        .as_ref()
        .and_then(|d| ctx.date(d, "ngày gia hạn muộn nhất"));
    if let (Some(u), Some(e), Some(raw_u)) = (extend_until, ctx.end, raw.plan.period.extend_until.as_ref()) {
        if u < e {
            ctx.r.error(
                raw_u.span(),
                "extend_until trước ngày kết thúc thời kỳ",
                Some("bỏ đi, hoặc đặt một ngày sau ngày kết thúc".into()),
            );
        }
    }
    let tz_name = raw
        .plan
        .time_zone
        .as_ref()
        .map_or(DEFAULT_TZ.to_string(), |t| t.get_ref().clone());
    if let Some(t) = &raw.plan.time_zone {
        if t.get_ref().parse::<Tz>().is_err() {
            ctx.r.error(
                t.span(),
                format!("múi giờ không có: {:?}", t.get_ref()),
                Some("tên IANA, ví dụ Asia/Ho_Chi_Minh".into()),
            );
        }
    }
    let deadline_rule = match &raw.plan.deadline_rule {
        None => DeadlineRule::default(),
        Some(r) => DeadlineRule::parse(r.get_ref()).unwrap_or_else(|| {
            ctx.r.error(
                r.span(),
                format!("deadline_rule không có: {:?}", r.get_ref()),
                Some(format!("một trong: {}", DeadlineRule::NAMES.join(", "))),
            );
            DeadlineRule::default()
        }),
    };
    let mut mail = crate::domain::plan::MailIdentity::default();
    if let Some(m) = &raw.mail {
        let mut one_line = |what: &str, v: &Option<S<String>>| -> Option<String> {
            let v = v.as_ref()?;
            let text = v.get_ref().trim();
            if text.is_empty() || text.chars().count() > 80 || text.chars().any(char::is_control) {
                ctx.r.error(
                    v.span(),
                    format!("{what} phải là một dòng từ 1 đến 80 ký tự, không có ký tự điều khiển"),
                    None,
                );
                return None;
            }
            Some(text.to_string())
        };
        mail.sender_name = one_line("mail.sender_name", &m.sender_name);
        mail.subject_prefix = one_line("mail.subject_prefix", &m.subject_prefix);
    }
    if raw.plan.title.get_ref().trim().is_empty() {
        ctx.r.error(raw.plan.title.span(), "tiêu đề kế hoạch trống", None);
    }
    // Names people read in digests, pages and terminals: no control or
    // bidi characters (they would drive a terminal or read backwards).
    let mut check = |what: &str, text: &S<String>| no_controls(ctx.r, text.span(), what, text.get_ref());
    check("tiêu đề kế hoạch", &raw.plan.title);
    for a in &raw.agencies {
        check("tên cơ quan", &a.name);
        if let Some(short) = &a.short {
            check("tên ngắn của cơ quan", short);
        }
        for m in &a.members {
            check("tên thành viên", &m.name);
        }
    }

    // Agency directory.
    let mut agencies = Vec::new();
    for (i, a) in raw.agencies.iter().enumerate() {
        let code = match AgencyCode::parse(a.code.get_ref()) {
            Ok(c) => c,
            Err(e) => {
                ctx.r.error(a.code.span(), e.to_string(), None);
                continue;
            }
        };
        if let Some(first) = ctx.agencies.get(code.as_str()) {
            let (line, _) = ctx.r.position(raw.agencies[*first].code.span().start);
            ctx.r.error(
                a.code.span(),
                format!("mã cơ quan {code} khai báo hai lần"),
                Some(format!("đã khai báo ở dòng {line}")),
            );
            continue;
        }
        ctx.agencies.insert(code.to_string(), i);
        let emails = ctx.emails(&a.emails);
        let members = a
            .members
            .iter()
            .map(|m| Member {
                name: m.name.get_ref().trim().to_string(),
                emails: ctx.emails(&m.emails),
            })
            .collect();
        let short = a.short.as_ref().and_then(|s| {
            let text = s.get_ref().trim();
            if text.is_empty() || text.chars().count() > 40 {
                ctx.r
                    .error(s.span(), format!("tên ngắn của {code} phải có từ 1 đến 40 ký tự"), None);
                None
            } else {
                Some(text.to_string())
            }
        });
        agencies.push(Agency {
            code,
            name: a.name.get_ref().trim().to_string(),
            short,
            aliases: a.aliases.clone(),
            emails,
            members,
        });
    }
    let issuer = ctx.agency(&raw.plan.issuer, "cơ quan ban hành");

    // Defaults.
    let d = &raw.defaults;
    ctx.yearly_report = match &d.yearly_report {
        None => Some(DayMonth { day: 15, month: 12 }),
        Some(v) => DayMonth::parse(v.get_ref())
            .map_err(|e| ctx.r.error(v.span(), format!("yearly_report: {e}"), None))
            .ok(),
    };
    ctx.years = match (&d.reporting_years, ctx.start, ctx.end) {
        (Some(y), s, e) => {
            let (first, last) = (y.get_ref().first, y.get_ref().last);
            let outside = s.is_some_and(|s| first < s.year()) || e.is_some_and(|e| last > e.year());
            if first > last || outside {
                ctx.r.error(
                    y.span(),
                    format!("reporting_years {first}–{last} không hợp lệ hoặc nằm ngoài thời kỳ"),
                    None,
                );
                None
            } else {
                Some((first, last))
            }
        }
        (None, Some(s), Some(e)) => Some((s.year(), e.year())),
        _ => None,
    };
    ctx.five_year_review = match &d.five_year_review {
        None => ctx.end,
        Some(v) => ctx
            .date(v, "five_year_review")
            .filter(|due| ctx.in_period(*due, v.span(), "five_year_review")),
    };

    // Reminder policy and the working-day calendar.
    let mut policy = ReminderPolicy::default();
    if let Some(r) = &raw.reminders {
        if let Some(o) = reminder_override(&mut ctx, r) {
            policy = policy.with(Some(&o));
        }
        if let Some(cron) = &r.get_ref().send_at {
            match cron::Schedule::from_str(cron.get_ref()) {
                Ok(_) => policy.send_at = cron.get_ref().trim().to_string(),
                Err(e) => ctx.r.error(
                    cron.span(),
                    format!("biểu thức cron không hợp lệ {:?}: {e}", cron.get_ref()),
                    Some("6 trường: giây phút giờ ngày tháng thứ, ví dụ \"0 0 8 * * *\" là 08:00 mỗi ngày".into()),
                ),
            }
        }
    }
    let mut checkpoint_at = crate::domain::plan::DEFAULT_CHECKPOINT_AT.to_string();
    if let Some(cron) = raw.audit.as_ref().and_then(|a| a.checkpoint_at.as_ref()) {
        match cron::Schedule::from_str(cron.get_ref()) {
            Ok(_) => checkpoint_at = cron.get_ref().trim().to_string(),
            Err(e) => ctx.r.error(
                cron.span(),
                format!("checkpoint_at: biểu thức cron không hợp lệ {:?}: {e}", cron.get_ref()),
                Some("6 trường: giây phút giờ ngày tháng thứ, ví dụ \"0 0 23 * * *\"".into()),
            ),
        }
    }
    let calendar = raw.calendar.as_ref().map(|c| {
        let mut days = |list: &[RawDay], what: &str| -> Vec<(NaiveDate, String)> {
            let mut out: Vec<(NaiveDate, String)> = Vec::new();
            for day in list {
                if let Some(d) = ctx.date(&day.date, what) {
                    if out.iter().any(|(x, _)| *x == d) {
                        ctx.r.error(
                            day.date.span(),
                            format!("{what}: ngày {} khai báo hai lần", d.format("%d/%m/%Y")),
                            None,
                        );
                    } else {
                        out.push((d, day.name.trim().to_string()));
                    }
                }
            }
            out
        };
        let holidays = days(&c.holidays, "ngày nghỉ");
        let workdays = days(&c.workdays, "ngày làm bù");
        for (d, _) in &workdays {
            if holidays.iter().any(|(h, _)| h == d) {
                let span = c
                    .workdays
                    .iter()
                    .find(|w| parse_date(w.date.get_ref()).ok() == Some(*d))
                    .map(|w| w.date.span());
                ctx.r.error(
                    span.unwrap_or(0..0),
                    format!("ngày {} vừa là ngày nghỉ vừa là ngày làm bù", d.format("%d/%m/%Y")),
                    None,
                );
            }
        }
        let estimates: Vec<NaiveDate> = c
            .holidays
            .iter()
            .chain(&c.workdays)
            .filter(|d| d.estimate)
            .filter_map(|d| parse_date(d.date.get_ref()).ok())
            .collect();
        WorkCalendar::new(holidays, workdays).with_estimates(estimates)
    });

    // Tasks.
    let mut tasks: Vec<PlanTask> = Vec::new();
    let mut seen_tasks: HashMap<String, usize> = HashMap::new();
    for t in &raw.tasks {
        // A duplicate is still checked, so its other mistakes are reported too.
        if let Ok(id) = TaskId::parse(t.id.get_ref()) {
            let line = ctx.r.position(t.id.span().start).0;
            if let Some(first) = seen_tasks.get(id.as_str()) {
                ctx.r.error(
                    t.id.span(),
                    format!("mã nhiệm vụ {id} lặp lại"),
                    Some(format!("đã dùng ở dòng {first}")),
                );
            } else {
                seen_tasks.insert(id.to_string(), line);
            }
        }
        if let Some(task) = validate_task(&mut ctx, t, raw.plan.document.as_deref()) {
            tasks.push(task);
        }
    }

    if ctx.r.diagnostics.len() > before {
        return None;
    }
    let (first_year, last_year) = ctx.years?;
    Some(PlanDefinition {
        source: PlanSource {
            file: String::new(),
            sha256: String::new(),
            document: None,
        },
        text: None,
        header: PlanHeader {
            id: plan_id?,
            title: raw.plan.title.get_ref().trim().to_string(),
            issuer: issuer?,
            document: raw.plan.document.clone(),
            start: ctx.start?,
            end: ctx.end?,
            time_zone: tz_name,
            yearly_report: ctx.yearly_report?.to_string(),
            first_year,
            last_year,
            five_year_review: ctx.five_year_review?,
            reminders: policy,
            calendar: calendar.unwrap_or_default(),
            checkpoint_at,
            extend_until,
            deadline_rule,
            mail,
        },
        agencies,
        tasks,
    })
}

/// Text people read on pages, in e-mails and in terminals (names, titles,
/// labels) holds no control or bidi character: it would drive a terminal
/// or read backwards. Reports the first one at `span`.
fn no_controls(r: &mut Reporter<'_>, span: std::ops::Range<usize>, what: &str, text: &str) {
    if let Some(code) = crate::domain::text::forbidden_in(text) {
        r.error(
            span,
            format!("{what} chứa ký tự điều khiển {code}, không được phép"),
            Some("xóa ký tự đó (thường lẫn vào khi sao chép từ văn bản khác)".into()),
        );
    }
}

fn validate_task(ctx: &mut Ctx<'_, '_>, t: &RawTask, document: Option<&str>) -> Option<PlanTask> {
    let before = ctx.r.diagnostics.len();
    let id = TaskId::parse(t.id.get_ref())
        .map_err(|e| ctx.r.error(t.id.span(), e.to_string(), None))
        .ok();
    for (field, value) in [("title", &t.title), ("text", &t.text)] {
        if value.get_ref().trim().is_empty() {
            ctx.r.error(
                value.span(),
                format!("nhiệm vụ {}: {field} trống", t.id.get_ref()),
                None,
            );
        }
        // A document export can carry U+000B.
        no_controls(
            ctx.r,
            value.span(),
            &format!("nhiệm vụ {}: {field}", t.id.get_ref()),
            value.get_ref(),
        );
    }
    let lead = ctx.agency(&t.lead, "lead");
    let advisory = ctx.agencies(&t.advisory, "advisory");
    let implementers = ctx.agencies(t.implementers.get_ref(), "implementers");
    let coordinators = ctx.agencies(&t.coordinators, "coordinators");
    for c in &t.coordinators {
        if t.implementers.get_ref().iter().any(|i| i.get_ref() == c.get_ref()) {
            ctx.r.error(
                c.span(),
                format!(
                    "nhiệm vụ {}: cơ quan {} vừa thực hiện vừa phối hợp; bỏ khỏi một trong hai danh sách",
                    t.id.get_ref(),
                    c.get_ref()
                ),
                None,
            );
        }
    }
    if t.implementers.get_ref().is_empty() {
        ctx.r.error(
            t.implementers.span(),
            format!("nhiệm vụ {} chưa có cơ quan thực hiện", t.id.get_ref()),
            None,
        );
    }

    let schedules: Vec<&S<RawSchedule>> = match (&t.schedule, &t.milestones) {
        (Some(s), None) => vec![s],
        (None, Some(list)) if !list.get_ref().is_empty() => list.get_ref().iter().collect(),
        (Some(_), Some(list)) => {
            ctx.r.error(
                list.span(),
                format!("nhiệm vụ {} có cả schedule và milestones", t.id.get_ref()),
                Some("chỉ dùng một trong hai".into()),
            );
            vec![]
        }
        _ => {
            ctx.r.error(
                t.id.span(),
                format!("nhiệm vụ {} chưa có lịch (schedule hoặc milestones)", t.id.get_ref()),
                None,
            );
            vec![]
        }
    };
    let task_mode = obligation_mode(ctx, t.obligation.as_ref(), ObligationMode::Each);
    let mut milestones: Vec<MilestoneSpec> = Vec::new();
    for s in schedules {
        let mode = obligation_mode(ctx, s.get_ref().obligation.as_ref(), task_mode);
        for mut m in expand_schedule(ctx, s, t.id.get_ref()) {
            m.obligation = mode;
            if milestones.iter().any(|x| x.id == m.id) {
                ctx.r.error(
                    s.span(),
                    format!("nhiệm vụ {}: mã mốc {} lặp lại", t.id.get_ref(), m.id),
                    Some("đặt key khác cho từng lịch".into()),
                );
            } else {
                milestones.push(m);
            }
        }
    }
    milestones.sort_by(|a, b| (a.due, &a.id).cmp(&(b.due, &b.id)));

    let mut kpis: Vec<KpiTarget> = Vec::new();
    for k in &t.kpis {
        if let Some(kpi) = validate_kpi(ctx, k) {
            if kpis.iter().any(|x| x.key == kpi.key) {
                ctx.r.error(
                    k.get_ref().key.span(),
                    format!("mã chỉ tiêu {} lặp lại trong nhiệm vụ", kpi.key),
                    None,
                );
            } else {
                kpis.push(kpi);
            }
        }
    }

    let reminders = t.reminders.as_ref().and_then(|r| {
        let o = reminder_override(ctx, r);
        if let Some(cron) = &r.get_ref().send_at {
            ctx.r.error(
                cron.span(),
                "send_at chỉ đặt ở [reminders] của kế hoạch",
                Some("giờ gửi dùng chung cho cả kế hoạch".into()),
            );
        }
        o
    });

    if ctx.r.diagnostics.len() > before {
        return None;
    }
    Some(PlanTask {
        id: id?,
        definition: TaskDefinition {
            title: t.title.get_ref().trim().to_string(),
            text: t.text.get_ref().trim().to_string(),
            lead: lead?,
            advisory,
            implementers,
            coordinators,
            deadline: t.deadline.clone(),
            source: SourceRef {
                document: document.map(str::to_string),
                section: t.source.section.clone(),
                line: t.source.line,
            },
            kpis,
            reminders,
        },
        milestones,
    })
}

/// `obligation = "each" | "joint"`, or `default` when absent.
fn obligation_mode(ctx: &mut Ctx<'_, '_>, raw: Option<&S<String>>, default: ObligationMode) -> ObligationMode {
    let Some(raw) = raw else { return default };
    ObligationMode::parse(raw.get_ref()).unwrap_or_else(|| {
        ctx.r.error(
            raw.span(),
            format!("obligation không có: {:?}", raw.get_ref()),
            Some(format!("dùng một trong: {}", ObligationMode::NAMES.join(", "))),
        );
        default
    })
}

fn expand_schedule(ctx: &mut Ctx<'_, '_>, s: &S<RawSchedule>, task: &str) -> Vec<MilestoneSpec> {
    let raw = s.get_ref();
    let Some(kind) = MilestoneKind::parse(raw.kind.get_ref()) else {
        ctx.r.error(
            raw.kind.span(),
            format!("loại lịch không có: {:?}", raw.kind.get_ref()),
            Some(format!("dùng một trong: {}", MilestoneKind::NAMES.join(", "))),
        );
        return vec![];
    };
    let key = match &raw.key {
        Some(k) => match MilestoneId::parse(k.get_ref()) {
            Ok(k) => k,
            Err(e) => {
                ctx.r.error(k.span(), e.to_string(), None);
                return vec![];
            }
        },
        None => MilestoneId::parse(match kind {
            MilestoneKind::Once | MilestoneKind::MonthEnd | MilestoneKind::QuarterEnd => "complete",
            MilestoneKind::Yearly => "yearly",
            MilestoneKind::Ongoing => "report",
            MilestoneKind::PeriodReview => "five-year-review",
        })
        .expect("default keys are valid"),
    };
    let what = format!("nhiệm vụ {task}");
    let missing = |ctx: &mut Ctx<'_, '_>, field: &str| {
        ctx.r.error(
            s.span(),
            format!("{what}: lịch loại {} cần khóa {field}", raw.kind.get_ref()),
            None,
        );
    };
    let single = |ctx: &mut Ctx<'_, '_>,
                  due: Option<NaiveDate>,
                  span: std::ops::Range<usize>,
                  title: &str|
     -> Vec<MilestoneSpec> {
        match due {
            Some(due) if ctx.in_period(due, span, &what) => {
                vec![MilestoneSpec {
                    id: key.clone(),
                    title: raw.title.clone().unwrap_or_else(|| title.to_string()),
                    kind,
                    due,
                    obligation: ObligationMode::Each,
                }]
            }
            _ => vec![],
        }
    };
    match kind {
        MilestoneKind::Once => match &raw.due {
            Some(due) => {
                let d = ctx.date(due, &what);
                single(ctx, d, due.span(), "Hoàn thành")
            }
            None => {
                missing(ctx, "due");
                vec![]
            }
        },
        MilestoneKind::MonthEnd => match &raw.month {
            Some(month) => {
                let d = parse_month_end(month.get_ref())
                    .map_err(|e| ctx.r.error(month.span(), format!("{what}: {e}"), None))
                    .ok();
                single(ctx, d, month.span(), "Hoàn thành")
            }
            None => {
                missing(ctx, "month");
                vec![]
            }
        },
        MilestoneKind::QuarterEnd => match (&raw.quarter, &raw.year) {
            (Some(q), Some(y)) => {
                let d = i32::try_from(*y.get_ref())
                    .ok()
                    .and_then(|y| quarter_end(y, u32::try_from(*q.get_ref()).ok()?));
                if d.is_none() {
                    ctx.r.error(
                        q.span(),
                        format!("{what}: quý {} năm {} không hợp lệ", q.get_ref(), y.get_ref()),
                        Some("quý từ 1 đến 4".into()),
                    );
                }
                single(ctx, d, q.span(), "Hoàn thành")
            }
            _ => {
                missing(ctx, "quarter và year");
                vec![]
            }
        },
        MilestoneKind::PeriodReview => {
            let d = ctx.five_year_review;
            single(ctx, d, s.span(), "Tổng kết 05 năm")
        }
        MilestoneKind::Yearly | MilestoneKind::Ongoing => {
            let day = match (&raw.due, kind) {
                (Some(due), MilestoneKind::Yearly) => match DayMonth::parse(due.get_ref()) {
                    Ok(d) => Some((d, due.span())),
                    Err(e) => {
                        ctx.r.error(due.span(), format!("{what}: {e}"), None);
                        None
                    }
                },
                (Some(due), _) => {
                    ctx.r.error(
                        due.span(),
                        format!("{what}: lịch ongoing không có due; báo cáo theo defaults.yearly_report"),
                        None,
                    );
                    None
                }
                (None, _) => ctx.yearly_report.map(|d| (d, s.span())),
            };
            let (Some((day, span)), Some((first, last))) = (day, ctx.years) else {
                return vec![];
            };
            let title = raw.title.clone().unwrap_or_else(|| {
                if kind == MilestoneKind::Ongoing {
                    "Báo cáo kết quả thực hiện".into()
                } else {
                    "Hằng năm".into()
                }
            });
            let mut out = Vec::new();
            for year in first..=last {
                let Some(due) = day.in_year(year) else {
                    ctx.r.error(
                        span.clone(),
                        format!("{what}: ngày {day} không có trong năm {year}"),
                        None,
                    );
                    continue;
                };
                if ctx.in_period(due, span.clone(), &what) {
                    out.push(MilestoneSpec {
                        id: MilestoneId::parse(&format!("{key}-{year}")).expect("key-year is a valid id"),
                        title: format!("{title} năm {year}"),
                        kind,
                        due,
                        obligation: ObligationMode::Each,
                    });
                }
            }
            out
        }
    }
}

fn validate_kpi(ctx: &mut Ctx<'_, '_>, k: &S<RawKpi>) -> Option<KpiTarget> {
    let raw = k.get_ref();
    let key = KpiKey::parse(raw.key.get_ref())
        .map_err(|e| ctx.r.error(raw.key.span(), e.to_string(), None))
        .ok();
    for (what, text) in [("nhãn chỉ tiêu", &raw.label), ("đơn vị chỉ tiêu", &raw.unit)] {
        no_controls(ctx.r, k.span(), what, text);
    }
    let comparator = Comparator::parse(raw.comparator.get_ref());
    if comparator.is_none() {
        ctx.r.error(
            raw.comparator.span(),
            format!("phép so sánh không có: {:?}", raw.comparator.get_ref()),
            Some(format!("dùng một trong: {}", Comparator::NAMES.join(", "))),
        );
    }
    let target = match (comparator?, raw.value, raw.min, raw.max) {
        (Comparator::Between, None, Some(min), Some(max)) if min <= max => Some(TargetValue::Range { min, max }),
        (Comparator::Between, ..) => {
            ctx.r.error(
                k.span(),
                "chỉ tiêu between cần min và max (min ≤ max), không dùng value",
                None,
            );
            None
        }
        (_, Some(v), None, None) => Some(TargetValue::Value(v)),
        _ => {
            ctx.r.error(
                k.span(),
                format!("chỉ tiêu {} cần value (không dùng min/max)", raw.comparator.get_ref()),
                None,
            );
            None
        }
    };
    let better = match &raw.better {
        None => None,
        Some(b) => match Better::parse(b.get_ref()) {
            Some(b) => Some(b),
            None => {
                ctx.r.error(
                    b.span(),
                    format!("better không có: {:?}", b.get_ref()),
                    Some(format!("một trong: {}", Better::NAMES.join(", "))),
                );
                return None;
            }
        },
    };
    Some(KpiTarget {
        better,
        key: key?,
        label: raw.label.trim().to_string(),
        comparator: comparator?,
        target: target?,
        unit: raw.unit.clone(),
        per_year: raw.per_year,
        baseline: raw.baseline.as_ref().map(|b| Baseline {
            value: b.value,
            year: b.year,
        }),
    })
}

/// Reads a `[reminders]` table into an override; `send_at` is handled by the caller.
fn reminder_override(ctx: &mut Ctx<'_, '_>, r: &S<RawReminders>) -> Option<PolicyOverride> {
    let raw = r.get_ref();
    let before = ctx.r.diagnostics.len();
    let days = |ctx: &mut Ctx<'_, '_>, v: &S<i64>, what: &str| -> Option<u32> {
        match u32::try_from(*v.get_ref()) {
            Ok(n) if n <= 366 => Some(n),
            _ => {
                ctx.r.error(
                    v.span(),
                    format!("{what}: {} ngày không hợp lệ", v.get_ref()),
                    Some("từ 0 đến 366; 0 là tắt".into()),
                );
                None
            }
        }
    };
    let before_days = raw.before_days.as_ref().map(|list| {
        let mut out: Vec<u32> = Vec::new();
        for d in list.get_ref() {
            match u32::try_from(*d) {
                Ok(n) if n <= 366 && !out.contains(&n) => out.push(n),
                _ => ctx.r.error(
                    list.span(),
                    format!("before_days: {d} không hợp lệ hoặc lặp lại"),
                    Some("số ngày từ 0 đến 366, không lặp".into()),
                ),
            }
        }
        out
    });
    let overdue_every_days = raw
        .overdue_every_days
        .as_ref()
        .and_then(|v| days(ctx, v, "overdue_every_days"));
    let escalate_after_days = raw
        .escalate_after_days
        .as_ref()
        .and_then(|v| days(ctx, v, "escalate_after_days"));
    (ctx.r.diagnostics.len() == before).then_some(PolicyOverride {
        before_days,
        overdue_every_days,
        escalate_after_days,
    })
}
