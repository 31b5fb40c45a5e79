-- Bookings (issue 16): the admin API's functions, behind
-- darkroom_bookings_admin (src/bookings/ngx_http_darkroom_bookings_admin.c):
-- photographers, session types, weekly hours, exceptions, the bookings by
-- day or week, a cancel and a reschedule by the owner.  Every rule is
-- here; the C side
-- passes the path's ids, the query's values and the body as text.
--
-- Bad input is a 400 with its own code and nothing written; an unknown id
-- a 404 (NULL, or darkroom_refuse(404)).  Times go out as UTC instants
-- ("starts_at") and as the photographer's wall clock ("local_start"),
-- which is what the console shows.
--
-- A cancel by the owner has the client's effects (booking_cancel_effects
-- in bookings_mail.sql: the deposit refunded per the type's policy, the
-- booking_cancelled email), in its transaction.
--
-- Tables: photographers, session_types, booking_hours, booking_exceptions,
-- bookings, booking_events (sql/030_bookings.sql).  The owner's cancel and
-- reschedule give their audit row a detail (console_audit_detail in
-- console.sql: the booking, the action and the reason).


-- the body: a JSON object (or, with p_array, an array too), else a 400

CREATE OR REPLACE FUNCTION bookings_admin_body(p text, p_array boolean)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
    v  jsonb;
BEGIN
    BEGIN
        v := p::jsonb;
    EXCEPTION WHEN invalid_text_representation THEN
        v := NULL;
    END;

    IF jsonb_typeof(v) = 'object'
       OR (p_array AND jsonb_typeof(v) = 'array') THEN
        RETURN v;
    END IF;

    PERFORM darkroom_refuse(400, 'invalid_json',
        CASE WHEN p_array THEN 'The body must be a JSON object or array.'
             ELSE 'The body must be a JSON object.' END);
    RETURN NULL;
END $$;


-- an integer member between lo and hi (NULL allowed when p_null)

CREATE OR REPLACE FUNCTION bookings_admin_int(p jsonb, p_key text,
    p_lo bigint, p_hi bigint, p_null boolean, p_code text)
RETURNS bigint LANGUAGE plpgsql STABLE AS $$
DECLARE
    v  jsonb := p->p_key;
    n  numeric;
BEGIN
    IF v IS NULL OR jsonb_typeof(v) = 'null' THEN
        IF p_null THEN
            RETURN NULL;
        END IF;
        PERFORM darkroom_refuse(400, p_code,
            format('%s is required: an integer from %s to %s.',
                   p_key, p_lo, p_hi));
    END IF;

    IF jsonb_typeof(v) = 'number' THEN
        n := v::text::numeric;
    END IF;

    IF n IS NULL OR n <> trunc(n) OR n < p_lo OR n > p_hi THEN
        PERFORM darkroom_refuse(400, p_code,
            format('%s must be an integer from %s to %s.', p_key, p_lo, p_hi));
    END IF;

    RETURN n::bigint;
END $$;


-- a string member (trimmed) of p_min to p_max characters

CREATE OR REPLACE FUNCTION bookings_admin_str(p jsonb, p_key text,
    p_min int, p_max int, p_code text)
RETURNS text LANGUAGE plpgsql STABLE AS $$
DECLARE
    v  text;
BEGIN
    IF jsonb_typeof(p->p_key) = 'string' THEN
        v := btrim(p->>p_key);
    ELSIF p_min = 0 AND (p->p_key IS NULL OR jsonb_typeof(p->p_key) = 'null')
    THEN
        v := '';
    END IF;

    IF v IS NULL OR length(v) < p_min OR length(v) > p_max THEN
        PERFORM darkroom_refuse(400, p_code,
            format('%s must be a string of %s to %s characters.',
                   p_key, p_min, p_max));
    END IF;

    RETURN v;
END $$;


CREATE OR REPLACE FUNCTION bookings_admin_bool(p jsonb, p_key text,
    p_code text)
RETURNS boolean LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF jsonb_typeof(p->p_key) IS DISTINCT FROM 'boolean' THEN
        PERFORM darkroom_refuse(400, p_code,
                                format('%s must be true or false.', p_key));
    END IF;

    RETURN (p->p_key)::boolean;
END $$;


-- "HH:MM" (or "HH:MM:SS"; "24:00" the end of the day) as a time

