//! A plan adopted from its document on the web: the admin uploads the
//! Word (.docx) or text file, reviews what the importer read (every task
//! beside its source paragraph, the agency directory with its addresses,
//! every doubt marked), corrects it and loads it. The document is kept
//! content-addressed with the evidence files (`evidence_files`), so the
//! review refers to it by SHA-256 and the plan's load event records it;
//! anyone signed in downloads it from the plan page.
//!
//! Loading re-reads the stored document (the importer is deterministic:
//! the same bytes give the same draft) and applies the fields of the
//! review form to that draft; nothing the browser sends is taken as the
//! plan except those fields. The API answers the draft and its doubts as
//! JSON (`POST /api/plans/import`); loading through the API stays
//! `POST /api/plans`.

use super::admin::{admin_caller, field};
use super::auth::{self, Caller};
use super::files;
use super::pages::{admin_page, finish, plans_nav, redirect, render, signed_in, urlencode, PageResult, Refusal};
use super::review::{media_type_text, size_text};
use super::{AppState, WebError, BODY_LIMIT};
use crate::accounts::{Email, Role};
use crate::domain::dates::format_vn;
use crate::domain::files::{self as checked, Evidence};
use crate::domain::ids::{AgencyCode, PlanId};
use crate::domain::plan::{Agency, SourceDocument};
use crate::domain::task::{Attachment, FileHash};
use crate::plan::import::deadline::{self, Schedule};
use crate::plan::import::error::DOCUMENT_MAX_BYTES;
use crate::plan::import::{self, Draft, ImportError};
use crate::projections::views::PlanView;
use axum::extract::{DefaultBodyLimit, Form, FromRequest, Path, Request, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use chrono::NaiveDate;
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::BTreeSet;

/// The media type a plain-text plan is kept and served with.
pub const TEXT_PLAIN: &str = "text/plain; charset=utf-8";

/// The largest body the import routes take: a document at the importer's
/// limit, plus the form's fields.
pub const BODY_MAX: usize = DOCUMENT_MAX_BYTES + BODY_LIMIT;

/// The routes whose bodies may carry a document (outside the 1 MiB limit).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/plans/import", post(api_import))
        .route("/admin/plans/import", post(admin_import))
        .route("/admin/plans/import/load", post(admin_load))
        .layer(DefaultBodyLimit::max(BODY_MAX))
}

/// A document that cannot be imported: its one line, with the status that
/// says why (413 too large, 415 not a document we read, 422 read but
/// unusable).
pub fn refusal(e: &ImportError) -> WebError {
    let (status, code) = match e {
        ImportError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "document_too_large"),
        ImportError::OldWordFormat => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "document_old_word_format"),
        ImportError::MacroEnabled => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "document_macro_enabled"),
        ImportError::Encrypted => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "document_encrypted"),
        ImportError::NotADocument(_) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "not_a_document"),
        ImportError::NotUtf8 { .. } => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "document_not_utf8"),
        ImportError::ZipBomb => (StatusCode::UNPROCESSABLE_ENTITY, "document_zip_bomb"),
        ImportError::Corrupt(_) => (StatusCode::UNPROCESSABLE_ENTITY, "document_corrupt"),
        ImportError::TooManyTasks { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "document_too_many_tasks"),
        ImportError::NoTasks => (StatusCode::UNPROCESSABLE_ENTITY, "document_no_tasks"),
    };
    WebError::new(status, code, e.to_string())
}

/// A body over `BODY_MAX`, refused before its end is read: the importer's
/// own words, without the size it never saw.
fn document_too_large() -> WebError {
    WebError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "document_too_large",
        format!(
            "tệp quá lớn: tối đa {DOCUMENT_MAX_BYTES} byte ({} MB)",
            DOCUMENT_MAX_BYTES / 1024 / 1024
        ),
    )
}

/// A multipart body's text fields and its one `file` part (name, bytes).
type Upload = (Vec<(String, String)>, Option<(String, Vec<u8>)>);

