#!/usr/bin/perl
# The order page in headless chromium: it renders whatever parts of the
# price the order's JSON has (lines with their tax and discount, subtotal,
# discount, shipping, VAT added or included, total, invoice number) and a
# Downloads section from "downloads", all as text: markup in a title or a
# file name is shown, never run, and a link that is not http(s) is not
# made.  The JSON is served from a file, so the page is tested on its own.
# Skips, saying why, where chromium, chromedriver or selenium is missing.

use strict;
use warnings;
use utf8;
use lib 't/lib';
use Test::More;
use JSON::PP;
use Darkroom::Test;

binmode $_, ':encoding(UTF-8)' for Test::More->builder->output,
    Test::More->builder->failure_output;
my $PY = '/usr/bin/python3';
my ($chromium) = grep { -x } qw(/usr/bin/chromium /usr/bin/chromium-browser);
my $driver = '/usr/bin/chromedriver';
plan skip_all => 'no chromium (apt-get install chromium: make deps)'
    unless $chromium;
plan skip_all => 'no chromedriver (apt-get install chromium-driver: make deps)'
    unless -x $driver;
plan skip_all => 'no python3-selenium (make deps)'
    unless -x $PY && system($PY, '-c', 'import selenium') == 0;

my $t = Darkroom::Test->new;
my $port = $t->port(0);
my $top = $t->top;

my %order = (
    order => 'DR-000042', status => 'paid', email => 'ada@example.com',
    currency => 'GBP', tax_inclusive => JSON::PP::false,
    physical => JSON::PP::true,
    subtotal => 10500, discount_amount => 1050, discount_code => 'DEMO10',
    shipping_amount => 500, shipping_rate => 'UK standard',
    tax_amount => 1990, total => 11940, amount_refunded => 0,
    invoice_number => 'INV-000007',
    created_at => '2026-12-02T10:00:00Z', paid_at => '2026-12-02T10:05:00Z',
    items => [
        { photo => 'harbour-dawn', product => 'giclee-a3',
          title => 'Harbour <img src=x onerror=alert(1)>',
          product_name => 'Giclée print, A3', kind => 'print', quantity => 2,
          unit_amount => 4500, amount => 9000, discount => 900, tax => 1620,
          tax_rate => 20 },
        { photo => 'moor-rain', product => 'digital', title => 'Rain',
          product_name => 'Digital download', kind => 'digital',
          quantity => 1, unit_amount => 1500, amount => 1500,
          discount => 150, tax => 270, tax_rate => '20.0000' } ],
    shipments => [],
    downloads => [
        { line => 2, title => 'Rain on the Moor', name => 'moor-rain.tif',
          url => "http://127.0.0.1:$port/dl/moor-rain.tif?sig=abc",
          expires_at => '2027-01-01T00:00:00Z', remaining => 5 },
        { line => 3, title => '<b>bold</b>', name => 'x.tif',
          url => 'javascript:alert(1)', remaining => 1 },
        { line => 4, title => 'Used up', name => 'used.tif',
          url => "http://127.0.0.1:$port/dl/used.tif", remaining => 0 } ],
);
$t->write_file('orders/tok-incl', encode_json({ %order,
    tax_inclusive => JSON::PP::true, total => 9950, tax_amount => 1658,
    downloads => [], invoice_number => undef }));
$t->write_file('orders/tok-excl', encode_json(\%order));
# the parts as objects, as order_money_json() may give them
my %objects = %order;
delete @objects{qw(discount_amount discount_code shipping_amount
                   shipping_rate)};
$t->write_file('orders/tok-objs', encode_json({ %objects,
    discount => { code => 'DEMO10', amount => 1050 },
    shipping_charge => { amount => 500, tax => 100, method => 'standard',
                         name => 'UK standard' },
    tax_label => 'Sales tax' }));

$t->conf(<<"CONF");
%%MAIN%%
events {}
http {
    %%HTTP%%
    include /etc/nginx/mime.types;
    server {
        listen 127.0.0.1:%%PORT0%%;
        root $top/www;
        location /api/orders/ {
            alias %%DIR%%/orders/;
            default_type application/json;
        }
    }
}
CONF
$t->start;

my $py = <<'PY';
import json, sys
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

base, chromium, driver = sys.argv[1:4]
out = {}
opts = webdriver.ChromeOptions()
opts.binary_location = chromium
for a in ('--headless=new', '--no-sandbox', '--disable-dev-shm-usage',
          '--disable-gpu', '--lang=en-GB'):
    opts.add_argument(a)
