#!/usr/bin/perl
# The delivery email: a paid digital order sends it once (beside the
# receipt), through the mail sandbox, listing each digital line with its
# link, signed by the mail module at render time with core's download
# signer; the links download the files.  A re-issue sends it again with
# the new links.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use HTTP::Tiny;
use JSON::PP;
use Darkroom::Test qw(wait_for);
use Darkroom::Mail qw(sandbox mail_conf);
use Darkroom::Downloads qw(download_shop paid_digital_order);

my $t = Darkroom::Test->new;
my $mail = sandbox($t);
download_shop($t, limit => 4, extra => mail_conf($t, $mail, 'resend'));
$t->start;

my $ua = HTTP::Tiny->new(max_redirect => 0, keep_alive => 0, timeout => 15);

sub delivery_mails {
    my ($ref) = @_;
    return grep { ($_->{subject} // '') =~ /^Your downloads .*\Q$ref\E/ }
        $mail->messages;
}

my $o = paid_digital_order($t, ['moor-rain', 'digital', 1],
    ['harbour-dawn', 'giclee-a3', 1], ['harbour-dawn', 'digital', 1]);
is($o->{result}, 'paid', 'paid');

ok(wait_for(sub { delivery_mails($o->{ref}) == 1 }, 20), 'the delivery email is sent');
ok(wait_for(sub { grep { ($_->{subject} // '') =~ /^Your order \Q$o->{ref}\E/ }
    $mail->messages }, 20), 'beside the receipt');
sleep 1;
my @m = delivery_mails($o->{ref});
is(scalar @m, 1, 'once');
my $m = $m[0];
is_deeply($m->{to}, ['ada@example.com'], 'to the customer');
is($m->{subject}, "Your downloads from Darkroom Prints (order $o->{ref})", 'subject');
like($m->{text}, qr/^Rain on the Moor \(moor-rain\.tif\)$/m, 'text: line 1');
like($m->{text}, qr/^Harbour at Dawn \(harbour-dawn\.tif\)$/m, 'text: line 3');
unlike($m->{text}, qr/Giclée|giclee/, 'not the print');
like($m->{text}, qr/^Downloads left: 4, until \d+ \w{3} \d{4}$/m,
    'text: the count and expiry');

my @links = $m->{text} =~ m{^(http://\S+/download/\S+)$}mg;
is(scalar @links, 2, 'two links in the text');
my $page = $t->http(GET => "/api/orders/$o->{token}")->{json}{downloads};
is_deeply(\@links, [ map { $_->{url} } @$page ],
    'the same links as the order page');
(my $html_link = $links[0]) =~ s/&/&amp;/g;
like($m->{html}, qr/href="\Q$html_link\E"/, 'html: the link, escaped');

my $r = $ua->get($links[0]);
is($r->{status}, 200, 'the link in the email downloads');
is($r->{content}, 'MOOR' . ('m' x 3000), 'the file');
$r = $ua->get($links[1]);
like($r->{content}, qr/^HARBOUR/, 'and the other');

is($t->sql_value("SELECT count(*) FROM emails WHERE order_id = :'p1'"
    . " AND template = 'delivery' AND status = 'sent'", $o->{id}), 1,
    'the emails table has it, sent');

# --- a re-issue sends the new links ----------------------------------------------
$r = $t->http(POST => "/admin/api/orders/$o->{ref}/downloads/reissue",
    { headers => { Authorization => 'Bearer admin-token-1' } });
is($r->{status}, 200, 're-issued');
ok(wait_for(sub { delivery_mails($o->{ref}) == 2 }, 20), 'a second delivery email');
my ($second) = grep { $_->{text} ne $m->{text} } delivery_mails($o->{ref});
my @new = ($second // {})->{text} =~ m{^(http://\S+/download/\S+)$}mg;
is_deeply(\@new, [ map { $_->{url} } @{$r->{json}{downloads}} ],
    'with the new links');
is($ua->get($links[0])->{status}, 410, 'the first email\'s links are dead');
is($ua->get($new[0])->{status}, 200, 'the new ones work');

ok($t->check_sanitizer, 'no sanitizer reports');
done_testing;
