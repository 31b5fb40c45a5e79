#!/usr/bin/perl
# The console's bookings page in a real browser (headless chromium driven
# by python3-selenium): the owner adds the photographer, creates a session
# type (a bad price refused with a message first), sets the weekly hours
# (overlapping periods refused with the server's message), closes a day,
# sees a booking inserted in SQL in its week (prev/next week), opens it,
# cancels it with a reason (a cancel without one refused), and finds the
# cancel in the audit page; reschedules another (a bad time, a taken one
# and one outside the hours refused with a message, then forced); at 375
# px no view scrolls sideways.
# Skips, saying why, where chromium, chromedriver or selenium is missing.

use strict;
use warnings;
use utf8;
use lib 't/lib';
use Test::More;
use JSON::PP;
use Darkroom::Test;
use Darkroom::ConsolePages;

binmode $_, ':encoding(UTF-8)' for Test::More->builder->output,
    Test::More->builder->failure_output;
my $b = Darkroom::ConsolePages::need_browser();
my $t = Darkroom::Test->new;
Darkroom::ConsolePages::start($t,
    server => "location /admin/api/bookings/ { darkroom_bookings_admin; }\n");
my $base = 'http://127.0.0.1:' . $t->port(0);
Darkroom::ConsolePages::owner($t, 'owner@example.com', 'owner-password-1');

