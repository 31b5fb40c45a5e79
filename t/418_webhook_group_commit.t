#!/usr/bin/perl
# Group commit of Stripe events: 200 signed events sent at once (distinct
# events over many orders, repeats of some, one that raises in SQL, a few
# clients that hang up before the answer) all come out as they would one
# by one: every good order paid once with its jobs once, repeats answered
# 200 changing nothing, the poisoned event answered 500 alone.  That they
# went in few transactions is read from PostgreSQL: a trigger the test
# installs records each event's transaction id.  Made deterministic by a
# gate: another session holds one order's row, so the batch paying it
# stays in flight and the others queue behind it into batches (of 64, or
# whatever waited 3 s); with darkroom_stripe_batch 1 the same probe sees
# one transaction per event.

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
my $secret = 'whsec_group_commit';

my $stripe = fake_api($t);

# the gate's statement waits for the held row for longer than the
# default 3 s of the shop's test configuration
sub configure {
    my ($batch, $wait, $pool, $batches) = @_;
    shop_conf($t, stripe => $stripe->url, secrets => [$secret],
        server => 'location = /nginx-status { stub_status; }',
        http => "darkroom_jobs off;\n"
              . "    darkroom_stripe_batch $batch;\n"
              . "    darkroom_stripe_batch_wait ${\($wait // '3s')};\n"
              . "    darkroom_stripe_batches ${\($batches // 2)};\n"
              . ($pool ? "    darkroom_db_pool gc;\n" : ''));
    my $conf = $t->{conf_text} =~ s/darkroom_db_timeout 3s;/darkroom_db_timeout 90s;/r;
    $conf =~ s/%%MAIN%%/%%MAIN%%\nthread_pool gc $pool;/ if $pool;
    $t->conf($conf);
}

configure(64);
demo_catalogue($t);
$t->start;

# the probe, and the poison: an event whose insert raises
$t->sql(<<'SQL');
CREATE TABLE gc_probe (id text, xact xid8);
CREATE FUNCTION gc_probe() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.id LIKE 'evt_gc_poison%' THEN
        RAISE EXCEPTION 'poisoned for the test';
    END IF;
    INSERT INTO gc_probe VALUES (NEW.id, pg_current_xact_id());
    RETURN NEW;
END $$;
CREATE TRIGGER gc_probe BEFORE INSERT ON stripe_events
    FOR EACH ROW EXECUTE FUNCTION gc_probe();
SQL

my $dir = $t->dir . '/gc';
mkdir $dir or die "$dir: $!";

sub paid_event {
    my ($o, $id) = @_;
    return event('checkout.session.completed', session(id => $o->{session},
        order_id => $o->{id}, ref => $o->{ref}, amount => $o->{total}),
        id => $id);
}

sub send_bg {
    my ($name, $body, $close) = @_;
    return webhook_bg($t, $secret, $body, "$dir/$name", close => $close);
}

sub answer {
    my ($name) = @_;
    open my $fh, '<', "$dir/$name" or return;
    local $/;
    my ($status, $content) = split /\n/, <$fh>, 2;
    return { status => $status, content => $content,
             json => eval { decode_json($content) } };
}

sub answered { scalar grep { -e "$dir/$_" } @_ }

# another session holds $o's row: a batch paying it waits, in flight
sub hold_row {
    my ($o) = @_;
    open my $gate, '|-', 'psql', '-X', '-q', '-d', $db or die "psql: $!";
    $gate->autoflush(1);
    print $gate "BEGIN;\nSELECT 1 FROM orders WHERE id = $o->{id} FOR UPDATE;\n";
    ok(wait_for(sub { $t->sql_value("SELECT count(*) FROM pg_stat_activity"
        . " WHERE state = 'idle in transaction'"
        . " AND query LIKE '%FOR UPDATE%'") >= 1 }, 20), 'the gate is held');
    return $gate;
}

sub gate_waits {
    return wait_for(sub { $t->sql_value("SELECT count(*) FROM"
        . " pg_stat_activity WHERE wait_event_type = 'Lock'"
        . " AND query LIKE '%stripe_handle_events%'") >= 1 }, 30);
}

# the orders: 150 to pay, the gate's, the poisoned event's
my @orders = map { checkout_order($t, 1) } 1 .. 150;
my $gate_order = checkout_order($t, 1);
my $poison_order = checkout_order($t, 1);

