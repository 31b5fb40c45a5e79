#!/usr/bin/perl

# darkroom: unit tests of the mail template renderer (t/unit/template_test.c
# printing TAP), compiled against the pure ngx_http_darkroom_template.c, and
# a syntax check of every template shipped in conf/mail.

use strict;
use warnings;

use File::Basename qw(dirname);
use File::Spec;
use File::Temp qw(tempdir);
use Test::More;

my $root = File::Spec->rel2abs(dirname(__FILE__) . '/..');
my $dir = tempdir('darkroom-mail-unit-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $cc = $ENV{CC} || 'cc';

my $bin = "$dir/template_test";
# under ASan and UBSan: undefined behaviour fails too, not only wrong text
my @cmd = ($cc, qw(-std=c99 -D_DEFAULT_SOURCE -Wall -Wextra -Werror -O2 -g),
    '-fsanitize=address,undefined,float-cast-overflow',
    '-fno-sanitize-recover=all',
    "-I$root/src/core", "-I$root/src/mail", '-I/usr/include/cjson', '-o', $bin,
    "$root/t/unit/template_test.c", "$root/src/mail/ngx_http_darkroom_template.c",
    '-lcjson');
my $out = `@cmd 2>&1`;
ok(!$?, 'template_test compiles') or diag($out);

SKIP: {
    skip 'no binary', 1 if $?;
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
    ok(defined $plan && $rc == 0, 'template_test exits 0 with a plan');
}

# every template shipped must exist in both forms
for my $name (qw(receipt refunded shop_alert shipped gallery_delivered
                 gallery_reminder gallery_shared))
{
    for my $ext (qw(txt html)) {
        my $f = "$root/conf/mail/$name.$ext";
        ok(-s $f, "conf/mail/$name.$ext exists");
    }
    open my $fh, '<', "$root/conf/mail/$name.txt" or next;
    my $first = <$fh>;
    like($first // '', qr/^Subject: \S/, "$name.txt starts with a Subject line");
}

done_testing();
