#!/usr/bin/perl
# tools/darkroom-importer's failures.  A file with a JPEG's first bytes
# that is no image: the upload failed with ImageMagick's complaint, the job
# done (never retried).  A convert that fails, a database that refuses the
# photo: the job is failed with a delay, the upload shows the error, and
# the next run imports it.  A job that dies leaves its upload failed with
# the last error; retried from the admin API, it imports.  Two importers
# at once never import a file twice.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Darkroom::Test qw(wait_for);
use Darkroom::Console qw(console_start);
use JSON::PP;

my $t = Darkroom::Test->new;
my $d = $t->dir;
my $top = $t->top;
$t->write_file('keys', "m1:media-key-0123456789abcdef\n");
$t->write_file('cookie_key', "cookie-key-0123456789abcdef\n");
mkdir "$d/files";
chmod 0777, "$d/files";   # the workers (nobody, maybe) store the uploads

# a temp path on another file system (tmpfs): the upload is copied
my $shm = -d '/dev/shm' && (stat '/dev/shm')[0] != (stat $d)[0]
          ? "/dev/shm/darkroom-t351-$$" : "$d/other-temp";

console_start($t, http => <<"CONF", server => <<"LOC");
    darkroom_gallery_zone 1m interval=200ms;
    darkroom_media_keys $d/keys;
    darkroom_gallery_media /media/;
    darkroom_gallery_root $d/files;
    darkroom_gallery_cookie_key_file $d/cookie_key;
CONF
location /admin/api/galleries/ {
    darkroom_gallery_admin;
    location ~ ^/admin/api/galleries/[^/]+/uploads/ {
        darkroom_gallery_admin;
        client_max_body_size 10m;
        client_body_temp_path $d/files/.uploads;
    }
}
location /cross/ {
    darkroom_gallery_admin;
    client_body_temp_path $shm;
}
LOC

my $auth = { Authorization => 'Bearer admin-token-1' };
my $r = $t->http(POST => '/admin/api/galleries/', { headers => $auth,
    content => encode_json({ slug => 'wed', title => 'Wedding' }) });
ok($r->{status} == 200 || $r->{status} == 201, 'gallery made');

sub put {
    my ($name, $body) = @_;
    my $r = $t->http(PUT => "/admin/api/galleries/wed/uploads/$name",
                     { headers => $auth, content => $body });
    is($r->{status}, 202, "PUT $name: 202") or diag $r->{content};
    return $r->{json}{upload}{id};
}

my $n = 0;
sub image {
    my $f = "$d/img" . ++$n . '.jpg';
    system('convert', '-size', (10 + $n) . 'x10', 'xc:red', $f) == 0 or die;
    return $t->read_file($f);
}

# a convert on the PATH that fails while $d/convert-fails exists
mkdir "$d/bin";
$t->write_file('bin/convert', <<"SH", 0755);
#!/bin/sh
if [ -e $d/convert-fails ]; then echo "convert: simulated failure" >&2; exit 1; fi
exec /usr/bin/convert "\$@"
SH

sub importer {
    my (%o) = @_;
    my $out = `PATH=$d/bin:\$PATH $top/tools/darkroom-importer --db '${\ $t->db}' --root $d/files --retry-delay 0 --once 2>&1`;
    is($?, 0, 'importer exits 0') or diag $out;
    return $out;
}

sub upload { $t->sql_value("SELECT state || '|' || coalesce(error, '')"
                           . " FROM gallery_uploads WHERE id = :'p1'", $_[0]) }
sub job { $t->sql_value("SELECT attempts || '|' || dead || '|'"
    . " || (done_at IS NOT NULL) || '|' || coalesce(last_error, '') FROM jobs"
    . " WHERE kind = 'photo_import' AND payload->>'upload' = :'p1'"
    . " ORDER BY id DESC LIMIT 1", $_[0]) }
sub photos { $t->sql_value("SELECT count(*) FROM gallery_photos") }

# not an image, though it starts as a JPEG does
my $bad = put('corrupt.jpg', "\xff\xd8\xff\xe0" . ('garbage ' x 100));
my $out = importer();
like($out, qr/corrupt\.jpg: failed/, 'reported') or diag $out;
like(upload($bad), qr/^failed\|not an image ImageMagick can read: \S/,
     'the upload failed, with the reason');
unlike(upload($bad), qr{\Q$d\E}, 'the reason names no server path');
like(job($bad), qr/^1\|false\|true\|$/, 'its job done after one attempt');
is(photos(), 0, 'no photo');
importer();
like(job($bad), qr/^1\|false\|true\|$/, 'never tried again');

