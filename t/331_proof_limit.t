#!/usr/bin/perl

# darkroom: proofing, the selection limit.  Without an extra price an add
# beyond the limit is 409 selection_limit, and many adds in parallel never
# pass it (the list's row lock); with an extra price adds go on, submit
# answers 402 payment_required with the extras and their amount, and the
# extras are a cart line (gallery_selection_line, kind 'selection'); the
# order paid submits the list and mails the photographer in the same
# transaction.

use strict;
use warnings;

use lib 't/lib';
use Darkroom::Test;
use Darkroom::ProofTest;
use HTTP::Tiny;
use POSIX ();
use JSON::PP;
use Test::More;

my $t = Darkroom::Test->new;
proof_start($t, threads => 8);

my @p = gallery('pick', 24, selection_limit => 3);

my $r = api(GET => 'pick');
is_deeply($r->{json}{gallery}{selection},
    { limit => 3, extra_photo_amount => undef, currency => undef },
    'gallery.selection: the limit');

my (undef, $ada) = visitor('pick', 'Ada', 'ada@example.com');
my $list = api(GET => 'pick/lists', undef, $ada)->{json}{lists}[0]{id};

for my $i (0 .. 2) {
    is(api(POST => "pick/lists/$list/photos", { photo => 0 + $p[$i] }, $ada)
           ->{status}, 200, "add " . ($i + 1) . " of 3");
}
$r = api(POST => "pick/lists/$list/photos", { photo => 0 + $p[3] }, $ada);
is($r->{status}, 409, 'the fourth: 409');
is($r->{json}{error}{code}, 'selection_limit', '... selection_limit');
like($r->{json}{error}{message}, qr/lets you choose 3 photos/,
    '... a clear message');
is(api(POST => "pick/lists/$list/photos",
       { photo => 0 + $p[0], note => 'fine' }, $ada)->{status}, 200,
    'a note on a photo already in is no add');
is(api(POST => "pick/lists/$list/remove", { photo => 0 + $p[2] }, $ada)
       ->{status}, 200, 'remove one');
is(api(POST => "pick/lists/$list/photos", { photo => 0 + $p[3] }, $ada)
       ->{status}, 200, 'then another fits');

# --- concurrent adds never pass the limit -------------------------------------

$t->sql(q{UPDATE galleries SET selection_limit = 5 WHERE slug = 'pick'});
my (undef, $tom) = visitor('pick', 'Tom', 'tom@example.com');
my $tl = api(GET => 'pick/lists', undef, $tom)->{json}{lists}[0]{id};
my $port = $t->port(0);

