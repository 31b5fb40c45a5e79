#!/usr/bin/perl
# Bookings end to end against tools/stripe-sandbox: the deposit's payment
# page is the sandbox's, paying it there sends the signed webhook that
# confirms the booking; a deposit paid after its hold lost its time is
# refunded once through the sandbox's refund endpoint, with the job's
# idempotency key, and the sandbox's charge.refunded comes back.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use JSON::PP;
use Darkroom::Test qw(wait_for);
use Darkroom::Stripe qw(sandbox);
use Darkroom::Bookings qw(bookings_conf bookings_demo);

my $t = Darkroom::Test->new;
my $port = $t->port(0);
bookings_conf($t, stripe => 'http://127.0.0.1:' . $t->port(1),
    secrets => ['whsec_sandbox_secret']);
my $sb = sandbox($t, webhook => "http://127.0.0.1:$port/webhooks/stripe");
bookings_demo($t);
$t->start;

sub book {
    my ($start, $email) = @_;
    my $r = $t->http(POST => '/api/bookings/book', {
        headers => { 'Content-Type' => 'application/json' },
        content => encode_json({ type => 'portrait', start => $start,
            name => 'Ada', email => $email, answers => { who => 'Ada' } }) });
    is($r->{status}, 201, "booked $start") or diag $r->{content};
    my ($sid) = ($r->{json}{checkout_url} // '') =~ m{/pay/(cs_\w+)$};
    return { %{ $r->{json}{booking} || {} }, session => $sid,
             url => $r->{json}{checkout_url} };
}
sub state { $t->sql_value("SELECT state FROM bookings WHERE ref = :'p1'",
    $_[0]{ref}) }
sub refunds { grep { $_->{path} eq '/v1/refunds' && $_->{method} eq 'POST' }
    @{ $sb->control(GET => '/_sandbox/requests') } }

# --- paid at the sandbox: confirmed --------------------------------------------
my $a = book('2027-03-06T10:00:00Z', 'ada@example.com');
ok($a->{session}, "the sandbox's payment page: $a->{url}");
like($a->{url}, qr{^http://127\.0\.0\.1:\d+/pay/cs_}, '... on the sandbox');
my @s = grep { $_->{path} eq '/v1/checkout/sessions' }
    @{ $sb->control(GET => '/_sandbox/requests') };
is($s[0]{status}, 200, 'the sandbox took the session');
$sb->control(POST => "/_sandbox/pay/$a->{session}", { action => 'pay' });
ok(wait_for(sub { state($a) eq 'confirmed' }, 20),
    'the webhook confirmed the booking');
is($t->sql_value("SELECT count(*) FROM jobs WHERE dedupe_key LIKE"
    . " 'booking_confirmed:%'"), 1, 'one confirmation email queued');
# one payment, one email: the booking's confirmation is its receipt, the
# shop queues no receipt of its own for the deposit order
my %mails = map { @$_ } $t->sql("SELECT payload->>'template', count(*)"
    . " FROM jobs WHERE kind = 'email' GROUP BY 1");
is_deeply(\%mails, { booking_confirmed => 1 },
    'the email jobs of the paid booking: one booking_confirmed, no receipt')
    or diag explain \%mails;

# --- paid late, its time taken: refunded once -----------------------------------
my $d = book('2027-03-06T12:00:00Z', 'dan@example.com');
$t->sql("UPDATE bookings SET held_until = now() - interval '1 minute'"
    . " WHERE ref = :'p1'", $d->{ref});
my $e = book('2027-03-06T12:00:00Z', 'eve@example.com');
is(state($d), 'expired', 'the first hold lost its time');
$sb->control(POST => "/_sandbox/pay/$d->{session}", { action => 'pay' });
ok(wait_for(sub { scalar refunds() >= 1 }, 30), 'a refund reached the sandbox');
my $key = $t->sql_value("SELECT payload->>'idempotency_key' FROM jobs"
    . " WHERE kind = 'stripe_refund'");
my @re = refunds();
is(scalar @re, 1, 'one refund request');
is($re[0]{headers}{'idempotency-key'}, $key, 'with the idempotency key');
is($re[0]{status}, 200, 'taken');
is(state($d), 'expired', 'the late booking stays expired');
is(state($e), 'held', 'the new one keeps the time');
ok(wait_for(sub { $t->sql_value("SELECT amount_refunded FROM orders o"
    . " JOIN bookings b ON b.deposit_order_id = o.id WHERE b.ref = :'p1'",
    $d->{ref}) == 5000 }, 20), "the sandbox's charge.refunded recorded");
is($t->sql_value("SELECT count(*) FROM booking_events e JOIN bookings b"
    . " ON b.id = e.booking_id WHERE b.ref = :'p1'"
    . " AND e.detail->>'refund' LIKE 're_%'", $d->{ref}), 1,
    'the refund in booking_events');

done_testing;