CREATE OR REPLACE FUNCTION bookings_admin_time(p_v jsonb, p_what text)
RETURNS time LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF jsonb_typeof(p_v) = 'string'
       AND p_v #>> '{}' ~ '^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$|^24:00(:00)?$'
    THEN
        RETURN (p_v #>> '{}')::time;
    END IF;

    PERFORM darkroom_refuse(400, 'invalid_time',
        format('%s must be a time of day, HH:MM.', p_what));
    RETURN NULL;
END $$;


CREATE OR REPLACE FUNCTION bookings_admin_date(p_v text, p_what text)
RETURNS date LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF p_v ~ '^\d{4}-\d{2}-\d{2}$' THEN
        BEGIN
            RETURN p_v::date;
        EXCEPTION WHEN datetime_field_overflow OR invalid_datetime_format THEN
            NULL;
        END;
    END IF;

    PERFORM darkroom_refuse(400, 'invalid_date',
                            format('%s must be a date, YYYY-MM-DD.', p_what));
    RETURN NULL;
END $$;


CREATE OR REPLACE FUNCTION bookings_admin_id(p_id text, p_what text)
RETURNS text LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF p_id IS NULL OR p_id !~ '^[a-z0-9][a-z0-9-]{0,63}$' THEN
        PERFORM darkroom_refuse(400, 'invalid_id',
            format('The %s id is 1 to 64 of a-z, 0-9 and "-".', p_what));
    END IF;

    RETURN p_id;
END $$;


-- The photographer a request names (?photographer= or the path): 400 when
-- none is named, 404 when there is no such one.
CREATE OR REPLACE FUNCTION bookings_admin_photographer_of(p_id text)
RETURNS photographers LANGUAGE plpgsql STABLE AS $$
DECLARE
    v  photographers%ROWTYPE;
BEGIN
    IF p_id IS NULL THEN
        PERFORM darkroom_refuse(400, 'invalid_photographer',
                                'Give ?photographer=<id>.');
    END IF;

    SELECT * INTO v FROM photographers WHERE id = p_id;

    IF NOT FOUND THEN
        PERFORM darkroom_refuse(404, 'not_found',
                                'There is no such photographer.');
    END IF;

    RETURN v;
END $$;


-- photographers ---------------------------------------------------------

CREATE OR REPLACE FUNCTION bookings_admin_photographer_json(v photographers)
RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'id', v.id, 'name', v.name, 'email', v.email,
        'time_zone', v.time_zone,
        'min_notice_hours',
            (extract(epoch FROM v.min_notice) / 3600)::bigint,
        'horizon_days', (extract(epoch FROM v.horizon) / 86400)::bigint,
        'max_per_day', v.max_per_day,
        'feed', v.feed_hash IS NOT NULL,
        'updated_at', v.updated_at);
$$;


CREATE OR REPLACE FUNCTION bookings_admin_photographers() RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('photographers', coalesce(jsonb_agg(
               bookings_admin_photographer_json(p) ORDER BY p.name, p.id),
               '[]'))::text
      FROM photographers p;
$$;


-- POST photographers/<id>: create, or change the members given

