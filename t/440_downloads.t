#!/usr/bin/perl
# Digital delivery: a paid order's digital lines get download grants and a
# delivery email job in the paying transaction; the order page lists them
# with signed links; a link serves the original with Content-Disposition,
# counts each download from byte 0 (not HEAD, not a Range continuation),
# and refuses forged, expired and exhausted ones.  A physical-only order
# gets none.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use HTTP::Tiny;
use Digest::SHA qw(hmac_sha256);
use MIME::Base64 qw(encode_base64url);
use Darkroom::Test;
use Darkroom::Downloads qw(download_shop paid_digital_order);

my $t = Darkroom::Test->new;
download_shop($t, limit => 3);
$t->start;

my $o = paid_digital_order($t, ['harbour-dawn', 'giclee-a3', 1],
    ['moor-rain', 'digital', 1], ['harbour-dawn', 'digital', 1]);
is($o->{result}, 'paid', 'the order is paid');

# --- grants and the delivery email, written with the payment ----------------
my @g = $t->sql("SELECT line, photo_id, file, name, max_downloads, used,"
    . " expires_at > now() + interval '29 days',"
    . " expires_at < now() + interval '31 days', revoked_at IS NULL"
    . " FROM download_grants WHERE order_id = :'p1' ORDER BY line", $o->{id});
is(scalar @g, 2, 'one grant per digital line, none for the print');
is_deeply($g[0], [2, 'moor-rain', 'moor-rain.tif', 'moor-rain.tif', 3, 0,
    't', 't', 't'], 'line 2: its original, the configured limit, 30 days');
is_deeply([ @{$g[1]}[0 .. 3] ], [3, 'harbour-dawn', 'harbour-dawn.tif',
    'harbour-dawn.tif'], 'line 3');
is($t->sql_value("SELECT count(*) FROM jobs WHERE kind = 'email'"
    . " AND payload->>'template' = 'delivery'"
    . " AND dedupe_key = 'email:delivery:' || :'p1'", $o->{id}), 1,
    'one delivery email job, with its dedupe key');

# paying again (a replayed event) makes nothing twice
$t->sql("SELECT download_grant_order(:'p1', 'test')", $o->{id});
is($t->sql_value("SELECT count(*) FROM download_grants WHERE order_id = :'p1'",
    $o->{id}), 2, 'granting again adds nothing');

# --- the order page ----------------------------------------------------------
my $r = $t->http(GET => "/api/orders/$o->{token}");
is($r->{status}, 200, 'order page');
my $d = $r->{json}{downloads};
is(scalar @$d, 2, 'two downloads listed');
is_deeply([ sort keys %{$d->[0]} ],
    [qw(expires_at expires_display line name remaining title url)],
    'each: line, title, name, url, expires_at, remaining');
