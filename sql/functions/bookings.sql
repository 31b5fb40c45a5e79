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
-- The slot queries plan with generate_series and set-returning functions,
-- whose guessed costs would have PostgreSQL JIT-compile them (a second
-- or more, for a few milliseconds of work): they run with jit off.
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
RETURNS boolean LANGUAGE plpgsql STABLE AS $$
BEGIN
    -- a name of the tz database (Area/Location, or UTC), never a POSIX
    -- rule nor an abbreviation; looked up by using it (pg_timezone_names
    -- reads every zone file)
    IF p_tz IS NULL OR length(p_tz) > 64
       OR p_tz !~ '^([A-Za-z][A-Za-z_-]*(/[A-Za-z0-9][A-Za-z0-9_+-]*)+|UTC)$'
    THEN
        RETURN false;
    END IF;
    PERFORM now() AT TIME ZONE p_tz;
    RETURN true;
EXCEPTION WHEN others THEN
    RETURN false;
END $$;


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
-- photographer's zone) between p_from and p_to; p_bookings false: as if
-- there were no bookings (the availability alone); p_except: a booking
-- left out (one being moved does not count against itself); p_policy
-- false: min_notice and horizon not applied (the owner's move)

CREATE OR REPLACE FUNCTION bookings_slots_of(p_type text, p_from date,
    p_to date, p_now timestamptz, p_bookings boolean, p_except bigint,
    p_policy boolean)
RETURNS TABLE (starts_at timestamptz, ends_at timestamptz)
LANGUAGE sql STABLE SET jit = off AS $$
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
     WHERE i.s >= p_now + CASE WHEN p_policy THEN t.min_notice
                                ELSE interval '0' END
       AND (NOT p_policy OR i.s <= p_now + t.horizon)
       AND NOT EXISTS (
           SELECT 1 FROM booking_exceptions c
            WHERE c.photographer_id = t.photographer_id
              AND c.day = i.day AND c.kind = 'closed'
              AND c.starts IS NOT NULL
              AND tstzrange((i.day + c.starts) AT TIME ZONE t.time_zone,
                            (i.day + c.ends) AT TIME ZONE t.time_zone)
                  && tstzrange(i.s, i.s + t.duration))
       AND (NOT p_bookings OR NOT EXISTS (
           SELECT 1 FROM bookings b
            WHERE b.photographer_id = t.photographer_id
              AND b.state IN ('held', 'confirmed')
              AND bookings_live(b, p_now)
              AND b.id IS DISTINCT FROM p_except
              AND b.busy && tstzrange(i.s - t.buffer_before,
                                      i.s + t.duration + t.buffer_after)))
       AND (NOT p_bookings OR t.max_per_day IS NULL OR (
           SELECT count(*) FROM bookings b
            WHERE b.photographer_id = t.photographer_id
              AND b.state IN ('held', 'confirmed')
              AND bookings_live(b, p_now)
              AND b.id IS DISTINCT FROM p_except
              AND (b.starts_at AT TIME ZONE t.time_zone)::date = i.day)
           < t.max_per_day)
     ORDER BY i.s;
$$;

CREATE OR REPLACE FUNCTION bookings_slots_of(p_type text, p_from date,
    p_to date, p_now timestamptz, p_bookings boolean)
RETURNS TABLE (starts_at timestamptz, ends_at timestamptz)
LANGUAGE sql STABLE SET jit = off AS $$
    SELECT * FROM bookings_slots_of(p_type, p_from, p_to, p_now, p_bookings,
                                    NULL, true);
$$;

CREATE OR REPLACE FUNCTION bookings_free_slots(p_type text, p_from date,
    p_to date, p_now timestamptz)
RETURNS TABLE (starts_at timestamptz, ends_at timestamptz)
LANGUAGE sql STABLE SET jit = off AS $$
    SELECT * FROM bookings_slots_of(p_type, p_from, p_to, p_now, true);
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
LANGUAGE plpgsql STABLE SET jit = off AS $$
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


-- a booking as its client sees it: times in the client's zone

CREATE OR REPLACE FUNCTION bookings_client_json(b bookings) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('ref', b.ref, 'state', b.state,
               'type', jsonb_build_object('id', st.id, 'name', st.name,
                   'location', st.location, 'online', st.online),
               'photographer', jsonb_build_object('id', p.id,
                   'name', p.name),
               'start', bookings_iso(b.starts_at, b.client_time_zone),
               'end', bookings_iso(b.ends_at, b.client_time_zone),
               'start_utc', bookings_utc(b.starts_at),
               'time_zone', b.client_time_zone,
               'held_until', CASE WHEN b.state = 'held' THEN
                   bookings_iso(b.held_until, b.client_time_zone) END,
               'name', b.client_name, 'email', b.client_email,
               'answers', b.answers,
               'currency', b.currency, 'price', b.price,
               'deposit', b.deposit,
               'paid', b.deposit_paid + b.balance_paid - b.deposit_refunded
                       - b.balance_refunded,
               'balance', bookings_balance_due(b),
               'deposit_paid', b.deposit_paid > 0,
               'deposit_amount_paid', b.deposit_paid,
               'balance_paid', b.balance_paid - b.balance_refunded,
               'refunded', b.deposit_refunded + b.balance_refunded,
               'refund_until', bookings_iso(b.starts_at
                   - st.refund_hours * interval '1 hour', b.client_time_zone),
               'reschedule_until', bookings_iso(b.starts_at
                   - st.reschedule_hours * interval '1 hour',
                   b.client_time_zone))
      FROM session_types st JOIN photographers p
        ON p.id = st.photographer_id
     WHERE st.id = b.session_type_id;
$$;


-- GET <ref>?token=: the booking, for the holder of its manage token

CREATE OR REPLACE FUNCTION bookings_show_json(p_ref text, p_token text)
RETURNS text LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_b bookings;
BEGIN
    SELECT * INTO v_b FROM bookings
     WHERE ref = p_ref AND p_token ~ '^[0-9a-f]{32}$'
       AND manage_token = p_token;
    IF NOT FOUND THEN
        PERFORM darkroom_refuse(404, 'not_found',
            'There is no such booking.');
    END IF;
    RETURN jsonb_build_object('booking', bookings_client_json(v_b))::text;
END $$;


-- a state change of a booking, with its cause

CREATE OR REPLACE FUNCTION bookings_event(p_booking bigint, p_from text,
    p_to text, p_cause text, p_detail jsonb DEFAULT '{}')
RETURNS void LANGUAGE sql AS $$
    INSERT INTO booking_events (booking_id, from_state, to_state, cause,
                                detail)
    VALUES (p_booking, p_from, p_to, p_cause, p_detail);
$$;


-- holds past their time that are in the way of busy: expired, so that
-- the exclusion constraint lets the new booking in

CREATE OR REPLACE FUNCTION bookings_expire_in_way(p_photographer text,
    p_busy tstzrange, p_cause text)
RETURNS void LANGUAGE sql AS $$
    WITH x AS (
        UPDATE bookings SET state = 'expired', updated_at = now()
         WHERE photographer_id = p_photographer AND state = 'held'
           AND held_until <= now() AND busy && p_busy
        RETURNING id)
    INSERT INTO booking_events (booking_id, from_state, to_state, cause)
    SELECT id, 'held', 'expired', p_cause FROM x;
$$;


-- the parts of POST book that are the client's: checked, or refused 400

CREATE OR REPLACE FUNCTION bookings_book_check(p jsonb, st session_types,
    OUT start_at timestamptz, OUT answers jsonb)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_start text := p->>'start';
    v_q     jsonb;
    v_a     jsonb := coalesce(p->'answers', '{}');
BEGIN
    IF jsonb_typeof(p->'start') IS DISTINCT FROM 'string'
       OR v_start !~ ('^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?'
                      '(Z|[+-]\d{2}:\d{2})$')
    THEN
        PERFORM darkroom_refuse(400, 'bad_time', 'Give start as '
            'YYYY-MM-DDTHH:MM:SS with its offset, as the slots give it.');
    END IF;
    BEGIN
        start_at := v_start::timestamptz;
    EXCEPTION WHEN others THEN
        PERFORM darkroom_refuse(400, 'bad_time', 'start is not a time.');
    END;

    IF jsonb_typeof(p->'name') IS DISTINCT FROM 'string'
       OR length(btrim(p->>'name')) NOT BETWEEN 1 AND 200
    THEN
        PERFORM darkroom_refuse(400, 'bad_name', 'Give your name.');
    END IF;
    IF jsonb_typeof(p->'email') IS DISTINCT FROM 'string'
       OR p->>'email' !~ '^[^@\s]+@[^@\s]+\.[^@\s]+$'
       OR length(p->>'email') > 254
    THEN
        PERFORM darkroom_refuse(400, 'bad_email',
            'Give an email address.');
    END IF;
    IF p ? 'time_zone' AND NOT bookings_valid_tz(p->>'time_zone') THEN
        PERFORM darkroom_refuse(400, 'bad_time_zone',
            'time_zone is an IANA time zone name.');
    END IF;

    IF jsonb_typeof(v_a) <> 'object' THEN
        PERFORM darkroom_refuse(400, 'bad_answers',
            'answers is an object of the questions'' ids.');
    END IF;
    answers := '{}';
    FOR v_q IN SELECT * FROM jsonb_array_elements(st.questions) LOOP
        IF jsonb_typeof(v_a->(v_q->>'id')) = 'string'
           AND length(btrim(v_a->>(v_q->>'id'))) BETWEEN 1 AND 2000
        THEN
            answers := answers || jsonb_build_object(v_q->>'id',
                                                     v_a->(v_q->>'id'));
        ELSIF coalesce((v_q->>'required')::boolean, false) THEN
            PERFORM darkroom_refuse(400, 'missing_answer',
                format('Answer "%s".', v_q->>'label'));
        END IF;
    END LOOP;
END $$;


-- POST book: the hold and its deposit order in one transaction, or a
-- refusal and nothing written.  p_token: the manage token (hex), p_hash:
-- the SHA-256 of the deposit order's status token, p_hold: seconds.
-- Answers {"booking", "order_id"}; the C side asks the shop for the
-- Checkout session of the order.

CREATE OR REPLACE FUNCTION bookings_book(p_body text, p_token text,
    p_hash text, p_hold int)
RETURNS text LANGUAGE plpgsql SET jit = off AS $$
DECLARE
    p        jsonb;
    st       session_types;
    ph       photographers;
    v_chk    record;
    v_id     bigint;
    v_order  bigint;
    v_ref    text;
    v_oref   text;
    v_end    timestamptz;
    v_busy   tstzrange;
    v_dep    bigint;
    v_b      bookings;
    v_exp    timestamptz;
BEGIN
    BEGIN
        p := p_body::jsonb;
    EXCEPTION WHEN others THEN
        PERFORM darkroom_refuse(400, 'bad_json', 'The body is JSON.');
    END;
    IF jsonb_typeof(p) IS DISTINCT FROM 'object' THEN
        PERFORM darkroom_refuse(400, 'bad_json',
            'The body is a JSON object.');
    END IF;

    SELECT * INTO st FROM session_types
     WHERE id = p->>'type' AND active;
    IF NOT FOUND OR jsonb_typeof(p->'type') <> 'string' THEN
        PERFORM darkroom_refuse(400, 'unknown_type',
            'There is no such session type.');
    END IF;

    v_chk := bookings_book_check(p, st);

    IF v_chk.start_at <= now() THEN
        PERFORM darkroom_refuse(400, 'past_slot',
            'That time has passed.');
    END IF;

    SELECT * INTO ph FROM photographers WHERE id = st.photographer_id;
    IF NOT EXISTS (
        SELECT 1 FROM bookings_slots_of(st.id,
            (v_chk.start_at AT TIME ZONE ph.time_zone)::date,
            (v_chk.start_at AT TIME ZONE ph.time_zone)::date, now(), false) s
         WHERE s.starts_at = v_chk.start_at)
    THEN
        PERFORM darkroom_refuse(400, 'not_available',
            'That time is not one of the slots offered.');
    END IF;

    v_end := v_chk.start_at + st.duration;
    v_busy := tstzrange(v_chk.start_at - st.buffer_before,
                        v_end + st.buffer_after);

    -- one booking of a photographer at a time: the others wait here, then
    -- see the committed booking and are refused at once.  Without it,
    -- inserts racing for one time wait on each other's uncommitted rows in
    -- the exclusion constraint's check, deadlock and time out.
    PERFORM 1 FROM photographers WHERE id = ph.id FOR NO KEY UPDATE;

    PERFORM bookings_expire_in_way(ph.id, v_busy, 'client');

    IF ph.max_per_day IS NOT NULL THEN
        IF (SELECT count(*) FROM bookings b
             WHERE b.photographer_id = ph.id
               AND b.state IN ('held', 'confirmed')
               AND bookings_live(b, now())
               AND (b.starts_at AT TIME ZONE ph.time_zone)::date
                   = (v_chk.start_at AT TIME ZONE ph.time_zone)::date)
           >= ph.max_per_day
        THEN
            PERFORM darkroom_refuse(409, 'slot_taken',
                'That day is fully booked.');
        END IF;
    END IF;

    v_dep := bookings_deposit(st);
    v_id := nextval(pg_get_serial_sequence('bookings', 'id'));
    v_ref := 'BK-' || lpad(v_id::text, 6, '0');

    BEGIN
        INSERT INTO bookings (id, ref, uid, manage_token, photographer_id,
            session_type_id, state, starts_at, ends_at, busy, held_until,
            client_name, client_email, client_time_zone, answers,
            currency, price, deposit)
        VALUES (v_id, v_ref, gen_random_uuid() || '@darkroom', p_token,
            ph.id, st.id, 'held', v_chk.start_at, v_end, v_busy,
            now() + p_hold * interval '1 second', btrim(p->>'name'),
            p->>'email', coalesce(p->>'time_zone', ph.time_zone),
            v_chk.answers, st.currency, st.price, v_dep)
        RETURNING * INTO v_b;
    EXCEPTION WHEN exclusion_violation THEN
        PERFORM darkroom_refuse(409, 'slot_taken',
            'That time has just been taken: pick another.');
    END;

    -- the deposit order, as the shop's checkout writes one
    v_order := nextval(pg_get_serial_sequence('orders', 'id'));
    v_oref := 'DR-' || lpad(v_order::text, 6, '0');
    v_exp := greatest(v_b.held_until, now() + interval '31 minutes');

    INSERT INTO orders (id, ref, status_token, email, currency, subtotal,
                        total, physical, expires_at)
    VALUES (v_order, v_oref, p_hash, v_b.client_email, st.currency, v_dep,
            v_dep, false, v_exp);
    INSERT INTO order_items (order_id, line, photo_id, product_id, title,
                             product_name, kind, quantity, unit_amount,
                             amount)
    VALUES (v_order, 1, v_ref, st.id,
            st.name || ', ' || to_char(v_chk.start_at AT TIME ZONE
                                       ph.time_zone, 'YYYY-MM-DD HH24:MI'),
            'Deposit', 'session', 1, v_dep, v_dep);
    INSERT INTO order_events (order_id, to_status, cause, detail)
    VALUES (v_order, 'pending_payment', 'booking',
            jsonb_build_object('booking', v_ref, 'total', v_dep,
                               'currency', st.currency));
    INSERT INTO jobs (kind, payload, run_at, dedupe_key)
    VALUES ('checkout_reconcile', jsonb_build_object('order_id', v_order),
            v_exp + interval '5 minutes', 'reconcile:' || v_order);

    UPDATE bookings SET deposit_order_id = v_order WHERE id = v_id
    RETURNING * INTO v_b;
    PERFORM bookings_event(v_id, NULL, 'held', 'client',
                           jsonb_build_object('order', v_oref));

    RETURN jsonb_build_object('order_id', v_order,
        'booking', jsonb_build_object('ref', v_ref, 'state', 'held',
            'start', bookings_iso(v_b.starts_at, v_b.client_time_zone),
            'end', bookings_iso(v_b.ends_at, v_b.client_time_zone),
            'held_until', bookings_iso(v_b.held_until,
                                       v_b.client_time_zone),
            'deposit', v_dep, 'currency', st.currency))::text;
END $$;


-- the deposit order of a booking is paid (order_mark_paid, in the
-- payment's transaction): a hold, or an expired hold whose time is still
-- free, is confirmed with its email; an expired hold whose time was
-- taken stays expired and its deposit goes back (a stripe_refund job)

-- A deposit going back: the stripe_refund job (the shop's kind) for the
-- order, its idempotency key also its dedupe key, so a replay queues
-- nothing more.  The job's id, NULL when it was queued before.
CREATE OR REPLACE FUNCTION bookings_refund_job(p_order bigint,
    p_amount bigint, p_reason text, p_key text)
RETURNS bigint LANGUAGE sql AS $$
    INSERT INTO jobs (kind, payload, dedupe_key)
    VALUES ('stripe_refund', jsonb_build_object('order_id', p_order,
                'amount', p_amount, 'reason', p_reason,
                'idempotency_key', p_key),
            'stripe_refund:' || p_key)
    ON CONFLICT (dedupe_key) DO NOTHING
    RETURNING id;
$$;


CREATE OR REPLACE FUNCTION bookings_order_paid(p_order bigint,
    p_amount bigint, p_cause text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_b    bookings;
    v_key  text;
    v_job  bigint;
BEGIN
    -- a balance order's payment (bookings_balance.sql)
    IF bookings_balance_paid(p_order, p_amount, p_cause) THEN
        RETURN;
    END IF;

    -- as bookings_book: one booking of the photographer at a time, the
    -- photographer locked first (then the booking), as there
    PERFORM 1 FROM photographers p
      JOIN bookings b ON b.photographer_id = p.id
     WHERE b.deposit_order_id = p_order
       FOR NO KEY UPDATE OF p;

    SELECT * INTO v_b FROM bookings WHERE deposit_order_id = p_order
       FOR UPDATE;
    IF NOT FOUND OR v_b.state NOT IN ('held', 'expired', 'cancelled') THEN
        RETURN;
    END IF;

    -- cancelled while its payment page was still open: the money goes back
    IF v_b.state = 'cancelled' THEN
        v_key := 'darkroom-refund-booking-' || v_b.id || '-' || p_order;
        UPDATE bookings SET deposit_paid = coalesce(p_amount, deposit),
                            updated_at = now()
         WHERE id = v_b.id;
        v_job := bookings_refund_job(p_order, coalesce(p_amount, v_b.deposit),
                                     'booking_cancelled', v_key);
        PERFORM bookings_event(v_b.id, 'cancelled', 'cancelled', p_cause,
            jsonb_build_object('refund', 'queued',
                'amount', coalesce(p_amount, v_b.deposit),
                'job', v_job, 'idempotency_key', v_key,
                'reason', 'the deposit was paid after the booking was '
                          'cancelled'));
        RETURN;
    END IF;

    UPDATE bookings SET deposit_paid = coalesce(p_amount, deposit),
                        updated_at = now()
     WHERE id = v_b.id;

    BEGIN
        UPDATE bookings SET state = 'confirmed', confirmed_at = now()
         WHERE id = v_b.id;
    EXCEPTION WHEN exclusion_violation THEN
        v_key := 'darkroom-refund-booking-' || v_b.id || '-' || p_order;
        v_job := bookings_refund_job(p_order, coalesce(p_amount, v_b.deposit),
                                     'booking_expired', v_key);
        PERFORM bookings_event(v_b.id, v_b.state, 'expired', p_cause,
            jsonb_build_object('refund', 'queued',
                'amount', coalesce(p_amount, v_b.deposit),
                'job', v_job, 'idempotency_key', v_key,
                'reason', 'the hold expired and its time was taken'));
        RETURN;
    END;

    PERFORM bookings_event(v_b.id, v_b.state, 'confirmed', p_cause,
        jsonb_build_object('deposit', coalesce(p_amount, v_b.deposit)));
    INSERT INTO jobs (kind, payload, dedupe_key)
    VALUES ('email', jsonb_build_object('template', 'booking_confirmed',
                'booking_id', v_b.id, 'to', v_b.client_email),
            'booking_confirmed:' || v_b.id || ':' || v_b.sequence)
    ON CONFLICT (dedupe_key) DO NOTHING;
END $$;


-- the deposit order of a hold closed unpaid (order_transition: Stripe's
-- checkout.session.expired, the reconcile job, a failed checkout): the
-- hold is expired and its time free

CREATE OR REPLACE FUNCTION bookings_order_closed(p_order bigint,
    p_cause text)
RETURNS void LANGUAGE sql AS $$
    WITH x AS (
        UPDATE bookings SET state = 'expired', updated_at = now()
         WHERE deposit_order_id = p_order AND state = 'held'
        RETURNING id)
    INSERT INTO booking_events (booking_id, from_state, to_state, cause,
                                detail)
    SELECT id, 'held', 'expired', p_cause,
           jsonb_build_object('order', 'closed unpaid') FROM x;
$$;


-- the stripe_refund job has refunded an order (shop's stripe_refund_sent):
-- the booking of that deposit records it, or of that balance order
-- (bookings_balance.sql)

CREATE OR REPLACE FUNCTION bookings_refund_sent(p_order bigint,
    p_refund text, p_amount bigint, p_key text, p_cause text)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF bookings_balance_refunded(p_order, p_refund, p_amount, p_key,
                                 p_cause)
    THEN
        RETURN;
    END IF;
    UPDATE bookings SET deposit_refunded = deposit_refunded + p_amount,
                        updated_at = now()
     WHERE deposit_order_id = p_order;
    INSERT INTO booking_events (booking_id, from_state, to_state, cause,
                                detail)
    SELECT b.id, b.state, b.state, p_cause,
           jsonb_build_object('refund', p_refund, 'amount', p_amount,
                              'idempotency_key', p_key)
      FROM bookings b WHERE b.deposit_order_id = p_order;
END $$;


-- darkroom_public_cache: the tables bookings_types_json() reads bump the
-- booking_types version (public_version_bump, core.sql) in the
-- transaction of the change; a photographer's feed key fires nothing.
DROP TRIGGER IF EXISTS session_types_public ON session_types;
CREATE TRIGGER session_types_public
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON session_types FOR EACH STATEMENT
    EXECUTE FUNCTION public_version_bump('booking_types');
DROP TRIGGER IF EXISTS photographers_public ON photographers;
CREATE TRIGGER photographers_public
    AFTER INSERT OR UPDATE OF id, name, time_zone OR DELETE OR TRUNCATE
    ON photographers FOR EACH STATEMENT
    EXECUTE FUNCTION public_version_bump('booking_types');
