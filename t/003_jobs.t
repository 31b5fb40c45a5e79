#!/usr/bin/perl
# Background jobs: delivery, retries with growing delays, dead after
# max_attempts, permanent failures, Retry-After, outbox deduplication.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Darkroom::Test qw(wait_for json_encode);

my $t = Darkroom::Test->new;

my $srv = $t->fake_server(handler => sub {
    my ($req, $state) = @_;
    my $mode = $state->{$req->{path}} // 'ok';
    return [200, {}, 'thanks'] if $mode eq 'ok';
    return [500, {}, 'down'] if $mode eq 'fail';
    return [422, {}, 'never'] if $mode eq 'reject';
    if ($mode eq 'flaky') {
        return $req->{n_path} <= 2 ? [503, {}, 'busy'] : [200, {}, 'ok'];
    }
    if ($mode eq 'limited') {
        return $req->{n_path} <= 1 ? [429, { 'Retry-After' => 2 }, 'slow down']
                                   : [200, {}, 'ok'];
    }
    return [200, {}, ''];
}, name => 'jobsrv');

$srv->set('/fail' => 'fail', '/reject' => 'reject', '/flaky' => 'flaky',
    '/limited' => 'limited');

$t->conf(<<'CONF');
%%MAIN%%
events {}
http {
    %%HTTP%%
    darkroom_db "%%DB%%";
    darkroom_jobs_interval 50ms;
    darkroom_jobs_backoff 300ms 20s;
    server {
        listen 127.0.0.1:%%PORT0%%;
        location = /health { darkroom_health; }
    }
}
CONF
$t->start;

sub enqueue {
    my ($path, %opts) = @_;
    my $payload = json_encode({ url => $srv->url($path),
        body => { hello => 'world', path => $path },
        headers => { 'X-Shop' => 'darkroom-test' } });
    return $t->sql_value(
        "INSERT INTO jobs (kind, payload, max_attempts)"
        . " VALUES ('http_post', :'p1', :'p2') RETURNING id",
        $payload, $opts{max} // 10);
}

sub job {
    my ($id) = @_;
    my ($row) = $t->sql("SELECT attempts, dead, done_at IS NOT NULL,"
        . " coalesce(last_error, '') FROM jobs WHERE id = :'p1'", $id);
    return { attempts => $row->[0], dead => $row->[1] eq 't',
        done => $row->[2] eq 't', error => $row->[3] };
}

sub reqs { my ($p) = @_; grep { $_->{path} eq $p } $srv->requests }

# delivered once, with what the receiver needs
my $ok = enqueue('/ok');
ok(wait_for(sub { job($ok)->{done} }, 10), 'job done');
my @r = reqs('/ok');
is(scalar @r, 1, 'delivered exactly once');
is($r[0]{method}, 'POST', 'POST');
is($r[0]{headers}{'idempotency-key'}, "darkroom-job-$ok",
    'Idempotency-Key names the job');
is($r[0]{headers}{'content-type'}, 'application/json', 'JSON content type');
is($r[0]{headers}{'x-shop'}, 'darkroom-test', 'payload headers sent');
is_deeply(Darkroom::Test::json_decode($r[0]{body}),
    { hello => 'world', path => '/ok' }, 'payload body sent');
is(job($ok)->{attempts}, 1, 'one attempt');

# always failing: retried with growing delays, then dead
my $fail = enqueue('/fail', max => 4);
ok(wait_for(sub { job($fail)->{dead} }, 20), 'failing job ends dead');
@r = reqs('/fail');
is(scalar @r, 4, 'tried max_attempts times');
my @gaps = map { $r[$_]{time} - $r[$_ - 1]{time} } 1 .. $#r;
ok($gaps[0] >= 0.3, sprintf('first retry after the base delay (%.2fs)',
    $gaps[0]));
ok($gaps[1] > $gaps[0] && $gaps[2] > $gaps[1],
    sprintf('delays grow: %s', join ' ', map { sprintf '%.2f', $_ } @gaps));
like(job($fail)->{error}, qr/answered 500/, 'last error recorded');
is(job($fail)->{attempts}, 4, 'attempts counted');
like($t->error_log, qr/http_post job $fail attempt 4\/4 failed, job is dead/,
    'death logged');

# transient failures then success: done after the third attempt
my $flaky = enqueue('/flaky');
ok(wait_for(sub { job($flaky)->{done} }, 15), 'flaky job done');
is(scalar(reqs('/flaky')), 3, 'two failures, one success');
is(job($flaky)->{error}, '', 'error cleared once done');

# a client error that can never succeed: dead at once, no retry storm
my $rej = enqueue('/reject');
ok(wait_for(sub { job($rej)->{dead} }, 10), 'rejected job dead');
sleep 1;
is(scalar(reqs('/reject')), 1, 'not retried');
like(job($rej)->{error}, qr/answered 422/, 'reason kept');

# 429 with Retry-After: the next attempt waits at least that long
my $lim = enqueue('/limited');
ok(wait_for(sub { job($lim)->{done} }, 15), 'rate-limited job done');
@r = reqs('/limited');
is(scalar @r, 2, 'retried once');
ok($r[1]{time} - $r[0]{time} >= 2,
    sprintf('Retry-After honoured (%.2fs)', $r[1]{time} - $r[0]{time}));

# a kind this build does not know waits for one that does; never dies here
my $unk = $t->sql_value("INSERT INTO jobs (kind) VALUES ('no_such_kind')"
    . " RETURNING id");
sleep 1;
is_deeply(job($unk), { attempts => 0, dead => '', done => '', error => '' },
    'unknown kind left alone');
my $bad = $t->sql_value("INSERT INTO jobs (kind, payload)"
    . " VALUES ('http_post', '{\"url\":\"file:///etc/passwd\"}') RETURNING id");
ok(wait_for(sub { job($bad)->{dead} }, 10), 'non-http url refused');

# the outbox: one dedupe key, one job
$t->sql("INSERT INTO jobs (kind, dedupe_key) VALUES ('x', 'k1')"
    . " ON CONFLICT (dedupe_key) DO NOTHING") for 1 .. 2;
is($t->sql_value("SELECT count(*) FROM jobs WHERE dedupe_key = 'k1'"), 1,
    'dedupe key keeps one job');

is($t->sql_value("SELECT count(*) FROM jobs WHERE dedupe_key LIKE 'recurring:%'"),
    0, 'no recurring job rows for features this nginx does not run');

my $h = $t->http(GET => '/health');
ok($h->{json}{jobs}{dead} >= 3, 'health counts dead jobs');
ok($h->{json}{jobs}{due} >= 1, 'and due ones');

done_testing;
