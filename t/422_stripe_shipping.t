#!/usr/bin/perl
# Against the Stripe sandbox: the session gets the shipping as a fixed
# shipping option and the zone's countries for the address; its
# amount_total (goods + shipping, + the tax line when prices exclude tax)
# is the order's total, so the payment is exact and the order is paid,
# with its invoice number; the sandbox refuses malformed shipping
# options as Stripe does and an address outside the allowed countries.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use JSON::PP;
use HTTP::Tiny;
use Darkroom::Test qw(wait_for);
use Darkroom::Stripe qw(demo_catalogue shop_conf sandbox);

my $t = Darkroom::Test->new;
my $port = $t->port(0);
shop_conf($t, stripe => 'http://127.0.0.1:' . $t->port(1),
    secrets => ['whsec_sandbox_secret']);
my $sb = sandbox($t, webhook => "http://127.0.0.1:$port/webhooks/stripe");
demo_catalogue($t);
$t->sql(<<'SQL');
INSERT INTO shipping_zones (id, name) VALUES ('uk', 'UK'), ('europe', 'Europe');
INSERT INTO shipping_zone_countries VALUES
  ('GB', 'uk'), ('IE', 'europe'), ('FR', 'europe');
INSERT INTO shipping_rates (zone_id, currency, method, name, amount,
                            per_item, free_over) VALUES
  ('uk', 'GBP', 'standard', 'Royal Mail Tracked 48', 450, 0, 10000),
  ('uk', 'GBP', 'express', 'Next day', 1200, 0, NULL),
  ('europe', 'GBP', 'standard', 'Europe tracked', 900, 150, NULL);
INSERT INTO tax_rates (country, kind, rate) VALUES
  ('GB', 'print', 20), ('GB', 'digital', 20),
  ('IE', 'print', 23), ('IE', 'digital', 23),
  ('FR', 'print', 23), ('FR', 'digital', 23);
UPDATE shop_settings SET invoice_prefix = 'DR-INV-';
SQL
$t->start;

my $admin = { Authorization => 'Bearer admin-token-1' };
my $key = { Authorization => 'Bearer sk_test_darkroom' };

sub order { my ($ref) = @_;
    $t->http(GET => "/admin/api/orders/$ref", { headers => $admin })->{json} }

sub session_of {
    my ($sid) = @_;
    return decode_json(HTTP::Tiny->new->get($sb->url
        . "/v1/checkout/sessions/$sid", { headers => $key })->{content});
}

