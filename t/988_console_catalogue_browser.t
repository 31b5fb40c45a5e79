#!/usr/bin/perl
# The console's catalogue and pricing pages in a real browser (headless
# chromium driven by python3-selenium): the owner edits a product's price
# (the shop's public catalogue then shows it), a bad price is refused with
# a message and nothing changes, a price sheet naming no such product is
# refused with the server's message, a discount code is created, listed
# and deactivated; at 375 px no page scrolls sideways; staff may use the
# pricing API (with the CSRF token).
# Skips, saying why, where chromium, chromedriver or selenium is missing.

use strict;
use warnings;
use utf8;
use lib 't/lib';
use Test::More;
use JSON::PP;
use Darkroom::Test;
use Darkroom::ConsolePages;

my $b = Darkroom::ConsolePages::need_browser();
my $t = Darkroom::Test->new;
Darkroom::ConsolePages::start($t);
my $base = 'http://127.0.0.1:' . $t->port(0);
Darkroom::ConsolePages::owner($t, 'owner@example.com', 'owner-password-1');
my $api = sub { Darkroom::ConsolePages::api($t, @_) };
my $price = sub {
    my ($p) = grep { $_->{id} eq 'print-a4' }
        @{ $t->http(GET => '/api/catalogue')->{json}{products} // [] };
    return $p ? $p->{prices}{GBP} : undef;
};
is($price->(), 2800, 'the public catalogue: A4 at 28.00');

# 1. the catalogue: a bad price, then a good one; a bad sheet
my $out = Darkroom::ConsolePages::run($t, $b, '988-catalogue', <<'PY', $base);
login(args[0], 'owner@example.com', 'owner-password-1')
out['nav'] = [a.text for a in css('#nav a')]
page(args[0], 'catalogue', '#product-form')
one('button[data-edit="product:print-a4"]').click()
out['filled'] = one('#product-form [name="prices"]').get_attribute('value')
fill('product-form', 'prices', 'GBP twelve')
submit('product-form')
out['bad'] = said('product-form', True)
fill('product-form', 'prices', 'GBP 31.50, USD 40')
submit('product-form')
wait.until(lambda d: 'saved' in css('#main .form-status')[0].text)
out['saved'] = css('#main .form-status')[0].text
out['table'] = one('#catalogue-products').text
fill('sheet-form', 'id', 'wed-sheet')
fill('sheet-form', 'name', 'Wedding')
fill('sheet-form', 'items', 'no-such: GBP 1.00')
submit('sheet-form')
out['sheet'] = said('sheet-form', True)
PY
is($out->{error}, undef, 'the catalogue page');
ok((grep { $_ eq 'Pricing' } @{$out->{nav} // []}), 'Pricing in the menu');
is($out->{filled}, 'GBP 28.00', 'Edit fills the form with its prices');
like($out->{bad} // '', qr/not a price/, "a bad price refused: $out->{bad}");
like($out->{saved} // '', qr/print-a4/, 'saved');
like($out->{table} // '', qr/31\.50/, 'the table shows the new price');
like($out->{sheet} // '', qr/no-such|product/i,
     "a sheet with no such product: the server says $out->{sheet}");
is($price->(), 3150, 'the public catalogue shows the new price');
my ($p) = grep { $_->{id} eq 'print-a4' }
    @{ $api->(GET => '/admin/api/products')->{json}{products} };
is_deeply($p->{prices}, { GBP => 3150, USD => 4000 }, 'both prices stored');
is($p->{name}, 'A4 print', 'the name kept');
is_deeply($p->{print_size}, { width_mm => 297, height_mm => 210 },
          'the print size kept');
my $s = $api->(GET => '/admin/api/price-sheets/wed-sheet')->{json};
is(scalar @{ ($s->{price_sheet} // $s)->{items} // [] }, 2,
   'the refused sheet unchanged');

# 2. pricing: a discount code, a bad one refused, deactivated
$out = Darkroom::ConsolePages::run($t, $b, '988-pricing', <<'PY', $base);
login(args[0], 'owner@example.com', 'owner-password-1')
page(args[0], 'pricing', '#discount-form')
fill('discount-form', 'code', 'spring 10')
fill('discount-form', 'off', '10')
submit('discount-form')
out['badcode'] = said('discount-form', True)
fill('discount-form', 'code', 'spring10')
fill('discount-form', 'off', '150')
submit('discount-form')
out['badoff'] = said('discount-form', True)
fill('discount-form', 'off', '10')
fill('discount-form', 'description', 'Spring sale')
submit('discount-form')
one('button[data-deactivate="SPRING10"]')
out['listed'] = one('#pricing-discounts').text
one('button[data-deactivate="SPRING10"]').click()
one('button[data-reactivate="SPRING10"]')
out['after'] = css('#main .form-status')[0].text
PY
is($out->{error}, undef, 'the pricing page');
like($out->{badcode} // '', qr/letters, digits/, "a bad code: $out->{badcode}");
like($out->{badoff} // '', qr/percentage/, "150 %: $out->{badoff}");
like($out->{listed} // '', qr/SPRING10.*10 %/s, 'the code listed');
like($out->{after} // '', qr/deactivated/, 'deactivated, the page says');
my $d = $api->(GET => '/admin/api/discounts')->{json}{discounts};
is(scalar @$d, 1, 'one code written (the bad ones not)');
is($d->[0]{code}, 'SPRING10', 'SPRING10');
is($d->[0]{percent_off}, 10, '10 %');
ok(!$d->[0]{active}, 'inactive');

# 3. a phone: 375 px wide, no page scrolls sideways
$out = Darkroom::ConsolePages::run($t, $b, '988-phone', <<'PY', $base);
login(args[0], 'owner@example.com', 'owner-password-1')
b.execute_cdp_cmd('Emulation.setDeviceMetricsOverride', {
    'width': 375, 'height': 800, 'deviceScaleFactor': 2, 'mobile': True})
out['wide'] = {}
for h, sel in (('catalogue', '#sheet-form'), ('pricing', '#rate-form')):
    page(args[0], h, sel)
    time.sleep(0.2)
    out['wide'][h] = b.execute_script(
        'return [document.documentElement.scrollWidth, window.innerWidth]')
PY
is($out->{error}, undef, 'the pages at 375 px');
for my $pg (sort keys %{$out->{wide} // {}}) {
    my ($scroll, $inner) = @{$out->{wide}{$pg}};
    is($inner, 375, "$pg: 375 px wide");
    ok($scroll <= $inner, "$pg: no sideways scroll ($scroll)");
}
is(scalar keys %{$out->{wide} // {}}, 2, 'two pages at 375 px');

# 4. staff may use the pricing page's API (read and write), with the CSRF
# token
my $r = $api->(POST => 'accounts', { email => 'staff@example.com',
    name => 'Sam', role => 'staff', password => 'staff-password-1' });
ok($r->{status} == 200 || $r->{status} == 201, 'a staff account');
my $st = Darkroom::ConsolePages::login($t, 'staff@example.com',
                                       'staff-password-1');
my $as = sub {
    my ($csrf, $body) = @_;
    return $t->http(POST => '/admin/api/discounts', { headers => {
        Cookie => $st->{cookie}, 'Content-Type' => 'application/json',
        $csrf ? ('X-CSRF-Token' => $st->{csrf}) : () },
        content => encode_json($body) });
};
is($as->(0, { code => 'STAFF5', kind => 'percent', percent_off => 5 })
   ->{status}, 403, 'staff without the CSRF token: 403');
is($as->(1, { code => 'STAFF5', kind => 'percent', percent_off => 5 })
   ->{status}, 200, 'staff creates a code');

done_testing;
