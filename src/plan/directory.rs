//! The agency directory of a plan text, rewritten in place: the web's
//! directory page changes names, short names and addresses of agencies
//! already in the plan, and the plan file in force becomes the same text
//! with only those `[[agencies]]` keys changed (comments, order and every
//! task kept as written). The new text is then parsed and loaded like any
//! plan file, so the plan's own checks apply and the change is an
//! attributed amendment.

use crate::domain::plan::{Agency, Member};
use toml_edit::{Array, DocumentMut, InlineTable, Item, Value};

/// Why a plan text's directory could not be rewritten.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DirectoryEditError {
    #[error("tệp kế hoạch đang có hiệu lực không đọc được ({0}); hãy nạp lại tệp kế hoạch")]
    Unreadable(String),
    #[error("tệp kế hoạch không có danh sách [[agencies]]")]
    NoDirectory,
}

/// `text` with each agency of `agencies` (matched by code) given that
/// name, short name, addresses and members; agencies not in `agencies`
/// are left as they are.
pub fn with_agencies(text: &str, agencies: &[Agency]) -> Result<String, DirectoryEditError> {
    let mut doc: DocumentMut = text
        .parse()
        .map_err(|e: toml_edit::TomlError| DirectoryEditError::Unreadable(e.message().to_string()))?;
    let tables = doc
        .get_mut("agencies")
        .and_then(Item::as_array_of_tables_mut)
        .ok_or(DirectoryEditError::NoDirectory)?;
    for table in tables.iter_mut() {
        let code = table.get("code").and_then(Item::as_str).map(str::to_string);
        let Some(a) = code.and_then(|c| agencies.iter().find(|a| a.code.as_str() == c)) else {
            continue;
        };
        // Only keys whose value changes are written, each keeping the
        // comment and spacing around it.
        set(table, "name", Some(Value::from(a.name.as_str())));
        set(table, "short", a.short.as_deref().map(Value::from));
        set(table, "emails", Some(Value::Array(strings(&a.emails))));
        let members: Array = a.members.iter().map(member).collect();
        set(
            table,
            "members",
            (!a.members.is_empty()).then_some(Value::Array(members)),
        );
    }
    Ok(doc.to_string())
}

/// Sets `key` to `new` (removes it for None) unless it already holds that
/// value; a replaced value keeps the old one's decor (its comment).
fn set(table: &mut toml_edit::Table, key: &str, new: Option<Value>) {
    let old = table.get(key);
    let same = match (old, &new) {
        (None, None) => true,
        (Some(item), Some(v)) => plain(item).as_ref() == Some(&plain_value(v)),
        _ => false,
    };
    if same {
        return;
    }
    match new {
        None => {
            table.remove(key);
        }
        Some(mut v) => {
            if let Some(decor) = old.and_then(Item::as_value).map(|o| o.decor().clone()) {
                *v.decor_mut() = decor;
            }
            table[key] = Item::Value(v);
        }
    }
}

/// A value as plain data, to compare without formatting: an inline array
/// of tables and an array of tables (`[[agencies.members]]`) alike.
fn plain(item: &Item) -> Option<serde_json::Value> {
    match item {
        Item::Value(v) => Some(plain_value(v)),
        Item::ArrayOfTables(tables) => Some(serde_json::Value::Array(
            tables
                .iter()
                .map(|t| {
                    serde_json::Value::Object(
                        t.iter()
                            .filter_map(|(k, i)| plain(i).map(|v| (k.to_string(), v)))
                            .collect(),
                    )
                })
                .collect(),
        )),
        _ => None,
    }
}

fn plain_value(v: &Value) -> serde_json::Value {
    match v {
        Value::String(s) => serde_json::Value::String(s.value().clone()),
        Value::Array(a) => serde_json::Value::Array(a.iter().map(plain_value).collect()),
        Value::InlineTable(t) => {
            serde_json::Value::Object(t.iter().map(|(k, v)| (k.to_string(), plain_value(v))).collect())
        }
        other => serde_json::Value::String(other.to_string().trim().to_string()),
    }
}

fn strings(items: &[String]) -> Array {
    items.iter().map(String::as_str).collect()
}

fn member(m: &Member) -> Value {
    let mut t = InlineTable::new();
    t.insert("name", m.name.as_str().into());
    t.insert("emails", Value::Array(strings(&m.emails)));
    Value::InlineTable(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# Kế hoạch thử
[plan]
id = "thu"

# Danh bạ
[[agencies]]
code = "UBND"
name = "Ủy ban nhân dân"
emails = ["cu@ubnd.example"] # địa chỉ cũ
members = [
    { name = "Văn phòng", emails = ["vp@ubnd.example"] }, # giữ nguyên
]

[[agencies]]
code = "BDV"
name = "Ban Dân vận"
emails = ["bdv@example.vn"] # của Ban

[[tasks]]
id = "I.1"
"#;

    fn ubnd(emails: &[&str], members: &[(&str, &[&str])]) -> Agency {
        Agency {
            code: crate::domain::ids::AgencyCode::parse("UBND").unwrap(),
            name: "Ủy ban nhân dân thị xã".into(),
            short: Some("UBND thị xã".into()),
            aliases: vec![],
            emails: emails.iter().map(|e| e.to_string()).collect(),
            members: members
                .iter()
                .map(|(n, e)| Member {
                    name: n.to_string(),
                    emails: e.iter().map(|x| x.to_string()).collect(),
                })
                .collect(),
        }
    }

    #[test]
    fn only_the_agency_changes_and_comments_stay() {
        let out = with_agencies(
            TEXT,
            &[ubnd(&["moi@ubnd.example"], &[("Văn phòng", &["vp@ubnd.example"])])],
        )
        .unwrap();
        assert!(
            out.starts_with("# Kế hoạch thử\n[plan]\nid = \"thu\"\n\n# Danh bạ\n"),
            "{out}"
        );
        assert!(out.contains("name = \"Ủy ban nhân dân thị xã\""), "{out}");
        assert!(out.contains("short = \"UBND thị xã\""), "{out}");
        assert!(
            out.contains("\"moi@ubnd.example\"") && !out.contains("cu@ubnd.example"),
            "{out}"
        );
        assert!(
            out.contains("emails = [\"moi@ubnd.example\"] # địa chỉ cũ"),
            "a changed value keeps its comment: {out}"
        );
        assert!(
            out.contains("}, # giữ nguyên\n]"),
            "unchanged members stay as written: {out}"
        );
        assert!(
            out.contains("code = \"BDV\"\nname = \"Ban Dân vận\"\nemails = [\"bdv@example.vn\"] # của Ban"),
            "{out}"
        );
        // New members are written as one inline array.
        let out = with_agencies(
            TEXT,
            &[ubnd(&["moi@ubnd.example"], &[("Tổ thư ký", &["tk@ubnd.example"])])],
        )
        .unwrap();
        assert!(
            out.contains("{ name = \"Tổ thư ký\", emails = [\"tk@ubnd.example\"] }"),
            "{out}"
        );
        assert!(out.ends_with("[[tasks]]\nid = \"I.1\"\n"), "{out}");
    }

    #[test]
    fn a_text_without_a_directory_is_refused() {
        assert_eq!(with_agencies("[plan]\n", &[]), Err(DirectoryEditError::NoDirectory));
        assert!(matches!(
            with_agencies("[plan", &[]),
            Err(DirectoryEditError::Unreadable(_))
        ));
    }
}
