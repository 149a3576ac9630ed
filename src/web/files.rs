//! Evidence files on the web: reading a multipart action request (text
//! fields and `files` parts), checking and storing the files before the
//! action's event, and serving a task's files to those who may see it.

use super::auth::Caller;
use super::{AppState, WebError, BODY_LIMIT};
use crate::accounts::Action;
use crate::domain::files::{self, FileError};
use crate::domain::ids::TaskKey;
use crate::domain::task::{Attachment, FileHash};
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::header::{self, HeaderValue};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// Files posted with one action: (name as sent, bytes).
pub type Uploads = Vec<(String, Vec<u8>)>;

/// The largest body an action with files may have: every file at the
/// limit, plus the text fields.
pub fn upload_body_limit(max_file_bytes: u64) -> usize {
    let files = max_file_bytes.saturating_mul(crate::domain::task::evidence::ATTACHMENTS_MAX_ITEMS as u64);
    usize::try_from(files).unwrap_or(usize::MAX).saturating_add(BODY_LIMIT)
}

/// Whether a request's body is `multipart/form-data`.
pub fn is_multipart(request: &Request) -> bool {
    request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("multipart/form-data"))
}

/// The body of a request that is not multipart, within the usual 1 MiB.
pub async fn small_body(request: Request) -> Result<axum::body::Bytes, WebError> {
    axum::body::to_bytes(request.into_body(), BODY_LIMIT)
        .await
        .map_err(|_| {
            too_large(format!(
                "nội dung yêu cầu quá lớn (tối đa {} MiB)",
                BODY_LIMIT / (1024 * 1024)
            ))
        })
}

fn too_large(message: String) -> WebError {
    WebError::new(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", message)
}

/// Reads a multipart body: its text fields in order (UTF-8 only) and the
/// parts named `files`. A file input left empty (no name, no bytes) is skipped.
pub async fn read_multipart(state: &AppState, request: Request) -> Result<(Vec<(String, String)>, Uploads), WebError> {
    let limit = upload_body_limit(state.security.max_file_bytes);
    read_parts(state, request, "files", move || {
        too_large(format!(
            "nội dung yêu cầu quá lớn (tối đa {} MiB)",
            limit / (1024 * 1024)
        ))
    })
    .await
}

/// Reads a multipart body: its text fields in order (UTF-8 only) and the
/// parts named `file_field` (name as sent, bytes); `too_large` is the
/// refusal when the body is over the route's limit. A file input left
/// empty (no name, no bytes) is skipped.
pub async fn read_parts(
    state: &AppState,
    request: Request,
    file_field: &str,
    too_large: impl Fn() -> WebError,
) -> Result<(Vec<(String, String)>, Uploads), WebError> {
    let refused = |e: axum::extract::multipart::MultipartError| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            too_large()
        } else {
            WebError::bad_request(format!(
                "nội dung multipart/form-data không đọc được: {}",
                e.body_text()
            ))
        }
    };
    let mut multipart = Multipart::from_request(request, state)
        .await
        .map_err(|e| WebError::bad_request(format!("nội dung multipart/form-data không hợp lệ: {}", e.body_text())))?;
    let (mut fields, mut uploads) = (Vec::new(), Vec::new());
    while let Some(field) = multipart.next_field().await.map_err(refused)? {
        let name = field.name().unwrap_or_default().to_string();
        let file_name = field.file_name().map(str::to_string);
        let bytes = field.bytes().await.map_err(refused)?;
        if name == file_field {
            let file_name = file_name.unwrap_or_default();
            if !(file_name.is_empty() && bytes.is_empty()) {
                uploads.push((file_name, bytes.to_vec()));
            }
            continue;
        }
        let text = String::from_utf8(bytes.to_vec()).map_err(|_| {
            WebError::bad_request(format!(
                "trường {name:?} có dữ liệu không phải UTF-8; không ghi nhận gì"
            ))
        })?;
        fields.push((name, text));
    }
    Ok((fields, uploads))
}

