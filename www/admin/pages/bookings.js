/*
 * darkroom console: bookings (issue 16), through the bookings admin API
 * (/admin/api/bookings/, darkroom_bookings_admin):
 *
 *   #bookings                the week's bookings by day (?week=YYYY-MM-DD,
 *                            its Monday), prev/next week
 *   #bookings?view=types     session types, and the form to add or edit one
 *   #bookings?view=hours     the weekly hours (one line a day)
 *   #bookings?view=days      the blackout days (exceptions)
 *   #booking/<ref>           a booking, its events, Cancel with a reason,
 *                            the balance's link mailed on demand
 *
 * Times are shown in the photographer's time zone (the API's local_*).
 * A confirmed booking has Reschedule: a new day and time on that clock, a
 * reason, whether to email the client, and "force" (outside the hours).
 */

(function () {
    'use strict';

    var h = DRP.h, API = '/admin/api/bookings/',
        DAYS = ['Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday',
                'Saturday', 'Sunday'],
        VIEWS = [['week', 'Week'], ['types', 'Session types'],
                 ['hours', 'Weekly hours'], ['days', 'Blackout days']];

    function pad(n) {
        return (n < 10 ? '0' : '') + n;
    }

    /* dates as YYYY-MM-DD, computed in UTC so no zone shifts them */
    function ymd(d) {
        return d.getUTCFullYear() + '-' + pad(d.getUTCMonth() + 1) + '-'
            + pad(d.getUTCDate());
    }

    function parseDay(s) {
        var m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(s || '');
        return m ? new Date(Date.UTC(+m[1], +m[2] - 1, +m[3])) : null;
    }

    function addDays(d, n) {
        return new Date(d.getTime() + n * 86400000);
    }

    function monday(d) {
        return addDays(d, -((d.getUTCDay() + 6) % 7));
    }

    function today() {
        var n = new Date();
        return new Date(Date.UTC(n.getFullYear(), n.getMonth(),
                                 n.getDate()));
    }

    function hm(local) {
        return local ? local.slice(11, 16) : '';
    }

    /* "150.00" in minor units, or null */
    function minor(s) {
        var m = /^\s*(\d{1,9})(?:\.(\d{1,2}))?\s*$/.exec(s || '');
        if (!m) {
            return null;
        }
        return +m[1] * 100 + (m[2] ? +(m[2] + '0').slice(0, 2) : 0);
    }

    function major(n) {
        return (n === null || n === undefined) ? '' : (n / 100).toFixed(2);
    }

    function tabs(here) {
        return h('nav', { 'class': 'tabs', 'aria-label': 'Bookings' },
            h('ul', null, VIEWS.map(function (v) {
                return h('li', null, h('a', {
                    href: '#bookings' + (v[0] === 'week' ? ''
                                         : '?view=' + v[0]),
                    'aria-current': v[0] === here ? 'page' : null,
                    text: v[1] }));
            })));
    }

    function photographers() {
        return DR.api('GET', API + 'photographers').then(function (r) {
            return r.photographers || [];
        });
    }

    /* ------------------------------------------------------------ week */

    function dayBlock(day, list) {
        var d = parseDay(day), label;

        label = DAYS[(d.getUTCDay() + 6) % 7] + ' ' + day;
        return h('section', { 'class': 'day', 'data-day': day }, [
            h('h3', { text: label }),
            list.length ? h('ul', { 'class': 'bookings' }, list.map(
                function (b) {
                    return h('li', { 'data-ref': b.ref,
                                     'data-state': b.state }, [
                        h('a', { href: '#booking/' + DRP.enc(b.ref),
                                 text: hm(b.local_start) + '–'
                                     + hm(b.local_end) + ' '
                                     + b.client_name }),
                        ' ' + b.type.name + ' · ',
                        h('span', { 'class': 'state state-' + b.state,
                                    text: b.state }),
                        ' · ' + b.ref]);
                }))
                        : h('p', { 'class': 'empty', text: 'No booking.' })]);
    }

    function week(root, params) {
        var start = monday(parseDay(params.week) || today()),
            end = addDays(start, 6), url;

        url = API + 'bookings?from=' + ymd(start) + '&to=' + ymd(end);
        return DR.api('GET', url).then(function (r) {
            var byDay = {}, i, day, blocks = [], zone = '';

            (r.bookings || []).forEach(function (b) {
                (byDay[b.local_day] = byDay[b.local_day] || []).push(b);
                zone = b.photographer.time_zone;
            });
            for (i = 0; i < 7; i++) {
                day = ymd(addDays(start, i));
                blocks.push(dayBlock(day, byDay[day] || []));
            }
            root.textContent = '';
            root.appendChild(tabs('week'));
            root.appendChild(h('div', { 'class': 'actions week-nav' }, [
                h('button', { type: 'button', id: 'week-prev',
                    text: '← Previous week', onclick: function () {
                        DR.go('bookings', { week: ymd(addDays(start, -7)) });
                    } }),
                h('strong', { id: 'week-label', text: 'Week of '
                              + ymd(start) }),
                h('button', { type: 'button', id: 'week-next',
                    text: 'Next week →', onclick: function () {
                        DR.go('bookings', { week: ymd(addDays(start, 7)) });
                    } })]));
            if (zone) {
                root.appendChild(h('p', { 'class': 'hint',
                                          text: 'Times in ' + zone + '.' }));
            }
            blocks.forEach(function (b) {
                root.appendChild(b);
            });
        });
    }

    /* ----------------------------------------------------------- types */

    function input(name, value, attrs) {
        var a = { name: name, id: 'type-' + name, value: value };
        Object.keys(attrs || {}).forEach(function (k) {
            a[k] = attrs[k];
        });
        return h('input', a);
    }

    function typeForm(t, owners, reload) {
        var isNew = !t, f = {}, deposit, q;

        t = t || { duration_minutes: 60, buffer_before_minutes: 0,
                   buffer_after_minutes: 0, slot_step_minutes: 30,
                   currency: 'GBP', deposit_kind: 'percent',
                   deposit_percent: 30, refund_hours: 48,
                   reschedule_hours: 24, balance_due_hours: 72,
                   active: true, position: 0,
                   questions: [], location: '', description: '' };

        f.id = input('id', isNew ? '' : t.id, { autocomplete: 'off',
                     readonly: !isNew });
        f.photographer = h('select', { name: 'photographer',
                                       id: 'type-photographer' },
            owners.map(function (p) {
                return h('option', { value: p.id, text: p.name,
                                     selected: p.id === t.photographer });
            }));
        f.name = input('name', t.name || '');
        f.description = h('textarea', { name: 'description',
                                        id: 'type-description', rows: 2,
                                        value: t.description });
        f.duration = input('duration', t.duration_minutes,
                           { inputmode: 'numeric' });
        f.before = input('before', t.buffer_before_minutes,
                         { inputmode: 'numeric' });
        f.after = input('after', t.buffer_after_minutes,
                        { inputmode: 'numeric' });
        f.step = input('step', t.slot_step_minutes, { inputmode: 'numeric' });
        f.currency = input('currency', t.currency, { maxlength: 3 });
        f.price = input('price', major(t.price), { inputmode: 'decimal' });
        f.kind = h('select', { name: 'deposit_kind', id: 'type-deposit-kind' },
            [['percent', 'A percentage'], ['fixed', 'A fixed amount']].map(
                function (o) {
                    return h('option', { value: o[0], text: o[1],
                                         selected: o[0] === t.deposit_kind });
                }));
        deposit = t.deposit_kind === 'fixed' ? major(t.deposit_amount)
                                             : String(+t.deposit_percent);
        f.deposit = input('deposit', deposit, { inputmode: 'decimal' });
        f.location = input('location', t.location);
        f.online = h('input', { type: 'checkbox', name: 'online',
                                id: 'type-online', checked: t.online });
        f.refund = input('refund', t.refund_hours, { inputmode: 'numeric' });
        f.reschedule = input('reschedule', t.reschedule_hours,
                             { inputmode: 'numeric' });
        f.balance = input('balance-due', t.balance_due_hours === null
                          ? '' : t.balance_due_hours,
                          { inputmode: 'numeric' });
        f.active = h('input', { type: 'checkbox', name: 'active',
                                id: 'type-active', checked: t.active });
        f.position = input('position', t.position, { inputmode: 'numeric' });
        f.questions = h('textarea', { name: 'questions',
            id: 'type-questions', rows: 4,
            value: JSON.stringify(t.questions || [], null, 1) });

        function int(el) {
            return /^\s*-?\d+\s*$/.test(el.value) ? parseInt(el.value, 10)
                                                 : el.value;
        }

        function body() {
            var b = {
                photographer: f.photographer.value, name: f.name.value,
                description: f.description.value,
                duration_minutes: int(f.duration),
                buffer_before_minutes: int(f.before),
                buffer_after_minutes: int(f.after),
                slot_step_minutes: int(f.step),
                currency: f.currency.value.trim().toUpperCase(),
                price: minor(f.price.value), deposit_kind: f.kind.value,
                location: f.location.value, online: f.online.checked,
                refund_hours: int(f.refund),
                reschedule_hours: int(f.reschedule),
                balance_due_hours: f.balance.value.trim() === ''
                                   ? null : int(f.balance),
                active: f.active.checked, position: int(f.position),
                questions: q };
            if (f.kind.value === 'fixed') {
                b.deposit_amount = minor(f.deposit.value);
            } else {
                b.deposit_percent = int(f.deposit);
            }
            return b;
        }

        return DRP.form({ id: 'type-form' }, [
            h('h2', { text: isNew ? 'New session type'
                                  : 'Edit "' + t.name + '"' }),
            DRP.field('Id', f.id, 'a-z, 0-9 and "-", e.g. "portrait".'),
            DRP.field('Photographer', f.photographer),
            DRP.field('Name', f.name),
            DRP.field('Description', f.description),
            DRP.field('Duration (minutes)', f.duration),
            DRP.field('Buffer before (minutes)', f.before),
            DRP.field('Buffer after (minutes)', f.after),
            DRP.field('Slots every (minutes)', f.step),
            DRP.field('Currency', f.currency, 'e.g. GBP'),
            DRP.field('Price', f.price, 'e.g. 150.00'),
            DRP.field('Deposit', f.kind),
            DRP.field('Deposit amount or percent', f.deposit,
                      '30 (percent) or 75.00 (fixed)'),
            DRP.field('Location', f.location),
            h('label', { 'class': 'check' }, [f.online, ' Online (a call)']),
            DRP.field('Refund if cancelled (hours before)', f.refund),
            DRP.field('Reschedule up to (hours before)', f.reschedule),
            DRP.field('Email the balance link (hours before)', f.balance,
                      'e.g. 72; empty: never (the owner sends it)'),
            h('label', { 'class': 'check' }, [f.active, ' Bookable']),
            DRP.field('Position', f.position),
            DRP.field('Questions (JSON)', f.questions,
                      '[{"id":"people","label":"How many?","kind":"text",'
                      + '"required":true}]')
        ], isNew ? 'Create the type' : 'Save the type', function () {
            if (!/^[a-z0-9][a-z0-9-]{0,63}$/.test(f.id.value)) {
                return 'The id is a-z, 0-9 and "-".';
            }
            if (minor(f.price.value) === null) {
                return 'The price is an amount such as 150.00.';
            }
            if (f.kind.value === 'fixed' && minor(f.deposit.value) === null) {
                return 'The deposit is an amount such as 75.00.';
            }
            try {
                q = JSON.parse(f.questions.value || '[]');
            } catch (e) {
                return 'The questions are not valid JSON.';
            }
            return null;
        }, function () {
            return DR.api('POST', API + 'types/' + DRP.enc(f.id.value),
                          body());
        }, function (r) {
            reload('Session type "' + r.type.name + '" saved.');
        });
    }

    function types(root) {
        return Promise.all([photographers(),
                            DR.api('GET', API + 'types')]).then(function (v) {
            var owners = v[0], list = v[1].types || [], status = DRP.status(),
                formBox = h('div', { id: 'type-form-box' });

            function reload(note) {
                return render(root, { view: 'types' }).then(function () {
                    DR.notice(note);
                });
            }

            function edit(t) {
                formBox.textContent = '';
                formBox.appendChild(typeForm(t, owners, reload));
                formBox.querySelector('input:not([readonly])').focus();
            }

            root.textContent = '';
            root.appendChild(tabs('types'));
            root.appendChild(status);
            root.appendChild(DRP.table(['Name', 'Duration', 'Price',
                                        'Deposit', 'Bookable', ''],
                list.map(function (t) {
                    return [t.name, t.duration_minutes + ' min',
                            DRP.money(t.price, t.currency),
                            DRP.money(t.deposit, t.currency)
                                + (t.deposit_kind === 'percent'
                                   ? ' (' + (+t.deposit_percent) + '%)' : ''),
                            t.active ? 'yes' : 'no',
                            h('button', { type: 'button', 'data-type': t.id,
                                          text: 'Edit',
                                          onclick: function () {
                                              edit(t);
                                          } })];
                }), 'No session type yet.'));
            if (!owners.length) {
                root.appendChild(photographerForm(reload));
                return;
            }
            root.appendChild(h('div', { 'class': 'actions' },
                h('button', { type: 'button', id: 'type-new',
                              text: 'New session type',
                              onclick: function () {
                                  edit(null);
                              } })));
            root.appendChild(formBox);
        });
    }

    function photographerForm(reload) {
        var f = {
            id: h('input', { name: 'id', id: 'ph-id', autocomplete: 'off' }),
            name: h('input', { name: 'name', id: 'ph-name' }),
            email: h('input', { name: 'email', id: 'ph-email',
                                type: 'email' }),
            zone: h('input', { name: 'time_zone', id: 'ph-zone',
                value: Intl.DateTimeFormat().resolvedOptions().timeZone })
        };

        return DRP.form({ id: 'photographer-form' }, [
            h('h2', { text: 'The photographer' }),
            DRP.field('Id', f.id, 'a-z, 0-9 and "-"'),
            DRP.field('Name', f.name), DRP.field('Email', f.email),
            DRP.field('Time zone', f.zone, 'e.g. Europe/London')
        ], 'Save', null, function () {
            return DR.api('POST', API + 'photographers/'
                          + DRP.enc(f.id.value),
                          { name: f.name.value, email: f.email.value,
                            time_zone: f.zone.value });
        }, function () {
            reload('Photographer saved.');
        });
    }

    /* ----------------------------------------------------------- hours */

    /* "09:00-12:00, 13:00-17:30" as periods, or a message */
    function periods(day, text, out) {
        var parts = text.split(','), i, m;

        for (i = 0; i < parts.length; i++) {
            if (parts[i].trim() === '') {
                continue;
            }
            m = /^\s*(\d{1,2}:\d{2})\s*[-–]\s*(\d{1,2}:\d{2})\s*$/.exec(
                parts[i]);
            if (!m) {
                return DAYS[day - 1] + ': write periods as 09:00-17:30, '
                    + 'separated by commas.';
            }
            out.push({ weekday: day, starts: pad(+m[1].split(':')[0]) + ':'
                       + m[1].split(':')[1], ends: pad(+m[2].split(':')[0])
                       + ':' + m[2].split(':')[1] });
        }
        return null;
    }

    function choose(owners, id, view) {
        if (owners.length < 2) {
            return null;
        }
        return DRP.field('Photographer', h('select', { id: 'ph-select',
            onchange: function (ev) {
                DR.go('bookings', { view: view,
                                    photographer: ev.target.value });
            } }, owners.map(function (p) {
                return h('option', { value: p.id, text: p.name,
                                     selected: p.id === id });
            })));
    }

    function hours(root, params) {
        return photographers().then(function (owners) {
            var id = params.photographer || (owners[0] || {}).id;

            if (!id) {
                root.textContent = '';
                root.appendChild(tabs('hours'));
                root.appendChild(photographerForm(function () {
                    return render(root, params);
                }));
                return null;
            }
            return DR.api('GET', API + 'hours?photographer=' + DRP.enc(id))
                .then(function (r) {
                    var rows = [], i, text;

                    for (i = 1; i <= 7; i++) {
                        text = (r.hours || []).filter(function (p) {
                            return p.weekday === i;
                        }).map(function (p) {
                            return p.starts + '-' + p.ends;
                        }).join(', ');
                        rows.push(h('input', { id: 'hours-' + i,
                            name: 'day' + i, value: text,
                            placeholder: 'closed' }));
                    }
                    root.textContent = '';
                    root.appendChild(tabs('hours'));
                    root.appendChild(choose(owners, id, 'hours') || h('span'));
                    root.appendChild(DRP.form({ id: 'hours-form' }, [
                        h('p', { 'class': 'hint', text: 'Wall-clock times in '
                                 + r.time_zone + ', e.g. "09:00-12:00, "'
                                 + '"13:00-17:30"; empty: closed.' })
                    ].concat(rows.map(function (el, k) {
                        return DRP.field(DAYS[k], el);
                    })), 'Save the week', function () {
                        var out = [], bad = null;

                        rows.forEach(function (el, k) {
                            bad = bad || periods(k + 1, el.value, out);
                        });
                        rows.week = out;
                        return bad;
                    }, function () {
                        return DR.api('PUT', API + 'hours/' + DRP.enc(id),
                                      rows.week);
                    }, function (v, status) {
                        DRP.say(status, 'The weekly hours are saved.');
                    }));
                });
        });
    }

    /* ------------------------------------------------------ blackouts */

    function days(root, params) {
        return photographers().then(function (owners) {
            var id = params.photographer || (owners[0] || {}).id;

            if (!id) {
                root.textContent = '';
                root.appendChild(tabs('days'));
                root.appendChild(h('p', { text: 'Add a photographer first '
                                          + '(Weekly hours).' }));
                return null;
            }
            return DR.api('GET', API + 'exceptions?photographer='
                          + DRP.enc(id)).then(function (r) {
                var day = h('input', { id: 'day-date', name: 'day',
                                       placeholder: 'YYYY-MM-DD',
                                       inputmode: 'numeric',
                                       autocomplete: 'off' }),
                    note = h('input', { id: 'day-note', name: 'note' }),
                    status = DRP.status();

                root.textContent = '';
                root.appendChild(tabs('days'));
                root.appendChild(choose(owners, id, 'days') || h('span'));
                root.appendChild(status);
                root.appendChild(DRP.table(['Day', 'Closed', 'Note', ''],
                    (r.exceptions || []).map(function (x) {
                        return [x.day, x.kind === 'closed' && !x.starts
                                ? 'all day' : (x.kind + ' ' + x.starts + '-'
                                               + x.ends), x.note,
                            h('button', { type: 'button',
                                'data-exception': x.id, text: 'Remove',
                                onclick: function () {
                                    DR.api('DELETE', API + 'exceptions/'
                                           + x.id).then(function () {
                                        return render(root, params);
                                    }, function (e) {
                                        DRP.say(status, DRP.error(e), true);
                                    });
                                } })];
                    }), 'No blackout day.'));
                root.appendChild(DRP.form({ id: 'day-form' }, [
                    h('h2', { text: 'Close a day' }),
                    DRP.field('Day', day, 'YYYY-MM-DD'),
                    DRP.field('Note', note, 'e.g. "holiday"')
                ], 'Close the day', function () {
                    return parseDay(day.value) ? null
                        : 'Give the day as YYYY-MM-DD.';
                }, function () {
                    return DR.api('POST', API + 'exceptions', {
                        photographer: id, day: day.value, kind: 'closed',
                        note: note.value });
                }, function () {
                    render(root, params).then(function () {
                        DR.notice('The day is closed.');
                    });
                }));
            });
        });
    }

    function render(root, params) {
        var view = (params && params.view) || 'week', p;

        params = params || {};
        DRP.loading(root);
        p = view === 'types' ? types(root)
            : view === 'hours' ? hours(root, params)
            : view === 'days' ? days(root, params)
            : week(root, params);
        return Promise.resolve(p).then(null, function (e) {
            DRP.failed(root, e);
        });
    }

    /* --------------------------------------------------------- booking */

    /* the UTC offset (ms) of a zone at an instant, from the browser's
       time-zone data */
    function zoneOffset(zone, ms) {
        var p = {};

        new Intl.DateTimeFormat('en-GB', { timeZone: zone, hourCycle: 'h23',
            year: 'numeric', month: '2-digit', day: '2-digit',
            hour: '2-digit', minute: '2-digit', second: '2-digit' })
            .formatToParts(new Date(ms)).forEach(function (x) {
                p[x.type] = x.value;
            });
        return Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute,
                        +p.second) - Math.floor(ms / 1000) * 1000;
    }

    /* a day and "HH:MM" on the zone's wall clock as an instant
       ("2027-03-06T10:00:00Z"), or null */
    function instant(day, time, zone) {
        var d = parseDay(day), m = /^(\d{1,2}):(\d{2})$/.exec(time || ''),
            wall, ms;

        if (!d || !m || +m[1] > 23 || +m[2] > 59) {
            return null;
        }
        wall = d.getTime() + (+m[1] * 60 + +m[2]) * 60000;
        ms = wall - zoneOffset(zone, wall);
        ms = wall - zoneOffset(zone, ms);
        return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
    }

    function rescheduleForm(b, reload) {
        var zone = b.photographer.time_zone, start,
            day = h('input', { id: 'reschedule-day', name: 'day',
                               value: b.local_day, inputmode: 'numeric',
                               autocomplete: 'off' }),
            time = h('input', { id: 'reschedule-time', name: 'time',
                                value: hm(b.local_start),
                                inputmode: 'numeric', autocomplete: 'off' }),
            reason = h('textarea', { id: 'reschedule-reason', name: 'reason',
                                     rows: 2 }),
            notify = h('input', { type: 'checkbox', name: 'notify',
                                  id: 'reschedule-notify', checked: true }),
            force = h('input', { type: 'checkbox', name: 'force',
                                 id: 'reschedule-force' }),
            form;

        form = DRP.form({ id: 'reschedule-form', hidden: true }, [
            h('h2', { text: 'Reschedule the booking' }),
            DRP.field('New day', day, 'YYYY-MM-DD'),
            DRP.field('New time (' + zone + ')', time, 'HH:MM'),
            DRP.field('Reason', reason, 'Kept in the booking\'s history.'),
            h('div', { 'class': 'field' }, h('label', { 'class': 'check' },
                [notify, ' Email the client the new invite'])),
            h('div', { 'class': 'field' }, h('label', { 'class': 'check' },
                [force, ' Allow outside the hours and over the day\'s limit']))
        ], 'Move the booking', function () {
            start = instant(day.value, time.value, zone);
            if (!start) {
                return 'Give the day as YYYY-MM-DD and the time as HH:MM.';
            }
            return reason.value.trim() === ''
                ? 'Give a reason for the move.' : null;
        }, function () {
            return DR.api('POST', API + 'bookings/' + DRP.enc(b.ref)
                          + '/reschedule', { start: start,
                              reason: reason.value.trim(),
                              notify: notify.checked, force: force.checked });
        }, function (r) {
            reload().then(function () {
                DR.notice('Booking ' + b.ref + ' moved to '
                          + r.booking.local_start.replace('T', ' ') + '.');
            });
        });

        return h('section', { id: 'reschedule' }, [
            h('div', { 'class': 'actions' }, h('button', { type: 'button',
                id: 'reschedule-open', text: 'Reschedule…',
                'aria-controls': 'reschedule-form', 'aria-expanded': 'false',
                onclick: function (ev) {
                    form.hidden = !form.hidden;
                    ev.target.setAttribute('aria-expanded',
                                           String(!form.hidden));
                    if (!form.hidden) {
                        day.focus();
                    }
                } })),
            form]);
    }

    function cancelForm(b, reload) {
        var reason = h('textarea', { id: 'cancel-reason', name: 'reason',
                                     rows: 3 });

        return DRP.form({ id: 'cancel-form' }, [
            h('h2', { text: 'Cancel the booking' }),
            DRP.field('Reason', reason, 'Kept in the booking\'s history.')
        ], 'Cancel the booking', function () {
            return reason.value.trim() === ''
                ? 'Give a reason for the cancellation.' : null;
        }, function () {
            return DR.api('POST', API + 'bookings/' + DRP.enc(b.ref)
                          + '/cancel', { reason: reason.value.trim() });
        }, function () {
            reload().then(function () {
                DR.notice('Booking ' + b.ref + ' cancelled.');
            });
        });
    }

    /* the booking_balance_due email now (POST .../balance-link) */
    function balanceLink(b) {
        return DRP.form({ id: 'balance-link-form' }, [
            h('h2', { text: 'The balance' }),
            h('p', { text: 'Due: ' + DRP.money(Math.max(b.price
                - b.deposit_paid - b.balance_paid, 0), b.currency)
                + '. Mail the client the link to pay it.' })
        ], 'Send the balance link', null, function () {
            return DR.api('POST', API + 'bookings/' + DRP.enc(b.ref)
                          + '/balance-link');
        }, function (r, status) {
            DRP.say(status, 'Link sent to ' + r.sent.to + '.');
        });
    }

    function booking(root, params) {
        var ref = DRP.param(params);

        function load() {
            DRP.loading(root);
            return DR.api('GET', API + 'bookings/' + DRP.enc(ref)).then(
                function (r) {
                    var b = r.booking, zone = b.photographer.time_zone;

                    root.textContent = '';
                    root.appendChild(h('p', null, h('a', {
                        href: '#bookings?week=' + ymd(monday(
                            parseDay(b.local_day))),
                        text: '← The week' })));
                    root.appendChild(h('dl', { 'class': 'facts',
                                               id: 'booking' }, [
                        h('dt', { text: 'State' }),
                        h('dd', { id: 'booking-state', text: b.state }),
                        h('dt', { text: 'When (' + zone + ')' }),
                        h('dd', { text: b.local_start.replace('T', ' ')
                                  + '–' + hm(b.local_end) }),
                        h('dt', { text: 'Session' }),
                        h('dd', { text: b.type.name }),
                        h('dt', { text: 'Client' }),
                        h('dd', { text: b.client_name + ' <'
                                  + b.client_email + '> ('
                                  + b.client_time_zone + ')' }),
                        h('dt', { text: 'Price / deposit' }),
                        h('dd', { text: DRP.money(b.price, b.currency)
                                  + ' / ' + DRP.money(b.deposit, b.currency)
                                  + ', paid ' + DRP.money(b.deposit_paid,
                                                          b.currency) }),
                        b.cancel_reason ? h('dt', { text: 'Cancelled' })
                                        : null,
                        b.cancel_reason ? h('dd', { id: 'booking-reason',
                            text: b.cancel_reason + ' (' + b.cancelled_by
                                  + ')' }) : null
                    ]));
                    if (b.state === 'confirmed') {
                        root.appendChild(rescheduleForm(b, load));
                    }
                    root.appendChild(h('h2', { text: 'Answers' }));
                    root.appendChild(DRP.table(['Question', 'Answer'],
                        (b.questions || []).map(function (q) {
                            return [q.label, (b.answers || {})[q.id]];
                        }), 'No question.'));
                    root.appendChild(h('h2', { text: 'History' }));
                    root.appendChild(DRP.table(['When', 'From', 'To', 'By',
                                                'Why'],
                        (b.events || []).map(function (e) {
                            return [DRP.when(e.at), e.from_state, e.to_state,
                                    e.cause, (e.detail || {}).reason];
                        }), 'No event.'));
                    if (b.state === 'confirmed'
                        && b.price > b.deposit_paid + b.balance_paid) {
                        root.appendChild(balanceLink(b));
                    }
                    if (b.state === 'held' || b.state === 'confirmed') {
                        root.appendChild(cancelForm(b, load));
                    }
                });
        }
        return load().then(null, function (e) {
            DRP.failed(root, e);
        });
    }

    DR.page('bookings', { title: 'Bookings', nav: 'Bookings',
                          render: render });
    DR.page('booking', { title: 'Booking', render: booking });
}());
