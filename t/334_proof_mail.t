#!/usr/bin/perl

# darkroom: proofing, the photographer's email.  A submitted selection is
# mailed (template selection_submitted) to the shop's alert address, with
# who chose, the list, its files and where to export it; the visitor's
# text is escaped in the HTML part.

use strict;
use warnings;

use lib 't/lib';
use Darkroom::Test qw(wait_for);
use Darkroom::Mail;
use Darkroom::ProofTest;
use JSON::PP;
use Test::More;

my $t = Darkroom::Test->new;
my $mail = Darkroom::Mail::sandbox($t);
my $mailconf = Darkroom::Mail::mail_conf($t, $mail, 'postmark');
$mailconf =~ s/^\s*darkroom_jobs_backoff .*$//m;
proof_start($t, jobs => 1, http => "darkroom_jobs_interval 100ms;"
                        . "\n    darkroom_jobs_backoff 200ms 5s;\n$mailconf");

my @p = gallery('wed', 3);
$t->sql(q{UPDATE galleries SET title = 'Ada & Tom' WHERE slug = 'wed'});
my (undef, $ada) = visitor('wed', 'Ada <b>Lovelace</b>', 'ada@example.com');
my $l = api(GET => 'wed/lists', undef, $ada)->{json}{lists}[0]{id};
api(POST => "wed/lists/$l/photos", { photo => 0 + $_ }, $ada) for @p[0, 2];
my $r = api(POST => "wed/lists/$l/submit", {}, $ada);
is($r->{status}, 200, 'submitted') or diag $r->{content};

ok(wait_for(sub { scalar $mail->messages }, 15), 'an email is sent');
my ($m) = $mail->messages;
is(join(',', @{$m->{to} || []}), 'owner@example.com',
   'to the shop\'s alert address');
like($m->{subject}, qr/Ada <b>Lovelace<\/b> submitted a selection from Ada & Tom/,
     'the subject names the visitor and the gallery');
my $text = encode_json($m);
like($text, qr/IMG_1\.jpg, IMG_3\.jpg/, 'the files chosen');
like($text, qr{/api/admin/galleries/wed/lists/$l/export\?format=lightroom},
     'where to export it');
like($m->{html}, qr/Ada &lt;b&gt;Lovelace/, 'HTML: the name escaped');
unlike($m->{html}, qr/<b>Lovelace/, 'HTML: no element of the visitor\'s');
is($t->sql_value(q{SELECT status FROM emails
                    WHERE template = 'selection_submitted'}), 'sent',
   'recorded as sent');

$t->stop;
ok($t->check_sanitizer, 'no sanitizer report');
done_testing;
