//! The auditor's desk (`/audit`, for the Inspection Committee's auditors):
//! what `audit export`, `audit verify`, `audit history` and `report review`
//! give on the server, without a shell — the whole export with the
//! independent verifier, an integrity check run in the background with the
//! latest checkpoint root and the command that checks it offline, a task's
//! history as CSV or Excel, and the review report.

use super::auth::Caller;
use super::lists::{self, Format};
use super::pages::{finish, plans_nav, refusal, render, PageResult, Refusal};
use super::review::when_text;
use super::{AppState, WebError};
use crate::accounts::Role;
use crate::audit::history::History;
use crate::audit::verify::{self, Summary};
use crate::domain::ids::TaskKey;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, Uri};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The independent verifier an export is checked with (docs/audit).
const VERIFIER: &str = include_str!("../../docs/audit/verify.py");

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/audit", get(desk))
        .route("/audit/export", get(export))
        .route("/audit/verify.py", get(verifier))
        .route("/audit/verify", get(check_page).post(start_check))
        .route("/audit/review", get(review))
        .route("/audit/history", get(history))
}

/// The integrity check the desk runs in the background: one at a time per
/// server, its progress, and its outcome once done.
#[derive(Default)]
pub struct Checks {
    current: Mutex<Option<Check>>,
}

#[derive(Clone)]
struct Check {
    started: DateTime<Utc>,
    by: String,
    total: u64,
    checked: Arc<AtomicU64>,
    finished: Option<DateTime<Utc>>,
    outcome: Option<Result<Summary, String>>,
}

impl Checks {
    fn snapshot(&self) -> Option<Check> {
        self.current.lock().map(|c| c.clone()).unwrap_or(None)
    }
}

/// The signed-in auditor, or the refusal every other account gets.
async fn auditor(state: &AppState, headers: &HeaderMap, uri: &Uri) -> Result<Caller, Refusal> {
    super::pages::signed_in_as(state, headers, uri, Role::Auditor, "dùng bàn làm việc kiểm tra").await
}

/// The check as the pages show it.
fn check_json(state: &AppState, tz: chrono_tz::Tz, check: Option<&Check>) -> Value {
    let Some(c) = check else {
        return json!(null);
    };
    let export = format!("kehoach-export-{}.jsonl", state.engine.clock.now().format("%Y%m%d"));
    let outcome = match &c.outcome {
        None => json!({ "state": "running" }),
        Some(Ok(s)) => json!({
            "state": "ok",
            "events": s.events, "chains": s.chains, "tasks": s.tasks, "checkpoints": s.checkpoints,
            "views": s.views, "accounts": s.accounts, "files": s.files, "documents": s.documents,
            "unseen": s.unseen, "store": s.store,
            "root": s.last_root,
            "command": s.last_root.as_ref().map(|r| format!("python3 verify.py {export} --root {r}")),
        }),
        Some(Err(problem)) => json!({ "state": "failed", "problem": problem }),
    };
    json!({
        "started": when_text(c.started, tz), "by": c.by,
        "finished": c.finished.map(|t| when_text(t, tz)),
        "checked": c.checked.load(Ordering::Relaxed), "total": c.total,
        "outcome": outcome, "export": export,
    })
}

/// `GET /audit`: the desk.
async fn desk(State(state): State<AppState>, headers: HeaderMap, uri: Uri) -> Response {
    let result: PageResult = async {
        let caller = auditor(&state, &headers, &uri).await?;
        let (plans, today, tz) = super::pages::today(&state).await?;
        let years: std::collections::BTreeSet<i32> = plans
            .iter()
            .filter_map(|p| p.plan.header.as_ref())
            .flat_map(|h| {
                use chrono::Datelike;
                h.start.year()..=h.end.year()
            })
            .collect();
        let check = state.checks.snapshot();
        let ctx = json!({
            "title": "Bàn làm việc kiểm tra",
            "check": check_json(&state, tz, check.as_ref()),
            "years": years,
            "plans": plans_nav(&plans),
            "plan_list": plans.iter().map(|p| json!({
                "id": p.id, "title": p.plan.header.as_ref().map_or(p.id.clone(), |h| h.title.clone()),
            })).collect::<Vec<_>>(),
            "today": today.to_string(),
        });
        Ok(render(&state, "audit.html", Some(&caller), ctx))
    }
    .await;
    finish(&state, result)
}

