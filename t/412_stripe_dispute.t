#!/usr/bin/perl
# charge.dispute.created: an order that can go to review does, with the
# dispute as its reason (a cancelled or expired one too: t/416).  A
# refunded one keeps its state and reason; the event is recorded as such,
# not as "needs_review", and the shop is still told: a dispute on a
# refunded order matters.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Darkroom::Test;
use Darkroom::Stripe qw(event session charge demo_catalogue shop_conf
    fake_api webhook checkout_order);

my $t = Darkroom::Test->new;
my $stripe = fake_api($t);
my $secret = 'whsec_dispute';
shop_conf($t, stripe => $stripe->url, secrets => [$secret]);
demo_catalogue($t);
$t->start;

sub deliver { webhook($t, $secret, @_) }
sub row {
    my ($r) = $t->sql("SELECT status, coalesce(review_reason, '') FROM orders"
        . " WHERE id = :'p1'", $_[0]);
    return $r;
}
sub paid {
    my $o = checkout_order($t, 1);
    my $r = deliver(event('checkout.session.completed', session(
        id => $o->{session}, order_id => $o->{id}, amount => $o->{total})));
    die "not paid: $r->{content}" unless $r->{json}{result} eq 'paid';
    return $o;
}
my $n = 0;
sub dispute {
    my ($o) = @_;
    $n++;
    return deliver(event('charge.dispute.created', { id => "dp_$n",
        object => 'dispute', charge => "ch_$o->{id}",
        payment_intent => "pi_$o->{session}", amount => $o->{total},
        reason => 'fraudulent' }));
}
sub alerts {
    $t->sql_value("SELECT count(*) FROM jobs WHERE kind = 'email'"
        . " AND payload->>'template' = 'shop_alert'"
        . " AND payload->>'order_id' = :'p1'", $_[0]);
}
sub state_of {
    my ($r) = $t->sql("SELECT state, result FROM stripe_events WHERE"
        . " order_id = :'p1' AND type = 'charge.dispute.created'", $_[0]);
    return $r;
}

# a paid order: to review, with the dispute as reason
my $o = paid();
my $r = dispute($o);
is($r->{json}{result}, 'needs_review: disputed', 'paid: disputed');
is_deeply(row($o->{id}), ['needs_review', 'Payment disputed: fraudulent.'],
    'in review with the dispute as reason');

# a refunded order: stays refunded, reason untouched, recorded, alerted
my $o2 = paid();
$r = deliver(event('charge.refunded', charge(payment_intent =>
    "pi_$o2->{session}", amount => $o2->{total},
    amount_refunded => $o2->{total}, refunded => 1)));
is($r->{json}{result}, 'refunded', 'refunded');
my $before = alerts($o2->{id});
$r = dispute($o2);
is($r->{status}, 200, 'a dispute on a refunded order: 200');
like($r->{json}{result}, qr/^recorded/, 'recorded, not "needs_review"')
    or diag $r->{content};
is_deeply(row($o2->{id}), ['refunded', ''],
    'the order stays refunded, its reason untouched');
is(state_of($o2->{id})->[0], 'recorded', 'the event is kept as recorded');
is($t->sql_value("SELECT count(*) FROM order_events WHERE order_id = :'p1'"
    . " AND cause LIKE 'stripe:%' AND from_status = 'refunded'"
    . " AND to_status = 'refunded' AND detail ? 'dispute'", $o2->{id}), 1,
    'the dispute is in the order\'s history');
cmp_ok(alerts($o2->{id}), '>', $before, 'the shop is told');

# an order already under review: the dispute adds to the admin's reason
my $o3 = paid();
$t->sql("SELECT admin_order_review(:'p1', 'Hold it.')", $o3->{ref});
$r = dispute($o3);
like($r->{json}{result}, qr/^(recorded|needs_review)/, 'in review: 200')
    or diag $r->{content};
is_deeply(row($o3->{id}), ['needs_review',
    'Hold it. Payment disputed: fraudulent.'], 'the dispute is added');

done_testing;
