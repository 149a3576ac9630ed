//! kehoach-bench: measures the engine against what the database (and the
//! SMTP server) allow, each figure side by side with a baseline doing the
//! same raw work in the same run.
//!
//! `cargo run --release --bin kehoach-bench -- --db sqlite|postgres://… [--tasks N] [--agencies M] [--quick]`
//!
//! With a PostgreSQL URL the harness creates (and drops) its own databases
//! on that server; with `sqlite` it works in a temporary directory.

use chrono::{DateTime, Utc};
use clap::Parser;
use futures::stream::{self, StreamExt};
use kehoach::clock::{ManualClock, SharedClock};
use kehoach::domain::ids::{AgencyCode, MilestoneId, PersonName, TaskKey};
use kehoach::domain::task::{Actor, Channel, Principal, TaskAction, TaskCommand};
use kehoach::engine::Engine;
use kehoach::notification::dispatch::Dispatcher;
use kehoach::store::{DbUrl, Store};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The allocator, counting: bytes live now and the highest since the last
/// reset, so a list figure can say how much memory one request took.
struct Counting;

static LIVE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
static PEAK: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl Counting {
    fn grew(by: usize) {
        use std::sync::atomic::Ordering::Relaxed;
        let now = LIVE.fetch_add(by, Relaxed) + by;
        PEAK.fetch_max(now, Relaxed);
    }

    /// Starts a measurement: the peak is what is live now.
    fn reset() -> usize {
        let live = LIVE.load(std::sync::atomic::Ordering::Relaxed);
        PEAK.store(live, std::sync::atomic::Ordering::Relaxed);
        live
    }

    /// Bytes above `start` at the highest point since `reset`.
    fn peak_above(start: usize) -> usize {
        PEAK.load(std::sync::atomic::Ordering::Relaxed).saturating_sub(start)
    }
}

// SAFETY: every call is passed on to the system allocator unchanged; the
// counters are only bookkeeping.
unsafe impl std::alloc::GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        let p = unsafe { std::alloc::System.alloc(layout) };
        if !p.is_null() {
            Self::grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        unsafe { std::alloc::System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), std::sync::atomic::Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { std::alloc::System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_sub(layout.size(), std::sync::atomic::Ordering::Relaxed);
            Self::grew(new_size);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

#[derive(Parser, Debug)]
#[command(
    name = "kehoach-bench",
    about = "Đo hiệu năng kehoach so với giới hạn của cơ sở dữ liệu"
)]
struct Args {
    /// `sqlite` (a temporary file) or a PostgreSQL server URL (databases are created on it).
    #[arg(long, default_value = "sqlite")]
    db: String,
    /// Tasks in the generated plan (each has 10 milestones over five years).
    #[arg(long, default_value_t = 2000)]
    tasks: usize,
    /// Agencies in the generated plan.
    #[arg(long, default_value_t = 30)]
    agencies: usize,
    /// Open milestones for the scheduler figure, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "10000,100000")]
    open: Vec<usize>,
    /// Reminders due in each scheduler pass.
    #[arg(long, default_value_t = 100)]
    due: usize,
    /// Tasks in the large plan loaded beside the shipped one for the list figures.
    #[arg(long, default_value_t = 100_000)]
    list_tasks: usize,
    /// Agencies in that plan.
    #[arg(long, default_value_t = 2000)]
    list_agencies: usize,
    /// Only the list figures.
    #[arg(long)]
    lists_only: bool,
    /// Small sizes, for CI: checks that every figure runs, in seconds.
    #[arg(long)]
    quick: bool,
    /// Keep the SQLite databases in this directory instead of a temporary
    /// one, to profile or inspect them afterwards (SQLite only).
    #[arg(long)]
    keep: Option<std::path::PathBuf>,
}

/// Where `--keep` puts the SQLite databases.
static KEEP: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();

/// One line of the table.
struct Figure {
    name: String,
    unit: &'static str,
    kehoach: f64,
    baseline: Option<f64>,
    /// Whether a bigger number is better (rates) or smaller (times, memory).
    higher_is_better: bool,
}

const START: &str = "2025-01-06T08:00:00+07:00";

fn now() -> DateTime<Utc> {
    kehoach::config::parse_now(START).expect("start")
}

