#!/usr/bin/perl
# Digital delivery of gallery lines (issue 14): a paid order's digital line
# of a gallery photo gets a download grant of the gallery's original
# ("gallery:<path>", served from darkroom_download_gallery_root), saved
# under the photo's own name; a selection line (a proofing selection's
# extra photos) and a print line get none; a gallery line whose photo is
# gone gets none and the order's history says so.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use HTTP::Tiny;
use JSON::PP;
use Digest::SHA qw(sha256_hex);
use Darkroom::Test;
use Darkroom::Downloads qw(download_shop);

my $t = Darkroom::Test->new;
download_shop($t, limit => 2,
    extra => "    darkroom_download_gallery_root %%DIR%%/galleries/;\n");
$t->start;

my %orig = ('wed/IMG_1.jpg' => 'GALLERY-ONE' . ('1' x 2000),
            'wed/IMG_2.JPG' => 'GALLERY-TWO' . ('2' x 3000));
$t->write_file("galleries/$_", $orig{$_}) for keys %orig;
$t->sql("INSERT INTO galleries (slug, title) VALUES ('wed', 'Wedding')");
my %gp;
for my $n (1, 2) {
    my ($path) = grep { /IMG_$n/ } keys %orig;
    $gp{$n} = $t->sql_value("INSERT INTO gallery_photos (gallery_id, name,"
        . " position, original_path, bytes, crc32)"
        . " SELECT id, :'p1', :'p2', :'p3', :'p4', 1"
        . " FROM galleries WHERE slug = 'wed' RETURNING id",
        $path =~ s{.*/}{}r, $n, $path, length $orig{$path});
}

# an order made by the shop's checkout, its lines turned into gallery
# lines ([line, gallery photo, kind]) before it is paid, as the gallery
# checkout writes them
my $JSON = JSON::PP->new->canonical;
my $n = 0;
sub gallery_order {
    my ($items, @lines) = @_;
    my $token = substr(sha256_hex("token-$$-" . ++$n), 0, 32);
    my ($row) = $t->sql("SELECT order_id, total FROM checkout_create("
        . ":'p1'::jsonb, 'ada\@example.com', 'GBP', 'GB', NULL, NULL, :'p2',"
        . " now() + interval '1 hour', now() + interval '1 day')",
        $JSON->encode([ map { { photo => $_->[0], product => $_->[1],
            quantity => 1 } } @$items ]), sha256_hex($token));
    my ($id, $total) = @$row;
    for my $l (@lines) {
        my ($line, $photo, $kind) = @$l;
        $t->sql("UPDATE order_items SET photo_id = 'gallery:' || :'p1',"
            . " gallery_photo_id = :'p1', title = 'IMG_' || :'p1',"
            . " kind = coalesce(nullif(:'p2', ''), kind)"
            . " WHERE order_id = :'p3' AND line = :'p4'",
            $gp{$photo}, $kind // '', $id, $line);
    }
    my $paid = $t->sql_value("SET darkroom.download_limit = 2;"
        . " SELECT order_mark_paid(:'p1', :'p2'::jsonb, 'test')", $id,
        $JSON->encode({ amount_total => $total, currency => 'gbp',
                        payment_intent => "pi_gal_$id" }));
    return { id => $id, token => $token, result => $paid };
}

my $o = gallery_order([ ['moor-rain', 'digital'], ['harbour-dawn', 'digital'],
    ['moor-rain', 'giclee-a3'], ['harbour-dawn', 'digital'] ],
    [1, 1], [2, 2, 'selection'], [3, 2], [4, 2]);
is($o->{result}, 'paid', 'paid');

my @g = $t->sql("SELECT line, file, name FROM download_grants"
    . " WHERE order_id = :'p1' ORDER BY line", $o->{id});
is_deeply(\@g, [ [1, 'gallery:wed/IMG_1.jpg', 'IMG_1.jpg'],
                 [4, 'gallery:wed/IMG_2.JPG', 'IMG_2.jpg'] ],
    'grants for the gallery digital lines: the originals, the photos\' names;'
    . ' none for the selection line or the print');

my $r = $t->http(GET => "/api/orders/$o->{token}");
is($r->{status}, 200, 'the order page');
my @d = @{ $r->{json}{downloads} };
is(scalar @d, 2, 'two downloads listed');

my $ua = HTTP::Tiny->new(max_redirect => 0, keep_alive => 0, timeout => 15);
$r = $ua->get($d[0]{url});
is($r->{status}, 200, 'the gallery line\'s link downloads');
is($r->{content}, $orig{'wed/IMG_1.jpg'}, 'the gallery original');
like($r->{headers}{'content-disposition'}, qr/filename="IMG_1\.jpg"/,
    'saved under the photo\'s name');
$r = $ua->get($d[1]{url});
is($r->{content}, $orig{'wed/IMG_2.JPG'}, 'the other original');

# counted like any download
$ua->get($d[0]{url});
$r = $ua->get($d[0]{url});
is($r->{status}, 410, 'the limit holds for gallery downloads too');

# a download location without darkroom_download_gallery_root cannot serve
# a gallery original: 404 file_missing, and the error log says why
$t->conf($t->{conf_text} =~ s/darkroom_download_gallery_root[^;]*;//r);
$t->reload;
$r = $ua->get($d[1]{url});
is($r->{status}, 404, 'no gallery root here: 404');
like($r->{content}, qr/"file_missing"/, 'file_missing');
like($t->error_log, qr/gallery photo.s, and no "darkroom_download_gallery_root" here/,
    'the log says why');

# a gallery line whose photo was deleted: no grant, downloads_missing
my ($row) = $t->sql("SELECT order_id, total FROM checkout_create("
    . "'[{\"photo\":\"moor-rain\",\"product\":\"digital\",\"quantity\":1}]',"
    . " 'ada\@example.com', 'GBP', 'GB', NULL, NULL, :'p1',"
    . " now() + interval '1 hour', now() + interval '1 day')",
    sha256_hex('gone'));
$t->sql("UPDATE order_items SET photo_id = 'gallery:424242',"
    . " gallery_photo_id = NULL WHERE order_id = :'p1'", $row->[0]);
$t->sql("SELECT order_mark_paid(:'p1', :'p2'::jsonb, 'test')", $row->[0],
    $JSON->encode({ amount_total => $row->[1], currency => 'gbp',
                    payment_intent => "pi_gone" }));
is($t->sql_value("SELECT count(*) FROM download_grants WHERE order_id = :'p1'",
    $row->[0]), 0, 'a gallery line whose photo is gone: no grant');
is($t->sql_value("SELECT detail->>'downloads_missing' FROM order_events"
    . " WHERE order_id = :'p1' AND detail ? 'downloads_missing'", $row->[0]),
    '[1]', 'and the order\'s history says so');

done_testing;
