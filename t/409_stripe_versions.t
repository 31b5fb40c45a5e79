#!/usr/bin/perl
# Stripe API versions: every call darkroom makes names the version it is
# written for (Stripe-Version), the shipping address is read in the shape
# of every supported version, an event on a version darkroom does not read
# is recorded and flagged rather than misread, and the phone number
# Checkout collected is kept and shown to the admin.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use JSON::PP;
use Darkroom::Test qw(wait_for);
use Darkroom::Stripe qw(event session charge demo_catalogue shop_conf
    fake_api webhook checkout_order API_VERSION);

my $t = Darkroom::Test->new;
my $stripe = fake_api($t);
my $secret = 'whsec_versions';
shop_conf($t, stripe => $stripe->url, secrets => [$secret]);
demo_catalogue($t);
$t->start;

sub deliver { webhook($t, $secret, @_) }
sub order_row {
    my ($o) = @_;
    # to_jsonb: runs (and fails) on a schema without the new columns too
    my ($r) = $t->sql("SELECT status, shipping_name, shipping_address->>'city',"
        . " to_jsonb(o)->>'shipping_phone' FROM orders o WHERE id = :'p1'",
        $o->{id});
    return $r;
}
sub admin {
    my ($method, $path, $body) = @_;
    return $t->http($method => "/admin/api/$path", { headers => {
        Authorization => 'Bearer admin-token-1',
        'Content-Type' => 'application/json' },
        defined $body ? (content => encode_json($body)) : () });
}
sub paid_event {
    my ($o, $version, %s) = @_;
    return event('checkout.session.completed', session(id => $o->{session},
        order_id => $o->{id}, amount => $o->{total}, %s),
        api_version => $version);
}

is(API_VERSION, '2024-06-20', 'the pinned version the tests speak');

# --- Stripe-Version on every call -------------------------------------------
my $o = checkout_order($t, 1);
my @calls = $stripe->requests;
is(scalar @calls, 1, 'checkout called Stripe');
is($calls[-1]{headers}{'stripe-version'}, API_VERSION,
    'the Checkout Session create names Stripe-Version');

my $r = deliver(paid_event($o, '2024-06-20', phone => '+441632960001'));
is($r->{json}{result}, 'paid', '2024-06-20 (shipping_details): paid');
is_deeply(order_row($o), ['paid', 'Ada Buyer', 'Whitby', '+441632960001'],
    'address and phone from shipping_details and customer_details');

$r = admin(POST => "orders/$o->{ref}/refund", { amount => 1000 });
is($r->{status}, 202, 'an admin refund') or diag $r->{content};
my ($refund) = grep { $_->{path} eq '/v1/refunds' } $stripe->requests;
is($refund->{headers}{'stripe-version'}, API_VERSION,
    'the refund create names Stripe-Version');

# the reconcile job asks Stripe for the session
my $o2 = checkout_order($t, 1);
$stripe->set(sessions => { $o2->{session} => session(id => $o2->{session},
    order_id => $o2->{id}, amount => $o2->{total}) });
$t->sql("UPDATE jobs SET run_at = now() WHERE kind = 'checkout_reconcile'"
    . " AND payload->>'order_id' = :'p1'", $o2->{id});
ok(wait_for(sub { order_row($o2)->[0] eq 'paid' }, 20),
    'the reconcile job paid the order');
my ($get) = grep { $_->{method} eq 'GET' } $stripe->requests;
is($get->{headers}{'stripe-version'}, API_VERSION,
    'the session GET names Stripe-Version');
is($t->sql_value("SELECT to_jsonb(s)->>'api_version' FROM stripe_events s WHERE id LIKE"
    . " 'reconcile:%' AND order_id = :'p1'", $o2->{id}), API_VERSION,
    'the reconciled event is recorded in the pinned version');

# --- the shipping address in each supported version's shape -----------------
my $o3 = checkout_order($t, 1);
$r = deliver(paid_event($o3, '2020-08-27', shape => 'shipping'));
is($r->{json}{result}, 'paid', '2020-08-27 (shipping): paid');
is_deeply([ @{order_row($o3)}[0 .. 2] ], ['paid', 'Ada Buyer', 'Whitby'],
    'the address read from shipping');

my $o4 = checkout_order($t, 1);
$r = deliver(paid_event($o4, '2025-03-31.basil', shape => 'collected_information'));
is($r->{json}{result}, 'paid', '2025-03-31.basil (collected_information): paid');
is_deeply([ @{order_row($o4)}[0 .. 2] ], ['paid', 'Ada Buyer', 'Whitby'],
    'the address read from collected_information');

# --- versions darkroom does not read ------------------------------------------
for my $v ('2019-12-03', '2099-01-01.zinnia', undef) {
    my $name = $v // 'no api_version';
    my $ox = checkout_order($t, 1);
    my $id = 'evt_version_' . ($v // 'none') =~ s/[^A-Za-z0-9]/_/gr;
    $r = deliver(event('checkout.session.completed', session(id => $ox->{session},
        order_id => $ox->{id}, amount => $ox->{total}), id => $id,
        api_version => $v));
    is($r->{status}, 200, "$name: answered 2xx, not retried for days");
    like($r->{json}{result}, qr/^unprocessable: API version/, "$name: flagged");
    is(order_row($ox)->[0], 'pending_payment', "$name: the order is not misread");
    my ($st) = $t->sql("SELECT to_jsonb(s)->>'state', to_jsonb(s)->>'reason'"
        . " FROM stripe_events s WHERE id = :'p1'", $id);
    is($st->[0], 'unprocessable', "$name: recorded as unprocessable");
    like($st->[1], qr/configure the endpoint with 2024-06-20/,
        "$name: the reason says which version to configure");
    is($t->sql_value("SELECT count(*) FROM jobs WHERE payload->>'template' ="
        . " 'shop_alert' AND payload->>'stripe_event' = :'p1'", $id), 1,
        "$name: the shop is alerted");
}

# --- the phone in the admin's order ---------------------------------------------
$r = admin(GET => "orders/$o->{ref}");
is($r->{json}{phone}, '+441632960001', 'the admin order shows the phone');
is($r->{json}{shipping}{phone}, '+441632960001', 'with the shipping details');
my $o5 = checkout_order($t, 1);
deliver(paid_event($o5, '2024-06-20'));
$r = admin(GET => "orders/$o5->{ref}");
ok(exists $r->{json}{phone} && !defined $r->{json}{phone},
    'no phone collected: null');

done_testing;
