//! `kehoach plan import`: documents of plans read into draft plan files,
//! scored against answer keys written by hand, filled in and loaded; and
//! documents that cannot be read refused with one line, writing nothing.

use crate::helpers::*;
use crate::on_both_stores;
use std::io::Write;
use std::path::{Path, PathBuf};

fn import(db: &TestDb, document: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "plan",
        "import",
        document.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    kehoach(db, &args)
}

/// `scripts/score-import KEY CANDIDATE`: the printed score line, and
/// whether it reached `min` percent.
fn score(key: &Path, candidate: &Path, min: u32) -> (bool, String) {
    let out = std::process::Command::new(python())
        .arg(repo_root().join("scripts/score-import"))
        .args([
            key.to_str().unwrap(),
            candidate.to_str().unwrap(),
            "--min",
            &min.to_string(),
        ])
        .output()
        .expect("run scripts/score-import");
    let text = stdout(&out);
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "score-import failed to run: {}{}",
        text,
        stderr(&out)
    );
    (out.status.success(), text)
}

/// The fixtures: each directory under tests/fixtures/import with a key and
/// a document.
fn fixtures() -> Vec<(String, PathBuf, PathBuf)> {
    let root = repo_root().join("tests/fixtures/import");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&root).unwrap() {
        let dir = entry.unwrap().path();
        let key = dir.join("key.toml");
        let document = ["plan.docx", "plan.txt"]
            .iter()
            .map(|n| dir.join(n))
            .find(|p| p.is_file());
        if let (true, Some(document)) = (key.is_file(), document) {
            out.push((dir.file_name().unwrap().to_string_lossy().into_owned(), key, document));
        }
    }
    out.sort();
    out
}

