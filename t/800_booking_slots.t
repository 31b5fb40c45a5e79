#!/usr/bin/perl
# Bookings: the session types on offer and the free slots of a type,
# computed in SQL from the weekly hours and the dated exceptions, minus
# live bookings with their buffers, min_notice, the horizon and
# max_per_day; right across the DST changes of Europe/London, asked in
# the photographer's zone and in another; bad input 400, nothing written.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Darkroom::Test;
use Darkroom::Stripe qw(fake_api);
use Darkroom::Bookings qw(bookings_conf bookings_demo insert_booking);

my $t = Darkroom::Test->new;
my $stripe = fake_api($t);
bookings_conf($t, stripe => $stripe->url);
bookings_demo($t);
$t->start;

sub slots {
    my ($q) = @_;
    my $r = $t->http(GET => "/api/bookings/slots?$q");
    is($r->{status}, 200, "slots?$q") or diag $r->{content};
    return $r->{json};
}
sub starts { [ map { $_->{start} } @{ slots(@_)->{slots} } ] }
sub hours {
    [ map { /T(\d\d:\d\d)/ ? $1 : $_ } @{ starts(@_) } ]
}

# --- types ------------------------------------------------------------------
my $r = $t->http(GET => '/api/bookings/types');
is($r->{status}, 200, 'types');
is_deeply([ map { $_->{id} } @{ $r->{json}{types} } ], [qw(portrait buffered)],
    'the active types by position');
my ($p, $b) = @{ $r->{json}{types} };
is($p->{duration_minutes}, 60, 'duration in minutes');
is($p->{price}, 20000, 'price in minor units');
is($p->{deposit}, 5000, 'a fixed deposit');
is($b->{deposit}, 3750, 'a percent deposit: 25% of 150.00');
is($p->{currency}, 'GBP', 'currency');
is($p->{questions}[0]{id}, 'who', 'the questions');
is_deeply($p->{photographer},
    { id => 'ann', name => 'Ann Adams', time_zone => 'Europe/London' },
    'the photographer');

# --- weekly hours: Monday 09:00-12:00 ---------------------------------------
is_deeply(hours('type=portrait&from=2027-03-01&to=2027-03-01'),
    [qw(09:00 10:00 11:00)], 'Monday: three hour slots');
is_deeply(hours('type=portrait&from=2027-03-02&to=2027-03-05'), [],
    'no hours Tuesday to Friday');
my $j = slots('type=portrait&from=2027-03-01&to=2027-03-01');
is($j->{time_zone}, 'Europe/London', "the photographer's zone by default");
is($j->{type}, 'portrait', 'the type');
is_deeply($j->{slots}[0], { start => '2027-03-01T09:00:00+00:00',
    end => '2027-03-01T10:00:00+00:00', start_utc => '2027-03-01T09:00:00Z' },
    'a slot: start, end, start_utc');
is(scalar @{ hours('type=buffered&from=2027-03-01&to=2027-03-01') }, 5,
    'every 30 minutes: 09:00 to 11:00');

# --- exceptions -------------------------------------------------------------
$t->sql(<<'SQL');
INSERT INTO booking_exceptions (photographer_id, day, kind, starts, ends)
VALUES ('ann', '2027-03-08', 'closed', NULL, NULL),
       ('ann', '2027-03-15', 'closed', '10:00', '11:00'),
       ('ann', '2027-03-22', 'open', '14:00', '16:00'),
       ('ann', '2027-03-03', 'open', '10:00', '12:00');
SQL
is_deeply(hours('type=portrait&from=2027-03-08&to=2027-03-08'), [],
    'a closed day: nothing');
is_deeply(hours('type=portrait&from=2027-03-15&to=2027-03-15'),
    [qw(09:00 11:00)], 'a closed period: not inside it');
is_deeply(hours('type=portrait&from=2027-03-22&to=2027-03-22'),
    [qw(14:00 15:00)], 'an open exception replaces the weekly hours');
is_deeply(hours('type=portrait&from=2027-03-03&to=2027-03-03'),
    [qw(10:00 11:00)], 'an open exception on a day with no hours');

# --- buffers and live bookings ----------------------------------------------
insert_booking($t, 'portrait', '2027-04-05 10:00+01', '2027-04-05 11:00+01');
is_deeply(hours('type=portrait&from=2027-04-05&to=2027-04-05'),
    [qw(09:00 11:00)], 'a confirmed booking takes its hour');
