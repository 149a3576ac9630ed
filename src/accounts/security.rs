//! The tables behind sign-in that holds up: failures and locks (shared by
//! every process on the database), session limits and the list of one's
//! sessions, and the two-factor secrets and recovery codes. No events here:
//! `manage` records what an account's history must say.

use super::history::AccountAction;
use super::store::{digest, session_id_hash, user_from, UserRow, USER_COLUMNS};
use super::{AccountError, Email, Role, User};
use crate::config::SecuritySettings;
use crate::domain::task::Actor;
use crate::domain::task::Channel;
use crate::engine::{system_actor, Engine};
use crate::projections::views::instant_text;
use crate::store::{Store, StoreError};
use chrono::{DateTime, Duration, Utc};

/// What a throttle counts failures of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// An e-mail address as typed (normalised), whether or not it has an account.
    Account,
    /// A client address.
    Address,
    /// Second-factor codes of an account.
    Code,
    /// "Quên mật khẩu" requests from a client address.
    Forgot,
}

impl Scope {
    fn as_str(self) -> &'static str {
        match self {
            Self::Account => "account",
            Self::Address => "address",
            Self::Code => "code",
            Self::Forgot => "forgot",
        }
    }
}

/// The longest a lock lasts, however often it repeats.
const LONGEST_LOCK: Duration = Duration::hours(24);
/// A session's `last_seen_at` is written at most this often.
const TOUCH_EVERY: Duration = Duration::minutes(1);

/// How long the `level`th lock in a row lasts: the first lock's length,
/// doubled for each earlier one, at most a day.
pub fn lock_length(first: Duration, level: u32) -> Duration {
    let factor = 1i32 << level.saturating_sub(1).min(20);
    (first * factor).min(LONGEST_LOCK)
}

/// A sign-in attempt noted before its check (`Store::begin_attempt`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub scope: Scope,
    id: String,
    /// Attempts of its key within the window, itself included.
    pub count: u32,
}

/// A lock on a key: when it ends, the failures that made it, and whether
/// the call that returned it took it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lock {
    pub until: DateTime<Utc>,
    pub failures: u32,
    pub taken: bool,
}

/// A session as the "Tài khoản" page lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SessionInfo {
    /// As events name sessions (`session_id_hash`), never the cookie.
    pub id: String,
    pub created_at: String,
    pub last_seen_at: String,
    pub client: String,
    pub user_agent: String,
}

/// Whether a session is signed in or half-way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionStage {
    SignedIn = 0,
    /// The password was right; a two-factor code is awaited.
    AwaitingCode = 1,
    /// The password was right; the account must set up two-factor sign-in first.
    MustEnrol = 2,
}

impl SessionStage {
    fn of(n: i64) -> Self {
        match n {
            0 => Self::SignedIn,
            1 => Self::AwaitingCode,
            _ => Self::MustEnrol,
        }
    }
}

type LiveRow = (
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    String,
    Option<String>,
    i64,
);

impl Store {
    /// When the lock on `key` ends, if it is locked at `now`.
    pub async fn locked_until(
        &self,
        scope: Scope,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let until: Option<String> = crate::with_pool!(self, pool => sqlx::query_scalar(
            "SELECT until FROM signin_locks WHERE scope = $1 AND key = $2 AND until > $3")
            .bind(scope.as_str()).bind(key).bind(instant_text(now))
            .fetch_optional(pool).await.map_err(StoreError::query("đọc khóa đăng nhập"))?);
        Ok(until
            .and_then(|u| DateTime::parse_from_rfc3339(&u).ok())
            .map(|u| u.with_timezone(&Utc)))
    }