/// A synthetic plan: `tasks` tasks over `agencies` agencies, each task with
/// a yearly registration and a yearly report over 2025–2029 (10 milestones),
/// and `due_soon` more tasks whose one milestone is due in three days.
fn plan_text(id: &str, tasks: usize, agencies: usize, due_soon: usize) -> String {
    let mut t = format!(
        "[plan]\nid = \"{id}\"\ntitle = \"Kế hoạch tổng hợp để đo\"\nissuer = \"CQ000\"\n\
         period = {{ start = \"2025-01-01\", end = \"2029-12-31\" }}\n\n\
         [defaults]\nreporting_years = {{ first = 2025, last = 2029 }}\n\n\
         [reminders]\nbefore_days = [3]\nsend_at = \"0 0 8 * * *\"\n\n"
    );
    for a in 0..agencies.max(3) {
        t.push_str(&format!(
            "[[agencies]]\ncode = \"CQ{a:03}\"\nname = \"Cơ quan {a}\"\nemails = [\"cq{a:03}@bench.example\"]\n\n"
        ));
    }
    let n = agencies.max(3);
    for i in 0..tasks + due_soon {
        let (lead, adv, imp) = (i % n, (i + 1) % n, (i + 2) % n);
        let schedule = if i < tasks {
            "milestones = [\n  { kind = \"yearly\", due = \"31/03\", key = \"dang-ky\", title = \"Đăng ký\" },\n  { kind = \"ongoing\", key = \"bao-cao\", title = \"Báo cáo năm\" },\n]\n".to_string()
        } else {
            "schedule = { kind = \"once\", due = \"2025-01-09\", title = \"Hoàn thành\" }\n".to_string()
        };
        t.push_str(&format!(
            "[[tasks]]\nid = \"I.{}.{}\"\ntitle = \"Nhiệm vụ {i}\"\ntext = \"Nội dung nhiệm vụ tổng hợp số {i}.\"\n\
             lead = \"CQ{lead:03}\"\nadvisory = [\"CQ{adv:03}\"]\nimplementers = [\"CQ{imp:03}\"]\n\
             source = {{ section = \"I\", line = {} }}\n{schedule}\n",
            i / 1000 + 1,
            i % 1000 + 1,
            i + 1
        ));
    }
    t
}

fn plan(id: &str, tasks: usize, agencies: usize, due_soon: usize) -> kehoach::plan::PlanDefinition {
    kehoach::plan::parse_str(
        std::path::Path::new("bench.toml"),
        &plan_text(id, tasks, agencies, due_soon),
    )
    .unwrap_or_else(|d| panic!("generated plan is invalid: {}", d[0]))
}

/// A fresh database for one stage.
struct Db {
    url: DbUrl,
    admin: Option<String>,
    name: String,
    _dir: Option<tempfile::TempDir>,
}

impl Db {
    async fn new(spec: &str, stage: &str) -> Self {
        let name = format!("kehoach_bench_{}_{stage}", std::process::id());
        if spec == "sqlite" {
            // A temporary directory, or with `--keep` one that stays.
            let (dir, path) = match KEEP.get() {
                Some(keep) => {
                    std::fs::create_dir_all(keep).unwrap_or_else(|e| panic!("{}: {e}", keep.display()));
                    (None, keep.clone())
                }
                None => {
                    let dir = tempfile::tempdir().expect("temp dir");
                    let path = dir.path().to_path_buf();
                    (Some(dir), path)
                }
            };
            return Self {
                url: DbUrl::Sqlite(path.join(format!("{name}.db"))),
                admin: None,
                name,
                _dir: dir,
            };
        }
        let pool = sqlx::PgPool::connect(spec)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {spec}: {e}"));
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&pool)
            .await
            .expect("drop");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&pool)
            .await
            .expect("create");
        pool.close().await;
        let base = spec.rsplit_once('/').map_or(spec, |(b, _)| b);
        Self {
            url: DbUrl::parse(&format!("{base}/{name}")).expect("url"),
            admin: Some(spec.to_string()),
            name,
            _dir: None,
        }
    }

    async fn engine(&self) -> (Engine, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new(now()));
        let shared: SharedClock = clock.clone();
        let engine = Engine::open(&self.url, shared).await.expect("open");
        // Its clock is simulated: a simulation store.
        engine.initialise(true).await.expect("a simulation store");
        (engine, clock)
    }

    async fn drop_db(self) {
        if let Some(admin) = &self.admin {
            if let Ok(pool) = sqlx::PgPool::connect(admin).await {
                let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name))
                    .execute(&pool)
                    .await;
            }
        }
    }
}

