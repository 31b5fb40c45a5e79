#!/usr/bin/perl
# darkroom_lab_gallery_asset_url (issue 14): a URL, needing
# darkroom_lab_asset_keys to sign the links of gallery originals.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Darkroom::Test;

my $t = Darkroom::Test->new;
$t->write_file('asset.keys', "k1:lab-asset-key-0123456789abcdef\n");

sub conf_with {
    my ($lines) = @_;
    $t->conf(<<"EOF");
%%MAIN%%
events {}
http {
    %%HTTP%%
    $lines
    server { listen 127.0.0.1:%%PORT0%%; }
}
EOF
    return $t->test_conf;
}

my ($ok, $out) = conf_with('darkroom_lab_gallery_asset_url'
    . ' https://shop.example/gallery-originals;'
    . ' darkroom_lab_asset_keys %%DIR%%/asset.keys;');
ok($ok, 'with the asset keys: accepted') or diag $out;

($ok, $out) = conf_with('darkroom_lab_gallery_asset_url'
    . ' https://shop.example/gallery-originals;');
ok(!$ok, 'without darkroom_lab_asset_keys: refused');
like($out, qr/"darkroom_lab_gallery_asset_url" requires "darkroom_lab_asset_keys"/,
    'saying what it needs');

($ok, $out) = conf_with('darkroom_lab_gallery_asset_url ftp://shop.example/g;'
    . ' darkroom_lab_asset_keys %%DIR%%/asset.keys;');
ok(!$ok, 'not an http(s) URL: refused');

($ok, $out) = conf_with('darkroom_lab_gallery_asset_url https://a.example/g;'
    . ' darkroom_lab_gallery_asset_url https://b.example/g;'
    . ' darkroom_lab_asset_keys %%DIR%%/asset.keys;');
ok(!$ok, 'twice: refused');

done_testing;
