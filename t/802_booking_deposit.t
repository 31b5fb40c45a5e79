#!/usr/bin/perl
# Bookings: the deposit paid.  The signed checkout.session.completed of a
# hold's deposit order confirms the booking and queues its
# booking_confirmed email once (a replay, or another event of the same
# payment, changes nothing); a late deposit for an expired hold whose time
# is still free confirms it; one whose time was taken stays expired and
# its deposit goes back: a stripe_refund job with an idempotency key,
# which calls Stripe's refund endpoint once, recorded in booking_events;
# a deposit paid after the owner cancelled the hold goes back too;
# Stripe's checkout.session.expired releases the hold.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use JSON::PP;
use Darkroom::Test qw(wait_for);
use Darkroom::Stripe qw(fake_api form_of webhook event session);
use Darkroom::Bookings qw(bookings_conf bookings_demo);

my $t = Darkroom::Test->new;
my $stripe = fake_api($t);
bookings_conf($t, stripe => $stripe->url);
bookings_demo($t);
$t->start;

my %ok = (type => 'portrait', name => 'Ada Client',
          email => 'ada@example.com', answers => { who => 'Ada' });

sub book {
    my ($start, %o) = @_;
    my $r = $t->http(POST => '/api/bookings/book', {
        headers => { 'Content-Type' => 'application/json' },
        content => encode_json({ %ok, start => $start, %o }) });
    is($r->{status}, 201, "booked $start") or diag $r->{content};
    my $b = $r->{json}{booking};
    my ($row) = $t->sql("SELECT b.id, o.id, o.ref, o.total FROM bookings b"
        . " JOIN orders o ON o.id = b.deposit_order_id WHERE b.ref = :'p1'",
        $b->{ref});
    return { %$b, id => $row->[0], order => $row->[1], oref => $row->[2],
             total => $row->[3] };
}
sub paid_event {
    my ($b, %o) = @_;
    return event('checkout.session.completed', session(
        id => "cs_test_$b->{order}", order_id => $b->{order},
        ref => $b->{oref}, amount => $b->{total}), %o);
}
sub pay {
    my ($body) = @_;
    my $r = webhook($t, 'whsec_test_one', $body);
    is($r->{status}, 200, 'webhook accepted') or diag $r->{content};
}
sub state { $t->sql_value("SELECT state FROM bookings WHERE id = :'p1'",
    $_[0]{id}) }
sub confirm_jobs { $t->sql_value("SELECT count(*) FROM jobs WHERE kind ="
    . " 'email' AND payload->>'template' = 'booking_confirmed'"
    . " AND payload->>'booking_id' = :'p1'", $_[0]{id}) }
sub refunds { grep { $_->{path} eq '/v1/refunds' } $stripe->requests }

# --- paid in time: confirmed, one email ---------------------------------------
my $a = book('2027-03-06T10:00:00Z');
my $evt = paid_event($a);
pay($evt);
is(state($a), 'confirmed', 'the hold is confirmed');
is($t->sql_value("SELECT status FROM orders WHERE id = :'p1'", $a->{order}),
    'paid', 'its deposit order is paid');
is(confirm_jobs($a), 1, 'one booking_confirmed email');
my ($job) = $t->sql("SELECT payload->>'to', dedupe_key FROM jobs"
    . " WHERE payload->>'template' = 'booking_confirmed'");
is_deeply($job, ['ada@example.com', "booking_confirmed:$a->{id}:0"],
    'to the client, deduplicated by booking and sequence');
my ($bk) = $t->sql("SELECT deposit_paid, confirmed_at IS NOT NULL FROM"
    . " bookings WHERE id = :'p1'", $a->{id});
is_deeply($bk, [5000, 't'], 'the deposit paid, when');
is($t->sql_value("SELECT count(*) FROM booking_events WHERE booking_id ="
    . " :'p1' AND from_state = 'held' AND to_state = 'confirmed'"
    . " AND cause LIKE 'stripe:evt_%'", $a->{id}), 1,
    "the event, caused by Stripe's");
my $r = $t->http(GET => "/api/bookings/$a->{ref}?token=$a->{manage_token}");
is($r->{json}{booking}{state}, 'confirmed', 'the client sees it confirmed');
is($r->{json}{booking}{paid}, 5000, '... the deposit paid');
is($r->{json}{booking}{balance}, 15000, '... the balance left');

pay($evt);
pay(paid_event($a));
is(confirm_jobs($a), 1, 'a replay and another event: still one email');
is($t->sql_value("SELECT count(*) FROM booking_events WHERE booking_id ="
    . " :'p1' AND to_state = 'confirmed'", $a->{id}), 1, '... one event');

# --- late, its time still free: confirmed ---------------------------------------
my $c = book('2027-03-06T12:00:00Z');
$t->sql("UPDATE bookings SET held_until = now() - interval '1 hour',"
    . " state = 'expired' WHERE id = :'p1'", $c->{id});
