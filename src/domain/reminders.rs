//! Reminder policy and the reminder points of a milestone: when agencies are
//! told about a deadline, shifted to working days. Pure: the scheduler passes
//! in "today" and the calendar.

use super::calendar::WorkCalendar;
use super::ids::AgencyCode;
use chrono::{Duration, NaiveDate};
use serde::{Deserialize, Serialize};

/// When reminders go out, from the plan's `[reminders]` (and a task's
/// `[tasks.reminders]` overrides).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReminderPolicy {
    /// Days before the due date (0 = on the day).
    pub before_days: Vec<u32>,
    /// Cron expression (sec min hour day month weekday) in the plan's zone.
    pub send_at: String,
    /// Repeat an overdue reminder every this many days.
    pub overdue_every_days: u32,
    /// Tell the lead agency (UBKT copied) after this many days overdue.
    pub escalate_after_days: u32,
}

impl Default for ReminderPolicy {
    fn default() -> Self {
        Self {
            before_days: vec![14, 7, 3, 1, 0],
            send_at: "0 0 8 * * *".into(),
            overdue_every_days: 7,
            escalate_after_days: 7,
        }
    }
}

/// A task's overrides of the plan policy; unset fields inherit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyOverride {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before_days: Option<Vec<u32>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overdue_every_days: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalate_after_days: Option<u32>,
}

impl ReminderPolicy {
    pub fn with(&self, o: Option<&PolicyOverride>) -> ReminderPolicy {
        let Some(o) = o else { return self.clone() };
        ReminderPolicy {
            before_days: o.before_days.clone().unwrap_or_else(|| self.before_days.clone()),
            send_at: self.send_at.clone(),
            overdue_every_days: o.overdue_every_days.unwrap_or(self.overdue_every_days),
            escalate_after_days: o.escalate_after_days.unwrap_or(self.escalate_after_days),
        }
    }
}

/// The recipient agency's role on the task a message is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Cơ quan thực hiện: receives reminders.
    Implementer,
    /// Cơ quan tham mưu: copied on reminders, approves.
    Advisory,
    /// Cơ quan lãnh đạo/chỉ đạo: receives escalations, approves.
    Lead,
    /// Ủy ban Kiểm tra: copied on escalations.
    Inspector,
    /// Cơ quan phối hợp: copied on reminders to coordinate; owes nothing.
    Coordinator,
}

impl Role {
    pub fn label_vi(self) -> &'static str {
        match self {
            Role::Implementer => "cơ quan thực hiện",
            Role::Advisory => "cơ quan tham mưu",
            Role::Lead => "cơ quan lãnh đạo, chỉ đạo",
            Role::Inspector => "cơ quan kiểm tra, giám sát",
            Role::Coordinator => "cơ quan phối hợp",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Recipient {
    pub agency: AgencyCode,
    pub role: Role,
}

/// `first`, then each advisory agency not already among them (copied).
pub fn with_advisory(mut first: Vec<Recipient>, advisory: &[AgencyCode]) -> Vec<Recipient> {
    for a in advisory {
        if !first.iter().any(|r| &r.agency == a) {
            first.push(Recipient {
                agency: a.clone(),
                role: Role::Advisory,
            });
        }
    }
    first
}

/// `first`, then each coordinating agency not already among them (copied).
pub fn with_coordinators(mut first: Vec<Recipient>, coordinators: &[AgencyCode]) -> Vec<Recipient> {
    for a in coordinators {
        if !first.iter().any(|r| &r.agency == a) {
            first.push(Recipient {
                agency: a.clone(),
                role: Role::Coordinator,
            });
        }
    }
    first
}

/// What a queued message is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReminderKind {
    /// Before the deadline, or on its day.
    Upcoming,
    Overdue,
    Escalation,
    Submitted,
    Approved,
    Returned,
    /// A message in a milestone's discussion.
    Message,
    /// A deadline moved by the supervisors.
    Extended,
    /// An obligation waived (miễn) by the supervisors.
    Waived,
}

impl ReminderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Upcoming => "upcoming",
            Self::Overdue => "overdue",
            Self::Escalation => "escalation",
            Self::Submitted => "submitted",
            Self::Approved => "approved",
            Self::Returned => "returned",
            Self::Message => "message",
            Self::Extended => "extended",
            Self::Waived => "waived",
        }
    }
}