insert_booking($t, 'portrait', '2027-04-10 10:00+01', '2027-04-10 11:00+01');
is_deeply(hours('type=portrait&from=2027-04-10&to=2027-04-10'),
    [qw(09:00 11:00 12:00 13:00 14:00 15:00 16:00)],
    'Saturday: no buffers, right before and after');
is(hours('type=buffered&from=2027-04-10&to=2027-04-10')->[0], '11:30',
    '15 minutes buffers: nothing from 09:00 to 11:00 would keep clear');
is(scalar @{ hours('type=buffered&from=2027-04-10&to=2027-04-10') }, 10,
    '... then every 30 minutes to 16:00');
insert_booking($t, 'portrait', '2027-04-12 10:00+01', '2027-04-12 11:00+01',
    state => 'held');
is_deeply(hours('type=portrait&from=2027-04-12&to=2027-04-12'),
    [qw(09:00 11:00)], 'a live hold takes its hour');
insert_booking($t, 'portrait', '2027-04-19 10:00+01', '2027-04-19 11:00+01',
    state => 'held', held_until => '2026-01-01 00:00Z');
is_deeply(hours('type=portrait&from=2027-04-19&to=2027-04-19'),
    [qw(09:00 10:00 11:00)], 'a hold past its time does not');
insert_booking($t, 'portrait', '2027-04-26 10:00+01', '2027-04-26 11:00+01',
    state => 'expired', held_until => '2026-01-01 00:00Z');
is_deeply(hours('type=portrait&from=2027-04-26&to=2027-04-26'),
    [qw(09:00 10:00 11:00)], 'nor an expired one');

# --- max_per_day ------------------------------------------------------------
$t->sql("UPDATE photographers SET max_per_day = 1");
is_deeply(hours('type=portrait&from=2027-04-05&to=2027-04-05'), [],
    'max_per_day 1: the day of a booking is full');
is_deeply(hours('type=portrait&from=2027-04-19&to=2027-04-19'),
    [qw(09:00 10:00 11:00)], 'an expired hold does not count');
$t->sql("UPDATE photographers SET max_per_day = 2");
is_deeply(hours('type=portrait&from=2027-04-05&to=2027-04-05'),
    [qw(09:00 11:00)], 'max_per_day 2: room for one more');
$t->sql("UPDATE photographers SET max_per_day = NULL");

# --- min_notice and horizon, relative to now ---------------------------------
$t->sql(<<'SQL');
INSERT INTO booking_hours (photographer_id, weekday, starts, ends)
SELECT 'ann', d, '00:00', '23:59' FROM generate_series(2, 5) d;
DELETE FROM booking_hours WHERE weekday IN (1, 6, 7);
INSERT INTO booking_hours (photographer_id, weekday, starts, ends)
SELECT 'ann', d, '00:00', '23:59' FROM generate_series(1, 7) d
 WHERE d IN (1, 6, 7);
UPDATE photographers SET min_notice = '3 days', horizon = '10 days';
SQL
my ($today, $in14) = map { $t->sql_value(
    "SELECT (now() AT TIME ZONE 'Europe/London')::date + $_") } 0, 14;
my $s = slots("type=portrait&from=$today&to=$in14")->{slots};
ok(@$s > 100, 'slots in the next two weeks: ' . scalar @$s);
my ($first, $last) = map { $t->sql_value(
    "SELECT extract(epoch FROM :'p1'::timestamptz - now())", $_) }
    $s->[0]{start_utc}, $s->[-1]{start_utc};
ok($first >= 3 * 86400 && $first < 3 * 86400 + 3600,
    "the first slot is min_notice ahead ($first s)");
ok($last <= 10 * 86400 && $last > 10 * 86400 - 3600,
    "the last slot is within the horizon ($last s)");
$t->sql("UPDATE photographers SET min_notice = '0', horizon = '2 years'");
$t->sql("DELETE FROM booking_hours WHERE weekday BETWEEN 2 AND 5");
$t->sql("UPDATE booking_hours SET starts = '09:00', ends = '17:00'");

