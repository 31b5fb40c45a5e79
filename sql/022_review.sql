-- Ways out of review (issue 13): the admin's actions on an order take who
-- did it (detail 'actor' of the order's events: "admin" for the bearer
-- tokens, an account name once the console has accounts), and
-- checkout_attach records the total Stripe's session reported.  These
-- functions change signature: the old ones go, sql/functions/shop.sql
-- defines the new.

DROP FUNCTION IF EXISTS admin_order_resolve(text, text);
DROP FUNCTION IF EXISTS admin_order_review(text, text);
DROP FUNCTION IF EXISTS checkout_attach(bigint, text, text);
