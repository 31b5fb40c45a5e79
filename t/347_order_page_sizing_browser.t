#!/usr/bin/perl
# The order page in headless chromium shows a gallery print's sizing
# (issue 14): "Cropped to fill the print" for crop, "The whole photo, with
# borders" for fit, nothing for a line without.  The JSON is served from
# a file, so the page is tested on its own.  Skips, saying why, where
# chromium, chromedriver or selenium is missing.

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

my @items = map { { photo => "gallery:$_->[0]", product => 'giclee-a3',
    title => "IMG_$_->[0].jpg", product_name => 'Giclée print, A3',
    kind => 'print', quantity => 1, unit_amount => 4500, amount => 4500,
    discount => 0, tax => 0, tax_rate => 0, sizing => $_->[1] } }
    [1, 'crop'], [2, 'fit'], [3, undef];
$t->write_file('orders/tok-sizing', encode_json({ order => 'DR-000043',
    status => 'paid', email => 'ada@example.com', currency => 'GBP',
    subtotal => 13500, total => 13500, amount_refunded => 0,
    created_at => '2026-12-02T10:00:00Z', paid_at => '2026-12-02T10:05:00Z',
    items => \@items, shipments => [], downloads => [] }));

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
try:
    b.get(base + '/order.html?token=tok-sizing')
    WebDriverWait(b, 30).until(
        lambda d: d.find_element(By.ID, 'order-body').is_displayed())
    out['rows'] = [tr.text for tr in
                   b.find_elements(By.CSS_SELECTOR, '#items tr')]
except Exception as e:
    out['error'] = '%s: %s' % (type(e).__name__, e)
finally:
    b.quit()
print(json.dumps(out))
PY
my $script = $t->write_file('order.py', $py);

my $json = `$PY $script http://127.0.0.1:$port $chromium $driver 2>$t->{dir}/selenium.log`;
my $out = eval { decode_json($json) } // {};
ok(!$out->{error}, 'the browser read the order')
    or diag explain $out, $t->read_file('selenium.log');
my @rows = @{ $out->{rows} // [] };
is(scalar @rows, 3, 'three lines');
like($rows[0] // '', qr/IMG_1\.jpg.*\n.*Giclée print, A3.*\n.*Cropped to fill the print/,
    'crop: cropped to fill the print');
like($rows[1] // '', qr/The whole photo, with borders/, 'fit: with borders');
unlike($rows[2] // '', qr/Cropped|whole photo/, 'no sizing: nothing said');

done_testing;
