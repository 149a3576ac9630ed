//! Users, sign-in links, sessions, API tokens and calendar tokens in the
//! database. Secrets are random 256-bit values; only their SHA-256 is
//! stored (passwords: argon2), except calendar tokens, which only grant
//! reading an agency's deadlines and must be shown again.

use super::history::{AccountEvent, AccountRow, AccountSnapshot, RecordedLink, RecordedToken, AGGREGATE_TYPE};
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

/// A hash of a password nobody knows, with the parameters real ones have:
/// checked when there is no real hash, so that an unknown e-mail takes as
/// long as a wrong password.
fn stand_in_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| {
        let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>()).expect("16 bytes encode");
        Argon2::default()
            .hash_password(secret().as_bytes(), &salt)
            .map(|h| h.to_string())
            .expect("argon2 hashes")
    })
}

/// Whether `password` matches `hash`; without a hash, checks a stand-in
/// (taking as long) and answers no.
async fn password_matches(hash: Option<String>, password: String) -> bool {
    tokio::task::spawn_blocking(move || {
        let real = hash.is_some();
        let hash = hash.unwrap_or_else(|| stand_in_hash().to_string());
        // Checked first, answered after: the stand-in costs what a real one does.
        let matches = PasswordHash::new(&hash)
            .map(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
            .unwrap_or(false);
        real && matches
    })
    .await
    .unwrap_or(false)
}

pub(crate) type UserRow = (String, String, String, String, String, Option<String>);
/// A user row with its `disabled` column.
type FlaggedUserRow = (String, String, String, String, String, Option<String>, i64);
/// id, e-mail, name, agency, roles, has a password, disabled, has two-factor.
type TableAccount = (String, String, String, String, String, bool, i64, bool);
type SessionRow = (String, String, String, String, String, Option<String>, String);

pub(crate) const USER_COLUMNS: &str = "u.id, u.email, u.name, u.agency, u.roles, u.password_hash";

pub(crate) fn user_from(row: UserRow) -> Result<User, StoreError> {
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

/// An API token as `token list` shows it (never the token).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TokenRow {
    pub id: String,
    #[serde(skip)]
    pub token_hash: String,
    pub user_id: String,
    pub email: String,
    pub label: String,
    pub created_at: String,
    pub revoked: bool,
}

impl From<(String, String, String, String, String, i64)> for TokenRow {
    fn from(
        (token_hash, user_id, email, label, created_at, revoked): (String, String, String, String, String, i64),
    ) -> Self {
        Self {
            id: token_id(&token_hash),
            token_hash,
            user_id,
            email,
            label,
            created_at,
            revoked: revoked != 0,
        }
    }
}

/// What `user add` needs.
pub struct NewUser {
    pub email: Email,
    pub name: PersonName,
    pub agency: AgencyCode,
    pub roles: Vec<Role>,
}

impl Store {
    /// The table half of creating a user (`Engine::add_user` records the
    /// event first): the user's row and the first sign-in link's hash.
    pub(crate) async fn insert_user(
        &self,
        user: &User,
        link_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<(), AccountError> {
        let created = instant_text(now);
        let expires = instant_text(now + LINK_TTL);
        let result: Result<(), sqlx::Error> = crate::with_pool!(self, pool => async {
            let mut tx = pool.begin().await?;
            sqlx::query("INSERT INTO users (id, email, name, agency, roles, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
                .bind(&user.id).bind(user.email.as_str()).bind(user.name.as_str()).bind(user.agency.as_str()).bind(user.roles_text()).bind(&created)
                .execute(&mut *tx).await?;
            sqlx::query("INSERT INTO signin_links (token_hash, user_id, expires_at) VALUES ($1, $2, $3)")
                .bind(link_hash).bind(&user.id).bind(&expires)
                .execute(&mut *tx).await?;
            tx.commit().await
        }.await);
        match result {
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Err(AccountError::DuplicateEmail(user.email.to_string()))
            }
            other => Ok(other.map_err(StoreError::query("tạo người dùng"))?),
        }
    }

    /// The table half of a new sign-in link.
    pub(crate) async fn insert_signin_link(
        &self,
        user_id: &str,
        link_hash: &str,
        expires: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        crate::with_pool!(self, pool => sqlx::query("INSERT INTO signin_links (token_hash, user_id, expires_at) VALUES ($1, $2, $3)")
            .bind(link_hash).bind(user_id).bind(instant_text(expires))
            .execute(pool).await.map(|_| ()).map_err(StoreError::query("tạo liên kết đăng nhập")))
    }

    /// The table half of using a sign-in link: marks it used and stores the
    /// password hash, once, marking the account's other links used too. Returns whether this call used it.
    pub(crate) async fn use_signin_link(
        &self,
        token: &str,
        user_id: &str,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let used: u64 = crate::with_pool!(self, pool => async {
            let mut tx = pool.begin().await?;
            let used = sqlx::query("UPDATE signin_links SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL")
                .bind(instant_text(now)).bind(digest(token)).execute(&mut *tx).await?.rows_affected();
            if used == 1 {
                sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
                    .bind(password_hash).bind(user_id).execute(&mut *tx).await?;
                // A new password ends every other link of the account.
                sqlx::query("UPDATE signin_links SET used_at = $1 WHERE user_id = $2 AND used_at IS NULL")
                    .bind(instant_text(now)).bind(user_id).execute(&mut *tx).await?;
            }
            tx.commit().await.map(|_| used)
        }.await.map_err(StoreError::query("dùng liên kết đăng nhập"))?);
        Ok(used == 1)
    }

    pub(crate) async fn set_user_roles(&self, user_id: &str, roles: &[Role]) -> Result<(), StoreError> {
        let roles = roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(",");
        crate::with_pool!(self, pool => sqlx::query("UPDATE users SET roles = $1 WHERE id = $2")
            .bind(roles).bind(user_id)
            .execute(pool).await.map(|_| ()).map_err(StoreError::query("đổi vai trò")))
    }

    /// Disables or enables a user; disabling also ends the user's sessions
    /// (tokens stop working because every lookup skips disabled users).
    pub(crate) async fn set_user_disabled(&self, user_id: &str, disabled: bool) -> Result<(), StoreError> {
        crate::with_pool!(self, pool => async {
            let mut tx = pool.begin().await?;
            sqlx::query("UPDATE users SET disabled = $1 WHERE id = $2")
                .bind(i32::from(disabled)).bind(user_id).execute(&mut *tx).await?;
            if disabled {
                sqlx::query("DELETE FROM sessions WHERE user_id = $1").bind(user_id).execute(&mut *tx).await?;
            }
            tx.commit().await
        }.await.map_err(StoreError::query("khóa hoặc mở khóa người dùng")))
    }

    /// Any user with this e-mail, enabled or not, and whether disabled.
    pub async fn user_by_email_any(&self, email: &Email) -> Result<Option<(User, bool)>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS}, CAST(u.disabled AS BIGINT) FROM users u WHERE u.email = $1");
        let row: Option<FlaggedUserRow> = crate::with_pool!(self, pool => sqlx::query_as(&sql).bind(email.as_str())
            .fetch_optional(pool).await.map_err(StoreError::query("đọc người dùng"))?);
        row.map(|(a, b, c, d, e, f, disabled)| user_from((a, b, c, d, e, f)).map(|u| (u, disabled != 0)))
            .transpose()
    }

    /// Every user, disabled ones included, with whether disabled.
    pub async fn all_users(&self) -> Result<Vec<(User, bool)>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS}, CAST(u.disabled AS BIGINT) FROM users u ORDER BY u.agency, u.email");
        let rows: Vec<FlaggedUserRow> = crate::with_pool!(self, pool => sqlx::query_as(&sql)
            .fetch_all(pool).await.map_err(StoreError::query("đọc người dùng"))?);
        rows.into_iter()
            .map(|(a, b, c, d, e, f, disabled)| user_from((a, b, c, d, e, f)).map(|u| (u, disabled != 0)))
            .collect()
    }

    pub async fn user_by_id(&self, id: &str) -> Result<Option<(User, bool)>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS}, CAST(u.disabled AS BIGINT) FROM users u WHERE u.id = $1");
        let row: Option<FlaggedUserRow> = crate::with_pool!(self, pool => sqlx::query_as(&sql).bind(id)
            .fetch_optional(pool).await.map_err(StoreError::query("đọc người dùng"))?);
        row.map(|(a, b, c, d, e, f, disabled)| user_from((a, b, c, d, e, f)).map(|u| (u, disabled != 0)))
            .transpose()
    }

    /// API tokens, newest first, of one user or of everyone.
    pub async fn api_tokens(&self, email: Option<&Email>) -> Result<Vec<TokenRow>, StoreError> {
        let rows: Vec<(String, String, String, String, String, i64)> = crate::with_pool!(self, pool => sqlx::query_as(
            "SELECT t.token_hash, t.user_id, u.email, t.label, t.created_at, CAST(t.revoked AS BIGINT) \
               FROM api_tokens t JOIN users u ON u.id = t.user_id \
              WHERE $1 IS NULL OR u.email = $1 ORDER BY t.created_at DESC, t.token_hash")
            .bind(email.map(|e| e.as_str().to_string()))
            .fetch_all(pool).await.map_err(StoreError::query("đọc mã truy cập API"))?);
        Ok(rows.into_iter().map(TokenRow::from).collect())
    }

    /// The API token with this id (`token_id`), if exactly one has it.
    pub async fn api_token_by_id(&self, id: &str) -> Result<Option<TokenRow>, StoreError> {
        if id.len() != 16 || !id.chars().all(|c| c.is_ascii_hexdigit()) {
            return Ok(None);
        }
        let rows: Vec<(String, String, String, String, String, i64)> = crate::with_pool!(self, pool => sqlx::query_as(
            "SELECT t.token_hash, t.user_id, u.email, t.label, t.created_at, CAST(t.revoked AS BIGINT) \
               FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE substr(t.token_hash, 1, 16) = $1")
            .bind(id.to_lowercase())
            .fetch_all(pool).await.map_err(StoreError::query("đọc mã truy cập API"))?);
        Ok(match <[_; 1]>::try_from(rows) {
            Ok([row]) => Some(TokenRow::from(row)),
            Err(_) => None,
        })
    }

    pub(crate) async fn revoke_api_token_row(&self, token_hash: &str) -> Result<(), StoreError> {
        crate::with_pool!(self, pool => sqlx::query("UPDATE api_tokens SET revoked = 1 WHERE token_hash = $1")
            .bind(token_hash)
            .execute(pool).await.map(|_| ()).map_err(StoreError::query("thu hồi mã truy cập API")))
    }

    /// Ids of users with no account events (made by an earlier release).
    pub(crate) async fn users_without_history(&self) -> Result<Vec<String>, StoreError> {
        crate::with_pool!(self, pool => sqlx::query_scalar::<_, String>(
            "SELECT u.id FROM users u WHERE NOT EXISTS \
               (SELECT 1 FROM events e WHERE e.aggregate_type = 'Account' AND e.aggregate_id = u.id) ORDER BY u.id")
            .fetch_all(pool).await.map_err(StoreError::query("tìm người dùng chưa có lịch sử")))
    }

    /// What an account's import records: the row as the table has it,
    /// its tokens (by id) and its unused sign-in links (by id).
    pub(crate) async fn account_snapshot(&self, user_id: &str) -> Result<Option<AccountSnapshot>, StoreError> {
        let Some((user, disabled)) = self.user_by_id(user_id).await? else {
            return Ok(None);
        };
        let created_at: String = crate::with_pool!(self, pool => sqlx::query_scalar("SELECT created_at FROM users WHERE id = $1")
            .bind(user_id).fetch_one(pool).await.map_err(StoreError::query("đọc người dùng"))?);
        let tokens: Vec<(String, String, String, i64)> = crate::with_pool!(self, pool => sqlx::query_as(
            "SELECT token_hash, label, created_at, CAST(revoked AS BIGINT) FROM api_tokens WHERE user_id = $1 ORDER BY created_at, token_hash")
            .bind(user_id).fetch_all(pool).await.map_err(StoreError::query("đọc mã truy cập API"))?);
        let links: Vec<(String, String)> = crate::with_pool!(self, pool => sqlx::query_as(
            "SELECT token_hash, expires_at FROM signin_links WHERE user_id = $1 AND used_at IS NULL ORDER BY expires_at, token_hash")
            .bind(user_id).fetch_all(pool).await.map_err(StoreError::query("đọc liên kết đăng nhập"))?);
        Ok(Some(AccountSnapshot {
            email: user.email.to_string(),
            name: user.name.clone(),
            agency: user.agency.clone(),
            roles: user.roles.clone(),
            disabled,
            has_password: user.has_password,
            created_at,
            tokens: tokens
                .into_iter()
                .map(|(hash, label, created_at, revoked)| RecordedToken {
                    id: token_id(&hash),
                    label,
                    created_at,
                    revoked: revoked != 0,
                })
                .collect(),
            open_links: links
                .into_iter()
                .map(|(hash, expires_at)| RecordedLink {
                    id: token_id(&hash),
                    expires_at,
                })
                .collect(),
        }))
    }

    /// The events of one account, oldest first: (sequence, event).
    pub async fn account_events(&self, user_id: &str) -> Result<Vec<(i64, AccountEvent)>, StoreError> {
        let rows: Vec<(i64, String)> = crate::with_pool!(self, pool => sqlx::query_as(
            "SELECT sequence, CAST(payload AS TEXT) FROM events WHERE aggregate_type = $1 AND aggregate_id = $2 ORDER BY sequence")
            .bind(AGGREGATE_TYPE).bind(user_id)
            .fetch_all(pool).await.map_err(StoreError::query("đọc lịch sử tài khoản"))?);
        rows.into_iter()
            .map(|(seq, payload)| {
                serde_json::from_str(&payload)
                    .map(|e| (seq, e))
                    .map_err(|e| StoreError::Corrupt {
                        context: format!("tài khoản {user_id} #{seq}"),
                        reason: e.to_string(),
                    })
            })
            .collect()
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

    /// The user with this e-mail and password, if they match. Takes as
    /// long for an unknown e-mail, an account without a password or a
    /// disabled one as for a wrong password.
    pub async fn check_password(&self, email: &str, password: &str) -> Result<Option<User>, StoreError> {
        let row = match Email::parse(email) {
            Ok(email) => self.user_row(&email).await?,
            Err(_) => None,
        };
        let hash = row.as_ref().and_then(|r| r.5.clone());
        let matches = password_matches(hash, password.to_string()).await;
        match row {
            Some(row) if matches => user_from(row).map(Some),
            _ => Ok(None),
        }
    }

    /// Starts a session; returns the cookie value and the session's CSRF token.
    pub async fn start_session(&self, user: &User, now: DateTime<Utc>) -> Result<(String, String), StoreError> {
        let token = secret();
        let csrf = self.open_session(user, &token, now).await?;
        Ok((token, csrf))
    }

    /// Starts the session of a cookie value chosen beforehand (so that an
    /// event can name it first); returns its CSRF token.
    pub(crate) async fn open_session(
        &self,
        user: &User,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<String, StoreError> {
        let csrf = secret();
        crate::with_pool!(self, pool => sqlx::query("INSERT INTO sessions (token_hash, user_id, csrf, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(digest(token)).bind(&user.id).bind(&csrf).bind(instant_text(now)).bind(instant_text(now + SESSION_TTL))
            .execute(pool).await.map(|_| ()).map_err(StoreError::query("tạo phiên đăng nhập"))?);
        Ok(csrf)
    }

    /// Ends every session of a user; returns how many there were.
    pub(crate) async fn end_user_sessions(&self, user_id: &str) -> Result<u64, StoreError> {
        crate::with_pool!(self, pool => sqlx::query("DELETE FROM sessions WHERE user_id = $1").bind(user_id)
            .execute(pool).await.map(|r| r.rows_affected()).map_err(StoreError::query("kết thúc các phiên đăng nhập")))
    }

    pub async fn end_session(&self, token: &str) -> Result<(), StoreError> {
        crate::with_pool!(self, pool => sqlx::query("DELETE FROM sessions WHERE token_hash = $1").bind(digest(token))
            .execute(pool).await.map(|_| ()).map_err(StoreError::query("kết thúc phiên đăng nhập")))
    }

    /// The table half of a new API token: its hash.
    pub(crate) async fn insert_api_token(
        &self,
        token_hash: &str,
        user: &User,
        label: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        crate::with_pool!(self, pool => sqlx::query("INSERT INTO api_tokens (token_hash, user_id, label, created_at) VALUES ($1, $2, $3, $4)")
            .bind(token_hash).bind(&user.id).bind(label).bind(instant_text(now))
            .execute(pool).await.map(|_| ()).map_err(StoreError::query("tạo mã truy cập API")))
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

/// Read in `audit verify`'s snapshot, beside the events it replays.
impl crate::store::snapshot::Snapshot {
    /// The tables' side of every account, as `audit verify` compares it
    /// (the columns as stored, not parsed, so that a bad value is reported).
    pub async fn account_rows(&mut self) -> Result<Vec<AccountRow>, StoreError> {
        let users: Vec<TableAccount> = crate::with_snapshot!(self, conn => sqlx::query_as(
            "SELECT id, email, name, agency, roles, password_hash IS NOT NULL, CAST(disabled AS BIGINT), totp_secret IS NOT NULL FROM users ORDER BY id")
            .fetch_all(&mut *conn).await.map_err(StoreError::query("đọc người dùng"))?);
        let tokens: Vec<(String, String, i64)> = crate::with_snapshot!(self, conn => sqlx::query_as(
            "SELECT user_id, token_hash, CAST(revoked AS BIGINT) FROM api_tokens")
            .fetch_all(&mut *conn).await.map_err(StoreError::query("đọc mã truy cập API"))?);
        let mut rows: Vec<AccountRow> = users
            .into_iter()
            .map(
                |(id, email, name, agency, roles, has_password, disabled, totp)| AccountRow {
                    id,
                    email,
                    name,
                    agency,
                    roles,
                    disabled: disabled != 0,
                    has_password,
                    totp,
                    tokens: Default::default(),
                },
            )
            .collect();
        for (user, hash, revoked) in tokens {
            if let Some(row) = rows.iter_mut().find(|r| r.id == user) {
                row.tokens.insert(token_id(&hash), revoked != 0);
            }
        }
        Ok(rows)
    }
}
