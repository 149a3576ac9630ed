-- Events, as sqlite-es reads and writes them, plus a global position.
-- SQLite has one writer at a time, so a position assigned inside the
-- inserting transaction follows commit order. It is a real column (not the
-- rowid, which VACUUM may renumber) so that checkpoints stay valid.
CREATE TABLE events
(
    aggregate_type text                          NOT NULL,
    aggregate_id   text                          NOT NULL,
    sequence       integer CHECK (sequence >= 0) NOT NULL,
    event_type     text                          NOT NULL,
    event_version  text                          NOT NULL,
    payload        text                          NOT NULL,
    metadata       text                          NOT NULL,
    position       integer,
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
) STRICT;

CREATE UNIQUE INDEX events_position ON events (position);

CREATE TRIGGER events_assign_position
    AFTER INSERT ON events
    WHEN NEW.position IS NULL
BEGIN
    UPDATE events
       SET position = (SELECT coalesce(max(position), 0) + 1 FROM events)
     WHERE rowid = NEW.rowid;
END;

-- sqlite-es wants a snapshot table to exist; kehoach does not snapshot.
CREATE TABLE snapshots
(
    aggregate_type   text                                  NOT NULL,
    aggregate_id     text                                  NOT NULL,
    last_sequence    integer CHECK (last_sequence >= 0)    NOT NULL,
    current_snapshot integer CHECK (current_snapshot >= 0) NOT NULL,
    payload          text                                  NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, last_sequence)
) STRICT;

-- Where each projection has read the feed up to; updated in the same
-- transaction as the views it feeds.
CREATE TABLE projection_checkpoints
(
    name           text PRIMARY KEY,
    tx             integer NOT NULL DEFAULT 0,
    position       integer NOT NULL DEFAULT 0,
    events_applied integer NOT NULL DEFAULT 0
) STRICT;

CREATE TABLE plan_view
(
    plan_id text PRIMARY KEY,
    version integer NOT NULL,
    payload text    NOT NULL
) STRICT;

CREATE TABLE task_view
(
    aggregate_id text PRIMARY KEY,
    plan_id      text    NOT NULL,
    task_id      text    NOT NULL,
    version      integer NOT NULL,
    payload      text    NOT NULL
) STRICT;

-- Open milestones by due date: what the reminder scheduler reads.
CREATE TABLE due_index
(
    aggregate_id text NOT NULL,
    milestone_id text NOT NULL,
    due          text NOT NULL,
    status       text NOT NULL,
    PRIMARY KEY (aggregate_id, milestone_id)
) STRICT;

CREATE INDEX due_index_by_due ON due_index (due);
