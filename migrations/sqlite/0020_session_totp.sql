-- The two-factor secret offered before enrolment, drawn per session: two
-- half-signed-in sessions of one account never see the same secret, and a
-- secret shown to one browser cannot be confirmed from another.
ALTER TABLE sessions ADD COLUMN totp_pending text;
