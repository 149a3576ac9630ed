-- The day the scheduler next has something to queue for each open
-- milestone, so that a pass reads only the milestones whose day has come.
-- The views are emptied so that the next catch-up fills the new column from
-- the events (views are always rebuildable).
ALTER TABLE due_index ADD COLUMN next_reminder text;
CREATE INDEX due_index_by_next_reminder ON due_index (next_reminder);
DELETE FROM due_index;
DELETE FROM outbox;
DELETE FROM task_view;
DELETE FROM plan_view;
DELETE FROM projection_checkpoints WHERE name = 'views';
