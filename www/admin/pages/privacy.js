/*
 * darkroom console: privacy (owner only), through the shop's admin API
 * (docs/retention.md): the retention periods (GET, POST retention) and a
 * customer's data request, export (GET personal-data?email=, shown as a
 * summary and saved as a JSON file) and erase (POST personal-data/erase,
 * only once the box saying so is ticked).
 */

(function () {
    'use strict';

    var h = DRP.h,
        API = DRP.SHOP,
        FIELDS = [
            ['jobs_days', 'Done jobs', 7, 36500, 'days'],
            ['webhook_days', 'Stripe payloads', 1, 36500, 'days'],
            ['email_body_days', 'Email bodies', 1, 36500, 'days'],
            ['download_log_days', 'Gallery download log', 1, 36500, 'days'],
            ['gallery_files_days', 'Files of expired galleries', 1, 36500,
             'days after expiry'],
            ['money_years', 'Orders and bookings (then anonymised)', 1, 100,
             'years'],
            ['batch', 'Rows per batch', 10, 10000, 'rows']
        ];

    function retention(s, reload) {
        var inputs = {}, body;

        FIELDS.forEach(function (f) {
            inputs[f[0]] = h('input', { name: f[0], inputmode: 'numeric',
                                        value: String(s[f[0]]) });
        });

        function check() {
            var bad = null;

            body = {};
            FIELDS.forEach(function (f) {
                var v = inputs[f[0]].value.trim();

                if (bad) {
                    return;
                }
                if (!/^\d{1,6}$/.test(v) || +v < f[2] || +v > f[3]) {
                    bad = f[1] + ': a whole number from ' + f[2] + ' to '
                        + f[3] + '.';
                    return;
                }
                body[f[0]] = +v;
            });
            return bad;
        }

        return h('section', { id: 'privacy-retention' }, [
            h('h2', { text: 'Retention' }),
            h('p', { text: 'What is kept, and how long, before the'
                     + ' retention job (darkroom_retention) purges it.' }),
            DRP.form({ id: 'retention-form' }, FIELDS.map(function (f) {
                return DRP.field(f[1], inputs[f[0]], f[4]);
            }), 'Save retention', check, function () {
                return DR.api('POST', API + 'retention', body);
            }, function () {
                reload('Retention saved.');
            })]);
    }

    function emailOk(v) {
        return v.length <= 254 && /^[^@\s]+@[^@\s]+$/.test(v);
    }

    function summary(x) {
        return ['orders', 'galleries', 'gallery_visits', 'bookings',
                'emails'].map(function (k) {
            return (x[k] || []).length + ' ' + k.replace('_', ' ');
        }).join(', ');
    }

    function requests() {
        var email = h('input', { name: 'email', type: 'email' }),
            erasing = h('input', { name: 'erase_email', type: 'email' }),
            sure = h('input', { name: 'sure', type: 'checkbox' }),
            out = h('div', { id: 'privacy-export' }),
            exp, era;

        exp = DRP.form({ id: 'export-form' }, [
            DRP.field('Email', email, 'everything held about it, as JSON')
        ], 'Export', function () {
            return emailOk(email.value.trim()) ? null
                : 'Give the customer\'s email address.';
        }, function () {
            return DR.api('GET', API + 'personal-data?email='
                          + DRP.enc(email.value.trim()));
        }, function (x, status) {
            var file = new Blob([JSON.stringify(x, null, 2)],
                                { type: 'application/json' });

            out.textContent = '';
            out.appendChild(h('p', { id: 'export-summary',
                                     text: summary(x) }));
            out.appendChild(h('a', { id: 'export-file', download:
                                     'personal-data.json', text:
                                     'Save the export (JSON)',
                                     href: URL.createObjectURL(file) }));
            DRP.say(status, 'Exported.');
        });

        era = DRP.form({ id: 'erase-form' }, [
            DRP.field('Email', erasing, 'anonymised everywhere; orders'
                      + ' keep their amounts and invoice numbers'),
            DRP.field('I mean it', sure, 'this cannot be undone')
        ], 'Erase', function () {
            if (!emailOk(erasing.value.trim())) {
                return 'Give the customer\'s email address.';
            }
            return sure.checked ? null : 'Tick "I mean it" to erase.';
        }, function () {
            return DR.api('POST', API + 'personal-data/erase',
                          { email: erasing.value.trim() });
        }, function (r, status) {
            sure.checked = false;
            DRP.say(status, r.erased
                ? 'Erased: ' + r.orders + ' orders, ' + r.bookings
                  + ' bookings, ' + r.emails + ' emails, ' + r.galleries
                  + ' galleries, ' + r.gallery_visitors + ' visits.'
                : 'Nothing held about this address.');
        });

        return h('section', { id: 'privacy-requests' }, [
            h('h2', { text: 'A customer\'s data' }),
            exp, out, era]);
    }

    function render(root) {
        function load(said) {
            DRP.loading(root);
            return DR.api('GET', API + 'retention').then(function (s) {
                root.textContent = '';
                root.appendChild(retention(s, load));
                root.appendChild(requests());
                if (said) {
                    DRP.say(root.querySelector('#retention-form').status,
                            said);
                }
            }, function (e) {
                DRP.failed(root, e);
            });
        }

        return load();
    }

    DR.page('privacy', { title: 'Privacy', nav: 'Privacy', role: 'owner',
                         render: render });
}());
