//! One vocabulary (issue 22, item 5), on both databases: a crawler signs in
//! as a member, a supervisor, an auditor and an administrator, opens every
//! page it can reach from the start page (and the downloads, calendar feed
//! and review report those pages link to), reads the e-mails a real SMTP
//! server received, and `audit history` as text and CSV; it fails on an
//! internal agency code outside a code column, a milestone key, an ISO or UTC
//! timestamp, an English word from the list below, a number with a decimal
//! point, and a state term that docs/words.md says not to use.

use crate::helpers::*;
use crate::on_both_stores;
use crate::web::App;
use regex::Regex;
use std::collections::{BTreeSet, VecDeque};

const FROM: &str = "Thị ủy Đức Phổ <kehoach@ducpho.example>";

/// English a person should never read (whole words, any case).
const ENGLISH: [&str; 16] = [
    "saved",
    "self-service",
    "pending",
    "approved",
    "overdue",
    "submitted",
    "returned",
    "waived",
    "cancelled",
    "outbox",
    "deadline",
    "milestone",
    "null",
    "undefined",
    "none",
    "error",
];

/// Agency codes a person would not recognise as words. "UBND" is also how
/// people write the name ("UBND thị xã"), so it is not among them.
fn codes() -> Vec<String> {
    shipped_plan()
        .agencies
        .iter()
        .map(|a| a.code.to_string())
        .filter(|c| c != "UBND")
        .collect()
}

/// The terms docs/words.md says not to use for a state.
fn avoided_terms() -> Vec<String> {
    let text = std::fs::read_to_string(repo_root().join("docs/words.md")).unwrap();
    let mut out = Vec::new();
    let mut column = None;
    for line in text.lines() {
        let cells: Vec<&str> = line.trim().trim_matches('|').split('|').map(str::trim).collect();
        if let Some(i) = cells.iter().position(|c| *c == "Không dùng") {
            column = Some(i);
            continue;
        }
        if !line.trim_start().starts_with('|') {
            column = None;
            continue;
        }
        if let Some(i) = column {
            if let Some(cell) = cells.get(i).filter(|c| !c.starts_with("---")) {
                out.extend(
                    cell.split(", ")
                        .map(str::trim)
                        .filter(|t| !t.is_empty())
                        .map(String::from),
                );
            }
        }
    }
    assert!(
        out.iter().any(|t| t == "trong hạn"),
        "the avoided terms of docs/words.md: {out:?}"
    );
    out
}

