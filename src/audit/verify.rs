//! `audit verify`: recomputes every hash chain, replays every aggregate from
//! its events, checks every checkpoint, and checks that the views agree with
//! the events. Stops at the first discrepancy and names it.

// A Problem is returned at most once per run, where verification stops:
// its size does not matter.
#![allow(clippy::result_large_err)]

use super::canonical::Frame;
use super::checkpoint::{CheckpointEvent, RecordedHead, AGGREGATE_TYPE as CHECKPOINT};
use super::merkle::{root, Head};
use crate::accounts::history::{self as accounts, Account, AccountEvent};
use crate::domain::plan::{Plan, PlanEvent};
use crate::domain::task::{Task, TaskEvent};
use crate::store::feed::{Cursor, FeedEvent};
use crate::store::info::{self, InfoRow, StoreEvent};
use crate::store::{Store, StoreError};
use chrono::{DateTime, Duration, Utc};
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// The first thing found wrong: which event, what was expected, what was found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub what: String,
    pub expected: String,
    pub found: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} #{}: {} — mong đợi {}, thấy {}",
            self.aggregate_type, self.aggregate_id, self.sequence, self.what, self.expected, self.found
        )
    }
}

/// How far back in feed order a recorded time may go. SQLite writes one
/// transaction at a time; PostgreSQL's feed is ordered by transaction id,
/// and a transaction that took its id first may read the clock a little later.
pub const RECORDED_TOLERANCE_SECONDS: i64 = 5;
/// How far, on a production store, the time an action claims may be from
/// the time the store recorded it (clocks of the application and database
/// hosts differ a little; a command stamped once may take a while to write).
pub const CLAIM_TOLERANCE_MINUTES: i64 = 10;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// The store's kind, in Vietnamese ("kho thật", "kho mô phỏng", …).
    pub store: String,
    pub events: u64,
    pub chains: u64,
    pub tasks: u64,
    pub checkpoints: u64,
    pub views: u64,
    /// Accounts whose table rows match their history.
    pub accounts: u64,
    /// Users of a store made before accounts had a history, not recorded
    /// yet (the next command that writes records them).
    pub accounts_unrecorded: u64,
    pub last_root: Option<String>,
}

#[derive(Default)]
struct Chain {
    sequence: i64,
    hash: String,
    /// (cursor, sequence, hash) of every event, for checkpoints taken mid-way.
    history: Vec<([i64; 2], i64, String)>,
}

/// Checks events one at a time, in feed order. Pure: no I/O.
#[derive(Default)]
pub struct Checker {
    chains: BTreeMap<(String, String), Chain>,
    pub tasks: HashMap<String, Task>,
    pub plans: HashMap<String, Plan>,
    pub accounts: HashMap<String, Account>,
    pub summary: Summary,
    /// `up_to` of the last checkpoint seen.
    pub last_up_to: Option<[i64; 2]>,
    /// Feed cursor of the last event of a real chain (not a checkpoint).
    pub covered: Cursor,
    /// The `store_info` row, read before the pass (see `with_store_info`).
    store_row: Option<InfoRow>,
    /// The kind the `StoreInitialised` event recorded, once seen.
    store_event: Option<bool>,
    /// The latest recorded time in feed order, and the event that has it.
    latest_recorded: Option<(DateTime<Utc>, String)>,
}

/// The metadata keys the time checks read.
#[derive(Deserialize)]
struct Times<'a> {
    #[serde(borrow, default)]
    at: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    recorded_at: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    simulated: Option<bool>,
}

fn instant(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc))
}

fn problem(e: &FeedEvent, what: &str, expected: impl ToString, found: impl ToString) -> Problem {
    Problem {
        aggregate_type: e.aggregate_type.clone(),
        aggregate_id: e.aggregate_id.clone(),
        sequence: e.sequence,
        what: what.to_string(),
        expected: expected.to_string(),
        found: found.to_string(),
    }
}

fn short(h: &str) -> String {
    if h.is_empty() {
        "\"\"".into()
    } else {
        h.chars().take(16).collect::<String>() + "…"
    }
}

