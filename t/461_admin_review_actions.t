#!/usr/bin/perl
# Ways out of review (issue 13): approve (POST orders/<ref>/resolve
# {"to": "paid"}, t/414), cancel with refund ({"to": "cancelled",
# "refund": true}: a refund of all that is left through Stripe, as POST
# orders/<ref>/refund makes it; the order stays in review until Stripe's
# charge.refunded makes it refunded) and a note (POST orders/<ref>/note,
# no state change).  Each is in the order's history with who did it
# (detail "actor").  Every way into review names its reason, shown in the
# admin's order and list.

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
my $secret = 'whsec_review_actions';
shop_conf($t, stripe => $stripe->url, secrets => [$secret]);
demo_catalogue($t);
$t->start;

sub admin {
    my ($method, $path, $body, $token) = @_;
    return $t->http($method => "/admin/api/$path", {
        headers => { Authorization => 'Bearer ' . ($token // 'admin-token-1'),
                     'Content-Type' => 'application/json' },
        defined $body
            ? (content => ref $body ? encode_json($body) : $body) : () });
}
sub status {
    $t->sql_value("SELECT status FROM orders WHERE id = :'p1'", $_[0]{id});
}
sub reason {
    $t->sql_value("SELECT review_reason FROM orders WHERE id = :'p1'",
        $_[0]{id});
}
sub events_count {
    $t->sql_value("SELECT count(*) FROM order_events WHERE order_id = :'p1'",
        $_[0]{id});
}
sub refunds { scalar grep { $_->{path} eq '/v1/refunds' } $stripe->requests }
sub paid {
    my ($o, %s) = @_;
    return webhook($t, $secret, event('checkout.session.completed',
        session(id => $o->{session}, order_id => $o->{id},
                amount => $s{amount} // $o->{total}, %s)));
}
sub paid_order {
    my $o = checkout_order($t, 1);
    my $r = paid($o);
    die "not paid: $r->{content}" unless $r->{json}{result} eq 'paid';
    return $o;
}

# --- a clear reason on every way in ------------------------------------------

my $under = checkout_order($t, 1);
paid($under, amount => 1);
is(status($under), 'needs_review', 'underpaid: in review');
like(reason($under), qr/^Underpaid: Paid 1 GBP but the order total is 4500/,
     'underpaid is named');

my $over = checkout_order($t, 1);
paid($over, amount => 9000);
like(reason($over), qr/^Overpaid: Paid 9000 GBP/, 'overpaid is named');

my $cur = checkout_order($t, 1);
paid($cur, currency => 'usd');
like(reason($cur), qr/^Currency mismatch: Paid 4500 USD/,
     'a currency mismatch is named');

my $o = checkout_order($t, 1);
is(admin(POST => "orders/$o->{ref}/review", { reason => 'Odd address' })
   ->{status}, 200, 'an admin marks one');
is(reason($o), 'Odd address', 'with their reason');
is($t->sql_value("SELECT detail->>'actor' FROM order_events WHERE order_id ="
   . " :'p1' AND to_status = 'needs_review'", $o->{id}), 'admin',
   'the actor is in its history');

# a way into review that names no reason still leaves one
my $x = checkout_order($t, 1);
$t->sql("SELECT order_transition(:'p1', 'needs_review', 'job:42')", $x->{id});
is(reason($x), 'Sent to review by job:42.', 'no reason given: the cause');

my $r = admin(GET => "orders/$under->{ref}");
like($r->{json}{review_reason}, qr/^Underpaid/, 'the admin order shows it');
$r = admin(GET => 'orders?status=needs_review');
my ($row) = grep { $_->{order} eq $over->{ref} } @{$r->{json}{orders}};
like($row->{review_reason}, qr/^Overpaid/, 'and the admin list');

# --- a note: free text, any state, nothing else changes ----------------------

my $before = events_count($under);
$r = admin(POST => "orders/$under->{ref}/note",
           { note => 'Customer says the bank took <b>45.00</b>.' });
is($r->{status}, 200, 'note: 200') or diag $r->{content};
is($r->{json}{status}, 'needs_review', 'the answer is the order, unchanged');
my ($ev) = $t->sql("SELECT from_status, to_status, cause, detail->>'action',"
    . " detail->>'note', detail->>'actor' FROM order_events WHERE order_id ="
    . " :'p1' ORDER BY id DESC LIMIT 1", $under->{id});
is_deeply($ev, ['needs_review', 'needs_review', 'admin', 'note',
                'Customer says the bank took <b>45.00</b>.', 'admin'],
          'the note is in its history with who wrote it');
is(status($under), 'needs_review', 'still in review');
like(reason($under), qr/^Underpaid/, 'the reason stays');
my $p = paid_order();
is(admin(POST => "orders/$p->{ref}/note", { note => 'Gift wrap' })->{status},
   200, 'a note on a paid order');
is(status($p), 'paid', 'still paid');

$before = events_count($under);
for my $c ([{}, 400, 'invalid_note'], [{ note => '  ' }, 400, 'invalid_note'],
           [{ note => 42 }, 400, 'invalid_note'],
           [{ note => 'x' x 2001 }, 400, 'invalid_note'],
           ['{"note":', 400, 'invalid_json'])
{
    my ($body, $st, $code) = @$c;
    $r = admin(POST => "orders/$under->{ref}/note", $body);
    my $what = ref $body ? substr(encode_json($body), 0, 30) : $body;
    is($r->{status}, $st, "note $what: $st");
    is($r->{json}{error}{code}, $code, "note $what: $code");
}
is(admin(POST => 'orders/nosuch/note', { note => 'x' })->{status}, 404,
   'note on no such order: 404');
is(admin(POST => "orders/$under->{ref}/note", { note => 'x' }, 'bad')
   ->{status}, 401, 'note with a bad token: 401');
is(events_count($under), $before, 'refused notes write nothing');

# --- approve: the actor is recorded ------------------------------------------

$r = admin(POST => "orders/$over->{ref}/resolve",
           { to => 'paid', note => 'Keep the change' });
is($r->{status}, 200, 'approve: 200') or diag $r->{content};
is($t->sql_value("SELECT detail->>'actor' FROM order_events WHERE order_id ="
   . " :'p1' AND to_status = 'paid' AND cause = 'admin'", $over->{id}),
   'admin', 'approved by the admin');

# --- cancel with refund -------------------------------------------------------

$before = events_count($under);
my $n = refunds();
for my $c ([{ to => 'cancelled', refund => 'yes' }, 400, 'invalid_refund'],
           [{ to => 'cancelled', refund => 1 }, 400, 'invalid_refund'],
           [{ to => 'cancelled' }, 409, 'money_held'],
           [{ to => 'cancelled', refund => JSON::PP::false }, 409,
            'money_held'])
{
    my ($body, $st, $code) = @$c;
    $r = admin(POST => "orders/$under->{ref}/resolve", $body);
    my $what = encode_json($body);
    is($r->{status}, $st, "$what: $st") or diag $r->{content};
    is($r->{json}{error}{code}, $code, "$what: $code");
}
is(refunds(), $n, 'Stripe was not asked');
is(events_count($under), $before, 'nothing written');

# a lab has it: cancel that first, Stripe is not asked
$t->sql("SELECT lab_order_new(:'p1', 'prodigi', 'submitted', NULL, NULL,"
    . " 'job:test')", $under->{id});
$t->sql("UPDATE jobs SET done_at = now() WHERE kind = 'lab_submit'");
$r = admin(POST => "orders/$under->{ref}/resolve",
           { to => 'cancelled', refund => JSON::PP::true });
is($r->{status}, 409, 'a lab order live: 409');
is($r->{json}{error}{code}, 'lab_orders_live', 'lab_orders_live');
is(refunds(), $n, 'Stripe was not asked');
$t->sql("UPDATE lab_orders SET status = 'cancelled' WHERE order_id = :'p1'",
    $under->{id});

$r = admin(POST => "orders/$under->{ref}/resolve",
           { to => 'cancelled', refund => JSON::PP::true,
             note => 'Customer asked to cancel' });
is($r->{status}, 202, 'cancel with refund: 202') or diag $r->{content};
is($r->{json}{status}, 'requested', 'the refund is requested');
is($r->{json}{amount}, 1, 'all that was paid');
like($r->{json}{refund}, qr/^re_/, "Stripe's refund");
my ($req) = grep { $_->{path} eq '/v1/refunds' } $stripe->requests;
my %f = %{ Darkroom::Stripe::form_of($req->{body}) };
is($f{amount}, 1, 'Stripe is asked for the amount paid');
is($f{payment_intent}, "pi_$under->{session}", 'of the payment');
like($req->{headers}{'idempotency-key'}, qr/^darkroom-refund-$under->{id}-0-1$/,
     'with the refund idempotency key');
is(status($under), 'needs_review', 'in review until Stripe reports it');
($ev) = $t->sql("SELECT cause, detail->>'action', detail->>'note',"
    . " detail->>'actor', detail->>'refund', detail->>'amount'"
    . " FROM order_events WHERE order_id = :'p1' ORDER BY id DESC LIMIT 1",
    $under->{id});
is_deeply($ev, ['admin', 'cancel_refund', 'Customer asked to cancel', 'admin',
                $r->{json}{refund}, '1'],
          'the request is in its history with who asked');

$r = webhook($t, $secret, event('charge.refunded', charge(
    payment_intent => "pi_$under->{session}", amount => 1,
    amount_refunded => 1, refunded => 1, order_id => $under->{id})));
is($r->{json}{result}, 'refunded', 'the refund arrives') or diag $r->{content};
is(status($under), 'refunded', 'the order ends refunded');

# in review without a payment: "refund" changes nothing, it is cancelled
my $u = checkout_order($t, 1);
admin(POST => "orders/$u->{ref}/review", { reason => 'Fraud?' });
$n = refunds();
$r = admin(POST => "orders/$u->{ref}/resolve",
           { to => 'cancelled', refund => JSON::PP::true, note => 'Fraud' });
is($r->{status}, 200, 'nothing paid: cancelled at once') or diag $r->{content};
is(status($u), 'cancelled', 'cancelled');
is(refunds(), $n, 'no refund asked');

# not in review: refused, Stripe not asked
$r = admin(POST => "orders/$p->{ref}/resolve",
           { to => 'cancelled', refund => JSON::PP::true });
is($r->{status}, 409, 'not in review: 409');
is($r->{json}{error}{code}, 'not_in_review', 'not_in_review');
is(refunds(), $n, 'no refund asked');

# Stripe refuses the refund: the order stays in review, nothing recorded
$stripe->set(refund_status => 400);
$before = events_count($cur);
$r = admin(POST => "orders/$cur->{ref}/resolve",
           { to => 'cancelled', refund => JSON::PP::true });
isnt($r->{status}, 202, 'Stripe refused: not accepted');
is(status($cur), 'needs_review', 'still in review');
is(events_count($cur), $before, 'nothing recorded');

done_testing;
