/*
 * darkroom console: client galleries, through the gallery admin API
 * (darkroom_gallery_admin at /admin/api/galleries/):
 *
 *   #galleries        every gallery; create one
 *   #gallery/<slug>   its settings (password, PIN, expiry, download size,
 *                     price sheet and selection), revoke / rotate /
 *                     restore / send to the client, favourites, visitors
 *                     and their selections (Lightroom and CSV exports),
 *                     the download log and the orders bought from it
 *
 * "Send to client" is the API's deliver: it records the delivery and
 * emails the gallery to its client email (template gallery_delivered).
 * "Share by email" is the API's share: the link, with a message, to any
 * address (template gallery_shared).  Uploads: DRP.uploads (uploads.js).
 */

(function () {
    'use strict';

    var h = DRP.h, API = DRP.GALLERIES;

    var SLUG = /^[a-z0-9][a-z0-9-]{0,63}$/,
        EMAIL = /^[^@\s]+@[^@\s]+$/,
        SHARE_TO = /^[^@\s,;<>"()]+@[^@\s,;<>"()]+\.[^@\s,;<>"()]+$/;

    function pad(n) {
        return (n < 10 ? '0' : '') + n;
    }

    /* an ISO time for <input type="datetime-local"> (local time) */
    function localInput(t) {
        var d;

        if (!t) {
            return '';
        }
        d = new Date(t);
        return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-'
            + pad(d.getDate()) + 'T' + pad(d.getHours()) + ':'
            + pad(d.getMinutes());
    }

    function whole(v) {
        return /^\d+$/.test(v) ? parseInt(v, 10) : NaN;
    }

    function state(g) {
        if (g.revoked_at) {
            return 'revoked';
        }
        if (g.expires_at && new Date(g.expires_at) < new Date()) {
            return 'expired';
        }
        return 'open';
    }

    /* the shell's badge colours: open as "done", revoked as "cancelled" */
    function badge(g, id) {
        var s = state(g);

        return h('span', { 'class': 'badge ' + ({ open: 'done',
                 revoked: 'cancelled', expired: 'failed' })[s], id: id,
                 text: s });
    }

    /*
     * The settings form: for a new gallery (g null) or one to edit.  Only
     * what the form holds is sent; an empty password or PIN keeps it
     * unless "remove" is ticked.
     */
    function settingsForm(g, sheets, done, taken) {
        var f = {}, fields, isNew = !g;

        g = g || { downloads: true, download_size: 'original' };

        f.slug = h('input', { name: 'slug', value: g.slug || '',
                              autocomplete: 'off', required: true,
                              readonly: !isNew });
        f.title = h('input', { name: 'title', value: g.title || '' });
        f.email = h('input', { name: 'client_email', type: 'email',
                               value: g.client_email || '' });
        f.password = h('input', { name: 'password', type: 'password',
                                  autocomplete: 'new-password' });
        f.pin = h('input', { name: 'pin', inputmode: 'numeric',
                             autocomplete: 'off' });
        f.nopass = h('input', { type: 'checkbox', name: 'clear_password' });
        f.nopin = h('input', { type: 'checkbox', name: 'clear_pin' });
        f.expires = h('input', { name: 'expires_at', type: 'datetime-local',
                                 value: localInput(g.expires_at) });
        f.downloads = h('input', { type: 'checkbox', name: 'downloads',
                                   checked: g.downloads !== false });
        f.size = h('select', { name: 'download_size' }, [
            h('option', { value: 'original', text: 'Original files' }),
            h('option', { value: 'web', text: 'Web size' })]);
        f.size.value = g.download_size || 'original';
        f.sheet = h('select', { name: 'price_sheet' },
            [h('option', { value: '', text: 'Not for sale' })].concat(
                sheets.map(function (s) {
                    return h('option', { value: s.id,
                                         text: s.name + ' (' + s.id + ')' });
                })));
        f.sheet.value = g.price_sheet || '';
        f.currency = h('input', { name: 'currency', maxlength: 3,
                                  value: g.currency || '',
                                  placeholder: 'the shop\'s' });
        f.limit = h('input', { name: 'selection_limit', inputmode: 'numeric',
                               value: g.selection_limit || '' });
        f.extra = h('input', { name: 'extra_photo_amount',
                               inputmode: 'numeric',
                               value: g.extra_photo_amount || '' });
        f.dlimit = h('input', { name: 'visitor_download_limit',
                                inputmode: 'numeric',
                                value: g.visitor_download_limit || '' });

        fields = [
            DRP.field('Slug (its address)', f.slug,
                      isNew ? 'Lower-case letters, digits and dashes.' : null),
            DRP.field('Title', f.title),
            DRP.field('Client email', f.email),
            DRP.field(g.has_password ? 'New password (one is set)'
                                     : 'Password', f.password,
                      'At least 4 characters; empty: '
                      + (isNew ? 'none.' : 'keep.')),
            isNew ? null : h('label', { 'class': 'check' },
                             [f.nopass, ' Remove the password']),
            DRP.field(g.has_pin ? 'New download PIN (one is set)'
                                : 'Download PIN', f.pin,
                      'At least 4 characters.'),
            isNew ? null : h('label', { 'class': 'check' },
                             [f.nopin, ' Remove the PIN']),
            DRP.field('Expires', f.expires, 'Empty: never.'),
            h('label', { 'class': 'check' },
              [f.downloads, ' Clients may download']),
            DRP.field('Download size', f.size),
            h('fieldset', null, [
                h('legend', { text: 'Selling and proofing' }),
                DRP.field('Price sheet', f.sheet),
                DRP.field('Currency', f.currency, 'e.g. GBP; empty: '
                          + 'the shop\'s.'),
                DRP.field('Photos in the selection', f.limit,
                          'A whole number; empty: no limit.'),
                DRP.field('Price of each extra photo (minor units)', f.extra,
                          'e.g. 500 for £5.00; empty: none.'),
                DRP.field('Downloads per visitor', f.dlimit,
                          'A whole number; empty: no limit.')
            ])
        ].filter(Boolean);

        function body() {
            var b = {}, v;

            if (isNew) {
                b.slug = f.slug.value.trim();
            }
            b.title = f.title.value.trim();
            v = f.email.value.trim();
            b.client_email = v === '' ? null : v;
            if (f.password.value !== '') {
                b.password = f.password.value;
            } else if (f.nopass.checked) {
                b.password = null;
            }
            if (f.pin.value !== '') {
                b.pin = f.pin.value;
            } else if (f.nopin.checked) {
                b.pin = null;
            }
            b.expires_at = f.expires.value
                ? new Date(f.expires.value).toISOString() : null;
            b.downloads = f.downloads.checked;
            b.download_size = f.size.value;
            b.price_sheet = f.sheet.value || null;
            v = f.currency.value.trim();
            b.currency = v === '' ? null : v;
            b.selection_limit = f.limit.value.trim() === ''
                ? null : whole(f.limit.value.trim());
            b.extra_photo_amount = f.extra.value.trim() === ''
                ? null : whole(f.extra.value.trim());
            b.visitor_download_limit = f.dlimit.value.trim() === ''
                ? null : whole(f.dlimit.value.trim());
            return b;
        }

        function check() {
            var b = body();

            if (isNew && !SLUG.test(b.slug)) {
                return 'The slug must be 1 to 64 lower-case letters, digits '
                    + 'or dashes, starting with a letter or digit.';
            }
            /* POST / with a slug in use would change that gallery */
            if (isNew && (taken || []).indexOf(b.slug) >= 0) {
                return 'A gallery "' + b.slug + '" exists already: open it '
                    + 'to change it.';
            }
            if (b.client_email !== null && !EMAIL.test(b.client_email)) {
                return 'The client email is not an email address.';
            }
            if (typeof b.password === 'string'
                && (b.password.length < 4 || b.password.length > 128))
            {
                return 'The password must be 4 to 128 characters.';
            }
            if (typeof b.pin === 'string'
                && (b.pin.length < 4 || b.pin.length > 128))
            {
                return 'The PIN must be 4 to 128 characters.';
            }
            if (f.expires.value && isNaN(new Date(f.expires.value).getTime()))
            {
                return 'The expiry is not a date and time.';
            }
            if (b.currency !== null && !/^[A-Z]{3}$/.test(b.currency)) {
                return 'The currency is a three-letter code in capitals '
                    + '(GBP), or empty.';
            }
            if (Number.isNaN(b.selection_limit) || b.selection_limit === 0) {
                return 'Photos in the selection: a whole number from 1, '
                    + 'or empty.';
            }
            if (Number.isNaN(b.extra_photo_amount)
                || b.extra_photo_amount === 0)
            {
                return 'Price of each extra photo: a whole number of minor '
                    + 'units from 1, or empty.';
            }
            if (Number.isNaN(b.visitor_download_limit)
                || b.visitor_download_limit === 0)
            {
                return 'Downloads per visitor: a whole number from 1, '
                    + 'or empty.';
            }
            return null;
        }

        function run() {
            var b = body();
            return DR.api('POST', isNew ? API : API + DRP.enc(g.slug), b);
        }

        return DRP.form({ 'class': 'gallery-form', id: isNew
                              ? 'gallery-new' : 'gallery-settings' },
                        fields, isNew ? 'Create the gallery' : 'Save',
                        check, run, function (r, status) {
                            f.password.value = '';
                            f.pin.value = '';
                            done(r, status);
                        });
    }

    function sheetsOf() {
        return DR.api('GET', DRP.SHOP + 'price-sheets').then(function (r) {
            return r.price_sheets || [];
        }, function () {
            return [];
        });
    }

    /* #galleries */
    function renderList(root) {
        DRP.loading(root);

        return Promise.all([DR.api('GET', API), sheetsOf()]).then(
            function (r) {
                var list = r[0].galleries || [], rows, form;

                rows = list.map(function (g) {
                    return [
                        h('a', { href: '#gallery/' + DRP.enc(g.slug),
                                 text: g.title || g.slug }),
                        g.slug,
                        badge(g),
                        g.expires_at ? DRP.when(g.expires_at) : 'never',
                        String(g.photos),
                        g.has_password ? 'yes' : 'no'
                    ];
                });

                form = settingsForm(null, r[1], function (res) {
                    location.hash = '#gallery/'
                        + DRP.enc(res.gallery.slug);
                }, list.map(function (g) { return g.slug; }));

                root.textContent = '';
                root.appendChild(h('section', null, [
                    DRP.table(['Gallery', 'Slug', 'State', 'Expires',
                               'Photos', 'Password'], rows,
                              'No gallery yet.')
                ]));
                root.appendChild(h('section', null, [
                    h('h2', { text: 'New gallery' }),
                    h('p', { 'class': 'hint', text: 'Create it, then upload '
                             + 'its photos on its page.' }),
                    form
                ]));

            }, function (e) {
                DRP.failed(root, e);
            });
    }

    function actions(g, reload) {
        var status = DRP.status(), box = h('div', { 'class': 'actions' });

        function act(name, label, warn) {
            var b = h('button', { type: 'button', 'data-action': name,
                                  text: label });

            b.addEventListener('click', function () {
                var yes, no, ask;

                yes = h('button', { type: 'button', 'class': 'danger',
                                    'data-confirm': name,
                                    text: 'Yes, ' + label.toLowerCase() });
                no = h('button', { type: 'button', text: 'Cancel' });
                ask = h('div', { 'class': 'confirm', role: 'alertdialog' },
                        [h('p', { text: warn }), yes, no]);
                box.parentNode.insertBefore(ask, box.nextSibling);
                yes.focus();

                no.addEventListener('click', function () {
                    ask.remove();
                    b.focus();
                });
                yes.addEventListener('click', function () {
                    yes.disabled = true;
                    DR.api('POST', API + DRP.enc(g.slug) + '/' + name, {})
                        .then(function () {
                            ask.remove();
                            reload(label + ': done.');
                        }, function (e) {
                            ask.remove();
                            DRP.say(status, DRP.error(e), true);
                        });
                });
            });
            return b;
        }

        if (g.revoked_at) {
            box.appendChild(act('restore', 'Restore',
                'The gallery opens again, with new links only.'));
        } else {
            box.appendChild(act('revoke', 'Revoke',
                'Every link, cookie and ZIP of this gallery stops at once.'));
            box.appendChild(act('rotate', 'Rotate links',
                'The links you sent stop working; new links replace them.'));
        }
        box.appendChild(act('deliver', 'Send to client',
            'The client (' + (g.client_email || 'no email set')
            + ') is emailed a link to the gallery.'));

        return h('div', null, [box, status]);
    }

    /* the photos: name, pixels, size; redrawn alone after an import */
    function photosTable(photos) {
        return DRP.table(['Photo', 'Pixels', 'Bytes'],
            photos.slice(0, 500).map(function (p) {
                return [p.name, p.width ? p.width + ' × ' + p.height : '—',
                        String(p.bytes)];
            }), 'No photo yet: upload some above.');
    }

    function refreshPhotos(slug) {
        return DR.api('GET', API + DRP.enc(slug)).then(function (d) {
            var box = document.getElementById('gallery-photo-list');

            if (box && box.getAttribute('data-slug') === slug) {
                box.textContent = '';
                box.appendChild(photosTable(d.photos || []));
                box.setAttribute('data-count', (d.photos || []).length);
            }
        }, function () {
            return null;
        });
    }

    /* the link, and a message, to anyone: one email job per share */
    function shareSection(g) {
        var email, message, form, s = state(g);

        email = h('input', { name: 'email', type: 'email',
                             autocomplete: 'off', required: true });
        message = h('textarea', { name: 'message', rows: 4,
                                  maxlength: 1000 });

        form = DRP.form({ id: 'gallery-share-form' }, [
            DRP.field('Email address', email, 'One address: a friend, a '
                      + 'guest, a second client.'),
            DRP.field('Message (optional)', message,
                      'Up to 1000 characters, sent above the link.')
        ], 'Share by email', function () {
            var to = email.value.trim();

            if (!SHARE_TO.test(to) || to.length > 254) {
                return 'Give one email address, like name@example.com.';
            }
            if (message.value.length > 1000) {
                return 'The message is ' + message.value.length
                    + ' characters long: at most 1000.';
            }
            return null;
        }, function () {
            return DR.api('POST', API + DRP.enc(g.slug) + '/share', {
                email: email.value.trim(),
                message: message.value.trim() || null });
        }, function (r, status) {
            email.value = '';
            message.value = '';
            DRP.say(status, 'Shared with ' + r.shared.email
                    + ': the email is on its way.');
        });

        return h('section', { id: 'gallery-share' }, [
            h('h2', { text: 'Share by email' }),
            s === 'open' ? null : h('p', { 'class': 'warning', text:
                'This gallery is ' + s + ': its link does not open, so it '
                + 'cannot be shared until you ' + (s === 'revoked'
                    ? 'restore it.' : 'give it a later expiry.') }),
            form
        ]);
    }

    function visitorsSection(slug, v) {
        var sel = v.selection || {}, out = [];

        out.push(h('p', null, 'Selection: ' + (sel.limit
            ? sel.limit + ' photos' : 'no limit') + (sel.extra_photo_amount
            ? ', extra photos ' + DRP.money(sel.extra_photo_amount,
                                             sel.currency || '')
            : '')));

        if (!(v.visitors || []).length) {
            out.push(h('p', { 'class': 'empty', text: 'No visitor yet.' }));
        }

        (v.visitors || []).forEach(function (vis) {
            var lists = (vis.lists || []).map(function (l) {
                var base = API + DRP.enc(slug) + '/lists/' + l.id
                           + '/export?format=';

                return h('div', { 'class': 'list', 'data-list': l.id }, [
                    h('h4', null, [l.name + ' (' + l.photos.length
                        + ' photos)', l.submitted_at
                        ? ' — submitted ' + DRP.when(l.submitted_at) : '',
                        l.order ? ' — order ' : '',
                        l.order ? h('a', { href: '#order/'
                                           + DRP.enc(l.order),
                                           text: l.order }) : null]),
                    h('p', { 'class': 'photos', text: l.photos.map(
                        function (p) {
                            return p.name + (p.note ? ' (' + p.note + ')'
                                                    : '');
                        }).join(', ') || 'empty' }),
                    h('p', null, [
                        h('a', { href: base + 'lightroom',
                                 text: 'Lightroom filter' }), ' · ',
                        h('a', { href: base + 'csv', download: '',
                                 text: 'CSV' })])
                ]);
            });

            out.push(h('article', { 'class': 'visitor',
                                    'data-visitor': vis.id }, [
                h('h3', { text: (vis.name || 'Visitor') + ' <'
                                + (vis.email || '?') + '>' }),
                h('p', { 'class': 'hint', text: 'Downloads '
                    + vis.downloads + (vis.download_limit
                        ? ' of ' + vis.download_limit : '')
                    + ' · last seen ' + DRP.when(vis.last_seen_at) })
            ].concat(lists)));
        });

        return h('section', { id: 'gallery-visitors' },
                 [h('h2', { text: 'Visitors and selections' })].concat(out));
    }

    function detail(root, data, sheets, v, dl, reload, note) {
        var g = data.gallery, favs, form;

        favs = (data.photos || []).filter(function (p) {
            return p.favourite;
        });

        form = settingsForm(g, sheets, function () {
            reload('Saved.');
        });

        root.textContent = '';
        root.appendChild(h('p', null, h('a', { href: '#galleries',
                                               text: '← Galleries' })));
        root.appendChild(h('h2', null, [g.title || g.slug, ' ',
            badge(g, 'gallery-state')]));
        if (note) {
            root.appendChild(h('p', { 'class': 'form-status ok',
                                      role: 'status', text: note }));
        }
        root.appendChild(h('p', { 'class': 'hint', text: g.photos
            + ' photos · client link /g/' + g.slug + ' · delivered '
            + DRP.when(g.delivered_at) }));
        (data.warnings || []).forEach(function (w) {
            root.appendChild(h('p', { 'class': 'warning', text: w.message }));
        });
        root.appendChild(actions(g, reload));
        root.appendChild(shareSection(g));
        root.appendChild(DRP.uploads(g.slug, function () {
            refreshPhotos(g.slug);
        }));
        root.appendChild(h('section', { id: 'gallery-photos' }, [
            h('h2', { text: 'Photos' }),
            h('div', { id: 'gallery-photo-list', 'data-slug': g.slug,
                       'data-count': (data.photos || []).length },
              photosTable(data.photos || []))]));
        root.appendChild(h('section', null,
                           [h('h2', { text: 'Settings' }), form]));
        root.appendChild(h('section', { id: 'gallery-favourites' }, [
            h('h2', { text: 'Favourites' }),
            favs.length ? h('p', { text: favs.map(function (p) {
                return p.name;
            }).join(', ') }) : h('p', { 'class': 'empty',
                                        text: 'No favourite yet.' })]));
        root.appendChild(visitorsSection(g.slug, v));
        root.appendChild(h('section', { id: 'gallery-orders' }, [
            h('h2', { text: 'Orders' }),
            DRP.table(['Order', 'Status', 'Total', 'Date'],
                (data.orders || []).map(function (o) {
                    return [h('a', { href: '#order/' + DRP.enc(o.ref),
                                     text: o.ref }), o.status,
                            DRP.money(o.total, o.currency),
                            DRP.when(o.created_at)];
                }), 'No order from this gallery.')]));
        root.appendChild(h('section', { id: 'gallery-downloads' }, [
            h('h2', { text: 'Download log' }),
            DRP.table(['When', 'File', 'Status', 'Bytes', 'Client',
                       'Visitor'],
                (dl.downloads || []).slice(0, 200).map(function (d) {
                    return [DRP.when(d.at), d.path, String(d.status),
                            String(d.bytes), d.client,
                            d.visitor_id === null ? '—'
                                                  : String(d.visitor_id)];
                }), 'No download yet.')]));
    }

    /* #gallery/<slug> */
    function renderOne(root, params) {
        var slug = DRP.param(params);

        function load(note) {
            var base = API + DRP.enc(slug);

            DRP.loading(root);
            return Promise.all([DR.api('GET', base), sheetsOf(),
                                DR.api('GET', base + '/visitors'),
                                DR.api('GET', base + '/downloads')])
                .then(function (r) {
                    detail(root, r[0], r[1], r[2], r[3], load, note);
                }, function (e) {
                    DRP.failed(root, e);
                });
        }

        if (!slug) {
            DRP.failed(root, 'Which gallery?');
            return;
        }
        return load();
    }

    DR.page('galleries', { title: 'Galleries', nav: 'Galleries',
                           render: renderList });
    DR.page('gallery', { title: 'Gallery', render: renderOne });
}());
