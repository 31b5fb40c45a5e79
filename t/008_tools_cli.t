#!/usr/bin/perl
# Every executable in tools/ (found by listing the directory: a new tool
# without --help fails here) has a --help (usage on stdout, nothing on
# stderr, exit 0) and refuses a wrong argument clearly: "tool: ..." naming
# the problem and "tool: see tool --help" on stderr, nothing on stdout,
# exit 2, nothing written (no file in its working directory, no row or
# table in the database it would use).  Wrong arguments: an unknown
# option for every tool; a missing required argument and one too many for
# the operator tools.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use File::Temp qw(tempdir);
use Darkroom::Test;

my $t = Darkroom::Test->new;
my $db = $t->db;                    # migrated: the tools' usual target
my $e = Darkroom::Test->new;
my $empty = $e->empty_db;           # never migrated: darkroom-migrate's
my $top = $t->top;
my $out = tempdir(DIR => $t->dir);  # each run's stdout and stderr

opendir my $dh, "$top/tools" or die "tools: $!";
my @tools = sort grep { -f "$top/tools/$_" && -x _ } readdir $dh;
closedir $dh;
ok(@tools >= 17, scalar(@tools) . ' tools') or diag("@tools");

# every table's row count: any row a tool writes changes it
my $FINGERPRINT = q{
SELECT coalesce(string_agg(c.relname || '=' || (xpath('/row/n/text()',
       query_to_xml(format('SELECT count(*) AS n FROM %I.%I', s.nspname,
       c.relname), false, true, '')))[1]::text, ' ' ORDER BY c.relname), '')
FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND s.nspname = 'public'};
sub fingerprint { scalar $t->sql_value($FINGERPRINT) }
sub empty_tables {
    my $n = `psql -X -qAt -d '$empty' -c "SELECT count(*) FROM pg_class
        WHERE relnamespace = 'public'::regnamespace" 2>&1`;
    chomp $n;
    return $n;
}

my $before = fingerprint();
like($before, qr/schema_migrations=\d+/, 'the database is fingerprinted');
is(empty_tables(), 0, 'the empty database is empty');

# runs tools/NAME ARGS in a new empty directory, DARKROOM_DB set;
# (exit status, stdout, stderr, files left in the directory)
my $n = 0;
sub run_tool {
    my ($name, @args) = @_;
    my $cwd = tempdir(DIR => $t->dir);
    my ($o, $r) = ("$out/" . ++$n . '.out', "$out/$n.err");
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        chdir $cwd or die "$cwd: $!";
        $ENV{DARKROOM_DB} = $db;
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', $o;
        open STDERR, '>', $r;
        exec "$top/tools/$name", @args;
        die "exec $name: $!";
    }
    waitpid $pid, 0;
    my $rc = $? & 127 ? 'signal ' . ($? & 127) : $? >> 8;
    opendir my $d, $cwd or die "$cwd: $!";
    my @left = grep { !/^\.\.?$/ } readdir $d;
    closedir $d;
    return ($rc, slurp($o), slurp($r), \@left);
}

sub slurp {
    my ($f) = @_;
    open my $fh, '<', $f or return '';
    local $/;
    return scalar <$fh>;
}

# a wrong argument: exit 2, "tool: <what>" and the pointer to --help on
# stderr, nothing else, nothing written
sub refused {
    my ($name, $what, $args, $why) = @_;
    my ($rc, $stdout, $stderr, $left) = run_tool($name, @$args);
    my $case = "$name @$args";
    is($rc, 2, "$case: exit 2 ($why)") or diag($stderr);
    like($stderr, qr/^\Q$name\E: .*\Q$what\E/m,
        "$case: stderr names the tool and the problem");
    like($stderr, qr/^\Q$name\E: see \Q$name\E --help$/m,
        "$case: and points to --help");
    is($stdout, '', "$case: nothing on stdout");
    is("@$left", '', "$case: no file made");
    is(fingerprint(), $before, "$case: no row written");
    is(empty_tables(), 0, "$case: no table made");
}

for my $name (@tools) {
    my ($rc, $stdout, $stderr, $left) = run_tool($name, '--help');
    is($rc, 0, "$name --help: exit 0");
    like($stdout, qr/usage/i, "$name --help: usage on stdout");
    like($stdout, qr/\Q$name\E/, "$name --help: names the tool");
    like($stdout, qr/\bexit\b/i, "$name --help: says its exit codes");
    is($stderr, '', "$name --help: nothing on stderr");
    is("@$left", '', "$name --help: no file made");

    refused($name, 'bogus-option', ['--bogus-option'], 'unknown option');
}

# the operator tools: a required argument missing, one too many
my @cases = (
    [ 'darkroom-migrate', 'conninfo', [], 'missing' ],
    [ 'darkroom-migrate', 'extra', [ $empty, "$top/sql", 'extra' ], 'too many' ],
    [ 'darkroom-migrate', '--bogus', [ '--bogus', $empty ], 'unknown option first' ],
    [ 'darkroom-owner', 'email', [ $db ], 'missing' ],
    [ 'darkroom-owner', 'extra', [ $db, 'boss@example.com', 'extra' ], 'too many' ],
    [ 'darkroom-owner', '--bogus', [ '--reset', '--bogus', $db, 'boss@example.com' ],
      'unknown option with the others' ],
    [ 'darkroom-catalogue', 'FILE.json', [ $db ], 'missing' ],
    [ 'darkroom-catalogue', 'extra', [ $db, "$top/conf/demo-catalogue.json", 'extra' ],
      'too many' ],
    [ 'darkroom-import', 'folder', [ 'wed' ], 'missing' ],
    [ 'darkroom-import', 'extra', [ 'wed', $t->dir, 'extra' ], 'too many' ],
    [ 'darkroom-importer', '--root', [ '--once' ], 'missing' ],
    [ 'darkroom-importer', 'extra', [ '--once', '--root', $t->dir, 'extra' ],
      'too many' ],
    [ 'darkroom-sign', 'PATH', [ '--keys', '/dev/null' ], 'missing' ],
    [ 'darkroom-sign', 'extra', [ '/a.jpg', 'extra' ], 'too many' ],
    [ 'darkroom-sign', 'ttl', [ '--ttl', 'soon', '/a.jpg' ], 'a bad value' ],
    [ 'darkroom-backup', '--out', [], 'missing' ],
    [ 'darkroom-backup', 'extra', [ '--out', 'b', 'extra' ], 'too many' ],
    [ 'darkroom-restore', '--from', [], 'missing' ],
    [ 'darkroom-restore', 'extra', [ '--from', $t->dir, 'extra' ], 'too many' ],
);
refused(@$_) for @cases;

$e->drop_db;    # never migrated: nothing for the money audit
done_testing;
