#!/usr/bin/perl
# A worker that quits closes its pool threads' PostgreSQL connections
# properly (ngx_http_darkroom_db_exit()): PostgreSQL counts a connection
# that just vanishes with the process in pg_stat_database's
# sessions_abandoned, and LeakSanitizer reported each as a leak
# (bench/soak).  Several threads hold a connection, then nginx quits: none
# of their sessions may be abandoned.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use POSIX ();
use Darkroom::Test qw(wait_for);

my $t = Darkroom::Test->new;

$t->conf(<<'CONF', workers => 2);
%%MAIN%%
thread_pool darkroom threads=4;
events {}
http {
    %%HTTP%%
    darkroom_db "%%DB%%";
    darkroom_db_pool darkroom;
    darkroom_jobs off;
    server {
        listen 127.0.0.1:%%PORT0%%;
        location = /health { darkroom_health; }
    }
}
CONF

my $abandoned = q{SELECT sessions_abandoned FROM pg_stat_database
                   WHERE datname = current_database()};
my $backends = q{SELECT count(*) FROM pg_stat_activity
                  WHERE datname = current_database()
                    AND application_name = 'darkroom'};

my $before = $t->sql_value($abandoned);

$t->start;

# requests side by side, so that more than one thread connects
my @kids;
for (1 .. 4) {
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        # _exit: the parent's END blocks (stop nginx, drop the database)
        # are not the child's to run
        for (1 .. 10) {
            POSIX::_exit(1) unless $t->http(GET => '/health')->{status} == 200;
        }
        POSIX::_exit(0);
    }
    push @kids, $pid;
}
waitpid($_, 0) == $_ && $? == 0 or fail('a client saw an error') for @kids;

my $open = $t->sql_value($backends);
cmp_ok($open, '>=', 2, "threads hold connections ($open)");

$t->stop;

ok(wait_for(sub { $t->sql_value($backends) == 0 }, 20),
   'the connections are gone once nginx has quit');

is($t->sql_value($abandoned), $before,
   'no session abandoned: each connection was closed, not dropped');

unlike($t->error_log, qr/\[(alert|crit|emerg)\]/, 'no alerts');

done_testing();
