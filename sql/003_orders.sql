-- Orders, their items, every state change with its cause, and the Stripe
-- events received (deduplicated by event id).

CREATE TABLE orders (
    id                 bigserial PRIMARY KEY,
    ref                text        NOT NULL UNIQUE,   -- shown to people
    status_token       text        NOT NULL UNIQUE,   -- 128-bit, hex
    status             text        NOT NULL DEFAULT 'pending_payment'
        CHECK (status IN ('pending_payment', 'paid', 'in_production',
                          'shipped', 'delivered', 'expired', 'cancelled',
                          'refunded', 'needs_review')),
    email              text        NOT NULL,
    currency           char(3)     NOT NULL,
    total              bigint      NOT NULL CHECK (total > 0),
    physical           boolean     NOT NULL,
    stripe_session_id  text UNIQUE,
    stripe_payment_intent text,
    checkout_url       text,
    expires_at         timestamptz,
    paid_amount        bigint,
    paid_currency      char(3),
    amount_refunded    bigint      NOT NULL DEFAULT 0,
    shipping_name      text,
    shipping_address   jsonb,
    review_reason      text,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    paid_at            timestamptz
);

CREATE INDEX orders_status ON orders (status, created_at);
CREATE INDEX orders_email ON orders (lower(email));
CREATE INDEX orders_payment_intent ON orders (stripe_payment_intent);

CREATE TABLE order_items (
    order_id     bigint  NOT NULL REFERENCES orders ON DELETE CASCADE,
    line         integer NOT NULL,
    photo_id     text    NOT NULL,
    product_id   text    NOT NULL,
    title        text    NOT NULL,          -- as sold, kept if renamed
    product_name text    NOT NULL,
    kind         text    NOT NULL,
    quantity     integer NOT NULL CHECK (quantity BETWEEN 1 AND 99),
    unit_amount  bigint  NOT NULL CHECK (unit_amount > 0),
    amount       bigint  NOT NULL,
    PRIMARY KEY (order_id, line)
);

CREATE TABLE order_events (
    id           bigserial PRIMARY KEY,
    order_id     bigint      NOT NULL REFERENCES orders ON DELETE CASCADE,
    from_status  text,
    to_status    text        NOT NULL,
    cause        text        NOT NULL,      -- stripe:evt_..., admin, job:N
    detail       jsonb       NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX order_events_order ON order_events (order_id, id);

CREATE TABLE stripe_events (
    id           text PRIMARY KEY,          -- evt_..., the dedupe key
    type         text        NOT NULL,
    order_id     bigint REFERENCES orders ON DELETE SET NULL,
    result       text        NOT NULL,
    payload      jsonb       NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX stripe_events_order ON stripe_events (order_id);

-- Forward-only state machine.  Returns true when the order moved; an event
-- arriving late (expired after paid, paid after refunded) changes nothing.
CREATE FUNCTION order_transition(p_order bigint, p_to text, p_cause text,
                                 p_detail jsonb DEFAULT '{}')
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    v_from text;
BEGIN
    SELECT status INTO v_from FROM orders WHERE id = p_order FOR UPDATE;
    IF NOT FOUND OR v_from = p_to THEN
        RETURN false;
    END IF;

    IF NOT (p_to = ANY (CASE v_from
        WHEN 'pending_payment' THEN ARRAY['paid', 'expired', 'cancelled',
                                          'refunded', 'needs_review']
        WHEN 'paid'            THEN ARRAY['in_production', 'shipped',
                                          'delivered', 'cancelled',
                                          'refunded', 'needs_review']
        WHEN 'in_production'   THEN ARRAY['shipped', 'delivered',
                                          'refunded', 'needs_review']
        WHEN 'shipped'         THEN ARRAY['delivered', 'refunded',
                                          'needs_review']
        WHEN 'delivered'       THEN ARRAY['refunded', 'needs_review']
        WHEN 'needs_review'    THEN ARRAY['paid', 'in_production', 'shipped',
                                          'delivered', 'cancelled',
                                          'refunded']
        ELSE ARRAY[]::text[] END))
    THEN
        RETURN false;
    END IF;

    UPDATE orders SET status = p_to, updated_at = now(),
                      paid_at = CASE WHEN p_to = 'paid' THEN now()
                                     ELSE paid_at END
     WHERE id = p_order;

    INSERT INTO order_events (order_id, from_status, to_status, cause, detail)
    VALUES (p_order, v_from, p_to, p_cause, p_detail);

    RETURN true;
END $$;
