//! The way back from an error page: where the user was (the same-site page
//! of the `Referer`), else the page the failed request belongs to (the task
//! for a task action, the account for an account action), else the inbox.
//!
//! A middleware works it out from each request and keeps it for the
//! request's task, so every error page (rendered by a handler or by the
//! strict layer) links back without every handler passing headers along.

use axum::extract::Request;
use axum::http::{header, HeaderMap, Method, Uri};
use axum::middleware::Next;
use axum::response::Response;

tokio::task_local! {
    static BACK: String;
}

/// Where error pages send people when nothing better is known.
pub const INBOX: &str = "/inbox";

/// Middleware: works out the way back for this request and keeps it while
/// the request is handled.
pub async fn remember(req: Request, next: Next) -> Response {
    let back = way_back(req.method(), req.uri(), req.headers());
    BACK.scope(back, next.run(req)).await
}

/// The way back for the request being handled (the inbox outside one).
pub fn current() -> String {
    BACK.try_with(Clone::clone).unwrap_or_else(|_| INBOX.to_string())
}

/// The way back from a request: the page of the same site that sent it
/// (not the failing page itself), else the page it belongs to, else the inbox.
pub fn way_back(method: &Method, uri: &Uri, headers: &HeaderMap) -> String {
    let here = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    let is_get = method == Method::GET || method == Method::HEAD;
    referer_path(headers)
        .filter(|r| !(is_get && r == here))
        .unwrap_or_else(|| owner_page(uri.path(), is_get))
}

/// The `Referer`'s path and query when it names this site (its authority is
/// the request's `Host`) and is a safe local path.
fn referer_path(headers: &HeaderMap) -> Option<String> {
    let referer: Uri = headers.get(header::REFERER)?.to_str().ok()?.parse().ok()?;
    let host = headers.get(header::HOST)?.to_str().ok()?;
    if referer.authority()?.as_str() != host {
        return None;
    }
    let path = referer.path_and_query()?.as_str().to_string();
    super::pages::is_same_site_path(&path).then_some(path)
}

/// The page a failed request belongs to: a task's page for anything under
/// it, an account page, the admin page, a plan; the inbox otherwise (and
/// when the failed page is that page itself).
fn owner_page(path: &str, is_get: bool) -> String {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let owner = match segments.as_slice() {
        ["tasks", plan, task, ..] => format!("/tasks/{plan}/{task}"),
        ["admin", "users", id, ..] => format!("/admin/users/{id}"),
        ["admin", ..] => "/admin".to_string(),
        ["account", ..] => "/account".to_string(),
        ["plans", plan, ..] => format!("/plans/{plan}"),
        _ => INBOX.to_string(),
    };
    if (is_get && owner == path) || !super::pages::is_same_site_path(&owner) {
        INBOX.to_string()
    } else {
        owner
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(referer: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("kehoach.example:8080"));
        if let Some(r) = referer {
            h.insert(header::REFERER, HeaderValue::from_str(r).unwrap());
        }
        h
    }

    #[test]
    fn the_referring_page_of_this_site_comes_first() {
        let back = way_back(
            &Method::POST,
            &"/tasks/p/II.1/milestones/m/report".parse().unwrap(),
            &headers(Some("http://kehoach.example:8080/queue?plan=p&page=2")),
        );
        assert_eq!(back, "/queue?plan=p&page=2");
    }

    #[test]
    fn another_site_or_the_failing_page_itself_is_not_a_way_back() {
        for (method, uri, referer, expected) in [
            (
                Method::GET,
                "/tasks/p/II.9",
                Some("https://evil.example/inbox"),
                "/inbox",
            ),
            (
                Method::GET,
                "/tasks/p/II.9",
                Some("http://kehoach.example:8080/tasks/p/II.9"),
                "/inbox",
            ),
            (
                Method::POST,
                "/tasks/p/II.1/milestones/m/approve",
                None,
                "/tasks/p/II.1",
            ),
            (Method::POST, "/admin/users/u1/roles", None, "/admin/users/u1"),
            (Method::GET, "/admin/nothing", None, "/admin"),
            (Method::POST, "/account/totp", None, "/account"),
            (Method::GET, "/khong-co", None, "/inbox"),
            (Method::GET, "/plans/p/x", None, "/plans/p"),
        ] {
            let back = way_back(&method, &uri.parse().unwrap(), &headers(referer));
            assert_eq!(back, expected, "{method} {uri} from {referer:?}");
        }
    }
}
