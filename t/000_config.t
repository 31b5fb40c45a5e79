#!/usr/bin/perl
# The module loads into Debian's nginx, and every directive refuses bad
# values at "nginx -t" time with the file and line, in nginx's own words.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Darkroom::Test;

my $t = Darkroom::Test->new;

sub conf_with {
    my ($http, $loc, $main) = @_;
    $loc //= 'darkroom_health;';
    $main //= '';
    $t->conf(<<"CONF");
%%MAIN%%
$main
events {}
http {
    %%HTTP%%
$http
    server {
        listen 127.0.0.1:%%PORT0%%;
        location /health {
            $loc
        }
    }
}
CONF
    return $t->test_conf;
}

my ($ok, $out) = conf_with('darkroom_db "dbname=x";');
ok($ok, 'module loads, minimal config passes nginx -t') or diag $out;

# each bad value, and the words nginx must print with file:line
my @bad = (
    [ 'darkroom_db "";', 'empty connection string' ],
    [ 'darkroom_db "dbname=x"; darkroom_db "dbname=y";',
      '"darkroom_db" directive is duplicate' ],
    [ 'darkroom_db "host=x nosuchkey=1";', 'invalid connection string' ],
    [ 'darkroom_db "dbname=x"; darkroom_db_timeout abc;',
      '"darkroom_db_timeout" directive invalid value' ],
    [ 'darkroom_db "dbname=x"; darkroom_db_timeout 10ms;',
      'value must be at least 100ms' ],
    [ 'darkroom_db "dbname=x"; darkroom_db_pool nosuch;',
      'unknown thread pool "nosuch"' ],
    [ 'darkroom_db "dbname=x"; darkroom_jobs maybe;',
      'invalid value "maybe"' ],
    [ 'darkroom_db "dbname=x"; darkroom_jobs_interval 0;',
      'value must be at least 1ms' ],
    [ 'darkroom_db "dbname=x"; darkroom_jobs_lease 500ms;',
      'value must be at least 1000ms' ],
    [ 'darkroom_db "dbname=x"; darkroom_jobs_backoff 0;', 'invalid backoff' ],
    [ 'darkroom_db "dbname=x"; darkroom_jobs_backoff 10s 1s;',
      'invalid maximum backoff' ],
    [ 'darkroom_db "dbname=x"; darkroom_jobs_batch 0;',
      'value must be between 1 and 1000' ],
    [ 'darkroom_db "dbname=x"; darkroom_fetch_timeout -1;',
      'invalid value' ],
    [ 'darkroom_db "dbname=x"; darkroom_fetch_timeout 5ms;',
      'value must be at least 100ms' ],
    [ '', '"darkroom_health" requires "darkroom_db"' ],
);

for my $case (@bad) {
    my ($http, $want) = @$case;
    my ($ok, $out) = conf_with($http);
    ok(!$ok, "rejected: $http");
    like($out, qr/\Q$want\E.* in \S+nginx\.conf:\d+/, "reason and line: $want")
        or diag $out;
}

($ok, $out) = conf_with('darkroom_db_pool default;', 'return 204;');
ok(!$ok, 'a pool without a database is refused');
like($out, qr/"darkroom_db_pool" is set but "darkroom_db" is not/,
    'pool without database explained') or diag $out;

($ok, $out) = conf_with('darkroom_db "dbname=x";', 'darkroom_health on;');
ok(!$ok, 'darkroom_health takes no arguments');
like($out,
    qr/invalid number of arguments in "darkroom_health" directive in \S+:\d+/,
    'argument count reported with line');

# the password in a connection string never reaches the output
($ok, $out) = conf_with('darkroom_db "password=s3cret nosuch=1";');
unlike($out, qr/s3cret/, 'password not echoed on a bad connection string');

# a pool declared with nginx's own thread_pool directive is used
($ok, $out) = conf_with('darkroom_db "dbname=x"; darkroom_db_pool dr;',
    undef, 'thread_pool dr threads=4;');
ok($ok, 'thread_pool declared by nginx is accepted') or diag $out;

done_testing;
