#!/usr/bin/perl
# Mail through each provider's request format: a paid order sends exactly
# one receipt with its items and totals, placeholders HTML-escaped; refunds
# and orders needing review send theirs; the emails table shows it all.

use strict;
use warnings;
use utf8;
use lib 't/lib';
use Test::More;
binmode(Test::More->builder->$_, ':encoding(UTF-8)') for qw(output failure_output todo_output);
use JSON::PP;
use Darkroom::Test qw(wait_for);
use Darkroom::Stripe qw(signature event session charge demo_catalogue
    shop_conf fake_api);
use Darkroom::Mail qw(sandbox mail_conf paid_order);

my $t = Darkroom::Test->new;
my $stripe = fake_api($t);
my $mail = sandbox($t);

sub configure {
    my ($provider) = @_;
    shop_conf($t, stripe => $stripe->url, secrets => ['whsec_mail'],
        http => mail_conf($t, $mail, $provider));
}

configure('postmark');
demo_catalogue($t);
# a title that must never reach HTML unescaped
$t->sql(q{INSERT INTO photos (id, title) VALUES ('xss', '<script>alert("x")</script> & Sons');
          INSERT INTO photo_products VALUES ('xss', 'giclee-a3')});
$t->start;

sub deliver {
    my ($b) = @_;
    return $t->http(POST => '/webhooks/stripe', { headers => {
        'Content-Type' => 'application/json',
        'Stripe-Signature' => signature('whsec_mail', $b) }, content => $b });
}

sub emails_for {
    my ($o) = @_;
    return $t->sql("SELECT template, status, provider, recipient,"
        . " provider_message_id, message_key, attempts, coalesce(error, '')"
        . " FROM emails WHERE order_id = :'p1' ORDER BY id", $o->{id});
}

sub wait_sent {
    my ($o, $n) = @_;
    $n //= 1;
    return wait_for(sub {
        $t->sql_value("SELECT count(*) FROM emails WHERE order_id = :'p1'"
            . " AND status = 'sent'", $o->{id}) >= $n }, 15);
}

