package Darkroom::Stripe;

# Stripe's side of the wire for tests, written from Stripe's documentation
# and independent of darkroom's C code: signatures, events, a shop.
#
#   my $hdr = Darkroom::Stripe::signature($secret, $body, time);
#   my $evt = Darkroom::Stripe::event('checkout.session.completed', $obj);
#   Darkroom::Stripe::demo_catalogue($t);   # rows for a test shop

use strict;
use warnings;

use Digest::SHA qw(hmac_sha256_hex);
use HTTP::Tiny;
use IO::Socket::IP;
use POSIX ();
use JSON::PP;
use Exporter qw(import);
our @EXPORT_OK = qw(signature event session charge demo_catalogue shop_conf
    fake_api form_of form_structure sandbox webhook webhook_bg checkout_order
    API_VERSION session_total);

# the API version darkroom is written for (Stripe-Version on its calls, and
# the version its webhook endpoint must be configured with)
use constant API_VERSION => '2024-06-20';

my $seq = 0;

# "t=<ts>,v1=<hex>": HMAC-SHA256 keyed with the whole whsec_ secret over
# "<ts>.<payload>", as https://docs.stripe.com/webhooks describes
sub signature {
    my ($secret, $payload, $ts) = @_;
    $ts //= time;
    return "t=$ts,v1=" . hmac_sha256_hex("$ts.$payload", $secret);
}

sub event {
    my ($type, $object, %opts) = @_;
    $seq++;
    return JSON::PP->new->canonical->encode({
        id => $opts{id} // sprintf('evt_test_%d_%d_%d', $$, time, $seq),
        object => 'event',
        api_version => exists $opts{api_version} ? $opts{api_version}
                                                 : API_VERSION,
        created => time,
        livemode => JSON::PP::false,
        pending_webhooks => 1,
        request => { id => undef, idempotency_key => undef },
        type => $type,
        data => { object => $object },
    });
}

