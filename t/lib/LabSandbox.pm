package LabSandbox;

# Helpers for the lab tests (t/6*_labs*.t): tools/lab-sandbox started per
# test, a shop configuration with labs, signed print files and paid orders.
#
#   my $lab = LabSandbox::start($t);            # on port 1 of the test
#   LabSandbox::conf($t, $stripe, $lab, http => '...extra http lines',
#       protocol => 'escher' | 'legacy' (default),
#       server => '...extra lines of the port 2 server');
#   LabSandbox::mapping($t);                    # demo catalogue → labs
#   my $o = LabSandbox::paid_order($t, [ [photo, product, qty], ... ],
#       phone => '+44 ...' (default; undef: none), before_paid => sub {});
#   $lab->control(POST => '/_sandbox/config', { fail => {...} });
#   my @files = $lab->received;   # what Prodigi downloaded: {order, sku,
#                                 # sizing, url, status, bytes, sha256}

use strict;
use warnings;

use HTTP::Tiny;
use JSON::PP;
use POSIX ();
use Darkroom::Test qw(wait_for);
use Darkroom::Stripe qw(signature event session shop_conf demo_catalogue);

sub start {
    my ($t, %o) = @_;
    my $port = $t->port($o{port} // 1);
    my $dir = $t->dir;
    $t->write_file('prodigi_key', "prodigi-test-key\n");
    $t->write_file('printspace_key', "printspace-test-key\n");
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        POSIX::setpgid(0, 0);
        open STDOUT, '>', "$dir/lab-sandbox.log";
        open STDERR, '>&', \*STDOUT;
        exec $^X, $t->top . '/tools/lab-sandbox', '--port', $port,
            '--prodigi-key-file', "$dir/prodigi_key",
            '--printspace-key-file', "$dir/printspace_key",
            '--state-dir', "$dir/lab-sandbox", '--quiet'
            or die "exec: $!";
    }
    my $lab = bless { pid => $pid, url => "http://127.0.0.1:$port" },
        'LabSandbox::Lab';
    my $ua = HTTP::Tiny->new(timeout => 5);
    for (1 .. 100) {
        last if $ua->get("$lab->{url}/_sandbox/health")->{success};
        select undef, undef, undef, 0.05;
    }
    push @{$t->{servers}}, $lab;
    return $lab;
}

# a shop with both labs at $lab, print files under $t->dir/prints served
# through signed URLs on port 2, the Prodigi callback and lab admin API
sub conf {
    my ($t, $stripe, $lab, %o) = @_;
    $t->write_file('media.keys', "k1:lab-asset-key-0123456789abcdef\n");
    $t->write_file('callback.secret', "callback-secret-0123456789\n");
    $t->write_file('prints/harbour-dawn.tif', 'TIFF' . ('h' x 5000));
    $t->write_file('prints/moor-rain.tif', 'TIFF' . ('m' x 7000));
    my $extra = $o{http} // '';
    my $server = $o{server} // '';
    # the creativehub API the shop speaks: the earlier one unless asked
    my $protocol = $o{protocol} // 'legacy';
    my $url = $lab->url;
    shop_conf($t, stripe => $stripe, workers => $o{workers}, http => <<"EOF");
    darkroom_jobs_backoff 100ms 1s;
    darkroom_jobs_lease 60s;
    darkroom_fetch_timeout 5s;
    darkroom_prodigi_api $url;
    darkroom_prodigi_key_file %%DIR%%/prodigi_key;
    darkroom_printspace_api $url;
    darkroom_printspace_protocol $protocol;
    darkroom_printspace_key_file %%DIR%%/printspace_key;
    darkroom_lab_asset_url http://127.0.0.1:%%PORT2%%/prints;
    darkroom_lab_asset_keys %%DIR%%/media.keys;
    darkroom_lab_callback_url http://127.0.0.1:%%PORT2%%/labs/prodigi;
    darkroom_lab_callback_secret_file %%DIR%%/callback.secret;
    $extra
    server {
        listen 127.0.0.1:%%PORT2%%;
        location /prints/ {
            darkroom_media on;
            darkroom_media_keys %%DIR%%/media.keys;
            alias %%DIR%%/prints/;
        }
        location = /labs/prodigi { darkroom_lab_callback prodigi; }
        location /admin/api/labs/ { darkroom_lab_admin; }
        location = /static.txt { root %%DIR%%; }
        $server
    }
EOF
    $t->write_file('static.txt', "static\n");
}