impl Checker {
    /// The last sequence verified of one chain (0 when it has none).
    fn last_sequence(&self, aggregate_type: &str, aggregate_id: &str) -> i64 {
        self.chains
            .get(&(aggregate_type.to_string(), aggregate_id.to_string()))
            .map_or(0, |c| c.sequence)
    }

    /// A disagreement between a table or view and a chain, named at the
    /// event the chain would need next.
    fn beyond(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        what: impl Into<String>,
        expected: String,
        found: String,
    ) -> Problem {
        Problem {
            aggregate_type: aggregate_type.into(),
            aggregate_id: aggregate_id.into(),
            sequence: self.last_sequence(aggregate_type, aggregate_id) + 1,
            what: what.into(),
            expected,
            found,
        }
    }

    /// A checker for a store whose `store_info` row is `row`.
    pub fn with_store_info(row: Option<InfoRow>) -> Self {
        Self {
            store_row: row,
            ..Self::default()
        }
    }

    fn simulation_store(&self) -> bool {
        self.store_row.is_some_and(|(simulation, _)| simulation)
    }

    /// Recorded times go forward in feed order (within a tolerance); on a
    /// simulation store every event is marked simulated, on a production
    /// store none is, and each claims a time close to when it was recorded.
    /// Events written before recorded times existed have none of this.
    fn check_times(&mut self, e: &FeedEvent) -> Result<(), Problem> {
        let times: Times =
            serde_json::from_str(&e.metadata).map_err(|err| problem(e, "siêu dữ liệu không đọc được", "JSON", err))?;
        let Some(recorded_text) = times.recorded_at else {
            return Ok(());
        };
        let recorded = instant(&recorded_text)
            .ok_or_else(|| problem(e, "thời điểm kho ghi nhận không đọc được", "RFC 3339", &recorded_text))?;
        let here = format!("{} {} #{}", e.aggregate_type, e.aggregate_id, e.sequence);
        if let Some((latest, at_event)) = &self.latest_recorded {
            if recorded < *latest - Duration::seconds(RECORDED_TOLERANCE_SECONDS) {
                return Err(problem(
                    e,
                    &format!(
                        "thời điểm kho ghi nhận lùi lại quá {RECORDED_TOLERANCE_SECONDS} giây so với sự kiện trước trong dòng sự kiện ({at_event})"
                    ),
                    format!("từ {} trở đi", latest.to_rfc3339()),
                    recorded.to_rfc3339(),
                ));
            }
        }
        if self
            .latest_recorded
            .as_ref()
            .is_none_or(|(latest, _)| recorded > *latest)
        {
            self.latest_recorded = Some((recorded, here));
        }
        let simulation = self.simulation_store();
        let marked = times.simulated == Some(true);
        if marked != simulation {
            let (what, expected, found) = if simulation {
                (
                    "sự kiện trong kho mô phỏng không có dấu mô phỏng",
                    "simulated: true",
                    "không có",
                )
            } else {
                (
                    "sự kiện mô phỏng trong kho thật",
                    "không có dấu mô phỏng",
                    "simulated: true",
                )
            };
            return Err(problem(e, what, expected, found));
        }
        if !simulation {
            if let Some(claimed) = times.at.as_deref().and_then(instant) {
                if (claimed - recorded).abs() > Duration::minutes(CLAIM_TOLERANCE_MINUTES) {
                    return Err(problem(
                        e,
                        &format!(
                            "thời điểm khai (at) lệch quá {CLAIM_TOLERANCE_MINUTES} phút so với thời điểm kho ghi nhận (ghi lùi hay ghi trước ngày?)"
                        ),
                        format!("gần {}", recorded.to_rfc3339()),
                        claimed.to_rfc3339(),
                    ));
                }
            }
        }
        Ok(())
    }

