/*
 * darkroom console: fulfilment (#fulfilment?status=attention, and one lab
 * order: #fulfilment/<id>).  The lab admin API (darkroom_lab_admin,
 * mounted at /admin/api/labs/): GET orders?status= (a status, or
 * attention, stuck, open), GET orders/<id> with its history and jobs;
 * POST orders/<id>/retry | reroute {"lab"} | cancel, each confirmed first
 * and the server's answer shown.  The product-to-lab mapping has its own
 * page, Lab products (labproducts.js), linked from here.
 */

(function () {
    'use strict';

    var el = DR.el,
        API = '/admin/api/labs/orders',
        STATES = [['attention', 'Needing attention'], ['stuck', 'Stuck'],
                  ['open', 'Open'], ['all', 'All'], ['pending', 'Pending'],
                  ['held', 'Held'], ['submitted', 'Submitted'],
                  ['in_production', 'In production'],
                  ['shipped', 'Shipped'], ['cancelling', 'Cancelling'],
                  ['cancelled', 'Cancelled'], ['rerouted', 'Rerouted']],
        LABS = [['', 'The next lab mapped'], ['prodigi', 'Prodigi'],
                ['printspace', 'theprintspace']];

    function label(s) {
        return String(s || '').replace(/_/g, ' ');
    }

    function badge(s) {
        return el('span', { 'class': 'badge ' + s, text: label(s) });
    }

    function say(status, text, bad) {
        status.textContent = text || '';
        status.className = 'status' + (bad ? ' error' : ' ok');
        status.setAttribute('role', bad ? 'alert' : 'status');
    }

    /* a button that asks first; yes() runs the action, its answer shown */
    function ask(box, status, name, text, warn, extra, run) {
        var b = el('button', { type: 'button', 'data-action': name,
                               id: 'lab-' + name, text: text });

        b.addEventListener('click', function () {
            var yes, no, q;

            if (box.querySelector('.confirm')) {
                box.querySelector('.confirm').remove();
            }
            yes = el('button', { type: 'button', 'class': 'danger',
                                 'data-confirm': name, id: 'confirm-' + name,
                                 text: 'Yes, ' + text.toLowerCase() });
            no = el('button', { type: 'button', text: 'No' });
            q = el('div', { 'class': 'confirm', role: 'alertdialog' },
                   [el('p', { text: warn })].concat(extra || [],
                                                     [yes, ' ', no]));
            box.appendChild(q);
            yes.focus();
            no.addEventListener('click', function () {
                q.remove();
                b.focus();
            });
            yes.addEventListener('click', function () {
                yes.disabled = true;
                say(status, 'Working…');
                run().then(function (text) {
                    q.remove();
                    say(status, text);
                    DR.notice(text);
                }, function (e) {
                    q.remove();
                    say(status, DR.error(e), true);
                    b.focus();
                });
            });
        });
        return b;
    }

    function post(lo, what, body) {
        return DR.api('POST', API + '/' + encodeURIComponent(lo.id) + '/'
                      + what, body || {});
    }

    function actions(lo, reload) {
        var status = el('p', { 'class': 'status', id: 'lab-status',
                               role: 'status', 'aria-live': 'polite' }),
            box = el('div', { 'class': 'actions' }),
            lab = el('select', { id: 'reroute-lab' }, LABS.map(function (l) {
                return el('option', { value: l[0], text: l[1] });
            })),
            done = ['shipped', 'cancelled', 'rerouted'];

        if (done.indexOf(lo.status) >= 0) {
            return el('p', { 'class': 'muted', text: 'This lab order is '
                             + label(lo.status) + ': nothing to do.' });
        }
        box.appendChild(ask(box, status, 'retry', 'Retry',
            'Send it to the lab again now with a fresh count of attempts '
            + '(or, once the lab has it, fetch its state now).', null,
            function () {
                return post(lo, 'retry').then(function (n) {
                    reload();
                    return 'Retried: the lab order is now '
                           + label(n.status) + '.';
                });
            }));
        box.appendChild(ask(box, status, 'reroute', 'Reroute',
            'Send it to another lab instead (only before a lab accepted '
            + 'it).', [DR.field('Lab', lab)], function () {
                return post(lo, 'reroute', lab.value ? { lab: lab.value }
                                                     : {})
                    .then(function (n) {
                        DR.go('fulfilment', [n.id]);
                        return 'Rerouted to ' + n.lab + ' (lab order '
                               + n.id + ').';
                    });
            }));
        box.appendChild(ask(box, status, 'cancel', 'Cancel the lab order',
            'Cancel it: at once if no lab has it, else at the lab. The '
            + 'customer is not refunded by this.', null, function () {
                return post(lo, 'cancel').then(function (n) {
                    reload();
                    return 'Cancel asked: the lab order is now '
                           + label(n.status) + '.';
                });
            }));
        return el('div', null, [box, status]);
    }

    function section(title, body, id) {
        return el('section', { 'class': 'box', id: id },
                  [el('h2', { text: title })].concat(body));
    }

    function detail(root, lo, reload) {
        document.getElementById('page-title').textContent =
            'Lab order ' + lo.id;
        root.appendChild(el('dl', { 'class': 'facts' }, [
            ['Status', el('span', { id: 'lab-order-status' },
                          badge(lo.status))],
            ['Order', el('a', { href: '#order/' + encodeURIComponent(lo.order),
                                text: lo.order })],
            ['Lab', lo.lab + (lo.lab_order_id ? ' (' + lo.lab_order_id + ')'
                                              : '')],
            ['Lab says', lo.lab_status || '—'],
            ['Attempts', String(lo.attempts)],
            ['Last error', lo.last_error || '—'],
            ['Rerouted', lo.rerouted_from ? 'from ' + lo.rerouted_from
                : lo.rerouted_to ? 'to ' + lo.rerouted_to : '—'],
            ['Updated', DR.when(lo.updated_at)]].map(function (r) {
                return [el('dt', { text: r[0] }), el('dd', null, r[1])];
            })));
        root.appendChild(section('Actions', actions(lo, reload),
                                 'lab-actions'));
        root.appendChild(section('Items', DR.table(
            ['Line', 'Photo', 'Product', 'Lab SKU', 'Copies'],
            (lo.items || []).map(function (i) {
                return [String(i.line), i.photo, i.product, i.sku,
                        String(i.copies)];
            }), 'No item.'), 'lab-items'));
        root.appendChild(section('Parcels', DR.table(
            ['Carrier', 'Tracking', 'Dispatched'],
            (lo.shipments || []).map(function (s) {
                return [s.carrier, s.tracking_url
                    ? el('a', { href: s.tracking_url, rel: 'noopener',
                                text: s.tracking_number || 'track' })
                    : s.tracking_number, DR.when(s.dispatched_at)];
            }), 'No parcel yet.'), 'lab-parcels'));
        root.appendChild(section('History', DR.table(
            ['When', 'Change', 'Cause', 'Detail'],
            (lo.history || []).map(function (e) {
                return [DR.when(e.at), e.from && e.from !== e.to
                        ? label(e.from) + ' → ' + label(e.to) : label(e.to),
                        label(e.cause), e.detail && Object.keys(e.detail)
                        .length ? JSON.stringify(e.detail) : ''];
            }), 'No history.'), 'lab-history'));
        root.appendChild(section('Jobs', DR.table(
            ['Job', 'Kind', 'Attempts', 'State', 'Last error'],
            (lo.jobs || []).map(function (j) {
                return [String(j.id), j.kind, String(j.attempts),
                        j.dead ? 'dead' : j.done ? 'done' : 'waiting',
                        j.last_error || '—'];
            }), 'No job.'), 'lab-jobs'));
    }

    function one(root, id) {
        function load() {
            root.textContent = '';
            root.appendChild(el('p', { 'class': 'loading',
                                       text: 'Loading…' }));
            return DR.api('GET', API + '/' + encodeURIComponent(id))
                .then(function (lo) {
                    root.textContent = '';
                    root.appendChild(el('p', null, el('a', {
                        href: '#fulfilment', text: '← All lab orders' })));
                    detail(root, lo, load);
                }, function (e) {
                    root.textContent = '';
                    root.appendChild(el('p', { 'class': 'error',
                        role: 'alert', text: e.status === 404
                            ? 'There is no lab order ' + id + '.'
                            : DR.error(e) }));
                    root.appendChild(el('p', null, el('a', {
                        href: '#fulfilment', text: 'Back to the list' })));
                });
        }
        return load();
    }

    function row(lo) {
        return [el('a', { href: '#fulfilment/' + lo.id,
                          'class': 'lab-order', 'data-id': lo.id,
                          text: String(lo.id) }),
                el('a', { href: '#order/' + encodeURIComponent(lo.order),
                          text: lo.order }),
                lo.lab, badge(lo.status), String(lo.attempts),
                el('span', { 'class': 'last-error',
                             text: lo.last_error || '—' }),
                DR.when(lo.updated_at)];
    }

    function render(root, params) {
        var state = params.state || params.status || 'attention',
            select, list = el('div', { id: 'lab-list' });

        if (params[0]) {
            return one(root, params[0]);
        }
        if (!STATES.some(function (s) { return s[0] === state; })) {
            state = 'attention';
        }
        select = el('select', { id: 'lab-state', onchange: function () {
            DR.go('fulfilment', { status: select.value });
        } }, STATES.map(function (s) {
            return el('option', { value: s[0], text: s[1],
                                  selected: s[0] === state });
        }));
        root.appendChild(el('div', { 'class': 'filters' },
                            DR.field('Show', select)));
        root.appendChild(list);
        root.appendChild(el('p', { id: 'lab-mapping' }, [
            'Which lab makes each product: ',
            el('a', { href: '#labproducts', text: 'Lab products' }), '.']));
        list.appendChild(el('p', { 'class': 'loading', text: 'Loading…' }));
        return DR.api('GET', API + (state === 'all' ? '' : '?status='
                                    + encodeURIComponent(state)))
            .then(function (d) {
                var t = d.totals || {};

                list.textContent = '';
                list.appendChild(el('p', { id: 'lab-totals', text:
                    (t.failed || 0) + ' needing attention, ' + (t.stuck || 0)
                    + ' stuck.' }));
                list.appendChild(DR.table(['Lab order', 'Order', 'Lab',
                    'Status', 'Attempts', 'Last error', 'Updated'],
                    (d.lab_orders || []).map(row),
                    state === 'attention' || state === 'stuck'
                        ? 'None: all is well.' : 'No lab order.'));
            }, function (e) {
                list.textContent = '';
                list.appendChild(el('p', { 'class': 'error', role: 'alert',
                                           text: DR.error(e) }));
            });
    }

    DR.page('fulfilment', { title: 'Fulfilment', nav: 'Fulfilment',
                            render: render });
}());
