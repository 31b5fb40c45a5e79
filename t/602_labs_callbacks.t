#!/usr/bin/perl
# Prodigi callbacks: a wrong token is 403 and changes nothing; duplicated
# and reordered callbacks end in the right state (darkroom fetches the
# order rather than trusting the body); partial shipments are kept apart
# and shown with tracking on the customer's status page.  A refund before
# production cancels the lab order; after shipping it does not.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use JSON::PP;
use HTTP::Tiny;
use Darkroom::Test qw(wait_for);
use Darkroom::Stripe qw(fake_api);
use Darkroom::Mail;
use LabSandbox;

my $t = Darkroom::Test->new;
my $stripe = fake_api($t);
my $lab = LabSandbox::start($t);
my $mail = Darkroom::Mail::sandbox($t);
my $mailconf = Darkroom::Mail::mail_conf($t, $mail, 'postmark')
    =~ s/^\s*darkroom_(jobs_backoff|fetch_timeout).*\n//mgr;
# a long poll interval: only callbacks move Prodigi orders here
LabSandbox::conf($t, $stripe->url, $lab,
    http => "darkroom_lab_poll_interval 1h;\n$mailconf");
LabSandbox::mapping($t);
$t->start;

sub lo_status { $t->sql_value("SELECT status FROM lab_orders WHERE id = :'p1'", $_[0]) }
sub events {
    $t->sql_value("SELECT count(*) FROM lab_order_events WHERE lab_order_id = :'p1'", $_[0]);
}
sub submitted {
    my ($o) = @_;
    wait_for(sub { my @l = LabSandbox::lab_orders($t, $o);
        @l && $l[0][2] eq 'submitted' }, 20) or return;
    my ($lo) = LabSandbox::lab_orders($t, $o);
    return ($lo->[0], $lo->[3]);
}

my $o = LabSandbox::paid_order($t, [ ['moor-rain', 'canvas-50', 1],
    ['harbour-dawn', 'canvas-50', 1] ]);
