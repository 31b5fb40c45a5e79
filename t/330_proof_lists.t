#!/usr/bin/perl

# darkroom: proofing, visitors and their lists.  A visitor gives a name and
# an email (the same email again, in any case, is the same visitor) and
# gets a signed visitor cookie; two visitors of one gallery keep their own
# lists, another's list is 404; a submitted list is locked (409) and its
# submission writes the photographer's email job in the same transaction.
# Forged, other-gallery and rotated visitor cookies are refused; a
# password-protected gallery needs its gallery cookie for all of it.

use strict;
use warnings;

use lib 't/lib';
use Darkroom::Test;
use Darkroom::ProofTest;
use JSON::PP;
use Test::More;

my $t = Darkroom::Test->new;
proof_start($t);

my @p = gallery('wed', 4);
my @q = gallery('other', 2);

# --- the listing without and with a visitor ---------------------------------

my $r = api(GET => 'wed');
is($r->{status}, 200, 'the listing') or diag $r->{content};
is_deeply($r->{json}{gallery}{selection},
    { limit => undef, extra_photo_amount => undef, currency => undef },
    'gallery.selection: no limit');
is($r->{json}{gallery}{visitor}, undef, 'gallery.visitor: null');

is(api(GET => 'wed/lists')->{status}, 401, 'lists need a visitor');
is(api(GET => 'wed/lists')->{json}{error}{code}, 'visitor_required',
    '... visitor_required');

# --- visitors ----------------------------------------------------------------

for my $bad ({ name => 'Ada' }, { email => 'ada@example.com' },
             { name => '', email => 'ada@example.com' },
             { name => 'Ada', email => 'not an email' },
             { name => 'x' x 101, email => 'ada@example.com' },
             { name => 7, email => 'ada@example.com' })
{
    $r = api(POST => 'wed/visitor', $bad);
    is($r->{status}, 400, 'visitor refused: ' . encode_json($bad));
}
is(api(POST => 'wed/visitor', 'nope')->{status}, 400, 'not JSON: 400');
is(api(GET => 'wed/visitor')->{status}, 405, 'GET visitor: 405');
is($t->sql_value('SELECT count(*) FROM gallery_visitors'), 0,
    'nothing was made of bad input');

my ($ra, $ada) = visitor('wed', 'Ada', 'Ada@Example.com');
is($ra->{status}, 200, 'Ada signs in') or diag $ra->{content};
ok($ada, 'a visitor cookie');
my ($sc) = grep { /^darkroom_visitor=/ } cookies_of($ra);
like($sc, qr{^darkroom_visitor=\d+\.\d+\.\d+\.\d+\.[A-Za-z0-9_-]{43}; },
    'cookie: gallery, generation, visitor, expiry, HMAC');
like($sc, qr{Path=/api/galleries/wed;}, 'path: the gallery in the API');
like($sc, qr{HttpOnly}, 'HttpOnly');
like($sc, qr{SameSite=Lax}, 'SameSite=Lax');
my $ada_id = $ra->{json}{visitor}{id};
is($ra->{json}{visitor}{name}, 'Ada', 'the visitor answered');

my ($ra2) = visitor('wed', 'Ada again', 'ada@EXAMPLE.com');
is($ra2->{json}{visitor}{id}, $ada_id, 'the same email is the same visitor');

my ($rt, $tom) = visitor('wed', 'Tom', 'tom@example.com');
my $tom_id = $rt->{json}{visitor}{id};
isnt($tom_id, $ada_id, 'Tom is another visitor');

$r = api(GET => 'wed', undef, $ada);
is($r->{json}{gallery}{visitor}{id}, $ada_id, 'the listing names Ada');
is($r->{json}{gallery}{visitor}{downloads}, 0, '... no downloads');

# --- lists kept apart ---------------------------------------------------------

$r = api(GET => 'wed/lists', undef, $ada);
is($r->{status}, 200, 'Ada\'s lists') or diag $r->{content};
is(scalar @{$r->{json}{lists}}, 1, 'one list made on demand');
is($r->{json}{lists}[0]{name}, 'Favourites', '"Favourites"');
my $ada_fav = $r->{json}{lists}[0]{id};
ok($r->{json}{selection}, 'the selection settings with the lists');

$r = api(POST => "wed/lists/$ada_fav/photos",
         { photo => 0 + $p[0], note => 'the first dance, a bit brighter' },
         $ada);
