#!/usr/bin/perl
# Postgres stopped: the webhook answers 503 so that Stripe retries, nothing
# is acknowledged that was not committed, and the event is applied when
# Stripe delivers it again after Postgres is back.  A Postgres cluster of
# its own, so stopping it disturbs no other test.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use JSON::PP;
use Darkroom::Test qw(wait_for);
use Darkroom::Stripe qw(demo_catalogue shop_conf sandbox);

my $t = Darkroom::Test->new;
my $pg = $t->dir . '/pg';
my $pgctl = $t->top . '/tools/darkroom-pg';

system($pgctl, 'start', $pg, 'shop') == 0 or BAIL_OUT('cannot start Postgres');
chomp(my $db = `$pgctl conninfo $pg shop`);
system($t->top . "/tools/darkroom-migrate '$db' >/dev/null") == 0
    or BAIL_OUT('migrations failed');
END { system($pgctl, 'stop', $pg) if $pg }
$t->{db} = $db;

my $port = $t->port(0);
shop_conf($t, stripe => 'http://127.0.0.1:' . $t->port(1),
    secrets => ['whsec_down_test']);
demo_catalogue($t);
my $sb = sandbox($t, webhook => "http://127.0.0.1:$port/webhooks/stripe",
    retry_base_ms => 1000);
$t->start;

my $r = $t->http(POST => '/api/checkout', {
    headers => { 'Content-Type' => 'application/json' },
    content => encode_json({ email => 'ada@example.com', items => [
        { photo => 'harbour-dawn', product => 'giclee-a3', quantity => 1 } ] }) });
is($r->{status}, 201, 'checkout while the database is up');
my $ref = $r->{json}{order};
my ($sid) = $r->{json}{checkout_url} =~ m{/pay/(cs_[A-Za-z0-9_]+)$};

system($pgctl, 'stop', $pg);

$r = $t->http(POST => '/api/checkout', {
    headers => { 'Content-Type' => 'application/json' },
    content => encode_json({ email => 'bo@example.com', items => [
        { photo => 'harbour-dawn', product => 'giclee-a3', quantity => 1 } ] }) });
is($r->{status}, 503, 'checkout answers 503 with the database down');
ok($r->{headers}{'retry-after'}, 'with Retry-After');

# the customer pays while Postgres is down
$sb->control(POST => "/_sandbox/pay/$sid", { action => 'pay' });

ok(wait_for(sub {
    my ($ev) = grep { ($_->{object_id} // '') eq $sid }
        @{$sb->control(GET => '/_sandbox/events')};
    $ev && grep { $_->{status} == 503 } @{$ev->{deliveries} || []};
}, 10), 'the webhook answered 503, so Stripe will retry');
like($t->error_log, qr/not processed, answering 503 so that Stripe retries/,
    'and says so in the log');

system($pgctl, 'start', $pg, 'shop') == 0 or die;

ok(wait_for(sub {
    my ($ev) = grep { ($_->{object_id} // '') eq $sid }
        @{$sb->control(GET => '/_sandbox/events')};
    $ev && grep { $_->{status} == 200 } @{$ev->{deliveries} || []};
}, 20), "Stripe's retry was accepted once Postgres was back");

is($t->sql_value("SELECT status FROM orders WHERE ref = :'p1'", $ref), 'paid',
    'the order is paid');
is($t->sql_value("SELECT count(*) FROM jobs WHERE kind = 'fulfil_order'"), 1,
    'fulfilment enqueued once');
is($t->sql_value('SELECT count(*) FROM stripe_events'), 1,
    'the event recorded once');

done_testing;
