-- Obligations per agency: task views now hold each milestone's obligations
-- and principals instead of one shared state. The views are emptied so that
-- the next catch-up rebuilds them from the events (release 0.1 events are
-- read as documented in docs/audit/canonical-form.md, "Release 0.1 events").
DELETE FROM due_index;
DELETE FROM outbox;
DELETE FROM task_view;
DELETE FROM plan_view;
DELETE FROM projection_checkpoints WHERE name = 'views';