#[test]
fn the_shipped_document_imports_back_to_the_shipped_plan() {
    let db = TestDb::sqlite();
    let dir = tempfile::tempdir().unwrap();
    let draft = dir.path().join("draft.toml");
    let report = dir.path().join("report.json");
    let out = import(
        &db,
        &repo_root().join("tests/fixtures/import/duc-pho/plan.txt"),
        &draft,
        &["--report", report.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("45 nhiệm vụ"), "{}", stderr(&out));
    let (ok, text) = score(&shipped_plan_path(), &draft, 100);
    assert!(ok, "{text}");
    assert!(text.contains("score: 45/45"), "{text}");
    // The report names each doubt with its line and the words it quotes.
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let doubts = report["doubts"].as_array().expect("doubts");
    assert!(!doubts.is_empty());
    for d in doubts {
        assert!(d["line"].as_u64().is_some_and(|l| l > 0), "{d}");
        assert!(!d["message"].as_str().unwrap_or("").is_empty(), "{d}");
        assert!(!d["quote"].as_str().unwrap_or("").is_empty(), "{d}");
    }
    // The draft is a plan file: `plan check` accepts it as it is.
    let check = kehoach(&db, &["plan", "check", draft.to_str().unwrap()]);
    assert!(check.status.success(), "{}", stderr(&check));
}

#[test]
fn every_fixture_plan_scores_at_least_95_percent() {
    let db = TestDb::sqlite();
    let dir = tempfile::tempdir().unwrap();
    let all = fixtures();
    assert!(all.len() >= 5, "fixtures: {all:?}");
    let mut failed = Vec::new();
    for (name, key, document) in &all {
        let draft = dir.path().join(format!("{name}.toml"));
        let out = import(&db, document, &draft, &[]);
        assert!(out.status.success(), "{name}: {}", stderr(&out));
        let check = kehoach(&db, &["plan", "check", draft.to_str().unwrap()]);
        assert!(check.status.success(), "{name}: {}", stderr(&check));
        let (ok, text) = score(key, &draft, 95);
        eprintln!("{name}: {}", text.lines().last().unwrap_or(""));
        if !ok {
            failed.push(format!("{name}:\n{text}"));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

/// Gives every agency of a draft an address, as the person reviewing it would.
fn fill_addresses(draft: &Path) {
    let text = std::fs::read_to_string(draft).unwrap();
    let mut out = String::new();
    let mut code = String::new();
    for line in text.lines() {
        if let Some(c) = line.strip_prefix("code = ") {
            code = c.trim_matches('"').to_lowercase();
        }
        if line == "emails = []" {
            out.push_str(&format!("emails = [\"{code}@sontinh.example\"]\n"));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    std::fs::write(draft, out).unwrap();
}

#[test]
fn a_plan_of_2000_tasks_imports_and_loads() {
    let db = TestDb::sqlite();
    let dir = tempfile::tempdir().unwrap();
    let document = dir.path().join("ke-hoach-lon.txt");
    std::fs::write(&document, kehoach::plan::import::sample::text(2000)).unwrap();
    let draft = dir.path().join("lon.toml");
    let out = import(&db, &document, &draft, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    fill_addresses(&draft);
    let size = std::fs::metadata(&draft).unwrap().len();
    assert!(size > 1024 * 1024, "the draft is {size} bytes: over the old 1 MiB cap");
    let load = kehoach(&db, &["--format", "json", "plan", "load", draft.to_str().unwrap()]);
    assert!(load.status.success(), "{}", stderr(&load));
    let report: serde_json::Value = serde_json::from_slice(&load.stdout).unwrap();
    // The 2,000 items and the one of "Tổ chức thực hiện".
    assert_eq!(report[0]["tasks"], 2001, "{report}");

    // Above the cap: one line, exit 2, nothing loaded.
    let huge = dir.path().join("qua-lon.toml");
    let text = std::fs::read_to_string(&draft).unwrap();
    std::fs::write(&huge, format!("{text}\n# {}\n", "x".repeat(8 * 1024 * 1024))).unwrap();
    let refused = kehoach(&db, &["plan", "load", huge.to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        stderr(&refused).contains("tệp kế hoạch quá lớn"),
        "{}",
        stderr(&refused)
    );
}

async fn a_table_plan_loads_with_its_coordinators(kind: &str) {
    let db = TestDb::of(kind).await;
    let dir = tempfile::tempdir().unwrap();
    let draft = dir.path().join("ba-to.toml");
    let out = import(
        &db,
        &repo_root().join("tests/fixtures/import/ubnd-ba-to-table/plan.docx"),
        &draft,
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    fill_addresses(&draft);
    let load = kehoach(&db, &["--now", "2025-03-01", "plan", "load", draft.to_str().unwrap()]);
    assert!(load.status.success(), "{}", stderr(&load));
    // The task where "Trung tâm Y tế huyện" coordinates: the agency sees it,
    // named as a coordinator, and owes nothing on it.
    let text = std::fs::read_to_string(&draft).unwrap();
    let code = text
        .split("[[agencies]]")
        .find(|a| a.contains("name = \"Trung tâm Y tế huyện\""))
        .and_then(|a| a.lines().find_map(|l| l.strip_prefix("code = ")))
        .map(|c| c.trim_matches('"').to_string())
        .expect("Trung tâm Y tế in the directory");
    let list = kehoach(&db, &["--format", "json", "task", "list", "--agency", &code]);
    assert!(list.status.success(), "{}", stderr(&list));
    let tasks: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    let tasks = tasks.as_array().unwrap();
    assert!(!tasks.is_empty(), "a coordinator sees its tasks");
    for t in tasks {
        let coordinators: Vec<&str> = t["coordinators"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|c| c.as_str())
            .collect();
        assert!(coordinators.contains(&code.as_str()), "{t}");
        let implementers: Vec<&str> = t["implementers"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|c| c.as_str())
            .collect();
        assert!(!implementers.contains(&code.as_str()), "{t}");
    }
    let verify = kehoach(&db, &["audit", "verify"]);
    assert!(verify.status.success(), "{}", stderr(&verify));
}
on_both_stores!(table_plan_with_coordinators, a_table_plan_loads_with_its_coordinators);

/// A zip whose one entry unpacks to `size` bytes of zeros.
fn zip_of(name: &str, size: usize, extra: &[(&str, &[u8])]) -> Vec<u8> {
    let mut buffer = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut buffer);
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .large_file(size > u32::MAX as usize / 2);
        for (n, bytes) in extra {
            zip.start_file(*n, options).unwrap();
            zip.write_all(bytes).unwrap();
        }
        zip.start_file(name, options).unwrap();
        let chunk = vec![0u8; 1 << 20];
        let mut left = size;
        while left > 0 {
            let n = left.min(chunk.len());
            zip.write_all(&chunk[..n]).unwrap();
            left -= n;
        }
        zip.finish().unwrap();
    }
    buffer.into_inner()
}

/// An OLE2 compound file whose directory names `stream` (UTF-16), as Word
/// writes a password-protected document or an old .doc.
fn ole2_with(stream: &str) -> Vec<u8> {
    let mut bytes = vec![0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];
    bytes.resize(512, 0);
    bytes.extend(stream.encode_utf16().flat_map(u16::to_le_bytes));
    bytes.resize(4096, 0);
    bytes
}

#[test]
fn documents_that_cannot_be_read_get_one_line_and_write_nothing() {
    let db = TestDb::sqlite();
    let dir = tempfile::tempdir().unwrap();
    let content_types = br#"<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Override PartName="/word/document.xml" ContentType="application/vnd.ms-word.document.macroEnabled.main+xml"/></Types>"#;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("anh.docx", b"\x89PNG\r\n\x1a\n0000".to_vec(), "không phải văn bản Word"),
        ("cu.doc", ole2_with("WordDocument"), "Word 97"),
        (
            "macro.docm",
            zip_of("word/document.xml", 10, &[("[Content_Types].xml", content_types)]),
            "macro",
        ),
        (
            "macro-doi-ten.docx",
            zip_of("word/vbaProject.bin", 10, &[("[Content_Types].xml", content_types)]),
            "macro",
        ),
        ("mat-khau.docx", ole2_with("EncryptedPackage"), "mật khẩu"),
        (
            "bom.docx",
            zip_of("word/document.xml", 300 * 1024 * 1024, &[]),
            "zip bomb",
        ),
        ("lon.txt", vec![b'a'; 50 * 1024 * 1024], "quá lớn"),
        (
            "trong.txt",
            "KẾ HOẠCH\nKhông có gì để làm.\n".as_bytes().to_vec(),
            "không tìm thấy nhiệm vụ",
        ),
        ("latin1.txt", b"K\xca HO\xa0CH\n".to_vec(), "UTF-8"),
    ];
    for (name, bytes, expected) in cases {
        let document = dir.path().join(name);
        std::fs::write(&document, &bytes).unwrap();
        let draft = dir.path().join(format!("{name}.toml"));
        let report = dir.path().join(format!("{name}.json"));
        let out = import(&db, &document, &draft, &["--report", report.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{name}: {}", stderr(&out));
        let err = stderr(&out);
        let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{name}: {lines:?}");
        assert!(lines[0].contains(name), "{name}: names the file: {}", lines[0]);
        assert!(lines[0].contains(expected), "{name}: {}", lines[0]);
        assert!(!draft.exists() && !report.exists(), "{name}: nothing written");
    }
    let missing = import(&db, &dir.path().join("khong-co.docx"), &dir.path().join("x.toml"), &[]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(stderr(&missing).contains("khong-co.docx"), "{}", stderr(&missing));
}

#[test]
fn a_directory_keeps_the_codes_and_addresses_already_in_use() {
    let db = TestDb::sqlite();
    let dir = tempfile::tempdir().unwrap();
    let draft = dir.path().join("draft.toml");
    let out = import(
        &db,
        &repo_root().join("tests/fixtures/import/duc-pho/plan.txt"),
        &draft,
        &["--directory", shipped_plan_path().to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let imported: toml::Value = toml::from_str(&std::fs::read_to_string(&draft).unwrap()).unwrap();
    let shipped: toml::Value = toml::from_str(&std::fs::read_to_string(shipped_plan_path()).unwrap()).unwrap();
    let by_code = |v: &toml::Value, code: &str| {
        v["agencies"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["code"].as_str() == Some(code))
            .cloned()
    };
    for code in ["UBND", "MTTQ", "BDV", "BTV"] {
        let mine = by_code(&imported, code).unwrap_or_else(|| panic!("{code} kept its code"));
        let theirs = by_code(&shipped, code).unwrap();
        assert_eq!(mine["emails"], theirs["emails"], "{code}");
    }
    // The same from a loaded plan, by its id.
    let load = kehoach(&db, &["plan", "load", shipped_plan_path().to_str().unwrap()]);
    assert!(load.status.success(), "{}", stderr(&load));
    let again = dir.path().join("again.toml");
    let out = import(
        &db,
        &repo_root().join("tests/fixtures/import/duc-pho/plan.txt"),
        &again,
        &["--directory", "duc-pho-de-an-13"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let imported: toml::Value = toml::from_str(&std::fs::read_to_string(&again).unwrap()).unwrap();
    assert!(by_code(&imported, "UBND").is_some());
    let unknown = import(
        &db,
        &repo_root().join("tests/fixtures/import/duc-pho/plan.txt"),
        &dir.path().join("x.toml"),
        &["--directory", "khong-co-ke-hoach-nay"],
    );
    assert_eq!(unknown.status.code(), Some(2));
}
