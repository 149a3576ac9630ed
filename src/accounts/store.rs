//! Users, sign-in links, sessions, API tokens and calendar tokens in the
//! database. Secrets are random 256-bit values; only their SHA-256 is
//! stored (passwords: argon2), except calendar tokens, which only grant
//! reading an agency's deadlines and must be shown again.

use super::{parse_roles, AccountError, Email, Role, User, MIN_PASSWORD};
use crate::domain::ids::{AgencyCode, PersonName};
use crate::domain::task::Channel;
use crate::projections::views::instant_text;
use crate::store::{Store, StoreError};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};

/// How long a one-time sign-in link stays valid.
pub const LINK_TTL: Duration = Duration::days(7);
/// How long a browser session lasts.
pub const SESSION_TTL: Duration = Duration::hours(12);

/// A fresh random secret, as 64 hex digits.
pub fn secret() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// An API token's public id: the start of its stored hash (never the token).
pub fn token_id(token_hash: &str) -> String {
    token_hash.chars().take(16).collect()
}

/// How events name a browser session: a hash of the stored hash of its id,
/// so neither the cookie nor the lookup key is ever in the record.
pub fn session_id_hash(token: &str) -> String {
    digest(&digest(token)).chars().take(32).collect()
}

pub fn digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Hashes a password with argon2id (default parameters) on a blocking thread.
pub async fn hash_password(password: String) -> Result<String, AccountError> {
    if password.chars().count() < MIN_PASSWORD {
        return Err(AccountError::WeakPassword);
    }
    tokio::task::spawn_blocking(move || {
        let salt =
            SaltString::encode_b64(&rand::random::<[u8; 16]>()).map_err(|e| AccountError::Hash(e.to_string()))?;
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| AccountError::Hash(e.to_string()))
    })
    .await
    .map_err(|e| AccountError::Hash(e.to_string()))?
}

async fn password_matches(hash: String, password: String) -> bool {
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash)
            .map(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false)
}

type UserRow = (String, String, String, String, String, Option<String>);
type SessionRow = (String, String, String, String, String, Option<String>, String);

const USER_COLUMNS: &str = "u.id, u.email, u.name, u.agency, u.roles, u.password_hash";

fn user_from(row: UserRow) -> Result<User, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        context: format!("người dùng {}", row.1),
        reason,
    };
    Ok(User {
        email: Email::parse(&row.1).map_err(|e| corrupt(e.to_string()))?,
        name: PersonName::parse(&row.2).map_err(|e| corrupt(e.to_string()))?,
        agency: AgencyCode::parse(&row.3).map_err(|e| corrupt(e.to_string()))?,
        roles: parse_roles(&row.4).map_err(|e| corrupt(e.to_string()))?,
        has_password: row.5.is_some(),
        id: row.0,
    })
}

/// What `user add` needs.
pub struct NewUser {
    pub email: Email,
    pub name: PersonName,
    pub agency: AgencyCode,
    pub roles: Vec<Role>,
}

impl Store {
    /// Creates a user and a one-time sign-in link; returns the user and the
    /// link's token.
    pub async fn add_user(&self, new: NewUser, now: DateTime<Utc>) -> Result<(User, String), AccountError> {
        let id = secret()[..16].to_string();
        let token = secret();
        let roles = new.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(",");
        let created = instant_text(now);
        let expires = instant_text(now + LINK_TTL);
        let result: Result<(), sqlx::Error> = crate::with_pool!(self, pool => async {
            let mut tx = pool.begin().await?;
            sqlx::query("INSERT INTO users (id, email, name, agency, roles, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
                .bind(&id).bind(new.email.as_str()).bind(new.name.as_str()).bind(new.agency.as_str()).bind(&roles).bind(&created)
                .execute(&mut *tx).await?;
            sqlx::query("INSERT INTO signin_links (token_hash, user_id, expires_at) VALUES ($1, $2, $3)")
                .bind(digest(&token)).bind(&id).bind(&expires)
                .execute(&mut *tx).await?;
            tx.commit().await
        }.await);
        match result {
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                return Err(AccountError::DuplicateEmail(new.email.to_string()))
            }
            other => other.map_err(StoreError::query("tạo người dùng"))?,
        }
        let user = User {
            id,
            email: new.email,
            name: new.name,
            agency: new.agency,
            roles: new.roles,
            has_password: false,
        };
        Ok((user, token))
    }

