#!/usr/bin/perl

# darkroom: a gallery as one streamed ZIP.  100 photos (duplicate and UTF-8
# names among them): the Content-Length is exact before the first byte, the
# archive passes unzip -t, Python's zipfile and bsdtar, a resumed download
# (Range, If-Range) gives the same bytes, and If-None-Match answers 304.
# Then a ZIP64 archive: a sparse 4.1 GiB photo and two small ones, streamed
# once, opened by unzip and zipfile.

use strict;
use warnings;

use lib 't/lib';
use Darkroom::Test;
use Compress::Zlib qw(crc32);
use JSON::PP;
use Test::More;

my $t = Darkroom::Test->new;
my $dir = $t->dir;

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

    darkroom_gallery_zone 1m interval=500ms;
    darkroom_media_keys %%DIR%%/keys;
    darkroom_gallery_media /media/;
    darkroom_gallery_root %%DIR%%/files;
    darkroom_gallery_cookie_key_file %%DIR%%/cookie_key;

    server {
        listen 127.0.0.1:%%PORT0%%;

        location /media/ {
            darkroom_media on;
            alias %%DIR%%/files/;
        }

        location /api/galleries/ {
            darkroom_gallery;
        }
    }
}
EOF

# 100 photos; every tenth is called "IMG.jpg", every seventh has a UTF-8 name
my (@rows, %want);
for my $i (1 .. 100) {
    my $data = join '', map { chr(($_ * 13 + $i * 7) % 251) }
        1 .. 1000 + $i * 97;
    my $path = sprintf 'hundred/%03d.jpg', $i;
    $t->write_file("files/$path", $data);
    my $name = $i % 10 == 0 ? 'IMG.jpg'
             : $i % 7 == 0  ? "\x{e9}t\x{e9} $i.jpg"
             : sprintf('%03d.jpg', $i);
    utf8::encode($name);
    push @rows, [ $name, $path, length $data, crc32($data), $i ];
    $want{$name} //= $data;
}

sub make_gallery {
    my ($slug, @rows) = @_;
    my $id = $t->sql_value("INSERT INTO galleries (slug, title) "
        . "VALUES (:'p1', 'ZIP') RETURNING id", $slug);
    my $values = join ",\n", map {
        my ($name, $path, $bytes, $crc, $pos) = @$_;
        (my $n = $name) =~ s/'/''/g;
        "($id, '$n', '$path', $bytes, $crc, $pos)"
    } @rows;
    $t->sql("INSERT INTO gallery_photos (gallery_id, name, original_path, "
        . "bytes, crc32, position) VALUES $values");
    return $id;
}

make_gallery('hundred', @rows);
$t->start;

my $r = $t->http(POST => '/api/galleries/hundred/download',
    { content => '{"all":true}' });
is($r->{status}, 200, 'download asked') or diag $r->{content};
my $url = $r->{json}{zip}{url};
my $size = $r->{json}{zip}{bytes};
is($r->{json}{zip}{files}, 100, '100 files');

my $z = $t->http(GET => $url);
is($z->{status}, 200, 'ZIP 200');
is($z->{headers}{'content-length'}, $size, 'Content-Length known up front');
is(length $z->{content}, $size, 'and exact');
is($z->{headers}{'accept-ranges'}, 'bytes', 'Accept-Ranges');
like($z->{headers}{'content-disposition'},
    qr/^attachment; filename="hundred\.zip"/, 'attachment');
$t->write_file('h.zip', $z->{content});

my $out = `unzip -t $dir/h.zip 2>&1`;
like($out, qr/No errors detected in compressed data/, 'unzip -t') or diag $out;
is(() = $out =~ /\bOK$/mg, 100, 'unzip: 100 entries OK');

$out = `python3 - $dir/h.zip 2>&1 <<'PY'
import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
assert z.testzip() is None
names = [i.filename for i in z.infolist()]
assert len(set(n.lower() for n in names)) == 100, names
assert all(i.flag_bits & 0x800 for i in z.infolist())
assert all(i.compress_type == zipfile.ZIP_STORED for i in z.infolist())
print('ok', len(names), names[9], names[19], names[6])
PY`;
my $ete = "\xc3\xa9t\xc3\xa9 7.jpg";
like($out, qr/^ok 100 IMG\.jpg IMG \(2\)\.jpg \Q$ete\E$/m,
    'zipfile: CRCs, unique names, UTF-8 flag, stored') or diag $out;

$out = `bsdtar -tf $dir/h.zip 2>&1 | wc -l`;
is($out + 0, 100, 'bsdtar lists 100 entries');
$out = `cd $dir && mkdir -p x && bsdtar -xf h.zip -C x 2>&1 && cat x/IMG.jpg | md5sum`;
is((split ' ', $out)[0], do {
    require Digest::MD5; Digest::MD5::md5_hex($want{'IMG.jpg'}) },
    'bsdtar extracts the right bytes');

