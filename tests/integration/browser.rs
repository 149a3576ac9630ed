//! End to end in a real browser (Debian's headless Chromium through
//! ChromeDriver): an implementer signs in from a one-time link and submits a
//! milestone; a supervisor of the lead agency approves it; the task's
//! history shows both. The inbox screenshot is kept as a test artifact.

use crate::helpers::*;
use serde_json::{json, Value};

/// Runs `kehoach user add` against the served database; returns the sign-in link.
fn add_user(db: &std::path::Path, base: &str, agency: &str, name: &str, email: &str, role: &str) -> String {
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

fn run_flow(dir: &std::path::Path, name: &str, steps: Vec<Value>) -> Value {
    let file = dir.join(format!("{name}.json"));
    std::fs::write(&file, serde_json::to_vec(&json!({ "steps": steps })).unwrap()).unwrap();
    let out = std::process::Command::new(python())
        .arg(repo_root().join("tests/support/webdriver_flow.py"))
        .arg(&file)
        .output()
        .expect("run webdriver_flow.py");
    assert!(
        out.status.success(),
        "browser flow {name} failed (run scripts/test-services if Chromium is missing):\n{}",
        stderr(&out)
    );
    serde_json::from_slice(&out.stdout).expect("flow result")
}

/// The link to `path` in the first reminder e-mail to `agency` (quoted-printable soft breaks undone).
fn reminder_link(outbox: &std::path::Path, agency: &str, path: &str) -> String {
    for _ in 0..100 {
        let files: Vec<_> = std::fs::read_dir(outbox)
            .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        for f in files.iter().filter(|f| {
            f.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(&format!("digest.{agency}.")))
        }) {
            let text = std::fs::read_to_string(f)
                .unwrap()
                .replace("=\r\n", "")
                .replace("=\n", "");
            if let Some(at) = text.find(path) {
                let start = text[..at].rfind("http").expect("absolute link");
                return text[start..at + path.len()].to_string();
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    panic!("no reminder to {agency} links to {path}");
}

fn set_password(link: &str, password: &str) -> Vec<Value> {
    vec![
        json!({ "do": "goto", "url": link }),
        json!({ "do": "expect_text", "css": "h1", "contains": "Đặt mật khẩu" }),
        json!({ "do": "fill", "css": "input[name=password]", "text": password }),
        json!({ "do": "fill", "css": "input[name=password2]", "text": password }),
        json!({ "do": "click", "css": "#set-password button[type=submit]" }),
        json!({ "do": "expect_url", "contains": "/inbox" }),
    ]
}

#[test]
fn implementer_submits_and_lead_supervisor_approves_in_a_browser() {
    let (dir, port, mut child) = serve_in_new_dir(&[("KEHOACH_NOW", "2023-01-20T09:00:00+07:00")]);
    let db = dir.path().join("data/kehoach.db");
    assert_eq!(wait_until_loaded(&db, &mut child), 45);
    let base = format!("http://127.0.0.1:{port}");
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
        ],
    );

    // The implementer sets a password from the one-time link and sees the
    // inbox; later opens the reminder's link, signs in with e-mail and
    // password, lands on the task and submits the milestone.
    let mut steps = set_password(&implementer, "mat-khau-cua-an");
    steps.extend([
        json!({ "do": "expect_text", "css": "#inbox", "contains": "II.1.1" }),
        json!({ "do": "screenshot", "path": inbox_png }),
        json!({ "do": "click", "css": "form.signout button" }),
        json!({ "do": "expect_url", "contains": "/signin" }),
        json!({ "do": "goto", "url": link }),
        json!({ "do": "expect_url", "contains": "/signin?next=" }),
        json!({ "do": "fill", "css": "input[name=email]", "text": "an@bdv.example" }),
        json!({ "do": "fill", "css": "input[name=password]", "text": "mat-khau-cua-an" }),
        json!({ "do": "click", "css": "#signin button[type=submit]" }),
        json!({ "do": "expect_url", "contains": "/tasks/duc-pho-de-an-13/II.1.1" }),
        json!({ "do": "fill", "css": "form[data-action=submit] textarea[name=note]", "text": "Đã ban hành kế hoạch" }),
        json!({ "do": "click", "css": "form[data-action=submit] button[type=submit]" }),
        json!({ "do": "expect_text", "css": ".done", "contains": "Đã ghi nhận" }),
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
        json!({ "do": "click", "css": "#queue a.button" }),
        json!({ "do": "fill", "css": "form[data-action=approve] textarea[name=note]", "text": "Đồng ý" }),
        json!({ "do": "click", "css": "form[data-action=approve] button[type=submit]" }),
        json!({ "do": "expect_text", "css": "#m-complete .status", "contains": "đã duyệt" }),
        json!({ "do": "expect_text", "css": "#history", "contains": "Nộp mốc complete" }),
        json!({ "do": "expect_text", "css": "#history", "contains": "Duyệt mốc complete" }),
        json!({ "do": "text", "css": "#history", "as": "history" }),
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
