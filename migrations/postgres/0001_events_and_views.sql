-- Events, as postgres-es reads and writes them, plus a feed position.
-- A bigserial alone is not commit-ordered under concurrency: a transaction
-- that took number 7 may commit after one that took 8. Each row also records
-- its transaction id; the feed reads only below the oldest transaction still
-- running (pg_snapshot_xmin), ordered by (tx_id, position), so no committed
-- event can ever appear behind a reader's checkpoint.
CREATE TABLE events
(
    aggregate_type text                         NOT NULL,
    aggregate_id   text                         NOT NULL,
    sequence       bigint CHECK (sequence >= 0) NOT NULL,
    event_type     text                         NOT NULL,
    event_version  text                         NOT NULL,
    payload        json                         NOT NULL,
    metadata       json                         NOT NULL,
    position       bigserial                    NOT NULL,
    tx_id          xid8                         NOT NULL DEFAULT pg_current_xact_id(),
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
);

CREATE INDEX events_feed ON events (tx_id, position);

CREATE TABLE snapshots
(
    aggregate_type   text                                 NOT NULL,
    aggregate_id     text                                 NOT NULL,
    last_sequence    bigint CHECK (last_sequence >= 0)    NOT NULL,
    current_snapshot bigint CHECK (current_snapshot >= 0) NOT NULL,
    payload          json                                 NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, last_sequence)
);

CREATE TABLE projection_checkpoints
(
    name           text PRIMARY KEY,
    tx             bigint NOT NULL DEFAULT 0,
    position       bigint NOT NULL DEFAULT 0,
    events_applied bigint NOT NULL DEFAULT 0
);

CREATE TABLE plan_view
(
    plan_id text PRIMARY KEY,
    version bigint NOT NULL,
    payload text   NOT NULL
);

CREATE TABLE task_view
(
    aggregate_id text PRIMARY KEY,
    plan_id      text   NOT NULL,
    task_id      text   NOT NULL,
    version      bigint NOT NULL,
    payload      text   NOT NULL
);

CREATE TABLE due_index
(
    aggregate_id text NOT NULL,
    milestone_id text NOT NULL,
    due          text NOT NULL,
    status       text NOT NULL,
    PRIMARY KEY (aggregate_id, milestone_id)
);

CREATE INDEX due_index_by_due ON due_index (due);
