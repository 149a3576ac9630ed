//! Shared test helpers: a fresh database per test (a SQLite file in a
//! temporary directory, or a new PostgreSQL database that is dropped
//! afterwards), engines on a controlled clock, and the shipped plan.
//!
//! Test databases are simulation stores unless a test asks for a production
//! store (`TestDb::production`): most tests run on controlled or `--now`
//! clocks, which only simulation stores accept.

use chrono::{DateTime, Utc};
use kehoach::accounts::store::NewUser;
use kehoach::accounts::{Email, Role, User};
use kehoach::clock::ManualClock;
use kehoach::domain::ids::{AgencyCode, MilestoneId, PersonName, TaskKey};
use kehoach::domain::task::{Actor, Channel, TaskAction, TaskCommand};
use kehoach::engine::{Engine, EngineError};
use kehoach::plan::PlanDefinition;
use kehoach::store::DbUrl;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

/// The server the PostgreSQL tests use. They fail, loudly, when it is down.
pub fn pg_admin_url() -> String {
    std::env::var("KEHOACH_TEST_PG").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

pub enum TestDb {
    Sqlite { _dir: tempfile::TempDir, path: PathBuf },
    Postgres { name: String },
}

impl TestDb {
    /// A new SQLite simulation store.
    pub fn sqlite() -> Self {
        Self::sqlite_empty().initialised_as_simulation()
    }

    /// A SQLite file not yet created: a production store once written to.
    fn sqlite_empty() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("kehoach.db");
        TestDb::Sqlite { _dir: dir, path }
    }

    /// A new, empty store of either kind that becomes a production store at
    /// its first write (nothing initialises it).
    pub async fn production(kind: &str) -> Self {
        match kind {
            "sqlite" => Self::sqlite_empty(),
            _ => Self::postgres_empty().await,
        }
    }

    /// Makes the new store a simulation store, as `kehoach store init
    /// --simulation` does. Runs on its own thread and runtime, so that it
    /// works from synchronous tests and from inside a test's runtime.
    fn initialised_as_simulation(self) -> Self {
        let url = self.db_url();
        std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime")
                .block_on(async {
                    let engine = Engine::open(&url, Arc::new(kehoach::clock::SystemClock))
                        .await
                        .expect("open test database");
                    engine.initialise(true).await.expect("a simulation store");
                    engine.store.close().await;
                })
        })
        .join()
        .expect("initialise the test database");
        self
    }

    /// A new database named after this process. Databases are dropped by the
    /// next test run once their process has ended, not while tests run (a
    /// DROP DATABASE takes seconds and would kill the tests' own sessions).
    pub async fn postgres() -> Self {
        Self::postgres_empty().await.initialised_as_simulation()
    }

    async fn postgres_empty() -> Self {
        let name = format!("kh_test_{}_{}", std::process::id(), rand::random::<u32>());
        let admin = pg_admin_url();
        let pool = sqlx::PgPool::connect(&admin)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL is required for this test and is not reachable at {admin}: {e}"));
        STALE.get_or_init(|| drop_stale_databases(&pool)).await;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&pool)
            .await
            .expect("create test database");
        pool.close().await;
        TestDb::Postgres { name }
    }

    pub async fn of(kind: &str) -> Self {
        match kind {
            "sqlite" => Self::sqlite(),
            _ => Self::postgres().await,
        }
    }

    /// A database holding the store that release 0.1 made
    /// (`tests/fixtures/release-0.1`, see its `make.sh`), never opened by
    /// this release before.
    pub async fn release_0_1(kind: &str) -> Self {
        Self::release(kind, "release-0.1").await
    }

    /// A database holding the store that an earlier release made
    /// (`tests/fixtures/{release}`, see its `make.sh`), never opened by this
    /// release before.
    pub async fn release(kind: &str, release: &str) -> Self {
        let fixtures = repo_root().join("tests/fixtures").join(release);
        match kind {
            "sqlite" => {
                let db = Self::sqlite_empty();
                if let TestDb::Sqlite { path, .. } = &db {
                    std::fs::copy(fixtures.join("store.db"), path).expect("copy the release 0.1 store");
                }
                db
            }
            _ => {
                let db = Self::postgres_empty().await;
                let dump = std::fs::read_to_string(fixtures.join("store.postgres.sql")).expect("read the dump");
                let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&db.url())
                    .await
                    .expect("connect");
                sqlx::raw_sql(&dump).execute(&mut conn).await.expect("restore the dump");
                // The dump carries the transaction ids of the server that made
                // it; the feed orders by them, so this server's counter must
                // be past them before anything new is written (as after any
                // restore onto another server: docs/operations.md).
                let restored: i64 = sqlx::query_scalar("SELECT max(tx_id::text::bigint) FROM public.events")
                    .fetch_one(&mut conn)
                    .await
                    .expect("max tx_id");
                loop {
                    let current: i64 = sqlx::query_scalar("SELECT pg_current_xact_id()::text::bigint")
                        .fetch_one(&mut conn)
                        .await
                        .expect("current xid");
                    if current > restored {
                        break;
                    }
                }
                db
            }
        }
    }

    pub fn url(&self) -> String {
        match self {
            TestDb::Sqlite { path, .. } => format!("sqlite://{}", path.display()),
            TestDb::Postgres { name } => {
                let admin = pg_admin_url();
                let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b).to_string();
                format!("{base}/{name}")
            }
        }
    }

    pub fn db_url(&self) -> DbUrl {
        DbUrl::parse(&self.url()).expect("test URL")
    }

    pub async fn engine(&self, clock: Arc<ManualClock>) -> Engine {
        Engine::open(&self.db_url(), clock).await.expect("open test database")
    }
}

