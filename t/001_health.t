#!/usr/bin/perl
# Health: 200 with the database up; 503 with Retry-After within
# darkroom_db_timeout when Postgres is stopped; 200 again once it is back,
# without restarting nginx.  Uses a Postgres cluster of its own so that
# stopping it disturbs no other test.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Time::HiRes qw(time);
use Darkroom::Test qw(wait_for);

my $t = Darkroom::Test->new;
my $pg = $t->dir . '/pg';
my $pgctl = $t->top . '/tools/darkroom-pg';

system($pgctl, 'start', $pg, 'health') == 0 or BAIL_OUT('cannot start Postgres');
chomp(my $db = `$pgctl conninfo $pg health`);
system($t->top . "/tools/darkroom-migrate '$db' >/dev/null") == 0
    or BAIL_OUT('migrations failed');
END { system($pgctl, 'stop', $pg) if $pg }

$t->conf(<<"CONF", workers => 2);
%%MAIN%%
events {}
http {
    %%HTTP%%
    darkroom_db "$db";
    darkroom_db_timeout 2s;
    server {
        listen 127.0.0.1:%%PORT0%%;
        location = /health { darkroom_health; }
    }
}
CONF
$t->start;

my $r = $t->http(GET => '/health');
is($r->{status}, 200, 'health 200 with the database up');
is($r->{json}{status}, 'ok', 'status ok');
is($r->{json}{db}, 'ok', 'db ok');
ok($r->{json}{schema} >= 1, 'schema version reported');
is_deeply([sort keys %{$r->{json}{jobs}}], [qw(dead due running)],
    'job counts reported');
like($r->{json}{version}, qr/^\d+\.\d+\.\d+$/, 'version reported');
is($r->{headers}{'cache-control'}, 'no-store', 'never cached');

$r = $t->http(HEAD => '/health');
is($r->{status}, 200, 'HEAD works');
$r = $t->http(POST => '/health', { content => 'x' });
is($r->{status}, 405, 'POST is not allowed');
is($r->{json}{error}{code}, 'method_not_allowed',
    "nginx's own error page turned into the JSON error");
$r = $t->http(GET => '/elsewhere');
like($r->{headers}{'content-type'}, qr{text/html},
    'other locations keep nginx pages');

# warm every pool thread's connection, so a restart breaks live ones
$t->http(GET => '/health') for 1 .. 10;

system($pgctl, 'stop', $pg);

# an answer at all (the client waits 15 s) shows nothing hangs; how fast
# it comes depends on the machine, so it is not asserted
$r = $t->http(GET => '/health');
is($r->{status}, 503, 'health 503 with Postgres stopped');
is($r->{json}{db}, 'unavailable', 'failing part named');
is($r->{json}{error}{code}, 'db_unavailable', 'error code');
ok($r->{headers}{'retry-after'}, 'Retry-After present');

for (1 .. 5) {
    $r = $t->http(GET => '/health');
    last if $r->{status} != 503;
}
is($r->{status}, 503, 'stays 503 while down');
like($t->error_log, qr/darkroom: postgres: connect failed/,
    'the failure is logged on the event loop');
unlike($t->error_log, qr/password=/, 'no connection secrets in the log');

system($pgctl, 'start', $pg, 'health') == 0 or die;

my $ok = wait_for(sub {
    my $r = $t->http(GET => '/health');
    $r->{status} == 200;
}, 10);
ok($ok, 'health 200 again after Postgres restarts, nginx untouched');

# every thread reconnects: many requests in a row all succeed
my $good = grep { $t->http(GET => '/health')->{status} == 200 } 1 .. 20;
is($good, 20, 'all pool threads recovered');

# restart while connections are idle: no request sees a dead connection
system($pgctl, 'stop', $pg);
system($pgctl, 'start', $pg, 'health');
$good = grep { $t->http(GET => '/health')->{status} == 200 } 1 .. 20;
is($good, 20, 'idle connections killed by a restart are replaced unseen');

done_testing;