# 1. the photographer, a session type, the hours, a blackout day
my $out = Darkroom::ConsolePages::run($t, $b, '983-setup', <<'PY', $base);
login(args[0], 'owner@example.com', 'owner-password-1')
out['nav'] = [a.text for a in css('#nav a')]
page(args[0], 'bookings?view=types', '#photographer-form')
fill('photographer-form', 'id', 'anna')
fill('photographer-form', 'name', 'Anna Field')
fill('photographer-form', 'email', 'anna@example.com')
fill('photographer-form', 'time_zone', 'Europe/London')
submit('photographer-form')
click('#type-new')
one('#type-form')
fill('type-form', 'id', 'portrait')
fill('type-form', 'name', 'Portrait session')
fill('type-form', 'duration', '60')
fill('type-form', 'price', 'a lot')
fill('type-form', 'deposit', '30')
submit('type-form')
out['badprice'] = said('type-form', True)
fill('type-form', 'price', '150.00')
fill('type-form', 'duration', '10')
submit('type-form')
out['badduration'] = said('type-form', True)
fill('type-form', 'duration', '60')
out['balancedefault'] = one('#type-balance-due').get_attribute('value')
fill('type-form', 'balance-due', '0')
submit('type-form')
out['badbalance'] = said('type-form', True)
fill('type-form', 'balance-due', '48')
submit('type-form')
one('button[data-type="portrait"]')
out['types'] = one('#main table').text
page(args[0], 'bookings?view=hours', '#hours-form')
fill('hours-form', 'day1', '09:00-12:00, 11:00-13:00')
submit('hours-form')
out['overlap'] = said('hours-form', True)
fill('hours-form', 'day1', '09:00-12:00, 13:00-17:30')
fill('hours-form', 'day3', '10:00-16:00')
submit('hours-form')
out['hours'] = said('hours-form', False)
page(args[0], 'bookings?view=days', '#day-form')
fill('day-form', 'day', '31/03/2027')
submit('day-form')
out['badday'] = said('day-form', True)
fill('day-form', 'day', '2027-04-02')
fill('day-form', 'note', 'Good Friday')
submit('day-form')
one('button[data-exception]')
out['days'] = one('#main table').text
PY
is($out->{error}, undef, 'the setup views');
ok((grep { $_ eq 'Bookings' } @{$out->{nav} // []}), 'Bookings in the menu');
like($out->{badprice} // '', qr/price/, "a bad price: $out->{badprice}");
like($out->{badduration} // '', qr/duration_minutes/,
     "the server refuses 10 minutes: $out->{badduration}");
like($out->{types} // '', qr/Portrait session.*60 min/s, 'the type listed');
is($out->{balancedefault}, '72', 'the balance link: 72 hours before by default');
like($out->{badbalance} // '', qr/balance_due_hours/,
     "the server refuses 0 hours: $out->{badbalance}");
is($t->sql_value(q{SELECT balance_due_hours FROM session_types}), 48,
   'the balance link 48 hours before, stored');
like($out->{overlap} // '', qr/overlaps/, "overlap refused: $out->{overlap}");
like($out->{hours} // '', qr/saved/, 'the week saved');
like($out->{badday} // '', qr/YYYY-MM-DD/, "a bad day: $out->{badday}");
like($out->{days} // '', qr/2027-04-02.*Good Friday/s, 'the day closed');

is($t->sql_value(q{SELECT name || ' ' || time_zone FROM photographers}),
   'Anna Field Europe/London', 'the photographer stored');
is($t->sql_value(q{SELECT price || ' ' || deposit_kind || ' '
    || deposit_percent::int || ' ' || duration FROM session_types}),
   '15000 percent 30 01:00:00', 'the type stored');
is($t->sql_value(q{SELECT string_agg(weekday || ' ' || starts || '-' || ends,
    ', ' ORDER BY weekday, starts) FROM booking_hours}),
   '1 09:00:00-12:00:00, 1 13:00:00-17:30:00, 3 10:00:00-16:00:00',
   'the hours stored');
is($t->sql_value(q{SELECT day || ' ' || kind || ' ' || note
    FROM booking_exceptions}), '2027-04-02 closed Good Friday',
   'the blackout stored');

# 2. a booking made in SQL: in its week, opened, cancelled with a reason
$t->sql(q{INSERT INTO bookings (ref, uid, manage_token, photographer_id,
        session_type_id, state, starts_at, ends_at, busy, client_name,
        client_email, client_time_zone, currency, price, deposit, answers)
    VALUES ('BK-000007', 'bk7@test', md5('7'), 'anna', 'portrait',
        'confirmed', '2027-03-31 09:00Z', '2027-03-31 10:00Z',
        tstzrange('2027-03-31 09:00Z', '2027-03-31 10:00Z'), 'Cleo Client',
        'cleo@example.com', 'America/New_York', 'GBP', 15000, 4500, '{}')});

$out = Darkroom::ConsolePages::run($t, $b, '983-cancel', <<'PY', $base);
login(args[0], 'owner@example.com', 'owner-password-1')
page(args[0], 'bookings?week=2027-04-05', '#week-label')
click('#week-prev')
wait.until(lambda d: '2027-03-29' in el('week-label').text)
li = one('li[data-ref="BK-000007"]')
out['day'] = read(lambda: li.find_element(By.XPATH, '..').find_element(
    By.XPATH, '..').get_attribute('data-day'))
out['line'] = li.text
li.find_element(By.TAG_NAME, 'a').click()
one('#cancel-form')
out['state'] = el('booking-state').text
submit('cancel-form')
out['noreason'] = said('cancel-form', True)
fill('cancel-form', 'reason', 'The studio is flooded')
submit('cancel-form')
wait.until(lambda d: el('booking-state').text == 'cancelled')
out['reason'] = el('booking-reason').text
out['history'] = one('#main table:last-of-type').text
page(args[0], 'audit', '#audit-rows table')
out['audit'] = one('#audit-rows').text
PY
is($out->{error}, undef, 'the week and the cancel');
is($out->{day}, '2027-03-31', 'under its day (Wednesday)');
like($out->{line} // '', qr/^10:00–11:00 Cleo Client Portrait session/,
     "in London's time: $out->{line}");
is($out->{state}, 'confirmed', 'the booking opened');
like($out->{noreason} // '', qr/reason/, "no reason: $out->{noreason}");
like($out->{reason} // '', qr/The studio is flooded \(admin\)/, 'the reason');
like($out->{history} // '', qr/confirmed.*cancelled.*admin:owner\@example\.com/s,
     'the history');
like($out->{audit} // '', qr{/admin/api/bookings/bookings/BK-000007/cancel},
     'the cancel in the audit page');
like($out->{audit} // '', qr{reason: The studio is flooded},
     '... with its reason');
is($t->sql_value(q{SELECT state || ' ' || sequence || ' ' || cancelled_by
    || ' ' || cancel_reason FROM bookings}),
   'cancelled 1 admin The studio is flooded', 'cancelled in the database');

# 2b. another booking rescheduled: a bad time refused on the page, a
# taken time and one outside the hours refused by the server (its
# message beside the form), then moved outside the hours with "force"
$t->sql(q{INSERT INTO bookings (ref, uid, manage_token, photographer_id,
        session_type_id, state, starts_at, ends_at, busy, client_name,
        client_email, client_time_zone, currency, price, deposit, answers)
    SELECT 'BK-00000' || n, 'bk' || n || '@test', md5(n::text), 'anna',
        'portrait', 'confirmed', s, s + interval '1 hour',
        tstzrange(s, s + interval '1 hour'), 'Dora Client',
        'dora@example.com', 'Europe/London', 'GBP', 15000, 4500, '{}'
      FROM (VALUES (8, timestamptz '2027-03-29 10:00 Europe/London'),
                   (9, timestamptz '2027-03-29 14:00 Europe/London')) v(n, s)});

$out = Darkroom::ConsolePages::run($t, $b, '983-reschedule', <<'PY', $base);
login(args[0], 'owner@example.com', 'owner-password-1')
page(args[0], 'booking/BK-000008', '#reschedule-open')
out['hidden'] = not el('reschedule-form').is_displayed()
click('#reschedule-open')
wait.until(lambda d: el('reschedule-form').is_displayed())
out['day'] = el('reschedule-day').get_attribute('value')
out['time'] = el('reschedule-time').get_attribute('value')
fill('reschedule-form', 'time', '25:00')
fill('reschedule-form', 'reason', 'Early light')
submit('reschedule-form')
out['badtime'] = said('reschedule-form', True)
fill('reschedule-form', 'time', '14:00')
submit('reschedule-form')
out['taken'] = said('reschedule-form', True)
fill('reschedule-form', 'time', '08:00')
submit('reschedule-form')
out['outside'] = said('reschedule-form', True)
click('#reschedule-force')
submit('reschedule-form')
wait.until(lambda d: '08:00' in el('booking').text)
out['when'] = el('booking').text
out['history'] = one('#main table:last-of-type').text
PY
is($out->{error}, undef, 'the reschedule form') or diag explain $out;
ok($out->{hidden}, 'the form opens from its button');
is("$out->{day} $out->{time}", '2027-03-29 10:00',
   "it starts from the booking's own day and time");
like($out->{badtime} // '', qr/HH:MM/, "a bad time: $out->{badtime}");
like($out->{taken} // '', qr/taken/, "a taken time: $out->{taken}");
like($out->{outside} // '', qr/not one of the slots/,
     "outside the hours: $out->{outside}");
like($out->{when} // '', qr/2027-03-29 08:00–09:00/, 'moved, forced');
like($out->{history} // '', qr/admin:owner\@example\.com Early light/,
     'the reason in the history');
is($t->sql_value(q{SELECT bookings_utc(starts_at) || ' ' || sequence
    || ' ' || (SELECT count(*) FROM jobs WHERE payload->>'template'
               = 'booking_rescheduled') FROM bookings WHERE ref = 'BK-000008'}),
   '2027-03-29T07:00:00Z 1 1', 'moved in the database, the client emailed');

# 3. a phone: 375 px wide, no view scrolls sideways
$out = Darkroom::ConsolePages::run($t, $b, '983-phone', <<'PY', $base);
login(args[0], 'owner@example.com', 'owner-password-1')
b.execute_cdp_cmd('Emulation.setDeviceMetricsOverride', {
    'width': 375, 'height': 800, 'deviceScaleFactor': 2, 'mobile': True})
out['wide'] = {}
for h, sel in (('bookings?week=2027-03-29', '#week-label'),
               ('bookings?view=types', 'button[data-type]'),
               ('bookings?view=hours', '#hours-form'),
               ('bookings?view=days', '#day-form'),
               ('booking/BK-000007', '#booking')):
    page(args[0], h, sel)
    out['wide'][h] = b.execute_script(
        'return [document.documentElement.scrollWidth, window.innerWidth]')
PY
is($out->{error}, undef, 'the views at 375 px');
for my $pg (sort keys %{$out->{wide} // {}}) {
    my ($scroll, $inner) = @{$out->{wide}{$pg}};
    is($inner, 375, "$pg: 375 px wide");
    ok($scroll <= $inner, "$pg: no sideways scroll ($scroll)");
}

$t->stop;
ok($t->check_sanitizer, 'no sanitizer report');
done_testing;
