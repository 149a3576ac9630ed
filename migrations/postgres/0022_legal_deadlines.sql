-- Legal deadlines (Civil Code 2015, Art. 147-148): a deadline on a
-- non-working day of the plan's calendar ends on the next working day.
-- The index keeps that day beside the date as written; overdue, the
-- windows and the counts read it. The reminders' next day (due_index) is
-- counted from it too. Events are unchanged: the views are emptied so that
-- the next catch-up rebuilds them from the events.
ALTER TABLE obligation_index ADD COLUMN due_legal TEXT NOT NULL DEFAULT '';
CREATE INDEX obligation_index_due_legal ON obligation_index (viewer, due_legal);
DELETE FROM obligation_index;
DELETE FROM due_index;
DELETE FROM outbox;
DELETE FROM task_view;
DELETE FROM plan_view;
DELETE FROM projection_checkpoints WHERE name = 'views';