# 150 events, 49 repeats of 27 of them (22 sent three times, 5 twice),
# the poisoned one, 5 clients that hang up: 200 deliveries
my @sends;
for my $i (0 .. $#orders) {
    push @sends, { name => "o$i", id => "evt_gc_$i",
                   body => paid_event($orders[$i], "evt_gc_$i") };
}
for my $i (0 .. 26) {
    for my $k (1 .. ($i < 22 ? 2 : 1)) {
        push @sends, { name => "o$i-dup$k", id => "evt_gc_$i",
                       body => $sends[$i]{body} };
    }
}
push @sends, { name => 'poison', id => 'evt_gc_poison',
               body => paid_event($poison_order, 'evt_gc_poison') };
$_->{close} = 1 for @sends[30 .. 34];
# the sending order, deterministic and interleaved
@sends = map { $sends[($_ * 37) % @sends] } 0 .. $#sends;
is(scalar @sends, 200, '200 deliveries');

my $gate = hold_row($gate_order);
my @pids = send_bg('gate', paid_event($gate_order, 'evt_gc_gate'));
ok(gate_waits(), 'the batch paying the held order is in flight');

push @pids, send_bg($_->{name}, $_->{body}, $_->{close}) for @sends;

# the others go in batches while the gate's is in flight
my @waiting = map { $_->{name} } grep { !$_->{close} } @sends;
ok(wait_for(sub { answered(@waiting) == @waiting }, 240),
    'every other event was answered while the gate was held')
    or diag(answered(@waiting) . ' answered');
is(answer('gate'), undef, 'the gate event is not answered while held');

print $gate "ROLLBACK;\n";
close $gate;

ok(wait_for(sub { answered('gate') }, 120),
    'the gate event was answered once the gate opened');
waitpid $_, 0 for @pids;

my %by_id;
for my $s (@sends) {
    next if $s->{close};
    my $a = answer($s->{name});
    push @{$by_id{$s->{id}}}, $a;
}

my $p = delete $by_id{evt_gc_poison};
is($p->[0]{status}, 500, 'the poisoned event is answered 500');
is($p->[0]{json}{error}{code}, 'internal_error', 'with its own error');
is(answer('gate')->{status}, 200, 'the gate event 200');

