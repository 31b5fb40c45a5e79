#!/usr/bin/perl
# The shop page in a real browser (Debian's chromium, headless, driven by
# python3-selenium; make deps installs them): add a print to the cart,
# choose the country, see the total the server quoted, apply a code the
# shop does not know and see the server's message beside the field, check
# out and land on the Stripe sandbox's payment page.  The order made is
# the one the page showed: its country, no code, the quoted total.
# Skips, saying why, where chromium, chromedriver or selenium is missing.

use strict;
use warnings;
use utf8;
use lib 't/lib';
use Test::More;
use JSON::PP;
use Darkroom::Test;
use Darkroom::Stripe qw(demo_catalogue sandbox);

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
$t->write_file('stripe_key', "sk_test_darkroom\n");
$t->write_file('whsec', "whsec_browser\n");
$t->write_file('order_keys', "k1:" . ('b' x 64) . "\n");
$t->conf(<<"CONF");
%%MAIN%%
events {}
http {
    %%HTTP%%
    include /etc/nginx/mime.types;
    darkroom_db "%%DB%%";
    darkroom_db_timeout 3s;
    darkroom_stripe_api http://127.0.0.1:%%PORT1%%;
    darkroom_stripe_key_file %%DIR%%/stripe_key;
    darkroom_stripe_webhook_secret_file %%DIR%%/whsec;
    darkroom_checkout_success_url "http://127.0.0.1:%%PORT0%%/order.html?token={ORDER_TOKEN}";
    darkroom_checkout_cancel_url "http://127.0.0.1:%%PORT0%%/?cancelled={ORDER_REF}";
    darkroom_order_keys %%DIR%%/order_keys;
    server {
        listen 127.0.0.1:%%PORT0%%;
        root $top/www;
        location = /api/catalogue { darkroom_catalogue; }
        location = /api/checkout { darkroom_checkout; }
        location = /api/cart/quote { darkroom_cart_quote; }
        location /api/orders/ { darkroom_order_status; }
        location = /webhooks/stripe { darkroom_stripe_webhook; }
        location = /health { darkroom_health; }
    }
}
CONF
my $sb = sandbox($t, webhook => "http://127.0.0.1:$port/webhooks/stripe");
demo_catalogue($t);
$t->start;

# what the server says of a code it does not know, and of the cart
my $cart = { items => [ { photo => 'harbour-dawn', product => 'giclee-a3',
                          quantity => 1 } ], currency => 'GBP' };
my $bad = $t->http(POST => '/api/cart/quote', {
    headers => { 'Content-Type' => 'application/json' },
    content => encode_json({ %$cart, discount_code => 'NOSUCHCODE' }) });
is($bad->{status}, 400, 'the server refuses an unknown code');
my $message = $bad->{json}{error}{message};
ok($message, "with a message: $message");
my $quote = $t->http(POST => '/api/cart/quote', {
    headers => { 'Content-Type' => 'application/json' },
    content => encode_json({ %$cart, country => 'IE' }) })->{json};

my $py = <<'PY';
import json, sys, time
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

base, pay, chromium, driver = sys.argv[1:5]
out = {}
opts = webdriver.ChromeOptions()
opts.binary_location = chromium
for a in ('--headless=new', '--no-sandbox', '--disable-dev-shm-usage',
          '--disable-gpu', '--lang=en-GB', '--window-size=1280,1600'):
    opts.add_argument(a)
b = webdriver.Chrome(service=Service(driver), options=opts)
wait = WebDriverWait(b, 30)
def text(id):
    return b.find_element(By.ID, id).text
def settled(_):
    # a quote answered and none pending: the checkout button says so
    t = text('cart-total')
    return t not in ('', '–', 'Pricing…') and (
        not b.find_element(By.ID, 'checkout-button').get_attribute('disabled')
        or b.find_element(By.ID, 'quote-error').is_displayed())
