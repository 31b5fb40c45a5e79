/*
 * darkroom console: emails.  GET /admin/api/emails?status=queued|sent|
 * failed&order=<ref>, newest first, with the error of a failed one.
 */

(function () {
    'use strict';

    var el = DR.el,
        STATUSES = [['', 'Any status'], ['queued', 'Queued'],
                    ['sent', 'Sent'], ['failed', 'Failed']];

    function render(root, params) {
        var status = el('select', { id: 'emails-status' },
                STATUSES.map(function (s) {
                    return el('option', { value: s[0], text: s[1],
                        selected: s[0] === (params.status || '') });
                })),
            order = el('input', { id: 'emails-order', type: 'search',
                                  value: params.order || '',
                                  placeholder: 'DR-000012' }),
            msg = el('p', { 'class': 'error', role: 'alert', hidden: true }),
            list = el('div', { id: 'emails-list' }),
            q = ['limit=100'];

        root.appendChild(el('form', { 'class': 'filters', novalidate: true,
            onsubmit: function (ev) {
                var ref = order.value.trim();

                ev.preventDefault();
                if (ref && !/^DR-\d+$/i.test(ref)) {
                    msg.textContent = 'An order reference looks like '
                                      + 'DR-000012.';
                    msg.hidden = false;
                    order.focus();
                    return;
                }
                DR.go('emails', { status: status.value,
                                  order: ref.toUpperCase() });
            } }, [DR.field('Status', status), DR.field('Order', order),
                  el('div', { 'class': 'actions' }, el('button', {
                      type: 'submit', 'class': 'primary', text: 'Show' })),
                  msg]));
        root.appendChild(list);

        if (params.status) {
            q.push('status=' + encodeURIComponent(params.status));
        }
        if (params.order) {
            q.push('order=' + encodeURIComponent(params.order));
        }
        list.appendChild(el('p', { 'class': 'loading', text: 'Loading…' }));
        return DR.api('GET', '/admin/api/emails?' + q.join('&'))
            .then(function (d) {
                list.textContent = '';
                list.appendChild(DR.table(
                    ['Email', 'To', 'Order', 'Status', 'Attempts', 'When'],
                    (d.emails || []).map(function (m) {
                        return [m.subject || m.template, m.to,
                            m.order ? el('a', { href: '#order/'
                                + encodeURIComponent(m.order),
                                text: m.order }) : '—',
                            el('span', null, [el('span', { 'class': 'badge '
                                + m.status, text: m.status }),
                                m.error ? el('div', { 'class': 'error',
                                    text: m.error }) : null]),
                            String(m.attempts || 0),
                            DR.when(m.sent_at || m.created_at)];
                    }), 'No email.'));
            }, function (e) {
                list.textContent = '';
                list.appendChild(el('p', { 'class': 'error', role: 'alert',
                                           text: DR.error(e) }));
            });
    }

    DR.page('emails', { title: 'Emails', nav: 'Emails', render: render });
}());