    /// After the pass: the `store_info` row must say what the
    /// `StoreInitialised` event says; a store with no such event is a store
    /// made by an earlier release, which is production.
    pub fn check_store_kind(&mut self) -> Result<(), Problem> {
        let kind = |simulation: bool| if simulation { "kho mô phỏng" } else { "kho thật" };
        let wrong = |expected: String, found: String| Problem {
            aggregate_type: info::AGGREGATE_TYPE.into(),
            aggregate_id: info::AGGREGATE_ID.into(),
            sequence: 1,
            what: "bảng store_info không khớp với sự kiện StoreInitialised (loại kho bị sửa?)".into(),
            expected,
            found,
        };
        let mode = match (self.store_row, self.store_event) {
            (None, None) => info::StoreMode::Uninitialised,
            (Some((false, true)), None) => info::StoreMode::Legacy,
            (Some((simulation, false)), Some(event)) if simulation == event => {
                if simulation {
                    info::StoreMode::Simulation
                } else {
                    info::StoreMode::Production
                }
            }
            (row, Some(event)) => {
                let found = match row {
                    None => "không có dòng store_info".to_string(),
                    Some((_, true)) => "dòng ghi là kho cũ".to_string(),
                    Some((simulation, _)) => format!("dòng ghi là {}", kind(simulation)),
                };
                return Err(wrong(format!("{} như sự kiện", kind(event)), found));
            }
            (Some((simulation, _)), None) => {
                return Err(wrong(
                    "sự kiện StoreInitialised (chỉ kho cũ mới không có)".into(),
                    format!("không có sự kiện, dòng ghi là {}", kind(simulation)),
                ))
            }
        };
        self.summary.store = mode.label_vi().to_string();
        Ok(())
    }

    pub fn check(&mut self, e: &FeedEvent) -> Result<(), Problem> {
        let key = (e.aggregate_type.clone(), e.aggregate_id.clone());
        let chain = self.chains.entry(key).or_default();
        if e.sequence != chain.sequence + 1 {
            // The event that should come next is missing here: deleted, or
            // moved (sequence numbers swapped). Name the one that is missing.
            let what = if e.sequence > chain.sequence + 1 {
                "thiếu sự kiện hoặc sự kiện bị đổi thứ tự"
            } else {
                "sự kiện bị đổi thứ tự"
            };
            let mut p = problem(
                e,
                what,
                format!("số thứ tự {}", chain.sequence + 1),
                format!("số thứ tự {}", e.sequence),
            );
            p.sequence = chain.sequence + 1;
            return Err(p);
        }
        let stored_prev = e.prev_hash.clone().unwrap_or_default();
        if stored_prev != chain.hash {
            return Err(problem(
                e,
                "mắt xích với sự kiện trước sai",
                short(&chain.hash),
                short(&stored_prev),
            ));
        }
        // Events kehoach wrote are stored in canonical form, so hashing the
        // stored text is enough when it matches; anything else (older rows, text
        // rewritten by a tool) is parsed and put in canonical form first.
        let stored = e.hash.clone().unwrap_or_default();
        let frame = Frame {
            prev_hash: &chain.hash,
            aggregate_type: &e.aggregate_type,
            aggregate_id: &e.aggregate_id,
            sequence: e.sequence,
            event_type: &e.event_type,
            event_version: &e.event_version,
        };
        let fast = frame.hash_canonical(&e.payload, &e.metadata);
        let computed = if fast == stored {
            fast
        } else {
            let unreadable = |err: serde_json::Error| problem(e, "nội dung không phải JSON", "JSON", err);
            let (payload, metadata) = (
                e.payload_value().map_err(unreadable)?,
                e.metadata_value().map_err(unreadable)?,
            );
            frame.hash(&payload, &metadata)
        };
        if stored != computed {
            return Err(problem(
                e,
                "nội dung không khớp mã băm (bị sửa?)",
                short(&stored),
                short(&computed),
            ));
        }
        chain.sequence = e.sequence;
        chain.hash = computed.clone();
        chain
            .history
            .push(([e.cursor.tx, e.cursor.position], e.sequence, computed));
        self.summary.events += 1;
        self.check_times(e)?;
        self.replay(e)
    }

