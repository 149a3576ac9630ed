//! `audit verify`: recomputes every hash chain, replays every aggregate from
//! its events, checks every checkpoint and every root kept outside the store,
//! and checks that the views and the tables the dispatcher and scheduler read
//! (`task_view`, `plan_view`, `due_index`, `outbox`, `obligation_index`,
//! the account tables)
//! agree with the events. Stops at the first discrepancy and names it.

// A Problem is returned at most once per run, where verification stops:
// its size does not matter.
#![allow(clippy::result_large_err)]

use super::canonical::Frame;
use super::checkpoint::{CheckpointEvent, RecordedHead, AGGREGATE_ID as CHECKPOINT_ID, AGGREGATE_TYPE as CHECKPOINT};
use super::merkle::{root, Head};
use crate::accounts::history::{self as accounts, Account, AccountEvent};
use crate::domain::plan::{Plan, PlanEvent, SourceDocument};
use crate::domain::task::{Attachment, Task, TaskEvent};
use crate::projections::{apply_plan_event, apply_task_event, OutboxRow, PlanView, TaskView};
use crate::store::feed::{Cursor, FeedEvent};
use crate::store::info::{self, InfoRow, StoreEvent};
use crate::store::snapshot::Snapshot;
use crate::store::{Store, StoreError};
use chrono::{DateTime, Duration, Utc};
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

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
    /// Rows of `due_index` and of `outbox` that match the events.
    pub due_rows: u64,
    pub outbox_rows: u64,
    /// Rows of `obligation_index` that match the events.
    pub list_rows: u64,
    /// Roots kept outside the store (`--root`, `--roots`) found to be the
    /// root of a checkpoint of this store that still holds.
    pub kept_roots: u64,
    pub last_root: Option<String>,
    /// Evidence files attached by events, found in the store with the
    /// hash the event records.
    pub files: u64,
    /// Original documents plans were imported from, found in the store
    /// with the hash their load event records.
    #[serde(default)]
    pub documents: u64,
    /// Events committed after the views' checkpoint: their chains are
    /// checked, but the views have not applied them yet (a writer still open
    /// holds them back, `unseen_because`, or `serve` has not caught up yet).
    /// Not a sign of tampering.
    #[serde(default)]
    pub unseen: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unseen_because: Option<crate::store::feed::Blocker>,
}

/// A root given to `audit verify` that cannot be one.
#[derive(Debug, thiserror::Error)]
pub enum KeptRootError {
    #[error("gốc {0:?} không hợp lệ: cần đúng 64 chữ số thập lục phân (gốc Merkle của một điểm kiểm)")]
    Malformed(String),
    #[error("{file}:{line}: dòng {text:?} không phải một gốc (64 chữ số thập lục phân; dòng trống và chú thích # được bỏ qua)")]
    BadLine { file: String, line: usize, text: String },
    #[error("không đọc được tệp gốc {file}: {source}")]
    Read { file: String, source: std::io::Error },
}

/// A root as `audit verify --root` takes it: 64 hex digits, any case;
/// returned in lower case, as checkpoints record it.
pub fn parse_root(text: &str) -> Result<String, KeptRootError> {
    let root = text.trim();
    if root.len() == 64 && root.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(root.to_ascii_lowercase())
    } else {
        Err(KeptRootError::Malformed(text.to_string()))
    }
}

