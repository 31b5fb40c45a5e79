/*
 * darkroom: the public booking page (book.html), on the bookings API
 * (/api/bookings/, darkroom_bookings): pick a session type (GET types), a
 * day and a time (GET slots, a week at a time, in the visitor's time
 * zone: book-common.js's week picker), answer the type's questions, then
 * POST book and go to Stripe's checkout_url to pay the deposit.  Plain
 * JavaScript, no build step.
 */

(function () {
    'use strict';

    var B = DarkroomBook, $ = B.$, el = B.el, money = B.money,
        tz = 'UTC', types = [], type = null, slot = null, day = null,
        week = null;

    function say(text, bad) {
        var s = $('book-status');
        s.textContent = text || '';
        s.hidden = !text;
        s.className = 'status' + (bad ? ' error' : '');
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
        week.start(t.id, tz);
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

    function pick(s, d) {
        var box = $('questions');

        slot = s;
        day = d;
        $('chosen').textContent = type.name + ', ' + B.dayLabel(day) + ' at '
            + s.start.slice(11, 16) + ' (' + tz + ')';
        $('deposit').textContent = 'A deposit of '
            + money(type.deposit, type.currency) + ' now holds the time; '
            + 'the rest (' + money(type.price - type.deposit, type.currency)
            + ') is due before the session.';
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
        B.api('POST', 'book', { type: type.id, start: slot.start,
                                name: name, email: email, time_zone: tz,
                                answers: answers }).then(function (r) {
            window.location.assign(r.checkout_url);
        }, function (e) {
            $('book-submit').disabled = false;
            fail(e.code === 'slot_taken'
                 ? 'That time was just taken: please choose another.'
                 : e.message);
            if (e.code === 'slot_taken') {
                week.load();
            }
        });
    }

    function start() {
        tz = B.visitorZone();
        $('tz-name').textContent = tz;
        week = B.week({ ids: { prev: 'days-prev', next: 'days-next',
                               range: 'days-range', days: 'days',
                               slots: 'slots', none: 'no-slots' },
                        say: say, pick: pick });
        $('book-form').addEventListener('submit', submit);
        B.api('GET', 'types').then(function (r) {
            types = r.types || [];
            say(types.length ? '' : 'No session can be booked just now.');
            showTypes();
        }, function (e) {
            say(e.message, true);
        });
    }

    start();
}());
