//! Rendering a [`Digest`] into one e-mail: subject, deterministic Message-ID,
//! and a multipart/alternative body (plain text and HTML) from the templates
//! in `templates/email/`.
//!
//! Everything a plan author wrote (titles, notes, agency names) is untrusted
//! as far as the mail format goes: it never reaches a header unsanitised, and
//! the HTML template escapes it.

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::Message;
use minijinja::{context, Value};
use sha2::{Digest as _, Sha256};

use super::contents::{Counts, FULL_ITEMS, MAX_EMAIL_BYTES, NAME_MAX_CHARS, NOTE_MAX_CHARS, TITLE_MAX_CHARS};
use super::{Digest, DigestItem, ItemKind, Role};

const TEXT_TEMPLATE: &str = include_str!("../../templates/email/digest.txt");
const HTML_TEMPLATE: &str = include_str!("../../templates/email/digest.html");
const TEXT_NAME: &str = "digest.txt";
const HTML_NAME: &str = "digest.html";

/// Longest subject we write, in characters. Long plan titles would otherwise
/// give subjects that clients cut anyway, and some relays refuse very long
/// header lines.
pub(super) const SUBJECT_MAX_CHARS: usize = 200;

/// Starts the subject of every e-mail from a simulation store.
pub const SIMULATION_PREFIX: &str = "[MÔ PHỎNG] ";

/// Used when the configured Message-ID domain has nothing usable in it.
const FALLBACK_DOMAIN: &str = "kehoach.invalid";

/// Why a digest could not be turned into an e-mail.
#[derive(Debug, thiserror::Error)]
pub enum EmailError {
    #[error("địa chỉ {field} không hợp lệ: {address:?} ({reason})")]
    BadAddress {
        /// Which address: "người gửi (From)" or "người nhận (To)".
        field: &'static str,
        address: String,
        reason: String,
    },
    #[error("thư gửi {agency} không có địa chỉ người nhận nào")]
    NoRecipients { agency: String },
    #[error("Message-ID không hợp lệ: {0:?} (cần dạng phần-cục-bộ@tên-miền, chỉ gồm ký tự ASCII, không có <, >, khoảng trắng)")]
    BadMessageId(String),
    #[error("lỗi mẫu thư {template}: {source}")]
    Template {
        template: &'static str,
        #[source]
        source: minijinja::Error,
    },
    #[error("không dựng được thư: {0}")]
    Build(#[from] lettre::error::Error),
}

/// The Subject: line for a digest, in Vietnamese, safe to put in a header:
/// no control characters (so no CR/LF, so no header injection), whitespace
/// collapsed, at most [`SUBJECT_MAX_CHARS`] characters. Its counts are the
/// body's ([`Counts`]): "12 phần việc của 7 nhiệm vụ (5 quá hạn, 7 sắp đến hạn)".
pub fn subject(d: &Digest) -> String {
    let window = d.window.format("%d/%m/%Y");
    let agency = cap_chars(&one_line(&d.agency_name), NAME_MAX_CHARS);
    let prefix = cap_chars(&one_line(&d.subject_prefix), NAME_MAX_CHARS);
    let raw = match d.items.as_slice() {
        [] => format!("{prefix} Thông báo ngày {window} — {agency}"),
        [single] if is_state_change(single.kind) => {
            let what = match single.kind {
                ItemKind::Submitted => "đã được nộp, chờ duyệt",
                ItemKind::Approved => "đã được duyệt",
                _ => "bị trả lại",
            };
            format!(
                "{prefix} Mốc “{}” của nhiệm vụ {} {what} — {agency}",
                cap_chars(&one_line(&single.milestone_title), 80),
                one_line(&single.task_id)
            )
        }
        items => {
            let reminders = items
                .iter()
                .any(|i| matches!(i.kind, ItemKind::Upcoming | ItemKind::Overdue));
            let escalations = items.iter().any(|i| i.kind == ItemKind::Escalation);
            let what = if reminders {
                "Nhắc việc"
            } else if escalations {
                "Báo cáo nhiệm vụ quá hạn"
            } else {
                "Cập nhật tiến độ"
            };
            format!(
                "{prefix} {what} ngày {window}: {} — {agency}",
                Counts::of(items).phrase()
            )
        }
    };
    let raw = if d.simulation {
        format!("{SIMULATION_PREFIX}{raw}")
    } else {
        raw
    };
    cap_chars(&one_line(&raw), SUBJECT_MAX_CHARS)
}

/// A Message-ID (without the angle brackets) that depends only on the
/// agency, the window and the *set* of item keys, so a digest re-rendered
/// after a crash gets the same id and receivers (and the file outbox) can
/// drop the duplicate.
///
/// Form: `digest.<agency>.<yyyymmdd>.<16 hex>@<domain>`, where the hex is the
/// start of the SHA-256 of the sorted, de-duplicated keys joined by `\n`.
/// The agency is lower-cased and reduced to `[a-z0-9_-]`; when that changed
/// it (non-ASCII codes, say), a short hash of the original is appended so two
/// agencies cannot end up with one id. The domain is reduced to
/// `[a-z0-9.-]` (use the punycode form for internationalised domains); if
/// nothing is left, `kehoach.invalid` is used.
pub fn message_id(agency: &str, window: NaiveDate, item_keys: &[String], domain: &str) -> String {
    let mut keys: Vec<&str> = item_keys.iter().map(String::as_str).collect();
    keys.sort_unstable();
    keys.dedup();
    let keys_hash = sha256_hex(keys.join("\n").as_bytes());

    let lowered = agency.to_ascii_lowercase();
    let mut agency_part: String = lowered
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if agency_part != lowered || agency_part.is_empty() {
        agency_part.push('-');
        agency_part.push_str(&sha256_hex(agency.as_bytes())[..8]);
    }

    let domain_part = id_domain(domain);

    format!(
        "digest.{agency_part}.{}.{}@{domain_part}",
        window.format("%Y%m%d"),
        &keys_hash[..16]
    )
}

/// The right-hand side of a Message-ID: `domain` reduced to `[a-z0-9.-]`,
/// or `kehoach.invalid` if nothing usable is left.
pub(super) fn id_domain(domain: &str) -> String {
    let part: String = domain
        .trim()
        .to_ascii_lowercase()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '-')
        .collect();
    let part = part.trim_matches('.');
    if part.is_empty() || part.contains("..") {
        FALLBACK_DOMAIN.to_owned()
    } else {
        part.to_owned()
    }
}

