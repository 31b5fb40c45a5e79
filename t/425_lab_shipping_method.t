#!/usr/bin/perl
# The lab is asked for the shipping the customer paid for: Prodigi's
# shippingMethod is the order's method (Budget, Standard, Express), and
# theprintspace's delivery option for express is the one that arrives
# first, for standard the configured one; an order priced before shipping
# methods keeps darkroom_prodigi_shipping_method.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use JSON::PP;
use Darkroom::Test qw(wait_for);
use Darkroom::Stripe qw(fake_api event session signature);
use LabSandbox;

my $t = Darkroom::Test->new;
my $stripe = fake_api($t);
my $lab = LabSandbox::start($t);
LabSandbox::conf($t, $stripe->url, $lab, http => 'darkroom_lab_poll_interval'
    . ' 300ms; darkroom_printspace_delivery "London/Royal Mail Tracked 48";');
LabSandbox::mapping($t);
$t->sql(<<'SQL');
INSERT INTO shipping_zones (id, name) VALUES ('uk', 'UK');
INSERT INTO shipping_zone_countries VALUES ('GB', 'uk');
INSERT INTO shipping_rates (zone_id, currency, method, name, amount) VALUES
  ('uk', 'GBP', 'budget', 'Economy', 300),
  ('uk', 'GBP', 'standard', 'Tracked', 450),
  ('uk', 'GBP', 'express', 'Next day', 1200);
SQL
$t->start;

# checkout with a method, then paid by a signed webhook
sub paid {
    my ($photo, $product, $method) = @_;
    my $r = $t->http(POST => '/api/checkout', {
        headers => { 'Content-Type' => 'application/json' },
        content => encode_json({ email => 'ada@example.com', country => 'GB',
            defined $method ? (shipping_method => $method) : (),
            items => [ { photo => $photo, product => $product,
                         quantity => 1 } ] }) });
    die "checkout: $r->{content}" unless $r->{status} == 201;
    my ($id, $ref, $total) = @{ ($t->sql("SELECT id, ref, total FROM orders"
        . " WHERE ref = :'p1'", $r->{json}{order}))[0] };
    $t->sql("UPDATE orders SET shipping_phone = '+44 7700 900123'"
        . " WHERE id = :'p1'", $id);
    my $body = event('checkout.session.completed', session(
        id => "cs_test_$id", order_id => $id, ref => $ref, amount => $total));
    $r = $t->http(POST => '/webhooks/stripe', { headers => {
        'Content-Type' => 'application/json',
        'Stripe-Signature' => signature('whsec_test_one', $body) },
        content => $body });
    die "webhook: $r->{content}" unless ($r->{json}{result} // '') eq 'paid';
    my $o = { id => $id, ref => $ref };
    ok(wait_for(sub { my @l = LabSandbox::lab_orders($t, $o);
        @l && $l[0][2] eq 'submitted' }, 20), "$product by $method: submitted")
        or diag explain [LabSandbox::lab_orders($t, $o)];
    my ($lo) = LabSandbox::lab_orders($t, $o);
    return ($o, $lo);
}

# --- Prodigi ---------------------------------------------------------------
for my $m ([ express => 'Express' ], [ budget => 'Budget' ],
           [ standard => 'Standard' ])
{
    my ($o, $lo) = paid('moor-rain', 'canvas-50', $m->[0]);
    is($lo->[1], 'prodigi', 'at Prodigi');
    is($lab->state->{prodigi}{$lo->[3]}{shippingMethod}, $m->[1],
        "paid $m->[0]: Prodigi shippingMethod $m->[1]");
    is(decode_json($t->sql_value("SELECT lab_submit_json(:'p1')",
        $lo->[0]))->{shipping_method}, $m->[0], 'lab_submit_json names it');
}

# an order from before shipping methods: the configured method
my ($o, $lo) = paid('moor-rain', 'canvas-50', 'budget');
$t->sql("UPDATE orders SET shipping_method = NULL WHERE id = :'p1'", $o->{id});
is(decode_json($t->sql_value("SELECT lab_submit_json(:'p1')", $lo->[0]))
    ->{shipping_method}, undef, 'an order without a method');

# --- theprintspace -----------------------------------------------------------
($o, $lo) = paid('harbour-dawn', 'giclee-a3', 'express');
is($lo->[1], 'printspace', 'at theprintspace');
is($lab->state->{ps}{$lo->[3]}{DeliveryOption}{Method}, 'DHL Express',
    'paid express: the option that arrives first');
($o, $lo) = paid('harbour-dawn', 'giclee-a3', 'standard');
is($lab->state->{ps}{$lo->[3]}{DeliveryOption}{Method},
    'Royal Mail Tracked 48', 'paid standard: the configured option');

done_testing;
