#!/usr/bin/perl

# The rate limits of the configurations we ship (the example for a real site
# and the one `make run` renders):
#  - the admin zone is keyed on the client's address, not on the
#    Authorization header (where every guessed token had a bucket of its own);
#  - every admin location is limited by it;
#  - /api/orders/ (order tokens) is limited, by address.
# Then the shipped admin and orders zones are exercised, at a rate no test
# machine can refill (one per hour), with a new token each request: the
# address must run out of its burst.

use strict;
use warnings;

use lib 't/lib';
use Darkroom::Test;
use Test::More;

my $t = Darkroom::Test->new;
my $top = $t->top;

# directives end with ";" and may span lines; comments go first
sub directives {
    my ($text) = @_;
    $text =~ s/#[^\n]*//g;
    return map { s/\s+/ /gr =~ s/^ //r } split /;/, $text;
}

sub zones {
    my ($text) = @_;
    my %z;
    for (directives($text)) {
        next unless /^darkroom_limit_zone (.*)$/;
        my %a = map { /^(\w+)=(.*)$/ ? ($1 => $2) : () } split / /, $1;
        $z{$a{name}} = \%a;
    }
    return \%z;
}

# location "<path>" => its body (no nested locations in our configs)
sub locations {
    my ($text) = @_;
    my %l;
    while ($text =~ /^\s*location\s+(?:(=|~\*?|\^~)\s+)?(\S+)\s*\{(.*?)^\s*\}/msg)
    {
        $l{($1 // '') . $2} = $3;
    }
    return \%l;
}

sub limit_zones_of {
    my ($body) = @_;
    return map { /^darkroom_limit zone=(\S+)/ ? $1 : () } directives($body);
}

my %shipped = (
    'conf/darkroom.conf.example' => $t->read_file("$top/conf/darkroom.conf.example"),
    'conf/darkroom-run.conf'     => $t->read_file("$top/conf/darkroom-run.conf"),
);

for my $name (sort keys %shipped) {
    my $text = $shipped{$name};
    ok(length $text, "$name read");
    my $zones = zones($text);
    my $locs = locations($text);

    my $admin = $zones->{admin};
    ok($admin, "$name: admin zone defined");
    unlike($admin->{key} // '', qr/\$http_authorization/i,
        "$name: admin zone is not keyed on the Authorization header");
    like($admin->{key} // '', qr/^\$(binary_)?remote_addr$/,
        "$name: admin zone is keyed on the client address");

    for my $path (sort keys %$locs) {
        my $body = $locs->{$path};
        next unless $body =~ /\bdarkroom_(?:admin|lab_admin|gallery_admin)\b/;
        ok((grep { $_ eq 'admin' } limit_zones_of($body)),
            "$name: location $path is limited by the admin zone");
    }

    my ($orders) = grep { $locs->{$_} =~ /\bdarkroom_order_status\b/ }
        sort keys %$locs;
    ok($orders, "$name: has an order status location");
    my @oz = limit_zones_of($orders ? $locs->{$orders} : '');
    ok(@oz, "$name: $orders has a darkroom_limit");
    for my $z (@oz) {
        ok($zones->{$z}, "$name: zone $z of $orders is defined");
        like($zones->{$z}{key} // '', qr/\$(binary_)?remote_addr/,
            "$name: zone $z of $orders is keyed on the client address");
    }
}

# The shipped keys, exercised: each zone's key from the run config, with a
# rate that cannot refill during the test and a burst of 3.
my $run = zones($shipped{'conf/darkroom-run.conf'});
my ($orders_loc) = grep { locations($shipped{'conf/darkroom-run.conf'})->{$_}
    =~ /darkroom_order_status/ } keys %{locations($shipped{'conf/darkroom-run.conf'})};
my ($orders_zone) = limit_zones_of(
    locations($shipped{'conf/darkroom-run.conf'})->{$orders_loc // ''} // '');

$t->write_file('html/index.html', "ok\n");

my $admin_key = $run->{admin}{key} // '$binary_remote_addr';
# none shipped (as found): the order token, which is what guessing varies
my $orders_key = $orders_zone ? $run->{$orders_zone}{key} : '$uri';

$t->conf(<<"EOF");
%%MAIN%%
events {}
http {
    %%HTTP%%
    darkroom_limit_zone name=admin key=$admin_key rate=1r/h burst=3 size=1m;
    darkroom_limit_zone name=orders key=$orders_key rate=1r/h burst=3 size=1m;
    server {
        listen 127.0.0.1:%%PORT0%%;
        root %%DIR%%/html;
        location /admin/api/ { darkroom_limit zone=admin; }
        location /api/orders/ { darkroom_limit zone=orders; }
    }
}
EOF
$t->start;

for my $case (['/admin/api/orders?guess=', 'admin API'],
              ['/api/orders/guess-', 'order status'])
{
    my ($path, $what) = @$case;
    my @status;
    for my $i (1 .. 8) {
        my $r = $t->http(GET => "$path$i", { headers => {
            Authorization => "Bearer guess-$i-" . ('x' x $i) } });
        push @status, $r->{status};
    }
    ok((grep { $_ == 429 } @status),
        "$what: one address guessing tokens is limited (@status)");
    isnt($status[0], 429, "$what: the first request passes the limit");
}

done_testing;