/// What a person reads in an HTML page: text between tags, and the
/// `title` and `aria-label` attributes (tooltips, what a screen reader says).
fn readable(html: &str) -> String {
    let without_scripts = Regex::new(r"(?is)<(script|style)\b.*?</(script|style)>")
        .unwrap()
        .replace_all(html, " ");
    // A code column ("Mã cơ quan") and hashes are codes by intent.
    let without_scripts =
        Regex::new(r#"(?is)<(td|th|code|span)\b[^>]*class="[^"]*\b(code|hash)\b[^"]*"[^>]*>.*?</(td|th|code|span)>"#)
            .unwrap()
            .replace_all(&without_scripts, " ")
            .into_owned();
    let attrs = Regex::new(r#"(?i)\s(?:title|aria-label|placeholder)="([^"]*)""#).unwrap();
    let mut out: Vec<String> = attrs
        .captures_iter(&without_scripts)
        .map(|c| c[1].to_string())
        .collect();
    let text = Regex::new(r"(?s)<[^>]*>").unwrap().replace_all(&without_scripts, " ");
    out.push(text.into_owned());
    out.join("\n")
        .replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
}

struct Checker {
    codes: Vec<Regex>,
    keys: Vec<Regex>,
    english: Vec<Regex>,
    avoided: Vec<String>,
    iso: Regex,
    decimal: Regex,
    long_number: Regex,
    found: Vec<String>,
}

impl Checker {
    fn new(milestone_keys: &BTreeSet<String>) -> Self {
        let word = |w: &str| {
            Regex::new(&format!(
                r"(?i)(^|[^\p{{L}}\p{{N}}_\-/#=.]){}($|[^\p{{L}}\p{{N}}_\-])",
                regex::escape(w)
            ))
            .unwrap()
        };
        Self {
            codes: codes()
                .iter()
                .map(|c| {
                    Regex::new(&format!(
                        r"(^|[^\p{{L}}\p{{N}}_\-/#=.]){}($|[^\p{{L}}\p{{N}}_\-])",
                        regex::escape(c)
                    ))
                    .unwrap()
                })
                .collect(),
            keys: milestone_keys.iter().map(|k| word(k)).collect(),
            english: ENGLISH.iter().map(|w| word(w)).collect(),
            avoided: avoided_terms(),
            iso: Regex::new(r"\b\d{4}-\d{2}-\d{2}\b|\bUTC\b|\d{2}:\d{2}Z\b|[+-]\d{2}:\d{2}\b").unwrap(),
            // A decimal point in a value people read: "0.8%", "2.5 m²".
            decimal: Regex::new(r"(^|[^\p{L}\p{N}.,/])\d+\.\d{1,2} ?(%|m²|m2|mô hình|ngày công|chính sách)").unwrap(),
            long_number: Regex::new(r"(^|[^\p{L}\p{N}.,/\-])\d{5,}($|[^\p{L}\p{N}.,\-])").unwrap(),
            found: Vec::new(),
        }
    }

    /// Checks one text a person reads; `where_` names it in the failure.
    /// Web addresses are left out: a person follows them, not reads them.
    fn text(&mut self, where_: &str, text: &str) {
        let text = &*Regex::new(r"https?://\S+").unwrap().replace_all(text, " ").into_owned();
        let mut report = |what: &str, m: &str| {
            let line = text
                .lines()
                .find(|l| l.contains(m.trim()))
                .unwrap_or("")
                .trim()
                .chars()
                .take(160)
                .collect::<String>();
            self.found.push(format!("{where_}: {what} {:?} in {line:?}", m.trim()));
        };
        for re in &self.codes {
            if let Some(m) = re.find(text) {
                report("agency code", m.as_str());
            }
        }
        for re in &self.keys {
            if let Some(m) = re.find(text) {
                report("milestone key", m.as_str());
            }
        }
        for re in &self.english {
            if let Some(m) = re.find(text) {
                report("English", m.as_str());
            }
        }
        for term in &self.avoided {
            let lower = text.to_lowercase();
            if lower.contains(&term.to_lowercase()) {
                report("state term not in docs/words.md", term);
            }
        }
        for re in [&self.iso, &self.decimal, &self.long_number] {
            if let Some(m) = re.find(text) {
                report("ISO/UTC time or number not written the Vietnamese way", m.as_str());
            }
        }
    }

    /// A CSV download: every cell except those of a code column ("Mã …").
    fn csv(&mut self, where_: &str, text: &str) {
        let rows = parse_csv(text);
        let Some(header) = rows.first() else { return };
        let skip: Vec<bool> = header
            .iter()
            .map(|h| h.trim_start_matches('\u{feff}').starts_with("Mã"))
            .collect();
        self.text(&format!("{where_} (header)"), &header.join(" | "));
        for (n, row) in rows.iter().enumerate().skip(1) {
            let cells: Vec<&str> = row
                .iter()
                .enumerate()
                .filter(|(i, _)| !skip.get(*i).copied().unwrap_or(false))
                .map(|(_, c)| c.as_str())
                .collect();
            self.text(&format!("{where_} row {n}"), &cells.join(" | "));
        }
    }
}

/// A small RFC 4180 reader (quoted cells, doubled quotes, CRLF).
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut cell = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cell.push('"');
                chars.next();
            }
            ('"', true) => quoted = false,
            ('"', false) if cell.is_empty() => quoted = true,
            (',', false) => row.push(std::mem::take(&mut cell)),
            ('\r', false) => {}
            ('\n', false) => {
                row.push(std::mem::take(&mut cell));
                rows.push(std::mem::take(&mut row));
            }
            (c, _) => cell.push(c),
        }
    }
    if !cell.is_empty() || !row.is_empty() {
        row.push(cell);
        rows.push(row);
    }
    rows
}

/// The cells of every sheet of an XLSX file, a row per line, code columns out.
fn xlsx_text(bytes: &[u8]) -> String {
    use calamine::{Reader, Xlsx};
    let mut book: Xlsx<_> = Xlsx::new(std::io::Cursor::new(bytes.to_vec())).expect("an XLSX file");
    let mut csv = String::new();
    for name in book.sheet_names().to_owned() {
        let range = book.worksheet_range(&name).expect("sheet");
        for row in range.rows() {
            let cells: Vec<String> = row
                .iter()
                .map(|c| format!("\"{}\"", c.to_string().replace('"', "\"\"")))
                .collect();
            csv.push_str(&cells.join(","));
            csv.push('\n');
        }
    }
    csv
}

