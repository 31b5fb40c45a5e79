#!/usr/bin/perl

# darkroom: private client galleries.  The admin API creates a gallery with
# a password and a download PIN (scrypt hashes in the database) and adds
# photos; the client API unlocks it (HMAC-signed cookie), lists photos with
# signed proof URLs, marks favourites, and hands out signed original URLs
# and a ZIP behind the PIN.  Wrong passwords and PINs lock a client out;
# a tampered cookie is refused; an expired gallery answers 410 with its
# expiry date; a rotated gallery's cookies stop.

use strict;
use warnings;

use lib 't/lib';
use Darkroom::Test qw(wait_for);
use Compress::Zlib qw(crc32);
use Digest::SHA qw(sha256_hex);
use JSON::PP;
use Test::More;

my $t = Darkroom::Test->new;

$t->write_file('keys', "m1:media-key-0123456789abcdef\n");
$t->write_file('cookie_key', "cookie-key-0123456789abcdef\n");
$t->write_file('admin_token', "gallery-admin-token\n");

my %files;
for my $n (1 .. 3) {
    my $data = join '', map { chr(($_ * 7 + $n) % 256) } 1 .. 20000 + $n;
    $files{"wed/IMG_$n.jpg"} = $data;
    $t->write_file("files/wed/IMG_$n.jpg", $data);
    $t->write_file("files/wed/proofs/IMG_$n.jpg", "proof $n\n");
}

$t->conf(<<'EOF');
%%MAIN%%
thread_pool dr threads=4;
events {}
http {
    %%HTTP%%
    darkroom_db "%%DB%%";
    darkroom_db_pool dr;
    darkroom_jobs off;
    darkroom_admin_token_file %%DIR%%/admin_token;

    darkroom_gallery_zone 1m interval=500ms;
    darkroom_media_keys %%DIR%%/keys;
    darkroom_gallery_media /media/;
    darkroom_gallery_root %%DIR%%/files;
    darkroom_gallery_cookie_key_file %%DIR%%/cookie_key;
    darkroom_gallery_lockout 3 10m 60s;

    server {
        listen 127.0.0.1:%%PORT0%%;

        location /media/ {
            darkroom_media on;
            alias %%DIR%%/files/;
        }

        location /api/galleries/ {
            darkroom_gallery;
        }

        location /api/admin/galleries/ {
            darkroom_gallery_admin;
        }
    }
}
EOF

$t->start;

