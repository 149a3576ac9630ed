//! What a digest says, before it is worded: one line per item in its
//! current state, the order of urgency, and the counts by state with the
//! links to the filtered inbox.
//!
//! - **One line per item.** An item is a (task, milestone, obligation). All
//!   the notices queued about one item for one agency that reach one digest
//!   are folded into one line: the latest notice wins, and the line then
//!   shows the obligation's state when the digest is rendered, so a notice
//!   that is no longer true ("chờ duyệt" about a milestone already returned,
//!   a reminder about one already submitted) is not listed as current. An
//!   obligation waived or cancelled meanwhile is not listed at all. Every
//!   notice stays in the digest's delivery records (`ReminderBatched`,
//!   `ReminderAttempted`): folding changes the wording, never what was sent.
//! - **This month's work first** ([`by_urgency`]): deadlines in the next 30
//!   days, the soonest first; then returned milestones; then milestones
//!   waiting for the recipient's decision; then overdue items, the most
//!   recently due first and the oldest last (an escalation before a plain
//!   overdue reminder of the same day); then later deadlines; then what is
//!   only for information (submitted by the recipient, approved).
//!   Ties go by task, milestone and obligation, so the order is stable.
//! - **Counts** ([`Counts`]): distinct milestones and distinct tasks in all,
//!   and distinct milestones per state, each state with its link.

use super::{DigestItem, ItemKind, Role};
use crate::domain::task::MilestoneStatus;
use std::collections::{BTreeMap, BTreeSet};

/// Items listed in full in one digest; the rest are in the counts.
pub const FULL_ITEMS: usize = 20;

/// The largest e-mail a digest may become, headers and both parts, in bytes.
pub const MAX_EMAIL_BYTES: usize = 200 * 1024;

/// Longest task or milestone title written in a digest, in characters.
pub const TITLE_MAX_CHARS: usize = 200;

/// Longest note (a return's reason, say) written in a digest, in characters.
pub const NOTE_MAX_CHARS: usize = 600;

/// Longest agency or plan name written in a digest, in characters.
pub const NAME_MAX_CHARS: usize = 150;

/// A queued notice on its way into a digest, with what folding needs.
#[derive(Debug, Clone)]
pub struct Pending {
    pub item: DigestItem,
    /// The owing agency of the obligation the notice is about (None: the
    /// joint obligation, or a release 0.1 notice about every implementer).
    pub obligation: Option<String>,
    /// When it was queued (RFC 3339 UTC, so it sorts as text).
    pub queued_at: String,
    /// The obligation's status as the digest is rendered.
    pub status: Option<MilestoneStatus>,
    /// The obligation was settled from the office's files (done, or never
    /// done) after the notice was queued: no longer news for anyone.
    pub settled: bool,
}

/// The lines of a digest, and what folding did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Folded {
    /// One per item, most urgent first.
    pub items: Vec<DigestItem>,
    /// Notices folded into a later one about the same item.
    pub folded: usize,
    /// Items no longer owed (waived or cancelled), not listed.
    pub closed: usize,
}

/// Folds the notices of one digest into one line per item in its current
/// state, most urgent first (see the module documentation).
pub fn fold(pending: Vec<Pending>) -> Folded {
    // Messages of a discussion are a line of their own, beside the
    // obligation's state.
    type Key = (String, String, Option<String>, bool);
    let mut groups: BTreeMap<Key, Vec<Pending>> = BTreeMap::new();
    for p in pending {
        let key = (
            p.item.task_id.clone(),
            p.item.milestone_id.clone(),
            p.obligation.clone(),
            p.item.kind == ItemKind::Message,
        );
        groups.entry(key).or_default().push(p);
    }
    let mut out = Folded::default();
    for group in groups.into_values() {
        out.folded += group.len() - 1;
        let messages = group.iter().all(|p| p.item.kind == ItemKind::Message);
        if !messages && group.iter().any(|p| p.settled) {
            out.closed += 1;
            continue;
        }
        match current(&group) {
            Some(item) => out.items.push(item),
            None => out.closed += 1,
        }
    }
    by_urgency(&mut out.items);
    out
}

