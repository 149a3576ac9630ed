//! The JSON API under `/api/`: everything the CLI does on tasks and
//! milestones, for machine clients with API tokens (and for the pages'
//! own session, reading). Described at `/api/openapi.json`.

use super::auth::{self, Caller};
use super::forms::{self, ActionInput};
use super::{AppState, WebError};
use crate::accounts::{Action, Role};
use crate::audit::history::{parse_as_of, History, PlanAsOf};
use crate::domain::dates::parse_date;
use crate::domain::ids::{AgencyCode, TaskKey};
use crate::domain::task::MilestoneStatus;
use crate::projections::json::{obligation_states, task_json};
use crate::projections::views::{today_in, PlanView, TaskFilter, TaskView};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::HashMap;

pub const OPENAPI: &str = include_str!("openapi.json");

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/openapi.json", get(openapi))
        .route("/me", get(me))
        .route("/plans", get(plans).post(load_plan))
        .route("/plans/{plan}/as-of", get(plan_as_of))
        .route("/tasks", get(list))
        .route("/tasks/{task}", get(show))
        .route("/tasks/{task}/history", get(history))
        .route("/tasks/{task}/milestones/{milestone}/{action}", post(act))
        .route("/queue", get(queue))
}

type Params = Query<HashMap<String, String>>;

fn param<'a>(q: &'a Params, name: &str) -> Option<&'a str> {
    q.get(name).map(String::as_str).filter(|v| !v.trim().is_empty())
}

/// An instant parameter: a date (end of that local day) or RFC 3339.
fn instant(q: &Params, name: &str, tz: chrono_tz::Tz) -> Result<Option<chrono::DateTime<chrono::Utc>>, WebError> {
    param(q, name)
        .map(|a| parse_as_of(a, tz).map_err(|e| WebError::bad_request(format!("{name}: {e}"))))
        .transpose()
}

fn only_known(q: &Params, known: &[&str]) -> Result<(), WebError> {
    match q.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(WebError::bad_request(format!(
            "tham số không có: {k:?} (dùng {})",
            known.join(", ")
        ))),
        None => Ok(()),
    }
}

/// The task a request names (`{task}`, `?plan=`), if the caller may see it.
async fn task_for(
    state: &AppState,
    caller: &Caller,
    task: &str,
    q: &Params,
) -> Result<(TaskKey, PlanView, TaskView), WebError> {
    let plans = state.store().plan_views().await?;
    forms::visible_task(state, &plans, &caller.user, task, param(q, "plan")).await
}

async fn openapi() -> Response {
    ([("content-type", "application/json")], OPENAPI).into_response()
}

