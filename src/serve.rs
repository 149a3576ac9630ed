//! `serve`: the long-running main job. Loads the plans of the workflows
//! directory, then until Ctrl-C or SIGTERM: keeps the views caught up with
//! the feed, runs the reminder scheduler at each plan's cron time, and
//! delivers queued messages (and retries) every poll interval.

use crate::cli::CliError;
use crate::engine::Engine;
use crate::notification::dispatch::Dispatcher;
use crate::plan::PlanDefinition;
use crate::scheduling;
use crate::scheduling::passes::{Ledger, Owed};
use chrono::{DateTime, Utc};
use std::path::Path;
use std::time::Duration;

/// The reminder and checkpoint cron of each loaded plan, kept from the last
/// time the database answered.
#[derive(Default)]
struct Passes {
    ledger: Ledger,
    plans: Vec<(String, String, String, chrono_tz::Tz)>,
}

/// A pass owed now: its ledger name, since when, and the last cron time it covers.
struct Due {
    name: String,
    due: DateTime<Utc>,
    covers: DateTime<Utc>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Reminders,
    Checkpoint,
}

impl Kind {
    fn name(self, plan: &str) -> String {
        match self {
            Kind::Reminders => format!("reminders/{plan}"),
            Kind::Checkpoint => format!("checkpoint/{plan}"),
        }
    }

    fn label(self) -> &'static str {
        match self {
            Kind::Reminders => "lượt nhắc việc",
            Kind::Checkpoint => "lượt ghi điểm kiểm",
        }
    }
}

impl Passes {
    async fn refresh(&mut self, engine: &Engine) {
        match engine.store.plan_views().await {
            Ok(views) => {
                self.plans = views
                    .iter()
                    .filter_map(|p| {
                        let h = p.plan.header.as_ref()?;
                        Some((
                            p.id.clone(),
                            h.reminders.send_at.clone(),
                            h.checkpoint_at.clone(),
                            h.tz(),
                        ))
                    })
                    .collect();
            }
            Err(e) => tracing::warn!(error = %e, "không đọc được danh sách kế hoạch; dùng danh sách đã biết"),
        }
    }

    /// The passes of `kind` owed at `now`, and the next instant one will be.
    fn owed(&self, kind: Kind, now: DateTime<Utc>) -> (Vec<Due>, Option<DateTime<Utc>>) {
        let mut due = Vec::new();
        let mut next: Option<DateTime<Utc>> = None;
        for (plan, send_at, checkpoint_at, tz) in &self.plans {
            let name = kind.name(plan);
            let cron = if kind == Kind::Reminders {
                send_at
            } else {
                checkpoint_at
            };
            match self.ledger.owed(&name, cron, *tz, now) {
                Owed::Due { due: at, covers } => due.push(Due { name, due: at, covers }),
                Owed::NotYet(at) => next = Some(next.map_or(at, |n| n.min(at))),
                Owed::Never => {}
            }
        }
        (due, next)
    }

    /// A checkpoint never recorded starts its ledger at `now` rather than
    /// running at once (a reminder pass never run runs at once: it catches
    /// up on points missed before).
    async fn begin_checkpoints(&mut self, engine: &Engine, now: DateTime<Utc>) {
        let new: Vec<String> = self
            .plans
            .iter()
            .map(|(plan, ..)| Kind::Checkpoint.name(plan))
            .filter(|name| !self.ledger.knows(name))
            .collect();
        for name in new {
            if let Err(e) = self
                .ledger
                .complete(&engine.store, &name, now, now, chrono::Duration::zero())
                .await
            {
                tracing::warn!(pass = %name, error = %e, "không ghi được sổ các lượt chạy; sẽ ghi ở lượt sau");
            }
        }
    }

    /// Records the passes run at `now` as completed and says which were late.
    async fn completed(&mut self, engine: &Engine, kind: Kind, done: &[Due], now: DateTime<Utc>) {
        for d in done {
            let late = now - d.due;
            if late > chrono::Duration::seconds(LATE_AFTER_SECONDS) {
                tracing::warn!(
                    pass = %d.name,
                    due = %d.due.to_rfc3339(),
                    late_seconds = late.num_seconds(),
                    "{} chạy trễ (đã đến hạn từ {}); chạy một lần cho mọi lần đã lỡ",
                    kind.label(),
                    d.due.to_rfc3339()
                );
            }
            if let Err(e) = self.ledger.complete(&engine.store, &d.name, d.covers, now, late).await {
                tracing::warn!(pass = %d.name, error = %e, "không ghi được sổ các lượt chạy; sẽ ghi ở lượt sau");
            }
        }
    }
}

