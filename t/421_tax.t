#!/usr/bin/perl
# Tax per line: at the rate of the buyer's country for the line's kind
# (print or download), on the line's amount after its discount, and on
# shipping at the print rate; prices including tax (the part of them,
# round(x * r / (100 + r))) or excluding it (round(x * r / 100), added to
# the total), rounded half up to whole minor units; a country without a
# rate pays none.  Checkout writes each line's tax and rate, and when
# prices exclude tax Stripe is sent the tax as one more line, so its
# total is the order's.  The address Stripe may take is limited to the
# zone's countries taxed as the buyer's.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use JSON::PP;
use Darkroom::Test;
use Darkroom::Stripe qw(demo_catalogue shop_conf fake_api form_of);

my $t = Darkroom::Test->new;
my $stripe = fake_api($t);
shop_conf($t, stripe => $stripe->url);
demo_catalogue($t);
$t->sql(<<'SQL');
INSERT INTO products (id, name, kind) VALUES ('odd', 'Odd download', 'digital');
INSERT INTO product_prices VALUES ('odd', 'GBP', 1503);
INSERT INTO photo_products VALUES ('moor-rain', 'odd');
INSERT INTO shipping_zones (id, name) VALUES ('uk', 'UK'), ('europe', 'Europe');
INSERT INTO shipping_zone_countries VALUES
  ('GB', 'uk'), ('IE', 'europe'), ('FR', 'europe'), ('DE', 'europe');
INSERT INTO shipping_rates (zone_id, currency, method, name, amount) VALUES
  ('uk', 'GBP', 'standard', 'Royal Mail', 450),
  ('europe', 'GBP', 'standard', 'Europe tracked', 900);
INSERT INTO tax_rates (country, kind, rate, label) VALUES
  ('GB', 'print', 20, 'VAT'), ('GB', 'digital', 20, 'VAT'),
  ('IE', 'print', 23, 'VAT'), ('IE', 'digital', 23, 'VAT'),
  ('FR', 'print', 23, 'TVA'), ('FR', 'digital', 23, 'TVA'),
  ('DE', 'print', 19, 'MwSt'), ('DE', 'digital', 7, 'MwSt'),
  ('NL', 'digital', 12.5, 'BTW');
SQL
$t->start;

sub quote {
    my ($body) = @_;
    my $r = $t->http(POST => '/api/cart/quote', {
        headers => { 'Content-Type' => 'application/json' },
        content => encode_json($body) });
    diag $r->{content} unless $r->{status} == 200;
    return $r->{json};
}

my $mixed = [ { photo => 'harbour-dawn', product => 'giclee-a3', quantity => 1 },
              { photo => 'moor-rain', product => 'digital', quantity => 1 } ];
my $odd = [ { photo => 'moor-rain', product => 'odd', quantity => 1 } ];

sub parts_ok {
    my ($q, $what) = @_;
    my $lines = 0;
    $lines += $_->{tax} for @{$q->{lines}};
    is($q->{tax_amount}, $lines + ($q->{shipping} ? $q->{shipping}{tax} : 0),
        "$what: tax_amount is the lines' and the shipping's");
    is($q->{total}, $q->{subtotal} - $q->{discount_amount}
        + $q->{shipping_amount} + ($q->{tax_inclusive} ? 0 : $q->{tax_amount}),
        "$what: total is the sum of its parts");
}

# --- prices include tax (the default) ----------------------------------------
my $q = quote({ items => $mixed, country => 'GB' });
ok($q->{tax_inclusive}, 'the shop\'s prices include tax');
is_deeply([ map { [$_->{tax_rate}, $_->{tax}] } @{$q->{lines}} ],
    [ [20, 750], [20, 250] ], 'GB: 20 % of 45.00 and 15.00, inclusive');
is($q->{shipping}{tax}, 75, 'shipping taxed at the print rate (4.50 -> 0.75)');
is($q->{tax_amount}, 1075, 'tax_amount');
is($q->{total}, 4500 + 1500 + 450, 'inclusive: the total does not grow');
is($q->{tax_label}, 'VAT 20 %', 'labelled with its rate');
parts_ok($q, 'GB inclusive');

# print and download taxed differently
$q = quote({ items => $mixed, country => 'DE' });
is_deeply([ map { [$_->{tax_rate}, $_->{tax}] } @{$q->{lines}} ],
    [ [19, 718], [7, 98] ], 'DE: 19 % print, 7 % download (rounded)');
is($q->{shipping}{tax}, 144, 'DE shipping at the print rate: 143.7 -> 144');
is($q->{tax_label}, 'MwSt', 'two rates: the label alone');
parts_ok($q, 'DE');

