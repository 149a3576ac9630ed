//! Server-rendered pages in Vietnamese for people: sign-in, the agency's
//! inbox, task pages with their forms, the approval queue, the plan
//! overview, the auditors' history and as-of views, and the admin page.
//! No JavaScript; every form carries a CSRF token.

use super::auth::{self, Caller, FORM_COOKIE, SESSION_COOKIE};
use super::forms::{self, ActionInput};
use super::{AppState, WebError};
use crate::accounts::history::HistoryEntry;
use crate::accounts::store::{secret, SESSION_TTL};
use crate::accounts::{Action, Role, User};
use crate::audit::asof::replay_until;
use crate::audit::history::{parse_as_of, History, Standing};
use crate::domain::dates::{format_vn, local_date};
use crate::domain::task::Obligation;
use crate::projections::views::{
    obligation_timeliness, standing_for, timeliness, today_in, PlanView, TaskView, Timeliness,
};
use axum::extract::{Form, Path, Query, State};
use axum::http::header::{CONTENT_TYPE, LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use minijinja::Environment;
use serde_json::{json, Value};
use std::collections::HashMap;

const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../../templates/web/base.html")),
    ("signin.html", include_str!("../../templates/web/signin.html")),
    ("password.html", include_str!("../../templates/web/password.html")),
    ("inbox.html", include_str!("../../templates/web/inbox.html")),
    ("task.html", include_str!("../../templates/web/task.html")),
    ("queue.html", include_str!("../../templates/web/queue.html")),
    ("plan.html", include_str!("../../templates/web/plan.html")),
    ("admin.html", include_str!("../../templates/web/admin.html")),
    ("admin_user.html", include_str!("../../templates/web/admin_user.html")),
    ("error.html", include_str!("../../templates/web/error.html")),
];
const STYLESHEET: &str = include_str!("../../templates/web/style.css");

pub fn environment() -> Environment<'static> {
    crate::templates::environment(TEMPLATES).expect("the page templates compile")
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(root))
        .route("/signin", get(sign_in_form).post(sign_in))
        .route("/signin/{token}", get(password_form).post(set_password))
        .route("/inbox", get(inbox))
        .route("/queue", get(queue))
        .route("/tasks/{plan}/{task}", get(task_page))
        .route(
            "/tasks/{plan}/{task}/milestones/{milestone}/{action}",
            post(task_action),
        )
        .route("/plans/{plan}", get(plan_page))
        .route("/admin", get(admin))
        .route("/admin/plans", post(admin_load_plan))
        .route("/admin/users/{id}", get(admin_user))
}

/// Why a page is not shown: a redirect, or an error page.
enum Refusal {
    Redirect(String),
    Error(WebError, Option<Box<Caller>>),
}

impl From<WebError> for Refusal {
    fn from(e: WebError) -> Self {
        Self::Error(e, None)
    }
}

impl From<crate::store::StoreError> for Refusal {
    fn from(e: crate::store::StoreError) -> Self {
        Self::Error(e.into(), None)
    }
}

type PageResult = Result<Response, Refusal>;

fn redirect(to: &str) -> Response {
    (StatusCode::SEE_OTHER, [(LOCATION, to.to_string())]).into_response()
}

fn finish(state: &AppState, result: PageResult) -> Response {
    match result {
        Ok(r) => r,
        Err(Refusal::Redirect(to)) => redirect(&to),
        Err(Refusal::Error(e, caller)) => {
            let body = render(
                state,
                "error.html",
                caller.as_deref(),
                json!({ "title": "Không thực hiện được", "error": e.message, "code": e.code, "status": e.status.as_u16() }),
            );
            (e.status, body).into_response()
        }
    }
}

/// Renders a page; `caller` fills the navigation and the forms' CSRF token.
fn render(state: &AppState, name: &str, caller: Option<&Caller>, mut ctx: Value) -> Response {
    if let Some(c) = caller {
        ctx["me"] = json!({
            "name": c.user.name.as_str(), "agency": c.user.agency, "roles": c.user.roles,
            "supervisor": c.user.has(Role::Supervisor), "admin": c.user.has(Role::Admin),
            "sees_everything": c.user.sees_everything(),
        });
        ctx["csrf"] = json!(c.csrf);
    }
    if ctx.get("plans").is_none() {
        ctx["plans"] = json!([]);
    }
    ctx["simulation"] = json!(state.engine.is_simulation());
    let rendered = state
        .pages
        .get_template(name)
        .and_then(|t| t.render(minijinja::value::Serde(&ctx)))
        .map_err(|e| {
            tracing::error!(template = name, error = %e, "lỗi dựng trang");
        });
    match rendered {
        Ok(html) => Html(html).into_response(),
        Err(()) => (StatusCode::INTERNAL_SERVER_ERROR, "lỗi dựng trang").into_response(),
    }
}

