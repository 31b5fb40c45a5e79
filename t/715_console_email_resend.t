#!/usr/bin/perl
# POST /admin/api/emails/<id>/resend: a new "email" job with the original
# job's template and payload, the original email untouched; 404 for an
# unknown or bad id, 409 while the email is still queued; staff allowed;
# the action audited.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Darkroom::Test;
use Darkroom::Stripe qw(checkout_order);
use Darkroom::Console qw(console_start account login api);

my $t = Darkroom::Test->new;
console_start($t);
account($t, 'owner@example.com', 'owner');
account($t, 'staff@example.com', 'staff');

sub session {
    my $r = login($t, @_);
    die "login: $r->{status} $r->{content}" unless $r->{status} == 200;
    return { sid => $r->{sid}, csrf => $r->{csrf} };
}
my $o = session('owner@example.com');
my $s = session('staff@example.com');
my $order = checkout_order($t, 1);

# an email sent by a finished job, and one still queued
sub email {
    my ($status) = @_;
    my $job = $t->sql_value("INSERT INTO jobs (kind, payload, done_at)"
        . " VALUES ('email', jsonb_build_object('template', 'receipt',"
        . " 'order_id', :'p1'::bigint), now()) RETURNING id", $order->{id});
    return $t->sql_value("INSERT INTO emails (job_id, template, kind,"
        . " recipient, order_id, provider, status, subject, body_text)"
        . " VALUES (:'p1', 'receipt', 'customer', 'buyer\@example.com',"
        . " :'p2', 'postmark', :'p3', 'Your order', 'Thanks')"
        . " RETURNING id", $job, $order->{id}, $status);
}
my $sent = email('sent');
my $queued = email('queued');
my $before = $t->sql_value("SELECT row_to_json(e)::text FROM emails e"
                           . " WHERE id = :'p1'", $sent);
my $jobs = sub { $t->sql_value("SELECT count(*) FROM jobs WHERE kind = 'email'") };
my $n = $jobs->();

my $r = api($t, $o, POST => "/admin/api/emails/$sent/resend", {});
is($r->{status}, 200, 'owner: resend') or diag $r->{content};
is($r->{json}{resent}, $sent, 'names the email');
my $job = $r->{json}{job};
ok($job, 'and the new job');
is($jobs->(), $n + 1, 'one job more');
is($t->sql_value("SELECT payload::text FROM jobs WHERE id = :'p1'", $job),
   $t->sql_value("SELECT j.payload::text FROM jobs j JOIN emails e"
                 . " ON e.job_id = j.id WHERE e.id = :'p1'", $sent),
   'the same template and payload');
is($t->sql_value("SELECT kind FROM jobs WHERE id = :'p1'", $job), 'email',
   'an email job');
is($t->sql_value("SELECT row_to_json(e)::text FROM emails e WHERE id = :'p1'",
                 $sent), $before, 'the original email untouched');

$r = api($t, $s, POST => "/admin/api/emails/$sent/resend", {});
is($r->{status}, 200, 'staff: resend') or diag $r->{content};
is($jobs->(), $n + 2, 'another job');

$n = $jobs->();
$r = api($t, $o, POST => "/admin/api/emails/$queued/resend", {});
is($r->{status}, 409, 'still queued: 409');
is($r->{json}{error}{code}, 'still_queued', 'still_queued');
for my $bad ('999999', 'abc', '-1', '1x', '99999999999999999999') {
    $r = api($t, $o, POST => "/admin/api/emails/$bad/resend", {});
    is($r->{status}, 404, "id $bad: 404");
    is($r->{json}{error}{code}, 'not_found', 'not_found');
}
is(api($t, $o, GET => "/admin/api/emails/$sent/resend")->{status}, 404,
   'GET: 404');
is($jobs->(), $n, 'nothing written');

$r = api($t, { sid => $o->{sid} }, POST => "/admin/api/emails/$sent/resend",
         {});
is($r->{status}, 403, 'no CSRF token: 403');
is(api($t, undef, POST => "/admin/api/emails/$sent/resend", {})->{status},
   401, 'no credential: 401');
is($jobs->(), $n, 'nothing written');

is($t->sql_value("SELECT count(*) FROM console_audit WHERE method = 'POST'"
    . " AND path = :'p1' AND status = 200 AND actor = 'owner\@example.com'",
    "/admin/api/emails/$sent/resend"), 1, 'audited: the owner');
is($t->sql_value("SELECT count(*) FROM console_audit WHERE method = 'POST'"
    . " AND path = :'p1' AND status = 200 AND actor = 'staff\@example.com'",
    "/admin/api/emails/$sent/resend"), 1, 'audited: the staff');

done_testing;
