#!/usr/bin/perl
# Moving a booking.  The owner's POST bookings/<ref>/reschedule (the admin
# API): to a slot of the hours without the client's policy (notice,
# horizon, the type's reschedule_hours), outside the hours or over the
# day's cap only with "force", never over another booking (409
# slot_taken) nor into the past; the reason in booking_events and the
# change in the audit log, the client's booking_rescheduled email unless
# "notify": false (its invite: the same UID, the next SEQUENCE, the new
# time); every refusal writes nothing.  The client's
# reschedule keeps every slot rule, max_per_day included (the booking
# moved not counted against itself).  Days are Saturdays and Sundays a few
# weeks from now, times London's wall clock.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use JSON::PP;
use Darkroom::Test;
use Darkroom::Console qw(console_start api);
use Darkroom::Bookings qw(bookings_demo insert_booking);

my $t = Darkroom::Test->new;
console_start($t,
    server => "location /admin/api/bookings/ { darkroom_bookings_admin; }\n"
            . "location /api/bookings/ { darkroom_bookings; }\n");
bookings_demo($t);

my $tok = { bearer => 'admin-token-1' };

# the Saturday 5 weeks or so from now, and the days after it
my $sat = $t->sql_value(q{SELECT (date_trunc('week', now()
    + interval '35 days') + interval '5 days')::date});

# day n after that Saturday at HH:MM in London, as ISO with its offset
sub at {
    my ($n, $hm) = @_;
    return $t->sql_value(q{SELECT bookings_iso(((:'p1'::date + :'p2'::int)
        + :'p3'::time) AT TIME ZONE 'Europe/London', 'Europe/London')},
        $sat, $n, $hm);
}
sub utc { $t->sql_value(q{SELECT bookings_utc(:'p1'::timestamptz)}, $_[0]) }

sub book {
    my ($n, $hm) = @_;
    my $s = at($n, $hm);
    my $id = insert_booking($t, 'portrait', $s, $t->sql_value(
        q{SELECT :'p1'::timestamptz + interval '1 hour'}, $s));
    my ($row) = $t->sql(q{SELECT ref, manage_token FROM bookings
        WHERE id = :'p1'}, $id);
    return { id => $id, ref => $row->[0], token => $row->[1] };
}

