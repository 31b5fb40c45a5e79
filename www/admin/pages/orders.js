/*
 * darkroom console: orders.  A search (reference, email, status, dates)
 * over the shop's admin API: GET /admin/api/orders?status=&email=&since=
 * &until=&limit=&offset=; a reference opens the order itself.
 */

(function () {
    'use strict';

    var el = DR.el,
        PAGE = 50,
        STATUSES = ['pending_payment', 'paid', 'needs_review',
                    'in_production', 'shipped', 'delivered', 'refunded',
                    'cancelled', 'expired'];

    function label(s) {
        return s.replace(/_/g, ' ');
    }

    function form(params) {
        var q = el('input', { id: 'orders-q', type: 'search', name: 'q',
                              value: params.q || '',
                              placeholder: 'DR-000012 or client@example.com',
                              autocomplete: 'off' }),
            status = el('select', { id: 'orders-status', name: 'status' },
                [el('option', { value: '', text: 'Any status' })].concat(
                    STATUSES.map(function (s) {
                        return el('option', { value: s, text: label(s),
                                              selected: params.status === s });
                    }))),
            since = el('input', { id: 'orders-since', type: 'date',
                                  value: params.since || '' }),
            until = el('input', { id: 'orders-until', type: 'date',
                                  value: params.until || '' }),
            msg = el('p', { id: 'orders-error', 'class': 'error',
                            role: 'alert', hidden: true });

        return el('form', { 'class': 'filters', id: 'orders-search',
                            role: 'search', novalidate: true,
            onsubmit: function (ev) {
                var v = q.value.trim(), s = since.value, u = until.value;

                ev.preventDefault();
                msg.hidden = true;
                if (s && u && u < s) {
                    msg.textContent = 'The end date is before the start date.';
                    msg.hidden = false;
                    until.focus();
                    return;
                }
                if (/^DR-?\d+$/i.test(v)) {
                    DR.go('order', v.toUpperCase().replace(/^DR-?/, 'DR-'));
                    return;
                }
                if (v && !/^[^\s@]+@[^\s@]+$/.test(v)) {
                    msg.textContent = 'Search by an order reference '
                        + '(DR-000012) or a complete email address.';
                    msg.hidden = false;
                    q.focus();
                    return;
                }
                DR.go('orders', { q: v, status: status.value, since: s,
                                  until: u });
            } }, [
            DR.field('Reference or email', q),
            DR.field('Status', status),
            DR.field('From', since),
            DR.field('To (included)', until),
            el('div', { 'class': 'actions' },
               el('button', { type: 'submit', 'class': 'primary',
                              id: 'orders-go', text: 'Search' })),
            msg]);
    }

    function nextDay(d) {
        var t = new Date(d + 'T00:00:00Z');

        t.setUTCDate(t.getUTCDate() + 1);
        return t.toISOString().slice(0, 10);
    }

    function query(params, offset) {
        var q = ['limit=' + PAGE, 'offset=' + offset];

        if (params.status) {
            q.push('status=' + encodeURIComponent(params.status));
        }
        if (params.q && params.q.indexOf('@') > 0) {
            q.push('email=' + encodeURIComponent(params.q));
        }
        if (params.since) {
            q.push('since=' + encodeURIComponent(params.since));
        }
        if (params.until) {
            q.push('until=' + encodeURIComponent(nextDay(params.until)));
        }
        return '/admin/api/orders?' + q.join('&');
    }

    function row(o) {
        return [
            el('a', { href: '#order/' + encodeURIComponent(o.order),
                      'class': 'order-link', text: o.order }),
            el('span', { 'class': 'badge ' + o.status,
                         text: label(o.status) }),
            o.email,
            el('span', { 'class': 'num' }, [
                DR.money(o.total, o.currency),
                o.amount_refunded
                    ? el('small', { 'class': 'muted', text: ' (refunded '
                          + DR.money(o.amount_refunded, o.currency) + ')' })
                    : null]),
            DR.when(o.created_at)];
    }

    function render(root, params) {
        var results = el('div', { id: 'orders-results', 'aria-live': 'polite' }),
            offset = Math.max(0, parseInt(params.offset, 10) || 0);

        root.appendChild(form(params));
        root.appendChild(results);
        results.appendChild(el('p', { 'class': 'loading', text: 'Loading…' }));

        return DR.api('GET', query(params, offset)).then(function (d) {
            var orders = d.orders || [], nav = el('div', { 'class': 'actions' });

            results.textContent = '';
            results.appendChild(DR.table(
                ['Order', 'Status', 'Email', 'Total', 'Created'],
                orders.map(row), 'No order matches.'));
            if (offset > 0) {
                nav.appendChild(el('button', { type: 'button', text: 'Newer',
                    onclick: function () {
                        DR.go('orders', Object.assign({}, params,
                              { offset: Math.max(0, offset - PAGE) }));
                    } }));
            }
            if (orders.length === PAGE) {
                nav.appendChild(el('button', { type: 'button', text: 'Older',
                    onclick: function () {
                        DR.go('orders', Object.assign({}, params,
                              { offset: offset + PAGE }));
                    } }));
            }
            results.appendChild(nav);
        }, function (e) {
            results.textContent = '';
            results.appendChild(el('p', { 'class': 'error', role: 'alert',
                                          text: DR.error(e) }));
        });
    }

    DR.page('orders', { title: 'Orders', nav: 'Orders', render: render });
}());