/// The roots of a file for `audit verify --roots`: one a line; blank lines
/// and everything from a `#` to the end of its line are ignored.
pub fn read_roots(path: &Path) -> Result<Vec<String>, KeptRootError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| KeptRootError::Read {
        file: file.clone(),
        source,
    })?;
    let mut roots = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let content = line.split('#').next().unwrap_or("").trim();
        if content.is_empty() {
            continue;
        }
        roots.push(parse_root(content).map_err(|_| KeptRootError::BadLine {
            file: file.clone(),
            line: n + 1,
            text: content.to_string(),
        })?);
    }
    Ok(roots)
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
    /// Every task and plan replayed into the view the projection would make of it.
    pub tasks: HashMap<String, TaskView>,
    pub plans: HashMap<String, PlanView>,
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
    /// Roots kept outside the store, to be found among the checkpoints.
    kept: BTreeSet<String>,
    /// The root of each checkpoint, as recomputed from the events now.
    checkpoint_roots: Vec<String>,
    /// Every evidence file an event attaches: (task, sequence, file).
    pub attached: Vec<(String, i64, Attachment)>,
    /// Every original document a plan's load event records: (plan, sequence, document).
    pub documents: Vec<(String, i64, SourceDocument)>,
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
                self.attached.extend(
                    event
                        .attachments()
                        .iter()
                        .map(|a| (e.aggregate_id.clone(), e.sequence, a.clone())),
                );
                let view = match self.tasks.get_mut(&e.aggregate_id) {
                    Some(view) => view,
                    None => self
                        .tasks
                        .entry(e.aggregate_id.clone())
                        .or_insert_with(|| TaskView::empty(&e.aggregate_id)),
                };
                apply_task_event(view, e.sequence, event);
            }
            Plan::TYPE => {
                let event: PlanEvent = serde_json::from_str(&e.payload).map_err(bad)?;
                if let PlanEvent::PlanRegistered { source: Some(s), .. }
                | PlanEvent::PlanAmended { source: Some(s), .. } = &event
                {
                    if let Some(d) = &s.document {
                        self.documents.push((e.aggregate_id.clone(), e.sequence, d.clone()));
                    }
                }
                let view = self
                    .plans
                    .entry(e.aggregate_id.clone())
                    .or_insert_with(|| PlanView::empty(&e.aggregate_id));
                apply_plan_event(view, e.sequence, event);
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

    /// A checkpoint must still match the events it covers; one whose root
    /// was kept outside the store says so when it no longer does.
    fn check_checkpoint(&mut self, e: &FeedEvent, event: &CheckpointEvent) -> Result<(), Problem> {
        let CheckpointEvent::CheckpointRecorded { root: recorded, .. } = event;
        match self.recompute_checkpoint(e, event) {
            Ok(computed) => {
                self.checkpoint_roots.push(computed);
                Ok(())
            }
            Err(mut p) => {
                if self.kept.contains(recorded) {
                    p.what = format!("gốc đã lưu {recorded} không còn khớp với kho: {}", p.what);
                }
                Err(p)
            }
        }
    }

    /// Checks the next event in feed order and moves the cursor every
    /// later checkpoint's coverage is measured from past it.
    pub fn take(&mut self, e: &FeedEvent) -> Result<(), Problem> {
        self.check(e)?;
        if e.aggregate_type != CHECKPOINT {
            self.covered = e.cursor;
        }
        Ok(())
    }

    /// After the pass: each kept root must be the root of a checkpoint of
    /// this store (each checkpoint's root was recomputed from the events as
    /// they are now, over the heads at its `up_to`, by `check_checkpoint`).
    pub fn check_kept_roots(&mut self) -> Result<(), Problem> {
        for kept in &self.kept {
            if !self.checkpoint_roots.contains(kept) {
                return Err(self.beyond(
                    CHECKPOINT,
                    CHECKPOINT_ID,
                    format!(
                        "gốc đã lưu {kept} không phải gốc của điểm kiểm nào trong kho (điểm kiểm bị xóa, hoặc chuỗi và điểm kiểm bị viết lại)"
                    ),
                    "một điểm kiểm có gốc này".into(),
                    format!("{} điểm kiểm, không điểm nào có gốc này", self.checkpoint_roots.len()),
                ));
            }
        }
        self.summary.kept_roots = self.kept.len() as u64;
        Ok(())
    }

    /// Recomputes a checkpoint from the events read so far; its root if it matches.
    fn recompute_checkpoint(&mut self, e: &FeedEvent, event: &CheckpointEvent) -> Result<String, Problem> {
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
        Ok(computed)
    }
}

