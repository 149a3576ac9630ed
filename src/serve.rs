//! `serve`: the long-running main job. Loads the plans of the workflows
//! directory, then keeps the views caught up with the feed until Ctrl-C or
//! SIGTERM. The scheduler and the web server join it in later issues.

use crate::cli::CliError;
use crate::engine::Engine;
use std::path::Path;
use std::time::Duration;

pub async fn run(engine: Engine, workflows: &Path, poll: Duration) -> Result<(), CliError> {
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

    let mut ticker = tokio::time::interval(poll);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            _ = ticker.tick() => match crate::projections::catch_up(&engine.store).await {
                Ok(c) if c.applied > 0 => tracing::info!(applied = c.applied, "khung nhìn đã cập nhật"),
                Ok(_) => {}
                // A database hiccup must not stop the engine: the checkpoint
                // did not move, so the next tick retries the same events.
                Err(e) => tracing::error!(error = %e, "cập nhật khung nhìn thất bại; sẽ thử lại"),
            },
        }
    }
    tracing::info!("đang dừng");
    engine.store.close().await;
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
