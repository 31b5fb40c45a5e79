#!/usr/bin/perl
# The lab admin API (darkroom_lab_admin) as the console's Fulfilment page
# uses it, with a signed-in account: lab orders listed by state, one with
# its history; staff may retry, reroute and cancel; a bad lab is 400 and an
# unknown lab order 404, writing nothing; a POST without the CSRF token is
# refused; every change audited under the account.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Darkroom::Test;
use Darkroom::Stripe qw(checkout_order);
use Darkroom::Console qw(console_start account login api);

my $t = Darkroom::Test->new;
console_start($t);
account($t, 'staff@example.com', 'staff');
my $r = login($t, 'staff@example.com');
die "login: $r->{status}" unless $r->{status} == 200;
my $s = { sid => $r->{sid}, csrf => $r->{csrf} };
my $order = checkout_order($t, 1);

sub lab_order {
    my ($status, $key) = @_;
    return $t->sql_value("INSERT INTO lab_orders (order_id, lab, status,"
        . " idempotency_key, attempts, last_error) VALUES (:'p1',"
        . " 'prodigi', :'p2', :'p3', 2, 'refused') RETURNING id",
        $order->{id}, $status, $key);
}
my $a = lab_order('needs_attention', 'k716a');
my $b = lab_order('pending', 'k716b');
my $events = sub { $t->sql_value("SELECT count(*) FROM lab_order_events") };

$r = api($t, $s, GET => '/admin/lab/orders?status=attention');
is($r->{status}, 200, 'staff: list') or diag $r->{content};
is_deeply([map { $_->{id} } @{ $r->{json}{lab_orders} }], [$a],
          'needing attention: one');
is($r->{json}{totals}{failed}, 1, 'totals');
$r = api($t, $s, GET => '/admin/lab/orders?status=open');
is(scalar @{ $r->{json}{lab_orders} }, 2, 'open: two');
$r = api($t, $s, GET => "/admin/lab/orders/$a");
is($r->{status}, 200, 'one');
is($r->{json}{last_error}, 'refused', 'its last error');
is(ref $r->{json}{history}, 'ARRAY', 'its history');

my $n = $events->();
is(api($t, { sid => $s->{sid} }, POST => "/admin/lab/orders/$a/retry",
       {})->{status}, 403, 'no CSRF token: 403');
is(api($t, $s, POST => "/admin/lab/orders/999999/retry", {})->{status},
   404, 'unknown: 404');
$r = api($t, $s, POST => "/admin/lab/orders/$b/reroute", { lab => 'mars' });
is($r->{status}, 400, 'a bad lab: 400');
is($r->{json}{error}{code}, 'invalid_lab', 'invalid_lab');
is($events->(), $n, 'nothing written');

$r = api($t, $s, POST => "/admin/lab/orders/$a/retry", {});
is($r->{status}, 200, 'staff: retry') or diag $r->{content};
is($r->{json}{status}, 'pending', 'pending again');
$r = api($t, $s, POST => "/admin/lab/orders/$b/cancel", {});
is($r->{status}, 200, 'staff: cancel') or diag $r->{content};
is($r->{json}{status}, 'cancelled', 'cancelled');
is(api($t, $s, POST => "/admin/lab/orders/$b/retry", {})->{status}, 409,
   'a cancelled one cannot be retried: 409');

is($t->sql_value("SELECT count(*) FROM console_audit WHERE"
    . " actor = 'staff\@example.com' AND method = 'POST'"
    . " AND path LIKE '/admin/lab/orders/%' AND status = 200"), 2,
   'the changes audited');

done_testing;
