-- The owner's alerts (issue 18): the shop_alert email also fires, once per
-- condition with a cool-down, for dead jobs, lab orders needing attention,
-- webhooks failing their signature check repeatedly, and PostgreSQL
-- unreachable for longer than darkroom_alert_db_down.  One row per
-- condition, here and not in a worker's memory, so that several nginx
-- nodes checking the same database send one email, not one each: the
-- check (alert_check(), functions/alerts.sql) locks the row it decides on.
--
--   condition    jobs_dead, lab_attention, webhook_signature:<endpoint>,
--                db_unreachable (its "recovered" note: the outage itself
--                is told without the database, see docs/metrics.md)
--   active       as last checked
--   fingerprint  what the condition was when its last email went (the
--                highest dead job, lab order event ...); NULL once it
--                clears, so that its return is news
--   last_sent    when its last email was queued: the cool-down runs
--                from here

CREATE TABLE alert_state (
    condition    text        PRIMARY KEY
                             CHECK (condition ~ '^[a-z][a-z0-9_:.-]{0,62}$'),
    active       boolean     NOT NULL DEFAULT false,
    fingerprint  text,
    detail       jsonb       NOT NULL DEFAULT '{}',
    since        timestamptz,
    last_sent    timestamptz,
    sent         bigint      NOT NULL DEFAULT 0 CHECK (sent >= 0)
);

-- stripe_handle_events() takes each event's request id too (a new
-- argument with a default: the old signature goes first)
DROP FUNCTION IF EXISTS stripe_handle_events(text[], text[], text[]);
