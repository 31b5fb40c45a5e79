#!/usr/bin/perl
# Mail providers' published contracts (t/contract/{postmark,sendgrid,resend}):
# every request darkroom sends through each provider's format, for every
# kind of message (receipt, shipped, refunded, shop alert, gallery delivered
# and reminder, and one the provider refuses), and every answer the mail
# sandbox gives (accepted, refused, failing, replayed), matches the
# provider's documented request and response bodies, so a field invented
# on either side fails here.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use HTTP::Tiny;
use JSON::PP;
use Darkroom::Test qw(wait_for);
use Darkroom::Stripe qw(demo_catalogue);
use Darkroom::Mail qw(sandbox mail_conf paid_order);
use Darkroom::Contract qw(contract_ok);

my $t = Darkroom::Test->new;
my $mail = sandbox($t);
demo_catalogue($t);

my %REQUEST = (postmark => 'email', sendgrid => 'mail_send',
               resend => 'send_email');
my %PATH = (postmark => '/email', sendgrid => '/v3/mail/send',
            resend => '/emails');
my @KINDS = qw(receipt shipped refunded shop_alert gallery_delivered
               gallery_reminder);

$t->sql(q{INSERT INTO galleries (slug, title, client_email, expires_at,
              delivered_at)
          VALUES ('contract', 'The Contract Wedding', 'client@example.com',
                  now() + interval '2 days', now())});
my $gallery = $t->sql_value(q{SELECT id FROM galleries WHERE slug = 'contract'});

sub email_job {
    my (%payload) = @_;
    $t->sql(q{INSERT INTO jobs (kind, payload) VALUES ('email', :'p1'::jsonb)},
        encode_json(\%payload));
}

sub settled {
    my ($provider) = @_;
    return $t->sql_value(q{SELECT count(*) FROM emails WHERE provider = :'p1'
        AND status IN ('sent', 'failed')}, $provider);
}

# --- darkroom sends each kind of message through each provider ----------
for my $provider (qw(postmark sendgrid resend)) {
    my $conf = mail_conf($t, $mail, $provider, backoff => '100ms 1s');
    $t->conf(<<"CONF");
%%MAIN%%
events {}
http {
    %%HTTP%%
    darkroom_db "%%DB%%";
    darkroom_jobs_interval 100ms;
$conf
    darkroom_mail_gallery_reminder_days 3;
    server {
        listen 127.0.0.1:%%PORT0%%;
        location = /health { darkroom_health; }
    }
}
CONF
    $t->start;

    my $o = paid_order($t, items => [['harbour-dawn', 'giclee-a3', 1]],
        email => "ada.$provider\@example.com");
    email_job(template => 'shipped', order_id => $o->{id});
    email_job(template => 'refunded', order_id => $o->{id},
        amount_refunded => 1000);
    email_job(template => 'shop_alert', order_id => $o->{id});
    email_job(template => 'gallery_delivered', gallery_id => $gallery);
    email_job(template => 'gallery_reminder', gallery_id => $gallery);
    # one the provider refuses: a recipient it will not send to
    my $bad = paid_order($t, items => [['moor-rain', 'giclee-a3', 1]],
        email => "nobody.$provider\@bounce.invalid");

    # seven messages, the refused one among them: wait for that one by
    # name, so the count below never races the last send
    ok(wait_for(sub { settled($provider) >= 7 && $t->sql_value(q{SELECT
        count(*) FROM emails WHERE provider = :'p1' AND recipient LIKE
        'nobody.%' AND status IN ('sent', 'failed')}, $provider) }, 30),
        "$provider: every message sent or refused") or diag join "\n",
        map { "@$_" } $t->sql(q{SELECT template, status, coalesce(error, '')
            FROM emails WHERE provider = :'p1'}, $provider);
    is($t->sql_value(q{SELECT count(*) FROM emails WHERE provider = :'p1'
        AND status = 'failed'}, $provider), 1,
        "$provider: only the refused recipient failed");
    $t->stop;
}

my @requests = $mail->requests;