try:
    b.get(base + '/')
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, '#photos .card'))
    card = [c for c in b.find_elements(By.CSS_SELECTOR, '#photos .card')
            if c.find_element(By.CSS_SELECTOR, '.title').text
               == 'Harbour at Dawn'][0]
    Select(card.find_element(By.CSS_SELECTOR, 'select.product')) \
        .select_by_value('giclee-a3')
    card.find_element(By.CSS_SELECTOR, 'button.add').click()
    wait.until(settled)
    out['first_total'] = text('cart-total')
    country = Select(b.find_element(By.ID, 'country'))
    out['default_country'] = country.first_selected_option.get_attribute('value')
    out['country_label'] = b.find_element(
        By.CSS_SELECTOR, 'label[for=country]').text
    country.select_by_value('IE')
    time.sleep(0.3)
    wait.until(settled)
    out['total'] = text('cart-total')
    out['subtotal'] = text('q-subtotal')
    out['shipping_shown'] = b.find_element(By.ID, 'q-shipping').is_displayed()
    code = b.find_element(By.ID, 'discount-code')
    code.send_keys('NOSUCHCODE')
    b.find_element(By.ID, 'discount-apply').click()
    wait.until(lambda d: d.find_element(By.ID, 'discount-error').is_displayed())
    wait.until(settled)
    out['code_error'] = text('discount-error')
    out['code_error_role'] = b.find_element(
        By.ID, 'discount-error').get_attribute('role')
    out['total_after_code'] = text('cart-total')
    email = b.find_element(By.ID, 'email')
    email.clear()
    email.send_keys('browser@example.com')
    b.find_element(By.ID, 'checkout-button').click()
    wait.until(lambda d: d.current_url.startswith(pay))
    out['landed'] = b.current_url
    out['pay_page'] = b.find_element(By.TAG_NAME, 'body').text[:2000]
except Exception as e:
    out['error'] = '%s: %s' % (type(e).__name__, e)
    try:
        out['url'] = b.current_url
        out['page'] = b.find_element(By.TAG_NAME, 'body').text[:2000]
        out['console'] = [l['message'] for l in b.get_log('browser')][:20]
    except Exception:
        pass
finally:
    b.quit()
print(json.dumps(out))
PY
utf8::encode($py);
my $script = $t->write_file('shop.py', $py);

my $json = `$PY $script http://127.0.0.1:$port $sb->{url}/pay/ $chromium $driver 2>$t->{dir}/selenium.log`;
my $out = eval { decode_json($json) } // {};
ok(!$out->{error}, 'the browser went through the shop')
    or diag explain $out, $t->read_file('selenium.log');

like($out->{first_total}, qr/^£45\.00$/, 'the cart shows the quoted total');
is($out->{default_country}, 'GB', "the country defaults to the shop's");
like($out->{country_label}, qr/Country/, 'the country select has a label');
like($out->{total}, qr/^£[\d,.]+$/, 'a total for Ireland');
my $want = sprintf '£%.2f', $quote->{total} / 100;
is($out->{total}, $want, "the total is the server's quote for IE");
ok($out->{shipping_shown}, 'a print: the shipping line is shown');
is($out->{code_error}, $message, "a bad code: the server's message, inline");
is($out->{code_error_role}, 'alert', 'announced to screen readers');
is($out->{total_after_code}, $want, 'the total without the code');
like($out->{landed} // '', qr{^\Q$sb->{url}\E/pay/cs_}, 'checkout lands on'
    . ' the Stripe sandbox payment page');
like($out->{pay_page} // '', qr/Harbour at Dawn/, 'which lists the print');

my ($o) = $t->sql("SELECT country, coalesce(discount_code, ''), total,"
    . " stripe_amount, email FROM orders ORDER BY id DESC LIMIT 1");
is_deeply($o, ['IE', '', $quote->{total}, $quote->{total},
               'browser@example.com'],
          'the order: Ireland, no code, the quoted total, as Stripe has it');

done_testing;
