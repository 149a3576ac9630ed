//! Managing accounts from the admin page: create a user (the one-time
//! sign-in link is e-mailed to them), disable and enable, change roles,
//! send a new link, revoke API tokens, end sessions. Admins only; every
//! change goes through the engine, which records it as an event of the
//! account with the admin who made it (channel web) before the tables move.
//!
//! An admin cannot disable their own account nor drop their own admin role:
//! the one acting always remains an enabled admin, so the last admin can
//! never lock everyone out.

use super::auth::Caller;
use super::pages::{
    admin_page, finish, plans_nav, redirect, refusal, render, signed_in, urlencode, PageResult, Refusal,
};
use super::{AppState, WebError};
use crate::accounts::history::HistoryEntry;
use crate::accounts::store::{token_id, NewUser, LINK_TTL};
use crate::accounts::{AccountError, Email, Role, User};
use crate::domain::ids::{AgencyCode, PersonName};
use crate::notification::signin::{self, SigninMail};
use crate::projections::views::PlanView;
use axum::extract::{Form, Path, State};
use axum::http::header::CACHE_CONTROL;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/users", post(create_user))
        .route("/admin/users/{id}", get(user_page))
        .route("/admin/users/{id}/{action}", post(user_action))
        .route("/admin/users/{id}/tokens/{token}/revoke", post(revoke_token))
}

/// What a successful change says on the user's page, by a fixed code.
fn saved_text(code: &str) -> Option<&'static str> {
    Some(match code {
        "created" => "Đã tạo người dùng và gửi liên kết đăng nhập một lần đến e-mail của họ.",
        "link" => "Đã gửi liên kết đăng nhập mới đến e-mail của người dùng.",
        "disable" => "Đã khóa tài khoản: các phiên đăng nhập đã kết thúc, mã truy cập API không còn dùng được.",
        "enable" => "Đã mở khóa tài khoản.",
        "roles" => "Đã cập nhật vai trò.",
        "signout" => "Đã kết thúc mọi phiên đăng nhập của người dùng.",
        "revoke" => "Đã thu hồi mã truy cập API.",
        _ => return None,
    })
}

/// After a change: its notice, carried by the session (never by the URL),
/// and the user's page.
async fn saved(state: &AppState, headers: &HeaderMap, user_id: &str, code: &str) -> PageResult {
    if let Some(text) = saved_text(code) {
        super::flash::push(state, headers, super::flash::Kind::Done, text).await?;
    }
    Ok(redirect(&format!("/admin/users/{}", urlencode(user_id))))
}

/// The signed-in caller if an admin; others get 403 saying they may not do
/// `what` (and the sign-in page when not signed in).
pub(super) async fn admin_caller(
    state: &AppState,
    headers: &HeaderMap,
    uri: &Uri,
    what: &str,
) -> Result<Caller, Refusal> {
    let caller = signed_in(state, headers, uri).await?;
    if !caller.user.has(Role::Admin) {
        return Err(Refusal::Error(WebError::forbidden_role(what), Some(Box::new(caller))));
    }
    Ok(caller)
}

/// `admin_caller` for a form that changes something: it must carry the
/// session's CSRF token.
async fn admin_post(
    state: &AppState,
    headers: &HeaderMap,
    uri: &Uri,
    form: &[(String, String)],
) -> Result<Caller, Refusal> {
    let caller = admin_caller(state, headers, uri, "quản lý tài khoản").await?;
    match caller.check_csrf(Some(field(form, "csrf"))) {
        Ok(()) => Ok(caller),
        Err(e) => Err(Refusal::Error(e, Some(Box::new(caller)))),
    }
}

pub(super) fn field<'a>(form: &'a [(String, String)], name: &str) -> &'a str {
    form.iter().find(|(k, _)| k == name).map_or("", |(_, v)| v.as_str())
}

/// The checked roles of a form (`role` fields), as a sorted set; at least one.
fn checked_roles(form: &[(String, String)]) -> Result<Vec<Role>, WebError> {
    let mut roles = form
        .iter()
        .filter(|(k, _)| k == "role")
        .map(|(_, v)| Role::parse(v))
        .collect::<Result<Vec<_>, _>>()?;
    roles.sort();
    roles.dedup();
    if roles.is_empty() {
        return Err(WebError::bad_request("cần chọn ít nhất một vai trò"));
    }
    Ok(roles)
}

/// The agencies of the loaded plans, for the agency list (each code once).
pub fn agency_options(plans: &[PlanView]) -> Vec<Value> {
    let mut seen = std::collections::BTreeSet::new();
    plans
        .iter()
        .flat_map(|p| p.plan.agencies.iter())
        .filter(|a| seen.insert(a.code.clone()))
        .map(|a| json!({ "code": a.code, "name": a.name }))
        .collect()
}

