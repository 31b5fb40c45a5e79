-- sql/functions/shop.sql: the shop: catalogue, checkout (idempotent),
-- orders and their state machine (order_transition), Stripe events
-- (redaction trigger, handling, disputes, refunds, review), the admin of
-- products, photos and orders, and the admin's exit from review.
--
-- Tables: products, product_prices, photos, photo_products, orders,
-- order_items, order_events, checkout_idempotency, stripe_events, jobs,
-- discount_codes and discount_redemptions (cart_reserve).
-- Discount codes' own functions are in discounts.sql.
-- Calls: darkroom_refuse (core); order_lab_progress (labs) and a read of
-- lab_orders in order_resolve_target/_fulfil/admin_order_resolve: the
-- admin's exit from review goes where the labs got to.  Those bodies are
-- moved here unchanged (the move is proven identical to the migrations,
-- tools/sql-equivalence); turning them into a labs hook is a follow-up.
-- The customer's order view order_public_json lives in labs.sql (below).
-- print_check, admin_product_print and admin_photo_pixels (prints.sql): a photo
-- too small for a print, the admin's print sizes and pixels.
-- Triggers: stripe_events_redact (BEFORE INSERT ON stripe_events),
-- orders_invoice_paid (the invoice number at commit, order_invoice).


-- Forward-only state machine (sql/003).  Returns true when the order
-- moved.  needs_review is left only by an admin action (cause 'admin' or
-- 'admin:...') or for refunded; a cancelled or expired order that is paid
-- after all may go to review.
CREATE OR REPLACE FUNCTION order_transition(p_order bigint, p_to text,
                                            p_cause text,
                                            p_detail jsonb DEFAULT '{}')
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    v_from text;
BEGIN
    SELECT status INTO v_from FROM orders WHERE id = p_order FOR UPDATE;
    IF NOT FOUND OR v_from = p_to THEN
        RETURN false;
    END IF;

    -- a review is an admin's queue: nothing else empties it
    IF v_from = 'needs_review' AND p_to <> 'refunded'
       AND coalesce(p_cause, '') NOT LIKE 'admin%'
    THEN
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
        WHEN 'cancelled'       THEN ARRAY['needs_review']
        WHEN 'expired'         THEN ARRAY['needs_review']
        ELSE ARRAY[]::text[] END))
    THEN
        RETURN false;
    END IF;

    -- paid again after a review: it was paid when the money came.  An
    -- order sent to review always has a reason: the caller's, else the
    -- event's detail, else its cause.
    UPDATE orders SET status = p_to, updated_at = now(),
                      paid_at = CASE WHEN p_to = 'paid'
                                     THEN coalesce(paid_at, now())
                                     ELSE paid_at END,
                      review_reason = CASE WHEN p_to = 'needs_review'
                          THEN coalesce(review_reason, p_detail->>'reason',
                                        format('Sent to review by %s.',
                                               p_cause))
                          ELSE review_reason END
     WHERE id = p_order;

    PERFORM order_moved(p_order, v_from, p_to, p_cause, p_detail);
    RETURN true;
END $$;


-- What follows an order's move from p_from to p_to, in its transaction,
-- once its row says p_to (order_transition, or order_mark_paid's one
-- UPDATE of a payment): the history row and the hooks of other areas.
CREATE OR REPLACE FUNCTION order_moved(p_order bigint, p_from text,
                                       p_to text, p_cause text,
                                       p_detail jsonb)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO order_events (order_id, from_status, to_status, cause, detail)
    VALUES (p_order, p_from, p_to, p_cause, p_detail);

    -- a discount code's use is kept or given back with the order
    PERFORM discount_order_moved(p_order, p_to);

    -- a booking's deposit never paid: its hold gives the time up
    -- (bookings.sql)
    IF p_from = 'pending_payment' AND p_to IN ('expired', 'cancelled') THEN
        PERFORM bookings_order_closed(p_order, p_cause);
    END IF;
END $$;


CREATE OR REPLACE FUNCTION catalogue_json(p_currency text) RETURNS text
LANGUAGE sql STABLE AS $$
SELECT json_build_object(
    'currency', p_currency,
    'currencies', (SELECT coalesce(json_agg(c ORDER BY c), '[]')
                     FROM (SELECT DISTINCT currency::text AS c
                             FROM product_prices pp
                             JOIN products p ON p.id = pp.product_id
                            WHERE p.active) cs),
    'photos', (SELECT coalesce(json_agg(json_build_object(
                    'id', ph.id, 'title', ph.title,
                    'description', ph.description, 'image', ph.image_path,
                    'products', (SELECT coalesce(json_agg(pr.id ORDER BY pr.id),
                                                 '[]')
                                   FROM photo_products x
                                   JOIN products pr ON pr.id = x.product_id
                                  WHERE x.photo_id = ph.id AND pr.active
                                    -- prints the photo fills (prints.sql)
                                    AND print_fits(ph.width, ph.height,
                                                   pr.id, 'crop')))
                    ORDER BY ph.created_at, ph.id), '[]')
                 FROM photos ph WHERE ph.active),
    'products', (SELECT coalesce(json_agg(json_build_object(
                    'id', p.id, 'name', p.name, 'kind', p.kind,
                    'medium', p.medium, 'size', p.size,
                    'prices', (SELECT coalesce(json_object_agg(pp.currency,
                                                  pp.amount), '{}')
                                 FROM product_prices pp
                                WHERE pp.product_id = p.id))
                    ORDER BY p.kind DESC, p.id), '[]')
                 FROM products p WHERE p.active)
)::text
$$;


-- The catalogue as darkroom_public_cache keeps it (issue 17): one
-- document per currency a visitor is likely to ask for, the shop's
-- default p_default and every currency an active product is priced in;
-- another currency is answered by catalogue_json() itself.
CREATE OR REPLACE FUNCTION catalogue_public(p_default text)
RETURNS TABLE (currency text, body text) LANGUAGE sql STABLE AS $$
SELECT c.currency, catalogue_json(c.currency)
  FROM (SELECT upper(p_default) AS currency
        UNION
        SELECT DISTINCT pp.currency::text
          FROM product_prices pp JOIN products p ON p.id = pp.product_id
         WHERE p.active) c
$$;


-- The cart's lines priced from the catalogue, in p_currency.  Items are
-- [{"photo":..,"product":..,"quantity":n}], already checked for shape by
-- darkroom; any price the client sent is not read.  Each line starts with
-- no discount and no tax: cart_discount() and cart_tax() fill them.
CREATE OR REPLACE FUNCTION cart_lines(p_items jsonb, p_currency text)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_lines     jsonb := '[]';
    v_line      int := 0;
    v_amount    bigint;
    v_photo     photos%ROWTYPE;
    v_product   products%ROWTYPE;
    r           record;
BEGIN
    FOR r IN SELECT e.value->>'photo' AS photo,
                    e.value->>'product' AS product,
                    (e.value->>'quantity')::int AS quantity
               FROM jsonb_array_elements(p_items) e
    LOOP
        v_line := v_line + 1;

        SELECT * INTO v_photo FROM photos WHERE id = r.photo AND active;
        IF NOT FOUND THEN
            PERFORM darkroom_refuse(400, 'unknown_photo',
                format('Item %s: there is no photo "%s" for sale.',
                       v_line, r.photo));
        END IF;

        SELECT * INTO v_product FROM products WHERE id = r.product AND active;
        IF NOT FOUND THEN
            PERFORM darkroom_refuse(400, 'unknown_product',
                format('Item %s: there is no product "%s" for sale.',
                       v_line, r.product));
        END IF;

        PERFORM 1 FROM photo_products
          WHERE photo_id = r.photo AND product_id = r.product;
        IF NOT FOUND THEN
            PERFORM darkroom_refuse(400, 'not_offered',
                format('Item %s: "%s" is not sold as "%s".',
                       v_line, v_photo.title, v_product.name));
        END IF;

        SELECT amount INTO v_amount FROM product_prices
         WHERE product_id = r.product AND currency = p_currency;
        IF NOT FOUND THEN
            PERFORM darkroom_refuse(400, 'no_price',
                format('Item %s: "%s" has no price in %s.',
                       v_line, v_product.name, p_currency));
        END IF;

        -- a print the photo's pixels cannot fill: 409 (prints.sql)
        PERFORM print_check(v_photo.width, v_photo.height, r.product,
                            'crop', v_line, v_photo.title);

        v_lines := v_lines || jsonb_build_object(
            'line', v_line, 'photo', r.photo, 'product', r.product,
            'kind', v_product.kind, 'title', v_photo.title,
            'product_name', v_product.name, 'quantity', r.quantity,
            'unit_amount', v_amount, 'amount', v_amount * r.quantity,
            'discount', 0, 'tax', 0, 'tax_rate', 0);
    END LOOP;

    RETURN v_lines;
END $$;


-- A discount code applied to the cart: each line's "discount" and the
-- cart's "discount" {code, kind, amount, percent_off, amount_off, lines}.
-- No code: the cart as it is.  A code that cannot be used is refused with
-- its reason (discount_valid, discount_limits in discounts.sql; here
-- code_not_applicable and below_minimum, the minimum being on the whole
-- goods subtotal).  A percentage is of the lines it applies to, rounded
-- half up; a fixed amount is at most those lines' sum.  The amount is
-- spread over those lines by discount_allocate().
CREATE OR REPLACE FUNCTION cart_discount(p_cart jsonb, p_code text,
                                         p_email text)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
    d           discount_codes%ROWTYPE;
    v_cur       text := p_cart->>'currency';
    v_subtotal  bigint;
    v_eligible  bigint;
    v_amount    bigint;
    v_min       bigint;
BEGIN
    IF p_code IS NULL THEN
        RETURN p_cart || '{"discount": null}';
    END IF;

    d := discount_valid(upper(p_code), v_cur);

    SELECT sum((l->>'amount')::bigint),
           sum((l->>'amount')::bigint) FILTER (WHERE discount_applies(d, l))
      INTO v_subtotal, v_eligible
      FROM jsonb_array_elements(p_cart->'lines') l;

    IF v_eligible IS NULL THEN
        PERFORM darkroom_refuse(400, 'code_not_applicable',
            format('The discount code %s does not apply to anything in '
                   'this cart.', d.code));
    END IF;

    v_min := (d.min_spend->>v_cur)::bigint;
    IF v_subtotal < v_min THEN
        PERFORM darkroom_refuse(400, 'below_minimum',
            format('The discount code %s needs a spend of at least %s '
                   '(this cart: %s).', d.code, discount_money(v_min, v_cur),
                   discount_money(v_subtotal, v_cur)));
    END IF;

    PERFORM discount_limits(d, p_email);

    v_amount := CASE d.kind
        WHEN 'percent' THEN round(v_eligible * d.percent_off / 100)::bigint
        ELSE least((d.amount_off->>v_cur)::bigint, v_eligible) END;

    RETURN p_cart || jsonb_build_object(
        'lines', discount_allocate(p_cart->'lines', d, v_amount),
        'discount', jsonb_build_object(
            'code', d.code, 'kind', d.kind, 'amount', v_amount,
            'percent_off', d.percent_off::float8,
            'amount_off', (d.amount_off->>v_cur)::bigint,
            'description', d.description,
            'lines', (SELECT jsonb_agg((l->>'line')::int)
                        FROM jsonb_array_elements(p_cart->'lines') l
                       WHERE discount_applies(d, l))));
END $$;


-- The cost of shipping a cart's prints by one method, from the rates of a
-- zone in a currency: each print line goes by its product's own rate for
-- the method if there is one, else by the zone's general rate for it; a
-- rate used is its "amount" once plus "per_item" for each print it
-- carries, and free when the goods after discount reach its "free_over".
-- NULL when some print has no rate for the method.
CREATE OR REPLACE FUNCTION cart_shipping_cost(p_cart jsonb, p_zone text,
                                              p_method text)
RETURNS TABLE (amount bigint, name text)
LANGUAGE sql STABLE AS $$
    WITH goods AS (
        SELECT sum((l->>'amount')::bigint - (l->>'discount')::bigint) AS v
          FROM jsonb_array_elements(p_cart->'lines') l
    ), prints AS (
        SELECT l->>'product' AS product, (l->>'quantity')::bigint AS qty
          FROM jsonb_array_elements(p_cart->'lines') l
         WHERE l->>'kind' = 'print'
    ), chosen AS (
        SELECT p.qty, (SELECT r FROM shipping_rates r
                        WHERE r.zone_id = p_zone
                          AND r.currency = p_cart->>'currency'
                          AND r.method = p_method
                          AND (r.product_id = p.product
                               OR r.product_id IS NULL)
                        ORDER BY r.product_id NULLS LAST
                        LIMIT 1) AS r
          FROM prints p
    ), used AS (
        SELECT (r).id, (r).name, (r).product_id IS NULL AS general,
               (r).amount + (r).per_item * sum(qty) AS cost,
               (r).free_over
          FROM chosen
         WHERE (r).id IS NOT NULL
         GROUP BY r
    )
    SELECT CASE WHEN (SELECT count(*) FROM chosen WHERE (r).id IS NULL) > 0
                THEN NULL
                ELSE coalesce(sum(CASE WHEN u.free_over IS NOT NULL
                                        AND (SELECT v FROM goods)
                                            >= u.free_over
                                       THEN 0 ELSE u.cost END), 0)::bigint
           END,
           (SELECT u2.name FROM used u2 ORDER BY u2.general DESC, u2.id
             LIMIT 1)
      FROM used u;
$$;


-- Shipping for a cart with prints, to its country: "shipping" {amount,
-- tax, method, name, zone, countries, options: [{method, name, amount}]};
-- null for a cart without prints.  A method is offered when every print
-- in the cart has a rate for it in the country's zone and the cart's
-- currency; p_method NULL takes the cheapest.  A country in no zone, or
-- a zone with no rate for the cart, cannot be shipped to (422
-- no_shipping); a method the zone does not offer is 400
-- shipping_method_unavailable naming those it does.  The tax is filled
-- in by cart_tax().  A shop with no zone at all ships free to the buyer's
-- country, as darkroom did before zones, so that an upgrade does not
-- stop the sale of prints until zones are set up.
CREATE OR REPLACE FUNCTION cart_shipping(p_cart jsonb, p_method text)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_country  text := p_cart->>'country';
    v_zone     text;
    v_options  jsonb;
    v_pick     jsonb;
