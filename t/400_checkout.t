#!/usr/bin/perl
# Checkout: the catalogue, a priced cart, the Stripe Checkout Session
# darkroom asks for, retries with one idempotency key, and every bad input
# answered with a 4xx that writes nothing.

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
        headers => { 'Content-Type' => $o{type} // 'application/json' },
        content => ref $body ? encode_json($body) : $body });
}

sub orders { $t->sql_value('SELECT count(*) FROM orders') }
sub session_requests { grep { $_->{path} eq '/v1/checkout/sessions' } $stripe->requests }

# the catalogue the shop page shows
my $r = $t->http(GET => '/api/catalogue');
is($r->{status}, 200, 'catalogue');
is($r->{json}{currency}, 'GBP', 'default currency');
is_deeply([ map { $_->{id} } @{$r->{json}{photos}} ], [qw(harbour-dawn moor-rain)],
    'active photos only');
my %prod = map { $_->{id} => $_ } @{$r->{json}{products}};
ok(!$prod{retired}, 'inactive product hidden');
is($prod{'giclee-a3'}{prices}{GBP}, 4500, 'prices in minor units');
is_deeply($r->{json}{photos}[0]{products}, [qw(canvas-50 digital giclee-a3)],
    'what each photo is sold as');
is_deeply($r->{json}{currencies}, [qw(GBP USD)], 'currencies offered');
is($t->http(GET => '/api/catalogue?currency=usd')->{json}{currency}, 'USD',
    'currency chosen by query');
is($t->http(GET => '/api/catalogue?currency=dollars')->{status}, 400,
    'bad currency refused');

# a cart with client prices that must be ignored
my $sent = time;
$r = checkout({ email => 'ada@example.com',
    items => [
        { photo => 'harbour-dawn', product => 'giclee-a3', quantity => 2,
          price => 1, unit_amount => 1 },
        { photo => 'moor-rain', product => 'digital', quantity => 1,
          amount => 1 } ],
    total => 1 });
