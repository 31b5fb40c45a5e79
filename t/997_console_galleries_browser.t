#!/usr/bin/perl
# The console's galleries page in a real browser (headless chromium driven
# by python3-selenium): the owner signs in, a bad slug is refused with a
# message and nothing is written, a gallery is created with a password,
# its expiry set (a bad currency refused, nothing written), a visitor's
# selection seen with its Lightroom and CSV exports, and the gallery
# revoked from the page: the client API then answers 410. At 375 px no
# page scrolls sideways; a gallery is made with the keyboard alone.
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

sub gadmin {
    my ($method, $path, $body) = @_;
    return Darkroom::ConsolePages::api($t, $method,
                                       "/admin/api/galleries/$path", $body);
}

# 1. sign in, a bad slug refused, then the gallery created with a password
my $out = Darkroom::ConsolePages::run($t, $b, '997-create', <<'PY', $base);
login(args[0], 'owner@example.com', 'owner-password-1')
page(args[0], 'galleries', '#gallery-new')
out['nav'] = [a.text for a in css('#nav a')]
fill('gallery-new', 'slug', 'Bad Slug!')
fill('gallery-new', 'title', 'Smith wedding')
submit('gallery-new')
out['bad_slug'] = said('gallery-new', True)
fill('gallery-new', 'slug', 'smith-wedding')
fill('gallery-new', 'password', 'ab')
submit('gallery-new')
out['bad_password'] = said('gallery-new', True)
fill('gallery-new', 'password', 'open sesame')
fill('gallery-new', 'client_email', 'client@example.com')
submit('gallery-new')
wait.until(lambda d: '#gallery/smith-wedding' in d.current_url
           and css('#gallery-settings'))
