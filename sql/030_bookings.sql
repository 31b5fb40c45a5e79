-- Bookings (issue 16): photographers with their time zone and rules,
-- session types, weekly hours and dated exceptions, and the bookings
-- themselves with their history.
--
-- No two live bookings (held or confirmed) of one photographer overlap,
-- buffers included: the exclusion constraint on bookings.busy says so in
-- PostgreSQL, whatever the code above it does.  A hold whose time is up
-- still counts until it is marked expired: whoever wants its time expires
-- it first, in the same transaction.  Times are timestamptz (instants);
-- the photographer's hours are wall-clock times in their time_zone, turned
-- into instants per day by the slot functions (correct across DST).  The
-- functions are in sql/functions/bookings.sql.

CREATE EXTENSION IF NOT EXISTS btree_gist;

CREATE TABLE photographers (
    id             text        PRIMARY KEY
                   CHECK (id ~ '^[a-z0-9][a-z0-9-]{0,63}$'),
    name           text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    email          text        NOT NULL
                   CHECK (email ~ '^[^@\s]+@[^@\s]+$' AND length(email) <= 254),
    time_zone      text        NOT NULL,            -- IANA name
    min_notice     interval    NOT NULL DEFAULT '24 hours'
                   CHECK (min_notice >= '0'),
    horizon        interval    NOT NULL DEFAULT '90 days'
                   CHECK (horizon > '0' AND horizon <= '2 years'),
    max_per_day    integer     CHECK (max_per_day > 0),
    -- the private ICS feed: the SHA-256 (hex) of the secret in its URL;
    -- NULL: no feed.  Replacing it revokes the old URL.
    feed_hash      text        CHECK (feed_hash ~ '^[0-9a-f]{64}$'),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE session_types (
    id              text        PRIMARY KEY
                    CHECK (id ~ '^[a-z0-9][a-z0-9-]{0,63}$'),
    photographer_id text        NOT NULL REFERENCES photographers,
    name            text        NOT NULL
                    CHECK (length(name) BETWEEN 1 AND 200),
    description     text        NOT NULL DEFAULT ''
                    CHECK (length(description) <= 2000),
    duration        interval    NOT NULL
                    CHECK (duration >= '15 minutes'
                           AND duration <= '24 hours'),
    buffer_before   interval    NOT NULL DEFAULT '0'
                    CHECK (buffer_before BETWEEN '0' AND '12 hours'),
    buffer_after    interval    NOT NULL DEFAULT '0'
                    CHECK (buffer_after BETWEEN '0' AND '12 hours'),
    -- slots start every slot_step from the start of each open period
    slot_step       interval    NOT NULL DEFAULT '30 minutes'
                    CHECK (slot_step >= '5 minutes'
                           AND slot_step <= '24 hours'),
    currency        char(3)     NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    price           bigint      NOT NULL CHECK (price > 0),
    deposit_kind    text        NOT NULL DEFAULT 'percent'
                    CHECK (deposit_kind IN ('fixed', 'percent')),
    deposit_amount  bigint      CHECK (deposit_amount > 0),
    deposit_percent numeric(5,2) CHECK (deposit_percent > 0
                                        AND deposit_percent <= 100),
    -- '' none given, else an address; online: a video call
    location        text        NOT NULL DEFAULT ''
                    CHECK (length(location) <= 500),
    online          boolean     NOT NULL DEFAULT false,
    -- [{"id": "a-z0-9_", "label": text, "required": bool,
    --   "kind": "text" | "long" | "choice", "choices": [text]}]
    questions       jsonb       NOT NULL DEFAULT '[]'
                    CHECK (jsonb_typeof(questions) = 'array'),
    -- the policy: the deposit is refunded on a cancel up to refund_hours
    -- before the start; a reschedule is allowed up to reschedule_hours
    refund_hours    integer     NOT NULL DEFAULT 48
                    CHECK (refund_hours >= 0),
    reschedule_hours integer    NOT NULL DEFAULT 24
                    CHECK (reschedule_hours >= 0),
    active          boolean     NOT NULL DEFAULT true,
    position        integer     NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (deposit_kind = 'fixed' AND deposit_amount IS NOT NULL
           AND deposit_amount <= price
           OR deposit_kind = 'percent' AND deposit_percent IS NOT NULL)
);

-- the weekly hours, wall-clock in the photographer's time zone; weekday
-- is ISO (1 Monday .. 7 Sunday); several rows a day are several periods
CREATE TABLE booking_hours (
    id              bigserial   PRIMARY KEY,
    photographer_id text        NOT NULL REFERENCES photographers
                                ON DELETE CASCADE,
    weekday         smallint    NOT NULL CHECK (weekday BETWEEN 1 AND 7),
    starts          time        NOT NULL,
    ends            time        NOT NULL,
    CHECK (ends > starts)
);

CREATE INDEX booking_hours_photographer ON booking_hours (photographer_id,
                                                          weekday);

-- dated exceptions: 'closed' with no times closes the whole day (a
-- blackout), with times closes that period; 'open' rows replace the
-- weekly hours of their day
CREATE TABLE booking_exceptions (
    id              bigserial   PRIMARY KEY,
    photographer_id text        NOT NULL REFERENCES photographers
                                ON DELETE CASCADE,
    day             date        NOT NULL,
    kind            text        NOT NULL CHECK (kind IN ('closed', 'open')),
    starts          time,
    ends            time,
    note            text        NOT NULL DEFAULT ''
                    CHECK (length(note) <= 500),
    CHECK (starts IS NULL AND ends IS NULL AND kind = 'closed'
           OR starts IS NOT NULL AND ends IS NOT NULL AND ends > starts)
);

CREATE INDEX booking_exceptions_day ON booking_exceptions (photographer_id,
                                                           day);

CREATE TABLE bookings (
    id              bigserial   PRIMARY KEY,
    ref             text        NOT NULL UNIQUE,      -- BK-000001
    -- RFC 5545 UID, stable for the booking's life; sequence is its
    -- SEQUENCE, raised on every reschedule and on cancel
    uid             text        NOT NULL UNIQUE,
    sequence        integer     NOT NULL DEFAULT 0,
    -- 128 random bits (hex) in the client's reschedule and cancel links,
    -- as orders.status_token is in the order page's
    manage_token    text        NOT NULL UNIQUE
                    CHECK (manage_token ~ '^[0-9a-f]{32}$'),
    photographer_id text        NOT NULL REFERENCES photographers,
    session_type_id text        NOT NULL REFERENCES session_types,
    state           text        NOT NULL DEFAULT 'held'
                    CHECK (state IN ('held', 'confirmed', 'expired',
                                     'cancelled')),
    starts_at       timestamptz NOT NULL,
    ends_at         timestamptz NOT NULL,
    -- the time the photographer is taken: the session and its buffers
    busy            tstzrange   NOT NULL,
    held_until      timestamptz,             -- a hold: released after it
    client_name     text        NOT NULL
                    CHECK (length(client_name) BETWEEN 1 AND 200),
    client_email    text        NOT NULL
                    CHECK (client_email ~ '^[^@\s]+@[^@\s]+$'
                           AND length(client_email) <= 254),
    client_time_zone text       NOT NULL,    -- IANA, to show times in
    answers         jsonb       NOT NULL DEFAULT '{}'
                    CHECK (jsonb_typeof(answers) = 'object'),
    currency        char(3)     NOT NULL,
    price           bigint      NOT NULL CHECK (price > 0),
    deposit         bigint      NOT NULL CHECK (deposit > 0),
    deposit_order_id bigint     REFERENCES orders,
    balance_order_id bigint     REFERENCES orders,
    deposit_paid    bigint      NOT NULL DEFAULT 0,
    balance_paid    bigint      NOT NULL DEFAULT 0,
    deposit_refunded bigint     NOT NULL DEFAULT 0,
    cancel_reason   text        CHECK (length(cancel_reason) <= 1000),
    cancelled_by    text        CHECK (cancelled_by IN ('client', 'admin',
                                                        'system')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    confirmed_at    timestamptz,
    cancelled_at    timestamptz,
    CHECK (ends_at > starts_at),
    CHECK (busy @> tstzrange(starts_at, ends_at)),
    CHECK (state <> 'held' OR held_until IS NOT NULL),
    EXCLUDE USING gist (photographer_id WITH =, busy WITH &&)
        WHERE (state IN ('held', 'confirmed'))
);

CREATE INDEX bookings_starts ON bookings (photographer_id, starts_at)
    WHERE state IN ('held', 'confirmed');
CREATE INDEX bookings_held ON bookings (held_until) WHERE state = 'held';
CREATE INDEX bookings_deposit_order ON bookings (deposit_order_id);
CREATE INDEX bookings_balance_order ON bookings (balance_order_id);

-- every change with its cause: stripe:evt_..., client, admin:<who>, job:N
CREATE TABLE booking_events (
    id              bigserial   PRIMARY KEY,
    booking_id      bigint      NOT NULL REFERENCES bookings
                                ON DELETE CASCADE,
    from_state      text,
    to_state        text        NOT NULL,
    cause           text        NOT NULL,
    detail          jsonb       NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX booking_events_booking ON booking_events (booking_id, id);

-- reminders sent: one row per booking, SEQUENCE and offset, so each is
-- sent once and a reschedule gets its own
CREATE TABLE booking_reminders (
    booking_id      bigint      NOT NULL REFERENCES bookings
                                ON DELETE CASCADE,
    sequence        integer     NOT NULL,
    before          interval    NOT NULL,
    job_id          bigint,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (booking_id, sequence, before)
);
