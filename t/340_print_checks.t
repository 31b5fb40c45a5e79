#!/usr/bin/perl
# Print-file checks (issue 14) in SQL: print_check() refuses a photo too
# small for a product's print size at the minimum resolution (the product's
# own, else the shop's), orientation independent, crop stricter than fit,
# sizing recorded only where the ratios differ; print_offers() lists what a
# photo can make.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Darkroom::Test;

my $t = Darkroom::Test->new;
my $db = $t->db;

$t->sql(<<'SQL');
INSERT INTO products (id, name, kind, print_width_mm, print_height_mm, min_ppi)
VALUES ('print-a3', 'A3 print', 'print', 420, 297, NULL),
       ('print-sq', 'Square print', 'print', 200, 200, NULL),
       ('canvas-a3', 'A3 canvas', 'print', 420, 297, 100),
       ('print-plain', 'Print of no size', 'print', NULL, NULL, NULL),
       ('digital-original', 'Original file', 'digital', NULL, NULL, NULL);
INSERT INTO price_sheets (id, name) VALUES ('sheet', 'Sheet');
INSERT INTO price_sheet_items (sheet_id, product_id, position)
VALUES ('sheet', 'print-a3', 1), ('sheet', 'print-sq', 2),
       ('sheet', 'canvas-a3', 3), ('sheet', 'digital-original', 4);
SQL

