-- sql/functions/proofing.sql: proofing (issue 14): the visitors of a
-- gallery, their lists of photos with notes, submitting a selection (the
-- photographer's email job), the selection limit and the price of the
-- photos beyond it (the cart line of a gallery checkout, and the trigger
-- that submits a paid selection), each visitor's download count, and the
-- admin's views and exports.
--
-- Tables: gallery_visitors, gallery_lists, gallery_list_photos, galleries,
-- gallery_photos, gallery_downloads, gallery_zips, order_items, jobs.
-- Calls: darkroom_refuse (core).
--
-- The client API's functions take the gallery id the thread loaded (access
-- checked) and the visitor id of a verified visitor cookie; a visitor who
-- is not (or no longer) of that gallery is refused 401 visitor_required.


-- {"limit", "extra_photo_amount", "currency"} of a gallery
CREATE OR REPLACE FUNCTION gallery_selection_json(p_gallery bigint)
RETURNS json LANGUAGE sql STABLE AS $$
    SELECT json_build_object('limit', g.selection_limit,
                             'extra_photo_amount', g.extra_photo_amount,
                             'currency', g.currency)
      FROM galleries g WHERE g.id = p_gallery;
$$;


CREATE OR REPLACE FUNCTION gallery_visitor_json(v gallery_visitors)
RETURNS json LANGUAGE sql STABLE AS $$
    SELECT json_build_object('id', v.id, 'name', v.name, 'email', v.email,
               'downloads', v.downloads,
               'download_limit', (SELECT g.visitor_download_limit
                                    FROM galleries g
                                   WHERE g.id = v.gallery_id));
$$;


-- The visitor of a cookie as the listing shows it; NULL: none (gone).
CREATE OR REPLACE FUNCTION gallery_visitor_get(p_gallery bigint,
                                               p_visitor bigint)
RETURNS text LANGUAGE sql STABLE AS $$
    SELECT gallery_visitor_json(v)::text FROM gallery_visitors v
     WHERE v.id = p_visitor AND v.gallery_id = p_gallery;
$$;


-- The visitor row of a cookie, or 401 visitor_required.
CREATE OR REPLACE FUNCTION gallery_visitor_need(p_gallery bigint,
                                                p_visitor bigint)
RETURNS gallery_visitors LANGUAGE plpgsql STABLE AS $$
DECLARE
    v  gallery_visitors%ROWTYPE;
BEGIN
    SELECT * INTO v FROM gallery_visitors
     WHERE id = p_visitor AND gallery_id = p_gallery;
    IF p_visitor IS NULL OR NOT FOUND THEN
        PERFORM darkroom_refuse(401, 'visitor_required',
            'Tell us your name and email first.');
    END IF;
    RETURN v;
END $$;


