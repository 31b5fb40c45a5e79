#!/usr/bin/perl
# A full purchase end to end against the local Stripe sandbox: checkout,
# the hosted payment, the signed webhook, the paid order with its items,
# total and address, fulfilment and receipt enqueued once.  Then what
# Stripe's delivery can do: duplicates, reordering, failures, a missed
# webhook recovered by the reconcile job, refunds from the admin API.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use JSON::PP;
use Darkroom::Test qw(wait_for);
use Darkroom::Stripe qw(demo_catalogue shop_conf sandbox);

my $t = Darkroom::Test->new;
my $port = $t->port(0);
shop_conf($t, stripe => 'http://127.0.0.1:' . $t->port(1),
    secrets => ['whsec_sandbox_secret']);
my $sb = sandbox($t, webhook => "http://127.0.0.1:$port/webhooks/stripe");
demo_catalogue($t);
$t->start;

my $admin = { Authorization => 'Bearer admin-token-2' };

sub buy {
    my (@items) = @_;
    my $r = $t->http(POST => '/api/checkout', {
        headers => { 'Content-Type' => 'application/json' },
        content => encode_json({ email => 'ada@example.com', items => \@items }) });
    return $r;
}

sub order { my ($ref) = @_;
    $t->http(GET => "/admin/api/orders/$ref", { headers => $admin })->{json} }

sub jobs_of {
    my ($o, $kind) = @_;
    scalar grep { $_->{kind} eq $kind } @{$o->{jobs}};
}

# --- one purchase, start to finish -------------------------------------------
my $r = buy({ photo => 'harbour-dawn', product => 'giclee-a3', quantity => 2 },
    { photo => 'moor-rain', product => 'digital', quantity => 1 });
is($r->{status}, 201, 'checkout') or diag $r->{content};
my $ref = $r->{json}{order};
my ($sid) = $r->{json}{checkout_url} =~ m{/pay/(cs_[A-Za-z0-9_]+)$};
ok($sid, 'a sandbox payment page');

my $page = HTTP::Tiny->new->get($r->{json}{checkout_url});
like($page->{content}, qr/Harbour at Dawn/, 'the pay page lists the items');
like($page->{content}, qr/105\.00/, 'and the total priced by darkroom');

my $pay = $sb->control(POST => "/_sandbox/pay/$sid", { action => 'pay' });
like($pay->{redirect}, qr{/order\.html\?token=[0-9a-f]{32}}, 'back to the order page');

ok(wait_for(sub { order($ref)->{status} eq 'paid' }, 10), 'order paid by the webhook');
my $o = order($ref);
is($o->{total}, 10500, 'total');
is($o->{paid_amount}, 10500, 'paid amount equals the total');
is($o->{shipping}{address}{country}, 'GB', 'shipping address from Stripe');
ok(length $o->{shipping}{name}, 'shipping name');
is(scalar @{$o->{items}}, 2, 'items');
is(jobs_of($o, 'fulfil_order'), 1, 'fulfilment enqueued once');
is(jobs_of($o, 'email'), 2, 'receipt and delivery email enqueued once each');
is($t->sql_value("SELECT string_agg(j.payload->>'template', ',' ORDER BY j.id)"
    . " FROM jobs j JOIN orders o ON j.payload->>'order_id' = o.id::text"
    . " WHERE j.kind = 'email' AND o.ref = :'p1'", $ref), 'receipt,delivery',
    'the receipt, then the download links');
is($o->{webhooks}[0]{type}, 'checkout.session.completed', 'webhook logged');
is($o->{webhooks}[0]{result}, 'paid', 'with its result');
is_deeply([ map { $_->{to} } @{$o->{events}} ], [qw(pending_payment paid)],
    'events: created, paid');

my ($token) = $pay->{redirect} =~ /token=([0-9a-f]{32})/;
$r = $t->http(GET => "/api/orders/$token");
is($r->{json}{status}, 'paid', 'the customer sees it paid');
is($t->sql_value("SELECT count(*) FROM stripe_events WHERE payload::text"
    . " LIKE '%' || :'p1' || '%'", $token), 0,
    'stored webhook payloads do not hold the status token');

