#!/usr/bin/perl
# Photos uploaded from the browser: PUT <slug>/uploads/<name> stores the
# body (written by nginx to a temp file, never held in memory) under the
# gallery root and queues its import; tools/darkroom-importer --once makes
# the photos, with checksums, pixels, web copy and proof.  A name sent
# again is the same upload and the same photo.  Bad names, non-images,
# empty bodies, unknown galleries, oversize bodies, missing credentials
# and CSRF are refused with nothing written; staff may upload; an upload
# cut off mid-body leaves nothing; a JSON route's body over the cap is
# refused even where client_max_body_size would take it.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Darkroom::Test qw(wait_for);
use Darkroom::Console qw(console_start account login api);
use Digest::SHA qw(sha256_hex);
use IO::Socket::IP;
use JSON::PP;

my $t = Darkroom::Test->new;
my $d = $t->dir;
my $top = $t->top;
$t->write_file('keys', "m1:media-key-0123456789abcdef\n");
$t->write_file('cookie_key', "cookie-key-0123456789abcdef\n");
mkdir "$d/files";
chmod 0777, "$d/files";   # the workers (nobody, maybe) store the uploads

console_start($t, http => <<"CONF", server => <<"LOC");
    darkroom_gallery_zone 1m interval=200ms;
    darkroom_media_keys $d/keys;
    darkroom_gallery_media /media/;
    darkroom_gallery_root $d/files;
    darkroom_gallery_cookie_key_file $d/cookie_key;
CONF
location /admin/api/galleries/ {
    darkroom_gallery_admin;
    client_max_body_size 4m;
    location ~ ^/admin/api/galleries/[^/]+/uploads/ {
        darkroom_gallery_admin;
        client_max_body_size 300k;
        client_body_temp_path $d/files/.uploads;
    }
}
LOC

my $auth = { Authorization => 'Bearer admin-token-1' };

