//! Personal notices: besides the agency's digest, an account is told at its
//! own address of the decisions on what it filed, of messages addressed to
//! it and, as a supervisor, of submissions waiting for it (who is told:
//! [`crate::domain::notices`]). Each kind can be turned off on `/account`.
//!
//! 1. [`collect`] reads the feed after its own checkpoint (`notices`, never
//!    reset by a rebuild of the views) and makes one row per event and
//!    account in `personal_notices`, written, rendered and addressed, in
//!    the transaction that moves the checkpoint: a crash makes them again
//!    from the same events under the same ids, never twice.
//! 2. [`deliver`] sends the rows due, one e-mail each, through the
//!    dispatcher's transport; a 4xx or an unreachable server is retried
//!    on the digests' schedule for as long as they are, a 5xx is final. A
//!    crash between the server's answer and its record sends the same
//!    e-mail again under the same Message-ID: never lost, at worst twice.

use super::contents::NOTE_MAX_CHARS;
use super::dispatch::{backoff, Dispatcher};
use super::email::{cap_chars, compose, id_domain, one_line, plan_reference, sha256_hex, Envelope, SIMULATION_PREFIX};
use crate::accounts::{Role, User};
use crate::domain::notices::{addressed_after, replayed, Addressed, Addressees, NoticeKind};
use crate::domain::task::{Actor, Task, TaskEvent};
use crate::engine::Engine;
use crate::projections::lists::obligation_link;
use crate::projections::views::instant_text;
use crate::projections::PlanView;
use crate::store::feed::{Cursor, FeedEvent};
use crate::store::{Store, StoreError};
use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use serde::Serialize;
use sqlx::Row;
use std::collections::BTreeMap;

/// The feed reader's checkpoint (in `projection_checkpoints`).
pub const NOTICES: &str = "notices";
/// Events read at a time.
const CHUNK: i64 = 500;
/// Why a notice made was not sent.
const WITHDRAWN: &str = "không gửi: tài khoản đã bị khóa hoặc đã tắt loại thông báo này";
/// Notices sent per pass at most (the rest in the next).
const PER_PASS: i64 = 200;

/// The events that can call for a personal notice.
const EVENT_TYPES: [&str; 4] = [
    "MilestoneSubmitted",
    "MilestoneApproved",
    "MilestoneReturned",
    "MessagePosted",
];

/// One row of `personal_notices`, as made.
#[derive(Debug, Clone, PartialEq)]
pub struct NoticeRow {
    pub id: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub milestone_id: String,
    pub obligation: String,
    pub user_id: String,
    pub address: String,
    pub kind: NoticeKind,
    pub subject: String,
    pub body: String,
    pub link: String,
    pub message_id: String,
}

/// An account's settings: the kinds it turned off.
pub async fn turned_off(store: &Store, user_id: &str) -> Result<Vec<NoticeKind>, StoreError> {
    let rows: Vec<(String, bool)> = crate::with_pool!(store, pool => sqlx::query_as(
        "SELECT kind, enabled FROM notice_settings WHERE user_id = $1")
        .bind(user_id)
        .fetch_all(pool)
        .await
        .map_err(StoreError::query("đọc cài đặt thông báo"))?);
    Ok(rows
        .into_iter()
        .filter(|(_, on)| !on)
        .filter_map(|(k, _)| NoticeKind::parse(&k))
        .collect())
}

/// Records an account's settings for the kinds given: each on or off.
pub async fn set_settings(store: &Store, user_id: &str, settings: &[(NoticeKind, bool)]) -> Result<(), StoreError> {
    crate::with_pool!(store, pool => {
        let mut tx = pool.begin().await.map_err(StoreError::query("ghi cài đặt thông báo"))?;
        for (kind, on) in settings {
            sqlx::query(
                "INSERT INTO notice_settings (user_id, kind, enabled) VALUES ($1, $2, $3)
                 ON CONFLICT (user_id, kind) DO UPDATE SET enabled = excluded.enabled",
            )
            .bind(user_id)
            .bind(kind.as_str())
            .bind(*on)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::query("ghi cài đặt thông báo"))?;
        }
        tx.commit().await.map_err(StoreError::query("ghi cài đặt thông báo"))?;
    });
    Ok(())
}