/// The one line for the notices of one item: the latest (the most urgent
/// among those queued at the same instant), in the item's current state;
/// None when the obligation is no longer owed.
fn current(group: &[Pending]) -> Option<DigestItem> {
    let latest = group
        .iter()
        .max_by(|a, b| {
            a.queued_at
                .cmp(&b.queued_at)
                .then_with(|| urgency(&b.item).cmp(&urgency(&a.item)))
        })
        .expect("a group has a notice");
    let kind = state_now(latest.item.kind, latest.status, latest.item.days_left)?;
    let mut item = latest.item.clone();
    item.kind = kind;
    // The recipient's part that matters most for this state: a decision on
    // a submission, the work itself otherwise.
    item.role = group
        .iter()
        .map(|p| p.item.role)
        .min_by_key(|r| role_rank(kind, *r))
        .unwrap_or(item.role);
    if kind == ItemKind::Returned && latest.item.kind != ItemKind::Returned {
        // The reason comes with the return notice.
        item.note = group
            .iter()
            .filter(|p| p.item.kind == ItemKind::Returned)
            .max_by(|a, b| a.queued_at.cmp(&b.queued_at))
            .and_then(|p| p.item.note.clone());
    }
    Some(item)
}

/// What a notice of `kind` is now, given the obligation's `status`: a
/// submission, approval or return supersedes the notices before it. None
/// when the obligation was waived or cancelled.
fn state_now(kind: ItemKind, status: Option<MilestoneStatus>, days_left: i64) -> Option<ItemKind> {
    use ItemKind as K;
    use MilestoneStatus as S;
    let still_to_do = || if days_left < 0 { K::Overdue } else { K::Upcoming };
    Some(match (status, kind) {
        (None, k) => k,
        (_, K::Message) => K::Message,
        // A waiver is news about a closed obligation.
        (Some(S::Waived), K::Waived) => K::Waived,
        (Some(S::Waived | S::Cancelled), _) => return None,
        (Some(S::Submitted), _) => K::Submitted,
        (Some(S::Approved), _) => K::Approved,
        (Some(S::Returned), K::Submitted | K::Approved) => K::Returned,
        (Some(S::Returned), k) => k,
        (Some(S::Open), K::Submitted | K::Approved | K::Returned) => still_to_do(),
        (Some(S::Open), k) => k,
    })
}

fn role_rank(kind: ItemKind, role: Role) -> u8 {
    match (kind, role) {
        (ItemKind::Submitted, Role::Lead | Role::Advisory) => 0,
        (_, Role::Implementer) => 1,
        (_, Role::Advisory) => 2,
        (_, Role::Lead) => 3,
        (_, Role::Inspector) => 4,
        (_, Role::Coordinator) => 5,
    }
}

/// Whether the recipient is asked to decide on a submitted milestone.
pub fn to_decide(it: &DigestItem) -> bool {
    it.kind == ItemKind::Submitted && matches!(it.role, Role::Lead | Role::Advisory)
}

/// Days ahead that count as this month's work: first in a digest.
pub const SOON_DAYS: i64 = 30;

/// The tier of an item in a digest's order (lower comes first).
fn tier(it: &DigestItem) -> u8 {
    match it.kind {
        ItemKind::Upcoming if it.days_left <= SOON_DAYS => 0,
        ItemKind::Returned | ItemKind::Message => 1,
        ItemKind::Submitted if to_decide(it) => 2,
        ItemKind::Escalation | ItemKind::Overdue => 3,
        ItemKind::Upcoming => 4,
        ItemKind::Extended => 4,
        ItemKind::Submitted => 5,
        ItemKind::Approved | ItemKind::Waived => 6,
    }
}

/// The key of an item's place: its tier, then the soonest deadline first,
/// except overdue items, the most recently due first and the oldest last.
fn urgency(it: &DigestItem) -> (u8, i64, bool) {
    let overdue = matches!(it.kind, ItemKind::Overdue | ItemKind::Escalation);
    let days = if overdue { -it.days_left } else { it.days_left };
    (tier(it), days, it.kind != ItemKind::Escalation)
}