sub put {
    my ($slug, $name, $body, $h) = @_;
    return $t->http(PUT => "/admin/api/galleries/$slug/uploads/$name",
                    { headers => $h // $auth, content => $body });
}

sub image {
    my ($spec, $file) = @_;
    system('convert', @$spec, "$d/$file") == 0 or die "convert $file\n";
    return $t->read_file($file);
}

my $r = $t->http(POST => '/admin/api/galleries/', { headers => $auth,
    content => encode_json({ slug => 'wed', title => 'Wedding' }) });
ok($r->{status} == 200 || $r->{status} == 201, 'gallery made')
    or diag $r->{content};

my %img = ('IMG_1.jpg' => image([qw(-size 64x48 xc:red)], 'a.jpg'),
           'Beach (2).png' => image([qw(-size 30x50 xc:blue)], 'b.png'),
           'IMG_3.JPEG' => image([qw(-size 80x20 gradient:)], 'c.jpg'));
my %enc = ('IMG_1.jpg' => 'IMG_1.jpg', 'Beach (2).png' => 'Beach%20(2).png',
           'IMG_3.JPEG' => 'IMG_3.JPEG');

for my $n (sort keys %img) {
    $r = put('wed', $enc{$n}, $img{$n});
    is($r->{status}, 202, "PUT $n: 202") or diag $r->{content};
    is($r->{json}{upload}{name}, $n, 'its name, decoded');
    is($r->{json}{upload}{state}, 'received', 'received');
    is($r->{json}{upload}{bytes}, length $img{$n}, 'its size');
    is($t->read_file("$d/files/wed/$n"), $img{$n}, 'stored byte for byte');
}
is($t->sql_value("SELECT count(*) FROM jobs WHERE kind = 'photo_import'"),
   3, 'three import jobs');

$r = $t->http(GET => '/admin/api/galleries/wed/uploads', { headers => $auth });
is($r->{status}, 200, 'GET uploads');
is(scalar @{$r->{json}{uploads}}, 3, 'three uploads');
is($r->{json}{uploads}[0]{name}, 'IMG_3.JPEG', 'the latest first');
is_deeply([sort keys %{$r->{json}{uploads}[0]}],
          [qw(bytes error id name photo_id state updated_at)], 'its fields');

# nginx's job runner never takes photo_import: still due after a while
sleep 1;
is($t->sql_value("SELECT count(*) FROM jobs WHERE kind = 'photo_import'"
    . " AND done_at IS NULL AND attempts = 0"), 3, 'nginx leaves them');

sub importer {
    my $out = `$top/tools/darkroom-importer --db '${\ $t->db}' --root $d/files --web 40 --proof 30 --once 2>&1`;
    is($?, 0, 'importer --once exits 0') or diag $out;
    return $out;
}

my $out = importer();
is(() = $out =~ /imported/g, 3, 'three imported') or diag $out;
$r = $t->http(GET => '/admin/api/galleries/wed', { headers => $auth });
my %ph = map { $_->{name} => $_ } @{$r->{json}{photos}};
is(scalar keys %ph, 3, 'three photos in the gallery');
my %px = ('IMG_1.jpg' => [64, 48], 'Beach (2).png' => [30, 50],
          'IMG_3.JPEG' => [80, 20]);
for my $n (sort keys %img) {
    my $p = $ph{$n} or next;
    is($p->{original}, "wed/$n", "$n: original path");
    is($p->{sha256}, sha256_hex($img{$n}), "$n: sha256");
    is($p->{bytes}, length $img{$n}, "$n: size");
    is_deeply([$p->{width}, $p->{height}], $px{$n}, "$n: pixels");
    ok(-s "$d/files/$p->{web}", "$n: web copy $p->{web}");
    ok(-s "$d/files/$p->{proof}", "$n: proof $p->{proof}");
    ok($p->{web_bytes} && $p->{web_crc32} =~ /^\d+$/, "$n: web copy's size");
}
is($t->sql_value("SELECT string_agg(state, ',') FROM gallery_uploads"),
   'done,done,done', 'uploads done');
is($t->sql_value("SELECT count(*) FROM gallery_uploads u JOIN gallery_photos p"
    . " ON p.id = u.photo_id"), 3, 'each with its photo');

# the same name again: the same upload, the same photo, the new bytes
my $again = image([qw(-size 20x10 xc:white)], 'again.jpg');
$r = put('wed', 'IMG_1.jpg', $again);
is($r->{status}, 202, 're-PUT: 202');
is($r->{json}{upload}{state}, 'received', 'received again');
is($t->read_file("$d/files/wed/IMG_1.jpg"), $again, 'the file replaced');
importer();
is($t->sql_value("SELECT count(*) FROM gallery_uploads"), 3, 'still three uploads');
is($t->sql_value("SELECT count(*) FROM gallery_photos"), 3, 'still three photos');
is($t->sql_value("SELECT width || 'x' || height || ' ' || sha256 FROM gallery_photos"
    . " WHERE name = 'IMG_1.jpg'"), '20x10 ' . sha256_hex($again),
   'the photo is the new file');

sub nothing_new {
    my ($what) = @_;
    opendir my $dh, "$d/files/wed" or die;
    my @f = sort grep { !/^\./ } readdir $dh;
    is_deeply(\@f, [sort keys %img], "$what: no new file");
    is($t->sql_value("SELECT count(*) FROM gallery_uploads"), 3,
       "$what: no new upload");
    ok(wait_for(sub {
        opendir my $h, "$d/files/.uploads"; !grep { !/^\./ } readdir $h }),
       "$what: no temp file left");
}

for my $bad ('..%2Fx.jpg', '.hidden.jpg', 'a%2Fb.jpg', 'x.exe',
             ('a' x 197) . '.jpg', 'x.jpg%00.jpg', 'no%0Aline.jpg') {
    $r = put('wed', $bad, $img{'IMG_1.jpg'});
    is($r->{status}, 400, "name $bad: 400");
    # nginx itself refuses a NUL in the path, before any module
    is($r->{json}{error}{code}, 'bad_name', 'bad_name') unless $bad =~ /%00/;
}
ok(!-e "$d/files/x.jpg" && !-e "$d/x.jpg", 'nothing beside the gallery');
nothing_new('bad names');

$r = put('wed', 'notes.jpg', "just some text, not a picture\n");
is($r->{status}, 415, 'not an image: 415');
is($r->{json}{error}{code}, 'unsupported_type', 'unsupported_type');
$r = put('wed', 'empty.jpg', '');
is($r->{status}, 400, 'empty: 400');
is($r->{json}{error}{code}, 'empty', 'empty');
$r = put('nope', 'x.jpg', $img{'IMG_1.jpg'});
is($r->{status}, 404, 'unknown gallery: 404');
ok(!-e "$d/files/nope", 'no folder for it');
$r = put('wed', 'big.jpg', "\xff\xd8\xff" . ('x' x 400_000));
is($r->{status}, 413, 'over client_max_body_size: 413 from nginx');
$r = put('wed', 'x.jpg', $img{'IMG_1.jpg'}, {});
is($r->{status}, 401, 'no credentials: 401');
$r = put('wed', 'x.jpg', $img{'IMG_1.jpg'},
         { Authorization => 'Bearer wrong-token' });
is($r->{status}, 401, 'a wrong token: 401');
nothing_new('refused bodies');

account($t, 'staff@example.com', 'staff');
my $l = login($t, 'staff@example.com');
$r = put('wed', 'staff.jpg', $img{'IMG_1.jpg'},
         { Cookie => "darkroom_admin=$l->{sid}" });
is($r->{status}, 403, 'a session without its CSRF token: 403');
nothing_new('no CSRF');
$r = put('wed', 'staff.jpg', $img{'IMG_1.jpg'},
         { Cookie => "darkroom_admin=$l->{sid}", 'X-CSRF-Token' => $l->{csrf} });
is($r->{status}, 202, 'staff uploads: 202') or diag $r->{content};
ok(-f "$d/files/wed/staff.jpg", 'stored');
unlink "$d/files/wed/staff.jpg";
$t->sql("DELETE FROM gallery_uploads WHERE name = 'staff.jpg'");

# cut off mid-body: no file, no row, no temp file
my $s = IO::Socket::IP->new(PeerAddr => '127.0.0.1', PeerPort => $t->port(0))
    or die "connect: $!";
print $s "PUT /admin/api/galleries/wed/uploads/cut.jpg HTTP/1.1\r\n"
    . "Host: x\r\nAuthorization: Bearer admin-token-1\r\n"
    . "Content-Length: 200000\r\n\r\n" . "\xff\xd8\xff" . ('y' x 90_000);
ok(wait_for(sub {
    opendir my $h, "$d/files/.uploads"; grep { !/^\./ } readdir $h }),
   'the body is being written to a temp file');
close $s;
ok(!-e "$d/files/wed/cut.jpg", 'interrupted: no file');
nothing_new('interrupted');

# a JSON route reads its body into memory: over 1 MiB it is refused,
# whatever client_max_body_size allows (4m here)
my $huge = encode_json({ title => 'x' x 1_200_000 });
$r = $t->http(POST => '/admin/api/galleries/wed', { headers => $auth,
    content => $huge });
is($r->{status}, 413, 'JSON over the cap: 413');
is($r->{json}{error}{code}, 'too_large', 'too_large');
my @parts = unpack("(a65536)*", $huge);
$r = $t->http(POST => '/admin/api/galleries/wed', { headers => $auth,
    content => sub { shift @parts } });
is($r->{status}, 413, 'chunked JSON over the cap: 413');
is($t->sql_value("SELECT title FROM galleries WHERE slug = 'wed'"),
   'Wedding', 'the gallery unchanged');
$r = $t->http(POST => '/admin/api/galleries/wed', { headers => $auth,
    content => encode_json({ title => 'W' x 150 }) });
is($r->{status}, 200, 'a JSON body under the cap still works');

$t->stop;
ok($t->check_sanitizer, 'no sanitizer report');
done_testing;
