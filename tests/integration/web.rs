//! The HTTP API and pages over real HTTP, on both databases: sign-in,
//! sessions, CSRF, API tokens, the authorisation matrix, calendar feeds
//! parsed by an independent iCalendar parser, and the security checks.

use crate::helpers::*;
use crate::on_both_stores;
use kehoach::accounts::store::NewUser;
use kehoach::accounts::{parse_roles, Email, User};
use kehoach::domain::ids::{AgencyCode, PersonName};
use kehoach::engine::Engine;
use kehoach::web::{router, AppState};
use serde_json::{json, Value};
use std::sync::Arc;

pub struct App {
    pub port: u16,
    pub engine: Arc<Engine>,
    pub clock: Arc<kehoach::clock::ManualClock>,
    _db: TestDb,
}

impl App {
    /// The web server on a fresh database holding `plan`, on a clock at `now`.
    pub async fn start(kind: &str, now: &str, plan: &kehoach::plan::PlanDefinition) -> Self {
        Self::start_with(kind, now, plan, |s| s).await
    }

    /// `start`, with the server's state adjusted first (settings, mail).
    pub async fn start_with(
        kind: &str,
        now: &str,
        plan: &kehoach::plan::PlanDefinition,
        configure: impl FnOnce(AppState) -> AppState,
    ) -> Self {
        let db = TestDb::of(kind).await;
        let clock = clock(now);
        let engine = Arc::new(db.engine(clock.clone()).await);
        engine.load_plan(plan).await.expect("load plan");
        engine.catch_up().await.expect("catch up");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().unwrap().port();
        let state = configure(AppState::new(engine.clone(), &format!("http://127.0.0.1:{port}")));
        let app = router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            port,
            engine,
            clock,
            _db: db,
        }
    }

    pub async fn shipped(kind: &str, now: &str) -> Self {
        Self::start(kind, now, &shipped_plan()).await
    }

    pub async fn user(&self, agency: &str, name: &str, roles: &str) -> User {
        let email = format!("{}.{}@test.example", agency.to_lowercase(), rand::random::<u32>());
        let new = NewUser {
            email: Email::parse(&email).unwrap(),
            name: PersonName::parse(name).unwrap(),
            agency: AgencyCode::parse(agency).unwrap(),
            roles: parse_roles(roles).unwrap(),
        };
        self.engine.add_user(new, operator()).await.expect("add user").0
    }

    /// An API token for a new user of `agency` with `roles`.
    pub async fn token(&self, agency: &str, name: &str, roles: &str) -> String {
        let user = self.user(agency, name, roles).await;
        self.engine.create_api_token(&user, "test", operator()).await.unwrap()
    }

    /// The database the server uses, for the CLI.
    pub fn db(&self) -> &TestDb {
        &self._db
    }

    /// A browser session: the cookie header and the session's CSRF token.
    pub async fn session(&self, user: &User) -> (String, String) {
        let (token, csrf) = self
            .engine
            .store
            .start_session(user, self.engine.clock.now())
            .await
            .unwrap();
        (format!("kh_session={token}"), csrf)
    }

    pub async fn get(&self, path: &str, token: &str) -> Resp {
        let auth = format!("Bearer {token}");
        http(self.port, "GET", path, &[("Authorization", &auth)], b"").await
    }

    pub async fn post(&self, path: &str, token: &str, body: &Value) -> Resp {
        let auth = format!("Bearer {token}");
        let body = serde_json::to_vec(body).unwrap();
        http(
            self.port,
            "POST",
            path,
            &[("Authorization", &auth), ("Content-Type", "application/json")],
            &body,
        )
        .await
    }

    pub async fn page(&self, path: &str, cookie: &str) -> Resp {
        http(self.port, "GET", path, &[("Cookie", cookie)], b"").await
    }

    pub async fn form(&self, path: &str, cookie: &str, fields: &[(&str, &str)]) -> Resp {
        let body = fields
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        http(
            self.port,
            "POST",
            path,
            &[
                ("Cookie", cookie),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            body.as_bytes(),
        )
        .await
    }

    pub async fn events(&self) -> i64 {
        self.engine.store.event_count().await.unwrap()
    }
}

pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

const TASK: &str = "/api/tasks/II.1.1";

