#!/usr/bin/perl
# The console's SQL (sql/functions/console.sql) on its own: login attempts
# counted before the password is checked and locked out at the limit,
# sessions with idle and absolute timeouts and the CSRF token, API key
# scopes and revocation, roles, password resets single-use and expiring,
# the audit rows and the dashboard.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use JSON::PP;
use Darkroom::Test;

my $t = Darkroom::Test->new;
my $H = 'scrypt$14$8$1$c2FsdA$a2V5';
my $h1 = 'a' x 64;
my $h2 = 'b' x 64;

sub j { decode_json($t->sql_value(@_)) }
sub refused {
    my ($q, @p) = @_;
    my $file = $t->dir . '/q.sql';
    open my $fh, '>', $file or die;
    print $fh "$q\n";
    close $fh;
    my $i = 0;
    my $out = `psql -X -q -A -t -v ON_ERROR_STOP=1 -d '${\ $t->db}' @{[
        map { "-v p" . ++$i . "='$_'" } @p ]} -f $file 2>&1`;
    return $out =~ /ERROR:\s+(\w+)/ ? $1 : "ok: $out";
}

$t->sql("SELECT console_owner('Owner\@example.com', :'p1', false)", $H);
like(refused("SELECT console_owner('o2\@example.com', :'p1', false)", $H),
    qr/owner_exists/, 'a second owner is refused without reset');

# --- login: counted before the check, locked at the limit -------------------
my $b = j("SELECT console_login_begin('owner\@EXAMPLE.com')");
is($b->{wait}, 0, 'not locked');
is($b->{hash}, $H, 'the hash of the account, case-insensitive');
$b = j("SELECT console_login_begin('nobody\@example.com')");
is($b->{wait}, 0, 'unknown address: counted as well');
ok(!defined $b->{hash}, 'unknown address: no hash');
my $e = j("SELECT console_login_end('owner\@example.com', true, :'p1', 'csrf1', '127.0.0.1')", $h1);
is($e->{account}{role}, 'owner', 'right password: a session');
is($e->{csrf}, 'csrf1', 'its csrf');

for my $i (1 .. 5) {
    j("SELECT console_login_begin('x\@example.com')");
    j("SELECT console_login_end('x\@example.com', false, NULL, NULL, NULL)");
}
$b = j("SELECT console_login_begin('x\@example.com')");
ok($b->{wait} > 60, "after five failures: locked for $b->{wait}s");
is($t->sql_value("SELECT failures FROM console_login_failures WHERE email = 'x\@example.com'"),
    5, 'the count stays at the limit');

# attempts in flight count: the sixth begin before any end is refused
for my $i (1 .. 5) { j("SELECT console_login_begin('y\@example.com')") }
is(j("SELECT console_login_begin('y\@example.com')")->{wait}, 1,
    'a sixth attempt in flight is refused');

# --- sessions -------------------------------------------------------------
my $who = j("SELECT admin_authorize('session', NULL, :'p1', NULL, 'GET', 'read', 1800, 43200)", $h1);
is($who->{role}, 'owner', 'the session authorizes');
like(refused("SELECT admin_authorize('session', NULL, :'p1', NULL, 'POST', 'write', 1800, 43200)", $h1),
    qr/csrf_required/, 'POST without csrf');
like(refused("SELECT admin_authorize('session', NULL, :'p1', 'nope', 'POST', 'write', 1800, 43200)", $h1),
    qr/csrf_mismatch/, 'POST with a wrong csrf');
ok(j("SELECT admin_authorize('session', NULL, :'p1', 'csrf1', 'POST', 'refunds', 1800, 43200)", $h1),
    'owner: refunds with the csrf');
like(refused("SELECT admin_authorize('session', NULL, :'p1', NULL, 'GET', 'read', 1800, 43200)", $h2),
    qr/unauthorized/, 'unknown session');
$t->sql("UPDATE console_sessions SET last_seen_at = now() - interval '31 minutes'");
like(refused("SELECT admin_authorize('session', NULL, :'p1', NULL, 'GET', 'read', 1800, 43200)", $h1),
    qr/unauthorized/, 'idle timeout');
$t->sql("UPDATE console_sessions SET last_seen_at = now(), created_at = now() - interval '13 hours'");
like(refused("SELECT admin_authorize('session', NULL, :'p1', NULL, 'GET', 'read', 1800, 43200)", $h1),
    qr/unauthorized/, 'absolute timeout');

# --- staff --------------------------------------------------------------------
$t->sql("SELECT console_account_create('{\"email\":\"staff\@example.com\",\"role\":\"staff\",\"name\":\"S\"}', :'p1')", $H);
like(refused("SELECT console_account_create('{\"email\":\"STAFF\@example.com\",\"role\":\"staff\"}', :'p1')", $H),
    qr/email_taken/, 'email taken, case-insensitive');
like(refused("SELECT console_account_create('{\"email\":\"s2\@example.com\",\"role\":\"boss\"}', :'p1')", $H),
    qr/bad_role/, 'bad role');
