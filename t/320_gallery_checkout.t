#!/usr/bin/perl
# Buying from a client gallery (issue 14): POST <slug>/quote and
# <slug>/checkout.  The gallery lets the visitor in (its password cookie),
# then the shop's own quote and checkout price the gallery's photos from
# its price sheet (the sheet's price in the gallery's currency, else the
# catalogue's) and write an order that knows its gallery; Stripe's webhook
# pays it as any order.  The shop's own checkout refuses gallery items.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use JSON::PP;
use HTTP::Tiny;
use Compress::Zlib qw(crc32);
use Darkroom::Test qw(wait_for);
use Darkroom::Stripe qw(demo_catalogue sandbox);

my $t = Darkroom::Test->new;
my $port = $t->port(0);

$t->write_file('stripe_key', "sk_test_darkroom\n");
$t->write_file('whsec', "whsec_sandbox_secret\n");
$t->write_file('admin_token', "admin-token-1\n");
$t->write_file('order_keys', "o1:order-key-0123456789abcdef\n");
$t->write_file('keys', "m1:media-key-0123456789abcdef\n");
$t->write_file('cookie_key', "cookie-key-0123456789abcdef\n");

my %files;
for my $n (1 .. 3) {
    $files{"wed/IMG_$n.jpg"} = "original $n\n" x 100;
    $t->write_file("files/wed/IMG_$n.jpg", $files{"wed/IMG_$n.jpg"});
}
$files{'other/IMG_9.jpg'} = "other\n";
$t->write_file('files/other/IMG_9.jpg', $files{'other/IMG_9.jpg'});

my $stripe = 'http://127.0.0.1:' . $t->port(1);

$t->conf(<<"CONF");
%%MAIN%%
events {}
http {
    %%HTTP%%
    darkroom_db "%%DB%%";
    darkroom_db_timeout 3s;
    darkroom_jobs_interval 100ms;
    darkroom_stripe_api $stripe;
    darkroom_stripe_key_file %%DIR%%/stripe_key;
    darkroom_stripe_webhook_secret_file %%DIR%%/whsec;
    darkroom_admin_token_file %%DIR%%/admin_token;
    darkroom_order_keys %%DIR%%/order_keys;
    darkroom_checkout_success_url "http://127.0.0.1:%%PORT0%%/order.html?token={ORDER_TOKEN}";
    darkroom_checkout_cancel_url "http://127.0.0.1:%%PORT0%%/?cancelled={ORDER_REF}";
    darkroom_shipping_countries GB IE US;

    darkroom_gallery_zone 1m interval=500ms;
    darkroom_media_keys %%DIR%%/keys;
    darkroom_gallery_media /media/;
    darkroom_gallery_root %%DIR%%/files;
    darkroom_gallery_cookie_key_file %%DIR%%/cookie_key;
    client_max_body_size 64k;

    server {
        listen 127.0.0.1:%%PORT0%%;
        location = /api/checkout { darkroom_checkout; }
        location = /api/cart/quote { darkroom_cart_quote; }
        location /api/orders/ { darkroom_order_status; }
        location = /webhooks/stripe { darkroom_stripe_webhook; }
        location /admin/api/ { darkroom_admin; }
        location /media/ { darkroom_media on; alias %%DIR%%/files/; }
        location /api/galleries/ {
            darkroom_gallery;
            darkroom_gallery_cancel_url
                "http://127.0.0.1:%%PORT0%%/g/{GALLERY}?cancelled={ORDER_REF}";
        }
        location /api/admin/galleries/ { darkroom_gallery_admin; }
    }
}
CONF

my $sb = sandbox($t, webhook => "http://127.0.0.1:$port/webhooks/stripe");
demo_catalogue($t);
$t->sql("UPDATE products SET print_width_mm = 297, print_height_mm = 420"
    . " WHERE id = 'giclee-a3'");
$t->start;

my $admin = { Authorization => 'Bearer admin-token-1' };

sub shop_admin {
    my ($method, $path, $body) = @_;
    return $t->http($method, "/admin/api/$path", { headers => $admin,
        defined $body ? (content => encode_json($body)) : () });
}

sub gadmin {
    my ($method, $path, $body) = @_;
    return $t->http($method, "/api/admin/galleries/$path", {
        headers => $admin,
        defined $body ? (content => encode_json($body)) : () });
}

my $cookie = '';

