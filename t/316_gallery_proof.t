#!/usr/bin/perl

# darkroom: a proof is only ever a proof copy.  A photo without one (added
# through the admin API or imported without derived copies) is listed with
# "proof": null, never with a link to its original or web-size file, so a
# gallery's PIN cannot be bypassed through the listing; the admin API and
# the import tool warn about such photos.

use strict;
use warnings;

use lib 't/lib';
use Darkroom::Test;
use Compress::Zlib qw(crc32);
use JSON::PP;
use Test::More;

my $t = Darkroom::Test->new;
my $dir = $t->dir;

$t->write_file('keys', "m1:media-key-0123456789abcdef\n");
$t->write_file('cookie_key', "cookie-key-0123456789abcdef\n");
$t->write_file('admin_token', "gallery-admin-token\n");

my %data = (
    'pin/a.jpg'        => 'original a ' x 100,
    'pin/b.jpg'        => 'original b ' x 100,
    'pin/c.jpg'        => 'original c ' x 100,
    'pin/web/c.jpg'    => 'web c',
    'pin/proofs/a.jpg' => 'proof a',
);
$t->write_file("files/$_", $data{$_}) for keys %data;

$t->conf(<<'EOF');
%%MAIN%%
thread_pool dr threads=4;
events {}
http {
    %%HTTP%%
    darkroom_db "%%DB%%";
    darkroom_db_pool dr;
    darkroom_jobs off;
    darkroom_admin_token_file %%DIR%%/admin_token;

    darkroom_media_keys %%DIR%%/keys;
    darkroom_gallery_media /media/;
    darkroom_gallery_root %%DIR%%/files;
    darkroom_gallery_cookie_key_file %%DIR%%/cookie_key;

    server {
        listen 127.0.0.1:%%PORT0%%;

        location /media/ {
            darkroom_media on;
            alias %%DIR%%/files/;
        }

        location /api/galleries/ {
            darkroom_gallery;
        }

        location /api/admin/galleries/ {
            darkroom_gallery_admin;
        }
    }
}
EOF

$t->start;

sub admin {
    my ($method, $path, $body) = @_;
    return $t->http($method, "/api/admin/galleries/$path", {
        headers => { Authorization => 'Bearer gallery-admin-token' },
        defined $body ? (content => encode_json($body)) : () });
}

my $r = admin(POST => '', { slug => 'pin', pin => '4321' });
is($r->{status}, 200, 'a gallery with a PIN, no password')
    or diag $r->{content};

sub photo {
    my ($p, %more) = @_;
    return { original => $p, bytes => length $data{$p},
             crc32 => crc32($data{$p}), %more };
}

$r = admin(POST => 'pin/photos', { photos => [
    photo('pin/a.jpg', proof => 'pin/proofs/a.jpg'),
    photo('pin/b.jpg'),
    photo('pin/c.jpg', web => 'pin/web/c.jpg', web_bytes => 5,
          web_crc32 => crc32('web c')),
] });
is($r->{status}, 200, 'photos added') or diag $r->{content};
my @warn = @{$r->{json}{warnings} // []};
is(scalar @warn, 2, 'the admin API warns about two photos without a proof')
    or diag $r->{content};
is_deeply([ sort map { $_->{original} } @warn ], [ 'pin/b.jpg', 'pin/c.jpg' ],
    'naming them');
is($warn[0]{code}, 'no_proof', 'code no_proof');

$r = $t->http(GET => '/api/galleries/pin');
is($r->{status}, 200, 'listing') or diag $r->{content};
my %p = map { $_->{name} => $_ } @{$r->{json}{photos} // []};
is(scalar keys %p, 3, 'three photos listed');
like($p{'a.jpg'}{proof} // '', qr{^/media/pin/proofs/a\.jpg\?},
    'a photo with a proof: its proof link');
is($t->http(GET => $p{'a.jpg'}{proof} // '/x')->{content}, 'proof a',
    'which serves the proof');
ok(exists $p{'b.jpg'} && !defined $p{'b.jpg'}{proof},
    'no proof copy: "proof": null') or diag explain $p{'b.jpg'};
ok(exists $p{'c.jpg'} && !defined $p{'c.jpg'}{proof},
    'a web copy is not a proof either') or diag explain $p{'c.jpg'};
unlike($r->{content}, qr{/media/pin/(?:b|c|web/c)\.jpg},
    'no link to an original or web copy in the listing');

# every link the listing hands out, fetched: no original bytes come back
for my $u ($r->{content} =~ m{"(/media/[^"]+)"}g) {
    my $f = $t->http(GET => $u);
    unlike($f->{content} // '', qr/^original|^web/, "not an original: $u");
}

# the originals stay behind the PIN
is($t->http(POST => '/api/galleries/pin/download',
    { content => '{"all":true}' })->{status}, 401, 'downloads need the PIN');

# the import tool warns when it makes no proofs
mkdir "$dir/files/imp";
$t->write_file('files/imp/x.jpg', 'not really a jpeg');
my $db = $t->db;
my $tool = $t->top . '/tools/darkroom-import';
my $out = `$tool --db '$db' --root $dir/files --no-derive imp $dir/files/imp 2>&1`;
is($?, 0, 'import without derived copies succeeds') or diag $out;
like($out, qr/warning: .*no proof/i, 'and warns that there are no proofs')
    or diag $out;

done_testing();
