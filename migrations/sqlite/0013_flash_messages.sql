-- Notices a page shows once to the session that caused them ("Đã ghi
-- nhận…" after an action), kept here instead of in the redirect's URL so
-- that no page prints text taken from its address. Keyed by the session's
-- token hash (sessions.token_hash); read once, then deleted.
CREATE TABLE flash_messages
(
    id           integer PRIMARY KEY AUTOINCREMENT,
    session_hash text NOT NULL,
    kind         text NOT NULL,
    message      text NOT NULL,
    created_at   text NOT NULL
);

CREATE INDEX flash_messages_session ON flash_messages (session_hash);