/// A stored reminder key as people read it: `before-7:UBND` is "thư nhắc
/// trước hạn 7 ngày (phần của UBND)"; an unknown key is shown as it is.
pub fn reminder_label(key: &str) -> String {
    let (base, scope) = match key.split_once(':') {
        Some((base, scope)) => (base, Some(scope)),
        None => (key, None),
    };
    let days = |prefix: &str| base.strip_prefix(prefix).and_then(|n| n.parse::<u32>().ok());
    let (name, round) = base.rsplit_once('-').unwrap_or((base, ""));
    let what = if let Some(n) = days("before-") {
        if n == 0 {
            "thư nhắc đúng ngày đến hạn".to_string()
        } else {
            format!("thư nhắc trước hạn {n} ngày")
        }
    } else if let Some(n) = days("overdue-") {
        format!("thư nhắc quá hạn {n} ngày")
    } else {
        let round = round.parse::<u32>().ok();
        let label = match (base, name) {
            ("escalation", _) => "thư báo cáo lên cơ quan lãnh đạo (quá hạn lâu)",
            ("approved", _) => "thư báo đã duyệt",
            ("waived", _) => "thư báo được miễn",
            (_, "extended") if round.is_some() => "thư báo gia hạn",
            (_, "submitted") if round.is_some() => "thư báo đã nộp",
            (_, "returned") if round.is_some() => "thư báo bị trả lại",
            (_, "message") if round.is_some() => "thư báo có trao đổi",
            _ => return key.to_string(),
        };
        match round {
            Some(n) if name != base => format!("{label} (lần {n})"),
            _ => label.to_string(),
        }
    };
    match scope {
        Some(agency) => format!("{what} (phần của {agency})"),
        None => what,
    }
}

/// A reminder point of a milestone: its idempotency key (unique within the
/// milestone), what it is, and the local day it goes out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Point {
    pub key: String,
    pub kind: ReminderKind,
    pub send_on: NaiveDate,
}

/// The reminder track (to implementers) of a milestone due `due`: every point
/// whose send day has come by `today`, in send order. A point that falls on a
/// non-working day goes out on the previous working day, but an overdue
/// reminder never goes out before the deadline has passed.
pub fn reminder_points(policy: &ReminderPolicy, cal: &WorkCalendar, due: NaiveDate, today: NaiveDate) -> Vec<Point> {
    let mut points: Vec<Point> = Vec::new();
    let mut before = policy.before_days.clone();
    before.sort_unstable_by(|a, b| b.cmp(a));
    before.dedup();
    for days in before {
        let send_on = cal.on_or_before(due - Duration::days(i64::from(days)));
        points.push(Point {
            key: format!("before-{days}"),
            kind: ReminderKind::Upcoming,
            send_on,
        });
    }
    if policy.overdue_every_days > 0 && today > due {
        let every = i64::from(policy.overdue_every_days);
        // A point shifted back to an earlier working day can come before its
        // nominal day (Tết can move it by more than a week), so look ahead.
        let mut k = 1;
        while due + Duration::days(k * every) <= today + Duration::days(31) {
            points.push(Point {
                key: format!("overdue-{}", k * every),
                kind: ReminderKind::Overdue,
                send_on: after_deadline(cal, due, due + Duration::days(k * every)),
            });
            k += 1;
        }
    }
    points.retain(|p| p.send_on <= today);
    points.sort_by_key(|p| p.send_on);
    points
}

/// The escalation point of a milestone due `due`, if it has come by `today`.
pub fn escalation_point(
    policy: &ReminderPolicy,
    cal: &WorkCalendar,
    due: NaiveDate,
    today: NaiveDate,
) -> Option<Point> {
    if policy.escalate_after_days == 0 {
        return None;
    }
    let send_on = after_deadline(cal, due, due + Duration::days(i64::from(policy.escalate_after_days)));
    (send_on <= today).then(|| Point {
        key: "escalation".into(),
        kind: ReminderKind::Escalation,
        send_on,
    })
}

