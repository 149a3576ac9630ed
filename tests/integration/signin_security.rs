//! Sign-in that holds up, over real HTTP on both databases, with a real
//! SMTP server (aiosmtpd) and an independent TOTP implementation
//! (Debian's `oathtool`): only same-site paths after sign-in, throttling
//! and locks (and the lock e-mail), equal timing for unknown e-mails,
//! "Quên mật khẩu" from the e-mail alone, links and sessions that end with
//! a new password, session limits, sign out everywhere, and two-factor
//! sign-in.

use crate::helpers::*;
use crate::on_both_stores;
use crate::web::{encode, form_token, App};
use kehoach::accounts::store::NewUser;
use kehoach::accounts::{parse_roles, Email, User};
use kehoach::config::{MailSettings, SecuritySettings};
use kehoach::domain::ids::{AgencyCode, PersonName};
use kehoach::notification::account_mail::AccountMailer;
use std::time::{Duration, Instant};

const PASSWORD: &str = "mat-khau-du-dai";

fn settings() -> SecuritySettings {
    SecuritySettings {
        trusted_proxies: vec!["127.0.0.1".parse().unwrap()],
        ..SecuritySettings::default()
    }
}

fn mailer(smtp: &SmtpServer) -> AccountMailer {
    AccountMailer::from_settings(&MailSettings {
        smtp_url: Some(smtp.url()),
        from: "kehoach <kehoach@ducpho.example>".into(),
        base_url: "http://127.0.0.1".into(),
        base_url_set: true,
        outbox_dir: std::env::temp_dir(),
        max_attempts: None,
        retry_hours: 1,
    })
    .expect("mailer")
}

async fn app_with(kind: &str, security: SecuritySettings, smtp: Option<&SmtpServer>) -> App {
    let mailer = smtp.map(mailer);
    App::start_with(kind, "2023-01-10", &shipped_plan(), move |s| {
        let s = s.with_security(security);
        match mailer {
            Some(m) => s.with_mailer(m),
            None => s,
        }
    })
    .await
}

/// A user of BDV with `roles` and the password `PASSWORD`.
async fn user_with_password(app: &App, local: &str, roles: &str) -> User {
    let (user, link) = app
        .engine
        .add_user(
            NewUser {
                email: Email::parse(&format!("{local}@bdv.example")).unwrap(),
                name: PersonName::parse("Trần Thị Lan").unwrap(),
                agency: AgencyCode::parse("BDV").unwrap(),
                roles: parse_roles(roles).unwrap(),
            },
            operator(),
        )
        .await
        .unwrap();
    app.engine.redeem_signin_link(&link, PASSWORD.into()).await.unwrap();
    user
}

fn session_cookie(r: &Resp) -> Option<String> {
    r.all("set-cookie")
        .into_iter()
        .find(|c| c.starts_with("kh_session=") && !c.starts_with("kh_session=;"))
        .map(|c| c.split(';').next().unwrap().to_string())
}

/// Posts an anonymous form (sign-in, "Quên mật khẩu") the way a browser
/// does: GET it for its CSRF cookie and field, then POST, from `client`
/// (sent as `X-Forwarded-For`, which the test server trusts from 127.0.0.1).
async fn post_form(app: &App, path: &str, fields: &[(&str, &str)], client: &str) -> Resp {
    let token = form_of(app, path).await;
    post_with(app, path, &token, fields, client).await
}

async fn form_of(app: &App, path: &str) -> (String, String) {
    form_token(&http(app.port, "GET", path, &[], b"").await)
}

async fn post_with(
    app: &App,
    path: &str,
    (cookie, csrf): &(String, String),
    fields: &[(&str, &str)],
    client: &str,
) -> Resp {
    let mut body = format!("csrf={csrf}");
    for (k, v) in fields {
        body.push_str(&format!("&{}={}", encode(k), encode(v)));
    }
    http(
        app.port,
        "POST",
        path,
        &[
            ("Cookie", cookie),
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("X-Forwarded-For", client),
            ("User-Agent", "kehoach-test/1.0"),
        ],
        body.as_bytes(),
    )
    .await
}

async fn sign_in(app: &App, email: &str, password: &str, client: &str) -> Resp {
    post_form(
        app,
        "/signin",
        &[("email", email), ("password", password), ("next", "/inbox")],
        client,
    )
    .await
}