static STALE: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();

/// Drops the test databases of test processes that are no longer running.
async fn drop_stale_databases(pool: &sqlx::PgPool) {
    let names: Vec<String> =
        sqlx::query_scalar("SELECT datname::text FROM pg_database WHERE datname LIKE 'kh\\_test\\_%'")
            .fetch_all(pool)
            .await
            .unwrap_or_default();
    for name in names {
        let pid = name.split('_').nth(2).and_then(|p| p.parse::<u32>().ok());
        let alive = pid.is_some_and(|p| Path::new(&format!("/proc/{p}")).exists());
        if !alive {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(pool)
                .await;
        }
    }
}

/// Runs an async scenario once on SQLite and once on PostgreSQL, as two tests.
#[macro_export]
macro_rules! on_both_stores {
    ($name:ident, $scenario:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$scenario("sqlite").await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$scenario("postgres").await
            }
        }
    };
}

pub fn at(s: &str) -> DateTime<Utc> {
    kehoach::config::parse_now(s).expect("test time")
}

pub fn clock(s: &str) -> Arc<ManualClock> {
    Arc::new(ManualClock::new(at(s)))
}

pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

pub fn shipped_plan_path() -> PathBuf {
    repo_root().join("workflows/duc-pho-de-an-13.toml")
}

pub fn shipped_plan() -> PlanDefinition {
    kehoach::plan::parse_file(&shipped_plan_path()).unwrap_or_else(|d| panic!("shipped plan is invalid: {d:#?}"))
}

pub fn key(task: &str) -> TaskKey {
    TaskKey::parse(&format!("duc-pho-de-an-13/{task}")).expect("task key")
}

pub fn mid(s: &str) -> MilestoneId {
    MilestoneId::parse(s).expect("milestone id")
}

/// The account of `person` in `agency` (member and supervisor), created
/// on first use: e-mail `<slug of the name>.<agency>@ducpho.example`.
pub async fn account(engine: &Engine, agency: &str, person: &str) -> User {
    let slug: String = person
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_lowercase();
    let email = Email::parse(&format!("{slug}.{}@ducpho.example", agency.to_lowercase())).unwrap();
    if let Some(user) = engine.store.user_by_email(&email).await.unwrap() {
        return user;
    }
    let new = NewUser {
        email,
        name: PersonName::parse(person).unwrap(),
        agency: AgencyCode::parse(agency).unwrap(),
        roles: vec![Role::Member, Role::Supervisor],
    };
    engine.add_user(new, operator()).await.unwrap().0
}

