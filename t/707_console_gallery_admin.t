#!/usr/bin/perl
# The gallery admin API takes the console's credentials too: a staff
# session creates a gallery (with its CSRF token; without it 403 and no
# gallery), a read key lists but cannot create; each change audited.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Darkroom::Test;
use Darkroom::Console qw(console_start account login api);

my $t = Darkroom::Test->new;
$t->write_file('keys', "m1:media-key-0123456789abcdef\n");
$t->write_file('cookie_key', "cookie-key-0123456789abcdef\n");
mkdir $t->dir . '/files';
my $d = $t->dir;
console_start($t, http => <<"CONF", server => "location /admin/api/galleries/ { darkroom_gallery_admin; }\n");
    darkroom_gallery_zone 1m interval=200ms;
    darkroom_media_keys $d/keys;
    darkroom_gallery_media /media/;
    darkroom_gallery_root $d/files;
    darkroom_gallery_cookie_key_file $d/cookie_key;
CONF
account($t, 'owner@example.com', 'owner');
account($t, 'staff@example.com', 'staff');

my $l = login($t, 'staff@example.com');
my $s = { sid => $l->{sid}, csrf => $l->{csrf} };

my $r = api($t, { sid => $s->{sid} }, POST => '/admin/api/galleries/', { slug => 'wed', title => 'W' });
is($r->{status}, 403, 'staff without the CSRF token: 403');
is($t->sql_value("SELECT count(*) FROM galleries"), 0, 'no gallery');
$r = api($t, $s, POST => '/admin/api/galleries/', { slug => 'wed', title => 'W' });
ok($r->{status} == 200 || $r->{status} == 201, "staff creates a gallery ($r->{status})");
is($t->sql_value("SELECT count(*) FROM galleries"), 1, 'one gallery');
is($t->sql_value("SELECT actor || ' ' || method || ' ' || path FROM console_audit"
    . " WHERE path LIKE '/admin/api/galleries/%'"), 'staff@example.com POST /admin/api/galleries/',
    'audited');

my $o = login($t, 'owner@example.com');
my $key = api($t, { sid => $o->{sid}, csrf => $o->{csrf} }, POST => 'keys',
    { name => 'ro', scopes => ['read'] })->{json}{secret};
is(api($t, { bearer => $key }, GET => '/admin/api/galleries/')->{status}, 200, 'read key lists');
is(api($t, { bearer => $key }, POST => '/admin/api/galleries/', { slug => 'x' })->{status},
    403, 'read key cannot create');
is($t->sql_value("SELECT count(*) FROM galleries"), 1, 'still one gallery');

$t->stop;
ok($t->check_sanitizer, 'no sanitizer report');
done_testing;
