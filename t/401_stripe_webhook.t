#!/usr/bin/perl
# The Stripe webhook: signatures checked as Stripe documents them, events
# applied exactly once whatever the delivery does (repeats, reordering,
# concurrency), and the order state machine that only moves forward.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use JSON::PP;
use POSIX qw(_exit);
use Darkroom::Test qw(wait_for);
use Darkroom::Stripe qw(signature event session charge demo_catalogue
    shop_conf fake_api);

my $t = Darkroom::Test->new;
my $stripe = fake_api($t);
my $old = 'whsec_old_secret_kept_for_rotation';
my $new = 'whsec_new_secret';
shop_conf($t, stripe => $stripe->url, secrets => [$new, $old]);
demo_catalogue($t);
$t->start;

sub deliver {
    my ($body, %o) = @_;
    my %h = ('Content-Type' => 'application/json; charset=utf-8');
    # ahead: seconds from now, taken when sending, not when the case was made
    $h{'Stripe-Signature'} = $o{sig} // signature($o{secret} // $new, $body,
        $o{ts} // time + ($o{ahead} // 0)) unless $o{nosig};
    return $t->http(POST => '/webhooks/stripe', { headers => \%h,
        content => $body });
}

# an order to pay: $lines of giclee-a3 at 4500 each
sub new_order {
    my ($qty, %o) = @_;
    my $r = $t->http(POST => '/api/checkout', {
        headers => { 'Content-Type' => 'application/json' },
        content => encode_json({ email => 'ada@example.com', items => [
            { photo => 'harbour-dawn', product => $o{product} // 'giclee-a3',
              quantity => $qty } ] }) });
    die "checkout failed: $r->{content}" unless $r->{status} == 201;
    my ($row) = $t->sql("SELECT id, ref, total FROM orders WHERE ref = :'p1'",
        $r->{json}{order});
    return { id => $row->[0], ref => $row->[1], total => $row->[2],
             session => "cs_test_$row->[0]", status_url => $r->{json}{status_url} };
}

sub status { $t->sql_value("SELECT status FROM orders WHERE id = :'p1'", $_[0]{id}) }
sub jobs_for {
    my ($o, $kind) = @_;
    $t->sql_value("SELECT count(*) FROM jobs WHERE kind = :'p1'"
        . " AND payload->>'order_id' = :'p2'", $kind, $o->{id});
}
sub completed {
    my ($o, %s) = @_;
    event('checkout.session.completed', session(id => $o->{session},
        order_id => $o->{id}, ref => $o->{ref}, amount => $o->{total}, %s),
        %s);
}

