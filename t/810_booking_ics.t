#!/usr/bin/perl
# A booking's iCalendar invite (booking_ics() in
# sql/functions/bookings_mail.sql), parsed by Debian's python3-icalendar
# (make deps): METHOD, UID, SEQUENCE, STATUS, text escaped, long lines
# folded at 75 octets, CRLF; the times on the photographer's wall clock
# with TZID and a VTIMEZONE built from PostgreSQL's tz data, which alone
# (its own observances' offsets, not the zone's name) gives the right UTC
# instants on both sides of London's changes in late March and late
# October; a zone without DST has one STANDARD.

use strict;
use warnings;
use utf8;
use lib 't/lib';
use Test::More;
use Darkroom::Test;
use Encode qw(encode);
use JSON::PP;

binmode $_, ':encoding(UTF-8)' for Test::More->builder->output,
    Test::More->builder->failure_output;

my $PY = '/usr/bin/python3';
plan skip_all => 'no python3-icalendar (make deps)'
    unless -x $PY && system($PY, '-c', 'import icalendar') == 0;

my $t = Darkroom::Test->new;
my $top = $t->top;

# a name with ; , \ and a line break; a long description with accents
my $client = "Zoë; A,\\B\nC";
my $type = "Portrait; one, two \\ three";
my $desc = 'Long description é ' x 12;

$t->sql(<<'SQL', map { encode('UTF-8', $_) } $client, $type, $desc);
INSERT INTO photographers (id, name, email, time_zone)
VALUES ('ann', 'Ann Lens', 'ann@example.com', 'Europe/London');
INSERT INTO session_types (id, photographer_id, name, description, duration,
                           currency, price, deposit_kind, deposit_percent,
                           location)
VALUES ('portrait', 'ann', :'p2', :'p3', '1 hour', 'GBP', 20000, 'percent',
        25, 'Studio 4, 1 High St; London');
-- 10:00 London on the day the clocks go forward (BST: 09:00Z), and 10:00
-- on a winter day (GMT: 10:00Z)
INSERT INTO bookings (ref, uid, sequence, manage_token, photographer_id,
                      session_type_id, state, starts_at, ends_at, busy,
                      client_name, client_email, client_time_zone, currency,
                      price, deposit, confirmed_at)
SELECT 'BK-00000' || n, 'bk-' || n || '@darkroom.test', n, md5(n::text),
       'ann', 'portrait', 'confirmed', s, s + interval '1 hour',
       tstzrange(s, s + interval '1 hour'), :'p1', 'zoe@example.com',
       'America/New_York', 'GBP', 20000, 5000, now()
  FROM (VALUES (1, timestamptz '2027-03-28 10:00 Europe/London'),
               (2, timestamptz '2027-01-12 10:00 Europe/London'),
               (3, timestamptz '2027-03-27 10:00 Europe/London'),
               -- the day before the clocks go back (BST), the day itself
               -- (GMT), and 01:30 GMT, the second pass of the repeated hour
               (4, timestamptz '2027-10-30 10:00 Europe/London'),
               (5, timestamptz '2027-10-31 10:00 Europe/London'),
               (6, timestamptz '2027-10-31 01:30Z')) v(n, s);
-- a photographer in a zone without DST
INSERT INTO photographers (id, name, email, time_zone)
VALUES ('kei', 'Kei', 'kei@example.com', 'Asia/Tokyo');
INSERT INTO session_types (id, photographer_id, name, duration, currency,
                           price, deposit_kind, deposit_percent)
VALUES ('tea', 'kei', 'Tea', '1 hour', 'JPY', 20000, 'percent', 25);
INSERT INTO bookings (ref, uid, manage_token, photographer_id,
                      session_type_id, state, starts_at, ends_at, busy,
                      client_name, client_email, client_time_zone, currency,
                      price, deposit, confirmed_at)
VALUES ('BK-000007', 'bk-7@darkroom.test', md5('7'), 'kei', 'tea',
        'confirmed', '2027-03-28 10:00 Asia/Tokyo',
        '2027-03-28 11:00 Asia/Tokyo',
        tstzrange('2027-03-28 10:00 Asia/Tokyo', '2027-03-28 11:00 Asia/Tokyo'),
        'Ann', 'ann@example.com', 'Asia/Tokyo', 'JPY', 20000, 5000, now());
SQL

sub ics {
    my ($id, $method) = @_;
    my $hex = $t->sql_value(
        "SELECT encode(convert_to(booking_ics(id, :'p2'), 'UTF8'), 'hex')"
        . " FROM bookings WHERE ref = :'p1'", $id, $method);
    return pack('H*', $hex);
}