sub admin {
    my ($ref, $body) = @_;
    return api($t, $tok,
               POST => "/admin/api/bookings/bookings/$ref/reschedule", $body);
}
sub client {
    my ($b, $start) = @_;
    return $t->http(POST => "/api/bookings/$b->{ref}/reschedule", {
        headers => { 'Content-Type' => 'application/json' },
        content => encode_json({ token => $b->{token}, start => $start }) });
}
sub code { ((($_[0]{json} || {})->{error} || {})->{code}) // '' }

# what a refusal must leave as it was
sub tables {
    return $t->sql_value(q{SELECT concat_ws('|',
        (SELECT md5(coalesce(string_agg(b::text, ',' ORDER BY id), ''))
           FROM bookings b),
        (SELECT count(*) FROM booking_events),
        (SELECT count(*) FROM jobs))});
}
sub refused {
    my ($what, $call, $status, $code) = @_;
    my $before = tables();
    my $r = $call->();
    is($r->{status}, $status, "$what: $status") or diag $r->{content};
    is(code($r), $code, "$what: $code");
    is(tables(), $before, "$what: nothing written");
}
sub start_of {
    utc($t->sql_value(q{SELECT starts_at FROM bookings WHERE id = :'p1'},
        $_[0]{id}));
}

my $a = book(0, '10:00');
my $b = book(0, '12:00');
my $gone = book(1, '16:00');
$t->sql(q{UPDATE bookings SET state = 'cancelled', sequence = 1,
    cancelled_at = now() WHERE id = :'p1'}, $gone->{id});

# --- the owner: bad input and refusals write nothing -------------------------
refused('not JSON', sub { admin($a->{ref}, '{nope') }, 400, 'invalid_json');
refused('a malformed start', sub { admin($a->{ref},
    { start => 'next Saturday 10am', reason => 'x' }) }, 400, 'invalid_start');
refused('a start without its offset', sub { admin($a->{ref},
    { start => "${sat}T14:00:00", reason => 'x' }) }, 400, 'invalid_start');
refused('no start', sub { admin($a->{ref}, { reason => 'x' }) }, 400,
    'invalid_start');
refused('no reason', sub { admin($a->{ref}, { start => at(1, '14:00') }) },
    400, 'invalid_reason');
refused('notify not a boolean', sub { admin($a->{ref},
    { start => at(1, '14:00'), reason => 'x', notify => 'no' }) }, 400,
    'invalid_notify');
refused('force not a boolean', sub { admin($a->{ref},
    { start => at(1, '14:00'), reason => 'x', force => 1 }) }, 400,
    'invalid_force');
refused('an unknown booking', sub { admin('BK-999999',
    { start => at(1, '14:00'), reason => 'x' }) }, 404, 'not_found');
refused('a taken slot', sub { admin($a->{ref},
    { start => at(0, '12:00'), reason => 'x' }) }, 409, 'slot_taken');
refused('a taken slot, forced', sub { admin($a->{ref},
    { start => at(0, '12:30'), reason => 'x', force => JSON::PP::true }) },
    409, 'slot_taken');
refused('outside the hours', sub { admin($a->{ref},
    { start => at(0, '07:00'), reason => 'x' }) }, 400, 'not_available');
refused('off the step', sub { admin($a->{ref},
    { start => at(0, '14:30'), reason => 'x' }) }, 400, 'not_available');
refused('the same time', sub { admin($a->{ref},
    { start => at(0, '10:00'), reason => 'x' }) }, 400, 'same_time');
refused('the past, forced', sub { admin($a->{ref},
    { start => '2020-01-04T10:00:00Z', reason => 'x',
      force => JSON::PP::true }) }, 400, 'past_slot');
refused('a cancelled booking', sub { admin($gone->{ref},
    { start => at(1, '14:00'), reason => 'x' }) }, 409, 'not_reschedulable');

# --- the owner moves a booking -----------------------------------------------
my $r = admin($a->{ref}, { start => at(1, '14:00'),
                           reason => 'The studio is flooded' });
is($r->{status}, 200, 'the owner moves a booking') or diag $r->{content};
my $bk = $r->{json}{booking};
is(utc($bk->{starts_at}), utc(at(1, '14:00')), 'to the new start');
is($bk->{local_start}, "$bk->{local_day}T14:00", "14:00 on the owner's clock");
is($bk->{sequence}, 1, 'SEQUENCE raised');
is($bk->{state}, 'confirmed', 'still confirmed');
my $ev = $bk->{events}[-1];
is($ev->{cause}, 'admin:token', 'the event: by the admin');
is($ev->{detail}{reason}, 'The studio is flooded', 'with the reason');
is($ev->{detail}{rescheduled_from}, utc(at(0, '10:00')), 'from the old time');
is($ev->{detail}{to}, utc(at(1, '14:00')), 'to the new');
is($t->sql_value(q{SELECT count(*) FROM jobs WHERE kind = 'email'
    AND payload->>'template' = 'booking_rescheduled'
    AND payload->>'to' = 'test@example.com'
    AND dedupe_key = 'booking_rescheduled:' || :'p1' || ':1'}, $a->{id}), 1,
    'the client is emailed the new invite');
# the invite that email carries: the same UID, the new SEQUENCE and time
my $PY = '/usr/bin/python3';
SKIP: {
    skip 'no python3-icalendar (make deps)', 4
        unless -x $PY && system($PY, '-c', 'import icalendar') == 0;
    my $hex = $t->sql_value(q{SELECT encode(convert_to(
        booking_email_context('booking_rescheduled', payload)
            #>> '{attachments,0,content}', 'UTF8'), 'hex')
        FROM jobs WHERE dedupe_key = 'booking_rescheduled:' || :'p1' || ':1'},
        $a->{id});
    $t->write_file('invite.ics', pack('H*', $hex // ''));
    my $top = $t->top;
    my $c = decode_json(`$PY $top/t/lib/ics_parse.py ${\ $t->dir}/invite.ics`
                        || '{}');
    my $e = ($c->{events} || [])->[0] || {};
    is($c->{calendar}{METHOD}, 'REQUEST', 'the invite: METHOD:REQUEST');
    is($e->{UID}, $t->sql_value(q{SELECT uid FROM bookings WHERE id = :'p1'},
        $a->{id}), 'its UID unchanged');
    is($e->{SEQUENCE}, '1', 'SEQUENCE 1');
    is($e->{DTSTART_VTZ}, utc(at(1, '14:00')), 'the new start');
}
is($t->sql_value(q{SELECT actor || ' ' || method || ' ' || path || ' '
    || status FROM console_audit ORDER BY id DESC LIMIT 1}),
    "token POST /admin/api/bookings/bookings/$a->{ref}/reschedule 200",
    'the change is in the audit log');
my $ad = decode_json($t->sql_value(q{SELECT detail FROM console_audit
    ORDER BY id DESC LIMIT 1}) || '{}');
is_deeply([ @$ad{qw(booking action reason)} ],
    [ $a->{ref}, 'reschedule', 'The studio is flooded' ],
    '... with the booking, the action and the reason');
is($t->sql_value(q{SELECT count(*) FROM console_audit
    WHERE path LIKE '%/reschedule' AND status = 409 AND detail IS NULL}), 3,
    'a refusal has no detail');
is($t->sql_value(q{SELECT count(*) FROM console_audit
    WHERE path LIKE '%/reschedule' AND status = 409}), 3,
    'the refusals too, with their status');
is($t->sql_value(q{SELECT upper(busy) = ends_at AND lower(busy) = starts_at
    FROM bookings WHERE id = :'p1'}, $a->{id}), 't', 'its busy time moved');

# the old time is free again: the client's slot list offers it
my $slots = $t->http(GET => "/api/bookings/slots?type=portrait&from=$sat"
    . "&to=$sat&tz=Europe/London")->{json}{slots};
ok((grep { $_->{start} eq at(0, '10:00') } @$slots),
    'the old time is offered again');

# outside the hours with force, and without telling the client
$r = admin($a->{ref}, { start => at(1, '07:30'), reason => 'Sunrise shoot',
    force => JSON::PP::true, notify => JSON::PP::false });
is($r->{status}, 200, 'forced outside the hours') or diag $r->{content};
is($r->{json}{booking}{sequence}, 2, 'SEQUENCE 2');
my $dt = $r->{json}{booking}{events}[-1]{detail};
is(($dt->{force} ? 'forced' : '') . '/' . ($dt->{notify} ? 'told' : 'quiet'),
    'forced/quiet', 'the event says forced, not notified');
is($t->sql_value(q{SELECT count(*) FROM jobs
    WHERE dedupe_key = 'booking_rescheduled:' || :'p1' || ':2'}, $a->{id}),
    0, 'notify false: no email');

# the client's policy does not bind the owner: notice, horizon, too late
my $soon = book(-100, '10:00');    # placeholder day, moved below
$t->sql(q{UPDATE bookings SET starts_at = now() + interval '3 hours',
    ends_at = now() + interval '4 hours',
    busy = tstzrange(now() + interval '3 hours', now() + interval '4 hours')
    WHERE id = :'p1'}, $soon->{id});
is(code(client($soon, at(7, '10:00'))), 'too_late',
    'the client cannot move it inside reschedule_hours');
$t->sql(q{UPDATE photographers SET min_notice = '400 days'});
is(code(client($b, at(7, '11:00'))), 'not_available',
    'nor to a time inside min_notice');
$r = admin($soon->{ref}, { start => at(7, '10:00'),
                           reason => 'Asked by phone' });
is($r->{status}, 200, 'the owner can, inside reschedule_hours and min_notice')
    or diag $r->{content};
# a session under way: the client cannot move it, the owner can
my $begun = book(-100, '12:00');
$t->sql(q{UPDATE bookings SET starts_at = now() - interval '30 minutes',
    ends_at = now() + interval '30 minutes',
    busy = tstzrange(now() - interval '30 minutes',
                     now() + interval '30 minutes')
    WHERE id = :'p1'}, $begun->{id});
is(code(client($begun, at(7, '12:00'))), 'started',
    'the client cannot move a session under way');
$r = admin($begun->{ref}, { start => at(7, '12:00'), reason => 'Rain' });
is($r->{status}, 200, 'the owner can') or diag $r->{content};
$t->sql(q{UPDATE photographers SET min_notice = '0', horizon = '20 days'});
$r = admin($b->{ref}, { start => at(7, '11:00'), reason => 'Later' });
is($r->{status}, 200, 'and beyond the horizon') or diag $r->{content};
$t->sql(q{UPDATE photographers SET horizon = '2 years'});

# --- max_per_day -------------------------------------------------------------
# two a day at most: Saturday +14 has two bookings
$t->sql(q{UPDATE photographers SET max_per_day = 2});
my $c = book(14, '10:00');
my $d = book(14, '11:00');
my $e = book(15, '10:00');
my $f = book(15, '12:00');

refused('the owner, to a full day', sub { admin($a->{ref},
    { start => at(14, '14:00'), reason => 'x' }) }, 409, 'day_full');
refused('the client, to a full day', sub { client($e, at(14, '14:00')) },
    409, 'day_full');
is(start_of($e), utc(at(15, '10:00')), 'the client stays where it was');

$r = client($e, at(15, '15:00'));
is($r->{status}, 200, 'the client moves within a full day: not counted'
    . ' against itself') or diag $r->{content};
is(start_of($e), utc(at(15, '15:00')), 'moved');
$r = admin($c->{ref}, { start => at(14, '15:00'), reason => 'Light' });
is($r->{status}, 200, 'the owner too') or diag $r->{content};
$r = admin($a->{ref}, { start => at(14, '14:00'), reason => 'Squeezed in',
    force => JSON::PP::true });
is($r->{status}, 200, 'force goes over the cap') or diag $r->{content};
is($t->sql_value(q{SELECT count(*) FROM bookings WHERE state = 'confirmed'
    AND (starts_at AT TIME ZONE 'Europe/London')::date = :'p1'::date + 14},
    $sat), 3, 'three that day');

# the client keeps the other slot rules: exceptions, hours
$t->sql(q{INSERT INTO booking_exceptions (photographer_id, day, kind)
    VALUES ('ann', :'p1'::date + 21, 'closed')}, $sat);
refused('the client, to a closed day', sub { client($e, at(21, '10:00')) },
    400, 'not_available');
refused('the client, outside the hours', sub { client($e, at(23, '13:00')) },
    400, 'not_available');
refused('the client, over another booking', sub { client($e,
    at(15, '12:00')) }, 409, 'slot_taken');

done_testing;
