#!/usr/bin/perl
# The whole demo booking in a real browser (headless chromium driven by
# python3-selenium), on a configuration like make run's: the demo's
# photographer, types and hours (conf/demo-bookings.sql), the Stripe
# sandbox, the mail sandbox speaking Resend's API.  A visitor in New York
# picks a type and a slot on book.html, answers the questions and pays the
# deposit on the sandbox's payment page; the sandbox's signed webhook
# confirms the booking; the client's booking_confirmed email arrives with
# invite.ics (parsed by python3-icalendar: the slot's instant, through the
# VTIMEZONE too); the photographer's ICS feed lists the booking.  The
# page Stripe returns to is not this test's.  Skips, saying why, where
# chromium, chromedriver, selenium or python3-icalendar is missing.

use strict;
use warnings;
use utf8;
use lib 't/lib';
use Test::More;
use JSON::PP;
use Darkroom::Test qw(wait_for);
use Darkroom::ConsolePages;
use Darkroom::Mail;
use Darkroom::Stripe qw(sandbox);
use Darkroom::Bookings qw(bookings_conf);

binmode $_, ':encoding(UTF-8)' for Test::More->builder->output,
    Test::More->builder->failure_output;
my $b = Darkroom::ConsolePages::need_browser();
plan skip_all => 'no python3-icalendar (make deps)'
    unless system($b->{py}, '-c', 'import icalendar') == 0;

my $t = Darkroom::Test->new;
my $port = $t->port(0);
my $top = $t->top;
my $mail = Darkroom::Mail::sandbox($t);
my $mailconf = Darkroom::Mail::mail_conf($t, $mail, 'resend');
bookings_conf($t, stripe => 'http://127.0.0.1:' . $t->port(1),
    http => "include /etc/nginx/mime.types;\n$mailconf",
    server => "root $top/www;\n"
            . "location /bookings/feed/ { darkroom_bookings_feed; }\n");
my $sb = sandbox($t, webhook => "http://127.0.0.1:$port/webhooks/stripe");
# as t/982: GET slots must not wait on a JIT compile on a loaded machine
$t->db;
$t->sql("ALTER DATABASE $t->{dbname} SET jit = off");
$t->start;

# make run's bookings: conf/demo-bookings.sql, and the feed's key
my $demo = do { local (@ARGV, $/) = ("$top/conf/demo-bookings.sql"); <> };
$t->sql($demo);
my $key = $t->sql_value("SELECT booking_feed_rotate('studio')");
my $base = "http://127.0.0.1:$port";

sub parse {
    my ($text, $name) = @_;
    my $bytes = $text;
    utf8::encode($bytes) if utf8::is_utf8($bytes);
    $t->write_file($name, $bytes);
    my $out = `$b->{py} $top/t/lib/ics_parse.py ${\ $t->dir}/$name`;
    die "ics_parse failed\n" if $?;
    return decode_json($out);
}

my $out = Darkroom::ConsolePages::run($t, $b, '981-flow', <<'PY', $base, $sb->{url});
b.execute_cdp_cmd('Emulation.setTimezoneOverride',
                  {'timezoneId': 'America/New_York'})
b.get(args[0] + '/book.html')
one('button[data-type="portrait"]').send_keys(Keys.ENTER)
d = one('#days .day')
out['day'] = d.get_attribute('data-day')
d.click()
# the day's last slot: clear of the 24 hours' notice passing meanwhile
one('#slots .slot')
s = css('#slots .slot')[-1]
out['slot'] = s.get_attribute('data-start')
out['slot_text'] = s.text
s.click()
Select(one('#q-people')).select_by_visible_text('2')
el('q-notes').send_keys('Our dog comes too')
el('b-name').send_keys('Ada Flow')
el('b-email').send_keys('ada.flow@example.com')
el('book-submit').click()
wait.until(lambda d: d.current_url.startswith(args[1] + '/pay/'))
out['pay_url'] = b.current_url
out['pay_page'] = b.find_element(By.TAG_NAME, 'body').text[:2000]
b.find_element(By.CSS_SELECTOR, 'button.pay').click()
wait.until(lambda d: not d.current_url.startswith(args[1] + '/pay/'))
out['returned'] = b.current_url
PY
is($out->{error}, undef, 'the browser booked and paid') or diag explain $out;
like($out->{slot} // '', qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:00-0[45]:00$/,
     "a slot in New York's time: $out->{slot}");
