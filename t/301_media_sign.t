#!/usr/bin/perl

# darkroom: signed media URLs checked in the access phase.
#
# Valid link -> 200; one changed character anywhere -> 403; expired -> 410;
# unknown key id -> 403; key rotation with reload; the signing variable;
# client address binding; the failure status; tools/darkroom-sign output
# accepted by the module; bad keys files fail nginx -t with file:line.

use strict;
use warnings;

use lib 't/lib';
use Darkroom::Test qw(wait_for);
use Digest::SHA qw(hmac_sha256);
use MIME::Base64 qw(encode_base64);
use Test::More;

my $t = Darkroom::Test->new;
my $dir = $t->dir;
my $top = $t->top;

my $photo = join '', map { chr(($_ * 7 + 3) % 256) } 0 .. 4095;
$t->write_file('html/photos/a.jpg', $photo);
$t->write_file("html/photos/\xc3\xa9t\xc3\xa9 1.jpg", 'summer');
$t->write_file('html/bound/a.jpg', $photo);
$t->write_file('html/hidden/a.jpg', $photo);

my %KEY = (
    k2 => 'second-key-0123456789abcdef',
    k1 => 'first-key-0123456789abcdef',
    k3 => 'third-key-0123456789abcdef',
);

sub keys_file {
    $t->write_file('keys', join '', "# media keys, newest first\n",
        map { "$_:$KEY{$_}\n" } @_);
}

keys_file(qw(k2 k1));

$t->conf(<<'EOF');
%%MAIN%%
events {}
http {
    %%HTTP%%

    darkroom_media_sign $dl_link $arg_p ttl=10m disposition=attachment;
    darkroom_media_sign $ip_link $arg_p bind_ip=on;
    darkroom_media_sign $net_link $arg_p bind_ip=24;
    darkroom_media_sign $g_link $arg_p g=$arg_g filename=$arg_name;

    server {
        listen 127.0.0.1:%%PORT0%%;
        root %%DIR%%/html;
        darkroom_media_keys %%DIR%%/keys;

        location /photos/ {
            darkroom_media on;
            disable_symlinks on from=$document_root;
            add_header X-Gallery $darkroom_media_gallery;
            add_header X-Kid $darkroom_media_kid;
        }

        location /bound/ {
            darkroom_media on;
            darkroom_media_bind_ip 24;
        }

        location /hidden/ {
            darkroom_media on;
            darkroom_media_status 404;
        }

        location = /sign/dl  { return 200 $dl_link; }
        location = /sign/ip  { return 200 $ip_link; }
        location = /sign/net { return 200 $net_link; }
        location = /sign/g   { return 200 $g_link; }
    }
}
EOF

$t->start;

# an independent signer: the canonical string of docs/signed-urls.md
sub sign {
    my ($path, %p) = @_;
    my $key = delete $p{key} // $KEY{ $p{kid} };
    my $canonical = "darkroom-media-v1\n$path\n";
    $canonical .= "$_=$p{$_}\n" for sort keys %p;
    my $sig = encode_base64(hmac_sha256($canonical, $key), '');
    $sig =~ tr{+/}{-_};
    $sig =~ s/=+$//;
    my $esc = sub {
        my ($s, $slash) = @_;
        my $keep = $slash ? 'A-Za-z0-9\-._~/' : 'A-Za-z0-9\-._~';
        $s =~ s/([^$keep])/sprintf('%%%02X', ord $1)/ge;
        $s;
    };
    return $esc->($path, 1) . '?'
        . join('&', (map { "$_=" . $esc->($p{$_}) } sort keys %p), "sig=$sig");
}

sub tool {
    my @args = @_;
    my $out = `$top/tools/darkroom-sign --keys $dir/keys @args`;
    chomp $out;
    return $out;
}

sub get { $t->http(GET => @_) }

my $exp = time + 600;

# valid links

my $url = tool("/photos/a.jpg");
like($url, qr{^/photos/a\.jpg\?exp=\d+&kid=k2&sig=[A-Za-z0-9_-]{43}$},
    'darkroom-sign output form, first key signs');
my $r = get($url);
is($r->{status}, 200, 'darkroom-sign link accepted');
is($r->{content}, $photo, 'the file itself');
is($r->{headers}{'x-kid'}, 'k2', '$darkroom_media_kid');

