#!/usr/bin/perl
# Prodigi: idempotency keys are unique across installs and restores (the
# same order and lab order ids coming back never meet an old order), an
# "AlreadyExists" answer is checked to be this order; the recipient's phone
# and each item's recipientCost are sent; a poll that finds issues or a
# failed step needs attention, with the reason.

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
    http => 'darkroom_lab_poll_interval 300ms;');
LabSandbox::mapping($t);
$t->start;

sub lo_row {
    my ($id) = @_;
    my ($r) = $t->sql("SELECT status, coalesce(lab_status, ''),"
        . " coalesce(last_error, ''), idempotency_key, coalesce(lab_order_id, '')"
        . " FROM lab_orders WHERE id = :'p1'", $id);
    return @$r;
}

# --- 10: a restored database's ids meet an old order --------------------

my $seeded;
my $o = LabSandbox::paid_order($t, [ ['moor-rain', 'canvas-50', 1] ],
    phone => '+44 7700 900789', before_paid => sub {
        my ($order) = @_;
        my $next = $t->sql_value("SELECT CASE WHEN is_called THEN"
            . " last_value + 1 ELSE last_value END FROM lab_orders_id_seq");
        $seeded = $lab->control(POST => '/_sandbox/seed', {
            idempotencyKey => "darkroom-$order->{id}-$next",
            merchantReference => 'OLD-ORDER' });
    });
ok(wait_for(sub { my @l = LabSandbox::lab_orders($t, $o);
    @l && $l[0][2] ne 'pending' }, 20), 'sent');
my ($lo) = LabSandbox::lab_orders($t, $o);
my @r = lo_row($lo->[0]);
isnt($r[4], $seeded->{id}, 'not taken for the old order of the same ids');
is($r[0], 'submitted', 'submitted as a new order');
my $po = $lab->state->{prodigi}{$r[4]};
is($po->{merchantReference}, $o->{ref}, 'the lab has this order');
like($r[3], qr/^darkroom-$o->{id}-$lo->[0]-[0-9a-f]{16}$/,
    'the key carries a random part');

# --- 11: phone and recipientCost ----------------------------------------

is($po->{recipient}{phoneNumber}, '+44 7700 900789', 'recipient phoneNumber');
is_deeply($po->{items}[0]{recipientCost}, { amount => '120.00',
    currency => 'GBP' }, 'recipientCost: what the customer paid per copy');

# --- 10: AlreadyExists naming another order -----------------------------

$lab->control(POST => '/_sandbox/config', { foreign_already_exists => 1 });
my $o2 = LabSandbox::paid_order($t, [ ['moor-rain', 'canvas-50', 1] ]);
ok(wait_for(sub { my @l = LabSandbox::lab_orders($t, $o2);
    @l && $l[0][2] ne 'pending' }, 20), 'answered');
my ($lo2) = LabSandbox::lab_orders($t, $o2);
@r = lo_row($lo2->[0]);
is($r[0], 'needs_attention', 'an AlreadyExists for another order needs attention')
    or diag explain \@r;
like($r[2], qr/AlreadyExists.*SOMEONE-ELSE/, 'saying so');
isnt($r[4], 'ord_999999', 'the other order is not taken as ours');

# --- 11: issues and failed steps found by polling -----------------------

$lab->control(POST => "/_sandbox/issue/$lo->[3]", {
    issues => [ { objectId => "$lo->[3]", errorCode =>
        'order.items.assets.FailedToDownload',
        description => 'The asset could not be downloaded' } ],
    details => { downloadAssets => 'Error' } });
ok(wait_for(sub { (lo_row($lo->[0]))[0] eq 'needs_attention' }, 10),
    'an issue found by polling needs attention') or diag explain [lo_row($lo->[0])];
like((lo_row($lo->[0]))[2], qr/FailedToDownload/, 'with the reason');

my $o3 = LabSandbox::paid_order($t, [ ['moor-rain', 'canvas-50', 1] ]);
ok(wait_for(sub { my @l = LabSandbox::lab_orders($t, $o3);
    @l && $l[0][2] eq 'submitted' }, 20), 'submitted');
my ($lo3) = LabSandbox::lab_orders($t, $o3);
$lab->control(POST => "/_sandbox/issue/$lo3->[3]", {
    details => { printReadyAssetsPrepared => 'Error' } });
ok(wait_for(sub { (lo_row($lo3->[0]))[0] eq 'needs_attention' }, 10),
    'a failed step needs attention');
like((lo_row($lo3->[0]))[2], qr/printReadyAssetsPrepared/, 'naming it');

# an issue left on an order whose shipping is complete: shipped, not lost
my $o4 = LabSandbox::paid_order($t, [ ['moor-rain', 'canvas-50', 1] ]);
ok(wait_for(sub { my @l = LabSandbox::lab_orders($t, $o4);
    @l && $l[0][2] eq 'submitted' }, 20), 'submitted');
my ($lo4) = LabSandbox::lab_orders($t, $o4);
$lab->control(POST => "/_sandbox/issue/$lo4->[3]", {
    issues => [ { objectId => "$lo4->[3]", errorCode =>
        'order.items.assets.FailedToDownload',
        description => 'The asset could not be downloaded' } ],
    details => { shipping => 'Complete' } });
ok(wait_for(sub { (lo_row($lo4->[0]))[0] eq 'shipped' }, 10),
    'shipping complete wins over an old issue')
    or diag explain [lo_row($lo4->[0])];

done_testing;
