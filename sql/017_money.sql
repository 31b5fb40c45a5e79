-- What an order is charged, line by line: the cart is priced by
-- cart_price() (sql/functions/shop.sql) as goods, less a discount, plus
-- shipping to the buyer's country, with tax per line; the order keeps each
-- part, and its total is the sum:
--
--   total = subtotal - discount_amount + shipping_amount
--           + (tax_amount when prices exclude tax, else 0)
--
-- The CHECK below holds every order to it.  Stripe is sent the same parts
-- (lines, a shipping option, a coupon, a tax line) and the total it
-- reports for the session is recorded (stripe_amount), so the exact-amount
-- rule (paid = total) compares like with like.
--
-- The shop's own settings are one row of shop_settings.  Invoice numbers
-- come from it too: taking the next number locks the row, so a payment
-- that rolls back gives its number back and there are no gaps.

CREATE TABLE shop_settings (
    id               boolean     PRIMARY KEY DEFAULT true CHECK (id),
    tax_inclusive    boolean     NOT NULL DEFAULT true,
    country          char(2)     NOT NULL DEFAULT 'GB'
                                 CHECK (country ~ '^[A-Z]{2}$'),
    invoice_prefix   text        NOT NULL DEFAULT 'INV-'
                                 CHECK (length(invoice_prefix) <= 16),
    next_invoice     bigint      NOT NULL DEFAULT 1 CHECK (next_invoice > 0),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

INSERT INTO shop_settings DEFAULT VALUES;

ALTER TABLE orders
    ADD COLUMN country         char(2) CHECK (country ~ '^[A-Z]{2}$'),
    ADD COLUMN subtotal        bigint,
    ADD COLUMN discount_code   text,
    ADD COLUMN discount_amount bigint  NOT NULL DEFAULT 0
                               CHECK (discount_amount >= 0),
    ADD COLUMN shipping_amount bigint  NOT NULL DEFAULT 0
                               CHECK (shipping_amount >= 0),
    ADD COLUMN shipping_method text,
    ADD COLUMN shipping_rate   text,   -- the rate's name, as shown
    ADD COLUMN tax_amount      bigint  NOT NULL DEFAULT 0
                               CHECK (tax_amount >= 0),
    ADD COLUMN tax_inclusive   boolean NOT NULL DEFAULT true,
    ADD COLUMN stripe_amount   bigint,
    ADD COLUMN invoice_number  text UNIQUE,
    ADD COLUMN invoice_seq     bigint UNIQUE;

UPDATE orders SET subtotal = total;

ALTER TABLE orders
    ALTER COLUMN subtotal SET NOT NULL,
    ADD CONSTRAINT orders_total_parts CHECK (
        total = subtotal - discount_amount + shipping_amount
                + CASE WHEN tax_inclusive THEN 0 ELSE tax_amount END);

ALTER TABLE order_items
    ADD COLUMN discount  bigint       NOT NULL DEFAULT 0 CHECK (discount >= 0),
    ADD COLUMN tax       bigint       NOT NULL DEFAULT 0 CHECK (tax >= 0),
    ADD COLUMN tax_rate  numeric(7,4) NOT NULL DEFAULT 0
                         CHECK (tax_rate >= 0 AND tax_rate < 100);

-- The shipping line's tax (shipping is taxed like the goods it carries).
ALTER TABLE orders ADD COLUMN shipping_tax bigint NOT NULL DEFAULT 0
    CHECK (shipping_tax >= 0);

-- The checkout functions take the buyer's country, a discount code and a
-- shipping method now, and return the priced cart: the old signatures go.
DROP FUNCTION IF EXISTS checkout_create_idempotent(text, text, text,
    interval, jsonb, text, text, text, timestamptz, timestamptz);
DROP FUNCTION IF EXISTS checkout_create(jsonb, text, text, text,
    timestamptz, timestamptz);