/// The operator at this terminal, as CLI account commands record it.
pub fn operator() -> Actor {
    Actor::operator("test", "test")
}

/// The actor of `person`'s account acting from the command line.
pub async fn actor(engine: &Engine, agency: &str, person: &str) -> Actor {
    account(engine, agency, person).await.actor(Channel::Cli {
        os_user: "test".into(),
        host: "test".into(),
    })
}

/// Runs one person's action on a task at the engine's current time, as
/// that person's account.
pub async fn act(
    engine: &Engine,
    task: &str,
    agency: &str,
    person: &str,
    action: TaskAction,
) -> Result<(), EngineError> {
    let command = TaskCommand {
        stamp: engine.stamp(actor(engine, agency, person).await),
        action,
    };
    engine.execute(&key(task), command).await
}

/// The number of stored events.
pub async fn event_count(db: &TestDb) -> i64 {
    let store = kehoach::store::Store::open(&db.db_url())
        .await
        .expect("open test database");
    let n = store.event_count().await.expect("count events");
    store.close().await;
    n
}

/// Every stored event in feed order, once the events committed so far are
/// all readable (see `Store::settle`).
pub async fn all_events(engine: &Engine) -> Vec<kehoach::store::feed::FeedEvent> {
    assert_eq!(
        engine.store.settle(std::time::Duration::from_secs(30)).await.unwrap(),
        None,
        "a writer stayed open"
    );
    engine.store.read_feed(Default::default(), 100_000).await.unwrap()
}

/// A Python with aiosmtpd: `KEHOACH_TEST_PYTHON`, else Debian's (where
/// `python3-aiosmtpd` installs it), else whatever `python3` is.
pub fn python() -> String {
    std::env::var("KEHOACH_TEST_PYTHON").ok().unwrap_or_else(|| {
        if Path::new("/usr/bin/python3").exists() {
            "/usr/bin/python3".into()
        } else {
            "python3".into()
        }
    })
}

/// A real SMTP server we did not write (aiosmtpd) on a free loopback port,
/// storing what it receives in a Maildir. Killed when dropped.
pub struct SmtpServer {
    child: std::process::Child,
    pub port: u16,
    pub maildir: tempfile::TempDir,
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

impl SmtpServer {
    pub fn start() -> Self {
        let maildir = tempfile::tempdir().expect("maildir");
        // aiosmtpd's Mailbox creates the Maildir layout only for a new directory.
        let dir = maildir.path().join("box").to_str().expect("utf-8 path").to_string();
        Self::spawn(&["-c", "aiosmtpd.handlers.Mailbox", &dir], maildir)
    }

    /// A server that answers every RCPT with 550.
    pub fn start_refusing() -> Self {
        Self::spawn(&["-c", "smtp_refuse.Refuse"], tempfile::tempdir().expect("dir"))
    }

