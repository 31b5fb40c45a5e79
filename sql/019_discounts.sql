-- Discount codes (issue 13): a code takes a percentage or a fixed amount
-- (per currency) off the goods, from starts_at until ends_at, for carts
-- spending at least min_spend (per currency) on goods, limited to some
-- products and/or kinds if set, at most max_redemptions times in all and
-- max_per_email times per buyer.  cart_discount() (sql/functions/shop.sql)
-- applies it when the cart is priced; cart_reserve() holds a use of it for
-- the order in the transaction that writes the order, under the code's
-- row lock, so the last use goes to exactly one order.
--
-- A use (discount_redemptions, one per order) is 'reserved' at checkout,
-- 'redeemed' when the order is paid and 'released' when it expires or is
-- cancelled unpaid: a released use counts no more (order_transition calls
-- discount_order_moved in the transaction that moves the order).

CREATE TABLE discount_codes (
    code             text        PRIMARY KEY
                                 CHECK (code ~ '^[A-Z0-9_-]{1,32}$'),
    kind             text        NOT NULL
                                 CHECK (kind IN ('percent', 'fixed')),
    percent_off      numeric(5,2) CHECK (percent_off > 0
                                         AND percent_off <= 100),
    -- fixed: {"GBP": 500, "USD": 600}, minor units, per currency
    amount_off       jsonb       NOT NULL DEFAULT '{}'
                                 CHECK (jsonb_typeof(amount_off) = 'object'),
    -- {"GBP": 3000}: the least goods subtotal, per currency ({}: none)
    min_spend        jsonb       NOT NULL DEFAULT '{}'
                                 CHECK (jsonb_typeof(min_spend) = 'object'),
    starts_at        timestamptz,
    ends_at          timestamptz,
    max_redemptions  integer     CHECK (max_redemptions > 0),
    max_per_email    integer     CHECK (max_per_email > 0),
    products         text[],     -- NULL: every product
    kinds            text[]      CHECK (kinds <@ ARRAY['print', 'digital']),
    active           boolean     NOT NULL DEFAULT true,
    description      text        NOT NULL DEFAULT ''
                                 CHECK (length(description) <= 500),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CHECK ((kind = 'percent') = (percent_off IS NOT NULL)),
    CHECK (kind = 'percent' OR amount_off <> '{}'),
    CHECK (ends_at IS NULL OR starts_at IS NULL OR ends_at > starts_at)
);

CREATE TABLE discount_redemptions (
    order_id     bigint      PRIMARY KEY REFERENCES orders (id),
    code         text        NOT NULL REFERENCES discount_codes (code),
    email        text        NOT NULL,
    currency     char(3)     NOT NULL,
    amount       bigint      NOT NULL CHECK (amount >= 0),
    state        text        NOT NULL DEFAULT 'reserved'
                             CHECK (state IN ('reserved', 'redeemed',
                                              'released')),
    reserved_at  timestamptz NOT NULL DEFAULT now(),
    redeemed_at  timestamptz,
    released_at  timestamptz
);

CREATE INDEX discount_redemptions_code ON discount_redemptions (code, state);
CREATE INDEX discount_redemptions_email
    ON discount_redemptions (code, lower(email));