/// Every (account, kind) turned off.
async fn all_turned_off(store: &Store) -> Result<Vec<(String, NoticeKind)>, StoreError> {
    let rows: Vec<(String, String, bool)> = crate::with_pool!(store, pool => sqlx::query_as(
        "SELECT user_id, kind, enabled FROM notice_settings")
        .fetch_all(pool)
        .await
        .map_err(StoreError::query("đọc cài đặt thông báo"))?);
    Ok(rows
        .into_iter()
        .filter(|(_, _, on)| !on)
        .filter_map(|(u, k, _)| NoticeKind::parse(&k).map(|k| (u, k)))
        .collect())
}

/// A notice as the account's page lists it.
#[derive(Debug, Clone, Serialize)]
pub struct Told {
    pub subject: String,
    pub link: String,
    pub created_at: String,
    pub status: String,
    pub sent_at: Option<String>,
    pub last_error: Option<String>,
}

/// The latest notices made for an account, newest first.
pub async fn told(store: &Store, user_id: &str, limit: i64) -> Result<Vec<Told>, StoreError> {
    let rows = crate::with_pool!(store, pool => sqlx::query(
        "SELECT subject, link, created_at, status, sent_at, last_error FROM personal_notices
          WHERE user_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2")
        .bind(user_id)
        .bind(limit)
        .fetch_all(pool)
        .await
        .map_err(StoreError::query("đọc thông báo riêng"))?
        .into_iter()
        .map(|r| Told {
            subject: r.get(0),
            link: r.get(1),
            created_at: r.get(2),
            status: r.get(3),
            sent_at: r.get(4),
            last_error: r.get(5),
        })
        .collect::<Vec<_>>());
    Ok(rows)
}

async fn checkpoint(store: &Store) -> Result<Cursor, StoreError> {
    let row: Option<(i64, i64)> = crate::with_pool!(store, pool => sqlx::query_as(
        "SELECT tx, position FROM projection_checkpoints WHERE name = $1")
        .bind(NOTICES)
        .fetch_optional(pool)
        .await
        .map_err(StoreError::query("đọc điểm kiểm thông báo riêng"))?);
    // The migration made it; a store without it was made before the reader
    // existed and is past every event it should tell about.
    Ok(row.map_or(Cursor::END, |(tx, position)| Cursor { tx, position }))
}

/// Makes the rows the events after the checkpoint call for. Returns how
/// many were made. On PostgreSQL one process at a time does it (the
/// others find the work done); the checkpoint's compare-and-set keeps it
/// exactly once whatever happens.
pub async fn collect(dispatcher: &Dispatcher, engine: &Engine, now: DateTime<Utc>) -> Result<usize, StoreError> {
    let work = collect_all(dispatcher, engine, now);
    Ok(engine
        .store
        .exclusively(COLLECT_LOCK, work)
        .await?
        .transpose()?
        .unwrap_or(0))
}

async fn collect_all(dispatcher: &Dispatcher, engine: &Engine, now: DateTime<Utc>) -> Result<usize, StoreError> {
    let store = &engine.store;
    let mut made = 0;
    loop {
        let from = checkpoint(store).await?;
        if from == Cursor::END {
            return Ok(made);
        }
        let events = store.read_feed(from, CHUNK).await?;
        let Some(to) = events.last().map(|e| e.cursor) else {
            return Ok(made);
        };
        let mut rows = Vec::new();
        let mut context = Context::default();
        for e in events.iter().filter(|e| e.aggregate_type == Task::TYPE) {
            if EVENT_TYPES.contains(&e.event_type.as_str()) {
                rows.extend(context.rows_for(dispatcher, engine, e).await?);
            }
        }
        let n = events.len() as i64;
        let moved = crate::with_pool!(store, pool => {
            let mut tx = pool.begin().await.map_err(StoreError::query("ghi thông báo riêng"))?;
            let moved = sqlx::query(
                "UPDATE projection_checkpoints SET tx = $1, position = $2, events_applied = events_applied + $3
                  WHERE name = $4 AND tx = $5 AND position = $6",
            )
            .bind(to.tx)
            .bind(to.position)
            .bind(n)
            .bind(NOTICES)
            .bind(from.tx)
            .bind(from.position)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::query("ghi điểm kiểm thông báo riêng"))?
            .rows_affected();
            if moved == 1 {
                for r in &rows {
                    sqlx::query(
                        "INSERT INTO personal_notices (id, aggregate_id, sequence, milestone_id, obligation, user_id, address,
                          kind, subject, body, link, message_id, created_at, next_attempt_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13)
                         ON CONFLICT (id) DO NOTHING",
                    )
                    .bind(&r.id)
                    .bind(&r.aggregate_id)
                    .bind(r.sequence)
                    .bind(&r.milestone_id)
                    .bind(&r.obligation)
                    .bind(&r.user_id)
                    .bind(&r.address)
                    .bind(r.kind.as_str())
                    .bind(&r.subject)
                    .bind(&r.body)
                    .bind(&r.link)
                    .bind(&r.message_id)
                    .bind(instant_text(now))
                    .execute(&mut *tx)
                    .await
                    .map_err(StoreError::query("ghi thông báo riêng"))?;
                }
                tx.commit().await.map_err(StoreError::query("ghi thông báo riêng"))?;
            }
            moved == 1
        });
        if !moved {
            // Another process moved the checkpoint meanwhile: it made these.
            return Ok(made);
        }
        made += rows.len();
    }
}

