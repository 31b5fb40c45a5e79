#!/usr/bin/perl

# darkroom: GCRA arithmetic unit test (t/unit/gcra_test.c, prints TAP).
# Compiles the C program into a temporary directory and runs it in place of
# this script, so prove reads its TAP directly.

use strict;
use warnings;

use File::Basename qw(dirname);
use File::Spec;
use File::Temp qw(tempdir);

my $root = File::Spec->rel2abs(dirname(__FILE__) . '/..');
my $dir = tempdir('darkroom-gcra-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $bin = "$dir/gcra_test";
my $cc = $ENV{CC} || 'cc';

my @cmd = ($cc, qw(-std=c99 -Wall -Wextra -Werror -O2),
           "-I$root/src/core", "-I$root/src/limit", '-o', $bin, "$root/t/unit/gcra_test.c");

if (system(@cmd) != 0) {
    print "1..1\nnot ok 1 - compile t/unit/gcra_test.c: @cmd\n";
    exit 1;
}

my $rc = system($bin);
exit($rc == 0 ? 0 : 1);
