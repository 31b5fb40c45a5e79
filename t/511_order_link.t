#!/usr/bin/perl
# The order page link: an order's status token is derived from its seed
# with a key of darkroom_order_keys, so the receipt carries a link that
# works (GET it: 200 with the order), an idempotent checkout replay answers
# the same status_url, and keys rotate: with a new signing key first and
# the old one second, old orders keep their links and new orders are
# signed with the new key.  An order whose key left the keyring has no
# link to give (its emails quote the reference instead).

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use JSON::PP;
use Digest::SHA qw(hmac_sha256_hex sha256_hex);
use Darkroom::Test qw(wait_for);
use Darkroom::Stripe qw(demo_catalogue shop_conf fake_api event session
    signature);
use Darkroom::Mail qw(sandbox mail_conf);

my $t = Darkroom::Test->new;
my $stripe = fake_api($t);
my $mail = sandbox($t);

my %key = (o1 => 'order-key-one-0123456789abcdef',
           o2 => 'order-key-two-0123456789abcdef');

sub configure {
    my (@kids) = @_;
    shop_conf($t, stripe => $stripe->url, secrets => ['whsec_link'],
        order_keys => [ map { "$_:$key{$_}" } @kids ],
        http => mail_conf($t, $mail, 'postmark')
            . '    darkroom_mail_order_url'
            . ' "http://127.0.0.1:%%PORT0%%/api/orders/{ORDER_TOKEN}";' . "\n");
}

configure('o1');
demo_catalogue($t);
$t->start;

sub checkout {
    my (%o) = @_;
    return $t->http(POST => '/api/checkout', {
        headers => { 'Content-Type' => 'application/json',
            $o{key} ? ('Idempotency-Key' => $o{key}) : () },
        content => encode_json({ email => $o{email} // 'ada@example.com',
            items => [ { photo => 'harbour-dawn', product => 'giclee-a3',
                         quantity => 1 } ] }) });
}

sub token_of { ($_[0] =~ m{/([0-9a-f]{32})$})[0] }

sub perl_token {
    my ($kid, $seed) = @_;
    return substr(hmac_sha256_hex("darkroom-order-v1\n$seed", $key{$kid}),
                  0, 32);
}

sub order_row {
    my ($ref) = @_;
    my ($row) = $t->sql("SELECT id, total, token_seed, token_kid,"
        . " status_token FROM orders WHERE ref = :'p1'", $ref);
    return { id => $row->[0], total => $row->[1], seed => $row->[2],
             kid => $row->[3], hash => $row->[4] };
}

sub pay {
    my ($ref) = @_;
    my $o = order_row($ref);
    my $body = event('checkout.session.completed', session(
        id => "cs_test_$o->{id}", order_id => $o->{id}, ref => $ref,
        amount => $o->{total}));
    return $t->http(POST => '/webhooks/stripe', { headers => {
        'Content-Type' => 'application/json',
        'Stripe-Signature' => signature('whsec_link', $body) },
        content => $body });
}

