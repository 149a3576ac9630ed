//! The JSON API under `/api/`: everything the CLI does on tasks and
//! milestones, for machine clients with API tokens (and for the pages'
//! own session, reading). Described at `/api/openapi.json`.

use super::auth::{self, Caller};
use super::files;
use super::forms::{self, ActionInput};
use super::{AppState, WebError};
use crate::accounts::{Action, Role};
use crate::audit::history::{parse_as_of, History, PlanAsOf};
use crate::domain::dates::parse_iso_date;
use crate::domain::ids::TaskKey;
use crate::projections::json::{obligation_states, task_json};
use crate::projections::lists::ListQuery;
use crate::projections::views::{today_in, PlanView, TaskView};
use crate::store::requests::RequestId;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
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
        .route("/plans/{plan}/document", get(plan_document))
        .route("/tasks", get(list))
        .route("/tasks/{task}", get(show))
        .route("/tasks/{task}/history", get(history))
        .route("/tasks/{task}/files/{sha256}", get(file))
        .route("/queue", get(queue))
}

type Params = Query<HashMap<String, String>>;

/// A query parameter; present but empty (`?status=`) is a 400, not "absent".
fn param<'a>(q: &'a Params, name: &str) -> Result<Option<&'a str>, WebError> {
    match q.get(name).map(String::as_str) {
        Some(v) if v.trim().is_empty() => Err(WebError::bad_request(format!(
            "tham số {name} để trống; bỏ hẳn tham số hoặc cho một giá trị"
        ))),
        other => Ok(other),
    }
}

/// An instant parameter: a date `YYYY-MM-DD` (end of that local day) or an
/// RFC 3339 date-time, as the description declares.
fn instant(q: &Params, name: &str, tz: chrono_tz::Tz) -> Result<Option<chrono::DateTime<chrono::Utc>>, WebError> {
    param(q, name)?
        .map(|a| {
            let shaped = parse_iso_date(a).is_ok() || chrono::DateTime::parse_from_rfc3339(a).is_ok();
            let refused = |e: String| WebError::bad_request(format!("{name}: {e} (dùng YYYY-MM-DD hoặc RFC 3339)"));
            if !shaped {
                return Err(refused(format!("{a:?} không phải ngày hay thời điểm")));
            }
            parse_as_of(a, tz).map_err(refused)
        })
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
    let plans = state.plan_views().await?;
    forms::visible_task(state, &plans, &caller.user, task, param(q, "plan")?).await
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
    let plans = state.plan_views().await?;
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
    let request = idempotency_key(&headers)?;
    let text = std::str::from_utf8(&body).map_err(|_| WebError::bad_request("tệp kế hoạch phải là văn bản UTF-8"))?;
    let (status, value, replayed) = forms::load_plan_text_once(&state, &caller, text, request.as_ref()).await?;
    Ok(replay_marked((status, Json(value)).into_response(), replayed))
}

pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
pub const REPLAYED: &str = "idempotent-replayed";

/// The request's `Idempotency-Key`, if it sent one; a malformed one is a 400.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<RequestId>, WebError> {
    let Some(value) = headers.get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    let text = value.to_str().map_err(|_| {
        WebError::new(
            StatusCode::BAD_REQUEST,
            "bad_idempotency_key",
            "Idempotency-Key phải là văn bản ASCII",
        )
    })?;
    RequestId::parse(text.trim()).map(Some).map_err(|e| {
        WebError::new(
            StatusCode::BAD_REQUEST,
            "bad_idempotency_key",
            format!("Idempotency-Key: {e}"),
        )
    })
}

/// A reply given again for a retried key says so.
fn replay_marked(mut response: Response, replayed: bool) -> Response {
    if replayed {
        response
            .headers_mut()
            .insert(REPLAYED, axum::http::HeaderValue::from_static("true"));
    }
    response
}

/// `GET /api/plans/{plan}/document`: the original document the plan was
/// imported from, as a download, for anyone signed in.
async fn plan_document(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(plan): Path<String>,
    q: Params,
) -> Result<Response, WebError> {
    auth::require(&state, &headers).await?;
    only_known(&q, &[])?;
    super::imports::plan_document(&state, &plan).await
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
    let plans = state.plan_views().await?;
    let view = plans
        .iter()
        .find(|p| p.id == plan)
        .ok_or_else(|| WebError::not_found(format!("không có kế hoạch {plan:?}")))?;
    let tz = view.tz();
    let at = instant(&q, "at", tz)?.unwrap_or_else(|| state.engine.clock.now());
    let since = instant(&q, "since", tz)?;
    if since.is_some_and(|s| s >= at) {
        // Each is well formed; together they break a rule: 422, not 400.
        return Err(WebError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "since_not_before_at",
            "since phải trước at",
        ));
    }
    Ok(Json(
        PlanAsOf::replay(state.store(), Some(&plan), at, since, tz)
            .await?
            .to_json(),
    ))
}

