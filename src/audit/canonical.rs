//! The canonical form of a stored event and its chained hash. Documented in
//! `docs/audit/canonical-form.md` so that anyone can verify an export
//! without trusting kehoach.
//!
//! hash = hex(SHA-256(canonical_json([
//!     "kehoach-event-v1", prev_hash, aggregate_type, aggregate_id, sequence,
//!     event_type, event_version, payload, metadata ])))
//!
//! `prev_hash` is the hash of the previous event of the same aggregate, or
//! "" for its first event. Canonical JSON: object keys sorted by their UTF-8
//! bytes, no whitespace, strings escaped as JSON requires (`"`, `\`, and
//! control characters; everything else as UTF-8), numbers as serde_json and
//! Python print them.

use serde_json::Value;
use sha2::{Digest, Sha256};

pub const VERSION_TAG: &str = "kehoach-event-v1";

/// Writes `v` in canonical JSON.
pub fn canonical_json(v: &Value) -> String {
    let mut out = String::new();
    write(v, &mut out);
    out
}

fn write(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String((*k).clone()).to_string());
                out.push(':');
                write(&map[k.as_str()], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// The hash of one stored event, chained to the previous one.
#[allow(clippy::too_many_arguments)]
pub fn event_hash(
    prev_hash: &str,
    aggregate_type: &str,
    aggregate_id: &str,
    sequence: i64,
    event_type: &str,
    event_version: &str,
    payload: &Value,
    metadata: &Value,
) -> String {
    let form = Value::Array(vec![
        Value::from(VERSION_TAG),
        Value::from(prev_hash),
        Value::from(aggregate_type),
        Value::from(aggregate_id),
        Value::from(sequence),
        Value::from(event_type),
        Value::from(event_version),
        payload.clone(),
        metadata.clone(),
    ]);
    hex::encode(Sha256::digest(canonical_json(&form).as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_are_sorted_and_text_is_kept_as_utf8() {
        let v = json!({ "b": 1, "a": { "z": [1.5, "Dân vận khéo \"x\"\n"], "ä": null, "B": true } });
        assert_eq!(
            canonical_json(&v),
            r#"{"a":{"B":true,"z":[1.5,"Dân vận khéo \"x\"\n"],"ä":null},"b":1}"#
        );
    }

    #[test]
    fn the_hash_depends_on_every_part_and_the_chain() {
        let h = |prev: &str, seq: i64, payload: Value| {
            event_hash(prev, "Task", "p/II.1.1", seq, "E", "1", &payload, &json!({"at": "t"}))
        };
        let first = h("", 1, json!({"x": 1}));
        assert_eq!(first.len(), 64);
        assert_ne!(first, h("", 1, json!({"x": 2})));
        assert_ne!(first, h("", 2, json!({"x": 1})));
        assert_ne!(h(&first, 2, json!({"x": 1})), h("", 2, json!({"x": 1})));
        // Key order in the stored text does not matter, only content.
        let a: Value = serde_json::from_str(r#"{"b":2,"a":1}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"a":1, "b":2}"#).unwrap();
        assert_eq!(h("", 1, a), h("", 1, b));
    }
}