# the answer of print_check(), or "ERR <sqlstate> <code>: <detail>"
sub check {
    my ($w, $h, $product, $sizing, $name) = @_;
    my $q = sprintf("SELECT coalesce(print_check(%s, %s, '%s', %s, 1%s),"
        . " 'NULL')", $w // 'NULL', $h // 'NULL', $product,
        defined $sizing ? "'$sizing'" : 'NULL',
        defined $name ? ", '$name'" : '');
    my $out = `psql -X -q -A -t -v ON_ERROR_STOP=1 -d '$db' -c "$q" 2>&1`;
    return $out =~ s/\s+\z//r unless $?;
    my ($state) = $out =~ /ERROR:\s+(\S.*)/;
    my ($detail) = $out =~ /DETAIL:\s+(.*)/;
    return "ERR $state: " . ($detail // '');
}

# A3 (420 x 297 mm) at 150 ppi needs 2480 x 1754 px (long x short)
is(check(3600, 2546, 'print-a3', undef), 'NULL',
    'a photo of the print ratio (within 1%) records no sizing');
is(check(2546, 3600, 'print-a3', undef), 'NULL',
    'portrait photo, landscape print: the same (orientation independent)');
is(check(2546, 3600, 'print-a3', 'fit'), 'NULL',
    'within 1% the client\'s choice is not recorded');

my $err = check(1200, 800, 'print-a3', 'crop', 'IMG_2.jpg');
like($err, qr/^ERR photo_too_small: /, 'far too small: 409 photo_too_small');
like($err, qr/Item 1: "IMG_2\.jpg" \(1200 x 800 px\) prints at most 20\.3 x 13\.5 cm at 150 ppi; "A3 print" is 42 x 29\.7 cm\./,
    'the message names the largest size and the product\'s') or diag $err;
like(check(800, 1200, 'print-a3', 'fit'), qr/^ERR photo_too_small: .*prints at most 13\.5 x 20\.3 cm/,
    'too small for fit too, in either orientation');
like(check(1200, 800, 'print-a3', undef),
    qr/^ERR photo_too_small: Item 1: the photo \(1200 x 800 px\)/,
    'without a name: "the photo"');

# a wide panorama 6000 x 1500: long side 6000/16.54 in = 363 ppi, short
# side 1500/11.69 in = 128 ppi: crop fills the short side (128 < 150),
# fit fills the long one (363)
like(check(6000, 1500, 'print-a3', 'crop'),
    qr/^ERR photo_too_small: .*Choose fit to print the whole photo/,
    'crop is stricter: the cropped side misses the minimum');
like(check(6000, 1500, 'print-a3', undef), qr/^ERR photo_too_small/,
    'crop is the default');
is(check(6000, 1500, 'print-a3', 'fit'), 'fit', 'fit passes and is recorded');
is(check(1500, 6000, 'print-a3', 'fit'), 'fit', 'portrait panorama too');
is(check(8000, 3000, 'print-a3', undef), 'crop',
    'a large enough photo of another ratio: crop recorded by default');
is(check(8000, 3000, 'print-a3', 'fit'), 'fit', 'or fit when chosen');
like(check(8000, 3000, 'print-a3', 'stretch'), qr/^ERR bad_sizing/,
    'an unknown sizing is refused');

# the product's min_ppi overrides the shop's: the canvas needs 100 ppi
# (1654 x 1169 px), so 2300 x 1600 makes a canvas but not a print
is(check(2300, 1600, 'canvas-a3', undef), 'crop',
    'product min_ppi 100 below the shop\'s 150: allowed');
like(check(2300, 1600, 'print-a3', undef), qr/^ERR photo_too_small.*at 150 ppi/,
    'the same photo is refused for the print at the shop\'s 150');
$t->sql('UPDATE shop_settings SET min_ppi = 90');
is(check(2300, 1600, 'print-a3', undef), 'crop',
    'the shop\'s min_ppi lowered to 90: the print is allowed');
$t->sql('UPDATE shop_settings SET min_ppi = 300');
like(check(2300, 1600, 'print-a3', undef), qr/^ERR photo_too_small.*at 300 ppi/,
    'raised to 300: refused, the message names 300 ppi');
is(check(2300, 1600, 'canvas-a3', undef), 'crop',
    'the canvas keeps its own 100 ppi');
$t->sql('UPDATE shop_settings SET min_ppi = 150');

# unknown pixel size: allowed, sizing as chosen
is(check(undef, undef, 'print-a3', undef), 'crop', 'unknown size: crop');
is(check(undef, undef, 'print-a3', 'fit'), 'fit', 'unknown size: fit');
is(check(undef, 800, 'print-a3', 'fit'), 'fit', 'half known: as unknown');

# no print size, digital: no check, no sizing
is(check(10, 10, 'print-plain', 'fit'), 'NULL', 'a print of no size: NULL');
is(check(10, 10, 'digital-original', undef), 'NULL', 'digital: NULL');
is(check(10, 10, 'no-such-product', undef), 'NULL', 'unknown product: NULL');

# exactly at the minimum passes: 2481 x 1755 px at A3 is 150.0 ppi
is(check(2481, 1755, 'print-a3', undef), 'NULL', 'just at 150 ppi: allowed');
like(check(2450, 1730, 'print-a3', undef), qr/^ERR photo_too_small/,
    'just below: refused');

# print_offers: what the sheet offers a photo
sub offers {
    my ($w, $h) = @_;
    return $t->sql_value(sprintf("SELECT print_offers(%s, %s, 'sheet')",
        $w // 'NULL', $h // 'NULL'));
}
is(offers(6000, 4000),
    '["print-a3", "print-sq", "canvas-a3", "digital-original"]',
    'a large photo: everything, in the sheet\'s order');
is(offers(4000, 6000),
    '["print-a3", "print-sq", "canvas-a3", "digital-original"]',
    'portrait: the same');
is(offers(1000, 700), '["digital-original"]', 'a small photo: digital only');
is(offers(1200, 800), '["print-sq", "digital-original"]',
    'a bit larger: the 20 cm square with fit (152 ppi)');
is(offers(2300, 1600), '["print-sq", "canvas-a3", "digital-original"]',
    'a middling photo: the square and the 100 ppi canvas');
is(offers(6000, 1500),
    '["print-a3", "print-sq", "canvas-a3", "digital-original"]',
    'a panorama: A3 with fit (not with crop)');
is(offers(undef, undef),
    '["print-a3", "print-sq", "canvas-a3", "digital-original"]',
    'unknown size: everything');
is($t->sql_value("SELECT print_offers(10, 10, 'no-sheet')"), '[]',
    'no such sheet: []');
$t->sql("UPDATE products SET active = false WHERE id = 'print-sq'");
is(offers(6000, 4000), '["print-a3", "canvas-a3", "digital-original"]',
    'an inactive product is not offered');

# every product print_offers lists passes print_check with fit
for my $size ([6000, 4000], [2300, 1600], [6000, 1500], [1200, 800],
              [1000, 700]) {
    my $list = offers(@$size);
    for my $p ($list =~ /"([^"]+)"/g) {
        unlike(check(@$size, $p, 'fit'), qr/^ERR/,
            "offered $p passes the check for @$size");
    }
}

done_testing();
