//! Accounts have a history, on both databases: the CLI's account commands
//! record events of the `Account` aggregate stamped with the operator and
//! holding no secret; a disabled account can neither sign in nor use a
//! token; `audit verify` compares the users tables with the events and
//! fails on a change made by SQL; a store made by release 0.1 gets its
//! users recorded and verifies.

use crate::helpers::*;
use crate::on_both_stores;
use crate::web::{form_token, App};
use kehoach::accounts::store::NewUser;
use kehoach::accounts::{parse_roles, Email};
use kehoach::domain::ids::{AgencyCode, PersonName};
use kehoach::engine::Engine;
use kehoach::store::feed::FeedEvent;
use serde_json::Value;

fn plan_file() -> String {
    shipped_plan_path().display().to_string()
}

fn ok(o: &std::process::Output) -> String {
    assert!(o.status.success(), "{}", stderr(o));
    stdout(o)
}

/// The events of the `Account` aggregates, as stored.
async fn account_events(engine: &Engine) -> Vec<FeedEvent> {
    all_events(engine)
        .await
        .into_iter()
        .filter(|e| e.aggregate_type == "Account")
        .collect()
}

async fn run_sql(engine: &Engine, sql: &str) {
    kehoach::with_pool!(&engine.store, pool => sqlx::query(sql).execute(pool).await.map(|_| ()))
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

async fn cli_commands_record_events(kind: &str) {
    let db = TestDb::of(kind).await;
    ok(&kehoach(&db, &["plan", "load", &plan_file()]));
    let email = "lan@bdv.example";
    let added = ok(&kehoach(
        &db,
        &[
            "user",
            "add",
            "--agency",
            "BDV",
            "--name",
            "Trần Thị Lan",
            "--email",
            email,
            "--role",
            "member",
        ],
    ));
    let link = added.split("/signin/").nth(1).expect("sign-in link").trim().to_string();
    ok(&kehoach(
        &db,
        &["user", "role", "--email", email, "--role", "supervisor,auditor"],
    ));
    ok(&kehoach(&db, &["user", "disable", "--email", email]));
    ok(&kehoach(&db, &["user", "enable", "--email", email]));
    let created = kehoach(
        &db,
        &[
            "--format",
            "json",
            "token",
            "create",
            "--email",
            email,
            "--label",
            "báo cáo",
        ],
    );
    let created: Value = serde_json::from_str(&ok(&created)).unwrap();
    let (token, id) = (created["token"].as_str().unwrap(), created["id"].as_str().unwrap());
    assert_eq!(id.len(), 16);
    let listed = ok(&kehoach(&db, &["token", "list", "--email", email]));
    assert!(
        listed.contains(id) && listed.contains("báo cáo") && listed.contains("còn dùng"),
        "{listed}"
    );
    ok(&kehoach(&db, &["token", "revoke", "--id", id]));
    let listed: Value = serde_json::from_str(&ok(&kehoach(&db, &["--format", "json", "token", "list"]))).unwrap();
    assert_eq!(listed[0]["id"], id);
    assert_eq!(listed[0]["revoked"], true);
    let relinked = ok(&kehoach(&db, &["user", "link", "--email", email]));
    let link2 = relinked
        .split("/signin/")
        .nth(1)
        .expect("second link")
        .trim()
        .to_string();

    // Unknown e-mail or token id: one line, exit 2, nothing written.
    let before = event_count(&db).await;
    for args in [
        &["user", "disable", "--email", "ai@bdv.example"][..],
        &["user", "enable", "--email", "ai@bdv.example"],
        &["user", "role", "--email", "ai@bdv.example", "--role", "member"],
        &["user", "history", "--email", "ai@bdv.example"],
        &["token", "revoke", "--id", "0123456789abcdef"],
        &["token", "revoke", "--id", "not-an-id"],
        &["token", "list", "--email", "ai@bdv.example"],
    ] {
        let out = kehoach(&db, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert_eq!(stderr(&out).trim().lines().count(), 1, "{args:?}: {}", stderr(&out));
    }
    assert_eq!(event_count(&db).await, before, "a refused command writes nothing");

    let engine = db.engine(clock("2023-01-10")).await;
    let events = account_events(&engine).await;
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        [
            "AccountCreated",
            "SigninLinkIssued",
            "RoleGranted",
            "RoleGranted",
            "RoleRevoked",
            "AccountDisabled",
            "AccountEnabled",
            "TokenCreated",
            "TokenRevoked",
            "SigninLinkIssued",
        ]
    );
    let user = engine
        .store
        .user_by_email(&Email::parse(email).unwrap())
        .await
        .unwrap()
        .unwrap();
    for e in &events {
        assert_eq!(e.aggregate_id, user.id);
        let meta: Value = serde_json::from_str(&e.metadata).unwrap();
        assert_eq!(meta["channel"], "cli", "{}", e.metadata);
        assert!(
            meta["operator"].as_str().is_some_and(|o| !o.is_empty()),
            "{}",
            e.metadata
        );
        assert!(meta["host"].as_str().is_some_and(|h| !h.is_empty()), "{}", e.metadata);
        let payload: Value = serde_json::from_str(&e.payload).unwrap();
        let stamp = &payload[&e.event_type]["stamp"]["by"];
        assert_eq!(stamp["operator"], meta["operator"], "{}", e.payload);
    }
    let revoked: Value = serde_json::from_str(&events[8].payload).unwrap();
    assert_eq!(revoked["TokenRevoked"]["token"], id);
    assert_eq!(revoked["TokenRevoked"]["label"], "báo cáo");
    // No secret anywhere in what is stored: not the token, not the links,
    // not their full hashes.
    let stored: String = all_events(&engine)
        .await
        .iter()
        .map(|e| format!("{}\n{}\n", e.payload, e.metadata))
        .collect();
    for secret in [token, &link, &link2] {
        assert!(!stored.contains(secret), "a secret is in the events");
        let hash = kehoach::accounts::store::digest(secret);
        assert!(!stored.contains(&hash), "a secret's stored hash is in the events");
    }
    let export = ok(&kehoach(&db, &["--format", "jsonl", "audit", "export"]));
    assert!(!export.contains(token) && !export.contains(&link) && !export.contains(&link2));

    // The history, as the CLI prints it.
    let history: Value = serde_json::from_str(&ok(&kehoach(
        &db,
        &["--format", "json", "user", "history", "--email", email],
    )))
    .unwrap();
    let lines = history["events"].as_array().unwrap();
    assert_eq!(lines.len(), 10);
    assert_eq!(lines[5]["what"], "Khóa tài khoản");
    assert!(lines[5]["actor_text"].as_str().unwrap().starts_with("Người vận hành "));
    let text = ok(&kehoach(&db, &["user", "history", "--email", email]));
    assert!(
        text.contains("Cấp vai trò kiểm tra") && text.contains("Thu hồi mã truy cập API"),
        "{text}"
    );

    let verified = kehoach(&db, &["--format", "json", "audit", "verify"]);
    let verified: Value = serde_json::from_str(&ok(&verified)).unwrap();
    assert_eq!(verified["summary"]["accounts"], 1);
    engine.store.close().await;
}
on_both_stores!(cli_account_commands_record_events, cli_commands_record_events);

async fn disabled_accounts_are_shut_out(kind: &str) {
    let app = App::shipped(kind, "2023-01-10").await;
    let new = NewUser {
        email: Email::parse("lan@bdv.example").unwrap(),
        name: PersonName::parse("Trần Thị Lan").unwrap(),
        agency: AgencyCode::parse("BDV").unwrap(),
        roles: parse_roles("member").unwrap(),
    };
    let (user, link) = app.engine.add_user(new, operator()).await.unwrap();
    let password = "mat-khau-du-dai";
    // The link sets the password over the web: recorded as the account itself.
    let (_, session, _) = app
        .engine
        .redeem_signin_link(&link, password.to_string())
        .await
        .unwrap();
    let cookie = format!("kh_session={session}");
    let token = app.engine.create_api_token(&user, "test", operator()).await.unwrap();
    assert_eq!(app.page("/inbox", &cookie).await.status, 200);
    assert_eq!(app.get("/api/tasks", &token).await.status, 200);

    let sign_in = || async {
        let r = http(app.port, "GET", "/signin", &[], b"").await;
        let (form, csrf) = form_token(&r);
        let body = format!("csrf={csrf}&next=%2Finbox&email=lan%40bdv.example&password={password}");
        http(
            app.port,
            "POST",
            "/signin",
            &[("Cookie", &form), ("Content-Type", "application/x-www-form-urlencoded")],
            body.as_bytes(),
        )
        .await
        .status
    };
    assert_eq!(sign_in().await, 303);

    let email = Email::parse("lan@bdv.example").unwrap();
    let (_, changed) = app.engine.set_disabled(&email, true, operator()).await.unwrap();
    assert!(changed);
    assert_eq!(
        app.get("/api/tasks", &token).await.status,
        401,
        "a disabled account's token"
    );
    let r = app.page("/inbox", &cookie).await;
    assert_eq!(r.status, 303, "a disabled account's session has ended");
    assert_eq!(sign_in().await, 401, "a disabled account cannot sign in");
    let fresh = app.engine.new_signin_link(&email, operator()).await;
    assert!(fresh.is_err(), "no sign-in link for a disabled account");

    app.engine.set_disabled(&email, false, operator()).await.unwrap();
    assert_eq!(app.get("/api/tasks", &token).await.status, 200);
    assert_eq!(sign_in().await, 303);
    assert_eq!(
        app.page("/inbox", &cookie).await.status,
        303,
        "ended sessions stay ended"
    );

    // The password was set through the web, by the account itself.
    let events = account_events(&app.engine).await;
    let set = events
        .iter()
        .find(|e| e.event_type == "PasswordSet")
        .expect("PasswordSet");
    let meta: Value = serde_json::from_str(&set.metadata).unwrap();
    assert_eq!(meta["account"], user.id.as_str());
    assert_eq!(meta["channel"], "web");
    assert!(events.iter().any(|e| e.event_type == "SigninLinkUsed"));
    let stored: String = events.iter().map(|e| format!("{}{}", e.payload, e.metadata)).collect();
    for secret in [link.as_str(), token.as_str(), session.as_str(), password] {
        assert!(!stored.contains(secret), "a secret is in the account events");
    }

    // The admin page links each account to its history, in Vietnamese.
    let admin = app.user("BTV", "Quản Trị Viên", "admin").await;
    let (admin_cookie, _) = app.session(&admin).await;
    let page = app.page("/admin", &admin_cookie).await;
    let href = format!("/admin/users/{}", user.id);
    assert!(page.status == 200 && page.body.contains(&href), "{}", page.body);
    let history = app.page(&href, &admin_cookie).await;
    assert_eq!(history.status, 200);
    for what in [
        "Tạo tài khoản",
        "Đặt mật khẩu",
        "Khóa tài khoản",
        "Mở khóa tài khoản",
        "Tạo mã truy cập API",
    ] {
        assert!(history.body.contains(what), "{what} missing from the account page");
    }
    assert!(history
        .body
        .contains("Trần Thị Lan &lt;lan@bdv.example&gt; (Ban Dân vận Thị ủy, qua web)"));
    let (member_cookie, _) = app.session(&user).await;
    assert_eq!(app.page(&href, &member_cookie).await.status, 403);
    assert_eq!(app.page("/admin/users/khong-co", &admin_cookie).await.status, 404);
}
on_both_stores!(
    disabled_accounts_are_shut_out_of_web_and_api,
    disabled_accounts_are_shut_out
);

async fn verify_compares_the_tables(kind: &str) {
    let db = TestDb::of(kind).await;
    ok(&kehoach(&db, &["plan", "load", &plan_file()]));
    let member = cli_user(&db, "BDV", "Trần Thị Lan", "member");
    cli_user(&db, "BTV", "Lê Văn Duyệt", "supervisor");
    ok(&kehoach(&db, &["token", "create", "--email", &member]));
    ok(&kehoach(&db, &["audit", "verify"]));
    let engine = db.engine(clock("2023-01-10")).await;
    let fails = |needle: &'static str| {
        let out = kehoach(&db, &["audit", "verify"]);
        assert_eq!(out.status.code(), Some(5), "{}", stdout(&out));
        let err = stderr(&out);
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains(needle) && err.contains(&member), "{err}");
    };
    let by_email = format!("WHERE email = '{member}'");
    run_sql(&engine, &format!("UPDATE users SET roles = 'member,admin' {by_email}")).await;
    fails("vai trò");
    run_sql(&engine, &format!("UPDATE users SET roles = 'member' {by_email}")).await;
    ok(&kehoach(&db, &["audit", "verify"]));
    run_sql(&engine, &format!("UPDATE users SET disabled = 1 {by_email}")).await;
    fails("bị khóa");
    run_sql(&engine, &format!("UPDATE users SET disabled = 0 {by_email}")).await;
    run_sql(&engine, "UPDATE api_tokens SET revoked = 1").await;
    fails("thu hồi");
    run_sql(&engine, "UPDATE api_tokens SET revoked = 0").await;
    ok(&kehoach(&db, &["audit", "verify"]));
    // A user inserted by SQL has no history.
    run_sql(
        &engine,
        "INSERT INTO users (id, email, name, agency, roles, created_at) VALUES ('sql0000000000000', 'sql@bdv.example', 'Lén Lút', 'BDV', 'admin', '2023-01-10T00:00:00Z')",
    )
    .await;
    let out = kehoach(&db, &["audit", "verify"]);
    assert_eq!(out.status.code(), Some(5));
    assert!(stderr(&out).contains("sql@bdv.example"), "{}", stderr(&out));
    engine.store.close().await;
}
on_both_stores!(verify_fails_after_a_sql_change_to_users, verify_compares_the_tables);