/// `GET /api/tasks`: the tasks the caller may see, filtered like `task list`.
/// `GET /api/tasks`: one page of the tasks the caller may see, filtered,
/// searched and sorted through the index; only that page's views are read.
async fn list(State(state): State<AppState>, headers: HeaderMap, q: Params) -> Result<Json<Value>, WebError> {
    let caller = auth::require(&state, &headers).await?;
    let mut known: Vec<&str> = crate::projections::lists::PARAMS.to_vec();
    known.push("due_before");
    only_known(&q, &known)?;
    let mut query = ListQuery::parse(q.iter().map(|(k, v)| (k.as_str(), v.as_str())), false)
        .map_err(|e| WebError::bad_request(e.to_string()))?;
    query.due_before = param(&q, "due_before")?
        .map(|d| parse_iso_date(d).map_err(|e| WebError::bad_request(format!("due_before: {e}"))))
        .transpose()?;
    let plans = state.plan_views().await?;
    let (today, _) = today_in(&plans, state.engine.clock.now());
    let asker = super::pages::asker(&caller.user);
    let page = state.store().list_task_ids(&query, &asker, today).await?;
    let views = state.store().task_views_in_order(&page.items).await?;
    Ok(Json(json!({
        "tasks": views.iter().filter(|v| caller.user.can_see(v)).map(|v| task_json(v, today, crate::projections::views::deadlines_for(&plans, &v.id), false)).collect::<Vec<_>>(),
        "total": page.total, "page": page.page, "per_page": page.per_page,
    })))
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
    let mut v = task_json(&view, today, plan.deadlines(), true);
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
    Ok(Json(
        History::read(state.store(), key, as_of, tz)
            .await?
            .to_json(plan.deadlines()),
    ))
}

/// `POST /api/tasks/{task}/milestones/{milestone}/{action}` (routed with
/// the uploads in `web::router`): a JSON body, or `multipart/form-data`
/// with the JSON as the part `payload` and evidence files as parts `files`.
pub(super) async fn act(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((task, milestone, action)): Path<(String, String, String)>,
    q: Params,
    body: axum::extract::Request,
) -> Result<Response, WebError> {
    let caller: Caller = auth::require(&state, &headers).await?;
    only_known(&q, &["plan"])?;
    caller.check_csrf(auth::csrf_header(&headers))?;
    let request = idempotency_key(&headers)?;
    let action = Action::parse(&action).ok_or_else(|| {
        WebError::not_found(format!(
            "không có thao tác {action:?} (dùng {})",
            Action::ALL.map(|a| a.as_str()).join(", ")
        ))
    })?;
    let (body, uploads) = if files::is_multipart(&body) {
        let (fields, uploads) = files::read_multipart(&state, body).await?;
        (Bytes::from(payload_part(fields)?), uploads)
    } else {
        (files::small_body(body).await?, Vec::new())
    };
    let mut input: ActionInput = if body.iter().all(u8::is_ascii_whitespace) {
        ActionInput::default()
    } else {
        json_object(&body)?
    };
    let (key, _, _) = task_for(&state, &caller, &task, &q).await?;
    input.attachments = files::attach(&state, &caller, action, uploads).await?;
    let acted = forms::perform_once(&state, &caller, &key, &milestone, action, input, request.as_ref()).await?;
    let after = acted.milestone.as_ref();
    let body = Json(json!({
        "task": key.task, "plan": key.plan, "milestone": milestone,
        "action": action.as_str(), "status": after.map(|m| m.status.as_str()),
        "obligations": after.map(obligation_states).unwrap_or_default(),
    }));
    Ok(replay_marked(body.into_response(), acted.replayed))
}

/// The JSON of a multipart action: the one part named `payload` (none: no fields).
fn payload_part(fields: Vec<(String, String)>) -> Result<String, WebError> {
    let mut payload = None;
    for (name, value) in fields {
        match name.as_str() {
            "payload" if payload.is_none() => payload = Some(value),
            "payload" => return Err(WebError::bad_request("phần payload có hai lần")),
            other => {
                return Err(WebError::bad_request(format!(
                    "phần không có: {other:?} (dùng payload và files)"
                )))
            }
        }
    }
    Ok(payload.unwrap_or_default())
}

