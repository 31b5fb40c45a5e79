#!/usr/bin/perl
# The emails about an order, each with a plain-text and an HTML part and
# the order page link, each enqueued in the transaction of the change that
# causes it and sent exactly once however often Stripe or a lab repeats
# itself: the receipt with its breakdown (lines with their tax, the
# discount and its code, shipping and its method, VAT, the invoice
# number), payment_failed (async payment failed), checkout_expired (only
# when a payment was started: an abandoned cart is not written to),
# in_production (a lab took the order), refunded (partial with what
# remains, then full) and shipped.

use strict;
use warnings;
use utf8;
use lib 't/lib';
use Test::More;
use JSON::PP;
use Darkroom::Test qw(wait_for);
use Darkroom::Stripe qw(demo_catalogue shop_conf fake_api event session
    charge signature);
use Darkroom::Mail qw(sandbox mail_conf);

my $t = Darkroom::Test->new;
my $stripe = fake_api($t);
my $mail = sandbox($t);
shop_conf($t, stripe => $stripe->url, secrets => ['whsec_emails'],
    http => mail_conf($t, $mail, 'resend')
        . '    darkroom_mail_order_url'
        . ' "https://shop.example/order.html?token={ORDER_TOKEN}";' . "\n");
demo_catalogue($t);
$t->start;

sub checkout {
    my ($qty, $email) = @_;
    my $r = $t->http(POST => '/api/checkout', {
        headers => { 'Content-Type' => 'application/json' },
        content => encode_json({ email => $email, items => [
            { photo => 'harbour-dawn', product => 'giclee-a3',
              quantity => $qty } ] }) });
    die "checkout: $r->{content}" unless $r->{status} == 201;
    my ($token) = $r->{json}{status_url} =~ m{([0-9a-f]{32})$};
    my ($id) = $t->sql_value("SELECT id FROM orders WHERE ref = :'p1'",
                             $r->{json}{order});
    return { id => $id, ref => $r->{json}{order}, token => $token,
             link => "https://shop.example/order.html?token=$token" };
}

sub deliver {
    my ($body) = @_;
    my $r = $t->http(POST => '/webhooks/stripe', { headers => {
        'Content-Type' => 'application/json',
        'Stripe-Signature' => signature('whsec_emails', $body) },
        content => $body });
    return $r->{json}{result} // "HTTP $r->{status} $r->{content}";
}

sub total { $t->sql_value("SELECT total FROM orders WHERE id = :'p1'", $_[0]{id}) }

sub settled {
    return wait_for(sub { $t->sql_value("SELECT count(*) FROM jobs"
        . " WHERE kind = 'email' AND done_at IS NULL") == 0 }, 20);
}

