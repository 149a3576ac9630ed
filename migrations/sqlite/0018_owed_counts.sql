-- A plan page's counts per implementing agency come from the index rows
-- each agency owes, read by plan: without this index the query would scan
-- the rows of every plan in the store.
CREATE INDEX obligation_index_owed ON obligation_index (plan_id, owes, viewer, aggregate_id);