fn rate(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64().max(1e-9)
}

async fn timed<F: std::future::Future>(f: F) -> (F::Output, Duration) {
    let t = Instant::now();
    let out = f.await;
    (out, t.elapsed())
}

/// A stored event's columns: type, id, sequence, event type, payload, metadata.
type Row = (String, String, i64, String, String, String);

/// Rows of stored events, as the baselines re-insert or read them.
async fn event_rows(store: &Store, event_type: Option<&str>) -> Vec<Row> {
    let sql = format!(
        "SELECT aggregate_type, aggregate_id, sequence, event_type, CAST(payload AS TEXT), CAST(metadata AS TEXT) FROM events {} ORDER BY aggregate_id, sequence",
        if event_type.is_some() { "WHERE event_type = $1" } else { "" }
    );
    kehoach::with_pool!(store, pool => {
        let mut q = sqlx::query_as(&sql);
        if let Some(t) = event_type {
            q = q.bind(t);
        }
        q.fetch_all(pool).await.expect("read events")
    })
}

const SCRATCH: &str =
    "CREATE TABLE IF NOT EXISTS bench_events (aggregate_type text NOT NULL, aggregate_id text NOT NULL, \
    sequence bigint NOT NULL, event_type text NOT NULL, payload text NOT NULL, metadata text NOT NULL, \
    PRIMARY KEY (aggregate_type, aggregate_id, sequence))";

/// The baseline for writes: the same rows, one transaction per group, `concurrency` at a time.
async fn insert_rows(store: &Store, groups: Vec<Vec<Row>>, concurrency: usize) -> Duration {
    kehoach::with_pool!(store, pool => {
        sqlx::query(SCRATCH).execute(pool).await.expect("scratch table");
        sqlx::query("DELETE FROM bench_events").execute(pool).await.expect("clear");
    });
    let (_, d) = timed(
        stream::iter(groups).for_each_concurrent(concurrency, |rows| async move {
            kehoach::with_pool!(store, pool => {
                let mut tx = pool.begin().await.expect("begin");
                for (t, id, seq, et, p, m) in rows {
                    sqlx::query("INSERT INTO bench_events VALUES ($1, $2, $3, $4, $5, $6)")
                        .bind(t).bind(format!("{id}#b")).bind(seq).bind(et).bind(p).bind(m)
                        .execute(&mut *tx).await.expect("insert");
                }
                tx.commit().await.expect("commit");
            })
        }),
    )
    .await;
    d
}

/// Importing a plan document of `tasks` items (.txt and .docx with automatic
/// numbering), the best of three runs; the baseline is reading back the
/// draft it gives (`plan check`'s parse and validation of the same plan).
fn import(tasks: usize, out: &mut Vec<Figure>) {
    use kehoach::plan::import::{import, sample};
    for (name, bytes) in [
        ("ke-hoach.txt", sample::text(tasks).into_bytes()),
        ("ke-hoach.docx", sample::docx(tasks)),
    ] {
        let mut best = Duration::MAX;
        let mut draft = None;
        for _ in 0..3 {
            let started = Instant::now();
            let d = import(name, &bytes, &[]).expect("the sample imports");
            best = best.min(started.elapsed());
            draft = Some(d);
        }
        let text = draft.expect("three runs").to_toml();
        let mut parse = Duration::MAX;
        for _ in 0..3 {
            let started = Instant::now();
            let plan = kehoach::plan::parse_str(std::path::Path::new("draft.toml"), &text);
            parse = parse.min(started.elapsed());
            // The draft's agencies have no addresses yet: diagnostics, not a plan.
            drop(plan);
        }
        out.push(Figure {
            name: format!("nhập văn bản {name} ({tasks} nhiệm vụ, {} KB), ms", bytes.len() / 1024),
            unit: "ms",
            kehoach: best.as_secs_f64() * 1000.0,
            baseline: Some(parse.as_secs_f64() * 1000.0),
            higher_is_better: false,
        });
    }
}

