#!/usr/bin/perl
# Discount codes at checkout: percentage and fixed (per currency), a code
# limited to products or kinds spread over the lines it applies to, the
# minimum spend, and every reason a code is refused, each a 4xx JSON
# naming it that writes nothing (no order, no use of the code).

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use JSON::PP;
use Darkroom::Test;
use Darkroom::Stripe qw(demo_catalogue shop_conf sandbox);

my $t = Darkroom::Test->new;
my $port = $t->port(0);
shop_conf($t, stripe => 'http://127.0.0.1:' . $t->port(1));
my $sb = sandbox($t, webhook => "http://127.0.0.1:$port/webhooks/stripe");
demo_catalogue($t);
$t->start;

my $admin = { Authorization => 'Bearer admin-token-1',
              'Content-Type' => 'application/json' };

sub put_code {
    my ($body) = @_;
    return $t->http(POST => '/admin/api/discounts',
        { headers => $admin, content => encode_json($body) });
}

sub checkout {
    my ($code, $items, %o) = @_;
    return $t->http(POST => '/api/checkout', {
        headers => { 'Content-Type' => 'application/json' },
        content => encode_json({ email => $o{email} // 'ada@example.com',
            currency => $o{currency} // 'GBP',
            defined $code ? (discount_code => $code) : (),
            items => $items }) });
}

sub counts {
    return join '/', map { $t->sql_value("SELECT count(*) FROM $_") }
        qw(orders order_items discount_redemptions jobs);
}

my $A3 = { photo => 'harbour-dawn', product => 'giclee-a3', quantity => 1 };
my $DIG = { photo => 'moor-rain', product => 'digital', quantity => 1 };
my $CANVAS = { photo => 'harbour-dawn', product => 'canvas-50', quantity => 1 };

# the codes
my $past = '2020-01-01T00:00:00Z';
my $future = '2099-01-01T00:00:00Z';
for my $c (
    { code => 'ten', kind => 'percent', percent_off => 10 },
    { code => 'FIVER', kind => 'fixed', amount_off => { GBP => 500 } },
    { code => 'BIG', kind => 'fixed', amount_off => { GBP => 100000 } },
    { code => 'OLD', kind => 'percent', percent_off => 5, ends_at => $past },
    { code => 'SOON', kind => 'percent', percent_off => 5,
      starts_at => $future },
    { code => 'GONE', kind => 'percent', percent_off => 5,
      max_redemptions => 1 },
    { code => 'ONCE', kind => 'percent', percent_off => 5,
      max_per_email => 1 },
    { code => 'MIN30', kind => 'percent', percent_off => 20,
      min_spend => { GBP => 5000 } },
    { code => 'PRINTS', kind => 'percent', percent_off => 33,
      kinds => ['print'] },
    { code => 'CANVAS7', kind => 'fixed', amount_off => { GBP => 700 },
      products => ['canvas-50'] },
    { code => 'SPLIT', kind => 'fixed', amount_off => { GBP => 1000 } },
    { code => 'OFF', kind => 'percent', percent_off => 50, active => JSON::PP::false },
) {
    my $r = put_code($c);
    is($r->{status}, 200, "code $c->{code} created") or diag $r->{content};
}

# --- a percentage: of the goods, half up, on the order and its lines -------
my $before = counts();
my $r = checkout('Ten', [ { %$A3, quantity => 2 }, $DIG ]);
is($r->{status}, 201, 'a 10% code, any case') or diag $r->{content};
my ($o) = $t->sql("SELECT id, subtotal, discount_code, discount_amount, total"
    . " FROM orders WHERE ref = :'p1'", $r->{json}{order});
is_deeply([ @$o[1 .. 4] ], [10500, 'TEN', 1050, 9450],
    'subtotal 105.00, TEN, 10.50 off, total 94.50');
is_deeply([ map { $_->[0] } $t->sql("SELECT discount FROM order_items"
    . " WHERE order_id = :'p1' ORDER BY line", $o->[0]) ], [900, 150],
    'each line its share: 9.00 and 1.50');
is($t->sql_value("SELECT state || ' ' || amount || ' ' || email"
    . " FROM discount_redemptions WHERE order_id = :'p1'", $o->[0]),
    'reserved 1050 ada@example.com', 'a use reserved for the order');

# --- fixed: an amount in the currency; never more than the goods -------------
$r = checkout('fiver', [$A3]);
is($r->{status}, 201, 'a fixed code');
is($t->sql_value("SELECT discount_amount || ' ' || total FROM orders"
    . " WHERE ref = :'p1'", $r->{json}{order}), '500 4000', '5.00 off 45.00');

$r = checkout('BIG', [$A3, $DIG]);
is($r->{status}, 409, 'a fixed code worth all the goods: nothing to pay');
is($r->{json}{error}{code}, 'nothing_to_pay', 'refused as nothing_to_pay');

# --- largest remainder: the lines' shares add up exactly ---------------------
# 10.00 over 45.00 + 15.00 + 15.00 (75.00): 6.00, 2.00, 2.00
$r = checkout('SPLIT', [$A3, $DIG, { %$DIG, photo => 'harbour-dawn' }]);
is($r->{status}, 201, 'a fixed code over three lines');
($o) = $t->sql("SELECT id FROM orders WHERE ref = :'p1'", $r->{json}{order});
is_deeply([ map { $_->[0] } $t->sql("SELECT discount FROM order_items"
    . " WHERE order_id = :'p1' ORDER BY line", $o->[0]) ], [600, 200, 200],
    '6.00, 2.00, 2.00');
