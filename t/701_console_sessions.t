#!/usr/bin/perl
# The console's sessions: login answers the same for an unknown address and
# a wrong password; the cookie's flags; GET session; logout and logout-all
# take effect at once; idle and absolute timeouts (the session made old in
# SQL); a POST without the CSRF token is refused and changes nothing; the
# bootstrap token still works; bad input is 400 and writes nothing.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Darkroom::Test;
use Darkroom::Console qw(console_start account login api PASSWORD);

my $t = Darkroom::Test->new;
console_start($t, idle => '10m', max => '1h');
my $owner = account($t, 'owner@example.com', 'owner');

# --- login ---------------------------------------------------------------
my $r = login($t, 'owner@example.com');
is($r->{status}, 200, 'login');
is($r->{json}{account}{email}, 'owner@example.com', 'the account');
is($r->{json}{account}{role}, 'owner', 'its role');
ok(length($r->{csrf}) >= 40, 'a csrf token');
like($r->{cookie}, qr/^darkroom_admin=[A-Za-z0-9_-]{43}; Path=\/admin\/; HttpOnly; SameSite=Strict$/,
    'cookie: HttpOnly, SameSite=Strict, Path=/admin/, no Secure without TLS');
is($t->sql_value("SELECT count(*) FROM console_sessions WHERE token_hash = encode(sha256(convert_to(:'p1', 'UTF8')), 'hex')",
    $r->{sid}), 1, 'the database keeps the SHA-256 of the id');
is($t->sql_value("SELECT count(*) FROM console_sessions WHERE token_hash = :'p1'", $r->{sid}),
    0, 'not the id');
my $s = { sid => $r->{sid}, csrf => $r->{csrf} };

my $w = login($t, 'owner@example.com', 'wrong password');
my $u = login($t, 'nobody@example.com', 'wrong password');
is($w->{status}, 401, 'wrong password: 401');
is($u->{status}, 401, 'unknown address: 401');
is($w->{content}, $u->{content}, 'the same answer for both');
is($w->{json}{error}{code}, 'bad_login', 'bad_login');
ok(!$w->{headers}{'set-cookie'}, 'no cookie');

# --- session ----------------------------------------------------------------
$r = api($t, $s, GET => 'session');
is($r->{status}, 200, 'GET session');
is($r->{json}{account}{id}, $owner, 'its account');
is($r->{json}{csrf}, $s->{csrf}, 'its csrf');
is(api($t, undef, GET => 'session')->{status}, 401, 'no cookie: 401');
is(api($t, { sid => 'x' x 43 }, GET => 'session')->{status}, 401, 'unknown session: 401');

# the session works on the other admin APIs
is(api($t, $s, GET => '/admin/api/products')->{status}, 200, 'shop admin with the session');
is(api($t, $s, GET => '/admin/lab/orders')->{status}, 200, 'lab admin with the session');

# --- CSRF ------------------------------------------------------------------
my $before = $t->sql_value("SELECT count(*) FROM products");
$r = api($t, { sid => $s->{sid} }, POST => '/admin/api/products',
    { id => 'new-print', name => 'New', kind => 'print', prices => { GBP => 100 } });
is($r->{status}, 403, 'POST without X-CSRF-Token: 403');
is($r->{json}{error}{code}, 'csrf_required', 'csrf_required');
$r = api($t, { sid => $s->{sid}, csrf => 'wrong' }, POST => '/admin/api/products',
    { id => 'new-print', name => 'New', kind => 'print', prices => { GBP => 100 } });
is($r->{status}, 403, 'wrong X-CSRF-Token: 403');
is($r->{json}{error}{code}, 'csrf_mismatch', 'csrf_mismatch');
is($t->sql_value("SELECT count(*) FROM products"), $before, 'nothing written');
is(api($t, { sid => $s->{sid} }, POST => 'logout')->{status}, 403,
    'logout without the token: 403');

# --- bootstrap token ---------------------------------------------------------
is(api($t, { bearer => 'admin-token-1' }, GET => '/admin/api/products')->{status},
    200, 'the bootstrap token still works');
is(api($t, { bearer => 'admin-token-1' }, GET => 'dashboard')->{status},
    200, 'on the console too');
is(api($t, { bearer => 'admin-token-9' }, GET => 'dashboard')->{status},
    401, 'a wrong token: 401');

# --- dashboard ------------------------------------------------------------------
$r = api($t, $s, GET => 'dashboard');
is($r->{status}, 200, 'dashboard');
ok(exists $r->{json}{attention}{dead_jobs}, 'attention counts');
ok(exists $r->{json}{revenue}{month}, 'revenue');

# --- logout, logout-all -------------------------------------------------------------
$r = api($t, $s, POST => 'logout');
is($r->{status}, 200, 'logout');
like($r->{headers}{'set-cookie'}, qr/^darkroom_admin=; .*Max-Age=0/, 'the cookie cleared');
is(api($t, $s, GET => 'session')->{status}, 401, 'the session ended at once');
is(api($t, $s, GET => '/admin/api/products')->{status}, 401, 'everywhere');

my $a = login($t, 'owner@example.com');
my $b = login($t, 'owner@example.com');
$a = { sid => $a->{sid}, csrf => $a->{csrf} };
$b = { sid => $b->{sid}, csrf => $b->{csrf} };
is(api($t, $b, GET => 'session')->{status}, 200, 'a second session');
is(api($t, $a, POST => 'logout-all')->{status}, 200, 'logout-all');
is(api($t, $a, GET => 'session')->{status}, 401, 'this one ended');
is(api($t, $b, GET => 'session')->{status}, 401, 'the other one too');

# --- timeouts (the session made old in SQL) ------------------------------------------
$a = login($t, 'owner@example.com');
$a = { sid => $a->{sid}, csrf => $a->{csrf} };
is(api($t, $a, GET => 'session')->{status}, 200, 'fresh');
$t->sql("UPDATE console_sessions SET last_seen_at = now() - interval '9 minutes' WHERE ended_at IS NULL");
is(api($t, $a, GET => 'session')->{status}, 200, 'used 9 minutes ago: alive (and touched)');
$t->sql("UPDATE console_sessions SET last_seen_at = now() - interval '11 minutes' WHERE ended_at IS NULL");
is(api($t, $a, GET => 'session')->{status}, 401, 'idle 11 minutes: expired');
$a = login($t, 'owner@example.com');
$a = { sid => $a->{sid}, csrf => $a->{csrf} };
$t->sql("UPDATE console_sessions SET created_at = now() - interval '61 minutes' WHERE ended_at IS NULL");
is(api($t, $a, GET => 'session')->{status}, 401, 'older than the maximum: expired');

# --- bad input --------------------------------------------------------------------------
my $n = $t->sql_value("SELECT count(*) FROM console_sessions");
for my $body ('', 'nonsense', '[]', '{"email":"owner@example.com"}',
              '{"password":"x"}', '{"email":1,"password":"correct horse battery"}')
{
    $r = $t->http(POST => '/admin/console/api/login', {
        headers => { 'Content-Type' => 'application/json' }, content => $body });
    is($r->{status}, 400, "login with '$body': 400");
    ok($r->{json}{error}{code}, 'a JSON error');
}
is($t->sql_value("SELECT count(*) FROM console_sessions"), $n, 'no session made');
is($t->http(GET => '/admin/console/api/login')->{status}, 401, 'GET login: not a route (401 first)');
is(api($t, { bearer => 'admin-token-1' }, GET => 'nothing')->{status}, 404, 'unknown route: 404');

$t->stop;
ok($t->check_sanitizer, 'no sanitizer report');
done_testing;
