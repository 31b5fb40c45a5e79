-- Public answers served from shared memory (issue 17, darkroom_public_cache,
-- src/core/ngx_http_darkroom_cache.c): one row per answer, its version
-- bumped by a statement trigger on every table the answer reads, in the
-- transaction of the change (public_version_bump() in functions/core.sql,
-- the triggers in the function file of the table's area: shop.sql,
-- bookings.sql).  The workers read the versions at the
-- zone's interval and build an answer again when its version moved; the
-- build reads the version and the data in one snapshot.
--
-- Answers and the tables they read:
--   catalogue      catalogue_json(): photos, products, product_prices,
--                  photo_products, shop_settings.min_ppi (print_fits)
--   booking_types  bookings_types_json(): session_types, photographers
--                  (id, name, time_zone)
--
-- A statement trigger fires once per statement, even one that changes no
-- row: a rebuild that finds the same bytes keeps the same ETag.  Writers
-- of these tables queue on the answer's row until they commit; they are
-- the owner's edits, not the shop's traffic (payments touch
-- shop_settings.next_invoice only, which fires nothing).

CREATE TABLE public_versions (
    name     text   PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_]{0,30}$'),
    version  bigint NOT NULL DEFAULT 1 CHECK (version > 0)
);

INSERT INTO public_versions (name) VALUES ('catalogue'), ('booking_types');
