//! Accounts managed on the web, on both databases, over real HTTP: an admin
//! creates a user (the sign-in link reaches the user at a real SMTP server,
//! aiosmtpd), changes roles, sends a new link, revokes a token, ends
//! sessions, disables and enables; each change is an account event naming
//! the admin and the web channel. Non-admins are refused, bad input is a
//! Vietnamese 4xx with the form kept and nothing written, an admin cannot
//! lock themselves out. And in a real browser: an admin creates a user who
//! signs in from the e-mailed link, then disables them; their session and
//! API token stop at once.

use crate::browser::{axe, run_flow as flow, set_password as set_password_steps, set_password_only};
use crate::helpers::*;
use crate::on_both_stores;
use crate::signin_security::oathtool;
use crate::web::App;
use kehoach::accounts::{Email, Role};
use kehoach::notification::account_mail::AccountMailer;
use kehoach::notification::transport;
use serde_json::{json, Value};

fn mailer(smtp: &SmtpServer) -> AccountMailer {
    let t = transport::from_config(Some(&smtp.url()), std::path::Path::new("unused")).expect("transport");
    AccountMailer::over(t, "Thị ủy Đức Phổ <kehoach@ducpho.example>", "ducpho.example")
}

/// The messages aiosmtpd received for `to`, waiting up to 10 s for `count`.
fn mail_to(smtp: &SmtpServer, to: &str, count: usize) -> Vec<Value> {
    for _ in 0..100 {
        let got: Vec<Value> = smtp
            .messages()
            .into_iter()
            .filter(|m| m["rcpt_to"].as_array().is_some_and(|r| r.contains(&json!(to))))
            .collect();
        if got.len() >= count {
            return got;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("no {count} message(s) to {to} at the SMTP server");
}

/// The sign-in link in a message's plain-text body.
fn link_in(message: &Value) -> String {
    let text = message["text"].as_str().unwrap();
    let start = text.find("http://").expect("a link");
    text[start..].split_whitespace().next().unwrap().to_string()
}

/// The account events of `user_id` with the actor's account id and channel.
async fn account_changes(app: &App, user_id: &str) -> Vec<(String, String, String)> {
    all_events(&app.engine)
        .await
        .into_iter()
        .filter(|e| e.aggregate_type == "Account" && e.aggregate_id == user_id)
        .map(|e| {
            let meta: Value = serde_json::from_str(&e.metadata).unwrap();
            (
                e.event_type,
                meta["account"].as_str().unwrap_or("").to_string(),
                meta["channel"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

async fn admin_manages_accounts(kind: &str) {
    let smtp = SmtpServer::start();
    let app = App::start_with(kind, "2023-01-10", &shipped_plan(), |s| s.with_mailer(mailer(&smtp))).await;
    let admin = app.user("BDV", "Quản Trị Viên", "admin").await;
    let (admin_cookie, csrf) = app.session(&admin).await;
    let member = app.user("BTG", "Trần Thành Viên", "member").await;
    let (member_cookie, member_csrf) = app.session(&member).await;
    let csrf = csrf.as_str();

    // The admin page offers the form, with the plan's agencies.
    let page = app.page("/admin", &admin_cookie).await;
    assert_eq!(page.status, 200);
    assert!(page
        .body
        .contains(r#"<form method="post" action="/admin/users" id="new-user">"#));
    assert!(page.body.contains(r#"<option value="UBND">"#), "agency list");

    // Others get 403 on every admin route, whatever they post.
    let member_page = format!("/admin/users/{}", admin.id);
    assert_eq!(app.page(&member_page, &member_cookie).await.status, 403);
    for path in [
        "/admin/users".to_string(),
        format!("/admin/users/{}/disable", admin.id),
        format!("/admin/users/{}/roles", member.id),
    ] {
        let r = app
            .form(&path, &member_cookie, &[("csrf", &member_csrf), ("role", "admin")])
            .await;
        assert_eq!(r.status, 403, "{path}");
    }
    assert_eq!(
        app.page(&member_page, "kh_session=none").await.header("location"),
        Some(format!("/signin?next={member_page}").as_str())
    );

    // Bad input: a Vietnamese 4xx, the form kept, nothing written.
    let before = app.events().await;
    let no_csrf = app
        .form(
            "/admin/users",
            &admin_cookie,
            &[("email", "a@b.example"), ("role", "member")],
        )
        .await;
    assert_eq!(no_csrf.status, 403);
    let dup = member.email.to_string();
    for (email, agency, roles, status, message) in [
        (
            "khong-phai-email",
            "UBND",
            &["member"][..],
            400,
            "địa chỉ e-mail không hợp lệ",
        ),
        ("moi@ubnd.example", "XYZ", &["member"][..], 400, "không có cơ quan XYZ"),
        ("moi@ubnd.example", "", &["member"][..], 400, "cần chọn cơ quan"),
        ("moi@ubnd.example", "UBND", &[][..], 400, "cần chọn ít nhất một vai trò"),
        ("moi@ubnd.example", "UBND", &["boss"][..], 400, "vai trò không có"),
        (
            dup.as_str(),
            "UBND",
            &["member"][..],
            409,
            "đã có người dùng với e-mail",
        ),
    ] {
        let mut fields = vec![
            ("csrf", csrf),
            ("email", email),
            ("name", "Lê Văn <Mới>"),
            ("agency", agency),
        ];
        fields.extend(roles.iter().map(|r| ("role", *r)));
        let r = app.form("/admin/users", &admin_cookie, &fields).await;
        assert_eq!(r.status, status, "{email} {agency} {roles:?}: {}", r.body);
        assert!(r.body.contains(message), "{message} missing: {}", r.body);
        assert!(
            r.body.contains(r#"value="Lê Văn &lt;Mới&gt;""#),
            "the form keeps what was typed"
        );
        assert!(r.body.contains(&format!(r#"value="{}""#, email)));
    }
    assert_eq!(app.events().await, before, "nothing written for refused input");
    assert!(smtp.messages().is_empty());

    // Created: the link goes by e-mail to the new user, never into a URL.
    let r = app
        .form(
            "/admin/users",
            &admin_cookie,
            &[
                ("csrf", csrf),
                ("email", " Moi@UBND.example "),
                ("name", "Lê Văn Mới"),
                ("agency", "UBND"),
                ("role", "member"),
                ("role", "supervisor"),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let email = Email::parse("moi@ubnd.example").unwrap();
    let (created, disabled) = app.engine.store.user_by_email_any(&email).await.unwrap().unwrap();
    assert!(!disabled && created.roles == vec![Role::Member, Role::Supervisor]);
    assert_eq!(created.agency.as_str(), "UBND");
    let location = r.header("location").unwrap().to_string();
    assert_eq!(location, format!("/admin/users/{}", created.id));
    let mail = mail_to(&smtp, "moi@ubnd.example", 1);
    assert_eq!(mail.len(), 1);
    let link = link_in(&mail[0]);
    assert!(
        link.starts_with(&format!("http://127.0.0.1:{}/signin/", app.port)),
        "{link}"
    );
    let token = link.rsplit('/').next().unwrap();
    assert!(!location.contains(token));
    assert!(mail[0]["subject"]
        .as_str()
        .unwrap()
        .contains("Tài khoản của quý vị đã được tạo"));
    assert!(mail[0]["text"].as_str().unwrap().contains("Quản Trị Viên"));
    let page = app.page(&location, &admin_cookie).await;
    assert!(page.body.contains("Đã tạo người dùng và gửi liên kết"), "{}", page.body);
    assert!(!page.body.contains(token), "the page does not show a mailed link");
    let reflected = app
        .page(
            &format!("/admin/users/{}?saved=%3Cb%3Ex%3C%2Fb%3E", created.id),
            &admin_cookie,
        )
        .await;
    assert!(
        reflected.status == 200 && !reflected.body.contains("<b>x</b>") && !reflected.body.contains("class=\"done\"")
    );
    let signin = http(app.port, "GET", &format!("/signin/{token}"), &[], b"").await;
    assert!(
        signin.status == 200 && signin.body.contains("Lê Văn Mới"),
        "the mailed link opens"
    );

    // An admin cannot lock themselves out.
    let own = |what: &str| format!("/admin/users/{}/{what}", admin.id);
    let r = app.form(&own("disable"), &admin_cookie, &[("csrf", csrf)]).await;
    assert_eq!(r.status, 409);
    assert!(
        r.body.contains("không thể tự khóa tài khoản của chính mình"),
        "{}",
        r.body
    );
    let r = app
        .form(&own("roles"), &admin_cookie, &[("csrf", csrf), ("role", "member")])
        .await;
    assert_eq!(r.status, 409);
    assert!(r.body.contains("không thể tự bỏ vai trò quản trị"), "{}", r.body);
    let (me, me_disabled) = app.engine.store.user_by_id(&admin.id).await.unwrap().unwrap();
    assert!(!me_disabled && me.roles == vec![Role::Admin]);

    // Roles: exactly the checked ones, at least one.
    let path = |what: &str| format!("/admin/users/{}/{what}", member.id);
    let r = app
        .form(
            &path("roles"),
            &admin_cookie,
            &[("csrf", csrf), ("role", "supervisor"), ("role", "auditor")],
        )
        .await;
    assert_eq!(
        r.header("location"),
        Some(format!("/admin/users/{}", member.id).as_str())
    );
    let roles = |u: &str| {
        let store = &app.engine.store;
        let u = u.to_string();
        async move { store.user_by_id(&u).await.unwrap().unwrap().0.roles }
    };
    assert_eq!(roles(&member.id).await, vec![Role::Supervisor, Role::Auditor]);
    // A role change ends the user's sessions: the next sign-in carries the new roles.
    let r = app.page("/inbox", &member_cookie).await;
    assert_eq!((r.status, r.header("location")), (303, Some("/signin?next=/inbox")));
    let (member_cookie, _) = app.session(&member).await;
    let r = app.form(&path("roles"), &admin_cookie, &[("csrf", csrf)]).await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("cần chọn ít nhất một vai trò"));
    assert_eq!(roles(&member.id).await, vec![Role::Supervisor, Role::Auditor]);

    // A new link, e-mailed to the user.
    let r = app.form(&path("link"), &admin_cookie, &[("csrf", csrf)]).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let mail = mail_to(&smtp, member.email.as_str(), 1);
    assert!(mail[0]["subject"].as_str().unwrap().contains("Liên kết đăng nhập mới"));
    let relink = link_in(&mail[0]);
    assert_eq!(
        http(app.port, "GET", &relink[relink.find("/signin/").unwrap()..], &[], b"")
            .await
            .status,
        200
    );

    // Tokens: listed, revoked from the page, refused at once on the API.
    let api = app
        .engine
        .create_api_token(&member, "máy báo cáo", operator())
        .await
        .unwrap();
    let api_id = kehoach::accounts::store::token_id(&kehoach::accounts::store::digest(&api));
    assert_eq!(app.get("/api/tasks", &api).await.status, 200);
    let page = app.page(&format!("/admin/users/{}", member.id), &admin_cookie).await;
    assert!(page.body.contains(&api_id) && page.body.contains("máy báo cáo"));
    assert!(page.body.contains(r#"<dd id="sessions">1</dd>"#), "one live session");
    let other = app.user("LLVT", "Võ Khác", "member").await;
    let wrong_owner = app
        .form(
            &format!("/admin/users/{}/tokens/{api_id}/revoke", other.id),
            &admin_cookie,
            &[("csrf", csrf)],
        )
        .await;
    assert_eq!(wrong_owner.status, 404, "a token is revoked only through its owner");
    let r = app
        .form(
            &path(&format!("tokens/{api_id}/revoke")),
            &admin_cookie,
            &[("csrf", csrf)],
        )
        .await;
    assert_eq!(r.status, 303);
    assert_eq!(app.get("/api/tasks", &api).await.status, 401);

    // Sessions: ended from the page.
    assert_eq!(app.page("/inbox", &member_cookie).await.status, 200);
    let r = app.form(&path("signout"), &admin_cookie, &[("csrf", csrf)]).await;
    assert_eq!(r.status, 303);
    let r = app.page("/inbox", &member_cookie).await;
    assert_eq!((r.status, r.header("location")), (303, Some("/signin?next=/inbox")));

    // Disabled: a live session and a live token stop at once; enabled again.
    let (cookie, _) = app.session(&member).await;
    let api = app
        .engine
        .create_api_token(&member, "lần hai", operator())
        .await
        .unwrap();
    assert_eq!(app.page("/inbox", &cookie).await.status, 200);
    // Locking asks first; asking changes nothing.
    let r = app.form(&path("disable"), &admin_cookie, &[("csrf", csrf)]).await;
    assert!(
        r.status == 200 && r.body.contains("data-confirm=\"disable\""),
        "{}",
        r.body
    );
    assert_eq!(app.page("/inbox", &cookie).await.status, 200);
    let r = app
        .form(&path("disable"), &admin_cookie, &[("csrf", csrf), ("confirm", "1")])
        .await;
    assert_eq!(r.status, 303);
    assert_eq!(app.page("/inbox", &cookie).await.status, 303);
    assert_eq!(app.get("/api/tasks", &api).await.status, 401);
    let page = app.page(r.header("location").unwrap(), &admin_cookie).await;
    assert!(page.body.contains("Đã khóa tài khoản") && page.body.contains(r#"<dd id="state">bị khóa</dd>"#));
    let r = app.form(&path("link"), &admin_cookie, &[("csrf", csrf)]).await;
    assert_eq!(r.status, 409, "no link for a disabled account");
    let r = app.form(&path("enable"), &admin_cookie, &[("csrf", csrf)]).await;
    assert_eq!(r.status, 303);
    assert_eq!(app.get("/api/tasks", &api).await.status, 200);
    let r = app.form(&path("explode"), &admin_cookie, &[("csrf", csrf)]).await;
    assert_eq!(r.status, 404);

    // Every change is an event of the account, by the admin, on the web.
    let changes = account_changes(&app, &member.id).await;
    let by_admin: Vec<&str> = changes
        .iter()
        .filter(|(_, account, channel)| account == &admin.id && channel == "web")
        .map(|(event, ..)| event.as_str())
        .collect();
    for event in [
        "RoleGranted",
        "RoleRevoked",
        "SigninLinkIssued",
        "TokenRevoked",
        "SessionsEnded",
        "AccountDisabled",
        "AccountEnabled",
    ] {
        assert!(
            by_admin.contains(&event),
            "{event} by the admin on the web: {changes:?}"
        );
    }
    let created_events = account_changes(&app, &created.id).await;
    assert_eq!(created_events[0].0, "AccountCreated");
    assert_eq!(
        (created_events[0].1.as_str(), created_events[0].2.as_str()),
        (admin.id.as_str(), "web")
    );
    // The account's page shows them, with the admin's name and channel.
    let page = app.page(&format!("/admin/users/{}", member.id), &admin_cookie).await;
    assert!(page.body.contains("Quản Trị Viên &lt;"), "{}", page.body);
    assert!(page.body.contains("(Ban Dân vận Thị ủy, qua web)"));
    let verified = kehoach(app.db(), &["--format", "json", "audit", "verify"]);
    assert!(verified.status.success(), "{}", stdout(&verified));
}
on_both_stores!(admin_manages_accounts_on_the_web, admin_manages_accounts);

/// Without an SMTP server the link is shown once on the result page (not
/// cached, not in the URL), like the CLI prints it; and when the server
/// refuses the message, the page says so and shows the link the same way.
async fn link_shown_once_without_smtp(kind: &str) {
    let refusing = SmtpServer::start_refusing();
    let refused = App::start_with(kind, "2023-01-10", &shipped_plan(), |s| {
        s.with_mailer(mailer(&refusing))
    })
    .await;
    let admin = refused.user("BDV", "Quản Trị Viên", "admin").await;
    let (admin_cookie, csrf) = refused.session(&admin).await;
    let member = refused.user("BTG", "Trần Thành Viên", "member").await;
    let r = refused
        .form(
            &format!("/admin/users/{}/link", member.id),
            &admin_cookie,
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body.contains("Không gửi được thư đến") && r.body.contains("550"),
        "{}",
        r.body
    );
    assert!(r.body.contains(&format!("http://127.0.0.1:{}/signin/", refused.port)));
    assert_eq!(r.header("cache-control"), Some("no-store"));

    let app = App::shipped(kind, "2023-01-10").await;
    let admin = app.user("BDV", "Quản Trị Viên", "admin").await;
    let (admin_cookie, csrf) = app.session(&admin).await;
    let r = app
        .form(
            "/admin/users",
            &admin_cookie,
            &[
                ("csrf", &csrf),
                ("email", "an@bdv.example"),
                ("name", "Nguyễn Văn An"),
                ("agency", "BDV"),
                ("role", "member"),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("location"), None);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let start = r
        .body
        .find(&format!("http://127.0.0.1:{}/signin/", app.port))
        .expect("link shown");
    let link: String = r.body[start..].chars().take_while(|c| *c != '<').collect();
    assert!(r.body.contains("Liên kết chỉ hiện một lần"));
    let path = &link[link.find("/signin/").unwrap()..];
    assert_eq!(http(app.port, "GET", path, &[], b"").await.status, 200);
    // Shown once: the user's page does not show it again.
    let (user, _) = app
        .engine
        .store
        .user_by_email_any(&Email::parse("an@bdv.example").unwrap())
        .await
        .unwrap()
        .unwrap();
    let page = app.page(&format!("/admin/users/{}", user.id), &admin_cookie).await;
    assert!(page.status == 200 && !page.body.contains(path));
}
on_both_stores!(signin_link_shown_once_without_smtp, link_shown_once_without_smtp);

/// Signs in over HTTP as a browser would (the form's double-submit cookie);
/// returns the session cookie.
async fn sign_in(port: u16, email: &str, password: &str) -> String {
    let form = http(port, "GET", "/signin", &[], b"").await;
    let cookie = form
        .all("set-cookie")
        .into_iter()
        .find_map(|c| c.strip_prefix("kh_form="))
        .and_then(|c| c.split(';').next())
        .expect("form cookie")
        .to_string();
    let at = form.body.find(r#"name="csrf" value=""#).expect("csrf field") + 19;
    let csrf: String = form.body[at..].chars().take_while(|c| *c != '"').collect();
    let body = format!(
        "csrf={}&email={}&password={}&next=%2Finbox",
        crate::web::encode(&csrf),
        crate::web::encode(email),
        crate::web::encode(password)
    );
    let r = http(
        port,
        "POST",
        "/signin",
        &[
            ("Cookie", &format!("kh_form={cookie}")),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        body.as_bytes(),
    )
    .await;
    assert_eq!(r.status, 303, "sign-in: {}", r.body);
    r.all("set-cookie")
        .into_iter()
        .find_map(|c| c.strip_prefix("kh_session="))
        .and_then(|c| c.split(';').next())
        .map(|c| format!("kh_session={c}"))
        .expect("session cookie")
}

#[test]
fn admin_creates_and_disables_a_user_in_a_browser() {
    let smtp = SmtpServer::start();
    let (dir, port, mut child) = serve_in_new_dir(&[("KEHOACH_SMTP_URL", &smtp.url())]);
    let db = dir.path().join("data/kehoach.db");
    assert_eq!(wait_until_loaded(&db, &mut child), 45);
    let base = format!("http://127.0.0.1:{port}");
    let dbs = db.to_str().unwrap();
    // The first admin comes from the CLI, which prints its link.
    let out = bin()
        .args(["--db", dbs, "--format", "json", "user", "add", "--agency", "BDV"])
        .args([
            "--name",
            "Quản Trị Viên",
            "--email",
            "qt@bdv.example",
            "--role",
            "admin",
        ])
        .env("KEHOACH_BASE_URL", &base)
        .output()
        .unwrap();
    assert!(out.status.success(), "user add: {}", stderr(&out));
    let admin_link = serde_json::from_str::<Value>(&stdout(&out)).unwrap()["signin_url"]
        .as_str()
        .unwrap()
        .to_string();
    let work = tempfile::tempdir().unwrap();

    // The admin sets a password; an admin must then set up two-factor
    // sign-in: the page shows the secret.
    let mut steps = set_password_only(&admin_link, "mat-khau-quan-tri");
    steps.extend([
        json!({ "do": "expect_url", "contains": "/signin/code" }),
        json!({ "do": "scroll", "css": "img#totp-qr[src^='data:image/svg+xml;base64,']" }),
        json!({ "do": "click", "css": "details.manual > summary" }),
        json!({ "do": "text", "css": "#totp-secret", "as": "secret" }),
        axe("thiết lập mã xác thực khi đăng nhập"),
        // Enrolment finishes in the session that was shown the secret, with
        // a code from an independent implementation (oathtool).
        json!({ "do": "fill_totp", "css": "#totp-enrol input[name=code]", "secret": "secret" }),
        json!({ "do": "click", "css": "#totp-enrol button[type=submit]" }),
        json!({ "do": "expect_text", "css": "#recovery-codes", "contains": "" }),
        json!({ "do": "text", "css": "#recovery-codes", "as": "recovery" }),
        axe("mã khôi phục"),
    ]);
    let enrol = flow(work.path(), "enrol", steps);
    let secret = enrol["texts"]["secret"].as_str().expect("the secret shown").to_string();

    // Signs in again with a recovery code (the current step's code was
    // used to enrol), then creates a user.
    let code = enrol["texts"]["recovery"]
        .as_str()
        .and_then(|t| t.split_whitespace().next())
        .expect("a recovery code shown")
        .to_string();
    let steps = vec![
        json!({ "do": "goto", "url": format!("{base}/signin?next=/admin") }),
        json!({ "do": "fill", "css": "#signin input[name=email]", "text": "qt@bdv.example" }),
        json!({ "do": "fill", "css": "#signin input[name=password]", "text": "mat-khau-quan-tri" }),
        json!({ "do": "click", "css": "#signin button[type=submit]" }),
        json!({ "do": "fill", "css": "#totp-code input[name=code]", "text": code }),
        json!({ "do": "click", "css": "#totp-code button[type=submit]" }),
        json!({ "do": "expect_url", "contains": "/admin" }),
        json!({ "do": "goto", "url": format!("{base}/admin") }),
        axe("quản trị"),
        json!({ "do": "fill", "css": "#new-user input[name=email]", "text": "lan@ubnd.example" }),
        json!({ "do": "fill", "css": "#new-user input[name=name]", "text": "Trần Thị Lan" }),
        json!({ "do": "click", "css": "#new-user select[name=agency] option[value=UBND]" }),
        json!({ "do": "click", "css": "#new-user input[name=role][value=supervisor]" }),
        json!({ "do": "click", "css": "#new-user button[type=submit]" }),
        json!({ "do": "expect_url", "contains": "/admin/users/" }),
        json!({ "do": "expect_text", "css": ".done", "contains": "Đã tạo người dùng" }),
        json!({ "do": "expect_text", "css": "#roles", "contains": "cán bộ, lãnh đạo duyệt" }),
        json!({ "do": "expect_text", "css": "#account-history", "contains": "Quản Trị Viên" }),
        axe("quản lý tài khoản"),
        // A refused change shows an error page that leads back to the account.
        json!({ "do": "goto", "url": format!("{base}/admin/users/khong-co") }),
        axe("lỗi quản trị"),
    ];
    flow(work.path(), "create", steps);

    // The user receives the link at the SMTP server and signs in with it.
    let mail = mail_to(&smtp, "lan@ubnd.example", 1);
    let link = link_in(&mail[0]);
    assert!(link.starts_with(&format!("{base}/signin/")), "{link}");
    flow(work.path(), "user", set_password_steps(&link, "mat-khau-cua-lan"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let session = rt.block_on(sign_in(port, "lan@ubnd.example", "mat-khau-cua-lan"));
    let out = bin()
        .args([
            "--db",
            dbs,
            "token",
            "create",
            "--email",
            "lan@ubnd.example",
            "--label",
            "máy",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "token create: {}", stderr(&out));
    let token = stdout(&out).trim().to_string();
    let auth = format!("Bearer {token}");
    let inbox = |cookie: &str| {
        rt.block_on(http(port, "GET", "/inbox", &[("Cookie", cookie)], b""))
            .status
    };
    let api = || {
        rt.block_on(http(port, "GET", "/api/tasks", &[("Authorization", &auth)], b""))
            .status
    };
    assert_eq!((inbox(&session), api()), (200, 200));

    // The admin disables her; her session and token stop at once.
    let users: Value = serde_json::from_str(&stdout(
        &bin()
            .args(["--db", dbs, "--format", "json", "user", "list"])
            .output()
            .unwrap(),
    ))
    .unwrap();
    let id = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["email"] == "lan@ubnd.example")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let steps = vec![
        json!({ "do": "goto", "url": format!("{base}/admin/users/{id}") }),
        json!({ "do": "expect_url", "contains": "/signin?next=" }),
        json!({ "do": "fill", "css": "input[name=email]", "text": "qt@bdv.example" }),
        json!({ "do": "fill", "css": "input[name=password]", "text": "mat-khau-quan-tri" }),
        json!({ "do": "click", "css": "#signin button[type=submit]" }),
        axe("mã xác thực khi đăng nhập"),
        // The code of the next 30 s step: the current one may be the one
        // used above, and a code works once.
        json!({ "do": "fill", "css": "#totp-code input[name=code]",
                "text": oathtool(&secret, chrono::Utc::now() + chrono::Duration::seconds(30)) }),
        json!({ "do": "click", "css": "#totp-code button[type=submit]" }),
        json!({ "do": "expect_url", "contains": format!("/admin/users/{id}") }),
        json!({ "do": "expect_text", "css": "#sessions", "contains": "2" }),
        json!({ "do": "click", "css": "#disable button" }),
        json!({ "do": "expect_text", "css": "#confirm-question", "contains": "Khóa tài khoản của" }),
        json!({ "do": "fits_width" }),
        axe("xác nhận khóa tài khoản"),
        json!({ "do": "click", "css": "form[data-confirm=disable] button[type=submit]" }),
        json!({ "do": "expect_text", "css": ".done", "contains": "Đã khóa tài khoản" }),
        json!({ "do": "expect_text", "css": "#state", "contains": "bị khóa" }),
        json!({ "do": "expect_text", "css": "#sessions", "contains": "0" }),
        json!({ "do": "expect_text", "css": "#account-history", "contains": "Khóa tài khoản" }),
        axe("tài khoản bị khóa"),
    ];
    flow(work.path(), "disable", steps);
    assert_eq!(inbox(&session), 303, "her session ended");
    assert_eq!(api(), 401, "her token is refused");

    // The account's history says who did it, through the web.
    let out = bin()
        .args([
            "--db",
            dbs,
            "--format",
            "json",
            "user",
            "history",
            "--email",
            "lan@ubnd.example",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let history: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let events: Vec<(String, String)> = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["event"].as_str().unwrap().to_string(),
                e["actor_text"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for event in ["AccountCreated", "AccountDisabled"] {
        let (_, actor) = events.iter().find(|(e, _)| e == event).expect(event);
        assert!(
            actor.contains("qt@bdv.example") && actor.contains("qua web"),
            "{event}: {actor}"
        );
    }

    let _ = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let _ = child.wait();
}
