//! Rendering a directory notice: the e-mail that tells an agency's old
//! addresses that its entry in the directory changed (which addresses left
//! or joined, who changed it and when), so that mail cannot be redirected
//! silently. Same safety rules as digests: plan text never reaches a header
//! unsanitised and the HTML template escapes it.

use super::email::{
    bodies_of, cap_chars, compose, id_domain, one_line, plan_reference, sha256_hex, EmailError, Envelope,
    SIMULATION_PREFIX, SUBJECT_MAX_CHARS,
};
use chrono::{DateTime, FixedOffset};
use lettre::Message;
use minijinja::context;

const TEXT_TEMPLATE: &str = include_str!("../../templates/email/directory-notice.txt");
const HTML_TEMPLATE: &str = include_str!("../../templates/email/directory-notice.html");
const TEXT_NAME: &str = "directory-notice.txt";
const HTML_NAME: &str = "directory-notice.html";

/// One directory notice, ready to render.
#[derive(Debug, Clone, PartialEq)]
pub struct NoticeMail {
    pub plan_title: String,
    pub agency_code: String,
    pub agency_name: String,
    /// The old addresses: envelope and To:.
    pub recipients: Vec<String>,
    pub removed: Vec<String>,
    pub added: Vec<String>,
    /// Who changed the directory, as people read it ("Phạm Thanh Tra (UBKT)").
    pub changed_by: String,
    /// When, in the plan's zone.
    pub changed_at: DateTime<FixedOffset>,
    pub from: String,
    pub message_id: String,
    pub date: DateTime<FixedOffset>,
    pub simulation: bool,
}

/// A Message-ID that depends only on the plan and the notice key, so a
/// re-send after a crash carries the same id:
/// `directory.<agency>.<16 hex of SHA-256("plan\nkey")>@<domain>`.
pub fn message_id(plan: &str, key: &str, agency: &str, domain: &str) -> String {
    let agency: String = agency
        .to_ascii_lowercase()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    let hash = sha256_hex(format!("{plan}\n{key}").as_bytes());
    let agency = if agency.is_empty() { "agency".to_owned() } else { agency };
    format!("directory.{agency}.{}@{}", &hash[..16], id_domain(domain))
}

pub fn subject(n: &NoticeMail) -> String {
    let raw = format!(
        "[kehoach] Thay đổi địa chỉ e-mail của {} ({}) trong danh mục cơ quan",
        n.agency_name, n.agency_code
    );
    let raw = if n.simulation {
        format!("{SIMULATION_PREFIX}{raw}")
    } else {
        raw
    };
    cap_chars(&one_line(&raw), SUBJECT_MAX_CHARS)
}

pub fn render(n: &NoticeMail) -> Result<Message, EmailError> {
    let subject = subject(n);
    let (text, html) = bodies(n, &subject)?;
    compose(Envelope {
        message_id: &n.message_id,
        from: &n.from,
        recipients: &n.recipients,
        agency_code: &n.agency_code,
        subject,
        text,
        html,
        date: n.date,
        extra: vec![],
    })
}

