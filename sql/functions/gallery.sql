-- sql/functions/gallery.sql: client galleries: state and revocation,
-- password/PIN attempts and lockouts, photos and favourites, downloads and
-- zips, and the gallery admin.
--
-- Tables: galleries, gallery_photos, gallery_favourites, gallery_downloads,
-- gallery_zips, gallery_failures, gallery_lockouts,
-- gallery_listing_versions, jobs; reads photos, public_versions.
-- Calls: darkroom_refuse (core), admin_slug (shop).


-- What every nginx worker keeps in shared memory: the galleries whose links
-- are not all valid any more.  A link of generation g of gallery id passes
-- if id is absent, or g >= generation and the gallery is not revoked.
CREATE OR REPLACE FUNCTION gallery_revocations()
RETURNS TABLE (id bigint, generation integer, revoked boolean)
LANGUAGE sql STABLE AS $$
    SELECT g.id, g.generation,
           g.revoked_at IS NOT NULL
           OR (g.expires_at IS NOT NULL AND g.expires_at <= now())
      FROM galleries g
     WHERE g.generation > 1 OR g.revoked_at IS NOT NULL
        OR (g.expires_at IS NOT NULL AND g.expires_at <= now())
     ORDER BY g.id;
$$;


-- A batch of download records, a JSON array from nginx.
CREATE OR REPLACE FUNCTION gallery_downloads_log(p jsonb) RETURNS integer
LANGUAGE sql AS $$
    WITH x AS (
        SELECT * FROM jsonb_to_recordset(p) AS x(g bigint, gen integer,
               path text, client text, status integer, bytes bigint,
               at double precision, v bigint)
    ), ins AS (
        INSERT INTO gallery_downloads (gallery_id, generation, photo_id, path,
                                       client, status, bytes, at, visitor_id)
        SELECT x.g, x.gen,
               (SELECT ph.id FROM gallery_photos ph
                 WHERE ph.gallery_id = x.g
                   AND (x.path LIKE '%/' || ph.original_path
                        OR x.path LIKE '%/' || ph.web_path)
                 ORDER BY ph.id LIMIT 1),
               x.path, x.client, x.status, coalesce(x.bytes, 0),
               to_timestamp(x.at), x.v
          FROM x
        RETURNING 1
    )
    SELECT count(*)::integer FROM ins;
$$;


-- The client API.  The gallery as the thread needs it, by slug: one row.
CREATE OR REPLACE FUNCTION gallery_state(p_slug text)
RETURNS TABLE (id bigint, generation integer, title text,
               expires_at text, expires_epoch bigint, expired boolean,
               revoked boolean, password_hash text, pin_hash text,
               downloads boolean, download_size text, currency text)
LANGUAGE sql STABLE AS $$
    SELECT g.id, g.generation, g.title,
           to_char(g.expires_at AT TIME ZONE 'UTC',
                   'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
           extract(epoch FROM g.expires_at)::bigint,
           g.expires_at IS NOT NULL AND g.expires_at <= now(),
           g.revoked_at IS NOT NULL,
           g.password_hash, g.pin_hash, g.downloads, g.download_size,
           g.currency::text
      FROM galleries g
     WHERE g.slug = p_slug;
$$;


-- Seconds the client is still locked out of kind for this gallery, or 0.
CREATE OR REPLACE FUNCTION gallery_lockout(p_gallery bigint, p_client text, p_kind text)
RETURNS integer LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT ceil(extract(epoch FROM f.locked_until - now()))
                       FROM gallery_failures f
                      WHERE f.gallery_id = p_gallery AND f.client = p_client
                        AND f.kind = p_kind AND f.locked_until > now()),
                    0)::integer;
$$;


-- Records a password or PIN attempt.  A success forgets the failures; the
-- p_max-th failure within p_window seconds locks the client out for p_lock
-- seconds.  Returns the seconds locked out now (0: not locked).
CREATE OR REPLACE FUNCTION gallery_attempt(p_gallery bigint, p_client text, p_kind text,
                                p_ok boolean, p_max integer, p_window integer,
                                p_lock integer)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    v  gallery_failures%ROWTYPE;