my ($lo, $pid) = submitted($o);
ok($lo, 'a two-item Prodigi order is submitted');
my $cb = $lab->state->{prodigi}{$pid}{callbackUrl};
my ($path, $token) = $cb =~ m{^http://[^/]+(/labs/prodigi)\?lo=\d+&token=([0-9a-f]{64})$};
ok($token, 'the order carries its callback URL');

# --- wrong tokens ---------------------------------------------------------
my $body = encode_json({ specversion => '1.0', id => 'evt_forged',
    type => 'com.prodigi.order.status.stage.changed#Complete',
    data => { order => { id => $pid, status => { stage => 'Complete' } } } });
my $before = events($lo);
my %bad = (
    'wrong token'     => "?lo=$lo&token=" . ('0' x 64),
    'token of another lab order' => "?lo=" . ($lo + 1) . "&token=$token",
    'short token'     => "?lo=$lo&token=" . substr($token, 0, 63),
    'no token'        => "?lo=$lo",
    'no lab order'    => "?token=$token",
);
for my $name (sort keys %bad) {
    my $r = $t->http(POST => "$path$bad{$name}", { port => $t->port(2),
        headers => { 'Content-Type' => 'application/json' }, content => $body });
    is($r->{status}, 403, "$name: 403");
    is($r->{json}{error}{code}, 'bad_token', "$name: bad_token");
}
is(lo_status($lo), 'submitted', 'no refused callback changed the lab order');
is(events($lo), $before, 'nor its history');
is(scalar(grep { $_->{method} eq 'GET' } $lab->requests), 0,
    'and the lab was not even asked');
my $r = $t->http(GET => "$path?lo=$lo&token=$token", { port => $t->port(2) });
is($r->{status}, 405, 'GET is not allowed');

# the right token with a forged body: darkroom asks Prodigi, who says
# the order is merely in progress
$r = $t->http(POST => "$path?lo=$lo&token=$token", { port => $t->port(2),
    headers => { 'Content-Type' => 'application/json' }, content => $body });
is($r->{status}, 200, 'a valid token is accepted');
is($r->{json}{status}, 'submitted', 'but the forged "Complete" body is not believed');

# --- duplicated and reordered callbacks ----------------------------------
$lab->control(POST => '/_sandbox/config', { duplicates => 3 });
my $res = $lab->control(POST => "/_sandbox/advance/$pid", { to => ['in_production'] });
is(scalar(grep { $_->{status} == 200 } @{$res->{callbacks}}), 3,
    'three copies of the callback, each answered 200');
is(lo_status($lo), 'in_production', 'in production');
is($t->sql_value("SELECT count(*) FROM lab_order_events WHERE lab_order_id = :'p1'"
    . " AND to_status = 'in_production' AND from_status <> to_status", $lo), 1,
    'one transition, not three');
is($t->sql_value("SELECT status FROM orders WHERE id = :'p1'", $o->{id}),
    'in_production', 'the order follows');

$res = $lab->control(POST => "/_sandbox/advance/$pid",
    { to => ['shipped_partial', 'shipped'], reorder => 1 });
is(scalar @{$res->{callbacks}}, 6, 'two stage changes, three copies each, newest first');
is(lo_status($lo), 'shipped', 'shipped in the end');
is($t->sql_value("SELECT count(*) FROM shipments s JOIN lab_orders lo"
    . " ON lo.id = s.lab_order_id WHERE lo.id = :'p1'", $lo), 2,
    'two shipments kept apart');
is($t->sql_value("SELECT count(*) FROM lab_order_events WHERE lab_order_id = :'p1'"
    . " AND to_status = 'shipped' AND from_status <> to_status", $lo), 1,
    'one transition to shipped');
is($t->sql_value("SELECT status FROM orders WHERE id = :'p1'", $o->{id}),
    'shipped', 'the order is shipped');
is($t->sql_value("SELECT count(*) FROM jobs WHERE kind = 'email'"
    . " AND payload->>'template' = 'shipped'"
    . " AND (payload->>'order_id')::bigint = :'p1'", $o->{id}), 2,
    'one shipped email per parcel, whatever the callbacks repeated');
ok(wait_for(sub { 2 == grep { ($_->{subject} // '') =~ /on its way/ }
    $mail->messages }, 15), 'and the customer gets them');
my ($shipped) = grep { ($_->{subject} // '') =~ /on its way/ } $mail->messages;
like(JSON::PP->new->canonical->encode($shipped), qr/track\.example/,
    'with a tracking link');

# an old callback again changes nothing
$r = $t->http(POST => "$path?lo=$lo&token=$token", { port => $t->port(2),
    headers => { 'Content-Type' => 'application/json' }, content => $body });
is($r->{json}{status}, 'shipped', 'a late callback leaves it shipped');

$r = $t->http(GET => $o->{status_url});
my @s = @{$r->{json}{shipments}};
is(scalar @s, 2, 'the customer sees two shipments');
is_deeply([ map { $_->{carrier} } @s ], ['Royal Mail', 'Royal Mail'], 'with the carrier');
like($s[0]{tracking_url}, qr{^https://track\.example/RM1}, 'and a tracking link each');
isnt($s[0]{tracking_number}, $s[1]{tracking_number}, 'different parcels');

# --- refunds --------------------------------------------------------------
my $o2 = LabSandbox::paid_order($t, [ ['moor-rain', 'canvas-50', 1] ]);
my ($lo2, $pid2) = submitted($o2);
ok($lo2, 'another order submitted');
$r = LabSandbox::refund($t, $o2);
is($r->{json}{result}, 'refunded', 'refunded before production');
ok(wait_for(sub { lo_status($lo2) eq 'cancelled' }, 10), 'the lab order is cancelled');
is($lab->state->{prodigi}{$pid2}{status}{stage}, 'Cancelled', 'at Prodigi too');
ok((grep { $_->{path} =~ m{/v4\.0/Orders/$pid2/actions/cancel$} } $lab->requests),
    'through POST /v4.0/Orders/{id}/actions/cancel');

$r = LabSandbox::refund($t, $o);
is($r->{json}{result}, 'refunded', 'refunded after shipping');
sleep 1;
is(lo_status($lo), 'shipped', 'the shipped lab order is not cancelled');
ok(!(grep { $_->{path} =~ m{/v4\.0/Orders/$pid/actions/cancel$} } $lab->requests),
    'nothing asked of the lab');
ok($t->sql_value("SELECT count(*) FROM lab_order_events WHERE lab_order_id = :'p1'"
    . " AND detail ? 'not_cancelled'", $lo) == 1, 'the history says why');

# refund while still held by darkroom_fulfil_delay: never sent at all
my $o3 = LabSandbox::paid_order($t, [ ['moor-rain', 'canvas-50', 1] ]);
ok(wait_for(sub { LabSandbox::lab_orders($t, $o3) }, 10), 'split');
my ($lo3) = LabSandbox::lab_orders($t, $o3);
# (no delay configured here, so it may already be out: either way it ends
# cancelled at darkroom and at the lab)
LabSandbox::refund($t, $o3);
ok(wait_for(sub { lo_status($lo3->[0]) eq 'cancelled' }, 10),
    'a refund right after payment cancels too');

done_testing;
