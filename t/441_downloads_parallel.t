#!/usr/bin/perl
# The download count is exact under parallel downloads: 20 clients at
# once against a limit of 5 get exactly 5 files and 15 clear refusals,
# across two workers.  With the database down a download is answered 503
# with Retry-After, and nothing is counted.  A Postgres cluster of its
# own, so stopping it disturbs no other test.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use HTTP::Tiny;
use POSIX ();
use JSON::PP;
use Darkroom::Test;
use Darkroom::Downloads qw(download_shop paid_digital_order);

my $t = Darkroom::Test->new;
my $pg = $t->dir . '/pg';
my $pgctl = $t->top . '/tools/darkroom-pg';

system($pgctl, 'start', $pg, 'shop') == 0 or BAIL_OUT('cannot start Postgres');
chomp(my $db = `$pgctl conninfo $pg shop`);
system($t->top . "/tools/darkroom-migrate '$db' >/dev/null") == 0
    or BAIL_OUT('migrations failed');
END { system($pgctl, 'stop', $pg) if $pg }
$t->{db} = $db;

download_shop($t, limit => 5, workers => 2);
$t->start;

my $o = paid_digital_order($t, ['moor-rain', 'digital', 1]);
is($o->{result}, 'paid', 'a paid download');
my $r = $t->http(GET => "/api/orders/$o->{token}");
my $url = $r->{json}{downloads}[0]{url};
ok($url, 'its link');

# --- 20 at once against a limit of 5 ------------------------------------------
my $n = 20;
my @pids;
pipe(my $go_r, my $go_w) or die;
for my $i (1 .. $n) {
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        close $go_w;
        <$go_r>;                       # all start together
        my $res = HTTP::Tiny->new(keep_alive => 0, timeout => 30)->get($url);
        my $code = $res->{status} . ':' . ($res->{status} == 200
            ? length($res->{content})
            : eval { decode_json($res->{content})->{error}{code} } // '');
        $t->write_file("par-$i", $code);
        POSIX::_exit(0);              # no END blocks, no cleanup here
    }
    push @pids, $pid;
}
close $go_r;
close $go_w;                           # releases them
waitpid $_, 0 for @pids;

my %seen;
$seen{ $t->read_file("par-$_") }++ for 1 .. $n;
is($seen{'200:3004'} // 0, 5, 'exactly 5 downloads succeed, whole')
    or diag explain \%seen;
is($seen{'410:download_limit_reached'} // 0, 15,
    'the other 15 are told the limit is reached') or diag explain \%seen;
is($t->sql_value("SELECT used FROM download_grants WHERE order_id = :'p1'",
    $o->{id}), 5, 'the grant counts 5');

# --- the database down ------------------------------------------------------------
my $o2 = paid_digital_order($t, ['harbour-dawn', 'digital', 1]);
$r = $t->http(GET => "/api/orders/$o2->{token}");
my $url2 = $r->{json}{downloads}[0]{url};
system($pgctl, 'stop', $pg);

my $ua = HTTP::Tiny->new(keep_alive => 0, timeout => 30);
$r = $ua->get($url2);
is($r->{status}, 503, 'with the database down: 503');
ok($r->{headers}{'retry-after'}, 'with Retry-After');

$r = $ua->get($url2 =~ s/sig=(.)/'sig=' . ($1 eq 'A' ? 'B' : 'A')/er);
is($r->{status}, 403, 'a bad signature is refused without the database');

system($pgctl, 'start', $pg, 'shop') == 0 or BAIL_OUT('cannot restart Postgres');
is($t->sql_value("SELECT used FROM download_grants WHERE order_id = :'p1'",
    $o2->{id}), 0, 'nothing was counted');

$r = $ua->get($url2);
is($r->{status}, 200, 'the database back, the link downloads');
like($r->{content}, qr/^HARBOUR/, 'the file');

ok($t->check_sanitizer, 'no sanitizer reports');
done_testing;
