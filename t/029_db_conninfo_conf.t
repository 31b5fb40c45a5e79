#!/usr/bin/perl
# darkroom_db's multi-host form at "nginx -t" time: libpq's parser takes
# host and port lists of any length and any target_session_attrs, and
# would refuse them only at each connect, in a pool thread, as a 503.
# darkroom checks them with the configuration: lists that disagree, a
# connect_timeout that is not a number, an unknown target_session_attrs.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Darkroom::Test;

my $t = Darkroom::Test->new;

sub conf_with {
    my ($conninfo) = @_;
    $t->conf(<<"CONF");
%%MAIN%%
events {}
http {
    %%HTTP%%
    darkroom_db "$conninfo";
    server {
        listen 127.0.0.1:%%PORT0%%;
        location /health { darkroom_health; }
    }
}
CONF
    return $t->test_conf;
}

for my $good (
    'host=db1,db2 port=5432 dbname=shop target_session_attrs=read-write',
    'host=db1,db2,db3 port=5432,5433,5434 dbname=shop connect_timeout=2',
    'host=/run/a,/run/b dbname=shop target_session_attrs=primary',
    'hostaddr=10.0.0.1,10.0.0.2 port=5432,5433 dbname=shop',
    'host=a,b hostaddr=10.0.0.1,10.0.0.2 dbname=shop',
    'postgresql://u@db1:5432,db2:5433/shop?target_session_attrs=read-write'
        . '&connect_timeout=3',
    'dbname=shop port=5433',
) {
    my ($ok, $out) = conf_with($good);
    ok($ok, "accepted: $good") or diag $out;
}

for my $case (
    [ 'host=db1,db2 port=5432,5433,5434 dbname=shop',
      '"port" and "hostaddr" must have one entry per host' ],
    [ 'host=db1,db2,db3 hostaddr=10.0.0.1,10.0.0.2 dbname=shop',
      '"port" and "hostaddr" must have one entry per host' ],
    [ 'host=db1,db2 dbname=shop connect_timeout=2s',
      '"connect_timeout" must be a number of seconds' ],
    [ 'host=db1,db2 dbname=shop target_session_attrs=readwrite',
      'unknown "target_session_attrs"' ],
) {
    my ($bad, $want) = @$case;
    my ($ok, $out) = conf_with($bad);
    ok(!$ok, "refused: $bad");
    like($out, qr/invalid connection string in "darkroom_db": \Q$want\E/,
        "reason: $want") or diag $out;
    like($out, qr/ in \S+nginx\.conf:\d+/, 'and line');
}

done_testing;
