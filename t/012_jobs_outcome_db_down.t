#!/usr/bin/perl
# Postgres goes away while a job runs: the job's outcome cannot be written
# when it finishes, so the worker keeps it and writes it once Postgres is
# back, instead of leaving the job leased (300 s here) to be run again.
# A Postgres cluster of its own, so stopping it disturbs no other test.

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
system($t->top . "/tools/darkroom-migrate '$db' >/dev/null") == 0
    or BAIL_OUT('migrations failed');
END { system($pgctl, 'stop', $pg) if $pg }
$t->{db} = $db;

my $release = $t->dir . '/release';
my $srv = $t->fake_server(name => 'hook', handler => sub {
    # held until the test has stopped Postgres (bounded)
    for (1 .. 1200) { last if -e $release; select undef, undef, undef, 0.05 }
    return [200, {}, 'thanks'];
});

$t->conf(<<'CONF');
%%MAIN%%
events {}
http {
    %%HTTP%%
    darkroom_db "%%DB%%";
    darkroom_db_timeout 1s;
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

system($pgctl, 'stop', $pg) == 0 or die 'cannot stop Postgres';
open my $fh, '>', $release or die; close $fh;

ok(wait_for(sub { $t->error_log =~ /job $id done but not recorded/ }, 60),
    'the outcome could not be written with Postgres down');

system($pgctl, 'start', $pg, 'jobs') == 0 or die 'cannot start Postgres';

ok(wait_for(sub {
    ($t->sql_value("SELECT done_at IS NOT NULL FROM jobs WHERE id = :'p1'",
        $id) // '') eq 't' }, 60),
    'the outcome is written once Postgres is back, not after the lease');
is($t->sql_value("SELECT attempts FROM jobs WHERE id = :'p1'", $id), 1,
    'on its first attempt');
is($t->sql_value("SELECT locked_until IS NULL FROM jobs WHERE id = :'p1'", $id),
    't', 'the lease is given back');
is(scalar($srv->requests), 1, 'the job was not run again');

done_testing;
