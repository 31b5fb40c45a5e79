#!/usr/bin/perl
# libcurl resends a request by itself when a kept-alive connection dies
# before any answer ("Connection died, retrying a fresh connect").  For a
# POST the provider cannot deduplicate (Postmark, SendGrid, theprintspace's
# legacy drafts: no Idempotency-Key) that resend may be a second email or
# order.  Such a POST goes on a fresh connection, so a lost answer is the
# job's failure, retried by the job runner with its backoff, never a silent
# resend inside one attempt.  One pool thread, so the second email would
# reuse the first one's connection.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use JSON::PP;
use Darkroom::Test qw(wait_for);
use Darkroom::Stripe qw(demo_catalogue);
use Darkroom::Mail qw(mail_conf paid_order);

my $t = Darkroom::Test->new;

my $pm = $t->fake_server(name => 'postmark', handler => sub {
    my ($req) = @_;
    # the second email: read, then the connection dies without an answer
    return 'close' if $req->{n_path} == 2;
    return [200, { 'Content-Type' => 'application/json' }, encode_json({
        To => 'ada@example.com', SubmittedAt => '2026-01-01T00:00:00Z',
        MessageID => "pm-$req->{n_path}", ErrorCode => 0,
        Message => 'OK' })];
});

$t->write_file('mail_token', "pm-token\n");
my $mail = mail_conf($t, undef, 'postmark', api => $pm->url,
    backoff => '1s 5s');
$t->conf(<<"CONF");
%%MAIN%%
thread_pool one threads=1;
events {}
http {
    %%HTTP%%
    darkroom_db "%%DB%%";
    darkroom_db_pool one;
    darkroom_jobs_interval 100ms;
    darkroom_jobs_concurrency 1;
$mail
    server {
        listen 127.0.0.1:%%PORT0%%;
        location = /health { darkroom_health; }
    }
}
CONF
demo_catalogue($t);
$t->start;

sub posts { grep { $_->{path} eq '/email' } $pm->requests }
sub receipt {
    my ($o) = @_;
    my ($r) = $t->sql("SELECT j.attempts, e.status FROM jobs j"
        . " JOIN emails e ON e.job_id = j.id WHERE e.order_id = :'p1'"
        . " AND e.template = 'receipt'", $o->{id});
    return $r // [0, ''];
}

my $o1 = paid_order($t, items => [['harbour-dawn', 'giclee-a3', 1]]);
ok(wait_for(sub { receipt($o1)->[1] eq 'sent' }, 30), 'the first receipt is sent');

my $o2 = paid_order($t, items => [['harbour-dawn', 'giclee-a3', 1]]);
ok(wait_for(sub { receipt($o2)->[1] eq 'sent' }, 60), 'the second receipt is sent');

my @p = posts();
is(scalar @p, 3, 'three POSTs: one lost answer, sent again once');
is(receipt($o2)->[0], 2,
    'the lost answer failed the first attempt: no silent resend by libcurl');

done_testing;
