//! The administrator's agency directory (`/admin/agencies`): each agency of
//! a plan as a form — name, short name, addresses, members' addresses.
//! *Kiểm tra* shows exactly what will change (names, addresses added and
//! removed, the notices that will go to old addresses) and changes nothing;
//! *Lưu* rewrites the plan text in force with those keys only
//! (`plan::directory`), checks it as any plan file and loads it as the
//! administrator: an attributed amendment, whose directory notices follow.
//! The plan in force downloads as `/plans/{plan}/ke-hoach.toml`.

use super::auth::Caller;
use super::files;
use super::forms;
use super::pages::{
    admin_page, asker, finish, plans_nav, redirect, refusal, render, signed_in, signed_in_as, task_form, task_ids,
    PageResult, Refusal,
};
use super::{AppState, WebError};
use crate::accounts::Role;
use crate::domain::directory::address_changes;
use crate::domain::plan::{Agency, Member};
use crate::domain::task::FileHash;
use crate::projections::views::PlanView;
use axum::extract::{Form, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};
use std::collections::HashMap;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/agencies", get(page).post(submit))
        .route("/admin/plans", axum::routing::post(admin_load_plan))
        .route("/plans/{plan}/ke-hoach.toml", get(plan_in_force))
}

async fn admin(state: &AppState, headers: &HeaderMap, uri: &Uri) -> Result<Caller, Refusal> {
    signed_in_as(state, headers, uri, Role::Admin, "sửa danh bạ cơ quan").await
}

/// The plan asked for (`plan=`), or the first loaded.
fn chosen<'a>(plans: &'a [PlanView], id: Option<&String>) -> Result<&'a PlanView, WebError> {
    match id.filter(|p| !p.is_empty()) {
        Some(id) => plans
            .iter()
            .find(|p| &p.id == id)
            .ok_or_else(|| WebError::not_found(format!("không có kế hoạch {id:?}"))),
        None => plans
            .iter()
            .find(|p| p.plan.header.is_some())
            .ok_or_else(|| WebError::not_found("chưa có kế hoạch nào được nạp")),
    }
}

/// The text of the plan in force, if the store keeps it (every load since
/// release 0.4 does).
async fn text_in_force(state: &AppState, plan: &PlanView) -> Result<Option<String>, WebError> {
    let Some(source) = &plan.plan.source else {
        return Ok(None);
    };
    let Ok(hash) = FileHash::parse(&source.sha256) else {
        return Ok(None);
    };
    Ok(state
        .store()
        .get_file(&hash)
        .await?
        .and_then(|f| String::from_utf8(f.bytes).ok()))
}

/// The form's values of one agency, as the page shows them.
fn agency_fields(a: &Agency) -> Value {
    json!({
        "code": a.code, "name": a.name, "short": a.short.clone().unwrap_or_default(),
        "emails": a.emails.join("\n"),
        "members": a.members.iter().map(|m| format!("{}: {}", m.name, m.emails.join(", "))).collect::<Vec<_>>().join("\n"),
    })
}

/// The directory a posted form asks for: each agency of `current` with the
/// form's name, short name, addresses and members; or what is wrong, by
/// agency name.
fn posted(current: &[Agency], form: &HashMap<String, String>) -> Result<Vec<Agency>, Vec<String>> {
    let mut errors = Vec::new();
    let field = |kind: &str, code: &str| form.get(&format!("{kind}.{code}")).map(|v| v.trim().to_string());
    let split = |v: &str| -> Vec<String> {
        v.split(|c: char| c == ',' || c == ';' || c.is_whitespace())
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    };
    let agencies = current
        .iter()
        .map(|a| {
            let code = a.code.as_str();
            let name = field("name", code).unwrap_or_else(|| a.name.clone());
            if name.is_empty() {
                errors.push(format!("{}: tên cơ quan không được để trống", a.name));
            }
            let short = field("short", code).filter(|s| !s.is_empty());
            let emails = field("emails", code).map_or_else(|| a.emails.clone(), |v| split(&v));
            let members = match field("members", code) {
                None => a.members.clone(),
                Some(text) => text
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .filter_map(|line| match line.split_once(':') {
                        Some((n, addresses)) if !n.trim().is_empty() => Some(Member {
                            name: n.trim().to_string(),
                            emails: split(addresses),
                        }),
                        _ => {
                            errors.push(format!(
                                "{}: dòng thành viên «{line}» cần dạng «Tên: địa chỉ, địa chỉ»",
                                a.name
                            ));
                            None
                        }
                    })
                    .collect(),
            };
            Agency {
                name,
                short,
                emails,
                members,
                ..a.clone()
            }
        })
        .collect();
    if errors.is_empty() {
        Ok(agencies)
    } else {
        Err(errors)
    }
}

