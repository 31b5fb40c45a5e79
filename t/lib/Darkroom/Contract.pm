package Darkroom::Contract;

# Provider contracts: what each provider's published API accepts and sends,
# kept as JSON Schema files (a subset, below) under t/contract/<provider>/,
# one file per request or payload, each naming the documentation it was
# written from in "$comment" / "x-source".  A test validates every request
# darkroom sent to a fake provider, and every payload a sandbox produced,
# against them, so a field invented on both sides fails.
#
#   use Darkroom::Contract qw(contract_ok contract_errors);
#   contract_ok('prodigi', 'order_create', $decoded_body, 'order request');
#   my @errors = contract_errors('stripe', 'event', $event);
#
# Supported keywords: type (string or list; "integer" is a number without
# a fraction), enum, const, required, properties, additionalProperties
# (false or a schema), items, minItems, maxItems, minLength, maxLength,
# pattern, minimum, maximum, anyOf, oneOf, $ref to "#/definitions/NAME"
# inside the same file.  Unknown keywords are an error, so a schema never
# silently checks less than it reads as.

use strict;
use warnings;

use Cwd qw(abs_path);
use Exporter qw(import);
use File::Basename qw(dirname);
use JSON::PP;
use Scalar::Util qw(blessed looks_like_number);
use Test::More;

our @EXPORT_OK = qw(contract_ok contract_errors load_contract);

my $DIR = abs_path(dirname(__FILE__) . '/../../contract');
my %cache;

my %KNOWN = map { $_ => 1 } qw(
    $schema $comment $id x-source title description definitions examples
    type enum const required properties additionalProperties items
    minItems maxItems minLength maxLength pattern minimum maximum
    anyOf oneOf $ref format
);

sub load_contract {
    my ($provider, $name) = @_;
    my $file = "$DIR/$provider/$name.json";
    return $cache{$file} //= do {
        open my $fh, '<', $file or die "contract $file: $!\n";
        local $/;
        my $schema = JSON::PP->new->decode(<$fh>);
        die "contract $file: no x-source (the documentation it follows)\n"
            unless $schema->{'x-source'};
        $schema;
    };
}

sub contract_errors {
    my ($provider, $name, $data) = @_;
    my $schema = load_contract($provider, $name);
    my @errors;
    _check($schema, $schema, $data, '$', \@errors);
    return @errors;
}

sub contract_ok {
    my ($provider, $name, $data, $what) = @_;
    my @errors = contract_errors($provider, $name, $data);
    my $ok = Test::More->builder->ok(!@errors,
        ($what // "$provider $name") . " matches the $provider contract");
    Test::More->builder->diag(join "\n", @errors[0 .. ($#errors < 9
        ? $#errors : 9)]) unless $ok;
    return $ok;
}

sub _type_of {
    my ($v) = @_;
    return 'null' unless defined $v;
    return 'boolean' if blessed($v) && $v->isa('JSON::PP::Boolean');
    return 'object' if ref $v eq 'HASH';
    return 'array' if ref $v eq 'ARRAY';
    return 'string' if ref \$v eq 'SCALAR' && _is_string($v);
    return 'number';
}

# JSON::PP keeps a decoded string a string: a scalar that was never used
# as a number has no numeric flags.
sub _is_string {
    my ($v) = @_;
    my $b = B::svref_2object(\$v);
    my $flags = $b->FLAGS;
    return 1 if $flags & B::SVp_POK() && !($flags & (B::SVp_IOK()
        | B::SVp_NOK()));
    return !looks_like_number($v);
}

sub _type_ok {
    my ($want, $v) = @_;
    my $have = _type_of($v);
    return 1 if $want eq $have;
    return 1 if $want eq 'integer' && $have eq 'number' && $v == int($v);
    return 0;
}

sub _check {
    my ($root, $s, $v, $at, $errors) = @_;

    for my $k (keys %$s) {
        push @$errors, "$at: schema keyword '$k' is not supported"
            unless $KNOWN{$k};
    }

    if (my $ref = $s->{'$ref'}) {
        my ($name) = $ref =~ m{^#/definitions/(.+)$}
            or return push @$errors, "$at: unsupported \$ref $ref";
        my $d = $root->{definitions}{$name}
            or return push @$errors, "$at: no definition $name";
        return _check($root, $d, $v, $at, $errors);
    }

    if (my $t = $s->{type}) {
        my @t = ref $t ? @$t : ($t);
        unless (grep { _type_ok($_, $v) } @t) {
            return push @$errors,
                "$at: expected " . join('|', @t) . ', got ' . _type_of($v)
                . (defined $v && !ref $v ? " ($v)" : '');
        }
    }

    if (exists $s->{const}) {
        push @$errors, "$at: expected the constant " . encode_json([
            $s->{const}]) unless _same($s->{const}, $v);
    }
    if (my $e = $s->{enum}) {
        push @$errors, "$at: " . encode_json([$v]) . ' is not one of '
            . encode_json($e) unless grep { _same($_, $v) } @$e;
    }

    for my $alt (qw(anyOf oneOf)) {
        next unless $s->{$alt};
        my $n = 0;
        for my $sub (@{ $s->{$alt} }) {
            my @e;
            _check($root, $sub, $v, $at, \@e);
            $n++ unless @e;
        }
        push @$errors, "$at: matches $n of $alt"
            if $n == 0 || ($alt eq 'oneOf' && $n > 1);
    }

    my $type = _type_of($v);

    if ($type eq 'string') {
        push @$errors, "$at: shorter than $s->{minLength}"
            if defined $s->{minLength} && length($v) < $s->{minLength};
        push @$errors, "$at: longer than $s->{maxLength}"
            if defined $s->{maxLength} && length($v) > $s->{maxLength};
        push @$errors, "$at: '$v' does not match /$s->{pattern}/"
            if defined $s->{pattern} && $v !~ /$s->{pattern}/;
    }

    if ($type eq 'number') {
        push @$errors, "$at: $v < $s->{minimum}"
            if defined $s->{minimum} && $v < $s->{minimum};
        push @$errors, "$at: $v > $s->{maximum}"
            if defined $s->{maximum} && $v > $s->{maximum};
    }

    if ($type eq 'object') {
        for my $r (@{ $s->{required} // [] }) {
            push @$errors, "$at: required field '$r' is missing"
                unless exists $v->{$r};
        }
        my $props = $s->{properties} // {};
        for my $k (sort keys %$v) {
            if ($props->{$k}) {
                _check($root, $props->{$k}, $v->{$k}, "$at.$k", $errors);
            } elsif (ref $s->{additionalProperties} eq 'HASH') {
                _check($root, $s->{additionalProperties}, $v->{$k},
                    "$at.$k", $errors);
            } elsif (exists $s->{additionalProperties}
                     && !$s->{additionalProperties})
            {
                push @$errors, "$at: field '$k' is not in the contract";
            }
        }
    }

    if ($type eq 'array') {
        push @$errors, "$at: fewer than $s->{minItems} items"
            if defined $s->{minItems} && @$v < $s->{minItems};
        push @$errors, "$at: more than $s->{maxItems} items"
            if defined $s->{maxItems} && @$v > $s->{maxItems};
        if (my $items = $s->{items}) {
            _check($root, $items, $v->[$_], "$at\[$_\]", $errors)
                for 0 .. $#$v;
        }
    }

    return;
}

sub _same {
    my ($a, $b) = @_;
    my $j = JSON::PP->new->canonical->allow_nonref;
    return $j->encode($a) eq $j->encode($b);
}

require B;

1;
