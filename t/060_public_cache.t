#!/usr/bin/perl
# Public answers from shared memory (issue 17, darkroom_public_cache): the
# catalogue is answered from the zone with a strong ETag, a change of a
# price is seen within a bounded poll, the ETag follows the bytes, a
# matching If-None-Match (alone, in a list, "*", weak) is a 304, gzip
# works on it, a currency the zone does not hold and a config without
# the zone take the query path, bad arguments fail "nginx -t" at their
# line, and with PostgreSQL stopped the last catalogue is still served.
# Uses a Postgres cluster of its own so that stopping it disturbs no
# other test.

use strict;
use warnings;
use lib 't/lib';

use IO::Uncompress::Gunzip qw(gunzip $GunzipError);
use JSON::PP;
use Test::More;
use Darkroom::Test qw(wait_for);

my $t = Darkroom::Test->new;
my $pg = $t->dir . '/pg';
my $pgctl = $t->top . '/tools/darkroom-pg';

system($pgctl, 'start', $pg, 'public') == 0
    or BAIL_OUT('cannot start Postgres');
chomp(my $db = `$pgctl conninfo $pg public`);
system($t->top . "/tools/darkroom-migrate '$db' >/dev/null") == 0
    or BAIL_OUT('migrations failed');
END { system($pgctl, 'stop', $pg) if $pg }

# the test's own cluster for every statement
$t->{db} = $db;

my $cat = {
    products => [
        { id => 'a4', name => 'A4 print', kind => 'print',
          prices => { GBP => 2500, EUR => 2900 } },
        { id => 'dl', name => 'Download', kind => 'digital',
          prices => { GBP => 900 } } ],
    photos => [
        { id => 'sea', title => 'Sea', products => ['a4', 'dl'] } ] };
my $file = $t->write_file('cat.json',
    JSON::PP->new->utf8->canonical->encode($cat));
my $out = `"${\ $t->top}/tools/darkroom-catalogue" "$db" "$file" 2>&1`;
is($?, 0, 'catalogue loaded') or diag $out;

my $conf = <<"CONF";
%%MAIN%%
events {}
http {
    %%HTTP%%
    darkroom_db "$db";
    darkroom_db_timeout 2s;
    darkroom_currency GBP;
    %%CACHE%%
    gzip on;
    gzip_types application/json;
    gzip_min_length 20;
    server {
        listen 127.0.0.1:%%PORT0%%;
        location = /api/catalogue { darkroom_catalogue; }
        location /api/bookings/ { darkroom_bookings; }
    }
}
CONF

sub with_cache {
    my ($cache) = @_;
    (my $c = $conf) =~ s/%%CACHE%%/$cache/;
    return $c;
}

# --- bad arguments: nginx -t names the file and line -------------------------
for my $bad (['darkroom_public_cache interval=1s;', qr/must have a "zone"/],
             ['darkroom_public_cache zone=p;', qr/invalid zone "zone=p"/],
             ['darkroom_public_cache zone=p:1k;', qr/invalid zone size "1k"/],
             ['darkroom_public_cache zone=p:1m interval=5ms;',
              qr/invalid interval "5ms"/],
             ['darkroom_public_cache zone=p:1m interval=soon;',
              qr/invalid interval "soon"/],
             ['darkroom_public_cache zone=p:1m every=1s;',
              qr/invalid parameter "every=1s"/],
             ["darkroom_public_cache zone=p:1m;\n"
              . "    darkroom_public_cache zone=q:1m;", qr/is duplicate/])
{
    $t->conf(with_cache($bad->[0]));
    my ($ok, $msg) = $t->test_conf;
    ok(!$ok, "nginx -t refuses: $bad->[0]");
    like($msg, qr/$bad->[1].*nginx\.conf:\d+/, 'with the file and line')
        or diag $msg;
}

# --- the zone ---------------------------------------------------------------
$t->conf(with_cache('darkroom_public_cache zone=public:1m;'), workers => 2);
my ($ok, $msg) = $t->test_conf;
ok($ok, 'the default interval is accepted') or diag $msg;
$t->start;

