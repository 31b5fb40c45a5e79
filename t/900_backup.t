#!/usr/bin/perl
# Backups and restore (tools/darkroom-backup, tools/darkroom-restore): a
# shop with orders paid through the Stripe sandbox (one with a download,
# one partly refunded, one unpaid), a gallery with photos and proofs, and
# a booking is backed up, then restored into an empty new database of the
# suite's cluster and a fresh media root.  Every table of the restored
# database equals the source's, every file its checksum; a second nginx
# on the restored copy shows the same orders, serves the customer's signed
# download link, unlocks the gallery and serves its signed proofs and
# originals.  A backup with a changed byte, a missing file or a cut
# manifest is refused before anything is touched; a non-empty target
# database or media root is refused; wrong arguments are usage errors.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Compress::Zlib ();
use Digest::SHA qw(sha256_hex);
use File::Copy qw(copy);
use File::Find;
use JSON::PP;
use POSIX ();
use Darkroom::Test qw(wait_for);
use Darkroom::Stripe qw(demo_catalogue shop_conf sandbox);
use Darkroom::Bookings qw(bookings_demo insert_booking);

my $TOP = Darkroom::Test->top;
my $admin = { Authorization => 'Bearer admin-token-2' };

# a shop with downloads and galleries over <dir>/media/{galleries,prints}
sub backup_shop_conf {
    my ($t, $stripe) = @_;
    $t->write_file('keys', "m1:media-key-0123456789abcdef\n");
    $t->write_file('cookie_key', "cookie-key-0123456789abcdef\n");
    $t->write_file('dlkeys', "dk1:download-key-one-0123456789abcdef\n");
    shop_conf($t, stripe => $stripe, secrets => ['whsec_sandbox_secret'],
        http => <<'HTTP', server => <<'SERVER');
    darkroom_download_url http://127.0.0.1:%%PORT2%%/download;
    darkroom_download_keys %%DIR%%/dlkeys;
    darkroom_gallery_zone 1m interval=300ms;
    darkroom_media_keys %%DIR%%/keys;
    darkroom_gallery_media /media/;
    darkroom_gallery_root %%DIR%%/media/galleries;
    darkroom_gallery_cookie_key_file %%DIR%%/cookie_key;
    server {
        listen 127.0.0.1:%%PORT2%%;
        location /download/ {
            darkroom_download;
            root %%DIR%%/media/prints;
        }
    }
HTTP
        location /media/ {
            darkroom_media on;
            alias %%DIR%%/media/galleries/;
        }
        location /api/galleries/ { darkroom_gallery; }
        location /admin/api/galleries/ { darkroom_gallery_admin; }
SERVER
}

# (exit status, stdout and stderr) of a command
sub run {
    my (@cmd) = @_;
    my $out = "/tmp/darkroom-900-$$.out";
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        open STDOUT, '>', $out or POSIX::_exit(127);
        open STDERR, '>&', \*STDOUT or POSIX::_exit(127);
        exec @cmd or POSIX::_exit(127);
    }
    waitpid $pid, 0;
    my $rc = $? >> 8;
    open my $fh, '<', $out or die "$out: $!";
    my $text = do { local $/; <$fh> } // '';
    close $fh;
    unlink $out;
    return ($rc, $text);
}

# { path => sha256 } of the files under a directory, .uploads left out
sub checksums {
    my ($root) = @_;
    my %sum;
    find({ no_chdir => 1, wanted => sub {
        if ($File::Find::name eq "$root/.uploads") {
            $File::Find::prune = 1;
            return;
        }
        return unless -f $File::Find::name;
        open my $fh, '<:raw', $File::Find::name or die "$File::Find::name: $!";
        $sum{substr $File::Find::name, length($root) + 1}
            = Digest::SHA->new(256)->addfile($fh)->hexdigest;
    } }, $root);
    return \%sum;
}

# { table => md5 of its rows in text form, sorted } for every table
sub table_digests {
    my ($t) = @_;
    my %d = map { @$_ } $t->sql(<<'SQL');
SELECT c.relname, md5(query_to_xml(format(
         'SELECT coalesce(string_agg(t::text, chr(10) ORDER BY t::text), %L)'
         ' AS d FROM %I.%I t', '', n.nspname, c.relname), false, false, '')::text)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
SQL
    $d{"$_->[0] (sequence)"} = $_->[1] for $t->sql(
        "SELECT sequencename, coalesce(last_value, 0) FROM pg_sequences"
        . " WHERE schemaname = 'public'");
    return \%d;
}

