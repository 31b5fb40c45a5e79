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
