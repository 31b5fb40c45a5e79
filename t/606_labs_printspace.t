#!/usr/bin/perl
# theprintspace as the creativehub API really is: a draft is an
# "EmbryonicOrder" and is confirmed; items name the artwork's creativehub
# product (per photo) and print option (per product), never an image URL;
# a photo without a product id goes to the fallback lab, or to review with
# a clear reason; the address carries the phone and the country code; the
# API's failure states need attention, delivered ones count as shipped;
# tracking comes from the nested delivery option and DateDispatched, the
# link built from carrier and number; the delivery option is chosen by
# branch and method; a lost draft answer leaves no orphan draft.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Darkroom::Test qw(wait_for);
use Darkroom::Stripe qw(fake_api);
use LabSandbox;

my $t = Darkroom::Test->new;
my $stripe = fake_api($t);
my $lab = LabSandbox::start($t);
LabSandbox::conf($t, $stripe->url, $lab, http => 'darkroom_lab_poll_interval'
    . ' 300ms; darkroom_printspace_delivery "London/Royal Mail Tracked 48";');
LabSandbox::mapping($t);
$t->start;

sub lo_row {
    my ($id) = @_;
    my ($r) = $t->sql("SELECT status, coalesce(lab_status, ''),"
        . " coalesce(last_error, '') FROM lab_orders WHERE id = :'p1'", $id);
    return @$r;
}

sub ps_order {
    my ($id) = @_;
    return $lab->state->{ps}{$id};
}

# --- 1, 2, 3, 6: the draft, its items and address, confirmed ------------

my $o = LabSandbox::paid_order($t, [ ['harbour-dawn', 'giclee-a3', 2] ],
    phone => '+44 7700 900456');
ok(wait_for(sub { my @l = LabSandbox::lab_orders($t, $o);
    @l && $l[0][2] eq 'submitted' }, 20), 'submitted')
    or diag explain [LabSandbox::lab_orders($t, $o)];
my ($lo) = LabSandbox::lab_orders($t, $o);
is($lo->[1], 'printspace', 'at theprintspace');
my $ps = ps_order($lo->[3]);
is($ps->{OrderState}, 'NewOrder', 'the EmbryonicOrder draft was confirmed');
is($lab->state->{ps_refs}{$ps->{ExternalReference}}{confirmations}, 1,
    'once');
is((lo_row($lo->[0]))[1], 'NewOrder', 'darkroom has the lab\'s state');
my $item = $ps->{OrderItems}[0];
is($item->{ProductId}, 35846, 'ProductId: the photo\'s creativehub product');
is($item->{PrintOptionId}, 301, 'PrintOptionId: the product\'s print option');
is($item->{Quantity}, 2, 'Quantity');
ok(!exists $item->{ImageUrl}, 'no ImageUrl (the API has none)');
is($ps->{ShippingAddress}{PhoneNumber}, '+44 7700 900456', 'PhoneNumber');
is($ps->{ShippingAddress}{CountryCode}, 'GB', 'CountryCode');
ok(!exists $ps->{ShippingAddress}{Name}, 'no invented address fields');
is($ps->{DeliveryOption}{Method}, 'Royal Mail Tracked 48',
    'delivery option chosen by branch and method');
is($ps->{DeliveryOption}{BranchName}, 'London', 'of that branch');

# --- 4, 5: states and tracking -----------------------------------------

$lab->control(POST => "/_sandbox/advance/ps/$lo->[3]", { to => 'PaymentFailed' });
ok(wait_for(sub { (lo_row($lo->[0]))[0] eq 'needs_attention' }, 10),
    'PaymentFailed needs attention') or diag explain [lo_row($lo->[0])];
like((lo_row($lo->[0]))[2], qr/PaymentFailed/, 'with the reason');
$lab->control(POST => "/_sandbox/advance/ps/$lo->[3]", { to => 'Printed' });
ok(wait_for(sub { (lo_row($lo->[0]))[0] eq 'in_production' }, 10),
    'Printed: in production');
