#!/usr/bin/perl
# The photographer's private calendar feed (darkroom_bookings_feed):
# GET /bookings/feed/<photographer>.ics?key=<secret>, parsed with Debian's
# python3-icalendar: the confirmed bookings from 30 days ago on, the ones
# cancelled lately as STATUS:CANCELLED, nothing held, expired, older or of
# another photographer.  The key's SHA-256 is in photographers.feed_hash:
# a wrong, missing or revoked key is a 404, as is an unknown photographer;
# a new key (booking_feed_rotate) revokes the old one.  Times carry the
# photographer's TZID, with one VTIMEZONE for the feed.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use JSON::PP;
use Darkroom::Test;

my $PY = '/usr/bin/python3';
plan skip_all => 'no python3-icalendar (make deps)'
    unless -x $PY && system($PY, '-c', 'import icalendar') == 0;

my $t = Darkroom::Test->new;
my $top = $t->top;

$t->sql(<<'SQL');
INSERT INTO photographers (id, name, email, time_zone)
VALUES ('ann', 'Ann Lens', 'ann@example.com', 'Europe/London'),
       ('bob', 'Bob Shutter', 'bob@example.com', 'Europe/Paris');
INSERT INTO session_types (id, photographer_id, name, duration, currency,
                           price, deposit_kind, deposit_percent)
VALUES ('portrait', 'ann', 'Portrait', '1 hour', 'GBP', 20000, 'percent', 25),
       ('bob-portrait', 'bob', 'Portrait', '1 hour', 'EUR', 20000,
        'percent', 25);
-- n, photographer, state, start (days from now), cancelled (days ago)
INSERT INTO bookings (ref, uid, manage_token, photographer_id,
                      session_type_id, state, starts_at, ends_at, busy,
                      held_until, client_name, client_email,
                      client_time_zone, currency, price, deposit,
                      cancelled_at)
SELECT 'BK-00000' || n, 'bk-' || n || '@darkroom.test', md5(n::text), p,
       CASE p WHEN 'ann' THEN 'portrait' ELSE 'bob-portrait' END, st, s,
       s + interval '1 hour', tstzrange(s, s + interval '1 hour'),
       CASE WHEN st = 'held' THEN now() + interval '30 minutes' END,
       'Client ' || n, 'c' || n || '@example.com', 'Europe/London', 'GBP',
       20000, 5000, now() - c * interval '1 day'
  FROM (VALUES (1, 'ann', 'confirmed', 10, NULL),   -- in the feed
               (2, 'ann', 'confirmed', -10, NULL),  -- in: 10 days ago
               (3, 'ann', 'confirmed', -40, NULL),  -- out: 40 days ago
               (4, 'ann', 'cancelled', 12, 2),      -- in, CANCELLED
               (5, 'ann', 'cancelled', 13, 40),     -- out: cancelled long ago
               (6, 'ann', 'held', 14, NULL),        -- out
               (7, 'ann', 'expired', 15, NULL),     -- out
               (8, 'bob', 'confirmed', 10, NULL))   -- out: Bob's
       v(n, p, st, d, c),
       LATERAL (SELECT date_trunc('hour', now()) + d * interval '1 day'
                       AS s) x;
SQL

$t->conf(<<"CONF");
%%MAIN%%
events {}
http {
    %%HTTP%%
    darkroom_db "%%DB%%";
    server {
        listen 127.0.0.1:%%PORT0%%;
        location /bookings/feed/ { darkroom_bookings_feed; }
    }
}
CONF
$t->start;

sub feed {
    my ($who, $key) = @_;
    return $t->http(GET => "/bookings/feed/$who.ics"
        . (defined $key ? "?key=$key" : ''));
}

sub parse {
    my ($bytes) = @_;
    $t->write_file('feed.ics', $bytes);
    my $out = `$PY $top/t/lib/ics_parse.py ${\ $t->dir}/feed.ics`;
    die "ics_parse failed\n" if $?;
    return decode_json($out);
}

