#!/usr/bin/perl
# A booking's emails: the job book-core queues (an "email" job with
# {"template": "booking_confirmed", "booking_id", "to"}) reaches the client
# through each provider with its invite attached (invite.ics, text/calendar;
# method=REQUEST, in the provider's documented JSON shape), the times in
# the client's time zone and the link to manage the booking; a cancel's
# invite is METHOD:CANCEL.  The sandbox keeps the attachments.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use JSON::PP;
use MIME::Base64 qw(decode_base64);
use Darkroom::Test qw(wait_for);
use Darkroom::Mail;
use Darkroom::Contract qw(contract_ok);

my $PY = '/usr/bin/python3';
plan skip_all => 'no python3-icalendar (make deps)'
    unless -x $PY && system($PY, '-c', 'import icalendar') == 0;

my $t = Darkroom::Test->new;
my $top = $t->top;
my $mail = Darkroom::Mail::sandbox($t);

$t->sql(<<'SQL');
INSERT INTO photographers (id, name, email, time_zone)
VALUES ('ann', 'Ann Lens', 'ann@example.com', 'Europe/London');
INSERT INTO session_types (id, photographer_id, name, duration, currency,
                           price, deposit_kind, deposit_percent, location)
VALUES ('portrait', 'ann', 'Portrait session', '1 hour', 'GBP', 20000,
        'percent', 25, '1 High St, London');
-- 10:00 London on the day the clocks go forward; the client in New York
INSERT INTO bookings (ref, uid, sequence, manage_token, photographer_id,
                      session_type_id, state, starts_at, ends_at, busy,
                      client_name, client_email, client_time_zone, currency,
                      price, deposit, deposit_paid, confirmed_at)
SELECT 'BK-00000' || n, 'bk-' || n || '@darkroom.test', 0,
       md5(n::text), 'ann', 'portrait', 'confirmed', s,
       s + interval '1 hour', tstzrange(s, s + interval '1 hour'),
       'Zoe Client', 'zoe' || n || '@example.com', 'America/New_York',
       'GBP', 20000, 5000, 5000, now()
  FROM (VALUES (1, timestamptz '2027-03-28 10:00 Europe/London'),
               (2, timestamptz '2027-03-29 10:00 Europe/London'),
               (3, timestamptz '2027-03-30 10:00 Europe/London')) v(n, s);
SQL

sub start_with {
    my ($provider) = @_;
    $t->stop if $t->{started};
    my $mailconf = Darkroom::Mail::mail_conf($t, $mail, $provider);
    $t->conf(<<"CONF");
%%MAIN%%
events {}
http {
    %%HTTP%%
    darkroom_db "%%DB%%";
    darkroom_jobs_interval 100ms;
$mailconf
    server {
        listen 127.0.0.1:%%PORT0%%;
        location = /health { darkroom_health; }
    }
}
CONF
    $t->start;
}

sub queue {
    my ($template, $n) = @_;
    my $id = $t->sql_value("SELECT id FROM bookings WHERE ref = 'BK-00000$n'");
    my $seq = $t->sql_value("SELECT sequence FROM bookings WHERE id = $id");
    $t->sql("INSERT INTO jobs (kind, payload, dedupe_key) VALUES ('email',"
        . " jsonb_build_object('template', :'p1', 'booking_id', ${id}::bigint,"
        . " 'to', :'p2'), :'p1' || ':' || $id || ':' || $seq)",
        $template, "zoe$n\@example.com");
    return $id;
}

sub mail_to {
    my ($to, $subject) = @_;
    my @m = grep { join(',', @{ $_->{to} || [] }) eq $to
                   && $_->{subject} =~ $subject } $mail->messages;
    return $m[-1];
}

sub parse {
    my ($text) = @_;
    my $bytes = $text;
    utf8::encode($bytes);
    $t->write_file('invite.ics', $bytes);
    my $out = `$PY $top/t/lib/ics_parse.py ${\ $t->dir}/invite.ics`;
    die "ics_parse failed\n" if $?;
    return decode_json($out);
}

# where each provider's request carries the invite
my %shape = (
    postmark => sub { [ map { [ $_->{Name}, $_->{ContentType},
                                $_->{Content} ] }
                        @{ $_[0]{Attachments} || [] } ] },
    sendgrid => sub { [ map { [ $_->{filename}, $_->{type}, $_->{content},
                                $_->{disposition} ] }
                        @{ $_[0]{attachments} || [] } ] },
    resend   => sub { [ map { [ $_->{filename}, $_->{content_type},
                                $_->{content} ] }
                        @{ $_[0]{attachments} || [] } ] },
);

