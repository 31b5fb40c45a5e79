-- The shop's rules, next to the data they guard: pricing a cart, applying
-- Stripe events, the JSON the endpoints answer with.  Each function runs in
-- the caller's single statement, so everything it writes (order, items,
-- events, jobs) commits together or not at all.
--
-- A refusal the client should see is raised with SQLSTATE 'DRnnn' where
-- nnn is the HTTP status; the message is the error code and the detail the
-- sentence for the client.  darkroom passes both on unchanged.

CREATE FUNCTION darkroom_refuse(p_status int, p_code text, p_message text)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = 'DR' || p_status::text,
                          MESSAGE = p_code, DETAIL = p_message;
END $$;


CREATE FUNCTION catalogue_json(p_currency text) RETURNS text
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
                                  WHERE x.photo_id = ph.id AND pr.active))
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


-- Prices a cart from the catalogue and writes the order, its items, its
-- first event and the job that will ask Stripe about it if no webhook
-- comes.  Items are [{"photo":..,"product":..,"quantity":n}], already
-- checked for shape by darkroom; any price the client sent is not read.
CREATE FUNCTION checkout_create(p_items jsonb, p_email text, p_currency text,
                                p_token_hash text, p_expires_at timestamptz,
                                p_reconcile_at timestamptz)
