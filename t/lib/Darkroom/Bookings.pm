package Darkroom::Bookings;
# Bookings (issue 16) in tests: the shop's configuration with the public
# booking API mounted at /api/bookings/, a photographer in Europe/London
# with two session types, and a way to write a booking straight into the
# table (to take a slot without the API).

use strict;
use warnings;
use Exporter 'import';
use Darkroom::Stripe qw(shop_conf);

our @EXPORT_OK = qw(bookings_conf bookings_demo insert_booking);

sub bookings_conf {
    my ($t, %o) = @_;
    my $server = "location /api/bookings/ { darkroom_bookings; }\n"
        . ($o{server} // '');
    shop_conf($t, %o, server => $server);
}

# ann: Europe/London, no notice, two years ahead; Saturday and Sunday
# 09:00-17:00, Monday 09:00-12:00.  portrait: 60 minutes every hour,
# 200.00 GBP, a fixed 50.00 deposit, one required question; buffered: 60
# minutes every 30, 15 minutes either side, a 25% deposit of 150.00.
sub bookings_demo {
    my ($t) = @_;
    $t->sql(<<'SQL');
INSERT INTO photographers (id, name, email, time_zone, min_notice, horizon)
VALUES ('ann', 'Ann Adams', 'ann@example.com', 'Europe/London', '0',
        '2 years');
INSERT INTO booking_hours (photographer_id, weekday, starts, ends)
VALUES ('ann', 6, '09:00', '17:00'), ('ann', 7, '09:00', '17:00'),
       ('ann', 1, '09:00', '12:00');
INSERT INTO session_types (id, photographer_id, name, duration, slot_step,
    currency, price, deposit_kind, deposit_amount, questions, position)
VALUES ('portrait', 'ann', 'Portrait', '60 minutes', '60 minutes', 'GBP',
        20000, 'fixed', 5000,
        '[{"id":"who","label":"Who is it for?","required":true,"kind":"text"},
          {"id":"notes","label":"Notes","required":false,"kind":"long"}]',
        1);
INSERT INTO session_types (id, photographer_id, name, duration, slot_step,
    buffer_before, buffer_after, currency, price, deposit_kind,
    deposit_percent, position)
VALUES ('buffered', 'ann', 'Family', '60 minutes', '30 minutes',
        '15 minutes', '15 minutes', 'GBP', 15000, 'percent', 25, 2);
INSERT INTO session_types (id, photographer_id, name, duration, currency,
    price, deposit_kind, deposit_percent, active)
VALUES ('retired', 'ann', 'Retired', '60 minutes', 'GBP', 100, 'percent',
        10, false);
SQL
}

# insert_booking($t, $type, $start, $end [, state => , held_until => ]):
# the booking's id
my $n = 0;
sub insert_booking {
    my ($t, $type, $start, $end, %o) = @_;
    $n++;
    my $state = $o{state} // 'confirmed';
    return $t->sql_value(<<'SQL', $type, $start, $end, $state,
INSERT INTO bookings (ref, uid, manage_token, photographer_id,
    session_type_id, state, starts_at, ends_at, busy, held_until,
    client_name, client_email, client_time_zone, currency, price, deposit)
SELECT 'BK-T' || :'p6', 'test-' || :'p6' || '@darkroom',
       md5('test' || :'p6'), st.photographer_id, st.id, :'p4',
       :'p2'::timestamptz, :'p3'::timestamptz,
       tstzrange(:'p2'::timestamptz, :'p3'::timestamptz),
       coalesce(nullif(:'p5', '')::timestamptz,
                CASE WHEN :'p4' = 'held'
                     THEN now() + interval '1 hour' END), 'Test', 'test@example.com',
       'Europe/London', st.currency, st.price, 100
  FROM session_types st WHERE st.id = :'p1'
RETURNING id
SQL
        $o{held_until} // '',
        "$$-$n");
}

1;
