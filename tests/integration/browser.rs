//! End to end in a real browser (Debian's headless Chromium through
//! ChromeDriver): an implementer signs in from a one-time link and submits a
//! milestone; a supervisor of the lead agency approves it and confirms on
//! the confirmation page; the task's history shows both. The inbox
//! screenshot is kept as a test artifact. Every page a person reaches on the
//! way is checked with axe-core (WCAG 2.1 A and AA; see
//! tests/support/webdriver_flow.py).

use crate::helpers::*;
use serde_json::{json, Value};

/// Runs `kehoach user add` against the served database; returns the sign-in link.
pub(crate) fn add_user(db: &std::path::Path, base: &str, agency: &str, name: &str, email: &str, role: &str) -> String {
    let out = bin()
        .args(["--db", db.to_str().unwrap(), "--format", "json", "user", "add"])
        .args(["--agency", agency, "--name", name, "--email", email, "--role", role])
        .env("KEHOACH_BASE_URL", base)
        .output()
        .unwrap();
    assert!(out.status.success(), "user add: {}", stderr(&out));
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    v["signin_url"].as_str().expect("signin_url").to_string()
}

pub(crate) fn run_flow(dir: &std::path::Path, name: &str, steps: Vec<Value>) -> Value {
    let file = dir.join(format!("{name}.json"));
    std::fs::write(&file, serde_json::to_vec(&json!({ "steps": steps })).unwrap()).unwrap();
    let out = std::process::Command::new(python())
        .arg(repo_root().join("tests/support/webdriver_flow.py"))
        .arg(&file)
        .output()
        .expect("run webdriver_flow.py");
    if !out.status.success() {
        // Keep the failure's screenshot and page where CI keeps artifacts:
        // the temporary directory goes when the test panics.
        let kept = repo_root().join("target/test-artifacts");
        for suffix in [".failure.png", ".failure.html"] {
            let from = dir.join(format!("{name}.json{suffix}"));
            if from.exists() && std::fs::create_dir_all(&kept).is_ok() {
                let _ = std::fs::copy(&from, kept.join(format!("{name}{suffix}")));
            }
        }
    }
    assert!(
        out.status.success(),
        "browser flow {name} failed (run scripts/test-services if Chromium is missing; \
         failure page in target/test-artifacts):\n{}",
        stderr(&out)
    );
    serde_json::from_slice(&out.stdout).expect("flow result")
}