# checkout, pay at the sandbox, wait for paid; returns (order, session)
sub purchase {
    my ($what, $cart, %pay) = @_;
    my $r = $t->http(POST => '/api/checkout', {
        headers => { 'Content-Type' => 'application/json' },
        content => encode_json({ email => 'ada@example.com', %$cart }) });
    is($r->{status}, 201, "$what: checkout") or diag $r->{content};
    my ($sid) = ($r->{json}{checkout_url} // '') =~ m{/pay/(cs_\w+)$};
    my $s = session_of($sid);
    my $pay = $sb->control(POST => "/_sandbox/pay/$sid",
                           { action => 'pay', %pay });
    ok(wait_for(sub { order($r->{json}{order})->{status} ne 'pending_payment' },
                10), "$what: the webhook came") or diag explain $pay;
    return (order($r->{json}{order}), $s, $pay);
}

my $goods = [ { photo => 'harbour-dawn', product => 'giclee-a3', quantity => 1 },
              { photo => 'moor-rain', product => 'digital', quantity => 1 } ];

# --- prices include tax: GB, standard ----------------------------------------
my ($o, $s) = purchase('GB', { items => $goods, country => 'GB' });
is($o->{status}, 'paid', 'GB: paid, not under review');
is($o->{total}, 4500 + 1500 + 450, 'GB: the total includes shipping');
is($s->{amount_total}, $o->{total}, 'Stripe\'s amount_total is the order total');
is($o->{paid_amount}, $o->{total}, 'the amount paid is the total');
is($s->{shipping_cost}{amount_total}, 450, 'session shipping_cost');
is($s->{total_details}{amount_shipping}, 450, 'total_details.amount_shipping');
is(scalar @{$s->{shipping_options}}, 1, 'one shipping option');
is_deeply($s->{shipping_address_collection}{allowed_countries}, ['GB'],
    'the address in the zone');
is($o->{shipping_charge}{method}, 'standard', 'the order shows its method');
is($o->{shipping_charge}{name}, 'Royal Mail Tracked 48', 'and its name');
is($o->{tax_amount}, 750 + 250 + 75, 'the order\'s tax');
like($o->{invoice_number}, qr/^DR-INV-\d{6}$/, 'an invoice number when paid');
is($o->{items}[0]{tax}, 750, 'each item\'s tax');

# --- Europe, express not offered; the address must be in the zone -------------
($o, $s, my $pay) = purchase('IE', { items => $goods, country => 'IE' },
    shipping => { name => 'Aoife', address => { line1 => '1 Quay St',
        city => 'Galway', postal_code => 'H91', country => 'FR' } });
is($o->{status}, 'paid', 'IE: paid (a FR address is allowed: same zone, same tax)');
is($s->{amount_total}, 4500 + 1500 + 900 + 150, 'IE: per order + per item');
is_deeply($s->{shipping_address_collection}{allowed_countries}, [qw(FR IE)],
    'IE: the zone\'s countries taxed alike');
is($o->{shipping}{address}{country}, 'FR', 'the address taken');

my $r = $t->http(POST => '/api/checkout', {
    headers => { 'Content-Type' => 'application/json' },
    content => encode_json({ email => 'ada@example.com', items => $goods,
                             country => 'IE' }) });
my ($sid) = $r->{json}{checkout_url} =~ m{/pay/(cs_\w+)$};
$pay = $sb->control(POST => "/_sandbox/pay/$sid", { action => 'pay',
    shipping => { name => 'X', address => { line1 => '1 Main St',
        city => 'Boston', postal_code => '02101', country => 'US' } } });
like(encode_json($pay), qr/not allowed/, 'the sandbox refuses a US address');
is(session_of($sid)->{status}, 'open', 'and the session stays open');

# --- prices exclude tax --------------------------------------------------------
$t->sql("UPDATE shop_settings SET tax_inclusive = false");
($o, $s) = purchase('GB exclusive', { items => $goods, country => 'GB',
                                      shipping_method => 'express' });
is($o->{status}, 'paid', 'exclusive: paid');
is($o->{total}, 4500 + 1500 + 1200 + (900 + 300 + 240),
    'exclusive: goods + express + 20 % on all');
is($s->{amount_total}, $o->{total}, 'exclusive: Stripe\'s total is the order\'s');
is($s->{total_details}{amount_shipping}, 1200, 'express shipping at Stripe');
my $li = decode_json(HTTP::Tiny->new->get($sb->url
    . "/v1/checkout/sessions/$s->{id}/line_items", { headers => $key })->{content});
is($li->{data}[-1]{description}, 'VAT 20 %', 'the tax line');
is($li->{data}[-1]{amount_total}, 1440, 'with the tax');
ok(!$o->{tax_inclusive}, 'the order says prices exclude tax');

# a download alone: no shipping option, no address
($o, $s) = purchase('download', { items => [ $goods->[1] ], country => 'GB' });
is($o->{status}, 'paid', 'download: paid');
is($s->{shipping_cost}, undef, 'no shipping cost');
is($s->{shipping_address_collection}, undef, 'no address');
is($s->{amount_total}, 1500 + 300, 'download + tax');

# the invoice numbers so far: one per paid order, in order, no gaps
my @inv = map { $_->[0] } $t->sql("SELECT invoice_seq FROM orders"
    . " WHERE invoice_seq IS NOT NULL ORDER BY invoice_seq");
is_deeply(\@inv, [ 1 .. 4 ], 'four paid orders: invoices 1 to 4');
is($t->sql_value("SELECT count(*) FROM orders WHERE status = 'pending_payment'"
    . " AND invoice_number IS NOT NULL"), 0, 'none for the unpaid order');

# --- the sandbox checks shipping options as Stripe does ------------------------
my $base = { mode => 'payment', success_url => 'https://x.example/ok',
    'line_items[0][price_data][currency]' => 'gbp',
    'line_items[0][price_data][product_data][name]' => 'Print',
    'line_items[0][price_data][unit_amount]' => 1000,
    'line_items[0][quantity]' => 1 };
my $so = 'shipping_options[0][shipping_rate_data]';
for my $bad (
    [ { "${so}[type]" => 'fixed_amount', "${so}[display_name]" => 'X',
        "${so}[fixed_amount][amount]" => -1,
        "${so}[fixed_amount][currency]" => 'gbp' }, qr/amount/ ],
    [ { "${so}[type]" => 'fixed_amount',
        "${so}[fixed_amount][amount]" => 100,
        "${so}[fixed_amount][currency]" => 'gbp' }, qr/display_name/ ],
    [ { "${so}[type]" => 'fixed_amount', "${so}[display_name]" => 'X',
        "${so}[fixed_amount][amount]" => 100,
        "${so}[fixed_amount][currency]" => 'usd' }, qr/currency/ ],
    [ { "${so}[type]" => 'delivery', "${so}[display_name]" => 'X',
        "${so}[fixed_amount][amount]" => 100,
        "${so}[fixed_amount][currency]" => 'gbp' }, qr/type/ ])
{
    my $res = HTTP::Tiny->new->post_form($sb->url . '/v1/checkout/sessions',
        { %$base, %{$bad->[0]} }, { headers => $key });
    is($res->{status}, 400, 'sandbox refuses a bad shipping option');
    like(decode_json($res->{content})->{error}{param}, $bad->[1], 'naming it');
}
my $ok = HTTP::Tiny->new->post_form($sb->url . '/v1/checkout/sessions',
    { %$base, "${so}[type]" => 'fixed_amount', "${so}[display_name]" => 'Post',
      "${so}[fixed_amount][amount]" => 350,
      "${so}[fixed_amount][currency]" => 'gbp' }, { headers => $key });
is(decode_json($ok->{content})->{amount_total}, 1350,
    'a good one: amount_total includes shipping');

done_testing;
