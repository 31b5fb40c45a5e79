#!/usr/bin/perl
# The console's pricing page in a real browser (headless chromium driven
# by python3-selenium): the shop's settings saved; the tax rate, shipping
# zone and shipping rate forms each refuse a bad input with a message and
# write nothing, then save a good one; a discount code's bad dates,
# amounts and currency are refused by the page, and by the server too;
# a code restricted to a product and a kind, with a minimum spend, dates
# and a limit per email is created, edited back into the form, its uses
# shown; the shop's quote (/api/cart/quote) applies it to a cart with the
# product and refuses it for a cart without; an order made with it is
# listed under its Uses, and the quote refuses it again for that email.
# Skips, saying why, where chromium, chromedriver or selenium is missing.

use strict;
use warnings;
use utf8;
use lib 't/lib';
use Test::More;
use JSON::PP;
use POSIX qw(strftime);
use Darkroom::Test;
use Darkroom::ConsolePages;

my $b = Darkroom::ConsolePages::need_browser();
my $t = Darkroom::Test->new;
Darkroom::ConsolePages::start($t);
my $base = 'http://127.0.0.1:' . $t->port(0);
Darkroom::ConsolePages::owner($t, 'owner@example.com', 'owner-password-1');
my $api = sub { Darkroom::ConsolePages::api($t, @_) };
my $count = sub { $t->sql_value("SELECT count(*) FROM $_[0]") };
my %before = map { $_ => $count->($_) }
    qw(tax_rates shipping_zones shipping_rates discount_codes);
my $today = strftime('%Y-%m-%d', gmtime);
my $later = strftime('%Y-%m-%d', gmtime(time + 30 * 86400));
my $earlier = strftime('%Y-%m-%d', gmtime(time - 30 * 86400));

# 1. settings, tax, zone and rate: one bad input each, then a good one
my $out = Darkroom::ConsolePages::run($t, $b, '985-forms', <<'PY', $base);
login(args[0], 'owner@example.com', 'owner-password-1')
page(args[0], 'pricing', '#settings-form')
def saved(word):
    wait.until(lambda d: word in css('#main .form-status')[0].text)
    return css('#main .form-status')[0].text
