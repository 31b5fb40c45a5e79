#!/usr/bin/perl
# The product-to-lab mapping through the lab admin API (darkroom_lab_admin,
# GET products, POST products/<id>, DELETE products/<id>/<lab>) as the
# console's Lab products page uses it: listed with every product; a lab's
# row added and changed by staff (fulfilment work); every bad input a 4xx
# that writes nothing; the last lab of a product on sale kept; a write
# without the CSRF token refused; a bearer token works; every change
# audited; and the next order split uses the changed mapping.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Darkroom::Test;
use Darkroom::Stripe qw(checkout_order);
use Darkroom::Console qw(console_start account login api);
use LabSandbox;

my $t = Darkroom::Test->new;
console_start($t);
account($t, 'staff@example.com', 'staff');
my $r = login($t, 'staff@example.com');
die "login: $r->{status}" unless $r->{status} == 200;
my $s = { sid => $r->{sid}, csrf => $r->{csrf} };
my $P = '/admin/lab/products';

$t->sql("INSERT INTO lab_products (product_id, lab, sku) VALUES"
    . " ('giclee-a3', 'prodigi', 'GLOBAL-HPR-A3')");
my $table = sub {
    return join ';', map { join ',', @$_ } $t->sql("SELECT product_id, lab,"
        . " sku, attributes::text, sizing, priority FROM lab_products"
        . " ORDER BY 1, 2");
};

# the list: every product, its kind, its labs
$r = api($t, $s, GET => $P);
is($r->{status}, 200, 'staff: list') or diag $r->{content};
my %by = map { $_->{id} => $_ } @{ $r->{json}{products} };
is_deeply([sort keys %by], [qw(canvas-50 digital giclee-a3 retired)],
          'every catalogue product');
is($by{digital}{kind}, 'digital', 'with its kind');
is_deeply($by{'giclee-a3'}{labs}, [{ lab => 'prodigi',
    sku => 'GLOBAL-HPR-A3', attributes => {}, sizing => 'fillPrintArea',
    priority => 1 }], 'with its lab rows');
is_deeply($by{'canvas-50'}{labs}, [], 'none mapped: no rows');
is_deeply($r->{json}{labs}, ['prodigi', 'printspace'], 'the labs');
is(scalar @{ $r->{json}{sizings} }, 3, 'the sizings');

# upsert: a new row, then a change of it
$r = api($t, $s, POST => "$P/giclee-a3", { lab => 'printspace',
    sku => 'TPS-HPR-A3', attributes => { PrintOptionId => 103 },
    sizing => 'fitPrintArea', priority => 2 });
is($r->{status}, 200, 'staff: add a lab') or diag $r->{content};
is_deeply([map { $_->{lab} } @{ $r->{json}{labs} }],
          ['prodigi', 'printspace'], 'the product answered, by priority');
$r = api($t, $s, POST => "$P/giclee-a3", { lab => 'prodigi',
    sku => 'GLOBAL-FAP-A3', priority => 3 });
is($r->{status}, 200, 'staff: change a row') or diag $r->{content};
is_deeply([map { "$_->{lab}:$_->{sku}:$_->{priority}" }
           @{ $r->{json}{labs} }],
          ['printspace:TPS-HPR-A3:2', 'prodigi:GLOBAL-FAP-A3:3'],
          'changed, reordered, the rest kept');
$r = api($t, $s, POST => "$P/canvas-50", { lab => 'prodigi',
    sku => 'GLOBAL-CAN-20X28' });
is($r->{status}, 200, 'a new row with defaults');
is_deeply($r->{json}{labs}[0], { lab => 'prodigi', sku => 'GLOBAL-CAN-20X28',
    attributes => {}, sizing => 'fillPrintArea', priority => 1 },
    'attributes {}, fillPrintArea, priority 1');

