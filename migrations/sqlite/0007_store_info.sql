-- What kind of store this is: a production store (the default) or a
-- simulation store, where simulated time (`--now`) is allowed. One row.
-- The same fact is recorded as the `Store`/`store` event StoreInitialised,
-- written in the same transaction as this row, so that `audit verify` can
-- tell when the row was changed. `legacy` marks a store that already held
-- events when this table arrived: production, with no StoreInitialised event.
CREATE TABLE store_info (
    id integer PRIMARY KEY CHECK (id = 1),
    simulation boolean NOT NULL,
    legacy boolean NOT NULL DEFAULT false,
    recorded_at text NOT NULL
);
