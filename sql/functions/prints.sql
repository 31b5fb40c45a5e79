-- Print-file checks (issue 14): does a photo of width x height pixels make
-- a product's print size at the minimum resolution, and how is it fitted.
--
-- The check is orientation independent: the photo's long side is set
-- against the print's long side, the short against the short.  'fit'
-- shows the whole photo inside the print (white bars where the ratios
-- differ): the side that fills the print decides the resolution, so the
-- larger of the two ppi counts.  'crop' fills the print and cuts what
-- overhangs: the smaller of the two ppi counts, so crop is stricter.
-- Ratios within 1% of each other print either way: the line records no
-- sizing, and the check is the fit one.
--
-- Tables: products, shop_settings, price_sheets, price_sheet_items,
-- price_sheet_prices, product_prices, galleries, photos (admin).
-- Calls: darkroom_refuse (core), admin_bad_field (shop).  Called by the
-- shop's cart_lines (a shop photo's print, crop as the labs fill by
-- default) and the gallery checkout's lines (gallery_shop.sql), the
-- gallery listing (gallery_shop_json, gallery_photos_listing), the admin
-- product and photo upserts, the receipt (print_sizing_text).


-- the minimum resolution of product p_product: its own, else the shop's
CREATE OR REPLACE FUNCTION print_min_ppi(p_product text)
RETURNS integer LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT min_ppi FROM products WHERE id = p_product),
                    (SELECT min_ppi FROM shop_settings),
                    150);
$$;


