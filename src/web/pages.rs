//! Server-rendered pages in Vietnamese for people: sign-in, the agency's
//! inbox, task pages with their forms, the approval queue, the plan
//! overview, the auditors' history and as-of views, and the admin page.
//! No JavaScript; every form carries a CSRF token.

use super::auth::{self, Caller, FORM_COOKIE, SESSION_COOKIE};
use super::files;
use super::forms::{self, ActionInput};
use super::lists;
use super::review;
use super::{AppState, WebError};
use crate::accounts::security::Scope;
use crate::accounts::store::secret;
use crate::accounts::{Action, Role, User};
use crate::audit::asof::replay_until;
use crate::audit::history::{parse_as_of, History, Standing};
use crate::domain::dates::{format_vn, local_date};
use crate::domain::task::Obligation;
use crate::projections::lists::{Asker, ListKind, ListQuery};
use crate::projections::views::{obligation_timeliness, timeliness, today_in, PlanView, TaskView};
use axum::extract::{Form, FromRequest, Path, Query, Request, State};
use axum::http::header::{CONTENT_TYPE, LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::NaiveDate;
use minijinja::Environment;
use serde_json::{json, Value};
use std::collections::HashMap;

const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../../templates/web/base.html")),
    ("signin.html", include_str!("../../templates/web/signin.html")),
    ("password.html", include_str!("../../templates/web/password.html")),
    ("inbox.html", include_str!("../../templates/web/inbox.html")),
    ("start.html", include_str!("../../templates/web/start.html")),
    ("audit.html", include_str!("../../templates/web/audit.html")),
    ("task_before.html", include_str!("../../templates/web/task_before.html")),
    ("directory.html", include_str!("../../templates/web/directory.html")),
    (
        "audit_verify.html",
        include_str!("../../templates/web/audit_verify.html"),
    ),
    ("audit_check.html", include_str!("../../templates/web/audit_check.html")),
    ("task.html", include_str!("../../templates/web/task.html")),
    ("queue.html", include_str!("../../templates/web/queue.html")),
    (
        "list_controls.html",
        include_str!("../../templates/web/list_controls.html"),
    ),
    ("list_pager.html", include_str!("../../templates/web/list_pager.html")),
    ("plan.html", include_str!("../../templates/web/plan.html")),
    ("admin.html", include_str!("../../templates/web/admin.html")),
    ("admin_user.html", include_str!("../../templates/web/admin_user.html")),
    (
        "admin_import.html",
        include_str!("../../templates/web/admin_import.html"),
    ),
    ("error.html", include_str!("../../templates/web/error.html")),
    ("confirm.html", include_str!("../../templates/web/confirm.html")),
    ("filed.html", include_str!("../../templates/web/filed.html")),
    ("forgot.html", include_str!("../../templates/web/forgot.html")),
    ("code.html", include_str!("../../templates/web/code.html")),
    ("account.html", include_str!("../../templates/web/account.html")),
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
        .route("/tasks/{plan}/{task}/files/{sha256}", get(task_file))
        .route("/plans/{plan}", get(plan_page))
        .route("/plans/{plan}/document", get(super::imports::plan_document_page))
        .route("/admin", get(admin))
        .merge(super::admin::router())
}

