-- sql/functions/labs.sql: print labs: choosing a lab for an item, lab
-- orders and their events, sending, drafts, status and shipments from the
-- labs, cancel and reroute, refunds, health and the admin of lab orders.
--
-- Tables: lab_products, creativehub_variants, lab_orders, lab_order_items,
-- lab_order_events, shipments, jobs; reads the shop's orders, order_items,
-- order_events, photos, and gallery_photos (a gallery line prints the
-- gallery's original).
-- Calls: darkroom_refuse (core), order_transition (shop).
-- Also defines two functions the shop uses, so that the dependency on lab
-- data points from labs to shop and not the other way:
--   order_public_json  the customer's view of an order (the shop's
--                      endpoint), with its parcels from the labs
--   order_lab_progress where an order's lab orders got to (shop's
--                      admin_order_resolve)
-- Trigger: lab_orders_refund (AFTER UPDATE OF status ON orders).


-- What a customer sees of an order, found by the hash of its status token
-- (sql/004_shop.sql), now with each parcel's carrier and tracking link,
-- and its money (order_money_json: invoice number, subtotal, discount,
-- shipping charge, tax, total; each item's discount and tax), and each
-- item's sizing (a gallery print's crop or fit, else null).
CREATE OR REPLACE FUNCTION order_public_json(p_token_hash text) RETURNS text
LANGUAGE sql STABLE AS $$
SELECT (order_money_json(o) || jsonb_build_object(
    'order', o.ref, 'status', o.status, 'email', o.email,
    'currency', o.currency, 'total', o.total,
    'amount_refunded', o.amount_refunded,
    'items', (SELECT coalesce(json_agg(json_build_object(
                  'photo', i.photo_id, 'product', i.product_id,
                  'title', i.title, 'product_name', i.product_name,
                  'kind', i.kind, 'quantity', i.quantity,
                  'unit_amount', i.unit_amount, 'amount', i.amount,
                  'discount', i.discount, 'tax', i.tax,
                  'tax_rate', i.tax_rate, 'sizing', i.sizing)
                  ORDER BY i.line), '[]')
                FROM order_items i WHERE i.order_id = o.id),
    'shipping', CASE WHEN o.shipping_address IS NULL THEN NULL
                     ELSE json_build_object('name', o.shipping_name,
                                            'address', o.shipping_address)
                END,
    'shipments', (SELECT coalesce(json_agg(json_build_object(
                      'carrier', s.carrier, 'service', s.service,
                      'tracking_number', s.tracking_number,
                      'tracking_url', s.tracking_url,
                      'dispatched_at', s.dispatched_at,
                      'lines', (SELECT coalesce(json_agg(li.line
                                                         ORDER BY li.line),
                                                '[]')
                                  FROM lab_order_items li
                                 WHERE li.lab_order_id = lo.id))
                      ORDER BY s.dispatched_at NULLS LAST, s.id), '[]')
                    FROM shipments s
                    JOIN lab_orders lo ON lo.id = s.lab_order_id
                   WHERE lo.order_id = o.id),
    'checkout_url', CASE WHEN o.status = 'pending_payment'
                         THEN o.checkout_url END,
    'downloads', download_links_json(o.id),
    'created_at', o.created_at, 'paid_at', o.paid_at))::text
  FROM orders o WHERE o.status_token = p_token_hash;
$$;


CREATE OR REPLACE FUNCTION lab_event(p_id bigint, p_from text, p_to text, p_cause text,
                          p_detail jsonb DEFAULT '{}')
RETURNS void LANGUAGE sql AS $$
    INSERT INTO lab_order_events (lab_order_id, from_status, to_status, cause,
                                  detail)
    VALUES (p_id, p_from, p_to, p_cause, coalesce(p_detail, '{}'));
$$;


CREATE OR REPLACE FUNCTION lab_set_status(p_id bigint, p_to text, p_cause text,
                               p_detail jsonb DEFAULT '{}')
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_from text;
BEGIN
    SELECT status INTO v_from FROM lab_orders WHERE id = p_id;
    UPDATE lab_orders SET status = p_to, updated_at = now() WHERE id = p_id;
    PERFORM lab_event(p_id, v_from, p_to, p_cause, p_detail);
END $$;


-- how far along a lab order is; stages of a lab only move it forward
CREATE OR REPLACE FUNCTION lab_rank(p_status text) RETURNS int
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE p_status
        WHEN 'submitted' THEN 1 WHEN 'cancelling' THEN 1
        WHEN 'in_production' THEN 2 WHEN 'shipped' THEN 3
        ELSE 0 END;
$$;


