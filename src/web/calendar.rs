//! An agency's secret iCalendar feed (RFC 5545): the milestones of the tasks
//! it leads, advises or implements, as all-day events on their deadlines, so
//! that they show up in Outlook, Google Calendar or Thunderbird.
//!
//! Pure: the views, the link base and the `DTSTAMP` instant come in; the text
//! of the feed comes out. No I/O, no clock.
//!
//! What the feed holds:
//!
//! - one `VEVENT` per milestone of every task in the entries that involves
//!   the agency and is not withdrawn; waived and cancelled milestones are
//!   left out (no work is expected and no deadline applies);
//! - the event is all-day on the deadline in force (`Milestone::due`, which
//!   includes extensions): `DTSTART;VALUE=DATE` that day, `DTEND` the next;
//!   dates are floating, so no `VTIMEZONE` is needed;
//! - `UID` is `{plan}/{task}/{milestone}@kehoach`, the same in every render
//!   and in every agency's feed, so a changed date moves the event instead of
//!   adding one; `SEQUENCE` is the task view's version (the number of events
//!   the task has seen), which grows with every change to the task, a moved
//!   deadline included;
//! - milestones still pending (open, submitted or returned: the deadline
//!   still counts, see `timeliness`) carry two display alarms, a week and a
//!   day before the start of the deadline day;
//! - approved milestones stay in the calendar as a record, with `[Đã duyệt] `
//!   before the summary and no alarm;
//! - events are `TRANSP:TRANSPARENT`: a deadline does not make anyone busy.
//!
//! Events are ordered by plan, then by the plan's task numbering, then by the
//! task's milestone order (due date), so two renders of the same views are
//! identical but for `DTSTAMP`. Text values are escaped, lines folded at 75
//! octets without splitting a character, and every line ends with CRLF.

use crate::domain::dates::format_vn;
use crate::domain::ids::AgencyCode;
use crate::domain::task::{Milestone, MilestoneStatus, TaskDefinition};
use crate::projections::views::{numbering_key, PlanView, TaskView};
use chrono::{DateTime, Days, NaiveDate, Utc};

/// The time zone named in the feed when no entry's plan has a header.
const DEFAULT_TIME_ZONE: &str = "Asia/Ho_Chi_Minh";

/// The longest content line, in octets, CRLF excluded (RFC 5545 §3.1).
const MAX_LINE_OCTETS: usize = 75;

/// The prefix of an approved milestone's summary.
const APPROVED_PREFIX: &str = "[Đã duyệt] ";

/// One task of the feed, with the plan it belongs to.
#[derive(Debug, Clone, Copy)]
pub struct FeedEntry<'a> {
    pub plan: &'a PlanView,
    pub task: &'a TaskView,
}

