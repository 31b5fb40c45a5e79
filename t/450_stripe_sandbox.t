#!/usr/bin/perl
# tools/stripe-sandbox on its own (no nginx): Stripe's auth, validation and
# idempotency, the Checkout Session shape, the hosted pay page, signed
# webhooks checked here independently of any darkroom code, retries, and the
# duplicate / reorder / delay / fail_next controls.

use strict;
use warnings;
use lib 't/lib';

use Digest::SHA qw(hmac_sha256_hex);
use HTTP::Tiny;
use JSON::PP;
use POSIX ();
use Test::More;
use Time::HiRes qw(sleep time);
use Darkroom::Test qw(wait_for);

my $t = Darkroom::Test->new;
my $dir = $t->dir;
my $KEY = 'sk_test_' . join '', map { ('a' .. 'z')[rand 26] } 1 .. 24;
my $WHSEC = 'whsec_' . join '', map { ('a' .. 'z', 0 .. 9)[rand 36] } 1 .. 32;
$t->write_file('stripe_key', "$KEY\n");
$t->write_file('whsec', "$WHSEC\nwhsec_older_secret\n");

# the receiver: answers 500 to the first `fail_times` deliveries of an event
my $hooklog = "$dir/hook.requests";
my $hook = $t->fake_server(name => 'hook', handler => sub {
    my ($req, $state) = @_;
    my ($id) = $req->{body} =~ /"id":\s*"(evt_[^"]+)"/;
    my $seen = 0;
    if ($id && open my $fh, '<', $hooklog) {
        $seen = grep { index($_, $id) >= 0 } <$fh>;
    }
    return [500, {}, 'down'] if $seen <= ($state->{fail_times} // 0);
    return [200, {}, '{}', 3] if $state->{slow};
    return [200, { 'Content-Type' => 'application/json' }, '{"received":true}'];
});

my $port = $t->port(1);
my $base = "http://127.0.0.1:$port";
my $pid = fork // die;
if ($pid == 0) {
    open STDOUT, '>', "$dir/sandbox.log";
    open STDERR, '>&', \*STDOUT;
    exec $^X, $t->top . '/tools/stripe-sandbox', '--port', $port,
        '--api-key-file', "$dir/stripe_key",
        '--webhook-url', $hook->url('/stripe/webhook'),
        '--webhook-secret-file', "$dir/whsec",
        '--state-dir', "$dir/sandbox", '--retry-base-ms', 250,
        '--later-ms', 300 or die "exec: $!";
}
END { if ($pid) { kill 'TERM', $pid; waitpid $pid, 0 } }

my $ua = HTTP::Tiny->new(timeout => 10, max_redirect => 0);

