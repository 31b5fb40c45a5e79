/*
 * darkroom console: the dashboard.  GET dashboard (the console API):
 * today's and this month's orders and revenue per currency, and the
 * attention queue, each count linking to the list that holds it.
 */

(function () {
    'use strict';

    var el = DR.el;

    var QUEUE = [
        ['review', 'Orders in review', 'orders', { status: 'needs_review' }],
        ['lab_attention', 'Lab orders needing attention', 'fulfilment',
         { status: 'attention' }],
        ['lab_stuck', 'Lab orders stuck', 'fulfilment', { status: 'stuck' }],
        ['dead_jobs', 'Dead jobs', 'jobs', { state: 'dead' }],
        ['failed_emails', 'Failed emails', 'emails', { status: 'failed' }],
        ['galleries_expiring', 'Galleries expiring soon', 'galleries', null]
    ];

    function link(page, params) {
        var q = [], k;

        for (k in params || {}) {
            q.push(encodeURIComponent(k) + '=' + encodeURIComponent(params[k]));
        }
        return '#' + page + (q.length ? '?' + q.join('&') : '');
    }

    function revenue(title, id, amounts, count) {
        var curs = Object.keys(amounts || {}).sort();

        return el('div', { 'class': 'card', id: id }, [
            el('h2', { text: title }),
            curs.length
                ? curs.map(function (c) {
                      return el('span', { 'class': 'big money',
                                          'data-currency': c,
                                          text: DR.money(amounts[c], c) });
                  })
                : el('span', { 'class': 'big', text: DR.money(0, 'GBP') }),
            el('span', { 'class': 'muted orders-count',
                         text: (count || 0) + ' order'
                               + (count === 1 ? '' : 's') })]);
    }

    function render(root) {
        root.appendChild(el('p', { 'class': 'loading', text: 'Loading…' }));
        return DR.api('GET', 'dashboard').then(function (d) {
            var att = d.attention || {}, rev = d.revenue || {},
                n = d.orders || {}, queue;

            root.textContent = '';
            root.appendChild(el('h2', { text: 'Revenue' }));
            root.appendChild(el('div', { 'class': 'cards' }, [
                revenue('Today', 'revenue-today', rev.today, n.today),
                revenue('This month', 'revenue-month', rev.month, n.month)]));

            root.appendChild(el('h2', { text: 'Needs attention' }));
            queue = el('ul', { 'class': 'cards plain', id: 'attention' },
                QUEUE.map(function (q) {
                    var count = att[q[0]] || 0,
                        label = el('span', null, [
                            el('span', { 'class': 'big', text: count }),
                            q[1]]);

                    return el('li', { 'class': 'card '
                                      + (count ? 'attention' : 'calm'),
                                      'data-kind': q[0] },
                        DR.has(q[2])
                            ? el('a', { href: link(q[2], q[3]) }, label)
                            : label);
                }));
            root.appendChild(queue);
        });
    }

    DR.page('dashboard', { title: 'Dashboard', nav: 'Dashboard',
                           render: render });
}());