sub mails_about {
    my ($ref, $tpl) = @_;
    return grep { ($_->{subject} // '') =~ /\Q$ref\E/
                  && (!$tpl || ($_->{tag} // '') eq $tpl) } $mail->messages;
}

# --- a new order: its token derived with the first key ------------------
my $idem = 'link-7d1c9e2a-5b3f-4a6e-8c0d-112233445566';
my $r = checkout(key => $idem);
is($r->{status}, 201, 'checkout') or diag $r->{content};
my $first = $r->{json};
my $ref1 = $first->{order};
my $t1 = token_of($first->{status_url});
ok($t1, 'a status link with a token');
my $o1 = order_row($ref1);
is($o1->{kid}, 'o1', 'the order keeps the id of the key that signed it');
like($o1->{seed}, qr/^[0-9a-f]{32}$/, 'and a random seed');
isnt($o1->{seed}, $t1, 'the seed is not the token');
is($t1, perl_token('o1', $o1->{seed}),
    'the token is HMAC-SHA256(key, seed), truncated to 128 bits');
is($o1->{hash}, sha256_hex($t1), 'status_token is still its SHA-256');
is($t->sql_value("SELECT count(*) FROM orders WHERE token_seed = :'p1'"
    . " OR status_token = :'p1'", $t1), 0, 'the token is not stored in clear');
is($t->sql_value('SELECT count(*) FROM checkout_idempotency'
    . ' WHERE token_enc IS NOT NULL'), 0, 'nor XORed with the key');
$r = $t->http(GET => $first->{status_url});
is($r->{status}, 200, 'the status link works');
is($r->{json}{order}, $ref1, 'for that order');

# a replay answers the same status link, derived again
$r = checkout(key => $idem);
is($r->{status}, 200, 'the replay answers 200');
is($r->{json}{status_url}, $first->{status_url}, 'with the same status_url');

# --- rotation: a new key signs, the old one still derives ---------------
configure('o2', 'o1');
$t->reload;

$r = checkout(key => $idem);
is($r->{status}, 200, 'a replay after the rotation');
is($r->{json}{status_url}, $first->{status_url},
    'still the same status_url: the old key derives it');

$r = checkout(email => 'bea@example.com');
is($r->{status}, 201, 'a new order after the rotation');
my $ref2 = $r->{json}{order};
my $o2 = order_row($ref2);
is($o2->{kid}, 'o2', 'signed with the new key');
is(token_of($r->{json}{status_url}), perl_token('o2', $o2->{seed}),
    'its token is the new key\'s');
is($t->http(GET => $r->{json}{status_url})->{status}, 200,
    'and its link works');

# --- the receipt of the old order links to its page ---------------------
is(pay($ref1)->{json}{result}, 'paid', 'the first order is paid');
ok(wait_for(sub { mails_about($ref1, 'receipt') == 1 }, 15), 'its receipt');
my ($m) = mails_about($ref1, 'receipt');
my $port = $t->port(0);
my ($link) = $m->{text} =~ m{^Follow your order: (\S+)$}m;
is($link, "http://127.0.0.1:$port/api/orders/$t1",
    'the receipt (text) links to the order page with the order\'s token');
like($m->{html}, qr{<a href="\Q$link\E"}, 'and its HTML part too');
unlike($m->{text} . $m->{html}, qr/\Q$o1->{seed}\E/,
    'the seed never reaches the email');
(my $path = $link) =~ s{^http://127\.0\.0\.1:\d+}{};
$r = $t->http(GET => $path);
is($r->{status}, 200, 'GET the link: 200');
is($r->{json}{order}, $ref1, 'with the order');
is($r->{json}{status}, 'paid', 'as it is now');

# --- a key removed: no link to give, and nothing breaks -----------------
configure('o2');
$t->reload;
$r = checkout(key => $idem);
is($r->{status}, 200, 'a replay of an order whose key is gone');
ok(!exists $r->{json}{status_url}, 'answers without a status_url');
is($r->{json}{order}, $ref1, 'but the same order');

$t->sql("SELECT order_email(:'p1', 'in_production')", $o1->{id});
ok(wait_for(sub { mails_about($ref1, 'in_production') == 1 }, 15),
    'an email about the order still goes');
($m) = mails_about($ref1, 'in_production');
unlike($m->{text}, qr{/api/orders/}, 'without a link');
like($m->{text}, qr/Please quote \Q$ref1\E/, 'quoting the reference');

is(pay($ref2)->{json}{result}, 'paid', 'the new key\'s order is paid');
ok(wait_for(sub { mails_about($ref2, 'receipt') == 1 }, 15), 'its receipt');
($m) = mails_about($ref2, 'receipt');
like($m->{text}, qr{Follow your order: http://127\.0\.0\.1:$port/api/orders/\Q@{[perl_token('o2', $o2->{seed})]}\E$}m,
    'links with the new key\'s token');

$t->stop;
ok($t->check_sanitizer, 'no sanitizer report');
done_testing();
