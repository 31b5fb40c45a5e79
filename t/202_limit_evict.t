#!/usr/bin/perl

# darkroom: a full rate limiting zone evicts its least recently used keys,
# never answers 500, and says so in the log once in a while, not per request.
# Also measures how many 16-byte keys a 1 MiB zone holds.

use strict;
use warnings;

use lib 't/lib';
use Darkroom::Test;
use HTTP::Tiny;
use IO::Socket::IP;
use Test::More;

my $t = Darkroom::Test->new;

$t->write_file("html/$_/index.html", "ok\n") for qw(small big);

$t->conf(<<'EOF');
%%MAIN%%
events {}
http {
    %%HTTP%%
    access_log off;

    darkroom_limit_zone name=small key=$http_x_key rate=1r/m size=32k;
    darkroom_limit_zone name=big key=$http_x_key rate=1r/m size=1m;

    server {
        listen 127.0.0.1:%%PORT0%%;
        root %%DIR%%/html;
        keepalive_requests 1000000;

        location /small/ {
            darkroom_limit zone=small;
        }

        location /big/ {
            darkroom_limit zone=big;
        }
    }
}
EOF

$t->start;

# many requests on one connection, pipelined in batches; returns the count
# of each status code

sub pipelined {
    my ($path, @keys) = @_;

    my $s = IO::Socket::IP->new(PeerAddr => '127.0.0.1',
                                PeerPort => $t->port(0), Proto => 'tcp')
        or die "connect: $!";
    my %codes;

    while (my @batch = splice @keys, 0, 500) {
        my $req = join '', map {
            "GET $path HTTP/1.1\r\nHost: x\r\nX-Key: $_\r\n\r\n"
        } @batch;

        print $s $req;

        my ($buf, $n) = ('', 0);

        while ($n < @batch) {
            my $got = sysread($s, $buf, 65536, length $buf);
            die "read: $!" unless $got;
            $n = () = $buf =~ /^HTTP\/1\.1 \d{3}/mg;
        }

        $codes{$_}++ for $buf =~ /^HTTP\/1\.1 (\d{3})/mg;
    }

    close $s;

    return \%codes;
}

my $ua = HTTP::Tiny->new(timeout => 10);

sub get {
    my ($path, $key) = @_;
    return $ua->get('http://127.0.0.1:' . $t->port(0) . $path,
                    { headers => { 'X-Key' => $key } });
}

# a 32k zone holds a few hundred keys: offer 3000

my @keys = map { sprintf 'k%015d', $_ } 1 .. 3000;

my $first = time;
my $codes = pipelined('/small/', @keys);

is($codes->{200}, 3000, 'all 3000 new keys passed');
ok(!$codes->{500}, 'no 500');

is(get('/small/', $keys[-1])->{status}, 429, 'the newest key is remembered');
is(get('/small/', $keys[0])->{status}, 200,
   'the oldest key was evicted, so it starts afresh');

my @lines = $t->error_log =~ /(darkroom_limit_zone "small" is full[^\n]*)/g;
is(scalar @lines, 1, 'eviction logged once, not per request');
like($lines[0] // '', qr/is full at \d+ keys in 32768 bytes, evicted \d+/,
     'the log line says how full');

$codes = pipelined('/small/', map { "x$_" } @keys);
is($codes->{200}, 3000, 'more evictions, still no error');

@lines = $t->error_log =~ /(darkroom_limit_zone "small" is full)/g;
SKIP: {
    # a loaded machine may have taken 10 s, and then a second line is right
    skip 'the two batches took 10 s or more', 1 if time - $first >= 10;
    is(scalar @lines, 1, 'no second line within 10 seconds');
}

# keys per MiB with 16-byte keys

@keys = map { sprintf 'K%015d', $_ } 1 .. 20000;
$codes = pipelined('/big/', @keys);

is($codes->{200}, 20000, '20000 keys into the 1 MiB zone');

my ($full) = $t->error_log =~
    /darkroom_limit_zone "big" is full at (\d+) keys in 1048576 bytes/;

ok(defined $full, 'the 1 MiB zone filled up');
ok(($full // 0) >= 16000, "1 MiB holds at least 16,000 16-byte keys")
    or diag("keys in 1 MiB: " . ($full // 'none'));
note("keys per MiB with 16-byte keys: " . ($full // 'none'));

is(get('/big/', $keys[-1])->{status}, 429, 'recent key still limited');

unlike($t->error_log, qr/\[(alert|crit|emerg)\]/, 'no alerts');
unlike($t->error_log, qr/ngx_slab_alloc\(\) failed/, 'no slab noise');

$t->stop;

done_testing();