like($out->{pay_url} // '', qr{^\Q$sb->{url}\E/pay/cs_},
     "the sandbox's payment page");
like($out->{pay_page} // '', qr/£45\.00/, 'for the deposit: 30% of £150.00');
like($out->{returned} // '', qr{^\Q$base\E/}, 'paid, sent back to the shop');

# the sandbox's signed webhook confirms the booking
my $ref = $t->sql_value(q{SELECT ref FROM bookings
    WHERE client_email = 'ada.flow@example.com'});
ok($ref, "the booking made: $ref");
ok(wait_for(sub { $t->sql_value(q{SELECT state FROM bookings
        WHERE ref = :'p1'}, $ref) eq 'confirmed' }, 30),
   'the webhook confirmed it') or diag $t->error_log;
my ($bk) = $t->sql(q{SELECT uid, sequence, bookings_utc(starts_at),
    client_time_zone, answers->>'people', answers->>'notes', deposit_paid,
    (SELECT cause FROM booking_events e WHERE e.booking_id = b.id
        AND e.to_state = 'confirmed')
    FROM bookings b WHERE ref = :'p1'}, $ref);
my ($uid, $seq, $start_utc) = @$bk;
is($start_utc, $t->sql_value(q{SELECT bookings_utc(:'p1'::timestamptz)},
    $out->{slot} // 'epoch'), 'at the slot picked');
is_deeply([ @$bk[3 .. 6] ], [ 'America/New_York', '2', 'Our dog comes too',
    4500 ], "the visitor's zone, the answers, the deposit paid");
like($bk->[7] // '', qr/^stripe:evt_/, 'confirmed by the Stripe event');

# the booking_confirmed email, with its invite
my $m = wait_for(sub { (grep { ($_->{to} || [])->[0] eq 'ada.flow@example.com'
    && $_->{subject} =~ /is booked/ } $mail->messages)[0] }, 30);
ok($m, 'the confirmation email reached the mail sandbox')
    or diag $t->error_log;
SKIP: {
    skip 'no email', 12 unless $m;
    like($m->{subject}, qr/^Your Portrait session is booked: /, 'its subject');
    like($m->{text}, qr/\Q$out->{slot_text}\E.*\(America\/New_York\)/,
         "the time in the client's zone, as the page showed it");
    my ($a) = grep { $_->{filename} eq 'invite.ics' }
        @{ $m->{attachments} || [] };
    ok($a, 'invite.ics attached');
    is($a->{content_type}, 'text/calendar; method=REQUEST; charset=UTF-8',
       'text/calendar; method=REQUEST');
    my $c = parse($a->{content}, 'invite.ics');
    my $e = $c->{events}[0] || {};
    is($c->{calendar}{METHOD}, 'REQUEST', 'METHOD:REQUEST');
    is($e->{UID}, $uid, "the booking's UID");
    is($e->{SEQUENCE}, "$seq", 'its SEQUENCE');
    is($e->{STATUS}, 'CONFIRMED', 'STATUS:CONFIRMED');
    is($e->{DTSTART}, $start_utc, 'DTSTART: the instant booked');
    is($e->{DTSTART_TZID}, 'Europe/London', "in the photographer's zone");
    is($e->{DTSTART_VTZ}, $start_utc, 'the same instant by its VTIMEZONE');
    like($e->{SUMMARY} // '', qr/^Portrait session with Harbour Light Studio$/,
         'SUMMARY');
}

# the photographer's feed lists it
my $r = $t->http(GET => "/bookings/feed/studio.ics?key=$key");
is($r->{status}, 200, 'the feed opens with its key');
my $f = parse($r->{content}, 'feed.ics');
my ($fe) = grep { $_->{UID} eq $uid } @{ $f->{events} };
ok($fe, 'the feed lists the booking');
is(join(' | ', map { $_ // '' } @{$fe || {}}{qw(STATUS SUMMARY DTSTART
    DTSTART_VTZ)}),
   "CONFIRMED | Portrait session: Ada Flow | $start_utc | $start_utc",
   'confirmed, the client named, at its instant');

$t->stop;
ok($t->check_sanitizer, 'no sanitizer report');
done_testing;
