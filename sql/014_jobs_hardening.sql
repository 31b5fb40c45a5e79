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


-- checkout_create() behind an idempotency key (NULL: none).  The first
-- call creates the order and remembers the key; a repeat with the same
-- cart returns that order (replay, with the saved token and the checkout
-- URL if the session is attached); the same key with another cart is
-- refused.  Callers with one key are serialised by an advisory lock.
CREATE FUNCTION checkout_create_idempotent(p_key_hash text,
    p_request_hash text, p_token_enc text, p_keep interval,
    p_items jsonb, p_email text, p_currency text, p_token_hash text,
    p_expires_at timestamptz, p_reconcile_at timestamptz)
RETURNS TABLE (order_id bigint, order_ref text, total bigint,
               physical boolean, lines jsonb, replay boolean,
               saved_token text, saved_url text, expires_epoch bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_key    checkout_idempotency%ROWTYPE;
    v_order  orders%ROWTYPE;
    c        record;
BEGIN
    IF p_key_hash IS NOT NULL THEN
        PERFORM pg_advisory_xact_lock(
            hashtextextended('checkout_idempotency:' || p_key_hash, 0));

        DELETE FROM checkout_idempotency k WHERE k.expires_at <= now();

        SELECT * INTO v_key FROM checkout_idempotency k
         WHERE k.key_hash = p_key_hash;

        IF FOUND THEN
            IF v_key.request_hash <> p_request_hash THEN
                PERFORM darkroom_refuse(422, 'idempotency_key_reused',
                    'This Idempotency-Key was sent with another cart: '
                    'send a new key for a new cart.');
            END IF;

            SELECT * INTO v_order FROM orders o WHERE o.id = v_key.order_id;

            RETURN QUERY SELECT v_order.id, v_order.ref, v_order.total,
                v_order.physical,
                (SELECT coalesce(jsonb_agg(jsonb_build_object(
                            'name', i.title || ' — ' || i.product_name,
                            'unit_amount', i.unit_amount,
                            'quantity', i.quantity) ORDER BY i.line), '[]')
                   FROM order_items i WHERE i.order_id = v_order.id),
                true, v_key.token_enc, v_order.checkout_url,
                extract(epoch FROM v_order.expires_at)::bigint;
            RETURN;
        END IF;
    END IF;

    SELECT * INTO c FROM checkout_create(p_items, p_email, p_currency,
                                         p_token_hash, p_expires_at,
                                         p_reconcile_at);

    IF p_key_hash IS NOT NULL THEN
        INSERT INTO checkout_idempotency (key_hash, request_hash, order_id,
                                          token_enc, expires_at)
        VALUES (p_key_hash, p_request_hash, c.order_id, p_token_enc,
                now() + p_keep);
    END IF;

    RETURN QUERY SELECT c.order_id, c.order_ref, c.total, c.physical,
                        c.lines, false, p_token_enc, NULL::text,
                        extract(epoch FROM p_expires_at)::bigint;
END $$;


-- A checkout whose Stripe session could not be made frees its key: the
-- client's retry is a new attempt, not a replay of the failure.
CREATE OR REPLACE FUNCTION checkout_failed(p_order bigint, p_reason text)
RETURNS void LANGUAGE sql AS $$
    SELECT order_transition(p_order, 'cancelled', 'checkout',
                            jsonb_build_object('reason', p_reason));
    UPDATE jobs SET done_at = now(), last_error = 'checkout failed'
     WHERE dedupe_key = 'reconcile:' || p_order AND done_at IS NULL;
    DELETE FROM checkout_idempotency WHERE order_id = p_order;
$$;
