#!/usr/bin/perl
# The public booking page (www/book.html) in a real browser (headless
# chromium driven by python3-selenium), the browser in New York's time zone:
# the session types with their prices, the days with free time and their
# slots in the visitor's zone (as GET slots gives them for that zone), the
# type's questions (a required one refused when empty), then the deposit's
# checkout on the Stripe sandbox.  The booking held is the slot shown, with
# the visitor's zone and answers.  At 375 px the page does not scroll
# sideways.  Skips, saying why, where chromium, chromedriver or selenium is
# missing.

use strict;
use warnings;
use utf8;
use lib 't/lib';
use Test::More;
use JSON::PP;
use Darkroom::Test;
use Darkroom::ConsolePages;
use Darkroom::Stripe qw(sandbox);
use Darkroom::Bookings qw(bookings_conf bookings_demo);

binmode $_, ':encoding(UTF-8)' for Test::More->builder->output,
    Test::More->builder->failure_output;
my $b = Darkroom::ConsolePages::need_browser();
my $t = Darkroom::Test->new;
my $port = $t->port(0);
my $top = $t->top;
bookings_conf($t, stripe => 'http://127.0.0.1:' . $t->port(1),
    http => "include /etc/nginx/mime.types;\n",
    server => "root $top/www;\n");
my $sb = sandbox($t, webhook => "http://127.0.0.1:$port/webhooks/stripe");
# GET slots' plan is costed so high that PostgreSQL JIT-compiles it, about
# a second a call on a loaded machine, and darkroom_db_timeout is 3s here:
# not what this test is about (reported to the slots' owner)
$t->db;
$t->sql("ALTER DATABASE $t->{dbname} SET jit = off");
$t->start;
bookings_demo($t);
my $base = "http://127.0.0.1:$port";

# what the server offers a visitor in New York over the next week
my $today = $t->sql_value(q{SELECT (now() AT TIME ZONE 'America/New_York')::date});
my $to = $t->sql_value(q{SELECT (now() AT TIME ZONE 'America/New_York')::date + 6});
my $slots = $t->http(GET => "/api/bookings/slots?type=portrait&from=$today"
    . "&to=$to&tz=America/New_York")->{json}{slots};
ok(@{$slots // []}, 'the server has free slots') or BAIL_OUT('no slots');
my $first = $slots->[0];

my $out = Darkroom::ConsolePages::run($t, $b, '982-book', <<'PY', $base, $sb->{url});
b.execute_cdp_cmd('Emulation.setTimezoneOverride',
                  {'timezoneId': 'America/New_York'})
b.get(args[0] + '/')
out['link'] = one('a[href="/book.html"]').text
b.get(args[0] + '/book.html')
t = one('button[data-type="portrait"]')
out['types'] = [x.text for x in css('#types .type')]
t.send_keys(Keys.ENTER)
d = one('#days .day')
out['tz'] = el('tz-name').text
out['day'] = d.get_attribute('data-day')
d.click()
s = one('#slots .slot')
out['slot'] = s.get_attribute('data-start')
out['slot_text'] = s.text
s.click()
one('#q-who')
out['questions'] = [x.text for x in css('#questions label')]
el('b-name').send_keys('Nora York')
el('b-email').send_keys('nora@example.com')
el('book-submit').click()
wait.until(lambda d: el('book-error').is_displayed())
out['missing'] = el('book-error').text
el('q-who').send_keys('My parents')
el('book-submit').click()
wait.until(lambda d: d.current_url.startswith(args[1] + '/pay/'))
out['landed'] = b.current_url
b.execute_cdp_cmd('Emulation.setDeviceMetricsOverride', {
    'width': 375, 'height': 800, 'deviceScaleFactor': 2, 'mobile': True})
b.get(args[0] + '/book.html')
one('button[data-type="portrait"]').send_keys(Keys.ENTER)
one('#days .day').send_keys(Keys.ENTER)
one('#slots .slot')
out['wide'] = b.execute_script(
    'return [document.documentElement.scrollWidth, window.innerWidth]')
PY
is($out->{error}, undef, 'the booking page');
is($out->{link}, 'Book a session', 'linked from the shop');
is(scalar @{$out->{types} // []}, 2, 'the two active types');
like($out->{types}[0] // '', qr/Portrait.*60 minutes.*£200\.00.*£50\.00/s,
     'the type, its price and deposit');
is($out->{tz}, 'America/New_York', "the visitor's zone");
is($out->{day}, substr($first->{start}, 0, 10), 'the first day with time');
is($out->{slot}, $first->{start}, 'the first slot, as the server gives it');
is($out->{slot_text}, substr($first->{start}, 11, 5), 'in New York time');
like(join('|', @{$out->{questions} // []}), qr/Who is it for\?\|Notes \(optional\)/,
     'the questions');
like($out->{missing} // '', qr/Who is it for/, 'a required answer missing');
like($out->{landed} // '', qr{^\Q$sb->{url}\E/pay/cs_}, 'on to Stripe');
my ($scroll, $inner) = @{$out->{wide} // [0, 0]};
is($inner, 375, '375 px wide');
ok($scroll <= $inner, "no sideways scroll ($scroll)");

my ($bk) = $t->sql(q{SELECT state, client_name, client_email,
    client_time_zone, answers->>'who', starts_at = :'p1'::timestamptz,
    deposit FROM bookings}, $first->{start_utc});
is_deeply($bk, ['held', 'Nora York', 'nora@example.com', 'America/New_York',
                'My parents', 't', 5000], 'the booking held: the slot shown');

$t->stop;
ok($t->check_sanitizer, 'no sanitizer report');
done_testing;
