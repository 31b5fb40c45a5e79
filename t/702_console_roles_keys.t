#!/usr/bin/perl
# Roles, API keys and the audit log: staff refused a refund and the owner's
# pages but allowed a note; API keys shown once, stored hashed, scoped
# (a read key refused a POST), revocable, last use recorded; every change
# audited with who and from where, as JSON and CSV; bad input on every
# owner route is 400 and writes nothing.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use JSON::PP;
use Darkroom::Test;
use Darkroom::Stripe qw(checkout_order);
use Darkroom::Console qw(console_start account login api PASSWORD);

my $t = Darkroom::Test->new;
console_start($t);
account($t, 'owner@example.com', 'owner');

sub session {
    my $r = login($t, @_);
    die "login: $r->{status} $r->{content}" unless $r->{status} == 200;
    return { sid => $r->{sid}, csrf => $r->{csrf} };
}
my $o = session('owner@example.com');

# --- accounts (owner) -------------------------------------------------------
my $r = api($t, $o, POST => 'accounts', { email => 'staff@example.com',
    name => 'Sam', role => 'staff', password => 'staff password 1' });
is($r->{status}, 200, 'owner creates a staff account');
my $staff_id = $r->{json}{account}{id};
ok(!exists $r->{json}{account}{password_hash}, 'no hash in the answer');
like($t->sql_value("SELECT password_hash FROM console_accounts WHERE id = :'p1'", $staff_id),
    qr/^scrypt\$14\$/, 'the password kept as scrypt');
my $n = $t->sql_value("SELECT count(*) FROM console_accounts");
for my $bad ([{ email => 'x@example.com', role => 'staff', password => 'short' }, 'bad_password'],
             [{ email => 'x@example.com', role => 'staff' }, 'bad_password'],
             [{ email => 'not-an-email', role => 'staff', password => 'long enough pw' }, 'bad_email'],
             [{ email => 'x@example.com', role => 'king', password => 'long enough pw' }, 'bad_role'],
             [{ email => 'x@example.com', role => 'staff', name => [], password => 'long enough pw' }, 'bad_name'],
             ['not json', 'bad_json'])
{
    $r = api($t, $o, POST => 'accounts', $bad->[0]);
    is($r->{status}, 400, "account: $bad->[1]: 400");
    is($r->{json}{error}{code}, $bad->[1], $bad->[1]);
}
is(api($t, $o, POST => 'accounts', { email => 'STAFF@example.com', role => 'staff',
    password => 'long enough pw' })->{status}, 409, 'an email taken: 409');
is($t->sql_value("SELECT count(*) FROM console_accounts"), $n, 'nothing written');
is(api($t, $o, PUT => "accounts/$staff_id", { colour => 'red' })->{status}, 400, 'PUT unknown field: 400');
is(api($t, $o, PUT => "accounts/$staff_id", { disabled => 'yes' })->{status}, 400, 'PUT bad disabled: 400');
is(api($t, $o, PUT => "accounts/99999", { name => 'X' })->{status}, 404, 'PUT unknown account: 404');
$r = api($t, $o, PUT => "accounts/$staff_id", { name => 'Sam Staff' });
is($r->{status}, 200, 'PUT');
is($r->{json}{account}{name}, 'Sam Staff', 'renamed');
$r = api($t, $o, GET => 'accounts');
is(scalar @{ $r->{json}{accounts} }, 2, 'GET accounts');

# --- staff ----------------------------------------------------------------------
my $s = session('staff@example.com', 'staff password 1');
my $order = checkout_order($t, 1);
$r = api($t, $s, POST => "/admin/api/orders/$order->{ref}/refund", {});
is($r->{status}, 403, 'staff: refund refused');
is($r->{json}{error}{code}, 'forbidden', 'forbidden');
is($t->sql_value("SELECT count(*) FROM console_audit WHERE path LIKE '%/refund' AND status = 200"),
    0, 'no refund audited as done');