# no key set yet: nothing opens it
is(feed('ann', 'a' x 64)->{status}, 404, 'no feed before a key is set');

my $key = $t->sql_value("SELECT booking_feed_rotate('ann')");
like($key, qr/^[0-9a-f]{64}$/, 'a new key: 256 bits of hex');
is($t->sql_value("SELECT feed_hash = encode(sha256(convert_to(:'p1',"
    . " 'UTF8')), 'hex') FROM photographers WHERE id = 'ann'", $key), 't',
    'only its SHA-256 is kept');

my $r = feed('ann', $key);
is($r->{status}, 200, 'the key opens the feed');
like($r->{headers}{'content-type'}, qr{^text/calendar}, 'text/calendar');
like($r->{headers}{'cache-control'}, qr/no-store/, 'kept by no cache');
unlike($r->{content}, qr/(?<!\r)\n/, 'CRLF lines');

my $c = parse($r->{content});
is($c->{calendar}{VERSION}, '2.0', 'a VCALENDAR 2.0');
my %ev = map { $_->{UID} => $_ } @{ $c->{events} };
is_deeply([ sort keys %ev ],
    [ map { "bk-$_\@darkroom.test" } 1, 2, 4 ],
    'confirmed from 30 days ago on and the lately cancelled, nothing else');
is($ev{'bk-1@darkroom.test'}{STATUS}, 'CONFIRMED', 'a confirmed one');
is($ev{'bk-4@darkroom.test'}{STATUS}, 'CANCELLED',
    'a cancelled one: STATUS:CANCELLED');
is($ev{'bk-1@darkroom.test'}{SUMMARY}, 'Portrait: Client 1',
    "the summary names the client");
is($ev{'bk-1@darkroom.test'}{DTSTART},
    $t->sql_value("SELECT to_char(starts_at AT TIME ZONE 'UTC',"
        . " 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM bookings WHERE id = 1"),
    'its start, in UTC');
is_deeply($c->{timezones}, ['Europe/London'],
    "one VTIMEZONE: the photographer's zone");
for my $uid (sort keys %ev) {
    is($ev{$uid}{DTSTART_TZID} . ' ' . $ev{$uid}{DTSTART_VTZ},
       "Europe/London $ev{$uid}{DTSTART}",
       "$uid: its TZID, and the VTIMEZONE gives its instant");
}
is(feed('ann', $key)->{content}, $r->{content},
    'fetched again: the same bytes');

# what does not open it
is(feed('ann', 'b' x 64)->{status}, 404, 'a wrong key: 404');
is(feed('ann', substr($key, 0, 63))->{status}, 404, 'a key one short: 404');
is(feed('ann')->{status}, 404, 'no key: 404');
is(feed('ann', '')->{status}, 404, 'an empty key: 404');
is(feed('bob', $key)->{status}, 404, "Ann's key on Bob's feed: 404");
is(feed('nobody', $key)->{status}, 404, 'an unknown photographer: 404');
is($t->http(GET => "/bookings/feed/ann?key=$key")->{status}, 404,
    'no .ics: 404');
is($t->http(GET => "/bookings/feed/ANN.ics?key=$key")->{status}, 404,
    'a bad photographer id: 404');
is($t->http(POST => "/bookings/feed/ann.ics?key=$key")->{status}, 405,
    'POST: 405');

# a new key revokes the old
my $new = $t->sql_value("SELECT booking_feed_rotate('ann')");
isnt($new, $key, 'another key');
is(feed('ann', $key)->{status}, 404, 'the old key: 404');
is(feed('ann', $new)->{status}, 200, 'the new key opens it');

# revoked: nothing opens it
is($t->sql_value("SELECT booking_feed_revoke('ann')"), 't', 'revoked');
is(feed('ann', $new)->{status}, 404, 'after revoking: 404');
is($t->sql_value("SELECT booking_feed_rotate('nobody') IS NULL"), 't',
    'no key for an unknown photographer');

done_testing;
