#!/usr/bin/perl
# The admin API: bearer tokens (two, for rotation) compared in constant
# time, the catalogue written and read, orders listed and filtered, marked
# for review, jobs listed and retried; bad input is a 4xx that writes
# nothing.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use JSON::PP;
use Darkroom::Test qw(wait_for);
use Darkroom::Stripe qw(demo_catalogue shop_conf fake_api);

my $t = Darkroom::Test->new;
my $stripe = fake_api($t);
shop_conf($t, stripe => $stripe->url);
$t->start;

sub admin {
    my ($method, $path, $body, $token) = @_;
    return $t->http($method, "/admin/api/$path", {
        headers => { Authorization => 'Bearer ' . ($token // 'admin-token-1'),
                     'Content-Type' => 'application/json' },
        defined $body ? (content => ref $body ? encode_json($body) : $body) : () });
}

# --- authentication -----------------------------------------------------------
my $r = $t->http(GET => '/admin/api/products');
is($r->{status}, 401, 'no token: 401');
is($r->{headers}{'www-authenticate'}, 'Bearer realm="darkroom"', 'challenge');
is($r->{json}{error}{code}, 'unauthorized', 'JSON error');
is(admin(GET => 'products', undef, 'admin-token-3')->{status}, 401, 'wrong token');
is(admin(GET => 'products', undef, 'admin-token-')->{status}, 401, 'prefix of a token');
is(admin(GET => 'products', undef, 'admin-token-11')->{status}, 401, 'longer token');
is($t->http(GET => '/admin/api/products',
    { headers => { Authorization => 'Basic YWRtaW4tdG9rZW4tMQ==' } })->{status},
    401, 'Basic is not Bearer');
is(admin(GET => 'products', undef, 'admin-token-1')->{status}, 200, 'first token');
is(admin(GET => 'products', undef, 'admin-token-2')->{status}, 200,
    'second token (rotation)');
like($t->error_log, qr/admin API refused a bad token/, 'refusals logged');
unlike($t->error_log, qr/admin-token-3/, 'the token itself is not');

# --- the catalogue ---------------------------------------------------------------
$r = admin(POST => 'products', { id => 'giclee-a4', name => 'Giclée print, A4',
    kind => 'print', medium => 'Photo Rag', size => 'A4',
    prices => { GBP => 3000, USD => 3800 } });
is($r->{status}, 200, 'product created') or diag $r->{content};
is_deeply($r->{json}{prices}, { GBP => 3000, USD => 3800 }, 'with prices');
$r = admin(POST => 'products', { id => 'giclee-a4', prices => { GBP => 3200 } });
is($r->{json}{name}, 'Giclée print, A4', 'update keeps what is not given');
is_deeply($r->{json}{prices}, { GBP => 3200 }, 'prices replaced');

$r = admin(POST => 'photos', { id => 'sea-fog', title => 'Sea Fog',
    image => '/images/sea-fog.jpg', print => 'prints/sea-fog.tif',
    products => ['giclee-a4'] });
is($r->{status}, 200, 'photo created') or diag $r->{content};
is_deeply($r->{json}{products}, ['giclee-a4'], 'sold as');

$r = $t->http(GET => '/api/catalogue');
is($r->{json}{photos}[0]{id}, 'sea-fog', 'visible in the public catalogue');

my $products = $t->sql_value('SELECT count(*) FROM products');
my @bad = (
    [ products => '{"id":', 'invalid_json' ],
    [ products => '[{"id":"x"}]', 'invalid_json' ],
    [ products => { id => 'Bad Id' }, 'invalid_product' ],
    [ products => { id => 'x', kind => 'poster' }, 'invalid_product' ],
    [ products => { id => 'x', prices => { GBP => -5 } }, 'invalid_price' ],
    [ products => { id => 'x', prices => { GBP => 10.5 } }, 'invalid_price' ],
    [ products => { id => 'x', prices => { gbp => 100 } }, 'invalid_price' ],
    [ products => { id => 'x', prices => [100] }, 'invalid_price' ],
    [ photos => { id => 'y', products => ['nope'] }, 'unknown_product' ],
    [ photos => { id => 'y', print => '../../etc/passwd' }, 'invalid_photo' ],
    [ photos => { id => 'y', print => '/etc/passwd' }, 'invalid_photo' ],
    [ photos => { id => 'y', title => '' }, 'invalid_photo' ],
);
for my $b (@bad) {
    my ($what, $body, $code) = @$b;
    $r = admin(POST => $what, $body);
    is($r->{status}, 400, "bad $what: 400");
    is($r->{json}{error}{code}, $code, "bad $what: $code") or diag $r->{content};
}
is($t->sql_value('SELECT count(*) FROM products'), $products, 'nothing written');
is($t->sql_value("SELECT count(*) FROM photos WHERE id IN ('x', 'y')"), 0,
    'no photo written');

$r = admin(GET => 'products');
is(scalar @{$r->{json}{products}}, 1, 'products listed');
$r = admin(GET => 'photos');
is($r->{json}{photos}[0]{print}, 'prints/sea-fog.tif', 'photos listed with print file');

# --- orders ------------------------------------------------------------------------
demo_catalogue($t);
for my $email (qw(ada@example.com bo@example.com ada@example.com)) {
    $t->http(POST => '/api/checkout', { headers => { 'Content-Type' => 'application/json' },
        content => encode_json({ email => $email, items => [
            { photo => 'harbour-dawn', product => 'giclee-a3', quantity => 1 } ] }) });
}
$r = admin(GET => 'orders');
is(scalar @{$r->{json}{orders}}, 3, 'orders listed');
$r = admin(GET => 'orders?email=ADA%40example.com');
is(scalar @{$r->{json}{orders}}, 2, 'filtered by email, case-insensitive');
$r = admin(GET => 'orders?status=paid');
is(scalar @{$r->{json}{orders}}, 0, 'filtered by status');
$r = admin(GET => 'orders?limit=1');
is(scalar @{$r->{json}{orders}}, 1, 'limit');
$r = admin(GET => 'orders?since=2000-01-01&until=2999-01-01');
is(scalar @{$r->{json}{orders}}, 3, 'date range');
$r = admin(GET => 'orders?since=yesterday-ish');
is($r->{status}, 400, 'bad date: 400');

my $ref = $r = admin(GET => 'orders')->{json}{orders}[0]{order};
$r = admin(GET => "orders/$ref");
is($r->{json}{order}, $ref, 'one order');
is($r->{json}{events}[0]{to}, 'pending_payment', 'with its events');
is($r->{json}{jobs}[0]{kind}, 'checkout_reconcile', 'and its jobs');
is(admin(GET => 'orders/DR-999999')->{status}, 404, 'unknown order: 404');

$r = admin(POST => "orders/$ref/review", { reason => 'Customer phoned' });
is($r->{status}, 200, 'marked for review');
is($r->{json}{status}, 'needs_review', 'needs_review');
is($r->{json}{review_reason}, 'Customer phoned', 'with the reason');
is($r->{json}{events}[-1]{cause}, 'admin', 'caused by the admin');
$r = admin(POST => "orders/$ref/review", {});
is($r->{status}, 409, 'already under review: 409');
$r = admin(POST => "orders/$ref/refund");
is($r->{status}, 409, 'an unpaid order cannot be refunded');
is($r->{json}{error}{code}, 'not_paid', 'not_paid');
$r = admin(POST => "orders/$ref/refund", '[5000]');
is($r->{json}{error}{code}, 'invalid_json',
   'a refund body that is not an object is refused, not read as "all"');

# --- jobs ----------------------------------------------------------------------------
my $dead = $t->sql_value("INSERT INTO jobs (kind, payload, dead, attempts, last_error)"
    . " VALUES ('http_post', '{\"url\":\"http://127.0.0.1:9/\"}', true, 10, 'gone')"
    . " RETURNING id");
$r = admin(GET => 'jobs?state=dead');
is($r->{json}{jobs}[0]{id}, $dead, 'dead jobs listed');
is($r->{json}{jobs}[0]{last_error}, 'gone', 'with the error');
$r = admin(POST => "jobs/$dead/retry");
is($r->{status}, 200, 'retried');
is($t->sql_value("SELECT dead FROM jobs WHERE id = :'p1'", $dead), 'f',
    'alive again');
is(admin(POST => 'jobs/999999/retry')->{status}, 409, 'unknown job: 409');

# --- routing ---------------------------------------------------------------------------
is(admin(GET => 'nothing')->{status}, 404, 'unknown resource: 404');
is(admin(DELETE => 'products')->{status}, 405, 'DELETE: 405');
is(admin(GET => 'orders/a/b/c')->{status}, 404, 'too deep: 404');

done_testing;
