package Darkroom::Metrics;

# The metrics side of the tests: a scrape of a darkroom_metrics location
# as { 'name{labels}' => value } and its text, and Debian's promtool
# (package prometheus, installed by make deps: its absence fails).
#
#   my ($m, $text) = Darkroom::Metrics::scrape($t, '/metrics', $port);
#   my $promtool = Darkroom::Metrics::promtool();

use strict;
use warnings;

use Exporter qw(import);
our @EXPORT_OK = qw(scrape promtool);

sub scrape {
    my ($t, $path, $port) = @_;
    my $r = $t->http(GET => $path // '/metrics',
        defined $port ? { port => $port } : ());
    die "scrape: $r->{status}\n" unless $r->{status} == 200;
    my %m;
    for (split /\n/, $r->{content}) {
        next if /^#/;
        my ($k, $v) = /^(\S+(?:\{[^}]*\})?) (\S+)$/ or die "bad line: $_\n";
        $m{$k} = $v;
    }
    return (\%m, $r->{content}, $r);
}

sub promtool {
    my ($p) = grep { -x } map { "$_/promtool" } split /:/, $ENV{PATH};
    die "promtool missing: install Debian's prometheus (make deps)\n"
        unless $p;
    return $p;
}

1;
