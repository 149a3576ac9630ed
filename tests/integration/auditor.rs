//! The auditor's desk: the export with the independent verifier, the
//! integrity check in the background, a task's history as CSV and Excel,
//! the review report, and as-of views before the record begins.

use crate::helpers::{act, mid};
use crate::on_both_stores;
use crate::web::App;
use kehoach::domain::ids::AgencyCode;
use kehoach::domain::task::TaskAction;

const PLAN: &str = "duc-pho-de-an-13";

async fn desk_without_a_shell(kind: &str) {
    let app = App::shipped(kind, "2024-03-10").await;
    // Something to audit: a submission and a checkpoint.
    let submit = TaskAction::Submit {
        milestone: mid("register-2024"),
        agency: Some(AgencyCode::parse("UBND").unwrap()),
        note: "Đã đăng ký".into(),
        attachments: vec![],
    };
    act(&app.engine, "III.1.2", "UBND", "Trần Văn Ủy", submit)
        .await
        .unwrap();
    app.engine.checkpoint().await.unwrap();

    let auditor = app.user("UBKT", "Phạm Thanh Tra", "auditor").await;
    let (cookie, csrf) = app.session(&auditor).await;
    let member = app.user("UBND", "Trần Văn Ủy", "member").await;
    let (member_cookie, member_csrf) = app.session(&member).await;

    // Auditors only.
    for path in [
        "/audit",
        "/audit/export",
        "/audit/verify",
        "/audit/verify.py",
        "/audit/review",
    ] {
        assert_eq!(app.page(path, &member_cookie).await.status, 403, "{path}");
    }
    let r = app
        .form("/audit/verify", &member_cookie, &[("csrf", &member_csrf)])
        .await;
    assert_eq!(r.status, 403);
    let desk = app.page("/audit", &cookie).await;
    assert_eq!(desk.status, 200, "{}", desk.body);
    for shown in [
        "Kiểm tra toàn vẹn",
        "/audit/export",
        "/audit/verify.py",
        "/audit/history",
        "Ngày xem",
        "/audit/review?year=2024",
    ] {
        assert!(desk.body.contains(shown), "{shown:?} missing");
    }
    assert!(desk.body.contains("href=\"/audit\""), "the menu leads to the desk");

    // The export, checked by the independent verifier on the auditor's side.
    let export = app.page("/audit/export", &cookie).await;
    assert_eq!(export.status, 200);
    assert!(export
        .header("content-disposition")
        .unwrap()
        .contains("kehoach-export-"));
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("export.jsonl");
    std::fs::write(&file, &export.bytes).unwrap();
    let verifier = app.page("/audit/verify.py", &cookie).await;
    assert_eq!(verifier.status, 200);
    let script = work.path().join("verify.py");
    std::fs::write(&script, &verifier.bytes).unwrap();

    // The integrity check runs in the background and shows the root.
    let r = app.form("/audit/verify", &cookie, &[("csrf", &csrf)]).await;
    assert_eq!((r.status, r.header("location")), (303, Some("/audit/verify")));
    let mut page = app.page("/audit/verify", &cookie).await;
    for _ in 0..200 {
        if !page.body.contains("id=\"check-running\"") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        page = app.page("/audit/verify", &cookie).await;
    }
    assert!(
        page.body.contains("id=\"check-result\"") && page.body.contains("Hợp lệ:"),
        "{}",
        page.body
    );
    let root = between(&page.body, "<code class=\"root\" id=\"check-root\">", "</code>");
    assert_eq!(root.len(), 64, "{root}");
    assert!(page.body.contains("python3 verify.py kehoach-export-"), "the command");
    let out = std::process::Command::new("python3")
        .arg(&script)
        .arg(&file)
        .args(["--root", &root])
        .output()
        .unwrap();
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).starts_with("OK"),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // A task's whole history, as CSV and as Excel.
    let csv = app
        .page(&format!("/audit/history?plan={PLAN}&task=III.1.2&format=csv"), &cookie)
        .await;
    assert_eq!(csv.status, 200, "{}", csv.body);
    assert!(
        csv.body
            .starts_with("\u{feff}\"Số thứ tự\",\"Thời điểm\",\"Người thực hiện\""),
        "{}",
        &csv.body[..200]
    );
    assert!(
        csv.body.contains("Nộp mốc") && csv.body.contains("Trần Văn Ủy"),
        "{}",
        csv.body
    );
    let xlsx = app
        .page(&format!("/audit/history?plan={PLAN}&task=III.1.2&format=xlsx"), &cookie)
        .await;
    assert_eq!(xlsx.status, 200);
    assert!(xlsx.bytes.starts_with(b"PK"), "an Excel workbook");
    let r = app
        .page(&format!("/audit/history?plan={PLAN}&task=IX.9"), &cookie)
        .await;
    assert_eq!(r.status, 404, "{}", r.body);

    // The review report.
    let r = app.page("/audit/review?year=2024", &cookie).await;
    assert!(r.status == 200 && r.body.contains("<html"), "{}", r.status);
    assert_eq!(app.page("/audit/review?year=20x4", &cookie).await.status, 400);
    // A year that ended before the record began says so.
    let r = app.page("/audit/review?year=2023", &cookie).await;
    assert!(
        r.body.contains("id=\"before-record\"") && r.body.contains("Hồ sơ trên hệ thống bắt đầu từ 10/03/2024"),
        "{}",
        r.body
    );
    assert!(!app
        .page("/audit/review?year=2024", &cookie)
        .await
        .body
        .contains("id=\"before-record\""));

    // As of a day before the record began: said, not an error or bare zeros.
    let r = app.page(&format!("/plans/{PLAN}?as_of=2020-01-01"), &cookie).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body.contains("id=\"before-record\"") && r.body.contains("Hồ sơ của kế hoạch bắt đầu từ"),
        "{}",
        r.body
    );
    let r = app
        .page(&format!("/tasks/{PLAN}/III.1.2?as_of=2020-01-01"), &cookie)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body.contains("id=\"before-record\"") && r.body.contains("Ngày xem 01/01/2020"),
        "{}",
        r.body
    );
}
on_both_stores!(auditors_desk_without_a_shell, desk_without_a_shell);

fn between(body: &str, start: &str, end: &str) -> String {
    let from = body.find(start).unwrap_or_else(|| panic!("no {start:?} in {body}")) + start.len();
    body[from..from + body[from..].find(end).unwrap()].to_string()
}