/// Waits for aiosmtpd to have a message to `to` whose subject contains `subject`.
async fn mail_to(smtp: &SmtpServer, to: &str, subject: &str) -> serde_json::Value {
    mails_to(smtp, to, subject, 1).await.remove(0)
}

async fn event_names(app: &App, user: &User) -> Vec<&'static str> {
    app.engine
        .store
        .account_events(&user.id)
        .await
        .unwrap()
        .iter()
        .map(|(_, e)| e.name())
        .collect()
}

async fn only_same_site_paths_after_sign_in(kind: &str) {
    let app = app_with(kind, settings(), None).await;
    let user = user_with_password(&app, "lan", "member").await;
    for bad in ["/%09/evil.example", "//evil", "/\\evil", "https://evil", "/%0d%0a/evil"] {
        // The sign-in page keeps only a same-site path in its form…
        let r = http(app.port, "GET", &format!("/signin?next={bad}"), &[], b"").await;
        assert!(r.body.contains("name=\"next\" value=\"/\""), "{bad}: {}", r.body);
        // …and signing in with a forged one lands on this site.
        let decoded = bad.replace("%09", "\t").replace("%0d%0a", "\r\n");
        let r = post_form(
            &app,
            "/signin",
            &[
                ("email", user.email.as_str()),
                ("password", PASSWORD),
                ("next", &decoded),
            ],
            "10.0.0.1",
        )
        .await;
        assert_eq!((r.status, r.header("location")), (303, Some("/")), "{bad}");
    }
    let r = post_form(
        &app,
        "/signin",
        &[
            ("email", user.email.as_str()),
            ("password", PASSWORD),
            ("next", "/plans/x"),
        ],
        "10.0.0.1",
    )
    .await;
    assert_eq!(r.header("location"), Some("/plans/x"), "a same-site path is followed");
}
on_both_stores!(open_redirect_is_closed, only_same_site_paths_after_sign_in);

async fn throttled_sign_in(kind: &str) {
    let smtp = SmtpServer::start();
    let app = app_with(kind, settings(), Some(&smtp)).await;
    let user = user_with_password(&app, "lan", "member").await;
    let email = user.email.to_string();
    // Ten wrong passwords from one address: the tenth locks the account.
    for i in 1..=9 {
        assert_eq!(
            sign_in(&app, &email, "sai-mat-khau", "10.0.0.1").await.status,
            401,
            "attempt {i}"
        );
    }
    let r = sign_in(&app, &email, "sai-mat-khau", "10.0.0.1").await;
    assert_eq!(r.status, 429);
    // Then the right password is refused too, from there and from elsewhere.
    for client in ["10.0.0.1", "10.0.0.2"] {
        let r = sign_in(&app, &email, PASSWORD, client).await;
        assert_eq!(r.status, 429, "{client}");
        assert!(r.body.contains("hãy thử lại sau"), "{}", r.body);
        assert!(r.header("retry-after").is_some());
        assert!(session_cookie(&r).is_none());
    }
    // The holder is told, and the lock is in the account's history.
    let mail = mail_to(&smtp, &email, "tạm bị khóa").await;
    assert!(mail["text"].as_str().unwrap().contains("10 lần nhập sai"), "{mail}");
    assert!(event_names(&app, &user).await.contains(&"SigninLocked"));
    // A minute later the account opens again.
    app.clock.set(app.engine.clock.now() + chrono::Duration::seconds(61));
    let r = sign_in(&app, &email, PASSWORD, "10.0.0.2").await;
    assert_eq!((r.status, r.header("location")), (303, Some("/inbox")));

    // Ten failures from one address on other e-mails lock that address,
    // not the account from another address.
    for i in 1..=10 {
        let r = sign_in(&app, &format!("khong-co-{i}@bdv.example"), "sai-mat-khau", "10.0.0.3").await;
        assert_eq!(r.status, if i < 10 { 401 } else { 429 }, "attempt {i}");
    }
    assert_eq!(sign_in(&app, &email, PASSWORD, "10.0.0.3").await.status, 429);
    let first = session_cookie(&sign_in(&app, &email, PASSWORD, "10.0.0.4").await).expect("signed in");

    // Signing in again from the same browser replaces its session.
    let (form_cookie, csrf) = form_of(&app, "/signin").await;
    let both = (format!("{form_cookie}; {first}"), csrf);
    let fields = [("email", email.as_str()), ("password", PASSWORD), ("next", "/inbox")];
    let second = session_cookie(&post_with(&app, "/signin", &both, &fields, "10.0.0.4").await).expect("again");
    assert_ne!(first, second);
    assert_eq!(app.page("/inbox", &first).await.status, 303, "the old session ended");
    assert_eq!(app.page("/inbox", &second).await.status, 200);
}
on_both_stores!(sign_in_is_throttled, throttled_sign_in);

