//! `audit history` and `audit plan`: what happened, and what was true as of
//! any date, replayed from the events.

use super::args::Format;
use super::output::{fit, print_json, table};
use super::{resolve_task, CliError, Context};
use crate::audit::history::{self, reminders_sent, History, PlanAsOf};
use crate::domain::dates::{format_vn, local_date};
use crate::projections::views::timeliness;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;

/// `--as-of`/`--since`: an instant, or a date meaning the end of that local day.
pub fn parse_as_of(s: &str, tz: Tz) -> Result<DateTime<Utc>, CliError> {
    history::parse_as_of(s, tz).map_err(|e| CliError::Input(format!("--as-of/--since: {e}")))
}

use crate::domain::text::{csv_field, printable};

pub async fn history(ctx: &Context, task: String, as_of: Option<String>, plan: Option<String>) -> Result<(), CliError> {
    let engine = ctx.engine().await?;
    engine.catch_up().await?;
    let plans = engine.store.plan_views().await?;
    let (key, plan_view) = resolve_task(&plans, &task, plan.as_deref())?;
    let tz = plan_view.tz();
    let events = engine.store.task_events(&key.to_string()).await?;
    if events.is_empty() {
        return Err(CliError::Input(format!(
            "không có nhiệm vụ {} trong kế hoạch {}",
            key.task, plan_view.id
        )));
    }
    let as_of = as_of.as_deref().map(|s| parse_as_of(s, tz)).transpose()?;
    let plan_events = engine.store.plan_events(key.plan.as_str()).await?;
    let h = History::new(key, &events, as_of, tz).with_directory_changes(&plan_events);
    let rows: Vec<Vec<String>> = h
        .entries
        .iter()
        .map(|e| {
            vec![
                e.sequence.to_string(),
                e.at.format("%d/%m/%Y %H:%M").to_string(),
                printable(&e.actor_text).into_owned(),
                printable(&e.what).into_owned(),
                printable(&e.details).into_owned(),
                e.hash
                    .as_deref()
                    .map(|h| h[..h.len().min(12)].to_string())
                    .unwrap_or_default(),
                e.recorded_at
                    .map(|t| format!("{},{:03}", t.format("%d/%m/%Y %H:%M:%S"), t.timestamp_subsec_millis()))
                    .unwrap_or_default(),
            ]
        })
        .collect();
    match ctx.format {
        Format::Json => print_json(&h.to_json(plan_view.deadlines())),
        Format::Csv => {
            println!("Số thứ tự,Thời điểm,Người thực hiện,Việc,Chi tiết,Mã băm,Kho ghi lúc");
            for r in &rows {
                println!("{}", r.iter().map(|c| csv_field(c)).collect::<Vec<_>>().join(","));
            }
        }
        _ => {
            println!("Lịch sử nhiệm vụ {} — {}", h.key.task, fit(&h.title, 80));
            let display: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    vec![
                        r[0].clone(),
                        r[1].clone(),
                        fit(&r[2], 28),
                        fit(&r[3], 44),
                        fit(&r[4], 44),
                        r[5].clone(),
                        r[6].get(..19).unwrap_or_default().to_string(),
                    ]
                })
                .collect();
            println!(
                "{}",
                table(
                    &[
                        "#",
                        "Thời gian",
                        "Người thực hiện",
                        "Sự việc",
                        "Chi tiết",
                        "Mã băm",
                        "Kho ghi lúc"
                    ],
                    &display
                )
            );
            if let Some((t, task)) = h.as_of.zip(h.state.as_ref()) {
                let today = local_date(t, tz);
                println!(
                    "\nTrạng thái tại {} (giờ Việt Nam):",
                    t.with_timezone(&tz).format("%d/%m/%Y %H:%M")
                );
                if let Some(def) = &task.definition {
                    let codes = |v: &[crate::domain::ids::AgencyCode]| {
                        v.iter().map(|a| a.as_str()).collect::<Vec<_>>().join(", ")
                    };
                    println!(
                        "Lãnh đạo: {}; tham mưu: {}; thực hiện: {}",
                        def.lead,
                        codes(&def.advisory),
                        codes(&def.implementers)
                    );
                }
                let deadlines = plan_view.deadlines();
                let ms: Vec<Vec<String>> = task
                    .milestones
                    .iter()
                    .map(|m| {
                        vec![
                            m.spec.id.to_string(),
                            deadlines.shown(m.due()),
                            m.status.label_vi().into(),
                            timeliness(m, today, deadlines).label_vi().into(),
                            reminders_sent(m).to_string(),
                        ]
                    })
                    .collect();
                println!(
                    "{}",
                    table(&["Mốc", "Hạn", "Trạng thái", "Tiến độ", "Thư nhắc đã gửi"], &ms)
                );
            }
        }
    }
    engine.store.close().await;
    Ok(())
}

