//! `kehoach plan baseline`: a plan adopted part-way starts from the state
//! already reached, recorded from the office's files. The claimed day of
//! each row judges on-time or late; the history names the sheet and its
//! row; the next digest no longer lists what the sheet settled; a sheet
//! that contradicts the store writes nothing. On both stores, through a
//! real SMTP server.

use crate::helpers::*;
use crate::on_both_stores;
use serde_json::Value;

const PLAN: &str = "workflows/duc-pho-de-an-13.toml";
const REGISTER_2023: &str = "Đăng ký xây dựng, nhân rộng mô hình “Dân vận khéo” năm 2023";

fn ok(db: &TestDb, args: &[&str]) -> String {
    let out = kehoach(db, args);
    assert!(out.status.success(), "{args:?}: {}{}", stdout(&out), stderr(&out));
    stdout(&out)
}

fn remind(db: &TestDb, smtp: &SmtpServer, now: &str) {
    let out = bin()
        .args(["--db", &db.url(), "--now", now, "remind", "--once"])
        .env("KEHOACH_SMTP_URL", smtp.url())
        .env("KEHOACH_MAIL_FROM", "Thị ủy Đức Phổ <kehoach@ducpho.example>")
        .env("KEHOACH_BASE_URL", "https://kehoach.ducpho.example")
        .output()
        .expect("run kehoach");
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
}

/// Whether an agency's digests (by address) list III.1.2's registration of 2023.
fn lists_register_2023(messages: &[Value], address: &str) -> bool {
    messages
        .iter()
        .filter(|m| m["to"].as_str().unwrap_or("").contains(address))
        .any(|m| {
            digest_items(m["text"].as_str().unwrap_or(""))
                .iter()
                .any(|(task, milestone)| task == "III.1.2" && milestone.starts_with(REGISTER_2023))
        })
}

fn write_sheet(dir: &std::path::Path, name: &str, rows: &[&str]) -> std::path::PathBuf {
    let path = dir.join(name);
    let mut text = String::from("Mã nhiệm vụ,Mã mốc,Cơ quan,Trạng thái,Ngày hoàn thành,Ghi chú,Nơi lưu hồ sơ\n");
    for r in rows {
        text.push_str(r);
        text.push('\n');
    }
    std::fs::write(&path, text).unwrap();
    path
}

