-- Client galleries that sell, and proofing (issue 14).
--
-- Selling: a gallery names a price sheet (products of the catalogue, with
-- optional prices of its own per currency) and a currency; a gallery order
-- records its gallery, and each line its gallery photo and the client's
-- crop-or-fit choice.  Print sizes: a print product declares its size in
-- millimetres; a photo must give at least min_ppi at that size (the
-- product's own, else the shop's, 150 by default).
--
-- Proofing: a visitor of a gallery gives a name and an email once (no
-- password) and keeps named lists of photos with a note per photo; a list
-- is submitted once and then locked.  A gallery may limit a selection
-- ("choose 30") and price the photos beyond it, and may limit each
-- visitor's downloads.

ALTER TABLE products
    ADD COLUMN print_width_mm  numeric(7,1) CHECK (print_width_mm > 0),
    ADD COLUMN print_height_mm numeric(7,1) CHECK (print_height_mm > 0),
    ADD COLUMN min_ppi         integer CHECK (min_ppi BETWEEN 1 AND 2400),
    ADD CONSTRAINT products_print_size
        CHECK ((print_width_mm IS NULL) = (print_height_mm IS NULL));

ALTER TABLE shop_settings
    ADD COLUMN min_ppi integer NOT NULL DEFAULT 150
                       CHECK (min_ppi BETWEEN 1 AND 2400);

ALTER TABLE photos
    ADD COLUMN width  integer CHECK (width > 0),
    ADD COLUMN height integer CHECK (height > 0);

CREATE TABLE price_sheets (
    id           text        PRIMARY KEY
                             CHECK (id ~ '^[a-z0-9][a-z0-9-]{0,63}$'),
    name         text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE price_sheet_items (
    sheet_id     text        NOT NULL REFERENCES price_sheets
                                      ON DELETE CASCADE,
    product_id   text        NOT NULL REFERENCES products ON DELETE CASCADE,
    position     integer     NOT NULL DEFAULT 0,
    PRIMARY KEY (sheet_id, product_id)
);

-- a sheet's own price of a product in a currency; none: the catalogue's
CREATE TABLE price_sheet_prices (
    sheet_id     text        NOT NULL,
    product_id   text        NOT NULL,
    currency     char(3)     NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    amount       bigint      NOT NULL
                             CHECK (amount > 0 AND amount < 100000000),
    PRIMARY KEY (sheet_id, product_id, currency),
    FOREIGN KEY (sheet_id, product_id) REFERENCES price_sheet_items
        ON DELETE CASCADE
);

ALTER TABLE galleries
    ADD COLUMN price_sheet_id         text REFERENCES price_sheets
                                           ON DELETE SET NULL,
    ADD COLUMN currency               char(3)
                                      CHECK (currency ~ '^[A-Z]{3}$'),
    ADD COLUMN selection_limit        integer CHECK (selection_limit > 0),
    ADD COLUMN extra_photo_amount     bigint
                                      CHECK (extra_photo_amount > 0
                                             AND extra_photo_amount
                                                 < 100000000),
    ADD COLUMN visitor_download_limit integer
                                      CHECK (visitor_download_limit > 0);

ALTER TABLE orders
    ADD COLUMN gallery_id bigint REFERENCES galleries ON DELETE SET NULL;

CREATE INDEX orders_gallery ON orders (gallery_id)
    WHERE gallery_id IS NOT NULL;

ALTER TABLE order_items
    ADD COLUMN gallery_photo_id bigint REFERENCES gallery_photos
                                       ON DELETE SET NULL,
    ADD COLUMN sizing           text CHECK (sizing IN ('crop', 'fit'));

CREATE TABLE gallery_visitors (
    id             bigserial   PRIMARY KEY,
    gallery_id     bigint      NOT NULL REFERENCES galleries ON DELETE CASCADE,
    name           text        NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    email          text        NOT NULL CHECK (length(email) <= 254
                                               AND email ~ '^[^@\s]+@[^@\s]+$'),
    downloads      integer     NOT NULL DEFAULT 0 CHECK (downloads >= 0),
    created_at     timestamptz NOT NULL DEFAULT now(),
    last_seen_at   timestamptz NOT NULL DEFAULT now()
);

CREATE UNIQUE INDEX gallery_visitors_email
    ON gallery_visitors (gallery_id, lower(email));

CREATE TABLE gallery_lists (
    id             bigserial   PRIMARY KEY,
    gallery_id     bigint      NOT NULL REFERENCES galleries ON DELETE CASCADE,
    visitor_id     bigint      NOT NULL REFERENCES gallery_visitors
                                        ON DELETE CASCADE,
    name           text        NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    submitted_at   timestamptz,
    order_id       bigint      REFERENCES orders ON DELETE SET NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (visitor_id, name)
);

CREATE INDEX gallery_lists_gallery ON gallery_lists (gallery_id);

CREATE TABLE gallery_list_photos (
    list_id        bigint      NOT NULL REFERENCES gallery_lists
                                        ON DELETE CASCADE,
    photo_id       bigint      NOT NULL REFERENCES gallery_photos
                                        ON DELETE CASCADE,
    note           text        NOT NULL DEFAULT ''
                               CHECK (length(note) <= 2000),
    added_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (list_id, photo_id)
);

ALTER TABLE gallery_downloads ADD COLUMN visitor_id bigint;
