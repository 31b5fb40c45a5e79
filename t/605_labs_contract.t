#!/usr/bin/perl
# Contract: every request darkroom sends to the fake labs, and every answer
# the lab sandbox gives, matches the schema kept for that provider
# (t/contract/prodigi, t/contract/theprintspace, written from the public
# docs), so a field invented on both sides fails here.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use JSON::PP;
use Darkroom::Test qw(wait_for);
use Darkroom::Stripe qw(fake_api);
use Darkroom::Contract qw(contract_ok);
use LabSandbox;

my $t = Darkroom::Test->new;
my $stripe = fake_api($t);
my $lab = LabSandbox::start($t);
LabSandbox::conf($t, $stripe->url, $lab,
    http => 'darkroom_lab_poll_interval 300ms;');
LabSandbox::mapping($t);
$t->start;

# a mixed order through both labs to the end, and a refused one
my $o = LabSandbox::paid_order($t, [ ['harbour-dawn', 'giclee-a3', 2],
    ['moor-rain', 'canvas-50', 1] ]);
ok(wait_for(sub { my @l = LabSandbox::lab_orders($t, $o);
    @l == 2 && !grep { $_->[2] ne 'submitted' } @l }, 20),
    'both lab orders submitted') or diag explain [LabSandbox::lab_orders($t, $o)];
my @lo = LabSandbox::lab_orders($t, $o);
my ($ps) = grep { $_->[1] eq 'printspace' } @lo;
my ($pd) = grep { $_->[1] eq 'prodigi' } @lo;
$lab->control(POST => "/_sandbox/advance/$pd->[3]", { to => ['shipped'] });
$lab->control(POST => "/_sandbox/advance/ps/$ps->[3]", { to => 'shipped' });
ok(wait_for(sub { !grep { $_->[2] ne 'shipped' }
    LabSandbox::lab_orders($t, $o) }, 20), 'both shipped');

$t->sql("UPDATE lab_products SET sku = 'NOT-A-SKU' WHERE product_id = 'canvas-50'");
my $o2 = LabSandbox::paid_order($t, [ ['moor-rain', 'canvas-50', 1] ]);
ok(wait_for(sub { my @l = LabSandbox::lab_orders($t, $o2);
    @l && $l[0][2] eq 'needs_attention' }, 20), 'a refused order');

my %seen;

# what darkroom sent
for my $r ($lab->requests) {
    my $what = "$r->{method} $r->{path}";
    my $body = length($r->{body} // '') ? eval { decode_json($r->{body}) } : undef;
    if ($what eq 'POST /v4.0/Orders') {
        contract_ok('prodigi', 'order_create', $body, "request $what");
    } elsif ($what eq 'POST /api/v1/orders/embryonic') {
        contract_ok('theprintspace', 'order_embryonic_request', $body,
            "request $what");
    } elsif ($what eq 'POST /api/v1/orders/confirmed') {
        contract_ok('theprintspace', 'order_confirmed_request', $body,
            "request $what");
    } elsif ($what eq 'POST /api/v1/orders/query') {
        contract_ok('theprintspace', 'orders_query_request', $body,
            "request $what");
    } elsif ($r->{method} eq 'GET' || $r->{method} eq 'DELETE'
             || $r->{path} =~ m{/actions/cancel$})
    {
        ok(!length($r->{body} // '') || $r->{body} eq '{}',
            "request $what has no body to check");
        next;
    } else {
        fail("request $what: no contract for it");
        next;
    }
    $seen{"request $what"}++;
}

# what the labs answered
for my $r ($lab->responses) {
    my $what = "$r->{method} $r->{path} $r->{status}";
    next if $r->{status} >= 500 || $r->{body} eq '';
    my $body = eval { decode_json($r->{body}) };
    my $prodigi = $r->{path} =~ m{^/v4\.0/};
    if ($r->{status} >= 400) {
        contract_ok($prodigi ? 'prodigi' : 'theprintspace', 'error', $body,
            "answer $what");
    } elsif ($prodigi && $r->{path} !~ m{/actions/}) {
        contract_ok('prodigi', 'order_answer', $body, "answer $what");
    } elsif ($r->{path} =~ m{/orders/query$}) {
        contract_ok('theprintspace', 'orders_query_answer', $body,
            "answer $what");
        contract_ok('theprintspace', 'order', $_, "answer $what: Data[]")
            for @{$body->{Data} // []};
    } elsif (!$prodigi) {
        contract_ok('theprintspace', 'order', $body, "answer $what");
    } else {
        next;
    }
    (my $k = $what) =~ s{/(?:ord_)?\d+}{/ID}g;
    $seen{"answer $k"}++;
}

# what the fake Prodigi posted to darkroom's callback: the CloudEvent, and
# the order in it as the order object
for my $c (@{ $lab->state->{callbacks} // [] }) {
    my $e = decode_json($c->{body});
    contract_ok('prodigi', 'callback', $e, 'callback event');
    contract_ok('prodigi', 'order_answer', { outcome => 'Ok',
        order => $e->{data}{order} }, 'callback event: data.order');
    $seen{'callback'}++;
}

# not vacuous: each kind was checked
for my $k ('request POST /v4.0/Orders', 'request POST /api/v1/orders/embryonic',
    'request POST /api/v1/orders/confirmed', 'answer POST /v4.0/Orders 200',
    'answer POST /v4.0/Orders 400', 'answer GET /v4.0/Orders/ID 200',
    'answer POST /api/v1/orders/embryonic 200',
    'answer POST /api/v1/orders/confirmed 200',
    'answer GET /api/v1/orders/ID 200', 'callback')
{
    ok($seen{$k}, "checked: $k") or diag explain \%seen;
}

done_testing;
