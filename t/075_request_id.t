#!/usr/bin/perl
# Tracing: a checkout's $request_id (as its access log line has it) is on
# the job rows its transaction queued (jobs.request_id, sql/038, through
# the session's darkroom.request_id) and in the X-Request-Id header the
# Stripe sandbox received; the job runner sends it on the job's own
# Stripe call; a second checkout's jobs carry its own id; a job queued
# outside a request has none.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use JSON::PP;
use Darkroom::Test qw(wait_for);
use Darkroom::Stripe qw(demo_catalogue shop_conf fake_api);

my $t = Darkroom::Test->new;
my $stripe = fake_api($t);
shop_conf($t, stripe => $stripe->url,
    http => 'log_format rid "$uri $status $request_id";'
          . ' access_log %%DIR%%/rid.log rid;');
demo_catalogue($t);
$t->start;

sub log_lines {
    my ($n) = @_;
    my @l;
    wait_for(sub {
        @l = -e $t->dir . '/rid.log'
            ? split /\n/, $t->read_file('rid.log') : ();
        @l >= $n }, 10);
    return map { [ split / / ] } @l;
}

sub checkout {
    return $t->http(POST => '/api/checkout', {
        headers => { 'Content-Type' => 'application/json' },
        content => encode_json({ email => 'ada@example.com', items => [
            { photo => 'harbour-dawn', product => 'giclee-a3',
              quantity => 1 } ] }) });
}

my $r = checkout();
is($r->{status}, 201, 'a checkout');
my ($line) = log_lines(1);
my $rid = $line->[2];
like($rid, qr/^[0-9a-f]{32}$/, "its request id: $rid");

my $order = $t->sql_value("SELECT id FROM orders WHERE ref = :'p1'",
    $r->{json}{order});
my @jobs = $t->sql("SELECT kind, request_id FROM jobs"
    . " WHERE payload->>'order_id' = :'p1' ORDER BY id", $order);
ok(@jobs, 'the checkout queued jobs: ' . join ',', map { $_->[0] } @jobs);
is_deeply([ map { $_->[1] } @jobs ], [ ($rid) x @jobs ],
    'each carries the request id');

my @calls = grep { $_->{path} eq '/v1/checkout/sessions' } $stripe->requests;
is(scalar @calls, 1, 'Stripe was called once');
is($calls[0]{headers}{'x-request-id'}, $rid,
    'with the request id as X-Request-Id');

# a second checkout: its own id on its own jobs, not the first's
$r = checkout();
is($r->{status}, 201, 'another checkout');
my (undef, $second) = log_lines(2);
isnt($second->[2], $rid, 'a new request id');
my $order2 = $t->sql_value("SELECT id FROM orders WHERE ref = :'p1'",
    $r->{json}{order});
is($t->sql_value("SELECT string_agg(DISTINCT request_id, ',') FROM jobs"
    . " WHERE payload->>'order_id' = :'p1'", $order2), $second->[2],
    "the second checkout's jobs carry its id");

# the job runner: the first order's reconcile job, made due now, asks
# Stripe for the session with the checkout's request id
$t->sql(q{UPDATE jobs SET run_at = now() WHERE kind = 'checkout_reconcile'
    AND payload->>'order_id' = :'p1'}, $order);
my @get;
ok(wait_for(sub {
    @get = grep { $_->{method} eq 'GET'
                  && $_->{path} =~ m{^/v1/checkout/sessions/} }
        $stripe->requests;
    @get }, 20), 'the reconcile job asked Stripe');
is($get[0]{headers}{'x-request-id'}, $rid,
    "the job's call carries the request id that queued it");

# outside a request: no id
$t->sql(q{INSERT INTO jobs (kind, payload) VALUES ('http_post', '{}')});
is($t->sql_value(q{SELECT count(*) FROM jobs WHERE kind = 'http_post'
    AND request_id IS NULL}), 1, 'a job queued outside a request has none');

done_testing;
