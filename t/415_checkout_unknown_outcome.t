#!/usr/bin/perl
# A checkout whose Stripe call ends without a definite answer (409
# idempotency_key_in_use: another request with the same key is at Stripe;
# no answer at all; 5xx to the last try) must not cancel the order: the
# session may exist, and a replay may already have handed out its payment
# page.  The order stays pending_payment, the client is told 503
# checkout_unconfirmed with Retry-After, and its key still replays to the
# session.  Only a definite refusal (a 4xx other than 409/429) cancels.
# checkout_reconcile expires an order left with no session once its
# payment page would have expired.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use JSON::PP;
use Darkroom::Test qw(wait_for);
use Darkroom::Stripe qw(demo_catalogue shop_conf form_of session_total);

my $t = Darkroom::Test->new;

my $stripe = $t->fake_server(name => 'stripe', handler => sub {
    my ($req, $state) = @_;
    my %f = %{ form_of($req->{body}) };
    my $json = { 'Content-Type' => 'application/json' };
    if ($req->{method} eq 'POST') {
        my $mode = $state->{mode} // '';
        return 'close' if $mode eq 'drop';
        return [409, $json, encode_json({ error => {
            type => 'idempotency_error', code => 'idempotency_key_in_use',
            message => 'There is currently another in-progress request'
                . ' using this Idempotent Key' } })] if $mode eq 'in_use';
        return [500, $json, encode_json({ error => { type => 'api_error',
            message => 'Stripe is having a bad day' } })] if $mode eq '500';
        return [402, $json, encode_json({ error => { type => 'card_error',
            message => 'Refused for good' } })] if $mode eq '402';
    }
    my $id = "cs_test_$f{'metadata[order_id]'}";
    return [200, $json, encode_json({ id => $id,
        object => 'checkout.session', url => "https://pay.example/$id",
        status => 'open', amount_total => session_total(\%f) })];
});

shop_conf($t, stripe => $stripe->url);
demo_catalogue($t);
$t->start;

my $cart = { email => 'ada@example.com', items => [
    { photo => 'harbour-dawn', product => 'giclee-a3', quantity => 1 } ] };

sub checkout {
    my ($key) = @_;
    return $t->http(POST => '/api/checkout', {
        headers => { 'Content-Type' => 'application/json',
            $key ? ('Idempotency-Key' => $key) : () },
        content => encode_json($cart) });
}
sub last_order {
    my ($r) = $t->sql('SELECT id, status, stripe_session_id FROM orders'
        . ' ORDER BY id DESC LIMIT 1');
    return $r;
}

for my $mode ('in_use', 'drop', '500') {
    my $key = "cart-unknown-$mode-0001";
    $stripe->set(mode => $mode);
    my $r = checkout($key);
    is($r->{status}, 503, "$mode: 503") or diag $r->{content};
    is($r->{json}{error}{code}, 'checkout_unconfirmed',
        "$mode: checkout_unconfirmed");
    ok(($r->{headers}{'retry-after'} // '') =~ /^\d+$/,
        "$mode: with Retry-After");
    my $o = last_order();
    is($o->[1], 'pending_payment', "$mode: the order is not cancelled");
    is($t->sql_value("SELECT count(*) FROM checkout_idempotency WHERE"
        . " order_id = :'p1'", $o->[0]), 1, "$mode: the key is kept");

    # the session existed after all (or Stripe is back): the replay has it
    $stripe->set();
    $r = checkout($key);
    is($r->{status}, 200, "$mode: the replay answers 200")
        or diag $r->{content};
    is($r->{json}{checkout_url}, "https://pay.example/cs_test_$o->[0]",
        "$mode: with the payment page");
    is_deeply(last_order(), [$o->[0], 'pending_payment', "cs_test_$o->[0]"],
        "$mode: the same order, pending, its session attached");
}

# a replay for an order that expired meanwhile without a session: Stripe
# can give it none, and "in progress" would have the client retry for a
# day; it is told the checkout is closed
$stripe->set(mode => 'in_use');
my $c = checkout('cart-unknown-closed-0001');
is($c->{status}, 503, 'closed: 503 first');
my $co = last_order();
$t->sql("SELECT order_transition(:'p1', 'expired', 'test')", $co->[0]);
$stripe->set(mode => '402');
$c = checkout('cart-unknown-closed-0001');
is($c->{status}, 409, 'the replay of an expired checkout: 409')
    or diag $c->{content};
is($c->{json}{error}{code}, 'checkout_closed', 'checkout_closed');
is(last_order()->[1], 'expired', 'the order stays expired');

# a definite refusal still cancels
$stripe->set(mode => '402');
my $r = checkout('cart-unknown-refused-0001');
is($r->{status}, 502, 'a 402 from Stripe: 502') or diag $r->{content};
is(last_order()->[1], 'cancelled', 'a definite refusal cancels the order');

# no answer and no key: the order is left for checkout_reconcile, which
# expires it once its payment page would have expired
$stripe->set(mode => 'in_use');
$r = checkout();
is($r->{status}, 503, 'no key, no answer: 503');
my $o = last_order();
is($o->[1], 'pending_payment', 'pending, no session') or diag explain $o;
$t->sql("UPDATE jobs SET run_at = now() WHERE dedupe_key = 'reconcile:' ||"
    . " :'p1'", $o->[0]);
# (rescheduled after the payment page's expiry, or done)
ok(wait_for(sub { $t->sql_value("SELECT done_at IS NOT NULL OR run_at >"
    . " now() + interval '10 minutes' FROM jobs WHERE dedupe_key ="
    . " 'reconcile:' || :'p1'", $o->[0]) eq 't' }, 20), 'reconcile ran');
is(last_order()->[1], 'pending_payment',
    'before its payment page expires, it waits');
$t->sql("UPDATE orders SET expires_at = now() - interval '1 second'"
    . " WHERE id = :'p1'", $o->[0]);
$t->sql("UPDATE jobs SET run_at = now(), done_at = NULL WHERE dedupe_key ="
    . " 'reconcile:' || :'p1'", $o->[0]);
ok(wait_for(sub { last_order()->[1] eq 'expired' }, 20),
    'after, reconcile expires it') or diag explain last_order();
is($t->sql_value("SELECT cause FROM order_events WHERE order_id = :'p1'"
    . " AND to_status = 'expired'", $o->[0]), 'reconcile',
    'reconcile did it');

done_testing;