/// A pass that starts this many seconds after its cron time says so in the log.
const LATE_AFTER_SECONDS: i64 = 60;

async fn checkpoint(engine: &Engine) -> bool {
    match engine.checkpoint().await {
        Ok(c) => {
            tracing::info!(root = %c.root, events = c.events, "đã ghi điểm kiểm");
            true
        }
        Err(e) => {
            tracing::error!(error = %e, "không ghi được điểm kiểm; sẽ thử lại");
            false
        }
    }
}

/// A scheduling pass (when `schedule`) and a delivery pass. True when the
/// scheduling pass completed (delivery failures are retried by the outbox).
async fn reminders(engine: &Engine, dispatcher: &Dispatcher, schedule: bool) -> bool {
    let now = engine.clock.now();
    if schedule {
        match scheduling::schedule(engine, now).await {
            Ok(q) => tracing::info!(queued = q.len(), "đã chạy bộ lập lịch nhắc việc"),
            Err(e) => {
                // No delivery either: a digest formed now would hold only
                // the part of the day's items queued before the failure.
                tracing::error!(error = %e, "bộ lập lịch nhắc việc lỗi; sẽ chạy lại ngay khi được");
                return false;
            }
        }
    }
    match dispatcher.dispatch(engine, now).await {
        Ok(sent) if !sent.is_empty() => {
            let ok = sent.iter().filter(|s| s.ok).count();
            tracing::info!(sent = ok, failed = sent.len() - ok, "đã gửi thư");
        }
        Ok(_) => {}
        Err(e) => tracing::error!(error = %e, "gửi thư lỗi; sẽ thử lại"),
    }
    true
}

/// One round of the loop: the passes owed now (each once, however late),
/// else a catch-up of the views and a delivery pass. Returns the next
/// instant a pass will be owed.
async fn round(engine: &Engine, dispatcher: &Dispatcher, passes: &mut Passes) -> Option<DateTime<Utc>> {
    passes.refresh(engine).await;
    let now = engine.clock.now();
    let (due, next_reminders) = passes.owed(Kind::Reminders, now);
    let delivered = !due.is_empty();
    if delivered && reminders(engine, dispatcher, true).await {
        passes.completed(engine, Kind::Reminders, &due, now).await;
    }
    passes.begin_checkpoints(engine, now).await;
    let (due, next_checkpoint) = passes.owed(Kind::Checkpoint, now);
    if !due.is_empty() && checkpoint(engine).await {
        passes.completed(engine, Kind::Checkpoint, &due, now).await;
    }
    if !delivered {
        match crate::projections::catch_up(&engine.store).await {
            Ok(c) => {
                if c.applied > 0 {
                    tracing::info!(applied = c.applied, "khung nhìn đã cập nhật");
                }
                reminders(engine, dispatcher, false).await;
            }
            // A database hiccup must not stop the engine: the checkpoint
            // did not move, so the next round retries the same events.
            Err(e) => tracing::error!(error = %e, "cập nhật khung nhìn thất bại; sẽ thử lại"),
        }
    }
    [next_reminders, next_checkpoint].into_iter().flatten().min()
}

/// Names, in one log line, a writer still open that holds the views back
/// (PostgreSQL), again at most every few minutes while it lasts, and says
/// once when it has ended (`store::feed::say_held_back`).
async fn watch_feed(store: &crate::store::Store) {
    // Writers commit within milliseconds; one seen open for longer than
    // this is worth a line.
    const OPEN_FOR: chrono::Duration = chrono::Duration::seconds(5);
    match store.feed_lag().await {
        Ok(lag) => match &lag.blocker {
            Some(b) if b.since.is_some_and(|t| chrono::Utc::now() - t >= OPEN_FOR) => {
                crate::store::feed::say_held_back(b, Some(lag.unseen))
            }
            Some(_) => {}
            None => crate::store::feed::say_released(),
        },
        Err(e) => tracing::debug!(error = %e, "không đọc được độ trễ của dòng sự kiện"),
    }
}

