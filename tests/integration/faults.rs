//! Fault injection (issue 12, part 8): the delivery promises of
//! `docs/operations.md` ("E-mail", "Stopping") checked against real faults —
//! `kill -9` during `simulate`, an SMTP server down for days, refusing
//! everything or one recipient, slow, a PostgreSQL server restarted or its
//! backends terminated under `serve`, SQLite on a full disk, SIGTERM during
//! a delivery, and a store tampered with.
//!
//! Every scenario runs the real binary against real aiosmtpd
//! (`tests/support/smtp_faults.py`) and real databases. What is asserted,
//! in each: every item delivered or visibly failed, never one item under two
//! Message-IDs, the Message-IDs the server received equal to those of an
//! uninterrupted run, no pass skipped, and `audit verify` passing. Each
//! prints a line `faults figures | scenario | database | …` (run with
//! `--nocapture` to see them).
//!
//! `KEHOACH_FAULTS_LONG=1` runs the longer variant (more kills over a longer
//! range, a longer PostgreSQL outage); `KEHOACH_FAULTS_SEED=N` repeats the
//! kill points of a run (the seed is printed).

use crate::helpers::*;
use crate::on_both_stores;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use sqlx::Row;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

const FROM: &str = "Thị ủy Đức Phổ <kehoach@ducpho.example>";

/// The longer variant, documented in docs/operations.md ("Fault injection").
fn long() -> bool {
    std::env::var("KEHOACH_FAULTS_LONG").is_ok_and(|v| v == "1")
}

/// The seed of the kill points: `KEHOACH_FAULTS_SEED`, else the clock.
fn seed() -> u64 {
    std::env::var("KEHOACH_FAULTS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64)
        })
}

/// Prints how long a scenario took when it ends (passed or failed).
struct Took(&'static str, Instant);

impl Took {
    fn start(name: &'static str) -> Self {
        Took(name, Instant::now())
    }
}

impl Drop for Took {
    fn drop(&mut self) {
        println!("faults took | {} | {:.1} s", self.0, self.1.elapsed().as_secs_f64());
    }
}

// ---------------------------------------------------------------------------
// Running the binary
// ---------------------------------------------------------------------------

fn command(url: &str, smtp: &str, args: &[&str], extra: &[(&str, &str)]) -> std::process::Command {
    let mut c = bin();
    c.args(["--db", url])
        .args(args)
        .env("KEHOACH_SMTP_URL", smtp)
        .env("KEHOACH_MAIL_FROM", FROM);
    for (k, v) in extra {
        c.env(k, v);
    }
    c
}

fn run(url: &str, smtp: &str, args: &[&str], extra: &[(&str, &str)]) -> Output {
    command(url, smtp, args, extra).output().expect("run kehoach")
}

fn plain(url: &str, args: &[&str]) -> Output {
    bin().args(["--db", url]).args(args).output().expect("run kehoach")
}

#[track_caller]
fn ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: exit {:?}\n{}{}",
        out.status.code(),
        stdout(out),
        stderr(out)
    );
}

fn load(url: &str) {
    load_at(url, "2024-02-01");
}

fn load_at(url: &str, now: &str) {
    ok(
        &plain(url, &["--now", now, "plan", "load", "workflows/duc-pho-de-an-13.toml"]),
        "plan load",
    );
}

fn simulate(url: &str, smtp: &str, from: &str, until: &str, extra: &[(&str, &str)]) -> Output {
    run(url, smtp, &["simulate", "--from", from, "--until", until], extra)
}

#[track_caller]
fn verifies(url: &str, what: &str) {
    let out = plain(url, &["audit", "verify"]);
    ok(&out, &format!("audit verify ({what})"));
}

