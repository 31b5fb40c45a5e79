#!/usr/bin/perl

# Issue 14: the gallery listing (GET <slug>) says what the gallery sells:
# gallery.shop (null without a price sheet; the sheet's prices in the
# gallery's currency, else the catalogue's; unpriced products left out),
# and each photo its pixel size and the products it prints as at the
# minimum resolution (print_offers), digital always.

use strict;
use warnings;

use lib 't/lib';
use Darkroom::Test;
use JSON::PP;
use Test::More;

my $t = Darkroom::Test->new;

$t->write_file('keys', "m1:media-key-0123456789abcdef\n");
$t->write_file('cookie_key', "cookie-key-0123456789abcdef\n");
$t->write_file('admin_token', "gallery-admin-token\n");
$t->write_file("files/wed/$_.jpg", "original $_\n")
    for qw(big small pano unknown);

$t->conf(<<'EOF');
%%MAIN%%
thread_pool dr threads=4;
events {}
http {
    %%HTTP%%
    darkroom_db "%%DB%%";
    darkroom_db_pool dr;
    darkroom_jobs off;
    darkroom_admin_token_file %%DIR%%/admin_token;
    darkroom_currency EUR;

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

        location /api/admin/galleries/ {
            darkroom_gallery_admin;
        }
    }
}
EOF

$t->start;

sub admin {
    my ($method, $path, $body) = @_;
    return $t->http($method, "/api/admin/galleries/$path", {
        headers => { Authorization => 'Bearer gallery-admin-token' },
        defined $body ? (content => encode_json($body)) : () });
}

sub listing {
    my $r = $t->http(GET => "/api/galleries/$_[0]");
    is($r->{status}, 200, "GET $_[0]") or diag $r->{content};
    return $r->{json};
}

$t->sql(<<'SQL');
INSERT INTO products (id, name, kind, print_width_mm, print_height_mm, min_ppi)
VALUES ('print-a3', 'A3 print', 'print', 420, 297, NULL),
       ('print-a4', 'A4 print', 'print', 297, 210, NULL),
       ('canvas-a3', 'A3 canvas', 'print', 420, 297, 100),
       ('print-usd', 'Dollar print', 'print', 254, 203.2, NULL),
       ('digital-original', 'Original file', 'digital', NULL, NULL, NULL);
INSERT INTO product_prices (product_id, currency, amount)
VALUES ('print-a3', 'GBP', 4000), ('print-a3', 'EUR', 4500),
       ('print-a4', 'GBP', 2500), ('canvas-a3', 'GBP', 9000),
       ('print-usd', 'USD', 1000), ('digital-original', 'GBP', 1500),
       ('digital-original', 'EUR', 1700);
INSERT INTO price_sheets (id, name) VALUES ('wedding-2026', 'Weddings 2026');
INSERT INTO price_sheet_items (sheet_id, product_id, position)
VALUES ('wedding-2026', 'digital-original', 9),
       ('wedding-2026', 'print-a4', 1), ('wedding-2026', 'print-a3', 2),
       ('wedding-2026', 'canvas-a3', 3), ('wedding-2026', 'print-usd', 4);
INSERT INTO price_sheet_prices (sheet_id, product_id, currency, amount)
VALUES ('wedding-2026', 'print-a4', 'GBP', 2200),
       ('wedding-2026', 'canvas-a3', 'EUR', 9900);
SQL

my $r = admin(POST => '', { slug => 'wed', title => 'Wedding' });
is($r->{status}, 200, 'gallery created') or diag $r->{content};
$r = admin(POST => 'wed/photos', { photos => [
    { original => 'wed/big.jpg', bytes => 13, crc32 => 1,
      width => 6000, height => 4000 },
    { original => 'wed/small.jpg', bytes => 15, crc32 => 2,
      width => 1200, height => 800 },
    { original => 'wed/pano.jpg', bytes => 14, crc32 => 3,
      width => 1500, height => 6000 },
    { original => 'wed/unknown.jpg', bytes => 17, crc32 => 4 } ] });
is($r->{status}, 200, 'photos added') or diag $r->{content};

# no price sheet: shop null, photos offer nothing
my $j = listing('wed');
ok(exists $j->{gallery}{shop} && !defined $j->{gallery}{shop},
    'no price sheet: gallery.shop is null');
my %ph = map { $_->{name} => $_ } @{ $j->{photos} };
is_deeply($ph{'big.jpg'}{products}, [], 'no sheet: no products');
is($ph{'big.jpg'}{width}, 6000, 'width in pixels');
is($ph{'big.jpg'}{height}, 4000, 'height in pixels');
ok(exists $ph{'unknown.jpg'}{width} && !defined $ph{'unknown.jpg'}{width},
    'an unknown width is null');
ok(exists $ph{'unknown.jpg'}{height} && !defined $ph{'unknown.jpg'}{height},
    'an unknown height is null');

