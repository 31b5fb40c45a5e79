#!/usr/bin/perl
# The console's Lab products page (the product-to-lab mapping), in a real
# browser (headless chromium, python3-selenium), signed in as the owner:
# reached from the Fulfilment page and the menu; a lab's SKU changed; a lab
# added to a product, its attributes first typed as bad JSON and refused
# with their message (nothing sent); the lab removed after a confirmation;
# the last lab of a product on sale kept with the server's reason; the
# page used by keyboard and at 375 px wide; the changes in the audit log.
# Skips, saying why, where chromium, chromedriver or selenium is missing.

use strict;
use warnings;
use utf8;
use lib 't/lib';
use Test::More;
use Darkroom::Test;
use Darkroom::ConsoleBrowser qw(need_browser start run);

binmode $_, ':encoding(UTF-8)' for Test::More->builder->output,
    Test::More->builder->failure_output;

my $b = need_browser();
my $t = Darkroom::Test->new;
my $c = start($t);
my $owner = $c->{owner};
$t->sql("INSERT INTO lab_products (product_id, lab, sku) VALUES"
    . " ('giclee-a3', 'prodigi', 'GLOBAL-HPR-A3')");
my $rows = sub {
    return join ';', map { join ',', @$_ } $t->sql("SELECT product_id, lab,"
        . " sku, attributes::text, sizing, priority FROM lab_products"
        . " ORDER BY 1, 2");
};

my $py = <<'PY';
from selenium.common.exceptions import (NoSuchElementException,
                                        StaleElementReferenceException)
w = WebDriverWait(b, 30, ignored_exceptions=(
    NoSuchElementException, StaleElementReferenceException, IndexError))
def read(fn):
    # a value off a page that may redraw itself meanwhile
    return w.until(lambda d: fn() or None)
def click(sel):
    w.until(lambda d: css(sel)[0].click() or True)
def fill(name, value):
    f = css('#lp-form [name="%s"]' % name)[0]
    if f.tag_name == 'select':
        Select(f).select_by_value(value)
    else:
        f.clear()
        f.send_keys(value)
def form_said():
    s = css('#lp-form .form-status')
    t = s[0].text if s else ''
    return t if t and not t.startswith('Saving') else None
def status():
    t = text('lp-status')
    return t or None

email, password = args
login(email, password)
w.until(lambda d: signed_in())
page('dashboard')
out['nav'] = [a.text for a in css('#nav a')]

# from the Fulfilment page
go('#fulfilment')
page('fulfilment')
click('#lab-mapping a')
w.until(lambda d: '#labproducts' in d.current_url)
page('labproducts')
out['title'] = title()
out['products'] = read(lambda: [s.get_attribute('data-product')
                                for s in css('section.lab-product')])
out['digital'] = read(lambda: [p.text for p in css('#lp-list p.muted')])

# a SKU changed
click('#lp-giclee-a3 button[data-edit="prodigi"]')
read(lambda: css('#lp-form [name=sku]'))
out['edit_focus'] = b.switch_to.active_element.get_attribute('name')
fill('sku', 'GLOBAL-FAP-A3')
click('#lp-form button[type=submit]')
read(lambda: css('#lp-giclee-a3 .lp-sku')[0].text == 'GLOBAL-FAP-A3')
out['saved'] = read(status)

# a lab added: bad JSON refused first, with its message
click('#lp-giclee-a3 .lp-add')
read(lambda: css('#lp-form [name=attributes]'))
out['add_labs'] = [o.get_attribute('value') for o in
                   css('#lp-form [name=lab] option')]
fill('sku', 'TPS-HPR-A3')
fill('attributes', '{"PrintOptionId": 103')
fill('priority', '2')
click('#lp-form button[type=submit]')
out['bad_json'] = read(form_said)
out['bad_json_class'] = css('#lp-form .form-status')[0].get_attribute('class')
fill('attributes', '[1]')
click('#lp-form button[type=submit]')
read(lambda: 'object' in (form_said() or ''))
out['not_object'] = form_said()
fill('attributes', '{"PrintOptionId": 103}')
click('#lp-form button[type=submit]')
read(lambda: len(css('#lp-giclee-a3 button[data-remove]')) == 2)
out['labs_after_add'] = read(lambda: [x.get_attribute('data-remove') for x in
                                      css('#lp-giclee-a3 button[data-remove]')])
out['attrs_after_add'] = read(lambda: [x.text for x in
                                       css('#lp-giclee-a3 .lp-attrs')])

