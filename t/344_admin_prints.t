#!/usr/bin/perl
# The shop admin API and print checks (issue 14): a product's print_size
# {width_mm, height_mm} and min_ppi, a photo's width and height in pixels,
# the shop's min_ppi in the settings; absent leaves them, null clears
# them; bad values are a 400 naming the field and change nothing.

use strict;
use warnings;
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

sub api {
    my ($method, $path, $body) = @_;
    return $t->http($method => "/admin/api/$path", {
        headers => { Authorization => 'Bearer admin-token-1',
                     'Content-Type' => 'application/json' },
        defined $body ? (content => ref $body ? encode_json($body) : $body)
                      : () });
}

sub product {
    my ($id) = @_;
    my ($p) = grep { $_->{id} eq $id } @{ api(GET => 'products')->{json}{products} };
    return $p;
}

# --- products ----------------------------------------------------------------
is_deeply([ @{product('giclee-a3')}{qw(print_size min_ppi)} ], [undef, undef],
    'no print size or min_ppi yet: null');

my $r = api(POST => 'products', { id => 'giclee-a3',
    print_size => { width_mm => 297, height_mm => 420 }, min_ppi => 200 });
is($r->{status}, 200, 'print size and min_ppi set') or diag $r->{content};
is_deeply($r->{json}{print_size}, { width_mm => 297, height_mm => 420 },
    'print_size answered');
is($r->{json}{min_ppi}, 200, 'min_ppi answered');
is($t->sql_value("SELECT print_width_mm || 'x' || print_height_mm || '\@'"
    . " || min_ppi FROM products WHERE id = 'giclee-a3'"), '297.0x420.0@200',
    'stored');

$r = api(POST => 'products', { id => 'giclee-a3', name => 'A3 giclée' });
is_deeply([ $r->{json}{print_size}{width_mm}, $r->{json}{min_ppi} ], [297, 200],
    'absent: left as they are');

$r = api(POST => 'products', { id => 'canvas-50',
    print_size => { width_mm => 500.5, height_mm => 700 } });
is_deeply($r->{json}{print_size}, { width_mm => 500.5, height_mm => 700 },
    'a tenth of a millimetre is kept');

$r = api(POST => 'products', { id => 'giclee-a3', min_ppi => undef });
is($r->{json}{min_ppi}, undef, 'min_ppi null: the shop\'s again');
$r = api(POST => 'products', { id => 'canvas-50', print_size => undef });
is($r->{json}{print_size}, undef, 'print_size null: none');

$r = api(POST => 'products', { id => 'poster-a2', name => 'Poster, A2',
    kind => 'print', print_size => { width_mm => 420, height_mm => 594 },
    prices => { GBP => 3000 } });
is($r->{status}, 200, 'a new product with its print size')
    or diag $r->{content};

my $before = join '|', map { join ',', map { $_ // '' } @$_ } $t->sql(
    "SELECT id, print_width_mm, print_height_mm, min_ppi, updated_at"
    . " FROM products ORDER BY id");
for my $case (
    [ { id => 'giclee-a3', print_size => { width_mm => 297 } }, 'print_size' ],
    [ { id => 'giclee-a3', print_size => { width_mm => 0, height_mm => 1 } },
      'print_size' ],
    [ { id => 'giclee-a3', print_size => { width_mm => '297',
                                           height_mm => 420 } }, 'print_size' ],
    [ { id => 'giclee-a3', print_size => [297, 420] }, 'print_size' ],
    [ { id => 'giclee-a3', print_size => { width_mm => 297, height_mm => 420,
                                           depth_mm => 2 } }, 'print_size' ],
    [ { id => 'digital', print_size => { width_mm => 297, height_mm => 420 } },
      'print_size' ],
    [ { id => 'giclee-a3', min_ppi => 0 }, 'min_ppi' ],
    [ { id => 'giclee-a3', min_ppi => 2401 }, 'min_ppi' ],
    [ { id => 'giclee-a3', min_ppi => 150.5 }, 'min_ppi' ],
    [ { id => 'giclee-a3', min_ppi => '150' }, 'min_ppi' ],
    [ { id => 'new-one', print_size => { width_mm => -1, height_mm => 1 } },
      'print_size' ],
) {
    $r = api(POST => 'products', $case->[0]);
    is($r->{status}, 400, 'refused: ' . encode_json($case->[0]));
    is($r->{json}{error}{code}, "invalid_$case->[1]", "naming $case->[1]")
        or diag $r->{content};
}
is(join('|', map { join ',', map { $_ // '' } @$_ } $t->sql(
    "SELECT id, print_width_mm, print_height_mm, min_ppi, updated_at"
    . " FROM products ORDER BY id")), $before, 'nothing changed');

# --- photos ------------------------------------------------------------------
$r = api(POST => 'photos', { id => 'harbour-dawn', width => 7200,
                             height => 4800 });
is($r->{status}, 200, 'a photo\'s pixels') or diag $r->{content};
is_deeply([ @{$r->{json}}{qw(width height)} ], [7200, 4800], 'answered');
$r = api(POST => 'photos', { id => 'harbour-dawn', title => 'Dawn' });
is_deeply([ @{$r->{json}}{qw(width height)} ], [7200, 4800], 'absent: kept');
for my $body ({ width => 7200 }, { width => 0, height => 10 },
              { width => '7200', height => 4800 }, { width => undef,
                height => 4800 }) {
    $r = api(POST => 'photos', { id => 'harbour-dawn', %$body });
    is($r->{status}, 400, 'refused: ' . encode_json($body));
    is($r->{json}{error}{code}, 'invalid_width', 'naming width');
}
$r = api(POST => 'photos', { id => 'harbour-dawn', width => undef,
                             height => undef });
is_deeply([ @{$r->{json}}{qw(width height)} ], [undef, undef],
    'both null: unknown again');

# --- settings ----------------------------------------------------------------
$r = api(GET => 'settings');
is($r->{json}{min_ppi}, 150, 'the shop\'s min_ppi: 150 by default');
$r = api(POST => 'settings', { min_ppi => 240 });
is($r->{status}, 200, 'min_ppi set') or diag $r->{content};
is($r->{json}{min_ppi}, 240, 'answered');
is($t->sql_value('SELECT min_ppi FROM shop_settings'), 240, 'stored');
for my $v (0, 2401, '200', 12.5, undef) {
    $r = api(POST => 'settings', { min_ppi => $v });
    is($r->{status}, 400, 'settings min_ppi refused: '
        . encode_json({ v => $v }));
    is($r->{json}{error}{code}, 'invalid_min_ppi', 'naming min_ppi');
}
is($t->sql_value('SELECT min_ppi FROM shop_settings'), 240, 'unchanged');

# what is set is what print_check weighs: 240 ppi on A3 (297 x 420 mm)
# needs 2806 x 3969 px
$t->sql("UPDATE products SET min_ppi = NULL WHERE id = 'giclee-a3'");
like(`psql -X -q -A -t -d '${\ $t->db }' -c "SELECT print_check(2800, 3900, 'giclee-a3', NULL, 1)" 2>&1`,
    qr/photo_too_small.*at 240 ppi/s, 'print_check uses the shop\'s setting');

done_testing;