/// `GET /audit/export`: every event, checkpoint, evidence file and plan
/// document as `audit export` writes it (JSON Lines), read in one snapshot.
async fn export(State(state): State<AppState>, headers: HeaderMap, uri: Uri) -> Response {
    let result: PageResult = async {
        let caller = auditor(&state, &headers, &uri).await?;
        let now = state.engine.clock.now();
        let mut body: Vec<u8> = Vec::new();
        crate::audit::export::export(state.store(), &mut body, now)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "không xuất được lịch sử");
                refusal(&caller)(WebError::new(
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                    "export_failed",
                    "không xuất được lịch sử sự kiện; hãy thử lại",
                ))
            })?;
        tracing::info!(by = %caller.user.email, bytes = body.len(), "tải bản xuất lịch sử");
        Ok(lists::attachment(
            body,
            "application/x-ndjson; charset=utf-8",
            &format!("kehoach-export-{}.jsonl", now.format("%Y%m%d")),
        ))
    }
    .await;
    finish(&state, result)
}

/// `GET /audit/verify.py`: the independent verifier (Python 3.11, standard
/// library only), to check an export on the auditor's own machine.
async fn verifier(State(state): State<AppState>, headers: HeaderMap, uri: Uri) -> Response {
    let result: PageResult = async {
        auditor(&state, &headers, &uri).await?;
        Ok(lists::attachment(
            VERIFIER.as_bytes().to_vec(),
            "text/x-python; charset=utf-8",
            "verify.py",
        ))
    }
    .await;
    finish(&state, result)
}

/// `GET /audit/verify`: "Kiểm tra toàn vẹn" — the check running or done;
/// the page reloads itself every few seconds while it runs.
async fn check_page(State(state): State<AppState>, headers: HeaderMap, uri: Uri) -> Response {
    let result: PageResult = async {
        let caller = auditor(&state, &headers, &uri).await?;
        let (plans, _, tz) = super::pages::today(&state).await?;
        let check = state.checks.snapshot();
        let running = check.as_ref().is_some_and(|c| c.outcome.is_none());
        let ctx = json!({
            "title": "Kiểm tra toàn vẹn",
            "check": check_json(&state, tz, check.as_ref()),
            "refresh": running,
            "plans": plans_nav(&plans),
        });
        Ok(render(&state, "audit_verify.html", Some(&caller), ctx))
    }
    .await;
    finish(&state, result)
}

/// `POST /audit/verify`: starts `audit verify` in the background (unless one
/// is running) and goes to its page.
async fn start_check(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let result: PageResult = async {
        let caller = auditor(&state, &headers, &uri).await?;
        caller
            .check_csrf(form.get("csrf").map(String::as_str))
            .map_err(refusal(&caller))?;
        let total = state.store().event_count().await?.max(0) as u64;
        let checked = Arc::new(AtomicU64::new(0));
        {
            let mut current = state.checks.current.lock().map_err(|_| {
                refusal(&caller)(WebError::new(
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "lỗi máy chủ; hãy thử lại sau",
                ))
            })?;
            if current.as_ref().is_some_and(|c| c.outcome.is_none()) {
                return Ok(super::pages::redirect("/audit/verify"));
            }
            *current = Some(Check {
                started: state.engine.clock.now(),
                by: caller.user.name.as_str().to_string(),
                total,
                checked: checked.clone(),
                finished: None,
                outcome: None,
            });
        }
        tracing::info!(by = %caller.user.email, "bắt đầu kiểm tra toàn vẹn từ trang kiểm tra");
        let state2 = state.clone();
        tokio::spawn(async move {
            // The check runs in a task of its own, so that one that stops
            // abnormally is recorded as such and never shows as running.
            let store = state2.store().clone();
            let run =
                tokio::spawn(async move { verify::verify(&store, |n| checked.store(n, Ordering::Relaxed)).await });
            let outcome = match run.await {
                Ok(Ok(Ok(summary))) => Ok(summary),
                Ok(Ok(Err(problem))) => Err(format!("Phát hiện sai lệch: {problem}")),
                Ok(Err(e)) => Err(format!("Không kiểm tra được: {e}")),
                Err(e) => Err(format!("Lần kiểm tra dừng bất thường: {e}")),
            };
            match &outcome {
                Ok(s) => tracing::info!(events = s.events, "kiểm tra toàn vẹn: hợp lệ"),
                Err(e) => tracing::warn!(error = %e, "kiểm tra toàn vẹn: không hợp lệ"),
            }
            if let Ok(mut current) = state2.checks.current.lock() {
                if let Some(c) = current.as_mut() {
                    c.finished = Some(state2.engine.clock.now());
                    c.outcome = Some(outcome);
                }
            }
        });
        Ok(super::pages::redirect("/audit/verify"))
    }
    .await;
    finish(&state, result)
}

