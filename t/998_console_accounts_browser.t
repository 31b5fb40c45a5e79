#!/usr/bin/perl
# The console's accounts, API keys and audit pages in a real browser
# (headless chromium driven by python3-selenium): the owner creates a staff
# account (a short password refused first, then its email taken again:
# nothing written), cannot demote the only owner (the server says why),
# disables and enables staff, creates an API key whose secret is shown
# once and works, revokes it (then refused),
# and sees these actions in the audit log; staff sees no Accounts or Keys
# pages and the console API refuses them (403).
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
my $api = sub { Darkroom::ConsolePages::api($t, @_) };

# 1. the staff account, and an API key
my $out = Darkroom::ConsolePages::run($t, $b, '998-owner', <<'PY', $base);
login(args[0], 'owner@example.com', 'owner-password-1')
out['nav'] = [a.text for a in css('#nav a')]
page(args[0], 'accounts', '#account-new')
fill('account-new', 'email', 'staff@example.com')
fill('account-new', 'name', 'Sam Staff')
fill('account-new', 'role', 'staff')
fill('account-new', 'password', 'short')
submit('account-new')
out['short'] = said('account-new', True)
fill('account-new', 'password', 'staff-password-1')
submit('account-new')
wait.until(lambda d: 'staff@example.com' in el('main').text
           and css('#account-new'))
out['accounts'] = el('main').text
fill('account-new', 'email', 'STAFF@example.com')
fill('account-new', 'name', 'Again')
fill('account-new', 'password', 'another-password')
submit('account-new')
out['taken'] = said('account-new', True)
def row(email):
    return [r for r in css('#main tbody tr') if email in r.text][0]
