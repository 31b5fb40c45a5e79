-- Gallery checkout (issue 14): a gallery's cart lines, and its price
-- sheets.  A gallery sells the products of its price sheet, at the sheet's
-- own price in the gallery's currency, else at the catalogue's; a line is
-- a gallery photo ({"photo": <gallery photo id>, "product", "quantity",
-- "sizing"}) or the extra photos of a selection ({"selection": <list id>},
-- gallery_selection_line in proofing.sql).
--
-- Tables: price_sheets, price_sheet_items, price_sheet_prices, galleries,
-- gallery_photos, products, product_prices, orders.  Calls print_check
-- (prints.sql), gallery_selection_line (proofing.sql), darkroom_refuse
-- (core.sql), admin_slug and admin_bad_field (shop.sql); cart_price and
-- checkout_create (shop.sql) call gallery_cart_lines.


-- The price of product p_product on sheet p_sheet in p_currency: the
-- sheet's own, else the catalogue's; NULL: none in that currency.
CREATE OR REPLACE FUNCTION price_sheet_price(p_sheet text, p_product text,
                                             p_currency text)
RETURNS bigint LANGUAGE sql STABLE AS $$
    SELECT coalesce(
        (SELECT amount FROM price_sheet_prices
          WHERE sheet_id = p_sheet AND product_id = p_product
            AND currency = p_currency),
        (SELECT amount FROM product_prices
          WHERE product_id = p_product AND currency = p_currency));
$$;


-- One line of a gallery cart: a photo of the gallery as a product of its
-- sheet.  The item's shape is checked by darkroom (photo an integer,
-- product a slug, quantity 1 to 99, sizing absent, "crop" or "fit").
CREATE OR REPLACE FUNCTION gallery_photo_line(g galleries, p_item jsonb,
                                              p_currency text,
                                              p_line integer)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_photo    gallery_photos%ROWTYPE;
    v_product  products%ROWTYPE;
    v_amount   bigint;
    v_qty      integer := (p_item->>'quantity')::integer;
BEGIN
    IF g.price_sheet_id IS NULL THEN
        PERFORM darkroom_refuse(400, 'no_price_sheet',
            'This gallery sells no prints or downloads.');
    END IF;

    SELECT * INTO v_photo FROM gallery_photos
     WHERE id = (p_item->>'photo')::bigint AND gallery_id = g.id;
    IF NOT FOUND THEN
        PERFORM darkroom_refuse(400, 'unknown_photo',
            format('Item %s: there is no photo %s in this gallery.',
                   p_line, p_item->>'photo'));
    END IF;

    SELECT p.* INTO v_product
      FROM products p
      JOIN price_sheet_items s ON s.product_id = p.id
     WHERE s.sheet_id = g.price_sheet_id AND p.id = p_item->>'product'
       AND p.active;
    IF NOT FOUND THEN
        PERFORM darkroom_refuse(400, 'not_offered',
            format('Item %s: "%s" is not sold in this gallery.',
                   p_line, p_item->>'product'));
    END IF;

    v_amount := price_sheet_price(g.price_sheet_id, v_product.id,
                                  p_currency);
    IF v_amount IS NULL THEN
        PERFORM darkroom_refuse(400, 'no_price',
            format('Item %s: "%s" has no price in %s.',
                   p_line, v_product.name, p_currency));
    END IF;

    RETURN jsonb_build_object(
        'line', p_line, 'photo', 'gallery:' || v_photo.id,
        'product', v_product.id, 'kind', v_product.kind,
        'title', v_photo.name, 'product_name', v_product.name,
        'quantity', v_qty, 'unit_amount', v_amount,
        'amount', v_amount * v_qty, 'discount', 0, 'tax', 0,
        'tax_rate', 0, 'gallery_photo', v_photo.id,
        'sizing', print_check(v_photo.width, v_photo.height, v_product.id,
                              p_item->>'sizing', p_line, v_photo.name));
END $$;


-- The lines of a cart bought from gallery p_gallery, priced in
-- p_currency (cart_price calls it for a gallery cart).
CREATE OR REPLACE FUNCTION gallery_cart_lines(p_gallery bigint,
                                              p_items jsonb,
                                              p_currency text)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
    g        galleries%ROWTYPE;
    v_lines  jsonb := '[]';
    v_line   integer := 0;
    v_item   jsonb;
