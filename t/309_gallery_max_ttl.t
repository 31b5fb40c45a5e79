#!/usr/bin/perl
# Gallery links are signed media links: darkroom_gallery_proof_ttl and
# darkroom_gallery_download_ttl longer than every darkroom_media_max_ttl
# would make every proof or download link refused the moment it is made,
# so nginx -t fails, naming the directive and its file:line.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Darkroom::Test;

sub conf_check {
    my ($what, %o) = @_;
    my $c = Darkroom::Test->new;
    $c->write_file('keys', "k1:max-ttl-key-0123456789abcdef\n");
    $c->write_file('cookie_key', "cookie-key-0123456789abcdef\n");
    my $http = $o{http} // '';
    my $loc = $o{loc} // '';
    my $media = $o{media} // '';
    $c->conf(<<"EOF");
%%MAIN%%
events {}
http {
    %%HTTP%%
    darkroom_db "%%DB%%";
    darkroom_jobs off;
    darkroom_media_keys %%DIR%%/keys;
    darkroom_gallery_media /media/;
    darkroom_gallery_root %%DIR%%/files;
    darkroom_gallery_cookie_key_file %%DIR%%/cookie_key;
    $http
    server {
        listen 127.0.0.1:%%PORT0%%;
        location /media/ {
            darkroom_media on;
            $media
        }
        location /api/galleries/ {
            darkroom_gallery;
            $loc
        }
    }
}
EOF
    my ($ok, $err) = $c->test_conf;
    if (my $name = $o{fails}) {
        # where the lifetime was set, or where its default applies
        my @lines = split /\n/, $c->read_file('nginx.conf');
        my ($line) = grep { $lines[$_ - 1] =~ /\Q$name\E / } 1 .. @lines;
        ($line) = grep { $lines[$_ - 1] =~ /darkroom_gallery;/ } 1 .. @lines
            unless $line;
        ok(!$ok, "nginx -t fails: $what");
        like($err, qr/"\Q$name\E".*darkroom_media_max_ttl.*nginx\.conf:$line\b/s,
            "... saying why, with file:line ($line)");
    } else {
        ok($ok, "nginx -t passes: $what") or diag $err;
    }
}

conf_check('the default gallery lifetimes');
conf_check('proof links of 31 days, the bound 30 days (the default)',
    loc => 'darkroom_gallery_proof_ttl 31d;',
    fails => 'darkroom_gallery_proof_ttl');
conf_check('download links of 60 days set for the whole http block',
    http => 'darkroom_gallery_download_ttl 60d;',
    fails => 'darkroom_gallery_download_ttl');
conf_check('proof links of 31 days where the media bound is 90 days',
    loc => 'darkroom_gallery_proof_ttl 31d;',
    media => 'darkroom_media_max_ttl 90d;');
conf_check('download links of 30 days, at the bound',
    loc => 'darkroom_gallery_download_ttl 30d;');
conf_check('the default hour over a bound of ten minutes',
    media => 'darkroom_media_max_ttl 10m;',
    fails => 'darkroom_gallery_proof_ttl');

done_testing;
