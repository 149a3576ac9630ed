//! Mail about one's own account: the notice that sign-in was locked after
//! too many failures, and the link of "Quên mật khẩu". Sent at once (not
//! queued like digests) through the same transport and From as reminders;
//! a failure is logged by the caller and never blocks the request.

use super::email::{compose, id_domain, one_line, Envelope};
use super::transport::{self, Transport};
use crate::config::MailSettings;
use chrono::{DateTime, Utc};

/// What sends account mail.
pub struct AccountMailer {
    pub transport: Transport,
    pub from: String,
    pub mail_domain: String,
}

impl AccountMailer {
    pub fn from_settings(mail: &MailSettings) -> Result<Self, transport::TransportError> {
        Ok(Self {
            transport: transport::from_config(mail.smtp_url.as_deref(), &mail.outbox_dir)?,
            from: mail.from.clone(),
            mail_domain: mail.mail_domain(),
        })
    }

    /// Over a transport built elsewhere (the dispatcher's, a test's).
    pub fn over(transport: Transport, from: &str, mail_domain: &str) -> Self {
        Self {
            transport,
            from: from.to_string(),
            mail_domain: mail_domain.to_string(),
        }
    }

    /// Whether mail reaches a server (an outbox directory is read by nobody:
    /// a sign-in link written there is shown to the administrator instead).
    pub fn reaches_people(&self) -> bool {
        self.transport.is_smtp()
    }

    /// Sends a plain message (and the same text as HTML) to one address.
    pub async fn send(&self, to: &str, subject: &str, text: &str, now: DateTime<Utc>) -> Result<(), String> {
        let id = format!(
            "account.{}@{}",
            crate::accounts::store::secret().get(..24).unwrap_or_default(),
            id_domain(&self.mail_domain)
        );
        let html = format!(
            "<!DOCTYPE html><html lang=\"vi\"><body><pre style=\"font-family:sans-serif;white-space:pre-wrap\">{}</pre></body></html>",
            text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
        );
        let date = now.with_timezone(&chrono::FixedOffset::east_opt(7 * 3600).expect("UTC+7"));
        let recipients = [to.to_string()];
        let message = compose(Envelope {
            message_id: &id,
            from: &self.from,
            recipients: &recipients,
            agency_code: "",
            subject: one_line(subject),
            text: text.to_string(),
            html,
            date,
            extra: vec![],
        })
        .map_err(|e| e.to_string())?;
        self.transport
            .send(&message, &recipients)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}
