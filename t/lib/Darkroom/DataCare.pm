package Darkroom::DataCare;
# Retention and data requests in tests (t/470, t/471): the shop's admin
# API called with the admin token, and a paid order of a print (shipping
# address and all) for an email, paid through the signed webhook.

use strict;
use warnings;
use Exporter 'import';
use JSON::PP;
use Darkroom::Stripe qw(event session webhook);

our @EXPORT_OK = qw(admin_api paid_print_order);

# admin_api($t, $method, $path [, $body (ref: JSON-encoded)])
sub admin_api {
    my ($t, $method, $path, $body) = @_;
    return $t->http($method, "/admin/api/$path", {
        headers => { Authorization => 'Bearer admin-token-1',
                     'Content-Type' => 'application/json' },
        defined $body ? (content => ref $body ? encode_json($body) : $body)
                      : () });
}

# { id, ref, total } of a paid order of one A3 print of harbour-dawn
my $n = 0;
sub paid_print_order {
    my ($t, $email) = @_;
    $n++;
    my ($row) = $t->sql("SELECT order_id, order_ref, total FROM checkout_create("
        . "'[{\"photo\":\"harbour-dawn\",\"product\":\"giclee-a3\",\"quantity\":1}]',"
        . " :'p1', 'GBP', 'GB', NULL, NULL, encode(sha256(:'p2'), 'hex'),"
        . " now() + interval '1 hour', now() + interval '1 day')",
        $email, "care-$$-$n-" . ('x' x 24));
    my $r = webhook($t, 'whsec_test_one', event('checkout.session.completed',
        session(id => "cs_care_$row->[0]", order_id => $row->[0],
                ref => $row->[1], amount => $row->[2],
                payment_intent => "pi_care_$row->[0]")));
    die "payment: $r->{content}" unless $r->{status} == 200;
    return { id => $row->[0], ref => $row->[1], total => $row->[2] };
}

1;
