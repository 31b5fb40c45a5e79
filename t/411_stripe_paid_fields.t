#!/usr/bin/perl
# A partial charge.refunded that arrives before checkout.session.completed
# (Stripe does not promise an order) fills paid_amount first; the payment
# that follows must still record the shipping name, address, phone and
# payment intent, or the lab step sends a paid order to review for "no
# shipping address".

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use JSON::PP;
use Darkroom::Test;
use Darkroom::Stripe qw(event session charge demo_catalogue shop_conf
    fake_api webhook checkout_order);

my $t = Darkroom::Test->new;
my $stripe = fake_api($t);
my $secret = 'whsec_paid_fields';
shop_conf($t, stripe => $stripe->url, secrets => [$secret]);
demo_catalogue($t);
$t->start;

sub row {
    my ($id) = @_;
    my ($r) = $t->sql("SELECT status, paid_amount, paid_currency,"
        . " shipping_name, shipping_address->>'line1', shipping_phone,"
        . " stripe_payment_intent, amount_refunded FROM orders"
        . " WHERE id = :'p1'", $id);
    return $r;
}

my $o = checkout_order($t, 1);
my $pi = "pi_$o->{session}";

my $r = webhook($t, $secret, event('charge.refunded', charge(
    payment_intent => $pi, amount => $o->{total}, amount_refunded => 500,
    refunded => 0, order_id => $o->{id})));
is($r->{status}, 200, 'a partial refund first: 200');
is(row($o->{id})->[1], $o->{total}, 'it fills paid_amount');

$r = webhook($t, $secret, event('checkout.session.completed', session(
    id => $o->{session}, order_id => $o->{id}, amount => $o->{total},
    phone => '+44 7700 900456')));
is($r->{json}{result}, 'paid', 'then the payment: paid') or diag $r->{content};
is_deeply(row($o->{id}), ['paid', $o->{total}, 'GBP', 'Ada Buyer',
    '1 Harbour Row', '+44 7700 900456', $pi, 500],
    'shipping name, address and phone kept with the payment');

# the order in review the same way: the payment's details still recorded
my $o2 = checkout_order($t, 1);
webhook($t, $secret, event('charge.refunded', charge(
    payment_intent => "pi_$o2->{session}", amount => 100,
    amount_refunded => 50, refunded => 0, order_id => $o2->{id})));
$r = webhook($t, $secret, event('checkout.session.completed', session(
    id => $o2->{session}, order_id => $o2->{id}, amount => 100)));
is($r->{json}{result}, 'needs_review: amount mismatch', 'underpaid: review');
is_deeply([ @{row($o2->{id})}[0, 1, 3, 4] ],
    ['needs_review', 100, 'Ada Buyer', '1 Harbour Row'],
    'in review with the address the admin needs to fulfil it');

done_testing;