    fn replay(&mut self, e: &FeedEvent) -> Result<(), Problem> {
        let bad = |err: serde_json::Error| problem(e, "không đọc được sự kiện khi dựng lại", &e.event_type, err);
        match e.aggregate_type.as_str() {
            Task::TYPE => {
                let event: TaskEvent = serde_json::from_str(&e.payload).map_err(bad)?;
                self.tasks.entry(e.aggregate_id.clone()).or_default().apply(event);
            }
            Plan::TYPE => {
                let event: PlanEvent = serde_json::from_str(&e.payload).map_err(bad)?;
                self.plans.entry(e.aggregate_id.clone()).or_default().apply(event);
            }
            accounts::AGGREGATE_TYPE => {
                let event: AccountEvent = serde_json::from_str(&e.payload).map_err(bad)?;
                self.accounts.entry(e.aggregate_id.clone()).or_default().apply(event);
            }
            CHECKPOINT => {
                let event: CheckpointEvent = serde_json::from_str(&e.payload).map_err(bad)?;
                self.check_checkpoint(e, &event)?;
            }
            info::AGGREGATE_TYPE => {
                let StoreEvent::StoreInitialised { simulation, .. } = serde_json::from_str(&e.payload).map_err(bad)?;
                if e.aggregate_id != info::AGGREGATE_ID || self.store_event.is_some() {
                    return Err(problem(e, "khởi tạo kho lần thứ hai", "một lần", "hai lần"));
                }
                self.store_event = Some(simulation);
            }
            other => {
                return Err(problem(
                    e,
                    "loại tổng hợp không biết",
                    "Task, Plan, Account, Checkpoint hoặc Store",
                    other,
                ))
            }
        }
        Ok(())
    }

    /// The heads of every other chain as they stood at `up_to`, and how
    /// many events they cover.
    pub fn heads_at(&self, up_to: [i64; 2]) -> (Vec<Head>, u64) {
        let (heads, events): (Vec<(Head, [i64; 2])>, u64) = self.heads_with_cursor(up_to);
        (heads.into_iter().map(|(h, _)| h).collect(), events)
    }

    fn heads_with_cursor(&self, up_to: [i64; 2]) -> (Vec<(Head, [i64; 2])>, u64) {
        let mut heads = Vec::new();
        let mut events = 0;
        for ((kind, id), chain) in &self.chains {
            if kind == CHECKPOINT {
                continue;
            }
            let covered = chain.history.iter().filter(|(c, _, _)| *c <= up_to).count();
            if let Some((cursor, seq, hash)) = covered.checked_sub(1).map(|i| &chain.history[i]) {
                events += covered as u64;
                let head = Head {
                    aggregate_type: kind.clone(),
                    aggregate_id: id.clone(),
                    sequence: *seq,
                    hash: hash.clone(),
                };
                heads.push((head, *cursor));
            }
        }
        (heads, events)
    }

    /// The heads that changed after the previous checkpoint, to record in a new one.
    pub fn changed_heads(&self, up_to: [i64; 2]) -> Vec<RecordedHead> {
        let since = self.last_up_to.unwrap_or([i64::MIN, i64::MIN]);
        self.heads_with_cursor(up_to)
            .0
            .into_iter()
            .filter(|(_, cursor)| *cursor > since)
            .map(|(h, _)| RecordedHead(h.aggregate_type, h.aggregate_id, h.sequence, h.hash))
            .collect()
    }

    fn check_checkpoint(&mut self, e: &FeedEvent, event: &CheckpointEvent) -> Result<(), Problem> {
        let CheckpointEvent::CheckpointRecorded {
            root: recorded,
            events,
            aggregates,
            up_to,
            heads: recorded_heads,
            ..
        } = event;
        let (heads, covered) = self.heads_at(*up_to);
        // Each chain the checkpoint saw change must still end where it ended then.
        for RecordedHead(kind, id, seq, hash) in recorded_heads {
            let now = heads
                .iter()
                .find(|h| &h.aggregate_type == kind && &h.aggregate_id == id);
            let (found_seq, found_hash) = now.map_or((0, String::new()), |h| (h.sequence, h.hash.clone()));
            if found_seq != *seq || &found_hash != hash {
                let (sequence, what) = if found_seq < *seq {
                    (found_seq + 1, "sự kiện bị xóa sau khi đã ghi điểm kiểm")
                } else if found_seq > *seq {
                    (*seq + 1, "chuỗi có sự kiện chèn vào trước điểm kiểm")
                } else {
                    (*seq, "chuỗi bị viết lại sau khi đã ghi điểm kiểm")
                };
                return Err(Problem {
                    aggregate_type: kind.clone(),
                    aggregate_id: id.clone(),
                    sequence,
                    what: format!("{what} (điểm kiểm #{})", e.sequence),
                    expected: format!("đầu chuỗi #{seq} {}", short(hash)),
                    found: format!("đầu chuỗi #{found_seq} {}", short(&found_hash)),
                });
            }
        }
        if covered != *events || heads.len() as u64 != *aggregates {
            return Err(problem(
                e,
                "điểm kiểm không khớp số sự kiện (bị xóa hay thêm?)",
                format!("{events} sự kiện trong {aggregates} chuỗi"),
                format!("{covered} sự kiện trong {} chuỗi", heads.len()),
            ));
        }
        let computed = root(&heads);
        if &computed != recorded {
            return Err(problem(
                e,
                "gốc Merkle của điểm kiểm không khớp (chuỗi bị viết lại?)",
                short(recorded),
                short(&computed),
            ));
        }
        self.summary.checkpoints += 1;
        self.summary.last_root = Some(recorded.clone());
        self.last_up_to = Some(*up_to);
        Ok(())
    }
}