async fn read_upload(state: &AppState, request: Request, known: &[&str]) -> Result<Upload, WebError> {
    if !files::is_multipart(&request) {
        return Err(WebError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "multipart_required",
            "gửi văn bản dạng multipart/form-data, trong phần file",
        ));
    }
    let (fields, mut uploads) = files::read_parts(state, request, "file", document_too_large).await?;
    if let Some((name, _)) = fields.iter().find(|(k, _)| !known.contains(&k.as_str())) {
        return Err(WebError::bad_request(format!(
            "phần không có: {name:?} (dùng {})",
            std::iter::once("file")
                .chain(known.iter().copied())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    if uploads.len() > 1 {
        return Err(WebError::bad_request("chỉ gửi một văn bản (một phần file)"));
    }
    Ok((fields, uploads.pop()))
}

/// The directory a draft starts from: the agencies of a loaded plan (their
/// codes and addresses kept), or none.
fn directory_of(plans: &[PlanView], id: &str) -> Result<Vec<Agency>, WebError> {
    let id = id.trim();
    if id.is_empty() {
        return Ok(Vec::new());
    }
    plans
        .iter()
        .find(|p| p.id == id)
        .map(|p| p.plan.agencies.clone())
        .ok_or_else(|| WebError::not_found(format!("không có kế hoạch {id:?} để lấy danh mục cơ quan")))
}

/// A document read into a draft, and what the record says of the document.
pub struct Imported {
    pub draft: Draft,
    pub document: SourceDocument,
}

/// Runs the importer off the request threads (a long document takes a
/// while); gives the bytes back with the draft.
async fn read_draft(file: String, bytes: Vec<u8>, directory: Vec<Agency>) -> Result<(Draft, Vec<u8>), WebError> {
    let (draft, bytes) = tokio::task::spawn_blocking(move || (import::import(&file, &bytes, &directory), bytes))
        .await
        .map_err(|e| WebError::internal(&e))?;
    Ok((draft.map_err(|e| refusal(&e))?, bytes))
}

fn media_type_of(bytes: &[u8]) -> &'static str {
    if bytes.starts_with(b"PK") {
        checked::DOCX
    } else {
        TEXT_PLAIN
    }
}

/// Reads an uploaded document and, when it gives a draft, keeps it in the
/// store by its SHA-256 (storing the same bytes again changes nothing).
/// A document that cannot be read is not kept.
async fn import_and_keep(
    state: &AppState,
    raw_name: &str,
    bytes: Vec<u8>,
    directory: Vec<Agency>,
) -> Result<Imported, WebError> {
    let file = checked::clean_name(raw_name);
    let (draft, bytes) = read_draft(file.clone(), bytes, directory).await?;
    let sha256 = checked::sha256(&bytes);
    let document = SourceDocument {
        file: file.clone(),
        sha256: sha256.as_str().to_string(),
        size: bytes.len() as u64,
        media_type: media_type_of(&bytes).to_string(),
    };
    let kept = Evidence {
        attachment: Attachment {
            sha256,
            name: file,
            size: document.size,
            media_type: document.media_type.clone(),
        },
        bytes,
    };
    state.store().put_file(&kept, state.engine.clock.now()).await?;
    Ok(Imported { draft, document })
}

/// `POST /api/plans/import` (multipart: `file`, optional `directory`, the
/// id of a loaded plan whose agencies keep their codes and addresses):
/// admins only. The draft plan file and the report; nothing is loaded.
async fn api_import(State(state): State<AppState>, headers: HeaderMap, request: Request) -> Result<Response, WebError> {
    let caller = auth::require(&state, &headers).await?;
    if !caller.user.has(Role::Admin) {
        return Err(WebError::forbidden_role("nhập kế hoạch từ văn bản"));
    }
    caller.check_csrf(auth::csrf_header(&headers))?;
    let (fields, file) = read_upload(&state, request, &["directory"]).await?;
    let (name, bytes) =
        file.ok_or_else(|| WebError::bad_request("thiếu phần file: văn bản kế hoạch (.docx hoặc .txt)"))?;
    let plans = state.plan_views().await?;
    let directory = directory_of(&plans, field(&fields, "directory"))?;
    let imported = import_and_keep(&state, &name, bytes, directory).await?;
    let mut body = imported.draft.report();
    body["document"] = json!(imported.document);
    body["draft"] = json!(imported.draft.to_toml());
    Ok(Json(body).into_response())
}

/// `POST /admin/plans/import`: the uploaded document read, kept, and shown
/// for review; a document that cannot be read is refused on the admin page
/// with its one line.
async fn admin_import(State(state): State<AppState>, headers: HeaderMap, uri: Uri, request: Request) -> Response {
    let result = async {
        let caller = admin_caller(&state, &headers, &uri, "nhập kế hoạch từ văn bản").await?;
        let refuse = |e: WebError| Refusal::Error(e, Some(Box::new(caller.clone())));
        let (fields, file) = match read_upload(&state, request, &["csrf", "directory"]).await {
            Ok(upload) => upload,
            Err(e) => return refused(&state, &caller, e).await,
        };
        caller.check_csrf(Some(field(&fields, "csrf"))).map_err(refuse)?;
        let plans = state.plan_views().await?;
        let directory = field(&fields, "directory").trim().to_string();
        let imported = async {
            let (name, bytes) =
                file.ok_or_else(|| WebError::bad_request("chưa chọn văn bản kế hoạch (.docx hoặc .txt)"))?;
            let agencies = directory_of(&plans, &directory)?;
            import_and_keep(&state, &name, bytes, agencies).await
        }
        .await;
        match imported {
            Ok(imported) => {
                let review = Review {
                    draft: &imported.draft,
                    document: &imported.document,
                    directory: &directory,
                    plans: &plans,
                    posted: None,
                };
                Ok(review.page(&state, &caller, &Findings::default(), StatusCode::OK))
            }
            Err(e) => refused(&state, &caller, e).await,
        }
    }
    .await;
    finish(&state, result)
}

/// A document refused: the admin page again, with its one line and status.
async fn refused(state: &AppState, caller: &Caller, e: WebError) -> PageResult {
    let refuse = |e: WebError| Refusal::Error(e, Some(Box::new(caller.clone())));
    if e.status.is_server_error() {
        return Err(refuse(e));
    }
    tracing::info!(error = %e.message, "văn bản kế hoạch bị từ chối");
    let mut page = admin_page(state, caller, json!({ "import_error": e.message }))
        .await
        .map_err(refuse)?;
    *page.status_mut() = e.status;
    Ok(page)
}

/// The fields of the review form: multipart (as the page sends it) or
/// urlencoded.
async fn review_form(state: &AppState, request: Request) -> Result<Vec<(String, String)>, WebError> {
    if files::is_multipart(&request) {
        let (fields, uploads) = files::read_parts(state, request, "file", document_too_large).await?;
        if !uploads.is_empty() {
            return Err(WebError::bad_request(
                "biểu mẫu xem lại không nhận tệp: văn bản đã được lưu khi tải lên",
            ));
        }
        return Ok(fields);
    }
    let Form(form) = Form::<Vec<(String, String)>>::from_request(request, state)
        .await
        .map_err(|e| WebError::bad_request(format!("biểu mẫu không đọc được: {}", e.body_text())))?;
    Ok(form)
}

/// What went wrong with a review form, shown on the review screen.
#[derive(Debug, Default)]
struct Findings {
    /// Fields to correct: (form field, message).
    problems: Vec<Problem>,
    /// The plan file's own checks (`plan::parse_bounded`), in words.
    diagnostics: Vec<String>,
    /// A refusal of the load itself (the engine's).
    refused: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
struct Problem {
    field: String,
    message: String,
}

impl Problem {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// `POST /admin/plans/import/load`: the stored document read again, the
/// review's fields applied, the plan file checked and loaded as the admin,
/// recording the document. Anything to correct shows the review screen
/// again with the message, keeping what was typed; nothing is loaded.
async fn admin_load(State(state): State<AppState>, headers: HeaderMap, uri: Uri, request: Request) -> Response {
    let result = async {
        let caller = admin_caller(&state, &headers, &uri, "nạp kế hoạch").await?;
        let refuse = |e: WebError| Refusal::Error(e, Some(Box::new(caller.clone())));
        let form = review_form(&state, request).await.map_err(refuse)?;
        caller.check_csrf(Some(field(&form, "csrf"))).map_err(refuse)?;
        let plans = state.plan_views().await?;
        let directory = field(&form, "directory").trim().to_string();
        let (draft, document) = stored_draft(&state, &form, &plans, &directory).await.map_err(refuse)?;
        let review = Review {
            draft: &draft,
            document: &document,
            directory: &directory,
            plans: &plans,
            posted: Some(&form),
        };
        if field(&form, "draft") != fingerprint(&draft) {
            // The directory it started from has changed since the review
            // (another plan loaded): the rows may no longer be the same bodies.
            let findings = Findings {
                refused: Some("Danh mục cơ quan dùng để đọc văn bản đã thay đổi kể từ lúc xem lại, nên văn bản đã được đọc lại: hãy xem lại rồi nạp.".into()),
                ..Default::default()
            };
            return Ok(Review { posted: None, ..review }.page(&state, &caller, &findings, StatusCode::CONFLICT));
        }
        let edited = match apply(&draft, &form) {
            Ok(edited) => edited,
            Err(problems) => {
                let findings = Findings {
                    problems,
                    ..Default::default()
                };
                return Ok(review.page(&state, &caller, &findings, StatusCode::UNPROCESSABLE_ENTITY));
            }
        };
        let text = edited.to_toml();
        let name = format!("{}.toml", edited.plan_id);
        let mut plan = match crate::plan::parse_bounded(std::path::Path::new(&name), &text) {
            Ok(plan) => plan,
            Err(diagnostics) => {
                let lines: Vec<&str> = text.lines().collect();
                let findings = Findings {
                    diagnostics: diagnostics
                        .iter()
                        .map(|d| {
                            let quoted = lines.get(d.line.wrapping_sub(1)).map(|l| l.trim()).unwrap_or_default();
                            let hint = d.hint.as_ref().map(|h| format!(" (gợi ý: {h})")).unwrap_or_default();
                            format!("{}{hint} — dòng {} của tệp kế hoạch: {quoted}", d.message, d.line)
                        })
                        .collect(),
                    ..Default::default()
                };
                return Ok(review.page(&state, &caller, &findings, StatusCode::UNPROCESSABLE_ENTITY));
            }
        };
        plan.source.document = Some(document.clone());
        let by = caller.user.actor(caller.channel.clone());
        let loaded = match state.engine.load_plan_for(&plan, by, None).await {
            Ok(loaded) => loaded,
            Err(e) => {
                let e = WebError::from(e);
                if e.status.is_server_error() {
                    return Err(refuse(e));
                }
                let findings = Findings {
                    refused: Some(e.message),
                    ..Default::default()
                };
                return Ok(review.page(&state, &caller, &findings, StatusCode::UNPROCESSABLE_ENTITY));
            }
        };
        if let Err(e) = state.engine.catch_up().await {
            tracing::warn!(error = %e, "đã nạp kế hoạch nhưng chưa cập nhật được các khung nhìn");
        }
        let r = loaded.report;
        let done = format!(
            "Đã nạp kế hoạch «{}» từ văn bản {}: {} nhiệm vụ, {} mốc, {} sự kiện mới.",
            edited.title, document.file, r.tasks, r.milestones, r.events_written
        );
        super::flash::push(&state, &headers, super::flash::Kind::Done, &done).await?;
        Ok(redirect(&format!("/plans/{}", urlencode(&r.plan))))
    }
    .await;
    finish(&state, result)
}

/// The draft of the document a review form names, read again from the store.
async fn stored_draft(
    state: &AppState,
    form: &[(String, String)],
    plans: &[PlanView],
    directory: &str,
) -> Result<(Draft, SourceDocument), WebError> {
    let gone = || WebError::not_found("không có văn bản này trong kho; hãy tải văn bản lên lại ở trang Quản trị");
    let hash = FileHash::parse(field(form, "document")).map_err(|_| gone())?;
    let stored = state.store().get_file(&hash).await?.ok_or_else(gone)?;
    let file = checked::clean_name(field(form, "file_name"));
    let agencies = directory_of(plans, directory)?;
    let (draft, _) = read_draft(file.clone(), stored.bytes, agencies).await?;
    let document = SourceDocument {
        file,
        sha256: stored.sha256,
        size: stored.size.max(0) as u64,
        media_type: stored.media_type,
    };
    Ok((draft, document))
}

/// What identifies a draft as read: the SHA-256 of its plan file before
/// any edit. The review form carries it so that loading applies the edits
/// to the same rows the admin saw.
fn fingerprint(draft: &Draft) -> String {
    checked::sha256(draft.to_toml().as_bytes()).as_str().to_string()
}

fn posted<'a>(form: Option<&'a [(String, String)]>, name: &str) -> Option<&'a str> {
    form.map(|f| field(f, name))
}

fn posted_all<'a>(form: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    form.iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .collect()
}

/// Addresses as typed: separated by commas, semicolons, spaces or lines.
fn split_emails(text: &str) -> Vec<&str> {
    text.split([',', ';', ' ', '\n', '\r', '\t'])
        .filter(|s| !s.is_empty())
        .collect()
}

/// Other spellings as typed: one per line or separated by semicolons.
fn split_aliases(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for a in text.split([';', '\n']).map(str::trim).filter(|a| !a.is_empty()) {
        if !out.iter().any(|o| o == a) {
            out.push(a.to_string());
        }
    }
    out
}

/// Which agency-role field of a task, in the form and in words.
const ROLES: [(&str, &str); 3] = [
    ("implementers", "Cơ quan thực hiện"),
    ("advisory", "Cơ quan tham mưu"),
    ("coordinators", "Cơ quan phối hợp"),
];

const DEADLINE_HINT: &str =
    "viết như trong văn bản, ví dụ «Trong quý I/2025», «Trước ngày 31/3 hằng năm», «Thường xuyên», «Năm 2026»";

/// The draft with the review form's fields applied, or every field to
/// correct. Agencies no task names any more (and not the issuer) are left
/// out of the plan.
fn apply(draft: &Draft, form: &[(String, String)]) -> Result<Draft, Vec<Problem>> {
    let mut d = draft.clone();
    let mut problems = Vec::new();
    let n = d.agencies.len();
    let agency_index = |value: &str| value.trim().parse::<usize>().ok().filter(|i| *i < n);

    match PlanId::parse(field(form, "plan-id").trim()) {
        Ok(id) => d.plan_id = id.to_string(),
        Err(e) => problems.push(Problem::new("plan-id", format!("Mã kế hoạch: {e}"))),
    }
    let title = field(form, "plan-title").trim();
    if title.is_empty() {
        problems.push(Problem::new("plan-title", "Cần tên kế hoạch"));
    } else {
        d.title = title.to_string();
    }
    match agency_index(field(form, "plan-issuer")) {
        Some(i) => d.issuer = i,
        None => problems.push(Problem::new("plan-issuer", "Cần chọn cơ quan ban hành trong danh mục")),
    }

    for (t, task) in d.tasks.iter_mut().enumerate() {
        let key = |f: &str| format!("t{t}-{f}");
        let title = field(form, &key("title")).trim();
        if title.is_empty() {
            problems.push(Problem::new(
                key("title"),
                format!("Nhiệm vụ {}: cần tên nhiệm vụ", task.id),
            ));
        } else {
            task.title = title.to_string();
        }
        match agency_index(field(form, &key("lead"))) {
            Some(i) => task.lead = i,
            None => problems.push(Problem::new(
                key("lead"),
                format!(
                    "Nhiệm vụ {}: cần chọn cơ quan lãnh đạo, chỉ đạo trong danh mục",
                    task.id
                ),
            )),
        }
        for (role, label) in ROLES {
            let chosen: Vec<&str> = posted_all(form, &key(role));
            let mut picked: Vec<usize> = Vec::new();
            for value in chosen {
                match agency_index(value) {
                    Some(i) if !picked.contains(&i) => picked.push(i),
                    Some(_) => {}
                    None => problems.push(Problem::new(
                        key(role),
                        format!("Nhiệm vụ {}: {} không có trong danh mục", task.id, label.to_lowercase()),
                    )),
                }
            }
            // The document's order first, then the bodies added on review.
            let before: &[usize] = match role {
                "implementers" => &draft.tasks[t].implementers,
                "advisory" => &draft.tasks[t].advisory,
                _ => &draft.tasks[t].coordinators,
            };
            picked.sort_by_key(|i| (before.iter().position(|b| b == i).unwrap_or(usize::MAX), *i));
            match role {
                "implementers" => {
                    if picked.is_empty() {
                        problems.push(Problem::new(
                            key(role),
                            format!("Nhiệm vụ {}: cần ít nhất một cơ quan thực hiện", task.id),
                        ));
                    }
                    task.implementers = picked;
                }
                "advisory" => task.advisory = picked,
                _ => task.coordinators = picked,
            }
        }
        match field(form, &key("obligation")) {
            "each" => task.obligation = "each",
            "joint" => task.obligation = "joint",
            _ => problems.push(Problem::new(
                key("obligation"),
                format!(
                    "Nhiệm vụ {}: chọn mỗi cơ quan một nghĩa vụ, hoặc một nghĩa vụ chung",
                    task.id
                ),
            )),
        }
        if task.obligation != draft_obligation(draft, t) {
            task.obligation_reason = format!("{}: chọn khi xem lại bản nháp trên trang Quản trị", task.obligation);
        }
        let wording = field(form, &key("deadline")).trim();
        if wording != task.deadline.as_deref().unwrap_or("").trim() {
            match deadline::read(wording).filter(|s| !s.is_empty()) {
                Some(schedules) => {
                    task.deadline = Some(wording.to_string());
                    task.schedules = schedules;
                }
                None if wording.is_empty() => problems.push(Problem::new(
                    key("deadline"),
                    format!("Nhiệm vụ {}: cần thời hạn ({DEADLINE_HINT})", task.id),
                )),
                None => problems.push(Problem::new(
                    key("deadline"),
                    format!(
                        "Nhiệm vụ {}: không hiểu thời hạn «{wording}» ({DEADLINE_HINT})",
                        task.id
                    ),
                )),
            }
        }
    }

    // The directory: what was typed, then only the bodies the plan names.
    let mut used: BTreeSet<usize> = BTreeSet::from([d.issuer]);
    for t in &d.tasks {
        used.insert(t.lead);
        used.extend(t.advisory.iter().chain(&t.implementers).chain(&t.coordinators));
    }
    let mut codes: Vec<(String, usize)> = Vec::new();
    for (i, a) in d.agencies.iter_mut().enumerate() {
        let key = |f: &str| format!("a{i}-{f}");
        let was = a.name.clone();
        let name = field(form, &key("name")).trim();
        if name.is_empty() {
            problems.push(Problem::new(key("name"), format!("Cơ quan «{was}»: cần tên cơ quan")));
        } else {
            a.name = name.to_string();
        }
        let mut aliases = split_aliases(field(form, &key("aliases")));
        if a.name != was && !aliases.contains(&was) {
            // The document's own spelling stays known, for the next import.
            aliases.push(was.clone());
        }
        aliases.retain(|x| x != &a.name);
        a.aliases = aliases;
        match AgencyCode::parse_loose(field(form, &key("code"))) {
            Ok(code) => {
                let code = code.to_string();
                if let Some((_, other)) = codes.iter().find(|(c, _)| *c == code) {
                    problems.push(Problem::new(
                        key("code"),
                        format!(
                            "Mã {code} đã dùng cho «{}»: mỗi cơ quan một mã riêng",
                            field(form, &format!("a{other}-name")).trim()
                        ),
                    ));
                } else {
                    codes.push((code.clone(), i));
                }
                a.code = code;
            }
            Err(e) => problems.push(Problem::new(key("code"), format!("Cơ quan «{}»: {e}", a.name))),
        }
        let mut emails = Vec::new();
        for typed in split_emails(field(form, &key("emails"))) {
            match Email::parse(typed) {
                Ok(e) if !emails.contains(&e.to_string()) => emails.push(e.to_string()),
                Ok(_) => {}
                Err(_) => problems.push(Problem::new(
                    key("emails"),
                    format!("Cơ quan «{}»: địa chỉ e-mail không hợp lệ: «{typed}»", a.name),
                )),
            }
        }
        if emails.is_empty() && used.contains(&i) {
            problems.push(Problem::new(
                key("emails"),
                format!("Cơ quan «{}»: cần ít nhất một địa chỉ e-mail để nhận nhắc hạn", a.name),
            ));
        }
        if let Some(known) = a.known.as_mut() {
            known.emails = emails.clone();
        }
        a.emails = emails;
    }
    if !problems.is_empty() {
        return Err(problems);
    }

    let renumbered: Vec<Option<usize>> = (0..n)
        .scan(0usize, |next, i| {
            Some(used.contains(&i).then(|| {
                *next += 1;
                *next - 1
            }))
        })
        .collect();
    let at = |i: &usize| renumbered[*i].expect("a used agency is kept");
    d.agencies = d
        .agencies
        .into_iter()
        .enumerate()
        .filter(|(i, _)| used.contains(i))
        .map(|(_, a)| a)
        .collect();
    d.issuer = at(&d.issuer);
    for t in &mut d.tasks {
        t.lead = at(&t.lead);
        for list in [&mut t.advisory, &mut t.implementers, &mut t.coordinators] {
            *list = list.iter().map(at).collect();
        }
    }
    Ok(d)
}

/// The importer's reason for a task's obligation mode, without the mode's
/// code it starts with ("each: …", "joint: …").
fn reason_in_words(reason: &str) -> &str {
    ["each:", "joint:"]
        .iter()
        .find_map(|p| reason.strip_prefix(p))
        .unwrap_or(reason)
        .trim()
}

fn draft_obligation(draft: &Draft, task: usize) -> &'static str {
    draft.tasks.get(task).map_or("each", |t| t.obligation)
}

