-- Digital delivery: each digital line of a paid order gets one download
-- grant (sql/functions/downloads.sql): the file it serves (the photo's
-- print_path under the print root, as when it was granted), its file name,
-- when it expires, how many downloads it allows and how many were made,
-- and when a refund revoked it.  The nonce is part of every signed link:
-- an admin re-issue rotates it, so the old links die with it.
--
-- The expiry and the count come from the nginx that writes the grant
-- (darkroom_download_ttl, darkroom_download_limit): darkroom sets them on
-- each of its database sessions as darkroom.download_ttl (seconds) and
-- darkroom.download_limit; a session without them (psql) takes the
-- defaults, 30 days and 5.

CREATE TABLE download_grants (
    id             bigserial   PRIMARY KEY,
    order_id       bigint      NOT NULL REFERENCES orders ON DELETE CASCADE,
    line           integer     NOT NULL,
    photo_id       text        NOT NULL,
    file           text        NOT NULL CHECK (file <> ''),
    name           text        NOT NULL
                               CHECK (name ~ '^[A-Za-z0-9._-]{1,128}$'),
    nonce          text        NOT NULL CHECK (nonce ~ '^[0-9a-f]{16}$'),
    expires_at     timestamptz NOT NULL,
    max_downloads  integer     NOT NULL CHECK (max_downloads > 0),
    used           integer     NOT NULL DEFAULT 0
                               CHECK (used >= 0 AND used <= max_downloads),
    revoked_at     timestamptz,
    issued_at      timestamptz NOT NULL DEFAULT now(),
    created_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (order_id, line),
    FOREIGN KEY (order_id, line) REFERENCES order_items (order_id, line)
        ON DELETE CASCADE
);