sub parse {
    my ($bytes) = @_;
    $t->write_file('invite.ics', $bytes);
    my $out = `$PY $top/t/lib/ics_parse.py ${\ $t->dir}/invite.ics`;
    die "ics_parse failed\n" if $?;
    return decode_json($out);
}

sub lines_ok {
    my ($bytes, $what) = @_;
    like($bytes, qr/\r\n\z/, "$what ends with CRLF");
    unlike($bytes, qr/(?<!\r)\n/, "$what: every line ends with CRLF");
    my @long = grep { length($_) > 75 } split /\r\n/, $bytes;
    is(scalar @long, 0, "$what: no line over 75 octets");
    ok(utf8::decode(my $copy = $bytes), "$what: folded on characters");
}

my $dst = ics('BK-000001', 'REQUEST');
lines_ok($dst, 'the invite');
like($dst, qr/\ABEGIN:VCALENDAR\r\n/, 'a VCALENDAR');
like($dst, qr/\r\n [^\r]/, 'the long description is folded');

my $c = parse($dst);
is($c->{calendar}{METHOD}, 'REQUEST', 'METHOD:REQUEST');
is($c->{calendar}{VERSION}, '2.0', 'VERSION:2.0');
like($c->{calendar}{PRODID}, qr/darkroom/, 'PRODID');
is(scalar @{ $c->{events} }, 1, 'one VEVENT');
my $e = $c->{events}[0];
is($e->{UID}, 'bk-1@darkroom.test', 'UID is bookings.uid');
is($e->{SEQUENCE}, '1', 'SEQUENCE is bookings.sequence');
is($e->{STATUS}, 'CONFIRMED', 'STATUS:CONFIRMED');
is($e->{DTSTART}, '2027-03-28T09:00:00Z', '10:00 BST is 09:00Z');
is($e->{DTEND}, '2027-03-28T10:00:00Z', 'an hour later');
like($e->{DTSTAMP}, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/, 'DTSTAMP in UTC');
is($e->{SUMMARY}, "$type with Ann Lens", 'SUMMARY: ; , \\ unescaped');
is($e->{LOCATION}, 'Studio 4, 1 High St; London', 'LOCATION');
my $d = $e->{DESCRIPTION};
like($d, qr/^\Q$desc\E\n/, 'the folded description reads back whole');
like($d, qr/\nClient: \Q$client\E <zoe\@example\.com>\nBooking: BK-000001$/,
    "the client's name with ; , \\ and a line break reads back");
is($e->{ORGANIZER}, 'mailto:ann@example.com', 'ORGANIZER');
is($e->{ORGANIZER_CN}, 'Ann Lens', "ORGANIZER's CN");
is($e->{ATTENDEE}, 'mailto:zoe@example.com', 'ATTENDEE');
is($e->{ATTENDEE_CN}, "Zoë; A,\\B C",
    "ATTENDEE's CN: quoted, the line break gone");

# --- the time zone ------------------------------------------------------------
like($dst, qr/\r\nDTSTART;TZID=Europe\/London:20270328T100000\r\n/,
    "DTSTART: 10:00 on the photographer's clock, with its TZID");
like($dst, qr/\r\nDTEND;TZID=Europe\/London:20270328T110000\r\n/, 'DTEND');
$c = parse($dst);
is_deeply($c->{timezones}, ['Europe/London'], 'one VTIMEZONE, of that TZID');
is($e->{DTSTART_TZID}, 'Europe/London', 'DTSTART has the TZID');
is($e->{DTSTART_VTZ}, '2027-03-28T09:00:00Z',
    "by the VTIMEZONE's own offsets, 10:00 BST is 09:00Z");
