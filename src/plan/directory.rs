//! The agency directory of a plan text, rewritten in place: the web's
//! directory page changes names, short names and addresses of agencies
//! already in the plan, and the plan file in force becomes the same text
//! with only those `[[agencies]]` keys changed (comments, order and every
//! task kept as written). The new text is then parsed and loaded like any
//! plan file, so the plan's own checks apply and the change is an
//! attributed amendment.

use crate::domain::plan::{Agency, Member};
use toml_edit::{value, Array, DocumentMut, InlineTable, Item, Value};

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
        table["name"] = value(a.name.as_str());
        match &a.short {
            Some(short) => table["short"] = value(short.as_str()),
            None => {
                table.remove("short");
            }
        }
        table["emails"] = value(strings(&a.emails));
        if a.members.is_empty() {
            table.remove("members");
        } else {
            let members: Array = a.members.iter().map(member).collect();
            table["members"] = value(members);
        }
    }
    Ok(doc.to_string())
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

[[agencies]]
code = "BDV"
name = "Ban Dân vận"
emails = ["bdv@example.vn"]

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
            out.contains("members = [{ name = \"Văn phòng\", emails = [\"vp@ubnd.example\"] }]"),
            "{out}"
        );
        assert!(
            out.contains("code = \"BDV\"\nname = \"Ban Dân vận\"\nemails = [\"bdv@example.vn\"]"),
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
