#!/usr/bin/perl
# Two nginx nodes on one PostgreSQL, as behind a load balancer
# (docs/deploy.md): the gallery files on one shared mount (a directory both
# nodes serve), a link signed by either works on both, a gallery revoked
# or rotated through one node stops on the other within its
# darkroom_gallery_zone interval (each node has its own zone and refreshes
# it from the database), and a catalogue change reaches the public cache
# of both nodes.  Jobs run exactly once across nodes: t/004.

use strict;
use warnings;

use lib 't/lib';
use Darkroom::Test qw(wait_for);
use Darkroom::Stripe ();
use Compress::Zlib qw(crc32);
use JSON::PP;
use Test::More;
use Time::HiRes qw(time);

my $a = Darkroom::Test->new;
my $b = Darkroom::Test->new;
$b->{db} = $a->db;    # one database for both nodes

# the shared mount: both nodes' gallery root
my $shared = $a->dir . '/shared';
for my $g (qw(one two)) {
    $a->write_file("shared/$g/a.jpg", "photo of $g\n");
}

my $conf = <<'EOF';
%%MAIN%%
events {}
http {
    %%HTTP%%
    darkroom_db "%%DB%%";
    darkroom_jobs off;
    darkroom_admin_token_file %%DIR%%/admin_token;
    darkroom_currency GBP;
    darkroom_public_cache zone=public:1m;

    darkroom_gallery_zone 1m interval=1s;
    darkroom_media_keys %%DIR%%/keys;
    darkroom_gallery_media /media/;
    darkroom_gallery_root SHARED;
    darkroom_gallery_cookie_key_file %%DIR%%/cookie_key;

    server {
        listen 127.0.0.1:%%PORT0%%;

        location /media/ {
            darkroom_media on;
            alias SHARED/;
        }
        location /api/galleries/ { darkroom_gallery; }
        location /api/admin/galleries/ { darkroom_gallery_admin; }
        location = /api/catalogue { darkroom_catalogue; }
    }
}
EOF
$conf =~ s/SHARED/$shared/g;

# the same secrets on every node: a link or cookie made by one is good on
# the other
for my $n ($a, $b) {
    $n->write_file('keys', "m1:media-key-0123456789abcdef\n");
    $n->write_file('cookie_key', "cookie-key-0123456789abcdef\n");
    $n->write_file('admin_token', "gallery-admin-token\n");
    $n->conf($conf, workers => 2);
}

for my $g (qw(one two)) {
    my $id = $a->sql_value("INSERT INTO galleries (slug) VALUES (:'p1') "
        . "RETURNING id", $g);
    $a->sql("INSERT INTO gallery_photos (gallery_id, name, original_path, "
        . "bytes, crc32) VALUES ($id, 'a.jpg', '$g/a.jpg', "
        . length("photo of $g\n") . ', ' . crc32("photo of $g\n") . ')');
}
Darkroom::Stripe::demo_catalogue($a);

$a->start;
$b->start;

sub link_of {
    my ($node, $g) = @_;
    my $r = $node->http(POST => "/api/galleries/$g/download",
        { content => '{"all":true}' });
    return $r->{json}{files}[0]{url};
}

sub admin {
    my ($node, $path) = @_;
    return $node->http(POST => "/api/admin/galleries/$path",
        { headers => { Authorization => 'Bearer gallery-admin-token' } });
}

my %url = (one => link_of($a, 'one'), two => link_of($b, 'two'));
ok($url{one} && $url{two}, 'links signed by node A and node B');
for my $g (qw(one two)) {
    for my $n ([A => $a], [B => $b]) {
        ok(wait_for(sub { $n->[1]->http(GET => $url{$g})->{status} == 200 },
            30), "the link of $g works on node $n->[0]");
    }
}
is($b->http(GET => $url{one})->{content}, "photo of one\n",
    'from the shared mount');

# --- revoked through A: B stops it within its own interval -----------------

is(admin($a, 'one/revoke')->{status}, 200, 'gallery one revoked on node A');
my $t0 = time;
ok(wait_for(sub { $b->http(GET => $url{one})->{status} == 410 }, 30),
    sprintf('node B answers 410 after %.2f s (interval 1 s + a query)',
        time - $t0));
is($b->http(GET => $url{one})->{json}{error}{code}, 'gallery_revoked',
    'gallery_revoked on node B');
ok(wait_for(sub { $a->http(GET => $url{one})->{status} == 410 }, 30),
    'and on node A');
is($b->http(GET => $url{two})->{status}, 200, 'other galleries unaffected');

# --- rotated through B: A stops the old link ---------------------------------

is(admin($b, 'two/rotate')->{json}{gallery}{generation}, 2,
    'gallery two rotated on node B');
$t0 = time;
ok(wait_for(sub { $a->http(GET => $url{two})->{status} == 403 }, 30),
    sprintf('node A refuses the old link after %.2f s', time - $t0));
my $new = link_of($a, 'two');
like($new, qr/&g=\d+\.2&/, 'node A signs generation 2');
ok(wait_for(sub { $b->http(GET => $new)->{status} == 200 }, 30),
    'which node B serves');

# --- the public cache: one per node, both follow the database ----------------

sub catalogue_has {
    my ($node, $title) = @_;
    my $r = $node->http(GET => '/api/catalogue');
    return ($r->{content} // '') =~ /\Q$title\E/;
}
ok(catalogue_has($a, 'Harbour at Dawn') && catalogue_has($b,
    'Harbour at Dawn'), 'the catalogue on both nodes');
$a->sql("UPDATE photos SET title = 'Harbour at Dusk'"
    . " WHERE id = 'harbour-dawn'");
for my $n ([A => $a], [B => $b]) {
    ok(wait_for(sub { catalogue_has($n->[1], 'Harbour at Dusk') }, 30),
        "node $n->[0]'s cache has the change");
}

done_testing();