$r = get(sign('/photos/a.jpg', exp => $exp, kid => 'k1'));
is($r->{status}, 200, 'older key still listed: accepted');

$r = get(tool("--filename '\xc3\xa9t\xc3\xa9 1.jpg' --disposition attachment",
    "'/photos/\xc3\xa9t\xc3\xa9 1.jpg'"));
is($r->{status}, 200, 'UTF-8 path and filename');
is($r->{content}, 'summer', 'UTF-8 path served');
is($r->{headers}{'content-disposition'},
    q{attachment; filename="_t_ 1.jpg"; filename*=UTF-8''%C3%A9t%C3%A9%201.jpg},
    'Content-Disposition with RFC 5987 filename*');

$r = get(tool('--ttl 60 --ip 127.0.0.0/8 --gallery g-1 --disposition inline',
    '/photos/a.jpg'));
is($r->{status}, 200, 'darkroom-sign with --ip and --gallery accepted');
is($r->{headers}{'x-gallery'}, 'g-1', '... gallery id');
is(get(tool('--ip 10.0.0.1', '/photos/a.jpg'))->{status}, 403,
    'darkroom-sign --ip for another address -> 403');
is(get(tool('--kid k1', '/photos/a.jpg'))->{status}, 200,
    'darkroom-sign --kid k1 accepted');

# one changed character anywhere -> 403

my $full = sign('/photos/a.jpg', exp => $exp, kid => 'k2',
    disposition => 'attachment', filename => 'holiday.jpg', g => 'gal-7');
is(get($full)->{status}, 200, 'link with every parameter');
is(get($full)->{headers}{'x-gallery'}, 'gal-7', '$darkroom_media_gallery');

# (from after "/photos/": a changed prefix is another location)
my (@wrong, $n);
for my $i (length('/photos/') .. length($full) - 1) {
    my $c = substr($full, $i, 1);
    my $d = $c =~ /[0-9]/ ? ($c + 1) % 10
          : $c =~ /[a-y]/ ? chr(ord($c) + 1)
          : $c =~ /[A-Y]/ ? chr(ord($c) + 1)
          : $c eq 'z' ? 'a' : $c eq 'Z' ? 'A'
          : $c eq '-' ? '_' : $c eq '_' ? '-'
          : 'x';
    my $u = $full;
    substr($u, $i, 1) = $d;
    my $s = get($u)->{status};
    $n++;
    push @wrong, "$u -> $s" if $s != 403;
}
is_deeply(\@wrong, [], "each of $n one-character changes -> 403");

$r = get(sign('/photos/a.jpg', exp => $exp, kid => 'k2') . '&utm=1');
is($r->{status}, 403, 'unsigned extra parameter -> 403');
is($r->{json}{error}{code}, 'unknown_parameter', '... unknown_parameter');

$r = get('/photos/a.jpg');
is($r->{status}, 403, 'no signature -> 403');
is($r->{json}{error}{code}, 'missing_signature', '... missing_signature');
like($r->{headers}{'content-type'}, qr{^application/json}, '... JSON');

$r = get(sign('/photos/a.jpg', exp => $exp, kid => 'k9',
    key => 'ninth-key-0123456789abcdef'));
is($r->{status}, 403, 'unknown key id -> 403');
is($r->{json}{error}{code}, 'unknown_key', '... unknown_key');

$r = get(sign('/photos/a.jpg', exp => $exp, kid => 'k2', key => $KEY{k1}));
is($r->{status}, 403, 'wrong key for the kid -> 403');
is($r->{json}{error}{code}, 'bad_signature', '... bad_signature');

# expired

$r = get(sign('/photos/a.jpg', exp => time - 5, kid => 'k2'));
is($r->{status}, 410, 'expired -> 410');
is($r->{json}{error}{code}, 'link_expired', '... link_expired');
like($r->{json}{error}{message}, qr/expired at \d{4}-\d\d-\d\dT/,
    '... says when');
is($r->{headers}{'cache-control'}, 'no-store', '... not cached');

$r = get(sign('/photos/a.jpg', exp => time - 5, kid => 'k2') . 'x');
is($r->{status}, 403, 'expired and tampered -> 403, not 410');

# failure status

