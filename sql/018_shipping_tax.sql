-- Shipping by destination zone and tax by country (issue 13).
--
-- A shipping zone is a named list of countries; a country is in at most
-- one zone (the country is the key of shipping_zone_countries).  A zone
-- has rates, each for one currency and one method (budget, standard,
-- express, overnight: the names the labs use, so the lab is asked for
-- what the customer paid for), and either for every print (product_id
-- NULL, the zone's general rate) or for one product, which then overrides
-- the general rate for that product's lines.  A rate is "amount" once per
-- order plus "per_item" for each print it carries, and nothing when the
-- goods (after discount) come to "free_over" or more.
--
-- Tax rates are per country and product kind, as percentages; a country
-- with no rate is taxed at 0 %.  "label" names the tax on receipts and on
-- Stripe's tax line ("VAT", "Sales tax").  cart_shipping() and cart_tax()
-- in sql/functions/shop.sql read these tables.

CREATE TABLE shipping_zones (
    id          text        PRIMARY KEY
                            CHECK (id ~ '^[a-z0-9][a-z0-9-]{0,63}$'),
    name        text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE shipping_zone_countries (
    country  char(2) PRIMARY KEY CHECK (country ~ '^[A-Z]{2}$'),
    zone_id  text    NOT NULL REFERENCES shipping_zones ON DELETE CASCADE
);

CREATE INDEX shipping_zone_countries_zone ON shipping_zone_countries
    (zone_id);

CREATE TABLE shipping_rates (
    id          bigserial   PRIMARY KEY,
    zone_id     text        NOT NULL REFERENCES shipping_zones
                            ON DELETE CASCADE,
    currency    char(3)     NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    method      text        NOT NULL CHECK (method IN ('budget', 'standard',
                                                       'express',
                                                       'overnight')),
    product_id  text        REFERENCES products ON DELETE CASCADE,
    name        text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    amount      bigint      NOT NULL DEFAULT 0
                            CHECK (amount BETWEEN 0 AND 99999999),
    per_item    bigint      NOT NULL DEFAULT 0
                            CHECK (per_item BETWEEN 0 AND 99999999),
    free_over   bigint      CHECK (free_over BETWEEN 0 AND 99999999),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE NULLS NOT DISTINCT (zone_id, currency, method, product_id)
);

CREATE TABLE tax_rates (
    country     char(2)      NOT NULL CHECK (country ~ '^[A-Z]{2}$'),
    kind        text         NOT NULL CHECK (kind IN ('print', 'digital')),
    rate        numeric(7,4) NOT NULL CHECK (rate >= 0 AND rate < 100),
    label       text         NOT NULL DEFAULT 'VAT'
                             CHECK (length(label) BETWEEN 1 AND 40),
    updated_at  timestamptz  NOT NULL DEFAULT now(),
    PRIMARY KEY (country, kind)
);

-- the zone the order's shipping was priced for, and the name of its tax
-- as the receipt and Stripe's tax line show it ("VAT 20 %")
ALTER TABLE orders ADD COLUMN shipping_zone text,
                   ADD COLUMN tax_label     text;
