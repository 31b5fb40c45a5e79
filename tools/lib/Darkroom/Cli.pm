package Darkroom::Cli;

# The command-line conventions of the Perl tools (tools/lib/cli.sh has the
# same for the shell ones):
#
#   options(\%o, SPEC...)  Getopt::Long's GetOptions(\%o, SPEC..., 'help'):
#                          --help prints the help (below); an unknown
#                          option or a bad value is a usage_error naming it
#   usage_error(MSG)       "tool: MSG" and "tool: see tool --help" on
#                          stderr; exit 2
#   help()                 the tool's header comment, from its second line
#                          to the first line that is not a comment, on
#                          stdout; exit 0

use strict;
use warnings;

use Exporter 'import';
use Getopt::Long ();

our @EXPORT_OK = qw(options usage_error help);

sub options {
    my ($o, @spec) = @_;
    my @why;
    my $ok = do {
        local $SIG{__WARN__} = sub { push @why, $_[0] };
        Getopt::Long::GetOptions($o, @spec, 'help');
    };
    help() if $o->{help};
    return if $ok;
    my $why = $why[0] // 'wrong arguments';
    chomp $why;
    usage_error(lcfirst $why);
}

sub usage_error {
    my ($msg) = @_;
    (my $tool = $0) =~ s{.*/}{};
    print STDERR "$tool: $msg\n$tool: see $tool --help\n";
    exit 2;
}

sub help {
    open my $me, '<', $0 or die "$0: $!\n";
    while (<$me>) {
        next if $. == 1;
        last unless s/^# ?//;
        print;
    }
    exit 0;
}

1;
