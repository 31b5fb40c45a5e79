-- 028: photos uploaded from the browser (issue 15).  nginx writes each
-- PUT body to a file under darkroom_gallery_root/<slug>/<name> and, in the
-- same transaction as this row, queues a photo_import job that
-- tools/darkroom-importer (a worker beside nginx) runs: checksums, pixel
-- size, web copy and proof.  One row per gallery and file name: a retried
-- upload of the same name replaces the file and this row's state, never
-- adds a second photo.  version counts the PUTs of the name; a job carries
-- the version it was queued for, so a job queued by an older PUT does not
-- import over a newer one.  The functions are in
-- sql/functions/gallery_upload.sql.

CREATE TABLE gallery_uploads (
    id             bigserial PRIMARY KEY,
    gallery_id     bigint      NOT NULL REFERENCES galleries ON DELETE CASCADE,
    name           text        NOT NULL
                   CHECK (name ~ '^[A-Za-z0-9 ._()-]{1,200}$'
                          AND name !~ '^\.'
                          AND name ~* '\.(jpe?g|png|tiff?|webp)$'),
    bytes          bigint      NOT NULL CHECK (bytes > 0),
    state          text        NOT NULL DEFAULT 'received'
                   CHECK (state IN ('received', 'importing', 'done',
                                    'failed')),
    error          text,
    photo_id       bigint      REFERENCES gallery_photos ON DELETE SET NULL,
    version        integer     NOT NULL DEFAULT 1 CHECK (version > 0),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (gallery_id, name)
);

CREATE INDEX gallery_uploads_recent ON gallery_uploads (gallery_id,
                                                        updated_at DESC, id);