# every bad input: a 4xx with its code, the table unchanged
my $before = $table->();
my @bad = (
    [POST => "$P/nope", { lab => 'prodigi', sku => 'X' }, 404, 'not_found',
     'unknown product'],
    [POST => "$P/giclee-a3", { lab => 'mars', sku => 'X' }, 400, 'bad_lab',
     'unknown lab'],
    [POST => "$P/giclee-a3", { sku => 'X' }, 400, 'bad_lab', 'no lab'],
    [POST => "$P/giclee-a3", { lab => 'prodigi', sku => '' }, 400,
     'bad_sku', 'empty SKU'],
    [POST => "$P/giclee-a3", { lab => 'prodigi', sku => 'x' x 101 }, 400,
     'bad_sku', 'SKU too long'],
    [POST => "$P/giclee-a3", { lab => 'prodigi', sku => 7 }, 400,
     'bad_sku', 'SKU a number'],
    [POST => "$P/retired", { lab => 'prodigi' }, 400, 'bad_sku',
     'a new row needs a SKU'],
    [POST => "$P/giclee-a3", { lab => 'prodigi', attributes => [1] }, 400,
     'bad_attributes', 'attributes an array'],
    [POST => "$P/giclee-a3", { lab => 'prodigi', attributes => '{}' }, 400,
     'bad_attributes', 'attributes a string'],
    [POST => "$P/giclee-a3", { lab => 'prodigi', sizing => 'crop' }, 400,
     'bad_sizing', 'unknown sizing'],
    [POST => "$P/giclee-a3", { lab => 'prodigi', priority => 1.5 }, 400,
     'bad_priority', 'priority not whole'],
    [POST => "$P/giclee-a3", { lab => 'prodigi', priority => '2' }, 400,
     'bad_priority', 'priority a string'],
    [POST => "$P/digital", { lab => 'prodigi', sku => 'X' }, 400,
     'digital_product', 'a digital product has no lab'],
    [POST => "$P/giclee-a3", '{"lab": "prodigi",', 400, 'invalid_json',
     'malformed JSON'],
    [POST => "$P/giclee-a3", '[]', 400, 'invalid_json', 'not an object'],
    [DELETE => "$P/giclee-a3/mars", undef, 400, 'bad_lab',
     'delete: unknown lab'],
    [DELETE => "$P/nope/prodigi", undef, 404, 'not_found',
     'delete: unknown product'],
    [DELETE => "$P/retired/prodigi", undef, 404, 'not_found',
     'delete: no such row'],
    [DELETE => "$P/canvas-50/prodigi", undef, 409, 'last_lab',
     'delete: the last lab of a product on sale'],
    [PUT => "$P/giclee-a3", { lab => 'prodigi' }, 405, 'method_not_allowed',
     'PUT'],
);
for my $b (@bad) {
    my ($m, $path, $body, $status, $code, $name) = @$b;
    $r = api($t, $s, $m => $path, $body);
    is($r->{status}, $status, "$name: $status");
    is($r->{json} && $r->{json}{error}{code}, $code, "$name: $code")
        or diag $r->{content};
}
is($table->(), $before, 'the table unchanged');
like(api($t, $s, POST => "$P/giclee-a3", { lab => 'mars' })
     ->{json}{error}{message}, qr/prodigi.*printspace/, 'a clear message');

# CSRF, bearer token, API key scopes
is(api($t, { sid => $s->{sid} }, POST => "$P/giclee-a3",
       { lab => 'prodigi', sku => 'NO-CSRF' })->{status}, 403,
   'no CSRF token: 403');
is(api($t, { sid => $s->{sid} }, DELETE => "$P/giclee-a3/printspace")
   ->{status}, 403, 'no CSRF token, DELETE: 403');
is($table->(), $before, 'nothing written');
my $tok = { bearer => 'admin-token-1' };
is(api($t, $tok, GET => $P)->{status}, 200, 'bearer token: list');
$r = api($t, $tok, POST => "$P/retired", { lab => 'prodigi',
    sku => 'GLOBAL-OLD', attributes => { color => 'black' } });
