#!/usr/bin/perl
# The Debian package: `make deb` builds libnginx-mod-http-darkroom, lintian
# finds no error or warning; it installs into the system's nginx (the
# module in /usr/lib/nginx/modules, its load_module snippet enabled by the
# modules-enabled symlink), the packaged darkroom-migrate migrates a
# throwaway cluster from the packaged SQL, the system nginx loading the
# module through that symlink answers /health with 200, and dpkg -r, then
# dpkg -P, take every file of it away again.
#
# It changes the machine while it runs, so it runs as root only, and only
# when the package is not installed already (it would replace it).  On the
# way out, passed or not, its nginx is stopped and the package purged.

use strict;
use warnings;
use lib 't/lib';
use Fcntl qw(:flock);
use Test::More;
use Darkroom::Test qw(wait_for);

my $PKG  = 'libnginx-mod-http-darkroom';
my $SO   = '/usr/lib/nginx/modules/ngx_http_darkroom_module.so';
my $SNIP = '/usr/share/nginx/modules-available/mod-http-darkroom.conf';
my $LINK = '/etc/nginx/modules-enabled/50-mod-http-darkroom.conf';
my $SHARE = '/usr/share/darkroom';
my $NGINX = '/usr/sbin/nginx';

plan skip_all => 'installs a package into the system: run as root' if $> != 0;
plan skip_all => 'no dpkg: not a Debian system' unless -x '/usr/bin/dpkg';

sub status { `dpkg-query -W -f='\${Status}' $_[0] 2>/dev/null` }

# dpkg knows it, in any state but "not-installed"
sub known { my $s = status($PKG); length($s) && $s !~ /not-installed$/ }

# one run at a time on a machine (two suites on it would install and
# remove the same package under each other): the lock goes with the process
open my $lock, '>', '/run/lock/darkroom-900_deb.lock' or die "lock: $!";
wait_for(sub { flock($lock, LOCK_EX | LOCK_NB) }, 600)
    or plan skip_all => 'another run of this test held the machine for 10 min';

plan skip_all => "$PKG is installed on this machine, and this test would"
    . " replace it: remove it (dpkg -P $PKG) to run this test"
    if known();

my $t = Darkroom::Test->new;
my $dir = $t->dir;
my $top = $t->top;
my ($installed, $pg);

# dpkg waits for no lock: try again while another dpkg or apt holds it
sub dpkg {
    my (@args) = @_;
    my ($out, $rc);
    wait_for(sub {
        $out = `dpkg @args 2>&1`;
        $rc = $?;
        return $rc == 0 || $out !~ /lock/;
    }, 300);
    return ($rc == 0, $out);
}

# the system's nginx, its own configuration: nginx -t passes or not
sub system_conf_ok { system("$NGINX -t -q 2>/dev/null") == 0 }

sub listing { join ' ', sort map { s{.*/}{}r } glob("$_[0]/*") }

sub done { done_testing; exit }

# a test killed (prove interrupted) still stops its nginx and purges
$SIG{INT} = $SIG{TERM} = sub { exit 1 };
END {
    local $?;
    $t->stop if $t;
    if ($installed && known()) {
        my ($ok, $out) = dpkg('-P', $PKG);
        diag("purging $PKG on the way out failed:\n$out") unless $ok;
    }
    system("$top/tools/darkroom-pg", 'stop', $pg) if $pg;
}

my $conf_before = system_conf_ok();
my %before = map { $_ => listing($_) }
    '/usr/lib/nginx/modules', '/etc/nginx/modules-enabled';

# --- the package ---------------------------------------------------------
# make deb fails unless lintian finds no error and no warning (without an
# override giving its reason)
my $out = `make -s -C $top deb DEB_OUT=$dir/deb 2>&1`;
ok($? == 0, 'make deb builds the package, lintian finds no error or warning')
    or do { diag($out); done() };
my ($deb) = glob("$dir/deb/${PKG}_*.deb");
ok($deb && -f $deb, 'the .deb is there') or done();

my %f = map { $_ => scalar `dpkg-deb -f $deb $_` } qw(Package Version Depends);
chomp %f;
is($f{Package}, $PKG, 'package name');
my ($version) = $t->read_file("$top/src/core/ngx_http_darkroom.h")
    =~ /NGX_HTTP_DARKROOM_VERSION\s+"([^"]+)"/;
like($f{Version}, qr/^\Q$version\E(\+git\d+\.[0-9a-f]+)?$/,
    "version: the module's ($version), and the commit");

my ($abi) = $t->read_file(
    '/usr/share/nginx/src/debian/libnginx-mod.abisubstvars')
    =~ /^nginx:abi=(\S+)/m;
like($f{Depends}, qr/(^|, )\Q$abi\E(,|$)/,
    "depends on the nginx ABI it was built for ($abi)");
like(`dpkg-query -W -f='\${Provides}' nginx`, qr/\Q$abi\E/,
    'which the installed nginx provides');
like($f{Depends}, qr/\b$_\b/, "depends on $_")
    for qw(libcurl4 libpq5 libcjson1 libssl3);

my $list = `dpkg-deb -c $deb`;
like($list, qr{ \./\Q$_\E$}m, "ships /$_") for
    map { s{^/}{}r } $SO, $SNIP,
    "$SHARE/tools/darkroom-migrate", "$SHARE/conf/darkroom.conf.example",
    "$SHARE/docs/directives.md", "$SHARE/sql/001_jobs.sql",
    "$SHARE/sql/functions/core.sql", "$SHARE/www/admin/index.html";
