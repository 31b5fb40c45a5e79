#!/usr/bin/perl
# The console's privacy page in a real browser (headless chromium driven
# by python3-selenium, issue 19): the retention periods refused out of
# range with nothing written, then saved; a customer's data exported (a
# summary and a JSON file to save) and erased only once "I mean it" is
# ticked: the order keeps its total and loses its email, the audit row
# names the address by its hash.  Skips, saying why, where chromium,
# chromedriver or selenium is missing.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Digest::SHA qw(sha256_hex);
use Darkroom::Test;
use Darkroom::ConsolePages;

my $b = Darkroom::ConsolePages::need_browser();
my $t = Darkroom::Test->new;
Darkroom::ConsolePages::start($t);
my $base = 'http://127.0.0.1:' . $t->port(0);
Darkroom::ConsolePages::owner($t, 'owner@example.com', 'owner-password-1');
$t->sql("INSERT INTO photos (id, title, image_path, print_path) VALUES"
    . " ('harbour', 'Harbour', '/images/h.jpg', 'h.tif');"
    . " INSERT INTO photo_products VALUES ('harbour', 'print-a4')");
my $order = $t->sql_value("SELECT order_ref FROM checkout_create("
    . "'[{\"photo\":\"harbour\",\"product\":\"print-a4\",\"quantity\":1}]',"
    . " 'ada\@example.com', 'GBP', 'GB', NULL, NULL,"
    . " encode(sha256('privacy-token-0123456789abcdef'), 'hex'),"
    . " now() + interval '1 hour', now() + interval '1 day')");
ok($order, "an order of ada's ($order)");
my $total = $t->sql_value("SELECT total FROM orders WHERE ref = :'p1'", $order);

my $out = Darkroom::ConsolePages::run($t, $b, '979-privacy', <<'PY', $base);
login(args[0], 'owner@example.com', 'owner-password-1')
page(args[0], 'privacy', '#retention-form')
out['jobs_days'] = one('#retention-form [name="jobs_days"]').get_attribute('value')
fill('retention-form', 'jobs_days', '3')
submit('retention-form')
out['bad_retention'] = said('retention-form', True)
fill('retention-form', 'jobs_days', '45')
submit('retention-form')
wait.until(lambda d: 'Retention saved' in one('#retention-form .form-status').text)
fill('export-form', 'email', 'nope')
submit('export-form')
out['bad_export'] = said('export-form', True)
fill('export-form', 'email', 'ada@example.com')
submit('export-form')
out['summary'] = one('#export-summary').text
out['file'] = one('#export-file').get_attribute('download')
fill('erase-form', 'erase_email', 'ada@example.com')
submit('erase-form')
out['unticked'] = said('erase-form', True)
click('#erase-form [name="sure"]')
submit('erase-form')
out['erased'] = said('erase-form', False)
PY
is($out->{error}, undef, 'the privacy page') or diag explain $out;
is($out->{jobs_days}, '30', 'the retention form shows the settings');
like($out->{bad_retention} // '', qr/Done jobs: a whole number from 7/,
    'a period out of range refused by the page');
is($t->sql_value('SELECT jobs_days FROM retention_settings'), 45,
    'the good one saved');
like($out->{bad_export} // '', qr/email address/, 'a bad address refused');
like($out->{summary} // '', qr/^1 orders, 0 galleries/, 'the export summed up');
is($out->{file}, 'personal-data.json', 'and offered as a file');
like($out->{unticked} // '', qr/I mean it/, 'no erase before the box is ticked');
like($out->{erased} // '', qr/Erased: 1 orders/, 'erased once it is');
is($t->sql_value("SELECT email || ' ' || total FROM orders WHERE ref = :'p1'",
    $order), 'erased-o' . $t->sql_value("SELECT id FROM orders WHERE ref ="
    . " :'p1'", $order) . "\@invalid $total", 'the order anonymised, its total kept');
is($t->sql_value("SELECT detail->>'email_sha256' FROM console_audit WHERE"
    . " path = '/admin/api/personal-data/erase'"), sha256_hex('ada@example.com'),
    'the audit row names the address by its hash');

done_testing;
