#!/usr/bin/perl
# The admin API of discount codes: create, update (a field left out keeps
# its value), list, get, deactivate, the uses of a code; bad input a 400
# JSON naming the field that changes nothing; the token is required.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use JSON::PP;
use Darkroom::Test;
use Darkroom::Stripe qw(demo_catalogue shop_conf sandbox);

my $t = Darkroom::Test->new;
my $port = $t->port(0);
shop_conf($t, stripe => 'http://127.0.0.1:' . $t->port(1));
my $sb = sandbox($t, webhook => "http://127.0.0.1:$port/webhooks/stripe");
demo_catalogue($t);
$t->start;

my $admin = { Authorization => 'Bearer admin-token-1',
              'Content-Type' => 'application/json' };

sub api {
    my ($method, $path, $body) = @_;
    return $t->http($method => "/admin/api/$path", { headers => $admin,
        defined $body ? (content => ref $body ? encode_json($body) : $body)
                      : () });
}

sub snapshot {
    return join "\n", map { join '|', @$_ } $t->sql("SELECT d::text"
        . " FROM discount_codes d ORDER BY code");
}

# --- create ------------------------------------------------------------------
my $r = api(POST => 'discounts', { code => 'summer-26', kind => 'percent',
    percent_off => 12.5, min_spend => { GBP => 3000, USD => 4000 },
    starts_at => '2026-06-01T00:00:00Z', ends_at => '2099-09-01T00:00:00Z',
    max_redemptions => 100, max_per_email => 1, kinds => ['print'],
    description => 'Summer prints' });
is($r->{status}, 200, 'a percent code created') or diag $r->{content};
my $d = $r->{json};
is($d->{code}, 'SUMMER-26', 'the code is stored upper case');
is($d->{percent_off}, 12.5, 'percent_off');
is_deeply($d->{min_spend}, { GBP => 3000, USD => 4000 }, 'min_spend');
is_deeply($d->{kinds}, ['print'], 'kinds');
is($d->{products}, undef, 'no product restriction');
is($d->{max_redemptions}, 100, 'max_redemptions');
is($d->{remaining}, 100, 'all its uses remain');
ok($d->{active}, 'active');

$r = api(PUT => 'discounts/FIVER', { kind => 'fixed',
    amount_off => { GBP => 500, USD => 600 }, products => ['giclee-a3'] });
is($r->{status}, 200, 'a fixed code created with PUT at its path')
    or diag $r->{content};
is_deeply($r->{json}{amount_off}, { GBP => 500, USD => 600 }, 'amount_off');
is_deeply($r->{json}{products}, ['giclee-a3'], 'products');
is($r->{json}{percent_off}, undef, 'no percent_off');

# --- update: what is sent changes, the rest stays ----------------------------
$r = api(POST => 'discounts/summer-26', { max_redemptions => undef,
    ends_at => undef });
is($r->{status}, 200, 'updated') or diag $r->{content};
is($r->{json}{max_redemptions}, undef, 'the limit cleared');
is($r->{json}{ends_at}, undef, 'the end cleared');
is($r->{json}{percent_off}, 12.5, 'the rest kept');
is($r->{json}{remaining}, undef, 'no limit: remaining null');

$r = api(POST => 'discounts/fiver', { kind => 'percent', percent_off => 5,
    amount_off => undef });
is($r->{status}, 200, 'fixed to percent');
is($r->{json}{kind}, 'percent', 'now a percentage');
is_deeply($r->{json}{amount_off}, {}, 'without amounts');
$r = api(POST => 'discounts/fiver', { kind => 'fixed',
    amount_off => { GBP => 500 } });
is($r->{status}, 200, 'and back to fixed');
is($r->{json}{percent_off}, undef, 'percent_off gone');

# --- list and get --------------------------------------------------------------
$r = api(GET => 'discounts');
is($r->{status}, 200, 'list');
is_deeply([ map { $_->{code} } @{$r->{json}{discounts}} ],
    [qw(FIVER SUMMER-26)], 'both codes, by code');
