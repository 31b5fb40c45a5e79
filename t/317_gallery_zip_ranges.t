#!/usr/bin/perl

# darkroom: a ZIP asked for with several ranges.  The archive is a chain of
# memory and file buffers, which nginx's range filter cannot cut into a
# multipart/byteranges answer; like a proxied or sliced answer
# (r->single_range) it serves one range as 206 and several as the whole
# archive, 200, never an empty reply.

use strict;
use warnings;

use lib 't/lib';
use Darkroom::Test;
use Compress::Zlib qw(crc32);
use JSON::PP;
use Test::More;

my $t = Darkroom::Test->new;

$t->write_file('keys', "m1:media-key-0123456789abcdef\n");
$t->write_file('cookie_key', "cookie-key-0123456789abcdef\n");

$t->conf(<<'EOF');
%%MAIN%%
thread_pool dr threads=4;
events {}
http {
    %%HTTP%%
    sendfile on;
    darkroom_db "%%DB%%";
    darkroom_db_pool dr;
    darkroom_jobs off;

    darkroom_media_keys %%DIR%%/keys;
    darkroom_gallery_media /media/;
    darkroom_gallery_root %%DIR%%/files;
    darkroom_gallery_cookie_key_file %%DIR%%/cookie_key;

    server {
        listen 127.0.0.1:%%PORT0%%;

        location /api/galleries/ {
            darkroom_gallery;
        }
    }
}
EOF

my $id = $t->sql_value("INSERT INTO galleries (slug) VALUES ('r') RETURNING id");
for my $i (1 .. 3) {
    my $data = join '', map { chr(($_ * 31 + $i) % 256) } 1 .. 3000;
    $t->write_file("files/r/$i.jpg", $data);
    $t->sql("INSERT INTO gallery_photos (gallery_id, name, original_path,"
        . " bytes, crc32, position) VALUES ($id, '$i.jpg', 'r/$i.jpg',"
        . " 3000, " . crc32($data) . ", $i)");
}

$t->start;

my $r = $t->http(POST => '/api/galleries/r/download',
    { content => '{"all":true}' });
is($r->{status}, 200, 'download asked') or diag $r->{content};
my $url = $r->{json}{zip}{url};
my $size = $r->{json}{zip}{bytes};

my $whole = $t->http(GET => $url);
is($whole->{status}, 200, 'the whole ZIP');
is(length $whole->{content}, $size, 'of the announced size');

for my $range ('bytes=0-100,50-150', 'bytes=0-9,20-29',
               'bytes=0-1,-5', "bytes=10-20,3100-3200")
{
    my $m = $t->http(GET => $url, { headers => { Range => $range } });
    is($m->{status}, 200, "$range: 200");
    is($m->{headers}{'content-length'}, $size, "$range: the whole length");
    ok(defined $m->{content} && $m->{content} eq $whole->{content},
        "$range: the whole archive");
}

my $one = $t->http(GET => $url, { headers => { Range => 'bytes=50-150' } });
is($one->{status}, 206, 'one range: 206');
is($one->{headers}{'content-range'}, "bytes 50-150/$size", 'Content-Range');
ok($one->{content} eq substr($whole->{content}, 50, 101), 'the bytes');

$one = $t->http(GET => $url, { headers => { Range => 'bytes=3100-' } });
is($one->{status}, 206, 'one range in a file buffer: 206');
ok($one->{content} eq substr($whole->{content}, 3100), 'the bytes');

unlike($t->error_log, qr/range in overlapped buffers|\[alert\]/,
    'no alert in the error log');

done_testing();
