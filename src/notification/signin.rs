//! The e-mail that carries a one-time sign-in link to its account holder,
//! sent when an administrator creates an account or sends a new link from
//! the web. The link goes to the account's own address only: the
//! administrator never needs to see it when an SMTP server is configured.

use super::account_mail::AccountMailer;
use super::email::{
    bodies_of, cap_chars, compose, id_domain, one_line, EmailError, Envelope, SIMULATION_PREFIX, SUBJECT_MAX_CHARS,
};
use super::transport::TransportError;
use chrono::{DateTime, FixedOffset};
use lettre::Message;
use minijinja::context;

const TEXT_TEMPLATE: &str = include_str!("../../templates/email/signin-link.txt");
const HTML_TEMPLATE: &str = include_str!("../../templates/email/signin-link.html");
const TEXT_NAME: &str = "signin-link.txt";
const HTML_NAME: &str = "signin-link.html";

/// One sign-in link, ready to render.
#[derive(Debug, Clone, PartialEq)]
pub struct SigninMail {
    /// The account's address: envelope and To:.
    pub to: String,
    pub name: String,
    pub url: String,
    /// A new account (otherwise a new link for an existing one).
    pub created: bool,
    /// Who sent it, as people read it.
    pub by: String,
    pub expires: DateTime<FixedOffset>,
    pub from: String,
    pub message_id: String,
    pub date: DateTime<FixedOffset>,
    pub simulation: bool,
}

/// `signin.<link id>@<domain>`: the link's id (never the link) names the mail.
pub fn message_id(link_id: &str, domain: &str) -> String {
    let id: String = link_id.chars().filter(char::is_ascii_alphanumeric).collect();
    format!("signin.{id}@{}", id_domain(domain))
}

pub fn subject(m: &SigninMail) -> String {
    let raw = if m.created {
        "[kehoach] Tài khoản của quý vị đã được tạo: đặt mật khẩu để đăng nhập"
    } else {
        "[kehoach] Liên kết đăng nhập mới"
    };
    let raw = if m.simulation {
        format!("{SIMULATION_PREFIX}{raw}")
    } else {
        raw.to_string()
    };
    cap_chars(&one_line(&raw), SUBJECT_MAX_CHARS)
}

pub fn render(m: &SigninMail) -> Result<Message, EmailError> {
    let subject = subject(m);
    let ctx = context! {
        subject => subject.clone(),
        name => one_line(&m.name),
        email => one_line(&m.to),
        url => one_line(&m.url),
        by => one_line(&m.by),
        expires => m.expires.format("%H:%M ngày %d/%m/%Y").to_string(),
        intro => if m.created {
            "Quý vị vừa được cấp tài khoản trên hệ thống theo dõi kế hoạch kehoach."
        } else {
            "Người quản trị vừa gửi cho quý vị một liên kết đăng nhập mới trên hệ thống kehoach; các mật khẩu và liên kết trước đó (nếu có) vẫn như cũ cho đến khi quý vị đặt mật khẩu mới."
        },
        simulation => m.simulation,
        footer => "Thư này được gửi tự động từ kehoach. Vui lòng không trả lời thư này.",
    };
    let (text, html) = bodies_of((TEXT_NAME, TEXT_TEMPLATE), (HTML_NAME, HTML_TEMPLATE), &ctx)?;
    compose(Envelope {
        message_id: &m.message_id,
        from: &m.from,
        recipients: std::slice::from_ref(&m.to),
        agency_code: &m.to,
        text,
        html,
        subject,
        date: m.date,
        extra: vec![],
    })
}

/// Why a sign-in link could not be e-mailed.
#[derive(Debug, thiserror::Error)]
pub enum LinkMailError {
    #[error(transparent)]
    Render(#[from] EmailError),
    #[error(transparent)]
    Send(#[from] TransportError),
}

/// E-mails a sign-in link to its account holder, at once.
pub async fn send(mailer: &AccountMailer, mail: &SigninMail) -> Result<(), LinkMailError> {
    let message = render(mail)?;
    let delivery = mailer.transport.send(&message, std::slice::from_ref(&mail.to)).await?;
    tracing::info!(to = %mail.to, message_id = %mail.message_id, reply = %delivery.reply, "đã gửi liên kết đăng nhập");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notification::email::is_valid_message_id;
    use chrono::TimeZone;

    #[test]
    fn the_link_goes_to_the_account_only_and_headers_stay_clean() {
        let at = FixedOffset::east_opt(7 * 3600)
            .unwrap()
            .with_ymd_and_hms(2024, 3, 1, 9, 30, 0)
            .unwrap();
        let m = SigninMail {
            to: "an@bdv.example".into(),
            name: "Nguyễn <b>An</b>".into(),
            url: "http://127.0.0.1:8080/signin/abc".into(),
            created: true,
            by: "Quản Trị <qt@ducpho.example> (BDV)".into(),
            expires: at,
            from: "kehoach <kehoach@ducpho.example>".into(),
            message_id: message_id("0123456789abcdef", "ducpho.example"),
            date: at,
            simulation: false,
        };
        assert!(is_valid_message_id(&m.message_id), "{}", m.message_id);
        let raw = String::from_utf8(render(&m).unwrap().formatted()).unwrap();
        assert!(raw.contains("To: an@bdv.example"), "{raw}");
        assert!(raw.contains("Message-ID: <signin.0123456789abcdef@ducpho.example>"));
        assert!(!raw.contains("<b>An</b>"), "the name is escaped in HTML");
        assert!(!subject(&m).chars().any(char::is_control));
    }
}