async fn commands(db_spec: &str, tasks: usize, agencies: usize, out: &mut Vec<Figure>) {
    let db = Db::new(db_spec, "commands").await;
    let (engine, _) = db.engine().await;
    let p = plan("do-lenh", tasks, agencies, 0);
    let (report, load_time) = timed(engine.load_plan(&p)).await;
    report.expect("load");
    // Baseline for the load: the same rows, one transaction per task.
    let rows = event_rows(&engine.store, None).await;
    let mut groups: Vec<Vec<Row>> = Vec::new();
    for r in rows {
        match groups.last_mut() {
            Some(g) if g[0].1 == r.1 => g.push(r),
            _ => groups.push(vec![r]),
        }
    }
    let load_base = insert_rows(&engine.store, groups, 1).await;
    out.push(Figure {
        name: format!("nạp kế hoạch, nhiệm vụ/giây ({tasks} nhiệm vụ)"),
        unit: "/s",
        kehoach: rate(tasks, load_time),
        baseline: Some(rate(tasks, load_base)),
        higher_is_better: true,
    });
    let keys: Vec<(TaskKey, AgencyCode)> = p
        .tasks
        .iter()
        .map(|t| {
            (
                TaskKey::new(p.id().clone(), t.id.clone()),
                t.definition.implementers[0].clone(),
            )
        })
        .collect();
    for concurrency in [1usize, 8] {
        let before = engine.store.event_count().await.expect("count");
        let round = if concurrency == 1 { 0 } else { 1 };
        let engine_ref = &engine;
        let (_, d) = timed(
            stream::iter(keys.iter()).for_each_concurrent(concurrency, |(key, agency)| async move {
                let principal = Principal {
                    account: format!("bench-{agency}"),
                    email: format!("do@{}.example", agency.as_str().to_lowercase()),
                    name: PersonName::parse("Người Đo").unwrap(),
                    agency: agency.clone(),
                    channel: Channel::Cli {
                        os_user: "bench".into(),
                        host: "bench".into(),
                    },
                };
                let command = TaskCommand {
                    stamp: engine_ref.stamp(Actor::account(principal)),
                    action: TaskAction::ReportProgress {
                        milestone: MilestoneId::parse("dang-ky-2025").unwrap(),
                        agency: None,
                        note: format!("Báo cáo lần {round}"),
                        kpis: vec![],
                        evidence: vec![],
                        attachments: vec![],
                    },
                };
                engine_ref.execute(key, command).await.expect("report");
            }),
        )
        .await;
        let written = (engine.store.event_count().await.expect("count") - before) as usize;
        assert_eq!(written, keys.len(), "one event per command");
        // Baseline: the rows these commands wrote, one INSERT transaction each.
        let rows: Vec<_> = event_rows(&engine.store, Some("ProgressReported"))
            .await
            .into_iter()
            .filter(|r| r.4.contains(&format!("Báo cáo lần {round}")))
            .collect();
        let n = rows.len();
        let base = insert_rows(&engine.store, rows.into_iter().map(|r| vec![r]).collect(), concurrency).await;
        out.push(Figure {
            name: format!("lệnh/giây (báo cáo tiến độ, đồng thời {concurrency})"),
            unit: "/s",
            kehoach: rate(written, d),
            baseline: Some(rate(n, base)),
            higher_is_better: true,
        });
    }
    // Replaying into views, and verifying the chains, against reading and hashing the same rows.
    let total = engine.store.event_count().await.expect("count") as usize;
    let (r, d) = timed(kehoach::projections::rebuild(&engine.store)).await;
    r.expect("rebuild");
    let (rows, base) = timed(async {
        let rows = event_rows(&engine.store, None).await;
        rows.iter()
            .filter(|r| {
                serde_json::from_str::<serde_json::Value>(&r.4)
                    .expect("json")
                    .is_object()
            })
            .count()
    })
    .await;
    out.push(Figure {
        name: format!("dựng lại khung nhìn, sự kiện/giây ({total} sự kiện)"),
        unit: "/s",
        kehoach: rate(total, d),
        baseline: Some(rate(rows, base)),
        higher_is_better: true,
    });
    let (r, d) = timed(kehoach::audit::verify::verify(&engine.store, |_| {})).await;
    assert!(r.expect("verify").is_ok(), "the bench store verifies");
    let (hashed, base) = timed(async {
        let rows = event_rows(&engine.store, None).await;
        let mut hashed = 0;
        for r in &rows {
            let digest = Sha256::new()
                .chain_update(r.4.as_bytes())
                .chain_update(r.5.as_bytes())
                .finalize();
            hashed += usize::from(digest.len() == 32);
        }
        hashed
    })
    .await;
    out.push(Figure {
        name: format!("audit verify, sự kiện/giây ({total} sự kiện)"),
        unit: "/s",
        kehoach: rate(total, d),
        baseline: Some(rate(hashed, base)),
        higher_is_better: true,
    });
    engine.store.close().await;
    db.drop_db().await;
}