/// The whole e-mail for a digest: From, To (every recipient), Subject,
/// Message-ID, Date in the digest's own offset, `Auto-Submitted`,
/// `X-Kehoach-Window`, and a multipart/alternative body.
///
/// Rendering is deterministic: the same digest gives the same bytes (the
/// MIME boundary is derived from the content), so a re-send after a crash is
/// byte-for-byte the first attempt.
pub fn render(d: &Digest) -> Result<Message, EmailError> {
    // 20 items in full and counts stay far below the limit with the caps
    // on titles and notes; should the plan's text still make it too large,
    // fewer items are written in full until it fits.
    let mut full = FULL_ITEMS.min(d.items.len());
    loop {
        let message = render_with(d, full)?;
        let size = message.formatted().len();
        if size <= MAX_EMAIL_BYTES || full == 0 {
            if size > MAX_EMAIL_BYTES {
                tracing::warn!(agency = %d.agency_code, size, "thư tổng hợp vẫn quá giới hạn dù không nêu chi tiết mục nào");
            }
            return Ok(message);
        }
        full /= 2;
    }
}

/// The e-mail for a digest with its first `full` items written in full.
fn render_with(d: &Digest, full: usize) -> Result<Message, EmailError> {
    let subject = subject(d);
    let (text, html) = render_bodies(d, &subject, full)?;
    compose(Envelope {
        message_id: &d.message_id,
        from: &d.from,
        recipients: &d.recipients,
        agency_code: &d.agency_code,
        subject,
        text,
        html,
        date: d.date,
        extra: vec![("X-Kehoach-Window", d.window.format("%Y-%m-%d").to_string())],
    })
}

/// What every kehoach e-mail is made of, once its bodies are written.
pub(super) struct Envelope<'a> {
    pub message_id: &'a str,
    pub from: &'a str,
    pub recipients: &'a [String],
    /// Named in the error when there is nobody to send to.
    pub agency_code: &'a str,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub date: DateTime<FixedOffset>,
    /// Headers beyond From, To, Subject, Message-ID, Date and Auto-Submitted.
    pub extra: Vec<(&'static str, String)>,
}

/// Checks the addresses and the Message-ID and builds the message: a
/// multipart/alternative body whose MIME boundary is derived from the
/// content, so the same mail renders to the same bytes.
pub(super) fn compose(e: Envelope<'_>) -> Result<Message, EmailError> {
    if !is_valid_message_id(e.message_id) {
        return Err(EmailError::BadMessageId(e.message_id.to_string()));
    }
    let from: Mailbox = e.from.trim().parse().map_err(|err| EmailError::BadAddress {
        field: "người gửi (From)",
        address: e.from.to_string(),
        reason: address_reason(&err),
    })?;
    if e.recipients.is_empty() {
        return Err(EmailError::NoRecipients {
            agency: e.agency_code.to_string(),
        });
    }
    let mut builder = Message::builder().from(from);
    for r in e.recipients {
        let to: Mailbox = r.trim().parse().map_err(|err| EmailError::BadAddress {
            field: "người nhận (To)",
            address: r.clone(),
            reason: address_reason(&err),
        })?;
        builder = builder.to(to);
    }
    let boundary = format!(
        "=_kehoach_{}",
        &sha256_hex(format!("{}\n{}\n{}", e.message_id, e.text, e.html).as_bytes())[..32]
    );
    let body = MultiPart::alternative()
        .boundary(boundary)
        .singlepart(SinglePart::plain(e.text))
        .singlepart(SinglePart::html(e.html));
    let mut builder = builder
        .subject(e.subject)
        .message_id(Some(format!("<{}>", e.message_id)))
        .raw_header(date_header(e.date))
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("Auto-Submitted"),
            "auto-generated".to_owned(),
        ));
    for (name, value) in e.extra {
        builder = builder.raw_header(HeaderValue::new(HeaderName::new_from_ascii_str(name), value));
    }
    Ok(builder.multipart(body)?)
}

/// lettre's own `Date` header only takes a `SystemTime` and always writes
/// `+0000`; recipients in Vietnam should see the local time the digest was
/// made for. What goes on the wire is the local form; the raw value kept
/// beside it is the same instant in the IMF-fixdate form lettre can parse, so
/// `MessageBuilder::build` sees a Date and does not add a second one, and
/// `headers().get::<Date>()` still returns the right instant.
pub(super) fn date_header(date: DateTime<FixedOffset>) -> HeaderValue {
    let wire = date.format("%a, %d %b %Y %H:%M:%S %z").to_string();
    let parseable = date.with_timezone(&Utc).format("%a, %d %b %Y %H:%M:%S GMT").to_string();
    // Pre-encoded is safe here: both strings come from chrono's fixed ASCII
    // format, never from plan text.
    HeaderValue::dangerous_new_pre_encoded(HeaderName::new_from_ascii_str("Date"), parseable, wire)
}

fn render_bodies(d: &Digest, subject: &str, full: usize) -> Result<(String, String), EmailError> {
    bodies_of(
        (TEXT_NAME, TEXT_TEMPLATE),
        (HTML_NAME, HTML_TEMPLATE),
        &template_context(d, subject, full),
    )
}

/// A mail's two bodies: the plain-text and the HTML template, each
/// `(name, source)`, rendered with one context.
pub(super) fn bodies_of(
    text: (&'static str, &'static str),
    html: (&'static str, &'static str),
    ctx: &Value,
) -> Result<(String, String), EmailError> {
    let env = crate::templates::environment(&[text, html]).map_err(|source| EmailError::Template {
        template: text.0,
        source,
    })?;
    let render = |name: &'static str| -> Result<String, EmailError> {
        env.get_template(name)
            .and_then(|t| t.render(ctx))
            .map_err(|source| EmailError::Template { template: name, source })
    };
    Ok((render(text.0)?, render(html.0)?))
}

fn template_context(d: &Digest, subject: &str, full: usize) -> Value {
    let window = d.window.format("%d/%m/%Y").to_string();
    let counts = Counts::of(&d.items);
    let summary = if d.items.is_empty() {
        "Không có mục nào cần thông báo.".to_owned()
    } else {
        format!("Tổng cộng: {}.", counts.total())
    };
    let states: Vec<Value> = counts
        .by_state
        .iter()
        .map(|(state, n)| {
            context! {
                label => state.label(),
                count => format!("{n} phần việc"),
                link => state.link(&d.base_url, &d.plan_id),
            }
        })
        .collect();
    let shown = full.min(d.items.len());
    let listing = if shown < d.items.len() {
        format!(
            "Dưới đây là {shown} phần việc cần làm trước trong {} phần việc (hạn trong 30 ngày tới, rồi bị trả lại, chờ duyệt, \
             rồi quá hạn, lâu nhất sau cùng); các mục còn lại xem theo các đường dẫn ở trên.",
            d.items.len()
        )
    } else {
        "Chi tiết từng phần việc, việc trong tháng trước:".to_owned()
    };
    let items: Vec<Value> = d.items.iter().take(shown).map(item_context).collect();
    context! {
        subject => subject,
        agency_name => cap_chars(&one_line(&d.agency_name), NAME_MAX_CHARS),
        intro => format!(
            "Hệ thống kehoach xin thông báo đến quý cơ quan tình hình các nhiệm vụ có liên quan, tính đến ngày {window}:"
        ),
        summary => summary,
        states => states,
        listing => (!d.items.is_empty()).then_some(listing),
        folding => folding(d.folded, d.closed),
        items => items,
        audit_root => d.audit_root.as_deref().map(one_line),
        audit_root_use => d.audit_root.as_deref().map(|root| audit_root_use(&one_line(root))),
        simulation => d.simulation,
        footer => format!(
            "Thư này được gửi tự động từ kehoach theo {}. Vui lòng không trả lời thư này.",
            cap_chars(&plan_reference(&d.plan_title), NAME_MAX_CHARS)
        ),
    }
}

