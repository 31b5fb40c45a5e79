#!/usr/bin/perl
# The demo gallery's sale and selection settings (conf/demo-gallery.sql,
# loaded by `make run` after the catalogue and the gallery's import): the
# price sheet demo-wedding sells the A4 (at 25.00, a price of its own), the
# A3, the framed print and the download, in that order, in pounds; a
# selection holds 3 photos, 5.00 per extra one; loading it twice changes
# nothing.  The demo's 3600 x 2400 originals make every product of the
# sheet, its 2000 x 1500 snapshot only the A4 and the download.

use strict;
use warnings;
use lib 't/lib';
use JSON::PP;
use Test::More;
use Darkroom::Test;

my $t = Darkroom::Test->new;
my $db = $t->db;
my $top = $t->top;

my $out = `"$top/tools/darkroom-catalogue" --quiet "$db" "$top/conf/demo-catalogue.json" 2>&1`;
is($?, 0, 'the demo catalogue loads') or diag $out;
$t->sql("SELECT gallery_admin_upsert('demo', '{}')");
for (1 .. 2) {
    $out = `psql -X -q -d "$db" -v ON_ERROR_STOP=1 -f "$top/conf/demo-gallery.sql" 2>&1`;
    is($?, 0, "demo-gallery.sql loads (run $_)") or diag $out;
}

is_deeply([ $t->sql("SELECT product_id FROM price_sheet_items"
    . " WHERE sheet_id = 'demo-wedding' ORDER BY position") ],
    [ ['giclee-a4'], ['giclee-a3'], ['framed-40x50'], ['digital-full'] ],
    'the sheet: A4, A3, framed, download');
is_deeply([ $t->sql("SELECT product_id, currency, amount"
    . " FROM price_sheet_prices") ], [ [ 'giclee-a4', 'GBP', 2500 ] ],
    "one price of the sheet's own: the A4 at 25.00");
is_deeply([ $t->sql("SELECT price_sheet_id, currency, selection_limit,"
    . " extra_photo_amount FROM galleries WHERE slug = 'demo'") ],
    [ [ 'demo-wedding', 'GBP', 3, 500 ] ],
    'the gallery: the sheet, pounds, choose 3, 5.00 per extra photo');

my %offers = map {
    $_ => decode_json($t->sql_value("SELECT print_offers($_,"
        . " 'demo-wedding')"))
} '3600, 2400', '2000, 1500';
is_deeply($offers{'3600, 2400'},
    [ 'giclee-a4', 'giclee-a3', 'framed-40x50', 'digital-full' ],
    'a 3600 x 2400 original makes everything the sheet sells');
is_deeply($offers{'2000, 1500'}, [ 'giclee-a4', 'digital-full' ],
    'the 2000 x 1500 snapshot: the A4 and the download only');

done_testing;