# half up: 15.03 * 20 / 120 = 2.505
$q = quote({ items => $odd, country => 'GB' });
is($q->{lines}[0]{tax}, 251, 'inclusive 250.5 rounds up to 251');

# a country without a rate pays none
$q = quote({ items => $odd, country => 'US' });
is($q->{lines}[0]{tax}, 0, 'no rate for US: no tax');
is($q->{lines}[0]{tax_rate}, 0, 'rate 0 recorded');
is($q->{tax_amount}, 0, 'tax_amount 0');
is($q->{tax_label}, 'Tax', 'a neutral label');

# the address Stripe may take: the zone's countries taxed alike
is_deeply(quote({ items => $mixed, country => 'IE' })->{shipping}{countries},
    [qw(FR IE)], 'IE: its zone, less DE (taxed otherwise)');
is_deeply(quote({ items => $mixed, country => 'DE' })->{shipping}{countries},
    ['DE'], 'DE: only itself');

# checkout records each line's tax and the order's
my $r = $t->http(POST => '/api/checkout', {
    headers => { 'Content-Type' => 'application/json' },
    content => encode_json({ items => $mixed, country => 'DE',
                             email => 'tax@example.com' }) });
is($r->{status}, 201, 'checkout to DE') or diag $r->{content};
my $oid = $t->sql_value("SELECT id FROM orders WHERE ref = :'p1'",
                        $r->{json}{order});
is_deeply([ map { [ $_->[0] + 0, $_->[1] + 0 ] } $t->sql(
    "SELECT tax, tax_rate FROM order_items WHERE order_id = :'p1'"
    . " ORDER BY line", $oid) ], [ [718, 19], [98, 7] ],
    'order_items keep tax and rate');
is_deeply([ $t->sql("SELECT tax_amount, shipping_tax, tax_label, total"
    . " FROM orders WHERE id = :'p1'", $oid) ],
    [ [ 960, 144, 'MwSt', 6900 ] ], 'the order keeps its tax');
my ($req) = grep { $_->{path} eq '/v1/checkout/sessions' }
    reverse $stripe->requests;
my $f = form_of($req->{body});
ok(!defined $f->{'line_items[2][quantity]'}, 'inclusive: no tax line at Stripe');
is_deeply([ map { $f->{"shipping_address_collection[allowed_countries][$_]"} }
    0 .. 1 ], [ 'DE', undef ], 'Stripe takes a DE address only');

# --- prices exclude tax ------------------------------------------------------
$t->sql("UPDATE shop_settings SET tax_inclusive = false");
$q = quote({ items => $mixed, country => 'GB' });
ok(!$q->{tax_inclusive}, 'exclusive');
is_deeply([ map { $_->{tax} } @{$q->{lines}} ], [ 900, 300 ],
    'GB: 20 % on top of 45.00 and 15.00');
is($q->{shipping}{tax}, 90, 'and on shipping');
is($q->{total}, 4500 + 1500 + 450 + 1290, 'the tax is added to the total');
parts_ok($q, 'GB exclusive');

$q = quote({ items => $odd, country => 'NL' });
is($q->{lines}[0]{tax}, 188, 'exclusive 12.5 % of 15.03 = 187.875 -> 188');
$t->sql("UPDATE product_prices SET amount = 1500 WHERE product_id = 'odd'");
$q = quote({ items => $odd, country => 'NL' });
is($q->{lines}[0]{tax}, 188, 'exclusive 12.5 % of 15.00 = 187.5 -> 188 (half up)');
is($q->{tax_label}, 'BTW 12.5 %', 'a rate with its decimals');

$r = $t->http(POST => '/api/checkout', {
    headers => { 'Content-Type' => 'application/json' },
    content => encode_json({ items => $mixed, country => 'GB',
                             email => 'tax@example.com' }) });
is($r->{status}, 201, 'checkout, exclusive') or diag $r->{content};
($req) = grep { $_->{path} eq '/v1/checkout/sessions' }
    reverse $stripe->requests;
$f = form_of($req->{body});
is($f->{'line_items[2][price_data][product_data][name]'}, 'VAT 20 %',
    'the tax as a line at Stripe');
is($f->{'line_items[2][price_data][unit_amount]'}, 1290, 'its amount');
is($f->{'line_items[2][quantity]'}, 1, 'once');
my $stripe_total = $f->{'shipping_options[0][shipping_rate_data][fixed_amount][amount]'};
$stripe_total += $f->{"line_items[$_][price_data][unit_amount]"}
    * $f->{"line_items[$_][quantity]"} for 0 .. 2;
is($stripe_total, $t->sql_value("SELECT total FROM orders WHERE ref = :'p1'",
    $r->{json}{order}), 'Stripe\'s lines and shipping add up to the order total');

done_testing;