/// The signed-in caller of a page, or a redirect to the sign-in page.
async fn signed_in(state: &AppState, headers: &HeaderMap, uri: &Uri) -> Result<Caller, Refusal> {
    match auth::caller(state, headers).await? {
        Some(c) => Ok(c),
        None => Err(Refusal::Redirect(format!(
            "/signin?next={}",
            urlencode(uri.path_and_query().map_or("/inbox", |p| p.as_str()))
        ))),
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A local path to go to after signing in (never another site).
fn safe_next(next: Option<&String>) -> String {
    next.filter(|n| n.starts_with('/') && !n.starts_with("//") && !n.contains('\\'))
        .cloned()
        .unwrap_or_else(|| "/inbox".into())
}

async fn root(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match auth::caller(&state, &headers).await {
        Ok(Some(_)) => redirect("/inbox"),
        _ => anonymous_form(&state, "signin.html", json!({ "title": "Đăng nhập", "next": "/inbox" })),
    }
}

/// A form shown before signing in, protected by a double-submit cookie.
fn anonymous_form(state: &AppState, name: &str, mut ctx: Value) -> Response {
    let token = secret();
    ctx["csrf"] = json!(token);
    let mut response = render(state, name, None, ctx);
    response
        .headers_mut()
        .append(SET_COOKIE, auth::set_cookie(state, FORM_COOKIE, &token, 3600));
    response
}

fn anonymous_csrf_ok(headers: &HeaderMap, form: &HashMap<String, String>) -> bool {
    match (auth::cookie(headers, FORM_COOKIE), form.get("csrf")) {
        (Some(c), Some(f)) => auth::same_secret(&c, f),
        _ => false,
    }
}

async fn sign_in_form(State(state): State<AppState>, Query(q): Query<HashMap<String, String>>) -> Response {
    anonymous_form(
        &state,
        "signin.html",
        json!({ "title": "Đăng nhập", "next": safe_next(q.get("next")) }),
    )
}

fn start_session(state: &AppState, token: &str, to: &str) -> Response {
    let mut response = redirect(to);
    let headers = response.headers_mut();
    headers.append(
        SET_COOKIE,
        auth::set_cookie(state, SESSION_COOKIE, token, SESSION_TTL.num_seconds()),
    );
    headers.append(SET_COOKIE, auth::set_cookie(state, FORM_COOKIE, "", 0));
    response
}

async fn sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let next = safe_next(form.get("next"));
    if !anonymous_csrf_ok(&headers, &form) {
        let e = WebError::csrf();
        let mut ctx = json!({ "title": "Đăng nhập", "next": next, "error": e.message });
        ctx["email"] = json!(form.get("email"));
        let mut r = anonymous_form(&state, "signin.html", ctx);
        *r.status_mut() = e.status;
        return r;
    }
    let email = form.get("email").map(String::as_str).unwrap_or("");
    let password = form.get("password").map(String::as_str).unwrap_or("");
    let result = async {
        match state.store().check_password(email, password).await? {
            Some(user) => Ok(Some(
                state.store().start_session(&user, state.engine.clock.now()).await?.0,
            )),
            None => Ok::<_, crate::store::StoreError>(None),
        }
    }
    .await;
    match result {
        Ok(Some(token)) => start_session(&state, &token, &next),
        Ok(None) => {
            tracing::info!(email, "đăng nhập sai");
            let mut r = anonymous_form(
                &state,
                "signin.html",
                json!({ "title": "Đăng nhập", "next": next, "email": email,
                        "error": "e-mail hoặc mật khẩu không đúng" }),
            );
            *r.status_mut() = StatusCode::UNAUTHORIZED;
            r
        }
        Err(e) => finish(&state, Err(Refusal::Error(e.into(), None))),
    }
}

pub async fn sign_out(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let result = async {
        let caller = auth::require(&state, &headers).await?;
        caller.check_csrf(form.get("csrf").map(String::as_str))?;
        if let Some(token) = auth::cookie(&headers, SESSION_COOKIE) {
            state.store().end_session(&token).await?;
        }
        let mut r = redirect("/signin");
        r.headers_mut()
            .append(SET_COOKIE, auth::set_cookie(&state, SESSION_COOKIE, "", 0));
        Ok::<_, WebError>(r)
    }
    .await;
    finish(&state, result.map_err(Refusal::from))
}

async fn password_form(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    let result = async {
        let user = state
            .store()
            .signin_link_user(&token, state.engine.clock.now())
            .await?
            .ok_or_else(|| WebError::from(crate::accounts::AccountError::LinkInvalid))?;
        Ok::<_, WebError>(anonymous_form(
            &state,
            "password.html",
            json!({ "title": "Đặt mật khẩu", "user": { "name": user.name.as_str(), "email": user.email, "agency": user.agency },
                    "min": crate::accounts::MIN_PASSWORD }),
        ))
    }
    .await;
    finish(&state, result.map_err(Refusal::from))
}

async fn set_password(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(token): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let result = async {
        if !anonymous_csrf_ok(&headers, &form) {
            return Err(WebError::csrf());
        }
        let password = form.get("password").cloned().unwrap_or_default();
        if form.get("password2") != Some(&password) {
            return Err(crate::accounts::AccountError::PasswordMismatch.into());
        }
        let (_, session, _) = state.engine.redeem_signin_link(&token, password).await?;
        Ok(start_session(&state, &session, "/inbox"))
    }
    .await;
    finish(&state, result.map_err(Refusal::from))
}

fn task_ids(view: &TaskView) -> (&str, &str) {
    view.id.split_once('/').unwrap_or(("", &view.id))
}

/// The plans in the navigation bar.
fn plans_nav(plans: &[PlanView]) -> Value {
    plans
        .iter()
        .map(|p| json!({ "id": p.id, "title": p.plan.header.as_ref().map(|h| h.title.clone()) }))
        .collect()
}

async fn inbox(State(state): State<AppState>, headers: HeaderMap, uri: Uri) -> Response {
    let result = async {
        let caller = signed_in(&state, &headers, &uri).await?;
        let plans = state.store().plan_views().await?;
        let (today, tz) = today_in(&plans, state.engine.clock.now());
        let views = state.store().task_views().await?;
        let mut items: Vec<(bool, chrono::NaiveDate, Value)> = views
            .iter()
            .filter(|v| !v.task.withdrawn && (v.involves(&caller.user.agency) || caller.user.sees_everything()))
            .filter_map(|v| {
                let def = v.task.definition.as_ref()?;
                // The agency's own part where it owes one: UBND's inbox does not
                // show III.1.2 as overdue because MTTQ has not done its part.
                let agency = &caller.user.agency;
                let (next, (due, status, t)) = v
                    .open_milestones()
                    .map(|m| (m, standing_for(m, agency, &def.implementers, today, tz)))
                    .filter(|(_, (_, status, _))| status.is_pending())
                    .min_by_key(|(_, (due, _, _))| *due)?;
                let (plan, task) = task_ids(v);
                Some((
                    t == Timeliness::Overdue,
                    due,
                    json!({
                        "plan": plan, "task": task, "title": def.title,
                        "role": forms::role_on(&caller.user, v),
                        "milestone": next.spec.id, "milestone_title": next.spec.title,
                        "due": format_vn(due), "status": status.label_vi(),
                        "timeliness": t.label_vi(), "class": t.css_class(),
                    }),
                ))
            })
            .collect();
        items.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let overdue = items.iter().filter(|i| i.0).count();
        let feed = state
            .store()
            .calendar_token(&caller.user.agency, state.engine.clock.now())
            .await?;
        let ctx = json!({
            "title": "Hộp việc",
            "today": format_vn(today),
            "items": items.into_iter().map(|i| i.2).collect::<Vec<_>>(),
            "overdue": overdue,
            "everything": caller.user.sees_everything(),
            "feed": format!("{}/calendar/{feed}.ics", state.base_url),
            "plans": plans_nav(&plans),
        });
        Ok(render(&state, "inbox.html", Some(&caller), ctx))
    }
    .await;
    finish(&state, result)
}

async fn queue(State(state): State<AppState>, headers: HeaderMap, uri: Uri) -> Response {
    let result = async {
        let caller = signed_in(&state, &headers, &uri).await?;
        if !caller.user.has(Role::Supervisor) {
            return Err(Refusal::Error(WebError::forbidden_role("duyệt mốc"), Some(Box::new(caller))));
        }
        let plans = state.store().plan_views().await?;
        let (today, tz) = today_in(&plans, state.engine.clock.now());
        let views = state.store().task_views().await?;
        let items: Vec<Value> = forms::approval_queue(&caller.user, &views)
            .iter()
            .map(|(v, m, o)| {
                let (plan, task) = task_ids(v);
                let t = obligation_timeliness(o, today, tz);
                json!({
                    "plan": plan, "task": task, "title": v.task.definition.as_ref().map(|d| d.title.clone()),
                    "milestone": m.spec.id, "milestone_title": m.spec.title, "due": format_vn(o.due),
                    "agency": o.label(),
                    "submitted_by": o.submitted.as_ref().map(|s| s.by.to_string()),
                    "submitted_at": o.submitted.as_ref().map(|s| s.at.with_timezone(&tz).format("%d/%m/%Y %H:%M").to_string()),
                    "timeliness": t.label_vi(), "class": t.css_class(),
                })
            })
            .collect();
        let ctx = json!({ "title": "Chờ duyệt", "items": items, "plans": plans_nav(&plans) });
        Ok(render(&state, "queue.html", Some(&caller), ctx))
    }
    .await;
    finish(&state, result)
}

/// The forms to offer on a milestone: allowed by role and agency, and
/// making sense in its status (the domain decides again on submit).
fn offered(user: &User, view: &TaskView, o: &Obligation) -> Vec<&'static str> {
    Action::ALL
        .iter()
        .filter(|a| user.may_on(**a, view, o))
        .map(|a| a.as_str())
        .collect()
}