RETURNS TABLE (order_id bigint, order_ref text, total bigint,
               physical boolean, lines jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    v_order     bigint;
    v_total     bigint := 0;
    v_physical  boolean := false;
    v_lines     jsonb := '[]';
    v_line      int := 0;
    v_qty       int;
    v_amount    bigint;
    v_photo     photos%ROWTYPE;
    v_product   products%ROWTYPE;
    r           record;
BEGIN
    INSERT INTO orders (ref, status_token, email, currency, total, physical,
                        expires_at)
    VALUES ('', p_token_hash, p_email, p_currency, 1, false, p_expires_at)
    RETURNING id INTO v_order;

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

        v_qty := r.quantity;
        v_total := v_total + v_amount * v_qty;
        v_physical := v_physical OR v_product.kind = 'print';

        INSERT INTO order_items (order_id, line, photo_id, product_id, title,
                                 product_name, kind, quantity, unit_amount,
                                 amount)
        VALUES (v_order, v_line, r.photo, r.product, v_photo.title,
                v_product.name, v_product.kind, v_qty, v_amount,
                v_amount * v_qty);

        v_lines := v_lines || jsonb_build_object(
            'name', v_photo.title || ' — ' || v_product.name,
            'unit_amount', v_amount, 'quantity', v_qty);
    END LOOP;

    IF v_total > 99999999 THEN
        PERFORM darkroom_refuse(400, 'amount_too_large',
            'The order total is more than can be paid at once.');
    END IF;

    UPDATE orders o
       SET ref = 'DR-' || lpad(v_order::text, 6, '0'),
           total = v_total, physical = v_physical
     WHERE o.id = v_order;

    INSERT INTO order_events (order_id, to_status, cause, detail)
    VALUES (v_order, 'pending_payment', 'checkout',
            jsonb_build_object('total', v_total, 'currency', p_currency));

    INSERT INTO jobs (kind, payload, run_at, dedupe_key)
    VALUES ('checkout_reconcile', jsonb_build_object('order_id', v_order),
            p_reconcile_at, 'reconcile:' || v_order);

    RETURN QUERY SELECT v_order, 'DR-' || lpad(v_order::text, 6, '0'),
                        v_total, v_physical, v_lines;
END $$;


CREATE FUNCTION checkout_attach(p_order bigint, p_session text, p_url text)
RETURNS void LANGUAGE sql AS $$
    UPDATE orders SET stripe_session_id = p_session, checkout_url = p_url,
                      updated_at = now()
     WHERE id = p_order;
$$;


CREATE FUNCTION checkout_failed(p_order bigint, p_reason text)
RETURNS void LANGUAGE sql AS $$
    SELECT order_transition(p_order, 'cancelled', 'checkout',
                            jsonb_build_object('reason', p_reason));
    UPDATE jobs SET done_at = now(), last_error = 'checkout failed'
     WHERE dedupe_key = 'reconcile:' || p_order AND done_at IS NULL;
$$;


-- A session reports payment: record it, and move the order to paid when
-- the amount is exactly the order's total (else to review).  Becoming paid
-- enqueues fulfilment and the receipt in the same transaction.
CREATE FUNCTION order_mark_paid(p_order bigint, p_session jsonb, p_cause text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_o        orders%ROWTYPE;
    v_amount   bigint := (p_session->>'amount_total')::bigint;
    v_currency text := upper(p_session->>'currency');
    v_ship     jsonb := coalesce(
                   p_session->'collected_information'->'shipping_details',
                   p_session->'shipping_details');
BEGIN
    SELECT * INTO v_o FROM orders WHERE id = p_order FOR UPDATE;

    UPDATE orders
       SET paid_amount = v_amount, paid_currency = v_currency,
           stripe_payment_intent = coalesce(p_session->>'payment_intent',
                                            stripe_payment_intent),
           shipping_name = coalesce(v_ship->>'name', shipping_name),
           shipping_address = coalesce(v_ship->'address', shipping_address),
           updated_at = now()
     WHERE id = p_order
       AND status IN ('pending_payment', 'needs_review');

    IF v_amount IS DISTINCT FROM v_o.total
       OR v_currency IS DISTINCT FROM v_o.currency
    THEN
        IF v_o.status <> 'pending_payment' THEN
            RETURN 'ignored: order is ' || v_o.status;
        END IF;

        UPDATE orders SET review_reason = format(
                   'Paid %s %s but the order total is %s %s.',
                   v_amount, v_currency, v_o.total, v_o.currency)
         WHERE id = p_order;
        PERFORM order_transition(p_order, 'needs_review', p_cause,
            jsonb_build_object('paid', v_amount, 'currency', v_currency));
        INSERT INTO jobs (kind, payload, dedupe_key)
        VALUES ('email', jsonb_build_object('template', 'shop_alert',
                                            'order_id', p_order),
                'email:alert:' || p_order || ':' || p_cause)
        ON CONFLICT (dedupe_key) DO NOTHING;
        RETURN 'needs_review: amount mismatch';
    END IF;

    IF NOT order_transition(p_order, 'paid', p_cause,
                            jsonb_build_object('amount', v_amount))
    THEN
        RETURN 'ignored: order is ' || v_o.status;
    END IF;

    IF v_o.physical THEN
        INSERT INTO jobs (kind, payload, dedupe_key)
        VALUES ('fulfil_order', jsonb_build_object('order_id', p_order),
                'fulfil:' || p_order)
        ON CONFLICT (dedupe_key) DO NOTHING;
    END IF;

    INSERT INTO jobs (kind, payload, dedupe_key)
    VALUES ('email', jsonb_build_object('template', 'receipt',
                                        'order_id', p_order),
            'email:receipt:' || p_order)
    ON CONFLICT (dedupe_key) DO NOTHING;

    RETURN 'paid';
END $$;


CREATE FUNCTION order_for_charge(p_obj jsonb) RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT id FROM orders
     WHERE stripe_payment_intent = p_obj->>'payment_intent'
        OR (p_obj->'metadata'->>'order_id' ~ '^[0-9]{1,18}$'
            AND id = (p_obj->'metadata'->>'order_id')::bigint)
     ORDER BY stripe_payment_intent = p_obj->>'payment_intent' DESC NULLS LAST
     LIMIT 1;
$$;


-- One verified Stripe event, exactly once: the event id is the key.  A
-- repeat answers 'duplicate' and changes nothing.
CREATE FUNCTION stripe_handle_event(p_event jsonb)
RETURNS TABLE (result text, order_id bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_id      text := p_event->>'id';
    v_type    text := p_event->>'type';
    v_obj     jsonb := p_event->'data'->'object';
    v_cause   text := 'stripe:' || (p_event->>'id');
    v_order   bigint;
    v_status  text;
    v_result  text;
    v_moved   boolean;
BEGIN
    INSERT INTO stripe_events (id, type, result, payload)
    VALUES (v_id, v_type, 'processing', p_event)
    ON CONFLICT (id) DO NOTHING;

    IF NOT FOUND THEN
        RETURN QUERY SELECT 'duplicate'::text,
                            (SELECT se.order_id FROM stripe_events se
                              WHERE se.id = v_id);
        RETURN;
    END IF;

    IF v_type LIKE 'checkout.session.%' THEN
        SELECT o.id INTO v_order FROM orders o
         WHERE o.stripe_session_id = v_obj->>'id';

        -- the session may be unknown if we crashed between creating it at
        -- Stripe and recording it: its metadata still names the order
        IF v_order IS NULL
           AND v_obj->'metadata'->>'order_id' ~ '^[0-9]{1,18}$'
        THEN
            SELECT o.id INTO v_order FROM orders o
             WHERE o.id = (v_obj->'metadata'->>'order_id')::bigint
               AND o.stripe_session_id IS NULL;
            UPDATE orders o SET stripe_session_id = v_obj->>'id'
             WHERE o.id = v_order;
        END IF;
    ELSIF v_type IN ('charge.refunded', 'charge.dispute.created') THEN
        v_order := order_for_charge(v_obj);
    END IF;

    IF v_order IS NULL THEN
        v_result := CASE WHEN v_type IN ('checkout.session.completed',
                                         'checkout.session.expired',
                                         'checkout.session.async_payment_succeeded',
                                         'checkout.session.async_payment_failed',
                                         'charge.refunded',
                                         'charge.dispute.created')
                         THEN 'ignored: no such order'
                         ELSE 'ignored: event type not handled' END;

    ELSIF v_type IN ('checkout.session.completed',
                     'checkout.session.async_payment_succeeded')
    THEN
        IF v_obj->>'payment_status' IN ('paid', 'no_payment_required') THEN
            v_result := order_mark_paid(v_order, v_obj, v_cause);
        ELSE
            -- delayed methods (bank debits) report later
            UPDATE orders o
               SET stripe_payment_intent = coalesce(v_obj->>'payment_intent',
                                                    o.stripe_payment_intent)
             WHERE o.id = v_order;
            v_result := 'awaiting payment';
        END IF;

    ELSIF v_type = 'checkout.session.async_payment_failed' THEN
        v_moved := order_transition(v_order, 'cancelled', v_cause,
                       jsonb_build_object('reason', 'payment failed'));
        v_result := CASE WHEN v_moved THEN 'cancelled'
                         ELSE 'ignored: order already settled' END;

    ELSIF v_type = 'checkout.session.expired' THEN
        v_moved := order_transition(v_order, 'expired', v_cause);
        v_result := CASE WHEN v_moved THEN 'expired'
                         ELSE 'ignored: order already settled' END;

    ELSIF v_type = 'charge.refunded' THEN
        -- amount_refunded is cumulative: taking the largest seen makes
        -- partial refunds arriving in any order end in the same place
        UPDATE orders o
           SET amount_refunded = greatest(o.amount_refunded,
                                          (v_obj->>'amount_refunded')::bigint),
               paid_amount = coalesce(o.paid_amount,
                                      (v_obj->>'amount')::bigint),
               paid_currency = coalesce(o.paid_currency,
                                        upper(v_obj->>'currency')),
               stripe_payment_intent = coalesce(o.stripe_payment_intent,
                                                v_obj->>'payment_intent'),
               updated_at = now()
         WHERE o.id = v_order
        RETURNING o.status INTO v_status;

        IF (v_obj->>'refunded')::boolean THEN
            v_moved := order_transition(v_order, 'refunded', v_cause,
                jsonb_build_object('amount_refunded',
                                   (v_obj->>'amount_refunded')::bigint));
            v_result := CASE WHEN v_moved THEN 'refunded'
                             ELSE 'ignored: order is ' || v_status END;
        ELSE
            INSERT INTO order_events (order_id, from_status, to_status,
                                      cause, detail)
            VALUES (v_order, v_status, v_status, v_cause,
                    jsonb_build_object('partial_refund',
                                       (v_obj->>'amount_refunded')::bigint));
            v_result := 'partially refunded';
            v_moved := true;
        END IF;

        IF v_moved THEN
            INSERT INTO jobs (kind, payload, dedupe_key)
            VALUES ('email', jsonb_build_object('template', 'refunded',
                        'order_id', v_order,
                        'amount_refunded', (v_obj->>'amount_refunded')::bigint),
                    'email:refund:' || v_order || ':'
                    || (v_obj->>'amount_refunded'))
            ON CONFLICT (dedupe_key) DO NOTHING;
        END IF;

    ELSIF v_type = 'charge.dispute.created' THEN
        UPDATE orders o SET review_reason = format('Payment disputed: %s.',
                                coalesce(v_obj->>'reason', 'no reason given'))
         WHERE o.id = v_order;
        v_moved := order_transition(v_order, 'needs_review', v_cause,
                       jsonb_build_object('dispute', v_obj->>'id'));
        INSERT INTO jobs (kind, payload, dedupe_key)
        VALUES ('email', jsonb_build_object('template', 'shop_alert',
                                            'order_id', v_order),
                'email:alert:' || v_order || ':' || v_cause)
        ON CONFLICT (dedupe_key) DO NOTHING;
        v_result := 'needs_review: disputed';

    ELSE
        v_result := 'ignored: event type not handled';
    END IF;

    UPDATE stripe_events se SET result = v_result, order_id = v_order
     WHERE se.id = v_id;

    RETURN QUERY SELECT v_result, v_order;
END $$;


-- What a customer sees of an order, found by the hash of its status token.
CREATE FUNCTION order_public_json(p_token_hash text) RETURNS text
LANGUAGE sql STABLE AS $$
SELECT json_build_object(
    'order', o.ref, 'status', o.status, 'email', o.email,
    'currency', o.currency, 'total', o.total,
    'amount_refunded', o.amount_refunded,
    'items', (SELECT coalesce(json_agg(json_build_object(
                  'photo', i.photo_id, 'product', i.product_id,
                  'title', i.title, 'product_name', i.product_name,
                  'kind', i.kind, 'quantity', i.quantity,
                  'unit_amount', i.unit_amount, 'amount', i.amount)
                  ORDER BY i.line), '[]')
                FROM order_items i WHERE i.order_id = o.id),
    'shipping', CASE WHEN o.shipping_address IS NULL THEN NULL
                     ELSE json_build_object('name', o.shipping_name,
                                            'address', o.shipping_address)
                END,
    'shipments', '[]'::json,
    'checkout_url', CASE WHEN o.status = 'pending_payment'
                         THEN o.checkout_url END,
    'created_at', o.created_at, 'paid_at', o.paid_at)::text
  FROM orders o WHERE o.status_token = p_token_hash;
$$;
