-- Review fixes on the money path.
--
-- * Only an admin takes an order out of needs_review (or a refund, which
--   the shop makes through Stripe): order_transition refuses every other
--   exit, whoever calls it.  A lab's progress on an order under review is
--   recorded in the order's history instead of moving it; the lab order
--   itself still follows its lab.
-- * A payment writes paid_amount and paid_currency once, but always keeps
--   the shipping name, address and phone and the payment intent: a
--   partial refund seen first (it fills paid_amount) no longer loses them.
-- * A payment for a cancelled or expired order puts it in review, with the
--   reason, and tells the shop: money was taken, a person refunds or
--   fulfils it.
-- * A dispute on an order that cannot go to review (refunded) is recorded
--   as such, its reason untouched, and the shop is still told.
-- * An admin takes an order out of review with admin_order_resolve()
--   (POST orders/<ref>/resolve): to paid, or where its lab orders got to,
--   fulfilled when nothing was yet; or cancelled when it holds no money.


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

    -- paid again after a review: it was paid when the money came
    UPDATE orders SET status = p_to, updated_at = now(),
                      paid_at = CASE WHEN p_to = 'paid'
                                     THEN coalesce(paid_at, now())
                                     ELSE paid_at END
     WHERE id = p_order;

    INSERT INTO order_events (order_id, from_status, to_status, cause, detail)
    VALUES (p_order, v_from, p_to, p_cause, p_detail);

    RETURN true;
END $$;


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
        PERFORM order_transition(p_order, v_to, p_cause);
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
                           'reason', 'paid after it was ' || p_status));
    PERFORM stripe_alert(p_order, p_cause, NULL);
    RETURN 'needs_review: paid after it was ' || p_status;
END $$;


-- A session reports payment (sql/011).  An order pending payment moves:
-- to paid when the amount is exactly the order's total, else to review.
-- An order under review stays there; one cancelled or expired goes to
-- review.  paid_amount and paid_currency are written once, by whichever
-- event (a refund too) brings them first; the payment intent once; the
-- shipping details every time a payment brings them.  Becoming paid
-- enqueues fulfilment and the receipt in the same transaction.
CREATE OR REPLACE FUNCTION order_mark_paid(p_order bigint, p_session jsonb,
                                           p_cause text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_o        orders%ROWTYPE;
    v_amount   bigint := (p_session->>'amount_total')::bigint;
    v_currency text := upper(p_session->>'currency');
    v_ship     jsonb := stripe_session_shipping(p_session);
BEGIN
    SELECT * INTO v_o FROM orders WHERE id = p_order FOR UPDATE;

    IF v_o.status NOT IN ('pending_payment', 'needs_review', 'cancelled',
                          'expired')
    THEN
        RETURN 'ignored: order is ' || v_o.status;
    END IF;

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

    IF v_amount IS DISTINCT FROM v_o.total
       OR v_currency IS DISTINCT FROM v_o.currency
    THEN
        UPDATE orders SET review_reason = format(
                   'Paid %s %s but the order total is %s %s.',
                   v_amount, v_currency, v_o.total, v_o.currency)
         WHERE id = p_order;
        PERFORM order_transition(p_order, 'needs_review', p_cause,
            jsonb_build_object('paid', v_amount, 'currency', v_currency));
        PERFORM stripe_alert(p_order, p_cause, NULL);
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

    ELSIF order_transition(p_order, 'needs_review', p_cause, v_detail) THEN
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


-- Applies one event of a type darkroom handles (sql/011; a dispute is
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
        ELSE
            result := CASE WHEN order_transition(order_id, 'cancelled',
                                    v_cause, jsonb_build_object('reason',
                                                        'payment failed'))
                           THEN 'cancelled'
                           ELSE 'ignored: order already settled' END;
        END IF;

    ELSIF p_type = 'checkout.session.expired' THEN
        result := CASE WHEN order_transition(order_id, 'expired', v_cause)
                       THEN 'expired'
                       ELSE 'ignored: order already settled' END;

    ELSIF p_type = 'charge.refunded' THEN
        result := stripe_apply_refund(order_id, p_obj, v_cause);

    ELSIF p_type = 'charge.dispute.created' THEN
        result := stripe_apply_dispute(order_id, p_obj, v_cause);

    ELSE
        result := 'ignored: event type not handled';
    END IF;
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


-- An order going on after review is fulfilled when no lab order was ever
-- made and no fulfilment is open.  'fulfil:<id>' is taken by the first
-- job (done, perhaps into review): this one is named by the event that
-- let it go.  The receipt, if the order never had one, goes too.
CREATE OR REPLACE FUNCTION order_resolve_fulfil(p_order bigint,
                                                p_event bigint)
RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO jobs (kind, payload, dedupe_key)
    VALUES ('email', jsonb_build_object('template', 'receipt',
                                        'order_id', p_order),
            'email:receipt:' || p_order)
    ON CONFLICT (dedupe_key) DO NOTHING;

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


-- POST orders/<ref>/resolve {"to", "note"}: an admin takes an order out
-- of review (cause 'admin'), the note and the old reason in its history.
CREATE OR REPLACE FUNCTION admin_order_resolve(p_ref text, p_body text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    o       orders%ROWTYPE;
    v_body  jsonb;
    v_to    text;
    v_lab   text;
    v_ev    bigint;
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
               'review_reason', o.review_reason, 'lab_progress', v_lab))
    THEN
        PERFORM darkroom_refuse(409, 'invalid_target_state',
            format('An order under review cannot go to %s.', v_to));
    END IF;

    UPDATE orders SET review_reason = NULL WHERE id = o.id;

    IF v_to = 'paid' THEN
        SELECT max(id) INTO v_ev FROM order_events WHERE order_id = o.id;
        PERFORM order_resolve_fulfil(o.id, v_ev);
    END IF;

    RETURN admin_order_json(p_ref);
END $$;
