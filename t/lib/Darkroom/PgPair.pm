package Darkroom::PgPair;

# A PostgreSQL primary and a streaming standby on this machine, for the
# failover tests: two clusters under <test dir>/pg1 and pg2, each on a
# unix socket of its own, the standby made by pg_basebackup -R from the
# primary and synchronous (synchronous_standby_names = '*' once it runs),
# so that a commit the primary acknowledged is on the standby too.
#
#   my $pg = Darkroom::PgPair->new($t);   # both running, database created
#   $pg->conninfo;     # "host=<pg1>,<pg2> ... target_session_attrs=read-write"
#   $pg->psql(1, $sql);                   # on one node, as postgres
#   $pg->stop(1, 'immediate');            # the primary dies
#   $pg->promote(2);                      # the standby takes over
#   $pg->stop_all;                        # also at the end of the test
#
# The servers never run as root: as root, they run as `postgres` (or
# `nobody`), as tools/darkroom-pg does.

use strict;
use warnings;

use File::Path qw(make_path);
use Time::HiRes qw(sleep time);

my @live;

sub new {
    my ($class, $t, %o) = @_;
    my $bin = (sort { vcmp($a, $b) } glob '/usr/lib/postgresql/*/bin')[-1]
        or die "PostgreSQL server not installed\n";
    my $self = bless { t => $t, bin => $bin, dir => $t->dir,
        dbname => $o{dbname} // 'darkroom', user => undef }, $class;
    if ($> == 0) {
        $self->{user} = getpwnam('postgres') ? 'postgres' : 'nobody';
    }
    push @live, $self;
    $self->init_primary;
    $self->init_standby;
    return $self;
}

sub vcmp {
    my ($x, $y) = map { m{/(\d+)/bin$} ? $1 : 0 } @_;
    return $x <=> $y;
}

sub sock { "$_[0]{dir}/pg$_[1]/s" }
sub data { "$_[0]{dir}/pg$_[1]/data" }

# a command as the server's user
sub as_server {
    my ($self, @cmd) = @_;
    unshift @cmd, 'runuser', '-u', $self->{user}, '--' if $self->{user};
    my $out = '';
    my $pid = open my $fh, '-|' // die "fork: $!";
    if (!$pid) {
        open STDERR, '>&', \*STDOUT;
        chdir '/';
        exec @cmd or die "exec $cmd[0]: $!";
    }
    local $/;
    $out = <$fh> // '';
    close $fh;
    return wantarray ? ($? == 0, $out) : $? == 0;
}

sub run_ok {
    my ($self, @cmd) = @_;
    my ($ok, $out) = $self->as_server(@cmd);
    die "@cmd failed:\n$out\n" unless $ok;
    return $out;
}

sub mkdirs {
    my ($self, $n) = @_;
    my $d = "$self->{dir}/pg$n";
    make_path("$d/s", "$d/data");
    chmod 0755, $d, "$d/s";
    chmod 0700, "$d/data";
    if ($self->{user}) {
        my ($uid, $gid) = (getpwnam $self->{user})[2, 3];
        chown $uid, $gid, $d, "$d/s", "$d/data";
    }
}

sub append_conf {
    my ($self, $n, $text) = @_;
    my $f = $self->data($n) . '/postgresql.conf';
    open my $fh, '>>', $f or die "$f: $!";
    print $fh $text;
    close $fh;
}

sub init_primary {
    my ($self) = @_;
    $self->mkdirs(1);
    $self->run_ok("$self->{bin}/initdb", '-D', $self->data(1), '-U',
        'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C');
    $self->append_conf(1, <<CONF);
listen_addresses = ''
unix_socket_directories = '${\ $self->sock(1)}'
unix_socket_permissions = 0777
max_connections = 300
fsync = off
full_page_writes = on
wal_level = replica
max_wal_senders = 4
synchronous_commit = on
log_min_messages = warning
CONF
    $self->start(1);
    $self->run_ok('psql', '-X', '-q', '-h', $self->sock(1), '-U', 'postgres',
        '-d', 'postgres', '-v', 'ON_ERROR_STOP=1', '-c',
        'CREATE ROLE darkroom LOGIN', '-c',
        "CREATE DATABASE $self->{dbname} OWNER darkroom");
}

sub init_standby {
    my ($self) = @_;
    $self->mkdirs(2);
    $self->run_ok("$self->{bin}/pg_basebackup", '-h', $self->sock(1), '-U',
        'postgres', '-D', $self->data(2), '-R', '-X', 'stream',
        '--checkpoint=fast');
    # its own socket; once promoted it waits for no standby of its own
    $self->append_conf(2, <<CONF);
unix_socket_directories = '${\ $self->sock(2)}'
synchronous_standby_names = ''
hot_standby = on
CONF
    $self->start(2);
    # from now on a commit waits for the standby (not before: nothing
    # could be written without it)
    $self->psql(1, "ALTER SYSTEM SET synchronous_standby_names = '*'");
    $self->psql(1, 'SELECT pg_reload_conf()');
    my $end = time + 60;
    until (($self->psql(1, 'SELECT sync_state FROM pg_stat_replication')
            // '') eq 'sync')
    {
        die "the standby never became synchronous\n" if time > $end;
        sleep 0.1;
    }
}

sub start {
    my ($self, $n) = @_;
    $self->run_ok("$self->{bin}/pg_ctl", '-D', $self->data($n), '-l',
        "$self->{dir}/pg$n/postgres.log", '-w', '-t', '60', 'start');
    $self->{running}{$n} = 1;
}

sub stop {
    my ($self, $n, $mode) = @_;
    return unless delete $self->{running}{$n};
    $self->as_server("$self->{bin}/pg_ctl", '-D', $self->data($n), '-m',
        $mode // 'fast', '-w', '-t', '60', 'stop');
}

sub promote {
    my ($self, $n) = @_;
    $self->run_ok("$self->{bin}/pg_ctl", '-D', $self->data($n), '-w', '-t',
        '60', 'promote');
}

sub stop_all {
    my ($self) = @_;
    $self->stop($_, 'immediate') for sort keys %{ $self->{running} || {} };
}

# one statement on node n as postgres in the test's database: the first
# column of the first row (undef if it failed)
sub psql {
    my ($self, $n, $sql) = @_;
    my ($ok, $out) = $self->as_server('psql', '-X', '-q', '-A', '-t', '-h',
        $self->sock($n), '-U', 'postgres', '-d', $self->{dbname}, '-v',
        'ON_ERROR_STOP=1', '-c', $sql);
    return undef unless $ok;
    chomp $out;
    return (split /\n/, $out)[0] // '';
}

sub conninfo {
    my ($self) = @_;
    return 'host=' . $self->sock(1) . ',' . $self->sock(2)
        . " dbname=$self->{dbname} user=darkroom"
        . ' target_session_attrs=read-write';
}

sub DESTROY { $_[0]->stop_all unless ${^GLOBAL_PHASE} eq 'DESTRUCT' }

# before Darkroom::Test's END and File::Temp's: the clusters are stopped
# before their directories go
END { $_ && $_->stop_all for @live }

1;
