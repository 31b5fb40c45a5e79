#!/usr/bin/perl
# One slow job kind does not starve the others: with every runner free to
# take it, a slow provider would hold them all and a receipt would wait.
# By default a kind takes at most darkroom_jobs_concurrency - 1 runners of
# a worker; darkroom_jobs_kind_concurrency sets a kind's own cap.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Darkroom::Test qw(wait_for json_encode);
use Darkroom::Stripe qw(demo_catalogue shop_conf);
use Darkroom::Mail qw(sandbox mail_conf paid_order);

my $t = Darkroom::Test->new;
my $release = $t->dir . '/release';
my $slow = $t->fake_server(name => 'slowlab', handler => sub {
    # a lab that answers only when the test lets it (bounded)
    for (1 .. 2400) { last if -e $release; select undef, undef, undef, 0.05 }
    return [200, {}, 'ok'];
});
my $mail = sandbox($t);

sub configure {
    my ($extra) = @_;
    shop_conf($t, stripe => 'http://127.0.0.1:' . $t->port(1),
        http => mail_conf($t, $mail, 'postmark', fetch_timeout => '150s')
            . "    darkroom_jobs_concurrency 2;\n$extra");
}

sub slow_jobs {
    my ($n) = @_;
    $t->sql("INSERT INTO jobs (kind, payload) SELECT 'http_post', :'p1'"
        . " FROM generate_series(1, $n)",
        json_encode({ url => $slow->url('/poll') }));
}

sub in_flight { scalar $slow->requests }

configure('');
demo_catalogue($t);
$t->start;

slow_jobs(4);
ok(wait_for(sub { in_flight() >= 1 }, 30), 'the slow kind is running');

my $o = paid_order($t, items => [['harbour-dawn', 'giclee-a3', 1]]);
ok(wait_for(sub {
    grep { ($_->{subject} // '') =~ /\Q$o->{ref}\E/ } $mail->messages }, 90),
    'the receipt is sent while the slow kind is busy');
ok(!-e $release && in_flight() < 4, 'the slow jobs were still waiting');

open my $fh, '>', $release or die; close $fh;
ok(wait_for(sub { $t->sql_value("SELECT count(*) FROM jobs WHERE"
    . " kind = 'http_post' AND done_at IS NULL") == 0 }, 120),
    'the slow jobs finish');

# a kind given every runner may take them all
$t->stop;
unlink $release;
$slow->reset_requests;
configure("    darkroom_jobs_kind_concurrency http_post 2;\n");
$t->start;
slow_jobs(3);
ok(wait_for(sub { in_flight() >= 2 }, 60),
    'darkroom_jobs_kind_concurrency lets a kind use both runners');
open $fh, '>', $release or die; close $fh;
ok(wait_for(sub { $t->sql_value("SELECT count(*) FROM jobs WHERE"
    . " kind = 'http_post' AND done_at IS NULL") == 0 }, 120),
    'and they finish');

# bad configurations fail "nginx -t" with file and line
for my $bad ('http_post 0', 'http_post many', 'Bad-Kind 2', 'http_post',
    "http_post 1;\n    darkroom_jobs_kind_concurrency http_post 2") {
    configure("    darkroom_jobs_kind_concurrency $bad;\n");
    my ($ok, $out) = $t->test_conf;
    ok(!$ok, "refused: darkroom_jobs_kind_concurrency $bad");
    like($out, qr/nginx\.conf:\d+/, 'with file and line') or diag $out;
}

done_testing;
