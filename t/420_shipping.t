#!/usr/bin/perl
# Shipping by zone: the cart quote and checkout price shipping from the
# zone of the buyer's country, in the cart's currency, per order and per
# item, by product where a product has its own rate, free at or above a
# threshold of goods after discount; the cheapest method unless one is
# chosen, the methods offered listed; a country without a zone or rate
# and a method not offered are clear 4xx answers that write nothing;
# downloads alone ship nothing.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use JSON::PP;
use Darkroom::Test;
use Darkroom::Stripe qw(demo_catalogue shop_conf fake_api);

my $t = Darkroom::Test->new;
my $stripe = fake_api($t);
shop_conf($t, stripe => $stripe->url);
demo_catalogue($t);
$t->sql(<<'SQL');
INSERT INTO product_prices VALUES ('giclee-a3', 'EUR', 5000);
INSERT INTO shipping_zones (id, name) VALUES
  ('uk', 'United Kingdom'), ('europe', 'Europe'), ('world', 'World');
INSERT INTO shipping_zone_countries VALUES
  ('GB', 'uk'), ('IE', 'europe'), ('FR', 'europe'), ('US', 'world');
INSERT INTO shipping_rates (zone_id, currency, method, product_id, name,
                            amount, per_item, free_over) VALUES
  ('uk', 'GBP', 'standard', NULL, 'Royal Mail Tracked 48', 450, 100, 10000),
  ('uk', 'GBP', 'express', NULL, 'Next day', 1200, 0, NULL),
  ('uk', 'GBP', 'standard', 'canvas-50', 'Courier (canvas)', 1500, 500, NULL),
  ('europe', 'GBP', 'standard', NULL, 'Europe tracked', 900, 200, NULL),
  ('europe', 'EUR', 'standard', NULL, 'Europe tracked', 1000, 250, NULL),
  ('world', 'USD', 'express', NULL, 'DHL Express', 2500, 0, NULL);
SQL
$t->start;

sub quote {
    my ($body) = @_;
    return $t->http(POST => '/api/cart/quote', {
        headers => { 'Content-Type' => 'application/json' },
        content => encode_json($body) });
}

sub counts {
    return join ',', map { $t->sql_value("SELECT count(*) FROM $_") }
        qw(orders order_items jobs);
}

sub items { [ map { { photo => 'harbour-dawn', product => $_->[0],
                      quantity => $_->[1] } } @_ ] }

sub total_ok {
    my ($q, $what) = @_;
    is($q->{total}, $q->{subtotal} - $q->{discount_amount}
        + $q->{shipping_amount} + ($q->{tax_inclusive} ? 0 : $q->{tax_amount}),
        "$what: the total is the sum of its parts");
}

# --- the UK, one A3 print: the cheapest method, per order + per item ---------
my $r = quote({ items => items([ 'giclee-a3', 1 ]), country => 'GB' });
is($r->{status}, 200, 'quote to GB') or diag $r->{content};
my $s = $r->{json}{shipping};
is($s->{method}, 'standard', 'cheapest method taken');
is($s->{amount}, 450 + 100, 'flat 4.50 per order + 1.00 per item');
is($s->{name}, 'Royal Mail Tracked 48', 'the rate is named');
is($s->{zone}, 'uk', 'the zone');
is_deeply($s->{countries}, ['GB'], 'the countries Stripe may take');
is_deeply($s->{options}, [
    { method => 'standard', name => 'Royal Mail Tracked 48', amount => 550 },
    { method => 'express', name => 'Next day', amount => 1200 } ],
    'the methods offered, cheapest first');
is($r->{json}{shipping_amount}, 550, 'shipping_amount');
total_ok($r->{json}, 'GB');

# two prints: per item counts the quantity
$r = quote({ items => items([ 'giclee-a3', 2 ]), country => 'GB' });
is($r->{json}{shipping}{amount}, 450 + 2 * 100, 'per item x 2');

# --- free at the threshold (goods 135.00 >= 100.00) --------------------------
$r = quote({ items => items([ 'giclee-a3', 3 ]), country => 'GB' });
is($r->{json}{shipping}{amount}, 0, 'free at or above 100.00 of goods');
is($r->{json}{shipping}{options}[0]{amount}, 0, 'the free option listed');
is($r->{json}{shipping}{options}[1]{method}, 'express',
    'express is not free: its rate has no threshold');
is($r->{json}{shipping}{options}[1]{amount}, 1200, 'express amount');

# --- a product's own rate overrides the zone's for its lines -----------------
$r = quote({ items => items([ 'canvas-50', 2 ], [ 'giclee-a3', 1 ]),
             country => 'GB', shipping_method => 'standard' });
is($r->{status}, 200, 'canvas and print') or diag $r->{content};
is($r->{json}{shipping}{amount}, (1500 + 2 * 500),
    'canvas by its courier rate; the print free (goods over 100.00)');
$r = quote({ items => items([ 'canvas-50', 1 ]), country => 'GB' });
is($r->{json}{shipping}{method}, 'express',
    'the canvas alone: express by the general rate is the cheaper');
$r = quote({ items => items([ 'canvas-50', 1 ]), country => 'GB',
             shipping_method => 'Standard' });
is($r->{json}{shipping}{amount}, 1500 + 500, 'the canvas rate, under no threshold');
is($r->{json}{shipping}{name}, 'Courier (canvas)', 'named by its own rate');
is($r->{json}{total}, 12000 + 2000, 'total with the canvas shipping');