CREATE OR REPLACE FUNCTION bookings_admin_photographer_upsert(p_id text,
    p_body text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    b      jsonb := bookings_admin_body(p_body, false);
    old    photographers%ROWTYPE;
    m      jsonb;
    v      photographers%ROWTYPE;
BEGIN
    PERFORM bookings_admin_id(p_id, 'photographer');

    SELECT * INTO old FROM photographers WHERE id = p_id;

    m := CASE WHEN FOUND THEN bookings_admin_photographer_json(old)
              ELSE jsonb_build_object('min_notice_hours', 24,
                                      'horizon_days', 90)
         END || b;

    v.id := p_id;
    v.name := bookings_admin_str(m, 'name', 1, 200, 'invalid_name');
    v.email := bookings_admin_str(m, 'email', 3, 254, 'invalid_email');

    IF v.email !~ '^[^@\s]+@[^@\s]+$' THEN
        PERFORM darkroom_refuse(400, 'invalid_email',
                                'email is not an email address.');
    END IF;

    v.time_zone := bookings_admin_str(m, 'time_zone', 1, 64,
                                      'invalid_time_zone');

    IF NOT EXISTS (SELECT 1 FROM pg_timezone_names
                    WHERE name = v.time_zone) THEN
        PERFORM darkroom_refuse(400, 'invalid_time_zone',
            'time_zone must be an IANA time zone, e.g. Europe/London.');
    END IF;

    v.min_notice := make_interval(hours => bookings_admin_int(m,
                        'min_notice_hours', 0, 8760, false,
                        'invalid_min_notice')::int);
    v.horizon := make_interval(days => bookings_admin_int(m, 'horizon_days',
                     1, 730, false, 'invalid_horizon')::int);
    v.max_per_day := bookings_admin_int(m, 'max_per_day', 1, 100, true,
                                        'invalid_max_per_day');

    INSERT INTO photographers AS t (id, name, email, time_zone, min_notice,
                                    horizon, max_per_day)
    VALUES (v.id, v.name, v.email, v.time_zone, v.min_notice, v.horizon,
            v.max_per_day)
    ON CONFLICT (id) DO UPDATE SET
        name = EXCLUDED.name, email = EXCLUDED.email,
        time_zone = EXCLUDED.time_zone, min_notice = EXCLUDED.min_notice,
        horizon = EXCLUDED.horizon, max_per_day = EXCLUDED.max_per_day,
        updated_at = now()
    RETURNING * INTO v;

    RETURN jsonb_build_object('photographer',
                              bookings_admin_photographer_json(v))::text;
END $$;


-- session types ---------------------------------------------------------

CREATE OR REPLACE FUNCTION bookings_admin_minutes(i interval) RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$
    SELECT (extract(epoch FROM i) / 60)::bigint;
$$;


CREATE OR REPLACE FUNCTION bookings_admin_type_json(v session_types)
RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'id', v.id, 'photographer', v.photographer_id, 'name', v.name,
        'description', v.description,
        'duration_minutes', bookings_admin_minutes(v.duration),
        'buffer_before_minutes', bookings_admin_minutes(v.buffer_before),
        'buffer_after_minutes', bookings_admin_minutes(v.buffer_after),
        'slot_step_minutes', bookings_admin_minutes(v.slot_step),
        'currency', v.currency, 'price', v.price,
        'deposit_kind', v.deposit_kind,
        'deposit_amount', v.deposit_amount,
        'deposit_percent', v.deposit_percent,
        'deposit', CASE v.deposit_kind
                   WHEN 'fixed' THEN v.deposit_amount
                   ELSE greatest(1, round(v.price * v.deposit_percent / 100))
                   END,
        'location', v.location, 'online', v.online,
        'questions', v.questions,
        'refund_hours', v.refund_hours,
        'reschedule_hours', v.reschedule_hours,
        'balance_due_hours', v.balance_due_hours,
        'active', v.active, 'position', v.position,
        'updated_at', v.updated_at);
$$;


CREATE OR REPLACE FUNCTION bookings_admin_types() RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('types', coalesce(jsonb_agg(
               bookings_admin_type_json(s) ORDER BY s.position, s.name, s.id),
               '[]'))::text
      FROM session_types s;
$$;


-- the questions: [{"id", "label", "required", "kind", "choices"}]

CREATE OR REPLACE FUNCTION bookings_admin_questions(p jsonb) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    q     jsonb;
    ids   text[] := '{}';
    kind  text;
    out   jsonb := '[]';
