#!/usr/bin/perl
# Prometheus metrics of gallery ZIPs: two whole downloads and a range move
# darkroom_gallery_zips_total by 3 and darkroom_gallery_zip_bytes_total by
# exactly the body bytes sent; the JSON answers of the gallery API are not
# ZIPs and count only as requests.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Darkroom::Test qw(wait_for);
use Compress::Zlib qw(crc32);
use Darkroom::Metrics;

my $t = Darkroom::Test->new;
$t->write_file('keys', "m1:media-key-0123456789abcdef\n");
$t->write_file('cookie_key', "cookie-key-0123456789abcdef\n");
$t->conf(<<'EOF', workers => 2);
%%MAIN%%
thread_pool dr threads=4;
events {}
http {
    %%HTTP%%
    darkroom_db "%%DB%%";
    darkroom_db_pool dr;
    darkroom_jobs off;
    darkroom_gallery_zone 1m interval=500ms;
    darkroom_media_keys %%DIR%%/keys;
    darkroom_gallery_media /media/;
    darkroom_gallery_root %%DIR%%/files;
    darkroom_gallery_cookie_key_file %%DIR%%/cookie_key;
    server {
        listen 127.0.0.1:%%PORT0%%;
        location /media/ { darkroom_media on; alias %%DIR%%/files/; }
        location /api/galleries/ { darkroom_gallery; }
        location = /metrics { darkroom_metrics; }
    }
}
EOF

my $id = $t->sql_value("INSERT INTO galleries (slug, title) "
    . "VALUES ('three', 'ZIP') RETURNING id");
for my $i (1 .. 3) {
    my $data = 'x' x (1000 * $i);
    $t->write_file("files/three/$i.jpg", $data);
    $t->sql("INSERT INTO gallery_photos (gallery_id, name, original_path,"
        . " bytes, crc32, position) VALUES (:'p1', :'p2', :'p3', :'p4',"
        . " :'p5', :'p6')", $id, "$i.jpg", "three/$i.jpg", length $data,
        crc32($data), $i);
}
$t->start;

sub scrape { (Darkroom::Metrics::scrape($t))[0] }

my $base = scrape();
my $r = $t->http(POST => '/api/galleries/three/download',
    { content => '{"all":true}' });
is($r->{status}, 200, 'download asked') or diag $r->{content};
my ($url, $size) = ($r->{json}{zip}{url}, $r->{json}{zip}{bytes});

is(length $t->http(GET => $url)->{content}, $size, "ZIP $_") for 1 .. 2;
$r = $t->http(GET => $url, { headers => { Range => 'bytes=10-109' } });
is($r->{status}, 206, 'a range');

my %want = (
    'darkroom_gallery_zips_total' => 3,
    'darkroom_gallery_zip_bytes_total' => 2 * $size + 100,
    'darkroom_requests_total{handler="gallery",class="2xx"}' => 4,
);
my $key = 'darkroom_requests_total{handler="gallery",class="2xx"}';
my $now;
wait_for(sub { $now = scrape();
    ($now->{$key} // 0) - ($base->{$key} // 0) >= 4 }, 10);
for my $k (sort keys %want) {
    is(($now->{$k} // 0) - ($base->{$k} // 0), $want{$k},
        "$k moved by $want{$k}");
}

# the revocation list the workers load (darkroom_gallery_zone interval)
$t->sql("UPDATE galleries SET revoked_at = now() WHERE id = :'p1'", $id);
my $n = $t->sql_value('SELECT count(*) FROM gallery_revocations()');
ok($n >= 1, 'a gallery revoked');
my $at = time;
ok(wait_for(sub { $now = scrape();
    $now->{darkroom_gallery_revocations_refreshed_timestamp_seconds} >= $at
    && $now->{darkroom_gallery_revocations} == $n }, 10),
    "the list's size ($n) and its refresh time")
    or diag explain { map { $_ => $now->{$_} } grep { /revocations/ } keys %$now };

done_testing;