is($r->{status}, 200, 'Ada adds a photo with a note') or diag $r->{content};
is($r->{json}{list}{photos}[0]{note}, 'the first dance, a bit brighter',
    '... the note');
$r = api(POST => "wed/lists/$ada_fav/photos", { photo => 0 + $p[1] }, $ada);
is(scalar @{$r->{json}{list}{photos}}, 2, 'and another');
$r = api(POST => "wed/lists/$ada_fav/photos",
         { photo => 0 + $p[0], note => 'brighter' }, $ada);
is(scalar @{$r->{json}{list}{photos}}, 2, 'adding again sets the note');
is($r->{json}{list}{photos}[0]{note}, 'brighter', '... to the new one');

$r = api(GET => 'wed/lists', undef, $tom);
my $tom_fav = $r->{json}{lists}[0]{id};
isnt($tom_fav, $ada_fav, 'Tom has his own Favourites');
is_deeply($r->{json}{lists}[0]{photos}, [], '... empty: Ada\'s are hers');

for my $path ("wed/lists/$ada_fav/photos", "wed/lists/$ada_fav/remove",
              "wed/lists/$ada_fav/submit")
{
    $r = api(POST => $path, { photo => 0 + $p[2] }, $tom);
    is($r->{status}, 404, "Tom cannot touch Ada's list: $path");
}
is($t->sql_value(q{SELECT count(*) FROM gallery_list_photos
                    WHERE list_id = :'p1'}, $ada_fav), 2,
    'Ada\'s list unchanged');

$r = api(POST => "wed/lists/$ada_fav/photos", { photo => 0 + $q[0] }, $ada);
is($r->{status}, 404, 'a photo of another gallery: 404');
is($r->{json}{error}{code}, 'unknown_photo', '... unknown_photo');
for my $bad ({}, { photo => 'x' }, { photo => 1.5 }, { photo => -1 },
             { photo => 0 + $p[2], note => 'n' x 2001 },
             { photo => 0 + $p[2], note => 5 })
{
    is(api(POST => "wed/lists/$ada_fav/photos", $bad, $ada)->{status}, 400,
       'add refused: ' . encode_json($bad));
}
is(api(POST => 'wed/lists/x1/photos', { photo => 0 + $p[2] }, $ada)
       ->{status}, 404, 'a list id that is not a number: 404');

# named lists
$r = api(POST => 'wed/lists', { name => 'Album' }, $ada);
is($r->{status}, 200, 'a named list') or diag $r->{content};
my $album = $r->{json}{list}{id};
$r = api(POST => 'wed/lists', { name => 'Album' }, $ada);
is($r->{status}, 409, 'the same name again: 409');
is($r->{json}{error}{code}, 'list_exists', '... list_exists');
is(api(POST => 'wed/lists', { name => 'Album' }, $tom)->{status}, 200,
    'Tom may have an "Album" too');
is(api(POST => 'wed/lists', {}, $ada)->{status}, 400, 'no name: 400');

$r = api(POST => "wed/lists/$ada_fav/remove", { photo => 0 + $p[1] }, $ada);
is($r->{status}, 200, 'remove');
is(scalar @{$r->{json}{list}{photos}}, 1, '... one left');

# --- submit: the list locks, the email job is written --------------------------

is(api(POST => "wed/lists/$album/submit", {}, $ada)->{status}, 409,
    'an empty list cannot be submitted');

$r = api(POST => "wed/lists/$ada_fav/submit", {}, $ada);
is($r->{status}, 200, 'Ada submits her Favourites') or diag $r->{content};
ok($r->{json}{list}{submitted_at}, '... submitted_at set');

my ($job) = $t->sql(q{SELECT payload->>'template', payload->>'list_id',
                             payload->>'visitor_email', payload->>'files'
                        FROM jobs WHERE kind = 'email'});
is_deeply($job, ['selection_submitted', $ada_fav, 'Ada@Example.com',
                 'IMG_1.jpg'], 'the email job for the photographer');
my $ctx = $t->sql_value(q{SELECT email_context('selection_submitted',
                                 payload) FROM jobs WHERE kind = 'email'});
my $c = decode_json($ctx);
is($c->{kind}, 'shop', 'it goes to the shop\'s alert address');
is($c->{gallery}{slug}, 'wed', 'with the gallery');