async fn old_store_is_recorded(kind: &str) {
    let db = TestDb::release_0_1(kind).await;
    // Commands that read write nothing: the users are reported as not yet
    // recorded, not as a divergence.
    let before = event_count(&db).await;
    let verified: Value = serde_json::from_str(&ok(&kehoach(&db, &["--format", "json", "audit", "verify"]))).unwrap();
    assert_eq!(verified["summary"]["accounts_unrecorded"], 2, "{verified}");
    let users = ok(&kehoach(&db, &["user", "list"]));
    assert!(
        users.contains("an@bdv.example") && users.contains("b@ubnd.example"),
        "{users}"
    );
    let history = ok(&kehoach(
        &db,
        &["--format", "json", "user", "history", "--email", "an@bdv.example"],
    ));
    assert_eq!(
        serde_json::from_str::<Value>(&history).unwrap()["events"],
        serde_json::json!([])
    );
    assert_eq!(event_count(&db).await, before, "reading records nothing");

    // The first command that writes records each user as the table has it.
    ok(&kehoach(&db, &["audit", "checkpoint"]));
    let engine = db.engine(clock("2023-04-05")).await;
    let events = account_events(&engine).await;
    assert_eq!(events.len(), 2);
    for e in &events {
        assert_eq!((e.event_type.as_str(), e.sequence), ("AccountRecorded", 1));
        let meta: Value = serde_json::from_str(&e.metadata).unwrap();
        assert_eq!(
            (meta["system"].as_str(), meta["channel"].as_str()),
            (Some("account-migration"), Some("system"))
        );
        let payload: Value = serde_json::from_str(&e.payload).unwrap();
        assert!(
            payload["AccountRecorded"]["created_at"] == "2023-01-04T17:00:00Z",
            "{}",
            e.payload
        );
        assert!(!e.payload.contains("password_hash"));
    }
    let an: Value = serde_json::from_str(
        &events
            .iter()
            .find(|e| e.payload.contains("an@bdv.example"))
            .unwrap()
            .payload,
    )
    .unwrap();
    assert_eq!(an["AccountRecorded"]["roles"], serde_json::json!(["supervisor"]));
    assert_eq!(an["AccountRecorded"]["agency"], "BDV");
    let verified: Value = serde_json::from_str(&ok(&kehoach(&db, &["--format", "json", "audit", "verify"]))).unwrap();
    assert_eq!(verified["summary"]["accounts"], 2, "{verified}");
    assert_eq!(verified["summary"]["accounts_unrecorded"], 0, "{verified}");

    // Recorded once; then histories go on from there.
    ok(&kehoach(
        &db,
        &[
            "user",
            "role",
            "--email",
            "b@ubnd.example",
            "--role",
            "member,supervisor",
        ],
    ));
    ok(&kehoach(&db, &["audit", "checkpoint"]));
    let types: Vec<String> = account_events(&engine)
        .await
        .into_iter()
        .map(|e| e.event_type)
        .collect();
    assert_eq!(types.iter().filter(|t| *t == "AccountRecorded").count(), 2);
    assert_eq!(types.iter().filter(|t| *t == "RoleGranted").count(), 1);
    ok(&kehoach(&db, &["audit", "verify"]));
    engine.store.close().await;
}
on_both_stores!(release_0_1_users_are_recorded_and_verify, old_store_is_recorded);