# --- resume -----------------------------------------------------------------

my $cut = int($size / 3) + 17;
my $a = $t->http(GET => $url, { headers => { Range => "bytes=0-" . ($cut - 1) } });
is($a->{status}, 206, 'first part 206');
my $etag = $z->{headers}{etag};
my $b = $t->http(GET => $url, { headers => { Range => "bytes=$cut-",
                                             'If-Range' => $etag } });
is($b->{status}, 206, 'resume with If-Range 206');
is($b->{headers}{'content-range'}, "bytes $cut-" . ($size - 1) . "/$size",
    'Content-Range');
ok($a->{content} . $b->{content} eq $z->{content}, 'resumed bytes are the same');
my $c = $t->http(GET => $url, { headers => { Range => "bytes=-100" } });
ok($c->{content} eq substr($z->{content}, -100), 'suffix range');
is($t->http(GET => $url, { headers => { Range => "bytes=$cut-",
    'If-Range' => '"other"' } })->{status}, 200, 'If-Range mismatch: whole');
is($t->http(GET => $url, { headers => { 'If-None-Match' => $etag } })->{status},
    304, 'If-None-Match: 304');
my $h = $t->http(HEAD => $url);
is($h->{headers}{'content-length'}, $size, 'HEAD: Content-Length');
is($t->http(GET => $url =~ s/[0-9a-f]{4}$/0000/r)->{status}, 404,
    'unknown token 404');

# a file changed behind the database's back: refused before any byte
$t->write_file('files/hundred/050.jpg', 'short');
$r = $t->http(GET => $url);
is($r->{status}, 500, 'changed file: 500 before the archive starts');
is($r->{json}{error}{code}, 'file_unavailable', 'code file_unavailable');

# --- ZIP64: an entry past 4 GiB --------------------------------------------

my $BIG = 4 * 1024 * 1024 * 1024 + 12345;
mkdir "$dir/files/big";
system('truncate', '-s', $BIG, "$dir/files/big/scan.tif") == 0
    or die "truncate failed\n";
my $bigcrc = `python3 -c '
import zlib
z = bytes(1 << 24); c = 0; n = $BIG
while n > 0:
    k = min(n, len(z)); c = zlib.crc32(z if k == len(z) else z[:k], c); n -= k
print(c)'`;
chomp $bigcrc;
$t->write_file('files/big/a.txt', "after the big one\n");
$t->write_file('files/big/b.txt', "last\n");
make_gallery('big', [ 'scan.tif', 'big/scan.tif', $BIG, $bigcrc, 1 ],
    [ 'a.txt', 'big/a.txt', 18, crc32("after the big one\n"), 2 ],
    [ 'b.txt', 'big/b.txt', 5, crc32("last\n"), 3 ]);

$r = $t->http(POST => '/api/galleries/big/download',
    { content => '{"all":true}' });
my $bsize = $r->{json}{zip}{bytes};
ok($bsize > $BIG, "ZIP64 archive of $bsize bytes");

# stream it once, writing only non-zero blocks: the copy is sparse too
my $burl = "http://127.0.0.1:" . $t->port(0) . $r->{json}{zip}{url};
$out = `curl -sS -D $dir/big.h '$burl' | python3 -c '
import sys
f = open("$dir/big.zip", "wb"); n = 0; z = bytes(1 << 20)
while True:
    b = sys.stdin.buffer.read(1 << 20)
    if not b: break
    if b != z[:len(b)]:
        f.seek(n); f.write(b)
    n += len(b)
f.truncate(n); f.close(); print(n)' 2>&1`;
chomp $out;
is($out, $bsize, 'streamed every byte');
like($t->read_file('big.h'), qr/Content-Length: $bsize\r/i,
    'Content-Length past 4 GiB');

$out = `python3 - $dir/big.zip 2>&1 <<'PY'
import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
i = z.infolist()
assert [x.filename for x in i] == ['scan.tif', 'a.txt', 'b.txt'], i
assert i[0].file_size == $BIG and i[1].header_offset > 2**32
assert z.read('a.txt') == b'after the big one\\n' and z.read('b.txt') == b'last\\n'
print('ok')
PY`;
like($out, qr/^ok$/m, 'zipfile reads the ZIP64 directory and entries past 4 GiB')
    or diag $out;

# (unzip -t would spend 15 s computing the CRC of 4 GiB of zeros)
$out = `unzip -l $dir/big.zip 2>&1`;
like($out, qr/^\s*$BIG\s.*scan\.tif$/m, 'unzip lists the 4 GiB entry')
    or diag $out;
like($out, qr/^\s*\d+\s+3 files$/m, 'and three entries');
is(`unzip -p $dir/big.zip b.txt`, "last\n", 'unzip extracts past 4 GiB');

unlink "$dir/big.zip", "$dir/files/big/scan.tif";

done_testing();
