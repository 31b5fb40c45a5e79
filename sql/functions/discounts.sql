-- sql/functions/discounts.sql: the shop's discount codes (sql/019): what
-- cart_discount() and cart_reserve() (shop.sql) need to check a code,
-- spread its amount over the cart's lines and count its uses; the life of
-- a use with its order (discount_order_moved, called by order_transition);
-- the admin of codes (admin_discount and the functions it calls).
--
-- Tables: discount_codes, discount_redemptions; reads products and orders.
-- Calls: darkroom_refuse (core).


-- An amount for a message: "£30.00", "$5.50", "¥500", "30.00 CHF".
CREATE OR REPLACE FUNCTION discount_money(p_amount bigint, p_currency text)
RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE p_currency WHEN 'GBP' THEN '£' WHEN 'USD' THEN '$'
                           WHEN 'EUR' THEN '€' WHEN 'JPY' THEN '¥'
                           ELSE '' END
        || CASE WHEN p_currency IN ('BIF', 'CLP', 'DJF', 'GNF', 'JPY', 'KMF',
                                    'KRW', 'MGA', 'PYG', 'RWF', 'UGX', 'VND',
                                    'VUV', 'XAF', 'XOF', 'XPF')
                THEN p_amount::text
                ELSE to_char(p_amount / 100.0, 'FM999999990.00') END
        || CASE WHEN p_currency IN ('GBP', 'USD', 'EUR', 'JPY') THEN ''
                ELSE ' ' || p_currency END;
$$;


-- Whether a code applies to a cart line (its product and kind).
CREATE OR REPLACE FUNCTION discount_applies(d discount_codes, p_line jsonb)
RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
    SELECT (d.products IS NULL OR p_line->>'product' = ANY (d.products))
       AND (d.kinds IS NULL OR p_line->>'kind' = ANY (d.kinds));
$$;


