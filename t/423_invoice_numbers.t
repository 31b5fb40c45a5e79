#!/usr/bin/perl
# Invoice numbers: taken from shop_settings when an order is paid, in the
# payment's transaction, so they are unique and without gaps even when
# payments arrive at once; never for an order that is not paid (pending,
# expired, under review for a wrong amount) until an admin lets it out of
# review to paid; kept when the payment is reported again.  The customer's
# order page and the admin's order show it with the money breakdown.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use JSON::PP;
use HTTP::Tiny;
use POSIX ();
use Darkroom::Test qw(wait_for);
use Darkroom::Stripe qw(demo_catalogue shop_conf fake_api webhook);

my $t = Darkroom::Test->new;
my $stripe = fake_api($t);
shop_conf($t, stripe => $stripe->url, workers => 2);
demo_catalogue($t);
$t->sql(<<'SQL');
INSERT INTO shipping_zones (id, name) VALUES ('uk', 'UK');
INSERT INTO shipping_zone_countries VALUES ('GB', 'uk');
INSERT INTO shipping_rates (zone_id, currency, method, name, amount)
VALUES ('uk', 'GBP', 'standard', 'Royal Mail', 450);
INSERT INTO tax_rates (country, kind, rate) VALUES
  ('GB', 'print', 20), ('GB', 'digital', 20);
UPDATE shop_settings SET invoice_prefix = 'INV-', next_invoice = 1001;
SQL
$t->start;

my $admin = { Authorization => 'Bearer admin-token-1' };
my $secret = 'whsec_test_one';

