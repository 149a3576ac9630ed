-- The feed's horizon over kehoach's own writers (docs/architecture.md,
-- "Feed order on PostgreSQL").
--
-- Until this migration the feed read only below the oldest transaction
-- running anywhere on the server (pg_snapshot_xmin), so an idle transaction
-- in another database, or any long transaction, stalled every view and made
-- `audit verify` miss committed events. The feed now reads below the oldest
-- transaction that writes *events* in this database. To know those
-- transactions, every one of them holds a shared advisory lock on the
-- two-key pair (1801807983, 19) — 'keho', this migration's number —
-- from before its first write until it ends. The trigger below takes that
-- lock for any INSERT into events, so no code path (ours, postgres-es's, a
-- later one) can write an event without being seen, and it refuses an
-- events INSERT in a transaction that already wrote something else: such a
-- transaction might have taken its id before the lock, which would let a
-- reader's horizon pass it. Writers that write other tables first take the
-- lock at their start (store::feed::begin_writing).
--
-- Shared locks never wait for each other: writers do not serialise. The
-- row order of the feed, (tx_id, position), is unchanged, so stores written
-- by earlier releases keep their order and their checkpoints' cursors.
CREATE FUNCTION kehoach_feed_writer() RETURNS trigger
    LANGUAGE plpgsql AS
$$
BEGIN
    IF current_setting('kehoach.feed_writer', true) IS DISTINCT FROM 'on' THEN
        IF pg_current_xact_id_if_assigned() IS NOT NULL THEN
            RAISE EXCEPTION 'kehoach: ghi sự kiện phải là việc ghi đầu tiên của giao dịch (hoặc gọi begin_writing trước)'
                USING ERRCODE = 'P0001';
        END IF;
        PERFORM pg_advisory_xact_lock_shared(1801807983, 19);
        PERFORM set_config('kehoach.feed_writer', 'on', true);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER events_feed_writer
    BEFORE INSERT ON events
    FOR EACH STATEMENT
EXECUTE FUNCTION kehoach_feed_writer();
