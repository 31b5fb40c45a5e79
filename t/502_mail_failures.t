#!/usr/bin/perl
# Mail when the provider fails: 500 twice then 200 sends one message; a 422
# fails the message at once with the provider's reason (no retry storm),
# visible in the emails table and the admin API; 429 Retry-After is
# honoured; and a worker killed between Resend accepting a message and the
# answer being recorded does not send it twice.

use strict;
use warnings;
use utf8;
use lib 't/lib';
use Test::More;
use JSON::PP;
use Time::HiRes qw(sleep);
use Darkroom::Test qw(wait_for);
use Darkroom::Stripe qw(demo_catalogue shop_conf fake_api);
use Darkroom::Mail qw(sandbox mail_conf paid_order);

my $t = Darkroom::Test->new;
my $stripe = fake_api($t);
my $mail = sandbox($t);
shop_conf($t, stripe => $stripe->url, http => mail_conf($t, $mail, 'resend',
    backoff => '300ms 5s', fetch_timeout => '10s')
    . "    darkroom_jobs_lease 60s;\n");
demo_catalogue($t);
$t->start;

sub email_row {
    my ($o) = @_;
    my ($row) = $t->sql("SELECT e.status, e.attempts, coalesce(e.error, ''),"
        . " e.message_key, coalesce(e.provider_message_id, ''), j.attempts,"
        . " j.dead, j.done_at IS NOT NULL, coalesce(j.last_error, '')"
        . " FROM emails e JOIN jobs j ON j.id = e.job_id"
        . " WHERE e.order_id = :'p1' AND e.template = 'receipt'", $o->{id});
    return $row;
}

sub wait_status {
    my ($o, $status, $timeout) = @_;
    return wait_for(sub { my $r = email_row($o); $r && $r->[0] eq $status },
        $timeout // 15);
}

sub requests_for {
    my ($key) = @_;
    return grep { ($_->{headers}{'idempotency-key'} // '') eq $key }
        $mail->requests;
}

sub messages_for {
    my ($o) = @_;
    return grep { ($_->{subject} // '') =~ /\Q$o->{ref}\E/ } $mail->messages;
}

# --- 500 twice, then 200 ---------------------------------------------------
$mail->config(fail_next => [{ status => 500, count => 2 }]);
my $o = paid_order($t, items => [['harbour-dawn', 'giclee-a3', 1]]);
ok(wait_status($o, 'sent'), '500, 500, then sent');
my $row = email_row($o);
is($row->[1], 3, 'three attempts on the message');
is($row->[2], '', 'no error left once sent');
is($row->[5], 3, 'three job attempts');
ok($row->[7], 'job done');
my @r = requests_for($row->[3]);
is_deeply([map { $_->{status} } @r], [500, 500, 200],
    'three requests, the same Idempotency-Key each time');
is(scalar(messages_for($o)), 1, 'one message');

# --- 422: failed at once, with the reason -----------------------------------
$mail->config(fail_next => [{ status => 422, name => 'validation_error',
    message => 'The shop.example.com domain is not verified.' }]);
# a print: a download would send its delivery email too, which the
# injected failure could hit instead of the receipt (t/443 has that email)
$o = paid_order($t, items => [['moor-rain', 'giclee-a3', 1]]);
ok(wait_status($o, 'failed'), '422: the message failed');
sleep 1.5;  # time for any retry to happen
$row = email_row($o);
is($row->[0], 'failed', 'still failed');
is($row->[1], 1, 'one attempt');
is($row->[2], 'resend answered 422 validation_error: The shop.example.com'
    . ' domain is not verified.', "the provider's reason on the message");
ok($row->[6], 'the job is dead, not retried');
like($row->[8], qr/domain is not verified/, 'the reason on the job');
is(scalar(requests_for($row->[3])), 1, 'no retry storm: one request');
is(scalar(messages_for($o)), 0, 'nothing sent');

my $r = $t->http(GET => "/admin/api/orders/$o->{ref}",
    { headers => { Authorization => 'Bearer admin-token-1' } });
my ($job) = grep { $_->{kind} eq 'email' } @{ $r->{json}{jobs} // [] };
ok($job && $job->{dead}, 'admin API: the email job is dead');
like($job->{last_error} // '', qr/domain is not verified/,
    'admin API: with the reason');

my $list = decode_json($t->sql_value(
    "SELECT admin_emails_json('failed', :'p1', 10)", $o->{ref}));
is_deeply([map { [$_->{template}, $_->{status}, $_->{order}] } @{$list->{emails}}],
    [['receipt', 'failed', $o->{ref}]], 'admin_emails_json lists the failed mail');
like($list->{emails}[0]{error}, qr/not verified/, 'with its error');

# an admin retries it once the domain is fixed: sent, same key, same row
$t->sql("SELECT admin_job_retry(id) FROM jobs WHERE kind = 'email'"
    . " AND payload->>'order_id' = :'p1'", $o->{id});
ok(wait_status($o, 'sent'), 'retried by the admin: sent');
my $again = email_row($o);
is($again->[3], $row->[3], 'under the same message key');
is(scalar(messages_for($o)), 1, 'one message');

# a recipient the provider refuses: its own 422, failed
$o = paid_order($t, items => [['moor-rain', 'digital', 1]],
    email => 'nobody@nowhere.invalid');
ok(wait_status($o, 'failed'), 'refused recipient: failed');
like(email_row($o)->[2], qr/^resend answered 422 validation_error: The recipient/,
    'with the reason');

# --- 429 with Retry-After --------------------------------------------------
$mail->config(fail_next => [{ status => 429, retry_after => 2 }]);
$o = paid_order($t, items => [['harbour-dawn', 'giclee-a3', 1]]);
ok(wait_status($o, 'sent'), '429, then sent');
$row = email_row($o);
@r = requests_for($row->[3]);
is_deeply([map { $_->{status} } @r], [429, 200], '429 then 200');
cmp_ok($r[1]{time} - $r[0]{time}, '>=', 1.9,
    'the retry waited for Retry-After (2 s), not the 300 ms backoff');

# --- a crash between send and record ---------------------------------------
# the sandbox stores the message and holds its answer (far longer than the
# test needs, however slow the machine); the worker is killed while it
# waits; its lease is released as its owner is gone; a new worker sends it
# again
$mail->config(fail_next => [{ status => 200, delay_ms => 60000 }]);
my @workers = $t->worker_pids;
$o = paid_order($t, items => [['harbour-dawn', 'canvas-50', 1]]);
ok(wait_for(sub { scalar messages_for($o) }, 10), 'accepted by Resend');
is(email_row($o)->[0], 'queued', 'not yet recorded as sent');
kill 'KILL', @workers;
ok(wait_status($o, 'sent', 20), 'sent after the crash');
$row = email_row($o);
@r = requests_for($row->[3]);
is(scalar @r, 2, 'sent twice, under one Idempotency-Key');
ok(!$r[0]{replayed} && $r[1]{replayed}, 'the second was a replay');
is(scalar(messages_for($o)), 1, 'one message in the mailbox');
is($row->[4], (messages_for($o))[0]{id}, 'the id Resend gave first');
is($row->[5], 2, 'the job ran twice');
is($row->[1], 1, 'one recorded attempt on the message');

like($t->error_log, qr/email \d+ \(receipt\): resend answered 500/,
    'failures logged with the reason');
unlike($t->error_log, qr/mail-token-1/, 'the token is never logged');

done_testing();
