//! `serve`: the long-running main job. Loads the plans of the workflows
//! directory, then until Ctrl-C or SIGTERM: keeps the views caught up with
//! the feed, runs the reminder scheduler at each plan's cron time, and
//! delivers queued messages (and retries) every poll interval.

use crate::cli::CliError;
use crate::engine::Engine;
use crate::notification::dispatch::Dispatcher;
use crate::plan::PlanDefinition;
use crate::scheduling;
use chrono::{DateTime, Utc};
use std::path::Path;
use std::time::Duration;

/// The next instant after `now` at which any loaded plan's cron fires:
/// its reminder time, or with `checkpoints` its checkpoint time.
async fn next_tick(engine: &Engine, now: DateTime<Utc>, checkpoints: bool) -> Option<DateTime<Utc>> {
    let plans = engine.store.plan_views().await.ok()?;
    plans
        .iter()
        .filter_map(|p| p.plan.header.as_ref())
        .filter_map(|h| {
            let cron = if checkpoints {
                &h.checkpoint_at
            } else {
                &h.reminders.send_at
            };
            scheduling::fire_times(cron, h.tz(), now, now + chrono::Duration::days(400))
                .first()
                .copied()
        })
        .min()
}

async fn checkpoint(engine: &Engine) {
    match engine.checkpoint().await {
        Ok(c) => tracing::info!(root = %c.root, events = c.events, "đã ghi điểm kiểm"),
        Err(e) => tracing::error!(error = %e, "không ghi được điểm kiểm"),
    }
}

async fn reminders(engine: &Engine, dispatcher: &Dispatcher, schedule: bool) {
    let now = engine.clock.now();
    if schedule {
        match scheduling::schedule(engine, now).await {
            Ok(q) => tracing::info!(queued = q.len(), "đã chạy bộ lập lịch nhắc việc"),
            Err(e) => tracing::error!(error = %e, "bộ lập lịch nhắc việc lỗi; sẽ chạy lại ở lần sau"),
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

pub async fn run(
    engine: Engine,
    base_url: &str,
    dispatcher: Dispatcher,
    listener: tokio::net::TcpListener,
    workflows: &Path,
    poll: Duration,
    prefer_files: bool,
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
    tracing::info!(
        applied = first.applied,
        total = first.total,
        db = engine.store.kind(),
        "khung nhìn đã cập nhật; kehoach đang chạy (Ctrl-C để dừng)"
    );

    tracing::info!(transport = %dispatcher.transport.describe(), "gửi thư qua");
    // The HTTP server stops with the rest: it is told when the loop ends.
    let (stopped, mut stop) = tokio::sync::watch::channel(false);
    let app = crate::web::router(crate::web::AppState::new(engine.clone(), base_url));
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
    let mut ticker = tokio::time::interval(poll);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let shutdown = shutdown.wait();
    tokio::pin!(shutdown);
    // Points missed while the engine was down are caught by a first pass now.
    let mut schedule_now = true;
    loop {
        let now = engine.clock.now();
        let until =
            |t: Option<DateTime<Utc>>| t.map_or(Duration::from_secs(3600), |t| (t - now).to_std().unwrap_or_default());
        let wait = until(next_tick(&engine, now, false).await);
        let wait_checkpoint = until(next_tick(&engine, now, true).await);
        // Every step races the stop signal: a pass cut short is safe, each
        // command being atomic and every pass idempotent.
        tokio::select! {
            _ = &mut shutdown => break,
            _ = async {
                if schedule_now {
                    reminders(&engine, &dispatcher, true).await;
                    schedule_now = false;
                    return;
                }
                tokio::select! {
                    _ = tokio::time::sleep(wait) => reminders(&engine, &dispatcher, true).await,
                    _ = tokio::time::sleep(wait_checkpoint) => checkpoint(&engine).await,
                    _ = ticker.tick() => match crate::projections::catch_up(&engine.store).await {
                        Ok(c) => {
                            if c.applied > 0 {
                                tracing::info!(applied = c.applied, "khung nhìn đã cập nhật");
                            }
                            reminders(&engine, &dispatcher, false).await;
                        }
                        // A database hiccup must not stop the engine: the checkpoint
                        // did not move, so the next tick retries the same events.
                        Err(e) => tracing::error!(error = %e, "cập nhật khung nhìn thất bại; sẽ thử lại"),
                    },
                }
            } => {}
        }
    }
    tracing::info!("đang dừng");
    let _ = stopped.send(true);
    let _ = web.await;
    engine.store.close().await;
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
