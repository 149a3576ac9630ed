-- Personal notices: an account told at its own address of a decision on
-- what it filed, a message addressed to it, or a submission waiting for
-- it (besides the agency's digest). One row per event and account, made
-- from the feed by its own reader (checkpoint 'notices'), which a rebuild
-- of the views never resets: a notice is made once. The reader starts at
-- the events already stored when this migration runs, so an older store
-- never mails people about its past.
CREATE TABLE personal_notices
(
    id              text    NOT NULL PRIMARY KEY,
    aggregate_id    text    NOT NULL,
    sequence        bigint  NOT NULL,
    milestone_id    text    NOT NULL,
    obligation      text    NOT NULL,
    user_id         text    NOT NULL,
    address         text    NOT NULL,
    kind            text    NOT NULL,
    subject         text    NOT NULL,
    body            text    NOT NULL,
    link            text    NOT NULL,
    message_id      text    NOT NULL,
    created_at      text    NOT NULL,
    status          text    NOT NULL DEFAULT 'queued',
    attempts        bigint  NOT NULL DEFAULT 0,
    next_attempt_at text    NOT NULL,
    last_error      text,
    sent_at         text
);

CREATE INDEX personal_notices_due ON personal_notices (status, next_attempt_at);
CREATE INDEX personal_notices_user ON personal_notices (user_id, created_at);

-- Each account's choice per kind of personal notice; no row: on.
CREATE TABLE notice_settings
(
    user_id text    NOT NULL REFERENCES users (id),
    kind    text    NOT NULL,
    enabled boolean NOT NULL,
    PRIMARY KEY (user_id, kind)
);

INSERT INTO projection_checkpoints (name, tx, position, events_applied)
SELECT 'notices',
       coalesce((SELECT tx_id::text::bigint FROM events ORDER BY tx_id DESC, position DESC LIMIT 1), 0),
       coalesce((SELECT position FROM events ORDER BY tx_id DESC, position DESC LIMIT 1), 0),
       0
ON CONFLICT (name) DO NOTHING;
