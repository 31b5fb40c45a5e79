-- Retention and customer data requests (issue 19, docs/retention.md).
--
-- retention_settings_json / _update: the admin API's GET | POST retention
-- (one row of retention_settings, sql/042_retention.sql).
-- retention_purge: one bounded batch of each kind of data past its
-- period, for the recurring "retention" job
-- (src/core/ngx_http_darkroom_retention.c), which calls it again while it
-- still finds work: every statement is short, so no lock is held long.
-- gallery_files_due / gallery_files_purged: the expired galleries whose
-- files the gallery module's "gallery_files_purge" job deletes.
-- data_request_export / data_request_erase: the admin API's
-- GET personal-data?email= and POST personal-data/erase {"email"}.
--
-- Tables: retention_settings, jobs, stripe_events, emails,
-- gallery_downloads, orders, order_items, download_grants,
-- discount_redemptions, galleries, gallery_photos, gallery_uploads,
-- gallery_visitors, bookings.  Calls darkroom_refuse (core.sql),
-- console_audit_detail (console.sql), bookings_admin_body
-- (bookings_admin.sql: an admin body that must be a JSON object).


CREATE OR REPLACE FUNCTION retention_settings_json() RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT json_build_object('jobs_days', s.jobs_days,
        'webhook_days', s.webhook_days,
        'email_body_days', s.email_body_days,
        'download_log_days', s.download_log_days,
        'gallery_files_days', s.gallery_files_days,
        'money_years', s.money_years, 'batch', s.batch,
        'updated_at', s.updated_at)::text
      FROM retention_settings s;
$$;


