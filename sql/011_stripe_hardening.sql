-- Stripe hardening.
--
-- * The webhook hands SQL the event id and type it checked and logged
--   (stripe_handle_event(event, id, type)); the body has no duplicate keys.
-- * A signed event that cannot be applied (a malformed field, an API
--   version darkroom does not read) is kept with state 'unprocessable' and
--   its reason, a shop_alert email is enqueued, and Stripe gets a 2xx:
--   answering 5xx would only make Stripe send it again for three days.
-- * needs_review is left only by an admin (or a refund, which the shop
--   makes through Stripe): order_transition refuses every other exit,
--   whoever calls it; a later payment event is recorded against the order.
-- * A payment writes paid_amount and paid_currency once, but always keeps
--   the shipping name, address and phone and the payment intent: a
--   partial refund seen first (it fills paid_amount) no longer loses them.
-- * A payment for a cancelled or expired order puts it in review, with the
--   reason, and tells the shop: money was taken, a person refunds or
--   fulfils it.
-- * A dispute on an order that cannot go to review (refunded) is recorded
--   as such, its reason untouched, and the shop is still told.
-- * The shipping address is read in every shape a supported API version
--   sends, and the phone number Checkout collected is kept.

ALTER TABLE orders ADD COLUMN shipping_phone text;

ALTER TABLE stripe_events
    ADD COLUMN state text NOT NULL DEFAULT 'processed'
        CHECK (state IN ('processing', 'processed', 'ignored', 'recorded',
                         'unprocessable')),
    ADD COLUMN reason text,
    ADD COLUMN api_version text;

UPDATE stripe_events
   SET state = CASE WHEN result LIKE 'ignored%' THEN 'ignored'
                    ELSE 'processed' END,
       api_version = payload->>'api_version';

CREATE INDEX stripe_events_unprocessable ON stripe_events (received_at)
    WHERE state = 'unprocessable';