    /// Failures of `key` within the window before `now`.
    pub async fn recent_failures(
        &self,
        scope: Scope,
        key: &str,
        now: DateTime<Utc>,
        s: &SecuritySettings,
    ) -> Result<u32, StoreError> {
        let n: i64 = crate::with_pool!(self, pool => sqlx::query_scalar(
            "SELECT COUNT(*) FROM signin_failures WHERE scope = $1 AND key = $2 AND failed_at > $3")
            .bind(scope.as_str()).bind(key).bind(instant_text(now - s.window))
            .fetch_one(pool).await.map_err(StoreError::query("đếm lần đăng nhập sai"))?);
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    /// Notes an attempt of `key` before it is checked, counted as a failure
    /// until `forget_attempt`; returns its name and the attempts of `key`
    /// within the window, this one and those still in flight included. An
    /// attempt beyond `max_failures` is refused unchecked: however many
    /// requests come at once, no more than the limit are checked.
    pub async fn begin_attempt(
        &self,
        scope: Scope,
        key: &str,
        now: DateTime<Utc>,
        s: &SecuritySettings,
    ) -> Result<Attempt, StoreError> {
        let id = super::store::secret()[..24].to_string();
        let old = instant_text(now - s.window.max(LONGEST_LOCK));
        crate::with_pool!(self, pool => async {
            sqlx::query("DELETE FROM signin_failures WHERE failed_at < $1").bind(&old).execute(pool).await?;
            sqlx::query("INSERT INTO signin_failures (scope, key, failed_at, attempt) VALUES ($1, $2, $3, $4)")
                .bind(scope.as_str()).bind(key).bind(instant_text(now)).bind(&id).execute(pool).await.map(|_| ())
        }.await.map_err(StoreError::query("ghi lần đăng nhập"))?);
        let count = self.recent_failures(scope, key, now, s).await?;
        Ok(Attempt { scope, id, count })
    }

    /// An attempt that succeeded was no failure.
    pub async fn forget_attempt(&self, attempt: &Attempt) -> Result<(), StoreError> {
        crate::with_pool!(self, pool => sqlx::query("DELETE FROM signin_failures WHERE attempt = $1")
            .bind(&attempt.id).execute(pool).await.map(|_| ()).map_err(StoreError::query("xóa lần đăng nhập")))
    }

    /// Locks `key` when its failed attempt brought it to `max_failures` or
    /// beyond (each lock in a row twice as long as the last). Returns when
    /// the lock ends, and whether this call took it (concurrent failures
    /// take one lock between them: one record, one e-mail).
    pub async fn lock_if_over(
        &self,
        attempt: &Attempt,
        key: &str,
        now: DateTime<Utc>,
        s: &SecuritySettings,
    ) -> Result<Option<Lock>, StoreError> {
        if attempt.count < s.max_failures {
            return Ok(None);
        }
        let scope = attempt.scope;
        let level: Option<i64> = crate::with_pool!(self, pool => sqlx::query_scalar(
            "SELECT CAST(level AS BIGINT) FROM signin_locks WHERE scope = $1 AND key = $2")
            .bind(scope.as_str()).bind(key)
            .fetch_optional(pool).await.map_err(StoreError::query("đọc khóa đăng nhập"))?);
        let level = u32::try_from(level.unwrap_or(0)).unwrap_or(0).saturating_add(1);
        let until = now + lock_length(s.lock, level);
        let taken = crate::with_pool!(self, pool => async {
            let taken = sqlx::query("INSERT INTO signin_locks (scope, key, until, level) VALUES ($1, $2, $3, $4) \
                         ON CONFLICT (scope, key) DO UPDATE SET until = excluded.until, level = excluded.level \
                         WHERE signin_locks.until <= $5")
                .bind(scope.as_str()).bind(key).bind(instant_text(until)).bind(i64::from(level)).bind(instant_text(now))
                .execute(pool).await?.rows_affected() > 0;
            if taken {
                sqlx::query("DELETE FROM signin_failures WHERE scope = $1 AND key = $2")
                    .bind(scope.as_str()).bind(key).execute(pool).await?;
            }
            Ok::<_, sqlx::Error>(taken)
        }.await.map_err(StoreError::query("khóa đăng nhập"))?);
        if taken {
            return Ok(Some(Lock {
                until,
                failures: attempt.count,
                taken: true,
            }));
        }
        Ok(self.locked_until(scope, key, now).await?.map(|until| Lock {
            until,
            failures: attempt.count,
            taken: false,
        }))
    }

    /// Forgets the failures of `key` and its past locks (a success).
    pub async fn clear_failures(&self, scope: Scope, key: &str) -> Result<(), StoreError> {
        crate::with_pool!(self, pool => async {
            sqlx::query("DELETE FROM signin_failures WHERE scope = $1 AND key = $2")
                .bind(scope.as_str()).bind(key).execute(pool).await?;
            sqlx::query("DELETE FROM signin_locks WHERE scope = $1 AND key = $2")
                .bind(scope.as_str()).bind(key).execute(pool).await.map(|_| ())
        }.await.map_err(StoreError::query("xóa lần đăng nhập sai")))
    }

    /// Notes where a new session comes from and its stage.
    pub async fn describe_session(
        &self,
        token: &str,
        client: &str,
        user_agent: &str,
        stage: SessionStage,
    ) -> Result<(), StoreError> {
        let agent: String = user_agent.chars().filter(|c| !c.is_control()).take(200).collect();
        crate::with_pool!(self, pool => sqlx::query("UPDATE sessions SET client = $1, user_agent = $2, pending = $3 WHERE token_hash = $4")
            .bind(client).bind(agent).bind(stage as i64).bind(digest(token))
            .execute(pool).await.map(|_| ()).map_err(StoreError::query("ghi phiên đăng nhập")))
    }

    /// The user, CSRF token, channel and stage of a session alive at `now`:
    /// not ended, younger than `session_max` and used within
    /// `session_idle` (these settings, not the `expires_at` column written
    /// at sign-in, decide). Notes the use (at most once a minute).
    pub async fn session(
        &self,
        token: &str,
        now: DateTime<Utc>,
        s: &SecuritySettings,
    ) -> Result<Option<(User, String, Channel, SessionStage)>, StoreError> {
        let sql = format!(
            "SELECT {USER_COLUMNS}, s.csrf, s.last_seen_at, CAST(s.pending AS BIGINT) FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.token_hash = $1 AND s.created_at > $2 \
               AND COALESCE(s.last_seen_at, s.created_at) > $3 AND u.disabled = 0"
        );
        let hash = digest(token);
        let row: Option<LiveRow> = crate::with_pool!(self, pool => sqlx::query_as(&sql)
            .bind(&hash).bind(instant_text(now - s.session_max)).bind(instant_text(now - s.session_idle))
            .fetch_optional(pool).await.map_err(StoreError::query("đọc phiên đăng nhập"))?);
        let Some((a, b, c, d, e, f, csrf, seen, stage)) = row else {
            return Ok(None);
        };
        let stale = seen
            .as_deref()
            .is_none_or(|seen| seen < instant_text(now - TOUCH_EVERY).as_str());
        if stale {
            crate::with_pool!(self, pool => sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE token_hash = $2")
                .bind(instant_text(now)).bind(&hash)
                .execute(pool).await.map(|_| ()).map_err(StoreError::query("ghi phiên đăng nhập"))?);
        }
        let channel = Channel::Web {
            session: session_id_hash(token),
        };
        Ok(Some((
            user_from((a, b, c, d, e, f))?,
            csrf,
            channel,
            SessionStage::of(stage),
        )))
    }

    /// The signed-in sessions of a user still alive at `now`, newest first.
    pub async fn sessions_of(
        &self,
        user_id: &str,
        now: DateTime<Utc>,
        s: &SecuritySettings,
    ) -> Result<Vec<SessionInfo>, StoreError> {
        let rows: Vec<(String, String, Option<String>, String, String)> = crate::with_pool!(self, pool => sqlx::query_as(
            "SELECT token_hash, created_at, last_seen_at, client, user_agent FROM sessions \
             WHERE user_id = $1 AND pending = 0 AND created_at > $2 AND COALESCE(last_seen_at, created_at) > $3 \
             ORDER BY created_at DESC, token_hash")
            .bind(user_id).bind(instant_text(now - s.session_max)).bind(instant_text(now - s.session_idle))
            .fetch_all(pool).await.map_err(StoreError::query("đọc phiên đăng nhập"))?);
        Ok(rows
            .into_iter()
            .map(|(hash, created_at, seen, client, user_agent)| SessionInfo {
                id: digest(&hash).chars().take(32).collect(),
                last_seen_at: seen.unwrap_or_else(|| created_at.clone()),
                created_at,
                client,
                user_agent,
            })
            .collect())
    }

    /// Ends the session of `user_id` with this id (as `sessions_of` names
    /// it); whether there was one.
    pub async fn end_session_by_id(&self, user_id: &str, id: &str) -> Result<bool, StoreError> {
        let hashes: Vec<String> = crate::with_pool!(self, pool => sqlx::query_scalar("SELECT token_hash FROM sessions WHERE user_id = $1")
            .bind(user_id).fetch_all(pool).await.map_err(StoreError::query("đọc phiên đăng nhập"))?);
        let Some(hash) = hashes.into_iter().find(|h| digest(h).starts_with(id) && id.len() == 32) else {
            return Ok(false);
        };
        crate::with_pool!(self, pool => sqlx::query("DELETE FROM sessions WHERE token_hash = $1").bind(hash)
            .execute(pool).await.map(|_| true).map_err(StoreError::query("kết thúc phiên đăng nhập")))
    }

    /// How many sessions (of any stage) a user has.
    pub async fn session_count(&self, user_id: &str) -> Result<i64, StoreError> {
        crate::with_pool!(self, pool => sqlx::query_scalar("SELECT COUNT(*) FROM sessions WHERE user_id = $1")
            .bind(user_id).fetch_one(pool).await.map_err(StoreError::query("đếm phiên đăng nhập")))
    }

    /// The user's TOTP secret (base32) and last accepted step, if two-factor is on.
    pub async fn totp_secret(&self, user_id: &str) -> Result<Option<(String, i64)>, StoreError> {
        let row: Option<(Option<String>, i64)> = crate::with_pool!(self, pool => sqlx::query_as(
            "SELECT totp_secret, totp_last_step FROM users WHERE id = $1")
            .bind(user_id).fetch_optional(pool).await.map_err(StoreError::query("đọc xác thực hai bước"))?);
        Ok(row.and_then(|(secret, step)| secret.map(|s| (s, step))))
    }

    /// The secret being set up in this session (not yet confirmed by a
    /// code), drawn for the session if it has none: each session of an
    /// account is offered its own.
    pub async fn pending_totp_secret(&self, session_token: &str) -> Result<String, StoreError> {
        let key = super::store::digest(session_token);
        let existing: Option<Option<String>> = crate::with_pool!(self, pool => sqlx::query_scalar("SELECT totp_pending FROM sessions WHERE token_hash = $1")
            .bind(&key).fetch_optional(pool).await.map_err(StoreError::query("đọc xác thực hai bước"))?);
        if let Some(Some(secret)) = existing {
            return Ok(secret);
        }
        let secret = super::totp::base32(&rand::random::<[u8; super::totp::SECRET_BYTES]>());
        // Two requests at once draw two secrets: the first written stays,
        // and both show it.
        crate::with_pool!(self, pool => sqlx::query("UPDATE sessions SET totp_pending = $1 WHERE token_hash = $2 AND totp_pending IS NULL")
            .bind(&secret).bind(&key).execute(pool).await.map(|_| ()).map_err(StoreError::query("ghi xác thực hai bước"))?);
        let kept: Option<Option<String>> = crate::with_pool!(self, pool => sqlx::query_scalar("SELECT totp_pending FROM sessions WHERE token_hash = $1")
            .bind(&key).fetch_optional(pool).await.map_err(StoreError::query("đọc xác thực hai bước"))?);
        Ok(kept.flatten().unwrap_or(secret))
    }

    /// Records that a code of `step` was accepted; false if a code of that
    /// step or a later one already was (another request got there first).
    pub async fn use_totp_step(&self, user_id: &str, step: i64) -> Result<bool, StoreError> {
        crate::with_pool!(self, pool => sqlx::query("UPDATE users SET totp_last_step = $1 WHERE id = $2 AND totp_last_step < $1")
            .bind(step).bind(user_id)
            .execute(pool).await.map(|r| r.rows_affected() == 1).map_err(StoreError::query("ghi xác thực hai bước")))
    }

    /// The table half of turning two-factor on: the confirmed secret, its
    /// first used step, and the recovery codes (hashed) replacing any others.
    pub(crate) async fn enable_totp_rows(
        &self,
        user_id: &str,
        secret: &str,
        step: i64,
        codes: &[String],
    ) -> Result<(), StoreError> {
        crate::with_pool!(self, pool => async {
            let mut tx = pool.begin().await?;
            sqlx::query("UPDATE users SET totp_secret = $1, totp_last_step = $2, totp_pending = NULL WHERE id = $3")
                .bind(secret).bind(step).bind(user_id).execute(&mut *tx).await?;
            // No session keeps a secret offered before: the next set-up draws anew.
            sqlx::query("UPDATE sessions SET totp_pending = NULL WHERE user_id = $1").bind(user_id).execute(&mut *tx).await?;
            sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1").bind(user_id).execute(&mut *tx).await?;
            for code in codes {
                sqlx::query("INSERT INTO recovery_codes (code_hash, user_id) VALUES ($1, $2)")
                    .bind(digest(&normal_code(code))).bind(user_id).execute(&mut *tx).await?;
            }
            tx.commit().await
        }.await.map_err(StoreError::query("bật xác thực hai bước")))
    }

    /// The table half of turning two-factor off.
    pub(crate) async fn disable_totp_rows(&self, user_id: &str) -> Result<(), StoreError> {
        crate::with_pool!(self, pool => async {
            sqlx::query("UPDATE users SET totp_secret = NULL, totp_pending = NULL, totp_last_step = 0 WHERE id = $1")
                .bind(user_id).execute(pool).await?;
            sqlx::query("UPDATE sessions SET totp_pending = NULL WHERE user_id = $1").bind(user_id).execute(pool).await?;
            sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1").bind(user_id).execute(pool).await.map(|_| ())
        }.await.map_err(StoreError::query("tắt xác thực hai bước")))
    }

    /// Uses up a recovery code; whether it was an unused code of the user.
    pub(crate) async fn use_recovery_code_row(
        &self,
        user_id: &str,
        code: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        crate::with_pool!(self, pool => sqlx::query("UPDATE recovery_codes SET used_at = $1 WHERE code_hash = $2 AND user_id = $3 AND used_at IS NULL")
            .bind(instant_text(now)).bind(digest(&normal_code(code))).bind(user_id)
            .execute(pool).await.map(|r| r.rows_affected() == 1).map_err(StoreError::query("dùng mã khôi phục")))
    }

    /// The enabled user with this id.
    pub async fn enabled_user_by_id(&self, user_id: &str) -> Result<Option<User>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users u WHERE u.id = $1 AND u.disabled = 0");
        let row: Option<UserRow> = crate::with_pool!(self, pool => sqlx::query_as(&sql).bind(user_id)
            .fetch_optional(pool).await.map_err(StoreError::query("đọc người dùng"))?);
        row.map(user_from).transpose()
    }
}

