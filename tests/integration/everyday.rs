//! The web people use every day, walked in a real browser on a store
//! started on 07/12/2026 (issue 21): the officer's start page and the
//! "Hạn trong tháng này" filter, an e-mail link straight to its milestone,
//! a report with a PDF, "Chờ duyệt (1)" for the supervisor, a return
//! answered in "Trao đổi" (the officer told of it at her own address),
//! the approval, and the auditor's desk (the
//! history and the export downloaded, "Kiểm tra toàn vẹn" passing). Every
//! page reached is checked with axe-core and for sideways scrolling.

use crate::browser::{add_user, axe, from_outbox, run_flow, served_at, set_password, set_password_only};
use crate::evidence::tiny_pdf;
use serde_json::{json, Value};

/// Every task link in UBND's first digest (quoted-printable undone).
fn digest_links(outbox: &std::path::Path, base: &str) -> Vec<String> {
    let read = |f: &std::path::Path| {
        std::fs::read_to_string(f)
            .unwrap()
            .replace("=\r\n", "")
            .replace("=\n", "")
            .replace("=3D", "=")
    };
    from_outbox(outbox, "digest.ubnd.", read, |text| {
        let links: Vec<String> = text
            .split(|c: char| c.is_whitespace() || c == '"' || c == '<' || c == '>')
            .filter(|w| w.starts_with(&format!("{base}/tasks/")))
            .map(|w| w.replace("&amp;", "&"))
            .collect();
        (!links.is_empty()).then_some(links)
    })
}