BEGIN
    IF NOT (p_cart->>'physical')::boolean THEN
        RETURN p_cart || '{"shipping": null}';
    END IF;

    -- no zones: the method is the one asked for, if any (the labs use
    -- their configured one for an order without)
    IF NOT EXISTS (SELECT 1 FROM shipping_zones)
       AND coalesce(lower(p_method), 'standard')
           IN ('budget', 'standard', 'express', 'overnight')
    THEN
        v_pick := jsonb_build_object('method', lower(p_method),
                                     'name', 'Shipping', 'amount', 0);
        RETURN p_cart || jsonb_build_object('shipping', v_pick
            || jsonb_build_object('tax', 0, 'zone', NULL,
                   'countries', jsonb_build_array(v_country),
                   'options', jsonb_build_array(v_pick)));
    END IF;

    SELECT zone_id INTO v_zone FROM shipping_zone_countries
     WHERE country = v_country;
    IF NOT FOUND THEN
        PERFORM darkroom_refuse(422, 'no_shipping',
            format('Prints cannot be shipped to %s.', v_country));
    END IF;

    SELECT jsonb_agg(jsonb_build_object('method', m.method, 'name', c.name,
                                        'amount', c.amount)
                     ORDER BY c.amount, m.ord)
      INTO v_options
      FROM (VALUES ('budget', 1), ('standard', 2), ('express', 3),
                   ('overnight', 4)) m(method, ord)
     CROSS JOIN LATERAL cart_shipping_cost(p_cart, v_zone, m.method) c
     WHERE c.amount IS NOT NULL;

    IF v_options IS NULL THEN
        PERFORM darkroom_refuse(422, 'no_shipping',
            format('Prints cannot be shipped to %s in %s.', v_country,
                   p_cart->>'currency'));
    END IF;

    SELECT o INTO v_pick FROM jsonb_array_elements(v_options) o
     WHERE p_method IS NULL OR o->>'method' = lower(p_method)
     LIMIT 1;

    IF v_pick IS NULL THEN
        PERFORM darkroom_refuse(400, 'shipping_method_unavailable',
            format('Shipping to %s is %s, not "%s".', v_country,
                   (SELECT string_agg(o->>'method', ', ')
                      FROM jsonb_array_elements(v_options) o),
                   p_method));
    END IF;

    RETURN p_cart || jsonb_build_object('shipping', v_pick
        || jsonb_build_object('tax', 0, 'zone', v_zone,
               'countries', cart_shipping_countries(v_country),
               'options', v_options));
END $$;


-- The countries a buyer who chose p_country may give as the shipping
-- address at Stripe: those of its zone (so the shipping is the same) that
-- are taxed as it is, at the same print and digital rates (so the tax is
-- the same): whatever address Stripe collects, the price stands.  A
-- country in no zone: itself.
CREATE OR REPLACE FUNCTION cart_shipping_countries(p_country text)
RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT coalesce(jsonb_agg(c.country ORDER BY c.country),
                    jsonb_build_array(p_country))
      FROM shipping_zone_countries c
      JOIN shipping_zone_countries mine ON mine.zone_id = c.zone_id
                                       AND mine.country = p_country
     WHERE NOT EXISTS (
               SELECT k.kind FROM (VALUES ('print'), ('digital')) k(kind)
                WHERE tax_rate_of(c.country, k.kind)
                      <> tax_rate_of(p_country, k.kind));
$$;


-- The tax rate, in percent, of a country for a product kind: 0 when the
-- shop has none for it (a country it does not charge tax in).
CREATE OR REPLACE FUNCTION tax_rate_of(p_country text, p_kind text)
RETURNS numeric LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT rate FROM tax_rates
                      WHERE country = p_country AND kind = p_kind), 0);
$$;


-- The tax in an amount at p_rate percent, in whole minor units rounded
-- half up: the part of it when prices include tax, on top of it when
-- they exclude it.
CREATE OR REPLACE FUNCTION tax_of(p_amount bigint, p_rate numeric,
                                  p_inclusive boolean)
RETURNS bigint LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN p_inclusive
                THEN round(p_amount * p_rate / (100 + p_rate))
                ELSE round(p_amount * p_rate / 100) END::bigint;
$$;


-- Tax on each line (after its discount) at the rate of the cart's country
-- for the line's kind, and on shipping at the print rate; each line keeps
-- its rate.  "tax_label" names the tax for the receipt and Stripe's tax
-- line: the label of the country's print rate (else its digital one),
-- with the rate when every taxed part has the same one ("VAT 20 %").
CREATE OR REPLACE FUNCTION cart_tax(p_cart jsonb)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_country  text := p_cart->>'country';
    v_incl     boolean := (p_cart->>'tax_inclusive')::boolean;
    v_lines    jsonb;
    v_ship     jsonb := p_cart->'shipping';
    v_rate     numeric := tax_rate_of(v_country, 'print');
    v_rates    numeric[];
    v_label    text;
BEGIN
    SELECT jsonb_agg(l || jsonb_build_object(
               'tax_rate', tax_rate_of(v_country, l->>'kind'),
               'tax', tax_of((l->>'amount')::bigint
                             - (l->>'discount')::bigint,
                             tax_rate_of(v_country, l->>'kind'), v_incl))
               ORDER BY (l->>'line')::int)
      INTO v_lines
      FROM jsonb_array_elements(p_cart->'lines') l;

    IF jsonb_typeof(v_ship) = 'object' THEN
        v_ship := v_ship || jsonb_build_object('tax_rate', v_rate,
            'tax', tax_of((v_ship->>'amount')::bigint, v_rate, v_incl));
    END IF;

    SELECT array_agg(DISTINCT (l->>'tax_rate')::numeric)
      INTO v_rates
      FROM jsonb_array_elements(v_lines) l
     WHERE (l->>'tax')::bigint > 0;

    SELECT t.label INTO v_label FROM tax_rates t
     WHERE t.country = v_country ORDER BY t.kind DESC LIMIT 1;

    v_label := coalesce(v_label, 'Tax')
        || CASE WHEN cardinality(v_rates) = 1
                     AND (coalesce((v_ship->>'tax')::bigint, 0) = 0
                          OR v_rates[1] = v_rate)
                THEN ' ' || trim_scale(v_rates[1]) || ' %' ELSE '' END;

    RETURN p_cart || jsonb_build_object('lines', v_lines,
                                        'shipping', v_ship,
                                        'tax_label', v_label);
END $$;


-- The sums: subtotal (goods), discount_amount, shipping_amount,
-- tax_amount (lines and shipping) and total, as sql/017 defines it.
CREATE OR REPLACE FUNCTION cart_total(p_cart jsonb)
RETURNS jsonb LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    v_subtotal  bigint;
    v_discount  bigint;
    v_tax       bigint;
    v_shipping  bigint := coalesce((p_cart->'shipping'->>'amount')::bigint,
                                   0);
    v_total     bigint;
BEGIN
    SELECT sum((l->>'amount')::bigint), sum((l->>'discount')::bigint),
           sum((l->>'tax')::bigint)
      INTO v_subtotal, v_discount, v_tax
      FROM jsonb_array_elements(p_cart->'lines') l;

    v_tax := v_tax + coalesce((p_cart->'shipping'->>'tax')::bigint, 0);
    v_total := v_subtotal - v_discount + v_shipping
               + CASE WHEN (p_cart->>'tax_inclusive')::boolean THEN 0
                      ELSE v_tax END;

    IF v_total > 99999999 THEN
        PERFORM darkroom_refuse(400, 'amount_too_large',
            'The order total is more than can be paid at once.');
    END IF;

    IF v_total < 1 THEN
        PERFORM darkroom_refuse(409, 'nothing_to_pay',
            'This order would cost nothing: there is nothing to pay for.');
    END IF;

    RETURN p_cart || jsonb_build_object(
        'subtotal', v_subtotal, 'discount_amount', v_discount,
        'shipping_amount', v_shipping, 'tax_amount', v_tax,
        'total', v_total);
END $$;


-- The whole price of a cart, written nowhere: the quote the cart page
-- shows and the first step of checkout_create().  p_country: the buyer's
-- (NULL: the shop's own); p_method: a shipping method (NULL: the
-- cheapest); p_gallery: the gallery the cart is bought from (its lines are
-- gallery photos and selections, gallery_cart_lines in gallery_shop.sql).
CREATE OR REPLACE FUNCTION cart_price(p_items jsonb, p_currency text,
    p_country text, p_code text, p_email text, p_method text,
    p_gallery bigint DEFAULT NULL)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_cart  jsonb;
    v_shop  shop_settings%ROWTYPE;
BEGIN
    SELECT * INTO v_shop FROM shop_settings;

    v_cart := jsonb_build_object(
        'currency', p_currency,
        'country', coalesce(p_country, v_shop.country),
        'tax_inclusive', v_shop.tax_inclusive,
        'lines', CASE WHEN p_gallery IS NULL
                      THEN cart_lines(p_items, p_currency)
                      ELSE gallery_cart_lines(p_gallery, p_items, p_currency)
                 END);

    v_cart := v_cart || jsonb_build_object('physical', EXISTS (
        SELECT 1 FROM jsonb_array_elements(v_cart->'lines') l
         WHERE l->>'kind' = 'print'));

    v_cart := cart_discount(v_cart, p_code, p_email);
    v_cart := cart_shipping(v_cart, p_method);
    v_cart := cart_tax(v_cart);

    RETURN cart_total(v_cart);
END $$;


-- A discount code's use, held by an order from checkout until it is paid
-- (redeemed) or expires unpaid (released: discount_order_moved).  In the
-- transaction that writes the order: the code's row is locked, so
-- checkouts racing for its last use take turns, and each counts the uses
-- the others committed (discount_limits, a statement of its own, after
-- the lock): one gets it, the others are refused 409 and write nothing.
CREATE OR REPLACE FUNCTION cart_reserve(p_order bigint, p_cart jsonb,
                                        p_email text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    d  discount_codes%ROWTYPE;
BEGIN
    IF jsonb_typeof(p_cart->'discount') IS DISTINCT FROM 'object' THEN
        RETURN;
    END IF;

    SELECT * INTO d FROM discount_codes
     WHERE code = p_cart->'discount'->>'code' AND active
       FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM darkroom_refuse(400, 'unknown_code',
            format('There is no discount code "%s".',
                   p_cart->'discount'->>'code'));
    END IF;

    PERFORM discount_limits(d, p_email);

    INSERT INTO discount_redemptions (order_id, code, email, currency,
                                      amount)
    VALUES (p_order, d.code, p_email, p_cart->>'currency',
            (p_cart->'discount'->>'amount')::bigint);
END $$;


-- Prices a cart (cart_price) and writes the order, its items, its first
-- event and the job that will ask Stripe about it if no webhook comes.
-- Returns the priced cart, which is what Stripe is sent.
CREATE OR REPLACE FUNCTION checkout_create(p_items jsonb, p_email text,
    p_currency text, p_country text, p_code text, p_method text,
    p_token_hash text, p_expires_at timestamptz,
    p_reconcile_at timestamptz, p_gallery bigint DEFAULT NULL)
RETURNS TABLE (order_id bigint, order_ref text, total bigint,
               physical boolean, cart jsonb)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_order  bigint;
    v_cart   jsonb;
    v_ref    text;
BEGIN
    v_cart := cart_price(p_items, p_currency, p_country, p_code, p_email,
                         p_method, p_gallery);

    -- the reference is known before the row is written: an insert of a
    -- placeholder ref would make every concurrent checkout wait on the
    -- unique index for the one before it to commit
    v_order := nextval(pg_get_serial_sequence('orders', 'id'));
    v_ref := 'DR-' || lpad(v_order::text, 6, '0');

    INSERT INTO orders (id, ref, status_token, email, currency, country,
                        subtotal, discount_code, discount_amount,
                        shipping_amount, shipping_tax, shipping_method,
                        shipping_rate, shipping_zone, tax_amount,
                        tax_inclusive, tax_label, total, physical,
                        expires_at, gallery_id)
    VALUES (v_order, v_ref, p_token_hash, p_email, p_currency,
            v_cart->>'country',
            (v_cart->>'subtotal')::bigint, v_cart->'discount'->>'code',
            (v_cart->>'discount_amount')::bigint,
            (v_cart->>'shipping_amount')::bigint,
            coalesce((v_cart->'shipping'->>'tax')::bigint, 0),
            v_cart->'shipping'->>'method', v_cart->'shipping'->>'name',
            v_cart->'shipping'->>'zone', (v_cart->>'tax_amount')::bigint,
            (v_cart->>'tax_inclusive')::boolean, v_cart->>'tax_label',
            (v_cart->>'total')::bigint, (v_cart->>'physical')::boolean,
            p_expires_at, p_gallery);

    -- a gallery line: its gallery photo and crop-or-fit; a selection line
    -- (gallery_selection_line) has no photo nor product of its own
    INSERT INTO order_items (order_id, line, photo_id, product_id, title,
                             product_name, kind, quantity, unit_amount,
                             amount, discount, tax, tax_rate,
                             gallery_photo_id, sizing)
    SELECT v_order, (l->>'line')::int,
           coalesce(l->>'photo', 'selection:' || (l->>'selection')),
           coalesce(l->>'product', l->>'kind'),
           l->>'title', l->>'product_name', l->>'kind',
           (l->>'quantity')::int, (l->>'unit_amount')::bigint,
           (l->>'amount')::bigint, (l->>'discount')::bigint,
           (l->>'tax')::bigint, (l->>'tax_rate')::numeric,
           (l->>'gallery_photo')::bigint, l->>'sizing'
      FROM jsonb_array_elements(v_cart->'lines') l;

    PERFORM cart_reserve(v_order, v_cart, p_email);

    INSERT INTO order_events (order_id, to_status, cause, detail)
    VALUES (v_order, 'pending_payment', 'checkout',
            jsonb_build_object('total', v_cart->'total',
                               'currency', p_currency)
            || coalesce((SELECT jsonb_build_object('gallery', g.slug)
                           FROM galleries g WHERE g.id = p_gallery),
                        '{}'));

    INSERT INTO jobs (kind, payload, run_at, dedupe_key)
    VALUES ('checkout_reconcile', jsonb_build_object('order_id', v_order),
            p_reconcile_at, 'reconcile:' || v_order);

    RETURN QUERY SELECT v_order, v_ref, (v_cart->>'total')::bigint,
                        (v_cart->>'physical')::boolean,
                        v_cart || jsonb_build_object('order', v_ref);
END $$;


-- An order's priced cart, as checkout_create() returned it: a replayed
-- checkout sends Stripe the same parameters.
CREATE OR REPLACE FUNCTION order_cart(p_order bigint)
RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'order', o.ref, 'currency', o.currency, 'country', o.country,
        'tax_inclusive', o.tax_inclusive, 'physical', o.physical,
        'lines', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                      'line', i.line, 'photo', i.photo_id,
                      'product', i.product_id, 'kind', i.kind,
                      'title', i.title, 'product_name', i.product_name,
                      'quantity', i.quantity, 'unit_amount', i.unit_amount,
                      'amount', i.amount, 'discount', i.discount,
                      'tax', i.tax, 'tax_rate', i.tax_rate)
                      ORDER BY i.line), '[]')
                    FROM order_items i WHERE i.order_id = o.id),
        'discount', CASE WHEN o.discount_code IS NULL THEN NULL
                         ELSE jsonb_build_object('code', o.discount_code,
                                  'amount', o.discount_amount) END,
        'shipping', CASE WHEN NOT o.physical THEN NULL
                         ELSE jsonb_build_object(
                             'amount', o.shipping_amount,
                             'tax', o.shipping_tax,
                             'method', o.shipping_method,
                             'name', o.shipping_rate,
                             'zone', o.shipping_zone,
                             'countries', cart_shipping_countries(o.country))
                    END,
        'tax_label', coalesce(o.tax_label, 'Tax'),
        'subtotal', o.subtotal, 'discount_amount', o.discount_amount,
        'shipping_amount', o.shipping_amount, 'tax_amount', o.tax_amount,
        'total', o.total)
      FROM orders o WHERE o.id = p_order;
