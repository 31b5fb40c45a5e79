#!/usr/bin/perl
# The order state machine: only an admin takes an order out of
# needs_review (or a refund, which the shop makes through Stripe).  A lab,
# a late Stripe event or a failed checkout moving an order out of review
# would take it off the admin's queue.  And a payment for an order that
# was cancelled or expired goes to review, not into the void.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Darkroom::Test;
use Darkroom::Stripe qw(event session demo_catalogue shop_conf fake_api
    webhook checkout_order);

my $t = Darkroom::Test->new;
my $stripe = fake_api($t);
my $secret = 'whsec_review_exit';
shop_conf($t, stripe => $stripe->url, secrets => [$secret]);
demo_catalogue($t);
$t->start;

sub status {
    $t->sql_value("SELECT status FROM orders WHERE id = :'p1'", $_[0]);
}
sub move {
    my ($id, $to, $cause) = @_;
    return $t->sql_value("SELECT order_transition(:'p1', :'p2', :'p3')",
        $id, $to, $cause);
}
sub in_review {
    my $o = checkout_order($t, 1);
    is(move($o->{id}, 'needs_review', 'admin'), 't', 'an order in review');
    return $o->{id};
}

# --- leaving needs_review ------------------------------------------------

my $id = in_review();
for my $c (['shipped', 'lab:prodigi:cb1'], ['in_production', 'job:7'],
           ['delivered', 'lab:printspace:poll'], ['paid', 'stripe:evt_x'],
           ['cancelled', 'checkout'])
{
    is(move($id, @$c), 'f', "$c->[1] cannot move it to $c->[0]");
    is(status($id), 'needs_review', "still in review after $c->[1]");
}
is($t->sql_value("SELECT count(*) FROM order_events WHERE order_id = :'p1'"
    . " AND from_status = 'needs_review'", $id), 0,
    'no refused move is in its history');

is(move($id, 'paid', 'admin'), 't', 'an admin takes it out of review');
is(status($id), 'paid', 'paid again');

$id = in_review();
is(move($id, 'shipped', 'admin:resolve'), 't', 'an admin action (admin:...)');

$id = in_review();
is(move($id, 'refunded', 'stripe:evt_refund'), 't',
    'a refund ends a review');

# --- paid after it was cancelled or expired ------------------------------

sub completed {
    my ($o) = @_;
    return webhook($t, $secret, event('checkout.session.completed',
        session(id => $o->{session}, order_id => $o->{id},
                amount => $o->{total})));
}
sub alerts {
    $t->sql_value("SELECT count(*) FROM jobs WHERE kind = 'email'"
        . " AND payload->>'template' = 'shop_alert'"
        . " AND payload->>'order_id' = :'p1'", $_[0]);
}

for my $how (['expired', 'checkout.session.expired'],
             ['cancelled', 'checkout.session.async_payment_failed'])
{
    my ($state, $type) = @$how;
    my $o = checkout_order($t, 1);
    my $r = webhook($t, $secret, event($type, session(id => $o->{session},
        order_id => $o->{id}, amount => $o->{total},
        payment_status => 'unpaid')));
    is(status($o->{id}), $state, "the order is $state");

    $r = completed($o);
    is($r->{status}, 200, "paid after $state: 200");
    like($r->{json}{result}, qr/^needs_review/, "paid after $state: review")
        or diag $r->{content};
    is(status($o->{id}), 'needs_review', "a $state order paid is in review");
    like($t->sql_value("SELECT review_reason FROM orders WHERE id = :'p1'",
        $o->{id}), qr/after it was $state/, 'the reason says why');
    is($t->sql_value("SELECT count(*) FROM order_events WHERE order_id ="
        . " :'p1' AND from_status = :'p2' AND to_status = 'needs_review'",
        $o->{id}, $state), 1, 'in its history');
    is($t->sql_value("SELECT paid_amount FROM orders WHERE id = :'p1'",
        $o->{id}), $o->{total}, 'the payment is recorded (so it can be'
        . ' refunded)');
    cmp_ok(alerts($o->{id}), '>=', 1, 'the shop is told');
    is($t->sql_value("SELECT count(*) FROM jobs WHERE kind = 'fulfil_order'"
        . " AND payload->>'order_id' = :'p1'", $o->{id}), 0,
        'nothing fulfilled until a person decides');
}

done_testing;
