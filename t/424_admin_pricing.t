#!/usr/bin/perl
# The admin API for shop settings, shipping zones, rates and tax rates:
# GET and POST each, DELETE one; bad input a 400 naming the field (409
# for a country already in another zone), nothing changed; and what is
# set prices the cart.

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
$t->start;

my $auth = { Authorization => 'Bearer admin-token-1' };

sub api {
    my ($method, $path, $body) = @_;
    return $t->http($method => "/admin/api/$path", {
        headers => { %$auth, 'Content-Type' => 'application/json' },
        defined $body ? (content => ref $body ? encode_json($body) : $body)
                      : () });
}

sub state {
    return join '|', map { $t->sql_value("SELECT coalesce(string_agg(t::text,"
        . " ',' ORDER BY t::text), '') FROM $_ t") }
        qw(shop_settings shipping_zones shipping_zone_countries
           shipping_rates tax_rates);
}

is($t->http(GET => '/admin/api/zones')->{status}, 401, 'a token is needed');

# --- settings ----------------------------------------------------------------
my $r = api(GET => 'settings');
is($r->{status}, 200, 'GET settings');
ok($r->{json}{tax_inclusive}, 'prices include tax by default');
is($r->{json}{country}, 'GB', 'the shop\'s country');
$r = api(POST => 'settings', { tax_inclusive => JSON::PP::false,
                               country => 'IE', invoice_prefix => 'A/' });
is($r->{status}, 200, 'POST settings') or diag $r->{content};
is_deeply([ @{$r->{json}}{qw(tax_inclusive country invoice_prefix)} ],
    [ JSON::PP::false, 'IE', 'A/' ], 'changed');
api(POST => 'settings', { tax_inclusive => JSON::PP::true, country => 'GB' });

# --- zones -------------------------------------------------------------------
$r = api(POST => 'zones', { id => 'uk', name => 'United Kingdom',
                            countries => ['GB'] });
is($r->{status}, 200, 'POST zones') or diag $r->{content};
is_deeply($r->{json}{zones}[0]{countries}, ['GB'], 'its countries');
$r = api(POST => 'zones', { id => 'europe', name => 'Europe',
                            countries => [qw(IE FR DE)] });
is_deeply([ map { $_->{id} } @{$r->{json}{zones}} ], [qw(europe uk)],
    'two zones');
$r = api(POST => 'zones', { id => 'europe', countries => [qw(IE FR)] });
is_deeply($r->{json}{zones}[0]{countries}, [qw(FR IE)],
    'countries replaced; the name kept');
is($r->{json}{zones}[0]{name}, 'Europe', 'name kept');

# --- rates -------------------------------------------------------------------
$r = api(POST => 'rates', { zone => 'uk', currency => 'GBP',
    method => 'standard', name => 'Royal Mail', amount => 450,
    per_item => 50, free_over => 10000 });
is($r->{status}, 200, 'POST rates') or diag $r->{content};
my $rate = $r->{json}{zones}[1]{rates}[0];
is_deeply([ @$rate{qw(currency method name amount per_item free_over product)} ],
    [ 'GBP', 'standard', 'Royal Mail', 450, 50, 10000, undef ], 'the rate');
$r = api(POST => 'rates', { zone => 'uk', currency => 'GBP',
    method => 'standard', name => 'Royal Mail 48', amount => 500 });
is(scalar @{$r->{json}{zones}[1]{rates}}, 1, 'the same key updates');
is($r->{json}{zones}[1]{rates}[0]{amount}, 500, 'to the new amount');
$r = api(POST => 'rates', { zone => 'uk', currency => 'GBP',
    method => 'standard', product => 'canvas-50', name => 'Courier',
    amount => 1500 });
is(scalar @{$r->{json}{zones}[1]{rates}}, 2, 'a product\'s own rate');
api(POST => 'rates', { zone => 'europe', currency => 'GBP',
    method => 'express', name => 'DHL', amount => 2000 });

# --- tax ---------------------------------------------------------------------
$r = api(POST => 'tax', { country => 'GB', rate => 20 });
is($r->{status}, 200, 'POST tax') or diag $r->{content};
is_deeply([ map { [ @$_{qw(country kind rate label)} ] } @{$r->{json}{rates}} ],
    [ [ 'GB', 'digital', 20, 'VAT' ], [ 'GB', 'print', 20, 'VAT' ] ],
    'both kinds when none is named');
$r = api(POST => 'tax', { country => 'IE', kind => 'print', rate => 23,
                          label => 'VAT' });
$r = api(POST => 'tax', { country => 'IE', kind => 'digital', rate => 8.5 });
is(scalar @{$r->{json}{rates}}, 4, 'four rates');

# --- they price the cart -------------------------------------------------------
$r = $t->http(POST => '/api/cart/quote', {
    headers => { 'Content-Type' => 'application/json' },
    content => encode_json({ country => 'GB', items => [
        { photo => 'harbour-dawn', product => 'giclee-a3', quantity => 1 } ] }) });
is($r->{json}{shipping}{amount}, 500, 'the rate set prices shipping');
is($r->{json}{lines}[0]{tax_rate}, 20, 'and the tax set, tax');
$r = $t->http(POST => '/api/cart/quote', {
    headers => { 'Content-Type' => 'application/json' },
    content => encode_json({ country => 'IE', items => [
        { photo => 'moor-rain', product => 'digital', quantity => 1 },
        { photo => 'harbour-dawn', product => 'giclee-a3', quantity => 1 } ] }) });
is_deeply([ map { $_->{tax_rate} } @{$r->{json}{lines}} ], [ 8.5, 23 ],
    'IE: a download and a print at their rates');
