//! Accounts have a history: the aggregate `Account` (id = the user's id)
//! records who created an account, granted or revoked its roles, disabled
//! or enabled it, issued or used its sign-in links, set its password, and
//! created or revoked its API tokens. Pure: no I/O, no clock; the stamp
//! comes with the command. Never a secret: a sign-in link or an API token is
//! named by its id (the first 16 hex digits of the SHA-256 stored for it).
//!
//! The `users` and `api_tokens` tables stay the operational state the web
//! layer reads; `audit verify` compares them with these aggregates.

use super::Role;
use crate::domain::ids::{AgencyCode, PersonName};
use crate::domain::task::{Actor, Stamp};
use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const AGGREGATE_TYPE: &str = "Account";

/// An API token as an imported account lists it: its id, never the token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedToken {
    pub id: String,
    pub label: String,
    pub created_at: String,
    pub revoked: bool,
}

/// A sign-in link not yet used when the account was imported: its id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedLink {
    pub id: String,
    pub expires_at: String,
}

/// What the `users` table said about an account when a store made by an
/// earlier release was opened: its history starts here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountSnapshot {
    pub email: String,
    pub name: PersonName,
    pub agency: AgencyCode,
    pub roles: Vec<Role>,
    pub disabled: bool,
    pub has_password: bool,
    pub created_at: String,
    pub tokens: Vec<RecordedToken>,
    pub open_links: Vec<RecordedLink>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AccountEvent {
    AccountCreated {
        email: String,
        name: PersonName,
        agency: AgencyCode,
        roles: Vec<Role>,
        stamp: Stamp,
    },
    /// Imported from the tables of an earlier release.
    AccountRecorded {
        #[serde(flatten)]
        account: AccountSnapshot,
        stamp: Stamp,
    },
    RoleGranted {
        role: Role,
        stamp: Stamp,
    },
    RoleRevoked {
        role: Role,
        stamp: Stamp,
    },
    AccountDisabled {
        stamp: Stamp,
    },
    AccountEnabled {
        stamp: Stamp,
    },
    SigninLinkIssued {
        link: String,
        expires_at: DateTime<Utc>,
        stamp: Stamp,
    },
    SigninLinkUsed {
        link: String,
        stamp: Stamp,
    },
    PasswordSet {
        stamp: Stamp,
    },
    TokenCreated {
        token: String,
        label: String,
        stamp: Stamp,
    },
    TokenRevoked {
        token: String,
        label: String,
        stamp: Stamp,
    },
    /// Every session of the account ended (sign out everywhere, a new
    /// password, an administrator's decision).
    SessionsEnded {
        stamp: Stamp,
    },
    /// Sign-in refused until `until` after `failures` wrong passwords or
    /// codes in a row (by the system, never with what was tried).
    SigninLocked {
        until: DateTime<Utc>,
        failures: u32,
        stamp: Stamp,
    },
    /// The account's other unused sign-in links stopped working (a new
    /// password was set).
    SigninLinksRevoked {
        links: Vec<String>,
        stamp: Stamp,
    },
    /// Two-factor sign-in turned on (the secret is never recorded).
    TotpEnabled {
        stamp: Stamp,
    },
    TotpDisabled {
        stamp: Stamp,
    },
    /// New one-time recovery codes replaced any earlier ones (never the codes).
    RecoveryCodesIssued {
        count: u32,
        stamp: Stamp,
    },
    RecoveryCodeUsed {
        stamp: Stamp,
    },
}

