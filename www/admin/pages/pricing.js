/*
 * darkroom console: pricing: discount codes (GET, POST /admin/api/discounts
 * and discounts/<code>: an upsert; POST discounts/<code>/deactivate), tax
 * rates (GET, POST tax; DELETE tax/<country>) and shipping zones and rates
 * (GET, POST zones | rates; DELETE zones/<id> | rates/<id>).  Staff may use
 * it: the admin API asks for read (GET) and write (the rest).  Also the
 * shop's settings (GET, POST settings: tax inclusive, home country,
 * invoice prefix), a code's restriction to products (GET products) or
 * kinds, its dates, limits and uses (GET discounts/<code>/redemptions).
 * Each form checks its input before sending and shows the server's
 * message when it refuses.  Not here: shipping rates for one product.
 */

(function () {
    'use strict';

    var h = DRP.h, API = DRP.SHOP;

    function input(name, attrs) {
        var a = { name: name }, k;

        for (k in attrs || {}) {
            a[k] = attrs[k];
        }
        return h('input', a);
    }

    function amount(text, cur) {
        /* "4.50" GBP to 450, or null when it is not a sum of money */
        return DR.minor(text, cur);
    }

    function prices(p) {
        var k = Object.keys(p || {}).sort();

        return k.length ? k.map(function (c) {
            return DRP.money(p[c], c);
        }).join(', ') : '—';
    }

    function button(label, attrs, fn) {
        attrs.type = 'button';
        attrs.text = label;
        attrs.onclick = fn;
        return h('button', attrs);
    }

    /* a call from a button: the answer goes to the page's status line */
    function act(ctx, method, path, done) {
        return function () {
            DR.api(method, API + path).then(function () {
                ctx.load(done);
            }, function (e) {
                DRP.say(ctx.status, DRP.error(e), true);
            });
        };
    }

    /* --------------------------------------------------------- discounts */

    /* check boxes in a fieldset, one a value: [box, ...] with .chosen() */
    function boxes(name, items) {
        var list = items.map(function (it) {
            return h('input', { type: 'checkbox', name: name,
                                value: it.value });
        });

        list.chosen = function () {
            return list.filter(function (b) {
                return b.checked;
            }).map(function (b) {
                return b.value;
            });
        };
        list.set = function (values) {
            list.forEach(function (b) {
                b.checked = (values || []).indexOf(b.value) >= 0;
            });
        };
        list.fieldset = function (legend, hint) {
            return h('fieldset', { id: 'discount-' + name }, [
                h('legend', { text: legend })].concat(
                list.map(function (b, i) {
                    return h('label', { 'class': 'check' },
                             [b, ' ' + items[i].label]);
                }), hint ? [h('small', { 'class': 'hint', text: hint })]
                    : []));
        };
        return list;
    }

    function day(t) {
        /* "2026-12-31T23:59:59Z" to "2026-12-31" for a date field */
        return t ? String(t).slice(0, 10) : '';
    }

    function discountForm(ctx, products) {
        var f = {
            code: input('code', { autocomplete: 'off' }),
            kind: h('select', { name: 'kind' }, [
                h('option', { value: 'percent', text: 'percentage off' }),
                h('option', { value: 'fixed', text: 'amount off' })]),
            off: input('off'),
            min: input('min_spend'),
            starts: input('starts_at', { type: 'date' }),
            ends: input('ends_at', { type: 'date' }),
            max: input('max_redemptions', { inputmode: 'numeric' }),
            per: input('max_per_email', { inputmode: 'numeric' }),
            desc: input('description')
        }, body, code, form,
            only = boxes('product', products.map(function (p) {
                return { value: p.id, label: p.name + ' (' + p.id + ')' };
            })),
            kinds = boxes('kind_only', [{ value: 'print', label: 'prints' },
                                        { value: 'digital',
                                          label: 'digital' }]);

        function count(v, what) {
            v = v.trim();
            if (v === '') {
                return null;
            }
            if (!/^[0-9]{1,7}$/.test(v) || +v < 1) {
                return 'The number of ' + what + ' is a whole number above'
                    + ' zero, or empty for no limit.';
            }
            return +v;
        }

        function check() {
            var off = f.off.value.trim(), p, n;

            code = f.code.value.trim().toUpperCase();
            if (!/^[A-Z0-9_-]{1,32}$/.test(code)) {
                return 'The code must be 1 to 32 letters, digits, dashes or'
                    + ' underscores.';
            }
            body = { code: code, kind: f.kind.value,
                     description: f.desc.value.trim() };
            if (f.kind.value === 'percent') {
                if (!/^[0-9]{1,3}(\.[0-9]{1,2})?$/.test(off) || +off <= 0
                    || +off > 100)
                {
                    return 'The percentage off must be above 0 and at most'
                        + ' 100.';
                }
                body.percent_off = +off;
                body.amount_off = null;
            } else {
                p = DRP.parsePrices(off, false);
                if (typeof p === 'string') {
                    return 'Amount off: ' + p;
                }
                body.amount_off = p;
                body.percent_off = null;
            }
            p = DRP.parsePrices(f.min.value, true);
            if (typeof p === 'string') {
                return 'Minimum spend: ' + p;
            }
            body.min_spend = Object.keys(p).length ? p : null;
            n = count(f.max.value, 'uses');
            if (typeof n === 'string') {
                return n;
            }
            body.max_redemptions = n;
            n = count(f.per.value, 'uses per email');
            if (typeof n === 'string') {
                return n;
            }
            body.max_per_email = n;
            body.starts_at = f.starts.value ? f.starts.value + 'T00:00:00Z'
                : null;
            body.ends_at = f.ends.value ? f.ends.value + 'T23:59:59Z' : null;
            if (f.starts.value && f.ends.value
                && f.ends.value < f.starts.value)
            {
                return 'The end date must not be before the start date.';
            }
            body.products = only.chosen().length ? only.chosen() : null;
            body.kinds = kinds.chosen().length ? kinds.chosen() : null;
            return null;
        }

        form = DRP.form({ id: 'discount-form' }, [
            DRP.field('Code', f.code, 'an existing code is updated'),
            DRP.field('Kind', f.kind),
            DRP.field('Off', f.off, '"10" (percent) or "GBP 5.00"'
                      + ' (amount)'),
            DRP.field('Minimum spend', f.min, 'optional, per currency,'
                      + ' such as "GBP 30.00, USD 40.00"'),
            DRP.field('Starts on', f.starts, 'optional'),
            DRP.field('Ends on', f.ends, 'optional: the last day'),
            DRP.field('Uses', f.max, 'optional: how many orders in all'),
            DRP.field('Uses per email', f.per, 'optional'),
            only.length ? only.fieldset('Only these products',
                                        'none ticked: every product')
                : null,
            kinds.fieldset('Only these kinds', 'none ticked: both'),
            DRP.field('Description', f.desc)
        ].filter(Boolean), 'Save code', check, function () {
            return DR.api('POST', API + 'discounts', body);
        }, function (d) {
            ctx.load('Code ' + d.code + ' saved.');
        });

        /* Edit: the form shows the code as it is */
        form.fill = function (d) {
            f.code.value = d.code;
            f.kind.value = d.kind;
            f.off.value = d.kind === 'percent' ? String(d.percent_off)
                : DRP.pricesText(d.amount_off);
            f.min.value = DRP.pricesText(d.min_spend);
            f.starts.value = day(d.starts_at);
            f.ends.value = day(d.ends_at);
            f.max.value = d.max_redemptions ? String(d.max_redemptions) : '';
            f.per.value = d.max_per_email ? String(d.max_per_email) : '';
            f.desc.value = d.description || '';
            only.set(d.products);
            kinds.set(d.kinds);
            f.code.focus();
        };
        return form;
    }

    function restriction(d) {
        var r = [];

        if (d.products) {
            r.push(d.products.join(', '));
        }
        if (d.kinds) {
            r.push(d.kinds.join(', '));
        }
        if (d.max_per_email) {
            r.push(d.max_per_email + ' per email');
        }
        return r.length ? r.join('; ') : 'anything';
    }

    /* a code's uses (GET discounts/<code>/redemptions) under its table */
    function redemptions(ctx, code) {
        return function () {
            DR.api('GET', API + 'discounts/' + DRP.enc(code)
                   + '/redemptions').then(function (r) {
                var box = document.getElementById('pricing-redemptions');

                box.textContent = '';
                box.appendChild(h('h3', { text: 'Uses of ' + code }));
                box.appendChild(DRP.table(['Order', 'Email', 'Off', 'State',
                                           'Order status', 'When'],
                    (r.redemptions || []).map(function (u) {
                        return [h('a', { href: '#order/' + DRP.enc(u.order),
                                         text: u.order }),
                                u.email, DRP.money(u.amount, u.currency),
                                u.state, u.order_status,
                                DRP.when(u.redeemed_at || u.reserved_at)];
                    }), 'The code ' + code + ' has not been used.'));
                box.focus();
            }, function (e) {
                DRP.say(ctx.status, DRP.error(e), true);
            });
        };
    }

    function discountRow(ctx, d, form) {
        return [d.code,
                d.kind === 'percent' ? d.percent_off + ' %'
                    : prices(d.amount_off),
                prices(d.min_spend), restriction(d),
                (d.starts_at ? DRP.when(d.starts_at) : '—') + ' to '
                    + (d.ends_at ? DRP.when(d.ends_at) : '—'),
                d.remaining === null || d.remaining === undefined
                    ? 'no limit' : String(d.remaining),
                d.active ? 'yes' : 'no',
                h('span', { 'class': 'actions' }, [
                    button('Edit', { 'data-edit-discount': d.code },
                           function () {
                               form.fill(d);
                           }),
                    button('Uses', { 'data-redemptions': d.code },
                           redemptions(ctx, d.code)),
                    d.active ? button('Deactivate',
                        { 'data-deactivate': d.code },
                        act(ctx, 'POST', 'discounts/' + DRP.enc(d.code)
                            + '/deactivate',
                            'Code ' + d.code + ' deactivated.'))
                    : button('Reactivate',
                        { 'data-reactivate': d.code }, function () {
                            DR.api('POST', API + 'discounts/'
                                   + DRP.enc(d.code),
                                   { active: true }).then(function () {
                                ctx.load('Code ' + d.code + ' active again.');
                            }, function (e) {
                                DRP.say(ctx.status, DRP.error(e), true);
                            });
                        })])];
    }

    function discounts(ctx, list, products) {
        var form = discountForm(ctx, products);

        return h('section', { id: 'pricing-discounts' }, [
            h('h2', { text: 'Discount codes' }),
            DRP.table(['Code', 'Off', 'Minimum', 'Applies to', 'Dates',
                       'Uses left', 'Active', ''],
                list.map(function (d) {
                    return discountRow(ctx, d, form);
                }), 'No discount code.'),
            h('div', { id: 'pricing-redemptions', tabindex: '-1' }),
            h('h3', { text: 'Add or edit a code' }), form]);
    }

    /* ---------------------------------------------------------- settings */

    function settings(ctx, s) {
        var f = {
            incl: h('select', { name: 'tax_inclusive' }, [
                h('option', { value: 'true', text: 'include tax' }),
                h('option', { value: 'false', text: 'do not include tax' +
                              ' (it is added)' })]),
            country: input('country', { maxlength: 2,
                                        value: s.country || '' }),
            prefix: input('invoice_prefix', { value: s.invoice_prefix
                                              || '' })
        }, body;

        f.incl.value = s.tax_inclusive ? 'true' : 'false';

        function check() {
            var c = f.country.value.trim().toUpperCase(),
                p = f.prefix.value.trim();

            if (!/^[A-Z]{2}$/.test(c)) {
                return 'The home country is its two-letter code, such as'
                    + ' "GB".';
            }
            if (!/^[A-Za-z0-9\/_-]{0,16}$/.test(p)) {
                return 'The invoice prefix is up to 16 letters, digits, "-",'
                    + ' "_" or "/".';
            }
            body = { tax_inclusive: f.incl.value === 'true', country: c,
                     invoice_prefix: p };
            return null;
        }

        return h('section', { id: 'pricing-settings' }, [
            h('h2', { text: 'The shop' }),
            DRP.form({ id: 'settings-form' }, [
                DRP.field('Prices', f.incl, 'whether the catalogue\'s'
                          + ' prices include tax'),
                DRP.field('Home country', f.country, 'two letters, such as'
                          + ' "GB": the tax of a cart with no address'),
                DRP.field('Invoice prefix', f.prefix, 'such as "INV-";'
                          + ' the next number: ' + s.next_invoice)
            ], 'Save settings', check, function () {
                return DR.api('POST', API + 'settings', body);
            }, function () {
                ctx.load('Settings saved.');
            })]);
    }

    /* --------------------------------------------------------------- tax */

    function taxForm(ctx) {
        var f = {
            country: input('country', { maxlength: 2 }),
            kind: h('select', { name: 'kind' }, [
                h('option', { value: '', text: 'prints and digital' }),
                h('option', { value: 'print', text: 'prints' }),
                h('option', { value: 'digital', text: 'digital' })]),
            rate: input('rate', { inputmode: 'decimal' }),
            label: input('label', { value: 'VAT' })
        }, body;

        function check() {
            var c = f.country.value.trim().toUpperCase(),
                r = f.rate.value.trim();

            if (!/^[A-Z]{2}$/.test(c)) {
                return 'The country is its two-letter code, such as "GB".';
            }
            if (!/^[0-9]{1,2}(\.[0-9]{1,3})?$/.test(r)) {
                return 'The rate is a percentage from 0 to 99.999.';
            }
            body = { country: c, rate: +r };
            if (f.kind.value) {
                body.kind = f.kind.value;
            }
            if (f.label.value.trim()) {
                body.label = f.label.value.trim();
            }
            return null;
        }

        return DRP.form({ id: 'tax-form' }, [
            DRP.field('Country', f.country, 'two letters, such as "GB"'),
            DRP.field('For', f.kind),
            DRP.field('Rate (%)', f.rate),
            DRP.field('Label', f.label)
        ], 'Save tax rate', check, function () {
            return DR.api('POST', API + 'tax', body);
        }, function () {
            ctx.load('Tax rate for ' + body.country + ' saved.');
        });
    }

    function tax(ctx, t) {
        return h('section', { id: 'pricing-tax' }, [
            h('h2', { text: 'Tax rates' }),
            h('p', { 'class': 'hint', text: t.tax_inclusive
                     ? 'Prices include tax.' : 'Tax is added to prices.' }),
            DRP.table(['Country', 'For', 'Rate', 'Label', ''],
                (t.rates || []).map(function (r) {
                    return [r.country, r.kind, r.rate + ' %', r.label,
                            button('Remove ' + r.country,
                                { 'data-delete-tax': r.country },
                                act(ctx, 'DELETE', 'tax/' + DRP.enc(r.country),
                                    'Tax rates of ' + r.country
                                    + ' removed.'))];
                }), 'No tax rate.'),
            h('h3', { text: 'Set a tax rate' }), taxForm(ctx)]);
    }

    /* ---------------------------------------------------------- shipping */

    function zoneForm(ctx) {
        var f = { id: input('id', { autocomplete: 'off' }),
                  name: input('name'),
                  countries: input('countries') }, body;

        function check() {
            var id = f.id.value.trim(), cs = f.countries.value.trim()
                .toUpperCase().split(/[\s,]+/).filter(Boolean), i;

            if (!/^[a-z0-9][a-z0-9-]{0,63}$/.test(id)) {
                return 'The zone id must be 1 to 64 lower-case letters,'
                    + ' digits or dashes.';
            }
            if (!cs.length) {
                return 'Name at least one country, such as "GB".';
            }
            for (i = 0; i < cs.length; i++) {
                if (!/^[A-Z]{2}$/.test(cs[i])) {
                    return '"' + cs[i] + '" is not a two-letter country'
                        + ' code.';
                }
            }
            body = { id: id, countries: cs };
            if (f.name.value.trim()) {
                body.name = f.name.value.trim();
            }
            return null;
        }

        return DRP.form({ id: 'zone-form' }, [
            DRP.field('Id', f.id, 'an existing id is updated'),
            DRP.field('Name', f.name),
            DRP.field('Countries', f.countries, 'such as "GB, IE"')
        ], 'Save zone', check, function () {
            return DR.api('POST', API + 'zones', body);
        }, function () {
            ctx.load('Zone ' + body.id + ' saved.');
        });
    }

    function rateForm(ctx, zones) {
        var f = {
            zone: h('select', { name: 'zone' }, zones.map(function (z) {
                return h('option', { value: z.id, text: z.name });
            })),
            currency: input('currency', { maxlength: 3, value: 'GBP' }),
            method: h('select', { name: 'method' }, [
                h('option', { value: 'standard', text: 'standard' }),
                h('option', { value: 'express', text: 'express' })]),
            name: input('name'),
            amount: input('amount', { inputmode: 'decimal' }),
            per: input('per_item', { inputmode: 'decimal' }),
            free: input('free_over', { inputmode: 'decimal' })
        }, body;

        function check() {
            var c = f.currency.value.trim().toUpperCase(), a, k, v,
                opt = { per_item: f.per, free_over: f.free };

            if (!f.zone.value) {
                return 'Add a zone first.';
            }
            if (!/^[A-Z]{3}$/.test(c)) {
                return 'The currency is three letters, such as "GBP".';
            }
            if (!f.name.value.trim()) {
                return 'The rate needs a name, such as "Royal Mail".';
            }
            a = amount(f.amount.value.trim(), c);
            if (a === null) {
                return 'The price is an amount such as "4.50".';
            }
            body = { zone: f.zone.value, currency: c,
                     method: f.method.value, name: f.name.value.trim(),
                     amount: a };
            for (k in opt) {
                v = opt[k].value.trim();
                if (v !== '') {
                    a = amount(v, c);
                    if (a === null) {
                        return '"' + v + '" is not an amount such as'
                            + ' "0.50".';
                    }
                    body[k] = a;
                }
            }
            return null;
        }

        return DRP.form({ id: 'rate-form' }, [
            DRP.field('Zone', f.zone), DRP.field('Currency', f.currency),
            DRP.field('Method', f.method), DRP.field('Name', f.name),
            DRP.field('Price', f.amount, 'such as "4.50"'),
            DRP.field('Per extra item', f.per, 'optional'),
            DRP.field('Free over', f.free, 'optional: an order total')
        ], 'Save rate', check, function () {
            return DR.api('POST', API + 'rates', body);
        }, function () {
            ctx.load('Rate saved.');
        });
    }

    function shipping(ctx, zones) {
        var rows = [];

        zones.forEach(function (z) {
            (z.rates || []).forEach(function (r) {
                rows.push([z.name, r.method + (r.product ? ' (' + r.product
                           + ')' : ''), r.name, DRP.money(r.amount,
                           r.currency),
                           r.per_item ? DRP.money(r.per_item, r.currency)
                               : '—',
                           r.free_over ? DRP.money(r.free_over, r.currency)
                               : '—',
                           button('Remove', { 'data-delete-rate': r.id },
                               act(ctx, 'DELETE', 'rates/' + r.id,
                                   'Rate removed.'))]);
            });
        });

        return h('section', { id: 'pricing-shipping' }, [
            h('h2', { text: 'Shipping zones' }),
            DRP.table(['Zone', 'Id', 'Countries', ''], zones.map(function (z) {
                return [z.name, z.id, z.countries.join(', '),
                        button('Remove', { 'data-delete-zone': z.id },
                            act(ctx, 'DELETE', 'zones/' + DRP.enc(z.id),
                                'Zone ' + z.id + ' removed.'))];
            }), 'No shipping zone.'),
            h('h3', { text: 'Add or edit a zone' }), zoneForm(ctx),
            h('h2', { text: 'Shipping rates' }),
            DRP.table(['Zone', 'Method', 'Name', 'Price', 'Per item',
                       'Free over', ''], rows, 'No shipping rate.'),
            h('h3', { text: 'Add or edit a rate' }), rateForm(ctx, zones)]);
    }

    function render(root) {
        var ctx = {};

        ctx.load = function (note) {
            DRP.loading(root);
            return Promise.all([DR.api('GET', API + 'discounts'),
                                DR.api('GET', API + 'tax'),
                                DR.api('GET', API + 'zones'),
                                DR.api('GET', API + 'settings'),
                                DR.api('GET', API + 'products')])
                .then(function (r) {
                    root.textContent = '';
                    ctx.status = DRP.status();
                    DRP.say(ctx.status, note || '');
                    root.appendChild(ctx.status);
                    root.appendChild(settings(ctx, r[3]));
                    root.appendChild(discounts(ctx, r[0].discounts || [],
                                               r[4].products || []));
                    root.appendChild(tax(ctx, r[1]));
                    root.appendChild(shipping(ctx, r[2].zones || []));
                }, function (e) {
                    DRP.failed(root, e);
                });
        };
        return ctx.load();
    }

    DR.page('pricing', { title: 'Pricing', nav: 'Pricing',
                         render: render });
}());
