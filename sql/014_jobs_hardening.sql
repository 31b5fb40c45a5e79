-- 014: jobs hardening and idempotent checkout.
--
-- Leases name their owner ("host/pid/start"); runners look up the open
-- leases of their own host to release those of processes that are gone.
-- A checkout sent with an Idempotency-Key is remembered for a while so
-- that the client's retry gets the first order back instead of a second.

CREATE INDEX jobs_leased ON jobs (locked_by)
    WHERE done_at IS NULL AND locked_until IS NOT NULL;


-- Neither the client's key nor the order's status token is kept in clear:
-- the key as its SHA-256, the token XOR a pad derived from the key (only
-- the client holding the key can turn it back into the status link).
CREATE TABLE checkout_idempotency (
    key_hash      text        PRIMARY KEY,
    request_hash  text        NOT NULL,   -- SHA-256 of the normalised cart
    order_id      bigint      NOT NULL REFERENCES orders (id)
                                  ON DELETE CASCADE,
    token_enc     text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL
);

CREATE INDEX checkout_idempotency_expires ON checkout_idempotency (expires_at);
