-- Email: one row per message, written before the provider is called and
-- holding exactly what is sent (rendered once), so a job re-run after a
-- crash sends the same bytes under the same idempotency key, and the table
-- shows what went out.  email_context() builds the data a template sees.

CREATE TABLE emails (
    id                   bigserial PRIMARY KEY,
    job_id               bigint      UNIQUE,          -- the job that sends it
    message_key          text        NOT NULL UNIQUE  -- idempotency key
                         DEFAULT 'darkroom-email-' || gen_random_uuid(),
    template             text        NOT NULL,        -- receipt, refunded ...
    kind                 text        NOT NULL         -- who it is for
        CHECK (kind IN ('customer', 'shop')),
    recipient            text        NOT NULL,
    order_id             bigint REFERENCES orders ON DELETE SET NULL,
    provider             text        NOT NULL
        CHECK (provider IN ('postmark', 'sendgrid', 'resend')),
    provider_message_id  text,
    status               text        NOT NULL DEFAULT 'queued'
        CHECK (status IN ('queued', 'sent', 'failed')),
    subject              text        NOT NULL,
    body_text            text        NOT NULL,
    body_html            text,
    error                text,                        -- the provider's reason
    attempts             integer     NOT NULL DEFAULT 0,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    sent_at              timestamptz
);

CREATE INDEX emails_order ON emails (order_id, id);
CREATE INDEX emails_status ON emails (status, created_at);
