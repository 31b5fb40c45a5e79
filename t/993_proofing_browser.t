#!/usr/bin/perl
# Proofing in a real browser (headless chromium, python3-selenium, as
# t/990): a visitor gives a name and an email (an empty email is refused
# on the page) and sees the downloads the gallery allows and has used; a
# photo is added to the visitor's list from the lightbox with a note,
# others with the heart buttons; a list over the gallery's
# limit of 2 asks on submit for the extra photo (402 payment_required: its
# price in pounds); "Pay for the extra photos" puts it in the cart, priced
# by the server, and once it is paid through the Stripe sandbox the list
# is sent and locked (the page says so, and a heart on a locked list
# explains the 409).  In a gallery whose limit has no price, an add beyond
# it shows the server's selection_limit message, and a list within it is
# sent at once.  The database holds what the page showed.  Skips, saying
# why, where chromium, chromedriver or selenium is missing.

use strict;
use warnings;
use utf8;
use lib 't/lib';
use Test::More;
use JSON::PP;
use Darkroom::Test qw(wait_for);
use Darkroom::GalleryBrowser qw(need_browser start gallery run);

binmode $_, ':encoding(UTF-8)' for Test::More->builder->output,
    Test::More->builder->failure_output;
my $browser = need_browser();

my $t = Darkroom::Test->new;
my ($sb, $lab) = start($t);
my $port = $t->port(0);
my @three = map { [ "IMG_$_.jpg", 1200, 800 ] } 1 .. 3;
gallery($t, 'proof', password => 'open sesame', sheet => 'wed-sheet',
        selection_limit => 2, extra_photo_amount => 500,
        visitor_download_limit => 5, photos => \@three);
gallery($t, 'lim', password => 'let me in', sheet => 'wed-sheet',
        selection_limit => 1, photos => [ @three[0, 1] ]);

my $out = run($t, $browser, <<'PY', "http://127.0.0.1:$port", "$sb->{url}/pay/");
base, pay = args[0], args[1]
unlock(base, 'proof', 'open sesame')
wait.until(lambda d: shown('visitor'))
out['name_label'] = b.find_element(By.CSS_SELECTOR, 'label[for=v-name]').text
out['email_label'] = b.find_element(By.CSS_SELECTOR, 'label[for=v-email]').text
el('v-name').send_keys('Ada Lovelace')
el('v-go').click()
wait.until(lambda d: shown('visitor-error'))
out['no_email'] = text('visitor-error')
el('v-email').send_keys('Ada@Example.com')
el('v-go').click()
wait.until(lambda d: shown('lists-box'))
out['who'] = text('v-who')
wait.until(lambda d: css('#lists article'))
out['first_list'] = css('#lists article h3')[0].text
out['downloads_before'] = text('v-downloads')
labelled('Download IMG_1.jpg').click()
wait.until(lambda d: 'Downloads: 1 ' in text('v-downloads'))
out['downloads_after'] = text('v-downloads')

# from the lightbox, with a note
labelled('Open IMG_1.jpg').click()
wait.until(lambda d: shown('pick'))
out['pick_label'] = b.find_element(By.CSS_SELECTOR,
                                   'label[for=pick-note]').text
el('pick-note').send_keys('Please lighten the sky')
el('pick-add').click()
wait.until(lambda d: shown('pick-status'))
out['picked'] = text('pick-status')
out['pick_button'] = text('pick-add')
ActionChains(b).send_keys(Keys.ESCAPE).perform()
wait.until(lambda d: not shown('box'))

# the hearts add to the list
for name in ('IMG_2.jpg', 'IMG_3.jpg'):
    labelled('In Favourites: ' + name).click()
    wait.until(lambda d, n=name: n in text('lists'))
out['hearts_on'] = len(css('#grid .fav.on'))
out['list'] = text('lists')

# over the limit of 2: the extra photo is to be paid for
send = [x for x in css('#lists button')
        if x.text.startswith('Send this selection')][0]
send.click()
wait.until(lambda d: css('.g-pay'))
out['pay_text'] = css('.g-pay p')[0].text
out['pay_role'] = css('.g-pay')[0].get_attribute('role')
[x for x in css('.g-pay button')][0].click()
wait.until(lambda d: 'Extra photos' in text('cart-lines'))
wait.until(settled)
out['extra_line'] = text('cart-lines')
out['extra_total'] = text('cart-total')

# paid: the list is sent with its extra photo
email = el('email')
email.clear()
email.send_keys('ada@example.com')
el('checkout-button').click()
wait.until(lambda d: d.current_url.startswith(pay))
out['pay_page'] = b.find_element(By.TAG_NAME, 'body').text[:2000]
b.find_element(By.CSS_SELECTOR, 'button.pay').click()
wait.until(lambda d: '/order.html' in d.current_url)
WebDriverWait(b, 60).until(lambda d: 'Paid' in text('order-status'))
out['order_status'] = text('order-status')
b.get(base + '/g/proof')
wait.until(lambda d: css('#lists article'))
wait.until(lambda d: 'locked' in text('lists'))
out['sent_list'] = text('lists')
out['notes_left'] = len(css('#lists textarea'))
out['cart_after_paid'] = text('cart-lines')
labelled('In Favourites: IMG_3.jpg').click()
wait.until(lambda d: shown('lists-error'))
out['locked_error'] = text('lists-error')