$r = api($t, $s, POST => "/admin/api/orders/$order->{ref}/resolve",
    { to => 'cancelled', refund => JSON::PP::true });
is($r->{status}, 403, 'staff: a resolve that refunds refused');
$r = api($t, $s, POST => "/admin/api/orders/$order->{ref}/note", { note => 'Called the customer.' });
is($r->{status}, 200, 'staff: a note') or diag $r->{content};
is($t->sql_value("SELECT detail->>'actor' FROM order_events WHERE order_id = :'p1'"
    . " AND detail ? 'note' ORDER BY id DESC LIMIT 1", $order->{id}),
    'staff@example.com', 'the order\'s history names the account');
is(api($t, $s, GET => '/admin/api/orders')->{status}, 200, 'staff: orders');
is(api($t, $s, GET => 'dashboard')->{status}, 200, 'staff: dashboard');
for my $p (['GET', 'accounts'], ['GET', 'keys'], ['GET', 'audit'], ['GET', 'audit.csv'],
           ['POST', 'keys'], ['PUT', "accounts/$staff_id"])
{
    $r = api($t, $s, $p->[0], $p->[1], { name => 'x', scopes => ['read'], role => 'owner' });
    is($r->{status}, 403, "staff: $p->[0] $p->[1] refused");
}
is($t->sql_value("SELECT role FROM console_accounts WHERE id = :'p1'", $staff_id),
    'staff', 'still staff');

# --- API keys --------------------------------------------------------------------
$r = api($t, $o, POST => 'keys', { name => 'reader', scopes => ['read'] });
is($r->{status}, 201, 'a key');
my $read = $r->{json}{secret};
like($read, qr/^drk_\d+_[A-Za-z0-9_-]{43}$/, 'its secret, shown once');
my $read_id = $r->{json}{key}{id};
is(scalar(grep { $_->[0] =~ /\Q$read\E/ || $_->[0] eq $read }
    $t->sql("SELECT secret_hash FROM console_api_keys")), 0, 'the secret is not stored');
ok(!exists api($t, $o, GET => 'keys')->{json}{keys}[0]{secret}, 'nor listed');
my $writer = api($t, $o, POST => 'keys', { name => 'writer', scopes => ['read', 'write'] })->{json}{secret};
for my $bad ({ name => '', scopes => ['read'] }, { name => 'x', scopes => [] },
             { name => 'x', scopes => ['admin'] }, { name => 'x' }, { scopes => ['read'] })
{
    is(api($t, $o, POST => 'keys', $bad)->{status}, 400, 'bad key: ' . encode_json($bad));
}
is($t->sql_value("SELECT count(*) FROM console_api_keys"), 2, 'no bad key written');

ok(!defined $t->sql_value("SELECT last_used_at FROM console_api_keys WHERE id = :'p1'", $read_id),
    'never used');
is(api($t, { bearer => $read }, GET => '/admin/api/products')->{status}, 200, 'read key reads');
ok(defined $t->sql_value("SELECT last_used_at FROM console_api_keys WHERE id = :'p1'", $read_id),
    'last use recorded');
my $before = $t->sql_value("SELECT count(*) FROM products");
$r = api($t, { bearer => $read }, POST => '/admin/api/products',
    { id => 'k1', name => 'K', kind => 'print' });
is($r->{status}, 403, 'read key: POST refused');
is($t->sql_value("SELECT count(*) FROM products"), $before, 'nothing written');
is(api($t, { bearer => $writer }, POST => "/admin/api/orders/$order->{ref}/refund", {})->{status},
    403, 'write key: no refund');
is(api($t, { bearer => $writer }, POST => "/admin/api/orders/$order->{ref}/note", { note => 'by key' })->{status},
    200, 'write key: a note');
