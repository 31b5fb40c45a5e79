#!/usr/bin/perl
# A customer's data request through the shop's admin API (issue 19):
# GET personal-data?email= exports everything held about an address
# (orders with lines, address and downloads, the galleries it is the
# client of, its gallery visits, bookings, emails) and nothing of another
# customer; POST personal-data/erase anonymises it everywhere, keeps the
# money (totals, invoice numbers), writes an audit row whose detail holds
# the address's SHA-256 only, and a second erase changes nothing.  Bad
# input is a 400 that writes nothing; an unknown address is a 404; only
# an owner (or the admin token) may ask.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use JSON::PP;
use Digest::SHA qw(sha256_hex);
use Darkroom::Test;
use Darkroom::Console qw(console_start account login api);
use Darkroom::DataCare qw(admin_api paid_print_order);
use Darkroom::Bookings qw(bookings_demo insert_booking);

my $t = Darkroom::Test->new;
console_start($t);
bookings_demo($t);



my @ada = (paid_print_order($t, 'Ada@Example.com'),
           paid_print_order($t, 'ada@example.com'));
my $bob = paid_print_order($t, 'bob@example.com');

$t->sql(<<'SQL');
INSERT INTO galleries (slug, title, client_email)
VALUES ('ada-wedding', 'Wedding', 'ada@example.com'),
       ('studio-portrait', 'Portrait', 'bob@example.com');
INSERT INTO gallery_visitors (gallery_id, name, email)
SELECT id, 'Ada Guest', 'ADA@example.com' FROM galleries
 WHERE slug = 'studio-portrait';
INSERT INTO gallery_visitors (gallery_id, name, email)
SELECT id, 'Bob', 'bob@example.com' FROM galleries WHERE slug = 'ada-wedding';
INSERT INTO gallery_downloads (gallery_id, generation, path, client, status,
                               bytes, visitor_id, at)
SELECT v.gallery_id, 1, 'studio-portrait/a.jpg', '127.0.0.1', 200, 10, v.id,
       now()
  FROM gallery_visitors v WHERE v.name = 'Ada Guest';
INSERT INTO emails (message_key, template, kind, recipient, provider,
                    status, subject, body_text)
VALUES ('dr-1', 'gallery_delivered', 'customer', 'ada@example.com',
        'postmark', 'sent', 'Your gallery', 'Dear Ada, your photos'),
       ('dr-2', 'gallery_delivered', 'customer', 'bob@example.com',
        'postmark', 'sent', 'Your gallery', 'Dear Bob, your photos');
SQL
my $bk_ada = insert_booking($t, 'portrait', '2027-05-01 10:00 Europe/London',
                            '2027-05-01 11:00 Europe/London');
my $bk_bob = insert_booking($t, 'portrait', '2027-05-01 12:00 Europe/London',
                            '2027-05-01 13:00 Europe/London');
$t->sql("UPDATE bookings SET client_email = 'ada\@example.com', client_name"
    . " = 'Ada Lovelace', answers = '{\"who\":\"Ada\"}' WHERE id = :'p1'",
    $bk_ada);
$t->sql("UPDATE bookings SET client_email = 'bob\@example.com' WHERE id ="
    . " :'p1'", $bk_bob);

# --- admin auth: the token or an owner, never staff ---------------------------
is($t->http(GET => '/admin/api/personal-data?email=ada@example.com')->{status},
    401, 'no credential: 401');
account($t, 'owner@example.com', 'owner');
account($t, 'staff@example.com', 'staff');
my $owner = login($t, 'owner@example.com');
my $staff = login($t, 'staff@example.com');
is(api($t, $staff, GET => '/admin/api/personal-data?email=ada@example.com')
    ->{status}, 403, 'staff may not export');
is(api($t, $staff, POST => '/admin/api/personal-data/erase',
    { email => 'ada@example.com' })->{status}, 403, 'nor erase');
is(api($t, $staff, GET => '/admin/api/retention')->{status}, 403,
    'nor read the retention settings');

