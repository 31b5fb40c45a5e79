#!/usr/bin/perl
# Under TLS the session cookie is Secure as well (HttpOnly, SameSite=Strict,
# Path=/admin/); without TLS it cannot be (the browser would drop it).

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Darkroom::Test;
use Darkroom::Console qw(console_start account PASSWORD);

my $t = Darkroom::Test->new;
my $dir = $t->dir;
system('openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1',
    '-subj', '/CN=127.0.0.1', '-keyout', "$dir/key.pem", '-out', "$dir/cert.pem",
    '-loglevel', 'error') == 0 || system('openssl', 'req', '-x509', '-newkey',
    'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-keyout',
    "$dir/key.pem", '-out', "$dir/cert.pem") == 0 or plan skip_all => 'no openssl';

console_start($t, http => <<"CONF");
    server {
        listen 127.0.0.1:%%PORT1%% ssl;
        ssl_certificate $dir/cert.pem;
        ssl_certificate_key $dir/key.pem;
        location /admin/console/api/ { darkroom_console_api; }
    }
CONF
account($t, 'owner@example.com', 'owner');

my $port = $t->port(1);
my $out = `curl -sk -o /dev/null -D - -H 'Content-Type: application/json' -d '{"email":"owner\@example.com","password":"${\ PASSWORD}"}' https://127.0.0.1:$port/admin/console/api/login`;
like($out, qr/^HTTP\/1\.1 200/, 'login over TLS');
my ($cookie) = $out =~ /^Set-Cookie: (.*?)\r?$/mi;
like($cookie, qr/^darkroom_admin=[A-Za-z0-9_-]{43}; Path=\/admin\/; HttpOnly; SameSite=Strict; Secure$/,
    'Secure, HttpOnly, SameSite=Strict');

$t->stop;
done_testing;