async fn me(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<Value>, WebError> {
    let caller = auth::require(&state, &headers).await?;
    Ok(Json(json!({ "user": caller.user })))
}

async fn plans(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<Value>, WebError> {
    auth::require(&state, &headers).await?;
    let plans = state.store().plan_views().await?;
    Ok(Json(json!(plans
        .iter()
        .map(|p| {
            let h = p.plan.header.as_ref();
            json!({
                "id": p.id,
                "title": h.map(|h| h.title.clone()),
                "start": h.map(|h| h.start.to_string()),
                "end": h.map(|h| h.end.to_string()),
                "agencies": p.plan.agencies.iter().map(|a| json!({ "code": a.code, "name": a.name })).collect::<Vec<_>>(),
                "source": p.plan.source,
                "loaded": p.plan.loaded.as_ref().map(|s| json!({ "by": s.by.to_json(), "at": s.at.to_rfc3339() })),
            })
        })
        .collect::<Vec<_>>())))
}

/// `POST /api/plans` with a plan file (TOML) as the body: admins only.
async fn load_plan(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Result<Response, WebError> {
    let caller = auth::require(&state, &headers).await?;
    if !caller.user.has(Role::Admin) {
        return Err(WebError::forbidden_role("nạp kế hoạch"));
    }
    caller.check_csrf(auth::csrf_header(&headers))?;
    let text = std::str::from_utf8(&body).map_err(|_| WebError::bad_request("tệp kế hoạch phải là văn bản UTF-8"))?;
    let (status, value) = forms::load_plan_text(&state, &caller, text).await?;
    Ok((status, Json(value)).into_response())
}

/// `GET /api/plans/{plan}/as-of?at=DATE&since=DATE`: auditors and admins.
async fn plan_as_of(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(plan): Path<String>,
    q: Params,
) -> Result<Json<Value>, WebError> {
    let caller = auth::require(&state, &headers).await?;
    only_known(&q, &["at", "since"])?;
    if !caller.user.sees_everything() {
        return Err(WebError::forbidden_role("xem toàn bộ kế hoạch tại một thời điểm"));
    }
    let plans = state.store().plan_views().await?;
    let view = plans
        .iter()
        .find(|p| p.id == plan)
        .ok_or_else(|| WebError::not_found(format!("không có kế hoạch {plan:?}")))?;
    let tz = view.tz();
    let at = instant(&q, "at", tz)?.unwrap_or_else(|| state.engine.clock.now());
    let since = instant(&q, "since", tz)?;
    if since.is_some_and(|s| s >= at) {
        return Err(WebError::bad_request("since phải trước at"));
    }
    Ok(Json(
        PlanAsOf::replay(state.store(), Some(&plan), at, since, tz)
            .await?
            .to_json(),
    ))
}

/// `GET /api/tasks`: the tasks the caller may see, filtered like `task list`.
async fn list(State(state): State<AppState>, headers: HeaderMap, q: Params) -> Result<Json<Value>, WebError> {
    let caller = auth::require(&state, &headers).await?;
    only_known(&q, &["plan", "agency", "status", "due_before", "overdue"])?;
    let agency = param(&q, "agency").map(AgencyCode::parse_loose).transpose()?;
    let status = param(&q, "status")
        .map(|s| MilestoneStatus::parse_named(s).map_err(WebError::bad_request))
        .transpose()?;
    let due_before = param(&q, "due_before")
        .map(|d| parse_date(d).map_err(|e| WebError::bad_request(format!("due_before: {e}"))))
        .transpose()?;
    let overdue = match param(&q, "overdue") {
        None | Some("false") | Some("0") => false,
        Some("true") | Some("1") => true,
        Some(other) => {
            return Err(WebError::bad_request(format!(
                "overdue: {other:?} (dùng true hoặc false)"
            )))
        }
    };
    let filter = TaskFilter {
        plan: param(&q, "plan").map(str::to_string),
        agency,
        status,
        due_before,
        overdue,
    };
    let (today, tz) = today_in(&state.store().plan_views().await?, state.engine.clock.now());
    let views: Vec<Value> = state
        .store()
        .task_views()
        .await?
        .iter()
        .filter(|v| caller.user.can_see(v))
        .filter(|v| filter.matches(v, today, tz))
        .map(|v| task_json(v, today, tz, false))
        .collect();
    Ok(Json(json!(views)))
}

async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(task): Path<String>,
    q: Params,
) -> Result<Json<Value>, WebError> {
    let caller = auth::require(&state, &headers).await?;
    only_known(&q, &["plan"])?;
    let (_, plan, view) = task_for(&state, &caller, &task, &q).await?;
    let tz = plan.tz();
    let today = crate::domain::dates::local_date(state.engine.clock.now(), tz);
    let mut v = task_json(&view, today, tz, true);
    v["allowed"] = json!(Action::ALL
        .iter()
        .filter(|a| caller.user.may(**a, &view))
        .map(|a| a.as_str())
        .collect::<Vec<_>>());
    Ok(Json(v))
}

async fn history(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(task): Path<String>,
    q: Params,
) -> Result<Json<Value>, WebError> {
    let caller = auth::require(&state, &headers).await?;
    only_known(&q, &["plan", "as_of"])?;
    let (key, plan, _) = task_for(&state, &caller, &task, &q).await?;
    let tz = plan.tz();
    let as_of = instant(&q, "as_of", tz)?;
    let events = state.store().task_events(&key.to_string()).await?;
    let plan_events = state.store().plan_events(key.plan.as_str()).await?;
    Ok(Json(
        History::new(key, &events, as_of, tz)
            .with_directory_changes(&plan_events)
            .to_json(),
    ))
}

async fn act(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((task, milestone, action)): Path<(String, String, String)>,
    q: Params,
    body: Bytes,
) -> Result<Json<Value>, WebError> {
    let caller: Caller = auth::require(&state, &headers).await?;
    only_known(&q, &["plan"])?;
    caller.check_csrf(auth::csrf_header(&headers))?;
    let action = Action::parse(&action).ok_or_else(|| {
        WebError::not_found(format!(
            "không có thao tác {action:?} (dùng {})",
            Action::ALL.map(|a| a.as_str()).join(", ")
        ))
    })?;
    let input: ActionInput = if body.iter().all(u8::is_ascii_whitespace) {
        ActionInput::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| WebError::bad_request(format!("nội dung JSON không hợp lệ: {e}")))?
    };
    let (key, _, _) = task_for(&state, &caller, &task, &q).await?;
    let after = forms::perform(&state, &caller, &key, &milestone, action, input).await?;
    Ok(Json(json!({
        "task": key.task, "plan": key.plan, "milestone": milestone,
        "action": action.as_str(), "status": after.as_ref().map(|m| m.status.as_str()),
        "obligations": after.as_ref().map(obligation_states).unwrap_or_default(),
    })))
}

/// `GET /api/queue`: submitted milestones the caller may approve.
async fn queue(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<Value>, WebError> {
    let caller = auth::require(&state, &headers).await?;
    let views = state.store().task_views().await?;
    Ok(Json(json!(forms::approval_queue(&caller.user, &views)
        .iter()
        .map(|(v, m, o)| json!({
            "task": v.id.split_once('/').map_or(v.id.as_str(), |(_, t)| t),
            "plan": v.id.split_once('/').map_or("", |(p, _)| p),
            "milestone": m.spec.id, "title": m.spec.title, "due": o.due.to_string(),
            "agency": o.agency, "joint": o.agency.is_none(),
            "submitted": o.submitted,
        }))
        .collect::<Vec<_>>())))
}