my @migrations = map { s{.*/}{}r } glob("$top/sql/[0-9][0-9][0-9]_*.sql");
is(scalar(() = $list =~ m{ \./usr/share/darkroom/sql/\d{3}_\S+\.sql$}mg),
    scalar @migrations, 'every migration of the tree');

# --- installed into the system's nginx ----------------------------------
$installed = 1;
$out = `DEBIAN_FRONTEND=noninteractive apt-get install -y -q \\
    --no-install-recommends -o DPkg::Lock::Timeout=300 $deb 2>&1`;
ok($? == 0, 'apt-get installs it') or do { diag($out); done() };
like(status($PKG), qr/install ok installed/, 'dpkg says installed');

ok(-f $SO, "the module in $SO");
is($t->read_file($SNIP), "load_module modules/ngx_http_darkroom_module.so;\n",
    'the load_module snippet in modules-available');
is(readlink($LINK), $SNIP, 'postinst enabled it: the modules-enabled symlink');
SKIP: {
    skip "the system's nginx configuration failed nginx -t before", 1
        unless $conf_before;
    ok(system_conf_ok(), "the system's configuration, module loaded, passes"
        . ' nginx -t');
}

# --- the packaged migrations, the system nginx, /health ------------------
$pg = "$dir/pg";
ok(system("$top/tools/darkroom-pg", 'start', $pg, 'deb') == 0,
    'a throwaway cluster') or done();
chomp(my $db = `$top/tools/darkroom-pg conninfo $pg deb`);
$out = `$SHARE/tools/darkroom-migrate '$db' 2>&1`;
ok($? == 0, 'the packaged darkroom-migrate applies the packaged SQL')
    or diag($out);
my $q = 'SELECT count(*), max(version) FROM schema_migrations';
chomp(my $applied = `psql -X -tA -d '$db' -c '$q'`);
my ($top_version) = $migrations[-1] =~ /^(\d+)/;
is($applied, scalar(@migrations) . '|' . (0 + $top_version),
    'every migration applied');

# the system's binary, its own prefix (so "modules/" is the system's), the
# enabled modules included as /etc/nginx/nginx.conf does
my $user = system('runuser', '-u', 'www-data', '--', 'test', '-x', $dir) == 0
    ? 'www-data' : 'root';
my $port = $t->port(0);
$t->write_file('nginx.conf', <<"CONF");
include /etc/nginx/modules-enabled/*.conf;
user $user;
pid $dir/nginx.pid;
error_log $dir/error.log info;
worker_processes 1;
events {}
http {
    access_log $dir/access.log;
    client_body_temp_path $dir/client_body_temp;
    proxy_temp_path $dir/proxy_temp;
    fastcgi_temp_path $dir/fastcgi_temp;
    uwsgi_temp_path $dir/uwsgi_temp;
    scgi_temp_path $dir/scgi_temp;
    darkroom_db "$db";
    server {
        listen 127.0.0.1:$port;
        location = /health { darkroom_health; }
    }
}
CONF
$out = `$NGINX -c $dir/nginx.conf 2>&1`;
ok($? == 0, 'the system nginx starts with the packaged module')
    or do { diag($out . $t->error_log); done() };
$t->{started} = 1;   # $t->stop ends it: its pid file is $dir/nginx.pid

my $r;
wait_for(sub { $r = $t->http(GET => '/health'); $r->{status} == 200 }, 30);
is($r->{status}, 200, '/health answers 200 through the system nginx')
    or diag($r->{content});
is($r->{json}{db}, 'ok', 'its database is up');
is($r->{json}{version}, $version, 'the packaged module answers');
is($r->{json}{schema}, 0 + $top_version, 'at the packaged schema');

$t->stop;
ok(!-e "$dir/nginx.pid" || !kill(0, $t->master_pid), 'nginx stopped');

# --- removed, purged ----------------------------------------------------
my ($ok, $dout) = dpkg('-r', $PKG);
ok($ok, 'dpkg -r removes it') or diag($dout);
ok(!-e $_, "$_ is gone") for $SO, $SNIP, $SHARE;
ok(!-e $LINK && !-l $LINK, 'prerm took the module out of modules-enabled');
is(listing('/usr/lib/nginx/modules'), $before{'/usr/lib/nginx/modules'},
    '/usr/lib/nginx/modules as before');
# Debian's own module packages keep the link as *.removed until a purge
# (nginx includes *.conf only), so a reinstall enables it again
my $enabled = listing('/etc/nginx/modules-enabled');
is($enabled =~ s/ ?50-mod-http-darkroom\.conf\.removed//r,
    $before{'/etc/nginx/modules-enabled'},
    'nothing else in modules-enabled but the marker a purge removes');
SKIP: {
    skip "the system's nginx configuration failed nginx -t before", 1
        unless $conf_before;
    ok(system_conf_ok(), "the system's configuration passes nginx -t again");
}

($ok, $dout) = dpkg('-P', $PKG);
ok($ok, 'dpkg -P purges it') or diag($dout);
ok(!known(), 'dpkg knows it no more');
is(listing($_), $before{$_}, "$_ exactly as before")
    for sort keys %before;
$installed = 0;

done_testing;
