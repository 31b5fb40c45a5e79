#!/usr/bin/perl

# darkroom: the order status token, the pure part: the first 128 bits of
# HMAC-SHA256(key, "darkroom-order-v1\n" seed) as hex, checked against
# Perl's Digest::SHA (an implementation independent of the C one): stable
# for the same order, another for another key or another seed, and a seed
# longer than the limit refused.  Built under ASan and UBSan.

use strict;
use warnings;

use Digest::SHA qw(hmac_sha256_hex);
use File::Basename qw(dirname);
use File::Spec;
use File::Temp qw(tempdir);
use Test::More;

my $root = File::Spec->rel2abs(dirname(__FILE__) . '/..');
my $dir = tempdir('darkroom-order-token-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $cc = $ENV{CC} || 'cc';
my $bin = "$dir/order_token_test";

my @cmd = ($cc, qw(-std=c99 -D_DEFAULT_SOURCE -Wall -Wextra -Werror -O2 -g
                   -fno-sanitize-recover=undefined),
           '-fsanitize=address,undefined', "-I$root/src/core", '-o', $bin,
           "$root/t/unit/order_token_test.c",
           "$root/src/core/ngx_http_darkroom_sign.c",
           "$root/src/core/ngx_http_darkroom_utf8.c", '-lcrypto');
my $out = `@cmd 2>&1`;
is($?, 0, 'the unit compiles') or diag $out;

sub tokens {
    my @args = map { quotemeta } @_;
    my @lines = `$bin @args`;
    is($?, 0, 'the unit exits 0');
    chomp @lines;
    return @lines;
}

sub perl_token {
    my ($key, $seed) = @_;
    return substr(hmac_sha256_hex("darkroom-order-v1\n$seed", $key), 0, 32);
}

my $k1 = 'order-key-0123456789abcdef';
my $k2 = 'order-key-fedcba9876543210';
my $s1 = '00112233445566778899aabbccddeeff';
my $s2 = '0f1e2d3c4b5a69788796a5b4c3d2e1f0';

my @t = tokens($k1, $s1, $k1, $s1, $k2, $s1, $k1, $s2);
is($t[0], perl_token($k1, $s1), 'the token is the truncated HMAC-SHA256');
like($t[0], qr/^[0-9a-f]{32}$/, '128 bits as 32 lowercase hex digits');
is($t[1], $t[0], 'stable: the same order and key give the same token');
isnt($t[2], $t[0], 'another key gives another token');
is($t[2], perl_token($k2, $s1), 'and the right one');
isnt($t[3], $t[0], 'another seed gives another token');
is($t[3], perl_token($k1, $s2), 'and the right one');
isnt($t[0], $s1, 'the token is not the seed');

# a key longer than the hash's block is hashed first, as HMAC says
my $long = 'k' x 100;
is((tokens($long, $s1))[0], perl_token($long, $s1), 'a long key');

# the seed is bounded: 64 bytes pass, 65 are refused
is((tokens($k1, 'a' x 64))[0], perl_token($k1, 'a' x 64), 'a 64-byte seed');
is((tokens($k1, 'a' x 65))[0], 'error', 'a longer seed is refused');

done_testing();
