package Darkroom::Downloads;
# Digital delivery tests (t/44x): a shop with the download signer and a
# download location over a print root holding the test originals, and
# orders paid the way the webhook pays them (checkout_create and
# order_mark_paid in SQL, in a session given darkroom.download_limit as
# nginx gives its own), with a status token the test knows.

use strict;
use warnings;
use Exporter 'import';
use JSON::PP;
use Digest::SHA qw(sha256_hex);
use Darkroom::Stripe qw(demo_catalogue shop_conf);

our @EXPORT_OK = qw(download_shop paid_digital_order download_conf);

my $JSON = JSON::PP->new->canonical;

# the http-level lines and the server a download location needs
sub download_conf {
    my ($t, %o) = @_;
    my $limit = $o{limit} // 5;
    my $ttl = $o{ttl} // '30d';
    $t->write_file('dlkeys', "dk2:download-key-two-0123456789abcdef\n"
        . "dk1:download-key-one-0123456789abcdef\n");
    mkdir $t->dir . '/prints';
    # the originals: distinct bytes, so a test sees which file it got
    $t->write_file('prints/harbour-dawn.tif', 'HARBOUR' . ('h' x 5000));
    $t->write_file('prints/moor-rain.tif', 'MOOR' . ('m' x 3000));
    return <<"CONF" . ($o{extra} // '');
    darkroom_download_url http://127.0.0.1:%%PORT2%%/download;
    darkroom_download_keys %%DIR%%/dlkeys;
    darkroom_download_ttl $ttl;
    darkroom_download_limit $limit;
    server {
        listen 127.0.0.1:%%PORT2%%;
        location /download/ {
            darkroom_download;
            root %%DIR%%/prints;
        }
    }
CONF
}

# a shop (t/lib/Darkroom/Stripe.pm) with downloads; not started
sub download_shop {
    my ($t, %o) = @_;
    shop_conf($t, stripe => $o{stripe} // 'http://127.0.0.1:9',
        http => download_conf($t, %o), workers => $o{workers},
        secrets => $o{secrets});
    # what nginx sets on its sessions, for the orders paid here through psql
    $t->{dl_session} = "SET darkroom.download_limit = " . ($o{limit} // 5) . ";";
    demo_catalogue($t);
    $t->sql("UPDATE photos SET print_path = 'harbour-dawn.tif'"
        . " WHERE id = 'harbour-dawn'");
}

# an order written and paid as the shop does it; returns {id, ref, token}
my $n = 0;
sub paid_digital_order {
    my ($t, @items) = @_;
    @items = (['moor-rain', 'digital', 1]) unless @items;
    my $items = $JSON->encode([ map { { photo => $_->[0], product => $_->[1],
        quantity => $_->[2] } } @items ]);
    $n++;
    my $token = substr(sha256_hex("token-$$-$n-" . time), 0, 32);
    my ($row) = $t->sql("SELECT order_id, order_ref, total FROM checkout_create("
        . ":'p1'::jsonb, 'ada\@example.com', 'GBP', 'GB', NULL, NULL, :'p2',"
        . " now() + interval '1 hour', now() + interval '1 day')",
        $items, sha256_hex($token));
    my ($id, $ref, $total) = @$row;
    my $session = $JSON->encode({ amount_total => $total, currency => 'gbp',
        payment_intent => "pi_dl_$id" });
    my $result = $t->sql_value(($t->{dl_session} // '')
        . "SELECT order_mark_paid(:'p1', :'p2'::jsonb, 'test')", $id, $session);
    return { id => $id, ref => $ref, token => $token, total => $total,
             result => $result };
}

1;
