//! One's own account: throttled sign-in (locks and their notice), the
//! second sign-in step (a TOTP code or a recovery code, or setting up
//! two-factor sign-in where it is required), "Quên mật khẩu", and the
//! "Tài khoản" page (sessions, sign out everywhere, two-factor set-up,
//! which personal notices to receive and the latest of them).

use super::auth::{self, Caller, Client, SESSION_COOKIE};
use super::pages::{
    anonymous_csrf_ok, anonymous_form, finish, redirect, render, safe_next, signed_in, start_session, Refusal,
};
use super::{AppState, WebError};
use crate::accounts::security::{Attempt, Scope, SessionStage};
use crate::accounts::store::session_id_hash;
use crate::accounts::{Email, Role, User};
use crate::domain::notices::NoticeKind;
use crate::engine::system_actor;
use crate::notification::personal;
use axum::extract::{Form, Path, Query, State};
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, Utc};
use serde_json::json;
use std::collections::HashMap;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/forgot", get(forgot_form).post(forgot))
        .route("/signin/code", get(code_form).post(code))
        .route("/account", get(account))
        .route("/account/totp", get(enrol_form).post(enrol))
        .route("/account/signout-everywhere", post(sign_out_everywhere))
        .route("/account/notices", post(save_notices))
        .route("/account/sessions/{id}/end", post(end_one_session))
}

/// The throttle's key for an e-mail as typed: normalised if it parses.
pub fn account_key(email: &str) -> String {
    Email::parse(email).map_or_else(|_| email.trim().to_lowercase(), |e| e.to_string())
}