# removed after a confirmation
click('#lp-giclee-a3 button[data-remove="printspace"]')
read(lambda: css('#lp-confirm'))
out['confirm'] = css('.confirm p')[0].text
out['confirm_focus'] = b.switch_to.active_element.get_attribute('id')
click('#lp-confirm')
read(lambda: len(css('#lp-giclee-a3 button[data-remove]')) == 1)
out['removed'] = read(lambda: 'no longer' in (status() or '') and status())

# the last lab of a product on sale: refused, with the reason
click('#lp-giclee-a3 button[data-remove="prodigi"]')
click('#lp-confirm')
out['last_lab'] = read(lambda: css('#lp-giclee-a3 .form-status')[0].text)

# by keyboard: Enter on Edit opens the form, Escape closes it
b.execute_script('arguments[0].focus()',
                 css('#lp-giclee-a3 button[data-edit="prodigi"]')[0])
b.switch_to.active_element.send_keys(Keys.ENTER)
read(lambda: css('#lp-form'))
out['kbd_focus'] = b.switch_to.active_element.get_attribute('name')
b.switch_to.active_element.send_keys(Keys.ESCAPE)
read(lambda: not css('#lp-form'))
out['kbd_closed'] = True

# 375 px wide: nothing wider than the screen
b.set_window_size(375, 900)
read(lambda: b.execute_script('return window.innerWidth') <= 400)
out['overflow'] = b.execute_script(
    'return document.documentElement.scrollWidth'
    ' - document.documentElement.clientWidth')
b.set_window_size(1280, 1400)

# the audit log
go('#audit')
page('audit')
out['audit'] = read(lambda: '/admin/api/labs/products/' in text('audit-rows')
                    and text('audit-rows'))
PY

my $out = run($t, $b, 'labproducts', $py, $owner->{email},
              $owner->{password});
is($out->{error}, undef, 'the browser flow ran') or diag explain $out;
ok((grep { $_ eq 'Lab products' } @{ $out->{nav} // [] }), 'in the menu');
is($out->{title}, 'Lab products', 'reached from Fulfilment');
is_deeply([sort @{ $out->{products} // [] }],
          [qw(canvas-50 giclee-a3 retired)], 'every print product');
like(join(' ', @{ $out->{digital} // [] }), qr/need no lab: Digital/,
     'the digital ones said to need none');
is($out->{edit_focus}, 'sku', 'Edit puts the focus in the form');
like($out->{saved} // '', qr/Prodigi makes Giclée print, A3 as GLOBAL-FAP-A3/,
     'the SKU saved');
is_deeply($out->{add_labs}, ['printspace'], 'only a lab not mapped yet');
like($out->{bad_json} // '', qr/not valid JSON/, 'bad JSON: its message');
like($out->{bad_json_class} // '', qr/error/, 'shown as an error');
like($out->{not_object} // '', qr/must be a JSON object/,
     'an array refused too');
is_deeply($out->{labs_after_add}, ['prodigi', 'printspace'], 'lab added');
is_deeply($out->{attrs_after_add}, ['{}', '{"PrintOptionId":103}'],
          'with its attributes');
like($out->{confirm} // '', qr/Remove theprintspace from Giclée print, A3\?/,
     'removing asked first');
is($out->{confirm_focus}, 'lp-confirm', 'the focus on the question');
like($out->{removed} // '', qr/theprintspace no longer makes/, 'removed');
like($out->{last_lab} // '', qr/only lab that makes it/,
     'the last lab of a product on sale kept, with the reason');
is($out->{kbd_focus}, 'sku', 'keyboard: Enter on Edit opens the form');
ok($out->{kbd_closed}, 'keyboard: Escape closes it');
is($out->{overflow}, 0, '375 px: no sideways scrolling');
like($out->{audit} // '', qr{POST\s+/admin/api/labs/products/giclee-a3},
     'the change in the audit log');
like($out->{audit} // '',
     qr{DELETE\s+/admin/api/labs/products/giclee-a3/printspace},
     'the removal too');
is($rows->(), 'giclee-a3,prodigi,GLOBAL-FAP-A3,{},fillPrintArea,1',
   'the table as the page left it');
is($t->sql_value("SELECT count(*) FROM console_audit WHERE"
    . " path LIKE '/admin/api/labs/products/%' AND method = 'POST'"), 2,
   'bad JSON never sent');
is_deeply($out->{console} // [], [], 'no script error');

done_testing;
