#!/usr/bin/perl
# darkroom_alerts for a lab's callbacks: deliveries to darkroom_lab_callback
# with a wrong token, darkroom_alert_signatures (2 here) in a row, tell the
# owner once, naming the endpoint and never the token; more of them while
# it lasts tell nothing more (known checked by a dead job's email, decided
# earlier in the same transaction of alert_check()).

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use JSON::PP;
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
LabSandbox::conf($t, $stripe->url, $lab,
    http => "darkroom_lab_poll_interval 1h;\n$mailconf"
          . "    darkroom_alerts on;\n"
          . "    darkroom_metrics_jobs_interval 1s;\n"
          . "    darkroom_alert_signatures 2 15m;\n");
$t->start;

my $cond = 'webhook_signature:lab_callback';
my $forged = '0123456789abcdef' x 4;

sub alerts {
    my ($c) = @_;
    return $t->sql_value("SELECT count(*) FROM jobs WHERE kind = 'email'"
        . " AND payload->'alert'->>'condition' = :'p1'", $c);
}

sub callback {
    return $t->http(POST => "/labs/prodigi?lo=1&token=$forged", {
        port => $t->port(2), headers => { 'Content-Type' =>
        'application/json' }, content => encode_json({ id => 'evt_x' }) });
}

is(callback()->{status}, 403, "a wrong callback token $_") for 1 .. 2;
ok(wait_for(sub { alerts($cond) >= 1 }, 20),
    'two in a row with none good: the owner is told');
ok(wait_for(sub { grep { ($_->{subject} // '') =~ /webhook lab_callback/ }
    $mail->messages }, 20), 'the email names the endpoint');
my ($m) = grep { ($_->{subject} // '') =~ /webhook lab_callback/ }
    $mail->messages;
unlike(encode_json($m), qr/$forged|evt_x/, 'never the token or the body');

is(callback()->{status}, 403, 'another wrong one');
$t->sql("INSERT INTO jobs (kind, dead, last_error)"
    . " VALUES ('http_post', true, 'test')");
ok(wait_for(sub { alerts('jobs_dead') >= 1 }, 20), 'a check ran since');
is(alerts($cond), 1, 'still failing: no second email');

done_testing;
