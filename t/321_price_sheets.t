#!/usr/bin/perl
# Price sheets (issue 14) in the shop's admin API: GET price-sheets,
# GET/PUT/DELETE price-sheets/<id>; bad input is refused naming the field
# and changes nothing.  The gallery admin's sale settings (price_sheet,
# currency, selection_limit, extra_photo_amount, visitor_download_limit),
# checked the same way.  A gallery where no shop sells (no
# darkroom_checkout) answers its quote and checkout 404 no_shop.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use JSON::PP;
use Darkroom::Test;
use Darkroom::Stripe qw(demo_catalogue);

my $t = Darkroom::Test->new;

$t->write_file('admin_token', "admin-token-1\n");
$t->write_file('keys', "m1:media-key-0123456789abcdef\n");
$t->write_file('cookie_key', "cookie-key-0123456789abcdef\n");

$t->conf(<<'CONF');
%%MAIN%%
events {}
http {
    %%HTTP%%
    darkroom_db "%%DB%%";
    darkroom_jobs off;
    darkroom_admin_token_file %%DIR%%/admin_token;
    darkroom_media_keys %%DIR%%/keys;
    darkroom_gallery_media /media/;
    darkroom_gallery_root %%DIR%%/files;
    darkroom_gallery_cookie_key_file %%DIR%%/cookie_key;

    server {
        listen 127.0.0.1:%%PORT0%%;
        location /admin/api/ { darkroom_admin; }
        location /api/galleries/ { darkroom_gallery; }
        location /api/admin/galleries/ { darkroom_gallery_admin; }
    }
}
CONF

demo_catalogue($t);
$t->start;

my $admin = { Authorization => 'Bearer admin-token-1' };

sub sheets {
    my ($method, $path, $body) = @_;
    return $t->http($method, "/admin/api/price-sheets$path", {
        headers => $admin,
        defined $body ? (content => ref $body ? encode_json($body) : $body)
                      : () });
}

sub gadmin {
    my ($method, $path, $body) = @_;
    return $t->http($method, "/api/admin/galleries/$path", {
        headers => $admin,
        defined $body ? (content => encode_json($body)) : () });
}

