-- sql/functions/bookings_mail.sql: a booking's iCalendar (RFC 5545) text,
-- for the invite attached to its emails and for the photographer's
-- private feed, and the data a booking email's template sees.
--
-- Times are UTC instants ("20270328T090000Z"): exact whatever the zones of
-- the photographer and the client and across DST, with no VTIMEZONE to
-- keep right; calendars show them in their owner's zone.  Text is escaped
-- (\\ \; \, \n), lines folded at 75 octets (never inside a UTF-8
-- character) and ended by CRLF.
--
-- Tables: bookings, session_types, photographers (read only).  Called by
-- email_context() (mail.sql).


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


-- A booking's VEVENT, folded.  p_cancel: STATUS:CANCELLED whatever its
-- state (the invite of a cancel); otherwise from its state.
CREATE OR REPLACE FUNCTION booking_vevent(p_booking bigint,
    p_cancel boolean, p_stamp timestamptz)
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
               'DTSTART:' || ics_utc(b.starts_at),
               'DTEND:' || ics_utc(b.ends_at),
               'SUMMARY:' || ics_text(t.name || ' with ' || p.name),
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


CREATE OR REPLACE FUNCTION ics_calendar(p_method text, p_events text)
RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT E'BEGIN:VCALENDAR\r\n'
           || E'PRODID:-//darkroom//bookings//EN\r\n'
           || E'VERSION:2.0\r\n'
           || E'CALSCALE:GREGORIAN\r\n'
           || coalesce('METHOD:' || p_method || E'\r\n', '')
           || coalesce(p_events, '')
           || E'END:VCALENDAR\r\n'
$$;


-- The invite of one booking: p_method 'REQUEST' (confirmed, rescheduled,
-- a reminder) or 'CANCEL'.  NULL for an unknown booking.
CREATE OR REPLACE FUNCTION booking_ics(p_booking bigint, p_method text)
RETURNS text LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_event  text;
BEGIN
    IF p_method NOT IN ('REQUEST', 'CANCEL') THEN
        RAISE EXCEPTION 'booking_ics: method % is not REQUEST or CANCEL',
            p_method;
    END IF;
    v_event := booking_vevent(p_booking, p_method = 'CANCEL', now());
    IF v_event IS NULL THEN
        RETURN NULL;
    END IF;
    RETURN ics_calendar(p_method, v_event);
END $$;
