package Darkroom::Console;
# The console API in tests: a shop with the console mounted at
# /admin/console/api/, accounts made in SQL, a client that keeps its
# session cookie and CSRF token.

use strict;
use warnings;
use Exporter 'import';
use JSON::PP;
use Darkroom::Stripe qw(shop_conf fake_api demo_catalogue);

our @EXPORT_OK = qw(console_start account login api scrypt_hash PASSWORD);

use constant PASSWORD => 'correct horse battery';

# a shop with the console; %o: idle, max (directive values), http, server
sub console_start {
    my ($t, %o) = @_;
    my $stripe = fake_api($t);
    my $http = ($o{http} // '')
        . ($o{idle} ? "darkroom_console_session_idle $o{idle};\n" : '')
        . ($o{max} ? "darkroom_console_session_max $o{max};\n" : '');
    shop_conf($t, stripe => $stripe->url, http => $http,
        server => "location /admin/console/api/ { darkroom_console_api; }\n"
                  . "location /admin/lab/ { darkroom_lab_admin; }\n"
                  . ($o{server} // ''));
    $t->start;
    demo_catalogue($t);
    return $stripe;
}

# an account with the password PASSWORD: its id
my $HASH;
sub account {
    my ($t, $email, $role) = @_;
    $HASH //= scrypt_hash(PASSWORD);
    return $t->sql_value("INSERT INTO console_accounts (email, name, role,"
        . " password_hash) VALUES (:'p1', :'p1', :'p2', :'p3') RETURNING id",
        $email, $role, $HASH);
}

# scrypt$14$8$1$<salt>$<key> as the module makes it (python's hashlib)
sub scrypt_hash {
    my ($pw) = @_;
    my $py = 'import base64,hashlib,os,sys;'
        . 's=os.urandom(16);'
        . 'k=hashlib.scrypt(sys.argv[1].encode(),salt=s,n=16384,r=8,p=1,'
        . 'maxmem=64*1024*1024,dklen=32);'
        . 'e=lambda b:base64.urlsafe_b64encode(b).decode().rstrip("=");'
        . 'print("scrypt$14$8$1$"+e(s)+"$"+e(k))';
    open my $fh, '-|', 'python3', '-c', $py, $pw or die "python3: $!";
    my $h = <$fh>;
    close $fh;
    chomp $h;
    return $h;
}

# POST login: { status, json, cookie (the header), sid, csrf }
sub login {
    my ($t, $email, $password) = @_;
    my $r = $t->http(POST => '/admin/console/api/login', {
        headers => { 'Content-Type' => 'application/json' },
        content => encode_json({ email => $email,
                                 password => $password // PASSWORD }) });
    my $c = $r->{headers}{'set-cookie'} // '';
    $r->{cookie} = $c;
    ($r->{sid}) = $c =~ /^darkroom_admin=([^;]*)/;
    $r->{csrf} = $r->{json} ? $r->{json}{csrf} : undef;
    return $r;
}

# a request with a session { sid, csrf } (csrf => undef: none sent)
sub api {
    my ($t, $s, $method, $path, $body, %o) = @_;
    my %h = ('Content-Type' => 'application/json');
    $h{Cookie} = "darkroom_admin=$s->{sid}" if $s && $s->{sid};
    $h{'X-CSRF-Token'} = $s->{csrf} if $s && defined $s->{csrf};
    $h{Authorization} = "Bearer $s->{bearer}" if $s && $s->{bearer};
    $path = "/admin/console/api/$path" unless $path =~ m{^/};
    return $t->http($method, $path, { headers => \%h,
        defined $body ? (content => ref $body ? encode_json($body) : $body)
                      : () });
}

1;
