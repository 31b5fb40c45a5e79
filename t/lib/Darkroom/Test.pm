package Darkroom::Test;

# A small test harness in the style of nginx-tests, core Perl only.
#
#   use lib 't/lib';
#   use Darkroom::Test;
#
#   my $t = Darkroom::Test->new;        # private dir (mode 755), free ports
#   $t->write_file('html/a.txt', 'x');  # files under $t->dir
#   $t->conf(<<'EOF');                  # nginx.conf with placeholders:
#   %%MAIN%%                            #   load_module, pid, error_log, daemon
#   events {}
#   http {
#       %%HTTP%%                        #   access_log, temp paths
#       darkroom_db "%%DB%%";           #   the suite's database
#       server { listen 127.0.0.1:%%PORT0%%; root %%DIR%%/html; }
#   }
#   EOF
#   $t->start;                          # dies with the error log on failure
#   my $r = $t->http(GET => '/a.txt');  # HTTP::Tiny response hash
#   $t->http(GET => $p, { from => '127.0.0.2' });  # from another address
#   my ($ok, $out) = $t->test_conf;     # nginx -t on the current conf
#   $t->reload; $t->stop; $t->error_log;
#   $t->empty_db;                      # %%DB%% empty, not migrated (a restore)
#   my @rows = $t->sql('SELECT id FROM jobs WHERE kind = :\'p1\'', 'x');
#
# %%PORTn%% is the n-th free port ($t->port(n)), %%DIR%% the test directory,
# %%DB%% the libpq conninfo of the suite's Postgres (DARKROOM_TEST_DB),
# %%WORKERS%% the worker count given to conf() (default 1).
#
# Environment: DARKROOM_NGINX (nginx binary), DARKROOM_MODULE (the built
# .so), DARKROOM_TEST_DB, DARKROOM_PG_DIR; DARKROOM_TEST_KEEP=1 keeps the
# test directory for a post-mortem.
#
# Sanitizers (make test SANITIZE=address): nginx runs through
# tools/darkroom-nginx-sanitize, which has ASan and UBSan write to
# <test dir>/sanitizer/; when the test ends, any report there fails it.

use strict;
use warnings;

use Cwd qw(abs_path);
use Exporter qw(import);
use File::Basename qw(dirname);
use File::Path qw(make_path remove_tree);
use File::Temp qw(tempdir);
use HTTP::Tiny;
use IO::Socket::IP;
use JSON::PP;
use POSIX qw(:sys_wait_h);
use Scalar::Util ();
use Test::More;
use Time::HiRes qw(sleep time);

our @EXPORT_OK = qw(json_decode json_encode wait_for);

my $TOP = abs_path(dirname(__FILE__) . '/../../..');
my %used_ports;
my @live;

# nginx workers run as nobody; a checkout nobody cannot enter (one under
# /root, say) needs them to run as the user that owns it
my $WORKERS_AS = do {
    my $ok = $> != 0
        || system('runuser', '-u', 'nobody', '--', 'test', '-r',
                  "$TOP/t/lib/Darkroom/Test.pm") == 0;
    $ok ? '' : 'user root;';
};

sub new {
    my ($class, %opts) = @_;

    my $base = "$TOP/var/t";
    make_path($base);
    my $dir = tempdir('darkroom-XXXXXX', DIR => $base,
        CLEANUP => !$ENV{DARKROOM_TEST_KEEP});
    chmod 0755, $dir;

    my $self = bless {
        dir     => $dir,
        ports   => [],
        nginx   => $ENV{DARKROOM_NGINX} || '/usr/sbin/nginx',
        module  => $ENV{DARKROOM_MODULE}
                   || "$TOP/var/modules/ngx_http_darkroom_module.so",
        pgdir   => abs_path($ENV{DARKROOM_PG_DIR} || "$TOP/var/pg"),
        workers => 1,
        servers => [],
    }, $class;

    push @live, $self;
    Scalar::Util::weaken($live[-1]);
    return $self;
}

sub dir { $_[0]{dir} }

