#!/usr/bin/perl
# A lab outage delays or reroutes an order, never loses it and never makes
# it twice: 500s then success is one lab order; nginx SIGKILLed while the
# lab is answering is still one after a restart; a lab down past the
# threshold reroutes to the fallback lab once; with no fallback the lab
# order needs attention, visible in the admin API and health, and the
# admin can retry, reroute and cancel.

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
LabSandbox::conf($t, $stripe->url, $lab, http => 'darkroom_lab_reroute_after 4;');
LabSandbox::mapping($t);
$t->start;

sub key_of { $t->sql_value("SELECT idempotency_key FROM lab_orders WHERE id = :'p1'", $_[0]) }
sub status_of { $t->sql_value("SELECT status FROM lab_orders WHERE id = :'p1'", $_[0]) }
sub creations {
    my ($key) = @_;
    my $k = $lab->state->{keys}{$key} or return 0;
    return $k->{creations};
}

# --- 500 three times, then success --------------------------------------
$lab->control(POST => '/_sandbox/config',
    { fail => { 'POST /v4.0/Orders' => { count => 3, status => 500 } } });
my $o = LabSandbox::paid_order($t, [ ['moor-rain', 'canvas-50', 1] ]);
ok(wait_for(sub { my @l = LabSandbox::lab_orders($t, $o);
    @l && $l[0][2] eq 'submitted' }, 20), 'submitted after three 500s');
my ($lo) = LabSandbox::lab_orders($t, $o);
is($lo->[4], 3, 'three failed attempts recorded');
my $key = key_of($lo->[0]);
is(scalar(grep { $_->{path} eq '/v4.0/Orders' && $_->{body} =~ /"$key"/ }
    $lab->requests), 4, 'four requests with the same idempotency key');
is(creations($key), 1, 'exactly one order created at the lab');
is(scalar(keys %{$lab->state->{prodigi}}), 1, 'one Prodigi order in all');

# --- SIGKILL while the lab is answering -----------------------------------
# the lab holds its answer far longer than the test needs to kill nginx,
# however slow the machine: the kill always lands before the answer
$lab->control(POST => '/_sandbox/config', { create_delay_ms => 60000 });
my $o2 = LabSandbox::paid_order($t, [ ['moor-rain', 'canvas-50', 2] ]);
my ($lo2) = LabSandbox::lab_orders($t, $o2) if wait_for(sub {
    scalar LabSandbox::lab_orders($t, $o2) }, 10);
my $key2 = key_of($lo2->[0]);
ok(wait_for(sub { creations($key2) == 1 }, 10), 'the lab made the order');
my @pids = ($t->master_pid, $t->worker_pids);
kill 'KILL', @pids;
ok(wait_for(sub { !grep { kill 0, $_ } @pids }, 5), 'nginx SIGKILLed mid-send');
is(status_of($lo2->[0]), 'pending', 'darkroom never heard the answer');
$lab->control(POST => '/_sandbox/config', { create_delay_ms => 0 });
$t->start;
ok(wait_for(sub { status_of($lo2->[0]) eq 'submitted' }, 20),
    'after the restart the job ran again and the order is submitted');
is(creations($key2), 1, 'still exactly one order at the lab');
cmp_ok($lab->state->{keys}{$key2}{repeats}, '>=', 1, 'the retry got AlreadyExists');
is($t->sql_value("SELECT lab_order_id FROM lab_orders WHERE id = :'p1'", $lo2->[0]),
    $lab->state->{keys}{$key2}{id}, 'and recorded the lab\'s order id');

# --- primary down past the threshold: rerouted to the fallback -------------
$lab->control(POST => '/_sandbox/config',
    { fail => { 'POST /api/v1/orders/embryonic' => { count => 100, status => 503 } } });
my $o3 = LabSandbox::paid_order($t, [ ['harbour-dawn', 'giclee-a3', 1] ]);
ok(wait_for(sub { my @l = LabSandbox::lab_orders($t, $o3);
    @l == 2 && $l[1][2] eq 'submitted' }, 20), 'rerouted and submitted');
my @l3 = LabSandbox::lab_orders($t, $o3);
is_deeply([ map { [$_->[1], $_->[2]] } @l3 ],
    [ ['printspace', 'rerouted'], ['prodigi', 'submitted'] ],
    'theprintspace order rerouted to Prodigi');
is($l3[0][4], 4, 'after four attempts');
my ($po) = grep { $_->{merchantReference} eq $o3->{ref} }
    values %{$lab->state->{prodigi}};
is($po->{items}[0]{sku}, 'GLOBAL-FAP-A3', 'with the fallback lab\'s SKU');
my $r = LabSandbox::admin($t, GET => "orders/$l3[0][0]");
is($r->{json}{rerouted_to}, $l3[1][0], 'admin shows where it went');
ok((grep { $_->{to} eq 'rerouted' } @{$r->{json}{history}}), 'and when, in its history');

# --- no fallback: needs attention --------------------------------------
$lab->control(POST => '/_sandbox/config',
    { fail => { 'POST /v4.0/Orders' => { count => 100, status => 502 } } });
my $o4 = LabSandbox::paid_order($t, [ ['moor-rain', 'canvas-50', 1] ]);
ok(wait_for(sub { my @l = LabSandbox::lab_orders($t, $o4);
    @l && $l[0][2] eq 'needs_attention' }, 20), 'no fallback: needs attention');
my ($lo4) = LabSandbox::lab_orders($t, $o4);
like($lo4->[5], qr/prodigi failed 4 times.*502/, 'with the reason');
$r = LabSandbox::admin($t, GET => 'orders?status=attention');
is($r->{status}, 200, 'admin list');
ok((grep { $_->{id} == $lo4->[0] } @{$r->{json}{lab_orders}}), 'lists it');
cmp_ok($r->{json}{totals}{failed}, '>=', 1, 'totals');
$r = $t->http(GET => '/health');
cmp_ok($r->{json}{labs}{failed}, '>=', 1, 'health counts it');
$r = $t->http(GET => '/admin/api/labs/orders', { port => $t->port(2) });
is($r->{status}, 401, 'the admin API needs a token');

# the lab is back: retry now
$lab->control(POST => '/_sandbox/config', { fail => {} });
$r = LabSandbox::admin($t, POST => "orders/$lo4->[0]/retry");
is($r->{status}, 200, 'retry accepted');
ok(wait_for(sub { status_of($lo4->[0]) eq 'submitted' }, 10), 'retried and submitted');
$r = $t->http(GET => '/health');
is($r->{json}{labs}{failed}, 0, 'health: nothing failed now');

# admin cancel of a submitted order (not in production)
$r = LabSandbox::admin($t, POST => "orders/$lo4->[0]/cancel");
is($r->{json}{status}, 'cancelling', 'cancel requested');
ok(wait_for(sub { status_of($lo4->[0]) eq 'cancelled' }, 10), 'cancelled at the lab');
my $lid = $t->sql_value("SELECT lab_order_id FROM lab_orders WHERE id = :'p1'", $lo4->[0]);
is($lab->state->{prodigi}{$lid}{status}{stage}, 'Cancelled', 'the lab agrees');

# admin reroute: refused for an order the lab has, allowed for a held one
$r = LabSandbox::admin($t, POST => "orders/$lo2->[0]/reroute", { lab => 'printspace' });
is($r->{status}, 409, 'cannot reroute an order the lab accepted');
is($r->{json}{error}{code}, 'not_reroutable', 'not_reroutable');
$r = LabSandbox::admin($t, POST => 'orders/999999/retry');
is($r->{status}, 404, 'unknown lab order: 404');

done_testing;
