#!/usr/bin/perl
# SQL functions live in sql/functions/<area>.sql, once each, and are
# re-applied by tools/darkroom-migrate after the migrations on every run:
# the numbered migrations define none, migrating again changes nothing,
# and an edited function file replaces its functions.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Darkroom::Test;

my $t = Darkroom::Test->new;
my $top = $t->top;
my $migrate = "$top/tools/darkroom-migrate";

sub slurp { local (@ARGV, $/) = @_; my $s = <>; return $s }
sub code { my $s = shift; $s =~ s/--[^\n]*//g; return $s }

# the migrations: tables, indexes, constraints and data, no functions
for my $f (sort glob("$top/sql/[0-9][0-9][0-9]_*.sql")) {
    my $name = $f =~ s{.*/}{}r;
    my $sql = code(slurp($f));
    unlike($sql, qr/\bCREATE\s+(OR\s+REPLACE\s+)?FUNCTION\b/i,
        "$name defines no function");
    unlike($sql, qr/\bCREATE\s+(OR\s+REPLACE\s+)?TRIGGER\b/i,
        "$name creates no trigger");
}

# every function once in sql/functions: one CREATE per signature (a name
# twice is an overload, and then the database has it twice too)
my %defined;
my @files = sort glob("$top/sql/functions/*.sql");
ok(@files >= 5, 'sql/functions has the area files');
for my $f (@files) {
    my $sql = code(slurp($f));
    while ($sql =~ /\bCREATE\s+(OR\s+REPLACE\s+)?FUNCTION\s+(\w+)\s*\(/gi) {
        my ($replace, $name) = ($1, lc $2);
        ok($replace, "$name in " . ($f =~ s{.*/}{}r)
            . ' is CREATE OR REPLACE');
        push @{ $defined{$name} }, $f;
    }
}
# an extension's functions (btree_gist) are the extension's, not ours
my %in_db = map { $_->[0] => $_->[1] } $t->sql(
    "SELECT proname, count(*) FROM pg_proc p"
    . " WHERE pronamespace = 'public'::regnamespace AND NOT EXISTS"
    . " (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid"
    . " AND d.deptype = 'e') GROUP BY 1");
is_deeply([ sort keys %defined ], [ sort keys %in_db ],
    'the files define exactly the functions the database has');
for my $name (sort keys %in_db) {
    is(scalar @{ $defined{$name} || [] }, $in_db{$name},
        "$name defined once per signature");
}

# migrating again: nothing printed, no function or trigger changed
my $db = $t->db;
my $defs = "SELECT md5(string_agg(pg_get_functiondef(oid) || oid, ''"
    . " ORDER BY oid)) FROM pg_proc WHERE pronamespace = 'public'::regnamespace";
my $trigs = "SELECT string_agg(tgname || oid, ',' ORDER BY oid)"
    . " FROM pg_trigger WHERE NOT tgisinternal";
my ($d0, $t0) = ($t->sql_value($defs), $t->sql_value($trigs));
is($t->sql_value('SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal'), 20,
    'the triggers of the function files exist');
my $out = `$migrate '$db' 2>&1`;
is($?, 0, 'migrating again succeeds');
is($out, '', 'and prints nothing');
is($t->sql_value($defs), $d0, 'functions unchanged');
my $t1 = $t->sql_value($trigs);
$_ =~ s/\d+//g for $t0, $t1;    # triggers are re-created: names count
is($t1, $t0, 'triggers unchanged');

# a copy of sql/ whose function files we edit
my $dir = $t->dir . '/sql';
system('cp', '-r', "$top/sql", $dir) == 0 or die "cp failed\n";
my $core = "$dir/functions/core.sql";
my $orig = slurp($core);
sub put { open my $fh, '>', $core or die; print $fh @_; close $fh }

put($orig, "\nCREATE OR REPLACE FUNCTION t_probe() RETURNS int"
    . " LANGUAGE sql AS \$\$ SELECT 1 \$\$;\n");
$out = `$migrate '$db' $dir 2>&1`;
is($?, 0, 'a new function is applied') or diag $out;
is($t->sql_value('SELECT t_probe()'), 1, 'and is there');

(my $edited = $orig) =~ s/MESSAGE = p_code/MESSAGE = 'edited:' || p_code/
    or die "darkroom_refuse not found in core.sql\n";
put($edited, "\nCREATE OR REPLACE FUNCTION t_probe() RETURNS int"
    . " LANGUAGE sql AS \$\$ SELECT 2 \$\$;\n");
$out = `$migrate '$db' $dir 2>&1`;
is($?, 0, 'edited functions are applied') or diag $out;
is($t->sql_value('SELECT t_probe()'), 2, 'the new body replaces the old');
is($t->sql_value("SELECT prosrc LIKE '%''edited:''%' FROM pg_proc"
    . " WHERE proname = 'darkroom_refuse'"), 't',
    'an existing function is replaced');

# a broken function file fails the run and changes no function
put($orig, "\nCREATE OR REPLACE FUNCTION t_probe() RETURNS int"
    . " LANGUAGE sql AS \$\$ SELECT 3 \$\$;\n",
    "\nCREATE OR REPLACE FUNCTION t_broken( RETURNS int;\n");
$out = `$migrate '$db' $dir 2>&1`;
isnt($?, 0, 'a broken function file fails the run');
like($out, qr/core\.sql.*syntax error/, 'the file and error are shown');
like($out, qr/darkroom-migrate: applying .*functions failed/,
    'and the migrate says so');
is($t->sql_value('SELECT t_probe()'), 2, 'no function of the run changed');

# back to the tree's files: as before
$out = `$migrate '$db' 2>&1`;
is($?, 0, 'the tree applies again');
is($t->sql_value("SELECT prosrc LIKE '%MESSAGE = p_code,%' FROM pg_proc"
    . " WHERE proname = 'darkroom_refuse'"), 't', 'with its own definitions');

done_testing;
