#!/usr/bin/perl
# The last use of a code, raced: 50 checkouts in parallel (forked HTTP
# clients, released together) for a code with one use left give exactly
# one order with the code and 49 refusals, each 409 JSON code_exhausted,
# that write nothing.  No timing is asserted: cart_reserve() takes the
# code's row lock, so however the requests interleave one wins.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use JSON::PP;
use HTTP::Tiny;
use POSIX ();
use Darkroom::Test;
use Darkroom::Stripe qw(demo_catalogue shop_conf sandbox);

my $N = 50;

my $t = Darkroom::Test->new;
my $port = $t->port(0);
shop_conf($t, stripe => 'http://127.0.0.1:' . $t->port(1));
# a thread (and connection) for each client, and time to wait for locks
(my $conf = $t->{conf_text}) =~ s/darkroom_db_timeout 3s/darkroom_db_timeout 60s;
    darkroom_db_pool race/
    or die "no darkroom_db_timeout in the shop configuration\n";
$conf =~ s/^events \{\}/thread_pool race threads=64;\nevents {}/m
    or die "no events block in the shop configuration\n";
$t->conf($conf);
my $sb = sandbox($t, webhook => "http://127.0.0.1:$port/webhooks/stripe");
demo_catalogue($t);
$t->start;

my $admin = { Authorization => 'Bearer admin-token-1',
              'Content-Type' => 'application/json' };
is($t->http(POST => '/admin/api/discounts', { headers => $admin,
    content => encode_json({ code => 'LASTONE', kind => 'percent',
        percent_off => 10, max_redemptions => 3 }) })->{status}, 200,
    'a code with three uses');

# two of its three uses taken: one paid (redeemed), one pending (reserved)
for my $email (qw(first@example.com second@example.com)) {
    my $r = $t->http(POST => '/api/checkout', {
        headers => { 'Content-Type' => 'application/json' },
        content => encode_json({ email => $email, discount_code => 'LASTONE',
            items => [{ photo => 'moor-rain', product => 'digital',
                        quantity => 1 }] }) });
    is($r->{status}, 201, "a use for $email") or diag $r->{content};
}
$t->sql("UPDATE discount_redemptions SET state = 'redeemed'"
    . " WHERE email = 'first\@example.com'");
is($t->sql_value("SELECT count(*) FROM discount_redemptions"
    . " WHERE code = 'LASTONE' AND state <> 'released'"), 2, 'one use left');

my $orders0 = $t->sql_value('SELECT count(*) FROM orders');
my $dir = $t->dir;

# The window is made wide: a session of ours holds discount_redemptions
# in SHARE mode, so the first checkout stops at its reservation's INSERT
# (holding the code's row lock) and every other one waits behind it (for
# the row lock, or for the first order's row: orders are written with
# ref '' before their ref is set, and ref is UNIQUE); they go on once all
# of them are waiting.
# (its statement is cancelled at the end: psql's complaint is not shown)
my $db = $t->db;
open my $holder, '|-', "psql -X -q -d '$db' 2>/dev/null" or die "psql: $!";
$holder->autoflush(1);
print $holder "BEGIN;\nLOCK TABLE discount_redemptions IN SHARE MODE;\n"
    . "SELECT pg_sleep(600);\n";
my $blocker = "pid <> pg_backend_pid() AND query LIKE '%pg_sleep(600)%'";
ok(Darkroom::Test::wait_for(sub { $t->sql_value("SELECT count(*)"
    . " FROM pg_stat_activity WHERE $blocker") }, 30),
    'our session holds the table');

# the clients wait on a pipe; closing it lets them all go at once
pipe(my $go_r, my $go_w) or die "pipe: $!";
my @pids;
for my $i (1 .. $N) {
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        close $go_w;
        my $buf;
        sysread $go_r, $buf, 1;       # EOF: go
        my $r = HTTP::Tiny->new(timeout => 120, keep_alive => 0)->request(
            POST => "http://127.0.0.1:$port/api/checkout", {
            headers => { 'Content-Type' => 'application/json' },
            content => encode_json({ email => "racer$i\@example.com",
                discount_code => 'lastone',
                items => [{ photo => 'harbour-dawn', product => 'giclee-a3',
                            quantity => 1 }] }) });
        open my $fh, '>', "$dir/race.$i" or die;
        print $fh encode_json({ status => $r->{status},
            type => $r->{headers}{'content-type'} // '',
            body => $r->{content} // '' });
        close $fh;
        POSIX::_exit(0);
    }
    push @pids, $pid;
}
close $go_r;
close $go_w;
ok(Darkroom::Test::wait_for(sub { $t->sql_value("SELECT count(*)"
    . " FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
    . " AND query LIKE '%checkout_create_idempotent%'") >= $N }, 120),
    "all $N checkouts are in the database, waiting");
$t->sql("SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE $blocker");
close $holder;
waitpid $_, 0 for @pids;

my (%status, %codes, $json_ok);
$json_ok = 0;
for my $i (1 .. $N) {
    my $res = decode_json($t->read_file("race.$i") || '{}');
    $status{$res->{status} // 'none'}++;
    next unless ($res->{status} // 0) == 409;
    my $err = eval { decode_json($res->{body}) } || {};
    $json_ok++ if $res->{type} =~ m{^application/json}
        && ref $err->{error} eq 'HASH' && length($err->{error}{message} // '');
    $codes{$err->{error}{code} // 'none'}++;
}

is($status{201}, 1, 'exactly one checkout succeeds')
    or diag explain \%status;
is($status{409}, $N - 1, 'the others are refused with 409');
is($json_ok, $N - 1, 'each as JSON with a message');
is_deeply(\%codes, { code_exhausted => $N - 1 }, 'each code_exhausted');
is($t->sql_value('SELECT count(*) FROM orders') - $orders0, 1,
    'one order written');
is($t->sql_value("SELECT count(*) FROM orders o JOIN discount_redemptions r"
    . " ON r.order_id = o.id WHERE o.email LIKE 'racer%'"
    . " AND o.discount_code = 'LASTONE' AND r.state = 'reserved'"), 1,
    'with the code, its use reserved');
is($t->sql_value("SELECT count(*) FROM discount_redemptions"
    . " WHERE code = 'LASTONE' AND state <> 'released'"), 3,
    'the code is used exactly up');

done_testing;