/// An e-mail file as people read it: its To: and Subject: headers and its
/// plain text, decoded by Python's `email` package.
fn eml_text(path: &std::path::Path) -> String {
    let script = "import sys\nfrom email import policy, message_from_binary_file\n\
                  m = message_from_binary_file(open(sys.argv[1], 'rb'), policy=policy.default)\n\
                  print('To: ' + str(m['To']))\nprint('Subject: ' + str(m['Subject']))\n\
                  print(m.get_body(('plain',)).get_content())";
    let out = std::process::Command::new(crate::helpers::python())
        .args(["-c", script])
        .arg(path)
        .output()
        .expect("run python3");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The steps that leave a page only after checking it: no violation axe
/// finds, no sideways scrolling.
fn checked(page: &str) -> [Value; 2] {
    [json!({ "do": "fits_width" }), axe(page)]
}

/// An auditor's or admin's first sign-in: the password, then two-factor
/// set-up with the secret shown for entry by hand and a code of the
/// server's clock (`shift` seconds ahead of this one).
fn enrolled(link: &str, password: &str, shift: i64) -> Vec<Value> {
    let mut steps = set_password_only(link, password);
    steps.extend([
        json!({ "do": "click", "css": "details.manual > summary" }),
        json!({ "do": "text", "css": "#totp-secret", "as": "secret" }),
        json!({ "do": "fill_totp", "css": "#totp-enrol input[name=code]", "secret": "secret", "shift": shift }),
        json!({ "do": "click", "css": "#totp-enrol button[type=submit]" }),
        json!({ "do": "expect_text", "css": "#recovery-codes", "contains": "" }),
    ]);
    steps
}

fn sign_in(base: &str, email: &str, password: &str, next: &str) -> Vec<Value> {
    vec![
        json!({ "do": "goto", "url": format!("{base}/signin?next={next}") }),
        json!({ "do": "fill", "css": "#signin input[name=email]", "text": email }),
        json!({ "do": "fill", "css": "#signin input[name=password]", "text": password }),
        json!({ "do": "click", "css": "#signin button[type=submit]" }),
    ]
}

#[test]
fn the_everyday_web_walked_on_a_phone_and_a_desktop() {
    let started = "2026-12-07T09:00:00+07:00";
    // How far the server's simulated clock is ahead of this one (its
    // two-factor codes are of its time).
    let shift = chrono::DateTime::parse_from_rfc3339(started).unwrap().timestamp() - chrono::Utc::now().timestamp();
    let (dir, mut child, db, base) = served_at(started);
    let officer = add_user(&db, &base, "UBND", "Trần Thị Hoa", "hoa@ubnd.example", "member");
    let supervisor = add_user(&db, &base, "BDV", "Võ Văn Em", "em@bdv.example", "supervisor");
    let auditor = add_user(&db, &base, "UBKT", "Phạm Thanh Tra", "tra@ubkt.example", "auditor");
    let work = tempfile::tempdir().unwrap();
    let artifacts = crate::helpers::repo_root().join("target/test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let pdf_path = work.path().join("bao-cao-nam-2026.pdf");
    std::fs::write(&pdf_path, tiny_pdf()).unwrap();

    // UBND's first digest links each item to its milestone and agency; pick
    // one of a task the Ban Dân vận supervises (it approves below).
    let links = digest_links(&dir.path().join("data/outbox"), &base);
    let link = links
        .iter()
        .find(|l| {
            ["/II.2.1.1?", "/II.2.1.2?", "/III.1.1?", "/III.1.3?", "/IV.2?"]
                .iter()
                .any(|t| l.contains(t))
        })
        .unwrap_or_else(|| panic!("a link to a task BDV supervises in {links:?}"))
        .clone();
    assert!(
        links.iter().all(|l| l.contains("?m=") && l.contains("#m-")),
        "{links:?}"
    );
    let milestone = link.split("?m=").nth(1).unwrap().split('&').next().unwrap().to_string();
    let task_path = link.split('?').next().unwrap().trim_start_matches(&base).to_string();
    let ob = format!("#m-{milestone}-UBND");

    // The officer, on a phone: the start page's counts, this month's work,
    // then the e-mail's link, a report with a PDF and the submission.
    let mut steps = vec![json!({ "do": "window", "width": 390, "height": 844 })];
    steps.extend(set_password(&officer, "mat-khau-cua-hoa"));
    steps.extend([
        json!({ "do": "goto", "url": format!("{base}/") }),
        json!({ "do": "expect_text", "css": ".counts a.month", "contains": "Hạn trong tháng này" }),
        json!({ "do": "screenshot", "path": artifacts.join("start-390.png").to_str().unwrap() }),
        json!({ "do": "click", "css": ".counts a.month" }),
        json!({ "do": "expect_url", "contains": "due_within=month" }),
        json!({ "do": "expect_text", "css": ".list-count strong", "contains": "37" }),
        json!({ "do": "scroll", "css": "select[name=due_within] option[value=month][selected]" }),
        json!({ "do": "expect_absent", "css": "input[name=overdue][checked]" }),
        json!({ "do": "text", "css": ".list-count", "as": "month" }),
    ]);
    steps.extend(checked("hộp việc: hạn trong tháng này"));
    steps.extend([
        json!({ "do": "goto", "url": link }),
        json!({ "do": "expect_url", "contains": format!("#m-{milestone}-UBND") }),
        json!({ "do": "scroll", "css": format!("details#m-{milestone}[open]") }),
        json!({ "do": "scroll", "css": format!("{ob} details[data-for=report][open]") }),
        json!({ "do": "expect_absent", "css": format!("{ob} details[data-for=submit][open]") }),
        json!({ "do": "screenshot", "path": artifacts.join("task-from-mail-390.png").to_str().unwrap() }),
    ]);
    steps.extend(checked("nhiệm vụ từ liên kết trong thư"));
    steps.extend([
        json!({ "do": "fill", "css": format!("{ob} form[data-action=report] textarea[name=note]"), "text": "Báo cáo kết quả năm 2026" }),
        json!({ "do": "attach", "css": format!("{ob} form[data-action=report] input.evidence-input"), "paths": [pdf_path.to_str().unwrap()] }),
        json!({ "do": "click", "css": format!("{ob} form[data-action=report] button[type=submit]") }),
        json!({ "do": "expect_text", "css": ".done", "contains": "Đã ghi nhận" }),
        json!({ "do": "click", "css": format!("{ob} details[data-for=submit] > summary") }),
        json!({ "do": "click", "css": format!("{ob} form[data-action=submit] input[name=confirm]") }),
        json!({ "do": "click", "css": format!("{ob} form[data-action=submit] button[type=submit]") }),
        json!({ "do": "expect_text", "css": format!("{ob} .status"), "contains": "đã nộp, chờ duyệt" }),
        json!({ "do": "click", "css": "#history-toggle" }),
        json!({ "do": "expect_url", "contains": "thu=1" }),
    ]);
    steps.extend(checked("lịch sử có cả thư đã gửi"));
    steps.push(json!({ "do": "click", "css": "form.signout button" }));
    let officer_run = run_flow(work.path(), "officer", steps);
    assert!(officer_run["texts"]["month"].as_str().unwrap().contains("37"));

    // The supervisor, on a desktop: "Chờ duyệt (1)", and a return with a reason.
    let reason = "Cần ghi rõ số liệu của từng xã, phường";
    let mut steps = vec![json!({ "do": "window", "width": 1366, "height": 900 })];
    steps.extend(set_password(&supervisor, "mat-khau-cua-em"));
    steps.extend([
        json!({ "do": "goto", "url": format!("{base}/") }),
        json!({ "do": "expect_text", "css": "header nav a[href='/queue']", "contains": "Chờ duyệt (1)" }),
        json!({ "do": "expect_text", "css": "p.waiting", "contains": "1" }),
    ]);
    steps.extend(checked("trang đầu của lãnh đạo duyệt"));
    steps.extend([
        json!({ "do": "click", "css": "header nav a[href='/queue']" }),
        json!({ "do": "click", "css": "#queue a.button" }),
        json!({ "do": "scroll", "css": format!("{ob} details[data-for=approve][open]") }),
        json!({ "do": "click", "css": format!("{ob} details[data-for=return] > summary") }),
        json!({ "do": "fill", "css": format!("{ob} form[data-action=return] textarea[name=reason]"), "text": reason }),
        json!({ "do": "click", "css": format!("{ob} form[data-action=return] button[type=submit]") }),
        json!({ "do": "expect_text", "css": "#confirm h1", "contains": "Trả lại mốc «" }),
    ]);
    steps.extend(checked("xác nhận trả lại"));
    steps.extend([
        json!({ "do": "click", "css": "#confirm form[data-confirm=return] button[type=submit]" }),
        json!({ "do": "expect_text", "css": format!("{ob} .status"), "contains": "bị trả lại" }),
        json!({ "do": "click", "css": "form.signout button" }),
    ]);
    run_flow(work.path(), "return", steps);

    // The officer is told of the return at her own address (besides UBND's
    // digest), with the reason and a link to her part of the milestone.
    let notice = from_outbox(&dir.path().join("data/outbox"), "personal.", eml_text, |mail| {
        (mail.contains("To: hoa@ubnd.example") && mail.contains(reason)).then(|| mail.to_string())
    });
    assert!(notice.contains("bị trả lại"), "{notice}");
    assert!(notice.contains(&format!("&do=report#m-{milestone}-UBND")), "{notice}");

    // The officer answers the reason in "Trao đổi", then submits again.
    let answer = "Đã bổ sung số liệu từng xã, phường ở trang 2 của báo cáo";
    let mut steps = vec![json!({ "do": "window", "width": 390, "height": 844 })];
    steps.extend(sign_in(&base, "hoa@ubnd.example", "mat-khau-cua-hoa", &task_path));
    steps.extend([
        json!({ "do": "expect_text", "css": ".returned-notice", "contains": reason }),
        json!({ "do": "click", "css": ".returned-notice a" }),
        json!({ "do": "expect_text", "css": format!("{ob} .discussion"), "contains": reason }),
        json!({ "do": "fill", "css": format!("{ob} form[data-action=discuss] textarea[name=note]"), "text": answer }),
        json!({ "do": "click", "css": format!("{ob} form[data-action=discuss] button[type=submit]") }),
        json!({ "do": "expect_text", "css": ".done", "contains": "Đã gửi tin nhắn" }),
        json!({ "do": "expect_text", "css": format!("{ob} .discussion .thread"), "contains": answer }),
    ]);
    steps.extend(checked("trao đổi sau khi trả lại"));
    // Her account page lists the notice and has the settings, each kind on.
    steps.extend([
        json!({ "do": "goto", "url": format!("{base}/account") }),
        json!({ "do": "expect_text", "css": "#told", "contains": "bị trả lại" }),
        json!({ "do": "scroll", "css": "#notice-settings input[value=decision][checked]" }),
    ]);
    steps.extend(checked("tài khoản: thông báo riêng"));
    steps.push(json!({ "do": "goto", "url": format!("{base}{task_path}") }));
    steps.extend([
        json!({ "do": "click", "css": format!("{ob} details[data-for=submit] > summary") }),
        json!({ "do": "click", "css": format!("{ob} form[data-action=submit] input[name=confirm]") }),
        json!({ "do": "click", "css": format!("{ob} form[data-action=submit] button[type=submit]") }),
        json!({ "do": "expect_text", "css": format!("{ob} .status"), "contains": "đã nộp, chờ duyệt" }),
        json!({ "do": "click", "css": "form.signout button" }),
    ]);
    run_flow(work.path(), "answer", steps);

    // The supervisor reads the answer and approves.
    let mut steps = vec![json!({ "do": "window", "width": 390, "height": 844 })];
    steps.extend(sign_in(&base, "em@bdv.example", "mat-khau-cua-em", "/queue"));
    steps.extend([
        json!({ "do": "click", "css": "#queue a.button" }),
        json!({ "do": "expect_text", "css": format!("{ob} .discussion .thread"), "contains": answer }),
        json!({ "do": "fill", "css": format!("{ob} form[data-action=approve] textarea[name=note]"), "text": "Đồng ý" }),
        json!({ "do": "click", "css": format!("{ob} form[data-action=approve] button[type=submit]") }),
        json!({ "do": "click", "css": "#confirm form[data-confirm=approve] button[type=submit]" }),
        json!({ "do": "expect_text", "css": format!("{ob} .status"), "contains": "đã duyệt" }),
    ]);
    steps.extend(checked("nhiệm vụ đã duyệt (điện thoại)"));
    steps.push(json!({ "do": "click", "css": "form.signout button" }));
    run_flow(work.path(), "approve", steps);

    // A checkpoint, as serve records each night: its root is what the check shows.
    let sim_now = chrono::Utc::now() + chrono::Duration::seconds(shift);
    let out = crate::helpers::bin()
        .args([
            "--db",
            db.to_str().unwrap(),
            "--now",
            &sim_now.to_rfc3339(),
            "audit",
            "checkpoint",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", crate::helpers::stderr(&out));

    // The auditor (two-factor set up first): the desk, the integrity check,
    // the export and a task's history downloaded.
    let mut steps = vec![json!({ "do": "window", "width": 390, "height": 844 })];
    steps.extend(enrolled(&auditor, "mat-khau-cua-tra", shift));
    steps.extend([
        json!({ "do": "goto", "url": format!("{base}/audit") }),
        json!({ "do": "expect_text", "css": "h1", "contains": "Bàn làm việc kiểm tra" }),
    ]);
    steps.extend(checked("bàn làm việc kiểm tra"));
    steps.extend([
        json!({ "do": "click", "css": "#start-check button" }),
        json!({ "do": "expect_text", "css": "#check-result", "contains": "Hợp lệ", "timeout": 120 }),
        json!({ "do": "text", "css": "#check-root", "as": "root" }),
    ]);
    steps.extend(checked("kiểm tra toàn vẹn"));
    steps.extend([
        json!({ "do": "goto", "url": format!("{base}/audit") }),
        json!({ "do": "download", "css": "#export-link", "as": "export" }),
        json!({ "do": "goto", "url": format!("{base}{task_path}") }),
        json!({ "do": "download", "css": "#history-downloads a", "as": "history" }),
    ]);
    steps.extend(checked("nhiệm vụ (kiểm tra)"));
    // How long III.1.2 is now (it was 120,000 px on a phone and 68,000 px
    // on a desktop with its whole history open): printed, not asserted.
    steps.extend([
        json!({ "do": "goto", "url": format!("{base}/tasks/duc-pho-de-an-13/III.1.2") }),
        json!({ "do": "measure", "as": "phone" }),
        json!({ "do": "window", "width": 1366, "height": 900 }),
        json!({ "do": "measure", "as": "desktop" }),
    ]);
    let audit = run_flow(work.path(), "auditor", steps);
    eprintln!(
        "III.1.2 task page, [width, height] px: phone {} desktop {}",
        audit["texts"]["phone"], audit["texts"]["desktop"]
    );
    assert_eq!(audit["texts"]["root"].as_str().unwrap().trim().len(), 64, "{audit}");
    assert!(
        audit["texts"]["export"]["file"]
            .as_str()
            .unwrap()
            .starts_with("kehoach-export-"),
        "{audit}"
    );
    assert!(
        audit["texts"]["history"]["file"]
            .as_str()
            .unwrap()
            .starts_with("lich-su-"),
        "{audit}"
    );
    assert!(audit["texts"]["export"]["size"].as_u64().unwrap() > 10_000, "{audit}");

    // The administrator changes UBND's address on the directory page after
    // a preview; the old address is told (a notice e-mail to it).
    let admin = add_user(&db, &base, "VPTX", "Quản Trị Viên", "qt@vptx.example", "admin");
    let mut steps = vec![json!({ "do": "window", "width": 390, "height": 844 })];
    steps.extend(enrolled(&admin, "mat-khau-quan-tri", shift));
    steps.extend([
        json!({ "do": "goto", "url": format!("{base}/admin") }),
        json!({ "do": "click", "css": "#directory-link" }),
        json!({ "do": "expect_text", "css": "h1", "contains": "Danh bạ cơ quan" }),
    ]);
    steps.extend(checked("danh bạ cơ quan"));
    steps.extend([
        json!({ "do": "fill", "css": "textarea[name='emails.UBND']", "text": "vanphong@ubnd.example" }),
        json!({ "do": "click", "css": "button[name=action][value=check]" }),
        json!({ "do": "expect_text", "css": "#directory-preview", "contains": "Bỏ địa chỉ: ubnd@ducpho.example" }),
        json!({ "do": "expect_text", "css": "#directory-preview", "contains": "Thư báo thay đổi sẽ gửi đến địa chỉ cũ: ubnd@ducpho.example" }),
    ]);
    steps.extend(checked("danh bạ: xem trước"));
    steps.extend([
        json!({ "do": "click", "css": "#directory-save" }),
        json!({ "do": "expect_text", "css": ".done", "contains": "Đã lưu danh bạ" }),
        json!({ "do": "expect_text", "css": "textarea[name='emails.UBND']", "contains": "vanphong@ubnd.example" }),
    ]);
    steps.extend(checked("danh bạ đã lưu"));
    run_flow(work.path(), "directory", steps);
    let read = |f: &std::path::Path| {
        std::fs::read_to_string(f)
            .unwrap()
            .replace("=\r\n", "")
            .replace("=\n", "")
    };
    let told = from_outbox(&dir.path().join("data/outbox"), "directory.ubnd.", read, |mail| {
        mail.contains("ubnd@ducpho.example").then_some(mail.to_string())
    });
    assert!(
        told.contains("vanphong@ubnd.example"),
        "the old address is told what changed: {told}"
    );

    let _ = child.kill();
    let _ = child.wait();
}
