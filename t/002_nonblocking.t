#!/usr/bin/perl
# The event loop never blocks.  darkroom's database is a TCP server that
# accepts and never answers: 50 health requests hang in the thread pool
# while a static file from the same nginx is served at once; then every
# one of them gets 503 at darkroom_db_timeout.  A full task queue answers
# 503 with Retry-After straight away instead of hanging.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use IO::Select;
use IO::Socket::IP;
use Time::HiRes qw(time sleep);
use Darkroom::Test;

# the kernel completes handshakes into the backlog; nobody ever answers
my $hole = IO::Socket::IP->new(LocalAddr => '127.0.0.1', LocalPort => 0,
    Listen => 1024, Proto => 'tcp') or die "listen: $!";
my $hport = $hole->sockport;

sub send_requests {
    my ($port, $path, $n) = @_;
    my @socks;
    for (1 .. $n) {
        my $s = IO::Socket::IP->new(PeerAddr => '127.0.0.1', PeerPort => $port,
            Proto => 'tcp') or die "connect: $!";
        print $s "GET $path HTTP/1.0\r\nHost: localhost\r\n\r\n";
        push @socks, $s;
    }
    return @socks;
}

# read every answer; returns [status, seconds since $t0, retry-after, error
# code] each
sub collect {
    my ($t0, $limit, @socks) = @_;
    my %buf;
    my %done;
    my $sel = IO::Select->new(@socks);
    while ($sel->count && time - $t0 < $limit) {
        for my $s ($sel->can_read(0.2)) {
            my $n = sysread($s, $buf{$s}, 65536, length($buf{$s} // ''));
            if (!$n) {
                $done{$s} = time - $t0;
                $sel->remove($s);
            }
        }
    }
    return map {
        my $b = $buf{$_} // '';
        my ($st) = $b =~ m{^HTTP/1\.\d (\d+)};
        my ($ra) = $b =~ m{\r\nRetry-After: (\d+)}i;
        my ($code) = $b =~ m{"code":"(\w+)"};
        [ $st // 0, $done{$_} // 999, $ra, $code // '' ]
    } @socks;
}

my $t = Darkroom::Test->new;
$t->write_file('html/static.txt', 'static ' x 100);
$t->conf(<<"CONF");
%%MAIN%%
events {}
http {
    %%HTTP%%
    darkroom_db "host=127.0.0.1 port=$hport dbname=x user=x";
    darkroom_db_timeout 6s;
    darkroom_jobs off;
    server {
        listen 127.0.0.1:%%PORT0%%;
        root %%DIR%%/html;
        location = /health { darkroom_health; }
    }
}
CONF
$t->start;

my $t0 = time;
my @socks = send_requests($t->port(0), '/health', 50);
sleep 0.3;

# the static file is served while all 50 still hang: none has an answer
# yet when it comes (they wait for the 6 s timeout), however slow the
# machine; no duration is asserted
my $r = $t->http(GET => '/static.txt', { timeout => 30 });
is($r->{status}, 200, 'static file served while 50 DB calls hang');
my @early = IO::Select->new(@socks)->can_read(0);
is(scalar(@early), 0, 'before any of the 50 hanging requests was answered');

my @res = collect($t0, 60, @socks);
is(scalar(grep { $_->[0] == 503 } @res), 50, 'all 50 hanging requests got 503');
my ($fastest) = sort { $a <=> $b } map { $_->[1] } @res;
ok($fastest >= 5.5, sprintf('none answered before the timeout (%.2fs)',
    $fastest));
is(scalar(grep { ($_->[2] // 0) > 0 } @res), 50, 'each carries Retry-After');

$t->stop;

# a full queue: one thread, a queue of one; the rest are refused at once
my $q = Darkroom::Test->new;
$q->conf(<<"CONF");
%%MAIN%%
thread_pool tiny threads=1 max_queue=1;
events {}
http {
    %%HTTP%%
    darkroom_db "host=127.0.0.1 port=$hport dbname=x user=x";
    darkroom_db_pool tiny;
    darkroom_db_timeout 2s;
    darkroom_jobs off;
    server {
        listen 127.0.0.1:%%PORT0%%;
        location = /health { darkroom_health; }
    }
}
CONF
$q->start;

$t0 = time;
@socks = send_requests($q->port(0), '/health', 6);
@res = collect($t0, 60, @socks);
my @quick = grep { $_->[0] == 503 && $_->[3] eq 'busy' } @res;
ok(@quick >= 4, scalar(@quick) . ' requests refused (busy) with a full queue');
is(scalar(grep { $_->[0] == 503 } @res), 6, 'every request answered 503');
ok(!grep({ !$_->[2] } @quick), 'refusals carry Retry-After');
like($q->error_log, qr/thread pool "tiny" queue overflow/,
    'nginx reports the overflow');
my $body = do {
    my ($s) = send_requests($q->port(0), '/health', 1);
    local $/; my $x = <$s>; $x
};
like($body, qr/"code":"(busy|db_unavailable)"/, 'JSON error body');

done_testing;
