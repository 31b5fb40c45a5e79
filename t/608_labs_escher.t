#!/usr/bin/perl
# theprintspace through creativehub's current API ("Escher V2", the
# default darkroom_printspace_protocol): a Bearer token, one POST /v1/orders
# with the lab order's Idempotency-Key (a lost answer's retry makes no
# second order), items as the photo's creativehub variant, the recipient's
# phone; statuses read by what they say; requests and answers match the
# contract.  The current API has no sandbox: nginx -t says so.

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
LabSandbox::conf($t, $stripe->url, $lab, protocol => 'escher',
    http => 'darkroom_lab_poll_interval 300ms;');
LabSandbox::mapping($t);
$t->start;

sub lo_row {
    my ($id) = @_;
    my ($r) = $t->sql("SELECT status, coalesce(lab_status, ''),"
        . " coalesce(last_error, ''), idempotency_key,"
        . " coalesce(lab_order_id, '') FROM lab_orders WHERE id = :'p1'", $id);
    return @$r;
}

# --- an order, its answer lost once --------------------------------------

$lab->control(POST => '/_sandbox/config', { fail => {
    'POST /v1/orders' => { count => 1, mode => 'lost' } } });
my $o = LabSandbox::paid_order($t, [ ['harbour-dawn', 'giclee-a3', 2] ],
    phone => '+44 7700 900321');
ok(wait_for(sub { my @l = LabSandbox::lab_orders($t, $o);
    @l && $l[0][2] eq 'submitted' }, 30), 'submitted')
    or diag explain [LabSandbox::lab_orders($t, $o)];
my ($lo) = LabSandbox::lab_orders($t, $o);
is($lo->[1], 'printspace', 'at theprintspace');
my @r = lo_row($lo->[0]);
my $st = $lab->state;
is(scalar keys %{$st->{escher}}, 1, 'one order at the lab');
is($st->{escher_keys}{$r[3]}{repeats}, 1,
    'the retry carried the same Idempotency-Key');
is($r[4], (keys %{$st->{escher}})[0], 'darkroom has its order_id');

my @sent = grep { $_->{path} eq '/v1/orders' } $lab->requests;
is(scalar @sent, 2, 'sent twice (the first answer was lost)');
is($sent[0]{auth}, 'Bearer printspace-test-key', 'Bearer token');
is($sent[$_]{idempotency_key}, $r[3], "Idempotency-Key, send $_")
    for 0 .. 1;
my $body = decode_json($sent[0]{body});
contract_ok('theprintspace', 'escher_order_create', $body, 'the request');
is_deeply($body->{items}, [ { variant_id =>
    '7d1e4f0a-a3a3-4c61-9b1e-0c5e2f6a9d01', quantity => 2 } ],
    'items: the photo\'s variant, the copies');
is($body->{delivery_phone}, '+44 7700 900321', 'the recipient\'s phone');
is($body->{delivery_country_code}, 'GB', 'the country code');
is($body->{delivery_postcode}, 'YO21 1AA', 'the postcode');

# --- statuses ------------------------------------------------------------

my $id = $r[4];
$lab->control(POST => "/_sandbox/advance/escher/$id", { status => 'in_production' });
ok(wait_for(sub { (lo_row($lo->[0]))[0] eq 'in_production' }, 10),
    'in production');
$lab->control(POST => "/_sandbox/advance/escher/$id", { status => 'on_hold' });
ok(wait_for(sub { (lo_row($lo->[0]))[0] eq 'needs_attention' }, 10),
    'on hold needs attention');
like((lo_row($lo->[0]))[2], qr/on_hold/, 'with the lab\'s word');
$lab->control(POST => "/_sandbox/advance/escher/$id", { status => 'dispatched' });
ok(wait_for(sub { (lo_row($lo->[0]))[0] eq 'shipped' }, 10), 'dispatched');

# --- only exact words cancel or ship --------------------------------------

my $o3 = LabSandbox::paid_order($t, [ ['harbour-dawn', 'giclee-a3', 1] ]);
ok(wait_for(sub { my @l = LabSandbox::lab_orders($t, $o3);
    @l && $l[0][2] eq 'submitted' }, 30), 'another order submitted');