/// The new plan text and definition, checked as any plan file; or the
/// parser's messages (Vietnamese) without file positions.
fn rewritten(
    plan: &PlanView,
    text: &str,
    agencies: &[Agency],
) -> Result<(String, crate::plan::PlanDefinition), Vec<String>> {
    let new_text = crate::plan::directory::with_agencies(text, agencies).map_err(|e| vec![e.to_string()])?;
    let file = plan
        .plan
        .source
        .as_ref()
        .map_or_else(|| format!("{}.toml", plan.id), |s| s.file.clone());
    let definition = crate::plan::parse_bounded(std::path::Path::new(&file), &new_text).map_err(|diags| {
        diags
            .iter()
            .map(|d| match &d.hint {
                Some(h) => format!("{} ({h})", d.message),
                None => d.message.clone(),
            })
            .collect::<Vec<_>>()
    })?;
    Ok((new_text, definition))
}

/// What saving would change, agency by agency, in words.
pub(super) fn changes(plan: &PlanView, new: &[Agency]) -> Vec<Value> {
    let old = &plan.plan.agencies;
    let mut out: Vec<Value> = Vec::new();
    for a in new {
        let Some(before) = old.iter().find(|o| o.code == a.code) else {
            continue;
        };
        let mut lines: Vec<String> = Vec::new();
        if before.name != a.name {
            lines.push(format!("Tên: «{}» → «{}»", before.name, a.name));
        }
        if before.short != a.short {
            lines.push(format!(
                "Tên ngắn: «{}» → «{}»",
                before.short.clone().unwrap_or_default(),
                a.short.clone().unwrap_or_default()
            ));
        }
        let addresses = address_changes(std::slice::from_ref(before), std::slice::from_ref(a));
        let mut notice = None;
        for c in addresses {
            if !c.added.is_empty() {
                lines.push(format!("Thêm địa chỉ: {}", c.added.join(", ")));
            }
            if !c.removed.is_empty() {
                lines.push(format!("Bỏ địa chỉ: {}", c.removed.join(", ")));
            }
            if !c.to.is_empty() {
                notice = Some(c.to.join(", "));
            }
        }
        if before.members.len() != a.members.len()
            || before.members.iter().zip(&a.members).any(|(x, y)| x.name != y.name)
        {
            lines.push(format!(
                "Thành viên: {} → {}",
                before
                    .members
                    .iter()
                    .map(|m| m.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                a.members.iter().map(|m| m.name.as_str()).collect::<Vec<_>>().join(", ")
            ));
        }
        if !lines.is_empty() {
            out.push(json!({ "code": a.code, "name": before.name, "lines": lines, "notice": notice }));
        }
    }
    out
}

/// `GET /admin/agencies[?plan=]`: the directory as a form.
async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let result: PageResult = async {
        let caller = admin(&state, &headers, &uri).await?;
        let refuse = refusal(&caller);
        let plans = state.plan_views().await?;
        let plan = chosen(&plans, q.get("plan")).map_err(&refuse)?;
        let notices = super::flash::take(&state, &headers).await?;
        let editable = text_in_force(&state, plan).await?.is_some();
        let mut ctx = context(
            plan,
            &plans,
            plan.plan.agencies.iter().map(agency_fields).collect(),
            editable,
        );
        ctx["notices"] = json!(notices);
        Ok(render(&state, "directory.html", Some(&caller), ctx))
    }
    .await;
    finish(&state, result)
}

fn context(plan: &PlanView, plans: &[PlanView], agencies: Vec<Value>, editable: bool) -> Value {
    json!({
        "title": "Danh bạ cơ quan",
        "plan": plan.id,
        "plan_title": plan.plan.header.as_ref().map(|h| h.title.clone()),
        "agencies": agencies,
        "editable": editable,
        "source": plan.plan.source.as_ref().map(|s| s.file.clone()),
        "source_sha": plan.plan.source.as_ref().map(|s| s.sha256.clone()),
        "changes": Value::Null, "errors": [], "notices": { "done": [], "error": [] },
        "plan_choices": plans.iter().filter(|p| p.plan.header.is_some())
            .map(|p| json!({ "id": p.id, "title": p.plan.header.as_ref().map(|h| h.title.clone()) })).collect::<Vec<_>>(),
        "plans": plans_nav(plans),
    })
}