/// The first day on which a scheduler pass would queue something for a
/// milestone due `due`, given which reminder keys are already recorded: the
/// earliest unrecorded point of the "before" series, the overdue series or
/// the escalation. `None` when nothing is left to send. The scheduler reads
/// only milestones whose day has come, so its work follows the reminders
/// due, not the milestones open.
pub fn next_reminder_on(
    policy: &ReminderPolicy,
    cal: &WorkCalendar,
    due: NaiveDate,
    recorded: impl Fn(&str) -> bool,
) -> Option<NaiveDate> {
    let mut next: Option<NaiveDate> = None;
    let mut consider = |d: NaiveDate| next = Some(next.map_or(d, |n: NaiveDate| n.min(d)));
    for days in &policy.before_days {
        if !recorded(&format!("before-{days}")) {
            consider(cal.on_or_before(due - Duration::days(i64::from(*days))));
        }
    }
    if policy.overdue_every_days > 0 {
        let every = i64::from(policy.overdue_every_days);
        let mut k = 1;
        while recorded(&format!("overdue-{}", k * every)) {
            k += 1;
        }
        consider(after_deadline(cal, due, due + Duration::days(k * every)));
    }
    if policy.escalate_after_days > 0 && !recorded("escalation") {
        consider(after_deadline(
            cal,
            due,
            due + Duration::days(i64::from(policy.escalate_after_days)),
        ));
    }
    next
}

fn after_deadline(cal: &WorkCalendar, due: NaiveDate, nominal: NaiveDate) -> NaiveDate {
    let shifted = cal.on_or_before(nominal);
    if shifted > due {
        shifted
    } else {
        cal.next_on_or_after(due + Duration::days(1))
    }
}

