//! `user add|list|link|disable|enable|role|history` and `token create|revoke|list`.
//! Every change is an event of the account first (stamped with the
//! operator at this terminal), then a change of the tables.

use super::args::{Format, TokenCommand, UserCommand};
use super::output::{print_json, table};
use super::{CliError, Context};
use crate::accounts::history::HistoryEntry;
use crate::accounts::store::token_id;
use crate::accounts::store::NewUser;
use crate::accounts::{parse_roles, AccountError, Email, User};
use crate::config::MailSettings;
use crate::domain::ids::{AgencyCode, PersonName};
use crate::domain::task::Actor;
use crate::engine::Engine;
use crate::engine::{host_name, os_user};
use serde_json::json;

impl From<AccountError> for CliError {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::Store(s) => CliError::Store(s),
            AccountError::Engine(e) => CliError::Engine(e),
            other => CliError::Input(other.to_string()),
        }
    }
}

/// The sign-in address a link token opens.
/// Who a CLI account command is recorded as: the operator at this terminal.
fn operator() -> Actor {
    Actor::operator(&os_user(), &host_name())
}

pub fn signin_url(base_url: &str, token: &str) -> String {
    format!("{}/signin/{token}", base_url.trim_end_matches('/'))
}

async fn known_agency(engine: &Engine, code: &str) -> Result<AgencyCode, CliError> {
    let agency = AgencyCode::parse_loose(code)?;
    let plans = engine.store.plan_views().await?;
    if plans.is_empty() {
        return Err(CliError::Input(
            "chưa nạp kế hoạch nào nên chưa có danh mục cơ quan; chạy `kehoach plan load workflows/*.toml` trước"
                .into(),
        ));
    }
    if !plans.iter().any(|p| p.plan.agency(&agency).is_some()) {
        return Err(AccountError::UnknownAgency(agency.to_string()).into());
    }
    Ok(agency)
}

fn print_link(ctx: &Context, user: &User, token: &str, created: bool) {
    let url = signin_url(&MailSettings::resolve(&ctx.file).base_url, token);
    match ctx.format {
        Format::Json => print_json(&json!({ "user": user, "signin_url": url })),
        _ => {
            if created {
                println!(
                    "Đã tạo người dùng {} <{}> — {} ({})",
                    user.name.as_str(),
                    user.email,
                    user.agency,
                    user.roles_vi()
                );
            }
            println!("Liên kết đăng nhập một lần (hết hạn sau 7 ngày):\n{url}");
        }
    }
}

pub async fn user(ctx: &Context, cmd: UserCommand) -> Result<(), CliError> {
    let engine = ctx.engine().await?;
    engine.catch_up().await?;
    let result = user_command(ctx, &engine, cmd).await;
    engine.store.close().await;
    result
}

async fn user_command(ctx: &Context, engine: &Engine, cmd: UserCommand) -> Result<(), CliError> {
    match cmd {
        UserCommand::Add {
            agency,
            name,
            email,
            roles,
        } => {
            let new = NewUser {
                email: Email::parse(&email)?,
                name: PersonName::parse_new(&name)?,
                roles: parse_roles(&roles.join(","))?,
                agency: known_agency(engine, &agency).await?,
            };
            let (user, token) = engine.add_user(new, operator()).await?;
            print_link(ctx, &user, &token, true);
            Ok(())
        }
        UserCommand::Link { email } => {
            let (user, token) = engine.new_signin_link(&Email::parse(&email)?, operator()).await?;
            print_link(ctx, &user, &token, false);
            Ok(())
        }
        UserCommand::List => {
            let users = engine.store.all_users().await?;
            match ctx.format {
                Format::Json => print_json(
                    &users
                        .iter()
                        .map(|(u, disabled)| {
                            let mut v = serde_json::to_value(u).unwrap_or_default();
                            v["disabled"] = json!(disabled);
                            v
                        })
                        .collect::<Vec<_>>(),
                ),
                _ => {
                    let rows: Vec<Vec<String>> = users
                        .iter()
                        .map(|(u, disabled)| {
                            vec![
                                u.email.to_string(),
                                u.name.as_str().to_string(),
                                u.agency.to_string(),
                                u.roles_vi(),
                                if u.has_password { "có" } else { "chưa đặt" }.to_string(),
                                if *disabled { "bị khóa" } else { "hoạt động" }.to_string(),
                            ]
                        })
                        .collect();
                    println!(
                        "{}",
                        table(
                            &["E-mail", "Họ tên", "Cơ quan", "Vai trò", "Mật khẩu", "Trạng thái"],
                            &rows
                        )
                    );
                }
            }
            Ok(())
        }
        UserCommand::Disable { email } => switch(ctx, engine, &email, true).await,
        UserCommand::Enable { email } => switch(ctx, engine, &email, false).await,
        UserCommand::TotpReset { email } => {
            let (user, was) = engine.disable_totp(&Email::parse(&email)?, operator()).await?;
            match ctx.format {
                Format::Json => print_json(&json!({ "email": user.email, "changed": was })),
                _ if was => println!(
                    "Đã tắt xác thực hai bước của {}; lần đăng nhập sau{} thiết lập lại.",
                    user.email,
                    if user.needs_totp() { " phải" } else { " có thể" }
                ),
                _ => println!("{} chưa bật xác thực hai bước; không đổi gì.", user.email),
            }
            Ok(())
        }
        UserCommand::Role { email, roles } => {
            let roles = parse_roles(&roles.join(","))?;
            let change = engine.set_roles(&Email::parse(&email)?, roles, operator()).await?;
            let names = |r: &[crate::accounts::Role]| crate::accounts::Role::list_vi(r);
            match ctx.format {
                Format::Json => print_json(&json!({
                    "email": change.user.email, "roles": change.user.roles,
                    "granted": change.granted, "revoked": change.revoked,
                })),
                _ if change.granted.is_empty() && change.revoked.is_empty() => {
                    println!(
                        "{} đã có đúng các vai trò {}; không đổi gì.",
                        change.user.email,
                        change.user.roles_vi()
                    )
                }
                _ => println!(
                    "Vai trò của {}: {} (cấp: {}; thu hồi: {})",
                    change.user.email,
                    change.user.roles_vi(),
                    if change.granted.is_empty() {
                        "—".to_string()
                    } else {
                        names(&change.granted)
                    },
                    if change.revoked.is_empty() {
                        "—".to_string()
                    } else {
                        names(&change.revoked)
                    },
                ),
            }
            Ok(())
        }
        UserCommand::History { email } => {
            let email = Email::parse(&email)?;
            let (user, _) = engine
                .store
                .user_by_email_any(&email)
                .await?
                .ok_or_else(|| CliError::from(AccountError::UnknownUser(email.to_string())))?;
            let entries: Vec<HistoryEntry> = engine
                .store
                .account_events(&user.id)
                .await?
                .iter()
                .map(|(seq, e)| HistoryEntry::new(*seq, e))
                .collect();
            match ctx.format {
                Format::Json => print_json(&json!({ "account": user.id, "email": user.email, "events": entries })),
                _ => {
                    let rows: Vec<Vec<String>> = entries
                        .iter()
                        .map(|e| vec![e.local_time.clone(), e.actor_text.clone(), e.what.clone()])
                        .collect();
                    println!(
                        "Lịch sử tài khoản {} <{}> ({})",
                        user.name.as_str(),
                        user.email,
                        user.id
                    );
                    println!("{}", table(&["Thời gian", "Người thực hiện", "Việc"], &rows));
                    if entries.is_empty() {
                        println!("Chưa có sự kiện nào: tài khoản có từ bản trước, được ghi nhận ở lệnh ghi tiếp theo.");
                    }
                }
            }
            Ok(())
        }
    }
}