fn outbox(url: &str) -> Vec<Value> {
    let out = plain(url, &["--format", "json", "outbox", "list"]);
    ok(&out, "outbox list");
    serde_json::from_slice::<Value>(&out.stdout)
        .expect("outbox list JSON")
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn bare(id: &str) -> String {
    id.trim().trim_start_matches('<').trim_end_matches('>').to_string()
}

/// Sends SIGTERM and waits (at most `patience`) for the process to end.
fn terminate(child: &mut Child, patience: Duration) -> std::process::ExitStatus {
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let deadline = Instant::now() + patience;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the process did not stop within {patience:?} of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

// ---------------------------------------------------------------------------
// Reading the store
// ---------------------------------------------------------------------------

/// Rows of a query whose columns are all text (CAST them), on either database.
async fn texts(url: &str, sql: &str) -> Vec<Vec<String>> {
    let store = kehoach::store::Store::open(&kehoach::store::DbUrl::parse(url).expect("URL"))
        .await
        .expect("open the store");
    let rows: Vec<Vec<String>> = match &store {
        kehoach::store::Store::Sqlite(pool) => sqlx::query(sql)
            .fetch_all(pool)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .iter()
            .map(|r| {
                (0..r.len())
                    .map(|i| r.try_get::<Option<String>, _>(i).expect("text").unwrap_or_default())
                    .collect()
            })
            .collect(),
        kehoach::store::Store::Postgres(pool) => sqlx::query(sql)
            .fetch_all(pool)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .iter()
            .map(|r| {
                (0..r.len())
                    .map(|i| r.try_get::<Option<String>, _>(i).expect("text").unwrap_or_default())
                    .collect()
            })
            .collect(),
    };
    store.close().await;
    rows
}

/// Runs a statement (the tampering), returning the rows it touched.
async fn execute(url: &str, sql: &str) -> u64 {
    let store = kehoach::store::Store::open(&kehoach::store::DbUrl::parse(url).expect("URL"))
        .await
        .expect("open the store");
    let n = match &store {
        kehoach::store::Store::Sqlite(pool) => sqlx::query(sql).execute(pool).await.map(|r| r.rows_affected()),
        kehoach::store::Store::Postgres(pool) => sqlx::query(sql).execute(pool).await.map(|r| r.rows_affected()),
    }
    .unwrap_or_else(|e| panic!("{sql}: {e}"));
    store.close().await;
    n
}

/// The events of one type, as (aggregate id, payload of the variant).
async fn events_of(url: &str, event_type: &str) -> Vec<(String, Value)> {
    texts(
        url,
        &format!(
            "SELECT aggregate_id, CAST(payload AS TEXT) FROM events WHERE event_type = '{event_type}' ORDER BY aggregate_id, sequence"
        ),
    )
    .await
    .into_iter()
    .map(|r| {
        let payload: Value = serde_json::from_str(&r[1]).expect("payload JSON");
        (r[0].clone(), payload[event_type].clone())
    })
    .collect()
}

/// An item of delivery: (task, milestone, reminder key, agency).
fn item(aggregate: &str, p: &Value) -> String {
    format!(
        "{aggregate} {} {} {}",
        p["milestone"].as_str().unwrap_or_default(),
        p["key"].as_str().unwrap_or_default(),
        p["agency"].as_str().unwrap_or_default()
    )
}

/// Every item's Message-IDs, from its `ReminderBatched` events.
async fn batched(url: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (aggregate, p) in events_of(url, "ReminderBatched").await {
        out.entry(item(&aggregate, &p))
            .or_default()
            .insert(bare(p["message_id"].as_str().unwrap_or_default()));
    }
    out
}

/// The reminders queued for a send window (`ReminderQueued.window`), as
/// (task, milestone, key).
async fn queued_for(url: &str, window: &str) -> BTreeSet<String> {
    events_of(url, "ReminderQueued")
        .await
        .into_iter()
        .filter(|(_, p)| p["window"] == window)
        .map(|(a, p)| {
            format!(
                "{a} {} {}",
                p["milestone"].as_str().unwrap_or_default(),
                p["key"].as_str().unwrap_or_default()
            )
        })
        .collect()
}

/// The window of a digest, from its Message-ID (`digest.<agency>.<YYYYMMDD>.<hash>@…`).
fn window_of(message_id: &str) -> Option<chrono::NaiveDate> {
    let mut parts = message_id.split('.');
    (parts.next()? == "digest").then_some(())?;
    parts.next()?;
    chrono::NaiveDate::parse_from_str(parts.next()?, "%Y%m%d").ok()
}

/// The local day (+07:00, as written) of a message's Date header.
fn date_day(m: &Value) -> chrono::NaiveDate {
    let date = m["date"].as_str().unwrap_or_default();
    chrono::DateTime::parse_from_rfc2822(date)
        .unwrap_or_else(|e| panic!("Date header {date:?}: {e}"))
        .date_naive()
}

// ---------------------------------------------------------------------------
// What a run delivered
// ---------------------------------------------------------------------------

/// The outcome of a run: the outbox, the digests fixed, what the server took.
struct Delivered {
    rows: Vec<Value>,
    batched: BTreeMap<String, BTreeSet<String>>,
    received: Vec<Value>,
}

/// The figures of a scenario, for docs/operations.md.
struct Figures {
    items: usize,
    message_ids: usize,
    duplicates: usize,
    lost: usize,
}

impl Delivered {
    async fn of(url: &str, sink: &SmtpServer) -> Self {
        Delivered {
            rows: outbox(url),
            batched: batched(url).await,
            received: sink.received(),
        }
    }

    /// The Message-IDs the server accepted at least once.
    fn ids(&self) -> BTreeSet<String> {
        self.received
            .iter()
            .map(|m| bare(m["message_id"].as_str().unwrap_or_default()))
            .collect()
    }

    /// What breaks the promises: an item neither sent nor failed with its
    /// error shown, a sent item whose digest the server never received, an
    /// item under two Message-IDs, a message sent before its window.
    fn problems(&self, what: &str) -> Vec<String> {
        let mut out = Vec::new();
        if self.rows.is_empty() {
            out.push(format!("{what}: nothing in the outbox"));
        }
        let received = self.ids();
        for r in &self.rows {
            match r["status"].as_str() {
                Some("sent") => {
                    let id = bare(r["message_id"].as_str().unwrap_or_default());
                    if !received.contains(&id) {
                        out.push(format!("{what}: sent but never received: {r}"));
                    }
                }
                Some("failed") if r["last_error"].as_str().is_some_and(|e| !e.trim().is_empty()) => {}
                Some("failed") => out.push(format!("{what}: a failure without its error: {r}")),
                _ => out.push(format!("{what}: neither delivered nor failed: {r}")),
            }
        }
        for (item, ids) in &self.batched {
            if ids.len() > 1 {
                out.push(format!("{what}: {item} under {} Message-IDs: {ids:?}", ids.len()));
            }
        }
        let mut early = BTreeSet::new();
        for m in &self.received {
            let id = bare(m["message_id"].as_str().unwrap_or_default());
            if let Some(window) = window_of(&id) {
                if date_day(m) < window && early.insert(id.clone()) {
                    out.push(format!("{what}: {id} sent on {} before its window {window}", m["date"]));
                }
            }
        }
        out
    }

    /// Items, digests, copies received more than once, items lost.
    fn figures(&self) -> Figures {
        let received = self.ids();
        let lost = self
            .rows
            .iter()
            .filter(|r| match r["status"].as_str() {
                Some("sent") => !received.contains(&bare(r["message_id"].as_str().unwrap_or_default())),
                Some("failed") => false,
                _ => true,
            })
            .count();
        let mut per_address: BTreeMap<(String, String), usize> = BTreeMap::new();
        for m in &self.received {
            for to in m["rcpt_tos"].as_array().into_iter().flatten() {
                *per_address
                    .entry((
                        bare(m["message_id"].as_str().unwrap_or_default()),
                        to.as_str().unwrap_or_default().to_lowercase(),
                    ))
                    .or_default() += 1;
            }
        }
        let ids: BTreeSet<&String> = self.batched.values().flatten().collect();
        Figures {
            items: self.rows.len(),
            message_ids: ids.len(),
            duplicates: per_address.values().map(|n| n - 1).sum(),
            lost,
        }
    }

    /// Asserts the promises (see `problems`) and returns the figures.
    #[track_caller]
    fn check(&self, what: &str) -> Figures {
        let problems = self.problems(what);
        assert!(problems.is_empty(), "{}", problems.join("\n"));
        self.figures()
    }
}

/// Digests of one agency and window under several Message-IDs (a digest
/// split), as "AGENCY WINDOW: ids".
fn split_windows(ids: &BTreeSet<String>) -> Vec<String> {
    let mut by: BTreeMap<(String, String), Vec<&String>> = BTreeMap::new();
    for id in ids {
        let mut parts = id.split('.');
        if parts.next() == Some("digest") {
            let agency = parts.next().unwrap_or_default().to_string();
            let window = parts.next().unwrap_or_default().to_string();
            by.entry((agency, window)).or_default().push(id);
        }
    }
    by.into_iter()
        .filter(|(_, v)| v.len() > 1)
        .map(|((a, w), v)| format!("{a} {w}: {v:?}"))
        .collect()
}

/// The items of an outbox, with their status.
fn items_of(rows: &[Value]) -> BTreeSet<String> {
    rows.iter()
        .map(|r| {
            format!(
                "{} {} {} {} {}",
                r["aggregate_id"].as_str().unwrap_or_default(),
                r["milestone_id"].as_str().unwrap_or_default(),
                r["reminder_key"].as_str().unwrap_or_default(),
                r["agency"].as_str().unwrap_or_default(),
                r["status"].as_str().unwrap_or_default()
            )
        })
        .collect()
}

impl Figures {
    fn print(&self, scenario: &str, kind: &str) {
        println!(
            "faults figures | {scenario} | {kind} | items {} | Message-IDs {} | duplicates re-sent {} | lost {}",
            self.items, self.message_ids, self.duplicates, self.lost
        );
    }
}

// ---------------------------------------------------------------------------
// 1. kill -9 during simulate
// ---------------------------------------------------------------------------

/// A range of the shipped plan with many digests (the 31/03 deadlines),
/// the plan loaded before it, and the number of kills.
fn kill_range() -> (&'static str, &'static str, &'static str, usize) {
    if long() {
        ("2023-01-01", "2023-03-01", "2023-06-30", 30)
    } else {
        // Early in the plan: few overdue items to catch up on the first
        // day, so many digests for little work (36 digests, 102 items).
        ("2023-01-01", "2023-03-24", "2023-04-02", 10)
    }
}

async fn kill_9_during_simulate_loses_nothing(kind: &str) {
    let _took = Took::start(if kind == "sqlite" {
        "kill_9_during_simulate::sqlite"
    } else {
        "kill_9_during_simulate::postgres"
    });
    let (loaded, from, until, kills) = kill_range();
    let seed = seed();
    println!("faults: kill -9 on {kind}: seed {seed} (KEHOACH_FAULTS_SEED={seed} repeats these kill points)");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);

    // The control: the same range, uninterrupted.
    let control_db = TestDb::of(kind).await;
    let control_sink = SmtpServer::start_faults(&[]);
    load_at(&control_db.url(), loaded);
    let started = Instant::now();
    ok(
        &simulate(&control_db.url(), &control_sink.url(), from, until, &[]),
        "control simulate",
    );
    let whole = started.elapsed();
    let control = Delivered::of(&control_db.url(), &control_sink).await;
    let control_figures = control.check("control");
    assert_eq!(control_figures.lost, 0, "the control run lost nothing");
    control_figures.print("control (uninterrupted simulate)", kind);

    // The same, killed at random points, each time started again.
    let db = TestDb::of(kind).await;
    let sink = SmtpServer::start_faults(&[]);
    load_at(&db.url(), loaded);
    // Kill points by progress, not by time (a machine's speed varies with
    // its load): each run is killed a few milliseconds after the server has
    // taken a chosen number of further messages, the chosen numbers spread
    // over what is still to come; a step of none kills the run while it
    // starts, schedules and forms its first digest.
    let total = control_sink.received().len();
    let mut points = Vec::new();
    while points.len() < kills {
        let before = sink.received().len();
        let room = total.saturating_sub(before) / (kills - points.len() + 1);
        let target = before + rng.gen_range(0..=room.max(1));
        let jitter = Duration::from_millis(if target == before {
            rng.gen_range(20..=150)
        } else {
            rng.gen_range(0..=60)
        });
        let mut child = command(
            &db.url(),
            &sink.url(),
            &["simulate", "--from", from, "--until", until],
            &[],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn simulate");
        let started = Instant::now();
        while sink.received().len() < target {
            if let Some(status) = child.try_wait().expect("wait") {
                panic!(
                    "simulate ended ({status}) before kill {} of {kills}, waiting for message {target} of {total} \
                     (seed {seed})",
                    points.len() + 1
                );
            }
            assert!(
                started.elapsed() < Duration::from_secs(300),
                "simulate took no message in 300 s (message {target} of {total}, seed {seed})"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(jitter);
        if let Some(status) = child.try_wait().expect("wait") {
            panic!(
                "simulate ended ({status}) before kill {} of {kills}, {jitter:?} after message {target} of {total} \
                 (seed {seed})",
                points.len() + 1
            );
        }
        child.kill().expect("kill -9");
        child.wait().expect("reap");
        points.push(format!("{jitter:?} after message {target}"));
    }
    println!("faults: kill -9 on {kind}: {kills} kills, {points:?} (control run {whole:?}, {total} messages)");
    ok(
        &simulate(&db.url(), &sink.url(), from, until, &[]),
        "simulate after the kills",
    );

    let killed = Delivered::of(&db.url(), &sink).await;
    let figures = killed.figures();
    let mut problems = killed.problems("killed run");
    let (got, want) = (killed.ids(), control.ids());
    for id in got.difference(&want) {
        problems.push(format!("received, but not in the uninterrupted run: {id}"));
    }
    for id in want.difference(&got) {
        problems.push(format!("in the uninterrupted run, never received: {id}"));
    }
    for split in split_windows(&got) {
        problems.push(format!("one agency's window split over several digests: {split}"));
    }
    if items_of(&killed.rows) != items_of(&control.rows) {
        problems.push(format!(
            "items differ from the uninterrupted run's: {} against {}",
            killed.rows.len(),
            control.rows.len()
        ));
    }
    let verify = plain(&db.url(), &["audit", "verify"]);
    if !verify.status.success() {
        problems.push(format!("audit verify: {}", stderr(&verify).trim()));
    }
    figures.print(
        &format!(
            "kill -9 during simulate ({kills} kills; {} Message-IDs not in the control run)",
            got.difference(&want).count()
        ),
        kind,
    );
    assert!(
        problems.is_empty(),
        "after {kills} kills (seed {seed}):\n{}",
        problems.join("\n")
    );
}
on_both_stores!(kill_9_during_simulate, kill_9_during_simulate_loses_nothing);

// ---------------------------------------------------------------------------
// 2. A resumed simulate sends no window before its day
// ---------------------------------------------------------------------------

async fn a_resumed_simulate_sends_no_window_early(kind: &str) {
    let _took = Took::start(if kind == "sqlite" {
        "resumed_simulate::sqlite"
    } else {
        "resumed_simulate::postgres"
    });
    let db = TestDb::of(kind).await;
    let sink = SmtpServer::start_faults(&[]);
    let url = db.url();
    load_at(&url, "2023-01-01");
    ok(
        &simulate(&url, &sink.url(), "2023-03-18", "2023-03-24", &[]),
        "simulate to 24/03/2023",
    );
    // A pass on 28/03 queues that day's items and dies after the first
    // digest: the rest of 28/03 stays queued, in no digest yet.
    let crashed = run(
        &url,
        &sink.url(),
        &["--now", "2023-03-28T08:00:00+07:00", "remind", "--once"],
        &[("KEHOACH_CRASH_AFTER_SEND", "1")],
    );
    assert_eq!(crashed.status.code(), Some(70), "{}", stderr(&crashed));
    let waiting: Vec<Value> = outbox(&url)
        .into_iter()
        .filter(|r| r["status"] == "queued" && r["window_day"] == "2023-03-28")
        .collect();
    assert!(!waiting.is_empty(), "items of 28/03 left queued by the crash");
    let before = sink.received().len();

    // Resumed from an earlier day: 22/03 … 27/03 must not send them.
    ok(
        &simulate(&url, &sink.url(), "2023-03-22", "2023-03-30", &[]),
        "resumed simulate",
    );
    let delivered = Delivered::of(&url, &sink).await;
    let figures = delivered.check("resumed simulate");
    assert_eq!(figures.lost, 0);
    let resumed = &delivered.received[before..];
    assert!(!resumed.is_empty());
    let mut last = chrono::NaiveDate::MIN;
    for m in resumed {
        let day = date_day(m);
        assert!(
            day >= last,
            "the server received {} (dated {day}) after a message dated {last}",
            m["message_id"]
        );
        last = day;
    }
    // The digest each waiting item went out in: the crashed one for those it
    // held, a digest formed on 28/03 for the rest.
    let after = outbox(&url);
    let key = |x: &Value| {
        [
            x["aggregate_id"].clone(),
            x["milestone_id"].clone(),
            x["reminder_key"].clone(),
            x["agency"].clone(),
        ]
    };
    for r in &waiting {
        let now = after
            .iter()
            .find(|x| key(x) == key(r))
            .unwrap_or_else(|| panic!("row gone: {r}"));
        let id = bare(now["message_id"].as_str().unwrap_or_default());
        let copies: Vec<&Value> = resumed
            .iter()
            .filter(|m| bare(m["message_id"].as_str().unwrap()) == id)
            .collect();
        assert!(!copies.is_empty(), "{id} was sent");
        for m in copies {
            assert_eq!(
                date_day(m).to_string(),
                "2023-03-28",
                "an item of 28/03 went out on another day: {m}"
            );
        }
    }
    verifies(&url, "after the resumed simulate");
    figures.print("resumed simulate (earlier --from)", kind);
}
on_both_stores!(resumed_simulate, a_resumed_simulate_sends_no_window_early);

// ---------------------------------------------------------------------------
// 3. SMTP down for days, then outbox retry
// ---------------------------------------------------------------------------

async fn smtp_down_for_days_then_outbox_retry_delivers_all(kind: &str) {
    let _took = Took::start(if kind == "sqlite" {
        "smtp_down_for_days::sqlite"
    } else {
        "smtp_down_for_days::postgres"
    });
    let (from, until) = ("2023-03-25", "2023-03-30");
    // Retries span two days: a digest of 25/03 is tried on 25, 26 and 27/03,
    // then fails for good.
    let retry = [("KEHOACH_SMTP_RETRY_HOURS", "48")];
    let control_db = TestDb::of(kind).await;
    let control_sink = SmtpServer::start_faults(&[]);
    load_at(&control_db.url(), "2023-01-01");
    ok(
        &simulate(&control_db.url(), &control_sink.url(), from, until, &retry),
        "control simulate",
    );
    let control = Delivered::of(&control_db.url(), &control_sink).await;
    control.check("control");

    let db = TestDb::of(kind).await;
    let url = db.url();
    load_at(&url, "2023-01-01");
    let port = free_port();
    let down = format!("smtp://127.0.0.1:{port}");
    ok(
        &simulate(&url, &down, from, until, &retry),
        "simulate with the server down",
    );
    let rows = outbox(&url);
    let failed: Vec<&Value> = rows.iter().filter(|r| r["status"] == "failed").collect();
    assert!(!failed.is_empty(), "after two days of retries, failures are final");
    for r in &failed {
        assert!(r["attempts"].as_i64().unwrap_or(0) >= 3, "retried over two days: {r}");
        assert!(
            r["last_error"].as_str().is_some_and(|e| !e.trim().is_empty()),
            "the error is shown: {r}"
        );
    }
    assert!(rows.iter().all(|r| r["status"] != "sent"), "nothing could be sent");
    let attempts = events_of(&url, "ReminderAttempted").await;
    for r in &failed {
        let it = format!(
            "{} {} {} {}",
            r["aggregate_id"].as_str().unwrap(),
            r["milestone_id"].as_str().unwrap(),
            r["reminder_key"].as_str().unwrap(),
            r["agency"].as_str().unwrap()
        );
        let n = attempts.iter().filter(|(a, p)| item(a, p) == it).count();
        assert!(n >= 3, "{it}: {n} attempts recorded");
    }
    let table = plain(&url, &["outbox", "list", "--status", "failed"]);
    assert!(stdout(&table).contains("failed"), "{}", stdout(&table));

    // The server comes back; the operator re-queues; the next pass sends.
    let sink = SmtpServer::start_faults_on(port, &[]);
    let retried = plain(&url, &["outbox", "retry"]);
    ok(&retried, "outbox retry");
    assert!(stdout(&retried).contains("Đã xếp hàng gửi lại"), "{}", stdout(&retried));
    ok(
        &run(
            &url,
            &sink.url(),
            &["--now", "2023-03-30T12:00:00+07:00", "remind", "--once"],
            &retry,
        ),
        "remind --once after the outage",
    );
    let delivered = Delivered::of(&url, &sink).await;
    let figures = delivered.check("after the outage");
    assert_eq!(figures.lost, 0);
    assert!(delivered.rows.iter().all(|r| r["status"] == "sent"), "all delivered");
    assert_eq!(
        delivered.ids(),
        control.ids(),
        "the Message-IDs of an uninterrupted run"
    );
    verifies(&url, "after the outage");
    figures.print("SMTP down 6 days, outbox retry", kind);
}
on_both_stores!(smtp_down_for_days, smtp_down_for_days_then_outbox_retry_delivers_all);

// ---------------------------------------------------------------------------
// 4. 550 for everything; 550 for one address of several
// ---------------------------------------------------------------------------

async fn a_550_is_final_at_once(kind: &str) {
    let _took = Took::start(if kind == "sqlite" {
        "smtp_550_for_everyone::sqlite"
    } else {
        "smtp_550_for_everyone::postgres"
    });
    let db = TestDb::of(kind).await;
    let url = db.url();
    let sink = SmtpServer::start_faults(&[("SMTP_REJECT_ALL", "1")]);
    load(&url);
    // Two passes a minute apart: the second takes what the first queued
    // too late for itself (see `remind_once_sends_what_it_queued`), and
    // must not try again what the first refused.
    for now in ["2024-03-29T08:00:00+07:00", "2024-03-29T08:01:00+07:00"] {
        ok(
            &run(&url, &sink.url(), &["--now", now, "remind", "--once"], &[]),
            "remind --once",
        );
    }
    let rows = outbox(&url);
    assert!(!rows.is_empty());
    for r in &rows {
        assert_eq!(r["status"], "failed", "a 550 is final at once: {r}");
        assert_eq!(r["attempts"], 1, "one attempt: {r}");
        let error = r["last_error"].as_str().unwrap_or_default();
        assert!(error.contains("550"), "the server's 550 is shown: {r}");
        assert!(error.contains("Recipient address rejected"), "with its text: {r}");
    }
    assert!(sink.received().is_empty());
    // Nothing left for a later pass: the next one an hour on sends nothing.
    ok(
        &run(
            &url,
            &sink.url(),
            &["--now", "2024-03-29T09:00:00+07:00", "remind", "--once"],
            &[],
        ),
        "remind --once later",
    );
    let again = outbox(&url);
    assert!(again.iter().all(|r| r["attempts"] == 1), "not retried");
    verifies(&url, "after 550s");
    println!(
        "faults figures | 550 for every recipient | {kind} | items {} | failed at once {} | attempts 1",
        rows.len(),
        rows.len()
    );
}
on_both_stores!(smtp_550_for_everyone, a_550_is_final_at_once);

async fn one_refused_address_does_not_hold_back_the_others(kind: &str) {
    let _took = Took::start(if kind == "sqlite" {
        "smtp_550_for_one_address::sqlite"
    } else {
        "smtp_550_for_one_address::postgres"
    });
    let refused = "hoi-phu-nu@ducpho.example";
    let db = TestDb::of(kind).await;
    let url = db.url();
    let sink = SmtpServer::start_faults(&[("SMTP_REJECT", refused)]);
    load(&url);
    for now in ["2024-03-29T08:00:00+07:00", "2024-03-29T08:01:00+07:00"] {
        ok(
            &run(&url, &sink.url(), &["--now", now, "remind", "--once"], &[]),
            "remind --once",
        );
    }
    let rows = outbox(&url);
    // CTXH: five member organisations, five addresses.
    let ctxh: Vec<&Value> = rows.iter().filter(|r| r["agency"] == "CTXH").collect();
    assert!(!ctxh.is_empty(), "CTXH has items on 29/03/2024");
    for r in &ctxh {
        assert_eq!(r["status"], "sent", "the others took it: {r}");
        let error = r["last_error"].as_str().unwrap_or_default();
        assert!(
            error.contains(refused) && error.contains("550"),
            "the refusal is reported: {r}"
        );
    }
    let id = bare(ctxh[0]["message_id"].as_str().unwrap());
    let received = sink.received();
    let to: BTreeSet<String> = received
        .iter()
        .filter(|m| bare(m["message_id"].as_str().unwrap()) == id)
        .flat_map(|m| m["rcpt_tos"].as_array().cloned().unwrap_or_default())
        .map(|a| a.as_str().unwrap_or_default().to_lowercase())
        .collect();
    let expected: BTreeSet<String> = [
        "lien-doan-lao-dong@ducpho.example",
        "hoi-nong-dan@ducpho.example",
        "hoi-cuu-chien-binh@ducpho.example",
        "thi-doan@ducpho.example",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(to, expected, "every CTXH address but the refused one received {id}");
    // Other agencies are untouched by CTXH's refused address.
    assert!(rows
        .iter()
        .filter(|r| r["agency"] != "CTXH")
        .all(|r| r["status"] == "sent"));
    // The operator sees it in the table too.
    let table = plain(&url, &["outbox", "list"]);
    assert!(stdout(&table).contains("hoi-phu-nu"), "{}", stdout(&table));
    verifies(&url, "after one refused address");
    let figures = Delivered::of(&url, &sink).await.check("one address refused");
    figures.print("550 for one CTXH address", kind);
}
on_both_stores!(
    smtp_550_for_one_address,
    one_refused_address_does_not_hold_back_the_others
);

/// `remind --once` is "one scheduling and dispatch pass now": what it queues
/// goes out in the same pass, one digest per agency and window. The
/// dispatcher compares each row's `queued_at` with the instant the pass
/// started, so the rows the scheduler stamped a second or more later (a
/// scheduling pass that takes over a second) are left queued, in no digest,
/// and go out at the next pass in a second digest for the same window.
async fn remind_once_sends_what_it_queued_in_one_digest_per_window(kind: &str) {
    let _took = Took::start(if kind == "sqlite" {
        "remind_once_sends_what_it_queued::sqlite"
    } else {
        "remind_once_sends_what_it_queued::postgres"
    });
    let db = TestDb::of(kind).await;
    let url = db.url();
    let sink = SmtpServer::start_faults(&[]);
    load(&url);
    let out = run(
        &url,
        &sink.url(),
        &["--now", "2024-03-29T08:00:00+07:00", "remind", "--once"],
        &[],
    );
    ok(&out, "remind --once");
    let rows = outbox(&url);
    let left: Vec<&Value> = rows.iter().filter(|r| r["status"] == "queued").collect();
    let late = rows
        .iter()
        .filter(|r| r["queued_at"].as_str().is_some_and(|q| q > "2024-03-29T01:00:00Z"))
        .count();
    println!(
        "faults: remind --once on {kind}: {} items, {late} stamped after the pass began, {} left queued",
        rows.len(),
        left.len()
    );
    assert!(
        left.is_empty(),
        "remind --once left {} of {} items queued in no digest, e.g. {}",
        left.len(),
        rows.len(),
        left[0]
    );
    let mut digests: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for r in &rows {
        digests
            .entry((
                r["agency"].as_str().unwrap().into(),
                r["window_day"].as_str().unwrap_or_default().into(),
            ))
            .or_default()
            .insert(bare(r["message_id"].as_str().unwrap_or_default()));
    }
    let split: Vec<_> = digests.iter().filter(|(_, ids)| ids.len() > 1).collect();
    assert!(split.is_empty(), "two digests for one agency and window: {split:?}");
}
on_both_stores!(
    remind_once_sends_what_it_queued,
    remind_once_sends_what_it_queued_in_one_digest_per_window
);

// ---------------------------------------------------------------------------
// 5. serve owes its passes
// ---------------------------------------------------------------------------

/// The shipped plan, sending at 00:00 instead of 08:00, in `dir/workflows`.
fn midnight_plan(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(shipped_plan_path()).expect("read the shipped plan");
    let line = "send_at = \"0 0 8 * * *\"";
    assert!(text.contains(line), "the shipped plan sends at 08:00");
    let workflows = dir.join("workflows");
    std::fs::create_dir_all(&workflows).unwrap();
    let path = workflows.join("duc-pho-de-an-13.toml");
    std::fs::write(&path, text.replace(line, "send_at = \"0 0 0 * * *\"")).unwrap();
    path
}

/// Every address of the shipped plan's directory.
fn plan_addresses() -> BTreeSet<String> {
    let text = std::fs::read_to_string(shipped_plan_path()).unwrap();
    let mut out = BTreeSet::new();
    for (i, _) in text.match_indices("@ducpho.example") {
        let start = text[..i]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '-'))
            .map_or(0, |p| p + 1);
        out.insert(format!("{}@ducpho.example", &text[start..i]));
    }
    out
}

/// `serve` on `url` with the plans of `workflows`, its log in `log`.
fn serve(url: &str, smtp: &str, now: &str, workflows: &Path, log: &Path, extra: &[(&str, &str)]) -> Child {
    let log = std::fs::File::create(log).expect("log file");
    let mut c = command(
        url,
        smtp,
        &[
            "--now",
            now,
            "serve",
            "--workflows",
            workflows.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--poll",
            "0.2",
        ],
        extra,
    );
    c.env("KEHOACH_LOG", "info").stdout(Stdio::null()).stderr(log);
    c.spawn().expect("spawn serve")
}

/// The end of a log, for failure messages.
fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// Fails the test when `serve` ended or `deadline` passed while waiting for `what`.
fn still_running(child: &mut Child, deadline: Instant, what: &str, log: &Path) {
    if let Some(status) = child.try_wait().expect("wait") {
        panic!(
            "serve ended ({status}) while waiting for {what}; its log ends:\n{}",
            tail(log)
        );
    }
    assert!(
        Instant::now() < deadline,
        "{what}: not in time; the log ends:\n{}",
        tail(log)
    );
}

const POLL: Duration = Duration::from_millis(250);

/// The reproducer of issue 12 on SQLite: a plan sending at 00:00, a server
/// taking 5 s per message, `serve` started at 23:59:50. The pass started at
/// once is still sending at 00:00; the 00:00 pass must run when it ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_runs_the_pass_owed_while_a_slow_pass_was_busy() {
    let _took = Took::start("serve_runs_the_pass_owed_while_a_slow_pass_was_busy");
    let dir = tempfile::tempdir().unwrap();
    let plan = midnight_plan(dir.path());
    let start = "2024-02-29T23:59:50+07:00";
    // Control: the two passes one after the other.
    let control = TestDb::sqlite();
    let control_sink = SmtpServer::start_faults(&[]);
    ok(
        &plain(
            &control.url(),
            &["--now", start, "plan", "load", plan.to_str().unwrap()],
        ),
        "control plan load",
    );
    for now in [start, "2024-03-01T00:00:00+07:00"] {
        ok(
            &run(
                &control.url(),
                &control_sink.url(),
                &["--now", now, "remind", "--once"],
                &[],
            ),
            "control remind",
        );
    }
    let expected = queued_for(&control.url(), "2024-03-01").await;
    assert!(!expected.is_empty(), "the control run queues reminders for 01/03/2024");

    // The server is slow (5 s per message) and refuses all but four
    // addresses at once (RCPT), so that the first pass is busy for some
    // twenty seconds across 00:00, not for minutes.
    let slow: BTreeSet<&str> = [
        "btv@ducpho.example",
        "bdv@ducpho.example",
        "ubnd@ducpho.example",
        "mttq@ducpho.example",
    ]
    .into();
    let reject: Vec<String> = plan_addresses()
        .into_iter()
        .filter(|a| !slow.contains(a.as_str()))
        .collect();
    let sink = SmtpServer::start_faults(&[("SMTP_DELAY", "5"), ("SMTP_REJECT", &reject.join(","))]);
    let db = TestDb::sqlite();
    let url = db.url();
    let log = dir.path().join("serve.log");
    let spawned = Instant::now();
    let mut child = serve(&url, &sink.url(), start, plan.parent().unwrap(), &log, &[]);
    let deadline = Instant::now() + Duration::from_secs(150);
    let found = loop {
        still_running(&mut child, deadline, "reminders queued for 01/03/2024", &log);
        let found = queued_for(&url, "2024-03-01").await;
        if found.len() >= expected.len() {
            break found;
        }
        tokio::time::sleep(POLL).await;
    };
    let status = terminate(&mut child, Duration::from_secs(60));
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(status.success(), "serve stopped with {status}: {text}");
    assert_eq!(
        found, expected,
        "the reminders for 01/03/2024 are those of the control run"
    );
    // The first pass really was busy across 00:00 (10 s after the start).
    let first_pass: Vec<f64> = sink
        .received()
        .iter()
        .filter(|m| {
            window_of(&bare(m["message_id"].as_str().unwrap()))
                .is_some_and(|w| w < chrono::NaiveDate::from_ymd_opt(2024, 3, 1).unwrap())
        })
        .filter_map(|m| m["at"].as_f64())
        .collect();
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        - spawned.elapsed().as_secs_f64();
    let busy_until = first_pass.iter().cloned().fold(0.0, f64::max) - started;
    assert!(
        busy_until > 12.0,
        "the first pass was still sending 10 s after the start (it ended {busy_until:.1} s after)"
    );
    let passes = texts(
        &url,
        "SELECT last_due, CAST(late_seconds AS TEXT) FROM passes WHERE name = 'reminders/duc-pho-de-an-13'",
    )
    .await;
    assert_eq!(
        passes[0][0], "2024-02-29T17:00:00Z",
        "the 00:00 pass is recorded as done"
    );
    println!(
        "faults figures | serve, pass busy across 00:00 (SMTP 5 s) | sqlite | queued for 01/03 {} (control {}) | first pass ended {busy_until:.0} s after start | 00:00 pass late {} s",
        found.len(),
        expected.len(),
        passes[0][1]
    );
}

/// A private PostgreSQL cluster for one test (never the shared server,
/// which other tests use): initdb, pg_ctl start/stop, removed when dropped.
struct Cluster {
    dir: tempfile::TempDir,
    port: u16,
}

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

fn as_postgres(args: &[&str]) -> Output {
    std::process::Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .args(args)
        .output()
        .expect("runuser")
}

impl Cluster {
    fn start() -> Self {
        let dir = tempfile::tempdir().expect("cluster directory");
        let chown = std::process::Command::new("chown")
            .args(["-R", "postgres:postgres", dir.path().to_str().unwrap()])
            .status()
            .expect("chown");
        assert!(chown.success(), "chown the cluster directory to postgres");
        let data = dir.path().join("data");
        let out = as_postgres(&[
            &format!("{PG_BIN}/initdb"),
            "-D",
            data.to_str().unwrap(),
            "-U",
            "postgres",
            "-A",
            "trust",
            "--no-sync",
        ]);
        assert!(out.status.success(), "initdb: {}", stderr(&out));
        let cluster = Cluster { dir, port: free_port() };
        cluster.up();
        cluster
    }

    fn ctl(&self, args: &[&str]) -> Output {
        let data = self.dir.path().join("data");
        let mut all = vec![format!("{PG_BIN}/pg_ctl"), "-D".into(), data.to_str().unwrap().into()];
        all.extend(args.iter().map(|s| s.to_string()));
        as_postgres(&all.iter().map(String::as_str).collect::<Vec<_>>())
    }

    fn up(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("server.log");
        let out = self.ctl(&["-w", "-t", "60", "-l", log.to_str().unwrap(), "-o", &options, "start"]);
        assert!(out.status.success(), "pg_ctl start: {}{}", stdout(&out), stderr(&out));
    }

    fn down(&self) {
        let out = self.ctl(&["-w", "-m", "fast", "stop"]);
        assert!(out.status.success(), "pg_ctl stop: {}", stderr(&out));
    }

    fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.ctl(&["-m", "immediate", "stop"]);
    }
}

/// A PostgreSQL restart across the send time under `serve`: the pass owed
/// at 00:00 runs when the server answers again, once, and nothing is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_runs_the_pass_owed_across_a_postgres_restart() {
    let _took = Took::start("serve_runs_the_pass_owed_across_a_postgres_restart");
    let outage = if long() { 75 } else { 24 };
    let cluster = Cluster::start();
    let admin = sqlx::PgPool::connect(&cluster.url("postgres"))
        .await
        .expect("private cluster");
    sqlx::query("CREATE DATABASE kh").execute(&admin).await.unwrap();
    admin.close().await;
    let url = cluster.url("kh");
    // The plan sends at 00:00: the reminders of 01/03 can only come from
    // the 00:00 pass.
    let dir = tempfile::tempdir().unwrap();
    let plan = midnight_plan(dir.path());
    let plan_file = plan.to_str().unwrap();
    ok(&plain(&url, &["store", "init", "--simulation"]), "store init");
    ok(
        &plain(&url, &["--now", "2024-02-01", "plan", "load", plan_file]),
        "plan load",
    );
    let sink = SmtpServer::start_faults(&[]);
    // Everything before 01/03 is delivered before serve starts.
    ok(
        &run(
            &url,
            &sink.url(),
            &["--now", "2024-02-29T23:59:00+07:00", "remind", "--once"],
            &[],
        ),
        "remind before serve",
    );
    // Control on the shared server: the same passes, uninterrupted.
    let control = TestDb::postgres().await;
    let control_sink = SmtpServer::start_faults(&[]);
    ok(
        &plain(&control.url(), &["--now", "2024-02-01", "plan", "load", plan_file]),
        "control plan load",
    );
    for now in ["2024-02-29T23:59:00+07:00", "2024-03-01T00:00:00+07:00"] {
        ok(
            &run(
                &control.url(),
                &control_sink.url(),
                &["--now", now, "remind", "--once"],
                &[],
            ),
            "control remind",
        );
    }
    let expected = queued_for(&control.url(), "2024-03-01").await;
    assert!(!expected.is_empty());

    let log = dir.path().join("serve.log");
    let spawned = Instant::now();
    let mut child = serve(
        &url,
        &sink.url(),
        "2024-02-29T23:59:40+07:00",
        plan.parent().unwrap(),
        &log,
        &[],
    );
    // Down from 23:59:50 for `outage` seconds.
    tokio::time::sleep(Duration::from_secs(10).saturating_sub(spawned.elapsed())).await;
    assert!(child.try_wait().unwrap().is_none(), "serve is running");
    cluster.down();
    let down_at = spawned.elapsed();
    tokio::time::sleep(Duration::from_secs(outage)).await;
    cluster.up();
    let up_at = spawned.elapsed();
    println!("faults: PostgreSQL down from {down_at:?} to {up_at:?} after serve started at 23:59:40");
    let deadline = Instant::now() + Duration::from_secs(120);
    let found = loop {
        still_running(&mut child, deadline, "the 00:00 pass after the restart", &log);
        let found = queued_for(&url, "2024-03-01").await;
        if found.len() >= expected.len() && outbox(&url).iter().all(|r| r["status"] != "queued") {
            break found;
        }
        tokio::time::sleep(POLL).await;
    };
    let status = terminate(&mut child, Duration::from_secs(60));
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(status.success(), "serve stopped with {status}: {text}");
    assert_eq!(found, expected, "the reminders of 01/03/2024 equal the control's");
    let passes = texts(
        &url,
        "SELECT last_due, CAST(late_seconds AS TEXT) FROM passes WHERE name = 'reminders/duc-pho-de-an-13'",
    )
    .await;
    assert_eq!(
        passes[0][0], "2024-02-29T17:00:00Z",
        "the 00:00 pass ran (its reminders are queued) and must be recorded in the passes table"
    );
    // Late counts from the round that began the pass: one that began during
    // the outage waits for the database (up to the pool's timeout) and runs.
    let late: i64 = passes[0][1].parse().unwrap();
    let late_lines = text.lines().filter(|l| l.contains("chạy trễ")).count();
    // The table keeps whole seconds; serve compares the exact delay with 60 s.
    if late > 60 {
        assert_eq!(late_lines, 1, "a pass more than a minute late says so once: {text}");
    } else if late < 60 {
        assert_eq!(late_lines, 0, "a pass under a minute late is not reported late: {text}");
    } else {
        assert!(late_lines <= 1, "a late pass says so once at most: {text}");
    }
    let delivered = Delivered::of(&url, &sink).await;
    let figures = delivered.check("PostgreSQL restart");
    assert_eq!(figures.lost, 0);
    // The same items delivered as in the control run. (Their Message-IDs
    // are not compared: how a pass splits an agency's items into digests
    // depends on timing, see `remind_once_sends_what_it_queued`.)
    let control_delivered = Delivered::of(&control.url(), &control_sink).await;
    assert_eq!(
        items_of(&delivered.rows),
        items_of(&control_delivered.rows),
        "the items of the control run, delivered"
    );
    println!(
        "faults: PostgreSQL restart: {} Message-IDs (control {})",
        delivered.ids().len(),
        control_delivered.ids().len()
    );
    verifies(&url, "after the restart");
    figures.print(
        &format!("serve, PostgreSQL down {outage} s across 00:00 (pass {late} s late)"),
        "postgres",
    );
}

