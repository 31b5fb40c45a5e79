#!/usr/bin/perl
# The demo shop's shipping and tax (conf/demo-pricing.sql, loaded by
# `make run` after the catalogue): UK, Europe and World zones with GBP,
# EUR and USD rates, standard and express, free UK standard shipping from
# £100, 20 % VAT in the UK included in the prices; loading it twice
# changes nothing.  Priced by cart_price() as the shop prices carts.

use strict;
use warnings;
use lib 't/lib';
use JSON::PP;
use Test::More;
use Darkroom::Test;

my $t = Darkroom::Test->new;
my $db = $t->db;
my $top = $t->top;

my $out = `"$top/tools/darkroom-catalogue" --quiet "$db" "$top/conf/demo-catalogue.json" 2>&1`;
is($?, 0, 'the demo catalogue loads') or diag $out;
for (1 .. 2) {
    $out = `psql -X -q -d "$db" -v ON_ERROR_STOP=1 -f "$top/conf/demo-pricing.sql" 2>&1`;
    is($?, 0, "demo-pricing.sql loads (run $_)") or diag $out;
}
is($t->sql_value("SELECT count(*) FROM shipping_rates"), 16,
   'loaded twice: the same rates');

sub price {
    my ($items, $cur, $country, $method) = @_;
    return decode_json($t->sql_value("SELECT cart_price(:'p1'::jsonb, :'p2',"
        . " :'p3', NULL, NULL, nullif(:'p4', ''))", encode_json([ map {
            { photo => 'harbour-dawn', product => $_->[0],
              quantity => $_->[1] } } @$items ]), $cur, $country,
        $method // ''));
}

my $c = price([ [ 'giclee-a3', 1 ], [ 'digital-full', 1 ] ], 'GBP', 'GB');
is($c->{shipping}{amount}, 550, 'UK: Royal Mail 4.50 + 1.00 per print');
is_deeply([ map { $_->{method} } @{$c->{shipping}{options}} ],
    [qw(standard express)], 'standard and express offered');
ok($c->{tax_inclusive}, 'prices include VAT');
is_deeply([ map { $_->{tax} } @{$c->{lines}} ], [ 750, 250 ], '20 % VAT in each');
is($c->{tax_label}, 'VAT 20 %', 'VAT 20 %');
is($c->{total}, 4500 + 1500 + 550, 'total');

$c = price([ [ 'giclee-a3', 3 ] ], 'GBP', 'GB');
is($c->{shipping}{amount}, 0, 'UK standard free from £100');

$c = price([ [ 'giclee-a3', 1 ] ], 'GBP', 'FR', 'express');
is($c->{shipping}{name}, 'DHL Express', 'Europe express');
is($c->{tax_amount}, 0, 'exports zero-rated');
is_deeply($c->{shipping}{countries}, [qw(AT BE DE DK ES FR IE IT NL PT SE)],
    'a European address anywhere in the zone');

$c = price([ [ 'giclee-a3', 1 ] ], 'USD', 'US');
is($c->{shipping}{amount}, 2200 + 400, 'World in USD');

$c = price([ [ 'canvas-50x70', 1 ] ], 'GBP', 'GB', 'standard');
is($c->{shipping}{name}, 'Courier', 'a UK canvas by courier');

is($t->sql_value("SELECT invoice_prefix FROM shop_settings"), 'DEMO-',
   'demo invoice numbers');

done_testing;
