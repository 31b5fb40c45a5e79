#!/usr/bin/perl
# needs_review is left only by an admin.  A later Stripe event about an
# order under review is recorded against it, not applied over the review,
# and paid_amount is written once.

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
my $secret = 'whsec_review';
shop_conf($t, stripe => $stripe->url, secrets => [$secret]);
demo_catalogue($t);
$t->start;

sub deliver { webhook($t, $secret, @_) }
sub row {
    my ($o) = @_;
    my ($r) = $t->sql("SELECT status, paid_amount, review_reason FROM orders"
        . " WHERE id = :'p1'", $o->{id});
    return $r;
}
sub completed {
    my ($o, %s) = @_;
    return event($s{type} // 'checkout.session.completed',
        session(id => $o->{session}, order_id => $o->{id},
            amount => $o->{total}, %s));
}
sub kept {
    my ($o) = @_;
    return $t->sql_value("SELECT count(*) FROM order_events WHERE"
        . " order_id = :'p1' AND from_status = 'needs_review'"
        . " AND to_status = 'needs_review'", $o->{id});
}
sub fulfil {
    $t->sql_value("SELECT count(*) FROM jobs WHERE kind = 'fulfil_order'"
        . " AND payload->>'order_id' = :'p1'", $_[0]{id});
}

# 1. underpaid, then a second checkout.session.completed (a new event id)
#    with the right amount
my $o = checkout_order($t, 1);
my $r = deliver(completed($o, amount => 100));
is($r->{json}{result}, 'needs_review: amount mismatch', 'underpaid: review');
$r = deliver(completed($o));
is($r->{status}, 200, 'a second completion with a new id: 200');
is_deeply([ @{row($o)}[0, 1] ], ['needs_review', 100],
    'still in review, paid_amount as first paid');
is(fulfil($o), 0, 'nothing sent to a lab');
is(kept($o), 1, 'the later event is recorded against the order');

# 2. async payment succeeds after the admin put the order in review
my $o2 = checkout_order($t, 1);
$r = deliver(completed($o2, payment_status => 'unpaid'));
is($r->{json}{result}, 'awaiting payment', 'a delayed payment method');
$r = $t->http(POST => "/admin/api/orders/$o2->{ref}/review", {
    headers => { Authorization => 'Bearer admin-token-1',
                 'Content-Type' => 'application/json' },
    content => encode_json({ reason => 'Customer asked to hold it.' }) });
is($r->{status}, 200, 'the admin marks it for review');
$r = deliver(completed($o2, type => 'checkout.session.async_payment_succeeded'));
is($r->{status}, 200, 'async_payment_succeeded: 200');
is(row($o2)->[0], 'needs_review', 'the order stays in review');
is(row($o2)->[2], 'Customer asked to hold it.', 'with the admin\'s reason');
is(row($o2)->[1], $o2->{total}, 'the payment is recorded');
is(fulfil($o2), 0, 'nothing fulfilled');
is(kept($o2), 1, 'recorded in the order\'s history');
ok($t->sql_value("SELECT count(*) FROM jobs WHERE kind = 'email'"
    . " AND payload->>'template' = 'shop_alert'"
    . " AND payload->>'order_id' = :'p1'", $o2->{id}) >= 1,
    'the shop is told');

# a failed payment does not cancel a reviewed order either
my $o3 = checkout_order($t, 1);
deliver(completed($o3, payment_status => 'unpaid'));
$t->http(POST => "/admin/api/orders/$o3->{ref}/review", {
    headers => { Authorization => 'Bearer admin-token-1',
                 'Content-Type' => 'application/json' },
    content => encode_json({ reason => 'Check the address.' }) });
deliver(completed($o3, type => 'checkout.session.async_payment_failed',
    payment_status => 'unpaid'));
is(row($o3)->[0], 'needs_review', 'async_payment_failed: still in review');

# 3. underpaid, then the next event carries another amount: paid_amount is
#    written once
my $o4 = checkout_order($t, 2);
deliver(completed($o4, amount => 500));
deliver(completed($o4, amount => 700, type =>
    'checkout.session.async_payment_succeeded'));
is_deeply([ @{row($o4)}[0, 1] ], ['needs_review', 500],
    'paid_amount kept from the first payment');
like(row($o4)->[2], qr/Paid 500 GBP/, 'and the reason still says so');

# a dispute on an order an admin reviews keeps the admin's reason
deliver(event('charge.dispute.created', { id => 'dp_r', object => 'dispute',
    charge => 'ch_r', payment_intent => "pi_$o2->{session}", amount => 4500,
    reason => 'fraudulent' }));
like(row($o2)->[2], qr/^Customer asked to hold it\. Payment disputed: fraudulent\./,
    'a dispute adds to the review reason');

# the refund an admin makes still ends the order
deliver(event('charge.refunded', charge(payment_intent => "pi_$o->{session}",
    amount => 100, amount_refunded => 100, refunded => 1)));
is(row($o)->[0], 'refunded', 'a full refund closes the review');

done_testing;
