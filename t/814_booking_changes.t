#!/usr/bin/perl
# The client's changes: POST <ref>/cancel and POST <ref>/reschedule with
# the manage token, per the session type's policy: a reschedule to a slot
# offered (409 slot_taken for a taken one, 409 too_late inside
# reschedule_hours) raises SEQUENCE and queues booking_rescheduled; a
# cancel raises SEQUENCE, queues booking_cancelled and, at least
# refund_hours before the start, the deposit's stripe_refund job; refusals
# write nothing.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use JSON::PP;
use Darkroom::Test;
use Darkroom::Stripe qw(fake_api);
use Darkroom::Bookings qw(bookings_conf bookings_demo insert_booking);

my $t = Darkroom::Test->new;
my $stripe = fake_api($t);
bookings_conf($t, stripe => $stripe->url);
bookings_demo($t);
$t->start;

sub post {
    my ($path, $body) = @_;
    return $t->http(POST => "/api/bookings/$path", {
        headers => { 'Content-Type' => 'application/json' },
        content => ref $body ? encode_json($body) : $body });
}
sub counts { $t->sql_value("SELECT (SELECT count(*) FROM booking_events)"
    . " || '/' || (SELECT count(*) FROM jobs) || '/' || (SELECT"
    . " string_agg(state || sequence || starts_at, ',' ORDER BY id)"
    . " FROM bookings)") }

# a booking made and paid the way the API does it
my $r = post('book', { type => 'portrait',
    start => '2027-03-06T10:00:00+00:00', name => 'Ada Client',
    email => 'ada@example.com', time_zone => 'Europe/London',
    answers => { who => 'Ada' } });
is($r->{status}, 201, 'booked') or diag $r->{content};
my $ref = $r->{json}{booking}{ref};
my $token = $r->{json}{booking}{manage_token};
my $oid = $t->sql_value("SELECT deposit_order_id FROM bookings"
    . " WHERE ref = :'p1'", $ref);
$t->sql_value("SELECT order_mark_paid(:'p1', :'p2'::jsonb, 'test')", $oid,
    encode_json({ amount_total => 5000, currency => 'gbp',
                  payment_intent => "pi_test_$oid" }));
is($t->sql_value("SELECT state FROM bookings WHERE ref = :'p1'", $ref),
    'confirmed', 'paid: confirmed');
my $id = $t->sql_value("SELECT id FROM bookings WHERE ref = :'p1'", $ref);

# another client holds 11:00 on the Sunday
insert_booking($t, 'portrait', '2027-03-07T11:00:00Z', '2027-03-07T12:00:00Z');

# --- reschedule: refusals write nothing --------------------------------------
my $before = counts();
my %bad = (
    'wrong token' => [ "$ref/reschedule",
        { token => 'f' x 32, start => '2027-03-07T10:00:00+00:00' }, 404,
        'not_found' ],
    'no token' => [ "$ref/reschedule",
        { start => '2027-03-07T10:00:00+00:00' }, 404, 'not_found' ],
    'unknown ref' => [ 'BK-999999/reschedule',
        { token => $token, start => '2027-03-07T10:00:00+00:00' }, 404,
        'not_found' ],
    'not JSON' => [ "$ref/reschedule", 'nope', 400, 'bad_json' ],
    'a malformed time' => [ "$ref/reschedule",
        { token => $token, start => '7 March' }, 400, 'bad_time' ],
    'outside the hours' => [ "$ref/reschedule",
        { token => $token, start => '2027-03-07T07:00:00+00:00' }, 400,
        'not_available' ],
    'the same time' => [ "$ref/reschedule",
        { token => $token, start => '2027-03-06T10:00:00+00:00' }, 400,
        'same_time' ],
    'a taken slot' => [ "$ref/reschedule",
        { token => $token, start => '2027-03-07T11:00:00+00:00' }, 409,
        'slot_taken' ],
    'an unknown change' => [ "$ref/move",
        { token => $token }, 404, 'not_found' ],
);
for my $what (sort keys %bad) {
    my ($path, $body, $status, $code) = @{ $bad{$what} };
    my $r = post($path, $body);
    is($r->{status}, $status, "$what: $status");
    is($r->{json}{error}{code}, $code, "$what: $code") if $r->{json};
}
is(counts(), $before, 'nothing written by the refusals');

