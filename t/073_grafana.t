#!/usr/bin/perl
# conf/grafana-darkroom.json, the Grafana dashboard we ship: valid JSON,
# every panel has a title and a query, and every darkroom_ metric a
# panel's expr names is a family a real /metrics scrape writes (a HELP
# and a TYPE line), so the dashboard cannot drift from the module.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use JSON::PP;
use Darkroom::Test;
use Darkroom::Metrics;

my $t = Darkroom::Test->new;
$t->conf(<<'EOF');
%%MAIN%%
thread_pool dr threads=2;
events {}
http {
    %%HTTP%%
    darkroom_db "%%DB%%";
    darkroom_db_pool dr;
    darkroom_jobs off;
    server {
        listen 127.0.0.1:%%PORT0%%;
        location = /metrics { darkroom_metrics; }
    }
}
EOF
$t->start;

my (undef, $text) = Darkroom::Metrics::scrape($t);
my %family = map { $_ => 1 } $text =~ /^# TYPE (\S+) /mg;
my %help = map { $_ => 1 } $text =~ /^# HELP (\S+) /mg;
ok(keys %family > 20, 'the scrape writes the families') or diag $text;

my $file = $t->top . '/conf/grafana-darkroom.json';
my $dash = eval { JSON::PP->new->decode($t->read_file($file)) };
ok($dash, 'conf/grafana-darkroom.json is JSON') or diag $@;
is($dash->{uid}, 'darkroom', 'the dashboard uid');

my (%used, @exprs);
for my $panel (@{ $dash->{panels} }) {
    ok(length $panel->{title}, "panel $panel->{id} has a title");
    my @e = map { $_->{expr} } @{ $panel->{targets} || [] };
    ok(@e && !grep({ !/\bdarkroom_\w+/ } @e),
        "panel '$panel->{title}' queries darkroom metrics");
    push @exprs, @e;
}
for my $expr (@exprs) {
    $used{$_} = 1 for $expr =~ /\b(darkroom_\w+)/g;
}
for my $m (sort keys %used) {
    my $base = $m;
    $base =~ s/_(?:bucket|sum|count)$// unless $family{$m};
    ok($family{$base} && $help{$base},
        "the dashboard's $m is a metric we write");
}

# the panels the issue asks for are there
for my $want (qw(darkroom_requests_total darkroom_task_wait_seconds_bucket
    darkroom_db_statement_seconds_bucket darkroom_stripe_webhooks_total
    darkroom_jobs_due darkroom_jobs_oldest_due_seconds
    darkroom_lab_calls_total darkroom_emails_total
    darkroom_limit_requests_total darkroom_downloads_total)) {
    ok($used{$want}, "a panel shows $want");
}

done_testing;
