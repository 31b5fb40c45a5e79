#!/usr/bin/perl

# darkroom: a reload under load keeps the zone's state when its size is
# unchanged, a changed rate applies at once, a changed size starts afresh.

use strict;
use warnings;

use lib 't/lib';
use Darkroom::Test;
use HTTP::Tiny;
use POSIX ();
use Test::More;
use Time::HiRes qw(time sleep);

my $t = Darkroom::Test->new;

$t->write_file('html/index.html', "ok\n");

my $conf = <<'EOF';
%%MAIN%%
events {}
http {
    %%HTTP%%
    error_log %%DIR%%/error.log notice;
    darkroom_limit_log_level info;

    darkroom_limit_zone name=r key=$http_x_key rate=RATE burst=4 size=SIZE;

    server {
        listen 127.0.0.1:%%PORT0%%;
        root %%DIR%%/html;

        location / {
            darkroom_limit zone=r;
        }
    }
}
EOF

sub conf {
    my ($rate, $size) = @_;
    (my $c = $conf) =~ s/RATE/$rate/;
    $c =~ s/SIZE/$size/;
    $t->conf($c, workers => 2);
}

conf('1r/m', '1m');
$t->start;

my $ua = HTTP::Tiny->new(keep_alive => 1, timeout => 10);
my $url = 'http://127.0.0.1:' . $t->port(0) . '/';

sub get {
    my ($key) = @_;
    return $ua->get($url, { headers => { 'X-Key' => $key } });
}

# after a reload, old workers may still take a connection for a moment:
# use new connections, a little later

sub reload {
    $t->reload;
    sleep(0.3);
    $ua = HTTP::Tiny->new(keep_alive => 0, timeout => 10);
}

my $tA = time;
my @r = map { get('A') } 1 .. 6;
is(join(' ', map { $_->{status} } @r), '200 200 200 200 200 429',
   'key A spent its burst');

# hammer key B from a child while nginx reloads

my $stop = $t->dir . '/stop-hammering';
pipe(my $rd, my $wr) or die "pipe: $!";
my $pid = fork();
die "fork: $!" unless defined $pid;

if ($pid == 0) {
    close $rd;
    my %n = (429 => 0);
    my $ua = HTTP::Tiny->new(keep_alive => 0, timeout => 10);
    my $cap = time + 60;

    # until both reloads are done and the key was refused a few times,
    # however long that takes on this machine

    while ((!-e $stop || $n{429} <= 10) && time < $cap) {
        my $res = $ua->get($url, { headers => { 'X-Key' => 'B' } });
        $n{ $res->{status} }++;
    }
    print $wr join(' ', map { "$_=$n{$_}" } sort keys %n), "\n";
    close $wr;
    POSIX::_exit(0);
}

close $wr;

sleep(0.5);
reload();
sleep(0.5);
reload();
sleep(0.5);
$t->write_file('stop-hammering', '');

my $counts = <$rd> // '';
close $rd;
waitpid($pid, 0);

chomp $counts;
my %n = map { split /=/ } split ' ', $counts;
note("key B during two reloads: $counts");

is($n{200}, 5, 'key B: exactly burst + 1 passed across two reloads');
ok(($n{429} // 0) > 10, 'key B: the rest rejected');
is(join(',', grep { $_ != 200 && $_ != 429 } keys %n), '',
   'no other status during reloads');

is(get('A')->{status}, 429, 'key A still limited after reload');

# a new rate applies at once, the state is kept

conf('2r/m', '1m');
reload();

my $r = get('A');
is($r->{status}, 429, 'key A still limited with the new rate');
is($r->{headers}{'ratelimit-policy'}, '"r";q=2;w=60', 'new policy at once');

# TAT is 300 s ahead; at 2r/m the limit is 150 s and a request adds 30 s

my $ra = $r->{headers}{'retry-after'} // 0;
# 180 s when key A was spent, one second less for each second since
my $since = POSIX::ceil(time - $tA);
ok($ra <= 180 && $ra >= 179 - $since,
   "Retry-After $ra computed with the new rate ($since s later)");

is(get('C')->{headers}{ratelimit}, '"r";r=4;t=30', 'new interval for keys');

# another size is another zone: state starts afresh

conf('2r/m', '2m');
reload();

$r = get('A');
is($r->{status}, 200, 'new zone size: key A starts afresh');
is($r->{headers}{ratelimit}, '"r";r=4;t=30', 'full burst');

# another key on the same zone forgets the keys

(my $c = $conf) =~ s/RATE/2r\/m/;
$c =~ s/SIZE/2m/;
$c =~ s/\$http_x_key/\$http_x_key\$http_x_more/;
$t->conf($c, workers => 2);
get('D') for 1 .. 5;
is(get('D')->{status}, 429, 'key D spent');
reload();
is(get('D')->{status}, 200, 'new key definition: keys forgotten');
like($t->error_log, qr/darkroom_limit_zone "r" now uses the key/,
     'and that is logged');

$t->stop;

unlike($t->error_log, qr/\[(alert|crit|emerg)\]/, 'no alerts');

done_testing();
