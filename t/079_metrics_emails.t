#!/usr/bin/perl
# darkroom_emails_total moves by exactly the provider calls a scripted run
# makes, by provider and outcome: through Postmark three receipts, the
# first two calls answered 500 (retried), then one the provider refuses
# for good (a .invalid recipient); through Resend, after a reload, two
# receipts.  The mail sandbox's own record of the calls agrees.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Darkroom::Test qw(wait_for);
use Darkroom::Stripe qw(demo_catalogue shop_conf fake_api);
use Darkroom::Mail qw(mail_conf paid_order);
use Darkroom::Metrics;

my $t = Darkroom::Test->new;
my $stripe = fake_api($t);
my $mail = Darkroom::Mail::sandbox($t);

sub configure {
    my ($provider) = @_;
    shop_conf($t, stripe => $stripe->url,
        http => mail_conf($t, $mail, $provider, backoff => '100ms 1s'),
        server => 'location = /metrics { darkroom_metrics; }');
}

configure('postmark');
demo_catalogue($t);
$t->start;

sub emails {
    my ($m) = Darkroom::Metrics::scrape($t);
    my %e;
    for my $p (qw(postmark resend)) {
        for my $o (qw(ok error)) {
            $e{"$p:$o"} = $m->{"darkroom_emails_total{provider=\"$p\","
                . "outcome=\"$o\"}"} // 0;
        }
    }
    return \%e;
}

sub count_emails {
    my ($status) = @_;
    return $t->sql_value("SELECT count(*) FROM emails WHERE status = :'p1'",
        $status);
}

my $base = emails();

# --- Postmark: 2 failed calls, 3 sent, 1 refused for good -------------------
$mail->config(fail_next => [{ status => 500, count => 2 }]);
paid_order($t, items => [['harbour-dawn', 'giclee-a3', 1]]) for 1 .. 3;
ok(wait_for(sub { count_emails('sent') == 3 }, 30), 'three receipts sent');

paid_order($t, items => [['moor-rain', 'giclee-a3', 1]],
    email => 'nobody@bounce.invalid');
ok(wait_for(sub { count_emails('failed') == 1 }, 30),
    'the fourth refused for good');

my $now = emails();
my %moved = map { $_ => $now->{$_} - $base->{$_} } keys %$now;
is($moved{'postmark:ok'}, 3, 'postmark ok: exactly 3');
is($moved{'postmark:error'}, 3, 'postmark error: exactly 3 (two 500s, one refusal)');
is($moved{'resend:ok'} + $moved{'resend:error'}, 0, 'resend: none');

my @calls = grep { $_->{path} eq '/email' } $mail->requests;
is(scalar @calls, 6, 'the sandbox saw the same 6 Postmark calls');

# --- Resend, after a reload: 2 sent -----------------------------------------
configure('resend');
$t->reload;
paid_order($t, items => [['harbour-dawn', 'giclee-a3', 2]]) for 1 .. 2;
ok(wait_for(sub { count_emails('sent') == 5 }, 30), 'two more receipts sent');

$now = emails();
%moved = map { $_ => $now->{$_} - $base->{$_} } keys %$now;
is($moved{'resend:ok'}, 2, 'resend ok: exactly 2');
is($moved{'resend:error'}, 0, 'resend error: 0');
is($moved{'postmark:ok'}, 3, 'postmark ok unchanged by the reload');
is($moved{'postmark:error'}, 3, 'postmark error unchanged');
is(scalar(grep { $_->{path} eq '/emails' } $mail->requests), 2,
    'the sandbox saw the same 2 Resend calls');

done_testing;
