-- The passes `serve` owes: each plan's reminder pass and the checkpoint are
-- due at their cron times. `last_due` is the latest cron time the last
-- completed pass covered; the next pass is due at the first cron time after
-- it, and a late one runs once, as soon as it can (docs/operations.md,
-- "Passes"). Not derived from the events: losing it costs one extra pass,
-- which is idempotent.
CREATE TABLE passes
(
    name         text PRIMARY KEY,
    last_due     text NOT NULL,
    completed_at text NOT NULL,
    late_seconds bigint NOT NULL DEFAULT 0
);
