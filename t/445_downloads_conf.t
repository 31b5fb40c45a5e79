#!/usr/bin/perl
# Download configuration: nginx -t refuses a download location without
# keys to check its links, an alias, a URL without keys, and a lifetime or
# limit out of range; a complete one passes.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Darkroom::Test;

my $t = Darkroom::Test->new;
$t->write_file('dlkeys', "dk1:download-key-one-0123456789abcdef\n");

sub try_conf {
    my ($http, $loc) = @_;
    $t->conf(<<"CONF");
%%MAIN%%
events {}
http {
    %%HTTP%%
    darkroom_db "%%DB%%";
$http
    server {
        listen 127.0.0.1:%%PORT0%%;
        location /download/ {
$loc
        }
    }
}
CONF
    return $t->test_conf;
}

my $keys = "darkroom_download_url http://127.0.0.1/download;\n"
    . "darkroom_download_keys %%DIR%%/dlkeys;\n";
my $loc = "darkroom_download; root %%DIR%%;";

my ($ok, $out) = try_conf($keys . "darkroom_download_ttl 7d;\n"
    . "darkroom_download_limit 3;\n", $loc);
ok($ok, 'a complete configuration passes') or diag($out);

my %bad = (
    'no keys'         => ['', $loc,
                          qr/"darkroom_download" requires "darkroom_download_keys"/],
    'alias'           => [$keys, "alias %%DIR%%/; darkroom_download;",
                          qr/not an "alias"/],
    'url, no keys'    => ["darkroom_download_url http://127.0.0.1/download;", '',
                          qr/go together/],
    'keys, no url'    => ["darkroom_download_keys %%DIR%%/dlkeys;", '',
                          qr/go together/],
    'a query in url'  => ["darkroom_download_url http://x/d?a=1;", '',
                          qr/a base URL has no query/],
    'ttl too short'   => [$keys . "darkroom_download_ttl 10s;", '',
                          qr/"darkroom_download_ttl" must be between/],
    'limit zero'      => [$keys . "darkroom_download_limit 0;", '',
                          qr/"darkroom_download_limit" must be between/],
    'twice'           => [$keys, "darkroom_download; darkroom_download;",
                          qr/conflicts with another content handler/],
);

for my $name (sort keys %bad) {
    my ($http, $l, $re) = @{$bad{$name}};
    ($ok, $out) = try_conf($http, $l);
    ok(!$ok, "$name: refused");
    like($out, $re, "$name: says why") or diag($out);
}

done_testing;
