-- Print-file checks (issue 14).
--
-- A lab order's line records whether its print file is a gallery original
-- (print_path under darkroom_gallery_root, signed with
-- darkroom_lab_gallery_asset_url) rather than a shop print file.

ALTER TABLE lab_order_items
    ADD COLUMN gallery boolean NOT NULL DEFAULT false;
