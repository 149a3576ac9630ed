//! Finding things at any size, on both databases: the inbox, the approval
//! queue, a plan's task list and `GET /api/tasks` search, filter, sort and
//! page through `obligation_index` on the shipped plan; visibility is the
//! same as without it (also in search and downloads); CSV and XLSX
//! downloads; bad parameters are 400; `audit verify` checks the index; and
//! no list decodes views it does not show.

use crate::audit::sql;
use crate::helpers::*;
use crate::on_both_stores;
use crate::web::App;
use kehoach::projections::lists::fold;
use kehoach::projections::views::TaskView;
use serde_json::{json, Value};
use std::collections::BTreeSet;

const PLAN: &str = "duc-pho-de-an-13";

/// The number a list page says it holds (`<strong>N</strong> …`).
fn total_of(body: &str) -> u64 {
    let at = body.find("list-count").expect("the page shows its count");
    let rest = &body[at..];
    let start = rest.find("<strong>").unwrap() + "<strong>".len();
    let end = rest.find("</strong>").unwrap();
    rest[start..end].parse().unwrap()
}

/// The task ids linked from a page's list.
fn task_links(body: &str) -> Vec<String> {
    body.split(&format!("href=\"/tasks/{PLAN}/"))
        .skip(1)
        .map(|s| s.split(['"', '#', '?']).next().unwrap().to_string())
        .collect()
}

/// Obligations still to do or follow by `agency`, as the inbox means it.
fn expected_inbox(views: &[TaskView], agency: &str) -> usize {
    let code = kehoach::domain::ids::AgencyCode::parse(agency).unwrap();
    views
        .iter()
        .filter(|v| !v.task.withdrawn && v.involves(&code))
        .map(|v| {
            let def = v.task.definition.as_ref().unwrap();
            let implementer = def.implementers.contains(&code);
            v.task
                .milestones
                .iter()
                .flat_map(|m| &m.obligations)
                .filter(|o| o.status.is_pending() && (!implementer || o.owed_by(&code, &def.implementers)))
                .count()
        })
        .sum()
}