impl AccountEvent {
    pub fn name(&self) -> &'static str {
        match self {
            Self::AccountCreated { .. } => "AccountCreated",
            Self::AccountRecorded { .. } => "AccountRecorded",
            Self::RoleGranted { .. } => "RoleGranted",
            Self::RoleRevoked { .. } => "RoleRevoked",
            Self::AccountDisabled { .. } => "AccountDisabled",
            Self::AccountEnabled { .. } => "AccountEnabled",
            Self::SigninLinkIssued { .. } => "SigninLinkIssued",
            Self::SigninLinkUsed { .. } => "SigninLinkUsed",
            Self::PasswordSet { .. } => "PasswordSet",
            Self::TokenCreated { .. } => "TokenCreated",
            Self::TokenRevoked { .. } => "TokenRevoked",
            Self::SessionsEnded { .. } => "SessionsEnded",
            Self::SigninLocked { .. } => "SigninLocked",
            Self::SigninLinksRevoked { .. } => "SigninLinksRevoked",
            Self::TotpEnabled { .. } => "TotpEnabled",
            Self::TotpDisabled { .. } => "TotpDisabled",
            Self::RecoveryCodesIssued { .. } => "RecoveryCodesIssued",
            Self::RecoveryCodeUsed { .. } => "RecoveryCodeUsed",
        }
    }

    pub fn stamp(&self) -> &Stamp {
        match self {
            Self::AccountCreated { stamp, .. }
            | Self::AccountRecorded { stamp, .. }
            | Self::RoleGranted { stamp, .. }
            | Self::RoleRevoked { stamp, .. }
            | Self::AccountDisabled { stamp }
            | Self::AccountEnabled { stamp }
            | Self::SigninLinkIssued { stamp, .. }
            | Self::SigninLinkUsed { stamp, .. }
            | Self::PasswordSet { stamp }
            | Self::TokenCreated { stamp, .. }
            | Self::TokenRevoked { stamp, .. }
            | Self::SessionsEnded { stamp }
            | Self::SigninLocked { stamp, .. }
            | Self::SigninLinksRevoked { stamp, .. }
            | Self::TotpEnabled { stamp }
            | Self::TotpDisabled { stamp }
            | Self::RecoveryCodesIssued { stamp, .. }
            | Self::RecoveryCodeUsed { stamp } => stamp,
        }
    }

    /// What happened, in Vietnamese, for the history pages and the CLI.
    pub fn describe_vi(&self) -> String {
        let roles = |r: &[Role]| Role::list_vi(r);
        match self {
            Self::AccountCreated {
                email,
                name,
                agency,
                roles: r,
                ..
            } => format!("Tạo tài khoản {name} <{email}> — {agency}, vai trò {}", roles(r)),
            Self::AccountRecorded { account: a, .. } => format!(
                "Ghi nhận tài khoản có từ bản trước (tạo {}): {} <{}> — {}, vai trò {}{}{}, {} mã API",
                a.created_at,
                a.name,
                a.email,
                a.agency,
                roles(&a.roles),
                if a.disabled { ", đang bị khóa" } else { "" },
                if a.has_password {
                    ", đã đặt mật khẩu"
                } else {
                    ", chưa đặt mật khẩu"
                },
                a.tokens.len()
            ),
            Self::RoleGranted { role, .. } => format!("Cấp vai trò {}", role.label_vi()),
            Self::RoleRevoked { role, .. } => format!("Thu hồi vai trò {}", role.label_vi()),
            Self::AccountDisabled { .. } => "Khóa tài khoản".into(),
            Self::AccountEnabled { .. } => "Mở khóa tài khoản".into(),
            Self::SigninLinkIssued { link, expires_at, .. } => format!(
                "Tạo liên kết đăng nhập một lần {link} (hết hạn {})",
                vn_time(*expires_at)
            ),
            Self::SigninLinkUsed { link, .. } => format!("Dùng liên kết đăng nhập {link}"),
            Self::PasswordSet { .. } => "Đặt mật khẩu".into(),
            Self::TokenCreated { token, label, .. } => format!("Tạo mã truy cập API {token} ({label})"),
            Self::TokenRevoked { token, label, .. } => format!("Thu hồi mã truy cập API {token} ({label})"),
            Self::SessionsEnded { .. } => "Kết thúc mọi phiên đăng nhập".into(),
            Self::SigninLocked { until, failures, .. } => {
                format!("Tạm khóa đăng nhập đến {} sau {failures} lần nhập sai", vn_time(*until))
            }
            Self::SigninLinksRevoked { links, .. } => {
                format!("Hủy các liên kết đăng nhập chưa dùng: {}", links.join(", "))
            }
            Self::TotpEnabled { .. } => "Bật xác thực hai bước (TOTP)".into(),
            Self::TotpDisabled { .. } => "Tắt xác thực hai bước (TOTP)".into(),
            Self::RecoveryCodesIssued { count, .. } => format!("Tạo {count} mã khôi phục dùng một lần"),
            Self::RecoveryCodeUsed { .. } => "Dùng một mã khôi phục".into(),
        }
    }
}

