//! `remind`, `simulate` and `outbox list`.

use super::args::Format;
use super::output::{print_json, table};
use super::{CliError, Context};
use crate::clock::{ManualClock, SharedClock};
use crate::config::{parse_now, MailSettings};
use crate::domain::dates::{format_vn, local_date, parse_date};
use crate::domain::ids::AgencyCode;
use crate::domain::task::Actor;
use crate::engine::Engine;
use crate::notification::dispatch::{requeue, DispatchError, Dispatcher, Sent};
use crate::notification::transport;
use crate::scheduling::{self, fire_times, Queued};
use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;

/// A database or engine failure during a pass is not bad input: exit 1, like
/// every other outage; only a message that cannot be written from the plan's
/// data (a malformed address, say) is the operator's to fix (exit 2).
impl From<DispatchError> for CliError {
    fn from(e: DispatchError) -> Self {
        match e {
            DispatchError::Engine(e) => CliError::Engine(e),
            DispatchError::Store(e) => CliError::Store(e),
            email @ (DispatchError::Email { .. } | DispatchError::Agency(_)) => CliError::Invalid(email.to_string()),
        }
    }
}

/// Builds the dispatcher from the mail settings.
pub fn dispatcher(mail: &MailSettings) -> Result<Dispatcher, CliError> {
    let transport = transport::from_config(mail.smtp_url.as_deref(), &mail.outbox_dir)
        .map_err(|e| CliError::Input(e.to_string()))?;
    Ok(Dispatcher {
        transport,
        from: mail.from.clone(),
        base_url: mail.base_url.clone(),
        mail_domain: mail.mail_domain(),
        max_attempts: mail.max_attempts,
        retry_for: Duration::hours(i64::from(mail.retry_hours)),
        crash_after_send: std::env::var("KEHOACH_CRASH_AFTER_SEND").is_ok_and(|v| v == "1"),
        stop: Default::default(),
    })
}

fn queued_rows(queued: &[Queued]) -> Vec<Vec<String>> {
    queued
        .iter()
        .map(|q| {
            vec![
                q.task.clone(),
                q.milestone.clone(),
                q.key.clone(),
                q.kind.as_str().to_string(),
                q.recipients.join(","),
            ]
        })
        .collect()
}

fn sent_rows(sent: &[Sent]) -> Vec<Vec<String>> {
    sent.iter()
        .map(|s| {
            vec![
                s.agency.clone(),
                format_vn(s.window),
                s.items.to_string(),
                if s.ok { "đã gửi".into() } else { "lỗi".into() },
                super::output::fit(&s.outcome, 50),
            ]
        })
        .collect()
}

pub async fn remind_once(ctx: &Context) -> Result<(), CliError> {
    let engine = ctx.engine().await?;
    let dispatcher = dispatcher(&MailSettings::resolve(&ctx.file))?;
    let now = engine.clock.now();
    let queued = scheduling::schedule(&engine, now).await?;
    let sent = dispatcher.dispatch(&engine, now).await?;
    match ctx.format {
        Format::Json => print_json(&json!({ "queued": queued, "sent": sent })),
        _ => {
            println!("Đã xếp hàng {} lời nhắc:", queued.len());
            if !queued.is_empty() {
                println!(
                    "{}",
                    table(
                        &["Nhiệm vụ", "Mốc", "Lời nhắc", "Loại", "Gửi đến"],
                        &queued_rows(&queued)
                    )
                );
            }
            println!("\nĐã xử lý {} thư ({}):", sent.len(), dispatcher.transport.describe());
            if !sent.is_empty() {
                println!(
                    "{}",
                    table(&["Cơ quan", "Ngày", "Mục", "Kết quả", "Phản hồi"], &sent_rows(&sent))
                );
            }
        }
    }
    engine.store.close().await;
    Ok(())
}

pub async fn simulate(ctx: &Context, from: Option<String>, until: String) -> Result<(), CliError> {
    let tz = chrono_tz::Asia::Ho_Chi_Minh;
    let start_day = match from {
        Some(f) => parse_date(&f).map_err(|e| CliError::Input(format!("--from: {e}")))?,
        None => local_date(ctx.clock.now(), tz),
    };
    let end_day = parse_date(&until).map_err(|e| CliError::Input(format!("--until: {e}")))?;
    if end_day < start_day {
        return Err(CliError::Input(format!(
            "--until {} trước ngày bắt đầu {}",
            format_vn(end_day),
            format_vn(start_day)
        )));
    }
    let clock = Arc::new(ManualClock::new(parse_now(&start_day.to_string())?));
    let shared: SharedClock = clock.clone();
    let engine = ctx.simulation_engine().await?.with_clock(shared);
    let dispatcher = dispatcher(&MailSettings::resolve(&ctx.file))?;
    let days = (end_day - start_day).num_days() as u64 + 1;
    let bar = indicatif::ProgressBar::new(days);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} mô phỏng [{bar:30}] {pos}/{len} ngày · {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut queued_total = 0usize;
    let mut per_agency: BTreeMap<String, (usize, usize, usize)> = BTreeMap::new();
    let mut day = start_day;
    while day <= end_day {
        for at in ticks_on(&engine, day).await? {
            clock.set(at);
            let queued = scheduling::schedule(&engine, at).await?;
            queued_total += queued.len();
            for s in dispatcher.dispatch(&engine, at).await? {
                let e = per_agency.entry(s.agency.clone()).or_default();
                if s.ok {
                    e.0 += 1;
                    e.1 += s.items;
                } else {
                    e.2 += 1;
                }
            }
        }
        bar.set_message(format_vn(day));
        bar.inc(1);
        day = day.succ_opt().unwrap_or(day);
    }
    bar.finish_and_clear();
    let emails: usize = per_agency.values().map(|v| v.0).sum();
    match ctx.format {
        Format::Json => print_json(&json!({
            "from": start_day.to_string(), "until": end_day.to_string(), "queued": queued_total, "emails": emails,
            "agencies": per_agency.iter().map(|(a, (m, i, f))| json!({ "agency": a, "emails": m, "items": i, "failed": f })).collect::<Vec<_>>(),
        })),
        _ => {
            println!(
                "Mô phỏng {} → {}: {} lời nhắc xếp hàng, {} thư đã gửi ({}).",
                format_vn(start_day),
                format_vn(end_day),
                queued_total,
                emails,
                dispatcher.transport.describe()
            );
            let rows: Vec<Vec<String>> = per_agency
                .iter()
                .map(|(a, (m, i, f))| vec![a.clone(), m.to_string(), i.to_string(), f.to_string()])
                .collect();
            if !rows.is_empty() {
                println!("{}", table(&["Cơ quan", "Thư", "Mục", "Lần lỗi"], &rows));
            }
        }
    }
    engine.store.close().await;
    Ok(())
}