j("SELECT console_login_begin('staff\@example.com')");
j("SELECT console_login_end('staff\@example.com', true, :'p1', 'csrf2', NULL)", $h2);
like(refused("SELECT admin_authorize('session', NULL, :'p1', 'csrf2', 'POST', 'refunds', 1800, 43200)", $h2),
    qr/forbidden/, 'staff: no refunds');
like(refused("SELECT admin_authorize('session', NULL, :'p1', NULL, 'GET', 'owner', 1800, 43200)", $h2),
    qr/forbidden/, 'staff: no owner pages');
ok(j("SELECT admin_authorize('session', NULL, :'p1', 'csrf2', 'POST', 'write', 1800, 43200)", $h2),
    'staff: write');
my $sid = $t->sql_value("SELECT id FROM console_accounts WHERE email = 'staff\@example.com'");
like(refused("SELECT console_account_update(:'p1', '{\"role\":\"staff\"}')",
    $t->sql_value("SELECT id FROM console_accounts WHERE role = 'owner'")),
    qr/last_owner/, 'the last owner stays');
like(refused("SELECT console_account_update(:'p1', '{\"colour\":1}')", $sid),
    qr/bad_request/, 'unknown field');
$t->sql("SELECT console_account_update(:'p1', '{\"disabled\":true}')", $sid);
like(refused("SELECT admin_authorize('session', NULL, :'p1', NULL, 'GET', 'read', 1800, 43200)", $h2),
    qr/unauthorized/, 'disabled: its session ends');

# --- API keys -------------------------------------------------------------------
my $k = j("SELECT console_key_create('{\"name\":\"ro\",\"scopes\":[\"read\"]}', :'p1', NULL)", $h1);
ok(j("SELECT admin_authorize('key', :'p1', :'p2', NULL, 'GET', 'read', 1, 1)", $k->{key}{id}, $h1),
    'read key reads');
like(refused("SELECT admin_authorize('key', :'p1', :'p2', NULL, 'POST', 'write', 1, 1)", $k->{key}{id}, $h1),
    qr/forbidden/, 'read key: no write');
like(refused("SELECT admin_authorize('key', :'p1', :'p2', NULL, 'GET', 'read', 1, 1)", $k->{key}{id}, $h2),
    qr/unauthorized/, 'wrong secret');
ok($t->sql_value("SELECT last_used_at IS NOT NULL FROM console_api_keys"), 'last used');
$t->sql("SELECT console_key_revoke(:'p1')", $k->{key}{id});
like(refused("SELECT admin_authorize('key', :'p1', :'p2', NULL, 'GET', 'read', 1, 1)", $k->{key}{id}, $h1),
    qr/unauthorized/, 'revoked');
like(refused("SELECT console_key_create('{\"name\":\"x\",\"scopes\":[\"all\"]}', :'p1', NULL)", $h1),
    qr/bad_scopes/, 'bad scope');

# --- password reset ---------------------------------------------------------------
$t->sql("SELECT console_reset_request('nobody\@example.com', :'p1', 'tok')", 'c' x 64);
is($t->sql_value("SELECT count(*) FROM console_password_resets"), 0, 'unknown: nothing');
$t->sql("SELECT console_reset_request('owner\@example.com', :'p1', 'tok')", 'c' x 64);
is($t->sql_value("SELECT count(*) FROM jobs WHERE payload->>'template' = 'password_reset'"),
    1, 'an email job');
$t->sql("SELECT console_reset_confirm(:'p1', :'p2')", 'c' x 64, 'scrypt$14$8$1$bmV3$bmV3');
is($t->sql_value("SELECT password_hash FROM console_accounts WHERE role = 'owner'"),
    'scrypt$14$8$1$bmV3$bmV3', 'the password changed');
like(refused("SELECT console_reset_confirm(:'p1', :'p2')", 'c' x 64, $H),
    qr/invalid_token/, 'single use');
$t->sql("SELECT console_reset_request('owner\@example.com', :'p1', 'tok')", 'd' x 64);
$t->sql("UPDATE console_password_resets SET expires_at = now() - interval '1 second'");
like(refused("SELECT console_reset_confirm(:'p1', :'p2')", 'd' x 64, $H),
    qr/invalid_token/, 'expired');

# --- audit, dashboard -----------------------------------------------------------------
like(refused("SELECT console_audit_json(NULL, 'yesterday-ish', NULL)"), qr/bad_since/, 'bad since');
like(refused("SELECT console_audit_json(NULL, NULL, '0')"), qr/bad_limit/, 'bad limit');
my $a = j("SELECT console_audit_json(NULL, NULL, NULL)");
ok(scalar @{ $a->{audit} } >= 2, 'logins audited');
like($t->sql_value("SELECT console_audit_csv(NULL, NULL, NULL)"), qr/^id,at,account/, 'csv');
my $d = j("SELECT console_dashboard()");
is($d->{attention}{dead_jobs}, 0, 'dashboard: dead jobs');
is_deeply($d->{revenue}{today}, {}, 'dashboard: no revenue');

done_testing;
