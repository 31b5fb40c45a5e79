#!/usr/bin/perl

# darkroom: proofing in the gallery admin API.  GET <slug>/visitors shows
# every visitor with their lists; a list exports as the file names for
# Lightroom's filename filter (text/plain, without extensions, ", ") and
# as CSV (file,note,visitor,email) where a cell that a spreadsheet would
# take for a formula (= + - @) starts with a '.

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
gallery('other', 1);
$t->sql(q{UPDATE gallery_photos SET name = 'DSC_0042.final.NEF'
           WHERE id = :'p1'}, $p[3]);

my (undef, $ada) = visitor('wed', '=HYPERLINK("http://evil")', 'ada@example.com');
my (undef, $tom) = visitor('wed', 'Tom, "the groom"', 'tom@example.com');
my $al = api(GET => 'wed/lists', undef, $ada)->{json}{lists}[0]{id};
my $tl = api(GET => 'wed/lists', undef, $tom)->{json}{lists}[0]{id};

api(POST => "wed/lists/$al/photos", { photo => 0 + $p[1], note => '+1 brighter' },
    $ada);
api(POST => "wed/lists/$al/photos", { photo => 0 + $p[3], note => "-crop\nleft" },
    $ada);
api(POST => "wed/lists/$al/photos", { photo => 0 + $p[0], note => '@mum' }, $ada);
api(POST => "wed/lists/$tl/photos", { photo => 0 + $p[2] }, $tom);

# --- visitors ----------------------------------------------------------------

my $r = admin(GET => 'wed/visitors');
is($r->{status}, 200, 'the visitors') or diag $r->{content};
my @v = @{$r->{json}{visitors}};
is(scalar @v, 2, 'two');
is($v[0]{email}, 'ada@example.com', 'Ada');
is(scalar @{$v[0]{lists}[0]{photos}}, 3, '... her list of 3');
is($v[1]{lists}[0]{photos}[0]{name}, 'IMG_3.jpg', 'Tom\'s list');
is_deeply($v[0]{download_log}, [], 'no downloads yet');
is(admin(GET => 'nope/visitors')->{status}, 404, 'no such gallery: 404');
is($t->http(GET => '/api/admin/galleries/wed/visitors')->{status}, 401,
    'the admin token is needed');

# --- Lightroom ----------------------------------------------------------------

$r = admin(GET => "wed/lists/$al/export?format=lightroom");
is($r->{status}, 200, 'Lightroom export') or diag $r->{content};
like($r->{headers}{'content-type'}, qr{^text/plain}, 'text/plain');
is($r->{content}, "IMG_2, DSC_0042.final, IMG_1\n",
    'file names without extension, in the order chosen');
is(admin(GET => "wed/lists/$al/export")->{content}, $r->{content},
    'lightroom is the default');

# --- CSV ----------------------------------------------------------------------

$r = admin(GET => "wed/lists/$al/export?format=csv");
is($r->{status}, 200, 'CSV export');
like($r->{headers}{'content-type'}, qr{^text/csv}, 'text/csv');
my @rows = split /\r\n/, $r->{content};
is($rows[0], 'file,note,visitor,email', 'the header');
is($rows[1], q{IMG_2.jpg,'+1 brighter,"'=HYPERLINK(""http://evil"")",}
             . 'ada@example.com', 'formulas are made text, quotes doubled');
is($rows[2] . "\r\n" . $rows[3],
   qq{DSC_0042.final.NEF,"'-crop\nleft","'=HYPERLINK(""http://evil"")",}
   . "ada\@example.com\r\n" . q{IMG_1.jpg,'@mum,"'=HYPERLINK(""http://evil"")",}
   . 'ada@example.com', 'a newline is quoted, @ guarded');
$r = admin(GET => "wed/lists/$tl/export?format=csv");
is((split /\r\n/, $r->{content})[1],
   'IMG_3.jpg,,"Tom, ""the groom""",tom@example.com',
   'commas and quotes are quoted, nothing else changes');

# --- refusals -----------------------------------------------------------------

$r = admin(GET => "wed/lists/$al/export?format=xlsx");
is($r->{status}, 400, 'an unknown format: 400');
is($r->{json}{error}{code}, 'invalid_format', '... invalid_format');
is(admin(GET => "other/lists/$al/export?format=csv")->{status}, 404,
    'a list of another gallery: 404');
is(admin(GET => 'wed/lists/999999/export?format=csv')->{status}, 404,
    'no such list: 404');
is(admin(GET => 'wed/lists/abc/export?format=csv')->{status}, 404,
    'not an id: 404');
is(admin(POST => "wed/lists/$al/export?format=csv", {})->{status}, 404,
    'POST: no such resource');

$t->stop;
ok($t->check_sanitizer, 'no sanitizer report');
done_testing;