/// The latest end of a lock on any of `keys` at `now`.
pub async fn locked(
    state: &AppState,
    keys: &[(Scope, &str)],
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, WebError> {
    let mut until = None;
    for (scope, key) in keys {
        until = until.max(state.store().locked_until(*scope, key, now).await?);
    }
    Ok(until)
}

/// "Try again after", in Vietnam time.
pub fn lock_message(until: DateTime<Utc>) -> String {
    let local = until.with_timezone(&chrono_tz::Asia::Ho_Chi_Minh);
    format!(
        "đăng nhập tạm bị khóa vì nhập sai quá nhiều lần; hãy thử lại sau {} (giờ Việt Nam)",
        local.format("%H:%M:%S ngày %d/%m/%Y")
    )
}

/// A 429 with `Retry-After`.
pub fn too_many(mut r: Response, until: DateTime<Utc>, state: &AppState) -> Response {
    *r.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    let secs = (until - state.engine.clock.now()).num_seconds().max(1);
    r.headers_mut()
        .insert("retry-after", HeaderValue::from_str(&secs.to_string()).expect("digits"));
    r
}

/// Notes an attempt on each of `keys` before its check. `Err` with the end
/// of the lock when one of them is over the limit: the attempt is refused
/// unchecked (and the key locked, if a concurrent attempt has not yet).
pub async fn begin_attempts(
    state: &AppState,
    keys: &[(Scope, &str)],
    now: DateTime<Utc>,
) -> Result<Result<Vec<(Attempt, String)>, DateTime<Utc>>, WebError> {
    let s = &state.security;
    let mut attempts = Vec::new();
    for (scope, key) in keys {
        attempts.push((state.store().begin_attempt(*scope, key, now, s).await?, key.to_string()));
    }
    let mut refused = None;
    for (attempt, key) in attempts.iter().filter(|(a, _)| a.count > s.max_failures) {
        refused = refused.max(lock_and_tell(state, attempt, key, now).await?);
    }
    Ok(refused.map_or(Ok(attempts), Err))
}

/// Locks `key` if `attempt` brought it to the limit. The call that takes
/// the lock logs it and, for a lock on an account (its e-mail or its
/// codes), records it and e-mails the holder. Returns the lock's end.
async fn lock_and_tell(
    state: &AppState,
    attempt: &Attempt,
    key: &str,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, WebError> {
    let Some(lock) = state.store().lock_if_over(attempt, key, now, &state.security).await? else {
        return Ok(None);
    };
    if lock.taken {
        tracing::warn!(scope = ?attempt.scope, key = %key, failures = lock.failures, until = %lock.until, "tạm khóa đăng nhập");
        let holder = match attempt.scope {
            Scope::Account => match Email::parse(key) {
                Ok(email) => state.store().user_by_email(&email).await?,
                Err(_) => None,
            },
            Scope::Code => state.store().enabled_user_by_id(key).await?,
            Scope::Address | Scope::Forgot => None,
        };
        if let Some(user) = holder {
            account_locked(state, &user, lock.until, lock.failures).await;
        }
    }
    Ok(Some(lock.until))
}

/// The attempts succeeded: they were no failures.
pub async fn forget_attempts(state: &AppState, attempts: &[(Attempt, String)]) -> Result<(), WebError> {
    for (attempt, _) in attempts {
        state.store().forget_attempt(attempt).await?;
    }
    Ok(())
}

/// The attempts failed (a wrong password or code): locks each key they
/// brought to the limit (`lock_and_tell`). Returns the lock's end, if
/// locked; otherwise holds the answer longer as the lock nears.
pub async fn count_failure(
    state: &AppState,
    attempts: &[(Attempt, String)],
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, WebError> {
    let s = &state.security;
    let mut locked = None;
    for (attempt, key) in attempts {
        locked = locked.max(lock_and_tell(state, attempt, key, now).await?);
    }
    if locked.is_none() {
        // Slower and slower as the lock comes closer.
        let failures = attempts.iter().map(|(a, _)| a.count).max().unwrap_or(0);
        tokio::time::sleep(slowing(failures, s.max_failures)).await;
    }
    Ok(locked)
}

/// How long to hold the answer to a wrong password after `failures` of the
/// `max` that lock: nothing for the first half, then a quarter of a second
/// more for each failure, at most two seconds.
pub fn slowing(failures: u32, max: u32) -> std::time::Duration {
    let over = failures.saturating_sub(max / 2);
    std::time::Duration::from_millis(u64::from(over.min(8)) * 250)
}

/// Records a lock on `user` and tells its holder by e-mail; failures are
/// logged, never in the way.
async fn account_locked(state: &AppState, user: &User, until: DateTime<Utc>, failures: u32) {
    if let Err(e) = state.engine.record_signin_lock(user, until, failures).await {
        tracing::error!(user = %user.id, error = %e, "không ghi được khóa đăng nhập vào lịch sử tài khoản");
    }
    let text = format!(
        "Kính gửi {},\n\nĐăng nhập vào tài khoản {} trên kehoach vừa bị tạm khóa sau {failures} lần nhập sai mật khẩu hoặc mã xác thực. \
         Có thể đăng nhập lại sau {}.\n\nNếu không phải quý vị nhập sai, có thể ai đó đang dò mật khẩu: hãy đặt mật khẩu mới \
         (\"Quên mật khẩu\" trên trang đăng nhập) và báo quản trị viên.\n\nThư này được gửi tự động từ kehoach. Vui lòng không trả lời thư này.",
        user.name,
        user.email,
        lock_message_time(until)
    );
    send_later(
        state,
        user.email.to_string(),
        "[kehoach] Đăng nhập tạm bị khóa".into(),
        text,
    );
}

fn lock_message_time(until: DateTime<Utc>) -> String {
    until
        .with_timezone(&chrono_tz::Asia::Ho_Chi_Minh)
        .format("%H:%M ngày %d/%m/%Y (giờ Việt Nam)")
        .to_string()
}

/// Sends account mail off the request's path.
fn send_later(state: &AppState, to: String, subject: String, text: String) {
    let Some(mailer) = state.mailer.clone() else {
        tracing::warn!(to = %to, subject = %subject, "chưa cấu hình gửi thư; không gửi được thư về tài khoản");
        return;
    };
    let now = state.engine.clock.now();
    tokio::spawn(async move {
        match mailer.send(&to, &subject, &text, now).await {
            Ok(()) => tracing::info!(to = %to, subject = %subject, "đã gửi thư về tài khoản"),
            Err(e) => tracing::error!(to = %to, error = %e, "không gửi được thư về tài khoản"),
        }
    });
}

/// After a right password (or a new one set by a link): a signed-in
/// session, or a half-way one that waits for the second factor.
pub async fn open_session(state: &AppState, user: &User, client: &Client, next: &str) -> Result<Response, WebError> {
    let (token, _) = state.store().start_session(user, state.engine.clock.now()).await?;
    after_first_factor(state, user, &token, client, next).await
}

/// Marks a just-opened session signed in, or half-way if `user` has or
/// needs two-factor sign-in; sets its cookie and goes on.
pub async fn after_first_factor(
    state: &AppState,
    user: &User,
    token: &str,
    client: &Client,
    next: &str,
) -> Result<Response, WebError> {
    let stage = if state.store().totp_secret(&user.id).await?.is_some() {
        SessionStage::AwaitingCode
    } else if user.needs_totp() {
        SessionStage::MustEnrol
    } else {
        SessionStage::SignedIn
    };
    state
        .store()
        .describe_session(token, &client.addr, &client.user_agent, stage)
        .await?;
    Ok(match stage {
        SessionStage::SignedIn => start_session(state, token, next),
        _ => start_session(
            state,
            token,
            &format!("/signin/code?next={}", super::pages::urlencode(next)),
        ),
    })
}

/// The half-way session of the request, or a refusal.
async fn half_way(state: &AppState, headers: &HeaderMap) -> Result<(Caller, SessionStage), Refusal> {
    match auth::session(state, headers).await? {
        Some((_, SessionStage::SignedIn)) => Err(Refusal::Redirect("/".into())),
        Some(pair) => Ok(pair),
        None => Err(Refusal::Redirect("/signin".into())),
    }
}

fn enrolment_ctx(user: &User, secret: &str, next: &str, action: &str, required: bool) -> serde_json::Value {
    let uri = crate::accounts::totp::uri(secret, user.email.as_str());
    json!({
        "title": "Thiết lập xác thực hai bước", "secret": secret,
        "qr": qr_data_uri(&uri),
        "uri": uri,
        "next": next, "action": action, "required": required,
    })
}

/// The otpauth address as a QR code: an SVG drawn here (the pages run no
/// script), as a `data:` image the CSP allows. None if the address is too
/// long for a QR code, which an otpauth address never is.
fn qr_data_uri(uri: &str) -> Option<String> {
    let code = qrcode::QrCode::with_error_correction_level(uri.as_bytes(), qrcode::EcLevel::M).ok()?;
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(220, 220)
        .quiet_zone(true)
        .build();
    Some(data_uri("image/svg+xml", svg.as_bytes()))
}

/// Bytes as a `data:` address (for a page that runs no script).
fn data_uri(media_type: &str, bytes: &[u8]) -> String {
    use base64::Engine as _;
    format!(
        "data:{media_type};base64,{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

/// The recovery codes as a text file to keep (a `data:` link with
/// `download`, since they are shown once and stored only hashed).
fn recovery_file(user: &User, codes: &[String]) -> String {
    let mut text = format!(
        "Mã khôi phục kehoach của {} ({})\r\nMỗi mã dùng được một lần khi không có ứng dụng xác thực.\r\n\r\n",
        user.name.as_str(),
        user.email
    );
    for c in codes {
        text.push_str(c);
        text.push_str("\r\n");
    }
    data_uri("text/plain;charset=utf-8", text.as_bytes())
}

/// The session cookie's value (the pages that use it are behind a session).
fn session_token(headers: &HeaderMap) -> String {
    auth::cookie(headers, SESSION_COOKIE).unwrap_or_default()
}

async fn code_form(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let next = safe_next(q.get("next"));
    let result = async {
        let (caller, stage) = half_way(&state, &headers).await?;
        Ok(code_page(&state, &headers, &caller, stage, &next, None).await?)
    }
    .await;
    finish(&state, result)
}

/// The second step's page of a half-way session (its CSRF token, no
/// navigation): set-up where required, else the code form; with `error`.
async fn code_page(
    state: &AppState,
    headers: &HeaderMap,
    caller: &Caller,
    stage: SessionStage,
    next: &str,
    error: Option<&str>,
) -> Result<Response, WebError> {
    let mut ctx = if stage == SessionStage::MustEnrol {
        let secret = state.store().pending_totp_secret(&session_token(headers)).await?;
        enrolment_ctx(&caller.user, &secret, next, "/signin/code", true)
    } else {
        json!({ "title": "Xác thực hai bước", "next": next })
    };
    if let Some(e) = error {
        ctx["error"] = json!(e);
    }
    ctx["csrf"] = json!(caller.csrf);
    Ok(render(state, "code.html", None, ctx))
}

async fn code(
    State(state): State<AppState>,
    client: Client,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let next = safe_next(form.get("next"));
    let result = async {
        let (caller, stage) = half_way(&state, &headers).await?;
        caller.check_csrf(form.get("csrf").map(String::as_str))?;
        let user = caller.user.clone();
        let now = state.engine.clock.now();
        let code = form.get("code").map(String::as_str).unwrap_or("").trim();
        let again = |error: String, status: StatusCode| -> Result<Response, Refusal> {
            Err(Refusal::Error(WebError::new(status, "second_factor", error), None))
        };
        if let Some(until) = locked(&state, &[(Scope::Code, &user.id), (Scope::Address, &client.addr)], now).await? {
            return Ok(too_many(
                finish(&state, again(lock_message(until), StatusCode::TOO_MANY_REQUESTS)),
                until,
                &state,
            ));
        }
        let attempts =
            match begin_attempts(&state, &[(Scope::Code, &user.id), (Scope::Address, &client.addr)], now).await? {
                Ok(attempts) => attempts,
                Err(until) => {
                    return Ok(too_many(
                        finish(&state, again(lock_message(until), StatusCode::TOO_MANY_REQUESTS)),
                        until,
                        &state,
                    ))
                }
            };
        let by = user.actor(caller.channel.clone());
        let (ok, codes) = match stage {
            SessionStage::MustEnrol => match state
                .engine
                .enable_totp(&user, &session_token(&headers), code, by)
                .await?
            {
                Some(codes) => (true, Some(codes)),
                None => (false, None),
            },
            _ => (
                state.engine.check_totp(&user, code).await? || state.engine.use_recovery_code(&user, code, by).await?,
                None,
            ),
        };
        if !ok {
            tracing::info!(user = %user.id, client = %client.addr, "mã xác thực hai bước sai");
            if let Some(until) = count_failure(&state, &attempts, now).await? {
                return Ok(too_many(
                    finish(&state, again(lock_message(until), StatusCode::TOO_MANY_REQUESTS)),
                    until,
                    &state,
                ));
            }
            let mut r = code_page(
                &state,
                &headers,
                &caller,
                stage,
                &next,
                Some("mã xác thực không đúng hoặc đã dùng"),
            )
            .await?;
            *r.status_mut() = StatusCode::UNAUTHORIZED;
            return Ok(r);
        }
        state.store().clear_failures(Scope::Code, &user.id).await?;
        forget_attempts(&state, &attempts).await?;
        // A new session id now that the session is fully signed in.
        if let Some(old) = auth::cookie(&headers, SESSION_COOKIE) {
            state.store().end_session(&old).await?;
        }
        let (token, _) = state.store().start_session(&user, now).await?;
        state
            .store()
            .describe_session(&token, &client.addr, &client.user_agent, SessionStage::SignedIn)
            .await?;
        let mut response = start_session(&state, &token, &next);
        if let Some(codes) = codes {
            let page = render(
                &state,
                "code.html",
                None,
                json!({ "title": "Mã khôi phục", "file": recovery_file(&user, &codes), "codes": codes, "next": next }),
            );
            let cookies: Vec<HeaderValue> = response.headers().get_all(SET_COOKIE).iter().cloned().collect();
            response = page;
            for c in cookies {
                response.headers_mut().append(SET_COOKIE, c);
            }
        }
        Ok(response)
    }
    .await;
    finish(&state, result)
}

async fn forgot_form(State(state): State<AppState>) -> Response {
    anonymous_form(&state, "forgot.html", json!({ "title": "Quên mật khẩu" }))
}

/// The same answer whatever the address: the look-up and the mail happen
/// after the answer, off the request's path.
async fn forgot(
    State(state): State<AppState>,
    client: Client,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if !anonymous_csrf_ok(&headers, &form) {
        let e = WebError::csrf();
        let mut r = anonymous_form(
            &state,
            "forgot.html",
            json!({ "title": "Quên mật khẩu", "error": e.message }),
        );
        *r.status_mut() = e.status;
        return r;
    }
    let now = state.engine.clock.now();
    let result = async {
        if let Some(until) = locked(&state, &[(Scope::Forgot, &client.addr)], now).await? {
            return Ok(Err(until));
        }
        // Per address, refused when over; per e-mail typed, silently: the
        // page answers the same, but no more links go to one account.
        let email = form.get("email").map(String::as_str).unwrap_or("");
        let per_email = format!("e-mail:{}", account_key(email));
        let attempts = match begin_attempts(&state, &[(Scope::Forgot, &client.addr)], now).await? {
            Ok(attempts) => attempts,
            Err(until) => return Ok(Err(until)),
        };
        let to_email = state
            .store()
            .begin_attempt(Scope::Forgot, &per_email, now, &state.security)
            .await?;
        for (attempt, key) in &attempts {
            state.store().lock_if_over(attempt, key, now, &state.security).await?;
        }
        Ok::<_, WebError>(Ok(to_email.count <= state.security.max_failures))
    }
    .await;
    let send = match result {
        Ok(Ok(send)) => send,
        Ok(Err(until)) => {
            let r = anonymous_form(
                &state,
                "forgot.html",
                json!({ "title": "Quên mật khẩu", "error": format!("quá nhiều yêu cầu từ địa chỉ này; hãy thử lại sau {}", lock_message_time(until)) }),
            );
            return too_many(r, until, &state);
        }
        Err(e) => return finish(&state, Err(Refusal::Error(e, None))),
    };
    if !send {
        tracing::warn!(client = %client.addr, "quên mật khẩu: quá nhiều yêu cầu cho e-mail này; không gửi thêm");
    } else if let Ok(email) = Email::parse(form.get("email").map(String::as_str).unwrap_or("")) {
        let state = state.clone();
        tokio::spawn(async move { send_reset_link(&state, &email).await });
    }
    render(
        &state,
        "forgot.html",
        None,
        json!({ "title": "Quên mật khẩu", "sent": true, "minutes": state.security.reset_link.num_minutes() }),
    )
}

async fn send_reset_link(state: &AppState, email: &Email) {
    let Ok(Some(_)) = state.store().user_by_email(email).await else {
        tracing::info!(email = %email, "quên mật khẩu: không có tài khoản đang hoạt động với e-mail này");
        return;
    };
    // Two requests at once write to the same account: the later write
    // loses the race for the next sequence number and is tried again.
    let mut issued = Err(crate::accounts::AccountError::UnknownUser(email.to_string()));
    for attempt in 0..5u64 {
        let by = system_actor("self-service");
        issued = state
            .engine
            .new_signin_link_for(email, by, state.security.reset_link)
            .await;
        if issued.is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50 * (attempt + 1))).await;
    }
    match issued {
        Ok((user, token)) => {
            let text = format!(
                "Kính gửi {},\n\nCó yêu cầu đặt lại mật khẩu cho tài khoản {} trên kehoach. Mở liên kết dưới đây để đặt mật khẩu mới \
                 (dùng được một lần, hết hạn sau {} phút):\n\n{}/signin/{token}\n\nĐặt mật khẩu mới sẽ kết thúc mọi phiên đăng nhập \
                 của tài khoản. Nếu quý vị không yêu cầu, hãy bỏ qua thư này.\n\nThư này được gửi tự động từ kehoach. Vui lòng không trả lời thư này.",
                user.name,
                user.email,
                state.security.reset_link.num_minutes(),
                state.base_url
            );
            send_later(state, user.email.to_string(), "[kehoach] Đặt lại mật khẩu".into(), text);
        }
        Err(e) => tracing::error!(email = %email, error = %e, "không tạo được liên kết đặt lại mật khẩu"),
    }
}

async fn account(State(state): State<AppState>, headers: HeaderMap, uri: Uri) -> Response {
    let result = async {
        let caller = signed_in(&state, &headers, &uri).await?;
        let notices = super::flash::take(&state, &headers).await.map_err(WebError::from)?;
        account_page(&state, &caller, &headers, notices.done.first().map(String::as_str))
            .await
            .map_err(Refusal::from)
    }
    .await;
    finish(&state, result)
}

async fn account_page(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    notice: Option<&str>,
) -> Result<Response, WebError> {
    let current = auth::cookie(headers, SESSION_COOKIE).map(|t| session_id_hash(&t));
    // Times are stored in UTC (RFC 3339); people read Vietnam time.
    let local = |t: &str| super::lists::shown_instant(t, chrono_tz::Asia::Ho_Chi_Minh);
    let sessions: Vec<_> = state
        .store()
        .sessions_of(&caller.user.id, state.engine.clock.now(), &state.security)
        .await?
        .into_iter()
        .map(|s| {
            let agent: String = s.user_agent.chars().take(60).collect();
            json!({ "id": s.id, "created_at": local(&s.created_at), "last_seen_at": local(&s.last_seen_at),
                    "client": s.client, "user_agent": agent, "current": current.as_deref() == Some(s.id.as_str()) })
        })
        .collect();
    let totp = state.store().totp_secret(&caller.user.id).await?.is_some();
    let off = personal::turned_off(state.store(), &caller.user.id).await?;
    let settings: Vec<_> = offered_kinds(&caller.user)
        .map(|k| json!({ "kind": k.as_str(), "label": k.label_vi(), "on": !off.contains(&k) }))
        .collect();
    let told: Vec<_> = personal::told(state.store(), &caller.user.id, 10)
        .await?
        .into_iter()
        .map(|t| {
            let status = match t.status.as_str() {
                "sent" => format!("đã gửi {}", t.sent_at.as_deref().map(local).unwrap_or_default()),
                "failed" => "không gửi được".to_string(),
                "cancelled" => "không gửi (tài khoản đã tắt loại thông báo này)".to_string(),
                _ if t.last_error.is_some() => "chưa gửi được, đang thử lại".to_string(),
                _ => "đang chờ gửi".to_string(),
            };
            let link = t
                .link
                .find("/tasks/")
                .map_or(t.link.clone(), |i| t.link[i..].to_string());
            let subject = t.subject.replacen("[kehoach] ", "", 1);
            json!({ "subject": subject, "link": link, "at": local(&t.created_at), "status": status })
        })
        .collect();
    let mut ctx = json!({ "title": "Tài khoản", "email": caller.user.email, "sessions": sessions, "totp": totp,
                          "settings": settings, "told": told });
    if let Some(n) = notice {
        ctx["notice"] = json!(n);
    }
    Ok(render(state, "account.html", Some(caller), ctx))
}

/// The kinds of personal notice an account may receive: submissions only
/// for supervisors.
fn offered_kinds(user: &User) -> impl Iterator<Item = NoticeKind> + '_ {
    NoticeKind::ALL
        .into_iter()
        .filter(|k| *k != NoticeKind::Submission || user.has(Role::Supervisor))
}

/// The account's personal-notice settings: each kind the page offered is
/// on when ticked, off when not; the others stay as they were.
async fn save_notices(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let result = async {
        let caller = auth::require(&state, &headers).await?;
        let csrf = form.iter().find(|(k, _)| k == "csrf").map(|(_, v)| v.as_str());
        caller.check_csrf(csrf)?;
        let ticked: Vec<NoticeKind> = form
            .iter()
            .filter(|(k, _)| k == "on")
            .filter_map(|(_, v)| NoticeKind::parse(v))
            .collect();
        let settings: Vec<(NoticeKind, bool)> = offered_kinds(&caller.user).map(|k| (k, ticked.contains(&k))).collect();
        personal::set_settings(state.store(), &caller.user.id, &settings).await?;
        super::flash::push(&state, &headers, super::flash::Kind::Done, "Đã lưu cài đặt thông báo.").await?;
        Ok::<_, WebError>(redirect("/account#notices"))
    }
    .await;
    finish(&state, result.map_err(Refusal::from))
}

async fn sign_out_everywhere(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    super::pages::signing_out(&state, &headers, &form, true).await
}

async fn end_one_session(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let result = async {
        let caller = auth::require(&state, &headers).await?;
        caller.check_csrf(form.get("csrf").map(String::as_str))?;
        if !state.store().end_session_by_id(&caller.user.id, &id).await? {
            return Err(WebError::new(
                StatusCode::NOT_FOUND,
                "unknown_session",
                "không có phiên đăng nhập này của tài khoản",
            ));
        }
        Ok(redirect("/account"))
    }
    .await;
    finish(&state, result.map_err(Refusal::from))
}

async fn enrol_form(State(state): State<AppState>, headers: HeaderMap, uri: Uri) -> Response {
    let result = async {
        let caller = signed_in(&state, &headers, &uri).await?;
        if state.store().totp_secret(&caller.user.id).await?.is_some() {
            return Err(Refusal::Redirect("/account".into()));
        }
        let secret = state.store().pending_totp_secret(&session_token(&headers)).await?;
        let ctx = enrolment_ctx(&caller.user, &secret, "/account", "/account/totp", false);
        Ok(render(&state, "code.html", Some(&caller), ctx))
    }
    .await;
    finish(&state, result)
}

async fn enrol(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let result = async {
        let caller = signed_in(&state, &headers, &uri).await?;
        caller.check_csrf(form.get("csrf").map(String::as_str))?;
        let code = form.get("code").map(String::as_str).unwrap_or("");
        let by = caller.user.actor(caller.channel.clone());
        match state.engine.enable_totp(&caller.user, &session_token(&headers), code, by).await? {
            Some(codes) => Ok(render(
                &state,
                "code.html",
                Some(&caller),
                json!({ "title": "Mã khôi phục", "file": recovery_file(&caller.user, &codes), "codes": codes, "next": "/account" }),
            )),
            None => Err(Refusal::Error(
                WebError::new(
                    StatusCode::BAD_REQUEST,
                    "bad_code",
                    "mã xác thực không đúng; hãy nhập mã đang hiện trong ứng dụng",
                ),
                Some(Box::new(caller)),
            )),
        }
    }
    .await;
    finish(&state, result)
}

impl From<crate::accounts::AccountError> for Refusal {
    fn from(e: crate::accounts::AccountError) -> Self {
        Self::Error(e.into(), None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_passwords_slow_down_before_the_lock() {
        assert_eq!(slowing(1, 10), std::time::Duration::ZERO);
        assert_eq!(slowing(5, 10), std::time::Duration::ZERO);
        assert_eq!(slowing(6, 10), std::time::Duration::from_millis(250));
        assert_eq!(slowing(9, 10), std::time::Duration::from_secs(1));
        assert_eq!(slowing(900, 1000), std::time::Duration::from_secs(2));
        assert_eq!(slowing(400, 1000), std::time::Duration::ZERO);
    }
}
