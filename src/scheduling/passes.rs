//! Passes that `serve` owes. Each plan's reminder pass and the checkpoint
//! are due at their cron times; the ledger remembers the latest cron time
//! the last completed pass covered (in memory, and in the `passes` table so
//! that a restart knows it). A pass is owed from the first cron time after
//! that: whether the process was busy, the database down or the process
//! stopped when it came, the pass runs as soon as it can, once, covering
//! every cron time missed, and the log says how late it was.

use crate::store::{Store, StoreError};
use chrono::{DateTime, Duration, TimeZone, Utc};
use std::collections::BTreeMap;
use std::str::FromStr;

/// What a ledger entry says at some instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owed {
    /// Owed since `due`; running it now covers every cron time up to `covers`.
    Due { due: DateTime<Utc>, covers: DateTime<Utc> },
    /// Next owed at this instant.
    NotYet(DateTime<Utc>),
    /// The cron expression never fires (or does not parse).
    Never,
}

/// The first instant strictly after `t` at which `cron` fires in `tz`.
pub fn next_fire_after(cron: &str, tz: chrono_tz::Tz, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let schedule = cron::Schedule::from_str(cron).ok()?;
    schedule
        .after(&tz.from_utc_datetime(&t.naive_utc()))
        .next()
        .map(|f| f.with_timezone(&Utc))
}

/// The latest instant at or before `t` at which `cron` fires in `tz`,
/// looking back at most 400 days.
pub fn last_fire_at_or_before(cron: &str, tz: chrono_tz::Tz, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let schedule = cron::Schedule::from_str(cron).ok()?;
    let until = t + Duration::seconds(1);
    // Widening windows: an hourly or daily cron is found in the first.
    for back in [Duration::days(2), Duration::days(40), Duration::days(400)] {
        let from = tz.from_utc_datetime(&(until - back).naive_utc());
        let last = schedule
            .after(&from)
            .map(|f| f.with_timezone(&Utc))
            .take_while(|f| *f < until)
            .last();
        if last.is_some() {
            return last;
        }
    }
    None
}

/// The latest cron time each pass covered.
#[derive(Debug, Default, Clone)]
pub struct Ledger {
    last: BTreeMap<String, DateTime<Utc>>,
}

impl Ledger {
    /// The ledger as stored.
    pub async fn load(store: &Store) -> Result<Self, StoreError> {
        let rows: Vec<(String, String)> = crate::with_pool!(store, pool => sqlx::query_as(
            "SELECT name, last_due FROM passes"
        )
        .fetch_all(pool)
        .await
        .map_err(StoreError::query("đọc sổ các lượt chạy"))?);
        let last = rows
            .into_iter()
            .filter_map(|(name, at)| Some((name, DateTime::parse_from_rfc3339(&at).ok()?.with_timezone(&Utc))))
            .collect();
        Ok(Self { last })
    }

    /// When pass `name` (firing on `cron` in `tz`) is owed, seen at `now`.
    /// A pass never run before is owed now; one whose record lies after `now`
    /// (a simulated clock set back) is owed from the next cron time after now.
    pub fn owed(&self, name: &str, cron: &str, tz: chrono_tz::Tz, now: DateTime<Utc>) -> Owed {
        let covers = last_fire_at_or_before(cron, tz, now);
        let next = match self.last.get(name) {
            Some(last) if *last <= now => next_fire_after(cron, tz, *last),
            Some(_) => next_fire_after(cron, tz, now),
            None => {
                return match covers {
                    Some(c) => Owed::Due { due: now, covers: c },
                    None if next_fire_after(cron, tz, now).is_some() => Owed::Due { due: now, covers: now },
                    None => Owed::Never,
                }
            }
        };
        match next {
            Some(due) if due <= now => Owed::Due {
                due,
                covers: covers.unwrap_or(due),
            },
            Some(at) => Owed::NotYet(at),
            None => Owed::Never,
        }
    }