# Each test gets a database of its own, migrated from sql/, so that job
# runners of tests running side by side never see each other's rows.
sub db {
    my ($self) = @_;
    return $self->{db} if $self->{db};
    $self->empty_db;
    my $out = `$TOP/tools/darkroom-migrate "$self->{db}" $TOP/sql 2>&1`;
    die "migrations failed:\n$out" if $?;
    return $self->{db};
}

# the test's database made empty, not migrated (a restore's target); the
# conninfo
sub empty_db {
    my ($self) = @_;
    die "the test has its database already\n" if $self->{db};
    my $name = 'darkroom_t_' . lc(join '', map { ('a' .. 'z')[rand 26] } 1 .. 10);
    my $sock = "$self->{pgdir}/sock";
    system('psql', '-X', '-q', '-h', $sock, '-U', 'postgres', '-d', 'postgres',
        '-c', "CREATE DATABASE $name OWNER darkroom") == 0
        or die "cannot create database $name\n";
    $self->{dbname} = $name;
    return $self->{db} = "host=$sock dbname=$name user=darkroom";
}

sub drop_db {
    my ($self) = @_;
    return unless $self->{dbname};
    system('psql', '-X', '-q', '-h', "$self->{pgdir}/sock", '-U', 'postgres',
        '-d', 'postgres', '-c',
        "DROP DATABASE IF EXISTS $self->{dbname} WITH (FORCE)");
    delete $self->{dbname};
}
sub top { $TOP }

# a free TCP port on 127.0.0.1, the same for the same n within a test
sub port {
    my ($self, $n) = @_;
    $n //= 0;
    return $self->{ports}[$n] if $self->{ports}[$n];
    for (1 .. 50) {
        my $s = IO::Socket::IP->new(LocalAddr => '127.0.0.1', LocalPort => 0,
            Proto => 'tcp', Listen => 1, ReuseAddr => 1) or next;
        my $p = $s->sockport;
        close $s;
        next if $used_ports{$p}++;
        return $self->{ports}[$n] = $p;
    }
    die "no free port\n";
}

sub write_file {
    my ($self, $name, $content, $mode) = @_;
    my $path = "$self->{dir}/$name";
    make_path(dirname($path));
    open my $fh, '>:raw', $path or die "$path: $!\n";
    print $fh $content;
    close $fh;
    chmod $mode, $path if defined $mode;
    return $path;
}

sub read_file {
    my ($self, $name) = @_;
    my $path = $name =~ m{^/} ? $name : "$self->{dir}/$name";
    open my $fh, '<:raw', $path or return '';
    local $/;
    return scalar <$fh>;
}

sub expand {
    my ($self, $text) = @_;
    my $dir = $self->{dir};
    my $main = join "\n",
        "load_module $self->{module};",
        "pid $dir/nginx.pid;",
        "error_log $dir/error.log info;",
        "daemon on;",
        "master_process on;",
        "worker_processes $self->{workers};",
        $WORKERS_AS,
        "worker_shutdown_timeout 20s;";
    my $http = join "\n",
        "access_log $dir/access.log;",
        "client_body_temp_path $dir/client_body_temp;",
        "proxy_temp_path $dir/proxy_temp;",
        "fastcgi_temp_path $dir/fastcgi_temp;",
        "uwsgi_temp_path $dir/uwsgi_temp;",
        "scgi_temp_path $dir/scgi_temp;",
        "default_type application/octet-stream;";
    $text =~ s/%%MAIN%%/$main/g;
    $text =~ s/%%HTTP%%/$http/g;
    $text =~ s/%%DIR%%/$dir/g;
    $text =~ s/%%DB%%/$self->db/ge;
    $text =~ s/%%TOP%%/$TOP/g;
    $text =~ s/%%WORKERS%%/$self->{workers}/g;
    $text =~ s/%%PORT(\d+)%%/$self->port($1)/ge;
    return $text;
}

# conf($text [, workers => n])
sub conf {
    my ($self, $text, %opts) = @_;
    $self->{workers} = $opts{workers} if $opts{workers};
    $self->{conf_text} = $text;
    $self->write_file('nginx.conf', $self->expand($text));
    return $self;
}

sub nginx_cmd {
    my ($self, @args) = @_;
    return ($self->{nginx}, '-p', "$self->{dir}/", '-c',
        "$self->{dir}/nginx.conf", @args);
}

