#!/usr/bin/perl
# The login lockout per client address: wrong passwords sprayed over many
# emails from one address (forked, all at once) are never checked more
# than the limit (20) allowed; the rest are 429 locked_out with
# Retry-After, and then every email is refused from that address, the
# right password too, while another address signs in.  A right password
# forgets its email's count, not its address's.  Nothing else is written.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use POSIX ();
use JSON::PP;
use Darkroom::Test;
use Darkroom::Console qw(console_start account PASSWORD);

my $t = Darkroom::Test->new;
console_start($t);
account($t, 'owner@example.com', 'owner');

sub login_from {
    my ($from, $email, $password) = @_;
    return $t->http(POST => '/admin/console/api/login', {
        from => $from,
        headers => { 'Content-Type' => 'application/json' },
        content => encode_json({ email => $email,
                                 password => $password // PASSWORD }) });
}

# $n wrong passwords at once from $from, each for another email
sub spray {
    my ($from, $n) = @_;
    my @pids;
    pipe my $rd, my $wr or die;
    for my $i (1 .. $n) {
        my $pid = fork // die;
        if (!$pid) {
            close $rd;
            my $r = login_from($from, "spray$i\@example.com", 'wrong one!');
            print $wr "$r->{status} " . ($r->{headers}{'retry-after'} // '-')
                . ' ' . ($r->{json} ? $r->{json}{error}{code} : '-') . "\n";
            close $wr;
            POSIX::_exit(0);
        }
        push @pids, $pid;
    }
    close $wr;
    my @out = <$rd>;
    waitpid $_, 0 for @pids;
    my %c;
    $c{ (split ' ', $_)[0] }++ for @out;
    return (\%c, \@out);
}

my ($c, $out) = spray('127.0.0.1', 30);
my $checked = $c->{401} // 0;
ok($checked <= 20, "$checked wrong passwords checked, never more than 20");
is($checked + ($c->{429} // 0), 30, 'every other one 429');
ok(!grep({ /^429 -/ } @$out), 'each 429 with Retry-After');
ok(!grep({ /^429 \S+ (?!locked_out)/ } @$out), 'each 429 locked_out');
ok($t->sql_value("SELECT failures FROM console_login_addresses"
    . " WHERE ip = '127.0.0.1'") <= 20, 'the count never exceeds the limit');
ok($t->sql_value("SELECT locked_until > now() FROM console_login_addresses"
    . " WHERE ip = '127.0.0.1'") eq 't', 'the address locked');
# an attempt is counted before its password is checked: the counted ones
# (401, or 429 when a parallel failure locked the address meanwhile) are
# the only emails counted
my $counted = $t->sql_value("SELECT failures FROM console_login_addresses"
    . " WHERE ip = '127.0.0.1'");
is($t->sql_value("SELECT count(*) FROM console_login_failures"), $counted,
    'an email refused by the address lock is not counted');

# the spray done, the address is locked for every email, even the right
# password of an account nobody tried
my $r = login_from('127.0.0.1', 'owner@example.com');
is($r->{status}, 429, 'the address locked: the right password refused');
is($r->{json}{error}{code}, 'locked_out', 'locked_out');
ok($r->{headers}{'retry-after'} > 60, 'Retry-After in seconds');
is($t->sql_value("SELECT count(*) FROM console_login_failures"
    . " WHERE email = 'owner\@example.com'"), 0, 'the email not counted');
is($t->sql_value("SELECT count(*) FROM console_sessions"), 0,
    'no session made');
is($t->sql_value("SELECT count(*) FROM console_audit"), 0, 'no audit row');

# another address is not concerned
$r = login_from('127.0.0.2', 'owner@example.com');
is($r->{status}, 200, 'another address signs in');
ok($t->sql_value("SELECT locked_until > now() FROM console_login_addresses"
    . " WHERE ip = '127.0.0.1'") eq 't', 'the first address still locked');

# a right password forgets its email's failures, not its address's
is(login_from('127.0.0.3', 'owner@example.com', 'nope nope')->{status}, 401,
    'a wrong password');
is(login_from('127.0.0.3', 'other@example.com', 'nope nope')->{status}, 401,
    'another email, wrong');
is(login_from('127.0.0.3', 'owner@example.com')->{status}, 200,
    'the right one');
is($t->sql_value("SELECT count(*) FROM console_login_failures"
    . " WHERE email = 'owner\@example.com'"), 0, "the email's count forgotten");
is($t->sql_value("SELECT failures FROM console_login_addresses"
    . " WHERE ip = '127.0.0.3'"), 2, "the address's count stands");

# sequentially: the 20th wrong password locks, the 21st is refused unchecked
for my $i (1 .. 17) {
    login_from('127.0.0.3', "seq$i\@example.com", 'wrong one!');
}
is(login_from('127.0.0.3', 'seq18@example.com', 'wrong one!')->{status}, 401,
    'the 20th wrong password checked');
$r = login_from('127.0.0.3', 'seq19@example.com', 'wrong one!');
is($r->{status}, 429, 'the 21st locked out');
ok($r->{headers}{'retry-after'}, 'with Retry-After');
is($t->sql_value("SELECT count(*) FROM console_login_failures"
    . " WHERE email = 'seq19\@example.com'"), 0, 'and not counted');

# the lock over, the address signs in again
$t->sql("UPDATE console_login_addresses SET locked_until = now()"
    . " - interval '1 second' WHERE ip = '127.0.0.1'");
is(login_from('127.0.0.1', 'owner@example.com')->{status}, 200,
    'after the lock: signed in');

# old rows forgotten as for emails (now and then, rows a day old)
$t->sql("UPDATE console_login_addresses SET first_at = now() - interval"
    . " '2 days', locked_until = NULL WHERE ip = '127.0.0.2'");
$t->sql("SELECT console_login_begin('x\@example.com', '127.0.0.9')"
    . " FROM generate_series(1, 1500)");   # 1 % each: missed once in 3e6
is($t->sql_value("SELECT count(*) FROM console_login_addresses"
    . " WHERE ip = '127.0.0.2'"), 0, 'a day-old address forgotten');

# the limits are settings of the database (or of a session)
is($t->sql_value("SET darkroom.console_address_max = 2;"
    . " SELECT console_address_max()"), 2, 'the limit is a setting');
$t->sql("SET darkroom.console_address_max = 2;"
    . " SELECT console_login_begin('a\@example.com', '10.0.0.1');"
    . " SELECT console_login_end('a\@example.com', false, NULL, NULL,"
    . " '10.0.0.1');"
    . " SELECT console_login_begin('b\@example.com', '10.0.0.1');"
    . " SELECT console_login_end('b\@example.com', false, NULL, NULL,"
    . " '10.0.0.1');");
is($t->sql_value("SELECT locked_until > now() FROM console_login_addresses"
    . " WHERE ip = '10.0.0.1'"), 't', 'locked after 2 with a limit of 2');
is($t->sql_value("SELECT console_address_max()"), 20, '20 by default');

$t->stop;
ok($t->check_sanitizer, 'no sanitizer report');
done_testing;