is($r->{status}, 200, 'bearer token: write') or diag $r->{content};
$t->sql("INSERT INTO console_api_keys (id, name, secret_hash, scopes) VALUES"
    . " (9001, 'reader', encode(sha256(convert_to('rsecret', 'UTF8')), 'hex'), '{read}')");
my $key = { bearer => 'drk_9001_rsecret' };
is(api($t, $key, GET => $P)->{status}, 200, 'a read key lists');
is(api($t, $key, POST => "$P/retired", { lab => 'prodigi', sku => 'K' })
   ->{status}, 403, 'a read key may not write');

# delete: a product off sale may lose its last lab; one with open lab
# orders is warned about
$r = api($t, $s, DELETE => "$P/retired/prodigi");
is($r->{status}, 200, 'the last lab of a product off sale') or diag
    $r->{content};
is_deeply($r->{json}{labs}, [], 'gone');
my $order = checkout_order($t, 1);
$t->sql("INSERT INTO lab_orders (order_id, lab, status, idempotency_key)"
    . " VALUES (:'p1', 'printspace', 'pending', 'k717')", $order->{id});
$t->sql("INSERT INTO lab_order_items (lab_order_id, line, photo_id,"
    . " product_id, sku, sizing, copies) SELECT id, 1, 'harbour-dawn',"
    . " 'giclee-a3', 'TPS-HPR-A3', 'fillPrintArea', 1 FROM lab_orders"
    . " WHERE idempotency_key = 'k717'");
$r = api($t, $s, DELETE => "$P/giclee-a3/printspace");
is($r->{status}, 200, 'staff: remove a lab') or diag $r->{content};
like($r->{json}{warning}, qr/1 open lab order.*keep the lab and SKU/,
     'warned: open lab orders keep what they were made with');
is($t->sql_value("SELECT sku FROM lab_order_items li JOIN lab_orders lo"
    . " ON lo.id = li.lab_order_id WHERE lo.idempotency_key = 'k717'"),
   'TPS-HPR-A3', 'the open lab order kept its SKU');
is($t->sql_value("SELECT string_agg(lab, ',') FROM lab_products"
    . " WHERE product_id = 'giclee-a3'"), 'prodigi', 'one lab left');

# the next order split uses the changed mapping
api($t, $s, POST => "$P/giclee-a3", { lab => 'prodigi',
    sku => 'GLOBAL-NEW-A3', attributes => { finish => 'matte' },
    sizing => 'fitPrintArea' });
my $next = LabSandbox::paid_order($t, [ ['harbour-dawn', 'giclee-a3', 2] ]);
like($t->sql_value("SELECT lab_fulfil(:'p1', 0, 'test')", $next->{id}),
     qr/^(split into 1|ignored: already split)/, 'the next paid order split');
is($t->sql_value("SELECT lo.lab || ':' || li.sku || ':' || li.sizing"
    . " || ':' || (li.attributes->>'finish') FROM lab_order_items li"
    . " JOIN lab_orders lo ON lo.id = li.lab_order_id"
    . " WHERE lo.order_id = :'p1' ORDER BY lo.id LIMIT 1", $next->{id}),
   'prodigi:GLOBAL-NEW-A3:fitPrintArea:matte',
   'its lab order uses the changed mapping');

# audited: every write under its actor, no read
is($t->sql_value("SELECT count(*) FROM console_audit WHERE"
    . " actor = 'staff\@example.com' AND path LIKE '/admin/lab/products%'"
    . " AND method IN ('POST', 'DELETE') AND status = 200"), 6,
   'the staff changes audited');
is($t->sql_value("SELECT count(*) FROM console_audit WHERE"
    . " path LIKE '/admin/lab/products%' AND method = 'GET'"), 0,
   'reads are not');
cmp_ok($t->sql_value("SELECT count(*) FROM console_audit WHERE"
    . " status >= 400 AND path LIKE '/admin/lab/products%'"), '>=',
    scalar @bad, 'refusals audited too');

done_testing;
