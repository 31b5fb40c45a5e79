-- Private client galleries: a gallery of photos a photographer delivers to
-- a client, unlocked with a password, downloads optionally behind a PIN.
-- Passwords and PINs are scrypt hashes made by nginx (never plain text
-- here).  Every image is fetched through a signed, expiring media URL that
-- carries g=<gallery id>.<generation>; revoking a gallery or rotating its
-- links bumps the generation, and nginx's workers learn it from
-- gallery_revocations() within seconds, without a query per download.

CREATE TABLE galleries (
    id             bigserial PRIMARY KEY,
    slug           text        NOT NULL UNIQUE
                   CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,63}$'),
    title          text        NOT NULL DEFAULT ''
                   CHECK (length(title) <= 200),
    client_email   text        CHECK (client_email IS NULL
                                      OR client_email ~ '^[^@\s]+@[^@\s]+$'),
    expires_at     timestamptz,
    password_hash  text        CHECK (password_hash IS NULL
                                      OR password_hash ~ '^scrypt\$'),
    pin_hash       text        CHECK (pin_hash IS NULL
                                      OR pin_hash ~ '^scrypt\$'),
    downloads      boolean     NOT NULL DEFAULT true,
    download_size  text        NOT NULL DEFAULT 'original'
                   CHECK (download_size IN ('original', 'web')),
    generation     integer     NOT NULL DEFAULT 1 CHECK (generation > 0),
    revoked_at     timestamptz,
    delivered_at   timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- Paths are relative to darkroom_gallery_root (and to the media location
-- that serves it); sizes and CRC-32s let nginx stream a ZIP whose length is
-- known before its first byte.
CREATE TABLE gallery_photos (
    id             bigserial PRIMARY KEY,
    gallery_id     bigint      NOT NULL REFERENCES galleries ON DELETE CASCADE,
    name           text        NOT NULL CHECK (length(name) BETWEEN 1 AND 255),
    position       integer     NOT NULL DEFAULT 0,
    original_path  text        NOT NULL CHECK (original_path ~ '^[^/]'
                                               AND original_path !~ '(^|/)\.\.?(/|$)'),
    bytes          bigint      NOT NULL CHECK (bytes >= 0),
    crc32          bigint      NOT NULL CHECK (crc32 BETWEEN 0 AND 4294967295),
    sha256         text        CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    web_path       text        CHECK (web_path ~ '^[^/]'
                                      AND web_path !~ '(^|/)\.\.?(/|$)'),
    web_bytes      bigint      CHECK (web_bytes >= 0),
    web_crc32      bigint      CHECK (web_crc32 BETWEEN 0 AND 4294967295),
    proof_path     text        CHECK (proof_path ~ '^[^/]'
                                      AND proof_path !~ '(^|/)\.\.?(/|$)'),
    width          integer,
    height         integer,
    created_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (gallery_id, original_path)
);

CREATE INDEX gallery_photos_order ON gallery_photos (gallery_id, position, id);

CREATE TABLE gallery_favourites (
    gallery_id     bigint      NOT NULL REFERENCES galleries ON DELETE CASCADE,
    photo_id       bigint      NOT NULL REFERENCES gallery_photos
                                        ON DELETE CASCADE,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (gallery_id, photo_id)
);

-- Wrong passwords and PINs per gallery and client address: a client with
-- too many in the window is locked out until locked_until.
CREATE TABLE gallery_failures (
    gallery_id     bigint      NOT NULL REFERENCES galleries ON DELETE CASCADE,
    client         text        NOT NULL,
    kind           text        NOT NULL CHECK (kind IN ('password', 'pin')),
    failures       integer     NOT NULL DEFAULT 0,
    first_at       timestamptz NOT NULL DEFAULT now(),
    locked_until   timestamptz,
    PRIMARY KEY (gallery_id, client, kind)
);

-- A ZIP download: the selection, behind an unguessable token (only its
-- SHA-256 is kept), valid for one generation of the gallery.
CREATE TABLE gallery_zips (
    token_hash     text        PRIMARY KEY CHECK (token_hash ~ '^[0-9a-f]{64}$'),
    gallery_id     bigint      NOT NULL REFERENCES galleries ON DELETE CASCADE,
    generation     integer     NOT NULL,
    photo_ids      bigint[]    NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL
);

CREATE INDEX gallery_zips_expiry ON gallery_zips (expires_at);

-- Downloads, written in batches by nginx from shared memory: no foreign
-- key, so that a batch never fails on a gallery deleted meanwhile.
CREATE TABLE gallery_downloads (
    id             bigserial PRIMARY KEY,
    gallery_id     bigint      NOT NULL,
    generation     integer,
    photo_id       bigint,
    path           text        NOT NULL,
    client         text        NOT NULL,
    status         integer     NOT NULL,
    bytes          bigint      NOT NULL DEFAULT 0,
    at             timestamptz NOT NULL
);

CREATE INDEX gallery_downloads_gallery ON gallery_downloads (gallery_id, at);