/// `POST /admin/agencies`: `action=check` shows what would change;
/// `action=save` applies it. Either way the form keeps what was typed.
async fn submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let result: PageResult = async {
        let caller = admin(&state, &headers, &uri).await?;
        let refuse = refusal(&caller);
        caller
            .check_csrf(form.get("csrf").map(String::as_str))
            .map_err(&refuse)?;
        let plans = state.plan_views().await?;
        let plan = chosen(&plans, form.get("plan")).map_err(&refuse)?;
        let text = text_in_force(&state, plan).await?.ok_or_else(|| {
            refuse(WebError::new(
                axum::http::StatusCode::CONFLICT,
                "plan_text_missing",
                "kho chưa giữ nội dung tệp kế hoạch đang có hiệu lực (nạp từ bản cũ); hãy nạp lại tệp kế hoạch một lần ở trang Quản trị rồi sửa danh bạ",
            ))
        })?;
        let typed: Vec<Value> = plan
            .plan
            .agencies
            .iter()
            .map(|a| {
                let code = a.code.as_str();
                let get = |k: &str| form.get(&format!("{k}.{code}")).cloned().unwrap_or_default();
                json!({ "code": code, "name": get("name"), "short": get("short"), "emails": get("emails"), "members": get("members") })
            })
            .collect();
        let mut ctx = context(plan, &plans, typed, true);
        let checked = posted(&plan.plan.agencies, &form).and_then(|agencies| rewritten(plan, &text, &agencies));
        let (new_text, definition) = match checked {
            Ok(ok) => ok,
            Err(errors) => {
                ctx["errors"] = json!(errors);
                let mut page = render(&state, "directory.html", Some(&caller), ctx);
                *page.status_mut() = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
                return Ok(page);
            }
        };
        let changed = changes(plan, &definition.agencies);
        if form.get("action").map(String::as_str) != Some("save") || changed.is_empty() {
            ctx["changes"] = json!(changed);
            return Ok(render(&state, "directory.html", Some(&caller), ctx));
        }
        // Saved over the plan the form was made from, never over a change
        // someone made meanwhile.
        let in_force = plan.plan.source.as_ref().map(|s| s.sha256.as_str());
        if form.get("source").map(String::as_str) != in_force {
            return Err(refuse(WebError::new(
                axum::http::StatusCode::CONFLICT,
                "directory_changed",
                "danh bạ (hoặc kế hoạch) vừa được thay đổi sau khi trang này được mở; hãy mở lại trang Danh bạ cơ quan rồi sửa lại — chưa ghi gì",
            )));
        }
        let by = caller.user.actor(caller.channel.clone());
        let loaded = state
            .engine
            .load_plan_for(&definition, by, None)
            .await
            .map_err(|e| refuse(WebError::from(e)))?;
        if let Err(e) = state.engine.catch_up().await {
            tracing::warn!(error = %e, "đã lưu danh bạ nhưng chưa cập nhật được các khung nhìn");
        }
        tracing::info!(plan = %plan.id, by = %caller.user.email, events = loaded.report.events_written, bytes = new_text.len(), "sửa danh bạ cơ quan trên web");
        let told: Vec<String> = changed.iter().filter_map(|c| c["notice"].as_str().map(str::to_string)).collect();
        let message = if told.is_empty() {
            format!("Đã lưu danh bạ: {} cơ quan thay đổi.", changed.len())
        } else {
            format!(
                "Đã lưu danh bạ: {} cơ quan thay đổi; thư báo thay đổi sẽ gửi đến địa chỉ cũ: {}.",
                changed.len(),
                told.join("; ")
            )
        };
        super::flash::push(&state, &headers, super::flash::Kind::Done, &message).await?;
        Ok(redirect(&format!("/admin/agencies?plan={}", super::pages::urlencode(&plan.id))))
    }
    .await;
    finish(&state, result)
}

/// `GET /plans/{plan}/ke-hoach.toml`: the plan file in force (admins and
/// auditors), as the store keeps it.
async fn plan_in_force(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(plan): Path<String>,
) -> Response {
    let result: PageResult = async {
        let caller = signed_in(&state, &headers, &uri).await?;
        let refuse = refusal(&caller);
        if !(caller.user.has(Role::Admin) || caller.user.has(Role::Auditor)) {
            return Err(refuse(WebError::forbidden_role("tải tệp kế hoạch")));
        }
        let plans = state.plan_views().await?;
        let view = chosen(&plans, Some(&plan)).map_err(&refuse)?;
        let text = text_in_force(&state, view).await?.ok_or_else(|| {
            refuse(WebError::not_found(
                "kho chưa giữ nội dung tệp kế hoạch này (nạp từ bản cũ); nạp lại tệp một lần để tải được",
            ))
        })?;
        let name = view
            .plan
            .source
            .as_ref()
            .map_or_else(|| format!("{plan}.toml"), |s| s.file_name());
        Ok(super::lists::attachment(
            text.into_bytes(),
            "application/toml; charset=utf-8",
            &name,
        ))
    }
    .await;
    finish(&state, result)
}

