//! Idempotency keys. A write command (`--request-id`) or API action
//! (`Idempotency-Key`) that names a key is recorded with it, in the
//! transaction of its events (`repository::Batch::commit_with`), so that a
//! retry after an unclear failure is answered from the record instead of
//! writing twice. Keys are scoped by who asked.

use super::{Store, StoreError};
use crate::audit::canonical::canonical_json;
use crate::domain::task::Actor;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The longest key accepted.
pub const MAX_LEN: usize = 128;

/// A client's idempotency key: 1–128 characters among `A–Z a–z 0–9 - _ . :`
/// (a UUID, a ULID or `job-2024-03-20:7` all fit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(String);

#[derive(Debug, thiserror::Error)]
#[error("mã yêu cầu {0:?} không hợp lệ: cần 1–{MAX_LEN} ký tự trong A–Z, a–z, 0–9, '-', '_', '.', ':'")]
pub struct BadRequestId(String);

impl RequestId {
    pub fn parse(s: &str) -> Result<Self, BadRequestId> {
        let ok =
            !s.is_empty() && s.len() <= MAX_LEN && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
        if ok {
            Ok(Self(s.to_string()))
        } else {
            Err(BadRequestId(s.chars().take(40).collect()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A request that may be retried: the scope of its key (who asked), the
/// key, and the fingerprint of what it asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub scope: String,
    pub id: RequestId,
    pub fingerprint: String,
}

impl Request {
    /// `what` describes the request without its time (the task, the action
    /// and its fields; the plan file's hash): the same request retried has
    /// the same fingerprint.
    pub fn new(by: &Actor, id: RequestId, what: &Value) -> Self {
        Self {
            scope: scope(by),
            id,
            fingerprint: hex::encode(Sha256::digest(canonical_json(what).as_bytes())),
        }
    }
}

/// Keys are scoped by the acting account; the operator at a terminal (plan
/// loads, account commands) by operating-system user and host.
fn scope(by: &Actor) -> String {
    match by.account_id() {
        Some(account) => format!("account:{account}"),
        None => match by.to_json() {
            Value::Object(fields) => {
                let text = |k: &str| fields.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                if fields.contains_key("operator") {
                    format!("operator:{}@{}", text("operator"), text("host"))
                } else {
                    format!("system:{}", text("system"))
                }
            }
            _ => "unknown".to_string(),
        },
    }
}

/// What a recorded request asked and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub fingerprint: String,
    pub outcome: Value,
}

pub(crate) const INSERT_REQUEST: &str =
    "INSERT INTO requests (scope, request_id, fingerprint, outcome, recorded_at) VALUES ($1, $2, $3, $4, $5)";

const SELECT_REQUEST: &str = "SELECT fingerprint, outcome FROM requests WHERE scope = $1 AND request_id = $2";

impl Store {
    /// The record of a request with this scope and key, if one committed.
    pub async fn recorded_request(&self, request: &Request) -> Result<Option<Recorded>, StoreError> {
        let row: Option<(String, String)> = crate::with_pool!(self, pool => sqlx::query_as(SELECT_REQUEST)
            .bind(&request.scope)
            .bind(request.id.as_str())
            .fetch_optional(pool)
            .await
            .map_err(StoreError::query("đọc mã yêu cầu"))?);
        row.map(|(fingerprint, outcome)| {
            let outcome = serde_json::from_str(&outcome).map_err(|e| StoreError::Corrupt {
                context: format!("yêu cầu {}", request.id),
                reason: e.to_string(),
            })?;
            Ok(Recorded { fingerprint, outcome })
        })
        .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_short_and_plain() {
        for good in ["a", "3f2b9c1e-8d7a-4c55-9f0e-0c1d2e3f4a5b", "job-2024-03-20:7", "A.b_c"] {
            assert!(RequestId::parse(good).is_ok(), "{good}");
        }
        let long = "x".repeat(MAX_LEN + 1);
        for bad in ["", " a", "a b", "khóa", "a/b", long.as_str()] {
            assert!(RequestId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_fingerprint_ignores_key_order_and_scopes_differ() {
        let id = RequestId::parse("k1").unwrap();
        let by = Actor::operator("an", "may-1");
        let a = Request::new(&by, id.clone(), &serde_json::json!({"a": 1, "b": [1, 2]}));
        let b = Request::new(&by, id.clone(), &serde_json::json!({"b": [1, 2], "a": 1}));
        assert_eq!(a, b);
        let c = Request::new(&by, id.clone(), &serde_json::json!({"a": 2, "b": [1, 2]}));
        assert_ne!(a.fingerprint, c.fingerprint);
        let other = Request::new(&Actor::operator("binh", "may-1"), id, &serde_json::json!({}));
        assert_ne!(a.scope, other.scope);
        assert_eq!(a.scope, "operator:an@may-1");
    }
}
