#!/usr/bin/perl
# The Stripe contract (t/contract/stripe/, written from Stripe's API
# reference for the pinned version 2024-06-20): every request darkroom
# sends to the sandbox, and every event the sandbox emits, must match it.
# A field invented on either side, or one of another API version, fails.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use JSON::PP;
use Darkroom::Test qw(wait_for);
use Darkroom::Contract qw(contract_ok contract_errors);
use Darkroom::Stripe qw(demo_catalogue shop_conf sandbox form_structure
    API_VERSION);

my $t = Darkroom::Test->new;
my $port = $t->port(0);
shop_conf($t, stripe => 'http://127.0.0.1:' . $t->port(1),
    secrets => ['whsec_contract']);
my $sb = sandbox($t, webhook => "http://127.0.0.1:$port/webhooks/stripe");
demo_catalogue($t);
$t->start;

my $admin = { Authorization => 'Bearer admin-token-1',
              'Content-Type' => 'application/json' };
sub buy {
    my $r = $t->http(POST => '/api/checkout', {
        headers => { 'Content-Type' => 'application/json' },
        content => encode_json({ email => 'ada@example.com', items => [@_] }) });
    die "checkout: $r->{content}" unless $r->{status} == 201;
    my ($sid) = $r->{json}{checkout_url} =~ m{/pay/(cs_[A-Za-z0-9_]+)$};
    return ($r->{json}{order}, $sid);
}
sub status {
    $t->http(GET => "/admin/api/orders/$_[0]", { headers => $admin })
        ->{json}{status};
}

# a purchase, paid, refunded in two steps
my ($ref, $sid) = buy({ photo => 'harbour-dawn', product => 'giclee-a3',
    quantity => 2 }, { photo => 'moor-rain', product => 'digital', quantity => 1 });
$sb->control(POST => "/_sandbox/pay/$sid", { action => 'pay' });
ok(wait_for(sub { status($ref) eq 'paid' }, 10), 'paid through the webhook');
for my $amount (1000, undef) {
    my $r = $t->http(POST => "/admin/api/orders/$ref/refund", { headers => $admin,
        content => encode_json({ defined $amount ? (amount => $amount) : () }) });
    ok($r->{status} == 202 || $r->{status} == 200, 'a refund') or diag $r->{content};
    ok(wait_for(sub {
        $t->sql_value("SELECT count(*) FROM stripe_events WHERE type ="
            . " 'charge.refunded'") >= (defined $amount ? 1 : 2) }, 10),
        'charge.refunded received');
}
ok(wait_for(sub { status($ref) eq 'refunded' }, 10), 'refunded');

# expired, paid later, failed later
my ($ref2, $sid2) = buy({ photo => 'moor-rain', product => 'giclee-a3', quantity => 1 });
# (the test's own call, told apart by its user agent)
my $r = HTTP::Tiny->new(agent => 'contract-test')->post(
    $sb->url . "/v1/checkout/sessions/$sid2/expire",
    { headers => { Authorization => 'Bearer sk_test_darkroom' } });
is($r->{status}, 200, 'session expired at the sandbox');
ok(wait_for(sub { status($ref2) eq 'expired' }, 10), 'expired through the webhook');
my ($ref3, $sid3) = buy({ photo => 'moor-rain', product => 'digital', quantity => 1 });
$sb->control(POST => "/_sandbox/pay/$sid3", { action => 'later' });
ok(wait_for(sub { status($ref3) eq 'paid' }, 15), 'paid later');
my ($ref4, $sid4) = buy({ photo => 'moor-rain', product => 'digital', quantity => 2 });
$sb->control(POST => "/_sandbox/pay/$sid4", { action => 'later', outcome => 'failed' });
ok(wait_for(sub { status($ref4) eq 'cancelled' }, 15), 'cancelled when it failed');

# --- every request darkroom sent ---------------------------------------------------
my $reqs = $sb->control(GET => '/_sandbox/requests');
my %n;
for my $q (grep { ($_->{headers}{'user-agent'} // '') ne 'contract-test' }
           @$reqs)
{
    my $what = "$q->{method} $q->{path}";
    is($q->{headers}{'stripe-version'}, API_VERSION, "$what: Stripe-Version");
    if ($q->{method} eq 'POST' && $q->{path} eq '/v1/checkout/sessions') {
        contract_ok('stripe', 'checkout_session_create',
            form_structure($q->{body}), $what);
        $n{create}++;
    } elsif ($q->{method} eq 'POST' && $q->{path} eq '/v1/refunds') {
        contract_ok('stripe', 'refund_create', form_structure($q->{body}), $what);
        $n{refund}++;
    }
}
is($n{create}, 4, 'four Checkout Sessions created');
is($n{refund}, 2, 'two refunds');

# --- every event the sandbox emitted --------------------------------------------
my %contract = (
    'checkout.session.completed' => 'checkout_session_event',
    'checkout.session.expired' => 'checkout_session_event',
    'checkout.session.async_payment_succeeded' => 'checkout_session_event',
    'checkout.session.async_payment_failed' => 'checkout_session_event',
    'charge.refunded' => 'charge_refunded_event',
);
ok(wait_for(sub { !grep { $_->{pending} } @{$sb->control(GET => '/_sandbox/events')} }, 15),
    'every event delivered');
my $events = $sb->control(GET => '/_sandbox/events?full=1');
my %seen;
for my $e (@$events) {
    my $c = $contract{$e->{type}} or do { fail("unexpected $e->{type}"); next };
    contract_ok('stripe', $c, $e->{event}, "$e->{type} $e->{id}");
    ok($e->{delivered}, "$e->{type} $e->{id}: darkroom answered 2xx");
    $seen{$e->{type}}++;
}
is_deeply([ sort keys %seen ], [ sort keys %contract ], 'every event type seen');
is($t->sql_value("SELECT count(*) FROM stripe_events WHERE state <> 'processed'"),
    0, 'and darkroom applied every one');

# --- the contract is not vacuous ----------------------------------------------------
my ($paid) = grep { $_->{type} eq 'checkout.session.completed' } @$events;
my $ev = JSON::PP->new->decode(JSON::PP->new->encode($paid->{event}));
$ev->{data}{object}{collected_information} = { shipping_details => undef };
ok(scalar contract_errors('stripe', 'checkout_session_event', $ev),
    'a 2025 field in a 2024-06-20 session fails');
$ev = JSON::PP->new->decode(JSON::PP->new->encode($paid->{event}));
delete $ev->{data}{object}{shipping_details};
ok(scalar contract_errors('stripe', 'checkout_session_event', $ev),
    'a session without its 2024-06-20 shipping_details fails');
$ev->{api_version} = '2025-03-31.basil';
ok(scalar contract_errors('stripe', 'checkout_session_event', $ev),
    'another api_version fails');
my ($create) = grep { $_->{path} eq '/v1/checkout/sessions' } @$reqs;
my $f = form_structure($create->{body});
$f->{line_items}[0]{price_data}{unit_amount} = '0';
ok(scalar contract_errors('stripe', 'checkout_session_create', $f),
    'a zero unit_amount fails');
$f = form_structure($create->{body} . '&shipping_countries=GB');
ok(scalar contract_errors('stripe', 'checkout_session_create', $f),
    'an invented parameter fails');

done_testing;
