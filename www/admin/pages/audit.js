/*
 * darkroom console: the audit log (owner only), through the console API:
 * GET audit?account=&since=&limit=, and the CSV export GET audit.csv.
 */

(function () {
    'use strict';

    var h = DRP.h;

    function who(a) {
        if (a.actor) {
            return a.actor === 'token' ? 'token file' : a.actor;
        }
        if (a.account_email || (a.account && a.account.email)) {
            return a.account_email || a.account.email;
        }
        if (a.key_name || (a.key && a.key.name)) {
            return 'key ' + (a.key_name || a.key.name);
        }
        if (a.key_id || a.api_key_id) {
            return 'key ' + (a.key_id || a.api_key_id);
        }
        return a.account_id ? 'account ' + a.account_id : 'token file';
    }

    /* a row's detail (the reason of a booking's cancel, say): "k: v; ..." */
    function detail(d) {
        if (!d || typeof d !== 'object') {
            return null;
        }
        return Object.keys(d).map(function (k) {
            var v = d[k];
            return k + ': ' + (typeof v === 'string' ? v : JSON.stringify(v));
        }).join('; ');
    }

    function query(account, since, limit) {
        var q = [];

        if (account) {
            q.push('account=' + DRP.enc(account));
        }
        if (since) {
            q.push('since=' + DRP.enc(since));
        }
        if (limit) {
            q.push('limit=' + DRP.enc(limit));
        }
        return q.length ? '?' + q.join('&') : '';
    }

    function render(root) {
        var account = h('select', { name: 'account' },
                        h('option', { value: '', text: 'Everyone' })),
            since = h('input', { name: 'since', type: 'date' }),
            limit = h('input', { name: 'limit', inputmode: 'numeric',
                                 value: '100' }),
            csv = h('a', { id: 'audit-csv', href: DRP.CONSOLE + 'audit.csv',
                           download: '', text: 'Export CSV' }),
            out = h('div', { id: 'audit-rows' }),
            form;

        function sinceIso() {
            return since.value ? new Date(since.value + 'T00:00:00')
                                     .toISOString() : '';
        }

        function show() {
            var q = query(account.value, sinceIso(), limit.value.trim());

            csv.setAttribute('href', DRP.CONSOLE + 'audit.csv'
                             + query(account.value, sinceIso(), ''));
            return DR.api('GET', DRP.CONSOLE + 'audit' + q).then(
                function (r) {
                    out.textContent = '';
                    out.appendChild(DRP.table(['When', 'Who', 'Action',
                        'Path', 'Status', 'From', 'Detail'],
                        (r.audit || r.entries || []).map(function (a) {
                            return [DRP.when(a.at || a.created_at), who(a),
                                    a.method, a.path,
                                    a.status === undefined ? null
                                                           : String(a.status),
                                    a.ip || a.client || a.address,
                                    detail(a.detail)];
                        }), 'Nothing recorded.'));
                });
        }

        form = DRP.form({ id: 'audit-filter', 'class': 'filters' }, [
            DRP.field('Account', account),
            DRP.field('Since', since),
            DRP.field('At most', limit)
        ], 'Show', function () {
            var n = limit.value.trim();
            if (n !== '' && !(/^[1-9]\d{0,3}$/.test(n) && +n <= 1000)) {
                return 'At most: a whole number from 1 to 1000.';
            }
            return null;
        }, show);

        root.textContent = '';
        root.appendChild(form);
        root.appendChild(h('p', null, csv));
        root.appendChild(out);

        DR.api('GET', DRP.CONSOLE + 'accounts').then(function (r) {
            (r.accounts || []).forEach(function (a) {
                account.appendChild(h('option', { value: a.id,
                                                  text: a.email }));
            });
        }, function () { /* the filter stays "Everyone" */ });

        return show().catch(function (e) {
            DRP.say(form.status, DRP.error(e), true);
        });
    }

    DR.page('audit', { title: 'Audit log', nav: 'Audit', role: 'owner',
                       render: render });
}());
