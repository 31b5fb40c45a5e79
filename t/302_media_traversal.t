#!/usr/bin/perl

# darkroom: path traversal and encoding tricks against signed media URLs.
#
# Every hostile path is sent byte for byte over a raw socket (HTTP::Tiny
# would normalise some of them), with no signature and with signatures
# made for the readings an attacker could hope for.  No answer may carry a
# file from outside the root, and symlinks leaving the root are refused.

use strict;
use warnings;

use lib 't/lib';
use Darkroom::Test;
use Digest::SHA qw(hmac_sha256);
use IO::Socket::IP;
use MIME::Base64 qw(encode_base64);
use Test::More;

my $t = Darkroom::Test->new;
my $dir = $t->dir;

my $KEY = 'traversal-key-0123456789';
$t->write_file('keys', "k1:$KEY\n");

my $SECRET = 'TOP-SECRET-OUTSIDE-ROOT';
$t->write_file('secret.txt', "$SECRET\n");
$t->write_file('html/inroot.txt', 'in-root');
$t->write_file('html/photos/a.jpg', 'photo-a');
$t->write_file('html/photos/sub/b.jpg', 'photo-b');
symlink "$dir/secret.txt", "$dir/html/photos/link.txt"
    or die "symlink: $!";
symlink '../../secret.txt', "$dir/html/photos/rel.txt" or die "symlink: $!";
symlink "$dir", "$dir/html/photos/up" or die "symlink: $!";

$t->conf(<<'EOF');
%%MAIN%%
events {}
http {
    %%HTTP%%

    server {
        listen 127.0.0.1:%%PORT0%%;
        root %%DIR%%/html;
        darkroom_media_keys %%DIR%%/keys;
        disable_symlinks on from=$document_root;
        darkroom_media on;

        location /photos/ {
        }

        location /alias/ {
            alias %%DIR%%/html/photos/;
        }
    }
}
EOF

$t->start;

sub sign_query {
    my ($path) = @_;
    my $exp = time + 600;
    my $c = "darkroom-media-v1\n$path\nexp=$exp\nkid=k1\n";
    my $sig = encode_base64(hmac_sha256($c, $KEY), '');
    $sig =~ tr{+/}{-_};
    $sig =~ s/=+$//;
    return "exp=$exp&kid=k1&sig=$sig";
}

sub raw {
    my ($target) = @_;
    my $s = IO::Socket::IP->new(PeerAddr => '127.0.0.1',
        PeerPort => $t->port(0), Proto => 'tcp') or die "connect: $!";
    print $s "GET $target HTTP/1.0\r\nHost: localhost\r\n\r\n";
    local $/;
    my $res = <$s> // '';
    close $s;
    my ($status) = $res =~ m{^HTTP/1\.[01] (\d{3})};
    my (undef, $body) = split /\r\n\r\n/, $res, 2;
    return ($status // 0, $body // '', $res);
}

sub unescape {
    my ($s) = @_;
    $s =~ s/%([0-9A-Fa-f]{2})/chr hex $1/ge;
    return $s;
}

# positive controls

my ($st, $body) = raw('/photos/a.jpg?' . sign_query('/photos/a.jpg'));
is($st, 200, 'control: signed /photos/a.jpg');
is($body, 'photo-a', 'control: body');
($st, $body) = raw('/alias/sub/b.jpg?' . sign_query('/alias/sub/b.jpg'));
is($st, 200, 'control: signed /alias/sub/b.jpg');
($st) = raw('/secret.txt');
is($st, 403, 'control: darkroom_media on protects the whole server');

my @hostile = (
    '/photos/../../secret.txt',
    '/photos/%2e%2e/%2e%2e/secret.txt',
    '/photos/%2E%2E%2F%2E%2E%2Fsecret.txt',
    '/photos/..%2f..%2fsecret.txt',
    '/photos/%2e%2e%5c%2e%2e%5csecret.txt',
    '/photos/..\\..\\secret.txt',
    '/photos//../../secret.txt',
    '//photos/../../secret.txt',
    '/photos/%c0%ae%c0%ae/%c0%ae%c0%ae/secret.txt',
    '/photos/%c0%af..%c0%af..%c0%afsecret.txt',
    '/photos/%e0%80%ae%e0%80%ae/%e0%80%ae%e0%80%ae/secret.txt',
    '/photos/%c1%9c..%c1%9csecret.txt',
    '/photos/a.jpg%00.txt',
    '/photos/%00/../../secret.txt',
    '/photos/./../../secret.txt',
    '/photos/.../secret.txt',
    '/photos/%252e%252e/%252e%252e/secret.txt',
    '/photos/sub/..%2f..%2f..%2fsecret.txt',
    '/../secret.txt',
    '/photos/a.jpg/../../../secret.txt',
    '/alias/../secret.txt',
    '/alias/..%2f..%2fsecret.txt',
    '/alias../secret.txt',
    '/photos/..;/..;/secret.txt',
    '/photos/%u002e%u002e/secret.txt',
    '/photos/....//....//secret.txt',
    'http://localhost/photos/../../secret.txt',
    '/photos/a.jpg%0d%0aX-Injected:%201',
    '/photos/link.txt',
    '/photos/rel.txt',
    '/photos/up/secret.txt',
    '/alias/link.txt',
    '/photos/sub/%2e%2e/%2e%2e/%2e%2e/secret.txt',
    '/photos/%2e%2e%2f%2e%2e%2f',
    '/alias/../inroot.txt/../../secret.txt',
);

cmp_ok(scalar @hostile, '>=', 20, scalar(@hostile) . ' hostile paths');

for my $h (@hostile) {
    my ($path) = $h =~ m{^(?:http://[^/]+)?(/.*)$};
    my @readings = ($path, unescape($path), unescape(unescape($path)),
        '/secret.txt', '/../secret.txt', '/photos/../../secret.txt',
        '/photos/link.txt', '/photos/up/secret.txt');
    my %seen;
    my @statuses;
    my $leak = 0;

    for my $q ('', map { '?' . sign_query($_) } grep { !$seen{$_}++ }
        @readings)
    {
        my ($s, $b, $all) = raw($h . $q);
        push @statuses, $s;
        $leak++ if $all =~ /\Q$SECRET\E/;
        $leak++ if $all =~ /^X-Injected/mi;
        # a 200 may only ever be a file from inside the root
        $leak++ if $s == 200 && $b !~ /^(?:photo-[ab]|in-root)$/;
    }

    my %st = map { $_ => 1 } @statuses;
    ok(!$leak, "$h: nothing outside the root ("
        . join(',', sort keys %st) . ')');
}

# symlinks leaving the root: refused even with a valid signature

for my $p ('/photos/link.txt', '/photos/rel.txt', '/photos/up/secret.txt') {
    my ($s, $b) = raw($p . '?' . sign_query($p));
    like($s, qr/^40[34]$/, "$p: signed, but the symlink leaves the root: $s");
    unlike($b, qr/\Q$SECRET\E/, "$p: no secret");
}

like($t->error_log, qr/link\.txt" failed \(40: Too many levels of symbolic/,
    'nginx refused the symlink (disable_symlinks)');

$t->stop;

done_testing();