$$;


-- The Stripe session made for an order, with the total Stripe computed
-- for it (amount_total: NULL when the answer had none).  The exact-amount
-- rule starts here: a session whose total is not the order's is never
-- handed out nor attached; the order is cancelled (checkout_failed, the
-- session and its total in the event) and the answer is false.
CREATE OR REPLACE FUNCTION checkout_attach(p_order bigint, p_session text,
                                           p_url text, p_amount bigint,
                                           OUT attached boolean)
LANGUAGE plpgsql AS $$
DECLARE
    v_total bigint;
BEGIN
    SELECT total INTO v_total FROM orders WHERE id = p_order;

    attached := p_amount IS NOT DISTINCT FROM v_total;

    IF attached THEN
        UPDATE orders SET stripe_session_id = p_session, checkout_url = p_url,
                          stripe_amount = p_amount, updated_at = now()
         WHERE id = p_order;
    ELSE
        PERFORM checkout_failed(p_order, format(
            'Stripe''s session %s totals %s, not the order total %s',
            p_session, coalesce(p_amount::text, '(none)'), v_total));
    END IF;
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


-- A replayed checkout whose order can no longer be paid: expired, or
-- cancelled meanwhile (the replay answers checkout_closed).
CREATE OR REPLACE FUNCTION checkout_closed(p_order bigint)
RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM orders
                    WHERE id = p_order
                      AND status IN ('expired', 'cancelled'));
$$;


-- What the checkout_reconcile job asks of an order: its Stripe session
-- (NULL when none was recorded), its status, and the seconds until its
-- payment page expires (0 when it has).  No row: no such order.
CREATE OR REPLACE FUNCTION checkout_reconcile_state(p_order bigint,
    OUT stripe_session_id text, OUT status text, OUT expires_in bigint)
RETURNS SETOF record LANGUAGE sql STABLE AS $$
    SELECT o.stripe_session_id, o.status,
           greatest(0, extract(epoch FROM o.expires_at - now()))::bigint
      FROM orders o
     WHERE o.id = p_order;
$$;


-- Why a payment that is not the order's total needs a person: the first
-- words of the order's review reason.
CREATE OR REPLACE FUNCTION order_review_kind(p_paid bigint, p_paid_currency text,
                                             p_total bigint, p_currency text)
RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN p_paid_currency IS DISTINCT FROM p_currency
            THEN 'Currency mismatch'
        WHEN p_paid IS NULL THEN 'No amount'
        WHEN p_paid < p_total THEN 'Underpaid'
        ELSE 'Overpaid' END;
$$;


-- A session reports payment (sql/004).  An order pending payment moves:
-- to paid when the amount is exactly the order's total, else to review.
-- An order under review stays there; one cancelled or expired goes to
-- review.  paid_amount and paid_currency are written once, by whichever
-- event (a refund too) brings them first; the payment intent once; the
-- shipping details every time a payment brings them.  Becoming paid
-- enqueues fulfilment and the receipt in the same transaction.
-- The usual case, an order pending payment paid its total, is one UPDATE
-- of the order (its payment and its status together, the move
-- order_transition allows from pending_payment), then order_moved(), and
-- the order joins the transaction's list of orders to number at commit
-- (order_invoice_on_paid).  The hooks of other areas run only for an
-- order with lines of theirs: a booking's order has a line of kind
-- 'session' (bookings_of_order), downloads need a 'digital' one.
CREATE OR REPLACE FUNCTION order_mark_paid(p_order bigint, p_session jsonb,
                                           p_cause text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_o        orders%ROWTYPE;
    v_amount   bigint := (p_session->>'amount_total')::bigint;
    v_currency text := upper(p_session->>'currency');
    v_ship     jsonb := stripe_session_shipping(p_session);
    v_paid     boolean;
    v_session  boolean;
    v_digital  boolean;
BEGIN
    SELECT * INTO v_o FROM orders WHERE id = p_order FOR UPDATE;

    IF v_o.status NOT IN ('pending_payment', 'needs_review', 'cancelled',
                          'expired')
    THEN
        RETURN 'ignored: order is ' || v_o.status;
    END IF;

    v_paid := coalesce(v_o.status = 'pending_payment'
                       AND v_amount = v_o.total
                       AND v_currency = v_o.currency, false);

    UPDATE orders
       SET paid_amount = coalesce(paid_amount, v_amount),
           paid_currency = coalesce(paid_currency, v_currency),
           stripe_payment_intent = coalesce(stripe_payment_intent,
                                            p_session->>'payment_intent'),
           shipping_name = coalesce(v_ship->>'name', shipping_name),
           shipping_address = coalesce(nullif(v_ship->'address',
                                              'null'::jsonb),
                                       shipping_address),
           shipping_phone = coalesce(
               p_session->'customer_details'->>'phone', shipping_phone),
           status = CASE WHEN v_paid THEN 'paid' ELSE status END,
           paid_at = CASE WHEN v_paid THEN coalesce(paid_at, now())
                          ELSE paid_at END,
           updated_at = now()
     WHERE id = p_order;

    IF v_o.status = 'needs_review' THEN
        RETURN order_review_record(p_order, p_cause,
            jsonb_build_object('payment', v_amount, 'currency', v_currency,
                               'recorded', v_o.paid_amount IS NULL));
    END IF;

    IF v_o.status IN ('cancelled', 'expired') THEN
        RETURN order_paid_after_close(p_order, v_o.status, v_amount,
                                      v_currency, p_cause);
    END IF;

    IF NOT v_paid THEN
        UPDATE orders SET review_reason = format(
                   '%s: Paid %s %s but the order total is %s %s.',
                   order_review_kind(v_amount, v_currency, v_o.total,
                                     v_o.currency),
                   coalesce(v_amount::text, 'no amount'),
                   coalesce(v_currency, '(no currency)'),
                   v_o.total, v_o.currency)
         WHERE id = p_order;
        PERFORM order_transition(p_order, 'needs_review', p_cause,
            jsonb_build_object('paid', v_amount, 'currency', v_currency,
                'review', lower(replace(order_review_kind(v_amount,
                    v_currency, v_o.total, v_o.currency), ' ', '_'))));
        PERFORM stripe_alert(p_order, p_cause, NULL);
        RETURN 'needs_review: amount mismatch';
    END IF;

    PERFORM order_moved(p_order, 'pending_payment', 'paid', p_cause,
                        jsonb_build_object('amount', v_amount));

    -- the invoice number: at commit, with the transaction's other
    -- payments, in the order they were paid (orders_invoice_paid, below)
    PERFORM set_config('darkroom.paid_orders',
        concat_ws(',', nullif(current_setting('darkroom.paid_orders', true),
                              ''), p_order), true);

    SELECT coalesce(bool_or(i.kind = 'session'), false),
           coalesce(bool_or(i.kind = 'digital'), false)
      INTO v_session, v_digital
      FROM order_items i WHERE i.order_id = p_order;

    IF v_o.physical THEN
        INSERT INTO jobs (kind, payload, dedupe_key)
        VALUES ('fulfil_order', jsonb_build_object('order_id', p_order),
                'fulfil:' || p_order)
        ON CONFLICT (dedupe_key) DO NOTHING;
    END IF;

    PERFORM order_receipt_email(p_order);

    -- digital lines: download grants and the delivery email (downloads.sql)
    IF v_digital THEN
        PERFORM download_grant_order(p_order, p_cause);
    END IF;

    -- a booking's deposit: the booking confirmed, or refunded (bookings.sql)
    IF v_session THEN
        PERFORM bookings_order_paid(p_order, v_amount, p_cause);
    END IF;

    RETURN 'paid';
END $$;


-- The order's invoice number, taken when it is paid (at the commit of the
-- payment's transaction, orders_invoice_paid below, or at once by an admin
-- letting it out of review) in the payment's transaction:
-- taking shop_settings.next_invoice locks its row until the payment
-- commits, so numbers are unique, in order, and a payment that rolls back
-- gives its number back (no gaps).  An order numbered already keeps it.
CREATE OR REPLACE FUNCTION order_invoice(p_order bigint)
RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM orders WHERE id = p_order FOR UPDATE;
    PERFORM order_invoice_all(ARRAY[p_order]);
    RETURN (SELECT invoice_number FROM orders WHERE id = p_order);
END $$;


-- Invoice numbers for the orders p_orders not numbered yet, consecutive
-- in the order of the array (a repeat counts once, where it first comes),
-- under one take of shop_settings.next_invoice.  The caller holds the
-- orders' row locks (its transaction paid them, or order_invoice locked
-- it): none can be numbered meanwhile by another transaction.
CREATE OR REPLACE FUNCTION order_invoice_all(p_orders bigint[])
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_todo    bigint[];
    v_first   bigint;
    v_prefix  text;
BEGIN
    SELECT array_agg(t.id ORDER BY t.n) INTO v_todo
      FROM (SELECT l.id, min(l.n) AS n
              FROM unnest(p_orders) WITH ORDINALITY AS l(id, n)
             GROUP BY l.id) t
      JOIN orders o ON o.id = t.id
     WHERE o.invoice_number IS NULL;

    IF v_todo IS NULL THEN
        RETURN;
    END IF;

    UPDATE shop_settings SET next_invoice = next_invoice + cardinality(v_todo)
    RETURNING next_invoice - cardinality(v_todo), invoice_prefix
         INTO v_first, v_prefix;

    UPDATE orders o
       SET invoice_seq = v_first + t.n - 1,
           invoice_number = v_prefix || lpad((v_first + t.n - 1)::text, 6,
                                             '0')
      FROM unnest(v_todo) WITH ORDINALITY AS t(id, n)
     WHERE o.id = t.id;
END $$;


-- An order that becomes paid is numbered when its transaction commits: a
-- constraint trigger deferred to the commit, so the lock on
-- shop_settings.next_invoice is held from there to the end of the commit,
-- not from the payment through the rest of its transaction (the other
-- events of a webhook batch).  Unique and gapless as before: the row lock
-- still serialises the numbering, and a transaction (or an event's
-- savepoint) that rolls back takes its number, or its queued trigger,
-- with it.  An order numbered already (an admin's resolve numbers at
-- once) keeps its number.
-- The first firing numbers, with its own order, every order the
-- transaction paid through order_mark_paid (darkroom.paid_orders, a
-- setting local to the transaction: an event's savepoint that rolls back
-- takes its entry with it), in the order they were paid, under one take
-- of the lock; the firings for those find them numbered.
CREATE OR REPLACE FUNCTION order_invoice_on_paid() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_paid  text := nullif(current_setting('darkroom.paid_orders', true), '');
BEGIN
    IF EXISTS (SELECT 1 FROM orders WHERE id = NEW.id
                                      AND invoice_number IS NOT NULL)
    THEN
        RETURN NULL;
    END IF;

    PERFORM order_invoice_all(NEW.id
        || coalesce(string_to_array(v_paid, ',')::bigint[], '{}'));
    PERFORM set_config('darkroom.paid_orders', '', true);
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS orders_invoice_paid ON orders;
CREATE CONSTRAINT TRIGGER orders_invoice_paid
    AFTER UPDATE OF status ON orders
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW
    WHEN (NEW.status = 'paid' AND OLD.status IS DISTINCT FROM NEW.status
          AND NEW.invoice_number IS NULL)
    EXECUTE FUNCTION order_invoice_on_paid();


-- An order's money, as its pages show it: the invoice number (once paid),
-- the goods, the discount {code, amount}, the shipping charge {amount,
-- tax, method, name, zone} (null without prints), the tax (its label, and
-- whether the prices include it) and the total.  Merged into the admin's
-- and the customer's order JSON.
CREATE OR REPLACE FUNCTION order_money_json(o orders) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'invoice_number', o.invoice_number,
        'subtotal', o.subtotal,
        'discount', CASE WHEN o.discount_code IS NULL
                              AND o.discount_amount = 0 THEN NULL
                         ELSE jsonb_build_object('code', o.discount_code,
                                  'amount', o.discount_amount) END,
        'shipping_charge', CASE WHEN NOT o.physical THEN NULL
                                ELSE jsonb_build_object(
                                    'amount', o.shipping_amount,
                                    'tax', o.shipping_tax,
                                    'method', o.shipping_method,
                                    'name', o.shipping_rate,
                                    'zone', o.shipping_zone) END,
        'tax_amount', o.tax_amount,
        'tax_label', o.tax_label,
        'tax_inclusive', o.tax_inclusive,
        'country', o.country,
        'total', o.total);
$$;


CREATE OR REPLACE FUNCTION order_for_charge(p_obj jsonb) RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT id FROM orders
     WHERE stripe_payment_intent = p_obj->>'payment_intent'
        OR (p_obj->'metadata'->>'order_id' ~ '^[0-9]{1,18}$'
            AND id = (p_obj->'metadata'->>'order_id')::bigint)
     ORDER BY stripe_payment_intent = p_obj->>'payment_intent' DESC NULLS LAST
     LIMIT 1;
$$;