# --- choosing a method -------------------------------------------------------
$r = quote({ items => items([ 'giclee-a3', 1 ]), country => 'GB',
             shipping_method => 'express' });
is($r->{json}{shipping}{method}, 'express', 'express chosen');
is($r->{json}{shipping}{amount}, 1200, 'express amount');
total_ok($r->{json}, 'express');

my $before = counts();
$r = quote({ items => items([ 'giclee-a3', 1 ]), country => 'GB',
             shipping_method => 'overnight' });
is($r->{status}, 400, 'a method the zone does not offer: 400');
is($r->{json}{error}{code}, 'shipping_method_unavailable', 'named');
like($r->{json}{error}{message}, qr/standard, express/, 'naming those offered');
# canvas has no express rate of its own but the general one carries it
$r = quote({ items => items([ 'canvas-50', 1 ]), country => 'GB',
             shipping_method => 'express' });
is($r->{json}{shipping}{amount}, 1200, 'express by the general rate');

# --- by currency and zone ----------------------------------------------------
$r = quote({ items => items([ 'giclee-a3', 1 ]), country => 'IE' });
is($r->{json}{shipping}{amount}, 900 + 200, 'Europe in GBP');
is_deeply($r->{json}{shipping}{countries}, ['FR', 'IE'],
    'the zone\'s countries (same tax: none set)');
$r = quote({ items => items([ 'giclee-a3', 1 ]), country => 'FR',
             currency => 'EUR' });
is($r->{status}, 200, 'Europe in EUR') or diag $r->{content};
is($r->{json}{shipping}{amount}, 1000 + 250, 'Europe in EUR: its own rate');
$r = quote({ items => items([ 'giclee-a3', 1 ]), country => 'US',
             currency => 'USD' });
is($r->{json}{shipping}{method}, 'express', 'the only method offered');
is($r->{json}{shipping}{amount}, 2500, 'World in USD');

# --- where nothing ships -----------------------------------------------------
for my $bad (
    [ { items => items([ 'giclee-a3', 1 ]), country => 'JP' }, 422,
      'no_shipping', qr/JP/, 'a country in no zone' ],
    [ { items => items([ 'giclee-a3', 1 ]), country => 'US' }, 422,
      'no_shipping', qr/US in GBP/, 'a zone without a rate in the currency' ],
    [ { items => items([ 'canvas-50', 1 ]), country => 'FR' }, 400,
      'no_price', qr/EUR|GBP/, 'sanity: a product without the price' ])
{
    my ($body, $status, $code, $msg, $what) = @$bad;
    $body->{currency} = 'EUR' if $code eq 'no_price';
    for my $path ('/api/cart/quote', '/api/checkout') {
        $r = $t->http(POST => $path, {
            headers => { 'Content-Type' => 'application/json' },
            content => encode_json({ %$body, email => 'x@example.com' }) });
        is($r->{status}, $status, "$what: $status ($path)");
        is($r->{json}{error}{code}, $code, "$what: $code");
        like($r->{json}{error}{message}, $msg, "$what: named");
    }
}
is(counts(), $before, 'refused carts write nothing');

# a download ships nothing, to anywhere
$r = quote({ items => [ { photo => 'moor-rain', product => 'digital',
                          quantity => 1 } ], country => 'JP' });
is($r->{status}, 200, 'a download to a country without shipping');
is($r->{json}{shipping}, undef, 'no shipping for downloads');
is($r->{json}{shipping_amount}, 0, 'shipping_amount 0');

# --- checkout writes what the quote said --------------------------------------
my $cart = { items => items([ 'giclee-a3', 1 ]), country => 'GB',
             shipping_method => 'express', email => 'ship@example.com' };
my $q = quote($cart)->{json};
$r = $t->http(POST => '/api/checkout', {
    headers => { 'Content-Type' => 'application/json' },
    content => encode_json($cart) });
is($r->{status}, 201, 'checkout with express') or diag $r->{content};
my ($row) = $t->sql("SELECT total, shipping_amount, shipping_method,"
    . " shipping_rate, shipping_zone, country FROM orders WHERE ref = :'p1'",
    $r->{json}{order});
is_deeply($row, [ $q->{total}, 1200, 'express', 'Next day', 'uk', 'GB' ],
    'the order keeps the shipping it was quoted');
is($row->[0], 4500 + 1200, 'and charges it');

# the shipping Stripe was sent: the quoted amount, the zone's countries
my ($req) = grep { $_->{path} eq '/v1/checkout/sessions' }
    reverse $stripe->requests;
my $f = Darkroom::Stripe::form_of($req->{body});
is($f->{'shipping_options[0][shipping_rate_data][type]'}, 'fixed_amount',
    'a fixed-amount shipping option');
is($f->{'shipping_options[0][shipping_rate_data][fixed_amount][amount]'},
   1200, 'Stripe gets the shipping amount');
is($f->{'shipping_options[0][shipping_rate_data][fixed_amount][currency]'},
   'gbp', 'in the cart\'s currency');
is($f->{'shipping_options[0][shipping_rate_data][display_name]'}, 'Next day',
   'named as the rate');
is($f->{'shipping_address_collection[allowed_countries][0]'}, 'GB',
   'the address in the zone');
ok(!exists $f->{'shipping_address_collection[allowed_countries][1]'},
   'and nowhere else');

done_testing;