# --- signatures -----------------------------------------------------------
my $o = new_order(1);
my $body = completed($o);
my $ts = time;
my %cases = (
    'missing header'         => [ { nosig => 1 }, 'missing_signature' ],
    'wrong secret'           => [ { secret => 'whsec_wrong' }, 'bad_signature' ],
    'modified body'          => [ { sig => signature($new, $body, $ts),
                                    body => $body . ' ' }, 'bad_signature' ],
    'modified timestamp'     => [ { sig => signature($new, $body, $ts) =~
                                    s/t=\d+/'t=' . ($ts - 1)/er }, 'bad_signature' ],
    'stale timestamp'        => [ { ts => $ts - 301 }, 'stale_timestamp' ],
    'future timestamp'       => [ { ahead => 330 }, 'stale_timestamp' ],
    'no v1'                  => [ { sig => "t=$ts,v0=" . ('a' x 64) }, 'missing_signature' ],
    'no timestamp'           => [ { sig => 'v1=' . ('a' x 64) }, 'malformed_signature' ],
    'garbage header'         => [ { sig => 'garbage' }, 'malformed_signature' ],
    'short v1'               => [ { sig => "t=$ts,v1=abcd" }, 'missing_signature' ],
);
for my $name (sort keys %cases) {
    my ($opts, $code) = @{$cases{$name}};
    my $r = deliver($opts->{body} // $body, %$opts);
    is($r->{status}, 400, "$name: 400");
    is($r->{json}{error}{code}, $code, "$name: $code");
}
is(status($o), 'pending_payment', 'no refused delivery changed the order');
is($t->sql_value('SELECT count(*) FROM stripe_events'), 0,
    'nothing recorded before a valid signature');
like($t->error_log, qr/stripe webhook refused: bad_signature/, 'refusals logged');

# within tolerance, several v1 values with one valid, v0 ignored, old secret
my $r = deliver($body, sig => "t=$ts,v1=" . ('0' x 64) . ','
    . (signature($new, $body, $ts) =~ s/^t=\d+,//r) . ",v0=" . ('f' x 64));
is($r->{status}, 200, 'one valid v1 among several passes');
is($r->{json}{result}, 'paid', 'and the order is paid');
my $o2 = new_order(2);
# 280 s old: the 20 s left of the 300 s tolerance absorb a slow machine
$r = deliver(completed($o2), secret => $old, ahead => -280);
is($r->{status}, 200, 'a rotated-out secret still in the file works, 280 s old');

# --- the paid order ---------------------------------------------------------
my ($row) = $t->sql("SELECT status, paid_amount, paid_currency, shipping_name,"
    . " shipping_address->>'city', stripe_payment_intent FROM orders"
    . " WHERE id = :'p1'", $o->{id});
is_deeply($row, ['paid', 4500, 'GBP', 'Ada Buyer', 'Whitby', "pi_$o->{session}"],
    'paid with amount, currency, shipping address and payment intent');
is(jobs_for($o, 'fulfil_order'), 1, 'fulfilment job enqueued');
is(jobs_for($o, 'email'), 1, 'receipt email job enqueued');
$r = $t->http(GET => $o->{status_url});
is($r->{json}{status}, 'paid', 'customer sees paid');
is($r->{json}{shipping}{address}{postal_code}, 'YO21 1AA', 'and the address');

# --- the same event five times ------------------------------------------
for (1 .. 5) {
    $r = deliver($body);
    is($r->{status}, 200, "repeat $_ answered 200");
}
is($r->{json}{result}, 'duplicate', 'seen as a duplicate');
is(jobs_for($o, 'fulfil_order'), 1, 'still one fulfilment job');
is(jobs_for($o, 'email'), 1, 'still one receipt');
is($t->sql_value("SELECT count(*) FROM order_events WHERE order_id = :'p1'"
    . " AND to_status = 'paid'", $o->{id}), 1, 'one transition to paid');

# --- out of order -------------------------------------------------------------
# expired arriving after completed: stays paid
$r = deliver(event('checkout.session.expired', session(id => $o->{session},
    order_id => $o->{id}, amount => $o->{total}, status => 'expired',
    payment_status => 'unpaid')));
is($r->{json}{result}, 'ignored: order already settled', 'late expiry ignored');
is(status($o), 'paid', 'still paid');

# refunded before the completion arrives: completion must not resurrect it
my $o3 = new_order(1);
$r = deliver(event('charge.refunded', charge(payment_intent => "pi_$o3->{session}",
    amount => 4500, amount_refunded => 4500, refunded => 1, order_id => $o3->{id})));
is($r->{json}{result}, 'refunded', 'refund of an order whose payment we missed');
$r = deliver(completed($o3));
like($r->{json}{result}, qr/^ignored/, 'the late completion is ignored');
is(status($o3), 'refunded', 'refunded stays refunded');
is(jobs_for($o3, 'fulfil_order'), 0, 'nothing sent to a lab');

# partial refunds arriving in either order end at the larger total
my $pi = "pi_$o2->{session}";
deliver(event('charge.refunded', charge(payment_intent => $pi, amount => 9000,
    amount_refunded => 3000)));
deliver(event('charge.refunded', charge(payment_intent => $pi, amount => 9000,
    amount_refunded => 1000)));
($row) = $t->sql("SELECT status, amount_refunded FROM orders WHERE id = :'p1'",
    $o2->{id});
is_deeply($row, ['paid', 3000], 'partial refunds: cumulative, order-independent');
deliver(event('charge.refunded', charge(payment_intent => $pi, amount => 9000,
    amount_refunded => 9000, refunded => 1)));
is(status($o2), 'refunded', 'fully refunded');
is(jobs_for($o2, 'email'), 4, 'receipt plus one email per refund step');

# amount that does not match the order: review, not paid
my $o4 = new_order(1);
$r = deliver(completed($o4, amount => 1));
is($r->{json}{result}, 'needs_review: amount mismatch', 'mismatch flagged');
is(status($o4), 'needs_review', 'order needs review');
is(jobs_for($o4, 'fulfil_order'), 0, 'not fulfilled');
like($t->sql_value("SELECT review_reason FROM orders WHERE id = :'p1'", $o4->{id}),
    qr/Paid 1 GBP but the order total is 4500 GBP/, 'reason recorded');

# wrong currency too
my $o5 = new_order(1);
$r = deliver(completed($o5, currency => 'usd'));
is(status($o5), 'needs_review', 'currency mismatch flagged');

# delayed payment: completed unpaid, then async success
my $o6 = new_order(1);
$r = deliver(completed($o6, payment_status => 'unpaid'));
is($r->{json}{result}, 'awaiting payment', 'completed but unpaid waits');
is(status($o6), 'pending_payment', 'still pending');
$r = deliver(event('checkout.session.async_payment_succeeded',
    session(id => $o6->{session}, order_id => $o6->{id}, amount => $o6->{total})));
is(status($o6), 'paid', 'paid when the bank transfer lands');

my $o7 = new_order(1);
deliver(completed($o7, payment_status => 'unpaid'));
deliver(event('checkout.session.async_payment_failed',
    session(id => $o7->{session}, order_id => $o7->{id}, amount => $o7->{total},
        payment_status => 'unpaid')));
is(status($o7), 'cancelled', 'failed delayed payment cancels');

# older API versions put the address in shipping_details
my $o8 = new_order(1);
deliver(completed($o8, legacy => 1));
is($t->sql_value("SELECT shipping_name FROM orders WHERE id = :'p1'", $o8->{id}),
    'Ada Legacy', 'legacy shipping_details read');

# a session Stripe knows but we never recorded: found by its metadata
my $o9 = new_order(1);
$t->sql("UPDATE orders SET stripe_session_id = NULL WHERE id = :'p1'", $o9->{id});
deliver(completed($o9));
is(status($o9), 'paid', 'matched through metadata.order_id');

# disputes
$r = deliver(event('charge.dispute.created', { id => 'dp_1', object => 'dispute',
    charge => 'ch_x', payment_intent => "pi_$o8->{session}", amount => 4500,
    reason => 'fraudulent' }));
is(status($o8), 'needs_review', 'a dispute puts the order under review');

# expiry of an unpaid order
my $o10 = new_order(1);
deliver(event('checkout.session.expired', session(id => $o10->{session},
    order_id => $o10->{id}, amount => $o10->{total}, status => 'expired',
    payment_status => 'unpaid')));
is(status($o10), 'expired', 'unpaid session expired');

# --- what is not ours -------------------------------------------------------
$r = deliver(event('customer.created', { id => 'cus_1', object => 'customer' }));
is($r->{status}, 200, 'unknown event type answered 200');
is($r->{json}{result}, 'ignored: event type not handled', 'and ignored');
like($t->error_log, qr/stripe event evt_\S+ customer\.created: ignored/, 'logged');

$r = deliver(encode_json({ id => 'evt_thin', object => 'v2.core.event',
    type => 'v1.checkout.session.completed', related_object => {} }));
is($r->{status}, 400, 'thin event refused');
is($r->{json}{error}{code}, 'thin_event_unsupported', 'with a clear code');

$r = deliver('{"id": "evt_broken", ');
is($r->{status}, 400, 'signed but malformed JSON refused');
is($r->{json}{error}{code}, 'invalid_json', 'invalid_json');
$r = deliver(encode_json({ object => 'event', type => 'x' }));
is($r->{json}{error}{code}, 'invalid_event', 'event without id refused');
$r = $t->http(POST => '/webhooks/stripe', { content => 'x' x 70000,
    headers => { 'Stripe-Signature' => signature($new, 'x' x 70000) } });
is($r->{status}, 413, 'oversize body refused');
is($r->{json}{error}{code}, 'body_too_large', 'with a JSON reason');
is($t->http(GET => '/webhooks/stripe')->{status}, 405, 'GET not allowed');

# --- 200 distinct events at once -------------------------------------------------
my @many = map { new_order(1) } 1 .. 200;
my @bodies = map { completed($_) } @many;
my @kids;
for my $k (0 .. 9) {
    my $pid = fork // die;
    if ($pid == 0) {
        my $bad = 0;
        for my $i (grep { $_ % 10 == $k } 0 .. $#bodies) {
            # each sent twice, concurrently with everything else
            for (1 .. 2) {
                my $r = deliver($bodies[$i]);
                $bad++ unless $r->{status} == 200;
            }
        }
        _exit($bad ? 1 : 0);
    }
    push @kids, $pid;
}
my $failed = 0;
for (@kids) { waitpid $_, 0; $failed++ if $? }
is($failed, 0, '400 concurrent deliveries all answered 200');
my $ids = join ',', map { $_->{id} } @many;
is($t->sql_value("SELECT count(*) FROM orders WHERE id IN ($ids) AND status = 'paid'"),
    200, 'all 200 orders paid');
is($t->sql_value("SELECT count(*) FROM jobs WHERE kind = 'fulfil_order'"
    . " AND (payload->>'order_id')::bigint IN ($ids)"), 200,
    'exactly one fulfilment job each');
is($t->sql_value("SELECT count(*) FROM (SELECT dedupe_key FROM jobs"
    . " WHERE dedupe_key IS NOT NULL GROUP BY 1 HAVING count(*) > 1) d"), 0,
    'no duplicate job anywhere');

done_testing;
