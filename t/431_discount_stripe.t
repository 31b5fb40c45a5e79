#!/usr/bin/perl
# A discount code's way through Stripe and the order's life, against the
# sandbox: the coupon made for the order (amount_off, currency, once, one
# redemption), the session with discounts[0][coupon] whose amount_total is
# the order's total, the use redeemed when paid, released when the session
# expires or the checkout fails (and then usable again), and a replayed
# checkout that makes no second use and no second coupon.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use JSON::PP;
use HTTP::Tiny;
use Darkroom::Test qw(wait_for);
use Darkroom::Stripe qw(demo_catalogue shop_conf sandbox form_of form_structure);

my $t = Darkroom::Test->new;
my $port = $t->port(0);
shop_conf($t, stripe => 'http://127.0.0.1:' . $t->port(1),
    secrets => ['whsec_sandbox_secret']);
my $sb = sandbox($t, webhook => "http://127.0.0.1:$port/webhooks/stripe");
demo_catalogue($t);
$t->start;

my $admin = { Authorization => 'Bearer admin-token-1',
              'Content-Type' => 'application/json' };
my $A3 = { photo => 'harbour-dawn', product => 'giclee-a3', quantity => 1 };
my $DIG = { photo => 'moor-rain', product => 'digital', quantity => 1 };

sub checkout {
    my ($code, $items, %o) = @_;
    return $t->http(POST => '/api/checkout', {
        headers => { 'Content-Type' => 'application/json',
                     $o{key} ? ('Idempotency-Key' => $o{key}) : () },
        content => encode_json({ email => $o{email} // 'ada@example.com',
            discount_code => $code, items => $items }) });
}

sub stripe_get {
    my ($path) = @_;
    my $r = HTTP::Tiny->new->get($sb->url . $path,
        { headers => { Authorization => 'Bearer sk_test_darkroom' } });
    return decode_json($r->{content});
}

sub requests {
    my ($method, $path) = @_;
    return grep { $_->{method} eq $method && $_->{path} eq $path }
        @{$sb->control(GET => '/_sandbox/requests')};
}

sub order_row {
    my ($ref) = @_;
    my ($o) = $t->sql("SELECT id, status, subtotal, discount_amount, total,"
        . " coalesce(paid_amount, -1) FROM orders WHERE ref = :'p1'", $ref);
    return $o;
}

sub use_state {
    my ($id) = @_;
    return $t->sql_value("SELECT state FROM discount_redemptions"
        . " WHERE order_id = :'p1'", $id) // 'none';
}