$r = get(sign('/hidden/a.jpg', exp => $exp, kid => 'k2'));
is($r->{status}, 200, 'darkroom_media_status location: valid link');
$r = get(sign('/hidden/a.jpg', exp => $exp, kid => 'k2') . 'x');
is($r->{status}, 404, 'darkroom_media_status 404 for a bad signature');
is($r->{json}{error}{code}, 'bad_signature', '... still says why');
$r = get(sign('/hidden/a.jpg', exp => time - 1, kid => 'k2'));
is($r->{status}, 410, '... expired stays 410');

# the signing variable

my $before = time;
my $dl = get('/sign/dl?p=/photos/a.jpg')->{content};
my $after = time;
like($dl, qr{^/photos/a\.jpg\?disposition=attachment&exp=(\d+)&kid=k2&sig=},
    '$dl_link');
my ($dexp) = $dl =~ /exp=(\d+)/;
ok($dexp >= int($before) + 600 && $dexp <= $after + 601, '... ttl=10m');
$r = get($dl);
is($r->{status}, 200, '... accepted');
is($r->{headers}{'content-disposition'},
    q{attachment; filename="a.jpg"; filename*=UTF-8''a.jpg},
    '... attachment named after the path');
is(tool("--exp $dexp --disposition attachment /photos/a.jpg"), $dl,
    'darkroom-sign makes the same link as the variable');

my $gl = get('/sign/g?p=/photos/a.jpg&g=gal-9&name=x.jpg')->{content};
like($gl, qr{^/photos/a\.jpg\?exp=\d+&filename=x\.jpg&g=gal-9&kid=k2&sig=},
    '$g_link with filename and g');
$r = get($gl);
is($r->{status}, 200, '... accepted');
is($r->{headers}{'x-gallery'}, 'gal-9', '... gallery id available');
is($r->{headers}{'content-disposition'},
    q{inline; filename="x.jpg"; filename*=UTF-8''x.jpg},
    '... filename alone gives inline');

# client address binding

my $il = get('/sign/ip?p=/photos/a.jpg')->{content};
like($il, qr{&ip=127\.0\.0\.1&}, '$ip_link bound to the client');
is(get($il)->{status}, 200, '... accepted from that client');

$r = get(sign('/photos/a.jpg', exp => $exp, kid => 'k2', ip => '10.1.2.3'));
is($r->{status}, 403, 'link for another address -> 403');
is($r->{json}{error}{code}, 'address_mismatch', '... address_mismatch');

is(get(sign('/photos/a.jpg', exp => $exp, kid => 'k2', ip => '127.0.0.0/8'))
    ->{status}, 200, 'link for a prefix holding the client');

my $nl = get('/sign/net?p=/bound/a.jpg')->{content};
like($nl, qr{&ip=127\.0\.0\.0%2F24&}, '$net_link bound to the /24');
is(get($nl)->{status}, 200, 'bind_ip 24 location: /24 link accepted');

$r = get(sign('/bound/a.jpg', exp => $exp, kid => 'k2'));
is($r->{status}, 403, 'bind_ip location: unbound link -> 403');
is($r->{json}{error}{code}, 'address_required', '... address_required');
is(get(sign('/bound/a.jpg', exp => $exp, kid => 'k2', ip => '127.0.0.0/8'))
    ->{status}, 403, 'bind_ip 24 location: /8 link -> 403');
is(get(sign('/bound/a.jpg', exp => $exp, kid => 'k2', ip => '127.0.0.1'))
    ->{status}, 200, 'bind_ip 24 location: exact address accepted');

# rotation: a new key signs, old ones verify until removed and reloaded

my $old1 = sign('/photos/a.jpg', exp => $exp, kid => 'k1');
my $old2 = sign('/photos/a.jpg', exp => $exp, kid => 'k2');

# old workers may answer for a moment after a reload: wait until they exit

sub reload_and_wait {
    my @old = $t->worker_pids;
    $t->reload;
    ok(wait_for(sub { !grep { kill 0, $_ } @old }, 20),
        'old workers gone after reload');
}

keys_file(qw(k3 k2 k1));
reload_and_wait();

ok(wait_for(sub { get('/sign/dl?p=/photos/a.jpg')->{content} =~ /&kid=k3&/ },
    10), 'after reload the new first key signs');
is(get($old1)->{status}, 200, 'k1 link still valid');
is(get($old2)->{status}, 200, 'k2 link still valid');

