#!/usr/bin/perl
# The webhook envelope, once Stripe's signature has passed: event ids only
# of Stripe's form, replies sized for what the escaping writes, nothing raw
# from the body in the error log, and one reading of every key (duplicates
# refused), so the reply, the log and the database name the same event.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use JSON::PP;
use Darkroom::Test qw(wait_for);
use Darkroom::Stripe qw(event session demo_catalogue shop_conf fake_api
    webhook checkout_order);

my $t = Darkroom::Test->new;
my $stripe = fake_api($t);
my $secret = 'whsec_envelope';
shop_conf($t, stripe => $stripe->url, secrets => [$secret]);
demo_catalogue($t);
$t->start;

sub deliver { webhook($t, $secret, @_) }
sub events { $t->sql_value('SELECT count(*) FROM stripe_events') }
sub alive { $t->http(GET => '/health')->{status} }

my $ok = alive();

# --- ids: the heap overflow, and anything not of Stripe's form -----------
my $ctl = '{"id":"' . ('\u0001' x 255) . '","object":"event",'
    . '"type":"customer.created","data":{"object":{"id":"cus_1"}}}';
my $r = deliver($ctl);
is($r->{status}, 400, '255 control characters in the id: 400, no crash');
is($r->{json}{error}{code}, 'invalid_event_id', 'invalid_event_id');
is(alive(), $ok, 'the worker still answers');
unlike($t->error_log, qr/signal \d+|double free|corruption/,
    'no worker died');

for my $id ('evt_"quoted"', "evt_\x{e9}t\x{e9}", 'evt_a b', 'cus_123', 'evt_',
            'evt_' . ('a' x 252), "evt_\\n", 'evt_1/../2')
{
    my $body = JSON::PP->new->utf8->encode({ id => $id, object => 'event',
        type => 'customer.created', data => { object => { id => 'c' } } });
    $r = deliver($body);
    is($r->{status}, 400, "id refused: " . JSON::PP->new->ascii->encode([$id]));
}
$r = deliver(event('customer.created', { id => 'cus_1' },
    id => 'evt_1' . ('A' x 200) . '_z9'));
is($r->{status}, 200, 'a long id of Stripe\'s alphabet is fine');
is(events(), 1, 'only that one recorded');

# the type goes to the log and the database: Stripe's alphabet only
$r = deliver(JSON::PP->new->encode({ id => 'evt_type_ctl', object => 'event',
    type => "customer.created\n[emerg] forged", data => { object => {} } }));
is($r->{status}, 400, 'a type with a newline is refused');
is($r->{json}{error}{code}, 'invalid_event', 'invalid_event');

my $log = $t->error_log;
unlike($log, qr/[\x00-\x08\x0b-\x1f\x7f]/, 'no control byte in the error log');
unlike($log, qr/\[emerg\] forged/, 'no forged log line');

# --- duplicate keys ------------------------------------------------------
my $o = checkout_order($t, 1);
my $sess = JSON::PP->new->canonical->encode(session(id => $o->{session},
    order_id => $o->{id}, ref => $o->{ref}, amount => $o->{total}));

# C read the first "type", PostgreSQL the last: the reply and the log said
# customer.created while the database paid the order
$r = deliver('{"id":"evt_dup_type","object":"event","type":"customer.created",'
    . '"api_version":"2024-06-20","data":{"object":' . $sess . '},'
    . '"type":"checkout.session.completed"}');
is($r->{status}, 400, 'two "type" keys: 400');
is($r->{json}{error}{code}, 'duplicate_key', 'duplicate_key');
is($t->sql_value("SELECT status FROM orders WHERE id = :'p1'", $o->{id}),
    'pending_payment', 'the order is not paid');

$r = deliver('{"id":"evt_dup_a","object":"event","type":"checkout.session.completed",'
    . '"api_version":"2024-06-20","data":{"object":' . $sess . '},"id":"evt_dup_b"}');
is($r->{status}, 400, 'two "id" keys: 400');
is($t->sql_value("SELECT count(*) FROM stripe_events WHERE id IN"
    . " ('evt_dup_a', 'evt_dup_b')"), 0, 'neither id recorded');

$r = deliver('{"id":"evt_dup_esc","object":"event","type":"customer.created",'
    . '"\u0074ype":"checkout.session.completed","data":{"object":' . $sess . '}}');
is($r->{status}, 400, 'a duplicate spelled with an escape: 400');

$r = deliver('{"id":"evt_dup_deep","object":"event","type":"checkout.session.completed",'
    . '"api_version":"2024-06-20","data":{"object":' . $sess . ',"object":{}}}');
is($r->{status}, 400, 'two data.object keys: 400');

(my $twice = $sess) =~ s/"amount_total":\d+/"amount_total":1,"amount_total":$o->{total}/;
$r = deliver('{"id":"evt_dup_amount","object":"event","type":"checkout.session.completed",'
    . '"api_version":"2024-06-20","data":{"object":' . $twice . '}}');
is($r->{status}, 400, 'two amount_total keys inside the object: 400');
is($t->sql_value("SELECT status FROM orders WHERE id = :'p1'", $o->{id}),
    'pending_payment', 'still not paid');

# what PostgreSQL cannot store is refused before it is tried
$r = deliver('{"id":"evt_nul","object":"event","type":"customer.created",'
    . '"data":{"object":{"name":"a\u0000b"}}}');
is($r->{status}, 400, '\u0000 in a string: 400, not a 5xx Stripe retries');
$r = deliver('{"id":"evt_surrogate","object":"event","type":"customer.created",'
    . '"data":{"object":{"name":"\ud800"}}}');
is($r->{status}, 400, 'a lone surrogate: 400');
$r = deliver(qq({"id":"evt_utf8","object":"event","type":"customer.created",)
    . qq("data":{"object":{"name":"\xff\xfe"}}}));
is($r->{status}, 400, 'invalid UTF-8: 400');

# the real thing still works, and the reply names it
$r = deliver('{"id":"evt_good_one","object":"event","type":"checkout.session.completed",'
    . '"api_version":"2024-06-20","data":{"object":' . $sess . '}}');
is($r->{status}, 200, 'a well-formed event: 200');
is($r->{json}{id}, 'evt_good_one', 'the reply names it');
is($r->{json}{result}, 'paid', 'and it was applied');
like($t->error_log, qr/stripe event evt_good_one checkout\.session\.completed: paid/,
    'the log names the same event');

done_testing;
