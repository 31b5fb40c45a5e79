#!/usr/bin/perl
# charge.dispute.created on a cancelled or expired order: a dispute means
# a payment was taken, so the shop must look at it.  The order goes to
# review with the dispute as reason (sql/011 allows cancelled/expired ->
# needs_review), is alerted, and an admin can then resolve it.  Only a
# refunded order keeps its state (t/412).

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use JSON::PP;
use Darkroom::Test;
use Darkroom::Stripe qw(event session demo_catalogue shop_conf fake_api
    webhook checkout_order);

my $t = Darkroom::Test->new;
my $stripe = fake_api($t);
my $secret = 'whsec_dispute_closed';
shop_conf($t, stripe => $stripe->url, secrets => [$secret]);
demo_catalogue($t);
$t->start;

sub row {
    my ($r) = $t->sql("SELECT status, coalesce(review_reason, '') FROM orders"
        . " WHERE id = :'p1'", $_[0]);
    return $r;
}
sub alerts {
    $t->sql_value("SELECT count(*) FROM jobs WHERE kind = 'email'"
        . " AND payload->>'template' = 'shop_alert'"
        . " AND payload->>'order_id' = :'p1'", $_[0]);
}

my $n = 0;
for my $how (['expired', 'checkout.session.expired'],
             ['cancelled', 'checkout.session.async_payment_failed'])
{
    my ($state, $type) = @$how;
    my $o = checkout_order($t, 1);
    webhook($t, $secret, event($type, session(id => $o->{session},
        order_id => $o->{id}, amount => $o->{total},
        payment_status => 'unpaid')));
    is(row($o->{id})->[0], $state, "the order is $state");
    $t->sql("UPDATE orders SET stripe_payment_intent = :'p2' WHERE id ="
        . " :'p1'", $o->{id}, "pi_$o->{session}");
    my $before = alerts($o->{id});

    $n++;
    my $r = webhook($t, $secret, event('charge.dispute.created', {
        id => "dp_closed_$n", object => 'dispute', charge => "ch_$o->{id}",
        payment_intent => "pi_$o->{session}", amount => $o->{total},
        reason => 'fraudulent' }));
    is($r->{status}, 200, "a dispute on a $state order: 200");
    is($r->{json}{result}, 'needs_review: disputed',
        "a $state order disputed: review") or diag $r->{content};
    is_deeply(row($o->{id}), ['needs_review', 'Payment disputed: fraudulent.'],
        'in review, the dispute its reason');
    is($t->sql_value("SELECT count(*) FROM order_events WHERE order_id ="
        . " :'p1' AND from_status = :'p2' AND to_status = 'needs_review'"
        . " AND detail ? 'dispute'", $o->{id}, $state), 1,
        'the move is in its history');
    cmp_ok(alerts($o->{id}), '>', $before, 'the shop is told');
}

done_testing;
