#!/usr/bin/perl
# A code's use follows its order through every way an order moves
# (order_transition, in the same transaction): expired by
# checkout_reconcile or cancelled unpaid: released, and the use counts no
# more; paid, or on to fulfilment: redeemed; a redeemed use stays redeemed
# (refund, cancellation after payment); an order paid after it expired
# and approved from review is redeemed again.  A rolled-back move changes
# nothing.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use JSON::PP;
use Darkroom::Test;
use Darkroom::Stripe qw(demo_catalogue);

my $t = Darkroom::Test->new;
$t->db;
demo_catalogue($t);

$t->sql(q{SELECT admin_discount('put', 'LIFE', '{"kind": "fixed",
    "amount_off": {"GBP": 300}, "max_redemptions": 1}')});

# an order with the code, as checkout_create() writes it
sub order {
    my ($email) = @_;
    return $t->sql_value(q{SELECT order_id FROM checkout_create(
        '[{"photo": "harbour-dawn", "product": "giclee-a3", "quantity": 1}]',
        :'p1', 'GBP', NULL, 'life', NULL, md5(random()::text),
        now() + interval '1 hour', now() + interval '15 minutes')}, $email);
}

sub state {
    return $t->sql_value("SELECT state FROM discount_redemptions"
        . " WHERE order_id = :'p1'", $_[0]);
}

sub move {
    my ($id, $to, $cause) = @_;
    return $t->sql_value("SELECT order_transition(:'p1', :'p2', :'p3')",
        $id, $to, $cause // 'test');
}

# the checkout's error for another order with the code (nothing kept)
sub refused {
    my ($email) = @_;
    my $err = $t->sql_value(q{
CREATE FUNCTION pg_temp.try(p_email text) RETURNS text LANGUAGE plpgsql AS $f$
BEGIN
    PERFORM checkout_create(
        '[{"photo": "harbour-dawn", "product": "giclee-a3", "quantity": 1}]',
        p_email, 'GBP', NULL, 'LIFE', NULL, md5(random()::text),
        now() + interval '1 hour', now() + interval '15 minutes');
    RETURN 'created';
EXCEPTION WHEN others THEN
    RETURN SQLERRM;
END $f$;
SELECT pg_temp.try(:'p1');}, $email);
    return $err eq 'code_exhausted';
}

my $a = order('a@example.com');
is(state($a), 'reserved', 'reserved at checkout');
is($t->sql_value("SELECT discount_amount FROM orders WHERE id = :'p1'", $a),
    300, 'the order has the discount');
ok(refused('b@example.com'), 'the only use is held');

# expired by checkout_reconcile (as stripe.c does it)
is(move($a, 'expired', 'reconcile'), 't', 'the order expires');
is(state($a), 'released', 'released');
my $b = order('b@example.com');
is(state($b), 'reserved', 'the use is taken again');

# a move that rolls back releases nothing
$t->sql("BEGIN; SELECT order_transition($b, 'cancelled', 'test'); ROLLBACK;");
is(state($b), 'reserved', 'a rolled-back cancel changes nothing');

# cancelled unpaid (checkout_failed)
$t->sql_value("SELECT checkout_failed(:'p1', 'test')", $b);
is(state($b), 'released', 'checkout_failed releases');
my $c = order('c@example.com');

# paid: redeemed, and stays so through fulfilment, a refund, a cancel
is(move($c, 'paid'), 't', 'paid');
is(state($c), 'redeemed', 'redeemed');
ok($t->sql_value("SELECT redeemed_at IS NOT NULL AND released_at IS NULL"
    . " FROM discount_redemptions WHERE order_id = :'p1'", $c), 'when');
move($c, 'in_production');
move($c, 'refunded');
is(state($c), 'redeemed', 'a refund does not give the use back');
ok(refused('d@example.com'), 'still used up');

# paid after it expired: review, then approved: redeemed again
$t->sql("UPDATE discount_codes SET max_redemptions = 2 WHERE code = 'LIFE'");
my $d = order('d@example.com');
move($d, 'expired', 'reconcile');
is(state($d), 'released', 'expired: released');
move($d, 'needs_review');
is(state($d), 'released', 'in review: still released');
move($d, 'paid', 'admin');
is(state($d), 'redeemed', 'approved as paid: redeemed');
is($t->sql_value("SELECT count(*) FROM discount_redemptions"
    . " WHERE code = 'LIFE' AND state = 'released'"), 2,
    'two released uses stay recorded');

done_testing;
