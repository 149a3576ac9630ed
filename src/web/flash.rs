//! Notices for the next page of a session ("Đã ghi nhận…" after an action,
//! a refusal to show after a redirect): stored server-side by the session's
//! token hash, shown once, then deleted. The URL of a redirect carries
//! nothing a page prints.

use super::auth::{cookie, SESSION_COOKIE};
use super::AppState;
use crate::accounts::store::digest;
use crate::projections::views::instant_text;
use crate::store::StoreError;
use axum::http::HeaderMap;
use chrono::Duration;

/// How long a notice waits for its page before it is dropped.
const KEEP: Duration = Duration::hours(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Done,
    Error,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Done => "done",
            Self::Error => "error",
        }
    }
}

/// Notices taken for one page, by kind.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Notices {
    pub done: Vec<String>,
    pub error: Vec<String>,
    /// Notices about one part of the page (a milestone), to show there.
    pub placed: Vec<Placed>,
}

/// A notice to show next to the part of the page it is about.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Placed {
    /// The part: for task pages, the milestone's id.
    pub at: String,
    /// `done` or `error`.
    pub kind: &'static str,
    pub message: String,
}

/// Separates a placed notice's kind from its place in the `kind` column
/// (`done@register-2024`).
const PLACE_SEPARATOR: char = '@';

/// Keeps a notice for the session of this request (none without a session).
pub async fn push(state: &AppState, headers: &HeaderMap, kind: Kind, message: &str) -> Result<(), StoreError> {
    store(state, headers, kind.as_str(), message).await
}

/// `push`, for a notice about one part of the next page (`at`: a
/// milestone's id on a task page); pages that do not know the part show it
/// with the others.
pub async fn push_at(
    state: &AppState,
    headers: &HeaderMap,
    kind: Kind,
    at: &str,
    message: &str,
) -> Result<(), StoreError> {
    let kind = format!("{}{PLACE_SEPARATOR}{at}", kind.as_str());
    store(state, headers, &kind, message).await
}

async fn store(state: &AppState, headers: &HeaderMap, kind: &str, message: &str) -> Result<(), StoreError> {
    let Some(token) = cookie(headers, SESSION_COOKIE) else {
        return Ok(());
    };
    let now = state.engine.clock.now();
    crate::with_pool!(state.store(), pool => {
        sqlx::query("DELETE FROM flash_messages WHERE created_at < $1")
            .bind(instant_text(now - KEEP))
            .execute(pool).await.map_err(StoreError::query("xóa thông báo cũ"))?;
        sqlx::query("INSERT INTO flash_messages (session_hash, kind, message, created_at) VALUES ($1, $2, $3, $4)")
            .bind(digest(&token)).bind(kind).bind(message).bind(instant_text(now))
            .execute(pool).await.map(|_| ()).map_err(StoreError::query("ghi thông báo"))
    })
}

/// The session's waiting notices, deleted as they are read, all to show at
/// the top of the page.
pub async fn take(state: &AppState, headers: &HeaderMap) -> Result<Notices, StoreError> {
    let mut notices = take_placed(state, headers).await?;
    notices.unplace();
    Ok(notices)
}

/// `take`, keeping the notices about one part of the page in `placed` for
/// the page to show there.
pub async fn take_placed(state: &AppState, headers: &HeaderMap) -> Result<Notices, StoreError> {
    let Some(token) = cookie(headers, SESSION_COOKIE) else {
        return Ok(Notices::default());
    };
    let mut rows: Vec<(i64, String, String)> = crate::with_pool!(state.store(), pool =>
        sqlx::query_as("DELETE FROM flash_messages WHERE session_hash = $1 RETURNING CAST(id AS BIGINT), kind, message")
            .bind(digest(&token))
            .fetch_all(pool).await.map_err(StoreError::query("đọc thông báo"))?);
    rows.sort();
    let mut notices = Notices::default();
    for (_, kind, message) in rows {
        let (kind, at) = match kind.split_once(PLACE_SEPARATOR) {
            Some((kind, at)) => (kind.to_string(), Some(at.to_string())),
            None => (kind, None),
        };
        let kind = if kind == Kind::Error.as_str() {
            Kind::Error
        } else {
            Kind::Done
        };
        match at {
            Some(at) => notices.placed.push(Placed {
                at,
                kind: kind.as_str(),
                message,
            }),
            None if kind == Kind::Error => notices.error.push(message),
            None => notices.done.push(message),
        }
    }
    Ok(notices)
}

impl Notices {
    /// The placed notices about `at`, taken out of the list.
    pub fn placed_at(&mut self, at: &str) -> Vec<Placed> {
        let (here, rest) = std::mem::take(&mut self.placed).into_iter().partition(|p| p.at == at);
        self.placed = rest;
        here
    }

    /// Moves the placed notices no part of the page took to the top.
    pub fn unplace(&mut self) {
        for p in std::mem::take(&mut self.placed) {
            if p.kind == Kind::Error.as_str() {
                self.error.push(p.message);
            } else {
                self.done.push(p.message);
            }
        }
    }
}
