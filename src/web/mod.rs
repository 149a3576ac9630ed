//! The HTTP server that `serve` runs beside the projections and the
//! reminder loop. For now: health and readiness for operators; the API and
//! the pages for agencies come with the web issue.

use crate::store::{Store, StoreError};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use std::net::SocketAddr;
use std::time::Duration;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Request bodies larger than this are refused (413).
pub const BODY_LIMIT: usize = 1024 * 1024;
/// Requests taking longer than this are cut off (408).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// The process is up.
async fn health() -> &'static str {
    "ok"
}

/// The process can serve: its database answers.
async fn ready(State(state): State<AppState>) -> Response {
    match ping(&state.store).await {
        Ok(()) => Json(json!({ "ready": true, "db": state.store.kind() })).into_response(),
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