/// A user as the admin pages show it: its stored fields and its roles in
/// Vietnamese (`roles_vi`).
pub fn user_json(user: &User, plans: &[crate::projections::views::PlanView]) -> Value {
    let mut v = json!(user);
    v["roles_vi"] = json!(user.roles_vi());
    v["agency_name"] = json!(super::lists::agency_name(plans, user.agency.as_str()));
    v
}

/// Every role with its Vietnamese label and whether it is checked.
fn role_options(checked: &[String]) -> Vec<Value> {
    Role::NAMES
        .iter()
        .filter_map(|n| Role::parse(n).ok())
        .map(|r| json!({ "name": r.as_str(), "label": r.label_vi(), "checked": checked.iter().any(|c| c == r.as_str()) }))
        .collect()
}

/// The create-user form of the admin page, filled with what was posted.
pub fn new_user_form(plans: &[PlanView], posted: Option<&[(String, String)]>) -> Value {
    let posted = posted.unwrap_or(&[]);
    let checked: Vec<String> = if posted.is_empty() {
        vec![Role::Member.as_str().to_string()]
    } else {
        posted
            .iter()
            .filter(|(k, _)| k == "role")
            .map(|(_, v)| v.clone())
            .collect()
    };
    json!({
        "email": field(posted, "email"), "name": field(posted, "name"), "agency": field(posted, "agency"),
        "agencies": agency_options(plans),
        "roles": role_options(&checked),
    })
}

/// The new user a form describes, every field checked (the agency against
/// the loaded plans' list).
fn new_user(form: &[(String, String)], plans: &[PlanView]) -> Result<NewUser, WebError> {
    let email = Email::parse(field(form, "email"))?;
    let name = PersonName::parse_new(field(form, "name"))?;
    let code = field(form, "agency").trim();
    if code.is_empty() {
        return Err(WebError::bad_request("cần chọn cơ quan của người dùng"));
    }
    let agency = AgencyCode::parse_loose(code)?;
    if !plans.iter().any(|p| p.plan.agency(&agency).is_some()) {
        return Err(AccountError::UnknownAgency(agency.to_string()).into());
    }
    Ok(NewUser {
        email,
        name,
        agency,
        roles: checked_roles(form)?,
    })
}

/// `POST /admin/users`: creates the user and sends the sign-in link. Bad
/// input shows the admin page again with the form as posted.
async fn create_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let result = async {
        let caller = admin_post(&state, &headers, &uri, &form).await?;
        let refuse = refusal(&caller);
        let plans = state.plan_views().await?;
        let created = match new_user(&form, &plans) {
            Ok(new) => state
                .engine
                .add_user(new, caller.user.actor(caller.channel.clone()))
                .await
                .map_err(|e| match e {
                    AccountError::DuplicateEmail(_) => {
                        WebError::new(StatusCode::CONFLICT, "duplicate_email", e.to_string())
                    }
                    other => other.into(),
                }),
            Err(e) => Err(e),
        };
        match created {
            Ok((user, token)) => send_link(&state, &headers, &caller, &user, &token, true).await,
            Err(e) if e.status.is_server_error() => Err(refuse(e)),
            Err(e) => {
                tracing::info!(error = %e.message, "tạo người dùng bị từ chối");
                let ctx = json!({ "new_user": new_user_form(&plans, Some(&form)), "form_error": e.message });
                let mut page = admin_page(&state, &caller, ctx).await.map_err(refuse)?;
                *page.status_mut() = e.status;
                Ok(page)
            }
        }
    }
    .await;
    finish(&state, result)
}

/// E-mails a link just issued to its account and goes to the user's page;
/// without an SMTP server (or when sending fails) the link is shown once
/// on the page instead, never put in a URL.
async fn send_link(
    state: &AppState,
    headers: &HeaderMap,
    caller: &Caller,
    user: &User,
    token: &str,
    created: bool,
) -> PageResult {
    let url = crate::cli::users::signin_url(&state.base_url, token);
    let code = if created { "created" } else { "link" };
    let Some(mailer) = state.mailer.as_ref().filter(|m| m.reaches_people()) else {
        return shown_once(state, caller, user, &url, None).await;
    };
    let vn = chrono::FixedOffset::east_opt(7 * 3600).expect("UTC+7");
    let now = state.engine.clock.now();
    let mail = SigninMail {
        to: user.email.to_string(),
        name: user.name.as_str().to_string(),
        url: url.clone(),
        created,
        by: format!(
            "{} <{}> ({})",
            caller.user.name.as_str(),
            caller.user.email,
            caller.user.agency
        ),
        expires: (now + LINK_TTL).with_timezone(&vn),
        from: mailer.from.clone(),
        message_id: signin::message_id(&token_id(&crate::accounts::store::digest(token)), &mailer.mail_domain),
        date: now.with_timezone(&vn),
        simulation: state.engine.is_simulation(),
    };
    match signin::send(mailer, &mail).await {
        Ok(()) => saved(state, headers, &user.id, code).await,
        Err(e) => {
            tracing::warn!(to = %user.email, error = %e, "không gửi được liên kết đăng nhập; hiện liên kết cho quản trị viên");
            shown_once(state, caller, user, &url, Some(e.to_string())).await
        }
    }
}

