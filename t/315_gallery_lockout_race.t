#!/usr/bin/perl

# darkroom: the gallery lockout cannot be raced.  Each password or PIN
# attempt is counted in the database before scrypt runs, an attempt over
# the budget is refused without scrypt, the right answer is refused while
# the client (or the gallery) is locked out, and a success never clears a
# lock that stands when it is recorded.  To make the races deterministic
# the test holds a lock on gallery_failures from its own session, so that
# attempts queue up inside PostgreSQL at a known point, then lets them go.
# A gallery-wide limit locks the gallery after failures from many
# addresses (real_ip from X-Forwarded-For stands for them).

use strict;
use warnings;

use lib 't/lib';
use Darkroom::Test qw(wait_for);
use IO::Handle;
use JSON::PP;
use POSIX qw(:sys_wait_h);
use Test::More;

my $t = Darkroom::Test->new;
my $dir = $t->dir;

$t->write_file('keys', "m1:media-key-0123456789abcdef\n");
$t->write_file('cookie_key', "cookie-key-0123456789abcdef\n");
$t->write_file('admin_token', "gallery-admin-token\n");

$t->conf(<<'EOF');
%%MAIN%%
thread_pool dr threads=4;
events {}
http {
    %%HTTP%%
    darkroom_db "%%DB%%";
    darkroom_db_pool dr;
    darkroom_jobs off;
    darkroom_admin_token_file %%DIR%%/admin_token;

    darkroom_media_keys %%DIR%%/keys;
    darkroom_gallery_media /media/;
    darkroom_gallery_root %%DIR%%/files;
    darkroom_gallery_cookie_key_file %%DIR%%/cookie_key;
    darkroom_gallery_lockout 3 10m 60s gallery=6;

    server {
        listen 127.0.0.1:%%PORT0%%;

        set_real_ip_from 127.0.0.1;
        real_ip_header X-Forwarded-For;

        location /api/galleries/ {
            darkroom_gallery;
        }

        location /api/admin/galleries/ {
            darkroom_gallery_admin;
        }
    }
}
EOF

$t->start;

sub admin {
    my ($method, $path, $body) = @_;
    return $t->http($method, "/api/admin/galleries/$path", {
        headers => { Authorization => 'Bearer gallery-admin-token' },
        defined $body ? (content => encode_json($body)) : () });
}

sub api {
    my ($path, $body, %h) = @_;
    return $t->http(POST => "/api/galleries/$path",
        { headers => \%h, content => encode_json($body) });
}

for my $slug (qw(race racepin pin late wide)) {
    my $r = admin(POST => '', { slug => $slug, password => 'open sesame',
                                pin => '4321' });
    is($r->{status}, 200, "gallery $slug") or diag $r->{content};
}

