#!/usr/bin/perl
# PostgreSQL failover under traffic.  A primary and a synchronous streaming
# standby on this machine (t/lib/Darkroom/PgPair.pm), darkroom on the
# multi-host conninfo "host=<pg1>,<pg2> ... target_session_attrs=read-write",
# checkouts paid through the Stripe sandbox (signed webhooks, retried on
# anything but 2xx as Stripe does), receipts sent by the email job through
# the mail sandbox (Resend, idempotency keys) and http_post jobs to a sink.
# Mid-traffic the primary is stopped in immediate mode and the standby
# promoted.  Then: every order a client was given is there and paid once,
# every event Stripe got 200 for is recorded once, the events answered 503
# while no primary was up are recorded once after the retries, every job
# ran and no side effect was made twice.  Last, the new primary fenced
# read-only (default_transaction_read_only): a write meets SQLSTATE 25006,
# is answered 503 with Retry-After, and the connection is dropped, not
# kept; unfenced, darkroom carries on with a new connection.  And a first
# host that accepts and never answers costs connect_timeout, not the
# whole darkroom_db_timeout.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use JSON::PP;
use IO::Socket::IP;
use POSIX ();
use Time::HiRes qw(sleep time);
use Darkroom::Test qw(wait_for);
use Darkroom::Stripe qw(demo_catalogue shop_conf sandbox);
use Darkroom::Mail ();
use Darkroom::PgPair;

# stopped from outside, the END blocks still stop nginx and the clusters
$SIG{TERM} = $SIG{INT} = sub { exit 1 };

my $t = Darkroom::Test->new;
my $pg = Darkroom::PgPair->new($t);
my $conninfo = $pg->conninfo;
$t->{db} = $conninfo;
my $top = $t->top;
my $out = `$top/tools/darkroom-migrate '$conninfo' 2>&1`;
BAIL_OUT("migrations failed:\n$out") if $?;

my $port = $t->port(0);
my $mail = Darkroom::Mail::sandbox($t);
# the jobs written before the failover are slow, so that some are running
# or waiting when the primary goes
my $sink = $t->fake_server(name => 'sink', handler => sub {
    [200, {}, 'ok', $_[0]{path} eq '/before' ? 0.2 : 0.02] });

# a lease short enough that a claim whose commit answer was lost in the
# failover (the claim on the new primary, the runner unaware) comes back
# within the test, long against the sink's 20 ms
shop_conf($t, stripe => 'http://127.0.0.1:' . $t->port(1),
    secrets => ['whsec_failover'], workers => 2,
    http => Darkroom::Mail::mail_conf($t, $mail, 'resend')
        . "    darkroom_mail_order_url"
        . " \"https://shop.example/order.html?token={ORDER_TOKEN}\";\n"
        . "    darkroom_jobs_lease 10s;\n");
my $sb = sandbox($t, webhook => "http://127.0.0.1:$port/webhooks/stripe");
demo_catalogue($t);
$t->start;

sub checkout {
    my ($t, $key) = @_;
    return $t->http(POST => '/api/checkout', {
        headers => { 'Content-Type' => 'application/json',
                     'Idempotency-Key' => $key },
        content => encode_json({ email => 'ada@example.com', items => [
            { photo => 'harbour-dawn', product => 'giclee-a3',
              quantity => 1 } ] }) });
}

# the client's side: the same key again on 5xx or 409 until it is answered
sub checkout_retried {
    my ($t, $key) = @_;
    my $end = time + 120;
    my @seen;
    while (time < $end) {
        my $r = checkout($t, $key);
        push @seen, $r->{status};
        return ($r, @seen) if $r->{status} == 201 || $r->{status} == 200;
        return ($r, @seen) unless $r->{status} >= 500 || $r->{status} == 409;
        sleep 0.2;
    }
    return (undef, @seen);
}