-- Events darkroom makes itself (checkout_reconcile) carry their own id
-- and type.
CREATE OR REPLACE FUNCTION stripe_handle_event(p_event jsonb)
RETURNS TABLE (result text, order_id bigint)
LANGUAGE sql AS $$
    SELECT * FROM stripe_handle_event(p_event, p_event->>'id',
                                      p_event->>'type');
$$;


CREATE OR REPLACE FUNCTION admin_product_json(p products) RETURNS json
LANGUAGE sql STABLE AS $$
    SELECT json_build_object('id', p.id, 'name', p.name, 'kind', p.kind,
        'medium', p.medium, 'size', p.size, 'active', p.active,
        'print_size', print_size_json(p.print_width_mm, p.print_height_mm),
        'min_ppi', p.min_ppi,
        'prices', (SELECT coalesce(json_object_agg(pp.currency, pp.amount),
                                   '{}')
                     FROM product_prices pp WHERE pp.product_id = p.id),
        'updated_at', p.updated_at);
$$;


CREATE OR REPLACE FUNCTION admin_photo_json(ph photos) RETURNS json
LANGUAGE sql STABLE AS $$
    SELECT json_build_object('id', ph.id, 'title', ph.title,
        'description', ph.description, 'image', ph.image_path,
        'print', ph.print_path, 'active', ph.active,
        'width', ph.width, 'height', ph.height,
        'products', (SELECT coalesce(json_agg(x.product_id
                                              ORDER BY x.product_id), '[]')
                       FROM photo_products x WHERE x.photo_id = ph.id),
        'updated_at', ph.updated_at);
$$;


CREATE OR REPLACE FUNCTION admin_products_json() RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT json_build_object('products',
        coalesce(json_agg(admin_product_json(p) ORDER BY p.id), '[]'))::text
      FROM products p;
$$;


CREATE OR REPLACE FUNCTION admin_photos_json() RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT json_build_object('photos',
        coalesce(json_agg(admin_photo_json(ph) ORDER BY ph.id), '[]'))::text
      FROM photos ph;
$$;


CREATE OR REPLACE FUNCTION admin_slug(p_value text, p_what text) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF p_value IS NULL OR p_value !~ '^[a-z0-9][a-z0-9-]{0,63}$' THEN
        PERFORM darkroom_refuse(400, 'invalid_' || p_what,
            format('The %s id must be 1 to 64 lower-case letters, digits '
                   'or dashes.', p_what));
    END IF;
    RETURN p_value;
END $$;


-- Creates or updates a product; "prices" replaces the product's prices.
CREATE OR REPLACE FUNCTION admin_product_upsert(p jsonb) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    v_id   text;
    v_row  products%ROWTYPE;
    r      record;
BEGIN
    IF jsonb_typeof(p) IS DISTINCT FROM 'object' THEN
        PERFORM darkroom_refuse(400, 'invalid_json',
                                'The body must be a JSON object.');
    END IF;

    v_id := admin_slug(p->>'id', 'product');

    IF coalesce(p->>'kind', 'print') NOT IN ('print', 'digital') THEN
        PERFORM darkroom_refuse(400, 'invalid_product',
                                'The kind must be "print" or "digital".');
    END IF;

    IF p ? 'name' AND coalesce(length(p->>'name'), 0) NOT BETWEEN 1 AND 200
    THEN
        PERFORM darkroom_refuse(400, 'invalid_product',
                                'The name must be 1 to 200 characters.');
    END IF;

    INSERT INTO products AS x (id, name, kind, medium, size, active)
    VALUES (v_id, coalesce(p->>'name', v_id),
            coalesce(p->>'kind', 'print'), coalesce(p->>'medium', ''),
            coalesce(p->>'size', ''),
            coalesce((p->>'active')::boolean, true))
    ON CONFLICT (id) DO UPDATE
       SET name = coalesce(p->>'name', x.name),
           kind = coalesce(p->>'kind', x.kind),
           medium = coalesce(p->>'medium', x.medium),
           size = coalesce(p->>'size', x.size),
           active = coalesce((p->>'active')::boolean, x.active),
           updated_at = now()
    RETURNING * INTO v_row;

    -- "print_size" and "min_ppi" (sql/functions/prints.sql)
    v_row := admin_product_print(v_row, p);

    IF p ? 'prices' THEN
        IF jsonb_typeof(p->'prices') <> 'object' THEN
            PERFORM darkroom_refuse(400, 'invalid_price',
                'Prices are an object of currency to amount in minor '
                'units, such as {"GBP": 4500}.');
        END IF;

        DELETE FROM product_prices WHERE product_id = v_id;

        FOR r IN SELECT key, value FROM jsonb_each(p->'prices') LOOP
            IF r.key !~ '^[A-Z]{3}$' OR jsonb_typeof(r.value) <> 'number'
               OR r.value::text !~ '^[0-9]{1,8}$' OR r.value::bigint <= 0
            THEN
                PERFORM darkroom_refuse(400, 'invalid_price',
                    format('The price %s %s must be a whole number of minor '
                           'units (pence, cents) above zero.',
                           r.key, r.value));
            END IF;

            INSERT INTO product_prices (product_id, currency, amount)
            VALUES (v_id, r.key, r.value::bigint);
        END LOOP;
    END IF;

    RETURN admin_product_json(v_row)::text;
END $$;


-- Creates or updates a photo; "products" replaces what it is sold as.
CREATE OR REPLACE FUNCTION admin_photo_upsert(p jsonb) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    v_id   text;
    v_row  photos%ROWTYPE;
    v_prod text;
BEGIN
    IF jsonb_typeof(p) IS DISTINCT FROM 'object' THEN
        PERFORM darkroom_refuse(400, 'invalid_json',
                                'The body must be a JSON object.');
    END IF;

    v_id := admin_slug(p->>'id', 'photo');

    IF p ? 'title' AND coalesce(length(p->>'title'), 0) NOT BETWEEN 1 AND 200
    THEN
        PERFORM darkroom_refuse(400, 'invalid_photo',
                                'The title must be 1 to 200 characters.');
    END IF;

    IF coalesce(p->>'print', '') ~ '(^/|\.\.)' THEN
        PERFORM darkroom_refuse(400, 'invalid_photo',
            'The print file is a path relative to the print root, '
            'without "..".');
    END IF;

    INSERT INTO photos AS x (id, title, description, image_path, print_path,
                             active)
    VALUES (v_id, coalesce(p->>'title', v_id),
            coalesce(p->>'description', ''), p->>'image', p->>'print',
            coalesce((p->>'active')::boolean, true))
    ON CONFLICT (id) DO UPDATE
       SET title = coalesce(p->>'title', x.title),
           description = coalesce(p->>'description', x.description),
           image_path = coalesce(p->>'image', x.image_path),
           print_path = coalesce(p->>'print', x.print_path),
           active = coalesce((p->>'active')::boolean, x.active),
           updated_at = now()
    RETURNING * INTO v_row;

    -- "width" and "height" in pixels (sql/functions/prints.sql)
    v_row := admin_photo_pixels(v_row, p);

    IF p ? 'products' THEN
        IF jsonb_typeof(p->'products') <> 'array' THEN
            PERFORM darkroom_refuse(400, 'invalid_photo',
                '"products" is a list of product ids.');
        END IF;

        DELETE FROM photo_products WHERE photo_id = v_id;

        FOR v_prod IN SELECT jsonb_array_elements_text(p->'products') LOOP
            PERFORM 1 FROM products WHERE id = v_prod;
            IF NOT FOUND THEN
                PERFORM darkroom_refuse(400, 'unknown_product',
                    format('There is no product "%s".', v_prod));
            END IF;

            INSERT INTO photo_products (photo_id, product_id)
            VALUES (v_id, v_prod) ON CONFLICT DO NOTHING;
        END LOOP;
    END IF;

    RETURN admin_photo_json(v_row)::text;
END $$;


CREATE OR REPLACE FUNCTION admin_orders_json(p_status text, p_email text,
                                  p_since timestamptz, p_until timestamptz,
                                  p_limit int, p_offset int)
RETURNS text LANGUAGE sql STABLE AS $$
    SELECT json_build_object('orders', coalesce(json_agg(json_build_object(
               'order', o.ref, 'status', o.status, 'email', o.email,
               'currency', o.currency, 'total', o.total,
               'amount_refunded', o.amount_refunded,
               'created_at', o.created_at, 'paid_at', o.paid_at,
               'review_reason', o.review_reason,
               'invoice_number', o.invoice_number)
               ORDER BY o.created_at DESC, o.id DESC), '[]'))::text
      FROM (SELECT * FROM orders o
             WHERE (p_status IS NULL OR o.status = p_status)
               AND (p_email IS NULL OR lower(o.email) = lower(p_email))
               AND (p_since IS NULL OR o.created_at >= p_since)
               AND (p_until IS NULL OR o.created_at < p_until)
             ORDER BY o.created_at DESC, o.id DESC
             LIMIT p_limit OFFSET p_offset) o;
$$;


