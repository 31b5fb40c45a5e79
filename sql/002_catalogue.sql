-- The catalogue: photos, the products they are sold as (prints, digital
-- downloads) and prices in integer minor units per currency.  Checkout
-- prices every cart from these rows; a client never sends a price.

CREATE TABLE photos (
    id           text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9-]{0,63}$'),
    title        text        NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    description  text        NOT NULL DEFAULT '',
    image_path   text,            -- web preview, a URL path on the site
    print_path   text,            -- print file, relative to the print root
    active       boolean     NOT NULL DEFAULT true,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE products (
    id           text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9-]{0,63}$'),
    name         text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    kind         text        NOT NULL CHECK (kind IN ('print', 'digital')),
    medium       text        NOT NULL DEFAULT '',
    size         text        NOT NULL DEFAULT '',
    active       boolean     NOT NULL DEFAULT true,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE product_prices (
    product_id   text   NOT NULL REFERENCES products ON DELETE CASCADE,
    currency     char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    amount       bigint NOT NULL CHECK (amount > 0 AND amount < 100000000),
    PRIMARY KEY (product_id, currency)
);

-- which products each photo is offered as
CREATE TABLE photo_products (
    photo_id     text NOT NULL REFERENCES photos ON DELETE CASCADE,
    product_id   text NOT NULL REFERENCES products ON DELETE CASCADE,
    PRIMARY KEY (photo_id, product_id)
);

CREATE INDEX photo_products_product ON photo_products (product_id);