sub session_of { ($_[0]{json}{checkout_url} // '') =~ m{/pay/(cs_\w+)$}; $1 }

for my $c ({ code => 'LAST', kind => 'percent', percent_off => 15,
             max_redemptions => 1 },
           { code => 'MANY', kind => 'fixed', amount_off => { GBP => 750 } }) {
    is($t->http(POST => '/admin/api/discounts', { headers => $admin,
        content => encode_json($c) })->{status}, 200, "$c->{code} created");
}

# --- the coupon and the session -------------------------------------------
my $r = checkout('LAST', [ { %$A3, quantity => 2 }, $DIG ]);
is($r->{status}, 201, 'checkout with LAST') or diag $r->{content};
my $o = order_row($r->{json}{order});
is_deeply([ @$o[2 .. 4] ], [10500, 1575, 8925], '15% off 105.00');
my ($c) = requests(POST => '/v1/coupons');
ok($c, 'Stripe was asked for a coupon');
my $cf = form_structure($c->{body});
is_deeply($cf, { id => "darkroom-order-$o->[0]", amount_off => 1575,
    currency => 'gbp', duration => 'once', max_redemptions => 1,
    name => 'LAST', metadata => { order_id => $o->[0],
        order_ref => $r->{json}{order} } },
    'the coupon: the order discount, once, one redemption, named by the code');
is($c->{headers}{'idempotency-key'}, "darkroom-coupon-$o->[0]",
    'with an idempotency key from the order');
my ($s) = requests(POST => '/v1/checkout/sessions');
is(form_structure($s->{body})->{discounts}[0]{coupon}, "darkroom-order-$o->[0]",
    'the session takes the coupon');
my $sid = session_of($r);
my $sess = stripe_get("/v1/checkout/sessions/$sid");
is($sess->{amount_subtotal}, 10500, "Stripe's subtotal: the goods");
is($sess->{total_details}{amount_discount}, 1575, "Stripe's discount");
is($sess->{amount_total}, $o->[4], "Stripe's total is the order's total");
is(stripe_get("/v1/coupons/darkroom-order-$o->[0]")->{amount_off}, 1575,
    'the coupon exists at Stripe');
is(use_state($o->[0]), 'reserved', 'the use is reserved');

# the last use is held: another buyer is refused
$r = checkout('LAST', [$A3], email => 'bob@example.com');
is($r->{status}, 409, 'LAST while reserved: 409');
is($r->{json}{error}{code}, 'code_exhausted', 'code_exhausted');

# --- the session expires unpaid: released, usable again ---------------------
my $ex = HTTP::Tiny->new->post($sb->url . "/v1/checkout/sessions/$sid/expire",
    { headers => { Authorization => 'Bearer sk_test_darkroom' } });
is($ex->{status}, 200, 'the session expires at Stripe');
my $first = $o;
ok(wait_for(sub { use_state($first->[0]) eq 'released' }, 10),
    'released by the expiry webhook');
is($t->sql_value("SELECT status FROM orders WHERE id = :'p1'", $o->[0]),
    'expired',
    'the order expires by the webhook');
is($t->sql_value("SELECT released_at IS NOT NULL FROM discount_redemptions"
    . " WHERE order_id = :'p1'", $o->[0]), 't', 'with the time');

$r = checkout('LAST', [$A3], email => 'bob@example.com');
is($r->{status}, 201, 'LAST can be used again') or diag $r->{content};
$o = order_row($r->{json}{order});
$sid = session_of($r);
is(stripe_get("/v1/checkout/sessions/$sid")->{amount_total}, $o->[4],
    "Stripe's total is the order's total (4500 - 675)");

# --- paid: redeemed, and the exact amount rule holds -------------------------
my $pay = $sb->control(POST => "/_sandbox/pay/$sid", { action => 'pay' });
ok(wait_for(sub { order_row($r->{json}{order})->[1] eq 'paid' }, 10),
    'the order is paid') or diag explain order_row($r->{json}{order});
$o = order_row($r->{json}{order});
is($o->[5], $o->[4], 'paid exactly the total');
is(use_state($o->[0]), 'redeemed', 'the use is redeemed');
is(stripe_get("/v1/coupons/darkroom-order-$o->[0]")->{times_redeemed}, 1,
    'the coupon redeemed once at Stripe');
$r = checkout('LAST', [$A3], email => 'cy@example.com');
is($r->{json}{error}{code}, 'code_exhausted', 'redeemed: LAST is used up');

# --- the checkout fails at Stripe: the order is cancelled, the use released --
$t->sql("UPDATE discount_codes SET max_redemptions = 2 WHERE code = 'LAST'");
$sb->control(POST => '/_sandbox/config', { fail_next => {
    'POST /v1/checkout/sessions' => { count => 1, status => 400 } } });
$r = checkout('LAST', [$A3], email => 'dee@example.com');
is($r->{status}, 502, 'Stripe refuses the session: 502') or diag $r->{content};
my ($id) = $t->sql_value("SELECT max(id) FROM orders");
is($t->sql_value("SELECT status FROM orders WHERE id = :'p1'", $id),
    'cancelled', 'the order is cancelled');
is(use_state($id), 'released', 'its use is released');

$sb->control(POST => '/_sandbox/config', { fail_next => {
    'POST /v1/coupons' => { count => 1, status => 400 } } });
$r = checkout('LAST', [$A3], email => 'dee@example.com');
is($r->{status}, 502, 'Stripe refuses the coupon: 502');
($id) = $t->sql_value("SELECT max(id) FROM orders");
is(use_state($id), 'released', 'released again');
is(scalar(grep { $_->{path} eq '/v1/checkout/sessions'
    && (form_of($_->{body})->{"metadata[order_id]"} // 0) == $id }
    requests(POST => '/v1/checkout/sessions')), 0,
    'and no session was asked for');

$r = checkout('LAST', [$A3], email => 'dee@example.com');
is($r->{status}, 201, 'the second use of LAST after two failures');

# --- a replay: one order, one use, one coupon ---------------------------------
# Stripe gives no session three times: 503, the order stays pending
$sb->control(POST => '/_sandbox/config', { fail_next => {
    'POST /v1/checkout/sessions' => 3 } });
my $key = 'replay-key-0001';
$r = checkout('MANY', [$A3, $DIG], key => $key);
is($r->{status}, 503, 'no session yet: 503 checkout_unconfirmed')
    or diag $r->{content};
($id) = $t->sql_value("SELECT max(id) FROM orders");
my $r2 = checkout('MANY', [$A3, $DIG], key => $key);
is($r2->{status}, 200, 'the replay gets its session') or diag $r2->{content};
is($t->sql_value("SELECT count(*) FROM discount_redemptions r"
    . " JOIN orders o ON o.id = r.order_id WHERE r.code = 'MANY'"), 1,
    'one use of MANY');
my @cp = grep { form_of($_->{body})->{id} eq "darkroom-order-$id" }
    requests(POST => '/v1/coupons');
is(scalar @cp, 2, 'the coupon asked for twice');
is(scalar(grep { !$_->{replayed} && $_->{status} == 200 } @cp), 1,
    'made once: the second an idempotent replay');
my $r3 = checkout('MANY', [$A3, $DIG], key => $key);
is($r3->{status}, 200, 'a third replay');
is($r3->{json}{checkout_url}, $r2->{json}{checkout_url}, 'the same session');
is(scalar(grep { form_of($_->{body})->{id} eq "darkroom-order-$id" }
    requests(POST => '/v1/coupons')), 2, 'and Stripe is not asked again');
$o = order_row($r2->{json}{order});
is(stripe_get('/v1/checkout/sessions/' . session_of($r2))->{amount_total},
    $o->[4], "the replayed session's total is the order's (6000 - 750)");
is($o->[4], 5250, 'which is 52.50');

done_testing;