/// The review screen of one draft.
struct Review<'a> {
    draft: &'a Draft,
    document: &'a SourceDocument,
    /// The loaded plan whose directory the draft started from ("" for none).
    directory: &'a str,
    plans: &'a [PlanView],
    /// The review form as posted, to show again as typed.
    posted: Option<&'a [(String, String)]>,
}

impl Review<'_> {
    fn page(&self, state: &AppState, caller: &Caller, findings: &Findings, status: StatusCode) -> Response {
        let mut ctx = self.context(findings);
        ctx["plans"] = plans_nav(self.plans);
        let mut page = render(state, "admin_import.html", Some(caller), ctx);
        if page.status().is_success() {
            *page.status_mut() = status;
        }
        page
    }

    /// A field's value: as posted, else as the draft has it.
    fn value(&self, name: &str, draft: impl FnOnce() -> String) -> String {
        posted(self.posted, name).map_or_else(draft, str::to_string)
    }

    fn context(&self, findings: &Findings) -> Value {
        let d = self.draft;
        let error = |name: &str| {
            let found: Vec<&str> = findings
                .problems
                .iter()
                .filter(|p| p.field == name)
                .map(|p| p.message.as_str())
                .collect();
            (!found.is_empty()).then(|| found.join("; "))
        };
        let names: Vec<String> = (0..d.agencies.len())
            .map(|i| {
                let typed = self.value(&format!("a{i}-name"), || d.agencies[i].name.clone());
                if typed.trim().is_empty() {
                    d.agencies[i].name.clone()
                } else {
                    typed.trim().to_string()
                }
            })
            .collect();
        let options = |chosen: &[usize]| -> Vec<Value> {
            names
                .iter()
                .enumerate()
                .map(|(i, name)| json!({ "value": i.to_string(), "label": name, "checked": chosen.contains(&i) }))
                .collect()
        };
        let doubt_json = |x: &import::Doubt| json!({ "message": x.message, "quote": x.quote, "line": x.line });
        let task_ids: Vec<&str> = d.tasks.iter().map(|t| t.id.as_str()).collect();

        let issuer = self.value("plan-issuer", || d.issuer.to_string());
        let existing = self
            .plans
            .iter()
            .find(|p| p.id == self.value("plan-id", || d.plan_id.clone()).trim());
        let plan = json!({
            "id": { "name": "plan-id", "value": self.value("plan-id", || d.plan_id.clone()), "error": error("plan-id") },
            "title": { "name": "plan-title", "value": self.value("plan-title", || d.title.clone()), "error": error("plan-title") },
            "issuer": {
                "name": "plan-issuer", "error": error("plan-issuer"),
                "options": names.iter().enumerate().map(|(i, n)| json!({ "value": i.to_string(), "label": n, "selected": i.to_string() == issuer })).collect::<Vec<_>>(),
                "doubts": d.doubts.iter().filter(|x| x.field == Some("issuer")).map(doubt_json).collect::<Vec<_>>(),
            },
            "period": format!("{} – {}", format_vn(d.period.0), format_vn(d.period.1)),
            "years": format!("{}–{}", d.reporting_years.0, d.reporting_years.1),
            "layout": if d.layout == "table" { "bảng nhiệm vụ" } else { "văn bản có mục đánh số" },
            "existing": existing.map(|p| json!({ "id": p.id, "title": p.plan.header.as_ref().map(|h| h.title.clone()) })),
        });

        let agencies: Vec<Value> = d
            .agencies
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let key = |f: &str| format!("a{i}-{f}");
                let code = self.value(&key("code"), || a.code.clone());
                let elsewhere = self.plans.iter().find_map(|p| {
                    let other = p.plan.agencies.iter().find(|o| o.code.as_str() == code.trim().to_ascii_uppercase())?;
                    (other.name != names[i]).then(|| {
                        format!(
                            "Mã {} đang dùng cho «{}» trong kế hoạch «{}»: người dùng của mã này sẽ thấy các nhiệm vụ của cơ quan này. Đổi mã nếu là hai cơ quan khác nhau.",
                            other.code,
                            other.name,
                            super::pages::short_title(
                                p.plan.header.as_ref().map_or(p.id.as_str(), |h| h.title.as_str()),
                                60
                            )
                        )
                    })
                });
                let emails = a.known.as_ref().map_or(&a.emails, |k| &k.emails).join(", ");
                json!({
                    "n": i,
                    "label": names[i],
                    "name": { "name": key("name"), "value": self.value(&key("name"), || a.name.clone()), "error": error(&key("name")) },
                    "code": { "name": key("code"), "value": code, "error": error(&key("code")) },
                    "aliases": { "name": key("aliases"), "value": self.value(&key("aliases"), || a.aliases.join("; ")), "error": error(&key("aliases")) },
                    "emails": { "name": key("emails"), "value": self.value(&key("emails"), || emails), "error": error(&key("emails")) },
                    "mentions": a.mentions, "first_line": a.first_line, "known": a.known.is_some(),
                    "doubts": d.doubts.iter().filter(|x| x.field == Some("agencies") && x.quote == a.name).map(doubt_json).collect::<Vec<_>>(),
                    "elsewhere": elsewhere,
                })
            })
            .collect();

        let tasks: Vec<Value> = d
            .tasks
            .iter()
            .enumerate()
            .map(|(t, task)| {
                let key = |f: &str| format!("t{t}-{f}");
                let doubts = |f: &str| -> Vec<Value> {
                    d.doubts
                        .iter()
                        .filter(|x| x.task.as_deref() == Some(task.id.as_str()) && x.field == Some(f))
                        .map(doubt_json)
                        .collect()
                };
                let chosen = |role: &str, draft: &[usize]| -> Vec<usize> {
                    match self.posted {
                        Some(form) => posted_all(form, &key(role)).iter().filter_map(|v| v.parse().ok()).collect(),
                        None => draft.to_vec(),
                    }
                };
                let roles: Vec<Value> = ROLES
                    .iter()
                    .map(|(role, label)| {
                        let draft = match *role {
                            "implementers" => &task.implementers,
                            "advisory" => &task.advisory,
                            _ => &task.coordinators,
                        };
                        let picked = chosen(role, draft);
                        json!({
                            "name": key(role), "label": label, "options": options(&picked),
                            "chosen": picked.iter().any(|i| *i < names.len()),
                            "error": error(&key(role)), "doubts": doubts(role),
                        })
                    })
                    .collect();
                let lead = self.value(&key("lead"), || task.lead.to_string());
                let wording = self.value(&key("deadline"), || task.deadline.clone().unwrap_or_default());
                let schedules = if wording.trim() == task.deadline.as_deref().unwrap_or("").trim() {
                    Some(task.schedules.clone())
                } else {
                    deadline::read(wording.trim()).filter(|s| !s.is_empty())
                };
                let obligation = self.value(&key("obligation"), || task.obligation.to_string());
                let others: Vec<Value> = d
                    .doubts
                    .iter()
                    .filter(|x| {
                        x.task.as_deref() == Some(task.id.as_str())
                            && !matches!(x.field, Some("lead" | "implementers" | "advisory" | "coordinators" | "deadline" | "kpis"))
                    })
                    .map(doubt_json)
                    .collect();
                json!({
                    "n": t, "id": task.id, "section": task.section, "line": task.line, "text": task.text,
                    "title": { "name": key("title"), "value": self.value(&key("title"), || task.title.clone()), "error": error(&key("title")) },
                    "lead": {
                        "name": key("lead"), "error": error(&key("lead")), "doubts": doubts("lead"),
                        "options": names.iter().enumerate().map(|(i, n)| json!({ "value": i.to_string(), "label": n, "selected": i.to_string() == lead })).collect::<Vec<_>>(),
                    },
                    "roles": roles,
                    "deadline": {
                        "name": key("deadline"), "value": wording, "error": error(&key("deadline")), "doubts": doubts("deadline"),
                        "schedule": schedules.map(|s| s.iter().map(|s| schedule_words(s, d)).collect::<Vec<_>>()),
                    },
                    "obligation": {
                        "name": key("obligation"), "value": obligation, "error": error(&key("obligation")),
                        "reason": reason_in_words(&task.obligation_reason),
                    },
                    "kpis": task.kpis.iter().map(kpi_words).collect::<Vec<_>>(),
                    "kpi_doubts": doubts("kpis"),
                    "doubts": others,
                })
            })
            .collect();

        // Doubts about no task or field above: the whole document.
        let general: Vec<Value> = d
            .doubts
            .iter()
            .filter(|x| match x.task.as_deref() {
                Some(id) => !task_ids.contains(&id),
                None => !matches!(x.field, Some("agencies" | "issuer")),
            })
            .map(doubt_json)
            .collect();
        let doc = self.document;
        json!({
            "title": "Xem lại kế hoạch nhập từ văn bản",
            "document": {
                "file": doc.file, "sha256": doc.sha256, "size": size_text(doc.size),
                "kind": media_type_text(&doc.media_type),
            },
            "directory": self.directory,
            "draft": fingerprint(d),
            "plan": plan,
            "counts": { "tasks": d.tasks.len(), "agencies": d.agencies.len(), "doubts": d.doubts.len() },
            "agencies": agencies,
            "tasks": tasks,
            "general_doubts": general,
            "problems": findings.problems,
            "diagnostics": findings.diagnostics,
            "refused": findings.refused,
        })
    }
}

