//! Who is asking: a browser session (an HTTP-only cookie, with a CSRF token
//! every form must carry) or an API token (`Authorization: Bearer kh_…`).

use super::{AppState, WebError};
use crate::accounts::security::SessionStage;
use crate::accounts::User;
use crate::domain::task::Channel;
use axum::http::header::{AUTHORIZATION, COOKIE};
use axum::http::{HeaderMap, HeaderValue};

pub const SESSION_COOKIE: &str = "kh_session";
/// The double-submit token of forms shown before signing in.
pub const FORM_COOKIE: &str = "kh_form";

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: User,
    /// How the caller came (session or token), as events record it.
    pub channel: Channel,
    /// The session's CSRF token; `None` for API tokens, which need none.
    pub csrf: Option<String>,
    /// What the pages' menu shows of the caller (filled for pages only).
    pub chrome: Chrome,
}

/// The caller's agency by name, and for a supervisor how many submissions
/// wait for a decision ("Chờ duyệt (n)").
#[derive(Debug, Clone, Default)]
pub struct Chrome {
    pub agency_name: Option<String>,
    pub waiting: Option<u64>,
}

pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
        .filter(|v| !v.is_empty())
}

/// A `Set-Cookie` value: HTTP-only, SameSite=Lax, Secure unless the server
/// is reached over plain HTTP on another host. `max_age` 0 deletes it.
pub fn set_cookie(state: &AppState, name: &str, value: &str, max_age: i64) -> HeaderValue {
    let secure = if state.secure_cookies { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}"
    ))
    .expect("cookie is ASCII")
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

/// The caller, if the request carries a valid session cookie or API token.
/// A token that is present but wrong is refused rather than ignored.
pub async fn caller(state: &AppState, headers: &HeaderMap) -> Result<Option<Caller>, WebError> {
    if let Some(token) = bearer(headers) {
        return match state.store().api_token_user(token).await? {
            Some((user, channel)) => Ok(Some(Caller {
                user,
                channel,
                csrf: None,
                chrome: Chrome::default(),
            })),
            None => Err(WebError::new(
                axum::http::StatusCode::UNAUTHORIZED,
                "bad_token",
                "mã truy cập API không hợp lệ hoặc đã bị thu hồi",
            )),
        };
    }
    Ok(match session(state, headers).await? {
        Some((caller, SessionStage::SignedIn)) => Some(caller),
        _ => None,
    })
}

/// The session of the request's cookie, signed in or half-way (waiting
/// for a second factor).
pub async fn session(state: &AppState, headers: &HeaderMap) -> Result<Option<(Caller, SessionStage)>, WebError> {
    let Some(token) = cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    Ok(state
        .store()
        .session(&token, state.engine.clock.now(), &state.security)
        .await?
        .map(|(user, csrf, channel, stage)| {
            (
                Caller {
                    user,
                    channel,
                    csrf: Some(csrf),
                    chrome: Chrome::default(),
                },
                stage,
            )
        }))
}

/// Where a request comes from: the TCP peer, or, when the peer is a
/// trusted proxy (`KEHOACH_TRUSTED_PROXIES`), the last address in
/// `X-Forwarded-For` that is not one; and its user agent.
#[derive(Debug, Clone)]
pub struct Client {
    pub addr: String,
    pub user_agent: String,
}

impl axum::extract::FromRequestParts<AppState> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip());
        let trusted = &state.security.trusted_proxies;
        let forwarded = || {
            parts
                .headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .filter_map(|a| a.trim().parse::<std::net::IpAddr>().ok())
                .rev()
                .find(|a| !trusted.contains(a))
        };
        let addr = match peer {
            Some(p) if trusted.contains(&p) => forwarded().unwrap_or(p),
            Some(p) => p,
            None => std::net::IpAddr::from([0, 0, 0, 0]),
        };
        let user_agent = parts
            .headers
            .get(axum::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        Ok(Self {
            addr: addr.to_string(),
            user_agent,
        })
    }
}

pub async fn require(state: &AppState, headers: &HeaderMap) -> Result<Caller, WebError> {
    caller(state, headers).await?.ok_or_else(WebError::unauthenticated)
}

/// Compares secrets in time independent of where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Caller {
    /// A state-changing request from a session must carry the session's
    /// CSRF token (form field or `X-CSRF-Token`); API tokens need none.
    pub fn check_csrf(&self, given: Option<&str>) -> Result<(), WebError> {
        match (&self.csrf, given) {
            (None, _) => Ok(()),
            (Some(expected), Some(given)) if same_secret(expected, given) => Ok(()),
            _ => Err(WebError::csrf()),
        }
    }
}

pub fn csrf_header(headers: &HeaderMap) -> Option<&str> {
    headers.get("x-csrf-token").and_then(|v| v.to_str().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_others() {
        let mut h = HeaderMap::new();
        h.append(COOKIE, HeaderValue::from_static("a=1; kh_session=abc; b=2"));
        assert_eq!(cookie(&h, SESSION_COOKIE).as_deref(), Some("abc"));
        assert_eq!(cookie(&h, "c"), None);
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "ab"));
    }
}