/// Reads every event the feed can read, in feed order, through a `Checker`
/// (what `audit checkpoint` covers). Returns the checker, or the first
/// problem found.
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
            if let Err(p) = checker.take(e) {
                return Ok(Err(p));
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
    verify_keeping(store, &[], progress).await
}

/// `verify`, also checking roots kept outside the store (lower-case hex, see
/// `parse_root` and `read_roots`): each must be the root of a checkpoint of
/// this store, recomputed from the events as they are now.
///
/// Everything is read in one snapshot of the store, so that writers going on
/// meanwhile (a running `serve`) cannot make the tables and the events
/// disagree: first the events the views have applied (up to the views'
/// checkpoint), against which the views and the tables derived from them
/// are compared; then the events committed after, whose chains are checked
/// and which are counted as not yet in the views; then the accounts, whose
/// tables are written with their events.
pub async fn verify_keeping(
    store: &Store,
    kept: &[String],
    progress: impl Fn(u64),
) -> Result<Result<Summary, Problem>, StoreError> {
    // The views brought up to what the feed can read now.
    crate::projections::catch_up(store).await?;
    let mut snap = store.snapshot().await?;
    let outcome = verify_in(&mut snap, kept, &progress).await;
    snap.close().await;
    let mut checker = match outcome? {
        Ok(c) => c,
        Err(p) => return Ok(Err(p)),
    };
    checker.summary.chains = checker.chains.len() as u64;
    checker.summary.tasks = checker.tasks.len() as u64;
    checker.summary.accounts = checker.accounts.len() as u64;
    // Files and documents never change once stored: read outside the snapshot.
    match check_files(store, &checker.attached).await? {
        Ok(n) => checker.summary.files = n,
        Err(p) => return Ok(Err(p)),
    }
    match check_documents(store, &checker.documents).await? {
        Ok(n) => checker.summary.documents = n,
        Err(p) => return Ok(Err(p)),
    }
    if checker.summary.unseen > 0 {
        // Why the views have not applied them yet, if a writer holds them.
        checker.summary.unseen_because = store.feed_lag().await?.blocker;
    }
    Ok(Ok(checker.summary))
}

/// Feeds events of the snapshot after `after`, up to `upto`, through the
/// checker; returns the cursor of the last one.
async fn check_range(
    snap: &mut Snapshot,
    checker: &mut Checker,
    mut after: Cursor,
    upto: Cursor,
    progress: &impl Fn(u64),
) -> Result<Result<Cursor, Problem>, StoreError> {
    loop {
        let page = snap.read_range(after, upto, 5_000).await?;
        let Some(last) = page.last() else {
            return Ok(Ok(after));
        };
        after = last.cursor;
        for e in &page {
            if let Err(p) = checker.take(e) {
                return Ok(Err(p));
            }
        }
        progress(checker.summary.events);
    }
}

