/*
 * darkroom console: pricing: discount codes (GET, POST /admin/api/discounts
 * and discounts/<code>: an upsert; POST discounts/<code>/deactivate), tax
 * rates (GET, POST tax; DELETE tax/<country>) and shipping zones and rates
 * (GET, POST zones | rates; DELETE zones/<id> | rates/<id>).  Staff may use
 * it: the admin API asks for read (GET) and write (the rest).  Each form
 * checks its input before sending and shows the server's message when it
 * refuses.  Not here: the shop's settings (tax inclusive, home country),
 * a discount's restriction to products or kinds, its redemptions.
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

    function discountForm(ctx) {
        var f = {
            code: input('code', { autocomplete: 'off' }),
            kind: h('select', { name: 'kind' }, [
                h('option', { value: 'percent', text: 'percentage off' }),
                h('option', { value: 'fixed', text: 'amount off' })]),
            off: input('off'),
            min: input('min_spend'),
            ends: input('ends_at', { type: 'date' }),
            max: input('max_redemptions', { inputmode: 'numeric' }),
            desc: input('description')
        }, body, code;

        function check() {
            var off = f.off.value.trim(), max = f.max.value.trim(), p;

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
            } else {
                p = DRP.parsePrices(off, false);
                if (typeof p === 'string') {
                    return 'Amount off: ' + p;
                }
                body.amount_off = p;
            }
            p = DRP.parsePrices(f.min.value, true);
            if (typeof p === 'string') {
                return 'Minimum spend: ' + p;
            }
            if (Object.keys(p).length) {
                body.min_spend = p;
            }
            if (max !== '') {
                if (!/^[0-9]{1,7}$/.test(max) || +max < 1) {
                    return 'The number of uses is a whole number above'
                        + ' zero, or empty for no limit.';
                }
                body.max_redemptions = +max;
            }
            if (f.ends.value) {
                body.ends_at = f.ends.value + 'T23:59:59Z';
            }
            return null;
        }

        return DRP.form({ id: 'discount-form' }, [
            DRP.field('Code', f.code, 'an existing code is updated'),
            DRP.field('Kind', f.kind),
            DRP.field('Off', f.off, '"10" (percent) or "GBP 5.00"'
                      + ' (amount)'),
            DRP.field('Minimum spend', f.min, 'optional, such as'
                      + ' "GBP 30.00"'),
            DRP.field('Ends on', f.ends, 'optional'),
            DRP.field('Uses', f.max, 'optional: how many orders in all'),
            DRP.field('Description', f.desc)
        ], 'Save code', check, function () {
            return DR.api('POST', API + 'discounts', body);
        }, function (d) {
            ctx.load('Code ' + d.code + ' saved.');
        });
    }

    function discounts(ctx, list) {
        return h('section', { id: 'pricing-discounts' }, [
            h('h2', { text: 'Discount codes' }),
            DRP.table(['Code', 'Off', 'Minimum', 'Ends', 'Uses left',
                       'Active', ''],
                list.map(function (d) {
                    return [d.code,
                            d.kind === 'percent' ? d.percent_off + ' %'
                                : prices(d.amount_off),
                            prices(d.min_spend), DRP.when(d.ends_at),
                            d.remaining === null || d.remaining === undefined
                                ? 'no limit' : String(d.remaining),
                            d.active ? 'yes' : 'no',
                            d.active ? button('Deactivate',
                                { 'data-deactivate': d.code },
                                act(ctx, 'POST', 'discounts/'
                                    + DRP.enc(d.code) + '/deactivate',
                                    'Code ' + d.code + ' deactivated.'))
                            : button('Reactivate',
                                { 'data-reactivate': d.code }, function () {
                                    DR.api('POST', API + 'discounts/'
                                           + DRP.enc(d.code),
                                           { active: true }).then(function () {
                                        ctx.load('Code ' + d.code
                                                 + ' active again.');
                                    }, function (e) {
                                        DRP.say(ctx.status, DRP.error(e),
                                                true);
                                    });
                                })];
                }), 'No discount code.'),
            h('h3', { text: 'Add or edit a code' }), discountForm(ctx)]);
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
                                DR.api('GET', API + 'zones')])
                .then(function (r) {
                    root.textContent = '';
                    ctx.status = DRP.status();
                    DRP.say(ctx.status, note || '');
                    root.appendChild(ctx.status);
                    root.appendChild(discounts(ctx, r[0].discounts || []));
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
