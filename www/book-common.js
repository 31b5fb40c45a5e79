/*
 * darkroom: what the booking pages share (book.html's book.js, the
 * client's booking.html's booking.js): the DOM helpers, money, the
 * bookings API (/api/bookings/, darkroom_bookings) and the week of free
 * slots of a session type in the visitor's time zone (GET slots), with
 * Earlier and Later buttons.  Plain JavaScript, no build step: it defines
 * one global, DarkroomBook.
 */

var DarkroomBook = (function () {
    'use strict';

    var API = '/api/bookings/', SPAN = 7;

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

    /* today in a time zone */
    function today(tz) {
        var s = new Date().toLocaleDateString('en-CA', { timeZone: tz });
        return new Date(s.slice(0, 10) + 'T00:00:00Z');
    }

    function dayLabel(s) {
        var d = new Date(s + 'T12:00:00Z');
        return d.toLocaleDateString(undefined, { weekday: 'short',
            day: 'numeric', month: 'short', timeZone: 'UTC' });
    }

    function visitorZone() {
        try {
            return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
        } catch (e) {
            return 'UTC';
        }
    }

    function money(amount, cur) {
        try {
            return new Intl.NumberFormat(undefined, { style: 'currency',
                currency: cur }).format(amount / 100);
        } catch (e) {
            return (amount / 100).toFixed(2) + ' ' + cur;
        }
    }

    /* the API: the answer's JSON, or an Error with its code and status */
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

    function press(selector, b) {
        Array.prototype.forEach.call(document.querySelectorAll(selector),
            function (x) {
                x.setAttribute('aria-pressed', x === b ? 'true' : 'false');
            });
    }

    /*
     * The week picker.  o: {ids: {prev, next, range, days, slots, none}
     * (the elements' ids), say(text, bad), pick(slot, day)}.  start(type,
     * tz) shows the week from today; the buttons move by a week.
     */
    function week(o) {
        var w = { type: null, tz: 'UTC', from: null };

        function showSlots(list) {
            var box = $(o.ids.slots);

            box.textContent = '';
            list.forEach(function (s) {
                var b = el('button', { type: 'button', 'class': 'slot',
                                       'data-start': s.start,
                                       'aria-pressed': 'false' },
                           s.start.slice(11, 16));
                b.addEventListener('click', function () {
                    press('#' + o.ids.slots + ' .slot', b);
                    o.pick(s, s.start.slice(0, 10));
                });
                box.appendChild(b);
            });
        }

        function showDays(slots) {
            var byDay = {}, list = [];

            slots.forEach(function (s) {
                var d = s.start.slice(0, 10);
                if (!byDay[d]) {
                    byDay[d] = [];
                    list.push(d);
                }
                byDay[d].push(s);
            });
            $(o.ids.none).hidden = list.length > 0;
            list.forEach(function (d) {
                var b = el('button', { type: 'button', 'class': 'day',
                                       'data-day': d,
                                       'aria-pressed': 'false' },
                           dayLabel(d));
                b.addEventListener('click', function () {
                    press('#' + o.ids.days + ' .day', b);
                    showSlots(byDay[d]);
                });
                $(o.ids.days).appendChild(b);
            });
        }

        w.load = function () {
            var to = addDays(w.from, SPAN - 1);

            $(o.ids.range).textContent = dayLabel(ymd(w.from)) + ' – '
                + dayLabel(ymd(to));
            $(o.ids.prev).disabled = ymd(w.from) <= ymd(today(w.tz));
            $(o.ids.days).textContent = '';
            $(o.ids.slots).textContent = '';
            o.say('Finding free times…');
            return api('GET', 'slots?type=' + encodeURIComponent(w.type)
                       + '&from=' + ymd(w.from) + '&to=' + ymd(to) + '&tz='
                       + encodeURIComponent(w.tz)).then(function (r) {
                o.say('');
                showDays(r.slots || []);
            }, function (e) {
                o.say(e.message, true);
            });
        };

        w.start = function (type, tz) {
            w.type = type;
            w.tz = tz;
            w.from = today(tz);
            return w.load();
        };

        $(o.ids.prev).addEventListener('click', function () {
            w.from = addDays(w.from, -SPAN);
            if (ymd(w.from) < ymd(today(w.tz))) {
                w.from = today(w.tz);
            }
            w.load();
        });
        $(o.ids.next).addEventListener('click', function () {
            w.from = addDays(w.from, SPAN);
            w.load();
        });

        return w;
    }

    return { $: $, el: el, dayLabel: dayLabel, visitorZone: visitorZone,
             money: money, api: api, week: week };
}());