# --- reschedule ---------------------------------------------------------------
$r = post("$ref/reschedule",
    { token => $token, start => '2027-03-07T10:00:00+00:00' });
is($r->{status}, 200, 'rescheduled') or diag $r->{content};
is($r->{json}{booking}{start_utc}, '2027-03-07T10:00:00Z', 'to the new time');
my ($row) = $t->sql("SELECT sequence, state, upper(busy) = ends_at"
    . " FROM bookings WHERE id = $id");
is_deeply($row, [ 1, 'confirmed', 't' ], 'SEQUENCE 1, still confirmed');
is($t->sql_value("SELECT count(*) FROM jobs WHERE kind = 'email' AND"
    . " dedupe_key = 'booking_rescheduled:$id:1' AND payload->>'template'"
    . " = 'booking_rescheduled'"), 1, 'the booking_rescheduled email queued');
is($t->sql_value("SELECT count(*) FROM booking_events WHERE booking_id = $id"
    . " AND detail ? 'rescheduled_from'"), 1, 'an event');
# the old time is free again: 2027-03-06 10:00 is offered
is(post('book', { type => 'portrait', start => '2027-03-06T10:00:00+00:00',
    name => 'Bo', email => 'bo@example.com',
    answers => { who => 'Bo' } })->{status}, 201, 'the old slot is free');

# --- cancel -------------------------------------------------------------------
is(post("$ref/cancel", { token => 'f' x 32 })->{status}, 404,
    'cancel with a wrong token: 404');
is(post("$ref/cancel", { token => $token, reason => [1] })->{status}, 400,
    'a reason that is not text: 400');
$r = post("$ref/cancel", { token => $token, reason => 'Ill, sorry' });
is($r->{status}, 200, 'cancelled') or diag $r->{content};
is($r->{json}{booking}{state}, 'cancelled', 'state cancelled');
is_deeply($r->{json}{refund}, { amount => 5000, currency => 'GBP' },
    'the deposit is refunded (more than 48 hours before)');
($row) = $t->sql("SELECT sequence, cancelled_by, cancel_reason FROM bookings"
    . " WHERE id = $id");
is_deeply($row, [ 2, 'client', 'Ill, sorry' ], 'SEQUENCE 2, by the client');
my ($job) = $t->sql("SELECT payload->>'order_id', payload->>'amount',"
    . " payload->>'idempotency_key' FROM jobs WHERE kind = 'stripe_refund'");
is_deeply($job, [ $oid, 5000, "darkroom-refund-booking-$id-cancel" ],
    'a stripe_refund job for the deposit order');
is($t->sql_value("SELECT payload->>'refund' FROM jobs WHERE dedupe_key ="
    . " 'booking_cancelled:$id:2'"), 5000,
    'the booking_cancelled email queued, with the refund');
is(post("$ref/cancel", { token => $token })->{status}, 409,
    'cancelled again: 409');
is(post("$ref/reschedule", { token => $token,
    start => '2027-03-07T12:00:00+00:00' })->{status}, 409,
    'a cancelled booking is not moved: 409');

# --- inside the policy's hours -----------------------------------------------
my $soon = insert_booking($t, 'portrait',
    $t->sql_value("SELECT now() + interval '3 hours'"),
    $t->sql_value("SELECT now() + interval '4 hours'"));
$t->sql("UPDATE bookings SET deposit_paid = 100, deposit_order_id = $oid"
    . " WHERE id = $soon");
my ($sref, $stoken) = @{ ($t->sql("SELECT ref, manage_token FROM bookings"
    . " WHERE id = $soon"))[0] };
$r = post("$sref/reschedule", { token => $stoken,
    start => '2027-03-07T14:00:00+00:00' });
is($r->{status}, 409, 'moved inside reschedule_hours: 409');
is($r->{json}{error}{code}, 'too_late', 'too_late');
$r = post("$sref/cancel", { token => $stoken });
is($r->{status}, 200, 'cancelled inside refund_hours');
is($r->{json}{refund}, undef, 'no refund');
is($t->sql_value("SELECT count(*) FROM jobs WHERE kind = 'stripe_refund'"),
    1, 'no refund job');

done_testing;