BEGIN
    SELECT * INTO g FROM galleries WHERE id = p_gallery;
    IF NOT FOUND THEN
        PERFORM darkroom_refuse(404, 'not_found',
                                'There is no such gallery.');
    END IF;

    IF g.currency IS NOT NULL AND g.currency <> p_currency THEN
        PERFORM darkroom_refuse(400, 'invalid_currency',
            format('This gallery sells in %s.', g.currency));
    END IF;

    FOR v_item IN SELECT e.value FROM jsonb_array_elements(p_items) e
    LOOP
        v_line := v_line + 1;

        IF jsonb_typeof(v_item->'selection') = 'number' THEN
            v_lines := v_lines || jsonb_build_array(gallery_selection_line(
                           p_gallery, v_item, p_currency, v_line));

        ELSIF jsonb_typeof(v_item->'photo') = 'number' THEN
            v_lines := v_lines || jsonb_build_array(gallery_photo_line(
                           g, v_item, p_currency, v_line));

        ELSE
            PERFORM darkroom_refuse(400, 'invalid_items',
                format('Item %s needs a "photo" or a "selection".', v_line));
        END IF;
    END LOOP;

    RETURN v_lines;
END $$;


-- The admin API of price sheets (darkroom_admin .../price-sheets).
CREATE OR REPLACE FUNCTION price_sheet_json(p_sheet text) RETURNS json
LANGUAGE sql STABLE AS $$
    SELECT json_build_object('id', s.id, 'name', s.name,
        'items', (SELECT coalesce(json_agg(json_build_object(
                      'product', i.product_id, 'position', i.position,
                      'prices', (SELECT coalesce(json_object_agg(pp.currency,
                                                     pp.amount
                                                     ORDER BY pp.currency),
                                                 '{}')
                                   FROM price_sheet_prices pp
                                  WHERE pp.sheet_id = i.sheet_id
                                    AND pp.product_id = i.product_id))
                      ORDER BY i.position, i.product_id), '[]')
                    FROM price_sheet_items i WHERE i.sheet_id = s.id),
        'galleries', (SELECT coalesce(json_agg(g.slug ORDER BY g.slug), '[]')
                        FROM galleries g WHERE g.price_sheet_id = s.id),
        'created_at', s.created_at, 'updated_at', s.updated_at)
      FROM price_sheets s WHERE s.id = p_sheet;
$$;


-- One item of a PUT body: {"product", "position", "prices": {"GBP": n}}.
CREATE OR REPLACE FUNCTION price_sheet_item(p_sheet text, p_item jsonb,
                                            p_n integer)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_pos   integer;
    v_cur   text;
    v_amt   jsonb;
BEGIN
    IF jsonb_typeof(p_item) IS DISTINCT FROM 'object'
       OR jsonb_typeof(p_item->'product') IS DISTINCT FROM 'string'
    THEN
        PERFORM admin_bad_field('items',
            format('Item %s needs a "product".', p_n));
    END IF;

    PERFORM 1 FROM products WHERE id = p_item->>'product';
    IF NOT FOUND THEN
        PERFORM darkroom_refuse(400, 'unknown_product',
            format('Item %s: there is no product "%s".', p_n,
                   p_item->>'product'));
    END IF;

    IF p_item ? 'position' AND NOT (CASE
           WHEN jsonb_typeof(p_item->'position') = 'number'
           THEN (p_item->>'position')::numeric BETWEEN -1000000 AND 1000000
                AND (p_item->>'position')::numeric
                    = trunc((p_item->>'position')::numeric)
           ELSE false END)
    THEN
        PERFORM admin_bad_field('items',
            format('Item %s: the position must be a whole number.', p_n));
    END IF;

    v_pos := coalesce((p_item->>'position')::integer, p_n);

    IF p_item ? 'prices' AND jsonb_typeof(p_item->'prices') NOT IN
                                 ('object', 'null')
    THEN
        PERFORM admin_bad_field('items',
            format('Item %s: "prices" is an object such as {"GBP": 2500}.',
                   p_n));
    END IF;

    INSERT INTO price_sheet_items (sheet_id, product_id, position)
    VALUES (p_sheet, p_item->>'product', v_pos);

    FOR v_cur, v_amt IN
        SELECT e.key, e.value
          FROM jsonb_each(coalesce(nullif(p_item->'prices', 'null'), '{}')) e
    LOOP
        IF v_cur !~ '^[A-Z]{3}$' OR NOT (CASE
               WHEN jsonb_typeof(v_amt) = 'number'
               THEN v_amt::text::numeric = trunc(v_amt::text::numeric)
                    AND v_amt::text::numeric BETWEEN 1 AND 99999999
               ELSE false END)
        THEN
            PERFORM admin_bad_field('items',
                format('Item %s: a price is a currency ("GBP") and a whole '
                       'number of minor units from 1 to 99999999.', p_n));
        END IF;

        INSERT INTO price_sheet_prices (sheet_id, product_id, currency,
                                        amount)
        VALUES (p_sheet, p_item->>'product', v_cur, v_amt::bigint);
    END LOOP;
