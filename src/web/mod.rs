//! The HTTP server that `serve` runs beside the projections and the
//! reminder loop: health for operators, the JSON API under `/api/` for
//! machine clients, server-rendered Vietnamese pages for people, and each
//! agency's calendar feed.

pub mod account;
pub mod admin;
pub mod api;
pub mod auditor;
pub mod auth;
pub mod back;
pub mod baseline;
pub mod calendar;
pub mod directory;
pub mod error;
pub mod files;
pub mod flash;
pub mod forms;
pub mod imports;
pub mod lists;
pub mod pages;
pub mod review;
pub mod strict;
pub mod timeline;

use crate::engine::Engine;
use crate::store::{Store, StoreError};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

pub use error::WebError;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Request bodies larger than this are refused (413).
pub const BODY_LIMIT: usize = 1024 * 1024;
/// Requests taking longer than this are cut off (408).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone)]
pub struct AppState {
    pub engine: Arc<Engine>,
    /// Where people reach this server (links in pages, sign-in links, feeds).
    pub base_url: String,
    /// Whether cookies carry `Secure`: always, except for a plain-HTTP
    /// base URL on a non-loopback host, where browsers would drop them.
    pub secure_cookies: bool,
    /// Sign-in throttling, session limits, trusted proxies.
    pub security: Arc<crate::config::SecuritySettings>,
    /// Sends lock notices and "Quên mật khẩu" links; without it they are
    /// only logged.
    pub mailer: Option<Arc<crate::notification::account_mail::AccountMailer>>,
    /// The integrity check the auditor's desk runs in the background.
    pub checks: Arc<auditor::Checks>,
    pages: Arc<minijinja::Environment<'static>>,
    plans: crate::projections::views::PlanViewCache,
}

impl AppState {
    pub fn new(engine: Arc<Engine>, base_url: &str) -> Self {
        let base_url = base_url.trim_end_matches('/').to_string();
        let plain_remote = base_url.starts_with("http://")
            && !["http://127.0.0.1", "http://localhost", "http://[::1]"]
                .iter()
                .any(|p| base_url.starts_with(p));
        Self {
            engine,
            secure_cookies: !plain_remote,
            security: Arc::new(crate::config::SecuritySettings::default()),
            mailer: None,
            checks: Default::default(),
            pages: Arc::new(pages::environment()),
            plans: Default::default(),
            base_url,
        }
    }

    pub fn with_security(self, security: crate::config::SecuritySettings) -> Self {
        Self {
            security: Arc::new(security),
            ..self
        }
    }

    pub fn with_mailer(self, mailer: crate::notification::account_mail::AccountMailer) -> Self {
        Self {
            mailer: Some(Arc::new(mailer)),
            ..self
        }
    }

    pub fn store(&self) -> &Store {
        &self.engine.store
    }

    /// The plans loaded, decoded once per version and shared between
    /// requests (`PlanViewCache`).
    pub async fn plan_views(&self) -> Result<Arc<[crate::projections::views::PlanView]>, StoreError> {
        self.plans.get(self.store()).await
    }
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .nest("/api", api::router())
        .merge(pages::router())
        .merge(baseline::pages())
        .merge(account::router())
        .merge(auditor::router())
        .merge(directory::router())
        .route("/calendar/{file}", get(pages::calendar_feed))
        .route("/static/style.css", get(pages::stylesheet))
        .route("/signout", post(pages::sign_out))
        .fallback(strict::no_route)
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT))
        // Actions that may carry evidence files: outside the 1 MiB limit,
        // up to ten files at the file limit (their handlers keep 1 MiB for
        // bodies that are not multipart).
        .merge(uploads(&state))
        // Plans imported from their document: up to the importer's limit;
        // sheets of the state already reached: up to the sheet's.
        .merge(imports::router())
        .merge(baseline::router())
        .layer(axum::middleware::from_fn_with_state(state.clone(), strict::utf8_forms))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .layer(axum::middleware::map_response(error::json_for_api_errors))
        .layer(axum::middleware::map_response_with_state(
            state.clone(),
            strict::html_for_page_errors,
        ))
        .layer(axum::middleware::map_response(strict::security_headers))
        .layer(axum::middleware::from_fn(back::remember))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// The routes whose bodies may carry evidence files.
fn uploads(state: &AppState) -> Router<AppState> {
    Router::new()
        .route(
            "/tasks/{plan}/{task}/milestones/{milestone}/{action}",
            post(pages::task_action),
        )
        .route("/api/tasks/{task}/milestones/{milestone}/{action}", post(api::act))
        .layer(axum::extract::DefaultBodyLimit::max(files::upload_body_limit(
            state.security.max_file_bytes,
        )))
}

/// The process is up, and how far its views lag: committed events not in
/// them yet, those the feed cannot read yet (PostgreSQL) and the writer
/// that holds them back. Always 200 while the process answers; `/ready`
/// says whether the database does.
async fn health(State(state): State<AppState>) -> Response {
    let store = state.store();
    let feed = async {
        let behind = crate::projections::views_behind(store).await?;
        let lag = store.feed_lag().await?;
        Ok::<_, StoreError>((behind, lag))
    };
    let body = match feed.await {
        Ok((behind, lag)) => json!({
            "ok": true,
            "db": store.kind(),
            "views_behind": behind,
            "unseen": lag.unseen,
            "held_back_by": lag.blocker,
            "held_back": lag.blocker.as_ref().map(crate::store::feed::held_back),
        }),
        Err(e) => {
            tracing::warn!(error = %e, "không đọc được độ trễ của khung nhìn");
            json!({ "ok": true, "db": store.kind(), "views_behind": null, "error": "cơ sở dữ liệu không trả lời" })
        }
    };
    Json(body).into_response()
}

/// The process can serve: its database answers.
async fn ready(State(state): State<AppState>) -> Response {
    match ping(state.store()).await {
        Ok(()) => Json(json!({ "ready": true, "db": state.store().kind() })).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "chưa sẵn sàng: cơ sở dữ liệu không trả lời");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "ready": false, "error": "cơ sở dữ liệu không trả lời" })),
            )
                .into_response()
        }
    }
}

async fn ping(store: &Store) -> Result<(), StoreError> {
    crate::with_pool!(store, pool => sqlx::query("SELECT 1").execute(pool).await.map(|_| ()).map_err(StoreError::query("kiểm tra kết nối")))
}

#[derive(Debug, thiserror::Error)]
#[error("không mở được cổng {addr}: {source}")]
pub struct BindError {
    pub addr: String,
    pub source: std::io::Error,
}

/// Binds the listening socket (so that a port in use is reported at start).
pub async fn bind(addr: &str) -> Result<tokio::net::TcpListener, BindError> {
    let parsed: SocketAddr = addr.parse().map_err(|e: std::net::AddrParseError| BindError {
        addr: addr.to_string(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()),
    })?;
    tokio::net::TcpListener::bind(parsed).await.map_err(|source| BindError {
        addr: addr.to_string(),
        source,
    })
}
