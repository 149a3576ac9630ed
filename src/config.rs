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
    /// Hours a digest's transient failures are retried (default 120).
    pub smtp_retry_hours: Option<u32>,
    /// Address of the HTTP server of `serve`.
    pub listen: Option<String>,
    /// Sign-in and session limits (see `SecuritySettings`).
    pub signin_max_failures: Option<u32>,
    pub signin_window_minutes: Option<u32>,
    pub signin_lock_minutes: Option<u32>,
    pub session_idle_minutes: Option<u32>,
    pub session_max_hours: Option<u32>,
    pub reset_link_minutes: Option<u32>,
    /// Addresses of reverse proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Option<Vec<String>>,
    /// Size limit of one evidence file, in MiB (default 10).
    pub max_file_mb: Option<u32>,
}

pub const DEFAULT_MAIL_FROM: &str = "kehoach <kehoach@localhost>";
pub const DEFAULT_BASE_URL: &str = "http://127.0.0.1:8080";
pub const DEFAULT_OUTBOX_DIR: &str = "./data/outbox";

/// The web address people reach a server listening on `addr` by: the
/// address itself, or this machine's name when it listens on every
/// interface (0.0.0.0 or ::, which no browser can open).
pub fn base_url_for(addr: &std::net::SocketAddr) -> String {
    if addr.ip().is_unspecified() {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".into());
        return format!("http://{host}:{}", addr.port());
    }
    format!("http://{addr}")
}

/// Whether `base_url` names the server listening on `addr`: the same port
/// (80/443 by default) and, when it names an address, the same address. A
/// name (kehoach.example) is taken to be right when the port is.
pub fn base_url_matches(base_url: &str, addr: &std::net::SocketAddr) -> bool {
    let (scheme, rest) = base_url.split_once("://").unwrap_or(("http", base_url));
    let authority = rest.split('/').next().unwrap_or(rest);
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !p.contains(']') => (h, p.parse::<u16>().ok()),
        _ => (authority, None),
    };
    let port = port.unwrap_or(if scheme.eq_ignore_ascii_case("https") { 443 } else { 80 });
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let same_host = match host.parse::<std::net::IpAddr>() {
        Ok(ip) => addr.ip().is_unspecified() || ip == addr.ip(),
        Err(_) => true,
    };
    same_host && port == addr.port()
}

/// Mail settings: environment (`KEHOACH_SMTP_URL`, `KEHOACH_MAIL_FROM`,
/// `KEHOACH_BASE_URL`, `KEHOACH_OUTBOX_DIR`, `KEHOACH_SMTP_MAX_ATTEMPTS`,
/// `KEHOACH_SMTP_RETRY_HOURS`)
/// over the file over defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailSettings {
    pub smtp_url: Option<String>,
    pub from: String,
    pub base_url: String,
    /// Whether `base_url` was set (`KEHOACH_BASE_URL`, `base_url`); if not,
    /// it is derived from the address `serve` listens on.
    pub base_url_set: bool,
    pub outbox_dir: PathBuf,
    /// A cap on attempts, if one is set; by default retries span `retry_hours`.
    pub max_attempts: Option<u32>,
    pub retry_hours: u32,
}