is($d->[0]{line}, 2, 'line');
is($d->[0]{title}, 'Rain on the Moor', 'title');
is($d->[0]{name}, 'moor-rain.tif', 'file name');
is($d->[0]{remaining}, 3, 'remaining');
my $port2 = $t->port(2);
like($d->[0]{url}, qr{^http://127\.0\.0\.1:$port2/download/\d+/[0-9a-f]{16}/moor-rain\.tif\?exp=\d+&kid=dk2&sig=[A-Za-z0-9_-]{43}$},
    'a signed link, by the first key');

my $ua = HTTP::Tiny->new(max_redirect => 0, keep_alive => 0, timeout => 15);
my $url = $d->[0]{url};

# the media link format (docs/signed-urls.md), computed independently
my ($path, $exp, $sig) = $url =~ m{^http://[^/]+(/[^?]+)\?exp=(\d+)&kid=dk2&sig=(.+)$};
is($sig, encode_base64url(hmac_sha256("darkroom-media-v1\n$path\nexp=$exp\nkid=dk2\n",
    'download-key-two-0123456789abcdef')), 'signed in the media link format');
is($exp, $t->sql_value("SELECT round(extract(epoch FROM expires_at))::bigint"
    . " FROM download_grants WHERE order_id = :'p1' AND line = 2", $o->{id}),
    'exp is the grant\'s expiry');

sub used { $t->sql_value("SELECT used FROM download_grants WHERE order_id = :'p1'"
    . " AND line = :'p2'", $o->{id}, $_[0]) }

# --- serving -----------------------------------------------------------------
$r = $ua->get($url);
is($r->{status}, 200, 'the link downloads');
is($r->{content}, 'MOOR' . ('m' x 3000), 'the right bytes');
is($r->{headers}{'content-disposition'},
    q{attachment; filename="moor-rain.tif"; filename*=UTF-8''moor-rain.tif},
    'as an attachment with its file name');
is(used(2), 1, 'counted once');

$r = $ua->request(HEAD => $url);
is($r->{status}, 200, 'HEAD answers');
is($r->{headers}{'content-length'}, 3004, 'with the length');
is(used(2), 1, 'HEAD does not count');

$r = $ua->get($url, { headers => { Range => 'bytes=100-199' } });
is($r->{status}, 206, 'a Range continuation');
is(length $r->{content}, 100, 'the range');
is(used(2), 1, 'a continuation does not count');

$r = $ua->get($url, { headers => { Range => 'bytes=0-99' } });
is($r->{status}, 206, 'a Range from byte 0');
is(used(2), 2, 'counts');

$r = $ua->get($url);
is($r->{status}, 200, 'the third download');
is(used(2), 3, 'counted');

$r = $ua->get($url);
is($r->{status}, 410, 'the fourth: the limit is reached');
is(eval { JSON::PP::decode_json($r->{content})->{error}{code} },
    'download_limit_reached', 'download_limit_reached');
is(used(2), 3, 'nothing counted');

$r = $ua->get($url, { headers => { Range => 'bytes=10-' } });
is($r->{status}, 206, 'a continuation of a counted download still resumes');

$r = $t->http(GET => "/api/orders/$o->{token}");
is($r->{json}{downloads}[0]{remaining}, 0, 'the order page shows none left');

# the other line is its own grant, with its own file
$r = $ua->get($d->[1]{url});
is($r->{status}, 200, 'line 3 downloads');
like($r->{content}, qr/^HARBOUR/, 'its own original');

# --- refused links -------------------------------------------------------------
my $u2 = $d->[1]{url};
(my $forged = $u2) =~ s/sig=([A-Za-z0-9_-])/'sig=' . ($1 eq 'A' ? 'B' : 'A')/e;
$r = $ua->get($forged);
is($r->{status}, 403, 'a forged signature: 403');
like($r->{content}, qr/"bad_signature"/, 'bad_signature');

(my $other = $u2) =~ s{/(\d+)/}{'/' . ($1 + 1000) . '/'}e;
$r = $ua->get($other);
is($r->{status}, 403, 'another grant id under the same signature: 403');

(my $noexp = $u2) =~ s/exp=\d+/exp=9999999999/;
$r = $ua->get($noexp);
is($r->{status}, 403, 'a longer expiry: 403');

($r = $ua->get("http://127.0.0.1:$port2/download/1/0123456789abcdef/x.tif"));
is($r->{status}, 403, 'no signature: 403');

$r = $ua->post($u2);
is($r->{status}, 405, 'POST: 405');

# --- expiry, from the database ------------------------------------------------
$t->sql("UPDATE download_grants SET expires_at = now() - interval '1 minute'"
    . " WHERE order_id = :'p1' AND line = 3", $o->{id});
$r = $ua->get($u2);
is($r->{status}, 410, 'a grant expired in the database: 410');
like($r->{content}, qr/"link_expired"/, 'link_expired');

# --- a physical-only order -----------------------------------------------------
my $p = paid_digital_order($t, ['harbour-dawn', 'giclee-a3', 1]);
is($p->{result}, 'paid', 'a print order is paid');
is($t->sql_value("SELECT count(*) FROM download_grants WHERE order_id = :'p1'",
    $p->{id}), 0, 'it gets no grants');
is($t->sql_value("SELECT count(*) FROM jobs WHERE dedupe_key ="
    . " 'email:delivery:' || :'p1'", $p->{id}), 0, 'and no delivery email');
$r = $t->http(GET => "/api/orders/$p->{token}");
is_deeply($r->{json}{downloads}, [], 'its page lists no downloads');

# --- an unpaid order lists none ------------------------------------------------
my ($row) = $t->sql("SELECT order_id FROM checkout_create("
    . "'[{\"photo\":\"moor-rain\",\"product\":\"digital\",\"quantity\":1}]',"
    . " 'bo\@example.com', 'GBP', 'GB', NULL, NULL, 'unpaid-hash',"
    . " now() + interval '1 hour', now() + interval '1 day')");
is($t->sql_value("SELECT count(*) FROM download_grants WHERE order_id = :'p1'",
    $row->[0]), 0, 'an unpaid order has no grants');

# --- a photo without an original ------------------------------------------------
$t->sql("UPDATE photos SET print_path = NULL WHERE id = 'moor-rain'");
my $m = paid_digital_order($t, ['moor-rain', 'digital', 1]);
is($t->sql_value("SELECT count(*) FROM download_grants WHERE order_id = :'p1'",
    $m->{id}), 0, 'no original: no grant');
like($t->sql_value("SELECT detail::text FROM order_events WHERE order_id = :'p1'"
    . " AND detail ? 'downloads_missing'", $m->{id}), qr/downloads_missing/,
    'and the history says so');

ok($t->check_sanitizer, 'no sanitizer reports');
done_testing;
