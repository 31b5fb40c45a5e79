package Darkroom::Backup;
# Darkroom::Backup: what tools/darkroom-backup and tools/darkroom-restore
# share: the media roots given on the command line, the manifest (its
# lines, the encoding of paths, the closing line that proves it whole),
# and a copy that computes the SHA-256 of what it copies.  Core Perl only.
#
# A manifest is text, one entry a line:
#
#   darkroom-backup 1
#   created 2026-12-03T18:30:00Z
#   root gallery /srv/shop/galleries
#   file <sha256> <bytes> <mode> db.dump
#   file <sha256> <bytes> <mode> files/gallery/wed/IMG_1.jpg
#   missing gallery wed/IMG_9.jpg
#   end <lines before this one> <sha256 of the text before this line>
#
# Paths are relative to the backup, with "%", white space and control
# characters percent-encoded.  A manifest without its "end" line, or whose
# count or digest does not match, is incomplete or corrupted.

use strict;
use warnings;

use Digest::SHA;
use Exporter 'import';
use File::Basename qw(dirname);
use File::Path qw(make_path);

use Darkroom::Cli qw(usage_error);

our @EXPORT_OK = qw(ROOT_OPTIONS roots_of enc dec manifest_text
    read_manifest copy_file);

use constant FORMAT => 'darkroom-backup 1';

# the options that name media roots, for Getopt::Long, and their names
use constant ROOT_OPTIONS => ('gallery-root=s', 'print-root=s', 'media=s@');

# --gallery-root, --print-root and --media NAME=DIR as { name => dir };
# dies with a usage message on a bad or repeated name
sub roots_of {
    my ($o) = @_;
    my %roots;
    $roots{gallery} = $o->{'gallery-root'} if defined $o->{'gallery-root'};
    $roots{prints} = $o->{'print-root'} if defined $o->{'print-root'};
    for (@{ $o->{media} // [] }) {
        my ($name, $dir) = /^([a-z0-9][a-z0-9_-]{0,31})=(.+)$/
            or usage_error("--media $_: expected NAME=DIR, NAME of"
                . " lower-case letters, digits, _ and -");
        usage_error("media root $name given twice") if exists $roots{$name};
        $roots{$name} = $dir;
    }
    s{(?<=.)/+$}{} for values %roots;
    return \%roots;
}

sub enc {
    my ($s) = @_;
    $s =~ s/([%\s\x00-\x1f\x7f])/sprintf '%%%02X', ord $1/ge;
    return $s;
}

sub dec {
    my ($s) = @_;
    $s =~ s/%([0-9A-F]{2})/chr hex $1/ge;
    return $s;
}

# the manifest's text for a list of lines (without newlines)
sub manifest_text {
    my (@lines) = @_;
    my $body = join '', map { "$_\n" } FORMAT, @lines;
    my $n = 1 + @lines;
    return $body . "end $n " . Digest::SHA::sha256_hex($body) . "\n";
}

# { created, roots => {name => dir}, files => [{sha256, bytes, mode,
# path}], missing => [[root, path]] }, or dies saying what is wrong
sub read_manifest {
    my ($file) = @_;
    open my $fh, '<:raw', $file
        or die "no manifest ($file: $!): the backup is incomplete\n";
    my @lines = <$fh>;
    close $fh;
    my $last = @lines ? pop @lines : '';
    my $body = join '', @lines;
    my ($n, $digest) = $last =~ /^end (\d+) ([0-9a-f]{64})\n\z/
        or die "the manifest has no end line: the backup is incomplete\n";
    $n == @lines && $digest eq Digest::SHA::sha256_hex($body)
        or die "the manifest does not match its end line: corrupted\n";
    chomp @lines;
    shift @lines eq FORMAT
        or die "not a darkroom backup manifest (format "
            . FORMAT . " expected)\n";
    my %m = (roots => {}, files => [], missing => []);
    for (@lines) {
        if (/^created (\S+)$/) {
            $m{created} = $1;
        } elsif (/^root ([a-z0-9_-]+) (\S+)$/) {
            $m{roots}{$1} = dec($2);
        } elsif (/^file ([0-9a-f]{64}) (\d+) ([0-7]{3,4}) (\S+)$/) {
            push @{$m{files}}, { sha256 => $1, bytes => $2, mode => oct $3,
                                 path => dec($4) };
        } elsif (/^missing ([a-z0-9_-]+) (\S+)$/) {
            push @{$m{missing}}, [$1, dec($2)];
        } else {
            die "the manifest has a line it does not know: $_\n";
        }
    }
    return \%m;
}

# Copies $from to $to (made through "$to.tmp" and a rename, with the
# directories above it) and returns (bytes, sha256 hex) of what was read.
sub copy_file {
    my ($from, $to, $mode) = @_;
    make_path(dirname($to));
    open my $in, '<:raw', $from or die "$from: $!\n";
    open my $out, '>:raw', "$to.tmp" or die "$to.tmp: $!\n";
    my ($sha, $bytes, $buf) = (Digest::SHA->new(256), 0);
    while (1) {
        my $n = sysread $in, $buf, 1 << 20;
        defined $n or die "$from: $!\n";
        last unless $n;
        $sha->add($buf);
        $bytes += $n;
        print {$out} $buf or die "$to: $!\n";
    }
    close $in;
    close $out or die "$to: $!\n";
    chmod $mode, "$to.tmp" if defined $mode;
    rename "$to.tmp", $to or die "$to: $!\n";
    return ($bytes, $sha->hexdigest);
}

1;