-- a length in millimetres as centimetres, one decimal, '.0' trimmed:
-- 420 -> '42', 297 -> '29.7'; p_floor rounds down (a photo's largest size)
CREATE OR REPLACE FUNCTION print_cm(p_mm numeric, p_floor boolean)
RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT trim_scale(CASE WHEN p_floor THEN floor(p_mm) / 10
                           ELSE round(p_mm) / 10 END)::text;
$$;


-- Does a photo of p_width x p_height pixels make product p_product's
-- print at its minimum resolution, sized p_sizing ('crop' or 'fit'; ratios
-- within 1% of each other: either)?  True for a product of no print size
-- and a photo of unknown size.
CREATE OR REPLACE FUNCTION print_fits(p_width integer, p_height integer,
                                      p_product text, p_sizing text)
RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT coalesce((
        SELECT CASE WHEN abs((x.l / x.s) / (x.pl / x.ps) - 1) <= 0.01
                         OR p_sizing = 'fit'
                    THEN greatest(x.l * 25.4 / x.pl, x.s * 25.4 / x.ps)
                    ELSE least(x.l * 25.4 / x.pl, x.s * 25.4 / x.ps) END
               >= print_min_ppi(p_product)
          FROM (SELECT greatest(p_width, p_height)::numeric AS l,
                       least(p_width, p_height)::numeric AS s,
                       greatest(p.print_width_mm, p.print_height_mm) AS pl,
                       least(p.print_width_mm, p.print_height_mm) AS ps
                  FROM products p
                 WHERE p.id = p_product AND p.print_width_mm IS NOT NULL
                   AND p_width > 0 AND p_height > 0) x), true);
$$;


-- The sizing recorded on a line of product p_product for a photo of
-- p_width x p_height pixels: 'crop' or 'fit' where the ratios differ (the
-- client's p_sizing, 'crop' by default), NULL where they do not or the
-- product has no print size.  Refuses 409 photo_too_small (naming the
-- largest size the photo can be printed at) below the minimum resolution.
-- p_line numbers the cart line in the message, p_name names the photo
-- (the five-argument form below: "the photo").
CREATE OR REPLACE FUNCTION print_check(p_width integer, p_height integer,
                                       p_product text, p_sizing text,
                                       p_line integer, p_name text)
RETURNS text LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_p      products%ROWTYPE;
    v_sizing text := coalesce(p_sizing, 'crop');
    v_ppi    integer;
    v_pl     numeric;
    v_ps     numeric;
    v_l      numeric;
    v_s      numeric;
    v_a      numeric;
    v_b      numeric;
    v_same   boolean;
BEGIN
    IF v_sizing NOT IN ('crop', 'fit') THEN
        PERFORM darkroom_refuse(400, 'bad_sizing',
            format('Item %s: sizing must be "crop" or "fit".', p_line));
    END IF;
    SELECT * INTO v_p FROM products WHERE id = p_product;
    IF NOT FOUND OR v_p.print_width_mm IS NULL THEN
        RETURN NULL;
    END IF;
    v_pl := greatest(v_p.print_width_mm, v_p.print_height_mm);
    v_ps := least(v_p.print_width_mm, v_p.print_height_mm);
    IF p_width IS NULL OR p_height IS NULL
       OR p_width <= 0 OR p_height <= 0
    THEN
        RETURN v_sizing;                       -- unknown pixel size
    END IF;
    v_l := greatest(p_width, p_height);
    v_s := least(p_width, p_height);
    v_same := abs((v_l / v_s) / (v_pl / v_ps) - 1) <= 0.01;
    v_ppi := print_min_ppi(p_product);
    v_a := v_l * 25.4 / v_pl;                  -- ppi along the long side
    v_b := v_s * 25.4 / v_ps;                  -- and the short side
    IF NOT print_fits(p_width, p_height, p_product, v_sizing) THEN
        PERFORM darkroom_refuse(409, 'photo_too_small',
            format('Item %s: %s (%s x %s px) prints at most %s x %s cm'
                   || ' at %s ppi; "%s" is %s x %s cm.%s',
                   p_line,
                   CASE WHEN p_name IS NULL THEN 'the photo'
                        ELSE '"' || p_name || '"' END,
                   p_width, p_height,
                   print_cm(p_width * 25.4 / v_ppi, true),
                   print_cm(p_height * 25.4 / v_ppi, true),
                   v_ppi, v_p.name,
                   print_cm(v_p.print_width_mm, false),
                   print_cm(v_p.print_height_mm, false),
                   CASE WHEN v_same OR v_sizing = 'fit'
                             OR greatest(v_a, v_b) < v_ppi THEN ''
                        ELSE ' Choose fit to print the whole photo at'
                             || ' this size.' END));
    END IF;
    RETURN CASE WHEN v_same THEN NULL ELSE v_sizing END;
END $$;


CREATE OR REPLACE FUNCTION print_check(p_width integer, p_height integer,
                                       p_product text, p_sizing text,
                                       p_line integer)
RETURNS text LANGUAGE sql STABLE AS $$
    SELECT print_check(p_width, p_height, p_product, p_sizing, p_line,
                       NULL::text);
$$;


-- The products of price sheet p_sheet a photo of p_width x p_height
-- pixels can make (at least with 'fit'; products without a print size and
-- photos of unknown size always): a JSON array of product ids.
CREATE OR REPLACE FUNCTION print_offers(p_width integer, p_height integer,
                                        p_sheet text)
RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT coalesce(jsonb_agg(i.product_id ORDER BY i.position,
                              i.product_id), '[]')
      FROM price_sheet_items i
      JOIN products p ON p.id = i.product_id
     WHERE i.sheet_id = p_sheet
       AND p.active
       AND print_fits(p_width, p_height, p.id, 'fit');
$$;


-- What gallery p_gallery sells, for its listing: NULL without a price
-- sheet, else {"currency", "sheet", "products": [{"id", "name", "kind",
-- "unit_amount", "print_size": {"width_mm", "height_mm"} | null}]} in the
-- gallery's currency (else p_currency, the shop's): the sheet's own price,
-- else the catalogue's; a product with neither in that currency is left
-- out, as are inactive ones.
CREATE OR REPLACE FUNCTION gallery_shop_json(p_gallery bigint,
                                             p_currency text)
RETURNS jsonb LANGUAGE sql STABLE AS $$
    WITH g AS (
        SELECT g.price_sheet_id AS sheet,
               coalesce(g.currency::text, p_currency) AS currency
          FROM galleries g
         WHERE g.id = p_gallery AND g.price_sheet_id IS NOT NULL
    ), items AS (
        SELECT i.position, p.*,
               price_sheet_price(g.sheet, p.id, g.currency) AS amount
          FROM g
          JOIN price_sheet_items i ON i.sheet_id = g.sheet
          JOIN products p ON p.id = i.product_id AND p.active
    )
    SELECT jsonb_build_object(
               'currency', g.currency, 'sheet', g.sheet,
               'products', coalesce((
                   SELECT jsonb_agg(jsonb_build_object(
                              'id', i.id, 'name', i.name, 'kind', i.kind,
                              'unit_amount', i.amount,
                              'print_size', print_size_json(i.print_width_mm,
                                                            i.print_height_mm))
                              ORDER BY i.position, i.id)
                     FROM items i WHERE i.amount IS NOT NULL), '[]'))
      FROM g;
$$;


-- {"width_mm", "height_mm"} (whole millimetres as integers), or NULL
CREATE OR REPLACE FUNCTION print_size_json(p_width numeric, p_height numeric)
RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN p_width IS NOT NULL AND p_height IS NOT NULL
                THEN jsonb_build_object('width_mm', trim_scale(p_width),
                                        'height_mm', trim_scale(p_height))
           END;
$$;


-- The products of gallery p_gallery's sheet a photo of p_width x p_height
-- pixels can make and the gallery sells (priced in its currency, else
-- p_currency): print_offers() less the unpriced.  '[]' without a sheet.
CREATE OR REPLACE FUNCTION gallery_photo_products(p_gallery bigint,
                                                  p_currency text,
                                                  p_width integer,
                                                  p_height integer)
RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT coalesce(jsonb_agg(o.id ORDER BY o.n), '[]')
      FROM galleries g,
           jsonb_array_elements_text(print_offers(p_width, p_height,
                                                  g.price_sheet_id))
               WITH ORDINALITY AS o(id, n)
     WHERE g.id = p_gallery
       AND (EXISTS (SELECT 1 FROM price_sheet_prices sp
                     WHERE sp.sheet_id = g.price_sheet_id
                       AND sp.product_id = o.id
                       AND sp.currency = coalesce(g.currency::text,
                                                  p_currency))
            OR EXISTS (SELECT 1 FROM product_prices pp
                        WHERE pp.product_id = o.id
                          AND pp.currency = coalesce(g.currency::text,
                                                     p_currency)));
$$;


-- The gallery listing's rows (GET <slug>): gallery_photos_list() with each
-- photo's prints (gallery_photo_products()), worked out once per distinct
-- pixel size instead of once per photo: a gallery's hundreds of photos
-- come in a few sizes (issue 17: 500 photos in 40 sizes, from 130 to
-- 650 ms on a loaded machine to 10 ms).  In gallery_photos_list()'s order.
CREATE OR REPLACE FUNCTION gallery_photos_listing(p_gallery bigint,
                                                  p_currency text)
RETURNS TABLE (id bigint, name text, proof_path text, bytes bigint,
               favourite boolean, width integer, height integer,
               products jsonb)
LANGUAGE sql STABLE AS $$
    WITH l AS MATERIALIZED (
        SELECT * FROM gallery_photos_list(p_gallery) WITH ORDINALITY
    ), d AS MATERIALIZED (   -- else inlined: a call per photo again
        SELECT s.w, s.h,
               gallery_photo_products(p_gallery, p_currency, s.w, s.h) AS pr
          FROM (SELECT DISTINCT l.width AS w, l.height AS h FROM l) s
    )
    SELECT l.id, l.name, l.proof_path, l.bytes, l.favourite, l.width,
           l.height, d.pr
      FROM l JOIN d ON d.w IS NOT DISTINCT FROM l.width
                   AND d.h IS NOT DISTINCT FROM l.height
     ORDER BY l.ordinality;
$$;


-- The admin product API's "print_size" ({"width_mm", "height_mm"}, or null
-- for none) and "min_ppi" (1 to 2400, or null for the shop's) of product
-- row p_row from body p; absent, unchanged.  Refuses a bad value, and a
-- print size on a digital product.  Returns the row as it is now.
CREATE OR REPLACE FUNCTION admin_product_print(p_row products, p jsonb)
RETURNS products LANGUAGE plpgsql AS $$
DECLARE
    v_w   numeric := p_row.print_width_mm;
    v_h   numeric := p_row.print_height_mm;
    v_ppi integer := p_row.min_ppi;
    v_row products%ROWTYPE;
BEGIN
    IF p ? 'print_size' THEN
        IF jsonb_typeof(p->'print_size') = 'null' THEN
            v_w := NULL;
            v_h := NULL;
        ELSIF jsonb_typeof(p->'print_size') <> 'object'
              OR jsonb_typeof(p->'print_size'->'width_mm')
                 IS DISTINCT FROM 'number'
              OR jsonb_typeof(p->'print_size'->'height_mm')
                 IS DISTINCT FROM 'number'
              OR (p->'print_size'->>'width_mm')::numeric
                 NOT BETWEEN 1 AND 99999
              OR (p->'print_size'->>'height_mm')::numeric
                 NOT BETWEEN 1 AND 99999
              OR (SELECT count(*) FROM jsonb_object_keys(p->'print_size'))
                 <> 2
        THEN
            PERFORM admin_bad_field('print_size',
                '{"width_mm": 297, "height_mm": 420}: the print''s size in'
                || ' millimetres (1 to 99999), or null for none.');
        ELSE
            v_w := round((p->'print_size'->>'width_mm')::numeric, 1);
            v_h := round((p->'print_size'->>'height_mm')::numeric, 1);
        END IF;
    END IF;

    IF p ? 'min_ppi' THEN
        IF jsonb_typeof(p->'min_ppi') = 'null' THEN
            v_ppi := NULL;
        ELSIF jsonb_typeof(p->'min_ppi') <> 'number'
              OR p->>'min_ppi' !~ '^[0-9]{1,4}$'
              OR (p->>'min_ppi')::integer NOT BETWEEN 1 AND 2400
        THEN
            PERFORM admin_bad_field('min_ppi',
                'pixels per inch the print needs, 1 to 2400, or null for'
                || ' the shop''s.');
        ELSE
            v_ppi := (p->>'min_ppi')::integer;
        END IF;
    END IF;

    IF v_w IS NOT NULL AND p_row.kind <> 'print' THEN
        PERFORM admin_bad_field('print_size', 'only a print has a size.');
    END IF;

    IF (v_w, v_h, v_ppi) IS NOT DISTINCT FROM
       (p_row.print_width_mm, p_row.print_height_mm, p_row.min_ppi)
    THEN
        RETURN p_row;
    END IF;

    UPDATE products
       SET print_width_mm = v_w, print_height_mm = v_h, min_ppi = v_ppi,
           updated_at = now()
     WHERE id = p_row.id
    RETURNING * INTO v_row;
    RETURN v_row;
END $$;


-- The admin photo API's "width" and "height" (the print file's pixels,
-- both or neither; null clears them) of photo row p_row from body p.
CREATE OR REPLACE FUNCTION admin_photo_pixels(p_row photos, p jsonb)
RETURNS photos LANGUAGE plpgsql AS $$
DECLARE
    v_row photos%ROWTYPE;