BEGIN
    IF p_ok THEN
        DELETE FROM gallery_failures
         WHERE gallery_id = p_gallery AND client = p_client AND kind = p_kind;
        RETURN 0;
    END IF;

    INSERT INTO gallery_failures AS f (gallery_id, client, kind, failures)
    VALUES (p_gallery, p_client, p_kind, 1)
    ON CONFLICT (gallery_id, client, kind) DO UPDATE
       SET failures = CASE WHEN f.first_at < now() - make_interval(secs => p_window)
                            AND (f.locked_until IS NULL OR f.locked_until <= now())
                           THEN 1 ELSE f.failures + 1 END,
           first_at = CASE WHEN f.first_at < now() - make_interval(secs => p_window)
                            AND (f.locked_until IS NULL OR f.locked_until <= now())
                           THEN now() ELSE f.first_at END
    RETURNING * INTO v;

    IF v.failures >= p_max THEN
        UPDATE gallery_failures
           SET locked_until = now() + make_interval(secs => p_lock),
               failures = 0, first_at = now()
         WHERE gallery_id = p_gallery AND client = p_client AND kind = p_kind;
        RETURN p_lock;
    END IF;

    RETURN 0;
END $$;


-- The photos of a gallery, in order, with the client's favourites.  The
-- proof is the proof copy or NULL: never the original or the web-size
-- file, which may be the download a PIN guards.
CREATE OR REPLACE FUNCTION gallery_photos_list(p_gallery bigint)
RETURNS TABLE (id bigint, name text, proof_path text, web_path text,
               original_path text, bytes bigint, favourite boolean,
               width integer, height integer)
LANGUAGE sql STABLE AS $$
    SELECT ph.id, ph.name, ph.proof_path, ph.web_path, ph.original_path,
           ph.bytes,
           EXISTS (SELECT 1 FROM gallery_favourites f
                    WHERE f.gallery_id = p_gallery AND f.photo_id = ph.id),
           ph.width, ph.height
      FROM gallery_photos ph
     WHERE ph.gallery_id = p_gallery
     ORDER BY ph.position, ph.id;
$$;


CREATE OR REPLACE FUNCTION gallery_favourite(p_gallery bigint, p_photo bigint,
                                  p_on boolean)
RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM gallery_photos WHERE id = p_photo AND gallery_id = p_gallery;
    IF NOT FOUND THEN
        PERFORM darkroom_refuse(404, 'unknown_photo',
                                'There is no such photo in this gallery.');
    END IF;

    IF p_on THEN
        INSERT INTO gallery_favourites (gallery_id, photo_id)
        VALUES (p_gallery, p_photo) ON CONFLICT DO NOTHING;
    ELSE
        DELETE FROM gallery_favourites
         WHERE gallery_id = p_gallery AND photo_id = p_photo;
    END IF;

    RETURN json_build_object('favourites',
        (SELECT coalesce(json_agg(f.photo_id ORDER BY f.photo_id), '[]')
           FROM gallery_favourites f WHERE f.gallery_id = p_gallery))::text;
END $$;


-- The files of a download: the selection (NULL: the whole gallery) in
-- gallery order, with the size the gallery delivers.  Refuses unknown ids.
CREATE OR REPLACE FUNCTION gallery_download_files(p_gallery bigint, p_ids bigint[])
RETURNS TABLE (id bigint, name text, path text, bytes bigint, crc32 bigint,
               created bigint)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_size  text;
    v_n     integer;
BEGIN
    SELECT download_size INTO v_size FROM galleries WHERE galleries.id = p_gallery;

    IF p_ids IS NOT NULL THEN
        SELECT count(*) INTO v_n FROM gallery_photos ph
         WHERE ph.gallery_id = p_gallery AND ph.id = ANY (p_ids);
        IF v_n <> (SELECT count(DISTINCT x) FROM unnest(p_ids) x) THEN
            PERFORM darkroom_refuse(404, 'unknown_photo',
                'A selected photo is not in this gallery.');
        END IF;
    END IF;

    RETURN QUERY
    SELECT ph.id, ph.name,
           CASE WHEN v_size = 'web' AND ph.web_path IS NOT NULL
                     AND ph.web_bytes IS NOT NULL AND ph.web_crc32 IS NOT NULL
                THEN ph.web_path ELSE ph.original_path END,
           CASE WHEN v_size = 'web' AND ph.web_path IS NOT NULL
                     AND ph.web_bytes IS NOT NULL AND ph.web_crc32 IS NOT NULL
                THEN ph.web_bytes ELSE ph.bytes END,
           CASE WHEN v_size = 'web' AND ph.web_path IS NOT NULL
                     AND ph.web_bytes IS NOT NULL AND ph.web_crc32 IS NOT NULL
                THEN ph.web_crc32 ELSE ph.crc32 END,
           extract(epoch FROM ph.created_at)::bigint
      FROM gallery_photos ph
     WHERE ph.gallery_id = p_gallery
       AND (p_ids IS NULL OR ph.id = ANY (p_ids))
     ORDER BY ph.position, ph.id;