sub messages_to_ref {
    my ($ref) = @_;
    return grep { ($_->{subject} // '') =~ /\Q$ref\E/ } $mail->messages;
}

# --- Postmark, the whole way: checkout, signed webhook, paid, receipt ------
my $r = $t->http(POST => '/api/checkout', {
    headers => { 'Content-Type' => 'application/json' },
    content => encode_json({ email => 'ada@example.com', items => [
        { photo => 'harbour-dawn', product => 'giclee-a3', quantity => 2 },
        { photo => 'xss', product => 'giclee-a3', quantity => 1 } ] }) });
is($r->{status}, 201, 'checkout');
my ($id, $ref, $total) = @{ ($t->sql("SELECT id, ref, total FROM orders"
    . " WHERE ref = :'p1'", $r->{json}{order}))[0] };
my $o1 = { id => $id, ref => $ref };
is($total, 13500, 'total 3 x 4500');
my $body = event('checkout.session.completed', session(id => "cs_test_$id",
    order_id => $id, ref => $ref, amount => $total));
$r = deliver($body);
is($r->{json}{result}, 'paid', 'order paid by the webhook');
deliver($body);

ok(wait_sent($o1), 'receipt sent');
sleep 1;    # any second copy would have had time to arrive
my @m = messages_to_ref($ref);
is(scalar @m, 1, 'exactly one receipt, the event delivered twice');
my $m = $m[0];
is($m->{provider}, 'postmark', 'through Postmark');
is_deeply($m->{to}, ['ada@example.com'], 'to the customer');
is($m->{from}, 'Darkroom Prints <shop@example.com>', 'from the shop');
is($m->{reply_to}, 'help@example.com', 'replies to the shop');
is($m->{subject}, "Your order $ref from Darkroom Prints", 'subject');
is($m->{tag}, 'receipt', 'tagged with the template');
is($m->{stream}, 'outbound', 'transactional stream');
like($m->{text}, qr/^2 x Harbour at Dawn \(Giclée print, A3\)\s+£90\.00$/m,
    'text: first line with quantity and amount');
like($m->{text}, qr/^1 x <script>alert\("x"\)<\/script> & Sons \(Giclée print, A3\)\s+£45\.00$/m,
    'text: second line, plain text as is');
like($m->{text}, qr/^Total paid: £135\.00$/m, 'text: total');
like($m->{text}, qr/Ada Buyer\n1 Harbour Row\nWhitby YO21 1AA\nGB\n/,
    'text: shipping address');
like($m->{text}, qr/Please quote \Q$ref\E/, 'text: the order reference');
like($m->{html}, qr/&lt;script&gt;alert\(&quot;x&quot;\)&lt;\/script&gt; &amp; Sons/,
    'html: the <script> title arrives escaped');
unlike($m->{html}, qr/<script/i, 'html: no script element anywhere');
like($m->{html}, qr/£135\.00/, 'html: total');
like($m->{html}, qr/2 &times; Harbour at Dawn/, 'html: items');

my ($row) = emails_for($o1);
my ($tpl, $status, $prov, $rcpt, $pmid, $key, $attempts) = @$row;
is_deeply([$tpl, $status, $prov, $rcpt, $attempts],
    ['receipt', 'sent', 'postmark', 'ada@example.com', 1],
    'emails row: receipt sent through postmark, one attempt');
is($pmid, $m->{id}, 'the provider message id recorded');
my @req = grep { $_->{path} eq '/email' } $mail->requests;
is(scalar @req, 1, 'one request to Postmark');
is($req[0]{headers}{'x-postmark-server-token'}, 'mail-token-1', 'server token header');
is(decode_json($req[0]{body})->{Metadata}{darkroom_key}, $key,
    'message key in the metadata');
ok($t->sql_value("SELECT done_at IS NOT NULL FROM jobs WHERE kind = 'email'"
    . " AND payload->>'order_id' = :'p1'", $id), 'email job done');

# --- SendGrid --------------------------------------------------------------
configure('sendgrid');
$t->reload;
my $o2 = paid_order($t, items => [['moor-rain', 'giclee-a3', 1],
    ['harbour-dawn', 'canvas-50', 1]], email => 'bea@example.com');
is($o2->{result}, 'paid', 'second order paid');
ok(wait_sent($o2), 'receipt sent');
@m = messages_to_ref($o2->{ref});
is(scalar @m, 1, 'one receipt');
$m = $m[0];
is($m->{provider}, 'sendgrid', 'through SendGrid');
is_deeply($m->{to}, ['bea@example.com'], 'to the customer');
is($m->{from}, 'shop@example.com', 'from address');
is($m->{from_name}, 'Darkroom Prints', 'from name');
like($m->{text}, qr/^1 x Harbour at Dawn \(Canvas, 50 x 70 cm\)\s+£120\.00$/m,
    'text: canvas line');
like($m->{text}, qr/^Total paid: £165\.00$/m, 'text: total');
@req = grep { $_->{path} eq '/v3/mail/send' } $mail->requests;
is(scalar @req, 1, 'one request to SendGrid');
is($req[0]{headers}{authorization}, 'Bearer mail-token-1', 'bearer token');
my $sg = decode_json($req[0]{body});
is_deeply([map { $_->{type} } @{ $sg->{content} }], ['text/plain', 'text/html'],
    'text first, then HTML');
is_deeply($sg->{categories}, ['receipt'], 'category');
($row) = emails_for($o2);
is_deeply([@$row[0 .. 3]], ['receipt', 'sent', 'sendgrid', 'bea@example.com'],
    'emails row');
is($row->[4], $m->{id}, 'X-Message-Id recorded');

# --- Resend ----------------------------------------------------------------
configure('resend');
$t->reload;
my $o3 = paid_order($t, items => [['harbour-dawn', 'digital', 3]],
    email => 'cy@example.com');
ok(wait_sent($o3, 2), 'receipt and delivery email sent');
@m = grep { $_->{subject} =~ /^Your order / } messages_to_ref($o3->{ref});
is(scalar @m, 1, 'one receipt');
is(scalar(grep { $_->{subject} =~ /^Your downloads / }
    messages_to_ref($o3->{ref})), 1, 'and one delivery email (t/443)');
$m = $m[0];
is($m->{provider}, 'resend', 'through Resend');
is_deeply($m->{to}, ['cy@example.com'], 'to the customer');
like($m->{text}, qr/^3 x Harbour at Dawn \(Digital download\)\s+£45\.00$/m, 'items');
unlike($m->{text}, qr/Shipping to/, 'no shipping block for a download');
($row) = grep { $_->[0] eq 'receipt' } emails_for($o3);
@req = grep { $_->{path} eq '/emails' } $mail->requests;
is(scalar @req, 2, 'two requests to Resend: the receipt, the delivery email');
@req = grep { ($_->{headers}{'idempotency-key'} // '') eq $row->[5] } @req;
is(scalar @req, 1, 'one for the receipt');
is($req[0]{headers}{'idempotency-key'}, $row->[5],
    'the message key is the Idempotency-Key');
like($row->[5], qr/^darkroom-email-[0-9a-f-]{36}$/, 'a key unique to this database');
is($row->[4], $m->{id}, 'Resend id recorded');

# --- refunded and the shop alert -------------------------------------------
$r = deliver(event('charge.refunded', charge(payment_intent => "pi_cs_test_$id",
    amount => 13500, amount_refunded => 4500, order_id => $id)));
is($r->{json}{result}, 'partially refunded', 'partial refund');
ok(wait_sent($o1, 2), 'refund email sent');
($m) = grep { $_->{subject} eq "Refund for your order $ref" } $mail->messages;
ok($m, 'refund email received');
like($m->{text} // '', qr/We have refunded £45\.00 of your order \Q$ref\E/,
    'with the amount refunded');

$r = deliver(event('charge.dispute.created', { id => 'dp_1',
    object => 'dispute', charge => 'ch_x', payment_intent => "pi_cs_test_$id",
    amount => 4500, reason => 'fraudulent' }));
like($r->{json}{result}, qr/needs_review/, 'dispute');
ok(wait_for(sub { $t->sql_value("SELECT count(*) FROM emails WHERE"
    . " template = 'shop_alert' AND status = 'sent'") }, 15), 'shop alert sent');
($m) = grep { $_->{subject} =~ /\Q$ref\E needs attention/ } $mail->messages;
is_deeply($m->{to}, ['owner@example.com'], 'the alert goes to the shop');
like($m->{text}, qr/Reason: Payment disputed: fraudulent\./, 'with the reason');
is($t->sql_value("SELECT kind FROM emails WHERE template = 'shop_alert' LIMIT 1"),
    'shop', 'recorded as shop mail');

is($t->sql_value("SELECT count(*) FROM emails WHERE status <> 'sent'"), 0,
    'every message sent');
# fulfilment may add mail of its own (a lab alert): count what was recorded
my $sent = $t->sql_value("SELECT count(*) FROM emails WHERE status = 'sent'");
cmp_ok($sent, '>=', 5, 'five messages or more recorded as sent');
is(scalar($mail->messages), $sent, 'as many in the mailbox: none twice');

done_testing();