fn bodies(n: &NoticeMail, subject: &str) -> Result<(String, String), EmailError> {
    let agency = one_line(&n.agency_name);
    let consequence = if n.removed.is_empty() {
        format!("Từ nay, thư của hệ thống kehoach gửi cho {agency} cũng được gửi đến các địa chỉ được thêm.")
    } else {
        format!("Từ nay, thư của hệ thống kehoach gửi cho {agency} không còn được gửi đến các địa chỉ bị gỡ.")
    };
    let lines = |v: &[String]| v.iter().map(|a| one_line(a)).collect::<Vec<_>>();
    let ctx = context! {
        subject => subject,
        agency_name => agency.clone(),
        agency_code => one_line(&n.agency_code),
        intro => format!(
            "Danh mục cơ quan của {} vừa được thay đổi: địa chỉ e-mail nhận thông báo của {} đã thay đổi. \
             Quý vị nhận thư này vì địa chỉ của quý vị có trong mục của cơ quan trước khi thay đổi.",
            plan_reference(&n.plan_title),
            agency
        ),
        removed => lines(&n.removed),
        added => lines(&n.added),
        changed_by => one_line(&n.changed_by),
        changed_at => n.changed_at.format("%H:%M ngày %d/%m/%Y").to_string(),
        consequence => consequence,
        simulation => n.simulation,
        footer => "Thư này được gửi tự động từ kehoach. Vui lòng không trả lời thư này.",
    };
    bodies_of((TEXT_NAME, TEXT_TEMPLATE), (HTML_NAME, HTML_TEMPLATE), &ctx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notification::email::is_valid_message_id;
    use chrono::TimeZone;

    fn notice() -> NoticeMail {
        let at = FixedOffset::east_opt(7 * 3600)
            .unwrap()
            .with_ymd_and_hms(2024, 3, 1, 9, 30, 0)
            .unwrap();
        NoticeMail {
            plan_title: "Kế hoạch thực hiện Đề án số 13-ĐA/TU".into(),
            agency_code: "UBND".into(),
            agency_name: "Ủy ban nhân dân thị xã <b>\r\nBcc: x@y.example".into(),
            recipients: vec!["ubnd@ducpho.example".into()],
            removed: vec!["ubnd@ducpho.example".into()],
            added: vec!["ubnd-moi@elsewhere.example".into()],
            changed_by: "Phạm Thanh Tra (UBKT)".into(),
            changed_at: at,
            from: "Thị ủy Đức Phổ <kehoach@ducpho.example>".into(),
            message_id: message_id("duc-pho-de-an-13", "directory-1-UBND", "UBND", "ducpho.example"),
            date: at,
            simulation: false,
        }
    }

    #[test]
    fn the_notice_says_what_changed_who_and_when_and_whom_to_call() {
        let n = notice();
        let (text, html) = bodies(&n, &subject(&n)).unwrap();
        for needle in [
            "Địa chỉ bị gỡ khỏi danh mục:\n  - ubnd@ducpho.example",
            "Địa chỉ được thêm vào danh mục:\n  - ubnd-moi@elsewhere.example",
            "Người thay đổi: Phạm Thanh Tra (UBKT)",
            "Thời điểm thay đổi: 09:30 ngày 01/03/2024",
            "liên hệ ngay Ban Dân vận Thị ủy hoặc người quản trị",
        ] {
            assert!(text.contains(needle), "{needle:?} missing from\n{text}");
        }
        assert!(html.contains("&lt;b&gt;") && !html.contains("<b>"), "escaped");
        let s = subject(&n);
        assert!(!s.chars().any(char::is_control), "{s:?}");
        assert!(s.starts_with("[kehoach] Thay đổi địa chỉ e-mail của Ủy ban nhân dân thị xã"));
    }

    #[test]
    fn message_id_depends_on_plan_and_key_only() {
        let a = message_id("duc-pho-de-an-13", "directory-1-UBND", "UBND", "ducpho.example");
        assert_eq!(
            a,
            message_id("duc-pho-de-an-13", "directory-1-UBND", "UBND", "ducpho.example")
        );
        assert_ne!(
            a,
            message_id("duc-pho-de-an-13", "directory-2-UBND", "UBND", "ducpho.example")
        );
        assert_ne!(a, message_id("khac", "directory-1-UBND", "UBND", "ducpho.example"));
        assert!(
            a.starts_with("directory.ubnd.") && a.ends_with("@ducpho.example"),
            "{a}"
        );
        assert!(is_valid_message_id(&a));
        let rendered = render(&notice()).unwrap().formatted();
        let head = String::from_utf8_lossy(&rendered);
        assert!(head.contains(&format!("Message-ID: <{a}>")), "{head}");
    }
}