async fn task_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path((plan, task)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let result = async {
        let caller = signed_in(&state, &headers, &uri).await?;
        let ctx = task_context(&state, &caller, &plan, &task, &q)
            .await
            .map_err(|e| Refusal::Error(e, Some(Box::new(caller.clone()))))?;
        Ok(render(&state, "task.html", Some(&caller), ctx))
    }
    .await;
    finish(&state, result)
}

async fn task_context(
    state: &AppState,
    caller: &Caller,
    plan: &str,
    task: &str,
    q: &HashMap<String, String>,
) -> Result<Value, WebError> {
    let plans = state.store().plan_views().await?;
    let (key, plan_view, current) = forms::visible_task(state, &plans, &caller.user, task, Some(plan)).await?;
    let tz = plan_view.tz();
    let as_of = q
        .get("as_of")
        .filter(|a| !a.trim().is_empty())
        .map(|a| parse_as_of(a, tz).map_err(|e| WebError::bad_request(format!("xem tại ngày: {e}"))))
        .transpose()?;
    let events = state.store().task_events(&key.to_string()).await?;
    let plan_events = state.store().plan_events(key.plan.as_str()).await?;
    let history = History::new(key.clone(), &events, as_of, tz).with_directory_changes(&plan_events);
    // As of a past instant the page shows the replayed state, read-only.
    let view = match &history.state {
        Some(task) => TaskView {
            task: task.clone(),
            ..current.clone()
        },
        None => current.clone(),
    };
    let today = local_date(as_of.unwrap_or_else(|| state.engine.clock.now()), tz);
    let def = view
        .task
        .definition
        .as_ref()
        .ok_or_else(|| WebError::not_found(format!("nhiệm vụ {} chưa có tại thời điểm này", key.task)))?;
    let agencies = |codes: &[crate::domain::ids::AgencyCode]| -> Vec<Value> {
        codes
            .iter()
            .map(|c| json!({ "code": c, "name": plan_view.plan.agency(c).map(|a| a.name.clone()) }))
            .collect()
    };
    let milestones: Vec<Value> = view
        .task
        .milestones
        .iter()
        .map(|m| {
            let t = timeliness(m, today, tz);
            let obligations: Vec<Value> = m
                .obligations
                .iter()
                .map(|o| {
                    let ot = obligation_timeliness(o, today, tz);
                    json!({
                        "agency": o.agency, "label": o.label(),
                        "due": format_vn(o.due), "iso_due": o.due.to_string(),
                        "planned_due": o.extended_until.is_some().then(|| format_vn(m.spec.due)),
                        "status": o.status.label_vi(), "timeliness": ot.label_vi(), "class": ot.css_class(),
                        "submitted": o.submitted.as_ref().map(|s| s.by.to_string()),
                        "approved": o.approved.as_ref().map(|s| s.by.to_string()),
                        "fulfilled_by": o.fulfilled_by,
                        "reason": o.last_reason, "reports": o.reports,
                        "kpis": o.kpis.iter().map(|(k, v)| json!({ "key": k, "value": v })).collect::<Vec<_>>(),
                        "actions": if as_of.is_some() { vec![] } else { offered(&caller.user, &view, o) },
                    })
                })
                .collect();
            json!({
                "id": m.spec.id, "title": m.spec.title, "due": format_vn(m.due()),
                "joint": m.is_joint(),
                "status": m.status.label_vi(), "timeliness": t.label_vi(), "class": t.css_class(),
                "obligations": obligations,
            })
        })
        .collect();
    let kpis: Vec<Value> = def
        .kpis
        .iter()
        .map(|k| {
            let latest = view
                .task
                .milestones
                .iter()
                .rev()
                .find_map(|m| m.kpis().get(&k.key).copied());
            json!({ "key": k.key, "label": k.label, "target": k.to_string(), "unit": k.unit,
                    "baseline": k.baseline.as_ref().map(|b| format!("{}{} ({})", b.value, k.unit, b.year)),
                    "latest": latest.map(|v| format!("{v}{}", k.unit)) })
        })
        .collect();
    let done = q.get("done").and_then(|d| Action::parse(d)).map(|a| {
        format!(
            "Đã ghi nhận: {} mốc {}",
            a.label_vi().to_lowercase(),
            q.get("m").map_or("", String::as_str)
        )
    });
    Ok(json!({
        "title": format!("{} — {}", key.task, def.title),
        "plan": key.plan, "task": key.task, "def_title": def.title, "text": def.text,
        "deadline": def.deadline, "source": def.source.section, "withdrawn": view.task.withdrawn,
        "lead": agencies(std::slice::from_ref(&def.lead)), "advisory": agencies(&def.advisory),
        "implementers": agencies(&def.implementers),
        "role": forms::role_on(&caller.user, &view),
        "milestones": milestones, "kpis": kpis, "kpi_keys": def.kpis.iter().map(|k| k.key.to_string()).collect::<Vec<_>>(),
        "history": history.entries.iter().rev().map(|e| json!({
            "sequence": e.sequence, "at": e.at.format("%d/%m/%Y %H:%M").to_string(), "actor": e.actor.to_string(),
            "what": e.what, "details": e.details, "hash": e.hash.as_deref().map(|h| &h[..h.len().min(12)]),
        })).collect::<Vec<_>>(),
        "as_of": as_of.map(|t| t.with_timezone(&tz).format("%d/%m/%Y %H:%M").to_string()),
        "as_of_value": q.get("as_of"),
        "done": done,
        "error": q.get("error"),
        "plans": plans_nav(&plans),
    }))
}

