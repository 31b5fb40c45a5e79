#!/usr/bin/perl
# A correctly signed event that cannot be applied (a field of the wrong
# type, an API version darkroom does not read) is recorded with a reason
# the admin API shows, the shop gets a shop_alert email job in the same
# transaction, and Stripe gets a 2xx: a 5xx would be retried for days.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use JSON::PP;
use Darkroom::Test;
use Darkroom::Stripe qw(event session charge demo_catalogue shop_conf
    fake_api webhook checkout_order);
use Darkroom::Mail qw(mail_conf);
use Darkroom::Test qw(wait_for);

my $t = Darkroom::Test->new;
my $stripe = fake_api($t);
my $mail = Darkroom::Mail::sandbox($t);
my $secret = 'whsec_unprocessable';
shop_conf($t, stripe => $stripe->url, secrets => [$secret],
    http => mail_conf($t, $mail, 'postmark'));
demo_catalogue($t);
$t->start;

sub deliver { webhook($t, $secret, @_) }
sub admin_order {
    my $r = $t->http(GET => "/admin/api/orders/$_[0]{ref}",
        { headers => { Authorization => 'Bearer admin-token-1' } });
    return $r->{json};
}
sub alerts {
    my ($evt) = @_;
    return $t->sql_value("SELECT count(*) FROM jobs WHERE kind = 'email'"
        . " AND payload->>'template' = 'shop_alert'"
        . " AND payload->>'stripe_event' = :'p1'", $evt);
}
sub state_of {
    my ($row) = $t->sql("SELECT state, reason FROM stripe_events"
        . " WHERE id = :'p1'", $_[0]);
    return $row;
}

my $o = checkout_order($t, 1);
my $r = deliver(event('checkout.session.completed', session(id => $o->{session},
    order_id => $o->{id}, amount => $o->{total})));
is($r->{json}{result}, 'paid', 'an order, paid');

# the refund whose amount_refunded is not a number
my $charge = charge(payment_intent => "pi_$o->{session}", amount => $o->{total},
    amount_refunded => 0, refunded => 1);
$charge->{amount_refunded} = 'x';
my $bad = event('charge.refunded', $charge, id => 'evt_bad_refund');
for my $n (1 .. 3) {
    $r = deliver($bad);
    ok($r->{status} >= 200 && $r->{status} < 300,
        "delivery $n of a malformed refund: 2xx ($r->{status}), not a retry");
}
is($r->{json}{result}, 'duplicate', 'recorded once: a repeat is a duplicate');
my $st = state_of('evt_bad_refund');
is($st->[0], 'unprocessable', 'kept as unprocessable');
like($st->[1], qr/amount_refunded/, 'with a reason naming the field');
is(alerts('evt_bad_refund'), 1, 'one shop_alert email job');
is($t->sql_value("SELECT payload->>'order_id' FROM jobs WHERE"
    . " payload->>'stripe_event' = 'evt_bad_refund'"), $o->{id},
    'about the order');
is($t->sql_value("SELECT status FROM orders WHERE id = :'p1'", $o->{id}), 'paid',
    'the order is unchanged');

my $a = admin_order($o);
my ($wh) = grep { $_->{id} eq 'evt_bad_refund' } @{$a->{webhooks}};
ok($wh, 'the admin API lists the event with the order');
is($wh->{state}, 'unprocessable', 'and shows its state');
like($wh->{reason} // '', qr/amount_refunded/, 'and its reason');

# a session whose amount_total is not a number: the order is not touched
my $o2 = checkout_order($t, 1);
my $s = session(id => $o2->{session}, order_id => $o2->{id}, amount => 1);
$s->{amount_total} = 'abc';
$r = deliver(event('checkout.session.completed', $s, id => 'evt_bad_amount'));
is($r->{status}, 200, 'a session with a malformed amount: 200');
like($r->{json}{result}, qr/^unprocessable/, 'answered as unprocessable');
is($t->sql_value("SELECT status FROM orders WHERE id = :'p1'", $o2->{id}),
    'pending_payment', 'the order still waits for payment');
is(alerts('evt_bad_amount'), 1, 'the shop is alerted');

# about no order we know of: still recorded and alerted
my $c = charge(payment_intent => 'pi_nobody', amount => 1);
$c->{amount} = 'many';
$r = deliver(event('charge.refunded', $c, id => 'evt_bad_nobody'));
is($r->{status}, 200, 'malformed and about no known order: 200');
is(state_of('evt_bad_nobody')->[0], 'unprocessable', 'recorded');
is(alerts('evt_bad_nobody'), 1, 'alerted without an order');
ok(wait_for(sub { grep { $_->{subject} =~ /evt_bad_nobody/ } $mail->messages },
    15), 'the alert about no order is sent');
my ($m) = grep { $_->{subject} =~ /evt_bad_nobody/ } $mail->messages;
like($m->{subject}, qr/Stripe event evt_bad_nobody needs attention/,
    'its subject names the event');
like($m->{text}, qr/could not be applied: charge\.refunded: amount is "many"/,
    'and the text the reason');
ok(wait_for(sub { grep { $_->{subject} =~ /\Q$o->{ref}\E needs attention/ }
    $mail->messages }, 15), 'the alert about the order is sent');
($m) = grep { $_->{subject} =~ /\Q$o->{ref}\E needs attention/ } $mail->messages;
like($m->{text}, qr/evt_bad_refund could not be applied: .*amount_refunded/,
    'naming the event and the reason');

# a value past bigint: PostgreSQL refuses the cast, the event is still kept
my $big = charge(payment_intent => "pi_$o->{session}", amount => $o->{total});
my $body = event('charge.refunded', $big, id => 'evt_big_refund');
$body =~ s/"amount_refunded":0/"amount_refunded":99999999999999999999999/;
$r = deliver($body);
is($r->{status}, 200, 'an amount past bigint: 200');
is(state_of('evt_big_refund')->[0], 'unprocessable', 'recorded as unprocessable');

# a good event afterwards is applied as usual
$r = deliver(event('charge.refunded', charge(payment_intent => "pi_$o->{session}",
    amount => $o->{total}, amount_refunded => 1000)));
is($r->{json}{result}, 'partially refunded', 'the next good event applies');

unlike($t->error_log, qr/answering 5\d\d/, 'no 5xx answered');

done_testing;
