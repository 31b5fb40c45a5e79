/*
 * darkroom console: lab products (#labproducts), which lab makes each print
 * product (the lab_products table), through the lab admin API
 * (darkroom_lab_admin, mounted at /admin/api/labs/): GET products, POST
 * products/<id> {"lab","sku","attributes","sizing","priority"} (one lab's
 * row, added or changed), DELETE products/<id>/<lab> (asked first).  The
 * lowest priority is tried first.  A change reaches the next order split
 * into lab orders, never one already split.  Every form checks its input
 * (the attributes are JSON text) and writes nothing when it is wrong.
 */

(function () {
    'use strict';

    var h = DRP.h,
        API = '/admin/api/labs/products',
        NAMES = { prodigi: 'Prodigi', printspace: 'theprintspace' },
        SIZINGS = [['fillPrintArea', 'fillPrintArea (crop to fill)'],
                   ['fitPrintArea', 'fitPrintArea (fit, with borders)'],
                   ['stretchToPrintArea', 'stretchToPrintArea']];

    function labName(lab) {
        return NAMES[lab] || lab;
    }

    function attrsText(a) {
        return a && Object.keys(a).length ? JSON.stringify(a) : '{}';
    }

    /* the attributes typed: an object, or an error string */
    function parseAttrs(text) {
        var v;

        text = text.trim();
        if (text === '') {
            return {};
        }
        try {
            v = JSON.parse(text);
        } catch (e) {
            return 'The attributes are not valid JSON (' + e.message
                + '). Write an object such as {"PrintOptionId": 104},'
                + ' or {} for none.';
        }
        if (v === null || typeof v !== 'object' || Array.isArray(v)) {
            return 'The attributes must be a JSON object, such as'
                + ' {"wrap": "MirrorWrap"}, or {} for none.';
        }
        return v;
    }

    /* the form adding a lab to a product (row null) or changing one */
    function rowForm(p, row, labs, close, saved) {
        var f = {
            lab: h('select', { name: 'lab', disabled: !!row },
                   (row ? [row.lab] : labs).map(function (l) {
                       return h('option', { value: l, text: labName(l) });
                   })),
            sku: h('input', { name: 'sku', autocomplete: 'off',
                              maxlength: 100, value: row ? row.sku : '' }),
            attributes: h('textarea', { name: 'attributes', rows: 2,
                                        spellcheck: 'false',
                                        value: row ? attrsText(row.attributes)
                                                   : '{}' }),
            sizing: h('select', { name: 'sizing' }, SIZINGS.map(function (s) {
                return h('option', { value: s[0], text: s[1] });
            })),
            priority: h('input', { name: 'priority', inputmode: 'numeric',
                                   value: String(row ? row.priority
                                                     : p.labs.length + 1) })
        }, body = {}, cancel, form;

        f.sizing.value = row ? row.sizing : 'fillPrintArea';

        function check() {
            var sku = f.sku.value.trim(), a = parseAttrs(f.attributes.value),
                n = f.priority.value.trim();

            if (sku.length < 1 || sku.length > 100) {
                return 'Give the lab\'s SKU for this product (1 to 100'
                    + ' characters).';
            }
            if (typeof a === 'string') {
                return a;
            }
            if (!/^-?[0-9]{1,6}$/.test(n)) {
                return 'The priority is a whole number (the lowest is tried'
                    + ' first).';
            }
            body = { lab: f.lab.value, sku: sku, attributes: a,
                     sizing: f.sizing.value, priority: +n };
            return null;
        }

        cancel = h('button', { type: 'button', text: 'Cancel',
                               onclick: close });
        form = DRP.form({ id: 'lp-form', 'class': 'action',
                          'data-product': p.id },
            [h('h3', { text: row ? 'Change ' + labName(row.lab) + ' for '
                                   + p.name
                                 : 'Add a lab to ' + p.name }),
             DRP.field('Lab', f.lab),
             DRP.field('Lab SKU', f.sku, 'the lab\'s code for this product'),
             DRP.field('Attributes (JSON)', f.attributes,
                       'e.g. {"PrintOptionId": 104} for theprintspace, '
                       + '{"wrap": "MirrorWrap"} for a Prodigi canvas; {} '
                       + 'for none'),
             DRP.field('Sizing', f.sizing),
             DRP.field('Priority', f.priority, 'the lowest is tried first')],
            row ? 'Save' : 'Add the lab', check, function () {
                return DR.api('POST', API + '/' + DRP.enc(p.id), body);
            }, function () {
                saved(labName(body.lab) + ' makes ' + p.name + ' as '
                      + body.sku + '.');
            });
        form.querySelector('.actions').appendChild(cancel);
        form.addEventListener('keydown', function (ev) {
            if (ev.key === 'Escape') {
                close();
            }
        });
        return form;
    }

    /* "Remove", asked first; the server's answer (and warning) shown */
    function remove(p, row, box, status, removed) {
        var yes, no, q, b;

        b = h('button', { type: 'button', 'data-remove': row.lab,
                          text: 'Remove',
                          'aria-label': 'Remove ' + labName(row.lab)
                                        + ' from ' + p.name });
        b.addEventListener('click', function () {
            var old = document.querySelector('.confirm');

            if (old) {
                old.remove();
            }
            yes = h('button', { type: 'button', 'class': 'danger',
                                id: 'lp-confirm', text: 'Yes, remove it' });
            no = h('button', { type: 'button', text: 'No' });
            q = h('div', { 'class': 'confirm', role: 'alertdialog',
                           'aria-label': 'Remove a lab' }, [
                h('p', { text: 'Remove ' + labName(row.lab) + ' from '
                         + p.name + '? The next orders go to its other labs;'
                         + ' lab orders already made keep it.' }),
                h('div', { 'class': 'actions' }, [yes, no])]);
            box.appendChild(q);
            yes.focus();
            no.addEventListener('click', function () {
                q.remove();
                b.focus();
            });
            yes.addEventListener('click', function () {
                yes.disabled = true;
                DR.api('DELETE', API + '/' + DRP.enc(p.id) + '/'
                       + DRP.enc(row.lab)).then(function (r) {
                    removed(labName(row.lab) + ' no longer makes ' + p.name
                            + '.' + (r && r.warning ? ' ' + r.warning : ''));
                }, function (e) {
                    q.remove();
                    DRP.say(status, DRP.error(e), true);
                    b.focus();
                });
            });
        });
        return b;
    }

    function product(p, labs, ui) {
        var box = h('section', { 'class': 'box lab-product',
                                 id: 'lp-' + p.id, 'data-product': p.id }),
            status = DRP.status(),
            area = h('div', { 'class': 'lp-edit' }),
            free = labs.filter(function (l) {
                return !p.labs.some(function (r) { return r.lab === l; });
            }), add;

        function open(row) {
            var old = document.getElementById('lp-form'), form;

            if (old) {
                old.remove();
            }
            form = rowForm(p, row, free, function () {
                form.remove();
                box.querySelector('h2').focus();
            }, ui.done);
            area.appendChild(form);
            form.querySelector(row ? '[name=sku]' : '[name=lab]').focus();
        }

        box.appendChild(h('h2', { tabindex: '-1' }, [p.name + ' ',
            h('small', { 'class': 'muted', text: p.id }),
            p.active ? null : h('span', { 'class': 'badge cancelled',
                                          text: 'off sale' })]));
        box.appendChild(DRP.table(['Lab', 'SKU', 'Attributes', 'Sizing',
                                   'Priority', 'Actions'],
            p.labs.map(function (r) {
                return [labName(r.lab),
                        h('span', { 'class': 'lp-sku', text: r.sku }),
                        h('code', { 'class': 'lp-attrs',
                                    text: attrsText(r.attributes) }),
                        r.sizing, String(r.priority),
                        h('div', { 'class': 'actions' }, [
                            h('button', { type: 'button',
                                          'data-edit': r.lab, text: 'Edit',
                                          'aria-label': 'Edit '
                                              + labName(r.lab) + ' for '
                                              + p.name,
                                          onclick: function () {
                                              open(r);
                                          } }),
                            remove(p, r, box, status, ui.done)])];
            }), p.active ? 'No lab makes it: its orders wait for review.'
                         : 'No lab makes it.'));
        if (free.length) {
            add = h('button', { type: 'button', 'class': 'lp-add',
                                text: 'Add a lab',
                                onclick: function () { open(null); } });
            box.appendChild(h('div', { 'class': 'actions' }, add));
        }
        box.appendChild(area);
        box.appendChild(status);
        return box;
    }

    function render(root) {
        var list = h('div', { id: 'lp-list' }),
            status = h('p', { id: 'lp-status', 'class': 'form-status',
                              role: 'status', 'aria-live': 'polite' });

        function load(said) {
            return DR.api('GET', API).then(function (d) {
                var labs = d.labs || ['prodigi', 'printspace'],
                    prints = (d.products || []).filter(function (p) {
                        return p.kind === 'print';
                    }),
                    digital = (d.products || []).filter(function (p) {
                        return p.kind !== 'print';
                    }),
                    ui = { done: function (text) {
                        load(text);
                    } };

                list.textContent = '';
                prints.forEach(function (p) {
                    list.appendChild(product(p, labs, ui));
                });
                if (!prints.length) {
                    list.appendChild(h('p', { 'class': 'empty', text:
                        'No print product yet: add one in the catalogue.' }));
                }
                if (digital.length) {
                    list.appendChild(h('p', { 'class': 'muted', text:
                        'Digital products need no lab: ' + digital.map(
                            function (p) { return p.name; }).join(', ')
                        + '.' }));
                }
                if (said) {
                    DRP.say(status, said);
                    DR.notice(said);
                    status.focus();
                }
            }, function (e) {
                list.textContent = '';
                DRP.say(status, DRP.error(e), true);
            });
        }

        root.appendChild(h('p', { 'class': 'muted', text: 'Which lab makes '
            + 'each print product, with the lab\'s SKU, attributes and '
            + 'sizing. An order goes to the lab with the lowest priority '
            + 'that can make it, the next one if that lab fails. A change '
            + 'reaches the next order, not lab orders already made.' }));
        root.appendChild(h('p', null, h('a', { href: '#fulfilment',
                                              text: '← Lab orders' })));
        status.setAttribute('tabindex', '-1');
        root.appendChild(status);
        root.appendChild(list);
        list.appendChild(h('p', { 'class': 'loading', text: 'Loading…' }));
        return load();
    }

    DR.page('labproducts', { title: 'Lab products', nav: 'Lab products',
                             render: render });
}());
