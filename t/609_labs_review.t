#!/usr/bin/perl
# A lab's news never takes an order out of needs_review: a dispute puts a
# paid order in review, then the lab ships it.  The lab order follows its
# lab; the order stays in the admin's queue, and what the lab said is in
# its history.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Darkroom::Test qw(wait_for);
use Darkroom::Stripe qw(fake_api event signature);
use LabSandbox;

my $t = Darkroom::Test->new;
my $stripe = fake_api($t);
my $lab = LabSandbox::start($t);
LabSandbox::conf($t, $stripe->url, $lab);
LabSandbox::mapping($t);
$t->start;

sub lo_status {
    $t->sql_value("SELECT status FROM lab_orders WHERE id = :'p1'", $_[0]);
}
sub order_row {
    my ($r) = $t->sql("SELECT status, coalesce(review_reason, '') FROM orders"
        . " WHERE id = :'p1'", $_[0]);
    return $r;
}

my $o = LabSandbox::paid_order($t, [ ['moor-rain', 'canvas-50', 1] ]);
ok(wait_for(sub { my @l = LabSandbox::lab_orders($t, $o);
    @l && $l[0][2] eq 'submitted' }, 20), 'Prodigi order submitted');
my ($lo) = LabSandbox::lab_orders($t, $o);

my $body = event('charge.dispute.created', { id => 'dp_lab', object =>
    'dispute', charge => "ch_$o->{id}", payment_intent => "pi_$o->{session}",
    amount => $o->{total}, reason => 'product_not_received' });
my $r = $t->http(POST => '/webhooks/stripe', { headers => {
    'Content-Type' => 'application/json',
    'Stripe-Signature' => signature('whsec_test_one', $body, time) },
    content => $body });
is($r->{json}{result}, 'needs_review: disputed', 'disputed: in review');

$lab->control(POST => "/_sandbox/advance/$lo->[3]",
    { to => ['in_production'] });
ok(wait_for(sub { lo_status($lo->[0]) eq 'in_production' }, 10),
    'the lab order follows its lab: in production');
is(order_row($o->{id})->[0], 'needs_review', 'the order stays in review');

$lab->control(POST => "/_sandbox/advance/$lo->[3]", { to => ['shipped'] });
ok(wait_for(sub { lo_status($lo->[0]) eq 'shipped' }, 10),
    'the lab order is shipped');
is_deeply(order_row($o->{id}), ['needs_review',
    'Payment disputed: product_not_received.'],
    'the order is still in review, for the dispute');
is($t->sql_value("SELECT count(*) FROM order_events WHERE order_id = :'p1'"
    . " AND from_status = 'needs_review' AND to_status <> 'needs_review'",
    $o->{id}), 0, 'no lab news took it out of review');
is($t->sql_value("SELECT string_agg(detail->>'lab_progress', ',' ORDER BY id)"
    . " FROM order_events WHERE order_id = :'p1'"
    . " AND from_status = 'needs_review' AND to_status = 'needs_review'"
    . " AND cause NOT LIKE 'stripe:%'", $o->{id}), 'in_production,shipped',
    'the lab\'s progress is in the order\'s history, once a step');

# an admin's decision is still possible: a refund ends the review
$r = LabSandbox::refund($t, $o);
is($r->{json}{result}, 'refunded', 'a refund ends the review');

done_testing;