-- The admin's view of an order: as before, plus the phone number Checkout
-- collected and the state and reason of each Stripe event.
CREATE OR REPLACE FUNCTION admin_order_json(p_ref text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT (order_money_json(o) || jsonb_build_object(
        'order', o.ref, 'id', o.id, 'status', o.status, 'email', o.email,
        'currency', o.currency, 'total', o.total,
        'paid_amount', o.paid_amount, 'paid_currency', o.paid_currency,
        'amount_refunded', o.amount_refunded,
        'review_reason', o.review_reason,
        'stripe_session', o.stripe_session_id,
        'stripe_payment_intent', o.stripe_payment_intent,
        'shipping', CASE WHEN o.shipping_address IS NULL
                              AND o.shipping_phone IS NULL THEN NULL
                         ELSE json_build_object('name', o.shipping_name,
                                                'address', o.shipping_address,
                                                'phone', o.shipping_phone)
                    END,
        'phone', o.shipping_phone,
        'created_at', o.created_at, 'paid_at', o.paid_at,
        'items', (SELECT coalesce(json_agg(json_build_object(
                      'photo', i.photo_id, 'product', i.product_id,
                      'title', i.title, 'product_name', i.product_name,
                      'kind', i.kind, 'quantity', i.quantity,
                      'unit_amount', i.unit_amount, 'amount', i.amount,
                      'discount', i.discount, 'tax', i.tax,
                      'tax_rate', i.tax_rate, 'sizing', i.sizing)
                      ORDER BY i.line), '[]')
                    FROM order_items i WHERE i.order_id = o.id),
        'events', (SELECT coalesce(json_agg(json_build_object(
                      'from', e.from_status, 'to', e.to_status,
                      'cause', e.cause, 'detail', e.detail,
                      'at', e.created_at) ORDER BY e.id), '[]')
                     FROM order_events e WHERE e.order_id = o.id),
        'webhooks', (SELECT coalesce(json_agg(json_build_object(
                      'id', s.id, 'type', s.type, 'result', s.result,
                      'state', s.state, 'reason', s.reason,
                      'api_version', s.api_version,
                      'received_at', s.received_at)
                      ORDER BY s.received_at), '[]')
                       FROM stripe_events s WHERE s.order_id = o.id),
        'jobs', (SELECT coalesce(json_agg(json_build_object(
                      'id', j.id, 'kind', j.kind, 'attempts', j.attempts,
                      'dead', j.dead, 'done', j.done_at IS NOT NULL,
                      'last_error', j.last_error, 'run_at', j.run_at)
                      ORDER BY j.id), '[]')
                   FROM jobs j WHERE j.payload->>'order_id' = o.id::text)
    ))::text
      FROM orders o WHERE o.ref = p_ref;
$$;


-- POST orders/<ref>/review {"reason"}: an admin sends an order to review;
-- p_actor is who (detail 'actor' of the event).
CREATE OR REPLACE FUNCTION admin_order_review(p_ref text, p_reason text,
                                              p_actor text DEFAULT 'admin')
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_id bigint;
    v_status text;
BEGIN
    SELECT id, status INTO v_id, v_status FROM orders WHERE ref = p_ref
       FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM darkroom_refuse(404, 'not_found', 'There is no such order.');
    END IF;

    UPDATE orders SET review_reason = coalesce(p_reason, 'Marked by admin.')
     WHERE id = v_id;

    IF NOT order_transition(v_id, 'needs_review', 'admin',
                            jsonb_build_object('reason', p_reason,
                                               'review', 'admin',
                                               'actor', p_actor))
    THEN
        PERFORM darkroom_refuse(409, 'invalid_state',
            format('An order that is %s cannot be marked for review.',
                   v_status));
    END IF;

    RETURN admin_order_json(p_ref);
END $$;


-- Checks a refund before Stripe is asked, and names the idempotency key:
-- the same request for the same order state is the same refund.
CREATE OR REPLACE FUNCTION admin_refund_check(p_ref text, p_amount bigint)
RETURNS TABLE (order_id bigint, payment_intent text, amount bigint,
               idempotency_key text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    o orders%ROWTYPE;
    v_left bigint;
BEGIN
    SELECT * INTO o FROM orders WHERE ref = p_ref;
    IF NOT FOUND THEN
        PERFORM darkroom_refuse(404, 'not_found', 'There is no such order.');
    END IF;

    IF o.stripe_payment_intent IS NULL OR o.paid_amount IS NULL THEN
        PERFORM darkroom_refuse(409, 'not_paid',
                                'This order has no payment to refund.');
    END IF;

    v_left := o.paid_amount - o.amount_refunded;

    IF p_amount IS NOT NULL AND (p_amount <= 0 OR p_amount > v_left) THEN
        PERFORM darkroom_refuse(400, 'invalid_amount',
            format('A refund must be between 1 and %s (minor units).',
                   v_left));
    END IF;

    IF v_left <= 0 THEN
        PERFORM darkroom_refuse(409, 'already_refunded',
                                'This order is fully refunded.');
    END IF;

    RETURN QUERY SELECT o.id, o.stripe_payment_intent,
                        coalesce(p_amount, v_left),
                        format('darkroom-refund-%s-%s-%s', o.id,
                               o.amount_refunded, coalesce(p_amount, v_left));
END $$;


CREATE OR REPLACE FUNCTION stripe_events_redact() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.payload := NEW.payload #- '{data,object,success_url}'
                               #- '{data,object,cancel_url}';
    RETURN NEW;
END $$;

DROP TRIGGER IF EXISTS stripe_events_redact ON stripe_events;
CREATE TRIGGER stripe_events_redact BEFORE INSERT ON stripe_events
    FOR EACH ROW EXECUTE FUNCTION stripe_events_redact();


-- The API version darkroom is written for: its API calls send it as
-- Stripe-Version, and its webhook endpoint must be configured with it.
CREATE OR REPLACE FUNCTION stripe_api_version() RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT '2024-06-20' $$;


-- Versions whose Checkout Session and Charge darkroom reads correctly:
-- 2020-08-27 (address in "shipping") to the 2025 releases (address in
-- "collected_information").  Older ones, later ones nobody has checked,
-- and events that name none are recorded and flagged, never guessed at.
CREATE OR REPLACE FUNCTION stripe_api_version_supported(p_version text) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(p_version ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}(\.[a-z]+)?$'
                    AND left(p_version, 10) BETWEEN '2020-08-27'
                                                AND '2025-12-31', false);
$$;


-- The shipping details of a Checkout Session, whatever its version:
-- collected_information.shipping_details (2025-02-24.acacia on),
-- shipping_details (2022-08-01 on), shipping (2020-08-27).  JSON null is
-- no address.
CREATE OR REPLACE FUNCTION stripe_session_shipping(p_session jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(
        nullif(p_session->'collected_information'->'shipping_details',
               'null'::jsonb),
        nullif(p_session->'shipping_details', 'null'::jsonb),
        nullif(p_session->'shipping', 'null'::jsonb));
$$;


-- What is wrong with the fields darkroom reads from an event's object, in
-- words for the admin, or NULL when they are all of the right type.
CREATE OR REPLACE FUNCTION stripe_event_problem(p_type text, p_obj jsonb) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    v_field text;
    v_want  text;
    v_ok    boolean;
    v_ship  jsonb;
BEGIN
    FOR v_field, v_want IN
        SELECT f, w FROM (VALUES
            ('checkout.session.', 'id', 'string'),
            ('checkout.session.', 'amount_total', 'integer'),
            ('checkout.session.', 'currency', 'currency'),
            ('checkout.session.', 'payment_status', 'string'),
            ('checkout.session.', 'payment_intent', 'string?'),
            ('checkout.session.', 'metadata', 'object?'),
            ('checkout.session.', 'customer_details', 'object?'),
            ('charge.refunded', 'amount', 'integer'),
            ('charge.refunded', 'amount_refunded', 'integer'),
            ('charge.refunded', 'refunded', 'boolean'),
            ('charge.refunded', 'currency', 'currency'),
            ('charge.refunded', 'payment_intent', 'string?'),
            ('charge.refunded', 'metadata', 'object?'),
            ('charge.dispute.created', 'reason', 'string?'),
            ('charge.dispute.created', 'payment_intent', 'string?')
        ) AS c(prefix, f, w)
        WHERE p_type LIKE c.prefix || '%'
    LOOP
        v_ok := CASE trim(trailing '?' FROM v_want)
            WHEN 'string' THEN jsonb_typeof(p_obj->v_field) = 'string'
            WHEN 'object' THEN jsonb_typeof(p_obj->v_field) = 'object'
            WHEN 'boolean' THEN jsonb_typeof(p_obj->v_field) = 'boolean'
            -- Stripe sends numbers; a string of digits casts the same
            WHEN 'integer' THEN jsonb_typeof(p_obj->v_field)
                                IN ('number', 'string')
                 AND p_obj->>v_field ~ '^-?[0-9]{1,15}$'
            WHEN 'currency' THEN jsonb_typeof(p_obj->v_field) = 'string'
                 AND p_obj->>v_field ~ '^[A-Za-z]{3}$'
            END;
        v_ok := v_ok OR (v_want LIKE '%?'
                         AND coalesce(jsonb_typeof(p_obj->v_field), 'null')
                             = 'null');
        IF NOT coalesce(v_ok, false) THEN
            RETURN format('%s: %s is %s, not %s', p_type, v_field,
                          coalesce(left((p_obj->v_field)::text, 40),
                                   'missing'),
                          CASE trim(trailing '?' FROM v_want)
                              WHEN 'integer' THEN 'an integer'
                              WHEN 'currency' THEN 'a currency code'
                              ELSE 'a ' || trim(trailing '?' FROM v_want)
                          END);
        END IF;
    END LOOP;

    IF p_type LIKE 'checkout.session.%' THEN
        v_ship := stripe_session_shipping(p_obj);
        IF v_ship IS NOT NULL AND (jsonb_typeof(v_ship) <> 'object'
            OR coalesce(jsonb_typeof(v_ship->'address'), 'null')
               NOT IN ('object', 'null'))
        THEN
            RETURN p_type || ': the shipping details are not an object';
        END IF;
    END IF;

    RETURN NULL;
END $$;


-- A payment for an order that was cancelled or expired: money was taken
-- and nothing will be made, so a person must refund or fulfil it.
CREATE OR REPLACE FUNCTION order_paid_after_close(p_order bigint,
                                                  p_status text,
                                                  p_amount bigint,
                                                  p_currency text,
                                                  p_cause text)
RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    UPDATE orders SET review_reason = format(
               'Paid %s %s after it was %s: refund it or fulfil it.',
               p_amount, p_currency, p_status)
     WHERE id = p_order;
    PERFORM order_transition(p_order, 'needs_review', p_cause,
        jsonb_build_object('paid', p_amount, 'currency', p_currency,
                           'reason', 'paid after it was ' || p_status,
                           'review', 'paid_after_close'));
    PERFORM stripe_alert(p_order, p_cause, NULL);
    RETURN 'needs_review: paid after it was ' || p_status;
END $$;


-- A shop_alert email about an order (when known) and a Stripe event, once
-- per event: the mail worker sends it to darkroom_mail_alert_to.
CREATE OR REPLACE FUNCTION stripe_alert(p_order bigint, p_cause text, p_reason text)
RETURNS void LANGUAGE sql AS $$
    INSERT INTO jobs (kind, payload, dedupe_key)
    VALUES ('email', jsonb_strip_nulls(jsonb_build_object(
                'template', 'shop_alert', 'order_id', p_order,
                'stripe_event', substr(p_cause, length('stripe:') + 1),
                'reason', p_reason)),
            'email:alert:' || coalesce(p_order::text, 'none') || ':'
            || p_cause)
    ON CONFLICT (dedupe_key) DO NOTHING;
$$;


-- An event that would have moved an order under review: kept in the
-- order's history (from and to needs_review), not applied, and the shop
-- told.
CREATE OR REPLACE FUNCTION order_review_record(p_order bigint, p_cause text,
                                    p_detail jsonb)
RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO order_events (order_id, from_status, to_status, cause,
                              detail)
    VALUES (p_order, 'needs_review', 'needs_review', p_cause,
            p_detail || jsonb_build_object('applied', false,
                'why', 'the order is under review: an admin decides'));
    PERFORM stripe_alert(p_order, p_cause, NULL);
    RETURN 'recorded: order needs review';
END $$;


-- The order an event is about, without changing anything, for recording
-- an event that could not be applied.
CREATE OR REPLACE FUNCTION stripe_event_order(p_type text, p_obj jsonb) RETURNS bigint
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_order bigint;
BEGIN
    IF p_type LIKE 'checkout.session.%' THEN
        SELECT o.id INTO v_order FROM orders o
         WHERE o.stripe_session_id = p_obj->>'id';
        IF v_order IS NULL
           AND p_obj->'metadata'->>'order_id' ~ '^[0-9]{1,18}$'
        THEN
            SELECT o.id INTO v_order FROM orders o
             WHERE o.id = (p_obj->'metadata'->>'order_id')::bigint;
        END IF;
    ELSIF p_type LIKE 'charge.%' THEN
        v_order := order_for_charge(p_obj);
    END IF;
    RETURN v_order;
EXCEPTION WHEN data_exception THEN
    RETURN NULL;
END $$;


-- charge.dispute.created.  An order that can go to review does, with the
-- dispute as its reason: a cancelled or expired one too, since a dispute
-- means money was taken and a person must look.  One already in review
-- keeps its reason and the dispute is added.  A refunded order keeps its
-- state and reason: the dispute is in its history.  The shop is told in
-- every case: a dispute on a refunded order matters too.
CREATE OR REPLACE FUNCTION stripe_apply_dispute(p_order bigint, p_obj jsonb,
                                                p_cause text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_status  text;
    v_reason  text := format('Payment disputed: %s.',
                             coalesce(p_obj->>'reason', 'no reason given'));
    v_detail  jsonb := jsonb_build_object('dispute', p_obj->>'id');
    v_result  text;
BEGIN
    SELECT status INTO v_status FROM orders WHERE id = p_order FOR UPDATE;

    IF v_status = 'needs_review' THEN
        UPDATE orders SET review_reason = concat_ws(' ', review_reason,
                                                    v_reason)
         WHERE id = p_order;
        INSERT INTO order_events (order_id, from_status, to_status, cause,
                                  detail)
        VALUES (p_order, v_status, v_status, p_cause, v_detail);
        v_result := 'recorded: dispute added to the review';

    ELSIF order_transition(p_order, 'needs_review', p_cause,
                           v_detail || '{"review": "dispute"}')
    THEN
        UPDATE orders SET review_reason = v_reason WHERE id = p_order;
        v_result := 'needs_review: disputed';

    ELSE
        INSERT INTO order_events (order_id, from_status, to_status, cause,
                                  detail)
        VALUES (p_order, v_status, v_status, p_cause,
                v_detail || jsonb_build_object('reason', p_obj->>'reason',
                    'applied', false,
                    'why', 'a ' || v_status || ' order is not reviewed'));
        v_result := 'recorded: dispute on a ' || v_status || ' order';
    END IF;

    PERFORM stripe_alert(p_order, p_cause, NULL);
    RETURN v_result;
END $$;


-- Applies one event of a type darkroom handles (a dispute is
-- stripe_apply_dispute's); the caller has recorded it and checked its
-- fields.  Returns the result and the order.
CREATE OR REPLACE FUNCTION stripe_apply_event(p_id text, p_type text,
                                              p_obj jsonb,
                                              OUT result text,
                                              OUT order_id bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_cause   text := 'stripe:' || p_id;
    v_status  text;
BEGIN
    IF p_type LIKE 'checkout.session.%' THEN
        SELECT o.id INTO order_id FROM orders o
         WHERE o.stripe_session_id = p_obj->>'id';

        -- the session may be unknown if we crashed between creating it at
        -- Stripe and recording it: its metadata still names the order
        IF order_id IS NULL
           AND p_obj->'metadata'->>'order_id' ~ '^[0-9]{1,18}$'
        THEN
            SELECT o.id INTO order_id FROM orders o
             WHERE o.id = (p_obj->'metadata'->>'order_id')::bigint
               AND o.stripe_session_id IS NULL;
            UPDATE orders o SET stripe_session_id = p_obj->>'id'
             WHERE o.id = order_id;
        END IF;
    ELSIF p_type IN ('charge.refunded', 'charge.dispute.created') THEN
        order_id := order_for_charge(p_obj);
    END IF;

    IF order_id IS NULL THEN
        result := CASE WHEN p_type IN (
                           'checkout.session.completed',
                           'checkout.session.expired',
                           'checkout.session.async_payment_succeeded',
                           'checkout.session.async_payment_failed',
                           'charge.refunded',
                           'charge.dispute.created')
                       THEN 'ignored: no such order'
                       ELSE 'ignored: event type not handled' END;
        RETURN;
    END IF;

    SELECT o.status INTO v_status FROM orders o WHERE o.id = order_id
       FOR UPDATE;

    IF p_type IN ('checkout.session.completed',
                  'checkout.session.async_payment_succeeded')
    THEN
        IF p_obj->>'payment_status' IN ('paid', 'no_payment_required') THEN
            result := order_mark_paid(order_id, p_obj, v_cause);
        ELSE
            -- delayed methods (bank debits) report later
            UPDATE orders o
               SET stripe_payment_intent = coalesce(o.stripe_payment_intent,
                                                    p_obj->>'payment_intent')
             WHERE o.id = order_id;
            result := 'awaiting payment';
        END IF;

    ELSIF p_type = 'checkout.session.async_payment_failed' THEN
        IF v_status = 'needs_review' THEN
            result := order_review_record(order_id, v_cause,
                          jsonb_build_object('payment', 'failed'));
        ELSIF order_transition(order_id, 'cancelled', v_cause,
                               jsonb_build_object('reason', 'payment failed'))
        THEN
            -- the customer thought it paid: say so, with a way to try again
            PERFORM order_email(order_id, 'payment_failed');
            result := 'cancelled';
        ELSE
            result := 'ignored: order already settled';
        END IF;

    ELSIF p_type = 'checkout.session.expired' THEN
        IF order_transition(order_id, 'expired', v_cause) THEN
            -- only a customer who started paying hears of it: an abandoned
            -- cart is not written to (that would be marketing)
            IF p_obj->>'payment_intent' IS NOT NULL
               OR EXISTS (SELECT 1 FROM orders o WHERE o.id = order_id
                             AND o.stripe_payment_intent IS NOT NULL)
            THEN
                PERFORM order_email(order_id, 'checkout_expired');
            END IF;
            result := 'expired';
        ELSE
            result := 'ignored: order already settled';
        END IF;

    ELSIF p_type = 'charge.refunded' THEN
        result := stripe_apply_refund(order_id, p_obj, v_cause);

    ELSIF p_type = 'charge.dispute.created' THEN
        result := stripe_apply_dispute(order_id, p_obj, v_cause);

    ELSE
        result := 'ignored: event type not handled';
    END IF;
END $$;


-- An email to the order's customer about the order (template: receipt,
-- payment_failed, checkout_expired, ...), enqueued in the transaction of
-- the change it tells of, once per order and template.
CREATE OR REPLACE FUNCTION order_email(p_order bigint, p_template text)
RETURNS void LANGUAGE sql AS $$
    INSERT INTO jobs (kind, payload, dedupe_key)
    VALUES ('email', jsonb_build_object('template', p_template,
                                        'order_id', p_order),
            'email:' || p_template || ':' || p_order)
    ON CONFLICT (dedupe_key) DO NOTHING;
$$;


-- The receipt of a paid order, once (its dedupe key).  Not for a booking's
-- order (a line of kind 'session', its deposit or balance): the booking's
-- own email (booking_confirmed, booking_balance_paid) is its receipt, with
-- the amount, the invoice number and the date (bookings_mail.sql), so the
-- client gets one email for one payment.
-- PL/pgSQL, not SQL: its plan is kept from one call to the next.
CREATE OR REPLACE FUNCTION order_receipt_email(p_order bigint)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO jobs (kind, payload, dedupe_key)
    SELECT 'email', jsonb_build_object('template', 'receipt',
                                       'order_id', p_order),
           'email:receipt:' || p_order
     WHERE NOT EXISTS (SELECT 1 FROM order_items
                        WHERE order_id = p_order AND kind = 'session')
    ON CONFLICT (dedupe_key) DO NOTHING;
END $$;


-- charge.refunded: amount_refunded is cumulative, so taking the largest
-- seen makes partial refunds arriving in any order end in the same place.
-- A full refund ends a review too: refunds are made by the shop.
CREATE OR REPLACE FUNCTION stripe_apply_refund(p_order bigint, p_obj jsonb,
                                    p_cause text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_refunded bigint := (p_obj->>'amount_refunded')::bigint;
    v_status   text;
    v_moved    boolean;
    v_result   text;
BEGIN
    UPDATE orders o
       SET amount_refunded = greatest(o.amount_refunded, v_refunded),
           paid_amount = coalesce(o.paid_amount, (p_obj->>'amount')::bigint),
           paid_currency = coalesce(o.paid_currency,
                                    upper(p_obj->>'currency')),
           stripe_payment_intent = coalesce(o.stripe_payment_intent,
                                            p_obj->>'payment_intent'),
           updated_at = now()
     WHERE o.id = p_order
    RETURNING o.status INTO v_status;

    IF (p_obj->>'refunded')::boolean THEN
        v_moved := order_transition(p_order, 'refunded', p_cause,
                       jsonb_build_object('amount_refunded', v_refunded));
        v_result := CASE WHEN v_moved THEN 'refunded'
                         ELSE 'ignored: order is ' || v_status END;
    ELSE
        INSERT INTO order_events (order_id, from_status, to_status, cause,
                                  detail)
        VALUES (p_order, v_status, v_status, p_cause,
                jsonb_build_object('partial_refund', v_refunded));
        v_result := 'partially refunded';
        v_moved := true;
    END IF;

    IF v_moved THEN
        INSERT INTO jobs (kind, payload, dedupe_key)
        VALUES ('email', jsonb_build_object('template', 'refunded',
                    'order_id', p_order, 'amount_refunded', v_refunded),
                'email:refund:' || p_order || ':' || v_refunded)
        ON CONFLICT (dedupe_key) DO NOTHING;
    END IF;

    RETURN v_result;
END $$;


-- One verified Stripe event, exactly once: the event id is the key, and
-- p_id / p_type are the ones the webhook checked, logged and answered.
-- A repeat answers 'duplicate' and changes nothing.  An event that cannot
-- be applied is kept as 'unprocessable' with its reason, the shop is
-- alerted, and the caller answers 2xx: only a failure to commit (database
-- down, serialization) is worth Stripe's retries.
CREATE OR REPLACE FUNCTION stripe_handle_event(p_event jsonb, p_id text, p_type text)
RETURNS TABLE (result text, order_id bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_obj      jsonb := p_event->'data'->'object';
    v_version  text := p_event->>'api_version';
    v_order    bigint;
    v_result   text;
    v_problem  text;
BEGIN
    INSERT INTO stripe_events (id, type, result, payload, state, api_version)
    VALUES (p_id, p_type, 'processing', p_event, 'processing', v_version)
    ON CONFLICT (id) DO NOTHING;

    IF NOT FOUND THEN
        RETURN QUERY SELECT 'duplicate'::text,
                            (SELECT se.order_id FROM stripe_events se
                              WHERE se.id = p_id);
        RETURN;
    END IF;

    IF NOT stripe_api_version_supported(v_version) THEN
        v_problem := format('API version %s is not one darkroom reads'
                            ' (configure the endpoint with %s)',
                            coalesce(v_version, '(none)'),
                            stripe_api_version());
    ELSE
        v_problem := stripe_event_problem(p_type, v_obj);
    END IF;

    IF v_problem IS NULL THEN
        BEGIN
            SELECT a.result, a.order_id INTO v_result, v_order
              FROM stripe_apply_event(p_id, p_type, v_obj) a;
        EXCEPTION WHEN data_exception OR integrity_constraint_violation THEN
            -- rolled back to here: the event's row stays
            v_problem := p_type || ': ' || SQLERRM;
        END;
    END IF;

    IF v_problem IS NOT NULL THEN
        v_order := stripe_event_order(p_type, v_obj);
        v_result := 'unprocessable: ' || v_problem;
        PERFORM stripe_alert(v_order, 'stripe:' || p_id, v_problem);
    END IF;

    UPDATE stripe_events se
       SET result = v_result, order_id = v_order, reason = v_problem,
           state = CASE WHEN v_problem IS NOT NULL THEN 'unprocessable'
                        WHEN v_result LIKE 'ignored%' THEN 'ignored'
                        WHEN v_result LIKE 'recorded%' THEN 'recorded'
                        ELSE 'processed' END
     WHERE se.id = p_id;

    RETURN QUERY SELECT v_result, v_order;
END $$;


-- Stripe events that arrived together (the webhook's group commit), applied
-- in the one transaction of this statement: each by stripe_handle_event()
-- in a savepoint of its own (a BEGIN ... EXCEPTION block), so one that
-- raises is rolled back alone and reports its error while the others
-- commit.  The bodies come as text and become jsonb inside the savepoint:
-- one PostgreSQL refuses fails alone.  An event that loses a deadlock or a
-- serialization conflict runs again, as the webhook runs a lone statement
-- again (3 runs, 50 then 100 ms apart).  One row per event, ev_n its place
-- in the arrays: its result, or the SQLSTATE, message and detail it raised.
CREATE OR REPLACE FUNCTION stripe_handle_events(p_events text[],
                                                p_ids text[], p_types text[],
                                                p_request_ids text[]
                                                    DEFAULT NULL)
RETURNS TABLE (ev_n int, ev_result text, ev_state text, ev_message text,
               ev_detail text)
LANGUAGE plpgsql AS $$
BEGIN
    IF cardinality(p_ids) IS DISTINCT FROM cardinality(p_events)
       OR cardinality(p_types) IS DISTINCT FROM cardinality(p_events)
       OR (p_request_ids IS NOT NULL
           AND cardinality(p_request_ids) <> cardinality(p_events))
    THEN
        RAISE EXCEPTION 'stripe_handle_events: % events, % ids, % types, '
            '% request ids', cardinality(p_events), cardinality(p_ids),
            cardinality(p_types), cardinality(p_request_ids);
    END IF;

    FOR i IN 1 .. coalesce(cardinality(p_events), 0) LOOP
        ev_n := i;

        -- the jobs this event queues carry its own request's id (jobs'
        -- DEFAULT, sql/038): local to the transaction, so the session's
        -- own value (the db layer's) is back after the commit
        PERFORM set_config('darkroom.request_id',
                           coalesce(p_request_ids[i], ''), true);

        FOR v_try IN 1 .. 3 LOOP
            ev_result := NULL;
            ev_state := NULL;
            ev_message := NULL;
            ev_detail := NULL;

            BEGIN
                SELECT h.result INTO ev_result
                  FROM stripe_handle_event(p_events[i]::jsonb, p_ids[i],
                                           p_types[i]) h;
            EXCEPTION WHEN OTHERS THEN
                GET STACKED DIAGNOSTICS ev_state = RETURNED_SQLSTATE,
                                        ev_message = MESSAGE_TEXT,
                                        ev_detail = PG_EXCEPTION_DETAIL;
            END;

            EXIT WHEN ev_state IS NULL OR ev_state NOT IN ('40P01', '40001')
                      OR v_try = 3;

            PERFORM pg_sleep(0.05 * v_try);
        END LOOP;

        RETURN NEXT;
    END LOOP;
END $$;


-- checkout_create() behind an idempotency key (NULL: none).  The first
-- call creates the order (with the seed and key id its status token is
-- derived from, sql/021) and remembers the key; a repeat with the same
-- cart returns that order (replay, with its seed and key id, so the caller
-- derives the same status link, and the checkout URL if the session is
-- attached); the same key with another cart is refused.  Callers with one
-- key are serialised by an advisory lock.
CREATE OR REPLACE FUNCTION checkout_create_idempotent(p_key_hash text,
    p_request_hash text, p_keep interval,
    p_items jsonb, p_email text, p_currency text, p_country text,
    p_code text, p_method text, p_token_hash text, p_token_seed text,
    p_token_kid text, p_expires_at timestamptz, p_reconcile_at timestamptz,
    p_gallery bigint DEFAULT NULL)
RETURNS TABLE (order_id bigint, order_ref text, total bigint,
               physical boolean, cart jsonb, replay boolean,
               token_seed text, token_kid text, saved_url text,
               expires_epoch bigint)
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
                v_order.physical, order_cart(v_order.id),
                true, v_order.token_seed, v_order.token_kid,
                v_order.checkout_url,
                extract(epoch FROM v_order.expires_at)::bigint;
            RETURN;
        END IF;
    END IF;

    SELECT * INTO c FROM checkout_create(p_items, p_email, p_currency,
                                         p_country, p_code, p_method,
                                         p_token_hash, p_expires_at,
                                         p_reconcile_at, p_gallery);

    UPDATE orders o SET token_seed = p_token_seed, token_kid = p_token_kid
     WHERE o.id = c.order_id;

    IF p_key_hash IS NOT NULL THEN
        INSERT INTO checkout_idempotency (key_hash, request_hash, order_id,
                                          expires_at)
        VALUES (p_key_hash, p_request_hash, c.order_id, now() + p_keep);
    END IF;

    RETURN QUERY SELECT c.order_id, c.order_ref, c.total, c.physical,
                        c.cart, false, p_token_seed, p_token_kid,
                        NULL::text,
                        extract(epoch FROM p_expires_at)::bigint;
END $$;


-- An order going on after review is fulfilled when no lab order was ever
-- made and no fulfilment is open.  'fulfil:<id>' is taken by the first
-- job (done, perhaps into review): this one is named by the event that
-- let it go.  The receipt, if the order never had one, goes too.
CREATE OR REPLACE FUNCTION order_resolve_fulfil(p_order bigint,
                                                p_event bigint)
RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    PERFORM order_receipt_email(p_order);

    PERFORM download_grant_order(p_order, 'admin');

    IF NOT (SELECT physical FROM orders WHERE id = p_order)
       OR EXISTS (SELECT 1 FROM lab_orders WHERE order_id = p_order)
       OR EXISTS (SELECT 1 FROM jobs WHERE kind = 'fulfil_order'
                     AND payload->>'order_id' = p_order::text
                     AND done_at IS NULL AND NOT dead)
    THEN
        RETURN false;
    END IF;

    INSERT INTO jobs (kind, payload, dedupe_key)
    VALUES ('fulfil_order', jsonb_build_object('order_id', p_order),
            CASE WHEN EXISTS (SELECT 1 FROM jobs
                               WHERE dedupe_key = 'fulfil:' || p_order)
                 THEN format('fulfil:%s:resolve:%s', p_order, p_event)
                 ELSE 'fulfil:' || p_order END)
    ON CONFLICT (dedupe_key) DO NOTHING;
    RETURN true;
END $$;


-- Checks an admin's target for an order under review and names the state
-- it really goes to.  "paid" (or the state the lab reached) carries on;
-- "cancelled" only when no money is held, or a dispute took it, and no
-- lab order is live.  A refund
-- goes through Stripe (POST .../refund); the other states belong to the
-- lab.
CREATE OR REPLACE FUNCTION order_resolve_target(o orders, p_to text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_lab  text := order_lab_progress(o.id);
BEGIN
    IF p_to IS NULL OR p_to NOT IN ('paid', 'in_production', 'shipped',
                                    'delivered', 'cancelled', 'refunded',
                                    'needs_review', 'pending_payment',
                                    'expired')
    THEN
        PERFORM darkroom_refuse(400, 'invalid_target',
            '"to" must be "paid" (carry on) or "cancelled".');
    END IF;

    IF p_to = 'refunded' THEN
        PERFORM darkroom_refuse(409, 'refund_through_stripe',
            'Refund it with POST orders/<ref>/refund: the refund ends the '
            'review when Stripe reports it.');
    END IF;

    IF p_to = 'cancelled' THEN
        IF coalesce(o.paid_amount, 0) > o.amount_refunded
           AND NOT EXISTS (SELECT 1 FROM order_events e
                            WHERE e.order_id = o.id AND e.detail ? 'dispute')
        THEN
            PERFORM darkroom_refuse(409, 'money_held', format(
                'The order holds %s %s: refund it, or resolve it to paid.',
                o.paid_amount - o.amount_refunded, o.paid_currency));
        END IF;
        -- a lab order, even one not started, would go on being made
        IF EXISTS (SELECT 1 FROM lab_orders WHERE order_id = o.id
                      AND status NOT IN ('cancelled', 'rerouted'))
        THEN
            PERFORM darkroom_refuse(409, 'lab_orders_live', format(
                'A lab has it (%s): cancel its lab orders first.',
                coalesce(v_lab, 'not started')));
        END IF;
        RETURN 'cancelled';
    END IF;

    IF p_to NOT IN ('paid', 'in_production', 'shipped')
       OR p_to <> coalesce(v_lab, 'paid') AND p_to <> 'paid'
    THEN
        PERFORM darkroom_refuse(409, 'invalid_target_state', format(
            'An order under review goes to paid (its lab orders are %s) or '
            'cancelled, not %s.', coalesce(v_lab, 'not started'), p_to));
    END IF;

    IF o.paid_amount IS NULL THEN
        PERFORM darkroom_refuse(409, 'not_paid',
            'No payment was recorded for this order: cancel it instead.');
    END IF;

    RETURN coalesce(v_lab, 'paid');
END $$;


-- The body of an admin's action on an order under review, checked: a
-- JSON object whose "note" is text (at most 2000 characters) and whose
-- "refund" is true or false when given.
CREATE OR REPLACE FUNCTION admin_review_body(p_body text)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_body jsonb;
BEGIN
    BEGIN
        v_body := coalesce(nullif(p_body, ''), '{}')::jsonb;
    EXCEPTION WHEN others THEN
        v_body := NULL;
    END;
    IF jsonb_typeof(v_body) IS DISTINCT FROM 'object' THEN
        PERFORM darkroom_refuse(400, 'invalid_json',
                                'The body must be a JSON object.');
    END IF;
    IF v_body ? 'note' AND (jsonb_typeof(v_body->'note') <> 'string'
                            OR length(v_body->>'note') > 2000)
    THEN
        PERFORM darkroom_refuse(400, 'invalid_note',
            '"note" is text of at most 2000 characters.');
    END IF;
    IF v_body ? 'refund' AND jsonb_typeof(v_body->'refund') <> 'boolean' THEN
        PERFORM darkroom_refuse(400, 'invalid_refund',
                                '"refund" is true or false.');
    END IF;
    RETURN v_body;
END $$;


-- POST orders/<ref>/resolve {"to", "note", "refund"}: an admin takes an
-- order out of review (cause 'admin', detail 'actor' says who), the note
-- and the old reason in its history.  {"to": "cancelled", "refund": true}
-- on an order that holds money is a refund through Stripe first
-- (admin_resolve_refund_check, then admin_resolve_refund_requested): the
-- order stays in review until Stripe's charge.refunded ends it as
-- refunded.  Without money held, "refund" changes nothing: it is
-- cancelled.
CREATE OR REPLACE FUNCTION admin_order_resolve(p_ref text, p_body text,
                                               p_actor text DEFAULT 'admin')
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    o       orders%ROWTYPE;
    v_body  jsonb := admin_review_body(p_body);
    v_to    text;
    v_lab   text;
    v_ev    bigint;
BEGIN
    SELECT * INTO o FROM orders WHERE ref = p_ref FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM darkroom_refuse(404, 'not_found', 'There is no such order.');
    END IF;
    IF o.status <> 'needs_review' THEN
        PERFORM darkroom_refuse(409, 'not_in_review',
            format('The order is %s, not under review.', o.status));
    END IF;

    v_to := order_resolve_target(o, v_body->>'to');
    v_lab := order_lab_progress(o.id);

    IF NOT order_transition(o.id, v_to, 'admin', jsonb_build_object(
               'asked', v_body->>'to', 'note', v_body->>'note',
               'review_reason', o.review_reason, 'lab_progress', v_lab,
               'actor', p_actor))
    THEN
        PERFORM darkroom_refuse(409, 'invalid_target_state',
            format('An order under review cannot go to %s.', v_to));
    END IF;

    UPDATE orders SET review_reason = NULL WHERE id = o.id;

    IF v_to <> 'cancelled' THEN
        PERFORM order_invoice(o.id);
    END IF;

    IF v_to = 'paid' THEN
        SELECT max(id) INTO v_ev FROM order_events WHERE order_id = o.id;
        PERFORM order_resolve_fulfil(o.id, v_ev);
    END IF;

    RETURN admin_order_json(p_ref);
END $$;


-- The admin API's shipping and tax resources (src/shop admin):
--   settings  GET; POST {tax_inclusive, country, invoice_prefix}
--   zones     GET; POST {id, name, countries}; DELETE zones/<id>
--   rates     GET; POST {zone, currency, method, product, name, amount,
--                        per_item, free_over}; DELETE rates/<id>
--   tax       GET; POST {country, kind, rate, label}; DELETE tax/<CC>
-- p_action is GET, POST or DELETE; p_body the request body, parsed here
-- (bad JSON is a 400 from here, like admin_order_resolve).
CREATE OR REPLACE FUNCTION admin_pricing(p_what text, p_action text,
                                         p_id text, p_body text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_body  jsonb;
BEGIN
    IF p_action = 'POST' THEN
        BEGIN
            v_body := coalesce(nullif(p_body, ''), '{}')::jsonb;
        EXCEPTION WHEN others THEN
            v_body := NULL;
        END;
        IF jsonb_typeof(v_body) IS DISTINCT FROM 'object' THEN
            PERFORM darkroom_refuse(400, 'invalid_json',
                                    'The body must be a JSON object.');
        END IF;
    END IF;

    IF p_action = 'POST' AND p_id IS NOT NULL
       OR p_action = 'DELETE' AND (p_id IS NULL OR p_what = 'settings')
       OR p_action = 'GET' AND p_id IS NOT NULL
    THEN
        PERFORM darkroom_refuse(404, 'not_found',
                                'There is no such admin resource.');
    END IF;

    IF p_action = 'POST' THEN
        CASE p_what
        WHEN 'settings' THEN PERFORM admin_settings_update(v_body);
        WHEN 'zones' THEN RETURN admin_zone_upsert(v_body);
        WHEN 'rates' THEN RETURN admin_rate_upsert(v_body);
        WHEN 'tax' THEN PERFORM admin_tax_upsert(v_body);
        END CASE;
    ELSIF p_action = 'DELETE' THEN
        CASE p_what
        WHEN 'zones' THEN
            DELETE FROM shipping_zones WHERE id = p_id;
        WHEN 'rates' THEN
            DELETE FROM shipping_rates
             WHERE p_id ~ '^[0-9]{1,18}$' AND id = p_id::bigint;
        WHEN 'tax' THEN
            DELETE FROM tax_rates WHERE country = upper(p_id);
        END CASE;
        IF NOT FOUND THEN
            PERFORM darkroom_refuse(404, 'not_found',
                format('There is no %s "%s".', rtrim(p_what, 's'), p_id));
        END IF;
    END IF;

    RETURN CASE p_what
        WHEN 'settings' THEN admin_settings_json()
        WHEN 'zones' THEN admin_zones_json()
        WHEN 'rates' THEN admin_zones_json()
        ELSE admin_tax_json() END;
END $$;


-- A field of an admin body that is not right: 400 naming it.
CREATE OR REPLACE FUNCTION admin_bad_field(p_field text, p_message text)
RETURNS void LANGUAGE sql AS $$
    SELECT darkroom_refuse(400, 'invalid_' || p_field,
                           format('"%s": %s', p_field, p_message));
$$;


-- A whole number of minor units in [0, 99999999] from a body, or NULL
-- when absent; anything else is refused naming the field.
CREATE OR REPLACE FUNCTION admin_minor_units(p jsonb, p_field text)
RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(jsonb_typeof(p->p_field), 'null') = 'null' THEN
        RETURN NULL;
    END IF;
    IF jsonb_typeof(p->p_field) <> 'number'
       OR (p->>p_field) !~ '^[0-9]{1,8}$'
    THEN
        PERFORM admin_bad_field(p_field, 'a whole number of minor units '
                                '(pence, cents) from 0 to 99999999.');
    END IF;
    RETURN (p->>p_field)::bigint;
END $$;


CREATE OR REPLACE FUNCTION admin_settings_json() RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT json_build_object('tax_inclusive', s.tax_inclusive,
        'country', s.country, 'invoice_prefix', s.invoice_prefix,
        'next_invoice', s.next_invoice, 'min_ppi', s.min_ppi,
        'updated_at', s.updated_at)::text
      FROM shop_settings s;
$$;


CREATE OR REPLACE FUNCTION admin_settings_update(p jsonb) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF p ? 'tax_inclusive' AND jsonb_typeof(p->'tax_inclusive') <> 'boolean'
    THEN
        PERFORM admin_bad_field('tax_inclusive', 'true or false.');
    END IF;
    IF p ? 'country' AND coalesce(p->>'country', '') !~ '^[A-Z]{2}$' THEN
        PERFORM admin_bad_field('country',
            'a two-letter ISO 3166 code in capitals, such as "GB".');
    END IF;
    IF p ? 'invoice_prefix'
       AND (jsonb_typeof(p->'invoice_prefix') <> 'string'
            OR p->>'invoice_prefix' !~ '^[A-Za-z0-9/_-]{0,16}$')
    THEN
        PERFORM admin_bad_field('invoice_prefix',
            'up to 16 letters, digits, "-", "_" or "/".');
    END IF;
    IF p ? 'min_ppi' AND (jsonb_typeof(p->'min_ppi') <> 'number'
                          OR p->>'min_ppi' !~ '^[0-9]{1,4}$'
                          OR (p->>'min_ppi')::integer NOT BETWEEN 1 AND 2400)
    THEN
        PERFORM admin_bad_field('min_ppi',
            'the minimum resolution of prints, 1 to 2400 pixels per inch.');
    END IF;
    IF EXISTS (SELECT 1 FROM jsonb_object_keys(p) k
                WHERE k NOT IN ('tax_inclusive', 'country',
                                'invoice_prefix', 'min_ppi'))
    THEN
        PERFORM admin_bad_field((SELECT k FROM jsonb_object_keys(p) k
                                  WHERE k NOT IN ('tax_inclusive', 'country',
                                                  'invoice_prefix', 'min_ppi')
                                  LIMIT 1),
            'not a setting (tax_inclusive, country, invoice_prefix, '
            'min_ppi).');
    END IF;

    UPDATE shop_settings
       SET tax_inclusive = coalesce((p->>'tax_inclusive')::boolean,
                                    tax_inclusive),
           country = coalesce(p->>'country', country),
           invoice_prefix = coalesce(p->>'invoice_prefix', invoice_prefix),
           min_ppi = coalesce((p->>'min_ppi')::integer, min_ppi),
           updated_at = now();
END $$;


CREATE OR REPLACE FUNCTION admin_zones_json() RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT json_build_object('zones', coalesce(json_agg(json_build_object(
        'id', z.id, 'name', z.name,
        'countries', (SELECT coalesce(json_agg(c.country ORDER BY c.country),
                                      '[]')
                        FROM shipping_zone_countries c
                       WHERE c.zone_id = z.id),
        'rates', (SELECT coalesce(json_agg(json_build_object(
                      'id', r.id, 'currency', r.currency,
                      'method', r.method, 'product', r.product_id,
                      'name', r.name, 'amount', r.amount,
                      'per_item', r.per_item, 'free_over', r.free_over)
                      ORDER BY r.currency, r.product_id NULLS FIRST,
                               r.amount, r.id), '[]')
                    FROM shipping_rates r WHERE r.zone_id = z.id))
        ORDER BY z.id), '[]'))::text
      FROM shipping_zones z;
$$;


-- Creates or updates a zone; "countries" replaces its countries.  A
-- country already in another zone is refused (409): move it by taking it
-- out of that zone first.
CREATE OR REPLACE FUNCTION admin_zone_upsert(p jsonb) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    v_id  text := admin_slug(p->>'id', 'zone');
    v_c   text;
    v_z   text;
BEGIN
    IF p ? 'name' AND (jsonb_typeof(p->'name') <> 'string'
                       OR length(p->>'name') NOT BETWEEN 1 AND 200)
    THEN
        PERFORM admin_bad_field('name', '1 to 200 characters.');
    END IF;

    IF p ? 'countries' AND jsonb_typeof(p->'countries') <> 'array' THEN
        PERFORM admin_bad_field('countries',
            'a list of two-letter ISO 3166 codes, such as ["GB"].');
    END IF;

    INSERT INTO shipping_zones AS x (id, name)
    VALUES (v_id, coalesce(p->>'name', v_id))
    ON CONFLICT (id) DO UPDATE
       SET name = coalesce(p->>'name', x.name), updated_at = now();

    IF p ? 'countries' THEN
        DELETE FROM shipping_zone_countries WHERE zone_id = v_id;

        FOR v_c IN SELECT e FROM jsonb_array_elements(p->'countries') e
        LOOP
            IF v_c !~ '^"[A-Z]{2}"$' THEN
                PERFORM admin_bad_field('countries', format(
                    '%s is not a two-letter ISO 3166 code in capitals.',
                    v_c));
            END IF;
            v_c := v_c::jsonb #>> '{}';

            SELECT zone_id INTO v_z FROM shipping_zone_countries
             WHERE country = v_c;
            IF FOUND AND v_z <> v_id THEN
                PERFORM darkroom_refuse(409, 'country_in_zone', format(
                    '"countries": %s is in the zone "%s" already.',
                    v_c, v_z));
            END IF;

            INSERT INTO shipping_zone_countries (country, zone_id)
            VALUES (v_c, v_id) ON CONFLICT DO NOTHING;
        END LOOP;
    END IF;

    RETURN admin_zones_json();
END $$;


-- Creates or updates the rate of a zone for a currency, a method and a
-- product (none: the zone's general rate).
CREATE OR REPLACE FUNCTION admin_rate_upsert(p jsonb) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    v_amount    bigint := admin_minor_units(p, 'amount');
    v_per_item  bigint := admin_minor_units(p, 'per_item');
    v_free      bigint := admin_minor_units(p, 'free_over');
BEGIN
    IF NOT EXISTS (SELECT 1 FROM shipping_zones WHERE id = p->>'zone') THEN
        PERFORM admin_bad_field('zone', format('there is no zone "%s".',
                                               p->>'zone'));
    END IF;
    IF coalesce(p->>'currency', '') !~ '^[A-Z]{3}$' THEN
        PERFORM admin_bad_field('currency',
            'a three-letter ISO 4217 code in capitals, such as "GBP".');
    END IF;
    IF coalesce(p->>'method', '') NOT IN ('budget', 'standard', 'express',
                                          'overnight')
    THEN
        PERFORM admin_bad_field('method',
            'budget, standard, express or overnight.');
    END IF;
    IF coalesce(jsonb_typeof(p->'product'), 'null') <> 'null'
       AND NOT EXISTS (SELECT 1 FROM products WHERE id = p->>'product')
    THEN
        PERFORM admin_bad_field('product', format('there is no product "%s".',
                                                  p->>'product'));
    END IF;
    IF jsonb_typeof(p->'name') IS DISTINCT FROM 'string'
       OR length(p->>'name') NOT BETWEEN 1 AND 200
    THEN
        PERFORM admin_bad_field('name', 'the name the buyer sees, 1 to 200 '
                                'characters ("Royal Mail Tracked 48").');
    END IF;
    IF v_amount IS NULL AND v_per_item IS NULL THEN
        PERFORM admin_bad_field('amount', 'a rate needs an amount (per '
                                'order) or a per_item amount, or both.');
    END IF;

    INSERT INTO shipping_rates AS x (zone_id, currency, method, product_id,
                                     name, amount, per_item, free_over)
    VALUES (p->>'zone', p->>'currency', p->>'method', p->>'product',
            p->>'name', coalesce(v_amount, 0), coalesce(v_per_item, 0),
            v_free)
    ON CONFLICT (zone_id, currency, method, product_id) DO UPDATE
       SET name = excluded.name, amount = excluded.amount,
           per_item = excluded.per_item, free_over = excluded.free_over,
           updated_at = now();

    RETURN admin_zones_json();
END $$;


CREATE OR REPLACE FUNCTION admin_tax_json() RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT json_build_object(
        'tax_inclusive', (SELECT tax_inclusive FROM shop_settings),
        'rates', coalesce(json_agg(json_build_object(
                     'country', t.country, 'kind', t.kind, 'rate', t.rate,
                     'label', t.label) ORDER BY t.country, t.kind), '[]'))::text
      FROM tax_rates t;
$$;


-- Sets a country's tax rate for one kind ("print", "digital"), or for
-- both when "kind" is left out.
CREATE OR REPLACE FUNCTION admin_tax_upsert(p jsonb) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(p->>'country', '') !~ '^[A-Z]{2}$' THEN
        PERFORM admin_bad_field('country',
            'a two-letter ISO 3166 code in capitals, such as "GB".');
    END IF;
    IF p ? 'kind' AND coalesce(p->>'kind', '') NOT IN ('print', 'digital')
    THEN
        PERFORM admin_bad_field('kind', '"print" or "digital" (leave it '
                                'out for both).');
    END IF;
    IF jsonb_typeof(p->'rate') IS DISTINCT FROM 'number'
       OR (p->>'rate')::numeric < 0 OR (p->>'rate')::numeric >= 100
       OR (p->>'rate')::numeric <> round((p->>'rate')::numeric, 4)
    THEN
        PERFORM admin_bad_field('rate', 'a percentage from 0 to under 100, '
                                'such as 20 or 8.875.');
    END IF;
    IF p ? 'label' AND (jsonb_typeof(p->'label') <> 'string'
                        OR length(p->>'label') NOT BETWEEN 1 AND 40)
    THEN
        PERFORM admin_bad_field('label', '1 to 40 characters, such as '
                                '"VAT" or "Sales tax".');
    END IF;

    INSERT INTO tax_rates AS x (country, kind, rate, label)
    SELECT p->>'country', k, (p->>'rate')::numeric,
           coalesce(p->>'label', 'VAT')
      FROM unnest(CASE WHEN p ? 'kind' THEN ARRAY[p->>'kind']
                       ELSE ARRAY['print', 'digital'] END) k
    ON CONFLICT (country, kind) DO UPDATE
       SET rate = excluded.rate,
           label = coalesce(p->>'label', x.label), updated_at = now();
END $$;


-- Cancel with refund, before Stripe is asked: a row (the refund of all
-- that is left, as admin_refund_check names it) when the body asks
-- {"to": "cancelled", "refund": true} of an order under review that holds
-- money not lost to a dispute and that no lab has; no row when the
-- action is not a refund (admin_order_resolve then decides, and refuses
-- what is wrong).  Writes nothing.
CREATE OR REPLACE FUNCTION admin_resolve_refund_check(p_ref text, p_body text)
RETURNS TABLE (order_id bigint, payment_intent text, amount bigint,
               idempotency_key text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    o       orders%ROWTYPE;
    v_body  jsonb := admin_review_body(p_body);
BEGIN
    IF v_body->>'to' IS DISTINCT FROM 'cancelled'
       OR v_body->'refund' IS DISTINCT FROM 'true'::jsonb
    THEN
        RETURN;
    END IF;

    SELECT * INTO o FROM orders WHERE ref = p_ref;
    IF NOT FOUND OR o.status <> 'needs_review'
       OR coalesce(o.paid_amount, 0) <= o.amount_refunded
       OR o.stripe_payment_intent IS NULL
       OR EXISTS (SELECT 1 FROM order_events e
                   WHERE e.order_id = o.id AND e.detail ? 'dispute')
    THEN
        RETURN;
    END IF;

    IF EXISTS (SELECT 1 FROM lab_orders l WHERE l.order_id = o.id
                  AND l.status NOT IN ('cancelled', 'rerouted'))
    THEN
        PERFORM darkroom_refuse(409, 'lab_orders_live', format(
            'A lab has it (%s): cancel its lab orders first.',
            coalesce(order_lab_progress(o.id), 'not started')));
    END IF;

    RETURN QUERY SELECT * FROM admin_refund_check(p_ref, NULL);
END $$;


-- Stripe accepted the refund of a cancel with refund: the order's history
-- says who asked, with the note and the refund; the order stays in review
-- until Stripe reports the refund (charge.refunded: refunded).
CREATE OR REPLACE FUNCTION admin_resolve_refund_requested(p_ref text,
    p_body text, p_refund text, p_amount bigint, p_actor text)
RETURNS void LANGUAGE sql AS $$
    INSERT INTO order_events (order_id, from_status, to_status, cause,
                              detail)
    SELECT o.id, o.status, o.status, 'admin', jsonb_build_object(
               'action', 'cancel_refund', 'refund', p_refund,
               'amount', p_amount, 'note', admin_review_body(p_body)->>'note',
               'review_reason', o.review_reason, 'actor', p_actor)
      FROM orders o WHERE o.ref = p_ref;
$$;


-- POST orders/<ref>/note {"note"}: free text in the order's history, in
-- any state, changing nothing else.
CREATE OR REPLACE FUNCTION admin_order_note(p_ref text, p_body text,
                                            p_actor text DEFAULT 'admin')
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_body  jsonb := admin_review_body(p_body);
    v_id    bigint;
    v_st    text;
BEGIN
    IF coalesce(btrim(v_body->>'note'), '') = '' THEN
        PERFORM darkroom_refuse(400, 'invalid_note',
            '"note" is text of at most 2000 characters.');
    END IF;

    SELECT id, status INTO v_id, v_st FROM orders WHERE ref = p_ref;
    IF NOT FOUND THEN
        PERFORM darkroom_refuse(404, 'not_found', 'There is no such order.');
    END IF;

    INSERT INTO order_events (order_id, from_status, to_status, cause,
                              detail)
    VALUES (v_id, v_st, v_st, 'admin', jsonb_build_object(
                'action', 'note', 'note', v_body->>'note',
                'actor', p_actor));

    RETURN admin_order_json(p_ref);
END $$;


-- The money invariants (issue 13), over every order of this database:
-- one row per order and rule broken, none when all hold.  The suite runs
-- it on each test's database before dropping it (t/lib/Darkroom/Test.pm)
-- and t/999_money_invariant.t fails on any row.
--   lines      each line's amount is quantity x unit price
--   subtotal   sum of the lines = subtotal
--   discount   sum of the lines' discounts = discount_amount
--   tax        sum of the lines' tax + shipping tax = tax_amount
--   total      subtotal - discount + shipping (+ tax when exclusive)
--   stripe     the total Stripe reported for the order's session = total
--   paid       an order paid and fulfilled without a review was paid its
--              total, in its currency
--   invoice    invoice numbers only on paid orders, each once, with its
--              sequence; the sequence without gaps or repeats
CREATE OR REPLACE FUNCTION money_invariant_violations()
RETURNS TABLE (order_ref text, rule text, detail text)
LANGUAGE sql STABLE AS $$
    WITH li AS (
        SELECT i.order_id, count(*) AS n, sum(i.amount) AS amount,
               sum(i.discount) AS discount, sum(i.tax) AS tax,
               count(*) FILTER (WHERE i.amount <> i.quantity * i.unit_amount)
                   AS bad_lines
          FROM order_items i GROUP BY i.order_id
    ), o AS (
        SELECT o.*, coalesce(li.n, 0) AS n_lines,
               coalesce(li.amount, 0) AS lines_amount,
               coalesce(li.discount, 0) AS lines_discount,
               coalesce(li.tax, 0) AS lines_tax,
               coalesce(li.bad_lines, 0) AS bad_lines,
               EXISTS (SELECT 1 FROM order_events e
                        WHERE e.order_id = o.id
                          AND e.to_status = 'needs_review') AS reviewed
          FROM orders o LEFT JOIN li ON li.order_id = o.id
    ), seqs AS (
        SELECT count(invoice_seq) AS n, count(DISTINCT invoice_seq) AS d,
               min(invoice_seq) AS lo, max(invoice_seq) AS hi
          FROM orders
    )
    SELECT o.ref, 'lines', format('%s line(s) not quantity x unit price',
                                  o.bad_lines)
      FROM o WHERE o.bad_lines > 0
    UNION ALL
    SELECT o.ref, 'subtotal', format('lines %s, subtotal %s',
                                     o.lines_amount, o.subtotal)
      FROM o WHERE o.lines_amount <> o.subtotal
    UNION ALL
    SELECT o.ref, 'discount', format('lines %s, discount_amount %s',
                                     o.lines_discount, o.discount_amount)
      FROM o WHERE o.lines_discount <> o.discount_amount
    UNION ALL
    SELECT o.ref, 'tax', format('lines %s + shipping %s, tax_amount %s',
                                o.lines_tax, o.shipping_tax, o.tax_amount)
      FROM o WHERE o.lines_tax + o.shipping_tax <> o.tax_amount
    UNION ALL
    SELECT o.ref, 'total', format('%s - %s + %s + %s (%s) is not total %s',
               o.subtotal, o.discount_amount, o.shipping_amount, o.tax_amount,
               CASE WHEN o.tax_inclusive THEN 'included' ELSE 'added' END,
               o.total)
      FROM o
     WHERE o.total <> o.subtotal - o.discount_amount + o.shipping_amount
                      + CASE WHEN o.tax_inclusive THEN 0 ELSE o.tax_amount END
    UNION ALL
    SELECT o.ref, 'stripe', format('Stripe''s session total %s, order %s',
                                   coalesce(o.stripe_amount::text, 'none'),
                                   o.total)
      FROM o
     WHERE (o.checkout_url IS NOT NULL OR o.stripe_amount IS NOT NULL)
       AND o.stripe_amount IS DISTINCT FROM o.total
    UNION ALL
    SELECT o.ref, 'paid', format('%s without review: paid %s %s, total %s %s',
               o.status, coalesce(o.paid_amount::text, 'nothing'),
               coalesce(o.paid_currency, ''), o.total, o.currency)
      FROM o
     WHERE o.status IN ('paid', 'in_production', 'shipped', 'delivered')
       AND NOT o.reviewed
       AND (o.paid_amount IS DISTINCT FROM o.total
            OR o.paid_currency IS DISTINCT FROM o.currency)
    UNION ALL
    SELECT o.ref, 'invoice', format('invoice %s on an order never paid (%s)',
                                    coalesce(o.invoice_number, '(seq only)'),
                                    o.status)
      FROM o
     WHERE (o.invoice_number IS NOT NULL OR o.invoice_seq IS NOT NULL)
       AND o.paid_at IS NULL AND o.paid_amount IS NULL
    UNION ALL
    SELECT o.ref, 'invoice', 'invoice number and sequence not both set'
      FROM o WHERE (o.invoice_number IS NULL) <> (o.invoice_seq IS NULL)
    UNION ALL
    SELECT NULL, 'invoice', format(
               'sequence %s..%s: %s numbers, %s distinct (gaps or repeats)',
               s.lo, s.hi, s.n, s.d)
      FROM seqs s
     WHERE s.n > 0 AND (s.d <> s.n OR s.hi - s.lo + 1 <> s.n)
$$;


-- An order written elsewhere (a booking's deposit or balance,
-- bookings.sql) checked out by ngx_http_darkroom_order_checkout: what its
-- Checkout Session says, its lines as the shop's cart has them.
-- return_path: the page Stripe sends the payer back to, relative to the
-- shop's success URL (a booking's page, bookings_return_path()); NULL:
-- the shop's own success and cancel URLs.  No row: no such order waiting
-- for payment.
CREATE OR REPLACE FUNCTION order_checkout_info(p_order bigint,
    OUT order_id bigint, OUT order_ref text, OUT email text,
    OUT currency text, OUT total bigint, OUT expires_epoch bigint,
    OUT lines jsonb, OUT checkout_url text, OUT return_path text)
RETURNS SETOF record LANGUAGE sql STABLE AS $$
    SELECT o.id, o.ref, o.email, lower(o.currency), o.total,
           extract(epoch FROM o.expires_at)::bigint,
           (SELECT jsonb_agg(jsonb_build_object('title', i.title,
                       'product_name', i.product_name,
                       'unit_amount', i.unit_amount,
                       'quantity', i.quantity) ORDER BY i.line)
              FROM order_items i WHERE i.order_id = o.id),
           o.checkout_url, bookings_return_path(o.id)
      FROM orders o
     WHERE o.id = p_order AND o.status = 'pending_payment';
$$;


-- What the stripe_refund job refunds: the order's payment.  No row: the
-- order has no payment to refund.
CREATE OR REPLACE FUNCTION stripe_refund_target(p_order bigint)
RETURNS TABLE (payment_intent text) LANGUAGE sql STABLE AS $$
    SELECT o.stripe_payment_intent FROM orders o
     WHERE o.id = p_order AND o.stripe_payment_intent IS NOT NULL;
$$;


-- Stripe took a refund the stripe_refund job asked for: in the order's
-- history and its booking's (the money itself is charge.refunded's)
CREATE OR REPLACE FUNCTION stripe_refund_sent(p_order bigint,
    p_refund text, p_amount bigint, p_key text, p_cause text)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO order_events (order_id, from_status, to_status, cause,
                              detail)
    SELECT o.id, o.status, o.status, p_cause,
           jsonb_build_object('refund', p_refund, 'amount', p_amount,
                              'idempotency_key', p_key)
      FROM orders o WHERE o.id = p_order;
    PERFORM bookings_refund_sent(p_order, p_refund, p_amount, p_key,
                                 p_cause);
END $$;


-- darkroom_public_cache: every table catalogue_json() reads bumps the
-- catalogue's version (public_version_bump, core.sql) in the transaction
-- of the change; a payment's next_invoice fires nothing.
DROP TRIGGER IF EXISTS photos_public ON photos;
CREATE TRIGGER photos_public AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON photos FOR EACH STATEMENT
    EXECUTE FUNCTION public_version_bump('catalogue');
DROP TRIGGER IF EXISTS products_public ON products;
CREATE TRIGGER products_public AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON products FOR EACH STATEMENT
    EXECUTE FUNCTION public_version_bump('catalogue');
DROP TRIGGER IF EXISTS product_prices_public ON product_prices;
CREATE TRIGGER product_prices_public
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON product_prices FOR EACH STATEMENT
    EXECUTE FUNCTION public_version_bump('catalogue');
DROP TRIGGER IF EXISTS photo_products_public ON photo_products;
CREATE TRIGGER photo_products_public
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON photo_products FOR EACH STATEMENT
    EXECUTE FUNCTION public_version_bump('catalogue');
DROP TRIGGER IF EXISTS shop_settings_public ON shop_settings;
CREATE TRIGGER shop_settings_public
    AFTER INSERT OR UPDATE OF min_ppi OR DELETE OR TRUNCATE
    ON shop_settings FOR EACH STATEMENT
    EXECUTE FUNCTION public_version_bump('catalogue');
