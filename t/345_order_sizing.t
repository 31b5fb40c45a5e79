#!/usr/bin/perl
# The sizing of a gallery print (issue 14) is shown wherever the order is:
# the order page's JSON (order_public_json), the admin's order, and the
# receipt email (text and HTML); a line without sizing shows none.  The
# order is made by the shop's checkout and its lines turned into gallery
# lines in SQL before it is paid (the gallery checkout writes such lines).

use strict;
use warnings;
use utf8;
use lib 't/lib';
use Test::More;
use JSON::PP;
use Darkroom::Test qw(wait_for);
use Darkroom::Stripe qw(demo_catalogue shop_conf fake_api event session
    signature);
use Darkroom::Mail qw(sandbox mail_conf);

my $t = Darkroom::Test->new;
my $stripe = fake_api($t);
my $mail = sandbox($t);
shop_conf($t, stripe => $stripe->url, secrets => ['whsec_sizing'],
    http => mail_conf($t, $mail, 'resend'));
demo_catalogue($t);
$t->start;

$t->sql("INSERT INTO galleries (slug, title) VALUES ('wed', 'Wedding')");
my $gp = $t->sql_value("INSERT INTO gallery_photos (gallery_id, name,"
    . " original_path, bytes, crc32) SELECT id, 'IMG_7.jpg', 'wed/IMG_7.jpg',"
    . " 1, 1 FROM galleries RETURNING id");

my $r = $t->http(POST => '/api/checkout', {
    headers => { 'Content-Type' => 'application/json' },
    content => encode_json({ email => 'ada@example.com', items => [
        { photo => 'harbour-dawn', product => 'giclee-a3', quantity => 1 },
        { photo => 'moor-rain', product => 'giclee-a3', quantity => 1 },
        { photo => 'harbour-dawn', product => 'canvas-50', quantity => 1 },
    ] }) });
is($r->{status}, 201, 'checkout') or diag $r->{content};
my $ref = $r->{json}{order};
my ($token) = $r->{json}{status_url} =~ m{([0-9a-f]{32})$};
my ($id, $total) = @{ ($t->sql("SELECT id, total FROM orders WHERE ref = :'p1'",
                               $ref))[0] };
$t->sql("UPDATE order_items SET photo_id = 'gallery:' || :'p1',"
    . " gallery_photo_id = :'p1', title = 'IMG_7.jpg',"
    . " sizing = CASE line WHEN 1 THEN 'crop' WHEN 2 THEN 'fit' END"
    . " WHERE order_id = :'p2' AND line IN (1, 2)", $gp, $id);

my $body = event('checkout.session.completed', session(id => "cs_test_$id",
    order_id => $id, ref => $ref, amount => $total));
$r = $t->http(POST => '/webhooks/stripe', { headers => {
    'Content-Type' => 'application/json',
    'Stripe-Signature' => signature('whsec_sizing', $body) },
    content => $body });
is($r->{json}{result}, 'paid', 'paid') or diag $r->{content};

# the order page
$r = $t->http(GET => "/api/orders/$token");
is($r->{status}, 200, 'the order page');
is_deeply([ map { $_->{sizing} } @{ $r->{json}{items} } ],
    ['crop', 'fit', undef], 'each item\'s sizing: crop, fit, none');
ok(exists $r->{json}{items}[2]{sizing}, 'present (null) without sizing');

# the admin's order
$r = $t->http(GET => "/admin/api/orders/$ref",
    { headers => { Authorization => 'Bearer admin-token-1' } });
is($r->{status}, 200, 'the admin order') or diag $r->{content};
is_deeply([ map { $_->{sizing} } @{ $r->{json}{items} } ],
    ['crop', 'fit', undef], 'the admin sees the sizing');

# the receipt
ok(wait_for(sub { $t->sql_value("SELECT count(*) FROM jobs WHERE kind ="
    . " 'email' AND done_at IS NULL") == 0 }, 20), 'the mail jobs ran');
my ($m) = grep { ($_->{tag} // '') eq 'receipt' } $mail->messages;
ok($m, 'a receipt') or diag explain [ $mail->messages ];
my $text = $m->{text} // '';
like($text, qr/^1 x IMG_7\.jpg \(Giclée print, A3\)\s+\S+\n\s+Cropped to fill the print$/m,
    'receipt text: line 1 cropped') or diag $text;
like($text, qr/\n\s+The whole photo, with borders\n(?:.*\n)*?1 x Harbour at Dawn \(Canvas/,
    'receipt text: line 2 whole, with borders') or diag $text;
unlike($text, qr/Canvas.*\n\s+(Cropped|The whole)/,
    'receipt text: nothing for the line without sizing');
like($m->{html} // '', qr/Cropped to fill the print/, 'receipt HTML: crop');
like($m->{html} // '', qr/The whole photo, with borders/, 'receipt HTML: fit');

done_testing;
