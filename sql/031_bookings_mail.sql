-- Bookings' mail (issue 16): an email may carry attachments (a booking's
-- iCalendar invite), recorded with the message so a re-run sends the same
-- bytes: [{"filename", "content_type", "content"}], content as text (the
-- mail module base64-encodes it for the provider).
--
-- email_of_job() and email_record() (sql/functions/mail.sql) gain the
-- column: their old definitions are dropped here, the function files
-- create the new ones after the migrations.

ALTER TABLE emails
    ADD COLUMN attachments jsonb NOT NULL DEFAULT '[]'
        CHECK (jsonb_typeof(attachments) = 'array');

SET LOCAL client_min_messages = warning;

DROP FUNCTION IF EXISTS email_of_job(bigint);
DROP FUNCTION IF EXISTS email_record(bigint, text, text, text, bigint, text,
                                     text, text, text);
