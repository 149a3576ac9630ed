use super::*;
use std::path::Path;

const SMALL: &str = r#"
[plan]
id = "thu-nghiem"
title = "Kế hoạch thử nghiệm"
issuer = "BTV"
period = { start = "2022-11-23", end = "2026-12-31" }

[defaults]
reporting_years = { first = 2023, last = 2026 }

[[agencies]]
code = "BTV"
name = "Ban Thường vụ Thị ủy"
emails = ["btv@ducpho.example"]

[[agencies]]
code = "BDV"
name = "Ban Dân vận Thị ủy"

[[agencies]]
code = "UBND"
name = "Ủy ban nhân dân thị xã"

[[tasks]]
id = "II.1.2"
title = "Tổ chức triển khai"
text = "Tổ chức triển khai và xây dựng kế hoạch thực hiện Đề án."
lead = "BTV"
advisory = ["BDV"]
implementers = ["UBND"]
source = { section = "II.1 — 1.2", line = 45 }
schedule = { kind = "quarter_end", quarter = 1, year = 2023 }

[[tasks]]
id = "III.1.2"
title = "Dân vận khéo"
text = "Xây dựng, nhân rộng ít nhất 01 mô hình “Dân vận khéo”/năm."
lead = "BTV"
advisory = ["BDV"]
implementers = ["UBND", "BDV"]
source = { section = "III.1.2", line = 190 }
milestones = [
  { kind = "yearly", due = "31/03", key = "register", title = "Đăng ký mô hình" },
  { kind = "yearly", key = "review", title = "Tổng kết" },
]

[[tasks.kpis]]
key = "mo-hinh"
label = "Mô hình “Dân vận khéo”"
comparator = "at_least"
value = 1
unit = "mô hình"
per_year = true
"#;

fn parse(text: &str) -> Result<PlanDefinition, Vec<Diagnostic>> {
    parse_str(Path::new("plan.toml"), text)
}

#[test]
fn a_valid_plan_expands_its_schedules() {
    let plan = parse(SMALL).unwrap();
    assert_eq!(plan.tasks.len(), 2);
    let q = &plan.tasks[0].milestones;
    assert_eq!(q.len(), 1);
    assert_eq!(q[0].id.as_str(), "complete");
    assert_eq!(q[0].due.to_string(), "2023-03-31");
    let yearly = &plan.tasks[1].milestones;
    let ids: Vec<_> = yearly.iter().map(|m| format!("{} {}", m.id, m.due)).collect();
    assert_eq!(ids.len(), 8);
    assert!(ids.contains(&"register-2023 2023-03-31".to_string()));
    assert!(ids.contains(&"register-2026 2026-03-31".to_string()));
    assert!(ids.contains(&"review-2024 2024-12-15".to_string()));
    assert_eq!(plan.tasks[1].definition.kpis[0].to_string(), "≥ 1 mô hình/năm");
}

#[test]
fn three_different_mistakes_give_three_positioned_errors() {
    let broken = SMALL
        .replace("implementers = [\"UBND\"]", "implementers = [\"UBNDX\"]")
        .replace("id = \"III.1.2\"", "id = \"II.1.2\"")
        .replace("due = \"31/03\"", "due = \"31/02\"");
    let errors = parse(&broken).unwrap_err();
    let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(errors.len(), 3, "{lines:#?}");
    assert!(
        lines[0].starts_with("plan.toml:30:17: mã cơ quan không có trong danh mục"),
        "{}",
        lines[0]
    );
    assert!(lines[0].contains("\"UBNDX\""));
    assert!(
        lines.iter().any(|l| l.contains("ngày không tồn tại: \"31/02\"")),
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("mã nhiệm vụ II.1.2 lặp lại") && l.contains("dòng 25")),
        "{lines:#?}"
    );
}

#[test]
fn dates_outside_the_period_and_unknown_kinds_are_reported() {
    let broken = SMALL
        .replace("quarter = 1, year = 2023", "quarter = 1, year = 2028")
        .replace(
            "kind = \"yearly\", key = \"review\"",
            "kind = \"weekly\", key = \"review\"",
        );
    let lines: Vec<String> = parse(&broken).unwrap_err().iter().map(ToString::to_string).collect();
    assert_eq!(lines.len(), 2, "{lines:#?}");
    assert!(lines.iter().any(|l| l.contains("31/03/2028 nằm ngoài thời kỳ")));
    assert!(lines
        .iter()
        .any(|l| l.contains("loại lịch không có: \"weekly\"") && l.contains("gợi ý: dùng một trong")));
}

