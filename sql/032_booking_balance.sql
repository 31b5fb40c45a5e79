-- Bookings' balance (issue 16): the rest of a booking's price is paid
-- through a balance order of its own (bookings.balance_order_id, the
-- columns of sql/030_bookings.sql), refunded on a cancel
-- (balance_refunded), and its payment link is mailed once before the
-- session, balance_due_hours before its start (per session type; NULL:
-- never), recorded in balance_due_sent_at.  The functions are in
-- sql/functions/bookings_balance.sql.
--
-- order_checkout_info() (sql/functions/shop.sql) gains return_path, the
-- page Stripe sends an order's payer back to (a booking's page): its old
-- definition is dropped here, the function file creates the new one.

ALTER TABLE bookings
    ADD COLUMN balance_refunded bigint NOT NULL DEFAULT 0
        CHECK (balance_refunded >= 0),
    ADD COLUMN balance_due_sent_at timestamptz;

ALTER TABLE session_types
    ADD COLUMN balance_due_hours integer DEFAULT 72
        CHECK (balance_due_hours BETWEEN 1 AND 8760);

SET LOCAL client_min_messages = warning;

DROP FUNCTION IF EXISTS order_checkout_info(bigint);
