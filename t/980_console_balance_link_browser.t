#!/usr/bin/perl
# The console's booking page in a real browser (headless chromium driven by
# python3-selenium): a confirmed booking with a balance due offers "Send
# the balance link", which queues the client's booking_balance_due email
# (POST .../balance-link) and says to whom; a booking with nothing due
# does not offer it.  Skips, saying why, where chromium, chromedriver or
# selenium is missing.

use strict;
use warnings;
use utf8;
use lib 't/lib';
use Test::More;
use Darkroom::Test;
use Darkroom::ConsolePages;
use Darkroom::Bookings qw(bookings_demo);

my $b = Darkroom::ConsolePages::need_browser();
my $t = Darkroom::Test->new;
Darkroom::ConsolePages::start($t,
    server => "location /admin/api/bookings/ { darkroom_bookings_admin; }\n");
my $base = 'http://127.0.0.1:' . $t->port(0);
Darkroom::ConsolePages::owner($t, 'owner@example.com', 'owner-password-1');
bookings_demo($t);
# two confirmed bookings, their deposits paid: one owes 150.00, one nothing
$t->sql(<<'SQL');
INSERT INTO bookings (ref, uid, manage_token, photographer_id,
    session_type_id, state, starts_at, ends_at, busy, client_name,
    client_email, client_time_zone, currency, price, deposit, deposit_paid,
    confirmed_at)
SELECT 'BK-00000' || n, 'bk' || n || '@test', md5(n::text), 'ann',
       'portrait', 'confirmed', s, s + interval '1 hour',
       tstzrange(s, s + interval '1 hour'), 'Cy Client',
       'cy' || n || '@example.com', 'Europe/London', 'GBP', 20000, 5000,
       paid, now()
  FROM (VALUES (1, timestamptz '2027-03-06 10:00Z', 5000),
               (2, timestamptz '2027-03-06 12:00Z', 20000)) v(n, s, paid);
SQL

my $out = Darkroom::ConsolePages::run($t, $b, '980-balance', <<'PY', $base);
login(args[0], 'owner@example.com', 'owner-password-1')
page(args[0], 'booking/BK-000001', '#balance-link-form')
out['offer'] = one('#balance-link-form').text
submit('balance-link-form')
out['sent'] = said('balance-link-form', False)
page(args[0], 'booking/BK-000002', '#cancel-form')
out['none'] = len(css('#balance-link-form'))
PY
is($out->{error}, undef, "the booking's page") or diag explain $out;
like($out->{offer} // '', qr/Due: £150\.00.*Send the balance link/s,
     'the balance due and the button');
is($out->{sent}, 'Link sent to cy1@example.com.', 'sent, to the client');
is($out->{none}, 0, 'nothing due: no button');
is($t->sql_value(q{SELECT count(*) FROM jobs WHERE kind = 'email'
    AND payload->>'template' = 'booking_balance_due'
    AND payload->>'to' = 'cy1@example.com'}), 1,
    'the booking_balance_due email queued');
is($t->sql_value(q{SELECT count(*) FROM console_audit WHERE actor =
    'owner@example.com' AND path = '/admin/api/bookings/bookings/BK-000001/balance-link'
    AND status = 200}), 1, 'audited');

$t->stop;
ok($t->check_sanitizer, 'no sanitizer report');
done_testing;
