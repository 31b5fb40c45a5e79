#!/usr/bin/perl
# The shop's own cart checks prints too (issue 14): a photo whose recorded
# pixels do not fill a product's print size at the minimum resolution
# (crop, as the labs fill the print by default) is refused 409
# photo_too_small, by the quote and the checkout alike, naming the largest
# size it prints at; nothing is written; the public catalogue does not
# offer it.  A photo of unknown size, a
# product of no print size and a digital product are not checked.

use strict;
use warnings;
use utf8;
use lib 't/lib';
use Test::More;
use JSON::PP;
use Darkroom::Test;
use Darkroom::Stripe qw(demo_catalogue shop_conf fake_api);

my $t = Darkroom::Test->new;
my $stripe = fake_api($t);
shop_conf($t, stripe => $stripe->url);
demo_catalogue($t);
$t->start;

$t->sql(<<'SQL');
UPDATE products SET print_width_mm = 297, print_height_mm = 420
 WHERE id = 'giclee-a3';
UPDATE photos SET width = 1200, height = 800 WHERE id = 'moor-rain';
UPDATE photos SET width = 6000, height = 4000 WHERE id = 'harbour-dawn';
SQL

sub post {
    my ($path, @items) = @_;
    return $t->http(POST => $path, {
        headers => { 'Content-Type' => 'application/json' },
        content => encode_json({ email => 'ada@example.com', items => [
            map { { photo => $_->[0], product => $_->[1], quantity => 1 } }
                @items ] }) });
}

my $orders = $t->sql_value('SELECT count(*) FROM orders');
for my $path ('/api/cart/quote', '/api/checkout') {
    my $r = post($path, ['harbour-dawn', 'giclee-a3'], ['moor-rain', 'giclee-a3']);
    is($r->{status}, 409, "$path: a photo too small for A3: 409")
        or diag $r->{content};
    is($r->{json}{error}{code}, 'photo_too_small', 'photo_too_small');
    is($r->{json}{error}{message}, 'Item 2: "Rain on the Moor" (1200 x 800 px)'
        . ' prints at most 20.3 x 13.5 cm at 150 ppi; "Giclée print, A3" is'
        . ' 29.7 x 42 cm.', 'naming the largest size it prints at');
}
is($t->sql_value('SELECT count(*) FROM orders'), $orders, 'no order written');

# the public catalogue offers a photo only the prints it fills
my %offered = map { $_->{id} => join(',', @{ $_->{products} }) }
    @{ $t->http(GET => '/api/catalogue')->{json}{photos} };
is($offered{'moor-rain'}, 'digital', 'the small photo: no A3 in the catalogue');
is($offered{'harbour-dawn'}, 'canvas-50,digital,giclee-a3',
    'the large one: its products');

my $r = post('/api/cart/quote', ['harbour-dawn', 'giclee-a3'],
    ['moor-rain', 'digital']);
is($r->{status}, 200, 'a large enough photo, and a download: quoted')
    or diag $r->{content};

$t->sql("UPDATE photos SET width = NULL, height = NULL WHERE id = 'moor-rain'");
$r = post('/api/checkout', ['moor-rain', 'giclee-a3']);
is($r->{status}, 201, 'unknown pixel size: not checked') or diag $r->{content};

$t->sql("UPDATE photos SET width = 1200, height = 800 WHERE id = 'moor-rain';"
    . " UPDATE products SET print_width_mm = NULL, print_height_mm = NULL"
    . " WHERE id = 'giclee-a3'");
$r = post('/api/cart/quote', ['moor-rain', 'giclee-a3']);
is($r->{status}, 200, 'no print size: not checked') or diag $r->{content};

done_testing;
