#!/usr/bin/perl
# Checkout with an Idempotency-Key: a retry of the same cart returns the
# first order and session instead of making another; the same key with a
# different cart is refused; a malformed key is refused; keys expire; a
# checkout whose session failed frees its key.  Also: a physical order asks
# Stripe to collect the recipient's phone, and the demo shop sends a key.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use JSON::PP;
use Darkroom::Test qw(wait_for);
use Darkroom::Stripe qw(demo_catalogue shop_conf fake_api form_of);

my $t = Darkroom::Test->new;
my $stripe = fake_api($t);
shop_conf($t, stripe => $stripe->url);
demo_catalogue($t);
$t->start;

sub checkout {
    my ($body, %o) = @_;
    return $t->http(POST => '/api/checkout', {
        headers => { 'Content-Type' => $o{type} // 'application/json',
            defined $o{key} ? ('Idempotency-Key' => $o{key}) : () },
        content => ref $body ? encode_json($body) : $body });
}

sub orders { $t->sql_value('SELECT count(*) FROM orders') }
sub sessions { grep { $_->{path} eq '/v1/checkout/sessions' } $stripe->requests }

my $cart = { email => 'ada@example.com', items => [
    { photo => 'harbour-dawn', product => 'giclee-a3', quantity => 2 } ] };
my $key = 'cart-3f0c2a1e-7b6d-4c59-9d8e-0a1b2c3d4e5f';

my $r = checkout($cart, key => $key);
is($r->{status}, 201, 'first submission creates the order') or diag $r->{content};
my $first = $r->{json};
is(orders(), 1, 'one order');
is(scalar(sessions()), 1, 'one session');

# the phone of the recipient is collected with the shipping address
my $f = form_of((sessions())[0]{body});
is($f->{'phone_number_collection[enabled]'}, 'true',
    'phone collected with the shipping address');

# the client retries: the same order, session and status link, 200
$r = checkout($cart, key => $key);
is($r->{status}, 200, 'a retry answers 200') or diag $r->{content};
is($r->{json}{order}, $first->{order}, 'the same order');
is($r->{json}{checkout_url}, $first->{checkout_url}, 'the same checkout URL');
is($r->{json}{status_url}, $first->{status_url}, 'the same status link');
is(orders(), 1, 'still one order');
is(scalar(sessions()), 1, 'Stripe not asked again');
is($t->http(GET => $r->{json}{status_url})->{status}, 200,
    'the status link works');

# the same cart written differently is the same request
$r = checkout({ items => [ { quantity => 2, product => 'giclee-a3',
    photo => 'harbour-dawn' } ], email => 'ada@example.com',
    currency => 'gbp' }, key => $key);
is($r->{status}, 200, 'the same cart in another order of keys is a retry');
is($r->{json}{order}, $first->{order}, 'and gets the same order');

# the same key for another cart
$r = checkout({ %$cart, items => [
    { photo => 'moor-rain', product => 'giclee-a3', quantity => 1 } ] },
    key => $key);
is($r->{status}, 422, 'the same key with another cart is refused');
is($r->{json}{error}{code}, 'idempotency_key_reused', 'with a clear code');
is(orders(), 1, 'nothing written');

# malformed keys
for my $bad ('', 'short', 'x' x 256, "has space-in-it", "tab\tinside-the-key") {
    $r = checkout($cart, key => $bad);
    is($r->{status}, 400, 'malformed key refused: ' . length($bad) . ' bytes');
    is($r->{json}{error}{code}, 'invalid_idempotency_key', 'with a clear code');
}
is(orders(), 1, 'nothing written for malformed keys');

# another key is another order; no key behaves as before
$r = checkout($cart, key => 'cart-second-submission-0001');
is($r->{status}, 201, 'another key, another order');
isnt($r->{json}{order}, $first->{order}, 'a new order');
$r = checkout($cart);
is($r->{status}, 201, 'no key: a new order');
is(orders(), 3, 'three orders');

# a key is kept for a day: once expired it makes a new order
$t->sql("UPDATE checkout_idempotency SET expires_at = now() - interval '1 second'");
$r = checkout($cart, key => $key);
is($r->{status}, 201, 'an expired key makes a new order');
isnt($r->{json}{order}, $first->{order}, 'not the old one');
is(orders(), 4, 'four orders');
is($t->sql_value('SELECT count(*) FROM checkout_idempotency'
    . " WHERE expires_at > now() + interval '23 hours'"), 1,
    'the key is remembered for about a day');
is($t->sql_value("SELECT count(*) FROM checkout_idempotency WHERE key_hash ~ 'cart'"
    . " OR token_enc ~ :'p1'", substr($first->{status_url}, -32)), 0,
    'neither the key nor the status token is stored in clear');

# Stripe fails: the order is cancelled and the key free for a new try
$stripe->set(session_status => 400);
$r = checkout($cart, key => 'cart-stripe-refuses-0001');
is($r->{status} >= 400 && $r->{status} < 600 ? 1 : 0, 1, 'Stripe refused')
    or diag $r->{content};
$stripe->set();
$r = checkout($cart, key => 'cart-stripe-refuses-0001');
is($r->{status}, 201, 'the retry after a failure makes a working order')
    or diag $r->{content};

# a digital-only cart: no address, no phone
$stripe->reset_requests;
$r = checkout({ email => 'bo@example.com', items => [
    { photo => 'moor-rain', product => 'digital', quantity => 1 } ] },
    key => 'cart-digital-only-0001');
is($r->{status}, 201, 'digital checkout');
$f = form_of((sessions())[0]{body});
ok(!grep(/phone_number_collection|shipping_address/, keys %$f),
    'no address and no phone for a download');

# the demo shop sends one key per cart submission
like($t->read_file($t->top . '/www/shop.js'), qr/'Idempotency-Key'/,
    'the shop sends an Idempotency-Key');

done_testing;
