#!/usr/bin/perl
# Print sizes in the catalogue (issue 14): tools/darkroom-catalogue loads
# a product's print_size and min_ppi and a photo's width and height (or
# reads them from the print file with --print-root), refuses bad ones
# writing nothing, and loading again changes nothing; the demo catalogue's
# prints have their sizes.  tools/darkroom-import records each gallery
# photo's original pixel size (EXIF orientation applied), not its web
# copy's, with or without the copies.

use strict;
use warnings;
use lib 't/lib';

use JSON::PP;
use Test::More;
use Darkroom::Test;

my $t = Darkroom::Test->new;
my $db = $t->db;
my $top = $t->top;

sub load {
    my ($file, @opts) = @_;
    my $out = `"$top/tools/darkroom-catalogue" @opts "$db" "$file" 2>&1`;
    return ($? >> 8, $out);
}

sub write_json {
    my ($name, $data) = @_;
    return $t->write_file($name, JSON::PP->new->utf8->canonical->encode($data));
}

# --- the demo catalogue ------------------------------------------------------
my ($rc, $out) = load("$top/conf/demo-catalogue.json");
is($rc, 0, 'the demo catalogue loads') or diag $out;
is(join(' ', map { join ',', map { $_ eq '' ? '-' : $_ } @$_ } $t->sql(
    "SELECT id, print_width_mm, print_height_mm, min_ppi FROM products"
    . " ORDER BY id")),
    'canvas-50x70,500.0,700.0,100 digital-full,-,-,- framed-40x50,300.0,400.0,-'
    . ' giclee-a3,297.0,420.0,- giclee-a4,210.0,297.0,-',
    'its prints have their sizes, the canvas a min_ppi of its own');

# --- a file of our own -------------------------------------------------------
my $cat = {
    products => [
        { id => 'a3', name => 'A3', kind => 'print', prices => { GBP => 4000 },
          print_size => { width_mm => 297, height_mm => 420 }, min_ppi => 180 },
        { id => 'dl', name => 'Download', kind => 'digital',
          prices => { GBP => 900 } } ],
    photos => [
        { id => 'sea', title => 'Sea', print => 'sea.png', products => ['a3'],
          width => 7200, height => 4800 },
        { id => 'hill', title => 'Hill', print => 'hill.png',
          products => ['a3', 'dl'] } ] };
my $file = write_json('cat.json', $cat);
($rc, $out) = load($file);
is($rc, 0, 'loads') or diag $out;
is($t->sql_value("SELECT print_width_mm || 'x' || print_height_mm || ' '"
    . " || min_ppi FROM products WHERE id = 'a3'"), '297.0x420.0 180',
    'print_size and min_ppi');
is($t->sql_value("SELECT width || 'x' || height FROM photos WHERE id = 'sea'"),
    '7200x4800', 'a photo\'s pixels');
is($t->sql_value("SELECT coalesce(width::text, 'none') FROM photos"
    . " WHERE id = 'hill'"), 'none', 'none given: unknown');

my $stamp = "SELECT string_agg(id || updated_at, ',' ORDER BY id) FROM "
    . "(SELECT id, updated_at FROM products UNION ALL"
    . " SELECT id, updated_at FROM photos) x";
my $s0 = $t->sql_value($stamp);
($rc, $out) = load($file);
is($t->sql_value($stamp), $s0, 'loading again changes nothing');

# --print-root: the print file's pixels for a photo without them
mkdir $t->dir . '/prints';
system('convert', '-size', '300x200', 'xc:gray', $t->dir . '/prints/hill.png')
    == 0 or die "convert failed";
system('convert', '-size', '40x30', 'xc:gray', $t->dir . '/prints/sea.png')
    == 0 or die "convert failed";
($rc, $out) = load($file, '--print-root', $t->dir . '/prints');
is($rc, 0, 'loads with --print-root') or diag $out;
is($t->sql_value("SELECT width || 'x' || height FROM photos WHERE id = 'hill'"),
    '300x200', 'the pixels read from the print file');
is($t->sql_value("SELECT width || 'x' || height FROM photos WHERE id = 'sea'"),
    '7200x4800', 'given pixels win over the file');

