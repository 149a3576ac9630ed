-- The lists people search (inbox, approval queue, a plan's tasks, the API
-- list) read this index instead of every task view: one row per task,
-- milestone, obligation and viewing agency ('*' for those who see
-- everything), with the columns the filters and sorts use. The projection
-- writes it in the same transaction as task_view; the views are emptied so
-- that the next catch-up rebuilds everything with it.
CREATE TABLE obligation_index (
    aggregate_id TEXT NOT NULL,
    viewer TEXT NOT NULL,
    milestone_id TEXT NOT NULL,
    obligation TEXT NOT NULL,
    plan_id TEXT NOT NULL,
    task_id TEXT NOT NULL,
    task_order TEXT NOT NULL,
    milestone_order BIGINT NOT NULL,
    title TEXT NOT NULL,
    milestone_title TEXT NOT NULL,
    status TEXT NOT NULL,
    due TEXT NOT NULL,
    approved_on TEXT NOT NULL,
    submitted_at TEXT NOT NULL,
    submitted_by TEXT NOT NULL,
    withdrawn BIGINT NOT NULL,
    roles BIGINT NOT NULL,
    owes BIGINT NOT NULL,
    concerns BIGINT NOT NULL,
    supervises BIGINT NOT NULL,
    search TEXT NOT NULL,
    PRIMARY KEY (aggregate_id, viewer, milestone_id, obligation)
);
CREATE INDEX obligation_index_due ON obligation_index (viewer, due, task_order);
CREATE INDEX obligation_index_task ON obligation_index (viewer, task_order, milestone_order);
CREATE INDEX obligation_index_title ON obligation_index (viewer, title);
CREATE INDEX obligation_index_status ON obligation_index (viewer, status, due);
CREATE INDEX obligation_index_plan ON obligation_index (viewer, plan_id, task_order);
DELETE FROM due_index;
DELETE FROM outbox;
DELETE FROM task_view;
DELETE FROM plan_view;
DELETE FROM projection_checkpoints WHERE name = 'views';
