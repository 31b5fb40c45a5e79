#!/usr/bin/perl

# darkroom: signed media links have a maximum lifetime.
#
# A link whose expiry lies further ahead than darkroom_media_max_ttl (30
# days by default) is refused even with a valid signature: exp=999999999999
# is not a link for ever.  Links the module makes itself stay within it:
# lab print files (30 days), darkroom_media_sign, tools/darkroom-sign; and a
# configuration whose signers outlive every location's bound fails nginx -t.

use strict;
use warnings;

use lib 't/lib';
use Darkroom::Test;
use Digest::SHA qw(hmac_sha256);
use MIME::Base64 qw(encode_base64);
use Test::More;

my $t = Darkroom::Test->new;
my $dir = $t->dir;
my $top = $t->top;

my $KEY = 'max-ttl-key-0123456789abcdef';
$t->write_file('keys', "k1:$KEY\n");
$t->write_file('html/photos/a.jpg', 'photo');
$t->write_file('html/week/a.jpg', 'photo');
$t->write_file('html/year/a.jpg', 'photo');

my $DAY = 86400;

$t->conf(<<'EOF');
%%MAIN%%
events {}
http {
    %%HTTP%%

    darkroom_media_sign $long_link $arg_p ttl=30d;

    server {
        listen 127.0.0.1:%%PORT0%%;
        root %%DIR%%/html;
        darkroom_media_keys %%DIR%%/keys;

        location /photos/ {
            darkroom_media on;
        }

        location /week/ {
            darkroom_media on;
            darkroom_media_max_ttl 7d;
        }

        location /year/ {
            darkroom_media on;
            darkroom_media_max_ttl 365d;
        }

        location = /sign/long { return 200 $long_link; }
    }
}
EOF

$t->start;

sub sign {
    my ($path, $exp) = @_;
    my $canonical = "darkroom-media-v1\n$path\nexp=$exp\nkid=k1\n";
    my $sig = encode_base64(hmac_sha256($canonical, $KEY), '');
    $sig =~ tr{+/}{-_};
    $sig =~ s/=+$//;
    return "$path?exp=$exp&kid=k1&sig=$sig";
}

sub get { $t->http(GET => $_[0]) }

# the default bound: 30 days
my $r = get(sign('/photos/a.jpg', '999999999999'));
is($r->{status}, 403, 'exp=999999999999 -> 403');
is($r->{json}{error}{code}, 'lifetime_too_long', '... lifetime_too_long');
like($r->{json}{error}{message}, qr/30 days|2592000/,
    '... the message names the bound');

$r = get(sign('/photos/a.jpg', time + 31 * $DAY));
is($r->{status}, 403, '31 days ahead -> 403 by default');

$r = get(sign('/photos/a.jpg', time + 30 * $DAY));
is($r->{status}, 200, '30 days ahead (a lab print file link) -> 200');

$r = get(sign('/photos/a.jpg', time + 3600));
is($r->{status}, 200, 'an hour ahead -> 200');

# per location
is(get(sign('/week/a.jpg', time + 8 * $DAY))->{status}, 403,
    'darkroom_media_max_ttl 7d: 8 days -> 403');
is(get(sign('/week/a.jpg', time + 6 * $DAY))->{status}, 200,
    '... 6 days -> 200');
is(get(sign('/year/a.jpg', time + 200 * $DAY))->{status}, 200,
    'darkroom_media_max_ttl 365d: 200 days -> 200');
is(get(sign('/year/a.jpg', time + 400 * $DAY))->{status}, 403,
    '... 400 days -> 403');

# expired stays 410; the bound is checked on authentic links only
is(get(sign('/photos/a.jpg', time - 5))->{status}, 410, 'expired -> 410');
$r = get(sign('/photos/a.jpg', '999999999999') . 'x');
is($r->{json}{error}{code}, 'bad_signature',
    'tampered far-future link -> bad_signature, not the bound');

# the signing variable at the bound is accepted
my $long = get('/sign/long?p=/photos/a.jpg')->{content};
is(get($long)->{status}, 200, 'darkroom_media_sign ttl=30d link accepted');

# tools/darkroom-sign refuses beyond the bound unless told the server's
my $out = `$top/tools/darkroom-sign --keys $dir/keys --ttl 3000000 /photos/a.jpg 2>&1`;
isnt($?, 0, 'darkroom-sign --ttl beyond 30 days fails');
like($out, qr/max-ttl|max_ttl/, '... and says why');
$out = `$top/tools/darkroom-sign --keys $dir/keys --exp 999999999999 /photos/a.jpg 2>&1`;
isnt($?, 0, 'darkroom-sign --exp 999999999999 fails');
$out = `$top/tools/darkroom-sign --keys $dir/keys --max-ttl 365d --ttl 17280000 /year/a.jpg 2>&1`;
is($?, 0, 'darkroom-sign --max-ttl 365d --ttl 200 days works');
chomp $out;
is(get($out)->{status}, 200, '... and the 365d location accepts it');
$out = `$top/tools/darkroom-sign --keys $dir/keys --ttl 2592000 /photos/a.jpg 2>&1`;
chomp $out;
is(get($out)->{status}, 200, 'darkroom-sign --ttl 30 days accepted');

# configuration: signers that outlive every bound fail nginx -t
sub conf_fails {
    my ($what, $http, $loc, $re) = @_;
    my $c = Darkroom::Test->new;
    $c->write_file('keys', "k1:$KEY\n");
    $c->conf(<<"EOF");
%%MAIN%%
events {}
http {
    %%HTTP%%
    darkroom_media_keys %%DIR%%/keys;
    $http
    server {
        listen 127.0.0.1:%%PORT0%%;
        location /m/ { darkroom_media on; $loc }
    }
}
EOF
    my ($ok, $err) = $c->test_conf;
    if ($re) {
        ok(!$ok, "nginx -t fails: $what");
        like($err, $re, '... saying why, with file:line');
    } else {
        ok($ok, "nginx -t passes: $what") or diag $err;
    }
}

conf_fails('darkroom_media_sign ttl beyond every bound',
    'darkroom_media_sign $x $uri ttl=60d;', '',
    qr/ttl=60d.*darkroom_media_max_ttl.*nginx\.conf:\d+/s);
conf_fails('darkroom_media_sign ttl within a raised bound',
    'darkroom_media_sign $x $uri ttl=60d;', 'darkroom_media_max_ttl 90d;',
    undef);
conf_fails('lab asset links beyond every bound',
    "darkroom_lab_asset_url http://127.0.0.1/m;
     darkroom_lab_asset_keys %%DIR%%/keys;
     darkroom_lab_asset_ttl 60d;", '',
    qr/darkroom_lab_asset_ttl.*darkroom_media_max_ttl/s);
conf_fails('lab asset links of 30 days (the default) pass',
    "darkroom_lab_asset_url http://127.0.0.1/m;
     darkroom_lab_asset_keys %%DIR%%/keys;", '', undef);
conf_fails('darkroom_media_max_ttl 0 is refused', '',
    'darkroom_media_max_ttl 0;', qr/darkroom_media_max_ttl/);

done_testing;
