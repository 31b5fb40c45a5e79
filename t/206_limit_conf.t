#!/usr/bin/perl

# darkroom: invalid rate limiting directives fail "nginx -t", naming the
# file and the line.

use strict;
use warnings;

use lib 't/lib';
use Darkroom::Test;
use Test::More;

my $t = Darkroom::Test->new;

# each case: the lines inside http{} (the bad one marked with "#BAD"), and
# what the message must say

my $zone = 'darkroom_limit_zone name=z key=$remote_addr rate=1r/s size=1m;';

my @cases = (
    [ 'darkroom_limit_zone name=z key=$remote_addr rate=0r/s size=1m; #BAD',
      qr/invalid parameter "rate=0r\/s"/ ],
    [ 'darkroom_limit_zone name=z key=$remote_addr rate=10r/d size=1m; #BAD',
      qr/invalid parameter "rate=10r\/d"/ ],
    [ 'darkroom_limit_zone name=z key=$remote_addr rate=10 size=1m; #BAD',
      qr/invalid parameter "rate=10"/ ],
    [ 'darkroom_limit_zone name=z key=$remote_addr rate=2000r/s size=1m; #BAD',
      qr/rate "rate=2000r\/s" is too high/ ],
    [ 'darkroom_limit_zone name=z key=$remote_addr rate=1r/s burst=-1 size=1m; #BAD',
      qr/invalid parameter "burst=-1"/ ],
    [ 'darkroom_limit_zone name=z key=$remote_addr rate=1r/h burst=1000 size=1m; #BAD',
      qr/burst=1000 is too large/ ],
    [ 'darkroom_limit_zone name=z key=$remote_addr rate=1r/s size=1k; #BAD',
      qr/zone size "size=1k" is too small/ ],
    [ 'darkroom_limit_zone name=z key=$remote_addr rate=1r/s size=lots; #BAD',
      qr/invalid parameter "size=lots"/ ],
    [ 'darkroom_limit_zone name=z rate=1r/s size=1m; #BAD',
      qr/must have "name", "key", "rate" and "size"/ ],
    [ 'darkroom_limit_zone name=z key=$remote_addr rate=1r/s; #BAD',
      qr/must have "name", "key", "rate" and "size"/ ],
    [ 'darkroom_limit_zone name=a"b key=$remote_addr rate=1r/s size=1m; #BAD',
      qr/invalid zone name "a"b"/ ],
    [ 'darkroom_limit_zone name=z key=$remote_addr rate=1r/s size=1m color=red; #BAD',
      qr/invalid parameter "color=red"/ ],
    [ "$zone\n$zone #BAD",
      qr/duplicate zone "z"/ ],
    [ 'darkroom_limit zone=nope; #BAD',
      qr/unknown darkroom_limit_zone "nope"/ ],
    [ "$zone\ndarkroom_limit zone=z cost=0; #BAD",
      qr/invalid cost "cost=0"/ ],
    [ "$zone\ndarkroom_limit zone=z cost=2; #BAD",
      qr/cost=2 can never pass zone "z" with burst=0, at most 1/ ],
    [ "$zone\ndarkroom_limit zone=z dryrun; #BAD",
      qr/invalid parameter "dryrun"/ ],
    [ "$zone\ndarkroom_limit cost=1; #BAD",
      qr/must have "zone" parameter/ ],
    [ "$zone\ndarkroom_limit zone=z;\ndarkroom_limit zone=z; #BAD",
      qr/"darkroom_limit" directive is duplicate/ ],
    [ 'darkroom_limit_status 200; #BAD',
      qr/value must be between 400 and 599/ ],
    [ 'darkroom_limit_status 600; #BAD',
      qr/value must be between 400 and 599/ ],
    [ 'darkroom_limit_headers maybe; #BAD',
      qr/invalid value "maybe"/ ],
    [ 'darkroom_limit_log_level debug; #BAD',
      qr/invalid value "debug"/ ],
    [ "server { $zone #BAD\n}",
      qr/"darkroom_limit_zone" directive is not allowed here/ ],
);

for my $case (@cases) {
    my ($lines, $want) = @$case;

    my $conf = "%%MAIN%%\nevents {}\nhttp {\n    %%HTTP%%\n"
               . join('', map { "    $_\n" } split /\n/, $lines)
               . "}\n";

    $t->conf($conf);

    my @text = split /\n/, $t->read_file('nginx.conf');
    my ($line) = grep { $text[$_ - 1] =~ /#BAD/ } 1 .. @text;

    my ($ok, $out) = $t->test_conf;
    my $name = (split /\n/, $lines)[-1];
    $name =~ s/\s*#BAD//;

    ok(!$ok, "fails: $name");
    like($out, $want, "message: $name");
    like($out, qr/in \Q${\ $t->dir}\E\/nginx\.conf:$line\b/,
         "file and line $line: $name");
}

# nginx itself resolves variables after parsing, without a line

$t->conf("%%MAIN%%\nevents {}\nhttp {\n    %%HTTP%%\n"
         . "    darkroom_limit_zone name=z key=\$no_such_var rate=1r/s"
         . " size=1m;\n}\n");
my ($bad, $msg) = $t->test_conf;
ok(!$bad, 'unknown variable in the key fails');
like($msg, qr/unknown "no_such_var" variable/, 'and names it');

# and a valid configuration passes

$t->conf(<<'EOF');
%%MAIN%%
events {}
http {
    %%HTTP%%
    darkroom_limit_zone name=ok key=$binary_remote_addr$http_authorization
                        rate=100r/m burst=20 size=10m;
    darkroom_limit_zone name=hourly key=$cookie_session rate=5r/h size=64k;
    darkroom_limit_status 503;
    darkroom_limit_headers off;
    darkroom_limit_log_level notice;
    server {
        darkroom_limit zone=ok cost=21 dry_run;
        location / {
            darkroom_limit zone=ok;
            darkroom_limit zone=hourly;
        }
    }
}
EOF

my ($ok, $out) = $t->test_conf;
ok($ok, 'a valid configuration passes') or diag($out);

done_testing();