/// The user's page with the sign-in link shown once (not stored by caches).
async fn shown_once(
    state: &AppState,
    caller: &Caller,
    user: &User,
    url: &str,
    mail_error: Option<String>,
) -> PageResult {
    let extra = json!({ "link": url, "mail_error": mail_error });
    let mut page = user_view(state, caller, &user.id, extra, None).await?;
    page.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(page)
}

/// Renders `/admin/users/{id}` with `extra` in the context; `roles` are
/// the boxes to check (the posted ones after a refused change).
async fn user_view(
    state: &AppState,
    caller: &Caller,
    id: &str,
    extra: Value,
    roles: Option<Vec<String>>,
) -> PageResult {
    let refuse = refusal(caller);
    let (user, disabled) = state
        .store()
        .user_by_id(id)
        .await?
        .ok_or_else(|| refuse(WebError::not_found("không có người dùng này")))?;
    let plans = state.plan_views().await?;
    let events: Vec<HistoryEntry> = state
        .store()
        .account_events(&user.id)
        .await?
        .iter()
        .map(|(seq, e)| {
            let mut entry = HistoryEntry::new(*seq, e);
            entry.what = super::lists::with_agency_names(&entry.what, &plans);
            entry.actor_text = super::lists::with_agency_names(&entry.actor_text, &plans);
            entry
        })
        .collect();
    let tokens = state.store().api_tokens(Some(&user.email)).await?;
    let sessions = state
        .store()
        .sessions_of(&user.id, state.engine.clock.now(), &state.security)
        .await?
        .len();
    let checked = roles.unwrap_or_else(|| user.roles.iter().map(|r| r.as_str().to_string()).collect());
    let mut ctx = json!({
        "title": format!("Tài khoản {}", user.email),
        "user": user_json(&user, &plans), "disabled": disabled, "events": events,
        "tokens": tokens, "sessions": sessions,
        "roles": role_options(&checked),
        "is_self": user.id == caller.user.id,
        "notice": null, "error": null, "link": null, "mail_error": null,
        "plans": plans_nav(&state.plan_views().await?),
    });
    if let (Some(ctx), Some(extra)) = (ctx.as_object_mut(), extra.as_object()) {
        ctx.extend(extra.clone());
    }
    Ok(render(state, "admin_user.html", Some(caller), ctx))
}

/// `GET /admin/users/{id}`: the account, its tokens and sessions, the forms
/// that change it, and its history.
async fn user_page(State(state): State<AppState>, headers: HeaderMap, uri: Uri, Path(id): Path<String>) -> Response {
    let result = async {
        let caller = admin_caller(&state, &headers, &uri, "quản lý tài khoản").await?;
        let notices = super::flash::take(&state, &headers).await?;
        user_view(&state, &caller, &id, json!({ "notices": notices }), None).await
    }
    .await;
    finish(&state, result)
}

/// Refuses a change an admin would make to their own account that could
/// leave nobody able to administer.
fn self_lockout(caller: &Caller, user: &User, what: &str) -> Result<(), WebError> {
    if caller.user.id == user.id {
        return Err(WebError::new(
            StatusCode::CONFLICT,
            "self_lockout",
            format!("không thể tự {what} của chính mình: hãy nhờ một quản trị viên khác (để hệ thống luôn còn người quản trị)"),
        ));
    }
    Ok(())
}

