//! A store on a PostgreSQL server shared with other databases and other
//! applications: a transaction left open elsewhere holds nothing back; a
//! writer of this store left open holds back only what was written after
//! it, says so (in `/health`, in one log line of `serve`, in `audit
//! verify`), loses nothing and catches up when it ends.

use crate::helpers::*;
use serde_json::Value;
use sqlx::Connection;

/// A session left idle in a transaction that holds a transaction id, as a
/// stuck client or a forgotten `psql` leaves it; `writer` makes it hold the
/// lock every writer of kehoach's events holds (a kehoach writer that hangs
/// between its first write and its commit). Dropped: the session ends.
struct OpenTransaction {
    conn: sqlx::PgConnection,
    pid: i32,
}

impl OpenTransaction {
    async fn open(url: &str, writer: bool) -> Self {
        let mut conn = sqlx::PgConnection::connect(url).await.expect("connect");
        sqlx::query("BEGIN").execute(&mut conn).await.unwrap();
        if writer {
            // What `store::feed::begin_writing` takes.
            sqlx::query("SELECT pg_advisory_xact_lock_shared(1801807983, 19)")
                .execute(&mut conn)
                .await
                .unwrap();
        }
        sqlx::query("SELECT pg_current_xact_id()")
            .execute(&mut conn)
            .await
            .unwrap();
        let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        OpenTransaction { conn, pid }
    }

    /// Still open, idle in its transaction, with its id.
    async fn still_open(&self, admin: &str) -> bool {
        let mut c = sqlx::PgConnection::connect(admin).await.unwrap();
        let state: Option<String> =
            sqlx::query_scalar("SELECT state FROM pg_stat_activity WHERE pid = $1 AND backend_xid IS NOT NULL")
                .bind(self.pid)
                .fetch_optional(&mut c)
                .await
                .unwrap();
        state.as_deref() == Some("idle in transaction")
    }

    async fn end(mut self) {
        sqlx::query("ROLLBACK").execute(&mut self.conn).await.unwrap();
        self.conn.close().await.unwrap();
    }
}

fn ok(out: &std::process::Output, what: &str) -> String {
    assert!(out.status.success(), "{what}: {}{}", stdout(out), stderr(out));
    stdout(out)
}

/// The first task (other than `not`) that `agency` implements, with its
/// first open milestone.
fn task_of(db: &TestDb, agency: &str, not: Option<&str>) -> (String, String) {
    let out = kehoach(db, &["--format", "json", "task", "list", "--agency", agency]);
    let list: Value = serde_json::from_str(&ok(&out, "task list")).unwrap();
    list.as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["id"].as_str())
        .filter(|id| Some(*id) != not)
        .find_map(|id| {
            let shown: Value = serde_json::from_str(&notes_of(db, id)).unwrap();
            let open = shown["milestones"].as_array()?.iter().find(|m| m["status"] == "open")?;
            Some((id.to_string(), open["id"].as_str()?.to_string()))
        })
        .expect("a task with an open milestone")
}

/// `task report` on a milestone, in a process of its own. A conflict (exit
/// 4: `serve` wrote reminders to the same task in between) is answered as a
/// person would, by trying again.
fn report(
    db: &TestDb,
    (task, milestone): &(String, String),
    email: &str,
    note: &str,
) -> std::thread::JoinHandle<std::process::Output> {
    let (url, task, milestone, email, note) = (
        db.url(),
        task.clone(),
        milestone.clone(),
        email.to_string(),
        note.to_string(),
    );
    std::thread::spawn(move || {
        let mut tries = 0;
        loop {
            let out = bin()
                .args(["--db", &url, "task", "report", &task, "--milestone", &milestone])
                .args(["--user", &email, "--note", &note])
                .output()
                .expect("run kehoach");
            tries += 1;
            if out.status.code() != Some(4) || tries == 5 {
                return out;
            }
        }
    })
}

/// `http_get` from inside the test's runtime.
async fn health(port: u16) -> Resp {
    http(port, "GET", "/health", &[], b"").await
}

