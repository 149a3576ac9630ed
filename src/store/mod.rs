//! Storage: the embedded SQLite default and PostgreSQL, one behaviour.
//! Events go through cqrs-es repositories (`repository`), the commit-ordered
//! feed (`feed`) is read with our own SQL, and migrations run on open.

pub mod feed;
pub mod files;
pub mod info;
pub mod repository;
pub mod requests;
pub mod snapshot;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

pub const DEFAULT_SQLITE_PATH: &str = "./data/kehoach.db";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("địa chỉ cơ sở dữ liệu không hợp lệ {url:?}: {why} (dùng postgres://… hoặc sqlite://đường/dẫn.db)")]
    BadUrl { url: String, why: String },
    #[error("không tạo được thư mục {dir}: {source}")]
    CreateDir { dir: String, source: std::io::Error },
    #[error("không kết nối được cơ sở dữ liệu {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("không chạy được migration trên {url}: {reason}")]
    Migrate { url: String, reason: String },
    #[error("lỗi cơ sở dữ liệu khi {context}: {source}")]
    Query { context: &'static str, source: sqlx::Error },
    #[error("dữ liệu sự kiện hỏng ở {context}: {reason}")]
    Corrupt { context: String, reason: String },
}

impl StoreError {
    pub fn query(context: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
        move |source| StoreError::Query { context, source }
    }
}

/// Where the events live, as given by `--db`, `KEHOACH_DB` or `DATABASE_URL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbUrl {
    Sqlite(PathBuf),
    Postgres(String),
}

impl DbUrl {
    pub fn parse(url: &str) -> Result<Self, StoreError> {
        let u = url.trim();
        if u.starts_with("postgres://") || u.starts_with("postgresql://") {
            PgConnectOptions::from_str(u).map_err(|e| StoreError::BadUrl {
                url: redact(u),
                why: one_line(&e.to_string()),
            })?;
            return Ok(Self::Postgres(u.to_string()));
        }
        let path = u
            .strip_prefix("sqlite://")
            .or_else(|| u.strip_prefix("sqlite:"))
            .unwrap_or(u);
        if path.is_empty() || (path.contains("://") && !u.starts_with("sqlite:")) {
            return Err(StoreError::BadUrl {
                url: redact(u),
                why: "chỉ hỗ trợ postgres:// và sqlite:".into(),
            });
        }
        Ok(Self::Sqlite(PathBuf::from(path.split('?').next().unwrap_or(path))))
    }

    /// The URL with any password hidden, for messages and logs.
    pub fn display(&self) -> String {
        match self {
            Self::Sqlite(p) => format!("sqlite://{}", p.display()),
            Self::Postgres(u) => redact(u),
        }
    }
}

impl Default for DbUrl {
    fn default() -> Self {
        Self::Sqlite(PathBuf::from(DEFAULT_SQLITE_PATH))
    }
}

fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

pub(crate) fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A connection pool on one of the two databases.
#[derive(Clone, Debug)]
pub enum Store {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs the same block on whichever pool the store holds; the block is
/// compiled once per database type.
#[macro_export]
macro_rules! with_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match $store {
            $crate::store::Store::Sqlite($pool) => $body,
            $crate::store::Store::Postgres($pool) => $body,
        }
    };
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

