//! Production and simulation stores. A store is a production store unless it
//! was created as a simulation; only a simulation store takes simulated time
//! (`--now`, `simulate`). The kind is kept in the one-row `store_info` table,
//! read once when a store is opened, and recorded as the event
//! `StoreInitialised` of the aggregate `Store`/`store`, written in the same
//! transaction as the row (see `repository`), so `audit verify` can tell when
//! the row was changed.

use super::{Store, StoreError};
use crate::domain::task::Stamp;
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

pub const AGGREGATE_TYPE: &str = "Store";
pub const AGGREGATE_ID: &str = "store";
pub const INITIALISED: &str = "StoreInitialised";

/// The database's clock as RFC 3339 UTC with milliseconds: the time the
/// store records, which the clock of a `--now` process cannot move.
pub const SQLITE_NOW: &str = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')";
pub const POSTGRES_NOW: &str = "to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')";

/// What kind of store this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreMode {
    /// No event yet: it becomes a production store at its first write,
    /// unless it is created as a simulation first.
    Uninitialised,
    Production,
    Simulation,
    /// It held events before stores had a kind (an earlier release): production.
    Legacy,
}

impl StoreMode {
    pub fn is_simulation(self) -> bool {
        self == StoreMode::Simulation
    }

    pub fn label_vi(self) -> &'static str {
        match self {
            StoreMode::Uninitialised => "kho mới, chưa có dữ liệu (sẽ là kho thật)",
            StoreMode::Production => "kho thật",
            StoreMode::Simulation => "kho mô phỏng",
            StoreMode::Legacy => "kho thật (kho cũ, tạo trước khi có loại kho)",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum StoreEvent {
    StoreInitialised { simulation: bool, stamp: Stamp },
}

impl DomainEvent for StoreEvent {
    fn event_type(&self) -> String {
        INITIALISED.into()
    }

    fn event_version(&self) -> String {
        "1".into()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct InitialiseStore {
    pub simulation: bool,
    pub stamp: Stamp,
}

fn kind_vi(simulation: bool) -> &'static str {
    if simulation {
        "kho mô phỏng"
    } else {
        "kho thật"
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("kho này đã được tạo là {}; không đổi được thành {}", kind_vi(*.0), kind_vi(!*.0))]
pub struct StoreKindError(pub bool);

/// The store's kind as its events say: `None` until initialised.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StoreInfo {
    pub simulation: Option<bool>,
}

impl Aggregate for StoreInfo {
    const TYPE: &'static str = AGGREGATE_TYPE;
    type Command = InitialiseStore;
    type Event = StoreEvent;
    type Error = StoreKindError;
    type Services = ();

    async fn handle(&mut self, c: InitialiseStore, _: &(), sink: &EventSink<Self>) -> Result<(), StoreKindError> {
        match self.simulation {
            None => {
                let event = StoreEvent::StoreInitialised {
                    simulation: c.simulation,
                    stamp: c.stamp,
                };
                sink.write(event, self).await;
                Ok(())
            }
            Some(s) if s == c.simulation => Ok(()),
            Some(s) => Err(StoreKindError(s)),
        }
    }

    fn apply(&mut self, event: StoreEvent) {
        let StoreEvent::StoreInitialised { simulation, .. } = event;
        self.simulation = Some(simulation);
    }
}

/// The `store_info` row: (simulation, legacy).
pub type InfoRow = (bool, bool);

const SELECT_INFO_ROW: &str = "SELECT simulation, legacy FROM store_info WHERE id = 1";

impl super::snapshot::Snapshot {
    /// The `store_info` row in the snapshot, if there is one.
    pub async fn info_row(&mut self) -> Result<Option<InfoRow>, StoreError> {
        crate::with_snapshot!(self, conn => sqlx::query_as::<_, InfoRow>(SELECT_INFO_ROW)
        .fetch_optional(conn)
        .await
        .map_err(StoreError::query("đọc loại kho")))
    }
}

impl Store {
    /// The `store_info` row, if there is one.
    pub async fn info_row(&self) -> Result<Option<InfoRow>, StoreError> {
        crate::with_pool!(self, pool => sqlx::query_as::<_, InfoRow>(SELECT_INFO_ROW)
        .fetch_optional(pool)
        .await
        .map_err(StoreError::query("đọc loại kho")))
    }

    /// The store's kind. A store that holds events but has no kind yet was
    /// made by an earlier release: it is recorded as a legacy production
    /// store (a row, no event).
    pub async fn mode(&self) -> Result<StoreMode, StoreError> {
        if let Some(row) = self.info_row().await? {
            return Ok(mode_of(row));
        }
        let has_events = crate::with_pool!(self, pool => sqlx::query_scalar::<_, bool>(
            "SELECT EXISTS (SELECT 1 FROM events)",
        )
        .fetch_one(pool)
        .await
        .map_err(StoreError::query("đọc loại kho"))?);
        if !has_events {
            return Ok(StoreMode::Uninitialised);
        }
        let insert = |now: &str| {
            format!(
                "INSERT INTO store_info (id, simulation, legacy, recorded_at) VALUES (1, false, true, {now}) \
                 ON CONFLICT (id) DO NOTHING"
            )
        };
        match self {
            Store::Sqlite(pool) => sqlx::query(&insert(SQLITE_NOW)).execute(pool).await.map(|_| ()),
            Store::Postgres(pool) => sqlx::query(&insert(POSTGRES_NOW)).execute(pool).await.map(|_| ()),
        }
        .map_err(StoreError::query("ghi loại kho cũ"))?;
        // Another process may have initialised the store in between: read what won.
        Ok(self.info_row().await?.map_or(StoreMode::Legacy, mode_of))
    }
}

fn mode_of((simulation, legacy): InfoRow) -> StoreMode {
    match (simulation, legacy) {
        (true, _) => StoreMode::Simulation,
        (false, true) => StoreMode::Legacy,
        (false, false) => StoreMode::Production,
    }
}