b = webdriver.Chrome(service=Service(driver), options=opts)
def visible(id):
    e = b.find_element(By.ID, id)
    return e.text if e.is_displayed() else None
try:
    for tok in ('tok-excl', 'tok-incl', 'tok-objs'):
        b.get(base + '/order.html?token=' + tok)
        WebDriverWait(b, 30).until(
            lambda d: d.find_element(By.ID, 'order-body').is_displayed())
        o = {}
        for id in ('subtotal', 'discount-label', 'discount', 'shipping-label',
                   'shipping-amount', 'tax-label', 'tax', 'tax-incl-label',
                   'tax-incl', 'total', 'invoice', 'downloads-title'):
            o[id] = visible(id)
        o['items'] = b.find_element(By.ID, 'items').text
        o['injected'] = len(b.find_elements(By.CSS_SELECTOR,
                                            '#items img, #downloads b'))
        o['downloads'] = [{'text': li.text,
                           'links': [a.get_attribute('href') for a in
                                     li.find_elements(By.TAG_NAME, 'a')]}
                          for li in b.find_elements(By.CSS_SELECTOR,
                                                    '#downloads li')]
        out[tok] = o
    out['alerts'] = b.execute_script('return window.__alerted || 0')
except Exception as e:
    out['error'] = '%s: %s' % (type(e).__name__, e)
finally:
    b.quit()
print(json.dumps(out))
PY
my $script = $t->write_file('order.py', $py);

my $json = `$PY $script http://127.0.0.1:$port $chromium $driver 2>$t->{dir}/selenium.log`;
my $out = eval { decode_json($json) } // {};
ok(!$out->{error}, 'the browser read both orders')
    or diag explain $out, $t->read_file('selenium.log');

my $x = $out->{'tok-excl'} // {};
is($x->{subtotal}, '£105.00', 'subtotal');
is($x->{'discount-label'}, 'Discount (DEMO10)', 'the code used');
is($x->{discount}, '−£10.50', 'discount');
is($x->{'shipping-label'}, 'Shipping (UK standard)', 'the shipping rate');
is($x->{'shipping-amount'}, '£5.00', 'shipping');
is($x->{'tax-label'}, 'VAT', 'VAT added to the prices');
is($x->{tax}, '£19.90', 'VAT');
is($x->{'tax-incl'}, undef, 'not said to be included');
is($x->{total}, '£119.40', 'total');
is($x->{invoice}, 'INV-000007', 'invoice number');
like($x->{items}, qr/\+ VAT £16\.20 \(20%\)/, "a line's tax and rate");
like($x->{items}, qr/discount −£9\.00/, "a line's discount");
like($x->{items}, qr/Harbour <img src=x onerror=alert\(1\)>/,
     'markup in a title is shown as text');
is($x->{injected}, 0, 'and never becomes an element');
is($x->{'downloads-title'}, 'Downloads', 'a Downloads section');
my @d = @{$x->{downloads} // []};
is(scalar @d, 3, 'one entry per download');
is_deeply($d[0]{links}, ["http://127.0.0.1:$port/dl/moor-rain.tif?sig=abc"],
          'a link to the file');
like($d[0]{text}, qr/Rain on the Moor \(moor-rain\.tif\)/, 'title and name');
like($d[0]{text}, qr/5 downloads left/, 'downloads left');
like($d[0]{text}, qr/link expires/, 'and when the link expires');
is_deeply($d[1]{links}, [], 'a javascript: URL is not made a link');
like($d[1]{text}, qr/<b>bold<\/b>/, 'its title shown as text');
is_deeply($d[2]{links}, [], 'no link once the downloads are used up');
like($d[2]{text}, qr/no downloads left/, 'and it says so');

my $i = $out->{'tok-incl'} // {};
is($i->{tax}, undef, 'prices including VAT: no VAT line added');
is($i->{'tax-incl-label'}, 'Includes VAT', 'but the VAT they include');
is($i->{'tax-incl'}, '£16.58', 'its amount');
is($i->{total}, '£99.50', 'total');
is($i->{invoice}, undef, 'no invoice number: none shown');
is($i->{'downloads-title'}, undef, 'no downloads: no section');

my $j = $out->{'tok-objs'} // {};
is($j->{'discount-label'}, 'Discount (DEMO10)', 'a discount object: its code');
is($j->{discount}, '−£10.50', 'and amount');
is($j->{'shipping-label'}, 'Shipping (UK standard)', 'shipping_charge: name');
is($j->{'shipping-amount'}, '£5.00', 'and amount');
is($j->{'tax-label'}, 'Sales tax', "the tax's own label");
is($j->{total}, '£119.40', 'total');

done_testing;