is_deeply($r->{json}{shipping}{countries}, ['IE'],
    'FR, untaxed here, is not offered with IE');

# --- bad input: 400 naming the field, nothing changed --------------------------
my $before = state();
for my $bad (
    [ settings => { tax_inclusive => 'yes' }, 400, 'invalid_tax_inclusive' ],
    [ settings => { country => 'gb' }, 400, 'invalid_country' ],
    [ settings => { invoice_prefix => 'far too long a prefix' }, 400,
      'invalid_invoice_prefix' ],
    [ settings => { colour => 'red' }, 400, 'invalid_colour' ],
    [ settings => '{"tax_inclusive":', 400, 'invalid_json' ],
    [ zones => { id => 'Bad Zone' }, 400, 'invalid_zone' ],
    [ zones => { id => 'x', countries => 'GB' }, 400, 'invalid_countries' ],
    [ zones => { id => 'x', countries => ['GBR'] }, 400, 'invalid_countries' ],
    [ zones => { id => 'x', name => '' }, 400, 'invalid_name' ],
    [ zones => { id => 'x', countries => ['GB'] }, 409, 'country_in_zone' ],
    [ rates => { zone => 'mars', currency => 'GBP', method => 'standard',
                 name => 'X', amount => 1 }, 400, 'invalid_zone' ],
    [ rates => { zone => 'uk', currency => 'gbp', method => 'standard',
                 name => 'X', amount => 1 }, 400, 'invalid_currency' ],
    [ rates => { zone => 'uk', currency => 'GBP', method => 'teleport',
                 name => 'X', amount => 1 }, 400, 'invalid_method' ],
    [ rates => { zone => 'uk', currency => 'GBP', method => 'standard',
                 name => 'X', amount => -5 }, 400, 'invalid_amount' ],
    [ rates => { zone => 'uk', currency => 'GBP', method => 'standard',
                 name => 'X', amount => 4.5 }, 400, 'invalid_amount' ],
    [ rates => { zone => 'uk', currency => 'GBP', method => 'standard',
                 name => 'X', amount => 1, per_item => '2' }, 400,
      'invalid_per_item' ],
    [ rates => { zone => 'uk', currency => 'GBP', method => 'standard',
                 name => 'X', amount => 1, free_over => -1 }, 400,
      'invalid_free_over' ],
    [ rates => { zone => 'uk', currency => 'GBP', method => 'standard',
                 name => 'X', amount => 1, product => 'nope' }, 400,
      'invalid_product' ],
    [ rates => { zone => 'uk', currency => 'GBP', method => 'standard',
                 amount => 1 }, 400, 'invalid_name' ],
    [ rates => { zone => 'uk', currency => 'GBP', method => 'standard',
                 name => 'X' }, 400, 'invalid_amount' ],
    [ tax => { country => 'GB', rate => 100 }, 400, 'invalid_rate' ],
    [ tax => { country => 'GB', rate => '20' }, 400, 'invalid_rate' ],
    [ tax => { country => 'GB', rate => 20, kind => 'frame' }, 400,
      'invalid_kind' ],
    [ tax => { country => 'United Kingdom', rate => 20 }, 400,
      'invalid_country' ],
    [ tax => { country => 'GB', rate => 20, label => '' }, 400,
      'invalid_label' ])
{
    my ($path, $body, $status, $code) = @$bad;
    $r = api(POST => $path, $body);
    is($r->{status}, $status, "$path $code: $status");
    is($r->{json}{error}{code}, $code, "$path: $code");
    my $field = $code =~ s/^invalid_//r;
    like($r->{json}{error}{message}, qr/\Q$field\E|JSON|countries/,
        "$path $code: the field is named");
}
is(state(), $before, 'bad input changed nothing');

# --- delete --------------------------------------------------------------------
my $id = $t->sql_value("SELECT id FROM shipping_rates WHERE product_id"
                       . " = 'canvas-50'");
$r = api(DELETE => "rates/$id");
is($r->{status}, 200, 'DELETE a rate') or diag $r->{content};
is(scalar @{$r->{json}{zones}[1]{rates}}, 1, 'gone');
is(api(DELETE => "rates/$id")->{status}, 404, 'twice: 404');
is(api(DELETE => 'rates/abc')->{status}, 404, 'a bad id: 404');
$r = api(DELETE => 'tax/IE');
is(scalar @{$r->{json}{rates}}, 2, 'DELETE a country\'s tax rates');
$r = api(DELETE => 'zones/europe');
is_deeply([ map { $_->{id} } @{$r->{json}{zones}} ], ['uk'],
    'DELETE a zone (its countries and rates go with it)');
is($t->sql_value("SELECT count(*) FROM shipping_rates WHERE zone_id = 'europe'"),
   0, 'its rates gone');
is(api(DELETE => 'zones/europe')->{status}, 404, 'twice: 404');
is(api(DELETE => 'settings')->{status}, 404, 'settings cannot be deleted');
is(api(PATCH => 'zones')->{status}, 405, 'PATCH: 405');
is(api(GET => 'zones/uk/x')->{status}, 404, 'no deeper paths');

$r = $t->http(POST => '/api/cart/quote', {
    headers => { 'Content-Type' => 'application/json' },
    content => encode_json({ country => 'IE', items => [
        { photo => 'harbour-dawn', product => 'giclee-a3', quantity => 1 } ] }) });
is($r->{status}, 422, 'IE no longer shipped to');
is($r->{json}{error}{code}, 'no_shipping', 'no_shipping');

done_testing;