async fn lists_search_filter_sort_and_page(kind: &str) {
    let app = App::shipped(kind, "2024-06-01").await;
    let views = app.engine.store.task_views().await.unwrap();
    let auditor = app.token("UBKT", "Phạm Kiểm", "auditor").await;

    // Search, accent- and case-insensitive, in ids, task and milestone titles.
    let r = app.get("/api/tasks?q=DAN%20VAN%20KHEO&per_page=200", &auditor).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let found: BTreeSet<String> = r.json()["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| format!("{PLAN}/{}", t["id"].as_str().unwrap()))
        .collect();
    let expected: BTreeSet<String> = views
        .iter()
        .filter(|v| {
            let def = v.task.definition.as_ref().unwrap();
            let id = v.id.split_once('/').unwrap().1;
            fold(&format!("{id} {}", def.title)).contains("dan van kheo")
                || v.task
                    .milestones
                    .iter()
                    .any(|m| fold(&m.spec.title).contains("dan van kheo"))
        })
        .map(|v| v.id.clone())
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(found, expected);
    let r = app.get("/api/tasks?q=II.2.1", &auditor).await.json();
    assert!(r["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["id"].as_str().unwrap().contains("II.2.1")));

    // Pages of 10 in the plan's numbering cover the 45 tasks once.
    let mut seen = Vec::new();
    for page in 1..=5 {
        let r = app
            .get(&format!("/api/tasks?sort=task&per_page=10&page={page}"), &auditor)
            .await
            .json();
        assert_eq!(
            (r["total"].clone(), r["page"].clone(), r["per_page"].clone()),
            (json!(45), json!(page), json!(10))
        );
        seen.extend(
            r["tasks"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["id"].as_str().unwrap().to_string()),
        );
    }
    assert_eq!(seen.len(), 45);
    let mut numbered = seen.clone();
    numbered.sort_by_key(|id| kehoach::projections::views::numbering_key(id));
    assert_eq!(seen, numbered, "sorted in the plan's numbering");
    let r = app.get("/api/tasks?page=6&per_page=10", &auditor).await.json();
    assert_eq!(
        (r["tasks"].as_array().unwrap().len(), r["total"].clone()),
        (0, json!(45))
    );

    // Filters: agency, year, overdue.
    let r = app.get("/api/tasks?agency=LLVT&per_page=200", &auditor).await.json();
    let llvt = kehoach::domain::ids::AgencyCode::parse("LLVT").unwrap();
    assert_eq!(
        r["total"].as_u64().unwrap() as usize,
        views.iter().filter(|v| v.involves(&llvt)).count()
    );
    let r = app.get("/api/tasks?year=2023&per_page=200", &auditor).await.json();
    assert!(
        r["tasks"].as_array().unwrap().iter().any(|t| t["id"] == "II.1.1"),
        "due in January 2023"
    );
    let r = app.get("/api/tasks?overdue=1&per_page=200", &auditor).await.json();
    for t in r["tasks"].as_array().unwrap() {
        assert!(
            t["milestones"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["timeliness"] == "overdue"),
            "{t}"
        );
    }

    // The inbox of a member: what its agency still has to do, overdue first.
    let member = app.user("MTTQ", "Trần Thị Cúc", "member").await;
    let (cookie, _) = app.session(&member).await;
    let r = app.page("/inbox?per_page=200", &cookie).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(total_of(&r.body) as usize, expected_inbox(&views, "MTTQ"));
    let mttq = kehoach::domain::ids::AgencyCode::parse("MTTQ").unwrap();
    for id in task_links(&r.body) {
        let v = views.iter().find(|v| v.id == format!("{PLAN}/{id}")).unwrap();
        assert!(v.involves(&mttq), "{id} is not MTTQ's");
    }
    let overdue_at = r.body.find("badge overdue").expect("some overdue");
    assert!(
        r.body.rfind("badge pending").is_none_or(|p| p > overdue_at),
        "overdue first"
    );
    // Paging keeps the filters; the page says where it is.
    let r = app.page("/inbox?per_page=5&page=2&q=ke%20hoach", &cookie).await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("Trang 2 /"), "{}", r.body);
    assert!(
        r.body.contains("rel=\"prev\"") && r.body.contains("q=ke%20hoach&amp;per_page=5"),
        "the pager keeps the filters: {}",
        r.body
    );
    assert!(r.body.contains("Tải CSV") && r.body.contains("Tải Excel"));
    // A task that does not involve MTTQ cannot be found by its member.
    let hidden = views.iter().find(|v| !v.involves(&mttq)).unwrap();
    let hidden_id = hidden.id.split_once('/').unwrap().1;
    let r = app.page(&format!("/inbox?q={hidden_id}&status=open"), &cookie).await;
    assert!(
        !task_links(&r.body).iter().any(|t| t == hidden_id),
        "{hidden_id} shown to MTTQ"
    );
    let csv = app.page("/inbox?format=csv&status=open", &cookie).await;
    assert!(
        !csv.body.contains(&format!(",\"{hidden_id}\",")),
        "{hidden_id} exported to MTTQ"
    );
    let api = app.token("MTTQ", "Trần Thị Cúc", "member").await;
    let r = app
        .get(&format!("/api/tasks?q={hidden_id}&agency=BTV&per_page=200"), &api)
        .await
        .json();
    assert!(r["tasks"].as_array().unwrap().iter().all(|t| {
        let v = views
            .iter()
            .find(|v| v.id == format!("{PLAN}/{}", t["id"].as_str().unwrap()))
            .unwrap();
        v.involves(&mttq)
    }));

    // Downloads: CSV with a BOM and Vietnamese headers, XLSX a real workbook.
    let r = app.page("/inbox?format=csv", &cookie).await;
    assert_eq!(r.status, 200);
    assert!(r.bytes.starts_with(&[0xEF, 0xBB, 0xBF]), "UTF-8 BOM");
    assert!(r.body.contains("\"Mã nhiệm vụ\"") && r.body.contains("\"Hạn\""));
    assert_eq!(
        r.body.lines().count() as u64,
        1 + total_of(&app.page("/inbox", &cookie).await.body)
    );
    assert!(r
        .header("content-disposition")
        .unwrap()
        .starts_with("attachment; filename=\"hop-viec-2024-06-01.csv\""));
    let r = app.page(&format!("/plans/{PLAN}?format=xlsx"), &cookie).await;
    assert_eq!(r.status, 200);
    assert!(r.header("content-disposition").unwrap().contains(".xlsx"));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("list.xlsx");
    std::fs::write(&file, &r.bytes).unwrap();
    let check = std::process::Command::new(python())
        .args([
            "-c",
            "import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); \
             text = z.read('xl/worksheets/sheet1.xml').decode() + z.read('xl/sharedStrings.xml').decode(); \
             print('II.1.2' in text and 'Mã nhiệm vụ' in text)",
        ])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&check.stdout).trim(),
        "True",
        "{}",
        stderr(&check)
    );

    // The plan page: the chart of all its tasks, the list a page at a time.
    let r = app
        .page(&format!("/plans/{PLAN}?per_page=10&page=2&sort=task"), &cookie)
        .await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("<svg") && r.body.contains("Trang 2 /"));
    let table = &r.body[r.body.find("id=\"tasks\"").expect("the task list")..];
    let listed = task_links(table);
    assert_eq!(listed.len(), 10, "{table}");
    for id in &listed {
        let v = views.iter().find(|v| v.id == format!("{PLAN}/{id}")).unwrap();
        assert!(v.involves(&mttq), "{id} is not MTTQ's");
    }
    assert!(
        !r.body.contains("Trong hạn"),
        "the legend and the table say Chưa đến hạn"
    );

    // Bad parameters: a Vietnamese line, never a 500.
    for bad in [
        "page=0",
        "per_page=5000",
        "sort=colour",
        "status=done",
        "year=20x4",
        "overdue=2",
        "format=pdf",
    ] {
        for path in ["/inbox", "/queue", &format!("/plans/{PLAN}")] {
            let r = app.page(&format!("{path}?{bad}"), &cookie).await;
            let expected = if path == "/queue" { 403 } else { 400 };
            assert_eq!(r.status, expected, "{path}?{bad}: {}", r.body);
        }
        let r = app.get(&format!("/api/tasks?{bad}"), &auditor).await;
        assert_eq!(r.status, 400, "{bad}");
    }
    let r = app.page("/inbox?page=abc", &cookie).await;
    assert!(r.body.contains("Tham số danh sách không hợp lệ"), "{}", r.body);
}
on_both_stores!(lists_search_filter_sort_and_page, lists_search_filter_sort_and_page);