# --- export -------------------------------------------------------------------
my $r = api($t, $owner, GET => '/admin/api/personal-data?email=ADA@example.com');
is($r->{status}, 200, 'owner exports') or diag $r->{content};
my $x = $r->{json};
is($x->{email}, 'ada@example.com', 'the address, lower-cased');
is_deeply([sort map { $_->{ref} } @{$x->{orders}}],
    [sort map { $_->{ref} } @ada], 'her two orders, whatever the case');
is($x->{orders}[0]{items}[0]{quantity}, 1, 'with their lines');
is($x->{orders}[0]{shipping_name}, 'Ada Buyer', 'and the address');
ok($x->{orders}[0]{invoice_number}, 'and the invoice number');
is_deeply([map { $_->{slug} } @{$x->{galleries}}], ['ada-wedding'],
    'the gallery she is the client of');
is_deeply([map { $_->{gallery} } @{$x->{gallery_visits}}], ['studio-portrait'],
    'the gallery she visited');
is(scalar @{$x->{gallery_visits}[0]{downloads}}, 1, 'with her download');
is_deeply([map { $_->{client_name} } @{$x->{bookings}}], ['Ada Lovelace'],
    'her booking');
ok(scalar(grep { $_->{body_text} && $_->{body_text} eq 'Dear Ada, your photos' }
    @{$x->{emails}}), 'the emails sent to her');
unlike($r->{content}, qr/bob\@|Dear Bob|\Q$bob->{ref}\E|BK-T\d+-2/i,
    'nothing of another customer');
is(admin_api($t, GET => 'personal-data?email=ada@example.com')->{status}, 200,
    'the admin token exports too');

is(admin_api($t, GET => 'personal-data?email=nobody@example.com')->{json}{error}{code},
    'no_data', 'an unknown address: 404 no_data');
is(admin_api($t, GET => 'personal-data?email=nobody@example.com')->{status}, 404,
    '(404)');
for my $q ('', '?email=', '?email=not-an-email', '?email=a%20b@c') {
    $r = admin_api($t, GET => "personal-data$q");
    is($r->{status}, 400, "export refuses \"$q\"");
    is($r->{json}{error}{code}, 'invalid_email', '... invalid_email');
}

# --- erase: bad input writes nothing --------------------------------------------
# every row that holds personal data, hashed: what an erase would change
my $snapshot = "SELECT md5(string_agg(t, '|' ORDER BY t)) FROM (SELECT o::text t"
    . " FROM orders o UNION ALL SELECT b::text FROM bookings b UNION ALL SELECT"
    . " e::text FROM emails e UNION ALL SELECT g::text FROM galleries g"
    . " UNION ALL SELECT v::text FROM gallery_visitors v UNION ALL SELECT"
    . " s::text FROM stripe_events s) s";
my $held = $t->sql_value($snapshot);
for my $bad ('', '{', '[]', '{"email":5}', '{"email":"nope"}',
             encode_json({ email => ('a' x 250) . '@example.com' })) {
    $r = admin_api($t, POST => 'personal-data/erase', $bad);
    is($r->{status}, 400, "erase refuses '$bad'");
}
is($t->sql_value($snapshot), $held, 'no row changed by a refusal');
is($t->sql_value("SELECT count(*) FROM orders WHERE lower(email) ="
    . " 'ada\@example.com'"), 2, 'her orders still hers');
is(admin_api($t, PUT => 'personal-data', {})->{status}, 404, 'no other verb');

# --- erase ----------------------------------------------------------------------------
my $money = "SELECT string_agg(ref || ':' || total || ':' || paid_amount || ':'"
    . " || coalesce(invoice_number, '-') || ':' || currency, ',' ORDER BY id)"
    . " FROM orders";
my $money_before = $t->sql_value($money);
my $audit_before = $t->sql_value("SELECT count(*) FROM console_audit");

$r = api($t, $owner, POST => '/admin/api/personal-data/erase',
    { email => ' Ada@Example.com ' });
