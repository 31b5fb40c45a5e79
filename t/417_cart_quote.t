#!/usr/bin/perl
# The cart quote: the cart priced exactly as checkout prices it (lines,
# discount, shipping, tax, total), answered without writing anything, and
# the same 4xx answers as checkout for a bad cart.

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

sub post {
    my ($path, $body, %o) = @_;
    return $t->http(POST => $path, {
        headers => { 'Content-Type' => $o{type} // 'application/json' },
        content => ref $body ? encode_json($body) : $body });
}

sub counts {
    return join ',', map { $t->sql_value("SELECT count(*) FROM $_") }
        qw(orders order_items jobs);
}

my $cart = { items => [
    { photo => 'harbour-dawn', product => 'giclee-a3', quantity => 2 },
    { photo => 'moor-rain', product => 'digital', quantity => 1 } ] };

my $before = counts();
my $r = post('/api/cart/quote', $cart);
is($r->{status}, 200, 'quote') or diag $r->{content};
my $q = $r->{json};
is($q->{currency}, 'GBP', 'shop currency');
is(scalar @{$q->{lines}}, 2, 'two lines');
is($q->{lines}[0]{unit_amount}, 4500, 'price from the catalogue');
is($q->{lines}[0]{amount}, 9000, 'line amount');
is($q->{subtotal}, $q->{lines}[0]{amount} + $q->{lines}[1]{amount},
    'subtotal is the sum of the lines');
is($q->{total}, $q->{subtotal} - $q->{discount_amount}
    + $q->{shipping_amount} + ($q->{tax_inclusive} ? 0 : $q->{tax_amount}),
    'total is the sum of its parts');
ok($q->{physical}, 'a print: shipped');
is(counts(), $before, 'a quote writes nothing');

# the same cart at checkout costs the quoted total
$r = post('/api/checkout', { %$cart, email => 'q@example.com' });
is($r->{status}, 201, 'checkout of the quoted cart') or diag $r->{content};
is($t->sql_value("SELECT total FROM orders WHERE ref = :'p1'", $r->{json}{order}),
    $q->{total}, 'checkout charges the quoted total');

# an email is optional for a quote, but must be an email when given
is(post('/api/cart/quote', { %$cart, email => 'nope' })->{status}, 400,
    'bad email refused');

$before = counts();
for my $bad (
    [ { items => [] }, 'invalid_items' ],
    [ { items => [ { photo => 'nope', product => 'digital', quantity => 1 } ] },
      'unknown_photo' ],
    [ { %$cart, currency => 'XX' }, 'invalid_currency' ],
    [ { %$cart, country => 'G1' }, 'invalid_country' ],
    [ { %$cart, discount_code => 'bad code!' }, 'invalid_code' ],
    [ { %$cart, shipping_method => 'x' x 40 }, 'invalid_shipping_method' ],
    [ '{"items":', 'invalid_json' ])
{
    $r = post('/api/cart/quote', $bad->[0]);
    is($r->{status}, 400, "$bad->[1]: 400");
    is($r->{json}{error}{code}, $bad->[1], "$bad->[1]: named");
}
is(counts(), $before, 'bad quotes write nothing');

is($t->http(GET => '/api/cart/quote')->{status}, 405, 'GET not allowed');

done_testing;