/// Backends of the test database terminated again and again while `serve`
/// runs its passes on the shared server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_survives_terminated_backends() {
    let _took = Took::start("serve_survives_terminated_backends");
    let db = TestDb::postgres().await;
    let url = db.url();
    load(&url);
    let sink = SmtpServer::start_faults(&[]);
    let control = TestDb::postgres().await;
    let control_sink = SmtpServer::start_faults(&[]);
    load(&control.url());
    for now in ["2024-03-29T07:59:50+07:00", "2024-03-29T08:00:00+07:00"] {
        ok(
            &run(
                &control.url(),
                &control_sink.url(),
                &["--now", now, "remind", "--once"],
                &[],
            ),
            "control remind",
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("serve.log");
    let mut child = serve(
        &url,
        &sink.url(),
        "2024-03-29T07:59:50+07:00",
        &repo_root().join("workflows"),
        &log,
        &[],
    );
    // Once it runs (a failure while it starts is an exit 1, by design),
    // through its first pass and the 08:00 one.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("kehoach đang chạy")
    {
        still_running(&mut child, deadline, "serve started", &log);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let admin = sqlx::PgPool::connect(&pg_admin_url()).await.unwrap();
    let name = url.rsplit('/').next().unwrap().to_string();
    let mut terminated = 0_i64;
    let began = Instant::now();
    while began.elapsed() < Duration::from_secs(15) {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()) t",
        )
        .bind(&name)
        .fetch_one(&admin)
        .await
        .unwrap();
        terminated += n;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    admin.close().await;
    println!("faults: terminated {terminated} backends of serve in 15 s");
    let expected = queued_for(&control.url(), "2024-03-29").await;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        still_running(&mut child, deadline, "every digest delivered", &log);
        if queued_for(&url, "2024-03-29").await.len() >= expected.len()
            && outbox(&url).iter().all(|r| r["status"] != "queued")
        {
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    let status = terminate(&mut child, Duration::from_secs(60));
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(status.success(), "serve stopped with {status}: {text}");
    assert!(terminated > 0, "backends were terminated");
    assert_eq!(queued_for(&url, "2024-03-29").await, expected);
    let delivered = Delivered::of(&url, &sink).await;
    let figures = delivered.check("terminated backends");
    assert_eq!(figures.lost, 0);
    let control_delivered = Delivered::of(&control.url(), &control_sink).await;
    assert_eq!(
        items_of(&delivered.rows),
        items_of(&control_delivered.rows),
        "the items of the control run, delivered"
    );
    println!(
        "faults: terminated backends: {} Message-IDs (control {})",
        delivered.ids().len(),
        control_delivered.ids().len()
    );
    verifies(&url, "after the terminated backends");
    figures.print(&format!("serve, {terminated} backends terminated"), "postgres");
}

// ---------------------------------------------------------------------------
// 6. SQLite on a full disk
// ---------------------------------------------------------------------------

/// Unmounts the tmpfs however the test ends.
struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let ok = std::process::Command::new("umount")
            .arg(&self.0)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
}

#[test]
fn sqlite_on_a_full_disk_fails_in_one_line_and_recovers() {
    let _took = Took::start("sqlite_on_a_full_disk");
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("disk");
    std::fs::create_dir(&disk).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64m", "tmpfs"])
        .arg(&disk)
        .output()
        .expect("run mount");
    assert!(
        mounted.status.success(),
        "mount -t tmpfs failed ({}): this test needs root, as CI has; it never skips",
        stderr(&mounted).trim()
    );
    let _unmount = Unmount(disk.clone());
    let url = format!("sqlite://{}", disk.join("kehoach.db").display());
    let sink = SmtpServer::start_faults(&[]);
    ok(&plain(&url, &["store", "init", "--simulation"]), "store init");
    load(&url);
    ok(
        &run(
            &url,
            &sink.url(),
            &["--now", "2024-03-20T08:00:00+07:00", "remind", "--once"],
            &[],
        ),
        "a first pass",
    );
    let events = |url: &str| -> String {
        let out = plain(url, &["audit", "verify"]);
        ok(&out, "audit verify");
        stdout(&out).split(" sự kiện").next().unwrap_or_default().to_string()
    };
    let before = events(&url);
    // Fill the disk, then free 512 KiB: the next command starts, and the
    // disk runs out while it writes.
    let filler = disk.join("filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).expect("filler");
        let chunk = vec![0u8; 64 * 1024];
        while f.write_all(&chunk).is_ok() {}
        let len = f.metadata().unwrap().len();
        f.set_len(len.saturating_sub(512 * 1024)).unwrap();
        let _ = f.sync_all();
    }
    let full = run(
        &url,
        &sink.url(),
        &["--now", "2024-03-29T08:00:00+07:00", "remind", "--once"],
        &[],
    );
    let err = stderr(&full);
    println!("faults: on a full disk: exit {:?}, stderr {err:?}", full.status.code());
    assert!(
        !full.status.success(),
        "a write on a full disk fails: {}",
        stdout(&full)
    );
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(err.starts_with("lỗi"), "{err}");
    let on_full = plain(&url, &["audit", "verify"]);
    println!(
        "faults: audit verify on the full disk: exit {:?} {}",
        on_full.status.code(),
        stderr(&on_full).trim()
    );
    // Space again. Nothing half-written: the store verifies, and holds
    // whole transactions only (verify replays every chain and compares views).
    std::fs::remove_file(&filler).unwrap();
    let after = events(&url);
    println!("faults: full disk: events before {before}, after the failed command {after}");
    // The same command succeeds.
    ok(
        &run(
            &url,
            &sink.url(),
            &["--now", "2024-03-29T08:00:00+07:00", "remind", "--once"],
            &[],
        ),
        "remind once there is space",
    );
    // What the pass queued too late for itself goes at the next one.
    ok(
        &run(
            &url,
            &sink.url(),
            &["--now", "2024-03-29T08:01:00+07:00", "remind", "--once"],
            &[],
        ),
        "remind a minute later",
    );
    verifies(&url, "after the full disk");
    let rows = outbox(&url);
    assert!(rows.iter().all(|r| r["status"] == "sent"), "all delivered");
    let figures = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(async { Delivered::of(&url, &sink).await })
        .check("full disk");
    assert_eq!(figures.lost, 0);
    figures.print("SQLite on a full disk, then space", "sqlite");
}

// ---------------------------------------------------------------------------
// 7. Tampering
// ---------------------------------------------------------------------------

/// Runs `audit verify` on a tampered store: None when it failed as it must
/// (exit 5), else what it said.
fn undetected(url: &str, args: &[&str], what: &str) -> Option<String> {
    let out = plain(url, args);
    println!(
        "faults: tampering ({what}) → exit {:?}: {}",
        out.status.code(),
        format!("{}{}", stdout(&out), stderr(&out)).trim()
    );
    (out.status.code() != Some(5)).then(|| {
        format!(
            "audit verify did not fail on {what} (exit {:?}): {}",
            out.status.code(),
            format!("{}{}", stdout(&out), stderr(&out)).trim()
        )
    })
}

async fn each_tampering_fails_verification(kind: &str) {
    let _took = Took::start(if kind == "sqlite" {
        "tampering::sqlite"
    } else {
        "tampering::postgres"
    });
    let db = TestDb::of(kind).await;
    let url = db.url();
    let sink = SmtpServer::start_faults(&[]);
    load_at(&url, "2023-01-01");
    ok(
        &simulate(&url, &sink.url(), "2023-03-26", "2023-03-31", &[]),
        "simulate",
    );
    let checkpoint = plain(&url, &["audit", "checkpoint"]);
    ok(&checkpoint, "audit checkpoint");
    let root = stdout(&checkpoint)
        .split(|c: char| !c.is_ascii_hexdigit())
        .find(|w| w.len() == 64)
        .unwrap_or_else(|| panic!("a root in {}", stdout(&checkpoint)))
        .to_string();
    verifies(&url, "untampered");
    let rebuild = || ok(&plain(&url, &["views", "rebuild"]), "views rebuild");
    let mut missed = Vec::new();

    // Three sent outbox rows set back to queued.
    let n = execute(
        &url,
        "UPDATE outbox SET status = 'queued' WHERE (aggregate_id, milestone_id, reminder_key, agency) IN
           (SELECT aggregate_id, milestone_id, reminder_key, agency FROM outbox WHERE status = 'sent'
             ORDER BY aggregate_id, milestone_id, reminder_key, agency LIMIT 3)",
    )
    .await;
    assert_eq!(n, 3);
    missed.extend(undetected(
        &url,
        &["audit", "verify"],
        "three sent outbox rows set back to queued",
    ));
    rebuild();
    verifies(&url, "outbox rebuilt");

    // A task's due_index rows deleted.
    let n = execute(
        &url,
        "DELETE FROM due_index WHERE aggregate_id = 'duc-pho-de-an-13/III.1.2'",
    )
    .await;
    assert!(n > 0);
    missed.extend(undetected(
        &url,
        &["audit", "verify"],
        "the due_index rows of III.1.2 deleted",
    ));
    rebuild();
    verifies(&url, "due_index rebuilt");

    // UBND's address replaced in plan_view.
    let n = execute(
        &url,
        "UPDATE plan_view SET payload = replace(payload, 'ubnd@ducpho.example', 'ubnd@gia-mao.example')",
    )
    .await;
    assert_eq!(n, 1);
    missed.extend(undetected(
        &url,
        &["audit", "verify"],
        "UBND's address replaced in plan_view",
    ));
    rebuild();
    verifies(&url, "plan_view rebuilt");

    // The checkpoints deleted and a chain rewritten (its last two events
    // cut off, the views rebuilt to match): only the root kept before can tell.
    let tail = texts(
        &url,
        "SELECT aggregate_id, CAST(max(sequence) AS TEXT) FROM events WHERE aggregate_id = 'duc-pho-de-an-13/III.1.2' GROUP BY aggregate_id",
    )
    .await;
    let last: i64 = tail[0][1].parse().unwrap();
    execute(&url, "DELETE FROM events WHERE aggregate_type = 'Checkpoint'").await;
    execute(
        &url,
        &format!(
            "DELETE FROM events WHERE aggregate_id = 'duc-pho-de-an-13/III.1.2' AND sequence > {}",
            last - 2
        ),
    )
    .await;
    rebuild();
    missed.extend(undetected(
        &url,
        &["audit", "verify", "--root", &root],
        "checkpoints deleted and a chain rewritten (--root)",
    ));
    println!(
        "faults figures | tampering | {kind} | 4 tamperings | {} refused by audit verify (exit 5)",
        4 - missed.len()
    );
    assert!(missed.is_empty(), "{}", missed.join("\n"));
}
on_both_stores!(tampering, each_tampering_fails_verification);

// ---------------------------------------------------------------------------
// 8. Graceful stop during a delivery
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_delivery_records_it_and_exits_0() {
    let _took = Took::start("sigterm_during_a_delivery");
    let db = TestDb::sqlite();
    let url = db.url();
    load(&url);
    let sink = SmtpServer::start_faults(&[("SMTP_DELAY", "5")]);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("serve.log");
    let mut child = serve(
        &url,
        &sink.url(),
        "2024-03-29T08:00:00+07:00",
        &repo_root().join("workflows"),
        &log,
        &[],
    );
    // The first digest is fixed: its delivery has begun.
    let deadline = Instant::now() + Duration::from_secs(90);
    let first = loop {
        still_running(&mut child, deadline, "a digest fixed", &log);
        if let Some((_, p)) = events_of(&url, "ReminderBatched").await.first() {
            break bare(p["message_id"].as_str().unwrap_or_default());
        }
        tokio::time::sleep(POLL).await;
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        sink.received().is_empty(),
        "the server is still holding the first message"
    );
    let stopping = Instant::now();
    let status = terminate(&mut child, Duration::from_secs(60));
    let took = stopping.elapsed();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(
        status.code(),
        Some(0),
        "serve exits 0 once the delivery in hand is recorded: {text}"
    );
    assert!(text.contains("nhận tín hiệu dừng"), "{text}");
    let rows = outbox(&url);
    let in_hand: Vec<&Value> = rows
        .iter()
        .filter(|r| bare(r["message_id"].as_str().unwrap_or_default()) == first)
        .collect();
    assert!(!in_hand.is_empty());
    assert!(
        in_hand.iter().all(|r| r["status"] == "sent"),
        "the digest in hand is recorded as sent: {in_hand:?}"
    );
    assert!(sink
        .received()
        .iter()
        .any(|m| bare(m["message_id"].as_str().unwrap()) == first));
    verifies(&url, "after SIGTERM");
    println!(
        "faults figures | SIGTERM during a delivery (SMTP 5 s) | sqlite | stopped in {:.1} s, exit 0 | digest in hand sent ({} items)",
        took.as_secs_f64(),
        in_hand.len()
    );
}
