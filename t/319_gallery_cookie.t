#!/usr/bin/perl

# darkroom: the gallery cookie is parsed strictly and every one is looked
# at.  The unit test of the pure parser (t/unit/gallery_cookie_test.c),
# then over HTTP: the right cookie after many others (in one Cookie header
# or several) unlocks; an expiry written another way (+, a leading 0 or
# space) is refused even though it means the same number.

use strict;
use warnings;

use lib 't/lib';
use Darkroom::Test;
use File::Basename qw(dirname);
use File::Spec;
use JSON::PP;
use Test::More;

my $root = File::Spec->rel2abs(dirname(__FILE__) . '/..');
my $t = Darkroom::Test->new;
my $dir = $t->dir;
my $cc = $ENV{CC} || 'cc';

my $out = `$cc -std=c99 -D_DEFAULT_SOURCE -Wall -Wextra -Werror -O2 -I$root/src/core -I$root/src/gallery -o $dir/cookie_test $root/t/unit/gallery_cookie_test.c $root/src/gallery/ngx_http_darkroom_gallery_cookie.c 2>&1`;
is($?, 0, 'the unit test compiles') or diag $out;

my $plan;
for (`$dir/cookie_test`) {
    chomp;
    if (/^(not )?ok \d+ - (.*)$/) {
        ok(!$1, "unit: $2");
    } elsif (/^1\.\.(\d+)$/) {
        $plan = $1;
    } elsif (/^#/) {
        diag $_;
    }
}
ok(defined $plan && $? == 0, 'the unit test exits 0 with a plan');

$t->write_file('keys', "m1:media-key-0123456789abcdef\n");
$t->write_file('cookie_key', "cookie-key-0123456789abcdef\n");
$t->write_file('admin_token', "gallery-admin-token\n");

$t->conf(<<'EOF');
%%MAIN%%
thread_pool dr threads=4;
events {}
http {
    %%HTTP%%
    darkroom_db "%%DB%%";
    darkroom_db_pool dr;
    darkroom_jobs off;
    darkroom_admin_token_file %%DIR%%/admin_token;

    darkroom_media_keys %%DIR%%/keys;
    darkroom_gallery_media /media/;
    darkroom_gallery_root %%DIR%%/files;
    darkroom_gallery_cookie_key_file %%DIR%%/cookie_key;

    server {
        listen 127.0.0.1:%%PORT0%%;

        location /api/galleries/ {
            darkroom_gallery;
        }

        location /api/admin/galleries/ {
            darkroom_gallery_admin;
        }
    }
}
EOF

$t->start;

my $r = $t->http(POST => '/api/admin/galleries/', {
    headers => { Authorization => 'Bearer gallery-admin-token' },
    content => encode_json({ slug => 'c', password => 'open sesame' }) });
is($r->{status}, 200, 'gallery') or diag $r->{content};

$r = $t->http(POST => '/api/galleries/c/unlock',
    { content => encode_json({ password => 'open sesame' }) });
is($r->{status}, 200, 'unlocked') or diag $r->{content};
my ($cv) = ($r->{headers}{'set-cookie'} // '') =~ /^darkroom_gallery=([^;]+)/;
my ($gid, $gen, $exp, $sig) = split /\./, $cv // '';

sub get {
    my ($cookie) = @_;
    return $t->http(GET => '/api/galleries/c',
                    { headers => { Cookie => $cookie } })->{status};
}

is(get("darkroom_gallery=$cv"), 200, 'the cookie');

my $junk = join '; ', map { "darkroom_gallery=$gid.$gen.$exp.junk$_" } 1 .. 6;
is(get("$junk; darkroom_gallery=$cv"), 200,
    'the right cookie after six others');
is(get([ (map { "darkroom_gallery=old$_" } 1 .. 5), "darkroom_gallery=$cv" ]),
    200, 'in the sixth Cookie header');
is(get("$junk; other=1"), 401, 'only wrong ones: 401');

for my $case ([ '+', "+$exp" ], [ 'a leading 0', "0$exp" ],
              [ 'a leading space', " $exp" ], [ 'a trailing space', "$exp " ])
{
    is(get("darkroom_gallery=$gid.$gen.$case->[1].$sig"), 401,
        "an expiry with $case->[0]: 401");
}
is(get("darkroom_gallery=0$gid.$gen.$exp.$sig"), 401,
    'an id with a leading 0: 401');
is(get("darkroom_gallery=$gid.0$gen.$exp.$sig"), 401,
    'a generation with a leading 0: 401');

done_testing();
