-- Print fulfilment through labs (Prodigi, theprintspace): which lab makes
-- each product, the lab orders a paid order is split into, their history,
-- their shipments, and the rules that move them.  darkroom's C code only
-- talks to the labs; every decision (split, retry or reroute, what a lab's
-- answer means for the order) is made here, in one transaction each.

-- which labs can make a product, with the lab's SKU and attributes; the
-- lowest priority is tried first
CREATE TABLE lab_products (
    product_id   text    NOT NULL REFERENCES products ON DELETE CASCADE,
    lab          text    NOT NULL CHECK (lab IN ('prodigi', 'printspace')),
    sku          text    NOT NULL CHECK (length(sku) BETWEEN 1 AND 100),
    attributes   jsonb   NOT NULL DEFAULT '{}'
                         CHECK (jsonb_typeof(attributes) = 'object'),
    sizing       text    NOT NULL DEFAULT 'fillPrintArea'
        CHECK (sizing IN ('fillPrintArea', 'fitPrintArea',
                          'stretchToPrintArea')),
    priority     integer NOT NULL DEFAULT 1,
    PRIMARY KEY (product_id, lab)
);

CREATE TABLE lab_orders (
    id                bigserial PRIMARY KEY,
    order_id          bigint      NOT NULL REFERENCES orders ON DELETE CASCADE,
    lab               text        NOT NULL
                                  CHECK (lab IN ('prodigi', 'printspace')),
    status            text        NOT NULL DEFAULT 'pending'
        CHECK (status IN ('held', 'pending', 'submitted', 'in_production',
                          'shipped', 'cancelling', 'cancelled', 'rerouted',
                          'needs_attention')),
    lab_order_id      text,                 -- the lab's id, once it has one
    lab_status        text,                 -- the lab's own words
    idempotency_key   text        NOT NULL UNIQUE,
    attempts          integer     NOT NULL DEFAULT 0,  -- failed sends
    first_failure_at  timestamptz,
    last_error        text,
    hold_until        timestamptz,
    rerouted_from     bigint REFERENCES lab_orders,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    submitted_at      timestamptz
);

CREATE INDEX lab_orders_order ON lab_orders (order_id, id);
CREATE INDEX lab_orders_status ON lab_orders (status, updated_at);
CREATE UNIQUE INDEX lab_orders_lab_id ON lab_orders (lab, lab_order_id)
    WHERE lab_order_id IS NOT NULL;

CREATE TABLE lab_order_items (
    lab_order_id  bigint  NOT NULL REFERENCES lab_orders ON DELETE CASCADE,
    line          integer NOT NULL,          -- the order_items line
    photo_id      text    NOT NULL,
    product_id    text    NOT NULL,
    sku           text    NOT NULL,
    attributes    jsonb   NOT NULL DEFAULT '{}',
    sizing        text    NOT NULL,
    copies        integer NOT NULL CHECK (copies > 0),
    print_path    text,
    PRIMARY KEY (lab_order_id, line)
);

-- every change of a lab order, with its cause (job:N, callback, admin)
CREATE TABLE lab_order_events (
    id            bigserial PRIMARY KEY,
    lab_order_id  bigint      NOT NULL REFERENCES lab_orders ON DELETE CASCADE,
    from_status   text,
    to_status     text        NOT NULL,
    cause         text        NOT NULL,
    detail        jsonb       NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX lab_order_events_lab_order ON lab_order_events (lab_order_id, id);

-- parcels: a lab order may ship in several
CREATE TABLE shipments (
    id               bigserial PRIMARY KEY,
    lab_order_id     bigint      NOT NULL REFERENCES lab_orders
                                 ON DELETE CASCADE,
    lab_shipment_id  text        NOT NULL,
    carrier          text,
    service          text,
    tracking_number  text,
    tracking_url     text,
    dispatched_at    timestamptz,
    items            jsonb       NOT NULL DEFAULT '[]',
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (lab_order_id, lab_shipment_id)
);
