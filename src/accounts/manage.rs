//! Managing accounts: each change is first recorded as an event of the
//! account's aggregate (through the engine, hash-chained like every other
//! event), then applied to the `users`/`api_tokens` tables the web layer
//! reads. A crash in between leaves the tables behind the events, which
//! `audit verify` reports; running the same command again catches the table
//! up (the aggregate records nothing twice, the table update is idempotent).

use super::history::{AccountAction, AccountCommand, AccountRejection};
use super::store::{digest, hash_password, secret, session_id_hash, token_id, NewUser, TokenRow, LINK_TTL};
use super::{AccountError, Email, Role, User};
use crate::domain::task::{Actor, Channel};
use crate::engine::{system_actor, Engine, EngineError};

/// What `user role` changed.
#[derive(Debug, Clone, PartialEq)]
pub struct RolesChange {
    pub user: User,
    pub granted: Vec<Role>,
    pub revoked: Vec<Role>,
}

impl Engine {
    pub(crate) async fn account_command(
        &self,
        user_id: &str,
        by: Actor,
        action: AccountAction,
    ) -> Result<(), AccountError> {
        self.ensure_recorded(user_id).await?;
        let command = AccountCommand {
            stamp: self.stamp(by),
            action,
        };
        Ok(self.execute_account(user_id, command, false).await?)
    }

    /// Gives a user whose row predates account histories (a store made by
    /// an earlier release) its first event, `AccountRecorded`, saying what
    /// the tables say. Nothing for a user who has a history.
    async fn ensure_recorded(&self, user_id: &str) -> Result<bool, AccountError> {
        if !self.store.account_events(user_id).await?.is_empty() {
            return Ok(false);
        }
        let Some(snapshot) = self.store.account_snapshot(user_id).await? else {
            return Ok(false);
        };
        let command = AccountCommand {
            stamp: self.stamp(system_actor("account-migration")),
            action: AccountAction::Record(snapshot),
        };
        self.execute_account(user_id, command, true).await?;
        Ok(true)
    }

    /// Records every user without a history (see `ensure_recorded`);
    /// returns how many were recorded. Run when a command that writes opens
    /// the store, and at `serve` start.
    pub async fn record_unrecorded_accounts(&self) -> Result<usize, AccountError> {
        let mut recorded = 0;
        for id in self.store.users_without_history().await? {
            if self.ensure_recorded(&id).await? {
                recorded += 1;
            }
        }
        if recorded > 0 {
            tracing::info!(accounts = recorded, "đã ghi nhận lịch sử cho tài khoản có từ bản trước");
        }
        Ok(recorded)
    }

    /// Creates a user with a one-time sign-in link; returns the user and the
    /// link's token (shown once, never recorded).
    pub async fn add_user(&self, new: NewUser, by: Actor) -> Result<(User, String), AccountError> {
        if self.store.user_by_email_any(&new.email).await?.is_some() {
            return Err(AccountError::DuplicateEmail(new.email.to_string()));
        }
        let user = User {
            id: secret()[..16].to_string(),
            email: new.email,
            name: new.name,
            agency: new.agency,
            roles: new.roles,
            has_password: false,
        };
        let token = secret();
        let link_hash = digest(&token);
        let now = self.clock.now();
        let action = AccountAction::Create {
            email: user.email.to_string(),
            name: user.name.clone(),
            agency: user.agency.clone(),
            roles: user.roles.clone(),
            link: token_id(&link_hash),
            link_expires_at: now + LINK_TTL,
        };
        let command = AccountCommand {
            stamp: self.stamp(by),
            action,
        };
        self.execute_account(&user.id, command, false).await?;
        self.store.insert_user(&user, &link_hash, now).await?;
        Ok((user, token))
    }

    /// An enabled user by e-mail, or `UnknownUser`.
    async fn enabled_user(&self, email: &Email) -> Result<User, AccountError> {
        self.store
            .user_by_email(email)
            .await?
            .ok_or_else(|| AccountError::UnknownUser(email.to_string()))
    }

    /// Any user by e-mail, enabled or not, or `UnknownUser`.
    async fn any_user(&self, email: &Email) -> Result<(User, bool), AccountError> {
        self.store
            .user_by_email_any(email)
            .await?
            .ok_or_else(|| AccountError::UnknownUser(email.to_string()))
    }

    /// A new one-time sign-in link for an enabled user (a forgotten password).
    pub async fn new_signin_link(&self, email: &Email, by: Actor) -> Result<(User, String), AccountError> {
        self.new_signin_link_for(email, by, LINK_TTL).await
    }

    /// A new one-time sign-in link valid for `ttl`.
    pub async fn new_signin_link_for(
        &self,
        email: &Email,
        by: Actor,
        ttl: chrono::Duration,
    ) -> Result<(User, String), AccountError> {
        let user = self.enabled_user(email).await?;
        let token = secret();
        let link_hash = digest(&token);
        let expires_at = self.clock.now() + ttl;
        let action = AccountAction::IssueLink {
            link: token_id(&link_hash),
            expires_at,
        };
        self.account_command(&user.id, by, action).await?;
        self.store.insert_signin_link(&user.id, &link_hash, expires_at).await?;
        Ok((user, token))
    }