-- The code's limits against its uses held now (reserved or redeemed):
-- refuses 409 code_exhausted when none is left, code_used when p_email
-- has had its share.  In cart_reserve() this runs under the code's row
-- lock, in a statement of its own, so it sees every committed use.
CREATE OR REPLACE FUNCTION discount_limits(d discount_codes, p_email text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_all   bigint;
    v_mine  bigint;
BEGIN
    SELECT count(*),
           count(*) FILTER (WHERE lower(r.email) = lower(p_email))
      INTO v_all, v_mine
      FROM discount_redemptions r
     WHERE r.code = d.code AND r.state IN ('reserved', 'redeemed');

    IF d.max_redemptions IS NOT NULL AND v_all >= d.max_redemptions THEN
        PERFORM darkroom_refuse(409, 'code_exhausted',
            format('The discount code %s has been used up.', d.code));
    END IF;

    IF p_email IS NOT NULL AND d.max_per_email IS NOT NULL
       AND v_mine >= d.max_per_email
    THEN
        PERFORM darkroom_refuse(409, 'code_used',
            format('The discount code %s has already been used with %s.',
                   d.code, p_email));
    END IF;
END $$;


-- The code p_code (upper case) as it stands for a cart in p_currency now:
-- refuses unknown_code (also a deactivated one), code_not_started,
-- code_expired, wrong_currency (a fixed code without an amount in the
-- currency, or a minimum spend set in others only).
CREATE OR REPLACE FUNCTION discount_valid(p_code text, p_currency text)
RETURNS discount_codes LANGUAGE plpgsql STABLE AS $$
DECLARE
    d  discount_codes%ROWTYPE;
BEGIN
    SELECT * INTO d FROM discount_codes WHERE code = p_code AND active;
    IF NOT FOUND THEN
        PERFORM darkroom_refuse(400, 'unknown_code',
            format('There is no discount code "%s".', p_code));
    END IF;

    IF d.starts_at IS NOT NULL AND now() < d.starts_at THEN
        PERFORM darkroom_refuse(400, 'code_not_started',
            format('The discount code %s can be used from %s.', d.code,
                   to_char(d.starts_at AT TIME ZONE 'UTC',
                           'YYYY-MM-DD HH24:MI "UTC"')));
    END IF;

    IF d.ends_at IS NOT NULL AND now() >= d.ends_at THEN
        PERFORM darkroom_refuse(400, 'code_expired',
            format('The discount code %s expired on %s.', d.code,
                   to_char(d.ends_at AT TIME ZONE 'UTC',
                           'YYYY-MM-DD HH24:MI "UTC"')));
    END IF;

    IF (d.kind = 'fixed' AND NOT d.amount_off ? p_currency)
       OR (d.min_spend <> '{}' AND NOT d.min_spend ? p_currency)
    THEN
        PERFORM darkroom_refuse(400, 'wrong_currency',
            format('The discount code %s cannot be used in %s.', d.code,
                   p_currency));
    END IF;

    RETURN d;
END $$;


-- p_amount spread over the lines p_code applies to, in proportion to
-- their amounts, as integers (largest remainder: the floors, then one
-- more to the lines with the largest remainders, first line first on a
-- tie), so the lines' discounts add up to p_amount exactly; p_amount is
-- at most the lines' sum, so no line gets more than its amount.
CREATE OR REPLACE FUNCTION discount_allocate(p_lines jsonb, d discount_codes,
                                             p_amount bigint)
RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    WITH l AS (
        SELECT x, (x->>'line')::int AS line, (x->>'amount')::bigint AS amount,
               discount_applies(d, x) AS ok
          FROM jsonb_array_elements(p_lines) x
    ), e AS (
        SELECT (sum(amount) FILTER (WHERE ok))::bigint AS total FROM l
    ), s AS (
        SELECT l.*,
               CASE WHEN ok THEN p_amount * amount / e.total ELSE 0 END
                   AS base,
               CASE WHEN ok THEN p_amount * amount % e.total ELSE -1 END
                   AS rem
          FROM l, e
    ), r AS (
        SELECT s.*, row_number() OVER (ORDER BY rem DESC, line) AS rank,
               p_amount - (sum(base) OVER ())::bigint AS leftover
          FROM s
    )
    SELECT coalesce(jsonb_agg(x || jsonb_build_object('discount',
               base + CASE WHEN ok AND rank <= leftover THEN 1 ELSE 0 END)
               ORDER BY line), '[]')
      FROM r;
$$;


-- An order moved (order_transition, same transaction): its code's use is
-- redeemed when it is paid (or goes on to fulfilment), released when it
-- expires or is cancelled while only reserved.  A paid use stays redeemed
-- whatever follows (refund, cancellation after payment).  PL/pgSQL, not
-- SQL: its plan is kept from one call to the next (a SQL function's
-- UPDATE is planned again at every call), so an order without a code,
-- most of them, costs one look at the primary key.
CREATE OR REPLACE FUNCTION discount_order_moved(p_order bigint, p_to text)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    UPDATE discount_redemptions
       SET state = CASE WHEN p_to IN ('expired', 'cancelled')
                        THEN 'released' ELSE 'redeemed' END,
           released_at = CASE WHEN p_to IN ('expired', 'cancelled')
                              THEN now() ELSE released_at END,
           redeemed_at = CASE WHEN p_to IN ('expired', 'cancelled')
                              THEN redeemed_at ELSE now() END
     WHERE order_id = p_order
       AND CASE WHEN p_to IN ('expired', 'cancelled') THEN state = 'reserved'
                WHEN p_to IN ('paid', 'in_production', 'shipped',
                              'delivered') THEN state <> 'redeemed'
                ELSE false END;
END $$;


-- ---------------------------------------------------------------- admin

CREATE OR REPLACE FUNCTION admin_discount_json(d discount_codes) RETURNS json
LANGUAGE sql STABLE AS $$
    SELECT json_build_object('code', d.code, 'kind', d.kind,
        'percent_off', d.percent_off::float8, 'amount_off', d.amount_off,
        'min_spend', d.min_spend, 'starts_at', d.starts_at,
        'ends_at', d.ends_at, 'max_redemptions', d.max_redemptions,
        'max_per_email', d.max_per_email, 'products', d.products,
        'kinds', d.kinds, 'active', d.active,
        'description', d.description,
        'reserved', u.reserved, 'redeemed', u.redeemed,
        'released', u.released,
        'remaining', d.max_redemptions - u.reserved - u.redeemed,
        'created_at', d.created_at, 'updated_at', d.updated_at)
      FROM (SELECT count(*) FILTER (WHERE state = 'reserved') AS reserved,
                   count(*) FILTER (WHERE state = 'redeemed') AS redeemed,
                   count(*) FILTER (WHERE state = 'released') AS released
              FROM discount_redemptions WHERE code = d.code) u;
$$;


-- "amount_off" or "min_spend": {"GBP": 500, ...} (null: {}).
CREATE OR REPLACE FUNCTION admin_discount_amounts(p jsonb, p_field text)
RETURNS jsonb LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    r  record;
BEGIN
    IF p IS NULL OR jsonb_typeof(p) = 'null' THEN
        RETURN '{}';
    END IF;

    IF jsonb_typeof(p) <> 'object' THEN
        PERFORM darkroom_refuse(400, 'invalid_discount',
            format('"%s" is an object of currency to amount in minor '
                   'units, such as {"GBP": 500}.', p_field));
    END IF;

    FOR r IN SELECT key, value FROM jsonb_each(p) LOOP
        IF r.key !~ '^[A-Z]{3}$' OR jsonb_typeof(r.value) <> 'number'
           OR r.value::text !~ '^[0-9]{1,8}$' OR r.value::bigint <= 0
        THEN
            PERFORM darkroom_refuse(400, 'invalid_discount',
                format('"%s": %s %s must be a whole number of minor units '
                       '(pence, cents) above zero, for a currency such as '
                       '"GBP".', p_field, r.key, r.value));
        END IF;
    END LOOP;

    RETURN p;
END $$;


-- An optional field of a discount: a timestamp, a count or a list.
CREATE OR REPLACE FUNCTION admin_discount_time(p jsonb, p_field text)
RETURNS timestamptz LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF jsonb_typeof(p) = 'null' THEN
        RETURN NULL;
    END IF;
    IF jsonb_typeof(p) = 'string' AND p #>> '{}' ~ '^\d{4}-\d\d-\d\d' THEN
        BEGIN
            RETURN (p #>> '{}')::timestamptz;
        EXCEPTION WHEN others THEN
            NULL;
        END;
    END IF;
    PERFORM darkroom_refuse(400, 'invalid_discount',
        format('"%s" must be a time such as "2026-12-31T23:59:59Z", or '
               'null.', p_field));
END $$;


CREATE OR REPLACE FUNCTION admin_discount_count(p jsonb, p_field text)
RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF jsonb_typeof(p) = 'null' THEN
        RETURN NULL;
    END IF;
    IF jsonb_typeof(p) <> 'number' OR p::text !~ '^[0-9]{1,9}$'
       OR p::text::int < 1
    THEN
        PERFORM darkroom_refuse(400, 'invalid_discount',
            format('"%s" must be a whole number above zero, or null (no '
                   'limit).', p_field));
    END IF;
    RETURN p::text::int;
END $$;


CREATE OR REPLACE FUNCTION admin_discount_list(p jsonb, p_field text)
RETURNS text[] LANGUAGE plpgsql STABLE AS $$
DECLARE
    v  text[];
    x  text;
BEGIN
    IF jsonb_typeof(p) = 'null' THEN
        RETURN NULL;
    END IF;
    IF jsonb_typeof(p) <> 'array' OR jsonb_array_length(p) = 0
       OR EXISTS (SELECT 1 FROM jsonb_array_elements(p) e
                   WHERE jsonb_typeof(e) <> 'string')
    THEN
        PERFORM darkroom_refuse(400, 'invalid_discount',
            format('"%s" must be a list of names, or null (all).',
                   p_field));
    END IF;

    v := ARRAY(SELECT DISTINCT jsonb_array_elements_text(p) ORDER BY 1);

    FOREACH x IN ARRAY v LOOP
        IF p_field = 'kinds' AND x NOT IN ('print', 'digital') THEN
            PERFORM darkroom_refuse(400, 'invalid_discount',
                format('"kinds": "%s" is not "print" or "digital".', x));
        END IF;
        IF p_field = 'products'
           AND NOT EXISTS (SELECT 1 FROM products WHERE id = x)
        THEN
            PERFORM darkroom_refuse(400, 'invalid_discount',
                format('"products": there is no product "%s".', x));
        END IF;
    END LOOP;

    RETURN v;
END $$;


-- Creates or updates a code (p_code: the path's, else the body's "code");
-- a field left out keeps its value, null clears an optional one.
CREATE OR REPLACE FUNCTION admin_discount_upsert(p_code text, p jsonb)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    d       discount_codes%ROWTYPE;
    v_code  text := upper(coalesce(p_code, p->>'code'));
    v_key   text;
BEGIN
    SELECT k INTO v_key FROM jsonb_object_keys(p) k
     WHERE k NOT IN ('code', 'kind', 'percent_off', 'amount_off',
                     'min_spend', 'starts_at', 'ends_at', 'max_redemptions',
                     'max_per_email', 'products', 'kinds', 'active',
                     'description')
     LIMIT 1;
    IF FOUND THEN
        PERFORM darkroom_refuse(400, 'invalid_discount',
            format('Unknown field "%s".', v_key));
    END IF;

    IF v_code IS NULL OR v_code !~ '^[A-Z0-9_-]{1,32}$'
       OR (p ? 'code' AND upper(p->>'code') IS DISTINCT FROM v_code)
    THEN
        PERFORM darkroom_refuse(400, 'invalid_discount',
            '"code" must be 1 to 32 letters, digits, "-" or "_" (and the '
            'same as in the path).');
    END IF;

    SELECT * INTO d FROM discount_codes WHERE code = v_code FOR UPDATE;
    IF NOT FOUND THEN
        d := ROW(v_code, NULL, NULL, '{}', '{}', NULL, NULL, NULL, NULL,
                 NULL, NULL, true, '', now(), now());
    END IF;

    IF p ? 'kind' THEN
        IF coalesce(p->>'kind', '') NOT IN ('percent', 'fixed') THEN
            PERFORM darkroom_refuse(400, 'invalid_discount',
                '"kind" must be "percent" or "fixed".');
        END IF;
        d.kind := p->>'kind';
    END IF;

    IF d.kind IS NULL THEN
        PERFORM darkroom_refuse(400, 'invalid_discount',
            '"kind" is required for a new code: "percent" or "fixed".');
    END IF;

    IF jsonb_typeof(p->'percent_off') = 'null' THEN
        d.percent_off := NULL;
    ELSIF p ? 'percent_off' THEN
        IF jsonb_typeof(p->'percent_off') <> 'number'
           OR (p->>'percent_off')::numeric <= 0
           OR (p->>'percent_off')::numeric > 100
           OR (p->>'percent_off')::numeric
              <> round((p->>'percent_off')::numeric, 2)
        THEN
            PERFORM darkroom_refuse(400, 'invalid_discount',
                '"percent_off" must be a number above 0 and at most 100, '
                'with two decimals at most.');
        END IF;
        d.percent_off := (p->>'percent_off')::numeric;
    END IF;

    IF p ? 'amount_off' THEN
        d.amount_off := admin_discount_amounts(p->'amount_off', 'amount_off');
    END IF;

    IF d.kind = 'percent' THEN
        IF d.percent_off IS NULL OR d.amount_off <> '{}' THEN
            PERFORM darkroom_refuse(400, 'invalid_discount',
                'A "percent" code has "percent_off" (such as 10) and no '
                '"amount_off".');
        END IF;
    ELSIF d.amount_off = '{}' OR jsonb_typeof(p->'percent_off') = 'number'
    THEN
        PERFORM darkroom_refuse(400, 'invalid_discount',
            'A "fixed" code has "amount_off" (such as {"GBP": 500}) and no '
            '"percent_off".');
    ELSE
        d.percent_off := NULL;
    END IF;

    RETURN admin_discount_fields(d, p);
END $$;


-- The rest of admin_discount_upsert: the optional fields, then the write.
CREATE OR REPLACE FUNCTION admin_discount_fields(d discount_codes, p jsonb)
RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    IF p ? 'min_spend' THEN
        d.min_spend := admin_discount_amounts(p->'min_spend', 'min_spend');
    END IF;
    IF p ? 'starts_at' THEN
        d.starts_at := admin_discount_time(p->'starts_at', 'starts_at');
    END IF;
    IF p ? 'ends_at' THEN
        d.ends_at := admin_discount_time(p->'ends_at', 'ends_at');
    END IF;
    IF d.ends_at <= d.starts_at THEN
        PERFORM darkroom_refuse(400, 'invalid_discount',
            '"ends_at" must be after "starts_at".');
    END IF;
    IF p ? 'max_redemptions' THEN
        d.max_redemptions := admin_discount_count(p->'max_redemptions',
                                                  'max_redemptions');
    END IF;
    IF p ? 'max_per_email' THEN
        d.max_per_email := admin_discount_count(p->'max_per_email',
                                                'max_per_email');
    END IF;
    IF p ? 'products' THEN
        d.products := admin_discount_list(p->'products', 'products');
    END IF;
    IF p ? 'kinds' THEN
        d.kinds := admin_discount_list(p->'kinds', 'kinds');
    END IF;
    IF p ? 'active' THEN
        IF jsonb_typeof(p->'active') <> 'boolean' THEN
            PERFORM darkroom_refuse(400, 'invalid_discount',
                '"active" must be true or false.');
        END IF;
        d.active := (p->>'active')::boolean;
    END IF;
    IF p ? 'description' THEN
        IF jsonb_typeof(p->'description') <> 'string'
           OR length(p->>'description') > 500
        THEN
            PERFORM darkroom_refuse(400, 'invalid_discount',
                '"description" must be text of at most 500 characters.');
        END IF;
        d.description := p->>'description';
    END IF;

    INSERT INTO discount_codes AS x SELECT d.*
    ON CONFLICT (code) DO UPDATE
       SET kind = EXCLUDED.kind, percent_off = EXCLUDED.percent_off,
           amount_off = EXCLUDED.amount_off, min_spend = EXCLUDED.min_spend,
           starts_at = EXCLUDED.starts_at, ends_at = EXCLUDED.ends_at,
           max_redemptions = EXCLUDED.max_redemptions,
           max_per_email = EXCLUDED.max_per_email,
           products = EXCLUDED.products, kinds = EXCLUDED.kinds,
           active = EXCLUDED.active, description = EXCLUDED.description,
           updated_at = now()
    RETURNING * INTO d;

    RETURN admin_discount_json(d)::text;
END $$;


-- The admin API's discounts: p_verb list | get | redemptions | put |
-- deactivate; p_code from the path (NULL: none); p_body the request's.
-- NULL (404) for a code that does not exist.
CREATE OR REPLACE FUNCTION admin_discount(p_verb text, p_code text,
                                          p_body text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    d       discount_codes%ROWTYPE;
    v_body  jsonb;
BEGIN
    IF p_verb = 'list' THEN
        RETURN (SELECT json_build_object('discounts',
                    coalesce(json_agg(admin_discount_json(x) ORDER BY x.code),
                             '[]'))::text
                  FROM discount_codes x);
    END IF;

    IF p_verb = 'put' THEN
        BEGIN
            v_body := p_body::jsonb;
        EXCEPTION WHEN others THEN
            v_body := NULL;
        END;
        IF jsonb_typeof(v_body) IS DISTINCT FROM 'object' THEN
            PERFORM darkroom_refuse(400, 'invalid_json',
                                    'The body must be a JSON object.');
        END IF;
        RETURN admin_discount_upsert(p_code, v_body);
    END IF;

    SELECT * INTO d FROM discount_codes WHERE code = upper(p_code);
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;

    IF p_verb = 'deactivate' THEN
        UPDATE discount_codes SET active = false, updated_at = now()
         WHERE code = d.code
        RETURNING * INTO d;
    END IF;

    IF p_verb = 'redemptions' THEN
        RETURN (SELECT json_build_object('code', d.code, 'redemptions',
                    coalesce(json_agg(json_build_object(
                        'order', o.ref, 'email', r.email,
                        'currency', r.currency, 'amount', r.amount,
                        'state', r.state, 'order_status', o.status,
                        'reserved_at', r.reserved_at,
                        'redeemed_at', r.redeemed_at,
                        'released_at', r.released_at)
                        ORDER BY r.reserved_at DESC, r.order_id DESC), '[]'))::text
                  FROM discount_redemptions r
                  JOIN orders o ON o.id = r.order_id
                 WHERE r.code = d.code);
    END IF;

    RETURN admin_discount_json(d)::text;
END $$;
