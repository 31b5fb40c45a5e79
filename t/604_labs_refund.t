#!/usr/bin/perl
# A refund that cannot stop a lab order leaves it flagged until a person
# resolves it: the lab's next news (a poll, a callback) records what the
# lab says but never moves the lab order back to "in production", health
# counts it under labs.failed and the shop gets an alert.  Both labs:
# Prodigi refusing the cancel once production started, theprintspace
# (no cancel API) after confirmation.

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
LabSandbox::conf($t, $stripe->url, $lab,
    http => 'darkroom_lab_poll_interval 300ms;');
LabSandbox::mapping($t);
$t->start;

sub lo_row {
    my ($id) = @_;
    return $t->sql("SELECT status, coalesce(lab_status, ''),"
        . " coalesce(last_error, '') FROM lab_orders WHERE id = :'p1'", $id);
}

sub alerts {
    my ($id) = @_;
    return $t->sql_value("SELECT count(*) FROM jobs WHERE kind = 'email'"
        . " AND payload->>'template' = 'shop_alert'"
        . " AND payload->>'lab_order_id' = :'p1'", $id);
}

# --- Prodigi: refunded once production started -------------------------

my $o = LabSandbox::paid_order($t, [ ['moor-rain', 'canvas-50', 1] ]);
ok(wait_for(sub { my @l = LabSandbox::lab_orders($t, $o);
    @l && $l[0][2] eq 'submitted' }, 20), 'Prodigi order submitted');
my ($lo) = LabSandbox::lab_orders($t, $o);
$lab->control(POST => "/_sandbox/advance/$lo->[3]", { to => ['in_production'] });
ok(wait_for(sub { (lo_row($lo->[0]))[0][0] eq 'in_production' }, 10),
    'in production at the lab');

my $r = LabSandbox::refund($t, $o);
is($r->{json}{result}, 'refunded', 'refunded');
ok(wait_for(sub { (lo_row($lo->[0]))[0][0] eq 'needs_attention' }, 10),
    'the refunded lab order is flagged')
    or diag explain [lo_row($lo->[0])];
like((lo_row($lo->[0]))[0][2], qr/refund/i, 'the reason says refund');

# the lab goes on; darkroom records it but keeps the flag
$lab->control(POST => "/_sandbox/advance/$lo->[3]", { to => ['shipped_partial'] });
ok(wait_for(sub { $t->sql_value("SELECT count(*) FROM shipments"
    . " WHERE lab_order_id = :'p1'", $lo->[0]) > 0 }, 10),
    'the lab\'s news is recorded');
is((lo_row($lo->[0]))[0][0], 'needs_attention', 'still flagged after it');

$r = $t->http(GET => '/health');
cmp_ok($r->{json}{labs}{failed}, '>=', 1, 'health counts it');
cmp_ok(alerts($lo->[0]), '>=', 1, 'the shop is alerted');

# --- theprintspace: confirmed, refunded, printed anyway -----------------

my $o2 = LabSandbox::paid_order($t, [ ['harbour-dawn', 'giclee-a3', 1] ]);
ok(wait_for(sub { my @l = LabSandbox::lab_orders($t, $o2);
    @l && $l[0][2] eq 'submitted' }, 20), 'theprintspace order confirmed')
    or diag explain [LabSandbox::lab_orders($t, $o2)];
my ($lo2) = LabSandbox::lab_orders($t, $o2);

$r = LabSandbox::refund($t, $o2);
ok(wait_for(sub { (lo_row($lo2->[0]))[0][0] eq 'needs_attention' }, 10),
    'refunded: flagged (theprintspace cannot cancel by API)');

$lab->control(POST => "/_sandbox/advance/ps/$lo2->[3]", { to => 'in_production' });
ok(wait_for(sub { (lo_row($lo2->[0]))[0][1] ne 'NewOrder' }, 10),
    'a poll saw the lab\'s new state');
is((lo_row($lo2->[0]))[0][0], 'needs_attention',
    'the poll does not move it back to in production');

