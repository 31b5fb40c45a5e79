-- Print-file checks (issue 14).
--
-- print_check() gains the photo's name for its refusal (an argument with a
-- default: the five-argument form goes).
--
-- A lab order's line records whether its print file is a gallery original
-- (print_path under darkroom_gallery_root, signed with
-- darkroom_lab_gallery_asset_url) rather than a shop print file.

DROP FUNCTION IF EXISTS print_check(integer, integer, text, text, integer);

ALTER TABLE lab_order_items
    ADD COLUMN gallery boolean NOT NULL DEFAULT false;
