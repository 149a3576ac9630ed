//! Delivering rendered e-mails: over SMTP (lettre's pooled async client) or,
//! without an SMTP server configured, into `.eml` files in an outbox
//! directory that an operator can read or hand to any mail client.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::{Error as SmtpError, PoolConfig};
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use sha2::{Digest as _, Sha256};

/// How long opening the TCP connection may take (lettre's own timeout; in
/// its Tokio client it covers only the connect).
const SMTP_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// How long one whole delivery may take: connect, TLS, AUTH, the envelope
/// and the data. lettre sets no read timeout, so without this a server that
/// accepts the connection and then goes silent would hang the dispatcher.
const SMTP_SEND_DEADLINE: Duration = Duration::from_secs(60);

/// Shown with every bad-URL error, so the fix is in the message.
const SUPPORTED_URLS: &str = "dạng hỗ trợ: smtp://máy:cổng (không mã hóa), \
     smtp://tên:mật-khẩu@máy:587?tls=required hoặc ?tls=opportunistic (STARTTLS), smtps://tên:mật-khẩu@máy:465 (TLS)";

/// Where e-mails go.
pub enum Transport {
    Smtp {
        transport: AsyncSmtpTransport<Tokio1Executor>,
        /// The URL with its password replaced by `***`, for logs and errors.
        url_shown: String,
    },
    Files {
        dir: PathBuf,
    },
}

/// What the receiving side said about one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// SMTP: the server's final reply, code and text ("250 2.0.0 Ok: queued").
    /// Files: `saved <path>`.
    pub reply: String,
}

/// Why a transport could not be set up or a message not delivered.
///
/// The split that matters to a caller is [`TransportError::is_permanent`]:
/// a permanent error will fail the same way on every retry (the server said
/// 5xx, an address is malformed, the configuration is wrong); anything else
/// may succeed later.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("cấu hình SMTP không hợp lệ ({url}): {reason}")]
    Config { url: String, reason: String },
    #[error("không tạo được thư mục hộp thư đi {}: {source}", dir.display())]
    OutboxDir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("địa chỉ nhận không hợp lệ: {address:?} ({reason})")]
    BadRecipient { address: String, reason: String },
    #[error("máy chủ {server} từ chối thư (lỗi vĩnh viễn): {reason}")]
    Permanent { server: String, reason: String },
    #[error("chưa gửi được thư qua {server} (lỗi tạm thời, có thể thử lại sau): {reason}")]
    Transient {
        server: String,
        reason: String,
        /// The server answered (a 4xx other than 421) about this message or
        /// recipient: it is reachable, other recipients may still go.
        answered: bool,
    },
    #[error("không ghi được thư vào {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl TransportError {
    /// A failure about this recipient or message, from a server that
    /// answered: the next recipient is worth trying now.
    pub fn is_about_recipient(&self) -> bool {
        match self {
            TransportError::Transient { answered, .. } => *answered,
            other => other.is_permanent(),
        }
    }

    /// True when retrying the same message through the same transport cannot
    /// succeed: a 5xx reply, a malformed recipient, a bad configuration.
    pub fn is_permanent(&self) -> bool {
        match self {
            TransportError::Config { .. } | TransportError::BadRecipient { .. } | TransportError::Permanent { .. } => {
                true
            }
            TransportError::OutboxDir { .. } | TransportError::Transient { .. } | TransportError::Write { .. } => false,
        }
    }
}

