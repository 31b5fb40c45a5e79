#!/usr/bin/perl
# Prometheus metrics (darkroom_metrics): the output passes
# `promtool check metrics` (Debian's prometheus package); a scripted run
# across two workers (catalogue reads, webhooks good, duplicate,
# bad-signature and stale, a checkout, a rate-limit rejection) moves each
# counter by exactly its amount; label values are bounded names, never an
# id, key or email; non-GET/HEAD is 405; bad use of the directive fails
# nginx -t with file:line.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use JSON::PP;
use Darkroom::Test qw(wait_for);
use Darkroom::Stripe qw(signature event session demo_catalogue shop_conf
    fake_api);
use Darkroom::Metrics;

# make deps installs it; without it the test fails, it is not skipped
my $promtool = Darkroom::Metrics::promtool();

my $t = Darkroom::Test->new;
my $stripe = fake_api($t);
$t->write_file('html/limited.txt', "ok\n");
shop_conf($t, stripe => $stripe->url, secrets => ['whsec_metrics'],
    workers => 2,
    http => 'darkroom_limit_zone name=tight key=$http_x_key rate=1r/m'
          . ' burst=1 size=1m; log_format pids $pid;'
          . ' access_log %%DIR%%/pids.log pids;'
          . ' darkroom_metrics_jobs_interval 1s;',
    server => <<'LOC');
        location = /metrics { darkroom_metrics; }
        location = /limited.txt {
            root %%DIR%%/html;
            darkroom_limit zone=tight;
        }
LOC
demo_catalogue($t);
# reuseport: each worker has its own socket and the kernel spreads the
# connections (a new source port each) over both
(my $conf = $t->read_file('nginx.conf'))
    =~ s/(listen 127\.0\.0\.1:\d+)/$1 reuseport/ or die 'no listen';
$t->write_file('nginx.conf', $conf);
$t->start;

# the samples of one scrape: { 'name{labels}' => value }
sub scrape {
    my ($m, $text, $r) = Darkroom::Metrics::scrape($t);
    return ($m, $r);
}

my ($base, $r) = scrape();
is($r->{headers}{'content-type'}, 'text/plain; version=0.0.4; charset=utf-8',
    'text exposition format 0.0.4');
like($r->{content}, qr/^# HELP darkroom_requests_total .+\n# TYPE darkroom_requests_total counter$/m,
    'HELP and TYPE lines');