BEGIN
    IF NOT (p ? 'width' OR p ? 'height') THEN
        RETURN p_row;
    END IF;
    IF NOT (p ? 'width' AND p ? 'height')
       OR NOT ((jsonb_typeof(p->'width') = 'null'
                AND jsonb_typeof(p->'height') = 'null')
               OR (p->>'width' ~ '^[0-9]{1,6}$'
                   AND p->>'height' ~ '^[0-9]{1,6}$'
                   AND jsonb_typeof(p->'width') = 'number'
                   AND jsonb_typeof(p->'height') = 'number'
                   AND (p->>'width')::integer > 0
                   AND (p->>'height')::integer > 0))
    THEN
        PERFORM admin_bad_field('width',
            '"width" and "height" go together: the print file''s size in'
            || ' pixels, or both null.');
    END IF;

    UPDATE photos
       SET width = (p->>'width')::integer, height = (p->>'height')::integer,
           updated_at = now()
     WHERE id = p_row.id
    RETURNING * INTO v_row;
    RETURN v_row;
END $$;


-- A line's sizing in words, for the receipt and the order page: NULL for
-- none (the photo and the print share their ratio, or not a print).
CREATE OR REPLACE FUNCTION print_sizing_text(p_sizing text)
RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE p_sizing
        WHEN 'crop' THEN 'Cropped to fill the print'
        WHEN 'fit' THEN 'The whole photo, with borders'
    END;
$$;