    /// Whether the ledger has an entry for `name`.
    pub fn knows(&self, name: &str) -> bool {
        self.last.contains_key(name)
    }

    /// Records that pass `name` completed at `now`, covering every cron time
    /// up to `covers`. Kept in memory at once; stored in `passes` if the
    /// database answers (if not, the next completion stores it, and a
    /// restart before that only runs the pass once more).
    pub async fn complete(
        &mut self,
        store: &Store,
        name: &str,
        covers: DateTime<Utc>,
        now: DateTime<Utc>,
        late: Duration,
    ) -> Result<(), StoreError> {
        self.last.insert(name.to_string(), covers);
        let text = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        crate::with_pool!(store, pool => sqlx::query(
            "INSERT INTO passes (name, last_due, completed_at, late_seconds) VALUES ($1, $2, $3, $4)
             ON CONFLICT (name) DO UPDATE SET last_due = excluded.last_due,
                 completed_at = excluded.completed_at, late_seconds = excluded.late_seconds",
        )
        .bind(name)
        .bind(text(covers))
        .bind(text(now))
        .bind(late.num_seconds())
        .execute(pool)
        .await
        .map(|_| ())
        .map_err(StoreError::query("ghi sổ các lượt chạy"))?);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIDNIGHT: &str = "0 0 0 * * *";
    const TZ: chrono_tz::Tz = chrono_tz::Asia::Ho_Chi_Minh;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn ledger(name: &str, last: &str) -> Ledger {
        Ledger {
            last: [(name.to_string(), at(last))].into(),
        }
    }

    #[test]
    fn a_pass_never_run_is_owed_at_once() {
        let now = at("2024-02-29T23:59:50+07:00");
        assert_eq!(
            Ledger::default().owed("r", MIDNIGHT, TZ, now),
            Owed::Due {
                due: now,
                covers: at("2024-02-29T00:00:00+07:00")
            }
        );
    }

    #[test]
    fn a_pass_still_busy_at_the_send_time_is_owed_when_it_ends() {
        // The start-up pass covered 29/02 and ran past midnight: 01/03 is owed, not skipped.
        let l = ledger("r", "2024-02-29T00:00:00+07:00");
        let now = at("2024-03-01T00:00:30+07:00");
        assert_eq!(
            l.owed("r", MIDNIGHT, TZ, now),
            Owed::Due {
                due: at("2024-03-01T00:00:00+07:00"),
                covers: at("2024-03-01T00:00:00+07:00")
            }
        );
        let before = at("2024-02-29T23:59:59+07:00");
        assert_eq!(
            l.owed("r", MIDNIGHT, TZ, before),
            Owed::NotYet(at("2024-03-01T00:00:00+07:00"))
        );
    }

    #[test]
    fn days_missed_while_stopped_make_one_late_pass() {
        let l = ledger("r", "2024-03-01T00:00:00+07:00");
        let now = at("2024-03-04T09:00:00+07:00");
        assert_eq!(
            l.owed("r", MIDNIGHT, TZ, now),
            Owed::Due {
                due: at("2024-03-02T00:00:00+07:00"),
                covers: at("2024-03-04T00:00:00+07:00")
            }
        );
    }

    #[test]
    fn a_record_after_a_clock_set_back_waits_for_the_next_cron_time() {
        let l = ledger("r", "2024-05-01T00:00:00+07:00");
        let now = at("2024-03-01T12:00:00+07:00");
        assert_eq!(
            l.owed("r", MIDNIGHT, TZ, now),
            Owed::NotYet(at("2024-03-02T00:00:00+07:00"))
        );
    }

    #[test]
    fn a_cron_that_does_not_parse_is_never_owed() {
        assert_eq!(
            ledger("r", "2024-05-01T00:00:00+07:00").owed("r", "not cron", TZ, at("2024-06-01T00:00:00Z")),
            Owed::Never
        );
    }
}
