# tools/lib/cli.sh: the command-line conventions of the shell tools, the
# same as tools/lib/Darkroom/Cli.pm's for the Perl ones.  Sourced (POSIX
# sh, so darkroom-nginx-sanitize can use it too):
#
#   cli_help            the tool's header comment (from its second line to
#                       the first line that is not a comment) on stdout;
#                       exit 0
#   cli_usage_error MSG "tool: MSG" and "tool: see tool --help" on stderr;
#                       exit 2

cli_tool=${0##*/}

cli_help() {
    sed -n '2,$ { /^#/!q; s/^# \{0,1\}//; p; }' "$0"
    exit 0
}

cli_usage_error() {
    printf '%s: %s\n%s: see %s --help\n' "$cli_tool" "$1" "$cli_tool" \
        "$cli_tool" >&2
    exit 2
}
