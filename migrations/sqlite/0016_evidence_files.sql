-- Evidence files attached to reports and submissions, addressed by the
-- SHA-256 of their bytes (the events carry the hash, so the hash chain
-- covers them). Kept in the database so every `serve` process sees them.
-- A file is written before the event that references it; a file that no
-- event references (the action was then refused) is harmless.
CREATE TABLE evidence_files
(
    sha256     text PRIMARY KEY,
    size       integer NOT NULL,
    media_type text NOT NULL,
    bytes      blob NOT NULL,
    stored_at  text NOT NULL
);