/// Renders `agency`'s calendar over `entries`: the whole `text/calendar`
/// body. `agency_name` names the calendar; `base_url` (no trailing slash,
/// e.g. `http://127.0.0.1:8080`) makes each event's link
/// `{base_url}/tasks/{plan}/{task}`; `stamp` is the `DTSTAMP` of every event.
pub fn agency_feed(
    agency: &AgencyCode,
    agency_name: &str,
    entries: &[FeedEntry<'_>],
    base_url: &str,
    stamp: DateTime<Utc>,
) -> String {
    let base_url = base_url.trim_end_matches('/');
    let mut tasks: Vec<(String, String, &FeedEntry<'_>)> = entries
        .iter()
        .filter_map(|e| {
            let key = e.task.task.key.clone().or_else(|| e.task.key())?;
            Some((key.plan.to_string(), key.task.to_string(), e))
        })
        .collect();
    tasks.sort_by_cached_key(|(plan, task, e)| (plan.clone(), numbering_key(task), e.task.id.clone()));
    tasks.dedup_by(|a, b| a.2.task.id == b.2.task.id);

    let time_zone = tasks
        .iter()
        .map(|(_, _, e)| e.plan)
        .chain(entries.iter().map(|e| e.plan))
        .find_map(|p| p.plan.header.as_ref())
        .map_or(DEFAULT_TIME_ZONE, |h| h.tz().name());

    let mut w = Writer::default();
    w.raw("BEGIN", "VCALENDAR");
    w.raw("VERSION", "2.0");
    w.raw("PRODID", "-//kehoach//Đề án 13//VI");
    w.raw("CALSCALE", "GREGORIAN");
    w.raw("METHOD", "PUBLISH");
    w.text("X-WR-CALNAME", &format!("Hạn nhiệm vụ — {agency_name}"));
    w.text(
        "X-WR-CALDESC",
        &format!("Các mốc hạn của những nhiệm vụ mà {agency_name} lãnh đạo, tham mưu hoặc thực hiện"),
    );
    w.raw("X-WR-TIMEZONE", time_zone);
    w.raw("REFRESH-INTERVAL;VALUE=DURATION", "PT1H");
    w.raw("X-PUBLISHED-TTL", "PT1H");
    for (plan, task, entry) in &tasks {
        let view = entry.task;
        let Some(def) = &view.task.definition else { continue };
        if view.task.withdrawn || !view.involves(agency) {
            continue;
        }
        let event = EventContext {
            agency,
            plan_id: plan,
            task_id: task,
            plan_title: entry.plan.plan.header.as_ref().map(|h| h.title.as_str()),
            def,
            view,
            url: format!("{base_url}/tasks/{plan}/{task}"),
            stamp,
            deadlines: entry.plan.deadlines(),
            agency_name,
        };
        for m in &view.task.milestones {
            // The agency's own obligation where it owes one, else the milestone.
            let (due, status) = match m.obligations.iter().find(|o| o.owed_by(agency, &def.implementers)) {
                Some(o) => (o.due, o.status),
                None => (m.due(), m.status),
            };
            if !matches!(status, MilestoneStatus::Waived | MilestoneStatus::Cancelled) {
                event.write(&mut w, m, due, status);
            }
        }
    }
    w.raw("END", "VCALENDAR");
    w.out
}

/// What every event of one task shares.
struct EventContext<'a> {
    agency: &'a AgencyCode,
    plan_id: &'a str,
    task_id: &'a str,
    plan_title: Option<&'a str>,
    def: &'a TaskDefinition,
    view: &'a TaskView,
    url: String,
    stamp: DateTime<Utc>,
    /// The event stands on the legal deadline (the next working day after a
    /// deadline on a day off, under the Civil Code).
    deadlines: crate::domain::deadline::Deadlines<'a>,
    /// The agency's name, as the description says whose roles they are.
    agency_name: &'a str,
}

impl EventContext<'_> {
    fn write(&self, w: &mut Writer, m: &Milestone, due: NaiveDate, status: MilestoneStatus) {
        let headline = format!("{} {}", self.task_id, m.spec.title);
        let summary = if status == MilestoneStatus::Approved {
            format!("{APPROVED_PREFIX}{headline}")
        } else {
            headline.clone()
        };
        w.raw("BEGIN", "VEVENT");
        w.text(
            "UID",
            &format!("{}/{}/{}@kehoach", self.plan_id, self.task_id, m.spec.id),
        );
        w.raw("DTSTAMP", &utc_stamp(self.stamp));
        if let Some(at) = self.view.updated_at {
            w.raw("LAST-MODIFIED", &utc_stamp(at));
        }
        w.raw("SEQUENCE", &self.view.version.max(0).to_string());
        let day = self.deadlines.legal(due);
        w.raw("DTSTART;VALUE=DATE", &ical_date(day));
        w.raw(
            "DTEND;VALUE=DATE",
            &ical_date(day.checked_add_days(Days::new(1)).unwrap_or(day)),
        );
        w.text("SUMMARY", &summary);
        w.text("DESCRIPTION", &self.description(m, due, status));
        w.raw("URL", &self.url);
        w.raw("STATUS", "CONFIRMED");
        w.raw("TRANSP", "TRANSPARENT");
        if status.is_pending() {
            for (trigger, lead_in) in [("-P7D", "Còn một tuần đến hạn"), ("-P1D", "Ngày mai đến hạn")] {
                w.raw("BEGIN", "VALARM");
                w.raw("ACTION", "DISPLAY");
                w.text("DESCRIPTION", &format!("{lead_in}: {headline}"));
                w.raw("TRIGGER", trigger);
                w.raw("END", "VALARM");
            }
        }
        w.raw("END", "VEVENT");
    }

    fn description(&self, m: &Milestone, due: NaiveDate, status: MilestoneStatus) -> String {
        let mut lines = vec![
            format!("Nhiệm vụ {}: {}", self.task_id, self.def.title),
            format!("Mốc: {}", m.spec.title),
        ];
        if due == m.spec.due {
            lines.push(format!("Hạn: {}", self.deadlines.shown(due)));
        } else {
            lines.push(format!(
                "Hạn: {} (đã gia hạn, hạn theo kế hoạch {})",
                self.deadlines.shown(due),
                format_vn(m.spec.due)
            ));
        }
        lines.push(format!("Trạng thái: {}", status.label_vi()));
        lines.push(format!(
            "Vai trò của {}: {}",
            self.agency_name,
            roles(self.def, self.agency).join(", ")
        ));
        if let Some(title) = self.plan_title {
            lines.push(format!("Kế hoạch: {title}"));
        }
        lines.push(format!("Chi tiết: {}", self.url));
        lines.join("\n")
    }
}

