#!/usr/bin/perl
# Migrations: applied in order, recorded, and applying them again changes
# nothing.  A failing migration leaves no trace.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Darkroom::Test;

my $t = Darkroom::Test->new;
my $db = $t->db;    # a fresh database, migrated once by the harness
my $migrate = $t->top . '/tools/darkroom-migrate';

my @files = sort glob($t->top . '/sql/[0-9][0-9][0-9]_*.sql');
my @versions = map { /(\d{3})_[^\/]*\.sql$/ ? 0 + $1 : () } @files;

is_deeply([ map { $_->[0] } $t->sql('SELECT version FROM schema_migrations'
    . ' ORDER BY version') ], \@versions, 'every migration recorded in order');

sub schema {
    return join "\n", map { join '|', @$_ } $t->sql(
        "SELECT table_name, column_name, data_type, column_default"
        . " FROM information_schema.columns WHERE table_schema = 'public'"
        . " ORDER BY 1, 2");
}

my $before = schema();
my $stamp = $t->sql_value('SELECT max(applied_at) FROM schema_migrations');

my $out = `$migrate '$db' 2>&1`;
is($?, 0, 'second run succeeds');
is($out, '', 'second run applies nothing');
is(schema(), $before, 'schema unchanged');
is($t->sql_value('SELECT max(applied_at) FROM schema_migrations'), $stamp,
    'records unchanged');

# a broken migration rolls back entirely and is not recorded
my $dir = $t->dir . '/sql';
mkdir $dir;
system('cp', @files, $dir);
$t->write_file('sql/998_ok.sql', "CREATE TABLE t_ok (id int);\n");
$t->write_file('sql/999_broken.sql',
    "CREATE TABLE t_broken (id int);\nSELECT no_such_function();\n");
$out = `$migrate '$db' $dir 2>&1`;
isnt($?, 0, 'a failing migration fails the run');
like($out, qr/no_such_function/, 'the database error is shown');
is($t->sql_value("SELECT count(*) FROM schema_migrations WHERE version = 998"),
    1, 'the good one before it is applied');
is($t->sql_value("SELECT count(*) FROM schema_migrations WHERE version = 999"),
    0, 'the broken one is not recorded');
is($t->sql_value("SELECT to_regclass('t_broken') IS NULL"), 't',
    'and left nothing behind');

done_testing;
