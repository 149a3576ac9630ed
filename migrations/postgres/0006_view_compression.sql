-- Task and plan views are a few KB of JSON each, so PostgreSQL compresses
-- them; lz4 does that several times faster than the default pglz, which
-- showed in the time to rebuild the views. Rows already stored keep their
-- compression until rewritten.
ALTER TABLE task_view ALTER COLUMN payload SET COMPRESSION lz4;
ALTER TABLE plan_view ALTER COLUMN payload SET COMPRESSION lz4;
