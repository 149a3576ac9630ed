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

/// Where canonical JSON goes: a string, or straight into a hash, so that
/// hashing an event allocates no copy of it.
trait Sink {
    fn put(&mut self, s: &str);
}

impl Sink for String {
    fn put(&mut self, s: &str) {
        self.push_str(s);
    }
}

impl Sink for Sha256 {
    fn put(&mut self, s: &str) {
        self.update(s.as_bytes());
    }
}

/// A JSON string: `"`, `\` and control characters escaped as serde_json and
/// Python's `json.dumps(ensure_ascii=False)` both escape them.
fn write_str(s: &str, out: &mut impl Sink) {
    out.put("\"");
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let escaped = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..=0x1f => "",
            _ => continue,
        };
        out.put(&s[start..i]);
        if escaped.is_empty() {
            out.put(&format!("\\u{b:04x}"));
        } else {
            out.put(escaped);
        }
        start = i + 1;
    }
    out.put(&s[start..]);
    out.put("\"");
}

fn write(v: &Value, out: &mut impl Sink) {
    match v {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.put("{");
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.put(",");
                }
                write_str(k, out);
                out.put(":");
                write(v, out);
            }
            out.put("}");
        }
        Value::Array(items) => {
            out.put("[");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.put(",");
                }
                write(item, out);
            }
            out.put("]");
        }
        Value::String(s) => write_str(s, out),
        Value::Number(n) => match n.as_f64().filter(|_| n.is_f64()) {
            Some(x) => out.put(&python_float(x)),
            None => out.put(&n.to_string()),
        },
        Value::Bool(b) => out.put(if *b { "true" } else { "false" }),
        Value::Null => out.put("null"),
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

/// What the hash of an event covers besides its payload and metadata.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    pub prev_hash: &'a str,
    pub aggregate_type: &'a str,
    pub aggregate_id: &'a str,
    pub sequence: i64,
    pub event_type: &'a str,
    pub event_version: &'a str,
}

impl Frame<'_> {
    /// The hash of the event with this payload and metadata.
    pub fn hash(&self, payload: &Value, metadata: &Value) -> String {
        self.hash_canonical(&canonical_json(payload), &canonical_json(metadata))
    }

    /// The same hash, from payload and metadata already in canonical JSON (as
    /// kehoach stores them): the array of the module comment is written
    /// straight into SHA-256, so hashing a stored event parses nothing.
    pub fn hash_canonical(&self, payload_json: &str, metadata_json: &str) -> String {
        let mut h = Sha256::new();
        h.put("[");
        for text in [VERSION_TAG, self.prev_hash, self.aggregate_type, self.aggregate_id] {
            write_str(text, &mut h);
            h.put(",");
        }
        h.put(&self.sequence.to_string());
        for text in [self.event_type, self.event_version] {
            h.put(",");
            write_str(text, &mut h);
        }
        for json in [payload_json, metadata_json] {
            h.put(",");
            h.put(json);
        }
        h.put("]");
        hex::encode(h.finalize())
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
    let frame = Frame {
        prev_hash,
        aggregate_type,
        aggregate_id,
        sequence,
        event_type,
        event_version,
    };
    frame.hash(payload, metadata)
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
    fn strings_are_escaped_as_serde_json_escapes_them() {
        let tricky = "a\"b\\c\n\r\t\u{8}\u{c}\u{1}\u{1f} Dân vận\u{7f}\u{2028}";
        let mut out = String::new();
        write_str(tricky, &mut out);
        assert_eq!(out, serde_json::to_string(tricky).unwrap());
    }

    #[test]
    fn the_streamed_hash_is_the_hash_of_the_canonical_array() {
        let payload = json!({"b": [1, 2.5, "x\n"], "a": {"z": null, "y": true}});
        let metadata = json!({"at": "2025-01-01T00:00:00Z"});
        let form = json!([VERSION_TAG, "abc", "Task", "p/II.1", 7, "E", "1", payload, metadata]);
        let expected = hex::encode(Sha256::digest(canonical_json(&form).as_bytes()));
        assert_eq!(
            event_hash("abc", "Task", "p/II.1", 7, "E", "1", &payload, &metadata),
            expected
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