$r = api(GET => 'discounts/Summer-26');
is($r->{json}{description}, 'Summer prints', 'get one, any case');
is(api(GET => 'discounts/NOPE')->{status}, 404, 'an unknown code: 404');
is(api(GET => 'discounts/NOPE/redemptions')->{status}, 404,
    'its uses: 404');
is(api(POST => 'discounts/NOPE/deactivate')->{status}, 404,
    'deactivating it: 404');
is(api(GET => 'discounts/FIVER/whatever')->{status}, 404, 'no such path');
is($t->http(GET => '/admin/api/discounts')->{status}, 401,
    'no token: 401');

# --- bad input: 400 naming the field, nothing changed --------------------------
my @bad = (
    ['not json', qr/JSON object/, 'invalid_json'],
    ['[1, 2]', qr/JSON object/, 'invalid_json'],
    [{ code => 'X Y', kind => 'percent', percent_off => 5 }, qr/"code"/],
    [{ code => 'NEW' }, qr/"kind" is required/],
    [{ code => 'NEW', kind => 'half' }, qr/"kind"/],
    [{ code => 'NEW', kind => 'percent' }, qr/"percent_off"/],
    [{ code => 'NEW', kind => 'percent', percent_off => 0 }, qr/"percent_off"/],
    [{ code => 'NEW', kind => 'percent', percent_off => 101 }, qr/"percent_off"/],
    [{ code => 'NEW', kind => 'percent', percent_off => '5' }, qr/"percent_off"/],
    [{ code => 'NEW', kind => 'percent', percent_off => 5,
       amount_off => { GBP => 1 } }, qr/no "amount_off"/],
    [{ code => 'NEW', kind => 'fixed' }, qr/"amount_off"/],
    [{ code => 'NEW', kind => 'fixed', amount_off => { GBP => 0 } },
        qr/"amount_off"/],
    [{ code => 'NEW', kind => 'fixed', amount_off => { gbp => 100 } },
        qr/"amount_off"/],
    [{ code => 'NEW', kind => 'fixed', amount_off => { GBP => 1.5 } },
        qr/"amount_off"/],
    [{ code => 'NEW', kind => 'fixed', amount_off => [500] }, qr/"amount_off"/],
    [{ code => 'NEW', kind => 'fixed', amount_off => { GBP => 100 },
       percent_off => 5 }, qr/no "percent_off"/],
    [{ code => 'NEW', kind => 'percent', percent_off => 5,
       min_spend => { GBP => -1 } }, qr/"min_spend"/],
    [{ code => 'NEW', kind => 'percent', percent_off => 5,
       starts_at => 'tomorrow' }, qr/"starts_at"/],
    [{ code => 'NEW', kind => 'percent', percent_off => 5,
       ends_at => '2026-13-45' }, qr/"ends_at"/],
    [{ code => 'NEW', kind => 'percent', percent_off => 5,
       starts_at => '2026-02-01', ends_at => '2026-01-01' },
        qr/"ends_at" must be after "starts_at"/],
    [{ code => 'NEW', kind => 'percent', percent_off => 5,
       max_redemptions => 0 }, qr/"max_redemptions"/],
    [{ code => 'NEW', kind => 'percent', percent_off => 5,
       max_per_email => 'two' }, qr/"max_per_email"/],
    [{ code => 'NEW', kind => 'percent', percent_off => 5,
       products => ['no-such'] }, qr/"products": there is no product "no-such"/],
    [{ code => 'NEW', kind => 'percent', percent_off => 5,
       products => [] }, qr/"products"/],
    [{ code => 'NEW', kind => 'percent', percent_off => 5,
       kinds => ['poster'] }, qr/"kinds"/],
    [{ code => 'NEW', kind => 'percent', percent_off => 5,
       active => 'yes' }, qr/"active"/],
    [{ code => 'NEW', kind => 'percent', percent_off => 5,
       description => 'x' x 501 }, qr/"description"/],
    [{ code => 'NEW', kind => 'percent', percent_off => 5, colour => 'red' },
        qr/Unknown field "colour"/],
);
my $before = snapshot();
for my $b (@bad) {
    my ($body, $msg, $code) = @$b;
    my $what = ref $body ? encode_json($body) : $body;
    $r = api(POST => 'discounts', $body);
    is($r->{status}, 400, "400: $what");
    is($r->{json}{error}{code}, $code // 'invalid_discount', '  its code');
    like($r->{json}{error}{message} // '', $msg, '  names the field');
}
# an update that is wrong changes nothing either
$r = api(POST => 'discounts/FIVER', { amount_off => { GBP => 300 },
    max_per_email => -1 });
is($r->{status}, 400, 'a bad update: 400');
$r = api(POST => 'discounts/SUMMER-26', { code => 'OTHER' });
is($r->{status}, 400, 'a body naming another code than the path: 400');
is(snapshot(), $before, 'nothing changed by any of them');

# --- uses, and deactivating --------------------------------------------------
$r = $t->http(POST => '/api/checkout', {
    headers => { 'Content-Type' => 'application/json' },
    content => encode_json({ email => 'ada@example.com',
        discount_code => 'fiver', items => [{ photo => 'harbour-dawn',
            product => 'giclee-a3', quantity => 1 }] }) });
is($r->{status}, 201, 'a checkout with FIVER') or diag $r->{content};
my $ref = $r->{json}{order};
$r = api(GET => 'discounts/fiver/redemptions');
is($r->{status}, 200, 'its uses');
is(scalar @{$r->{json}{redemptions}}, 1, 'one');
my $u = $r->{json}{redemptions}[0];
is_deeply([ @$u{qw(order email currency amount state order_status)} ],
    [$ref, 'ada@example.com', 'GBP', 500, 'reserved', 'pending_payment'],
    'order, email, amount, state');
is(api(GET => 'discounts/FIVER')->{json}{reserved}, 1, 'counted as reserved');

$r = api(POST => 'discounts/FIVER/deactivate');
is($r->{status}, 200, 'deactivated');
ok(!$r->{json}{active}, 'inactive');
$r = $t->http(POST => '/api/checkout', {
    headers => { 'Content-Type' => 'application/json' },
    content => encode_json({ email => 'bob@example.com',
        discount_code => 'FIVER', items => [{ photo => 'harbour-dawn',
            product => 'giclee-a3', quantity => 1 }] }) });
is($r->{json}{error}{code}, 'unknown_code', 'an inactive code is refused');
is(api(GET => 'discounts/FIVER/redemptions')->{json}{redemptions}[0]{state},
    'reserved', 'the use held before stays');
$r = api(POST => 'discounts/FIVER', { active => JSON::PP::true });
ok($r->{json}{active}, 'active again');

# --- the demo's code, loaded as `make run` does, twice -----------------------
for my $n (1, 2) {
    my $out = `psql -X -q -v ON_ERROR_STOP=1 -o /dev/null -d '${\$t->db}' -f '${\$t->top}/conf/demo-discounts.sql' 2>&1`;
    is($?, 0, "conf/demo-discounts.sql loads ($n)") or diag $out;
}
$r = api(GET => 'discounts/DEMO10');
is_deeply([ @{$r->{json}}{qw(kind percent_off max_redemptions active)} ],
    ['percent', 10, undef, JSON::PP::true], 'DEMO10: 10% off, no limit');
$r = $t->http(POST => '/api/checkout', {
    headers => { 'Content-Type' => 'application/json' },
    content => encode_json({ email => 'demo@example.com',
        discount_code => 'demo10', items => [{ photo => 'moor-rain',
            product => 'digital', quantity => 1 }] }) });
is($r->{status}, 201, 'a checkout with demo10') or diag $r->{content};
is($t->sql_value("SELECT discount_amount FROM orders WHERE ref = :'p1'",
    $r->{json}{order}), 150, '1.50 off 15.00');

done_testing;
