#!/usr/bin/perl
# Tracing, the rest of issue 18's part: the request id in the error log
# lines of a task (written on the event loop when it completes) and of a
# job (its failed run), as request_id=<$request_id>; and the jobs a Stripe
# webhook's group commit queues, many requests in one transaction, each
# carrying its own event's request id (stripe_handle_events() sets it per
# event).  The ids come from the access log ($request_id), the batch is
# made deterministic by a gate as in t/418: another session holds the
# first event's order, so the others queue behind it into one batch.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use IO::Handle;
use JSON::PP;
use Darkroom::Test qw(wait_for);
use Darkroom::Stripe qw(demo_catalogue shop_conf fake_api event session
    webhook_bg checkout_order);

my $t = Darkroom::Test->new;
my $db = $t->db;
my $secret = 'whsec_rid_logs';
my $stripe = fake_api($t);
shop_conf($t, stripe => $stripe->url, secrets => [$secret],
    http => 'log_format rid "$uri $status $request_id $darkroom_stripe_event";'
          . ' access_log %%DIR%%/rid.log rid;'
          . ' darkroom_stripe_batch 64; darkroom_stripe_batch_wait 3s;');
(my $conf = $t->{conf_text})
    =~ s/darkroom_db_timeout 3s;/darkroom_db_timeout 60s;/ or die;
$t->conf($conf);
demo_catalogue($t);
$t->start;

# the access log: [uri, status, request id, stripe event]
sub log_lines {
    return () unless -e $t->dir . '/rid.log';
    return map { [ split / / ] } split /\n/, $t->read_file('rid.log');
}

# --- a task's error line ----------------------------------------------------
$stripe->set(fail_sessions => 100);
my $r = $t->http(POST => '/api/checkout', {
    headers => { 'Content-Type' => 'application/json' },
    content => encode_json({ email => 'ada@example.com', items => [
        { photo => 'harbour-dawn', product => 'giclee-a3', quantity => 1 } ]
    }) });
ok($r->{status} >= 500, "a checkout Stripe fails: $r->{status}");
my ($line);
wait_for(sub { ($line) = grep { $_->[0] eq '/api/checkout' } log_lines() },
    10);
my $rid = $line->[2];
like($rid, qr/^[0-9a-f]{32}$/, "its request id: $rid");
like($t->error_log, qr/\[error\] [^\n]*darkroom: [^\n]*, request_id=$rid,/,
    'the error line of its task names it');
$stripe->set(fail_sessions => 0);

# --- a job's error line -----------------------------------------------------
my $jid = $t->sql_value(q{INSERT INTO jobs (kind, payload, max_attempts,
    request_id) VALUES ('http_post', '{"url": "http://127.0.0.1:1/hook",
    "body": {}}', 1, 'feedfacefeedfacefeedfacefeedface') RETURNING id});
ok(wait_for(sub { $t->error_log =~ /http_post job $jid attempt 1\/1 failed/ },
    20), 'the job ran and failed');
like($t->error_log,
    qr/http_post job $jid attempt 1\/1 failed, job is dead: [^\n]*, request_id=feedfacefeedfacefeedfacefeedface/,
    'its error line names the request that queued it');

# --- a group commit's jobs --------------------------------------------------
my @orders = map { checkout_order($t, 1) } 1 .. 4;
my $dir = $t->dir . '/gc';
mkdir $dir or die "$dir: $!";

sub paid_event {
    my ($o, $id) = @_;
    return event('checkout.session.completed', session(id => $o->{session},
        order_id => $o->{id}, ref => $o->{ref}, amount => $o->{total}),
        id => $id);
}

# the probe: each event's transaction
$t->sql(<<'SQL');
CREATE TABLE gc_probe (id text, xact xid8);
CREATE FUNCTION gc_probe() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO gc_probe VALUES (NEW.id, pg_current_xact_id());
    RETURN NEW;
END $$;
CREATE TRIGGER gc_probe BEFORE INSERT ON stripe_events
    FOR EACH ROW EXECUTE FUNCTION gc_probe();
SQL

open my $gate, '|-', 'psql', '-X', '-q', '-d', $db or die "psql: $!";
$gate->autoflush(1);
print $gate "BEGIN;\nSELECT 1 FROM orders WHERE id = $orders[0]{id}"
    . " FOR UPDATE;\n";
ok(wait_for(sub { $t->sql_value("SELECT count(*) FROM pg_stat_activity"
    . " WHERE state = 'idle in transaction'"
    . " AND query LIKE '%FOR UPDATE%'") >= 1 }, 20), 'the gate is held');

my @pids = webhook_bg($t, $secret, paid_event($orders[0], 'evt_rid_gate'),
    "$dir/gate");
ok(wait_for(sub { $t->sql_value("SELECT count(*) FROM pg_stat_activity"
    . " WHERE wait_event_type = 'Lock'"
    . " AND query LIKE '%stripe_handle_events%'") >= 1 }, 30),
    'the first batch waits on the gate');
for my $i (1 .. 3) {
    push @pids, webhook_bg($t, $secret,
        paid_event($orders[$i], "evt_rid_$i"), "$dir/o$i");
    ok(wait_for(sub { -e "$dir/o$i.sent" }, 10), "event $i sent");
}
print $gate "ROLLBACK;\n";
close $gate;
waitpid $_, 0 for @pids;

my %rid_of = map { $_->[3] => $_->[2] }
    grep { $_->[0] eq '/webhooks/stripe' && ($_->[3] // '') =~ /^evt_rid_/ }
    log_lines();
is(scalar keys %rid_of, 4, 'four webhook requests logged with their ids');

my ($n, $xacts) = @{($t->sql("SELECT count(*), count(DISTINCT xact)"
    . " FROM gc_probe WHERE id IN ('evt_rid_1', 'evt_rid_2', 'evt_rid_3')"))[0]};
is($n, 3, 'the three queued events applied');
is($xacts, 1, 'in one transaction: one batch');

for my $i (0 .. 3) {
    my $ev = $i ? "evt_rid_$i" : 'evt_rid_gate';
    my @jobs = $t->sql("SELECT kind, coalesce(request_id, '') FROM jobs"
        . " WHERE payload->>'order_id' = :'p1'"
        . " AND kind IN ('fulfil_order', 'email') ORDER BY id",
        $orders[$i]{id});
    ok(@jobs >= 2, "$ev queued its jobs: "
        . join ',', map { $_->[0] } @jobs);
    is_deeply([ map { $_->[1] } @jobs ], [ ($rid_of{$ev}) x @jobs ],
        "each carries $ev\'s own request id");
}
isnt($rid_of{evt_rid_1}, $rid_of{evt_rid_2}, 'ids differ per request');

done_testing;