# giclee-a3: theprintspace first, Prodigi as fallback; canvas-50: Prodigi
sub mapping {
    my ($t, %o) = @_;
    demo_catalogue($t);
    $t->sql(<<'SQL');
INSERT INTO lab_products (product_id, lab, sku, attributes, priority) VALUES
  ('giclee-a3', 'printspace', 'TPS-GICLEE-A3', '{"PrintOptionId": 301}', 1),
  ('giclee-a3', 'prodigi', 'GLOBAL-FAP-A3', '{}', 2),
  ('canvas-50', 'prodigi', 'GLOBAL-CAN-20X28', '{"wrap": "MirrorWrap"}', 1);
INSERT INTO photo_products VALUES ('moor-rain', 'canvas-50');
SQL
    # the artwork's product in creativehub (theprintspace prints only
    # photos that have one); moor-rain has none
    $t->sql("UPDATE photos SET creativehub_product_id = 35846"
        . " WHERE id = 'harbour-dawn'") if has_column($t, 'photos',
                                                      'creativehub_product_id');
    # the current API's variant of that artwork as a giclée A3
    $t->sql("INSERT INTO creativehub_variants VALUES ('harbour-dawn',"
        . " 'giclee-a3', '7d1e4f0a-a3a3-4c61-9b1e-0c5e2f6a9d01')")
        if has_column($t, 'creativehub_variants', 'variant_id');
}

sub has_column {
    my ($t, $table, $column) = @_;
    return $t->sql_value("SELECT count(*) FROM information_schema.columns"
        . " WHERE table_name = :'p1' AND column_name = :'p2'", $table,
        $column) > 0;
}

my $n = 0;

# checkout and a signed checkout.session.completed: the order is paid
sub paid_order {
    my ($t, $items, %o) = @_;
    my $r = $t->http(POST => '/api/checkout', {
        headers => { 'Content-Type' => 'application/json' },
        content => encode_json({ email => 'ada@example.com', items => [
            map { { photo => $_->[0], product => $_->[1], quantity => $_->[2] } }
                @$items ] }) });
    die "checkout failed: $r->{status} $r->{content}" unless $r->{status} == 201;
    my ($row) = $t->sql("SELECT id, ref, total FROM orders WHERE ref = :'p1'",
        $r->{json}{order});
    my $order = { id => $row->[0], ref => $row->[1], total => $row->[2],
        session => "cs_test_$row->[0]", status_url => $r->{json}{status_url} };
    # the phone checkout collects for the labs (NULL: not collected)
    my $phone = exists $o{phone} ? $o{phone} : '+44 7700 900123';
    $t->sql("UPDATE orders SET shipping_phone = :'p1' WHERE id = :'p2'",
        $phone, $order->{id})
        if defined $phone && has_column($t, 'orders', 'shipping_phone');
    $o{before_paid}->($order) if $o{before_paid};
    my $body = event('checkout.session.completed', session(id => $order->{session},
        order_id => $order->{id}, ref => $order->{ref}, amount => $order->{total}));
    $r = $t->http(POST => '/webhooks/stripe', { headers => {
        'Content-Type' => 'application/json',
        'Stripe-Signature' => signature('whsec_test_one', $body, time) },
        content => $body });
    die "webhook failed: $r->{content}" unless ($r->{json}{result} // '') eq 'paid';
    return $order;
}

sub refund {
    my ($t, $o) = @_;
    my $body = event('charge.refunded', {
        id => "ch_$o->{id}", object => 'charge', amount => $o->{total},
        amount_refunded => $o->{total}, refunded => JSON::PP::true,
        currency => 'gbp', payment_intent => "pi_$o->{session}",
        metadata => { order_id => "$o->{id}" } });
    return $t->http(POST => '/webhooks/stripe', { headers => {
        'Content-Type' => 'application/json',
        'Stripe-Signature' => signature('whsec_test_one', $body, time) },
        content => $body });
}

sub lab_orders {
    my ($t, $o) = @_;
    return $t->sql("SELECT id, lab, status, lab_order_id, attempts,"
        . " coalesce(last_error, '') FROM lab_orders WHERE order_id = :'p1'"
        . " ORDER BY id", $o->{id});
}

sub admin {
    my ($t, $method, $path, $json) = @_;
    return $t->http($method, "/admin/api/labs/$path", {
        port => $t->port(2),
        headers => { Authorization => 'Bearer admin-token-1',
                     'Content-Type' => 'application/json' },
        defined $json ? (content => encode_json($json)) : () });
}

package LabSandbox::Lab;

use HTTP::Tiny;
use JSON::PP;

sub url { $_[0]{url} }

sub control {
    my ($self, $method, $path, $json) = @_;
    my $r = HTTP::Tiny->new(timeout => 30)->request($method,
        "$self->{url}$path", { headers => { 'Content-Type' => 'application/json' },
        defined $json ? (content => encode_json($json)) : () });
    return eval { decode_json($r->{content}) } // $r;
}

sub state { $_[0]->control(GET => '/_sandbox/state') }

# every print file the fake Prodigi downloaded, with its item's SKU and
# sizing (fillPrintArea: crop, fitPrintArea: fit), oldest order first
sub received {
    my ($self) = @_;
    my $dl = $self->state->{downloads} // {};
    return map { my $o = $_; map { { order => $o, %$_ } } @{ $dl->{$o} } }
        sort keys %$dl;
}
sub responses { @{ $_[0]->control(GET => '/_sandbox/responses') } }
sub requests { @{ $_[0]->control(GET => '/_sandbox/requests') } }

sub stop {
    my ($self) = @_;
    return unless $self->{pid};
    kill 'TERM', -$self->{pid};
    kill 'TERM', $self->{pid};
    waitpid $self->{pid}, 0;
    delete $self->{pid};
}

1;
