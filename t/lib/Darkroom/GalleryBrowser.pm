package Darkroom::GalleryBrowser;

# Helpers for the client gallery's browser tests (t/992, t/993): the page
# (www/gallery.html) served with the gallery API, the shop's checkout and
# order pages, the Stripe sandbox (port 1) and the lab sandbox (port 2);
# a catalogue with print sizes, a price sheet, galleries of real JPEGs;
# selenium driving headless chromium from a Python script.
#
#   my $b = Darkroom::GalleryBrowser::need_browser();   # or skip_all
#   my ($sb, $lab) = Darkroom::GalleryBrowser::start($t);
#   my $g = Darkroom::GalleryBrowser::gallery($t, 'wed', password => 'x',
#       photos => [ ['IMG_1.jpg', 3000, 2000], ... ], sheet => 'wed-sheet',
#       selection_limit => 2, extra_photo_amount => 500,
#       visitor_download_limit => 5);
#   my $out = Darkroom::GalleryBrowser::run($t, $b, $python, @args);

use strict;
use warnings;

use Exporter 'import';
use JSON::PP;
use Test::More;
use Compress::Zlib qw(crc32);
use Digest::SHA qw(sha256_hex);
use Darkroom::Stripe qw(sandbox);
use LabSandbox;

our @EXPORT_OK = qw(need_browser start gallery run);

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
    plan skip_all => "no ImageMagick's convert"
        unless system('sh', '-c', 'command -v convert >/dev/null') == 0;
    return { py => $py, chromium => $chromium, driver => $driver };
}

# the configuration, the sandboxes, the catalogue; nginx started
sub start {
    my ($t, %o) = @_;
    my $top = $t->top;
    $t->write_file('stripe_key', "sk_test_darkroom\n");
    $t->write_file('whsec', "whsec_gallery_browser\n");
    $t->write_file('order_keys', "o1:order-key-0123456789abcdef\n");
    $t->write_file('admin_token', "admin-token-1\n");
    $t->write_file('media_keys', "m1:media-key-0123456789abcdef\n");
    $t->write_file('cookie_key', "cookie-key-0123456789abcdef\n");
    $t->write_file('callback.secret', "callback-secret-0123456789\n");
    mkdir $t->dir . '/files';
    mkdir $t->dir . '/prints';
    my $port = $t->port(0);
    my $lab = LabSandbox::start($t, port => 2);
    my $laburl = $lab->url;
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
    darkroom_jobs_backoff 100ms 1s;
    darkroom_fetch_timeout 5s;
    darkroom_stripe_api http://127.0.0.1:%%PORT1%%;
    darkroom_stripe_key_file %%DIR%%/stripe_key;
    darkroom_stripe_webhook_secret_file %%DIR%%/whsec;
    darkroom_admin_token_file %%DIR%%/admin_token;
    darkroom_order_keys %%DIR%%/order_keys;
    darkroom_checkout_success_url "http://127.0.0.1:%%PORT0%%/order.html?token={ORDER_TOKEN}";
    darkroom_checkout_cancel_url "http://127.0.0.1:%%PORT0%%/?cancelled={ORDER_REF}";
    darkroom_shipping_countries GB IE US;

    darkroom_prodigi_api $laburl;
    darkroom_prodigi_key_file %%DIR%%/prodigi_key;
    darkroom_lab_asset_url http://127.0.0.1:%%PORT0%%/print-files;
    darkroom_lab_gallery_asset_url http://127.0.0.1:%%PORT0%%/gallery-files;
    darkroom_lab_asset_keys %%DIR%%/media_keys;
    darkroom_lab_callback_url http://127.0.0.1:%%PORT0%%/webhooks/labs/prodigi;
    darkroom_lab_callback_secret_file %%DIR%%/callback.secret;
    darkroom_lab_poll_interval 300ms;

    darkroom_gallery_zone 1m interval=500ms;
    darkroom_media_keys %%DIR%%/media_keys;
    darkroom_gallery_media /media/;
    darkroom_gallery_root %%DIR%%/files;
    darkroom_gallery_cookie_key_file %%DIR%%/cookie_key;

    server {
        listen 127.0.0.1:%%PORT0%%;
        root $top/www;
        location = /health { darkroom_health; }
        location = /api/catalogue { darkroom_catalogue; }
        location = /api/checkout { darkroom_checkout; }
        location = /api/cart/quote { darkroom_cart_quote; }
        location /api/orders/ { darkroom_order_status; }
        location = /webhooks/stripe { darkroom_stripe_webhook; }
        location = /webhooks/labs/prodigi { darkroom_lab_callback prodigi; }
        location /g/ { try_files /gallery.html =404; }
        location /api/galleries/ {
            darkroom_gallery;
            darkroom_gallery_cancel_url
                "http://127.0.0.1:%%PORT0%%/g/{GALLERY}?cancelled={ORDER_REF}";
        }
        location /admin/api/galleries/ { darkroom_gallery_admin; }
        location /media/ {
            darkroom_media on;
            alias %%DIR%%/files/;
        }
        location /print-files/ {
            darkroom_media on;
            darkroom_media_keys %%DIR%%/media_keys;
            alias %%DIR%%/prints/;
        }
        location /gallery-files/ {
            darkroom_media on;
            darkroom_media_keys %%DIR%%/media_keys;
            alias %%DIR%%/files/;
        }
    }
}
CONF
    my $sb = sandbox($t, port => 1,
                     webhook => "http://127.0.0.1:$port/webhooks/stripe");
    catalogue($t);
    $t->start;
    return ($sb, $lab);
}

