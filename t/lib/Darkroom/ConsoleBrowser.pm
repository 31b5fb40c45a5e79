package Darkroom::ConsoleBrowser;

# Helpers for the console's browser tests (t/995, t/996): nginx serving
# the console's pages (www/admin) with the shop, its admin API and the
# console API (/admin/console/api/), a fake Stripe that takes refunds
# (port 1); an owner made in SQL and a staff account the owner adds
# through the API; selenium driving headless chromium
# from a Python script, a screenshot of a failure kept under var/.
#
#   my $b = Darkroom::ConsoleBrowser::need_browser();   # or skip_all
#   my $c = Darkroom::ConsoleBrowser::start($t, http => $lines);
#       # { owner => {email, password}, staff => {...}, stripe }
#   my $s = Darkroom::ConsoleBrowser::login($t, $email, $password);
#       # { cookie, csrf, status, json }
#   my $r = Darkroom::ConsoleBrowser::capi($t, $s, POST => $path, $body,
#       csrf => 'none' | 'wrong');   # $path under /admin/
#   my $o = Darkroom::ConsoleBrowser::paid_order($t, $c);
#   my $out = Darkroom::ConsoleBrowser::run($t, $b, $name, $python, @args);

use strict;
use warnings;

use Exporter 'import';
use JSON::PP;
use Test::More;
use Darkroom::Test;
use Darkroom::Stripe qw(event session demo_catalogue fake_api webhook
    checkout_order);

our @EXPORT_OK = qw(need_browser start login capi paid_order run);

my $WHSEC = 'whsec_console_browser';

# chromium, chromedriver and python3-selenium, or the test is skipped
sub need_browser {
    my $py = '/usr/bin/python3';
    my ($chromium) = grep { -x } qw(/usr/bin/chromium /usr/bin/chromium-browser);
    my $driver = '/usr/bin/chromedriver';
    plan skip_all => 'no chromium (apt-get install chromium: make deps)'
        unless $chromium;
    plan skip_all => 'no chromedriver (apt-get install chromium-driver:'
        . ' make deps)' unless -x $driver;
    plan skip_all => 'no python3-selenium (make deps)'
        unless -x $py && system($py, '-c', 'import selenium') == 0;
    my $top = Darkroom::Test->top;
    plan skip_all => 'no console API in this build (darkroom_console_api)'
        unless system('grep', '-rqs', '"darkroom_console_api"',
                      "$top/src") == 0;
    return { py => $py, chromium => $chromium, driver => $driver };
}

# the configuration, the fake Stripe, the catalogue, the two accounts;
# nginx started
sub start {
    my ($t, %o) = @_;
    my $top = $t->top;
    $t->write_file('stripe_key', "sk_test_darkroom\n");
    $t->write_file('whsec', "$WHSEC\n");
    $t->write_file('admin_token', "admin-token-1\n");
    $t->write_file('order_keys', "o1:order-key-0123456789abcdef\n");
    my $stripe = fake_api($t);
    my $surl = $stripe->url;
    my $extra = $o{http} // '';
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
    darkroom_jobs_interval 100ms;
    darkroom_stripe_api $surl;
    darkroom_stripe_key_file %%DIR%%/stripe_key;
    darkroom_stripe_webhook_secret_file %%DIR%%/whsec;
    darkroom_admin_token_file %%DIR%%/admin_token;
    darkroom_order_keys %%DIR%%/order_keys;
    darkroom_checkout_success_url "http://127.0.0.1:%%PORT0%%/order.html?token={ORDER_TOKEN}";
    darkroom_checkout_cancel_url "http://127.0.0.1:%%PORT0%%/?cancelled={ORDER_REF}";
    darkroom_shipping_countries GB IE US;
$extra
    server {
        listen 127.0.0.1:%%PORT0%%;
        root $top/www;
        location = /health { darkroom_health; }
        location = /api/catalogue { darkroom_catalogue; }
        location = /api/checkout { darkroom_checkout; }
        location /api/orders/ { darkroom_order_status; }
        location = /webhooks/stripe { darkroom_stripe_webhook; }
        location /admin/ { index index.html; }
        location /admin/api/ { darkroom_admin; }
        location /admin/api/labs/ { darkroom_lab_admin; }
        location /admin/console/api/ { darkroom_console_api; }
    }
}
CONF
    demo_catalogue($t);
    $t->start;

    my $owner = { email => 'owner@example.com',
                  password => 'owner password 1' };
    $t->sql("INSERT INTO console_accounts (email, name, role, password_hash)"
        . " VALUES (:'p1', 'Olive Owner', 'owner', :'p2')", $owner->{email},
        scrypt_hash($owner->{password}));

    my $staff = { email => 'staff@example.com', name => 'Sam Staff',
                  password => 'staff password 1' };
    my $s = login($t, $owner->{email}, $owner->{password});
    die "owner login: $s->{status}" unless $s->{status} == 200;
    my $r = capi($t, $s, POST => 'console/api/accounts', { %$staff,
        role => 'staff' });
    die "staff account: $r->{status} $r->{content}" unless $r->{status} == 200
        || $r->{status} == 201;
    capi($t, $s, POST => 'console/api/logout');
    return { owner => $owner, staff => $staff, stripe => $stripe };
}

