#!/usr/bin/perl

# The demo secrets `make run` writes (tools/darkroom-run) are mode 0600 in a
# 0700 directory, as the docs say, including ones an older version left
# 0644; they are made once and kept.  nginx still starts on them: the
# master reads secret files while it reads the configuration, before
# workers (nobody, unless the checkout needs root) exist.

use strict;
use warnings;

use lib 't/lib';
use Darkroom::Test;
use Test::More;

my $t = Darkroom::Test->new;
my $top = $t->top;
my $var = $t->dir . '/var';
mkdir $var;
mkdir "$var/secrets";

# one secret left world-readable by an older darkroom-run
$t->write_file('var/secrets/admin_token', "old-admin-token-0123456789abcdef\n",
    0644);

my $out = `$top/tools/darkroom-run secrets $var 2>&1`;
is($?, 0, 'darkroom-run secrets succeeds') or diag $out;

# every secret the run config names
my $conf = $t->read_file("$top/conf/darkroom-run.conf");
my %names = map { $_ => 1 } $conf =~ m{\@VAR\@/secrets/(\w+)}g;
ok(scalar(keys %names) >= 5, 'the run config names its secret files');

for my $name (sort keys %names) {
    my $f = "$var/secrets/$name";
    ok(-s $f, "$name written");
    my $mode = (stat $f)[2] & 07777;
    is(sprintf('%04o', $mode), '0600', "$name is mode 0600");
}
is(sprintf('%04o', (stat "$var/secrets")[2] & 07777), '0700',
    'the secrets directory is mode 0700');
is($t->read_file("$var/secrets/admin_token"),
    "old-admin-token-0123456789abcdef\n", 'an existing secret is kept');

my %before = map { $_ => $t->read_file("$var/secrets/$_") } keys %names;
`$top/tools/darkroom-run secrets $var 2>&1`;
is_deeply({ map { $_ => $t->read_file("$var/secrets/$_") } keys %names },
    \%before, 'running again changes no secret');

# nginx -t (the master, as whoever runs make run) reads them all; workers
# as darkroom-run would run them
my $module = $ENV{DARKROOM_MODULE}
    || "$top/var/modules/ngx_http_darkroom_module.so";
my $user = '';
if ($> == 0 && system('runuser', '-u', 'nobody', '--', 'test', '-r',
        "$top/www/index.html") != 0)
{
    $user = 'user root;';
}
mkdir "$var/run";
for ($conf) {
    s/\@MODULE\@/$module/g;
    s/\@USER\@/$user/g;
    s/\@VAR\@/$var/g;
    s/\@TOP\@/$top/g;
    s/\@PORT\@/$t->port(0)/ge;
    s/\@STRIPE_PORT\@/$t->port(1)/ge;
    s/\@MAIL_PORT\@/$t->port(2)/ge;
    s/\@LAB_PORT\@/$t->port(3)/ge;
    s/\@DB\@/dbname=x/g;
}
mkdir "$var/$_" for qw(galleries printroot images);
$t->write_file('var/run/nginx.conf', $conf);
my $test = `$t->{nginx} -t -p $var/run/ -c $var/run/nginx.conf 2>&1`;
ok($? == 0, 'the run config passes nginx -t on 0600 secrets') or diag $test;

done_testing;