# --- the shop's state ------------------------------------------------------------
my $t = Darkroom::Test->new;
my $dir = $t->dir;
backup_shop_conf($t, 'http://127.0.0.1:' . $t->port(1));
my $sb = sandbox($t, webhook => 'http://127.0.0.1:' . $t->port(0)
    . '/webhooks/stripe');
demo_catalogue($t);
$t->write_file('media/prints/harbour-dawn.tif', 'HARBOUR' . ('h' x 5000));
$t->write_file('media/prints/moor-rain.tif', 'MOOR' . ('m' x 3000));
my %photo;
for my $n (1 .. 4) {
    $photo{$n} = join '', map { chr(($_ * 7 + $n) % 256) } 1 .. 20000 + $n;
    $t->write_file("media/galleries/wed/IMG $n.jpg", $photo{$n});
    $t->write_file("media/galleries/_proofs/wed/IMG $n.jpg", "proof $n\n");
}
# a half-received upload (client_body_temp_path): never backed up
$t->write_file('media/galleries/.uploads/0000000001', 'half an upload');
bookings_demo($t);
my $booking = insert_booking($t, 'portrait', '2030-06-01 10:00+01',
    '2030-06-01 11:00+01');
$t->start;

my %token;
sub buy_and_pay {
    my ($pay, @items) = @_;
    my $r = $t->http(POST => '/api/checkout', {
        headers => { 'Content-Type' => 'application/json' },
        content => encode_json({ email => 'ada@example.com',
                                 items => \@items }) });
    is($r->{status}, 201, 'checkout') or diag $r->{content};
    my $ref = $r->{json}{order};
    return $ref unless $pay;
    my ($sid) = $r->{json}{checkout_url} =~ m{/pay/(cs_[A-Za-z0-9_]+)$};
    my $p = $sb->control(POST => "/_sandbox/pay/$sid", { action => 'pay' });
    ($token{$ref}) = ($p->{redirect} // '') =~ /token=([0-9a-f]{32})/;
    ok(wait_for(sub { order($t, $ref)->{status} eq 'paid' }, 10),
        "$ref paid through the sandbox");
    return $ref;
}

sub order {
    my ($t, $ref) = @_;
    return $t->http(GET => "/admin/api/orders/$ref", { headers => $admin })
        ->{json} // {};
}

my @refs = (
    buy_and_pay(1, { photo => 'harbour-dawn', product => 'giclee-a3',
                     quantity => 2 },
                   { photo => 'moor-rain', product => 'digital',
                     quantity => 1 }),
    buy_and_pay(1, { photo => 'harbour-dawn', product => 'canvas-50',
                     quantity => 1 }),
    buy_and_pay(0, { photo => 'moor-rain', product => 'giclee-a3',
                     quantity => 1 }));
my $r = $t->http(POST => "/admin/api/orders/$refs[1]/refund",
    { headers => $admin, content => encode_json({ amount => 2000 }) });
is($r->{status}, 202, 'a partial refund') or diag $r->{content};
ok(wait_for(sub { order($t, $refs[1])->{amount_refunded} == 2000 }, 10),
    'recorded by its webhook');

sub gallery_admin {
    my ($method, $path, $body) = @_;
    return $t->http($method, "/admin/api/galleries/$path", { headers => $admin,
        defined $body ? (content => encode_json($body)) : () });
}
$r = gallery_admin(POST => '', { slug => 'wed', title => 'Ada & Tom',
    client_email => 'ada@example.com', password => 'open sesame',
    pin => '4321', expires_at => '2099-01-01T00:00:00Z' });
is($r->{status}, 200, 'gallery created') or diag $r->{content};
$r = gallery_admin(POST => 'wed/photos', { photos => [ map { {
    original => "wed/IMG $_.jpg", bytes => length $photo{$_},
    crc32 => Compress::Zlib::crc32($photo{$_}), sha256 => sha256_hex($photo{$_}),
    proof => "_proofs/wed/IMG $_.jpg", name => "IMG_$_.jpg" } } 1 .. 4 ] });
is($r->{status}, 200, 'four photos') or diag $r->{content};
# a photo whose file went away: the backup names it
unlink "$dir/media/galleries/wed/IMG 4.jpg";

my %before = map { $_ => order($t, $_) } @refs;
is(scalar(grep { $_->{status} eq 'paid' } values %before), 2, 'two paid');
ok(scalar @{ $t->http(GET => "/api/orders/$token{$refs[0]}")->{json}{downloads}
    // [] }, 'the first order has its download');

# --- back up ------------------------------------------------------------------
# quiet: nothing changes the source between its digest and the restored one
$t->stop;
$sb->stop;
my $source = table_digests($t);
my %source_files = map { ($_ => checksums("$dir/media/$_")) } qw(galleries prints);

my ($rc, $out) = run("$TOP/tools/darkroom-backup", '--db', $t->db,
    '--out', "$dir/backup", '--gallery-root', "$dir/media/galleries",
    '--print-root', "$dir/media/prints");
is($rc, 0, 'darkroom-backup') or diag $out;
like($out, qr{referenced by the database but not found: gallery/wed/IMG 4\.jpg},
    'names the file a row references that is gone');
like($out, qr{, 9 files \(\d+ bytes\) from 2 media roots, 1 referenced files missing},
    'the summary');
ok(-s "$dir/backup/db.dump" && -s "$dir/backup/MANIFEST", 'dump and manifest');
ok(!-e "$dir/backup.partial", 'no partial directory left');
is((stat "$dir/backup")[2] & 0777, 0700, 'the backup is private (0700)');
my $manifest = $t->read_file('backup/MANIFEST');
like($manifest, qr{^file [0-9a-f]{64} \d+ 0600 db\.dump$}m, 'the dump listed');
like($manifest, qr{^file \Q${\ sha256_hex($photo{2})}\E 20002 0644 files/gallery/wed/IMG%202\.jpg$}m,
    'a photo listed with its SHA-256, size and mode');
like($manifest, qr{^missing gallery wed/IMG%204\.jpg$}m, 'the missing file');
unlike($manifest, qr{uploads}, 'half-received uploads left out');
like($manifest, qr{^end \d+ [0-9a-f]{64}\n\z}m, 'closed by its end line');

($rc, $out) = run("$TOP/tools/darkroom-backup", '--db', $t->db,
    '--out', "$dir/backup");
is($rc, 2, 'an existing --out: usage error');
like($out, qr{--out \S+ exists already}, 'says so');

# --- damaged backups are refused before anything is touched ------------------
my $t2 = Darkroom::Test->new;
my $dir2 = $t2->dir;
my $db2 = $t2->empty_db;
my @targets = ('--gallery-root', "$dir2/media/galleries",
               '--print-root', "$dir2/media/prints");

sub copy_backup {
    my ($name) = @_;
    system('cp', '-a', "$dir/backup", "$dir/$name") == 0 or die "cp";
    return "$dir/$name";
}
sub restore { run("$TOP/tools/darkroom-restore", '--from', @_) }

my $bad = copy_backup('flipped');
{
    open my $fh, '+<:raw', "$bad/files/gallery/wed/IMG 2.jpg" or die $!;
    seek $fh, 100, 0;
    print $fh 'X';
    close $fh;
}
($rc, $out) = restore($bad, '--verify-only');
is($rc, 1, 'a changed byte: refused');
like($out, qr{wrong SHA-256: files/gallery/wed/IMG 2\.jpg}, 'names the file');
($rc, $out) = restore($bad, '--db', $db2, @targets);
is($rc, 1, 'a restore of it refused');
like($out, qr{nothing was restored}, 'nothing restored');
is($t2->sql_value("SELECT count(*) FROM pg_class c JOIN pg_namespace n"
    . " ON n.oid = c.relnamespace WHERE n.nspname = 'public'"), 0,
    'the target database still empty');
ok(!-e "$dir2/media", 'the media root not made');

$bad = copy_backup('dumpflip');
{
    open my $fh, '+<:raw', "$bad/db.dump" or die $!;
    seek $fh, 2000, 0;
    read $fh, my $c, 1;
    seek $fh, 2000, 0;
    print $fh chr(ord($c) ^ 1);
    close $fh;
}
($rc, $out) = restore($bad, '--verify-only');
is($rc, 1, 'a changed dump: refused');
like($out, qr{wrong SHA-256: db\.dump}, 'names the dump');

$bad = copy_backup('cut');
unlink "$bad/files/prints/moor-rain.tif";
($rc, $out) = restore($bad, '--verify-only');
is($rc, 1, 'a missing file: refused');
like($out, qr{missing: files/prints/moor-rain\.tif}, 'names it');

$bad = copy_backup('extra');
$t->write_file('extra/files/gallery/wed/intruder.jpg', 'x');
($rc, $out) = restore($bad, '--verify-only');
is($rc, 1, 'a file the manifest does not list: refused');
like($out, qr{not in the manifest: files/gallery/wed/intruder\.jpg}, 'named');

$bad = copy_backup('short');
my @lines = split /^/, $manifest;
$t->write_file('short/MANIFEST', join '', @lines[0 .. $#lines - 1]);
($rc, $out) = restore($bad, '--verify-only');
is($rc, 1, 'a manifest without its end: refused');
like($out, qr{incomplete}, 'as incomplete');
$t->write_file('short/MANIFEST', join '', @lines[0 .. $#lines - 3],
    $lines[-1]);
($rc, $out) = restore($bad, '--verify-only');
is($rc, 1, 'a manifest missing lines: refused');
like($out, qr{corrupted}, 'as corrupted');
unlink "$bad/MANIFEST";
($rc, $out) = restore($bad, '--verify-only');
is($rc, 1, 'no manifest: refused');
like($out, qr{no manifest.*incomplete}, 'as incomplete');

($rc, $out) = restore("$dir/backup", '--verify-only');
is($rc, 0, 'the backup itself is sound') or diag $out;

# --- targets and arguments ------------------------------------------------------
($rc, $out) = restore("$dir/backup", '--db', $t->db, @targets);
is($rc, 1, 'a non-empty database: refused');
like($out, qr{the database is not empty .*--force}, 'says so, and --force');
($rc, $out) = restore("$dir/backup", '--db', $db2, '--gallery-root',
    "$dir2/media/galleries");
is($rc, 1, 'a root without its target: refused');
like($out, qr{media root "prints" .*give --print-root DIR}, 'which one');
($rc, $out) = restore("$dir/backup", '--db', $db2,
    '--gallery-root', "$dir/media/galleries", '--print-root',
    "$dir2/media/prints");
is($rc, 1, 'a non-empty media root: refused');
like($out, qr{media/galleries is not empty}, 'named');
for my $bad_args (
    [ 'darkroom-restore', '--from', "$dir/backup", '--bogus' ],
    [ 'darkroom-restore', '--from', "$dir/nowhere", '--verify-only' ],
    [ 'darkroom-restore', '--verify-only' ],
    [ 'darkroom-restore', '--from', "$dir/backup", '--db', $db2,
      '--media', 'Bad Name=/tmp' ],
    [ 'darkroom-backup', '--db', $t->db ],
    [ 'darkroom-backup', '--out', "$dir/b2", '--gallery-root', "$dir/nowhere",
      '--db', $t->db ],
    [ 'darkroom-backup', '--out', "$dir/b2", 'extra', '--db', $t->db ],
    [ 'darkroom-backup', '--out', "$dir/media/prints/b2", '--print-root',
      "$dir/media/prints", '--db', $t->db ],
) {
    my ($tool, @args) = @$bad_args;
    ($rc, $out) = run("$TOP/tools/$tool", @args);
    is($rc, 2, "$tool " . join(' ', @args) . ': usage error');
    like($out, qr{^$tool: .+\n$tool: see $tool --help$}m, 'a clear message');
}
ok(!-e "$dir/b2" && !-e "$dir/media/prints/b2",
    'no backup made by wrong arguments');
for my $tool (qw(darkroom-backup darkroom-restore)) {
    ($rc, $out) = run("$TOP/tools/$tool", '--help');
    is($rc, 0, "$tool --help");
    like($out, qr{^  tools/$tool }m, 'shows the usage');
}

# --- restore into the empty database and a fresh media root ---------------------
($rc, $out) = restore("$dir/backup", '--db', $db2, @targets);
is($rc, 0, 'restored') or diag $out;
like($out, qr{missing from the backup: gallery/wed/IMG 4\.jpg},
    'the missing file reported again');
is_deeply(table_digests($t2), $source, 'every table and sequence the same');
is_deeply({ map { ($_ => checksums("$dir2/media/$_")) } qw(galleries prints) },
    \%source_files, 'every file the same (checksums)');
($rc, $out) = restore("$dir/backup", '--db', $db2, @targets);
is($rc, 1, 'restoring again over it: refused');
like($out, qr{not empty}, 'not empty');

# the restored copy at work: a second nginx on its database and media
backup_shop_conf($t2, 'http://127.0.0.1:9');
$t2->start;
for my $ref (@refs) {
    my $o = order($t2, $ref);
    is_deeply([ @$o{qw(status total paid_amount amount_refunded currency invoice_number)} ],
        [ @{$before{$ref}}{qw(status total paid_amount amount_refunded
                              currency invoice_number)} ],
        "$ref: the same order");
    is_deeply([ map { "$_->{photo}/$_->{product}x$_->{quantity}" }
                @{$o->{items}} ],
        [ map { "$_->{photo}/$_->{product}x$_->{quantity}" }
          @{$before{$ref}{items}} ], '   and items');
}
$r = $t2->http(GET => "/api/orders/$token{$refs[0]}");
is($r->{json}{status}, 'paid', "the customer's order link works");
my ($dl) = @{$r->{json}{downloads} // []};
my $port2 = $t2->port(2);
like($dl->{url} // '', qr{^http://127\.0\.0\.1:$port2/download/}, 'a download');
$r = HTTP::Tiny->new(keep_alive => 0)->get($dl->{url} // 'http://127.0.0.1:9/');
is($r->{status}, 200, 'its signed link served from the restored print root');
is($r->{content}, 'MOOR' . ('m' x 3000), 'the right bytes');

my ($cookie) = ($t2->http(POST => '/api/galleries/wed/unlock', {
    content => encode_json({ password => 'open sesame' }) })
    ->{headers}{'set-cookie'} // '') =~ /^([^;]+)/;
ok($cookie, 'the gallery unlocks with its password');
$r = $t2->http(GET => '/api/galleries/wed', { headers => { Cookie => $cookie } });
is($r->{status}, 200, 'the gallery listing') or diag $r->{content};
is_deeply([ map { $_->{name} } @{$r->{json}{photos}} ],
    [ map { "IMG_$_.jpg" } 1 .. 4 ], 'its photos');
my $proof = $r->{json}{photos}[1]{proof};
my $pr;
ok(wait_for(sub { ($pr = $t2->http(GET => $proof))->{status} == 200 }, 10),
    'a signed proof URL served from the restored gallery root');
is($pr->{content}, "proof 2\n", 'the proof');
$r = $t2->http(POST => '/api/galleries/wed/download', {
    headers => { Cookie => $cookie },
    content => encode_json({ photos => [ $r->{json}{photos}[2]{id} ],
                             pin => '4321' }) });
is($r->{status}, 200, 'a download with the PIN') or diag $r->{content};
$r = $t2->http(GET => $r->{json}{files}[0]{url} // '/');
is($r->{status}, 200, 'the original served');
is(sha256_hex($r->{content}), sha256_hex($photo{3}), 'its checksum');

is($t2->sql_value("SELECT state || ' ' || to_char(starts_at AT TIME ZONE"
    . " 'UTC', 'YYYY-MM-DD HH24:MI') FROM bookings WHERE id = :'p1'",
    $booking), 'confirmed 2030-06-01 09:00', 'the booking');
# (psql's complaint kept off the test's output)
open my $stderr, '>&', \*STDERR or die;
open STDERR, '>', '/dev/null' or die;
my $overlap = eval { insert_booking($t2, 'portrait', '2030-06-01 10:30+01',
    '2030-06-01 11:30+01'); 1 };
open STDERR, '>&', $stderr or die;
ok(!$overlap,
    'its slot still taken (the exclusion constraint restored)');
ok(insert_booking($t2, 'portrait', '2030-06-01 11:00+01', '2030-06-01 12:00+01'),
    'the next slot free');

# --force: over the database and the files the restored shop has changed
$t2->stop;
unlink "$dir2/media/galleries/_proofs/wed/IMG 1.jpg";
$t2->write_file('media/galleries/wed/IMG 2.jpg', 'changed');
($rc, $out) = restore("$dir/backup", '--db', $db2, @targets, '--force');
is($rc, 0, 'restored again with --force') or diag $out;
is_deeply(table_digests($t2), $source, 'every table as in the backup again');
is_deeply({ map { ($_ => checksums("$dir2/media/$_")) } qw(galleries prints) },
    \%source_files, 'every file too');

done_testing;