/// Twenty wrong guesses at once: no more than the limit are checked
/// (attempts are counted before their check), one lock is taken, the
/// holder gets one e-mail, and the right password is refused afterwards.
async fn burst_of_guesses(kind: &str) {
    let smtp = SmtpServer::start();
    let app = app_with(kind, settings(), Some(&smtp)).await;
    let user = user_with_password(&app, "lan", "member").await;
    let email = user.email.to_string();
    let mut forms = Vec::new();
    for _ in 0..20 {
        forms.push(form_of(&app, "/signin").await);
    }
    let guesses = forms.iter().enumerate().map(|(i, token)| {
        let (app, email) = (&app, &email);
        async move {
            let password = format!("sai-{i}");
            let fields = [
                ("email", email.as_str()),
                ("password", password.as_str()),
                ("next", "/inbox"),
            ];
            post_with(app, "/signin", token, &fields, "10.0.7.1").await.status
        }
    });
    let answers = futures::future::join_all(guesses).await;
    let checked = answers.iter().filter(|status| **status == 401).count();
    assert!(checked <= 10, "at most 10 of 20 guesses checked: {answers:?}");
    assert!(answers.iter().all(|s| [401, 429].contains(s)), "{answers:?}");
    assert_eq!(
        sign_in(&app, &email, PASSWORD, "10.0.7.2").await.status,
        429,
        "locked after the burst"
    );
    let locks = event_names(&app, &user)
        .await
        .into_iter()
        .filter(|e| *e == "SigninLocked")
        .count();
    assert_eq!(locks, 1, "one lock recorded");
    mail_to(&smtp, &email, "tạm bị khóa").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mails = smtp
        .messages()
        .into_iter()
        .filter(|m| m["subject"].as_str().unwrap_or("").contains("tạm bị khóa"))
        .count();
    assert_eq!(mails, 1, "one e-mail to the holder");
}
on_both_stores!(burst_of_guesses_is_throttled, burst_of_guesses);

/// Without a trusted proxy, `X-Forwarded-For` is ignored: changing it does
/// not escape the lock of the real address.
async fn forwarded_for_is_ignored_by_default(kind: &str) {
    let app = app_with(kind, SecuritySettings::default(), None).await;
    let user = user_with_password(&app, "lan", "member").await;
    for i in 1..=10 {
        let r = sign_in(&app, &format!("khong-co-{i}@bdv.example"), "x", &format!("10.0.1.{i}")).await;
        assert_eq!(r.status, if i < 10 { 401 } else { 429 }, "attempt {i}");
    }
    assert_eq!(
        sign_in(&app, user.email.as_str(), PASSWORD, "10.0.2.1").await.status,
        429
    );
}
on_both_stores!(untrusted_forwarded_for, forwarded_for_is_ignored_by_default);

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

async fn unknown_email_takes_as_long(kind: &str) {
    let security = SecuritySettings {
        max_failures: 1000,
        ..settings()
    };
    let app = app_with(kind, security, None).await;
    let user = user_with_password(&app, "lan", "member").await;
    // One timing test at a time: the two databases' runs would load each other.
    static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _turn = ONE_AT_A_TIME.lock().await;
    let (mut unknown, mut wrong) = (vec![], vec![]);
    // Interleaved, each first in turn, so that the machine's load and any
    // warm-up fall on both alike.
    for i in 0..41 {
        let mut pair = [
            (&mut unknown, format!("khong-co-{i}@bdv.example")),
            (&mut wrong, user.email.to_string()),
        ];
        if i % 2 == 1 {
            pair.reverse();
        }
        for (times, email) in pair {
            let token = form_of(&app, "/signin").await;
            let fields = [
                ("email", email.as_str()),
                ("password", "sai-mat-khau"),
                ("next", "/inbox"),
            ];
            let started = Instant::now();
            let r = post_with(&app, "/signin", &token, &fields, "10.0.0.9").await;
            times.push(started.elapsed());
            assert_eq!(r.status, 401);
        }
    }
    // The ratio within each pair (the two requests of a pair ran under the
    // same load), then its median: a burst of load elsewhere moves both.
    let mut ratios: Vec<f64> = unknown
        .iter()
        .zip(&wrong)
        .map(|(u, w)| u.as_secs_f64() / w.as_secs_f64())
        .collect();
    ratios.sort_by(f64::total_cmp);
    let ratio = ratios[ratios.len() / 2];
    let (u, w) = (median(unknown), median(wrong));
    eprintln!("median unknown e-mail {u:?}, wrong password {w:?}, median ratio in a pair {ratio:.3}");
    assert!(
        (0.8..=1.25).contains(&ratio),
        "unknown {u:?} vs wrong {w:?}: ratio {ratio:.3}"
    );
}
on_both_stores!(unknown_email_timing, unknown_email_takes_as_long);