impl DomainEvent for AccountEvent {
    fn event_type(&self) -> String {
        self.name().to_string()
    }

    fn event_version(&self) -> String {
        "1".into()
    }
}

/// What can be done to an account.
#[derive(Debug, Clone, PartialEq)]
pub enum AccountAction {
    /// A new account with its first one-time sign-in link.
    Create {
        email: String,
        name: PersonName,
        agency: AgencyCode,
        roles: Vec<Role>,
        link: String,
        link_expires_at: DateTime<Utc>,
    },
    /// Imports an account made by an earlier release; nothing if it has a history.
    Record(AccountSnapshot),
    /// Makes the roles exactly these: a grant or revocation per difference.
    SetRoles(Vec<Role>),
    Disable,
    Enable,
    IssueLink {
        link: String,
        expires_at: DateTime<Utc>,
    },
    /// Uses a sign-in link to set the password.
    RedeemLink {
        link: String,
    },
    CreateToken {
        token: String,
        label: String,
    },
    RevokeToken {
        token: String,
    },
    /// Ends every session of the account.
    EndSessions,
    /// Refuses sign-in until `until` (too many failures).
    Lock {
        until: DateTime<Utc>,
        failures: u32,
    },
    /// Turns two-factor sign-in on with `codes` new recovery codes.
    EnableTotp {
        codes: u32,
    },
    DisableTotp,
    UseRecoveryCode,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AccountCommand {
    pub stamp: Stamp,
    pub action: AccountAction,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountRejection {
    #[error("tài khoản chưa có lịch sử")]
    Unknown,
    #[error("tài khoản đã có")]
    Exists,
    #[error("tài khoản đang bị khóa")]
    Disabled,
    #[error("cần ít nhất một vai trò")]
    NoRoles,
    #[error("liên kết đăng nhập {0} không có hoặc đã dùng")]
    LinkUnusable(String),
    #[error("không có mã truy cập API {0} của tài khoản này")]
    UnknownToken(String),
    #[error("đã có mã truy cập API {0}")]
    DuplicateToken(String),
}

/// One API token of an account, as its events say.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountToken {
    pub label: String,
    pub revoked: bool,
}

/// An account as its events say it is.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Account {
    pub exists: bool,
    pub email: String,
    pub name: String,
    pub agency: String,
    /// Sorted, without duplicates.
    pub roles: Vec<Role>,
    pub disabled: bool,
    pub has_password: bool,
    pub tokens: BTreeMap<String, AccountToken>,
    /// Sign-in links by id: whether used.
    pub links: BTreeMap<String, bool>,
    #[serde(default)]
    pub totp: bool,
}

fn sorted(mut roles: Vec<Role>) -> Vec<Role> {
    roles.sort();
    roles.dedup();
    roles
}

