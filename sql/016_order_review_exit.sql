-- An admin takes an order out of review with admin_order_resolve()
-- (POST orders/<ref>/resolve): to paid, or where its lab orders got to,
-- fulfilled when nothing was yet; or cancelled when it holds no money.
-- (Only an admin action leaves needs_review: order_transition, sql/011.)


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
