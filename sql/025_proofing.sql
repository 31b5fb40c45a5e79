-- Proofing (issue 14), what 023 left out: the visitor of a ZIP download,
-- so the download log can name them, and an index to read the log by
-- visitor.  (The trigger that submits a selection when its order is paid
-- lives with its function in sql/functions/proofing.sql, as triggers do.)

ALTER TABLE gallery_zips ADD COLUMN visitor_id bigint;

CREATE INDEX gallery_downloads_visitor ON gallery_downloads (visitor_id)
    WHERE visitor_id IS NOT NULL;
