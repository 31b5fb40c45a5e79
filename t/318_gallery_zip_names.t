#!/usr/bin/perl

# darkroom: ZIP entry names a Windows client can extract.  Photo names with
# characters Windows refuses (":" of a drive letter, < > " | ? * and control
# characters), reserved device names (CON, NUL.txt, COM1 ...), trailing
# dots and spaces, and bytes that are not UTF-8 come out of the archive
# made safe, and still unique.

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

my @names = ('C:evil.exe', 'C:\\Windows\\evil.exe', 'what?.jpg',
    'a|b.jpg', '"quoted".jpg', 'star*.jpg', 'CON', 'nul.txt', 'Com1.jpg',
    'trailing. . ', "tab\there.jpg", 'c_evil.exe', 'C:evil.exe');
my @want = ('C_evil.exe', 'C__Windows_evil.exe', 'what_.jpg', 'a_b.jpg',
    '_quoted_.jpg', 'star_.jpg', '_CON', '_nul.txt', '_Com1.jpg', 'trailing',
    'tab_here.jpg', 'c_evil (2).exe', 'C_evil (3).exe');

my $id = $t->sql_value("INSERT INTO galleries (slug) VALUES ('w') RETURNING id");
for my $i (0 .. $#names) {
    my $data = "photo $i\n";
    $t->write_file("files/w/$i.jpg", $data);
    $t->sql("INSERT INTO gallery_photos (gallery_id, name, original_path,"
        . " bytes, crc32, position) VALUES ($id, :'p1', 'w/$i.jpg', "
        . length($data) . ", " . crc32($data) . ", $i)", $names[$i]);
}

$t->start;

my $r = $t->http(POST => '/api/galleries/w/download',
    { content => '{"all":true}' });
is($r->{status}, 200, 'download asked') or diag $r->{content};
my $z = $t->http(GET => $r->{json}{zip}{url});
is($z->{status}, 200, 'ZIP 200');
is(length $z->{content}, $r->{json}{zip}{bytes}, 'of the announced size');
$t->write_file('w.zip', $z->{content});

my $out = `python3 -c '
import sys, zipfile
z = zipfile.ZipFile(sys.argv[1]); assert z.testzip() is None
for i in z.infolist(): print(i.filename)' $dir/w.zip 2>&1`;
my @got = split /\n/, $out;
is_deeply(\@got, \@want, 'names made safe for Windows, and unique')
    or diag $out;
ok(!grep({ /[<>:"\/\\|?*\x00-\x1f]/ || /[. ]$/ } @got),
    'none has a character Windows refuses or ends in a dot or space');

$out = `unzip -t $dir/w.zip 2>&1`;
like($out, qr/No errors detected/, 'unzip -t') or diag $out;

done_testing();