/// Links of a page to follow: same site, GET, not signing out, not an
/// anchor; downloads included.
fn links(html: &str) -> Vec<String> {
    let href = Regex::new(r##"href="(/[^"#]*)"##).unwrap();
    // The calendar feed's address is shown to copy, not linked.
    let feed = Regex::new(r"https?://[^/\s]+(/calendar/[0-9a-f]+\.ics)").unwrap();
    href.captures_iter(html)
        .chain(feed.captures_iter(html))
        .map(|c| c[1].replace("&amp;", "&"))
        .filter(|l| !l.starts_with("/logout") && !l.starts_with("/signout") && !l.starts_with("/static"))
        .collect()
}

/// Crawls from the start page as the holder of `cookie`, checking what it
/// reads; at most `limit` pages. Returns how many it read.
async fn crawl(
    app: &App,
    who: &str,
    cookie: &str,
    checker: &mut Checker,
    seen: &mut BTreeSet<String>,
    limit: usize,
) -> usize {
    let mut queue: VecDeque<String> = VecDeque::from(["/".to_string()]);
    let mut read = 0;
    let mut own: BTreeSet<String> = BTreeSet::new();
    let paged = Regex::new(r"page=\d+").unwrap();
    while let Some(path) = queue.pop_front() {
        if read >= limit || !own.insert(path.clone()) {
            continue;
        }
        let r = app.page(&path, cookie).await;
        read += 1;
        if r.status != 200 {
            continue;
        }
        let kind = r.header("content-type").unwrap_or("").to_string();
        let where_ = format!("{who} {path}");
        // Pages another role already read are checked once.
        let first = seen.insert(format!("{path} {}", r.body.len()));
        if kind.starts_with("text/html") {
            if first {
                checker.text(&where_, &readable(&r.body));
            }
            for l in links(&r.body) {
                // One page of each list and filter is enough.
                let shape = paged.replace(&l, "page=N").into_owned();
                if shape == l || !own.contains(&shape) {
                    queue.push_back(l);
                }
            }
        } else if kind.starts_with("text/csv") {
            checker.csv(&where_, &r.body);
        } else if kind.starts_with("text/calendar") {
            // Unfold (RFC 5545: a line starting with a space continues
            // the one before), then the texts people read.
            let unfolded = r.body.replace("\r\n ", "").replace("\n ", "");
            let text: String = unfolded
                .lines()
                .filter(|l| {
                    ["SUMMARY", "DESCRIPTION", "X-WR-CALNAME", "X-WR-CALDESC"]
                        .iter()
                        .any(|k| l.starts_with(k))
                })
                .map(|l| l.replace("\\n", "\n").replace("\\,", ",").replace("\\;", ";"))
                .collect::<Vec<_>>()
                .join("\n");
            checker.text(&where_, &text);
        } else if kind.contains("spreadsheetml") {
            let bytes = http_bytes(app, &path, cookie).await;
            checker.csv(&where_, &xlsx_text(&bytes));
        }
    }
    read
}

async fn http_bytes(app: &App, path: &str, cookie: &str) -> Vec<u8> {
    let out = std::process::Command::new("curl")
        .args([
            "-s",
            "-H",
            &format!("Cookie: {cookie}"),
            &format!("http://127.0.0.1:{}{path}", app.port),
        ])
        .output()
        .expect("curl");
    out.stdout
}

async fn one_vocabulary_everywhere(kind: &str) {
    let app = App::shipped(kind, "2024-02-01T08:00:00+07:00").await;
    let db = app.db();
    let smtp = SmtpServer::start();
    let cli = |args: &[&str]| {
        let out = bin()
            .args(["--db", &db.url()])
            .args(args)
            .env("KEHOACH_SMTP_URL", smtp.url())
            .env("KEHOACH_MAIL_FROM", FROM)
            .output()
            .expect("run kehoach");
        assert!(out.status.success(), "{args:?}: {}{}", stdout(&out), stderr(&out));
        stdout(&out)
    };
    // A season of work: reports, submissions, an approval, a return, an
    // extension, a waiver, a message; the digests of those days.
    let ubnd = cli_user(db, "UBND", "Nguyễn Văn Ủy", "member");
    let mttq = cli_user(db, "MTTQ", "Hồ Thị Mặt", "member");
    let btv = cli_user(db, "BTV", "Lê Văn Thường", "supervisor");
    let register = ["III.1.2", "--milestone", "register-2024"];
    let act = |at: &str, action: &str, target: &[&str], extra: &[&str]| {
        cli(&[&["--now", at, "task", action][..], target, extra].concat());
    };
    cli(&["--now", "2024-03-20T08:00:00+07:00", "remind", "--once"]);
    act(
        "2024-03-25T09:00:00+07:00",
        "report",
        &register,
        &[
            "--user",
            &ubnd,
            "--note",
            "Đã đăng ký 02 mô hình",
            "--kpi",
            "mo-hinh-dan-van-kheo=2",
        ],
    );
    act("2024-03-25T09:10:00+07:00", "submit", &register, &["--user", &ubnd]);
    act(
        "2024-03-26T09:00:00+07:00",
        "approve",
        &register,
        &["--user", &btv, "--agency", "UBND"],
    );
    act("2024-03-26T09:30:00+07:00", "submit", &register, &["--user", &mttq]);
    act(
        "2024-03-27T09:00:00+07:00",
        "return",
        &register,
        &[
            "--user",
            &btv,
            "--agency",
            "MTTQ",
            "--reason",
            "Thiếu danh sách mô hình",
        ],
    );
    act(
        "2024-03-27T10:00:00+07:00",
        "extend",
        &register,
        &[
            "--user",
            &btv,
            "--agency",
            "TMGV",
            "--until",
            "2024-04-15",
            "--reason",
            "Chờ hướng dẫn",
        ],
    );
    act(
        "2024-03-27T10:30:00+07:00",
        "waive",
        &register,
        &["--user", &btv, "--agency", "DUCB", "--reason", "Đã sáp nhập"],
    );
    cli(&["--now", "2024-03-27T11:00:00+07:00", "remind", "--once"]);
    cli(&["--now", "2024-04-02T08:00:00+07:00", "remind", "--once"]);
    cli(&["--now", "2024-04-09T08:00:00+07:00", "remind", "--once"]);

    let keys: BTreeSet<String> = {
        let store = kehoach::store::Store::open(&db.db_url()).await.unwrap();
        store
            .task_views()
            .await
            .unwrap()
            .iter()
            .flat_map(|v| v.task.milestones.iter().map(|m| m.spec.id.to_string()))
            .collect()
    };
    let mut checker = Checker::new(&keys);

    // The e-mails: digests and personal notices, their plain-text part.
    let messages = smtp.messages();
    assert!(messages.len() > 5, "the season sent digests: {}", messages.len());
    for m in &messages {
        let to = m["rcpt_to"].to_string();
        checker.text(
            &format!("e-mail to {to} subject"),
            m["subject"].as_str().unwrap_or_default(),
        );
        checker.text(&format!("e-mail to {to}"), m["text"].as_str().unwrap_or_default());
    }

    // `audit history`, as text and as CSV.
    let history = cli(&["--now", "2024-04-09T09:00:00+07:00", "audit", "history", "III.1.2"]);
    // Its "Mã băm" column is a code column: hash prefixes out.
    let history = Regex::new(r"\b[0-9a-f]{12}\b").unwrap().replace_all(&history, " ");
    checker.text("audit history", &history);
    let csv = cli(&[
        "--now",
        "2024-04-09T09:00:00+07:00",
        "--format",
        "csv",
        "audit",
        "history",
        "III.1.2",
    ]);
    checker.csv("audit history --format csv", &csv);

    // Every page each role reaches, from the start page.
    app.clock.set(at("2024-04-09T09:00:00+07:00"));
    let mut seen = BTreeSet::new();
    let mut pages = 0;
    for (agency, name, roles) in [
        ("UBND", "Trần Thị Bình", "member"),
        ("BTV", "Phạm Văn Duyệt", "supervisor"),
        ("UBKT", "Phạm Thanh Tra", "auditor"),
        ("BDV", "Quản Trị Viên", "admin"),
    ] {
        let user = app.user(agency, name, roles).await;
        let (cookie, _) = app.session(&user).await;
        pages += crawl(&app, roles, &cookie, &mut checker, &mut seen, 150).await;
    }
    assert!(pages > 40, "the crawler read {pages} pages");
    assert!(
        seen.iter().any(|p| p.starts_with("/calendar/")),
        "the calendar feed was read"
    );
    assert!(
        seen.iter().any(|p| p.contains("format=xlsx")),
        "an Excel download was read"
    );
    assert!(seen.iter().any(|p| p.contains("format=csv")), "a CSV download was read");
    // The review report, wherever the auditor's desk links it or not.
    let auditor = app.user("UBKT", "Lê Thị Soát", "auditor").await;
    let (cookie, _) = app.session(&auditor).await;
    let review = app.page("/audit/review?year=2024", &cookie).await;
    assert_eq!(review.status, 200);
    checker.text("review report 2024", &readable(&review.body));

    let found: BTreeSet<String> = checker.found.into_iter().collect();
    assert!(
        found.is_empty(),
        "{} places read a code, key, ISO time, English word, decimal point or avoided term:\n{}",
        found.len(),
        found.into_iter().collect::<Vec<_>>().join("\n")
    );
}
on_both_stores!(one_vocabulary, one_vocabulary_everywhere);