END $$;


-- PUT: the sheet as given, its items replaced whole.
CREATE OR REPLACE FUNCTION price_sheet_put(p_sheet text, p jsonb)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_item  jsonb;
    v_n     integer := 0;
BEGIN
    IF jsonb_typeof(p) IS DISTINCT FROM 'object' THEN
        PERFORM darkroom_refuse(400, 'invalid_json',
                                'The body must be a JSON object.');
    END IF;

    PERFORM admin_slug(p_sheet, 'price_sheet');

    IF jsonb_typeof(p->'name') IS DISTINCT FROM 'string'
       OR length(p->>'name') NOT BETWEEN 1 AND 200
    THEN
        PERFORM admin_bad_field('name',
            'A price sheet needs a name of 1 to 200 characters.');
    END IF;

    IF jsonb_typeof(p->'items') IS DISTINCT FROM 'array'
       OR jsonb_array_length(p->'items') > 500
    THEN
        PERFORM admin_bad_field('items',
            'items is a list of {"product", "position", "prices"}.');
    END IF;

    INSERT INTO price_sheets AS s (id, name) VALUES (p_sheet, p->>'name')
    ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name,
                                   updated_at = now();

    DELETE FROM price_sheet_items WHERE sheet_id = p_sheet;

    FOR v_item IN SELECT e.value FROM jsonb_array_elements(p->'items') e
    LOOP
        v_n := v_n + 1;

        IF EXISTS (SELECT 1 FROM price_sheet_items
                    WHERE sheet_id = p_sheet
                      AND product_id = v_item->>'product')
        THEN
            PERFORM admin_bad_field('items',
                format('Item %s: "%s" is on the sheet twice.', v_n,
                       v_item->>'product'));
        END IF;

        PERFORM price_sheet_item(p_sheet, v_item, v_n);
    END LOOP;

    RETURN json_build_object('price_sheet', price_sheet_json(p_sheet))::text;
END $$;


