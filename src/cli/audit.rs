//! `audit checkpoint`, `audit verify`, `audit export`.

use super::args::{AuditCommand, Format};
use super::output::print_json;
use super::{CliError, Context};
use crate::audit::{export, verify};
use serde_json::json;

pub async fn run(ctx: &Context, cmd: AuditCommand) -> Result<(), CliError> {
    let cmd = match cmd {
        AuditCommand::History { task, as_of, plan } => return super::history::history(ctx, task, as_of, plan).await,
        AuditCommand::Plan { as_of, since } => return super::history::plan(ctx, as_of, since).await,
        other => other,
    };
    let engine = ctx.engine().await?;
    let result = match cmd {
        AuditCommand::Checkpoint => {
            let r = engine.checkpoint().await?;
            match ctx.format {
                Format::Json => print_json(&r),
                _ => println!(
                    "Đã ghi điểm kiểm: gốc {} trên {} sự kiện của {} chuỗi.",
                    r.root, r.events, r.aggregates
                ),
            }
            Ok(())
        }
        AuditCommand::Verify {
            kept: roots,
            kept_files,
        } => {
            // Malformed roots are bad input, found before the store is read.
            let mut kept = Vec::new();
            for root in &roots {
                kept.push(verify::parse_root(root).map_err(|e| CliError::Input(e.to_string()))?);
            }
            for file in &kept_files {
                kept.extend(verify::read_roots(file).map_err(|e| CliError::Input(e.to_string()))?);
            }
            let total = engine.store.event_count().await?.max(0) as u64;
            let bar = indicatif::ProgressBar::new(total);
            bar.set_style(
                indicatif::ProgressStyle::with_template("kiểm tra [{bar:30}] {pos}/{len} sự kiện ({per_sec})")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            let outcome = verify::verify_keeping(&engine.store, &kept, |n| bar.set_position(n)).await?;
            bar.finish_and_clear();
            match outcome {
                Ok(s) => {
                    match ctx.format {
                        Format::Json => print_json(&json!({ "ok": true, "summary": s })),
                        _ => println!(
                            "Hợp lệ: {} sự kiện trong {} chuỗi ({} nhiệm vụ), {} điểm kiểm, {} khung nhìn khớp, {} dòng hộp thư đi, {} dòng chỉ mục hạn và {} dòng chỉ mục danh sách khớp, {} tài khoản khớp bảng người dùng, {} tệp minh chứng khớp mã băm, {} văn bản gốc của kế hoạch khớp mã băm, {} gốc đã lưu khớp; {}.{}",
                            s.events,
                            s.chains,
                            s.tasks,
                            s.checkpoints,
                            s.views,
                            s.outbox_rows,
                            s.due_rows,
                            s.list_rows,
                            s.accounts,
                            s.files,
                            s.documents,
                            s.kept_roots,
                            s.store,
                            s.last_root
                                .as_ref()
                                .map(|r| format!(" Gốc gần nhất: {r}"))
                                .unwrap_or_default()
                        ),
                    }
                    if s.accounts_unrecorded > 0 && ctx.format != Format::Json {
                        println!(
                            "{} người dùng từ bản trước chưa có lịch sử tài khoản; lệnh ghi tiếp theo (hoặc `serve`) sẽ ghi nhận họ.",
                            s.accounts_unrecorded
                        );
                    }
                    if s.unseen > 0 && ctx.format != Format::Json {
                        let why = match &s.unseen_because {
                            Some(b) => format!("vì {}", crate::store::feed::held_back(b)),
                            None => "khung nhìn sẽ áp dụng chúng ở lượt cập nhật kế tiếp.".into(),
                        };
                        println!(
                            "{} sự kiện ghi sau điểm kiểm của khung nhìn: chuỗi băm của chúng đã kiểm và hợp lệ, khung nhìn chưa áp dụng chúng nên chưa đối chiếu được; {why}",
                            s.unseen
                        );
                    }
                    Ok(())
                }
                Err(p) => {
                    if ctx.format == Format::Json {
                        print_json(&json!({ "ok": false, "problem": p }));
                    }
                    Err(CliError::Tampered(p.to_string()))
                }
            }
        }
        AuditCommand::Export { output } => {
            let now = engine.clock.now();
            let written = match &output {
                Some(path) => {
                    let file = std::fs::File::create(path)
                        .map_err(|e| CliError::Input(format!("không tạo được {}: {e}", path.display())))?;
                    let mut w = std::io::BufWriter::new(file);
                    export::export(&engine.store, &mut w, now).await?
                }
                None => {
                    let mut w = std::io::BufWriter::new(std::io::stdout().lock());
                    export::export(&engine.store, &mut w, now).await?
                }
            };
            if let Some(path) = output {
                eprintln!("Đã xuất {written} sự kiện vào {}", path.display());
            }
            Ok(())
        }
        AuditCommand::History { .. } | AuditCommand::Plan { .. } => unreachable!("handled above"),
    };
    engine.store.close().await;
    result
}

/// `report review`: writes the HTML and says where.
pub async fn review(ctx: &Context, year: Option<i32>, output: Option<std::path::PathBuf>) -> Result<(), CliError> {
    use crate::audit::report::{self, Scope};
    let engine = ctx.engine().await?;
    let scope = year.map_or(Scope::Period, Scope::Year);
    let review = report::review(&engine, scope).await?;
    let path = output.unwrap_or_else(|| {
        let name = year.map_or("review-period.html".to_string(), |y| format!("review-{y}.html"));
        std::path::Path::new("data/reports").join(name)
    });
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| CliError::Input(format!("không tạo được thư mục {}: {e}", dir.display())))?;
    }
    std::fs::write(&path, &review.html)
        .map_err(|e| CliError::Input(format!("không ghi được {}: {e}", path.display())))?;
    match ctx.format {
        Format::Json => print_json(
            &json!({ "path": path, "title": review.title, "tasks": review.tasks, "milestones": review.milestones, "root": review.root }),
        ),
        _ => println!(
            "Đã lập {}: {} nhiệm vụ, {} mốc → {}{}",
            review.title,
            review.tasks,
            review.milestones,
            path.display(),
            review.root.map(|r| format!(" (gốc điểm kiểm {r})")).unwrap_or_default()
        ),
    }
    engine.store.close().await;
    Ok(())
}