impl From<FileError> for WebError {
    fn from(e: FileError) -> Self {
        let (status, code) = match &e {
            FileError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "file_too_large"),
            FileError::UnknownType { .. } | FileError::Empty { .. } => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "file_type_refused")
            }
            FileError::TooMany { .. } => (StatusCode::BAD_REQUEST, "too_many_files"),
        };
        WebError::new(status, code, e.to_string())
    }
}

/// Checks the files of an action and stores them, before the action's
/// event is written; what the event records of them. Only a report or a
/// submission carries files, and only for a role that may make it.
pub async fn attach(
    state: &AppState,
    caller: &Caller,
    action: Action,
    uploads: Uploads,
) -> Result<Vec<Attachment>, WebError> {
    if uploads.is_empty() {
        return Ok(Vec::new());
    }
    if !matches!(action, Action::Report | Action::Submit) {
        return Err(WebError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "files_not_taken",
            format!(
                "chỉ đính kèm tệp khi báo cáo hoặc nộp, không khi {}",
                action.label_vi().to_lowercase()
            ),
        ));
    }
    if !caller.user.role_allows(action) {
        return Err(WebError::forbidden_role(&action.label_vi().to_lowercase()));
    }
    let checked = files::check_all(uploads, state.security.max_file_bytes)?;
    state.store().put_files(&checked, state.engine.clock.now()).await?;
    Ok(checked.into_iter().map(|f| f.attachment).collect())
}

/// A task's file, for a caller who may see the task (checked before): 404
/// unless an event of the task attaches this hash.
pub async fn task_file(state: &AppState, key: &TaskKey, sha256: &str, inline: bool) -> Result<Response, WebError> {
    let missing = || WebError::not_found("nhiệm vụ này không có tệp minh chứng như vậy");
    let hash = FileHash::parse(sha256).map_err(|_| missing())?;
    let events = state.store().task_events(&key.to_string()).await?;
    let attachment = events
        .iter()
        .flat_map(|e| e.event.attachments())
        .find(|a| a.sha256 == hash)
        .cloned()
        .ok_or_else(missing)?;
    let stored = state.store().get_file(&hash).await?.ok_or_else(|| {
        tracing::error!(task = %key, sha256 = %hash, "tệp minh chứng có trong sự kiện nhưng không có trong kho");
        WebError::not_found("tệp minh chứng không còn trong kho (báo quản trị chạy audit verify)")
    })?;
    Ok(file_response(
        &attachment.name,
        &stored.media_type,
        stored.bytes,
        inline,
    ))
}

/// The file as a download (`attachment`), or shown by the browser
/// (`inline`) when asked and it is a PDF or an image, sandboxed.
pub fn file_response(name: &str, media_type: &str, bytes: Vec<u8>, inline: bool) -> Response {
    let inline = inline && files::viewable(media_type);
    let disposition = format!(
        "{}; filename=\"{}\"; filename*=UTF-8''{}",
        if inline { "inline" } else { "attachment" },
        ascii_fallback(name),
        rfc5987(name)
    );
    let mut response = bytes.into_response();
    let h = response.headers_mut();
    let typed = HeaderValue::from_str(media_type).unwrap_or(HeaderValue::from_static("application/octet-stream"));
    h.insert(header::CONTENT_TYPE, typed);
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(FILE_POLICY));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    response
}

/// What a served file may do when a browser shows it: nothing (no script,
/// no form, no connection), in a sandbox of its own origin.
pub const FILE_POLICY: &str = "sandbox; default-src 'none'; img-src 'self'; object-src 'self'; \
     style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// The name with anything but printable ASCII (and `"`, `\`) as `_`, for
/// browsers that ignore `filename*`.
fn ascii_fallback(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// RFC 5987 / 8187 encoding of a UTF-8 value.
fn rfc5987(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_in_headers() {
        assert_eq!(rfc5987("Báo cáo.pdf"), "B%C3%A1o%20c%C3%A1o.pdf");
        assert_eq!(ascii_fallback("Báo \"cáo\".pdf"), "B_o _c_o_.pdf");
        assert!(upload_body_limit(10 * 1024 * 1024) > 100 * 1024 * 1024);
    }
}
