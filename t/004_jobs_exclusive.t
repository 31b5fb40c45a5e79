#!/usr/bin/perl
# Two nginx instances, two workers each, one database: every job runs
# exactly once.  Then crashes and shutdowns: a job whose worker is killed
# with SIGKILL runs again (its lease released as its owner is gone, or run
# out, whichever comes first; t/011 covers the release); a graceful quit
# finishes the job
# at hand and records it, so it never runs twice.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Time::HiRes qw(sleep time);
use Darkroom::Test qw(wait_for json_encode);

my $a = Darkroom::Test->new;
my $db = $a->db;

my $srv = $a->fake_server(name => 'sink', handler => sub {
    my ($req, $state) = @_;
    my $mode = $state->{$req->{path}} // 'ok';
    return 'hang' if $mode eq 'hang-first' && $req->{n_path} == 1;
    return [200, {}, 'ok', 1.5] if $mode eq 'slow';
    return [200, {}, 'ok', 0.01];
});

my $conf = <<'CONF';
%%MAIN%%
events {}
http {
    %%HTTP%%
    darkroom_db "%%DB%%";
    darkroom_jobs_interval 20ms;
    # long enough that no lease runs out on a loaded machine: exactly once
    # must not depend on speed; a killed worker's lease is released by the
    # owner sweep (about a second), not by running out
    darkroom_jobs_lease 60s;
    darkroom_jobs_batch 5;
    server {
        listen 127.0.0.1:%%PORT0%%;
        location = /health { darkroom_health; }
    }
}
CONF

my $b = Darkroom::Test->new;
$b->{db} = $db;    # the same database for both instances

$a->conf($conf, workers => 2)->start;
$b->conf($conf, workers => 2)->start;

my $n = 200;
$a->sql("INSERT INTO jobs (kind, payload) SELECT 'http_post',"
    . " jsonb_build_object('url', :'p1'::text, 'body', jsonb_build_object('i', i))"
    . " FROM generate_series(1, $n) i", $srv->url('/many'));

ok(wait_for(sub {
    $a->sql_value("SELECT count(*) FROM jobs WHERE done_at IS NULL") == 0
}, 60), "all $n jobs done");

my @r = grep { $_->{path} eq '/many' } $srv->requests;
my %keys;
$keys{$_->{headers}{'idempotency-key'}}++ for @r;
is(scalar @r, $n, "$n deliveries for $n jobs");
is(scalar(keys %keys), $n, 'each job delivered once');
is(scalar(grep { $_ > 1 } values %keys), 0, 'no job ran twice');
my %owners = map { $_->[0] => 1 }
    $a->sql("SELECT DISTINCT locked_by FROM jobs WHERE kind = 'http_post'");
ok(keys(%owners) >= 2, scalar(keys %owners) . ' workers shared the work');

$b->stop;

# SIGKILL a worker in the middle of a job: it runs again
$srv->set('/crash' => 'hang-first');
my $id = $a->sql_value("INSERT INTO jobs (kind, payload) VALUES ('http_post',"
    . " jsonb_build_object('url', :'p1'::text)) RETURNING id",
    $srv->url('/crash'));

ok(wait_for(sub { grep { $_->{path} eq '/crash' } $srv->requests }, 10),
    'job started');
my ($owner) = $a->sql_value("SELECT locked_by FROM jobs WHERE id = :'p1'", $id);
my ($pid) = $owner =~ m{^[^/]+/(\d+)};   # host/pid/start
ok($pid && kill('KILL', $pid), "worker $pid killed with SIGKILL");

ok(wait_for(sub {
    $a->sql_value("SELECT done_at IS NOT NULL FROM jobs WHERE id = :'p1'", $id)
        eq 't'
}, 45), 'the job of the killed worker ran again');
@r = grep { $_->{path} eq '/crash' } $srv->requests;
is(scalar @r, 2, 'two deliveries: the lost one and the retry');
is($r[0]{headers}{'idempotency-key'}, $r[1]{headers}{'idempotency-key'},
    'same idempotency key, so the receiver can drop the repeat');
is($a->sql_value("SELECT attempts FROM jobs WHERE id = :'p1'", $id), 2,
    'the crashed run counts as an attempt');

# a graceful quit while a job runs: it finishes and is recorded
$srv->set('/quit' => 'slow');
$id = $a->sql_value("INSERT INTO jobs (kind, payload) VALUES ('http_post',"
    . " jsonb_build_object('url', :'p1'::text)) RETURNING id",
    $srv->url('/quit'));
ok(wait_for(sub { grep { $_->{path} eq '/quit' } $srv->requests }, 10),
    'slow job started');
$a->stop('QUIT');
is($a->sql_value("SELECT done_at IS NOT NULL FROM jobs WHERE id = :'p1'", $id),
    't', 'quit waited for the running job and recorded it');
is($a->sql_value("SELECT locked_until IS NULL FROM jobs WHERE id = :'p1'", $id),
    't', 'lease released');

# a later instance does not run it again
$a->conf($conf, workers => 2)->start;
sleep 1;
is(scalar(grep { $_->{path} eq '/quit' } $srv->requests), 1,
    'not run again after restart');

done_testing;