/// Reads the fields a task form posts: note, reason, until, `kpi.<key>` and
/// evidence (one per line).
fn action_input(form: &[(String, String)]) -> Result<ActionInput, WebError> {
    let mut input = ActionInput::default();
    for (k, v) in form {
        match k.as_str() {
            "note" => input.note = v.clone(),
            "reason" => input.reason = v.clone(),
            "until" => input.until = Some(v.clone()),
            "agency" => input.agency = Some(v.clone()),
            "evidence" => input.evidence = v.lines().map(|l| l.trim().to_string()).collect(),
            "csrf" => {}
            k if k.starts_with("kpi.") => {
                if v.trim().is_empty() {
                    continue;
                }
                let value: f64 = v
                    .trim()
                    .replace(',', ".")
                    .parse()
                    .map_err(|_| WebError::bad_request(format!("chỉ tiêu {}: {v:?} không phải số", &k[4..])))?;
                input.kpis.insert(k[4..].to_string(), value);
            }
            other => return Err(WebError::bad_request(format!("trường không có: {other:?}"))),
        }
    }
    Ok(input)
}

async fn task_action(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path((plan, task, milestone, action)): Path<(String, String, String, String)>,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let result = async {
        let caller = signed_in(&state, &headers, &uri).await?;
        let refuse = |e: WebError| Refusal::Error(e, Some(Box::new(caller.clone())));
        caller
            .check_csrf(form.iter().find(|(k, _)| k == "csrf").map(|(_, v)| v.as_str()))
            .map_err(refuse)?;
        let action = Action::parse(&action).ok_or_else(|| refuse(WebError::not_found("không có thao tác này")))?;
        let (key, _, _) = forms::visible_task(
            &state,
            &state.store().plan_views().await?,
            &caller.user,
            &task,
            Some(&plan),
        )
        .await
        .map_err(refuse)?;
        let input = action_input(&form).map_err(refuse)?;
        forms::perform(&state, &caller, &key, &milestone, action, input)
            .await
            .map_err(refuse)?;
        Ok(redirect(&format!(
            "/tasks/{}/{}?done={}&m={}#m-{}",
            urlencode(key.plan.as_str()),
            urlencode(key.task.as_str()),
            action.as_str(),
            urlencode(&milestone),
            urlencode(&milestone)
        )))
    }
    .await;
    finish(&state, result)
}