/// Sorts items most urgent first (see the module documentation).
pub fn by_urgency(items: &mut [DigestItem]) {
    items.sort_by(|a, b| {
        urgency(a)
            .cmp(&urgency(b))
            .then_with(|| a.task_id.cmp(&b.task_id))
            .then_with(|| a.milestone_id.cmp(&b.milestone_id))
            .then_with(|| a.obligation.cmp(&b.obligation))
    });
}

/// A state a digest counts, with its words and its inbox filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum State {
    Overdue,
    Returned,
    Message,
    ToDecide,
    Upcoming,
    Extended,
    Submitted,
    Approved,
    Waived,
}

impl State {
    pub fn of(it: &DigestItem) -> State {
        match it.kind {
            ItemKind::Overdue | ItemKind::Escalation => State::Overdue,
            ItemKind::Returned => State::Returned,
            ItemKind::Message => State::Message,
            ItemKind::Submitted if to_decide(it) => State::ToDecide,
            ItemKind::Submitted => State::Submitted,
            ItemKind::Upcoming => State::Upcoming,
            ItemKind::Approved => State::Approved,
            ItemKind::Extended => State::Extended,
            ItemKind::Waived => State::Waived,
        }
    }

    /// The heading of its count in the body.
    pub fn label(self) -> &'static str {
        match self {
            State::Overdue => "Quá hạn",
            State::Returned => "Bị trả lại, cần nộp lại",
            State::Message => "Có trao đổi mới",
            State::ToDecide => "Chờ quý cơ quan duyệt",
            State::Upcoming => "Sắp đến hạn",
            State::Submitted => "Đã nộp, chờ duyệt",
            State::Approved => "Đã được duyệt",
            State::Extended => "Được gia hạn",
            State::Waived => "Được miễn",
        }
    }

    /// Its words in the subject ("5 quá hạn").
    fn short(self) -> &'static str {
        match self {
            State::Overdue => "quá hạn",
            State::Returned => "bị trả lại",
            State::Message => "trao đổi mới",
            State::ToDecide => "chờ duyệt",
            State::Upcoming => "sắp đến hạn",
            State::Submitted => "đã nộp",
            State::Approved => "đã được duyệt",
            State::Extended => "được gia hạn",
            State::Waived => "được miễn",
        }
    }

    /// The page listing these items, per the inbox filter contract:
    /// `{base}/inbox?…&plan=<plan>`, or the approval queue for decisions.
    pub fn link(self, base_url: &str, plan: &str) -> String {
        let base = base_url.trim_end_matches('/');
        let plan = query_value(plan);
        match self {
            State::Overdue => format!("{base}/inbox?overdue=1&plan={plan}"),
            State::Returned => format!("{base}/inbox?status=returned&plan={plan}"),
            State::Message => format!("{base}/inbox?plan={plan}"),
            State::ToDecide => format!("{base}/queue?plan={plan}"),
            State::Upcoming => format!("{base}/inbox?due_within=30d&plan={plan}"),
            State::Submitted => format!("{base}/inbox?status=submitted&plan={plan}"),
            State::Approved => format!("{base}/inbox?status=approved&plan={plan}"),
            State::Extended => format!("{base}/inbox?plan={plan}"),
            State::Waived => format!("{base}/inbox?status=waived&plan={plan}"),
        }
    }
}

/// A value for a query string: unreserved characters kept, the rest
/// percent-encoded.
fn query_value(s: &str) -> String {
    crate::web::pages::urlencode(s).replace('/', "%2F")
}

/// How many parts of milestones ("phần việc": one agency's part of a
/// milestone, see docs/words.md) and tasks a digest is about, in all and by
/// state: worded once for the subject, the body and the list so they never
/// disagree. Each part is counted once, tasks once each.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub parts: usize,
    pub tasks: usize,
    /// Distinct parts in each state, in the order of urgency.
    pub by_state: Vec<(State, usize)>,
}

