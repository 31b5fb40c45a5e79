package Darkroom::FakeServer;

# A fake provider: HTTP/1.1 on 127.0.0.1 in a child process, one process
# per connection, every request recorded so the test can check exactly
# what darkroom sent.
#
#   my $srv = $t->fake_server(handler => sub {
#       my ($req, $state) = @_;     # $req: method path query headers body,
#                                   # n (this server), n_path (this path)
#       return [500, {}, 'down'] if $req->{n} <= 2;
#       return [200, { 'Content-Type' => 'application/json' }, '{}'];
#   });
#   $srv->port; $srv->url('/v1/x');
#   $srv->set(mode => 'slow');      # $state seen by the handler from now on
#   my @reqs = $srv->requests;      # in arrival order
#
# A handler may also answer 'hang' (read, never answer), 'close' (drop the
# connection) or [status, headers, body, delay_seconds].  Header names in
# $req->{headers} are lower case.

use strict;
use warnings;

use Fcntl qw(:flock);
use IO::Socket::IP;
use JSON::PP;
use POSIX qw(:sys_wait_h _exit);
use Time::HiRes qw(sleep time);

sub new {
    my ($class, %opts) = @_;
    my $name = $opts{name} // 'fake' . int(rand(1e9));
    my $self = bless {
        dir     => $opts{dir},
        name    => $name,
        log     => "$opts{dir}/$name.requests",
        state   => "$opts{dir}/$name.state",
        handler => $opts{handler} // sub { [200, {}, ''] },
    }, $class;

    my $listen = IO::Socket::IP->new(LocalAddr => '127.0.0.1',
        LocalPort => $opts{port} // 0, Proto => 'tcp', Listen => 128,
        ReuseAddr => 1) or die "fake server: $!\n";
    $self->{port} = $listen->sockport;
    open my $fh, '>', $self->{log} or die; close $fh;
    $self->set();

    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        # a group of its own: stop() ends the connection processes too
        setpgrp(0, 0);
        $SIG{CHLD} = 'IGNORE';
        $SIG{TERM} = sub { _exit(0) };
        while (1) {
            my $c = $listen->accept or next;
            my $kid = fork;
            if (defined $kid && $kid == 0) {
                close $listen;
                $self->serve($c);
                _exit(0);
            }
            close $c;
        }
    }
    close $listen;
    $self->{pid} = $pid;
    return $self;
}

sub port { $_[0]{port} }
sub url { "http://127.0.0.1:$_[0]{port}" . ($_[1] // '') }

sub set {
    my ($self, %state) = @_;
    my $tmp = "$self->{state}.tmp";
    open my $fh, '>', $tmp or die "$tmp: $!";
    print $fh encode_json(\%state);
    close $fh;
    rename $tmp, $self->{state};
}

sub state {
    my ($self) = @_;
    open my $fh, '<', $self->{state} or return {};
    local $/;
    return eval { decode_json(<$fh>) } || {};
}

sub requests {
    my ($self) = @_;
    open my $fh, '<', $self->{log} or return ();
    return map { decode_json($_) } <$fh>;
}

sub reset_requests {
    my ($self) = @_;
    open my $fh, '>', $self->{log}; close $fh;
}

sub stop {
    my ($self) = @_;
    return unless $self->{pid};
    kill 'TERM', -$self->{pid};
    kill 'TERM', $self->{pid};
    waitpid $self->{pid}, 0;
    delete $self->{pid};
}

sub read_request {
    my ($c) = @_;
    my $buf = '';
    while ($buf !~ /\r\n\r\n/) {
        my $n = sysread($c, $buf, 65536, length $buf);
        return undef unless $n;
    }
    my ($head, $rest) = split /\r\n\r\n/, $buf, 2;
    my ($line, @lines) = split /\r\n/, $head;
    my ($method, $target) = split / /, $line;
    my %h;
    for (@lines) {
        my ($k, $v) = split /:\s*/, $_, 2;
        $k = lc $k;
        $h{$k} = exists $h{$k} ? "$h{$k}, $v" : $v;
    }
    my $body = $rest;
    if (($h{'transfer-encoding'} // '') =~ /chunked/i) {
        my $raw = $rest;
        $body = '';
        while (1) {
            while ($raw !~ /^([0-9a-fA-F]+)\r\n/) {
                sysread($c, $raw, 65536, length $raw) or last;
            }
            my ($len) = $raw =~ /^([0-9a-fA-F]+)\r\n/ or last;
            my $size = hex $len;
            my $need = length($len) + 2 + $size + 2;
            while (length $raw < $need) {
                sysread($c, $raw, 65536, length $raw) or last;
            }
            last if $size == 0;
            $body .= substr($raw, length($len) + 2, $size);
            $raw = substr($raw, $need);
        }
    } else {
        my $len = $h{'content-length'} // 0;
        while (length $body < $len) {
            sysread($c, $body, $len - length $body, length $body) or last;
        }
    }
    my ($path, $query) = split /\?/, $target, 2;
    return { method => $method, path => $path, query => $query // '',
        target => $target, headers => \%h, body => $body };
}

sub record {
    my ($self, $req) = @_;
    open my $fh, '>>', $self->{log} or die;
    flock $fh, LOCK_EX;
    open my $rd, '<', $self->{log};
    my ($n, $np) = (0, 0);
    while (my $line = <$rd>) {
        $n++;
        $np++ if index($line, qq{"path":"$req->{path}"}) >= 0;
    }
    close $rd;
    $req->{n} = $n + 1;
    $req->{n_path} = $np + 1;
    $req->{time} = time;
    print $fh encode_json($req), "\n";
    close $fh;
}

sub serve {
    my ($self, $c) = @_;
    while (my $req = read_request($c)) {
        $self->record($req);
        my $res = $self->{handler}->($req, $self->state);
        if (!ref $res && $res eq 'hang') {
            sleep 3600;
        }
        return if !ref $res && $res eq 'close';
        my ($status, $headers, $body, $delay) = @$res;
        $body //= '';
        sleep $delay if $delay;
        my $out = "HTTP/1.1 $status X\r\n";
        my %hd = (%{$headers || {}});
        $hd{'Content-Length'} = length $body;
        $out .= "$_: $hd{$_}\r\n" for sort keys %hd;
        $out .= "\r\n$body";
        syswrite($c, $out) or return;
        return if ($req->{headers}{connection} // '') =~ /close/i;
    }
}

1;