/// A KPI target as read, in words: its label, then the target
/// (`≥ 80%`, `từ 0,4 đến 0,6%/năm`, with its baseline).
fn kpi_words(k: &import::kpi::Kpi) -> String {
    let n = |v: f64| crate::domain::task::format_number(v);
    let unit = |v: String| {
        let per_year = if k.per_year { "/năm" } else { "" };
        if k.unit.is_empty() || k.unit.starts_with('%') {
            format!("{v}{}{per_year}", k.unit)
        } else {
            format!("{v} {}{per_year}", k.unit)
        }
    };
    let target = match (k.comparator, k.value, k.min, k.max) {
        ("between", _, Some(lo), Some(hi)) => unit(format!("từ {} đến {}", n(lo), n(hi))),
        (c, Some(v), _, _) => {
            let sign = match c {
                "at_least" => "≥ ",
                "more_than" => "> ",
                "at_most" => "≤ ",
                "less_than" => "< ",
                "about" => "khoảng ",
                _ => "",
            };
            unit(format!("{sign}{}", n(v)))
        }
        _ => String::new(),
    };
    let baseline = k
        .baseline
        .map(|(v, y)| format!(" (năm {y}: {})", n(v)))
        .unwrap_or_default();
    format!("{}: {target}{baseline}", k.label)
}

