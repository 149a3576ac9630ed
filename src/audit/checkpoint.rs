//! Checkpoints as events: the aggregate `Checkpoint`/`audit` records, from
//! time to time, the Merkle root over the heads of every other chain. A later
//! rewrite of whole chains no longer matches the roots recorded (and sent
//! out by e-mail) before it.

use crate::domain::task::Stamp;
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

pub const AGGREGATE_TYPE: &str = "Checkpoint";
pub const AGGREGATE_ID: &str = "audit";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CheckpointEvent {
    CheckpointRecorded {
        root: String,
        /// Events of other aggregates covered.
        events: u64,
        /// Chains covered.
        aggregates: u64,
        /// Feed cursor `[tx, position]`: every other event at or before it is covered.
        up_to: [i64; 2],
        /// The heads of the chains that changed since the previous
        /// checkpoint, so that a later rewrite can be pinned to its chain.
        #[serde(default)]
        heads: Vec<RecordedHead>,
        stamp: Stamp,
    },
}

/// `[aggregate type, aggregate id, sequence, hash]` of one chain's head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedHead(pub String, pub String, pub i64, pub String);

impl DomainEvent for CheckpointEvent {
    fn event_type(&self) -> String {
        "CheckpointRecorded".into()
    }

    fn event_version(&self) -> String {
        "1".into()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RecordCheckpoint {
    pub root: String,
    pub events: u64,
    pub aggregates: u64,
    pub up_to: [i64; 2],
    pub heads: Vec<RecordedHead>,
    pub stamp: Stamp,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("không ghi được điểm kiểm: {0}")]
pub struct CheckpointError(String);

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Checkpoints {
    pub count: u64,
    pub last_root: Option<String>,
    pub last_up_to: Option<[i64; 2]>,
}

impl Aggregate for Checkpoints {
    const TYPE: &'static str = AGGREGATE_TYPE;
    type Command = RecordCheckpoint;
    type Event = CheckpointEvent;
    type Error = CheckpointError;
    type Services = ();

    async fn handle(&mut self, c: RecordCheckpoint, _: &(), sink: &EventSink<Self>) -> Result<(), CheckpointError> {
        // Nothing new since the last checkpoint: recording it again adds nothing.
        if self.last_root.as_deref() == Some(c.root.as_str()) && self.last_up_to == Some(c.up_to) {
            return Ok(());
        }
        let event = CheckpointEvent::CheckpointRecorded {
            root: c.root,
            events: c.events,
            aggregates: c.aggregates,
            up_to: c.up_to,
            heads: c.heads,
            stamp: c.stamp,
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: CheckpointEvent) {
        let CheckpointEvent::CheckpointRecorded { root, up_to, .. } = event;
        self.count += 1;
        self.last_root = Some(root);
        self.last_up_to = Some(up_to);
    }
}