sub api {
    my ($path, $body, %h) = @_;
    my %headers = ('Content-Type' => 'application/json', %h);
    $headers{Cookie} //= $cookie if $cookie;
    return $t->http(POST => "/api/galleries/$path", { headers => \%headers,
        content => ref $body ? encode_json($body) : $body });
}

sub err { my ($r) = @_; return ($r->{status}, $r->{json}{error}{code} // '') }

# --- a price sheet, a gallery selling from it ----------------------------------
my $r = shop_admin(PUT => 'price-sheets/wedding-2026', { name => 'Wedding 2026',
    items => [ { product => 'giclee-a3', position => 1,
                 prices => { GBP => 3900 } },
               { product => 'digital', position => 2 } ] });
is($r->{status}, 200, 'price sheet written') or diag $r->{content};

$r = gadmin(POST => '', { slug => 'wed', title => 'Ada & Tom',
    password => 'open sesame', price_sheet => 'wedding-2026',
    currency => 'GBP' });
is($r->{status}, 200, 'gallery created with its sheet') or diag $r->{content};
is($r->{json}{gallery}{price_sheet}, 'wedding-2026', 'the gallery names it');
is($r->{json}{gallery}{currency}, 'GBP', 'and its currency');

my @photos = map {
    my $p = "wed/IMG_$_.jpg";
    { original => $p, bytes => length $files{$p}, crc32 => crc32($files{$p}),
      name => "IMG_$_.jpg", width => 6000, height => 4000 }
} 1 .. 3;
$r = gadmin(POST => 'wed/photos', { photos => \@photos });
is($r->{status}, 200, 'photos added') or diag $r->{content};
my ($p1, $p2, $p3) = map { $_->{id} } @{$r->{json}{photos}};

is(gadmin(POST => '', { slug => 'other' })->{status}, 200, 'another gallery');
$r = gadmin(POST => 'other/photos', { photos => [ { original => 'other/IMG_9.jpg',
    bytes => length $files{'other/IMG_9.jpg'},
    crc32 => crc32($files{'other/IMG_9.jpg'}), name => 'IMG_9.jpg' } ] });
my $other_photo = $r->{json}{photos}[0]{id};
ok($other_photo, 'with a photo of its own');

my @cart = ({ photo => $p1, product => 'giclee-a3', quantity => 2,
              sizing => 'fit' },
            { photo => $p2, product => 'digital', quantity => 1 });

# --- the password first ---------------------------------------------------------
is_deeply([ err(api('wed/quote', { items => \@cart })) ], [401, 'locked'],
    'quote: no cookie, 401 locked');
is_deeply([ err(api('wed/checkout', { email => 'ada@example.com',
    items => \@cart })) ], [401, 'locked'], 'checkout: no cookie, 401 locked');
is($t->sql_value('SELECT count(*) FROM orders'), 0, 'no order written');

$r = api('wed/unlock', { password => 'open sesame' });
is($r->{status}, 200, 'unlocked');
($cookie) = ($r->{headers}{'set-cookie'} // '') =~ /^([^;]+)/;

# --- the quote ------------------------------------------------------------------
$r = api('wed/quote', { items => \@cart });
is($r->{status}, 200, 'quote') or diag $r->{content};
my $q = $r->{json};
is($q->{currency}, 'GBP', 'in the gallery currency');
is($q->{lines}[0]{unit_amount}, 3900, 'the sheet price, not the catalogue 4500');
is($q->{lines}[1]{unit_amount}, 1500, 'no sheet price: the catalogue price');
is($q->{lines}[0]{photo}, "gallery:$p1", 'line photo names the gallery photo');
is($q->{lines}[0]{title}, 'IMG_1.jpg', 'titled with the file name');
is($q->{lines}[0]{sizing}, 'fit', 'the sizing chosen') ;
is($q->{subtotal}, 2 * 3900 + 1500, 'subtotal');
like($r->{headers}{'cache-control'} // '', qr/no-store/, 'not cached');
is($t->sql_value('SELECT count(*) FROM orders'), 0, 'a quote writes nothing');

# --- refusals --------------------------------------------------------------------
my %bad = (
    'a photo of another gallery' => [ [{ photo => $other_photo,
        product => 'giclee-a3', quantity => 1 }], 400, 'unknown_photo' ],
    'no such photo' => [ [{ photo => 999999, product => 'giclee-a3',
        quantity => 1 }], 400, 'unknown_photo' ],
    'a product not on the sheet' => [ [{ photo => $p1,
        product => 'canvas-50', quantity => 1 }], 400, 'not_offered' ],
    'no such product' => [ [{ photo => $p1, product => 'nope',
        quantity => 1 }], 400, 'not_offered' ],
    'a shop photo (a string)' => [ [{ photo => 'harbour-dawn',
        product => 'giclee-a3', quantity => 1 }], 400, 'invalid_items' ],
    'a bad sizing' => [ [{ photo => $p1, product => 'giclee-a3',
        quantity => 1, sizing => 'stretch' }], 400, 'invalid_sizing' ],
    'a bad quantity' => [ [{ photo => $p1, product => 'giclee-a3',
        quantity => 0 }], 400, 'invalid_quantity' ],
    'an empty cart' => [ [], 400, 'invalid_items' ],
    'a selection that is no list of this gallery' => [
        [{ selection => 1 }], 400, 'unknown_list' ],
);
for my $name (sort keys %bad) {
    my ($items, $status, $code) = @{$bad{$name}};
    for my $route (qw(quote checkout)) {
        $r = api("wed/$route", { email => 'ada@example.com', items => $items });
        is($r->{status}, $status, "$route: $name: $status");
        is($r->{json}{error}{code}, $code, "$route: $name: $code") if $code;
    }
}
is_deeply([ err(api('wed/quote', { items => \@cart, currency => 'USD' })) ],
    [400, 'invalid_currency'], 'another currency than the gallery\'s: 400');
is(api('wed/quote', { items => \@cart, currency => 'gbp' })->{status}, 200,
    'the gallery\'s own currency may be repeated');
is_deeply([ err(api('wed/quote', '{"items":')) ], [400, 'invalid_json'],
    'bad JSON: 400');
is_deeply([ err(api('nope/quote', { items => \@cart })) ], [404, 'not_found'],
    'no such gallery: 404');
is_deeply([ err(api('wed/checkout', { items => \@cart })) ],
    [400, 'invalid_email'], 'checkout without an email: 400');
is($t->sql_value('SELECT count(*) FROM orders'), 0, 'nothing written by refusals');

# a gallery without a sheet sells nothing
$r = api('other/quote', { items => [{ photo => $other_photo,
    product => 'giclee-a3', quantity => 1 }] }, Cookie => '');
is_deeply([ err($r) ], [400, 'no_price_sheet'], 'no sheet: 400 no_price_sheet');

# --- the gallery's currency --------------------------------------------------------
is(gadmin(POST => 'wed', { currency => 'USD' })->{status}, 200, 'now in USD');
$r = api('wed/quote', { items => \@cart });
is($r->{json}{currency}, 'USD', 'quoted in USD');
is($r->{json}{lines}[0]{unit_amount}, 5500,
    'no sheet price in USD: the catalogue\'s USD price');
shop_admin(PUT => 'price-sheets/wedding-2026', { name => 'Wedding 2026',
    items => [ { product => 'giclee-a3', prices => { GBP => 3900, USD => 4900 } },
               { product => 'digital' } ] });
$r = api('wed/quote', { items => \@cart });
is($r->{json}{lines}[0]{unit_amount}, 4900, 'the sheet\'s USD price');
is(gadmin(POST => 'wed', { currency => undef })->{status}, 200,
    'no currency of its own');
$r = api('wed/quote', { items => \@cart });
is($r->{json}{currency}, 'GBP', 'the shop\'s currency');
is($r->{json}{lines}[0]{unit_amount}, 3900, 'at the sheet\'s GBP price');
gadmin(POST => 'wed', { currency => 'GBP' });

# --- checkout, idempotent ----------------------------------------------------------
my %key = ('Idempotency-Key' => 'gallery-checkout-0001');
$r = api('wed/checkout', { email => 'ada@example.com', items => \@cart }, %key);
is($r->{status}, 201, 'checkout') or diag $r->{content};
my $ref = $r->{json}{order};
like($ref, qr/^DR-\d+$/, 'an order');
like($r->{json}{checkout_url}, qr{/pay/cs_}, 'a payment page');
ok($r->{json}{status_url}, 'a status link');
my $first = $r->{json};

$r = api('wed/checkout', { email => 'ada@example.com', items => \@cart }, %key);
is($r->{status}, 200, 'the same key again: 200');
is($r->{json}{order}, $ref, 'the same order');
is($r->{json}{checkout_url}, $first->{checkout_url}, 'the same payment page');
$r = api('wed/checkout', { email => 'ada@example.com',
    items => [ $cart[0] ] }, %key);
is_deeply([ err($r) ], [422, 'idempotency_key_reused'],
    'the same key with another cart: 422');
is($t->sql_value('SELECT count(*) FROM orders'), 1, 'one order');

my ($order_id, $gallery_id) = @{($t->sql(
    "SELECT o.id, o.gallery_id FROM orders o WHERE o.ref = :'p1'", $ref))[0]};
is($gallery_id, $t->sql_value("SELECT id FROM galleries WHERE slug = 'wed'"),
    'the order records its gallery');
is_deeply([ map { join '|', map { $_ // '' } @$_ } $t->sql(
    "SELECT line, photo_id, gallery_photo_id, sizing, product_id, unit_amount,"
    . " title FROM order_items WHERE order_id = :'p1' ORDER BY line", $order_id) ],
    [ "1|gallery:$p1|$p1|fit|giclee-a3|3900|IMG_1.jpg",
      "2|gallery:$p2|$p2||digital|1500|IMG_2.jpg" ],
    'its lines: the gallery photo, the sizing, the sheet price');
is($t->sql_value("SELECT detail->>'gallery' FROM order_events"
    . " WHERE order_id = :'p1' ORDER BY id LIMIT 1", $order_id), 'wed',
    'the first event names the gallery');
is($t->sql_value("SELECT total FROM orders WHERE id = :'p1'", $order_id),
    2 * 3900 + 1500 + $t->sql_value("SELECT shipping_amount FROM orders"
    . " WHERE id = :'p1'", $order_id), 'total: the lines and shipping');

$r = gadmin(GET => 'wed');
is($r->{status}, 200, 'gallery admin');
is_deeply([ map { $_->{ref} } @{$r->{json}{orders}} ], [$ref],
    'the gallery admin lists the order');
is($r->{json}{orders}[0]{status}, 'pending_payment', 'with its status');
is($r->{json}{orders}[0]{currency}, 'GBP', 'and currency');

# --- the shop's own checkout refuses gallery items -----------------------------------
for my $item ({ photo => $p1, product => 'giclee-a3', quantity => 1 },
              { photo => "$p1", product => 'giclee-a3', quantity => 1 },
              { selection => 1 }) {
    $r = $t->http(POST => '/api/checkout', {
        headers => { 'Content-Type' => 'application/json' },
        content => encode_json({ email => 'ada@example.com', items => [$item] }) });
    is($r->{status}, 400, 'shop checkout refuses ' . encode_json($item));
}
is($t->sql_value('SELECT count(*) FROM orders'), 1, 'and writes nothing');

# --- paid through Stripe's webhook, as any order ---------------------------------------
my ($sid) = $first->{checkout_url} =~ m{/pay/(cs_[A-Za-z0-9_]+)$};
my $session = HTTP::Tiny->new->get("$stripe/v1/checkout/sessions/$sid",
    { headers => { Authorization => 'Bearer sk_test_darkroom' } });
is(eval { decode_json($session->{content})->{cancel_url} },
    "http://127.0.0.1:$port/g/wed?cancelled=$ref",
    'Stripe\'s Cancel returns to the gallery (darkroom_gallery_cancel_url)');
my $page = HTTP::Tiny->new->get($first->{checkout_url});
like($page->{content}, qr/IMG_1\.jpg/, 'the pay page names the gallery photo');
my $pay = $sb->control(POST => "/_sandbox/pay/$sid", { action => 'pay' });
ok(wait_for(sub { $t->sql_value("SELECT status FROM orders WHERE ref = :'p1'",
    $ref) eq 'paid' }, 10), 'paid by the webhook');
$r = shop_admin(GET => "orders/$ref");
is($r->{json}{paid_amount}, $r->{json}{total}, 'paid the total');
is(scalar(grep { $_->{kind} eq 'fulfil_order' } @{$r->{json}{jobs}}), 1,
    'fulfilment enqueued once');
is(gadmin(GET => 'wed')->{json}{orders}[0]{status}, 'paid',
    'the gallery admin shows it paid');
my ($status_path) = $first->{status_url} =~ m{(/api/orders/[0-9a-f]{32})};
$r = $t->http(GET => $status_path // '/api/orders/none');
is($r->{status}, 200, 'the buyer\'s order page');
is($r->{json}{status}, 'paid', 'shows it paid');

# --- an expired or withdrawn gallery sells nothing ------------------------------------
$t->sql("UPDATE galleries SET expires_at = now() - interval '1 day'"
    . " WHERE slug = 'wed'");
is_deeply([ err(api('wed/quote', { items => \@cart })) ],
    [410, 'gallery_expired'], 'expired: 410');
$t->sql("UPDATE galleries SET expires_at = NULL, revoked_at = now()"
    . " WHERE slug = 'wed'");
is(api('wed/checkout', { email => 'ada@example.com', items => \@cart })->{status},
    410, 'revoked: 410');
is($t->sql_value('SELECT count(*) FROM orders'), 1, 'no order');

# --- GET is not a route ----------------------------------------------------------------
$t->sql("UPDATE galleries SET revoked_at = NULL WHERE slug = 'wed'");
is($t->http(GET => '/api/galleries/wed/quote')->{status}, 405, 'GET quote: 405');

# --- a photo too small for A3, and the extra photos of a selection ---------------
$r = gadmin(POST => 'wed/photos', { photos => [ { original => 'wed/IMG_3.jpg',
    bytes => length $files{'wed/IMG_3.jpg'},
    crc32 => crc32($files{'wed/IMG_3.jpg'}), name => 'IMG_3.jpg',
    width => 800, height => 600 } ] });
is($r->{status}, 200, 'a photo now 800 x 600');
my $orders = $t->sql_value('SELECT count(*) FROM orders');
for my $route (qw(quote checkout)) {
    $r = api("wed/$route", { email => 'ada@example.com', items => [
        { photo => $p3, product => 'giclee-a3', quantity => 1 } ] });
    is_deeply([ err($r) ], [409, 'photo_too_small'], "$route: too small, 409");
    like($r->{json}{error}{message},
        qr/^Item 1: "IMG_3\.jpg" \(800 x 600 px\) prints at most/,
        'print_check had the photo\'s pixel size and name');
}
is($t->sql_value('SELECT count(*) FROM orders'), $orders, 'no order');

$t->sql("UPDATE galleries SET selection_limit = 1, extra_photo_amount = 500"
    . " WHERE slug = 'wed'");
$t->sql("INSERT INTO gallery_visitors (gallery_id, name, email)"
    . " SELECT id, 'Ada', 'ada\@example.com' FROM galleries WHERE slug = 'wed'");
$t->sql("INSERT INTO gallery_lists (gallery_id, visitor_id, name)"
    . " SELECT gallery_id, id, 'Favourites' FROM gallery_visitors");
my $list = $t->sql_value('SELECT id FROM gallery_lists');
$t->sql("INSERT INTO gallery_list_photos (list_id, photo_id)"
    . " SELECT :'p1', id FROM gallery_photos g WHERE g.gallery_id ="
    . " (SELECT id FROM galleries WHERE slug = 'wed')", $list);
$r = api('wed/checkout', { email => 'ada@example.com',
    items => [ $cart[0], { selection => $list + 0 } ] });
is($r->{status}, 201, 'a selection line bought with a print')
    or diag $r->{content};
is_deeply([ map { join '|', map { $_ // '' } @$_ } $t->sql(
    "SELECT i.line, i.photo_id, i.product_id, i.kind, i.quantity, i.amount,"
    . " i.gallery_photo_id FROM order_items i JOIN orders o ON o.id = i.order_id"
    . " WHERE o.ref = :'p1' ORDER BY i.line", $r->{json}{order}) ],
    [ "1|gallery:$p1|giclee-a3|print|2|7800|$p1",
      "2|selection:$list|selection|selection|2|1000|" ],
    'the extras of a selection (3 photos, 1 included) are a line');

# --- a request handed to the shop ends as any: its connection is kept alive ------
my $ua = HTTP::Tiny->new(keep_alive => 1, timeout => 5);
my @kept;
for my $body ({ items => \@cart }, { items => [] }, { items => \@cart }) {
    my $res = $ua->request(POST => "http://127.0.0.1:$port/api/galleries/wed/quote",
        { headers => { Cookie => $cookie, 'Content-Type' => 'application/json' },
          content => encode_json($body) });
    push @kept, $res->{status};
}
is_deeply(\@kept, [200, 400, 200],
    'answers and refusals on one kept-alive connection');
$t->stop;
unlike($t->error_log, qr/open socket|\[alert\]/,
    'no request left open when nginx stops');

done_testing;