END $$;


CREATE OR REPLACE FUNCTION gallery_zip_create(p_gallery bigint, p_generation integer,
                                   p_ids bigint[], p_token_hash text,
                                   p_ttl integer)
RETURNS void LANGUAGE sql AS $$
    DELETE FROM gallery_zips WHERE expires_at < now() - interval '1 day';
    INSERT INTO gallery_zips (token_hash, gallery_id, generation, photo_ids,
                              expires_at)
    SELECT p_token_hash, p_gallery, p_generation,
           coalesce(p_ids, (SELECT array_agg(ph.id ORDER BY ph.position, ph.id)
                              FROM gallery_photos ph
                             WHERE ph.gallery_id = p_gallery), '{}'),
           now() + make_interval(secs => p_ttl);
$$;


-- The entries of a ZIP by token, checked against the gallery's state.
CREATE OR REPLACE FUNCTION gallery_zip_files(p_slug text, p_token_hash text)
RETURNS TABLE (id bigint, name text, path text, bytes bigint, crc32 bigint,
               created bigint, gallery_id bigint, generation integer)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    z  gallery_zips%ROWTYPE;
    g  galleries%ROWTYPE;
BEGIN
    SELECT * INTO g FROM galleries WHERE slug = p_slug;
    SELECT * INTO z FROM gallery_zips
     WHERE token_hash = p_token_hash AND gallery_zips.gallery_id = g.id;

    IF NOT FOUND THEN
        PERFORM darkroom_refuse(404, 'not_found', 'There is no such download.');
    END IF;

    IF g.revoked_at IS NOT NULL OR z.generation <> g.generation THEN
        PERFORM darkroom_refuse(410, 'link_revoked',
                                'This download link has been withdrawn.');
    END IF;

    IF z.expires_at <= now()
       OR (g.expires_at IS NOT NULL AND g.expires_at <= now())
    THEN
        PERFORM darkroom_refuse(410, 'link_expired',
                                'This download link has expired.');
    END IF;

    RETURN QUERY
    SELECT f.id, f.name, f.path, f.bytes, f.crc32, f.created, g.id,
           g.generation
      FROM gallery_download_files(g.id, z.photo_ids) f;
END $$;


-- The admin API.
CREATE OR REPLACE FUNCTION gallery_admin_json(g galleries) RETURNS json
LANGUAGE sql STABLE AS $$
    SELECT json_build_object('id', g.id, 'slug', g.slug, 'title', g.title,
        'client_email', g.client_email, 'expires_at', g.expires_at,
        'has_password', g.password_hash IS NOT NULL,
        'has_pin', g.pin_hash IS NOT NULL,
        'downloads', g.downloads, 'download_size', g.download_size,
        'generation', g.generation, 'revoked_at', g.revoked_at,
        'delivered_at', g.delivered_at,
        -- selling and proofing (gallery_shop.sql)
        'price_sheet', g.price_sheet_id, 'currency', g.currency,
        'selection_limit', g.selection_limit,
        'extra_photo_amount', g.extra_photo_amount,
        'visitor_download_limit', g.visitor_download_limit,
        'photos', (SELECT count(*) FROM gallery_photos ph
                    WHERE ph.gallery_id = g.id),
        'bytes', (SELECT coalesce(sum(ph.bytes), 0) FROM gallery_photos ph
                   WHERE ph.gallery_id = g.id),
        'created_at', g.created_at, 'updated_at', g.updated_at);
$$;


CREATE OR REPLACE FUNCTION gallery_admin_list() RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT json_build_object('galleries',
        coalesce(json_agg(gallery_admin_json(g) ORDER BY g.created_at DESC,
                          g.id DESC), '[]'))::text
      FROM galleries g;
$$;