/// The agency's roles on the task, in the plan's order of authority.
fn roles(def: &TaskDefinition, agency: &AgencyCode) -> Vec<&'static str> {
    let mut out = Vec::new();
    if &def.lead == agency {
        out.push("Lãnh đạo");
    }
    if def.advisory.contains(agency) {
        out.push("Tham mưu");
    }
    if def.implementers.contains(agency) {
        out.push("Thực hiện");
    }
    if def.coordinators.contains(agency) {
        out.push("Phối hợp");
    }
    out
}

fn ical_date(date: NaiveDate) -> String {
    date.format("%Y%m%d").to_string()
}

fn utc_stamp(at: DateTime<Utc>) -> String {
    at.format("%Y%m%dT%H%M%SZ").to_string()
}

/// Builds the feed one content line at a time.
#[derive(Default)]
struct Writer {
    out: String,
}

impl Writer {
    /// A property whose value is written as is (dates, URIs, fixed words).
    fn raw(&mut self, name: &str, value: &str) {
        fold_into(&mut self.out, &format!("{name}:{value}"));
    }

    /// A TEXT property: the value is escaped.
    fn text(&mut self, name: &str, value: &str) {
        self.raw(name, &escape_text(value));
    }
}

/// Escapes a TEXT value (RFC 5545 §3.3.11): backslash, semicolon and comma
/// get a backslash, a line break (LF, CR or CRLF) becomes `\n`, and other
/// control characters, which TEXT may not hold, are dropped (tab is kept).
pub fn escape_text(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            '\r' => {
                chars.next_if_eq(&'\n');
                out.push_str("\\n");
            }
            '\t' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Whether `c` is a combining mark that belongs with the character before it
/// (decomposed Vietnamese writes tones this way), so a fold never separates them.
fn is_combining(c: char) -> bool {
    matches!(
        c,
        '\u{0300}'..='\u{036F}'
            | '\u{1AB0}'..='\u{1AFF}'
            | '\u{1DC0}'..='\u{1DFF}'
            | '\u{20D0}'..='\u{20FF}'
            | '\u{FE20}'..='\u{FE2F}'
    )
}

/// Appends one content line folded at 75 octets (RFC 5545 §3.1), CRLF
/// included. A fold is CRLF and one space, and the space counts towards the
/// next line's 75. Folds fall between characters, never inside an escape
/// (`\;`, `\n`, ...), and before a base character rather than before its
/// combining marks. RFC 5545 would allow the last two, but some readers
/// unescape or normalise physical lines before joining them.
fn fold_into(out: &mut String, line: &str) {
    let mut used = 0;
    let mut rest = line;
    while let Some(first) = rest.chars().next() {
        // The unit: an escape pair, or a character and the combining marks after it.
        let mut unit = first.len_utf8();
        let mut tail = rest[unit..].chars();
        if first == '\\' {
            unit += tail.next().map_or(0, char::len_utf8);
        } else {
            unit += tail.take_while(|c| is_combining(*c)).map(char::len_utf8).sum::<usize>();
        }
        if unit > MAX_LINE_OCTETS - 1 {
            // Only a pathological run of marks: fall back to one character.
            unit = first.len_utf8();
        }
        if used + unit > MAX_LINE_OCTETS {
            out.push_str("\r\n ");
            used = 1;
        }
        out.push_str(&rest[..unit]);
        used += unit;
        rest = &rest[unit..];
    }
    out.push_str("\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::{MilestoneId, PersonName, PlanId, TaskId};
    use crate::domain::plan::Plan;
    use crate::domain::task::{
        Actor, MilestoneKind, MilestoneSpec, SourceRef, Stamp, TaskAction, TaskCommand, TaskDefinition,
    };
    use std::collections::BTreeMap;

    const BASE: &str = "http://127.0.0.1:8080";

    fn fold(line: &str) -> String {
        let mut out = String::new();
        fold_into(&mut out, line);
        out
    }

    fn code(s: &str) -> AgencyCode {
        AgencyCode::parse(s).unwrap()
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn stamp() -> DateTime<Utc> {
        at("2024-05-06T07:08:09Z")
    }

    fn system() -> Stamp {
        Stamp {
            by: Actor::system_on("plan-loader", "test", "test"),
            at: at("2024-01-01T00:00:00Z"),
        }
    }

    fn person(agency: &str, name: &str) -> Stamp {
        Stamp {
            by: Actor::test_person(code(agency), PersonName::parse(name).unwrap()),
            at: at("2024-03-20T02:00:00Z"),
        }
    }

    /// Decides a command on a view's task and applies what it emits, as the
    /// engine and the projection would.
    fn act(view: &mut TaskView, stamp: Stamp, action: TaskAction) {
        let events = view.task.decide(TaskCommand { stamp, action }).unwrap();
        for e in events {
            view.updated_at = Some(e.stamp().at);
            cqrs_es::Aggregate::apply(&mut view.task, e);
            view.version += 1;
        }
    }

    /// The shipped plan, loaded into views as `plan load` would.
    fn shipped() -> (PlanView, Vec<TaskView>) {
        let file = concat!(env!("CARGO_MANIFEST_DIR"), "/workflows/duc-pho-de-an-13.toml");
        let plan = crate::plan::parse_file(std::path::Path::new(file)).unwrap();
        let (sync_plan, commands) = crate::plan::load::commands(&plan, &[], &system());
        let mut plan_view = PlanView::empty(plan.id().as_str());
        for e in Plan::default().decide(sync_plan).unwrap() {
            cqrs_es::Aggregate::apply(&mut plan_view.plan, e);
            plan_view.version += 1;
        }
        let tasks = commands
            .into_iter()
            .map(|(key, cmd)| {
                let mut view = TaskView::empty(&key.to_string());
                act(&mut view, cmd.stamp, cmd.action);
                view
            })
            .collect();
        (plan_view, tasks)
    }

    fn small_plan() -> PlanView {
        let (mut plan, _) = shipped();
        plan.id = "ke-hoach-thu".into();
        if let Some(h) = plan.plan.header.as_mut() {
            h.id = PlanId::parse("ke-hoach-thu").unwrap();
            h.title = "Kế hoạch thử".into();
        }
        plan
    }

    fn spec(id: &str, title: &str, due: (i32, u32, u32)) -> MilestoneSpec {
        MilestoneSpec {
            id: MilestoneId::parse(id).unwrap(),
            title: title.into(),
            kind: MilestoneKind::Once,
            due: NaiveDate::from_ymd_opt(due.0, due.1, due.2).unwrap(),
            obligation: Default::default(),
        }
    }

    /// A task of plan `ke-hoach-thu` led by BTV, advised by BDV, implemented by `implementers`.
    fn task(id: &str, title: &str, implementers: &[&str], specs: Vec<MilestoneSpec>) -> TaskView {
        let definition = TaskDefinition {
            title: title.into(),
            text: title.into(),
            lead: code("BTV"),
            advisory: vec![code("BDV")],
            implementers: implementers.iter().map(|a| code(a)).collect(),
            coordinators: vec![],
            deadline: None,
            source: SourceRef {
                document: None,
                section: id.into(),
                line: 1,
            },
            kpis: vec![],
            reminders: None,
        };
        let mut view = TaskView::empty(&format!("ke-hoach-thu/{id}"));
        act(
            &mut view,
            system(),
            TaskAction::SyncFromPlan {
                plan: PlanId::parse("ke-hoach-thu").unwrap(),
                task: TaskId::parse(id).unwrap(),
                definition,
                milestones: specs,
            },
        );
        view
    }

    fn render(agency: &str, plan: &PlanView, tasks: &[TaskView]) -> String {
        let entries: Vec<FeedEntry<'_>> = tasks.iter().map(|task| FeedEntry { plan, task }).collect();
        // The agency's name as the feed route gives it: from the directory.
        let name = plan.plan.agency_name(&code(agency));
        agency_feed(&code(agency), &name, &entries, BASE, stamp())
    }

    /// Undoes folding: a CRLF followed by one space or tab joins the lines.
    fn unfold(feed: &str) -> Vec<String> {
        let mut lines: Vec<String> = Vec::new();
        for physical in feed.split("\r\n") {
            match physical.strip_prefix([' ', '\t']) {
                Some(rest) => lines.last_mut().unwrap().push_str(rest),
                None if physical.is_empty() => {}
                None => lines.push(physical.to_string()),
            }
        }
        lines
    }

    fn unescape(value: &str) -> String {
        let mut out = String::new();
        let mut chars = value.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                match chars.next() {
                    Some('n' | 'N') => out.push('\n'),
                    Some(other) => out.push(other),
                    None => out.push('\\'),
                }
            } else {
                out.push(c);
            }
        }
        out
    }

    /// One parsed component: its properties by name (parameters kept in the name), in order.
    #[derive(Debug, Default)]
    struct Component {
        props: Vec<(String, String)>,
        alarms: Vec<Component>,
    }

    impl Component {
        fn get(&self, name: &str) -> &str {
            self.props
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
                .unwrap_or_else(|| panic!("no {name} in {:?}", self.props))
        }

        fn text(&self, name: &str) -> String {
            unescape(self.get(name))
        }
    }

    /// The calendar's own properties and its events, from unfolded lines.
    fn parse(feed: &str) -> (Component, Vec<Component>) {
        let mut calendar = Component::default();
        let mut events: Vec<Component> = Vec::new();
        let mut stack: Vec<String> = Vec::new();
        for line in unfold(feed) {
            let (name, value) = line.split_once(':').unwrap();
            match name {
                "BEGIN" => {
                    match value {
                        "VEVENT" => events.push(Component::default()),
                        "VALARM" => events.last_mut().unwrap().alarms.push(Component::default()),
                        _ => {}
                    }
                    stack.push(value.to_string());
                }
                "END" => assert_eq!(stack.pop().as_deref(), Some(value), "unbalanced END:{value}"),
                _ => {
                    let prop = (name.to_string(), value.to_string());
                    match stack.last().map(String::as_str) {
                        Some("VCALENDAR") => calendar.props.push(prop),
                        Some("VEVENT") => events.last_mut().unwrap().props.push(prop),
                        Some("VALARM") => events.last_mut().unwrap().alarms.last_mut().unwrap().props.push(prop),
                        other => panic!("property {name} outside a component: {other:?}"),
                    }
                }
            }
        }
        assert!(stack.is_empty(), "unclosed {stack:?}");
        (calendar, events)
    }

    fn uids(events: &[Component]) -> Vec<String> {
        events.iter().map(|e| e.text("UID")).collect()
    }

    #[test]
    fn folding_keeps_lines_short_and_characters_whole() {
        let line = format!(
            "DESCRIPTION:{}",
            "Tổ chức triển khai, quán triệt Đề án; nâng cao hiệu quả ".repeat(9)
        );
        let folded = fold(&line);
        assert!(folded.ends_with("\r\n"));
        let physical: Vec<&str> = folded.strip_suffix("\r\n").unwrap().split("\r\n").collect();
        assert!(physical.len() > 5, "a long line is folded: {physical:?}");
        for (i, p) in physical.iter().enumerate() {
            // `&str` is valid UTF-8, so no line begins or ends inside a character.
            assert!(p.len() <= MAX_LINE_OCTETS, "line {i} has {} octets: {p:?}", p.len());
            if i > 0 {
                assert!(p.starts_with(' '), "continuation line {i} starts with a space: {p:?}");
            }
        }
        // Full lines are used: only the last one is shorter than a character could fill.
        assert!(physical[..physical.len() - 1]
            .iter()
            .all(|p| p.len() >= MAX_LINE_OCTETS - 3));
        let unfolded: String = physical
            .iter()
            .enumerate()
            .map(|(i, p)| if i == 0 { *p } else { &p[1..] })
            .collect();
        assert_eq!(unfolded, line);
    }

    #[test]
    fn folding_splits_on_byte_counts_not_characters() {
        // "ệ" is 3 octets: 25 of them fill exactly 75; the 26th starts a new line.
        let line = "ệ".repeat(26);
        assert_eq!(fold(&line), format!("{}\r\n ệ\r\n", "ệ".repeat(25)));
        // An ASCII line of exactly 75 octets stays whole; 76 folds the last octet.
        assert_eq!(fold(&"a".repeat(75)), format!("{}\r\n", "a".repeat(75)));
        assert_eq!(fold(&"a".repeat(76)), format!("{}\r\n a\r\n", "a".repeat(75)));
        // 74 ASCII then a 3-octet character: it moves whole to the next line.
        assert_eq!(
            fold(&format!("{}ế", "a".repeat(74))),
            format!("{}\r\n ế\r\n", "a".repeat(74))
        );
    }

    #[test]
    fn folding_keeps_combining_tone_marks_with_their_letter() {
        // Decomposed "ệ": e + U+0323 + U+0302 (1 + 2 + 2 octets).
        let decomposed = "e\u{323}\u{302}";
        let line = format!("{}{decomposed}", "a".repeat(72));
        let folded = fold(&line);
        assert_eq!(folded, format!("{}\r\n {decomposed}\r\n", "a".repeat(72)));
    }

    #[test]
    fn folding_never_splits_an_escape() {
        // The escape `\,` would straddle the fold after 75 octets: it moves whole.
        let line = format!("{}\\,b", "a".repeat(74));
        assert_eq!(fold(&line), format!("{}\r\n \\,b\r\n", "a".repeat(74)));
        // An escaped backslash followed by `n` is two units, `\\` and `n`.
        let line = format!("{}\\\\n", "a".repeat(73));
        assert_eq!(fold(&line), format!("{}\\\\\r\n n\r\n", "a".repeat(73)));
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(escape_text(r"a\b;c,d"), r"a\\b\;c\,d");
        assert_eq!(escape_text("một\nhai\r\nba\rbốn"), r"một\nhai\nba\nbốn");
        assert_eq!(
            escape_text("tab\tkept, bell\u{7} dropped: colon kept"),
            "tab\tkept\\, bell dropped: colon kept"
        );
        assert_eq!(escape_text("Đề án 13"), "Đề án 13");
    }

    #[test]
    fn the_calendar_is_well_formed_with_crlf_everywhere() {
        let (plan, tasks) = shipped();
        let feed = render("UBND", &plan, &tasks);
        assert!(feed.starts_with("BEGIN:VCALENDAR\r\n"));
        assert!(feed.ends_with("END:VCALENDAR\r\n"));
        let body = feed.strip_suffix("\r\n").unwrap();
        for line in body.split("\r\n") {
            assert!(
                !line.contains('\r') && !line.contains('\n'),
                "bare line break in {line:?}"
            );
            assert!(line.len() <= MAX_LINE_OCTETS, "{} octets: {line:?}", line.len());
        }
        assert_eq!(feed.matches('\n').count(), feed.matches("\r\n").count());

        let (calendar, events) = parse(&feed);
        for (name, value) in [
            ("VERSION", "2.0"),
            ("PRODID", "-//kehoach//Đề án 13//VI"),
            ("CALSCALE", "GREGORIAN"),
            ("METHOD", "PUBLISH"),
            ("X-WR-CALNAME", "Hạn nhiệm vụ — Ủy ban nhân dân thị xã"),
            ("X-WR-TIMEZONE", "Asia/Ho_Chi_Minh"),
        ] {
            assert_eq!(calendar.text(name), value);
        }
        assert!(events.len() > 20, "UBND implements many tasks: {}", events.len());
        let mut seen = std::collections::BTreeSet::new();
        for e in &events {
            let uid = e.text("UID");
            assert!(seen.insert(uid.clone()), "duplicate UID {uid}");
            assert!(
                uid.starts_with("duc-pho-de-an-13/") && uid.ends_with("@kehoach"),
                "{uid}"
            );
            assert_eq!(e.get("DTSTAMP"), "20240506T070809Z");
            assert_eq!(e.get("STATUS"), "CONFIRMED");
            let start = NaiveDate::parse_from_str(e.get("DTSTART;VALUE=DATE"), "%Y%m%d").unwrap();
            let end = NaiveDate::parse_from_str(e.get("DTEND;VALUE=DATE"), "%Y%m%d").unwrap();
            assert_eq!(end, start.succ_opt().unwrap());
            let (plan_id, rest) = uid.trim_end_matches("@kehoach").split_once('/').unwrap();
            let (task_id, _) = rest.rsplit_once('/').unwrap();
            let url = format!("{BASE}/tasks/{plan_id}/{task_id}");
            assert_eq!(e.get("URL"), url);
            assert!(e.text("DESCRIPTION").ends_with(&format!("Chi tiết: {url}")));
            assert!(e.text("SUMMARY").starts_with(&format!("{task_id} ")));
        }
    }

    #[test]
    fn only_the_agencys_tasks_appear_with_its_role() {
        let (plan, tasks) = shipped();
        let ubnd = code("UBND");
        let feed = render("UBND", &plan, &tasks);
        let (_, events) = parse(&feed);
        let expected: Vec<String> = tasks
            .iter()
            .filter(|t| t.involves(&ubnd))
            .flat_map(|t| {
                t.task
                    .milestones
                    .iter()
                    .map(move |m| format!("{}/{}@kehoach", t.id, m.spec.id))
            })
            .collect();
        let mut got = uids(&events);
        got.sort();
        let mut want = expected.clone();
        want.sort();
        assert_eq!(got, want);
        assert!(
            tasks.iter().any(|t| !t.involves(&ubnd)),
            "the plan has tasks UBND is not on"
        );

        // BDV advises and implements II.1.1: both roles are named.
        let feed = render("BDV", &plan, &tasks);
        let (_, events) = parse(&feed);
        let e = events
            .iter()
            .find(|e| e.text("UID").starts_with("duc-pho-de-an-13/II.1.1/"))
            .unwrap();
        let description = e.text("DESCRIPTION");
        assert!(
            description.contains("Vai trò của Ban Dân vận Thị ủy: Tham mưu, Thực hiện"),
            "{description}"
        );
        assert!(description.contains("Trạng thái: đang thực hiện"), "{description}");
        assert!(
            description.starts_with("Nhiệm vụ II.1.1: Quán triệt, xây dựng kế hoạch"),
            "{description}"
        );
        // An agency on no task gets an empty, valid calendar.
        let feed = render("UBKT", &plan, &tasks[..3]);
        let (calendar, events) = parse(&feed);
        assert!(events.is_empty());
        assert_eq!(calendar.get("VERSION"), "2.0");
    }

    #[test]
    fn events_follow_plan_then_numbering_then_milestone_order() {
        let plan = small_plan();
        let tasks = vec![
            task("II.10", "Mười", &["UBND"], vec![spec("a", "A", (2024, 1, 31))]),
            task(
                "II.2",
                "Hai",
                &["UBND"],
                vec![
                    spec("late", "Sau", (2024, 6, 30)),
                    spec("early", "Trước", (2024, 2, 29)),
                ],
            ),
            task("I.1", "Một", &["UBND"], vec![spec("x", "X", (2025, 1, 1))]),
        ];
        let mut other = task("II.1", "Khác", &["UBND"], vec![spec("y", "Y", (2023, 1, 1))]);
        other.id = "a-truoc/II.1".into();
        other.task.key = other.key();
        let (mut reversed, mut all) = (tasks.clone(), tasks);
        all.push(other.clone());
        reversed.reverse();
        reversed.insert(1, other);
        let order = [
            "a-truoc/II.1/y@kehoach",
            "ke-hoach-thu/I.1/x@kehoach",
            "ke-hoach-thu/II.2/early@kehoach",
            "ke-hoach-thu/II.2/late@kehoach",
            "ke-hoach-thu/II.10/a@kehoach",
        ];
        assert_eq!(uids(&parse(&render("UBND", &plan, &all)).1), order);
        assert_eq!(render("UBND", &plan, &all), render("UBND", &plan, &reversed));
        // The same task given twice is listed once.
        all.push(all[0].clone());
        assert_eq!(uids(&parse(&render("UBND", &plan, &all)).1), order);
    }

    #[test]
    fn withdrawn_tasks_and_waived_or_cancelled_milestones_are_left_out() {
        let plan = small_plan();
        let mut kept = task(
            "II.1",
            "Giữ lại",
            &["UBND"],
            vec![
                spec("open", "Còn mở", (2024, 3, 31)),
                spec("waived", "Được miễn", (2024, 4, 30)),
                spec("cancelled", "Bị hủy", (2024, 5, 31)),
            ],
        );
        let mut withdrawn = task("II.2", "Rút", &["UBND"], vec![spec("open", "Còn mở", (2024, 3, 31))]);
        let btv = person("BTV", "Nguyễn Văn Chỉ Đạo");
        let mid = |s: &str| MilestoneId::parse(s).unwrap();
        act(
            &mut kept,
            btv.clone(),
            TaskAction::Waive {
                milestone: mid("waived"),
                agency: None,
                reason: "Không còn phù hợp".into(),
            },
        );
        act(
            &mut kept,
            btv,
            TaskAction::Cancel {
                milestone: mid("cancelled"),
                agency: None,
                reason: "Gộp vào mốc khác".into(),
            },
        );
        act(
            &mut withdrawn,
            system(),
            TaskAction::Withdraw {
                reason: "Nhiệm vụ không còn trong tệp kế hoạch".into(),
            },
        );
        assert!(withdrawn.task.withdrawn);
        let statuses: Vec<_> = kept.task.milestones.iter().map(|m| m.status).collect();
        assert_eq!(
            statuses,
            [
                MilestoneStatus::Open,
                MilestoneStatus::Waived,
                MilestoneStatus::Cancelled
            ]
        );
        let feed = render("UBND", &plan, &[kept, withdrawn]);
        assert_eq!(uids(&parse(&feed).1), ["ke-hoach-thu/II.1/open@kehoach"]);
        assert!(!feed.contains("Rút") && !feed.contains("Được miễn") && !feed.contains("Bị hủy"));
    }

    #[test]
    fn alarms_only_on_pending_milestones_and_approved_ones_are_marked() {
        let plan = small_plan();
        let mut view = task(
            "II.1",
            "Báo cáo, tổng kết",
            &["UBND"],
            vec![
                spec("open", "Còn mở", (2024, 3, 31)),
                spec("submitted", "Đã nộp", (2024, 4, 30)),
                spec("approved", "Xong", (2024, 5, 31)),
            ],
        );
        let mid = |s: &str| MilestoneId::parse(s).unwrap();
        let ubnd = person("UBND", "Trần Thị Thực Hiện");
        let btv = person("BTV", "Nguyễn Văn Chỉ Đạo");
        for m in ["submitted", "approved"] {
            act(
                &mut view,
                ubnd.clone(),
                TaskAction::Submit {
                    milestone: mid(m),
                    agency: None,
                    note: "Đã hoàn thành".into(),
                    attachments: vec![],
                },
            );
        }
        act(
            &mut view,
            btv,
            TaskAction::Approve {
                milestone: mid("approved"),
                agency: None,
                note: "Đạt".into(),
            },
        );
        let (_, events) = parse(&render("UBND", &plan, &[view]));
        let by_uid: BTreeMap<String, &Component> = events.iter().map(|e| (e.text("UID"), e)).collect();
        assert_eq!(by_uid.len(), 3);
        for m in ["open", "submitted"] {
            let e = by_uid[&format!("ke-hoach-thu/II.1/{m}@kehoach")];
            let triggers: Vec<&str> = e.alarms.iter().map(|a| a.get("TRIGGER")).collect();
            assert_eq!(triggers, ["-P7D", "-P1D"], "{m}");
            for a in &e.alarms {
                assert_eq!(a.get("ACTION"), "DISPLAY");
                assert!(a.text("DESCRIPTION").ends_with(&format!(": {}", e.text("SUMMARY"))));
            }
            assert!(!e.text("SUMMARY").starts_with(APPROVED_PREFIX));
        }
        let approved = by_uid["ke-hoach-thu/II.1/approved@kehoach"];
        assert!(approved.alarms.is_empty());
        assert_eq!(approved.text("SUMMARY"), "[Đã duyệt] II.1 Xong");
        assert!(approved.text("DESCRIPTION").contains("Trạng thái: đã duyệt"));
        let submitted = by_uid["ke-hoach-thu/II.1/submitted@kehoach"];
        assert!(submitted.text("DESCRIPTION").contains("Trạng thái: đã nộp, chờ duyệt"));
    }

    #[test]
    fn an_extension_moves_the_event_and_raises_its_sequence() {
        let plan = small_plan();
        let mut view = task(
            "II.1",
            "Gia hạn",
            &["UBND"],
            vec![spec("due", "Nộp báo cáo", (2024, 3, 31))],
        );
        let before = parse(&render("UBND", &plan, std::slice::from_ref(&view))).1;
        act(
            &mut view,
            person("BDV", "Lê Văn Tham Mưu"),
            TaskAction::Extend {
                milestone: MilestoneId::parse("due").unwrap(),
                agency: None,
                until: NaiveDate::from_ymd_opt(2024, 4, 15).unwrap(),
                reason: "Chờ số liệu".into(),
            },
        );
        let after = parse(&render("UBND", &plan, std::slice::from_ref(&view))).1;
        assert_eq!(uids(&before), uids(&after));
        // Due Sunday 31/03/2024: the event stands on the legal deadline,
        // Monday 01/04 (Civil Code, Art. 148).
        assert_eq!(before[0].get("DTSTART;VALUE=DATE"), "20240401");
        assert_eq!(after[0].get("DTSTART;VALUE=DATE"), "20240415");
        assert_eq!(after[0].get("DTEND;VALUE=DATE"), "20240416");
        let seq = |e: &Component| e.get("SEQUENCE").parse::<i64>().unwrap();
        assert!(seq(&after[0]) > seq(&before[0]));
        assert!(after[0]
            .text("DESCRIPTION")
            .contains("Hạn: 15/04/2024 (đã gia hạn, hạn theo kế hoạch 31/03/2024)"));
        assert_eq!(after[0].get("LAST-MODIFIED"), "20240320T020000Z");
    }

    #[test]
    fn special_characters_in_titles_survive_escaping_and_folding() {
        let plan = small_plan();
        let title = "Rà soát; sửa đổi, bổ sung quy chế \\ phối hợp\nvà “Dân vận khéo” — giai đoạn 2022-2026";
        let view = task(
            "II.1",
            title,
            &["UBND"],
            vec![spec("m", "Mốc; thứ nhất, năm 2024", (2024, 3, 31))],
        );
        let feed = render("UBND", &plan, &[view]);
        let unfolded = unfold(&feed).join("\n");
        assert!(
            unfolded.contains(r"Rà soát\; sửa đổi\, bổ sung quy chế \\ phối hợp\nvà"),
            "{unfolded}"
        );
        let (_, events) = parse(&feed);
        assert_eq!(events[0].text("SUMMARY"), "II.1 Mốc; thứ nhất, năm 2024");
        assert!(events[0]
            .text("DESCRIPTION")
            .starts_with(&format!("Nhiệm vụ II.1: {title}\n")));
    }
}
