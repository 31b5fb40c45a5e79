#!/usr/bin/perl
# The owner's alerts (darkroom_alerts): the shop_alert email fires once per
# condition, with a cool-down, for webhook signatures failing in a row
# (counted in shared memory, the email names the endpoint, never the
# secret or the payload), dead jobs and lab orders needing attention.
# A condition that stays, or grows within the cool-down, sends nothing
# more; after the cool-down (alert_state.last_sent moved back in SQL) a
# grown one sends again; one that clears and comes back within the
# cool-down sends nothing, after it again.  Each step counts the email
# job rows of the condition (and the mail sandbox's messages); a check
# is known to have run by the state it wrote in alert_state (one check
# is one transaction: jobs_dead, lab_attention, then the webhooks).

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use JSON::PP;
use Darkroom::Test qw(wait_for);
use Darkroom::Stripe qw(signature event session demo_catalogue shop_conf
    fake_api);
use Darkroom::Mail qw(mail_conf paid_order);

my $t = Darkroom::Test->new;
my $stripe = fake_api($t);
my $mail = Darkroom::Mail::sandbox($t);
shop_conf($t, stripe => $stripe->url, secrets => ['whsec_alerts_secret'],
    http => mail_conf($t, $mail, 'postmark')
          . ' darkroom_alerts on; darkroom_metrics_jobs_interval 1s;'
          . ' darkroom_alert_signatures 3 15m;');
demo_catalogue($t);
$t->start;

# email job rows of one condition
sub alerts {
    my ($cond) = @_;
    return $t->sql_value("SELECT count(*) FROM jobs WHERE kind = 'email'"
        . " AND payload->'alert'->>'condition' = :'p1'", $cond);
}

sub state_of {
    my ($cond, $col) = @_;
    return $t->sql_value("SELECT $col FROM alert_state"
        . " WHERE condition = :'p1'", $cond) // '';
}

# the cool-down over for a condition: its last email two hours ago
sub cool {
    my ($cond) = @_;
    $t->sql("UPDATE alert_state SET last_sent = last_sent"
        . " - interval '2 hours' WHERE condition = :'p1'", $cond);
}

sub deliver {
    my ($secret) = @_;
    my $body = event('checkout.session.expired', session(
        id => 'cs_test_alerts', order_id => 999999, ref => 'NOPE'));
    return $t->http(POST => '/webhooks/stripe', { headers => {
        'Content-Type' => 'application/json',
        'Stripe-Signature' => signature($secret, $body) },
        content => $body });
}

sub dead_job {
    return $t->sql_value("INSERT INTO jobs (kind, dead, last_error)"
        . " VALUES ('http_post', true, 'test') RETURNING id");
}

sub lab_attention {
    my $o = paid_order($t, items => [['harbour-dawn', 'giclee-a3', 1]]);
    my $lo = $t->sql_value("INSERT INTO lab_orders (order_id, lab,"
        . " idempotency_key) VALUES (:'p1', 'prodigi', 'alert-' || :'p1')"
        . " RETURNING id", $o->{id});
    $t->sql("SELECT lab_attention(:'p1', 'the lab refused it', 'test')", $lo);
    return $lo;
}

# a lab order waiting longer than the cool-down (its own email went when it
# turned; the condition is the reminder of those still waiting)
sub lab_waiting {
    my ($lo) = @_;
    $t->sql("UPDATE lab_order_events SET created_at = now() - interval '2h'"
        . " WHERE lab_order_id = :'p1'", $lo);
}

my $sig = 'webhook_signature:stripe';

# --- webhook signatures: three bad in a row --------------------------------
is(deliver('whsec_wrong')->{status}, 400, "bad signature $_") for 1 .. 3;
ok(wait_for(sub { alerts($sig) >= 1 }, 20),
    'three bad signatures with none good: the owner is told');