# 33% of 45.00 + 120.00 print, not the download: 54.45 over two lines
$r = checkout('prints', [$A3, $DIG, $CANVAS]);
is($r->{status}, 201, 'a code for prints only');
($o) = $t->sql("SELECT id, discount_amount, total FROM orders"
    . " WHERE ref = :'p1'", $r->{json}{order});
is($o->[1], 5445, '33% of the prints (165.00): 54.45');
my @d = map { $_->[0] } $t->sql("SELECT discount FROM order_items"
    . " WHERE order_id = :'p1' ORDER BY line", $o->[0]);
is_deeply(\@d, [1485, 0, 3960], 'the download gets none; 14.85 + 39.60');
is($d[0] + $d[1] + $d[2], $o->[1], 'the lines add up to the discount');
# 7.00 off the canvas only, in a cart with other things
$r = checkout('CANVAS7', [$A3, $CANVAS]);
is($r->{status}, 201, 'a code for one product');
($o) = $t->sql("SELECT id FROM orders WHERE ref = :'p1'", $r->{json}{order});
is_deeply([ map { $_->[0] } $t->sql("SELECT discount FROM order_items"
    . " WHERE order_id = :'p1' ORDER BY line", $o->[0]) ], [0, 700],
    'only the canvas line is discounted');

# remainders: 1.00 off three lines of 45.00: 0.34 + 0.33 + 0.33
$t->sql("UPDATE discount_codes SET amount_off = '{\"GBP\": 100}'"
    . " WHERE code = 'SPLIT'");
$r = checkout('SPLIT', [$A3, { %$A3, photo => 'moor-rain' },
    { %$A3, quantity => 1, product => 'giclee-a3', photo => 'harbour-dawn' }]);
is($r->{status}, 201, 'three equal lines');
($o) = $t->sql("SELECT id FROM orders WHERE ref = :'p1'", $r->{json}{order});
is_deeply([ map { $_->[0] } $t->sql("SELECT discount FROM order_items"
    . " WHERE order_id = :'p1' ORDER BY line", $o->[0]) ], [34, 33, 33],
    'the odd penny to the first line');

# --- every refusal: its status and code, and nothing written -----------------
my @bad = (
    ['NOPE', [$A3], {}, 400, 'unknown_code', qr/no discount code "NOPE"/],
    ['OFF', [$A3], {}, 400, 'unknown_code', qr/OFF/],
    ['OLD', [$A3], {}, 400, 'code_expired', qr/expired on 2020-01-01/],
    ['SOON', [$A3], {}, 400, 'code_not_started', qr/from 2099-01-01/],
    ['FIVER', [{ %$A3 }], { currency => 'USD' }, 400, 'wrong_currency',
        qr/cannot be used in USD/],
    ['MIN30', [$A3], {}, 400, 'below_minimum',
        qr/at least \x{a3}50\.00 \(this cart: \x{a3}45\.00\)/],
    ['MIN30', [$DIG], { currency => 'USD' }, 400, 'wrong_currency', qr/USD/],
    ['PRINTS', [$DIG], {}, 400, 'code_not_applicable',
        qr/does not apply to anything/],
    ['CANVAS7', [$A3, $DIG], {}, 400, 'code_not_applicable', qr/CANVAS7/],
    ['bad code!', [$A3], {}, 400, 'invalid_code', qr/letters, digits/],
);
for my $b (@bad) {
    my ($code, $items, $o, $status, $err, $msg) = @$b;
    $before = counts();
    $r = checkout($code, $items, %$o);
    is($r->{status}, $status, "$code: $status") or diag $r->{content};
    is($r->{json}{error}{code}, $err, "$code: $err");
    like($r->{json}{error}{message} // '', $msg,
        "$code: the message says why");
    is(counts(), $before, "$code: nothing written");
}

# the minimum met: 20% of 120.00
$r = checkout('min30', [$CANVAS]);
is($r->{status}, 201, 'the minimum spend met');
is($t->sql_value("SELECT discount_amount FROM orders WHERE ref = :'p1'",
    $r->{json}{order}), 2400, '20% off');

# --- limits: in all, and per email (any case) --------------------------------
$r = checkout('GONE', [$A3]);
is($r->{status}, 201, 'the one use of GONE');
$before = counts();
$r = checkout('GONE', [$A3], email => 'bob@example.com');
is($r->{status}, 409, 'GONE again: 409');
is($r->{json}{error}{code}, 'code_exhausted', 'code_exhausted');
is(counts(), $before, 'nothing written');

$r = checkout('ONCE', [$A3]);
is($r->{status}, 201, 'ONCE for ada');
$before = counts();
$r = checkout('ONCE', [$A3], email => 'ADA@example.com');
is($r->{status}, 409, 'ONCE again for ada: 409');
is($r->{json}{error}{code}, 'code_used', 'code_used');
like($r->{json}{error}{message}, qr/already been used with ADA\@example\.com/,
    'naming the email');
is(counts(), $before, 'nothing written');
$r = checkout('ONCE', [$A3], email => 'bob@example.com');
is($r->{status}, 201, 'ONCE for bob');

# --- the quote: cart_price shows it without writing --------------------------
my $q = decode_json($t->sql_value("SELECT cart_price(:'p1'::jsonb, 'GBP',"
    . " NULL, 'PRINTS', NULL, NULL)::text",
    encode_json([$A3, $DIG])));
is($q->{discount}{code}, 'PRINTS', 'the quote names the code');
is($q->{discount}{kind}, 'percent', 'its kind');
is($q->{discount}{amount}, 1485, 'and its amount');
is_deeply($q->{discount}{lines}, [1], 'and the lines it applies to');
is($q->{total}, 6000 - 1485, 'the quote total');

done_testing;
