/*
 * darkroom: the public booking page (book.html), on the bookings API
 * (/api/bookings/, darkroom_bookings): pick a session type (GET types), a
 * day and a time (GET slots, a week at a time, in the visitor's time
 * zone), answer the type's questions, then POST book and go to Stripe's
 * checkout_url to pay the deposit.  Plain JavaScript, no build step.
 */

(function () {
    'use strict';

    var API = '/api/bookings/', SPAN = 7,
        tz = 'UTC', types = [], type = null, from = null, slot = null,
        slots = [], day = null;

    function $(id) {
        return document.getElementById(id);
    }

    function el(tag, attrs, text) {
        var e = document.createElement(tag), k;

        for (k in attrs || {}) {
            if (Object.prototype.hasOwnProperty.call(attrs, k)) {
                e.setAttribute(k, attrs[k]);
            }
        }
        if (text !== undefined) {
            e.textContent = text;
        }
        return e;
    }

    function pad(n) {
        return (n < 10 ? '0' : '') + n;
    }

    /* dates as YYYY-MM-DD, counted in UTC so no zone shifts them */
    function ymd(d) {
        return d.getUTCFullYear() + '-' + pad(d.getUTCMonth() + 1) + '-'
            + pad(d.getUTCDate());
    }

    function addDays(d, n) {
        return new Date(d.getTime() + n * 86400000);
    }

    /* today in the visitor's time zone */
    function today() {
        var s = new Date().toLocaleDateString('en-CA', { timeZone: tz });
        return new Date(s.slice(0, 10) + 'T00:00:00Z');
    }

    function dayLabel(s) {
        var d = new Date(s + 'T12:00:00Z');
        return d.toLocaleDateString(undefined, { weekday: 'short',
            day: 'numeric', month: 'short', timeZone: 'UTC' });
    }

    function money(amount, cur) {
        try {
            return new Intl.NumberFormat(undefined, { style: 'currency',
                currency: cur }).format(amount / 100);
        } catch (e) {
            return (amount / 100).toFixed(2) + ' ' + cur;
        }
    }

    function say(text, bad) {
        var s = $('book-status');
        s.textContent = text || '';
        s.hidden = !text;
        s.className = 'status' + (bad ? ' error' : '');
    }

    function api(method, path, body) {
        var opts = { method: method, headers: { Accept: 'application/json' } };

        if (body !== undefined) {
            opts.headers['Content-Type'] = 'application/json';
            opts.body = JSON.stringify(body);
        }
        return fetch(API + path, opts).then(function (res) {
            return res.json().catch(function () {
                return {};
            }).then(function (j) {
                var e;
                if (res.ok) {
                    return j;
                }
                e = new Error((j.error && j.error.message)
                              || 'Something went wrong (' + res.status + ').');
                e.code = j.error && j.error.code;
                e.status = res.status;
                throw e;
            });
        });
    }

    /* ------------------------------------------------------------ types */

    function showTypes() {
        var box = $('types');

        box.textContent = '';
        types.forEach(function (t) {
            var b = el('button', { type: 'button', role: 'radio',
                                   'class': 'type', 'data-type': t.id,
                                   'aria-checked': 'false' });
            b.appendChild(el('strong', null, t.name));
            b.appendChild(el('span', null, t.duration_minutes + ' minutes · '
                             + money(t.price, t.currency) + ' · deposit '
                             + money(t.deposit, t.currency)));
            if (t.description) {
                b.appendChild(el('span', { 'class': 'muted small' },
                                 ' ' + t.description));
            }
            b.addEventListener('click', function () {
                choose(t);
            });
            box.appendChild(b);
        });
    }

    function choose(t) {
        type = t;
        slot = null;
        day = null;
        Array.prototype.forEach.call(document.querySelectorAll('.type'),
            function (b) {
                b.setAttribute('aria-checked',
                               b.getAttribute('data-type') === t.id
                               ? 'true' : 'false');
            });
        $('details').hidden = true;
        $('when').hidden = false;
        from = today();
        loadSlots();
    }

    /* ------------------------------------------------------------ slots */

    function loadSlots() {
        var to = addDays(from, SPAN - 1);

        $('days-range').textContent = dayLabel(ymd(from)) + ' – '
            + dayLabel(ymd(to));
        $('days-prev').disabled = ymd(from) <= ymd(today());
        $('days').textContent = '';
        $('slots').textContent = '';
        say('Finding free times…');
        return api('GET', 'slots?type=' + encodeURIComponent(type.id)
                   + '&from=' + ymd(from) + '&to=' + ymd(to) + '&tz='
                   + encodeURIComponent(tz)).then(function (r) {
            slots = r.slots || [];
            say('');
            showDays();
        }, function (e) {
            say(e.message, true);
        });
    }

    function showDays() {
        var byDay = {}, list = [];

        slots.forEach(function (s) {
            var d = s.start.slice(0, 10);
            if (!byDay[d]) {
                byDay[d] = [];
                list.push(d);
            }
            byDay[d].push(s);
        });
        $('no-slots').hidden = list.length > 0;
        list.forEach(function (d) {
            var b = el('button', { type: 'button', 'class': 'day',
                                   'data-day': d, 'aria-pressed': 'false' },
                       dayLabel(d));
            b.addEventListener('click', function () {
                day = d;
                Array.prototype.forEach.call(
                    document.querySelectorAll('.day'), function (x) {
                        x.setAttribute('aria-pressed',
                            x === b ? 'true' : 'false');
                    });
                showSlots(byDay[d]);
            });
            $('days').appendChild(b);
        });
    }

    function showSlots(list) {
        var box = $('slots');

        box.textContent = '';
        list.forEach(function (s) {
            var b = el('button', { type: 'button', 'class': 'slot',
                                   'data-start': s.start,
                                   'aria-pressed': 'false' },
                       s.start.slice(11, 16));
            b.addEventListener('click', function () {
                Array.prototype.forEach.call(
                    document.querySelectorAll('.slot'), function (x) {
                        x.setAttribute('aria-pressed',
                            x === b ? 'true' : 'false');
                    });
                pick(s);
            });
            box.appendChild(b);
        });
    }

    /* ---------------------------------------------------------- details */

    function question(q) {
        var id = 'q-' + q.id, wrap = el('div', { 'class': 'question' }),
            input;

        wrap.appendChild(el('label', { 'for': id },
                            q.label + (q.required ? '' : ' (optional)')));
        if (q.kind === 'choice') {
            input = el('select', { id: id, name: q.id });
            input.appendChild(el('option', { value: '' }, 'Choose…'));
            (q.choices || []).forEach(function (c) {
                input.appendChild(el('option', { value: c }, c));
            });
        } else if (q.kind === 'long') {
            input = el('textarea', { id: id, name: q.id, rows: '3' });
        } else {
            input = el('input', { id: id, name: q.id });
        }
        if (q.required) {
            input.setAttribute('required', '');
        }
        wrap.appendChild(input);
        return wrap;
    }

    function pick(s) {
        var box = $('questions');

        slot = s;
        $('chosen').textContent = type.name + ', ' + dayLabel(day) + ' at '
            + s.start.slice(11, 16) + ' (' + tz + ')';
        $('deposit').textContent = 'A deposit of '
            + money(type.deposit, type.currency) + ' now holds the time; '
            + 'the rest (' + money(type.price - type.deposit, type.currency)
            + ') is due on the day.';
        box.textContent = '';
        (type.questions || []).forEach(function (q) {
            box.appendChild(question(q));
        });
        $('book-error').hidden = true;
        $('details').hidden = false;
        $('b-name').focus();
    }

    function fail(text) {
        $('book-error').textContent = text;
        $('book-error').hidden = false;
    }

    function submit(ev) {
        var answers = {}, missing = null, name = $('b-name').value.trim(),
            email = $('b-email').value.trim();

        ev.preventDefault();
        (type.questions || []).forEach(function (q) {
            var v = $('q-' + q.id).value.trim();
            if (v !== '') {
                answers[q.id] = v;
            } else if (q.required && !missing) {
                missing = q.label;
            }
        });
        if (!name) {
            return fail('Please give your name.');
        }
        if (!/^[^@\s]+@[^@\s]+$/.test(email)) {
            return fail('Please give an email address.');
        }
        if (missing) {
            return fail('Please answer: ' + missing);
        }
        $('book-submit').disabled = true;
        $('book-error').hidden = true;
        api('POST', 'book', { type: type.id, start: slot.start, name: name,
                              email: email, time_zone: tz,
                              answers: answers }).then(function (r) {
            window.location.assign(r.checkout_url);
        }, function (e) {
            $('book-submit').disabled = false;
            fail(e.code === 'slot_taken'
                 ? 'That time was just taken: please choose another.'
                 : e.message);
            if (e.code === 'slot_taken') {
                loadSlots();
            }
        });
    }

    function start() {
        try {
            tz = Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
        } catch (e) {
            tz = 'UTC';
        }
        $('tz-name').textContent = tz;
        $('days-prev').addEventListener('click', function () {
            from = addDays(from, -SPAN);
            if (ymd(from) < ymd(today())) {
                from = today();
            }
            loadSlots();
        });
        $('days-next').addEventListener('click', function () {
            from = addDays(from, SPAN);
            loadSlots();
        });
        $('book-form').addEventListener('submit', submit);
        api('GET', 'types').then(function (r) {
            types = r.types || [];
            say(types.length ? '' : 'No session can be booked just now.');
            showTypes();
        }, function (e) {
            say(e.message, true);
        });
    }

    start();
}());