/// The checks of `verify_keeping` that read the snapshot.
async fn verify_in(
    snap: &mut Snapshot,
    kept: &[String],
    progress: &impl Fn(u64),
) -> Result<Result<Checker, Problem>, StoreError> {
    let views_at = snap.views_checkpoint().await?;
    let mut checker = Checker::with_store_info(snap.info_row().await?);
    checker.kept = kept.iter().cloned().collect();

    // The events the views have applied, and the views against them.
    let reached = match check_range(snap, &mut checker, Cursor::default(), views_at, progress).await? {
        Ok(c) => c,
        Err(p) => return Ok(Err(p)),
    };
    match compare_task_views(snap, &checker).await? {
        Ok(n) => checker.summary.views = n,
        Err(p) => return Ok(Err(p)),
    }
    if let Some(problem) = compare_plan_views(&checker, &plan_view_rows(snap).await?) {
        return Ok(Err(problem));
    }
    // So must what the scheduler and the dispatcher read.
    match compare_table(snap, &checker, Table::DueIndex).await? {
        Ok(n) => checker.summary.due_rows = n,
        Err(p) => return Ok(Err(p)),
    }
    match compare_table(snap, &checker, Table::Outbox).await? {
        Ok(n) => checker.summary.outbox_rows = n,
        Err(p) => return Ok(Err(p)),
    }
    // And what the lists search.
    match compare_table(snap, &checker, Table::ObligationIndex).await? {
        Ok(n) => checker.summary.list_rows = n,
        Err(p) => return Ok(Err(p)),
    }

    // The events committed after (their chains and checkpoints), not yet in
    // the views.
    let applied = checker.summary.events;
    if let Err(p) = check_range(snap, &mut checker, reached, Cursor::END, progress).await? {
        return Ok(Err(p));
    }
    checker.summary.unseen = checker.summary.events - applied;
    if let Err(p) = checker.check_store_kind().and_then(|()| checker.check_kept_roots()) {
        return Ok(Err(p));
    }
    match compare_accounts(snap, &checker).await? {
        Err(p) => return Ok(Err(p)),
        Ok(unrecorded) => checker.summary.accounts_unrecorded = unrecorded,
    }
    Ok(Ok(checker))
}

/// Every attached evidence file must be in the store, its bytes hashing
/// to what the event records; returns how many distinct files there are.
async fn check_files(
    store: &Store,
    attached: &[(String, i64, Attachment)],
) -> Result<Result<u64, Problem>, StoreError> {
    let mut checked = BTreeSet::new();
    for (task, sequence, a) in attached {
        if checked.contains(a.sha256.as_str()) {
            continue;
        }
        let problem = |what: &str, found: String| Problem {
            aggregate_type: Task::TYPE.to_string(),
            aggregate_id: task.clone(),
            sequence: *sequence,
            what: format!("tệp minh chứng {:?} {what}", a.name),
            expected: format!("mã băm {}", short(a.sha256.as_str())),
            found,
        };
        let Some(file) = store.get_file(&a.sha256).await? else {
            return Ok(Err(problem("không có trong kho", "không có tệp".into())));
        };
        let computed = crate::domain::files::sha256(&file.bytes);
        if computed != a.sha256 {
            return Ok(Err(problem(
                "bị sửa (nội dung không khớp mã băm)",
                format!("mã băm {}", short(computed.as_str())),
            )));
        }
        checked.insert(a.sha256.as_str().to_string());
    }
    Ok(Ok(checked.len() as u64))
}

/// Every original document a plan load records must be in the store, its
/// bytes hashing to what the event records; returns how many distinct
/// documents there are.
async fn check_documents(
    store: &Store,
    documents: &[(String, i64, SourceDocument)],
) -> Result<Result<u64, Problem>, StoreError> {
    let mut checked = BTreeSet::new();
    for (plan, sequence, d) in documents {
        if checked.contains(d.sha256.as_str()) {
            continue;
        }
        let problem = |what: &str, found: String| Problem {
            aggregate_type: Plan::TYPE.to_string(),
            aggregate_id: plan.clone(),
            sequence: *sequence,
            what: format!("văn bản gốc {:?} của kế hoạch {what}", d.file),
            expected: format!("mã băm {}", short(&d.sha256)),
            found,
        };
        let Ok(hash) = crate::domain::task::FileHash::parse(&d.sha256) else {
            return Ok(Err(problem("ghi mã băm không hợp lệ", format!("{:?}", d.sha256))));
        };
        let Some(file) = store.get_file(&hash).await? else {
            return Ok(Err(problem("không có trong kho", "không có tệp".into())));
        };
        let computed = crate::domain::files::sha256(&file.bytes);
        if computed != hash {
            return Ok(Err(problem(
                "bị sửa (nội dung không khớp mã băm)",
                format!("mã băm {}", short(computed.as_str())),
            )));
        }
        checked.insert(d.sha256.clone());
    }
    Ok(Ok(checked.len() as u64))
}