sub session_of { ($_[0]{json}{checkout_url} // '') =~ m{/pay/(cs_\w+)$} }

sub pay { $sb->control(POST => "/_sandbox/pay/$_[0]", { action => 'pay' }) }

sub http_jobs {
    my ($path, $n) = @_;
    $t->sql("INSERT INTO jobs (kind, payload) SELECT 'http_post',"
        . " jsonb_build_object('url', :'p1'::text, 'body',"
        . " jsonb_build_object('i', i)) FROM generate_series(1, $n) i",
        $sink->url($path));
}

sub traffic_lines {
    my @l = split /\n/, $t->read_file('traffic.log');
    return grep { /^ok / } @l;
}

# --- traffic: a client checking out and paying, one order after another ----

http_jobs('/before', 160);

# three clients, each checking out and paying one order after another
my @clients;
for (1 .. 3) {
    my $child = fork // die "fork: $!";
    if (!$child) {
        $SIG{TERM} = $SIG{INT} = 'DEFAULT';   # never the parent's END blocks
        my $dir = $t->dir;
        for (my $i = 1; !-e "$dir/traffic.stop"; $i++) {
            my ($r, @seen) = checkout_retried($t, "traffic-$$-$i");
            open my $fh, '>>', "$dir/traffic.log" or POSIX::_exit(1);
            if ($r && (my ($sid) = session_of($r))) {
                pay($sid);
                print $fh "ok traffic-$$-$i $r->{json}{order} $sid @seen\n";
            } else {
                print $fh "failed traffic-$$-$i @seen\n";
            }
            close $fh;
        }
        POSIX::_exit(0);
    }
    push @clients, $child;
}

ok(wait_for(sub { traffic_lines() >= 6 }, 120), 'orders paid before');

# an order paid only while no primary is up: its webhook meets a 503
my ($held) = checkout_retried($t, 'held-order-1');
my ($held_sid) = session_of($held);
ok($held_sid, 'an order to pay during the outage');

# --- the primary dies mid-traffic --------------------------------------------

my $before = traffic_lines();
ok(wait_for(sub { $sink->requests }, 60), 'jobs running');
my $pending = $pg->psql(1, "SELECT count(*) FROM jobs"
    . " WHERE kind = 'http_post' AND done_at IS NULL");
$pg->stop(1, 'immediate');
note("$pending http_post jobs not done yet");
note("primary stopped (immediate) after $before orders");

my $r;
ok(wait_for(sub {
    $r = checkout($t, 'outage-order-1');
    $r->{status} == 503 }, 30),
    'a checkout without a primary: 503')
    or diag explain $r;
is($r->{json}{error}{code}, 'db_unavailable', 'db_unavailable');
ok($r->{headers}{'retry-after'}, 'with Retry-After');

pay($held_sid);
sub deliveries_of {
    my ($sid) = @_;
    return () unless defined $sid;
    my ($ev) = grep { ($_->{object_id} // '') eq $sid
                      && $_->{type} eq 'checkout.session.completed' }
        @{ $sb->control(GET => '/_sandbox/events') };
    return $ev ? @{ $ev->{deliveries} || [] } : ();
}
ok(wait_for(sub { grep { $_->{status} == 503 } deliveries_of($held_sid) },
    60), 'its payment event answered 503 while no primary is up');

# --- the standby is promoted ------------------------------------------------

$pg->promote(2);
note("standby promoted");

ok(wait_for(sub { eval { http_jobs('/after', 40); 1 } }, 60),
    'jobs written on the new primary');

my ($outage, @seen) = checkout_retried($t, 'outage-order-1');
ok($outage && $outage->{status} =~ /^20[01]$/,
    'the checkout refused during the outage goes through when retried')
    or diag "@seen";
pay(session_of($outage)) if $outage;

ok(wait_for(sub { traffic_lines() >= $before + 6 }, 180),
    'orders paid after the promotion');
$t->write_file('traffic.stop', '');
waitpid $_, 0 for @clients;

my @lines = split /\n/, $t->read_file('traffic.log');
my @failed = grep { !/^ok / } @lines;
is(scalar @failed, 0, 'every checkout of the client was answered in time')
    or diag explain \@failed;
my @orders = map { (split ' ')[2] } traffic_lines();
push @orders, $held->{json}{order}, $outage ? $outage->{json}{order} : ();
my @keys = ((map { (split ' ')[1] } @lines), 'held-order-1', 'outage-order-1');
my $retried = grep { / 5\d\d/ } @lines;
diag(scalar(@orders) . " orders, $retried of the clients' retried after a"
    . ' 5xx');

# --- everything settles on the new primary ----------------------------------

my @events;
ok(wait_for(sub {
    @events = @{ $sb->control(GET => '/_sandbox/events') };
    !grep { !$_->{delivered} } @events;
}, 180), 'Stripe has a 2xx for every event');

my $list = join ',', @orders;
ok(wait_for(sub { $t->sql_value("SELECT count(*) FROM orders"
    . " WHERE ref = ANY (string_to_array(:'p1', ',')) AND status = 'paid'",
    $list) == @orders }, 120), 'every order a client was given is paid')
    or diag explain [ $t->sql("SELECT ref, status FROM orders"
        . " WHERE status <> 'paid'") ];

is($t->sql_value('SELECT count(*) FROM orders'), scalar @keys,
    'one order per idempotency key: none lost, none doubled');
is($t->sql_value("SELECT count(*) FROM (SELECT order_id FROM order_events"
    . " WHERE to_status = 'paid' GROUP BY order_id HAVING count(*) > 1) x"),
    0, 'no order paid twice');

my @ok_ids = map { $_->{id} } @events;
is($t->sql_value("SELECT count(*) FROM stripe_events"
    . " WHERE id = ANY (string_to_array(:'p1', ','))", join ',', @ok_ids),
    scalar @ok_ids, 'every event Stripe got 200 for is recorded');
my @retried = grep { my $e = $_; grep { $_->{status} >= 500 }
    @{ $e->{deliveries} } } @events;
ok(@retried >= 1, scalar(@retried) . ' event(s) answered 5xx, then retried');
is($t->sql_value("SELECT count(*) FROM stripe_events"
    . " WHERE id = ANY (string_to_array(:'p1', ','))",
    join ',', map { $_->{id} } @retried), scalar @retried,
    'and recorded once');
is($t->sql_value("SELECT count(*) FROM stripe_events"
    . " WHERE result = 'paid'"), scalar @orders,
    'one paying event applied per order');

ok(wait_for(sub { $t->sql_value("SELECT count(*) FROM jobs WHERE done_at IS"
    . " NULL AND kind IN ('http_post', 'email')") == 0 }, 180),
    'every job done')
    or diag explain [ $t->sql("SELECT id, kind, attempts, last_error,"
        . " locked_until FROM jobs WHERE done_at IS NULL"
        . " AND kind IN ('http_post', 'email')") ];

my %sent;
$sent{ $_->{headers}{'idempotency-key'} // '' }++ for $sink->requests;
my $http_jobs = $t->sql_value("SELECT count(*) FROM jobs"
    . " WHERE kind = 'http_post'");
is($http_jobs, 200, '200 http_post jobs');
is(scalar(keys %sent), $http_jobs, 'each delivered to the sink');
is(scalar(grep { $_ > 1 } values %sent), 0, 'none delivered twice');

my $emails = $t->sql_value("SELECT count(*) FROM jobs WHERE kind = 'email'");
is($emails, scalar @orders, 'one receipt job per order');
my @msgs = $mail->messages;
my %mkeys;
$mkeys{ $_->{idempotency_key} }++ for @msgs;
is(scalar @msgs, $emails, 'one message sent per receipt job');
is(scalar(grep { $_ > 1 } values %mkeys), 0, 'none under the same key twice');

is(scalar $t->sql('SELECT * FROM money_invariant_violations()'), 0,
    'the money invariants hold');

# --- the new primary fenced read-only: 25006, the connection dropped --------

$t->stop;

my $f = Darkroom::Test->new;
$f->{db} = $conninfo;
shop_conf($f, stripe => $sb->url, secrets => ['whsec_failover'],
    http => "    darkroom_db_pool one;\n    darkroom_jobs off;\n");
my $one = $f->{conf_text};
$one =~ s/%%MAIN%%/%%MAIN%%\nthread_pool one threads=1;/;
$f->conf($one)->start;

sub darkroom_pids {
    my $p = $pg->psql(2, "SELECT string_agg(pid::text, ',') FROM"
        . " pg_stat_activity WHERE application_name = 'darkroom'") // '';
    return grep { length } split /,/, $p;
}

$r = checkout($f, 'fence-order-1');
is($r->{status}, 201, 'a second nginx on the same conninfo');
my @pids = darkroom_pids();
is(scalar @pids, 1, 'its one thread holds one connection');

$pg->psql(2, 'ALTER SYSTEM SET default_transaction_read_only = on');
$pg->psql(2, 'SELECT pg_reload_conf()');
ok(wait_for(sub { ($pg->psql(2, 'SHOW default_transaction_read_only') // '')
    eq 'on' }, 30), 'the new primary fenced read-only');

# counted on the server itself: psql's read-write check refuses it too
my $count = $pg->psql(2, 'SELECT count(*) FROM orders');
$r = checkout($f, 'fence-order-2');
is($r->{status}, 503, 'a write on the read-only server: 503');
is($r->{json}{error}{code}, 'db_unavailable', 'db_unavailable');
ok($r->{headers}{'retry-after'}, 'with Retry-After');
like($f->error_log, qr/read-only transaction/, 'SQLSTATE 25006 in the log');

$r = checkout($f, 'fence-order-2');
is($r->{status}, 503, 'no read-write server to connect to: 503 again');
ok(wait_for(sub { !grep { $_ eq $pids[0] } darkroom_pids() }, 30),
    'the connection that met the read-only server was closed');
is($pg->psql(2, 'SELECT count(*) FROM orders'), $count, 'nothing written');

$pg->psql(2, 'ALTER SYSTEM RESET default_transaction_read_only');
$pg->psql(2, 'SELECT pg_reload_conf()');
ok(wait_for(sub { checkout($f, 'fence-order-2')->{status} == 201 }, 30),
    'unfenced: the retried checkout goes through');
my @now = darkroom_pids();
ok(@now == 1 && $now[0] ne $pids[0], 'on a new connection');

$f->stop;

# --- a first host that accepts and never answers: connect_timeout bounds it --
# (libpq's asynchronous connect ignores connect_timeout; darkroom tries
# each host of such a conninfo on its own, within it)

my $silent = IO::Socket::IP->new(LocalAddr => '127.0.0.1', LocalPort => 0,
    Proto => 'tcp', Listen => 16) or die "listen: $!";
my $h = Darkroom::Test->new;
$h->{db} = 'host=127.0.0.1,' . $pg->sock(1) . ',' . $pg->sock(2)
    . ' port=' . $silent->sockport . ',5432,5432 dbname=darkroom'
    . ' user=darkroom target_session_attrs=read-write connect_timeout=2';
shop_conf($h, stripe => $sb->url, secrets => ['whsec_failover'],
    http => "    darkroom_db_pool one;\n    darkroom_jobs off;\n");
($one = $h->{conf_text}) =~ s/%%MAIN%%/%%MAIN%%\nthread_pool one threads=1;/;
$one =~ s/darkroom_db_timeout 3s/darkroom_db_timeout 30s/;
$h->conf($one)->start;
$r = checkout($h, 'silent-order-1');
is($r->{status}, 201, 'a first host that never answers is left after'
    . ' connect_timeout for the next') or diag $r->{content};
$h->stop;
close $silent;

$pg->stop_all;

done_testing;