sub err { my ($r) = @_; return [ $r->{status}, $r->{json}{error}{code} // '' ] }

sub count { $t->sql_value('SELECT (SELECT count(*) FROM price_sheets)'
    . ' + (SELECT count(*) FROM price_sheet_items)'
    . ' + (SELECT count(*) FROM price_sheet_prices)') }

# --- the list, empty; the token ---------------------------------------------
my $r = sheets(GET => '');
is($r->{status}, 200, 'list');
is_deeply($r->{json}, { price_sheets => [] }, 'no sheets yet');
is($t->http(GET => '/admin/api/price-sheets')->{status}, 401,
    'no token: 401');
is_deeply(err(sheets(GET => '/wedding')), [404, 'not_found'],
    'no such sheet: 404');

# --- bad input, nothing written ---------------------------------------------
my $good = { name => 'Wedding 2026', items => [
    { product => 'giclee-a3', position => 1, prices => { GBP => 3900 } },
    { product => 'digital', position => 2 } ] };
my @bad = (
    [ 'not JSON', '{"name":', [400, 'invalid_json'] ],
    [ 'not an object', [1], [400, 'invalid_json'] ],
    [ 'no name', { items => [] }, [400, 'invalid_name'] ],
    [ 'an empty name', { name => '', items => [] }, [400, 'invalid_name'] ],
    [ 'no items', { name => 'X' }, [400, 'invalid_items'] ],
    [ 'items not a list', { name => 'X', items => {} }, [400, 'invalid_items'] ],
    [ 'an item without product', { name => 'X', items => [{}] },
      [400, 'invalid_items'] ],
    [ 'an unknown product', { name => 'X', items => [{ product => 'nope' }] },
      [400, 'unknown_product'] ],
    [ 'a product twice', { name => 'X', items => [{ product => 'digital' },
      { product => 'digital' }] }, [400, 'invalid_items'] ],
    [ 'a position not a number', { name => 'X', items => [{
      product => 'digital', position => 'first' }] }, [400, 'invalid_items'] ],
    [ 'a fractional position', { name => 'X', items => [{
      product => 'digital', position => 1.5 }] }, [400, 'invalid_items'] ],
    [ 'prices not an object', { name => 'X', items => [{
      product => 'digital', prices => [1500] }] }, [400, 'invalid_items'] ],
    [ 'a lower-case currency', { name => 'X', items => [{
      product => 'digital', prices => { gbp => 1500 } }] },
      [400, 'invalid_items'] ],
    [ 'a zero price', { name => 'X', items => [{
      product => 'digital', prices => { GBP => 0 } }] }, [400, 'invalid_items'] ],
    [ 'a fractional price', { name => 'X', items => [{
      product => 'digital', prices => { GBP => 15.5 } }] },
      [400, 'invalid_items'] ],
    [ 'a price as a string', { name => 'X', items => [{
      product => 'digital', prices => { GBP => '1500' } }] },
      [400, 'invalid_items'] ],
    [ 'a huge price', { name => 'X', items => [{
      product => 'digital', prices => { GBP => 100000000 } }] },
      [400, 'invalid_items'] ],
);
for my $b (@bad) {
    my ($name, $body, $want) = @$b;
    is_deeply(err(sheets(PUT => '/wedding', $body)), $want, "PUT: $name");
}
is_deeply(err(sheets(PUT => '/Bad_Id', $good)), [400, 'invalid_price_sheet'],
    'PUT: a bad id');
is(count(), 0, 'nothing written by a refusal');
is_deeply(err(sheets(POST => '', $good)), [405, 'method_not_allowed'],
    'POST to the list: 405');
is_deeply(err(sheets(DELETE => '')), [405, 'method_not_allowed'],
    'DELETE the list: 405');
is(sheets(GET => '/a/b')->{status}, 404, 'a deeper path: 404');

# --- write, read, replace ------------------------------------------------------
$r = sheets(PUT => '/wedding', $good);
is($r->{status}, 200, 'PUT') or diag $r->{content};
my $s = $r->{json}{price_sheet};
is($s->{id}, 'wedding', 'id');
is($s->{name}, 'Wedding 2026', 'name');
is_deeply($s->{items}, [
    { product => 'giclee-a3', position => 1, prices => { GBP => 3900 } },
    { product => 'digital', position => 2, prices => {} } ],
    'items with their own prices');
is_deeply(sheets(GET => '/wedding')->{json}{price_sheet}{items}, $s->{items},
    'GET reads it back');
is_deeply([ map { $_->{id} } @{sheets(GET => '')->{json}{price_sheets}} ],
    ['wedding'], 'listed');

# a refused PUT of an existing sheet leaves it as it was
is_deeply(err(sheets(PUT => '/wedding', { name => 'Changed', items => [
    { product => 'nope' }] })), [400, 'unknown_product'], 'a bad replacement');
is(sheets(GET => '/wedding')->{json}{price_sheet}{name}, 'Wedding 2026',
    'the sheet unchanged');
is(scalar @{sheets(GET => '/wedding')->{json}{price_sheet}{items}}, 2,
    'its items unchanged');

$r = sheets(PUT => '/wedding', { name => 'Wedding 2027', items => [
    { product => 'canvas-50', prices => { GBP => 9900, USD => 12900 } } ] });
is($r->{status}, 200, 'PUT replaces');
is_deeply($r->{json}{price_sheet}{items}, [ { product => 'canvas-50',
    position => 1, prices => { GBP => 9900, USD => 12900 } } ],
    'the items replaced whole; position defaults to the order given');
is($t->sql_value("SELECT count(*) FROM price_sheet_items WHERE sheet_id = 'wedding'"),
    1, 'one item left');

# --- gallery sale settings ------------------------------------------------------
is(gadmin(POST => '', { slug => 'wed' })->{status}, 200, 'a gallery');
my @gbad = (
    [ { price_sheet => 'nope' }, [400, 'unknown_price_sheet'] ],
    [ { price_sheet => 12 }, [400, 'unknown_price_sheet'] ],
    [ { currency => 'gbp' }, [400, 'invalid_currency'] ],
    [ { currency => 'POUNDS' }, [400, 'invalid_currency'] ],
    [ { selection_limit => 0 }, [400, 'invalid_selection_limit'] ],
    [ { selection_limit => 2.5 }, [400, 'invalid_selection_limit'] ],
    [ { extra_photo_amount => -1 }, [400, 'invalid_extra_photo_amount'] ],
    [ { extra_photo_amount => '500' }, [400, 'invalid_extra_photo_amount'] ],
    [ { visitor_download_limit => 0 },
      [400, 'invalid_visitor_download_limit'] ],
);
for my $b (@gbad) {
    is_deeply(err(gadmin(POST => 'wed', $b->[0])), $b->[1],
        'gallery: ' . encode_json($b->[0]) . ' refused');
    is_deeply(err(gadmin(POST => '', { slug => 'new', %{$b->[0]} })), $b->[1],
        'new gallery: ' . encode_json($b->[0]) . ' refused');
}
is($t->sql_value("SELECT count(*) FROM galleries WHERE slug = 'new'"), 0,
    'no gallery made by a refusal');

$r = gadmin(POST => 'wed', { price_sheet => 'wedding', currency => 'EUR',
    selection_limit => 30, extra_photo_amount => 500,
    visitor_download_limit => 10 });
is($r->{status}, 200, 'all five set') or diag $r->{content};
my %want = (price_sheet => 'wedding', currency => 'EUR', selection_limit => 30,
    extra_photo_amount => 500, visitor_download_limit => 10);
$r = gadmin(GET => 'wed');
is($r->{json}{gallery}{$_}, $want{$_}, "GET shows $_") for sort keys %want;
is_deeply($r->{json}{orders}, [], 'and its orders: none');
is_deeply(sheets(GET => '/wedding')->{json}{price_sheet}{galleries}, ['wed'],
    'the sheet names the galleries selling from it');

$r = gadmin(POST => 'wed', { title => 'Renamed' });
is($r->{json}{gallery}{selection_limit}, 30, 'an absent key keeps its value');
$r = gadmin(POST => 'wed', { selection_limit => undef, currency => undef });
is($r->{json}{gallery}{selection_limit}, undef, 'null clears the limit');
is($r->{json}{gallery}{currency}, undef, 'and the currency');
is($r->{json}{gallery}{price_sheet}, 'wedding', 'the rest kept');
is(gadmin(POST => '', { slug => 'new2', price_sheet => 'wedding' })
    ->{json}{gallery}{price_sheet}, 'wedding', 'a new gallery with a sheet');

# --- no shop here -----------------------------------------------------------------
for my $route (qw(quote checkout)) {
    $r = $t->http(POST => "/api/galleries/wed/$route", {
        content => encode_json({ email => 'ada@example.com', items => [
            { photo => 1, product => 'digital', quantity => 1 }] }) });
    is_deeply(err($r), [404, 'no_shop'], "$route without darkroom_checkout: 404");
    is($r->{json}{error}{message}, 'There is no shop here.', 'no shop here');
}

# --- delete -------------------------------------------------------------------------
$r = sheets(DELETE => '/wedding');
is($r->{status}, 200, 'DELETE');
is_deeply($r->{json}, { deleted => 'wedding' }, 'answered');
is(gadmin(GET => 'wed')->{json}{gallery}{price_sheet}, undef,
    'the gallery sells from no sheet now');
is_deeply(err(sheets(GET => '/wedding')), [404, 'not_found'], 'gone');
is_deeply(err(sheets(DELETE => '/wedding')), [404, 'not_found'],
    'DELETE again: 404');
is(count(), 0, 'its items and prices gone with it');

done_testing;
