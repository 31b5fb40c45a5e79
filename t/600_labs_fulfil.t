#!/usr/bin/perl
# Lab fulfilment: a paid mixed order becomes one Prodigi order and one
# theprintspace order with the right SKUs, copies, assets and address; the
# asset URLs are signed darkroom URLs the fake labs download; a digital
# item needs no lab; a repeated fulfil job changes nothing; the lab's
# refusal (validation) is kept for the admin, not retried blindly.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use JSON::PP;
use Darkroom::Test qw(wait_for);
use Darkroom::Stripe qw(fake_api);
use LabSandbox;

my $t = Darkroom::Test->new;
my $stripe = fake_api($t);
my $lab = LabSandbox::start($t);
LabSandbox::conf($t, $stripe->url, $lab,
    http => 'darkroom_lab_poll_interval 300ms; darkroom_prodigi_shipping_method express;');
LabSandbox::mapping($t);
$t->start;

my $o = LabSandbox::paid_order($t, [ ['harbour-dawn', 'giclee-a3', 2],
    ['moor-rain', 'canvas-50', 1], ['harbour-dawn', 'digital', 1] ]);

ok(wait_for(sub { my @l = LabSandbox::lab_orders($t, $o);
    @l == 2 && !grep { $_->[2] ne 'submitted' } @l }, 20),
    'two lab orders, both submitted') or diag explain [LabSandbox::lab_orders($t, $o)];

my @lo = LabSandbox::lab_orders($t, $o);
is_deeply([ map { $_->[1] } @lo ], ['printspace', 'prodigi'],
    'split by lab: theprintspace and Prodigi');

my $st = $lab->state;
my @pk = keys %{$st->{prodigi}};
is(scalar @pk, 1, 'one Prodigi order');
my $po = $st->{prodigi}{$pk[0]};
like($po->{idempotencyKey}, qr/^darkroom-$o->{id}-$lo[1][0]-[0-9a-f]{16}$/,
    'idempotency key: the ids and a random part');
is($po->{idempotencyKey}, $t->sql_value("SELECT idempotency_key FROM lab_orders"
    . " WHERE id = :'p1'", $lo[1][0]), 'the lab order\'s own key');
is($po->{merchantReference}, $o->{ref}, 'merchantReference is the order ref');
is($po->{shippingMethod}, 'Express', 'configured shipping method');
is($po->{recipient}{name}, 'Ada Buyer', 'recipient name from Stripe');
is_deeply($po->{recipient}{address}, { line1 => '1 Harbour Row',
    townOrCity => 'Whitby', postalOrZipCode => 'YO21 1AA', countryCode => 'GB' },
    'recipient address from Stripe shipping details');
