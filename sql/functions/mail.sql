-- sql/functions/mail.sql: emails: the context a template is rendered
-- with (order, parcels, gallery), money formatting, a job's message (read,
-- recorded before it is sent, and its outcome), the admin list of emails,
-- an email resent (admin_email_resend), and the enqueueing of gallery
-- expiry reminders.
--
-- Tables: emails, jobs; reads orders, order_items, lab_orders, shipments,
-- galleries.  Calls no function of another area but darkroom_refuse
-- (core.sql), download_links_json (downloads.sql) for the delivery email,
-- print_sizing_text (prints.sql) for a gallery print's crop or fit and
-- booking_email_context (bookings_mail.sql) for a booking's email.


-- Minor units as people read them: "£1,234.50", "¥4500", "12.00 CHF".
CREATE OR REPLACE FUNCTION email_money(p_amount bigint, p_currency text) RETURNS text
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


CREATE OR REPLACE FUNCTION email_context(p_template text, p_payload jsonb)
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
    v_booking   jsonb;
BEGIN
    -- selection_submitted (proofing) goes to the photographer too
    v_kind := CASE WHEN p_template LIKE 'shop\_%'
                        OR p_template = 'selection_submitted' THEN 'shop'
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
            -- what the mail module derives the order page link from, and
            -- removes before a template sees it (order.url instead)
            'token_seed', v_o.token_seed, 'token_kid', v_o.token_kid,
            'invoice_number', v_o.invoice_number,
            'subtotal_display', email_money(v_o.subtotal, v_o.currency),
            'discount', CASE WHEN v_o.discount_amount > 0 THEN
                json_build_object('code', v_o.discount_code,
                    'amount', v_o.discount_amount,
                    'amount_display', email_money(v_o.discount_amount,
                                                  v_o.currency)) END,
            'delivery_charge', CASE WHEN v_o.physical
                                     OR v_o.shipping_amount > 0 THEN
                json_build_object('method', v_o.shipping_method,
                    'name', coalesce(v_o.shipping_rate, v_o.shipping_method),
                    'amount', v_o.shipping_amount,
                    'free', v_o.shipping_amount = 0,
                    'amount_display', email_money(v_o.shipping_amount,
                                                  v_o.currency)) END,
            'tax', CASE WHEN v_o.tax_amount > 0 THEN
                json_build_object('amount', v_o.tax_amount,
                    'amount_display', email_money(v_o.tax_amount,
                                                  v_o.currency),
                    'inclusive', v_o.tax_inclusive,
                    'exclusive', NOT v_o.tax_inclusive) END,
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
                                                        v_o.currency),
                          'discount_display', CASE WHEN i.discount > 0
                              THEN email_money(i.discount, v_o.currency) END,
                          'tax_display', CASE WHEN i.tax > 0
                              THEN email_money(i.tax, v_o.currency) END,
                          'tax_rate', CASE WHEN i.tax > 0 THEN
                              rtrim(rtrim(i.tax_rate::text, '0'), '.')
                              || '%' END,
                          'sizing', i.sizing,
                          'sizing_display', print_sizing_text(i.sizing))
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

        -- the parcels of the order's lab orders; only the one shipment the
        -- payload names, if it names one
        SELECT coalesce(json_agg(json_build_object(
                   'carrier', s.carrier, 'service', s.service,
                   'tracking_number', s.tracking_number,
                   'tracking_url', s.tracking_url) ORDER BY s.id), '[]')
          INTO v_shipments
          FROM shipments s JOIN lab_orders lo ON lo.id = s.lab_order_id
         WHERE lo.order_id = v_order_id
           AND (p_payload->>'shipment_id' IS NULL
                OR s.id::text = p_payload->>'shipment_id');
    END IF;

    IF p_payload ? 'gallery_id' THEN
        -- what a template may show of a gallery: never its hashes
        SELECT json_build_object('id', g.id, 'slug', g.slug,
                   'title', nullif(g.title, ''),
                   'client_email', g.client_email,
                   'path', 'g/' || g.slug,
                   'password', g.password_hash IS NOT NULL,
                   'expires_at', to_char(g.expires_at AT TIME ZONE 'UTC',
                                         'FMDD Mon YYYY'))
          INTO v_gallery
          FROM galleries g
         WHERE g.id::text = p_payload->>'gallery_id'
           AND g.revoked_at IS NULL;
        IF v_gallery IS NULL THEN
            RETURN NULL;
        END IF;
        v_to := coalesce(v_to, v_gallery->>'client_email');
    END IF;

    IF p_payload ? 'booking_id' THEN
        -- a booking's email and its invite (bookings_mail.sql)
        v_booking := booking_email_context(p_template, p_payload);
        IF v_booking IS NULL THEN
            RETURN NULL;
        END IF;
        v_to := coalesce(v_to, v_booking->'booking'->>'client_email');
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
                           'full', v_refund >= v_o.paid_amount,
                           'remaining_display', email_money(
                               greatest(v_o.paid_amount - v_refund, 0),
                               v_o.currency))
                  END,
        'shipments', v_shipments,
        'gallery', v_gallery,
        'downloads', CASE WHEN p_template = 'delivery'
                          THEN download_links_json(v_order_id) END,
        'booking', v_booking->'booking',
        'attachments', v_booking->'attachments',
        'payload', p_payload)::text;