# a sheet, gallery in GBP
$t->sql("UPDATE galleries SET price_sheet_id = 'wedding-2026',"
    . " currency = 'GBP' WHERE slug = 'wed'");
$j = listing('wed');
is_deeply($j->{gallery}{shop}, {
    currency => 'GBP', sheet => 'wedding-2026',
    products => [
        { id => 'print-a4', name => 'A4 print', kind => 'print',
          unit_amount => 2200,
          print_size => { width_mm => 297, height_mm => 210 } },
        { id => 'print-a3', name => 'A3 print', kind => 'print',
          unit_amount => 4000,
          print_size => { width_mm => 420, height_mm => 297 } },
        { id => 'canvas-a3', name => 'A3 canvas', kind => 'print',
          unit_amount => 9000,
          print_size => { width_mm => 420, height_mm => 297 } },
        { id => 'digital-original', name => 'Original file',
          kind => 'digital', unit_amount => 1500, print_size => undef },
    ] }, 'gallery.shop: sheet price over the catalogue\'s, sheet order,'
       . ' the product without a GBP price left out')
    or diag explain $j->{gallery}{shop};

%ph = map { $_->{name} => $_ } @{ $j->{photos} };
is_deeply($ph{'big.jpg'}{products},
    [qw(print-a4 print-a3 canvas-a3 digital-original)],
    'a large photo makes everything');
is_deeply($ph{'small.jpg'}{products}, ['digital-original'],
    'a 1200 x 800 photo: no print at 150 ppi (A4 needs 1754 x 1240)');
is_deeply($ph{'pano.jpg'}{products},
    [qw(print-a4 print-a3 canvas-a3 digital-original)],
    'a portrait panorama: the prints it makes with fit');
is_deeply($ph{'unknown.jpg'}{products},
    [qw(print-a4 print-a3 canvas-a3 digital-original)],
    'unknown pixel size: everything');

# the listing's rows work the prints out once per pixel size (issue 17):
# the same rows, in the same order, as once per photo
my $gid = "(SELECT id FROM galleries WHERE slug = 'wed')";
is_deeply([ $t->sql("SELECT id, products FROM gallery_photos_listing($gid,"
                    . " 'GBP')") ],
          [ $t->sql("SELECT id, gallery_photo_products($gid, 'GBP', width,"
                    . " height) FROM gallery_photos_list($gid)") ],
          'gallery_photos_listing() is gallery_photo_products() per photo');

# the shop's min_ppi lowered: the small photo makes A4 at 100 ppi
$t->sql('UPDATE shop_settings SET min_ppi = 100');
%ph = map { $_->{name} => $_ } @{ listing('wed')->{photos} };
is_deeply($ph{'small.jpg'}{products}, [qw(print-a4 digital-original)],
    'shop min_ppi 100: the small photo makes A4');
$t->sql('UPDATE shop_settings SET min_ppi = 150');

# no gallery currency: the shop's (darkroom_currency EUR)
$t->sql("UPDATE galleries SET currency = NULL WHERE slug = 'wed'");
$j = listing('wed');
is($j->{gallery}{shop}{currency}, 'EUR', 'no gallery currency: the shop\'s');
is_deeply([ map { "$_->{id}=$_->{unit_amount}" }
            @{ $j->{gallery}{shop}{products} } ],
    [qw(print-a3=4500 canvas-a3=9900 digital-original=1700)],
    'EUR: the sheet\'s canvas price, the catalogue\'s others, no A4');
%ph = map { $_->{name} => $_ } @{ $j->{photos} };
is_deeply($ph{'big.jpg'}{products}, [qw(print-a3 canvas-a3 digital-original)],
    'a photo\'s products are those the gallery sells in its currency');

# an inactive product is not sold
$t->sql("UPDATE products SET active = false WHERE id = 'canvas-a3'");
$j = listing('wed');
is_deeply([ map { $_->{id} } @{ $j->{gallery}{shop}{products} } ],
    [qw(print-a3 digital-original)], 'an inactive product leaves the shop');
%ph = map { $_->{name} => $_ } @{ $j->{photos} };
is_deeply($ph{'big.jpg'}{products}, [qw(print-a3 digital-original)],
    'and the photos\' products');

# a sheet with nothing priced in the currency: an empty shop, not null
$t->sql("UPDATE galleries SET currency = 'JPY' WHERE slug = 'wed'");
$j = listing('wed');
is_deeply($j->{gallery}{shop},
    { currency => 'JPY', sheet => 'wedding-2026', products => [] },
    'nothing priced in JPY: products []');

# a protected gallery: the listing (and so the shop) needs the cookie
$r = admin(POST => 'wed', { password => 'open sesame' });
is($r->{status}, 200, 'password set') or diag $r->{content};
is($t->http(GET => '/api/galleries/wed')->{status}, 401,
    'a locked gallery answers 401 without the cookie');

done_testing();
