#!/usr/bin/perl
# A lease whose owner is known dead is released: a worker killed with
# SIGKILL mid-job does not hold its job for the whole lease (300 s here);
# another worker on the same host sees the pid gone and runs the job again
# at once.  A lease whose owner lives, or lives on another host, is kept;
# a pid that now belongs to another process (reused) is not the owner.
# An owner is "host/pid/start/ns", ns the boot id and PID namespace: an
# owner with our hostname but another namespace (a container sharing the
# host's name, a cloned machine) is never judged by its pid, and neither
# is an owner written before the namespace was part of the name.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Sys::Hostname qw(hostname);
use Darkroom::Test qw(wait_for json_encode);

my $t = Darkroom::Test->new;

my $srv = $t->fake_server(name => 'hook', handler => sub {
    my ($req) = @_;
    # the first delivery never answers: its worker is killed meanwhile
    return 'hang' if $req->{n_path} == 1 && $req->{path} eq '/slow';
    return [200, {}, 'thanks'];
});

$t->conf(<<'CONF', workers => 2);
%%MAIN%%
events {}
http {
    %%HTTP%%
    darkroom_db "%%DB%%";
    darkroom_jobs_interval 100ms;
    darkroom_jobs_lease 300s;
    darkroom_fetch_timeout 280s;
    server {
        listen 127.0.0.1:%%PORT0%%;
        location = /health { darkroom_health; }
    }
}
CONF

# our namespace identity, as the workers (same boot, same PID namespace)
# name it: boot_id without dashes, '.', the PID namespace's inode
my $boot = $t->read_file('/proc/sys/kernel/random/boot_id');
$boot =~ s/[^0-9a-f]//g;
my $ns = "$boot." . (stat '/proc/self/ns/pid')[1];
(my $other = $ns) =~ s/^(.)/$1 eq 'f' ? 'e' : 'f'/e;

# a pid nobody has here
my $dead = 4000000;
$dead++ while kill(0, $dead) || $!{EPERM};

# leases that must stay: a live owner here (pid 1 and this test, with its
# real start time), an owner on another host whose pid means nothing, and
# owners of our host with a dead pid but another namespace or none known
my $host = lc hostname();
my $start = (split ' ', (`cat /proc/$$/stat` =~ /\)\s+(.*)$/)[0])[19];
my %kept;
for my $owner ("$host/1/1/$ns", "$host/$$/$start/$ns",
    "elsewhere.example/$dead/1/$ns",
    "$host/$dead/1/$other",                         # another boot
    "$host/$dead/1/$boot.1",                        # another PID namespace
    "$host/$dead/1", "$host/$dead")                 # from before the upgrade
{
    $kept{$owner} = $t->sql_value("INSERT INTO jobs (kind, payload, attempts,"
        . " locked_by, locked_until) VALUES ('http_post', :'p1', 1, :'p2',"
        . " now() + interval '300 seconds') RETURNING id",
        json_encode({ url => $srv->url('/kept') }), $owner);
}
# a lease of this test's pid with another start time: the pid was reused
my $reused = $t->sql_value("INSERT INTO jobs (kind, payload, attempts,"
    . " locked_by, locked_until) VALUES ('http_post', :'p1', 1, :'p2',"
    . " now() + interval '300 seconds') RETURNING id",
    json_encode({ url => $srv->url('/reused') }), "$host/$$/1/$ns");

$t->start;

my $id = $t->sql_value("INSERT INTO jobs (kind, payload) VALUES"
    . " ('http_post', :'p1') RETURNING id",
    json_encode({ url => $srv->url('/slow') }));

ok(wait_for(sub { grep { $_->{path} eq '/slow' } $srv->requests }, 30),
    'the job is running');
my $owner = $t->sql_value("SELECT locked_by FROM jobs WHERE id = :'p1'", $id);
my ($pid) = ($owner // '') =~ m{^[^/]+/(\d+)};
ok($pid && (grep { $_ == $pid } $t->worker_pids), "leased by worker $owner")
    or diag $owner;
like($owner // '', qr{^\Q$host\E/\d+/\d+/\Q$ns\E$},
    'the owner is named with its namespace');

kill 'KILL', $pid if $pid;   # never 0: that is our group

# the lease has 300 s to run: well before that the job runs again
ok(wait_for(sub {
    $t->sql_value("SELECT done_at IS NOT NULL FROM jobs WHERE id = :'p1'", $id)
        eq 't' }, 120),
    'the job of the killed worker ran again without waiting for its lease');
is($t->sql_value("SELECT attempts FROM jobs WHERE id = :'p1'", $id), 2,
    'on its second attempt');
is(scalar(grep { $_->{path} eq '/slow' } $srv->requests), 2,
    'delivered twice (the first answer was lost with the worker)');

ok(wait_for(sub {
    $t->sql_value("SELECT done_at IS NOT NULL FROM jobs WHERE id = :'p1'",
        $reused) eq 't' }, 60),
    'a lease whose pid now belongs to another process is released');

for my $o (sort keys %kept) {
    is($t->sql_value("SELECT (done_at IS NULL AND locked_until > now()"
        . " AND attempts = 1)::text FROM jobs WHERE id = :'p1'", $kept{$o}),
        'true', "a lease of a live or remote owner is kept: $o");
}
ok(!grep({ $_->{path} eq '/kept' } $srv->requests), 'and not run');
like($t->error_log, qr/lease.*released|released.*lease/, 'the release is logged');

done_testing;