/// The queue: submitted obligations the caller's agency supervises and
/// does not owe; verify checks the index.
async fn queue_and_verify(kind: &str) {
    let app = App::shipped(kind, "2023-01-10").await;
    let member = app.token("BDV", "Nguyễn Văn An", "member").await;
    let r = app
        .post(
            "/api/tasks/II.1.1/milestones/complete/submit",
            &member,
            &json!({ "note": "xong" }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let btv = app.user("BTV", "Lê Thị Bình", "supervisor").await;
    let (cookie, _) = app.session(&btv).await;
    let r = app.page("/queue", &cookie).await;
    assert_eq!((r.status, total_of(&r.body)), (200, 1), "{}", r.body);
    assert!(r.body.contains("II.1.1") && r.body.contains("Nguyễn Văn An"));
    let r = app.page("/queue?q=khong%20co%20dau", &cookie).await;
    assert_eq!(total_of(&r.body), 0);
    // BDV owes the joint obligation: not its own to approve.
    let bdv = app.user("BDV", "Đỗ Duyệt", "supervisor").await;
    let (cookie, _) = app.session(&bdv).await;
    assert_eq!(total_of(&app.page("/queue", &cookie).await.body), 0);
    let r = app.page("/inbox?status=submitted", &cookie).await;
    assert_eq!(total_of(&r.body), 1, "{}", r.body);
    let supervisor = app.token("BTV", "Lê Thị Bình", "supervisor").await;
    let q = app.get("/api/queue", &supervisor).await.json();
    assert_eq!(q.as_array().unwrap().len(), 1);

    // `audit verify` recomputes the index and finds a tampered row.
    let summary = kehoach::audit::verify::verify(&app.engine.store, |_| {})
        .await
        .unwrap()
        .unwrap_or_else(|p| panic!("verifies: {p}"));
    assert!(summary.list_rows > 45, "{summary:?}");
    let tamper = "UPDATE obligation_index SET status = 'approved' WHERE aggregate_id = 'duc-pho-de-an-13/II.1.1' AND viewer = '*'";
    sql(&app.engine.store, tamper, tamper).await;
    let problem = kehoach::audit::verify::verify(&app.engine.store, |_| {})
        .await
        .unwrap()
        .unwrap_err();
    assert!(problem.to_string().contains("obligation_index"), "{problem}");
}
on_both_stores!(queue_and_verify, queue_and_verify);

/// The lists read only the views they show: a view of another plan's task
/// that cannot even be decoded does not stop any of them.
async fn lists_read_only_what_they_show(kind: &str) {
    let app = App::shipped(kind, "2024-06-01").await;
    let garbage = "INSERT INTO task_view (aggregate_id, plan_id, task_id, version, payload) \
                   VALUES ('other-plan/I.1', 'other-plan', 'I.1', 1, 'not a view')";
    sql(&app.engine.store, garbage, garbage).await;
    assert!(
        app.engine.store.task_views().await.is_err(),
        "reading every view fails now"
    );
    let admin = app.user("UBKT", "Phạm Kiểm", "admin,supervisor").await;
    let (cookie, _) = app.session(&admin).await;
    for path in ["/inbox", "/queue", &format!("/plans/{PLAN}"), "/inbox?format=csv"] {
        let r = app.page(path, &cookie).await;
        assert_eq!(r.status, 200, "{path}: {}", r.body);
    }
    let token = app.token("UBKT", "Phạm Kiểm", "auditor").await;
    let r = app.get("/api/tasks", &token).await;
    assert_eq!((r.status, r.json()["total"].clone()), (200, json!(45)), "{}", r.body);
    assert_eq!(app.get("/api/queue", &token).await.status, 200);
    let _: Value = r.json();
}
on_both_stores!(lists_read_only_what_they_show, lists_read_only_what_they_show);

/// Pages take the plans from a cache kept per plan version: a plan loaded
/// while the server runs (by any process) shows on the next page, and
/// pages between two loads share one decoded copy.
async fn pages_follow_plans_loaded_while_serving(kind: &str) {
    let app = App::shipped(kind, "2024-06-01").await;
    let admin = app.user("UBKT", "Phạm Kiểm", "admin,supervisor").await;
    let (cookie, _) = app.session(&admin).await;
    let title = "Kế hoạch thứ hai nạp khi máy chủ đang chạy";
    let before = app.page("/inbox", &cookie).await;
    assert_eq!(before.status, 200, "{}", before.body);
    assert!(!before.body.contains(title));
    let mut second = shipped_plan();
    second.header.id = kehoach::domain::ids::PlanId::parse("ke-hoach-hai").unwrap();
    second.header.title = title.to_string();
    app.engine.load_plan(&second).await.expect("load the second plan");
    app.engine.catch_up().await.expect("catch up");
    for path in ["/inbox", "/queue", "/plans/ke-hoach-hai"] {
        let after = app.page(path, &cookie).await;
        assert_eq!(after.status, 200, "{path}: {}", after.body);
        assert!(after.body.contains(title), "{path} names the plan loaded since");
    }
    let cache = kehoach::projections::views::PlanViewCache::default();
    let (a, b) = (
        cache.get(&app.engine.store).await.unwrap(),
        cache.get(&app.engine.store).await.unwrap(),
    );
    assert_eq!(a.len(), 2);
    assert!(std::sync::Arc::ptr_eq(&a, &b), "unchanged plans are decoded once");
}
on_both_stores!(
    pages_follow_plans_loaded_while_serving,
    pages_follow_plans_loaded_while_serving
);

/// The plan page's counts per agency, counted by the database from the
/// index, are those of the views (`Standing`), for those who see everything
/// and for members, before, at and after deadlines, with approvals on time
/// and late.
async fn plan_counts_from_the_index(kind: &str) {
    use kehoach::audit::history::Standing;
    use kehoach::projections::lists::Asker;
    let app = App::shipped(kind, "2023-01-10").await;
    let db = app.db();
    let ubnd = cli_user(db, "UBND", "Nguyễn Văn An", "member");
    let bdv = cli_user(db, "BDV", "Trần Văn Bình", "supervisor");
    // register-2023 (due 31/03/2023) approved late; register-2024 on time.
    for (milestone, submit, approve) in [
        ("register-2023", "2023-05-02", "2023-05-03"),
        ("register-2024", "2024-03-20", "2024-03-21"),
    ] {
        for (user, action, now) in [(&ubnd, "submit", submit), (&bdv, "approve", approve)] {
            let out = kehoach(
                db,
                &[
                    "--now",
                    now,
                    "task",
                    action,
                    "III.1.2",
                    "--milestone",
                    milestone,
                    "--user",
                    user,
                ],
            );
            assert!(out.status.success(), "{action} {milestone}: {}", stderr(&out));
        }
    }
    app.engine.catch_up().await.unwrap();
    let store = &app.engine.store;
    let plans = store.plan_views().await.unwrap();
    let member = |a: &str| Asker {
        agency: kehoach::domain::ids::AgencyCode::parse(a).unwrap(),
        sees_everything: false,
    };
    for asker in [everyone_asker(), member("UBND"), member("MTTQ"), member("BTV")] {
        let views = store.plan_task_views(PLAN, &asker).await.unwrap();
        for day in ["2023-01-01", "2023-03-31", "2024-04-01", "2026-12-31"] {
            let today: chrono::NaiveDate = day.parse().unwrap();
            let mut standing = Standing::default();
            for v in &views {
                standing.add(
                    &v.id,
                    &v.task,
                    today,
                    kehoach::projections::views::deadlines_for(&plans, &v.id),
                );
            }
            let counted = store.plan_agency_counts(PLAN, &asker, today).await.unwrap();
            assert_eq!(counted, standing.agencies, "{} on {day}", asker.agency);
        }
    }
    let all = store
        .plan_agency_counts(PLAN, &everyone_asker(), "2026-12-31".parse().unwrap())
        .await
        .unwrap();
    let ubnd_counts = &all["UBND"];
    assert_eq!((ubnd_counts.on_time, ubnd_counts.approved_late), (1, 1), "{all:?}");
    assert!(ubnd_counts.overdue > 0);
}
on_both_stores!(plan_counts_from_the_index, plan_counts_from_the_index);

fn everyone_asker() -> kehoach::projections::lists::Asker {
    kehoach::projections::lists::Asker {
        agency: kehoach::domain::ids::AgencyCode::parse("UBKT").unwrap(),
        sees_everything: true,
    }
}