-- GET, PUT, DELETE of one sheet (p_sheet) or GET of all (p_sheet NULL).
CREATE OR REPLACE FUNCTION admin_price_sheet(p_verb text, p_sheet text,
                                             p_body text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_body  jsonb;
BEGIN
    IF p_sheet IS NULL THEN
        RETURN json_build_object('price_sheets',
            (SELECT coalesce(json_agg(price_sheet_json(s.id) ORDER BY s.id),
                             '[]')
               FROM price_sheets s))::text;
    END IF;

    IF p_verb = 'PUT' THEN
        BEGIN
            v_body := p_body::jsonb;
        EXCEPTION WHEN invalid_text_representation THEN
            PERFORM darkroom_refuse(400, 'invalid_json',
                                    'The body must be a JSON object.');
        END;

        RETURN price_sheet_put(p_sheet, v_body);
    END IF;

    PERFORM 1 FROM price_sheets WHERE id = p_sheet;
    IF NOT FOUND THEN
        PERFORM darkroom_refuse(404, 'not_found',
            format('There is no price sheet "%s".', p_sheet));
    END IF;

    IF p_verb = 'DELETE' THEN
        -- galleries selling from it sell nothing (ON DELETE SET NULL)
        DELETE FROM price_sheets WHERE id = p_sheet;
        RETURN json_build_object('deleted', p_sheet)::text;
    END IF;

    RETURN json_build_object('price_sheet', price_sheet_json(p_sheet))::text;
END $$;


-- The gallery admin's view of a gallery's orders, newest first.
CREATE OR REPLACE FUNCTION gallery_admin_orders(p_gallery bigint)
RETURNS json LANGUAGE sql STABLE AS $$
    SELECT coalesce(json_agg(json_build_object(
               'ref', o.ref, 'status', o.status, 'total', o.total,
               'currency', o.currency, 'created_at', o.created_at)
               ORDER BY o.created_at DESC, o.id DESC), '[]')
      FROM orders o WHERE o.gallery_id = p_gallery;
$$;


-- A whole number in [1, p_max] or null from a gallery admin body: the
-- sale and proofing settings; anything else refused naming the field.
CREATE OR REPLACE FUNCTION gallery_admin_count(p jsonb, p_field text,
                                               p_max bigint)
RETURNS bigint LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF p->p_field IS NULL OR jsonb_typeof(p->p_field) = 'null' THEN
        RETURN NULL;
    END IF;

    IF NOT (CASE WHEN jsonb_typeof(p->p_field) = 'number'
                 THEN (p->>p_field)::numeric = trunc((p->>p_field)::numeric)
                      AND (p->>p_field)::numeric BETWEEN 1 AND p_max
                 ELSE false END)
    THEN
        PERFORM admin_bad_field(p_field,
            format('a whole number from 1 to %s, or null.', p_max));
    END IF;

    RETURN (p->>p_field)::bigint;
END $$;


-- The sale settings of a gallery admin body, checked: price_sheet (an id
-- or null), currency (ISO, upper case, or null: the shop's),
-- selection_limit, extra_photo_amount, visitor_download_limit.
CREATE OR REPLACE FUNCTION gallery_admin_sale_check(p jsonb)
RETURNS void LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF p ? 'price_sheet' AND jsonb_typeof(p->'price_sheet') <> 'null'
       AND NOT EXISTS (SELECT 1 FROM price_sheets
                        WHERE id = p->>'price_sheet'
                          AND jsonb_typeof(p->'price_sheet') = 'string')
    THEN
        PERFORM darkroom_refuse(400, 'unknown_price_sheet',
            format('There is no price sheet %s.', p->'price_sheet'));
    END IF;

    IF p ? 'currency' AND jsonb_typeof(p->'currency') <> 'null'
       AND (jsonb_typeof(p->'currency') <> 'string'
            OR p->>'currency' !~ '^[A-Z]{3}$')
    THEN
        PERFORM admin_bad_field('currency',
            'a three-letter ISO code in capitals ("GBP"), or null.');
    END IF;

    PERFORM gallery_admin_count(p, 'selection_limit', 100000);
    PERFORM gallery_admin_count(p, 'extra_photo_amount', 99999999);
    PERFORM gallery_admin_count(p, 'visitor_download_limit', 1000000);
END $$;


-- Writes the sale settings the body names (an absent key keeps the value).
CREATE OR REPLACE FUNCTION gallery_admin_sale_set(p_gallery bigint, p jsonb)
RETURNS galleries LANGUAGE plpgsql AS $$
DECLARE
    v  galleries%ROWTYPE;
BEGIN
    UPDATE galleries g SET
        price_sheet_id = CASE WHEN p ? 'price_sheet'
                              THEN p->>'price_sheet'
                              ELSE g.price_sheet_id END,
        currency = CASE WHEN p ? 'currency' THEN p->>'currency'
                        ELSE g.currency END,
        selection_limit = CASE WHEN p ? 'selection_limit'
            THEN gallery_admin_count(p, 'selection_limit', 100000)
            ELSE g.selection_limit END,
        extra_photo_amount = CASE WHEN p ? 'extra_photo_amount'
            THEN gallery_admin_count(p, 'extra_photo_amount', 99999999)
            ELSE g.extra_photo_amount END,
        visitor_download_limit = CASE WHEN p ? 'visitor_download_limit'
            THEN gallery_admin_count(p, 'visitor_download_limit', 1000000)
            ELSE g.visitor_download_limit END
     WHERE g.id = p_gallery
    RETURNING * INTO v;

    RETURN v;
END $$;
