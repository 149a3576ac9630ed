-- People who use the web pages and the API. Not events: accounts are
-- administrative state, and every action a user takes on a task is an event
-- stamped with the user's agency and name.
CREATE TABLE users
(
    id            text    NOT NULL PRIMARY KEY,
    email         text    NOT NULL UNIQUE,
    name          text    NOT NULL,
    agency        text    NOT NULL,
    roles         text    NOT NULL,
    password_hash text,
    created_at    text    NOT NULL,
    disabled      integer NOT NULL DEFAULT 0
);

-- One-time sign-in links (to set a password), by SHA-256 of the token.
CREATE TABLE signin_links
(
    token_hash text NOT NULL PRIMARY KEY,
    user_id    text NOT NULL REFERENCES users (id),
    expires_at text NOT NULL,
    used_at    text
);

-- Browser sessions, by SHA-256 of the cookie value, with the CSRF token
-- every form of the session carries.
CREATE TABLE sessions
(
    token_hash text NOT NULL PRIMARY KEY,
    user_id    text NOT NULL REFERENCES users (id),
    csrf       text NOT NULL,
    created_at text NOT NULL,
    expires_at text NOT NULL
);

-- API tokens for machine clients, by SHA-256; the token itself is shown once.
CREATE TABLE api_tokens
(
    token_hash text    NOT NULL PRIMARY KEY,
    user_id    text    NOT NULL REFERENCES users (id),
    label      text    NOT NULL,
    created_at text    NOT NULL,
    revoked    integer NOT NULL DEFAULT 0
);

-- Each agency's secret calendar feed token. Kept readable so an agency's
-- users can find their feed address again; it only grants reading the
-- agency's deadlines.
CREATE TABLE calendar_tokens
(
    agency     text NOT NULL PRIMARY KEY,
    token      text NOT NULL UNIQUE,
    created_at text NOT NULL
);