/// The cron instants of every loaded plan that fall on local day `day`.
async fn ticks_on(engine: &Engine, day: NaiveDate) -> Result<Vec<DateTime<Utc>>, CliError> {
    let mut ticks = Vec::new();
    for plan in engine.store.plan_views().await? {
        let Some(h) = &plan.plan.header else { continue };
        let tz = h.tz();
        let Some(start) = tz
            .from_local_datetime(&day.and_hms_opt(0, 0, 0).unwrap_or_default())
            .earliest()
        else {
            continue;
        };
        let start = start.with_timezone(&Utc);
        ticks.extend(fire_times(&h.reminders.send_at, tz, start, start + Duration::days(1)));
    }
    ticks.sort();
    ticks.dedup();
    Ok(ticks)
}

pub async fn outbox_retry(ctx: &Context, agency: Option<String>, since: Option<String>) -> Result<(), CliError> {
    let since = since
        .map(|s| parse_date(&s).map_err(|e| CliError::Input(format!("--since: {e}"))))
        .transpose()?;
    let agency = agency
        .map(|a| AgencyCode::parse(&a).map_err(|e| CliError::Input(format!("--agency: {e}"))))
        .transpose()?;
    let engine = ctx.engine().await?;
    if let Some(a) = &agency {
        let known = engine
            .store
            .plan_views()
            .await?
            .iter()
            .any(|p| p.plan.agency(a).is_some());
        if !known {
            return Err(CliError::Input(format!(
                "--agency: cơ quan {a} không có trong danh mục của kế hoạch nào"
            )));
        }
    }
    let by = Actor::operator(&crate::engine::os_user(), &crate::engine::host_name());
    let done = requeue(&engine, by, agency.as_ref(), since).await?;
    match ctx.format {
        Format::Json => print_json(&json!({
            "requeued": done.iter().map(|d| d.items).sum::<usize>(),
            "digests": done,
        })),
        _ => {
            let items: usize = done.iter().map(|d| d.items).sum();
            println!(
                "Đã xếp hàng gửi lại {items} mục trong {} thư; serve (hoặc remind) sẽ gửi ở lượt tới.",
                done.len()
            );
            let rows: Vec<Vec<String>> = done
                .iter()
                .map(|d| {
                    vec![
                        d.agency.clone(),
                        d.message_id.clone().unwrap_or_else(|| "(thư mới)".into()),
                        d.items.to_string(),
                        super::output::fit(d.last_error.as_deref().unwrap_or_default(), 50),
                    ]
                })
                .collect();
            if !rows.is_empty() {
                println!("{}", table(&["Cơ quan", "Message-ID", "Mục", "Lỗi lần cuối"], &rows));
            }
        }
    }
    engine.store.close().await;
    Ok(())
}

pub async fn outbox_list(ctx: &Context, status: Option<String>) -> Result<(), CliError> {
    if let Some(s) = &status {
        if !["queued", "sent", "failed"].contains(&s.as_str()) {
            return Err(CliError::Input(format!(
                "trạng thái không có: {s:?} (dùng queued, sent, failed)"
            )));
        }
    }
    let engine = ctx.engine().await?;
    engine.catch_up().await?;
    let rows = engine.store.outbox(status.as_deref()).await?;
    match ctx.format {
        Format::Json => print_json(&rows),
        _ => {
            let shown: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    vec![
                        r.aggregate_id
                            .split_once('/')
                            .map_or(r.aggregate_id.clone(), |(_, t)| t.to_string()),
                        r.milestone_id.clone(),
                        r.reminder_key.clone(),
                        r.agency.clone(),
                        r.status.clone(),
                        r.attempts.to_string(),
                        r.last_error
                            .as_deref()
                            .map(|e| super::output::fit(e, 40))
                            .or(r.message_id.clone())
                            .unwrap_or_default(),
                    ]
                })
                .collect();
            println!(
                "{}",
                table(
                    &[
                        "Nhiệm vụ",
                        "Mốc",
                        "Lời nhắc",
                        "Cơ quan",
                        "Trạng thái",
                        "Lần thử",
                        "Chi tiết"
                    ],
                    &shown
                )
            );
            println!("{} dòng", rows.len());
        }
    }
    engine.store.close().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreError;

    #[test]
    fn a_database_failure_during_a_pass_exits_1_not_2() {
        let outage = DispatchError::Store(StoreError::Query {
            context: "đọc hộp thư đi",
            source: sqlx::Error::PoolTimedOut,
        });
        assert_eq!(CliError::from(outage).exit_code(), 1);
    }
}