async fn plan_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(plan): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let result = async {
        let caller = signed_in(&state, &headers, &uri).await?;
        let refuse = |e: WebError| Refusal::Error(e, Some(Box::new(caller.clone())));
        let plans = state.store().plan_views().await?;
        let view: &PlanView = plans
            .iter()
            .find(|p| p.id == plan)
            .ok_or_else(|| refuse(WebError::not_found(format!("không có kế hoạch {plan:?}"))))?;
        let tz = view.tz();
        let as_of = match q.get("as_of").filter(|a| !a.trim().is_empty()) {
            Some(_) if !caller.user.sees_everything() => {
                return Err(refuse(WebError::forbidden_role("xem kế hoạch tại một thời điểm trong quá khứ")))
            }
            Some(a) => Some(parse_as_of(a, tz).map_err(|e| refuse(WebError::bad_request(format!("xem tại ngày: {e}"))))?),
            None => None,
        };
        let today = local_date(as_of.unwrap_or_else(|| state.engine.clock.now()), tz);
        let prefix = format!("{plan}/");
        let mut tasks: Vec<TaskView> = Vec::new();
        for v in state.store().task_views().await? {
            if !v.id.starts_with(&prefix) || !caller.user.can_see(&v) {
                continue;
            }
            match as_of {
                Some(at) => {
                    let task = replay_until(&state.store().task_events(&v.id).await?, at);
                    if task.definition.is_some() {
                        tasks.push(TaskView { task, ..v });
                    }
                }
                None => tasks.push(v),
            }
        }
        let mut standing = Standing::default();
        for v in &tasks {
            standing.add(task_ids(v).1, &v.task, today, tz);
        }
        let svg = super::timeline::plan_timeline_svg(view, &tasks, today, tz);
        let header = view.plan.header.as_ref();
        let ctx = json!({
            "title": header.map_or(plan.clone(), |h| h.title.clone()),
            "plan": plan, "today": format_vn(today),
            "period": header.map(|h| format!("{} – {}", format_vn(h.start), format_vn(h.end))),
            "svg": svg,
            "agencies": standing.agencies.iter().map(|(code, c)| json!({
                "code": code, "name": view.plan.agencies.iter().find(|a| a.code.as_str() == code).map(|a| a.name.clone()),
                "on_time": c.on_time, "overdue": c.overdue, "not_yet_due": c.not_yet_due, "approved_late": c.approved_late,
            })).collect::<Vec<_>>(),
            "tasks": standing.tasks,
            "as_of": as_of.map(|t| format_vn(local_date(t, tz))),
            "as_of_value": q.get("as_of"),
            "plans": plans_nav(&plans),
        });
        Ok(render(&state, "plan.html", Some(&caller), ctx))
    }
    .await;
    finish(&state, result)
}

