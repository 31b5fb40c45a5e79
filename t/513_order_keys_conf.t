#!/usr/bin/perl
# darkroom_order_keys and darkroom_mail_order_url at "nginx -t": a bad keys
# file is refused naming the file and its line and where the directive is;
# a checkout without the keys, an order URL with {ORDER_TOKEN} but no keys
# to derive it, or an order URL that is not http(s) are refused too.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Darkroom::Test;

my $t = Darkroom::Test->new;
my $dir = $t->dir;
$t->write_file('stripe_key', "sk_test_darkroom\n");
$t->write_file('mail_token', "mail-token-1\n");

sub conf_with {
    my (%o) = @_;
    my $keys = exists $o{keys} ? $o{keys}
             : "    darkroom_order_keys %%DIR%%/order_keys;\n";
    my $mail = $o{mail} // '';
    $t->conf(<<"CONF");
%%MAIN%%
events {}
http {
    %%HTTP%%
    darkroom_db "%%DB%%";
    darkroom_stripe_key_file %%DIR%%/stripe_key;
$keys    darkroom_checkout_success_url "http://127.0.0.1/order.html?token={ORDER_TOKEN}";
    darkroom_checkout_cancel_url "http://127.0.0.1/";
$mail    server {
        listen 127.0.0.1:%%PORT0%%;
        location = /api/checkout { darkroom_checkout; }
    }
}
CONF
    my ($ok, $out) = $t->test_conf;
    return ($ok, $out);
}

# the line of nginx.conf a directive is on
sub line_of {
    my ($re) = @_;
    my @l = split /\n/, $t->read_file('nginx.conf');
    for (0 .. $#l) { return $_ + 1 if $l[$_] =~ $re }
    return 0;
}

my $mail = <<'MAIL';
    darkroom_mail_provider postmark;
    darkroom_mail_api http://127.0.0.1:9;
    darkroom_mail_token_file %%DIR%%/mail_token;
    darkroom_mail_from shop@example.com;
    darkroom_mail_templates %%TOP%%/conf/mail;
MAIL

# two good keys: the first signs, both derive
$t->write_file('order_keys', "# order keys\no2:order-key-two-0123456789\n"
    . "o1:order-key-one-0123456789\n");
my ($ok, $out) = conf_with(mail => $mail . '    darkroom_mail_order_url'
    . ' "https://shop.example/order.html?token={ORDER_TOKEN}";' . "\n");
ok($ok, 'two keys and an order URL pass nginx -t') or diag $out;

# a key too short, on the file's third line
$t->write_file('order_keys', "# order keys\no2:order-key-two-0123456789\n"
    . "o1:short\n");
($ok, $out) = conf_with();
ok(!$ok, 'a short key is refused');
my $n = line_of(qr/darkroom_order_keys/);
like($out, qr{keys file \Q$dir\E/order_keys:3: key shorter than 16 bytes in \Q$dir\E/nginx\.conf:$n},
    'naming the keys file and its line, and where it is configured');

# a line without "kid:"
$t->write_file('order_keys', "o1:order-key-one-0123456789\nnot a key line\n");
($ok, $out) = conf_with();
ok(!$ok, 'a line that is not kid:key is refused');
like($out, qr{keys file \Q$dir\E/order_keys:2: expected "kid:key"},
    'naming the file and line');

# the same key id twice
$t->write_file('order_keys', "o1:order-key-one-0123456789\n"
    . "o1:order-key-one-9876543210\n");
($ok, $out) = conf_with();
ok(!$ok, 'a duplicate key id is refused');
like($out, qr{order_keys:2: duplicate key id "o1"}, 'naming it');

# an empty file, a missing file
$t->write_file('order_keys', "# nothing yet\n");
($ok, $out) = conf_with();
ok(!$ok, 'a keys file without keys is refused');
like($out, qr{keys file \Q$dir\E/order_keys has no keys}, 'saying so');
unlink "$dir/order_keys";
($ok, $out) = conf_with();
ok(!$ok, 'a missing keys file is refused');
like($out, qr{order_keys}, 'naming it') or diag $out;

# checkout without keys
$t->write_file('order_keys', "o1:order-key-one-0123456789\n");
($ok, $out) = conf_with(keys => '');
ok(!$ok, 'darkroom_checkout without darkroom_order_keys is refused');
$n = line_of(qr/darkroom_checkout;/);
like($out, qr{"darkroom_checkout" requires "darkroom_order_keys" in \Q$dir\E/nginx\.conf:$n},
    'at the checkout location');

# twice
($ok, $out) = conf_with(keys => "    darkroom_order_keys %%DIR%%/order_keys;\n" x 2);
ok(!$ok, 'darkroom_order_keys twice is refused');
like($out, qr{"darkroom_order_keys" directive is duplicate}, 'as a duplicate');

# the mail's order URL
($ok, $out) = conf_with(mail => $mail . '    darkroom_mail_order_url'
    . ' "/order.html?token={ORDER_TOKEN}";' . "\n");
ok(!$ok, 'a relative order URL is refused');
like($out, qr{"darkroom_mail_order_url" must be an http\(s\) URL},
    'an email needs an absolute link');

$t->conf(<<'CONF');
%%MAIN%%
events {}
http {
    %%HTTP%%
    darkroom_db "%%DB%%";
    darkroom_mail_provider postmark;
    darkroom_mail_api http://127.0.0.1:9;
    darkroom_mail_token_file %%DIR%%/mail_token;
    darkroom_mail_from shop@example.com;
    darkroom_mail_templates %%TOP%%/conf/mail;
    darkroom_mail_order_url "https://shop.example/order.html?token={ORDER_TOKEN}";
    server { listen 127.0.0.1:%%PORT0%%; }
}
CONF
($ok, $out) = $t->test_conf;
ok(!$ok, 'an order URL with {ORDER_TOKEN} but no keys is refused');
like($out, qr{"darkroom_mail_order_url" with \{ORDER_TOKEN\} requires "darkroom_order_keys"},
    'saying what is missing');

$t->conf($t->{conf_text} =~ s/\{ORDER_TOKEN\}/{ORDER_REF}/r);
($ok, $out) = $t->test_conf;
ok($ok, 'an order URL with only {ORDER_REF} needs no keys') or diag $out;

done_testing();