/// A local aiosmtpd that discards what it receives.
struct Smtp(std::process::Child, u16);

impl Smtp {
    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new("/usr/bin/python3")
            .args([
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                &format!("127.0.0.1:{port}"),
                "-c",
                "aiosmtpd.handlers.Sink",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("aiosmtpd (scripts/test-services installs it)");
        let server = Self(child, port);
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return server;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("aiosmtpd did not start");
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn scheduler(db_spec: &str, open: usize, due: usize, agencies: usize, with_mail: bool, out: &mut Vec<Figure>) {
    let db = Db::new(db_spec, &format!("lich{open}")).await;
    let (engine, _) = db.engine().await;
    let tasks = open / 10;
    let t = Instant::now();
    engine
        .load_plan(&plan("lich", tasks, agencies, due))
        .await
        .expect("load");
    engine.catch_up().await.expect("catch up");
    eprintln!("  {open} mốc mở đã nạp trong {:.1}s", t.elapsed().as_secs_f64());
    let at = now();
    let (queued, d) = timed(kehoach::scheduling::schedule(&engine, at)).await;
    let queued = queued.expect("schedule");
    let (rows, base) = timed(async {
        kehoach::with_pool!(&engine.store, pool => sqlx::query_as::<_, (String, String)>(
            "SELECT aggregate_id, milestone_id FROM due_index WHERE due <= $1 AND status IN ('open', 'returned')")
            .bind("2025-01-09").fetch_all(pool).await.expect("select"))
    })
    .await;
    out.push(Figure {
        name: format!(
            "một lượt lập lịch: {} lời nhắc đến hạn / {open} mốc mở (ms)",
            queued.len()
        ),
        unit: "ms",
        kehoach: d.as_secs_f64() * 1000.0,
        baseline: Some(base.as_secs_f64() * 1000.0),
        higher_is_better: false,
    });
    assert_eq!(rows.len(), due, "the baseline finds the same due milestones");
    if with_mail {
        deliveries(&engine, at, out).await;
        memory(&db, open, out);
    }
    engine.store.close().await;
    db.drop_db().await;
}

async fn deliveries(engine: &Engine, at: DateTime<Utc>, out: &mut Vec<Figure>) {
    let smtp = Smtp::start();
    let url = format!("smtp://127.0.0.1:{}", smtp.1);
    let dispatcher = Dispatcher {
        transport: kehoach::notification::transport::from_config(Some(&url), std::path::Path::new(".")).expect("smtp"),
        from: "kehoach <kehoach@bench.example>".into(),
        base_url: "http://127.0.0.1:8080".into(),
        mail_domain: "bench.example".into(),
        max_attempts: Some(3),
        retry_for: kehoach::notification::dispatch::DEFAULT_RETRY_FOR,
        crash_after_send: false,
        stop: Default::default(),
    };
    let (sent, d) = timed(dispatcher.dispatch(engine, at)).await;
    let sent = sent.expect("dispatch");
    let n = sent.len();
    use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
    let bare = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(smtp.1)
        .build();
    let (_, base) = timed(async {
        for i in 0..n {
            let m = Message::builder()
                .from("kehoach <kehoach@bench.example>".parse().unwrap())
                .to(format!("cq{:03}@bench.example", i % 30).parse().unwrap())
                .subject("[kehoach] Nhắc hạn")
                .body("Nội dung nhắc hạn ".repeat(40))
                .unwrap();
            bare.send(m).await.expect("send");
        }
    })
    .await;
    out.push(Figure {
        name: format!("thư nhắc gửi/giây đến aiosmtpd ({n} thư)"),
        unit: "/s",
        kehoach: rate(n, d),
        baseline: Some(rate(n, base)),
        higher_is_better: true,
    });
}

/// Peak resident memory of `serve` on this database, after its first pass.
fn memory(db: &Db, open: usize, out: &mut Vec<Figure>) {
    let exe = std::env::current_exe().expect("exe").with_file_name("kehoach");
    let dir = tempfile::tempdir().expect("dir");
    let url = match &db.url {
        DbUrl::Sqlite(p) => format!("sqlite://{}", p.display()),
        DbUrl::Postgres(u) => u.clone(),
    };
    let mut child = std::process::Command::new(&exe)
        .args(["--db", &url, "--now", START, "serve", "--listen", "127.0.0.1:0"])
        .args(["--workflows", dir.path().to_str().unwrap()])
        .env("KEHOACH_OUTBOX_DIR", dir.path().join("outbox"))
        .env("KEHOACH_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{} (build it: cargo build --release): {e}", exe.display()));
    std::thread::sleep(Duration::from_secs(8));
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap_or_default();
    let hwm_kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN);
    let _ = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let _ = child.wait();
    out.push(Figure {
        name: format!("bộ nhớ đỉnh của serve với {open} mốc mở (MiB)"),
        unit: "MiB",
        kehoach: hwm_kb / 1024.0,
        baseline: None,
        higher_is_better: false,
    });
}

/// One database of the list figures, with the web server on it: the
/// shipped plan alone, or with a large plan beside it.
struct ListSide {
    db: Db,
    engine: Arc<Engine>,
    port: u16,
    /// Session cookies of an MTTQ member and a BTV supervisor.
    member: String,
    supervisor: String,
}

impl ListSide {
    async fn new(db_spec: &str, stage: &str, large: Option<(usize, usize)>) -> Self {
        let db = Db::new(db_spec, stage).await;
        let (engine, _clock) = db.engine().await;
        let engine = Arc::new(engine);
        let shipped = kehoach::plan::parse_file(std::path::Path::new("workflows/duc-pho-de-an-13.toml"))
            .unwrap_or_else(|d| panic!("shipped plan: {}", d[0]));
        engine.load_plan(&shipped).await.expect("load the shipped plan");
        engine.catch_up().await.expect("catch up");
        if let Some((tasks, agencies)) = large {
            let (_, load) = timed(async {
                engine
                    .load_plan(&plan("lon", tasks, agencies, 0))
                    .await
                    .expect("load the large plan");
                engine.catch_up().await.expect("catch up");
            })
            .await;
            eprintln!("  nạp và dựng chỉ mục {tasks} nhiệm vụ: {:.0} s", load.as_secs_f64());
        }
        // The steady state of a store that has been running: SQLite's
        // write-ahead log folded back into the file (a bulk load leaves it
        // hundreds of MB long), PostgreSQL's statistics up to date.
        let settle = match &engine.store {
            Store::Sqlite(_) => "PRAGMA wal_checkpoint(TRUNCATE)",
            Store::Postgres(_) => "ANALYZE",
        };
        kehoach::with_pool!(&engine.store, pool => sqlx::query(settle).execute(pool).await.map(|_| ()))
            .expect("settle the database");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("port").port();
        let state = kehoach::web::AppState::new(engine.clone(), &format!("http://127.0.0.1:{port}"));
        let app = kehoach::web::router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let member = Self::session(&engine, "MTTQ", "member").await;
        let supervisor = Self::session(&engine, "BTV", "supervisor").await;
        Self {
            db,
            engine,
            port,
            member,
            supervisor,
        }
    }