/// Says what became of the notices that are not lines of their own.
fn folding(folded: usize, closed: usize) -> Option<String> {
    let mut parts = Vec::new();
    if folded > 0 {
        parts.push(format!(
            "{folded} thông báo trước đó về cùng mốc đã được gộp: mỗi mốc chỉ nêu một lần, theo trạng thái hiện tại."
        ));
    }
    if closed > 0 {
        parts.push(format!(
            "{closed} mục không còn phải thực hiện (đã được miễn hoặc hủy) nên không nêu."
        ));
    }
    (!parts.is_empty()).then(|| parts.join(" "))
}

/// What the Inspection Committee does with the root its digest carries:
/// keep it outside the system, and check the store against it later. The
/// same words in the plain-text and the HTML part.
fn audit_root_use(root: &str) -> Value {
    context! {
        keep => "Xin lưu giữ thư này, hoặc chép gốc trên ra ngoài hệ thống (sổ, tệp riêng). \
                 Để kiểm tra kho dữ liệu không bị sửa, xóa hay viết lại kể từ khi gốc này được ghi, chạy lệnh:",
        command => format!("kehoach audit verify --root {root}"),
        after => "Lệnh báo \"Hợp lệ\" nếu kho vẫn đúng với gốc này; nếu không, lệnh báo lỗi (mã thoát 5) nêu gốc không khớp. \
                  Nhiều gốc đã lưu có thể ghi vào một tệp, mỗi dòng một gốc, rồi chạy kehoach audit verify --roots TỆP.",
    }
}

fn item_context(it: &DigestItem) -> Value {
    let note_lines: Vec<String> = it
        .note
        .as_deref()
        .map(|n| cap_chars(n, NOTE_MAX_CHARS))
        .map(|n| n.lines().map(one_line).filter(|l| !l.is_empty()).collect())
        .unwrap_or_default();
    let link = one_line(&it.link);
    let link_is_web = link.starts_with("https://") || link.starts_with("http://");
    context! {
        task_id => one_line(&it.task_id),
        task_title => cap_chars(&one_line(&it.task_title), TITLE_MAX_CHARS),
        role => it.role.label_vi(),
        headline => headline(it),
        accent => accent(it),
        milestone_title => cap_chars(&one_line(&it.milestone_title), TITLE_MAX_CHARS),
        whose => it
            .obligation
            .as_deref()
            .map(|o| format!(" (phần của {})", cap_chars(&one_line(o), NAME_MAX_CHARS)))
            .unwrap_or_default(),
        due => match &it.due_moved {
            Some(note) => format!("{} ({note})", it.due.format("%d/%m/%Y")),
            None => it.due.format("%d/%m/%Y").to_string(),
        },
        timing => timing(it.days_left),
        explanation => explanation(it),
        note_label => match it.kind {
            ItemKind::Returned => "Lý do trả lại",
            ItemKind::Message => "Nội dung",
            ItemKind::Waived => "Lý do miễn",
            ItemKind::Extended => "Gia hạn",
            _ => "Ghi chú",
        },
        note_lines => note_lines,
        link_label => link_label(it),
        link => link,
        link_is_web => link_is_web,
    }
}

fn timing(days_left: i64) -> String {
    match days_left {
        0 => "đến hạn hôm nay".to_owned(),
        n if n > 0 => format!("còn {n} ngày"),
        n => format!("quá hạn {} ngày", n.unsigned_abs()),
    }
}

fn headline(it: &DigestItem) -> &'static str {
    match it.kind {
        ItemKind::Upcoming if it.days_left <= 0 => "Đến hạn hôm nay",
        ItemKind::Upcoming => "Sắp đến hạn",
        ItemKind::Overdue => "Quá hạn",
        ItemKind::Escalation => "Quá hạn — báo cáo cơ quan lãnh đạo và Ủy ban Kiểm tra",
        ItemKind::Submitted => "Mốc đã nộp, chờ duyệt",
        ItemKind::Approved => "Mốc đã được duyệt",
        ItemKind::Returned => "Mốc bị trả lại",
        ItemKind::Message => "Trao đổi mới về mốc",
        ItemKind::Extended => "Mốc được gia hạn",
        ItemKind::Waived => "Mốc được miễn",
    }
}

fn accent(it: &DigestItem) -> &'static str {
    match it.kind {
        ItemKind::Overdue | ItemKind::Escalation | ItemKind::Returned => "#b3261e",
        ItemKind::Upcoming if it.days_left <= 0 => "#9a5b00",
        ItemKind::Upcoming | ItemKind::Submitted | ItemKind::Message | ItemKind::Extended => "#1f5fa8",
        ItemKind::Approved | ItemKind::Waived => "#1e7b34",
    }
}

