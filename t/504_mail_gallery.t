#!/usr/bin/perl
# Gallery emails: delivering a gallery sends its client one email with the
# link and the closing date; the reminder goes out once per gallery and
# expiry date, only for galleries closing within the configured days, and
# never for a revoked one.

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
    darkroom_mail_gallery_reminder_days 3;
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
        content => encode_json($body // {}) });
}

sub gallery {
    my ($slug, $days) = @_;
    my $r = admin('', { slug => $slug, title => "Wedding of \U$slug",
        client_email => "$slug\@example.com", password => 'secret',
        expires_at => $t->sql_value("SELECT now() + interval '$days days'") });
    die "gallery: $r->{content}" unless $r->{status} =~ /^20/;
}

sub mails_to { my ($to) = @_; grep { join(',', @{$_->{to} || []}) =~ /\Q$to\E/ } $mail->messages }

# delivered: one email with the link and the date
gallery('soon', 2);
is(admin('soon/deliver')->{status}, 200, 'gallery delivered');
ok(wait_for(sub { mails_to('soon@example.com') == 1 }, 10), 'the client gets an email');
my ($m) = mails_to('soon@example.com');
like($m->{subject}, qr/Your photographs are ready: Wedding of SOON/, 'subject names it');
my $text = encode_json($m);
like($text, qr{https://shop\.example/g/soon}, 'with the gallery link');
like($text, qr/It stays online until \d+ \w+ \d{4}/, 'and its closing date');
unlike($text, qr/scrypt/, 'nothing of the password hash');

gallery('later', 10);
admin('later/deliver');
gallery('gone', 1);
admin('gone/deliver');
admin('gone/revoke');
ok(wait_for(sub { mails_to('later@example.com') == 1 }, 10), 'second delivery mailed');

# the recurring reminders job: run it now, then again
sub run_reminders {
    $t->sql("UPDATE jobs SET run_at = now() WHERE kind = 'gallery_reminders'");
    wait_for(sub { $t->sql_value("SELECT run_at > now() + interval '30 minutes'"
        . " FROM jobs WHERE kind = 'gallery_reminders'") eq 't' }, 10);
}
ok(run_reminders(), 'the reminders job ran and comes back in an hour');
ok(wait_for(sub { grep { $_->{subject} =~ /closes on/ } mails_to('soon@example.com') }, 10),
    'a reminder for the gallery closing in 2 days');
ok(run_reminders(), 'ran again');
sleep 1;
is(scalar(grep { $_->{subject} =~ /closes on/ } mails_to('soon@example.com')), 1,
    'the reminder went once');
is(scalar(grep { $_->{subject} =~ /closes on/ } mails_to('later@example.com')), 0,
    'none for a gallery closing in 10 days');
is(scalar(grep { $_->{subject} =~ /closes on/ } mails_to('gone@example.com')), 0,
    'none for a revoked gallery');
is($t->sql_value("SELECT attempts FROM jobs WHERE kind = 'gallery_reminders'"), 0,
    'the recurring job never counts as failing');
is($t->sql_value("SELECT count(*) FROM jobs WHERE kind = 'gallery_reminders'"), 1,
    'and there is one of it, made by the workers that send mail');

# a new expiry date is a new reminder
admin('soon', { expires_at => $t->sql_value("SELECT now() + interval '1 day'") });
run_reminders();
ok(wait_for(sub { 2 == grep { $_->{subject} =~ /closes on/ } mails_to('soon@example.com') }, 10),
    'an extended or shortened gallery is reminded again for its new date');

done_testing;
