-- darkroom: bookings (issue 16), the public side: the session types on
-- offer, the free slots of a type, a hold with its deposit order, the
-- client's view of a booking, and what a paid deposit does.
--
-- Slots are computed here from the photographer's weekly hours and dated
-- exceptions, wall-clock in the photographer's time zone: each day's
-- periods are turned into instants with AT TIME ZONE, so a 09:00 start is
-- 09:00 local on both sides of a DST change.  A slot is free when no live
-- booking (held and not past held_until, or confirmed) overlaps it with
-- the type's buffers, it is at least min_notice ahead and at most horizon
-- ahead, and the day has fewer than max_per_day live bookings.
--
-- Tables: photographers, session_types, booking_hours, booking_exceptions,
-- bookings, booking_events (sql/030_bookings.sql); orders, order_items and
-- jobs through the shop's way of writing them.


-- the deposit of a session type in its currency's minor units: a fixed
-- amount, or a percentage of the price rounded half up, at least 1

CREATE OR REPLACE FUNCTION bookings_deposit(p_type session_types)
RETURNS bigint LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE p_type.deposit_kind
           WHEN 'fixed' THEN p_type.deposit_amount
           ELSE greatest(1, round(p_type.price * p_type.deposit_percent
                                  / 100)::bigint) END;
$$;


-- an instant as ISO 8601 in a time zone: 2027-03-28T10:00:00+01:00

CREATE OR REPLACE FUNCTION bookings_iso(p_at timestamptz, p_tz text)
RETURNS text LANGUAGE sql STABLE AS $$
    SELECT to_char(p_at AT TIME ZONE p_tz, 'YYYY-MM-DD"T"HH24:MI:SS')
           || CASE WHEN o < interval '0' THEN '-' ELSE '+' END
           || to_char(abs(extract(epoch FROM o))::int / 3600, 'FM00')
           || ':'
           || to_char(abs(extract(epoch FROM o))::int % 3600 / 60, 'FM00')
      FROM (SELECT (p_at AT TIME ZONE p_tz) - (p_at AT TIME ZONE 'UTC')
                   AS o) x;
$$;

CREATE OR REPLACE FUNCTION bookings_utc(p_at timestamptz)
RETURNS text LANGUAGE sql STABLE AS $$
    SELECT to_char(p_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"');
$$;


CREATE OR REPLACE FUNCTION bookings_valid_tz(p_tz text)
RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT p_tz IS NOT NULL AND length(p_tz) BETWEEN 1 AND 64
           AND p_tz ~ '^[A-Za-z][A-Za-z0-9_+/-]*$'
           AND EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = p_tz);
$$;


-- a live booking: confirmed, or held and not past its time

CREATE OR REPLACE FUNCTION bookings_live(p_b bookings, p_now timestamptz)
RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT p_b.state = 'confirmed'
           OR p_b.state = 'held' AND p_b.held_until > p_now;
$$;


-- the open periods of a photographer on a local day, as instants: the
-- 'open' exceptions of the day if any, else the weekly hours; none if a
-- whole-day 'closed' exception is there

CREATE OR REPLACE FUNCTION bookings_periods(p_photographer text, p_day date)
RETURNS TABLE (local_start timestamp, local_end timestamp)
LANGUAGE sql STABLE AS $$
    SELECT p_day + e.starts, p_day + e.ends
      FROM booking_exceptions e
     WHERE e.photographer_id = p_photographer AND e.day = p_day
       AND e.kind = 'open'
       AND NOT EXISTS (SELECT 1 FROM booking_exceptions c
                        WHERE c.photographer_id = p_photographer
                          AND c.day = p_day AND c.kind = 'closed'
                          AND c.starts IS NULL)
    UNION ALL
    SELECT p_day + h.starts, p_day + h.ends
      FROM booking_hours h
     WHERE h.photographer_id = p_photographer
       AND h.weekday = extract(isodow FROM p_day)
       AND NOT EXISTS (SELECT 1 FROM booking_exceptions e
                        WHERE e.photographer_id = p_photographer
                          AND e.day = p_day
                          AND (e.kind = 'open'
                               OR e.kind = 'closed' AND e.starts IS NULL));
$$;


