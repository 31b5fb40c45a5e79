#!/usr/bin/perl

# darkroom: unit tests of the pure signed media URL code, SigV4 and the
# shared UTF-8 decoder (C programs under t/unit/ printing TAP).  Each is
# compiled into a temporary directory and run; this script passes their TAP
# through as subtests.

use strict;
use warnings;

use File::Basename qw(dirname);
use File::Spec;
use File::Temp qw(tempdir);
use Test::More;

my $root = File::Spec->rel2abs(dirname(__FILE__) . '/..');
my $dir = tempdir('darkroom-media-unit-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $cc = $ENV{CC} || 'cc';

my @units = (
    [ 'media_sign_test', 'src/core/ngx_http_darkroom_sign.c',
                         'src/core/ngx_http_darkroom_utf8.c' ],
    [ 'sigv4_test',      'src/media/ngx_http_darkroom_sigv4.c' ],
    [ 'utf8_test',       'src/core/ngx_http_darkroom_utf8.c' ],
);

for my $u (@units) {
    my ($name, @srcs) = @$u;
    next unless -f "$root/t/unit/$name.c";

    subtest $name => sub {
        my $bin = "$dir/$name";
        # under ASan and UBSan, so memory errors and undefined behaviour
        # fail too, not only wrong results
        my @cmd = ($cc, qw(-std=c99 -D_DEFAULT_SOURCE -Wall -Wextra -Werror
                           -O2 -g -fno-sanitize-recover=undefined),
                   '-fsanitize=address,undefined',
                   "-I$root/src/core", "-I$root/src/media", '-o', $bin,
                   "$root/t/unit/$name.c", map({ "$root/$_" } @srcs),
                   '-lcrypto');
        my $out = `@cmd 2>&1`;
        if ($?) {
            fail("compile: @cmd");
            diag($out);
            return;
        }

        # re-emit the program's TAP as assertions of this subtest
        my @lines = `$bin`;
        my $rc = $?;
        my $plan;
        for (@lines) {
            chomp;
            if (/^(not )?ok \d+ - (.*)$/) {
                ok(!$1, $2);
            } elsif (/^1\.\.(\d+)$/) {
                $plan = $1;
            } elsif (/^#/) {
                diag($_);
            }
        }
        ok(defined $plan && $rc == 0, "$name exits 0 with a plan");
    };
}

done_testing();
