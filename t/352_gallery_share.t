#!/usr/bin/perl
# Sharing a gallery by email: POST <slug>/share {"email", "message"} queues
# one email (template gallery_shared) to any valid address with the
# gallery's link and the personal message (escaped in the HTML part); a bad
# address or message is a 400 that writes nothing, an unknown gallery a
# 404, a revoked or expired one a 409; the audit log records each call.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use JSON::PP;
use Darkroom::Test qw(wait_for);
use Darkroom::Mail;

my $t = Darkroom::Test->new;
my $mail = Darkroom::Mail::sandbox($t);
$t->write_file('keys', "m1:media-key-0123456789abcdef\n");
$t->write_file('cookie_key', "cookie-key-0123456789abcdef\n");
$t->write_file('admin_token', "gallery-admin-token\n");
my $mailconf = Darkroom::Mail::mail_conf($t, $mail, 'postmark')
    =~ s{darkroom_mail_shop_url \S+;}{darkroom_mail_shop_url https://shop.example;}r;

$t->conf(<<"CONF");
%%MAIN%%
events {}
http {
    %%HTTP%%
    darkroom_db "%%DB%%";
    darkroom_jobs_interval 100ms;
    darkroom_admin_token_file %%DIR%%/admin_token;
$mailconf
    darkroom_gallery_zone 1m interval=500ms;
    darkroom_media_keys %%DIR%%/keys;
    darkroom_gallery_media /media/;
    darkroom_gallery_root %%DIR%%/files;
    darkroom_gallery_cookie_key_file %%DIR%%/cookie_key;
    server {
        listen 127.0.0.1:%%PORT0%%;
        location /admin/api/galleries/ { darkroom_gallery_admin; }
    }
}
CONF
$t->start;

sub admin {
    my ($path, $body) = @_;
    return $t->http(POST => "/admin/api/galleries/$path", {
        headers => { Authorization => 'Bearer gallery-admin-token',
                     'Content-Type' => 'application/json' },
        content => ref $body ? encode_json($body) : ($body // '{}') });
}

sub error_code {
    my ($r) = @_;
    my $j = eval { decode_json($r->{content}) } || {};
    return ($j->{error} || {})->{code} // '';
}

sub jobs {
    return $t->sql_value(q{SELECT count(*) FROM jobs WHERE kind = 'email'
        AND payload->>'template' = 'gallery_shared'});
}

sub mails_to {
    my ($to) = @_;
    return grep { join(',', @{$_->{to} || []}) =~ /\Q$to\E/ } $mail->messages;
}

my $r = admin('', { slug => 'harbour', title => 'Harbour Wedding',
    client_email => 'client@example.com',
    expires_at => $t->sql_value("SELECT now() + interval '20 days'") });
is($r->{status}, 200, 'a gallery') or diag($r->{content});

# shared with a friend, with a message that is not HTML
my $msg = "Here are the <b>photos</b> & more\nfrom Saturday";
$r = admin('harbour/share', { email => 'friend@example.org',
                              message => $msg });
is($r->{status}, 200, 'shared') or diag($r->{content});
my $j = decode_json($r->{content});
is($j->{shared}{email}, 'friend@example.org', 'the answer names the address');
ok($j->{shared}{job_id}, 'and the email job');
is($j->{gallery}{slug}, 'harbour', 'and the gallery');

ok(wait_for(sub { mails_to('friend@example.org') == 1 }, 10),
    'the mail sandbox receives one email for the friend');
my ($m) = mails_to('friend@example.org');
is_deeply($m->{to}, ['friend@example.org'], 'to the address given only');
like($m->{subject}, qr/^Photographs shared with you: Harbour Wedding$/,
    'the subject names the gallery');
like($m->{text}, qr{https://shop\.example/g/harbour}, 'the text has the link');
like($m->{html}, qr{href="https://shop\.example/g/harbour"},
    'the HTML has the link');
like($m->{text}, qr/\Q$msg\E/, 'the text has the message as typed');
like($m->{html}, qr/Here are the &lt;b&gt;photos&lt;\/b&gt; &amp; more/,
    'the HTML has it escaped');
unlike($m->{html}, qr/<b>photos/, 'never as markup');
is(scalar(mails_to('client@example.com')), 0, 'the client gets nothing');

# without a message
$r = admin('harbour/share', { email => 'aunt@example.net' });
is($r->{status}, 200, 'shared without a message');
ok(wait_for(sub { mails_to('aunt@example.net') == 1 }, 10), 'mailed too');
($m) = mails_to('aunt@example.net');
unlike($m->{text}, qr/Saturday/, 'with no message of another share');

# bad input: a clear 400 and no job
my $before = jobs();
for my $case (
    [ 'no email', {}, 'bad_email' ],
    [ 'an empty email', { email => '' }, 'bad_email' ],
    [ 'not an address', { email => 'friend' }, 'bad_email' ],
    [ 'no domain dot', { email => 'friend@localhost' }, 'bad_email' ],
    [ 'two addresses', { email => 'a@example.com, b@example.com' },
      'bad_email' ],
    [ 'a header', { email => "a\@example.com\nBcc: b\@example.com" },
      'bad_email' ],
    [ 'a number', { email => 42 }, 'bad_email' ],
    [ 'a long message', { email => 'x@example.com', message => 'm' x 1001 },
      'bad_message' ],
    [ 'a message object', { email => 'x@example.com', message => {} },
      'bad_message' ],
    [ 'not JSON', '{"email": ', 'invalid_json' ],
    [ 'not an object', '["x@example.com"]', 'invalid_json' ],
) {
    my ($name, $body, $code) = @$case;
    $r = admin('harbour/share', $body);
    is($r->{status}, 400, "$name: 400");
    is(error_code($r), $code, "$name: $code");
}
is(jobs(), $before, 'bad input queued no email');

$r = admin('harbour/share', { email => 'x@example.com', message => 'm' x 1000 });
is($r->{status}, 200, 'a message of 1000 characters is fine');
$before = jobs();

$r = admin('nowhere/share', { email => 'x@example.com' });
is($r->{status}, 404, 'an unknown gallery: 404');
is(error_code($r), 'not_found', 'not_found');

is(admin('harbour/revoke')->{status}, 200, 'revoked');
$r = admin('harbour/share', { email => 'x@example.com' });
is($r->{status}, 409, 'a revoked gallery: 409');
is(error_code($r), 'gallery_revoked', 'gallery_revoked');
like(decode_json($r->{content})->{error}{message}, qr/revoked.*Restore/,
    'the message says what to do');

is(admin('harbour/restore')->{status}, 200, 'restored');
$t->sql(q{UPDATE galleries SET expires_at = now() - interval '1 hour'
           WHERE slug = 'harbour'});
$r = admin('harbour/share', { email => 'x@example.com' });
is($r->{status}, 409, 'an expired gallery: 409');
is(error_code($r), 'gallery_expired', 'gallery_expired');
like(decode_json($r->{content})->{error}{message}, qr/expired/,
    'the message says so');
is(jobs(), $before, 'refusals queued no email');

# the audit log has every call, refused or not, with its status
my $audit = $t->sql_value(q{SELECT string_agg(status::text, ',' ORDER BY id)
    FROM console_audit WHERE method = 'POST'
     AND path LIKE '%/harbour/share'});
like($audit, qr/^200,200,(400,){11}200,409,409$/,
    'the audit log records each share and its answer');

done_testing;