my $n = 0;
for my $provider (qw(postmark sendgrid resend)) {
    $n++;
    $mail->reset;
    start_with($provider);
    my $id = queue('booking_confirmed', $n);
    my $to = "zoe$n\@example.com";
    my $m = wait_for(sub { mail_to($to, qr/is booked/) }, 15);
    ok($m, "$provider: the confirmation reaches the client")
        or diag $t->error_log;
    next unless $m;

    is(scalar @{ $m->{attachments} }, 1, "$provider: one attachment");
    my $a = $m->{attachments}[0];
    is($a->{filename}, 'invite.ics', "$provider: invite.ics");
    is($a->{content_type}, 'text/calendar; method=REQUEST; charset=UTF-8',
        "$provider: text/calendar; method=REQUEST");
    my $c = parse($a->{content});
    is($c->{calendar}{METHOD}, 'REQUEST', "$provider: METHOD:REQUEST");
    is($c->{events}[0]{UID}, "bk-$n\@darkroom.test", "$provider: its UID");
    is($c->{events}[0]{SEQUENCE}, '0', "$provider: its SEQUENCE");

    # the request in the provider's shape, the content base64
    my ($req) = grep { ($_->{body} // '') =~ /\Q$to\E/ } $mail->requests;
    contract_ok($provider, { postmark => 'email', sendgrid => 'mail_send',
        resend => 'send_email' }->{$provider}, decode_json($req->{body}),
        "$provider: the request with its attachment");
    my $att = $shape{$provider}->(decode_json($req->{body}));
    is(scalar @$att, 1, "$provider: the request has the attachment");
    is($att->[0][0], 'invite.ics', "$provider: filename in its place");
    like($att->[0][1], qr{^text/calendar}, "$provider: type in its place");
    like(decode_base64($att->[0][2]), qr/^BEGIN:VCALENDAR\r\n/,
        "$provider: base64 content");
    is($att->[0][3], 'attachment', 'sendgrid: disposition attachment')
        if $provider eq 'sendgrid';

    # what the client reads: New York time (EDT on 28 March: 05:00 for
    # 10:00 in London); the link to manage it
    my $day = (qw(Sunday Monday Tuesday))[$n - 1];
    my $date = 27 + $n;
    like($m->{text}, qr/When: $day $date March 2027, 05:00 to 06:00 \(America\/New_York\)/,
        "$provider: the time in the client's zone");
    my $token = $t->sql_value("SELECT manage_token FROM bookings WHERE id = $id");
    like($m->{text}, qr{\Qhttp://shop.example/booking.html?ref=BK-00000$n&token=$token\E},
        "$provider: the manage link in the text");
    like($m->{html}, qr{\Qhttp://shop.example/booking.html?ref=BK-00000$n&amp;token=$token\E},
        "$provider: and in the HTML");
    is($t->sql_value("SELECT jsonb_array_length(attachments) FROM emails"
        . " WHERE recipient = :'p1'", $to), 1,
        "$provider: the invite recorded with the message");
}

$mail->reset;

# a cancel: METHOD:CANCEL, STATUS:CANCELLED, the sequence raised
$t->sql("UPDATE bookings SET state = 'cancelled', sequence = sequence + 1,"
    . " cancelled_at = now(), cancel_reason = 'Ill', cancelled_by = 'client'"
    . " WHERE ref = 'BK-000003'");
queue('booking_cancelled', 3);
my $m = wait_for(sub { mail_to('zoe3@example.com', qr/is cancelled/) }, 15);
ok($m, 'the cancel reaches the client');
SKIP: {
    skip 'no cancel email', 5 unless $m;
    my $a = $m->{attachments}[0];
    is($a->{content_type}, 'text/calendar; method=CANCEL; charset=UTF-8',
        'text/calendar; method=CANCEL');
    my $c = parse($a->{content});
    is($c->{calendar}{METHOD}, 'CANCEL', 'METHOD:CANCEL');
    is($c->{events}[0]{STATUS}, 'CANCELLED', 'STATUS:CANCELLED');
    is($c->{events}[0]{SEQUENCE}, '1', 'SEQUENCE raised');
    like($m->{text}, qr/Reason: Ill/, 'with the reason');
}

# a reschedule: the new time, METHOD:REQUEST with the raised SEQUENCE
$t->sql("UPDATE bookings SET sequence = sequence + 1,"
    . " starts_at = starts_at + interval '1 day',"
    . " ends_at = ends_at + interval '1 day',"
    . " busy = tstzrange(lower(busy) + interval '1 day',"
    . " upper(busy) + interval '1 day') WHERE ref = 'BK-000002'");
queue('booking_rescheduled', 2);
$m = wait_for(sub { mail_to('zoe2@example.com', qr/has moved/) }, 15);
ok($m, 'the reschedule reaches the client');
SKIP: {
    skip 'no reschedule email', 4 unless $m;
    like($m->{subject}, qr/has moved to Tuesday 30 March 2027, 05:00/,
        'the new time in the subject');
    my $c = parse($m->{attachments}[0]{content});
    is($c->{calendar}{METHOD}, 'REQUEST', 'METHOD:REQUEST');
    is($c->{events}[0]{SEQUENCE}, '1', 'SEQUENCE raised');
    is($c->{events}[0]{DTSTART}, '2027-03-30T09:00:00Z', 'the new start');
}

# other emails carry no attachment
is($t->sql_value("SELECT count(*) FROM emails WHERE template NOT LIKE"
    . " 'booking\\_%' AND attachments <> '[]'"), 0,
    'no other email has an attachment');

done_testing;
