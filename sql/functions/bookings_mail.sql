-- sql/functions/bookings_mail.sql: a booking's iCalendar (RFC 5545) text,
-- for the invite attached to its emails and for the photographer's
-- private feed, the data a booking email's template sees, the reminders,
-- and the changes (cancel, reschedule) with their emails: the client's,
-- and booking_move() which the owner's reschedule (bookings_admin.sql)
-- shares.
--
-- Times are the photographer's wall clock with TZID and a VTIMEZONE of
-- the zone built from PostgreSQL's tz data (below).  Text is escaped
-- (\\ \; \, \n), lines folded at 75 octets (never inside a UTF-8
-- character) and ended by CRLF.
--
-- The feed's key: its SHA-256 in photographers.feed_hash, set anew by
-- booking_feed_rotate() (the old URL revoked), cleared by
-- booking_feed_revoke().
--
-- Tables: bookings, booking_events, booking_reminders, jobs (written);
-- session_types, photographers (feed_hash written); orders (read: a
-- payment email's receipt, booking_receipt_json).  Calls
-- bookings_event, bookings_client_json, bookings_slots_of,
-- bookings_expire_in_way, bookings_utc (bookings.sql) and email_money
-- (mail.sql); called by email_context() (mail.sql), the bookings module's
-- feed and changes, the mail module's booking_reminders job and
-- bookings_admin_reschedule() (bookings_admin.sql).


-- RFC 5545 TEXT: backslash, semicolon, comma and line breaks escaped,
-- other control characters dropped.
CREATE OR REPLACE FUNCTION ics_text(p text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT regexp_replace(
               replace(replace(replace(replace(
                   replace(coalesce(p, ''), E'\\', E'\\\\'),
                   ';', E'\\;'), ',', E'\\,'), E'\r\n', E'\\n'),
                   E'\n', E'\\n'),
               E'[\\x01-\\x08\\x0b-\\x1f\\x7f\\r]', '', 'g')
$$;


-- A parameter value (CN=...): quoted, so ; : , may stay; a quote or a
-- control character cannot be written in one and is dropped.
CREATE OR REPLACE FUNCTION ics_param(p text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT '"' || regexp_replace(coalesce(p, ''),
                                 E'["\\x01-\\x1f\\x7f]+', ' ', 'g') || '"'
$$;


-- One content line, folded at 75 octets (a continuation starts with a
-- space), ended by CRLF.
CREATE OR REPLACE FUNCTION ics_fold(p_line text) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    v_out  text := '';
    v_cur  text := '';
    v_len  integer := 0;
    v_ch   text;
BEGIN
    IF octet_length(p_line) <= 75 THEN
        RETURN p_line || E'\r\n';
    END IF;
    FOREACH v_ch IN ARRAY regexp_split_to_array(p_line, '') LOOP
        IF v_len + octet_length(v_ch) > 75 THEN
            v_out := v_out || v_cur || E'\r\n';
            v_cur := ' ';
            v_len := 1;
        END IF;
        v_cur := v_cur || v_ch;
        v_len := v_len + octet_length(v_ch);
    END LOOP;
    RETURN v_out || v_cur || E'\r\n';
END $$;


CREATE OR REPLACE FUNCTION ics_utc(p timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT to_char(p AT TIME ZONE 'UTC', 'YYYYMMDD"T"HH24MISS"Z"')
$$;


-- The time zone (RFC 5545 3.6.5): a booking's DTSTART and DTEND are the
-- photographer's wall clock with TZID=<IANA name>, and the calendar
-- carries a VTIMEZONE of that zone built from PostgreSQL's tz data: the
-- zone's actual changes around the events, each an observance (DAYLIGHT
-- when the offset goes up, STANDARD when it goes down) with its
-- TZOFFSETFROM, TZOFFSETTO, TZNAME and DTSTART (the local time of the
-- change on the clock before it); a zone without a change near the
-- events has one STANDARD.  A calendar that knows the name uses its own
-- rules, one that does not uses these: both give the same instants.

-- A zone's UTC offset at an instant.
CREATE OR REPLACE FUNCTION ics_offset(p_zone text, p_at timestamptz)
RETURNS interval LANGUAGE sql STABLE AS $$
    SELECT (p_at AT TIME ZONE p_zone) - (p_at AT TIME ZONE 'UTC')
$$;


-- An offset as RFC 5545's UTC-OFFSET: +0100, -0430 (+hhmmss if seconds).
CREATE OR REPLACE FUNCTION ics_offset_text(p interval) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN s < 0 THEN '-' ELSE '+' END
           || to_char(abs(s) / 3600, 'FM00')
           || to_char(abs(s) % 3600 / 60, 'FM00')
           || CASE WHEN abs(s) % 60 <> 0
                   THEN to_char(abs(s) % 60, 'FM00') ELSE '' END
      FROM (SELECT extract(epoch FROM p)::integer AS s) x
$$;


-- The changes of a zone's offset between two instants: a day-by-day look
-- at the offset, then the minute of each change (tz data changes fall on
-- whole minutes).
CREATE OR REPLACE FUNCTION ics_zone_changes(p_zone text,
    p_from timestamptz, p_to timestamptz)
RETURNS TABLE (at timestamptz, off_from interval, off_to interval)
LANGUAGE sql STABLE SET jit = off AS $$
    WITH days AS (
        SELECT d, ics_offset(p_zone, d) AS o,
               lead(ics_offset(p_zone, d)) OVER (ORDER BY d) AS next_o
          FROM generate_series(p_from, p_to + interval '1 day',
                               interval '1 day') d
    )
    SELECT (SELECT min(m) FROM generate_series(days.d,
                days.d + interval '1 day', interval '1 minute') m
             WHERE ics_offset(p_zone, m) = days.next_o),
           days.o, days.next_o
      FROM days
     WHERE days.next_o <> days.o
     ORDER BY 1
$$;


-- The VTIMEZONE of a zone for events between p_from and p_to, folded: the
-- two changes before p_from (so a zone with DST has both its STANDARD and
-- its DAYLIGHT), those up to p_to and the first after it; without a
-- change in the two years before, one STANDARD from 1970 with the offset
-- at p_from.  TZNAME is PostgreSQL's abbreviation (the session's TimeZone
-- is the zone's inside, and back as it was after).
CREATE OR REPLACE FUNCTION ics_vtimezone(p_zone text, p_from timestamptz,
    p_to timestamptz)
RETURNS text LANGUAGE plpgsql STABLE SET TimeZone = 'UTC' AS $$
DECLARE
    v_out   text := '';
    v_c     record;
BEGIN
    PERFORM set_config('TimeZone', p_zone, true);
    FOR v_c IN
        WITH c AS (
            SELECT z.*, row_number() OVER (ORDER BY z.at DESC) AS back
              FROM ics_zone_changes(p_zone, p_from - interval '2 years',
                                    p_to + interval '1 year') z
             WHERE z.at <= p_from
        ), after AS (
            SELECT z.*, z.at > p_to AS past,
                   row_number() OVER (ORDER BY z.at) AS n
              FROM ics_zone_changes(p_zone, p_from, p_to + interval '1 year') z
             WHERE z.at > p_from
        )
        SELECT at, off_from, off_to FROM c WHERE back <= 2
        UNION ALL
        SELECT at, off_from, off_to FROM after
         WHERE NOT past OR n = (SELECT min(n) FROM after WHERE past)
        UNION ALL
        SELECT NULL, ics_offset(p_zone, p_from), ics_offset(p_zone, p_from)
         WHERE NOT EXISTS (SELECT 1 FROM c)
        ORDER BY 1 NULLS FIRST
    LOOP
        v_out := v_out || concat_ws(E'\r\n',
            'BEGIN:' || CASE WHEN v_c.off_to > v_c.off_from THEN 'DAYLIGHT'
                             ELSE 'STANDARD' END,
            'DTSTART:' || coalesce(to_char((v_c.at AT TIME ZONE 'UTC')
                                           + v_c.off_from,
                                           'YYYYMMDD"T"HH24MISS'),
                                   '19700101T000000'),
            'TZOFFSETFROM:' || ics_offset_text(v_c.off_from),
            'TZOFFSETTO:' || ics_offset_text(v_c.off_to),
            'TZNAME:' || ics_text(to_char(coalesce(v_c.at, p_from), 'TZ')),
            'END:' || CASE WHEN v_c.off_to > v_c.off_from THEN 'DAYLIGHT'
                           ELSE 'STANDARD' END) || E'\r\n';
    END LOOP;
    RETURN ics_fold('BEGIN:VTIMEZONE') || ics_fold('TZID:' || p_zone)
           || v_out || ics_fold('END:VTIMEZONE');
END $$;


-- DTSTART or DTEND of an instant: the zone's wall clock with its TZID,
-- or UTC for the second pass of a repeated hour (an autumn change), which
-- a wall-clock time cannot say (RFC 5545 takes the first).
CREATE OR REPLACE FUNCTION ics_when(p_name text, p_at timestamptz,
    p_zone text)
RETURNS text LANGUAGE sql STABLE AS $$
    SELECT CASE
        WHEN p_zone IS NULL OR (
            o_before > o_at
            AND ics_offset(p_zone, p_at - (o_before - o_at)) = o_before)
        THEN p_name || ':' || ics_utc(p_at)
        ELSE p_name || ';TZID=' || p_zone || ':'
             || to_char(p_at AT TIME ZONE p_zone, 'YYYYMMDD"T"HH24MISS') END
      FROM (SELECT ics_offset(p_zone, p_at - interval '1 day') AS o_before,
                   ics_offset(p_zone, p_at) AS o_at) x
$$;


-- A booking's VEVENT, folded.  p_cancel: STATUS:CANCELLED whatever its
-- state (the invite of a cancel); otherwise from its state.  p_feed: the
-- photographer's view (SUMMARY names the client), else the client's.
CREATE OR REPLACE FUNCTION booking_vevent(p_booking bigint,
    p_cancel boolean, p_stamp timestamptz, p_feed boolean)
RETURNS text LANGUAGE sql STABLE AS $$
    SELECT string_agg(ics_fold(l), '' ORDER BY n)
      FROM bookings b
      JOIN session_types t ON t.id = b.session_type_id
      JOIN photographers p ON p.id = b.photographer_id,
           unnest(ARRAY[
               'BEGIN:VEVENT',
               'UID:' || b.uid,
               'SEQUENCE:' || b.sequence,
               'DTSTAMP:' || ics_utc(p_stamp),
               ics_when('DTSTART', b.starts_at, p.time_zone),
               ics_when('DTEND', b.ends_at, p.time_zone),
               'SUMMARY:' || ics_text(CASE WHEN p_feed
                   THEN t.name || ': ' || b.client_name
                   ELSE t.name || ' with ' || p.name END),
               CASE WHEN t.online THEN 'LOCATION:' || ics_text(
                        coalesce(nullif(t.location, ''), 'Online'))
                    WHEN t.location <> '' THEN
                        'LOCATION:' || ics_text(t.location) END,
               'DESCRIPTION:' || ics_text(concat_ws(E'\n',
                   nullif(t.description, ''),
                   'Client: ' || b.client_name || ' <' || b.client_email
                   || '>',
                   'Booking: ' || b.ref)),
               'ORGANIZER;CN=' || ics_param(p.name) || ':mailto:' || p.email,
               'ATTENDEE;CN=' || ics_param(b.client_name)
               || ';ROLE=REQ-PARTICIPANT;PARTSTAT=ACCEPTED;RSVP=FALSE'
               || ':mailto:' || b.client_email,
               'STATUS:' || CASE WHEN p_cancel OR b.state <> 'confirmed'
                                 THEN 'CANCELLED' ELSE 'CONFIRMED' END,
               'TRANSP:OPAQUE',
               'END:VEVENT']) WITH ORDINALITY AS x(l, n)
     WHERE b.id = p_booking AND l IS NOT NULL
$$;


CREATE OR REPLACE FUNCTION ics_calendar(p_method text, p_events text,
    p_name text)
RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT E'BEGIN:VCALENDAR\r\n'
           || E'PRODID:-//darkroom//bookings//EN\r\n'
           || E'VERSION:2.0\r\n'
           || E'CALSCALE:GREGORIAN\r\n'
           || coalesce('METHOD:' || p_method || E'\r\n', '')
           || CASE WHEN p_name IS NOT NULL
                   THEN ics_fold('X-WR-CALNAME:' || ics_text(p_name))
                   ELSE '' END
           || coalesce(p_events, '')
           || E'END:VCALENDAR\r\n'
$$;


-- The invite of one booking: p_method 'REQUEST' (confirmed, rescheduled,
-- a reminder) or 'CANCEL'.  NULL for an unknown booking.
CREATE OR REPLACE FUNCTION booking_ics(p_booking bigint, p_method text)
RETURNS text LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_event  text;
    v_zone   text;
BEGIN
    IF p_method NOT IN ('REQUEST', 'CANCEL') THEN
        RAISE EXCEPTION 'booking_ics: method % is not REQUEST or CANCEL',
            p_method;
    END IF;
    v_event := booking_vevent(p_booking, p_method = 'CANCEL', now(), false);
    IF v_event IS NULL THEN
        RETURN NULL;
    END IF;
    SELECT ics_vtimezone(p.time_zone, b.starts_at, b.ends_at) INTO v_zone
      FROM bookings b JOIN photographers p ON p.id = b.photographer_id
     WHERE b.id = p_booking;
    RETURN ics_calendar(p_method, v_zone || v_event, NULL);
END $$;


-- A time as the client reads it: "Sunday 28 March 2027, 10:00".
CREATE OR REPLACE FUNCTION booking_local_text(p timestamptz, p_zone text)
RETURNS text LANGUAGE sql STABLE AS $$
    SELECT to_char(p AT TIME ZONE p_zone, 'FMDay FMDD FMMonth YYYY, HH24:MI')
$$;


-- The receipt a booking's payment email carries (booking_confirmed: the
-- deposit order; booking_balance_paid: the balance order its job names):
-- the order's ref, its invoice number (order_invoice, taken when it was
-- paid), the amount paid and the day.  NULL for an order not paid.  The
-- shop sends no receipt of its own for these orders (order_receipt_email).
CREATE OR REPLACE FUNCTION booking_receipt_json(p_order bigint)
RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('order_ref', o.ref,
               'invoice_number', o.invoice_number,
               'amount_display', email_money(o.paid_amount,
                                     coalesce(o.paid_currency, o.currency)),
               'paid_at', to_char(o.paid_at AT TIME ZONE 'UTC',
                                  'FMDD Mon YYYY'))
      FROM orders o
     WHERE o.id = p_order AND o.paid_amount IS NOT NULL;
$$;


-- What a booking email's template sees ({"booking": ...}) and its invite
-- ({"attachments": [...]}): METHOD:CANCEL for booking_cancelled, REQUEST
-- otherwise.  Times in the client's time zone.  NULL for an unknown
-- booking, or a reminder of one no longer confirmed.
CREATE OR REPLACE FUNCTION booking_email_context(p_template text,
    p_payload jsonb)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_b       bookings%ROWTYPE;
    v_t       session_types%ROWTYPE;
    v_p       photographers%ROWTYPE;
    v_method  text := CASE WHEN p_template = 'booking_cancelled'
                           THEN 'CANCEL' ELSE 'REQUEST' END;
    v_zone    text;
BEGIN
    IF jsonb_typeof(p_payload->'booking_id') <> 'number' THEN
        RETURN NULL;
    END IF;
    SELECT * INTO v_b FROM bookings
     WHERE id = (p_payload->>'booking_id')::bigint;
    -- a reminder of a booking cancelled since it was queued is not sent,
    -- nor a balance link once nothing is due (bookings_balance.sql)
    IF NOT FOUND OR p_template IN ('booking_reminder', 'booking_balance_due')
                    AND v_b.state <> 'confirmed'
       OR p_template = 'booking_balance_due'
          AND bookings_balance_due(v_b) <= 0 THEN
        RETURN NULL;
    END IF;
    SELECT * INTO v_t FROM session_types WHERE id = v_b.session_type_id;
    SELECT * INTO v_p FROM photographers WHERE id = v_b.photographer_id;
    v_zone := v_b.client_time_zone;

    RETURN jsonb_build_object(
        'booking', jsonb_build_object(
            'id', v_b.id, 'ref', v_b.ref, 'state', v_b.state,
            'manage_token', v_b.manage_token,
            'sequence', v_b.sequence,
            'client_name', v_b.client_name,
            'client_email', v_b.client_email,
            'type', v_t.name,
            'photographer', v_p.name,
            'photographer_email', v_p.email,
            'location', nullif(v_t.location, ''),
            'online', v_t.online,
            'time_zone', v_zone,
            'start', booking_local_text(v_b.starts_at, v_zone),
            'end', to_char(v_b.ends_at AT TIME ZONE v_zone, 'HH24:MI'),
            'start_utc', ics_utc(v_b.starts_at),
            'deposit_display', email_money(v_b.deposit_paid, v_b.currency),
            'balance_display', email_money(bookings_balance_due(v_b),
                                           v_b.currency),
            'balance_paid_display', email_money(v_b.balance_paid
                - v_b.balance_refunded, v_b.currency),
            'amount_display', email_money((p_payload->>'amount')::bigint,
                                          v_b.currency),
            'price_display', email_money(v_b.price, v_b.currency),
            -- a cancel's refund, queued with its email, or one made
            'refunded_display', CASE
                WHEN jsonb_typeof(p_payload->'refund') = 'number'
                     AND (p_payload->>'refund')::bigint > 0 THEN
                    email_money((p_payload->>'refund')::bigint, v_b.currency)
                WHEN v_b.deposit_refunded > 0 THEN
                    email_money(v_b.deposit_refunded, v_b.currency) END,
            'cancel_reason', nullif(v_b.cancel_reason, ''),
            'receipt', booking_receipt_json(CASE p_template
                WHEN 'booking_confirmed' THEN v_b.deposit_order_id
                WHEN 'booking_balance_paid' THEN
                    CASE WHEN jsonb_typeof(p_payload->'balance_order')
                              = 'number'
                         THEN (p_payload->>'balance_order')::bigint END
                END)),
        'attachments', CASE WHEN p_template LIKE 'booking_balance_%'
                            THEN '[]'::jsonb ELSE jsonb_build_array(
            jsonb_build_object(
            'filename', 'invite.ics',
            'content_type', 'text/calendar; method=' || v_method
                            || '; charset=UTF-8',
            'content', booking_ics(v_b.id, v_method))) END);
END $$;


-- The private feed (darkroom_bookings_feed): the SHA-256 (hex) of the
-- photographer's feed secret, NULL for none (or no such photographer).
-- The module compares it with the hash of the key it was given, in
-- constant time, before it asks for the feed.
CREATE OR REPLACE FUNCTION booking_feed_hash(p_photographer text)
RETURNS text LANGUAGE sql STABLE AS $$
    SELECT feed_hash FROM photographers WHERE id = p_photographer
$$;


-- The feed itself: the confirmed bookings ending 30 days ago or later,
-- and those cancelled in the last 30 days (STATUS:CANCELLED, so a
-- subscribed calendar drops them).  DTSTAMP is the booking's last change:
-- fetching it again gives the same text.
CREATE OR REPLACE FUNCTION booking_feed_ics(p_photographer text)
RETURNS text LANGUAGE sql STABLE AS $$
    SELECT ics_calendar('PUBLISH',
               ics_vtimezone(p.time_zone, e.first, e.last) || e.events,
               p.name || ' bookings')
      FROM photographers p,
           LATERAL (SELECT string_agg(booking_vevent(b.id, false,
                                                     b.updated_at, true), ''
                                      ORDER BY b.starts_at, b.id) AS events,
                           min(b.starts_at) AS first, max(b.ends_at) AS last
                      FROM bookings b
                     WHERE b.photographer_id = p.id
                       AND b.ends_at >= now() - interval '30 days'
                       AND (b.state = 'confirmed'
                            OR b.state = 'cancelled'
                               AND b.cancelled_at
                                   >= now() - interval '30 days')) e
     WHERE p.id = p_photographer
$$;


-- A new feed secret for a photographer: returned once (the URL's key),
-- only its SHA-256 kept; the old URL stops working.  NULL for no such
-- photographer.
CREATE OR REPLACE FUNCTION booking_feed_rotate(p_photographer text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_secret  text := replace(gen_random_uuid()::text
                              || gen_random_uuid()::text, '-', '');
BEGIN
    UPDATE photographers
       SET feed_hash = encode(sha256(convert_to(v_secret, 'UTF8')), 'hex'),
           updated_at = now()
     WHERE id = p_photographer;
    RETURN CASE WHEN FOUND THEN v_secret END;
END $$;


-- The feed turned off: no key opens it.
CREATE OR REPLACE FUNCTION booking_feed_revoke(p_photographer text)
RETURNS boolean LANGUAGE sql AS $$
    UPDATE photographers SET feed_hash = NULL, updated_at = now()
     WHERE id = p_photographer
    RETURNING true
$$;


-- The reminders due (darkroom_mail_booking_reminders; the recurring job
-- "booking_reminders" calls this every 10 minutes): for each confirmed
-- booking yet to start and each offset (seconds before its start) whose
-- moment has come, once per booking, SEQUENCE and offset
-- (booking_reminders).  Of the offsets due at once only the nearest to the
-- start sends a booking_reminder email; an offset whose moment passed
-- before the booking's last change (booked or moved inside it) is recorded
-- and sends nothing.  Never for a booking not confirmed.  Returns the
-- emails queued.
CREATE OR REPLACE FUNCTION booking_reminders_enqueue(p_seconds integer[])
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    v_due     record;
    v_job     bigint;
    v_count   integer := 0;
BEGIN
    FOR v_due IN
        SELECT b.id, b.sequence, b.client_email,
               make_interval(secs => s) AS before,
               b.starts_at - make_interval(secs => s)
                   < greatest(b.confirmed_at, b.updated_at) AS late,
               row_number() OVER (PARTITION BY b.id ORDER BY s) AS nearest
          FROM bookings b, unnest(p_seconds) s
         WHERE b.state = 'confirmed'
           AND b.starts_at > now()
           AND b.starts_at - make_interval(secs => s) <= now()
           AND NOT EXISTS (SELECT 1 FROM booking_reminders r
                            WHERE r.booking_id = b.id
                              AND r.sequence = b.sequence
                              AND r.before = make_interval(secs => s))
         ORDER BY b.id, s
    LOOP
        v_job := NULL;
        IF v_due.nearest = 1 AND NOT v_due.late THEN
            INSERT INTO jobs (kind, payload, dedupe_key)
            VALUES ('email',
                    jsonb_build_object('template', 'booking_reminder',
                                       'booking_id', v_due.id,
                                       'to', v_due.client_email),
                    'booking_reminder:' || v_due.id || ':'
                    || v_due.sequence || ':'
                    || extract(epoch FROM v_due.before)::bigint)
            ON CONFLICT (dedupe_key) DO NOTHING
            RETURNING id INTO v_job;
            IF v_job IS NOT NULL THEN
                v_count := v_count + 1;
            END IF;
        END IF;
        INSERT INTO booking_reminders (booking_id, sequence, before, job_id)
        VALUES (v_due.id, v_due.sequence, v_due.before, v_job)
        ON CONFLICT DO NOTHING;
    END LOOP;
    RETURN v_count;
END $$;


-- The client's changes (POST <ref>/cancel, POST <ref>/reschedule): the
-- booking of this ref and manage token, locked, or 404; only a confirmed
-- booking yet to start changes (409 otherwise).
CREATE OR REPLACE FUNCTION booking_change_target(p_ref text, p_body jsonb)
RETURNS bookings LANGUAGE plpgsql AS $$
DECLARE
    v_b  bookings;
BEGIN
    -- as bookings_book: one booking of the photographer at a time, the
    -- photographer locked first, then the booking
    PERFORM 1 FROM photographers p
      JOIN bookings b ON b.photographer_id = p.id
     WHERE b.ref = p_ref
       FOR NO KEY UPDATE OF p;
    SELECT * INTO v_b FROM bookings
     WHERE ref = p_ref AND p_body->>'token' ~ '^[0-9a-f]{32}$'
       AND manage_token = p_body->>'token'
       FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM darkroom_refuse(404, 'not_found',
            'There is no such booking.');
    END IF;
    IF v_b.state <> 'confirmed' THEN
        PERFORM darkroom_refuse(409, 'not_confirmed',
            'Only a confirmed booking can be changed.');
    END IF;
    IF v_b.starts_at <= now() THEN
        PERFORM darkroom_refuse(409, 'started',
            'This session has started: it cannot be changed.');
    END IF;
    RETURN v_b;
END $$;


CREATE OR REPLACE FUNCTION booking_change_body(p_body text) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    v  jsonb;
BEGIN
    BEGIN
        v := p_body::jsonb;
    EXCEPTION WHEN others THEN
        v := NULL;
    END;
    IF jsonb_typeof(v) IS DISTINCT FROM 'object' THEN
        PERFORM darkroom_refuse(400, 'bad_json',
            'The body is a JSON object.');
    END IF;
    RETURN v;
END $$;


-- POST <ref>/cancel {"token", "reason"}: cancelled (SEQUENCE raised), the
-- booking_cancelled email with its METHOD:CANCEL invite, and the deposit
-- refunded (a stripe_refund job) when cancelled at least the type's
-- refund_hours before the start; one transaction.
CREATE OR REPLACE FUNCTION booking_cancel(p_ref text, p_body text,
    p_cause text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_p       jsonb := booking_change_body(p_body);
    v_b       bookings := booking_change_target(p_ref, v_p);
    v_fx      jsonb;
BEGIN
    IF v_p ? 'reason' AND (jsonb_typeof(v_p->'reason') <> 'string'
                           OR length(v_p->>'reason') > 1000)
    THEN
        PERFORM darkroom_refuse(400, 'bad_reason',
            'reason is text, at most 1000 characters.');
    END IF;

    UPDATE bookings
       SET state = 'cancelled', sequence = sequence + 1,
           cancelled_at = now(), cancelled_by = 'client',
           cancel_reason = nullif(btrim(v_p->>'reason'), ''),
           updated_at = now()
     WHERE id = v_b.id
    RETURNING * INTO v_b;

    v_fx := booking_cancel_effects(v_b);

    PERFORM bookings_event(v_b.id, 'confirmed', 'cancelled', p_cause,
        jsonb_build_object('reason', v_b.cancel_reason) || v_fx);

    RETURN jsonb_build_object('booking', bookings_client_json(v_b),
        'refund', CASE WHEN (v_fx->>'amount')::bigint > 0
                       THEN jsonb_build_object('amount', v_fx->'amount',
                                               'currency', v_b.currency)
                  END)::text;
END $$;


-- What a cancel does besides the state, by the client or the owner, in its
-- transaction: the deposit paid and not yet refunded is refunded (a
-- stripe_refund job with its idempotency key) when the cancel comes at
-- least the type's refund_hours before the start, and the
-- booking_cancelled email goes out with the CANCEL invite.  Returns the
-- event's detail: {"refund": "queued" | null, "amount", "job",
-- "idempotency_key"}.
CREATE OR REPLACE FUNCTION booking_cancel_effects(p_b bookings)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v_hours   integer;
    v_refund  bigint := 0;
    v_key     text;
    v_job     bigint;
    v_bal     jsonb;
BEGIN
    SELECT refund_hours INTO v_hours FROM session_types
     WHERE id = p_b.session_type_id;

    IF now() <= p_b.starts_at - v_hours * interval '1 hour'
       AND p_b.deposit_order_id IS NOT NULL
    THEN
        v_refund := greatest(p_b.deposit_paid - p_b.deposit_refunded, 0);
    END IF;

    IF v_refund > 0 THEN
        v_key := 'darkroom-refund-booking-' || p_b.id || '-cancel';
        v_job := bookings_refund_job(p_b.deposit_order_id, v_refund,
                                     'booking_cancelled', v_key);
    END IF;

    -- the balance paid goes back whatever the policy (bookings_balance.sql)
    v_bal := bookings_balance_cancel(p_b);

    INSERT INTO jobs (kind, payload, dedupe_key)
    VALUES ('email', jsonb_build_object('template', 'booking_cancelled',
                'booking_id', p_b.id, 'to', p_b.client_email,
                'refund', v_refund + (v_bal->>'amount')::bigint),
            'booking_cancelled:' || p_b.id || ':' || p_b.sequence)
    ON CONFLICT (dedupe_key) DO NOTHING;

    RETURN jsonb_build_object('refund', CASE WHEN v_refund > 0
                                  OR (v_bal->>'amount')::bigint > 0
                                             THEN 'queued' END,
                              'amount', v_refund
                                        + (v_bal->>'amount')::bigint,
                              'job', v_job, 'idempotency_key', v_key,
                              'balance', v_bal);
END $$;


-- A start as the slots give it ("YYYY-MM-DDTHH:MM[:SS]" with Z or an
-- offset: an instant), or a 400 with p_code.
CREATE OR REPLACE FUNCTION booking_start_of(p jsonb, p_code text)
RETURNS timestamptz LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF jsonb_typeof(p->'start') IS DISTINCT FROM 'string'
       OR p->>'start' !~ ('^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?'
                          '(Z|[+-]\d{2}:\d{2})$')
    THEN
        PERFORM darkroom_refuse(400, p_code, 'Give start as '
            'YYYY-MM-DDTHH:MM:SS with its offset, as the slots give it.');
    END IF;
    BEGIN
        RETURN (p->>'start')::timestamptz;
    EXCEPTION WHEN others THEN
        PERFORM darkroom_refuse(400, p_code, 'start is not a time.');
    END;
    RETURN NULL;
END $$;


-- Whether p_start is a slot of a type on its local day p_day (the slot
-- rules of bookings_slots_of, with its p_bookings, p_except, p_policy).
CREATE OR REPLACE FUNCTION booking_slot_at(p_type text, p_start timestamptz,
    p_day date, p_bookings boolean, p_except bigint, p_policy boolean)
RETURNS boolean LANGUAGE sql STABLE SET jit = off AS $$
    SELECT EXISTS (SELECT 1 FROM bookings_slots_of(p_type, p_day, p_day,
                                     now(), p_bookings, p_except, p_policy) s
                    WHERE s.starts_at = p_start)
$$;


-- A confirmed booking (locked, its photographer locked first) moved to
-- p_start, by the client (p_owner false) or the owner, in the caller's
-- transaction; the slot rules (bookings_slots_of) decide, the booking
-- itself left out:
--   - the start is a slot of the type's availability (weekly hours,
--     exceptions, the slot step; for the client also min_notice and the
--     horizon), else 400 not_available; p_force (the owner's only) skips
--     this and the day's cap;
--   - the time is free: the exclusion constraint says so (409
--     slot_taken), whatever p_force;
--   - the day has room (max_per_day, the booking not counted against
--     itself), else 409 day_full: checked once the booking is at its new
--     time, where the slot rules' only reason left to refuse it is the cap.
-- SEQUENCE raised, a booking_events row (p_detail added to its detail).
CREATE OR REPLACE FUNCTION booking_move(p_b bookings, p_start timestamptz,
    p_cause text, p_owner boolean, p_force boolean, p_detail jsonb)
RETURNS bookings LANGUAGE plpgsql AS $$
DECLARE
    st      session_types;
    v_tz    text;
    v_day   date;
    v_busy  tstzrange;
    v_b     bookings;
BEGIN
    SELECT * INTO st FROM session_types WHERE id = p_b.session_type_id;
    SELECT time_zone INTO v_tz FROM photographers
     WHERE id = p_b.photographer_id;
    v_day := (p_start AT TIME ZONE v_tz)::date;

    IF p_start = p_b.starts_at THEN
        PERFORM darkroom_refuse(400, 'same_time',
            'The booking is already at this time.');
    END IF;
    IF p_start <= now() THEN
        PERFORM darkroom_refuse(400, 'past_slot', 'That time has passed.');
    END IF;
    IF NOT p_force AND NOT booking_slot_at(st.id, p_start, v_day, false,
                                           p_b.id, NOT p_owner)
    THEN
        PERFORM darkroom_refuse(400, 'not_available',
            'This time is not one of the slots offered'
            || CASE WHEN p_owner THEN ' ("force" allows it).' ELSE '.' END);
    END IF;

    v_busy := tstzrange(p_start - st.buffer_before,
                        p_start + st.duration + st.buffer_after);
    PERFORM bookings_expire_in_way(p_b.photographer_id, v_busy, p_cause);
    BEGIN
        UPDATE bookings
           SET starts_at = p_start, ends_at = p_start + st.duration,
               busy = v_busy, sequence = sequence + 1, updated_at = now()
         WHERE id = p_b.id
        RETURNING * INTO v_b;
    EXCEPTION WHEN exclusion_violation THEN
        PERFORM darkroom_refuse(409, 'slot_taken',
            'This time is taken by another booking.');
    END;

    IF NOT p_force AND NOT booking_slot_at(st.id, p_start, v_day, true,
                                           p_b.id, NOT p_owner)
    THEN
        PERFORM darkroom_refuse(409, 'day_full',
            'That day is fully booked'
            || CASE WHEN p_owner THEN ' ("force" allows it).' ELSE '.' END);
    END IF;

    PERFORM bookings_event(v_b.id, 'confirmed', 'confirmed', p_cause,
        jsonb_build_object('rescheduled_from', bookings_utc(p_b.starts_at),
                           'to', bookings_utc(p_start),
                           'sequence', v_b.sequence)
        || coalesce(p_detail, '{}'));
    RETURN v_b;
END $$;


-- The booking_rescheduled email with the new invite (REQUEST, the raised
-- SEQUENCE), once per SEQUENCE.
CREATE OR REPLACE FUNCTION booking_rescheduled_email(p_b bookings)
RETURNS void LANGUAGE sql AS $$
    INSERT INTO jobs (kind, payload, dedupe_key)
    VALUES ('email', jsonb_build_object('template', 'booking_rescheduled',
                'booking_id', p_b.id, 'to', p_b.client_email),
            'booking_rescheduled:' || p_b.id || ':' || p_b.sequence)
    ON CONFLICT (dedupe_key) DO NOTHING;
$$;


-- POST <ref>/reschedule {"token", "start"}: moved to another free slot of
-- the type's availability (booking_move: 400 not_available, 409
-- slot_taken, 409 day_full) up to the type's reschedule_hours before the
-- current start (409 too_late); SEQUENCE raised and the
-- booking_rescheduled email with the new invite.
CREATE OR REPLACE FUNCTION booking_reschedule(p_ref text, p_body text,
    p_cause text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_p      jsonb := booking_change_body(p_body);
    v_b      bookings := booking_change_target(p_ref, v_p);
    v_hours  integer;
BEGIN
    SELECT reschedule_hours INTO v_hours FROM session_types
     WHERE id = v_b.session_type_id;
    IF now() > v_b.starts_at - v_hours * interval '1 hour' THEN
        PERFORM darkroom_refuse(409, 'too_late', format(
            'A session can be moved up to %s hours before it starts.',
            v_hours));
    END IF;

    v_b := booking_move(v_b, booking_start_of(v_p, 'bad_time'), p_cause,
                        false, false, NULL);
    PERFORM booking_rescheduled_email(v_b);

    RETURN jsonb_build_object('booking', bookings_client_json(v_b))::text;
END $$;