    /// Uses up a sign-in link to set the user's password and starts a
    /// session: returns the user, the session's cookie value and its CSRF
    /// token. Recorded as the account itself acting through that session.
    /// The account's other unused links stop working and its other
    /// sessions end (`SigninLinksRevoked`, `SessionsEnded`).
    pub async fn redeem_signin_link(
        &self,
        token: &str,
        password: String,
    ) -> Result<(User, String, String), AccountError> {
        let now = self.clock.now();
        let user = self
            .store
            .signin_link_user(token, now)
            .await?
            .ok_or(AccountError::LinkInvalid)?;
        let hash = hash_password(password).await?;
        let session = secret();
        let by = user.actor(Channel::Web {
            session: session_id_hash(&session),
        });
        let by_again = by.clone();
        let action = AccountAction::RedeemLink {
            link: token_id(&digest(token)),
        };
        match self.account_command(&user.id, by, action).await {
            Err(AccountError::Engine(EngineError::AccountRejected {
                source: AccountRejection::LinkUnusable(_),
                ..
            })) => return Err(AccountError::LinkInvalid),
            other => other?,
        }
        if !self.store.use_signin_link(token, &user.id, &hash, now).await? {
            return Err(AccountError::LinkInvalid);
        }
        self.end_sessions_if_any(&user, by_again).await?;
        let user = User {
            has_password: true,
            ..user
        };
        let csrf = self.store.open_session(&user, &session, now).await?;
        Ok((user, session, csrf))
    }

    /// Makes a user's roles exactly `roles`.
    pub async fn set_roles(&self, email: &Email, roles: Vec<Role>, by: Actor) -> Result<RolesChange, AccountError> {
        let (user, _) = self.any_user(email).await?;
        let mut roles = roles;
        roles.sort();
        roles.dedup();
        if roles.is_empty() {
            return Err(AccountError::BadRole(String::new()));
        }
        self.account_command(&user.id, by.clone(), AccountAction::SetRoles(roles.clone()))
            .await?;
        self.store.set_user_roles(&user.id, &roles).await?;
        if roles != user.roles {
            // A change of privilege: the user signs in again to get them.
            self.end_sessions_if_any(&user, by).await?;
        }
        let granted = roles.iter().filter(|r| !user.roles.contains(r)).copied().collect();
        let revoked = user.roles.iter().filter(|r| !roles.contains(r)).copied().collect();
        Ok(RolesChange {
            user: User { roles, ..user },
            granted,
            revoked,
        })
    }

    /// Disables (ending its sessions; its tokens stop working) or enables a
    /// user. Returns the user and whether it changed.
    pub async fn set_disabled(&self, email: &Email, disabled: bool, by: Actor) -> Result<(User, bool), AccountError> {
        let (user, was) = self.any_user(email).await?;
        let action = if disabled {
            AccountAction::Disable
        } else {
            AccountAction::Enable
        };
        self.account_command(&user.id, by, action).await?;
        self.store.set_user_disabled(&user.id, disabled).await?;
        Ok((user, was != disabled))
    }

    /// Creates an API token for an enabled user; the token is returned once
    /// and recorded only by its id (`token_id`) and label.
    pub async fn create_api_token(&self, user: &User, label: &str, by: Actor) -> Result<String, AccountError> {
        let token = format!("kh_{}", secret());
        let hash = digest(&token);
        let action = AccountAction::CreateToken {
            token: token_id(&hash),
            label: label.to_string(),
        };
        self.account_command(&user.id, by, action).await?;
        self.store
            .insert_api_token(&hash, user, label, self.clock.now())
            .await?;
        Ok(token)
    }

    /// Revokes an API token by its id. Returns the token and whether it changed.
    pub async fn revoke_api_token(&self, id: &str, by: Actor) -> Result<(TokenRow, bool), AccountError> {
        let token = self
            .store
            .api_token_by_id(id)
            .await?
            .ok_or_else(|| AccountError::UnknownToken(id.to_string()))?;
        let action = AccountAction::RevokeToken {
            token: token.id.clone(),
        };
        self.account_command(&token.user_id, by, action).await?;
        self.store.revoke_api_token_row(&token.token_hash).await?;
        let changed = !token.revoked;
        Ok((TokenRow { revoked: true, ..token }, changed))
    }

    /// Ends every session of a user (sign out everywhere, or an
    /// administrator's decision), recorded as `SessionsEnded`; returns how
    /// many sessions there were.
    pub async fn end_sessions(&self, user: &User, by: Actor) -> Result<u64, AccountError> {
        self.account_command(&user.id, by, AccountAction::EndSessions).await?;
        Ok(self.store.end_user_sessions(&user.id).await?)
    }

    /// `end_sessions`, recorded only if the user has a session.
    pub(crate) async fn end_sessions_if_any(&self, user: &User, by: Actor) -> Result<u64, AccountError> {
        if self.store.session_count(&user.id).await? == 0 {
            return Ok(0);
        }
        self.end_sessions(user, by).await
    }
}
