#!/usr/bin/perl
# The login lockout is atomic: many clients at once with wrong passwords
# (forked) are never checked more than the limit (5) allowed; the rest are
# 429 locked_out with Retry-After; once locked, the right password is
# refused too; an unknown address locks the same way.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use POSIX ();
use Darkroom::Test;
use Darkroom::Console qw(console_start account login PASSWORD);

my $t = Darkroom::Test->new;
console_start($t);
account($t, 'owner@example.com', 'owner');

sub race {
    my ($email, $n) = @_;
    my @pids;
    pipe my $rd, my $wr or die;
    for (1 .. $n) {
        my $pid = fork // die;
        if (!$pid) {
            close $rd;
            my $r = login($t, $email, 'wrong password!');
            print $wr "$r->{status} " . ($r->{headers}{'retry-after'} // '-') . "\n";
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

for my $email ('owner@example.com', 'nobody@example.com') {
    my ($c, $out) = race($email, 20);
    my $checked = $c->{401} // 0;
    ok($checked <= 5, "$email: $checked wrong passwords checked, never more than 5");
    is(($c->{401} // 0) + ($c->{429} // 0), 20, 'every other one 429');
    ok(!grep({ /^429 -$/ } @$out), 'each 429 with Retry-After');
    my $r = login($t, $email, PASSWORD);
    is($r->{status}, 429, "$email: locked, the right password too");
    is($r->{json}{error}{code}, 'locked_out', 'locked_out');
    ok($r->{headers}{'retry-after'} > 60, 'Retry-After in seconds');
    ok($t->sql_value("SELECT failures FROM console_login_failures WHERE email = :'p1'", $email) <= 5,
        'the count never exceeds the limit');
}
is($t->sql_value("SELECT count(*) FROM console_sessions"), 0, 'no session made');

# the lock over, the right password signs in and the count is forgotten
$t->sql("UPDATE console_login_failures SET locked_until = now() - interval '1 second'");
is(login($t, 'owner@example.com')->{status}, 200, 'after the lock: signed in');
is($t->sql_value("SELECT count(*) FROM console_login_failures WHERE email = 'owner\@example.com'"),
    0, 'failures forgotten');

$t->stop;
ok($t->check_sanitizer, 'no sanitizer report');
done_testing;