-- POST retention: the settings given, each a whole number in its range;
-- anything else a 400 and nothing changed.  Answers the settings.
CREATE OR REPLACE FUNCTION retention_settings_update(p_body text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    p       jsonb;
    k       text;
    v_min   integer;
    v_max   integer;
BEGIN
    p := bookings_admin_body(p_body, false);

    FOR k IN SELECT jsonb_object_keys(p) LOOP
        SELECT r.lo, r.hi INTO v_min, v_max
          FROM (VALUES ('jobs_days', 7, 36500), ('webhook_days', 1, 36500),
                       ('email_body_days', 1, 36500),
                       ('download_log_days', 1, 36500),
                       ('gallery_files_days', 1, 36500),
                       ('money_years', 1, 100), ('batch', 10, 10000))
               AS r (name, lo, hi)
         WHERE r.name = k;
        IF NOT FOUND THEN
            PERFORM darkroom_refuse(400, 'invalid_field', format(
                '%s: not a retention setting (jobs_days, webhook_days, '
                'email_body_days, download_log_days, gallery_files_days, '
                'money_years, batch).', left(k, 64)));
        END IF;
        IF jsonb_typeof(p->k) <> 'number' OR (p->>k) !~ '^[0-9]{1,6}$'
           OR (p->>k)::integer NOT BETWEEN v_min AND v_max
        THEN
            PERFORM darkroom_refuse(400, 'invalid_field', format(
                '%s: a whole number from %s to %s.', k, v_min, v_max));
        END IF;
    END LOOP;

    UPDATE retention_settings
       SET jobs_days = coalesce((p->>'jobs_days')::integer, jobs_days),
           webhook_days = coalesce((p->>'webhook_days')::integer,
                                   webhook_days),
           email_body_days = coalesce((p->>'email_body_days')::integer,
                                      email_body_days),
           download_log_days = coalesce((p->>'download_log_days')::integer,
                                        download_log_days),
           gallery_files_days = coalesce(
                                    (p->>'gallery_files_days')::integer,
                                    gallery_files_days),
           money_years = coalesce((p->>'money_years')::integer, money_years),
           batch = coalesce((p->>'batch')::integer, batch),
           updated_at = now();

    PERFORM console_audit_detail(jsonb_build_object('retention', p));

    RETURN retention_settings_json();
END $$;


-- The personal data of these orders minimised: the buyer's email becomes
-- erased-o<id>@invalid, name, address and phone go, and so do the raw
-- Stripe payloads and the emails about them; amounts, currency, dates,
-- items, invoice numbers stay.  Returns how many orders it changed.
CREATE OR REPLACE FUNCTION retention_anonymise_orders(p_ids bigint[])
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    n  integer;
BEGIN
    UPDATE orders
       SET email = 'erased-o' || id || '@invalid', shipping_name = NULL,
           shipping_address = NULL, shipping_phone = NULL,
           anonymised_at = now()
     WHERE id = ANY (p_ids) AND anonymised_at IS NULL;
    GET DIAGNOSTICS n = ROW_COUNT;

    UPDATE discount_redemptions
       SET email = 'erased-o' || order_id || '@invalid'
     WHERE order_id = ANY (p_ids);

    UPDATE stripe_events SET payload = '{}'
     WHERE order_id = ANY (p_ids) AND payload <> '{}';

    UPDATE emails
       SET recipient = 'erased-e' || id || '@invalid', body_text = '',
           body_html = NULL, attachments = '[]',
           body_purged_at = coalesce(body_purged_at, now())
     WHERE order_id = ANY (p_ids) AND kind = 'customer'
       AND status <> 'queued';

    RETURN n;
END $$;


-- A booking's client minimised (name, email, answers); its money stays.
CREATE OR REPLACE FUNCTION retention_anonymise_bookings(p_ids bigint[])
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    n  integer;
BEGIN
    UPDATE bookings
       SET client_name = 'erased', client_email = 'erased-b' || id
                                                  || '@invalid',
           answers = '{}', anonymised_at = now()
     WHERE id = ANY (p_ids) AND anonymised_at IS NULL;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;


-- One batch of each kind of data past its period (retention_settings):
-- rows taken with SKIP LOCKED, so the job never waits on a request.
-- Answers the counts; the job calls it again while any is not 0.
CREATE OR REPLACE FUNCTION retention_purge() RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    s        retention_settings%ROWTYPE;
    v_jobs   integer;
    v_hooks  integer;
    v_mail   integer;
    v_dl     integer;
    v_orders integer;
    v_books  integer;
BEGIN
    SELECT * INTO s FROM retention_settings;

    DELETE FROM jobs WHERE id IN (
        SELECT j.id FROM jobs j
         WHERE j.done_at < now() - make_interval(days => s.jobs_days)
         ORDER BY j.done_at LIMIT s.batch FOR UPDATE SKIP LOCKED);
    GET DIAGNOSTICS v_jobs = ROW_COUNT;

    UPDATE stripe_events SET payload = '{}' WHERE id IN (
        SELECT e.id FROM stripe_events e
         WHERE e.payload <> '{}'
           AND e.received_at < now() - make_interval(days => s.webhook_days)
         ORDER BY e.received_at LIMIT s.batch FOR UPDATE SKIP LOCKED);
    GET DIAGNOSTICS v_hooks = ROW_COUNT;

    UPDATE emails SET body_text = '', body_html = NULL, attachments = '[]',
                      body_purged_at = now()
     WHERE id IN (
        SELECT m.id FROM emails m
         WHERE m.body_purged_at IS NULL AND m.status <> 'queued'
           AND m.created_at
               < now() - make_interval(days => s.email_body_days)
         ORDER BY m.created_at LIMIT s.batch FOR UPDATE SKIP LOCKED);
    GET DIAGNOSTICS v_mail = ROW_COUNT;

    DELETE FROM gallery_downloads WHERE id IN (
        SELECT d.id FROM gallery_downloads d
         WHERE d.at < now() - make_interval(days => s.download_log_days)
         ORDER BY d.at LIMIT s.batch FOR UPDATE SKIP LOCKED);
    GET DIAGNOSTICS v_dl = ROW_COUNT;

    v_orders := retention_anonymise_orders(ARRAY(
        SELECT o.id FROM orders o
         WHERE o.anonymised_at IS NULL
           AND o.created_at < now() - make_interval(years => s.money_years)
         ORDER BY o.created_at LIMIT s.batch FOR UPDATE SKIP LOCKED));

    v_books := retention_anonymise_bookings(ARRAY(
        SELECT b.id FROM bookings b
         WHERE b.anonymised_at IS NULL
           AND b.ends_at < now() - make_interval(years => s.money_years)
         LIMIT s.batch FOR UPDATE SKIP LOCKED));

    RETURN jsonb_build_object('jobs', v_jobs, 'webhook_payloads', v_hooks,
        'email_bodies', v_mail, 'download_log', v_dl,
        'orders_anonymised', v_orders, 'bookings_anonymised', v_books);
END $$;


-- Galleries expired longer than gallery_files_days whose files are still
-- there (p_limit of them), one row per file to delete, relative to the
-- gallery root: photos' originals, web and proof copies, uploads at
-- <slug>/<name>; a gallery without files has one row with no path.  A
-- file another gallery not yet purged also shows is not listed: it goes
-- with the last gallery that shows it.
CREATE OR REPLACE FUNCTION gallery_files_due(p_limit integer)
RETURNS TABLE (id bigint, slug text, path text)
LANGUAGE sql STABLE AS $$
    SELECT g.id, g.slug, f.x
      FROM (SELECT g.id, g.slug, g.expires_at FROM galleries g,
                   retention_settings s
             WHERE g.files_purged_at IS NULL
               AND g.expires_at
                   < now() - make_interval(days => s.gallery_files_days)
             ORDER BY g.expires_at, g.id LIMIT p_limit) g
      LEFT JOIN LATERAL (
            SELECT p.original_path FROM gallery_photos p
             WHERE p.gallery_id = g.id
            UNION SELECT p.web_path FROM gallery_photos p
             WHERE p.gallery_id = g.id AND p.web_path IS NOT NULL
            UNION SELECT p.proof_path FROM gallery_photos p
             WHERE p.gallery_id = g.id AND p.proof_path IS NOT NULL
            UNION SELECT g.slug || '/' || u.name FROM gallery_uploads u
             WHERE u.gallery_id = g.id) AS f (x)
        -- a file another gallery still shows is left to that one
        ON NOT EXISTS (SELECT 1 FROM gallery_photos q
                         JOIN galleries h ON h.id = q.gallery_id
                        WHERE h.id <> g.id AND h.files_purged_at IS NULL
                          AND f.x IN (q.original_path, q.web_path,
                                      q.proof_path))
     ORDER BY g.expires_at, g.id, f.x;
$$;


CREATE OR REPLACE FUNCTION gallery_files_purged(p_id bigint)
RETURNS void LANGUAGE sql AS $$
    UPDATE galleries SET files_purged_at = now()
     WHERE id = p_id AND files_purged_at IS NULL;
$$;


-- the email of a data request, lower-cased; a 400 unless it looks like one
CREATE OR REPLACE FUNCTION data_request_email(p_email text)
RETURNS text LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF p_email IS NULL OR length(p_email) > 254
       OR btrim(p_email) !~ '^[^@\s]+@[^@\s]+$'
    THEN
        PERFORM darkroom_refuse(400, 'invalid_email',
                                'Give the customer''s email address.');
    END IF;
    RETURN lower(btrim(p_email));
END $$;


-- GET personal-data?email=: everything held about an email address, as
-- one JSON document: orders (with their lines, downloads and discount),
-- the galleries it is the client of, its visits of galleries (lists,
-- downloads), bookings and the emails sent to it.  A 404 when nothing is
-- held; a 400 for something that is not an email address.
CREATE OR REPLACE FUNCTION data_request_export(p_email text)
RETURNS text LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_email  text := data_request_email(p_email);
    v_doc    jsonb;
BEGIN
    SELECT jsonb_build_object(
        'email', v_email, 'exported_at', now(),
        'orders', coalesce((SELECT jsonb_agg(jsonb_build_object(
            'ref', o.ref, 'status', o.status, 'email', o.email,
            'created_at', o.created_at, 'paid_at', o.paid_at,
            'currency', o.currency, 'total', o.total,
            'paid_amount', o.paid_amount,
            'amount_refunded', o.amount_refunded,
            'invoice_number', o.invoice_number,
            'shipping_name', o.shipping_name,
            'shipping_address', o.shipping_address,
            'shipping_phone', o.shipping_phone, 'country', o.country,
            'discount_code', o.discount_code,
            'items', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                          'line', i.line, 'title', i.title,
                          'product', i.product_name, 'kind', i.kind,
                          'quantity', i.quantity,
                          'unit_amount', i.unit_amount,
                          'amount', i.amount) ORDER BY i.line), '[]')
                        FROM order_items i WHERE i.order_id = o.id),
            'downloads', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                          'line', d.line, 'name', d.name,
                          'expires_at', d.expires_at,
                          'max_downloads', d.max_downloads,
                          'used', d.used) ORDER BY d.id), '[]')
                        FROM download_grants d WHERE d.order_id = o.id))
            ORDER BY o.id)
            FROM orders o WHERE lower(o.email) = v_email), '[]'),
        'galleries', coalesce((SELECT jsonb_agg(jsonb_build_object(
            'slug', g.slug, 'title', g.title,
            'client_email', g.client_email,
            'delivered_at', g.delivered_at, 'expires_at', g.expires_at,
            'downloads', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                              'path', d.path, 'at', d.at,
                              'bytes', d.bytes) ORDER BY d.id), '[]')
                            FROM gallery_downloads d
                           WHERE d.gallery_id = g.id
                             AND d.visitor_id IS NULL))
            ORDER BY g.id)
            FROM galleries g WHERE lower(g.client_email) = v_email), '[]'),
        'gallery_visits', coalesce((SELECT jsonb_agg(jsonb_build_object(
            'gallery', g.slug, 'name', v.name, 'email', v.email,
            'created_at', v.created_at, 'last_seen_at', v.last_seen_at,
            'lists', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                          'name', l.name,
                          'submitted_at', l.submitted_at,
                          'photos', (SELECT count(*)
                                       FROM gallery_list_photos lp
                                      WHERE lp.list_id = l.id))
                          ORDER BY l.id), '[]')
                        FROM gallery_lists l WHERE l.visitor_id = v.id),
            'downloads', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                              'path', d.path, 'at', d.at,
                              'bytes', d.bytes) ORDER BY d.id), '[]')
                            FROM gallery_downloads d
                           WHERE d.visitor_id = v.id))
            ORDER BY v.id)
            FROM gallery_visitors v JOIN galleries g ON g.id = v.gallery_id
           WHERE lower(v.email) = v_email), '[]'),
        'bookings', coalesce((SELECT jsonb_agg(jsonb_build_object(
            'ref', b.ref, 'state', b.state, 'starts_at', b.starts_at,
            'ends_at', b.ends_at, 'client_name', b.client_name,
            'client_email', b.client_email,
            'client_time_zone', b.client_time_zone, 'answers', b.answers,
            'currency', b.currency, 'price', b.price,
            'deposit', b.deposit, 'deposit_paid', b.deposit_paid,
            'balance_paid', b.balance_paid,
            'created_at', b.created_at) ORDER BY b.id)
            FROM bookings b WHERE lower(b.client_email) = v_email), '[]'),
        'emails', coalesce((SELECT jsonb_agg(jsonb_build_object(
            'id', m.id, 'template', m.template, 'recipient', m.recipient,
            'subject', m.subject, 'status', m.status,
            'created_at', m.created_at, 'sent_at', m.sent_at,
            'body_text', nullif(m.body_text, '')) ORDER BY m.id)
            FROM emails m WHERE lower(m.recipient) = v_email), '[]'))
      INTO v_doc;

    IF v_doc->'orders' = '[]' AND v_doc->'galleries' = '[]'
       AND v_doc->'gallery_visits' = '[]' AND v_doc->'bookings' = '[]'
       AND v_doc->'emails' = '[]'
    THEN
        PERFORM darkroom_refuse(404, 'no_data',
                                'Nothing is held about this email address.');
    END IF;

    RETURN v_doc::text;
