#!/usr/bin/perl
# The bookings admin API (darkroom_bookings_admin): photographers, session
# types, the weekly hours, exceptions, the bookings by day or week, a
# booking with its events and its cancel by the owner.  Each route answers;
# each bad input is a 400 with its own code and leaves the tables as they
# were; a staff session works with its CSRF token and is refused (403)
# without it; a read key reads and cannot change; each change is audited.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use JSON::PP;
use Darkroom::Test;
use Darkroom::Console qw(console_start account login api);

my $t = Darkroom::Test->new;
console_start($t,
    server => "location /admin/api/bookings/ { darkroom_bookings_admin; }\n");

my $B = '/admin/api/bookings/';
my $tok = { bearer => 'admin-token-1' };

sub call {
    my ($method, $path, $body, $who) = @_;
    return api($t, $who // $tok, $method, $B . $path, $body);
}

sub code {
    my ($r) = @_;
    return (($r->{json} || {})->{error} || {})->{code} // '';
}

# every table the API writes, as one string: a refused call changes none
sub tables {
    return $t->sql_value(q{SELECT concat_ws('|',
        (SELECT md5(coalesce(string_agg(p::text, ',' ORDER BY id), ''))
           FROM photographers p),
        (SELECT md5(coalesce(string_agg(s::text, ',' ORDER BY id), ''))
           FROM session_types s),
        (SELECT md5(coalesce(string_agg(h::text, ',' ORDER BY id), ''))
           FROM booking_hours h),
        (SELECT md5(coalesce(string_agg(x::text, ',' ORDER BY id), ''))
           FROM booking_exceptions x),
        (SELECT md5(coalesce(string_agg(b::text, ',' ORDER BY id), ''))
           FROM bookings b),
        (SELECT count(*) FROM booking_events),
        (SELECT count(*) FROM jobs))});
}

sub refused {
    my ($method, $path, $body, $status, $code, $name) = @_;
    my $before = tables();
    my $r = call($method, $path, $body);
    is($r->{status}, $status, "$name: $status") or diag($r->{content});
    is(code($r), $code, "$name: $code");
    is(tables(), $before, "$name: nothing written");
}

# ------------------------------------------------------------ photographers

my $r = call(POST => 'photographers/anna', { name => 'Anna Field',
    email => 'anna@example.com', time_zone => 'Europe/London' });
is($r->{status}, 200, 'a photographer') or diag($r->{content});
is($r->{json}{photographer}{min_notice_hours}, 24, 'default notice');
is($r->{json}{photographer}{horizon_days}, 90, 'default horizon');

$r = call(POST => 'photographers/anna', { min_notice_hours => 12,
    horizon_days => 60, max_per_day => 3 });
is($r->{status}, 200, 'changed') or diag($r->{content});
is($t->sql_value(q{SELECT min_notice || ' ' || horizon || ' ' || max_per_day
    || ' ' || name FROM photographers}), '12:00:00 60 days 3 Anna Field',
    'the members given changed, the rest kept');

refused(POST => 'photographers/anna', { time_zone => 'Mars/Olympus' },
        400, 'invalid_time_zone', 'unknown time zone');
refused(POST => 'photographers/anna', { email => 'nope' },
        400, 'invalid_email', 'bad email');
refused(POST => 'photographers/anna', { min_notice_hours => -1 },
        400, 'invalid_min_notice', 'negative notice');
refused(POST => 'photographers/anna', { horizon_days => 'ten' },
        400, 'invalid_horizon', 'horizon not a number');
refused(POST => 'photographers/anna', { max_per_day => 0 },
        400, 'invalid_max_per_day', 'max_per_day 0');
refused(POST => 'photographers/Bad_Id', { name => 'x' },
        400, 'invalid_id', 'bad id');
refused(POST => 'photographers/bob', { name => 'Bob' },
        400, 'invalid_email', 'a new one needs its email');
refused(POST => 'photographers/anna', '{not json',
        400, 'invalid_json', 'not JSON');

$r = call(GET => 'photographers');
is($r->{status}, 200, 'GET photographers');
is(scalar @{$r->{json}{photographers}}, 1, 'one photographer');

# ---------------------------------------------------------------- types

my %portrait = (photographer => 'anna', name => 'Portrait session',
    duration_minutes => 60, buffer_after_minutes => 15, currency => 'GBP',
    price => 15000, deposit_kind => 'percent', deposit_percent => 30,
    questions => [ { id => 'people', label => 'How many people?',
                     kind => 'choice', choices => ['1', '2', '3+'],
                     required => JSON::PP::true } ]);
$r = call(POST => 'types/portrait', \%portrait);
is($r->{status}, 200, 'a session type') or diag($r->{content});
is($r->{json}{type}{deposit}, 4500, '30% of 150.00');
is($r->{json}{type}{slot_step_minutes}, 30, 'default step');
is($r->{json}{type}{balance_due_hours}, 72, 'the balance link 72 hours before');

$r = call(POST => 'types/portrait', { deposit_kind => 'fixed',
                                      deposit_amount => 5000 });
is($r->{status}, 200, 'a fixed deposit') or diag($r->{content});
is($t->sql_value(q{SELECT deposit_kind || deposit_amount || ' '
    || coalesce(deposit_percent::text, '-') || ' ' || name
    FROM session_types}), 'fixed5000 - Portrait session', 'changed');

# when the balance link is emailed: hours before, or null for never
$r = call(POST => 'types/portrait', { balance_due_hours => 24 });
is($r->{json}{type}{balance_due_hours}, 24, 'balance_due_hours 24')
    or diag($r->{content});
is($t->sql_value(q{SELECT balance_due_hours FROM session_types
    WHERE id = 'portrait'}), 24, '... stored');
$r = call(POST => 'types/portrait', { name => 'Portrait session' });
is($r->{json}{type}{balance_due_hours}, 24, '... kept by a change of another');
$r = call(POST => 'types/portrait', { balance_due_hours => undef });
is($r->{status}, 200, 'balance_due_hours null') or diag($r->{content});
is($t->sql_value(q{SELECT coalesce(balance_due_hours::text, 'never')
    FROM session_types WHERE id = 'portrait'}), 'never', '... never sent');
ok(exists $r->{json}{type}{balance_due_hours}
   && !defined $r->{json}{type}{balance_due_hours}, '... answered as null');
$r = call(POST => 'types/portrait', { balance_due_hours => 72 });

for my $bad (
    [ { duration_minutes => 10 }, 'invalid_duration', 'too short' ],
    [ { duration_minutes => 60.5 }, 'invalid_duration', 'not whole' ],
    [ { buffer_before_minutes => -5 }, 'invalid_buffer', 'negative buffer' ],
    [ { buffer_after_minutes => 721 }, 'invalid_buffer', 'long buffer' ],
    [ { price => 0 }, 'invalid_price', 'price 0' ],
    [ { price => '150.00' }, 'invalid_price', 'price a string' ],
    [ { deposit_amount => 20000 }, 'invalid_deposit', 'deposit > price' ],
    [ { deposit_kind => 'percent', deposit_percent => 0 },
      'invalid_deposit', 'percent 0' ],
    [ { deposit_kind => 'percent', deposit_percent => 101 },
      'invalid_deposit', 'percent 101' ],
    [ { deposit_kind => 'some' }, 'invalid_deposit', 'deposit kind' ],
    [ { currency => 'gbp' }, 'invalid_currency', 'currency' ],
    [ { questions => {} }, 'invalid_questions', 'questions an object' ],
    [ { questions => [ { id => 'a', label => 'A' },
                       { id => 'a', label => 'B' } ] },
      'invalid_questions', 'duplicate question id' ],
    [ { questions => [ { id => 'a', label => 'A', kind => 'choice' } ] },
      'invalid_questions', 'choice without choices' ],
    [ { questions => [ { id => 'a', label => '', kind => 'text' } ] },
      'invalid_questions', 'empty label' ],
    [ { photographer => 'nobody' }, 'invalid_photographer',
      'unknown photographer' ],
    [ { name => '' }, 'invalid_name', 'empty name' ],
    [ { online => 'yes' }, 'invalid_online', 'online not boolean' ],
    [ { refund_hours => -1 }, 'invalid_policy', 'refund hours' ],
    [ { balance_due_hours => 0 }, 'invalid_balance_due', 'balance due 0' ],
    [ { balance_due_hours => 8761 }, 'invalid_balance_due',
      'balance due over a year' ],
    [ { balance_due_hours => '72' }, 'invalid_balance_due',
      'balance due a string' ],
) {
    refused(POST => 'types/portrait', $bad->[0], 400, $bad->[1],
            "type: $bad->[2]");
}
refused(POST => 'types/family', { name => 'Family' }, 400,
        'invalid_photographer', 'a new type needs everything');

$r = call(GET => 'types');
is($r->{status}, 200, 'GET types');
is_deeply([ map { $_->{id} } @{$r->{json}{types}} ], ['portrait'],
          'the types');
is($r->{json}{types}[0]{questions}[0]{choices}[2], '3+', 'its questions');

# ---------------------------------------------------------------- hours

$r = call(PUT => 'hours/anna', [
    { weekday => 1, starts => '09:00', ends => '12:00' },
    { weekday => 1, starts => '13:00', ends => '17:30' },
    { weekday => 3, starts => '10:00', ends => '16:00' } ]);
is($r->{status}, 200, 'PUT hours') or diag($r->{content});
is($t->sql_value('SELECT count(*) FROM booking_hours'), 3, 'three periods');

refused(PUT => 'hours/anna', [
    { weekday => 2, starts => '09:00', ends => '12:00' },
    { weekday => 2, starts => '11:30', ends => '14:00' } ],
    400, 'overlapping_hours', 'overlapping periods');
refused(PUT => 'hours/anna', [ { weekday => 8, starts => '09:00',
                                 ends => '12:00' } ],
    400, 'invalid_weekday', 'weekday 8');
refused(PUT => 'hours/anna', [ { weekday => 2, starts => '9am',
                                 ends => '12:00' } ],
    400, 'invalid_time', 'a bad time');
refused(PUT => 'hours/anna', [ { weekday => 2, starts => '12:00',
                                 ends => '09:00' } ],
    400, 'invalid_hours', 'ends before it starts');
refused(PUT => 'hours/anna', { week => [] }, 400, 'invalid_hours',
        'not a list');
refused(PUT => 'hours/nobody', [], 404, 'not_found', 'unknown photographer');

$r = call(GET => 'hours?photographer=anna');
is($r->{status}, 200, 'GET hours');
is(join(' ', map { "$_->{weekday}:$_->{starts}-$_->{ends}" }
        @{$r->{json}{hours}}), '1:09:00-12:00 1:13:00-17:30 3:10:00-16:00',
   'the week');
is(call(GET => 'hours')->{status}, 400, 'hours without a photographer');

# ------------------------------------------------------------ exceptions

$r = call(POST => 'exceptions', { photographer => 'anna',
    day => '2027-03-01', note => 'holiday' });
is($r->{status}, 200, 'a blackout day') or diag($r->{content});
my $xid = $r->{json}{exception}{id};
is($r->{json}{exception}{kind}, 'closed', 'closed all day');

refused(POST => 'exceptions', { photographer => 'anna', day => '2027-02-30' },
        400, 'invalid_date', 'no such day');
refused(POST => 'exceptions', { photographer => 'anna', day => '2027-03-02',
                                kind => 'open' },
        400, 'invalid_time', 'open without times');
refused(POST => 'exceptions', { photographer => 'anna', day => '2027-03-02',
                                kind => 'maybe' },
        400, 'invalid_kind', 'bad kind');
refused(POST => 'exceptions', { photographer => 'x', day => '2027-03-02' },
        400, 'invalid_photographer', 'unknown photographer');

$r = call(GET => 'exceptions?photographer=anna');
is($r->{status}, 200, 'GET exceptions');
is(scalar @{$r->{json}{exceptions}}, 1, 'one exception');

$r = call(DELETE => "exceptions/$xid");
is($r->{status}, 200, 'DELETE exception') or diag($r->{content});
is($t->sql_value('SELECT count(*) FROM booking_exceptions'), 0, 'gone');
refused(DELETE => "exceptions/$xid", undef, 404, 'not_found',
        'deleted twice');

# -------------------------------------------------------------- bookings

$t->sql(q{INSERT INTO bookings (ref, uid, manage_token, photographer_id,
        session_type_id, state, starts_at, ends_at, busy, held_until,
        client_name, client_email, client_time_zone, currency, price,
        deposit, answers)
    VALUES ('BK-000001', 'bk1@test', md5('1'), 'anna', 'portrait',
        'confirmed', '2027-03-29 09:00Z', '2027-03-29 10:00Z',
        tstzrange('2027-03-29 09:00Z', '2027-03-29 10:15Z'), NULL,
        'Cleo Client', 'cleo@example.com', 'America/New_York', 'GBP', 15000,
        5000, '{"people": "2"}'),
      ('BK-000002', 'bk2@test', md5('2'), 'anna', 'portrait', 'held',
        '2027-03-31 09:00Z', '2027-03-31 10:00Z',
        tstzrange('2027-03-31 09:00Z', '2027-03-31 10:15Z'),
        '2027-03-31 08:00Z', 'Hal Held', 'hal@example.com', 'Europe/London',
        'GBP', 15000, 5000, '{}')});

# the week of Monday 29 March 2027 (London on summer time: 10:00 local)
$r = call(GET => 'bookings?from=2027-03-29&to=2027-04-04');
is($r->{status}, 200, 'GET bookings of a week') or diag($r->{content});
is(join(' ', map { "$_->{ref}:$_->{local_start}" } @{$r->{json}{bookings}}),
   'BK-000001:2027-03-29T10:00 BK-000002:2027-03-31T10:00',
   'in the photographer\'s time');
$r = call(GET => 'bookings?from=2027-03-31&to=2027-03-31');
is(scalar @{$r->{json}{bookings}}, 1, 'a day');
$r = call(GET => 'bookings?from=2027-03-29&to=2027-04-04&state=held');
is(join(' ', map { $_->{ref} } @{$r->{json}{bookings}}), 'BK-000002',
   'by state');
is(code(call(GET => 'bookings?from=2027-03-29&to=2027-06-29')),
   'invalid_range', 'too long a range');
is(code(call(GET => 'bookings?from=29/03/2027')), 'invalid_date',
   'a bad date');
is(code(call(GET => 'bookings?from=2027-03-29&state=lost')),
   'invalid_state', 'a bad state');

$r = call(GET => 'bookings/BK-000001');
is($r->{status}, 200, 'GET a booking');
is($r->{json}{booking}{answers}{people}, '2', 'its answers');
is_deeply($r->{json}{booking}{events}, [], 'no event yet');
is(call(GET => 'bookings/BK-999999')->{status}, 404, 'unknown booking');

refused(POST => 'bookings/BK-000001/cancel', { reason => '' }, 400,
        'invalid_reason', 'cancel without a reason');
refused(POST => 'bookings/BK-000001/cancel', {}, 400,
        'invalid_reason', 'cancel with no reason at all');
refused(POST => 'bookings/BK-999999/cancel', { reason => 'x' }, 404,
        'not_found', 'cancel an unknown booking');

# staff: with the CSRF token; without it 403 and nothing changes
account($t, 'staff@example.com', 'staff');
my $l = login($t, 'staff@example.com');
my $staff = { sid => $l->{sid}, csrf => $l->{csrf} };
my $before = tables();
$r = call(POST => 'bookings/BK-000001/cancel', { reason => 'x' },
          { sid => $l->{sid} });
is($r->{status}, 403, 'staff without the CSRF token: 403');
is(code($r), 'csrf_required', 'csrf_required');
is(tables(), $before, 'nothing changed');

$r = call(POST => 'bookings/BK-000001/cancel',
          { reason => 'The photographer is ill' }, $staff);
is($r->{status}, 200, 'staff cancels') or diag($r->{content});
my $b = $r->{json}{booking};
is($b->{state}, 'cancelled', 'cancelled');
is($b->{sequence}, 1, 'SEQUENCE raised');
is($b->{cancelled_by}, 'admin', 'by the admin');
is(scalar @{$b->{events}}, 1, 'one event');
is($b->{events}[0]{cause}, 'admin:staff@example.com', 'its cause');
is($b->{events}[0]{from_state} . '>' . $b->{events}[0]{to_state},
   'confirmed>cancelled', 'its states');
is($b->{events}[0]{detail}{reason}, 'The photographer is ill',
   'its reason');
is($t->sql_value("SELECT count(*) FROM jobs WHERE kind = 'email' AND"
    . " payload->>'template' = 'booking_cancelled' AND dedupe_key ="
    . " 'booking_cancelled:' || (SELECT id FROM bookings WHERE ref ="
    . " 'BK-000001') || ':1'"), 1,
   "the client's booking_cancelled email queued, as a client's cancel does");
refused(POST => 'bookings/BK-000001/cancel', { reason => 'again' }, 409,
        'not_cancellable', 'cancelled twice');

# a held one is cancelled too, with the bearer token
$r = call(POST => 'bookings/BK-000002/cancel', { reason => 'Double booked' });
is($r->{status}, 200, 'a hold cancelled') or diag($r->{content});
is($r->{json}{booking}{events}[0]{from_state}, 'held', 'from held');

# a read key reads and cannot change
account($t, 'owner@example.com', 'owner');
my $o = login($t, 'owner@example.com');
my $key = api($t, { sid => $o->{sid}, csrf => $o->{csrf} }, POST => 'keys',
    { name => 'ro', scopes => ['read'] })->{json}{secret};
is(call(GET => 'types', undef, { bearer => $key })->{status}, 200,
   'a read key reads');
$before = tables();
is(call(POST => 'types/portrait', { name => 'X' },
        { bearer => $key })->{status}, 403, 'a read key cannot change');
is(tables(), $before, 'nothing changed');
is(call(GET => 'types', undef, { bearer => 'wrong' })->{status}, 401,
   'a wrong token: 401');

# routes and methods
is(call(GET => 'nothing')->{status}, 404, 'no such route');
is(call(DELETE => 'types')->{status}, 405, 'no such method');

# the audit log: each change, by whom, with its status
is($t->sql_value(q{SELECT count(*) FROM console_audit
    WHERE path LIKE '/admin/api/bookings/%' AND method <> 'GET'}) > 20, 1,
   'the changes are audited');
is($t->sql_value(q{SELECT actor || ' ' || method || ' ' || path || ' '
    || status FROM console_audit WHERE actor = 'staff@example.com'
    AND path LIKE '/admin/api/bookings/%' ORDER BY id DESC LIMIT 1}),
   'staff@example.com POST /admin/api/bookings/bookings/BK-000001/cancel 200',
   'the staff cancel audited');
is($t->sql_value(q{SELECT concat_ws('|', detail->>'booking',
    detail->>'action', detail->>'reason') FROM console_audit
    WHERE actor = 'staff@example.com' AND path LIKE '%/BK-000001/cancel'
    AND status = 200}),
   'BK-000001|cancel|The photographer is ill',
   '... with its booking and reason');
is($t->sql_value(q{SELECT count(*) FROM console_audit
    WHERE path LIKE '%/BK-000001/cancel' AND status = 409
    AND detail IS NULL}), 1, 'the refused second cancel: no detail');
is($t->sql_value(q{SELECT count(*) FROM console_audit
    WHERE path LIKE '%/cancel' AND detail->>'reason' = 'Double booked'}), 1,
   "the token's cancel: its reason too");
is($t->sql_value(q{SELECT count(*) FROM console_audit WHERE detail IS NOT NULL
    AND path NOT LIKE '%/cancel'}), 0, 'no other row has a detail');
is($t->sql_value(q{SELECT count(*) FROM console_audit
    WHERE path = '/admin/api/bookings/types/portrait' AND status = 400}) > 0,
   1, 'refusals audited with their status');

$t->stop;
ok($t->check_sanitizer, 'no sanitizer report');
done_testing;
