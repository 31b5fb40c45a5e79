package Darkroom::Import;
# Darkroom::Import: what tools/darkroom-import (a folder, from the command
# line) and tools/darkroom-importer (the photo_import jobs of browser
# uploads) both do to a photo, in one copy: its size, CRC-32 and SHA-256;
# its pixel size as shown (EXIF orientation applied); whether ImageMagick
# reads it at all; and the web copy and the watermarked proof `convert`
# makes of it.  Core Perl modules and ImageMagick's command line only.

use strict;
use warnings;

use Compress::Zlib ();
use Digest::SHA;
use File::Basename qw(dirname);
use File::Path qw(make_path);

use Exporter 'import';
our @EXPORT_OK = qw(digest derive pixels check_image);

# size, CRC-32 and SHA-256 (hex) of a file, read in 1 MiB pieces
sub digest {
    my ($file) = @_;
    open my $fh, '<:raw', $file or die "$file: $!\n";
    my ($crc, $sha, $size, $buf) = (0, Digest::SHA->new(256), 0);
    while (my $n = read $fh, $buf, 1 << 20) {
        $crc = Compress::Zlib::crc32($buf, $crc);
        $sha->add($buf);
        $size += $n;
    }
    defined $size or die "$file: $!\n";
    close $fh;
    return ($size, $crc, $sha->hexdigest);
}

# a font ImageMagick can use for the watermark: fontconfig's sans
my $font;
sub font {
    return $font if defined $font;
    $font = `fc-match -f '%{file}' sans 2>/dev/null` // '';
    $font = '' unless -f $font;
    return $font;
}

# A copy of $src whose long edge is at most $px, stripped of metadata, and
# with $mark written across it when given (the proof).  Written beside $dst
# and renamed: a reader never sees half a file, and two writers of the
# same copy leave one whole.  Dies on failure.
sub derive {
    my ($src, $dst, $px, $mark) = @_;
    make_path(dirname($dst));
    my $tmp = "$dst.tmp-$$.jpg";
    my @cmd = ('convert', "$src\[0]", '-auto-orient', '-resize',
               "${px}x${px}>", '-strip');
    push @cmd, (font() ? ('-font', font()) : ()),
               '-gravity', 'center', '-fill', 'rgba(255,255,255,0.35)',
               '-pointsize', int($px / 8), '-annotate', '-30x-30+0+0', $mark
        if defined $mark;
    push @cmd, '-quality', '85', $tmp;
    if (system(@cmd) != 0) {
        unlink $tmp;
        die "convert failed for $src\n";
    }
    rename $tmp, $dst or do { unlink $tmp; die "$dst: $!\n" };
}

# the original's pixels as it is shown (EXIF orientation applied): what
# the print checks weigh against a print size; identify reads the header
sub pixels {
    my ($file) = @_;
    open my $id, '-|', 'identify', '-ping', '-format',
        '%w %h %[orientation]\n', "$file\[0]" or return;
    my $dim = <$id> // '';
    close $id;
    my ($w, $h, $o) = $dim =~ /^(\d+) (\d+) ?(\S*)/ or return;
    ($w, $h) = ($h, $w) if $o =~ /^(LeftTop|RightTop|RightBottom|LeftBottom)$/;
    return (0 + $w, 0 + $h);
}

# undef if ImageMagick reads $file as an image (its pixels decoded, not
# only its header), else ImageMagick's complaint
sub check_image {
    my ($file) = @_;
    my $pid = open my $id, '-|';
    defined $pid or die "identify: $!\n";
    if (!$pid) {
        open STDERR, '>&', \*STDOUT;
        exec 'identify', '-regard-warnings', '-format', '%w\n', "$file\[0]";
        exit 127;
    }
    my @out = <$id>;
    close $id;
    return undef if $? == 0;
    my ($why) = grep { /\S/ } @out;
    $why //= 'identify failed';
    chomp $why;
    $why =~ s/^identify(-im6\.q16)?: //;
    $why =~ s/ \@ (error|warning)\/.*//;
    return $why;
}

1;
