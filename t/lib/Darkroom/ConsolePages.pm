package Darkroom::ConsolePages;

# Helpers for the console pages' browser tests (t/988 catalogue and pricing,
# t/997 galleries, t/998 accounts, keys and audit): nginx serving www/admin/
# with the console API (/admin/console/api/), the shop's and the gallery's
# admin APIs, the client gallery API and the public catalogue; the first
# owner made with the bootstrap token; selenium driving headless chromium
# from a Python script, a screenshot of a failure kept under
# var/screenshots/.
#
#   my $b = Darkroom::ConsolePages::need_browser();       # or skip_all
#   Darkroom::ConsolePages::start($t);       # or start($t, http => $lines,
#                                            #   server => $locations)
#   Darkroom::ConsolePages::owner($t, 'owner@example.com', 'password-1');
#   my $r = Darkroom::ConsolePages::api($t, GET => 'accounts');
#   my $out = Darkroom::ConsolePages::run($t, $b, 'name', $python, @args);
#
# The script runs inside a try: b (the browser), wait, el(id), css(sel),
# login(base, email, password), page(base, hash) (opens the page and waits
# for its first form, table or message), out (a dict printed as JSON).

use strict;
use warnings;

use File::Path qw(make_path);
use JSON::PP;
use Test::More;

our $TOKEN = 'admin-token-console';

sub need_browser {
    my $py = '/usr/bin/python3';
    my ($chromium) = grep { -x } qw(/usr/bin/chromium
                                    /usr/bin/chromium-browser);
    my $driver = '/usr/bin/chromedriver';
    plan skip_all => 'no chromium (apt-get install chromium: make deps)'
        unless $chromium;
    plan skip_all => 'no chromedriver (apt-get install chromium-driver:'
        . ' make deps)' unless -x $driver;
    plan skip_all => 'no python3-selenium (make deps)'
        unless -x $py && system($py, '-c', 'import selenium') == 0;
    my $top = Darkroom::Test->top;
    plan skip_all => 'no console shell (www/admin/admin.js)'
        unless -f "$top/www/admin/admin.js";
    plan skip_all => 'no console API in this build (darkroom_console_api)'
        unless system('grep', '-rqs', '"darkroom_console_api"',
                      "$top/src") == 0;
    return { py => $py, chromium => $chromium, driver => $driver };
}

sub start {
    my ($t, %o) = @_;
    my $top = $t->top;
    my $extra = $o{http} // '';
    my $locations = $o{server} // '';
    $t->write_file('admin_token', "$TOKEN\n");
    $t->write_file('order_keys', "o1:order-key-0123456789abcdef\n");
    $t->write_file('media_keys', "m1:media-key-0123456789abcdef\n");
    $t->write_file('cookie_key', "cookie-key-0123456789abcdef\n");
    mkdir $t->dir . '/files';
    $t->conf(<<"CONF");
%%MAIN%%
thread_pool darkroom threads=4;
events {}
http {
    %%HTTP%%
    include /etc/nginx/mime.types;
    darkroom_db "%%DB%%";
    darkroom_db_pool darkroom;
    darkroom_db_timeout 5s;
    darkroom_admin_token_file %%DIR%%/admin_token;
    darkroom_order_keys %%DIR%%/order_keys;
    darkroom_gallery_zone 1m interval=200ms;
    darkroom_media_keys %%DIR%%/media_keys;
    darkroom_gallery_media /media/;
    darkroom_gallery_root %%DIR%%/files;
    darkroom_gallery_cookie_key_file %%DIR%%/cookie_key;
$extra
    server {
        listen 127.0.0.1:%%PORT0%%;
        root $top/www;
        location = /health { darkroom_health; }
$locations
        location = /api/catalogue { darkroom_catalogue; }
        location = /api/cart/quote { darkroom_cart_quote; }
        location /admin/console/api/ { darkroom_console_api; }
        location /admin/api/ { darkroom_admin; }
        location /admin/api/galleries/ { darkroom_gallery_admin; }
        location /api/galleries/ { darkroom_gallery; }
        location /media/ {
            darkroom_media on;
            alias %%DIR%%/files/;
        }
    }
}
CONF
    $t->sql(<<'SQL');
INSERT INTO products (id, name, kind, medium, size) VALUES
  ('print-a4', 'A4 print', 'print', 'Photo Rag', 'A4'),
  ('digital', 'Digital download', 'digital', '', '');
UPDATE products SET print_width_mm = 297, print_height_mm = 210
 WHERE id = 'print-a4';
INSERT INTO product_prices VALUES ('print-a4', 'GBP', 2800),
  ('digital', 'GBP', 1500);
INSERT INTO price_sheets (id, name) VALUES ('wed-sheet', 'Wedding');
INSERT INTO price_sheet_items (sheet_id, product_id, position) VALUES
  ('wed-sheet', 'print-a4', 1), ('wed-sheet', 'digital', 2);
INSERT INTO price_sheet_prices VALUES ('wed-sheet', 'print-a4', 'GBP', 2500);
SQL
    $t->start;
}