/// What happened and what the recipient should do, by its role.
fn explanation(it: &DigestItem) -> String {
    let watch = match it.role {
        Role::Lead => "Thư gửi để quý cơ quan theo dõi, chỉ đạo.",
        Role::Inspector => "Thư gửi để quý cơ quan theo dõi, kiểm tra, giám sát.",
        Role::Advisory | Role::Implementer => "Thư gửi để quý cơ quan theo dõi.",
        Role::Coordinator => "Thư gửi để quý cơ quan theo dõi, phối hợp với cơ quan thực hiện.",
    };
    match it.kind {
        ItemKind::Upcoming => match it.role {
            Role::Implementer if it.days_left <= 0 => {
                "Hôm nay là hạn cuối. Đề nghị quý cơ quan hoàn thành và nộp kết quả trong ngày.".to_owned()
            }
            Role::Implementer => "Đề nghị quý cơ quan hoàn thành và nộp kết quả đúng hạn.".to_owned(),
            Role::Advisory => "Đề nghị quý cơ quan theo dõi, đôn đốc cơ quan thực hiện hoàn thành đúng hạn.".to_owned(),
            _ => watch.to_owned(),
        },
        ItemKind::Overdue => {
            let what = "Nhiệm vụ đã quá hạn nhưng chưa có kết quả được nộp.";
            let todo = match it.role {
                Role::Implementer => "Đề nghị quý cơ quan khẩn trương hoàn thành và nộp kết quả.",
                Role::Advisory => "Đề nghị quý cơ quan đôn đốc cơ quan thực hiện khẩn trương hoàn thành.",
                _ => watch,
            };
            format!("{what} {todo}")
        }
        ItemKind::Escalation => {
            let what = format!(
                "Nhiệm vụ đã quá hạn {} ngày nhưng chưa có kết quả được nộp; việc chậm trễ này đang được báo cáo \
                 đến cơ quan lãnh đạo, chỉ đạo và Ủy ban Kiểm tra.",
                it.days_left.unsigned_abs()
            );
            let todo = match it.role {
                Role::Implementer => {
                    "Đề nghị quý cơ quan khẩn trương hoàn thành, nộp kết quả và báo cáo rõ lý do chậm trễ."
                }
                Role::Advisory => "Đề nghị quý cơ quan đôn đốc cơ quan thực hiện và tham mưu biện pháp khắc phục.",
                Role::Lead => "Đề nghị quý cơ quan chỉ đạo cơ quan thực hiện khẩn trương hoàn thành.",
                Role::Inspector => "Thư gửi để quý cơ quan kiểm tra, giám sát theo chức năng.",
                Role::Coordinator => watch,
            };
            format!("{what} {todo}")
        }
        ItemKind::Submitted => {
            let what = "Mốc này đã được cơ quan thực hiện nộp và đang chờ duyệt.";
            let todo = match it.role {
                Role::Lead | Role::Advisory => {
                    "Đề nghị quý cơ quan xem xét, duyệt hoặc trả lại (nêu rõ lý do) tại đường dẫn bên dưới."
                }
                Role::Implementer => "Quý cơ quan sẽ nhận được thông báo khi mốc được duyệt hoặc bị trả lại.",
                Role::Inspector | Role::Coordinator => watch,
            };
            format!("{what} {todo}")
        }
        ItemKind::Approved => {
            let todo = match it.role {
                Role::Implementer => "Quý cơ quan không cần thực hiện thêm thao tác nào cho mốc này.",
                _ => watch,
            };
            format!("Mốc này đã được duyệt. {todo}")
        }
        ItemKind::Message => "Có tin nhắn mới trong phần «Trao đổi» của mốc này. \
                              Quý cơ quan có thể trả lời tại đường dẫn bên dưới."
            .to_owned(),
        ItemKind::Extended => {
            let todo = match it.role {
                Role::Implementer => "Đề nghị quý cơ quan hoàn thành và nộp kết quả trong hạn mới.",
                _ => watch,
            };
            format!("Cơ quan lãnh đạo, tham mưu đã gia hạn mốc này. {todo}")
        }
        ItemKind::Waived => {
            let todo = match it.role {
                Role::Implementer => "Quý cơ quan không phải nộp kết quả cho mốc này.",
                _ => watch,
            };
            format!("Cơ quan lãnh đạo, tham mưu đã miễn thực hiện mốc này. {todo}")
        }
        ItemKind::Returned => {
            let todo = match it.role {
                Role::Implementer => {
                    "Đề nghị quý cơ quan chỉnh sửa, bổ sung theo lý do nêu dưới đây và nộp lại tại đường dẫn bên dưới."
                }
                _ => "Thư gửi để quý cơ quan theo dõi; cơ quan thực hiện cần chỉnh sửa và nộp lại.",
            };
            format!("Mốc này đã bị trả lại, chưa được duyệt. {todo}")
        }
    }
}

fn link_label(it: &DigestItem) -> &'static str {
    match (it.kind, it.role) {
        // A coordinating agency owes nothing: it follows the task.
        (_, Role::Coordinator) => "Xem chi tiết tại",
        (ItemKind::Upcoming | ItemKind::Overdue | ItemKind::Escalation | ItemKind::Extended, Role::Implementer) => {
            "Báo cáo, nộp tại"
        }
        (ItemKind::Submitted, Role::Lead | Role::Advisory) => "Duyệt hoặc trả lại tại",
        (ItemKind::Returned, Role::Implementer) => "Báo cáo, nộp lại tại",
        (ItemKind::Message, _) => "Đọc và trả lời tại",
        _ => "Xem chi tiết tại",
    }
}

/// "Kế hoạch …" for the footer without doubling the word when the plan's
/// own title already starts with it (the shipped plan's does).
pub(super) fn plan_reference(plan_title: &str) -> String {
    let title = one_line(plan_title);
    let starts_with_plan = title.to_lowercase().starts_with("kế hoạch");
    if starts_with_plan || title.is_empty() {
        if title.is_empty() {
            "kế hoạch".to_owned()
        } else {
            title
        }
    } else {
        format!("Kế hoạch {title}")
    }
}

fn is_state_change(kind: ItemKind) -> bool {
    matches!(kind, ItemKind::Submitted | ItemKind::Approved | ItemKind::Returned)
}

/// One line of text: every control character (CR, LF, TAB, NEL, …) and the
/// Unicode line/paragraph separators become spaces, runs of whitespace
/// collapse to one, ends trimmed.
pub(super) fn one_line(s: &str) -> String {
    let spaced: String = s
        .chars()
        .map(|c| {
            if c.is_control() || c == '\u{2028}' || c == '\u{2029}' {
                ' '
            } else {
                c
            }
        })
        .collect();
    spaced.split_whitespace().collect::<Vec<_>>().join(" ")
}

pub(super) fn cap_chars(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    // At a word: back to the last space when there is one in the last
    // quarter, so that "Ủy ban nhân dân thị xã" never ends in "th…".
    let keep = out.chars().count() * 3 / 4;
    if let Some((i, _)) = out
        .char_indices()
        .rev()
        .take_while(|(i, _)| out[..*i].chars().count() >= keep)
        .find(|(_, c)| c.is_whitespace())
    {
        out.truncate(i);
    }
    out.truncate(out.trim_end().len());
    out.push('…');
    out
}

pub(super) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// RFC 5322 `msg-id` without brackets, restricted to the dot-atom form on
/// both sides (what [`message_id`] produces).
pub(super) fn is_valid_message_id(id: &str) -> bool {
    fn dot_atom(s: &str) -> bool {
        !s.is_empty()
            && !s.starts_with('.')
            && !s.ends_with('.')
            && !s.contains("..")
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c))
    }
    match id.split_once('@') {
        Some((local, domain)) => dot_atom(local) && dot_atom(domain) && !domain.contains('@'),
        None => false,
    }
}

