#!/usr/bin/perl
# Bookings: POST book holds a slot and writes its deposit order in one
# transaction, then the shop makes the order's Stripe Checkout Session
# (201 with checkout_url); the deposit is the type's (fixed or percent);
# 50 clients racing for one slot: one hold, 49 409 slot_taken; bad input
# 400 and nothing written; a hold past held_until gives its slot up.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use JSON::PP;
use HTTP::Tiny;
use POSIX ();
use Darkroom::Test;
use Darkroom::Stripe qw(fake_api form_of);
use Darkroom::Bookings qw(bookings_conf bookings_demo);

my $t = Darkroom::Test->new;
my $stripe = fake_api($t);
bookings_conf($t, stripe => $stripe->url);
bookings_demo($t);
$t->start;

sub book {
    my ($body) = @_;
    return $t->http(POST => '/api/bookings/book', {
        headers => { 'Content-Type' => 'application/json' },
        content => ref $body ? encode_json($body) : $body });
}
sub counts { $t->sql_value("SELECT (SELECT count(*) FROM bookings) || '/'"
    . " || (SELECT count(*) FROM orders) || '/'"
    . " || (SELECT count(*) FROM order_items) || '/'"
    . " || (SELECT count(*) FROM jobs)") }
sub sessions { grep { $_->{path} eq '/v1/checkout/sessions' } $stripe->requests }

my %ok = (type => 'portrait', start => '2027-03-06T10:00:00+00:00',
          name => 'Ada Client', email => 'ada@example.com',
          time_zone => 'America/New_York',
          answers => { who => 'Ada and her dog', extra => 'dropped' });

# --- a hold and its deposit -------------------------------------------------
my $r = book(\%ok);
is($r->{status}, 201, 'booked') or diag $r->{content};
my $b = $r->{json}{booking};
like($b->{ref}, qr/^BK-\d{6}$/, 'a reference');
is($b->{state}, 'held', 'held');
is($b->{start}, '2027-03-06T05:00:00-05:00', "in the client's zone");
is($b->{end}, '2027-03-06T06:00:00-05:00', 'an hour');
like($b->{held_until}, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d-0[45]:00$/,
    'held until');
is($b->{deposit}, 5000, 'the fixed deposit');
is($b->{currency}, 'GBP', 'currency');
like($b->{manage_token}, qr/^[0-9a-f]{32}$/, 'the manage token');
my ($oid) = $t->sql_value("SELECT deposit_order_id FROM bookings"
    . " WHERE ref = :'p1'", $b->{ref});
is($r->{json}{checkout_url}, "https://pay.example/cs_test_$oid",
    "the sandbox's payment page");
my ($o) = $t->sql("SELECT status, total, currency, physical, email,"
    . " stripe_session_id, checkout_url FROM orders WHERE id = :'p1'", $oid);
is_deeply($o, ['pending_payment', 5000, 'GBP', 'f', 'ada@example.com',
    "cs_test_$oid", $r->{json}{checkout_url}],
    'the deposit order, pending, with its session');
my ($i) = $t->sql("SELECT kind, product_id, photo_id, quantity, unit_amount"
    . " FROM order_items WHERE order_id = :'p1'", $oid);
is_deeply($i, ['session', 'portrait', $b->{ref}, 1, 5000],
    'one session line: the type, the booking');
my @s = sessions();
is(scalar @s, 1, 'one session asked of Stripe');
my $f = form_of($s[0]{body});
is($f->{'line_items[0][price_data][unit_amount]'}, 5000, 'Stripe: the deposit');
is($f->{'line_items[0][price_data][currency]'}, 'gbp', 'Stripe: currency');
is($f->{'metadata[order_id]'}, $oid, 'Stripe: the order id');
is($s[0]{headers}{'idempotency-key'}, "darkroom-checkout-$oid",
    "the shop's idempotency key");
my ($bk) = $t->sql("SELECT state, client_time_zone, answers::text,"
    . " extract(epoch FROM held_until - now())::int, busy::text,"
    . " manage_token FROM bookings WHERE ref = :'p1'", $b->{ref});
is($bk->[0], 'held', 'the row: held');
is($bk->[1], 'America/New_York', "the client's zone");
is($bk->[2], '{"who": "Ada and her dog"}', 'the answers to the questions');
ok($bk->[3] > 25 * 60 && $bk->[3] <= 30 * 60, "held 30 minutes ($bk->[3] s)");
is($bk->[5], $b->{manage_token}, 'the manage token kept');
is($t->sql_value("SELECT count(*) FROM booking_events WHERE to_state ="
    . " 'held'"), 1, 'its event');

# the client's view
$r = $t->http(GET => "/api/bookings/$b->{ref}?token=$b->{manage_token}");
is($r->{status}, 200, 'GET <ref>') or diag $r->{content};
is($r->{json}{booking}{state}, 'held', 'state');
is($r->{json}{booking}{start}, '2027-03-06T05:00:00-05:00', 'the time');
is($r->{json}{booking}{balance}, 20000, 'nothing paid yet');
is($t->http(GET => "/api/bookings/$b->{ref}?token=" . ('0' x 32))->{status},
    404, 'another token: 404');
is($t->http(GET => "/api/bookings/$b->{ref}")->{status}, 404,
    'no token: 404');

