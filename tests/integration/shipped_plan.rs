//! The shipped Đề án 13 plan: all 45 tasks, with the GUIDE's examples right.

use crate::helpers::*;
use kehoach::plan::PlanTask;

fn task<'a>(plan: &'a kehoach::plan::PlanDefinition, id: &str) -> &'a PlanTask {
    plan.tasks
        .iter()
        .find(|t| t.id.as_str() == id)
        .unwrap_or_else(|| panic!("task {id} missing"))
}

fn codes(list: &[kehoach::domain::ids::AgencyCode]) -> Vec<&str> {
    list.iter().map(|c| c.as_str()).collect()
}

fn dues(t: &PlanTask, prefix: &str) -> Vec<String> {
    t.milestones
        .iter()
        .filter(|m| m.id.as_str().starts_with(prefix))
        .map(|m| m.due.to_string())
        .collect()
}

#[test]
fn the_shipped_plan_has_all_45_tasks_with_the_contracted_ids() {
    let plan = shipped_plan();
    assert_eq!(plan.header.id.as_str(), "duc-pho-de-an-13");
    let mut expected: Vec<String> = vec!["II.1.1".into(), "II.1.2".into()];
    expected.extend((1..=11).map(|i| format!("II.2.1.{i}")));
    expected.extend((1..=3).map(|i| format!("II.2.2.1.{i}")));
    expected.extend((1..=2).map(|i| format!("II.2.2.2.{i}")));
    expected.extend((1..=4).map(|i| format!("II.2.2.3.{i}")));
    expected.extend((1..=6).map(|i| format!("III.1.{i}")));
    expected.extend((1..=3).map(|i| format!("III.2.1.{i}")));
    expected.extend((1..=4).map(|i| format!("III.2.2.{i}")));
    expected.extend((1..=4).map(|i| format!("III.2.3.{i}")));
    expected.extend((1..=6).map(|i| format!("IV.{i}")));
    let ids: Vec<String> = plan.tasks.iter().map(|t| t.id.to_string()).collect();
    assert_eq!(ids, expected);
    let codes: Vec<&str> = plan.agencies.iter().map(|a| a.code.as_str()).collect();
    for code in [
        "BTV", "BTG", "BDV", "UBKT", "TTHDND", "UBND", "VPTX", "TCNV", "TMGV", "MTTQ", "CTXH", "XHNN", "DUCB", "DUXP",
        "LLVT", "LQ",
    ] {
        assert!(codes.contains(&code), "agency {code} missing");
    }
    assert!(plan
        .agencies
        .iter()
        .all(|a| a.emails.iter().all(|e| e.ends_with("@ducpho.example"))));
}

#[test]
fn the_guide_examples_come_out_right() {
    let plan = shipped_plan();
    let t = task(&plan, "II.1.1");
    assert_eq!(t.definition.lead.as_str(), "BTV");
    assert_eq!(codes(&t.definition.advisory), ["BTG", "BDV"]);
    assert_eq!(codes(&t.definition.implementers), ["BTG", "BDV"]);
    assert_eq!(dues(t, ""), ["2023-01-31"]);

    let t = task(&plan, "II.1.2");
    assert_eq!(dues(t, ""), ["2023-03-31"]);
    assert_eq!(codes(&t.definition.advisory), ["BDV"]);
    assert_eq!(
        codes(&t.definition.implementers),
        ["TTHDND", "UBND", "MTTQ", "CTXH", "DUCB", "LLVT"]
    );

    let t = task(&plan, "III.1.2");
    assert_eq!(
        dues(t, "register-"),
        ["2023-03-31", "2024-03-31", "2025-03-31", "2026-03-31"]
    );
    assert_eq!(dues(t, "review-").len(), 4, "a yearly review each year");

    let t = task(&plan, "IV.5");
    assert_eq!(codes(&t.definition.implementers), ["BDV"]);
    assert_eq!(dues(t, "evaluation-").len(), 4);
    assert_eq!(dues(t, "five-year-review"), ["2026-12-31"]);

    // "Mặt trận Tổ quốc và các tổ chức chính trị - xã hội thị xã" is MTTQ and CTXH.
    let t = task(&plan, "IV.3");
    assert_eq!(codes(&t.definition.implementers), ["MTTQ", "CTXH"]);
    // Numbers in the text are KPI targets.
    let t = task(&plan, "II.2.2.3.4");
    let kpi = &t.definition.kpis[0];
    assert_eq!(kpi.baseline.map(|b| (b.value, b.year)), Some((2.5, 2021)));
    assert!(plan
        .tasks
        .iter()
        .all(|t| !t.definition.title.is_empty() && !t.definition.text.is_empty() && t.definition.source.line > 0));
}