ok(wait_for(sub { grep { ($_->{subject} // '') =~ /webhook stripe/ }
    $mail->messages }, 20), 'the email reached the provider');
my ($m) = grep { ($_->{subject} // '') =~ /webhook stripe/ } $mail->messages;
is(join(',', ref $m->{to} ? @{$m->{to}} : $m->{to}), 'owner@example.com',
    'to darkroom_mail_alert_to');
like($m->{text}, qr/3 deliveries to the stripe webhook failed/,
    'it names the endpoint and the count');
unlike(encode_json($m), qr/whsec_|cs_test_alerts|evt_/,
    'never the secret or the payload');

# more bad ones while it lasts: nothing more (known checked by jobs_dead,
# decided earlier in the same transaction)
is(deliver('whsec_wrong')->{status}, 400, 'another bad signature');
my $dead1 = dead_job();
ok(wait_for(sub { alerts('jobs_dead') >= 1 }, 20),
    'a dead job: the owner is told');
is(alerts($sig), 1, 'the failing webhook, still failing: no second email');

# --- dead jobs: another within the cool-down, then after it -----------------
my $dead2 = dead_job();
my $lo1 = lab_attention();
ok(wait_for(sub { state_of('jobs_dead', "detail->>'count'") == 2 }, 20),
    'a check after the second dead job and the lab order has run');
is(alerts('jobs_dead'), 1, 'another dead job within the cool-down: none');
is(alerts('lab_attention'), 0,
    'a lab order that just turned: its own email only, no reminder yet');
is($t->sql_value("SELECT count(*) FROM jobs WHERE kind = 'email'"
    . " AND dedupe_key LIKE 'email:alert:%:lab:' || :'p1' || ':%'", $lo1), 1,
    'its own shop_alert was queued when it turned');
lab_waiting($lo1);
ok(wait_for(sub { alerts('lab_attention') >= 1 }, 20),
    'a lab order waiting longer than the cool-down: the owner is reminded');

cool('jobs_dead');
ok(wait_for(sub { alerts('jobs_dead') >= 2 }, 20),
    'after the cool-down, the grown condition sends again');
is(alerts('jobs_dead'), 2, 'once');

# the same dead jobs after another cool-down: not news, nothing (checked
# once the good delivery below has cleared the webhook's condition)
cool('jobs_dead');
is(deliver('whsec_alerts_secret')->{status}, 200, 'a good signature');
ok(wait_for(sub { state_of($sig, 'active') eq 'f' }, 20),
    'the webhook condition clears');
is(alerts('jobs_dead'), 2, 'dead jobs unchanged: no email after the cool-down');
is(alerts($sig), 1, 'clearing sends nothing');

# --- the webhook comes back: within the cool-down none, after it one --------
is(deliver('whsec_wrong')->{status}, 400, "bad again $_") for 1 .. 3;
ok(wait_for(sub { state_of($sig, 'active') eq 't' }, 20),
    'failing again');
is(alerts($sig), 1, 'back within the cool-down: no email');
cool($sig);
ok(wait_for(sub { alerts($sig) >= 2 }, 20),
    'still failing after the cool-down: told again');

# --- lab orders: another within the cool-down, then after it ----------------
my $lo2 = lab_attention();
lab_waiting($lo2);
ok(wait_for(sub { state_of('lab_attention', "detail->>'count'") == 2 }, 20),
    'two lab orders need attention');
is(alerts('lab_attention'), 1, 'the second within the cool-down: no email');
cool('lab_attention');
ok(wait_for(sub { alerts('lab_attention') >= 2 }, 20),
    'after the cool-down: told again');

# every alert email is sent to the owner, each exactly once
ok(wait_for(sub { $t->sql_value("SELECT count(*) FROM jobs WHERE kind ="
    . " 'email' AND payload ? 'alert' AND done_at IS NULL") == 0 }, 20),
    'every alert email sent');
my @alert_msgs = grep { ($_->{subject} // '') =~
    /dead job|lab order\(s\) need|webhook stripe/ } $mail->messages;
is(scalar @alert_msgs, 6, 'six alert messages reached the provider: '
    . join ', ', map { $_->{subject} } @alert_msgs);
like($t->error_log, qr/darkroom alerts: jobs_dead, the owner is told/,
    'the error log says what was sent');

done_testing;
