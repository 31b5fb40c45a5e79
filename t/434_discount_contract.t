#!/usr/bin/perl
# Coupons in the Stripe sandbox, as Stripe has them: POST /v1/coupons is
# validated (amount_off with currency or percent_off, duration, limits,
# ids, idempotency), a session takes one coupon as discounts[0][coupon]
# and computes amount_total and total_details.amount_discount from it;
# the session's "discounts" field exists only from 2025-01-27.acacia on.
# Then darkroom's discounted checkout against the contract: the coupon it
# asks for (t/contract/stripe/coupon_create.json), the session and the
# events of the pinned version.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use JSON::PP;
use HTTP::Tiny;
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

my $ua = HTTP::Tiny->new(agent => 'contract-test');

sub stripe {
    my ($method, $path, $form, %h) = @_;
    my $r = $ua->request($method, $sb->url . $path, {
        headers => { Authorization => 'Bearer sk_test_darkroom',
            'Content-Type' => 'application/x-www-form-urlencoded', %h },
        defined $form ? (content => $ua->www_form_urlencode($form)) : () });
    return { status => $r->{status}, headers => $r->{headers},
             json => eval { decode_json($r->{content}) } };
}

sub session_form {
    my (%extra) = @_;
    return { mode => 'payment', success_url => 'https://shop.example/ok',
        'line_items[0][price_data][currency]' => 'gbp',
        'line_items[0][price_data][unit_amount]' => 4500,
        'line_items[0][price_data][product_data][name]' => 'Print',
        'line_items[0][quantity]' => 2,
        'line_items[1][price_data][currency]' => 'gbp',
        'line_items[1][price_data][unit_amount]' => 1500,
        'line_items[1][price_data][product_data][name]' => 'Download',
        'line_items[1][quantity]' => 1, %extra };
}