# a photo in a file without pixels keeps the ones it has
delete $cat->{photos}[0]{$_} for qw(width height);
($rc, $out) = load(write_json('cat2.json', $cat));
is($t->sql_value("SELECT width || 'x' || height FROM photos WHERE id = 'sea'"),
    '7200x4800', 'absent pixels: left as they are');

# a product without print_size in the file has none (the file is the truth)
delete $cat->{products}[0]{$_} for qw(print_size min_ppi);
($rc, $out) = load(write_json('cat3.json', $cat));
is($t->sql_value("SELECT coalesce(print_width_mm::text, 'none') || ' '"
    . " || coalesce(min_ppi::text, 'none') FROM products WHERE id = 'a3'"),
    'none none', 'print_size and min_ppi absent: cleared');

# --- refused files -----------------------------------------------------------
my $snap = "SELECT md5(string_agg(t::text, ',' ORDER BY t::text)) FROM"
    . " (SELECT p::text AS t FROM products p UNION ALL"
    . " SELECT ph::text FROM photos ph) x";
my $before = $t->sql_value($snap);
for my $case (
    [ { id => 'a3', print_size => { width_mm => 297 } }, 'print_size' ],
    [ { id => 'a3', print_size => { width_mm => 0, height_mm => 420 } },
      'print_size' ],
    [ { id => 'a3', print_size => { width_mm => '297', height_mm => 420 } },
      'print_size', 'a string is not a number' ],
    [ { id => 'a3', min_ppi => 0 }, 'min_ppi' ],
    [ { id => 'a3', min_ppi => 2401 }, 'min_ppi' ],
    [ { id => 'a3', min_ppi => 150.5 }, 'min_ppi' ],
    [ { id => 'dl', kind => 'digital',
        print_size => { width_mm => 1, height_mm => 1 } },
      'print_size: only a print' ],
) {
    my $p = { name => 'X', kind => 'print', prices => { GBP => 1 },
              %{ $case->[0] } };
    my $f = write_json('bad.json', { products => [$p] });
    ($rc, $out) = load($f);
    is($rc, 1, "refused: $case->[1]" . ($case->[2] ? " ($case->[2])" : ''));
    like($out, qr/\Q$case->[1]\E.*\n.*nothing written/, 'explained')
        or diag $out;
}
for my $photo ({ width => 100 }, { width => 0, height => 10 },
               { width => 10.5, height => 10 }) {
    my $f = write_json('bad.json', { photos => [
        { id => 'x', title => 'X', %$photo } ] });
    ($rc, $out) = load($f);
    is($rc, 1, 'refused: photo ' . encode_json($photo));
    like($out, qr/width|height/, 'explained') or diag $out;
}
is($t->sql_value($snap), $before, 'nothing written');

# --- darkroom-import: the original's pixels ----------------------------------
my $root = $t->dir . '/galleries';
mkdir $root;
mkdir "$root/wed";
system('convert', '-size', '640x480', 'xc:navy', "$root/wed/a.jpg") == 0
    or die "convert failed";
# stored 640 x 480, shown rotated (orientation RightTop, EXIF's 6):
# 480 x 640 (a TIFF: this ImageMagick writes no EXIF orientation to a JPEG)
system('convert', '-size', '640x480', 'xc:teal', '-orient', 'RightTop',
       "$root/wed/b.tif") == 0 or die "convert failed";
my $tool = "$top/tools/darkroom-import";
$out = `$tool --db '$db' --root $root --web 320 --proof 200 wed $root/wed 2>&1`;
is($?, 0, 'import succeeds') or diag $out;
is(join(' ', map { "$_->[0]=$_->[1]x$_->[2]" } $t->sql(
    "SELECT name, width, height FROM gallery_photos ORDER BY name")),
    'a.jpg=640x480 b.tif=480x640',
    'the originals\' pixels (not the 320 px web copy\'s), as shown');

mkdir "$root/raw";
system('convert', '-size', '900x600', 'xc:gray', "$root/raw/c.png") == 0
    or die "convert failed";
$out = `$tool --db '$db' --root $root --no-derive raw $root/raw 2>&1`;
is($?, 0, 'import --no-derive succeeds') or diag $out;
is($t->sql_value("SELECT width || 'x' || height FROM gallery_photos"
    . " WHERE name = 'c.png'"), '900x600', 'pixels without copies too');

done_testing;