/// A schedule in words: what it is and its due dates (the plan's time zone,
/// end of day).
fn schedule_words(s: &Schedule, d: &Draft) -> Value {
    // The emitted plan's defaults (emit.rs): yearly report on 15/12 and the
    // five-year review at the end of the period.
    const YEARLY_REPORT: (u32, u32) = (15, 12);
    let years = d.reporting_years.0..=d.reporting_years.1;
    let yearly = |(day, month): (u32, u32)| -> Vec<String> {
        years
            .clone()
            .filter_map(|y| NaiveDate::from_ymd_opt(y, month, day))
            .map(format_vn)
            .collect()
    };
    let once = |date: Option<NaiveDate>| date.map(format_vn).into_iter().collect::<Vec<_>>();
    let roman = ["I", "II", "III", "IV"];
    let (what, dates) = match s {
        Schedule::Once { day, month, year } => (
            "Một lần".to_string(),
            once(NaiveDate::from_ymd_opt(*year, *month, *day)),
        ),
        Schedule::MonthEnd { month, year } => (
            format!("Trong tháng {month:02}/{year}"),
            once(crate::domain::dates::parse_month_end(&format!("{month:02}/{year}")).ok()),
        ),
        Schedule::QuarterEnd { quarter, year } => (
            format!(
                "Trong quý {}/{year}",
                roman.get((*quarter as usize).wrapping_sub(1)).copied().unwrap_or("?")
            ),
            once(crate::domain::dates::quarter_end(*year, *quarter)),
        ),
        Schedule::Yearly {
            day: Some(day), title, ..
        } => (format!("{title} (hằng năm)"), yearly(*day)),
        Schedule::Yearly { day: None, title, .. } => (
            format!("{title} (hằng năm, vào ngày báo cáo năm)"),
            yearly(YEARLY_REPORT),
        ),
        Schedule::Ongoing => (
            "Thường xuyên: báo cáo tiến độ hằng năm".to_string(),
            yearly(YEARLY_REPORT),
        ),
        Schedule::PeriodReview { title } => (format!("{title} (cuối kỳ)"), vec![format_vn(d.period.1)]),
    };
    json!({ "what": what, "dates": dates.join(", ") })
}

