-- Idempotency keys (`--request-id`, the `Idempotency-Key` header). A write
-- that names a key is recorded here in the transaction of its events, keyed
-- by who asked (an account id, or the operator at a host) and the key, with
-- a fingerprint of what was asked and what it did (`outcome`, JSON): a retry
-- with the same key and the same request writes nothing and is answered from
-- this row; the same key with another request is refused. The events of the
-- request also carry the key as `request_id` in their metadata.
CREATE TABLE requests (
    scope text NOT NULL,
    request_id text NOT NULL,
    fingerprint text NOT NULL,
    outcome text NOT NULL,
    recorded_at text NOT NULL,
    PRIMARY KEY (scope, request_id)
);
