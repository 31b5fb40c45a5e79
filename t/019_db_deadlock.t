#!/usr/bin/perl
# A statement that is its own transaction and loses a deadlock changed
# nothing, so darkroom runs it again instead of answering 503.  Made
# deterministic: another session holds the order's row, the webhook's
# stripe_handle_event() inserts its event and waits for that row, then the
# other session inserts the same event id: a cycle.  darkroom's sessions
# check for deadlocks after 2 s (their statements time out after 3 s),
# the other after 60 s, so the webhook's
# statement is always the one PostgreSQL aborts.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use IO::Handle;
use POSIX ();
use JSON::PP;
use Darkroom::Test qw(wait_for);
use Darkroom::Stripe qw(demo_catalogue shop_conf fake_api event session
    signature checkout_order);

my $t = Darkroom::Test->new;
my $db = $t->db;
my $su = "host=$t->{pgdir}/sock dbname=$t->{dbname} user=postgres";

system('psql', '-X', '-q', '-d', $su, '-c',
    "ALTER DATABASE $t->{dbname} SET deadlock_timeout = '2s'") == 0
    or BAIL_OUT('cannot set deadlock_timeout');

my $stripe = fake_api($t);
shop_conf($t, stripe => $stripe->url, secrets => ['whsec_deadlock']);
demo_catalogue($t);
$t->start;

my $o = checkout_order($t, 1);
my $id = 'evt_deadlock_' . $$;
my $body = event('checkout.session.completed', session(id => $o->{session},
    order_id => $o->{id}, ref => $o->{ref}, amount => $o->{total}),
    id => $id);

# the other session: holds the order's row
open my $other, '|-', 'psql', '-X', '-q', '-d', $su
    or die "psql: $!";
$other->autoflush(1);
print $other "SET deadlock_timeout = '60s';\n"
    . "BEGIN;\n"
    . "UPDATE orders SET email = email WHERE id = $o->{id};\n";

ok(wait_for(sub {
    $t->sql_value("SELECT count(*) FROM pg_locks WHERE locktype = 'transactionid'"
        . " AND mode = 'ExclusiveLock'") >= 1 }, 10), 'the row is held');

# the webhook, from a child: it inserts the event, then waits for the row
my $out = $t->dir . '/webhook.status';
my $pid = fork // die "fork: $!";
if ($pid == 0) {
    my $r = $t->http(POST => '/webhooks/stripe', { headers => {
        'Content-Type' => 'application/json',
        'Stripe-Signature' => signature('whsec_deadlock', $body) },
        content => $body });
    # _exit: the parent's END blocks (nginx, the database) are not ours
    open my $fh, '>', "$out.tmp" or POSIX::_exit(1);
    print $fh "$r->{status}\n";
    close $fh;
    rename "$out.tmp", $out;
    POSIX::_exit(0);
}

ok(wait_for(sub {
    $t->sql_value("SELECT count(*) FROM pg_stat_activity"
        . " WHERE wait_event_type = 'Lock' AND query LIKE '%stripe_handle_event%'")
        >= 1 }, 20), 'the webhook waits for the held row');

my $deadlocks = $t->sql_value("SELECT deadlocks FROM pg_stat_database"
    . " WHERE datname = current_database()");

# close the cycle: this waits for the webhook's event row, PostgreSQL
# aborts the webhook's statement, darkroom runs it again, and it waits for
# this session, which then rolls back so the event is the webhook's to keep
print $other "INSERT INTO stripe_events (id, type, result, payload)"
    . " VALUES ('$id', 'checkout.session.completed', 'held', '{}')"
    . " ON CONFLICT DO NOTHING;\n"
    . "ROLLBACK;\n";
close $other;

ok(wait_for(sub { -e $out }, 60), 'the webhook answered');
waitpid $pid, 0;
open my $fh, '<', $out or die "$out: $!";
chomp(my $status = <$fh> // '');
close $fh;

cmp_ok($t->sql_value("SELECT deadlocks FROM pg_stat_database"
    . " WHERE datname = current_database()"), '>', $deadlocks,
    'PostgreSQL saw the deadlock');
is($status, 200, 'the webhook answered 200: its statement ran again');
is($t->sql_value("SELECT status FROM orders WHERE id = :'p1'", $o->{id}),
    'paid', 'and the order is paid, once');
is($t->sql_value("SELECT count(*) FROM stripe_events WHERE id = :'p1'", $id),
    1, 'the event recorded once');

done_testing;
