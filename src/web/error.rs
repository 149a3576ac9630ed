//! Every refusal the web layer gives: an HTTP status, a stable code and a
//! Vietnamese message. The API renders it as JSON, the pages as HTML;
//! server errors are logged in full and shown without internals.

use crate::accounts::AccountError;
use crate::domain::task::TaskError;
use crate::engine::EngineError;
use crate::projections::views::LookupError;
use crate::store::StoreError;
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl WebError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn unauthenticated() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "cần đăng nhập (phiên đăng nhập hoặc mã truy cập API)",
        )
    }

    pub fn forbidden_role(what: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "forbidden_role",
            format!("vai trò của bạn không cho phép {what}"),
        )
    }

    pub fn not_your_task() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "not_your_task",
            "nhiệm vụ này không thuộc cơ quan của bạn",
        )
    }

    pub fn csrf() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "csrf",
            "biểu mẫu đã hết hạn hoặc không hợp lệ; hãy tải lại trang và thử lại",
        )
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", what)
    }

    pub(crate) fn internal(detail: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "lỗi máy chủ");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "lỗi máy chủ; thao tác chưa được ghi nhận, hãy thử lại sau",
        )
    }

    pub fn body(&self) -> serde_json::Value {
        json!({ "error": { "code": self.code, "message": self.message } })
    }
}

impl From<StoreError> for WebError {
    fn from(e: StoreError) -> Self {
        Self::internal(&e)
    }
}

impl From<TaskError> for WebError {
    fn from(e: TaskError) -> Self {
        let status = if e.is_permission() {
            StatusCode::FORBIDDEN
        } else if matches!(e, TaskError::FourEyes { .. }) {
            StatusCode::CONFLICT
        } else {
            StatusCode::UNPROCESSABLE_ENTITY
        };
        Self::new(status, e.code(), e.to_string())
    }
}

impl From<EngineError> for WebError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Rejected { source, .. } => source.into(),
            EngineError::Conflict(_) => Self::new(StatusCode::CONFLICT, "conflict", e.to_string()),
            EngineError::AccountRejected { .. } => Self::new(StatusCode::CONFLICT, "account_rejected", e.to_string()),
            EngineError::RequestReused(_) => Self::new(StatusCode::CONFLICT, "idempotency_key_reused", e.to_string()),
            EngineError::PlanRejected { .. } => {
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, "plan_rejected", e.to_string())
            }
            other => Self::internal(&other),
        }
    }
}

impl From<LookupError> for WebError {
    fn from(e: LookupError) -> Self {
        match e {
            LookupError::UnknownPlan { .. } => Self::not_found(e.to_string()),
            other => Self::bad_request(other.to_string()),
        }
    }
}

impl From<AccountError> for WebError {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::Store(s) => s.into(),
            AccountError::Engine(e) => e.into(),
            AccountError::Hash(h) => Self::internal(&h),
            AccountError::LinkInvalid => Self::not_found(e.to_string()),
            other => Self::bad_request(other.to_string()),
        }
    }
}

impl From<crate::domain::ids::IdError> for WebError {
    fn from(e: crate::domain::ids::IdError) -> Self {
        Self::bad_request(e.to_string())
    }
}

/// The API's rendering.
impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body())).into_response()
    }
}

/// Refusals made below the handlers (body too large, timeout, no route)
/// come as plain text; under `/api/` they are turned into the JSON shape.
pub async fn json_for_api_errors(uri: Uri, response: Response) -> Response {
    let status = response.status();
    if !uri.path().starts_with("/api/") || !(status.is_client_error() || status.is_server_error()) || is_json(&response)
    {
        return response;
    }
    let allow = response.headers().get(header::ALLOW).cloned();
    let mut json = below_handlers(status, true).into_response();
    if let Some(allow) = allow {
        json.headers_mut().insert(header::ALLOW, allow);
    }
    json
}

/// A refusal made below the handlers (no route, wrong method, body too
/// large, timeout), in words; `api` for `/api/`, else for the pages.
pub fn below_handlers(status: StatusCode, api: bool) -> WebError {
    let (code, message) = match status {
        StatusCode::PAYLOAD_TOO_LARGE => ("body_too_large", "nội dung yêu cầu quá lớn (tối đa 1 MiB)"),
        StatusCode::REQUEST_TIMEOUT => ("timeout", "yêu cầu xử lý quá lâu và đã bị dừng"),
        StatusCode::NOT_FOUND if api => ("not_found", "không có địa chỉ này trong API (xem /api/openapi.json)"),
        StatusCode::NOT_FOUND => ("not_found", "Không có trang này; hãy kiểm tra địa chỉ hoặc về Hộp việc"),
        StatusCode::METHOD_NOT_ALLOWED => ("method_not_allowed", "phương thức không dùng được ở địa chỉ này"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ("unsupported_media_type", "kiểu nội dung không được hỗ trợ"),
        s if s.is_server_error() => ("internal", "lỗi máy chủ; hãy thử lại sau"),
        _ => ("bad_request", "yêu cầu không hợp lệ"),
    };
    WebError::new(status, code, message)
}

fn is_json(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}