-- As in 008, with the warnings (gallery_admin_photos() answers with it).
CREATE OR REPLACE FUNCTION gallery_admin_get(p_slug text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT json_build_object('gallery', gallery_admin_json(g),
        'photos', (SELECT coalesce(json_agg(json_build_object(
                       'id', ph.id, 'name', ph.name, 'position', ph.position,
                       'original', ph.original_path, 'bytes', ph.bytes,
                       'crc32', ph.crc32, 'sha256', ph.sha256,
                       'web', ph.web_path, 'web_bytes', ph.web_bytes,
                       'web_crc32', ph.web_crc32, 'proof', ph.proof_path,
                       'width', ph.width, 'height', ph.height,
                       'favourite', EXISTS (SELECT 1 FROM gallery_favourites f
                                             WHERE f.photo_id = ph.id))
                       ORDER BY ph.position, ph.id), '[]')
                     FROM gallery_photos ph WHERE ph.gallery_id = g.id),
        'warnings', gallery_admin_warnings(g.id),
        'orders', gallery_admin_orders(g.id))::text
      FROM galleries g WHERE g.slug = p_slug;
$$;


-- Creates or updates a gallery.  password_hash and pin_hash arrive hashed
-- by nginx; a key present with null clears it, an absent key keeps it.
CREATE OR REPLACE FUNCTION gallery_admin_upsert(p_slug text, p jsonb) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    v  galleries%ROWTYPE;
BEGIN
    IF jsonb_typeof(p) IS DISTINCT FROM 'object' THEN
        PERFORM darkroom_refuse(400, 'invalid_json',
                                'The body must be a JSON object.');
    END IF;

    p_slug := coalesce(p_slug, p->>'slug');
    PERFORM admin_slug(p_slug, 'gallery');

    IF p ? 'download_size'
       AND p->>'download_size' NOT IN ('original', 'web') THEN
        PERFORM darkroom_refuse(400, 'invalid_download_size',
            'download_size is "original" or "web".');
    END IF;

    IF p ? 'client_email' AND p->>'client_email' !~ '^[^@\s]+@[^@\s]+$' THEN
        PERFORM darkroom_refuse(400, 'invalid_email',
                                'client_email is not an email address.');
    END IF;

    PERFORM gallery_admin_sale_check(p);

    BEGIN
        INSERT INTO galleries AS g (slug, title, client_email, expires_at,
                                    password_hash, pin_hash, downloads,
                                    download_size)
        VALUES (p_slug, coalesce(p->>'title', ''), p->>'client_email',
                (p->>'expires_at')::timestamptz, p->>'password_hash',
                p->>'pin_hash', coalesce((p->>'downloads')::boolean, true),
                coalesce(p->>'download_size', 'original'))
        ON CONFLICT (slug) DO UPDATE SET
            title = CASE WHEN p ? 'title' THEN coalesce(p->>'title', '')
                         ELSE g.title END,
            client_email = CASE WHEN p ? 'client_email'
                                THEN p->>'client_email' ELSE g.client_email END,
            expires_at = CASE WHEN p ? 'expires_at'
                              THEN (p->>'expires_at')::timestamptz
                              ELSE g.expires_at END,
            password_hash = CASE WHEN p ? 'password_hash'
                                 THEN p->>'password_hash'
                                 ELSE g.password_hash END,
            pin_hash = CASE WHEN p ? 'pin_hash' THEN p->>'pin_hash'
                            ELSE g.pin_hash END,
            downloads = coalesce((p->>'downloads')::boolean, g.downloads),
            download_size = coalesce(p->>'download_size', g.download_size),
            updated_at = now()
        RETURNING * INTO v;
    EXCEPTION
        WHEN invalid_datetime_format OR datetime_field_overflow
             OR invalid_text_representation THEN
            PERFORM darkroom_refuse(400, 'invalid_value',
                'expires_at must be an ISO 8601 time and downloads a boolean.');
    END;

    v := gallery_admin_sale_set(v.id, p);

    RETURN json_build_object('gallery', gallery_admin_json(v))::text;
END $$;


-- revoke: every link and cookie stops; rotate: links and cookies are
-- replaced (new ones work); restore: a revoked gallery opens again with
-- fresh links.
CREATE OR REPLACE FUNCTION gallery_admin_action(p_slug text, p_action text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v  galleries%ROWTYPE;
BEGIN
    IF p_action NOT IN ('revoke', 'rotate', 'restore', 'deliver') THEN
        PERFORM darkroom_refuse(404, 'not_found', 'There is no such action.');
    END IF;

    UPDATE galleries g SET
        generation = g.generation
                     + CASE WHEN p_action = 'deliver' THEN 0 ELSE 1 END,
        revoked_at = CASE p_action WHEN 'revoke' THEN now()
                                   WHEN 'restore' THEN NULL
                                   ELSE g.revoked_at END,
        delivered_at = CASE WHEN p_action = 'deliver' THEN now()
                            ELSE g.delivered_at END,
        updated_at = now()
     WHERE g.slug = p_slug
    RETURNING * INTO v;

    IF NOT FOUND THEN
        PERFORM darkroom_refuse(404, 'not_found', 'There is no such gallery.');
    END IF;

    IF p_action = 'deliver' THEN
        IF v.client_email IS NULL THEN
            PERFORM darkroom_refuse(409, 'no_client_email',
                'The gallery has no client email to deliver to.');
        END IF;

        INSERT INTO jobs (kind, payload, dedupe_key)
        VALUES ('email', json_build_object('template', 'gallery_delivered',
                                           'gallery_id', v.id,
                                           'to', v.client_email)::jsonb,
                'gallery_delivered:' || v.id || ':'
                || extract(epoch FROM v.delivered_at)::bigint)
        ON CONFLICT (dedupe_key) DO NOTHING;
    END IF;

    RETURN json_build_object('gallery', gallery_admin_json(v))::text;
END $$;


-- share: {"email", "message"} emails the gallery's link to anyone (a
-- friend of the client, a second guest), with an optional personal
-- message: one "email" job (template gallery_shared) in this transaction.
-- A revoked or closed gallery is refused: its link would not open.
CREATE OR REPLACE FUNCTION gallery_admin_share(p_slug text, p_body text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v      galleries%ROWTYPE;
    p      jsonb;
    v_to   text;
    v_msg  text;
    v_job  bigint;
BEGIN
    BEGIN
        p := nullif(p_body, '')::jsonb;
    EXCEPTION WHEN invalid_text_representation THEN
        PERFORM darkroom_refuse(400, 'invalid_json',
                                'The body must be a JSON object.');
    END;
    IF jsonb_typeof(p) IS DISTINCT FROM 'object' THEN
        PERFORM darkroom_refuse(400, 'invalid_json',
                                'The body must be a JSON object.');
    END IF;

    v_to := CASE WHEN jsonb_typeof(p->'email') = 'string'
                 THEN btrim(p->>'email') END;
    IF v_to IS NULL OR length(v_to) > 254
       OR v_to !~ '^[^@\s,;<>"()]+@[^@\s,;<>"()]+\.[^@\s,;<>"()]+$'
    THEN
        PERFORM darkroom_refuse(400, 'bad_email',
            'Give one valid email address to share the gallery with.');
    END IF;

    IF p ? 'message' AND jsonb_typeof(p->'message') NOT IN ('string', 'null')
       OR length(p->>'message') > 1000
    THEN
        PERFORM darkroom_refuse(400, 'bad_message',
            'The message is text of at most 1000 characters.');
    END IF;
    v_msg := nullif(btrim(p->>'message'), '');

    SELECT * INTO v FROM galleries g WHERE g.slug = p_slug;
    IF NOT FOUND THEN
        PERFORM darkroom_refuse(404, 'not_found', 'There is no such gallery.');
    END IF;
    IF v.revoked_at IS NOT NULL THEN
        PERFORM darkroom_refuse(409, 'gallery_revoked',
            'The gallery is revoked: its link does not open. Restore it '
            'before sharing it.');
    END IF;
    IF v.expires_at IS NOT NULL AND v.expires_at <= now() THEN
        PERFORM darkroom_refuse(409, 'gallery_expired',
            'The gallery has expired: its link does not open. Give it a '
            'later closing date before sharing it.');
    END IF;

    INSERT INTO jobs (kind, payload)
    VALUES ('email', jsonb_build_object('template', 'gallery_shared',
                                        'gallery_id', v.id, 'to', v_to,
                                        'message', v_msg))
    RETURNING id INTO v_job;

    RETURN json_build_object('gallery', gallery_admin_json(v),
                             'shared', json_build_object('email', v_to,
                                 'message', v_msg, 'job_id', v_job))::text;
END $$;


-- Adds or updates photos by original path: {"photos": [{"name",
-- "original", "bytes", "crc32", "sha256", "web", "web_bytes", "web_crc32",
-- "proof", "position", "width", "height"}, ...]}.
CREATE OR REPLACE FUNCTION gallery_admin_photos(p_slug text, p jsonb) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    v_id  bigint;
    v_n   integer := 0;
    r     jsonb;
BEGIN
    SELECT id INTO v_id FROM galleries WHERE slug = p_slug;
    IF NOT FOUND THEN
        PERFORM darkroom_refuse(404, 'not_found', 'There is no such gallery.');
    END IF;

    IF jsonb_typeof(p->'photos') IS DISTINCT FROM 'array' THEN
        PERFORM darkroom_refuse(400, 'invalid_json',
                                'The body must be {"photos": [...]}.');
    END IF;

    FOR r IN SELECT * FROM jsonb_array_elements(p->'photos') LOOP
        v_n := v_n + 1;
        BEGIN
            INSERT INTO gallery_photos AS ph (gallery_id, name, position,
                original_path, bytes, crc32, sha256, web_path, web_bytes,
                web_crc32, proof_path, width, height)
            VALUES (v_id,
                    coalesce(r->>'name', regexp_replace(r->>'original',
                                                        '^.*/', '')),
                    coalesce((r->>'position')::integer, v_n),
                    r->>'original', (r->>'bytes')::bigint,
                    (r->>'crc32')::bigint, r->>'sha256', r->>'web',
                    (r->>'web_bytes')::bigint, (r->>'web_crc32')::bigint,
                    r->>'proof', (r->>'width')::integer,
                    (r->>'height')::integer)
            ON CONFLICT (gallery_id, original_path) DO UPDATE SET
                name = EXCLUDED.name, position = EXCLUDED.position,
                bytes = EXCLUDED.bytes, crc32 = EXCLUDED.crc32,
                sha256 = EXCLUDED.sha256, web_path = EXCLUDED.web_path,
                web_bytes = EXCLUDED.web_bytes,
                web_crc32 = EXCLUDED.web_crc32,
                proof_path = EXCLUDED.proof_path, width = EXCLUDED.width,
                height = EXCLUDED.height;
        EXCEPTION
            WHEN not_null_violation OR check_violation
                 OR invalid_text_representation OR numeric_value_out_of_range
            THEN
                PERFORM darkroom_refuse(400, 'invalid_photo',
                    format('Photo %s: original, bytes and crc32 are required; '
                           'paths are relative, without "..".', v_n));
        END;
    END LOOP;

    UPDATE galleries SET updated_at = now() WHERE id = v_id;

    RETURN gallery_admin_get(p_slug);
END $$;


CREATE OR REPLACE FUNCTION gallery_admin_downloads(p_slug text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT json_build_object('downloads',
        coalesce((SELECT json_agg(json_build_object('photo_id', d.photo_id,
                      'path', d.path, 'client', d.client, 'status', d.status,
                      'bytes', d.bytes, 'at', d.at, 'visitor_id', d.visitor_id)
                      ORDER BY d.at DESC, d.id DESC)
                    FROM (SELECT * FROM gallery_downloads d
                           WHERE d.gallery_id = g.id
                           ORDER BY d.at DESC, d.id DESC LIMIT 1000) d),
                 '[]'))::text
      FROM galleries g WHERE g.slug = p_slug;
$$;


-- Seconds until ts, at least 1 (a lock about to end still answers 429);
-- NULL for NULL, which greatest() passes over.
CREATE OR REPLACE FUNCTION gallery_seconds_until(ts timestamptz)
RETURNS integer LANGUAGE sql STABLE STRICT AS $$
    SELECT greatest(1, ceil(extract(epoch FROM ts - now())))::integer;
$$;


-- Counts an attempt before the secret is checked.  Returns 0: go on and
-- check it; otherwise the seconds to answer 429 with, and nothing is
-- counted: the client or the gallery is locked out, or p_max (p_gmax)
-- attempts are already counted in the window and still running (1 s).
-- Rows are locked client first, then gallery, as in gallery_attempt_end.
CREATE OR REPLACE FUNCTION gallery_attempt_begin(p_gallery bigint,
    p_client text, p_kind text, p_max integer, p_window integer,
    p_lock integer, p_gmax integer)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    c  gallery_failures%ROWTYPE;
    g  gallery_lockouts%ROWTYPE;
BEGIN
    INSERT INTO gallery_failures AS f (gallery_id, client, kind, failures)
    VALUES (p_gallery, p_client, p_kind, 1)
    ON CONFLICT (gallery_id, client, kind) DO UPDATE
       SET failures = CASE WHEN f.locked_until > now() THEN f.failures
                           WHEN f.first_at < now() - make_interval(secs => p_window)
                           THEN 1 ELSE f.failures + 1 END,
           first_at = CASE WHEN f.locked_until > now() THEN f.first_at
                           WHEN f.first_at < now() - make_interval(secs => p_window)
                           THEN now() ELSE f.first_at END
    RETURNING * INTO c;

    IF c.locked_until > now() THEN
        RETURN gallery_seconds_until(c.locked_until);
    END IF;

    INSERT INTO gallery_lockouts AS l (gallery_id, kind, failures)
    VALUES (p_gallery, p_kind, 1)
    ON CONFLICT (gallery_id, kind) DO UPDATE
       SET failures = CASE WHEN l.locked_until > now() THEN l.failures
                           WHEN l.first_at < now() - make_interval(secs => p_window)
                           THEN 1 ELSE l.failures + 1 END,
           first_at = CASE WHEN l.locked_until > now() THEN l.first_at
                           WHEN l.first_at < now() - make_interval(secs => p_window)
                           THEN now() ELSE l.first_at END
    RETURNING * INTO g;

    IF g.locked_until > now() THEN
        UPDATE gallery_failures SET failures = greatest(failures - 1, 0)
         WHERE gallery_id = p_gallery AND client = p_client AND kind = p_kind;
        RETURN gallery_seconds_until(g.locked_until);
    END IF;

    IF c.failures > p_max OR g.failures > p_gmax THEN
        UPDATE gallery_failures SET failures = greatest(failures - 1, 0)
         WHERE gallery_id = p_gallery AND client = p_client AND kind = p_kind;
        UPDATE gallery_lockouts SET failures = greatest(failures - 1, 0)
         WHERE gallery_id = p_gallery AND kind = p_kind;
        RETURN 1;
    END IF;

    RETURN 0;
END $$;


-- Records the outcome of an attempt counted by gallery_attempt_begin().
-- Returns 0: a right answer is accepted (the client's failures are
-- forgotten, the gallery's count gives this attempt back), a wrong one is
-- refused (403); otherwise the seconds locked out (429), the right answer
-- included: a lock that stands now is never cleared by a success.  A wrong
-- answer that brings the count to p_max (p_gmax) locks the client (the
-- gallery) out for p_lock seconds.
CREATE OR REPLACE FUNCTION gallery_attempt_end(p_gallery bigint,
    p_client text, p_kind text, p_ok boolean, p_max integer,
    p_window integer, p_lock integer, p_gmax integer)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    c       gallery_failures%ROWTYPE;
    g       gallery_lockouts%ROWTYPE;
    v_wait  integer := 0;
BEGIN
    SELECT * INTO c FROM gallery_failures
     WHERE gallery_id = p_gallery AND client = p_client AND kind = p_kind
       FOR UPDATE;
    SELECT * INTO g FROM gallery_lockouts
     WHERE gallery_id = p_gallery AND kind = p_kind
       FOR UPDATE;

    IF c.locked_until > now() OR g.locked_until > now() THEN
        RETURN greatest(gallery_seconds_until(c.locked_until),
                        gallery_seconds_until(g.locked_until));
    END IF;

    IF p_ok THEN
        DELETE FROM gallery_failures
         WHERE gallery_id = p_gallery AND client = p_client AND kind = p_kind;
        UPDATE gallery_lockouts SET failures = greatest(failures - 1, 0)
         WHERE gallery_id = p_gallery AND kind = p_kind;
        RETURN 0;
    END IF;

    IF c.failures >= p_max THEN
        UPDATE gallery_failures
           SET locked_until = now() + make_interval(secs => p_lock),
               failures = 0, first_at = now()
         WHERE gallery_id = p_gallery AND client = p_client AND kind = p_kind;
        v_wait := p_lock;
    END IF;

    IF g.failures >= p_gmax THEN
        UPDATE gallery_lockouts
           SET locked_until = now() + make_interval(secs => p_lock),
               failures = 0, first_at = now()
         WHERE gallery_id = p_gallery AND kind = p_kind;
        v_wait := p_lock;
    END IF;

    RETURN v_wait;
END $$;


-- What the photographer should know about a gallery's photos: each one
-- without a proof copy, which the gallery page shows as a placeholder.
CREATE OR REPLACE FUNCTION gallery_admin_warnings(p_gallery bigint)
RETURNS json LANGUAGE sql STABLE AS $$
    SELECT coalesce(json_agg(json_build_object(
               'photo', ph.id, 'original', ph.original_path,
               'code', 'no_proof',
               'message', 'This photo has no proof copy: the gallery shows '
                          'a placeholder, never the original.')
               ORDER BY ph.position, ph.id), '[]')
      FROM gallery_photos ph
     WHERE ph.gallery_id = p_gallery AND ph.proof_path IS NULL;
$$;


-- The listing's version (darkroom_public_cache, sql/040): the gallery's row
-- of gallery_listing_versions plus the catalogue's row of public_versions
-- (products, product_prices and shop_settings.min_ppi bump it), so that it
-- moves when either does.  0 for a gallery without a row.
CREATE OR REPLACE FUNCTION gallery_listing_version(p_gallery bigint)
RETURNS bigint LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT v.version FROM gallery_listing_versions v
                      WHERE v.gallery_id = p_gallery), 0)
           + coalesce((SELECT p.version FROM public_versions p
                        WHERE p.name = 'catalogue'), 0);
$$;


-- The versions of the galleries nginx holds listings of, polled at the
-- gallery zone's interval.
CREATE OR REPLACE FUNCTION gallery_listing_versions(p_ids bigint[])
RETURNS TABLE (id bigint, version bigint) LANGUAGE sql STABLE AS $$
    SELECT i.id, gallery_listing_version(i.id)
      FROM unnest(p_ids) AS i(id);
$$;


-- Row triggers: the gallery of the row, old and new, moves; the column
-- naming it is the trigger's argument.
CREATE OR REPLACE FUNCTION gallery_listing_bump() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_old  bigint;
    v_new  bigint;
BEGIN
    IF TG_OP <> 'INSERT' THEN
        v_old := (to_jsonb(OLD) ->> TG_ARGV[0])::bigint;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        v_new := (to_jsonb(NEW) ->> TG_ARGV[0])::bigint;
    END IF;

    INSERT INTO gallery_listing_versions AS v (gallery_id)
    SELECT DISTINCT t.x FROM (VALUES (v_old), (v_new)) AS t(x)
     WHERE t.x IS NOT NULL
    ON CONFLICT (gallery_id) DO UPDATE SET version = v.version + 1;

    RETURN NULL;
END $$;


-- Statement triggers (price sheets, a TRUNCATE): every gallery with a price
-- sheet, or every gallery.
CREATE OR REPLACE FUNCTION gallery_listing_bump_all() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO gallery_listing_versions AS v (gallery_id)
    SELECT g.id FROM galleries g
     WHERE TG_ARGV[0] = 'all' OR g.price_sheet_id IS NOT NULL
    ON CONFLICT (gallery_id) DO UPDATE SET version = v.version + 1;

    RETURN NULL;
END $$;


DROP TRIGGER IF EXISTS galleries_listing ON galleries;
CREATE TRIGGER galleries_listing AFTER INSERT OR UPDATE OR DELETE
    ON galleries FOR EACH ROW EXECUTE FUNCTION gallery_listing_bump('id');
DROP TRIGGER IF EXISTS gallery_photos_listing ON gallery_photos;
CREATE TRIGGER gallery_photos_listing AFTER INSERT OR UPDATE OR DELETE
    ON gallery_photos FOR EACH ROW
    EXECUTE FUNCTION gallery_listing_bump('gallery_id');
DROP TRIGGER IF EXISTS gallery_favourites_listing ON gallery_favourites;
CREATE TRIGGER gallery_favourites_listing AFTER INSERT OR UPDATE OR DELETE
    ON gallery_favourites FOR EACH ROW
    EXECUTE FUNCTION gallery_listing_bump('gallery_id');
DROP TRIGGER IF EXISTS gallery_photos_listing_truncate ON gallery_photos;
CREATE TRIGGER gallery_photos_listing_truncate AFTER TRUNCATE
    ON gallery_photos FOR EACH STATEMENT
    EXECUTE FUNCTION gallery_listing_bump_all('all');
DROP TRIGGER IF EXISTS gallery_favourites_listing_truncate
    ON gallery_favourites;
CREATE TRIGGER gallery_favourites_listing_truncate AFTER TRUNCATE
    ON gallery_favourites FOR EACH STATEMENT
    EXECUTE FUNCTION gallery_listing_bump_all('all');
DROP TRIGGER IF EXISTS price_sheets_listing ON price_sheets;
CREATE TRIGGER price_sheets_listing
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON price_sheets FOR EACH STATEMENT
    EXECUTE FUNCTION gallery_listing_bump_all('sheets');
DROP TRIGGER IF EXISTS price_sheet_items_listing ON price_sheet_items;
CREATE TRIGGER price_sheet_items_listing
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON price_sheet_items FOR EACH STATEMENT
    EXECUTE FUNCTION gallery_listing_bump_all('sheets');
DROP TRIGGER IF EXISTS price_sheet_prices_listing ON price_sheet_prices;
CREATE TRIGGER price_sheet_prices_listing
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON price_sheet_prices FOR EACH STATEMENT
    EXECUTE FUNCTION gallery_listing_bump_all('sheets');