# prints with print sizes, a download; the A4 made by Prodigi
sub catalogue {
    my ($t) = @_;
    $t->sql(<<'SQL');
INSERT INTO products (id, name, kind, medium, size) VALUES
  ('print-a4', 'A4 print', 'print', 'Photo Rag', 'A4'),
  ('print-a3', 'A3 print', 'print', 'Photo Rag', 'A3'),
  ('print-a5', 'A5 print', 'print', 'Photo Rag', 'A5'),
  ('digital', 'Digital download', 'digital', '', '');
UPDATE products SET print_width_mm = 297, print_height_mm = 210
 WHERE id = 'print-a4';
UPDATE products SET print_width_mm = 420, print_height_mm = 297
 WHERE id = 'print-a3';
INSERT INTO product_prices VALUES
  ('print-a4', 'GBP', 2800), ('print-a3', 'GBP', 4500),
  ('print-a5', 'GBP', 1800),
  ('digital', 'GBP', 1500);
INSERT INTO lab_products (product_id, lab, sku, attributes, priority)
VALUES ('print-a4', 'prodigi', 'GLOBAL-HPR-A4', '{}', 1),
       ('print-a3', 'prodigi', 'GLOBAL-HPR-A3', '{}', 1);
INSERT INTO price_sheets (id, name) VALUES ('wed-sheet', 'Wedding');
INSERT INTO price_sheet_items (sheet_id, product_id, position) VALUES
  ('wed-sheet', 'print-a4', 1), ('wed-sheet', 'print-a3', 2),
  ('wed-sheet', 'digital', 3);
INSERT INTO price_sheet_prices VALUES ('wed-sheet', 'print-a4', 'GBP', 2500);
SQL
}

sub admin {
    my ($t, $method, $path, $body) = @_;
    return $t->http($method, "/admin/api/galleries/$path", {
        headers => { Authorization => 'Bearer admin-token-1',
                     'Content-Type' => 'application/json' },
        defined $body ? (content => encode_json($body)) : () });
}