-- The order follows its lab orders (sql/007): in production when one is,
-- shipped when every live one has shipped.  An order under review stays
-- there, whoever's news it is: what the lab reached is recorded in its
-- history, once per step and review, for the admin who decides.
CREATE OR REPLACE FUNCTION lab_sync_order(p_order bigint, p_cause text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_live     int;
    v_shipped  int;
    v_started  int;
    v_to       text;
    v_status   text;
BEGIN
    SELECT count(*),
           count(*) FILTER (WHERE status = 'shipped'),
           count(*) FILTER (WHERE status IN ('in_production', 'shipped'))
      INTO v_live, v_shipped, v_started
      FROM lab_orders
     WHERE order_id = p_order AND status NOT IN ('cancelled', 'rerouted');

    IF v_live > 0 AND v_shipped = v_live THEN
        v_to := 'shipped';
    ELSIF v_started > 0 THEN
        v_to := 'in_production';
    ELSE
        RETURN;
    END IF;

    SELECT status INTO v_status FROM orders WHERE id = p_order FOR UPDATE;

    IF v_status IS DISTINCT FROM 'needs_review' THEN
        -- a lab took the order: its customer hears so, once
        IF order_transition(p_order, v_to, p_cause)
           AND v_to = 'in_production'
        THEN
            INSERT INTO jobs (kind, payload, dedupe_key)
            VALUES ('email', jsonb_build_object('template', 'in_production',
                                                'order_id', p_order),
                    'email:in_production:' || p_order)
            ON CONFLICT (dedupe_key) DO NOTHING;
        END IF;
        RETURN;
    END IF;

    -- since the order last went into review
    INSERT INTO order_events (order_id, from_status, to_status, cause,
                              detail)
    SELECT p_order, 'needs_review', 'needs_review', p_cause,
           jsonb_build_object('lab_progress', v_to, 'applied', false,
               'why', 'the order is under review: an admin decides')
     WHERE NOT EXISTS (
           SELECT 1 FROM order_events e
            WHERE e.order_id = p_order
              AND e.detail->>'lab_progress' = v_to
              AND e.id > (SELECT coalesce(max(x.id), 0) FROM order_events x
                           WHERE x.order_id = p_order
                             AND x.to_status = 'needs_review'
                             AND x.from_status IS DISTINCT FROM
                                 'needs_review'));
END $$;


-- the lab chosen for an item: the lowest priority, then by name
CREATE OR REPLACE FUNCTION lab_for_product(p_product text, p_not text DEFAULT NULL)
RETURNS lab_products LANGUAGE sql STABLE AS $$
    SELECT * FROM lab_products
     WHERE product_id = p_product AND lab IS DISTINCT FROM p_not
     ORDER BY priority, lab LIMIT 1;
$$;


-- A lab order's idempotency key: its ids and a random part, so that ids a
-- restored or reinstalled database hands out again never name an order
-- a lab already has.
CREATE OR REPLACE FUNCTION lab_order_new(p_order bigint, p_lab text,
                                         p_status text, p_hold timestamptz,
                                         p_from bigint, p_cause text)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    v_id bigint := nextval('lab_orders_id_seq');
BEGIN
    INSERT INTO lab_orders (id, order_id, lab, status, idempotency_key,
                            hold_until, rerouted_from)
    VALUES (v_id, p_order, p_lab, p_status,
            format('darkroom-%s-%s-%s', p_order, v_id,
                   substr(replace(gen_random_uuid()::text, '-', ''), 1, 16)),
            p_hold, p_from);

    PERFORM lab_event(v_id, NULL, p_status, p_cause,
        jsonb_build_object('lab', p_lab, 'rerouted_from', p_from,
                           'hold_until', p_hold));

    INSERT INTO jobs (kind, payload, dedupe_key, run_at, max_attempts)
    VALUES ('lab_submit', jsonb_build_object('lab_order_id', v_id),
            'lab_submit:' || v_id, coalesce(greatest(p_hold, now()), now()),
            1000000)
    ON CONFLICT (dedupe_key) DO NOTHING;

    RETURN v_id;
END $$;


-- "fulfil_order" (sql/007), now choosing the lab per item (photo and
-- product): a photo without a creativehub product goes to the next lab,
-- and when there is none the order needs review with the reason.
CREATE OR REPLACE FUNCTION lab_fulfil(p_order bigint, p_delay_s int,
                                      p_cause text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    o        orders%ROWTYPE;
    v_hold   timestamptz;
    v_id     bigint;
    v_lab    text;
    v_n      int := 0;
    v_miss   text;
    r        record;
BEGIN
    SELECT * INTO o FROM orders WHERE id = p_order FOR UPDATE;
    IF NOT FOUND THEN
        RETURN 'ignored: no such order';
    END IF;

    IF EXISTS (SELECT 1 FROM lab_orders WHERE order_id = p_order) THEN
        RETURN 'ignored: already split';
    END IF;

    IF o.status <> 'paid' THEN
        RETURN 'ignored: order is ' || o.status;
    END IF;

    SELECT string_agg(DISTINCT coalesce(
                          lab_item_problem(i.photo_id, i.product_id),
                          format('No lab makes %s', i.product_id)), '; ')
      INTO v_miss
      FROM order_items i
     WHERE i.order_id = p_order AND i.kind = 'print'
       AND (lab_for_item(i.photo_id, i.product_id)).lab IS NULL;

    IF v_miss IS NOT NULL OR o.shipping_address IS NULL THEN
        UPDATE orders SET review_reason = CASE
                   WHEN v_miss IS NOT NULL THEN v_miss || '.'
                   ELSE 'The order has no shipping address.' END
         WHERE id = p_order;
        PERFORM order_transition(p_order, 'needs_review', p_cause,
            jsonb_build_object('reason', 'not fulfillable'));
        RETURN 'needs_review';
    END IF;

    v_hold := CASE WHEN p_delay_s > 0
                   THEN now() + p_delay_s * interval '1 second' END;

    FOR v_lab IN
        SELECT DISTINCT (lab_for_item(i.photo_id, i.product_id)).lab
          FROM order_items i
         WHERE i.order_id = p_order AND i.kind = 'print'
         ORDER BY 1
    LOOP
        v_id := lab_order_new(p_order, v_lab,
                              CASE WHEN v_hold IS NULL THEN 'pending'
                                   ELSE 'held' END,
                              v_hold, NULL, p_cause);

        -- a gallery line prints the gallery's original, as the client
        -- chose to size it (crop or fit)
        FOR r IN
            SELECT i.line, i.photo_id, i.product_id, i.quantity, i.sizing,
                   CASE WHEN i.gallery_photo_id IS NOT NULL
                        THEN gp.original_path ELSE ph.print_path END
                       AS print_path,
                   i.photo_id LIKE 'gallery:%' AS gallery,
                   lab_for_item(i.photo_id, i.product_id) lp,
                   lab_item_problem(i.photo_id, i.product_id) why
              FROM order_items i
              LEFT JOIN photos ph ON ph.id = i.photo_id
              LEFT JOIN gallery_photos gp ON gp.id = i.gallery_photo_id
             WHERE i.order_id = p_order AND i.kind = 'print'
               AND (ph.id IS NOT NULL OR i.photo_id LIKE 'gallery:%')
        LOOP
            CONTINUE WHEN (r.lp).lab <> v_lab;
            INSERT INTO lab_order_items (lab_order_id, line, photo_id,
                                         product_id, sku, attributes, sizing,
                                         copies, print_path, gallery)
            VALUES (v_id, r.line, r.photo_id, r.product_id, (r.lp).sku,
                    (r.lp).attributes, lab_sizing(r.sizing, (r.lp).sizing),
                    r.quantity, r.print_path, r.gallery);

            -- the first choice could not make it: say why in the history
            IF r.why IS NOT NULL THEN
                PERFORM lab_event(v_id, 'pending', 'pending', p_cause,
                    jsonb_build_object('line', r.line,
                                       'not_first_choice', r.why));
            END IF;
        END LOOP;

        v_n := v_n + 1;
    END LOOP;

    RETURN format('split into %s lab orders', v_n);
END $$;


-- sql/007's reroute, where "a lab that makes every item" also means one
-- that can make each item's photo (theprintspace: its creativehub product)
CREATE OR REPLACE FUNCTION lab_reroute(p_id bigint, p_lab text,
                                       p_cause text, p_reason text)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    lo      lab_orders%ROWTYPE;
    v_lab   text := p_lab;
    v_new   bigint;
BEGIN
    SELECT * INTO lo FROM lab_orders WHERE id = p_id FOR UPDATE;

    -- a lab that has the order (Prodigi's, or theprintspace's once
    -- confirmed: a failure state later does not undo that) keeps it
    IF NOT FOUND OR lo.status NOT IN ('held', 'pending', 'needs_attention')
       OR (lo.lab_order_id IS NOT NULL AND lo.lab = 'prodigi')
       OR lo.submitted_at IS NOT NULL
    THEN
        RETURN NULL;
    END IF;

    IF v_lab IS NULL THEN
        IF lo.rerouted_from IS NOT NULL THEN
            RETURN NULL;
        END IF;

        SELECT lp.lab INTO v_lab
          FROM lab_products lp
          JOIN lab_order_items li ON li.product_id = lp.product_id
         WHERE li.lab_order_id = p_id AND lp.lab <> lo.lab
           AND lab_cannot_make(lp, li.photo_id) IS NULL
         GROUP BY lp.lab
        HAVING count(*) = (SELECT count(*) FROM lab_order_items
                            WHERE lab_order_id = p_id)
         ORDER BY max(lp.priority), lp.lab
         LIMIT 1;

        IF v_lab IS NULL THEN
            RETURN NULL;
        END IF;
    END IF;

    IF v_lab = lo.lab OR EXISTS (
           SELECT 1 FROM lab_order_items li
            WHERE li.lab_order_id = p_id
              AND NOT EXISTS (SELECT 1 FROM lab_products lp
                               WHERE lp.product_id = li.product_id
                                 AND lp.lab = v_lab
                                 AND lab_cannot_make(lp, li.photo_id)
                                     IS NULL))
    THEN
        RETURN NULL;
    END IF;

    PERFORM lab_set_status(p_id, 'rerouted', p_cause,
        jsonb_build_object('to_lab', v_lab, 'reason', p_reason));

    UPDATE jobs SET done_at = now(), locked_until = NULL,
                    last_error = 'rerouted'
     WHERE dedupe_key IN ('lab_submit:' || p_id, 'lab_poll:' || p_id)
       AND done_at IS NULL;

    v_new := lab_order_new(lo.order_id, v_lab, 'pending', NULL, p_id,
                           p_cause);

    INSERT INTO lab_order_items (lab_order_id, line, photo_id, product_id,
                                 sku, attributes, sizing, copies, print_path,
                                 gallery)
    SELECT v_new, li.line, li.photo_id, li.product_id, lp.sku,
           lp.attributes, lab_sizing(oi.sizing, lp.sizing), li.copies,
           li.print_path, li.gallery
      FROM lab_order_items li
      JOIN lab_products lp ON lp.product_id = li.product_id
                          AND lp.lab = v_lab
      LEFT JOIN order_items oi ON oi.order_id = lo.order_id
                              AND oi.line = li.line
     WHERE li.lab_order_id = p_id;

    RETURN v_new;
END $$;


CREATE OR REPLACE FUNCTION lab_attention(p_id bigint, p_reason text, p_cause text,
                              p_detail jsonb DEFAULT '{}')
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_order bigint;
BEGIN
    UPDATE lab_orders SET last_error = p_reason WHERE id = p_id
    RETURNING order_id INTO v_order;

    PERFORM lab_set_status(p_id, 'needs_attention', p_cause,
        coalesce(p_detail, '{}') || jsonb_build_object('reason', p_reason));

    INSERT INTO jobs (kind, payload, dedupe_key)
    VALUES ('email', jsonb_build_object('template', 'shop_alert',
                                        'order_id', v_order,
                                        'lab_order_id', p_id),
            'email:alert:' || v_order || ':lab:' || p_id || ':'
            || (SELECT count(*) FROM lab_order_events
                 WHERE lab_order_id = p_id))
    ON CONFLICT (dedupe_key) DO NOTHING;
END $$;


-- sql/007's document for lab_submit, with the recipient's phone, the
-- order's ref and currency, what the customer paid per copy, and each
-- photo's creativehub product
CREATE OR REPLACE FUNCTION lab_submit_json(p_id bigint) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT json_build_object(
        'id', lo.id, 'lab', lo.lab, 'status', lo.status,
        'lab_order_id', lo.lab_order_id,
        'idempotency_key', lo.idempotency_key,
        'hold', extract(epoch FROM lo.hold_until - now())::bigint,
        'order', o.ref, 'email', o.email,
        'name', o.shipping_name, 'address', o.shipping_address,
        'phone', nullif(btrim(o.shipping_phone), ''),
        'currency', upper(o.currency),
        'shipping_method', o.shipping_method,
        'items', (SELECT json_agg(json_build_object(
                      'line', li.line, 'sku', li.sku, 'copies', li.copies,
                      'attributes', li.attributes, 'sizing', li.sizing,
                      'photo', li.photo_id, 'print', li.print_path,
                      'gallery', li.gallery,
                      'product', li.product_id,
                      'creativehub_product', ph.creativehub_product_id,
                      'creativehub_variant', (SELECT v.variant_id
                          FROM creativehub_variants v
                         WHERE v.photo_id = li.photo_id
                           AND v.product_id = li.product_id),
                      'cost', lab_decimal(oi.unit_amount, o.currency))
                      ORDER BY li.line)
                    FROM lab_order_items li
                    JOIN order_items oi ON oi.order_id = o.id
                                       AND oi.line = li.line
                    LEFT JOIN photos ph ON ph.id = li.photo_id
                   WHERE li.lab_order_id = lo.id)
    )::text
      FROM lab_orders lo JOIN orders o ON o.id = lo.order_id
     WHERE lo.id = p_id;
$$;


-- A send failed in a way worth retrying (network, timeout, 5xx, 429).
-- Returns 'retry', 'rerouted' or 'needs_attention'.
CREATE OR REPLACE FUNCTION lab_submit_failed(p_id bigint, p_error text,
                                  p_max_attempts int, p_max_seconds int,
                                  p_cause text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    lo lab_orders%ROWTYPE;
BEGIN
    UPDATE lab_orders
       SET attempts = attempts + 1, last_error = p_error,
           first_failure_at = coalesce(first_failure_at, now()),
           updated_at = now()
     WHERE id = p_id AND status IN ('pending', 'held')
    RETURNING * INTO lo;

    IF NOT FOUND THEN
        RETURN 'ignored';
    END IF;

    PERFORM lab_event(p_id, lo.status, lo.status, p_cause,
        jsonb_build_object('error', p_error, 'attempt', lo.attempts));

    IF lo.attempts < p_max_attempts
       AND (p_max_seconds <= 0
            OR now() - lo.first_failure_at
               < p_max_seconds * interval '1 second')
    THEN
        RETURN 'retry';
    END IF;

    IF lab_reroute(p_id, NULL, p_cause,
                   format('%s failed %s times: %s', lo.lab, lo.attempts,
                          p_error)) IS NOT NULL
    THEN
        RETURN 'rerouted';
    END IF;

    PERFORM lab_attention(p_id,
        format('%s failed %s times and no other lab makes these items: %s',
               lo.lab, lo.attempts, p_error), p_cause);
    RETURN 'needs_attention';
END $$;


-- The lab refused the order itself (validation): no blind retry.  p_detail
-- is the lab's answer, kept with the reason.
CREATE OR REPLACE FUNCTION lab_submit_refused(p_id bigint, p_error text,
                                   p_detail jsonb, p_cause text)
RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM lab_orders WHERE id = p_id
       AND status IN ('pending', 'held') FOR UPDATE;
    IF NOT FOUND THEN
        RETURN 'ignored';
    END IF;

    UPDATE lab_orders SET attempts = attempts + 1 WHERE id = p_id;
    PERFORM lab_attention(p_id, p_error, p_cause,
                          jsonb_build_object('answer', p_detail));
    RETURN 'needs_attention';
END $$;


-- theprintspace (earlier API): the draft now at the lab.  A retry cancels
-- a draft it cannot confirm and makes another, so the newest is recorded.
CREATE OR REPLACE FUNCTION lab_submit_draft(p_id bigint, p_lab_order_id text,
                                            p_cause text)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    UPDATE lab_orders SET lab_order_id = p_lab_order_id, updated_at = now()
     WHERE id = p_id AND lab_order_id IS DISTINCT FROM p_lab_order_id
       AND status IN ('pending', 'held', 'needs_attention');
    IF FOUND THEN
        PERFORM lab_event(p_id, 'pending', 'pending', p_cause,
            jsonb_build_object('draft', p_lab_order_id));
    END IF;
END $$;


-- The lab accepted the order.  If a refund cancelled it while it was on
-- its way, the lab order is cancelled at the lab now.
CREATE OR REPLACE FUNCTION lab_submitted(p_id bigint, p_lab_order_id text,
                              p_outcome text, p_detail jsonb, p_poll_s int,
                              p_cause text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    lo lab_orders%ROWTYPE;
BEGIN
    SELECT * INTO lo FROM lab_orders WHERE id = p_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN 'ignored: no such lab order';
    END IF;

    -- the lab's words on the order: an object, or its issues (a list)
    IF jsonb_typeof(p_detail) <> 'object' THEN
        p_detail := jsonb_build_object('issues', p_detail);
    END IF;

    UPDATE lab_orders SET lab_order_id = p_lab_order_id,
                          lab_status = p_outcome, updated_at = now(),
                          submitted_at = coalesce(submitted_at, now())
     WHERE id = p_id;

    IF lo.status = 'cancelled' THEN
        PERFORM lab_set_status(p_id, 'cancelling', p_cause,
            jsonb_build_object('lab_order_id', p_lab_order_id,
                               'reason', 'cancelled while being sent'));
        INSERT INTO jobs (kind, payload, dedupe_key)
        VALUES ('lab_cancel', jsonb_build_object('lab_order_id', p_id),
                'lab_cancel:' || p_id)
        ON CONFLICT (dedupe_key) DO NOTHING;
        RETURN 'cancelling';
    END IF;

    IF lo.status NOT IN ('pending', 'held', 'needs_attention') THEN
        RETURN 'ignored: lab order is ' || lo.status;
    END IF;

    UPDATE lab_orders SET last_error = CASE
               WHEN lower(p_outcome) IN ('onhold', 'createdwithissues')
               THEN p_outcome || ': ' || coalesce(p_detail::text, '')
               END
     WHERE id = p_id;

    PERFORM lab_set_status(p_id, 'submitted', p_cause,
        jsonb_build_object('lab_order_id', p_lab_order_id,
                           'outcome', p_outcome)
        || coalesce(p_detail, '{}'));

    INSERT INTO jobs (kind, payload, dedupe_key, run_at, max_attempts)
    VALUES ('lab_poll', jsonb_build_object('lab_order_id', p_id),
            'lab_poll:' || p_id, now() + p_poll_s * interval '1 second',
            1000000)
    ON CONFLICT (dedupe_key) DO NOTHING;

    RETURN 'submitted';
END $$;


CREATE OR REPLACE FUNCTION lab_apply(p_id bigint, p_stage text,
                                     p_lab_status text, p_shipments jsonb,
                                     p_cause text)
RETURNS text LANGUAGE sql AS $$
    SELECT lab_apply(p_id, p_stage, p_lab_status, p_shipments, p_cause,
                     NULL::text);
$$;


-- The lab answered a cancel (sql/007).  A refund's cancel it refused
-- (production started) needs a person: the order is paid back but printed.
CREATE OR REPLACE FUNCTION lab_cancel_result(p_id bigint, p_result text,
                                             p_detail text, p_cause text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    lo lab_orders%ROWTYPE;
BEGIN
    SELECT * INTO lo FROM lab_orders WHERE id = p_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;

    IF p_result = 'cancelled' THEN
        RETURN lab_apply(p_id, 'cancelled', 'Cancelled', '[]', p_cause);
    END IF;

    IF lo.cancel_requested_at IS NOT NULL THEN
        PERFORM lab_attention(p_id,
            format('Refunded, but %s refused to cancel (%s): it is being '
                   'made. Cancel it at the lab by hand, or resolve it here '
                   'to let it ship.', lo.lab, p_detail), p_cause,
            jsonb_build_object('cancel_refused', p_detail));
        RETURN 'refused';
    END IF;

    IF lo.status = 'cancelling' THEN
        PERFORM lab_set_status(p_id, 'submitted', p_cause,
            jsonb_build_object('cancel_refused', p_detail));
    ELSE
        PERFORM lab_event(p_id, lo.status, lo.status, p_cause,
            jsonb_build_object('cancel_refused', p_detail));
    END IF;

    RETURN 'refused';
END $$;


-- Cancel a lab order (sql/007): at once only if no lab has it, which for
-- theprintspace means never confirmed (submitted_at); a confirmed one in
-- needs_attention (PaymentFailed, say) is still at the lab, so it goes
-- through lab_cancel like any sent order.
CREATE OR REPLACE FUNCTION lab_cancel(p_id bigint, p_cause text,
                                      p_reason text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    lo lab_orders%ROWTYPE;
BEGIN
    SELECT * INTO lo FROM lab_orders WHERE id = p_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;

    IF lo.status IN ('held', 'pending', 'needs_attention')
       AND lo.submitted_at IS NULL
       AND (lo.lab_order_id IS NULL OR lo.lab = 'printspace')
    THEN
        PERFORM lab_set_status(p_id, 'cancelled', p_cause,
                               jsonb_build_object('reason', p_reason));
        UPDATE jobs SET done_at = now(), locked_until = NULL,
                        last_error = 'cancelled'
         WHERE dedupe_key = 'lab_submit:' || p_id AND done_at IS NULL
           AND (locked_until IS NULL OR locked_until < now());
        RETURN 'cancelled';
    END IF;

    IF lo.status IN ('submitted', 'needs_attention') THEN
        PERFORM lab_set_status(p_id, 'cancelling', p_cause,
                               jsonb_build_object('reason', p_reason));
        INSERT INTO jobs (kind, payload, dedupe_key)
        VALUES ('lab_cancel', jsonb_build_object('lab_order_id', p_id),
                'lab_cancel:' || p_id)
        ON CONFLICT (dedupe_key) DO UPDATE
           SET done_at = NULL, dead = false, attempts = 0, run_at = now()
         WHERE jobs.locked_until IS NULL OR jobs.locked_until < now();
        RETURN 'cancelling';
    END IF;

    IF lo.status = 'cancelling' THEN
        RETURN 'cancelling';
    END IF;

    PERFORM lab_event(p_id, lo.status, lo.status, p_cause,
        jsonb_build_object('not_cancelled', p_reason,
                           'because', 'lab order is ' || lo.status));
    RETURN 'ignored: lab order is ' || lo.status;
END $$;


-- A refund cancels what can still be cancelled (sql/007); every lab order
-- it touches is marked, and one already in production is flagged for a
-- person at once: health and the shop alert count it.
CREATE OR REPLACE FUNCTION lab_orders_on_refund() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_id      bigint;
    v_result  text;
BEGIN
    FOR v_id IN SELECT id FROM lab_orders
                 WHERE order_id = NEW.id
                   AND status NOT IN ('cancelled', 'rerouted', 'shipped')
                 ORDER BY id
    LOOP
        UPDATE lab_orders SET cancel_requested_at = now() WHERE id = v_id;
        v_result := lab_cancel(v_id, 'refund', 'order refunded');

        IF v_result LIKE 'ignored%' THEN
            PERFORM lab_attention(v_id,
                'Refunded, but the lab is already making it: cancel it at '
                || 'the lab by hand, or resolve it here to let it ship.',
                'refund');
        END IF;
    END LOOP;

    -- shipped ones: nothing to stop, the history says so (sql/007)
    FOR v_id IN SELECT id FROM lab_orders
                 WHERE order_id = NEW.id AND status = 'shipped'
    LOOP
        PERFORM lab_cancel(v_id, 'refund', 'order refunded');
    END LOOP;

    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS lab_orders_refund ON orders;
CREATE TRIGGER lab_orders_refund
    AFTER UPDATE OF status ON orders
    FOR EACH ROW
    WHEN (NEW.status = 'refunded' AND OLD.status IS DISTINCT FROM 'refunded')
    EXECUTE FUNCTION lab_orders_on_refund();


-- Admin: a lab order sent again now, with a fresh count of attempts
CREATE OR REPLACE FUNCTION lab_admin_retry(p_id bigint) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    lo    lab_orders%ROWTYPE;
    v_kind text;
BEGIN
    SELECT * INTO lo FROM lab_orders WHERE id = p_id FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM darkroom_refuse(404, 'not_found',
                                'There is no such lab order.');
    END IF;

    IF lo.status IN ('held', 'pending')
       OR (lo.status = 'needs_attention' AND lo.lab_order_id IS NULL)
       OR (lo.status = 'needs_attention' AND lo.lab = 'printspace'
           AND lo.submitted_at IS NULL)
    THEN
        v_kind := 'lab_submit';
        UPDATE lab_orders SET attempts = 0, first_failure_at = NULL,
                              hold_until = NULL
         WHERE id = p_id;
        IF lo.status <> 'pending' THEN
            PERFORM lab_set_status(p_id, 'pending', 'admin',
                                   jsonb_build_object('action', 'retry'));
        ELSE
            PERFORM lab_event(p_id, 'pending', 'pending', 'admin',
                              jsonb_build_object('action', 'retry'));
        END IF;
    ELSIF lo.status IN ('submitted', 'in_production', 'needs_attention')
    THEN
        v_kind := 'lab_poll';
        PERFORM lab_event(p_id, lo.status, lo.status, 'admin',
                          jsonb_build_object('action', 'refresh'));
    ELSIF lo.status = 'cancelling' THEN
        v_kind := 'lab_cancel';
    ELSE
        PERFORM darkroom_refuse(409, 'invalid_state',
            format('A lab order that is %s cannot be retried.', lo.status));
    END IF;

    INSERT INTO jobs (kind, payload, dedupe_key, max_attempts)
    VALUES (v_kind, jsonb_build_object('lab_order_id', p_id),
            v_kind || ':' || p_id,
            CASE WHEN v_kind = 'lab_cancel' THEN 10 ELSE 1000000 END)
    ON CONFLICT (dedupe_key) DO UPDATE
       SET done_at = NULL, dead = false, attempts = 0, run_at = now(),
           last_error = NULL
     WHERE jobs.locked_until IS NULL OR jobs.locked_until < now();

    RETURN lab_admin_order_json(p_id);
END $$;


CREATE OR REPLACE FUNCTION lab_admin_reroute(p_id bigint, p_lab text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    v_new bigint;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM lab_orders WHERE id = p_id) THEN
        PERFORM darkroom_refuse(404, 'not_found',
                                'There is no such lab order.');
    END IF;

    IF p_lab IS NOT NULL AND p_lab NOT IN ('prodigi', 'printspace') THEN
        PERFORM darkroom_refuse(400, 'invalid_lab',
                                'The lab is "prodigi" or "printspace".');
    END IF;

    v_new := lab_reroute(p_id, coalesce(p_lab, (
                 SELECT lp.lab FROM lab_products lp
                   JOIN lab_order_items li ON li.product_id = lp.product_id
                   JOIN lab_orders lo ON lo.id = li.lab_order_id
                  WHERE li.lab_order_id = p_id AND lp.lab <> lo.lab
                  ORDER BY lp.priority LIMIT 1)), 'admin', 'admin');

    IF v_new IS NULL THEN
        PERFORM darkroom_refuse(409, 'not_reroutable',
            'Only a lab order not yet accepted by its lab can be rerouted, '
            'to another lab that makes every item.');
    END IF;

    RETURN lab_admin_order_json(v_new);
END $$;


CREATE OR REPLACE FUNCTION lab_admin_cancel(p_id bigint) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    v_result text;
BEGIN
    v_result := lab_cancel(p_id, 'admin', 'cancelled by admin');
    IF v_result IS NULL THEN
        PERFORM darkroom_refuse(404, 'not_found',
                                'There is no such lab order.');
    END IF;
    IF v_result LIKE 'ignored%' THEN
        PERFORM darkroom_refuse(409, 'invalid_state',
            'This lab order can no longer be cancelled: '
            || substr(v_result, 10) || '.');
    END IF;
    RETURN lab_admin_order_json(p_id);
END $$;


CREATE OR REPLACE FUNCTION lab_order_json(lo lab_orders, p_full boolean) RETURNS json
LANGUAGE sql STABLE AS $$
    SELECT json_build_object(
        'id', lo.id, 'order', o.ref, 'order_status', o.status,
        'lab', lo.lab, 'status', lo.status,
        'lab_order_id', lo.lab_order_id, 'lab_status', lo.lab_status,
        'idempotency_key', lo.idempotency_key,
        'attempts', lo.attempts, 'last_error', lo.last_error,
        'first_failure_at', lo.first_failure_at,
        'hold_until', lo.hold_until, 'rerouted_from', lo.rerouted_from,
        'rerouted_to', (SELECT min(n.id) FROM lab_orders n
                         WHERE n.rerouted_from = lo.id),
        'created_at', lo.created_at, 'updated_at', lo.updated_at,
        'submitted_at', lo.submitted_at,
        'items', (SELECT coalesce(json_agg(json_build_object(
                      'line', li.line, 'photo', li.photo_id,
                      'product', li.product_id, 'sku', li.sku,
                      'attributes', li.attributes, 'copies', li.copies,
                      'sizing', li.sizing, 'gallery', li.gallery)
                      ORDER BY li.line), '[]')
                    FROM lab_order_items li WHERE li.lab_order_id = lo.id),
        'shipments', (SELECT coalesce(json_agg(json_build_object(
                      'id', s.lab_shipment_id, 'carrier', s.carrier,
                      'service', s.service,
                      'tracking_number', s.tracking_number,
                      'tracking_url', s.tracking_url,
                      'dispatched_at', s.dispatched_at, 'items', s.items)
                      ORDER BY s.id), '[]')
                        FROM shipments s WHERE s.lab_order_id = lo.id),
        'history', CASE WHEN p_full THEN
                      (SELECT coalesce(json_agg(json_build_object(
                           'from', e.from_status, 'to', e.to_status,
                           'cause', e.cause, 'detail', e.detail,
                           'at', e.created_at) ORDER BY e.id), '[]')
                         FROM lab_order_events e
                        WHERE e.lab_order_id = lo.id) END,
        'jobs', CASE WHEN p_full THEN
                      (SELECT coalesce(json_agg(json_build_object(
                           'id', j.id, 'kind', j.kind,
                           'attempts', j.attempts, 'dead', j.dead,
                           'done', j.done_at IS NOT NULL,
                           'last_error', j.last_error, 'run_at', j.run_at)
                           ORDER BY j.id), '[]')
                         FROM jobs j
                        WHERE j.payload->>'lab_order_id' = lo.id::text) END)
      FROM orders o WHERE o.id = lo.order_id;
$$;


CREATE OR REPLACE FUNCTION lab_admin_order_json(p_id bigint) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT lab_order_json(lo, true)::text FROM lab_orders lo
     WHERE lo.id = p_id;
$$;


-- stuck: failing to reach its lab, a cancel not answered, or no news from
-- the lab for a week
CREATE OR REPLACE FUNCTION lab_stuck(lo lab_orders) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT (lo.status IN ('pending', 'held') AND lo.attempts > 0)
        OR (lo.status = 'cancelling'
            AND lo.updated_at < now() - interval '1 hour')
        OR (lo.status IN ('submitted', 'in_production')
            AND lo.updated_at < now() - interval '7 days');
$$;


CREATE OR REPLACE FUNCTION lab_health(OUT stuck bigint, OUT failed bigint)
LANGUAGE sql STABLE AS $$
    SELECT count(*) FILTER (WHERE lab_stuck(lo)),
           count(*) FILTER (WHERE lo.status = 'needs_attention')
      FROM lab_orders lo
     WHERE lo.status NOT IN ('shipped', 'cancelled', 'rerouted');
$$;


-- p_status: a status, or 'attention' (needs_attention), 'stuck', 'open';
-- p_limit: 1 to 1000 (100 when NULL)
CREATE OR REPLACE FUNCTION lab_admin_list_json(p_status text, p_order text,
                                    p_limit int)
RETURNS text LANGUAGE sql STABLE AS $$
    SELECT json_build_object('lab_orders', coalesce(json_agg(
               lab_order_json(lo, true) ORDER BY lo.id DESC), '[]'),
               'totals', (SELECT row_to_json(h) FROM lab_health() h))::text
      FROM (SELECT lo.* FROM lab_orders lo
              JOIN orders o ON o.id = lo.order_id
             WHERE (p_order IS NULL OR o.ref = p_order)
               AND CASE coalesce(p_status, 'all')
                   WHEN 'all' THEN true
                   WHEN 'attention' THEN lo.status = 'needs_attention'
                   WHEN 'stuck' THEN lab_stuck(lo)
                   WHEN 'open' THEN lo.status NOT IN ('shipped', 'cancelled',
                                                      'rerouted')
                   ELSE lo.status = p_status END
             ORDER BY lo.id DESC
             LIMIT least(greatest(coalesce(p_limit, 100), 1), 1000)) lo;
$$;


-- Why a lab cannot make an item (NULL: it can).  theprintspace prints a
-- photo only as its creativehub product: for the current API a variant of
-- it (creativehub_variants), for the earlier one the product id
-- (photos.creativehub_product_id) in a print option of the darkroom
-- product (lab_products.attributes.PrintOptionId).
CREATE OR REPLACE FUNCTION lab_cannot_make(lp lab_products, p_photo text)
RETURNS text LANGUAGE sql STABLE AS $$
    SELECT CASE
        WHEN lp.lab IS NULL THEN 'no lab makes it'
        WHEN lp.lab <> 'printspace' THEN NULL
        WHEN p_photo LIKE 'gallery:%'
        THEN 'theprintspace prints only the shop''s photos that have a '
             'creativehub product, not gallery photos'
        WHEN EXISTS (SELECT 1 FROM creativehub_variants v
                      WHERE v.photo_id = p_photo
                        AND v.product_id = lp.product_id) THEN NULL
        WHEN (SELECT creativehub_product_id FROM photos
               WHERE id = p_photo) IS NOT NULL
             AND jsonb_typeof(lp.attributes->'PrintOptionId') = 'number'
        THEN NULL
        WHEN (SELECT creativehub_product_id FROM photos
               WHERE id = p_photo) IS NOT NULL
        THEN format('theprintspace needs the creativehub print option of '
                    '%s (lab_products.attributes.PrintOptionId)',
                    lp.product_id)
        ELSE format('theprintspace needs the creativehub product id of '
                    'photo %s (creativehub_variants for %s, or '
                    'photos.creativehub_product_id for the earlier API)',
                    p_photo, lp.product_id)
        END;
$$;


-- A line's sizing at a lab: the client's crop or fit (order_items.sizing,
-- a gallery line whose ratio differs from the print's) as Prodigi's
-- fillPrintArea or fitPrintArea; none, the lab mapping's own.
CREATE OR REPLACE FUNCTION lab_sizing(p_sizing text, p_lab_sizing text)
RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE p_sizing WHEN 'crop' THEN 'fillPrintArea'
                         WHEN 'fit' THEN 'fitPrintArea'
                         ELSE coalesce(p_lab_sizing, 'fillPrintArea') END;
$$;


-- the lab chosen for an item: the lowest priority that can make it
CREATE OR REPLACE FUNCTION lab_for_item(p_photo text, p_product text,
                                        p_not text DEFAULT NULL)
RETURNS lab_products LANGUAGE sql STABLE AS $$
    SELECT * FROM lab_products lp
     WHERE lp.product_id = p_product AND lp.lab IS DISTINCT FROM p_not
       AND lab_cannot_make(lp, p_photo) IS NULL
     ORDER BY lp.priority, lp.lab LIMIT 1;
$$;


-- why the first lab of a product cannot make the item (NULL: it can, or
-- no lab is mapped)
CREATE OR REPLACE FUNCTION lab_item_problem(p_photo text, p_product text)
RETURNS text LANGUAGE sql STABLE AS $$
    SELECT lab_cannot_make(lp, p_photo)
      FROM lab_products lp WHERE lp.product_id = p_product
     ORDER BY lp.priority, lp.lab LIMIT 1;
$$;


-- an amount in minor units as the decimal the labs want ("120.00")
CREATE OR REPLACE FUNCTION lab_decimal(p_amount bigint, p_currency text)
RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN upper(p_currency) IN ('BIF', 'CLP', 'DJF', 'GNF', 'JPY',
                                           'KMF', 'KRW', 'MGA', 'PYG', 'RWF',
                                           'UGX', 'VND', 'VUV', 'XAF', 'XOF',
                                           'XPF')
                THEN p_amount::text
                ELSE to_char(p_amount / 100.0, 'FM999999999990.00') END;
$$;


-- The parcels a lab reports (sql/007's part of lab_apply): each new or
-- changed one recorded, with its history event and, once it has a tracking
-- number, the customer's "shipped" email.
CREATE OR REPLACE FUNCTION lab_apply_shipments(lo lab_orders,
                                               p_shipments jsonb,
                                               p_cause text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_sid       bigint;
    v_tracking  text;
    s           jsonb;
BEGIN
    FOR s IN SELECT * FROM jsonb_array_elements(coalesce(p_shipments, '[]'))
    LOOP
        CONTINUE WHEN coalesce(s->>'id', '') = '';

        INSERT INTO shipments AS x (lab_order_id, lab_shipment_id, carrier,
                                    service, tracking_number, tracking_url,
                                    dispatched_at, items)
        VALUES (lo.id, s->>'id', s->>'carrier', s->>'service',
                s->>'tracking_number', s->>'tracking_url',
                (s->>'dispatched_at')::timestamptz,
                coalesce(s->'items', '[]'))
        ON CONFLICT (lab_order_id, lab_shipment_id) DO UPDATE
           SET carrier = coalesce(EXCLUDED.carrier, x.carrier),
               service = coalesce(EXCLUDED.service, x.service),
               tracking_number = coalesce(EXCLUDED.tracking_number,
                                          x.tracking_number),
               tracking_url = coalesce(EXCLUDED.tracking_url, x.tracking_url),
               dispatched_at = coalesce(EXCLUDED.dispatched_at,
                                        x.dispatched_at),
               items = EXCLUDED.items, updated_at = now()
         WHERE (x.carrier, x.service, x.tracking_number, x.tracking_url,
                x.dispatched_at, x.items)
               IS DISTINCT FROM
               (coalesce(EXCLUDED.carrier, x.carrier),
                coalesce(EXCLUDED.service, x.service),
                coalesce(EXCLUDED.tracking_number, x.tracking_number),
                coalesce(EXCLUDED.tracking_url, x.tracking_url),
                coalesce(EXCLUDED.dispatched_at, x.dispatched_at),
                EXCLUDED.items)
        RETURNING x.id, x.tracking_number INTO v_sid, v_tracking;

        IF FOUND THEN
            PERFORM lab_event(lo.id, lo.status, lo.status, p_cause,
                jsonb_build_object('shipment', s));

            IF coalesce(v_tracking, '') <> '' THEN
                INSERT INTO jobs (kind, payload, dedupe_key)
                VALUES ('email', jsonb_build_object('template', 'shipped',
                            'order_id', lo.order_id, 'shipment_id', v_sid),
                        'email:shipped:' || v_sid)
                ON CONFLICT (dedupe_key) DO NOTHING;
            END IF;
        END IF;
    END LOOP;
END $$;


-- What a lab says about an order now (sql/007), with two more cases:
-- p_stage 'attention' (the lab reports a failure: p_reason says which)
-- asks for a person, once per reason; and a lab order a refund could not
-- stop (cancel_requested_at) stays flagged whatever the lab says next,
-- short of cancelled, until an admin resolves it.
CREATE OR REPLACE FUNCTION lab_apply(p_id bigint, p_stage text,
                                     p_lab_status text, p_shipments jsonb,
                                     p_cause text, p_reason text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    lo          lab_orders%ROWTYPE;
    v_to        text;
BEGIN
    SELECT * INTO lo FROM lab_orders WHERE id = p_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;

    PERFORM lab_apply_shipments(lo, p_shipments, p_cause);

    IF p_lab_status IS DISTINCT FROM lo.lab_status THEN
        UPDATE lab_orders SET lab_status = p_lab_status, updated_at = now()
         WHERE id = p_id;
    END IF;

    v_to := lo.status;

    IF lo.status IN ('cancelled', 'rerouted') THEN
        NULL;
    ELSIF p_stage = 'cancelled' THEN
        IF lo.status <> 'shipped' THEN
            v_to := 'cancelled';
        END IF;
    ELSIF lo.cancel_requested_at IS NOT NULL
          AND lo.status = 'needs_attention'
    THEN
        -- refunded: a person decides, not the lab's next news; a failure
        -- state the lab repeats must not replace "cancel it by hand"
        NULL;
    ELSIF p_stage = 'attention' THEN
        IF lo.status IN ('submitted', 'in_production', 'needs_attention')
           AND (lo.status <> 'needs_attention'
                OR lo.last_error IS DISTINCT FROM p_reason)
        THEN
            PERFORM lab_attention(p_id, p_reason, p_cause,
                jsonb_build_object('lab_status', p_lab_status));
            PERFORM lab_sync_order(lo.order_id, p_cause);
            RETURN 'needs_attention';
        END IF;
    ELSIF lab_rank(p_stage) > lab_rank(lo.status)
          OR (lo.status = 'needs_attention' AND lab_rank(p_stage) > 0)
    THEN
        v_to := p_stage;
    END IF;

    IF v_to <> lo.status THEN
        PERFORM lab_set_status(p_id, v_to, p_cause,
            jsonb_build_object('lab_status', p_lab_status));
        IF v_to = 'cancelled' THEN
            UPDATE jobs SET done_at = now(), locked_until = NULL,
                            last_error = 'cancelled'
             WHERE dedupe_key IN ('lab_submit:' || p_id, 'lab_poll:' || p_id)
               AND done_at IS NULL;
        END IF;
    END IF;

    PERFORM lab_sync_order(lo.order_id, p_cause);

    RETURN v_to;
END $$;


-- Admin: a refunded lab order the lab could not stop is let go on (the
-- person cancelled it at the lab, or accepts it ships): the flag goes and
-- it is followed at its lab again.
CREATE OR REPLACE FUNCTION lab_admin_resolve(p_id bigint) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    lo lab_orders%ROWTYPE;
BEGIN
    SELECT * INTO lo FROM lab_orders WHERE id = p_id FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM darkroom_refuse(404, 'not_found',
                                'There is no such lab order.');
    END IF;

    IF lo.status <> 'needs_attention' OR lo.lab_order_id IS NULL THEN
        PERFORM darkroom_refuse(409, 'invalid_state',
            'Only a lab order its lab has and that needs attention can be '
            'resolved.');
    END IF;

    UPDATE lab_orders SET cancel_requested_at = NULL WHERE id = p_id;
    PERFORM lab_event(p_id, lo.status, lo.status, 'admin',
        jsonb_build_object('action', 'resolve',
                           'cancel_requested_at', lo.cancel_requested_at));

    RETURN lab_admin_retry(p_id);
END $$;


-- A lab with no cancel API (theprintspace) was asked to cancel (a refund
-- or the admin): a person must do it at the lab, so the lab order is
-- flagged like a refund's (cancel_requested_at) and lab_apply keeps it so,
-- whatever the lab says next, until it is resolved.
CREATE OR REPLACE FUNCTION lab_cancel_by_hand(p_id bigint, p_reason text,
                                              p_cause text)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    UPDATE lab_orders SET cancel_requested_at = coalesce(cancel_requested_at,
                                                         now())
     WHERE id = p_id;
    PERFORM lab_attention(p_id, p_reason, p_cause);
END $$;


-- Where an order under review goes when an admin says "carry on": the
-- state its live lab orders reached meanwhile (lab_sync_order recorded
-- it, without moving the order), else paid.
CREATE OR REPLACE FUNCTION order_lab_progress(p_order bigint)
RETURNS text LANGUAGE sql STABLE AS $$
    SELECT CASE
        WHEN count(*) > 0 AND count(*) FILTER (WHERE status = 'shipped')
                              = count(*) THEN 'shipped'
        WHEN count(*) FILTER (WHERE status IN ('in_production', 'shipped'))
             > 0 THEN 'in_production'
        END
      FROM lab_orders
     WHERE order_id = p_order AND status NOT IN ('cancelled', 'rerouted');
$$;


-- The lab order a callback or a poll follows: its lab, the lab's id for
-- it (NULL: not sent yet), its status, the API it was sent through and
-- the lab's last word.  No row: no such lab order.
CREATE OR REPLACE FUNCTION lab_follow(p_id bigint)
RETURNS TABLE (lab text, lab_order_id text, status text, lab_api text,
               lab_status text)
LANGUAGE sql STABLE AS $$
    SELECT lo.lab, lo.lab_order_id, lo.status, lo.lab_api, lo.lab_status
      FROM lab_orders lo WHERE lo.id = p_id;
$$;


-- A lab order a "lab_cancel" job is to cancel at its lab: its lab and the
-- lab's id for it.  No row: nothing to cancel there (never sent, or no
-- longer being cancelled).
CREATE OR REPLACE FUNCTION lab_cancel_target(p_id bigint)
RETURNS TABLE (lab text, lab_order_id text)
LANGUAGE sql STABLE AS $$
    SELECT lo.lab, lo.lab_order_id FROM lab_orders lo
     WHERE lo.id = p_id AND lo.status = 'cancelling'
       AND lo.lab_order_id IS NOT NULL;
$$;


-- The API of a lab with more than one (theprintspace: 'escher' or
-- 'legacy') a lab order is sent through, recorded before its first send
-- and kept: returns the one it has (NULL: no such lab order).
CREATE OR REPLACE FUNCTION lab_api_stamp(p_id bigint, p_api text)
RETURNS text LANGUAGE sql AS $$
    UPDATE lab_orders SET lab_api = coalesce(lab_api, p_api)
     WHERE id = p_id RETURNING lab_api;
$$;


-- A lab's callback could not be followed now (the lab unreachable): the
-- lab order's poll job runs at once instead.
CREATE OR REPLACE FUNCTION lab_poll_soon(p_id bigint)
RETURNS void LANGUAGE sql AS $$
    UPDATE jobs SET run_at = now()
     WHERE dedupe_key = 'lab_poll:' || p_id AND done_at IS NULL;
$$;


-- ---------------------------------------------------------------------
-- The product-to-lab mapping (lab_products) for the lab admin API:
-- GET products, POST products/<id> (one lab's row), DELETE
-- products/<id>/<lab>.  What a change means: a lab order takes its SKU,
-- attributes and sizing from here when an order is split (lab_fulfil) or
-- rerouted (lab_reroute) and keeps its copy (lab_order_items), so a change
-- reaches the next order, never one already split.

CREATE OR REPLACE FUNCTION lab_product_json(p products) RETURNS json
LANGUAGE sql STABLE AS $$
    SELECT json_build_object(
        'id', p.id, 'name', p.name, 'kind', p.kind, 'active', p.active,
        'labs', (SELECT coalesce(json_agg(json_build_object(
                     'lab', lp.lab, 'sku', lp.sku,
                     'attributes', lp.attributes, 'sizing', lp.sizing,
                     'priority', lp.priority)
                     ORDER BY lp.priority, lp.lab), '[]')
                   FROM lab_products lp WHERE lp.product_id = p.id));
$$;


CREATE OR REPLACE FUNCTION lab_products_admin_json() RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT json_build_object(
        'products', coalesce((SELECT json_agg(lab_product_json(p)
                                  ORDER BY p.kind DESC, p.id)
                                FROM products p), '[]'),
        'labs', json_build_array('prodigi', 'printspace'),
        'sizings', json_build_array('fillPrintArea', 'fitPrintArea',
                                    'stretchToPrintArea'))::text;
$$;


-- the product a mapping change is about: 404 if unknown; a digital
-- product is never made by a lab
CREATE OR REPLACE FUNCTION lab_product_target(p_product text)
RETURNS products LANGUAGE plpgsql AS $$
DECLARE
    p  products%ROWTYPE;
BEGIN
    SELECT * INTO p FROM products WHERE id = p_product FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM darkroom_refuse(404, 'not_found',
                                'There is no such product.');
    END IF;
    IF p.kind <> 'print' THEN
        PERFORM darkroom_refuse(400, 'digital_product',
            format('%s is a digital product: no lab makes it.', p.id));
    END IF;
    RETURN p;
END $$;


CREATE OR REPLACE FUNCTION lab_product_check_lab(p_lab jsonb)
RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF jsonb_typeof(p_lab) IS DISTINCT FROM 'string'
       OR p_lab #>> '{}' NOT IN ('prodigi', 'printspace')
    THEN
        PERFORM darkroom_refuse(400, 'bad_lab',
                                'The lab is "prodigi" or "printspace".');
    END IF;
    RETURN p_lab #>> '{}';
END $$;


-- the fields of a row given in a body; each one given must be valid
CREATE OR REPLACE FUNCTION lab_product_check(p_body jsonb)
RETURNS void LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF p_body ? 'sku' AND (jsonb_typeof(p_body->'sku') <> 'string'
                          OR length(p_body->>'sku') NOT BETWEEN 1 AND 100
                          OR p_body->>'sku' <> btrim(p_body->>'sku'))
    THEN
        PERFORM darkroom_refuse(400, 'bad_sku',
            'The SKU is the lab''s code for the product: 1 to 100 '
            'characters, without spaces around it.');
    END IF;
    IF p_body ? 'attributes' AND jsonb_typeof(p_body->'attributes')
                                 <> 'object'
    THEN
        PERFORM darkroom_refuse(400, 'bad_attributes',
            'The attributes are a JSON object, {} for none '
            '(e.g. {"PrintOptionId": 104} or {"wrap": "MirrorWrap"}).');
    END IF;
    IF p_body ? 'sizing' AND (jsonb_typeof(p_body->'sizing') <> 'string'
        OR p_body->>'sizing' NOT IN ('fillPrintArea', 'fitPrintArea',
                                     'stretchToPrintArea'))
    THEN
        PERFORM darkroom_refuse(400, 'bad_sizing',
            'The sizing is "fillPrintArea", "fitPrintArea" or '
            '"stretchToPrintArea".');
    END IF;
    IF p_body ? 'priority' AND (jsonb_typeof(p_body->'priority') <> 'number'
        OR (p_body->>'priority') !~ '^-?[0-9]{1,6}$')
    THEN
        PERFORM darkroom_refuse(400, 'bad_priority',
            'The priority is a whole number from -999999 to 999999 '
            '(the lowest is tried first).');
    END IF;
END $$;


-- POST products/<id> {"lab","sku","attributes","sizing","priority"}: one
-- lab's row, created (sku needed) or changed (fields left out are kept;
-- new: attributes {}, fillPrintArea, priority 1).  Answers the product.
CREATE OR REPLACE FUNCTION lab_product_upsert(p_product text, p_body jsonb)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    p      products%ROWTYPE;
    v_lab  text;
BEGIN
    p := lab_product_target(p_product);
    IF jsonb_typeof(p_body) IS DISTINCT FROM 'object' THEN
        PERFORM darkroom_refuse(400, 'invalid_json',
                                'The body must be a JSON object.');
    END IF;
    v_lab := lab_product_check_lab(p_body->'lab');
    PERFORM lab_product_check(p_body);

    UPDATE lab_products
       SET sku = coalesce(p_body->>'sku', sku),
           attributes = coalesce(p_body->'attributes', attributes),
           sizing = coalesce(p_body->>'sizing', sizing),
           priority = coalesce((p_body->>'priority')::int, priority)
     WHERE product_id = p.id AND lab = v_lab;

    IF NOT FOUND THEN
        IF NOT p_body ? 'sku' THEN
            PERFORM darkroom_refuse(400, 'bad_sku',
                format('Give the SKU %s has at %s.', p.id, v_lab));
        END IF;
        INSERT INTO lab_products (product_id, lab, sku, attributes, sizing,
                                  priority)
        VALUES (p.id, v_lab, p_body->>'sku',
                coalesce(p_body->'attributes', '{}'),
                coalesce(p_body->>'sizing', 'fillPrintArea'),
                coalesce((p_body->>'priority')::int, 1));
    END IF;

    RETURN lab_product_json(p)::text;
END $$;


-- DELETE products/<id>/<lab>.  Refused (409) for the last lab of a print
-- product on sale: its next paid order would wait for review ("No lab
-- makes ...").  Open lab orders keep the row they were made with; the
-- answer warns that those not yet at a lab can no longer be rerouted to
-- this one.
CREATE OR REPLACE FUNCTION lab_product_delete(p_product text, p_lab text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    p       products%ROWTYPE;
    v_lab   text;
    v_open  bigint;
    v_json  jsonb;
BEGIN
    p := lab_product_target(p_product);
    v_lab := lab_product_check_lab(to_jsonb(p_lab));

    IF NOT EXISTS (SELECT 1 FROM lab_products
                    WHERE product_id = p.id AND lab = v_lab)
    THEN
        PERFORM darkroom_refuse(404, 'not_found',
            format('%s is not mapped to %s.', p.id, v_lab));
    END IF;

    IF p.active AND NOT EXISTS (SELECT 1 FROM lab_products
                                 WHERE product_id = p.id AND lab <> v_lab)
    THEN
        PERFORM darkroom_refuse(409, 'last_lab',
            format('%s is on sale and %s is the only lab that makes it: '
                   'add another lab first, or take the product off sale '
                   'in the catalogue.', p.id, v_lab));
    END IF;

    DELETE FROM lab_products WHERE product_id = p.id AND lab = v_lab;

    SELECT count(DISTINCT lo.id) INTO v_open
      FROM lab_orders lo
      JOIN lab_order_items li ON li.lab_order_id = lo.id
     WHERE li.product_id = p.id
       AND lo.status NOT IN ('shipped', 'cancelled', 'rerouted');

    v_json := lab_product_json(p)::jsonb;
    IF v_open > 0 THEN
        v_json := v_json || jsonb_build_object('warning', format(
            '%s open lab order(s) have %s: they keep the lab and SKU they '
            'were made with, but can no longer be rerouted to %s.',
            v_open, p.id, v_lab));
    END IF;
    RETURN v_json::text;
END $$;
