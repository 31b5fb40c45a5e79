-- Retention and customer data requests (issue 19).  What darkroom keeps,
-- and for how long, is one row of retention_settings (the admin API's
-- GET | POST retention, sql/functions/retention.sql); the recurring
-- "retention" job purges what is past its period in bounded batches, and
-- the gallery module's "gallery_files_purge" job deletes the files of
-- galleries expired longer than theirs.  Money records are kept
-- money_years and then only their personal data is minimised.

CREATE TABLE retention_settings (
    id                  boolean     PRIMARY KEY DEFAULT true CHECK (id),
    -- done jobs (their payloads name orders, emails, galleries)
    jobs_days           integer     NOT NULL DEFAULT 30
                        CHECK (jobs_days BETWEEN 7 AND 36500),
    -- Stripe events' raw payloads (the event row and its outcome stay)
    webhook_days        integer     NOT NULL DEFAULT 90
                        CHECK (webhook_days BETWEEN 1 AND 36500),
    -- emails' bodies and attachments (recipient, subject, status stay)
    email_body_days     integer     NOT NULL DEFAULT 90
                        CHECK (email_body_days BETWEEN 1 AND 36500),
    -- the galleries' download log (gallery_downloads)
    download_log_days   integer     NOT NULL DEFAULT 365
                        CHECK (download_log_days BETWEEN 1 AND 36500),
    -- the files of a gallery expired longer than this
    gallery_files_days  integer     NOT NULL DEFAULT 90
                        CHECK (gallery_files_days BETWEEN 1 AND 36500),
    -- orders, payments, refunds, invoices: kept whole this long, then
    -- their personal data is minimised (amounts and numbers stay)
    money_years         integer     NOT NULL DEFAULT 10
                        CHECK (money_years BETWEEN 1 AND 100),
    -- rows one statement of the job touches, per kind of data
    batch               integer     NOT NULL DEFAULT 500
                        CHECK (batch BETWEEN 10 AND 10000),
    updated_at          timestamptz NOT NULL DEFAULT now()
);

INSERT INTO retention_settings DEFAULT VALUES;

-- when personal data was minimised (retention) or erased (a request)
ALTER TABLE orders ADD COLUMN anonymised_at timestamptz;
ALTER TABLE bookings ADD COLUMN anonymised_at timestamptz;

-- when an email's body was purged (body_text '' and no html from then)
ALTER TABLE emails ADD COLUMN body_purged_at timestamptz;

-- when the job deleted an expired gallery's files
ALTER TABLE galleries ADD COLUMN files_purged_at timestamptz;

-- what the job scans, oldest first
CREATE INDEX jobs_done ON jobs (done_at) WHERE done_at IS NOT NULL;
CREATE INDEX stripe_events_received ON stripe_events (received_at)
    WHERE payload <> '{}';
CREATE INDEX emails_body_due ON emails (created_at)
    WHERE body_purged_at IS NULL;
CREATE INDEX gallery_downloads_at ON gallery_downloads (at);
CREATE INDEX orders_anonymise_due ON orders (created_at)
    WHERE anonymised_at IS NULL;
CREATE INDEX galleries_files_due ON galleries (expires_at)
    WHERE files_purged_at IS NULL;
CREATE INDEX emails_recipient ON emails (lower(recipient));
CREATE INDEX galleries_client_email ON galleries (lower(client_email));
CREATE INDEX gallery_visitors_email_any ON gallery_visitors (lower(email));
CREATE INDEX bookings_client_email ON bookings (lower(client_email));