for my $req ([ "wed/lists/$ada_fav/photos", { photo => 0 + $p[3] } ],
             [ "wed/lists/$ada_fav/photos", { photo => 0 + $p[0],
                                              note => 'changed' } ],
             [ "wed/lists/$ada_fav/remove", { photo => 0 + $p[0] } ],
             [ "wed/lists/$ada_fav/submit", {} ])
{
    $r = api(POST => $req->[0], $req->[1], $ada);
    is($r->{status}, 409, "submitted: $req->[0] 409");
    is($r->{json}{error}{code}, 'list_submitted', '... list_submitted');
}
is($t->sql_value(q{SELECT note FROM gallery_list_photos
                    WHERE list_id = :'p1'}, $ada_fav), 'brighter',
    'the submitted list did not change');
is($t->sql_value(q{SELECT count(*) FROM jobs WHERE kind = 'email'}), 1,
    'one email job');

# --- refused cookies ----------------------------------------------------------

my ($v) = $ada =~ /=(.*)/;
my @parts = split /\./, $v;
my %forged = (
    'another visitor id' => join('.', @parts[0, 1], $tom_id, @parts[3, 4]),
    'a later expiry'     => join('.', @parts[0 .. 2], $parts[3] + 1,
                                 $parts[4]),
    'a changed MAC'      => join('.', @parts[0 .. 3],
                                 ($parts[4] =~ /^A/ ? 'B' : 'A')
                                 . substr($parts[4], 1)),
    'a leading zero'     => join('.', @parts[0, 1], "0$parts[2]",
                                 @parts[3, 4]),
    'a gallery cookie\'s form' => join('.', @parts[0, 1, 3, 4]),
);
for my $k (sort keys %forged) {
    $r = api(GET => 'wed/lists', undef, "darkroom_visitor=$forged{$k}");
    is($r->{status}, 401, "visitor cookie with $k: 401");
}
is(api(GET => 'wed/lists', undef, "darkroom_gallery=$v")->{status}, 401,
    'the value under the gallery cookie\'s name: 401');
is(api(GET => 'wed/lists', undef, "a=b; darkroom_visitor=junk; $ada")
       ->{status}, 200, 'the right cookie among others');

# another gallery: Ada's cookie of "wed" means nothing in "other"
is(api(GET => 'other/lists', undef, $ada)->{status}, 401,
    'a visitor cookie of another gallery: 401');
is(api(GET => 'other', undef, $ada)->{json}{gallery}{visitor}, undef,
    '... and no visitor in its listing');

# logout clears it
$r = api(POST => 'wed/visitor/logout', undef, $ada);
is($r->{status}, 200, 'visitor logout');
like(join(' ', cookies_of($r)), qr/darkroom_visitor=; .*Max-Age=0/,
    '... clears the cookie');

# rotation ends visitor cookies (the visitor stays)
is(admin(POST => 'wed/rotate')->{status}, 200, 'the gallery is rotated');
is(api(GET => 'wed/lists', undef, $ada)->{status}, 401,
    'a rotated gallery\'s visitor cookie: 401');
my ($rb, $ada2) = visitor('wed', 'Ada', 'ada@example.com');
is($rb->{json}{visitor}{id}, $ada_id, 'signing in again: the same visitor');
$r = api(GET => 'wed/lists', undef, $ada2);
is(scalar @{$r->{json}{lists}}, 2, '... with her lists');

# --- a password gallery needs its cookie first ---------------------------------

gallery('locked', 1, password => undef);
is(admin(POST => 'locked', { password => 'open sesame' })->{status}, 200,
    'a gallery with a password');
$r = api(POST => 'locked/visitor', { name => 'Eve', email => 'e@example.com' });
is($r->{status}, 401, 'visitor without the gallery cookie: 401');
is($r->{json}{error}{code}, 'locked', '... locked');
$r = api(POST => 'locked/unlock', { password => 'open sesame' });
my $gc = cookie_value($r, 'darkroom_gallery');
my ($re, $eve) = visitor('locked', 'Eve', 'e@example.com', $gc);
is($re->{status}, 200, 'with it: a visitor') or diag $re->{content};
is(api(GET => 'locked/lists', undef, $eve)->{status}, 401,
    'the visitor cookie alone does not open a locked gallery');
is(api(GET => 'locked/lists', undef, "$gc; $eve")->{status}, 200,
    'both cookies: the lists');

$t->stop;
ok($t->check_sanitizer, 'no sanitizer report');
done_testing;