# the only owner cannot become staff: the server says why
Select(css('select', row('owner@example.com'))[0]).select_by_value('staff')
css('button[data-action="role"]', row('owner@example.com'))[0].click()
wait.until(lambda d: css('#main .form-status.error'))
out['last_owner'] = css('#main .form-status.error')[0].text
css('button[data-action="disable"]', row('staff@example.com'))[0].click()
wait.until(lambda d: 'disabled' in row('staff@example.com').text)
out['disabled'] = row('staff@example.com').text
css('button[data-action="disable"]', row('staff@example.com'))[0].click()
wait.until(lambda d: 'active' in row('staff@example.com').text)
page(args[0], 'keys', '#key-new')
submit('key-new')
out['no_name'] = said('key-new', True)
fill('key-new', 'name', 'Lightroom sync')
one('#key-new input[value="write"]').click()
submit('key-new')
wait.until(lambda d: css('#key-secret'))
out['secret'] = el('key-secret').text
PY
is($out->{error}, undef, 'the owner made an account and a key');
ok((grep { $_ eq 'Accounts' } @{$out->{nav} // []}), 'Accounts in the menu');
ok((grep { $_ eq 'API keys' } @{$out->{nav} // []}), 'API keys in the menu');
like($out->{short} // '', qr/10 characters/, "a short password: $out->{short}");
like($out->{no_name} // '', qr/name/, "a key without a name: $out->{no_name}");
like($out->{taken} // '', qr/already/, "an email taken: $out->{taken}");
like($out->{last_owner} // '', qr/owner/,
     "the last owner stays: $out->{last_owner}");
like($out->{disabled} // '', qr/disabled/, 'staff disabled, then enabled');
my $accounts = $api->(GET => 'accounts')->{json}{accounts} // [];
is(scalar @$accounts, 2, 'one account made, nothing for the refused form');
my ($staff) = grep { $_->{email} eq 'staff@example.com' } @$accounts;
is($staff && $staff->{role}, 'staff', 'the staff account');
ok($staff && !$staff->{disabled}, 'enabled again');
my ($owner) = grep { $_->{email} eq 'owner@example.com' } @$accounts;
is($owner && $owner->{role}, 'owner', 'the owner is still owner');
my $secret = $out->{secret} // '';
like($secret, qr/^drk_\S+_\S+$/, 'the secret shown');
my $keys = $api->(GET => 'keys')->{json}{keys} // [];
is(scalar @$keys, 1, 'one key');
is_deeply([sort @{$keys->[0]{scopes} // []}], [qw(read write)],
          'with the scopes chosen');
unlike(encode_json($keys), qr/\Q$secret\E/, 'the list does not show it');
my $r = $api->(GET => '/admin/api/galleries/', undef, "Bearer $secret");
is($r->{status}, 200, 'the key works');

# 2. the secret is not shown again; the key revoked; the audit log
$out = Darkroom::ConsolePages::run($t, $b, '998-revoke', <<'PY', $base);
login(args[0], 'owner@example.com', 'owner-password-1')
page(args[0], 'keys', '#key-new')
out['again'] = len(css('#key-secret'))
one('button[data-action="revoke"]').click()
wait.until(lambda d: 'revoked' in el('main').text and css('#key-new'))
page(args[0], 'audit', '#audit-filter')
wait.until(lambda d: css('#audit-rows table'))
out['audit'] = el('audit-rows').text
out['csv'] = el('audit-csv').get_attribute('href')
fill('audit-filter', 'limit', '5000')
submit('audit-filter')
out['bad_limit'] = said('audit-filter', True)
b.execute_cdp_cmd('Emulation.setDeviceMetricsOverride', {
    'width': 375, 'height': 800, 'deviceScaleFactor': 2, 'mobile': True})
out['wide'] = {}
for h, sel in (('accounts', '#account-new'), ('keys', '#key-new'),
               ('audit', '#audit-rows table')):
    page(args[0], h, sel)
    time.sleep(0.2)
    out['wide'][h] = b.execute_script(
        'return [document.documentElement.scrollWidth, window.innerWidth]')
PY
is($out->{error}, undef, 'the owner revoked the key, read the audit log');
is($out->{again}, 0, 'the secret is shown only once');
$r = $api->(GET => '/admin/api/galleries/', undef, "Bearer $secret");
is($r->{status}, 401, 'the revoked key is refused');
like($out->{audit} // '', qr{/admin/console/api/accounts}, 'audit: account');
like($out->{audit} // '', qr{/admin/console/api/keys}, 'audit: the key');
like($out->{audit} // '', qr{DELETE}, 'audit: the revocation');
like($out->{audit} // '', qr{owner\@example\.com}, 'audit: by the owner');
like($out->{csv} // '', qr{/admin/console/api/audit\.csv}, 'the CSV link');
like($out->{bad_limit} // '', qr/1000/, "a bad count: $out->{bad_limit}");
for my $p (sort keys %{$out->{wide} // {}}) {
    my ($scroll, $inner) = @{$out->{wide}{$p}};
    is($inner, 375, "$p: 375 px wide");
    ok($scroll <= $inner, "$p: no sideways scroll ($scroll)");
}
is(scalar keys %{$out->{wide} // {}}, 3, 'three pages at 375 px');
$r = $api->(GET => 'audit.csv');
is($r->{status}, 200, 'the audit CSV');
like($r->{content} // '', qr{^id,at,account,key,actor,method,path}, 'its header');
like($r->{content} // '', qr{DELETE.*/admin/console/api/keys/}, 'the revocation in it');

# 3. staff sees neither page, and the API refuses them
$out = Darkroom::ConsolePages::run($t, $b, '998-staff', <<'PY', $base);
login(args[0], 'staff@example.com', 'staff-password-1')
out['nav'] = [a.text for a in css('#nav a')]
b.get(args[0] + '/admin/#accounts')
wait.until(lambda d: 'Only the owner' in el('main').text)
out['accounts'] = el('main').text
PY
is($out->{error}, undef, 'staff signed in');
ok((grep { $_ eq 'Galleries' } @{$out->{nav} // []}), 'staff: Galleries');
ok(!(grep { /Accounts|API keys|Audit/ } @{$out->{nav} // []}),
   'staff: no Accounts, Keys or Audit in the menu');
like($out->{accounts} // '', qr/Only the owner/, 'staff: #accounts refused');

my $s = Darkroom::ConsolePages::login($t, 'staff@example.com',
                                      'staff-password-1');
is($s->{status}, 200, 'staff signs in with the API');
for my $path (qw(accounts keys)) {
    $r = $t->http(GET => "/admin/console/api/$path",
                  { headers => { Cookie => $s->{cookie} } });
    is($r->{status}, 403, "staff: GET $path is 403");
}
$r = $t->http(POST => '/admin/console/api/keys', {
    headers => { Cookie => $s->{cookie}, 'X-CSRF-Token' => $s->{csrf},
                 'Content-Type' => 'application/json' },
    content => encode_json({ name => 'mine', scopes => ['read'] }) });
is($r->{status}, 403, 'staff: POST keys is 403');
is(scalar @{$api->(GET => 'keys')->{json}{keys} // []}, 1,
   'and no key was made');

done_testing;