pay(paid_event($c));
is(state($c), 'confirmed', 'an expired hold whose time is free: confirmed');
is(confirm_jobs($c), 1, '... with its email');

# --- late, its time taken: refunded ---------------------------------------------
my $d = book('2027-03-06T14:00:00Z');
$t->sql("UPDATE bookings SET held_until = now() - interval '1 minute'"
    . " WHERE id = :'p1'", $d->{id});
my $e = book('2027-03-06T14:00:00Z', email => 'bea@example.com');
is(state($d), 'expired', 'the old hold expired for the new one');
is(scalar refunds(), 0, 'no refund yet');
$evt = paid_event($d);
pay($evt);
is(state($d), 'expired', 'paid late: stays expired');
is(state($e), 'held', 'the new hold keeps the time');
is(confirm_jobs($d), 0, 'no confirmation');
my ($rj) = $t->sql("SELECT id, payload->>'order_id', payload->>'amount',"
    . " payload->>'reason', payload->>'idempotency_key' FROM jobs"
    . " WHERE kind = 'stripe_refund'");
ok($rj, 'a stripe_refund job');
is_deeply([ @$rj[1 .. 3] ], [$d->{order}, 5000, 'booking_expired'],
    'for the deposit order, all of it');
is($rj->[4], "darkroom-refund-booking-$d->{id}-$d->{order}",
    'with an idempotency key of its own');
is($t->sql_value("SELECT count(*) FROM booking_events WHERE booking_id ="
    . " :'p1' AND to_state = 'expired' AND detail->>'refund' = 'queued'"
    . " AND (detail->>'job')::bigint = :'p2'", $d->{id}, $rj->[0]), 1,
    'recorded in booking_events with its job');

ok(wait_for(sub { $t->sql_value("SELECT done_at IS NOT NULL FROM jobs"
    . " WHERE id = :'p1'", $rj->[0]) eq 't' }, 30), 'the job ran')
    or diag $t->sql_value("SELECT last_error FROM jobs WHERE id = :'p1'",
        $rj->[0]);
my @re = refunds();
is(scalar @re, 1, 'Stripe got one refund');
my $f = form_of($re[0]{body});
is($f->{payment_intent}, "pi_cs_test_$d->{order}", "of the deposit's payment");
is($f->{amount}, 5000, 'the deposit');
is($re[0]{headers}{'idempotency-key'}, $rj->[4], 'with the idempotency key');
is($t->sql_value("SELECT count(*) FROM booking_events WHERE booking_id ="
    . " :'p1' AND detail->>'refund' LIKE 're_%' AND cause = :'p2'",
    $d->{id}, "job:$rj->[0]"), 1, 'the refund recorded in booking_events');
is($t->sql_value("SELECT deposit_refunded FROM bookings WHERE id = :'p1'",
    $d->{id}), 5000, '... and on the booking');

pay($evt);
pay(paid_event($d));
is($t->sql_value("SELECT count(*) FROM jobs WHERE kind = 'stripe_refund'"
    . " AND payload->>'order_id' = :'p1'", $d->{order}),
    1, 'replays queue no second refund');
is(scalar refunds(), 1, 'Stripe still got one');

# --- cancelled by the owner while its payment page was open: refunded -----------
my $k = book('2027-03-06T16:00:00Z', email => 'kit@example.com');
$t->sql("SELECT bookings_admin_cancel(:'p1', '{\"reason\":\"double\"}',"
    . " 'owner')", $k->{ref});
is(state($k), 'cancelled', 'the hold cancelled by the owner');
pay(paid_event($k));
is(state($k), 'cancelled', 'paid afterwards: stays cancelled');
is(confirm_jobs($k), 0, '... no confirmation');
is($t->sql_value("SELECT payload->>'amount' FROM jobs WHERE kind ="
    . " 'stripe_refund' AND payload->>'order_id' = :'p1'", $k->{order}),
    5000, '... its deposit goes back (a stripe_refund job)');
is($t->sql_value("SELECT count(*) FROM booking_events WHERE booking_id ="
    . " :'p1' AND to_state = 'cancelled' AND detail->>'refund' = 'queued'",
    $k->{id}), 1, '... recorded');

# --- Stripe's checkout.session.expired gives the hold up ------------------------
my $g = book('2027-03-07T10:00:00Z');
pay(event('checkout.session.expired', session(id => "cs_test_$g->{order}",
    order_id => $g->{order}, ref => $g->{oref}, amount => $g->{total},
    status => 'expired', payment_status => 'unpaid')));
is($t->sql_value("SELECT status FROM orders WHERE id = :'p1'", $g->{order}),
    'expired', 'the session expired: the deposit order expired');
is(state($g), 'expired', '... and the hold');
is($t->sql_value("SELECT count(*) FROM booking_events WHERE booking_id ="
    . " :'p1' AND from_state = 'held' AND to_state = 'expired'", $g->{id}),
    1, '... with its event');
my $h = book('2027-03-07T10:00:00Z', email => 'cy@example.com');
is(state($h), 'held', 'its time can be booked again');

done_testing;