# a missed poll: Dispatched was never seen, Delivered is
$lab->control(POST => "/_sandbox/advance/ps/$lo->[3]", { to => 'Dispatched' });
$lab->control(POST => "/_sandbox/advance/ps/$lo->[3]", { to => 'Delivered' });
ok(wait_for(sub { (lo_row($lo->[0]))[0] eq 'shipped' }, 10),
    'Delivered counts as shipped');
my ($s) = $t->sql("SELECT coalesce(carrier, ''), coalesce(service, ''),"
    . " coalesce(tracking_number, ''), coalesce(tracking_url, ''),"
    . " dispatched_at IS NOT NULL FROM shipments WHERE lab_order_id = :'p1'",
    $lo->[0]);
is($s->[2], "RM$lo->[3]GB", 'tracking number');
is($s->[1], 'Royal Mail Tracked 48', 'the method from the nested DeliveryOption');
is($s->[0], 'Royal Mail', 'the carrier named by it');
like($s->[3], qr{^https://www\.royalmail\.com/.*RM$lo->[3]GB},
    'a tracking link built from carrier and number');
is($s->[4], 't', 'dispatched_at from DateDispatched');

for my $state (qw(CardRequired OrderFailed ShippingFailed OnHold
                  SuspendedOrder))
{
    my $x = LabSandbox::paid_order($t, [ ['harbour-dawn', 'giclee-a3', 1] ]);
    ok(wait_for(sub { my @l = LabSandbox::lab_orders($t, $x);
        @l && $l[0][2] eq 'submitted' }, 20), "submitted ($state)");
    my ($l) = LabSandbox::lab_orders($t, $x);
    $lab->control(POST => "/_sandbox/advance/ps/$l->[3]", { to => $state });
    ok(wait_for(sub { (lo_row($l->[0]))[0] eq 'needs_attention' }, 10),
        "$state needs attention");
    like((lo_row($l->[0]))[2], qr/$state/, "$state: the reason");
}

# --- 2: a photo without a creativehub product ---------------------------

my $o2 = LabSandbox::paid_order($t, [ ['moor-rain', 'giclee-a3', 1] ]);
ok(wait_for(sub { my @l = LabSandbox::lab_orders($t, $o2);
    @l && $l[0][2] eq 'submitted' }, 20), 'submitted')
    or diag explain [LabSandbox::lab_orders($t, $o2)];
my ($lo2) = LabSandbox::lab_orders($t, $o2);
is($lo2->[1], 'prodigi', 'to the fallback lab');
like($t->sql_value("SELECT string_agg(detail::text, ' ') FROM"
    . " lab_order_events WHERE lab_order_id = :'p1'", $lo2->[0]),
    qr/creativehub product/, 'the history says why');

$t->sql("DELETE FROM lab_products WHERE product_id = 'giclee-a3'"
    . " AND lab = 'prodigi'");
my $o3 = LabSandbox::paid_order($t, [ ['moor-rain', 'giclee-a3', 1] ]);
ok(wait_for(sub { $t->sql_value("SELECT status FROM orders WHERE id = :'p1'",
    $o3->{id}) eq 'needs_review' }, 20), 'no fallback: the order needs review');
like($t->sql_value("SELECT review_reason FROM orders WHERE id = :'p1'",
    $o3->{id}), qr/creativehub product id of photo moor-rain/,
    'the reason names the photo and what it lacks');

# --- 3: no phone collected: a clear reason, nothing sent ---------------

my $n = grep { $_->{path} eq '/api/v1/orders/embryonic' } $lab->requests;
my $o6 = LabSandbox::paid_order($t, [ ['harbour-dawn', 'giclee-a3', 1] ],
    phone => undef);
ok(wait_for(sub { my @l = LabSandbox::lab_orders($t, $o6);
    @l && $l[0][2] eq 'needs_attention' }, 20), 'no phone: needs attention');
like((LabSandbox::lab_orders($t, $o6))[0][5], qr/phone number/,
    'saying the phone number is missing');
is(scalar(grep { $_->{path} eq '/api/v1/orders/embryonic' } $lab->requests),
    $n, 'and nothing was sent');

# --- 13: a draft whose answer was lost ----------------------------------

$lab->control(POST => '/_sandbox/config', { fail => {
    'POST /api/v1/orders/embryonic' => { count => 1, mode => 'lost' } } });
my $o4 = LabSandbox::paid_order($t, [ ['harbour-dawn', 'giclee-a3', 1] ]);
ok(wait_for(sub { my @l = LabSandbox::lab_orders($t, $o4);
    @l && $l[0][2] eq 'submitted' }, 30), 'submitted after the lost answer')
    or diag explain [LabSandbox::lab_orders($t, $o4)];
my ($lo4) = LabSandbox::lab_orders($t, $o4);
my $st = $lab->state;
my $ref = $st->{ps}{$lo4->[3]}{ExternalReference};
my @mine = grep { ($_->{ExternalReference} // '') eq $ref } values %{$st->{ps}};
is(scalar(grep { $_->{OrderState} eq 'EmbryonicOrder' } @mine), 0,
    'no orphan draft left') or diag explain \@mine;
is(scalar(grep { $_->{OrderState} eq 'NewOrder' } @mine), 1,
    'one confirmed order');
ok((grep { $_->{path} eq '/api/v1/orders/query' } $lab->requests),
    'the draft was looked up by its external reference');

# --- a tracking number is escaped into the link -------------------------

my $o8 = LabSandbox::paid_order($t, [ ['harbour-dawn', 'giclee-a3', 1] ]);
ok(wait_for(sub { my @l = LabSandbox::lab_orders($t, $o8);
    @l && $l[0][2] eq 'submitted' }, 30), 'submitted');
my ($lo8) = LabSandbox::lab_orders($t, $o8);
$lab->control(POST => "/_sandbox/advance/ps/$lo8->[3]",
    { to => 'Dispatched', tracking => 'RM 1/2#?&x"<' });
ok(wait_for(sub { (lo_row($lo8->[0]))[0] eq 'shipped' }, 10), 'shipped');
is($t->sql_value("SELECT tracking_url FROM shipments"
    . " WHERE lab_order_id = :'p1'", $lo8->[0]),
    'https://www.royalmail.com/track-your-item#/tracking-results/'
    . 'RM%201%2F2%23%3F%26x%22%3C', 'the number escaped in the link');

# --- an order query that ignores its filter: only our own is adopted ----

$lab->control(POST => '/_sandbox/config', { ps_query_ignores_filter => 1 });
my $o7 = LabSandbox::paid_order($t, [ ['harbour-dawn', 'giclee-a3', 1] ]);
ok(wait_for(sub { my @l = LabSandbox::lab_orders($t, $o7);
    @l && $l[0][2] eq 'submitted' }, 30), 'submitted, the query answering all')
    or diag explain [LabSandbox::lab_orders($t, $o7)];
my ($lo7) = LabSandbox::lab_orders($t, $o7);
my $key7 = $t->sql_value("SELECT idempotency_key FROM lab_orders"
    . " WHERE id = :'p1'", $lo7->[0]);
is($lab->state->{ps}{$lo7->[3]}{ExternalReference}, $key7,
    'its lab order is its own, not another order\'s');
$lab->control(POST => '/_sandbox/config', { ps_query_ignores_filter => 0 });

# --- 6: "sandbox" is the API's sandbox host -----------------------------

my $conf = $t->read_file('nginx.conf');
(my $sb = $conf) =~ s{darkroom_printspace_api [^;]+;}{darkroom_printspace_api sandbox;};
$t->write_file('nginx.conf', $sb);
$t->reload;
my $o5 = LabSandbox::paid_order($t, [ ['harbour-dawn', 'giclee-a3', 1] ]);
ok(wait_for(sub { my @l = LabSandbox::lab_orders($t, $o5);
    @l && $l[0][5] ne '' }, 30), 'tried the sandbox (no network here)')
    or diag explain [LabSandbox::lab_orders($t, $o5)];
like((LabSandbox::lab_orders($t, $o5))[0][5], qr{https://api\.sandbox\.tps-test\.io/},
    'at the host the swagger names, api.sandbox.tps-test.io');

done_testing;