is($r->{status}, 201, 'checkout created') or diag $r->{content};
like($r->{json}{order}, qr/^DR-\d{6}$/, 'order reference');
like($r->{json}{checkout_url}, qr{^https://pay\.example/cs_test_\d+$},
    'Stripe checkout URL');
like($r->{json}{status_url}, qr{^/api/orders/[0-9a-f]{32}$}, 'status URL');
my ($token) = $r->{json}{status_url} =~ m{([0-9a-f]{32})$};
my $ref = $r->{json}{order};

my ($o) = $t->sql("SELECT id, status, total, currency, physical, email,"
    . " stripe_session_id, status_token FROM orders WHERE ref = :'p1'", $ref);
is($o->[1], 'pending_payment', 'order pending payment');
is($o->[2], 2 * 4500 + 1500, 'total priced by the server');
is($o->[3], 'GBP', 'currency');
is($o->[4], 't', 'physical');
is($o->[6], "cs_test_$o->[0]", 'session recorded');
isnt($o->[7], $token, 'only a hash of the token is stored');
is($t->sql_value("SELECT count(*) FROM order_items WHERE order_id = :'p1'",
    $o->[0]), 2, 'two lines');
is($t->sql_value("SELECT count(*) FROM jobs WHERE kind = 'checkout_reconcile'"
    . " AND payload->>'order_id' = :'p1' AND run_at > now() + interval '10 minutes'",
    $o->[0]), 1, 'reconcile job scheduled for later, in the same transaction');

my @s = session_requests();
is(scalar @s, 1, 'one session request');
my $f = form_of($s[0]{body});
is($s[0]{headers}{authorization}, 'Bearer sk_test_darkroom', 'secret key sent');
is($s[0]{headers}{'idempotency-key'}, "darkroom-checkout-$o->[0]",
    'idempotency key derived from the order');
is($s[0]{headers}{'content-type'}, 'application/x-www-form-urlencoded',
    'form encoded');
is($f->{mode}, 'payment', 'mode');
is($f->{'line_items[0][price_data][unit_amount]'}, 4500, 'unit amount from the catalogue');
is($f->{'line_items[0][price_data][currency]'}, 'gbp', 'currency lower case');
is($f->{'line_items[0][quantity]'}, 2, 'quantity');
is($f->{'line_items[0][price_data][product_data][name]'},
    'Harbour at Dawn — Giclée print, A3', 'line name');
is($f->{'line_items[1][price_data][unit_amount]'}, 1500, 'second line');
is($f->{'metadata[order_id]'}, $o->[0], 'metadata order id');
is($f->{'payment_intent_data[metadata][order_id]'}, $o->[0],
    'order id on the payment intent too');
is($f->{client_reference_id}, $ref, 'client reference');
is($f->{customer_email}, 'ada@example.com', 'customer email');
is_deeply([ map { $f->{"shipping_address_collection[allowed_countries][$_]"} } 0 .. 2 ],
    [qw(GB IE US)], 'shipping countries for a print');
is($f->{success_url},
    "http://127.0.0.1:" . $t->port(0) . "/order.html?token=$token&session={CHECKOUT_SESSION_ID}",
    'success URL carries the token, Stripe fills the session');
is($f->{cancel_url}, "http://127.0.0.1:" . $t->port(0) . "/?cancelled=$ref",
    'cancel URL');
ok($f->{expires_at} >= $sent + 3500 && $f->{expires_at} <= time + 3700,
    'expires_at an hour ahead');

# the customer's view
$r = $t->http(GET => $r->{json}{status_url});
is($r->{status}, 200, 'order status by token');
is($r->{json}{status}, 'pending_payment', 'status');
is($r->{json}{total}, 10500, 'total');
is(scalar @{$r->{json}{items}}, 2, 'items');
like($r->{json}{checkout_url}, qr/pay\.example/, 'pay link while pending');
is($t->http(GET => '/api/orders/' . ('0' x 32))->{status}, 404, 'unknown token 404');
is($t->http(GET => '/api/orders/nothex')->{status}, 404, 'malformed token 404');
is($t->http(GET => "/api/orders/$o->[7]")->{status}, 404,
    'the stored hash is not a token');

# a digital-only cart asks for no shipping address
$stripe->reset_requests;
$r = checkout({ email => 'bo@example.com', currency => 'USD',
    items => [ { photo => 'moor-rain', product => 'digital', quantity => 1 } ] });
is($r->{status}, 201, 'digital checkout');
$f = form_of((session_requests())[0]{body});
ok(!grep(/shipping_address_collection/, keys %$f), 'no shipping for downloads');
is($f->{'line_items[0][price_data][unit_amount]'}, 1900, 'USD price');
is($f->{'line_items[0][price_data][currency]'}, 'usd', 'USD');

# an HTML form: one item, answered with 303 to Stripe
$r = checkout('photo=harbour-dawn&product=canvas-50&quantity=1&email=cy%40example.com',
    type => 'application/x-www-form-urlencoded');
is($r->{status}, 303, 'form answered with See Other');
like($r->{headers}{location}, qr{^https://pay\.example/cs_test_\d+$},
    'to the Stripe page');

# every bad input: a clear 4xx, nothing written
my $before = orders();
my $jobs = $t->sql_value('SELECT count(*) FROM jobs');
$stripe->reset_requests;
my $item = { photo => 'harbour-dawn', product => 'giclee-a3', quantity => 1 };
my @bad = (
    [ '{"items":', 400, 'invalid_json', 'malformed JSON' ],
    [ '[1,2]', 400, 'invalid_json', 'not an object' ],
    [ { items => [$item] }, 400, 'invalid_email', 'no email' ],
    [ { items => [$item], email => 'not-an-email' }, 400, 'invalid_email', 'bad email' ],
    [ { items => [$item], email => "a\@b.c\r\nBcc: x\@y.z" }, 400, 'invalid_email',
      'header injection in email' ],
    [ { items => [], email => 'a@b.co' }, 400, 'invalid_items', 'empty cart' ],
    [ { items => 'all', email => 'a@b.co' }, 400, 'invalid_items', 'items not a list' ],
    [ { items => [ ($item) x 101 ], email => 'a@b.co' }, 400, 'too_many_items',
      '101 lines' ],
    [ { items => [ { %$item, quantity => 0 } ], email => 'a@b.co' }, 400,
      'invalid_quantity', 'quantity 0' ],
    [ { items => [ { %$item, quantity => 100 } ], email => 'a@b.co' }, 400,
      'invalid_quantity', 'quantity 100' ],
    [ { items => [ { %$item, quantity => 1.5 } ], email => 'a@b.co' }, 400,
      'invalid_quantity', 'fractional quantity' ],
    [ { items => [ { %$item, quantity => '2' } ], email => 'a@b.co' }, 400,
      'invalid_quantity', 'quantity as a string' ],
    [ { items => [ { %$item, photo => '../etc' } ], email => 'a@b.co' }, 400,
      'invalid_items', 'malformed photo id' ],
    [ { items => [ { %$item, product => 'nope' } ], email => 'a@b.co' }, 400,
      'unknown_product', 'unknown product' ],
    [ { items => [ { %$item, product => 'retired' } ], email => 'a@b.co' }, 400,
      'unknown_product', 'inactive product' ],
    [ { items => [ { %$item, photo => 'nope' } ], email => 'a@b.co' }, 400,
      'unknown_photo', 'unknown photo' ],
    [ { items => [ { %$item, photo => 'hidden' } ], email => 'a@b.co' }, 400,
      'unknown_photo', 'inactive photo' ],
    [ { items => [ { photo => 'moor-rain', product => 'canvas-50', quantity => 1 } ],
        email => 'a@b.co' }, 400, 'not_offered', 'combination not sold' ],
    [ { items => [ { photo => 'harbour-dawn', product => 'canvas-50', quantity => 1 } ],
        email => 'a@b.co', currency => 'USD' }, 400, 'no_price', 'no price in currency' ],
    [ { items => [ $item, { %$item, currency => 'USD' } ], email => 'a@b.co',
        currency => 'GBP' }, 400, 'mixed_currency', 'mixed currencies' ],
    [ { items => [$item], email => 'a@b.co', currency => 'POUNDS' }, 400,
      'invalid_currency', 'bad currency' ],
    [ { items => [ ({ photo => 'harbour-dawn', product => 'canvas-50',
        quantity => 99 }) x 90 ], email => 'a@b.co' }, 400, 'amount_too_large',
      'total beyond what Stripe takes' ],
);
for my $b (@bad) {
    my ($body, $status, $code, $name) = @$b;
    my $r = checkout($body);
    is($r->{status}, $status, "$name: $status");
    is($r->{json}{error}{code}, $code, "$name: $code") or diag $r->{content};
    ok(length($r->{json}{error}{message} // '') > 5, "$name: explained");
}
$r = checkout('{"items":[]}', type => 'text/plain');
is($r->{status}, 415, 'unsupported content type');
$r = $t->http(GET => '/api/checkout');
is($r->{status}, 405, 'GET not allowed');
$r = checkout({ email => 'a@b.co', items => [$item], pad => 'x' x 70000 });
is($r->{status}, 413, 'oversize body refused');
is($r->{json}{error}{code}, 'body_too_large', 'in JSON like every error');
is(orders(), $before, 'no order written by any bad input');
is($t->sql_value('SELECT count(*) FROM jobs'), $jobs, 'no job written');
is(scalar(session_requests()), 0, 'Stripe never asked');

# Stripe failing twice, then answering: one session, one key throughout
$stripe->reset_requests;
$stripe->set(fail_sessions => 2);
$r = checkout({ email => 'dee@example.com', items => [$item] });
is($r->{status}, 201, 'created after two Stripe 500s');
@s = session_requests();
is(scalar @s, 3, 'three tries');
my %keys = map { $_->{headers}{'idempotency-key'} => 1 } @s;
is(scalar keys %keys, 1, 'the same idempotency key on every try');
is($s[0]{body}, $s[2]{body}, 'the same parameters on every try');

# Stripe refusing: a clean 502, the order cancelled, Stripe's words logged
$stripe->reset_requests;
$stripe->set(session_status => 400);
$before = orders();
$r = checkout({ email => 'eve@example.com', items => [$item] });
is($r->{status}, 502, 'Stripe refusal is a 502');
is($r->{json}{error}{code}, 'payment_provider_error', 'clean error');
unlike($r->{content}, qr/Sandbox refused/, "Stripe's message not shown to the client");
like($t->error_log, qr/Sandbox refused: amount too small/, "but logged");
is(scalar(session_requests()), 1, 'a 400 is not retried');
is($t->sql_value("SELECT status FROM orders ORDER BY id DESC LIMIT 1"),
    'cancelled', 'the order is cancelled');
unlike($t->error_log, qr/sk_test_darkroom/, 'the key never reaches the log');

done_testing;