async fn api_reads_and_acts(kind: &str) {
    // II.1.1: lead BTV, advisory BTG and BDV, implementers BTG and BDV.
    let app = App::shipped(kind, "2023-01-10").await;
    let member = app.token("BDV", "Nguyễn Văn An", "member").await;
    let lead = app.token("BTV", "Lê Thị Bình", "supervisor").await;
    let auditor = app.token("UBKT", "Phạm Kiểm", "auditor").await;
    let outsider = app.token("LLVT", "Võ Ngoài", "member").await;

    let r = http(app.port, "GET", "/api/tasks", &[], b"").await;
    assert_eq!(
        (r.status, r.json()["error"]["code"].clone()),
        (401, json!("unauthenticated"))
    );
    let r = app.get("/api/tasks", "kh_guess").await;
    assert_eq!((r.status, r.json()["error"]["code"].clone()), (401, json!("bad_token")));

    // An agency sees its own tasks; the auditors see every task.
    let all = app.get("/api/tasks", &auditor).await.json();
    assert_eq!(
        (all["tasks"].as_array().unwrap().len(), all["total"].clone()),
        (45, json!(45))
    );
    let mine = app.get("/api/tasks", &member).await.json();
    let mine = mine["tasks"].as_array().unwrap();
    assert!(!mine.is_empty() && mine.len() < 45);
    for t in mine {
        let involved: Vec<&str> = std::iter::once(&t["lead"])
            .chain(t["advisory"].as_array().unwrap())
            .chain(t["implementers"].as_array().unwrap())
            .filter_map(Value::as_str)
            .collect();
        assert!(involved.contains(&"BDV"), "{t}");
    }
    let r = app.get("/api/tasks?status=unknown", &member).await;
    assert_eq!(
        (r.status, r.json()["error"]["code"].clone()),
        (400, json!("bad_request"))
    );
    let r = app.get("/api/tasks?colour=red", &member).await;
    assert_eq!(r.status, 400, "unknown parameters are refused");

    let t = app.get(TASK, &member).await.json();
    assert_eq!(t["lead"], "BTV");
    assert_eq!(t["allowed"], json!(["report", "submit", "discuss"]));
    assert_eq!(app.get(TASK, &outsider).await.status, 403);
    let r = app.get("/api/tasks/IX.9", &auditor).await;
    assert_eq!((r.status, r.json()["error"]["code"].clone()), (404, json!("not_found")));

    // Rules of the domain come back as 422 with their code; bad input as 400.
    let approve = format!("{TASK}/milestones/complete/approve");
    let r = app.post(&approve, &lead, &json!({})).await;
    assert_eq!(
        (r.status, r.json()["error"]["code"].clone()),
        (422, json!("not_submitted"))
    );
    let r = app
        .post(&format!("{TASK}/milestones/complete/report"), &member, &json!({}))
        .await;
    assert_eq!(
        (r.status, r.json()["error"]["code"].clone()),
        (422, json!("empty_report"))
    );
    let r = app
        .post(
            &format!("{TASK}/milestones/complete/extend"),
            &lead,
            &json!({ "until": "31/02/2023", "reason": "x" }),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("31/02/2023"));
    let r = app
        .post(&format!("{TASK}/milestones/complete/fly"), &lead, &json!({}))
        .await;
    assert_eq!(r.status, 404);
    let r = http(
        app.port,
        "POST",
        &format!("{TASK}/milestones/complete/submit"),
        &[("Authorization", &format!("Bearer {member}"))],
        b"{not json",
    )
    .await;
    assert_eq!(
        (r.status, r.json()["error"]["code"].clone()),
        (400, json!("bad_request"))
    );

    // Report, submit, approve, a week after the plan was loaded: the
    // milestone moves and the history shows it.
    app.clock.set(at("2023-01-17T09:00:00+07:00"));
    let r = app
        .post(
            &format!("{TASK}/milestones/complete/report"),
            &member,
            &json!({ "note": "Đã quán triệt", "evidence": ["KH 12-KH/TU"] }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = app
        .post(
            &format!("{TASK}/milestones/complete/submit"),
            &member,
            &json!({ "note": "Xong" }),
        )
        .await;
    assert_eq!((r.status, r.json()["status"].clone()), (200, json!("submitted")));
    let queue = app.get("/api/queue", &lead).await.json();
    assert_eq!(queue[0]["task"], "II.1.1");
    assert_eq!(app.get("/api/queue", &member).await.json(), json!([]));
    // The auditor changes nothing, and the refusal writes nothing.
    let before = app.events().await;
    let r = app.post(&approve, &auditor, &json!({})).await;
    assert_eq!(
        (r.status, r.json()["error"]["code"].clone()),
        (403, json!("forbidden_role"))
    );
    assert_eq!(app.events().await, before);
    let r = app.post(&approve, &lead, &json!({ "note": "Đồng ý" })).await;
    assert_eq!((r.status, r.json()["status"].clone()), (200, json!("approved")));
    let r = app.post(&approve, &lead, &json!({})).await;
    assert_eq!(
        (r.status, r.json()["error"]["code"].clone()),
        (422, json!("already_approved"))
    );

    let h = app.get(&format!("{TASK}/history"), &auditor).await.json();
    let events: Vec<&str> = h["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .filter(|e| !e.starts_with("Reminder"))
        .collect();
    assert!(
        events.ends_with(&["ProgressReported", "MilestoneSubmitted", "MilestoneApproved"]),
        "{events:?}"
    );
    let h = app
        .get(&format!("{TASK}/history?as_of=2023-01-16"), &auditor)
        .await
        .json();
    assert_eq!(
        h["state"]["milestones"][0]["status"], "open",
        "as of before the actions"
    );

    // The whole plan as of a date is for auditors.
    let r = app
        .get("/api/plans/duc-pho-de-an-13/as-of?at=2023-01-10", &auditor)
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["tasks"].as_array().unwrap().len(), 45);
    assert_eq!(app.get("/api/plans/duc-pho-de-an-13/as-of", &member).await.status, 403);
}
on_both_stores!(api_reads_and_acts_over_http, api_reads_and_acts);

async fn an_agency_never_approves_its_own_obligation(kind: &str) {
    // II.1.1 is one joint plan that BTG and BDV draft and also advise on:
    // neither may approve it, whoever the person; the lead BTV may.
    let app = App::shipped(kind, "2023-01-10").await;
    let both = app.token("BDV", "Trần Hai Vai", "supervisor").await;
    let other = app.token("BDV", "Đỗ Người Khác", "supervisor").await;
    let btg = app.token("BTG", "Lê Tuyên Giáo", "supervisor").await;
    let lead = app.token("BTV", "Nguyễn Lãnh Đạo", "supervisor").await;
    let r = app
        .post(&format!("{TASK}/milestones/complete/submit"), &both, &json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.json()["obligations"],
        json!([{ "agency": null, "status": "submitted" }])
    );
    for who in [&both, &other, &btg] {
        let before = app.events().await;
        let r = app
            .post(&format!("{TASK}/milestones/complete/approve"), who, &json!({}))
            .await;
        assert_eq!(
            (r.status, r.json()["error"]["code"].clone()),
            (403, json!("own_obligation"))
        );
        assert_eq!(app.events().await, before, "a refusal writes nothing");
    }
    let r = app
        .post(&format!("{TASK}/milestones/complete/approve"), &lead, &json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let shown = app.get(TASK, &lead).await.json();
    let joint = &shown["milestones"][0]["obligations"][0];
    assert_eq!(joint["joint"], true);
    assert_eq!(joint["status"], "approved");
    assert_eq!(
        joint["submitted"]["by"]["agency"], "BDV",
        "the events say which agency did it"
    );
    assert_eq!(joint["submitted"]["by"]["channel"], "api");
}
on_both_stores!(own_obligation_is_a_403, an_agency_never_approves_its_own_obligation);

/// A plan for the matrix: one task with a lead, an advisory and an
/// implementing agency, and a fresh milestone for every attempt.
fn matrix_plan(milestones: usize) -> kehoach::plan::PlanDefinition {
    let mut text = String::from(
        r#"
[plan]
id = "ma-tran"
title = "Kế hoạch kiểm tra phân quyền"
issuer = "BTV"
period = { start = "2023-01-01", end = "2026-12-31" }

[[agencies]]
code = "BTV"
name = "Ban Thường vụ"
[[agencies]]
code = "BDV"
name = "Ban Dân vận"
[[agencies]]
code = "UBND"
name = "Ủy ban nhân dân"
[[agencies]]
code = "MTTQ"
name = "Mặt trận Tổ quốc"
[[agencies]]
code = "UBKT"
name = "Ủy ban Kiểm tra"

[[tasks]]
id = "I.1"
title = "Nhiệm vụ kiểm tra"
text = "Nhiệm vụ để thử mọi vai trò với mọi thao tác."
lead = "BTV"
advisory = ["BDV"]
implementers = ["UBND"]
source = { section = "I.1", line = 1 }
milestones = [
"#,
    );
    for i in 0..milestones {
        text.push_str(&format!(
            "  {{ kind = \"once\", due = \"2026-06-30\", key = \"m{i}\", title = \"Mốc {i}\" }},\n"
        ));
    }
    text.push_str("]\n");
    kehoach::plan::parse_str(std::path::Path::new("ma-tran.toml"), &text).unwrap_or_else(|d| panic!("{d:#?}"))
}

const ROLES: [&str; 4] = ["member", "supervisor", "auditor", "admin"];
const AGENCIES: [&str; 5] = ["BTV", "BDV", "UBND", "MTTQ", "UBKT"];
const ACTIONS: [&str; 9] = [
    "view", "report", "submit", "approve", "return", "extend", "waive", "cancel", "discuss",
];

/// The rules, written out independently of the code under test.
fn expected(agency: &str, role: &str, action: &str) -> bool {
    let involved = ["BTV", "BDV", "UBND"].contains(&agency);
    let supervises = ["BTV", "BDV"].contains(&agency);
    match action {
        "view" => involved || role == "auditor" || role == "admin",
        "report" | "submit" => agency == "UBND" && (role == "member" || role == "supervisor"),
        // The owing agency, or a supervisor of the task, in the discussion.
        "discuss" => {
            (agency == "UBND" && (role == "member" || role == "supervisor")) || (supervises && role == "supervisor")
        }
        _ => supervises && role == "supervisor",
    }
}

async fn authorisation_matrix(kind: &str) {
    let app = App::start(
        kind,
        "2023-06-01",
        &matrix_plan(AGENCIES.len() * ROLES.len() * ACTIONS.len()),
    )
    .await;
    let submitter = app.token("UBND", "Người Nộp Sẵn", "member").await;
    let mut next = 0;
    let mut unexpected = Vec::new();
    for agency in AGENCIES {
        for role in ROLES {
            let token = app.token(agency, &format!("Người {agency} {role}"), role).await;
            for action in ACTIONS {
                let m = format!("m{next}");
                next += 1;
                let base = "/api/tasks/I.1";
                if action == "approve" || action == "return" {
                    let r = app
                        .post(&format!("{base}/milestones/{m}/submit"), &submitter, &json!({}))
                        .await;
                    assert_eq!(r.status, 200, "preparing {m}: {}", r.body);
                }
                let before = app.events().await;
                let r = if action == "view" {
                    app.get(base, &token).await
                } else {
                    let body = json!({ "note": "ghi chú", "reason": "lý do", "until": "2026-09-30" });
                    let body = match action {
                        "report" | "submit" | "approve" | "discuss" => json!({ "note": body["note"] }),
                        "extend" => json!({ "until": body["until"], "reason": body["reason"] }),
                        _ => json!({ "reason": body["reason"] }),
                    };
                    app.post(&format!("{base}/milestones/{m}/{action}"), &token, &body)
                        .await
                };
                let allowed = expected(agency, role, action);
                let wrote = app.events().await - before;
                let ok = if allowed {
                    r.status == 200 && (action == "view" || wrote > 0)
                } else {
                    r.status == 403 && wrote == 0
                };
                if !ok {
                    unexpected.push(format!(
                        "{agency} {role} {action}: expected {}, got {} ({wrote} events) {}",
                        if allowed { "allow" } else { "403" },
                        r.status,
                        r.body
                    ));
                }
            }
        }
    }
    assert!(unexpected.is_empty(), "unexpected outcomes:\n{}", unexpected.join("\n"));
    // The matrix is not vacuous: both outcomes occur.
    let allowed = AGENCIES
        .iter()
        .flat_map(|a| {
            ROLES
                .iter()
                .flat_map(move |r| ACTIONS.iter().map(move |x| expected(a, r, x)))
        })
        .filter(|x| *x)
        .count();
    assert!(allowed > 20 && allowed < 160 - 40, "{allowed}");
}
on_both_stores!(authorisation_matrix_has_no_unexpected_allow, authorisation_matrix);

async fn api_limits_and_description(kind: &str) {
    let app = App::shipped(kind, "2023-01-10").await;
    let member = app.token("BDV", "Nguyễn Văn An", "member").await;
    let admin = app.token("BTV", "Quản Trị", "admin").await;
    // An oversized body is refused before it is read, as JSON, and changes nothing.
    let before = app.events().await;
    let big = vec![b'x'; 2 * 1024 * 1024];
    let r = http(
        app.port,
        "POST",
        &format!("{TASK}/milestones/complete/report"),
        &[("Authorization", &format!("Bearer {member}"))],
        &big,
    )
    .await;
    assert_eq!(
        (r.status, r.json()["error"]["code"].clone()),
        (413, json!("body_too_large"))
    );
    assert_eq!(app.events().await, before);

    // The OpenAPI description parses and describes every route.
    let spec = http(app.port, "GET", "/api/openapi.json", &[], b"").await.json();
    assert_eq!(spec["openapi"], "3.1.0");
    for path in [
        "/api/me",
        "/api/plans",
        "/api/plans/{plan}/as-of",
        "/api/tasks",
        "/api/tasks/{task}",
        "/api/tasks/{task}/history",
        "/api/tasks/{task}/milestones/{milestone}/{action}",
        "/api/queue",
    ] {
        assert!(spec["paths"][path].is_object(), "{path} is not described");
    }

    // Admins load plans; a broken file is 422 with file:line diagnostics and loads nothing.
    let plan = std::fs::read_to_string(shipped_plan_path()).unwrap();
    let post = |token: String, body: String| {
        let port = app.port;
        async move {
            http(
                port,
                "POST",
                "/api/plans",
                &[("Authorization", &format!("Bearer {token}"))],
                body.as_bytes(),
            )
            .await
        }
    };
    let r = post(member.clone(), plan.clone()).await;
    assert_eq!(
        (r.status, r.json()["error"]["code"].clone()),
        (403, json!("forbidden_role"))
    );
    let r = post(admin.clone(), plan.clone()).await;
    assert_eq!(
        (r.status, r.json()["events_written"].clone()),
        (200, json!(0)),
        "{}",
        r.body
    );
    let broken = plan.replacen("lead = \"BTV\"", "lead = \"KHONGCO\"", 1);
    let before = app.events().await;
    let r = post(admin, broken).await;
    assert_eq!(r.status, 422, "{}", r.body);
    let diags = r.json()["error"]["diagnostics"].clone();
    assert!(diags[0].as_str().unwrap().contains("KHONGCO"), "{diags}");
    assert!(diags[0].as_str().unwrap().contains(".toml:"), "file:line in {diags}");
    assert_eq!(app.events().await, before);

    // With a second plan loaded, each plan's as-of holds its own tasks only.
    app.engine.load_plan(&matrix_plan(2)).await.unwrap();
    app.engine.catch_up().await.unwrap();
    let auditor = app.token("UBKT", "Kiểm Tra Viên", "auditor").await;
    for (plan, tasks) in [("duc-pho-de-an-13", 45), ("ma-tran", 1)] {
        let r = app.get(&format!("/api/plans/{plan}/as-of"), &auditor).await;
        assert_eq!(r.json()["tasks"].as_array().unwrap().len(), tasks, "{plan}");
    }
}
on_both_stores!(api_limits_and_description_over_http, api_limits_and_description);

/// The `kh_form` cookie and the CSRF field of a form shown before signing in.
pub fn form_token(r: &Resp) -> (String, String) {
    let cookie = r
        .all("set-cookie")
        .into_iter()
        .find(|c| c.starts_with("kh_form="))
        .expect("form cookie")
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let field = r.body.split("name=\"csrf\" value=\"").nth(1).expect("csrf field");
    (cookie, field[..field.find('"').unwrap()].to_string())
}

async fn signing_in(kind: &str) {
    let app = App::shipped(kind, "2023-01-10").await;
    let (user, link) = app
        .engine
        .add_user(
            NewUser {
                email: Email::parse("lan@bdv.example").unwrap(),
                name: PersonName::parse("Trần Thị Lan").unwrap(),
                agency: AgencyCode::parse("BDV").unwrap(),
                roles: parse_roles("member").unwrap(),
            },
            operator(),
        )
        .await
        .unwrap();
    assert!(!user.has_password);
    // The root shows the sign-in page.
    let r = http(app.port, "GET", "/", &[], b"").await;
    assert!(r.status == 200 && r.body.contains("Đăng nhập") && r.body.contains("name=\"password\""));
    // Pages need a session.
    let r = http(app.port, "GET", "/inbox", &[], b"").await;
    assert_eq!((r.status, r.header("location")), (303, Some("/signin?next=/inbox")));

    // The one-time link sets a password, starts a session, and is then spent.
    let path = format!("/signin/{link}");
    let r = http(app.port, "GET", &path, &[], b"").await;
    assert_eq!(r.status, 200);
    let (cookie, csrf) = form_token(&r);
    let fields = |csrf: &str, p2: &str| format!("csrf={csrf}&password=mat-khau-du-dai&password2={p2}");
    let post = |cookie: String, body: String| {
        let (port, path) = (app.port, path.clone());
        async move {
            http(
                port,
                "POST",
                &path,
                &[
                    ("Cookie", &cookie),
                    ("Content-Type", "application/x-www-form-urlencoded"),
                ],
                body.as_bytes(),
            )
            .await
        }
    };
    let r = post(String::new(), fields(&csrf, "mat-khau-du-dai")).await;
    assert_eq!(r.status, 403, "no form cookie, no CSRF match");
    let r = post(cookie.clone(), fields(&csrf, "khac-han-roi-nhe")).await;
    assert_eq!(r.status, 400, "passwords differ");
    let r = post(cookie.clone(), fields(&csrf, "mat-khau-du-dai")).await;
    assert_eq!((r.status, r.header("location")), (303, Some("/")), "{}", r.body);
    let session = r
        .all("set-cookie")
        .into_iter()
        .find(|c| c.starts_with("kh_session="))
        .expect("session cookie")
        .to_string();
    for flag in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/"] {
        assert!(session.contains(flag), "{flag} missing in {session}");
    }
    let session = session.split(';').next().unwrap().to_string();
    let inbox = app.page("/inbox", &session).await;
    assert!(inbox.status == 200 && inbox.body.contains("II.1.1"), "{}", inbox.status);
    assert_eq!(
        post(cookie, fields(&csrf, "mat-khau-du-dai")).await.status,
        404,
        "spent link"
    );

    // Signing in with e-mail and password.
    let r = http(app.port, "GET", "/signin", &[], b"").await;
    let (cookie, csrf) = form_token(&r);
    let sign_in = |password: &str| {
        let body = format!("csrf={csrf}&next=%2Finbox&email=LAN%40bdv.example&password={password}");
        let (port, cookie) = (app.port, cookie.clone());
        async move {
            http(
                port,
                "POST",
                "/signin",
                &[
                    ("Cookie", &cookie),
                    ("Content-Type", "application/x-www-form-urlencoded"),
                ],
                body.as_bytes(),
            )
            .await
        }
    };
    assert_eq!(sign_in("sai-mat-khau").await.status, 401);
    let r = sign_in("mat-khau-du-dai").await;
    assert_eq!((r.status, r.header("location")), (303, Some("/inbox")));
}
on_both_stores!(signing_in_with_a_link_then_a_password, signing_in);

async fn pages_escape_and_refuse(kind: &str) {
    let app = App::shipped(kind, "2023-01-10").await;
    let member = app.user("BDV", "Nguyễn Văn An", "member").await;
    let (cookie, csrf) = app.session(&member).await;
    let task = "/tasks/duc-pho-de-an-13/II.1.1";
    let report = format!("{task}/milestones/complete/report");

    // A form post without its CSRF token is refused and writes nothing.
    let before = app.events().await;
    let r = app.form(&report, &cookie, &[("note", "không có mã")]).await;
    assert_eq!(r.status, 403);
    assert!(r.body.contains("biểu mẫu"), "an HTML page explains: {}", r.body);
    let r = app
        .form(&report, &cookie, &[("csrf", "doan-bua"), ("note", "sai mã")])
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(app.events().await, before);

    // A note with a script is stored as written and shown escaped.
    let evil = "<script>alert('x')</script> & \"trích\"";
    let r = app.form(&report, &cookie, &[("csrf", &csrf), ("note", evil)]).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let page = app.page(task, &cookie).await;
    assert_eq!(page.status, 200);
    assert!(!page.body.contains("<script>alert"), "unescaped script on the page");
    assert!(page
        .body
        .contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;trích&quot;"));

    // Pages for other agencies' tasks and other roles are refused.
    assert_eq!(app.page("/tasks/duc-pho-de-an-13/II.2.1.4", &cookie).await.status, 403);
    assert_eq!(app.page("/queue", &cookie).await.status, 403);
    assert_eq!(app.page("/admin", &cookie).await.status, 403);
    // The forms shown are the ones the user may use.
    assert!(page.body.contains("data-action=\"submit\""));
    assert!(!page.body.contains("data-action=\"approve\""));

    // An oversized form is refused.
    let big = "x".repeat(2 * 1024 * 1024);
    let r = app.form(&report, &cookie, &[("csrf", &csrf), ("note", &big)]).await;
    assert_eq!(r.status, 413);

    // The plan overview: a chart and per-agency counts.
    let plan = app.page("/plans/duc-pho-de-an-13", &cookie).await;
    assert_eq!(plan.status, 200);
    assert!(plan.body.contains("<svg") && plan.body.contains("data-agency=\"BDV\""));
}
on_both_stores!(pages_escape_and_refuse_forged_forms, pages_escape_and_refuse);

async fn calendar_feed(kind: &str) {
    let app = App::shipped(kind, "2023-01-10").await;
    let member = app.user("BDV", "Nguyễn Văn An", "member").await;
    let (cookie, _) = app.session(&member).await;
    let inbox = app.page("/inbox", &cookie).await.body;
    let url = inbox
        .split("<code class=\"feed\">")
        .nth(1)
        .expect("feed address")
        .split('<')
        .next()
        .unwrap();
    let path = &url[url.find("/calendar/").expect("feed path")..];
    let r = http(app.port, "GET", path, &[], b"").await;
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/calendar"));
    // A guessed token finds nothing.
    let guess = format!("/calendar/{}.ics", "0".repeat(64));
    assert_eq!(http(app.port, "GET", &guess, &[], b"").await.status, 404);
    assert_eq!(http(app.port, "GET", "/calendar/abc", &[], b"").await.status, 404);

    // An independent parser reads it: BDV's milestones with alarms.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bdv.ics");
    std::fs::write(&file, &r.body).unwrap();
    let out = std::process::Command::new(python())
        .arg(repo_root().join("tests/support/parse_ics.py"))
        .arg(&file)
        .output()
        .expect("run parse_ics.py");
    assert!(
        out.status.success(),
        "icalendar: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cal: Value = serde_json::from_slice(&out.stdout).unwrap();
    let events = cal["events"].as_array().unwrap();
    let tasks = app.get_tasks_involving("BDV").await;
    let expected: usize = tasks.iter().map(|t| t["milestones"].as_array().unwrap().len()).sum();
    assert_eq!(events.len(), expected, "one event per milestone of BDV's tasks");
    let ii11 = events
        .iter()
        .find(|e| e["uid"].as_str().unwrap().contains("II.1.1"))
        .expect("II.1.1 in BDV's feed");
    assert_eq!(ii11["start"], "2023-01-31");
    assert!(!ii11["alarms"].as_array().unwrap().is_empty());
    assert!(ii11["url"]
        .as_str()
        .unwrap()
        .ends_with("/tasks/duc-pho-de-an-13/II.1.1"));
}
on_both_stores!(calendar_feed_parses_with_icalendar, calendar_feed);

impl App {
    /// The tasks involving `agency`, as the API lists them to an auditor.
    async fn get_tasks_involving(&self, agency: &str) -> Vec<Value> {
        let auditor = self.token("UBKT", "Kiểm Tra Viên", "auditor").await;
        self.get(&format!("/api/tasks?agency={agency}&per_page=200"), &auditor)
            .await
            .json()["tasks"]
            .as_array()
            .unwrap()
            .clone()
    }
}