/// Every task view must be the task replayed from its events; returns how
/// many there are.
async fn compare_task_views(snap: &mut Snapshot, checker: &Checker) -> Result<Result<u64, Problem>, StoreError> {
    let views = snap.task_views().await?;
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
        let Some(replayed) = replayed else {
            return Ok(Err(mismatch(
                "bảng task_view có dòng của một nhiệm vụ không có sự kiện nào",
                "không có dòng".into(),
                format!("phiên bản {}", view.version),
            )));
        };
        if replayed.task != view.task {
            let (at, expected, found) = first_difference(&json(&replayed.task), &json(&view.task))
                .unwrap_or_else(|| (String::new(), "trạng thái dựng lại".into(), "khung nhìn khác".into()));
            return Ok(Err(mismatch(
                &format!("bảng task_view, cột payload tại task{at} khác trạng thái dựng lại từ sự kiện"),
                expected,
                found,
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
    Ok(Ok(views.len() as u64))
}

/// Serialised as the views are stored.
fn json<T: Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// A JSON value in a one-line message: text as it is, the rest as JSON,
/// cut short if long.
fn shown(v: &Value) -> String {
    let text = match v {
        Value::Null => return "không có".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut chars = text.chars();
    let head: String = chars.by_ref().take(120).collect();
    if chars.next().is_some() {
        head + "…"
    } else {
        head
    }
}

/// Where two JSON values first differ: the path (`.agencies[5].emails[0]`,
/// empty for the whole value) and both values there.
fn first_difference(expected: &Value, found: &Value) -> Option<(String, String, String)> {
    match (expected, found) {
        (Value::Object(e), Value::Object(f)) => {
            for (key, ev) in e {
                let here = format!(".{key}");
                match f.get(key) {
                    Some(fv) => {
                        if let Some((at, x, y)) = first_difference(ev, fv) {
                            return Some((here + &at, x, y));
                        }
                    }
                    None => return Some((here, shown(ev), "không có".into())),
                }
            }
            f.iter()
                .find(|(key, _)| !e.contains_key(*key))
                .map(|(key, fv)| (format!(".{key}"), "không có".into(), shown(fv)))
        }
        (Value::Array(e), Value::Array(f)) => {
            for i in 0..e.len().max(f.len()) {
                let here = format!("[{i}]");
                match (e.get(i), f.get(i)) {
                    (Some(ev), Some(fv)) => {
                        if let Some((at, x, y)) = first_difference(ev, fv) {
                            return Some((here + &at, x, y));
                        }
                    }
                    (Some(ev), None) => return Some((here, shown(ev), "không có".into())),
                    (None, Some(fv)) => return Some((here, "không có".into(), shown(fv))),
                    (None, None) => {}
                }
            }
            None
        }
        _ if expected == found => None,
        _ => Some((String::new(), shown(expected), shown(found))),
    }
}

/// The stored `plan_view` rows: plan id, version column, payload.
async fn plan_view_rows(snap: &mut Snapshot) -> Result<Vec<(String, i64, String)>, StoreError> {
    Ok(
        crate::with_snapshot!(snap, conn => sqlx::query_as("SELECT plan_id, version, payload FROM plan_view ORDER BY plan_id")
        .fetch_all(conn)
        .await
        .map_err(StoreError::query("đọc kế hoạch"))?),
    )
}

/// The first `plan_view` row that is not what the projection makes of the
/// plan's events (header, directory and its addresses, directory notices and
/// their delivery: everything the dispatcher reads), compared column by
/// column and, in the payload, field by field as readers decode it; or a
/// plan with events and no row.
fn compare_plan_views(checker: &Checker, rows: &[(String, i64, String)]) -> Option<Problem> {
    for (id, version, payload) in rows {
        let mismatch = |what: String, expected, found| {
            checker.beyond(Plan::TYPE, id, format!("bảng plan_view, {what}"), expected, found)
        };
        let Some(expected) = checker.plans.get(id) else {
            return Some(mismatch(
                "dòng của một kế hoạch không có sự kiện nào".into(),
                "không có dòng".into(),
                format!("phiên bản {version}"),
            ));
        };
        if *version != expected.version {
            return Some(mismatch(
                "cột version khác số sự kiện của kế hoạch".into(),
                expected.version.to_string(),
                version.to_string(),
            ));
        }
        // As readers see it: decoded, then written again (fields they would
        // ignore are no difference; a field they would miss is one).
        let found = match serde_json::from_str::<PlanView>(payload) {
            Ok(view) => json(&view),
            Err(err) => {
                return Some(mismatch(
                    "cột payload không đọc được".into(),
                    "khung nhìn kế hoạch".into(),
                    err.to_string(),
                ))
            }
        };
        if let Some((at, e, f)) = first_difference(&json(expected), &found) {
            return Some(mismatch(
                format!("cột payload tại {} khác sự kiện", at.trim_start_matches('.')),
                e,
                f,
            ));
        }
    }
    checker
        .plans
        .keys()
        .find(|id| !rows.iter().any(|(r, _, _)| r == *id))
        .map(|missing| Problem {
            aggregate_type: Plan::TYPE.into(),
            aggregate_id: missing.clone(),
            sequence: 0,
            what: "kế hoạch có sự kiện nhưng không có dòng trong bảng plan_view".into(),
            expected: "một khung nhìn".into(),
            found: "không có".into(),
        })
}

/// A row of `due_index`, as stored and as `projections::due_rows` makes it.
#[derive(Serialize, sqlx::FromRow)]
struct DueRow {
    aggregate_id: String,
    milestone_id: String,
    due: String,
    status: String,
    next_reminder: Option<String>,
}

/// A table derived from the events, compared row by row and column by
/// column with what the projection's own code makes of the replayed views.
#[derive(Clone, Copy)]
enum Table {
    DueIndex,
    Outbox,
    ObligationIndex,
}

/// A replayed aggregate whose rows a table holds.
#[derive(Clone, Copy)]
enum Replayed<'a> {
    Task(&'a TaskView),
    Plan(&'a PlanView),
}

impl Table {
    fn name(self) -> &'static str {
        match self {
            Table::DueIndex => "due_index",
            Table::Outbox => "outbox",
            Table::ObligationIndex => "obligation_index",
        }
    }

    /// The primary key; `aggregate_id` first.
    fn key(self) -> &'static [&'static str] {
        match self {
            Table::DueIndex => &["aggregate_id", "milestone_id"],
            Table::Outbox => &["aggregate_id", "milestone_id", "reminder_key", "agency"],
            Table::ObligationIndex => &["aggregate_id", "viewer", "milestone_id", "obligation"],
        }
    }

    /// The rows the projection writes for one task or plan.
    fn rows(self, checker: &Checker, replayed: Replayed<'_>) -> Vec<Value> {
        match (self, replayed) {
            (Table::DueIndex, Replayed::Plan(_)) => Vec::new(),
            (Table::DueIndex, Replayed::Task(view)) => {
                let plan_id = view.id.split_once('/').map_or("", |(p, _)| p);
                let plan = checker.plans.get(plan_id).map(|p| &p.plan);
                crate::projections::due_rows(view, plan)
                    .into_iter()
                    .map(|(milestone_id, due, status, next_reminder)| {
                        json(&DueRow {
                            aggregate_id: view.id.clone(),
                            milestone_id,
                            due,
                            status: status.to_string(),
                            next_reminder,
                        })
                    })
                    .collect()
            }
            (Table::Outbox, Replayed::Task(view)) => view.outbox_rows().iter().map(json).collect(),
            (Table::Outbox, Replayed::Plan(view)) => view.outbox_rows().iter().map(json).collect(),
            (Table::ObligationIndex, Replayed::Plan(_)) => Vec::new(),
            (Table::ObligationIndex, Replayed::Task(view)) => {
                let plan_id = view.id.split_once('/').map_or("", |(p, _)| p);
                let plan = checker.plans.get(plan_id).map(|p| &p.plan);
                crate::projections::lists::list_rows(view, plan)
                    .iter()
                    .map(json)
                    .collect()
            }
        }
    }

    /// The stored rows of some aggregates, as JSON objects of their columns.
    async fn fetch(self, snap: &mut Snapshot, ids: &[&str]) -> Result<Vec<Value>, StoreError> {
        match self {
            Table::DueIndex => {
                fetch_rows::<DueRow>(
                    snap,
                    "SELECT aggregate_id, milestone_id, due, status, next_reminder FROM due_index WHERE aggregate_id",
                    ids,
                )
                .await
            }
            // Every column: `OutboxRow` reads the ones it knows, by name.
            Table::Outbox => fetch_rows::<OutboxRow>(snap, "SELECT * FROM outbox WHERE aggregate_id", ids).await,
            Table::ObligationIndex => {
                let select = format!(
                    "SELECT {} FROM obligation_index WHERE aggregate_id",
                    crate::projections::lists::COLUMNS
                );
                fetch_rows::<crate::projections::lists::ListRow>(snap, &select, ids).await
            }
        }
    }
}

/// Aggregates whose rows are read in one statement…
const IDS_PER_READ: usize = 1_000;
/// …or fewer, once they make this many rows (a task may have thousands).
const ROWS_PER_READ: usize = 20_000;

/// The stored rows of the given aggregates, as JSON objects of their columns.
async fn fetch_rows<R>(snap: &mut Snapshot, select: &str, ids: &[&str]) -> Result<Vec<Value>, StoreError>
where
    R: Serialize
        + Send
        + Unpin
        + for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
        + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>,
{
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let list = (1..=ids.len()).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ");
    let sql = format!("{select} IN ({list})");
    let rows: Vec<R> = crate::with_snapshot!(snap, conn => {
        let mut q = sqlx::query_as::<_, R>(&sql);
        for id in ids {
            q = q.bind(*id);
        }
        q.fetch_all(conn).await.map_err(StoreError::query("đọc bảng để đối chiếu"))?
    });
    Ok(rows.iter().map(json).collect())
}

/// The key of a row, as text, in the order of `table.key`.
fn row_key(table: Table, row: &Value) -> Vec<String> {
    let text = |v: &Value| v.as_str().map_or_else(|| v.to_string(), str::to_string);
    table.key().iter().map(|k| text(&row[*k])).collect()
}

/// Compares the whole of `table` with the rows the projection makes of the
/// replayed tasks and plans: a few hundred aggregates at a time, in id
/// order, each side sorted by key and walked in step. Returns how many rows
/// matched, or the first row missing, extra or different (table, row key,
/// column, expected, found).
async fn compare_table(
    snap: &mut Snapshot,
    checker: &Checker,
    table: Table,
) -> Result<Result<u64, Problem>, StoreError> {
    let mut ids: Vec<(&str, Replayed<'_>)> = checker
        .tasks
        .iter()
        .map(|(id, v)| (id.as_str(), Replayed::Task(v)))
        .chain(checker.plans.iter().map(|(id, v)| (id.as_str(), Replayed::Plan(v))))
        .collect();
    ids.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let mut matched = 0u64;
    let mut rest = &ids[..];
    while !rest.is_empty() {
        // The next aggregates, and the rows the projection makes of them.
        let mut expected: Vec<Value> = Vec::new();
        let mut taken = 0;
        while taken < rest.len() && taken < IDS_PER_READ && (taken == 0 || expected.len() < ROWS_PER_READ) {
            expected.extend(table.rows(checker, rest[taken].1));
            taken += 1;
        }
        let (batch, after) = rest.split_at(taken);
        rest = after;
        let names: Vec<&str> = batch.iter().map(|(id, _)| *id).collect();
        let found = table.fetch(snap, &names).await?;
        match first_row_difference(checker, table, expected, found) {
            Ok(n) => matched += n,
            Err(p) => return Ok(Err(p)),
        }
    }
    // Rows of aggregates that have no events were in no batch.
    let count_sql = format!("SELECT count(*) FROM {}", table.name());
    let stored: i64 = crate::with_snapshot!(snap, conn => sqlx::query_scalar(&count_sql)
        .fetch_one(conn)
        .await
        .map_err(StoreError::query("đọc bảng để đối chiếu"))?);
    if stored as u64 > matched {
        let ids_sql = format!("SELECT DISTINCT aggregate_id FROM {}", table.name());
        let stored_ids: Vec<String> = crate::with_snapshot!(snap, conn => sqlx::query_scalar(&ids_sql)
            .fetch_all(conn)
            .await
            .map_err(StoreError::query("đọc bảng để đối chiếu"))?);
        let known: BTreeSet<&str> = ids.iter().map(|(id, _)| *id).collect();
        let stray = stored_ids
            .iter()
            .find(|id| !known.contains(id.as_str()))
            .map_or("?", String::as_str);
        return Ok(Err(checker.beyond(
            aggregate_type_of(stray),
            stray,
            format!(
                "bảng {} có dòng của {stray}, không có sự kiện nào tạo ra nó",
                table.name()
            ),
            format!("{matched} dòng"),
            format!("{stored} dòng"),
        )));
    }
    Ok(Ok(matched))
}

/// Task ids hold a `/`, plan ids do not.
fn aggregate_type_of(id: &str) -> &'static str {
    if id.contains('/') {
        Task::TYPE
    } else {
        Plan::TYPE
    }
}

/// Walks the expected and the stored rows of some aggregates in key order;
/// the number of rows that match, or the first difference.
fn first_row_difference(
    checker: &Checker,
    table: Table,
    mut expected: Vec<Value>,
    mut found: Vec<Value>,
) -> Result<u64, Problem> {
    use std::cmp::Ordering;
    expected.sort_by_cached_key(|r| row_key(table, r));
    found.sort_by_cached_key(|r| row_key(table, r));
    let problem = |key: &[String], what: String, e: String, f: String| {
        let id = key.first().map_or("", String::as_str);
        let row = key.get(1..).unwrap_or_default().join(", ");
        checker.beyond(
            aggregate_type_of(id),
            id,
            format!("bảng {}, dòng ({row}): {what}", table.name()),
            e,
            f,
        )
    };
    let (mut e, mut f) = (expected.iter().peekable(), found.iter().peekable());
    let mut matched = 0;
    loop {
        let (ek, fk) = (e.peek().map(|r| row_key(table, r)), f.peek().map(|r| row_key(table, r)));
        let order = match (&ek, &fk) {
            (None, None) => return Ok(matched),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some(a), Some(b)) => a.cmp(b),
        };
        match order {
            Ordering::Less => {
                return Err(problem(
                    &ek.unwrap_or_default(),
                    "thiếu dòng mà sự kiện tạo ra (bị xóa?)".into(),
                    "có dòng".into(),
                    "không có".into(),
                ))
            }
            Ordering::Greater => {
                return Err(problem(
                    &fk.unwrap_or_default(),
                    "dòng không do sự kiện nào tạo ra (bị thêm?)".into(),
                    "không có".into(),
                    "có dòng".into(),
                ))
            }
            Ordering::Equal => {
                if let (Some(er), Some(fr)) = (e.next(), f.next()) {
                    if let Some((column, x, y)) = first_difference(er, fr) {
                        let column = column.trim_start_matches('.').to_string();
                        let what = format!("cột {column} khác sự kiện");
                        return Err(problem(&ek.unwrap_or_default(), what, x, y));
                    }
                }
                matched += 1;
            }
        }
    }
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
async fn compare_accounts(snap: &mut Snapshot, checker: &Checker) -> Result<Result<u64, Problem>, StoreError> {
    let rows = snap.account_rows().await?;
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
