//! Words people read, on both databases: the admin and account pages, the
//! task history (page and `audit history`), the calendar feed and the
//! review report of the shipped plan show milestones by title, KPIs by
//! label and unit, roles in Vietnamese, never a raw milestone id, KPI key or
//! English role name. Error pages lead back where the user came from.

use crate::helpers::*;
use crate::on_both_stores;
use crate::web::App;
use kehoach::domain::ids::KpiKey;
use kehoach::domain::task::{KpiValue, TaskAction};

const PLAN: &str = "duc-pho-de-an-13";
const TASK: &str = "II.2.1.1";
const ENGLISH_ROLES: [&str; 4] = ["member", "supervisor", "auditor", "admin"];

/// The text a person sees in an HTML page: tags (and so attribute values,
/// URLs, ids and form field names) left out, entities as written.
fn visible_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                out.push(' ');
            }
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

/// The part of a page inside the element that starts with `open` (up to
/// the next `</section>`).
fn section<'a>(html: &'a str, open: &str) -> &'a str {
    let start = html.find(open).unwrap_or_else(|| panic!("{open} in the page"));
    let rest = &html[start..];
    &rest[..rest.find("</section>").unwrap_or(rest.len())]
}

/// Fails naming `what` if `text` shows any of the raw words.
fn assert_no_raw(what: &str, text: &str, raw: &[String]) {
    let words: Vec<String> = text
        .split(|c: char| !(c.is_alphanumeric() || c == '-' || c == '.'))
        .map(|w| w.trim_matches('.').to_lowercase())
        .collect();
    for r in raw {
        assert!(
            !words.iter().any(|w| w == r),
            "{what} shows the raw word {r:?}:\n{text}"
        );
    }
    for role in ENGLISH_ROLES {
        assert!(
            !words.iter().any(|w| w == role),
            "{what} shows the English role {role:?}:\n{text}"
        );
    }
}