# a counter's move since the first scrape, once it has stopped short of
# the expected value: the log phase may count just after the answer
sub moved {
    my ($key, $want) = @_;
    my $now;
    wait_for(sub { ($now) = scrape(); ($now->{$key} // 0)
                   - ($base->{$key} // 0) >= $want }, 10);
    return ($now->{$key} // 0) - ($base->{$key} // 0);
}

sub deliver {
    my ($body, %o) = @_;
    return $t->http(POST => '/webhooks/stripe', { headers => {
        'Content-Type' => 'application/json',
        'Stripe-Signature' => signature($o{secret} // 'whsec_metrics', $body,
            $o{ts} // time) }, content => $body });
}

# --- the scripted run ------------------------------------------------------
# a job that gave up: the queue's gauges come from one worker's timer
$t->sql(q{INSERT INTO jobs (kind, dead, last_error)
          VALUES ('http_post', true, 'test')});

is($t->http(GET => '/api/catalogue')->{status}, 200, "catalogue $_")
    for 1 .. 3;

$r = $t->http(POST => '/api/checkout', {
    headers => { 'Content-Type' => 'application/json' },
    content => encode_json({ email => 'ada@example.com', items => [
        { photo => 'harbour-dawn', product => 'giclee-a3', quantity => 1 } ]
    }) });
is($r->{status}, 201, 'a checkout');
my ($order) = $t->sql("SELECT id, ref, total FROM orders WHERE ref = :'p1'",
    $r->{json}{order});
my $paid = event('checkout.session.completed', session(
    id => "cs_test_$order->[0]", order_id => $order->[0], ref => $order->[1],
    amount => $order->[2]));

is(deliver($paid, secret => 'whsec_wrong')->{status}, 400, 'bad signature');
is(deliver($paid, ts => time - 3600)->{status}, 400, 'stale timestamp');
is(deliver($paid)->{json}{result}, 'paid', 'applied');
is(deliver($paid)->{json}{result}, 'duplicate', 'duplicate');

my %limit;
for (1 .. 3) {
    my $s = $t->http(GET => '/limited.txt', { headers => { 'X-Key' => 'k' } })
        ->{status};
    $limit{$s == 200 ? 'passed' : 'rejected'}++;
}
ok($limit{rejected}, 'the limit rejected some');

my %want = (
    'darkroom_requests_total{handler="catalogue",class="2xx"}' => 3,
    'darkroom_requests_total{handler="checkout",class="2xx"}' => 1,
    'darkroom_requests_total{handler="stripe_webhook",class="2xx"}' => 2,
    'darkroom_requests_total{handler="stripe_webhook",class="4xx"}' => 2,
    'darkroom_stripe_webhooks_total{outcome="applied"}' => 1,
    'darkroom_stripe_webhooks_total{outcome="duplicate"}' => 1,
    'darkroom_stripe_webhooks_total{outcome="bad_signature"}' => 1,
    'darkroom_stripe_webhooks_total{outcome="stale"}' => 1,
    'darkroom_stripe_webhooks_total{outcome="refused"}' => 0,
    'darkroom_stripe_webhooks_total{outcome="error"}' => 0,
    'darkroom_checkouts_created_total' => 1,
    # catalogue 3, checkout 1, the 2 signed webhooks: refusals post none
    'darkroom_tasks_posted_total' => 6,
    'darkroom_task_wait_seconds_count' => 6,
    'darkroom_task_run_seconds_count' => 6,
    'darkroom_tasks_queue_full_total' => 0,
    'darkroom_db_unavailable_total' => 0,
    'darkroom_limit_requests_total{zone="tight",outcome="passed"}'
        => $limit{passed} // 0,
    'darkroom_limit_requests_total{zone="tight",outcome="rejected"}'
        => $limit{rejected},
    'darkroom_jobs_dead{kind="http_post"}' => 1,
);
for my $k (sort keys %want) {
    is(moved($k, $want{$k}), $want{$k}, "$k moved by $want{$k}");
}

my %pids = map { $_ => 1 } split /\n/, $t->read_file('pids.log');
is(scalar keys %pids, 2, 'both workers answered and their counts add up');

my ($now) = scrape();
ok($now->{darkroom_jobs_refreshed_timestamp_seconds} > time - 3600,
   'the job queue gauges were refreshed');
ok(exists $now->{'darkroom_jobs_due{kind="http_post"}'}
   && exists $now->{'darkroom_jobs_oldest_due_seconds{kind="http_post"}'},
   'every registered kind has its gauges');
ok($now->{'darkroom_db_statement_seconds_count'}
   > ($base->{'darkroom_db_statement_seconds_count'} // 0),
   'statements timed');
is($now->{'darkroom_db_statement_seconds_bucket{le="+Inf"}'},
   $now->{'darkroom_db_statement_seconds_count'}, 'count is the +Inf bucket');

# --- labels bounded --------------------------------------------------------
my %allowed = (
    handler => qr/^(?:catalogue|checkout|cart_quote|order_status|stripe_webhook|admin|lab_webhook|lab_admin|gallery|gallery_admin|download|console|bookings|bookings_admin|bookings_feed|health|metrics|other)$/,
    class => qr/^(?:[1-5]xx|none)$/,
    outcome => qr/^[a-z_]+$/,
    le => qr/^(?:[0-9.]+|\+Inf)$/,
    zone => qr/^tight$/,
    kind => qr/^[a-z0-9_]+$/,
    provider => qr/^[a-z_]+$/,
    lab => qr/^[a-z_]+$/,
);
my $bad = 0;
for my $k (keys %$now) {
    my ($labels) = $k =~ /\{(.*)\}/ or next;
    for my $l (split /,/, $labels) {
        my ($n, $v) = $l =~ /^(\w+)="(.*)"$/;
        unless ($n && $allowed{$n} && $v =~ $allowed{$n}) {
            diag("unbounded label: $k");
            $bad++;
        }
    }
}
is($bad, 0, 'every label is a bounded name');
unlike(join("\n", keys %$now), qr/ada\@|cs_test|evt_|\Q$order->[1]\E/,
    'no email, session, event or order in the output');

# --- promtool --------------------------------------------------------------
$t->write_file('scrape.txt', $t->http(GET => '/metrics')->{content});
my $out = `$promtool check metrics < ${\ $t->dir}/scrape.txt 2>&1`;
is($?, 0, 'promtool check metrics passes') or diag $out;

# the alert rules we ship read these metrics and are valid rules
$out = `$promtool check rules ${\ $t->top}/conf/prometheus-alerts.yml 2>&1`;
is($?, 0, 'promtool check rules passes on conf/prometheus-alerts.yml')
    or diag $out;
my $rules = $t->read_file($t->top . '/conf/prometheus-alerts.yml');
my %family = map { $_ => 1 }
    $t->read_file('scrape.txt') =~ /^# TYPE (\S+) /mg;
my $exprs = join ' ', $rules =~ /\bexpr:(.*?)\n\s+(?:for|labels):/sg;
for my $m (sort keys %{{ map { $_ => 1 } $exprs =~ /\b(darkroom_\w+)/g }}) {
    (my $base = $m) =~ s/_bucket$//;
    ok($family{$base}, "the rules' $m is a metric we write");
}

# --- methods ---------------------------------------------------------------
is($t->http(POST => '/metrics', { content => 'x' })->{status}, 405,
    'POST is 405');
is($t->http(HEAD => '/metrics')->{status}, 200, 'HEAD is 200');

# --- configuration ---------------------------------------------------------
my $good = $t->read_file('nginx.conf');
for my $case (
    [ 'location = /metrics { darkroom_metrics; }',
      'location = /metrics { darkroom_metrics on; }',
      'invalid number of arguments in "darkroom_metrics" directive' ],
    [ 'location = /metrics { darkroom_metrics; }',
      'darkroom_metrics; location = /metrics { darkroom_metrics; }',
      '"darkroom_metrics" directive is not allowed here' ],
    [ 'location = /metrics { darkroom_metrics; }',
      'location = /metrics { darkroom_metrics; darkroom_health; }',
      '"darkroom_health" conflicts with another content handler' ],
    [ 'location = /metrics { darkroom_metrics; }',
      'location = /metrics { darkroom_health; darkroom_metrics; }',
      '"darkroom_metrics" conflicts with another content handler' ],
    [ 'darkroom_metrics_jobs_interval 1s;',
      'darkroom_metrics_jobs_interval 500ms;',
      'invalid interval "500ms", it must be a time from 1s to 1d' ],
    [ 'darkroom_metrics_jobs_interval 1s;',
      'darkroom_metrics_jobs_interval soon;', 'invalid interval "soon"' ],
    [ 'darkroom_metrics_jobs_interval 1s;',
      'darkroom_metrics_jobs_interval 1s 2s;',
      'invalid number of arguments in "darkroom_metrics_jobs_interval"' ],
) {
    my ($from, $to, $want) = @$case;
    (my $conf = $good) =~ s/\Q$from\E/$to/ or die "no $from";
    $t->write_file('nginx.conf', $conf);
    my ($ok, $msg) = $t->test_conf;
    ok(!$ok, "refused: $to");
    like($msg, qr/\Q$want\E.* in \S+nginx\.conf:\d+/, "$want, with file:line")
        or diag $msg;
}
$t->write_file('nginx.conf', $good);

# --- a reload keeps the zone, and with it the counts ------------------------
my $key = 'darkroom_requests_total{handler="catalogue",class="2xx"}';
my ($before) = scrape();
$t->reload;
my ($after) = scrape();
is($after->{$key}, $before->{$key}, 'a reload keeps the counts');

done_testing;
