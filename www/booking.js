/*
 * darkroom: the client's booking page (booking.html?ref=&token=), the
 * link of every booking email and where Stripe sends the payer of a
 * booking's deposit or balance back (with &paid=1 once paid).  It shows
 * the booking (GET <ref>?token=: times in the client's zone, the price,
 * the deposit, what was paid and what is due, until when the deposit is
 * refundable) and offers, for a confirmed booking yet to start: Pay the
 * balance (POST <ref>/pay, then Stripe's checkout_url), Reschedule (a new
 * slot of the type, book-common.js's week picker, POST <ref>/reschedule)
 * and Cancel with a reason (POST <ref>/cancel), saying beforehand what is
 * refunded.  Back from a payment it polls the booking until the webhook
 * has recorded it.  Plain JavaScript, no build step.
 */

(function () {
    'use strict';

    var B = DarkroomBook, $ = B.$, money = B.money,
        POLL_MS = 1500, POLL_MAX = 80,
        q = new URLSearchParams(window.location.search),
        ref = q.get('ref') || '', token = q.get('token') || '',
        paid = q.get('paid') === '1', booking = null, week = null,
        newSlot = null, polls = 0;

    var STATES = { held: 'Waiting for the deposit', confirmed: 'Confirmed',
                   expired: 'Expired: the deposit was not paid in time',
                   cancelled: 'Cancelled' };

    function say(text, kind) {
        var s = $('bk-status');
        s.textContent = text || '';
        s.hidden = !text;
        s.className = 'status' + (kind ? ' ' + kind : '');
    }

    function fail(text) {
        $('action-error').textContent = text || '';
        $('action-error').hidden = !text;
    }

    /* a time of the API (in the client's zone) as read: "Sat, 6 Mar
     * 2027, 10:00" */
    function at(iso) {
        return B.dayLabel(iso.slice(0, 10)) + ' ' + iso.slice(0, 4) + ', '
            + iso.slice(11, 16);
    }

    function when(start, end) {
        return at(start) + '–' + end.slice(11, 16);
    }

    function future(iso) {
        return iso && new Date(iso).getTime() > Date.now();
    }

    /* ------------------------------------------------------------- show */

    function show(b) {
        var c = b.currency;

        booking = b;
        $('bk-ref').textContent = b.ref;
        $('bk-type').textContent = b.type.name + ' with '
            + b.photographer.name;
        $('bk-when').textContent = when(b.start, b.end) + ' ('
            + b.time_zone + ')';
        $('bk-where').textContent = b.type.location
            || (b.type.online ? 'Online' : 'To be arranged');
        $('bk-state').textContent = STATES[b.state] || b.state;
        $('bk-price').textContent = money(b.price, c);
        $('bk-deposit').textContent = money(b.deposit, c)
            + (b.deposit_paid ? ', paid' : ', not paid');
        $('bk-balance-paid').textContent = money(b.balance_paid, c);
        $('bk-paid').textContent = money(b.paid, c)
            + (b.refunded ? ' (' + money(b.refunded, c) + ' refunded)' : '');
        $('bk-balance').textContent = b.state === 'cancelled'
            ? 'Nothing: the booking is cancelled' : money(b.balance, c);
        $('bk-policy').textContent = 'The deposit is refunded on a cancel '
            + 'until ' + at(b.refund_until)
            + '; after that it is kept. A balance paid is always refunded.';
        $('bk-summary').hidden = false;
        actions(b);
    }

    function actions(b) {
        var live = b.state === 'confirmed' && future(b.start_utc);

        $('bk-actions').hidden = !live;
        $('pay-balance').hidden = !(live && b.balance > 0);
        $('pay-balance').textContent = 'Pay the balance ('
            + money(b.balance, b.currency) + ')';
        $('open-reschedule').hidden = !(live && future(b.reschedule_until));
        $('open-cancel').hidden = !live;
        if (!live) {
            $('reschedule').hidden = true;
            $('cancel').hidden = true;
        }
    }

    function load() {
        return B.api('GET', encodeURIComponent(ref) + '?token='
                     + encodeURIComponent(token)).then(function (r) {
            show(r.booking);
            return r.booking;
        });
    }

    /*
     * Back from Stripe (paid=1): the booking is polled until the webhook
     * has confirmed it (held -> confirmed) or recorded the balance (paid
     * grew), within POLL_MAX polls.
     */
    function poll(before) {
        load().then(function (b) {
            var done = b.state !== 'held' && (before === null
                                              || b.paid > before);
            if (b.state === 'held' || b.state === 'confirmed' && !done) {
                if (++polls < POLL_MAX) {
                    say('Payment received, confirming…', 'pending');
                    window.setTimeout(function () {
                        poll(before);
                    }, POLL_MS);
                    return;
                }
                say('Your payment is still being confirmed: this page '
                    + 'will show it once it arrives (reload it later).',
                    'warn');
                return;
            }
            if (b.state === 'confirmed') {
                say('Payment confirmed. Thank you!', 'ok');
            } else {
                say('');
            }
            window.history.replaceState(null, '', window.location.pathname
                + '?ref=' + encodeURIComponent(ref) + '&token='
                + encodeURIComponent(token));
        }, function (e) {
            say(e.message, 'error');
        });
    }

    /* ------------------------------------------------------------- pay */

    function payBalance() {
        fail('');
        $('pay-balance').disabled = true;
        sessionStorage.setItem('darkroom-paid-' + ref, String(booking.paid));
        B.api('POST', encodeURIComponent(ref) + '/pay',
              { token: token }).then(function (r) {
            window.location.assign(r.checkout_url);
        }, function (e) {
            $('pay-balance').disabled = false;
            fail(e.message);
        });
    }

    /* ------------------------------------------------------ reschedule */

    function toggle(id, button) {
        var open = $(id).hidden;

        $('reschedule').hidden = true;
        $('cancel').hidden = true;
        $('open-reschedule').setAttribute('aria-expanded', 'false');
        $('open-cancel').setAttribute('aria-expanded', 'false');
        $(id).hidden = !open;
        $(button).setAttribute('aria-expanded', open ? 'true' : 'false');
        return open;
    }

    function openReschedule() {
        fail('');
        if (!toggle('reschedule', 'open-reschedule')) {
            return;
        }
        newSlot = null;
        $('r-submit').disabled = true;
        $('r-chosen').textContent = '';
        $('r-tz').textContent = booking.time_zone;
        $('r-until').textContent = 'Moves are possible until '
            + at(booking.reschedule_until) + '.';
        week.start(booking.type.id, booking.time_zone);
    }

    function rescheduleSay(text, bad) {
        var s = $('r-status');
        s.textContent = text || '';
        s.hidden = !text;
        s.className = 'status' + (bad ? ' error' : '');
    }

    function pickNew(s) {
        newSlot = s;
        $('r-chosen').textContent = 'New time: ' + when(s.start, s.end);
        $('r-submit').disabled = false;
        $('r-submit').focus();
    }

    function reschedule() {
        fail('');
        $('r-submit').disabled = true;
        B.api('POST', encodeURIComponent(ref) + '/reschedule',
              { token: token, start: newSlot.start }).then(function (r) {
            $('reschedule').hidden = true;
            $('open-reschedule').setAttribute('aria-expanded', 'false');
            show(r.booking);
            say('Moved to ' + when(r.booking.start, r.booking.end)
                + '. A new invitation is on its way.', 'ok');
        }, function (e) {
            $('r-submit').disabled = false;
            fail(e.message);
            if (e.code === 'slot_taken') {
                week.load();
            }
        });
    }

    /* ---------------------------------------------------------- cancel */

    function refundText(b) {
        var dep = b.deposit_paid && future(b.refund_until),
            bal = b.balance_paid, c = b.currency;

        if (!b.deposit_paid && !bal) {
            return 'Nothing has been paid, so nothing is refunded.';
        }
        return (dep ? 'Your deposit (' + money(b.deposit, c) + ') will be '
                      + 'refunded.'
                    : 'Your deposit (' + money(b.deposit, c) + ') will not '
                      + 'be refunded: it was refundable until '
                      + at(b.refund_until)
                      + '.')
            + (bal ? ' The balance you paid (' + money(bal, c)
                     + ') will be refunded.' : '');
    }

    function openCancel() {
        fail('');
        if (toggle('cancel', 'open-cancel')) {
            $('cancel-refund').textContent = refundText(booking);
            $('cancel-reason').focus();
        }
    }

    function cancel(ev) {
        ev.preventDefault();
        fail('');
        $('cancel-submit').disabled = true;
        B.api('POST', encodeURIComponent(ref) + '/cancel',
              { token: token,
                reason: $('cancel-reason').value.trim() }).then(function (r) {
            $('cancel-submit').disabled = false;
            show(r.booking);
            say('Your booking is cancelled.' + (r.refund
                ? ' ' + money(r.refund.amount, r.refund.currency)
                  + ' will be refunded.' : ''), 'ok');
            $('booking').focus();
        }, function (e) {
            $('cancel-submit').disabled = false;
            fail(e.message);
        });
    }

    function start() {
        var before = sessionStorage.getItem('darkroom-paid-' + ref);

        if (!ref || !token) {
            say('This link is incomplete: use the one in your email.',
                'error');
            return;
        }
        week = B.week({ ids: { prev: 'r-prev', next: 'r-next',
                               range: 'r-range', days: 'r-days',
                               slots: 'r-slots', none: 'r-none' },
                        say: rescheduleSay, pick: pickNew });
        $('pay-balance').addEventListener('click', payBalance);
        $('open-reschedule').addEventListener('click', openReschedule);
        $('open-cancel').addEventListener('click', openCancel);
        $('r-submit').addEventListener('click', reschedule);
        $('cancel-form').addEventListener('submit', cancel);

        if (paid) {
            sessionStorage.removeItem('darkroom-paid-' + ref);
            poll(before === null ? null : Number(before));
            return;
        }
        load().then(function (b) {
            say(b.state === 'held' ? 'Waiting for the deposit to be paid.'
                : '');
        }, function (e) {
            say(e.status === 404 ? 'There is no such booking: check the '
                + 'link in your email.' : e.message, 'error');
        });
    }

    start();
}());