async fn words_people_read(kind: &str) {
    let app = App::shipped(kind, "2023-12-20").await;
    let engine = &app.engine;
    let view = engine
        .store
        .task_view(&key(TASK))
        .await
        .unwrap()
        .expect("the task's view");
    let def = view.task.definition.as_ref().unwrap();
    let milestone = view.task.milestones[0].spec.clone();
    // Every raw milestone id and KPI key of the task.
    let mut raw: Vec<String> = view.task.milestones.iter().map(|m| m.spec.id.to_string()).collect();
    raw.extend(def.kpis.iter().map(|k| k.key.to_string()));
    let kpi = def
        .kpis
        .iter()
        .find(|k| k.unit == "mô hình")
        .expect("a KPI counted in mô hình");

    // UBND reports two models and submits; BDV (advisory) approves.
    let report = TaskAction::ReportProgress {
        milestone: milestone.id.clone(),
        agency: None,
        note: "Đã xây dựng mô hình".into(),
        kpis: vec![KpiValue::new(KpiKey::parse(kpi.key.as_str()).unwrap(), 2.0)],
        evidence: vec![],
        attachments: vec![],
    };
    act(engine, TASK, "UBND", "Nguyễn Văn Ủy", report).await.unwrap();
    let submit = TaskAction::Submit {
        milestone: milestone.id.clone(),
        agency: None,
        note: "Hoàn thành".into(),
        attachments: vec![],
    };
    act(engine, TASK, "UBND", "Nguyễn Văn Ủy", submit).await.unwrap();

    // The history in the CLI: titles, label and unit, Vietnamese actors.
    let out = kehoach(app.db(), &["audit", "history", TASK]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_no_raw("audit history", &stdout(&out), &raw);
    let out = kehoach(app.db(), &["--format", "json", "audit", "history", TASK]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let text = json["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| format!("{} — {}", e["what"].as_str().unwrap(), e["details"].as_str().unwrap()))
        .collect::<Vec<_>>()
        .join("\n");
    let actors = kehoach(app.db(), &["audit", "history", TASK]);
    for shown in [
        format!("Nộp mốc “{}”", milestone.title),
        format!("{}: 2 mô hình", kpi.label),
    ] {
        assert!(text.contains(&shown), "{shown:?} not in\n{text}");
    }
    // By the agency's name (the column is cut to its width on a terminal).
    assert!(stdout(&actors).contains("Nguyễn Văn Ủy (Ủy ban"), "{}", stdout(&actors));
    assert_no_raw("audit history (what and details)", &text, &raw);
    assert!(!text.contains("2mô hình") && !text.contains("= 2"), "{text}");

    // The task page's history says the same.
    let auditor = app.user("UBKT", "Trần Kiểm Tra", "auditor").await;
    let (cookie, _) = app.session(&auditor).await;
    let page = app.page(&format!("/tasks/{PLAN}/{TASK}"), &cookie).await;
    assert_eq!(page.status, 200);
    let history = visible_text(section(&page.body, "<section id=\"history\">"));
    assert!(history.contains(&format!("Nộp mốc “{}”", milestone.title)), "{history}");
    assert_no_raw("the task page's history", &history, &raw);

    // Admin pages and the account page: roles in Vietnamese.
    let admin = app.user("BDV", "Quản Trị Viên", "admin,supervisor").await;
    let (admin_cookie, _) = app.session(&admin).await;
    for path in [
        "/admin".to_string(),
        format!("/admin/users/{}", auditor.id),
        "/account".into(),
    ] {
        let page = app.page(&path, &admin_cookie).await;
        assert_eq!(page.status, 200, "{path}");
        let text = visible_text(&page.body);
        assert_no_raw(&path, &text, &raw);
        if path.starts_with("/admin") {
            assert!(text.contains("kiểm tra") && text.contains("quản trị"), "{path}: {text}");
        }
    }
    let out = kehoach(app.db(), &["user", "list"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_no_raw("user list", &stdout(&out), &[]);
    assert!(stdout(&out).contains("quản trị, lãnh đạo duyệt") || stdout(&out).contains("lãnh đạo duyệt, quản trị"));

    // UBND's calendar feed: what people read in it (not the UIDs).
    let member = app.user("UBND", "Lê Thị Lịch", "member").await;
    let (member_cookie, _) = app.session(&member).await;
    let inbox = app.page("/inbox", &member_cookie).await.body;
    let url = inbox.split("<code class=\"feed\">").nth(1).expect("feed address");
    let path = &url[url.find("/calendar/").unwrap()..url.find('<').unwrap()];
    let feed = http(app.port, "GET", path, &[], b"").await;
    assert_eq!(feed.status, 200);
    let unfolded = feed.body.replace("\r\n ", "");
    let read: String = unfolded
        .lines()
        .filter(|l| ["SUMMARY", "DESCRIPTION", "X-WR-"].iter().any(|p| l.starts_with(p)))
        .collect::<Vec<_>>()
        .join("\n")
        .replace("\\n", "\n")
        .replace("\\,", ",");
    assert!(read.contains(&milestone.title), "{read}");
    // Every milestone id of the feed, from its UIDs.
    let mut feed_ids: Vec<String> = unfolded
        .lines()
        .filter_map(|l| l.strip_prefix("UID:"))
        .filter_map(|uid| uid.strip_suffix("@kehoach")?.rsplit('/').next().map(str::to_string))
        .collect();
    feed_ids.extend(raw.iter().cloned());
    assert_no_raw("the calendar feed", &read, &feed_ids);

    // The review report of the year.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("review.html");
    let out = kehoach(
        app.db(),
        &["report", "review", "--year", "2023", "--output", file.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let report = visible_text(&std::fs::read_to_string(&file).unwrap());
    assert!(
        report.contains(&milestone.title),
        "the report names milestones by title"
    );
    assert_no_raw("the review report", &report, &raw);
}
on_both_stores!(pages_feeds_and_reports_use_labels, words_people_read);

async fn error_pages_lead_back(kind: &str) {
    let app = App::shipped(kind, "2023-12-20").await;
    let member = app.user("UBND", "Nguyễn Văn Ủy", "member").await;
    let (cookie, _) = app.session(&member).await;
    let back = |body: &str| {
        let at = body.find("id=\"back\"").expect("a way back");
        let start = body[..at].rfind("href=\"").unwrap() + 6;
        body[start..start + body[start..].find('"').unwrap()].to_string()
    };
    // From the queue of this site, to a task that does not exist: back to the queue.
    let host = format!("127.0.0.1:{}", app.port);
    let referer = format!("http://{host}/inbox?status=open&page=2");
    let r = http(
        app.port,
        "GET",
        &format!("/tasks/{PLAN}/IX.9"),
        &[("Cookie", &cookie), ("Referer", &referer)],
        b"",
    )
    .await;
    assert_eq!(r.status, 404);
    assert_eq!(back(&r.body), "/inbox?status=open&amp;page=2");
    assert!(visible_text(&r.body).contains("Quay lại"));
    // From another site: not followed.
    let r = http(
        app.port,
        "GET",
        &format!("/tasks/{PLAN}/IX.9"),
        &[("Cookie", &cookie), ("Referer", "https://evil.example/inbox")],
        b"",
    )
    .await;
    assert_eq!(back(&r.body), "/inbox");
    // A refused action on a task, without a Referer: back to the task.
    let r = app
        .form(
            &format!("/tasks/{PLAN}/{TASK}/milestones/khong-co/report"),
            &cookie,
            &[("csrf", "sai")],
        )
        .await;
    assert!(r.status >= 400, "{}", r.status);
    assert_eq!(back(&r.body), format!("/tasks/{PLAN}/{TASK}"));
}
on_both_stores!(error_pages_lead_back_where_the_user_was, error_pages_lead_back);
