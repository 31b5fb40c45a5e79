#!/usr/bin/perl
# Buying from a client gallery in a real browser (headless chromium driven
# by python3-selenium, as t/990): the password opens the gallery; a photo
# too small for an A4 offers only the download and says why; a cart line
# the server refuses (that photo as an A4, put in the cart by hand) shows
# the server's photo_too_small message and marks the line, and so do a
# photo not in the gallery and a product not on its sheet; the large photo
# opened from the keyboard offers the sheet's prints at the sheet's price
# in pounds, asks crop or fit (3:2 is not A4's shape) and not for the
# download; the A4 "fit" goes in the cart, which outlives the gallery
# cookie's loss (the password is asked again, the message says why); it is
# checked out, paid on the Stripe sandbox's page, and the order page sees
# it paid.  Then the webhook's order reaches the
# lab sandbox as a Prodigi order whose item is fitted (fitPrintArea) and
# whose asset link fetches that gallery photo's original, byte for byte.
# Skips, saying why, where chromium, chromedriver or selenium is missing.

use strict;
use warnings;
use utf8;
use lib 't/lib';
use Test::More;
use HTTP::Tiny;
use JSON::PP;
use Digest::SHA qw(sha256_hex);
use Darkroom::Test qw(wait_for);
use Darkroom::GalleryBrowser qw(need_browser start gallery run);

binmode $_, ':encoding(UTF-8)' for Test::More->builder->output,
    Test::More->builder->failure_output;
my $browser = need_browser();

my $t = Darkroom::Test->new;
my ($sb, $lab) = start($t);
my $port = $t->port(0);
my $g = gallery($t, 'wed', password => 'open sesame', sheet => 'wed-sheet',
    photos => [ [ 'IMG_1.jpg', 3000, 2000 ], [ 'IMG_2.jpg', 1200, 800 ] ]);