# the gallery cookie, for PIN attempts
sub unlock {
    my ($slug) = @_;
    my $u = api("$slug/unlock", { password => 'open sesame' });
    my ($c) = ($u->{headers}{'set-cookie'} // '') =~ /^([^;]+)/;
    return $c;
}

my $db = $t->db;
my ($dbname) = $db =~ /dbname=(\S+)/;

# a session of our own holding an EXCLUSIVE lock on gallery_failures: reads
# go on, every write to the table waits for it
my $holder;

sub hold {
    open $holder, '|-', 'psql', '-X', '-q', '-d', $db
        or die "psql: $!";
    $holder->autoflush(1);
    print $holder "BEGIN;\nLOCK TABLE gallery_failures IN EXCLUSIVE MODE;\n";
    wait_for(sub { $t->sql_value(<<'SQL') }) or die "no table lock\n";
SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
 WHERE c.relname = 'gallery_failures' AND l.granted
   AND l.mode = 'ExclusiveLock'
SQL
}

sub release {
    my ($sql) = @_;
    print $holder(($sql // '') . "COMMIT;\n");
    close $holder;
}

sub waiting {
    return $t->sql_value(<<'SQL') + 0;
SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
 WHERE c.relname = 'gallery_failures' AND NOT l.granted
SQL
}

# a client in a child process; its answer in a file
my $nchild = 0;

sub client {
    my ($path, $body, %h) = @_;
    my $n = ++$nchild;
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        my $r = api($path, $body, %h);
        open my $fh, '>', "$dir/answer.$n" or POSIX::_exit(1);
        print $fh join("\n", $r->{status},
            $r->{headers}{'set-cookie'} ? 'cookie' : 'none',
            $r->{json}{error}{code} // ''), "\n";
        close $fh;
        POSIX::_exit(0);
    }
    return [ $pid, $n ];
}

sub answer {
    my ($c) = @_;
    waitpid($c->[0], 0);
    open my $fh, '<', "$dir/answer.$c->[1]" or return [ 0, 'none', '' ];
    chomp(my @a = <$fh>);
    return \@a;
}

# --- 24 wrong answers at once: three are checked, none more -----------------

for my $case ([ 'race/unlock', 'password',
                sub { { password => "wrong $_[0]" } } ],
              [ 'racepin/download', 'pin',
                sub { { pin => "0$_[0]", all => JSON::PP::true } } ])
{
    my ($path, $kind, $body) = @$case;
    my ($slug) = $path =~ m{^([^/]+)};
    my %h = $kind eq 'pin' ? (Cookie => unlock($slug)) : ();

    hold();
    my @wrong = map { client($path, $body->($_), %h) } 1 .. 24;
    ok(wait_for(sub { waiting() >= 4 }),
        "$kind: four attempts wait inside PostgreSQL");
    release();
    my @a = map { answer($_) } @wrong;
    my %by;
    $by{$_->[0]}++ for @a;
    ok(($by{403} // 0) <= 2, "$kind: at most two of 24 wrong answers get 403 "
        . '(the third locks)') or diag explain \%by;
    is(($by{403} // 0) + ($by{429} // 0), 24, "$kind: the rest are 429")
        or diag explain \%by;
    is(scalar(grep { $_->[1] eq 'cookie' } @a), 0, "$kind: no cookie");

    my $right = $kind eq 'pin' ? { pin => '4321', all => JSON::PP::true }
                               : { password => 'open sesame' };
    my $r = api($path, $right, %h);
    is($r->{status}, 429, "$kind: then the right one: 429");
    ok(!$r->{headers}{'set-cookie'} && !$r->{json}{zip}, "$kind: nothing given");
    ok($t->sql_value("SELECT count(*) FROM gallery_failures f JOIN galleries g"
        . " ON g.id = f.gallery_id WHERE g.slug = '$slug' AND f.kind = '$kind'"
        . " AND f.locked_until > now()"), "$kind: the lock stands");
}

# --- the right answer in flight when the lock comes: refused, lock kept ------

for my $case ([ 'late/unlock', { password => 'open sesame' }, 'password' ],
              [ 'pin/download', { pin => '4321', all => JSON::PP::true },
                'pin' ])
{
    my ($path, $body, $kind) = @$case;
    my ($slug) = $path =~ m{^([^/]+)};
    my %h;

    $h{Cookie} = unlock($slug) if $kind eq 'pin';

    hold();
    my $c = client($path, $body, %h);
    ok(wait_for(sub { waiting() >= 1 }),
        "$kind: the right $kind waits to be recorded");
    # meanwhile wrong answers (of other requests) have locked the client out
    release("INSERT INTO gallery_failures (gallery_id, client, kind, failures,"
        . " locked_until) SELECT id, '127.0.0.1', '$kind', 0,"
        . " now() + interval '60 s' FROM galleries WHERE slug = '$slug';\n");
    my $ans = answer($c);
    is($ans->[0], 429, "$kind: the right $kind while locked out: 429")
        or diag explain $ans;
    is($ans->[1], 'none', "$kind: no cookie");
    is($t->sql_value("SELECT count(*) FROM gallery_failures f JOIN galleries g"
        . " ON g.id = f.gallery_id WHERE g.slug = '$slug'"
        . " AND f.kind = '$kind' AND f.locked_until > now()"), 1,
        "$kind: the success did not clear the lock");
    is(api($path, $body, %h)->{status}, 429, "$kind: still locked out");
}

# --- the gallery-wide limit: 6 failures from 6 addresses lock everyone -------

my @st;
for my $i (1 .. 6) {
    push @st, api('wide/unlock', { password => 'nope' },
                  'X-Forwarded-For' => "192.0.2.$i")->{status};
}
is_deeply(\@st, [ 403, 403, 403, 403, 403, 429 ],
    'five wrong passwords from five addresses: 403; the sixth locks the '
    . 'gallery');
my $r = api('wide/unlock', { password => 'open sesame' },
         'X-Forwarded-For' => '198.51.100.7');
is($r->{status}, 429, 'a new address with the right password: 429');
is($r->{json}{error}{code}, 'locked_out', 'code locked_out');
ok(!$r->{headers}{'set-cookie'}, 'no cookie');
like($r->{headers}{'retry-after'} // '', qr/^\d+$/, 'Retry-After');
is(api('late/unlock', { password => 'open sesame' },
       'X-Forwarded-For' => '198.51.100.7')->{status}, 200,
    'another gallery is not locked');

$t->sql("UPDATE gallery_lockouts SET locked_until = now() - interval '1 s'");
is(api('wide/unlock', { password => 'open sesame' },
       'X-Forwarded-For' => '198.51.100.7')->{status}, 200,
    'after the gallery lock the right password works');

unlike($t->error_log, qr/\[(alert|crit|emerg)\]/, 'no alert in the error log');

# the directive: gallery= is checked by nginx -t, with the file and line
my $c = Darkroom::Test->new;
for my $bad ('gallery=0', 'gallery=x', 'galery=5', 'gallery=1000001') {
    $c->conf(<<"EOF");
%%MAIN%%
events {}
http {
    darkroom_gallery_lockout 3 10m 60s $bad;
}
EOF
    my ($ok, $out) = $c->test_conf;
    ok(!$ok, "nginx -t refuses $bad");
    like($out, qr/invalid parameter "\Q$bad\E".*nginx\.conf:\d+/,
        "naming it and the line") or diag $out;
}
$c->conf(<<"EOF");
%%MAIN%%
events {}
http {
    darkroom_gallery_lockout 3 10m 60s gallery=1000000;
}
EOF
ok(($c->test_conf)[0], 'gallery=1000000 is accepted');

done_testing();
