#!/usr/bin/perl
# Mail configuration: nginx -t refuses what cannot send, and finds a broken
# template; without a provider the email jobs wait untouched.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Darkroom::Test qw(wait_for);

my $t = Darkroom::Test->new;
$t->write_file('mail_token', "tok\n");
$t->write_file('tpl/receipt.txt', "Subject: {{order.ref}}\n\nHi\n");
$t->write_file('tpl/refunded.txt', "Subject: r\n\nr\n");
$t->write_file('tpl/shop_alert.txt', "Subject: a\n\n{{#order}}a{{/order}}\n");

sub try_conf {
    my ($mail) = @_;
    $t->conf(<<"CONF");
%%MAIN%%
events {}
http {
    %%HTTP%%
    darkroom_db "%%DB%%";
    darkroom_jobs_interval 100ms;
$mail
    server { listen 127.0.0.1:%%PORT0%%; location = /health { darkroom_health; } }
}
CONF
    return $t->test_conf;
}

my $base = "darkroom_mail_token_file %%DIR%%/mail_token;\n"
    . "darkroom_mail_from \"Shop <shop\@example.com>\";\n"
    . "darkroom_mail_templates %%DIR%%/tpl;\n";

my ($ok, $out) = try_conf("darkroom_mail_provider resend;\n$base");
ok($ok, 'a complete configuration passes') or diag($out);

my %bad = (
    'unknown provider'  => ["darkroom_mail_provider mailchimp;\n$base",
                            qr/unknown mail provider "mailchimp"/],
    'no token'          => ["darkroom_mail_provider postmark;\n"
                            . "darkroom_mail_from shop\@example.com;",
                            qr/needs "darkroom_mail_token_file"/],
    'bad from'          => ["darkroom_mail_provider postmark;\n"
                            . "darkroom_mail_from \"Shop <nope>\";",
                            qr/invalid sender/],
    'bad reply-to'      => ["darkroom_mail_provider postmark;\n$base"
                            . "darkroom_mail_reply_to \"a b\@example.com\";",
                            qr/invalid email address/],
    'missing template'  => ["darkroom_mail_provider postmark;\n"
                            . "darkroom_mail_token_file %%DIR%%/mail_token;\n"
                            . "darkroom_mail_from shop\@example.com;\n"
                            . "darkroom_mail_templates %%DIR%%/none;",
                            qr{mail template ".*/none/receipt\.txt" does not exist}],
    'bad api'           => ["darkroom_mail_provider sendgrid;\n$base"
                            . "darkroom_mail_api ftp://x;",
                            qr/must be an http\(s\) URL/],
);
for my $name (sort keys %bad) {
    my ($conf, $re) = @{ $bad{$name} };
    ($ok, $out) = try_conf($conf);
    ok(!$ok, "$name: refused");
    like($out, $re, "$name: says why");
}

$t->write_file('tpl/refunded.html', "<p>{{#a}}x</p>\n");
($ok, $out) = try_conf("darkroom_mail_provider resend;\n$base");
ok(!$ok, 'a broken template is refused');
like($out, qr{mail template ".*/tpl/refunded\.html": unclosed section on line 2},
    'with its file and line');
unlink $t->dir . '/tpl/refunded.html';

$t->write_file('tpl/shipped.txt', "no subject\n");
($ok, $out) = try_conf("darkroom_mail_provider resend;\n$base");
like($out, qr/shipped\.txt" must start with a "Subject:" line/,
    'optional templates are checked when present');
unlink $t->dir . '/tpl/shipped.txt';

# no provider: an email job is not claimed by this build
try_conf('');
$t->start;
$t->sql(q{INSERT INTO jobs (kind, payload) VALUES ('email', '{"template":"receipt","order_id":1}')});
sleep 1;
is($t->sql_value("SELECT attempts FROM jobs WHERE kind = 'email'"), 0,
    'without darkroom_mail_provider email jobs wait');

done_testing();
