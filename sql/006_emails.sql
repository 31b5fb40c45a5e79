-- Email: one row per message, written before the provider is called and
-- holding exactly what is sent (rendered once), so a job re-run after a
-- crash sends the same bytes under the same idempotency key, and the table
-- shows what went out.  email_context() builds the data a template sees.

CREATE TABLE emails (
    id                   bigserial PRIMARY KEY,
    job_id               bigint      UNIQUE,          -- the job that sends it
    message_key          text        NOT NULL UNIQUE  -- idempotency key
                         DEFAULT 'darkroom-email-' || gen_random_uuid(),
    template             text        NOT NULL,        -- receipt, refunded ...
    kind                 text        NOT NULL         -- who it is for
        CHECK (kind IN ('customer', 'shop')),
    recipient            text        NOT NULL,
    order_id             bigint REFERENCES orders ON DELETE SET NULL,
    provider             text        NOT NULL
        CHECK (provider IN ('postmark', 'sendgrid', 'resend')),
    provider_message_id  text,
    status               text        NOT NULL DEFAULT 'queued'
        CHECK (status IN ('queued', 'sent', 'failed')),
    subject              text        NOT NULL,
    body_text            text        NOT NULL,
    body_html            text,
    error                text,                        -- the provider's reason
    attempts             integer     NOT NULL DEFAULT 0,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    sent_at              timestamptz
);

CREATE INDEX emails_order ON emails (order_id, id);
CREATE INDEX emails_status ON emails (status, created_at);


-- Minor units as people read them: "£1,234.50", "¥4500", "12.00 CHF".
CREATE FUNCTION email_money(p_amount bigint, p_currency text) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    v_cur    text := upper(coalesce(p_currency, ''));
    v_zero   boolean := v_cur = ANY (ARRAY['BIF', 'CLP', 'DJF', 'GNF', 'JPY',
                            'KMF', 'KRW', 'MGA', 'PYG', 'RWF', 'UGX', 'VND',
                            'VUV', 'XAF', 'XOF', 'XPF']);
    v_abs    bigint := abs(coalesce(p_amount, 0));
    v_units  text;
    v_num    text;
    v_sym    text;
BEGIN
    IF p_amount IS NULL THEN
        RETURN NULL;
    END IF;

    v_units := CASE WHEN v_zero THEN v_abs::text ELSE (v_abs / 100)::text END;
    v_units := regexp_replace(v_units, '(\d)(?=(\d{3})+$)', '\1,', 'g');
    v_num := CASE WHEN v_zero THEN v_units
                  ELSE v_units || '.' || lpad((v_abs % 100)::text, 2, '0')
             END;
    v_sym := CASE v_cur WHEN 'GBP' THEN '£' WHEN 'EUR' THEN '€'
                        WHEN 'USD' THEN '$' WHEN 'JPY' THEN '¥'
                        ELSE NULL END;

    RETURN CASE WHEN p_amount < 0 THEN '-' ELSE '' END
           || CASE WHEN v_sym IS NULL THEN v_num || ' ' || v_cur
                   ELSE v_sym || v_num END;
END $$;


-- The data a template sees, as JSON, or NULL when the order is gone.
--   to        the customer's address (NULL for the shop's own mail: the
--             module sends those to darkroom_mail_alert_to)
--   kind      'customer' or 'shop'
--   order     ref, status, totals (raw and "_display"), items, shipping
--   refund    {amount, amount_display} for 'refunded'
--   shipments rows of a "shipments" table, when one exists (fulfilment)
--   gallery   the row of a "galleries" table, when one exists and the
--             payload names gallery_id (galleries)
--   payload   the job's payload as given
-- The module adds shop (name, url, email) and, for links it can sign,
-- more; templates ignore what they do not use.
CREATE FUNCTION email_context(p_template text, p_payload jsonb)
RETURNS text LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_order_id  bigint;
    v_order     json;
    v_o         orders%ROWTYPE;
    v_to        text;
    v_kind      text;
    v_shipments json := '[]';
    v_gallery   json;
    v_refund    bigint;