is($e->{DTEND_VTZ}, '2027-03-28T10:00:00Z', 'and DTEND 10:00Z');
my %obs = map { ($_->{DTSTART} => $_) } @{ $c->{observances}{'Europe/London'} };
is(join(' ', map { "$_->{kind}/$_->{TZOFFSETFROM}/$_->{TZOFFSETTO}/$_->{TZNAME}" }
        $obs{'20270328T010000'} // {}), 'DAYLIGHT/+0000/+0100/BST',
    'the spring change: 01:00 GMT, to BST');
ok((grep { $_->{kind} eq 'STANDARD' && $_->{TZOFFSETTO} eq '+0000' }
    values %obs), 'and a STANDARD observance, GMT');

# the control: the same invite with a VTIMEZONE that lies (+0200 in
# summer) resolves to 08:00Z, while the zone's name still says 09:00Z
(my $liar = $dst) =~ s/TZOFFSETTO:\+0100/TZOFFSETTO:+0200/g;
my $l = parse($liar)->{events}[0];
is($l->{DTSTART_VTZ}, '2027-03-28T08:00:00Z',
    'the VTIMEZONE decides DTSTART_VTZ (a lying one moves it)');
is($l->{DTSTART}, '2027-03-28T09:00:00Z', 'not the name');

# the day before the spring change, and the autumn change
for my $case (
    [ 'BK-000003', '2027-03-27T10:00:00Z', '10:00 GMT the day before' ],
    [ 'BK-000004', '2027-10-30T09:00:00Z', '10:00 BST the day before the'
      . ' clocks go back' ],
    [ 'BK-000005', '2027-10-31T10:00:00Z', '10:00 GMT the day they go back' ],
) {
    my ($ref, $utc, $what) = @$case;
    my $ev = parse(ics($ref, 'REQUEST'))->{events}[0];
    is($ev->{DTSTART_VTZ}, $utc, "$what: $utc by the VTIMEZONE");
    is($ev->{DTSTART}, $utc, "$what: $utc by the name");
}
my $oct = parse(ics('BK-000005', 'REQUEST'));
%obs = map { ($_->{DTSTART} => $_) } @{ $oct->{observances}{'Europe/London'} };
is(join(' ', map { "$_->{kind}/$_->{TZOFFSETFROM}/$_->{TZOFFSETTO}" }
        $obs{'20271031T020000'} // {}), 'STANDARD/+0100/+0000',
    'the autumn change: 02:00 BST, back to GMT');
my $twice = ics('BK-000006', 'REQUEST');
like($twice, qr/\r\nDTSTART:20271031T013000Z\r\n/,
    '01:30 the second time: a wall clock cannot say it, so UTC');
is(parse($twice)->{events}[0]{DTSTART}, '2027-10-31T01:30:00Z',
    'which parses to its instant');

# a zone without DST: one STANDARD
my $tokyo = ics('BK-000007', 'REQUEST');
$c = parse($tokyo);
is_deeply($c->{observances}{'Asia/Tokyo'}, [ { kind => 'STANDARD',
    DTSTART => '19700101T000000', TZOFFSETFROM => '+0900',
    TZOFFSETTO => '+0900', TZNAME => 'JST' } ], 'Tokyo: one STANDARD, +0900');
is($c->{events}[0]{DTSTART_VTZ}, '2027-03-28T01:00:00Z',
    '10:00 in Tokyo is 01:00Z');
lines_ok($tokyo, "Tokyo's invite");

# the day before the change and a winter day: GMT, so 10:00Z
is(parse(ics('BK-000003', 'REQUEST'))->{events}[0]{DTSTART},
    '2027-03-27T10:00:00Z', '10:00 GMT the day before is 10:00Z');
is(parse(ics('BK-000002', 'REQUEST'))->{events}[0]{DTSTART},
    '2027-01-12T10:00:00Z', '10:00 in January is 10:00Z');

# the cancel
my $cancel = ics('BK-000002', 'CANCEL');
lines_ok($cancel, 'the cancel');
$c = parse($cancel);
is($c->{calendar}{METHOD}, 'CANCEL', 'METHOD:CANCEL');
is($c->{events}[0]{STATUS}, 'CANCELLED', 'STATUS:CANCELLED');
is($c->{events}[0]{UID}, 'bk-2@darkroom.test', 'the same UID');
is($c->{events}[0]{SEQUENCE}, '2', 'its SEQUENCE');
is_deeply($c->{timezones}, ['Europe/London'], 'with its VTIMEZONE');
is($c->{events}[0]{DTSTART_VTZ}, '2027-01-12T10:00:00Z',
    'and the instant by it');

# a cancelled booking's invite is cancelled whatever the method
$t->sql("UPDATE bookings SET state = 'cancelled', sequence = sequence + 1,"
    . " cancelled_at = now() WHERE ref = 'BK-000003'");
$e = parse(ics('BK-000003', 'REQUEST'))->{events}[0];
is($e->{STATUS}, 'CANCELLED', 'a cancelled booking is STATUS:CANCELLED');
is($e->{SEQUENCE}, '4', 'its SEQUENCE raised');

is($t->sql_value("SELECT booking_ics(0, 'REQUEST') IS NULL"), 't',
    'no such booking: NULL');
ok(!eval { $t->sql("SELECT booking_ics(1, 'PUBLISH')"); 1 },
    'an unknown method is refused');

# folding never splits a character: 74 ASCII then a 2-octet one
is($t->sql_value("SELECT ics_fold(repeat('a', 74) || chr(233))"
    . " = repeat('a', 74) || E'\\r\\n ' || chr(233) || E'\\r\\n'"), 't',
    'a 2-octet character moves whole');
is($t->sql_value("SELECT ics_fold(repeat('a', 75)) = repeat('a', 75)"
    . " || E'\\r\\n'"), 't', '75 octets stay on one line');

done_testing;