/// The active accounts, and the (account, kind) pairs turned off.
type Accounts = (Vec<User>, Vec<(String, NoticeKind)>);

/// What a chunk of events needs read once: accounts and their settings,
/// plans and each task's events.
#[derive(Default)]
struct Context {
    users: Option<Accounts>,
    plans: BTreeMap<String, Option<PlanView>>,
    tasks: BTreeMap<String, Vec<TaskEvent>>,
}

impl Context {
    async fn rows_for(
        &mut self,
        dispatcher: &Dispatcher,
        engine: &Engine,
        e: &FeedEvent,
    ) -> Result<Vec<NoticeRow>, StoreError> {
        let store = &engine.store;
        if !self.tasks.contains_key(&e.aggregate_id) {
            let events = store.task_events(&e.aggregate_id).await?;
            self.tasks
                .insert(e.aggregate_id.clone(), events.into_iter().map(|s| s.event).collect());
        }
        let history = &self.tasks[&e.aggregate_id];
        let upto = usize::try_from(e.sequence).unwrap_or(0).min(history.len());
        let Some((event, earlier)) = history[..upto].split_last() else {
            return Ok(vec![]);
        };
        let before = replayed(earlier);
        let Some(notice) = addressed_after(&before, earlier, event) else {
            return Ok(vec![]);
        };
        let (plan_id, task_id) = e.aggregate_id.split_once('/').unwrap_or(("", &e.aggregate_id));
        if !self.plans.contains_key(plan_id) {
            self.plans.insert(plan_id.to_string(), store.plan_view(plan_id).await?);
        }
        let Some(plan) = self.plans[plan_id].as_ref() else {
            return Ok(vec![]);
        };
        if self.users.is_none() {
            let all = store.all_users().await?;
            let active = all
                .into_iter()
                .filter(|(_, disabled)| !disabled)
                .map(|(u, _)| u)
                .collect();
            self.users = Some((active, all_turned_off(store).await?));
        }
        let (users, off) = self.users.as_ref().expect("read above");
        let to: Vec<&User> = match &notice.to {
            Addressees::Accounts(ids) => users.iter().filter(|u| ids.contains(&u.id)).collect(),
            Addressees::Supervisors { agencies, except } => users
                .iter()
                .filter(|u| u.has(Role::Supervisor) && agencies.contains(&u.agency) && !except.contains(&u.id))
                .collect(),
        };
        let to: Vec<&User> = to
            .into_iter()
            .filter(|u| !off.contains(&(u.id.clone(), notice.kind)))
            .collect();
        if to.is_empty() {
            return Ok(vec![]);
        }
        let written = Written::of(
            &before,
            event,
            &notice,
            plan,
            task_id,
            &dispatcher.base_url,
            engine.is_simulation(),
        );
        Ok(to
            .into_iter()
            .map(|user| {
                let id = format!("{}#{}#{}", e.aggregate_id, e.sequence, user.id);
                let hash = sha256_hex(id.as_bytes());
                NoticeRow {
                    message_id: format!("personal.{}@{}", &hash[..20], id_domain(&dispatcher.mail_domain)),
                    id,
                    aggregate_id: e.aggregate_id.clone(),
                    sequence: e.sequence,
                    milestone_id: notice.milestone.to_string(),
                    obligation: String::from(notice.obligation.clone()),
                    user_id: user.id.clone(),
                    address: user.email.to_string(),
                    kind: notice.kind,
                    subject: written.subject.clone(),
                    body: format!("Kính gửi {},\n\n{}", user.name, written.body),
                    link: written.link.clone(),
                }
            })
            .collect())
    }
}