out['state'] = el('gallery-state').text
PY
is($out->{error}, undef, 'the page created the gallery');
ok((grep { $_ eq 'Galleries' } @{$out->{nav} // []}), 'Galleries in the menu');
like($out->{bad_slug} // '', qr/slug/i, "a bad slug: $out->{bad_slug}");
like($out->{bad_password} // '', qr/password/i,
     "a short password: $out->{bad_password}");
is($out->{state}, 'open', 'the new gallery is open');

my $g = gadmin(GET => 'smith-wedding');
is($g->{status}, 200, 'the gallery exists');
ok($g->{json}{gallery}{has_password}, 'with a password');
is($g->{json}{gallery}{client_email}, 'client@example.com', 'its client');
is(scalar @{gadmin(GET => '')->{json}{galleries}}, 1,
   'nothing written for the refused forms');
my $client = $t->http(GET => '/api/galleries/smith-wedding');
isnt($client->{status}, 410, "the client API answers ($client->{status})");

# 2. a visitor's selection, made as the client API would
my $photos = [ map { { original => "smith-wedding/IMG_$_.jpg",
                       name => "IMG_$_.jpg", bytes => 1000 + $_,
                       crc32 => 12345 + $_, position => $_ } } 1 .. 3 ];
is(gadmin(POST => 'smith-wedding/photos', { photos => $photos })->{status},
   200, 'three photos');
$t->sql(<<'SQL');
WITH g AS (SELECT id FROM galleries WHERE slug = 'smith-wedding'),
v AS (INSERT INTO gallery_visitors (gallery_id, name, email)
      SELECT id, 'Ann Smith', 'ann@example.com' FROM g RETURNING *),
l AS (INSERT INTO gallery_lists (gallery_id, visitor_id, name, submitted_at)
      SELECT gallery_id, id, 'Album picks', now() FROM v RETURNING *)
INSERT INTO gallery_list_photos (list_id, photo_id, note)
SELECT l.id, p.id, CASE WHEN p.name = 'IMG_1.jpg' THEN 'cover' ELSE '' END
  FROM l JOIN gallery_photos p ON p.gallery_id = l.gallery_id
 WHERE p.name IN ('IMG_1.jpg', 'IMG_3.jpg');
SQL

# 3. the expiry set (a bad currency refused first), the selection seen,
# the gallery revoked
$out = Darkroom::ConsolePages::run($t, $b, '997-edit', <<'PY', $base);
login(args[0], 'owner@example.com', 'owner-password-1')
page(args[0], 'gallery/smith-wedding', '#gallery-settings')
exp = one('#gallery-settings [name="expires_at"]')
b.execute_script('arguments[0].value = arguments[1]', exp, '2031-05-04T18:30')
fill('gallery-settings', 'currency', 'pounds')
submit('gallery-settings')
out['bad_currency'] = said('gallery-settings', True)
fill('gallery-settings', 'currency', 'GBP')
submit('gallery-settings')
# saved: the page draws itself again, saying so above the settings
out['saved'] = read(lambda: next((s.text for s in css('#main .form-status.ok')
                                  if s.text == 'Saved.'), None))
out['expires'] = read(lambda: one('#gallery-settings [name="expires_at"]')
                      .get_attribute('value'))
out['visitor'] = read(lambda: one('#gallery-visitors .visitor').text)
out['exports'] = read(lambda: [a.get_attribute('href') for a in
                               css('#gallery-visitors .visitor .list a')])
click('button[data-action="revoke"]')
click('button[data-confirm="revoke"]')
wait.until(lambda d: css('#gallery-state') and el('gallery-state').text == 'revoked')
out['state'] = el('gallery-state').text
out['restore'] = len(css('button[data-action="restore"]'))
PY
is($out->{error}, undef, 'the page edited and revoked the gallery');
like($out->{bad_currency} // '', qr/currency/i,
     "a bad currency: $out->{bad_currency}");
is($out->{expires}, '2031-05-04T18:30', 'the expiry shown as set');
like($out->{visitor} // '', qr/Ann Smith/, 'the visitor');
like($out->{visitor} // '', qr/Album picks/, 'her list');
like($out->{visitor} // '', qr/IMG_1\.jpg \(cover\), IMG_3\.jpg/,
     'the photos she chose, with her note');
my ($lr) = grep { /format=lightroom/ } @{$out->{exports} // []};
my ($csv) = grep { /format=csv/ } @{$out->{exports} // []};
ok($lr && $csv, 'Lightroom and CSV export links');
my $r = Darkroom::ConsolePages::api($t, GET => ($lr // '') =~ s{^https?://[^/]+}{}r);
is($r->{status}, 200, 'the Lightroom link answers');
is($r->{content}, "IMG_1, IMG_3\n", 'with the file names');
$r = Darkroom::ConsolePages::api($t, GET => ($csv // '') =~ s{^https?://[^/]+}{}r);
like($r->{content} // '', qr/^file,note,visitor,email/, 'the CSV link');
is($out->{state}, 'revoked', 'the page says revoked');
is($out->{restore}, 1, 'and offers to restore it');

$g = gadmin(GET => 'smith-wedding')->{json}{gallery};
like($g->{expires_at} // '', qr/^2031-05-0[45]/, "expiry saved: $g->{expires_at}");
is($g->{currency}, 'GBP', 'the currency saved');
ok($g->{revoked_at}, 'revoked');
is($t->http(GET => '/api/galleries/smith-wedding')->{status}, 410,
   'the client API answers 410');

# 4. a phone: 375 px wide, no page scrolls sideways; the keyboard alone
# fills and sends the form
$out = Darkroom::ConsolePages::run($t, $b, '997-phone', <<'PY', $base);
login(args[0], 'owner@example.com', 'owner-password-1')
b.execute_cdp_cmd('Emulation.setDeviceMetricsOverride', {
    'width': 375, 'height': 800, 'deviceScaleFactor': 2, 'mobile': True})
out['wide'] = {}
for h, sel in (('galleries', '#gallery-new'),
               ('gallery/smith-wedding', '#gallery-settings'),
               ('catalogue', '#catalogue-sheets')):
    page(args[0], h, sel)
    time.sleep(0.2)
    out['wide'][h] = b.execute_script(
        'return [document.documentElement.scrollWidth, window.innerWidth]')
page(args[0], 'galleries', '#gallery-new')
one('#gallery-new [name="slug"]').click()
b.switch_to.active_element.send_keys('by-keys')
b.switch_to.active_element.send_keys(Keys.TAB)
b.switch_to.active_element.send_keys('Typed only')
b.switch_to.active_element.send_keys(Keys.ENTER)
wait.until(lambda d: '#gallery/by-keys' in d.current_url
           and css('#gallery-settings'))
# no client email: the server refuses to send it, and says why
one('button[data-action="deliver"]').click()
one('button[data-confirm="deliver"]').click()
wait.until(lambda d: css('#main .form-status.error'))
out['deliver'] = css('#main .form-status.error')[0].text
PY
is($out->{error}, undef, 'the pages at 375 px, a form by the keyboard');
for my $p (sort keys %{$out->{wide} // {}}) {
    my ($scroll, $inner) = @{$out->{wide}{$p}};
    is($inner, 375, "$p: 375 px wide");
    ok($scroll <= $inner, "$p: no sideways scroll ($scroll)");
}
is(scalar keys %{$out->{wide} // {}}, 3, 'three pages at 375 px');
is(gadmin(GET => 'by-keys')->{json}{gallery}{title}, 'Typed only',
   'the gallery made from the keyboard');
like($out->{deliver} // '', qr/no client email/,
     "sending without a client email: $out->{deliver}");
is(gadmin(GET => 'by-keys')->{json}{gallery}{delivered_at}, undef,
   'nothing recorded');

done_testing;