my @kids;
for my $i (4 .. 23) {
    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if ($pid == 0) {
        my $res = HTTP::Tiny->new(timeout => 30)->request('POST',
            "http://127.0.0.1:$port/api/galleries/pick/lists/$tl/photos",
            { headers => { Cookie => $tom },
              content => encode_json({ photo => 0 + $p[$i] }) });
        POSIX::_exit($res->{status} == 200 ? 0
                     : $res->{status} == 409 ? 1 : 2);
    }
    push @kids, $pid;
}
my %rc;
for (@kids) {
    waitpid($_, 0);
    $rc{$? >> 8}++;
}
is($rc{0} // 0, 5, '20 adds in parallel: 5 made it');
is($rc{1} // 0, 15, '... 15 were refused 409');
is($t->sql_value(q{SELECT count(*) FROM gallery_list_photos
                    WHERE list_id = :'p1'}, $tl), 5,
    'the list holds exactly the limit');

# --- extras priced --------------------------------------------------------------

$t->sql(q{UPDATE galleries SET selection_limit = 2, extra_photo_amount = 500,
                 currency = 'GBP' WHERE slug = 'pick'});
is_deeply(api(GET => 'pick')->{json}{gallery}{selection},
    { limit => 2, extra_photo_amount => 500, currency => 'GBP' },
    'gallery.selection: limit, extra price, currency');

my (undef, $eve) = visitor('pick', 'Eve', 'eve@example.com');
my $el = api(GET => 'pick/lists', undef, $eve)->{json}{lists}[0]{id};
for my $i (0 .. 4) {
    is(api(POST => "pick/lists/$el/photos", { photo => 0 + $p[$i] }, $eve)
           ->{status}, 200, 'extras priced: add ' . ($i + 1));
}
$r = api(POST => "pick/lists/$el/submit", {}, $eve);
is($r->{status}, 402, 'submit over the limit: 402') or diag $r->{content};
is($r->{json}{error}{code}, 'payment_required', '... payment_required');
is($r->{json}{error}{extra}, 3, '... 3 extras');
is($r->{json}{error}{amount}, 1500, '... 1500');
is($r->{json}{error}{currency}, 'GBP', '... GBP');
ok(!exists $r->{json}{status}, '... no "status" member left');
is($t->sql_value(q{SELECT submitted_at IS NULL FROM gallery_lists
                    WHERE id = :'p1'}, $el), 't', 'not submitted');
is($t->sql_value(q{SELECT count(*) FROM jobs WHERE kind = 'email'}), 0,
    'no email');

# the cart line
my $gid = $t->sql_value(q{SELECT id FROM galleries WHERE slug = 'pick'});
my $line = decode_json($t->sql_value(q{SELECT gallery_selection_line(
    :'p1'::bigint, jsonb_build_object('selection', :'p2'::bigint), 'GBP', 1)},
    $gid, $el));
is($line->{kind}, 'selection', 'line kind selection');
is($line->{quantity}, 3, 'quantity: the extras');
is($line->{unit_amount}, 500, 'unit: extra_photo_amount');
is($line->{amount}, 1500, 'amount');
is($line->{photo}, "selection:$el", 'photo: selection:<list>');

sub line_error {
    my ($gallery, $item, $cur) = @_;
    my $f = $t->dir . '/err.sql';
    $t->write_file('err.sql', "SELECT gallery_selection_line($gallery, "
                   . "'$item'::jsonb, '$cur', 1)\n");
    my $out = `psql -X -q -d '${\ $t->db}' -f $f 2>&1`;
    return $out =~ /ERROR:\s+(\S+)/ ? $1 : "none: $out";
}
gallery('free', 1);
my $free = $t->sql_value(q{SELECT id FROM galleries WHERE slug = 'free'});
is(line_error($free, qq({"selection": $el}), 'GBP'), 'unknown_list',
    'a list of another gallery is refused');
is(line_error($gid, '{"selection": "x"}', 'GBP'), 'invalid_item',
    'not an id: refused');
is(line_error($gid, qq({"selection": $el}), 'EUR'), 'no_price',
    'another currency: refused');
my $few = api(POST => 'pick/lists', { name => 'Few' }, $eve)->{json}{list}{id};
api(POST => "pick/lists/$few/photos", { photo => 0 + $p[9] }, $eve);
is(line_error($gid, qq({"selection": $few}), 'GBP'), 'no_extras',
    'a list within the limit has no extras to buy');

# paying: the order paid submits the list, in that transaction
sub selection_order {
    my ($ref, $n) = @_;
    my $amount = 500 * $n;
    $t->sql(<<"SQL");
WITH o AS (
    INSERT INTO orders (ref, status_token, status, email, currency, total,
                        subtotal, physical, gallery_id)
    VALUES ('$ref', md5('$ref'), 'pending_payment', 'eve\@example.com',
            'GBP', $amount, $amount, false, $gid)
    RETURNING id)
INSERT INTO order_items (order_id, line, photo_id, product_id, title,
                         product_name, kind, quantity, unit_amount, amount)
SELECT id, 1, 'selection:$el', 'selection', 'Extra photos', 'Extra photos',
       'selection', $n, 500, $amount FROM o
SQL
}
# paid as the Stripe webhook marks it: order_mark_paid() in SQL
sub pay {
    my ($ref) = @_;
    my ($id, $total) = @{ ($t->sql(q{SELECT id, total FROM orders
                                      WHERE ref = :'p1'}, $ref))[0] };
    my $session = encode_json({ amount_total => 0 + $total,
        currency => 'gbp', payment_intent => "pi_test_$id" });
    is($t->sql_value(q{SELECT order_mark_paid(:'p1', :'p2'::jsonb, 'test')},
                     $id, $session), 'paid', "$ref paid");
}
sub submitted {
    return $t->sql_value(q{SELECT coalesce(o.ref, 'open')
                             FROM gallery_lists l
                             LEFT JOIN orders o ON o.id = l.order_id
                            WHERE l.id = :'p1'
                              AND l.submitted_at IS NOT NULL
                            UNION ALL SELECT 'open' LIMIT 1}, $el);
}

selection_order('SEL-1', 3);
is(submitted(), 'open', 'a pending order does not submit it');

# a photo added while the checkout is open is not paid for
is(api(POST => "pick/lists/$el/photos", { photo => 0 + $p[5] }, $eve)
       ->{status}, 200, 'a photo added while paying');
pay('SEL-1');
is(submitted(), 'open', 'paid 3 of 4 extras: the list stays open');
$r = api(POST => "pick/lists/$el/submit", {}, $eve);
is($r->{status}, 402, 'submit asks ...');
is($r->{json}{error}{extra}, 1, '... for the one extra not paid');
is($r->{json}{error}{amount}, 500, '... 500');
$line = decode_json($t->sql_value(q{SELECT gallery_selection_line(
    :'p1'::bigint, jsonb_build_object('selection', :'p2'::bigint), 'GBP', 1)},
    $gid, $el));
is($line->{quantity}, 1, 'the cart line: 1');

selection_order('SEL-2', 1);
pay('SEL-2');
is(submitted(), 'SEL-2', 'paid in full: submitted, with its order');
is($t->sql_value(q{SELECT string_agg(payload->>'order_ref', ',') FROM jobs
                    WHERE kind = 'email'
                      AND payload->>'template' = 'selection_submitted'}),
    'SEL-2', 'one email to the photographer, naming the order');
$r = api(POST => "pick/lists/$el/photos", { photo => 0 + $p[6] }, $eve);
is($r->{status}, 409, 'the paid list is locked');
$r = api(GET => 'pick/lists', undef, $eve);
is($r->{json}{lists}[0]{order}, 'SEL-2', 'the list shows its order');
is(line_error($gid, qq({"selection": $el}), 'GBP'), 'list_submitted',
    'a submitted selection cannot be bought again');

# a list over the limit cannot be submitted for free if the price goes
$t->sql(q{UPDATE galleries SET extra_photo_amount = NULL
           WHERE slug = 'pick'});
$r = api(POST => "pick/lists/$tl/photos", { photo => 0 + $p[0] }, $tom);
is($r->{status}, 409, 'unpriced again: Tom\'s full list takes no more');
$r = api(POST => "pick/lists/$tl/submit", {}, $tom);
is($r->{status}, 409, '... and is over the new limit: 409 on submit');
is($r->{json}{error}{code}, 'selection_limit', '... selection_limit');

$t->stop;
ok($t->check_sanitizer, 'no sanitizer report');
done_testing;
