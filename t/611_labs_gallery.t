#!/usr/bin/perl
# Lab fulfilment of gallery lines (issue 14): a paid order whose print
# lines are gallery photos sends the lab each photo's gallery original
# (gallery_photos.original_path under the gallery root) through a signed
# darkroom_lab_gallery_asset_url link, with the client's sizing: crop ->
# Prodigi fillPrintArea, fit -> fitPrintArea, none (same ratio) -> the
# mapping's own.  theprintspace prints only the shop's creativehub photos,
# so a gallery line goes to the next lab.  Digital and selection lines
# need no lab.  The orders are made by the shop's checkout and turned into
# gallery lines in SQL before they are paid (the gallery checkout builds
# such lines itself).

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use JSON::PP;
use Digest::SHA qw(sha256_hex);
use Darkroom::Test qw(wait_for);
use Darkroom::Stripe qw(fake_api);
use LabSandbox;

my $t = Darkroom::Test->new;
my $stripe = fake_api($t);
my $lab = LabSandbox::start($t);
LabSandbox::conf($t, $stripe->url, $lab,
    http => 'darkroom_lab_poll_interval 300ms;'
        . ' darkroom_lab_gallery_asset_url'
        . ' http://127.0.0.1:%%PORT2%%/gallery-originals;',
    server => 'location /gallery-originals/ { darkroom_media on;'
        . ' darkroom_media_keys %%DIR%%/media.keys;'
        . ' alias %%DIR%%/galleries/; }');
LabSandbox::mapping($t);
$t->start;

my %orig = (
    'wed/IMG_1.jpg' => 'JPEG' . ('1' x 3001),
    'wed/IMG_2.jpg' => 'JPEG' . ('2' x 4002),
    'wed/IMG_3.jpg' => 'JPEG' . ('3' x 5003),
);
$t->write_file("galleries/$_", $orig{$_}) for keys %orig;

$t->sql("INSERT INTO galleries (slug, title) VALUES ('wed', 'Wedding')");
my %gp;
for my $n (1 .. 3) {
    my $path = "wed/IMG_$n.jpg";
    $gp{$n} = $t->sql_value("INSERT INTO gallery_photos (gallery_id, name,"
        . " position, original_path, bytes, crc32, width, height)"
        . " SELECT id, :'p1', :'p2', :'p3', :'p4', 1, 6000, 4000"
        . " FROM galleries WHERE slug = 'wed' RETURNING id",
        "IMG_$n.jpg", $n, $path, length $orig{$path});
}