/// The original document of a plan, as the record has it: a download.
pub async fn plan_document(state: &AppState, plan: &str) -> Result<Response, WebError> {
    let plans = state.plan_views().await?;
    let view = plans
        .iter()
        .find(|p| p.id == plan)
        .ok_or_else(|| WebError::not_found(format!("không có kế hoạch {plan:?}")))?;
    let document = view
        .plan
        .source
        .as_ref()
        .and_then(|s| s.document.as_ref())
        .ok_or_else(|| WebError::not_found("kế hoạch này không được nhập từ văn bản nên không có văn bản gốc"))?;
    let missing = || {
        tracing::error!(plan, sha256 = %document.sha256, "văn bản gốc có trong sự kiện nạp kế hoạch nhưng không có trong kho");
        WebError::not_found("văn bản gốc không còn trong kho (báo quản trị chạy audit verify)")
    };
    let hash = FileHash::parse(&document.sha256).map_err(|_| missing())?;
    let stored = state.store().get_file(&hash).await?.ok_or_else(missing)?;
    Ok(files::file_response(
        &document.file,
        &document.media_type,
        stored.bytes,
        false,
    ))
}

/// `GET /plans/{plan}/document`: for anyone signed in (every signed-in
/// user may see a plan's page).
pub async fn plan_document_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(plan): Path<String>,
) -> Response {
    let result: PageResult = async {
        let caller = signed_in(&state, &headers, &uri).await?;
        plan_document(&state, &plan)
            .await
            .map_err(|e| Refusal::Error(e, Some(Box::new(caller.clone()))))
    }
    .await;
    finish(&state, result)
}