/// Why a page is not shown: a redirect, or an error page.
pub(super) enum Refusal {
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

pub(super) type PageResult = Result<Response, Refusal>;

pub(super) fn redirect(to: &str) -> Response {
    (StatusCode::SEE_OTHER, [(LOCATION, to.to_string())]).into_response()
}

pub(super) fn finish(state: &AppState, result: PageResult) -> Response {
    match result {
        Ok(r) => r,
        Err(Refusal::Redirect(to)) => redirect(&to),
        Err(Refusal::Error(e, caller)) => {
            let body = render(
                state,
                "error.html",
                caller.as_deref(),
                json!({ "title": "Không thực hiện được", "error": e.message, "code": e.code, "status": e.status.as_u16(),
                        "back": super::back::current(), "inbox": super::back::INBOX }),
            );
            (e.status, body).into_response()
        }
    }
}

/// Renders a page; `caller` fills the navigation and the forms' CSRF token.
pub(super) fn render(state: &AppState, name: &str, caller: Option<&Caller>, mut ctx: Value) -> Response {
    if let Some(c) = caller {
        ctx["me"] = json!({
            "name": c.user.name.as_str(), "agency": c.user.agency, "roles": c.user.roles, "roles_vi": c.user.roles_vi(),
            "agency_name": c.chrome.agency_name.clone().unwrap_or_else(|| c.user.agency.to_string()),
            "waiting": c.chrome.waiting,
            "supervisor": c.user.has(Role::Supervisor), "admin": c.user.has(Role::Admin),
            "auditor": c.user.has(Role::Auditor),
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
pub(super) async fn signed_in(state: &AppState, headers: &HeaderMap, uri: &Uri) -> Result<Caller, Refusal> {
    match auth::caller(state, headers).await? {
        Some(c) => Ok(with_chrome(state, c).await?),
        None => Err(Refusal::Redirect(format!(
            "/signin?next={}",
            urlencode(uri.path_and_query().map_or("/inbox", |p| p.as_str()))
        ))),
    }
}

/// Refusals shown on an error page with the caller's navigation.
pub(super) fn refusal(caller: &Caller) -> impl Fn(WebError) -> Refusal + '_ {
    move |e| Refusal::Error(e, Some(Box::new(caller.clone())))
}

/// The signed-in caller if the account has `role`; else the 403 page
/// saying the role is needed to `what`.
pub(super) async fn signed_in_as(
    state: &AppState,
    headers: &HeaderMap,
    uri: &Uri,
    role: Role,
    what: &str,
) -> Result<Caller, Refusal> {
    let caller = signed_in(state, headers, uri).await?;
    if !caller.user.has(role) {
        return Err(Refusal::Error(WebError::forbidden_role(what), Some(Box::new(caller))));
    }
    Ok(caller)
}

/// The caller with what the menu shows of them.
async fn with_chrome(state: &AppState, mut caller: Caller) -> Result<Caller, WebError> {
    caller.chrome = chrome(state, &caller.user).await?;
    Ok(caller)
}

/// The menu's facts about a signed-in person: the agency's name, and how
/// many submissions wait for a supervisor.
async fn chrome(state: &AppState, user: &User) -> Result<auth::Chrome, WebError> {
    let (plans, today, _) = today(state).await?;
    let waiting = if user.has(Role::Supervisor) {
        let query = ListQuery::parse(std::iter::empty(), true).map_err(lists::refused)?;
        Some(
            state
                .store()
                .count_obligations(ListKind::Queue, &query, &asker(user), today)
                .await?,
        )
    } else {
        None
    };
    Ok(auth::Chrome {
        agency_name: Some(lists::agency_name(&plans, user.agency.as_str())),
        waiting,
    })
}

pub(crate) fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A local path to go to after signing in (never another site): a single
/// leading `/`, then no `/` or `\` right after it, no backslash, control
/// character or whitespace anywhere (browsers drop tabs and line breaks, so
/// `/\t/evil.example` would become `//evil.example`).
pub(super) fn safe_next(next: Option<&String>) -> String {
    next.filter(|n| is_same_site_path(n))
        .cloned()
        .unwrap_or_else(|| "/".into())
}

pub(crate) fn is_same_site_path(n: &str) -> bool {
    let mut chars = n.chars();
    chars.next() == Some('/')
        && !matches!(chars.next(), Some('/' | '\\'))
        && !n.chars().any(|c| c == '\\' || c.is_control() || c.is_whitespace())
}

async fn root(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match auth::caller(&state, &headers).await {
        Ok(Some(caller)) => finish(&state, start_page(&state, caller).await),
        _ => anonymous_form(&state, "signin.html", json!({ "title": "Đăng nhập", "next": "/" })),
    }
}

/// The counts a start page shows for one viewer's rows (an agency's, or
/// everything's): each a number and the list it opens.
async fn start_counts(
    state: &AppState,
    asker: &Asker,
    agency: Option<&crate::domain::ids::AgencyCode>,
    today: NaiveDate,
) -> Result<Vec<Value>, WebError> {
    let base = ListQuery {
        agency: agency.cloned(),
        page: 1,
        per_page: crate::projections::lists::PER_PAGE,
        ..Default::default()
    };
    let filters: [(&str, &str, ListQuery); 4] = [
        (
            "Quá hạn",
            "overdue",
            ListQuery {
                overdue: true,
                ..base.clone()
            },
        ),
        (
            "Hạn trong tháng này",
            "month",
            ListQuery {
                due_within: Some(crate::projections::lists::DueWithin::Month),
                ..base.clone()
            },
        ),
        (
            "Bị trả lại",
            "returned",
            ListQuery {
                status: Some(crate::domain::task::MilestoneStatus::Returned),
                ..base.clone()
            },
        ),
        (
            "Đã nộp, chờ duyệt",
            "submitted",
            ListQuery {
                status: Some(crate::domain::task::MilestoneStatus::Submitted),
                ..base.clone()
            },
        ),
    ];
    let mut out = Vec::new();
    for (label, class, query) in filters {
        let n = state
            .store()
            .count_obligations(ListKind::Inbox, &query, asker, today)
            .await?;
        let q = query.filters_query();
        out.push(json!({ "label": label, "class": class, "count": n, "link": format!("/inbox?{q}") }));
    }
    Ok(out)
}

/// "Trang đầu": what waits for the person — counts of their agency's
/// obligations that open the filtered inbox, what waits for a supervisor's
/// decision, the next deadlines, and for those who see everything the
/// counts over every plan.
async fn start_page(state: &AppState, caller: Caller) -> PageResult {
    let caller = with_chrome(state, caller).await?;
    let (plans, today, tz) = today(state).await?;
    let user = &caller.user;
    let own = Asker {
        agency: user.agency.clone(),
        sees_everything: false,
    };
    // The agency's own counts, whose links open the inbox read as that
    // agency (for those who see everything, the inbox is every plan's).
    let mine = start_counts(state, &own, Some(&user.agency), today).await?;
    let everything = if user.sees_everything() {
        Some(start_counts(state, &asker(user), None, today).await?)
    } else {
        None
    };
    let next_query = ListQuery {
        due_from: Some(today),
        page: 1,
        per_page: 8,
        ..Default::default()
    };
    let next = state
        .store()
        .list_obligations(ListKind::Inbox, &next_query, &own, today)
        .await?;
    let ctx = json!({
        "title": "Trang đầu",
        "today": format_vn(today),
        "mine": mine,
        "everything": everything,
        "waiting": caller.chrome.waiting,
        "agency": user.agency,
        "next": next.items.iter().map(|r| lists::row_json(r, today, tz, &plans)).collect::<Vec<_>>(),
        "plans": plans_nav(&plans),
    });
    Ok(render(state, "start.html", Some(&caller), ctx))
}

/// A form shown before signing in, protected by a double-submit cookie.
pub(super) fn anonymous_form(state: &AppState, name: &str, mut ctx: Value) -> Response {
    let token = secret();
    ctx["csrf"] = json!(token);
    let mut response = render(state, name, None, ctx);
    response
        .headers_mut()
        .append(SET_COOKIE, auth::set_cookie(state, FORM_COOKIE, &token, 3600));
    response
}

pub(super) fn anonymous_csrf_ok(headers: &HeaderMap, form: &HashMap<String, String>) -> bool {
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

pub(super) fn start_session(state: &AppState, token: &str, to: &str) -> Response {
    let mut response = redirect(to);
    let headers = response.headers_mut();
    headers.append(
        SET_COOKIE,
        auth::set_cookie(state, SESSION_COOKIE, token, state.security.session_max.num_seconds()),
    );
    headers.append(SET_COOKIE, auth::set_cookie(state, FORM_COOKIE, "", 0));
    response
}

async fn sign_in(
    State(state): State<AppState>,
    client: auth::Client,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let next = safe_next(form.get("next"));
    let email = form.get("email").map(String::as_str).unwrap_or("");
    let again = |error: &str, status: StatusCode| {
        let mut r = anonymous_form(
            &state,
            "signin.html",
            json!({ "title": "Đăng nhập", "next": next, "email": email, "error": error }),
        );
        *r.status_mut() = status;
        r
    };
    if !anonymous_csrf_ok(&headers, &form) {
        let e = WebError::csrf();
        return again(&e.message, e.status);
    }
    let password = form.get("password").map(String::as_str).unwrap_or("");
    let result = async {
        let now = state.engine.clock.now();
        let key = super::account::account_key(email);
        if let Some(until) =
            super::account::locked(&state, &[(Scope::Account, &key), (Scope::Address, &client.addr)], now).await?
        {
            return Ok(Err(until));
        }
        let attempts = match super::account::begin_attempts(
            &state,
            &[(Scope::Account, &key), (Scope::Address, &client.addr)],
            now,
        )
        .await?
        {
            Ok(attempts) => attempts,
            Err(until) => return Ok(Err(until)),
        };
        match state.store().check_password(email, password).await? {
            Some(user) => {
                state.store().clear_failures(Scope::Account, &key).await?;
                super::account::forget_attempts(&state, &attempts).await?;
                // Signing in again replaces the session the browser had.
                if let Some(old) = auth::cookie(&headers, SESSION_COOKIE) {
                    state.store().end_session(&old).await?;
                }
                Ok(Ok(Some(
                    super::account::open_session(&state, &user, &client, &next).await?,
                )))
            }
            None => {
                tracing::info!(email, client = %client.addr, "đăng nhập sai");
                Ok(match super::account::count_failure(&state, &attempts, now).await? {
                    Some(until) => Err(until),
                    None => Ok(None),
                })
            }
        }
    }
    .await;
    match result {
        Ok(Ok(Some(response))) => response,
        Ok(Ok(None)) => again("e-mail hoặc mật khẩu không đúng", StatusCode::UNAUTHORIZED),
        Ok(Err(until)) => super::account::too_many(
            again(&super::account::lock_message(until), StatusCode::TOO_MANY_REQUESTS),
            until,
            &state,
        ),
        Err(e) => finish(&state, Err(Refusal::Error(e, None))),
    }
}

pub async fn sign_out(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    signing_out(&state, &headers, &form, false).await
}

/// Ends this session, or with `everywhere` every session of the account
/// (recorded as `SessionsEnded`), and goes to the sign-in page.
pub(super) async fn signing_out(
    state: &AppState,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
    everywhere: bool,
) -> Response {
    let result = async {
        let caller = auth::require(state, headers).await?;
        caller.check_csrf(form.get("csrf").map(String::as_str))?;
        if everywhere {
            let by = caller.user.actor(caller.channel.clone());
            state.engine.end_sessions(&caller.user, by).await?;
        } else if let Some(token) = auth::cookie(headers, SESSION_COOKIE) {
            state.store().end_session(&token).await?;
        }
        let mut r = redirect("/signin");
        r.headers_mut()
            .append(SET_COOKIE, auth::set_cookie(state, SESSION_COOKIE, "", 0));
        Ok::<_, WebError>(r)
    }
    .await;
    finish(state, result.map_err(Refusal::from))
}

async fn password_form(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    let result = async {
        let user = state
            .store()
            .signin_link_user(&token, state.engine.clock.now())
            .await?
            .ok_or_else(|| WebError::from(crate::accounts::AccountError::LinkInvalid))?;
        let agency_name = lists::agency_name(&state.plan_views().await?, user.agency.as_str());
        Ok::<_, WebError>(anonymous_form(
            &state,
            "password.html",
            json!({ "title": "Đặt mật khẩu", "user": { "name": user.name.as_str(), "email": user.email, "agency_name": agency_name },
                    "min": crate::accounts::MIN_PASSWORD }),
        ))
    }
    .await;
    finish(&state, result.map_err(Refusal::from))
}

async fn set_password(
    State(state): State<AppState>,
    client: auth::Client,
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
        let (user, session, _) = state.engine.redeem_signin_link(&token, password).await?;
        super::account::after_first_factor(&state, &user, &session, &client, "/").await
    }
    .await;
    finish(&state, result.map_err(Refusal::from))
}

pub(super) fn task_ids(view: &TaskView) -> (&str, &str) {
    view.id.split_once('/').unwrap_or(("", &view.id))
}

/// The plans in the navigation bar.
pub(super) fn plans_nav(plans: &[PlanView]) -> Value {
    plans
        .iter()
        .map(|p| {
            let title = p.plan.header.as_ref().map(|h| h.title.clone());
            let short = title.as_deref().map(|t| short_title(t, 48));
            json!({ "id": p.id, "title": title, "short": short })
        })
        .collect()
}

/// A long title cut at a word boundary to at most `max` characters, with
/// "…" when cut: how navigation tells several plans apart.
pub(crate) fn short_title(title: &str, max: usize) -> String {
    if title.chars().count() <= max {
        return title.to_string();
    }
    let mut out = String::new();
    for word in title.split_whitespace() {
        if out.chars().count() + word.chars().count() + 1 > max {
            break;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    format!("{}…", out.trim_end_matches([',', ';', ':']))
}

/// Who asks for a list, as the index reads it.
pub(super) fn asker(user: &User) -> Asker {
    Asker {
        agency: user.agency.clone(),
        sees_everything: user.sees_everything(),
    }
}

/// Today and the zone of the plans loaded.
pub(super) async fn today(
    state: &AppState,
) -> Result<(std::sync::Arc<[PlanView]>, chrono::NaiveDate, chrono_tz::Tz), WebError> {
    let plans = state.plan_views().await?;
    let (today, tz) = today_in(&plans, state.engine.clock.now());
    Ok((plans, today, tz))
}

/// An inbox or a queue: one page of obligations from the index, or the
/// whole filtered list as a download.
async fn obligation_list(
    state: &AppState,
    caller: &Caller,
    uri: &Uri,
    kind: ListKind,
) -> Result<Result<(Value, std::sync::Arc<[PlanView]>, chrono::NaiveDate), Response>, Refusal> {
    let refuse = |e: WebError| Refusal::Error(e, Some(Box::new(caller.clone())));
    let (query, format) = lists::page_query(&lists::pairs(uri)).map_err(refuse)?;
    let (plans, today, tz) = today(state).await?;
    let asker = asker(&caller.user);
    if let Some(format) = format {
        let name = if kind == ListKind::Queue {
            "cho-duyet"
        } else {
            "hop-viec"
        };
        let file = lists::download(state, kind, &query, &asker, (today, tz), format, name)
            .await
            .map_err(refuse)?;
        return Ok(Err(file));
    }
    let page = state.store().list_obligations(kind, &query, &asker, today).await?;
    let path = if kind == ListKind::Queue { "/queue" } else { "/inbox" };
    let mut ctx = lists::controls(path, &query, page.total, page.pages(), &plans);
    ctx["items"] = page
        .items
        .iter()
        .map(|r| lists::row_json(r, today, tz, &plans))
        .collect();
    Ok(Ok((ctx, plans, today)))
}

async fn inbox(State(state): State<AppState>, headers: HeaderMap, uri: Uri) -> Response {
    let result = async {
        let caller = signed_in(&state, &headers, &uri).await?;
        let (list, plans, today) = match obligation_list(&state, &caller, &uri, ListKind::Inbox).await? {
            Ok(found) => found,
            Err(file) => return Ok(file),
        };
        let feed = state
            .store()
            .calendar_token(&caller.user.agency, state.engine.clock.now())
            .await?;
        let ctx = json!({
            "title": "Hộp việc",
            "today": format_vn(today),
            "list": list,
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
            return Err(Refusal::Error(
                WebError::forbidden_role("duyệt mốc"),
                Some(Box::new(caller)),
            ));
        }
        let (list, plans, _) = match obligation_list(&state, &caller, &uri, ListKind::Queue).await? {
            Ok(found) => found,
            Err(file) => return Ok(file),
        };
        let ctx = json!({ "title": "Chờ duyệt", "list": list, "plans": plans_nav(&plans) });
        Ok(render(&state, "queue.html", Some(&caller), ctx))
    }
    .await;
    finish(&state, result)
}

/// The forms to offer on an obligation: exactly the actions that would
/// succeed now. `may_on` (role, the agency's place on the task, the
/// obligation's status), then what the domain and the engine refuse
/// besides: a decision by an account that filed in the round it decides
/// (four eyes), an extension when no later date is within the plan.
fn offered(user: &User, view: &TaskView, o: &Obligation, latest_extension: Option<NaiveDate>) -> Vec<&'static str> {
    Action::ALL
        .iter()
        .filter(|a| user.may_on(**a, view, o) && !refused_besides(user, **a, o, latest_extension))
        .map(|a| a.as_str())
        .collect()
}

/// What `may_on` lets through but the domain or the engine refuses.
fn refused_besides(user: &User, action: Action, o: &Obligation, latest_extension: Option<NaiveDate>) -> bool {
    match action {
        Action::Approve | Action::Return | Action::Waive => o.round.contains(&user.id),
        Action::Extend => latest_extension.is_some_and(|latest| o.due >= latest),
        Action::Report | Action::Submit | Action::Cancel | Action::Discuss => false,
    }
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
        let mut ctx = task_context(&state, &caller, &plan, &task, &q)
            .await
            .map_err(|e| Refusal::Error(e, Some(Box::new(caller.clone()))))?;
        let mut notices = super::flash::take_placed(&state, &headers).await?;
        // A notice about a milestone shows inside it, where the page lands.
        for m in ctx["milestones"].as_array_mut().into_iter().flatten() {
            let id = m["id"].as_str().unwrap_or_default().to_string();
            m["notices"] = json!(notices.placed_at(&id));
        }
        notices.unplace();
        ctx["notices"] = json!(notices);
        if ctx["before_record"] == json!(true) {
            return Ok(render(&state, "task_before.html", Some(&caller), ctx));
        }
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
    let plans = state.plan_views().await?;
    let (key, plan_view, current) = forms::visible_task(state, &plans, &caller.user, task, Some(plan)).await?;
    let tz = plan_view.tz();
    let dl = plan_view.deadlines();
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
    if let (Some(at), None) = (as_of, history.state.as_ref().and_then(|t| t.definition.as_ref())) {
        // A day before the task's record begins: say from when it does.
        let start = events.first().map(|s| s.event.stamp().at);
        return Ok(json!({
            "before_record": true,
            "title": format!("{} — trước khi có hồ sơ", key.task),
            "plan": key.plan, "task": key.task, "def_title": current.task.definition.as_ref().map(|d| d.title.clone()),
            "as_of": format_vn(local_date(at, tz)),
            "start": start.map(|t| crate::audit::history::record_start_text(t, tz)),
            "start_value": start.map(|t| local_date(t, tz).to_string()),
            "plans": plans_nav(&plans),
        }));
    }
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
    let agency_name = |o: &Obligation| {
        o.agency.as_ref().map(|c| {
            plan_view
                .plan
                .agency(c)
                .map_or_else(|| c.to_string(), |a| a.name.clone())
        })
    };
    let latest_extension = plan_view.plan.header.as_ref().map(|h| h.latest_extension());
    let task_path = format!(
        "/tasks/{}/{}",
        urlencode(key.plan.as_str()),
        urlencode(key.task.as_str())
    );
    // What the person came for: a milestone (`m`), an agency's part of it
    // (`a`) and the form to open (`do`); without one, the milestones still
    // open from this month on.
    // A milestone the task does not have is no target (the page opens as
    // without one).
    let target = q
        .get("m")
        .filter(|m| view.task.milestones.iter().any(|ms| ms.spec.id.as_str() == m.as_str()));
    let target_agency = q.get("a").filter(|a| !a.is_empty());
    let open_action = q.get("do").and_then(|a| Action::parse(a));
    let month_start = chrono::Datelike::with_day(&today, 1).expect("day 1 exists");
    let is_pending = |m: &crate::domain::task::Milestone| m.obligations.iter().any(|o| o.status.is_pending());
    let mut expanded: Vec<bool> = view
        .task
        .milestones
        .iter()
        .map(|m| match target {
            Some(t) => m.spec.id.as_str() == t.as_str(),
            None => is_pending(m) && m.due() >= month_start,
        })
        .collect();
    if target.is_none() && !expanded.contains(&true) {
        if let Some(i) = view.task.milestones.iter().position(is_pending) {
            expanded[i] = true;
        }
    }
    let milestones: Vec<Value> = view
        .task
        .milestones
        .iter()
        .zip(&expanded)
        .map(|(m, expanded)| {
            let t = timeliness(m, today, dl);
            let opens = |o: &Obligation| -> Option<&'static str> {
                let here = target.is_some_and(|t| t.as_str() == m.spec.id.as_str())
                    && target_agency.is_none_or(|a| *a == o.label());
                open_action.filter(|_| here).map(Action::as_str)
            };
            let obligations: Vec<Value> = m
                .obligations
                .iter()
                .map(|o| {
                    let ot = obligation_timeliness(o, today, dl);
                    let stamp = |s: &Option<crate::domain::task::Stamp>| {
                        s.as_ref().map(|s| json!({ "who": review::actor_text(&s.by, &plan_view.plan), "when": review::when_text(s.at, tz) }))
                    };
                    json!({
                        "agency": o.agency, "label": o.label(), "agency_name": agency_name(o),
                        "due": dl.shown(o.due), "iso_due": o.due.to_string(),
                        "min_until": o.due.succ_opt().map(|d| d.to_string()),
                        "planned_due": o.extended_until.is_some().then(|| format_vn(m.spec.due)),
                        "status": o.status.label_vi(), "timeliness": ot.label_vi(), "class": ot.css_class(),
                        "submitted": stamp(&o.submitted), "approved": stamp(&o.approved), "closed": stamp(&o.closed),
                        "reason": o.last_reason, "reports": o.reports,
                        "kpis": o.kpis.iter().filter_map(|(k, v)| def.kpi(k).map(|t| json!({ "label": t.label, "value": crate::domain::task::with_unit(*v, &t.unit) }))).collect::<Vec<_>>(),
                        "filed": review::filed_json(def, &plan_view.plan, tz, &task_path, &o.filed),
                        "actions": if as_of.is_some() { vec![] } else { offered(&caller.user, &view, o, latest_extension) },
                        "open": opens(o),
                        "own": def.is_implementer(&caller.user.agency) && o.owed_by(&caller.user.agency, &def.implementers),
                        "thread": thread(&events, &m.spec.id, &o.reference(), as_of, &plan_view.plan, tz),
                    })
                })
                .collect();
            json!({
                "id": m.spec.id, "title": m.spec.title, "due": dl.shown(m.due()),
                "joint": m.is_joint(), "expanded": expanded,
                "status": m.status.label_vi(), "timeliness": t.label_vi(), "class": t.css_class(),
                "obligations": obligations, "notices": [],
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
            let placeholder = match crate::domain::task::inputs::KpiKind::of(k) {
                crate::domain::task::inputs::KpiKind::Percent => "0–100, vd. 85 hoặc 85,5",
                crate::domain::task::inputs::KpiKind::Count => "số nguyên, vd. 1.000",
                crate::domain::task::inputs::KpiKind::Measure => "vd. 1.000,5 hoặc 12,5",
            };
            json!({ "key": k.key, "label": k.label, "target": k.to_string(), "unit": k.unit, "placeholder": placeholder,
                    "baseline": k.baseline.as_ref().map(|b| format!("{} ({})", crate::domain::task::with_unit(b.value, &k.unit), b.year)),
                    "latest": latest.map(|v| crate::domain::task::with_unit(v, &k.unit)) })
        })
        .collect();
    let returned = review::return_notices(
        &caller.user.agency,
        def,
        &view.task.milestones,
        &events,
        as_of,
        &plan_view.plan,
        tz,
    );
    Ok(json!({
        "title": format!("{} — {}", key.task, def.title),
        "plan": key.plan, "task": key.task, "def_title": def.title, "text": def.text,
        "deadline": def.deadline, "source": def.source.section, "withdrawn": view.task.withdrawn,
        "lead": agencies(std::slice::from_ref(&def.lead)), "advisory": agencies(&def.advisory),
        "implementers": agencies(&def.implementers),
        "coordinators": agencies(&def.coordinators),
        "role": forms::role_on(&caller.user, &view),
        "plan_title": plan_view.plan.header.as_ref().map(|h| h.title.clone()),
        "returned": returned,
        "milestones": milestones, "kpis": kpis, "kpi_keys": def.kpis.iter().map(|k| k.key.to_string()).collect::<Vec<_>>(),
        "history": history_page(&history, q, &task_path),
        "as_of": as_of.map(|t| t.with_timezone(&tz).format("%d/%m/%Y %H:%M").to_string()),
        "as_of_value": q.get("as_of"),
        "limits": {
            "note": crate::domain::task::inputs::NOTE_MAX_CHARS, "reason": crate::domain::task::inputs::REASON_MAX_CHARS,
            "extend_until": plan_view.plan.header.as_ref().map(|h| h.latest_extension().to_string()),
            "extend_until_vn": plan_view.plan.header.as_ref().map(|h| format_vn(h.latest_extension())),
            "files": crate::domain::task::evidence::ATTACHMENTS_MAX_ITEMS,
            "file_mb": state.security.max_file_bytes / (1024 * 1024),
        },
        "plans": plans_nav(&plans),
    }))
}

/// The discussion of one obligation ("Trao đổi"): its messages and the
/// reasons it was returned for, oldest first, up to `as_of`.
fn thread(
    events: &[crate::audit::asof::Stored],
    milestone: &crate::domain::ids::MilestoneId,
    ob: &crate::domain::task::ObligationRef,
    as_of: Option<chrono::DateTime<chrono::Utc>>,
    plan: &crate::domain::plan::Plan,
    tz: chrono_tz::Tz,
) -> Vec<Value> {
    use crate::domain::task::TaskEvent;
    events
        .iter()
        .filter(|s| as_of.is_none_or(|t| s.event.stamp().at <= t))
        .filter_map(|s| {
            let (kind, text) = match &s.event {
                TaskEvent::MessagePosted {
                    milestone: m,
                    obligation,
                    text,
                    ..
                } if m == milestone && obligation == ob => ("message", text),
                TaskEvent::MilestoneReturned {
                    milestone: m,
                    obligation: Some(obligation),
                    reason,
                    ..
                } if m == milestone && obligation == ob => ("return", reason),
                _ => return None,
            };
            let stamp = s.event.stamp();
            Some(json!({
                "kind": kind, "text": text,
                "who": review::actor_text(&stamp.by, plan), "when": review::when_text(stamp.at, tz),
            }))
        })
        .collect()
}

/// Entries of a task's history a page shows at once.
const HISTORY_PER_PAGE: usize = 30;

/// One page of a task's history, newest first: what people did and the
/// deadlines' changes, or with `thu=1` the e-mail deliveries too (never
/// their Message-IDs or paths); `lich_su=N` is the page.
fn history_page(history: &History, q: &HashMap<String, String>, task_path: &str) -> Value {
    let deliveries = q.get("thu").is_some_and(|v| v == "1");
    let shown: Vec<&crate::audit::history::Entry> = history
        .entries
        .iter()
        .rev()
        .filter(|e| deliveries || !e.is_delivery())
        .collect();
    let hidden = history.entries.len() - shown.len();
    let pages = shown.len().div_ceil(HISTORY_PER_PAGE).max(1);
    let page = q
        .get("lich_su")
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(1)
        .clamp(1, pages);
    let mut keep: Vec<String> = Vec::new();
    for name in ["m", "a"] {
        if let Some(v) = q.get(name).filter(|v| !v.is_empty()) {
            keep.push(format!("{name}={}", urlencode(v)));
        }
    }
    if deliveries {
        keep.push("thu=1".into());
    }
    if let Some(a) = q.get("as_of").filter(|a| !a.is_empty()) {
        keep.push(format!("as_of={}", urlencode(a)));
    }
    // The task page with these query parts, at its history.
    let at_history = |parts: Vec<String>| -> String {
        if parts.is_empty() {
            format!("{task_path}#history")
        } else {
            format!("{task_path}?{}#history", parts.join("&"))
        }
    };
    let page_link = |p: usize| {
        let mut parts = keep.clone();
        if p > 1 {
            parts.push(format!("lich_su={p}"));
        }
        at_history(parts)
    };
    let toggle = {
        let mut parts: Vec<String> = keep.iter().filter(|k| *k != "thu=1").cloned().collect();
        if !deliveries {
            parts.push("thu=1".into());
        }
        at_history(parts)
    };
    json!({
        "entries": shown.iter().skip((page - 1) * HISTORY_PER_PAGE).take(HISTORY_PER_PAGE).map(|e| json!({
            "sequence": e.sequence, "at": e.at.format("%d/%m/%Y %H:%M").to_string(), "actor": e.actor_text,
            "what": e.what, "details": e.page_details, "delivery": e.is_delivery(),
            "hash": e.hash.as_deref().map(|h| &h[..h.len().min(12)]),
        })).collect::<Vec<_>>(),
        "total": shown.len(), "hidden": hidden, "deliveries": deliveries, "toggle": toggle,
        "page": page, "pages": pages,
        "prev": (page > 1).then(|| page_link(page - 1)),
        "next": (page < pages).then(|| page_link(page + 1)),
    })
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
            "csrf" | "confirm" => {}
            k if k.starts_with("kpi.") => {
                if v.trim().is_empty() {
                    continue;
                }
                let value = forms::parse_vn_number(v)
                    .map_err(|e| WebError::bad_request(format!("chỉ tiêu {}: {e}", &k[4..])))?;
                input.kpis.insert(k[4..].to_string(), value);
            }
            other => return Err(WebError::bad_request(format!("trường không có: {other:?}"))),
        }
    }
    Ok(input)
}

/// The fields of a task form, urlencoded or (with evidence files)
/// `multipart/form-data`.
pub(super) async fn task_form(
    state: &AppState,
    request: Request,
) -> Result<(Vec<(String, String)>, files::Uploads), WebError> {
    if files::is_multipart(&request) {
        return files::read_multipart(state, request).await;
    }
    let Form(form) = Form::<Vec<(String, String)>>::from_request(request, state)
        .await
        .map_err(|e| WebError::bad_request(format!("biểu mẫu không đọc được: {}", e.body_text())))?;
    Ok((form, Vec::new()))
}

/// `POST` of a task's milestone form (routed with the uploads in `web::router`).
pub(super) async fn task_action(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path((plan, task, milestone, action)): Path<(String, String, String, String)>,
    request: Request,
) -> Response {
    let result = async {
        let caller = signed_in(&state, &headers, &uri).await?;
        let refuse = |e: WebError| Refusal::Error(e, Some(Box::new(caller.clone())));
        let (form, uploads) = task_form(&state, request).await.map_err(refuse)?;
        caller
            .check_csrf(form.iter().find(|(k, _)| k == "csrf").map(|(_, v)| v.as_str()))
            .map_err(refuse)?;
        let action = Action::parse(&action).ok_or_else(|| refuse(WebError::not_found("không có thao tác này")))?;
        let plans = state.plan_views().await?;
        let (key, plan_view, view) = forms::visible_task(&state, &plans, &caller.user, &task, Some(&plan))
            .await
            .map_err(refuse)?;
        let mut input = action_input(&form).map_err(refuse)?;
        let confirmed = form.iter().any(|(k, v)| k == "confirm" && v == "1");
        if action == Action::Submit && !confirmed && !uploads.is_empty() {
            // Files cannot be carried through a confirmation page: the form
            // asks for its box to be ticked instead.
            return Err(refuse(WebError::bad_request(
                "Hãy đánh dấu ô «Tôi xác nhận nộp mốc này» rồi nộp lại (chưa có gì được ghi)",
            )));
        }
        if review::needs_confirmation(action) && !confirmed {
            let ask = review::Confirmation {
                caller: &caller,
                key: &key,
                plan: &plan_view,
                view: &view,
                milestone: &milestone,
                action,
                now: state.engine.clock.now(),
            };
            let mut ctx = ask.context(&input, &form, uri.path()).map_err(refuse)?;
            ctx["plans"] = plans_nav(&plans);
            return Ok(render(&state, "confirm.html", Some(&caller), ctx));
        }
        input.attachments = files::attach(&state, &caller, action, uploads).await.map_err(refuse)?;
        let agency = input.agency.clone();
        let acted = forms::perform(&state, &caller, &key, &milestone, action, input)
            .await
            .map_err(refuse)?;
        let done = review::done_message(action, acted.as_ref(), agency.as_deref(), &plan_view.plan);
        super::flash::push_at(&state, &headers, super::flash::Kind::Done, &milestone, &done).await?;
        Ok(redirect(&format!(
            "/tasks/{}/{}?m={}#m-{}",
            urlencode(key.plan.as_str()),
            urlencode(key.task.as_str()),
            urlencode(&milestone),
            urlencode(&milestone)
        )))
    }
    .await;
    finish(&state, result)
}

/// `GET /tasks/{plan}/{task}/files/{sha256}`: an evidence file of a task
/// the user may see, as a download; `?view=1` shows a PDF or an image in
/// the browser.
async fn task_file(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path((plan, task, sha256)): Path<(String, String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let result = async {
        let caller = signed_in(&state, &headers, &uri).await?;
        let refuse = |e: WebError| Refusal::Error(e, Some(Box::new(caller.clone())));
        let plans = state.plan_views().await?;
        let (key, _, _) = forms::visible_task(&state, &plans, &caller.user, &task, Some(&plan))
            .await
            .map_err(refuse)?;
        let inline = q.get("view").is_some_and(|v| v == "1");
        files::task_file(&state, &key, &sha256, inline).await.map_err(refuse)
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
        let plans = state.plan_views().await?;
        let view: &PlanView = plans
            .iter()
            .find(|p| p.id == plan)
            .ok_or_else(|| refuse(WebError::not_found(format!("không có kế hoạch {plan:?}"))))?;
        let tz = view.tz();
        let (mut query, format) = lists::page_query(&lists::pairs(&uri)).map_err(refuse)?;
        query.plan = Some(plan.clone());
        let as_of = match q.get("as_of").filter(|a| !a.trim().is_empty()) {
            Some(_) if !caller.user.sees_everything() => {
                return Err(refuse(WebError::forbidden_role("xem kế hoạch tại một thời điểm trong quá khứ")))
            }
            Some(a) => Some(parse_as_of(a, tz).map_err(|e| refuse(WebError::bad_request(format!("xem tại ngày: {e}"))))?),
            None => None,
        };
        let now_today = local_date(state.engine.clock.now(), tz);
        let asker = asker(&caller.user);
        if let Some(format) = format {
            let name = format!("nhiem-vu-{plan}");
            return lists::download(&state, ListKind::Tasks, &query, &asker, (now_today, tz), format, &name)
                .await
                .map_err(refuse);
        }
        let today = as_of.map_or(now_today, |at| local_date(at, tz));
        // One page of the plan's tasks, through the index: the list and the
        // chart show them; the counts per agency cover every task the caller
        // may see, counted by the database. As of a day in the past (for
        // auditors), the tasks are replayed to that time and counted here.
        let page = state.store().list_task_ids(&query, &asker, now_today).await?;
        let (agencies, shown) = match as_of {
            Some(at) => {
                let mut standing = Standing::default();
                let mut shown: Vec<TaskView> = Vec::new();
                for v in state.store().plan_task_views(&plan, &asker).await? {
                    let task = replay_until(&state.store().task_events(&v.id).await?, at);
                    if task.definition.is_none() {
                        continue;
                    }
                    standing.add(task_ids(&v).1, &task, today, view.deadlines());
                    if page.items.contains(&v.id) {
                        shown.push(TaskView { task, ..v });
                    }
                }
                (standing.agencies, shown)
            }
            None => (
                state.store().plan_agency_counts(&plan, &asker, today).await?,
                state.store().task_views_in_order(&page.items).await?,
            ),
        };
        let mut listed = Standing::default();
        for id in &page.items {
            if let Some(v) = shown.iter().find(|v| &v.id == id) {
                listed.add(task_ids(v).1, &v.task, today, view.deadlines());
            }
        }
        let svg = super::timeline::plan_timeline_svg(view, &shown, today);
        let header = view.plan.header.as_ref();
        let mut list = lists::controls(&format!("/plans/{plan}"), &query, page.total, page.pages(), &plans);
        list["plan"] = json!(null);
        let notices = super::flash::take(&state, &headers).await?;
        // As of a day before the plan's record begins: say from when it does.
        let before_record = match as_of {
            Some(at) => state
                .store()
                .record_start(&plan)
                .await?
                .filter(|s| at < *s)
                .map(|s| crate::audit::history::record_start_text(s, tz)),
            None => None,
        };
        let ctx = json!({
            "before_record": before_record,
            "title": header.map_or(plan.clone(), |h| h.title.clone()),
            "notices": notices,
            "document": super::imports::document_context(view),
            "plan": plan, "today": format_vn(today),
            "period": header.map(|h| format!("{} – {}", format_vn(h.start), format_vn(h.end))),
            "svg": svg,
            "agencies": agencies.iter().map(|(code, c)| json!({
                "code": code, "name": view.plan.agencies.iter().find(|a| a.code.as_str() == code).map(|a| a.name.clone()),
                "on_time": c.on_time, "overdue": c.overdue, "not_yet_due": c.not_yet_due, "approved_late": c.approved_late,
            })).collect::<Vec<_>>(),
            "tasks": listed.tasks,
            "list": list,
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

pub(super) async fn admin_page(state: &AppState, caller: &Caller, mut ctx: Value) -> Result<Response, WebError> {
    ctx["title"] = json!("Quản trị");
    let plans = state.plan_views().await?;
    let users: Vec<Value> = state
        .store()
        .all_users()
        .await?
        .into_iter()
        .map(|(u, disabled)| {
            let mut v = super::admin::user_json(&u, &plans);
            v["disabled"] = json!(disabled);
            v
        })
        .collect();
    ctx["users"] = json!(users);
    if ctx.get("new_user").is_none() {
        ctx["new_user"] = super::admin::new_user_form(&plans, None);
        ctx["form_error"] = Value::Null;
    }
    ctx["plans"] = plans_nav(&plans);
    Ok(render(state, "admin.html", Some(caller), ctx))
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
        let plans = state.plan_views().await?;
        // Only the tasks that involve the agency, through the index.
        let views = state.store().task_views_involving(&agency).await?;
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

/// The error page for a refusal made outside the page handlers (no route,
/// wrong method): see `super::strict`.
pub(super) fn error_page(state: &AppState, e: WebError) -> Response {
    finish(state, Err(Refusal::Error(e, None)))
}

#[cfg(test)]
mod tests {
    use super::{is_same_site_path, offered};
    use crate::accounts::{parse_roles, Action, ActionFields, Email, User};
    use crate::domain::ids::{AgencyCode, PersonName};
    use crate::domain::task::{Channel, Stamp, TaskAction, TaskCommand};
    use crate::projections::views::TaskView;
    use chrono::NaiveDate;

    fn user(id: &str, agency: &str, roles: &str) -> User {
        User {
            id: id.into(),
            email: Email::parse(&format!("{id}@ducpho.example")).unwrap(),
            name: PersonName::parse("Người Thử").unwrap(),
            agency: AgencyCode::parse(agency).unwrap(),
            roles: parse_roles(roles).unwrap(),
            has_password: true,
        }
    }

    fn stamp(u: &User) -> Stamp {
        Stamp {
            by: u.actor(Channel::Cli {
                os_user: "test".into(),
                host: "test".into(),
            }),
            at: chrono::Utc::now(),
        }
    }

    /// A task of the shipped plan as registered, and the plan's latest extension date.
    fn shipped_task(id: &str) -> (TaskView, NaiveDate) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows/duc-pho-de-an-13.toml");
        let plan = crate::plan::parse_file(&path).unwrap();
        let t = plan.tasks.iter().find(|t| t.id.as_str() == id).unwrap();
        let mut view = TaskView::empty(&plan.key(t).to_string());
        let system = Stamp {
            by: crate::domain::task::Actor::system_on("plan-loader", "test", "test"),
            at: chrono::Utc::now(),
        };
        act(
            &mut view,
            system,
            TaskAction::SyncFromPlan {
                plan: plan.header.id.clone(),
                task: t.id.clone(),
                definition: t.definition.clone(),
                milestones: t.milestones.clone(),
            },
        );
        (view, plan.header.latest_extension())
    }

    fn act(view: &mut TaskView, stamp: Stamp, action: TaskAction) {
        let events = view.task.decide(TaskCommand { stamp, action }).unwrap();
        for e in events {
            cqrs_es::Aggregate::apply(&mut view.task, e);
        }
    }

    /// `action` by `u` on the first milestone's obligation of `agency`, as its form posts it.
    fn by(view: &mut TaskView, u: &User, action: Action, agency: &str) {
        let m = view.task.milestones[0].spec.id.clone();
        let fields = ActionFields {
            note: "Ghi chú".into(),
            reason: "Lý do".into(),
            ..Default::default()
        };
        let named = AgencyCode::parse(agency).ok();
        act(view, stamp(u), action.build(m, named, fields).unwrap());
    }

    /// Whether the action would be carried out: the role gate, the engine's
    /// extension limit and the domain's decision, with the fields its form sends.
    fn succeeds(view: &TaskView, u: &User, action: Action, m: usize, o: usize, latest: NaiveDate) -> bool {
        let mil = &view.task.milestones[m];
        let ob = &mil.obligations[o];
        let until = ob.due.succ_opt().unwrap();
        let fields = ActionFields {
            note: "Ghi chú".into(),
            reason: "Lý do".into(),
            until: Some(until),
            ..Default::default()
        };
        let command = TaskCommand {
            stamp: stamp(u),
            action: action.build(mil.spec.id.clone(), ob.agency.clone(), fields).unwrap(),
        };
        u.role_allows(action) && (action != Action::Extend || until <= latest) && view.task.decide(command).is_ok()
    }

    /// What is offered is exactly what would succeed, for every user, obligation and action.
    fn offered_is_what_succeeds(view: &TaskView, latest: NaiveDate, users: &[User], step: &str) {
        for u in users {
            for (m, mil) in view.task.milestones.iter().enumerate() {
                for (o, ob) in mil.obligations.iter().enumerate() {
                    let shown = offered(u, view, ob, Some(latest));
                    for a in Action::ALL {
                        assert_eq!(
                            shown.contains(&a.as_str()),
                            succeeds(view, u, a, m, o, latest),
                            "{step}: {} ({:?}) {} on {}/{}",
                            u.id,
                            u.roles,
                            a.as_str(),
                            mil.spec.id,
                            ob.label()
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn offered_is_exactly_what_would_succeed_on_separate_obligations() {
        let (mut view, latest) = shipped_task("III.1.2");
        let ubnd = user("acc-ubnd", "UBND", "member");
        let moved = user("acc-ubnd", "BDV", "supervisor");
        let btv = user("acc-btv", "BTV", "supervisor");
        let bdv = user("acc-bdv", "BDV", "member,supervisor");
        let mttq = user("acc-mttq", "MTTQ", "member");
        let users = [
            ubnd.clone(),
            moved,
            btv.clone(),
            bdv.clone(),
            mttq.clone(),
            user("acc-ubnd-lead", "UBND", "supervisor"),
            user("acc-audit", "UBKT", "auditor"),
            user("acc-admin", "VPTX", "admin"),
        ];
        offered_is_what_succeeds(&view, latest, &users, "registered");
        by(&mut view, &ubnd, Action::Report, "UBND");
        offered_is_what_succeeds(&view, latest, &users, "reported");
        by(&mut view, &ubnd, Action::Submit, "UBND");
        by(&mut view, &mttq, Action::Submit, "MTTQ");
        offered_is_what_succeeds(&view, latest, &users, "submitted");
        by(&mut view, &btv, Action::Return, "UBND");
        offered_is_what_succeeds(&view, latest, &users, "returned");
        by(&mut view, &ubnd, Action::Submit, "UBND");
        by(&mut view, &bdv, Action::Approve, "UBND");
        by(&mut view, &btv, Action::Waive, "MTTQ");
        by(&mut view, &btv, Action::Cancel, "CTXH");
        offered_is_what_succeeds(&view, latest, &users, "decided");
        // Past the plan's last extension date, no extension is offered.
        let ttdhnd = view.task.milestones[0].obligations[0].clone();
        assert!(offered(&btv, &view, &ttdhnd, Some(ttdhnd.due))
            .iter()
            .all(|a| *a != "extend"));
        assert!(offered(&btv, &view, &ttdhnd, Some(latest)).contains(&"extend"));
    }

    #[test]
    fn offered_is_exactly_what_would_succeed_on_a_joint_obligation() {
        // II.1.1: BTG and BDV implement it jointly and also advise on it.
        let (mut view, latest) = shipped_task("II.1.1");
        let btg = user("acc-btg", "BTG", "member,supervisor");
        let bdv = user("acc-bdv", "BDV", "supervisor");
        let btv = user("acc-btv", "BTV", "supervisor");
        let users = [
            btg.clone(),
            bdv,
            btv.clone(),
            user("acc-ubnd", "UBND", "member,supervisor"),
        ];
        offered_is_what_succeeds(&view, latest, &users, "registered");
        by(&mut view, &btg, Action::Submit, "");
        offered_is_what_succeeds(&view, latest, &users, "submitted");
        by(&mut view, &btv, Action::Return, "");
        offered_is_what_succeeds(&view, latest, &users, "returned");
        by(&mut view, &btg, Action::Submit, "");
        by(&mut view, &btv, Action::Approve, "");
        offered_is_what_succeeds(&view, latest, &users, "approved");
    }

    #[test]
    fn long_titles_are_cut_at_a_word() {
        assert_eq!(super::short_title("Kế hoạch ngắn", 48), "Kế hoạch ngắn");
        assert_eq!(
            super::short_title("Kế hoạch thực hiện Đề án số 13-ĐA/TU ngày 10/10/2022 của Ban", 30),
            "Kế hoạch thực hiện Đề án số…"
        );
    }

    #[test]
    fn only_same_site_paths_follow_sign_in() {
        for ok in ["/inbox", "/tasks/ke-hoach-13/II.1.1", "/plans/x?y=1"] {
            assert!(is_same_site_path(ok), "{ok}");
        }
        for bad in [
            "/\t/evil.example",
            "//evil",
            "/\\evil",
            "https://evil",
            "/\r\n/evil",
            "/a b",
            "",
            "inbox",
            "/a\\b",
        ] {
            assert!(!is_same_site_path(bad), "{bad:?}");
        }
    }
}
