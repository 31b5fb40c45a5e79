#!/usr/bin/perl

# darkroom: rate limiting with several zones on one location, cost, dry_run,
# keys built from several variables, inheritance between levels, log level.

use strict;
use warnings;

use lib 't/lib';
use Darkroom::Test;
use HTTP::Tiny;
use Test::More;

my $t = Darkroom::Test->new;

$t->write_file("html/$_/index.html", "ok\n")
    for qw(multi wide narrow cost dry mixed combo inherit own srv deep);

$t->conf(<<'EOF');
%%MAIN%%
events {}
http {
    %%HTTP%%

    darkroom_limit_zone name=wide key=$http_x_key rate=1r/m burst=9 size=64k;
    darkroom_limit_zone name=narrow key=$http_x_key rate=1r/m burst=2
                        size=64k;
    darkroom_limit_zone name=combo key=$http_x_key:$cookie_gallery
                        rate=1r/h burst=1 size=64k;
    darkroom_limit_zone name=srv key=$http_x_key rate=1r/m burst=0 size=64k;
    darkroom_limit_zone name=top key=$http_x_key rate=1r/m burst=1 size=64k;

    darkroom_limit zone=top;

    server {
        listen 127.0.0.1:%%PORT0%%;
        root %%DIR%%/html;

        darkroom_limit_log_level warn;
        add_header X-Limit-Status $darkroom_limit_status always;

        location /multi/ {
            darkroom_limit zone=wide;
            darkroom_limit zone=narrow;
        }

        location /wide/ {
            darkroom_limit zone=wide;
        }

        location /narrow/ {
            darkroom_limit zone=narrow;
        }

        location /cost/ {
            darkroom_limit zone=wide cost=4;
        }

        location /dry/ {
            darkroom_limit zone=srv dry_run;
        }

        location /mixed/ {
            darkroom_limit zone=narrow dry_run;
            darkroom_limit zone=wide;
        }

        location /combo/ {
            darkroom_limit zone=combo;
        }
    }

    server {
        listen 127.0.0.1:%%PORT1%%;
        root %%DIR%%/html;

        darkroom_limit zone=srv;

        location /inherit/ {
        }

        location /own/ {
            darkroom_limit zone=narrow;
        }

        location /deep/ {
            location /deep/ {
            }
        }
    }

    server {
        listen 127.0.0.1:%%PORT2%%;
        root %%DIR%%/html;
    }
}
EOF

$t->start;

my $ua = HTTP::Tiny->new(keep_alive => 1, timeout => 10);