sub admin {
    my ($method, $path, $body, $token) = @_;
    return $t->http($method, "/api/admin/galleries/$path", {
        headers => { Authorization => 'Bearer '
                                      . ($token // 'gallery-admin-token') },
        defined $body ? (content => encode_json($body)) : () });
}

my $cookie = '';

sub api {
    my ($method, $path, $body, %h) = @_;
    my %headers = (%h);
    $headers{Cookie} //= $cookie if $cookie;
    return $t->http($method, "/api/galleries/$path", {
        headers => \%headers,
        defined $body ? (content => encode_json($body)) : () });
}

# --- admin ------------------------------------------------------------------

is(admin(GET => '', undef, 'nope')->{status}, 401, 'admin: bad token 401');

my $r = admin(POST => '', { slug => 'wed', title => 'Ada & Tom',
    client_email => 'ada@example.com', password => 'open sesame',
    pin => '4321', expires_at => '2099-01-01T00:00:00Z' });
is($r->{status}, 200, 'gallery created') or diag $r->{content};
is($r->{json}{gallery}{has_password}, JSON::PP::true, 'has a password');
is($r->{json}{gallery}{has_pin}, JSON::PP::true, 'has a PIN');
like($t->sql_value("SELECT password_hash FROM galleries WHERE slug = 'wed'"),
    qr/^scrypt\$14\$8\$1\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/,
    'the password is stored as an scrypt hash');
unlike($t->sql_value("SELECT password_hash || pin_hash FROM galleries"),
    qr/open sesame|4321/, 'never in clear');

my @photos = map {
    my $p = "wed/IMG_$_.jpg";
    { original => $p, bytes => length $files{$p}, crc32 => crc32($files{$p}),
      sha256 => sha256_hex($files{$p}), proof => "wed/proofs/IMG_$_.jpg",
      name => "IMG_$_.jpg" }
} 1 .. 3;
$r = admin(POST => 'wed/photos', { photos => \@photos });
is($r->{status}, 200, 'photos added') or diag $r->{content};
is(scalar @{$r->{json}{photos}}, 3, 'three photos');
is(admin(POST => 'wed/photos', { photos => [{ original => '../etc/passwd',
    bytes => 1, crc32 => 1 }] })->{status}, 400, 'a path with .. is refused');

# --- unlock and the cookie ----------------------------------------------------

$r = api(GET => 'wed');
is($r->{status}, 401, 'locked gallery: 401');
is($r->{json}{error}{code}, 'locked', 'code locked');
is(api(GET => 'nope')->{status}, 404, 'unknown gallery 404');

$r = api(POST => 'wed/unlock', { password => 'wrong' });
is($r->{status}, 403, 'wrong password 403');
is($r->{json}{error}{code}, 'wrong_password', 'code wrong_password');
ok(!$r->{headers}{'set-cookie'}, 'no cookie');

$r = api(POST => 'wed/unlock', { password => 'open sesame' });
is($r->{status}, 200, 'right password 200') or diag $r->{content};
my $sc = $r->{headers}{'set-cookie'} // '';
like($sc, qr{^darkroom_gallery=(\d+\.1\.\d+\.[A-Za-z0-9_-]{43}); },
    'cookie: gallery, generation, expiry, HMAC');
like($sc, qr{; Path=/api/galleries/wed;}, 'bound to the gallery path');
like($sc, qr{; HttpOnly; SameSite=Lax$}, 'HttpOnly, SameSite=Lax, no Secure on plain HTTP');
like($sc, qr{Max-Age=(\d+)}, 'expiring');
($cookie) = $sc =~ /^([^;]+)/;

$r = api(GET => 'wed');
is($r->{status}, 200, 'unlocked listing') or diag $r->{content};
is($r->{json}{gallery}{title}, 'Ada & Tom', 'title');
is($r->{json}{gallery}{pin}, JSON::PP::true, 'tells a PIN is needed');
is(scalar @{$r->{json}{photos}}, 3, 'three photos');
my $p1 = $r->{json}{photos}[0];
like($p1->{proof}, qr{^/media/wed/proofs/IMG_1\.jpg\?exp=\d+&g=\d+\.1&kid=m1&sig=},
    'signed proof URL with the gallery');
my $pr = $t->http(GET => $p1->{proof});
is($pr->{status}, 200, 'proof served');
is($pr->{content}, "proof 1\n", 'proof bytes');

# tampering: every part of the cookie matters
my ($cv) = $cookie =~ /=(.*)/;
my ($gid, $gen, $exp, $sig) = split /\./, $cv;
my %bad = (
    'signature'  => "$gid.$gen.$exp." . (substr($sig, 0, 42) . (substr($sig, 42) eq 'A' ? 'B' : 'A')),
    'expiry'     => "$gid.$gen." . ($exp + 1) . ".$sig",
    'generation' => "$gid." . ($gen + 1) . ".$exp.$sig",
    'gallery'    => ($gid + 1) . ".$gen.$exp.$sig",
    'truncated'  => "$gid.$gen.$exp." . substr($sig, 0, 20),
);
for my $k (sort keys %bad) {
    is(api(GET => 'wed', undef, Cookie => "darkroom_gallery=$bad{$k}")->{status},
        401, "cookie with a changed $k: 401");
}
is(api(GET => 'wed', undef, Cookie => "x=1; darkroom_gallery=$cv; y=2")->{status},
    200, 'the cookie among others');

# --- favourites -------------------------------------------------------------

$r = api(POST => 'wed/favourites', { photo => $p1->{id}, favourite => JSON::PP::true });
is($r->{status}, 200, 'favourite') or diag $r->{content};
is_deeply($r->{json}{favourites}, [ $p1->{id} ], 'listed');
is(api(GET => 'wed')->{json}{photos}[0]{favourite}, JSON::PP::true,
    'shown in the listing');
is(api(POST => 'wed/favourites', { photo => 999999 })->{status}, 404,
    'unknown photo 404');
$r = api(POST => 'wed/favourites', { photo => $p1->{id}, favourite => JSON::PP::false });
is_deeply($r->{json}{favourites}, [], 'unmarked');
is(api(POST => 'wed/favourites', { photo => $p1->{id} },
       Cookie => 'darkroom_gallery=nope')->{status}, 401,
    'favourites need the cookie');

# --- downloads behind the PIN -------------------------------------------------

$r = api(POST => 'wed/download', { all => JSON::PP::true });
is($r->{status}, 401, 'no PIN: 401');
is($r->{json}{error}{code}, 'pin_required', 'code pin_required');
$r = api(POST => 'wed/download', { all => JSON::PP::true, pin => '0000' });
is($r->{status}, 403, 'wrong PIN 403');
is($r->{json}{error}{code}, 'wrong_pin', 'code wrong_pin');

$r = api(POST => 'wed/download', { photos => [ $p1->{id} ], pin => '4321' });
is($r->{status}, 200, 'right PIN: download') or diag $r->{content};
is(scalar @{$r->{json}{files}}, 1, 'one file');
my $f = $r->{json}{files}[0];
like($f->{url}, qr{^/media/wed/IMG_1\.jpg\?disposition=attachment&exp=\d+&filename=IMG_1\.jpg&g=\d+\.1&kid=m1&sig=},
    'signed original URL, as an attachment');
my $dl = $t->http(GET => $f->{url});
is($dl->{status}, 200, 'original served');
ok($dl->{content} eq $files{'wed/IMG_1.jpg'}, 'original bytes');
like($dl->{headers}{'content-disposition'}, qr/^attachment; filename="IMG_1\.jpg"/,
    'Content-Disposition attachment');

$r = api(POST => 'wed/download', { all => JSON::PP::true, pin => '4321' });
is(scalar @{$r->{json}{files}}, 3, 'all: three files');
like($r->{json}{zip}{url}, qr{^/api/galleries/wed/zip/[0-9a-f]{32}$}, 'a ZIP URL');
my $zip = $t->http(GET => $r->{json}{zip}{url});
is($zip->{status}, 200, 'ZIP 200');
is($zip->{headers}{'content-type'}, 'application/zip', 'application/zip');
is(length $zip->{content}, $r->{json}{zip}{bytes}, 'ZIP size as announced');
is($zip->{headers}{'content-length'}, length $zip->{content}, 'exact Content-Length');
$t->write_file('wed.zip', $zip->{content});
my $out = `unzip -t $t->{dir}/wed.zip 2>&1`;
like($out, qr/No errors detected/, 'unzip -t: valid CRCs') or diag $out;
is(api(POST => 'wed/download', { photos => [ 424242 ], pin => '4321' })->{status},
    404, 'a photo of another gallery: 404');

# --- lockout (3 failures in 10 minutes lock for 60 s) -------------------------------

# a success forgets earlier failures: three in a row now
api(POST => 'wed/download', { all => JSON::PP::true, pin => $_ }) for qw(1111 2222);
$r = api(POST => 'wed/download', { all => JSON::PP::true, pin => '3333' });
is($r->{status}, 429, 'third wrong PIN: locked out');
is($r->{json}{error}{code}, 'locked_out', 'code locked_out');
like($r->{headers}{'retry-after'} // '', qr/^(59|60)$/, 'Retry-After');
is(api(POST => 'wed/download', { all => JSON::PP::true, pin => '4321' })->{status},
    429, 'even the right PIN while locked out');

$cookie = '';
api(POST => 'wed/unlock', { password => $_ }) for qw(a b);
$r = api(POST => 'wed/unlock', { password => 'c' });
is($r->{status}, 429, 'third wrong password: locked out');
$r = api(POST => 'wed/unlock', { password => 'open sesame' });
is($r->{status}, 429, 'even the right password while locked out');
is($t->sql_value("SELECT count(*) FROM gallery_failures WHERE locked_until > now()"),
    2, 'counted per gallery, client and kind in the database');
$t->sql("UPDATE gallery_failures SET locked_until = now() - interval '1 s'");
$r = api(POST => 'wed/unlock', { password => 'open sesame' });
is($r->{status}, 200, 'after the lockout the right password works');
($cookie) = ($r->{headers}{'set-cookie'} // '') =~ /^([^;]+)/;

# --- rotation ends cookies; expiry --------------------------------------------------

$r = admin(POST => 'wed/rotate');
is($r->{json}{gallery}{generation}, 2, 'rotated: generation 2');
is(api(GET => 'wed')->{status}, 401, 'the old cookie stops at once');

$r = admin(POST => '', { slug => 'old', title => 'Old',
    expires_at => '2001-02-03T04:05:06Z' });
is($r->{status}, 200, 'expired gallery made');
$r = api(GET => 'old');
is($r->{status}, 410, 'expired gallery: 410');
is($r->{json}{error}{code}, 'gallery_expired', 'code gallery_expired');
is($r->{json}{error}{expires_at}, '2001-02-03T04:05:06Z', 'with the expiry date');

$r = admin(POST => 'wed/revoke');
is(api(POST => 'wed/unlock', { password => 'open sesame' })->{status}, 410,
    'revoked gallery: 410');

# --- delivery enqueues the email job ------------------------------------------------

admin(POST => '', { slug => 'del', client_email => 'bo@example.com' });
$r = admin(POST => 'del/deliver');
is($r->{status}, 200, 'delivered');
is($t->sql_value("SELECT payload->>'template' FROM jobs WHERE kind = 'email'"),
    'gallery_delivered', 'email job enqueued');

unlike($t->error_log, qr/open sesame|4321|cookie-key|media-key/,
    'no secret in the error log');

done_testing();
