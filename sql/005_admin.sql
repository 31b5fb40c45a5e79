-- The admin API's reads and writes.  Input arrives as one jsonb parameter
-- and is checked here; refusals use darkroom_refuse() like the shop's.

CREATE FUNCTION admin_product_json(p products) RETURNS json
LANGUAGE sql STABLE AS $$
    SELECT json_build_object('id', p.id, 'name', p.name, 'kind', p.kind,
        'medium', p.medium, 'size', p.size, 'active', p.active,
        'prices', (SELECT coalesce(json_object_agg(pp.currency, pp.amount),
                                   '{}')
                     FROM product_prices pp WHERE pp.product_id = p.id),
        'updated_at', p.updated_at);
$$;

CREATE FUNCTION admin_photo_json(ph photos) RETURNS json
LANGUAGE sql STABLE AS $$
    SELECT json_build_object('id', ph.id, 'title', ph.title,
        'description', ph.description, 'image', ph.image_path,
        'print', ph.print_path, 'active', ph.active,
        'products', (SELECT coalesce(json_agg(x.product_id
                                              ORDER BY x.product_id), '[]')
                       FROM photo_products x WHERE x.photo_id = ph.id),
        'updated_at', ph.updated_at);
$$;

CREATE FUNCTION admin_products_json() RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT json_build_object('products',
        coalesce(json_agg(admin_product_json(p) ORDER BY p.id), '[]'))::text
      FROM products p;
$$;

CREATE FUNCTION admin_photos_json() RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT json_build_object('photos',
        coalesce(json_agg(admin_photo_json(ph) ORDER BY ph.id), '[]'))::text
      FROM photos ph;
$$;

CREATE FUNCTION admin_slug(p_value text, p_what text) RETURNS text
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
CREATE FUNCTION admin_product_upsert(p jsonb) RETURNS text
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
CREATE FUNCTION admin_photo_upsert(p jsonb) RETURNS text
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

CREATE FUNCTION admin_orders_json(p_status text, p_email text,
                                  p_since timestamptz, p_until timestamptz,
                                  p_limit int, p_offset int)
RETURNS text LANGUAGE sql STABLE AS $$
    SELECT json_build_object('orders', coalesce(json_agg(json_build_object(
               'order', o.ref, 'status', o.status, 'email', o.email,
               'currency', o.currency, 'total', o.total,
               'amount_refunded', o.amount_refunded,
               'created_at', o.created_at, 'paid_at', o.paid_at,
               'review_reason', o.review_reason)
               ORDER BY o.created_at DESC, o.id DESC), '[]'))::text
      FROM (SELECT * FROM orders o
             WHERE (p_status IS NULL OR o.status = p_status)
               AND (p_email IS NULL OR lower(o.email) = lower(p_email))
               AND (p_since IS NULL OR o.created_at >= p_since)
               AND (p_until IS NULL OR o.created_at < p_until)
             ORDER BY o.created_at DESC, o.id DESC
             LIMIT p_limit OFFSET p_offset) o;
$$;

CREATE FUNCTION admin_order_json(p_ref text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT json_build_object(
        'order', o.ref, 'id', o.id, 'status', o.status, 'email', o.email,
        'currency', o.currency, 'total', o.total,
        'paid_amount', o.paid_amount, 'paid_currency', o.paid_currency,
        'amount_refunded', o.amount_refunded,
        'review_reason', o.review_reason,
        'stripe_session', o.stripe_session_id,
        'stripe_payment_intent', o.stripe_payment_intent,
        'shipping', CASE WHEN o.shipping_address IS NULL THEN NULL
                         ELSE json_build_object('name', o.shipping_name,
                                                'address', o.shipping_address)
                    END,
        'created_at', o.created_at, 'paid_at', o.paid_at,
        'items', (SELECT coalesce(json_agg(json_build_object(
                      'photo', i.photo_id, 'product', i.product_id,
                      'title', i.title, 'product_name', i.product_name,
                      'kind', i.kind, 'quantity', i.quantity,
                      'unit_amount', i.unit_amount, 'amount', i.amount)
                      ORDER BY i.line), '[]')
                    FROM order_items i WHERE i.order_id = o.id),
        'events', (SELECT coalesce(json_agg(json_build_object(
                      'from', e.from_status, 'to', e.to_status,
                      'cause', e.cause, 'detail', e.detail,
                      'at', e.created_at) ORDER BY e.id), '[]')
                     FROM order_events e WHERE e.order_id = o.id),
        'webhooks', (SELECT coalesce(json_agg(json_build_object(
                      'id', s.id, 'type', s.type, 'result', s.result,
                      'received_at', s.received_at)
                      ORDER BY s.received_at), '[]')
                       FROM stripe_events s WHERE s.order_id = o.id),
        'jobs', (SELECT coalesce(json_agg(json_build_object(
                      'id', j.id, 'kind', j.kind, 'attempts', j.attempts,
                      'dead', j.dead, 'done', j.done_at IS NOT NULL,
                      'last_error', j.last_error, 'run_at', j.run_at)
                      ORDER BY j.id), '[]')
                   FROM jobs j WHERE j.payload->>'order_id' = o.id::text)
    )::text
      FROM orders o WHERE o.ref = p_ref;
$$;

CREATE FUNCTION admin_order_review(p_ref text, p_reason text) RETURNS text
LANGUAGE plpgsql AS $$
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
                            jsonb_build_object('reason', p_reason))
    THEN
        PERFORM darkroom_refuse(409, 'invalid_state',
            format('An order that is %s cannot be marked for review.',
                   v_status));
    END IF;

    RETURN admin_order_json(p_ref);
END $$;

-- Checks a refund before Stripe is asked, and names the idempotency key:
-- the same request for the same order state is the same refund.
CREATE FUNCTION admin_refund_check(p_ref text, p_amount bigint)
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

CREATE FUNCTION admin_jobs_json(p_state text, p_limit int) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT json_build_object('jobs', coalesce(json_agg(json_build_object(
               'id', j.id, 'kind', j.kind, 'payload', j.payload,
               'attempts', j.attempts, 'max_attempts', j.max_attempts,
               'run_at', j.run_at, 'dead', j.dead,
               'done_at', j.done_at, 'last_error', j.last_error)
               ORDER BY j.id DESC), '[]'))::text
      FROM (SELECT * FROM jobs j
             WHERE CASE p_state
                   WHEN 'dead' THEN j.dead
                   WHEN 'due' THEN NOT j.dead AND j.done_at IS NULL
                   WHEN 'done' THEN j.done_at IS NOT NULL
                   ELSE true END
             ORDER BY j.id DESC LIMIT p_limit) j;
$$;

-- A dead or waiting job runs again at once, with a fresh set of attempts.
CREATE FUNCTION admin_job_retry(p_id bigint) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE jobs SET dead = false, attempts = 0, run_at = now(),
                    locked_until = NULL
     WHERE id = p_id AND done_at IS NULL
       AND (locked_until IS NULL OR locked_until < now());
    IF NOT FOUND THEN
        PERFORM darkroom_refuse(409, 'not_retryable',
            'There is no such job waiting or dead; running and finished '
            'jobs cannot be retried.');
    END IF;
    RETURN json_build_object('retried', p_id)::text;
END $$;
