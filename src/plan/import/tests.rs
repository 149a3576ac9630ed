//! The importer on the shipped plan's own document.

use super::*;

fn shipped() -> Draft {
    let bytes = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/import/duc-pho/plan.txt"
    ))
    .unwrap();
    import("ke-hoach-de-an-13-duc-pho.txt", &bytes, &[]).unwrap()
}

#[test]
fn the_shipped_document_gives_its_45_tasks() {
    let d = shipped();
    let ids: Vec<&str> = d.tasks.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids.len(), 45, "{ids:?}");
    assert_eq!(ids[0], "II.1.1");
    assert!(
        ids.contains(&"II.2.1.11") && ids.contains(&"III.2.3.4") && ids.contains(&"IV.6"),
        "{ids:?}"
    );
}

#[test]
fn the_draft_is_a_valid_plan_file() {
    let d = shipped();
    let toml = d.to_toml();
    match crate::plan::parse_str(std::path::Path::new("draft.toml"), &toml) {
        Ok(plan) => assert_eq!(plan.tasks.len(), 45),
        Err(e) => panic!(
            "{}\n{}",
            e.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("\n"),
            toml
        ),
    }
}
