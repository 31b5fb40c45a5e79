#!/usr/bin/perl
# Originals in an S3-compatible bucket: a verified media link answers 302
# to a presigned URL that darkroom computes itself.  The URL is checked
# here against an independent SigV4 calculation written from AWS's
# documentation, and followed to a fake bucket that must see the object's
# key.  A bad link still gets its 403 and no redirect.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Digest::SHA qw(sha256_hex hmac_sha256 hmac_sha256_hex);
use MIME::Base64 qw(encode_base64url);
use POSIX qw(strftime);
use Darkroom::Test;

my $t = Darkroom::Test->new;
my $bucket = $t->fake_server(name => 'bucket', handler => sub {
    [200, { 'Content-Type' => 'image/jpeg' }, 'JPEGDATA'] });
my $key = 'k1:' . ('s' x 32);
$t->{ports}[1] = $bucket->port;     # %%PORT1%% is the fake bucket
$t->write_file('media_keys', "$key\n");
$t->write_file('s3', "AKIAEXAMPLEKEY:wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n");
$t->conf(<<'CONF');
%%MAIN%%
events {}
http {
    %%HTTP%%
    darkroom_media_keys %%DIR%%/media_keys;
    server {
        listen 127.0.0.1:%%PORT0%%;
        error_log %%DIR%%/debug.log debug;
        location /originals/ {
            darkroom_media on;
            darkroom_media_s3 endpoint=http://127.0.0.1:%%PORT1%%
                              bucket=client-photos region=eu-west-2
                              prefix=galleries/ expires=10m
                              credentials=%%DIR%%/s3;
        }
        location /virtual/ {
            darkroom_media on;
            darkroom_media_s3 endpoint=https://s3.eu-west-2.amazonaws.com
                              bucket=client-photos region=eu-west-2
                              style=virtual credentials=%%DIR%%/s3;
        }
    }
}
CONF
$t->start;

# a darkroom link, signed as docs/signed-urls.md describes
sub signed_link {
    my ($path, %p) = @_;
    $p{exp} //= time + 600;
    $p{kid} = 'k1';
    my $canon = "darkroom-media-v1\n$path\n"
        . join('', map { "$_=$p{$_}\n" } sort keys %p);
    my $sig = encode_base64url(hmac_sha256($canon, 's' x 32));
    my $q = join '&', map { "$_=" . uri($p{$_}) } sort keys %p;
    (my $upath = $path) =~ s/ /%20/g;
    return "$upath?$q&sig=$sig";
}

sub uri {
    my ($s) = @_;
    utf8::encode($s) if utf8::is_utf8($s);
    $s =~ s/([^A-Za-z0-9\-._~])/sprintf '%%%02X', ord $1/ge;
    return $s;
}

# SigV4 query authentication, from AWS's "Authenticating Requests: Using
# Query Parameters"
sub presign {
    my (%a) = @_;
    my $date = strftime('%Y%m%dT%H%M%SZ', gmtime $a{time});
    my $day = substr $date, 0, 8;
    my $scope = "$day/$a{region}/s3/aws4_request";
    my %q = (
        'X-Amz-Algorithm' => 'AWS4-HMAC-SHA256',
        'X-Amz-Credential' => "$a{access}/$scope",
        'X-Amz-Date' => $date,
        'X-Amz-Expires' => $a{expires},
        'X-Amz-SignedHeaders' => 'host',
        %{$a{extra} || {}},
    );
    my $query = join '&', map { uri($_) . '=' . uri($q{$_}) } sort keys %q;
    (my $path = $a{path}) =~ s{([^A-Za-z0-9\-._~/])}{sprintf '%%%02X', ord $1}ge;
    my $creq = join "\n", 'GET', $path, $query, "host:$a{host}", '', 'host',
        'UNSIGNED-PAYLOAD';
    my $sts = join "\n", 'AWS4-HMAC-SHA256', $date, $scope, sha256_hex($creq);
    my $k = hmac_sha256($day, "AWS4$a{secret}");
    $k = hmac_sha256($a{region}, $k);
    $k = hmac_sha256('s3', $k);
    $k = hmac_sha256('aws4_request', $k);
    return "$a{scheme}://$a{host}$path?$query&X-Amz-Signature="
        . hmac_sha256_hex($sts, $k);
}

