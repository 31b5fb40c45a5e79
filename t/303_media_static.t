#!/usr/bin/perl

# darkroom: a signed download behaves exactly like nginx's static files:
# the same headers, Range (single, multiple, unsatisfiable), ETag with
# If-None-Match, Last-Modified with If-Modified-Since, If-Range, HEAD; and
# the signed Content-Disposition equals what add_header would send on a
# plain static location, for 200, 206 and 304, and is absent on errors.

use strict;
use warnings;

use lib 't/lib';
use Darkroom::Test;
use Digest::SHA qw(hmac_sha256);
use MIME::Base64 qw(encode_base64);
use Test::More;

my $t = Darkroom::Test->new;

my $KEY = 'static-key-0123456789abcdef';
$t->write_file('keys', "k1:$KEY\n");

my $data = join '', map { chr(($_ * 31 + 7) % 256) } 0 .. 1024 * 1024 - 1;
$t->write_file('html/photos/big.jpg', $data);
$t->write_file('html/photos/small.txt', "hello\n");

my $CD = q{attachment; filename="_t_ 1.jpg"; }
       . q{filename*=UTF-8''%C3%A9t%C3%A9%201.jpg};

(my $CD_CONF = $CD) =~ s/"/\\"/g;

$t->conf(<<"EOF");
%%MAIN%%
events {}
http {
    %%HTTP%%
    include /etc/nginx/mime.types;

    server {
        listen 127.0.0.1:%%PORT0%%;
        root %%DIR%%/html;

        location /photos/ {
            darkroom_media on;
            darkroom_media_keys %%DIR%%/keys;
        }

        location /plain/ {
            alias %%DIR%%/html/photos/;
        }

        location /plaincd/ {
            alias %%DIR%%/html/photos/;
            add_header Content-Disposition "$CD_CONF";
        }
    }
}
EOF

$t->start;

sub sign {
    my ($path, %p) = @_;
    $p{exp} //= time + 600;
    $p{kid} = 'k1';
    my $c = "darkroom-media-v1\n$path\n";
    $c .= "$_=$p{$_}\n" for sort keys %p;
    my $sig = encode_base64(hmac_sha256($c, $KEY), '');
    $sig =~ tr{+/}{-_};
    $sig =~ s/=+$//;
    my $esc = sub {
        (my $s = shift) =~ s/([^A-Za-z0-9\-._~])/sprintf('%%%02X', ord $1)/ge;
        $s;
    };
    return "$path?"
        . join('&', (map { "$_=" . $esc->($p{$_}) } sort keys %p), "sig=$sig");
}

my @HEADERS = qw(content-type content-length etag last-modified
                 accept-ranges content-range content-disposition);

sub pick {
    my ($r) = @_;
    my %h = map { $_ => $r->{headers}{$_} } grep { defined $r->{headers}{$_} }
        @HEADERS;
    return { status => $r->{status}, headers => \%h };
}

# the multipart boundary differs per response
sub body {
    my ($r) = @_;
    my $b = $r->{content} // '';
    if (($r->{headers}{'content-type'} // '') =~ /boundary=(\d+)/) {
        my $bd = $1;
        $b =~ s/\Q$bd\E/BOUNDARY/g;
    }
    return $b;
}

sub same {
    my ($method, $signed, $plain, $headers, $name) = @_;
    my $rs = $t->http($method => $signed, { headers => $headers });
    my $rp = $t->http($method => $plain, { headers => $headers });
    my ($ps, $pp) = (pick($rs), pick($rp));
    if ($ps->{headers}{'content-type'}) {
        s/boundary=\d+/boundary=B/ for $ps->{headers}{'content-type'},
            $pp->{headers}{'content-type'};
    }
    is_deeply($ps, $pp, "$name: same status and headers ($rs->{status})")
        or diag(explain([$ps, $pp]));
    ok(body($rs) eq body($rp), "$name: same body ("
        . length($rs->{content} // '') . ' bytes)');
    return $rs;
}

my $big = sign('/photos/big.jpg');
my $r = same(GET => $big, '/plain/big.jpg', {}, 'GET 1 MiB');
is($r->{content}, $data, 'the whole file');
my $etag = $r->{headers}{etag};
my $lm = $r->{headers}{'last-modified'};
ok($etag && $lm, "ETag $etag, Last-Modified $lm");

same(HEAD => $big, '/plain/big.jpg', {}, 'HEAD');
same(GET => $big, '/plain/big.jpg', { Range => 'bytes=100-199' },
    'Range 100-199');
same(GET => $big, '/plain/big.jpg', { Range => 'bytes=-10' },
    'Range suffix');
same(GET => $big, '/plain/big.jpg', { Range => 'bytes=1048000-' },
    'Range open end');
same(GET => $big, '/plain/big.jpg', { Range => 'bytes=0-9,20-29,500-' },
    'multiple ranges');
same(GET => $big, '/plain/big.jpg', { Range => 'bytes=2000000-' },
    'unsatisfiable Range');
same(GET => $big, '/plain/big.jpg', { 'If-None-Match' => $etag },
    'If-None-Match');
same(GET => $big, '/plain/big.jpg', { 'If-None-Match' => '"other"' },
    'If-None-Match other');
same(GET => $big, '/plain/big.jpg', { 'If-Modified-Since' => $lm },
    'If-Modified-Since');
same(GET => $big, '/plain/big.jpg',
    { Range => 'bytes=0-99', 'If-Range' => $etag }, 'If-Range matching');
same(GET => $big, '/plain/big.jpg',
    { Range => 'bytes=0-99', 'If-Range' => '"old"' }, 'If-Range stale');
same(GET => sign('/photos/small.txt'), '/plain/small.txt', {},
    'small text file');
same(GET => sign('/photos/missing.jpg'), '/plain/missing.jpg', {},
    'missing file');

# Content-Disposition: like add_header on a static location

my $cd = sign('/photos/big.jpg', disposition => 'attachment',
    filename => "\xc3\xa9t\xc3\xa9 1.jpg");

$r = same(GET => $cd, '/plaincd/big.jpg', {}, 'attachment');
is($r->{headers}{'content-disposition'}, $CD, 'RFC 6266 value');
same(GET => $cd, '/plaincd/big.jpg', { Range => 'bytes=10-19' },
    'attachment with Range');
same(GET => $cd, '/plaincd/big.jpg', { 'If-None-Match' => $etag },
    'attachment with If-None-Match');
same(HEAD => $cd, '/plaincd/big.jpg', {}, 'attachment HEAD');

$r = $t->http(GET => sign('/photos/missing.jpg', disposition => 'attachment'));
is($r->{status}, 404, 'attachment link to a missing file: 404');
ok(!exists $r->{headers}{'content-disposition'},
    '... without Content-Disposition');

$r = $t->http(GET => sign('/photos/small.txt', disposition => 'inline'));
is($r->{headers}{'content-disposition'},
    q{inline; filename="small.txt"; filename*=UTF-8''small.txt},
    'inline, named after the path');

$r = $t->http(GET => sign('/photos/big.jpg'));
ok(!exists $r->{headers}{'content-disposition'},
    'no disposition signed: no header');

# nothing went wrong along the way
unlike($t->error_log, qr/\[(?:alert|crit|emerg)\]/, 'no alerts');

$t->stop;

done_testing();