impl Account {
    fn decide(&self, c: AccountCommand) -> Result<Vec<AccountEvent>, AccountRejection> {
        let stamp = c.stamp;
        if !self.exists && !matches!(c.action, AccountAction::Create { .. } | AccountAction::Record(_)) {
            return Err(AccountRejection::Unknown);
        }
        Ok(match c.action {
            AccountAction::Create {
                email,
                name,
                agency,
                roles,
                link,
                link_expires_at,
            } => {
                if self.exists {
                    return Err(AccountRejection::Exists);
                }
                let roles = sorted(roles);
                if roles.is_empty() {
                    return Err(AccountRejection::NoRoles);
                }
                vec![
                    AccountEvent::AccountCreated {
                        email,
                        name,
                        agency,
                        roles,
                        stamp: stamp.clone(),
                    },
                    AccountEvent::SigninLinkIssued {
                        link,
                        expires_at: link_expires_at,
                        stamp,
                    },
                ]
            }
            AccountAction::Record(mut account) => {
                if self.exists {
                    return Ok(vec![]);
                }
                account.roles = sorted(account.roles);
                vec![AccountEvent::AccountRecorded { account, stamp }]
            }
            AccountAction::SetRoles(roles) => {
                let roles = sorted(roles);
                if roles.is_empty() {
                    return Err(AccountRejection::NoRoles);
                }
                let revoked = self
                    .roles
                    .iter()
                    .filter(|r| !roles.contains(r))
                    .map(|&role| AccountEvent::RoleRevoked {
                        role,
                        stamp: stamp.clone(),
                    });
                let granted = roles
                    .iter()
                    .filter(|r| !self.roles.contains(r))
                    .map(|&role| AccountEvent::RoleGranted {
                        role,
                        stamp: stamp.clone(),
                    });
                granted.chain(revoked).collect()
            }
            AccountAction::Disable if self.disabled => vec![],
            AccountAction::Disable => vec![AccountEvent::AccountDisabled { stamp }],
            AccountAction::Enable if !self.disabled => vec![],
            AccountAction::Enable => vec![AccountEvent::AccountEnabled { stamp }],
            AccountAction::IssueLink { .. } | AccountAction::RedeemLink { .. } | AccountAction::CreateToken { .. }
                if self.disabled =>
            {
                return Err(AccountRejection::Disabled)
            }
            AccountAction::IssueLink { link, expires_at } => vec![AccountEvent::SigninLinkIssued {
                link,
                expires_at,
                stamp,
            }],
            AccountAction::RedeemLink { link } => {
                if self.links.get(&link) != Some(&false) {
                    return Err(AccountRejection::LinkUnusable(link));
                }
                let others: Vec<String> = self
                    .links
                    .iter()
                    .filter(|(id, used)| !**used && **id != link)
                    .map(|(id, _)| id.clone())
                    .collect();
                let mut events = vec![
                    AccountEvent::SigninLinkUsed {
                        link,
                        stamp: stamp.clone(),
                    },
                    AccountEvent::PasswordSet { stamp: stamp.clone() },
                ];
                if !others.is_empty() {
                    events.push(AccountEvent::SigninLinksRevoked { links: others, stamp });
                }
                events
            }
            AccountAction::CreateToken { token, label } => {
                if self.tokens.contains_key(&token) {
                    return Err(AccountRejection::DuplicateToken(token));
                }
                vec![AccountEvent::TokenCreated { token, label, stamp }]
            }
            AccountAction::EndSessions => vec![AccountEvent::SessionsEnded { stamp }],
            AccountAction::Lock { until, failures } => vec![AccountEvent::SigninLocked { until, failures, stamp }],
            AccountAction::EnableTotp { .. } if self.disabled => return Err(AccountRejection::Disabled),
            AccountAction::EnableTotp { codes } => vec![
                AccountEvent::TotpEnabled { stamp: stamp.clone() },
                AccountEvent::RecoveryCodesIssued { count: codes, stamp },
            ],
            AccountAction::DisableTotp if !self.totp => vec![],
            AccountAction::DisableTotp => vec![AccountEvent::TotpDisabled { stamp }],
            AccountAction::UseRecoveryCode => vec![AccountEvent::RecoveryCodeUsed { stamp }],
            AccountAction::RevokeToken { token } => match self.tokens.get(&token) {
                None => return Err(AccountRejection::UnknownToken(token)),
                Some(t) if t.revoked => vec![],
                Some(t) => vec![AccountEvent::TokenRevoked {
                    label: t.label.clone(),
                    token,
                    stamp,
                }],
            },
        })
    }
}

impl Aggregate for Account {
    const TYPE: &'static str = AGGREGATE_TYPE;
    type Command = AccountCommand;
    type Event = AccountEvent;
    type Error = AccountRejection;
    type Services = ();

