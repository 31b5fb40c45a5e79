#!/usr/bin/perl
# The money invariant over every order the suite made (issue 13): for each
# order, the lines sum to the subtotal, their discounts to the discount,
# their tax and the shipping's to the tax; the total is the sum of its
# parts; the total Stripe reported for the order's session is the total;
# an order paid (and fulfilled) without a review was paid exactly its
# total; invoice numbers are on paid orders only, without gaps or repeats.
#
# Each test has a database of its own and drops it when it ends, so the
# check runs there, on each test's database, just before (money_audit in
# t/lib/Darkroom/Test.pm, with DARKROOM_MONEY_AUDIT set by make test) and
# this test reads what every test recorded.  make test runs it after all
# the others, in a prove of its own (DARKROOM_MONEY_FINAL=1); in the
# parallel run it skips itself.  It first proves that the check finds each
# kind of violation, on orders of its own.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Darkroom::Test;

plan skip_all => 'runs after the other tests: make test runs it last'
    . ' (DARKROOM_MONEY_FINAL=1)' unless $ENV{DARKROOM_MONEY_FINAL};

my $audit = delete $ENV{DARKROOM_MONEY_AUDIT};

# --- the check finds what it should -----------------------------------------

my $t = Darkroom::Test->new;
$t->sql(<<'SQL');
CREATE FUNCTION pg_temp.o(p_ref text, p_status text, p_total bigint,
    p_subtotal bigint, p_discount bigint DEFAULT 0, p_tax bigint DEFAULT 0)
RETURNS bigint LANGUAGE sql AS $$
    INSERT INTO orders (ref, status_token, status, email, currency, total,
                        physical, subtotal, discount_amount, tax_amount)
    VALUES (p_ref, md5(p_ref), p_status, 'm@example.com', 'GBP', p_total,
            true, p_subtotal, p_discount, p_tax)
    RETURNING id;
$$;
CREATE FUNCTION pg_temp.i(p_order bigint, p_line int, p_qty int,
    p_unit bigint, p_amount bigint)
RETURNS void LANGUAGE sql AS $$
    INSERT INTO order_items (order_id, line, photo_id, product_id, title,
                             product_name, kind, quantity, unit_amount,
                             amount)
    VALUES (p_order, p_line, 'p', 'giclee-a3', 'P', 'Print', 'print', p_qty,
            p_unit, p_amount);
$$;
SELECT pg_temp.i(pg_temp.o('GOOD', 'paid', 9000, 9000), 1, 2, 4500, 9000);
UPDATE orders SET paid_amount = 9000, paid_currency = 'GBP', paid_at = now(),
       checkout_url = 'https://pay.example/x', stripe_amount = 9000,
       invoice_number = 'INV-1', invoice_seq = 1 WHERE ref = 'GOOD';
SELECT pg_temp.i(pg_temp.o('LINES', 'pending_payment', 9000, 9000),
                 1, 2, 4500, 8000);
SELECT pg_temp.i(pg_temp.o('DISCOUNT', 'pending_payment', 8500, 9000, 500),
                 1, 2, 4500, 9000);
SELECT pg_temp.i(pg_temp.o('TAX', 'pending_payment', 9000, 9000, 0, 100),
                 1, 2, 4500, 9000);
SELECT pg_temp.i(pg_temp.o('STRIPE', 'pending_payment', 9000, 9000),
                 1, 2, 4500, 9000);
UPDATE orders SET checkout_url = 'https://pay.example/s', stripe_amount = 100
 WHERE ref = 'STRIPE';
SELECT pg_temp.i(pg_temp.o('PAID', 'paid', 9000, 9000), 1, 2, 4500, 9000);
UPDATE orders SET paid_amount = 1, paid_currency = 'GBP', paid_at = now()
 WHERE ref = 'PAID';
SELECT pg_temp.i(pg_temp.o('REVIEWED', 'paid', 9000, 9000), 1, 2, 4500, 9000);
UPDATE orders SET paid_amount = 1, paid_currency = 'GBP', paid_at = now()
 WHERE ref = 'REVIEWED';
INSERT INTO order_events (order_id, from_status, to_status, cause)
SELECT id, 'pending_payment', 'needs_review', 'test' FROM orders
 WHERE ref = 'REVIEWED';
SELECT pg_temp.i(pg_temp.o('UNPAID', 'expired', 9000, 9000), 1, 2, 4500, 9000);
UPDATE orders SET invoice_number = 'INV-3', invoice_seq = 3
 WHERE ref = 'UNPAID';
SQL

my %found;
for ($t->sql('SELECT coalesce(order_ref, \'-\'), rule, detail'
             . ' FROM money_invariant_violations()')) {
    push @{$found{"$_->[0] $_->[1]"}}, $_->[2];
}
ok(!grep(/^GOOD /, keys %found), 'an order that keeps the rules passes')
    or diag explain \%found;
ok(!grep(/^REVIEWED /, keys %found),
   'a payment an admin reviewed is not held to the total');
for my $want ('LINES lines', 'LINES subtotal', 'DISCOUNT discount',
              'TAX tax', 'STRIPE stripe', 'PAID paid', 'UNPAID invoice',
              '- invoice')
{
    ok($found{$want}, "found: $want") or diag explain \%found;
}
like(join(' ', @{$found{'- invoice'} // []}), qr/1\.\.3: 2 numbers/,
     'the gap in the invoice numbers is named');

# --- every order of the suite ----------------------------------------------

my @files = $audit && -d $audit ? sort glob("$audit/*.tsv") : ();
note(scalar(@files) . ' test databases audited');
my ($orders, $tests) = (0, 0);
for my $f (@files) {
    open my $fh, '<', $f or next;
    my ($test, $n, @bad, @unchecked) = ('?', 0);
    while (<$fh>) {
        chomp;
        my ($kind, @rest) = split /\t/, $_, -1;
        $test = $rest[0] if $kind eq 'test';
        $n = $rest[0] if $kind eq 'orders';
        push @bad, join(' ', @rest) if $kind eq 'violation';
        push @unchecked, $rest[0] if $kind eq 'unchecked';
    }
    close $fh;
    if (@unchecked) {
        note("$test: not checked: @unchecked");
        next;
    }
    next unless $n;
    $tests++;
    $orders += $n;
    ok(!@bad, "$test: $n orders keep the money invariants")
        or diag(join "\n", map { "  $_" } @bad);
}
note("$orders orders of $tests tests checked");

done_testing;
