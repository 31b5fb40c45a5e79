#!/usr/bin/perl
# The exact-amount rule at checkout: the total Stripe computed for the
# session (amount_total in its answer) is recorded (orders.stripe_amount),
# and a session whose total is not the order's is never handed out: the
# order is cancelled and the answer is 502 payment_amount_mismatch.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use JSON::PP;
use Darkroom::Test;
use Darkroom::Stripe qw(demo_catalogue shop_conf form_of session_total);

my $t = Darkroom::Test->new;
my $stripe = $t->fake_server(name => 'stripe', handler => sub {
    my ($req, $state) = @_;
    my %f = %{ form_of($req->{body}) };
    my $id = "cs_test_$f{'metadata[order_id]'}";
    my %s = (id => $id, object => 'checkout.session', status => 'open',
             url => "https://pay.example/$id");
    $s{amount_total} = session_total(\%f) + ($state->{skew} // 0)
        unless $state->{no_total};
    return [200, { 'Content-Type' => 'application/json' }, encode_json(\%s)];
});
shop_conf($t, stripe => $stripe->url);
demo_catalogue($t);
$t->start;

my $n = 0;
sub checkout {
    my ($key) = @_;
    return $t->http(POST => '/api/checkout', { headers => {
        'Content-Type' => 'application/json',
        'Idempotency-Key' => $key // sprintf('cart-key-%04d', ++$n) },
        content => encode_json({ email => 'ada@example.com', items => [
            { photo => 'harbour-dawn', product => 'giclee-a3',
              quantity => 2 } ] }) });
}
sub order {
    my ($ref) = @_;
    my ($row) = $t->sql("SELECT status, total, stripe_amount,"
        . " coalesce(stripe_session_id, ''), coalesce(checkout_url, '')"
        . " FROM orders WHERE ref = :'p1'", $ref);
    return $row;
}

my $r = checkout();
is($r->{status}, 201, 'checkout') or diag $r->{content};
my $o = order($r->{json}{order});
is($o->[2], 9000, "Stripe's total is recorded");
is($o->[2], $o->[1], 'and is the order total');

$stripe->set(skew => 1);
$r = checkout('same-key');
is($r->{status}, 502, "Stripe's total differs: 502") or diag $r->{content};
is($r->{json}{error}{code}, 'payment_amount_mismatch',
   'payment_amount_mismatch');
ok(!$r->{json}{checkout_url}, 'no payment page handed out');
my ($ref) = map { $_->[0] } $t->sql("SELECT ref FROM orders ORDER BY id DESC"
    . " LIMIT 1");
$o = order($ref);
is($o->[0], 'cancelled', 'the order is cancelled');
is($o->[3], '', 'the session is not attached');
is($o->[4], '', 'nor its page');
like($t->sql_value("SELECT detail->>'reason' FROM order_events o JOIN orders"
    . " x ON x.id = o.order_id WHERE x.ref = :'p1' AND o.to_status ="
    . " 'cancelled'", $ref), qr/totals 9001, not the order total 9000/,
    'the reason is in its history');
like($t->error_log, qr/stripe session total 9001 is not the order total 9000/,
     'and in the error log');

$stripe->set(no_total => 1);
$r = checkout();
is($r->{status}, 502, 'no total in the answer: 502');

# the same key again, once Stripe agrees: a new attempt, not the failure
$stripe->set();
$r = checkout('same-key');
is($r->{status}, 201, 'the same key after a refusal: a new checkout')
    or diag $r->{content};
is(order($r->{json}{order})->[0], 'pending_payment', 'pending payment');

done_testing;