/// `POST /admin/plans`: a plan file picked (multipart) or pasted;
/// `action=check` previews what loading it would change, writing nothing.
async fn admin_load_plan(State(state): State<AppState>, headers: HeaderMap, uri: Uri, request: Request) -> Response {
    let result = async {
        let caller = signed_in_as(&state, &headers, &uri, Role::Admin, "nạp kế hoạch").await?;
        let refuse = refusal(&caller);
        // The form posts the file picked (multipart) or the text typed.
        let (fields, uploads) = if files::is_multipart(&request) {
            files::read_parts(&state, request, "file", || {
                WebError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too_large",
                    "tệp kế hoạch quá lớn để tải lên ở đây (tối đa 1 MiB); nạp bằng lệnh kehoach plan load",
                )
            })
            .await
            .map_err(&refuse)?
        } else {
            let (form, _) = task_form(&state, request).await.map_err(&refuse)?;
            (form, Vec::new())
        };
        let field = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        caller.check_csrf(field("csrf").as_deref()).map_err(&refuse)?;
        let text = match uploads.into_iter().next() {
            Some((name, bytes)) => String::from_utf8(bytes).map_err(|_| {
                refuse(WebError::bad_request(format!(
                    "tệp {name:?} không phải văn bản UTF-8; tệp kế hoạch là văn bản TOML (xem docs/plan-format.md)"
                )))
            })?,
            None => field("plan").unwrap_or_default(),
        };
        let check_only = field("action").as_deref() == Some("check");
        let plans = state.plan_views().await?;
        if check_only {
            let ctx = match crate::plan::parse_bounded(std::path::Path::new(forms::UPLOADED_PLAN), &text) {
                Err(diags) => json!({
                    "outcome": { "error": { "message": format!("{} lỗi trong tệp kế hoạch; chưa nạp gì", diags.len()),
                                 "diagnostics": diags.iter().map(|d| d.to_string()).collect::<Vec<_>>() } },
                    "failed": true, "plan_text": text,
                }),
                Ok(plan) => {
                    json!({ "preview": plan_preview(&state, &caller, &plans, &plan).await?, "plan_text": text })
                }
            };
            let failed = ctx["failed"] == json!(true);
            let mut page = admin_page(&state, &caller, ctx).await.map_err(&refuse)?;
            if failed {
                *page.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            }
            return Ok(page);
        }
        let (status, outcome) = forms::load_plan_text(&state, &caller, &text).await.map_err(&refuse)?;
        let failed = !status.is_success();
        let mut ctx = json!({ "outcome": outcome, "failed": failed });
        if failed {
            ctx["plan_text"] = json!(text);
        }
        let mut page = admin_page(&state, &caller, ctx).await.map_err(&refuse)?;
        *page.status_mut() = status;
        Ok(page)
    }
    .await;
    finish(&state, result)
}

/// What loading `plan` would change against the plan in force: tasks
/// added and withdrawn, the directory's changes and the notices that
/// would go to old addresses.
async fn plan_preview(
    state: &AppState,
    caller: &Caller,
    plans: &[PlanView],
    plan: &crate::plan::PlanDefinition,
) -> Result<Value, WebError> {
    let id = plan.id().to_string();
    let new_ids: Vec<String> = plan.tasks.iter().map(|t| t.id.to_string()).collect();
    let in_force = plans.iter().find(|p| p.id == id && p.plan.header.is_some());
    // The tasks in force (read through the lists' index): every task of
    // the plan not withdrawn already.
    let old_ids: Vec<String> = match in_force {
        Some(_) => state
            .store()
            .plan_task_views(&id, &asker(&caller.user))
            .await?
            .iter()
            .filter(|v| !v.task.withdrawn)
            .map(|v| task_ids(v).1.to_string())
            .collect(),
        None => Vec::new(),
    };
    let added: Vec<&String> = new_ids.iter().filter(|t| !old_ids.contains(t)).collect();
    let withdrawn: Vec<&String> = old_ids.iter().filter(|t| !new_ids.contains(t)).collect();
    Ok(json!({
        "plan": id, "title": plan.header.title, "new": in_force.is_none(),
        "tasks": plan.tasks.len(), "added": added, "withdrawn": withdrawn,
        "agencies": plan.agencies.len(),
        "directory": in_force.map(|p| changes(p, &plan.agencies)).unwrap_or_default(),
    }))
}
