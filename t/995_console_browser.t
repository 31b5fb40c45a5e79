#!/usr/bin/perl
# The console in a real browser (headless chromium, python3-selenium),
# signed in as the owner: the login form and its message for a wrong
# password, the dashboard's numbers (the API's, in money), an order found
# by its reference and by email, refunded in part from its page (Stripe
# asked for that amount), a note added, an order in review approved, a
# dead job retried, each action in the audit log under the owner's
# account, and signing out (the session ends on the server).
# Skips, saying why, where chromium, chromedriver, selenium or the
# console API is missing.

use strict;
use warnings;
use utf8;
use lib 't/lib';
use Test::More;
use JSON::PP;
use Darkroom::Test qw(wait_for);
use Darkroom::ConsoleBrowser qw(need_browser start login capi paid_order
    run);

binmode $_, ':encoding(UTF-8)' for Test::More->builder->output,
    Test::More->builder->failure_output;

my $b = need_browser();
my $t = Darkroom::Test->new;
my $c = start($t);
my ($owner, $stripe) = ($c->{owner}, $c->{stripe});

# an order paid, one in review, a dead job
my $paid = paid_order($t);
my $held = paid_order($t);
my $r = $t->http(POST => "/admin/api/orders/$held->{ref}/review", {
    headers => { Authorization => 'Bearer admin-token-1',
                 'Content-Type' => 'application/json' },
    content => encode_json({ reason => 'Check the address' }) });
is($r->{status}, 200, 'an order sent to review') or diag $r->{content};
my $job = $t->sql_value("INSERT INTO jobs (kind, payload, dead, attempts,"
    . " last_error) VALUES ('console_test', '{}', true, 5,"
    . " 'the lab said no') RETURNING id");

