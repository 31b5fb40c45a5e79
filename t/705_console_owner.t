#!/usr/bin/perl
# tools/darkroom-owner: the first owner with a random password printed
# once, that signs in; a second owner refused unless --reset, which gives a
# new password and ends the old sessions; a bad email refused.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Darkroom::Test;
use Darkroom::Console qw(console_start login api);

my $t = Darkroom::Test->new;
console_start($t);
my $tool = $t->top . '/tools/darkroom-owner';
my $db = $t->db;

sub owner {
    my @args = @_;
    my $out = `'$tool' @args 2>&1`;
    return ($? >> 8, $out);
}

my ($rc, $out) = owner("'$db'", 'boss@example.com');
is($rc, 0, 'the first owner');
my ($email) = $out =~ /^email (\S+)$/m;
my ($pw) = $out =~ /^password (\S+)$/m;
is($email, 'boss@example.com', 'its email');
ok(length($pw) >= 20, 'a random password, printed');
is($t->sql_value("SELECT count(*) FROM console_accounts WHERE password_hash LIKE '%' || :'p1' || '%'", $pw),
    0, 'not stored');
my $l = login($t, $email, $pw);
is($l->{status}, 200, 'it signs in');
is($l->{json}{account}{role}, 'owner', 'as an owner');

($rc, $out) = owner("'$db'", 'other@example.com');
is($rc, 1, 'a second owner refused');
like($out, qr/owner exists/, 'saying why');
is($t->sql_value("SELECT count(*) FROM console_accounts"), 1, 'nothing made');

($rc, $out) = owner('--reset', "'$db'", 'boss@example.com');
is($rc, 0, '--reset');
my ($pw2) = $out =~ /^password (\S+)$/m;
isnt($pw2, $pw, 'a new password');
is(api($t, { sid => $l->{sid} }, GET => 'session')->{status}, 401, 'the old session ended');
is(login($t, $email, $pw)->{status}, 401, 'the old password fails');
is(login($t, $email, $pw2)->{status}, 200, 'the new one works');

($rc, $out) = owner("'$db'", 'not-an-email');
is($rc, 1, 'a bad email refused');

$t->stop;
done_testing;
