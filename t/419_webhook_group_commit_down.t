#!/usr/bin/perl
# Group commit with PostgreSQL going down while events wait: a batch is
# in flight (its order's row held by another session), thirty events
# queue behind it, then PostgreSQL stops.  Every one of them is answered
# 503 with Retry-After, so that Stripe delivers it again, and none is
# recorded.  A Postgres cluster of its own, as in t/403.

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

# an order whose row the gate holds
my $id = $t->sql_value(<<'SQL');
INSERT INTO orders (ref, status_token, email, currency, total, subtotal,
                    physical, stripe_session_id)
VALUES ('G-1', md5('gate'), 'ada@example.com', 'GBP', 4500, 4500, true,
        'cs_gate_1')
RETURNING id;
SQL

my $dir = $t->dir . '/gc';
mkdir $dir or die "$dir: $!";

sub send_bg {
    my ($name, $body) = @_;
    return webhook_bg($t, $secret, $body, "$dir/$name");
}

open my $gate, '|-', 'psql', '-X', '-q', '-d', $db or die "psql: $!";
$gate->autoflush(1);
print $gate "BEGIN;\nSELECT 1 FROM orders WHERE id = $id FOR UPDATE;\n";
ok(wait_for(sub { $t->sql_value("SELECT count(*) FROM pg_stat_activity"
    . " WHERE state = 'idle in transaction'"
    . " AND query LIKE '%FOR UPDATE%'") >= 1 }, 20), 'the gate is held');

my @pids = send_bg('gate', event('checkout.session.completed',
    session(id => 'cs_gate_1', order_id => $id, ref => 'G-1',
            amount => 4500), id => 'evt_down_gate'));
ok(wait_for(sub { $t->sql_value("SELECT count(*) FROM pg_stat_activity"
    . " WHERE wait_event_type = 'Lock'"
    . " AND query LIKE '%stripe_handle_events%'") >= 1 }, 30),
    'a batch is in flight');

my @names = map { "e$_" } 1 .. 30;
for my $i (1 .. 30) {
    push @pids, send_bg("e$i", event('checkout.session.completed',
        session(id => "cs_down_$i", order_id => 1000 + $i, ref => "D-$i",
                amount => 4500), id => "evt_down_$i"));
}
ok(wait_for(sub { (grep { -e "$dir/$_.sent" } @names) == 30 }, 60),
    'thirty events sent');
is((grep { -e "$dir/$_" } 'gate', @names), 0, 'none answered yet');

system($pgctl, 'stop', $pg);
close $gate;

ok(wait_for(sub { (grep { -e "$dir/$_" } 'gate', @names) == 31 }, 90),
    'every event answered once PostgreSQL went down');
waitpid $_, 0 for @pids;

my ($n503, $retry) = (0, 0);
for my $name ('gate', @names) {
    open my $fh, '<', "$dir/$name" or next;
    local $/;
    my ($status, $content) = split /\n/, <$fh>, 2;
    $n503++ if $status == 503;
    open my $h, '<', "$dir/$name.head" or next;
    $retry++ if <$h> =~ /\r\nRetry-After: \d+(\r\n|\z)/i;
}
is($n503, 31, 'all answered 503');
is($retry, 31, 'with Retry-After');
like($t->error_log, qr/stripe event evt_down_\d+ not processed, answering 503/,
    'the log says Stripe will retry');

system($pgctl, 'start', $pg, 'shop') == 0 or die;
is($t->sql_value('SELECT count(*) FROM stripe_events'), 0,
    'nothing was recorded');

done_testing;
