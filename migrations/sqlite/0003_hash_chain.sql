-- Tamper evidence: each event's hash over its canonical form, chained to the
-- previous event of the same aggregate (see docs/audit/canonical-form.md).
-- Written in the same INSERT as the event.
ALTER TABLE events ADD COLUMN prev_hash text;
ALTER TABLE events ADD COLUMN hash text;
