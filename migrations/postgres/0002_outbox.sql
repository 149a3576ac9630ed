-- Messages queued on tasks and their delivery, one row per recipient
-- agency: what the dispatcher reads. Derived from the events, like every
-- view; `views rebuild` recreates it.
CREATE TABLE outbox
(
    aggregate_id    text    NOT NULL,
    milestone_id    text    NOT NULL,
    reminder_key    text    NOT NULL,
    agency          text    NOT NULL,
    role            text    NOT NULL,
    kind            text    NOT NULL,
    window_day      text,
    queued_at       text    NOT NULL,
    due             text    NOT NULL,
    status          text    NOT NULL,
    attempts        bigint  NOT NULL,
    next_attempt_at text,
    message_id      text,
    last_error      text,
    PRIMARY KEY (aggregate_id, milestone_id, reminder_key, agency)
);

CREATE INDEX outbox_pending ON outbox (status, next_attempt_at);