-- the free slots of a type whose start falls on a local day (in the
-- photographer's zone) between p_from and p_to

CREATE OR REPLACE FUNCTION bookings_free_slots(p_type text, p_from date,
    p_to date, p_now timestamptz)
RETURNS TABLE (starts_at timestamptz, ends_at timestamptz)
LANGUAGE sql STABLE AS $$
    WITH t AS (
        SELECT st.*, p.time_zone, p.min_notice, p.horizon, p.max_per_day
          FROM session_types st JOIN photographers p
            ON p.id = st.photographer_id
         WHERE st.id = p_type
    ), days AS (
        SELECT d::date AS day
          FROM generate_series(p_from, p_to, interval '1 day') d
    ), cand AS (
        SELECT d.day, s AS local_start
          FROM t, days d, bookings_periods(t.photographer_id, d.day) pr,
               generate_series(pr.local_start, pr.local_end - t.duration,
                               t.slot_step) s
    ), inst AS (
        SELECT c.day, c.local_start AT TIME ZONE t.time_zone AS s
          FROM cand c, t
    )
    SELECT i.s, i.s + t.duration
      FROM inst i, t
     WHERE i.s >= p_now + t.min_notice
       AND i.s <= p_now + t.horizon
       AND NOT EXISTS (
           SELECT 1 FROM booking_exceptions c
            WHERE c.photographer_id = t.photographer_id
              AND c.day = i.day AND c.kind = 'closed'
              AND c.starts IS NOT NULL
              AND tstzrange((i.day + c.starts) AT TIME ZONE t.time_zone,
                            (i.day + c.ends) AT TIME ZONE t.time_zone)
                  && tstzrange(i.s, i.s + t.duration))
       AND NOT EXISTS (
           SELECT 1 FROM bookings b
            WHERE b.photographer_id = t.photographer_id
              AND b.state IN ('held', 'confirmed')
              AND bookings_live(b, p_now)
              AND b.busy && tstzrange(i.s - t.buffer_before,
                                      i.s + t.duration + t.buffer_after))
       AND (t.max_per_day IS NULL OR (
           SELECT count(*) FROM bookings b
            WHERE b.photographer_id = t.photographer_id
              AND b.state IN ('held', 'confirmed')
              AND bookings_live(b, p_now)
              AND (b.starts_at AT TIME ZONE t.time_zone)::date = i.day)
           < t.max_per_day)
     ORDER BY i.s;
$$;


-- GET types

CREATE OR REPLACE FUNCTION bookings_types_json() RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT json_build_object('types', coalesce(json_agg(json_build_object(
               'id', st.id, 'name', st.name,
               'description', st.description,
               'duration_minutes',
                   (extract(epoch FROM st.duration) / 60)::int,
               'currency', st.currency, 'price', st.price,
               'deposit', bookings_deposit(st),
               'location', st.location, 'online', st.online,
               'questions', st.questions,
               'photographer', json_build_object('id', p.id,
                   'name', p.name, 'time_zone', p.time_zone))
               ORDER BY st.position, st.id), '[]'))::text
      FROM session_types st JOIN photographers p
        ON p.id = st.photographer_id
     WHERE st.active;
$$;


-- a date of the API: YYYY-MM-DD, a real day

CREATE OR REPLACE FUNCTION bookings_date(p_text text, p_what text)
RETURNS date LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF p_text IS NULL OR p_text !~ '^\d{4}-\d{2}-\d{2}$' THEN
        PERFORM darkroom_refuse(400, 'bad_date',
            format('Give %s as YYYY-MM-DD.', p_what));
    END IF;
    BEGIN
        RETURN p_text::date;
    EXCEPTION WHEN others THEN
        PERFORM darkroom_refuse(400, 'bad_date',
            format('%s is not a date.', p_what));
    END;
    RETURN NULL;
END $$;


-- GET slots?type=&from=&to=&tz=

CREATE OR REPLACE FUNCTION bookings_slots_json(p_type text, p_from text,
    p_to text, p_tz text) RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_type  session_types;
    v_pzone text;
    v_from  date;
    v_to    date;
    v_tz    text;
BEGIN
    SELECT st.* INTO v_type FROM session_types st
     WHERE st.id = p_type AND st.active;
    IF NOT FOUND THEN
        PERFORM darkroom_refuse(400, 'unknown_type',
            'There is no such session type.');
    END IF;
    SELECT time_zone INTO v_pzone FROM photographers
     WHERE id = v_type.photographer_id;

    v_from := bookings_date(p_from, 'from');
    v_to := bookings_date(p_to, 'to');
    IF v_to < v_from OR v_to - v_from > 31 THEN
        PERFORM darkroom_refuse(400, 'bad_range',
            'to is from to at most 31 days after from.');
    END IF;

    v_tz := coalesce(nullif(p_tz, ''), v_pzone);
    IF NOT bookings_valid_tz(v_tz) THEN
        PERFORM darkroom_refuse(400, 'bad_time_zone',
            'tz is an IANA time zone name, such as Europe/London.');
    END IF;

    -- the photographer's days around the asked ones, kept when the start
    -- falls on an asked day in tz
    RETURN json_build_object('type', v_type.id, 'time_zone', v_tz,
        'slots', coalesce((
            SELECT json_agg(json_build_object(
                       'start', bookings_iso(s.starts_at, v_tz),
                       'end', bookings_iso(s.ends_at, v_tz),
                       'start_utc', bookings_utc(s.starts_at))
                       ORDER BY s.starts_at)
              FROM bookings_free_slots(v_type.id, v_from - 1, v_to + 1,
                                       now()) s
             WHERE (s.starts_at AT TIME ZONE v_tz)::date
                   BETWEEN v_from AND v_to), '[]'))::text;
END $$;
