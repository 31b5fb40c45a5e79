#!/usr/bin/perl
# Prometheus metrics of fulfilment: a paid order sent to two labs moves
# darkroom_lab_calls_total by lab, times each call in the lab's histogram
# (darkroom_lab_call_seconds, labelled by lab, as many as the calls), counts
# a signed asset link let in (darkroom_media_links_total) and
# the job runs by kind; promtool accepts the labelled histograms.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Darkroom::Test qw(wait_for);
use Darkroom::Stripe qw(fake_api);
use LabSandbox;
use Darkroom::Metrics;

my $promtool = Darkroom::Metrics::promtool();

my $t = Darkroom::Test->new;
my $stripe = fake_api($t);
my $lab = LabSandbox::start($t);
LabSandbox::conf($t, $stripe->url, $lab,
    http => 'darkroom_lab_poll_interval 300ms;'
          . ' darkroom_metrics_jobs_interval 1s;',
    server => 'location = /metrics { darkroom_metrics; }');
LabSandbox::mapping($t);
$t->start;

sub scrape { Darkroom::Metrics::scrape($t, '/metrics', $t->port(2)) }

my $o = LabSandbox::paid_order($t, [ ['harbour-dawn', 'giclee-a3', 1],
    ['moor-rain', 'canvas-50', 1] ]);
ok(wait_for(sub { my @l = LabSandbox::lab_orders($t, $o);
    @l == 2 && !grep { $_->[2] ne 'submitted' } @l }, 20),
    'two lab orders submitted');

my ($m, $text);
for my $l (qw(prodigi printspace)) {
    ok(wait_for(sub { ($m, $text) = scrape();
        ($m->{"darkroom_lab_calls_total{lab=\"$l\",outcome=\"ok\"}"} // 0) >= 1
    }, 20), "$l: calls counted");
    my $calls = ($m->{"darkroom_lab_calls_total{lab=\"$l\",outcome=\"ok\"}"} // 0)
        + ($m->{"darkroom_lab_calls_total{lab=\"$l\",outcome=\"error\"}"} // 0);
    is($m->{"darkroom_lab_call_seconds_count{lab=\"$l\"}"}, $calls,
        "$l: every call timed");
    is($m->{"darkroom_lab_call_seconds_bucket{lab=\"$l\",le=\"+Inf\"}"}, $calls,
        "$l: the +Inf bucket is the count");
}
# a lab fetches its asset through a signed media link
my ($po) = values %{$lab->state->{prodigi}};
my ($path) = $po->{items}[0]{assets}[0]{url} =~ m{^http://[^/]+(/.*)$};
my $links = $m->{'darkroom_media_links_total'};
is($t->http(GET => $path, { port => $t->port(2) })->{status}, 200,
    'the signed asset link answers');
($m) = scrape();
is($m->{'darkroom_media_links_total'} - $links, 1, 'one media link counted');
ok(($m->{'darkroom_job_runs_total{kind="fulfil_order",outcome="done"}'} // 0)
   >= 1, 'the fulfil job ran and is counted by kind');

# lab orders by state, read by the job queue's timer
my $want = $t->sql_value("SELECT count(*) FROM lab_orders"
    . " WHERE lab = 'prodigi' AND status = 'submitted'");
ok(wait_for(sub { ($m) = scrape();
    ($m->{'darkroom_lab_orders{lab="prodigi",state="submitted"}'} // -1)
    == $want }, 10), "lab orders by state: prodigi submitted $want");
my $all = 0;
$all += $m->{$_} for grep { /^darkroom_lab_orders\{/ } keys %$m;
ok($all >= 2, 'every lab order in some state');

($m, $text) = scrape();
$t->write_file('scrape.txt', $text);
my $out = `$promtool check metrics < ${\ $t->dir}/scrape.txt 2>&1`;
is($?, 0, 'promtool check metrics passes') or diag $out;

done_testing;