# --- what darkroom sent ----------------------------------------------------
my %seen;
for my $req (@requests) {
    my $p = $req->{provider};
    my $body = eval { decode_json($req->{body}) };
    ok($body, "$p: request body is JSON") or next;
    contract_ok($p, $REQUEST{$p}, $body,
        "$p request #" . (++$seen{"n $p"}));
    like($req->{headers}{'content-type'} // '', qr{^application/json},
        "$p: Content-Type application/json");
    if ($p eq 'postmark') {
        ok(length($req->{headers}{'x-postmark-server-token'} // ''),
            'postmark: X-Postmark-Server-Token');
        ok(length($body->{Metadata}{darkroom_key} // ''),
            'postmark: message key in the Metadata');
        $seen{"$p $body->{Tag}"}++;
    } elsif ($p eq 'sendgrid') {
        like($req->{headers}{authorization} // '', qr/^Bearer \S+$/,
            'sendgrid: Authorization Bearer');
        ok(length($body->{personalizations}[0]{custom_args}{darkroom_key}
            // ''), 'sendgrid: message key in the custom_args');
        $seen{"$p $body->{categories}[0]"}++;
    } else {
        like($req->{headers}{authorization} // '', qr/^Bearer \S+$/,
            'resend: Authorization Bearer');
        my $key = $req->{headers}{'idempotency-key'} // '';
        ok(length $key >= 1 && length $key <= 256,
            'resend: Idempotency-Key of 1 to 256 characters');
        $seen{"$p $body->{tags}[0]{value}"}++;
    }
}
for my $p (qw(postmark sendgrid resend)) {
    ok($seen{"$p $_"}, "$p: a $_ was sent") for @KINDS;
}

# --- the sandbox's answers to darkroom, and to what darkroom never sends ---
my $ua = HTTP::Tiny->new(timeout => 10);
sub api {
    my ($provider, $body, %h) = @_;
    my %auth = $provider eq 'postmark'
        ? ('X-Postmark-Server-Token' => 'mail-token-1')
        : (Authorization => 'Bearer mail-token-1');
    my %headers = ('Content-Type' => 'application/json',
        Accept => 'application/json', %auth, %h);
    delete $headers{$_} for grep { !defined $headers{$_} } keys %headers;
    return $ua->post($mail->url($PATH{$provider}), { headers => \%headers,
        content => ref $body ? encode_json($body) : $body });
}

my %ok = (
    postmark => { From => 'shop@example.com', To => 'a@example.com',
                  Subject => 's', TextBody => 't' },
    sendgrid => { personalizations => [{ to => [{ email => 'a@example.com' }] }],
                  from => { email => 'shop@example.com' }, subject => 's',
                  content => [{ type => 'text/plain', value => 't' }] },
    resend   => { from => 'shop@example.com', to => ['a@example.com'],
                  subject => 's', text => 't' },
);
for my $p (qw(postmark sendgrid resend)) {
    my $auth = $p eq 'postmark' ? 'X-Postmark-Server-Token' : 'Authorization';
    api($p, $ok{$p}, $auth => $p eq 'postmark' ? 'wrong' : 'Bearer wrong');
    api($p, $ok{$p}, $auth => undef);
    api($p, '{not json');
    my %bad = %{ $ok{$p} };
    delete $bad{$p eq 'sendgrid' ? 'personalizations' : $p eq 'postmark'
        ? 'To' : 'to'};
    api($p, \%bad);
    $mail->config(fail_next => [{ provider => $p, status => 500 },
                                { provider => $p, status => 429,
                                  retry_after => 1 }]);
    api($p, $ok{$p}) for 1 .. 2;
}
api('resend', $ok{resend}, 'Idempotency-Key' => 'contract-1');
api('resend', $ok{resend}, 'Idempotency-Key' => 'contract-1');   # replay
api('resend', { %{ $ok{resend} }, subject => 'other' },
    'Idempotency-Key' => 'contract-1');                          # conflict
api('resend', $ok{resend}, 'Idempotency-Key' => 'k' x 300);

my %status;
for my $req ($mail->requests) {
    my $p = $req->{provider};
    my $st = $req->{status};
    $status{"$p $st"}++;
    my $what = "$p answer $st to $req->{method} $req->{path}";
    if ($p eq 'sendgrid' && $st == 202) {
        is($req->{response} // '', '', "$what: empty body");
        ok(length($req->{response_headers}{'X-Message-Id'} // ''),
            "$what: X-Message-Id");
        next;
    }
    my $body = eval { decode_json($req->{response} // '') };
    ok(ref $body eq 'HASH', "$what: JSON object") or next;
    my $name = $st < 300
        ? ($p eq 'postmark' ? 'email_response' : 'send_email_response')
        : 'error';
    contract_ok($p, $name, $body, $what);
    is($body->{statusCode}, $st, "$what: statusCode is the status")
        if $p eq 'resend' && $st >= 300;
}
for my $p (qw(postmark sendgrid resend)) {
    ok((grep { /^$p [45]\d\d$/ } keys %status) >= 3,
        "$p: several kinds of refusal checked");
}
ok($status{'resend 409'}, 'resend: an idempotency conflict checked');

done_testing;