# --- Stripe delivers every event three times, and out of order ----------------
$sb->control(POST => '/_sandbox/config', { duplicate => 3 });
$r = buy({ photo => 'harbour-dawn', product => 'canvas-50', quantity => 1 });
my $ref2 = $r->{json}{order};
($sid) = $r->{json}{checkout_url} =~ m{/pay/(cs_[A-Za-z0-9_]+)$};
$sb->control(POST => "/_sandbox/pay/$sid", { action => 'pay' });
ok(wait_for(sub {
    my ($ev) = grep { ($_->{object_id} // '') eq $sid }
        @{$sb->control(GET => '/_sandbox/events')};
    $ev && 3 == grep { $_->{status} == 200 } @{$ev->{deliveries} || []};
}, 10), 'the completion delivered three times, each answered 200');
ok(wait_for(sub { order($ref2)->{status} eq 'paid' }, 10), 'paid');
$o = order($ref2);
is(jobs_of($o, 'fulfil_order'), 1, 'one fulfilment for three deliveries');
is(scalar(grep { $_->{to} eq 'paid' } @{$o->{events}}), 1, 'one transition');
$sb->control(POST => '/_sandbox/config', { duplicate => 1 });

# reorder: hold events, then deliver newest first (refund before payment)
$sb->control(POST => '/_sandbox/config', { reorder => JSON::PP::true });
$r = buy({ photo => 'moor-rain', product => 'giclee-a3', quantity => 1 });
my $ref3 = $r->{json}{order};
($sid) = $r->{json}{checkout_url} =~ m{/pay/(cs_[A-Za-z0-9_]+)$};
$sb->control(POST => "/_sandbox/pay/$sid", { action => 'pay' });
my $sess = HTTP::Tiny->new->get($sb->url . "/v1/checkout/sessions/$sid",
    { headers => { Authorization => 'Bearer sk_test_darkroom' } });
my $intent = decode_json($sess->{content})->{payment_intent};
my $ref_r = HTTP::Tiny->new->post_form($sb->url . '/v1/refunds',
    { payment_intent => $intent },
    { headers => { Authorization => 'Bearer sk_test_darkroom' } });
is($ref_r->{status}, 200, 'a full refund at Stripe');
$sb->control(POST => '/_sandbox/config', { reorder => JSON::PP::false });
$sb->control(POST => '/_sandbox/flush');
ok(wait_for(sub { order($ref3)->{status} eq 'refunded' }, 10),
    'refund delivered before the completion: refunded');
sleep 1;
$o = order($ref3);
is($o->{status}, 'refunded', 'the late completion does not resurrect it');
is(jobs_of($o, 'fulfil_order'), 0, 'and nothing goes to a lab');

# --- Stripe failing twice on session creation: one session --------------------
$sb->control(POST => '/_sandbox/config',
    { fail_next => { 'POST /v1/checkout/sessions' => 2 } });
my $before = @{$sb->control(GET => '/_sandbox/requests')};
$r = buy({ photo => 'harbour-dawn', product => 'digital', quantity => 1 });
is($r->{status}, 201, 'checkout succeeds after two 500s');
my @all = @{$sb->control(GET => '/_sandbox/requests')};
my @reqs = grep { $_->{path} eq '/v1/checkout/sessions' && $_->{method} eq 'POST' }
    @all[$before .. $#all];
is(scalar @reqs, 3, 'three attempts');
my %keys = map { $_->{headers}{'idempotency-key'} => 1 } @reqs;
is(scalar keys %keys, 1, 'one idempotency key');
is_deeply([ map { $_->{status} } @reqs ], [500, 500, 200],
    'two failures, then the one session');

# --- a webhook that never arrives: the reconcile job asks Stripe --------------
$sb->control(POST => '/_sandbox/config', { webhook_url => 'http://127.0.0.1:9/' });
$r = buy({ photo => 'harbour-dawn', product => 'giclee-a3', quantity => 1 });
my $ref4 = $r->{json}{order};
($sid) = $r->{json}{checkout_url} =~ m{/pay/(cs_[A-Za-z0-9_]+)$};
$sb->control(POST => "/_sandbox/pay/$sid", { action => 'pay' });
sleep 1;
is(order($ref4)->{status}, 'pending_payment', 'webhook lost: still pending');
$t->sql("UPDATE jobs SET run_at = now() WHERE kind = 'checkout_reconcile'"
    . " AND payload->>'order_id' = (SELECT id::text FROM orders WHERE ref = :'p1')",
    $ref4);
ok(wait_for(sub { order($ref4)->{status} eq 'paid' }, 10),
    'the reconcile job found the payment');
$o = order($ref4);
like($o->{webhooks}[0]{id}, qr/^reconcile:/, 'recorded as a reconciliation');
is(jobs_of($o, 'fulfil_order'), 1, 'fulfilment enqueued once');
$sb->control(POST => '/_sandbox/config',
    { webhook_url => "http://127.0.0.1:$port/webhooks/stripe" });
# the late real webhook changes nothing
$sb->control(POST => "/_sandbox/resend/" . $sb->control(GET => '/_sandbox/events')->[-1]{id});
sleep 1;
is(jobs_of(order($ref4), 'fulfil_order'), 1, 'a late real webhook adds nothing');

# an unpaid open session: the job comes back after the session expires
$r = buy({ photo => 'moor-rain', product => 'digital', quantity => 1 });
my $ref5 = $r->{json}{order};
$t->sql("UPDATE jobs SET run_at = now() WHERE kind = 'checkout_reconcile'"
    . " AND payload->>'order_id' = (SELECT id::text FROM orders WHERE ref = :'p1')",
    $ref5);
ok(wait_for(sub {
    $t->sql_value("SELECT run_at > now() + interval '30 minutes' AND attempts = 0"
        . " FROM jobs WHERE kind = 'checkout_reconcile' AND payload->>'order_id'"
        . " = (SELECT id::text FROM orders WHERE ref = :'p1')", $ref5) eq 't'
}, 10), 'open session: asked again after it expires, not counted as a failure');

# --- refunds from the admin API --------------------------------------------------
$r = $t->http(POST => "/admin/api/orders/$ref/refund", { headers => $admin,
    content => encode_json({ amount => 1500 }) });
is($r->{status}, 202, 'partial refund requested') or diag $r->{content};
like($r->{json}{refund}, qr/^re_/, 'Stripe refund id');
ok(wait_for(sub { order($ref)->{amount_refunded} == 1500 }, 10),
    'charge.refunded webhook recorded the partial refund');
is(order($ref)->{status}, 'paid', 'a partial refund leaves it paid');
$r = $t->http(POST => "/admin/api/orders/$ref/refund", { headers => $admin,
    content => encode_json({ amount => 999999 }) });
is($r->{status}, 400, 'refund above what is left refused');
is($r->{json}{error}{code}, 'invalid_amount', 'invalid_amount');
$r = $t->http(POST => "/admin/api/orders/$ref/refund", { headers => $admin });
is($r->{status}, 202, 'refund the rest');
ok(wait_for(sub { order($ref)->{status} eq 'refunded' }, 10), 'fully refunded');
is(order($ref)->{amount_refunded}, 10500, 'amount refunded is the total');
$r = $t->http(POST => "/admin/api/orders/$ref/refund", { headers => $admin });
is($r->{status}, 409, 'nothing left to refund');

done_testing;