    async fn handle(&mut self, c: AccountCommand, _: &(), sink: &EventSink<Self>) -> Result<(), AccountRejection> {
        for event in self.decide(c)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: AccountEvent) {
        match event {
            AccountEvent::AccountCreated {
                email,
                name,
                agency,
                roles,
                ..
            } => {
                self.exists = true;
                self.email = email;
                self.name = name.as_str().to_string();
                self.agency = agency.to_string();
                self.roles = sorted(roles);
            }
            AccountEvent::AccountRecorded { account: a, .. } => {
                self.exists = true;
                self.email = a.email;
                self.name = a.name.as_str().to_string();
                self.agency = a.agency.to_string();
                self.roles = sorted(a.roles);
                self.disabled = a.disabled;
                self.has_password = a.has_password;
                for t in a.tokens {
                    self.tokens.insert(
                        t.id,
                        AccountToken {
                            label: t.label,
                            revoked: t.revoked,
                        },
                    );
                }
                for l in a.open_links {
                    self.links.insert(l.id, false);
                }
            }
            AccountEvent::RoleGranted { role, .. } => {
                self.roles.push(role);
                self.roles = sorted(std::mem::take(&mut self.roles));
            }
            AccountEvent::RoleRevoked { role, .. } => self.roles.retain(|r| *r != role),
            AccountEvent::AccountDisabled { .. } => self.disabled = true,
            AccountEvent::AccountEnabled { .. } => self.disabled = false,
            AccountEvent::SigninLinkIssued { link, .. } => {
                self.links.insert(link, false);
            }
            AccountEvent::SigninLinkUsed { link, .. } => {
                self.links.insert(link, true);
            }
            AccountEvent::PasswordSet { .. } => self.has_password = true,
            AccountEvent::TokenCreated { token, label, .. } => {
                self.tokens.insert(token, AccountToken { label, revoked: false });
            }
            AccountEvent::TokenRevoked { token, .. } => {
                if let Some(t) = self.tokens.get_mut(&token) {
                    t.revoked = true;
                }
            }
            AccountEvent::SigninLinksRevoked { links, .. } => {
                for link in links {
                    self.links.insert(link, true);
                }
            }
            AccountEvent::TotpEnabled { .. } => self.totp = true,
            AccountEvent::TotpDisabled { .. } => self.totp = false,
            AccountEvent::SessionsEnded { .. }
            | AccountEvent::SigninLocked { .. }
            | AccountEvent::RecoveryCodesIssued { .. }
            | AccountEvent::RecoveryCodeUsed { .. } => {}
        }
    }
}

/// One line of an account's history, as the CLI and the admin page show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryEntry {
    pub sequence: i64,
    pub at: DateTime<Utc>,
    /// Vietnam time, `dd/mm/yyyy HH:MM`.
    pub local_time: String,
    pub actor: Actor,
    /// Who, in Vietnamese.
    pub actor_text: String,
    pub event: &'static str,
    /// What, in Vietnamese.
    pub what: String,
}

impl HistoryEntry {
    pub fn new(sequence: i64, event: &AccountEvent) -> Self {
        let stamp = event.stamp();
        let local = stamp.at.with_timezone(&chrono_tz::Asia::Ho_Chi_Minh);
        let actor_text = match &stamp.by {
            Actor::Account(p) => format!("{} <{}> ({}, qua {})", p.name, p.email, p.agency, p.channel.label_vi()),
            Actor::System { system, .. } if system == "account-migration" => {
                "Hệ thống (ghi nhận tài khoản từ bản trước)".to_string()
            }
            other => other.to_string(),
        };
        Self {
            sequence,
            at: stamp.at,
            local_time: local.format("%d/%m/%Y %H:%M").to_string(),
            actor: stamp.by.clone(),
            actor_text,
            event: event.name(),
            what: event.describe_vi(),
        }
    }
}

/// An account as the operational tables hold it, for `audit verify`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRow {
    pub id: String,
    pub email: String,
    pub name: String,
    pub agency: String,
    /// As stored: a comma-separated list.
    pub roles: String,
    pub disabled: bool,
    pub has_password: bool,
    /// Whether `users.totp_secret` is set (two-factor sign-in on).
    pub totp: bool,
    /// Token id → revoked.
    pub tokens: BTreeMap<String, bool>,
}

