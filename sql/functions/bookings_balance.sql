-- darkroom: a booking's balance (issue 16), the rest of its price after
-- the deposit.  It is paid through an order of its own (as the deposit:
-- one order_items line of kind 'session', photo_id the booking's ref,
-- product_name 'Balance'), made or reused by POST <ref>/pay and checked
-- out through the shop (ngx_http_darkroom_order_checkout).  Its payment
-- (order_mark_paid -> bookings_order_paid -> bookings_balance_paid) adds
-- to balance_paid with a booking_events row and the booking_balance_paid
-- email, once; a payment nobody owes any more (the booking cancelled, or
-- paid already) goes back.  The booking_balance_due email (the link to the
-- booking's page, which has the pay button) is queued once
-- balance_due_hours before the session by the booking_reminders job, and
-- on demand by the owner (bookings_admin_balance_link).  A cancel refunds
-- the balance paid whatever the policy (bookings_balance_cancel).
--
-- balance_paid is every payment taken on the booking's balance orders,
-- balance_refunded every refund of them; what is due is the price less
-- the deposit paid and the balance kept.
--
-- Tables: bookings, booking_events, orders, order_items, order_events,
-- jobs.  Calls bookings_event, bookings_refund_job, bookings_client_json
-- (bookings.sql), booking_change_target and booking_change_body
-- (bookings_mail.sql); called by
-- bookings_order_paid, bookings_refund_sent, order_checkout_info,
-- booking_cancel_effects, the bookings module (POST <ref>/pay, the admin's
-- balance-link) and the mail module's booking_reminders job.


-- what a booking still owes, in minor units (0 when nothing)

CREATE OR REPLACE FUNCTION bookings_balance_due(b bookings)
RETURNS bigint LANGUAGE sql IMMUTABLE AS $$
    SELECT greatest(b.price - b.deposit_paid - b.balance_paid
                    + b.balance_refunded, 0);
$$;


-- the booking an order of kind 'session' is for (its deposit or a balance
-- order), NULL for any other order

CREATE OR REPLACE FUNCTION bookings_of_order(p_order bigint)
RETURNS bigint LANGUAGE sql STABLE AS $$
    SELECT b.id FROM order_items i JOIN bookings b ON b.ref = i.photo_id
     WHERE i.order_id = p_order AND i.kind = 'session'
     LIMIT 1;
$$;


-- the booking a balance order is for, locked; all NULL for any other
-- order (a deposit's too)

CREATE OR REPLACE FUNCTION bookings_balance_booking(p_order bigint)
RETURNS bookings LANGUAGE sql AS $$
    SELECT * FROM bookings
     WHERE id = bookings_of_order(p_order)
       AND deposit_order_id IS DISTINCT FROM p_order
       FOR UPDATE;
$$;


-- where Stripe sends the payer of a booking's order back (relative to the
-- shop's darkroom_checkout_success_url): the booking's page, with the
-- manage token; NULL for an order that is not a booking's

CREATE OR REPLACE FUNCTION bookings_return_path(p_order bigint)
RETURNS text LANGUAGE sql STABLE AS $$
    SELECT 'booking.html?ref=' || b.ref || '&token=' || b.manage_token
      FROM bookings b WHERE b.id = bookings_of_order(p_order);
$$;


-- POST <ref>/pay {"token"}: the balance order of a confirmed booking yet
-- to start (booking_change_target(): 404, 409 not_confirmed, started)
-- with something due, reused while it waits for payment with the amount
-- due and time left, else a new one (with its checkout_reconcile job), in
-- one transaction.  p_hash: the SHA-256 of a new order's status token.
-- Answers {"order_id", "checkout_url" (a reused order's, or null),
-- "amount", "currency"}; the C side asks the shop for the session.

CREATE OR REPLACE FUNCTION bookings_balance_pay(p_ref text, p_body text,
    p_hash text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_b     bookings := booking_change_target(p_ref,
                                              booking_change_body(p_body));
    v_o     orders;
    v_due   bigint;
BEGIN
    v_due := bookings_balance_due(v_b);
    IF v_due <= 0 THEN
        PERFORM darkroom_refuse(409, 'nothing_due',
            'Nothing is due on this booking.');
    END IF;

    SELECT * INTO v_o FROM orders
     WHERE id = v_b.balance_order_id AND status = 'pending_payment'
       AND total = v_due AND expires_at > now() + interval '10 minutes';
    IF FOUND THEN
        RETURN jsonb_build_object('order_id', v_o.id,
            'checkout_url', v_o.checkout_url, 'amount', v_due,
            'currency', v_b.currency)::text;
    END IF;

    v_o := bookings_balance_order(v_b, v_due, p_hash);

    RETURN jsonb_build_object('order_id', v_o.id, 'checkout_url', NULL,
        'amount', v_due, 'currency', v_b.currency)::text;
END $$;


-- a new balance order of v_due for a booking, as bookings_book writes its
-- deposit order; the booking points to it

CREATE OR REPLACE FUNCTION bookings_balance_order(p_b bookings,
    p_due bigint, p_hash text)
RETURNS orders LANGUAGE plpgsql AS $$
DECLARE
    v_id   bigint := nextval(pg_get_serial_sequence('orders', 'id'));
    v_ref  text := 'DR-' || lpad(v_id::text, 6, '0');
    v_o    orders;
    st     session_types;
    v_tz   text;
BEGIN
    SELECT * INTO st FROM session_types WHERE id = p_b.session_type_id;
    SELECT time_zone INTO v_tz FROM photographers
     WHERE id = p_b.photographer_id;

    -- Stripe keeps a Checkout Session open at most 24 hours
    INSERT INTO orders (id, ref, status_token, email, currency, subtotal,
                        total, physical, expires_at)
    VALUES (v_id, v_ref, p_hash, p_b.client_email, p_b.currency, p_due,
            p_due, false, now() + interval '23 hours')
    RETURNING * INTO v_o;
    INSERT INTO order_items (order_id, line, photo_id, product_id, title,
                             product_name, kind, quantity, unit_amount,
                             amount)
    VALUES (v_id, 1, p_b.ref, st.id,
            st.name || ', ' || to_char(p_b.starts_at AT TIME ZONE v_tz,
                                       'YYYY-MM-DD HH24:MI'),
            'Balance', 'session', 1, p_due, p_due);
    INSERT INTO order_events (order_id, to_status, cause, detail)
    VALUES (v_id, 'pending_payment', 'booking',
            jsonb_build_object('booking', p_b.ref, 'balance', p_due,
                               'currency', p_b.currency));
    INSERT INTO jobs (kind, payload, run_at, dedupe_key)
    VALUES ('checkout_reconcile', jsonb_build_object('order_id', v_id),
            v_o.expires_at + interval '5 minutes', 'reconcile:' || v_id);

    UPDATE bookings SET balance_order_id = v_id, updated_at = now()
     WHERE id = p_b.id;
    PERFORM bookings_event(p_b.id, p_b.state, p_b.state, 'client',
        jsonb_build_object('balance_order', v_ref, 'amount', p_due));
    RETURN v_o;
END $$;


-- A balance order is paid (bookings_order_paid, in the payment's
-- transaction).  False: the order is no booking's balance order.  The
-- payment is added to balance_paid; with something due and the booking
-- not cancelled, a booking_events row and the booking_balance_paid email
-- (deduplicated by the order: once); otherwise the money goes back (a
-- stripe_refund job for the order, once).

CREATE OR REPLACE FUNCTION bookings_balance_paid(p_order bigint,
    p_amount bigint, p_cause text)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    v_b     bookings := bookings_balance_booking(p_order);
    v_due   bigint;
    v_paid  bigint;
    v_key   text;
    v_job   bigint;
BEGIN
    IF v_b.id IS NULL THEN
        RETURN false;
    END IF;

    v_due := bookings_balance_due(v_b);
    v_paid := coalesce(p_amount, (SELECT total FROM orders
                                   WHERE id = p_order));
    UPDATE bookings SET balance_paid = balance_paid + v_paid,
                        updated_at = now()
     WHERE id = v_b.id;

    IF v_b.state = 'cancelled' OR v_due <= 0 THEN
        v_key := 'darkroom-refund-booking-' || v_b.id || '-' || p_order;
        v_job := bookings_refund_job(p_order, v_paid, 'balance_not_due',
                                     v_key);
        PERFORM bookings_event(v_b.id, v_b.state, v_b.state, p_cause,
            jsonb_build_object('balance', v_paid, 'refund', 'queued',
                'job', v_job, 'idempotency_key', v_key,
                'reason', CASE WHEN v_b.state = 'cancelled'
                               THEN 'the booking was cancelled'
                               ELSE 'nothing was due' END));
        RETURN true;
    END IF;

    PERFORM bookings_event(v_b.id, v_b.state, v_b.state, p_cause,
        jsonb_build_object('balance', v_paid, 'order', p_order));
    INSERT INTO jobs (kind, payload, dedupe_key)
    VALUES ('email', jsonb_build_object('template', 'booking_balance_paid',
                'booking_id', v_b.id, 'to', v_b.client_email,
                'amount', v_paid, 'balance_order', p_order),
            'booking_balance_paid:' || v_b.id || ':' || p_order)
    ON CONFLICT (dedupe_key) DO NOTHING;
    RETURN true;
END $$;


-- A cancel (booking_cancel_effects, by the client or the owner): every
-- balance order's payment not yet refunded or queued for a refund goes
-- back, whatever the policy, one stripe_refund job per order with its own
-- idempotency key.  Returns {"amount", "jobs": [{"order", "job",
-- "idempotency_key", "amount"}]}.

CREATE OR REPLACE FUNCTION bookings_balance_cancel(p_b bookings)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v_o      record;
    v_key    text;
    v_job    bigint;
    v_total  bigint := 0;
    v_jobs   jsonb := '[]';
BEGIN
    FOR v_o IN
        SELECT o.id, coalesce(o.paid_amount, o.total)
                     - coalesce((SELECT sum((j.payload->>'amount')::bigint)
                                   FROM jobs j
                                  WHERE j.kind = 'stripe_refund'
                                    AND j.payload->>'order_id' = o.id::text),
                                0)::bigint AS left
          FROM order_items i JOIN orders o ON o.id = i.order_id
         WHERE i.kind = 'session' AND i.photo_id = p_b.ref
           AND o.id IS DISTINCT FROM p_b.deposit_order_id
           AND o.status = 'paid'
         ORDER BY o.id
    LOOP
        CONTINUE WHEN v_o.left <= 0;
        v_key := 'darkroom-refund-booking-' || p_b.id || '-balance-'
                 || v_o.id;
        v_job := bookings_refund_job(v_o.id, v_o.left, 'booking_cancelled',
                                     v_key);
        v_total := v_total + v_o.left;
        v_jobs := v_jobs || jsonb_build_object('order', v_o.id,
            'job', v_job, 'idempotency_key', v_key, 'amount', v_o.left);
    END LOOP;
    RETURN jsonb_build_object('amount', v_total, 'jobs', v_jobs);
END $$;


-- The stripe_refund job refunded a balance order (bookings_refund_sent):
-- the booking's balance_refunded.  False: not a balance order.

CREATE OR REPLACE FUNCTION bookings_balance_refunded(p_order bigint,
    p_refund text, p_amount bigint, p_key text, p_cause text)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    v_b  bookings := bookings_balance_booking(p_order);
BEGIN
    IF v_b.id IS NULL THEN
        RETURN false;
    END IF;
    UPDATE bookings SET balance_refunded = balance_refunded + p_amount,
                        updated_at = now()
     WHERE id = v_b.id;
    PERFORM bookings_event(v_b.id, v_b.state, v_b.state, p_cause,
        jsonb_build_object('refund', p_refund, 'amount', p_amount,
                           'balance', true, 'idempotency_key', p_key));
    RETURN true;
END $$;


-- The booking_balance_due email (the link to the booking's page) for a
-- confirmed booking yet to start with something due; p_key: its dedupe
-- key.  The job's id, NULL when none was queued (nothing due, or queued
-- before under that key).

CREATE OR REPLACE FUNCTION bookings_balance_link_job(p_b bookings,
    p_key text)
RETURNS bigint LANGUAGE sql AS $$
    INSERT INTO jobs (kind, payload, dedupe_key)
    SELECT 'email', jsonb_build_object('template', 'booking_balance_due',
               'booking_id', p_b.id, 'to', p_b.client_email,
               'amount', bookings_balance_due(p_b)),
           p_key
     WHERE p_b.state = 'confirmed' AND bookings_balance_due(p_b) > 0
    ON CONFLICT (dedupe_key) DO NOTHING
    RETURNING id;
$$;


-- The booking_balance_due emails due (the booking_reminders job): once per
-- booking (balance_due_sent_at), balance_due_hours before its start, for
-- a confirmed booking whose deposit is paid and that still owes.  Returns
-- the emails queued.

CREATE OR REPLACE FUNCTION bookings_balance_due_enqueue()
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    v_b      bookings;
    v_count  integer := 0;
BEGIN
    FOR v_b IN
        SELECT b.* FROM bookings b
          JOIN session_types st ON st.id = b.session_type_id
         WHERE b.state = 'confirmed' AND b.balance_due_sent_at IS NULL
           AND b.deposit_paid > 0 AND bookings_balance_due(b) > 0
           AND b.starts_at > now()
           AND b.starts_at - st.balance_due_hours * interval '1 hour'
               <= now()
         ORDER BY b.id
           FOR UPDATE OF b SKIP LOCKED
    LOOP
        IF bookings_balance_link_job(v_b, 'booking_balance_due:' || v_b.id
                                          || ':auto') IS NOT NULL
        THEN
            v_count := v_count + 1;
        END IF;
        UPDATE bookings SET balance_due_sent_at = now() WHERE id = v_b.id;
        PERFORM bookings_event(v_b.id, v_b.state, v_b.state, 'job',
            jsonb_build_object('balance_link', 'sent',
                               'amount', bookings_balance_due(v_b)));
    END LOOP;
    RETURN v_count;
END $$;


-- POST /admin/api/bookings/<ref>/balance-link: the booking_balance_due
-- email now, by the owner (cause admin:<who>).  NULL (404) for no such
-- booking; 409 not_confirmed, nothing_due.

CREATE OR REPLACE FUNCTION bookings_admin_balance_link(p_ref text,
    p_actor text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_b    bookings;
    v_n    bigint;
    v_job  bigint;
BEGIN
    SELECT * INTO v_b FROM bookings WHERE ref = p_ref FOR UPDATE;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF v_b.state <> 'confirmed' THEN
        PERFORM darkroom_refuse(409, 'not_confirmed', format(
            'The booking is %s: only a confirmed one has a balance link.',
            v_b.state));
    END IF;
    IF bookings_balance_due(v_b) <= 0 THEN
        PERFORM darkroom_refuse(409, 'nothing_due',
            'Nothing is due on this booking.');
    END IF;

    SELECT count(*) INTO v_n FROM booking_events
     WHERE booking_id = v_b.id AND detail ? 'balance_link';
    v_job := bookings_balance_link_job(v_b, 'booking_balance_due:'
                                            || v_b.id || ':' || v_n);
    PERFORM bookings_event(v_b.id, v_b.state, v_b.state,
        'admin:' || coalesce(nullif(p_actor, ''), 'unknown'),
        jsonb_build_object('balance_link', 'sent', 'job', v_job,
                           'amount', bookings_balance_due(v_b)));

    RETURN jsonb_build_object('sent', jsonb_build_object(
               'job', v_job, 'to', v_b.client_email,
               'amount', bookings_balance_due(v_b),
               'currency', v_b.currency),
           'booking', bookings_client_json(v_b))::text;
END $$;
