#!/usr/bin/perl
# The layering of src/: one nginx module per folder, dependencies pointing
# down to src/core.  A feature includes core's headers and its own; it never
# includes another feature's header nor names another feature's module, and
# core names no feature at all.  Every source file is built by config, and
# no function is longer than 100 lines.  Reads the files; starts nothing.

use strict;
use warnings;
use File::Basename qw(basename dirname);
use Test::More;

my $top = dirname(dirname(__FILE__));
$top = '.' if $top eq '';
my $src = "$top/src";

my @dirs = sort map { basename($_) } grep { -d } glob("$src/*");
ok((grep { $_ eq 'core' } @dirs), 'src/core exists');
is(scalar(grep { -f } glob("$src/*")), 0, 'no source file outside a folder');

my %folder_of;    # header basename -> folder
for my $d (@dirs) {
    $folder_of{ basename($_) } = $d for glob("$src/$d/*.h");
}

my @features = grep { $_ ne 'core' } @dirs;
my @files = map { glob("$src/$_/*.[ch]") } @dirs;

sub slurp {
    my ($f) = @_;
    open my $fh, '<', $f or die "$f: $!";
    local $/;
    return <$fh>;
}

# 1. includes: own folder or core, by bare name only

my @bad;
for my $f (@files) {
    my $here = basename(dirname($f));
    my $text = slurp($f);
    while ($text =~ /^\s*#\s*include\s+"([^"]+)"/mg) {
        my $inc = $1;
        my $rel = "src/$here/" . basename($f);
        if ($inc =~ m{/}) {
            push @bad, "$rel includes \"$inc\": a path, not a name";
            next;
        }
        my $there = $folder_of{$inc};
        if (!defined $there) {
            push @bad, "$rel includes \"$inc\": not a header in src/";
        } elsif ($there ne $here && $there ne 'core') {
            push @bad, "$rel includes \"$inc\" of src/$there: sideways";
        } elsif ($here eq 'core' && $there ne 'core') {
            push @bad, "$rel includes \"$inc\" of src/$there: upwards";
        }
    }
}
is_deeply(\@bad, [], 'includes point to core or the own folder')
    or diag(join "\n", @bad);

# 2. symbols: a folder names only its own nginx modules and core's

my %module_of;    # ngx_http_darkroom_X_module -> folder
for my $f (@files) {
    my $here = basename(dirname($f));
    my $text = slurp($f);
    while ($text =~ /^ngx_module_t\s+(ngx_http_darkroom\w*_module)\s*=/mg) {
        $module_of{$1} = $here;
    }
}
ok(scalar(keys %module_of) >= 1 + @features, 'every folder defines a module')
    or diag(join ' ', sort keys %module_of);

@bad = ();
for my $f (@files) {
    my $here = basename(dirname($f));
    my $text = slurp($f);
    $text =~ s{/\*.*?\*/}{}gs;    # comments may tell of other modules
    my %seen;
    while ($text =~ /\b(ngx_http_darkroom\w*_module)\b/g) {
        my $m = $1;
        my $there = $module_of{$m};
        next if !defined $there || $there eq $here || $there eq 'core';
        next if $seen{$m}++;
        push @bad, "src/$here/" . basename($f) . " names $m of src/$there";
    }
}
is_deeply(\@bad, [], 'no folder names another feature\'s module')
    or diag(join "\n", @bad);

# 3. config builds every source file, and only those

my $config = slurp("$top/config");
my %listed;
$listed{$1} = 1 while $config =~ m{\$d/(\w+/[\w.]+\.c)\b}g;
my %present = map { (my $r = $_) =~ s{^\Q$src\E/}{}; ($r => 1) }
              grep { /\.c$/ } @files;
is_deeply([ sort keys %listed ], [ sort keys %present ],
    'config lists every .c under src/');

# 4. no function over 100 lines (name at column 0 to the closing brace)

my @long;
for my $f (@files) {
    my @lines = split /\n/, slurp($f);
    my ($name, $start);
    for my $i (0 .. $#lines) {
        if ($lines[$i] =~ /^([a-z_][a-z0-9_]*)\(/) {
            ($name, $start) = ($1, $i);
        } elsif ($lines[$i] eq '}' && defined $name) {
            my $n = $i - $start + 1;
            my $rel = $f;
            $rel =~ s{^\Q$top\E/}{};
            push @long, "$rel: $name $n lines" if $n > 100;
            undef $name;
        }
    }
}
is_deeply(\@long, [], 'no function over 100 lines') or diag(join "\n", @long);

done_testing();