END $$;


-- POST personal-data/erase {"email"}: the personal data held about an
-- email address anonymised everywhere, in one transaction; the money
-- records stay (amounts, currency, dates, invoice numbers).  The audit
-- row's detail names the address by its SHA-256 only.  Answers the counts
-- of rows changed: an address erased already, or never known, changes
-- nothing and answers zeros.
CREATE OR REPLACE FUNCTION data_request_erase(p_body text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    p         jsonb;
    v_email   text;
    v_orders  integer;
    v_books   integer;
    v_mail    integer;
    v_gall    integer;
    v_visit   integer;
BEGIN
    p := bookings_admin_body(p_body, false);
    IF jsonb_typeof(p->'email') IS DISTINCT FROM 'string' THEN
        PERFORM darkroom_refuse(400, 'invalid_email',
                                'The body is {"email": "..."}.');
    END IF;
    v_email := data_request_email(p->>'email');

    v_orders := retention_anonymise_orders(ARRAY(
        SELECT o.id FROM orders o WHERE lower(o.email) = v_email
           FOR UPDATE));
    v_books := retention_anonymise_bookings(ARRAY(
        SELECT b.id FROM bookings b WHERE lower(b.client_email) = v_email
           FOR UPDATE));

    UPDATE emails
       SET recipient = 'erased-e' || id || '@invalid', body_text = '',
           body_html = NULL, attachments = '[]',
           body_purged_at = coalesce(body_purged_at, now())
     WHERE lower(recipient) = v_email AND status <> 'queued';
    GET DIAGNOSTICS v_mail = ROW_COUNT;

    UPDATE galleries SET client_email = NULL, updated_at = now()
     WHERE lower(client_email) = v_email;
    GET DIAGNOSTICS v_gall = ROW_COUNT;

    UPDATE gallery_visitors
       SET name = 'erased', email = 'erased-v' || id || '@invalid'
     WHERE lower(email) = v_email;
    GET DIAGNOSTICS v_visit = ROW_COUNT;

    PERFORM console_audit_detail(jsonb_build_object(
        'data_request', 'erase',
        'email_sha256', encode(sha256(convert_to(v_email, 'UTF8')), 'hex'),
        'orders', v_orders, 'bookings', v_books, 'emails', v_mail,
        'galleries', v_gall, 'gallery_visitors', v_visit));

    RETURN jsonb_build_object('erased', v_orders + v_books + v_mail + v_gall
                                        + v_visit > 0,
        'orders', v_orders, 'bookings', v_books, 'emails', v_mail,
        'galleries', v_gall, 'gallery_visitors', v_visit)::text;
END $$;