/// The CSRF field of a signed-in page.
fn csrf_of(r: &Resp) -> String {
    let field = r.body.split("name=\"csrf\" value=\"").nth(1).expect("csrf field");
    field[..field.find('"').unwrap()].to_string()
}

/// Every message to `to` about `subject`, once there are `n`.
async fn mails_to(smtp: &SmtpServer, to: &str, subject: &str, n: usize) -> Vec<serde_json::Value> {
    for _ in 0..100 {
        let found: Vec<_> = smtp
            .messages()
            .into_iter()
            .filter(|m| {
                m["to"].as_str().unwrap_or("").contains(to) && m["subject"].as_str().unwrap_or("").contains(subject)
            })
            .collect();
        if found.len() >= n {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("fewer than {n} messages to {to} about {subject:?}");
}

/// The path of the sign-in link in a message.
fn link_in(mail: &serde_json::Value) -> String {
    let text = mail["text"].as_str().unwrap();
    let start = text.find("/signin/").expect("link in the message");
    text[start..].split_whitespace().next().unwrap().to_string()
}

async fn set_password_by_link(app: &App, path: &str, password: &str) -> Resp {
    post_form(
        app,
        path,
        &[("password", password), ("password2", password)],
        "10.0.0.1",
    )
    .await
}

async fn signed_in_page(app: &App, cookie: &str) -> bool {
    app.page("/inbox", cookie).await.status == 200
}

async fn password_reset_by_email(kind: &str) {
    let smtp = SmtpServer::start();
    let app = app_with(kind, settings(), Some(&smtp)).await;
    let user = user_with_password(&app, "lan", "member").await;
    let email = user.email.to_string();
    let before = session_cookie(&sign_in(&app, &email, PASSWORD, "10.0.0.1").await).expect("session");
    assert!(signed_in_page(&app, &before).await);

    // The sign-in page links to the form; the answer is the same for an
    // address with an account and one without.
    assert!(http(app.port, "GET", "/signin", &[], b"")
        .await
        .body
        .contains("href=\"/forgot\""));
    let known = post_form(&app, "/forgot", &[("email", &email)], "10.0.0.1").await;
    let unknown = post_form(&app, "/forgot", &[("email", "khong-co@bdv.example")], "10.0.0.1").await;
    assert_eq!((known.status, unknown.status), (200, 200));
    assert_eq!(known.body, unknown.body);
    assert!(known.body.contains("forgot-sent"));
    let second = post_form(&app, "/forgot", &[("email", &email)], "10.0.0.1").await;
    assert_eq!(second.status, 200);

    // Two links came; the second sets a password and kills the first.
    let mails = mails_to(&smtp, &email, "Đặt lại mật khẩu", 2).await;
    let links: Vec<String> = mails.iter().map(link_in).collect();
    assert_ne!(links[0], links[1]);
    let r = set_password_by_link(&app, &links[1], "mat-khau-moi-day").await;
    assert_eq!((r.status, r.header("location")), (303, Some("/")), "{}", r.body);
    let after = session_cookie(&r).expect("new session");
    assert!(signed_in_page(&app, &after).await);
    assert_eq!(
        http(app.port, "GET", &links[0], &[], b"").await.status,
        404,
        "the first link is dead"
    );
    assert_eq!(
        http(app.port, "GET", &links[1], &[], b"").await.status,
        404,
        "the second is spent"
    );
    // The session opened before the reset is dead.
    assert!(!signed_in_page(&app, &before).await);
    // The new password signs in, the old one does not.
    assert_eq!(sign_in(&app, &email, PASSWORD, "10.0.0.1").await.status, 401);
    assert_eq!(sign_in(&app, &email, "mat-khau-moi-day", "10.0.0.1").await.status, 303);
    let names = event_names(&app, &user).await;
    for e in ["SigninLinkIssued", "SigninLinksRevoked", "SessionsEnded", "PasswordSet"] {
        assert!(names.contains(&e), "{e} in {names:?}");
    }
    let issued_by_self_service = app
        .engine
        .store
        .account_events(&user.id)
        .await
        .unwrap()
        .iter()
        .any(|(_, e)| {
            e.name() == "SigninLinkIssued" && serde_json::to_string(&e.stamp().by).unwrap().contains("self-service")
        });
    assert!(issued_by_self_service);
    // The form is CSRF-protected.
    let r = http(
        app.port,
        "POST",
        "/forgot",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        format!("email={}", encode(&email)).as_bytes(),
    )
    .await;
    assert_eq!(r.status, 403);
    // Requests from one address are throttled.
    for i in 1..=10 {
        let r = post_form(&app, "/forgot", &[("email", "khong-co@bdv.example")], "10.0.7.1").await;
        assert_eq!(r.status, 200, "request {i}");
    }
    let r = post_form(&app, "/forgot", &[("email", &email)], "10.0.7.1").await;
    assert_eq!(r.status, 429);
    assert!(r.body.contains("quá nhiều yêu cầu"));
}
on_both_stores!(forgotten_password_is_reset_by_email, password_reset_by_email);

async fn sessions_end(kind: &str) {
    let app = app_with(kind, settings(), None).await;
    let user = user_with_password(&app, "lan", "member").await;
    let email = user.email.to_string();
    let advance = |minutes: i64| {
        app.clock
            .set(app.engine.clock.now() + chrono::Duration::minutes(minutes))
    };

    // Idle: an hour without a request ends a session.
    let s = session_cookie(&sign_in(&app, &email, PASSWORD, "10.0.0.1").await).unwrap();
    advance(59);
    assert!(signed_in_page(&app, &s).await);
    advance(59);
    assert!(signed_in_page(&app, &s).await, "used a minute ago, idle 59 minutes");
    advance(61);
    assert!(!signed_in_page(&app, &s).await, "idle for 61 minutes");

    // Absolute: twelve hours after sign-in, however busy.
    let s = session_cookie(&sign_in(&app, &email, PASSWORD, "10.0.0.1").await).unwrap();
    for _ in 0..14 {
        advance(50);
        assert!(signed_in_page(&app, &s).await);
    }
    advance(50); // 12 h 30 min
    assert!(!signed_in_page(&app, &s).await, "older than twelve hours");

    // The account page lists one's sessions; one ends another, then all.
    let a = session_cookie(&sign_in(&app, &email, PASSWORD, "10.0.0.1").await).unwrap();
    let b = session_cookie(&sign_in(&app, &email, PASSWORD, "10.0.0.2").await).unwrap();
    let c = session_cookie(&sign_in(&app, &email, PASSWORD, "10.0.0.3").await).unwrap();
    let page = app.page("/account", &a).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Tài khoản") && page.body.contains("phiên này"));
    for client in ["10.0.0.1", "10.0.0.2", "10.0.0.3"] {
        assert!(page.body.contains(client), "{client} listed");
    }
    assert!(page.body.contains("kehoach-test/1.0"));
    let csrf = csrf_of(&page);
    let end_b = page
        .body
        .split("action=\"/account/sessions/")
        .skip(1)
        .map(|rest| rest[..rest.find('"').unwrap()].to_string())
        .collect::<Vec<_>>();
    assert_eq!(end_b.len(), 2, "the other two sessions can be ended");
    for path in &end_b {
        let r = app
            .form(&format!("/account/sessions/{path}"), &a, &[("csrf", &csrf)])
            .await;
        assert_eq!(r.status, 303);
    }
    assert!(!signed_in_page(&app, &b).await && !signed_in_page(&app, &c).await);
    let b = session_cookie(&sign_in(&app, &email, PASSWORD, "10.0.0.2").await).unwrap();
    let r = app.form("/account/signout-everywhere", &a, &[("csrf", "sai")]).await;
    assert_eq!(r.status, 403, "CSRF");
    let r = app.form("/account/signout-everywhere", &a, &[("csrf", &csrf)]).await;
    assert_eq!((r.status, r.header("location")), (303, Some("/signin")));
    assert!(!signed_in_page(&app, &a).await && !signed_in_page(&app, &b).await);
    assert!(event_names(&app, &user).await.contains(&"SessionsEnded"));

    // A change of roles ends the user's sessions.
    let s = session_cookie(&sign_in(&app, &email, PASSWORD, "10.0.0.1").await).unwrap();
    app.engine
        .set_roles(&user.email, parse_roles("member,supervisor").unwrap(), operator())
        .await
        .unwrap();
    assert!(!signed_in_page(&app, &s).await, "new roles, new session");
    let s = session_cookie(&sign_in(&app, &email, PASSWORD, "10.0.0.1").await).unwrap();
    assert_eq!(
        app.page("/queue", &s).await.status,
        200,
        "signed in again with the new role"
    );
}
on_both_stores!(sessions_expire_and_end, sessions_end);

async fn run_sql(app: &App, q: String) {
    kehoach::with_pool!(&app.engine.store, pool => sqlx::query(&q).execute(pool).await.map(|_| ()))
        .unwrap_or_else(|e| panic!("{q}: {e}"));
}

/// A TOTP code computed by `oathtool` for the server's clock.
pub(crate) fn oathtool(secret: &str, at: chrono::DateTime<chrono::Utc>) -> String {
    let out = std::process::Command::new("oathtool")
        .args([
            "--totp",
            "-b",
            secret,
            "--now",
            &at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        ])
        .output()
        .expect("oathtool is installed (scripts/test-services)");
    assert!(
        out.status.success(),
        "oathtool: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn code_between(body: &str, id: &str) -> String {
    let start = body.find(&format!("id=\"{id}\">")).expect(id) + id.len() + 6;
    body[start..start + body[start..].find('<').unwrap()].to_string()
}

/// The second sign-in step, each time from another address (so that what
/// is counted is the account's codes, not the address's failures).
async fn second_step(app: &App, cookie: &str, code: &str) -> Resp {
    static CLIENT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
    let n = CLIENT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let page = app.page("/signin/code?next=/admin", cookie).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let body = format!("csrf={}&next=%2Fadmin&code={}", csrf_of(&page), encode(code));
    let client = format!("10.1.{}.{}", n / 250, n % 250 + 1);
    http(
        app.port,
        "POST",
        "/signin/code",
        &[
            ("Cookie", cookie),
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("X-Forwarded-For", &client),
        ],
        body.as_bytes(),
    )
    .await
}

async fn two_factor(kind: &str) {
    let smtp = SmtpServer::start();
    let app = app_with(kind, settings(), Some(&smtp)).await;
    let admin = user_with_password(&app, "quantri", "admin").await;
    let email = admin.email.to_string();
    let now = || app.engine.clock.now();

    // Every sign-in of an admin: the password, then a half-way session.
    let sign_in_admin = || async {
        let r = post_form(
            &app,
            "/signin",
            &[("email", &email), ("password", PASSWORD), ("next", "/admin")],
            "10.0.0.1",
        )
        .await;
        assert_eq!(r.header("location"), Some("/signin/code?next=/admin"));
        session_cookie(&r).unwrap()
    };
    // An admin without TOTP must set it up before anything else.
    let pending = sign_in_admin().await;
    assert_eq!(app.page("/admin", &pending).await.status, 303, "not signed in yet");
    let page = app.page("/signin/code?next=/admin", &pending).await;
    let secret = code_between(&page.body, "totp-secret");
    assert_eq!(secret.len(), 32, "20 bytes in base32");
    assert!(page.body.contains("src=\"data:image/svg+xml;base64,"), "a QR code");
    assert_eq!(
        code_between(
            &app.page("/signin/code?next=/admin", &pending).await.body,
            "totp-secret"
        ),
        secret,
        "the same secret while the session lasts"
    );
    // Another half-way session of the account is offered its own secret,
    // and a code of this session's secret does not enrol it.
    let other = sign_in_admin().await;
    let other_secret = code_between(&app.page("/signin/code?next=/admin", &other).await.body, "totp-secret");
    assert_ne!(other_secret, secret, "a secret per session");
    let r = second_step(&app, &other, &oathtool(&secret, now())).await;
    assert_eq!(r.status, 401, "another session's secret: {}", r.body);
    assert!(code_between(&page.body, "totp-uri").starts_with("otpauth://totp/kehoach:"));
    let code = oathtool(&secret, now());
    let r = second_step(&app, &pending, &code).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let recovery: Vec<String> = r
        .body
        .split("<li><code>")
        .skip(1)
        .map(|c| c[..c.find('<').unwrap()].to_string())
        .collect();
    assert_eq!(recovery.len(), 10);
    let session = session_cookie(&r).expect("a new session");
    assert_ne!(session, pending, "a new session id after the second factor");
    assert_eq!(app.page("/admin", &session).await.status, 200);
    assert_eq!(
        app.page("/admin", &pending).await.status,
        303,
        "the half-way session is gone"
    );

    // Next sign-in: password, then a code; a used code does not work again.
    let pending = sign_in_admin().await;
    let r = second_step(&app, &pending, &code).await;
    assert_eq!(r.status, 401, "a code works once");
    assert!(
        r.body.contains("mã xác thực không đúng") && r.body.contains("id=\"totp-code\""),
        "the form again"
    );
    app.clock.set(now() + chrono::Duration::seconds(30));
    let r = second_step(&app, &pending, &oathtool(&secret, now())).await;
    assert_eq!((r.status, r.header("location")), (303, Some("/admin")), "{}", r.body);
    assert_eq!(app.page("/admin", &session_cookie(&r).unwrap()).await.status, 200);

    // A recovery code works once.
    let pending = sign_in_admin().await;
    assert_eq!(second_step(&app, &pending, &recovery[3]).await.status, 303);
    let pending = sign_in_admin().await;
    assert_eq!(second_step(&app, &pending, &recovery[3]).await.status, 401);

    // Guessing codes is throttled like passwords.
    for i in 2..=9 {
        assert_eq!(second_step(&app, &pending, "000000").await.status, 401, "guess {i}");
    }
    let r = second_step(&app, &pending, "000001").await;
    assert_eq!(r.status, 429, "the tenth failure locks");
    app.clock.set(now() + chrono::Duration::seconds(30));
    assert_eq!(
        second_step(&app, &pending, &oathtool(&secret, now())).await.status,
        429,
        "even a right code"
    );
    mail_to(&smtp, &email, "tạm bị khóa").await;

    // The history says what happened, never the secret.
    let events = app.engine.store.account_events(&admin.id).await.unwrap();
    let names: Vec<_> = events.iter().map(|(_, e)| e.name()).collect();
    for e in ["TotpEnabled", "RecoveryCodesIssued", "RecoveryCodeUsed", "SigninLocked"] {
        assert!(names.contains(&e), "{e} in {names:?}");
    }
    let text = serde_json::to_string(&events.iter().map(|(_, e)| e).collect::<Vec<_>>()).unwrap();
    assert!(!text.contains(&secret) && !text.contains(&recovery[0]));

    // `audit verify` compares the table with the events: turning two-factor
    // off by SQL is found.
    let verify = || kehoach(app.db(), &["audit", "verify"]);
    assert!(verify().status.success(), "{}", stderr(&verify()));
    run_sql(
        &app,
        format!("UPDATE users SET totp_secret = NULL WHERE id = '{}'", admin.id),
    )
    .await;
    let out = verify();
    assert_eq!(out.status.code(), Some(5));
    assert!(stderr(&out).contains("xác thực hai bước"), "{}", stderr(&out));
    run_sql(
        &app,
        format!("UPDATE users SET totp_secret = '{secret}' WHERE id = '{}'", admin.id),
    )
    .await;
    assert!(verify().status.success());

    // An operator turns it off for an admin who lost the authenticator.
    let out = kehoach(app.db(), &["user", "totp-reset", "--email", &email]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(event_names(&app, &admin).await.contains(&"TotpDisabled"));
    assert!(verify().status.success(), "{}", stderr(&verify()));
    app.clock.set(now() + chrono::Duration::minutes(5));
    let pending = sign_in_admin().await;
    assert!(
        app.page("/signin/code?next=/admin", &pending)
            .await
            .body
            .contains("totp-secret"),
        "set up again"
    );
}
on_both_stores!(two_factor_sign_in, two_factor);
