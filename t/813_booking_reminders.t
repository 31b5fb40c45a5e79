#!/usr/bin/perl
# Booking reminders (darkroom_mail_booking_reminders, default 48h 2h): the
# recurring job "booking_reminders" queues a booking_reminder email when an
# offset's moment comes, once per booking, SEQUENCE and offset
# (booking_reminders); of offsets due at once only the nearest sends; an
# offset whose moment passed before the booking was made sends nothing;
# never for a booking not confirmed, even one cancelled after its reminder
# was queued.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Darkroom::Test qw(wait_for);
use Darkroom::Mail;

my $t = Darkroom::Test->new;
my $mail = Darkroom::Mail::sandbox($t);

$t->sql(<<'SQL');
INSERT INTO photographers (id, name, email, time_zone)
VALUES ('ann', 'Ann Lens', 'ann@example.com', 'Europe/London');
INSERT INTO session_types (id, photographer_id, name, duration, currency,
                           price, deposit_kind, deposit_percent)
VALUES ('portrait', 'ann', 'Portrait session', '1 hour', 'GBP', 20000,
        'percent', 25);
-- n, state, start (hours from now), booked (hours ago)
INSERT INTO bookings (ref, uid, manage_token, photographer_id,
                      session_type_id, state, starts_at, ends_at, busy,
                      held_until, client_name, client_email,
                      client_time_zone, currency, price, deposit,
                      confirmed_at, created_at, updated_at, cancelled_at)
SELECT 'BK-00000' || n, 'bk-' || n || '@darkroom.test', md5(n::text),
       'ann', 'portrait', st, s, s + interval '1 hour',
       tstzrange(s, s + interval '1 hour'),
       CASE WHEN st = 'held' THEN now() + interval '30 minutes' END,
       'Client ' || n, 'c' || n || '@example.com', 'Europe/London', 'GBP',
       20000, 5000,
       CASE WHEN st = 'confirmed' THEN now() - a * interval '1 hour' END,
       now() - a * interval '1 hour', now() - a * interval '1 hour',
       CASE WHEN st = 'cancelled' THEN now() - interval '1 hour' END
  FROM (VALUES (1, 'confirmed', 47, 240),  -- the 48h reminder
               (2, 'confirmed', 1.5, 240), -- both due: only the 2h one
               (3, 'cancelled', 46, 240),  -- never
               (4, 'confirmed', 45, 1),    -- booked inside 48h: none yet
               (5, 'confirmed', 120, 240), -- not yet
               (6, 'held', 44, 1))         -- never
       v(n, st, h, a),
       LATERAL (SELECT now() + h * interval '1 hour' AS s) x;
SQL

my $mailconf = Darkroom::Mail::mail_conf($t, $mail, 'postmark');

# nginx -t refuses times that cannot be
sub try_conf {
    my ($line) = @_;
    $t->conf(<<"CONF");
%%MAIN%%
events {}
http {
    %%HTTP%%
    darkroom_db "%%DB%%";
$mailconf
    $line
    server { listen 127.0.0.1:%%PORT0%%; location = /health { darkroom_health; } }
}
CONF
    return $t->test_conf;
}
for my $bad ('2h 48h', '30s', '31d', '48h 2h 1h 30m 10m', 'soon') {
    my ($ok, $out) = try_conf("darkroom_mail_booking_reminders $bad;");
    ok(!$ok, "darkroom_mail_booking_reminders $bad: refused");
}
for my $good ('off', '1d', '72h 24h 2h 15m') {
    my ($ok, $out) = try_conf("darkroom_mail_booking_reminders $good;");
    ok($ok, "darkroom_mail_booking_reminders $good: taken") or diag $out;
}

$t->conf(<<"CONF");
%%MAIN%%
events {}
http {
    %%HTTP%%
    darkroom_db "%%DB%%";
    darkroom_jobs_interval 100ms;
$mailconf
    darkroom_mail_booking_reminders 48h 2h;
    server {
        listen 127.0.0.1:%%PORT0%%;
        location = /health { darkroom_health; }
    }
}
CONF
$t->start;

sub sent { grep { $_->{subject} =~ /^Reminder/ } $mail->messages }

# the recurring job has run once the reminders are recorded
ok(wait_for(sub { $t->sql_value("SELECT count(*) FROM booking_reminders")
                  == 4 }, 15), 'the due reminders are recorded')
    or diag $t->error_log;
ok(wait_for(sub { sent() == 2 }, 15), 'two reminder emails');
is_deeply([ sort map { $_->{to}[0] } sent() ],
    [ 'c1@example.com', 'c2@example.com' ], 'to clients 1 and 2');
my ($m) = grep { $_->{to}[0] eq 'c1@example.com' } sent();
like($m->{text}, qr{booking\.html\?ref=BK-000001&token=[0-9a-f]{32}},
    'with the link to manage it');
is(scalar @{ $m->{attachments} }, 1, 'and the invite');

my %rem = map { ("$_->[0] $_->[1]" => $_->[2]) } $t->sql(
    "SELECT b.ref, extract(epoch FROM r.before)::bigint / 3600,"
    . " r.job_id IS NOT NULL FROM booking_reminders r"
    . " JOIN bookings b ON b.id = r.booking_id");
is_deeply(\%rem, { 'BK-000001 48' => 't', 'BK-000002 2' => 't',
                   'BK-000002 48' => 'f', 'BK-000004 48' => 'f' },
    '48h for 1; 2h (not 48h) for 2; 48h recorded silent for 4');

# once each
is($t->sql_value("SELECT booking_reminders_enqueue('{172800,7200}')"), 0,
    'run again: nothing more');

# a new SEQUENCE (moved) gets its own
$t->sql("UPDATE bookings SET sequence = sequence + 1,"
    . " updated_at = now() - interval '10 days' WHERE ref = 'BK-000001'");
is($t->sql_value("SELECT booking_reminders_enqueue('{172800,7200}')"), 1,
    'a moved booking is reminded for its new time');

# cancelled after its reminder was queued: not sent, the job gives up
my $id = $t->sql_value("SELECT id FROM bookings WHERE ref = 'BK-000005'");
$t->sql("UPDATE bookings SET state = 'cancelled', cancelled_at = now()"
    . " WHERE id = $id");
my $job = $t->sql_value("INSERT INTO jobs (kind, payload) VALUES ('email',"
    . " jsonb_build_object('template', 'booking_reminder', 'booking_id',"
    . " ${id}::bigint, 'to', 'c5\@example.com')) RETURNING id");
ok(wait_for(sub { $t->sql_value("SELECT dead OR done_at IS NOT NULL"
    . " FROM jobs WHERE id = $job") eq 't' }, 15),
    "a cancelled booking's reminder job ends");
is($t->sql_value("SELECT count(*) FROM emails WHERE job_id = $job"), 0,
    'and sends nothing');
is(scalar(grep { $_->{to}[0] eq 'c5@example.com' } $mail->messages), 0,
    'no email to its client');

done_testing;