/// A recovery code as compared: lower-case, without spaces or dashes.
fn normal_code(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// Ten new recovery codes, `xxxxx-xxxxx` (hex).
pub fn new_recovery_codes() -> Vec<String> {
    (0..10)
        .map(|_| {
            let h = hex::encode(rand::random::<[u8; 5]>());
            format!("{}-{}", &h[..5], &h[5..])
        })
        .collect()
}

/// Who records what sign-in itself does (locks).
pub const THROTTLE_SYSTEM: &str = "signin-throttle";

impl User {
    /// Admins and auditors must use two-factor sign-in.
    pub fn needs_totp(&self) -> bool {
        self.has(Role::Admin) || self.has(Role::Auditor)
    }
}

impl Engine {
    /// Records that sign-in to `user` is locked until `until`.
    pub async fn record_signin_lock(
        &self,
        user: &User,
        until: DateTime<Utc>,
        failures: u32,
    ) -> Result<(), AccountError> {
        let action = AccountAction::Lock { until, failures };
        self.account_command(&user.id, system_actor(THROTTLE_SYSTEM), action)
            .await
    }

    /// Whether `code` is a current TOTP code of `user` not used before;
    /// uses it if so. False for a user without two-factor sign-in.
    pub async fn check_totp(&self, user: &User, code: &str) -> Result<bool, AccountError> {
        let Some((secret, last)) = self.store.totp_secret(&user.id).await? else {
            return Ok(false);
        };
        let Some(key) = super::totp::from_base32(&secret) else {
            return Ok(false);
        };
        match super::totp::accepted_step(&key, code, self.clock.now().timestamp(), last) {
            Some(step) => Ok(self.store.use_totp_step(&user.id, step).await?),
            None => Ok(false),
        }
    }

    /// Uses up one of `user`'s recovery codes (recorded); whether it was one.
    pub async fn use_recovery_code(&self, user: &User, code: &str, by: Actor) -> Result<bool, AccountError> {
        if !self
            .store
            .use_recovery_code_row(&user.id, code, self.clock.now())
            .await?
        {
            return Ok(false);
        }
        self.account_command(&user.id, by, AccountAction::UseRecoveryCode)
            .await?;
        Ok(true)
    }

    /// Turns on two-factor sign-in with the secret being set up, if `code`
    /// is a current code of it; returns the new recovery codes (shown once,
    /// stored hashed), or None for a wrong code.
    pub async fn enable_totp(
        &self,
        user: &User,
        session_token: &str,
        code: &str,
        by: Actor,
    ) -> Result<Option<Vec<String>>, AccountError> {
        let secret = self.store.pending_totp_secret(session_token).await?;
        let key = super::totp::from_base32(&secret).unwrap_or_default();
        let Some(step) = super::totp::accepted_step(&key, code, self.clock.now().timestamp(), 0) else {
            return Ok(None);
        };
        let codes = super::security::new_recovery_codes();
        let action = AccountAction::EnableTotp {
            codes: codes.len() as u32,
        };
        self.account_command(&user.id, by, action).await?;
        self.store.enable_totp_rows(&user.id, &secret, step, &codes).await?;
        Ok(Some(codes))
    }

    /// Turns off two-factor sign-in (`user totp-reset` for a locked-out
    /// account); whether it was on.
    pub async fn disable_totp(&self, email: &Email, by: Actor) -> Result<(User, bool), AccountError> {
        let user = self
            .store
            .user_by_email(email)
            .await?
            .ok_or_else(|| AccountError::UnknownUser(email.to_string()))?;
        let was = self.store.totp_secret(&user.id).await?.is_some();
        if was {
            self.account_command(&user.id, by, AccountAction::DisableTotp).await?;
        }
        self.store.disable_totp_rows(&user.id).await?;
        Ok((user, was))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_double_up_to_a_day() {
        let m = Duration::minutes(1);
        assert_eq!(lock_length(m, 1), m);
        assert_eq!(lock_length(m, 2), Duration::minutes(2));
        assert_eq!(lock_length(m, 4), Duration::minutes(8));
        assert_eq!(lock_length(m, 40), LONGEST_LOCK);
    }

    #[test]
    fn recovery_codes_compare_loosely() {
        assert_eq!(normal_code(" AB12c-3dE45 "), "ab12c3de45");
        let codes = new_recovery_codes();
        assert_eq!(codes.len(), 10);
        assert!(codes.iter().all(|c| c.len() == 11));
    }
}