$t->sql(q{SELECT admin_discount('put', 'GALLERY10', '{"kind": "percent",
    "percent_off": 10, "amount_off": null, "min_spend": null,
    "starts_at": null, "ends_at": null, "max_redemptions": null,
    "max_per_email": null, "products": null, "kinds": null,
    "active": true, "description": "Gallery clients"}')});
my $big = $g->{photos}{'IMG_1.jpg'};
my $small = $g->{photos}{'IMG_2.jpg'};

# what the server says of the small photo as an A4
my $r = $t->http(POST => '/api/galleries/wed/unlock', {
    headers => { 'Content-Type' => 'application/json' },
    content => encode_json({ password => 'open sesame' }) });
my ($cookie) = ($r->{headers}{'set-cookie'} // '') =~ /^([^;]+)/;
$r = $t->http(POST => '/api/galleries/wed/quote', {
    headers => { 'Content-Type' => 'application/json', Cookie => $cookie },
    content => encode_json({ items => [ { photo => $small->{id} + 0,
        product => 'print-a4', quantity => 1 } ] }) });
is($r->{status}, 409, 'the server refuses the small photo as an A4');
my $too_small = $r->{json}{error}{message} // '';
like($too_small, qr/IMG_2\.jpg/, "naming the photo: $too_small");

my $out = run($t, $browser, <<'PY', "http://127.0.0.1:$port", "$sb->{url}/pay/", $small->{id});
base, pay, small_id = args[0], args[1], int(args[2])
# a wrong password: the server's words
b.get(base + '/g/wed')
wait.until(lambda d: shown('lock'))
el('pw').send_keys('not it')
el('pw').send_keys(Keys.ENTER)
wait.until(lambda d: shown('msg') and text('msg'))
out['wrong_password'] = text('msg')
unlock(base, 'wed', 'open sesame')
out['cells'] = len(css('#grid .g-cell'))

# the small photo: the download only, and why not the prints
labelled('Open IMG_2.jpg').click()
wait.until(lambda d: shown('box'))
wait.until(lambda d: shown('buy-box'))
out['small_options'] = [o.text for o in Select(el('buy-product')).options]
out['small_note'] = text('buy-small') if shown('buy-small') else None
el('buy-product').send_keys(Keys.ESCAPE)
wait.until(lambda d: not shown('box'))

# a line the server refuses, put in the cart by hand
b.execute_script("localStorage.setItem('darkroom.gallery.wed.cart',"
    " JSON.stringify([{photo: arguments[0], product: 'print-a4',"
    " quantity: 1}]))", small_id)
b.refresh()
wait.until(lambda d: css('#grid .g-cell'))
wait.until(lambda d: shown('quote-error'))
out['refused'] = text('quote-error')
out['refused_role'] = el('quote-error').get_attribute('role')
out['bad_line'] = len(css('#cart-lines li.bad'))
out['checkout_disabled'] = bool(el('checkout-button').get_attribute('disabled'))
css('#cart-lines li button.link')[0].click()
wait.until(lambda d: shown('cart-empty'))
# a photo not in the gallery, a product not on its sheet
for key, line in (('unknown', {'photo': 999999, 'product': 'digital',
                               'quantity': 1}),
                  ('not_offered', {'photo': small_id, 'product': 'print-a5',
                                   'quantity': 1})):
    b.execute_script("localStorage.setItem('darkroom.gallery.wed.cart',"
        " JSON.stringify([arguments[0]]))", line)
    b.refresh()
    wait.until(lambda d: css('#grid .g-cell'))
    wait.until(lambda d: shown('quote-error'))
    out[key] = text('quote-error')
    css('#cart-lines li button.link')[0].click()
    wait.until(lambda d: shown('cart-empty'))

# the large photo, opened from the keyboard
thumb = labelled('Open IMG_1.jpg')
thumb.send_keys(Keys.ENTER)
wait.until(lambda d: shown('box'))
out['focus_in_dialog'] = b.execute_script(
    "return document.getElementById('box').contains(document.activeElement)")
out['title'] = text('box-title')
wait.until(lambda d: shown('buy'))
product = Select(el('buy-product'))
out['big_options'] = [o.text for o in product.options]
out['product_label'] = b.find_element(By.CSS_SELECTOR,
                                      'label[for=buy-product]').text
product.select_by_value('digital')
out['digital_sizing'] = shown('buy-sizing')
product.select_by_value('print-a4')
out['a4_sizing'] = shown('buy-sizing')
out['a4_detail'] = text('buy-detail')
out['a4_price'] = text('buy-price')
b.find_element(By.CSS_SELECTOR, 'label[for=sizing-fit]').click()
out['fit_checked'] = el('sizing-fit').is_selected()
el('buy-add').click()
wait.until(lambda d: shown('buy-status'))
out['added'] = text('buy-status-text')
ActionChains(b).send_keys(Keys.ESCAPE).perform()
wait.until(lambda d: not shown('box'))
wait.until(settled)

# the gallery cookie gone: the next quote asks for the password again,
# and the cart is still there after it
b.execute_cdp_cmd('Network.clearBrowserCookies', {})
Select(el('country')).select_by_value('IE')
wait.until(lambda d: shown('lock'))
out['locked'] = text('msg')
el('pw').send_keys('open sesame')
el('pw').send_keys(Keys.ENTER)
wait.until(lambda d: css('#grid .g-cell') and shown('cart'))

# the cart: quoted by the server, then checked out
wait.until(settled)
Select(el('country')).select_by_value('GB')
time.sleep(0.3)
wait.until(settled)
# a discount code: a wrong one said so, a good one taken off the prints
el('discount-code').send_keys('NOPE')
el('discount-apply').click()
wait.until(lambda d: shown('discount-error'))
wait.until(settled)
out['code_refused'] = text('discount-error')
out['total_before'] = text('cart-total')
el('discount-code').clear()
el('discount-code').send_keys('GALLERY10')
el('discount-apply').click()
wait.until(lambda d: shown('q-discount'))
wait.until(settled)
out['code_applied'] = text('discount-applied-text')
out['discount'] = text('q-discount')
out['code_error_gone'] = not shown('discount-error')
out['cart'] = text('cart-lines')
out['total'] = text('cart-total')
email = el('email')
email.clear()
email.send_keys('buyer@example.com')
el('checkout-button').click()
wait.until(lambda d: d.current_url.startswith(pay))
out['pay_page'] = b.find_element(By.TAG_NAME, 'body').text[:2000]
# cancelled on Stripe's page: back to the gallery, the cart kept
b.find_element(By.CSS_SELECTOR, 'button.decline').click()
wait.until(lambda d: '/g/wed?cancelled=' in d.current_url)
wait.until(lambda d: el('checkout-error').is_displayed())
out['cancelled'] = text('checkout-error')
wait.until(settled)
out['cart_cancelled'] = text('cart-lines')
el('checkout-button').click()
wait.until(lambda d: d.current_url.startswith(pay))
b.find_element(By.CSS_SELECTOR, 'button.pay').click()
wait.until(lambda d: '/order.html' in d.current_url)
WebDriverWait(b, 60).until(lambda d: 'Paid' in text('order-status')
                           or 'production' in text('order-status'))
out['order_status'] = text('order-status')
out['order_items'] = text('items')
out['cart_after'] = b.execute_script(
    "return localStorage.getItem('darkroom.gallery.wed.cart')")
PY
ok(!$out->{error}, 'the browser bought a print from the gallery')
    or diag explain $out, $t->read_file('selenium.log');

like($out->{wrong_password} // '', qr/\S/, 'a wrong password: a message');
is($out->{cells}, 2, 'the password opens the gallery: two photos');
is_deeply($out->{small_options}, ['Digital download · £15.00'],
    'a photo too small for the prints: only the download offered');
like($out->{small_note} // '', qr/too low.*A4 print, A3 print/,
    'and the prints it cannot make are named');
is($out->{refused}, "$too_small Remove it or choose a smaller size.",
    "a refused line: the server's message, inline");
is($out->{refused_role}, 'alert', 'announced to screen readers');
is($out->{bad_line}, 1, 'the line it names is marked');
ok($out->{checkout_disabled}, 'no checkout of a refused cart');
like($out->{unknown} // '', qr/no photo 999999 in this gallery\. Remove it/,
     'a photo not in the gallery: unknown_photo explained');
like($out->{not_offered} // '', qr/not sold in this gallery\. Remove it/,
     'a product not on the sheet: not_offered explained');
is($out->{locked}, 'Your access to this gallery has ended: enter the'
   . ' password again.', 'the cookie gone: locked, explained');
ok($out->{focus_in_dialog}, 'opened from the keyboard, the focus is in the'
    . ' lightbox');
is($out->{title}, 'IMG_1.jpg', "the photo's name");
is_deeply($out->{big_options}, ['A4 print · £25.00', 'A3 print · £45.00',
    'Digital download · £15.00'], "the sheet's products, the A4 at the"
    . " sheet's price, in pounds");
like($out->{product_label}, qr/\S/, 'the product select has a label');
ok(!$out->{digital_sizing}, 'a download: no crop or fit');
ok($out->{a4_sizing}, 'a 3:2 photo as an A4: crop or fit asked');
like($out->{a4_detail}, qr/29\.7 × 21 cm/, 'the print size');
is($out->{a4_price}, '£25.00', 'its price');
ok($out->{fit_checked}, 'fit chosen through its label');
like($out->{added} // '', qr/A4 print \(fit\)/, 'added, and it says so');
like($out->{cart} // '', qr/IMG_1\.jpg\s+A4 print · fit/, 'the cart line');
like($out->{total} // '', qr/^£[\d.]+$/, 'a quoted total');
like($out->{code_refused} // '', qr/NOPE/, 'a wrong discount code: said so');
is($out->{code_applied}, 'Code GALLERY10 applied.', 'a good one applied');
like($out->{discount} // '', qr/^−£[\d.]+$/, 'the discount shown');
ok($out->{code_error_gone}, 'the earlier refusal gone');
isnt($out->{total}, $out->{total_before}, 'the total with the discount');
is($t->sql_value("SELECT discount_code FROM orders"), 'GALLERY10',
    'the order carries the code');
like($out->{pay_page} // '', qr/IMG_1\.jpg/, 'the Stripe page lists the photo');
like($out->{cancelled} // '', qr/Payment cancelled/,
    'cancelled on Stripe\'s page: back to the gallery, saying so');
is($out->{cart_cancelled}, $out->{cart}, 'with the cart as it was');
like($out->{order_status} // '', qr/Paid|production/, 'the order page: paid');
like($out->{order_items} // '', qr/A4 print · £25\.00 each\s+The whole photo,/,
    'with the sizing');
ok(!defined $out->{cart_after}, "the gallery's cart is empty once paid");

# the order, as the shop recorded it
my ($o) = $t->sql("SELECT o.id, o.ref, o.status, g.slug, o.total"
    . " FROM orders o JOIN galleries g ON g.id = o.gallery_id"
    . " ORDER BY o.id DESC LIMIT 1");
ok($o, 'a gallery order') or BAIL_OUT('no order');
is($o->[3], 'wed', 'of the gallery');
is_deeply([ $t->sql("SELECT product_id, gallery_photo_id, sizing, quantity"
    . " FROM order_items WHERE order_id = :'p1'", $o->[0]) ],
    [ [ 'print-a4', $big->{id}, 'fit', 1 ] ], 'one A4 of IMG_1, fit');
is($o->[4], $t->sql_value("SELECT stripe_amount FROM orders WHERE id = :'p1'",
    $o->[0]), 'the total is what Stripe took');

# the lab: a Prodigi order, fitted, whose asset is the original
my ($po, $pk);
ok(wait_for(sub {
    my $st = $lab->state;
    ($pk) = keys %{$st->{prodigi} // {}};
    $po = $pk && $st->{prodigi}{$pk};
    $po && ($st->{downloads}{$pk} // [])->[0] }, 30),
    'the lab sandbox received the order and fetched its asset')
    or diag explain $lab->state, $t->error_log;
my $item = $po->{items}[0] // {};
is($item->{sku}, 'GLOBAL-HPR-A4', 'the A4 SKU');
is($item->{sizing}, 'fitPrintArea', 'fit reaches the lab as fitPrintArea');
is($item->{copies}, 1, 'one copy');
is($po->{merchantReference}, $o->[1], 'the order ref');
my $url = $item->{assets}[0]{url} // '';
like($url, qr{^http://127\.0\.0\.1:$port/gallery-files/wed/IMG_1\.jpg\?.*sig=},
    'the asset: a signed link to the gallery original');
my $dl = $lab->state->{downloads}{$pk}[0];
is($dl->{status}, 200, 'which the lab downloaded');
is($dl->{bytes}, $big->{bytes}, 'all of it');
my $got = HTTP::Tiny->new->get($url);
is($got->{status}, 200, 'the link fetches');
is(sha256_hex($got->{content} // ''), $big->{sha256},
    "the gallery photo's original, byte for byte");

done_testing;
