-- Gallery hardening.
--
-- Lockout: an attempt at a password or PIN is counted before scrypt runs,
-- in one statement that also refuses it while the client or the gallery
-- is locked out (gallery_attempt_begin), and the outcome is recorded after
-- (gallery_attempt_end), which refuses even the right answer if a lock
-- came meanwhile and never lets such a success clear the count.  Beside
-- the count per gallery, client and kind, a count per gallery and kind
-- (gallery_lockouts) locks the gallery for everyone after failures from
-- many addresses.  gallery_lockout() and gallery_attempt() of 008 are left
-- for older workers during a rolling upgrade; nothing calls them now.
--
-- Proofs: a photo without a proof copy has no proof (NULL), never its
-- original or web-size file; the admin API lists such photos as warnings.

CREATE TABLE gallery_lockouts (
    gallery_id     bigint      NOT NULL REFERENCES galleries ON DELETE CASCADE,
    kind           text        NOT NULL CHECK (kind IN ('password', 'pin')),
    failures       integer     NOT NULL DEFAULT 0,
    first_at       timestamptz NOT NULL DEFAULT now(),
    locked_until   timestamptz,
    PRIMARY KEY (gallery_id, kind)
);


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
        'warnings', gallery_admin_warnings(g.id))::text
      FROM galleries g WHERE g.slug = p_slug;
$$;
