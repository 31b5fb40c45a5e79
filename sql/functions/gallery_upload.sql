-- sql/functions/gallery_upload.sql: photos uploaded from the browser
-- (issue 15).  The admin API (PUT <slug>/uploads/<name>, GET
-- <slug>/uploads) calls gallery_upload_gallery, gallery_upload_receive and
-- gallery_upload_list; tools/darkroom-importer, which runs the photo_import
-- jobs out of nginx, calls gallery_upload_start, gallery_upload_imported
-- and gallery_upload_failed, with the job functions of core.sql.
--
-- Tables: gallery_uploads, galleries, gallery_photos, jobs.
-- Calls: darkroom_refuse (core), gallery_admin_get (gallery).


CREATE OR REPLACE FUNCTION gallery_upload_json(u gallery_uploads)
RETURNS json LANGUAGE sql STABLE AS $$
    SELECT json_build_object('id', u.id, 'name', u.name, 'bytes', u.bytes,
                             'state', u.state, 'error', u.error,
                             'photo_id', u.photo_id,
                             'updated_at', u.updated_at);
$$;


-- The gallery an upload goes to, before its file is moved there: 404 if
-- there is none.
CREATE OR REPLACE FUNCTION gallery_upload_gallery(p_slug text)
RETURNS bigint LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_id  bigint;
BEGIN
    SELECT id INTO v_id FROM galleries WHERE slug = p_slug;
    IF NOT FOUND THEN
        PERFORM darkroom_refuse(404, 'not_found', 'There is no such gallery.');
    END IF;
    RETURN v_id;
END $$;


-- The file is in place: its row (the same one for a name sent again, back
-- to "received") and its import job, in one transaction.
CREATE OR REPLACE FUNCTION gallery_upload_receive(p_slug text, p_name text,
    p_bytes bigint)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    u  gallery_uploads%ROWTYPE;
BEGIN
    IF p_bytes IS NULL OR p_bytes <= 0 THEN
        PERFORM darkroom_refuse(400, 'empty', 'The file is empty.');
    END IF;

    BEGIN
        INSERT INTO gallery_uploads AS g (gallery_id, name, bytes)
        VALUES (gallery_upload_gallery(p_slug), p_name, p_bytes)
        ON CONFLICT (gallery_id, name) DO UPDATE SET
            bytes = EXCLUDED.bytes, state = 'received', error = NULL,
            version = g.version + 1, updated_at = now()
        RETURNING * INTO u;
    EXCEPTION WHEN check_violation THEN
        PERFORM darkroom_refuse(400, 'bad_name',
            'A file name is 1 to 200 letters, digits, spaces and ._-() '
            'not starting with a dot, ending .jpg .jpeg .png .tif .tiff or '
            '.webp.');
    END;

    INSERT INTO jobs (kind, payload, max_attempts)
    VALUES ('photo_import',
            jsonb_build_object('upload', u.id, 'version', u.version), 5);

    RETURN json_build_object('upload', json_build_object('id', u.id,
               'name', u.name, 'bytes', u.bytes, 'state', u.state))::text;
END $$;


-- {"uploads": [...]} of a gallery, the latest first.
CREATE OR REPLACE FUNCTION gallery_upload_list(p_slug text)
RETURNS text LANGUAGE sql STABLE AS $$
    SELECT json_build_object('uploads',
        coalesce((SELECT json_agg(gallery_upload_json(u)
                                  ORDER BY u.updated_at DESC, u.id DESC)
                    FROM gallery_uploads u WHERE u.gallery_id = g.id),
                 '[]'))::text
      FROM galleries g WHERE g.slug = p_slug;
$$;


-- The importer starts a job: the upload becomes "importing" and its file
-- is named (slug, name).  No row when the job is stale: the upload is gone,
-- or was sent again since (a newer job imports it).
CREATE OR REPLACE FUNCTION gallery_upload_start(p_upload bigint,
    p_version integer)
RETURNS TABLE (slug text, name text, bytes bigint) LANGUAGE sql AS $$
    UPDATE gallery_uploads u SET state = 'importing', updated_at = now()
      FROM galleries g
     WHERE u.id = p_upload AND u.version = p_version AND g.id = u.gallery_id
    RETURNING g.slug, u.name, u.bytes;
$$;


-- The photo is made: recorded (the same row for the same original path:
-- a photo sent again keeps its place) and the upload done with it, in one
-- transaction.  false, and nothing written, when the upload was sent again
-- meanwhile.
CREATE OR REPLACE FUNCTION gallery_upload_imported(p_upload bigint,
    p_version integer, p jsonb)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    u      gallery_uploads%ROWTYPE;
    v_gs   text;
    v_pid  bigint;
BEGIN
    SELECT * INTO u FROM gallery_uploads
     WHERE id = p_upload AND version = p_version FOR UPDATE;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    SELECT slug INTO v_gs FROM galleries WHERE id = u.gallery_id;

    INSERT INTO gallery_photos AS ph (gallery_id, name, position,
        original_path, bytes, crc32, sha256, web_path, web_bytes, web_crc32,
        proof_path, width, height)
    VALUES (u.gallery_id, u.name,
            (SELECT coalesce(max(x.position), 0) + 1 FROM gallery_photos x
              WHERE x.gallery_id = u.gallery_id),
            v_gs || '/' || u.name, (p->>'bytes')::bigint,
            (p->>'crc32')::bigint, p->>'sha256', p->>'web',
            (p->>'web_bytes')::bigint, (p->>'web_crc32')::bigint,
            p->>'proof', (p->>'width')::integer, (p->>'height')::integer)
    ON CONFLICT (gallery_id, original_path) DO UPDATE SET
        bytes = EXCLUDED.bytes, crc32 = EXCLUDED.crc32,
        sha256 = EXCLUDED.sha256, web_path = EXCLUDED.web_path,
        web_bytes = EXCLUDED.web_bytes, web_crc32 = EXCLUDED.web_crc32,
        proof_path = EXCLUDED.proof_path, width = EXCLUDED.width,
        height = EXCLUDED.height
    RETURNING ph.id INTO v_pid;

    UPDATE gallery_uploads SET state = 'done', error = NULL,
                               photo_id = v_pid, updated_at = now()
     WHERE id = u.id;
    UPDATE galleries SET updated_at = now() WHERE id = u.gallery_id;
    RETURN true;
END $$;


-- An import that failed: "failed" for good (not an image, or the job's
-- last attempt), otherwise back to "received" with the error while the
-- job waits to be tried again.  Only the upload's current version.
CREATE OR REPLACE FUNCTION gallery_upload_failed(p_upload bigint,
    p_version integer, p_error text, p_final boolean)
RETURNS void LANGUAGE sql AS $$
    UPDATE gallery_uploads
       SET state = CASE WHEN p_final THEN 'failed' ELSE 'received' END,
           error = left(p_error, 1000), updated_at = now()
     WHERE id = p_upload AND version = p_version;
$$;
