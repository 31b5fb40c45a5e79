#!/usr/bin/perl
# A theprintspace lab order is followed through the creativehub API it was
# sent through (lab_orders.lab_api), not whatever
# darkroom_printspace_protocol says now: after a switch, an order of the
# other API is neither polled at the wrong API nor sent again to it; it
# needs attention with a reason naming both, and is followed again once
# the protocol is set back.

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
LabSandbox::conf($t, $stripe->url, $lab, protocol => 'legacy',
    http => 'darkroom_lab_poll_interval 300ms;'
          . ' darkroom_lab_reroute_after 1000 1h;');
LabSandbox::mapping($t);
$t->start;

sub lo_row {
    my ($id) = @_;
    my ($r) = $t->sql("SELECT status, coalesce(last_error, ''),"
        . " coalesce(lab_order_id, ''), coalesce(lab_api, '')"
        . " FROM lab_orders WHERE id = :'p1'", $id);
    return @$r;
}

sub protocol {
    my ($p) = @_;
    my $conf = $t->read_file('nginx.conf');
    $conf =~ s{darkroom_printspace_protocol \w+;}
              {darkroom_printspace_protocol $p;};
    $t->write_file('nginx.conf', $conf);
    $t->reload;
}

# --- a confirmed order and a draft under the earlier API -----------------

my $a = LabSandbox::paid_order($t, [ ['harbour-dawn', 'giclee-a3', 1] ]);
ok(wait_for(sub { my @l = LabSandbox::lab_orders($t, $a);
    @l && $l[0][2] eq 'submitted' }, 30), 'A confirmed (legacy)');
my ($la) = LabSandbox::lab_orders($t, $a);
is((lo_row($la->[0]))[3], 'legacy', 'A: sent through the earlier API');

$lab->control(POST => '/_sandbox/config', { fail => {
    'POST /api/v1/orders/confirmed' => { count => 100000, status => 500 } } });
my $b = LabSandbox::paid_order($t, [ ['harbour-dawn', 'giclee-a3', 1] ]);
ok(wait_for(sub { my @l = LabSandbox::lab_orders($t, $b);
    @l && $l[0][3] && $l[0][4] >= 1 }, 30), 'B: a draft, not confirmed')
    or diag explain [LabSandbox::lab_orders($t, $b)];
my ($lb) = LabSandbox::lab_orders($t, $b);

# --- the shop switches to the current API --------------------------------

protocol('escher');
$lab->control(POST => '/_sandbox/config', { fail => {} });

ok(wait_for(sub { (lo_row($la->[0]))[0] eq 'needs_attention' }, 30),
    'A needs attention') or diag explain [lo_row($la->[0])];
like((lo_row($la->[0]))[1], qr/legacy.*escher/s,
    'A: the reason names both APIs');
ok(wait_for(sub { (lo_row($lb->[0]))[0] eq 'needs_attention' }, 30),
    'B needs attention') or diag explain [lo_row($lb->[0])];
like((lo_row($lb->[0]))[1], qr/legacy.*escher/s,
    'B: the reason names both APIs');

my @wrong = grep { $_->{path} =~ m{^/v1/orders} } $lab->requests;
is(scalar @wrong, 0, 'nothing asked of or sent to the current API')
    or diag explain \@wrong;

# a new order goes through the current API
my $c = LabSandbox::paid_order($t, [ ['harbour-dawn', 'giclee-a3', 1] ]);
ok(wait_for(sub { my @l = LabSandbox::lab_orders($t, $c);
    @l && $l[0][2] eq 'submitted' }, 30), 'C submitted (escher)');
my ($lc) = LabSandbox::lab_orders($t, $c);
is((lo_row($lc->[0]))[3], 'escher', 'C: sent through the current API');

# --- set back: A is followed again ---------------------------------------

protocol('legacy');
my $r = LabSandbox::admin($t, POST => "orders/$la->[0]/retry");
is($r->{status}, 200, 'A: retried');
ok(wait_for(sub { (lo_row($la->[0]))[0] eq 'submitted' }, 30),
    'A followed at the earlier API again') or diag explain [lo_row($la->[0])];
ok(wait_for(sub { (lo_row($lc->[0]))[0] eq 'needs_attention' }, 30),
    'C, of the current API, now needs attention');

done_testing;