BEGIN
    v_kind := CASE WHEN p_template LIKE 'shop\_%' THEN 'shop'
                   ELSE 'customer' END;

    IF p_payload ? 'order_id' THEN
        v_order_id := (p_payload->>'order_id')::bigint;
        SELECT * INTO v_o FROM orders WHERE id = v_order_id;
        IF NOT FOUND THEN
            RETURN NULL;
        END IF;

        v_order := json_build_object(
            'id', v_o.id, 'ref', v_o.ref, 'status', v_o.status,
            'email', v_o.email, 'currency', v_o.currency,
            'physical', v_o.physical,
            'total', v_o.total,
            'total_display', email_money(v_o.total, v_o.currency),
            'paid_amount', v_o.paid_amount,
            'paid_display', email_money(v_o.paid_amount,
                                        coalesce(v_o.paid_currency,
                                                 v_o.currency)),
            'amount_refunded', v_o.amount_refunded,
            'amount_refunded_display', email_money(v_o.amount_refunded,
                                                   v_o.currency),
            'review_reason', v_o.review_reason,
            'created_at', to_char(v_o.created_at AT TIME ZONE 'UTC',
                                  'FMDD Mon YYYY'),
            'paid_at', to_char(v_o.paid_at AT TIME ZONE 'UTC',
                               'FMDD Mon YYYY'),
            'items', (SELECT coalesce(json_agg(json_build_object(
                          'line', i.line, 'title', i.title,
                          'product_name', i.product_name, 'kind', i.kind,
                          'quantity', i.quantity,
                          'unit_amount', i.unit_amount,
                          'unit_display', email_money(i.unit_amount,
                                                      v_o.currency),
                          'amount', i.amount,
                          'amount_display', email_money(i.amount,
                                                        v_o.currency))
                          ORDER BY i.line), '[]')
                        FROM order_items i WHERE i.order_id = v_o.id),
            'shipping', CASE WHEN v_o.shipping_address IS NULL THEN NULL
                ELSE json_build_object(
                    'name', v_o.shipping_name,
                    'country', v_o.shipping_address->>'country',
                    'lines', (SELECT coalesce(json_agg(l), '[]')
                                FROM unnest(ARRAY[
                                    v_o.shipping_address->>'line1',
                                    v_o.shipping_address->>'line2',
                                    concat_ws(' ',
                                        v_o.shipping_address->>'city',
                                        v_o.shipping_address->>'state',
                                        v_o.shipping_address->>'postal_code'),
                                    v_o.shipping_address->>'country']) l
                               WHERE coalesce(l, '') <> ''))
                END);

        v_to := v_o.email;

        -- parcels, when fulfilment keeps them: by order, or through the
        -- lab orders an order is split into; only the one shipment the
        -- payload names, if it names one
        IF to_regclass('shipments') IS NOT NULL THEN
            BEGIN
                IF EXISTS (SELECT 1 FROM pg_attribute
                            WHERE attrelid = to_regclass('shipments')
                              AND attname = 'order_id' AND NOT attisdropped)
                THEN
                    EXECUTE 'SELECT coalesce(json_agg(row_to_json(s)'
                            ' ORDER BY s.id), ''[]'') FROM shipments s'
                            ' WHERE s.order_id = $1'
                            ' AND ($2 IS NULL OR s.id::text = $2)'
                       INTO v_shipments
                      USING v_order_id, p_payload->>'shipment_id';
                ELSIF to_regclass('lab_orders') IS NOT NULL THEN
                    EXECUTE 'SELECT coalesce(json_agg(row_to_json(s)'
                            ' ORDER BY s.id), ''[]'') FROM shipments s'
                            ' JOIN lab_orders lo ON lo.id = s.lab_order_id'
                            ' WHERE lo.order_id = $1'
                            ' AND ($2 IS NULL OR s.id::text = $2)'
                       INTO v_shipments
                      USING v_order_id, p_payload->>'shipment_id';
                END IF;
            EXCEPTION WHEN undefined_column OR undefined_table THEN
                v_shipments := '[]';
            END;
        END IF;
    END IF;

    IF p_payload ? 'gallery_id' AND to_regclass('galleries') IS NOT NULL THEN
        BEGIN
            EXECUTE 'SELECT row_to_json(g) FROM galleries g'
                    ' WHERE g.id::text = $1'
               INTO v_gallery USING p_payload->>'gallery_id';
        EXCEPTION WHEN undefined_column THEN
            v_gallery := NULL;
        END;
        IF v_gallery IS NULL THEN
            RETURN NULL;
        END IF;
        v_to := coalesce(v_to, v_gallery->>'email',
                         v_gallery->>'client_email');
    END IF;

    IF v_kind = 'shop' THEN
        v_to := NULL;
    ELSIF jsonb_typeof(p_payload->'to') = 'string' THEN
        v_to := p_payload->>'to';
    END IF;

    v_refund := CASE WHEN p_payload ? 'amount_refunded'
                     THEN (p_payload->>'amount_refunded')::bigint END;

    RETURN json_build_object(
        'template', p_template,
        'kind', v_kind,
        'to', v_to,
        'order', v_order,
        'refund', CASE WHEN v_refund IS NULL THEN NULL
                       ELSE json_build_object('amount', v_refund,
                           'amount_display', email_money(v_refund,
                                                         v_o.currency),
                           'full', v_refund >= v_o.paid_amount)
                  END,
        'shipments', v_shipments,
        'gallery', v_gallery,
        'payload', p_payload)::text;
END $$;


-- What the admin sees of the mail: newest first, optionally one status
-- or one order (by ref).
CREATE FUNCTION admin_emails_json(p_status text, p_order_ref text,
                                  p_limit int)
RETURNS text LANGUAGE sql STABLE AS $$
    SELECT json_build_object('emails', coalesce(json_agg(json_build_object(
               'id', e.id, 'job', e.job_id, 'template', e.template,
               'kind', e.kind, 'to', e.recipient,
               'order', (SELECT o.ref FROM orders o WHERE o.id = e.order_id),
               'provider', e.provider,
               'provider_message_id', e.provider_message_id,
               'status', e.status, 'subject', e.subject, 'error', e.error,
               'attempts', e.attempts, 'created_at', e.created_at,
               'sent_at', e.sent_at)
               ORDER BY e.id DESC), '[]'))::text
      FROM (SELECT * FROM emails e
             WHERE (p_status IS NULL OR e.status = p_status)
               AND (p_order_ref IS NULL
                    OR e.order_id = (SELECT id FROM orders
                                      WHERE ref = p_order_ref))
             ORDER BY e.id DESC
             LIMIT least(greatest(coalesce(p_limit, 50), 1), 500)) e;
$$;