# convert fails: retried, then imported
$t->write_file('convert-fails', '');
my $c = put('convert.jpg', image());
$out = importer();
like($out, qr/convert failed.*retry/, 'the failure reported') or diag $out;
like(upload($c), qr/^received\|convert failed/, 'the upload waits, with the error');
like(job($c), qr/^1\|false\|false\|convert failed/, 'the job failed, not dead');
is(photos(), 0, 'no photo yet');
unlink "$d/convert-fails";
$out = importer();
like($out, qr/convert\.jpg: imported/, 'imported the next time') or diag $out;
like(upload($c), qr/^done\|$/, 'the upload done');
like(job($c), qr/^2\|false\|true\|$/, 'its job done at the second attempt');
is(photos(), 1, 'one photo');

# the database refuses the photo: retried, then imported
$t->sql("ALTER TABLE gallery_photos ADD CONSTRAINT t351_refuse"
        . " CHECK (name <> 'db.jpg') NOT VALID");
my $db = put('db.jpg', image());
$out = importer();
like(upload($db), qr/^received\|database: .*t351_refuse/,
     'the database error shown') or diag $out;
like(job($db), qr/^1\|false\|false\|database:/, 'the job failed, not dead');
is(photos(), 1, 'no new photo');
$t->sql("ALTER TABLE gallery_photos DROP CONSTRAINT t351_refuse");
importer();
like(upload($db), qr/^done\|$/, 'imported the next time');
is(photos(), 2, 'its photo');

# a job that dies: the upload failed with the last error, then retried
$t->write_file('convert-fails', '');
my $dies = put('dies.jpg', image());
$t->sql("UPDATE jobs SET max_attempts = 1 WHERE payload->>'upload' = :'p1'",
        $dies);
importer();
like(upload($dies), qr/^failed\|convert failed/, 'a dead job: the upload failed');
like(job($dies), qr/^1\|true\|false\|convert failed/, 'the job dead');
unlink "$d/convert-fails";
my $jid = $t->sql_value("SELECT id FROM jobs WHERE payload->>'upload' = :'p1'",
                        $dies);
$r = $t->http(POST => "/admin/api/jobs/$jid/retry", { headers => $auth });
is($r->{status}, 200, 'retried from the admin API') or diag $r->{content};
importer();
like(upload($dies), qr/^done\|$/, 'imported');
is(photos(), 3, 'its photo');

# a name sent again before its first job ran: one import, the newer file
my $first = image();
my $same = put('same.jpg', $first);
my $second = image();
put('same.jpg', $second);
$out = importer();
like($out, qr/sent again since, skipped/, 'the older job skipped') or diag $out;
is(() = $out =~ /same\.jpg: imported/g, 1, 'imported once');
is($t->sql_value("SELECT width FROM gallery_photos WHERE name = 'same.jpg'"),
   10 + $n, 'the newer file');

# across file systems: copied beside its place, renamed, the temp removed
SKIP: {
    skip 'no tmpfs at /dev/shm', 4 if $shm !~ m{^/dev/shm};
    my $img = image();
    $r = $t->http(PUT => '/cross/wed/uploads/cross.jpg',
                  { headers => $auth, content => $img });
    is($r->{status}, 202, 'PUT through a temp path on tmpfs: 202')
        or diag $r->{content};
    is($t->read_file("$d/files/wed/cross.jpg"), $img, 'copied byte for byte');
    opendir my $dh, "$d/files/wed";
    is_deeply([grep { /^\.upload-/ } readdir $dh], [], 'no copy left over');
    ok(wait_for(sub { opendir my $h, $shm; !grep { !/^\./ } readdir $h }),
       'the temp file removed');
}

# two importers at once: each file imported by one of them, once
my @ids = map { put("two$_.jpg", image()) } 1 .. 8;
my @kids;
for my $k (1 .. 2) {
    my $pid = fork // die;
    if (!$pid) {
        exec "PATH=$d/bin:\$PATH $top/tools/darkroom-importer --db '"
            . $t->db . "' --root $d/files --once > $d/importer$k.log 2>&1";
    }
    push @kids, $pid;
}
waitpid $_, 0 for @kids;
my $both = $t->read_file('importer1.log') . $t->read_file('importer2.log');
for my $i (1 .. 8) {
    is(() = $both =~ /two$i\.jpg: imported/g, 1, "two$i.jpg imported once");
}
unlike($both, qr/failed|database/, 'no failure') or diag $both;
is($t->sql_value("SELECT count(*) FROM gallery_uploads WHERE name LIKE 'two%'"
    . " AND state = 'done'"), 8, 'all eight done');
is($t->sql_value("SELECT count(*) FROM gallery_photos WHERE name LIKE 'two%'"),
   8, 'eight photos');
is($t->sql_value("SELECT count(*) FROM jobs WHERE kind = 'photo_import'"
    . " AND done_at IS NULL"), 0, 'no job left');

$t->stop;
system('rm', '-rf', $shm) if $shm =~ m{^/dev/shm/darkroom-t351-};
ok($t->check_sanitizer, 'no sanitizer report');
done_testing;
