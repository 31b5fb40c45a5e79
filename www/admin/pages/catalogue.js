/*
 * darkroom console: the catalogue: products with their prices, print sizes
 * and minimum resolution (GET, POST /admin/api/products: an upsert), and
 * the price sheets galleries sell from (GET, PUT /admin/api/price-sheets/
 * <id>: replaces the sheet).  Every form checks its input before sending
 * and shows the server's message when it refuses.  The admin API has no
 * way to delete a product (deactivate it instead).
 */

(function () {
    'use strict';

    var h = DRP.h;

    function prices(p) {
        var k = Object.keys(p || {}).sort();

        if (!k.length) {
            return '—';
        }
        return k.map(function (c) {
            return DRP.money(p[c], c);
        }).join(', ');
    }

    /*
     * "GBP 28.00, USD 35" to {"GBP": 2800, "USD": 3500}, or an error (each
     * in its currency's minor units: "JPY 3000" is 3000)
     */
    function parsePrices(text, allowEmpty) {
        var out = {}, parts, i, m, n;

        text = (text || '').trim();
        if (!text) {
            return allowEmpty ? out
                : 'Give at least one price, such as "GBP 28.00".';
        }
        parts = text.split(/\s*[,;\n]\s*/);
        for (i = 0; i < parts.length; i++) {
            if (!parts[i]) {
                continue;
            }
            m = /^([A-Za-z]{3})\s*([0-9.,]+)$/.exec(parts[i]);
            n = m ? DR.minor(m[2], m[1].toUpperCase()) : null;
            if (n === null) {
                return '"' + parts[i] + '" is not a price: write a currency'
                    + ' and an amount, such as "GBP 28.00".';
            }
            if (n <= 0) {
                return 'The price ' + parts[i] + ' must be above zero.';
            }
            if (out[m[1].toUpperCase()] !== undefined) {
                return 'Two prices in ' + m[1].toUpperCase() + '.';
            }
            out[m[1].toUpperCase()] = n;
        }
        return out;
    }

    function pricesText(p) {
        return Object.keys(p || {}).sort().map(function (c) {
            return c + ' ' + DR.major(p[c], c);
        }).join(', ');
    }

    DRP.parsePrices = DRP.parsePrices || parsePrices;
    DRP.pricesText = DRP.pricesText || pricesText;

    function size(s) {
        return s ? s.width_mm + ' × ' + s.height_mm + ' mm' : '—';
    }

    function input(name, value, attrs) {
        var a = { name: name, value: value === null || value === undefined
                  ? '' : String(value) }, k;

        for (k in attrs || {}) {
            a[k] = attrs[k];
        }
        return h('input', a);
    }

    function productForm(reload) {
        var f = {
            id: input('id', '', { autocomplete: 'off' }),
            name: input('name', ''),
            kind: h('select', { name: 'kind' }, [
                h('option', { value: 'print', text: 'print' }),
                h('option', { value: 'digital', text: 'digital' })]),
            prices: input('prices', ''),
            width: input('width_mm', '', { inputmode: 'decimal' }),
            height: input('height_mm', '', { inputmode: 'decimal' }),
            ppi: input('min_ppi', '', { inputmode: 'numeric' }),
            active: h('input', { type: 'checkbox', name: 'active',
                                 checked: true })
        }, body = {}, form;

        function check() {
            var id = f.id.value.trim(), name = f.name.value.trim(),
                w = f.width.value.trim(), ht = f.height.value.trim(),
                ppi = f.ppi.value.trim(), p;

            body = {};
            if (!/^[a-z0-9][a-z0-9-]{0,63}$/.test(id)) {
                return 'The product id must be 1 to 64 lower-case letters,'
                    + ' digits or dashes.';
            }
            if (name.length < 1 || name.length > 200) {
                return 'The name must be 1 to 200 characters.';
            }
            p = parsePrices(f.prices.value, false);
            if (typeof p === 'string') {
                return p;
            }
            if ((w === '') !== (ht === '')) {
                return 'Give both the width and the height, or neither.';
            }
            if (w !== '' && (!/^[0-9]{1,5}(\.[0-9])?$/.test(w)
                             || !/^[0-9]{1,5}(\.[0-9])?$/.test(ht)
                             || +w < 1 || +ht < 1))
            {
                return 'The print size is in millimetres, 1 to 99999.';
            }
            if (w !== '' && f.kind.value !== 'print') {
                return 'Only a print has a size.';
            }
            if (ppi !== '' && (!/^[0-9]{1,4}$/.test(ppi) || +ppi < 1
                               || +ppi > 2400))
            {
                return 'The minimum resolution is 1 to 2400 pixels per inch,'
                    + ' or empty for the shop\'s.';
            }
            body = { id: id, name: name, kind: f.kind.value, prices: p,
                     print_size: w === '' ? null
                         : { width_mm: +w, height_mm: +ht },
                     min_ppi: ppi === '' ? null : +ppi,
                     active: f.active.checked };
            return null;
        }

        form = DRP.form({ id: 'product-form' }, [
            DRP.field('Id', f.id, 'lower-case letters, digits and dashes;'
                      + ' an existing id edits that product'),
            DRP.field('Name', f.name),
            DRP.field('Kind', f.kind),
            DRP.field('Prices', f.prices, 'such as "GBP 28.00, USD 35.00"'),
            DRP.field('Print width (mm)', f.width),
            DRP.field('Print height (mm)', f.height),
            DRP.field('Minimum ppi', f.ppi, 'empty: the shop\'s'),
            DRP.field('Active (on sale)', f.active)
        ], 'Save product', check, function () {
            return DR.api('POST', DRP.SHOP + 'products', body);
        }, function (p) {
            reload('Product "' + p.id + '" saved.');
        });

        form.fill = function (p) {
            f.id.value = p.id;
            f.name.value = p.name;
            f.kind.value = p.kind;
            f.prices.value = pricesText(p.prices);
            f.width.value = p.print_size ? p.print_size.width_mm : '';
            f.height.value = p.print_size ? p.print_size.height_mm : '';
            f.ppi.value = p.min_ppi === null || p.min_ppi === undefined
                ? '' : p.min_ppi;
            f.active.checked = !!p.active;
            f.name.focus();
        };
        return form;
    }

    function sheetForm(reload) {
        var f = {
            id: input('id', '', { autocomplete: 'off' }),
            name: input('name', ''),
            items: h('textarea', { name: 'items', rows: 4 })
        }, body = {}, id = '', form;

        function check() {
            var lines = f.items.value.split('\n'), items = [], i, m, p;

            id = f.id.value.trim();
            if (!/^[a-z0-9][a-z0-9-]{0,63}$/.test(id)) {
                return 'The sheet id must be 1 to 64 lower-case letters,'
                    + ' digits or dashes.';
            }
            if (!f.name.value.trim()) {
                return 'The sheet needs a name.';
            }
            for (i = 0; i < lines.length; i++) {
                if (!lines[i].trim()) {
                    continue;
                }
                m = /^\s*([a-z0-9][a-z0-9-]{0,63})\s*(?::\s*(.*))?$/
                    .exec(lines[i]);
                if (!m) {
                    return 'Line ' + (i + 1) + ': write a product id,'
                        + ' then optionally ": GBP 25.00".';
                }
                p = parsePrices(m[2] || '', true);
                if (typeof p === 'string') {
                    return 'Line ' + (i + 1) + ': ' + p;
                }
                items.push({ product: m[1], position: items.length + 1,
                             prices: p });
            }
            body = { name: f.name.value.trim(), items: items };
            return null;
        }

        form = DRP.form({ id: 'sheet-form' }, [
            DRP.field('Id', f.id, 'an existing id replaces that sheet'),
            DRP.field('Name', f.name),
            DRP.field('Products', f.items, 'one a line: "print-a4: GBP'
                      + ' 25.00", or just the id for catalogue prices')
        ], 'Save price sheet', check, function () {
            return DR.api('PUT', DRP.SHOP + 'price-sheets/' + DRP.enc(id),
                          body);
        }, function () {
            reload('Price sheet "' + id + '" saved.');
        });

        form.fill = function (s) {
            f.id.value = s.id;
            f.name.value = s.name;
            f.items.value = s.items.map(function (i) {
                var t = pricesText(i.prices);
                return i.product + (t ? ': ' + t : '');
            }).join('\n');
            f.name.focus();
        };
        return form;
    }

    function editButton(kind, id, fn) {
        return h('button', { type: 'button', 'data-edit': kind + ':' + id,
                             text: 'Edit', onclick: fn });
    }

    function draw(root, products, sheets, note, reload) {
        var pf = productForm(reload), sf = sheetForm(reload),
            status = DRP.status();

        root.textContent = '';
        DRP.say(status, note || '');
        root.appendChild(status);
        root.appendChild(h('section', { id: 'catalogue-products' }, [
            h('h2', { text: 'Products' }),
            DRP.table(['Product', 'Id', 'Kind', 'Medium / size',
                       'Print size', 'Min ppi', 'Prices', 'Active', ''],
                products.map(function (p) {
                    return [p.name, p.id, p.kind,
                            [p.medium, p.size].filter(Boolean)
                                .join(', ') || '—',
                            size(p.print_size),
                            p.min_ppi ? String(p.min_ppi) : '—',
                            prices(p.prices), p.active ? 'yes' : 'no',
                            editButton('product', p.id, function () {
                                pf.fill(p);
                            })];
                }), 'No product.'),
            h('h3', { text: 'Add or edit a product' }), pf]));

        root.appendChild(h('section', { id: 'catalogue-sheets' },
            [h('h2', { text: 'Price sheets' })].concat(
                sheets.length ? sheets.map(function (s) {
                    return h('article', { 'data-sheet': s.id }, [
                        h('h3', { text: s.name + ' (' + s.id + ')' }),
                        h('p', { 'class': 'hint', text: 'Galleries: '
                            + (s.galleries.length
                               ? s.galleries.join(', ') : 'none') }),
                        DRP.table(['Product', 'Prices'],
                            s.items.map(function (i) {
                                var own = Object.keys(i.prices).length;
                                return [i.product, own
                                    ? prices(i.prices)
                                    : 'catalogue prices'];
                            }), 'No product.'),
                        editButton('sheet', s.id, function () {
                            sf.fill(s);
                        })]);
                }) : [h('p', { 'class': 'empty',
                               text: 'No price sheet.' })]).concat([
                h('h3', { text: 'Add or replace a price sheet' }), sf])));
    }

    function render(root) {
        function load(note) {
            DRP.loading(root);
            return Promise.all([DR.api('GET', DRP.SHOP + 'products'),
                                DR.api('GET', DRP.SHOP + 'price-sheets')])
                .then(function (r) {
                    draw(root, r[0].products || [], r[1].price_sheets || [],
                         note, load);
                }, function (e) {
                    DRP.failed(root, e);
                });
        }
        return load();
    }

    DR.page('catalogue', { title: 'Catalogue', nav: 'Catalogue',
                           render: render });
}());
