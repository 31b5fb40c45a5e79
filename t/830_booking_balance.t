#!/usr/bin/perl
# A booking's balance, end to end against tools/stripe-sandbox and the mail
# sandbox.  The deposit's (and the balance's) payment page sends the payer
# back to the booking's page; POST <ref>/pay makes the balance order (or
# reuses it) and its Checkout Session; paying it at the sandbox (a signed
# webhook) records balance_paid with one booking_balance_paid email, and a
# replayed webhook changes nothing; with nothing due, 409 and no order; the
# booking_balance_due email goes once at its time (the booking_reminders
# job), never for a cancelled booking; the owner sends it on demand
# (audited); a cancel with the balance paid refunds both orders, one
# stripe_refund job each with its own idempotency key; a balance paid after
# the cancel goes back.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use JSON::PP;
use Darkroom::Test qw(wait_for);
use Darkroom::Stripe qw(sandbox form_of);
use Darkroom::Bookings qw(bookings_conf bookings_demo);
use Darkroom::Mail;

my $t = Darkroom::Test->new;
my $port = $t->port(0);
my $mail = Darkroom::Mail::sandbox($t);
bookings_conf($t, stripe => 'http://127.0.0.1:' . $t->port(1),
    secrets => ['whsec_sandbox_secret'],
    http => Darkroom::Mail::mail_conf($t, $mail, 'postmark'),
    server => "location /admin/api/bookings/ { darkroom_bookings_admin; }\n");
my $sb = sandbox($t, webhook => "http://127.0.0.1:$port/webhooks/stripe");
bookings_demo($t);
$t->start;