/// `POST /admin/users/{id}/{disable|enable|roles|link|signout}`.
async fn user_action(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path((id, action)): Path<(String, String)>,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let result = async {
        let caller = admin_post(&state, &headers, &uri, &form).await?;
        let refuse = refusal(&caller);
        let (user, disabled) = state
            .store()
            .user_by_id(&id)
            .await?
            .ok_or_else(|| refuse(WebError::not_found("không có người dùng này")))?;
        let by = caller.user.actor(caller.channel.clone());
        match action.as_str() {
            "disable" | "enable" | "roles" | "signout" => {}
            "link" if disabled => {
                return Err(refuse(WebError::new(
                    StatusCode::CONFLICT,
                    "disabled",
                    "tài khoản đang bị khóa; hãy mở khóa trước khi gửi liên kết đăng nhập",
                )))
            }
            "link" => {
                let (user, token) = state
                    .engine
                    .new_signin_link(&user.email, by)
                    .await
                    .map_err(|e| refuse(e.into()))?;
                return send_link(&state, &headers, &caller, &user, &token, false).await;
            }
            _ => return Err(refuse(WebError::not_found("không có thao tác này"))),
        }
        let confirmed = form.iter().any(|(k, v)| k == "confirm" && v == "1");
        if action == "disable" && !confirmed {
            // Locking someone out is asked again, as a decision on a
            // milestone is.
            self_lockout(&caller, &user, "khóa tài khoản").map_err(&refuse)?;
            let back = format!("/admin/users/{}", urlencode(&user.id));
            let ctx = json!({
                "title": format!("Xác nhận: khóa tài khoản {}", user.name.as_str()),
                "question": format!("Khóa tài khoản của {} ({})?", user.name.as_str(), user.email),
                "consequence": "Người này không đăng nhập được nữa; mọi phiên đăng nhập và mã API của họ bị chặn ngay. \
                                Việc khóa ghi vào lịch sử tài khoản; có thể mở khóa lại sau.",
                "action": "disable", "verb": "Khóa", "note": "", "reason": "", "filed": [], "task_title": null,
                "post_to": uri.path(), "fields": [], "back": back, "back_label": "Quay lại tài khoản",
            });
            return Ok(render(&state, "confirm.html", Some(&caller), ctx));
        }
        let changed = async {
            match action.as_str() {
                "disable" => {
                    self_lockout(&caller, &user, "khóa tài khoản")?;
                    state.engine.set_disabled(&user.email, true, by).await?;
                }
                "enable" => {
                    state.engine.set_disabled(&user.email, false, by).await?;
                }
                "roles" => {
                    let roles = checked_roles(&form)?;
                    if !roles.contains(&Role::Admin) {
                        self_lockout(&caller, &user, "bỏ vai trò quản trị")?;
                    }
                    state.engine.set_roles(&user.email, roles, by).await?;
                }
                _ => {
                    state.engine.end_sessions(&user, by).await?;
                }
            }
            Ok::<(), WebError>(())
        }
        .await;
        match changed {
            Ok(()) => saved(&state, &headers, &user.id, &action).await,
            Err(e) if e.status.is_server_error() => Err(refuse(e)),
            Err(e) => {
                let posted = (action == "roles").then(|| {
                    form.iter()
                        .filter(|(k, _)| k == "role")
                        .map(|(_, v)| v.clone())
                        .collect()
                });
                let mut page = user_view(&state, &caller, &user.id, json!({ "error": e.message }), posted).await?;
                *page.status_mut() = e.status;
                Ok(page)
            }
        }
    }
    .await;
    finish(&state, result)
}

/// `POST /admin/users/{id}/tokens/{token}/revoke`: the token must be this user's.
async fn revoke_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path((id, token)): Path<(String, String)>,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let result = async {
        let caller = admin_post(&state, &headers, &uri, &form).await?;
        let refuse = refusal(&caller);
        let row = state.store().api_token_by_id(&token).await?;
        if row.is_none_or(|t| t.user_id != id) {
            return Err(refuse(WebError::not_found(
                "người dùng này không có mã truy cập API đó",
            )));
        }
        state
            .engine
            .revoke_api_token(&token, caller.user.actor(caller.channel.clone()))
            .await
            .map_err(|e| refuse(e.into()))?;
        saved(&state, &headers, &id, "revoke").await
    }
    .await;
    finish(&state, result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_come_from_fixed_codes_only() {
        assert!(saved_text("disable").is_some());
        assert_eq!(saved_text("<script>alert(1)</script>"), None);
    }

    #[test]
    fn roles_are_exactly_the_checked_ones_and_at_least_one() {
        let form = |v: &[&str]| {
            v.iter()
                .map(|r| ("role".to_string(), r.to_string()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            checked_roles(&form(&["admin", "member", "admin"])).unwrap(),
            vec![Role::Member, Role::Admin]
        );
        assert_eq!(checked_roles(&form(&[])).unwrap_err().status, StatusCode::BAD_REQUEST);
        assert!(checked_roles(&form(&["boss"])).is_err());
    }
}
