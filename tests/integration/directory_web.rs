//! The administrator's desk: the agency directory edited on the web with a
//! preview, saved as an attributed amendment whose notices go to the old
//! addresses; the plan in force downloaded; a plan uploaded by file picker
//! with the same preview, its text kept after an error.

use crate::evidence::{multipart, post_multipart};
use crate::on_both_stores;
use crate::web::App;

const PLAN: &str = "duc-pho-de-an-13";

async fn directory_on_the_web(kind: &str) {
    let app = App::shipped(kind, "2024-03-10").await;
    let admin = app.user("BDV", "Quản Trị Viên", "admin").await;
    let (cookie, csrf) = app.session(&admin).await;
    let member = app.user("UBND", "Trần Văn Ủy", "member").await;
    let (member_cookie, member_csrf) = app.session(&member).await;

    assert_eq!(app.page("/admin/agencies", &member_cookie).await.status, 403);
    let r = app
        .form(
            "/admin/agencies",
            &member_cookie,
            &[("csrf", &member_csrf), ("action", "save")],
        )
        .await;
    assert_eq!(r.status, 403);
    let page = app.page("/admin/agencies", &cookie).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("name=\"emails.UBND\"") && page.body.contains("ubnd@ducpho.example"),
        "{}",
        page.body
    );

    // "Kiểm tra" shows exactly what will change, and writes nothing.
    let source = page
        .body
        .split("name=\"source\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("the plan the form was made from")
        .to_string();
    assert_eq!(source.len(), 64);
    let fields = [
        ("csrf", csrf.as_str()),
        ("plan", PLAN),
        ("source", source.as_str()),
        ("emails.UBND", "moi@ubnd.example\nvanphong@ubnd.example"),
        ("short.UBND", "UBND thị xã"),
    ];
    let before = app.events().await;
    let r = app
        .form(
            "/admin/agencies",
            &cookie,
            &[&fields[..], &[("action", "check")]].concat(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let preview = r.body.split("id=\"directory-preview\"").nth(1).expect("a preview");
    let preview = &preview[..preview.find("</section>").unwrap()];
    for shown in [
        "Ủy ban nhân dân thị xã",
        "Thêm địa chỉ: moi@ubnd.example, vanphong@ubnd.example",
        "Bỏ địa chỉ: ubnd@ducpho.example",
        "Tên ngắn: «» → «UBND thị xã»",
        "Thư báo thay đổi sẽ gửi đến địa chỉ cũ: ubnd@ducpho.example",
    ] {
        assert!(preview.contains(shown), "{shown:?} missing from {preview}");
    }
    assert!(r.body.contains("id=\"directory-save\""));
    assert_eq!(app.events().await, before, "checking wrote nothing");

    // A wrong address is refused with the reason; the form keeps what was typed.
    let r = app
        .form(
            "/admin/agencies",
            &cookie,
            &[
                ("csrf", &csrf),
                ("plan", PLAN),
                ("emails.UBND", "khong-phai-dia-chi"),
                ("action", "save"),
            ],
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(
        r.body.contains("id=\"directory-errors\"") && r.body.contains("khong-phai-dia-chi"),
        "{}",
        r.body
    );
    assert_eq!(app.events().await, before);

    // A form made from another version of the plan is refused.
    let other = "0".repeat(64);
    let stale = [
        ("csrf", csrf.as_str()),
        ("plan", PLAN),
        ("source", other.as_str()),
        ("emails.UBND", "x@ubnd.example"),
        ("action", "save"),
    ];
    let r = app.form("/admin/agencies", &cookie, &stale).await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(app.events().await, before);

    // "Lưu": an amendment by the admin, and a notice to the old address.
    let r = app
        .form(
            "/admin/agencies",
            &cookie,
            &[&fields[..], &[("action", "save")]].concat(),
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let shown = app.page(r.header("location").unwrap(), &cookie).await;
    assert!(
        shown.body.contains(
            "Đã lưu danh bạ: 1 cơ quan thay đổi; thư báo thay đổi sẽ gửi đến địa chỉ cũ: ubnd@ducpho.example"
        ),
        "{}",
        shown.body
    );
    let events = app.engine.store.plan_events(PLAN).await.unwrap();
    let amended = events
        .iter()
        .rev()
        .find(|e| matches!(e.event, kehoach::domain::plan::PlanEvent::PlanAmended { .. }))
        .expect("an amendment");
    assert!(amended.metadata["name"] == "Quản Trị Viên", "{}", amended.metadata);
    assert!(events.iter().any(|e| matches!(
        &e.event,
        kehoach::domain::plan::PlanEvent::DirectoryNoticeQueued { agency, to, .. }
            if agency.as_str() == "UBND" && to == &["ubnd@ducpho.example".to_string()]
    )));
    let views = app.engine.store.plan_views().await.unwrap();
    let ubnd = views[0]
        .plan
        .agencies
        .iter()
        .find(|a| a.code.as_str() == "UBND")
        .unwrap();
    assert_eq!(ubnd.emails, ["moi@ubnd.example", "vanphong@ubnd.example"]);
    assert_eq!(ubnd.short.as_deref(), Some("UBND thị xã"));

    // The plan in force downloads: the same file with those keys changed,
    // its comments kept; auditors may download it, members not.
    let file = app.page(&format!("/plans/{PLAN}/ke-hoach.toml"), &cookie).await;
    assert_eq!(file.status, 200);
    assert!(file.body.contains("\"moi@ubnd.example\"") && !file.body.contains("\"ubnd@ducpho.example\""));
    assert!(
        file.body.contains("# A group without a fixed member list"),
        "comments kept"
    );
    assert_eq!(
        app.page(&format!("/plans/{PLAN}/ke-hoach.toml"), &member_cookie)
            .await
            .status,
        403
    );
    let reparsed = kehoach::plan::parse_str(std::path::Path::new("x.toml"), &file.body).expect("a valid plan file");
    assert_eq!(reparsed.tasks.len(), 45);

    // A plan uploaded by file picker: "Kiểm tra" previews, an error keeps the text.
    let r = post_multipart(
        &app,
        "/admin/plans",
        ("Cookie", &cookie),
        multipart(
            &[("csrf", &csrf), ("plan", ""), ("action", "check")],
            &[(
                "file",
                "ke-hoach.toml",
                file.body.replace("moi@ubnd.example", "ubnd2@ducpho.example").as_bytes(),
            )],
        ),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body.contains("id=\"plan-preview\"") && r.body.contains("Thêm địa chỉ: ubnd2@ducpho.example"),
        "{}",
        r.body
    );
    let broken = "[plan]\nid = \"thu\"\ntitle = 3\n";
    let r = post_multipart(
        &app,
        "/admin/plans",
        ("Cookie", &cookie),
        multipart(
            &[("csrf", &csrf), ("action", "check")],
            &[("file", "hong.toml", broken.as_bytes())],
        ),
    )
    .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(
        r.body.contains("lỗi trong tệp kế hoạch") && r.body.contains("id = &quot;thu&quot;"),
        "{}",
        r.body
    );
}
on_both_stores!(agency_directory_on_the_web, directory_on_the_web);
