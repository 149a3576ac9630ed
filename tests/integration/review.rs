//! The review screen over real HTTP, on both databases: what an agency
//! filed is shown to the approver (notes, reports, KPI values against their
//! targets, links, who and when); decisions ask for confirmation first; a
//! return's reason leads the agency's task page; only forms that can
//! succeed are offered; the notice after an action sits in its milestone;
//! no raw id, KPI key or English role is on the page.

use crate::helpers::{act, mid};
use crate::on_both_stores;
use crate::web::App;
use kehoach::domain::ids::AgencyCode;
use kehoach::domain::task::{Attachment, FileHash, TaskAction};

const TASK: &str = "/tasks/duc-pho-de-an-13/III.1.2";
const REGISTER: &str = "register-2024";
const KPI: &str = "kpi.mo-hinh-dan-van-kheo";

fn action(name: &str) -> String {
    format!("{TASK}/milestones/{REGISTER}/{name}")
}

/// The HTML of the element that opens with `id="<id>"`, up to `end`.
fn part<'a>(body: &'a str, id: &str, end: &str) -> &'a str {
    let start = body
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in {body}"));
    let rest = &body[start..];
    &rest[..rest.find(end).unwrap_or(rest.len())]
}

/// The text a person reads: the page without its tags (attributes hold
/// ids for forms and anchors, which nobody reads).
fn visible_text(body: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in body.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

/// Outside the history (whose wording is the audit history's).
fn assert_no_raw_words(body: &str) {
    let text = visible_text(&body[..body.find("<section id=\"history\">").unwrap_or(body.len())]);
    for raw in [
        REGISTER,
        "mo-hinh-dan-van-kheo",
        "review-2024",
        "supervisor",
        "member",
        "acc-",
    ] {
        assert!(!text.contains(raw), "{raw:?} visible on the page:\n{text}");
    }
}

/// The shipped plan on 10/03/2024, with sessions (cookie, CSRF token) for a
/// member of `agency` named `name` and for BTV's supervisor Lê Thị Bình.
async fn with_sessions(kind: &str, agency: &str, name: &str) -> (App, (String, String), (String, String)) {
    let app = App::shipped(kind, "2024-03-10").await;
    let member = app.user(agency, name, "member").await;
    let btv = app.user("BTV", "Lê Thị Bình", "supervisor").await;
    let member = app.session(&member).await;
    let btv = app.session(&btv).await;
    (app, member, btv)
}

async fn review_screen(kind: &str) {
    let (app, (ubnd_cookie, ubnd_csrf), (btv_cookie, btv_csrf)) = with_sessions(kind, "UBND", "Trần Văn Ủy").await;

    // UBND reports twice (one KPI value under target, one over) and submits.
    let r = app
        .form(
            &action("report"),
            &ubnd_cookie,
            &[
                ("csrf", &ubnd_csrf),
                ("agency", "UBND"),
                ("note", "Đã họp triển khai"),
                (KPI, "0"),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(
        r.header("location"),
        Some(format!("{TASK}?m={REGISTER}#m-{REGISTER}").as_str())
    );
    // The notice sits inside the milestone acted on, by its title.
    let page = app.page(TASK, &ubnd_cookie).await;
    let milestone = part(&page.body, &format!("m-{REGISTER}"), "</article>");
    assert!(
        milestone.contains("Đã ghi nhận: báo cáo tiến độ mốc «Đăng ký xây dựng, nhân rộng mô hình"),
        "{milestone}"
    );
    assert!(milestone.contains("của «Ủy ban nhân dân thị xã»"), "{milestone}");
    let top = &page.body[..page.body.find("<h2>Các mốc</h2>").unwrap()];
    assert!(!top.contains("Đã ghi nhận"), "the notice is not at the top: {top}");
    // Shown once.
    assert!(!app.page(TASK, &ubnd_cookie).await.body.contains("Đã ghi nhận"));

    let r = app
        .form(
            &action("report"),
            &ubnd_cookie,
            &[
                ("csrf", &ubnd_csrf),
                ("agency", "UBND"),
                ("note", "Đã chọn mô hình “Dân vận khéo”"),
                (KPI, "2"),
                (
                    "evidence",
                    "https://ducpho.gov.vn/van-ban/12\r\nSố 12/KH-UBND\r\njavascript:alert(1)",
                ),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    // Submitting asks first (the form's box ticked, or this page), and
    // asking writes nothing.
    let fields = [
        ("csrf", ubnd_csrf.as_str()),
        ("agency", "UBND"),
        ("note", "Nộp hồ sơ đăng ký mô hình"),
    ];
    let before = app.events().await;
    let r = app.form(&action("submit"), &ubnd_cookie, &fields).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body.contains("data-confirm=\"submit\"") && r.body.contains("Nộp mốc «"),
        "{}",
        r.body
    );
    assert_eq!(app.events().await, before, "asking wrote nothing");
    let r = app
        .form(
            &action("submit"),
            &ubnd_cookie,
            &[&fields[..], &[("confirm", "1")]].concat(),
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);

    // UBND is offered nothing more on its submitted obligation.
    let page = app.page(TASK, &ubnd_cookie).await;
    let own = part(&page.body, &format!("m-{REGISTER}-UBND"), "<li class=\"obligation");
    for a in ["report", "submit", "approve", "return", "extend", "waive", "cancel"] {
        assert!(!own.contains(&format!("data-action=\"{a}\"")), "{a} offered: {own}");
    }
    assert_no_raw_words(&page.body);

    // The lead agency's supervisor sees everything filed, and may decide.
    let page = app.page(TASK, &btv_cookie).await;
    assert_eq!(page.status, 200);
    let filed = part(&page.body, &format!("m-{REGISTER}-UBND"), "<li class=\"obligation");
    for shown in [
        "Hồ sơ đã gửi trong lượt này",
        "Đã họp triển khai",
        "Đã chọn mô hình “Dân vận khéo”",
        "Nộp hồ sơ đăng ký mô hình",
        "Mô hình “Dân vận khéo” được xây dựng, nhân rộng",
        "0 mô hình",
        "2 mô hình",
        "≥ 1 mô hình/năm",
        ">đạt<",
        ">chưa đạt<",
        "<a href=\"https://ducpho.gov.vn/van-ban/12\" rel=\"noopener noreferrer\">",
        "Số 12/KH-UBND",
        "Trần Văn Ủy — Ủy ban nhân dân thị xã",
        "10/03/2024",
        "data-action=\"approve\"",
        "data-action=\"return\"",
    ] {
        assert!(filed.contains(shown), "{shown:?} missing from {filed}");
    }
    assert!(!filed.contains("href=\"javascript"), "{filed}");
    assert!(!filed.contains("data-action=\"report\""), "{filed}");
    assert_no_raw_words(&page.body);

    // Approving asks first and writes nothing until confirmed.
    let before = app.events().await;
    let r = app
        .form(
            &action("approve"),
            &btv_cookie,
            &[("csrf", &btv_csrf), ("agency", "UBND"), ("note", "Đồng ý")],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(app.events().await, before, "nothing written before confirmation");
    for shown in [
        "Duyệt mốc «Đăng ký xây dựng, nhân rộng mô hình",
        "của «Ủy ban nhân dân thị xã»?",
        "không hoàn tác được",
        "Nộp hồ sơ đăng ký mô hình",
        "name=\"confirm\" value=\"1\"",
        "name=\"note\" value=\"Đồng ý\"",
        "name=\"agency\" value=\"UBND\"",
        "Xác nhận duyệt",
        &format!("href=\"{TASK}?m={REGISTER}#m-{REGISTER}\""),
        "Quay lại",
    ] {
        assert!(
            r.body.contains(shown),
            "{shown:?} missing from the confirmation: {}",
            r.body
        );
    }
    assert_no_raw_words(&r.body);
    // A confirmation that would fail is refused at once, with the domain's reason.
    let r = app
        .form(
            &action("return"),
            &btv_cookie,
            &[("csrf", &btv_csrf), ("agency", "UBND")],
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(app.events().await, before);
    // Confirmed, it approves.
    let r = app
        .form(
            &action("approve"),
            &btv_cookie,
            &[
                ("csrf", &btv_csrf),
                ("agency", "UBND"),
                ("note", "Đồng ý"),
                ("confirm", "1"),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(app.events().await > before);
    let page = app.page(TASK, &btv_cookie).await;
    let milestone = part(&page.body, &format!("m-{REGISTER}"), "</article>");
    assert!(
        milestone.contains("Đã ghi nhận: duyệt mốc «Đăng ký xây dựng, nhân rộng mô hình"),
        "{milestone}"
    );
    let ubnd_part = part(&page.body, &format!("m-{REGISTER}-UBND"), "<li class=\"obligation");
    assert!(ubnd_part.contains("đã duyệt"), "{ubnd_part}");
    assert!(
        ubnd_part.contains("Duyệt: Lê Thị Bình — Ban Thường vụ Thị ủy"),
        "{ubnd_part}"
    );
    for a in ["approve", "return", "extend", "waive", "cancel"] {
        assert!(
            !ubnd_part.contains(&format!("data-action=\"{a}\"")),
            "{a} offered: {ubnd_part}"
        );
    }
    // Nothing submitted elsewhere: no approval offered on open obligations.
    let mttq = part(&page.body, &format!("m-{REGISTER}-MTTQ"), "<li class=\"obligation");
    assert!(
        !mttq.contains("data-action=\"approve\"") && mttq.contains("data-action=\"extend\""),
        "{mttq}"
    );
}
on_both_stores!(approver_reviews_and_confirms, review_screen);

async fn returns_lead_the_agency_page(kind: &str) {
    let (app, (mttq_cookie, mttq_csrf), (btv_cookie, btv_csrf)) = with_sessions(kind, "MTTQ", "Đỗ Thị Mai").await;
    let r = app
        .form(
            &action("submit"),
            &mttq_cookie,
            &[
                ("csrf", &mttq_csrf),
                ("agency", "MTTQ"),
                ("note", "Nộp đăng ký"),
                ("confirm", "1"),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);

    // Returning asks first, too.
    let reason = "Thiếu danh sách mô hình đăng ký";
    let fields = [("csrf", btv_csrf.as_str()), ("agency", "MTTQ"), ("reason", reason)];
    let before = app.events().await;
    let r = app.form(&action("return"), &btv_cookie, &fields).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body.contains("Trả lại mốc «") && r.body.contains(reason),
        "{}",
        r.body
    );
    assert_eq!(app.events().await, before);
    let mut confirmed = fields.to_vec();
    confirmed.push(("confirm", "1"));
    let r = app.form(&action("return"), &btv_cookie, &confirmed).await;
    assert_eq!(r.status, 303, "{}", r.body);

    // MTTQ reads who returned which milestone, when and why, at the top.
    let page = app.page(TASK, &mttq_cookie).await;
    let first_section = page.body.find("<section class=\"card\">").unwrap();
    let notice = page.body.find("class=\"returned-notice\"").expect("return notice");
    assert!(notice < first_section, "the notice leads the page");
    let text = part(&page.body, &format!("returned-{REGISTER}"), "</section>");
    for shown in [
        "Mốc «Đăng ký xây dựng, nhân rộng mô hình",
        "bị trả lại",
        "Lê Thị Bình — Ban Thường vụ Thị ủy trả lại lúc 10/03/2024",
        reason,
        &format!("href=\"?m={REGISTER}&amp;do=report#m-{REGISTER}\""),
    ] {
        assert!(text.contains(shown), "{shown:?} missing from {text}");
    }
    // It may report and submit again; the supervisor sees nothing left to decide.
    let own = part(&page.body, &format!("m-{REGISTER}-MTTQ"), "<li class=\"obligation");
    assert!(
        own.contains("data-action=\"report\"") && own.contains("data-action=\"submit\""),
        "{own}"
    );
    assert_no_raw_words(&page.body);
    let page = app.page(TASK, &btv_cookie).await;
    assert!(
        !page.body.contains("class=\"returned-notice\""),
        "only the agency's own returns"
    );
    assert!(!page.body.contains("data-action=\"approve\""));

    // Waiving and cancelling ask first as well.
    let before = app.events().await;
    for a in ["waive", "cancel"] {
        let r = app
            .form(
                &action(a),
                &btv_cookie,
                &[("csrf", &btv_csrf), ("agency", "MTTQ"), ("reason", "Không còn phù hợp")],
            )
            .await;
        assert_eq!(r.status, 200, "{a}: {}", r.body);
        assert!(
            r.body.contains("data-confirm=\"") && r.body.contains("không hoàn tác được"),
            "{a}"
        );
    }
    assert_eq!(app.events().await, before);
}
on_both_stores!(return_reason_leads_the_agency_page, returns_lead_the_agency_page);

/// "Trao đổi": the agency answers a return reason, the supervisor replies;
/// each message is an attributed event of the task, in the thread under the
/// obligation, in the history, and queued to the other side's digest.
async fn a_return_is_answered_in_the_discussion(kind: &str) {
    let (app, (mttq_cookie, mttq_csrf), (btv_cookie, btv_csrf)) = with_sessions(kind, "MTTQ", "Đỗ Thị Mai").await;
    let submit = [
        ("csrf", mttq_csrf.as_str()),
        ("agency", "MTTQ"),
        ("note", "Nộp đăng ký"),
        ("confirm", "1"),
    ];
    assert_eq!(app.form(&action("submit"), &mttq_cookie, &submit).await.status, 303);
    let reason = "Thiếu danh sách mô hình đăng ký";
    let r = app
        .form(
            &action("return"),
            &btv_cookie,
            &[
                ("csrf", &btv_csrf),
                ("agency", "MTTQ"),
                ("reason", reason),
                ("confirm", "1"),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);

    // The agency answers the reason in the discussion of its part.
    let answer = "Danh sách đã có ở tệp đính kèm trang 3; xin xem lại";
    let r = app
        .form(
            &action("discuss"),
            &mttq_cookie,
            &[("csrf", &mttq_csrf), ("agency", "MTTQ"), ("note", answer)],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    // An empty message and a stranger's message are refused, writing nothing.
    let stranger = app.user("TMGV", "Phạm Thu", "member").await;
    let (s_cookie, s_csrf) = app.session(&stranger).await;
    let before = app.events().await;
    let r = app
        .form(
            &action("discuss"),
            &mttq_cookie,
            &[("csrf", &mttq_csrf), ("agency", "MTTQ"), ("note", "  ")],
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    let r = app
        .form(
            &action("discuss"),
            &s_cookie,
            &[("csrf", &s_csrf), ("agency", "MTTQ"), ("note", "Tôi chen vào")],
        )
        .await;
    assert!(r.status == 403 || r.status == 422, "{}: {}", r.status, r.body);
    assert_eq!(app.events().await, before);

    // The supervisor reads the thread under MTTQ's part and replies there.
    let page = app
        .page(&format!("{TASK}?m={REGISTER}&a=MTTQ&do=discuss"), &btv_cookie)
        .await;
    let thread = part(&page.body, &format!("trao-doi-{REGISTER}-MTTQ"), "</details>");
    for shown in [
        reason,
        answer,
        "Đỗ Thị Mai — ",
        "lý do trả lại",
        "data-action=\"discuss\"",
    ] {
        assert!(thread.contains(shown), "{shown:?} missing from {thread}");
    }
    let reply = "Đã thấy, sẽ duyệt khi nộp lại";
    let r = app
        .form(
            &action("discuss"),
            &btv_cookie,
            &[("csrf", &btv_csrf), ("agency", "MTTQ"), ("note", reply)],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let page = app.page(TASK, &mttq_cookie).await;
    let thread = part(&page.body, &format!("trao-doi-{REGISTER}-MTTQ"), "</details>");
    assert!(
        thread.find(answer).unwrap() < thread.find(reply).unwrap(),
        "oldest first: {thread}"
    );
    assert!(page.body.contains("Trao đổi về mốc “"), "in the history");

    // Events of the task, attributed; each queues a notice to the other side.
    let events = app.engine.store.task_events("duc-pho-de-an-13/III.1.2").await.unwrap();
    let posted: Vec<_> = events
        .iter()
        .filter(|s| s.event.name() == "MessagePosted")
        .map(|s| (s.event.stamp().by.to_string(), s.hash.is_some()))
        .collect();
    assert_eq!(posted.len(), 2, "{posted:?}");
    assert!(
        posted[0].0.contains("Đỗ Thị Mai") && posted[1].0.contains("Lê Thị Bình"),
        "{posted:?}"
    );
    assert!(posted.iter().all(|(_, hashed)| *hashed), "in the hash chain");
    kehoach::projections::catch_up(&app.engine.store).await.unwrap();
    let outbox = app.engine.store.outbox(None).await.unwrap();
    let messages: Vec<(&str, &str)> = outbox
        .iter()
        .filter(|r| r.kind == "message")
        .map(|r| (r.agency.as_str(), r.role.as_str()))
        .collect();
    assert!(
        messages.contains(&("BTV", "lead")),
        "the agency's message to the lead: {messages:?}"
    );
    assert!(
        messages.contains(&("MTTQ", "implementer")),
        "the supervisor's reply to the agency: {messages:?}"
    );
}
on_both_stores!(discussion_answers_a_return, a_return_is_answered_in_the_discussion);

/// An agency that both implements and advises a task (BDV on II.2.1.2)
/// writes on another agency's part only through a supervisor; its members
/// write on its own part.
async fn only_supervisors_write_on_another_part(kind: &str) {
    let app = App::shipped(kind, "2024-03-10").await;
    let page = "/tasks/duc-pho-de-an-13/II.2.1.2/milestones/report-2023/discuss";
    let member = app.user("BDV", "Nguyễn Văn Thành", "member").await;
    let (m_cookie, m_csrf) = app.session(&member).await;
    let supervisor = app.user("BDV", "Võ Văn Em", "supervisor").await;
    let (s_cookie, s_csrf) = app.session(&supervisor).await;
    let before = app.events().await;
    let r = app
        .form(
            page,
            &m_cookie,
            &[("csrf", &m_csrf), ("agency", "UBND"), ("note", "Nhắc UBND")],
        )
        .await;
    assert_eq!(r.status, 403, "a member on UBND's part: {}", r.body);
    assert_eq!(app.events().await, before);
    let r = app
        .form(
            page,
            &m_cookie,
            &[("csrf", &m_csrf), ("agency", "BDV"), ("note", "Phần của Ban")],
        )
        .await;
    assert_eq!(r.status, 303, "a member on its own part: {}", r.body);
    let r = app
        .form(
            page,
            &s_cookie,
            &[("csrf", &s_csrf), ("agency", "UBND"), ("note", "Đề nghị UBND bổ sung")],
        )
        .await;
    assert_eq!(r.status, 303, "a supervisor on UBND's part: {}", r.body);
    let shown = app
        .page("/tasks/duc-pho-de-an-13/II.2.1.2?m=report-2023&a=UBND", &m_cookie)
        .await;
    let ubnd = part(&shown.body, "m-report-2023-UBND", "<li class=\"obligation");
    assert!(
        !ubnd.contains("data-action=\"discuss\""),
        "not offered to the member: {ubnd}"
    );
    let shown = app
        .page("/tasks/duc-pho-de-an-13/II.2.1.2?m=report-2023&a=UBND", &s_cookie)
        .await;
    let ubnd = part(&shown.body, "m-report-2023-UBND", "<li class=\"obligation");
    assert!(
        ubnd.contains("data-action=\"discuss\""),
        "offered to the supervisor: {ubnd}"
    );
}
on_both_stores!(
    discussion_by_role_on_a_shared_task,
    only_supervisors_write_on_another_part
);

/// Files filed with a report are listed by name, size and kind, with a
/// download link and, for PDFs and images, a link to view them.
async fn filed_files_are_listed(kind: &str) {
    let (app, _, (btv_cookie, _)) = with_sessions(kind, "TMGV", "Phạm Thu").await;
    let file = |name: &str, size: u64, media_type: &str, byte: char| Attachment {
        sha256: FileHash::parse(&byte.to_string().repeat(64)).unwrap(),
        name: name.into(),
        size,
        media_type: media_type.into(),
    };
    let attachments = vec![
        file("ke-hoach.pdf", 1_258_291, "application/pdf", 'a'),
        file("anh-hop.jpg", 12_595, "image/jpeg", 'b'),
        file(
            "danh-sach.xlsx",
            900,
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            'c',
        ),
    ];
    let report = TaskAction::ReportProgress {
        milestone: mid(REGISTER),
        agency: Some(AgencyCode::parse("TMGV").unwrap()),
        note: "Kèm kế hoạch và ảnh".into(),
        kpis: vec![],
        evidence: vec![],
        attachments,
    };
    act(&app.engine, "III.1.2", "TMGV", "Phạm Thu", report).await.unwrap();
    app.engine.catch_up().await.unwrap();
    let page = app.page(TASK, &btv_cookie).await;
    let filed = part(&page.body, &format!("m-{REGISTER}-TMGV"), "<li class=\"obligation");
    let a = "a".repeat(64);
    let b = "b".repeat(64);
    let c = "c".repeat(64);
    for shown in [
        format!("<a class=\"file-download\" href=\"{TASK}/files/{a}\" download>ke-hoach.pdf</a> <span class=\"muted\">(PDF, 1,2 MB)</span>"),
        format!("<a class=\"file-view\" href=\"{TASK}/files/{a}?view=1\">Xem"),
        format!(
            "<a class=\"file-download\" href=\"{TASK}/files/{b}\" download>anh-hop.jpg</a> <span class=\"muted\">(Ảnh JPEG, 12,3 KB)</span>"
        ),
        format!("<a class=\"file-view\" href=\"{TASK}/files/{b}?view=1\">Xem"),
        format!(
            "<a class=\"file-download\" href=\"{TASK}/files/{c}\" download>danh-sach.xlsx</a> <span class=\"muted\">(Excel, 900 byte)</span>"
        ),
        "Phạm Thu — Các cơ quan chuyên trách tham mưu, giúp việc Thị ủy".to_string(),
    ] {
        assert!(filed.contains(&shown), "{shown:?} missing from {filed}");
    }
    assert!(
        !filed.contains(&format!("{c}?view=1")),
        "a spreadsheet is not viewed in the browser"
    );
}
on_both_stores!(filed_files_are_listed_with_size_and_kind, filed_files_are_listed);