async fn admin(State(state): State<AppState>, headers: HeaderMap, uri: Uri) -> Response {
    let result = async {
        let caller = signed_in(&state, &headers, &uri).await?;
        if !caller.user.has(Role::Admin) {
            return Err(Refusal::Error(
                WebError::forbidden_role("quản trị"),
                Some(Box::new(caller)),
            ));
        }
        Ok(admin_page(&state, &caller, json!({})).await?)
    }
    .await;
    finish(&state, result)
}

async fn admin_page(state: &AppState, caller: &Caller, mut ctx: Value) -> Result<Response, WebError> {
    ctx["title"] = json!("Quản trị");
    let users: Vec<Value> = state
        .store()
        .all_users()
        .await?
        .into_iter()
        .map(|(u, disabled)| {
            let mut v = json!(u);
            v["disabled"] = json!(disabled);
            v
        })
        .collect();
    ctx["users"] = json!(users);
    ctx["plans"] = plans_nav(&state.store().plan_views().await?);
    Ok(render(state, "admin.html", Some(caller), ctx))
}

/// `GET /admin/users/{id}`: one account's history, read from its events.
async fn admin_user(State(state): State<AppState>, headers: HeaderMap, uri: Uri, Path(id): Path<String>) -> Response {
    let result = async {
        let caller = signed_in(&state, &headers, &uri).await?;
        let refuse = |e: WebError| Refusal::Error(e, Some(Box::new(caller.clone())));
        if !caller.user.has(Role::Admin) {
            return Err(refuse(WebError::forbidden_role("quản trị")));
        }
        let (user, disabled) = state
            .store()
            .user_by_id(&id)
            .await?
            .ok_or_else(|| refuse(WebError::not_found("không có người dùng này")))?;
        let events: Vec<HistoryEntry> = state
            .store()
            .account_events(&user.id)
            .await?
            .iter()
            .map(|(seq, e)| HistoryEntry::new(*seq, e))
            .collect();
        let ctx = json!({
            "title": format!("Tài khoản {}", user.email),
            "user": user, "disabled": disabled, "events": events,
            "plans": plans_nav(&state.store().plan_views().await?),
        });
        Ok(render(&state, "admin_user.html", Some(&caller), ctx))
    }
    .await;
    finish(&state, result)
}

