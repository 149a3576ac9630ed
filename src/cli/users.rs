//! `user add|list|link` and `token create`.

use super::args::{Format, TokenCommand, UserCommand};
use super::output::{print_json, table};
use super::{CliError, Context};
use crate::accounts::store::NewUser;
use crate::accounts::{parse_roles, AccountError, Email, User};
use crate::config::MailSettings;
use crate::domain::ids::{AgencyCode, PersonName};
use crate::engine::Engine;
use serde_json::json;

impl From<AccountError> for CliError {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::Store(s) => CliError::Store(s),
            other => CliError::Input(other.to_string()),
        }
    }
}

/// The sign-in address a link token opens.
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
                    user.roles_text()
                );
            }
            println!("Liên kết đăng nhập một lần (hết hạn sau 7 ngày):\n{url}");
        }
    }
}

pub async fn user(ctx: &Context, cmd: UserCommand) -> Result<(), CliError> {
    let engine = ctx.engine().await?;
    engine.catch_up().await?;
    let now = engine.clock.now();
    let result = match cmd {
        UserCommand::Add {
            agency,
            name,
            email,
            roles,
        } => {
            let new = NewUser {
                email: Email::parse(&email)?,
                name: PersonName::parse(&name)?,
                roles: parse_roles(&roles.join(","))?,
                agency: known_agency(&engine, &agency).await?,
            };
            let (user, token) = engine.store.add_user(new, now).await?;
            print_link(ctx, &user, &token, true);
            Ok(())
        }
        UserCommand::Link { email } => {
            let (user, token) = engine.store.new_signin_link(&Email::parse(&email)?, now).await?;
            print_link(ctx, &user, &token, false);
            Ok(())
        }
        UserCommand::List => {
            let users = engine.store.users().await?;
            match ctx.format {
                Format::Json => print_json(&users),
                _ => {
                    let rows: Vec<Vec<String>> = users
                        .iter()
                        .map(|u| {
                            vec![
                                u.email.to_string(),
                                u.name.as_str().to_string(),
                                u.agency.to_string(),
                                u.roles_text(),
                                if u.has_password { "có" } else { "chưa đặt" }.to_string(),
                            ]
                        })
                        .collect();
                    println!(
                        "{}",
                        table(&["E-mail", "Họ tên", "Cơ quan", "Vai trò", "Mật khẩu"], &rows)
                    );
                }
            }
            Ok(())
        }
    };
    engine.store.close().await;
    result
}

pub async fn token(ctx: &Context, cmd: TokenCommand) -> Result<(), CliError> {
    let TokenCommand::Create { email, label } = cmd;
    let engine = ctx.engine().await?;
    let email = Email::parse(&email)?;
    let user = engine
        .store
        .user_by_email(&email)
        .await?
        .ok_or_else(|| CliError::from(AccountError::UnknownUser(email.to_string())))?;
    let token = engine.store.create_api_token(&user, &label, engine.clock.now()).await?;
    match ctx.format {
        Format::Json => print_json(&json!({ "email": user.email, "label": label, "token": token })),
        _ => {
            eprintln!(
                "Mã truy cập API cho {} ({}) — chỉ hiện một lần, hãy lưu lại:",
                user.email, label
            );
            println!("{token}");
        }
    }
    engine.store.close().await;
    Ok(())
}