/// `user disable` / `user enable`.
async fn switch(ctx: &Context, engine: &Engine, email: &str, disable: bool) -> Result<(), CliError> {
    let (user, changed) = engine.set_disabled(&Email::parse(email)?, disable, operator()).await?;
    match ctx.format {
        Format::Json => print_json(&json!({ "email": user.email, "disabled": disable, "changed": changed })),
        _ => println!(
            "{} {}{}",
            if disable { "Đã khóa" } else { "Đã mở khóa" },
            user.email,
            match (changed, disable) {
                (false, true) => " (đã bị khóa từ trước)",
                (false, false) => " (vốn đang hoạt động)",
                (true, true) => "; các phiên đăng nhập đã kết thúc, mã API không còn dùng được",
                (true, false) => "",
            }
        ),
    }
    Ok(())
}

pub async fn token(ctx: &Context, cmd: TokenCommand) -> Result<(), CliError> {
    let engine = ctx.engine().await?;
    let result = token_command(ctx, &engine, cmd).await;
    engine.store.close().await;
    result
}

async fn token_command(ctx: &Context, engine: &Engine, cmd: TokenCommand) -> Result<(), CliError> {
    match cmd {
        TokenCommand::Create { email, label } => {
            let email = Email::parse(&email)?;
            let user = engine
                .store
                .user_by_email(&email)
                .await?
                .ok_or_else(|| CliError::from(AccountError::UnknownUser(email.to_string())))?;
            let token = engine.create_api_token(&user, &label, operator()).await?;
            let id = token_id(&crate::accounts::store::digest(&token));
            match ctx.format {
                Format::Json => print_json(&json!({ "email": user.email, "label": label, "id": id, "token": token })),
                _ => {
                    eprintln!(
                        "Mã truy cập API {id} cho {} ({}) — chỉ hiện một lần, hãy lưu lại:",
                        user.email, label
                    );
                    println!("{token}");
                }
            }
        }
        TokenCommand::Revoke { id } => {
            let (token, changed) = engine.revoke_api_token(id.trim(), operator()).await?;
            match ctx.format {
                Format::Json => print_json(&json!({ "token": token, "changed": changed })),
                _ => println!(
                    "Đã thu hồi mã truy cập API {} ({}) của {}{}",
                    token.id,
                    token.label,
                    token.email,
                    if changed { "" } else { " (đã thu hồi từ trước)" }
                ),
            }
        }
        TokenCommand::List { email } => {
            let email = email.as_deref().map(Email::parse).transpose()?;
            if let Some(e) = &email {
                if engine.store.user_by_email_any(e).await?.is_none() {
                    return Err(AccountError::UnknownUser(e.to_string()).into());
                }
            }
            let tokens = engine.store.api_tokens(email.as_ref()).await?;
            match ctx.format {
                Format::Json => print_json(&tokens),
                _ => {
                    let rows: Vec<Vec<String>> = tokens
                        .iter()
                        .map(|t| {
                            vec![
                                t.id.clone(),
                                t.label.clone(),
                                t.email.clone(),
                                t.created_at.clone(),
                                if t.revoked { "đã thu hồi" } else { "còn dùng" }.to_string(),
                            ]
                        })
                        .collect();
                    println!(
                        "{}",
                        table(&["Mã", "Nhãn", "Người dùng", "Tạo lúc", "Trạng thái"], &rows)
                    );
                }
            }
        }
    }
    Ok(())
}
