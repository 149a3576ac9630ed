-- Task views now keep what each obligation's current round filed (notes,
-- KPI values, links, evidence files) for the approver. The views are
-- emptied so that the next catch-up rebuilds them from the events.
DELETE FROM due_index;
DELETE FROM outbox;
DELETE FROM task_view;
DELETE FROM plan_view;
DELETE FROM projection_checkpoints WHERE name = 'views';
