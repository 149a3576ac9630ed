//! The state already reached, on the web (administrators): the plan page's
//! template of every obligation with today's state (.xlsx or .csv), and the
//! admin page's upload of the filled sheet, recorded all rows or none
//! (`engine::baseline`). Rows that cannot be recorded come back on the admin
//! page with their numbers; nothing of the sheet is written.

use super::admin::{admin_caller, field};
use super::files::{file_response, read_parts};
use super::pages::{admin_page, finish, Refusal};
use super::{AppState, WebError};
use crate::domain::task::{Channel, SheetRef};
use crate::engine::baseline::BaselineError;
use crate::plan::baseline::SHEET_MAX_BYTES;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde_json::json;

/// Routes that read a body up to the sheet's size limit.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/plans/baseline", post(upload))
        .layer(axum::extract::DefaultBodyLimit::max(SHEET_MAX_BYTES + 64 * 1024))
}

/// Routes with no body.
pub fn pages() -> Router<AppState> {
    Router::new().route("/plans/{plan}/baseline/{file}", get(template))
}

/// `GET /plans/{plan}/baseline/hien-trang.xlsx|.csv`: every obligation of
/// the plan with its state today, to fill in and upload (administrators).
async fn template(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path((plan, file)): Path<(String, String)>,
) -> Response {
    let result = async {
        admin_caller(&state, &headers, &uri, "tải mẫu ghi nhận hiện trạng").await?;
        let xlsx = match file.as_str() {
            "hien-trang.xlsx" => true,
            "hien-trang.csv" => false,
            _ => return Err(WebError::not_found("không có tệp này (hien-trang.xlsx hoặc hien-trang.csv)").into()),
        };
        let (plan_id, today, rows) = state.engine.baseline_template(Some(&plan)).await.map_err(|e| match e {
            BaselineError::Plan(why) => Refusal::from(WebError::not_found(why)),
            BaselineError::Engine(e) => Refusal::from(WebError::from(e)),
            rows @ BaselineError::Rows { .. } => Refusal::from(WebError::bad_request(rows.to_string())),
        })?;
        let (body, media) = if xlsx {
            let bytes = crate::plan::baseline::template_xlsx(&rows).map_err(|e| {
                tracing::error!(error = %e, "lỗi tạo tệp Excel");
                WebError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "export_failed",
                    "không tạo được tệp Excel",
                )
            })?;
            (
                bytes,
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            )
        } else {
            (crate::plan::baseline::template_csv(&rows), "text/csv; charset=utf-8")
        };
        let name = format!("hien-trang-{plan_id}-{today}.{}", if xlsx { "xlsx" } else { "csv" });
        Ok(file_response(&name, media, body, false))
    }
    .await;
    finish(&state, result)
}

/// `POST /admin/plans/baseline` (multipart: `csrf`, `plan`, `file`).
async fn upload(State(state): State<AppState>, headers: HeaderMap, uri: Uri, request: Request) -> Response {
    let result = async {
        let caller = admin_caller(&state, &headers, &uri, "ghi nhận hiện trạng").await?;
        let refuse = |e: WebError| Refusal::Error(e, Some(Box::new(caller.clone())));
        let (fields, files) = read_parts(&state, request, "file", || {
            WebError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("bảng tính quá lớn (tối đa {} MiB)", SHEET_MAX_BYTES / 1024 / 1024),
            )
        })
        .await
        .map_err(&refuse)?;
        caller.check_csrf(Some(field(&fields, "csrf"))).map_err(&refuse)?;
        let Some((file_name, bytes)) = files.into_iter().next() else {
            return Err(refuse(WebError::bad_request("chưa chọn bảng tính (.xlsx hoặc .csv)")));
        };
        let file_name = crate::domain::files::clean_name(&file_name);
        let plan = Some(field(&fields, "plan").to_string());
        let (status, outcome) = record(&state, &caller, plan, &file_name, &bytes)
            .await
            .map_err(&refuse)?;
        let mut page = admin_page(&state, &caller, json!({ "baseline": outcome }))
            .await
            .map_err(&refuse)?;
        *page.status_mut() = status;
        Ok(page)
    }
    .await;
    finish(&state, result)
}

/// Reads and records a sheet: the status and what the admin page says.
async fn record(
    state: &AppState,
    caller: &super::auth::Caller,
    plan: Option<String>,
    file_name: &str,
    bytes: &[u8],
) -> Result<(StatusCode, serde_json::Value), WebError> {
    let failed = |message: String, rows: Vec<String>| {
        Ok((
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({ "failed": true, "message": message, "rows": rows }),
        ))
    };
    let lines = match crate::plan::baseline::read(file_name, bytes) {
        Ok(lines) => lines,
        Err(e) => return failed(format!("{file_name}: {e}; không ghi nhận gì"), vec![]),
    };
    let sheet = SheetRef {
        file: file_name.to_string(),
        sha256: crate::domain::files::sha256(bytes).to_string(),
    };
    let by = caller.user.actor(Channel::Sheet {
        file: sheet.file.clone(),
        sha256: sheet.sha256.clone(),
        via: "web".into(),
    });
    let plan = plan.filter(|p| !p.trim().is_empty());
    match state.engine.record_baseline(plan.as_deref(), &sheet, lines, by).await {
        Ok(r) => Ok((
            StatusCode::OK,
            json!({
                "failed": false,
                "message": format!(
                    "Đã ghi nhận {} dòng của {file_name} ({} đã hoàn thành, {} đang thực hiện, {} chưa thực hiện, {} không thực hiện); {} dòng không đổi.",
                    r.recorded, r.done, r.in_progress, r.not_started, r.not_done, r.unchanged
                ),
                "rows": [],
            }),
        )),
        Err(BaselineError::Rows { rows }) => failed(
            format!(
                "{file_name}: {} dòng không ghi nhận được; không ghi nhận dòng nào của bảng.",
                rows.len()
            ),
            rows.into_iter().map(|(r, why)| format!("Dòng {r}: {why}")).collect(),
        ),
        Err(BaselineError::Plan(why)) => failed(why, vec![]),
        Err(BaselineError::Engine(e)) => Err(e.into()),
    }
}