/// What the plan page says of the plan's original document, if it has one.
pub fn document_context(view: &PlanView) -> Value {
    match view.plan.source.as_ref().and_then(|s| s.document.as_ref()) {
        Some(d) => json!({
            "file": d.file, "sha256": d.sha256, "size": size_text(d.size), "kind": media_type_text(&d.media_type),
            "href": format!("/plans/{}/document", urlencode(&view.id)),
        }),
        None => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_import_error_is_a_client_error_with_its_line() {
        let cases = [
            (ImportError::TooLarge { bytes: 1, max: 0 }, 413),
            (ImportError::OldWordFormat, 415),
            (ImportError::MacroEnabled, 415),
            (ImportError::Encrypted, 415),
            (ImportError::NotADocument("x".into()), 415),
            (ImportError::NotUtf8 { offset: 3 }, 415),
            (ImportError::ZipBomb, 422),
            (ImportError::Corrupt("x".into()), 422),
            (ImportError::TooManyTasks { tasks: 9, max: 1 }, 422),
            (ImportError::NoTasks, 422),
        ];
        for (e, status) in cases {
            let w = refusal(&e);
            assert_eq!(w.status.as_u16(), status, "{e}");
            assert_eq!(w.message, e.to_string());
            assert_eq!(w.message.lines().count(), 1);
        }
        assert_eq!(document_too_large().status, StatusCode::PAYLOAD_TOO_LARGE);
    }

    fn draft() -> Draft {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/import/huyen-uy-son-tinh/plan.txt"
        );
        import::import("plan.txt", &std::fs::read(path).unwrap(), &[]).unwrap()
    }

    /// The review form as the page shows it, every agency given an address.
    fn form_of(d: &Draft) -> Vec<(String, String)> {
        let mut f: Vec<(String, String)> = vec![
            ("plan-id".into(), d.plan_id.clone()),
            ("plan-title".into(), d.title.clone()),
            ("plan-issuer".into(), d.issuer.to_string()),
        ];
        for (i, a) in d.agencies.iter().enumerate() {
            f.push((format!("a{i}-name"), a.name.clone()));
            f.push((format!("a{i}-code"), a.code.clone()));
            f.push((format!("a{i}-aliases"), a.aliases.join("; ")));
            f.push((
                format!("a{i}-emails"),
                format!("{}@sontinh.example", a.code.to_lowercase()),
            ));
        }
        for (t, task) in d.tasks.iter().enumerate() {
            f.push((format!("t{t}-title"), task.title.clone()));
            f.push((format!("t{t}-lead"), task.lead.to_string()));
            for (role, list) in [
                ("implementers", &task.implementers),
                ("advisory", &task.advisory),
                ("coordinators", &task.coordinators),
            ] {
                f.extend(list.iter().map(|i| (format!("t{t}-{role}"), i.to_string())));
            }
            f.push((format!("t{t}-deadline"), task.deadline.clone().unwrap_or_default()));
            f.push((format!("t{t}-obligation"), task.obligation.to_string()));
        }
        f
    }

    fn set(f: &mut [(String, String)], name: &str, value: &str) {
        f.iter_mut().find(|(k, _)| k == name).unwrap().1 = value.to_string();
    }

    #[test]
    fn the_form_as_shown_gives_the_draft_back() {
        let d = draft();
        let edited = apply(&d, &form_of(&d)).unwrap();
        let same = |t: &str| -> Vec<String> {
            t.lines()
                .filter(|l| !l.contains("emails"))
                .map(str::to_string)
                .collect()
        };
        let (after, before) = (same(&edited.to_toml()), same(&d.to_toml()));
        if let Some((a, b)) = after.iter().zip(&before).find(|(a, b)| a != b) {
            panic!("the plan file changed: {a:?} instead of {b:?}");
        }
        assert_eq!(after.len(), before.len());
        let text = edited.to_toml();
        assert!(crate::plan::parse_bounded(std::path::Path::new("x.toml"), &text).is_ok());
    }

    #[test]
    fn edits_are_applied_and_unused_agencies_left_out() {
        let d = draft();
        let mut f = form_of(&d);
        // The first task's first implementer, replaced there by the issuer.
        let t = 0;
        let dropped = d.tasks[t].implementers[0];
        let named_elsewhere = d.issuer == dropped
            || d.tasks.iter().enumerate().any(|(j, x)| {
                x.lead == dropped
                    || x.advisory.contains(&dropped)
                    || x.coordinators.contains(&dropped)
                    || (j != t && x.implementers.contains(&dropped))
            });
        let keep = d.issuer;
        f.retain(|(k, v)| !(k == &format!("t{t}-implementers") && v == &dropped.to_string()));
        f.push((format!("t{t}-implementers"), keep.to_string()));
        set(&mut f, &format!("a{keep}-name"), "Tên đã sửa");
        set(&mut f, &format!("t{t}-obligation"), "joint");
        set(&mut f, &format!("t{t}-deadline"), "Trong quý III/2025");
        let edited = apply(&d, &f).unwrap();
        let kept = edited.agencies.iter().find(|a| a.name == "Tên đã sửa").unwrap();
        assert!(kept.aliases.contains(&d.agencies[keep].name), "{:?}", kept.aliases);
        assert_eq!(edited.agencies.len(), d.agencies.len() - usize::from(!named_elsewhere));
        let task = &edited.tasks[t];
        let names: Vec<&str> = task
            .implementers
            .iter()
            .map(|i| edited.agencies[*i].name.as_str())
            .collect();
        assert!(names.contains(&"Tên đã sửa"), "{names:?}");
        assert!(!names.contains(&d.agencies[dropped].name.as_str()), "{names:?}");
        assert_eq!(task.obligation, "joint");
        assert_eq!(task.schedules, vec![Schedule::QuarterEnd { quarter: 3, year: 2025 }]);
        assert_eq!(edited.agencies[edited.issuer].name, "Tên đã sửa");
        // Every index still points at the body it named.
        for (a, b) in d.tasks.iter().zip(&edited.tasks).skip(1) {
            let codes = |d: &Draft, l: &[usize]| l.iter().map(|i| d.agencies[*i].code.clone()).collect::<Vec<_>>();
            assert_eq!(codes(&d, &a.advisory), codes(&edited, &b.advisory));
            assert_eq!(codes(&d, &a.implementers), codes(&edited, &b.implementers));
        }
    }

    #[test]
    fn every_field_to_fix_is_named() {
        let d = draft();
        let mut f = form_of(&d);
        set(&mut f, "a0-emails", "");
        set(&mut f, "a1-emails", "khong-phai-dia-chi");
        let code0 = d.agencies[0].code.clone();
        set(&mut f, "a2-code", &code0.to_lowercase());
        set(&mut f, "t0-deadline", "khi nào xong");
        set(&mut f, "t1-lead", "9999");
        f.retain(|(k, _)| k != "t2-implementers");
        set(&mut f, "plan-id", "Kế hoạch");
        let problems = apply(&d, &f).unwrap_err();
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        for expected in [
            "a0-emails",
            "a1-emails",
            "a2-code",
            "t0-deadline",
            "t1-lead",
            "t2-implementers",
            "plan-id",
        ] {
            assert!(fields.contains(&expected), "{expected}: {problems:?}");
        }
    }

    #[test]
    fn targets_in_words() {
        let d = draft();
        let words: Vec<String> = d.tasks.iter().flat_map(|t| t.kpis.iter().map(kpi_words)).collect();
        assert!(!words.is_empty());
        assert!(words.iter().any(|w| w.contains('≥') || w.contains("từ ")), "{words:?}");
    }

    #[test]
    fn typed_lists_are_split_the_way_people_type_them() {
        assert_eq!(
            split_emails("a@x.example, b@x.example;c@x.example\nd@x.example  "),
            ["a@x.example", "b@x.example", "c@x.example", "d@x.example"]
        );
        assert_eq!(
            split_aliases("UBND huyện; Ủy ban nhân dân huyện\nUBND huyện"),
            ["UBND huyện", "Ủy ban nhân dân huyện"]
        );
    }
}