impl Counts {
    pub fn of(items: &[DigestItem]) -> Self {
        let part = |it: &DigestItem| (it.task_id.clone(), it.milestone_id.clone(), it.obligation.clone());
        let parts: BTreeSet<_> = items.iter().map(part).collect();
        let tasks: BTreeSet<&str> = items.iter().map(|it| it.task_id.as_str()).collect();
        let mut by_state: BTreeMap<State, BTreeSet<(String, String, Option<String>)>> = BTreeMap::new();
        for it in items {
            by_state.entry(State::of(it)).or_default().insert(part(it));
        }
        Counts {
            parts: parts.len(),
            tasks: tasks.len(),
            by_state: by_state.into_iter().map(|(s, m)| (s, m.len())).collect(),
        }
    }

    /// "12 phần việc của 7 nhiệm vụ".
    pub fn total(&self) -> String {
        format!("{} phần việc của {} nhiệm vụ", self.parts, self.tasks)
    }

    /// "12 phần việc của 7 nhiệm vụ (5 quá hạn, 7 sắp đến hạn)".
    pub fn phrase(&self) -> String {
        let states: Vec<String> = self
            .by_state
            .iter()
            .map(|(s, n)| format!("{n} {}", s.short()))
            .collect();
        if states.is_empty() {
            self.total()
        } else {
            format!("{} ({})", self.total(), states.join(", "))
        }
    }

    pub fn has(&self, state: State) -> bool {
        self.by_state.iter().any(|(s, _)| *s == state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2024, 3, d).unwrap()
    }

    fn item(kind: ItemKind, task: &str, milestone: &str, days_left: i64) -> DigestItem {
        DigestItem {
            task_id: task.into(),
            task_title: format!("Nhiệm vụ {task}"),
            role: Role::Implementer,
            kind,
            milestone_id: milestone.into(),
            milestone_title: format!("Mốc {milestone}"),
            obligation: None,
            due: day(10),
            due_moved: None,
            days_left,
            note: None,
            link: String::new(),
        }
    }

    fn pending(item: DigestItem, at: &str, status: Option<MilestoneStatus>) -> Pending {
        Pending {
            item,
            obligation: None,
            queued_at: format!("2024-03-{at}T01:00:00Z"),
            status,
            settled: false,
        }
    }

    #[test]
    fn counts_say_milestones_of_tasks_never_tasks_for_milestones() {
        let items = vec![
            item(ItemKind::Overdue, "II.1", "q1", -3),
            item(ItemKind::Overdue, "II.1", "q2", -1),
            item(ItemKind::Escalation, "II.2", "q1", -9),
            item(ItemKind::Upcoming, "II.2", "q2", 4),
            item(ItemKind::Upcoming, "III.1", "y", 6),
        ];
        let c = Counts::of(&items);
        assert_eq!((c.parts, c.tasks), (5, 3));
        assert_eq!(c.total(), "5 phần việc của 3 nhiệm vụ");
        assert_eq!(c.phrase(), "5 phần việc của 3 nhiệm vụ (3 quá hạn, 2 sắp đến hạn)");
        // Two agencies' parts of one milestone are one milestone.
        let mut a = item(ItemKind::Submitted, "II.1", "q1", 3);
        a.obligation = Some("Ủy ban nhân dân".into());
        let mut b = a.clone();
        b.obligation = Some("Mặt trận Tổ quốc".into());
        b.role = Role::Advisory;
        let c = Counts::of(&[a, b]);
        assert_eq!(c.phrase(), "2 phần việc của 1 nhiệm vụ (1 chờ duyệt, 1 đã nộp)");
        assert_eq!(Counts::of(&[]).phrase(), "0 phần việc của 0 nhiệm vụ");
    }

    #[test]
    fn the_most_urgent_come_first() {
        let mut decide = item(ItemKind::Submitted, "A", "s", 2);
        decide.role = Role::Lead;
        let mut items = vec![
            item(ItemKind::Approved, "A", "a", 1),
            item(ItemKind::Upcoming, "B", "later", 9),
            item(ItemKind::Submitted, "A", "mine", 1),
            item(ItemKind::Upcoming, "B", "soon", 1),
            decide,
            item(ItemKind::Returned, "C", "r", 5),
            item(ItemKind::Overdue, "D", "o3", -3),
            item(ItemKind::Escalation, "E", "e10", -10),
            item(ItemKind::Overdue, "D", "o10", -10),
        ];
        by_urgency(&mut items);
        let order: Vec<&str> = items.iter().map(|i| i.milestone_id.as_str()).collect();
        assert_eq!(order, ["soon", "later", "r", "s", "o3", "e10", "o10", "mine", "a"]);
    }