pub async fn plan(ctx: &Context, as_of: String, since: Option<String>) -> Result<(), CliError> {
    let engine = ctx.engine().await?;
    engine.catch_up().await?;
    let plans = engine.store.plan_views().await?;
    let (_, tz) = crate::projections::views::today_in(&plans, engine.clock.now());
    let at = parse_as_of(&as_of, tz)?;
    let before = since.as_deref().map(|s| parse_as_of(s, tz)).transpose()?;
    if before.is_some_and(|b| b >= at) {
        return Err(CliError::Input("--since phải trước --as-of".into()));
    }
    let report = PlanAsOf::replay(&engine.store, None, at, before, tz).await?;
    let today = report.today;
    let changes = &report.changes;
    match ctx.format {
        Format::Json => print_json(&report.to_json()),
        _ => {
            println!("Kế hoạch tại ngày {}:", format_vn(today));
            let rows: Vec<Vec<String>> = report
                .standing
                .tasks
                .iter()
                .map(|t| {
                    vec![
                        t.id.clone(),
                        fit(&t.title, 44),
                        if t.withdrawn { "đã rút".into() } else { String::new() },
                        t.pending.to_string(),
                        t.approved.to_string(),
                    ]
                    .into_iter()
                    .chain(t.counts.cells())
                    .collect()
                })
                .collect();
            println!(
                "{}",
                table(
                    &[
                        "Mã",
                        "Nhiệm vụ",
                        "",
                        "Đang mở",
                        "Đã duyệt",
                        "Đúng hạn",
                        "Quá hạn",
                        "Chưa đến hạn",
                        "Duyệt trễ"
                    ],
                    &rows
                )
            );
            println!("\nTheo cơ quan thực hiện:");
            let rows: Vec<Vec<String>> = report
                .standing
                .agencies
                .iter()
                .map(|(a, c)| std::iter::once(a.clone()).chain(c.cells()).collect())
                .collect();
            println!(
                "{}",
                table(&["Cơ quan", "Đúng hạn", "Quá hạn", "Chưa đến hạn", "Trễ hạn"], &rows)
            );
            if let Some(b) = before {
                println!(
                    "\nThay đổi từ {} đến {}: {}",
                    format_vn(local_date(b, tz)),
                    format_vn(today),
                    changes.len()
                );
                let rows: Vec<Vec<String>> = changes
                    .iter()
                    .map(|c| {
                        let s = |k: &str| c[k].as_str().unwrap_or("").to_string();
                        vec![
                            s("task"),
                            s("milestone"),
                            c["agency"].as_str().unwrap_or("chung").to_string(),
                            format!("{} → {}", s("status_before"), s("status")),
                            format!("{} → {}", s("due_before"), s("due")),
                        ]
                    })
                    .collect();
                if !rows.is_empty() {
                    println!("{}", table(&["Nhiệm vụ", "Mốc", "Cơ quan", "Trạng thái", "Hạn"], &rows));
                }
            }
        }
    }
    engine.store.close().await;
    Ok(())
}
