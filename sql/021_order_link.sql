-- The order page link every email carries (issue 13).
--
-- An order's status token is no longer random: it is the first 128 bits
-- of HMAC-SHA256(key, "darkroom-order-v1\n" || token_seed), the key named
-- token_kid in the darkroom_order_keys keyring (core,
-- ngx_http_darkroom_order_token).  The seed is random and kept in clear:
-- without the key it tells nothing of the token.  status_token still holds
-- the token's SHA-256, so GET /api/orders/<token> is unchanged; the mail
-- job derives the link again from the seed when it renders an email.
-- Orders made before this migration have no seed: their emails go without
-- the link, as before.

ALTER TABLE orders
    ADD COLUMN token_seed text CHECK (token_seed ~ '^[0-9a-f]{32}$'),
    ADD COLUMN token_kid  text CHECK (token_kid ~ '^[A-Za-z0-9._-]{1,32}$'),
    ADD CONSTRAINT orders_token_seed_kid
        CHECK ((token_seed IS NULL) = (token_kid IS NULL));

-- A replayed checkout derives the token again from the order's seed: the
-- token XOR a pad of the key (token_enc) is no longer written.  The
-- column stays for keys taken before this migration (a day at most).
ALTER TABLE checkout_idempotency ALTER COLUMN token_enc DROP NOT NULL;

-- checkout_create_idempotent takes the seed and key id instead of the
-- encrypted token, and returns them on a replay.
DROP FUNCTION IF EXISTS checkout_create_idempotent(text, text, text,
    interval, jsonb, text, text, text, text, text, text, timestamptz,
    timestamptz);
