#!/usr/bin/perl
# The configurations we ship stay true: the annotated example for a real
# site and the one `make run` renders both pass "nginx -t" with this build.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Darkroom::Test;

my $t = Darkroom::Test->new;
my $dir = $t->dir;
my $top = $t->top;
my $module = $ENV{DARKROOM_MODULE} || "$top/var/modules/ngx_http_darkroom_module.so";
$t->write_file("secret", "k1:placeholder-secret-value-0123456789\n");

sub check {
    my ($name, $text) = @_;
    $t->write_file('nginx.conf', $text);
    my $out = `$t->{nginx} -t -p $dir/ -c $dir/nginx.conf 2>&1`;
    ok($? == 0, "$name passes nginx -t") or diag $out;
}

my $example = $t->read_file("$top/conf/darkroom.conf.example");
ok(length $example, 'example config present');
for ($example) {
    s{load_module modules/\S+;}{load_module $module;};
    s{darkroom_mail_templates \S+;}{darkroom_mail_templates $top/conf/mail;};
    s{/etc/darkroom/[\w.-]+}{$dir/secret}g;
    # nginx -t makes a temp path's last folder only
    s{/srv/shop/galleries/\.uploads}{$dir/uploads};
    my $listen = 'listen 127.0.0.1:' . $t->port(0) . ';';
    s{listen 443 ssl http2;}{$listen};
    s{^\s*ssl_certificate.*\n}{}mg;
    s{worker_processes auto;}{worker_processes 1; pid $dir/nginx.pid; error_log $dir/error.log;};
}
check('conf/darkroom.conf.example', $example);

mkdir "$dir/run";
mkdir "$dir/galleries";   # darkroom-run makes it (the uploads' temp path)
my $run = $t->read_file("$top/conf/darkroom-run.conf");
for ($run) {
    s/\@MODULE\@/$module/g;
    s/\@USER\@//g;
    s/\@VAR\@/$dir/g;
    s/\@TOP\@/$top/g;
    s/\@PORT\@/$t->port(0)/ge;
    s/\@STRIPE_PORT\@/$t->port(1)/ge;
    s/\@MAIL_PORT\@/$t->port(2)/ge;
    s/\@LAB_PORT\@/$t->port(3)/ge;
    s/\@DB\@/dbname=x/g;
    s{$dir/secrets/\w+}{$dir/secret}g;
}
check('conf/darkroom-run.conf', $run);

done_testing;
