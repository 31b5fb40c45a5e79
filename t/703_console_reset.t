#!/usr/bin/perl
# Password reset: always 202 (an unknown address too, and nothing made for
# it); an email job with the template password_reset carrying a single-use
# link valid an hour; confirming it sets the password and ends every
# session; a used or expired token is 400 invalid_token; bad input is 400
# and writes nothing.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Darkroom::Test;
use Darkroom::Console qw(console_start account login api PASSWORD);

my $t = Darkroom::Test->new;
console_start($t);
account($t, 'owner@example.com', 'owner');

sub reset_req {
    return $t->http(POST => "/admin/console/api/$_[0]", {
        headers => { 'Content-Type' => 'application/json' }, content => $_[1] });
}
sub jobs { $t->sql_value("SELECT count(*) FROM jobs WHERE payload->>'template' = 'password_reset'") }

my $l = login($t, 'owner@example.com');
my $s = { sid => $l->{sid}, csrf => $l->{csrf} };

my $r = reset_req('password-reset', '{"email":"nobody@example.com"}');
is($r->{status}, 202, 'unknown address: 202');
is(jobs(), 0, 'no email');
$r = reset_req('password-reset', '{"email":"Owner@Example.com"}');
is($r->{status}, 202, 'the owner: 202');
is(jobs(), 1, 'an email job');
my ($to, $token) = @{ ($t->sql("SELECT payload->>'to', payload->>'token' FROM jobs"
    . " WHERE payload->>'template' = 'password_reset'"))[0] };
is($to, 'owner@example.com', 'to the account');
like($token, qr/^[A-Za-z0-9_-]{43}$/, 'a 256-bit token in the link');
is($t->sql_value("SELECT count(*) FROM console_password_resets WHERE token_hash = :'p1'", $token),
    0, 'the token itself is not kept');
ok($t->sql_value("SELECT expires_at <= now() + interval '1 hour' FROM console_password_resets"),
    'valid an hour');

# bad input
my $n = $t->sql_value("SELECT count(*) FROM console_password_resets");
for my $b ('', '[]', '{}', '{"email":5}') {
    is(reset_req('password-reset', $b)->{status}, 400, "reset '$b': 400");
}
for my $b ('', '{}', qq({"token":"$token"}), qq({"token":"$token","password":"short"}),
           '{"password":"long enough password"}')
{
    is(reset_req('password-reset/confirm', $b)->{status}, 400, "confirm '$b': 400");
}
is($t->sql_value("SELECT count(*) FROM console_password_resets WHERE used_at IS NOT NULL"), 0,
    'nothing used');
is($t->sql_value("SELECT count(*) FROM console_password_resets"), $n, 'nothing made');

$r = reset_req('password-reset/confirm', '{"token":"nope","password":"a new password"}');
is($r->{status}, 400, 'unknown token: 400');
is($r->{json}{error}{code}, 'invalid_token', 'invalid_token');

$r = reset_req('password-reset/confirm', qq({"token":"$token","password":"a new password"}));
is($r->{status}, 200, 'confirm');
is(api($t, $s, GET => 'session')->{status}, 401, 'every session ended');
is(login($t, 'owner@example.com')->{status}, 401, 'the old password fails');
is(login($t, 'owner@example.com', 'a new password')->{status}, 200, 'the new one works');
$r = reset_req('password-reset/confirm', qq({"token":"$token","password":"another password"}));
is($r->{status}, 400, 'single use');
is($r->{json}{error}{code}, 'invalid_token', 'invalid_token');
ok($t->sql_value("SELECT count(*) FROM console_audit WHERE path = 'password-reset/confirm'"),
    'audited');

# expired
reset_req('password-reset', '{"email":"owner@example.com"}');
($token) = map { $_->[0] } $t->sql("SELECT payload->>'token' FROM jobs"
    . " WHERE payload->>'template' = 'password_reset' ORDER BY id DESC LIMIT 1");
$t->sql("UPDATE console_password_resets SET expires_at = now() - interval '1 second'"
    . " WHERE used_at IS NULL");
$r = reset_req('password-reset/confirm', qq({"token":"$token","password":"another password"}));
is($r->{status}, 400, 'expired: 400');
is(login($t, 'owner@example.com', 'another password')->{status}, 401, 'the password did not change');

$t->stop;
ok($t->check_sanitizer, 'no sanitizer report');
done_testing;
