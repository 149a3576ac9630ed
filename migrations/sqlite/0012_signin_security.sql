-- Sign-in that holds up (issue 13).
--
-- Failed sign-ins, per account (the normalised e-mail, whether or not an
-- account has it) and per client address: shared by every process on the
-- database and kept across restarts. Rows older than the counting window
-- are deleted as new ones come.
CREATE TABLE signin_failures
(
    scope     text NOT NULL, -- 'account', 'address' or 'code' (two-factor codes)
    key       text NOT NULL,
    failed_at text NOT NULL
);
CREATE INDEX signin_failures_by_key ON signin_failures (scope, key, failed_at);

-- Current and past locks: `until` is when the lock ends, `level` how many
-- locks in a row the key has had (each lasts twice as long as the last).
CREATE TABLE signin_locks
(
    scope text    NOT NULL,
    key   text    NOT NULL,
    until text    NOT NULL,
    level integer NOT NULL,
    PRIMARY KEY (scope, key)
);

-- Sessions: when last used (idle timeout), from where and with what, and
-- whether still waiting for the second factor (not signed in yet).
ALTER TABLE sessions ADD COLUMN last_seen_at text;
ALTER TABLE sessions ADD COLUMN client text NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN user_agent text NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN pending integer NOT NULL DEFAULT 0;

-- Revoked sign-in links (a password was set another way) are marked used.
-- Two-factor sign-in: the TOTP secret (base32; never in events or logs),
-- the last time step a code was accepted for (each code works once), and
-- a secret being enrolled (confirmed by a code before it counts).
ALTER TABLE users ADD COLUMN totp_secret text;
ALTER TABLE users ADD COLUMN totp_last_step bigint NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN totp_pending text;

-- One-time recovery codes, by SHA-256.
CREATE TABLE recovery_codes
(
    code_hash text NOT NULL PRIMARY KEY,
    user_id   text NOT NULL REFERENCES users (id),
    used_at   text
);
