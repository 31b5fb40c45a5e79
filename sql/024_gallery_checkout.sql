-- Gallery checkout (issue 14): the cart and the order know the gallery a
-- cart is bought from.  cart_price, checkout_create and
-- checkout_create_idempotent take p_gallery (NULL: the shop's own cart),
-- so their old signatures go; the tables have their columns since 023.

DROP FUNCTION IF EXISTS cart_price(jsonb, text, text, text, text, text);
DROP FUNCTION IF EXISTS checkout_create(jsonb, text, text, text, text, text,
    text, timestamptz, timestamptz);
DROP FUNCTION IF EXISTS checkout_create_idempotent(text, text, interval,
    jsonb, text, text, text, text, text, text, text, text, timestamptz,
    timestamptz);

-- the client API's gallery_state() also says the gallery's currency
DROP FUNCTION IF EXISTS gallery_state(text);

CREATE INDEX order_items_gallery_photo ON order_items (gallery_photo_id)
    WHERE gallery_photo_id IS NOT NULL;
