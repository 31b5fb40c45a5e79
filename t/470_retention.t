#!/usr/bin/perl
# Retention (issue 19): with darkroom_retention on, the recurring
# "retention" job purges exactly what is past its period and nothing
# newer, in batches of retention_settings.batch: done jobs, Stripe
# payloads, email bodies, the galleries' download log; orders and
# bookings older than money_years keep their money and lose their
# personal data; "gallery_files_purge" deletes the files of the galleries
# expired longer than gallery_files_days, and only theirs.  The settings
# are read and written through the admin API (owner's), bad values a 400
# that changes nothing.  Timestamps are moved in SQL, the jobs started by
# moving their run_at.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use JSON::PP;
use File::Path qw(make_path);
use Darkroom::Test qw(wait_for);
use Darkroom::Stripe qw(shop_conf fake_api demo_catalogue);
use Darkroom::DataCare qw(admin_api paid_print_order);
use Darkroom::Bookings qw(bookings_demo insert_booking);

my $t = Darkroom::Test->new;
my $stripe = fake_api($t);
shop_conf($t, stripe => $stripe->url, http => "darkroom_retention 1m;\n"
    . "darkroom_gallery_root %%DIR%%/files;\n");
$t->start;
demo_catalogue($t);
bookings_demo($t);


# both jobs ran since their run_at was moved: back in about a minute
sub ran {
    return wait_for(sub {
        $t->sql_value("SELECT count(*) FROM jobs WHERE kind IN ('retention',"
            . " 'gallery_files_purge') AND locked_until IS NULL"
            . " AND last_error IS NULL"
            . " AND run_at > now() + interval '30 seconds'") == 2 }, 60);
}

ok(ran(), 'both recurring jobs made and run once at start');

# --- the settings -------------------------------------------------------------
my $r = admin_api($t, GET => 'retention');
is($r->{status}, 200, 'GET retention');
is_deeply({ map { $_ => $r->{json}{$_} } qw(jobs_days webhook_days
    email_body_days download_log_days gallery_files_days money_years batch) },
    { jobs_days => 30, webhook_days => 90, email_body_days => 90,
      download_log_days => 365, gallery_files_days => 90, money_years => 10,
      batch => 500 }, 'the defaults');
my $settings = $t->sql_value("SELECT row(s.*)::text FROM retention_settings s");
for my $bad ('{', '[]', '{"jobs_days":6}', '{"jobs_days":"30"}',
             '{"money_years":0}', '{"batch":5}', '{"jobs_days":1.5}',
             '{"keep":"forever"}', '{"batch":100,"webhook_days":-1}') {
    $r = admin_api($t, POST => 'retention', $bad);
    is($r->{status}, 400, "POST retention refuses $bad");
}
is($t->sql_value("SELECT row(s.*)::text FROM retention_settings s"), $settings,
    'nothing changed');
$r = admin_api($t, POST => 'retention', { batch => 10 });
is($r->{status}, 200, 'batch set to 10') or diag $r->{content};
is($r->{json}{batch}, 10, 'answered');
is($r->{json}{jobs_days}, 30, 'the others kept');

# --- what is due and what is not --------------------------------------------------
# done jobs: 25 a day past the period (three batches), 2 a day short of it
$t->sql(<<'SQL');
INSERT INTO jobs (kind, done_at, created_at)
SELECT 'test_old', now() - interval '31 days', now() - interval '40 days'
  FROM generate_series(1, 25);
INSERT INTO jobs (kind, done_at, created_at)
SELECT 'test_new', now() - interval '29 days', now() - interval '40 days'
  FROM generate_series(1, 2);
INSERT INTO jobs (kind, created_at, run_at, dead)
VALUES ('test_open', now() - interval '400 days', now() + interval '1 day',
        false);
SQL

my ($old, $new) = map { paid_print_order($t, 'ada@example.com')->{id} } 1, 2;
# the old order a day past ten years, the new one a day short; their Stripe
# events a day either side of 90 days
$t->sql("UPDATE orders SET created_at = now() - interval '10 years 1 day'"
    . " WHERE id = :'p1'", $old);