# what the API says the dashboard is
my $s = login($t, $owner->{email}, $owner->{password});
is($s->{status}, 200, 'the owner signs in through the API');
my $dash = capi($t, $s, GET => 'console/api/dashboard');
is($dash->{status}, 200, 'the dashboard answers') or diag $dash->{content};
$dash = $dash->{json} // {};
is($dash->{attention}{review}, 1, 'one order in review');
ok(($dash->{attention}{dead_jobs} // 0) >= 1, 'a dead job');
my %today = %{ $dash->{revenue}{today} // {} };
ok($today{GBP}, 'revenue today in GBP') or diag explain $dash;
my $want_today = sprintf '£%s', commify(($today{GBP} // 0) / 100);
capi($t, $s, POST => 'console/api/logout');

sub commify {
    my $v = sprintf '%.2f', shift;
    1 while $v =~ s/^(\d+)(\d{3})/$1,$2/;
    return $v;
}

my $py = <<'PY';
paid, held, job, email, password = args
login(email, 'not the password')
wait.until(lambda d: 'error' in (el('login-status').get_attribute('class')
                                  or ''))
out['bad_login'] = text('login-status')
out['bad_login_role'] = el('login-status').get_attribute('role')
login(email, password)
wait.until(lambda d: signed_in())
page('dashboard')
out['title'] = title()
out['today'] = css('#revenue-today .money')[0].text
out['review'] = css('#attention [data-kind=review] .big')[0].text
out['review_link'] = css('#attention [data-kind=review] a')[0] \
    .get_attribute('href')
out['dead'] = css('#attention [data-kind=dead_jobs] .big')[0].text
out['nav'] = [a.text for a in css('#nav a')]
out['cookie'] = (b.get_cookie('darkroom_admin') or {}).get('value')

# search by email, then by reference
el('nav').find_element(By.LINK_TEXT, 'Orders').click()
page('orders')
el('orders-q').send_keys('ada@example.com')
el('orders-go').click()
wait.until(lambda d: 'q=' in d.current_url)
page('orders')
out['by_email'] = [a.text for a in css('#orders-results a.order-link')]
el('orders-q').clear()
el('orders-q').send_keys(paid.lower())
el('orders-q').send_keys(Keys.ENTER)
wait.until(lambda d: '#order/' in d.current_url)
page('order')
out['order_title'] = title()
out['status'] = text('order-status')

# a partial refund: a bad amount first
el('refund-amount').send_keys('lots')
el('refund-submit').click()
out['bad_amount'] = text('refund-status')
el('refund-amount').clear()
el('refund-amount').send_keys('10.00')
el('refund-submit').click()
wait.until(lambda d: notice())
out['refunded'] = notice()

# a note: none written first, then one
el('note-submit').click()
out['empty_note'] = text('note-status')
el('note-text').send_keys('Framed by hand.')
el('note-submit').click()
wait.until(lambda d: notice() == 'Note added.')
page('order')
out['timeline'] = text('order-events')

# the order in review: approved
go('#order/' + held)
page('order')
out['review_title'] = css('#review h3')[0].text
el('review-approve').click()
wait.until(lambda d: notice())
out['approved'] = notice()
page('order')
out['after_review'] = text('order-status')

# the dead job: retried
go('#jobs')
page('jobs')
retry = css('button.retry[data-job="%s"]' % job)[0]
row = retry.find_element(By.XPATH, './ancestor::tr')
out['last_error'] = row.find_element(By.CSS_SELECTOR, '.last-error').text
retry.click()
wait.until(lambda d: notice())
out['retried'] = notice()

# sign out
el('logout').click()
wait.until(lambda d: present('login-email'))
out['signed_out'] = text('login-status')
out['nav_after'] = [a.text for a in css('#nav a')]
PY

my $out = run($t, $b, '995', $py, $paid->{ref}, $held->{ref}, $job,
              $owner->{email}, $owner->{password});
ok(!$out->{error}, 'the browser went through the console')
    or diag explain $out, $t->read_file('selenium.log');
is_deeply($out->{console} // [], [], 'no error in the browser console');

is($out->{bad_login}, 'Wrong email or password.',
   'a wrong password: the message');
is($out->{bad_login_role}, 'alert', 'announced');
is($out->{title}, 'Dashboard', 'signed in: the dashboard');
is($out->{today}, $want_today, "today's revenue, the API's");
is($out->{review}, '1', 'one order in review');
like($out->{review_link} // '', qr/#orders\?status=needs_review$/,
     'which links to the list');
is($out->{dead}, $dash->{attention}{dead_jobs}, 'the dead jobs');
ok((grep { $_ eq 'Orders' } @{$out->{nav} // []}), 'the menu has Orders');
ok($out->{cookie}, 'a session cookie');

is_deeply([sort @{$out->{by_email} // []}],
          [sort $paid->{ref}, $held->{ref}], 'found by email');
is($out->{order_title}, "Order $paid->{ref}", 'found by reference');
is($out->{status}, 'paid', 'paid');
like($out->{bad_amount} // '', qr/Enter an amount/, 'a bad amount: refused');
like($out->{refunded} // '', qr/Refund of £10\.00/, 'refund asked');
my @refunds = grep { $_->{path} eq '/v1/refunds' } $stripe->requests;
is(scalar @refunds, 1, 'Stripe was asked once');
like($refunds[0]{body} // '', qr/(?:^|&)amount=1000(?:&|$)/,
     'for £10.00');

like($out->{review_title} // '', qr/Check the address/, 'the review reason');
like($out->{approved} // '', qr/approved/, 'review approved');
isnt($t->sql_value("SELECT status FROM orders WHERE ref = :'p1'",
                   $held->{ref}), 'needs_review', 'out of review');
isnt($out->{after_review}, 'needs review', 'the page says so');

is($out->{last_error}, 'the lab said no', "the dead job's last error");
like($out->{retried} // '', qr/will run again/, 'retried');
is($t->sql_value("SELECT dead FROM jobs WHERE id = :'p1'", $job), 'f',
   'the job is alive');

is($out->{empty_note}, 'Write the note first.', 'an empty note: refused');
like($out->{timeline} // '', qr/Framed by hand\./, 'the note in the timeline');

# every action in the audit log, with the owner's account
my @audit = map { $_->[0] } $t->sql("SELECT a.method || ' ' || a.path"
    . " FROM console_audit a JOIN console_accounts c ON c.id = a.account_id"
    . " WHERE c.email = :'p1' AND a.method = 'POST' ORDER BY a.id",
    $owner->{email});
for my $want ("/admin/api/orders/$paid->{ref}/refund",
              "/admin/api/orders/$paid->{ref}/note",
              "/admin/api/orders/$held->{ref}/resolve",
              "/admin/api/jobs/$job/retry") {
    ok((grep { /^POST \Q$want\E/ } @audit), "audit: POST $want")
        or diag explain \@audit;
}

is($out->{signed_out}, 'You are signed out.', 'signed out');
is_deeply($out->{nav_after}, [], 'no menu');
my $gone = capi($t, { cookie => $out->{cookie} }, GET => 'console/api/session');
is($gone->{status}, 401, 'the old session is over on the server');

done_testing;