fill('settings-form', 'country', 'G1')
submit('settings-form')
out['bad_settings'] = said('settings-form', True)
fill('settings-form', 'country', 'ie')
fill('settings-form', 'tax_inclusive', 'false')
fill('settings-form', 'invoice_prefix', 'INV-')
submit('settings-form')
out['settings'] = saved('Settings saved')
out['incl'] = one('#settings-form [name="tax_inclusive"]').get_attribute('value')
fill('tax-form', 'country', 'GB')
fill('tax-form', 'rate', '120')
submit('tax-form')
out['bad_tax'] = said('tax-form', True)
fill('tax-form', 'rate', '20')
submit('tax-form')
out['tax'] = saved('Tax rate for GB saved')
fill('zone-form', 'id', 'UK zone')
fill('zone-form', 'countries', 'GB')
submit('zone-form')
out['bad_zone'] = said('zone-form', True)
fill('zone-form', 'id', 'uk')
fill('zone-form', 'name', 'United Kingdom')
fill('zone-form', 'countries', 'GB')
submit('zone-form')
out['zone'] = saved('Zone uk saved')
fill('rate-form', 'name', 'Royal Mail')
fill('rate-form', 'amount', 'four')
submit('rate-form')
out['bad_rate'] = said('rate-form', True)
fill('rate-form', 'amount', '4.50')
submit('rate-form')
out['rate'] = saved('Rate saved')
out['shipping'] = one('#pricing-shipping').text
PY
is($out->{error}, undef, 'the settings, tax and shipping forms');
like($out->{bad_settings} // '', qr/two-letter/, "bad country: $out->{bad_settings}");
like($out->{settings} // '', qr/saved/, 'settings saved');
is($out->{incl}, 'false', 'the form shows the saved setting');
my $set = $api->(GET => '/admin/api/settings')->{json};
is($set->{country}, 'IE', 'the home country stored');
ok(!$set->{tax_inclusive}, 'tax added to prices');
is($set->{invoice_prefix}, 'INV-', 'the invoice prefix stored');
like($out->{bad_tax} // '', qr/rate is a percentage/, "bad rate: $out->{bad_tax}");
like($out->{bad_zone} // '', qr/zone id/, "bad zone: $out->{bad_zone}");
like($out->{bad_rate} // '', qr/price is an amount/, "bad price: $out->{bad_rate}");
like($out->{shipping} // '', qr/Royal Mail.*4\.50/s, 'the rate listed');
is($count->('tax_rates'), $before{tax_rates} + 2,
   "GB's rate written (a row for prints, one for downloads)");
is($count->('shipping_zones'), $before{shipping_zones} + 1,
   'one zone written');
is($count->('shipping_rates'), $before{shipping_rates} + 1,
   'one rate written');
is($t->sql_value("SELECT rate FROM tax_rates WHERE country = 'GB'") + 0, 20,
   'GB at 20 %');

# 2. discount codes: bad input refused by the page, then a restricted code
$out = Darkroom::ConsolePages::run($t, $b, '985-discounts', <<'PY', $base, $today, $later, $earlier);
login(args[0], 'owner@example.com', 'owner-password-1')
page(args[0], 'pricing', '#discount-form')
def date(name, v):
    b.execute_script('arguments[0].value = arguments[1]',
                     one('#discount-form [name="%s"]' % name), v)
def saved(word):
    wait.until(lambda d: word in css('#main .form-status')[0].text)
    return css('#main .form-status')[0].text
out['boxes'] = [x.get_attribute('value') for x in css('#discount-product input')]
fill('discount-form', 'code', 'prints10')
fill('discount-form', 'off', '10')
date('starts_at', args[1])
date('ends_at', args[3])
submit('discount-form')
out['bad_dates'] = said('discount-form', True)
date('ends_at', args[2])
fill('discount-form', 'kind', 'fixed')
fill('discount-form', 'off', 'GBP -5')
submit('discount-form')
out['bad_amount'] = said('discount-form', True)
fill('discount-form', 'off', 'GB 5.00')
submit('discount-form')
out['bad_currency'] = said('discount-form', True)
fill('discount-form', 'kind', 'percent')
fill('discount-form', 'off', '10')
fill('discount-form', 'min_spend', 'GBP -20')
submit('discount-form')
out['bad_min'] = said('discount-form', True)
fill('discount-form', 'min_spend', 'GBP 20.00')
fill('discount-form', 'max_per_email', '0')
submit('discount-form')
out['bad_per'] = said('discount-form', True)
fill('discount-form', 'max_per_email', '1')
one('#discount-product input[value="print-a4"]').click()
one('#discount-kind_only input[value="print"]').click()
fill('discount-form', 'description', 'Prints only')
submit('discount-form')
out['saved'] = saved('Code PRINTS10 saved')
out['listed'] = read(lambda: one('#pricing-discounts table').text)
click('button[data-redemptions="PRINTS10"]')
out['uses'] = read(lambda: one('#pricing-redemptions').text)
click('button[data-edit-discount="PRINTS10"]')
out['edit'] = {
    'code': one('#discount-form [name="code"]').get_attribute('value'),
    'min': one('#discount-form [name="min_spend"]').get_attribute('value'),
    'per': one('#discount-form [name="max_per_email"]').get_attribute('value'),
    'product': one('#discount-product input[value="print-a4"]').is_selected(),
    'digital': one('#discount-product input[value="digital"]').is_selected(),
    'kind': one('#discount-kind_only input[value="print"]').is_selected()}
PY
is($out->{error}, undef, 'the discount form');
is_deeply($out->{boxes}, ['digital', 'print-a4'],
          'the catalogue\'s products to choose from');
like($out->{bad_dates} // '', qr/end date/, "end before start: $out->{bad_dates}");
like($out->{bad_amount} // '', qr/not a price/, "negative: $out->{bad_amount}");
like($out->{bad_currency} // '', qr/not a price/,
     "bad currency: $out->{bad_currency}");
like($out->{bad_min} // '', qr/Minimum spend/, "bad minimum: $out->{bad_min}");
like($out->{bad_per} // '', qr/per email/, "0 per email: $out->{bad_per}");
like($out->{saved} // '', qr/PRINTS10 saved/, 'the code saved');
like($out->{listed} // '', qr/PRINTS10.*print-a4; print; 1 per email/s,
     'listed with its restriction');
like($out->{uses} // '', qr/PRINTS10 has not been used/, 'its uses: none yet');
is_deeply($out->{edit}, { code => 'PRINTS10', min => 'GBP 20.00', per => '1',
                          product => JSON::PP::true, digital => JSON::PP::false,
                          kind => JSON::PP::true },
          'Edit fills the form with the code');
is($count->('discount_codes'), $before{discount_codes} + 1,
   'one code written (the bad ones not)');
my $d = $api->(GET => '/admin/api/discounts/PRINTS10')->{json};
is_deeply($d->{products}, ['print-a4'], 'restricted to print-a4');
is_deeply($d->{kinds}, ['print'], 'and to prints');
is_deeply($d->{min_spend}, { GBP => 2000 }, 'a minimum spend of 20.00');
is($d->{max_per_email}, 1, 'once per email');
like($d->{starts_at} // '', qr/^\Q$today\E/, 'starts today');
like($d->{ends_at} // '', qr/^\Q$later\E/, 'ends in 30 days');

# 3. the server refuses the same bad input (whatever sends it)
for my $bad (
    [ { kind => 'percent', percent_off => 10, starts_at => "${later}T00:00:00Z",
        ends_at => "${today}T00:00:00Z" }, qr/ends_at.*after/ ],
    [ { kind => 'percent', percent_off => 150 }, qr/at most 100/ ],
    [ { kind => 'percent', percent_off => 10, products => ['no-such'] },
      qr/no product "no-such"/ ],
    [ { kind => 'fixed', amount_off => { GBP => -500 } }, qr/above zero/ ],
    [ { kind => 'percent', percent_off => 10, min_spend => { GBP => -1 } },
      qr/above zero/ ],
    [ { kind => 'fixed', amount_off => { gbp => 500 } }, qr/currency/ ],
    [ { kind => 'percent', percent_off => 10, kinds => ['poster'] },
      qr/"print" or "digital"/ ],
    [ { kind => 'percent', percent_off => 10, max_per_email => 0 },
      qr/above zero/ ])
{
    my $r = $api->(POST => '/admin/api/discounts', { code => 'BAD1', %{$bad->[0]} });
    is($r->{status}, 400, 'refused: ' . encode_json($bad->[0]));
    like($r->{json}{error}{message} // '', $bad->[1],
         "  saying $r->{json}{error}{message}");
}
is($count->('discount_codes'), $before{discount_codes} + 1,
   'the server wrote none of them');

# 4. the shop's quote: the code applies to the print, not to the download
$t->sql("INSERT INTO photos (id, title, image_path, print_path) VALUES"
    . " ('harbour', 'Harbour', '/images/harbour.jpg', 'harbour.tif');"
    . " INSERT INTO photo_products (photo_id, product_id)"
    . " VALUES ('harbour', 'print-a4'), ('harbour', 'digital')");
my $quote = sub {
    my ($product) = @_;
    return $t->http(POST => '/api/cart/quote', {
        headers => { 'Content-Type' => 'application/json' },
        content => encode_json({ items => [{ photo => 'harbour',
            product => $product, quantity => 1 }], country => 'GB',
            currency => 'GBP', discount_code => 'PRINTS10' }) });
};
my $r = $quote->('print-a4');
is($r->{status}, 200, 'a print with PRINTS10: quoted') or diag $r->{content};
is($r->{json}{discount}{code}, 'PRINTS10', 'the code applied');
is($r->{json}{discount_amount}, 280, '10 % of 28.00');
$r = $quote->('digital');
is($r->{status}, 400, 'a download with PRINTS10: refused');
is($r->{json}{error}{code}, 'code_not_applicable', 'code_not_applicable')
    or diag $r->{content};

# 5. a use: an order made with the code (checkout's SQL, no payment yet);
# the page lists it under Uses; the limit per email holds at the quote
my ($o) = $t->sql("SELECT order_id, order_ref FROM checkout_create("
    . "'[{\"photo\":\"harbour\",\"product\":\"print-a4\",\"quantity\":1}]',"
    . " 'ada\@example.com', 'GBP', 'GB', 'PRINTS10', NULL, repeat('a', 64),"
    . " now() + interval '1 hour', now() + interval '1 day')");
ok($o && $o->[1], "an order with PRINTS10: $o->[1]");
$out = Darkroom::ConsolePages::run($t, $b, '985-uses', <<'PY', $base);
login(args[0], 'owner@example.com', 'owner-password-1')
page(args[0], 'pricing', '#discount-form')
click('button[data-redemptions="PRINTS10"]')
out['uses'] = read(lambda: 'ada@' in one('#pricing-redemptions').text
                   and one('#pricing-redemptions').text)
out['link'] = one('#pricing-redemptions a').get_attribute('href')
PY
is($out->{error}, undef, 'the uses of a code');
like($out->{uses} // '', qr/\Q$o->[1]\E.*ada\@example\.com.*2\.80.*reserved/s,
     'Uses: the order, the email, the amount off, reserved');
like($out->{link} // '', qr/#order\/\Q$o->[1]\E$/, 'linking to the order');
$r = $t->http(POST => '/api/cart/quote', {
    headers => { 'Content-Type' => 'application/json' },
    content => encode_json({ items => [{ photo => 'harbour',
        product => 'print-a4', quantity => 1 }], country => 'GB',
        email => 'ada@example.com', discount_code => 'PRINTS10' }) });
is($r->{status}, 409, 'PRINTS10 again for ada: refused');
is($r->{json}{error}{code}, 'code_used', 'code_used (once per email)');

done_testing;