/// What to queue now for one track: the latest point that has come, unless
/// it (or a later one) is already recorded; the earlier unrecorded points are
/// covered by it, so a week of downtime yields one reminder, not a burst.
pub fn next_to_queue(points: &[Point], recorded: impl Fn(&str) -> bool) -> Option<(Point, Vec<String>)> {
    let latest = points.last()?;
    let last_recorded = points.iter().rposition(|p| recorded(&p.key));
    if last_recorded == Some(points.len() - 1) {
        return None;
    }
    let from = last_recorded.map_or(0, |i| i + 1);
    let covers = points[from..points.len() - 1]
        .iter()
        .filter(|p| !recorded(&p.key))
        .map(|p| p.key.clone())
        .collect();
    Some((latest.clone(), covers))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reminder_keys_read_as_what_they_are() {
        for (key, shown) in [
            ("before-7", "thư nhắc trước hạn 7 ngày"),
            ("before-0:UBND", "thư nhắc đúng ngày đến hạn (phần của UBND)"),
            ("overdue-14", "thư nhắc quá hạn 14 ngày"),
            ("escalation", "thư báo cáo lên cơ quan lãnh đạo (quá hạn lâu)"),
            ("submitted-2:BDV", "thư báo đã nộp (lần 2) (phần của BDV)"),
            ("returned-1", "thư báo bị trả lại (lần 1)"),
            ("approved:MTTQ", "thư báo đã duyệt (phần của MTTQ)"),
            ("la-thuong", "la-thuong"),
        ] {
            assert_eq!(reminder_label(key), shown, "{key}");
        }
    }

    #[test]
    fn recipient_roles_are_vietnamese() {
        for role in [Role::Implementer, Role::Advisory, Role::Lead, Role::Inspector] {
            assert!(role.label_vi().starts_with("cơ quan "), "{role:?}");
        }
    }

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn keys(points: &[Point]) -> Vec<String> {
        points.iter().map(|p| format!("{} {}", p.key, p.send_on)).collect()
    }

    #[test]
    fn points_before_the_deadline_shift_to_the_previous_working_day() {
        // 31/03/2024 is a Sunday: "on the day" and "1 day before" (Saturday) go out Friday 29/03.
        let p = reminder_points(
            &ReminderPolicy::default(),
            &WorkCalendar::default(),
            d("2024-03-31"),
            d("2024-03-31"),
        );
        assert_eq!(
            keys(&p),
            [
                "before-14 2024-03-15",
                "before-7 2024-03-22",
                "before-3 2024-03-28",
                "before-1 2024-03-29",
                "before-0 2024-03-29"
            ]
        );
    }

    #[test]
    fn holidays_move_reminders_earlier() {
        let cal = WorkCalendar::new([(d("2024-04-18"), "Giỗ Tổ Hùng Vương".to_string())], []);
        let policy = ReminderPolicy {
            before_days: vec![1],
            ..ReminderPolicy::default()
        };
        // Due Friday 19/04; the day before is the holiday, so it goes out Wednesday 17/04.
        let p = reminder_points(&policy, &cal, d("2024-04-19"), d("2024-04-30"));
        assert_eq!(p[0].send_on, d("2024-04-17"));
    }

    #[test]
    fn overdue_reminders_repeat_and_never_precede_the_deadline() {
        let policy = ReminderPolicy {
            before_days: vec![],
            overdue_every_days: 7,
            ..ReminderPolicy::default()
        };
        let p = reminder_points(&policy, &WorkCalendar::default(), d("2024-03-31"), d("2024-04-15"));
        assert_eq!(keys(&p), ["overdue-7 2024-04-05", "overdue-14 2024-04-12"]);
        // Every day, and due on a Friday: Saturday's reminder cannot move back to the due day.
        let daily = ReminderPolicy {
            before_days: vec![],
            overdue_every_days: 1,
            ..ReminderPolicy::default()
        };
        let p = reminder_points(&daily, &WorkCalendar::default(), d("2024-03-29"), d("2024-03-30"));
        assert!(p.is_empty(), "{:?}", keys(&p));
        let p = reminder_points(&daily, &WorkCalendar::default(), d("2024-03-29"), d("2024-04-01"));
        assert_eq!(keys(&p)[0], "overdue-1 2024-04-01");
    }

    #[test]
    fn an_overdue_point_moved_before_a_weekend_comes_on_the_friday() {
        // Due Sunday 31/03; 7 days overdue is Sunday 07/04, sent Friday 05/04.
        let policy = ReminderPolicy {
            before_days: vec![],
            ..ReminderPolicy::default()
        };
        let p = reminder_points(&policy, &WorkCalendar::default(), d("2024-03-31"), d("2024-04-05"));
        assert_eq!(keys(&p), ["overdue-7 2024-04-05"]);
    }

    #[test]
    fn escalation_comes_after_its_delay() {
        let policy = ReminderPolicy::default();
        let cal = WorkCalendar::default();
        assert_eq!(escalation_point(&policy, &cal, d("2024-03-31"), d("2024-04-04")), None);
        let e = escalation_point(&policy, &cal, d("2024-03-31"), d("2024-04-08")).unwrap();
        assert_eq!(e.send_on, d("2024-04-05"));
    }

    #[test]
    fn missed_points_collapse_into_the_latest() {
        let p = reminder_points(
            &ReminderPolicy::default(),
            &WorkCalendar::default(),
            d("2024-03-31"),
            d("2024-03-29"),
        );
        let (point, covers) = next_to_queue(&p, |_| false).unwrap();
        assert_eq!(point.key, "before-0");
        assert_eq!(covers, ["before-14", "before-7", "before-3", "before-1"]);
        // Once the latest is recorded there is nothing to do.
        assert!(next_to_queue(&p, |k| k == "before-0").is_none());
        // Only what came after the last recorded point is covered.
        let (point, covers) = next_to_queue(&p, |k| k == "before-7").unwrap();
        assert_eq!(
            (point.key.as_str(), covers),
            ("before-0", vec!["before-3".to_string(), "before-1".to_string()])
        );
    }

    #[test]
    fn the_next_reminder_day_is_the_earliest_unrecorded_point() {
        let policy = ReminderPolicy {
            before_days: vec![14, 7, 0],
            overdue_every_days: 7,
            escalate_after_days: 10,
            ..ReminderPolicy::default()
        };
        let cal = WorkCalendar::default();
        let due = d("2024-03-29");
        let none = |_: &str| false;
        assert_eq!(
            next_reminder_on(&policy, &cal, due, none),
            Some(cal.on_or_before(d("2024-03-15")))
        );
        let sent = |k: &str| ["before-14", "before-7", "before-0"].contains(&k);
        assert_eq!(
            next_reminder_on(&policy, &cal, due, sent),
            Some(after_deadline(&cal, due, d("2024-04-05")))
        );
        let more = |k: &str| {
            [
                "before-14",
                "before-7",
                "before-0",
                "overdue-7",
                "overdue-14",
                "escalation",
            ]
            .contains(&k)
        };
        assert_eq!(
            next_reminder_on(&policy, &cal, due, more),
            Some(after_deadline(&cal, due, d("2024-04-19")))
        );
        // Whatever the scheduler would queue on a day, the next day says it has come.
        for today in ["2024-03-14", "2024-03-15", "2024-03-30", "2024-04-08"] {
            let today = d(today);
            let points = reminder_points(&policy, &cal, due, today);
            let would = next_to_queue(&points, sent).is_some() || escalation_point(&policy, &cal, due, today).is_some();
            let next = next_reminder_on(&policy, &cal, due, sent);
            assert_eq!(would, next.is_some_and(|n| n <= today), "{today}");
        }
    }
}