keys_file(qw(k3 k2));
is(get($old1)->{status}, 200, 'k1 removed from the file: valid until reload');
reload_and_wait();
$r = get($old1);
is($r->{status}, 403, 'k1 removed and reloaded -> 403');
is($r->{json}{error}{code}, 'unknown_key', '... unknown_key');
is(get($old2)->{status}, 200, 'k2 link still valid');
is(get(sign('/photos/a.jpg', exp => $exp, kid => 'k3'))->{status}, 200,
    'k3 link valid');

# bad keys files fail the configuration test with file:line

for my $case (
    [ "k1:$KEY{k1}\nnocolon\n", 'line 2', qr/keys:2: expected "kid:key"/ ],
    [ "k1:short\n", 'short key', qr/keys:1: key shorter than 16/ ],
    [ "# c\n\nk/1:$KEY{k1}\n", 'bad kid', qr/keys:3: a key id is/ ],
    [ "k1:$KEY{k1}\nk1:$KEY{k2}\n", 'duplicate', qr/keys:2: duplicate key/ ],
    [ "# only a comment\n", 'no keys', qr/has no keys/ ],
) {
    my ($content, $name, $re) = @$case;
    $t->write_file('keys', $content);
    my ($ok, $out) = $t->test_conf;
    ok(!$ok, "nginx -t fails: $name");
    like($out, $re, "... $name reported with file:line");
    unlike($out, qr/\Q$KEY{k1}\E|\Q$KEY{k2}\E/, '... no key in the output');
}

unlink "$dir/keys";
my ($ok, $out) = $t->test_conf;
ok(!$ok, 'nginx -t fails: missing keys file');

keys_file(qw(k3 k2));
($ok, $out) = $t->test_conf;
ok($ok, 'nginx -t passes again') or diag($out);

# where darkroom_media_keys applies: the keys live in the core's location
# configuration, inherited by its merge, which runs for every location
# before the media module's merge checks "darkroom_media on"

$t->write_file('keys2', "k9:$KEY{k1}\n");

for my $case (
    [ 'inherited from http{}', undef,
      'darkroom_media_keys %%DIR%%/keys;
       server { listen 127.0.0.1:%%PORT0%%;
                location /photos/ { darkroom_media on; } }' ],
    [ 'inherited from an enclosing location', undef,
      'server { listen 127.0.0.1:%%PORT0%%;
                location /photos/ { darkroom_media_keys %%DIR%%/keys;
                    location /photos/raw/ { darkroom_media on; }
                    if ($arg_x) { return 404; } darkroom_media on; } }' ],
    [ 'a location replacing the server\'s keys', undef,
      'server { listen 127.0.0.1:%%PORT0%%;
                darkroom_media_keys %%DIR%%/keys;
                location /photos/ { darkroom_media_keys %%DIR%%/keys2;
                                    darkroom_media on; } }' ],
    [ 'keys of a sibling location', qr/"darkroom_media on" needs "darkroom_media_keys"/,
      'server { listen 127.0.0.1:%%PORT0%%;
                location /keys/ { darkroom_media_keys %%DIR%%/keys; }
                location /photos/ { darkroom_media on; } }' ],
    [ 'on in a server, keys in a location', qr/"darkroom_media on" needs "darkroom_media_keys"/,
      'server { listen 127.0.0.1:%%PORT0%%; darkroom_media on;
                location /photos/ { darkroom_media_keys %%DIR%%/keys; } }' ],
    [ 'keys twice in a location', qr/"darkroom_media_keys" directive is duplicate in \S+:\d+/,
      'server { listen 127.0.0.1:%%PORT0%%;
                location /photos/ { darkroom_media_keys %%DIR%%/keys;
                                    darkroom_media_keys %%DIR%%/keys2; } }' ],
) {
    my ($name, $err, $http) = @$case;
    $t->conf("%%MAIN%%\nevents {}\nhttp {\n%%HTTP%%\n$http\n}\n");
    my ($ok, $out) = $t->test_conf;
    if ($err) {
        ok(!$ok, "nginx -t fails: $name");
        like($out, $err, "... $name explained");
    } else {
        ok($ok, "nginx -t passes: $name") or diag($out);
    }
}

unlike($t->error_log, qr/\Q$KEY{k1}\E|\Q$KEY{k2}\E|\Q$KEY{k3}\E/,
    'keys never logged');

$t->stop;

done_testing();
