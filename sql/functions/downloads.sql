-- sql/functions/downloads.sql: digital delivery.  A paid order's digital
-- lines get download grants (download_grant_order), each download is
-- counted in one statement (download_take), a refund revokes them (the
-- trigger download_grants_refund), an admin re-issues them
-- (admin_downloads_reissue), and the order page and the delivery email
-- list them (download_links_json) for the C side to sign.
--
-- Tables: download_grants (sql/020_downloads.sql); reads orders,
-- order_items, photos, gallery_photos (a gallery line's original); writes
-- jobs ('email' template 'delivery') and order_events.


-- The grant's lifetime and count as the nginx writing it is configured
-- (darkroom_download_ttl, darkroom_download_limit): darkroom sets them on
-- each database session it opens; any other session gets the defaults.
CREATE OR REPLACE FUNCTION download_settings(OUT ttl interval,
                                             OUT max_downloads integer)
LANGUAGE sql STABLE AS $$
SELECT make_interval(secs => coalesce(nullif(current_setting(
               'darkroom.download_ttl', true), '')::bigint, 2592000)),
       coalesce(nullif(current_setting('darkroom.download_limit', true),
                       '')::integer, 5);
$$;


-- The name a download is saved as: the photo's id and the original's
-- extension ("harbour-dawn.tif"), safe in a path and a header.
CREATE OR REPLACE FUNCTION download_name(p_photo text, p_file text)
RETURNS text LANGUAGE sql IMMUTABLE AS $$
SELECT left(regexp_replace(p_photo, '[^A-Za-z0-9._-]+', '-', 'g'), 100)
       || coalesce(lower(substring(p_file from '(\.[A-Za-z0-9]{1,8})$')),
                   '');
$$;


-- Grants for the order's digital lines that have none yet, and the
-- delivery email when any was made: called in the transaction that makes
-- the order paid (order_mark_paid, order_resolve_fulfil).  A line whose
-- photo has no original file (print_path; a gallery line: its gallery
-- photo, gone since) gets none, and the order's history says so.  Lines
-- of other kinds (print, a proofing selection's extra photos) get none.
-- Returns how many grants were made.
CREATE OR REPLACE FUNCTION download_grant_order(p_order bigint,
                                                p_cause text)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    v_set      record;
    v_made     integer;
    v_missing  jsonb;
BEGIN
    -- an order without digital lines (most prints): one cheap look
    PERFORM 1 FROM order_items i
     WHERE i.order_id = p_order AND i.kind = 'digital' LIMIT 1;
    IF NOT FOUND THEN
        RETURN 0;
    END IF;
    v_set := download_settings();

    -- a gallery line's file is the gallery's original: "gallery:<path>",
    -- a path under the download location's darkroom_download_gallery_root,
    -- saved under the photo's own file name
    INSERT INTO download_grants (order_id, line, photo_id, file, name,
                                 nonce, expires_at, max_downloads)
    SELECT i.order_id, i.line, i.photo_id, f.file,
           CASE WHEN gp.id IS NOT NULL
                THEN download_name(regexp_replace(gp.name, '\.[^.]*$', ''),
                                   gp.original_path)
                ELSE download_name(i.photo_id, f.file) END,
           substr(replace(gen_random_uuid()::text, '-', ''), 1, 16),
           now() + v_set.ttl, v_set.max_downloads
      FROM order_items i
      LEFT JOIN photos ph ON ph.id = i.photo_id
      LEFT JOIN gallery_photos gp ON gp.id = i.gallery_photo_id
     CROSS JOIN LATERAL (
           SELECT CASE WHEN i.gallery_photo_id IS NOT NULL
                       THEN 'gallery:' || gp.original_path
                       WHEN i.photo_id LIKE 'gallery:%' THEN NULL
                       ELSE ph.print_path END AS file) f
     WHERE i.order_id = p_order AND i.kind = 'digital'
       AND coalesce(f.file, '') <> ''
    ORDER BY i.line
    ON CONFLICT (order_id, line) DO NOTHING;
    GET DIAGNOSTICS v_made = ROW_COUNT;

    SELECT jsonb_agg(i.line ORDER BY i.line) INTO v_missing
      FROM order_items i
     WHERE i.order_id = p_order AND i.kind = 'digital'
       AND NOT EXISTS (SELECT 1 FROM download_grants g
                        WHERE g.order_id = i.order_id AND g.line = i.line);

    IF v_missing IS NOT NULL THEN
        INSERT INTO order_events (order_id, from_status, to_status, cause,
                                  detail)
        SELECT o.id, o.status, o.status, p_cause,
               jsonb_build_object('downloads_missing', v_missing)
          FROM orders o WHERE o.id = p_order;
    END IF;

    IF v_made > 0 THEN
        INSERT INTO jobs (kind, payload, dedupe_key)
        VALUES ('email', jsonb_build_object('template', 'delivery',
                                            'order_id', p_order),
                'email:delivery:' || p_order)
        ON CONFLICT (dedupe_key) DO NOTHING;
    END IF;

    RETURN v_made;
END $$;


-- One download, counted atomically.  p_mode: 'count' (a GET from byte 0:
-- counts, only while downloads are left), 'continue' (a Range starting
-- later: not counted once the grant has been counted at all), 'head'
-- (counts nothing).  The UPDATE takes the row lock and PostgreSQL checks
-- the conditions again on the row it locked, so N parallel downloads
-- against a limit of M < N succeed exactly M times.  result is 'ok' with
-- the file, or why not: unknown, replaced (re-issued since), revoked,
-- expired, exhausted.
CREATE OR REPLACE FUNCTION download_take(p_id bigint, p_nonce text,
                                         p_mode text)
RETURNS TABLE (result text, file text, name text, used integer,
               max_downloads integer)
LANGUAGE plpgsql AS $$
DECLARE
    g  download_grants%ROWTYPE;
BEGIN
    IF p_mode = 'head' THEN
        SELECT * INTO g FROM download_grants d
         WHERE d.id = p_id AND d.nonce = p_nonce
           AND d.used < d.max_downloads AND d.expires_at > now()
           AND d.revoked_at IS NULL;
    ELSE
        UPDATE download_grants d
           SET used = d.used + CASE WHEN p_mode = 'count' OR d.used = 0
                                    THEN 1 ELSE 0 END
         WHERE d.id = p_id AND d.nonce = p_nonce
           AND d.expires_at > now() AND d.revoked_at IS NULL
           AND (d.used < d.max_downloads
                OR (p_mode = 'continue' AND d.used > 0))
        RETURNING d.* INTO g;
    END IF;

    IF g.id IS NOT NULL THEN
        RETURN QUERY SELECT 'ok'::text, g.file, g.name, g.used,
                            g.max_downloads;
        RETURN;
    END IF;

    SELECT * INTO g FROM download_grants d WHERE d.id = p_id;

    RETURN QUERY SELECT CASE
               WHEN g.id IS NULL THEN 'unknown'
               WHEN g.nonce <> p_nonce THEN 'replaced'
               WHEN g.revoked_at IS NOT NULL THEN 'revoked'
               WHEN g.expires_at <= now() THEN 'expired'
               ELSE 'exhausted' END,
           NULL::text, g.name, g.used, g.max_downloads;
END $$;


-- What the order page and the delivery email list: the order's grants
-- that stand (not revoked), with what the C side needs to sign each link
-- (grant, nonce, exp); it replaces those three with "url".
CREATE OR REPLACE FUNCTION download_links_json(p_order bigint)
RETURNS json LANGUAGE sql STABLE AS $$
SELECT coalesce(json_agg(json_build_object(
           'line', g.line, 'title', i.title, 'name', g.name,
           'expires_at', g.expires_at,
           'expires_display', to_char(g.expires_at AT TIME ZONE 'UTC',
                                      'FMDD Mon YYYY'),
           'remaining', greatest(g.max_downloads - g.used, 0),
           'grant', g.id, 'nonce', g.nonce,
           'exp', extract(epoch FROM g.expires_at)::bigint)
           ORDER BY g.line), '[]')
  FROM download_grants g
  JOIN order_items i ON i.order_id = g.order_id AND i.line = g.line
  JOIN orders o ON o.id = g.order_id
 WHERE g.order_id = p_order AND g.revoked_at IS NULL
   AND o.status IN ('paid', 'in_production', 'shipped', 'delivered');
$$;


-- A full refund revokes the order's links in the refund's transaction
-- (a partial refund leaves them: the admin refunds the download in full
-- to take it back).
CREATE OR REPLACE FUNCTION download_grants_on_refund() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE download_grants SET revoked_at = now()
     WHERE order_id = NEW.id AND revoked_at IS NULL;
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS download_grants_refund ON orders;
CREATE TRIGGER download_grants_refund
    AFTER UPDATE OF status ON orders
    FOR EACH ROW
    WHEN (NEW.status = 'refunded' AND OLD.status IS DISTINCT FROM 'refunded')
    EXECUTE FUNCTION download_grants_on_refund();


-- POST orders/<ref>/downloads/reissue: every grant of a paid order gets a
-- new nonce (the old links stop), a new expiry and its count back; a
-- digital line without a grant gets one.  Recorded in the order's history
-- (cause 'admin'), and the delivery email goes again.
CREATE OR REPLACE FUNCTION admin_downloads_reissue(p_ref text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    o      orders%ROWTYPE;
    v_set  record := download_settings();
    v_n    integer;
    v_ev   bigint;
BEGIN
    SELECT * INTO o FROM orders WHERE ref = p_ref FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM darkroom_refuse(404, 'not_found', 'There is no such order.');
    END IF;
    IF o.status NOT IN ('paid', 'in_production', 'shipped', 'delivered') THEN
        PERFORM darkroom_refuse(409, 'not_paid', format(
            'The order is %s: only a paid order has downloads.', o.status));
    END IF;
    IF NOT EXISTS (SELECT 1 FROM order_items
                    WHERE order_id = o.id AND kind = 'digital')
    THEN
        PERFORM darkroom_refuse(409, 'no_downloads',
            'The order has no digital lines.');
    END IF;

    UPDATE download_grants
       SET nonce = substr(replace(gen_random_uuid()::text, '-', ''), 1, 16),
           expires_at = now() + v_set.ttl,
           max_downloads = v_set.max_downloads, used = 0,
           revoked_at = NULL, issued_at = now()
     WHERE order_id = o.id;
    GET DIAGNOSTICS v_n = ROW_COUNT;

    v_n := v_n + download_grant_order(o.id, 'admin');

    INSERT INTO order_events (order_id, from_status, to_status, cause, detail)
    VALUES (o.id, o.status, o.status, 'admin',
            jsonb_build_object('downloads_reissued', v_n,
                               'expires_at', now() + v_set.ttl,
                               'max_downloads', v_set.max_downloads))
    RETURNING id INTO v_ev;

    INSERT INTO jobs (kind, payload, dedupe_key)
    VALUES ('email', jsonb_build_object('template', 'delivery',
                                        'order_id', o.id),
            'email:delivery:' || o.id || ':' || v_ev)
    ON CONFLICT (dedupe_key) DO NOTHING;

    RETURN json_build_object('order', o.ref, 'reissued', v_n,
                             'downloads', download_links_json(o.id))::text;
END $$;