/// Held by the one `serve` of a SQLite file for as long as it runs. SQLite
/// has no advisory locks that outlive a transaction, and two processes
/// delivering from one file would send every digest twice; the lock is an
/// `flock` on a file beside the database, which the kernel releases when the
/// process ends, however it ends (even `kill -9`), so it never goes stale.
pub struct ServeLock {
    _file: std::fs::File,
}

/// Takes the serve lock of the SQLite database at `db`, or says which
/// process-wide condition prevents it, in one line.
pub fn lock_sqlite(db: &Path) -> Result<ServeLock, CliError> {
    use std::os::unix::io::AsRawFd;
    let mut name = db.as_os_str().to_owned();
    name.push(".serve-lock");
    let path = std::path::PathBuf::from(name);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| CliError::Input(format!("không tạo được thư mục {}: {e}", dir.display())))?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| CliError::Input(format!("không mở được tệp khóa {}: {e}", path.display())))?;
    // SAFETY: flock on a descriptor we own, for as long as `file` lives.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        return Err(CliError::Input(format!(
            "đã có một tiến trình serve khác đang chạy trên {} (khóa {}); mỗi tệp SQLite chỉ chạy một serve — dùng PostgreSQL để chạy nhiều tiến trình",
            db.display(),
            path.display()
        )));
    }
    Ok(ServeLock { _file: file })
}

/// Whether the plan in force differs from `file` and was loaded after the
/// file was last written (for example uploaded on the web): then it is kept,
/// and the log says so. One source of truth: a restart never silently
/// reverts a later load; `serve --prefer-files` loads the files anyway.
async fn keeps_newer_plan_in_force(engine: &Engine, plan: &PlanDefinition, file: &Path) -> Result<bool, CliError> {
    engine.catch_up().await?;
    let views = engine.store.plan_views().await?;
    let Some(in_force) = views.iter().find(|v| v.id == plan.id().as_str()) else {
        return Ok(false);
    };
    let (Some(source), Some(loaded)) = (&in_force.plan.source, &in_force.plan.loaded) else {
        return Ok(false);
    };
    if source.sha256 == plan.source.sha256 {
        return Ok(false);
    }
    let written: Option<DateTime<Utc>> = std::fs::metadata(file)
        .and_then(|m| m.modified())
        .ok()
        .map(DateTime::<Utc>::from);
    let newer_in_force = written.is_none_or(|w| loaded.at > w);
    if newer_in_force {
        tracing::warn!(
            plan = %plan.id(),
            file = %file.display(),
            in_force = %source.file,
            sha256 = %source.sha256,
            loaded_by = %loaded.by,
            loaded_at = %loaded.at.to_rfc3339(),
            "kế hoạch đang có hiệu lực khác tệp và được nạp sau khi tệp được sửa; giữ kế hoạch đang có hiệu lực (chạy serve --prefer-files để nạp lại từ tệp)"
        );
    } else {
        tracing::warn!(
            plan = %plan.id(),
            file = %file.display(),
            in_force = %source.file,
            loaded_by = %loaded.by,
            "tệp kế hoạch mới hơn kế hoạch đang có hiệu lực; nạp từ tệp"
        );
    }
    Ok(newer_in_force)
}