is($r->{status}, 200, 'owner erases') or diag $r->{content};
is_deeply([@{$r->{json}}{qw(orders bookings galleries gallery_visitors)}],
    [2, 1, 1, 1], 'her orders, booking, gallery and visit');
ok($r->{json}{emails} >= 1, 'and her emails');

is($t->sql_value($money), $money_before,
    'totals, paid amounts, invoice numbers and currencies kept');
is($t->sql_value("SELECT count(*) FROM orders WHERE lower(email) LIKE '%ada%'"
    . " OR shipping_name IS NOT NULL AND id = ANY(:'p1'::bigint[])",
    '{' . join(',', map { $_->{id} } @ada) . '}'), 0,
    'her orders carry no email nor name');
is($t->sql_value("SELECT shipping_name FROM orders WHERE id = :'p1'",
    $bob->{id}), 'Ada Buyer', "another customer's order untouched");
is($t->sql_value("SELECT count(*) FROM stripe_events WHERE order_id = ANY(:'p1'::bigint[])"
    . " AND payload <> '{}'", '{' . join(',', map { $_->{id} } @ada) . '}'), 0,
    "her orders' Stripe payloads gone");
is($t->sql_value("SELECT count(*) FROM stripe_events WHERE order_id = :'p1'"
    . " AND payload <> '{}'", $bob->{id}), 1, "Bob's kept");
is($t->sql_value("SELECT client_email IS NULL FROM galleries WHERE slug = 'ada-wedding'"),
    't', 'the gallery names no client');
is($t->sql_value("SELECT client_email FROM galleries WHERE slug = 'studio-portrait'"),
    'bob@example.com', "Bob's gallery untouched");
is($t->sql_value("SELECT client_name || ' ' || (client_email LIKE 'erased-b%\@invalid')"
    . " || ' ' || answers::text || ' ' || price FROM bookings WHERE id = :'p1'",
    $bk_ada), 'erased true {} 20000', 'her booking anonymised, its price kept');
is($t->sql_value("SELECT client_email FROM bookings WHERE id = :'p1'", $bk_bob),
    'bob@example.com', "Bob's booking untouched");
is($t->sql_value("SELECT count(*) FROM emails WHERE body_text LIKE '%Ada%'"
    . " OR lower(recipient) = 'ada\@example.com'"), 0, 'no email names her');
is($t->sql_value("SELECT count(*) FROM gallery_visitors WHERE lower(email) ="
    . " 'ada\@example.com'"), 0, 'no visit names her');
is($t->sql_value("SELECT count(*) FROM gallery_downloads"), 1,
    'the download log row stays (it names no one)');

my ($audit) = $t->sql("SELECT actor, path, status, detail::text FROM console_audit"
    . " WHERE path LIKE '%erase' AND status = 200 ORDER BY id DESC LIMIT 1");
is($audit->[0], 'owner@example.com', 'the audit row names the owner');
is($audit->[1], '/admin/api/personal-data/erase', 'and the path');
my $detail = decode_json($audit->[3]);
is($detail->{email_sha256}, sha256_hex('ada@example.com'),
    'its detail: the address hashed');
is($detail->{orders}, 2, 'and the counts');
unlike($t->sql_value("SELECT string_agg(coalesce(detail::text, '') || path,"
    . " ' ') FROM console_audit"), qr/ada\@/i, 'no audit row has it in clear');

is(admin_api($t, GET => 'personal-data?email=ada@example.com')->{status}, 404,
    'nothing left to export');

my $snap = $t->sql_value($snapshot);
$r = admin_api($t, POST => 'personal-data/erase', { email => 'ada@example.com' });
is($r->{status}, 200, 'a second erase: 200');
is($r->{json}{erased}, JSON::PP::false, 'erased nothing');
is($t->sql_value($snapshot), $snap, 'no row changed');
is(admin_api($t, POST => 'personal-data/erase', { email => 'never@example.com' })
    ->{json}{orders}, 0, 'an unknown address: nothing to erase');

done_testing;
