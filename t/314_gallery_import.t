#!/usr/bin/perl
# tools/darkroom-import: a folder of photos becomes a gallery's photos with
# their sizes, CRC-32 and SHA-256 (checked here independently), web-size
# copies and watermarked proofs; importing again updates, adds nothing;
# bad input is refused before anything is written.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Compress::Zlib qw(crc32);
use Digest::SHA qw(sha256_hex);
use Darkroom::Test;

my $t = Darkroom::Test->new;
my $db = $t->db;
my $root = $t->dir . '/files';
my $tool = $t->top . '/tools/darkroom-import';
plan skip_all => 'ImageMagick convert not installed' unless -x '/usr/bin/convert';

mkdir $root;
mkdir "$root/wed";
system('convert', '-size', '640x480', 'gradient:navy-orange', "$root/wed/first dance.jpg") == 0
    or die "convert failed";
system('convert', '-size', '480x640', 'plasma:fractal', "$root/wed/vows.png") == 0
    or die "convert failed";
$t->write_file('files/wed/notes.txt', "not a photo\n");

my $out = `$tool --db '$db' --root $root --web 320 --proof 200 wed $root/wed 2>&1`;
is($?, 0, 'import succeeds') or diag $out;

my @rows = $t->sql("SELECT p.name, p.original_path, p.bytes, p.crc32, p.sha256,"
    . " p.web_path, p.proof_path, p.width, p.height FROM gallery_photos p"
    . " JOIN galleries g ON g.id = p.gallery_id WHERE g.slug = 'wed'"
    . " ORDER BY p.name");
is(scalar @rows, 2, 'two photos, the text file skipped');
for my $row (@rows) {
    my ($name, $orig, $bytes, $crc, $sha, $web, $proof, $w, $h) = @$row;
    my $data = $t->read_file("$root/$orig");
    is($bytes, length $data, "$name: size");
    is($crc, crc32($data), "$name: CRC-32");
    is($sha, sha256_hex($data), "$name: SHA-256");
    ok(-s "$root/$web", "$name: web copy exists");
    ok(-s "$root/$proof", "$name: proof exists");
    my ($pw, $ph) = split ' ', `identify -format '%w %h' '$root/$proof'`;
    ok($pw <= 200 && $ph <= 200, "$name: proof at most 200 px ($pw x $ph)");
    ok($w && $h, "$name: dimensions recorded");
}

$out = `$tool --db '$db' --root $root --web 320 --proof 200 wed $root/wed 2>&1`;
is($?, 0, 'importing again succeeds');
is($t->sql_value("SELECT count(*) FROM gallery_photos"), 2, 'and adds nothing');

my $before = $t->sql_value("SELECT count(*) FROM gallery_photos");
for my $case (
    [ "'Bad Slug' $root/wed", 'a gallery is' ],
    [ "wed /etc", 'not under the root' ],
    [ "wed $root/nope", 'is not a folder' ],
) {
    my $o = `$tool --db '$db' --root $root $case->[0] 2>&1`;
    isnt($?, 0, "refused: $case->[0]");
    like($o, qr/\Q$case->[1]\E/, "explained: $case->[1]");
}
is($t->sql_value("SELECT count(*) FROM gallery_photos"), $before, 'nothing written');

done_testing;