/// Builds the transport from the configuration.
///
/// With `smtp_url`, mail goes over SMTP through a connection pool (idle
/// connections are reused for a minute); connecting may take 30 s and a
/// whole delivery 60 s before it counts as a transient failure.
/// The URL forms are exactly those of lettre's `AsyncSmtpTransport::from_url`:
///
/// | URL | security | default port |
/// |---|---|---|
/// | `smtps://user:pass@host:port` | TLS from the first byte (implicit TLS) | 465 |
/// | `smtp://user:pass@host:port?tls=required` | STARTTLS, refused if the server does not offer it | 587 |
/// | `smtp://user:pass@host:port?tls=opportunistic` | STARTTLS if offered, otherwise plain text | 587 |
/// | `smtp://host:port` | plain text, no TLS at all (a local relay or a test server) | 25 |
///
/// `user:pass@` is optional; when present, both must be percent-encoded
/// (a `@` in a password is `%40`) and are sent with AUTH PLAIN or LOGIN. A
/// path (`smtp://host/ehlo.name`) sets the name given in EHLO. Any other
/// scheme or `tls` value is an error. Certificates are checked against the
/// system's trust store.
///
/// Must be called inside a Tokio runtime when a URL is given: the pool
/// starts its clean-up task right away.
///
/// Without a URL, mail is written as `.eml` files into `outbox_dir`, which is
/// created if missing.
pub fn from_config(smtp_url: Option<&str>, outbox_dir: &Path) -> Result<Transport, TransportError> {
    match smtp_url {
        Some(url) => {
            let url_shown = hide_password(url.trim());
            if tokio::runtime::Handle::try_current().is_err() {
                return Err(TransportError::Config {
                    url: url_shown,
                    reason: "cần khởi tạo bên trong Tokio runtime".to_owned(),
                });
            }
            let builder =
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url.trim()).map_err(|e| TransportError::Config {
                    url: url_shown.clone(),
                    reason: format!("{}; {SUPPORTED_URLS}", one_line(&e.to_string())),
                })?;
            let transport = builder
                .timeout(Some(SMTP_CONNECT_TIMEOUT))
                .pool_config(PoolConfig::new().idle_timeout(Duration::from_secs(60)))
                .build();
            Ok(Transport::Smtp { transport, url_shown })
        }
        None => {
            std::fs::create_dir_all(outbox_dir).map_err(|source| TransportError::OutboxDir {
                dir: outbox_dir.to_path_buf(),
                source,
            })?;
            Ok(Transport::Files {
                dir: outbox_dir.to_path_buf(),
            })
        }
    }
}

impl Transport {
    /// A short description for logs: the URL without its password, or the
    /// outbox directory.
    pub fn describe(&self) -> String {
        match self {
            Transport::Smtp { url_shown, .. } => url_shown.clone(),
            Transport::Files { dir } => dir.display().to_string(),
        }
    }

    /// Whether mail goes to an SMTP server (not an outbox directory).
    pub fn is_smtp(&self) -> bool {
        matches!(self, Transport::Smtp { .. })
    }

    /// Delivers one message to `envelope_recipients` (the SMTP `RCPT TO`
    /// list; empty means "the addresses in the message's To/Cc/Bcc").
    ///
    /// SMTP: one reply for the whole message; if the server refuses any
    /// recipient, nothing is sent and the error says why. Files: the message
    /// is written to `<dir>/<Message-ID>.eml` atomically; writing the same
    /// Message-ID again replaces the file, so a re-send is harmless.
    pub async fn send(&self, message: &Message, envelope_recipients: &[String]) -> Result<Delivery, TransportError> {
        let envelope = envelope_for(message, envelope_recipients)?;
        match self {
            Transport::Smtp { transport, url_shown } => {
                send_smtp(
                    transport,
                    url_shown,
                    &envelope,
                    &message.formatted(),
                    SMTP_SEND_DEADLINE,
                )
                .await
            }
            Transport::Files { dir } => {
                let name = eml_file_name(message);
                let path = dir.join(&name);
                let bytes = message.formatted();
                let dir = dir.clone();
                let target = path.clone();
                tokio::task::spawn_blocking(move || write_atomically(&dir, &target, &bytes))
                    .await
                    .map_err(|e| TransportError::Write {
                        path: path.clone(),
                        source: std::io::Error::other(e.to_string()),
                    })?
                    .map_err(|source| TransportError::Write {
                        path: path.clone(),
                        source,
                    })?;
                Ok(Delivery {
                    reply: format!("saved {}", path.display()),
                })
            }
        }
    }
}