sub checkout {
    my ($qty) = @_;
    my $r = $t->http(POST => '/api/checkout', {
        headers => { 'Content-Type' => 'application/json' },
        content => encode_json({ email => 'ada@example.com', items => [
            { photo => 'harbour-dawn', product => 'giclee-a3',
              quantity => $qty // 1 } ] }) });
    die "checkout: $r->{content}" unless $r->{status} == 201;
    my ($id, $total) = @{ ($t->sql("SELECT id, total FROM orders"
        . " WHERE ref = :'p1'", $r->{json}{order}))[0] };
    return { id => $id, ref => $r->{json}{order}, total => $total,
             status_url => $r->{json}{status_url} };
}

sub completed {
    my ($o, $amount) = @_;
    return Darkroom::Stripe::event('checkout.session.completed',
        Darkroom::Stripe::session(id => "cs_test_$o->{id}",
            order_id => $o->{id}, ref => $o->{ref},
            amount => $amount // $o->{total}));
}

sub invoice { $t->sql_value("SELECT invoice_number FROM orders WHERE id = :'p1'",
                            $_[0]{id}) }

# --- one payment -----------------------------------------------------------
my $a = checkout();
is(invoice($a), undef, 'pending: no invoice number');
my $r = webhook($t, $secret, completed($a));
is($r->{status}, 200, 'paid by the webhook') or diag $r->{content};
is(invoice($a), 'INV-001001', 'paid: the next number, with the prefix');
webhook($t, $secret, completed($a));
is(invoice($a), 'INV-001001', 'a second report keeps the number');
is($t->sql_value("SELECT next_invoice FROM shop_settings"), 1002,
    'and takes no other');

# the customer's order page: the invoice and the money
my $page = $t->http(GET => $a->{status_url})->{json};
is($page->{invoice_number}, 'INV-001001', 'the order page shows the invoice');
is($page->{subtotal}, 4500, 'subtotal');
is($page->{discount}, undef, 'no discount');
is_deeply($page->{shipping_charge}, { amount => 450, tax => 75,
    method => 'standard', name => 'Royal Mail', zone => 'uk' },
    'the shipping charge');
is($page->{tax_amount}, 750 + 75, 'tax');
ok($page->{tax_inclusive}, 'prices include tax');
is($page->{tax_label}, 'VAT 20 %', 'tax label');
is($page->{total}, 4950, 'total');
is($page->{items}[0]{tax}, 750, 'the item\'s tax');
is($page->{items}[0]{tax_rate}, 20, 'and rate');
is($page->{items}[0]{discount}, 0, 'and discount');
my $ad = $t->http(GET => "/admin/api/orders/$a->{ref}",
                  { headers => $admin })->{json};
is($ad->{invoice_number}, 'INV-001001', 'the admin sees it too');
is($ad->{shipping_charge}{amount}, 450, 'with the money');

# --- a wrong amount: review, no number; the admin approves: a number ---------
my $b = checkout();
webhook($t, $secret, completed($b, $b->{total} - 1));
is($t->sql_value("SELECT status FROM orders WHERE id = :'p1'", $b->{id}),
    'needs_review', 'underpaid: review');
is(invoice($b), undef, 'no invoice number under review');

# an expired order is never numbered
my $c = checkout();
webhook($t, $secret, Darkroom::Stripe::event('checkout.session.expired',
    Darkroom::Stripe::session(id => "cs_test_$c->{id}", order_id => $c->{id},
        amount => $c->{total}, status => 'expired',
        payment_status => 'unpaid')));
is($t->sql_value("SELECT status FROM orders WHERE id = :'p1'", $c->{id}),
    'expired', 'expired');
is(invoice($c), undef, 'expired: no invoice number');

$r = $t->http(POST => "/admin/api/orders/$b->{ref}/resolve", {
    headers => { %$admin, 'Content-Type' => 'application/json' },
    content => encode_json({ to => 'paid', note => 'bank rounding' }) });
is($r->{status}, 200, 'admin approves to paid') or diag $r->{content};
is($r->{json}{invoice_number}, 'INV-001002', 'approved: the next number');

# --- parallel payments -------------------------------------------------------
my @orders = map { checkout() } 1 .. 12;
my @kids;
for my $o (@orders) {
    my $body = completed($o);
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        my $res = HTTP::Tiny->new(timeout => 30)->post(
            'http://127.0.0.1:' . $t->port(0) . '/webhooks/stripe',
            { headers => { 'Content-Type' => 'application/json',
                'Stripe-Signature' => Darkroom::Stripe::signature($secret,
                                                                  $body) },
              content => $body });
        # not exit: the test's END blocks belong to the parent
        POSIX::_exit($res->{status} == 200 ? 0 : 1);
    }
    push @kids, $pid;
}
my $fails = 0;
for (@kids) { waitpid $_, 0; $fails++ if $? }
is($fails, 0, 'twelve webhooks at once, each answered 200');
ok(wait_for(sub { 12 == $t->sql_value("SELECT count(*) FROM orders"
    . " WHERE status = 'paid' AND id >= :'p1'", $orders[0]{id}) }, 10),
    'all twelve paid');

my @seq = map { $_->[0] } $t->sql("SELECT invoice_seq FROM orders"
    . " WHERE invoice_seq IS NOT NULL ORDER BY invoice_seq");
is_deeply(\@seq, [ 1001 .. 1014 ], 'numbers unique and without gaps');
is($t->sql_value("SELECT count(*) FROM orders WHERE (invoice_seq IS NULL)"
    . " <> (status NOT IN ('paid', 'in_production', 'shipped', 'delivered'))"),
    0, 'numbered exactly when paid');
is($t->sql_value("SELECT count(*) FROM orders WHERE invoice_number"
    . " <> 'INV-' || lpad(invoice_seq::text, 6, '0')"), 0,
    'number and sequence agree');
is($t->sql_value("SELECT next_invoice FROM shop_settings"), 1015,
    'the next number is the one after');

# --- a batch of the webhook's group commit, in one transaction ------------
# numbered at the commit, in the order the events came; a batch rolled
# back and an event rolled back to its savepoint after its order was paid
# take no number
my @batch = map { checkout() } 1 .. 4;
my @ev = map { completed($_) } @batch;
my @id = map { decode_json($_)->{id} } @ev;
my $handle = "SELECT coalesce(ev_state, 'ok') FROM stripe_handle_events(ARRAY[%s],"
    . " ARRAY[%s], ARRAY[%s]) ORDER BY ev_n";
sub batch_sql {
    my (@n) = @_;
    return sprintf($handle, join(',', map { ":'p" . (2 * $_ + 1) . "'" } @n),
        join(',', map { ":'p" . (2 * $_ + 2) . "'" } @n),
        join(',', map { "'checkout.session.completed'" } @n));
}
my @params = map { ($ev[$_], $id[$_]) } 0 .. 3;
$t->sql("BEGIN; " . batch_sql(0) . "; ROLLBACK;", @params);
is(invoice($batch[0]), undef, 'a batch rolled back: no number');
is($t->sql_value("SELECT next_invoice FROM shop_settings"), 1015,
    'and none taken');

# the fulfilment job of order 2 fails after its order was paid: that event
# alone rolls back, its number with it
$t->sql(<<"SQL");
CREATE FUNCTION t423_boom() RETURNS trigger LANGUAGE plpgsql AS \$\$
BEGIN
    IF NEW.payload->>'order_id' = '$batch[2]{id}' THEN
        RAISE EXCEPTION 't423: the job fails';
    END IF;
    RETURN NEW;
END \$\$;
CREATE TRIGGER t423_boom BEFORE INSERT ON jobs
    FOR EACH ROW EXECUTE FUNCTION t423_boom();
SQL
my @state = map { $_->[0] } $t->sql(batch_sql(3, 2, 1, 0), @params);
is_deeply(\@state, [ 'ok', 'P0001', 'ok', 'ok' ],
    'a batch of four: one event fails alone');
$t->sql("DROP TRIGGER t423_boom ON jobs; DROP FUNCTION t423_boom()");
is_deeply([ map { invoice($_) } @batch ],
    [ 'INV-001017', 'INV-001016', undef, 'INV-001015' ],
    'the others numbered in the order of their events, without a gap');
is($t->sql_value("SELECT status FROM orders WHERE id = :'p1'",
                 $batch[2]{id}), 'pending_payment',
    'the failed one is not paid');
is($t->sql_value("SELECT next_invoice FROM shop_settings"), 1018,
    'the next number is the one after');

done_testing;