#[test]
fn duplicate_agencies_and_malformed_toml() {
    let dup = SMALL.replace("code = \"BDV\"", "code = \"BTV\"");
    let lines: Vec<String> = parse(&dup).unwrap_err().iter().map(ToString::to_string).collect();
    assert!(
        lines[0].contains("mã cơ quan BTV khai báo hai lần") && lines[0].contains("dòng 12"),
        "{lines:#?}"
    );

    let bad = parse("[plan]\nid = \"x\"\ntitle = \n").unwrap_err();
    assert_eq!(bad.len(), 1);
    assert!(bad[0].to_string().starts_with("plan.toml:3:"), "{}", bad[0]);

    let unknown_key = parse(&SMALL.replace("text = \"Tổ chức", "txt = \"Tổ chức")).unwrap_err();
    assert!(unknown_key[0].to_string().contains("txt"), "{}", unknown_key[0]);
}

#[test]
fn reminder_policy_and_calendar_are_read_and_checked() {
    let with = format!(
        "{SMALL}\n[reminders]\nbefore_days = [10, 1]\nsend_at = \"0 30 7 * * Mon-Fri\"\noverdue_every_days = 3\n\n[calendar]\nholidays = [{{ date = \"2024-04-18\", name = \"Giỗ Tổ Hùng Vương\" }}]\nworkdays = [{{ date = \"2024-05-04\", name = \"Làm bù\" }}]\n"
    );
    let plan = parse(&with).unwrap();
    let policy = &plan.header.reminders;
    assert_eq!(policy.before_days, [10, 1]);
    assert_eq!(policy.send_at, "0 30 7 * * Mon-Fri");
    assert_eq!((policy.overdue_every_days, policy.escalate_after_days), (3, 7));
    let d = |s: &str| s.parse::<chrono::NaiveDate>().unwrap();
    assert!(!plan.header.calendar.is_working_day(d("2024-04-18")));
    assert!(plan.header.calendar.is_working_day(d("2024-05-04")));

    let bad = with
        .replace("0 30 7 * * Mon-Fri", "every morning")
        .replace("before_days = [10, 1]", "before_days = [10, -1]");
    let lines: Vec<String> = parse(&bad).unwrap_err().iter().map(ToString::to_string).collect();
    assert_eq!(lines.len(), 2, "{lines:#?}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("biểu thức cron không hợp lệ \"every morning\"")),
        "{lines:#?}"
    );
    assert!(lines.iter().any(|l| l.contains("before_days: -1")), "{lines:#?}");
}

#[test]
fn a_task_can_override_the_reminder_policy() {
    let with = SMALL.replace(
        "schedule = { kind = \"quarter_end\", quarter = 1, year = 2023 }",
        "schedule = { kind = \"quarter_end\", quarter = 1, year = 2023 }\nreminders = { before_days = [30], escalate_after_days = 0 }",
    );
    let plan = parse(&with).unwrap();
    let o = plan.tasks[0].definition.reminders.as_ref().unwrap();
    let policy = plan.header.reminders.with(Some(o));
    assert_eq!(
        (
            policy.before_days,
            policy.escalate_after_days,
            policy.overdue_every_days
        ),
        (vec![30], 0, 7)
    );
}

#[test]
fn extensions_may_go_past_the_period_only_where_the_plan_says() {
    let plain = parse(SMALL).unwrap();
    assert_eq!(plain.header.extend_until, None);
    assert_eq!(plain.header.latest_extension().to_string(), "2026-12-31");
    let longer = SMALL.replace(
        r#"end = "2026-12-31" }"#,
        r#"end = "2026-12-31", extend_until = "2027-06-30" }"#,
    );
    let plan = parse(&longer).unwrap();
    assert_eq!(plan.header.latest_extension().to_string(), "2027-06-30");
    let earlier = SMALL.replace(
        r#"end = "2026-12-31" }"#,
        r#"end = "2026-12-31", extend_until = "2026-01-01" }"#,
    );
    let diags = parse(&earlier).unwrap_err();
    assert!(
        diags[0].to_string().contains("extend_until trước ngày kết thúc"),
        "{}",
        diags[0]
    );
}

#[test]
fn oversized_plan_text_is_refused_unparsed() {
    let big = format!("{SMALL}\n{}", "x".repeat(PLAN_MAX_BYTES as usize));
    let diags = parse_bounded(Path::new("lon.toml"), &big).unwrap_err();
    assert_eq!(diags.len(), 1);
    assert!(
        diags[0].to_string().starts_with("lon.toml:0:0: tệp kế hoạch quá lớn"),
        "{}",
        diags[0]
    );
}