sub call {
    my ($method, $path, %o) = @_;
    my %h = (%{$o{headers} || {}});
    $h{Authorization} //= "Bearer $KEY" unless $o{noauth};
    my %args = (headers => \%h);
    if (defined $o{form}) {
        $args{content} = form(@{$o{form}});
        $h{'Content-Type'} = 'application/x-www-form-urlencoded';
    }
    if (defined $o{json}) {
        $args{content} = encode_json($o{json});
        $h{'Content-Type'} = 'application/json';
    }
    my $r = $ua->request($method, "$base$path", \%args);
    $r->{json} = eval { decode_json($r->{content}) }
        if ($r->{headers}{'content-type'} // '') =~ /json/;
    return $r;
}

sub form {
    my @kv = @_;
    my @out;
    while (my ($k, $v) = splice @kv, 0, 2) {
        push @out, join '=', map {
            my $s = $_; utf8::encode($s) if utf8::is_utf8($s);
            $s =~ s/([^A-Za-z0-9_.~-])/sprintf '%%%02X', ord $1/ge; $s } $k, $v;
    }
    return join '&', @out;
}

my @SESSION = (
    mode => 'payment',
    success_url => 'http://shop.test/order.html?session={CHECKOUT_SESSION_ID}',
    cancel_url => 'http://shop.test/?cancelled=1',
    'line_items[0][price_data][currency]' => 'gbp',
    'line_items[0][price_data][unit_amount]' => 4500,
    'line_items[0][price_data][product_data][name]' => "Harbour at Dawn \x{2014} Gicl\x{e9}e A3",
    'line_items[0][quantity]' => 2,
    'line_items[1][price_data][currency]' => 'gbp',
    'line_items[1][price_data][unit_amount]' => 1500,
    'line_items[1][price_data][product_data][name]' => 'Digital download',
    'line_items[1][quantity]' => 1,
    client_reference_id => 'DR-0001',
    'metadata[order_id]' => 'DR-0001',
    'payment_intent_data[metadata][order_id]' => 'DR-0001',
    customer_email => 'ada@example.com',
    'shipping_address_collection[allowed_countries][0]' => 'GB',
    'shipping_address_collection[allowed_countries][1]' => 'IE',
    expires_at => int(time) + 3600,
);

sub session_form {
    my (%over) = @_;
    my @f = @SESSION;
    my @out;
    while (my ($k, $v) = splice @f, 0, 2) {
        if (exists $over{$k} && !defined $over{$k}) { delete $over{$k}; next }
        push @out, $k, exists $over{$k} ? delete $over{$k} : $v;
    }
    return [@out, %over];
}

sub new_session {
    my (%over) = @_;
    my $r = call(POST => '/v1/checkout/sessions', form => session_form(%over));
    die "session: $r->{status} $r->{content}" unless $r->{status} == 200;
    return $r->{json};
}

sub deliveries {
    my ($type) = @_;
    return grep { !$type || $_->{event}{type} eq $type }
        map { { %$_, event => decode_json($_->{body}) } } $hook->requests;
}

sub sig_ok {
    my ($req, $secret) = @_;
    my $h = $req->{headers}{'stripe-signature'} // return 0;
    my ($ts) = $h =~ /(?:^|,)t=(\d+)/ or return 0;
    my @v1 = $h =~ /(?:^|,)v1=([0-9a-f]{64})/g;
    my $want = hmac_sha256_hex("$ts.$req->{body}", $secret // $WHSEC);
    return (grep { $_ eq $want } @v1) && abs(time - $ts) < 60;
}

ok(wait_for(sub { call(GET => '/_sandbox/health', noauth => 1)->{status} == 200 }),
    'sandbox up') or BAIL_OUT('sandbox did not start: ' . $t->read_file('sandbox.log'));

# ---- auth
{
    my $r = call(POST => '/v1/checkout/sessions', form => session_form(), noauth => 1);
    is($r->{status}, 401, 'no key: 401');
    is($r->{json}{error}{type}, 'invalid_request_error', 'no key: error type');
    $r = call(POST => '/v1/checkout/sessions', form => session_form(),
        headers => { Authorization => 'Bearer sk_test_wrong' });
    is($r->{status}, 401, 'wrong key: 401');
    like($r->{json}{error}{message}, qr/^Invalid API Key provided/, 'wrong key: message');
    require MIME::Base64;
    $r = call(GET => '/v1/checkout/sessions/cs_test_nope', headers => {
        Authorization => 'Basic ' . MIME::Base64::encode_base64("$KEY:", '') });
    is($r->{status}, 404, 'basic auth accepted, unknown session 404');
    is($r->{json}{error}{code}, 'resource_missing', 'resource_missing');
}

# ---- validation: each 400 names the parameter
for my $case (
    [ { mode => undef }, 'mode', 'parameter_missing' ],
    [ { success_url => undef }, 'success_url', 'parameter_missing' ],
    [ { map { ("line_items[$_->[0]][$_->[1]]" => undef) }
        map { my $i = $_; map { [$i, $_] } 'price_data][currency',
        'price_data][unit_amount', 'price_data][product_data][name', 'quantity' } 0, 1 },
        'line_items', 'parameter_missing' ],
    [ { 'line_items[0][price_data][unit_amount]' => '45.00' },
        'line_items[0][price_data][unit_amount]', 'parameter_invalid_integer' ],
    [ { 'line_items[0][price_data][unit_amount]' => 0 },
        'line_items[0][price_data][unit_amount]' ],
    [ { 'line_items[0][price_data][unit_amount]' => -5 },
        'line_items[0][price_data][unit_amount]' ],
    [ { 'line_items[1][price_data][currency]' => 'xyz' },
        'line_items[1][price_data][currency]' ],
    [ { 'line_items[1][price_data][currency]' => 'usd' }, 'line_items' ],
    [ { 'line_items[0][quantity]' => 0 }, 'line_items[0][quantity]' ],
    [ { 'line_items[0][quantity]' => undef }, 'line_items[0][quantity]' ],
    [ { 'line_items[0][price_data][product_data][name]' => '' },
        'line_items[0][price_data][product_data][name]', 'parameter_missing' ],
    [ { expires_at => int(time) + 600 }, 'expires_at' ],
    [ { expires_at => int(time) + 90000 }, 'expires_at' ],
    [ { customer_email => 'not-an-email' }, 'customer_email' ],
    [ { success_url => 'shop/ok' }, 'success_url' ],
    [ { colour => 'blue' }, 'colour' ],
    [ { mode => 'teleport' }, 'mode' ],
) {
    my ($over, $param, $code) = @$case;
    my $r = call(POST => '/v1/checkout/sessions', form => session_form(%$over));
    is($r->{status}, 400, "400 for bad $param");
    is($r->{json}{error}{type}, 'invalid_request_error', "$param: type");
    is($r->{json}{error}{param}, $param, "$param: param");
    is($r->{json}{error}{code}, $code, "$param: code $code") if $code;
}

# ---- a session and its shape
my $s = new_session();
like($s->{id}, qr/^cs_test_\w+$/, 'session id');
is($s->{object}, 'checkout.session', 'object');
is($s->{url}, "$base/pay/$s->{id}", 'url is the hosted page');
is($s->{amount_total}, 10500, 'amount_total');
is($s->{amount_subtotal}, 10500, 'amount_subtotal');
is($s->{currency}, 'gbp', 'currency lower case');
is($s->{status}, 'open', 'status open');
is($s->{payment_status}, 'unpaid', 'unpaid');
is($s->{payment_intent}, undef, 'no payment_intent yet');
is($s->{client_reference_id}, 'DR-0001', 'client_reference_id');
is_deeply($s->{metadata}, { order_id => 'DR-0001' }, 'metadata');
is($s->{customer_email}, 'ada@example.com', 'customer_email');
is($s->{mode}, 'payment', 'mode');
is_deeply($s->{shipping_address_collection}{allowed_countries}, ['GB', 'IE'],
    'allowed countries');
ok(!exists $s->{_pi_meta}, 'no private fields');
{
    my $r = call(GET => "/v1/checkout/sessions/$s->{id}?expand[]=line_items");
    is($r->{status}, 200, 'GET session');
    is($r->{json}{id}, $s->{id}, 'same session');
    is(scalar @{$r->{json}{line_items}{data}}, 2, 'expanded line items');
    is($r->{json}{line_items}{data}[0]{description},
        "Harbour at Dawn \x{2014} Gicl\x{e9}e A3", 'UTF-8 name round trip');
}

# ---- idempotency
{
    my $f = session_form('metadata[order_id]' => 'DR-IDEM');
    my $h = { 'Idempotency-Key' => 'order-DR-IDEM' };
    my $a = call(POST => '/v1/checkout/sessions', form => $f, headers => $h);
    my $b = call(POST => '/v1/checkout/sessions', form => $f, headers => $h);
    is($a->{status}, 200, 'idempotent first');
    ok(!$a->{headers}{'idempotent-replayed'}, 'first not replayed');
    is($b->{status}, 200, 'idempotent second');
    is($b->{json}{id}, $a->{json}{id}, 'same session replayed');
    is($b->{headers}{'idempotent-replayed'}, 'true', 'Idempotent-Replayed: true');
    my $c = call(POST => '/v1/checkout/sessions', headers => $h,
        form => session_form('metadata[order_id]' => 'DR-OTHER'));
    is($c->{status}, 400, 'same key, other params: 400');
    is($c->{json}{error}{type}, 'idempotency_error', 'idempotency_error');
    my $d = call(POST => '/v1/refunds', headers => $h, form => [charge => 'ch_x']);
    is($d->{json}{error}{type}, 'idempotency_error', 'same key, other endpoint');
}

# ---- the hosted page and paying through it
my $paid;
{
    my $r = $ua->get("$base/pay/$s->{id}");
    is($r->{status}, 200, 'pay page');
    like($r->{content}, qr/Harbour at Dawn/, 'pay page lists items');
    like($r->{content}, qr/\x{c2}\x{a3}105\.00/, 'pay page total');
    like($r->{content}, qr/value="pay".*value="later".*value="decline"/s, 'buttons');
    like($r->{content}, qr/name="postal_code"/, 'shipping form');

    $r = $ua->request(POST => "$base/pay/$s->{id}", { headers => {
        'Content-Type' => 'application/x-www-form-urlencoded' },
        content => form(action => 'pay', email => 'grace@example.com',
            name => 'Grace Hopper', line1 => '1 Quay Road', line2 => '',
            city => 'Whitby', postal_code => 'YO22 4AB', state => '',
            country => 'GB') });
    is($r->{status}, 303, 'pay: 303');
    is($r->{headers}{location},
        "http://shop.test/order.html?session=$s->{id}", 'to success_url with id');

    ok(wait_for(sub { deliveries('checkout.session.completed') }, 10),
        'checkout.session.completed delivered');
    my ($d) = deliveries('checkout.session.completed');
    ok(sig_ok($d), 'signature verifies with the whsec (independent HMAC)');
    ok(!sig_ok($d, 'whsec_older_secret'), 'not signed with the second line');
    is($d->{headers}{'content-type'}, 'application/json; charset=utf-8', 'content type');
    like($d->{headers}{'user-agent'}, qr{^Stripe/1\.0 \(\+https://stripe\.com/docs/webhooks\)},
        'user agent');
    is($d->{path}, '/stripe/webhook', 'posted to the webhook path');
    my $ev = $d->{event};
    like($ev->{id}, qr/^evt_/, 'event id');
    is($ev->{object}, 'event', 'event object');
    is($ev->{api_version}, '2024-06-20', 'api_version');
    is($ev->{livemode}, JSON::PP::false, 'livemode false');
    ok(exists $ev->{request} && exists $ev->{request}{idempotency_key}, 'request field');
    $paid = $ev->{data}{object};
    is($paid->{id}, $s->{id}, 'the session');
    is($paid->{status}, 'complete', 'complete');
    is($paid->{payment_status}, 'paid', 'paid');
    is($paid->{amount_total}, 10500, 'amount');
    like($paid->{payment_intent}, qr/^pi_/, 'payment intent');
    is($paid->{customer_details}{email}, 'grace@example.com', 'customer email');
    # 2024-06-20 has shipping_details; collected_information came in 2025
    is_deeply($paid->{shipping_details},
        { name => 'Grace Hopper', address => { line1 => '1 Quay Road',
            line2 => undef, city => 'Whitby', postal_code => 'YO22 4AB',
            state => undef, country => 'GB' } },
        'shipping in shipping_details, as 2024-06-20 has it');
    ok(!exists $paid->{collected_information},
        'no collected_information (a 2025 field) in a 2024-06-20 event');
    ok(!exists $paid->{shipping}, 'nor the 2020 shipping');
    is($paid->{metadata}{order_id}, 'DR-0001', 'metadata in event');

    $r = call(GET => "/v1/checkout/sessions/$s->{id}");
    is($r->{json}{payment_status}, 'paid', 'GET shows paid');
    is($r->{json}{url}, undef, 'url cleared once complete');

    $r = $ua->request(POST => "$base/pay/$s->{id}", { headers => {
        'Content-Type' => 'application/x-www-form-urlencoded' },
        content => 'action=pay' });
    isnt($r->{status}, 303, 'paying twice refused');
}

# ---- refunds: partial then the rest, charge.refunded with cumulative totals
{
    my $pi = $paid->{payment_intent};
    my $r = call(POST => '/v1/refunds', form => [payment_intent => $pi,
        amount => 2000, 'metadata[order_id]' => 'DR-0001'],
        headers => { 'Idempotency-Key' => 'refund-1' });
    is($r->{status}, 200, 'partial refund');
    like($r->{json}{id}, qr/^re_/, 'refund id');
    is($r->{json}{object}, 'refund', 'refund object');
    is($r->{json}{status}, 'succeeded', 'refund succeeded');
    is($r->{json}{amount}, 2000, 'refund amount');
    is($r->{json}{payment_intent}, $pi, 'refund payment_intent');
    my $again = call(POST => '/v1/refunds', form => [payment_intent => $pi,
        amount => 2000, 'metadata[order_id]' => 'DR-0001'],
        headers => { 'Idempotency-Key' => 'refund-1' });
    is($again->{json}{id}, $r->{json}{id}, 'refund replayed by key');

    $r = call(POST => '/v1/refunds', form => [payment_intent => $pi, amount => 9000]);
    is($r->{status}, 400, 'refund above the remainder');
    is($r->{json}{error}{param}, 'amount', 'param amount');
    $r = call(POST => '/v1/refunds', form => [payment_intent => 'pi_nope']);
    is($r->{json}{error}{code}, 'resource_missing', 'unknown payment intent');

    $r = call(POST => '/v1/refunds', form => [payment_intent => $pi]);
    is($r->{json}{amount}, 8500, 'the rest refunded');

    ok(wait_for(sub { deliveries('charge.refunded') >= 2 }, 10), 'two charge.refunded');
    my @ch = sort { $a->{amount_refunded} <=> $b->{amount_refunded} }
        map { $_->{event}{data}{object} } deliveries('charge.refunded');
    is($ch[0]{object}, 'charge', 'data.object is the charge');
    is($ch[0]{amount}, 10500, 'charge amount');
    is($ch[0]{amount_refunded}, 2000, 'first: 2000 refunded');
    is($ch[0]{refunded}, JSON::PP::false, 'first: not fully refunded');
    is($ch[1]{amount_refunded}, 10500, 'second: cumulative 10500');
    is($ch[1]{refunded}, JSON::PP::true, 'second: refunded');
    is($ch[1]{currency}, 'gbp', 'charge currency');
    is($ch[1]{payment_intent}, $pi, 'charge payment_intent');
    is($ch[1]{metadata}{order_id}, 'DR-0001',
        'order_id copied from payment_intent_data[metadata]');
    is(scalar(grep { !sig_ok($_) } deliveries()), 0, 'every delivery signed');

    $r = call(POST => '/v1/refunds', form => [charge => $ch[1]{id}]);
    is($r->{json}{error}{code}, 'charge_already_refunded', 'nothing left to refund');
}

# ---- expire
{
    my $e = new_session();
    my $r = call(POST => "/v1/checkout/sessions/$e->{id}/expire");
    is($r->{status}, 200, 'expire');
    is($r->{json}{status}, 'expired', 'expired');
    $r = call(POST => "/v1/checkout/sessions/$e->{id}/expire");
    is($r->{status}, 400, 'expire twice: 400');
    ok(wait_for(sub { grep { $_->{event}{data}{object}{id} eq $e->{id} }
        deliveries('checkout.session.expired') }), 'checkout.session.expired sent');
    $r = $ua->get("$base/pay/$e->{id}");
    is($r->{status}, 410, 'pay page of an expired session: 410');
}

# ---- decline keeps the session open
{
    my $x = new_session();
    my $r = $ua->request(POST => "$base/pay/$x->{id}", { headers => {
        'Content-Type' => 'application/x-www-form-urlencoded' },
        content => 'action=decline' });
    is($r->{status}, 303, 'decline: 303');
    is($r->{headers}{location}, 'http://shop.test/?cancelled=1', 'to cancel_url');
    is(call(GET => "/v1/checkout/sessions/$x->{id}")->{json}{status}, 'open',
        'still open');
}

# ---- retries: the receiver fails twice, the third try lands
{
    $hook->set(fail_times => 2);
    my $x = new_session();
    my $r = call(POST => "/_sandbox/pay/$x->{id}", json => { action => 'pay' });
    is($r->{status}, 200, 'scripted pay');
    like($r->{json}{redirect}, qr/\Q$x->{id}\E/, 'redirect with session id');
    my @d;
    ok(wait_for(sub { @d = grep { $_->{event}{data}{object}{id} eq $x->{id} }
        deliveries('checkout.session.completed'); @d >= 3 }, 10), 'retried');
    is(scalar @d, 3, 'three attempts');
    is(scalar(keys %{{ map { $_->{event}{id} => 1 } @d }}), 1, 'same event id each try');
    is(scalar(keys %{{ map { $_->{body} => 1 } @d }}), 1, 'same body each try');
    ok(!(grep { !sig_ok($_) } @d), 'each try signed');
    ok($d[2]{time} - $d[1]{time} > $d[1]{time} - $d[0]{time} * 1, 'backoff grows')
        or diag(join ' ', map { $_->{time} } @d);
    my $evs = call(GET => '/_sandbox/events')->{json};
    my ($rec) = grep { $_->{id} eq $d[0]{event}{id} } @$evs;
    ok(wait_for(sub { $evs = call(GET => '/_sandbox/events')->{json};
        ($rec) = grep { $_->{id} eq $d[0]{event}{id} } @$evs; $rec->{delivered} }),
        'events list: delivered');
    is_deeply([ map { $_->{status} } @{$rec->{deliveries}} ], [500, 500, 200],
        'events list: the answers darkroom gave');
    $hook->set(fail_times => 0);
}

# ---- duplicate, delay, reorder
{
    call(POST => '/_sandbox/config', json => { duplicate => 3 });
    my $x = new_session();
    call(POST => "/_sandbox/pay/$x->{id}", json => {});
    my @d;
    ok(wait_for(sub { @d = grep { $_->{event}{data}{object}{id} eq $x->{id} }
        deliveries(); @d >= 3 }), 'duplicates delivered');
    sleep 0.3;
    @d = grep { $_->{event}{data}{object}{id} eq $x->{id} } deliveries();
    is(scalar @d, 3, 'delivered 3 times');
    is(scalar(keys %{{ map { $_->{event}{id} => 1 } @d }}), 1, 'one event id');

    call(POST => '/_sandbox/config', json => { duplicate => 1, delay_ms => 1200 });
    my $y = new_session();
    my $t0 = time;
    call(POST => "/_sandbox/pay/$y->{id}", json => {});
    sleep 0.6;
    my $early = grep { $_->{event}{data}{object}{id} eq $y->{id} } deliveries();
    SKIP: {
        # nothing can have come before the 1.2 s delay; a loaded machine
        # may have let more time pass than that, and then it rightly did
        skip 'the test took longer than the delay', 1 if time - $t0 >= 1.2;
        is($early, 0, 'delayed: nothing yet');
    }
    ok(wait_for(sub { grep { $_->{event}{data}{object}{id} eq $y->{id} } deliveries() }),
        'delayed: delivered later');
    ok(time - $t0 >= 1.1, 'after the delay');

    call(POST => '/_sandbox/config', json => { delay_ms => 0, reorder => JSON::PP::true });
    my $sa = new_session();
    my $sb = new_session();
    call(POST => "/_sandbox/pay/$sa->{id}", json => {});
    call(POST => "/v1/checkout/sessions/$sb->{id}/expire");
    sleep 0.4;
    my $mine = sub { grep { my $i = $_->{event}{data}{object}{id};
        $i eq $sa->{id} || $i eq $sb->{id} } deliveries() };
    is(scalar($mine->()), 0, 'reorder: held');
    my $f = call(POST => '/_sandbox/flush');
    is($f->{json}{flushed}, 2, 'flushed 2');
    my @m;
    ok(wait_for(sub { (@m = $mine->()) >= 2 }), 'held events delivered');
    is_deeply([ map { $_->{event}{type} } sort { $a->{n} <=> $b->{n} } @m ],
        ['checkout.session.expired', 'checkout.session.completed'],
        'newest first');
    call(POST => '/_sandbox/config', json => { reset => JSON::PP::true });
}

# ---- pay later: completed unpaid, then async_payment_succeeded
{
    my $x = new_session();
    call(POST => "/_sandbox/pay/$x->{id}", json => { action => 'later' });
    my ($c, $ok);
    ok(wait_for(sub { ($ok) = grep { $_->{event}{data}{object}{id} eq $x->{id} }
        deliveries('checkout.session.async_payment_succeeded') }, 10),
        'async_payment_succeeded');
    ($c) = grep { $_->{event}{data}{object}{id} eq $x->{id} }
        deliveries('checkout.session.completed');
    is($c->{event}{data}{object}{payment_status}, 'unpaid', 'completed but unpaid');
    is($ok->{event}{data}{object}{payment_status}, 'paid', 'then paid');
    ok($ok->{n} > $c->{n}, 'in that order');

    my $y = new_session();
    call(POST => "/_sandbox/pay/$y->{id}", json => { action => 'later',
        outcome => 'failed' });
    ok(wait_for(sub { grep { $_->{event}{data}{object}{id} eq $y->{id} }
        deliveries('checkout.session.async_payment_failed') }, 10),
        'async_payment_failed');
}

# ---- other API versions: each gets its own shipping fields, and the
# scripted pay takes a shipping address
{
    my $ship = { name => 'Mary Anning', address => { line1 => '1 Cobb Road',
        city => 'Lyme Regis', postal_code => 'DT7 3JJ', country => 'GB' } };
    my %want = (
        '2020-08-27' => [ ['shipping'], ['shipping_details', 'collected_information'] ],
        '2022-08-01' => [ ['shipping_details'], ['shipping', 'collected_information'] ],
        '2025-02-24.acacia' => [ ['shipping_details', 'collected_information'],
                                 ['shipping'] ],
        '2025-03-31.basil' => [ ['collected_information'],
                                ['shipping', 'shipping_details'] ],
    );
    for my $v (sort keys %want) {
        call(POST => '/_sandbox/config', json => { api_version => $v });
        my $x = new_session();
        my $r = call(POST => "/_sandbox/pay/$x->{id}", json => { shipping => $ship });
        my ($d) = grep { $_->{event}{data}{object}{id} eq $x->{id} }
            deliveries('checkout.session.completed');
        ok(wait_for(sub { ($d) = grep { $_->{event}{data}{object}{id} eq $x->{id} }
            deliveries('checkout.session.completed') }, 10), "$v: delivered");
        my $ev = $d->{event};
        is($ev->{api_version}, $v, "$v: the event says so");
        my $o = $ev->{data}{object};
        my ($has, $hasnt) = @{$want{$v}};
        for my $f (@$has) {
            my $got = $f eq 'collected_information'
                ? $o->{$f}{shipping_details} : $o->{$f};
            is($got->{address}{city}, 'Lyme Regis', "$v: $f");
        }
        ok(!exists $o->{$_}, "$v: no $_") for @$hasnt;
        # the API answers in the version the request names
        $r = call(GET => "/v1/checkout/sessions/$x->{id}",
            headers => { 'Stripe-Version' => '2024-06-20' });
        is($r->{json}{shipping_details}{name}, 'Mary Anning',
            "$v: GET with Stripe-Version 2024-06-20 has shipping_details");
        ok(!exists $r->{json}{collected_information},
            "$v: and no collected_information");
    }
    call(POST => '/_sandbox/config', json => { reset => JSON::PP::true });

    my $n = new_session('shipping_address_collection[allowed_countries][0]' => undef,
        'shipping_address_collection[allowed_countries][1]' => undef);
    my $r = call(POST => "/_sandbox/pay/$n->{id}", json => {});
    is($r->{json}{session}{shipping_details}, undef,
        'no shipping asked, none collected');
    is($r->{json}{session}{customer_details}{phone}, undef,
        'no phone asked, none collected');

    # phone_number_collection: the pay page asks, the session reports it
    my $p = new_session('phone_number_collection[enabled]' => 'true');
    is($p->{phone_number_collection}{enabled}, JSON::PP::true,
        'phone collection enabled on the session');
    my $page = $ua->get("$base/pay/$p->{id}");
    like($page->{content}, qr/name="phone"/, 'the pay page asks for a phone');
    $r = $ua->request(POST => "$base/pay/$p->{id}", { headers => {
        'Content-Type' => 'application/x-www-form-urlencoded' },
        content => 'action=pay&email=p%40example.com&phone=%2B441632960999'
            . '&name=P&line1=1+Road&city=York&postal_code=YO1&country=GB' });
    is($r->{status}, 303, 'paid with a phone');
    my $d;
    ok(wait_for(sub { ($d) = grep { $_->{event}{data}{object}{id} eq $p->{id} }
        deliveries('checkout.session.completed') }, 10), 'delivered');
    is($d->{event}{data}{object}{customer_details}{phone}, '+441632960999',
        'customer_details.phone in the event');
    $r = call(POST => '/v1/checkout/sessions', form => session_form(
        'phone_number_collection[enabled]' => 'maybe'));
    is($r->{status}, 400, 'phone_number_collection[enabled] must be a boolean');
}

# ---- fail_next: 500 twice, then the same idempotency key creates one session
{
    call(POST => '/_sandbox/config', json => {
        fail_next => { 'POST /v1/checkout/sessions' => 2 } });
    my $f = session_form('metadata[order_id]' => 'DR-RETRY');
    my $h = { 'Idempotency-Key' => 'order-DR-RETRY' };
    my @st = map { call(POST => '/v1/checkout/sessions', form => $f, headers => $h) } 1 .. 3;
    is_deeply([ map { $_->{status} } @st ], [500, 500, 200], '500, 500, 200');
    is($st[0]{json}{error}{type}, 'api_error', 'api_error body');
    my $again = call(POST => '/v1/checkout/sessions', form => $f, headers => $h);
    is($again->{json}{id}, $st[2]{json}{id}, 'one session for the key');
    my $reqs = call(GET => '/_sandbox/requests')->{json};
    my @mine = grep { ($_->{headers}{'idempotency-key'} // '') eq 'order-DR-RETRY' } @$reqs;
    is(scalar @mine, 4, 'requests recorded');
    is_deeply([ map { $_->{status} } @mine ], [500, 500, 200, 200], 'with statuses');
    like($mine[0]{body}, qr/metadata%5Border_id%5D=DR-RETRY/, 'with the raw body');

    call(POST => '/_sandbox/config', json => { fail_next => {
        'POST /v1/refunds' => { count => 1, status => 409, should_retry => JSON::PP::true } } });
    my $r = call(POST => '/v1/refunds', form => [charge => 'ch_x']);
    is($r->{status}, 409, 'status override');
    is($r->{headers}{'stripe-should-retry'}, 'true', 'Stripe-Should-Retry');
    $r = call(POST => '/v1/refunds', form => [charge => 'ch_x']);
    is($r->{status}, 404, 'override used once');
}

# ---- resend
{
    my ($d) = deliveries('checkout.session.completed');
    my $before = grep { $_->{event}{id} eq $d->{event}{id} } deliveries();
    my $r = call(POST => "/_sandbox/resend/$d->{event}{id}");
    is($r->{status}, 200, 'resend');
    ok(wait_for(sub { (grep { $_->{event}{id} eq $d->{event}{id} } deliveries())
        > $before }), 'resent');
}

# ---- a slow receiver never blocks the API or the pay page
{
    $hook->set(slow => 1);
    my $x = new_session();
    my $t0 = time;
    call(POST => "/_sandbox/pay/$x->{id}", json => {});
    my $y = new_session();
    my $r = $ua->get("$base/pay/$y->{id}");
    is($r->{status}, 200, 'pay page while a delivery hangs');
    # the receiver hangs 3 s: an answer before that did not wait for it
    ok(time - $t0 < 3, 'API answered without waiting for the webhook');
    $hook->set();
}

# ---- Expect: 100-continue (libcurl sends it for bodies over 1 kB)
{
    require IO::Socket::IP;
    my $body = form(@{session_form()});
    my $s = IO::Socket::IP->new(PeerAddr => '127.0.0.1', PeerPort => $port) or die;
    print $s "POST /v1/checkout/sessions HTTP/1.1\r\nHost: x\r\n"
        . "Authorization: Bearer $KEY\r\nExpect: 100-continue\r\n"
        . "Content-Type: application/x-www-form-urlencoded\r\n"
        . "Content-Length: " . length($body) . "\r\nConnection: close\r\n\r\n";
    my $first = '';
    sysread $s, $first, 100;
    like($first, qr{^HTTP/1\.1 100 Continue\r\n\r\n}, '100 Continue before the body');
    print $s $body;
    local $/;
    my $rest = <$s>;
    like($rest, qr{^HTTP/1\.1 200 }, 'then the answer');
}

diag($t->read_file('sandbox.log')) unless Test::More->builder->is_passing;
done_testing;