/// A notice's subject, text (after the greeting) and link, in Vietnamese.
struct Written {
    subject: String,
    body: String,
    link: String,
}

/// What people wrote, quoted line by line and cut like a digest's notes, so
/// that it cannot pass for the mail's own words or links.
fn quoted(text: &str) -> String {
    cap_chars(text.trim(), NOTE_MAX_CHARS)
        .lines()
        .map(|l| format!("> {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

impl Written {
    fn of(
        task: &Task,
        event: &TaskEvent,
        notice: &Addressed,
        plan: &PlanView,
        task_id: &str,
        base_url: &str,
        simulation: bool,
    ) -> Self {
        let name_of = |code: &crate::domain::ids::AgencyCode| {
            plan.plan
                .agency(code)
                .map_or_else(|| code.to_string(), |a| a.name.clone())
        };
        let milestone = task
            .milestone(&notice.milestone)
            .map_or_else(|| notice.milestone.to_string(), |m| m.spec.title.clone());
        let task_title = task.definition.as_ref().map(|d| d.title.clone()).unwrap_or_default();
        let owner = match notice.obligation.agency() {
            Some(a) => format!("phần của {}", name_of(a)),
            None => "phần chung của các cơ quan thực hiện".to_string(),
        };
        let stamp = event.stamp();
        let who = match &stamp.by {
            Actor::Account(p) => format!("{} ({})", p.name, name_of(&p.agency)),
            Actor::Legacy { agency, person } => format!("{person} ({})", name_of(agency)),
            other => other.to_string(),
        };
        let at = stamp.at.with_timezone(&plan.tz()).format("%H:%M ngày %d/%m/%Y");
        let open = match (notice.kind, event) {
            (NoticeKind::Submission, _) => Some("approve"),
            (_, TaskEvent::MilestoneReturned { .. }) => Some("report"),
            _ => None,
        };
        let link = format!(
            "{}{}",
            base_url.trim_end_matches('/'),
            obligation_link(
                &plan.id,
                task_id,
                notice.milestone.as_str(),
                &String::from(notice.obligation.clone()),
                open
            )
        );
        let m = one_line(&milestone);
        let (headline, did, detail) = match event {
            TaskEvent::MilestoneSubmitted { note, .. } => (
                format!("Mốc «{m}» đã nộp, chờ anh/chị duyệt"),
                "đã nộp",
                (!note.trim().is_empty()).then(|| format!("Ghi chú khi nộp:\n{}", quoted(note))),
            ),
            TaskEvent::MilestoneApproved { note, .. } => (
                format!("Mốc «{m}» đã được duyệt"),
                "đã duyệt",
                (!note.trim().is_empty()).then(|| format!("Ý kiến:\n{}", quoted(note))),
            ),
            TaskEvent::MilestoneReturned { reason, .. } => (
                format!("Mốc «{m}» bị trả lại"),
                "đã trả lại",
                Some(format!("Lý do trả lại:\n{}", quoted(reason))),
            ),
            TaskEvent::MessagePosted { text, .. } => (
                format!("Trao đổi mới về mốc «{m}»"),
                "đã viết trong mục «Trao đổi» của",
                Some(format!("Nội dung:\n{}", quoted(text))),
            ),
            _ => (format!("Mốc «{m}»"), "đã cập nhật", None),
        };
        let why = match notice.kind {
            NoticeKind::Decision => "Anh/chị nhận thư này vì đã báo cáo hoặc nộp mốc này.",
            NoticeKind::Message => "Anh/chị nhận thư này vì đã tham gia mốc này hoặc là người duyệt của nhiệm vụ.",
            NoticeKind::Submission => {
                "Anh/chị nhận thư này vì là người duyệt của cơ quan chủ trì hoặc tham mưu nhiệm vụ."
            }
        };
        let action = match open {
            Some("approve") => "Xem và duyệt tại",
            Some(_) => "Xem, báo cáo và nộp lại tại",
            None => "Xem và trả lời tại",
        };
        let mut body = format!(
            "{who} {did} mốc «{m}» ({owner}) của nhiệm vụ {task_id} «{}», {}, lúc {at}.\n",
            one_line(&task_title),
            plan_reference(&plan.plan.header.as_ref().map(|h| h.title.clone()).unwrap_or_default()),
        );
        if let Some(d) = detail {
            body.push_str(&format!("\n{d}\n"));
        }
        body.push_str(&format!(
            "\n{action}:\n{link}\n\n{why}\nCó thể bật, tắt từng loại thông báo riêng này tại {}/account. \
             Thư tổng hợp gửi cơ quan vẫn đến như kế hoạch quy định.\n\n\
             Thư này được gửi tự động từ kehoach. Vui lòng không trả lời thư này; hãy trả lời trong mục «Trao đổi» của mốc.\n",
            base_url.trim_end_matches('/')
        ));
        let prefix = plan.plan.mail().subject_prefix();
        let subject = format!("{}{prefix} {headline}", if simulation { SIMULATION_PREFIX } else { "" });
        Self {
            subject: cap_chars(&one_line(&subject), 200),
            body,
            link,
        }
    }
}

/// One notice a delivery pass sent or failed to send.
#[derive(Debug, Clone, Serialize)]
pub struct PersonalSent {
    pub address: String,
    pub message_id: String,
    pub ok: bool,
    pub outcome: String,
}

/// The advisory locks that let one process at a time make and deliver personal notices.
const COLLECT_LOCK: i64 = 0x6b65_686f_6163_686e; // "kehoachn"
const DELIVERY_LOCK: i64 = 0x6b65_686f_6163_6870; // "kehoachp"

/// Sends the notices due. On PostgreSQL one process at a time does it;
/// the others skip to their next pass.
pub async fn deliver(
    dispatcher: &Dispatcher,
    engine: &Engine,
    now: DateTime<Utc>,
) -> Result<Vec<PersonalSent>, StoreError> {
    let work = deliver_due(dispatcher, engine, now);
    Ok(engine
        .store
        .exclusively(DELIVERY_LOCK, work)
        .await?
        .transpose()?
        .unwrap_or_default())
}

struct Due {
    id: String,
    address: String,
    subject: String,
    body: String,
    message_id: String,
    created_at: String,
    attempts: i64,
    link: String,
    /// The account was disabled or removed, or turned this kind off, since
    /// the notice was made: it is not sent.
    withdrawn: bool,
}

async fn deliver_due(
    dispatcher: &Dispatcher,
    engine: &Engine,
    now: DateTime<Utc>,
) -> Result<Vec<PersonalSent>, StoreError> {
    let store = &engine.store;
    // The account as it is now: its current address, and whether it still
    // wants this kind of notice.
    let due: Vec<Due> = crate::with_pool!(store, pool => sqlx::query(
        "SELECT n.id, coalesce(u.email, n.address), n.subject, n.body, n.message_id, n.created_at, n.attempts, n.link,
                (u.id IS NULL OR u.disabled <> 0 OR EXISTS (
                    SELECT 1 FROM notice_settings s WHERE s.user_id = n.user_id AND s.kind = n.kind AND NOT s.enabled))
           FROM personal_notices n LEFT JOIN users u ON u.id = n.user_id
          WHERE n.status = 'queued' AND n.next_attempt_at <= $1 ORDER BY n.created_at, n.id LIMIT $2")
        .bind(instant_text(now))
        .bind(PER_PASS)
        .fetch_all(pool)
        .await
        .map_err(StoreError::query("đọc thông báo riêng cần gửi"))?
        .into_iter()
        .map(|r| Due {
            id: r.get(0),
            address: r.get(1),
            subject: r.get(2),
            body: r.get(3),
            message_id: r.get(4),
            created_at: r.get(5),
            attempts: r.get(6),
            link: r.get(7),
            withdrawn: r.get(8),
        })
        .collect::<Vec<_>>());
    let mut report = Vec::new();
    for d in due {
        if dispatcher.stopping() {
            break;
        }
        if d.withdrawn {
            crate::with_pool!(store, pool => sqlx::query(
                "UPDATE personal_notices SET status = 'cancelled', last_error = $1 WHERE id = $2")
                .bind(WITHDRAWN)
                .bind(&d.id)
                .execute(pool)
                .await
                .map_err(StoreError::query("ghi kết quả gửi thông báo riêng"))
                .map(|_| ()))?;
            continue;
        }
        let attempt = d.attempts + 1;
        let result = match render(dispatcher, &d, now) {
            Ok(message) => dispatcher
                .transport
                .send(&message, std::slice::from_ref(&d.address))
                .await
                .map(|delivery| delivery.reply)
                .map_err(|e| (e.is_permanent(), e.to_string())),
            Err(e) => Err((true, e)),
        };
        let first = DateTime::parse_from_rfc3339(&d.created_at).map_or(now, |t| t.with_timezone(&Utc));
        let (status, next, error) = match &result {
            Ok(_) => ("sent", now, None),
            Err((permanent, e)) => {
                let next = now + backoff(u32::try_from(attempt).unwrap_or(u32::MAX));
                let out_of_time = next - first > dispatcher.retry_for;
                let capped = dispatcher.max_attempts.is_some_and(|m| attempt >= i64::from(m));
                if *permanent || out_of_time || capped {
                    ("failed", now, Some(e.clone()))
                } else {
                    ("queued", next, Some(e.clone()))
                }
            }
        };
        crate::with_pool!(store, pool => sqlx::query(
            "UPDATE personal_notices SET status = $1, attempts = $2, next_attempt_at = $3, last_error = $4,
                    sent_at = CASE WHEN $1 = 'sent' THEN $5 ELSE sent_at END
              WHERE id = $6")
            .bind(status)
            .bind(attempt)
            .bind(instant_text(next))
            .bind(&error)
            .bind(instant_text(now))
            .bind(&d.id)
            .execute(pool)
            .await
            .map_err(StoreError::query("ghi kết quả gửi thông báo riêng"))
            .map(|_| ()))?;
        match &result {
            Ok(_) => tracing::info!(address = %d.address, message_id = %d.message_id, "đã gửi thông báo riêng"),
            Err((_, e)) => tracing::warn!(address = %d.address, attempt, status, error = %e, "gửi thông báo riêng lỗi"),
        }
        report.push(PersonalSent {
            address: d.address,
            message_id: d.message_id,
            ok: result.is_ok(),
            outcome: match result {
                Ok(reply) => reply,
                Err((_, e)) => e,
            },
        });
    }
    Ok(report)
}

fn render(dispatcher: &Dispatcher, d: &Due, now: DateTime<Utc>) -> Result<lettre::Message, String> {
    let escape = crate::templates::escape_html;
    let html_lines: Vec<String> = d
        .body
        .lines()
        .map(|l| {
            // Only the mail's own link is a link; what people wrote is text.
            if l == d.link {
                format!("<a href=\"{0}\">{0}</a>", escape(l))
            } else {
                escape(l)
            }
        })
        .collect();
    let html = format!(
        "<!DOCTYPE html><html lang=\"vi\"><head><meta charset=\"utf-8\"><title>{}</title></head>\
         <body><div style=\"font-family:sans-serif;white-space:pre-wrap\">{}</div></body></html>",
        escape(&d.subject),
        html_lines.join("\n")
    );
    let date = now.with_timezone(&chrono::FixedOffset::east_opt(7 * 3600).expect("UTC+7"));
    let recipients = [d.address.clone()];
    compose(Envelope {
        message_id: &d.message_id,
        from: &dispatcher.from,
        recipients: &recipients,
        agency_code: "",
        subject: d.subject.clone(),
        text: d.body.clone(),
        html,
        date,
        extra: vec![],
    })
    .map_err(|e| e.to_string())
}