my ($bad, $results) = (0, '');
for my $id (sort keys %by_id) {
    my @a = @{$by_id{$id}};
    $bad++ if grep { $_->{status} != 200 } @a;
    my @r = sort map { $_->{json}{result} // '?' } @a;
    # a hung-up client's copy may have been the one applied
    my $paid = grep { $_ eq 'paid' } @r;
    $results .= "$id: @r\n" if $paid != 1 || grep { !/^(paid|duplicate)$/ } @r;
}
is($bad, 0, 'every other event answered 200');
is($results, '', 'each event paid once, its repeats duplicates');

my @ids = map { $_->{id} } @orders;
my $list = join ',', @ids, $gate_order->{id};
is($t->sql_value("SELECT count(*) FROM orders WHERE id IN ($list)"
    . " AND status = 'paid'"), 151, 'every good order is paid');
is($t->sql_value("SELECT count(*) FROM order_events WHERE to_status = 'paid'"
    . " AND order_id IN ($list)"), 151, 'each paid once');
is($t->sql_value("SELECT count(*) FROM jobs WHERE dedupe_key IN (SELECT"
    . " unnest(ARRAY['fulfil:', 'email:receipt:']) || o FROM unnest("
    . "ARRAY[$list]) o)"), 302, 'its fulfilment and receipt jobs once each');
is($t->sql_value("SELECT count(*) FROM jobs WHERE kind = 'fulfil_order'"),
    151, 'no other fulfilment');
is($t->sql_value("SELECT status FROM orders WHERE id = :'p1'",
    $poison_order->{id}), 'pending_payment', 'the poisoned order unpaid');
is($t->sql_value("SELECT count(*) FROM stripe_events"), 151,
    'the events recorded once, the poisoned one not');

my ($events, $xacts) = @{($t->sql("SELECT count(*), count(DISTINCT xact)"
    . " FROM gc_probe WHERE id LIKE 'evt_gc_%'"))[0]};
cmp_ok($events, '>=', 151, "$events events inserted");
cmp_ok($xacts, '<=', 50, "in $xacts transactions");

# the same with darkroom_stripe_batch 1: one transaction per event
configure(1);
$t->reload;
my @more = map { checkout_order($t, 1) } 1 .. 20;
$gate = hold_row($more[0]);
@pids = send_bg('b1-gate', paid_event($more[0], 'evt_b1_gate'));
ok(gate_waits(), 'batch 1: the gate is in flight');
push @pids, send_bg("b1-$_", paid_event($more[$_], "evt_b1_$_"))
    for 1 .. $#more;
my @b1 = map { "b1-$_" } 1 .. $#more;
ok(wait_for(sub { answered(@b1) == @b1 }, 120),
    'batch 1: the others are answered while the gate is held');
print $gate "ROLLBACK;\n";
close $gate;
ok(wait_for(sub { answered('b1-gate') }, 60), 'batch 1: the gate too');
waitpid $_, 0 for @pids;
is((grep { answer($_)->{status} == 200 } 'b1-gate', @b1), 20,
    'batch 1: all 200');
is_deeply([$t->sql("SELECT count(*), count(DISTINCT xact) FROM gc_probe"
    . " WHERE id LIKE 'evt_b1_%'")], [[20, 20]],
    'batch 1: one transaction per event');

# darkroom_stripe_batches 1: with the gate's batch in flight, the other
# events wait for it, long past darkroom_stripe_batch_wait, then go
# together in one transaction
configure(64, '10ms', undef, 1);
$t->reload;
my @cap = map { checkout_order($t, 1) } 0 .. 9;
$gate = hold_row($cap[0]);
@pids = send_bg('cap-gate', paid_event($cap[0], 'evt_cap_gate'));
ok(gate_waits(), 'batches 1: the gate is in flight');
my @capped = map { "cap-$_" } 1 .. 9;
push @pids, send_bg("cap-$_", paid_event($cap[$_], "evt_cap_$_")) for 1 .. 9;
# the ten requests and this one in nginx (stub_status: Writing)
ok(wait_for(sub { ($t->http(GET => '/nginx-status')->{content} // '')
                  =~ /Writing: (\d+)/ && $1 >= 11 }, 60),
    'batches 1: the nine are in nginx');
is($t->sql_value("SELECT count(*) FROM gc_probe WHERE id LIKE 'evt_cap_%'"),
    0, 'batches 1: none applied while the gate is held');
print $gate "ROLLBACK;\n";
close $gate;
ok(wait_for(sub { answered('cap-gate', @capped) == 10 }, 60),
    'batches 1: all answered once the gate opened');
waitpid $_, 0 for @pids;
is((grep { answer($_)->{status} == 200 } 'cap-gate', @capped), 10,
    'batches 1: all 200');
is_deeply([$t->sql("SELECT count(*), count(DISTINCT xact) FROM gc_probe"
    . " WHERE id LIKE 'evt_cap_%' AND id <> 'evt_cap_gate'")], [[9, 1]],
    'batches 1: the nine in one transaction, after the gate');

# the thread pool's queue full: every event of the batch that does not
# fit is answered 503 at once, the batch queued is applied when it can
# (darkroom_stripe_batches 8: no batch held back for a slot)
configure(4, '60s', 'threads=1 max_queue=1', 8);
$t->reload;
my $full_gate = checkout_order($t, 1);
$gate = hold_row($full_gate);
@pids = send_bg('full-gate', paid_event($full_gate, 'evt_full_gate'));
ok(gate_waits(), 'pool full: the gate is in flight, its only thread busy');
my @full = map { "full-$_" } 1 .. 8;
push @pids, send_bg("full-$_", event('checkout.session.completed',
    session(id => "cs_full_$_"), id => "evt_full_$_")) for 1 .. 8;
ok(wait_for(sub { answered(@full) == 4 }, 60),
    'pool full: four answered while the gate is held');
is((grep { -e "$dir/$_" && answer($_)->{status} == 503 } @full), 4,
    'pool full: 503, the batch that did not fit');
print $gate "ROLLBACK;\n";
close $gate;
ok(wait_for(sub { answered('full-gate', @full) == 9 }, 60),
    'pool full: the others once the thread is free');
waitpid $_, 0 for @pids;
is((grep { answer($_)->{status} == 200 } 'full-gate', @full), 5,
    'pool full: the gate and the batch queued 200');
like($t->error_log, qr/thread pool "gc" queue overflow/,
    'pool full: nginx says so');

unlike($t->error_log, qr/exited on signal|\[alert\]/, 'no worker crashed');

done_testing;
