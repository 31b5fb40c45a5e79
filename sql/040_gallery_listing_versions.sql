-- The gallery listing (GET <slug>) served from darkroom_public_cache
-- (issue 17): one version per gallery, bumped by row triggers on what the
-- listing reads of that gallery (galleries, gallery_photos,
-- gallery_favourites) and, for every gallery with a price sheet, by
-- statement triggers on the price sheets (sql/functions/gallery.sql).  The
-- catalogue tables the listing reads (products, product_prices,
-- shop_settings.min_ppi) bump the catalogue's row of public_versions
-- already; gallery_listing_version() adds the two, so the sum moves when
-- either does.  nginx keeps a gallery's listing with the version it was
-- built at, polls the versions of the galleries it holds at the gallery
-- zone's interval, and serves an entry only while they agree.

CREATE TABLE gallery_listing_versions (
    gallery_id  bigint PRIMARY KEY,
    version     bigint NOT NULL DEFAULT 1 CHECK (version > 0)
);

INSERT INTO gallery_listing_versions (gallery_id)
SELECT id FROM galleries;