# a gallery whose limit has no price
unlock(base, 'lim', 'let me in')
wait.until(lambda d: shown('visitor'))
el('v-name').send_keys('Tom')
el('v-email').send_keys('tom@example.com')
el('v-go').click()
wait.until(lambda d: css('#lists article'))
labelled('In Favourites: IMG_1.jpg').click()
wait.until(lambda d: 'IMG_1.jpg' in text('lists'))
labelled('Open IMG_2.jpg').click()
wait.until(lambda d: shown('pick'))
el('pick-add').click()
wait.until(lambda d: shown('pick-error'))
out['limit_error'] = text('pick-error')
out['limit_role'] = el('pick-error').get_attribute('role')
ActionChains(b).send_keys(Keys.ESCAPE).perform()
wait.until(lambda d: not shown('box'))
# within the limit the list is sent at once
send = [x for x in css('#lists button')
        if x.text.startswith('Send this selection')][0]
send.click()
wait.until(lambda d: 'locked' in text('lists'))
out['sent_status'] = text('lists-status')
PY
ok(!$out->{error}, 'the browser made and sent a selection')
    or diag explain $out, $t->read_file('selenium.log');

is($out->{name_label}, 'Your name', 'the name field has a label');
is($out->{email_label}, 'Your email', 'and the email field');
like($out->{no_email} // '', qr/valid email/, 'no email: the page asks for it');
like($out->{who} // '', qr/^Ada Lovelace \(ada\@example\.com\)$/i, 'signed in');
is($out->{first_list}, 'Favourites', 'a first list "Favourites"');
is($out->{downloads_before}, 'Downloads: 0 of the 5 this gallery allows you.',
   "the visitor's download limit");
is($out->{downloads_after}, 'Downloads: 1 of the 5 this gallery allows you.',
   'a download counted');
like($out->{pick_label} // '', qr/Note/, 'the note has a label');
like($out->{picked} // '', qr/Saved in Favourites/, 'added with a note');
is($out->{pick_button}, 'Save note', 'then the note can be changed');
is($out->{hearts_on}, 3, 'three hearts on');
like($out->{list} // '', qr/3 photos of the 2 included \(1 extra\)/,
     'the list counts against the limit');
like($out->{pay_text} // '', qr/your list has 1 more.*£5\.00/s,
     'over the limit: the extra photo and its price');
is($out->{pay_role}, 'alert', 'announced');
like($out->{extra_line} // '', qr/Extra photos of your selection\s+"Favourites"/,
     'paying for extras puts them in the cart');
is($out->{extra_total}, '£5.00', 'priced by the server');
like($out->{pay_page} // '', qr/£5\.00/, 'the Stripe page asks £5.00');
like($out->{order_status} // '', qr/Paid/, 'paid');
like($out->{sent_list} // '', qr/Sent to the photographer.*This list is locked/s,
     'once paid, the list is sent and shown locked');
is($out->{notes_left}, 0, 'its notes can no longer be edited');
unlike($out->{cart_after_paid} // '', qr/Extra photos/,
       'and its extras are no longer in the cart');
like($out->{locked_error} // '', qr/sent to the photographer and is locked/,
     'a heart on a locked list: the 409 explained');
like($out->{limit_error} // '', qr/Remove a photo from the list/,
     "a limit without a price: the server's message, and what to do");
is($out->{limit_role}, 'alert', 'announced');
like($out->{sent_status} // '', qr/sent to the photographer.*locked/,
     'within the limit, the list is sent at once');

# what the database holds
my @l = $t->sql("SELECT l.name, l.submitted_at IS NOT NULL, v.email,"
    . " o.status, (SELECT string_agg(p.name || '=' || lp.note, ','"
    . "            ORDER BY p.name)"
    . "    FROM gallery_list_photos lp JOIN gallery_photos p"
    . "      ON p.id = lp.photo_id WHERE lp.list_id = l.id)"
    . " FROM gallery_lists l JOIN gallery_visitors v ON v.id = l.visitor_id"
    . " JOIN galleries g ON g.id = l.gallery_id"
    . " LEFT JOIN orders o ON o.id = l.order_id WHERE g.slug = 'proof'");
$_->[2] = lc $_->[2] for @l;
is_deeply(\@l, [ [ 'Favourites', 't', 'ada@example.com', 'paid',
    'IMG_1.jpg=Please lighten the sky,IMG_2.jpg=,IMG_3.jpg=' ] ],
    'one list, sent by the paid order of its extra photo, the note kept');
is_deeply([ $t->sql("SELECT i.quantity, i.unit_amount FROM order_items i"
    . " JOIN gallery_lists l ON l.order_id = i.order_id") ], [ [ 1, 500 ] ],
    'the order: one extra photo at 5.00');
is_deeply([ $t->sql("SELECT count(*), bool_and(l.submitted_at IS NOT NULL)"
    . " FROM gallery_list_photos lp JOIN gallery_lists l"
    . " ON l.id = lp.list_id JOIN galleries g ON g.id = l.gallery_id"
    . " WHERE g.slug = 'lim'") ], [ [ 1, 't' ] ],
    'the limited gallery: one photo, sent');

done_testing;
