#!/usr/bin/perl
# The console's refusals, and the console on a phone.  A staff account,
# signed in with the keyboard alone (visible focus), sees no refund on
# an order's page and no owner pages in its menu, and the API refuses it
# a refund (403, Stripe never asked); a POST from the signed-in page
# without the CSRF token, or with a wrong one, is refused (403) and
# writes nothing; at 375 px wide no page scrolls sideways.
# Skips, saying why, where chromium, chromedriver, selenium or the
# console API is missing.

use strict;
use warnings;
use utf8;
use lib 't/lib';
use Test::More;
use JSON::PP;
use Darkroom::Test;
use Darkroom::ConsoleBrowser qw(need_browser start login capi paid_order
    run);

binmode $_, ':encoding(UTF-8)' for Test::More->builder->output,
    Test::More->builder->failure_output;

my $b = need_browser();
my $t = Darkroom::Test->new;
my $c = start($t);
my ($staff, $stripe) = ($c->{staff}, $c->{stripe});
my $order = paid_order($t);
sub notes {
    $t->sql_value("SELECT count(*) FROM order_events e JOIN orders o"
        . " ON o.id = e.order_id WHERE o.ref = :'p1'", $order->{ref});
}
my $events = notes();

# --- the API: staff may not refund; a POST needs the CSRF token ----------
my $s = login($t, $staff->{email}, $staff->{password});
is($s->{status}, 200, 'staff signs in');
is($s->{json}{account}{role}, 'staff', 'as staff');
my $r = capi($t, $s, POST => "api/orders/$order->{ref}/refund", {});
is($r->{status}, 403, 'staff refund: 403');
is($r->{json}{error}{code}, 'forbidden', 'forbidden');
ok($r->{json}{error}{message}, "with a message: $r->{json}{error}{message}");
$r = capi($t, $s, POST => "api/orders/$order->{ref}/note",
          { note => 'no token' }, csrf => 'none');
is($r->{status}, 403, 'a POST without the CSRF token: 403');
is($r->{json}{error}{code}, 'csrf_required', 'csrf_required');
$r = capi($t, $s, POST => "api/orders/$order->{ref}/note",
          { note => 'wrong token' }, csrf => 'wrong');
is($r->{status}, 403, 'a wrong CSRF token: 403');
is($r->{json}{error}{code}, 'csrf_mismatch', 'csrf_mismatch');
is(notes(), $events, 'nothing written');
$r = capi($t, $s, POST => "api/orders/$order->{ref}/note",
          { note => 'with the token' });
is($r->{status}, 200, 'with the token the note is written')
    or diag $r->{content};
$events = notes();
capi($t, $s, POST => 'console/api/logout');

my $py = <<'PY';
ref, email, password = args
# by keyboard: the email field has the focus; tab to the password
go('')
wait.until(lambda d: present('login-email'))
active = b.switch_to.active_element
out['focus_start'] = active.get_attribute('id')
active.send_keys(email)
active.send_keys(Keys.TAB)
active = b.switch_to.active_element
out['focus_next'] = active.get_attribute('id')
out['outline'] = b.execute_script(
    'var s = getComputedStyle(arguments[0]);'
    'return s.outlineStyle + " " + s.outlineWidth;', active)
active.send_keys(password)
active.send_keys(Keys.ENTER)
wait.until(lambda d: signed_in())
page('dashboard')
out['nav'] = [a.text for a in css('#nav a')]
out['me'] = css('#who .me')[0].text

go('#order/' + ref)
page('order')
out['order_title'] = title()
out['refund_form'] = present('refund')
out['note_form'] = present('note')

# the page's own cookie, no CSRF token: refused
path = '/admin/api/orders/%s/note' % ref
out['no_csrf'] = fetch('POST', path)
out['bad_csrf'] = fetch('POST', path, {'X-CSRF-Token': 'nope'})
out['get_ok'] = fetch('GET', '/admin/api/orders/' + ref)[0]

# an owner page, asked for by its address
go('#accounts')
wait.until(lambda d: present('page-title'))
out['accounts'] = b.find_element(By.ID, 'main').text

# a phone: 375 px wide, no page scrolls sideways
b.execute_cdp_cmd('Emulation.setDeviceMetricsOverride', {
    'width': 375, 'height': 800, 'deviceScaleFactor': 2, 'mobile': True})
out['wide'] = {}
for h, name in (('#dashboard', 'dashboard'), ('#orders', 'orders'),
                ('#order/' + ref, 'order'), ('#jobs', 'jobs'),
                ('#emails', 'emails')):
    go(h)
    page(name)
    time.sleep(0.2)
    out['wide'][name] = b.execute_script(
        'return [document.documentElement.scrollWidth, window.innerWidth]')
PY

my $out = run($t, $b, '996', $py, $order->{ref}, $staff->{email},
              $staff->{password});
ok(!$out->{error}, 'the browser went through the console')
    or diag explain $out, $t->read_file('selenium.log');

is($out->{focus_start}, 'login-email', 'the form starts at the email');
is($out->{focus_next}, 'login-password', 'tab: the password');
like($out->{outline} // '', qr/^solid [1-9]/, 'the focus is visible');
like($out->{me} // '', qr/staff/, 'signed in as staff');
ok(!(grep { /Accounts|Keys|API keys/ } @{$out->{nav} // []}),
   'no owner page in the menu') or diag explain $out->{nav};
is($out->{order_title}, "Order $order->{ref}", "the order's page");
ok(!$out->{refund_form}, 'no refund for staff');
ok($out->{note_form}, 'but a note');
is($out->{no_csrf}[0], 403, 'the page without the token: 403');
like($out->{no_csrf}[1] // '', qr/csrf_required/, 'csrf_required');
is($out->{bad_csrf}[0], 403, 'a wrong token: 403');
like($out->{bad_csrf}[1] // '', qr/csrf_mismatch/, 'csrf_mismatch');
is($out->{get_ok}, 200, 'a GET needs none');
SKIP: {
    skip 'no accounts page (www/admin/pages/accounts.js)', 1
        unless -f $t->top . '/www/admin/pages/accounts.js';
    like($out->{accounts} // '', qr/only the owner|not allowed|forbidden/i,
         'an owner page: refused, saying why');
}
is(notes(), $events, 'nothing written by the refused POSTs');
is(scalar(grep { $_->{path} eq '/v1/refunds' } $stripe->requests), 0,
   'Stripe never asked for a refund');
for my $p (sort keys %{$out->{wide} // {}}) {
    my ($scroll, $inner) = @{$out->{wide}{$p}};
    is($inner, 375, "$p: 375 px wide");
    ok($scroll <= $inner, "$p: no sideways scroll ($scroll)");
}
is(scalar keys %{$out->{wide} // {}}, 5, 'five pages at 375 px');

done_testing;