# --- POST /v1/coupons: what Stripe refuses -----------------------------------
my @bad = (
    [{}, undef, 'parameter_missing', 'neither amount_off nor percent_off'],
    [{ amount_off => 500 }, 'currency', 'parameter_missing',
        'amount_off without currency'],
    [{ amount_off => 500, currency => 'gbp', percent_off => 10 },
        'percent_off', undef, 'both'],
    [{ amount_off => 0, currency => 'gbp' }, 'amount_off',
        'parameter_invalid_integer', 'zero'],
    [{ amount_off => 'five', currency => 'gbp' }, 'amount_off',
        'parameter_invalid_integer', 'not a number'],
    [{ amount_off => 500, currency => 'xxx' }, 'currency', undef,
        'unknown currency'],
    [{ percent_off => 101 }, 'percent_off', undef, 'over 100%'],
    [{ percent_off => 10, duration => 'weekly' }, 'duration', undef,
        'unknown duration'],
    [{ percent_off => 10, duration => 'repeating' }, 'duration_in_months',
        'parameter_missing', 'repeating without months'],
    [{ percent_off => 10, max_redemptions => 0 }, 'max_redemptions',
        'parameter_invalid_integer', 'no redemptions'],
    [{ percent_off => 10, name => 'x' x 41 }, 'name', undef, 'long name'],
    [{ percent_off => 10, colour => 'red' }, 'colour', undef,
        'unknown parameter'],
);
for my $b (@bad) {
    my ($form, $param, $code, $what) = @$b;
    my $r = stripe(POST => '/v1/coupons', $form);
    is($r->{status}, 400, "coupon refused: $what");
    is($r->{json}{error}{type}, 'invalid_request_error', '  invalid_request_error');
    is($r->{json}{error}{param}, $param, '  naming ' . ($param // 'no param'));
    is($r->{json}{error}{code}, $code, '  code ' . ($code // 'none'))
        if defined $code;
}

# --- a coupon, its id, its idempotency ----------------------------------------
my $r = stripe(POST => '/v1/coupons', { id => 'TEN-OFF', amount_off => 1000,
    currency => 'gbp', duration => 'once', max_redemptions => 1,
    name => 'TENOFF', 'metadata[order_id]' => 7 },
    'Idempotency-Key' => 'coupon-key-1');
is($r->{status}, 200, 'a coupon');
is_deeply([ @{$r->{json}}{qw(id object amount_off currency duration
    max_redemptions name times_redeemed)} ],
    ['TEN-OFF', 'coupon', 1000, 'gbp', 'once', 1, 'TENOFF', 0], 'as Stripe has it');
ok($r->{json}{valid}, 'valid');
$r = stripe(POST => '/v1/coupons', { id => 'TEN-OFF', amount_off => 1000,
    currency => 'gbp', duration => 'once', max_redemptions => 1,
    name => 'TENOFF', 'metadata[order_id]' => 7 },
    'Idempotency-Key' => 'coupon-key-1');
is($r->{status}, 200, 'the same request again: replayed');
is($r->{headers}{'idempotent-replayed'}, 'true', 'Idempotent-Replayed');
$r = stripe(POST => '/v1/coupons', { id => 'TEN-OFF', amount_off => 900,
    currency => 'gbp' }, 'Idempotency-Key' => 'coupon-key-1');
is($r->{json}{error}{type}, 'idempotency_error', 'the key with other params');
$r = stripe(POST => '/v1/coupons', { id => 'TEN-OFF', amount_off => 1000,
    currency => 'gbp' });
is($r->{json}{error}{code}, 'resource_already_exists', 'the id is taken');
is(stripe(GET => '/v1/coupons/TEN-OFF')->{json}{amount_off}, 1000,
    'GET /v1/coupons/<id>');
is(stripe(GET => '/v1/coupons/NONE')->{status}, 404, 'an unknown coupon: 404');
stripe(POST => '/v1/coupons', { id => 'HALF', percent_off => 50 });
stripe(POST => '/v1/coupons', { id => 'DOLLARS', amount_off => 100,
    currency => 'usd' });
stripe(POST => '/v1/coupons', { id => 'HUGE', amount_off => 99999999,
    currency => 'gbp' });

# --- sessions with a coupon -----------------------------------------------------
$r = stripe(POST => '/v1/checkout/sessions',
    session_form('discounts[0][coupon]' => 'TEN-OFF'));
is($r->{status}, 200, 'a session with the coupon');
is($r->{json}{amount_subtotal}, 10500, 'amount_subtotal: the lines');
is($r->{json}{total_details}{amount_discount}, 1000, 'amount_discount');
is($r->{json}{amount_total}, 9500, 'amount_total = subtotal - discount');
ok(!exists $r->{json}{discounts}, 'no "discounts" field in 2024-06-20');
my $sid = $r->{json}{id};
my $li = stripe(GET => "/v1/checkout/sessions/$sid/line_items")->{json}{data};
is_deeply([ map { $_->{amount_discount} } @$li ], [857, 143],
    'the line items share it in proportion');
is_deeply([ map { $_->{amount_total} } @$li ], [8143, 1357],
    'their totals after it');
$r = stripe(GET => "/v1/checkout/sessions/$sid", undef,
    'Stripe-Version' => '2025-03-31.basil');
is_deeply($r->{json}{discounts}, [{ coupon => 'TEN-OFF', promotion_code => undef }],
    '"discounts" in 2025-03-31.basil');

$r = stripe(POST => '/v1/checkout/sessions',
    session_form('discounts[0][coupon]' => 'HALF'));
is($r->{json}{amount_total}, 5250, 'a percent_off coupon: 50% of 105.00');
$r = stripe(POST => '/v1/checkout/sessions',
    session_form('discounts[0][coupon]' => 'HUGE'));
is($r->{json}{total_details}{amount_discount}, 10500,
    'amount_off above the subtotal: the subtotal');
is($r->{json}{amount_total}, 0, 'nothing left');

for my $b (
    [session_form('discounts[0][coupon]' => 'NONE'),
        404, 'discounts[0][coupon]', 'an unknown coupon'],
    [session_form('discounts[0][coupon]' => 'DOLLARS'),
        400, 'discounts[0][coupon]', 'a coupon in another currency'],
    [session_form('discounts[0][coupon]' => 'HALF',
        'discounts[1][coupon]' => 'TEN-OFF'), 400, 'discounts', 'two discounts'],
    [session_form('discounts[0][coupon]' => 'HALF',
        allow_promotion_codes => 'true'), 400, 'allow_promotion_codes',
        'with allow_promotion_codes'],
    [session_form('discounts[0][promotion_code]' => 'promo_1'), 404,
        'discounts[0][promotion_code]', 'an unknown promotion code'],
) {
    my ($form, $status, $param, $what) = @$b;
    $r = stripe(POST => '/v1/checkout/sessions', $form);
    is($r->{status}, $status, "session refused: $what");
    is($r->{json}{error}{param}, $param, "  naming $param");
}

# a coupon with one redemption, redeemed: no longer valid
$sid = stripe(POST => '/v1/checkout/sessions',
    session_form('discounts[0][coupon]' => 'TEN-OFF'))->{json}{id};
$sb->control(POST => "/_sandbox/pay/$sid", { action => 'pay' });
$r = stripe(GET => '/v1/coupons/TEN-OFF');
is($r->{json}{times_redeemed}, 1, 'redeemed once');
ok(!$r->{json}{valid}, 'and no longer valid');
$r = stripe(POST => '/v1/checkout/sessions',
    session_form('discounts[0][coupon]' => 'TEN-OFF'));
is($r->{json}{error}{code}, 'coupon_expired', 'a session cannot take it');

# --- darkroom's discounted checkout against the contract ----------------------
my $admin = { Authorization => 'Bearer admin-token-1',
              'Content-Type' => 'application/json' };
is($t->http(POST => '/admin/api/discounts', { headers => $admin,
    content => encode_json({ code => 'CONTRACT', kind => 'percent',
        percent_off => 20 }) })->{status}, 200, 'a code');
$r = $t->http(POST => '/api/checkout', {
    headers => { 'Content-Type' => 'application/json' },
    content => encode_json({ email => 'ada@example.com',
        discount_code => 'contract', items => [
            { photo => 'harbour-dawn', product => 'giclee-a3', quantity => 2 },
            { photo => 'moor-rain', product => 'digital', quantity => 1 } ] }) });
is($r->{status}, 201, 'a discounted checkout') or diag $r->{content};
my $ref = $r->{json}{order};
($sid) = $r->{json}{checkout_url} =~ m{/pay/(cs_\w+)$};
$sb->control(POST => "/_sandbox/pay/$sid", { action => 'pay' });
ok(wait_for(sub { $t->sql_value("SELECT status FROM orders WHERE ref = :'p1'",
    $ref) eq 'paid' }, 10), 'paid, exactly: not under review');
is($t->sql_value("SELECT paid_amount || '=' || total FROM orders"
    . " WHERE ref = :'p1'", $ref), '8400=8400', 'paid 84.00, the total');

my %n;
for my $q (grep { ($_->{headers}{'user-agent'} // '') ne 'contract-test' }
           @{$sb->control(GET => '/_sandbox/requests')})
{
    my $what = "$q->{method} $q->{path}";
    is($q->{headers}{'stripe-version'}, API_VERSION, "$what: Stripe-Version");
    if ($q->{method} eq 'POST' && $q->{path} eq '/v1/coupons') {
        contract_ok('stripe', 'coupon_create', form_structure($q->{body}),
            $what);
        $n{coupon}++;
    } elsif ($q->{method} eq 'POST' && $q->{path} eq '/v1/checkout/sessions') {
        contract_ok('stripe', 'checkout_session_create',
            form_structure($q->{body}), $what);
        $n{session}++;
    }
}
is_deeply(\%n, { coupon => 1, session => 1 }, 'one coupon, one session');
ok(wait_for(sub { !grep { $_->{pending} }
    @{$sb->control(GET => '/_sandbox/events')} }, 15), 'events delivered');
my ($ev) = grep { $_->{type} eq 'checkout.session.completed'
    && $_->{event}{data}{object}{id} eq $sid }
    @{$sb->control(GET => '/_sandbox/events?full=1')};
contract_ok('stripe', 'checkout_session_event', $ev->{event},
    'the discounted session completed');
is($ev->{event}{data}{object}{total_details}{amount_discount}, 2100,
    'with its discount');

# the contract is not vacuous
my ($c) = grep { $_->{path} eq '/v1/coupons'
    && ($_->{headers}{'user-agent'} // '') ne 'contract-test' }
    @{$sb->control(GET => '/_sandbox/requests')};
my $f = form_structure($c->{body});
$f->{duration} = 'forever';
ok(scalar contract_errors('stripe', 'coupon_create', $f),
    'a coupon for ever fails');
$f = form_structure($c->{body} . '&colour=red');
ok(scalar contract_errors('stripe', 'coupon_create', $f),
    'an invented parameter fails');

done_testing;