    async fn session(engine: &Engine, agency: &str, roles: &str) -> String {
        let new = kehoach::accounts::store::NewUser {
            email: kehoach::accounts::Email::parse(&format!("{}@bench.example", agency.to_lowercase())).expect("email"),
            name: PersonName::parse("Người Đo").expect("name"),
            agency: AgencyCode::parse(agency).expect("code"),
            roles: kehoach::accounts::parse_roles(roles).expect("roles"),
        };
        let (user, _) = engine
            .add_user(new, Actor::operator("bench", "bench"))
            .await
            .expect("add user");
        let (token, _) = engine
            .store
            .start_session(&user, engine.clock.now())
            .await
            .expect("session");
        format!("kh_session={token}")
    }

    /// A page as a browser gets it; its size in bytes.
    async fn page(&self, path: &str, cookie: &str) -> usize {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .expect("connect");
        let head = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n");
        stream.write_all(head.as_bytes()).await.expect("write");
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.expect("read");
        assert!(
            raw.starts_with(b"HTTP/1.1 200"),
            "{path}: {}",
            String::from_utf8_lossy(&raw[..raw.len().min(300)])
        );
        raw.len()
    }

    /// One timing of list `which` (an index in `LISTS`): the store functions
    /// the handlers call, or the whole page over HTTP.
    async fn list(&self, which: usize) -> usize {
        use kehoach::projections::lists::{Asker, ListKind, ListQuery};
        let today = chrono::NaiveDate::from_ymd_opt(2025, 6, 1).expect("date");
        let asker = |agency: &str| Asker {
            agency: AgencyCode::parse(agency).expect("code"),
            sees_everything: false,
        };
        let query = ListQuery {
            page: 1,
            per_page: 50,
            ..Default::default()
        };
        let store = &self.engine.store;
        match which {
            0 | 1 => {
                let (kind, agency) = if which == 0 {
                    (ListKind::Inbox, "MTTQ")
                } else {
                    (ListKind::Queue, "BTV")
                };
                store
                    .list_obligations(kind, &query, &asker(agency), today)
                    .await
                    .expect("list")
                    .items
                    .len()
            }
            2 => {
                let plan_query = ListQuery {
                    plan: Some("duc-pho-de-an-13".into()),
                    ..query
                };
                let page = store
                    .list_task_ids(&plan_query, &asker("MTTQ"), today)
                    .await
                    .expect("tasks");
                store.task_views_in_order(&page.items).await.expect("views").len()
            }
            3 => self.page("/inbox", &self.member).await,
            4 => self.page("/queue", &self.supervisor).await,
            _ => self.page("/plans/duc-pho-de-an-13", &self.member).await,
        }
    }
}

/// The list figures, in the order `ListSide::list` takes them.
const LISTS: [&str; 6] = [
    "inbox (MTTQ, 50/page), store",
    "queue (BTV), store",
    "plan task list (page 1, views), store",
    "inbox page GET /inbox (MTTQ), HTTP",
    "queue page GET /queue (BTV), HTTP",
    "plan page GET /plans/… (MTTQ), HTTP",
];

/// Median and 95th percentile of timings in milliseconds.
fn median_p95(mut times: Vec<f64>) -> (f64, f64) {
    times.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| times[((times.len() as f64 - 1.0) * q).round() as usize];
    (at(0.5), at(0.95))
}

/// The lists of members of the shipped plan on two databases side by side:
/// the shipped plan alone (the baseline), and with a large plan beside it.
/// Timings alternate between the two, so whatever else the machine does
/// weighs on both alike; each is timed through the store functions the
/// handlers call and as the whole page over HTTP (in-process server,
/// session cookie, template rendered).
async fn lists(db_spec: &str, tasks: usize, agencies: usize, quick: bool, out: &mut Vec<Figure>) {
    let alone = ListSide::new(db_spec, "lists_alone", None).await;
    let beside = ListSide::new(db_spec, "lists_beside", Some((tasks, agencies))).await;
    let runs = if quick { 10 } else { 200 };
    let mut times = vec![[Vec::with_capacity(runs), Vec::with_capacity(runs)]; LISTS.len()];
    // The most memory one request of each list took above what was live
    // before it (KiB): the whole request, server and client, one at a time.
    let mut memory = vec![[0.0f64; 2]; LISTS.len()];
    // One untimed round first: the figures are of a warm cache.
    for round in 0..=runs {
        for (which, (pair, most)) in times.iter_mut().zip(memory.iter_mut()).enumerate() {
            for ((side, t), most) in [&alone, &beside].into_iter().zip(pair.iter_mut()).zip(most.iter_mut()) {
                let live = Counting::reset();
                let started = Instant::now();
                std::hint::black_box(side.list(which).await);
                let took = started.elapsed();
                if round > 0 {
                    t.push(took.as_secs_f64() * 1000.0);
                    *most = most.max(Counting::peak_above(live) as f64 / 1024.0);
                }
            }
        }
    }
    for ((name, [a, b]), [mem_alone, mem_beside]) in LISTS.iter().zip(times).zip(memory) {
        let beside_name =
            |what: &str| format!("{name} {what}, with {tasks} tasks beside (baseline: shipped plan alone)");
        let (a, b) = (median_p95(a), median_p95(b));
        for (what, alone, big) in [("median", a.0, b.0), ("p95", a.1, b.1)] {
            out.push(Figure {
                name: beside_name(what),
                unit: "ms",
                kehoach: big,
                baseline: Some(alone),
                higher_is_better: false,
            });
        }
        out.push(Figure {
            name: beside_name("peak memory of one request"),
            unit: "KiB",
            kehoach: mem_beside,
            baseline: Some(mem_alone),
            higher_is_better: false,
        });
    }
    for side in [alone, beside] {
        side.engine.store.close().await;
        side.db.drop_db().await;
    }
}

fn print_table(db: &str, figures: &[Figure], elapsed: Duration) {
    println!(
        "\nkehoach-bench · {db} · {} · {:.0}s",
        Utc::now().format("%Y-%m-%d %H:%M UTC"),
        elapsed.as_secs_f64()
    );
    println!("| figure | kehoach | baseline in the same run | kehoach / baseline |");
    println!("|---|---:|---:|---:|");
    for f in figures {
        let fmt = |v: f64| {
            if v >= 100.0 {
                format!("{v:.0} {}", f.unit)
            } else {
                format!("{v:.2} {}", f.unit)
            }
        };
        let (base, ratio) = match f.baseline {
            Some(b) => {
                let r = if f.higher_is_better {
                    f.kehoach / b
                } else {
                    b / f.kehoach
                };
                (fmt(b), format!("{r:.2}"))
            }
            None => ("—".into(), "—".into()),
        };
        println!("| {} | {} | {base} | {ratio} |", f.name, fmt(f.kehoach));
    }
    println!(
        "\n(ratio > 1: kehoach does better than its baseline; for times and memory the ratio is baseline / kehoach)"
    );
}

#[tokio::main]
async fn main() {
    let mut args = Args::parse();
    if let Some(keep) = args.keep.clone() {
        if args.db != "sqlite" {
            eprintln!("--keep chỉ dùng với --db sqlite");
            std::process::exit(2);
        }
        let _ = KEEP.set(keep);
    }
    if args.quick {
        args.tasks = args.tasks.min(200);
        args.open = vec![2000];
        args.due = args.due.min(20);
        args.list_tasks = args.list_tasks.min(2000);
        args.list_agencies = args.list_agencies.min(50);
    }
    let started = Instant::now();
    let mut figures = Vec::new();
    if !args.lists_only {
        eprintln!(
            "đo lệnh, nạp kế hoạch, dựng lại khung nhìn, kiểm tra ({} nhiệm vụ)…",
            args.tasks
        );
        eprintln!("đo nhập văn bản kế hoạch (300 nhiệm vụ)…");
        import(300, &mut figures);
        commands(&args.db, args.tasks, args.agencies, &mut figures).await;
        let sizes = args.open.clone();
        for (i, open) in sizes.iter().enumerate() {
            eprintln!("đo lượt lập lịch với {open} mốc mở…");
            scheduler(
                &args.db,
                *open,
                args.due,
                args.agencies,
                i == sizes.len() - 1,
                &mut figures,
            )
            .await;
        }
    }
    eprintln!(
        "đo danh sách: kế hoạch kèm theo, rồi thêm {} nhiệm vụ của {} cơ quan…",
        args.list_tasks, args.list_agencies
    );
    lists(&args.db, args.list_tasks, args.list_agencies, args.quick, &mut figures).await;
    let shown = if args.db == "sqlite" {
        "SQLite".to_string()
    } else {
        "PostgreSQL".to_string()
    };
    print_table(&shown, &figures, started.elapsed());
}
