package Darkroom::Mail;

# The mail side of the tests: tools/mail-sandbox started for a test, the
# mail directives for its nginx.conf, and a shop whose orders get paid.
#
#   my $mail = Darkroom::Mail::sandbox($t);     # stopped with the test
#   $mail->url; $mail->messages; $mail->requests;
#   $mail->config(fail_next => [{ status => 500, count => 2 }]);
#   my $conf = Darkroom::Mail::mail_conf($t, $mail, 'resend', %extra);
#   my $o = Darkroom::Mail::paid_order($t, items => [[photo, product, qty]]);

use strict;
use warnings;

use HTTP::Tiny;
use JSON::PP;
use Time::HiRes qw(sleep);
use Exporter qw(import);
our @EXPORT_OK = qw(sandbox mail_conf paid_order);

my $JSON = JSON::PP->new->canonical;

sub sandbox {
    my ($t, %o) = @_;
    my $port = $t->port($o{port_index} // 9);
    $t->write_file('mail_token', "mail-token-1\n");
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        setpgrp(0, 0);
        exec($t->top . '/tools/mail-sandbox', '--port', $port,
            '--token-file', $t->dir . '/mail_token',
            '--state-dir', $t->dir . '/mail', '--quiet')
            or die "exec mail-sandbox: $!";
    }
    my $self = bless { pid => $pid, port => $port }, __PACKAGE__;
    for (1 .. 100) {
        last if eval { $self->get('/_sandbox/health')->{status} };
        sleep 0.05;
    }
    # Darkroom::Test stops every server it knows when the test ends
    push @{ $t->{servers} }, $self;
    return $self;
}

sub url { "http://127.0.0.1:$_[0]{port}" . ($_[1] // '') }

sub get {
    my ($self, $path) = @_;
    my $r = HTTP::Tiny->new(timeout => 10)->get($self->url($path));
    die "mail sandbox: $r->{status} $r->{content}\n" unless $r->{success};
    return decode_json($r->{content});
}

sub post {
    my ($self, $path, $body) = @_;
    my $r = HTTP::Tiny->new(timeout => 10)->post($self->url($path), {
        headers => { 'Content-Type' => 'application/json' },
        content => $JSON->encode($body // {}) });
    die "mail sandbox: $r->{status} $r->{content}\n" unless $r->{success};
    return decode_json($r->{content});
}

sub messages { @{ $_[0]->get('/_sandbox/messages')->{messages} } }
sub requests { @{ $_[0]->get('/_sandbox/requests')->{requests} } }
sub config { my ($self, %c) = @_; $self->post('/_sandbox/config', \%c) }
sub reset { $_[0]->post('/_sandbox/reset') }

sub stop {
    my ($self) = @_;
    return unless $self->{pid};
    kill 'TERM', $self->{pid};
    waitpid $self->{pid}, 0;
    delete $self->{pid};
}

# the http-level lines that send mail through the sandbox
sub mail_conf {
    my ($t, $mail, $provider, %o) = @_;
    my $api = $o{api} // $mail->url;
    my $backoff = $o{backoff} // '200ms 5s';
    my $fetch = $o{fetch_timeout} // '5s';
    return <<"CONF";
    darkroom_mail_provider $provider;
    darkroom_mail_api $api;
    darkroom_mail_token_file %%DIR%%/mail_token;
    darkroom_mail_from "Darkroom Prints <shop\@example.com>";
    darkroom_mail_reply_to help\@example.com;
    darkroom_mail_alert_to owner\@example.com;
    darkroom_mail_shop_name "Darkroom Prints";
    darkroom_mail_shop_url http://shop.example/;
    darkroom_mail_templates %%TOP%%/conf/mail;
    darkroom_jobs_backoff $backoff;
    darkroom_fetch_timeout $fetch;
CONF
}

# an order written and paid the way the shop does it (checkout_create and
# order_mark_paid in SQL), which enqueues its receipt; returns {id, ref}
my $tokens = 0;
sub paid_order {
    my ($t, %o) = @_;
    my $items = $JSON->encode([ map { { photo => $_->[0], product => $_->[1],
        quantity => $_->[2] } } @{ $o{items} } ]);
    $tokens++;
    my ($row) = $t->sql("SELECT order_id, order_ref, total FROM checkout_create("
        . ":'p1'::jsonb, :'p2', 'GBP', NULL, NULL, NULL, :'p3',"
        . " now() + interval '1 hour',"
        . " now() + interval '1 day')", $items, $o{email} // 'ada@example.com',
        "hash-$$-$tokens");
    my ($id, $ref, $total) = @$row;
    my $session = $JSON->encode({ amount_total => $o{paid} // $total,
        currency => 'gbp', payment_intent => "pi_test_$id",
        collected_information => { shipping_details => { name => 'Ada Buyer',
            address => { line1 => '1 Harbour Row', city => 'Whitby',
                postal_code => 'YO21 1AA', country => 'GB' } } } });
    my $result = $t->sql_value("SELECT order_mark_paid(:'p1', :'p2'::jsonb,"
        . " 'test')", $id, $session);
    return { id => $id, ref => $ref, total => $total, result => $result };
}

1;
