#!/usr/bin/perl
# An order paid through the Stripe webhook gets grants with the configured
# lifetime and count (nginx gives them to its database sessions); a full
# refund (charge.refunded) revokes the links in its transaction, a partial
# one leaves them; the admin re-issues links: a new expiry, the count
# reset, the old links dead, the new ones working, the action in the
# order's history and a new delivery email.  An order leaving review to
# paid gets its grants too.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use HTTP::Tiny;
use JSON::PP;
use Darkroom::Test;
use Darkroom::Stripe qw(event session charge webhook);
use Darkroom::Downloads qw(download_shop paid_digital_order);

my $t = Darkroom::Test->new;
download_shop($t, limit => 2, ttl => '2d', secrets => ['whsec_dl']);
$t->start;

my $admin = { Authorization => 'Bearer admin-token-1' };
my $ua = HTTP::Tiny->new(max_redirect => 0, keep_alive => 0, timeout => 15);

sub code { eval { decode_json($_[0]{content})->{error}{code} } // '' }

sub new_order {
    my ($token) = @_;
    my ($row) = $t->sql("SELECT order_id, order_ref, total FROM checkout_create("
        . "'[{\"photo\":\"moor-rain\",\"product\":\"digital\",\"quantity\":1},"
        . "{\"photo\":\"harbour-dawn\",\"product\":\"digital\",\"quantity\":1}]',"
        . " 'ada\@example.com', 'GBP', 'GB', NULL, NULL, encode(sha256(:'p1'),"
        . " 'hex'), now() + interval '1 hour', now() + interval '1 day')",
        $token);
    return { id => $row->[0], ref => $row->[1], total => $row->[2],
             token => $token };
}

sub pay {
    my ($o, %s) = @_;
    return webhook($t, 'whsec_dl', event('checkout.session.completed',
        session(id => "cs_dl_$o->{id}", order_id => $o->{id}, ref => $o->{ref},
            amount => $s{amount} // $o->{total}, payment_intent => "pi_dl_$o->{id}")));
}

sub links { $t->http(GET => "/api/orders/$_[0]{token}")->{json}{downloads} }

# --- paid by the webhook: the configured lifetime and count -----------------
my $o = new_order('a' x 32);
my $r = pay($o);
is($r->{status}, 200, 'the webhook is answered') or diag $r->{content};
is($t->sql_value("SELECT status FROM orders WHERE id = :'p1'", $o->{id}),
    'paid', 'the order is paid');
my @g = $t->sql("SELECT max_downloads, expires_at > now() + interval '47 hours',"
    . " expires_at < now() + interval '49 hours' FROM download_grants"
    . " WHERE order_id = :'p1' ORDER BY line", $o->{id});
is_deeply(\@g, [[2, 't', 't'], [2, 't', 't']],
    'two grants: darkroom_download_limit 2, darkroom_download_ttl 2d');

my $d = links($o);
is(scalar @$d, 2, 'listed on the order page');
is($ua->get($d->[0]{url})->{status}, 200, 'a link works');

# --- a partial refund leaves the links --------------------------------------------
$r = webhook($t, 'whsec_dl', event('charge.refunded', charge(
    payment_intent => "pi_dl_$o->{id}", order_id => $o->{id},
    amount => $o->{total}, amount_refunded => 500)));
is($r->{status}, 200, 'a partial refund') or diag $r->{content};
is($ua->get($d->[1]{url})->{status}, 200, 'the links still work');

# --- the admin re-issues -------------------------------------------------------------
my $old = $d->[0]{url};
$t->sql("UPDATE download_grants SET expires_at = now() + interval '1 hour'"
    . " WHERE order_id = :'p1'", $o->{id});
$r = $t->http(POST => "/admin/api/orders/$o->{ref}/downloads/reissue",
    { headers => $admin });
is($r->{status}, 200, 'POST orders/<ref>/downloads/reissue') or diag $r->{content};
is($r->{json}{reissued}, 2, 'both grants re-issued');
my $new = $r->{json}{downloads}[0]{url};
like($new, qr{/download/\d+/[0-9a-f]{16}/moor-rain\.tif\?exp=}, 'with new signed links');
isnt($new, $old, 'that differ from the old ones');
is($r->{json}{downloads}[0]{remaining}, 2, 'the count reset');
@g = $t->sql("SELECT used, expires_at > now() + interval '47 hours'"
    . " FROM download_grants WHERE order_id = :'p1' ORDER BY line", $o->{id});
is_deeply(\@g, [[0, 't'], [0, 't']], 'count reset, a new expiry');

$r = $ua->get($old);
is($r->{status}, 410, 'the old link is dead');
is(code($r), 'link_replaced', 'link_replaced');
$r = $ua->get($new);
is($r->{status}, 200, 'the new link works');
is($r->{content}, 'MOOR' . ('m' x 3000), 'with the file');
is(links($o)->[0]{url}, $new, 'the order page has the new link');

is($t->sql_value("SELECT count(*) FROM order_events WHERE order_id = :'p1'"
    . " AND cause = 'admin' AND detail ? 'downloads_reissued'", $o->{id}), 1,
    'recorded in the order history, cause admin');
is($t->sql_value("SELECT count(*) FROM jobs WHERE kind = 'email'"
    . " AND payload->>'template' = 'delivery'"
    . " AND payload->>'order_id' = :'p1'", $o->{id}), 2,
    'a second delivery email');

$r = $t->http(POST => "/admin/api/orders/$o->{ref}/downloads/reissue");
is($r->{status}, 401, 'without the token: 401');
$r = $t->http(POST => "/admin/api/orders/NOPE/downloads/reissue",
    { headers => $admin });
is($r->{status}, 404, 'an unknown order: 404');

# --- a full refund revokes them --------------------------------------------------------
$r = webhook($t, 'whsec_dl', event('charge.refunded', charge(
    payment_intent => "pi_dl_$o->{id}", order_id => $o->{id},
    amount => $o->{total}, amount_refunded => $o->{total}, refunded => 1)));
is($r->{status}, 200, 'a full refund') or diag $r->{content};
is($t->sql_value("SELECT status FROM orders WHERE id = :'p1'", $o->{id}),
    'refunded', 'the order is refunded');
is($t->sql_value("SELECT count(*) FROM download_grants WHERE order_id = :'p1'"
    . " AND revoked_at IS NOT NULL", $o->{id}), 2, 'both grants revoked');
$r = $ua->get($new);
is($r->{status}, 410, 'the link is refused');
is(code($r), 'download_revoked', 'download_revoked');
is_deeply(links($o), [], 'the order page lists no downloads');
$r = $t->http(POST => "/admin/api/orders/$o->{ref}/downloads/reissue",
    { headers => $admin });
is($r->{status}, 409, 'a refunded order cannot be re-issued');
is($r->{json}{error}{code}, 'not_paid', 'not_paid');

# --- a physical-only order cannot be re-issued ----------------------------------------
my $p = paid_digital_order($t, ['harbour-dawn', 'giclee-a3', 1]);
$r = $t->http(POST => "/admin/api/orders/$p->{ref}/downloads/reissue",
    { headers => $admin });
is($r->{status}, 409, 'an order without digital lines: 409');
is($r->{json}{error}{code}, 'no_downloads', 'no_downloads');

# --- out of review to paid ----------------------------------------------------------------
my $u = new_order('b' x 32);
$r = pay($u, amount => $u->{total} - 100);
is($t->sql_value("SELECT status FROM orders WHERE id = :'p1'", $u->{id}),
    'needs_review', 'underpaid: in review');
is($t->sql_value("SELECT count(*) FROM download_grants WHERE order_id = :'p1'",
    $u->{id}), 0, 'no grants while in review');
$r = $t->http(POST => "/admin/api/orders/$u->{ref}/resolve", { headers => $admin,
    content => encode_json({ to => 'paid', note => 'paid the rest by hand' }) });
is($r->{status}, 200, 'the admin approves') or diag $r->{content};
is($t->sql_value("SELECT count(*) FROM download_grants WHERE order_id = :'p1'",
    $u->{id}), 2, 'the approval grants the downloads');
is($t->sql_value("SELECT count(*) FROM jobs WHERE dedupe_key ="
    . " 'email:delivery:' || :'p1'", $u->{id}), 1, 'and the delivery email');
is($ua->get(links($u)->[1]{url})->{status}, 200, 'a link works');

ok($t->check_sanitizer, 'no sanitizer reports');
done_testing;