# the lines of the order become gallery lines: [line, gallery photo,
# sizing, kind]
sub galleryise {
    my ($o, @lines) = @_;
    for my $l (@lines) {
        my ($line, $n, $sizing, $kind) = @$l;
        $t->sql("UPDATE order_items SET photo_id = 'gallery:' || :'p1',"
            . " gallery_photo_id = :'p1', title = :'p2',"
            . " sizing = nullif(:'p3', ''),"
            . " kind = coalesce(nullif(:'p6', ''), kind)"
            . " WHERE order_id = :'p4' AND line = :'p5'",
            $gp{$n}, "IMG_$n.jpg", $sizing // '', $o->{id}, $line,
            $kind // '');
    }
    $t->sql("UPDATE orders SET gallery_id = (SELECT id FROM galleries"
        . " WHERE slug = 'wed') WHERE id = :'p1'", $o->{id});
}

my $o = LabSandbox::paid_order($t, [ ['moor-rain', 'canvas-50', 1],
    ['harbour-dawn', 'canvas-50', 2], ['harbour-dawn', 'giclee-a3', 1],
    ['harbour-dawn', 'digital', 1], ['harbour-dawn', 'giclee-a3', 1] ],
    before_paid => sub {
        galleryise($_[0], [1, 1, 'crop'], [2, 2, 'fit'], [3, 3, undef],
                   [4, 1, undef], [5, 2, undef, 'selection']);
    });

ok(wait_for(sub { my @l = LabSandbox::lab_orders($t, $o);
    @l == 1 && $l[0][2] eq 'submitted' }, 20),
    'one lab order, submitted') or diag explain [LabSandbox::lab_orders($t, $o)];
my @lo = LabSandbox::lab_orders($t, $o);
is($lo[0][1], 'prodigi',
    'Prodigi: theprintspace prints no gallery photo (the giclée went on)');
like($t->sql_value("SELECT detail->>'not_first_choice' FROM lab_order_events"
    . " WHERE lab_order_id = :'p1' AND detail ? 'not_first_choice'", $lo[0][0]),
    qr/theprintspace prints only the shop's photos/,
    'the history says why theprintspace did not get the giclée');

my $st = $lab->state;
my @pk = keys %{$st->{prodigi}};
is(scalar @pk, 1, 'one Prodigi order');
my $po = $st->{prodigi}{$pk[0]};
is(scalar @{$po->{items}}, 3,
    'three Prodigi items: the digital and the selection lines stay');
is($t->sql_value("SELECT count(*) FROM lab_order_items WHERE line IN (4, 5)"),
    0, 'no lab line for the digital or the selection line');
my @items = sort { $a->{merchantReference} cmp $b->{merchantReference} }
    @{$po->{items}};
is_deeply([ map { $_->{sizing} } @items ],
    ['fillPrintArea', 'fitPrintArea', 'fillPrintArea'],
    'crop -> fillPrintArea, fit -> fitPrintArea, none -> the mapping\'s');
is_deeply([ map { $_->{sku} } @items ],
    ['GLOBAL-CAN-20X28', 'GLOBAL-CAN-20X28', 'GLOBAL-FAP-A3'], 'SKUs');
for my $n (1 .. 3) {
    like($items[$n - 1]{assets}[0]{url},
        qr{^http://127\.0\.0\.1:\d+/gallery-originals/wed/IMG_$n\.jpg\?exp=\d+&kid=k1&sig=[\w-]{43}$},
        "line $n: the gallery original through a signed link");
}

# what the lab downloaded: each original whole, with its sizing
my %dl = map { ($_->{url} =~ m{/(wed/IMG_\d\.jpg)\?}) => $_ } $lab->received;
for my $n (1 .. 3) {
    my $d = $dl{"wed/IMG_$n.jpg"};
    is($d->{status}, 200, "the lab downloaded IMG_$n.jpg");
    is($d->{sha256}, sha256_hex($orig{"wed/IMG_$n.jpg"}),
        "IMG_$n.jpg: the gallery original, byte for byte");
}
is($dl{'wed/IMG_1.jpg'}{sizing}, 'fillPrintArea', 'crop reached the lab');
is($dl{'wed/IMG_2.jpg'}{sizing}, 'fitPrintArea', 'fit reached the lab');

# the lab admin API shows each line's sizing and that it is a gallery's
my $r = LabSandbox::admin($t, GET => "orders/$lo[0][0]");
is_deeply([ map { "$_->{line}:$_->{sizing}:" . ($_->{gallery} ? 'g' : '-') }
            @{ $r->{json}{items} } ],
    ['1:fillPrintArea:g', '2:fitPrintArea:g', '3:fillPrintArea:g'],
    'the lab admin API: sizing and gallery per line');

# the link is signed: another path with its signature is refused
(my $bad = $items[0]{assets}[0]{url}) =~ s/IMG_1/IMG_2/;
is(HTTP::Tiny->new->get($bad)->{status}, 403, 'the signature covers the path');

# the raw request had the sizing too
my ($req) = grep { $_->{path} eq '/v4.0/Orders' } $lab->requests;
my $sent = decode_json($req->{body});
is_deeply([ sort map { $_->{sizing} } @{$sent->{items}} ],
    [ 'fillPrintArea', 'fillPrintArea', 'fitPrintArea' ],
    'the request darkroom sent carries the sizing');

# a gallery line whose photo was deleted since: no print file, refused
# for a person to look at, not sent
my $o2 = LabSandbox::paid_order($t, [ ['moor-rain', 'canvas-50', 1] ],
    before_paid => sub {
        galleryise($_[0], [1, 3, 'fit']);
        $t->sql("UPDATE order_items SET gallery_photo_id = NULL"
            . " WHERE order_id = :'p1'", $_[0]{id});
    });
ok(wait_for(sub { my @l = LabSandbox::lab_orders($t, $o2);
    @l && $l[0][2] eq 'needs_attention' }, 10),
    'a gallery line without its photo needs attention')
    or diag explain [LabSandbox::lab_orders($t, $o2)];
like((LabSandbox::lab_orders($t, $o2))[0][5], qr/no print file/,
    'the reason: no print file');

# a gallery print that only theprintspace makes: no lab can, the order
# needs review, saying why
$t->sql(<<'SQL');
INSERT INTO products (id, name, kind) VALUES ('tps-only', 'Museum print', 'print');
INSERT INTO product_prices VALUES ('tps-only', 'GBP', 3000);
INSERT INTO photo_products VALUES ('moor-rain', 'tps-only');
INSERT INTO lab_products (product_id, lab, sku, attributes, priority)
VALUES ('tps-only', 'printspace', 'TPS-HM', '{"PrintOptionId": 302}', 1);
SQL
my $o3 = LabSandbox::paid_order($t, [ ['moor-rain', 'tps-only', 1] ],
    before_paid => sub { galleryise($_[0], [1, 2, 'crop']) });
ok(wait_for(sub { $t->sql_value("SELECT status FROM orders WHERE id = :'p1'",
    $o3->{id}) eq 'needs_review' }, 10),
    'only theprintspace makes it: the order needs review');
like($t->sql_value("SELECT review_reason FROM orders WHERE id = :'p1'",
    $o3->{id}), qr/theprintspace prints only the shop's photos/,
    'the reason says theprintspace prints no gallery photo');
is(scalar(LabSandbox::lab_orders($t, $o3)), 0, 'no lab order made');

done_testing;
