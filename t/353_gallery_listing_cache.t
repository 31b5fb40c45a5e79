#!/usr/bin/perl

# darkroom: the gallery listing (GET <slug>) from darkroom_public_cache
# (issue 17).  The first request takes the query path and keeps its
# answer; the next ones come from the zone (the debug log says which),
# byte for byte what the query path answers (but for the visitor, a
# per-visitor part).  Without the cookie, with a forged one or a proofing
# visitor's, the query path answers as always; two visitors each see
# themselves, a visitor's listing is never kept.  A photo added or
# removed, a favourite, a price sheet's price, a product's price, the
# title and the expiry, a revocation and a rotation are seen within a
# bounded wait (the gallery zone's interval), and then the listing comes
# from the zone again.  After a reload the old configuration's entry is
# not served.  Listing links of one gallery do not open another's
# photos.

use strict;
use warnings;

use lib 't/lib';
use Darkroom::Test qw(wait_for);
use Darkroom::ProofTest;
use JSON::PP;
use Test::More;

my $t = Darkroom::Test->new;
proof_start($t, http => 'darkroom_public_cache zone=public:4m;
    error_log %%DIR%%/debug.log debug;');

$t->sql(<<'SQL');
INSERT INTO products (id, name, kind, print_width_mm, print_height_mm)
VALUES ('print-a4', 'A4 print', 'print', 297, 210);
INSERT INTO product_prices (product_id, currency, amount)
VALUES ('print-a4', 'GBP', 2500);
INSERT INTO price_sheets (id, name) VALUES ('sheet', 'Sheet');
INSERT INTO price_sheet_items (sheet_id, product_id, position)
VALUES ('sheet', 'print-a4', 1);
INSERT INTO price_sheet_prices (sheet_id, product_id, currency, amount)
VALUES ('sheet', 'print-a4', 'GBP', 2200);
SQL

my @p = gallery('wed', 3, password => 'open sesame', currency => 'GBP',
                price_sheet_id => 'sheet',
                expires_at => '2099-01-01T00:00:00Z');
my @q = gallery('other', 2);

my $r = api(POST => 'wed/unlock', { password => 'open sesame' });
is($r->{status}, 200, 'unlocked') or diag $r->{content};
my $cookie = cookie_value($r, 'darkroom_gallery');
ok($cookie, 'a gallery cookie');

sub cached {
    my $log = $t->read_file('debug.log') // '';
    my $n = () = $log =~ /listing of wed from the cache/g;
    return $n;
}

# a listing, and whether it came from the zone
sub get {
    my ($c) = @_;
    my $before = cached();
    my $res = api(GET => 'wed', undef, $c // $cookie);
    return ($res, cached() > $before);
}

# an answer's bytes with the visitor (a per-visitor part) as no visitor's
sub no_visitor {
    my ($content) = @_;
    (my $c = $content) =~ s/"visitor":\{[^{}]*\}/"visitor":null/;
    return $c;
}

# --- the first from the query path, then from the zone ----------------------

my ($r1, $z1) = get();
is($r1->{status}, 200, 'listing 200') or diag $r1->{content};
ok(!$z1, 'the first listing takes the query path');
is(scalar @{$r1->{json}{photos}}, 3, 'three photos');

my $x = wait_for(sub { my @x = get(); $x[1] ? \@x : undef }, 10);
my ($r2, $z2) = $x ? @$x : ({ content => '', headers => {} }, 0);
ok($z2, 'then the listing comes from the zone');
is($r2->{content}, $r1->{content}, 'byte for byte the query path\'s answer');
is($r2->{headers}{'content-type'}, $r1->{headers}{'content-type'},
    'the same Content-Type');
is($r2->{headers}{'cache-control'}, 'no-store', 'Cache-Control: no-store');
is($r2->{headers}{'set-cookie'}, undef, 'no cookie set');

# the query path now: a visitor's listing (not kept), less the visitor
my ($rv, $ada) = visitor('wed', 'Ada', 'ada@example.com', $cookie);
is($rv->{status}, 200, 'Ada signs in') or diag $rv->{content};
my ($q, $z);
my $same = wait_for(sub {
    ($q) = get("$cookie; $ada");
    ($z) = get();
    $q->{content} ne $z->{content}
        && no_visitor($q->{content}) eq $z->{content};
}, 100);    # the links' expiry moves at a bucket's edge: try again
ok($same, 'the zone\'s listing is byte for byte the query path\'s, but'
          . ' for the visitor') or diag "$q->{content}\n$z->{content}";

# links: each expires on a minute's edge, with proof_ttl (1h) at least
my ($exp) = $r2->{json}{photos}[0]{proof} =~ /[?&]exp=(\d+)/;
ok($exp && $exp % 60 == 0, 'a proof link expires on a bucket\'s edge');
ok($exp - time >= 3600 && $exp - time <= 3600 + 95,
    'between proof_ttl and proof_ttl + 90 s ahead');

# --- who gets the query path's answer --------------------------------------

for my $c (['no cookie', ''], ['a forged cookie',
           do { (my $f = $cookie) =~ s/.$/$& eq 'A' ? 'B' : 'A'/e; $f }])
{
    my ($res, $z) = get($c->[1]);
    is($res->{status}, 401, "$c->[0]: 401 as always");
    is($res->{json}{error}{code}, 'locked', "$c->[0]: code locked");
    ok(!$z, "$c->[0]: not from the zone");
}

my ($rt, $tom) = visitor('wed', 'Tom', 'tom@example.com', $cookie);
my ($la, $za) = get("$cookie; $ada");
my ($lt, $zt) = get("$cookie; $tom");
is($la->{json}{gallery}{visitor}{email}, 'ada@example.com', 'Ada sees Ada');
is($lt->{json}{gallery}{visitor}{email}, 'tom@example.com', 'Tom sees Tom');
ok(!$za && !$zt, 'a visitor\'s listing takes the query path');
my ($ln, $zn) = get();
is($ln->{json}{gallery}{visitor}, undef, 'no visitor: null, never Ada\'s');
ok($zn, '... from the zone');

# --- changes, seen within the bound -----------------------------------------

sub seen {
    my ($what, $check) = @_;
    my $ok = wait_for(sub {
        my ($res) = get();
        $res->{status} == 200 && $check->($res->{json});
    }, 15);
    ok($ok, "$what: seen");
    ok(wait_for(sub { (get())[1] }, 15), "$what: from the zone again");
}

$r = admin(POST => 'wed/photos', { photos => [{ original => 'wed/IMG_9.jpg',
    bytes => 5, crc32 => 5, proof => 'wed/proofs/IMG_9.jpg',
    name => 'IMG_9.jpg' }] });
is($r->{status}, 200, 'a photo added') or diag $r->{content};
seen('a photo added', sub { @{$_[0]{photos}} == 4 });

$t->sql("DELETE FROM gallery_photos WHERE id = :'p1'", $p[0]);
seen('a photo removed', sub { @{$_[0]{photos}} == 3
                              && !grep { $_->{id} == $p[0] }
                                       @{$_[0]{photos}} });

is(api(POST => 'wed/favourites', { photo => 0 + $p[1],
       favourite => JSON::PP::true },
       $cookie)->{status}, 200, 'a favourite');
sub photo {
    my ($j, $id) = @_;
    my ($ph) = grep { $_->{id} == $id } @{$j->{photos}};
    return $ph // {};
}
seen('a favourite', sub { photo($_[0], $p[1])->{favourite} });

sub a4 {
    my ($j) = @_;
    my ($p) = grep { $_->{id} eq 'print-a4' }
              @{ $j->{gallery}{shop}{products} // [] };
    return $p ? $p->{unit_amount} : -1;
}
is(a4($r1->{json}), 2200, 'the sheet\'s price');
$t->sql("UPDATE price_sheet_prices SET amount = 2300");
seen('a price sheet\'s price', sub { a4($_[0]) == 2300 });

$t->sql("DELETE FROM price_sheet_prices");
seen('the catalogue\'s price under it', sub { a4($_[0]) == 2500 });
$t->sql("UPDATE product_prices SET amount = 2600");
seen('a catalogue price', sub { a4($_[0]) == 2600 });

$t->sql("UPDATE galleries SET title = 'Wedding day' WHERE slug = 'wed'");
seen('the title', sub { $_[0]{gallery}{title} eq 'Wedding day' });

$t->sql("UPDATE galleries SET expires_at = '2098-01-01T00:00:00Z'"
        . " WHERE slug = 'wed'");
seen('the expiry', sub {
    $_[0]{gallery}{expires_at} eq '2098-01-01T00:00:00Z' });

$t->sql("UPDATE galleries SET expires_at = now() - interval '1 second'"
        . " WHERE slug = 'wed'");
ok(wait_for(sub { api(GET => 'wed', undef, $cookie)->{status} == 410 }, 15),
    'expired: 410 within the bound');
is(api(GET => 'wed', undef, $cookie)->{json}{error}{code}, 'gallery_expired',
   '... gallery_expired');
$t->sql("UPDATE galleries SET expires_at = NULL WHERE slug = 'wed'");
seen('no expiry', sub { !defined $_[0]{gallery}{expires_at} });

# a reload: the new configuration builds its own listing first
$t->reload;
my ($rr, $zr) = get();
is($rr->{status}, 200, 'after a reload: 200');
ok(!$zr, 'after a reload: the query path first, not the old entry');
ok(wait_for(sub { (get())[1] }, 15), 'after a reload: from the zone again');

# links of one gallery do not open another's files
my ($cur) = get();
my $link = photo($cur->{json}, $p[1])->{proof} // '';
(my $cross = $link) =~ s{/wed/}{/other/};
isnt($t->http(GET => $cross)->{status}, 200,
     'a wed link does not open other\'s proof');
is($t->http(GET => $link)->{status}, 200, 'the link itself opens');

# rotation ends the old cookie; revocation refuses
$r = admin(POST => 'wed/rotate');
is($r->{status}, 200, 'rotated') or diag $r->{content};
ok(wait_for(sub { api(GET => 'wed', undef, $cookie)->{status} == 401 }, 15),
   'rotated: the old cookie is refused within the bound');

$r = api(POST => 'wed/unlock', { password => 'open sesame' });
$cookie = cookie_value($r, 'darkroom_gallery');
seen('the new generation', sub { 1 });

$r = admin(POST => 'wed/revoke');
is($r->{status}, 200, 'revoked') or diag $r->{content};
ok(wait_for(sub { api(GET => 'wed', undef, $cookie)->{status} == 410 }, 15),
   'revoked: 410 within the bound');
is(api(GET => 'wed', undef, $cookie)->{json}{error}{code}, 'gallery_revoked',
   '... gallery_revoked');

# the other gallery, without a password, was never disturbed
is(api(GET => 'other')->{status}, 200, 'another gallery lists');

unlike($t->error_log, qr/\[(alert|crit|emerg)\]/, 'no alerts');

done_testing;
