//! Settings from flags, environment and an optional file, with defaults that
//! work with no configuration at all. Flags win over the environment, which
//! wins over the file (`./kehoach.toml`, or `--config` / `KEHOACH_CONFIG`).

use crate::domain::dates::parse_date;
use crate::store::{DbUrl, StoreError};
use chrono::{DateTime, TimeZone, Utc};
use serde::Deserialize;
use std::path::{Path, PathBuf};

pub const DEFAULT_CONFIG_FILE: &str = "kehoach.toml";
pub const DEFAULT_WORKFLOWS: &str = "workflows";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("không đọc được tệp cấu hình {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("tệp cấu hình {path} không hợp lệ: {reason}")]
    Parse { path: String, reason: String },
    #[error(
        "thời điểm --now không hợp lệ {0:?}: dùng RFC 3339 (2024-03-01T08:00:00+07:00) hoặc một ngày (2024-03-01)"
    )]
    Now(String),
    #[error(transparent)]
    Db(#[from] StoreError),
}

/// The optional configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub db: Option<String>,
    pub workflows: Option<PathBuf>,
    /// `smtp://…` or `smtps://…`; without it e-mails are written to `outbox_dir`.
    pub smtp_url: Option<String>,
    pub mail_from: Option<String>,
    pub base_url: Option<String>,
    pub outbox_dir: Option<PathBuf>,
    pub smtp_max_attempts: Option<u32>,
    /// Address of the HTTP server of `serve`.
    pub listen: Option<String>,
}

pub const DEFAULT_MAIL_FROM: &str = "kehoach <kehoach@localhost>";
pub const DEFAULT_BASE_URL: &str = "http://127.0.0.1:8080";
pub const DEFAULT_OUTBOX_DIR: &str = "./data/outbox";

/// Mail settings: environment (`KEHOACH_SMTP_URL`, `KEHOACH_MAIL_FROM`,
/// `KEHOACH_BASE_URL`, `KEHOACH_OUTBOX_DIR`, `KEHOACH_SMTP_MAX_ATTEMPTS`)
/// over the file over defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailSettings {
    pub smtp_url: Option<String>,
    pub from: String,
    pub base_url: String,
    pub outbox_dir: PathBuf,
    pub max_attempts: u32,
}

impl MailSettings {
    pub fn resolve(file: &FileConfig) -> Self {
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        Self {
            smtp_url: env("KEHOACH_SMTP_URL").or_else(|| file.smtp_url.clone()),
            from: env("KEHOACH_MAIL_FROM")
                .or_else(|| file.mail_from.clone())
                .unwrap_or_else(|| DEFAULT_MAIL_FROM.into()),
            base_url: env("KEHOACH_BASE_URL")
                .or_else(|| file.base_url.clone())
                .unwrap_or_else(|| DEFAULT_BASE_URL.into()),
            outbox_dir: env("KEHOACH_OUTBOX_DIR")
                .map(PathBuf::from)
                .or_else(|| file.outbox_dir.clone())
                .unwrap_or_else(|| DEFAULT_OUTBOX_DIR.into()),
            max_attempts: env("KEHOACH_SMTP_MAX_ATTEMPTS")
                .and_then(|v| v.parse().ok())
                .or(file.smtp_max_attempts)
                .unwrap_or(6)
                .max(1),
        }
    }

    /// The domain of the From address, for Message-IDs.
    pub fn mail_domain(&self) -> String {
        let addr = self
            .from
            .rsplit_once('<')
            .map_or(self.from.as_str(), |(_, a)| a)
            .trim_end_matches('>');
        addr.rsplit_once('@').map_or("localhost", |(_, d)| d).trim().to_string()
    }
}

impl FileConfig {
    /// Reads `explicit` if given (it must exist), else `./kehoach.toml` if present.
    pub fn load(explicit: Option<&Path>) -> Result<Self, ConfigError> {
        let path = match explicit {
            Some(p) => p.to_path_buf(),
            None if Path::new(DEFAULT_CONFIG_FILE).exists() => PathBuf::from(DEFAULT_CONFIG_FILE),
            None => return Ok(Self::default()),
        };
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.display().to_string(),
            reason: crate::store::one_line(e.message()),
        })
    }
}

/// The database: `--db`, then `KEHOACH_DB`, then `DATABASE_URL`, then the
/// file, then `./data/kehoach.db`.
pub fn resolve_db(flag: Option<&str>, file: &FileConfig) -> Result<DbUrl, ConfigError> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let chosen = flag
        .map(str::to_string)
        .or_else(|| env("KEHOACH_DB"))
        .or_else(|| env("DATABASE_URL"))
        .or_else(|| file.db.clone());
    Ok(match chosen {
        Some(url) => DbUrl::parse(&url)?,
        None => DbUrl::default(),
    })
}

/// Parses `--now`: an RFC 3339 instant, or a date meaning the start of that
/// day in Vietnam.
pub fn parse_now(s: &str) -> Result<DateTime<Utc>, ConfigError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s.trim()) {
        return Ok(t.with_timezone(&Utc));
    }
    let date = parse_date(s).map_err(|_| ConfigError::Now(s.to_string()))?;
    let midnight = date.and_hms_opt(0, 0, 0).expect("midnight");
    chrono_tz::Asia::Ho_Chi_Minh
        .from_local_datetime(&midnight)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| ConfigError::Now(s.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn now_accepts_instants_and_dates() {
        assert_eq!(
            parse_now("2024-03-01").unwrap().to_rfc3339(),
            "2024-02-29T17:00:00+00:00"
        );
        assert_eq!(
            parse_now("2024-03-01T08:00:00+07:00").unwrap().to_rfc3339(),
            "2024-03-01T01:00:00+00:00"
        );
        assert!(parse_now("yesterday").is_err());
        assert!(parse_now("2024-02-30").is_err());
    }
}
