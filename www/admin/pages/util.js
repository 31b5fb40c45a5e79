/*
 * darkroom console: small helpers shared by the pages (galleries, accounts,
 * keys, audit, catalogue).  Loaded after admin.js and before the pages.
 *
 * DRP.h(tag, attrs, children)   an element: attrs are attributes, except
 *                               on* (listeners), "text" and "value"
 * DRP.field(label, input, hint) a labelled form row
 * DRP.form(fields, submit, fn)  a form whose submit runs fn(values, ui);
 *                               fn returns an error string to refuse
 *                               without asking the server, or a promise
 * DRP.error(e)                  the server's message of a refused call
 * DRP.when(t)                   a time, readable
 * DRP.table(heads, rows)        a table (rows: arrays of nodes/strings)
 */

(function () {
    'use strict';

    var DRP = {};

    DRP.CONSOLE = '/admin/console/api/';
    DRP.GALLERIES = '/admin/api/galleries/';
    DRP.SHOP = '/admin/api/';

    DRP.h = function (tag, attrs, children) {
        var e = document.createElement(tag), k, v, i;

        attrs = attrs || {};
        for (k in attrs) {
            if (!Object.prototype.hasOwnProperty.call(attrs, k)) {
                continue;
            }
            v = attrs[k];
            if (v === null || v === undefined || v === false) {
                continue;
            }
            if (k.slice(0, 2) === 'on' && typeof v === 'function') {
                e.addEventListener(k.slice(2), v);
            } else if (k === 'text') {
                e.textContent = v;
            } else if (k === 'value') {
                e.value = v;
            } else if (k === 'checked') {
                e.checked = !!v;
            } else {
                e.setAttribute(k, v === true ? '' : String(v));
            }
        }

        if (children === undefined || children === null) {
            return e;
        }
        if (!Array.isArray(children)) {
            children = [children];
        }
        for (i = 0; i < children.length; i++) {
            if (children[i] === null || children[i] === undefined
                || children[i] === false)
            {
                continue;
            }
            e.appendChild(typeof children[i] === 'object'
                          ? children[i]
                          : document.createTextNode(String(children[i])));
        }
        return e;
    };

    var h = DRP.h, seq = 0;

    DRP.id = function (prefix) {
        seq++;
        return (prefix || 'drp') + '-' + seq;
    };

    /* the server's message: DR.api's rejection, whatever its shape */
    DRP.error = function (e) {
        if (e === null || e === undefined) {
            return 'Something went wrong.';
        }
        if (typeof e === 'string') {
            return e;
        }
        var cands = [e.error, e.json && e.json.error, e.body && e.body.error,
                     e.data && e.data.error];
        for (var i = 0; i < cands.length; i++) {
            if (cands[i] && cands[i].message) {
                return cands[i].message;
            }
        }
        return e.message || 'Something went wrong.';
    };

    DRP.when = function (t) {
        if (!t) {
            return '—';
        }
        var d = new Date(t);
        if (isNaN(d.getTime())) {
            return String(t);
        }
        return d.toLocaleString(undefined, { year: 'numeric', month: 'short',
            day: 'numeric', hour: '2-digit', minute: '2-digit' });
    };

    DRP.money = function (amount, cur) {
        if (amount === null || amount === undefined) {
            return '—';
        }
        if (window.DR && typeof DR.money === 'function') {
            return DR.money(amount, cur);
        }
        return (amount / 100).toFixed(2) + ' ' + (cur || '');
    };

    DRP.field = function (label, input, hint) {
        if (!input.id) {
            input.id = DRP.id('f');
        }
        return h('div', { 'class': 'field' }, [
            h('label', { 'for': input.id, text: label }),
            input,
            hint ? h('small', { 'class': 'hint', text: hint }) : null
        ]);
    };

    DRP.status = function () {
        return h('p', { 'class': 'form-status', role: 'status',
                        'aria-live': 'polite' });
    };

    DRP.say = function (node, text, bad) {
        node.textContent = text || '';
        node.className = 'form-status'
            + (bad ? ' error' : (text ? ' ok' : ''));
        if (bad) {
            node.setAttribute('role', 'alert');
        } else {
            node.setAttribute('role', 'status');
        }
    };

    /*
     * A form: on submit, check(ui) may answer an error string (shown, and
     * nothing is sent); else run(ui) returns a promise; its rejection is
     * shown with the server's message, its value with done(value).
     */
    DRP.form = function (attrs, children, label, check, run, done) {
        var status = DRP.status(),
            button = h('button', { type: 'submit', text: label }),
            form;

        form = h('form', attrs, children.concat([
            h('div', { 'class': 'actions' }, [button]), status]));
        form.setAttribute('novalidate', '');

        form.addEventListener('submit', function (ev) {
            var bad, p;

            ev.preventDefault();
            bad = check ? check() : null;
            if (bad) {
                DRP.say(status, bad, true);
                return;
            }
            DRP.say(status, 'Saving…');
            button.disabled = true;
            p = run();
            Promise.resolve(p).then(function (v) {
                button.disabled = false;
                DRP.say(status, '');
                if (done) {
                    done(v, status);
                }
            }, function (e) {
                button.disabled = false;
                DRP.say(status, DRP.error(e), true);
            });
        });

        form.status = status;
        return form;
    };

    DRP.table = function (heads, rows, empty) {
        if (!rows.length) {
            return h('p', { 'class': 'empty', text: empty || 'None yet.' });
        }
        return h('div', { 'class': 'table-wrap' }, h('table', {
            'class': 'stack' }, [
            h('thead', null, h('tr', null, heads.map(function (t) {
                return h('th', { scope: 'col', text: t });
            }))),
            h('tbody', null, rows.map(function (r) {
                return h('tr', null, r.map(function (c, i) {
                    return h('td', { 'data-label': heads[i] },
                             c === null || c === undefined ? '—' : c);
                }));
            }))
        ]));
    };

    DRP.loading = function (root) {
        root.textContent = '';
        root.appendChild(h('p', { 'class': 'loading', text: 'Loading…' }));
    };

    DRP.failed = function (root, e) {
        root.textContent = '';
        root.appendChild(h('p', { 'class': 'form-status error', role: 'alert',
                                  text: DRP.error(e) }));
    };

    /* the first argument of a route: "#gallery/x" gives "x" */
    DRP.param = function (params) {
        if (params === null || params === undefined) {
            return null;
        }
        if (typeof params === 'string') {
            return params;
        }
        if (Array.isArray(params)) {
            return params[0];
        }
        return params.id || params.slug || params.ref || params[0] || null;
    };

    DRP.enc = encodeURIComponent;

    window.DRP = DRP;
}());