$t->sql("UPDATE orders SET created_at = now() - interval '10 years'"
    . " + interval '1 day' WHERE id = :'p1'", $new);
$t->sql("UPDATE stripe_events SET received_at = now() - interval '91 days'"
    . " WHERE order_id = :'p1'", $old);
$t->sql("UPDATE stripe_events SET received_at = now() - interval '89 days'"
    . " WHERE order_id = :'p1'", $new);
my $money = "SELECT string_agg(ref || ':' || total || ':' || paid_amount || ':'"
    . " || invoice_number || ':' || currency || ':' || status, ',' ORDER BY id)"
    . " FROM orders";
my $money_before = $t->sql_value($money);

my $bk_old = insert_booking($t, 'portrait', '2015-05-01 10:00 Europe/London',
                            '2015-05-01 11:00 Europe/London');
my $bk_new = insert_booking($t, 'portrait', '2027-05-01 10:00 Europe/London',
                            '2027-05-01 11:00 Europe/London');
$t->sql("UPDATE bookings SET starts_at = now() - interval '10 years 2 days',"
    . " ends_at = now() - interval '10 years 1 day', busy = tstzrange("
    . " now() - interval '10 years 2 days', now() - interval '10 years 1 day')"
    . " WHERE id = :'p1'", $bk_old);

$t->sql(<<'SQL');
INSERT INTO emails (message_key, template, kind, recipient, provider, status,
                    subject, body_text, body_html, created_at)
VALUES ('r-old', 'receipt', 'customer', 'x@example.com', 'postmark', 'sent',
        'Old', 'old body', '<p>old</p>', now() - interval '91 days'),
       ('r-new', 'receipt', 'customer', 'x@example.com', 'postmark', 'sent',
        'New', 'new body', '<p>new</p>', now() - interval '89 days'),
       ('r-queued', 'receipt', 'customer', 'x@example.com', 'postmark',
        'queued', 'Queued', 'queued body', NULL, now() - interval '91 days');
INSERT INTO galleries (slug, expires_at) VALUES
  ('g-old', now() - interval '91 days'),
  ('g-new', now() - interval '89 days'),
  ('g-live', now() + interval '1 day'),
  ('g-open', NULL);
INSERT INTO gallery_photos (gallery_id, name, original_path, web_path,
                            proof_path, bytes, crc32)
SELECT g.id, 'a.jpg', g.slug || '/a.jpg', g.slug || '/a-web.jpg',
       g.slug || '/a-proof.jpg', 4, 0
  FROM galleries g;
-- a file g-old and g-live both show
INSERT INTO gallery_photos (gallery_id, name, original_path, bytes, crc32)
SELECT g.id, 's.jpg', 'shared/s.jpg', 4, 0
  FROM galleries g WHERE g.slug IN ('g-old', 'g-live');
INSERT INTO gallery_uploads (gallery_id, name, bytes, state)
SELECT g.id, 'u.jpg', 4, 'done' FROM galleries g WHERE g.slug = 'g-old';
INSERT INTO gallery_downloads (gallery_id, generation, path, client, status,
                               bytes, at)
SELECT g.id, 1, 'g-old/a.jpg', '127.0.0.1', 200, 4, now() - interval '366 days'
  FROM galleries g WHERE g.slug = 'g-old';
INSERT INTO gallery_downloads (gallery_id, generation, path, client, status,
                               bytes, at)
SELECT g.id, 1, 'g-old/a.jpg', '127.0.0.1', 200, 4, now() - interval '364 days'
  FROM galleries g WHERE g.slug = 'g-old';
SQL

my $files = $t->dir . '/files';
for my $g (qw(g-old g-new g-live g-open)) {
    make_path("$files/$g");
    chmod 0777, "$files/$g";    # the workers (nobody, maybe) delete them
    $t->write_file("files/$g/$_", "data") for qw(a.jpg a-web.jpg a-proof.jpg);
}
$t->write_file('files/g-old/u.jpg', 'data');
$t->write_file('files/unrelated.jpg', 'data');
make_path("$files/shared");
chmod 0777, "$files/shared";
$t->write_file('files/shared/s.jpg', 'data');
chmod 0777, $files;

