#!/usr/bin/perl

# darkroom: 4 workers and 8 clients hammering one key; no update is lost
# between workers: the passes never exceed what GCRA permits over the time
# the clients measured (burst + 1 + rate * span), however fast or slow the
# machine is.  How close to that bound the passes come depends on the
# machine's speed, so it is not asserted (bench/ measures throughput).

use strict;
use warnings;

use lib 't/lib';
use Darkroom::Test;
use HTTP::Tiny;
use POSIX ();
use Test::More;
use Time::HiRes qw(time sleep);

my $t = Darkroom::Test->new;

$t->write_file('html/index.html', "ok\n");

$t->conf(<<'EOF', workers => 4);
%%MAIN%%
events {}
http {
    %%HTTP%%
    error_log %%DIR%%/error.log notice;
    darkroom_limit_log_level info;
    log_format limit '$pid $darkroom_limit_status $status';
    access_log %%DIR%%/limit.log limit;

    darkroom_limit_zone name=one key=$http_x_key rate=50r/s burst=10
                        size=1m;

    server {
        listen 127.0.0.1:%%PORT0%% reuseport;
        root %%DIR%%/html;

        location / {
            darkroom_limit zone=one;
        }
    }
}
EOF

$t->start;

my $clients = 8;
my $duration = 2.0;     # at least; longer until the key was over its limit
my $cap = 60;           # give up (and fail) if it never was
my $url = 'http://127.0.0.1:' . $t->port(0) . '/';

my @pipes;

for my $c (1 .. $clients) {
    pipe(my $r, my $w) or die "pipe: $!";
    my $pid = fork();
    die "fork: $!" unless defined $pid;

    if ($pid == 0) {
        close $r;
        my %n = (200 => 0, 429 => 0, other => 0);
        my ($first, $last);
        my $begin = time;

        # a new connection every 50 requests spreads them over the workers;
        # each client goes on until it was refused a few times, so the key
        # is over its limit on any machine

        while ((time < $begin + $duration || $n{429} < 5)
               && time < $begin + $cap)
        {
            my $ua = HTTP::Tiny->new(keep_alive => 1, timeout => 10);
            for (1 .. 50) {
                my $start = time;
                my $res = $ua->get($url, { headers => { 'X-Key' => 'hot' } });
                $first //= $start;
                $last = time;
                my $code = $res->{status};
                $n{ $code == 200 || $code == 429 ? $code : 'other' }++;
            }
        }

        print $w join(' ', $n{200}, $n{429}, $n{other}, $first, $last), "\n";
        close $w;

        # not exit(): the harness object must not stop nginx from here
        POSIX::_exit(0);
    }

    close $w;
    push @pipes, $r;
}

my ($passed, $rejected, $other, $first, $last) = (0, 0, 0);

for my $r (@pipes) {
    my $line = <$r>;
    close $r;
    my ($p, $j, $o, $f, $l) = split ' ', $line // '0 0 1 0 0';
    $passed += $p;
    $rejected += $j;
    $other += $o;
    $first = $f if !defined $first || $f < $first;
    $last = $l if !defined $last || $l > $last;
}

1 while wait() != -1;

my $span = $last - $first;
my $allowed = 11 + 50 * $span;

note(sprintf('%d passed, %d rejected in %.3f s, at most %.1f allowed',
             $passed, $rejected, $span, $allowed));

is($other, 0, 'only 200 and 429');
ok($rejected > 0, 'the key was over its limit');

# burst 10: the first 11 requests pass whatever the speed; after that, 50
# per second of the span, plus 2 for nginx's millisecond clock

ok($passed >= 11, "passed $passed: at least the burst (11)");
ok($passed <= int($allowed) + 2,
   sprintf('passed %d <= 11 + 50 r/s * %.3f s (%.1f) + 2: no lost update',
           $passed, $span, $allowed));

$t->stop;

my $log = $t->read_file('limit.log');
my %pids = map { $_ => 1 } $log =~ /^(\d+) /mg;
my $logged = () = $log =~ /^\d+ PASSED 200$/mg;

ok(keys(%pids) >= 2, scalar(keys %pids) . ' workers answered');
is($logged, $passed, 'access log agrees on the passes');

done_testing();