/// The first field where the tables and the replayed account differ:
/// (what, as the events say, as the table says).
pub fn difference(account: &Account, row: &AccountRow) -> Option<(String, String, String)> {
    let roles_text = |r: &[Role]| r.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(",");
    let table_roles = super::parse_roles(&row.roles)
        .map(|r| roles_text(&r))
        .unwrap_or_else(|_| row.roles.clone());
    let yes_no = |b: bool| if b { "có" } else { "không" }.to_string();
    let fields = [
        ("e-mail", account.email.clone(), row.email.clone()),
        ("họ tên", account.name.clone(), row.name.clone()),
        ("cơ quan", account.agency.clone(), row.agency.clone()),
        ("vai trò", roles_text(&account.roles), table_roles),
        ("bị khóa", yes_no(account.disabled), yes_no(row.disabled)),
        (
            "đã đặt mật khẩu",
            yes_no(account.has_password),
            yes_no(row.has_password),
        ),
        ("xác thực hai bước", yes_no(account.totp), yes_no(row.totp)),
    ];
    if let Some((what, events, table)) = fields.into_iter().find(|(_, a, b)| a != b) {
        return Some((what.to_string(), events, table));
    }
    for (id, t) in &account.tokens {
        match row.tokens.get(id) {
            None => {
                return Some((
                    format!("mã API {id}"),
                    "có".into(),
                    "không có trong bảng api_tokens".into(),
                ))
            }
            Some(revoked) if *revoked != t.revoked => {
                return Some((format!("mã API {id} bị thu hồi"), yes_no(t.revoked), yes_no(*revoked)))
            }
            _ => {}
        }
    }
    if let Some(id) = row.tokens.keys().find(|id| !account.tokens.contains_key(*id)) {
        return Some((
            format!("mã API {id}"),
            "không có trong lịch sử".into(),
            "có trong bảng api_tokens".into(),
        ));
    }
    None
}

