#!/usr/bin/perl

# darkroom: proofing, downloads per visitor.  A gallery with
# visitor_download_limit needs a visitor to download (401
# visitor_required); each photo a download gives counts, and one that
# would pass the limit is 403 download_limit (nothing counted).  Parallel
# downloads cannot pass it together.  The download log records the
# visitor, for signed links and for the ZIP, and the admin sees it.

use strict;
use warnings;

use lib 't/lib';
use Darkroom::Test;
use Darkroom::ProofTest;
use HTTP::Tiny;
use JSON::PP;
use POSIX ();
use Test::More;

my $t = Darkroom::Test->new;
proof_start($t, threads => 8);

my @p = gallery('dl', 6, visitor_download_limit => 3);
my @q = gallery('open', 2);

my $r = api(POST => 'dl/download', { photos => [0 + $p[0]] });
is($r->{status}, 401, 'a limited gallery: no visitor, no download');
is($r->{json}{error}{code}, 'visitor_required', '... visitor_required');

my (undef, $ada) = visitor('dl', 'Ada', 'ada@example.com');
my $ada_id = api(GET => 'dl', undef, $ada)->{json}{gallery}{visitor}{id};
is(api(GET => 'dl', undef, $ada)->{json}{gallery}{visitor}{download_limit},
   3, 'the listing shows the limit');

$r = api(POST => 'dl/download', { photos => [0 + $p[0], 0 + $p[1]] }, $ada);
is($r->{status}, 200, 'Ada downloads 2') or diag $r->{content};
is(scalar @{$r->{json}{files}}, 2, '... two links');
my $url = $r->{json}{files}[0]{url};
my $zip = $r->{json}{zip}{url};
like($url, qr/[?&]g=\d+\.\d+\.$ada_id(&|$)/, 'the link carries the visitor');
is(api(GET => 'dl', undef, $ada)->{json}{gallery}{visitor}{downloads}, 2,
   '... counted');

$r = api(POST => 'dl/download', { photos => [0 + $p[2], 0 + $p[3]] }, $ada);
is($r->{status}, 403, '2 more would pass 3: 403');
is($r->{json}{error}{code}, 'download_limit', '... download_limit');
like($r->{json}{error}{message}, qr/1 left/, '... says what is left');
is(api(GET => 'dl', undef, $ada)->{json}{gallery}{visitor}{downloads}, 2,
   '... nothing counted');
is(api(POST => 'dl/download', { all => JSON::PP::true }, $ada)->{status},
   403, 'the whole gallery: 403');
is(api(POST => 'dl/download', { photos => [0 + $p[2]] }, $ada)->{status},
   200, 'one more: the third');
is(api(POST => 'dl/download', { photos => [0 + $p[4]] }, $ada)->{status},
   403, 'then none');
is(api(POST => 'dl/download', { photos => [0 + $q[0]] }, $ada)->{status},
   404, 'a photo of another gallery: 404 as before');

# Tom's count is his own; parallel downloads do not pass it together
my (undef, $tom) = visitor('dl', 'Tom', 'tom@example.com');
my $port = $t->port(0);
my @kids;
for my $i (0 .. 9) {
    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if ($pid == 0) {
        my $res = HTTP::Tiny->new(timeout => 30)->request('POST',
            "http://127.0.0.1:$port/api/galleries/dl/download",
            { headers => { Cookie => $tom },
              content => encode_json({ photos => [0 + $p[$i % 6]] }) });
        POSIX::_exit($res->{status} == 200 ? 0
                     : $res->{status} == 403 ? 1 : 2);
    }
    push @kids, $pid;
}
my %rc;
for (@kids) {
    waitpid($_, 0);
    $rc{$? >> 8}++;
}
is($rc{0} // 0, 3, 'Tom: 10 downloads in parallel, 3 given');
is($rc{1} // 0, 7, '... 7 refused 403');
is($t->sql_value(q{SELECT downloads FROM gallery_visitors
                    WHERE email = 'tom@example.com'}), 3, '... counted 3');

# a gallery without a limit: no visitor needed, a visitor's are counted
is(api(POST => 'open/download', { photos => [0 + $q[0]] })->{status}, 200,
   'no limit: no visitor needed');
my (undef, $eve) = visitor('open', 'Eve', 'eve@example.com');
is(api(POST => 'open/download', { all => JSON::PP::true }, $eve)->{status},
   200, 'a visitor downloads');
is(api(GET => 'open', undef, $eve)->{json}{gallery}{visitor}{downloads}, 2,
   '... and is counted');

# --- the download log names the visitor -----------------------------------------

(my $path = $url) =~ s{^https?://[^/]+}{};
$r = $t->http(GET => $path);
is($r->{status}, 200, 'the signed link serves the original')
    or diag $r->{content};
(my $zpath = $zip) =~ s{^https?://[^/]+}{};
$r = $t->http(GET => $zpath);
is($r->{status}, 200, 'the ZIP') or diag $r->{content};

ok(Darkroom::Test::wait_for(sub { $t->sql_value(q{SELECT count(*) FROM gallery_downloads
                                   WHERE visitor_id IS NOT NULL}) >= 2 }, 10),
   'the downloads are logged with the visitor');
is($t->sql_value(q{SELECT count(DISTINCT visitor_id) FROM gallery_downloads
                    WHERE status = 200}), 1, '... Ada\'s');
is($t->sql_value(q{SELECT visitor_id FROM gallery_downloads
                    WHERE path LIKE '%/zip/%'}), $ada_id, 'the ZIP\'s too');

$r = admin(GET => 'dl/visitors');
my ($va) = grep { $_->{id} == $ada_id } @{$r->{json}{visitors}};
is(scalar @{$va->{download_log}}, 2, 'the admin sees Ada\'s downloads');
is($va->{downloads}, 3, '... and her count');
$r = admin(GET => 'dl/downloads');
ok((grep { ($_->{visitor_id} // 0) == $ada_id } @{$r->{json}{downloads}}),
   'the gallery\'s download log names the visitor');

# a forged visitor in a link's g is refused by its signature
(my $forged = $path) =~ s/(g=\d+\.\d+\.)$ada_id/${1}999/;
isnt($t->http(GET => $forged)->{status}, 200,
     'a link with another visitor in g: refused');

$t->stop;
ok($t->check_sanitizer, 'no sanitizer report');
done_testing;