# A Checkout Session in the shape of an API version: shape => 'shipping'
# (2020-08-27 and before), 'shipping_details' (2022-08-01 to 2025-02-24,
# the default: the pinned version has it), 'collected_information'
# (2025-02-24.acacia on), or legacy => 1 (shipping_details, another name).
sub session {
    my (%o) = @_;
    my $shape = $o{legacy} ? 'shipping_details'
                           : $o{shape} // 'shipping_details';
    my $ship = {
        name => $o{legacy} ? 'Ada Legacy' : 'Ada Buyer',
        address => $o{legacy}
            ? { line1 => '2 Old Road', line2 => undef, city => 'York',
                postal_code => 'YO1 1AA', state => undef, country => 'GB' }
            : { line1 => '1 Harbour Row', line2 => undef, city => 'Whitby',
                postal_code => 'YO21 1AA', state => undef, country => 'GB' } };
    return {
        id => $o{id},
        object => 'checkout.session',
        # integers, as Stripe sends them (values from SQL are strings)
        amount_total => defined $o{amount} ? 0 + $o{amount} : undef,
        amount_subtotal => defined $o{amount} ? 0 + $o{amount} : undef,
        currency => lc($o{currency} // 'gbp'),
        status => $o{status} // 'complete',
        payment_status => $o{payment_status} // 'paid',
        payment_intent => $o{payment_intent} // "pi_$o{id}",
        client_reference_id => $o{ref},
        metadata => { order_id => "$o{order_id}" },
        customer_details => { email => 'buyer@example.com',
                              name => 'Ada Buyer', phone => $o{phone} },
        $shape eq 'collected_information'
            ? (collected_information => { shipping_details => $ship })
            : ($shape => $ship),
    };
}

sub charge {
    my (%o) = @_;
    return {
        id => $o{id} // "ch_$o{payment_intent}",
        object => 'charge',
        amount => defined $o{amount} ? 0 + $o{amount} : undef,
        amount_refunded => 0 + ($o{amount_refunded} // 0),
        refunded => $o{refunded} ? JSON::PP::true : JSON::PP::false,
        currency => lc($o{currency} // 'gbp'),
        payment_intent => $o{payment_intent},
        metadata => $o{order_id} ? { order_id => "$o{order_id}" } : {},
    };
}

# a signed delivery of $body to the test's /webhooks/stripe
sub webhook {
    my ($t, $secret, $body, %o) = @_;
    return $t->http(POST => '/webhooks/stripe', { headers => {
        'Content-Type' => 'application/json',
        'Stripe-Signature' => signature($secret, $body, $o{ts}) },
        content => $body });
}

# The same from a child process, so that many are in flight at once: the
# child writes the request on a socket of its own, creates "$out.sent",
# then reads the answer into $out as "status\nbody", its header block
# into "$out.head" (close => 1: hangs up at once instead).  Returns the
# child's pid.
sub webhook_bg {
    my ($t, $secret, $body, $out, %o) = @_;
    my $pid = fork // die "fork: $!";
    return $pid if $pid;
    alarm 240;
    my $s = IO::Socket::IP->new(PeerAddr => '127.0.0.1',
        PeerPort => $t->port(0), Proto => 'tcp') or POSIX::_exit(1);
    $s->autoflush(1);
    print $s "POST /webhooks/stripe HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        . "Content-Type: application/json\r\n"
        . 'Stripe-Signature: ' . signature($secret, $body) . "\r\n"
        . 'Content-Length: ' . length($body) . "\r\n"
        . "Connection: close\r\n\r\n$body";
    open my $m, '>', "$out.sent" or POSIX::_exit(1);
    close $m;
    if ($o{close}) {
        close $s;
        POSIX::_exit(0);
    }
    local $/;
    my $resp = <$s> // '';
    my ($status) = $resp =~ m{^HTTP/1\.[01] (\d{3})};
    my ($head, $content) = $resp =~ /\A(.*?)\r\n\r\n(.*)\z/s;
    open my $h, '>', "$out.head" or POSIX::_exit(1);
    print $h $head // '';
    close $h;
    open my $fh, '>', "$out.tmp" or POSIX::_exit(1);
    print $fh ($status // 0), "\n", $content // '';
    close $fh;
    rename "$out.tmp", $out;
    POSIX::_exit(0);
}

# an order made through /api/checkout: { id, ref, total, session }
sub checkout_order {
    my ($t, $qty, %o) = @_;
    my $r = $t->http(POST => '/api/checkout', {
        headers => { 'Content-Type' => 'application/json' },
        content => encode_json({ email => 'ada@example.com', items => [
            { photo => 'harbour-dawn', product => $o{product} // 'giclee-a3',
              quantity => $qty } ] }) });
    die "checkout failed: $r->{content}" unless $r->{status} == 201;
    my ($row) = $t->sql("SELECT id, ref, total FROM orders WHERE ref = :'p1'",
        $r->{json}{order});
    return { id => $row->[0], ref => $row->[1], total => $row->[2],
             session => "cs_test_$row->[0]" };
}

# three photos, a print, a canvas, a download, one retired product
sub demo_catalogue {
    my ($t) = @_;
    $t->sql(<<'SQL');
INSERT INTO photos (id, title, image_path, print_path) VALUES
  ('harbour-dawn', 'Harbour at Dawn', '/images/harbour-dawn.jpg', 'harbour-dawn.tif'),
  ('moor-rain', 'Rain on the Moor', '/images/moor-rain.jpg', 'moor-rain.tif'),
  ('hidden', 'Hidden', NULL, NULL);
UPDATE photos SET active = false WHERE id = 'hidden';
INSERT INTO products (id, name, kind, medium, size) VALUES
  ('giclee-a3', 'Giclée print, A3', 'print', 'Photo Rag', 'A3'),
  ('canvas-50', 'Canvas, 50 x 70 cm', 'print', 'Canvas', '50x70'),
  ('digital', 'Digital download', 'digital', '', ''),
  ('retired', 'Retired print', 'print', '', '');
UPDATE products SET active = false WHERE id = 'retired';
INSERT INTO product_prices VALUES
  ('giclee-a3', 'GBP', 4500), ('giclee-a3', 'USD', 5500),
  ('canvas-50', 'GBP', 12000),
  ('digital', 'GBP', 1500), ('digital', 'USD', 1900),
  ('retired', 'GBP', 1000);
INSERT INTO photo_products VALUES
  ('harbour-dawn', 'giclee-a3'), ('harbour-dawn', 'canvas-50'),
  ('harbour-dawn', 'digital'), ('harbour-dawn', 'retired'),
  ('moor-rain', 'giclee-a3'), ('moor-rain', 'digital'),
  ('hidden', 'giclee-a3');
SQL
}

# an nginx.conf for a shop talking to a fake Stripe at $stripe_url
sub shop_conf {
    my ($t, %o) = @_;
    $t->write_file('stripe_key', "sk_test_darkroom\n");
    $t->write_file('whsec', join("\n", @{$o{secrets} // ['whsec_test_one']}) . "\n");
    $t->write_file('admin_token', "admin-token-1\nadmin-token-2\n");
    # the status tokens' keys (darkroom_order_keys): the first one signs
    $t->write_file('order_keys', join("\n", @{$o{order_keys}
        // ['o1:order-key-0123456789abcdef']}) . "\n");
    my $extra = $o{http} // '';
    my $locations = $o{server} // '';
    my $workers = $o{workers} // 1;
    $t->conf(<<"CONF", workers => $workers);
%%MAIN%%
events {}
http {
    %%HTTP%%
    darkroom_db "%%DB%%";
    darkroom_db_timeout 3s;
    darkroom_jobs_interval 100ms;
    darkroom_stripe_api $o{stripe};
    darkroom_stripe_key_file %%DIR%%/stripe_key;
    darkroom_stripe_webhook_secret_file %%DIR%%/whsec;
    darkroom_admin_token_file %%DIR%%/admin_token;
    darkroom_order_keys %%DIR%%/order_keys;
    darkroom_checkout_success_url "http://127.0.0.1:%%PORT0%%/order.html?token={ORDER_TOKEN}&session={CHECKOUT_SESSION_ID}";
    darkroom_checkout_cancel_url "http://127.0.0.1:%%PORT0%%/?cancelled={ORDER_REF}";
    darkroom_shipping_countries GB IE US;
    $extra
    client_max_body_size 64k;
    server {
        listen 127.0.0.1:%%PORT0%%;
        location = /api/catalogue { darkroom_catalogue; }
        location = /api/checkout { darkroom_checkout; }
        location = /api/cart/quote { darkroom_cart_quote; }
        location /api/orders/ { darkroom_order_status; }
        location = /webhooks/stripe { darkroom_stripe_webhook; }
        location /admin/api/ { darkroom_admin; }
        location = /health { darkroom_health; }
        $locations
    }
}
CONF
}

# a fake Stripe API: sessions and refunds in Stripe's shapes, failing on
# demand through its state (fail_sessions => n, session_status => 400,
# refund_status => 400)
sub fake_api {
    my ($t) = @_;
    return $t->fake_server(name => 'stripe', handler => sub {
        my ($req, $state) = @_;
        my %f = %{ form_of($req->{body}) };
        my $json = { 'Content-Type' => 'application/json' };
        if (($req->{headers}{authorization} // '') ne 'Bearer sk_test_darkroom') {
            return [401, $json, encode_json({ error => {
                type => 'invalid_request_error',
                message => 'Invalid API Key provided' } })];
        }
        if ($req->{method} eq 'POST' && $req->{path} eq '/v1/checkout/sessions') {
            my $n = $req->{n_path};
            if ($n <= ($state->{fail_sessions} // 0)) {
                return [500, $json, encode_json({ error => {
                    type => 'api_error', message => 'Stripe is having a bad day' } })];
            }
            if (my $st = $state->{session_status}) {
                return [$st, $json, encode_json({ error => {
                    type => 'invalid_request_error', param => 'line_items',
                    message => 'Sandbox refused: amount too small' } })];
            }
            my $id = "cs_test_$f{'metadata[order_id]'}";
            return [200, $json, encode_json({ id => $id,
                object => 'checkout.session', url => "https://pay.example/$id",
                amount_total => session_total(\%f), status => 'open',
                payment_status => 'unpaid',
                metadata => { order_id => $f{'metadata[order_id]'} } })];
        }
        if ($req->{method} eq 'GET' && $req->{path} =~ m{^/v1/checkout/sessions/(.+)$}) {
            my $s = $state->{sessions}{$1}
                or return [404, $json, encode_json({ error => {
                    type => 'invalid_request_error', code => 'resource_missing',
                    message => "No such checkout.session: '$1'" } })];
            return [200, $json, encode_json($s)];
        }
        if ($req->{method} eq 'POST' && $req->{path} eq '/v1/refunds') {
            if (my $st = $state->{refund_status}) {
                return [$st, $json, encode_json({ error => {
                    type => 'invalid_request_error',
                    message => 'Sandbox refused the refund' } })];
            }
            return [200, $json, encode_json({ id => "re_$req->{n_path}",
                object => 'refund', amount => 0 + $f{amount},
                payment_intent => $f{payment_intent}, status => 'succeeded' })];
        }
        return [404, $json, encode_json({ error => {
            type => 'invalid_request_error', message => 'Unrecognized request URL' } })];
    });
}

# What Stripe reports as a session's amount_total for the parameters of
# its creation (form_of's hash): the lines (quantity x unit_amount) plus
# the first shipping option's fixed amount.  A test fake that makes
# sessions answers with it, as Stripe does: darkroom refuses a session
# whose total is not the order's (the exact-amount rule).
sub session_total {
    my ($f) = @_;
    my $total = 0;
    for my $i (0 .. 99) {
        last unless defined $f->{"line_items[$i][quantity]"};
        $total += $f->{"line_items[$i][quantity]"}
            * $f->{"line_items[$i][price_data][unit_amount]"};
    }
    $total += $f->{'shipping_options[0][shipping_rate_data][fixed_amount]'
        . '[amount]'} // 0;
    return $total;
}

sub form_of {
    my ($body) = @_;
    my %f;
    for (split /&/, $body // '') {
        my ($k, $v) = split /=/, $_, 2;
        for ($k, $v) { $_ //= ''; tr/+/ /; s/%([0-9A-Fa-f]{2})/chr hex $1/ge }
        $f{$k} = $v;
    }
    return \%f;
}

# A form body in Stripe's bracket notation as the structure it stands for:
# a[b]=1 -> {a => {b => 1}}, a[0][c]=2 -> {a => [{c => 2}]}.  Values stay
# strings, as sent.  Dies on a key that is not of that notation.
sub form_structure {
    my ($body) = @_;
    my $root = {};
    for (split /&/, $body // '') {
        my ($k, $v) = split /=/, $_, 2;
        for ($k, $v) { $_ //= ''; tr/+/ /; s/%([0-9A-Fa-f]{2})/chr hex $1/ge }
        my ($head, $rest) = $k =~ /^([^\[\]]+)((?:\[[^\[\]]*\])*)$/
            or die "form key not in bracket notation: $k\n";
        my @path = ($head, $rest =~ /\[([^\[\]]*)\]/g);
        my $node = \$root;
        for my $i (0 .. $#path) {
            my $p = $path[$i];
            if ($p =~ /^\d+$/ && $i > 0) {
                $$node //= [];
                die "form key mixes list and object: $k\n" if ref $$node ne 'ARRAY';
                $node = \$$node->[$p];
            } else {
                $$node //= {};
                die "form key mixes list and object: $k\n" if ref $$node ne 'HASH';
                $node = \$$node->{$p};
            }
        }
        $$node = $v;
    }
    return $root;
}

# tools/stripe-sandbox on port n of the test, delivering webhooks to $hook
# and signing with the first secret of the test's whsec file.  Returns an
# object with url, control(method, path, json) and stop.
sub sandbox {
    my ($t, %o) = @_;
    my $port = $t->port($o{port} // 1);
    my $dir = $t->dir;
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDOUT, '>', "$dir/sandbox.log";
        open STDERR, '>&', \*STDOUT;
        exec $^X, $t->top . '/tools/stripe-sandbox', '--port', $port,
            '--api-key-file', "$dir/stripe_key",
            '--webhook-url', $o{webhook},
            '--webhook-secret-file', "$dir/whsec",
            '--state-dir', "$dir/sandbox",
            '--retry-base-ms', $o{retry_base_ms} // 300,
            '--later-ms', 300, '--quiet'
            or die "exec: $!";
    }
    my $sb = bless { pid => $pid, url => "http://127.0.0.1:$port" },
        'Darkroom::Stripe::Sandbox';
    my $ua = HTTP::Tiny->new(timeout => 5);
    for (1 .. 100) {
        last if $ua->get("$sb->{url}/_sandbox/health")->{success};
        select undef, undef, undef, 0.05;
    }
    push @{$t->{servers}}, $sb;
    return $sb;
}

package Darkroom::Stripe::Sandbox;

use HTTP::Tiny;
use JSON::PP;

sub url { $_[0]{url} }

sub control {
    my ($self, $method, $path, $json) = @_;
    my $r = HTTP::Tiny->new(timeout => 10)->request($method,
        "$self->{url}$path", { headers => { 'Content-Type' => 'application/json' },
        defined $json ? (content => encode_json($json)) : () });
    return eval { decode_json($r->{content}) } // $r;
}

sub stop {
    my ($self) = @_;
    return unless $self->{pid};
    kill 'TERM', $self->{pid};
    waitpid $self->{pid}, 0;
    delete $self->{pid};
}

1;
