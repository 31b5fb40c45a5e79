#!/usr/bin/perl
# A replay (the same Idempotency-Key) that arrives while the first request
# is still waiting for Stripe must not touch the first request's order: its
# own Stripe call meets idempotency_key_in_use (or fails outright), and it
# answers 409 checkout_in_progress with Retry-After.  Only the request that
# created the order may fail it.  Stripe holds the first request on a
# signal file, so the replay is in flight for certain.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use JSON::PP;
use Fcntl qw(O_WRONLY O_CREAT O_EXCL);
use POSIX qw(:sys_wait_h);
use Darkroom::Test qw(wait_for);
use Darkroom::Stripe qw(demo_catalogue shop_conf form_of session_total);

my $t = Darkroom::Test->new;
my $release = $t->dir . '/release';

my $stripe = $t->fake_server(name => 'stripe', handler => sub {
    my ($req, $state) = @_;
    my %f = %{ form_of($req->{body}) };
    my $json = { 'Content-Type' => 'application/json' };
    # the first request for an order marks it; later ones meet the mark
    my $mark = $t->dir . "/held-$f{'metadata[order_id]'}";
    my $first = sysopen(my $fh, $mark, O_WRONLY | O_CREAT | O_EXCL);
    if (!$first && !-e $release) {
        # the first request with this key is still being processed
        return 'close' if $state->{drop};
        return [409, $json, encode_json({ error => {
            type => 'idempotency_error', code => 'idempotency_key_in_use',
            message => 'There is currently another in-progress request'
                . ' using this Idempotent Key' } })];
    }
    # held until the test lets it go (bounded, so nothing hangs for ever)
    for (1 .. 1200) { last if -e $release; select undef, undef, undef, 0.05 }
    my $id = "cs_test_$f{'metadata[order_id]'}";
    return [200, $json, encode_json({ id => $id,
        object => 'checkout.session', url => "https://pay.example/$id",
        status => 'open', amount_total => session_total(\%f) })];
});

shop_conf($t, stripe => $stripe->url);
demo_catalogue($t);
$t->start;

sub sessions { scalar grep { $_->{path} eq '/v1/checkout/sessions' }
    $stripe->requests }

my $cart = { email => 'ada@example.com', items => [
    { photo => 'harbour-dawn', product => 'giclee-a3', quantity => 1 } ] };

sub checkout {
    my ($key) = @_;
    return $t->http(POST => '/api/checkout', {
        headers => { 'Content-Type' => 'application/json',
            'Idempotency-Key' => $key },
        content => encode_json($cart) });
}

# the first request in a child process; its answer lands in a file
sub checkout_bg {
    my ($key) = @_;
    my $out = $t->dir . "/answer-$key";
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        my $r = HTTP::Tiny->new(timeout => 90, keep_alive => 0)->request(
            POST => 'http://127.0.0.1:' . $t->port(0) . '/api/checkout', {
            headers => { 'Content-Type' => 'application/json',
                'Idempotency-Key' => $key },
            content => encode_json($cart) });
        open my $fh, '>', "$out.tmp" or POSIX::_exit(1);
        print $fh encode_json({ status => $r->{status},
            content => $r->{content} // '' });
        close $fh;
        rename "$out.tmp", $out;
        POSIX::_exit(0);
    }
    return ($pid, $out);
}

sub round {
    my ($name, $key, %state) = @_;

    unlink $release;
    $stripe->set(%state);
    my $before = sessions();
    my ($pid, $out) = checkout_bg($key);
    ok(wait_for(sub { sessions() > $before }, 30),
        "$name: the first request is parked in Stripe");

    my $r = checkout($key);
    is($r->{status}, 409, "$name: the replay answers 409")
        or diag $r->{content};
    is($r->{json}{error}{code}, 'checkout_in_progress',
        "$name: checkout_in_progress");
    ok(($r->{headers}{'retry-after'} // '') =~ /^\d+$/,
        "$name: with Retry-After");

    my $order = $t->sql_value('SELECT order_id FROM checkout_idempotency'
        . " WHERE expires_at > now() ORDER BY order_id DESC LIMIT 1");
    ok(defined $order, "$name: the key is still remembered");
    isnt($t->sql_value("SELECT status FROM orders WHERE id = :'p1'",
        $order // 0), 'cancelled', "$name: the order is not cancelled");

    open my $fh, '>', $release or die; close $fh;
    ok(wait_for(sub { waitpid($pid, WNOHANG) == $pid }, 60),
        "$name: the first request has its answer");
    my $a = decode_json($t->read_file($out) || '{}');
    is($a->{status}, 201, "$name: the first request gets 201")
        or diag explain $a;
    my $j = eval { decode_json($a->{content}) } || {};

    is($t->sql_value("SELECT status FROM orders WHERE id = :'p1'",
        $order // 0), 'pending_payment', "$name: the order is still pending");
    is($t->sql_value('SELECT count(*) FROM orders WHERE id = :\'p1\''
        . ' AND stripe_session_id IS NOT NULL', $order // 0), 1,
        "$name: with its session attached");

    # a later replay gets the first answer
    $r = checkout($key);
    is($r->{status}, 200, "$name: a later replay answers 200")
        or diag $r->{content};
    is($r->{json}{checkout_url}, $j->{checkout_url},
        "$name: with the first checkout URL");
}

round('key in use', 'cart-in-flight-409-0001');
round('network failure', 'cart-in-flight-net-0001', drop => 1);

done_testing;