/// Polls `/health` until `done` holds (30 s at most).
async fn wait_for(port: u16, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    for _ in 0..300 {
        let h = health(port).await;
        if h.status == 200 {
            last = h.json();
            if done(&last) {
                return last;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{what}: /health says {last}");
}

fn caught_up(h: &Value) -> bool {
    h["views_behind"] == 0 && h["unseen"] == 0 && h["held_back_by"].is_null()
}

fn notes_of(db: &TestDb, task: &str) -> String {
    ok(&kehoach(db, &["--format", "json", "task", "show", task]), "task show")
}

/// The reports the views count on `agency`'s part of the milestone.
fn reports_in_views(db: &TestDb, (task, milestone): &(String, String), agency: &str) -> i64 {
    let shown: Value = serde_json::from_str(&notes_of(db, task)).unwrap();
    let m = shown["milestones"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == milestone.as_str())
        .unwrap();
    let o = m["obligations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["agency"] == agency)
        .unwrap();
    o["reports"].as_i64().unwrap()
}

/// Whether the task's history (read from its events) holds the note.
fn in_history(db: &TestDb, task: &str, note: &str) -> bool {
    ok(
        &kehoach(db, &["--format", "json", "audit", "history", task]),
        "audit history",
    )
    .contains(note)
}

/// Everything a new office does, with a transaction held open in another
/// database of the server the whole time: it never gets in the way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_open_in_another_database_holds_nothing_back() {
    let admin = pg_admin_url();
    let elsewhere = OpenTransaction::open(&admin, false).await;
    let db = TestDb::production("postgres").await;

    ok(&kehoach(&db, &["store", "init", "--simulation"]), "store init");
    ok(
        &kehoach(&db, &["plan", "load", shipped_plan_path().to_str().unwrap()]),
        "plan load",
    );
    let ubnd = cli_user(&db, "UBND", "Nguyễn Văn Ủy", "member");
    let mttq = cli_user(&db, "MTTQ", "Trần Thị Mặt", "member");
    // A command right after the load sees the plan (its view caught up).
    let first = task_of(&db, "UBND", None);
    let second = task_of(&db, "MTTQ", Some(&first.0));
    // Commands from two processes at once.
    let a = report(&db, &first, &ubnd, "báo cáo của UBND");
    let b = report(&db, &second, &mttq, "báo cáo của MTTQ");
    ok(&a.join().unwrap(), "report from the first process");
    ok(&b.join().unwrap(), "report from the second process");
    assert_eq!(reports_in_views(&db, &first, "UBND"), 1);
    assert_eq!(reports_in_views(&db, &second, "MTTQ"), 1);
    assert!(in_history(&db, &first.0, "báo cáo của UBND"));
    assert!(in_history(&db, &second.0, "báo cáo của MTTQ"));
    // The scheduler and the dispatcher, to a real SMTP server.
    let smtp = SmtpServer::start();
    let out = bin()
        .args([
            "--db",
            &db.url(),
            "--now",
            "2024-03-25T08:00:00+07:00",
            "remind",
            "--once",
        ])
        .env("KEHOACH_SMTP_URL", smtp.url())
        .env("KEHOACH_MAIL_FROM", "kehoach@ducpho.example")
        .env("KEHOACH_BASE_URL", "http://kehoach.example")
        .output()
        .unwrap();
    ok(&out, "remind");
    assert!(!smtp.messages().is_empty(), "the reminder pass delivered");
    ok(&kehoach(&db, &["audit", "checkpoint"]), "audit checkpoint");
    let out = kehoach(&db, &["audit", "verify"]);
    let said = ok(&out, "audit verify");
    assert!(said.starts_with("Hợp lệ"), "{said}");
    assert!(said.contains(" 1 điểm kiểm"), "the checkpoint is seen: {said}");

    assert!(
        elsewhere.still_open(&admin).await,
        "the other database's transaction stayed open for the whole test"
    );
    elsewhere.end().await;
}

/// A writer of this very store left open: what was committed after it waits
/// (nothing lost), `/health` and one line of `serve`'s log name it,
/// `audit verify` checks every committed event and says which the views
/// have not applied yet and why (never as tampering), and everything
/// catches up when it ends. A plain transaction
/// open in the same database, meanwhile, holds nothing back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_left_open_in_the_same_database_is_named_and_waited_for() {
    let db = TestDb::production("postgres").await;
    let url = db.url();
    let plain = OpenTransaction::open(&url, false).await;
    let smtp = SmtpServer::start();
    let (_dir, port, mut child) = serve_in_new_dir(&[
        ("KEHOACH_DB", url.as_str()),
        ("KEHOACH_SMTP_URL", &smtp.url()),
        ("KEHOACH_MAIL_FROM", "kehoach@ducpho.example"),
    ]);
    // serve's log, as it comes.
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let reader = {
        let log = log.clone();
        let mut stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = std::io::Read::read(&mut stderr, &mut buf) {
                if n == 0 {
                    break;
                }
                log.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        })
    };
    for _ in 0..300 {
        let out = kehoach(&db, &["--format", "json", "task", "list"]);
        if out.status.success()
            && serde_json::from_slice::<Value>(&out.stdout)
                .unwrap()
                .as_array()
                .unwrap()
                .len()
                == 45
        {
            break;
        }
        assert!(child.try_wait().unwrap().is_none(), "serve stopped");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let ubnd = cli_user(&db, "UBND", "Nguyễn Văn Ủy", "member");
    let task = task_of(&db, "UBND", None);

    // The plain transaction in the same database: nothing waits for it.
    ok(&report(&db, &task, &ubnd, "trước").join().unwrap(), "report");
    wait_for(port, "a report with a plain transaction open", caught_up).await;
    let out = kehoach(&db, &["audit", "verify"]);
    assert!(ok(&out, "audit verify").starts_with("Hợp lệ"));

    // A writer that hangs.
    let stuck = OpenTransaction::open(&url, true).await;
    let out = report(&db, &task, &ubnd, "trong lúc chờ").join().unwrap();
    ok(&out, "a report while a writer hangs is recorded");
    let h = wait_for(port, "/health names the writer", |h| h["unseen"].as_i64() >= Some(1)).await;
    assert_eq!(h["held_back_by"]["pid"], stuck.pid, "{h}");
    assert!(h["views_behind"].as_i64() >= Some(1), "{h}");
    assert!(
        h["held_back"]
            .as_str()
            .unwrap()
            .contains(&format!("pg_terminate_backend({})", stuck.pid)),
        "{h}"
    );
    // Its report is not in the views yet, and is not lost.
    assert_eq!(reports_in_views(&db, &task, "UBND"), 1);
    assert!(in_history(&db, &task.0, "trong lúc chờ"));
    // verify checks every committed event, says which the views have not
    // applied yet and why, and passes: nothing is wrong with the store.
    let out = kehoach(&db, &["audit", "verify"]);
    let said = ok(&out, "audit verify while a writer hangs");
    assert!(said.starts_with("Hợp lệ"), "{said}");
    assert!(
        said.contains("khung nhìn chưa áp dụng") && said.contains(&format!("pg_terminate_backend({})", stuck.pid)),
        "{said}"
    );
    // The export holds it too, and its header counts what it holds.
    let export = ok(&kehoach(&db, &["audit", "export"]), "audit export");
    let lines: Vec<Value> = export.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let events = lines.iter().filter(|l| l["kind"] == "event").count();
    assert_eq!(lines[0]["events"], events, "the header's count");
    assert!(export.contains("trong lúc chờ"), "the export has the waiting report");
    // serve has had many rounds meanwhile.
    std::thread::sleep(std::time::Duration::from_secs(2));

    let stuck_pid = stuck.pid;
    stuck.end().await;
    wait_for(port, "catching up once the writer ended", caught_up).await;
    assert_eq!(reports_in_views(&db, &task, "UBND"), 2, "nothing was lost");
    let out = kehoach(&db, &["audit", "verify"]);
    assert!(ok(&out, "audit verify after").starts_with("Hợp lệ"));
    assert!(
        plain.still_open(&url).await,
        "the plain transaction stayed open throughout"
    );
    plain.end().await;

    // One log line for the whole wait, and one when it ended (serve looks
    // every second).
    let ended = "giao dịch giữ khung nhìn đã kết thúc";
    for _ in 0..300 {
        if log.lock().unwrap().contains(ended) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    reader.join().unwrap();
    let log = log.lock().unwrap().clone();
    let named = format!("pg_terminate_backend({stuck_pid})");
    assert_eq!(log.matches(&named).count(), 1, "one line naming the writer:\n{log}");
    assert_eq!(log.matches(ended).count(), 1, "one line when it ended:\n{log}");
    drop(smtp);
}