sub get {
    my ($path, $key, $port, $headers) = @_;
    my $url = 'http://127.0.0.1:' . $t->port($port // 0) . $path;
    return $ua->get($url, { headers => { 'X-Key' => $key,
                                         %{ $headers || {} } } });
}

sub codes {
    join ' ', map { $_->{status} } @_;
}

my $key = 'multi-' . int(rand(1e9));

# two zones: both must pass, the narrower one decides

my @r = map { get('/multi/', $key) } 1 .. 4;
is(codes(@r), '200 200 200 429', 'two zones: the narrow one rejects');
is($r[0]{headers}{ratelimit}, '"narrow";r=2;t=60',
   'RateLimit shows the most restrictive zone');
is($r[0]{headers}{'ratelimit-policy'}, '"narrow";q=1;w=60',
   'policy of the most restrictive zone');
is($r[3]{headers}{ratelimit}, '"narrow";r=0;t=180', 'rejecting zone shown');
is($r[3]{headers}{'retry-after'}, '60', 'Retry-After of the rejecting zone');

# the wide zone was charged for the 3 passes only, not for the rejection

my $w = get('/wide/', $key);
is($w->{headers}{ratelimit}, '"wide";r=6;t=240',
   'a rejection by a later zone is not charged to an earlier one');

# when the wide zone is the tighter one, it is the one reported

$key = 'multi2-' . int(rand(1e9));
get('/wide/', $key) for 1 .. 8;
$w = get('/multi/', $key);
is($w->{status}, 200, 'both still pass');
is($w->{headers}{ratelimit}, '"wide";r=1;t=540', 'now the wide zone is shown');

# cost: 4 units of 10

$key = 'cost-' . int(rand(1e9));
@r = map { get('/cost/', $key) } 1 .. 3;
is(codes(@r), '200 200 429', 'cost=4 with burst 10: two pass');
is($r[0]{headers}{ratelimit}, '"wide";r=6;t=240', 'cost 4 spends 4');
is($r[1]{headers}{ratelimit}, '"wide";r=2;t=480', 'then 2 left');
is($r[2]{headers}{'retry-after'}, '120', 'needs 2 more minutes');
is(get('/wide/', $key)->{status}, 200, 'cost 1 still fits');

# dry_run: everything passes, would-be rejections are logged

$key = 'dry-' . int(rand(1e9));
@r = map { get('/dry/', $key) } 1 .. 5;
is(codes(@r), '200 200 200 200 200', 'dry_run passes everything');
is($r[0]{headers}{'x-limit-status'}, 'PASSED', 'first: PASSED');
is($r[1]{headers}{'x-limit-status'}, 'REJECTED_DRY_RUN',
   'then REJECTED_DRY_RUN');
is($r[1]{headers}{ratelimit}, '"srv";r=0;t=60', 'dry run: fields still true');
ok(!defined $r[1]{headers}{'retry-after'}, 'dry run: no Retry-After');

# a dry-run zone next to a real one

$key = 'mixed-' . int(rand(1e9));
@r = map { get('/mixed/', $key) } 1 .. 5;
is(codes(@r), '200 200 200 200 200', 'dry-run zone does not reject');
is($r[4]{headers}{'x-limit-status'}, 'REJECTED_DRY_RUN', 'but is reported');
like(get('/wide/', $key)->{headers}{ratelimit}, qr/^"wide";r=4;/,
     'the real zone counted all 5');

# keys from several variables

$key = 'combo-' . int(rand(1e9));
my %g1 = (Cookie => 'gallery=g1');
my %g2 = (Cookie => 'gallery=g2');
is(codes(map { get('/combo/', $key, 0, \%g1) } 1 .. 3), '200 200 429',
   'key and cookie: gallery 1 limited');
is(get('/combo/', $key, 0, \%g2)->{status}, 200,
   'same client, another gallery: a separate key');
is(get('/combo/', $key, 0, \%g2)->{headers}{'ratelimit-policy'},
   '"combo";q=1;w=3600', 'r/h policy');

# inheritance: a level without darkroom_limit takes the parent's list

$key = 'inherit-' . int(rand(1e9));
is(codes(map { get('/inherit/', $key, 1) } 1 .. 2), '200 429',
   'location inherits the server zone');
is(get('/inherit/', $key, 1)->{headers}{ratelimit}, '"srv";r=0;t=60',
   'inherited zone named');

$key = 'own-' . int(rand(1e9));
@r = map { get('/own/', $key, 1) } 1 .. 4;
is(codes(@r), '200 200 200 429', 'own darkroom_limit replaces the list');
is($r[0]{headers}{ratelimit}, '"narrow";r=2;t=60', 'own zone only');

$key = 'deep-' . int(rand(1e9));
is(codes(map { get('/deep/', $key, 1) } 1 .. 2), '200 429',
   'nested location inherits too');

$key = 'top-' . int(rand(1e9));
@r = map { get('/narrow/', $key, 2) } 1 .. 3;
is(codes(@r), '200 200 429', 'server without limits inherits http level');
is($r[0]{headers}{ratelimit}, '"top";r=1;t=60', 'http level zone named');

$t->stop;

my $log = $t->error_log;

like($log, qr/\[warn\].*limiting requests, dry run, by zone "srv"/,
     'dry run logged at the configured level');
like($log, qr/\[warn\].*limiting requests by zone "narrow"/,
     'rejection logged at warn');
my $port0 = $t->port(0);
unlike($log, qr/\[error\].*limiting requests.*127\.0\.0\.1:$port0/,
       'nothing at error with log level warn');
like($log, qr/\[error\].*limiting requests by zone "srv"/,
     'error is the default level');
unlike($log, qr/\[(alert|crit|emerg)\]/, 'no alerts');

done_testing();