    fn spawn(handler: &[&str], maildir: tempfile::TempDir) -> Self {
        let port = free_port();
        let child = std::process::Command::new(python())
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
            .args(handler)
            .env("PYTHONPATH", repo_root().join("tests/support"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start aiosmtpd with {} (run scripts/test-services): {e}",
                    python()
                )
            });
        let mut server = SmtpServer { child, port, maildir };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return server;
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("aiosmtpd exited at start ({status}); is python3-aiosmtpd installed? run scripts/test-services");
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let _ = server.child.kill();
        panic!("aiosmtpd did not listen on port {port}");
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Every message received so far, parsed by Python's `email` package.
    pub fn messages(&self) -> Vec<serde_json::Value> {
        let out = std::process::Command::new(python())
            .arg(repo_root().join("tests/support/parse_eml.py"))
            .arg(self.maildir.path().join("box"))
            .output()
            .expect("run parse_eml.py");
        assert!(
            out.status.success(),
            "parse_eml.py: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout)
            .expect("JSON")
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The binary (`KEHOACH_TEST_BIN` if set, to test a build kept aside),
/// with none of the caller's kehoach settings leaking in.
pub fn bin() -> Command {
    let path = std::env::var_os("KEHOACH_TEST_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_kehoach").into());
    let mut c = Command::new(path);
    for var in [
        "KEHOACH_DB",
        "DATABASE_URL",
        "KEHOACH_NOW",
        "KEHOACH_WORKFLOWS",
        "KEHOACH_CONFIG",
    ] {
        c.env_remove(var);
    }
    c.env("KEHOACH_LOG", "warn").current_dir(repo_root());
    c
}

pub fn kehoach(db: &TestDb, args: &[&str]) -> Output {
    bin()
        .args(["--db", &db.url()])
        .args(args)
        .output()
        .expect("run kehoach")
}

/// Creates an account with `kehoach user add` and returns its e-mail
/// (`<slug of the name>.<agency>@ducpho.example`, as `account` makes it).
pub fn cli_user(db: &TestDb, agency: &str, name: &str, roles: &str) -> String {
    let slug: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_lowercase();
    let email = format!("{slug}.{}@ducpho.example", agency.to_lowercase());
    let out = kehoach(
        db,
        &[
            "user", "add", "--agency", agency, "--name", name, "--email", &email, "--role", roles,
        ],
    );
    assert!(out.status.success(), "user add {email}: {}", stderr(&out));
    email
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// An HTTP response as the tests read it.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// The body as sent (`body` is its lossy text).
    pub bytes: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// One HTTP/1.1 request over a real socket (`Connection: close`), with a
/// small reader for content-length and chunked bodies.
pub async fn http(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    stream.write_all(head.as_bytes()).await.expect("write");
    // A server may refuse before reading the whole body (413).
    let _ = stream.write_all(body).await;
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(30), stream.read_to_end(&mut raw))
        .await
        .expect("response within 30 s");
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> Resp {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("end of headers");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        let mut out = Vec::new();
        let mut rest = &body[..];
        while let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") {
            let size = usize::from_str_radix(String::from_utf8_lossy(&rest[..eol]).trim(), 16).unwrap_or(0);
            if size == 0 {
                break;
            }
            out.extend_from_slice(&rest[eol + 2..eol + 2 + size]);
            rest = &rest[eol + 2 + size + 2..];
        }
        body = out;
    }
    Resp {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
        bytes: body,
    }
}

/// The blocking form of `http` GET, for tests outside a runtime.
pub fn http_get(port: u16, path: &str) -> Resp {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(http(port, "GET", path, &[], b""))
}

/// `kehoach serve` in a new directory holding the shipped plan in
/// ./workflows, on a free port, with `env` set: the directory, the port
/// and the process (its stderr piped).
pub fn serve_in_new_dir(env: &[(&str, &str)]) -> (tempfile::TempDir, u16, std::process::Child) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("workflows")).unwrap();
    std::fs::copy(shipped_plan_path(), dir.path().join("workflows/duc-pho-de-an-13.toml")).unwrap();
    let port = free_port();
    let mut command = bin();
    command
        .args(["serve", "--poll", "0.2"])
        .env("KEHOACH_LISTEN", format!("127.0.0.1:{port}"))
        .env("KEHOACH_BASE_URL", format!("http://127.0.0.1:{port}"))
        .env("KEHOACH_LOG", "info")
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
    if env.iter().any(|(k, _)| *k == "KEHOACH_NOW") {
        // Simulated time needs a simulation store.
        let init = bin()
            .args(["store", "init", "--simulation"])
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(init.status.success(), "store init: {}", stderr(&init));
    }
    let child = command.spawn().unwrap();
    (dir, port, child)
}