is(api($t, { bearer => $writer }, GET => 'accounts')->{status}, 403, 'a key: no owner pages');
is(api($t, { bearer => $read . 'x' }, GET => '/admin/api/products')->{status}, 401, 'wrong secret: 401');
is(api($t, { bearer => 'drk_1_' }, GET => '/admin/api/products')->{status}, 401, 'no secret: 401');
is(api($t, $o, DELETE => "keys/$read_id")->{status}, 200, 'revoke');
is(api($t, { bearer => $read }, GET => '/admin/api/products')->{status}, 401, 'revoked key: 401');
is(api($t, $o, DELETE => "keys/99999")->{status}, 404, 'revoke unknown: 404');

# --- audit -----------------------------------------------------------------------------
my @rows = $t->sql("SELECT actor, method, path, ip, status FROM console_audit"
    . " WHERE path LIKE '%/note' ORDER BY id");
is(scalar @rows, 2, 'the notes audited');
is_deeply($rows[0], ['staff@example.com', 'POST', "/admin/api/orders/$order->{ref}/note", '127.0.0.1', 200],
    'who, what, from where');
is($rows[1][0], 'key:writer', 'a key by its name');
ok($t->sql_value("SELECT count(*) FROM console_audit WHERE path LIKE '%/keys%' AND actor = 'owner\@example.com'") >= 3,
    'key changes audited');
ok($t->sql_value("SELECT count(*) FROM console_audit WHERE path LIKE '%/accounts%' AND method IN ('POST','PUT')") >= 2,
    'account changes audited');
is($t->sql_value("SELECT count(*) FROM console_audit WHERE method = 'GET'"), 0, 'reads are not');
$r = api($t, $o, GET => "audit?limit=5");
is($r->{status}, 200, 'GET audit');
is(scalar @{ $r->{json}{audit} }, 5, 'limit');
$r = api($t, $o, GET => "audit?account=$staff_id");
ok((!grep { ($_->{account} // 0) != $staff_id } @{ $r->{json}{audit} }), 'by account');
for my $q ('limit=0', 'limit=x', 'account=abc', 'since=notadate') {
    is(api($t, $o, GET => "audit?$q")->{status}, 400, "audit?$q: 400");
}
$r = api($t, $o, GET => 'audit.csv');
is($r->{status}, 200, 'audit.csv');
like($r->{headers}{'content-type'}, qr{^text/csv}, 'as CSV');
like($r->{content}, qr/^id,at,account,key,actor,method,path,ip,status,detail\r\n/, 'its header');
like($r->{content}, qr/^\d+,"[^"]+",$staff_id,,"staff\@example.com","POST","\/admin\/api\/orders\/[^"]+\/note","127.0.0.1",200,\r$/m,
    'its rows: a session\'s has an empty key cell (and no detail)');
ok((!grep { my @c = split /,/, $_, -1; @c != 10 } grep { !/^id,/ }
    split /\r\n/, $r->{content}), 'ten cells in every row');

# the bootstrap token: audited as "token"
api($t, { bearer => 'admin-token-1' }, POST => "/admin/api/orders/$order->{ref}/note", { note => 'boot' });
is($t->sql_value("SELECT actor FROM console_audit ORDER BY id DESC LIMIT 1"), 'token',
    'the bootstrap token audited');

# --- disable: the staff's session ends at once ----------------------------------------
is(api($t, $o, PUT => "accounts/$staff_id", { disabled => JSON::PP::true })->{status}, 200, 'disable');
is(api($t, $s, GET => 'session')->{status}, 401, 'its session ended');
is(login($t, 'staff@example.com', 'staff password 1')->{status}, 401, 'it cannot sign in');
my $oid = $t->sql_value("SELECT id FROM console_accounts WHERE role = 'owner'");
is(api($t, $o, PUT => "accounts/$oid", { role => 'staff' })->{status}, 409, 'the last owner stays');

$t->stop;
ok($t->check_sanitizer, 'no sanitizer report');
done_testing;
