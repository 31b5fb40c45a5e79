#!/usr/bin/perl
# With "error_log ... debug" one request and one job can be followed end to
# end: the task's post, the provider call its thread made, the completion
# and the resume; a job's claim, its provider call and its outcome.  The
# threads never log: what they did is logged on the event loop (the line's
# tid is the worker's pid, as t/014 checks for every darkroom line).  No
# key, header value or query string of a provider call is in the log.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Darkroom::Test qw(wait_for json_encode);
use Darkroom::Stripe qw(demo_catalogue shop_conf fake_api checkout_order);

my $t = Darkroom::Test->new;
my $stripe = fake_api($t);
my $hook = $t->fake_server(name => 'hook',
    handler => sub { [200, {}, 'thanks'] });
shop_conf($t, stripe => $stripe->url);

my $conf = $t->{conf_text};
$conf =~ s/%%MAIN%%/%%MAIN%%\nerror_log %%DIR%%\/debug.log debug;/
    or die 'no %%MAIN%%';
$t->conf($conf);
demo_catalogue($t);
$t->start;

plan skip_all => 'nginx built without --with-debug'
    unless `$t->{nginx} -V 2>&1` =~ /--with-debug/;

# the trace's lines: "<tid>: *<conn> darkroom ..." in the debug log
sub darkroom_lines {
    my $log = $t->read_file('debug.log');
    return grep { /darkroom (task|jobs)/ } split /\n/, $log;
}

# one request: a checkout, which calls Stripe from its thread

my $o = checkout_order($t, 1);
ok($o->{id}, 'the checkout made an order');

my @lines = darkroom_lines();
my ($post) = grep { /darkroom task: posted "\/api\/checkout"/ } @lines;
ok($post, 'the post of the checkout task is logged') or diag join "\n", @lines;
my ($conn) = ($post // '') =~ /\*(\d+) darkroom/;
ok($conn, 'on the request\'s connection');

my @req = grep { /\*\Q$conn\E darkroom task/ } @lines;
my @want = (
    qr/darkroom task: posted "\/api\/checkout" to thread pool "\w+" as task #\d+/,
    qr{darkroom task: provider call POST http://127\.0\.0\.1:\d+/v1/checkout/sessions: 200 in \d+ ms},
    qr/darkroom task: thread work took \d+ ms after \d+ ms queued/,
    qr/darkroom task: complete "\/api\/checkout"/,
    qr/darkroom task: resume "\/api\/checkout", answer/,
);
my $i = 0;
for my $l (@req) {
    $i++ if $i < @want && $l =~ $want[$i];
}
is($i, scalar @want, 'post, provider call, complete and resume, in order')
    or diag join "\n", @req;

my @threaded = grep { /^\S+ \S+ \[\w+\] (\d+)#(\d+): / && $1 != $2 } @req;
is(scalar @threaded, 0, 'every trace line is written by the event loop');

# one job: an http_post whose URL has a query and credentials, with a
# header that is a secret

my $id = $t->sql_value("INSERT INTO jobs (kind, payload) VALUES"
    . " ('http_post', :'p1') RETURNING id", json_encode({
        url => 'http://hookuser:hookpass@127.0.0.1:' . $hook->port
            . '/deliver?token=query-secret#frag-secret',
        body => { order => 'body-secret' },
        headers => { Authorization => 'Bearer header-secret' } }));

ok(wait_for(sub { $t->sql_value("SELECT done_at IS NOT NULL FROM jobs"
    . " WHERE id = :'p1'", $id) eq 't' }, 20), 'the http_post job is done');
my @seen = $hook->requests;
is($seen[0]{headers}{authorization}, 'Bearer header-secret',
    'the hook got its header');

# the outcome is logged when the runner's run is back on the event loop
ok(wait_for(sub { grep { /job $id http_post done/ } darkroom_lines() }, 10),
    'the job\'s outcome is logged');

@lines = darkroom_lines();
my @job = grep { /darkroom jobs: (job $id |provider call|run done)/ } @lines;
@want = (
    qr/darkroom jobs: job $id http_post claimed, attempt 1\/10/,
    qr{darkroom jobs: provider call POST http://127\.0\.0\.1:\d+/deliver: 200 in \d+ ms},
    qr/darkroom jobs: job $id http_post done/,
    qr/darkroom jobs: run done, \d+ claimed/,
);
$i = 0;
for my $l (@job) {
    $i++ if $i < @want && $l =~ $want[$i];
}
is($i, scalar @want, 'claim, provider call, outcome and run done, in order')
    or diag join "\n", @job;

# what must never be in a log

my $log = $t->read_file('debug.log');
for my $secret (qw(sk_test_darkroom header-secret query-secret hookpass
                   body-secret frag-secret hookuser)) {
    unlike($log, qr/\Q$secret\E/, "no \"$secret\" in the debug log");
}

done_testing;
