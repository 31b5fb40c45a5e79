#!/usr/bin/perl

# The contract validator itself: each keyword accepts what it should and
# refuses what it should, so a provider contract test cannot pass vacuously.

use strict;
use warnings;
use lib 't/lib';
use JSON::PP;
use Test::More;
use Darkroom::Contract qw(contract_errors);

sub errs { contract_errors('selftest', 'sample', decode_json($_[0])) }

is_deeply([errs('{"id":"evt_1","amount":5,"items":[{"sku":"x"}]}')], [],
    'a valid document has no errors');
is_deeply([errs('{"id":"evt_1","amount":5,"items":[{"sku":"x"}],'
    . '"live":true,"state":"a","note":null}')], [], 'optional fields');

my %bad = (
    'missing required'   => '{"id":"evt_1","items":[{"sku":"x"}]}',
    'string for integer' => '{"id":"evt_1","amount":"5","items":[{"sku":"x"}]}',
    'fraction'           => '{"id":"evt_1","amount":5.5,"items":[{"sku":"x"}]}',
    'below minimum'      => '{"id":"evt_1","amount":-1,"items":[{"sku":"x"}]}',
    'pattern'            => '{"id":"ev_1","amount":5,"items":[{"sku":"x"}]}',
    'invented field'     => '{"id":"evt_1","amount":5,"items":[{"sku":"x"}],"x":1}',
    'enum'               => '{"id":"evt_1","amount":5,"items":[{"sku":"x"}],"state":"c"}',
    'boolean type'       => '{"id":"evt_1","amount":5,"items":[{"sku":"x"}],"live":1}',
    'minItems'           => '{"id":"evt_1","amount":5,"items":[]}',
    'nested ref'         => '{"id":"evt_1","amount":5,"items":[{"sku":7}]}',
    'nested required'    => '{"id":"evt_1","amount":5,"items":[{}]}',
    'maxLength'          => '{"id":"evt_1","amount":5,"items":[{"sku":"x"}],"note":"toolong"}',
    'number for string'  => '{"id":7,"amount":5,"items":[{"sku":"x"}]}',
);
for my $what (sort keys %bad) {
    my @e = errs($bad{$what});
    ok(@e, "refused: $what") or diag $bad{$what};
}

done_testing;