async fn admin_load_plan(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let result = async {
        let caller = signed_in(&state, &headers, &uri).await?;
        let refuse = |e: WebError| Refusal::Error(e, Some(Box::new(caller.clone())));
        if !caller.user.has(Role::Admin) {
            return Err(refuse(WebError::forbidden_role("nạp kế hoạch")));
        }
        caller
            .check_csrf(form.get("csrf").map(String::as_str))
            .map_err(refuse)?;
        let text = form.get("plan").map(String::as_str).unwrap_or("");
        let (status, outcome) = forms::load_plan_text(&state, &caller, text).await.map_err(refuse)?;
        let mut page = admin_page(
            &state,
            &caller,
            json!({ "outcome": outcome, "failed": !status.is_success() }),
        )
        .await
        .map_err(refuse)?;
        *page.status_mut() = status;
        Ok(page)
    }
    .await;
    finish(&state, result)
}

/// `GET /calendar/<token>.ics`: the agency's deadlines; an unknown token is 404.
pub async fn calendar_feed(State(state): State<AppState>, Path(file): Path<String>) -> Response {
    let result = async {
        let token = file
            .strip_suffix(".ics")
            .ok_or_else(|| WebError::not_found("không có lịch này"))?;
        let agency = state
            .store()
            .calendar_agency(token)
            .await?
            .ok_or_else(|| WebError::not_found("không có lịch này"))?;
        let plans = state.store().plan_views().await?;
        let views = state.store().task_views().await?;
        let entries: Vec<super::calendar::FeedEntry> = views
            .iter()
            .filter_map(|v| {
                let plan = plans.iter().find(|p| v.id.starts_with(&format!("{}/", p.id)))?;
                Some(super::calendar::FeedEntry { plan, task: v })
            })
            .collect();
        let name = plans
            .iter()
            .find_map(|p| p.plan.agency(&agency).map(|a| a.name.clone()))
            .unwrap_or_else(|| agency.to_string());
        let body = super::calendar::agency_feed(&agency, &name, &entries, &state.base_url, state.engine.clock.now());
        Ok::<_, WebError>(
            (
                [
                    (CONTENT_TYPE, HeaderValue::from_static("text/calendar; charset=utf-8")),
                    (
                        axum::http::header::CACHE_CONTROL,
                        HeaderValue::from_static("private, max-age=300"),
                    ),
                ],
                body,
            )
                .into_response(),
        )
    }
    .await;
    finish(&state, result.map_err(Refusal::from))
}

pub async fn stylesheet() -> Response {
    (
        [
            (CONTENT_TYPE, "text/css; charset=utf-8"),
            (axum::http::header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLESHEET,
    )
        .into_response()
}