# the time the server signed at, from the X-Amz-Date it put in the URL
sub signed_at {
    my ($loc) = @_;
    my ($Y, $m, $d, $H, $M, $S) = ($loc // '')
        =~ /X-Amz-Date=(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z/ or return;
    require Time::Local;
    return Time::Local::timegm($S, $M, $H, $d, $m - 1, $Y);
}

my $before = time;
my $r = $t->http(GET => signed_link('/originals/wedding/IMG_0042.jpg'));
my $after = time;
is($r->{status}, 302, 'a verified link redirects to the bucket');
my $loc = $r->{headers}{location};
my $time = signed_at($loc);
ok(defined $time, 'presigned with a date');
$time //= 0;
my $port = $bucket->port;
is($loc, presign(scheme => 'http', host => "127.0.0.1:$port",
    path => '/client-photos/galleries/wedding/IMG_0042.jpg',
    region => 'eu-west-2', access => 'AKIAEXAMPLEKEY',
    secret => 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', expires => 600,
    time => $time), 'byte for byte the URL SigV4 gives');
ok($time >= int($before) && $time <= $after,
   'signed while the request was served');
unlike($r->{content} // '', qr/wJalrXUtn/, 'the secret key is nowhere');

my $got = HTTP::Tiny->new->get($loc);
is($got->{content}, 'JPEGDATA', 'the bucket answers the presigned URL');
my ($seen) = $bucket->requests;
is($seen->{path}, '/client-photos/galleries/wedding/IMG_0042.jpg',
    'for the object under the prefix');

# a signed download name travels as response-content-disposition
$r = $t->http(GET => signed_link('/originals/wedding/IMG_0042.jpg',
    disposition => 'attachment', filename => "Café wedding.jpg"));
$loc = $r->{headers}{location};
like($loc, qr/response-content-disposition=attachment%3B%20filename%3D/,
    'download name passed to S3');
$time = signed_at($loc) // 0;
my ($disp) = $loc =~ /response-content-disposition=([^&]+)/;
$disp =~ s/%([0-9A-F]{2})/chr hex $1/ge;
is($loc, presign(scheme => 'http', host => "127.0.0.1:$port",
    path => '/client-photos/galleries/wedding/IMG_0042.jpg',
    region => 'eu-west-2', access => 'AKIAEXAMPLEKEY',
    secret => 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', expires => 600,
    time => $time, extra => { 'response-content-disposition' => $disp }),
    'and signed with it');

# virtual-hosted style
$r = $t->http(GET => signed_link('/virtual/a b.jpg'));
like($r->{headers}{location},
    qr{^https://client-photos\.s3\.eu-west-2\.amazonaws\.com/a%20b\.jpg\?X-Amz-Algorithm=AWS4-HMAC-SHA256&},
    'virtual-hosted style, key encoded');
like($r->{headers}{location}, qr/X-Amz-Expires=300&/, 'default expiry 5 minutes');

# a bad link never reaches the bucket
my $bad = signed_link('/originals/wedding/IMG_0042.jpg') =~ s/IMG_0042/IMG_0043/r;
$r = $t->http(GET => $bad);
is($r->{status}, 403, 'a tampered link is refused');
ok(!$r->{headers}{location}, 'without a redirect');
$r = $t->http(GET => signed_link('/originals/x.jpg', exp => time - 5));
is($r->{status}, 410, 'an expired link is refused');

# the decisions in the debug log, with no credential in it
SKIP: {
    skip 'nginx built without --with-debug', 5
        unless `$t->{nginx} -V 2>&1` =~ /--with-debug/;

    my $log = $t->read_file('debug.log');
    like($log, qr/darkroom media: link accepted, kid "k1"/,
        'debug: link accepted');
    like($log, qr{darkroom media: S3 redirect to 127\.0\.0\.1:$port/client-photos/galleries/wedding/IMG_0042\.jpg for 600s},
        'debug: S3 redirect, object and lifetime');
    like($log, qr/darkroom media: link refused, bad_signature, status 403/,
        'debug: refusal with its code and status');
    like($log, qr/darkroom media: link refused, link_expired, status 410/,
        'debug: expiry');
    # (nginx itself logs the headers it sends, Location too, at debug)
    my $ours = join '', grep { /darkroom/ } split /^/, $log;
    unlike($ours, qr/X-Amz-Signature|wJalrXUtn|s{32}/,
        'debug: darkroom logs no presigned query, secret or link key');
}

# bad configuration
for my $case (
    [ 'endpoint=ftp://x bucket=b region=r credentials=%%DIR%%/s3', 'invalid parameter' ],
    [ 'endpoint=http://x bucket=B_ad region=r credentials=%%DIR%%/s3', 'invalid parameter' ],
    [ 'endpoint=http://x bucket=b credentials=%%DIR%%/s3', 'needs endpoint=, bucket=, region=' ],
    [ 'endpoint=http://x bucket=b region=r credentials=%%DIR%%/nope', 'failed' ],
    [ 'endpoint=http://x bucket=b region=r expires=8d credentials=%%DIR%%/s3', 'between 1s and 7d' ],
    [ 'endpoint=http://x bucket=b region=r credentials=%%DIR%%/media_keys extra=1',
      'invalid parameter' ],
) {
    my ($args, $want) = @$case;
    $t->conf(<<"CONF");
%%MAIN%%
events {}
http {
    %%HTTP%%
    server {
        listen 127.0.0.1:%%PORT0%%;
        location / { darkroom_media on; darkroom_media_keys %%DIR%%/media_keys;
                     darkroom_media_s3 $args; }
    }
}
CONF
    my ($ok, $out) = $t->test_conf;
    ok(!$ok, "refused: $args");
    like($out, qr/\Q$want\E.* in \S+nginx\.conf:\d+/, "explained: $want") or diag $out;
}
$t->write_file('badcreds', "no-colon-here\n");
$t->conf(<<'CONF');
%%MAIN%%
events {}
http {
    %%HTTP%%
    server {
        listen 127.0.0.1:%%PORT0%%;
        location / { darkroom_media on; darkroom_media_keys %%DIR%%/media_keys;
                     darkroom_media_s3 endpoint=http://x bucket=b region=r
                                       credentials=%%DIR%%/badcreds; }
    }
}
CONF
my ($ok, $out) = $t->test_conf;
like($out, qr/must hold ACCESS_KEY_ID:SECRET_ACCESS_KEY/, 'malformed credentials explained');
unlike($out, qr/no-colon-here/, 'without echoing the file');

done_testing;