/// `GET /api/tasks/{task}/files/{sha256}`: an evidence file of a task the
/// caller may see, as a download.
async fn file(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((task, sha256)): Path<(String, String)>,
    q: Params,
) -> Result<Response, WebError> {
    let caller = auth::require(&state, &headers).await?;
    only_known(&q, &["plan"])?;
    let (key, _, _) = task_for(&state, &caller, &task, &q).await?;
    files::task_file(&state, &key, &sha256, false).await
}

/// A JSON body that must be an object (`{…}`): an array, a string or a
/// number is refused before its fields are read (serde would take an array
/// as the fields in order). Invalid UTF-8 is refused by the parser.
fn json_object<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, WebError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| WebError::bad_request(format!("nội dung JSON không hợp lệ: {e}")))?;
    if !value.is_object() {
        return Err(WebError::new(
            StatusCode::BAD_REQUEST,
            "json_not_object",
            "nội dung JSON phải là một đối tượng {…}, không phải mảng, chuỗi hay số",
        ));
    }
    // A parser keeps one of two values under the same key, and which one
    // differs between parsers: a proxy and kehoach could read different notes.
    if let Ok(Duplicates(Some(key))) = serde_json::from_slice::<Duplicates>(body) {
        return Err(WebError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "duplicate_key",
            format!("khóa {key:?} xuất hiện hai lần trong cùng một đối tượng JSON; mỗi khóa chỉ được có một lần"),
        ));
    }
    serde_json::from_value(value).map_err(|e| WebError::bad_request(format!("nội dung JSON không hợp lệ: {e}")))
}

/// The first key found twice in one object of a JSON text, at any depth.
struct Duplicates(Option<String>);

impl<'de> serde::Deserialize<'de> for Duplicates {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(DuplicatesVisitor)
    }
}

struct DuplicatesVisitor;

impl<'de> serde::de::Visitor<'de> for DuplicatesVisitor {
    type Value = Duplicates;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("JSON")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Duplicates, E> {
        Ok(Duplicates(None))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Duplicates, E> {
        Ok(Duplicates(None))
    }
    fn visit_u64<E>(self, _: u64) -> Result<Duplicates, E> {
        Ok(Duplicates(None))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Duplicates, E> {
        Ok(Duplicates(None))
    }
    fn visit_str<E>(self, _: &str) -> Result<Duplicates, E> {
        Ok(Duplicates(None))
    }
    fn visit_unit<E>(self) -> Result<Duplicates, E> {
        Ok(Duplicates(None))
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Duplicates, A::Error> {
        let mut found = None;
        while let Some(Duplicates(inner)) = seq.next_element()? {
            found = found.or(inner);
        }
        Ok(Duplicates(found))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Duplicates, A::Error> {
        let mut seen = std::collections::HashSet::new();
        let mut found = None;
        while let Some(key) = map.next_key::<String>()? {
            let Duplicates(inner) = map.next_value()?;
            if found.is_none() && !seen.insert(key.clone()) {
                found = Some(key);
            }
            found = found.or(inner);
        }
        Ok(Duplicates(found))
    }
}

/// `GET /api/queue`: submitted milestones the caller may approve.
async fn queue(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<Value>, WebError> {
    let caller = auth::require(&state, &headers).await?;
    let views = queued_views(&state, &caller).await?;
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

/// The views of the tasks with an obligation the caller may approve, found
/// through the index (at most `EXPORT_LIMIT` obligations).
async fn queued_views(state: &AppState, caller: &Caller) -> Result<Vec<TaskView>, WebError> {
    use crate::projections::lists::{ListKind, EXPORT_LIMIT, MAX_PER_PAGE};
    let (today, _) = today_in(&state.plan_views().await?, state.engine.clock.now());
    let asker = super::pages::asker(&caller.user);
    let mut query = ListQuery {
        page: 1,
        per_page: MAX_PER_PAGE,
        sort: crate::projections::lists::Sort::Task,
        ..Default::default()
    };
    let mut ids: Vec<String> = Vec::new();
    loop {
        let page = state
            .store()
            .list_obligations(ListKind::Queue, &query, &asker, today)
            .await?;
        for r in &page.items {
            if !ids.contains(&r.aggregate_id) {
                ids.push(r.aggregate_id.clone());
            }
        }
        if page.items.len() < MAX_PER_PAGE as usize || u64::from(query.page * MAX_PER_PAGE) >= u64::from(EXPORT_LIMIT) {
            break;
        }
        query.page += 1;
    }
    Ok(state.store().task_views_in_order(&ids).await?)
}
