#!/usr/bin/perl
# The console's Fulfilment page and an email resent, in a real browser
# (headless chromium, python3-selenium), signed in as the owner: the
# dashboard's lab count links to the lab orders needing attention, one is
# opened with its history and retried after a confirmation (the lab admin
# API's answer shown, the retry in its history); an order's email is resent
# from the order's page and the mail sandbox receives it a second time.
# Skips, saying why, where chromium, chromedriver or selenium is missing.

use strict;
use warnings;
use utf8;
use lib 't/lib';
use Test::More;
use Darkroom::Test qw(wait_for);
use Darkroom::Mail qw(sandbox mail_conf);
use Darkroom::ConsoleBrowser qw(need_browser start paid_order run);

binmode $_, ':encoding(UTF-8)' for Test::More->builder->output,
    Test::More->builder->failure_output;

my $b = need_browser();
my $t = Darkroom::Test->new;
my $mail = sandbox($t);
my $c = start($t, http => mail_conf($t, $mail, 'postmark'));
my $owner = $c->{owner};

# a paid order (its receipt sent), and a lab order of it the lab refused
my $paid = paid_order($t);
ok(wait_for(sub { $t->sql_value("SELECT count(*) FROM emails WHERE"
    . " order_id = :'p1' AND status = 'sent'", $paid->{id}) >= 1 }, 30),
   'the receipt sent') or diag $t->error_log;
my $email = $t->sql_value("SELECT min(id) FROM emails WHERE order_id = :'p1'",
                          $paid->{id});
my $sent = scalar $mail->messages;
my $lab = $t->sql_value("INSERT INTO lab_orders (order_id, lab, status,"
    . " idempotency_key, attempts, last_error) VALUES (:'p1', 'prodigi',"
    . " 'needs_attention', 'console-989', 3, 'The lab refused the SKU')"
    . " RETURNING id", $paid->{id});

my $py = <<'PY';
email, password, lab, ref, mail_id = args
login(email, password)
wait.until(lambda d: signed_in())
page('dashboard')
link = css('#attention [data-kind=lab_attention] a')[0]
out['dash_count'] = css('#attention [data-kind=lab_attention] .big')[0].text
link.click()
wait.until(lambda d: '#fulfilment' in d.current_url)
page('fulfilment')
out['title'] = title()
out['nav'] = [a.text for a in css('#nav a')]
out['state'] = Select(el('lab-state')).first_selected_option.text
out['totals'] = text('lab-totals')
row = css('a.lab-order[data-id="%s"]' % lab)[0]
out['last_error'] = row.find_element(By.XPATH, './ancestor::tr') \
    .find_element(By.CSS_SELECTOR, '.last-error').text
row.click()
wait.until(lambda d: ('#fulfilment/%s' % lab) in d.current_url
           and present('lab-order-status'))
page('fulfilment')
out['detail_title'] = title()
out['status_before'] = text('lab-order-status')
el('lab-retry').click()
wait.until(lambda d: present('confirm-retry'))
out['confirm'] = css('#lab-actions .confirm p')[0].text
el('confirm-retry').click()
wait.until(lambda d: notice())
out['retried'] = notice()
page('fulfilment')
wait.until(lambda d: text('lab-order-status') != out['status_before'])
out['status_after'] = text('lab-order-status')
out['history'] = text('lab-history')

# the order's email, resent
go('#order/' + ref)
page('order')
wait.until(lambda d: css('button.resend[data-email="%s"]' % mail_id))
css('button.resend[data-email="%s"]' % mail_id)[0].click()
wait.until(lambda d: notice())
out['resent'] = notice()
page('order')
wait.until(lambda d: len(css('#order-emails tbody tr')) >= 2)
out['emails'] = len(css('#order-emails tbody tr'))
PY

my $out = run($t, $b, 'fulfilment', $py, $owner->{email},
              $owner->{password}, $lab, $paid->{ref}, $email);
is($out->{error}, undef, 'the browser flow ran') or diag explain $out;
is($out->{dash_count}, '1', 'the dashboard counts the lab order');
is($out->{title}, 'Fulfilment', 'its link opens Fulfilment');
ok((grep { $_ eq 'Fulfilment' } @{ $out->{nav} // [] }), 'in the menu');
is($out->{state}, 'Needing attention', 'showing those needing attention');
like($out->{totals} // '', qr/^1 needing attention/, 'the totals');
is($out->{last_error}, 'The lab refused the SKU', 'with the lab\'s error');
is($out->{detail_title}, "Lab order $lab", 'the lab order opened');
like($out->{status_before} // '', qr/needs attention/, 'needing attention');
like($out->{confirm} // '', qr/Send it to the lab again/,
     'the retry asked first');
like($out->{retried} // '', qr/^Retried: the lab order is now /,
     'the server\'s answer shown');
unlike($out->{status_after} // 'needs attention', qr/needs attention/,
       'no longer needing attention');
like($out->{history} // '', qr/needs attention → pending/,
     'the retry in its history');
is($t->sql_value("SELECT count(*) FROM lab_order_events WHERE"
    . " lab_order_id = :'p1' AND cause = 'admin'"
    . " AND detail->>'action' = 'retry'", $lab), 1, 'retried once');
is($out->{resent}, 'Email queued to be sent again.', 'the email resent');
ok(($out->{emails} // 0) >= 2, 'the order lists the second email');
ok(wait_for(sub { scalar($mail->messages) > $sent }, 30),
   'the mail sandbox received it again');
is($t->sql_value("SELECT count(*) FROM emails WHERE order_id = :'p1'"
    . " AND template = (SELECT template FROM emails WHERE id = :'p2')",
    $paid->{id}, $email), 2, 'two emails of that template');
is($t->sql_value("SELECT count(*) FROM console_audit WHERE actor = :'p1'"
    . " AND path IN (:'p2', :'p3') AND status = 200", $owner->{email},
    "/admin/api/labs/orders/$lab/retry",
    "/admin/api/emails/$email/resend"), 2, 'both audited');
is_deeply($out->{console} // [], [], 'no script error');

done_testing;
