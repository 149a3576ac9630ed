//! Output a person can trust (issue 22, items 6 and 7), on both databases:
//! a note carrying a terminal escape or a bidi control is refused on every
//! channel and writes nothing; a JSON body with a key twice is refused; a
//! person named like a spreadsheet formula is text in every CSV; an older
//! record's control characters are shown, never obeyed, by `audit
//! history`; log lines carry no colour codes off a terminal, and are JSON
//! with `--log-format json`.

use crate::helpers::*;
use crate::on_both_stores;
use crate::web::App;
use serde_json::{json, Value};

const TASK: &str = "II.2.1.1";

fn code(r: &Resp) -> Value {
    r.json()["error"]["code"].clone()
}

async fn escapes_and_duplicate_keys_are_refused(kind: &str) {
    let app = App::shipped(kind, "2023-06-01").await;
    let member = app.token("UBND", "Trần Thị B", "member").await;
    let t = app.get(&format!("/api/tasks/{TASK}"), &member).await.json();
    let m = t["milestones"][0]["id"].as_str().unwrap().to_string();
    let report = format!("/api/tasks/{TASK}/milestones/{m}/report");
    let before = app.events().await;

    // ESC [2J clears an auditor's terminal; U+202E reverses what follows.
    for note in ["Đã xong\u{1b}[2J", "hoá đơn\u{202E}fdp.exe", "a\u{7}b"] {
        let r = app.post(&report, &member, &json!({ "note": note })).await;
        assert_eq!((r.status, code(&r)), (422, json!("forbidden_character")), "{}", r.body);
        let message = r.json()["error"]["message"].as_str().unwrap().to_string();
        assert!(message.contains("ghi chú chứa ký tự điều khiển U+"), "{message}");
    }
    // Line breaks and tabs are what people write.
    let r = app
        .post(&report, &member, &json!({ "note": "Dòng một\r\nDòng hai\tcột" }))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let after_one = app.events().await;
    assert!(after_one > before);

    // The same key twice: which one a parser keeps differs; refused.
    let auth = format!("Bearer {member}");
    let json_headers = [("Authorization", auth.as_str()), ("Content-Type", "application/json")];
    for (body, key) in [
        (&br#"{"note": "mot", "note": "hai"}"#[..], "\"note\""),
        (&br#"{"note": "x", "kpis": {"a": 1, "a": 2}}"#[..], "\"a\""),
    ] {
        let r = http(app.port, "POST", &report, &json_headers, body).await;
        assert_eq!((r.status, code(&r)), (422, json!("duplicate_key")), "{}", r.body);
        let message = r.json()["error"]["message"].as_str().unwrap().to_string();
        assert!(message.contains(key), "{message}");
    }
    assert_eq!(app.events().await, after_one, "nothing written by a refusal");

    // A date hint names the form this endpoint accepts, and no other.
    let r = app.get("/api/tasks?due_before=31/03/2024", &member).await;
    assert_eq!(r.status, 400, "{}", r.body);
    let message = r.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(
        message.contains("YYYY-MM-DD") && !message.contains("DD/MM/YYYY"),
        "{message}"
    );

    // The web forms refuse it too (here "Trao đổi").
    let user = app.user("UBND", "Trần Thị B", "member").await;
    let (cookie, csrf) = app.session(&user).await;
    let after_one = app.events().await;
    let r = app
        .form(
            &format!("/tasks/duc-pho-de-an-13/{TASK}/milestones/{m}/discuss"),
            &cookie,
            &[("csrf", &csrf), ("note", "x\u{1b}]8;;http://evil\u{1b}\\y")],
        )
        .await;
    assert!(r.status == 422 || r.status == 303, "{}: {}", r.status, r.body);
    assert_eq!(app.events().await, after_one, "nothing written by a refusal");
}
on_both_stores!(escapes_and_duplicate_keys, escapes_and_duplicate_keys_are_refused);

async fn a_formula_name_is_text_in_every_csv(kind: &str) {
    let db = TestDb::of(kind).await;
    let out = kehoach(
        &db,
        &["--now", "2024-02-01", "plan", "load", "workflows/duc-pho-de-an-13.toml"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let name = "=HYPERLINK(\"http://evil.example\",\"Bấm\")";
    let email = "formula.mttq@ducpho.example";
    let out = kehoach(
        &db,
        &[
            "user", "add", "--agency", "MTTQ", "--name", name, "--email", email, "--role", "member",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = kehoach(
        &db,
        &[
            "--now",
            "2024-03-20T09:00:00+07:00",
            "task",
            "submit",
            "III.2.1.2",
            "--milestone",
            "report-2024",
            "--user",
            email,
            "--note=-1 mô hình, +2 mô hình",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    // A note with an escape is refused from the command line too (exit 2).
    let out = kehoach(
        &db,
        &[
            "--now",
            "2024-03-20T09:05:00+07:00",
            "task",
            "report",
            "III.2.1.2",
            "--milestone",
            "report-2024",
            "--user",
            email,
            "--note",
            "\u{1b}[31mđỏ",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("U+001B"), "{}", stderr(&out));

    let out = kehoach(&db, &["--format", "csv", "audit", "history", "III.2.1.2"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let csv = stdout(&out);
    let line = csv
        .lines()
        .find(|l| l.contains("HYPERLINK"))
        .unwrap_or_else(|| panic!("{csv}"));
    // Every field that starts like a formula starts with an apostrophe.
    for field in line.split(',') {
        let f = field.trim_start_matches('"');
        assert!(!f.starts_with(['=', '+', '-', '@']), "{field:?} in {line}");
    }
    assert!(line.contains("\"'=HYPERLINK("), "{line}");
}
on_both_stores!(formula_names_in_csv, a_formula_name_is_text_in_every_csv);

/// Log lines off a terminal: no colour codes; with `--log-format json`, one
/// JSON object per line.
#[test]
fn logs_are_plain_off_a_terminal_and_json_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("k.db").display());
    let run = |extra: &[&str]| {
        let out = bin()
            .env("KEHOACH_LOG", "debug")
            .args(["--db", &db])
            .args(extra)
            .args(["plan", "load", "workflows/duc-pho-de-an-13.toml"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        stderr(&out)
    };
    let text = run(&[]);
    assert!(!text.trim().is_empty(), "some log lines at debug");
    assert!(!text.contains('\u{1b}'), "{text:?}");
    let json_lines = run(&["--log-format", "json"]);
    let lines: Vec<&str> = json_lines.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty());
    for l in lines {
        let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
        assert!(v["level"].is_string() && v["fields"].is_object(), "{l}");
    }
}

/// Holidays still marked as estimates in a year that has begun: `plan
/// check` says so in one line (and `serve` at start), not before.
#[test]
fn estimated_holidays_of_a_year_begun_are_named() {
    let check = |now: &str| {
        let out = bin()
            .args(["--now", now, "plan", "check", "workflows/duc-pho-de-an-13.toml"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        stderr(&out)
    };
    let before = check("2025-12-31");
    assert!(!before.contains("ước tính"), "{before}");
    let now = check("2026-12-07");
    let lines: Vec<&str> = now.lines().filter(|l| l.contains("ước tính")).collect();
    assert_eq!(lines.len(), 1, "{now}");
    for day in ["22/08/2026", "31/08/2026", "01/09/2026", "24/11/2026"] {
        assert!(lines[0].contains(day), "{day}: {now}");
    }
    // 2027 is outside the plan's period: never named.
    assert!(!lines[0].contains("2027"), "{now}");
}

/// A plan file whose agency name carries a terminal escape is refused with
/// its line; so is a new account whose name carries a bidi override.
#[test]
fn escapes_in_a_plan_file_or_a_new_name_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(repo_root().join("workflows/duc-pho-de-an-13.toml")).unwrap();
    let first = text.find("\nname = \"").expect("an agency name") + "\nname = \"".len();
    let mut bad = text.clone();
    // TOML refuses a raw ESC but takes the escape `\u001B`.
    bad.insert_str(first, "\\u001B[2J");
    let line = bad[..first].lines().count();
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, &bad).unwrap();
    let out = bin().args(["plan", "check", file.to_str().unwrap()]).output().unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains(&format!("bad.toml:{line}:")) && err.contains("U+001B"),
        "{err}"
    );

    let db = TestDb::sqlite();
    let out = kehoach(&db, &["plan", "load", "workflows/duc-pho-de-an-13.toml"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = kehoach(
        &db,
        &[
            "user",
            "add",
            "--agency",
            "UBND",
            "--name",
            "Lê\u{202E}nâV",
            "--email",
            "le@ubnd.example",
            "--role",
            "member",
        ],
    );
    assert!(!out.status.success(), "{}", stdout(&out));
    assert!(stderr(&out).contains("U+202E"), "{}", stderr(&out));
}
