-- Stripe hardening.
--
-- * The webhook hands SQL the event id and type it checked and logged
--   (stripe_handle_event(event, id, type)); the body has no duplicate keys.
-- * A signed event that cannot be applied (a malformed field, an API
--   version darkroom does not read) is kept with state 'unprocessable' and
--   its reason, a shop_alert email is enqueued, and Stripe gets a 2xx:
--   answering 5xx would only make Stripe send it again for three days.
-- * needs_review is left only by an admin (or a refund, which the shop
--   makes through Stripe): order_transition refuses every other exit,
--   whoever calls it; a later payment event is recorded against the order.
-- * A payment writes paid_amount and paid_currency once, but always keeps
--   the shipping name, address and phone and the payment intent: a
--   partial refund seen first (it fills paid_amount) no longer loses them.
-- * A payment for a cancelled or expired order puts it in review, with the
--   reason, and tells the shop: money was taken, a person refunds or
--   fulfils it.
-- * A dispute on an order that cannot go to review (refunded) is recorded
--   as such, its reason untouched, and the shop is still told.
-- * The shipping address is read in every shape a supported API version
--   sends, and the phone number Checkout collected is kept.

ALTER TABLE orders ADD COLUMN shipping_phone text;

ALTER TABLE stripe_events
    ADD COLUMN state text NOT NULL DEFAULT 'processed'
        CHECK (state IN ('processing', 'processed', 'ignored', 'recorded',
                         'unprocessable')),
    ADD COLUMN reason text,
    ADD COLUMN api_version text;

UPDATE stripe_events
   SET state = CASE WHEN result LIKE 'ignored%' THEN 'ignored'
                    ELSE 'processed' END,
       api_version = payload->>'api_version';

CREATE INDEX stripe_events_unprocessable ON stripe_events (received_at)
    WHERE state = 'unprocessable';


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


-- The API version darkroom is written for: its API calls send it as
-- Stripe-Version, and its webhook endpoint must be configured with it.
CREATE FUNCTION stripe_api_version() RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT '2024-06-20' $$;

-- Versions whose Checkout Session and Charge darkroom reads correctly:
-- 2020-08-27 (address in "shipping") to the 2025 releases (address in
-- "collected_information").  Older ones, later ones nobody has checked,
-- and events that name none are recorded and flagged, never guessed at.
CREATE FUNCTION stripe_api_version_supported(p_version text) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(p_version ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}(\.[a-z]+)?$'
                    AND left(p_version, 10) BETWEEN '2020-08-27'
                                                AND '2025-12-31', false);
$$;


-- The shipping details of a Checkout Session, whatever its version:
-- collected_information.shipping_details (2025-02-24.acacia on),
-- shipping_details (2022-08-01 on), shipping (2020-08-27).  JSON null is
-- no address.
CREATE FUNCTION stripe_session_shipping(p_session jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(
        nullif(p_session->'collected_information'->'shipping_details',
               'null'::jsonb),
        nullif(p_session->'shipping_details', 'null'::jsonb),
        nullif(p_session->'shipping', 'null'::jsonb));
$$;


-- What is wrong with the fields darkroom reads from an event's object, in
-- words for the admin, or NULL when they are all of the right type.
CREATE FUNCTION stripe_event_problem(p_type text, p_obj jsonb) RETURNS text
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
CREATE FUNCTION order_paid_after_close(p_order bigint,
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


-- A session reports payment (sql/004).  An order pending payment moves:
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


-- A shop_alert email about an order (when known) and a Stripe event, once
-- per event: the mail worker sends it to darkroom_mail_alert_to.
CREATE FUNCTION stripe_alert(p_order bigint, p_cause text, p_reason text)
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
CREATE FUNCTION order_review_record(p_order bigint, p_cause text,
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
CREATE FUNCTION stripe_event_order(p_type text, p_obj jsonb) RETURNS bigint
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
CREATE FUNCTION stripe_apply_dispute(p_order bigint, p_obj jsonb,
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


-- Applies one event of a type darkroom handles (a dispute is
-- stripe_apply_dispute's); the caller has recorded it and checked its
-- fields.  Returns the result and the order.
CREATE FUNCTION stripe_apply_event(p_id text, p_type text,
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


-- charge.refunded: amount_refunded is cumulative, so taking the largest
-- seen makes partial refunds arriving in any order end in the same place.
-- A full refund ends a review too: refunds are made by the shop.
CREATE FUNCTION stripe_apply_refund(p_order bigint, p_obj jsonb,
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
CREATE FUNCTION stripe_handle_event(p_event jsonb, p_id text, p_type text)
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


-- Events darkroom makes itself (checkout_reconcile) carry their own id
-- and type.
CREATE OR REPLACE FUNCTION stripe_handle_event(p_event jsonb)
RETURNS TABLE (result text, order_id bigint)
LANGUAGE sql AS $$
    SELECT * FROM stripe_handle_event(p_event, p_event->>'id',
                                      p_event->>'type');
$$;


-- The admin's view of an order: as before, plus the phone number Checkout
-- collected and the state and reason of each Stripe event.
CREATE OR REPLACE FUNCTION admin_order_json(p_ref text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT json_build_object(
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
    )::text
      FROM orders o WHERE o.ref = p_ref;
$$;