    /// A new one-time sign-in link for an existing user (a forgotten password).
    pub async fn new_signin_link(&self, email: &Email, now: DateTime<Utc>) -> Result<(User, String), AccountError> {
        let user = self
            .user_by_email(email)
            .await?
            .ok_or_else(|| AccountError::UnknownUser(email.to_string()))?;
        let token = secret();
        crate::with_pool!(self, pool => sqlx::query("INSERT INTO signin_links (token_hash, user_id, expires_at) VALUES ($1, $2, $3)")
            .bind(digest(&token)).bind(&user.id).bind(instant_text(now + LINK_TTL))
            .execute(pool).await.map(|_| ()).map_err(StoreError::query("tạo liên kết đăng nhập"))?);
        Ok((user, token))
    }

    pub async fn user_by_email(&self, email: &Email) -> Result<Option<User>, StoreError> {
        self.user_row(email).await?.map(user_from).transpose()
    }

    /// The row of an enabled user, password hash included.
    async fn user_row(&self, email: &Email) -> Result<Option<UserRow>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users u WHERE u.email = $1 AND u.disabled = 0");
        crate::with_pool!(self, pool => sqlx::query_as(&sql).bind(email.as_str())
            .fetch_optional(pool).await.map_err(StoreError::query("đọc người dùng")))
    }

    pub async fn users(&self) -> Result<Vec<User>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users u WHERE u.disabled = 0 ORDER BY u.agency, u.email");
        let rows: Vec<UserRow> = crate::with_pool!(self, pool => sqlx::query_as(&sql)
            .fetch_all(pool).await.map_err(StoreError::query("đọc người dùng"))?);
        rows.into_iter().map(user_from).collect()
    }

    /// The user a valid, unused, unexpired sign-in link belongs to.
    pub async fn signin_link_user(&self, token: &str, now: DateTime<Utc>) -> Result<Option<User>, StoreError> {
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM signin_links l JOIN users u ON u.id = l.user_id \
             WHERE l.token_hash = $1 AND l.used_at IS NULL AND l.expires_at > $2 AND u.disabled = 0"
        );
        let row: Option<UserRow> = crate::with_pool!(self, pool => sqlx::query_as(&sql).bind(digest(token)).bind(instant_text(now))
            .fetch_optional(pool).await.map_err(StoreError::query("đọc liên kết đăng nhập"))?);
        row.map(user_from).transpose()
    }

    /// Uses up a sign-in link to set the user's password, once.
    pub async fn redeem_signin_link(
        &self,
        token: &str,
        password: String,
        now: DateTime<Utc>,
    ) -> Result<User, AccountError> {
        let user = self
            .signin_link_user(token, now)
            .await?
            .ok_or(AccountError::LinkInvalid)?;
        let hash = hash_password(password).await?;
        let used: u64 = crate::with_pool!(self, pool => async {
            let mut tx = pool.begin().await?;
            let used = sqlx::query("UPDATE signin_links SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL")
                .bind(instant_text(now)).bind(digest(token)).execute(&mut *tx).await?.rows_affected();
            if used == 1 {
                sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
                    .bind(&hash).bind(&user.id).execute(&mut *tx).await?;
            }
            tx.commit().await.map(|_| used)
        }.await.map_err(StoreError::query("dùng liên kết đăng nhập"))?);
        if used != 1 {
            return Err(AccountError::LinkInvalid);
        }
        Ok(User {
            has_password: true,
            ..user
        })
    }

    /// The user with this e-mail and password, if they match.
    pub async fn check_password(&self, email: &str, password: &str) -> Result<Option<User>, StoreError> {
        let Ok(email) = Email::parse(email) else {
            return Ok(None);
        };
        let Some(row) = self.user_row(&email).await? else {
            return Ok(None);
        };
        let Some(hash) = row.5.clone() else {
            return Ok(None);
        };
        if password_matches(hash, password.to_string()).await {
            user_from(row).map(Some)
        } else {
            Ok(None)
        }
    }

    /// Starts a session; returns the cookie value and the session's CSRF token.
    pub async fn start_session(&self, user: &User, now: DateTime<Utc>) -> Result<(String, String), StoreError> {
        let token = secret();
        let csrf = secret();
        crate::with_pool!(self, pool => sqlx::query("INSERT INTO sessions (token_hash, user_id, csrf, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(digest(&token)).bind(&user.id).bind(&csrf).bind(instant_text(now)).bind(instant_text(now + SESSION_TTL))
            .execute(pool).await.map(|_| ()).map_err(StoreError::query("tạo phiên đăng nhập"))?);
        Ok((token, csrf))
    }

    /// The user and CSRF token of a live session.
    pub async fn session(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<(User, String, Channel)>, StoreError> {
        let sql = format!(
            "SELECT {USER_COLUMNS}, s.csrf FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.token_hash = $1 AND s.expires_at > $2 AND u.disabled = 0"
        );
        let row: Option<SessionRow> = crate::with_pool!(self, pool => sqlx::query_as(&sql)
            .bind(digest(token)).bind(instant_text(now))
            .fetch_optional(pool).await.map_err(StoreError::query("đọc phiên đăng nhập"))?);
        let channel = Channel::Web {
            session: session_id_hash(token),
        };
        row.map(|(a, b, c, d, e, f, csrf)| user_from((a, b, c, d, e, f)).map(|u| (u, csrf, channel)))
            .transpose()
    }

    pub async fn end_session(&self, token: &str) -> Result<(), StoreError> {
        crate::with_pool!(self, pool => sqlx::query("DELETE FROM sessions WHERE token_hash = $1").bind(digest(token))
            .execute(pool).await.map(|_| ()).map_err(StoreError::query("kết thúc phiên đăng nhập")))
    }

    /// Creates an API token for a user; the token is returned once.
    pub async fn create_api_token(&self, user: &User, label: &str, now: DateTime<Utc>) -> Result<String, StoreError> {
        let token = format!("kh_{}", secret());
        crate::with_pool!(self, pool => sqlx::query("INSERT INTO api_tokens (token_hash, user_id, label, created_at) VALUES ($1, $2, $3, $4)")
            .bind(digest(&token)).bind(&user.id).bind(label).bind(instant_text(now))
            .execute(pool).await.map(|_| ()).map_err(StoreError::query("tạo mã truy cập API"))?);
        Ok(token)
    }

    /// The user of a live API token, and the channel its actions are recorded with.
    pub async fn api_token_user(&self, token: &str) -> Result<Option<(User, Channel)>, StoreError> {
        let sql = format!(
            "SELECT {USER_COLUMNS}, t.label FROM api_tokens t JOIN users u ON u.id = t.user_id \
             WHERE t.token_hash = $1 AND t.revoked = 0 AND u.disabled = 0"
        );
        let hash = digest(token);
        let row: Option<SessionRow> = crate::with_pool!(self, pool => sqlx::query_as(&sql).bind(&hash)
            .fetch_optional(pool).await.map_err(StoreError::query("đọc mã truy cập API"))?);
        row.map(|(a, b, c, d, e, f, label)| {
            user_from((a, b, c, d, e, f)).map(|u| {
                let channel = Channel::Api {
                    token: token_id(&hash),
                    token_label: label,
                };
                (u, channel)
            })
        })
        .transpose()
    }

    /// The agency's calendar feed token, created on first use (a read
    /// otherwise: the inbox shows it on every visit).
    pub async fn calendar_token(&self, agency: &AgencyCode, now: DateTime<Utc>) -> Result<String, StoreError> {
        let read = || async {
            crate::with_pool!(self, pool => sqlx::query_scalar::<_, String>("SELECT token FROM calendar_tokens WHERE agency = $1")
                .bind(agency.as_str()).fetch_optional(pool).await.map_err(StoreError::query("đọc mã lịch")))
        };
        if let Some(token) = read().await? {
            return Ok(token);
        }
        crate::with_pool!(self, pool => sqlx::query("INSERT INTO calendar_tokens (agency, token, created_at) VALUES ($1, $2, $3) ON CONFLICT (agency) DO NOTHING")
            .bind(agency.as_str()).bind(secret()).bind(instant_text(now))
            .execute(pool).await.map(|_| ()).map_err(StoreError::query("tạo mã lịch"))?);
        read().await?.ok_or_else(|| StoreError::Corrupt {
            context: format!("mã lịch của {agency}"),
            reason: "không đọc lại được sau khi tạo".into(),
        })
    }

    pub async fn calendar_agency(&self, token: &str) -> Result<Option<AgencyCode>, StoreError> {
        let agency: Option<String> = crate::with_pool!(self, pool => sqlx::query_scalar("SELECT agency FROM calendar_tokens WHERE token = $1")
            .bind(token).fetch_optional(pool).await.map_err(StoreError::query("đọc mã lịch"))?);
        Ok(agency.and_then(|a| AgencyCode::parse(&a).ok()))
    }
}