# a percent deposit
$r = book({ %ok, type => 'buffered', start => '2027-03-06T14:00:00Z' });
is($r->{status}, 201, 'a percent deposit') or diag $r->{content};
is($r->{json}{booking}{deposit}, 3750, '25% of 150.00');
is($t->sql_value("SELECT o.total FROM orders o JOIN bookings b"
    . " ON b.deposit_order_id = o.id WHERE b.ref = :'p1'",
    $r->{json}{booking}{ref}), 3750, 'the order is the deposit');

# --- the same slot again: 409 --------------------------------------------------
my $before = counts();
$r = book(\%ok);
is($r->{status}, 409, 'the slot is held');
is($r->{json}{error}{code}, 'slot_taken', 'slot_taken');
$r = book({ %ok, type => 'buffered', start => '2027-03-06T11:00:00Z' });
is($r->{status}, 409, "a buffer overlapping the hold");
is(counts(), $before, 'nothing written');

# --- bad input: 400, nothing written ------------------------------------------
for my $case (
    [ { %ok, type => 'nope' }, 'unknown_type' ],
    [ { %ok, type => 'retired' }, 'unknown_type' ],
    [ { %ok, start => '2020-03-07T10:00:00Z' }, 'past_slot' ],
    [ { %ok, start => '2027-03-06T10:15:00Z' }, 'not_available' ],
    [ { %ok, start => '2027-03-09T10:00:00Z' }, 'not_available' ],
    [ { %ok, start => '2027-03-06T20:00:00Z' }, 'not_available' ],
    [ { %ok, start => '2027-03-06 10:00' }, 'bad_time' ],
    [ { %ok, start => '2027-02-30T10:00:00Z' }, 'bad_time' ],
    [ { %ok, start => 1234 }, 'bad_time' ],
    [ { %ok, answers => {} }, 'missing_answer' ],
    [ { %ok, answers => { who => '  ' } }, 'missing_answer' ],
    [ { %ok, answers => 'x' }, 'bad_answers' ],
    [ { %ok, email => 'nope' }, 'bad_email' ],
    [ { %ok, name => '' }, 'bad_name' ],
    [ { %ok, time_zone => 'Mars/Base' }, 'bad_time_zone' ],
    [ '{"type":', 'bad_json' ],
    [ '[1]', 'bad_json' ],
) {
    my $r = book($case->[0]);
    is($r->{status}, 400, "400 $case->[1]") or diag $r->{content};
    is($r->{json}{error}{code}, $case->[1], "... $case->[1]");
}
is(counts(), $before, 'nothing written by any of them');
is(scalar sessions(), 2, 'Stripe asked for nothing more');

# --- 50 clients, one slot -----------------------------------------------------
my $N = 50;
my $port = $t->port(0);
my $dir = $t->dir;
pipe(my $go_r, my $go_w) or die "pipe: $!";
my @pids;
for my $n (1 .. $N) {
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        close $go_w;
        my $buf;
        sysread $go_r, $buf, 1;
        my $r = HTTP::Tiny->new(timeout => 120, keep_alive => 0)->request(
            POST => "http://127.0.0.1:$port/api/bookings/book", {
            headers => { 'Content-Type' => 'application/json' },
            content => encode_json({ %ok, start => '2027-03-07T11:00:00Z',
                                     email => "racer$n\@example.com" }) });
        open my $fh, '>', "$dir/race.$n" or die;
        print $fh encode_json({ status => $r->{status},
            body => $r->{content} // '' });
        close $fh;
        POSIX::_exit(0);
    }
    push @pids, $pid;
}
close $go_r;
close $go_w;
waitpid $_, 0 for @pids;
my (%status, %codes);
for my $n (1 .. $N) {
    my $res = decode_json($t->read_file("race.$n") || '{}');
    $status{$res->{status} // 'none'}++;
    my $j = eval { decode_json($res->{body}) } || {};
    $codes{$j->{error}{code} // 'ok'}++;
}
is($status{201}, 1, 'exactly one hold') or diag explain \%status;
is($status{409}, $N - 1, 'the others 409');
is($codes{slot_taken}, $N - 1, '... slot_taken');
is($t->sql_value("SELECT count(*) FROM bookings WHERE starts_at ="
    . " '2027-03-07 11:00Z'"), 1, 'one booking row');
is($t->sql_value("SELECT count(*) FROM orders o JOIN order_items i"
    . " ON i.order_id = o.id JOIN bookings b ON b.ref = i.photo_id"
    . " WHERE b.starts_at = '2027-03-07 11:00Z'"), 1, 'one deposit order');
is($t->sql_value("SELECT count(*) FROM orders") , 3, 'no other order');

# --- a hold past its time gives its slot up -----------------------------------
$t->sql("UPDATE bookings SET held_until = now() - interval '1 minute'"
    . " WHERE starts_at = '2027-03-06 10:00Z'");
my $slots = $t->http(GET => '/api/bookings/slots?type=portrait'
    . '&from=2027-03-06&to=2027-03-06')->{json}{slots};
ok((grep { $_->{start_utc} eq '2027-03-06T10:00:00Z' } @$slots),
    'the slot is offered again');
$r = book({ %ok, email => 'bea@example.com' });
is($r->{status}, 201, 'booked again') or diag $r->{content};
is($t->sql_value("SELECT state FROM bookings WHERE ref = :'p1'", $b->{ref}),
    'expired', 'the old hold is expired');
is($t->sql_value("SELECT count(*) FROM booking_events e JOIN bookings b"
    . " ON b.id = e.booking_id WHERE b.ref = :'p1'"
    . " AND e.from_state = 'held' AND e.to_state = 'expired'", $b->{ref}),
    1, 'with its event');

done_testing;
