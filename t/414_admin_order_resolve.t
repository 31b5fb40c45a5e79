#!/usr/bin/perl
# POST /admin/api/orders/<ref>/resolve {"to","note"}: the admin's way out
# of needs_review.  Without it an order paid after it was cancelled, a
# dispute won, or an order no lab could make stayed in review for ever
# (only a full refund ended a review).  "paid" carries on: the order goes
# to the state its lab orders reached meanwhile, and is fulfilled when
# nothing was yet; "cancelled" only when no money is held (or it was lost
# to a dispute).  The note and the lab's progress are in its history.

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
my $secret = 'whsec_resolve';
shop_conf($t, stripe => $stripe->url, secrets => [$secret]);
demo_catalogue($t);
$t->start;

sub admin {
    my ($path, $body, $token) = @_;
    return $t->http(POST => "/admin/api/orders/$path", {
        headers => { Authorization => 'Bearer ' . ($token // 'admin-token-1'),
                     'Content-Type' => 'application/json' },
        content => ref $body ? encode_json($body) : $body });
}
sub resolve { admin("$_[0]{ref}/resolve", $_[1]) }
sub status {
    $t->sql_value("SELECT status FROM orders WHERE id = :'p1'", $_[0]{id});
}
sub fulfil_jobs {
    $t->sql_value("SELECT count(*) FROM jobs WHERE kind = 'fulfil_order'"
        . " AND payload->>'order_id' = :'p1'", $_[0]{id});
}
sub resolved {
    $t->sql_value("SELECT count(*) FROM order_events WHERE order_id = :'p1'"
        . " AND from_status = 'needs_review' AND to_status = :'p2'"
        . " AND cause = 'admin'", $_[0]{id}, $_[1]);
}
sub completed {
    my ($o) = @_;
    return webhook($t, $secret, event('checkout.session.completed',
        session(id => $o->{session}, order_id => $o->{id},
                amount => $o->{total})));
}
my $n = 0;
sub dispute {
    my ($o) = @_;
    $n++;
    return webhook($t, $secret, event('charge.dispute.created', {
        id => "dp_$n", object => 'dispute', charge => "ch_$o->{id}",
        payment_intent => "pi_$o->{session}", amount => $o->{total},
        reason => 'fraudulent' }));
}
sub events_count {
    $t->sql_value("SELECT count(*) FROM order_events WHERE order_id = :'p1'",
        $_[0]{id});
}

# --- paid after it was cancelled: a person fulfils it ---------------------

my $o = checkout_order($t, 1);
webhook($t, $secret, event('checkout.session.async_payment_failed',
    session(id => $o->{session}, order_id => $o->{id}, amount => $o->{total},
            payment_status => 'unpaid')));
is(status($o), 'cancelled', 'cancelled');
completed($o);
is(status($o), 'needs_review', 'paid after it was cancelled: in review');
is(fulfil_jobs($o), 0, 'nothing fulfilled yet');

my $r = resolve($o, { to => 'paid', note => 'Customer still wants it.' });
is($r->{status}, 200, 'resolve to paid: 200') or diag $r->{content};
is($r->{json}{status}, 'paid', 'the answer is the order, now paid');
# (its fulfilment may already have run: no lab here, so back to review)
is(resolved($o, 'paid'), 1, 'the order went to paid');
is(fulfil_jobs($o), 1, 'its fulfilment is enqueued');
is($t->sql_value("SELECT count(*) FROM jobs WHERE dedupe_key ="
    . " 'email:receipt:' || :'p1'", $o->{id}), 1, 'and its receipt');
my ($ev) = $t->sql("SELECT cause, detail->>'note', detail->>'review_reason'"
    . " FROM order_events WHERE order_id = :'p1' AND from_status ="
    . " 'needs_review' AND to_status = 'paid'", $o->{id});
is($ev->[0], 'admin', 'the cause is the admin');
is($ev->[1], 'Customer still wants it.', 'the note is in its history');
like($ev->[2], qr/after it was cancelled/, 'and the reason it was in review');
is($t->sql_value("SELECT review_reason FROM orders WHERE id = :'p1'",
    $o->{id}), undef, 'no review reason left on a paid order');

$t->sql("UPDATE orders SET status = 'paid' WHERE id = :'p1'", $o->{id});
$r = resolve($o, { to => 'paid' });
is($r->{status}, 409, 'not in review any more: 409');
is($r->{json}{error}{code}, 'not_in_review', 'with a clear code');

# --- not fulfillable: the fulfil job ran, a new one is needed -------------

$o = checkout_order($t, 1);
completed($o);
is(status($o), 'paid', 'paid');
$t->sql("UPDATE jobs SET done_at = now() WHERE dedupe_key = 'fulfil:' ||"
    . " :'p1'", $o->{id});
$t->sql("UPDATE orders SET paid_at = '2026-01-02 03:04:05+00' WHERE id ="
    . " :'p1'", $o->{id});
$t->sql("SELECT lab_fulfil(:'p1', 0, 'job:test')", $o->{id});
is(status($o), 'needs_review', 'no lab makes it: in review');
is(fulfil_jobs($o), 1, 'its fulfil job ran');
$r = resolve($o, { to => 'paid', note => 'Lab catalogue fixed.' });
is($r->{status}, 200, 'resolve to paid: 200') or diag $r->{content};
is(resolved($o, 'paid'), 1, 'paid');
is(fulfil_jobs($o), 2, 'fulfilment enqueued again (a fresh dedupe key)');
is($t->sql_value("SELECT paid_at = '2026-01-02 03:04:05+00' FROM orders"
    . " WHERE id = :'p1'", $o->{id}), 't', 'paid_at is when it was paid');

# --- a dispute won on an order whose lab shipped meanwhile ----------------

$o = checkout_order($t, 1);
completed($o);
$t->sql("UPDATE jobs SET done_at = now() WHERE dedupe_key = 'fulfil:' ||"
    . " :'p1'", $o->{id});
$t->sql("SELECT lab_order_new(:'p1', 'prodigi', 'submitted', NULL, NULL,"
    . " 'job:test')", $o->{id});
$t->sql("UPDATE jobs SET done_at = now() WHERE kind = 'lab_submit'");
$r = dispute($o);
is(status($o), 'needs_review', 'disputed: in review');
$t->sql("UPDATE lab_orders SET status = 'shipped' WHERE order_id = :'p1'",
    $o->{id});
$t->sql("SELECT lab_sync_order(:'p1', 'lab:prodigi:test')", $o->{id});
is(status($o), 'needs_review', 'the lab shipped: still in review');
$r = resolve($o, { to => 'paid', note => 'Dispute won.' });
is($r->{status}, 200, 'resolve: 200') or diag $r->{content};
is(status($o), 'shipped', 'the order goes where its lab is: shipped');
is($t->sql_value("SELECT detail->>'lab_progress' FROM order_events WHERE"
    . " order_id = :'p1' AND from_status = 'needs_review' AND to_status ="
    . " 'shipped'", $o->{id}), 'shipped', 'the lab progress is recorded');
is(fulfil_jobs($o), 1, 'nothing fulfilled twice');

# --- refusals change nothing ----------------------------------------------

$o = checkout_order($t, 1);
completed($o);
dispute($o);
is(status($o), 'needs_review', 'another dispute in review');
my $before = events_count($o);

for my $c ([{ to => 'lost' }, 400, 'invalid_target'],
           [{ note => 'x' }, 400, 'invalid_target'],
           ['{"to":', 400, 'invalid_json'],
           [{ to => 'refunded' }, 409, 'refund_through_stripe'],
           [{ to => 'delivered' }, 409, 'invalid_target_state'],
           [{ to => 'in_production' }, 409, 'invalid_target_state'],
           [{ to => 'needs_review' }, 409, 'invalid_target_state'])
{
    my ($body, $st, $code) = @$c;
    $r = resolve($o, $body);
    my $what = ref $body ? encode_json($body) : $body;
    is($r->{status}, $st, "$what: $st") or diag $r->{content};
    is($r->{json}{error}{code}, $code, "$what: $code");
}
is(admin("$o->{ref}/resolve", { to => 'paid' }, 'nope')->{status}, 401,
    'a bad token: 401');
is(admin("nosuchorder/resolve", { to => 'paid' })->{status}, 404,
    'no such order: 404');
is(status($o), 'needs_review', 'still in review');
is(events_count($o), $before, 'nothing written');

# cancelling an order that holds money: refund it first
my $p = checkout_order($t, 1);
completed($p);
$t->sql("SELECT admin_order_review(:'p1', 'Check the address.')", $p->{ref});
$r = resolve($p, { to => 'cancelled' });
is($r->{status}, 409, 'cancel while holding the money: 409');
is($r->{json}{error}{code}, 'money_held', 'money_held');
is(status($p), 'needs_review', 'still in review');

# ... or while a lab has it, even not started: cancel that first
$t->sql("SELECT lab_order_new(:'p1', 'prodigi', 'submitted', NULL, NULL,"
    . " 'job:test')", $o->{id});
$t->sql("UPDATE jobs SET done_at = now() WHERE kind = 'lab_submit'");
$r = resolve($o, { to => 'cancelled', note => 'Dispute lost.' });
is($r->{status}, 409, 'a lab order still live: 409');
is($r->{json}{error}{code}, 'lab_orders_live', 'lab_orders_live');
is(status($o), 'needs_review', 'still in review');
$t->sql("UPDATE lab_orders SET status = 'cancelled' WHERE order_id = :'p1'",
    $o->{id});

# ... unless a dispute took it
$r = resolve($o, { to => 'cancelled', note => 'Dispute lost.' });
is($r->{status}, 200, 'a dispute lost: cancelled') or diag $r->{content};
is(status($o), 'cancelled', 'cancelled');

# an order marked for review before payment may be cancelled
$o = checkout_order($t, 1);
$t->sql("SELECT admin_order_review(:'p1', 'Suspicious.')", $o->{ref});
$r = resolve($o, { to => 'cancelled', note => 'Fraud.' });
is($r->{status}, 200, 'unpaid: cancelled') or diag $r->{content};
is(status($o), 'cancelled', 'cancelled');
# ... but not paid: no money came
$o = checkout_order($t, 1);
$t->sql("SELECT admin_order_review(:'p1', 'Suspicious.')", $o->{ref});
$r = resolve($o, { to => 'paid' });
is($r->{status}, 409, 'paid without a payment: 409');
is($r->{json}{error}{code}, 'not_paid', 'not_paid');

done_testing;