-- POST <slug>/visitor {"name", "email"}: the visitor of that email (case
-- insensitive) in this gallery, made on first use.
CREATE OR REPLACE FUNCTION gallery_visitor_join(p_gallery bigint,
                                                p_name text, p_email text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v  gallery_visitors%ROWTYPE;
BEGIN
    p_name := btrim(p_name);
    p_email := btrim(p_email);

    IF p_name IS NULL OR length(p_name) NOT BETWEEN 1 AND 100 THEN
        PERFORM darkroom_refuse(400, 'invalid_name',
            'Give your name (at most 100 characters).');
    END IF;

    IF p_email IS NULL OR length(p_email) > 254
       OR p_email !~ '^[^@\s]+@[^@\s]+\.[^@\s]+$'
    THEN
        PERFORM darkroom_refuse(400, 'invalid_email',
                                'Give a valid email address.');
    END IF;

    INSERT INTO gallery_visitors AS x (gallery_id, name, email)
    VALUES (p_gallery, p_name, p_email)
    ON CONFLICT (gallery_id, lower(email))
        DO UPDATE SET last_seen_at = now()
    RETURNING * INTO v;

    RETURN json_build_object('visitor', gallery_visitor_json(v))::text;
END $$;


CREATE OR REPLACE FUNCTION gallery_list_json(l gallery_lists)
RETURNS json LANGUAGE sql STABLE AS $$
    SELECT json_build_object('id', l.id, 'name', l.name,
        'submitted_at', l.submitted_at,
        'order', (SELECT o.ref FROM orders o WHERE o.id = l.order_id),
        'photos', (SELECT coalesce(json_agg(json_build_object(
                              'id', ph.id, 'name', ph.name, 'note', lp.note)
                          ORDER BY lp.added_at, ph.id), '[]')
                     FROM gallery_list_photos lp
                     JOIN gallery_photos ph ON ph.id = lp.photo_id
                    WHERE lp.list_id = l.id));
$$;


-- GET <slug>/lists: the visitor's lists; the first, "Favourites", is made
-- on demand.
CREATE OR REPLACE FUNCTION gallery_lists_get(p_gallery bigint,
                                             p_visitor bigint)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v  gallery_visitors%ROWTYPE;
BEGIN
    v := gallery_visitor_need(p_gallery, p_visitor);

    IF NOT EXISTS (SELECT 1 FROM gallery_lists WHERE visitor_id = v.id) THEN
        INSERT INTO gallery_lists (gallery_id, visitor_id, name)
        VALUES (p_gallery, v.id, 'Favourites')
        ON CONFLICT (visitor_id, name) DO NOTHING;
    END IF;

    RETURN json_build_object(
        'lists', (SELECT coalesce(json_agg(gallery_list_json(l)
                                           ORDER BY l.id), '[]')
                    FROM gallery_lists l WHERE l.visitor_id = v.id),
        'selection', gallery_selection_json(p_gallery))::text;
END $$;


-- POST <slug>/lists {"name"}
CREATE OR REPLACE FUNCTION gallery_list_create(p_gallery bigint,
                                               p_visitor bigint, p_name text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v  gallery_visitors%ROWTYPE;
    l  gallery_lists%ROWTYPE;
BEGIN
    v := gallery_visitor_need(p_gallery, p_visitor);
    p_name := btrim(p_name);

    IF p_name IS NULL OR length(p_name) NOT BETWEEN 1 AND 100 THEN
        PERFORM darkroom_refuse(400, 'invalid_name',
            'A list needs a name of at most 100 characters.');
    END IF;

    INSERT INTO gallery_lists (gallery_id, visitor_id, name)
    VALUES (p_gallery, v.id, p_name)
    ON CONFLICT (visitor_id, name) DO NOTHING
    RETURNING * INTO l;

    IF NOT FOUND THEN
        PERFORM darkroom_refuse(409, 'list_exists',
                                format('You have a list "%s" already.',
                                       p_name));
    END IF;

    RETURN json_build_object('list', gallery_list_json(l),
                             'selection',
                             gallery_selection_json(p_gallery))::text;
END $$;


-- The visitor's list, locked for a change: 404 another's (or none), 409
-- submitted.  The row lock serialises concurrent changes of one list, so
-- the limit is counted by one of them at a time.
CREATE OR REPLACE FUNCTION gallery_list_lock(p_gallery bigint,
                                             p_visitor bigint, p_list bigint)
RETURNS gallery_lists LANGUAGE plpgsql AS $$
DECLARE
    v  gallery_visitors%ROWTYPE;
    l  gallery_lists%ROWTYPE;
BEGIN
    v := gallery_visitor_need(p_gallery, p_visitor);

    SELECT * INTO l FROM gallery_lists
     WHERE id = p_list AND gallery_id = p_gallery AND visitor_id = v.id
       FOR UPDATE;

    IF NOT FOUND THEN
        PERFORM darkroom_refuse(404, 'unknown_list', 'There is no such list.');
    END IF;

    IF l.submitted_at IS NOT NULL THEN
        PERFORM darkroom_refuse(409, 'list_submitted',
            format('"%s" has been submitted and cannot change any more.',
                   l.name));
    END IF;

    RETURN l;
END $$;


-- POST <slug>/lists/<id>/photos {"photo", "note"}: adds the photo (within
-- the gallery's selection_limit unless extras are priced), or sets its
-- note (p_note NULL: keeps it).
CREATE OR REPLACE FUNCTION gallery_list_add(p_gallery bigint,
                                            p_visitor bigint, p_list bigint,
                                            p_photo bigint, p_note text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    l        gallery_lists%ROWTYPE;
    g        galleries%ROWTYPE;
    v_count  integer;
BEGIN
    l := gallery_list_lock(p_gallery, p_visitor, p_list);

    IF length(p_note) > 2000 THEN
        PERFORM darkroom_refuse(400, 'invalid_note',
                                'A note has at most 2000 characters.');
    END IF;

    PERFORM 1 FROM gallery_photos WHERE id = p_photo AND gallery_id = p_gallery;
    IF NOT FOUND THEN
        PERFORM darkroom_refuse(404, 'unknown_photo',
                                'There is no such photo in this gallery.');
    END IF;

    IF EXISTS (SELECT 1 FROM gallery_list_photos
                WHERE list_id = l.id AND photo_id = p_photo)
    THEN
        UPDATE gallery_list_photos SET note = coalesce(p_note, note)
         WHERE list_id = l.id AND photo_id = p_photo;

    ELSE
        SELECT * INTO g FROM galleries WHERE id = p_gallery;
        SELECT count(*) INTO v_count FROM gallery_list_photos
         WHERE list_id = l.id;

        IF g.selection_limit IS NOT NULL AND g.extra_photo_amount IS NULL
           AND v_count >= g.selection_limit
        THEN
            PERFORM darkroom_refuse(409, 'selection_limit',
                format('This gallery lets you choose %s photo%s: remove one '
                       'from "%s" to add another.', g.selection_limit,
                       CASE WHEN g.selection_limit = 1 THEN '' ELSE 's' END,
                       l.name));
        END IF;

        INSERT INTO gallery_list_photos (list_id, photo_id, note)
        VALUES (l.id, p_photo, coalesce(p_note, ''));
    END IF;

    UPDATE gallery_lists SET updated_at = now() WHERE id = l.id
    RETURNING * INTO l;

    RETURN json_build_object('list', gallery_list_json(l),
                             'selection',
                             gallery_selection_json(p_gallery))::text;
END $$;


-- POST <slug>/lists/<id>/remove {"photo"}
CREATE OR REPLACE FUNCTION gallery_list_remove(p_gallery bigint,
                                               p_visitor bigint,
                                               p_list bigint, p_photo bigint)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    l  gallery_lists%ROWTYPE;
BEGIN
    l := gallery_list_lock(p_gallery, p_visitor, p_list);

    DELETE FROM gallery_list_photos WHERE list_id = l.id AND photo_id = p_photo;

    UPDATE gallery_lists SET updated_at = now() WHERE id = l.id
    RETURNING * INTO l;

    RETURN json_build_object('list', gallery_list_json(l),
                             'selection',
                             gallery_selection_json(p_gallery))::text;
END $$;


-- The photographer's email about a submitted list, in the caller's
-- transaction (the "selection_submitted" template, to the shop's alert
-- address: email_context treats it as a shop message).
CREATE OR REPLACE FUNCTION gallery_list_mail(l gallery_lists)
RETURNS void LANGUAGE sql AS $$
    INSERT INTO jobs (kind, payload, dedupe_key)
    SELECT 'email',
           jsonb_build_object('template', 'selection_submitted',
               'gallery_id', l.gallery_id, 'list_id', l.id,
               'list_name', l.name, 'visitor_name', v.name,
               'visitor_email', v.email,
               'slug', (SELECT g.slug FROM galleries g
                         WHERE g.id = l.gallery_id),
               'photos', (SELECT count(*) FROM gallery_list_photos lp
                           WHERE lp.list_id = l.id),
               'files', (SELECT string_agg(ph.name, ', '
                                           ORDER BY lp.added_at, ph.id)
                           FROM gallery_list_photos lp
                           JOIN gallery_photos ph ON ph.id = lp.photo_id
                          WHERE lp.list_id = l.id),
               'order_ref', (SELECT o.ref FROM orders o
                              WHERE o.id = l.order_id)),
           'selection_submitted:' || l.id
      FROM gallery_visitors v WHERE v.id = l.visitor_id
    ON CONFLICT (dedupe_key) DO NOTHING;
$$;


-- The photos of list l beyond the gallery's limit not paid for yet: the
-- extras less those its paid orders bought (a list changed while its
-- checkout was open is not submitted with extras nobody paid for).
CREATE OR REPLACE FUNCTION gallery_list_due(l gallery_lists)
RETURNS integer LANGUAGE sql STABLE AS $$
    SELECT greatest(0,
               (SELECT count(*) FROM gallery_list_photos lp
                 WHERE lp.list_id = l.id)::integer
               - coalesce(g.selection_limit, 2147483647)
               - coalesce((SELECT sum(i.quantity)
                             FROM order_items i
                             JOIN orders o ON o.id = i.order_id
                            WHERE i.kind = 'selection'
                              AND i.photo_id = 'selection:' || l.id
                              AND o.status IN ('paid', 'in_production',
                                               'shipped', 'delivered')),
                          0))::integer
      FROM galleries g WHERE g.id = l.gallery_id;
$$;


-- POST <slug>/lists/<id>/submit: locks the list and mails the
-- photographer.  A list beyond the limit with extras priced is not
-- submitted: the answer carries "status": 402 and the error (payment
-- through a gallery checkout item {"selection": <list id>}).
CREATE OR REPLACE FUNCTION gallery_list_submit(p_gallery bigint,
                                               p_visitor bigint,
                                               p_list bigint)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    l        gallery_lists%ROWTYPE;
    g        galleries%ROWTYPE;
    v_count  integer;
    v_due    integer;
BEGIN
    l := gallery_list_lock(p_gallery, p_visitor, p_list);

    SELECT * INTO g FROM galleries WHERE id = p_gallery;
    SELECT count(*) INTO v_count FROM gallery_list_photos
     WHERE list_id = l.id;

    IF v_count = 0 THEN
        PERFORM darkroom_refuse(409, 'list_empty',
                                format('"%s" has no photos yet.', l.name));
    END IF;

    v_due := gallery_list_due(l);

    IF v_due > 0 THEN
        IF g.extra_photo_amount IS NULL THEN
            PERFORM darkroom_refuse(409, 'selection_limit',
                format('This gallery lets you choose %s photos; "%s" has '
                       '%s.', g.selection_limit, l.name, v_count));
        END IF;

        RETURN json_build_object('status', 402, 'error', json_build_object(
            'code', 'payment_required',
            'message', format('This gallery includes %s photos; %s more '
                              'in "%s" %s priced: pay for them to submit '
                              'the selection.', g.selection_limit, v_due,
                              l.name, CASE WHEN v_due = 1 THEN 'is'
                                           ELSE 'are' END),
            'list', l.id,
            'extra', v_due,
            'amount', v_due * g.extra_photo_amount,
            'currency', g.currency))::text;
    END IF;

    UPDATE gallery_lists SET submitted_at = now(), updated_at = now()
     WHERE id = l.id
    RETURNING * INTO l;

    PERFORM gallery_list_mail(l);

    RETURN json_build_object('list', gallery_list_json(l),
                             'selection',
                             gallery_selection_json(p_gallery))::text;
END $$;


-- The cart line for the extra photos of a selection, item
-- {"selection": <list id>} of a gallery checkout: a line of kind
-- 'selection' priced galleries.extra_photo_amount per photo beyond
-- selection_limit, in the gallery's currency.  Its "photo" is
-- "selection:<list id>": gallery_selection_paid() finds the list by it.
CREATE OR REPLACE FUNCTION gallery_selection_line(p_gallery bigint,
                                                  p_item jsonb,
                                                  p_currency text,
                                                  p_line integer)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
    l        gallery_lists%ROWTYPE;
    g        galleries%ROWTYPE;
    v_extra  integer;
BEGIN
    IF jsonb_typeof(p_item->'selection') IS DISTINCT FROM 'number'
       OR (p_item->>'selection') !~ '^[1-9][0-9]{0,17}$'
    THEN
        PERFORM darkroom_refuse(400, 'invalid_item',
            format('Item %s: "selection" is the id of a list.', p_line));
    END IF;

    SELECT * INTO g FROM galleries WHERE id = p_gallery;
    SELECT * INTO l FROM gallery_lists
     WHERE id = (p_item->>'selection')::bigint AND gallery_id = p_gallery;

    IF NOT FOUND THEN
        PERFORM darkroom_refuse(400, 'unknown_list',
            format('Item %s: there is no such selection in this gallery.',
                   p_line));
    END IF;

    IF l.submitted_at IS NOT NULL THEN
        PERFORM darkroom_refuse(409, 'list_submitted',
            format('Item %s: "%s" has been submitted already.',
                   p_line, l.name));
    END IF;

    IF g.selection_limit IS NULL OR g.extra_photo_amount IS NULL THEN
        PERFORM darkroom_refuse(400, 'not_offered',
            format('Item %s: this gallery does not sell extra photos.',
                   p_line));
    END IF;

    IF g.currency IS NOT NULL AND g.currency <> p_currency THEN
        PERFORM darkroom_refuse(400, 'no_price',
            format('Item %s: extra photos are priced in %s, not %s.',
                   p_line, g.currency, p_currency));
    END IF;

    v_extra := gallery_list_due(l);

    IF v_extra < 1 THEN
        PERFORM darkroom_refuse(400, 'no_extras',
            format('Item %s: "%s" has no photos to pay for beyond the %s '
                   'included.', p_line, l.name, g.selection_limit));
    END IF;

    IF v_extra > 99 THEN
        PERFORM darkroom_refuse(409, 'too_many_extras',
            format('Item %s: "%s" has %s extra photos, at most 99 can be '
                   'bought at once.', p_line, l.name, v_extra));
    END IF;

    RETURN jsonb_build_object(
        'line', p_line, 'photo', 'selection:' || l.id,
        'product', 'selection', 'kind', 'selection', 'selection', l.id,
        'title', format('Extra photos of "%s"', l.name),
        'product_name', 'Extra photos of a selection',
        'quantity', v_extra, 'unit_amount', g.extra_photo_amount,
        'amount', g.extra_photo_amount * v_extra,
        'discount', 0, 'tax', 0, 'tax_rate', 0);
END $$;


-- An order paid: each selection it paid for is submitted, linked to the
-- order, and mailed, in the transaction that marks the order paid; unless
-- photos were added while the checkout was open and are still unpaid (the
-- list stays open, and its submit asks for those only).
CREATE OR REPLACE FUNCTION gallery_selection_paid() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    l  gallery_lists%ROWTYPE;
BEGIN
    FOR l IN
        SELECT gl.* FROM gallery_lists gl
          JOIN order_items i ON i.photo_id = 'selection:' || gl.id
         WHERE i.order_id = NEW.id AND i.kind = 'selection'
           AND gl.submitted_at IS NULL
           FOR UPDATE OF gl
    LOOP
        IF gallery_list_due(l) = 0 THEN
            UPDATE gallery_lists
               SET submitted_at = now(), order_id = NEW.id, updated_at = now()
             WHERE id = l.id
            RETURNING * INTO l;

            PERFORM gallery_list_mail(l);
        END IF;
    END LOOP;

    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS orders_selection_paid ON orders;
CREATE TRIGGER orders_selection_paid
    AFTER UPDATE OF status ON orders
    FOR EACH ROW
    WHEN (NEW.status = 'paid' AND OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION gallery_selection_paid();


-- POST <slug>/download by a visitor: counts p_n photos against the
-- gallery's visitor_download_limit, in one statement (parallel downloads
-- cannot pass it together).  Without a limit the count goes on, and a
-- visitor is not needed (p_visitor NULL: nothing counted).
CREATE OR REPLACE FUNCTION gallery_visitor_download(p_gallery bigint,
                                                    p_visitor bigint,
                                                    p_n integer)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_limit  integer;
    v        gallery_visitors%ROWTYPE;
BEGIN
    SELECT visitor_download_limit INTO v_limit FROM galleries
     WHERE id = p_gallery;

    IF v_limit IS NULL THEN
        UPDATE gallery_visitors SET downloads = downloads + p_n,
                                    last_seen_at = now()
         WHERE id = p_visitor AND gallery_id = p_gallery;
        RETURN NULL;
    END IF;

    v := gallery_visitor_need(p_gallery, p_visitor);

    UPDATE gallery_visitors SET downloads = downloads + p_n,
                                last_seen_at = now()
     WHERE id = v.id AND (v_limit IS NULL OR downloads + p_n <= v_limit)
    RETURNING * INTO v;

    IF NOT FOUND THEN
        SELECT * INTO v FROM gallery_visitors WHERE id = p_visitor;
        PERFORM darkroom_refuse(403, 'download_limit',
            format('You may download %s photo%s from this gallery; %s '
                   'left, and you asked for %s.', v_limit,
                   CASE WHEN v_limit = 1 THEN '' ELSE 's' END,
                   greatest(v_limit - v.downloads, 0), p_n));
    END IF;

    RETURN gallery_visitor_json(v)::text;
END $$;


-- The visitor a ZIP was made for (the download log names them).
CREATE OR REPLACE FUNCTION gallery_zip_visitor(p_token_hash text,
                                               p_visitor bigint)
RETURNS void LANGUAGE sql AS $$
    UPDATE gallery_zips SET visitor_id = p_visitor
     WHERE token_hash = p_token_hash;
$$;

CREATE OR REPLACE FUNCTION gallery_zip_visitor_of(p_token_hash text)
RETURNS bigint LANGUAGE sql STABLE AS $$
    SELECT visitor_id FROM gallery_zips WHERE token_hash = p_token_hash;
$$;


-- The admin API.  GET <slug>/visitors: every visitor, their lists and
-- their last downloads.
CREATE OR REPLACE FUNCTION gallery_admin_visitors(p_slug text)
RETURNS text LANGUAGE sql STABLE AS $$
    SELECT json_build_object('selection', gallery_selection_json(g.id),
        'visitors', (SELECT coalesce(json_agg(json_build_object(
            'id', v.id, 'name', v.name, 'email', v.email,
            'downloads', v.downloads,
            'download_limit', g.visitor_download_limit,
            'created_at', v.created_at, 'last_seen_at', v.last_seen_at,
            'lists', (SELECT coalesce(json_agg(gallery_list_json(l)
                                               ORDER BY l.id), '[]')
                        FROM gallery_lists l WHERE l.visitor_id = v.id),
            'download_log', (SELECT coalesce(json_agg(json_build_object(
                                 'photo_id', d.photo_id, 'path', d.path,
                                 'status', d.status, 'bytes', d.bytes,
                                 'at', d.at) ORDER BY d.at DESC, d.id DESC),
                                 '[]')
                               FROM (SELECT * FROM gallery_downloads d
                                      WHERE d.gallery_id = g.id
                                        AND d.visitor_id = v.id
                                      ORDER BY d.at DESC, d.id DESC
                                      LIMIT 100) d))
            ORDER BY v.id), '[]')
            FROM gallery_visitors v WHERE v.gallery_id = g.id))::text
      FROM galleries g WHERE g.slug = p_slug;
$$;


-- A CSV cell: a formula's first character (= + - @, tab, CR) is made
-- text with a ', then the cell is quoted if it needs to be.
CREATE OR REPLACE FUNCTION gallery_csv_cell(p text)
RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN c ~ '[",\r\n]' THEN '"' || replace(c, '"', '""') || '"'
                ELSE c END
      FROM (SELECT CASE WHEN coalesce(p, '') ~ '^[=+\-@\t\r]'
                        THEN '''' || p ELSE coalesce(p, '') END AS c) x;
$$;


-- GET <slug>/lists/<id>/export?format=lightroom|csv: the list's file
-- names without extension joined by ", " (Lightroom's filename filter),
-- or CSV file,note,visitor,email.  404: no such list of that gallery.
CREATE OR REPLACE FUNCTION gallery_admin_export(p_slug text, p_list bigint,
                                                p_format text)
RETURNS text LANGUAGE plpgsql STABLE AS $$
DECLARE
    l  gallery_lists%ROWTYPE;
    v  gallery_visitors%ROWTYPE;
BEGIN
    IF p_format NOT IN ('lightroom', 'csv') THEN
        PERFORM darkroom_refuse(400, 'invalid_format',
                                'format is "lightroom" or "csv".');
    END IF;

    SELECT l2.* INTO l FROM gallery_lists l2
      JOIN galleries g ON g.id = l2.gallery_id
     WHERE l2.id = p_list AND g.slug = p_slug;

    IF NOT FOUND THEN
        PERFORM darkroom_refuse(404, 'not_found',
                                'There is no such list in this gallery.');
    END IF;

    SELECT * INTO v FROM gallery_visitors WHERE id = l.visitor_id;

    IF p_format = 'lightroom' THEN
        RETURN coalesce((SELECT string_agg(
                             regexp_replace(ph.name, '\.[^./]*$', ''), ', '
                             ORDER BY lp.added_at, ph.id)
                           FROM gallery_list_photos lp
                           JOIN gallery_photos ph ON ph.id = lp.photo_id
                          WHERE lp.list_id = l.id), '') || E'\n';
    END IF;

    RETURN E'file,note,visitor,email\r\n'
        || coalesce((SELECT string_agg(gallery_csv_cell(ph.name) || ','
                                       || gallery_csv_cell(lp.note) || ','
                                       || gallery_csv_cell(v.name) || ','
                                       || gallery_csv_cell(v.email),
                                       E'\r\n' ORDER BY lp.added_at, ph.id)
                       FROM gallery_list_photos lp
                       JOIN gallery_photos ph ON ph.id = lp.photo_id
                      WHERE lp.list_id = l.id) || E'\r\n', '');
END $$;
