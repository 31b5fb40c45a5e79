package Darkroom::ProofTest;

# darkroom: what the proofing tests (t/330-t/339) share: an nginx with the
# gallery client API at /api/galleries/, its admin at
# /api/admin/galleries/, signed media at /media/; galleries of n photos
# made through the admin API, with the proofing settings set in SQL;
# visitors and their cookies.

use strict;
use warnings;

use Compress::Zlib qw(crc32);
use Digest::SHA qw(sha256_hex);
use JSON::PP;
use Exporter qw(import);

our @EXPORT = qw(proof_start admin api gallery visitor cookies_of
                 cookie_value);

my $T;

sub proof_start {
    my ($t, %o) = @_;
    $T = $t;
    $t->write_file('keys', "m1:media-key-0123456789abcdef\n");
    $t->write_file('cookie_key', "cookie-key-0123456789abcdef\n");
    $t->write_file('admin_token', "gallery-admin-token\n");
    my $threads = $o{threads} // 4;
    my $extra = $o{http} // '';
    my $jobs = $o{jobs} ? '' : 'darkroom_jobs off;';
    $t->conf(<<"EOF");
%%MAIN%%
thread_pool dr threads=$threads;
events {}
http {
    %%HTTP%%
    darkroom_db "%%DB%%";
    darkroom_db_pool dr;
    $jobs
    darkroom_admin_token_file %%DIR%%/admin_token;

    darkroom_gallery_zone 1m interval=200ms;
    darkroom_media_keys %%DIR%%/keys;
    darkroom_gallery_media /media/;
    darkroom_gallery_root %%DIR%%/files;
    darkroom_gallery_cookie_key_file %%DIR%%/cookie_key;
    $extra

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
}

sub admin {
    my ($method, $path, $body) = @_;
    return $T->http($method, "/api/admin/galleries/$path", {
        headers => { Authorization => 'Bearer gallery-admin-token' },
        defined $body ? (content => encode_json($body)) : () });
}

# api(METHOD, "slug/path", body or undef, cookie string or undef)
sub api {
    my ($method, $path, $body, $cookie) = @_;
    my %h;
    $h{Cookie} = $cookie if defined $cookie && length $cookie;
    return $T->http($method, "/api/galleries/$path", {
        headers => \%h,
        defined $body ? (content => ref $body ? encode_json($body) : $body)
                      : () });
}

# a gallery of n photos IMG_1.jpg .. (files under files/<slug>/), with the
# settings given set in SQL; returns the photo ids in order
sub gallery {
    my ($slug, $n, %set) = @_;
    my @photos;
    for my $i (1 .. $n) {
        my $data = "original $slug $i " x 50;
        $T->write_file("files/$slug/IMG_$i.jpg", $data);
        $T->write_file("files/$slug/proofs/IMG_$i.jpg", "proof $i\n");
        push @photos, { original => "$slug/IMG_$i.jpg",
            bytes => length $data, crc32 => crc32($data),
            sha256 => sha256_hex($data), proof => "$slug/proofs/IMG_$i.jpg",
            name => "IMG_$i.jpg" };
    }
    my $pw = delete $set{password};
    my $r = admin(POST => '', { slug => $slug, title => "Gallery $slug",
                                defined $pw ? (password => $pw) : () });
    die "gallery $slug: $r->{content}" unless $r->{status} == 200;
    $r = admin(POST => "$slug/photos", { photos => \@photos });
    die "photos $slug: $r->{content}" unless $r->{status} == 200;
    for my $k (sort keys %set) {
        die "bad setting $k" unless $k =~ /^[a-z_]+$/;
        $T->sql("UPDATE galleries SET $k = :'p1' WHERE slug = :'p2'",
                $set{$k}, $slug);
    }
    return map { $_->[0] } $T->sql(q{SELECT ph.id FROM gallery_photos ph
        JOIN galleries g ON g.id = ph.gallery_id WHERE g.slug = :'p1'
        ORDER BY ph.position, ph.id}, $slug);
}

# the Set-Cookie headers of an answer, as a list
sub cookies_of {
    my ($r) = @_;
    my $sc = $r->{headers}{'set-cookie'} // [];
    return ref $sc ? @$sc : ($sc);
}

# "name=value" of the named cookie set by an answer, or undef
sub cookie_value {
    my ($r, $name) = @_;
    for (cookies_of($r)) {
        return $1 if /^(\Q$name\E=[^;]*)/;
    }
    return undef;
}

# a visitor of a gallery: (answer, "darkroom_visitor=..." cookie)
sub visitor {
    my ($slug, $name, $email, $cookie) = @_;
    my $r = api(POST => "$slug/visitor", { name => $name, email => $email },
                $cookie);
    return ($r, cookie_value($r, 'darkroom_visitor'));
}

1;