# a request with the bootstrap token (or $auth: a header value)
sub api {
    my ($t, $method, $path, $body, $auth) = @_;
    $path = "/admin/console/api/$path" unless $path =~ m{^/};
    return $t->http($method, $path, {
        headers => { Authorization => $auth // "Bearer $TOKEN",
                     'Content-Type' => 'application/json' },
        defined $body ? (content => encode_json($body)) : () });
}

sub owner {
    my ($t, $email, $password) = @_;
    my $r = api($t, POST => 'accounts', { email => $email, name => 'Owner',
                                          role => 'owner',
                                          password => $password });
    die "owner: $r->{status} $r->{content}" unless $r->{status} == 200
                                                   || $r->{status} == 201;
    return $r->{json}{account};
}

# signs in with the console API: the session cookie and the CSRF token
sub login {
    my ($t, $email, $password) = @_;
    my $r = $t->http(POST => '/admin/console/api/login', {
        headers => { 'Content-Type' => 'application/json' },
        content => encode_json({ email => $email, password => $password }) });
    my ($id) = ($r->{headers}{'set-cookie'} // '') =~ /darkroom_admin=([^;]+)/;
    return { status => $r->{status}, cookie => "darkroom_admin=" . ($id // ''),
             csrf => $r->{json} ? $r->{json}{csrf} : undef };
}

sub run {
    my ($t, $b, $name, $python, @args) = @_;
    my $shots = $t->top . '/var/screenshots';
    make_path($shots);
    my $head = <<'PY';
import json, sys, time
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait
from selenium.common.exceptions import (NoSuchElementException,
                                        StaleElementReferenceException)

chromium, driver, shot = sys.argv[1:4]
args = sys.argv[4:]
out = {}
opts = webdriver.ChromeOptions()
opts.binary_location = chromium
for a in ('--headless=new', '--no-sandbox', '--disable-dev-shm-usage',
          '--disable-gpu', '--lang=en-GB', '--window-size=1280,1600'):
    opts.add_argument(a)
b = webdriver.Chrome(service=Service(driver), options=opts)
# a page redraws itself after each change: an element of the old drawing
# (stale) or none yet means "not yet"
wait = WebDriverWait(b, 30, ignored_exceptions=(
    NoSuchElementException, StaleElementReferenceException, IndexError))
def el(id):
    return b.find_element(By.ID, id)
def css(sel, root=None):
    return (root or b).find_elements(By.CSS_SELECTOR, sel)
def one(sel, root=None):
    wait.until(lambda d: css(sel, root))
    return css(sel, root)[0]
def login(base, email, password):
    b.get(base + '/admin/')
    wait.until(lambda d: css('#login-email'))
    el('login-email').send_keys(email)
    el('login-password').send_keys(password)
    el('login-submit').click()
    wait.until(lambda d: css('#nav a'))
def page(base, hash, sel):
    b.get(base + '/admin/#' + hash)
    wait.until(lambda d: css(sel))
def fill(form, name, value):
    f = one('#%s [name="%s"]' % (form, name))
    if f.tag_name == 'select':
        Select(f).select_by_value(value)
    else:
        f.clear()
        f.send_keys(value)
def submit(form):
    one('#%s button[type=submit]' % form).click()
def said(form, bad=None):
    # the form's answer: its status line once it is no longer "Saving"
    def done(d):
        s = css('#%s .form-status' % form)
        if not s:
            return False
        t = s[0].text
        if not t or t.startswith('Saving'):
            return False
        return t if bad is None or ('error' in s[0].get_attribute('class')) == bad else False
    return wait.until(done)
def read(fn):
    # a value read off a page that may redraw itself meanwhile: fn again
    # until it answers without meeting a stale element
    return wait.until(lambda d: fn() or None)
def click(sel):
    # a button of a page that may redraw itself meanwhile
    wait.until(lambda d: one(sel).click() or True)
try:
PY
    $python =~ s/^/    /mg;
    my $tail = <<'PY';
except Exception as e:
    out['error'] = '%s: %s' % (type(e).__name__, e)
    try:
        out['url'] = b.current_url
        out['page'] = b.find_element(By.TAG_NAME, 'body').text[:3000]
        out['console'] = [l['message'] for l in b.get_log('browser')][:20]
        b.save_screenshot(shot)
        out['screenshot'] = shot
    except Exception:
        pass
finally:
    b.quit()
print(json.dumps(out))
PY
    my $py = $head . $python . $tail;
    utf8::encode($py) if utf8::is_utf8($py);
    my $script = $t->write_file("browser-$name.py", $py);
    my $dir = $t->dir;
    open my $err, '>&', \*STDERR or die "dup: $!";
    open STDERR, '>>', "$dir/selenium.log" or die "selenium.log: $!";
    open my $ps, '-|', $b->{py}, $script, $b->{chromium}, $b->{driver},
        "$shots/$name.png", @args or die "python: $!";
    my $json = do { local $/; <$ps> } // '';
    close $ps;
    open STDERR, '>&', $err or die "dup: $!";
    my $out = eval { decode_json($json) } // { error => "no JSON: $json" };
    diag(explain($out)) if $out->{error};
    return $out;
}

1;