sub test_conf {
    my ($self) = @_;
    my @cmd = $self->nginx_cmd('-t');
    my $out = `@cmd 2>&1`;
    return ($? == 0, $out);
}

sub start {
    my ($self) = @_;
    my @cmd = $self->nginx_cmd;
    my $out = `@cmd 2>&1`;
    if ($?) {
        die "nginx failed to start:\n$out\n" . $self->error_log;
    }
    $self->{started} = 1;
    for (1 .. 100) {
        last if -s "$self->{dir}/nginx.pid";
        sleep 0.05;
    }
    # wait until every port the config listens on answers
    my $conf = $self->read_file('nginx.conf');
    my @ports = $conf =~ /listen\s+127\.0\.0\.1:(\d+)/g;
    for my $p (@ports) {
        for (1 .. 100) {
            my $s = IO::Socket::IP->new(PeerAddr => '127.0.0.1',
                PeerPort => $p, Proto => 'tcp');
            if ($s) { close $s; last }
            sleep 0.05;
        }
    }
    return $self;
}

sub master_pid {
    my ($self) = @_;
    my $pid = $self->read_file('nginx.pid');
    chomp $pid;
    return $pid;
}

sub worker_pids {
    my ($self) = @_;
    my $m = $self->master_pid or return ();
    my @p = split ' ', `pgrep -P $m 2>/dev/null`;
    return grep { (`cat /proc/$_/cmdline 2>/dev/null` // '') =~ /worker/ } @p;
}

# HUP the master and wait until a new generation of workers runs
sub reload {
    my ($self) = @_;
    my %old = map { $_ => 1 } $self->worker_pids;
    kill 'HUP', $self->master_pid;
    my $started;
    for (1 .. 200) {
        my @new = grep { !$old{$_} } $self->worker_pids;
        $started = 1, last if @new >= $self->{workers};
        sleep 0.05;
    }
    die "reload did not start new workers\n" . $self->error_log
        unless $started;
    # and until the old ones are gone, so no request reaches the old config
    for (1 .. 200) {
        last unless grep { kill 0, $_ } keys %old;
        sleep 0.05;
    }
    return $self;
}

sub stop {
    my ($self, $signal) = @_;
    return unless $self->{started};
    my $pid = $self->master_pid;
    $self->{started} = 0;
    return unless $pid;
    kill $signal // 'QUIT', $pid;
    for (1 .. 300) {
        return $self unless kill 0, $pid;
        sleep 0.05;
    }
    kill 'KILL', $pid;
    return $self;
}

sub error_log { $_[0]->read_file('error.log') }

# fails the test if ASan or UBSan reported anything (after stop)
sub check_sanitizer {
    my ($self) = @_;
    my @reports = grep { -s } glob("$self->{dir}/sanitizer/report.*");
    return 1 unless @reports;
    Test::More->builder->ok(0, 'no sanitizer report');

    # each distinct finding once, then the first report in full
    my %seen;
    for my $f (@reports) {
        for ($self->read_file($f) =~ /^(.*(?:runtime error|ERROR: \w+Sanitizer).*)$/mg) {
            diag($_) unless $seen{$_}++;
        }
    }
    diag("$reports[0]:\n" . $self->read_file($reports[0]));
    return 0;
}

sub http {
    my ($self, $method, $path, $opts) = @_;
    $opts ||= {};
    my $port = $opts->{port} // $self->port(0);
    my $ua = HTTP::Tiny->new(timeout => $opts->{timeout} // 15,
        max_redirect => 0, keep_alive => 0,
        $opts->{from} ? (local_address => $opts->{from}) : ());
    my %args;
    $args{headers} = $opts->{headers} if $opts->{headers};
    $args{content} = $opts->{content} if defined $opts->{content};
    my $res = $ua->request($method, "http://127.0.0.1:$port$path", \%args);
    if (($res->{headers}{'content-type'} // '') =~ m{application/json}
        && length($res->{content} // ''))
    {
        $res->{json} = eval { decode_json($res->{content}) };
    }
    return $res;
}

# psql with :'p1' .. :'pN' bound to the parameters; rows as array refs
sub sql {
    my ($self, $query, @params) = @_;
    my $i = 0;
    my @vars = map { ('-v', 'p' . ++$i . "=$_") } @params;
    my $file = "$self->{dir}/query.sql";
    open my $fh, '>', $file or die "$file: $!";
    print $fh $query, "\n";
    close $fh;
    open my $ps, '-|', 'psql', '-X', '-q', '-A', '-t', '-v',
        'ON_ERROR_STOP=1', '-F', "\x1f", '-d', $self->db, @vars, '-f', $file
        or die "psql: $!";
    local $/;
    my $out = <$ps> // '';
    close $ps;
    die "sql failed: $query\n" if $?;
    chomp $out;
    return map { [ split /\x1f/, $_, -1 ] } grep { length } split /\n/, $out;
}

sub sql_value {
    my ($self, @args) = @_;
    my @rows = $self->sql(@args);
    return @rows ? $rows[0][0] : undef;
}

# poll until code returns true or the timeout (seconds) passes
sub wait_for {
    my ($code, $timeout) = @_;
    my $end = time + ($timeout // 10);
    while (time < $end) {
        my $v = $code->();
        return $v if $v;
        sleep 0.05;
    }
    return $code->();
}

sub json_decode { decode_json($_[0]) }
sub json_encode { JSON::PP->new->canonical->encode($_[0]) }

sub fake_server {
    my ($self, %opts) = @_;
    require Darkroom::FakeServer;
    my $s = Darkroom::FakeServer->new(dir => $self->{dir}, %opts);
    push @{$self->{servers}}, $s;
    return $s;
}

sub cleanup {
    my ($self) = @_;
    return if $self->{cleaned}++;
    local $?;
    $self->stop if $self->{started};
    $_->stop for @{$self->{servers}};
    $self->check_sanitizer;
    if (!Test::More->builder->is_passing && -f "$self->{dir}/error.log") {
        diag("error log:\n" . $self->error_log);
    }
    diag("test directory kept: $self->{dir}") if $ENV{DARKROOM_TEST_KEEP};
    $self->money_audit;
    $self->drop_db unless $ENV{DARKROOM_TEST_KEEP};
}

# The money invariants over every order the test made, before its
# database goes: with DARKROOM_MONEY_AUDIT (a directory, set by make test)
# the test's orders and what money_invariant_violations() says of them
# land in <dir>/<test>-<database>.tsv, which t/999_money_invariant.t reads
# after every other test has run.  Lines: "test<TAB>file", "orders<TAB>n",
# then "violation<TAB>order<TAB>rule<TAB>detail" or "unchecked<TAB>why".
sub money_audit {
    my ($self) = @_;
    my $dir = $ENV{DARKROOM_MONEY_AUDIT};
    return unless $dir && -d $dir && $self->{dbname};
    (my $test = $0) =~ s{.*/}{};
    my $out = "test\t$0\n";
    my @q = ('psql', '-X', '-q', '-A', '-t', '-F', "\t", '-v',
             'ON_ERROR_STOP=1', '-d', $self->{db}, '-c');
    my $n = do {
        open my $ps, '-|', @q, 'SELECT count(*) FROM orders' or undef;
        local $/;
        my $v = $ps ? <$ps> : undef;
        close $ps if $ps;
        $? ? undef : $v;
    };
    if (!defined $n) {
        $out .= "unchecked\tthe database did not answer\n";
    } else {
        chomp $n;
        $out .= "orders\t$n\n";
        open my $ps, '-|', @q, 'SELECT coalesce(order_ref, \'-\'), rule,'
            . ' detail FROM money_invariant_violations()' or die "psql: $!";
        local $/;
        my $v = <$ps> // '';
        close $ps;
        if ($?) {
            $out .= "unchecked\tmoney_invariant_violations() failed\n";
        } else {
            $out .= "violation\t$_\n" for grep { length } split /\n/, $v;
        }
    }
    my $file = "$dir/$test-$self->{dbname}.tsv";
    if (open my $fh, '>', $file) {
        print $fh $out;
        close $fh;
    }
}

sub DESTROY {
    my ($self) = @_;
    $self->cleanup unless ${^GLOBAL_PHASE} eq 'DESTRUCT';
}

# runs before Test::More's own END block and before global destruction
END { $_->cleanup for grep { defined } @live }

1;