is(scalar @{$po->{items}}, 1, 'one Prodigi item (the canvas)');
my $pi = $po->{items}[0];
is($pi->{sku}, 'GLOBAL-CAN-20X28', 'canvas SKU');
is($pi->{copies}, 1, 'copies');
is($pi->{sizing}, 'fillPrintArea', 'sizing');
is_deeply($pi->{attributes}, { wrap => 'MirrorWrap' }, 'attributes');
like($pi->{assets}[0]{url},
    qr{^http://127\.0\.0\.1:\d+/prints/moor-rain\.tif\?exp=\d+&kid=k1&sig=[\w-]{43}$},
    'asset is a signed darkroom URL');
my ($exp) = $pi->{assets}[0]{url} =~ /exp=(\d+)/;
cmp_ok($exp - time, '>', 29 * 86400, 'long-lived (30 days by default)');
is($po->{callbackUrl} =~ m{^http://127\.0\.0\.1:\d+/labs/prodigi\?lo=$lo[1][0]&token=[0-9a-f]{64}$} ? 1 : 0,
    1, 'callback URL with the lab order and its token');

my $dl = $st->{downloads}{$pk[0]};
is($dl->[0]{status}, 200, 'the fake Prodigi downloaded the asset');
is($dl->[0]{bytes}, 7004, 'all of it');

my @ps = values %{$st->{ps}};
is(scalar @ps, 1, 'one theprintspace order');
my $ps = $ps[0];
is($ps->{OrderState}, 'NewOrder', 'confirmed (no longer an EmbryonicOrder)');
is($ps->{DeliveryOption}{Method}, 'Economy', 'the cheapest delivery option');
like($ps->{ExternalReference}, qr/^darkroom-$o->{id}-$lo[0][0]-[0-9a-f]{16}$/,
    'external reference: the lab order\'s key');
is($ps->{OrderItems}[0]{ExternalSku}, 'TPS-GICLEE-A3', 'giclée SKU');
is($ps->{OrderItems}[0]{PrintOptionId}, 301, 'print option from the mapping');
is($ps->{OrderItems}[0]{Quantity}, 2, 'quantity');
is($ps->{ShippingAddress}{PostCode}, 'YO21 1AA', 'address');
is($ps->{FirstName} . '/' . $ps->{LastName}, 'Ada/Buyer', 'name split');
is($ps->{OrderItems}[0]{ProductId}, 35846, 'the photo\'s creativehub product');
ok(!exists $ps->{OrderItems}[0]{ImageUrl},
    'no image URL: creativehub prints the file it holds');
is($st->{ps_refs}{$ps->{ExternalReference}}{creations}, 1, 'one draft');
is($st->{ps_refs}{$ps->{ExternalReference}}{confirmations}, 1, 'one confirmation');

# a signed URL changed by one byte is refused
(my $bad = $pi->{assets}[0]{url}) =~ s/moor-rain/harbour-dawn/;
my $r = HTTP::Tiny->new->get($bad);
is($r->{status}, 403, 'the signature covers the path');

# the fulfil job again: nothing new
$t->sql("INSERT INTO jobs (kind, payload) VALUES ('fulfil_order',"
    . " jsonb_build_object('order_id', :'p1'::bigint))", $o->{id});
ok(wait_for(sub { $t->sql_value("SELECT count(*) FROM jobs WHERE kind = 'fulfil_order'"
    . " AND done_at IS NULL") == 0 }), 'second fulfil job ran');
is(scalar(LabSandbox::lab_orders($t, $o)), 2, 'still two lab orders');

# theprintspace is polled: in production, then dispatched with tracking
$lab->control(POST => "/_sandbox/advance/ps/$ps->{Id}", { to => 'in_production' });
ok(wait_for(sub { $t->sql_value("SELECT status FROM lab_orders WHERE id = :'p1'",
    $lo[0][0]) eq 'in_production' }, 10), 'polling saw theprintspace in production');
is($t->sql_value("SELECT status FROM orders WHERE id = :'p1'", $o->{id}),
    'in_production', 'the order is in production');
$lab->control(POST => "/_sandbox/advance/ps/$ps->{Id}", { to => 'shipped' });
ok(wait_for(sub { $t->sql_value("SELECT status FROM lab_orders WHERE id = :'p1'",
    $lo[0][0]) eq 'shipped' }, 10), 'polling saw it dispatched');
$r = $t->http(GET => $o->{status_url});
is($r->{json}{shipments}[0]{tracking_number}, "RM$ps->{Id}GB", 'tracking on the status page');
is($r->{json}{shipments}[0]{service}, 'Economy', 'the delivery method on the status page');
is($r->{json}{status}, 'in_production', 'the Prodigi half is not shipped yet');
ok(wait_for(sub { $t->sql_value("SELECT done_at IS NOT NULL FROM jobs"
    . " WHERE dedupe_key = 'lab_poll:' || :'p1'", $lo[0][0]) eq 't' }, 5),
    'polling stops once dispatched');

# validation failure: an unknown SKU is refused and kept for the admin
$t->sql("UPDATE lab_products SET sku = 'NOT-A-SKU' WHERE product_id = 'canvas-50'");
my $o2 = LabSandbox::paid_order($t, [ ['moor-rain', 'canvas-50', 1] ]);
ok(wait_for(sub { my @l = LabSandbox::lab_orders($t, $o2);
    @l && $l[0][2] eq 'needs_attention' }, 10), 'refused order needs attention');
my @l2 = LabSandbox::lab_orders($t, $o2);
like($l2[0][5], qr/refused.*items\[0\]\.sku: NotAValidSku/, 'with the lab\'s message');
is($l2[0][4], 1, 'tried once, not retried blindly');
my $n = grep { $_->{path} eq '/v4.0/Orders' && $_->{body} =~ /NOT-A-SKU/ }
    $lab->requests;
is($n, 1, 'one request for it');
$r = LabSandbox::admin($t, GET => "orders/$l2[0][0]");
is($r->{json}{status}, 'needs_attention', 'admin API shows it');
like($r->{json}{history}[-1]{detail}{answer}{outcome}, qr/ValidationFailed/,
    'with the lab\'s answer in its history');

done_testing;