sub mails {
    my ($o, $tpl) = @_;
    return grep { ($_->{tag} // '') eq $tpl
                  && join(',', @{ $_->{to} || [] }) eq $o->{email} }
        $mail->messages;
}

sub jobs_of {
    my ($o, $tpl) = @_;
    return $t->sql_value("SELECT count(*) FROM jobs WHERE kind = 'email'"
        . " AND payload->>'template' = :'p1'"
        . " AND payload->>'order_id' = :'p2'", $tpl, $o->{id});
}

# one email of this template about this order, with both parts and the link
sub one_email {
    my ($o, $tpl, $what) = @_;
    ok(settled(), "$what: the mail jobs are done");
    my @m = mails($o, $tpl);
    is(scalar @m, 1, "$what: exactly one $tpl email");
    my $m = $m[0] // {};
    ok(length($m->{text} // ''), "$what: a plain-text part");
    like($m->{html} // '', qr/<html/, "$what: an HTML part");
    like($m->{text} // '', qr/\Q$o->{link}\E/, "$what: text links to the order page");
    like($m->{html} // '', qr/href="\Q$o->{link}\E"/, "$what: HTML links to it");
    return $m;
}

# --- receipt: the breakdown ----------------------------------------------
my $a = checkout(2, 'ada@example.com');
$a->{email} = 'ada@example.com';
# a known breakdown, set by hand in the columns the pricing steps fill,
# to check the receipt's layout against
$t->sql(<<'SQL', $a->{id});
UPDATE order_items SET discount = 900, tax = 1350, tax_rate = 20
 WHERE order_id = :'p1';
UPDATE orders SET discount_code = 'DEMO10', discount_amount = 900,
       shipping_amount = 495, shipping_method = 'standard',
       shipping_rate = 'Royal Mail Tracked 48', tax_amount = 1350,
       tax_inclusive = true, total = subtotal - 900 + 495,
       stripe_amount = subtotal - 900 + 495
 WHERE id = :'p1';
SQL
my $session = session(id => "cs_test_$a->{id}", order_id => $a->{id},
    ref => $a->{ref}, amount => total($a));
my $paid = event('checkout.session.completed', $session);
is(deliver($paid), 'paid', 'order A paid');
is(deliver($paid), 'duplicate', 'the event again');
my $m = one_email($a, 'receipt', 'receipt');
my $text = $m->{text} // '';
like($text, qr/^Invoice INV-000001$/m,
    'receipt: the invoice number its payment gave it');
like($text, qr/^2 x Harbour at Dawn \(Giclée print, A3\)\s+£90\.00$/m,
    'receipt: the line');
like($text, qr/^\s+less £9\.00 discount$/m, 'receipt: the line\'s discount');
like($text, qr/^\s+20% VAT: £13\.50$/m, 'receipt: the line\'s tax and rate');
like($text, qr/^Subtotal: £90\.00$/m, 'receipt: subtotal');
like($text, qr/^Discount \(DEMO10\): -£9\.00$/m, 'receipt: discount with its code');
like($text, qr/^Shipping \(Royal Mail Tracked 48\): £4\.95$/m,
    'receipt: shipping with its method');
like($text, qr/^Total paid: £85\.95$/m, 'receipt: total');
like($text, qr/^Prices include VAT of £13\.50\.$/m,
    'receipt: the VAT, included in the prices');
unlike($text, qr/^VAT: /m, 'receipt: not added on top');
like($m->{html}, qr/INV-000001/, 'receipt HTML: invoice number');
like($m->{html}, qr/DEMO10/, 'receipt HTML: discount code');
like($m->{html}, qr/Royal Mail Tracked 48/, 'receipt HTML: shipping method');
like($m->{html}, qr/Prices include VAT of £13\.50/, 'receipt HTML: VAT');

# prices without tax: VAT is a line of its own, added to the total
my $u = checkout(1, 'uma@example.com');
$u->{email} = 'uma@example.com';
$t->sql(<<'SQL', $u->{id});
UPDATE order_items SET tax = 900, tax_rate = 20 WHERE order_id = :'p1';
UPDATE orders SET tax_amount = 900, tax_inclusive = false,
       total = subtotal + 900, stripe_amount = subtotal + 900
 WHERE id = :'p1';
SQL
is(deliver(event('checkout.session.completed', session(
    id => "cs_test_$u->{id}", order_id => $u->{id}, ref => $u->{ref},
    amount => total($u)))), 'paid', 'order U paid');
$m = one_email($u, 'receipt', 'receipt without tax in the prices');
like($m->{text}, qr/^VAT: £9\.00\nTotal paid: £54\.00$/m,
    'receipt: VAT added, then the total');
like($m->{text}, qr/^Invoice INV-000002$/m,
    'receipt: the next invoice number, for the next payment');

# --- in production: a lab takes the order --------------------------------
$t->sql(<<'SQL', $a->{id});
INSERT INTO lab_orders (order_id, lab, status, idempotency_key)
VALUES (:'p1', 'prodigi', 'submitted', 'mail13-a-1'),
       (:'p1', 'printspace', 'submitted', 'mail13-a-2');
SQL
my @lo = map { $_->[0] } $t->sql("SELECT id FROM lab_orders"
    . " WHERE order_id = :'p1' ORDER BY id", $a->{id});
for my $lo (@lo, @lo) {
    $t->sql("SELECT lab_apply(:'p1', 'in_production', 'InProgress',"
        . " '[]'::jsonb, 'test', NULL)", $lo);
}
is($t->sql_value("SELECT status FROM orders WHERE id = :'p1'", $a->{id}),
    'in_production', 'order A in production');
is(jobs_of($a, 'in_production'), 1, 'one in_production job, however many'
    . ' lab updates');
$m = one_email($a, 'in_production', 'in production');
like($m->{subject}, qr/\Q$a->{ref}\E is being made/, 'in production: subject');

# --- shipped: the link added ---------------------------------------------
$t->sql("SELECT lab_apply(:'p1', 'shipped', 'Shipped', :'p2'::jsonb,"
    . " 'test', NULL)", $lo[0], encode_json([{ id => 'sh-1',
        carrier => 'Royal Mail', tracking_number => 'RM123456GB',
        tracking_url => 'https://track.example/RM123456GB' }]));
$m = one_email($a, 'shipped', 'shipped');
like($m->{text}, qr/Tracking number: RM123456GB/, 'shipped: tracking');

# --- refunds: partial, what remains, then full ---------------------------
my $pi = "pi_cs_test_$a->{id}";
my $partial = event('charge.refunded', charge(payment_intent => $pi,
    amount => total($a), amount_refunded => 2000, order_id => $a->{id}));
is(deliver($partial), 'partially refunded', 'a partial refund');
is(deliver($partial), 'duplicate', 'the event again');
# the same refund told by another event (Stripe resends under a new id)
deliver(event('charge.refunded', charge(payment_intent => $pi,
    amount => total($a), amount_refunded => 2000, order_id => $a->{id})));
ok(settled(), 'refund mails done');
my @r = mails($a, 'refunded');
is(scalar @r, 1, 'one email for the partial refund');
like($r[0]{text}, qr/We have refunded £20\.00 of your order \Q$a->{ref}\E/,
    'partial: the amount');
like($r[0]{text}, qr/What remains paid: £65\.95\./, 'partial: what remains');
like($r[0]{html}, qr/£65\.95/, 'partial HTML: what remains');
like($r[0]{text}, qr/\Q$a->{link}\E/, 'partial: the order link');
my $full = event('charge.refunded', charge(payment_intent => $pi,
    amount => total($a), amount_refunded => total($a), refunded => 1,
    order_id => $a->{id}));
is(deliver($full), 'refunded', 'refunded in full');
is(deliver($full), 'duplicate', 'the event again');
ok(settled(), 'refund mails done');
@r = mails($a, 'refunded');
is(scalar @r, 2, 'a second email for the full refund');
my ($f) = grep { $_->{text} =~ /in full/ } @r;
like($f->{text} // '', qr/refunded in full: £85\.95/, 'full: the amount');
like($f->{html} // '', qr/href="\Q$a->{link}\E"/, 'full HTML: the order link');

# --- payment failed (an async method) ------------------------------------
my $b = checkout(1, 'bob@example.com');
$b->{email} = 'bob@example.com';
my $s = session(id => "cs_test_$b->{id}", order_id => $b->{id},
    ref => $b->{ref}, amount => total($b), payment_status => 'unpaid');
is(deliver(event('checkout.session.completed', $s)), 'awaiting payment',
    'a bank debit started');
is(jobs_of($b, 'receipt'), 0, 'no receipt yet');
my $failed = event('checkout.session.async_payment_failed', $s);
is(deliver($failed), 'cancelled', 'the payment failed');
is(deliver($failed), 'duplicate', 'the event again');
is(deliver(event('checkout.session.async_payment_failed', $s)),
    'ignored: order already settled', 'another event of it');
is(jobs_of($b, 'payment_failed'), 1, 'one payment_failed job');
$m = one_email($b, 'payment_failed', 'payment failed');
like($m->{text}, qr/did not go through/, 'payment failed: says so');
like($m->{text}, qr{order once more at http://shop\.example/},
    'payment failed: a way to try again');
like($m->{html}, qr{href="http://shop\.example/"[^>]*>Try again},
    'payment failed HTML: the try-again link');

# --- checkout expired: only when a payment was started -------------------
my $c = checkout(1, 'cat@example.com');
$c->{email} = 'cat@example.com';
$s = session(id => "cs_test_$c->{id}", order_id => $c->{id},
    ref => $c->{ref}, amount => total($c), status => 'expired',
    payment_status => 'unpaid', payment_intent => "pi_started_$c->{id}");
my $expired = event('checkout.session.expired', $s);
is(deliver($expired), 'expired', 'a started payment expired');
is(deliver($expired), 'duplicate', 'the event again');
is(jobs_of($c, 'checkout_expired'), 1, 'one checkout_expired job');
$m = one_email($c, 'checkout_expired', 'checkout expired');
like($m->{text}, qr/was\nstarted but not completed in time/,
    'checkout expired: says so');
like($m->{text}, qr{order once more at http://shop\.example/},
    'checkout expired: a way to try again');

my $d = checkout(1, 'dan@example.com');
$s = session(id => "cs_test_$d->{id}", order_id => $d->{id},
    ref => $d->{ref}, amount => total($d), status => 'expired',
    payment_status => 'unpaid');
$s->{payment_intent} = undef;
is(deliver(event('checkout.session.expired', $s)), 'expired',
    'an abandoned checkout expired');
is(jobs_of($d, 'checkout_expired'), 0,
    'no email: the customer never started paying');

ok(settled(), 'every mail job done');
is($t->sql_value("SELECT count(*) FROM emails WHERE status <> 'sent'"), 0,
    'every email sent');
is($t->sql_value("SELECT count(*) FROM emails WHERE body_html IS NULL"), 0,
    'every one with an HTML part');

done_testing();
