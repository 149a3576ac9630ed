//! `audit history` and `audit plan`: what happened, and what was true as of
//! any date, replayed from the events.

use super::args::Format;
use super::output::{fit, print_json, table};
use super::{resolve_task, CliError, Context};
use crate::audit::asof::{replay_until, Stored};
use crate::domain::dates::{format_vn, local_date, parse_date};
use crate::domain::task::{Actor, Delivery, MilestoneStatus, Task, TaskEvent};
use crate::projections::views::{timeliness, Timeliness};
use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// `--as-of`: an instant, or a date meaning the end of that local day.
pub fn parse_as_of(s: &str, tz: Tz) -> Result<DateTime<Utc>, CliError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s.trim()) {
        return Ok(t.with_timezone(&Utc));
    }
    let date = parse_date(s).map_err(|e| CliError::Input(format!("--as-of/--since: {e}")))?;
    let next = (date + Duration::days(1)).and_hms_opt(0, 0, 0).expect("midnight");
    tz.from_local_datetime(&next)
        .earliest()
        .map(|t| t.with_timezone(&Utc) - Duration::nanoseconds(1))
        .ok_or_else(|| CliError::Input(format!("--as-of: {s:?}")))
}

/// What an event means, in Vietnamese, and its details.
pub fn describe(e: &TaskEvent) -> (String, String) {
    let due = |d: &NaiveDate| format_vn(*d);
    match e {
        TaskEvent::TaskRegistered { definition, .. } => (
            "Đăng ký nhiệm vụ từ kế hoạch".into(),
            format!(
                "lãnh đạo {}; thực hiện {}",
                definition.lead,
                definition
                    .implementers
                    .iter()
                    .map(|a| a.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
        TaskEvent::TaskAmended { changes, .. } => {
            let mut parts = Vec::new();
            if changes.title.is_some() {
                parts.push("tiêu đề".to_string());
            }
            if changes.text.is_some() {
                parts.push("nội dung".into());
            }
            if let Some(c) = &changes.lead {
                parts.push(format!("lãnh đạo {} → {}", c.from, c.to));
            }
            if let Some(c) = &changes.implementers {
                let j = |v: &Vec<crate::domain::ids::AgencyCode>| {
                    v.iter().map(|a| a.as_str()).collect::<Vec<_>>().join(",")
                };
                parts.push(format!("thực hiện {} → {}", j(&c.from), j(&c.to)));
            }
            if changes.advisory.is_some() {
                parts.push("cơ quan tham mưu".into());
            }
            if changes.kpis.is_some() {
                parts.push("chỉ tiêu".into());
            }
            ("Kế hoạch sửa đổi nhiệm vụ".into(), parts.join("; "))
        }
        TaskEvent::TaskWithdrawn { reason, .. } => ("Rút nhiệm vụ khỏi kế hoạch".into(), reason.clone()),
        TaskEvent::TaskReinstated { .. } => ("Đưa nhiệm vụ trở lại kế hoạch".into(), String::new()),
        TaskEvent::MilestoneOpened { milestone, .. } => (
            format!("Mở mốc {}", milestone.id),
            format!("{}; hạn {}", milestone.title, due(&milestone.due)),
        ),
        TaskEvent::MilestoneAmended { milestone, due: d, .. } => (
            format!("Kế hoạch sửa mốc {milestone}"),
            d.as_ref()
                .map(|c| format!("hạn {} → {}", due(&c.from), due(&c.to)))
                .unwrap_or_else(|| "tiêu đề".into()),
        ),
        TaskEvent::ProgressReported {
            milestone,
            note,
            kpis,
            evidence,
            ..
        } => {
            let values = kpis
                .iter()
                .map(|k| format!("{}={}", k.key, k.value))
                .collect::<Vec<_>>()
                .join(", ");
            (
                format!("Báo cáo tiến độ mốc {milestone}"),
                [note.clone(), values, evidence.join(" ")]
                    .iter()
                    .filter(|s| !s.is_empty())
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        }
        TaskEvent::MilestoneSubmitted { milestone, note, .. } => (format!("Nộp mốc {milestone}"), note.clone()),
        TaskEvent::MilestoneApproved { milestone, note, .. } => (format!("Duyệt mốc {milestone}"), note.clone()),
        TaskEvent::MilestoneReturned { milestone, reason, .. } => (format!("Trả lại mốc {milestone}"), reason.clone()),
        TaskEvent::DeadlineExtended {
            milestone,
            from,
            until,
            reason,
            ..
        } => (
            format!("Gia hạn mốc {milestone}"),
            format!("{} → {}: {reason}", due(from), due(until)),
        ),
        TaskEvent::MilestoneWaived { milestone, reason, .. } => (format!("Miễn mốc {milestone}"), reason.clone()),
        TaskEvent::MilestoneCancelled { milestone, reason, .. } => (format!("Hủy mốc {milestone}"), reason.clone()),
        TaskEvent::ReminderQueued {
            milestone,
            key,
            recipients,
            ..
        } => (
            format!("Xếp hàng thư nhắc {key} (mốc {milestone})"),
            recipients
                .iter()
                .map(|r| r.agency.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        ),
        TaskEvent::ReminderSent {
            milestone,
            key,
            agency,
            message_id,
            ..
        } => (
            format!("Đã gửi thư nhắc {key} (mốc {milestone}) đến {agency}"),
            message_id.clone(),
        ),
        TaskEvent::ReminderFailed {
            milestone,
            key,
            agency,
            attempt,
            error,
            ..
        } => (
            format!("Gửi thư nhắc {key} (mốc {milestone}) đến {agency} lỗi lần {attempt}"),
            error.clone(),
        ),
    }
}

fn actor(a: &Actor) -> String {
    a.to_string()
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// A task's state, for `--as-of` output.
fn state_json(task: &Task, today: NaiveDate, tz: Tz) -> Value {
    let Some(def) = &task.definition else {
        return json!(null);
    };
    json!({
        "withdrawn": task.withdrawn,
        "lead": def.lead,
        "advisory": def.advisory,
        "implementers": def.implementers,
        "milestones": task.milestones.iter().map(|m| json!({
            "id": m.spec.id,
            "due": m.due().to_string(),
            "status": m.status.as_str(),
            "timeliness": timeliness(m, today, tz),
            "reminders_sent": m.reminders.iter().flat_map(|r| r.deliveries.values()).filter(|d| matches!(d, Delivery::Sent { .. })).count(),
        })).collect::<Vec<_>>(),
    })
}

pub async fn history(ctx: &Context, task: String, as_of: Option<String>, plan: Option<String>) -> Result<(), CliError> {
    let engine = ctx.engine().await?;
    engine.catch_up().await?;
    let plans = engine.store.plan_views().await?;
    let (key, plan_view) = resolve_task(&plans, &task, plan.as_deref())?;
    let tz = plan_view
        .plan
        .header
        .as_ref()
        .map_or(chrono_tz::Asia::Ho_Chi_Minh, |h| h.tz());
    let events = engine.store.task_events(&key.to_string()).await?;
    if events.is_empty() {
        return Err(CliError::Input(format!(
            "không có nhiệm vụ {} trong kế hoạch {}",
            key.task, plan_view.id
        )));
    }
    let as_of = as_of.as_deref().map(|s| parse_as_of(s, tz)).transpose()?;
    let shown: Vec<&Stored> = events
        .iter()
        .filter(|s| as_of.is_none_or(|t| s.event.stamp().at <= t))
        .collect();
    let rows: Vec<Vec<String>> = shown
        .iter()
        .map(|s| {
            let (what, details) = describe(&s.event);
            let at = s.event.stamp().at.with_timezone(&tz);
            vec![
                s.sequence.to_string(),
                at.format("%d/%m/%Y %H:%M").to_string(),
                actor(&s.event.stamp().by),
                what,
                details,
                s.hash
                    .as_deref()
                    .map(|h| h[..h.len().min(12)].to_string())
                    .unwrap_or_default(),
            ]
        })
        .collect();
    let state = as_of.map(|t| (t, replay_until(&events, t)));
    match ctx.format {
        Format::Json => print_json(&json!({
            "task": key.task,
            "plan": key.plan,
            "as_of": as_of.map(|t| t.to_rfc3339()),
            "timeline": shown.iter().map(|s| {
                let (what, details) = describe(&s.event);
                json!({ "sequence": s.sequence, "at": s.event.stamp().at.with_timezone(&tz).to_rfc3339(), "actor": s.event.stamp().by,
                        "event": s.event.name(), "what": what, "details": details, "hash": s.hash })
            }).collect::<Vec<_>>(),
            "state": state.as_ref().map(|(t, task)| state_json(task, local_date(*t, tz), tz)),
        })),
        Format::Csv => {
            println!("sequence,local_time,actor,what,details,hash");
            for r in &rows {
                println!("{}", r.iter().map(|c| csv_field(c)).collect::<Vec<_>>().join(","));
            }
        }
        _ => {
            let title = plan_view_title(&events);
            println!("Lịch sử nhiệm vụ {} — {}", key.task, title);
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
                    ]
                })
                .collect();
            println!(
                "{}",
                table(
                    &["#", "Thời gian", "Người thực hiện", "Sự việc", "Chi tiết", "Mã băm"],
                    &display
                )
            );
            if let Some((t, task)) = &state {
                let today = local_date(*t, tz);
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
                let ms: Vec<Vec<String>> = task
                    .milestones
                    .iter()
                    .map(|m| {
                        let sent = m
                            .reminders
                            .iter()
                            .flat_map(|r| r.deliveries.values())
                            .filter(|d| matches!(d, Delivery::Sent { .. }))
                            .count();
                        vec![
                            m.spec.id.to_string(),
                            format_vn(m.due()),
                            m.status.label_vi().into(),
                            timeliness(m, today, tz).label_vi().into(),
                            sent.to_string(),
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

fn plan_view_title(events: &[Stored]) -> String {
    events
        .iter()
        .find_map(|s| match &s.event {
            TaskEvent::TaskRegistered { definition, .. } => Some(fit(&definition.title, 80)),
            _ => None,
        })
        .unwrap_or_default()
}

#[derive(Default, Clone, Copy, serde::Serialize)]
struct Counts {
    on_time: u32,
    overdue: u32,
    not_yet_due: u32,
    approved_late: u32,
}

impl Counts {
    /// Đúng hạn, quá hạn, trong hạn, duyệt trễ hạn, as table cells.
    fn cells(&self) -> [String; 4] {
        [self.on_time, self.overdue, self.not_yet_due, self.approved_late].map(|n| n.to_string())
    }
}

pub async fn plan(ctx: &Context, as_of: String, since: Option<String>) -> Result<(), CliError> {
    let engine = ctx.engine().await?;
    engine.catch_up().await?;
    let plans = engine.store.plan_views().await?;
    let tz = plans
        .first()
        .and_then(|p| p.plan.header.as_ref())
        .map_or(chrono_tz::Asia::Ho_Chi_Minh, |h| h.tz());
    let at = parse_as_of(&as_of, tz)?;
    let before = since.as_deref().map(|s| parse_as_of(s, tz)).transpose()?;
    if before.is_some_and(|b| b >= at) {
        return Err(CliError::Input("--since phải trước --as-of".into()));
    }
    let today = local_date(at, tz);
    let mut per_agency: BTreeMap<String, Counts> = BTreeMap::new();
    let mut tasks_out = Vec::new();
    let mut changes = Vec::new();
    for view in engine.store.task_views().await? {
        let events = engine.store.task_events(&view.id).await?;
        let task = replay_until(&events, at);
        let Some(def) = &task.definition else { continue };
        let mut counts = Counts::default();
        for m in &task.milestones {
            let slot = match timeliness(m, today, tz) {
                Timeliness::OnTime => |c: &mut Counts| c.on_time += 1,
                Timeliness::Overdue => |c: &mut Counts| c.overdue += 1,
                Timeliness::NotYetDue => |c: &mut Counts| c.not_yet_due += 1,
                Timeliness::ApprovedLate => |c: &mut Counts| c.approved_late += 1,
                Timeliness::Closed => continue,
            };
            if task.withdrawn {
                continue;
            }
            slot(&mut counts);
            for a in &def.implementers {
                slot(per_agency.entry(a.to_string()).or_default());
            }
        }
        let id = view.id.split_once('/').map_or(view.id.clone(), |(_, t)| t.to_string());
        if let Some(b) = before {
            let old = replay_until(&events, b);
            for m in &task.milestones {
                let was = old.milestone(&m.spec.id);
                let status_changed = was.is_none_or(|w| w.status != m.status);
                let due_changed = was.is_some_and(|w| w.due() != m.due());
                if status_changed || due_changed {
                    changes.push(json!({
                        "task": id, "milestone": m.spec.id,
                        "status_before": was.map(|w| w.status.as_str()), "status": m.status.as_str(),
                        "due_before": was.map(|w| w.due().to_string()), "due": m.due().to_string(),
                    }));
                }
            }
            if old.withdrawn != task.withdrawn {
                changes.push(json!({ "task": id, "withdrawn": task.withdrawn }));
            }
        }
        let pending = task.milestones.iter().filter(|m| m.status.is_pending()).count();
        let approved = task
            .milestones
            .iter()
            .filter(|m| m.status == MilestoneStatus::Approved)
            .count();
        tasks_out.push((id, def.title.clone(), task.withdrawn, pending, approved, counts));
    }
    match ctx.format {
        Format::Json => print_json(&json!({
            "as_of": at.to_rfc3339(),
            "since": before.map(|b| b.to_rfc3339()),
            "tasks": tasks_out.iter().map(|(id, title, w, p, a, c)| json!({ "id": id, "title": title, "withdrawn": w, "pending": p, "approved": a, "counts": c })).collect::<Vec<_>>(),
            "agencies": per_agency,
            "changes": changes,
        })),
        _ => {
            println!("Kế hoạch tại ngày {}:", format_vn(today));
            let rows: Vec<Vec<String>> = tasks_out
                .iter()
                .map(|(id, title, w, p, a, c)| {
                    vec![
                        id.clone(),
                        fit(title, 44),
                        if *w { "đã rút".into() } else { String::new() },
                        p.to_string(),
                        a.to_string(),
                    ]
                    .into_iter()
                    .chain(c.cells())
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
                        "Trong hạn",
                        "Duyệt trễ"
                    ],
                    &rows
                )
            );
            println!("\nTheo cơ quan thực hiện:");
            let rows: Vec<Vec<String>> = per_agency
                .iter()
                .map(|(a, c)| std::iter::once(a.clone()).chain(c.cells()).collect())
                .collect();
            println!(
                "{}",
                table(&["Cơ quan", "Đúng hạn", "Quá hạn", "Trong hạn", "Duyệt trễ hạn"], &rows)
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
                            format!("{} → {}", s("status_before"), s("status")),
                            format!("{} → {}", s("due_before"), s("due")),
                        ]
                    })
                    .collect();
                if !rows.is_empty() {
                    println!("{}", table(&["Nhiệm vụ", "Mốc", "Trạng thái", "Hạn"], &rows));
                }
            }
        }
    }
    engine.store.close().await;
    Ok(())
}
