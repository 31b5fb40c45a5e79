/*
 * darkroom console: one order (#order/DR-000012).  The shop's admin API:
 * GET /admin/api/orders/<ref> (lines, events, jobs), the lab orders
 * (GET /admin/api/labs/orders?order=<ref>) and the emails
 * (GET /admin/api/emails?order=<ref>); actions: refund, full or partial
 * (owner), approve or cancel a review (resolve), add a note, reissue the
 * downloads, resend an email (POST /admin/api/emails/<id>/resend).
 * Each action says what the server answered.
 */

(function () {
    'use strict';

    var el = DR.el;

    function label(s) {
        return String(s || '').replace(/_/g, ' ');
    }

    /* "stripe:evt_1..." is Stripe's event: the id says nothing here */
    function cause(c) {
        return /^stripe:/.test(c || '') ? 'Stripe' : label(c);
    }

    /* a box with a form whose submit runs act(); its answer is shown */
    function action(id, title, fields, button, check, act, danger) {
        var status = el('p', { 'class': 'status', id: id + '-status',
                               role: 'status', 'aria-live': 'polite' }),
            submit = el('button', { type: 'submit', id: id + '-submit',
                                    'class': danger ? 'danger' : 'primary',
                                    text: button });

        function say(text, bad) {
            status.textContent = text || '';
            status.className = 'status' + (bad ? ' error' : ' ok');
            status.setAttribute('role', bad ? 'alert' : 'status');
        }

        return el('form', { id: id, 'class': 'action', novalidate: true,
            onsubmit: function (ev) {
                var bad = check ? check() : null;

                ev.preventDefault();
                if (bad) {
                    say(bad, true);
                    return;
                }
                submit.disabled = true;
                say('Working…');
                act().then(function (text) {
                    submit.disabled = false;
                    say(text);
                }, function (e) {
                    submit.disabled = false;
                    say(DR.error(e), true);
                });
            } }, [el('h3', { text: title })].concat(fields,
                [el('div', { 'class': 'actions' }, submit), status]));
    }

    function post(ref, what, body) {
        return DR.api('POST', '/admin/api/orders/' + encodeURIComponent(ref)
                      + '/' + what, body);
    }

    function refundForm(o, reload) {
        var left = (o.paid_amount || o.total) - (o.amount_refunded || 0),
            amount = el('input', { id: 'refund-amount', inputmode: 'decimal',
                                   autocomplete: 'off' }),
            cur = o.paid_currency || o.currency;

        return action('refund', 'Refund', [
            DR.field('Amount (' + String(cur).toUpperCase() + ')', amount,
                     'Leave empty to refund all that is left: '
                     + DR.money(left, cur) + '.')],
            'Refund', function () {
                var v = amount.value.trim(), m;

                if (v === '') {
                    return null;
                }
                m = DR.minor(v, cur);
                if (m === null || m <= 0) {
                    return 'Enter an amount such as 12.50, or leave it empty.';
                }
                if (m > left) {
                    return 'At most ' + DR.money(left, cur)
                           + ' is left to refund.';
                }
                return null;
            }, function () {
                var v = amount.value.trim(),
                    body = v === '' ? {} : { amount: DR.minor(v, cur) };

                return post(o.order, 'refund', body).then(function () {
                    reload('Refund of ' + (v === '' ? DR.money(left, cur)
                        : DR.money(body.amount, cur)) + ' asked of Stripe.');
                    return 'Refund asked of Stripe.';
                });
            }, true);
    }

    function reviewForm(o, reload) {
        var note = el('textarea', { id: 'review-note', maxlength: 2000 }),
            refund = el('input', { type: 'checkbox', id: 'review-refund' }),
            fields = [DR.field('Note (why)', note)],
            approve, form;

        if (DR.can('owner')) {
            fields.push(el('div', { 'class': 'row' }, [refund,
                el('label', { 'for': 'review-refund',
                              text: 'Refund when cancelling' })]));
        }

        function resolve(to) {
            var body = { to: to };

            if (note.value.trim()) {
                body.note = note.value.trim();
            }
            if (to === 'cancelled' && refund.checked) {
                body.refund = true;
            }
            return post(o.order, 'resolve', body).then(function () {
                reload(to === 'paid' ? 'Review approved: the order goes on.'
                                     : 'Order cancelled.');
                return 'Done.';
            });
        }

        form = action('review', 'Review: ' + (o.review_reason || ''), fields,
            'Cancel the order', null, function () {
                return resolve('cancelled');
            }, true);
        approve = el('button', { type: 'button', id: 'review-approve',
                                 'class': 'primary', text: 'Approve',
            onclick: function () {
                var st = form.querySelector('.status');

                approve.disabled = true;
                st.textContent = 'Working…';
                resolve('paid').then(null, function (e) {
                    approve.disabled = false;
                    st.textContent = DR.error(e);
                    st.className = 'status error';
                    st.setAttribute('role', 'alert');
                });
            } });
        form.querySelector('.actions').insertBefore(approve,
            form.querySelector('.actions').firstChild);
        return form;
    }

    function noteForm(o, reload) {
        var note = el('textarea', { id: 'note-text', maxlength: 2000 });

        return action('note', 'Add a note', [DR.field('Note', note)],
            'Add the note', function () {
                var v = note.value.trim();

                if (!v) {
                    return 'Write the note first.';
                }
                return v.length > 2000 ? 'A note is at most 2000 characters.'
                                       : null;
            }, function () {
                return post(o.order, 'note', { note: note.value.trim() })
                    .then(function () {
                        reload('Note added.');
                        return 'Note added.';
                    });
            });
    }

    function reissueForm(o, reload) {
        return action('reissue', 'Downloads', [el('p', { 'class': 'muted',
            text: 'New download links, with a fresh expiry and count; '
                  + 'the old links stop working.' })],
            'Reissue the downloads', null, function () {
                return post(o.order, 'downloads/reissue', {})
                    .then(function () {
                        reload('Downloads reissued.');
                        return 'Downloads reissued.';
                    });
            });
    }

    /* POST /admin/api/emails/<id>/resend: a new email, same template */
    function resend(m, reload) {
        var cell = el('span', { 'aria-live': 'polite' }),
            b = el('button', { type: 'button', 'class': 'resend',
                               'data-email': m.id, text: 'Resend',
                               'aria-label': 'Resend email ' + m.id,
                onclick: function () {
                    b.disabled = true;
                    cell.textContent = 'Working…';
                    DR.api('POST', '/admin/api/emails/' + m.id + '/resend',
                           {}).then(function () {
                        reload('Email queued to be sent again.');
                    }, function (e) {
                        b.disabled = false;
                        cell.textContent = DR.error(e);
                        cell.className = 'error';
                        cell.setAttribute('role', 'alert');
                    });
                } });

        return el('span', null, [b, ' ', cell]);
    }

    function facts(o) {
        var rows = [
            ['Status', el('span', { 'class': 'badge ' + o.status,
                                    id: 'order-status',
                                    text: label(o.status) })],
            ['Email', o.email],
            ['Total', DR.money(o.total, o.currency)],
            ['Refunded', o.amount_refunded
                ? DR.money(o.amount_refunded, o.currency) : '—'],
            ['Created', DR.when(o.created_at)],
            ['Paid', DR.when(o.paid_at)]];

        if (o.review_reason) {
            rows.push(['Review', o.review_reason]);
        }
        if (o.shipping) {
            rows.push(['Ship to', [o.shipping.name, o.shipping.address
                && typeof o.shipping.address === 'object'
                ? Object.keys(o.shipping.address).map(function (k) {
                      return o.shipping.address[k];
                  }).filter(Boolean).join(', ')
                : o.shipping.address, o.shipping.phone]
                .filter(Boolean).join(' · ')]);
        }
        return el('dl', { 'class': 'facts' }, rows.map(function (r) {
            return [el('dt', { text: r[0] }), el('dd', null, r[1])];
        }));
    }

    function events(list) {
        if (!list || !list.length) {
            return el('p', { 'class': 'empty', text: 'No events.' });
        }
        return el('ol', { 'class': 'timeline', id: 'order-events' },
            list.map(function (e) {
                var d = e.detail || {}, extra = [];

                if (d.actor) {
                    extra.push('by ' + d.actor);
                }
                if (d.note) {
                    extra.push('“' + d.note + '”');
                }
                if (d.reason) {
                    extra.push(d.reason);
                }
                return el('li', null, [
                    el('strong', { text: e.from === e.to || !e.from
                        ? label(e.to || e.cause)
                        : label(e.from) + ' → ' + label(e.to) }),
                    ' ', el('span', { 'class': 'muted',
                        text: cause(e.cause) + ' · ' + DR.when(e.at) }),
                    extra.length ? el('div', { text: extra.join(' · ') })
                                 : null]);
            }));
    }

    function section(title, body, id) {
        return el('section', { 'class': 'box', id: id },
                  [el('h2', { text: title })].concat(body));
    }

    function later(box, promise, draw) {
        box.appendChild(el('p', { 'class': 'loading', text: 'Loading…' }));
        promise.then(function (d) {
            box.removeChild(box.lastChild);
            box.appendChild(draw(d));
        }, function (e) {
            box.removeChild(box.lastChild);
            box.appendChild(el('p', { 'class': e.status === 404 ? 'muted'
                                               : 'error',
                text: e.status === 404 ? 'None.' : DR.error(e) }));
        });
    }

    function draw(root, o, reload) {
        var acts = [], labs, mails, enc = encodeURIComponent(o.order),
            refundable = ['paid', 'in_production', 'shipped', 'delivered',
                          'needs_review'].indexOf(o.status) >= 0
                         && (o.amount_refunded || 0)
                            < (o.paid_amount || o.total);

        document.getElementById('page-title').textContent =
            'Order ' + o.order;
        root.appendChild(facts(o));

        if (o.status === 'needs_review') {
            acts.push(reviewForm(o, reload));
        }
        if (refundable && DR.can('owner')) {
            acts.push(refundForm(o, reload));
        }
        acts.push(noteForm(o, reload));
        if ((o.items || []).some(function (i) {
                return i.kind === 'digital' || i.kind === 'download'; })) {
            acts.push(reissueForm(o, reload));
        }
        root.appendChild(section('Actions', el('div', { 'class': 'acts' },
                                                acts), 'order-actions'));

        root.appendChild(section('Lines', DR.table(
            ['Photo', 'Product', 'Quantity', 'Amount'],
            (o.items || []).map(function (i) {
                return [i.title || i.photo, i.product_name || i.product,
                        String(i.quantity),
                        el('span', { 'class': 'num',
                                     text: DR.money(i.amount, o.currency) })];
            })), 'order-lines'));
        root.appendChild(section('Timeline', events(o.events),
                                 'order-timeline'));

        labs = section('Lab orders', [], 'order-labs');
        root.appendChild(labs);
        later(labs, DR.api('GET', '/admin/api/labs/orders?order=' + enc),
            function (d) {
                return DR.table(['Lab', 'Status', 'Parcels', 'Last error'],
                    (d.lab_orders || []).map(function (l) {
                        return [l.lab, el('span', { 'class': 'badge '
                            + l.status, text: label(l.status) }),
                            (l.shipments || []).map(function (s) {
                                return el('div', null, s.tracking_url
                                    ? el('a', { href: s.tracking_url,
                                                rel: 'noopener',
                                                text: s.tracking_number
                                                      || s.carrier })
                                    : [s.carrier, ' ', s.tracking_number]
                                        .join(''));
                            }), l.last_error];
                    }), 'No lab order.');
            });

        mails = section('Emails', [], 'order-emails');
        root.appendChild(mails);
        later(mails, DR.api('GET', '/admin/api/emails?order=' + enc),
            function (d) {
                return DR.table(['Email', 'To', 'Status', 'Sent', ''],
                    (d.emails || []).map(function (m) {
                        return [m.subject || label(m.template), m.to,
                            el('span', { 'class': 'badge ' + m.status,
                                         text: m.status
                                               + (m.error ? ': ' + m.error
                                                  : '') }),
                            DR.when(m.sent_at || m.created_at),
                            m.status === 'queued' ? '' : resend(m, reload)];
                    }), 'No email.');
            });

        if ((o.jobs || []).some(function (j) { return j.dead; })) {
            root.appendChild(section('Dead jobs', el('p', null, [
                'Some work for this order failed: ',
                el('a', { href: '#jobs?state=dead', text: 'see the jobs' }),
                '.']), 'order-jobs'));
        }
    }

    function render(root, params) {
        var ref = params[0];

        if (!ref) {
            DR.go('orders');
            return;
        }

        function load(message) {
            root.textContent = '';
            root.appendChild(el('p', { 'class': 'loading',
                                       text: 'Loading…' }));
            return DR.api('GET', '/admin/api/orders/' + encodeURIComponent(ref))
                .then(function (o) {
                    root.textContent = '';
                    if (message) {
                        DR.notice(message);
                    }
                    draw(root, o, load);
                }, function (e) {
                    root.textContent = '';
                    root.appendChild(el('p', { 'class': 'error',
                        role: 'alert', text: e.status === 404
                            ? 'There is no order ' + ref + '.'
                            : DR.error(e) }));
                    root.appendChild(el('p', null, el('a', {
                        href: '#orders', text: 'Back to the orders' })));
                });
        }

        return load();
    }

    DR.page('order', { title: 'Order', render: render });
}());
