#!/usr/bin/perl
# tools/darkroom-catalogue: loads the demo catalogue, loads it again without
# changing anything, applies changes, and refuses bad files writing nothing.

use strict;
use warnings;
use lib 't/lib';

use JSON::PP;
use Test::More;
use Darkroom::Test;

my $t = Darkroom::Test->new;
my $db = $t->db;
my $top = $t->top;
my $demo = "$top/conf/demo-catalogue.json";

sub load {
    my ($file, @opts) = @_;
    my $out = `"$top/tools/darkroom-catalogue" @opts "$db" "$file" 2>&1`;
    return ($? >> 8, $out);
}

sub write_json {
    my ($name, $data) = @_;
    return $t->write_file($name, ref $data
        ? JSON::PP->new->utf8->canonical->encode($data) : $data);
}

sub demo { JSON::PP->new->utf8->decode($t->read_file($demo)) }

# everything the loader can touch, as one string
sub snapshot {
    return join "\n", map { join '|', @$_ } $t->sql(q{
        SELECT 'ph', id, title, description, coalesce(image_path, '-'),
               coalesce(print_path, '-'), active, updated_at FROM photos
        UNION ALL SELECT 'pr', id, name, kind, medium, size, active, updated_at
          FROM products
        UNION ALL SELECT 'pp', product_id, currency, amount::text, '', '', true,
               now() - now() + 'epoch'::timestamptz FROM product_prices
        UNION ALL SELECT 'x', photo_id, product_id, '', '', '', true,
               'epoch'::timestamptz FROM photo_products
        ORDER BY 1, 2, 3});
}

sub counts {
    return join ' ', map { $t->sql_value("SELECT count(*) FROM $_") }
        qw(photos products product_prices photo_products);
}

# ---- the demo catalogue
my ($rc, $out) = load($demo);
is($rc, 0, 'demo catalogue loads') or diag($out);
like($out, qr/6 photos, 5 products/, 'summary');
is(counts(), '6 5 10 26', 'rows');
is($t->sql_value(q{SELECT amount FROM product_prices
    WHERE product_id = 'giclee-a3' AND currency = 'GBP'}), 4500, 'price');
is($t->sql_value(q{SELECT name FROM products WHERE id = 'giclee-a3'}),
    "Gicl\x{c3}\x{a9}e print, A3", 'UTF-8 kept');
is($t->sql_value(q{SELECT image_path || ' ' || print_path FROM photos
    WHERE id = 'harbour-dawn'}), '/images/harbour-dawn.jpg prints/harbour-dawn.tif',
    'asset paths');

my $before = snapshot();
sleep 1;
($rc, $out) = load($demo);
is($rc, 0, 'loads again');
is(snapshot(), $before, 'idempotent: nothing changed, not even updated_at');