/// One SMTP delivery under a deadline. When the deadline cuts an exchange
/// short, lettre's pool may keep that connection; the pool checks a
/// connection with NOOP before reusing it, and that check runs under the next
/// send's deadline too, so a stuck connection costs at most one more
/// transient failure. An unfinished DATA is never delivered (it lacks its
/// final dot), so a cut-off attempt cannot produce a duplicate.
async fn send_smtp(
    transport: &AsyncSmtpTransport<Tokio1Executor>,
    server: &str,
    envelope: &Envelope,
    bytes: &[u8],
    deadline: Duration,
) -> Result<Delivery, TransportError> {
    let response = match tokio::time::timeout(deadline, transport.send_raw(envelope, bytes)).await {
        Ok(result) => result.map_err(|e| classify_smtp(server, &e))?,
        Err(_) => {
            return Err(TransportError::Transient {
                answered: false,
                server: server.to_owned(),
                reason: format!(
                    "hết thời gian chờ: máy chủ không trả lời xong trong {} giây",
                    deadline.as_secs_f32()
                ),
            })
        }
    };
    let text = response.message().collect::<Vec<_>>().join(" ");
    Ok(Delivery {
        reply: one_line(&format!("{} {}", response.code(), text)),
    })
}

fn envelope_for(message: &Message, recipients: &[String]) -> Result<Envelope, TransportError> {
    if recipients.is_empty() {
        return Ok(message.envelope().clone());
    }
    let to = recipients
        .iter()
        .map(|r| {
            r.trim().parse::<Address>().map_err(|e| TransportError::BadRecipient {
                address: r.clone(),
                reason: e.to_string(),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Envelope::new(message.envelope().from().cloned(), to).map_err(|e| TransportError::BadRecipient {
        address: recipients.join(", "),
        reason: e.to_string(),
    })
}

/// lettre's own split already follows the reply code (4xx transient, 5xx
/// permanent); everything that never got a reply (refused connection,
/// timeout, TLS, a garbled response) is worth another try later.
fn classify_smtp(server: &str, e: &SmtpError) -> TransportError {
    let reason = one_line(&e.to_string());
    let reason = if e.is_timeout() {
        format!("hết thời gian chờ ({reason})")
    } else {
        reason
    };
    if e.is_permanent() {
        TransportError::Permanent {
            server: server.to_owned(),
            reason,
        }
    } else {
        TransportError::Transient {
            server: server.to_owned(),
            reason,
            answered: e.status().is_some_and(|code| code.to_string() != "421"),
        }
    }
}

/// `<id@domain>` → `id@domain.eml`, keeping only characters that are safe in
/// a file name on every system we care about; no path separators, no
/// leading dot, bounded length. A message without an id is named by the hash
/// of its bytes, which is at least stable for identical messages.
fn eml_file_name(message: &Message) -> String {
    let id = message
        .headers()
        .get_raw("Message-ID")
        .map(|raw| raw.trim().trim_start_matches('<').trim_end_matches('>').to_owned())
        .unwrap_or_default();
    let mut name: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "@.-_+=".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(180)
        .collect();
    if name.is_empty() {
        name = format!(
            "no-message-id-{}",
            &hex::encode(Sha256::digest(message.formatted()))[..16]
        );
    }
    if name.starts_with('.') {
        name.replace_range(0..1, "_");
    }
    name.push_str(".eml");
    name
}

/// Write to a temporary file in the same directory, flush it to disk, then
/// rename over the target: a reader (or a crash) sees the old file or the
/// new one, never half of one. The temporary name is unique per process and
/// call so two concurrent sends of one message do not write into each
/// other's file.
fn write_atomically(dir: &Path, target: &Path, bytes: &[u8]) -> std::io::Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let file_name = target
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{file_name}.{}.{n}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, target)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// The URL with the password part of its user info replaced by `***`.
/// Done by hand on the text so that even a URL lettre cannot parse is shown
/// without its secret in the error.
fn hide_password(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let rest_start = scheme_end + 3;
    let rest = &url[rest_start..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return url.to_owned();
    };
    let userinfo = &authority[..at];
    match userinfo.find(':') {
        Some(colon) => format!(
            "{}{}:***{}",
            &url[..rest_start],
            &userinfo[..colon],
            &url[rest_start + at..]
        ),
        None => url.to_owned(),
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use lettre::message::header::ContentType;

    fn message(id: &str, body: &str) -> Message {
        Message::builder()
            .from("Hệ thống kehoach <kehoach@ducpho.example>".parse().expect("from"))
            .to("bdv@ducpho.example".parse().expect("to"))
            .subject("Nhắc việc")
            .message_id(Some(format!("<{id}>")))
            .header(ContentType::TEXT_PLAIN)
            .body(body.to_owned())
            .expect("message builds")
    }

    fn eml_files(dir: &Path) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .expect("read outbox")
            .map(|e| e.expect("dir entry").path())
            .collect();
        files.sort();
        files
    }

    #[tokio::test]
    async fn files_transport_writes_one_parseable_eml_per_message_id() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let outbox = tmp.path().join("outbox").join("nested");
        let transport = from_config(None, &outbox).expect("files transport");
        assert!(outbox.is_dir(), "outbox directory created");

        let id = "digest.bdv.20240301.0123456789abcdef@ducpho.example";
        let first = transport
            .send(&message(id, "first attempt"), &["bdv@ducpho.example".to_owned()])
            .await
            .expect("saved");
        let expected = outbox.join(format!("{id}.eml"));
        assert_eq!(first.reply, format!("saved {}", expected.display()));

        let bytes = std::fs::read(&expected).expect("eml exists");
        let text = String::from_utf8(bytes).expect("utf-8");
        assert!(text.starts_with("From: "), "starts with the headers: {text}");
        let (head, _) = text
            .split_once("\r\n\r\n")
            .expect("header block ends with an empty line");
        assert!(head.lines().all(|l| l.starts_with(' ') || l.contains(": ")), "{head}");
        assert!(head.contains(&format!("Message-ID: <{id}>")), "{head}");

        // A re-send after a crash replaces the file instead of adding one.
        transport
            .send(&message(id, "second attempt"), &[])
            .await
            .expect("saved again");
        assert_eq!(
            eml_files(&outbox),
            vec![expected.clone()],
            "one file, no temporary left behind"
        );
        let again = std::fs::read(&expected).expect("eml exists");
        let again = String::from_utf8(again).expect("utf-8");
        assert!(
            again.contains("second attempt") && !again.contains("first attempt"),
            "overwritten: {again}"
        );

        let other = "digest.btg.20240301.fedcba9876543210@ducpho.example";
        transport.send(&message(other, "khác"), &[]).await.expect("saved");
        assert_eq!(eml_files(&outbox).len(), 2);
    }

    #[tokio::test]
    async fn hostile_message_id_stays_inside_the_outbox() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let transport = from_config(None, tmp.path()).expect("files transport");
        let delivery = transport
            .send(&message("../../etc/passwd@x", "x"), &[])
            .await
            .expect("saved under a sanitised name");
        let files = eml_files(tmp.path());
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].parent(), Some(tmp.path()));
        let name = files[0].file_name().and_then(|n| n.to_str()).expect("name");
        assert!(!name.starts_with('.') && !name.contains('/'), "{name}");
        assert!(delivery.reply.starts_with("saved "));
    }

    #[tokio::test]
    async fn bad_envelope_recipient_is_a_permanent_error() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let transport = from_config(None, tmp.path()).expect("files transport");
        let err = transport
            .send(&message("a@b.example", "x"), &["không hợp lệ".to_owned()])
            .await
            .expect_err("bad address");
        assert!(err.is_permanent());
        assert!(err.to_string().contains("không hợp lệ"), "{err}");
        assert!(eml_files(tmp.path()).is_empty());
    }

    #[test]
    fn outbox_that_cannot_be_created_is_an_error_naming_it() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let file = tmp.path().join("a-file");
        std::fs::write(&file, b"x").expect("write");
        let err = match from_config(None, &file.join("outbox")) {
            Err(e) => e,
            Ok(_) => panic!("a directory under a file cannot exist"),
        };
        assert!(matches!(err, TransportError::OutboxDir { .. }));
        assert!(!err.is_permanent());
        assert!(err.to_string().contains("a-file"), "{err}");
    }

    #[tokio::test]
    async fn bad_smtp_urls_are_errors_not_panics() {
        let tmp = tempfile::tempdir().expect("tempdir");
        for url in [
            "not a url",
            "http://mail.example:25",
            "smtp://",
            "smtp://host?tls=sometimes",
            "smtp://u:s3cret@/x",
        ] {
            match from_config(Some(url), tmp.path()) {
                Err(e @ TransportError::Config { .. }) => {
                    assert!(e.is_permanent());
                    assert!(!e.to_string().contains("s3cret"), "password leaked: {e}");
                }
                Err(e) => panic!("{url}: unexpected error {e}"),
                Ok(_) => panic!("{url}: accepted"),
            }
        }
    }

    #[tokio::test]
    async fn smtp_url_password_is_hidden() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let transport =
            from_config(Some("smtp://mailer:p%40ss%3Aword@127.0.0.1:2525"), tmp.path()).expect("smtp transport");
        match &transport {
            Transport::Smtp { url_shown, .. } => {
                assert_eq!(url_shown, "smtp://mailer:***@127.0.0.1:2525");
                assert_eq!(transport.describe(), *url_shown);
            }
            Transport::Files { .. } => panic!("expected SMTP"),
        }
    }

    #[tokio::test]
    async fn tls_url_forms_are_accepted() {
        let tmp = tempfile::tempdir().expect("tempdir");
        for url in [
            "smtps://u:p@smtp.ducpho.example",
            "smtp://u:p@smtp.ducpho.example:587?tls=required",
            "smtp://smtp.ducpho.example?tls=opportunistic",
            "smtp://smtp.ducpho.example:25/kehoach.ducpho.example",
        ] {
            if let Err(e) = from_config(Some(url), tmp.path()) {
                panic!("{url}: {e}");
            }
        }
    }

    #[test]
    fn smtp_outside_a_runtime_is_an_error_not_a_panic() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let err = match from_config(Some("smtp://127.0.0.1:2525"), tmp.path()) {
            Err(e) => e,
            Ok(_) => panic!("lettre's pool would panic without a runtime"),
        };
        assert!(matches!(err, TransportError::Config { .. }), "{err}");
    }

    #[tokio::test]
    async fn refused_connection_is_transient() {
        // A port nothing listens on: bind one, note it, close it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        let tmp = tempfile::tempdir().expect("tempdir");
        let url = format!("smtp://user:hunter2@127.0.0.1:{port}");
        let transport = from_config(Some(&url), tmp.path()).expect("smtp transport");
        let err = transport
            .send(&message("a@b.example", "x"), &[])
            .await
            .expect_err("nothing listens");
        assert!(matches!(err, TransportError::Transient { .. }), "{err}");
        assert!(!err.is_permanent());
        let shown = err.to_string();
        assert!(
            shown.contains(&format!("127.0.0.1:{port}")) && !shown.contains("hunter2"),
            "{shown}"
        );
        assert!(!shown.contains('\n'), "one line: {shown}");
    }

    #[tokio::test]
    async fn silent_server_hits_the_deadline_as_transient() {
        // Accepts the connection and never says a word (not even a greeting).
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let holder = std::thread::spawn(move || {
            let (socket, _) = listener.accept().expect("accept");
            std::thread::sleep(Duration::from_secs(2));
            drop(socket);
        });
        let tmp = tempfile::tempdir().expect("tempdir");
        let transport = from_config(Some(&format!("smtp://127.0.0.1:{port}")), tmp.path()).expect("smtp transport");
        let Transport::Smtp { transport, url_shown } = &transport else {
            panic!("expected SMTP");
        };
        let msg = message("a@b.example", "x");
        let envelope = envelope_for(&msg, &[]).expect("envelope");
        let started = std::time::Instant::now();
        let err = send_smtp(
            transport,
            url_shown,
            &envelope,
            &msg.formatted(),
            Duration::from_millis(300),
        )
        .await
        .expect_err("deadline");
        assert!(started.elapsed() < Duration::from_secs(2), "the deadline cut it short");
        assert!(matches!(err, TransportError::Transient { .. }), "{err}");
        assert!(err.to_string().contains("hết thời gian chờ"), "{err}");
        holder.join().expect("holder thread");
    }

    #[test]
    fn hide_password_handles_the_url_forms() {
        assert_eq!(hide_password("smtps://u:p@h:465"), "smtps://u:***@h:465");
        assert_eq!(
            hide_password("smtp://u:p@w@h:587?tls=required"),
            "smtp://u:***@h:587?tls=required"
        );
        assert_eq!(hide_password("smtp://:p@h"), "smtp://:***@h");
        assert_eq!(hide_password("smtp://u@h"), "smtp://u@h");
        assert_eq!(hide_password("smtp://h:25/ehlo.name"), "smtp://h:25/ehlo.name");
        assert_eq!(hide_password("smtp://h/path@x:y"), "smtp://h/path@x:y");
        assert_eq!(hide_password("garbage"), "garbage");
    }
}