# --- run both jobs ---------------------------------------------------------------
$t->sql("UPDATE jobs SET run_at = now() WHERE kind IN ('retention',"
    . " 'gallery_files_purge')");
ok(ran(), 'both jobs ran again') or diag $t->error_log;

is($t->sql_value("SELECT string_agg(kind || ':' || c, ',' ORDER BY kind) FROM"
    . " (SELECT kind, count(*) c FROM jobs WHERE kind LIKE 'test_%'"
    . " GROUP BY kind) s"), 'test_new:2,test_open:1',
    'done jobs past 30 days gone (25, in batches of 10), newer and open kept');
is($t->sql_value("SELECT string_agg(order_id || ':' || (payload = '{}'), ','"
    . " ORDER BY order_id) FROM stripe_events WHERE order_id IN (:'p1', :'p2')",
    $old, $new), "$old:true,$new:false",
    'the Stripe payload past 90 days emptied, the newer kept');
is($t->sql_value("SELECT string_agg(message_key || ':' || body_text || ':'"
    . " || coalesce(body_html, '-') || ':' || (body_purged_at IS NOT NULL), ','"
    . " ORDER BY message_key) FROM emails WHERE message_key LIKE 'r-%'"),
    'r-new:new body:<p>new</p>:false,r-old::-:true,'
    . 'r-queued:queued body:-:false',
    'the email body past 90 days purged; newer and queued kept');
is($t->sql_value("SELECT string_agg(to_char(now() - at, 'DDD'), ',') FROM"
    . " gallery_downloads"), '364', 'the download log past 365 days gone');

is($t->sql_value($money), $money_before,
    'every order keeps its total, payment, invoice number and status');
my %o = map { $_->[0] => $_ } $t->sql("SELECT id, email, coalesce(shipping_name,"
    . " '-'), coalesce(shipping_address::text, '-'), anonymised_at IS NOT NULL"
    . " FROM orders");
is_deeply([@{$o{$old}}[1 .. 4]], ["erased-o$old\@invalid", '-', '-', 't'],
    'the order past ten years anonymised');
is_deeply([@{$o{$new}}[1, 2, 4]], ['ada@example.com', 'Ada Buyer', 'f'],
    'the newer one untouched');
is($t->sql_value("SELECT string_agg(id || ':' || client_name || ':' || price,"
    . " ',' ORDER BY id) FROM bookings"), "$bk_old:erased:20000,$bk_new:Test:20000",
    'the booking past ten years anonymised, its money kept');

ok(!-e "$files/g-old/$_", "g-old's $_ deleted") for qw(a.jpg a-web.jpg
                                                       a-proof.jpg u.jpg);
ok(!-e "$files/g-old", "g-old's emptied folder removed");
for my $g (qw(g-new g-live g-open)) {
    ok(-e "$files/$g/$_", "$g/$_ kept") for qw(a.jpg a-web.jpg a-proof.jpg);
}
ok(-e "$files/unrelated.jpg", 'a file of no gallery kept');
ok(-e "$files/shared/s.jpg", 'a file the live gallery shows too kept');
is($t->sql_value("SELECT string_agg(slug, ',') FROM galleries WHERE"
    . " files_purged_at IS NOT NULL"), 'g-old', 'only g-old marked purged');
is($t->sql_value("SELECT count(*) FROM gallery_photos"), 6,
    'the photos\' rows stay (the gallery is history)');

# --- a shorter period reaches more --------------------------------------------
is(admin_api($t, POST => 'retention', { gallery_files_days => 30, money_years => 11 })
    ->{status}, 200, 'gallery files after 30 days, money after 11 years');
$t->sql("UPDATE jobs SET run_at = now() WHERE kind IN ('retention',"
    . " 'gallery_files_purge')");
ok(ran(), 'both jobs ran again');
ok(!-e "$files/g-new/a.jpg", 'g-new expired 89 days ago: its files go now');
ok(-e "$files/g-live/a.jpg", 'the live gallery keeps its files');
is($t->sql_value("SELECT email FROM orders WHERE id = :'p1'", $new),
    'ada@example.com', 'an order of 10 years is now inside the period');
is($t->sql_value($money), $money_before, 'and the money is unchanged');

done_testing;