# ---- changes: a price, a dropped currency, a photo offered as less, quotes
{
    my $c = demo();
    my ($a3) = grep { $_->{id} eq 'giclee-a3' } @{$c->{products}};
    $a3->{prices} = { GBP => 4900 };
    my ($h) = grep { $_->{id} eq 'harbour-dawn' } @{$c->{photos}};
    $h->{products} = ['giclee-a3'];
    $h->{title} = q{Harbour at Dawn'); DROP TABLE photos; -- "x" $$ :'json'};
    ($rc, $out) = load(write_json('changed.json', $c));
    is($rc, 0, 'changed catalogue loads') or diag($out);
    is($t->sql_value(q{SELECT string_agg(currency || amount, ',') FROM
        product_prices WHERE product_id = 'giclee-a3'}), 'GBP4900',
        'price changed, USD dropped');
    is($t->sql_value(q{SELECT string_agg(product_id, ',') FROM photo_products
        WHERE photo_id = 'harbour-dawn'}), 'giclee-a3', 'offers replaced');
    is($t->sql_value(q{SELECT title FROM photos WHERE id = 'harbour-dawn'}),
        $h->{title}, 'hostile title stored literally');
    ok($t->sql_value(q{SELECT updated_at > created_at FROM photos
        WHERE id = 'harbour-dawn'}) eq 't', 'updated_at moved for the changed row');
    is($t->sql_value(q{SELECT updated_at = created_at FROM photos
        WHERE id = 'rain-soho'}), 't', 'not for the others');
    ($rc, $out) = load($demo);
    is($rc, 0, 'demo again');
}

# ---- bad files: a clear message, non-zero exit, nothing written
$before = snapshot();
my @bad = (
    [ 'malformed JSON', '{"photos": [', qr/not valid JSON/ ],
    [ 'bad photo slug', sub { $_[0]{photos}[0]{id} = 'Harbour Dawn' },
        qr/photos\[0\]\.id: bad id "Harbour Dawn"/ ],
    [ 'missing title', sub { delete $_[0]{photos}[1]{title} },
        qr/photo "storm-over-skye"\.title: missing/ ],
    [ 'empty title', sub { $_[0]{photos}[1]{title} = '' },
        qr/title: must not be empty/ ],
    [ 'fractional price', sub { $_[0]{products}[0]{prices}{GBP} = 45.5 },
        qr/product "giclee-a4"\.prices\.GBP: must be an integer/ ],
    [ 'price as a string', sub { $_[0]{products}[0]{prices}{GBP} = '2800' },
        qr/prices\.GBP: must be an integer/ ],
    [ 'zero price', sub { $_[0]{products}[0]{prices}{GBP} = 0 },
        qr/between 1 and 99999999/ ],
    [ 'lower-case currency', sub { $_[0]{products}[0]{prices}{gbp} = 100 },
        qr/bad currency "gbp"/ ],
    [ 'unknown kind', sub { $_[0]{products}[0]{kind} = 'poster' },
        qr/kind: must be "print" or "digital"/ ],
    [ 'duplicate product', sub { push @{$_[0]{products}}, { %{$_[0]{products}[0]} } },
        qr/product "giclee-a4": listed twice/ ],
    [ 'unknown field', sub { $_[0]{products}[0]{prics} = {} },
        qr/unknown field "prics"/ ],
    [ 'absolute print path', sub { $_[0]{photos}[0]{print} = '/etc/passwd' },
        qr/print: must be a relative path/ ],
    [ 'unknown product referenced', sub {
        $_[0]{products}[0]{name} = 'Renamed, must not land';
        push @{$_[0]{photos}[0]{products}}, 'poster-a0' },
        qr/photo "harbour-dawn" offers unknown product "poster-a0"/ ],
);
for my $case (@bad) {
    my ($name, $change, $msg) = @$case;
    my $data = $change;
    if (ref $change) { $data = demo(); $change->($data) }
    ($rc, $out) = load(write_json('bad.json', $data));
    isnt($rc, 0, "$name: refused");
    like($out, $msg, "$name: says why") or diag($out);
    like($out, qr/nothing written/, "$name: says nothing was written");
    is(snapshot(), $before, "$name: nothing written");
}

# ---- a photo may offer a product that is already in the database
{
    ($rc, $out) = load(write_json('photo-only.json', { photos => [ { id => 'pier',
        title => 'The Pier', products => ['giclee-a4'] } ] }));
    is($rc, 0, 'photos-only file, product from the database') or diag($out);
    is($t->sql_value(q{SELECT count(*) FROM photo_products WHERE photo_id = 'pier'}),
        1, 'offered');
}

# ---- --dry-run and --deactivate-missing
{
    $before = snapshot();
    my $c = demo();
    $c->{products}[0]{prices}{GBP} = 1234;
    ($rc, $out) = load(write_json('dry.json', $c), '--dry-run');
    is($rc, 0, 'dry run ok') or diag($out);
    like($out, qr/dry run, rolled back/, 'dry run says so');
    is(snapshot(), $before, 'dry run writes nothing');

    ($rc, $out) = load($demo, '--deactivate-missing');
    is($rc, 0, 'deactivate missing') or diag($out);
    is($t->sql_value(q{SELECT active FROM photos WHERE id = 'pier'}), 'f',
        'photo not in the file deactivated');
    is($t->sql_value(q{SELECT count(*) FROM photos WHERE active}), 6, 'demo active');
}

# ---- a large catalogue (over the 128 kB argument limit) in one go
{
    my $c = demo();
    for my $i (1 .. 600) {
        push @{$c->{photos}}, { id => "bulk-$i", title => "Bulk photo $i",
            description => 'x' x 200, image => "/images/bulk-$i.jpg",
            products => ['giclee-a4', 'digital-full'] };
    }
    my $file = write_json('big.json', $c);
    ok(-s $file > 131072, 'file over 128 kB');
    ($rc, $out) = load($file);
    is($rc, 0, 'large catalogue loads') or diag($out);
    is($t->sql_value(q{SELECT count(*) FROM photos WHERE id LIKE 'bulk-%'}), 600,
        'all 600 photos');
}

done_testing;