# --- DST: Europe/London changes on 2027-03-28 and 2027-10-31 ------------------
my $utc = sub { [ map { $_->{start_utc} } @{ slots(@_)->{slots} } ] };
my $mar = slots('type=portrait&from=2027-03-27&to=2027-03-28')->{slots};
is($mar->[0]{start}, '2027-03-27T09:00:00+00:00', 'Saturday: 09:00 GMT');
is($mar->[0]{start_utc}, '2027-03-27T09:00:00Z', '... 09:00 UTC');
is($mar->[8]{start}, '2027-03-28T09:00:00+01:00', 'Sunday: 09:00 BST');
is($mar->[8]{start_utc}, '2027-03-28T08:00:00Z', '... 08:00 UTC');
is($mar->[15]{start}, '2027-03-28T16:00:00+01:00', 'the last at 16:00 BST');
is(scalar @$mar, 16, 'eight slots each day');
my $oct = slots('type=portrait&from=2027-10-30&to=2027-10-31')->{slots};
is($oct->[0]{start_utc}, '2027-10-30T08:00:00Z', 'Saturday in BST: 08:00 UTC');
is($oct->[8]{start}, '2027-10-31T09:00:00+00:00', 'Sunday: 09:00 GMT');
is($oct->[8]{start_utc}, '2027-10-31T09:00:00Z', '... 09:00 UTC');

# the same slots asked in New York (on EDT since 2027-03-14)
my $ny = slots('type=portrait&from=2027-03-27&to=2027-03-28'
    . '&tz=America/New_York');
is($ny->{time_zone}, 'America/New_York', 'the asked zone');
is($ny->{slots}[0]{start}, '2027-03-27T05:00:00-04:00',
    'Saturday 09:00 London is 05:00 in New York');
is($ny->{slots}[8]{start}, '2027-03-28T04:00:00-04:00',
    'Sunday 09:00 London is 04:00 in New York');
is_deeply([ map { $_->{start_utc} } @{ $ny->{slots} } ],
    [ map { $_->{start_utc} } @$mar ], 'the same instants');
# a day is the asked zone's: Tokyo's Sunday 28 is from Saturday 15:00 UTC
# to Sunday 15:00 UTC
my $tk = slots('type=portrait&from=2027-03-28&to=2027-03-28&tz=Asia/Tokyo');
is($tk->{slots}[0]{start}, '2027-03-28T00:00:00+09:00',
    "Tokyo's Sunday starts with London's Saturday 15:00");
is(scalar @{ $tk->{slots} }, 2 + 7,
    "... and ends with Sunday's before 15:00 UTC");

# --- bad input: 400, nothing written ------------------------------------------
sub counts { $t->sql_value("SELECT (SELECT count(*) FROM bookings) || '/'"
    . " || (SELECT count(*) FROM orders) || '/'"
    . " || (SELECT count(*) FROM jobs)") }
my $before = counts();
for my $case (
    [ 'type=nope&from=2027-03-01&to=2027-03-02', 'unknown_type' ],
    [ 'type=retired&from=2027-03-01&to=2027-03-02', 'unknown_type' ],
    [ 'from=2027-03-01&to=2027-03-02', 'unknown_type' ],
    [ 'type=portrait&from=2027-02-30&to=2027-03-02', 'bad_date' ],
    [ 'type=portrait&from=01/03/2027&to=2027-03-02', 'bad_date' ],
    [ 'type=portrait&to=2027-03-02', 'bad_date' ],
    [ 'type=portrait&from=2027-03-01&to=2027-03-01x', 'bad_date' ],
    [ 'type=portrait&from=2027-03-05&to=2027-03-01', 'bad_range' ],
    [ 'type=portrait&from=2027-03-01&to=2027-04-02', 'bad_range' ],
    [ 'type=portrait&from=2027-03-01&to=2027-03-02&tz=Mars/Base',
      'bad_time_zone' ],
    [ "type=portrait&from=2027-03-01&to=2027-03-02&tz=Europe%2FLondon'",
      'bad_time_zone' ],
) {
    my $r = $t->http(GET => "/api/bookings/slots?$case->[0]");
    is($r->{status}, 400, "400: $case->[0]");
    is($r->{json}{error}{code}, $case->[1], "... $case->[1]");
}
ok(scalar @{ hours('type=portrait&from=2027-03-01&to=2027-04-01') },
    'a range of 31 days is fine');
is(counts(), $before, 'nothing written');
is($t->http(GET => '/api/bookings/nothing')->{status}, 404, 'unknown route');
is($t->http(DELETE => '/api/bookings/types')->{status}, 404, 'wrong method');

done_testing;