impl Store {
    /// Connects, creating the SQLite file and its directory if needed, and
    /// runs the migrations.
    pub async fn open(url: &DbUrl) -> Result<Self, StoreError> {
        let shown = url.display();
        let connect_err = |e: sqlx::Error| StoreError::Connect {
            url: shown.clone(),
            reason: one_line(&e.to_string()),
        };
        let migrate_err = |e: sqlx::migrate::MigrateError| StoreError::Migrate {
            url: shown.clone(),
            reason: one_line(&e.to_string()),
        };
        let store = match url {
            DbUrl::Sqlite(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
                        dir: dir.display().to_string(),
                        source,
                    })?;
                }
                let options = SqliteConnectOptions::new()
                    .filename(path)
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(30));
                let pool = SqlitePoolOptions::new()
                    .max_connections(4)
                    .connect_with(options)
                    .await
                    .map_err(connect_err)?;
                SQLITE_MIGRATIONS.run(&pool).await.map_err(migrate_err)?;
                Store::Sqlite(pool)
            }
            DbUrl::Postgres(u) => {
                let options = PgConnectOptions::from_str(u).map_err(|e| StoreError::BadUrl {
                    url: shown.clone(),
                    why: one_line(&e.to_string()),
                })?;
                // One direct attempt first: the pool would hide "connection
                // refused" or "database does not exist" behind a timeout.
                use sqlx::Connection;
                let probe = sqlx::PgConnection::connect_with(&options).await.map_err(connect_err)?;
                let _ = probe.close().await;
                let pool = PgPoolOptions::new()
                    .max_connections(10)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(options)
                    .await
                    .map_err(connect_err)?;
                POSTGRES_MIGRATIONS.run(&pool).await.map_err(migrate_err)?;
                Store::Postgres(pool)
            }
        };
        Ok(store)
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Store::Sqlite(_) => "sqlite",
            Store::Postgres(_) => "postgres",
        }
    }

    pub fn repository(&self) -> repository::EventRepository {
        repository::EventRepository::new(self)
    }

    pub async fn close(&self) {
        with_pool!(self, pool => pool.close().await)
    }

    /// Runs `work` only if no other process is running work under the same
    /// `key` (a PostgreSQL session advisory lock, released when the work ends
    /// or the process dies). Returns None when another process holds it. On
    /// SQLite, one process writes at a time anyway, so the work just runs.
    pub async fn exclusively<T>(
        &self,
        key: i64,
        work: impl std::future::Future<Output = T>,
    ) -> Result<Option<T>, StoreError> {
        let Store::Postgres(pool) = self else {
            return Ok(Some(work.await));
        };
        let mut conn = pool
            .acquire()
            .await
            .map_err(StoreError::query("lấy kết nối cho khóa"))?;
        let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(key)
            .fetch_one(&mut *conn)
            .await
            .map_err(StoreError::query("lấy khóa tư vấn"))?;
        if !got {
            return Ok(None);
        }
        let result = work.await;
        sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(key)
            .execute(&mut *conn)
            .await
            .map_err(StoreError::query("trả khóa tư vấn"))?;
        Ok(Some(result))
    }

    /// Number of stored events.
    pub async fn event_count(&self) -> Result<i64, StoreError> {
        with_pool!(self, pool => sqlx::query_scalar::<_, i64>("SELECT count(*) FROM events")
            .fetch_one(pool)
            .await
            .map_err(StoreError::query("đếm sự kiện")))
    }

    /// Aggregate ids of one type whose id starts with `prefix`.
    pub async fn aggregate_ids(&self, aggregate_type: &str, prefix: &str) -> Result<Vec<String>, StoreError> {
        let pattern = format!(
            "{}%",
            prefix.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
        );
        with_pool!(self, pool => sqlx::query_scalar::<_, String>(
            "SELECT DISTINCT aggregate_id FROM events WHERE aggregate_type = $1 AND aggregate_id LIKE $2 ESCAPE '\\' ORDER BY aggregate_id",
        )
        .bind(aggregate_type)
        .bind(pattern)
        .fetch_all(pool)
        .await
        .map_err(StoreError::query("liệt kê nhiệm vụ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_pick_the_database() {
        assert_eq!(
            DbUrl::parse("postgres://u:secret@h/db").unwrap(),
            DbUrl::Postgres("postgres://u:secret@h/db".into())
        );
        assert_eq!(
            DbUrl::parse("sqlite://./data/x.db").unwrap(),
            DbUrl::Sqlite("./data/x.db".into())
        );
        assert_eq!(DbUrl::parse("sqlite:x.db").unwrap(), DbUrl::Sqlite("x.db".into()));
        assert_eq!(DbUrl::parse("x.db").unwrap(), DbUrl::Sqlite("x.db".into()));
        assert!(DbUrl::parse("mysql://h/db").is_err());
        assert_eq!(
            DbUrl::parse("postgres://u:secret@h/db").unwrap().display(),
            "postgres://u:***@h/db"
        );
    }
}
