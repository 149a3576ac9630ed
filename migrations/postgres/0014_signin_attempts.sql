-- Sign-in attempts are noted before they are checked (so that a burst of
-- concurrent requests cannot have more than the limit checked): each row
-- names its attempt, and a successful one is deleted by that name.
ALTER TABLE signin_failures ADD COLUMN attempt text NOT NULL DEFAULT '';
CREATE INDEX signin_failures_by_attempt ON signin_failures (attempt);
