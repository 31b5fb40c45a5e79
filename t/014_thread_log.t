#!/usr/bin/perl
# No darkroom code logs from a pool thread: nginx's logger and pools belong
# to the event loop.  nginx writes "pid#tid" on every error log line, so
# with a debug log every darkroom line written from a thread shows a tid
# other than the worker's pid.  The work exercised: a checkout (task
# thread) and the checkout_reconcile job (jobs thread), which logged
# "checkout reconciled" from its thread.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use JSON::PP;
use Darkroom::Test qw(wait_for);
use Darkroom::Stripe qw(session demo_catalogue shop_conf fake_api
    checkout_order);

my $t = Darkroom::Test->new;
my $stripe = fake_api($t);
shop_conf($t, stripe => $stripe->url);

# a second, debug, error log beside the harness's
my $conf = $t->{conf_text};
$conf =~ s/%%MAIN%%/%%MAIN%%\nerror_log %%DIR%%\/debug.log debug;/
    or die 'no %%MAIN%%';
$t->conf($conf);
demo_catalogue($t);
$t->start;

SKIP: {
    skip 'nginx built without --with-debug', 3
        unless `$t->{nginx} -V 2>&1` =~ /--with-debug/;

    my $o = checkout_order($t, 1);
    $stripe->set(sessions => { $o->{session} => session(id => $o->{session},
        order_id => $o->{id}, amount => $o->{total}) });
    $t->sql("UPDATE jobs SET run_at = now() WHERE kind = 'checkout_reconcile'"
        . " AND payload->>'order_id' = :'p1'", $o->{id});
    ok(wait_for(sub { $t->sql_value("SELECT status FROM orders"
        . " WHERE id = :'p1'", $o->{id}) eq 'paid' }, 20),
        'the reconcile job paid the order');

    my $log = $t->read_file('debug.log');
    like($log, qr/\d+#\d+: .*darkroom/, 'the debug log has darkroom lines');

    my @threaded = grep { /^\S+ \S+ \[\w+\] (\d+)#(\d+): .*darkroom/
                          && $1 != $2 } split /\n/, $log;
    is(scalar @threaded, 0, 'no darkroom line was written from a thread')
        or diag join "\n", @threaded[0 .. ($#threaded < 9 ? $#threaded : 9)];
}

done_testing;
