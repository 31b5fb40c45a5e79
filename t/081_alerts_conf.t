#!/usr/bin/perl
# darkroom_alerts and its settings at "nginx -t": good values pass, bad
# ones fail with the file and line, in nginx's own words.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Darkroom::Test;

my $t = Darkroom::Test->new;

sub conf_with {
    my ($http) = @_;
    $t->conf(<<"CONF");
%%MAIN%%
events {}
http {
    %%HTTP%%
    darkroom_db "dbname=x";
$http
    server {
        listen 127.0.0.1:%%PORT0%%;
        location /health { darkroom_health; }
    }
}
CONF
    return $t->test_conf;
}

my ($ok, $out) = conf_with('darkroom_alerts on; darkroom_alert_cooldown 4h;'
    . ' darkroom_alert_db_down 2m; darkroom_alert_signatures 10 30m;');
ok($ok, 'every setting given passes nginx -t') or diag $out;

my @bad = (
    [ 'darkroom_alerts maybe;', 'invalid value "maybe"' ],
    [ 'darkroom_alert_cooldown soon;',
      '"darkroom_alert_cooldown" directive invalid value' ],
    [ 'darkroom_alert_db_down soon;',
      '"darkroom_alert_db_down" directive invalid value' ],
    [ 'darkroom_alert_signatures 0 15m;', 'invalid count "0"' ],
    [ 'darkroom_alert_signatures five 15m;', 'invalid count "five"' ],
    [ 'darkroom_alert_signatures 5 2d;', 'invalid window "2d"' ],
    [ 'darkroom_alert_signatures 5;',
      'invalid number of arguments in "darkroom_alert_signatures"' ],
    [ 'darkroom_alert_signatures 5 15m; darkroom_alert_signatures 6 15m;',
      '"darkroom_alert_signatures" directive is duplicate' ],
);

for my $b (@bad) {
    my ($conf, $words) = @$b;
    ($ok, $out) = conf_with($conf);
    ok(!$ok, "refused: $conf");
    like($out, qr/\Q$words\E[^\n]* in \S+nginx\.conf:\d+/, "says: $words")
        or diag $out;
}

done_testing;
