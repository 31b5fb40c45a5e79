#!/usr/bin/perl
# Group commit while events wait behind a batch in flight (its order's
# row held by another session): a reload keeps the old worker until each
# is answered 200; PostgreSQL stopping answers every one 503 with
# Retry-After, so that Stripe delivers it again, and none is recorded.
# A Postgres cluster of its own, as in t/403.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use IO::Handle;
use Darkroom::Test qw(wait_for);
use Darkroom::Stripe qw(shop_conf event session webhook_bg);

my $t = Darkroom::Test->new;
my $pg = $t->dir . '/pg';
my $pgctl = $t->top . '/tools/darkroom-pg';

system($pgctl, 'start', $pg, 'shop') == 0 or BAIL_OUT('cannot start Postgres');
chomp(my $db = `$pgctl conninfo $pg shop`);
system($t->top . "/tools/darkroom-migrate '$db' >/dev/null") == 0
    or BAIL_OUT('migrations failed');
END { system($pgctl, 'stop', $pg) if $pg }
$t->{db} = $db;

my $secret = 'whsec_group_down';
shop_conf($t, stripe => 'http://127.0.0.1:' . $t->port(1),
    secrets => [$secret],
    http => "darkroom_jobs off;\n"
          . "    darkroom_stripe_batch 64;\n"
          . "    darkroom_stripe_batch_wait 60s;");
$t->conf($t->{conf_text} =~ s/darkroom_db_timeout 3s;/darkroom_db_timeout 60s;/r);
$t->start;

my $dir = $t->dir . '/gc';
mkdir $dir or die "$dir: $!";

sub send_bg {
    my ($name, $body) = @_;
    return webhook_bg($t, $secret, $body, "$dir/$name");
}

sub answers {
    my %n;
    for my $name (@_) {
        open my $fh, '<', "$dir/$name" or next;
        my $status = <$fh>;
        chomp $status;
        $n{$status}++;
        open my $h, '<', "$dir/$name.head" or next;
        local $/;
        $n{retry_after}++ if <$h> =~ /\r\nRetry-After: \d+(\r\n|\z)/i;
    }
    return \%n;
}

# a batch in flight, its order's row held by another session, and $n
# events queued behind it; returns the gate's psql and the children
sub gate_and_queue {
    my ($tag, $n) = @_;
    my $id = $t->sql_value("INSERT INTO orders (ref, status_token, email,"
        . " currency, total, subtotal, physical, stripe_session_id)"
        . " VALUES ('G-$tag', md5('$tag'), 'ada\@example.com', 'GBP', 4500,"
        . " 4500, true, 'cs_gate_$tag') RETURNING id");
    open my $gate, '|-', 'psql', '-X', '-q', '-d', $db or die "psql: $!";
    $gate->autoflush(1);
    print $gate "BEGIN;\nSELECT 1 FROM orders WHERE id = $id FOR UPDATE;\n";
    ok(wait_for(sub { $t->sql_value("SELECT count(*) FROM pg_stat_activity"
        . " WHERE state = 'idle in transaction'"
        . " AND query LIKE '%FOR UPDATE%'") >= 1 }, 20),
        "$tag: the gate is held");

    my @pids = send_bg("$tag-gate", event('checkout.session.completed',
        session(id => "cs_gate_$tag", order_id => $id, ref => "G-$tag",
                amount => 4500), id => "evt_${tag}_gate"));
    ok(wait_for(sub { $t->sql_value("SELECT count(*) FROM pg_stat_activity"
        . " WHERE wait_event_type = 'Lock'"
        . " AND query LIKE '%stripe_handle_events%'") >= 1 }, 30),
        "$tag: a batch is in flight");

    for my $i (1 .. $n) {
        push @pids, send_bg("$tag-$i", event('checkout.session.completed',
            session(id => "cs_${tag}_$i", order_id => 1000 + $i,
                    ref => "D-$i", amount => 4500), id => "evt_${tag}_$i"));
    }
    my @names = map { "$tag-$_" } 1 .. $n;
    ok(wait_for(sub { (grep { -e "$dir/$_.sent" } @names) == $n }, 60),
        "$tag: $n events sent");
    is((grep { -e "$dir/$_" } "$tag-gate", @names), 0,
        "$tag: none answered yet");
    return ($gate, @pids);
}

# a reload while events wait: the old worker stays until each is answered
my ($gate, @pids) = gate_and_queue('reload', 10);
my $mark = length $t->error_log;
kill 'HUP', $t->master_pid;
ok(wait_for(sub { substr($t->error_log, $mark)
    =~ /exiting worker waits for \d+ parked/ }, 30),
    'reload: the old worker waits for the queued events');
print $gate "ROLLBACK;\n";
close $gate;
my @reload = ('reload-gate', map { "reload-$_" } 1 .. 10);
ok(wait_for(sub { (grep { -e "$dir/$_" } @reload) == 11 }, 60),
    'reload: every event answered');
waitpid $_, 0 for @pids;
is(answers(@reload)->{200}, 11, 'reload: all 200');

# PostgreSQL stops
($gate, @pids) = gate_and_queue('down', 30);
my @names = ('down-gate', map { "down-$_" } 1 .. 30);
system($pgctl, 'stop', $pg);
close $gate;

ok(wait_for(sub { (grep { -e "$dir/$_" } @names) == 31 }, 90),
    'every event answered once PostgreSQL went down');
waitpid $_, 0 for @pids;

my $n = answers(@names);
is($n->{503}, 31, 'all answered 503');
is($n->{retry_after}, 31, 'with Retry-After');
like($t->error_log, qr/stripe event evt_down_\d+ not processed, answering 503/,
    'the log says Stripe will retry');

system($pgctl, 'start', $pg, 'shop') == 0 or die;
is($t->sql_value("SELECT count(*) FROM stripe_events WHERE id LIKE 'evt_down%'"),
    0, 'nothing was recorded');

done_testing;
