#!/usr/bin/perl

# darkroom: unit test of the pure ZIP writer (t/unit/zip_test.c printing
# TAP), then archives it writes checked by the real readers: 70,000
# entries (ZIP64 end records for the count, names made unique) with unzip,
# Python's zipfile and bsdtar.

use strict;
use warnings;

use File::Basename qw(dirname);
use File::Spec;
use File::Temp qw(tempdir);
use Test::More;

my $root = File::Spec->rel2abs(dirname(__FILE__) . '/..');
my $dir = tempdir('darkroom-zip-unit-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $cc = $ENV{CC} || 'cc';
my $bin = "$dir/zip_test";

my $out = `$cc -std=c99 -D_DEFAULT_SOURCE -Wall -Wextra -Werror -O2 -I$root/src/core -I$root/src/gallery -o $bin $root/t/unit/zip_test.c $root/src/gallery/ngx_http_darkroom_zip.c $root/src/core/ngx_http_darkroom_utf8.c 2>&1`;
is($?, 0, 'compiles') or diag $out;

my $plan;
for (`$bin`) {
    chomp;
    if (/^(not )?ok \d+ - (.*)$/) {
        ok(!$1, $2);
    } elsif (/^1\.\.(\d+)$/) {
        $plan = $1;
    }
}
ok(defined $plan && $? == 0, 'zip_test exits 0 with a plan');

$out = `$bin write $dir/many.zip 70000`;
like($out, qr/^\d+ 1$/, '70,000 entries need the ZIP64 end records');
$out = `unzip -tq $dir/many.zip 2>&1`;
like($out, qr/No errors detected/, 'unzip -t') or diag $out;
$out = `python3 -c '
import zipfile, sys
z = zipfile.ZipFile(sys.argv[1]); i = z.infolist()
assert z.testzip() is None and len(i) == 70000
assert len(set(x.filename.lower() for x in i)) == 70000
print(i[-1].filename)' $dir/many.zip 2>&1`;
like($out, qr/^dup \(46667\)\.txt$/m, 'zipfile: 70,000 unique names') or diag $out;
$out = `bsdtar -tf $dir/many.zip | wc -l`;
is($out + 0, 70000, 'bsdtar lists 70,000');

done_testing();