$r = $t->http(GET => '/health');
cmp_ok($r->{json}{labs}{failed}, '>=', 2, 'health counts both');
cmp_ok(alerts($lo2->[0]), '>=', 1, 'the shop is alerted');

# a person resolves it (lets it print): the flag goes, polling resumes
$r = LabSandbox::admin($t, POST => "orders/$lo2->[0]/resolve");
is($r->{status}, 200, 'admin resolves it') or diag $r->{content};
ok(wait_for(sub { (lo_row($lo2->[0]))[0][0] eq 'in_production' }, 10),
    'then it follows the lab again');

# confirmed, then in a failure state at the lab, then refunded: it is still
# at the lab, so it is not taken for cancelled (nor sent elsewhere)
my $o3 = LabSandbox::paid_order($t, [ ['harbour-dawn', 'giclee-a3', 1] ]);
ok(wait_for(sub { my @l = LabSandbox::lab_orders($t, $o3);
    @l && $l[0][2] eq 'submitted' }, 20), 'another theprintspace order');
my ($lo3) = LabSandbox::lab_orders($t, $o3);
$lab->control(POST => "/_sandbox/advance/ps/$lo3->[3]", { to => 'PaymentFailed' });
ok(wait_for(sub { (lo_row($lo3->[0]))[0][0] eq 'needs_attention' }, 10),
    'PaymentFailed at the lab');
$r = LabSandbox::admin($t, POST => "orders/$lo3->[0]/reroute");
is($r->{status}, 409, 'a confirmed order is not sent to another lab');
LabSandbox::refund($t, $o3);
ok(wait_for(sub { (lo_row($lo3->[0]))[0][2] =~ /cancel/i }, 10),
    'the refund asks for a cancel by hand') or diag explain [lo_row($lo3->[0])];
is((lo_row($lo3->[0]))[0][0], 'needs_attention',
    'flagged, not taken for cancelled');

# the lab keeps saying PaymentFailed: the next poll must not replace the
# refund's "cancel it by hand" with the lab's words (run here as the poll
# would, so the check does not depend on when the poll job runs)
$t->sql("SELECT lab_apply(:'p1', 'attention', 'PaymentFailed', '[]',"
    . " 'lab_poll', 'theprintspace: the order is PaymentFailed')", $lo3->[0]);
like((lo_row($lo3->[0]))[0][2], qr/cancel/i,
    'a repeated failure state keeps the refund\'s message');

# an admin cancels a confirmed theprintspace order: no cancel API, so it is
# flagged for a cancel by hand, and stays so when the lab goes on printing
my $o4 = LabSandbox::paid_order($t, [ ['harbour-dawn', 'giclee-a3', 1] ]);
ok(wait_for(sub { my @l = LabSandbox::lab_orders($t, $o4);
    @l && $l[0][2] eq 'submitted' }, 20), 'a fourth theprintspace order');
my ($lo4) = LabSandbox::lab_orders($t, $o4);
$r = LabSandbox::admin($t, POST => "orders/$lo4->[0]/cancel");
is($r->{status}, 200, 'admin cancels it') or diag $r->{content};
ok(wait_for(sub { (lo_row($lo4->[0]))[0][0] eq 'needs_attention' }, 10),
    'flagged: cancel it by hand') or diag explain [lo_row($lo4->[0])];
like((lo_row($lo4->[0]))[0][2], qr/by hand/, 'saying so');
$lab->control(POST => "/_sandbox/advance/ps/$lo4->[3]", { to => 'in_production' });
ok(wait_for(sub { (lo_row($lo4->[0]))[0][1] ne 'NewOrder' }, 10),
    'a poll saw the lab\'s new state');
is((lo_row($lo4->[0]))[0][0], 'needs_attention',
    'the admin\'s cancel stays flagged');
like((lo_row($lo4->[0]))[0][2], qr/by hand/, 'with its reason');

# the order that was not resolved is still flagged
is((lo_row($lo->[0]))[0][0], 'needs_attention', 'the other one still is');

done_testing;