sub post_json {
    my ($path, $body) = @_;
    return $t->http(POST => $path, {
        headers => { 'Content-Type' => 'application/json' },
        content => ref $body ? encode_json($body) : $body });
}
sub code { (($_[0]{json} || {})->{error} || {})->{code} // '' }
sub sid { ($_[0] // '') =~ m{/pay/(cs_\w+)$} ? $1 : undef }
sub sessions { grep { $_->{path} eq '/v1/checkout/sessions'
    && $_->{method} eq 'POST' } @{ $sb->control(GET => '/_sandbox/requests') } }
sub refunds { grep { $_->{path} eq '/v1/refunds' && $_->{method} eq 'POST' }
    @{ $sb->control(GET => '/_sandbox/requests') } }
sub show {
    my ($b) = @_;
    my $r = $t->http(GET => "/api/bookings/$b->{ref}?token=$b->{manage_token}");
    return $r->{json}{booking};
}
sub col {
    my ($b, $c) = @_;
    return $t->sql_value("SELECT $c FROM bookings WHERE ref = :'p1'",
        $b->{ref});
}
sub orders { $t->sql_value("SELECT count(*) FROM orders") }

# booked and its deposit paid at the sandbox: confirmed
sub confirmed {
    my ($start, $email) = @_;
    my $r = post_json('/api/bookings/book', { type => 'portrait',
        start => $start, name => 'Ada', email => $email,
        answers => { who => 'Ada' } });
    is($r->{status}, 201, "booked $start") or diag $r->{content};
    my $b = $r->{json}{booking};
    $sb->control(POST => '/_sandbox/pay/' . sid($r->{json}{checkout_url}),
        { action => 'pay' });
    ok(wait_for(sub { col($b, 'state') eq 'confirmed' }, 20),
        '... its deposit paid: confirmed');
    return $b;
}

# --- the deposit's page sends the payer back to the booking's page --------------
my $a = confirmed('2027-03-06T10:00:00Z', 'ada@example.com');
my $page = "http://127.0.0.1:$port/booking.html?ref=$a->{ref}"
    . "&token=$a->{manage_token}";
my $f = form_of((sessions())[0]{body});
is($f->{success_url}, "$page&paid=1",
    "the deposit's success_url: the booking's page");
is($f->{cancel_url}, $page, '... and its cancel_url');

my $bk = show($a);
is_deeply([ @$bk{qw(price deposit paid balance balance_paid)} ],
    [20000, 5000, 5000, 15000, 0], 'price, deposit, paid, balance due');
like($bk->{refund_until}, qr/^2027-03-04T10:00:00/,
    'the deposit refundable until refund_hours (48) before');

# --- refusals write nothing ------------------------------------------------------
my $n = orders();
my $r = post_json("/api/bookings/$a->{ref}/pay", { token => '0' x 32 });
is($r->{status}, 404, 'pay with a wrong token: 404');
$r = post_json("/api/bookings/$a->{ref}/pay", '{"token":');
is($r->{status}, 400, 'bad JSON: 400');
is(code($r), 'bad_json', '... bad_json');
is(orders(), $n, '... no order written');

# --- POST <ref>/pay: the balance order and its session, reused -------------------
$r = post_json("/api/bookings/$a->{ref}/pay", { token => $a->{manage_token} });
is($r->{status}, 200, 'pay: 200') or diag $r->{content};
my $url = $r->{json}{checkout_url};
ok(sid($url), "the sandbox's payment page: $url");
is_deeply([ @{ $r->{json} }{qw(amount currency)} ], [15000, 'GBP'],
    '... for the balance');
is(orders(), $n + 1, 'one balance order');
my ($bo) = $t->sql("SELECT o.id, o.total, o.status, i.kind, i.product_name,"
    . " i.photo_id FROM orders o JOIN order_items i ON i.order_id = o.id"
    . " JOIN bookings b ON b.balance_order_id = o.id WHERE b.ref = :'p1'",
    $a->{ref});
is_deeply([ @$bo[1 .. 5] ],
    [15000, 'pending_payment', 'session', 'Balance', $a->{ref}],
    'the booking points to it: a session line of the balance');
$f = form_of((sessions())[-1]{body});
is($f->{success_url}, "$page&paid=1",
    "the balance's success_url: the booking's page");
is($f->{'line_items[0][price_data][unit_amount]'}, 15000,
    '... 150.00 asked');

$r = post_json("/api/bookings/$a->{ref}/pay", { token => $a->{manage_token} });
is($r->{json}{checkout_url}, $url, 'again: the same payment page');
is(orders(), $n + 1, '... and no second order');

# --- paid at the sandbox: recorded once ------------------------------------------
$sb->control(POST => '/_sandbox/pay/' . sid($url), { action => 'pay' });
ok(wait_for(sub { col($a, 'balance_paid') == 15000 }, 20),
    'the webhook recorded the balance paid');
sub paid_mails { $t->sql_value("SELECT count(*) FROM jobs WHERE kind ="
    . " 'email' AND payload->>'template' = 'booking_balance_paid'") }
is(paid_mails(), 1, 'one booking_balance_paid email queued');
is($t->sql_value("SELECT count(*) FROM booking_events e JOIN bookings b"
    . " ON b.id = e.booking_id WHERE b.ref = :'p1' AND e.detail ? 'balance'"
    . " AND e.cause LIKE 'stripe:evt_%'", $a->{ref}), 1,
    'a booking_events row, caused by the Stripe event');
$bk = show($a);
is_deeply([ @$bk{qw(state paid balance balance_paid)} ],
    ['confirmed', 20000, 0, 15000], 'the client sees it all paid');
ok(wait_for(sub { grep { $_->{subject} =~ /^Balance received/ }
    $mail->messages }, 20), 'the receipt reached the mail sandbox');
my ($m) = grep { $_->{subject} =~ /^Balance received/ } $mail->messages;
like($m->{text}, qr/received \S*150\.00/,
    '... naming the amount');
is(scalar @{ $m->{attachments} || [] }, 0, '... with no invite');

# the booking's emails are the receipts: the shop sends none for its orders
my ($dep_inv, $dep_ref) = @{ ($t->sql("SELECT o.invoice_number, o.ref"
    . " FROM orders o JOIN bookings b ON b.deposit_order_id = o.id"
    . " WHERE b.ref = :'p1'", $a->{ref}))[0] };
my ($bal_inv, $bal_ref) = @{ ($t->sql("SELECT o.invoice_number, o.ref"
    . " FROM orders o JOIN bookings b ON b.balance_order_id = o.id"
    . " WHERE b.ref = :'p1'", $a->{ref}))[0] };
ok($dep_inv && $bal_inv && $dep_inv ne $bal_inv,
    "each of the booking's orders has its invoice number: $dep_inv, $bal_inv");
like($m->{text}, qr/Receipt: \S*150\.00 paid \d+ \w+ \d{4}, order \Q$bal_ref\E/,
    "the balance's email carries the receipt: amount, date, order")
    or diag $m->{text};
like($m->{text}, qr/Invoice \Q$bal_inv\E/, '... and the invoice number');
ok(wait_for(sub { grep { $_->{subject} =~ /is booked/ } $mail->messages }, 20),
    'the confirmation reached the mail sandbox');
my ($cm) = grep { $_->{subject} =~ /is booked/ } $mail->messages;
like($cm->{text}, qr/Receipt: \S*50\.00 paid \d+ \w+ \d{4}, order \Q$dep_ref\E/,
    "the confirmation carries the deposit's receipt") or diag $cm->{text};
like($cm->{text}, qr/Invoice \Q$dep_inv\E/, '... and its invoice number');
like($cm->{html}, qr/Invoice<\/td><td>\Q$dep_inv\E/, '... in the HTML too');
is($t->sql_value("SELECT count(*) FROM jobs WHERE kind = 'email'"
    . " AND payload->>'template' = 'receipt'"), 0,
    'no shop receipt queued for the deposit or the balance');
is(scalar(grep { $_->{subject} =~ /^Your order/ } $mail->messages), 0,
    '... none sent');

sub balance_event {
    my ($e) = grep { $_->{type} eq 'checkout.session.completed'
        && $_->{object_id} eq sid($url) }
        @{ $sb->control(GET => '/_sandbox/events') };
    return $e;
}
my $evt = balance_event();
ok($evt, "the balance's event");
$sb->control(POST => "/_sandbox/resend/$evt->{id}");
ok(wait_for(sub { my $e = balance_event();
    2 == grep { $_->{status} == 200 } @{ $e->{deliveries} } }, 20),
    'the replay was delivered and taken');
is(col($a, 'balance_paid'), 15000, 'a replayed webhook: balance_paid as is');
is(paid_mails(), 1, '... still one email');

# --- nothing due: 409, nothing written ------------------------------------------
$n = orders();
$r = post_json("/api/bookings/$a->{ref}/pay", { token => $a->{manage_token} });
is($r->{status}, 409, 'pay with nothing due: 409');
is(code($r), 'nothing_due', '... nothing_due');
is(orders(), $n, '... no order written');

# --- the automatic balance-due email: once, at its time ---------------------------
my $c = confirmed('2027-03-06T12:00:00Z', 'cy@example.com');
my $d = confirmed('2027-03-06T14:00:00Z', 'dee@example.com');
$r = post_json("/api/bookings/$d->{ref}/cancel",
    { token => $d->{manage_token}, reason => 'moving away' });
is($r->{status}, 200, 'one of them cancelled');
# due: 72 hours before; move both into the window (a day ahead)
for my $b ($c, $d) {
    $t->sql("UPDATE bookings SET starts_at = s, ends_at = s + interval"
        . " '1 hour', busy = tstzrange(s, s + interval '1 hour') FROM"
        . " (SELECT date_trunc('hour', now()) + :'p2' * interval '1 hour'"
        . " AS s) x WHERE ref = :'p1'", $b->{ref}, $b == $c ? 24 : 26);
}
sub due_mails { $t->sql_value("SELECT count(*) FROM jobs WHERE kind ="
    . " 'email' AND payload->>'template' = 'booking_balance_due'"
    . " AND payload->>'booking_id' = :'p1'", col($_[0], 'id')) }
$t->sql("UPDATE jobs SET run_at = now() WHERE kind = 'booking_reminders'");
ok(wait_for(sub { due_mails($c) == 1 }, 20),
    "the booking_reminders job queued the balance's link")
    or diag $t->error_log;
ok(col($c, 'balance_due_sent_at'), '... recorded on the booking');
is(due_mails($d), 0, '... none for the cancelled one');
is($t->sql_value("SELECT bookings_balance_due_enqueue()"), 0,
    'run again: nothing more');
is(due_mails($c), 1, '... still one');
ok(wait_for(sub { grep { $_->{subject} =~ /^Balance due/
    && $_->{to}[0] eq 'cy@example.com' } $mail->messages }, 20),
    'it reached the client');
($m) = grep { $_->{subject} =~ /^Balance due/ } $mail->messages;
like($m->{text}, qr{booking\.html\?ref=$c->{ref}&token=$c->{manage_token}},
    "... with the link to the booking's page");
like($m->{text}, qr/Balance due: \S*150\.00/,
    '... and the amount');

# --- the owner's balance link ----------------------------------------------------
sub admin {
    my ($path) = @_;
    return $t->http(POST => "/admin/api/bookings/bookings/$path", {
        headers => { Authorization => 'Bearer admin-token-1',
                     'Content-Type' => 'application/json' },
        content => '{}' });
}
$r = admin("$c->{ref}/balance-link");
is($r->{status}, 200, 'the owner sends the link: 200') or diag $r->{content};
is($r->{json}{sent}{amount}, 15000, '... for the balance');
is(due_mails($c), 2, '... a second email queued');
$r = admin("$c->{ref}/balance-link");
is(due_mails($c), 3, 'each time asked');
is($t->sql_value("SELECT count(*) FROM booking_events WHERE booking_id ="
    . " :'p1' AND cause LIKE 'admin:%' AND detail ? 'balance_link'",
    col($c, 'id')), 2, '... each in the booking_events');
is(admin("$a->{ref}/balance-link")->{status}, 409, 'nothing due: 409');
is(admin("$d->{ref}/balance-link")->{status}, 409, 'cancelled: 409');
is(admin('BK-999999/balance-link')->{status}, 404, 'no such booking: 404');
is($t->sql_value("SELECT count(*) FROM console_audit WHERE path LIKE"
    . " '/admin/api/bookings/bookings/%/balance-link'"), 5,
    'every call audited');

# --- a deposit of the whole price: no balance ------------------------------------
$t->sql("UPDATE bookings SET deposit_paid = price WHERE ref = :'p1'",
    $c->{ref});
is(show($c)->{balance}, 0, 'a deposit of the whole price: nothing due');
is(post_json("/api/bookings/$c->{ref}/pay",
    { token => $c->{manage_token} })->{status}, 409, '... nothing to pay');
$t->sql("UPDATE bookings SET deposit_paid = 5000 WHERE ref = :'p1'",
    $c->{ref});

# --- cancelled with the balance paid: both orders refunded ------------------------
$r = post_json("/api/bookings/$a->{ref}/cancel",
    { token => $a->{manage_token}, reason => 'ill' });
is($r->{status}, 200, 'cancelled with the balance paid') or diag $r->{content};
is($r->{json}{refund}{amount}, 20000, '... all of it refunded');
my @rj = $t->sql("SELECT payload->>'order_id', payload->>'amount',"
    . " payload->>'idempotency_key' FROM jobs j JOIN bookings b"
    . " ON payload->>'order_id' IN (b.deposit_order_id::text,"
    . " b.balance_order_id::text) WHERE kind = 'stripe_refund'"
    . " AND b.ref = :'p1' ORDER BY j.id", $a->{ref});
is(scalar @rj, 2, 'two stripe_refund jobs');
is_deeply([ sort map { $_->[1] } @rj ], [15000, 5000],
    '... the deposit and the balance');
isnt($rj[0][0], $rj[1][0], '... one per order');
isnt($rj[0][2], $rj[1][2], '... each with its own idempotency key');
my %key = map { $_->[2] => 1 } @rj;
sub a_refunds { grep { $key{ $_->{headers}{'idempotency-key'} // '' } }
    refunds() }
ok(wait_for(sub { scalar a_refunds() >= 2 }, 30), 'both reached the sandbox');
my @re = a_refunds();
is(scalar @re, 2, 'two refund requests');
is_deeply([ sort map { $_->{headers}{'idempotency-key'} } @re ],
    [ sort map { $_->[2] } @rj ], '... with the jobs\' keys');
is_deeply([ sort map { form_of($_->{body})->{amount} } @re ],
    [15000, 5000], '... and amounts');
ok(wait_for(sub { col($a, 'deposit_refunded') == 5000
    && col($a, 'balance_refunded') == 15000 }, 20),
    'the booking records both refunds');
is(show($a)->{paid}, 0, 'the client sees nothing kept');
$r = post_json("/api/bookings/$a->{ref}/pay", { token => $a->{manage_token} });
is($r->{status}, 409, 'a cancelled booking: nothing to pay (409)');

# --- a balance paid after the cancel: it goes back -------------------------------
my $e = confirmed('2027-03-07T10:00:00Z', 'eve@example.com');
$r = post_json("/api/bookings/$e->{ref}/pay", { token => $e->{manage_token} });
is($r->{status}, 200, "a balance's page opened");
my $esid = sid($r->{json}{checkout_url});
$r = post_json("/api/bookings/$e->{ref}/cancel",
    { token => $e->{manage_token} });
is($r->{status}, 200, '... then the booking cancelled');
is($r->{json}{refund}{amount}, 5000, '... its deposit refunded, no balance');
$sb->control(POST => "/_sandbox/pay/$esid", { action => 'pay' });
my $eo = col($e, 'balance_order_id');
sub e_refunds { $t->sql("SELECT payload->>'amount', payload->>'reason'"
    . " FROM jobs WHERE kind = 'stripe_refund' AND payload->>'order_id'"
    . " = :'p1'", $eo) }
ok(wait_for(sub { scalar(e_refunds()) == 1 }, 20),
    'the balance paid afterwards: a stripe_refund job');
is_deeply([ e_refunds() ], [[15000, 'balance_not_due']], '... all of it');
is(col($e, 'state'), 'cancelled', '... the booking stays cancelled');
is(paid_mails(), 1, '... and no balance receipt for it');
ok(wait_for(sub { col($e, 'balance_refunded') == 15000 }, 30),
    'the refund recorded on the booking');
is(show($e)->{paid}, 0, 'the client sees nothing kept');

done_testing;