BEGIN
    IF jsonb_typeof(p) IS DISTINCT FROM 'array' OR jsonb_array_length(p) > 20
    THEN
        PERFORM darkroom_refuse(400, 'invalid_questions',
            'questions must be an array of at most 20 questions.');
    END IF;

    FOR q IN SELECT * FROM jsonb_array_elements(p) LOOP
        kind := coalesce(q->>'kind', 'text');

        IF jsonb_typeof(q) IS DISTINCT FROM 'object'
           OR coalesce(q->>'id', '') !~ '^[a-z0-9_]{1,64}$'
           OR q->>'id' = ANY (ids)
           OR jsonb_typeof(q->'label') IS DISTINCT FROM 'string'
           OR length(btrim(q->>'label')) NOT BETWEEN 1 AND 500
           OR kind NOT IN ('text', 'long', 'choice')
           OR (q ? 'required'
               AND jsonb_typeof(q->'required') IS DISTINCT FROM 'boolean')
        THEN
            PERFORM darkroom_refuse(400, 'invalid_questions',
                'Each question needs a unique id (a-z, 0-9, _), a label, '
                'a kind (text, long or choice) and required true or false.');
        END IF;

        IF kind = 'choice' AND (jsonb_typeof(q->'choices')
                                IS DISTINCT FROM 'array'
               OR jsonb_array_length(q->'choices') = 0
               OR EXISTS (SELECT 1 FROM jsonb_array_elements(q->'choices') c
                           WHERE jsonb_typeof(c) <> 'string'
                              OR length(btrim(c #>> '{}'))
                                 NOT BETWEEN 1 AND 200))
        THEN
            PERFORM darkroom_refuse(400, 'invalid_questions',
                'A choice question needs "choices": a list of strings.');
        END IF;

        ids := ids || (q->>'id');
        out := out || jsonb_build_array(jsonb_strip_nulls(jsonb_build_object(
                   'id', q->>'id', 'label', btrim(q->>'label'),
                   'required', coalesce((q->>'required')::boolean, false),
                   'kind', kind,
                   'choices', CASE WHEN kind = 'choice'
                                   THEN q->'choices' END)));
    END LOOP;

    RETURN out;
END $$;


-- the deposit: "fixed" with deposit_amount <= price, or "percent" 1-100

CREATE OR REPLACE FUNCTION bookings_admin_type_deposit(m jsonb,
    INOUT v session_types)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    v.deposit_kind := coalesce(m->>'deposit_kind', 'percent');

    IF v.deposit_kind = 'fixed' THEN
        v.deposit_amount := bookings_admin_int(m, 'deposit_amount', 1,
                                               v.price, false,
                                               'invalid_deposit');
        v.deposit_percent := NULL;

    ELSIF v.deposit_kind = 'percent' THEN
        v.deposit_percent := bookings_admin_int(m, 'deposit_percent', 1, 100,
                                                false, 'invalid_deposit');
        v.deposit_amount := NULL;

    ELSE
        PERFORM darkroom_refuse(400, 'invalid_deposit',
                                'deposit_kind is "fixed" or "percent".');
    END IF;
END $$;


CREATE OR REPLACE FUNCTION bookings_admin_type_check(p_id text, m jsonb)
RETURNS session_types LANGUAGE plpgsql STABLE AS $$
DECLARE
    v  session_types%ROWTYPE;
BEGIN
    v.id := p_id;
    v.photographer_id := bookings_admin_str(m, 'photographer', 1, 64,
                                            'invalid_photographer');

    IF NOT EXISTS (SELECT 1 FROM photographers
                    WHERE id = v.photographer_id) THEN
        PERFORM darkroom_refuse(400, 'invalid_photographer',
                                'There is no such photographer.');
    END IF;

    v.name := bookings_admin_str(m, 'name', 1, 200, 'invalid_name');
    v.description := bookings_admin_str(m, 'description', 0, 2000,
                                        'invalid_description');
    v.duration := make_interval(mins => bookings_admin_int(m,
                      'duration_minutes', 15, 1440, false,
                      'invalid_duration')::int);
    v.buffer_before := make_interval(mins => bookings_admin_int(m,
                           'buffer_before_minutes', 0, 720, false,
                           'invalid_buffer')::int);
    v.buffer_after := make_interval(mins => bookings_admin_int(m,
                          'buffer_after_minutes', 0, 720, false,
                          'invalid_buffer')::int);
    v.slot_step := make_interval(mins => bookings_admin_int(m,
                       'slot_step_minutes', 5, 1440, false,
                       'invalid_slot_step')::int);
    v.currency := coalesce(m->>'currency', '');

    IF v.currency !~ '^[A-Z]{3}$' THEN
        PERFORM darkroom_refuse(400, 'invalid_currency',
            'currency must be an ISO 4217 code in capitals, e.g. GBP.');
    END IF;

    v.price := bookings_admin_int(m, 'price', 1, 100000000, false,
                                  'invalid_price');
    v := bookings_admin_type_deposit(m, v);
    v.location := bookings_admin_str(m, 'location', 0, 500,
                                     'invalid_location');
    v.online := bookings_admin_bool(m, 'online', 'invalid_online');
    v.questions := bookings_admin_questions(m->'questions');
    v.refund_hours := bookings_admin_int(m, 'refund_hours', 0, 8760, false,
                                         'invalid_policy');
    v.reschedule_hours := bookings_admin_int(m, 'reschedule_hours', 0, 8760,
                                             false, 'invalid_policy');
    -- when the balance link is emailed (bookings_balance.sql); null: never
    v.balance_due_hours := bookings_admin_int(m, 'balance_due_hours', 1,
                                              8760, true,
                                              'invalid_balance_due');
    v.active := bookings_admin_bool(m, 'active', 'invalid_active');
    v.position := bookings_admin_int(m, 'position', -100000, 100000, false,
                                     'invalid_position');
    RETURN v;
END $$;


-- POST types/<id>: create, or change the members given; every member is
-- checked here, with its own code

CREATE OR REPLACE FUNCTION bookings_admin_type_upsert(p_id text,
    p_body text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    b    jsonb := bookings_admin_body(p_body, false);
    old  session_types%ROWTYPE;
    v    session_types%ROWTYPE;
BEGIN
    PERFORM bookings_admin_id(p_id, 'session type');

    SELECT * INTO old FROM session_types WHERE id = p_id;

    v := bookings_admin_type_check(p_id,
             CASE WHEN FOUND THEN bookings_admin_type_json(old)
                  ELSE jsonb_build_object(
                      'description', '', 'buffer_before_minutes', 0,
                      'buffer_after_minutes', 0, 'slot_step_minutes', 30,
                      'deposit_kind', 'percent', 'location', '',
                      'online', false, 'questions', '[]'::jsonb,
                      'refund_hours', 48, 'reschedule_hours', 24,
                      'balance_due_hours', 72,
                      'active', true, 'position', 0)
             END || b);

    INSERT INTO session_types AS t (id, photographer_id, name, description,
        duration, buffer_before, buffer_after, slot_step, currency, price,
        deposit_kind, deposit_amount, deposit_percent, location, online,
        questions, refund_hours, reschedule_hours, balance_due_hours, active,
        position)
    VALUES (v.id, v.photographer_id, v.name, v.description, v.duration,
        v.buffer_before, v.buffer_after, v.slot_step, v.currency, v.price,
        v.deposit_kind, v.deposit_amount, v.deposit_percent, v.location,
        v.online, v.questions, v.refund_hours, v.reschedule_hours,
        v.balance_due_hours, v.active, v.position)
    ON CONFLICT (id) DO UPDATE SET
        photographer_id = EXCLUDED.photographer_id, name = EXCLUDED.name,
        description = EXCLUDED.description, duration = EXCLUDED.duration,
        buffer_before = EXCLUDED.buffer_before,
        buffer_after = EXCLUDED.buffer_after,
        slot_step = EXCLUDED.slot_step, currency = EXCLUDED.currency,
        price = EXCLUDED.price, deposit_kind = EXCLUDED.deposit_kind,
        deposit_amount = EXCLUDED.deposit_amount,
        deposit_percent = EXCLUDED.deposit_percent,
        location = EXCLUDED.location, online = EXCLUDED.online,
        questions = EXCLUDED.questions,
        refund_hours = EXCLUDED.refund_hours,
        reschedule_hours = EXCLUDED.reschedule_hours,
        balance_due_hours = EXCLUDED.balance_due_hours,
        active = EXCLUDED.active, position = EXCLUDED.position,
        updated_at = now()
    RETURNING * INTO v;

    RETURN jsonb_build_object('type', bookings_admin_type_json(v))::text;
END $$;


-- weekly hours ------------------------------------------------------------

CREATE OR REPLACE FUNCTION bookings_admin_hours(p_photographer text)
RETURNS text LANGUAGE plpgsql STABLE AS $$
DECLARE
    ph  photographers%ROWTYPE;
BEGIN
    ph := bookings_admin_photographer_of(p_photographer);

    RETURN jsonb_build_object(
        'photographer', ph.id, 'time_zone', ph.time_zone,
        'hours', coalesce((SELECT jsonb_agg(jsonb_build_object(
                     'weekday', h.weekday,
                     'starts', to_char(h.starts, 'HH24:MI'),
                     'ends', CASE WHEN h.ends = '24:00' THEN '24:00'
                                  ELSE to_char(h.ends, 'HH24:MI') END)
                     ORDER BY h.weekday, h.starts)
                       FROM booking_hours h
                      WHERE h.photographer_id = ph.id), '[]'))::text;
END $$;


-- PUT hours/<photographer>: the whole week, [{"weekday", "starts",
-- "ends"}] or {"hours": [...]}; periods of a day may not overlap

CREATE OR REPLACE FUNCTION bookings_admin_hours_set(p_photographer text,
    p_body text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    b    jsonb := bookings_admin_body(p_body, true);
    ph   photographers%ROWTYPE;
    h    jsonb;
    wd   bigint;
    s    time;
    e    time;
    days    smallint[] := '{}';
    starts  time[] := '{}';
    ends    time[] := '{}';
BEGIN
    ph := bookings_admin_photographer_of(p_photographer);

    IF jsonb_typeof(b) = 'object' THEN
        b := b->'hours';
    END IF;

    IF jsonb_typeof(b) IS DISTINCT FROM 'array'
       OR jsonb_array_length(b) > 70 THEN
        PERFORM darkroom_refuse(400, 'invalid_hours',
            'The week is a list of at most 70 periods '
            '[{"weekday", "starts", "ends"}].');
    END IF;

    FOR h IN SELECT * FROM jsonb_array_elements(b) LOOP
        IF jsonb_typeof(h) IS DISTINCT FROM 'object' THEN
            PERFORM darkroom_refuse(400, 'invalid_hours',
                'Each period is {"weekday", "starts", "ends"}.');
        END IF;

        wd := bookings_admin_int(h, 'weekday', 1, 7, false,
                                 'invalid_weekday');
        s := bookings_admin_time(h->'starts', 'starts');
        e := bookings_admin_time(h->'ends', 'ends');

        IF e <= s THEN
            PERFORM darkroom_refuse(400, 'invalid_hours',
                format('Day %s: a period must end after it starts (%s-%s).',
                       wd, to_char(s, 'HH24:MI'), to_char(e, 'HH24:MI')));
        END IF;

        IF EXISTS (SELECT 1 FROM unnest(days, starts, ends) w(d, s0, e0)
                    WHERE w.d = wd AND w.s0 < e AND s < w.e0)
        THEN
            PERFORM darkroom_refuse(400, 'overlapping_hours',
                format('Day %s: the period %s-%s overlaps another.', wd,
                       to_char(s, 'HH24:MI'), to_char(e, 'HH24:MI')));
        END IF;

        days := days || wd::smallint;
        starts := starts || s;
        ends := ends || e;
    END LOOP;

    DELETE FROM booking_hours WHERE photographer_id = ph.id;
    INSERT INTO booking_hours (photographer_id, weekday, starts, ends)
    SELECT ph.id, w.d, w.s0, w.e0 FROM unnest(days, starts, ends) w(d, s0, e0);

    RETURN bookings_admin_hours(ph.id);
END $$;


-- exceptions --------------------------------------------------------------

CREATE OR REPLACE FUNCTION bookings_admin_exception_json(x booking_exceptions)
RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_build_object('id', x.id, 'photographer', x.photographer_id,
        'day', x.day, 'kind', x.kind,
        'starts', to_char(x.starts, 'HH24:MI'),
        'ends', to_char(x.ends, 'HH24:MI'), 'note', x.note);
$$;


CREATE OR REPLACE FUNCTION bookings_admin_exceptions(p_photographer text)
RETURNS text LANGUAGE plpgsql STABLE AS $$
DECLARE
    ph  photographers%ROWTYPE;
BEGIN
    ph := bookings_admin_photographer_of(p_photographer);

    RETURN jsonb_build_object('photographer', ph.id,
        'exceptions', coalesce((SELECT jsonb_agg(
                          bookings_admin_exception_json(x)
                          ORDER BY x.day, x.starts NULLS FIRST, x.id)
                            FROM booking_exceptions x
                           WHERE x.photographer_id = ph.id), '[]'))::text;
END $$;


-- POST exceptions {"photographer", "day", "kind", "starts", "ends",
-- "note"}: kind "closed" without times is a blackout day

CREATE OR REPLACE FUNCTION bookings_admin_exception_add(p_body text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    b   jsonb := bookings_admin_body(p_body, false);
    x   booking_exceptions%ROWTYPE;
BEGIN
    x.photographer_id := bookings_admin_str(b, 'photographer', 1, 64,
                                            'invalid_photographer');

    IF NOT EXISTS (SELECT 1 FROM photographers
                    WHERE id = x.photographer_id) THEN
        PERFORM darkroom_refuse(400, 'invalid_photographer',
                                'There is no such photographer.');
    END IF;

    x.day := bookings_admin_date(b->>'day', 'day');
    x.kind := coalesce(b->>'kind', 'closed');

    IF x.kind NOT IN ('closed', 'open') THEN
        PERFORM darkroom_refuse(400, 'invalid_kind',
                                'kind is "closed" or "open".');
    END IF;

    IF coalesce(b->'starts', 'null') <> 'null'
       OR coalesce(b->'ends', 'null') <> 'null' OR x.kind = 'open' THEN
        x.starts := bookings_admin_time(b->'starts', 'starts');
        x.ends := bookings_admin_time(b->'ends', 'ends');

        IF x.ends <= x.starts THEN
            PERFORM darkroom_refuse(400, 'invalid_hours',
                                    'The period must end after it starts.');
        END IF;
    END IF;

    x.note := bookings_admin_str(b, 'note', 0, 500, 'invalid_note');

    INSERT INTO booking_exceptions (photographer_id, day, kind, starts, ends,
                                    note)
    VALUES (x.photographer_id, x.day, x.kind, x.starts, x.ends, x.note)
    RETURNING * INTO x;

    RETURN jsonb_build_object('exception',
                              bookings_admin_exception_json(x))::text;
END $$;


CREATE OR REPLACE FUNCTION bookings_admin_exception_delete(p_id text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    x  booking_exceptions%ROWTYPE;
BEGIN
    IF p_id !~ '^[0-9]{1,18}$' THEN
        RETURN NULL;
    END IF;

    DELETE FROM booking_exceptions WHERE id = p_id::bigint RETURNING * INTO x;

    IF NOT FOUND THEN
        RETURN NULL;
    END IF;

    RETURN jsonb_build_object('deleted',
                              bookings_admin_exception_json(x))::text;
END $$;


-- bookings ------------------------------------------------------------------

CREATE OR REPLACE FUNCTION bookings_admin_booking_json(b bookings)
RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'ref', b.ref, 'state', b.state, 'sequence', b.sequence,
        'photographer', jsonb_build_object('id', p.id, 'name', p.name,
                                           'time_zone', p.time_zone),
        'type', jsonb_build_object('id', s.id, 'name', s.name),
        'starts_at', b.starts_at, 'ends_at', b.ends_at,
        'local_day', to_char(b.starts_at AT TIME ZONE p.time_zone,
                             'YYYY-MM-DD'),
        'local_start', to_char(b.starts_at AT TIME ZONE p.time_zone,
                               'YYYY-MM-DD"T"HH24:MI'),
        'local_end', to_char(b.ends_at AT TIME ZONE p.time_zone,
                             'YYYY-MM-DD"T"HH24:MI'),
        'held_until', b.held_until,
        'client_name', b.client_name, 'client_email', b.client_email,
        'client_time_zone', b.client_time_zone,
        'currency', b.currency, 'price', b.price, 'deposit', b.deposit,
        'deposit_paid', b.deposit_paid, 'balance_paid', b.balance_paid,
        'deposit_refunded', b.deposit_refunded,
        'cancel_reason', b.cancel_reason, 'cancelled_by', b.cancelled_by,
        'created_at', b.created_at, 'confirmed_at', b.confirmed_at,
        'cancelled_at', b.cancelled_at)
      FROM photographers p, session_types s
     WHERE p.id = b.photographer_id AND s.id = b.session_type_id;
$$;


-- GET bookings?from=&to=&state=: the bookings starting on the days from
-- .. to (inclusive, at most 62 days) in their photographer's time zone;
-- state: held, confirmed, expired, cancelled, or live (held + confirmed)

CREATE OR REPLACE FUNCTION bookings_admin_list(p_from text, p_to text,
    p_state text)
RETURNS text LANGUAGE plpgsql STABLE AS $$
DECLARE
    f  date := bookings_admin_date(p_from, 'from');
    t  date := bookings_admin_date(coalesce(p_to, p_from), 'to');
BEGIN
    IF t < f OR t - f > 62 THEN
        PERFORM darkroom_refuse(400, 'invalid_range',
            'to must be on or after from, at most 62 days later.');
    END IF;

    IF p_state IS NOT NULL AND p_state NOT IN ('held', 'confirmed',
           'expired', 'cancelled', 'live', '') THEN
        PERFORM darkroom_refuse(400, 'invalid_state',
            'state is held, confirmed, expired, cancelled or live.');
    END IF;

    RETURN jsonb_build_object('from', f, 'to', t,
        'bookings', coalesce((SELECT jsonb_agg(
                        bookings_admin_booking_json(b) ORDER BY b.starts_at,
                        b.id)
                          FROM bookings b
                          JOIN photographers p ON p.id = b.photographer_id
                         WHERE b.starts_at >= (f::timestamp
                                               AT TIME ZONE p.time_zone)
                           AND b.starts_at < ((t + 1)::timestamp
                                              AT TIME ZONE p.time_zone)
                           AND CASE coalesce(p_state, '')
                               WHEN '' THEN true
                               WHEN 'live' THEN b.state IN ('held',
                                                            'confirmed')
                               ELSE b.state = p_state END), '[]'))::text;
END $$;


CREATE OR REPLACE FUNCTION bookings_admin_get(p_ref text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('booking', bookings_admin_booking_json(b)
        || jsonb_build_object(
               'answers', b.answers,
               'questions', (SELECT s.questions FROM session_types s
                              WHERE s.id = b.session_type_id),
               'deposit_order', (SELECT o.ref FROM orders o
                                  WHERE o.id = b.deposit_order_id),
               'events', coalesce((SELECT jsonb_agg(jsonb_build_object(
                             'id', e.id, 'from_state', e.from_state,
                             'to_state', e.to_state, 'cause', e.cause,
                             'detail', e.detail, 'at', e.created_at)
                             ORDER BY e.id)
                               FROM booking_events e
                              WHERE e.booking_id = b.id), '[]')))::text
      FROM bookings b
     WHERE b.ref = p_ref;
$$;


-- POST bookings/<ref>/cancel {"reason"}: a held or confirmed booking
-- becomes cancelled (by 'admin'), its SEQUENCE raised for the invite's
-- CANCEL, an event with the cause admin:<who> and the effects (above)

CREATE OR REPLACE FUNCTION bookings_admin_cancel(p_ref text, p_body text,
    p_actor text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    body    jsonb := bookings_admin_body(p_body, false);
    reason  text := bookings_admin_str(body, 'reason', 1, 1000,
                                       'invalid_reason');
    b       bookings%ROWTYPE;
    prev    text;
BEGIN
    SELECT * INTO b FROM bookings WHERE ref = p_ref FOR UPDATE;

    IF NOT FOUND THEN
        RETURN NULL;
    END IF;

    prev := b.state;

    IF b.state NOT IN ('held', 'confirmed') THEN
        PERFORM darkroom_refuse(409, 'not_cancellable',
            format('The booking is %s: only a held or confirmed booking '
                   'can be cancelled.', b.state));
    END IF;

    UPDATE bookings SET state = 'cancelled', sequence = sequence + 1,
           cancel_reason = reason, cancelled_by = 'admin',
           cancelled_at = now(), updated_at = now()
     WHERE id = b.id
    RETURNING * INTO b;

    INSERT INTO booking_events (booking_id, from_state, to_state, cause,
                                detail)
    VALUES (b.id, prev, 'cancelled',
            'admin:' || coalesce(nullif(p_actor, ''), 'unknown'),
            jsonb_build_object('reason', reason, 'sequence', b.sequence)
            || booking_cancel_effects(b));
    -- the request's row in the console's audit log says why
    PERFORM console_audit_detail(jsonb_build_object('booking', b.ref,
                'action', 'cancel', 'reason', reason));

    RETURN bookings_admin_get(b.ref);
END $$;


-- POST bookings/<ref>/reschedule {"start", "reason", "notify", "force"}:
-- the owner moves a confirmed booking (booking_move in bookings_mail.sql,
-- in one transaction).  The owner is not held to the client's policy: the
-- type's reschedule_hours, the photographer's min_notice and horizon do
-- not apply, and a session under way may be moved.  The start must still
-- be a slot of the weekly hours and exceptions on the type's step, and
-- its day under max_per_day, unless "force": true says the owner means
-- it; never in the past (400 past_slot) nor over another booking (409
-- slot_taken: the exclusion constraint).  reason (1 to 1000 characters)
-- is required, kept in the booking's event with notify and force; the
-- client gets the booking_rescheduled email (the invite with the raised
-- SEQUENCE) unless "notify": false.

CREATE OR REPLACE FUNCTION bookings_admin_reschedule(p_ref text,
    p_body text, p_actor text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    body    jsonb := bookings_admin_body(p_body, false);
    reason  text := bookings_admin_str(body, 'reason', 1, 1000,
                                       'invalid_reason');
    v_start timestamptz := booking_start_of(body, 'invalid_start');
    v_notify boolean := CASE WHEN body ? 'notify'
                             THEN bookings_admin_bool(body, 'notify',
                                                      'invalid_notify')
                             ELSE true END;
    v_force boolean := CASE WHEN body ? 'force'
                            THEN bookings_admin_bool(body, 'force',
                                                     'invalid_force')
                            ELSE false END;
    b       bookings%ROWTYPE;
BEGIN
    -- as every change of a booking: the photographer locked first
    PERFORM 1 FROM photographers p
      JOIN bookings x ON x.photographer_id = p.id
     WHERE x.ref = p_ref
       FOR NO KEY UPDATE OF p;
    SELECT * INTO b FROM bookings WHERE ref = p_ref FOR UPDATE;

    IF NOT FOUND THEN
        RETURN NULL;
    END IF;

    IF b.state <> 'confirmed' THEN
        PERFORM darkroom_refuse(409, 'not_reschedulable',
            format('The booking is %s: only a confirmed booking can be '
                   'moved.', b.state));
    END IF;

    b := booking_move(b, v_start,
                      'admin:' || coalesce(nullif(p_actor, ''), 'unknown'),
                      true, v_force, jsonb_build_object('reason', reason,
                          'notify', v_notify, 'force', v_force));
    IF v_notify THEN
        PERFORM booking_rescheduled_email(b);
    END IF;
    PERFORM console_audit_detail(jsonb_build_object('booking', b.ref,
                'action', 'reschedule', 'reason', reason,
                'to', b.starts_at, 'notify', v_notify,
                'force', v_force));

    RETURN bookings_admin_get(b.ref);
END $$;