#[allow(clippy::too_many_arguments)]
pub async fn run(
    engine: Engine,
    base_url: &str,
    dispatcher: Dispatcher,
    listener: tokio::net::TcpListener,
    workflows: &Path,
    poll: Duration,
    prefer_files: bool,
    grace: Duration,
    security: crate::config::SecuritySettings,
    mailer: Option<crate::notification::account_mail::AccountMailer>,
) -> Result<(), CliError> {
    let engine = std::sync::Arc::new(engine);
    let shutdown = Shutdown::listen().map_err(|e| CliError::Input(format!("không đăng ký được tín hiệu dừng: {e}")))?;
    let files = crate::plan::files_in(workflows)
        .map_err(|e| CliError::Input(format!("không đọc được thư mục kế hoạch {}: {e}", workflows.display())))?;
    if files.is_empty() {
        tracing::warn!(dir = %workflows.display(), "không có tệp kế hoạch nào để nạp");
    }
    for file in &files {
        let plan = crate::plan::parse_file(file).map_err(|diags| {
            for d in &diags {
                eprintln!("{d}");
            }
            CliError::Invalid(format!("{}: {} lỗi; sửa tệp rồi chạy lại", file.display(), diags.len()))
        })?;
        if !prefer_files && keeps_newer_plan_in_force(&engine, &plan, file).await? {
            continue;
        }
        let report = engine.load_plan(&plan).await?;
        tracing::info!(plan = %report.plan, tasks = report.tasks, milestones = report.milestones, new_events = report.events_written, file = %file.display(), "đã nạp kế hoạch");
    }
    let first = engine.catch_up().await?;
    let now = engine.clock.now();
    for view in engine.store.plan_views().await? {
        if let Some(h) = &view.plan.header {
            if let Some(warning) = h.calendar_warning(crate::domain::dates::local_date(now, h.tz())) {
                tracing::warn!("{warning}");
            }
        }
    }
    tracing::info!(
        applied = first.applied,
        total = first.total,
        db = engine.store.kind(),
        "khung nhìn đã cập nhật; kehoach đang chạy (Ctrl-C để dừng)"
    );

    tracing::info!(transport = %dispatcher.transport.describe(), "gửi thư qua");
    // The HTTP server stops with the rest: it is told when the loop ends.
    let (stopped, mut stop) = tokio::sync::watch::channel(false);
    let mut state = crate::web::AppState::new(engine.clone(), base_url).with_security(security);
    if let Some(mailer) = mailer {
        state = state.with_mailer(mailer);
    }
    let app = crate::web::router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    let address = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
    tracing::info!(address = %format!("http://{address}"), "máy chủ web đang nghe");
    let web = tokio::spawn(async move {
        let graceful = async move {
            let _ = stop.changed().await;
        };
        if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(graceful).await {
            tracing::error!(error = %e, "máy chủ web dừng vì lỗi");
        }
    });
    // The feed's watcher: every second, on its own, so that a long round
    // does not delay the line that names a writer holding the views back.
    let watched = engine.store.clone();
    let mut watcher_stop = stopped.subscribe();
    tokio::spawn(async move {
        loop {
            watch_feed(&watched).await;
            tokio::select! {
                _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                _ = watcher_stop.changed() => return,
            }
        }
    });
    // The stop signal: the loop stops taking work; a round in flight (a
    // delivery, a pass) is given `grace` to finish and be recorded.
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let flag = dispatcher.stop.clone();
    tokio::spawn(async move {
        shutdown.wait().await;
        flag.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = stop_tx.send(true);
    });
    let mut passes = Passes {
        ledger: match Ledger::load(&engine.store).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "không đọc được sổ các lượt chạy; coi như chưa chạy lượt nào");
                Ledger::default()
            }
        },
        plans: vec![],
    };
    let mut unfinished = false;
    loop {
        if *stop_rx.borrow() {
            break;
        }
        let work = round(&engine, &dispatcher, &mut passes);
        tokio::pin!(work);
        let next = tokio::select! {
            next = &mut work => next,
            _ = stop_rx.wait_for(|s| *s) => {
                tracing::info!(grace_seconds = grace.as_secs_f64(), "nhận tín hiệu dừng; chờ việc đang làm ghi xong kết quả");
                if tokio::time::timeout(grace, &mut work).await.is_err() {
                    unfinished = true;
                }
                break;
            }
        };
        let now = engine.clock.now();
        let wait = next.map_or(poll, |n| (n - now).to_std().unwrap_or_default().min(poll));
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop_rx.wait_for(|s| *s) => break,
        }
    }
    tracing::info!("đang dừng");
    let _ = stopped.send(true);
    let _ = web.await;
    engine.store.close().await;
    if unfinished {
        // Nothing is lost: what was not recorded is still queued, and the
        // next start sends it again under the same Message-ID.
        return Err(CliError::Unfinished(format!(
            "đã dừng khi việc đang làm chưa xong sau {} giây; việc dở vẫn nằm trong hàng đợi và sẽ được làm lại khi chạy lại",
            grace.as_secs()
        )));
    }
    Ok(())
}

/// Ctrl-C and SIGTERM, registered as soon as `serve` starts so that a
/// signal during start-up is not lost (or fatal).
struct Shutdown {
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
}

impl Shutdown {
    fn listen() -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(Self {
                int: signal(SignalKind::interrupt())?,
                term: signal(SignalKind::terminate())?,
            })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    async fn wait(mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    }
}