END $$;


-- The message an "email" job sends, once recorded: the row the mail
-- module reads (by column name) and sends, the same bytes on every run.
CREATE OR REPLACE FUNCTION email_of_job(p_job_id bigint)
RETURNS TABLE (id bigint, status text, message_key text, recipient text,
               subject text, body_text text, body_html text, template text,
               attachments text)
LANGUAGE sql STABLE AS $$
    SELECT e.id, e.status, e.message_key, e.recipient, e.subject,
           e.body_text, e.body_html, e.template,
           CASE WHEN e.attachments <> '[]' THEN e.attachments::text END
      FROM emails e
     WHERE e.job_id = p_job_id
$$;


-- Records a job's rendered message before any provider is called, and
-- returns it as email_of_job() does.  The job holds its lease, so no other
-- run records it meanwhile; a row already there is returned as it is.
-- p_attachments: the context's "attachments" (a JSON array), or NULL.
CREATE OR REPLACE FUNCTION email_record(p_job_id bigint, p_template text,
    p_kind text, p_recipient text, p_order_id bigint, p_provider text,
    p_subject text, p_body_text text, p_body_html text,
    p_attachments jsonb DEFAULT NULL)
RETURNS TABLE (id bigint, status text, message_key text, recipient text,
               subject text, body_text text, body_html text, template text,
               attachments text)
LANGUAGE sql AS $$
    INSERT INTO emails AS e (job_id, template, kind, recipient, order_id,
                             provider, subject, body_text, body_html,
                             attachments)
    VALUES (p_job_id, p_template, p_kind, p_recipient, p_order_id,
            p_provider, p_subject, p_body_text, p_body_html,
            CASE WHEN jsonb_typeof(p_attachments) = 'array'
                 THEN p_attachments ELSE '[]' END)
    ON CONFLICT (job_id) DO UPDATE SET updated_at = now()
    RETURNING e.id, e.status, e.message_key, e.recipient, e.subject,
              e.body_text, e.body_html, e.template,
              CASE WHEN e.attachments <> '[]' THEN e.attachments::text END
$$;


-- What a provider call came to: 'sent' with the provider's message id,
-- 'failed' with its reason, or still 'queued' (a retry) with the reason.
CREATE OR REPLACE FUNCTION email_outcome(p_id bigint, p_status text,
    p_message_id text, p_error text, p_provider text) RETURNS void
LANGUAGE sql AS $$
    UPDATE emails
       SET status = p_status,
           provider_message_id = coalesce(p_message_id, provider_message_id),
           error = p_error,
           provider = p_provider,
           attempts = attempts + 1,
           sent_at = CASE WHEN p_status = 'sent' THEN now() END,
           updated_at = now()
     WHERE id = p_id
$$;


-- What the admin sees of the mail: newest first, optionally one status
-- or one order (by ref).
CREATE OR REPLACE FUNCTION admin_emails_json(p_status text, p_order_ref text,
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


-- An email sent again (the console's "Resend"): a new "email" job with the
-- original job's payload (so the same template and data, rendered afresh),
-- in one transaction; the original row is left as it is.  404 for an
-- unknown email, 409 while it is still queued (it will go on its own).
CREATE OR REPLACE FUNCTION admin_email_resend(p_id bigint) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    v_e        emails;
    v_payload  jsonb;
    v_job      bigint;
BEGIN
    SELECT * INTO v_e FROM emails WHERE id = p_id FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM darkroom_refuse(404, 'not_found', 'There is no such email.');
    END IF;
    IF v_e.status = 'queued' THEN
        PERFORM darkroom_refuse(409, 'still_queued',
            'This email is still queued: it will be sent on its own.');
    END IF;
    SELECT j.payload INTO v_payload FROM jobs j WHERE j.id = v_e.job_id;
    IF v_payload IS NULL OR v_payload->>'template' IS DISTINCT FROM
                            v_e.template
    THEN
        PERFORM darkroom_refuse(409, 'not_resendable',
            'The job that sent this email is gone: it cannot be resent.');
    END IF;
    INSERT INTO jobs (kind, payload)
    VALUES ('email', v_payload)
    RETURNING id INTO v_job;
    RETURN json_build_object('resent', p_id, 'job', v_job)::text;
END $$;


-- Galleries delivered, not revoked, closing within p_days and not yet
-- reminded for this expiry date get their reminder email enqueued.
CREATE OR REPLACE FUNCTION gallery_reminders_enqueue(p_days int) RETURNS integer
LANGUAGE sql AS $$
    WITH due AS (
        INSERT INTO jobs (kind, payload, dedupe_key)
        SELECT 'email',
               jsonb_build_object('template', 'gallery_reminder',
                                  'gallery_id', g.id),
               'gallery_reminder:' || g.id || ':'
               || extract(epoch FROM g.expires_at)::bigint
          FROM galleries g
         WHERE g.delivered_at IS NOT NULL AND g.revoked_at IS NULL
           AND g.client_email IS NOT NULL
           AND g.expires_at > now()
           AND g.expires_at <= now() + p_days * interval '1 day'
        ON CONFLICT (dedupe_key) DO NOTHING
        RETURNING 1)
    SELECT count(*)::integer FROM due;
$$;
