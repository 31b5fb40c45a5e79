#!/usr/bin/perl
# An outcome kept while Postgres could not be reached is not lost when the
# worker exits (nginx -s quit, or the old worker of a reload): the exiting
# worker makes one more run that only records it, trying for up to
# darkroom_db_timeout, and waits for that run.  Here the database refuses
# connections (ALLOW_CONNECTIONS false) while the job finishes and until
# the worker is shutting down, then takes them again.  Before, the worker
# left at once and the job stayed leased (300 s here), to be run twice.
# A Postgres cluster of its own, so nothing else is disturbed.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Darkroom::Test qw(wait_for json_encode);

my $t = Darkroom::Test->new;
my $pg = $t->dir . '/pg';
my $pgctl = $t->top . '/tools/darkroom-pg';

system($pgctl, 'start', $pg, 'jobs') == 0 or BAIL_OUT('cannot start Postgres');
chomp(my $db = `$pgctl conninfo $pg jobs`);
chomp(my $admin = `$pgctl conninfo $pg postgres`);
system($t->top . "/tools/darkroom-migrate '$db' >/dev/null") == 0
    or BAIL_OUT('migrations failed');
END { system($pgctl, 'stop', $pg) if $pg }
$t->{db} = $db;

sub connections {
    my ($allow) = @_;
    local $t->{db} = $admin;
    $t->sql("ALTER DATABASE jobs ALLOW_CONNECTIONS $allow");
    # the workers' open connections go too
    $t->sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        . " WHERE datname = 'jobs'") if $allow eq 'false';
}

my $release = $t->dir . '/release';
my $srv = $t->fake_server(name => 'hook', handler => sub {
    # held until the test has closed the database (bounded)
    for (1 .. 1200) { last if -e $release; select undef, undef, undef, 0.05 }
    return [200, {}, 'thanks'];
});

# db_timeout bounds the exiting worker's last try: long enough for the
# test to open the database again after the shutdown began
$t->conf(<<'CONF');
%%MAIN%%
events {}
http {
    %%HTTP%%
    darkroom_db "%%DB%%";
    darkroom_db_timeout 60s;
    darkroom_jobs_interval 100ms;
    darkroom_jobs_lease 300s;
    darkroom_fetch_timeout 120s;
    server {
        listen 127.0.0.1:%%PORT0%%;
        location = /health { darkroom_health; }
    }
}
CONF
$t->start;

my $id = $t->sql_value("INSERT INTO jobs (kind, payload) VALUES"
    . " ('http_post', :'p1') RETURNING id",
    json_encode({ url => $srv->url('/hook') }));

ok(wait_for(sub { scalar $srv->requests }, 30), 'the job is running');

connections('false');
open my $fh, '>', $release or die; close $fh;

ok(wait_for(sub { $t->error_log =~ /job $id done but not recorded/ }, 60),
    'the outcome could not be written: the database refuses connections');

my $master = $t->master_pid;
kill 'QUIT', $master;
ok(wait_for(sub { $t->error_log =~ /gracefully shutting down/ }, 30),
    'the worker is shutting down');

connections('true');

ok(wait_for(sub { !kill 0, $master }, 120), 'nginx has exited');
$t->{started} = 0;

is($t->sql_value("SELECT done_at IS NOT NULL FROM jobs WHERE id = :'p1'", $id),
    't', 'the outcome was written by the exiting worker');
is($t->sql_value("SELECT attempts FROM jobs WHERE id = :'p1'", $id), 1,
    'on its first attempt');
is($t->sql_value("SELECT locked_until IS NULL FROM jobs WHERE id = :'p1'", $id),
    't', 'the lease is given back');
is(scalar($srv->requests), 1, 'the job was not run again');

done_testing;
