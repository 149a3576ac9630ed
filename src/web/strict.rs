//! What every response and request goes through besides the handlers:
//! security headers, form bodies that must be UTF-8, and Vietnamese pages
//! for refusals made below the handlers (no route, wrong method).

use super::{AppState, WebError, BODY_LIMIT};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{self, HeaderValue};
use axum::http::{StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// No script at all, styles only from our stylesheet, no framing, forms
/// post only here.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'none'; style-src 'self'; \
     img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Security headers on every response; `Cache-Control: no-store` unless
/// the handler chose its caching (the stylesheet, the calendar feeds), and
/// the pages' policy unless the handler chose a stricter one (a served
/// evidence file, `files::FILE_POLICY`).
pub async fn security_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    let set = |h: &mut axum::http::HeaderMap, name: header::HeaderName, value: &'static str| {
        h.insert(name, HeaderValue::from_static(value));
    };
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        set(h, header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY);
    }
    set(h, header::X_FRAME_OPTIONS, "DENY");
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::REFERRER_POLICY, "same-origin");
    if !h.contains_key(header::CACHE_CONTROL) {
        set(h, header::CACHE_CONTROL, "no-store");
    }
    response
}

/// A form body (`application/x-www-form-urlencoded`) of a page whose
/// decoded bytes are not UTF-8 is a 400: the form parser would store U+FFFD
/// instead. The API reads its bodies as bytes and checks them itself (a
/// plan posted with curl's default form type is TOML, not a form).
pub async fn utf8_forms(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let is_form = !request.uri().path().starts_with("/api/")
        && request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim_start().starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, BODY_LIMIT).await {
        Ok(b) => b,
        Err(_) => return StatusCode::PAYLOAD_TOO_LARGE.into_response(),
    };
    if let Err(field) = form_is_utf8(&bytes) {
        let e = WebError::bad_request(format!(
            "biểu mẫu có dữ liệu không phải UTF-8 (trường {field:?}); không ghi nhận gì"
        ));
        return super::pages::error_page(&state, e);
    }
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}

/// Whether every name and value of a urlencoded body decodes to UTF-8;
/// otherwise the (lossily shown) name of the first field that does not.
fn form_is_utf8(body: &[u8]) -> Result<(), String> {
    for pair in body.split(|b| *b == b'&') {
        let name = pair.split(|b| *b == b'=').next().unwrap_or_default();
        let decoded = percent_decode(pair);
        if std::str::from_utf8(&decoded).is_err() {
            return Err(String::from_utf8_lossy(&percent_decode(name)).into_owned());
        }
    }
    Ok(())
}

fn percent_decode(input: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < input.len() => match (hex(input[i + 1]), hex(input[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    out
}

/// No route here: a Vietnamese 404 (JSON under `/api/`).
pub async fn no_route(State(state): State<AppState>, uri: Uri) -> Response {
    refusal(&state, &uri, StatusCode::NOT_FOUND)
}

/// Refusals made below the handlers of the pages (no route, wrong method,
/// a body the extractor refused) come as plain text or empty: they become
/// the site's Vietnamese error page. `/api/` has `json_for_api_errors`.
pub async fn html_for_page_errors(State(state): State<AppState>, uri: Uri, response: Response) -> Response {
    let status = response.status();
    let typed = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let rendered = typed.is_some_and(|t| t.starts_with("text/html") || t.starts_with("application/json"));
    if uri.path().starts_with("/api/") || !(status.is_client_error() || status.is_server_error()) || rendered {
        return response;
    }
    let allow = response.headers().get(header::ALLOW).cloned();
    let mut page = refusal(&state, &uri, status);
    if let Some(allow) = allow {
        page.headers_mut().insert(header::ALLOW, allow);
    }
    page
}

fn refusal(state: &AppState, uri: &Uri, status: StatusCode) -> Response {
    let api = uri.path().starts_with("/api/") || uri.path() == "/api";
    let e = super::error::below_handlers(status, api);
    if api {
        e.into_response()
    } else {
        super::pages::error_page(state, e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_must_decode_to_utf8() {
        assert!(form_is_utf8(b"note=Ti%E1%BA%BFn+%C4%91%E1%BB%99&csrf=x").is_ok());
        assert!(form_is_utf8(b"note=100%25&a=%").is_ok());
        assert_eq!(form_is_utf8(b"csrf=x&note=%FF%FE"), Err("note".to_string()));
        assert!(form_is_utf8(b"note=\xff").is_err());
        assert!(form_is_utf8(b"n%C3=1").is_err());
    }
}