impl MailSettings {
    pub fn resolve(file: &FileConfig) -> Self {
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let base_url = env("KEHOACH_BASE_URL").or_else(|| file.base_url.clone());
        Self {
            smtp_url: env("KEHOACH_SMTP_URL").or_else(|| file.smtp_url.clone()),
            from: env("KEHOACH_MAIL_FROM")
                .or_else(|| file.mail_from.clone())
                .unwrap_or_else(|| DEFAULT_MAIL_FROM.into()),
            base_url_set: base_url.is_some(),
            base_url: base_url
                .or_else(|| {
                    let listen = env("KEHOACH_LISTEN").or_else(|| file.listen.clone())?;
                    Some(base_url_for(&listen.parse().ok()?))
                })
                .unwrap_or_else(|| DEFAULT_BASE_URL.into()),
            outbox_dir: env("KEHOACH_OUTBOX_DIR")
                .map(PathBuf::from)
                .or_else(|| file.outbox_dir.clone())
                .unwrap_or_else(|| DEFAULT_OUTBOX_DIR.into()),
            max_attempts: env("KEHOACH_SMTP_MAX_ATTEMPTS")
                .and_then(|v| v.parse().ok())
                .or(file.smtp_max_attempts)
                .map(|n: u32| n.max(1)),
            retry_hours: env("KEHOACH_SMTP_RETRY_HOURS")
                .and_then(|v| v.parse().ok())
                .or(file.smtp_retry_hours)
                .unwrap_or(120),
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

/// Sign-in and session limits: environment (`KEHOACH_SIGNIN_MAX_FAILURES`,
/// `KEHOACH_SIGNIN_WINDOW_MINUTES`, `KEHOACH_SIGNIN_LOCK_MINUTES`,
/// `KEHOACH_SESSION_IDLE_MINUTES`, `KEHOACH_SESSION_MAX_HOURS`,
/// `KEHOACH_RESET_LINK_MINUTES`, `KEHOACH_TRUSTED_PROXIES`) and the size
/// limit of evidence files (`KEHOACH_MAX_FILE_MB`) over the file
/// over defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecuritySettings {
    /// Failures within `window` that lock an account or an address.
    pub max_failures: u32,
    pub window: chrono::Duration,
    /// The first lock's length; each further lock in a row doubles it (at most a day).
    pub lock: chrono::Duration,
    /// A session unused this long ends.
    pub session_idle: chrono::Duration,
    /// A session ends this long after sign-in, used or not.
    pub session_max: chrono::Duration,
    /// How long a link sent by "Quên mật khẩu" stays valid.
    pub reset_link: chrono::Duration,
    /// Peers whose `X-Forwarded-For` names the client; nobody's by default.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Size limit of one evidence file, in bytes (`KEHOACH_MAX_FILE_MB`,
    /// `max_file_mb`; 10 MiB by default).
    pub max_file_bytes: u64,
}

impl Default for SecuritySettings {
    fn default() -> Self {
        Self::resolve(&FileConfig::default())
    }
}

impl SecuritySettings {
    pub fn resolve(file: &FileConfig) -> Self {
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let number = |name: &str, from_file: Option<u32>, default: u32| {
            env(name)
                .and_then(|v| v.trim().parse().ok())
                .or(from_file)
                .unwrap_or(default)
                .max(1)
        };
        let minutes = |name: &str, from_file: Option<u32>, default: u32| {
            chrono::Duration::minutes(i64::from(number(name, from_file, default)))
        };
        let proxies = env("KEHOACH_TRUSTED_PROXIES")
            .map(|v| v.split(',').map(|p| p.trim().to_string()).collect())
            .or_else(|| file.trusted_proxies.clone())
            .unwrap_or_default();
        Self {
            max_failures: number("KEHOACH_SIGNIN_MAX_FAILURES", file.signin_max_failures, 10),
            window: minutes("KEHOACH_SIGNIN_WINDOW_MINUTES", file.signin_window_minutes, 15),
            lock: minutes("KEHOACH_SIGNIN_LOCK_MINUTES", file.signin_lock_minutes, 1),
            session_idle: minutes("KEHOACH_SESSION_IDLE_MINUTES", file.session_idle_minutes, 60),
            session_max: chrono::Duration::hours(i64::from(number(
                "KEHOACH_SESSION_MAX_HOURS",
                file.session_max_hours,
                12,
            ))),
            reset_link: minutes("KEHOACH_RESET_LINK_MINUTES", file.reset_link_minutes, 60),
            max_file_bytes: crate::domain::files::max_bytes(u64::from(number(
                "KEHOACH_MAX_FILE_MB",
                file.max_file_mb,
                crate::domain::files::DEFAULT_MAX_FILE_MB as u32,
            ))),
            trusted_proxies: proxies
                .iter()
                .filter(|p| !p.is_empty())
                .filter_map(|p| {
                    p.parse()
                        .map_err(|_| tracing::warn!(proxy = %p, "bỏ qua địa chỉ proxy tin cậy không hợp lệ"))
                        .ok()
                })
                .collect(),
        }
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
    #[test]
    fn the_web_address_follows_the_listening_address() {
        let at = |s: &str| s.parse::<std::net::SocketAddr>().unwrap();
        assert_eq!(base_url_for(&at("127.0.0.1:9000")), "http://127.0.0.1:9000");
        assert_eq!(base_url_for(&at("[::1]:9000")), "http://[::1]:9000");
        assert!(base_url_for(&at("0.0.0.0:9000")).ends_with(":9000"));
        assert!(!base_url_for(&at("0.0.0.0:9000")).contains("0.0.0.0"));
        assert!(base_url_matches("http://127.0.0.1:9000", &at("127.0.0.1:9000")));
        assert!(base_url_matches("http://127.0.0.1:9000/", &at("0.0.0.0:9000")));
        assert!(base_url_matches("http://kehoach.example:9000", &at("127.0.0.1:9000")));
        assert!(base_url_matches("http://[::1]:9000", &at("[::1]:9000")));
        assert!(!base_url_matches("http://127.0.0.1:8080", &at("127.0.0.1:9000")));
        assert!(!base_url_matches("http://10.0.0.5:9000", &at("127.0.0.1:9000")));
        // Behind a reverse proxy: said, since the ports differ.
        assert!(!base_url_matches("https://kehoach.example", &at("127.0.0.1:8080")));
        assert!(base_url_matches("https://kehoach.example", &at("0.0.0.0:443")));
    }

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