async fn a_sheet_of_the_state_reached(kind: &str) {
    let db = TestDb::of(kind).await;
    let smtp = SmtpServer::start();
    let dir = tempfile::tempdir().unwrap();
    ok(&db, &["--now", "2023-01-02", "plan", "load", PLAN]);
    let admin = cli_user(&db, "VPTX", "Trần Quản Trị", "admin");
    let member = cli_user(&db, "UBND", "Nguyễn Văn Ủy", "member");
    // The first days of April: the registration of 2023 is overdue for all.
    remind(&db, &smtp, "2023-04-03T08:00:00+07:00");
    let before = smtp.messages();
    assert!(lists_register_2023(&before, "ubnd@ducpho.example"));
    assert!(lists_register_2023(&before, "mttq@ducpho.example"));

    // A sheet that contradicts the store in one row writes nothing of it.
    let events = event_count(&db).await;
    let bad = write_sheet(
        dir.path(),
        "sai.csv",
        &[
            "III.1.2,register-2023,Ủy ban nhân dân thị xã,đã hoàn thành,20/03/2023,,",
            "III.1.2,register-2023,Ban Dân vận Thị ủy,đã hoàn thành,20/03/2023,,",
            "III.1.2,register-2024,UBND,đã hoàn thành,20/03/2024,,",
            "IX.9,register-2023,UBND,đã hoàn thành,20/03/2023,,",
        ],
    );
    let refused = kehoach(
        &db,
        &[
            "--now",
            "2023-04-20",
            "plan",
            "baseline",
            bad.to_str().unwrap(),
            "--user",
            &admin,
        ],
    );
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    let err = stderr(&refused);
    assert!(
        err.contains("sai.csv:3: Ban Dân vận Thị ủy không phải cơ quan thực hiện"),
        "{err}"
    );
    assert!(
        err.contains("sai.csv:4: ngày hoàn thành 20/03/2024 ở tương lai"),
        "{err}"
    );
    assert!(err.contains("sai.csv:5: không có nhiệm vụ IX.9"), "{err}");
    assert_eq!(event_count(&db).await, events, "nothing of the sheet written");
    // Only an administrator records a sheet.
    let sheet = write_sheet(
        dir.path(),
        "hien-trang-2023.csv",
        &[
            "III.1.2,register-2023,Ủy ban nhân dân thị xã,đã hoàn thành,20/03/2023,Đăng ký mô hình,Tủ hồ sơ Văn phòng",
            "III.1.2,register-2023,MTTQ,Đã hoàn thành,15/04/2023,,",
        ],
    );
    let not_admin = kehoach(
        &db,
        &[
            "--now",
            "2023-04-20",
            "plan",
            "baseline",
            sheet.to_str().unwrap(),
            "--user",
            &member,
        ],
    );
    assert_eq!(not_admin.status.code(), Some(3), "{}", stderr(&not_admin));
    assert_eq!(event_count(&db).await, events);

    let record = || -> Value {
        let args = ["--now", "2023-04-20", "--format", "json", "plan", "baseline"];
        let out = ok(&db, &[&args[..], &[sheet.to_str().unwrap(), "--user", &admin]].concat());
        serde_json::from_str(&out).unwrap()
    };
    let report = record();
    assert_eq!(report["recorded"], 2, "{report}");
    assert_eq!(report["done"], 2, "{report}");
    // The same sheet again restates the store: nothing new.
    let again = record();
    assert_eq!(again["recorded"], 0, "{again}");
    assert_eq!(again["unchanged"], 2, "{again}");

    // The review of 2023: UBND on time (20/03 for 31/03), MTTQ late (15/04).
    let report = dir.path().join("review-2023.html");
    ok(
        &db,
        &[
            "--now",
            "2024-01-05",
            "report",
            "review",
            "--year",
            "2023",
            "--output",
            report.to_str().unwrap(),
        ],
    );
    let html = std::fs::read_to_string(&report).unwrap();
    let row = |agency: &str| {
        html.split("<tr>")
            .find(|r| r.contains(REGISTER_2023) && r.contains(&format!("<td>{agency}</td>")))
            .unwrap_or_else(|| panic!("no row for {agency}"))
            .to_string()
    };
    assert!(
        row("Ủy ban nhân dân thị xã").contains("đúng hạn") && row("Ủy ban nhân dân thị xã").contains("20/03/2023"),
        "{}",
        row("Ủy ban nhân dân thị xã")
    );
    assert!(
        row("Ủy ban Mặt trận Tổ quốc Việt Nam thị xã").contains("trễ hạn")
            && row("Ủy ban Mặt trận Tổ quốc Việt Nam thị xã").contains("15/04/2023"),
        "{}",
        row("Ủy ban Mặt trận Tổ quốc Việt Nam thị xã")
    );
    assert!(row("Ủy ban nhân dân thị xã").contains("ghi nhận từ hồ sơ"));

    // The history names the sheet and its row, recorded now by the admin.
    let history = ok(&db, &["--format", "json", "audit", "history", "III.1.2"]);
    let history: Value = serde_json::from_str(&history).unwrap();
    let entries: Vec<&Value> = history["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "ObligationRecorded")
        .collect();
    assert_eq!(entries.len(), 2, "{history}");
    let ubnd = entries
        .iter()
        .find(|e| e.to_string().contains("Ủy ban nhân dân thị xã"))
        .unwrap()
        .to_string();
    assert!(
        ubnd.contains("hien-trang-2023.csv") && ubnd.contains("dòng 2"),
        "{ubnd}"
    );
    assert!(
        ubnd.contains("Trần Quản Trị") && ubnd.contains("\"channel\":\"sheet\""),
        "{ubnd}"
    );
    assert!(ubnd.contains("Ghi nhận từ hồ sơ"), "{ubnd}");

    // The next digests no longer list the settled obligations; the others
    // still hear of theirs.
    let sent_before = smtp.messages().len();
    remind(&db, &smtp, "2023-04-24T08:00:00+07:00");
    let after: Vec<Value> = smtp.messages().into_iter().skip(sent_before).collect();
    assert!(!after.is_empty());
    assert!(!lists_register_2023(&after, "ubnd@ducpho.example"));
    assert!(!lists_register_2023(&after, "mttq@ducpho.example"));
    assert!(lists_register_2023(&after, "tthdnd@ducpho.example"));
    let verify = kehoach(&db, &["audit", "verify"]);
    assert!(verify.status.success(), "{}", stderr(&verify));
}
on_both_stores!(baseline_sheet, a_sheet_of_the_state_reached);

#[test]
fn sheets_that_cannot_be_read_get_one_line() {
    let db = TestDb::sqlite();
    let dir = tempfile::tempdir().unwrap();
    let load = kehoach(&db, &["--now", "2023-01-02", "plan", "load", PLAN]);
    assert!(load.status.success(), "{}", stderr(&load));
    let admin = cli_user(&db, "VPTX", "Trần Quản Trị", "admin");
    for (name, bytes, expected) in [
        (
            "cot-la.csv",
            "Mã nhiệm vụ,Mã mốc,Cơ quan,Trạng thái,Điểm thưởng\n"
                .as_bytes()
                .to_vec(),
            "\"Điểm thưởng\" (cột E) không có trong mẫu",
        ),
        (
            "thieu.csv",
            "Mã nhiệm vụ,Mã mốc,Trạng thái\n".as_bytes().to_vec(),
            "thiếu cột \"Cơ quan\"",
        ),
        ("anh.xlsx", b"\x89PNG\r\n\x1a\n".to_vec(), "không phải bảng tính"),
        ("cu.xls", vec![0xD0, 0xCF, 0x11, 0xE0], ".xls"),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let out = kehoach(&db, &["plan", "baseline", path.to_str().unwrap(), "--user", &admin]);
        assert_eq!(out.status.code(), Some(2), "{name}");
        let err = stderr(&out);
        let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{name}: {lines:?}");
        assert!(
            lines[0].contains(name) && lines[0].contains(expected),
            "{name}: {}",
            lines[0]
        );
    }
}

/// On the web: the plan page offers administrators the template of every
/// obligation with today's state; the filled sheet uploaded on the admin
/// page is recorded, a contradicting one is shown row by row and writes
/// nothing; other roles are refused.
async fn the_sheet_on_the_web(kind: &str) {
    use crate::evidence::multipart;
    let app = crate::web::App::start(kind, "2023-04-20T09:00:00+07:00", &shipped_plan()).await;
    let admin = app.user("VPTX", "Trần Quản Trị", "admin").await;
    let (cookie, csrf) = app.session(&admin).await;
    let member = app.user("UBND", "Nguyễn Văn Ủy", "member").await;
    let (member_cookie, member_csrf) = app.session(&member).await;

    let plan_page = app.page("/plans/duc-pho-de-an-13", &cookie).await;
    assert!(plan_page
        .body
        .contains("/plans/duc-pho-de-an-13/baseline/hien-trang.xlsx"));
    let template = app
        .page("/plans/duc-pho-de-an-13/baseline/hien-trang.xlsx", &cookie)
        .await;
    assert_eq!(template.status, 200);
    assert!(template
        .header("content-disposition")
        .unwrap_or("")
        .contains("hien-trang-duc-pho-de-an-13"));
    let rows = kehoach::plan::baseline::read("mau.xlsx", &template.bytes).expect("the template reads back");
    let row = rows
        .iter()
        .find(|r| r.task == "III.1.2" && r.milestone == "register-2023" && r.agency == "Ủy ban nhân dân thị xã")
        .expect("UBND's registration of 2023 in the template");
    assert_eq!(row.state, "chưa thực hiện");
    let csv = app
        .page("/plans/duc-pho-de-an-13/baseline/hien-trang.csv", &cookie)
        .await;
    assert_eq!(
        kehoach::plan::baseline::read("mau.csv", &csv.bytes).unwrap().len(),
        rows.len()
    );
    let refused = app
        .page("/plans/duc-pho-de-an-13/baseline/hien-trang.xlsx", &member_cookie)
        .await;
    assert_eq!(refused.status, 403);
    assert!(!app
        .page("/plans/duc-pho-de-an-13", &member_cookie)
        .await
        .body
        .contains("baseline/hien-trang.xlsx"));

    // The template filled: UBND's row done on 20/03/2023, one row changed to
    // an agency that does not owe it.
    let upload = |cookie: String, csrf: String, name: &'static str, text: String| {
        let port = app.port;
        async move {
            let body = multipart(
                &[("csrf", &csrf), ("plan", "duc-pho-de-an-13")],
                &[("file", name, text.as_bytes())],
            );
            http(
                port,
                "POST",
                "/admin/plans/baseline",
                &[("Cookie", &cookie), ("Content-Type", &body.0)],
                &body.1,
            )
            .await
        }
    };
    let header = "Mã nhiệm vụ,Mã mốc,Cơ quan,Trạng thái,Ngày hoàn thành\n";
    let before = app.engine.store.event_count().await.unwrap();
    let bad = format!(
        "{header}III.1.2,register-2023,UBND,đã hoàn thành,20/03/2023\nIII.1.2,register-2023,Ban Tuyên giáo Thị ủy,đã hoàn thành,20/03/2023\n"
    );
    let r = upload(cookie.clone(), csrf.clone(), "sai.csv", bad).await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(
        r.body
            .contains("Dòng 3: Ban Tuyên giáo Thị ủy không phải cơ quan thực hiện"),
        "{}",
        r.body
    );
    assert_eq!(app.engine.store.event_count().await.unwrap(), before);
    let r = upload(
        member_cookie,
        member_csrf,
        "x.csv",
        format!("{header}III.1.2,register-2023,UBND,đã hoàn thành,20/03/2023\n"),
    )
    .await;
    assert_eq!(r.status, 403);
    let r = upload(
        cookie.clone(),
        csrf.clone(),
        "cot.csv",
        "Mã nhiệm vụ,Điểm\n".to_string(),
    )
    .await;
    assert_eq!(r.status, 422);
    assert!(
        r.body.contains("&quot;Điểm&quot; (cột B) không có trong mẫu"),
        "{}",
        r.body
    );

    let good = format!("{header}III.1.2,register-2023,Ủy ban nhân dân thị xã,đã hoàn thành,20/03/2023\n");
    let r = upload(cookie.clone(), csrf.clone(), "hien-trang.csv", good).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("Đã ghi nhận 1 dòng của hien-trang.csv"), "{}", r.body);
    let task = app.page("/tasks/duc-pho-de-an-13/III.1.2", &cookie).await;
    assert!(
        task.body.contains("Ghi nhận từ hồ sơ") || task.body.contains("ghi nhận từ hồ sơ"),
        "the task's history says so"
    );
    // The template now says so too.
    let template = app
        .page("/plans/duc-pho-de-an-13/baseline/hien-trang.csv", &cookie)
        .await;
    let rows = kehoach::plan::baseline::read("mau.csv", &template.bytes).unwrap();
    let row = rows
        .iter()
        .find(|r| r.task == "III.1.2" && r.milestone == "register-2023" && r.agency == "Ủy ban nhân dân thị xã")
        .unwrap();
    assert_eq!(
        (row.state.as_str(), row.done_on.as_str()),
        ("đã hoàn thành", "20/03/2023")
    );
}
on_both_stores!(baseline_on_the_web, the_sheet_on_the_web);