/// An instant as people read it: "09:30 ngày 20/03/2024", in Vietnam's time
/// (accounts are not tied to a plan's zone).
fn vn_time(at: chrono::DateTime<chrono::Utc>) -> String {
    at.with_timezone(&chrono_tz::Asia::Ho_Chi_Minh)
        .format("%H:%M ngày %d/%m/%Y")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp() -> Stamp {
        Stamp {
            by: Actor::operator("op", "host"),
            at: "2024-01-01T00:00:00Z".parse().unwrap(),
        }
    }

    fn run(account: &mut Account, action: AccountAction) -> Result<Vec<AccountEvent>, AccountRejection> {
        let events = account.decide(AccountCommand { stamp: stamp(), action })?;
        for e in &events {
            account.apply(e.clone());
        }
        Ok(events)
    }

    fn created() -> Account {
        let mut a = Account::default();
        run(
            &mut a,
            AccountAction::Create {
                email: "a@b.vn".into(),
                name: PersonName::parse("Nguyễn Văn A").unwrap(),
                agency: AgencyCode::parse("BDV").unwrap(),
                roles: vec![Role::Member],
                link: "l1".into(),
                link_expires_at: "2024-01-08T00:00:00Z".parse().unwrap(),
            },
        )
        .unwrap();
        a
    }

    #[test]
    fn roles_are_set_as_grants_and_revocations() {
        let mut a = created();
        let events = run(&mut a, AccountAction::SetRoles(vec![Role::Supervisor, Role::Admin])).unwrap();
        let names: Vec<_> = events.iter().map(|e| e.name()).collect();
        assert_eq!(names, ["RoleGranted", "RoleGranted", "RoleRevoked"]);
        assert_eq!(a.roles, vec![Role::Supervisor, Role::Admin]);
        assert!(
            run(&mut a, AccountAction::SetRoles(vec![Role::Admin, Role::Supervisor]))
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            run(&mut a, AccountAction::SetRoles(vec![])),
            Err(AccountRejection::NoRoles)
        );
    }

    #[test]
    fn disabling_twice_records_once_and_blocks_links_and_tokens() {
        let mut a = created();
        assert_eq!(run(&mut a, AccountAction::Disable).unwrap().len(), 1);
        assert!(run(&mut a, AccountAction::Disable).unwrap().is_empty());
        let token = AccountAction::CreateToken {
            token: "t1".into(),
            label: "x".into(),
        };
        assert_eq!(run(&mut a, token.clone()), Err(AccountRejection::Disabled));
        run(&mut a, AccountAction::Enable).unwrap();
        assert_eq!(run(&mut a, token).unwrap().len(), 1);
        assert_eq!(
            run(&mut a, AccountAction::RevokeToken { token: "t2".into() }),
            Err(AccountRejection::UnknownToken("t2".into()))
        );
        assert_eq!(
            run(&mut a, AccountAction::RevokeToken { token: "t1".into() })
                .unwrap()
                .len(),
            1
        );
        assert!(a.tokens["t1"].revoked);
    }

    #[test]
    fn a_link_is_used_once() {
        let mut a = created();
        let redeem = AccountAction::RedeemLink { link: "l1".into() };
        assert_eq!(run(&mut a, redeem.clone()).unwrap().len(), 2);
        assert!(a.has_password);
        assert_eq!(run(&mut a, redeem), Err(AccountRejection::LinkUnusable("l1".into())));
    }

    #[test]
    fn a_new_password_revokes_the_other_links() {
        let mut a = created();
        run(
            &mut a,
            AccountAction::IssueLink {
                link: "l2".into(),
                expires_at: "2024-01-08T00:00:00Z".parse().unwrap(),
            },
        )
        .unwrap();
        let events = run(&mut a, AccountAction::RedeemLink { link: "l2".into() }).unwrap();
        assert_eq!(
            events.last(),
            Some(&AccountEvent::SigninLinksRevoked {
                links: vec!["l1".into()],
                stamp: stamp()
            })
        );
        assert_eq!(
            run(&mut a, AccountAction::RedeemLink { link: "l1".into() }),
            Err(AccountRejection::LinkUnusable("l1".into()))
        );
    }

    #[test]
    fn totp_is_recorded_without_secrets() {
        let mut a = created();
        let names = |e: Vec<AccountEvent>| e.iter().map(|e| e.name()).collect::<Vec<_>>();
        assert_eq!(
            names(run(&mut a, AccountAction::EnableTotp { codes: 10 }).unwrap()),
            ["TotpEnabled", "RecoveryCodesIssued"]
        );
        assert!(a.totp);
        assert_eq!(
            names(run(&mut a, AccountAction::DisableTotp).unwrap()),
            ["TotpDisabled"]
        );
        assert!(run(&mut a, AccountAction::DisableTotp).unwrap().is_empty());
    }

    #[test]
    fn nothing_happens_to_an_account_without_history() {
        let mut a = Account::default();
        assert_eq!(run(&mut a, AccountAction::Disable), Err(AccountRejection::Unknown));
        assert_eq!(run(&mut a, AccountAction::EndSessions), Err(AccountRejection::Unknown));
    }

    #[test]
    fn ending_sessions_is_recorded_each_time() {
        let mut a = created();
        let before = a.clone();
        for _ in 0..2 {
            let events = run(&mut a, AccountAction::EndSessions).unwrap();
            assert_eq!(events.iter().map(|e| e.name()).collect::<Vec<_>>(), ["SessionsEnded"]);
        }
        assert_eq!(a, before, "sessions are not part of the account's state");
    }

    #[test]
    fn tables_are_compared_field_by_field() {
        let a = created();
        let mut row = AccountRow {
            id: "x".into(),
            email: "a@b.vn".into(),
            name: "Nguyễn Văn A".into(),
            agency: "BDV".into(),
            roles: "member".into(),
            disabled: false,
            has_password: false,
            totp: false,
            tokens: BTreeMap::new(),
        };
        assert_eq!(difference(&a, &row), None);
        row.roles = "member,admin".into();
        assert_eq!(
            difference(&a, &row),
            Some(("vai trò".into(), "member".into(), "member,admin".into()))
        );
    }
}