sub catalogue { $t->http(GET => '/api/catalogue' . ($_[0] // ''), $_[1]) }
sub price {
    my ($r, $product, $cur) = @_;
    my ($p) = grep { $_->{id} eq $product } @{$r->{json}{products} || []};
    return $p ? $p->{prices}{$cur} : undef;
}

# the first build comes soon after the start
my $r = wait_for(sub { my $r = catalogue(); $r->{headers}{etag} ? $r : 0 }, 10);
ok($r, 'the catalogue is answered from the zone, with an ETag');
my $etag = $r->{headers}{etag};
like($etag, qr/^"[0-9a-f]{32}"$/, 'a strong ETag');
is($r->{status}, 200, 'status 200');
is($r->{headers}{'cache-control'}, 'no-cache', 'clients revalidate');
like($r->{headers}{'content-type'}, qr{^application/json}, 'JSON');
is($r->{content}, $t->sql_value("SELECT catalogue_json('GBP')"),
    'the same bytes as the query');
is(price($r, 'a4', 'GBP'), 2500, 'the price');
is(catalogue()->{headers}{etag}, $etag, 'the same ETag while nothing changes');

# --- conditional requests (nginx's not-modified filter) ---------------------
for my $inm ($etag, qq{"nope", $etag}, '*', "W/$etag") {
    $r = catalogue('', { headers => { 'If-None-Match' => $inm } });
    is($r->{status}, 304, "304 for If-None-Match: $inm");
    is($r->{content} // '', '', 'no body');
}
is($r->{headers}{etag}, $etag, 'a 304 carries the ETag');
$r = catalogue('', { headers => { 'If-None-Match' => '"0123"' } });
is($r->{status}, 200, '200 for an If-None-Match that does not match');
ok(length $r->{content}, 'with the body');

$r = $t->http(HEAD => '/api/catalogue');
is($r->{status}, 200, 'HEAD');
is($r->{headers}{etag}, $etag, 'HEAD has the ETag');
is($r->{content} // '', '', 'HEAD has no body');
is($t->http(POST => '/api/catalogue', { content => 'x' })->{status}, 405,
    'POST is not allowed');

# --- gzip -------------------------------------------------------------------
$r = catalogue('', { headers => { 'Accept-Encoding' => 'gzip' } });
is($r->{headers}{'content-encoding'}, 'gzip', 'gzip applies');
my $plain;
gunzip(\$r->{content} => \$plain) or diag $GunzipError;
is($plain, catalogue()->{content}, 'the same document once unzipped');
is($r->{headers}{etag}, "W/$etag", 'gzip weakens the ETag');
$r = catalogue('', { headers => { 'Accept-Encoding' => 'gzip',
                                  'If-None-Match' => "W/$etag" } });
is($r->{status}, 304, 'and the weak one revalidates');

# --- other currencies -------------------------------------------------------
$r = catalogue('?currency=eur');
ok($r->{headers}{etag}, 'a currency of the catalogue is in the zone');
is(price($r, 'a4', 'EUR'), 2900, 'in that currency');
isnt($r->{headers}{etag}, $etag, 'its own ETag');
my $eur = $r->{headers}{etag};
$r = catalogue('?currency=JPY');
is($r->{status}, 200, 'a currency the zone does not hold');
ok(!$r->{headers}{etag}, 'is the query');
is($r->{json}{currency}, 'JPY', 'in that currency');
is(catalogue('?currency=12')->{status}, 400, 'a bad currency is still 400');

# --- a change is seen within a bounded poll; the ETag follows the bytes -----
my $first = $etag;
my $v0 = $t->sql_value("SELECT version FROM public_versions"
    . " WHERE name = 'catalogue'");
$t->sql("UPDATE product_prices SET amount = 2600"
    . " WHERE product_id = 'a4' AND currency = 'GBP'");
$r = wait_for(sub { my $r = catalogue();
                    (price($r, 'a4', 'GBP') // 0) == 2600 ? $r : 0 }, 2);
ok($r, 'a new price is answered within 2 s of its commit');
isnt($r->{headers}{etag}, $first, 'with a new ETag');
isnt(catalogue('?currency=EUR')->{headers}{etag}, $eur,
    'the other currency, whose document lists every price, too');

# a statement that changes nothing bumps the version all the same, then
# the price goes back: the same bytes as at first, the same ETag
$t->sql("UPDATE products SET name = name");
$t->sql("UPDATE product_prices SET amount = 2500"
    . " WHERE product_id = 'a4' AND currency = 'GBP'");
$r = wait_for(sub { my $r = catalogue();
                    (price($r, 'a4', 'GBP') // 0) == 2500 ? $r : 0 }, 2);
ok($r, 'the old price is back');
is($r->{headers}{etag}, $first, 'the same bytes, the first ETag again');
is(catalogue('?currency=EUR')->{headers}{etag}, $eur, 'for EUR too');
is($t->sql_value("SELECT version FROM public_versions"
    . " WHERE name = 'catalogue'"), $v0 + 3,
    'each of the three statements bumped the version');

# a product gone from the shop is gone from the zone's answer
$t->sql("UPDATE products SET active = false WHERE id = 'dl'");
ok(wait_for(sub { !defined price(catalogue(), 'dl', 'GBP') }, 2),
    'a deactivated product leaves the catalogue');

# --- the session types of bookings, the same machinery ---------------------
# in one transaction: the types appear together, as an owner's change would
system('psql', '-X', '-q', '-1', '-o', '/dev/null', '-v', 'ON_ERROR_STOP=1',
       '-d', $db, '-f', $t->top . '/conf/demo-bookings.sql') == 0
    or die "demo bookings failed\n";
sub types { $t->http(GET => '/api/bookings/types', $_[0]) }
sub type_price {
    my ($r, $id) = @_;
    my ($ty) = grep { $_->{id} eq $id } @{$r->{json}{types} || []};
    return $ty ? $ty->{price} : 0;
}
$r = wait_for(sub { my $r = types(); type_price($r, 'portrait') ? $r : 0 }, 2);
ok($r && $r->{headers}{etag}, 'the session types come from the zone');
is($r->{content}, $t->sql_value('SELECT bookings_types_json()'),
    'the same bytes as the query');
is(types({ headers => { 'If-None-Match' => $r->{headers}{etag} } })
    ->{status}, 304, 'and revalidate');
$t->sql("UPDATE session_types SET price = 16000 WHERE id = 'portrait'");
ok(wait_for(sub { type_price(types(), 'portrait') == 16000 }, 2),
    'a new price of a session type is seen within 2 s');
is($t->http(GET => '/api/bookings/nothing')->{status}, 404,
    'other routes are as they were');

# --- a config without the zone behaves as before ----------------------------
my $t2 = Darkroom::Test->new;
$t2->{db} = $db;
$t2->conf(with_cache(''));
$t2->start;
$r = $t2->http(GET => '/api/catalogue');
is($r->{status}, 200, 'no zone: 200');
ok(!$r->{headers}{etag}, 'no ETag: the query path');
is($r->{content}, catalogue()->{content}, 'the same document');
$r = $t2->http(GET => '/api/bookings/types');
ok($r->{status} == 200 && !$r->{headers}{etag}, 'the types too');
is($r->{content}, types()->{content}, 'the same document');
$t2->stop;

# --- reload: the zone keeps its entries, the new workers keep them fresh ----
$etag = catalogue()->{headers}{etag};
$t->reload;
$r = catalogue();
ok($r->{headers}{etag}, 'after a reload the catalogue is still in the zone');
$t->sql("UPDATE product_prices SET amount = 2400"
    . " WHERE product_id = 'a4' AND currency = 'GBP'");
$r = wait_for(sub { my $r = catalogue();
                    (price($r, 'a4', 'GBP') // 0) == 2400 ? $r : 0 }, 2);
ok($r && $r->{headers}{etag}, 'and a change after it is seen within 2 s');

# --- a build that fails: the last entry stays, the failure is logged once ---
$etag = catalogue()->{headers}{etag};
$t->sql('ALTER FUNCTION catalogue_public(text) RENAME TO catalogue_public_x');
$t->sql("UPDATE product_prices SET amount = 2300"
    . " WHERE product_id = 'a4' AND currency = 'GBP'");
ok(wait_for(sub { $t->error_log =~ /build of "catalogue" failed/ }, 5),
    'a failed build is logged');
# the checks go on every 250ms: time for several more failed builds
wait_for(sub { 0 }, 1.5);
$r = catalogue();
is($r->{headers}{etag}, $etag, 'the last entry is still answered');
is(price($r, 'a4', 'GBP'), 2400, 'as it was');
my @failed = $t->error_log =~ /build of "catalogue" failed/g;
is(scalar @failed, 1, 'logged once while it keeps failing');
$t->sql('ALTER FUNCTION catalogue_public_x(text) RENAME TO catalogue_public');
ok(wait_for(sub { (price(catalogue(), 'a4', 'GBP') // 0) == 2300 }, 2),
    'the function back: the change is answered');
like($t->error_log, qr/build of "catalogue" works again/, 'and said so');

# --- a zone too small for the entry: the query path, and a warning ----------
my $t3 = Darkroom::Test->new;
$t3->{db} = $db;
$t3->conf(with_cache('darkroom_public_cache zone=tiny:32k interval=50ms;'));
$t3->start;
$t->sql("UPDATE photos SET description = repeat('long ', 10000)"
    . " WHERE id = 'sea'");
ok(wait_for(sub { $t3->error_log =~ /zone "tiny" cannot hold/ }, 5),
    'an entry the zone cannot hold is logged');
$r = $t3->http(GET => '/api/catalogue');
is($r->{status}, 200, 'and answered all the same');
ok(!$r->{headers}{etag}, 'by the query');
like($r->{content}, qr/(long ){10000}/, 'with the new description');
$t->sql("UPDATE photos SET description = '' WHERE id = 'sea'");
ok(wait_for(sub { $t3->http(GET => '/api/catalogue')->{headers}{etag} }, 5),
    'small again: from the zone');
$t3->stop;

# --- PostgreSQL stopped: the last catalogue is still served (last) ----------
$etag = catalogue()->{headers}{etag};
system($pgctl, 'stop', $pg);
my $good = grep { my $r = catalogue(); $r->{status} == 200
                  && ($r->{headers}{etag} // '') eq $etag } 1 .. 20;
is($good, 20, 'with Postgres stopped the cached catalogue answers 200');
is(catalogue('?currency=JPY')->{status}, 503,
    'a currency the zone does not hold needs the database');
ok(wait_for(sub { $t->error_log =~ /version check failed/ }, 5),
    'the failed check is logged');

system($pgctl, 'start', $pg, 'public') == 0 or die;
$t->sql("UPDATE product_prices SET amount = 2700"
    . " WHERE product_id = 'a4' AND currency = 'GBP'");
ok(wait_for(sub { (price(catalogue(), 'a4', 'GBP') // 0) == 2700 }, 10),
    'Postgres back: changes are seen again');

done_testing;
