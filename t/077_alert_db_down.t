#!/usr/bin/perl
# PostgreSQL really stopped (a cluster of this test's own, as t/403):
# once it has been unreachable longer than darkroom_alert_db_down, the
# metrics timer's thread sends the owner one email straight through the
# mail provider (there is no database for a job row), and no second one
# while the outage lasts; when PostgreSQL answers again a "back after N s"
# note is queued as a shop_alert job and sent, once.  A second outage
# within darkroom_alert_cooldown sends neither.  Each wait is bounded by
# the timer's own log lines (one "job queue not read" a second while the
# database is down), never by sleeping.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Darkroom::Test qw(wait_for);
use Darkroom::Stripe qw(shop_conf fake_api);
use Darkroom::Mail qw(mail_conf);
use Darkroom::Metrics;

my $t = Darkroom::Test->new;
my $pg = $t->dir . '/pg';
my $pgctl = $t->top . '/tools/darkroom-pg';

system($pgctl, 'start', $pg, 'shop') == 0 or BAIL_OUT('cannot start Postgres');
chomp(my $db = `$pgctl conninfo $pg shop`);
system($t->top . "/tools/darkroom-migrate '$db' >/dev/null") == 0
    or BAIL_OUT('migrations failed');
END { system($pgctl, 'stop', $pg) if $pg }
$t->{db} = $db;

my $stripe = fake_api($t);
my $mail = Darkroom::Mail::sandbox($t);
sub configure {
    my ($extra) = @_;
    shop_conf($t, stripe => $stripe->url,
        http => mail_conf($t, $mail, 'resend')
              . ' darkroom_alerts on; darkroom_metrics_jobs_interval 1s;'
              . ' darkroom_alert_db_down 2s;' . ($extra // ''),
        server => 'location = /metrics { darkroom_metrics; }');
}

configure();
$t->start;

sub down_msgs { grep { ($_->{subject} // '') =~ /PostgreSQL unreachable/ }
                $mail->messages }
sub back_msgs { grep { ($_->{subject} // '') =~ /PostgreSQL is back/ }
                $mail->messages }

# the timer's failed reads so far: one per tick while the database is down
sub misses { scalar(() = $t->error_log =~ /job queue not read/g) }

sub refreshed {
    my ($m) = Darkroom::Metrics::scrape($t);
    return $m->{darkroom_jobs_refreshed_timestamp_seconds} // 0;
}

sub ticks {
    my ($n) = @_;
    my $from = misses();
    return wait_for(sub { misses() >= $from + $n }, 30);
}

ok(wait_for(sub { refreshed() > 0 }, 20), 'the timer reads the database');
is(scalar(down_msgs()), 0, 'no alert while PostgreSQL answers');

# --- the outage ------------------------------------------------------------
system($pgctl, 'stop', $pg) == 0 or die 'cannot stop Postgres';

ok(wait_for(sub { down_msgs() >= 1 }, 30),
    'unreachable past darkroom_alert_db_down: the owner is told');
my ($m) = down_msgs();
like($m->{subject}, qr/^\[Darkroom Prints\] PostgreSQL unreachable for \d+ s$/,
    'the subject says so, in the shop\'s name');
is(join(',', ref $m->{to} ? @{$m->{to}} : $m->{to}), 'owner@example.com',
    'to darkroom_mail_alert_to');
like($t->error_log, qr/darkroom alerts: PostgreSQL unreachable for \d+ s, the owner is told/,
    'and the error log');

ok(ticks(3), 'three more checks while it is down');
is(scalar(down_msgs()), 1, 'one email per outage');

# --- back ------------------------------------------------------------------
system($pgctl, 'start', $pg, 'shop') == 0 or die 'cannot start Postgres';

ok(wait_for(sub { back_msgs() >= 1 }, 30),
    'PostgreSQL answers again: the note is sent');
like((back_msgs())[0]{text}, qr/after \d+ s unreachable/, 'with how long');
is($t->sql_value("SELECT count(*) FROM jobs WHERE kind = 'email'"
    . " AND payload->'alert'->>'condition' = 'db_unreachable'"), 1,
    'as one shop_alert job');
like($t->error_log, qr/darkroom alerts: PostgreSQL answers again after \d+ s/,
    'the error log says so');

# --- a second outage within the cool-down -----------------------------------
system($pgctl, 'stop', $pg) == 0 or die 'cannot stop Postgres';
ok(ticks(5), 'five checks with PostgreSQL down again (past the 2 s)');
is(scalar(down_msgs()), 1, 'within darkroom_alert_cooldown: no second email');
system($pgctl, 'start', $pg, 'shop') == 0 or die 'cannot start Postgres';

# the timer's reads succeed again: two refreshes after the restart, so
# the first one's whole run (its alerts after the gauges) is over
my $back = time;
ok(wait_for(sub { refreshed() >= $back + 1 }, 30), 'a read after the restart');
my $first = refreshed();
ok(wait_for(sub { refreshed() > $first }, 30), 'and the next one');
is($t->sql_value("SELECT count(*) FROM jobs WHERE kind = 'email'"
    . " AND payload->'alert'->>'condition' = 'db_unreachable'"), 1,
    'an outage not told queues no "back" note');
is(scalar(back_msgs()), 1, 'one "back" email in all');

# --- after the cool-down: told again ----------------------------------------
# a cool-down of 1 s (a reload keeps the zone, and the node's last outage
# email in it): the next outage and its end are news again
configure(' darkroom_alert_cooldown 1s;');
$t->reload;
system($pgctl, 'stop', $pg) == 0 or die 'cannot stop Postgres';
ok(wait_for(sub { down_msgs() >= 2 }, 30),
    'an outage after the cool-down: told again');
system($pgctl, 'start', $pg, 'shop') == 0 or die 'cannot start Postgres';
ok(wait_for(sub { back_msgs() >= 2 }, 30), 'and its end');
is($t->sql_value("SELECT count(*) FROM jobs WHERE kind = 'email'"
    . " AND payload->'alert'->>'condition' = 'db_unreachable'"), 2,
    'two "back" jobs in all');
is(scalar(down_msgs()), 2, 'two outage emails in all');

done_testing;