/// Reads every event committed so far in feed order through a `Checker`.
/// Returns the checker, or the first problem found.
pub async fn check_store(store: &Store, progress: impl Fn(u64)) -> Result<Result<Checker, Problem>, StoreError> {
    store.settle(std::time::Duration::from_secs(10)).await?;
    // A reader task fetches the next page while this one checks the last:
    // the database and the hashing overlap instead of taking turns.
    let (pages, mut received) = tokio::sync::mpsc::channel(2);
    let reader = store.clone();
    tokio::spawn(async move {
        let mut after = Cursor::default();
        loop {
            let page = reader.read_feed(after, 5_000).await;
            // The cursor after this page; none at the end or after an error.
            let next = page.as_ref().ok().and_then(|events| events.last().map(|e| e.cursor));
            if matches!(&page, Ok(events) if events.is_empty()) || pages.send(page).await.is_err() {
                return;
            }
            match next {
                Some(cursor) => after = cursor,
                None => return,
            }
        }
    });
    let mut checker = Checker::with_store_info(store.info_row().await?);
    while let Some(page) = received.recv().await {
        for e in &page? {
            if let Err(p) = checker.check(e) {
                return Ok(Err(p));
            }
            if e.aggregate_type != CHECKPOINT {
                checker.covered = e.cursor;
            }
        }
        progress(checker.summary.events);
    }
    if checker.store_row.is_none() {
        // The store may have been initialised while the pass ran.
        checker.store_row = store.info_row().await?;
    }
    if let Err(p) = checker.check_store_kind() {
        return Ok(Err(p));
    }
    Ok(Ok(checker))
}

/// Verifies the whole store. `progress` is called with the number of events
/// checked so far. Returns the summary, or the first problem found.
pub async fn verify(store: &Store, progress: impl Fn(u64)) -> Result<Result<Summary, Problem>, StoreError> {
    let mut checker = match check_store(store, progress).await? {
        Ok(c) => c,
        Err(p) => return Ok(Err(p)),
    };
    checker.summary.chains = checker.chains.len() as u64;
    checker.summary.tasks = checker.tasks.len() as u64;

    // The views must say what the events say.
    crate::projections::catch_up(store).await?;
    let views = store.task_views().await?;
    for view in &views {
        let replayed = checker.tasks.get(&view.id);
        let last = checker.last_sequence(Task::TYPE, &view.id);
        let mismatch = |what: &str, expected, found| checker.beyond(Task::TYPE, &view.id, what, expected, found);
        if view.version != last {
            let what = if view.version > last {
                "khung nhìn đã áp dụng sự kiện không còn trong kho (bị xóa?)"
            } else {
                "khung nhìn thiếu sự kiện"
            };
            return Ok(Err(mismatch(
                what,
                format!("phiên bản {last}"),
                format!("phiên bản {}", view.version),
            )));
        }
        if replayed != Some(&view.task) {
            return Ok(Err(mismatch(
                "khung nhìn khác trạng thái dựng lại từ sự kiện",
                "trạng thái dựng lại".into(),
                "khung nhìn khác".into(),
            )));
        }
    }
    if let Some(missing) = checker.tasks.keys().find(|id| !views.iter().any(|v| &v.id == *id)) {
        return Ok(Err(Problem {
            aggregate_type: Task::TYPE.into(),
            aggregate_id: missing.clone(),
            sequence: 0,
            what: "nhiệm vụ có sự kiện nhưng không có khung nhìn".into(),
            expected: "một khung nhìn".into(),
            found: "không có".into(),
        }));
    }
    if let Some(problem) = compare_plan_views(&checker, &store.plan_views().await?) {
        return Ok(Err(problem));
    }
    checker.summary.views = views.len() as u64;
    match compare_accounts(store, &checker).await? {
        Err(p) => return Ok(Err(p)),
        Ok(unrecorded) => checker.summary.accounts_unrecorded = unrecorded,
    }
    checker.summary.accounts = checker.accounts.len() as u64;
    Ok(Ok(checker.summary))
}