my ($lo3) = LabSandbox::lab_orders($t, $o3);
my $id3 = (lo_row($lo3->[0]))[4];
for my $word (qw(cancellation_requested not_cancellable awaiting_dispatch
                 ready_for_dispatch))
{
    $lab->control(POST => "/_sandbox/advance/escher/$id3",
        { status => $word });
    ok(wait_for(sub { (lo_row($lo3->[0]))[1] eq $word }, 10),
        "$word seen");
    is((lo_row($lo3->[0]))[0], 'submitted', "$word: still submitted");
}
for my $word (qw(cancel_failed undeliverable)) {
    $lab->control(POST => "/_sandbox/advance/escher/$id3",
        { status => $word });
    ok(wait_for(sub { (lo_row($lo3->[0]))[1] eq $word }, 10),
        "$word seen");
    is((lo_row($lo3->[0]))[0], 'needs_attention', "$word needs attention");
    like((lo_row($lo3->[0]))[2], qr/\Q$word\E/, "$word: the lab's word");
}
is($t->sql_value("SELECT count(*) FROM jobs WHERE dedupe_key = :'p1'"
    . " AND done_at IS NULL", "lab_poll:$lo3->[0]"), 1,
    'still followed');
$lab->control(POST => "/_sandbox/advance/escher/$id3", { status => 'Canceled' });
ok(wait_for(sub { (lo_row($lo3->[0]))[0] eq 'cancelled' }, 10),
    'the exact word cancels');

# --- an order_id darkroom cannot put in a path ---------------------------

$lab->control(POST => '/_sandbox/config', { escher_id_suffix => '/../x' });
my $o4 = LabSandbox::paid_order($t, [ ['harbour-dawn', 'giclee-a3', 1] ]);
ok(wait_for(sub { my @l = LabSandbox::lab_orders($t, $o4);
    @l && $l[0][2] eq 'needs_attention' }, 30), 'a bad order_id needs attention')
    or diag explain [LabSandbox::lab_orders($t, $o4)];
like((LabSandbox::lab_orders($t, $o4))[0][5], qr/order_id/,
    'saying the order_id cannot be used');
is(scalar(grep { $_->{path} =~ m{^/v1/}
                 && $_->{path} !~ m{^/v1/orders(/[\w-]+)?$} } $lab->requests),
    0, 'it never went into a path');

# --- a photo without a variant: the fallback lab -------------------------

my $o2 = LabSandbox::paid_order($t, [ ['moor-rain', 'giclee-a3', 1] ]);
ok(wait_for(sub { my @l = LabSandbox::lab_orders($t, $o2);
    @l && $l[0][2] eq 'submitted' }, 20), 'submitted');
is((LabSandbox::lab_orders($t, $o2))[0][1], 'prodigi', 'at Prodigi');

# --- every answer matches the contract -----------------------------------

my %seen;
for my $a ($lab->responses) {
    next unless $a->{path} =~ m{^/v1/} && $a->{body} ne '';
    my $b = decode_json($a->{body});
    my $name = $a->{status} >= 400 ? 'escher_error'
             : $a->{method} eq 'POST' ? 'escher_order_created' : 'escher_order';
    contract_ok('theprintspace', $name, $b, "answer $a->{method} $a->{status}");
    $seen{$name}++;
}
ok($seen{escher_order_created} && $seen{escher_order}, 'answers were checked');

# --- no sandbox ----------------------------------------------------------

my $conf = $t->read_file('nginx.conf');
(my $bad = $conf) =~ s{darkroom_printspace_api [^;]+;}{darkroom_printspace_api sandbox;};
$t->write_file('nginx.conf', $bad);
my ($ok, $out) = $t->test_conf;
ok(!$ok, 'nginx -t refuses the current API with "sandbox"');
like($out, qr/current API has no sandbox/, 'saying why');
my @lines = split /\n/, $bad;
my ($line) = map { $_ + 1 }
    grep { $lines[$_] =~ /darkroom_printspace_api sandbox/ } 0 .. $#lines;
like($out, qr/no sandbox.* in \S*nginx\.conf:$line\b/,
    'at the directive\'s file and line') or diag $out;
$t->write_file('nginx.conf', $conf);

done_testing;