/// Waits for a file in `outbox` whose name starts with `prefix` and whose
/// text (as `read` gives it) `pick` finds something in.
pub(crate) fn from_outbox<T>(
    outbox: &std::path::Path,
    prefix: &str,
    read: impl Fn(&std::path::Path) -> String,
    pick: impl Fn(&str) -> Option<T>,
) -> T {
    // Up to two minutes: a first pass over years of overdue work writes
    // many digests, and CI machines are busy.
    for _ in 0..600 {
        let files: Vec<_> = std::fs::read_dir(outbox)
            .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        for f in files
            .iter()
            .filter(|f| f.file_name().is_some_and(|n| n.to_string_lossy().starts_with(prefix)))
        {
            if let Some(found) = pick(&read(f)) {
                return found;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    panic!("nothing found in {}/{prefix}*", outbox.display());
}

/// The link to `path` in the first reminder e-mail to `agency` (quoted-printable soft breaks undone).
fn reminder_link(outbox: &std::path::Path, agency: &str, path: &str) -> String {
    let read = |f: &std::path::Path| {
        std::fs::read_to_string(f)
            .unwrap()
            .replace("=\r\n", "")
            .replace("=\n", "")
    };
    from_outbox(outbox, &format!("digest.{agency}."), read, |text| {
        let at = text.find(path)?;
        let start = text[..at].rfind("http").expect("absolute link");
        Some(text[start..at + path.len()].to_string())
    })
}

/// `kehoach serve` on the shipped plan at a simulated time, loaded: the
/// directory, the process, the database and the base URL.
fn served() -> (tempfile::TempDir, std::process::Child, std::path::PathBuf, String) {
    served_at("2023-01-20T09:00:00+07:00")
}

/// `served`, with the simulated clock starting at `now`.
pub(crate) fn served_at(now: &str) -> (tempfile::TempDir, std::process::Child, std::path::PathBuf, String) {
    let (dir, port, mut child) = serve_in_new_dir(&[("KEHOACH_NOW", now)]);
    let db = dir.path().join("data/kehoach.db");
    assert_eq!(wait_until_loaded(&db, &mut child), 45);
    (dir, child, db, format!("http://127.0.0.1:{port}"))
}

/// A step that fails on any WCAG 2.1 A/AA violation axe-core finds on the
/// current page (`page` names it in the failure).
pub(crate) fn axe(page: &str) -> Value {
    json!({ "do": "axe", "name": page })
}

/// Setting a password from a sign-in link, up to the button.
pub(crate) fn set_password_only(link: &str, password: &str) -> Vec<Value> {
    vec![
        json!({ "do": "goto", "url": link }),
        json!({ "do": "expect_text", "css": "h1", "contains": "Đặt mật khẩu" }),
        axe("đặt mật khẩu"),
        json!({ "do": "fill", "css": "input[name=password]", "text": password }),
        json!({ "do": "fill", "css": "input[name=password2]", "text": password }),
        json!({ "do": "click", "css": "#set-password button[type=submit]" }),
    ]
}

/// Setting a password, landing on the start page, then opening the inbox
/// from the menu.
pub(crate) fn set_password(link: &str, password: &str) -> Vec<Value> {
    let mut steps = set_password_only(link, password);
    steps.extend([
        json!({ "do": "expect_text", "css": "h1", "contains": "Việc của" }),
        axe("trang đầu"),
        json!({ "do": "fits_width" }),
        json!({ "do": "click", "css": "header nav a[href='/inbox']" }),
        json!({ "do": "expect_url", "contains": "/inbox" }),
    ]);
    steps
}

#[test]
fn implementer_submits_and_lead_supervisor_approves_in_a_browser() {
    let (dir, mut child, db, base) = served();
    // The links `user add` prints start with KEHOACH_BASE_URL.
    let implementer = add_user(&db, &base, "BDV", "Nguyễn Văn An", "an@bdv.example", "member");
    let supervisor = add_user(&db, &base, "BTV", "Lê Thị Bình", "binh@btv.example", "supervisor");
    assert!(implementer.starts_with(&format!("{base}/signin/")), "{implementer}");
    let artifacts = repo_root().join("target/test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let inbox_png = artifacts.join("inbox.png");
    let _ = std::fs::remove_file(&inbox_png);
    let task = format!("{base}/tasks/duc-pho-de-an-13/II.1.1");
    let work = tempfile::tempdir().unwrap();
    // The reminder BDV received (written as a file: no SMTP configured) links to the task page.
    let link = reminder_link(&dir.path().join("data/outbox"), "bdv", "/tasks/duc-pho-de-an-13/II.1.1");
    assert_eq!(link, task);

    // The root shows the sign-in page.
    run_flow(
        work.path(),
        "root",
        vec![
            json!({ "do": "goto", "url": format!("{base}/") }),
            json!({ "do": "expect_text", "css": "h1", "contains": "Đăng nhập" }),
            axe("đăng nhập"),
            // A page that does not exist, before signing in.
            json!({ "do": "goto", "url": format!("{base}/khong-co-trang-nay") }),
            axe("lỗi 404 (chưa đăng nhập)"),
        ],
    );

    // The implementer sets a password from the one-time link and sees the
    // inbox; later opens the reminder's link, signs in with e-mail and
    // password, lands on the task and submits the milestone.
    let mut steps = set_password(&implementer, "mat-khau-cua-an");
    steps.extend([
        json!({ "do": "expect_text", "css": "#inbox", "contains": "II.1.1" }),
        axe("hộp việc"),
        json!({ "do": "screenshot", "path": inbox_png }),
        // The plan's overview, and an error page that leads back to it.
        json!({ "do": "goto", "url": format!("{base}/plans/duc-pho-de-an-13") }),
        axe("tổng quan kế hoạch"),
        json!({ "do": "goto", "url": format!("{base}/tasks/duc-pho-de-an-13/IX.9") }),
        axe("lỗi 404"),
        json!({ "do": "expect_text", "css": "main", "contains": "Quay lại" }),
        json!({ "do": "click", "css": "form.signout button" }),
        json!({ "do": "expect_url", "contains": "/signin" }),
        json!({ "do": "goto", "url": link }),
        json!({ "do": "expect_url", "contains": "/signin?next=" }),
        json!({ "do": "fill", "css": "input[name=email]", "text": "an@bdv.example" }),
        json!({ "do": "fill", "css": "input[name=password]", "text": "mat-khau-cua-an" }),
        json!({ "do": "click", "css": "#signin button[type=submit]" }),
        json!({ "do": "expect_url", "contains": "/tasks/duc-pho-de-an-13/II.1.1" }),
        axe("nhiệm vụ (cơ quan thực hiện)"),
        // Only the form the person opens is shown; submitting asks to confirm.
        json!({ "do": "expect_absent", "css": "details[data-for=submit][open]" }),
        json!({ "do": "click", "css": "details[data-for=submit] > summary" }),
        json!({ "do": "fill", "css": "form[data-action=submit] textarea[name=note]", "text": "Đã ban hành kế hoạch" }),
        json!({ "do": "click", "css": "form[data-action=submit] input[name=confirm]" }),
        json!({ "do": "click", "css": "form[data-action=submit] button[type=submit]" }),
        json!({ "do": "expect_text", "css": "#m-complete .notice", "contains": "Đã ghi nhận: nộp mốc «" }),
        axe("nhiệm vụ sau khi nộp"),
        json!({ "do": "expect_text", "css": "#m-complete .status", "contains": "đã nộp, chờ duyệt" }),
        json!({ "do": "expect_absent", "css": "form[data-action=approve]" }),
        json!({ "do": "click", "css": "form.signout button" }),
    ]);
    run_flow(work.path(), "implementer", steps);
    assert!(
        std::fs::metadata(&inbox_png).map(|m| m.len() > 10_000).unwrap_or(false),
        "inbox screenshot saved"
    );

    // The lead agency's supervisor finds it in the queue and approves it.
    let mut steps = set_password(&supervisor, "mat-khau-cua-binh");
    steps.extend([
        json!({ "do": "goto", "url": format!("{base}/queue") }),
        json!({ "do": "expect_text", "css": "#queue", "contains": "II.1.1" }),
        axe("chờ duyệt"),
        json!({ "do": "click", "css": "#queue a.button" }),
        axe("nhiệm vụ (lãnh đạo duyệt)"),
        json!({ "do": "fill", "css": "form[data-action=approve] textarea[name=note]", "text": "Đồng ý" }),
        json!({ "do": "click", "css": "form[data-action=approve] button[type=submit]" }),
        // The approval asks first: a page of its own, confirmed with a button.
        json!({ "do": "expect_text", "css": "#confirm h1", "contains": "Duyệt mốc «" }),
        axe("xác nhận duyệt"),
        json!({ "do": "click", "css": "#confirm form[data-confirm=approve] button[type=submit]" }),
        json!({ "do": "expect_text", "css": "#m-complete .notice", "contains": "Đã ghi nhận: duyệt mốc «" }),
        json!({ "do": "expect_text", "css": "#m-complete .status", "contains": "đã duyệt" }),
        json!({ "do": "expect_text", "css": "#history", "contains": "Nộp mốc “Hoàn thành”" }),
        json!({ "do": "expect_text", "css": "#history", "contains": "Duyệt mốc “Hoàn thành”" }),
        json!({ "do": "text", "css": "#history", "as": "history" }),
        axe("nhiệm vụ đã duyệt"),
        // The account page lists this session; signing out everywhere ends it.
        json!({ "do": "click", "css": "a.who" }),
        json!({ "do": "expect_text", "css": "#sessions", "contains": "phiên này" }),
        axe("tài khoản"),
        json!({ "do": "goto", "url": format!("{base}/account/totp") }),
        axe("thiết lập xác thực hai bước"),
        json!({ "do": "goto", "url": format!("{base}/account") }),
        json!({ "do": "click", "css": "#signout-everywhere button" }),
        json!({ "do": "expect_url", "contains": "/signin" }),
        json!({ "do": "goto", "url": format!("{base}/queue") }),
        json!({ "do": "expect_url", "contains": "/signin?next=" }),
    ]);
    let result = run_flow(work.path(), "supervisor", steps);
    let history = result["texts"]["history"].as_str().unwrap();
    assert!(
        history.contains("Nguyễn Văn An") && history.contains("Lê Thị Bình"),
        "{history}"
    );

    // The events say the same, with who did it.
    let out = bin()
        .args([
            "--db",
            db.to_str().unwrap(),
            "--format",
            "json",
            "audit",
            "history",
            "II.1.1",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let h: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let steps: Vec<(String, String)> = h["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| ["MilestoneSubmitted", "MilestoneApproved"].contains(&e["event"].as_str().unwrap()))
        .map(|e| (e["event"].as_str().unwrap().to_string(), e["actor"].to_string()))
        .collect();
    assert_eq!(steps.len(), 2, "{steps:?}");
    assert!(
        steps[0].0 == "MilestoneSubmitted" && steps[0].1.contains("BDV"),
        "{steps:?}"
    );
    assert!(
        steps[1].0 == "MilestoneApproved" && steps[1].1.contains("BTV"),
        "{steps:?}"
    );

    let _ = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

/// The sign-in link in the "Quên mật khẩu" mail written to the outbox.
fn reset_link(outbox: &std::path::Path) -> String {
    let read = |f: &std::path::Path| {
        let out = std::process::Command::new(python())
            .arg("-c")
            .arg("import email,sys;from email import policy;m=email.message_from_binary_file(open(sys.argv[1],'rb'),policy=policy.default);print(m['Subject']);print(m.get_body(('plain',)).get_content())")
            .arg(f)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    from_outbox(outbox, "account.", read, |text| {
        if !text.contains("Đặt lại mật khẩu") {
            return None;
        }
        let start = text.find("http").expect("link");
        Some(text[start..].split_whitespace().next().unwrap().to_string())
    })
}

#[test]
fn a_forgotten_password_is_reset_from_the_email_in_a_browser() {
    let (dir, mut child, db, base) = served();
    let first = add_user(&db, &base, "BDV", "Nguyễn Văn An", "an@bdv.example", "member");
    let work = tempfile::tempdir().unwrap();
    let mut steps = set_password(&first, "mat-khau-cua-an");
    steps.extend([
        json!({ "do": "click", "css": "form.signout button" }),
        json!({ "do": "expect_url", "contains": "/signin" }),
        json!({ "do": "click", "css": "a#forgot" }),
        json!({ "do": "expect_text", "css": "h1", "contains": "Quên mật khẩu" }),
        axe("quên mật khẩu"),
        json!({ "do": "fill", "css": "input[name=email]", "text": "an@bdv.example" }),
        json!({ "do": "click", "css": "#forgot button[type=submit]" }),
        json!({ "do": "expect_text", "css": "#forgot-sent", "contains": "liên kết đặt lại mật khẩu" }),
        axe("đã gửi thư đặt lại mật khẩu"),
    ]);
    run_flow(work.path(), "forgot", steps);
    let link = reset_link(&dir.path().join("data/outbox"));
    assert!(link.starts_with(&format!("{base}/signin/")), "{link}");
    let mut steps = set_password(&link, "mat-khau-moi-cua-an");
    steps.extend([
        json!({ "do": "click", "css": "form.signout button" }),
        json!({ "do": "fill", "css": "input[name=email]", "text": "an@bdv.example" }),
        json!({ "do": "fill", "css": "input[name=password]", "text": "mat-khau-moi-cua-an" }),
        json!({ "do": "click", "css": "#signin button[type=submit]" }),
        json!({ "do": "expect_text", "css": "h1", "contains": "Việc của" }),
        json!({ "do": "goto", "url": link }),
        json!({ "do": "expect_text", "css": "main", "contains": "liên kết đăng nhập không hợp lệ" }),
        axe("liên kết đã dùng"),
    ]);
    run_flow(work.path(), "reset", steps);
    let _ = child.kill();
    let _ = child.wait();
}

/// The accessibility check is real: a page with an image without text and a
/// nameless field fails the step, naming the rules, their impact and where.
#[test]
fn axe_reports_violations_with_rule_impact_and_place() {
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("bad.json");
    let page = "data:text/html;charset=utf-8,<html lang=vi><head><title>x</title></head><body><main><img src=x><input id=q></main></body></html>";
    let steps = json!({ "steps": [{ "do": "goto", "url": page }, axe("trang hỏng")] });
    std::fs::write(&file, serde_json::to_vec(&steps).unwrap()).unwrap();
    let out = std::process::Command::new(python())
        .arg(repo_root().join("tests/support/webdriver_flow.py"))
        .arg(&file)
        .output()
        .expect("run webdriver_flow.py");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    for needle in [
        "'trang hỏng'",
        "image-alt (critical)",
        "label (critical)",
        "at img",
        "#q",
    ] {
        assert!(err.contains(needle), "{needle:?} not in\n{err}");
    }
}

/// The "done when": a UBND member attaches a PDF and a photo to a
/// report on the task form and submits; the BDV supervisor (advisory) sees
/// both files, opens the PDF in the browser and approves. The file's SHA-256
/// is in the event, and `audit verify` fails once one stored byte changes.
#[test]
fn member_attaches_files_and_supervisor_views_them_in_a_browser() {
    use crate::evidence::{change_one_byte, sha256_hex, tiny_pdf, tiny_png};
    let (_dir, mut child, db, base) = served();
    let member = add_user(&db, &base, "UBND", "Trần Thị Hoa", "hoa@ubnd.example", "member");
    let supervisor = add_user(&db, &base, "BDV", "Võ Văn Em", "em@bdv.example", "supervisor");
    let work = tempfile::tempdir().unwrap();
    let (pdf, png) = (tiny_pdf(), tiny_png());
    let pdf_path = work.path().join("bao-cao-mo-hinh.pdf");
    let png_path = work.path().join("anh-hien-truong.png");
    std::fs::write(&pdf_path, &pdf).unwrap();
    std::fs::write(&png_path, &png).unwrap();
    let task = format!("{base}/tasks/duc-pho-de-an-13/III.1.2");
    // The hooks this flow relies on: the obligation's <li id="m-MILESTONE-AGENCY">,
    // forms[data-action], input.evidence-input, .evidence-files with
    // a.file-download / a.file-view links.
    let ob = "#m-register-2023-UBND";

    let mut steps = set_password(&member, "mat-khau-cua-hoa");
    steps.extend([
        json!({ "do": "goto", "url": format!("{task}?m=register-2023&a=UBND#m-register-2023-UBND") }),
        json!({ "do": "click", "css": format!("{ob} details:has(form[data-action=report]) > summary") }),
        json!({ "do": "fill", "css": format!("{ob} form[data-action=report] textarea[name=note]"), "text": "Đã đăng ký mô hình, kèm báo cáo và ảnh" }),
        json!({ "do": "fill", "css": format!("{ob} form[data-action=report] input[name='kpi.mo-hinh-dan-van-kheo']"), "text": "2" }),
        json!({ "do": "attach", "css": format!("{ob} form[data-action=report] input.evidence-input"),
                "paths": [pdf_path.to_str().unwrap(), png_path.to_str().unwrap()] }),
        json!({ "do": "click", "css": format!("{ob} form[data-action=report] button[type=submit]") }),
        json!({ "do": "expect_text", "css": ".done", "contains": "Đã ghi nhận" }),
        axe("nhiệm vụ sau khi báo cáo có tệp"),
        json!({ "do": "expect_text", "css": format!("{ob} .evidence-files"), "contains": "bao-cao-mo-hinh.pdf" }),
        json!({ "do": "click", "css": format!("{ob} details[data-for=submit] > summary") }),
        json!({ "do": "fill", "css": format!("{ob} form[data-action=submit] textarea[name=note]"), "text": "Nộp kết quả đăng ký" }),
        json!({ "do": "click", "css": format!("{ob} form[data-action=submit] input[name=confirm]") }),
        json!({ "do": "click", "css": format!("{ob} form[data-action=submit] button[type=submit]") }),
        json!({ "do": "expect_text", "css": format!("{ob} .status"), "contains": "đã nộp, chờ duyệt" }),
        json!({ "do": "click", "css": "form.signout button" }),
    ]);
    run_flow(work.path(), "attach", steps);

    let review = format!("{task}?m=register-2023&a=UBND&do=approve#m-register-2023-UBND");
    let mut steps = set_password(&supervisor, "mat-khau-cua-em");
    steps.extend([
        json!({ "do": "goto", "url": review }),
        json!({ "do": "expect_text", "css": format!("{ob} .evidence-files"), "contains": "bao-cao-mo-hinh.pdf" }),
        json!({ "do": "expect_text", "css": format!("{ob} .evidence-files"), "contains": "anh-hien-truong.png" }),
        // The review: the note, the KPI against its target, who filed.
        json!({ "do": "expect_text", "css": format!("{ob} .review"), "contains": "Đã đăng ký mô hình, kèm báo cáo và ảnh" }),
        json!({ "do": "expect_text", "css": format!("{ob} .kpi-review"), "contains": "2 mô hình" }),
        json!({ "do": "expect_text", "css": format!("{ob} .kpi-review .verdict.met"), "contains": "đạt" }),
        json!({ "do": "expect_text", "css": format!("{ob} .review"), "contains": "Trần Thị Hoa" }),
        axe("nhiệm vụ có tệp minh chứng (lãnh đạo duyệt)"),
        json!({ "do": "click", "css": format!("{ob} a.file-view[href*='{}']", sha256_hex(&pdf)) }),
        json!({ "do": "expect_url", "contains": "?view=1" }),
        json!({ "do": "content_type", "as": "pdf" }),
        json!({ "do": "goto", "url": review }),
        json!({ "do": "fill", "css": format!("{ob} form[data-action=approve] textarea[name=note]"), "text": "Đồng ý" }),
        json!({ "do": "click", "css": format!("{ob} form[data-action=approve] button[type=submit]") }),
        // Approval asks first, showing what was filed.
        json!({ "do": "expect_text", "css": "#confirm h1", "contains": "Duyệt mốc «" }),
        json!({ "do": "expect_text", "css": "#confirm", "contains": "bao-cao-mo-hinh.pdf" }),
        axe("xác nhận duyệt có tệp"),
        json!({ "do": "click", "css": "#confirm form[data-confirm=approve] button[type=submit]" }),
        json!({ "do": "expect_text", "css": format!("{ob} .status"), "contains": "đã duyệt" }),
    ]);
    let result = run_flow(work.path(), "review", steps);
    assert_eq!(
        result["texts"]["pdf"], "application/pdf",
        "the PDF is shown in the browser"
    );

    // The event carries the files' hashes.
    let out = bin()
        .args(["--db", db.to_str().unwrap(), "--format", "jsonl", "audit", "export"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let reported: Vec<Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["event_type"] == "ProgressReported" && e["aggregate_id"].as_str().unwrap().ends_with("III.1.2"))
        .flat_map(|e| {
            e["payload"]["ProgressReported"]["attachments"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .collect();
    let hashes: Vec<&str> = reported.iter().map(|a| a["sha256"].as_str().unwrap()).collect();
    assert_eq!(hashes, [sha256_hex(&pdf), sha256_hex(&png)]);

    let verify = || {
        bin()
            .args(["--db", db.to_str().unwrap(), "audit", "verify"])
            .output()
            .unwrap()
    };
    assert!(verify().status.success(), "{}", stderr(&verify()));
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let store = kehoach::store::Store::open(&kehoach::store::DbUrl::Sqlite(db.clone()))
                .await
                .unwrap();
            change_one_byte(&store, &sha256_hex(&pdf)).await;
            store.close().await;
        });
    let tampered = verify();
    assert_eq!(tampered.status.code(), Some(5), "{}", stdout(&tampered));
    assert!(
        stderr(&tampered).contains("bao-cao-mo-hinh.pdf"),
        "{}",
        stderr(&tampered)
    );

    let _ = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

/// The "done when" for the web import: an admin uploads a Word
/// plan on the admin page (at a phone's width, 390 px), corrects one
/// agency's name and fills every address on the review screen, and loads
/// it; its tasks appear in the inbox of an implementing agency; the
/// original document downloads from the plan page with the SHA-256 the load
/// event records; `audit verify` passes.
#[test]
fn admin_imports_a_word_plan_reviews_and_loads_it_in_a_browser() {
    use crate::evidence::sha256_hex;
    // On the real clock: an admin signs in with a TOTP code (oathtool).
    let (dir, port, mut child) = serve_in_new_dir(&[]);
    let db = dir.path().join("data/kehoach.db");
    assert_eq!(wait_until_loaded(&db, &mut child), 45);
    let base = format!("http://127.0.0.1:{port}");
    let work = tempfile::tempdir().unwrap();
    let artifacts = repo_root().join("target/test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let fixture = repo_root().join("tests/fixtures/import/ubnd-ba-to-table/plan.docx");
    let document = work.path().join("ke-hoach-chuyen-doi-so-ba-to.docx");
    std::fs::copy(&fixture, &document).unwrap();
    let bytes = std::fs::read(&document).unwrap();

    // What the importer reads (the CLI, the same importer): the rows the
    // review screen shows, in order.
    let report_path = work.path().join("report.json");
    let out = bin()
        .args(["plan", "import", document.to_str().unwrap(), "--out"])
        .arg(work.path().join("draft.toml"))
        .args(["--report", report_path.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&std::fs::read(&report_path).unwrap()).unwrap();
    let plan = report["plan"]["id"].as_str().unwrap().to_string();
    let agencies = report["agencies"].as_array().unwrap().clone();
    let shipped: Vec<String> = shipped_plan().agencies.iter().map(|a| a.code.to_string()).collect();
    // An implementing agency of the new plan that the shipped plan does not
    // have, and a task it implements; another agency to correct.
    let coordinated = report["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["coordinators"].as_array().is_some_and(|c| !c.is_empty()))
        .map(|t| t["id"].as_str().unwrap().to_string())
        .expect("a task with coordinators");
    let (implementer, task) = report["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|t| {
            let code = t["implementers"]
                .as_array()?
                .iter()
                .filter_map(Value::as_str)
                .find(|c| !shipped.iter().any(|s| s == c))?;
            Some((code.to_string(), t["id"].as_str()?.to_string()))
        })
        .expect("an implementer of its own");
    let corrected = agencies
        .iter()
        .position(|a| a["code"] != implementer.as_str() && a["code"] != report["plan"]["issuer"])
        .unwrap();
    let new_name = format!("{} (tên đã sửa)", agencies[corrected]["name"].as_str().unwrap());

    // The admin sets a password and, as admins must, two-factor sign-in.
    let admin = add_user(
        &db,
        &base,
        "UBKT",
        "Phạm Thanh Tra",
        "tra@ubkt.example",
        "admin,auditor",
    );
    let mut steps = set_password_only(&admin, "mat-khau-cua-tra");
    steps.extend([
        json!({ "do": "expect_url", "contains": "/signin/code" }),
        json!({ "do": "scroll", "css": "img#totp-qr[src^='data:image/svg+xml;base64,']" }),
        json!({ "do": "click", "css": "details.manual > summary" }),
        json!({ "do": "text", "css": "#totp-secret", "as": "secret" }),
        // The secret is this session's: enrolment finishes in it.
        json!({ "do": "fill_totp", "css": "#totp-enrol input[name=code]", "secret": "secret" }),
        json!({ "do": "click", "css": "#totp-enrol button[type=submit]" }),
        json!({ "do": "expect_text", "css": "#recovery-codes", "contains": "" }),
        json!({ "do": "scroll", "css": "a#recovery-download[download][href^='data:text/plain']" }),
    ]);
    let enrol = run_flow(work.path(), "enrol", steps);
    // A code of the next step: the current one was used to enrol.
    let code = crate::signin_security::oathtool(
        enrol["texts"]["secret"].as_str().unwrap(),
        chrono::Utc::now() + chrono::Duration::seconds(30),
    );

    let mut steps = vec![
        json!({ "do": "window", "width": 390, "height": 900 }),
        json!({ "do": "goto", "url": format!("{base}/signin?next=/admin") }),
        json!({ "do": "fill", "css": "#signin input[name=email]", "text": "tra@ubkt.example" }),
        json!({ "do": "fill", "css": "#signin input[name=password]", "text": "mat-khau-cua-tra" }),
        json!({ "do": "click", "css": "#signin button[type=submit]" }),
        json!({ "do": "fill", "css": "#totp-code input[name=code]", "text": code }),
        json!({ "do": "click", "css": "#totp-code button[type=submit]" }),
        json!({ "do": "expect_url", "contains": "/admin" }),
    ];
    steps.extend([
        json!({ "do": "goto", "url": format!("{base}/admin") }),
        json!({ "do": "expect_text", "css": "#import h2", "contains": "Nhập kế hoạch từ văn bản" }),
        json!({ "do": "fits_width" }),
        axe("quản trị (nhập kế hoạch)"),
        json!({ "do": "attach", "css": "#import-plan input[type=file]", "paths": [document.to_str().unwrap()] }),
        json!({ "do": "click", "css": "#import-plan button[type=submit]", "timeout": 30 }),
        json!({ "do": "expect_text", "css": "h1", "contains": "Xem lại kế hoạch nhập từ văn bản", "timeout": 30 }),
        json!({ "do": "expect_text", "css": "#import-document", "contains": "ke-hoach-chuyen-doi-so-ba-to.docx" }),
        json!({ "do": "expect_text", "css": "#task-0 .source-text", "contains": report["tasks"][0]["text"].as_str().unwrap().chars().take(30).collect::<String>() }),
        json!({ "do": "fits_width" }),
        axe("xem lại kế hoạch nhập từ văn bản"),
        json!({ "do": "screenshot", "path": artifacts.join("import-review-390.png").to_str().unwrap() }),
        json!({ "do": "window", "width": 1280, "height": 1000 }),
        json!({ "do": "screenshot", "path": artifacts.join("import-review.png").to_str().unwrap() }),
        json!({ "do": "window", "width": 390, "height": 900 }),
        json!({ "do": "fill", "css": format!("#a{corrected}-name"), "text": new_name }),
    ]);
    for (i, a) in agencies.iter().enumerate() {
        let code = a["code"].as_str().unwrap().to_lowercase();
        steps.push(json!({ "do": "fill", "css": format!("#a{i}-emails"), "text": format!("{code}@bato.example") }));
    }
    steps.extend([
        json!({ "do": "click", "css": "#import-review button[type=submit]", "timeout": 30 }),
        json!({ "do": "expect_url", "contains": format!("/plans/{plan}"), "timeout": 30 }),
        json!({ "do": "expect_text", "css": ".done", "contains": "Đã nạp kế hoạch" }),
        json!({ "do": "expect_text", "css": "#plan-document", "contains": "ke-hoach-chuyen-doi-so-ba-to.docx" }),
        json!({ "do": "fits_width" }),
        axe("tổng quan kế hoạch có văn bản gốc"),
        json!({ "do": "screenshot", "path": artifacts.join("import-plan-390.png").to_str().unwrap() }),
        json!({ "do": "download", "css": "#plan-document a.document-download", "as": "document" }),
        // The plan page offers the sheet of the state already reached.
        json!({ "do": "expect_text", "css": "#baseline-template", "contains": "Tải bảng Excel" }),
        json!({ "do": "window", "width": 1366, "height": 900 }),
        json!({ "do": "fits_width" }),
        json!({ "do": "screenshot", "path": artifacts.join("import-plan-1366.png").to_str().unwrap() }),
        // A task with coordinating agencies names them, by name.
        json!({ "do": "goto", "url": format!("{base}/tasks/{plan}/{coordinated}") }),
        json!({ "do": "expect_text", "css": ".meta", "contains": "Phối hợp" }),
        json!({ "do": "fits_width" }),
        json!({ "do": "screenshot", "path": artifacts.join("task-coordinators-1366.png").to_str().unwrap() }),
        json!({ "do": "window", "width": 390, "height": 900 }),
        json!({ "do": "fits_width" }),
        axe("nhiệm vụ có cơ quan phối hợp"),
        json!({ "do": "screenshot", "path": artifacts.join("task-coordinators-390.png").to_str().unwrap() }),
        // The admin page's upload of that sheet.
        json!({ "do": "goto", "url": format!("{base}/admin") }),
        json!({ "do": "scroll", "css": "#baseline" }),
        json!({ "do": "expect_text", "css": "#baseline h2", "contains": "Ghi nhận hiện trạng từ hồ sơ" }),
        json!({ "do": "fits_width" }),
        json!({ "do": "screenshot", "path": artifacts.join("admin-baseline-390.png").to_str().unwrap() }),
        json!({ "do": "window", "width": 1366, "height": 900 }),
        json!({ "do": "scroll", "css": "#baseline" }),
        json!({ "do": "fits_width" }),
        json!({ "do": "screenshot", "path": artifacts.join("admin-baseline-1366.png").to_str().unwrap() }),
        json!({ "do": "window", "width": 390, "height": 900 }),
        json!({ "do": "click", "css": "form.signout button" }),
    ]);
    let result = run_flow(work.path(), "import", steps);
    let downloaded = &result["texts"]["document"];
    assert_eq!(downloaded["sha256"], sha256_hex(&bytes), "{downloaded}");
    assert_eq!(downloaded["file"], "ke-hoach-chuyen-doi-so-ba-to.docx");

    // A member of the implementing agency finds the plan's tasks in the inbox.
    let member = add_user(&db, &base, &implementer, "Đinh Văn Thực", "thuc@bato.example", "member");
    let mut steps = vec![json!({ "do": "window", "width": 390, "height": 900 })];
    steps.extend(set_password(&member, "mat-khau-cua-thuc"));
    steps.extend([
        json!({ "do": "expect_text", "css": "#inbox", "contains": task }),
        json!({ "do": "expect_text", "css": format!("#inbox a[href^='/tasks/{plan}/']"), "contains": "" }),
        axe("hộp việc của cơ quan thực hiện kế hoạch mới"),
    ]);
    run_flow(work.path(), "inbox", steps);

    // The load event records the document the browser downloaded; the
    // corrected name is in the directory; audit verify passes.
    let out = bin()
        .args(["--db", db.to_str().unwrap(), "--format", "jsonl", "audit", "export"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let registered = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|e| e["event_type"] == "PlanRegistered" && e["aggregate_id"] == plan.as_str())
        .expect("the plan's load event");
    let body = &registered["payload"]["PlanRegistered"];
    assert_eq!(body["source"]["document"]["sha256"], downloaded["sha256"]);
    assert_eq!(body["source"]["document"]["file"], "ke-hoach-chuyen-doi-so-ba-to.docx");
    assert_eq!(body["stamp"]["by"]["email"], "tra@ubkt.example");
    assert!(
        body["agencies"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["name"] == new_name.as_str()),
        "{body}"
    );
    let verify = bin()
        .args(["--db", db.to_str().unwrap(), "audit", "verify"])
        .output()
        .unwrap();
    assert!(verify.status.success(), "{}{}", stdout(&verify), stderr(&verify));
    assert!(stdout(&verify).contains("1 văn bản gốc"), "{}", stdout(&verify));

    let _ = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let _ = child.wait();
}
