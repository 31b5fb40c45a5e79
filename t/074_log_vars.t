#!/usr/bin/perl
# Variables for log_format: $darkroom_order (the order a checkout
# created or a status page read), $darkroom_stripe_event (a webhook's event id) and
# $darkroom_result (an error answer's code, a webhook's outcome, a
# checkout's created/replay), read back from a real access log.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use JSON::PP;
use Darkroom::Test qw(wait_for);
use Darkroom::Stripe qw(signature event session demo_catalogue shop_conf
    fake_api);

my $t = Darkroom::Test->new;
my $stripe = fake_api($t);
shop_conf($t, stripe => $stripe->url, secrets => ['whsec_vars'],
    http => 'log_format darkroom "$uri|$status|$darkroom_order|'
          . '$darkroom_stripe_event|$darkroom_result";'
          . ' access_log %%DIR%%/vars.log darkroom;');
demo_catalogue($t);
$t->start;

# the log lines so far, once there are $n
sub lines {
    my ($n) = @_;
    my @l;
    wait_for(sub {
        @l = -e $t->dir . '/vars.log'
            ? split /\n/, $t->read_file('vars.log') : ();
        @l >= $n }, 10);
    return map { [ split /\|/, $_, -1 ] } @l;
}

sub deliver {
    my ($body, %o) = @_;
    return $t->http(POST => '/webhooks/stripe', { headers => {
        'Content-Type' => 'application/json',
        'Stripe-Signature' => signature($o{secret} // 'whsec_vars', $body,
            time) }, content => $body });
}

# a checkout: its order
my $r = $t->http(POST => '/api/checkout', {
    headers => { 'Content-Type' => 'application/json' },
    content => encode_json({ email => 'ada@example.com', items => [
        { photo => 'harbour-dawn', product => 'giclee-a3', quantity => 1 } ]
    }) });
is($r->{status}, 201, 'a checkout');
my ($order) = $t->sql("SELECT id, ref, total FROM orders WHERE ref = :'p1'",
    $r->{json}{order});
my @l = lines(1);
is_deeply($l[0], [ '/api/checkout', 201, $order->[1], '-', 'created' ],
    'a checkout logs its order and "created"');

# reading it: its order
is($t->http(GET => $r->{json}{status_url})->{status}, 200, 'its status');
@l = lines(2);
is_deeply($l[1], [ $r->{json}{status_url}, 200, $order->[1], '-', '-' ],
    'an order read logs its order');

# a 4xx: the error's code, no order
$r = $t->http(POST => '/api/checkout', {
    headers => { 'Content-Type' => 'application/json' },
    content => '{"email":"ada@example.com","items":[]}' });
ok($r->{status} >= 400 && $r->{status} < 500, 'a bad checkout is 4xx');
my $code = $r->{json}{error}{code};
ok($code, "its error code: $code");
@l = lines(3);
is_deeply($l[2], [ '/api/checkout', $r->{status}, '-', '-', $code ],
    'a 4xx logs its error code');

# webhooks: applied, then the same event a duplicate, a bad signature
my $paid = event('checkout.session.completed', session(
    id => "cs_test_$order->[0]", order_id => $order->[0], ref => $order->[1],
    amount => $order->[2]));
my $evt = decode_json($paid)->{id};
like($evt, qr/^evt_/, "the event's id: $evt");
is(deliver($paid)->{status}, 200, 'applied');
is(deliver($paid)->{json}{result}, 'duplicate', 'duplicate');
$r = deliver($paid, secret => 'whsec_wrong');
is($r->{status}, 400, 'bad signature');
@l = lines(6);
is_deeply($l[3], [ '/webhooks/stripe', 200, '-', $evt, 'applied' ],
    'a webhook logs its event id and "applied"');
is_deeply($l[4], [ '/webhooks/stripe', 200, '-', $evt, 'duplicate' ],
    'the same event again: "duplicate"');
is_deeply($l[5], [ '/webhooks/stripe', 400, '-', '-',
    $r->{json}{error}{code} ], 'a bad signature logs its error code');

# a location darkroom does not handle logs "-"
is($t->http(GET => '/nothing-here')->{status}, 404, 'a 404 not ours');
@l = lines(7);
is_deeply([ @{ $l[6] }[2 .. 4] ], [ '-', '-', '-' ],
    'a request darkroom did not answer logs "-"');

done_testing;
