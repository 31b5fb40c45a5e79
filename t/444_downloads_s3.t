#!/usr/bin/perl
# A download location whose originals are in an S3-compatible bucket: the
# counted download answers 302 to the object (key: the grant's file under
# the prefix), presigned, with the attachment's file name as
# response-content-disposition.  Refusals stay JSON, with no redirect.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use HTTP::Tiny;
use Darkroom::Test;
use Darkroom::Downloads qw(download_shop paid_digital_order);

my $t = Darkroom::Test->new;
$t->write_file('s3', "AKIAEXAMPLEKEY:wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n");
download_shop($t, limit => 1, extra => <<'CONF');
    server {
        listen 127.0.0.1:%%PORT3%%;
        location /download/ {
            darkroom_download;
            darkroom_media_s3 endpoint=http://127.0.0.1:%%PORT4%%
                              bucket=originals region=eu-west-2
                              prefix=shop/ expires=5m
                              credentials=%%DIR%%/s3;
        }
    }
CONF
$t->start;

my $o = paid_digital_order($t, ['moor-rain', 'digital', 1]);
my $url = $t->http(GET => "/api/orders/$o->{token}")->{json}{downloads}[0]{url};
my ($path) = $url =~ m{^http://[^/]+(/.*)$};
my $s3 = 'http://127.0.0.1:' . $t->port(3) . $path;
my $ua = HTTP::Tiny->new(max_redirect => 0, keep_alive => 0, timeout => 15);

my $r = $ua->get($s3);
is($r->{status}, 302, 'a redirect to the bucket');
my $loc = $r->{headers}{location} // '';
like($loc, qr{^http://127\.0\.0\.1:\d+/originals/shop/moor-rain\.tif\?}, 'to the grant\'s file');
like($loc, qr/X-Amz-Signature=[0-9a-f]{64}/, 'presigned');
like($loc, qr/response-content-disposition=attachment%3B%20filename%3D%22moor-rain\.tif%22/,
    'with the file name');
is($t->sql_value("SELECT used FROM download_grants WHERE order_id = :'p1'",
    $o->{id}), 1, 'counted');

$r = $ua->get($s3);
is($r->{status}, 410, 'the limit reached: 410');
ok(!$r->{headers}{location}, 'no redirect');

ok($t->check_sanitizer, 'no sanitizer reports');
done_testing;