# scrypt$14$8$1$<salt>$<key>, as the module makes it (python's hashlib)
sub scrypt_hash {
    my ($pw) = @_;
    my $py = 'import base64,hashlib,os,sys;'
        . 's=os.urandom(16);'
        . 'k=hashlib.scrypt(sys.argv[1].encode(),salt=s,n=16384,r=8,p=1,'
        . 'maxmem=64*1024*1024,dklen=32);'
        . 'e=lambda b:base64.urlsafe_b64encode(b).decode().rstrip("=");'
        . 'print("scrypt$14$8$1$"+e(s)+"$"+e(k))';
    open my $fh, '-|', 'python3', '-c', $py, $pw or die "python3: $!";
    my $h = <$fh>;
    close $fh;
    chomp $h;
    return $h;
}

# signs in through the API: the session cookie and its CSRF token
sub login {
    my ($t, $email, $password) = @_;
    my $r = $t->http(POST => '/admin/console/api/login', {
        headers => { 'Content-Type' => 'application/json' },
        content => encode_json({ email => $email, password => $password }) });
    my ($cookie) = ($r->{headers}{'set-cookie'} // '')
        =~ /\bdarkroom_admin=([^;,\s]+)/;
    return { status => $r->{status}, json => $r->{json},
             cookie => $cookie, csrf => $r->{json} && $r->{json}{csrf} };
}

# a call under /admin/ with the session: its cookie, and the CSRF token
# unless csrf => 'none' (or a wrong one: 'wrong')
sub capi {
    my ($t, $s, $method, $path, $body, %o) = @_;
    my %h = ('Content-Type' => 'application/json',
             Cookie => "darkroom_admin=" . ($s->{cookie} // ''));
    my $csrf = $o{csrf} // 'right';
    if ($method ne 'GET' && $csrf ne 'none') {
        $h{'X-CSRF-Token'} = $csrf eq 'wrong' ? 'x' . ($s->{csrf} // '')
                                              : $s->{csrf};
    }
    return $t->http($method, "/admin/$path", { headers => \%h,
        defined $body ? (content => encode_json($body)) : () });
}

# an order paid through Checkout and Stripe's webhook (a download, so
# that no lab is needed): { id, ref, total }
sub paid_order {
    my ($t, %o) = @_;
    my $order = checkout_order($t, $o{quantity} // 1,
                               product => $o{product} // 'digital');
    my $r = webhook($t, $WHSEC, event('checkout.session.completed',
        session(id => $order->{session}, order_id => $order->{id},
                amount => $order->{total})));
    die "webhook: $r->{status} $r->{content}" unless $r->{status} == 200;
    return $order;
}

# the Python script with the arguments; its JSON answer, or {error} and
# a screenshot var/screenshots/<name>-<time>.png
sub run {
    my ($t, $b, $name, $python, @args) = @_;
    my $shots = $t->top . '/var/screenshots';
    mkdir $shots;
    my $head = <<'PY';
import json, sys, time
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

chromium, driver, shot, base = sys.argv[1:5]
args = sys.argv[5:]
out = {}
opts = webdriver.ChromeOptions()
opts.binary_location = chromium
for a in ('--headless=new', '--no-sandbox', '--disable-dev-shm-usage',
          '--disable-gpu', '--lang=en-GB', '--window-size=1280,1400'):
    opts.add_argument(a)
opts.set_capability('goog:loggingPrefs', {'browser': 'ALL'})
b = webdriver.Chrome(service=Service(driver), options=opts)
wait = WebDriverWait(b, 20)
def el(id):
    return b.find_element(By.ID, id)
def text(id):
    return el(id).text
def css(sel, root=None):
    return (root or b).find_elements(By.CSS_SELECTOR, sel)
def present(id):
    return len(b.find_elements(By.ID, id)) > 0
def title():
    return text('page-title')
def go(hash):
    b.get(base + '/admin/' + hash)
def page(name):
    # the hash route drawn: the page's root and no "Loading"
    wait.until(lambda d: css('.page-' + name)
               and not css('.page-' + name + ' .loading'))
def signed_in():
    return 'signed-in' in (b.find_element(By.TAG_NAME, 'body')
                           .get_attribute('class') or '')
def login(email, password):
    go('')
    wait.until(lambda d: present('login-email'))
    el('login-email').clear()
    el('login-email').send_keys(email)
    el('login-password').send_keys(password)
    el('login-submit').click()
def notice():
    n = el('notice')
    return n.text if n.is_displayed() else ''
def fetch(method, path, headers=None):
    # a request from the page (its cookie): [status, body]
    return b.execute_async_script('''
        var done = arguments[arguments.length - 1];
        fetch(arguments[1], { method: arguments[0], credentials:
              'same-origin', headers: Object.assign({'Content-Type':
              'application/json'}, arguments[2] || {}), body:
              arguments[0] === 'GET' ? undefined : '{"note":"x"}' })
          .then(function (r) { return r.text().then(function (t) {
              done([r.status, t.slice(0, 500)]); }); },
                function (e) { done([0, String(e)]); });
    ''', method, path, headers or {})
try:
PY
    $python .= "\n" unless $python =~ /\n\z/;
    $python =~ s/^/    /mg;
    my $tail = <<'PY';
except Exception as e:
    out['error'] = '%s: %s' % (type(e).__name__, e)
    try:
        out['url'] = b.current_url
        out['page'] = b.find_element(By.TAG_NAME, 'body').text[:3000]
        b.save_screenshot(shot)
        out['screenshot'] = shot
    except Exception:
        pass
finally:
    try:
        # the script errors (a refused request is logged too: not those)
        out['console'] = [l['message'] for l in b.get_log('browser')
                          if l['level'] == 'SEVERE' and
                          'Failed to load resource' not in l['message']][:20]
    except Exception:
        pass
    b.quit()
print(json.dumps(out))
PY
    my $py = $head . $python . $tail;
    utf8::encode($py) if utf8::is_utf8($py);
    my $script = $t->write_file("$name.py", $py);
    my $dir = $t->dir;
    my $shot = "$shots/$name-" . time . '.png';
    my $base = 'http://127.0.0.1:' . $t->port(0);
    open my $err, '>&', \*STDERR or die "dup: $!";
    open STDERR, '>', "$dir/selenium.log" or die "selenium.log: $!";
    open my $ps, '-|', $b->{py}, $script, $b->{chromium}, $b->{driver},
        $shot, $base, @args or die "python: $!";
    my $json = do { local $/; <$ps> } // '';
    close $ps;
    open STDERR, '>&', $err or die "dup: $!";
    my $out = eval { decode_json($json) } // { error => "no JSON: $json" };
    return $out;
}

1;
