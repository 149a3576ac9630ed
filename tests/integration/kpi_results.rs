//! KPI judgements an inspector can sign (issue 22, item 2), on both
//! databases: II.2.1.4's "giảm bình quân hằng năm từ 0,4 – 0,6%" is a floor
//! (higher is better), so 0,8 % approved is "đạt"; a value that is only
//! submitted or was returned is shown as such in the review report, never as
//! the year's result; several agencies' counts on III.1.2 are listed each,
//! with the sum of the approved ones.

use crate::helpers::*;
use crate::on_both_stores;

fn run(db: &TestDb, args: &[&str]) -> String {
    let out = kehoach(db, args);
    assert!(out.status.success(), "{args:?}: {}{}", stdout(&out), stderr(&out));
    stdout(&out)
}

fn review_2024(db: &TestDb, now: &str) -> String {
    review_report(db, now, "2024")
}

/// The report's KPI row of `task` whose label starts with `label`, from its
/// cell to the end of the row.
fn kpi_row<'a>(html: &'a str, task: &str, label: &str) -> &'a str {
    let start = html
        .find(&format!("<b>{task}</b> — {label}"))
        .unwrap_or_else(|| panic!("no KPI row {task} {label}"));
    let rest = &html[start..];
    &rest[..rest.find("</tr>").unwrap()]
}

async fn only_approved_values_are_results(kind: &str) {
    let db = TestDb::of(kind).await;
    run(
        &db,
        &["--now", "2024-02-01", "plan", "load", "workflows/duc-pho-de-an-13.toml"],
    );
    let ubnd = cli_user(&db, "UBND", "Nguyễn Văn Ủy", "member");
    let mttq = cli_user(&db, "MTTQ", "Hồ Thị Mặt", "member");
    let tmgv = cli_user(&db, "TMGV", "Đỗ Văn Giám", "member");
    let btv = cli_user(&db, "BTV", "Lê Văn Thường", "supervisor");
    let act = |at: &str, action: &str, target: &[&str], extra: &[&str]| {
        run(&db, &[&["--now", at, "task", action][..], target, extra].concat());
    };
    const POVERTY: &str = "Tỷ lệ hộ nghèo toàn thị xã giảm bình quân hằng năm";
    let poverty = ["II.2.1.4", "--milestone", "report-2024"];

    // UBND reports 0,8 % and submits: awaiting approval, not a result yet.
    act(
        "2024-12-01T09:00:00+07:00",
        "report",
        &poverty,
        &["--user", &ubnd, "--kpi", "ty-le-ho-ngheo-giam=0,8"],
    );
    act("2024-12-01T09:10:00+07:00", "submit", &poverty, &["--user", &ubnd]);
    let html = review_2024(&db, "2024-12-02");
    let row = kpi_row(&html, "II.2.1.4", POVERTY);
    assert!(row.contains("<b>0,8%</b>"), "{row}");
    assert!(row.contains("chờ duyệt"), "{row}");
    assert!(
        !row.contains("class=\"met\"") && !row.contains("class=\"unmet\""),
        "{row}"
    );

    // Approved: 0,8 % meets a floor written as a range.
    act(
        "2024-12-02T09:00:00+07:00",
        "approve",
        &poverty,
        &["--user", &btv, "--agency", "UBND"],
    );
    let html = review_2024(&db, "2024-12-03");
    let row = kpi_row(&html, "II.2.1.4", POVERTY);
    assert!(row.contains("<b>0,8%</b> — <span class=\"met\">đạt</span>"), "{row}");
    assert!(
        !row.contains("0.8%") && !row.contains("0.4–0.6"),
        "Vietnamese numbers: {row}"
    );

    // III.1.2: MTTQ's 2 models are returned, TMGV's 3 approved.
    const MODELS: &str = "Mô hình “Dân vận khéo” được xây dựng, nhân rộng";
    let review = ["III.1.2", "--milestone", "review-2024"];
    act(
        "2024-12-05T09:00:00+07:00",
        "report",
        &review,
        &["--user", &mttq, "--kpi", "mo-hinh-dan-van-kheo=2"],
    );
    act("2024-12-05T09:10:00+07:00", "submit", &review, &["--user", &mttq]);
    act(
        "2024-12-05T10:00:00+07:00",
        "return",
        &review,
        &[
            "--user",
            &btv,
            "--agency",
            "MTTQ",
            "--reason",
            "Chưa có quyết định công nhận mô hình",
        ],
    );
    act(
        "2024-12-06T09:00:00+07:00",
        "report",
        &review,
        &["--user", &tmgv, "--kpi", "mo-hinh-dan-van-kheo=3"],
    );
    act("2024-12-06T09:10:00+07:00", "submit", &review, &["--user", &tmgv]);
    act(
        "2024-12-06T10:00:00+07:00",
        "approve",
        &review,
        &["--user", &btv, "--agency", "TMGV"],
    );
    let html = review_2024(&db, "2024-12-07");
    let row = kpi_row(&html, "III.1.2", MODELS);
    let mttq_part = row
        .split("<li>")
        .find(|li| li.contains("Mặt trận Tổ quốc"))
        .unwrap_or_else(|| panic!("MTTQ's value by name: {row}"));
    assert!(
        mttq_part.contains("<b>2 mô hình</b>") && mttq_part.contains("bị trả lại"),
        "{mttq_part}"
    );
    assert!(
        !mttq_part.contains("class=\"met\""),
        "a returned value is no result: {mttq_part}"
    );
    let tmgv_part = row
        .split("<li>")
        .find(|li| li.contains("<b>3 mô hình</b>"))
        .unwrap_or_else(|| panic!("TMGV's value: {row}"));
    assert!(tmgv_part.contains("class=\"met\">đạt"), "{tmgv_part}");
    assert!(
        row.contains("Tổng đã duyệt: <b>3 mô hình</b>"),
        "the sum counts approved values only: {row}"
    );
}
on_both_stores!(kpi_results, only_approved_values_are_results);