# a gallery of real JPEGs (a gradient of the given size each, a small
# proof), with a price sheet and a selection limit; returns
# { slug, photos => { name => { id, path, bytes } } }
sub gallery {
    my ($t, $slug, %o) = @_;
    my $dir = $t->dir;
    my $r = admin($t, POST => '', { slug => $slug, title => $o{title}
        // "Gallery $slug", client_email => 'client@example.com',
        password => $o{password} // 'open sesame' });
    die "gallery: $r->{status} $r->{content}" unless $r->{status} == 200;
    my (@photos, %by);
    my $n = 0;
    for my $p (@{$o{photos}}) {
        my ($name, $w, $h) = @$p;
        $n++;
        mkdir "$dir/files/$slug";
        mkdir "$dir/files/$slug/proofs";
        my $file = "$dir/files/$slug/$name";
        system('convert', '-size', "${w}x$h",
               "gradient:#f6b26b-#1c2841", '-quality', '80', $file) == 0
            or die "convert $file failed";
        system('convert', $file, '-resize', '600x600', '-quality', '70',
               "$dir/files/$slug/proofs/$name") == 0
            or die "convert proof of $file failed";
        my $data = $t->read_file($file);
        push @photos, { original => "$slug/$name", name => $name,
            bytes => length $data, crc32 => crc32($data),
            sha256 => sha256_hex($data), proof => "$slug/proofs/$name",
            position => $n, width => $w, height => $h };
        $by{$name} = { path => "$slug/$name", bytes => length $data,
                       sha256 => sha256_hex($data) };
    }
    $r = admin($t, POST => "$slug/photos", { photos => \@photos });
    die "photos: $r->{status} $r->{content}" unless $r->{status} == 200;
    for my $row ($t->sql("SELECT p.id, p.name FROM gallery_photos p"
        . " JOIN galleries g ON g.id = p.gallery_id WHERE g.slug = :'p1'",
        $slug)) {
        $by{$row->[1]}{id} = $row->[0];
    }
    # the sale and selection settings, as the admin API's upsert sets them
    $t->sql("UPDATE galleries SET price_sheet_id = nullif(:'p2', ''),"
        . " currency = 'GBP', selection_limit = nullif(:'p3', '')::int,"
        . " extra_photo_amount = nullif(:'p4', '')::bigint,"
        . " visitor_download_limit = nullif(:'p5', '')::int"
        . " WHERE slug = :'p1'", $slug, $o{sheet} // '',
        $o{selection_limit} // '', $o{extra_photo_amount} // '',
        $o{visitor_download_limit} // '');
    return { slug => $slug, photos => \%by };
}

# the Python script with the arguments; its JSON answer, or {error}
sub run {
    my ($t, $b, $python, @args) = @_;
    my $head = <<'PY';
import json, sys, time
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.support.ui import Select, WebDriverWait

chromium, driver = sys.argv[1:3]
args = sys.argv[3:]
out = {}
opts = webdriver.ChromeOptions()
opts.binary_location = chromium
for a in ('--headless=new', '--no-sandbox', '--disable-dev-shm-usage',
          '--disable-gpu', '--lang=en-GB', '--window-size=1280,1600'):
    opts.add_argument(a)
b = webdriver.Chrome(service=Service(driver), options=opts)
wait = WebDriverWait(b, 30)
def el(id):
    return b.find_element(By.ID, id)
def text(id):
    return el(id).text
def shown(id):
    return el(id).is_displayed()
def css(sel, root=None):
    return (root or b).find_elements(By.CSS_SELECTOR, sel)
def labelled(label):
    return b.find_element(By.CSS_SELECTOR, '[aria-label="%s"]' % label)
def settled(_):
    # a quote answered and none pending
    t = text('cart-total')
    return t not in ('', '\u2013', 'Pricing\u2026') or shown('quote-error')
def unlock(base, slug, password):
    b.get(base + '/g/' + slug)
    wait.until(lambda d: shown('lock'))
    el('pw').send_keys(password)
    el('pw').send_keys(Keys.ENTER)
    wait.until(lambda d: css('#grid .g-cell'))
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
    except Exception:
        pass
finally:
    b.quit()
print(json.dumps(out))
PY
    my $py = $head . $python . $tail;
    utf8::encode($py) if utf8::is_utf8($py);
    my $script = $t->write_file('browser.py', $py);
    my $dir = $t->dir;
    # chromedriver's and selenium's chatter goes to selenium.log
    open my $err, '>&', \*STDERR or die "dup: $!";
    open STDERR, '>', "$dir/selenium.log" or die "selenium.log: $!";
    open my $ps, '-|', $b->{py}, $script, $b->{chromium}, $b->{driver}, @args
        or die "python: $!";
    my $json = do { local $/; <$ps> } // '';
    close $ps;
    open STDERR, '>&', $err or die "dup: $!";
    my $out = eval { decode_json($json) } // { error => "no JSON: $json" };
    return $out;
}

1;