/// `GET /audit/review?year=Y` (or the whole period without): the review
/// report, as `report review` writes it.
async fn review(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let result: PageResult = async {
        let caller = auditor(&state, &headers, &uri).await?;
        let refuse = refusal(&caller);
        let scope = match q.get("year").map(|y| y.trim()).filter(|y| !y.is_empty()) {
            None => crate::audit::report::Scope::Period,
            Some(y) => crate::audit::report::Scope::Year(
                y.parse()
                    .ok()
                    .filter(|y: &i32| (1900..=2999).contains(y))
                    .ok_or_else(|| refuse(WebError::bad_request(format!("năm {y:?} phải là số có bốn chữ số"))))?,
            ),
        };
        let report = crate::audit::report::review(&state.engine, scope)
            .await
            .map_err(|e| refuse(WebError::bad_request(e.to_string())))?;
        // The report is a printable document with its own inline styles:
        // served under the policy of a file shown in the browser.
        let mut response = Html(report.html).into_response();
        response.headers_mut().insert(
            axum::http::header::CONTENT_SECURITY_POLICY,
            axum::http::HeaderValue::from_static(super::files::FILE_POLICY),
        );
        Ok(response)
    }
    .await;
    finish(&state, result)
}

/// The columns of a task's history download.
const HISTORY_HEADERS: [&str; 7] = [
    "Số thứ tự",
    "Thời điểm",
    "Người thực hiện",
    "Việc",
    "Chi tiết",
    "Mã băm",
    "Kho ghi lúc",
];

/// `GET /audit/history?plan=P&task=T&format=csv|xlsx`: a task's whole
/// history (deliveries included, Message-IDs and full hashes), as
/// `audit history` prints it.
async fn history(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let result: PageResult = async {
        let caller = auditor(&state, &headers, &uri).await?;
        let refuse = refusal(&caller);
        let format = Format::parse(q.get("format").map_or("csv", String::as_str))
            .map_err(|why| refuse(WebError::bad_request(why)))?;
        let plans = state.plan_views().await?;
        let plan = q.get("plan").map(|p| p.trim()).filter(|p| !p.is_empty());
        let task = q.get("task").map(|t| t.trim()).unwrap_or_default();
        if task.is_empty() {
            return Err(refuse(WebError::bad_request("hãy nhập mã nhiệm vụ, ví dụ III.1.2")));
        }
        let (key, plan_view, _) = super::forms::visible_task(&state, &plans, &caller.user, task, plan)
            .await
            .map_err(&refuse)?;
        let h = History::read(state.store(), key.clone(), None, plan_view.tz()).await?;
        let rows: Vec<Vec<String>> = h
            .entries
            .iter()
            .map(|e| {
                vec![
                    e.sequence.to_string(),
                    e.at.format("%d/%m/%Y %H:%M:%S").to_string(),
                    e.actor_text.clone(),
                    e.what.clone(),
                    e.details.clone(),
                    e.hash.clone().unwrap_or_default(),
                    e.recorded_at
                        .map(|t| t.format("%d/%m/%Y %H:%M:%S").to_string())
                        .unwrap_or_default(),
                ]
            })
            .collect();
        let name = format!("lich-su-{}-{}", key.plan, file_safe(&key));
        lists::table_download(format, "Lịch sử", &HISTORY_HEADERS, &rows, &name).map_err(refuse)
    }
    .await;
    finish(&state, result)
}

/// A task id in a file name ("III.1.2" stays, anything else becomes "-").
fn file_safe(key: &TaskKey) -> String {
    key.task
        .as_str()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '.' { c } else { '-' })
        .collect()
}
