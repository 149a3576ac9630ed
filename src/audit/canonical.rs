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
        Value::Number(n) => match n.as_f64().filter(|_| n.is_f64()) {
            Some(x) => out.push_str(&python_float(x)),
            None => out.push_str(&n.to_string()),
        },
        other => out.push_str(&other.to_string()),
    }
}

/// A float as Python's `repr` writes it (and so `json.dumps`): the shortest
/// digits that round-trip, positional when the decimal exponent is in
/// [-4, 16), else `d.ddde±XX` with at least two exponent digits.
fn python_float(x: f64) -> String {
    let sci = format!("{:e}", x.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let sign = if x.is_sign_negative() { "-" } else { "" };
    if (-4..16).contains(&exp) {
        let point = exp + 1;
        let body = if point <= 0 {
            format!("0.{}{digits}", "0".repeat((-point) as usize))
        } else if point as usize >= digits.len() {
            format!("{digits}{}.0", "0".repeat(point as usize - digits.len()))
        } else {
            format!("{}.{}", &digits[..point as usize], &digits[point as usize..])
        };
        format!("{sign}{body}")
    } else {
        let mantissa = if digits.len() > 1 {
            format!("{}.{}", &digits[..1], &digits[1..])
        } else {
            digits
        };
        format!("{sign}{mantissa}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs())
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
    fn floats_are_written_as_python_writes_them() {
        for (x, python) in [
            (0.5, "0.5"),
            (86.5, "86.5"),
            (1.0, "1.0"),
            (100.0, "100.0"),
            (-0.0, "-0.0"),
            (0.0001, "0.0001"),
            (5e-05, "5e-05"),
            (1.234e-07, "1.234e-07"),
            (1e-10, "1e-10"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (1.5e300, "1.5e+300"),
            (-2.5e-5, "-2.5e-05"),
            (0.1 + 0.2, "0.30000000000000004"),
        ] {
            assert_eq!(python_float(x), python, "{x}");
        }
        assert_eq!(canonical_json(&json!({"v": 5e-05, "n": 7})), r#"{"n":7,"v":5e-05}"#);
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