    #[test]
    fn an_item_shows_once_in_its_current_state() {
        // MTTQ heard of the submission (as advisory) and of the return (as
        // implementer): one line, returned, with the reason.
        let mut submitted = item(ItemKind::Submitted, "II.1", "q1", 5);
        submitted.role = Role::Advisory;
        let mut returned = item(ItemKind::Returned, "II.1", "q1", 5);
        returned.note = Some("Thiếu số liệu".into());
        let f = fold(vec![
            pending(submitted.clone(), "02", Some(MilestoneStatus::Returned)),
            pending(returned, "03", Some(MilestoneStatus::Returned)),
        ]);
        assert_eq!((f.items.len(), f.folded, f.closed), (1, 1, 0));
        assert_eq!(f.items[0].kind, ItemKind::Returned);
        assert_eq!(f.items[0].note.as_deref(), Some("Thiếu số liệu"));

        // A "chờ duyệt" notice about a milestone approved since: approved.
        let f = fold(vec![pending(submitted.clone(), "02", Some(MilestoneStatus::Approved))]);
        assert_eq!(f.items[0].kind, ItemKind::Approved);

        // Reminders about a milestone submitted since: submitted, once.
        let f = fold(vec![
            pending(
                item(ItemKind::Upcoming, "II.1", "q1", 2),
                "01",
                Some(MilestoneStatus::Submitted),
            ),
            pending(
                item(ItemKind::Overdue, "II.1", "q1", -1),
                "02",
                Some(MilestoneStatus::Submitted),
            ),
        ]);
        assert_eq!((f.items.len(), f.items[0].kind), (1, ItemKind::Submitted));

        // Waived since: not listed, but accounted for.
        let f = fold(vec![pending(
            item(ItemKind::Overdue, "II.1", "q1", -1),
            "02",
            Some(MilestoneStatus::Waived),
        )]);
        assert_eq!((f.items.len(), f.closed), (0, 1));

        // Different obligations of one milestone stay separate lines.
        let mut other = pending(item(ItemKind::Overdue, "II.1", "q1", -1), "02", None);
        other.obligation = Some("UBND".into());
        let f = fold(vec![
            pending(item(ItemKind::Overdue, "II.1", "q1", -1), "02", None),
            other,
        ]);
        assert_eq!((f.items.len(), f.folded), (2, 0));

        // An implementer that also inspects: one line, as the implementer.
        let mut esc = item(ItemKind::Escalation, "IV.6", "y", -8);
        esc.role = Role::Inspector;
        let f = fold(vec![
            pending(
                item(ItemKind::Overdue, "IV.6", "y", -8),
                "05",
                Some(MilestoneStatus::Open),
            ),
            pending(esc, "05", Some(MilestoneStatus::Open)),
        ]);
        assert_eq!(f.items.len(), 1);
        assert_eq!(
            (f.items[0].kind, f.items[0].role),
            (ItemKind::Escalation, Role::Implementer)
        );
    }

    #[test]
    fn links_follow_the_inbox_contract() {
        let base = "https://kehoach.example/";
        for (state, plan, link) in [
            (
                State::Overdue,
                "duc-pho-de-an-13",
                "inbox?overdue=1&plan=duc-pho-de-an-13",
            ),
            (State::Submitted, "p", "inbox?status=submitted&plan=p"),
            (State::Returned, "p", "inbox?status=returned&plan=p"),
            (State::Upcoming, "p", "inbox?due_within=30d&plan=p"),
            (State::Approved, "p", "inbox?status=approved&plan=p"),
            (State::ToDecide, "a&b", "queue?plan=a%26b"),
        ] {
            assert_eq!(state.link(base, plan), format!("https://kehoach.example/{link}"));
        }
    }
}
