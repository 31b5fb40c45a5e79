#!/usr/bin/perl
# A request parked on the thread pool survives "nginx -s reload" and
# "nginx -s quit": the exiting worker waits for the task, answers the client
# in full, and the order exists once.  Stripe is held by a signal file, so
# the checkout is parked for certain while the signal arrives; the test only
# lets it go once the old worker has decided either to exit ("exiting") or
# to wait ("waits for ... parked").

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use JSON::PP;
use POSIX qw(:sys_wait_h);
use Darkroom::Test qw(wait_for);
use Darkroom::Stripe qw(demo_catalogue shop_conf form_of session_total);

my $t = Darkroom::Test->new;
my $release = $t->dir . '/release';

my $stripe = $t->fake_server(name => 'stripe', handler => sub {
    my ($req) = @_;
    my %f = %{ form_of($req->{body}) };
    # held until the test lets it go (bounded, so nothing hangs for ever)
    for (1 .. 1200) { last if -e $release; select undef, undef, undef, 0.05 }
    my $id = "cs_test_$f{'metadata[order_id]'}";
    return [200, { 'Content-Type' => 'application/json' }, encode_json({
        id => $id, object => 'checkout.session',
        url => "https://pay.example/$id", status => 'open',
        amount_total => session_total(\%f) })];
});

shop_conf($t, stripe => $stripe->url);
demo_catalogue($t);
$t->start;

sub sessions { scalar grep { $_->{path} eq '/v1/checkout/sessions' }
    $stripe->requests }

# a checkout in a child process; its answer lands in a file
my $seq = 0;
sub checkout_bg {
    my ($email, $key) = @_;
    my $out = $t->dir . "/answer-$email-" . ++$seq;
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        my $r = HTTP::Tiny->new(timeout => 90, keep_alive => 0)->request(
            POST => 'http://127.0.0.1:' . $t->port(0) . '/api/checkout', {
            headers => { 'Content-Type' => 'application/json',
                $key ? ('Idempotency-Key' => $key) : () },
            content => encode_json({ email => $email, items => [
                { photo => 'harbour-dawn', product => 'giclee-a3',
                  quantity => 1 } ] }) });
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
    my ($signal, $email) = @_;

    unlink $release;
    my $before = sessions();
    my ($pid, $out) = checkout_bg($email);

    ok(wait_for(sub { sessions() > $before }, 30),
        "$signal: the checkout is parked in Stripe");

    my $mark = length $t->error_log;
    kill $signal, $t->master_pid;

    my $decided = wait_for(sub {
        my $log = substr($t->error_log, $mark);
        $log =~ /gracefully shutting down/
            && $log =~ /exiting|waits for \d+ parked/;
    }, 30);
    ok($decided, "$signal: the old worker is shutting down");

    open my $fh, '>', $release or die; close $fh;

    ok(wait_for(sub { waitpid($pid, WNOHANG) == $pid }, 60),
        "$signal: the client has its answer");
    my $a = decode_json($t->read_file($out) || '{}');
    is($a->{status}, 201, "$signal: 201 Created, not a dropped connection")
        or diag explain $a;
    my $j = eval { decode_json($a->{content}) } || {};
    like($j->{checkout_url} // '', qr{^https://pay\.example/cs_test_\d+$},
        "$signal: the full answer, with the checkout URL");
    is($t->sql_value("SELECT count(*) FROM orders WHERE email = :'p1'",
        $email), 1, "$signal: one order");
    is($t->sql_value("SELECT count(*) FROM orders WHERE email = :'p1'"
        . " AND stripe_session_id IS NOT NULL", $email), 1,
        "$signal: with its session attached");
}

sub answer {
    my ($pid, $out) = @_;
    wait_for(sub { waitpid($pid, WNOHANG) == $pid }, 60);
    my $a = decode_json($t->read_file($out) || '{}');
    $a->{json} = eval { decode_json($a->{content}) } || {};
    return $a;
}

# the shop retries while its first submission is still parked: with the
# same Idempotency-Key the retry waits for and returns the same order
{
    unlink $release;
    my $before = sessions();
    my @first = checkout_bg('retry@example.com', 'cart-retry-while-parked-1');
    ok(wait_for(sub { sessions() > $before }, 30), 'first submission parked');
    my @second = checkout_bg('retry@example.com', 'cart-retry-while-parked-1');
    ok(wait_for(sub { sessions() > $before + 1 }, 30),
        'the retry asks Stripe with the same order (its idempotency key)');
    open my $fh, '>', $release or die; close $fh;
    my ($a, $b) = (answer(@first), answer(@second));
    is($a->{status}, 201, 'the first submission: 201');
    is($b->{status}, 200, 'the retry: 200');
    is($b->{json}{order}, $a->{json}{order}, 'the same order');
    is($b->{json}{checkout_url}, $a->{json}{checkout_url}, 'the same session');
    is($b->{json}{status_url}, $a->{json}{status_url}, 'the same status link');
    my @keys = map { $_->{headers}{'idempotency-key'} }
        grep { $_->{path} eq '/v1/checkout/sessions' } $stripe->requests;
    is($keys[-1], $keys[-2], 'both Stripe calls carry one idempotency key');
    is($t->sql_value("SELECT count(*) FROM orders WHERE email = :'p1'",
        'retry@example.com'), 1, 'one order');
}

round('HUP', 'reload@example.com');

# the new generation serves
ok(wait_for(sub { $t->http(GET => '/health')->{status} == 200 }, 30),
    'the new workers serve after the reload');

my $master = $t->master_pid;
round('QUIT', 'quit@example.com');

ok(wait_for(sub { !kill 0, $master }, 60), 'nginx has quit');
unlike($t->error_log, qr/open socket .* left in connection/,
    'no connection left behind');

done_testing;