/// Waits until `serve` has loaded the shipped plan into `db`; returns the number of tasks.
pub fn wait_until_loaded(db: &Path, child: &mut std::process::Child) -> usize {
    let mut loaded = 0;
    for _ in 0..150 {
        std::thread::sleep(std::time::Duration::from_millis(200));
        if let Some(code) = child.try_wait().unwrap() {
            panic!("serve exited early with {code}");
        }
        let out = bin()
            .args(["--db", db.to_str().unwrap(), "--format", "json", "task", "list"])
            .output()
            .unwrap();
        if out.status.success() {
            loaded = serde_json::from_slice::<serde_json::Value>(&out.stdout)
                .unwrap()
                .as_array()
                .unwrap()
                .len();
            if loaded == 45 {
                break;
            }
        }
    }
    loaded
}

/// The fault-injection SMTP server (`tests/support/smtp_faults.py`): it
/// records every message it accepts as a JSON line and misbehaves as `env`
/// says (`SMTP_REJECT`, `SMTP_REJECT_ALL`, `SMTP_DELAY`). Killed when dropped.
impl SmtpServer {
    pub fn start_faults(env: &[(&str, &str)]) -> Self {
        Self::start_faults_on(free_port(), env)
    }

    /// The same on a given port: a server that comes up where nothing
    /// listened before (an SMTP outage ending).
    pub fn start_faults_on(port: u16, env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("log directory");
        let mut command = std::process::Command::new(python());
        command
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
            .args(["-c", "smtp_faults.Faults"])
            .env("PYTHONPATH", repo_root().join("tests/support"))
            .env("SMTP_LOG", dir.path().join("received.jsonl"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        for (k, v) in env {
            command.env(k, v);
        }
        let child = command.spawn().unwrap_or_else(|e| {
            panic!(
                "cannot start aiosmtpd with {} (run scripts/test-services): {e}",
                python()
            )
        });
        let mut server = SmtpServer {
            child,
            port,
            maildir: dir,
        };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return server;
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("aiosmtpd (smtp_faults) exited at start ({status}); run scripts/test-services");
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let _ = server.child.kill();
        panic!("aiosmtpd (smtp_faults) did not listen on port {port}");
    }

    /// What the fault-injection server accepted, in order: one JSON object
    /// per SMTP transaction (`message_id`, `rcpt_tos`, `subject`, `date`, `at`).
    pub fn received(&self) -> Vec<serde_json::Value> {
        let log = self.maildir.path().join("received.jsonl");
        std::fs::read_to_string(log)
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).expect("a JSON line from smtp_faults.py"))
            .collect()
    }
}

/// The items a digest's plain-text part lists in full, in order: for each,
/// its task ("III.1.2") and its milestone line ("Báo cáo … năm 2024 (phần
/// của …)"), which together name one (task, milestone, obligation).
pub fn digest_items(text: &str) -> Vec<(String, String)> {
    let mut items = Vec::new();
    let mut task = None;
    for line in text.lines() {
        let numbered = line
            .split_once(". [")
            .is_some_and(|(n, _)| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()));
        if numbered {
            task = line
                .split_once("] Nhiệm vụ ")
                .and_then(|(_, rest)| rest.split_once(':'))
                .map(|(id, _)| id.to_string());
        } else if let (Some(t), Some(m)) = (&task, line.trim().strip_prefix("Mốc: ")) {
            items.push((t.clone(), m.to_string()));
            task = None;
        }
    }
    items
}

/// What a digest's plain-text part says it is about in all ("12 phần việc của 7
/// nhiệm vụ"), from its "Tổng cộng: …." line.
pub fn digest_total(text: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix("Tổng cộng: "))
        .map(|t| t.trim_end_matches('.').to_string())
}

/// The review report of `year` as `report review` writes it at `now`.
pub fn review_report(db: &TestDb, now: &str, year: &str) -> String {
    let dir = tempfile::tempdir().expect("temporary directory");
    let out = dir.path().join("review.html");
    let run = kehoach(
        db,
        &[
            "--now",
            now,
            "report",
            "review",
            "--year",
            year,
            "--output",
            out.to_str().expect("utf-8 path"),
        ],
    );
    assert!(run.status.success(), "report review: {}{}", stdout(&run), stderr(&run));
    std::fs::read_to_string(&out).expect("the report file")
}
