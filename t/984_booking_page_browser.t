#!/usr/bin/perl
# The client's booking page (www/booking.html) in a real browser (headless
# chromium driven by python3-selenium): Stripe's return after the deposit
# waits there for the webhook's confirmation; opened from the link of the
# booking_confirmed email (the mail sandbox), it shows the session in the
# client's zone, the deposit paid and the balance due; Pay the balance goes
# to the Stripe sandbox's checkout, paying there comes back to the page,
# which waits for the webhook ("Payment received, confirming") and then
# shows it paid; Reschedule moves it to a slot of the week picker; Cancel
# says beforehand what is refunded and cancels with the reason given.  At
# 375 px the page does not scroll sideways.  Skips, saying why, where
# chromium, chromedriver or selenium is missing.

use strict;
use warnings;
use utf8;
use lib 't/lib';
use Test::More;
use JSON::PP;
use Darkroom::Test qw(wait_for);
use Darkroom::ConsolePages;
use Darkroom::Stripe qw(sandbox);
use Darkroom::Bookings qw(bookings_conf bookings_demo);
use Darkroom::Mail;

binmode $_, ':encoding(UTF-8)' for Test::More->builder->output,
    Test::More->builder->failure_output;
my $b = Darkroom::ConsolePages::need_browser();
my $t = Darkroom::Test->new;
my $port = $t->port(0);
my $top = $t->top;
my $base = "http://127.0.0.1:$port";
my $mail = Darkroom::Mail::sandbox($t);
(my $mailconf = Darkroom::Mail::mail_conf($t, $mail, 'postmark'))
    =~ s{http://shop\.example/}{$base/};
bookings_conf($t, stripe => 'http://127.0.0.1:' . $t->port(1),
    secrets => ['whsec_sandbox_secret'],
    http => "include /etc/nginx/mime.types;\n$mailconf",
    server => "root $top/www;\n");
my $sb = sandbox($t, webhook => "$base/webhooks/stripe");
# as t/982: GET slots without JIT, whatever the machine's load
$t->db;
$t->sql("ALTER DATABASE $t->{dbname} SET jit = off");
$t->start;
bookings_demo($t);

# a slot ten days ahead or more, in London, booked and its deposit paid
my $from = $t->sql_value(q{SELECT (now() AT TIME ZONE 'Europe/London')::date
    + 10});
my $slots = $t->http(GET => "/api/bookings/slots?type=portrait&from=$from"
    . "&to=" . $t->sql_value("SELECT :'p1'::date + 14", $from)
    . "&tz=Europe/London")->{json}{slots};
ok(@{$slots // []}, 'free slots ahead') or BAIL_OUT('no slots');
my $r = $t->http(POST => '/api/bookings/book', {
    headers => { 'Content-Type' => 'application/json' },
    content => encode_json({ type => 'portrait', start => $slots->[0]{start},
        name => 'Nora York', email => 'nora@example.com',
        time_zone => 'Europe/London', answers => { who => 'Nora' } }) });
is($r->{status}, 201, 'booked') or diag $r->{content};
my $bk = $r->{json}{booking};

# the deposit paid on the sandbox's page: back on the booking's page,
# which waits for the webhook
my $dep = Darkroom::ConsolePages::run($t, $b, '984-deposit', <<'PY',
b.get(args[0])
one('button.pay').click()
wait.until(lambda d: 'booking.html' in d.current_url)
out['back'] = b.current_url
wait.until(lambda d: 'confirmed' in el('bk-status').text)
out['status'] = el('bk-status').text
out['state'] = el('bk-state').text
out['deposit'] = el('bk-deposit').text
PY
    $r->{json}{checkout_url});
is($dep->{error}, undef, "the deposit's checkout") or diag explain $dep;
like($dep->{back} // '', qr{/booking\.html\?ref=\Q$bk->{ref}\E&token=\w+},
     "Stripe's return: the booking's page");
is($dep->{status}, 'Payment confirmed. Thank you!',
   'the page waited for the webhook');
is_deeply([ @$dep{qw(state deposit)} ], ['Confirmed', '£50.00, paid'],
    'confirmed, the deposit paid');
sub state { $t->sql_value("SELECT state FROM bookings WHERE ref = :'p1'",
    $bk->{ref}) }
is(state(), 'confirmed', 'its deposit paid');

# the link of the confirmation email
my $link;
ok(wait_for(sub {
    my ($m) = grep { $_->{subject} =~ /is booked/ } $mail->messages;
    ($link) = ($m->{text} // '') =~ m{(\Q$base\E/booking\.html\?\S+)};
    $link }, 30), "the confirmation email's link: " . ($link // ''))
    or do { diag explain [ map { [$_->{subject}, $_->{to}] }
                 $mail->messages ];
            diag explain [ $t->sql("SELECT kind, dead, attempts,"
                . " last_error, payload::text FROM jobs") ];
            BAIL_OUT('no link') };

my $out = Darkroom::ConsolePages::run($t, $b, '984-booking', <<'PY', $link, $sb->{url});
def text(id):
    return read(lambda: el(id).text)
b.get(args[0])
wait.until(lambda d: el('bk-summary').is_displayed())
for k in ('bk-ref', 'bk-type', 'bk-when', 'bk-state', 'bk-price',
          'bk-deposit', 'bk-paid', 'bk-balance', 'bk-policy'):
    out[k] = text(k)
out['actions'] = [x.text for x in css('#bk-actions .actions button')
                  if x.is_displayed()]
# pay the balance on the sandbox, and back
el('pay-balance').send_keys(Keys.ENTER)
wait.until(lambda d: d.current_url.startswith(args[1] + '/pay/'))
out['checkout'] = b.find_element(By.TAG_NAME, 'h1').text
one('button.pay').click()
wait.until(lambda d: 'booking.html' in d.current_url)
out['back'] = b.current_url
out['confirming'] = text('bk-status')
wait.until(lambda d: 'confirmed' in el('bk-status').text)
out['confirmed'] = text('bk-status')
out['balance_after'] = text('bk-balance')
out['paid_after'] = text('bk-paid')
# reschedule: the first free time of the week picker
el('open-reschedule').send_keys(Keys.ENTER)
one('#r-days .day').send_keys(Keys.ENTER)
s = one('#r-slots .slot')
out['new_start'] = s.get_attribute('data-start')
s.send_keys(Keys.ENTER)
wait.until(lambda d: el('r-submit').is_enabled())
el('r-submit').send_keys(Keys.ENTER)
wait.until(lambda d: 'Moved' in el('bk-status').text)
out['moved'] = text('bk-status')
# cancel with a reason
el('open-cancel').send_keys(Keys.ENTER)
out['refund_note'] = text('cancel-refund')
out['reason_label'] = one('label[for="cancel-reason"]').text
el('cancel-reason').send_keys('Our plans changed')
el('cancel-submit').send_keys(Keys.ENTER)
wait.until(lambda d: 'cancelled' in el('bk-status').text)
out['cancelled'] = text('bk-status')
out['state_after'] = text('bk-state')
b.execute_cdp_cmd('Emulation.setDeviceMetricsOverride', {
    'width': 375, 'height': 800, 'deviceScaleFactor': 2, 'mobile': True})
b.get(args[0])
wait.until(lambda d: el('bk-summary').is_displayed())
out['wide'] = b.execute_script(
    'return [document.documentElement.scrollWidth, window.innerWidth]')
PY
is($out->{error}, undef, 'the booking page') or diag explain $out;
is($out->{'bk-ref'}, $bk->{ref}, 'the booking of the link');
like($out->{'bk-type'} // '', qr/Portrait with Ann Adams/, 'its session');
like($out->{'bk-when'} // '',
     qr/\Q@{[ substr($slots->[0]{start}, 11, 5) ]}\E.*\(Europe\/London\)/,
     "its time in the client's zone");
is($out->{'bk-state'}, 'Confirmed', 'confirmed');
is($out->{'bk-price'}, '£200.00', 'the price');
is($out->{'bk-deposit'}, '£50.00, paid', 'the deposit paid');
is($out->{'bk-balance'}, '£150.00', 'the balance due');
like($out->{'bk-policy'} // '', qr/refunded on a cancel until \S/,
     'until when the deposit is refundable');
is_deeply($out->{actions}, ['Pay the balance (£150.00)', 'Reschedule',
                            'Cancel the booking'], 'what the client can do');
like($out->{checkout} // '', qr/Pay £150\.00/, "the sandbox's checkout");
# &paid=1 until the page has seen the payment (then it drops it)
like($out->{back} // '',
     qr{/booking\.html\?ref=\Q$bk->{ref}\E&token=\w+(&paid=1)?$},
     'back on the booking page');
like($out->{confirming} // '', qr/Payment (received, confirming|confirmed)/,
     'waiting for the webhook, then confirmed');
like($out->{confirmed} // '', qr/Payment confirmed/, 'the payment confirmed');
is($out->{balance_after}, '£0.00', 'nothing due any more');
is($out->{paid_after}, '£200.00', 'all paid');
like($out->{moved} // '', qr/^Moved to /, 'rescheduled');
like($out->{refund_note} // '',
     qr/The balance you paid \(£150\.00\) will be refunded/,
     'the cancel says beforehand what is refunded');
is($out->{reason_label}, 'Why are you cancelling? (optional)', 'labelled');
like($out->{cancelled} // '', qr/Your booking is cancelled/, 'cancelled');
is($out->{state_after}, 'Cancelled', '... and shown so');
my ($scroll, $inner) = @{$out->{wide} // [0, 0]};
is($inner, 375, '375 px wide');
ok($scroll <= $inner, "no sideways scroll ($scroll)");

my ($row) = $t->sql(q{SELECT state, cancel_reason, balance_paid,
    starts_at = :'p1'::timestamptz FROM bookings WHERE ref = :'p2'},
    $out->{new_start} // '', $bk->{ref});
is_deeply($row, ['cancelled', 'Our plans changed', 15000, 't'],
    'the booking: moved, cancelled with the reason, its balance paid');
is($t->sql_value(q{SELECT count(*) FROM jobs j JOIN bookings b
    ON j.payload->>'order_id' = b.balance_order_id::text
    WHERE j.kind = 'stripe_refund' AND b.ref = :'p1'}, $bk->{ref}), 1,
    'the balance refunded');

$t->stop;
ok($t->check_sanitizer, 'no sanitizer report');
done_testing;