pub(super) fn address_reason(e: &lettre::address::AddressError) -> String {
    use lettre::address::AddressError as A;
    match e {
        A::MissingParts => "thiếu phần tên hoặc tên miền".to_owned(),
        A::Unbalanced => "dấu < > không cân đối".to_owned(),
        A::InvalidUser => "phần tên trước @ không hợp lệ".to_owned(),
        A::InvalidDomain => "tên miền không hợp lệ".to_owned(),
        A::InvalidInput => "có ký tự không hợp lệ".to_owned(),
        #[allow(unreachable_patterns)]
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const EVIL_TITLE: &str =
        "Xây dựng mô hình “Dân vận khéo” ở cơ sở <script>alert(1)</script>\r\nBcc: evil@attacker.example";
    const EVIL_AGENCY: &str = "Ban Dân vận Thị ủy\r\nX-Injected: yes";

    fn date() -> DateTime<FixedOffset> {
        FixedOffset::east_opt(7 * 3600)
            .and_then(|tz| tz.with_ymd_and_hms(2024, 3, 1, 8, 0, 0).single())
            .expect("valid fixed date")
    }

    fn ymd(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("valid date")
    }

    fn item(kind: ItemKind, task_id: &str, due: NaiveDate, days_left: i64) -> DigestItem {
        DigestItem {
            task_id: task_id.to_owned(),
            task_title: EVIL_TITLE.to_owned(),
            role: Role::Implementer,
            kind,
            milestone_id: format!("{task_id}/2024"),
            milestone_title: "Báo cáo kết quả năm 2024".to_owned(),
            obligation: Some("Ủy ban nhân dân thị xã".to_owned()),
            due,
            due_moved: None,
            days_left,
            note: None,
            link: format!("https://kehoach.ducpho.example/tasks/{task_id}"),
        }
    }

    fn keys() -> Vec<String> {
        vec!["III.1.2/2024/overdue".to_owned(), "II.1.2/2024/upcoming".to_owned()]
    }

    fn digest() -> Digest {
        let window = ymd(2024, 3, 1);
        let mut overdue = item(ItemKind::Overdue, "III.1.2", ymd(2024, 2, 27), -3);
        overdue.note = Some("Đã nhắc lần 2.\r\nCần nộp gấp.".to_owned());
        let upcoming = item(ItemKind::Upcoming, "II.1.2", ymd(2024, 3, 6), 5);
        Digest {
            plan_title: "Kế hoạch thực hiện Đề án số 13-ĐA/TU".to_owned(),
            agency_code: "BDV".to_owned(),
            agency_name: EVIL_AGENCY.to_owned(),
            recipients: vec![
                "bdv@ducpho.example".to_owned(),
                "Chánh Văn phòng <cvp@ducpho.example>".to_owned(),
            ],
            from: "Hệ thống kehoach <kehoach@ducpho.example>".to_owned(),
            subject_prefix: "[kehoach]".to_owned(),
            window,
            message_id: message_id("BDV", window, &keys(), "ducpho.example"),
            date: date(),
            items: vec![overdue, upcoming],
            plan_id: "duc-pho-de-an-13".to_owned(),
            base_url: "https://kehoach.ducpho.example".to_owned(),
            folded: 0,
            closed: 0,
            audit_root: None,
            simulation: false,
        }
    }

    /// Splits a formatted message into its header block and body.
    fn split(formatted: &[u8]) -> (String, String) {
        let s = String::from_utf8(formatted.to_vec()).expect("formatted message is UTF-8");
        let (h, b) = s.split_once("\r\n\r\n").expect("header/body separator");
        (h.to_owned(), b.to_owned())
    }

    /// Header fields of a header block, unfolded (RFC 5322 §2.2.3: remove
    /// the CRLF, keep the whitespace that follows).
    fn fields(block: &str) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        for line in block.split("\r\n") {
            if line.starts_with(' ') || line.starts_with('\t') {
                out.last_mut().expect("continuation after a field").1.push_str(line);
            } else {
                let (name, value) = line.split_once(':').expect("header line has a colon");
                out.push((name.to_owned(), value.trim_start().to_owned()));
            }
        }
        out
    }

    fn field<'a>(fields: &'a [(String, String)], name: &str) -> Vec<&'a str> {
        fields
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    fn b64_decode(s: &str) -> Vec<u8> {
        let mut out = Vec::new();
        let mut acc: u32 = 0;
        let mut bits = 0;
        for c in s.bytes() {
            let v = match c {
                b'A'..=b'Z' => c - b'A',
                b'a'..=b'z' => c - b'a' + 26,
                b'0'..=b'9' => c - b'0' + 52,
                b'+' => 62,
                b'/' => 63,
                b'=' => break,
                b'\r' | b'\n' | b' ' | b'\t' => continue,
                other => panic!("not base64: {other}"),
            };
            acc = (acc << 6) | u32::from(v);
            bits += 6;
            if bits >= 8 {
                bits -= 8;
                out.push((acc >> bits) as u8);
                acc &= (1 << bits) - 1;
            }
        }
        out
    }

    fn qp_decode(s: &str) -> Vec<u8> {
        let bytes = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'=' {
                if bytes[i + 1..].starts_with(b"\r\n") {
                    i += 3;
                    continue;
                }
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).expect("ascii");
                out.push(u8::from_str_radix(hex, 16).expect("qp hex"));
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        out
    }

    /// RFC 2047 decoding of an unstructured header value: encoded words are
    /// decoded, and whitespace between two adjacent encoded words dropped.
    fn decode_rfc2047(value: &str) -> String {
        let mut out = String::new();
        let mut prev_encoded = false;
        for (i, token) in value.split(' ').enumerate() {
            let encoded = token
                .strip_prefix("=?")
                .and_then(|t| t.strip_suffix("?="))
                .and_then(|t| {
                    let mut parts = t.splitn(3, '?');
                    let (charset, enc, text) = (parts.next()?, parts.next()?, parts.next()?);
                    assert!(charset.eq_ignore_ascii_case("utf-8"), "charset {charset}");
                    let raw = match enc {
                        "b" | "B" => b64_decode(text),
                        "q" | "Q" => qp_decode(&text.replace('_', " ")),
                        other => panic!("unknown encoding {other}"),
                    };
                    Some(String::from_utf8(raw).expect("encoded word is UTF-8"))
                });
            match encoded {
                Some(text) => {
                    if i > 0 && !prev_encoded {
                        out.push(' ');
                    }
                    out.push_str(&text);
                    prev_encoded = true;
                }
                None => {
                    if i > 0 {
                        out.push(' ');
                    }
                    out.push_str(token);
                    prev_encoded = false;
                }
            }
        }
        out
    }

    /// The decoded text of each MIME part, keyed by its Content-Type.
    fn parts(formatted: &[u8]) -> Vec<(String, String)> {
        let (head, body) = split(formatted);
        let head_fields = fields(&head);
        let ct = field(&head_fields, "Content-Type");
        assert_eq!(ct.len(), 1);
        assert!(ct[0].starts_with("multipart/alternative"), "{}", ct[0]);
        let boundary = ct[0]
            .split("boundary=\"")
            .nth(1)
            .and_then(|b| b.split('"').next())
            .expect("boundary");
        let delimiter = format!("--{boundary}");
        let mut out = Vec::new();
        for chunk in body.split(&delimiter).skip(1) {
            if chunk.starts_with("--") {
                break;
            }
            let chunk = chunk.trim_start_matches("\r\n");
            let (ph, pb) = chunk.split_once("\r\n\r\n").expect("part separator");
            let pf = fields(ph);
            let ctype = field(&pf, "Content-Type")[0].to_owned();
            let cte = field(&pf, "Content-Transfer-Encoding")
                .first()
                .map(|s| s.to_ascii_lowercase());
            let pb = pb.strip_suffix("\r\n").unwrap_or(pb);
            let decoded = match cte.as_deref() {
                Some("base64") => b64_decode(pb),
                Some("quoted-printable") => qp_decode(pb),
                _ => pb.as_bytes().to_vec(),
            };
            out.push((
                ctype,
                String::from_utf8(decoded).expect("part is UTF-8").replace("\r\n", "\n"),
            ));
        }
        out
    }

    fn part<'a>(parts: &'a [(String, String)], mime: &str) -> &'a str {
        let found: Vec<_> = parts.iter().filter(|(ct, _)| ct.starts_with(mime)).collect();
        assert_eq!(found.len(), 1, "one {mime} part in {parts:?}");
        assert!(
            found[0].0.to_ascii_lowercase().contains("charset=utf-8"),
            "{}",
            found[0].0
        );
        &found[0].1
    }

    #[test]
    fn headers_are_ascii_encoded_and_not_injectable() {
        let d = digest();
        let formatted = render(&d).expect("renders").formatted();
        let (head, _) = split(&formatted);
        assert!(head.is_ascii(), "raw non-ASCII in headers:\n{head}");

        let fields = fields(&head);
        let allowed = [
            "From",
            "To",
            "Subject",
            "Message-ID",
            "Date",
            "Auto-Submitted",
            "X-Kehoach-Window",
            "MIME-Version",
            "Content-Type",
        ];
        for (name, _) in &fields {
            assert!(
                allowed.iter().any(|a| a.eq_ignore_ascii_case(name)),
                "unexpected header {name:?}:\n{head}"
            );
        }
        assert!(!head.contains("\r\nBcc") && !head.contains("\r\nX-Injected"), "{head}");

        let subjects = field(&fields, "Subject");
        assert_eq!(subjects.len(), 1);
        assert!(
            subjects[0].contains("=?utf-8?b?"),
            "subject not RFC 2047 encoded: {}",
            subjects[0]
        );
        let decoded = decode_rfc2047(subjects[0]);
        assert_eq!(decoded, subject(&d));
        assert_eq!(
            decoded,
            "[kehoach] Nhắc việc ngày 01/03/2024: 2 phần việc của 2 nhiệm vụ (1 quá hạn, 1 sắp đến hạn) — Ban Dân vận Thị ủy X-Injected: yes"
        );

        let to = field(&fields, "To");
        assert_eq!(to.len(), 1);
        assert!(
            to[0].contains("bdv@ducpho.example") && to[0].contains("<cvp@ducpho.example>"),
            "{}",
            to[0]
        );
        assert!(field(&fields, "From")[0].contains("<kehoach@ducpho.example>"));
        assert_eq!(field(&fields, "Auto-Submitted"), ["auto-generated"]);
        assert_eq!(field(&fields, "X-Kehoach-Window"), ["2024-03-01"]);
    }

    #[test]
    fn message_id_and_date_headers() {
        let d = digest();
        let message = render(&d).expect("renders");
        let (head, _) = split(&message.formatted());
        let fields = fields(&head);

        let expected = format!("<{}>", message_id("BDV", ymd(2024, 3, 1), &keys(), "ducpho.example"));
        assert_eq!(field(&fields, "Message-ID"), [expected.as_str()]);

        let dates = field(&fields, "Date");
        assert_eq!(dates, ["Fri, 01 Mar 2024 08:00:00 +0700"]);
        assert!(dates[0].ends_with("+0700"));
        // lettre's own view of the header is the same instant (01:00 UTC).
        let seen = message
            .headers()
            .get::<lettre::message::header::Date>()
            .map(SystemTimeOf::from);
        assert_eq!(
            seen,
            Some(SystemTimeOf(std::time::SystemTime::from(date().with_timezone(&Utc))))
        );
    }

    #[derive(Debug, PartialEq)]
    struct SystemTimeOf(std::time::SystemTime);
    impl From<lettre::message::header::Date> for SystemTimeOf {
        fn from(d: lettre::message::header::Date) -> Self {
            SystemTimeOf(d.into())
        }
    }

    #[test]
    fn html_part_escapes_plan_text() {
        let formatted = render(&digest()).expect("renders").formatted();
        let parts = parts(&formatted);
        assert_eq!(parts.len(), 2);
        let html = part(&parts, "text/html");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{html}");
        assert!(!html.contains("<script"), "unescaped script in HTML");
        assert!(html.contains("“Dân vận khéo”"), "Vietnamese text and quotes survive");
        assert!(!html.contains("<img") && !html.contains("src="), "no external images");
        assert!(html.contains("quá hạn 3 ngày") && html.contains("còn 5 ngày"));
        assert!(html.contains("27/02/2024") && html.contains("06/03/2024"));
        assert!(html.contains(r#"<a href="https://kehoach.ducpho.example/tasks/III.1.2""#));
        assert!(html.contains("Vui lòng không trả lời thư này"));
        let first = html.find("III.1.2").expect("overdue item");
        let second = html.find("II.1.2<").expect("upcoming item");
        assert!(first < second, "items keep the caller's order");
    }

    #[test]
    fn text_part_lists_items_in_order_with_everything() {
        let formatted = render(&digest()).expect("renders").formatted();
        let parts = parts(&formatted);
        let text = part(&parts, "text/plain");
        assert!(
            text.starts_with("Kính gửi: Ban Dân vận Thị ủy X-Injected: yes,\n"),
            "{text}"
        );
        // The CR LF in the title stays inside its line.
        assert!(!text.lines().any(|l| l.starts_with("Bcc:")), "{text}");
        assert!(
            text.contains("Nhiệm vụ III.1.2: Xây dựng mô hình “Dân vận khéo” ở cơ sở <script>alert(1)</script> Bcc:")
        );
        assert!(text.contains("Vai trò của quý cơ quan: cơ quan thực hiện"));
        assert!(text.contains("Mốc: Báo cáo kết quả năm 2024 (phần của Ủy ban nhân dân thị xã)"));
        assert!(
            !text.contains("III.1.2/2024") && !html_of(&digest()).contains("III.1.2/2024"),
            "no milestone id"
        );
        assert!(
            text.contains("(phần của Ủy ban nhân dân thị xã)\n   Hạn: 27/02/2024 (quá hạn 3 ngày)\n"),
            "{text}"
        );
        assert!(text.contains("Hạn: 06/03/2024 (còn 5 ngày)"));
        assert!(
            text.contains("Ghi chú:\n     Đã nhắc lần 2.\n     Cần nộp gấp.\n"),
            "{text}"
        );
        assert!(text.contains("Báo cáo, nộp tại: https://kehoach.ducpho.example/tasks/III.1.2"));
        assert!(text.contains(
            "Thư này được gửi tự động từ kehoach theo Kế hoạch thực hiện Đề án số 13-ĐA/TU. Vui lòng không trả lời thư này."
        ));
        let first = text.find("1. [QUÁ HẠN] Nhiệm vụ III.1.2").expect("overdue first");
        let second = text.find("2. [SẮP ĐẾN HẠN] Nhiệm vụ II.1.2").expect("upcoming second");
        assert!(first < second);
    }

    #[test]
    fn rendering_is_deterministic() {
        let d = digest();
        assert_eq!(
            render(&d).expect("renders").formatted(),
            render(&d).expect("renders").formatted()
        );
    }

    #[test]
    fn message_id_is_stable_and_valid() {
        let w = ymd(2024, 3, 1);
        let a = message_id(
            "BDV",
            w,
            &["b".to_owned(), "a".to_owned(), "c".to_owned()],
            "ducpho.example",
        );
        let b = message_id(
            "BDV",
            w,
            &["c".to_owned(), "a".to_owned(), "b".to_owned()],
            "ducpho.example",
        );
        assert_eq!(a, b);
        let expected_hash = &sha256_hex(b"a\nb\nc")[..16];
        assert_eq!(a, format!("digest.bdv.20240301.{expected_hash}@ducpho.example"));
        assert!(is_valid_message_id(&a));

        assert_ne!(
            a,
            message_id("BDV", w, &["a".to_owned(), "b".to_owned()], "ducpho.example")
        );
        assert_ne!(
            a,
            message_id(
                "BTG",
                w,
                &["a".to_owned(), "b".to_owned(), "c".to_owned()],
                "ducpho.example"
            )
        );
        assert_ne!(
            a,
            message_id(
                "BDV",
                ymd(2024, 3, 2),
                &["a".to_owned(), "b".to_owned(), "c".to_owned()],
                "ducpho.example"
            )
        );

        let odd = message_id("Đảng ủy <x>", w, &[], "Bad Domain\r\n");
        assert!(odd.is_ascii() && is_valid_message_id(&odd), "{odd}");
        assert!(odd.ends_with("@baddomain"), "{odd}");
        assert_ne!(odd, message_id("Ơảng ủy <x>", w, &[], "Bad Domain\r\n"));
        assert!(message_id("BDV", w, &[], "").ends_with("@kehoach.invalid"));
    }

    #[test]
    fn a_simulation_store_marks_subject_and_bodies() {
        let mut d = digest();
        let (text, html) = render_bodies(&d, &subject(&d), FULL_ITEMS).unwrap();
        assert!(!subject(&d).contains("MÔ PHỎNG") && !text.contains("MÔ PHỎNG") && !html.contains("MÔ PHỎNG"));
        d.simulation = true;
        let s = subject(&d);
        assert!(s.starts_with("[MÔ PHỎNG] [kehoach] "), "{s}");
        let (text, html) = render_bodies(&d, &s, FULL_ITEMS).unwrap();
        assert!(text.starts_with("*** MÔ PHỎNG") && html.contains("MÔ PHỎNG:"), "{text}");
    }

    #[test]
    fn long_texts_are_cut_at_a_word() {
        let cut = cap_chars("Kế hoạch thực hiện Đề án số 13 của Ban Thường vụ Thị ủy", 30);
        assert_eq!(cut, "Kế hoạch thực hiện Đề án số…");
        // One long word is cut where it must be.
        assert_eq!(cap_chars("abcdefghij", 5), "abcd…");
    }

    #[test]
    fn subject_wording_follows_the_kinds() {
        let mut d = digest();
        d.agency_name = "Ban Dân vận Thị ủy".to_owned();
        assert_eq!(
            subject(&d),
            "[kehoach] Nhắc việc ngày 01/03/2024: 2 phần việc của 2 nhiệm vụ (1 quá hạn, 1 sắp đến hạn) — Ban Dân vận Thị ủy"
        );

        let mut approved = item(ItemKind::Approved, "II.1.2", ymd(2024, 3, 6), 5);
        d.items = vec![approved.clone()];
        assert_eq!(
            subject(&d),
            "[kehoach] Mốc “Báo cáo kết quả năm 2024” của nhiệm vụ II.1.2 đã được duyệt — Ban Dân vận Thị ủy"
        );

        approved.milestone_title = "Báo cáo\r\nBcc: x@y.example".to_owned();
        d.items = vec![approved];
        let s = subject(&d);
        assert!(!s.chars().any(char::is_control), "{s:?}");
        assert_eq!(
            s,
            "[kehoach] Mốc “Báo cáo Bcc: x@y.example” của nhiệm vụ II.1.2 đã được duyệt — Ban Dân vận Thị ủy"
        );

        d.items = vec![
            item(ItemKind::Escalation, "II.1.1", ymd(2024, 1, 31), -30),
            item(ItemKind::Escalation, "II.1.2", ymd(2024, 2, 1), -29),
        ];
        assert_eq!(
            subject(&d),
            "[kehoach] Báo cáo nhiệm vụ quá hạn ngày 01/03/2024: 2 phần việc của 2 nhiệm vụ (2 quá hạn) — Ban Dân vận Thị ủy"
        );

        d.agency_name = "Rất dài ".repeat(60);
        let s = subject(&d);
        assert!(s.chars().count() <= SUBJECT_MAX_CHARS, "{} chars", s.chars().count());
        assert!(s.ends_with('…'));
    }

    #[test]
    fn escalation_and_state_changes_say_what_to_do() {
        let mut d = digest();
        let mut esc = item(ItemKind::Escalation, "II.1.1", ymd(2024, 1, 31), -30);
        esc.role = Role::Lead;
        let mut submitted = item(ItemKind::Submitted, "II.1.2", ymd(2024, 3, 31), 30);
        submitted.role = Role::Advisory;
        let mut returned = item(ItemKind::Returned, "III.1.2", ymd(2024, 3, 31), 30);
        returned.note = Some("Thiếu số liệu quý I.".to_owned());
        d.items = vec![esc, submitted, returned];
        let parts = parts(&render(&d).expect("renders").formatted());
        let text = part(&parts, "text/plain");
        assert!(text.contains("quá hạn 30 ngày"));
        assert!(
            text.contains("báo cáo đến cơ quan lãnh đạo, chỉ đạo và Ủy ban Kiểm tra"),
            "{text}"
        );
        assert!(text.contains("Vai trò của quý cơ quan: cơ quan lãnh đạo, chỉ đạo"));
        assert!(text.contains("duyệt hoặc trả lại"), "{text}");
        assert!(text.contains("Duyệt hoặc trả lại tại: https://kehoach.ducpho.example/tasks/II.1.2"));
        assert!(text.contains("Lý do trả lại:\n     Thiếu số liệu quý I."), "{text}");
        assert!(text.contains("nộp lại tại đường dẫn bên dưới"));
        assert!(text.contains("Báo cáo, nộp lại tại: https://kehoach.ducpho.example/tasks/III.1.2"));
        assert_eq!(
            subject(&d),
            "[kehoach] Báo cáo nhiệm vụ quá hạn ngày 01/03/2024: 3 phần việc của 3 nhiệm vụ (1 quá hạn, 1 bị trả lại, \
             1 chờ duyệt) — Ban Dân vận Thị ủy X-Injected: yes"
        );
    }

    #[test]
    fn bad_addresses_and_ids_are_errors_naming_them() {
        let mut d = digest();
        d.recipients.push("không phải địa chỉ".to_owned());
        let err = render(&d).expect_err("bad recipient");
        assert!(matches!(err, EmailError::BadAddress { .. }));
        assert!(err.to_string().contains("không phải địa chỉ"), "{err}");

        let mut d = digest();
        d.from = "kehoach@".to_owned();
        let err = render(&d).expect_err("bad sender");
        assert!(err.to_string().contains("kehoach@"), "{err}");

        let mut d = digest();
        d.recipients.clear();
        assert!(matches!(render(&d), Err(EmailError::NoRecipients { .. })));

        let mut d = digest();
        d.message_id = "abc@def>\r\nBcc: x@y".to_owned();
        assert!(matches!(render(&d), Err(EmailError::BadMessageId(_))));
    }

    fn html_of(d: &Digest) -> String {
        part(&parts(&render(d).expect("renders").formatted()), "text/html").to_owned()
    }

    /// A digest for an agency with `n` items over `n / 3` tasks, in every state.
    fn many(n: usize, title: &str, note: &str) -> Digest {
        let kinds = [
            ItemKind::Upcoming,
            ItemKind::Overdue,
            ItemKind::Escalation,
            ItemKind::Submitted,
            ItemKind::Returned,
            ItemKind::Approved,
        ];
        let mut d = digest();
        d.items = (0..n)
            .map(|i| {
                let days = i64::try_from(i % 40).unwrap() - 20;
                let mut it = item(kinds[i % kinds.len()], &format!("T{}", i / 3), ymd(2024, 3, 1), days);
                it.milestone_id = format!("m{i}");
                it.task_title = title.to_owned();
                it.milestone_title = title.to_owned();
                it.note = Some(note.to_owned());
                it
            })
            .collect();
        crate::notification::contents::by_urgency(&mut d.items);
        d
    }

    /// The numbered items a text part lists in full.
    fn listed(text: &str) -> Vec<&str> {
        text.lines()
            .filter(|l| l.split_once(". [").is_some_and(|(n, _)| n.parse::<usize>().is_ok()))
            .collect()
    }

    #[test]
    fn a_large_digest_lists_the_twenty_most_urgent_then_counts_with_links() {
        let d = many(3000, "Nhiệm vụ có tên dài vừa phải", "Ghi chú ngắn.");
        let formatted = render(&d).expect("renders").formatted();
        assert!(formatted.len() <= MAX_EMAIL_BYTES, "{} bytes", formatted.len());
        let parts = parts(&formatted);
        let text = part(&parts, "text/plain");
        let html = part(&parts, "text/html");
        assert_eq!(listed(text).len(), FULL_ITEMS, "{text}");
        assert!(
            listed(text)[0].starts_with("1. [ĐẾN HẠN HÔM NAY]"),
            "this month's work first: {text}"
        );
        assert_eq!(
            html.matches("<td colspan=\"2\" style=\"padding:8px 10px;").count(),
            FULL_ITEMS
        );
        let c = Counts::of(&d.items);
        assert_eq!((c.parts, c.tasks), (3000, 1000));
        assert!(text.contains("Tổng cộng: 3000 phần việc của 1000 nhiệm vụ."), "{text}");
        assert!(
            subject(&d).contains(": 3000 phần việc của 1000 nhiệm vụ ("),
            "{}",
            subject(&d)
        );
        assert!(
            text.contains("Dưới đây là 20 phần việc cần làm trước trong 3000 phần việc"),
            "{text}"
        );
        for (label, link) in [
            (
                "Quá hạn: 1000 phần việc",
                "https://kehoach.ducpho.example/inbox?overdue=1&plan=duc-pho-de-an-13",
            ),
            (
                "Bị trả lại, cần nộp lại: 500 phần việc",
                "https://kehoach.ducpho.example/inbox?status=returned&plan=duc-pho-de-an-13",
            ),
            (
                "Sắp đến hạn: 500 phần việc",
                "https://kehoach.ducpho.example/inbox?due_within=30d&plan=duc-pho-de-an-13",
            ),
            (
                "Đã nộp, chờ duyệt: 500 phần việc",
                "https://kehoach.ducpho.example/inbox?status=submitted&plan=duc-pho-de-an-13",
            ),
            (
                "Đã được duyệt: 500 phần việc",
                "https://kehoach.ducpho.example/inbox?status=approved&plan=duc-pho-de-an-13",
            ),
        ] {
            assert!(
                text.contains(&format!("  - {label} — xem danh sách: {link}")),
                "{label} in {text}"
            );
            let href = link.replace('&', "&amp;");
            assert!(html.contains(&format!("<a href=\"{href}\"")), "{href} in html");
        }
    }

    #[test]
    fn no_digest_exceeds_the_limit_whatever_the_plan_says() {
        // Titles and notes far too long, in characters that take four bytes
        // and HTML escapes that take six: capped, then fewer items in full.
        let title = "𝔸\"<".repeat(5000);
        let note = format!("{}\n", "𝔹&\"".repeat(200)).repeat(100);
        let mut d = many(500, &title, &note);
        d.agency_name = "𝔸".repeat(100_000);
        d.plan_title = "𝔸".repeat(100_000);
        let formatted = render(&d).expect("renders").formatted();
        assert!(formatted.len() <= MAX_EMAIL_BYTES, "{} bytes", formatted.len());
        let text = part(&parts(&formatted), "text/plain").to_owned();
        assert!(!listed(&text).is_empty(), "still lists the most urgent items");
        assert!(text.contains("Tổng cộng: 500 phần việc của 167 nhiệm vụ."));
        // An ordinary digest keeps all twenty.
        let ordinary = render(&many(500, "Tên", "Ghi chú")).expect("renders").formatted();
        assert_eq!(listed(part(&parts(&ordinary), "text/plain")).len(), FULL_ITEMS);
    }
}