/// The `users` and `api_tokens` tables must say what the account events
/// say: the same accounts, e-mail, name, agency, roles, disabled, password
/// set, and the same tokens revoked. A change made to the tables by SQL
/// (a role added, an account enabled) shows up here.
///
/// A store with no account event at all was made by a release before
/// accounts had a history: its users are reported as not yet recorded
/// (returned), not as a divergence. The next command that writes records
/// them as the tables say, which is all this check could hold them to.
async fn compare_accounts(store: &Store, checker: &Checker) -> Result<Result<u64, Problem>, StoreError> {
    let rows = store.account_rows().await?;
    if checker.accounts.is_empty() {
        return Ok(Ok(rows.len() as u64));
    }
    let problem =
        |id: &str, what: String, expected, found| checker.beyond(accounts::AGGREGATE_TYPE, id, what, expected, found);
    for row in &rows {
        let Some(account) = checker.accounts.get(&row.id).filter(|a| a.exists) else {
            return Ok(Err(problem(
                &row.id,
                format!(
                    "người dùng {} có trong bảng users nhưng không có lịch sử tài khoản (thêm bằng SQL, hoặc kho từ bản trước chưa được ghi nhận: chạy một lệnh ghi như `kehoach audit checkpoint`)",
                    row.email
                ),
                "sự kiện tài khoản".into(),
                "không có".into(),
            )));
        };
        if let Some((what, events, table)) = accounts::difference(account, row) {
            return Ok(Err(problem(
                &row.id,
                format!("bảng users khác lịch sử tài khoản {} ở {what}", row.email),
                format!("{events} (theo sự kiện)"),
                format!("{table} (trong bảng)"),
            )));
        }
    }
    if let Some((id, account)) = checker
        .accounts
        .iter()
        .find(|(id, a)| a.exists && !rows.iter().any(|r| &r.id == *id))
    {
        return Ok(Err(problem(
            id,
            format!(
                "tài khoản {} có lịch sử nhưng không còn trong bảng users (bị xóa?)",
                account.email
            ),
            "một dòng trong bảng users".into(),
            "không có".into(),
        )));
    }
    Ok(Ok(0))
}

/// The first plan view that disagrees with its replayed events (header,
/// directory, directory notices and their delivery), or a plan with events
/// and no view.
fn compare_plan_views(checker: &Checker, views: &[crate::projections::PlanView]) -> Option<Problem> {
    for view in views {
        let last = checker.last_sequence(Plan::TYPE, &view.id);
        let mismatch = |what: &str, expected, found| checker.beyond(Plan::TYPE, &view.id, what, expected, found);
        if view.version != last {
            return Some(mismatch(
                "khung nhìn kế hoạch khác phiên bản trong kho sự kiện",
                format!("phiên bản {last}"),
                format!("phiên bản {}", view.version),
            ));
        }
        if checker.plans.get(&view.id) != Some(&view.plan) {
            return Some(mismatch(
                "khung nhìn kế hoạch khác trạng thái dựng lại từ sự kiện",
                "trạng thái dựng lại".into(),
                "khung nhìn khác".into(),
            ));
        }
    }
    checker
        .plans
        .keys()
        .find(|id| !views.iter().any(|v| &v.id == *id))
        .map(|missing| Problem {
            aggregate_type: Plan::TYPE.into(),
            aggregate_id: missing.clone(),
            sequence: 0,
            what: "kế hoạch có sự kiện nhưng không có khung nhìn".into(),
            expected: "một khung nhìn".into(),
            found: "không có".into(),
        })
}
