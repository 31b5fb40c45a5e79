/*
 * darkroom console: the shell.  Plain JavaScript, no build step.
 *
 * window.DR, for the pages (www/admin/pages/<name>.js, listed in
 * index.html after this file):
 *
 *   DR.api(method, path, body)  a promise of the JSON answer.  path is
 *       absolute ("/admin/api/orders?status=paid") or relative to the
 *       console API ("dashboard" is /admin/console/api/dashboard).  Adds
 *       X-CSRF-Token to every request but GET/HEAD.  A refusal rejects
 *       with an Error: .message the server's message, .code its code,
 *       .status the HTTP status, .json the whole answer.  A 401 (signed
 *       out, session expired) shows the login form as well.
 *   DR.el(tag, props, children) an element: props "text", "class",
 *       on<event> functions, "value"/"checked"/"disabled" properties,
 *       the rest attributes; children nodes, strings or arrays of them.
 *   DR.money(amount, cur)       minor units, formatted ("£12.34").
 *   DR.page(name, {title, nav, role, render(root, params)})
 *       registers a page: nav the label in the menu (omit: not in the
 *       menu), role "owner" for owner-only pages.  render draws into
 *       root; params is an array of the hash's path segments
 *       ("#order/DR-000012" gives ["DR-000012"]) with the query's
 *       values as properties ("#orders?status=paid" gives .status).
 *   DR.go(name, params)         navigates (params: string, array or
 *       object, for the query).
 *   DR.me                       the signed-in account {id,email,name,role}
 *   DR.can(role)                true if DR.me has that role or more.
 *   DR.error(e)                 the message of a refusal, readable.
 *   DR.notice(text, bad)        a message in the page's status line.
 *   DR.when(t)                  a time, readable ("—" for none).
 *   DR.table(heads, rows, empty) a table (rows: arrays of nodes or
 *       strings) that stacks its cells on a phone, or a "none" line.
 *   DR.field(label, input, hint) a labelled form row.
 *   DR.has(name)                true if a page of that name exists.
 *   DR.headers()                the X-CSRF-Token header of the session,
 *       for a request DR.api cannot make (an upload's XMLHttpRequest).
 *
 * Signed out, "#reset/<token>" (the password reset email's link) shows
 * the form choosing a new password; the login form links to the one
 * asking for that email.
 */

(function () {
    'use strict';

    var API = '/admin/console/api/',
        pages = {},
        order = [],
        csrf = null,
        started = false,
        formats = {},
        DR = {};

    DR.me = null;

    /* ---------------------------------------------------------- elements */

    function append(e, c) {
        var i;

        if (c === null || c === undefined || c === false) {
            return;
        }
        if (Array.isArray(c)) {
            for (i = 0; i < c.length; i++) {
                append(e, c[i]);
            }
            return;
        }
        e.appendChild(typeof c === 'object' ? c
                      : document.createTextNode(String(c)));
    }

    DR.el = function (tag, props, children) {
        var e = document.createElement(tag), k, v;

        props = props || {};
        for (k in props) {
            if (!Object.prototype.hasOwnProperty.call(props, k)) {
                continue;
            }
            v = props[k];
            if (v === null || v === undefined) {
                continue;
            }
            if (k.slice(0, 2) === 'on' && typeof v === 'function') {
                e.addEventListener(k.slice(2).toLowerCase(), v);
            } else if (k === 'text') {
                e.textContent = v;
            } else if (k === 'class' || k === 'className') {
                e.className = v;
            } else if (k === 'value' || k === 'checked' || k === 'disabled'
                       || k === 'selected' || k === 'hidden')
            {
                e[k] = v;
            } else if (v !== false) {
                e.setAttribute(k, v === true ? '' : String(v));
            }
        }
        append(e, children);
        return e;
    };

    var el = DR.el;

    /* ------------------------------------------------------------- money */

    DR.money = function (amount, cur) {
        var f, d;

        if (amount === null || amount === undefined || amount === '') {
            return '—';
        }
        cur = String(cur || 'GBP').toUpperCase();
        try {
            f = formats[cur] || (formats[cur] = new Intl.NumberFormat(
                undefined, { style: 'currency', currency: cur }));
            d = f.resolvedOptions().maximumFractionDigits;
            return f.format(Number(amount) / Math.pow(10, d));
        } catch (e) {
            return (Number(amount) / 100).toFixed(2) + ' ' + cur;
        }
    };

    /* the decimals of a currency (2 for GBP, 0 for JPY) */
    DR.digits = function (cur) {
        try {
            return new Intl.NumberFormat(undefined, { style: 'currency',
                currency: cur }).resolvedOptions().maximumFractionDigits;
        } catch (e) {
            return 2;
        }
    };

    /* "12.5" in GBP is 1250, "1200" in JPY 1200; null if not an amount */
    DR.minor = function (text, cur) {
        var d = DR.digits(cur), m, frac;

        m = /^\s*(\d{1,9})(?:[.,](\d*))?\s*$/.exec(String(text));
        if (!m || (m[2] && m[2].length > d)) {
            return null;
        }
        frac = (m[2] || '') + new Array(d + 1).join('0');
        return parseInt(m[1], 10) * Math.pow(10, d)
               + (d ? parseInt(frac.slice(0, d), 10) : 0);
    };

    /* minor units as a plain number for a form field: 1250 GBP is "12.50" */
    DR.major = function (amount, cur) {
        var d = DR.digits(cur);

        return (Number(amount) / Math.pow(10, d)).toFixed(d);
    };

    /* --------------------------------------------------------------- api */

    DR.error = function (e) {
        if (!e) {
            return 'Something went wrong.';
        }
        if (typeof e === 'string') {
            return e;
        }
        return e.message || 'Something went wrong.';
    };

    function refusal(status, json, fallback) {
        var err = json && json.error, e;

        e = new Error(err && err.message ? err.message : fallback);
        e.status = status;
        e.code = err && err.code ? err.code : 'http_' + status;
        e.json = json;
        e.error = err || { code: e.code, message: e.message };
        return e;
    }

    function explain(status) {
        if (status === 401) {
            return 'You are signed out. Sign in again.';
        }
        if (status === 403) {
            return 'Your account is not allowed to do that.';
        }
        if (status === 404) {
            return 'Not found.';
        }
        if (status === 429) {
            return 'Too many requests: wait a moment and try again.';
        }
        if (status >= 500) {
            return 'The server failed (' + status + '): try again later.';
        }
        return 'The request was refused (' + status + ').';
    }

    DR.headers = function () {
        return csrf ? { 'X-CSRF-Token': csrf } : {};
    };

    DR.api = function (method, path, body) {
        var opts, url;

        method = (method || 'GET').toUpperCase();
        url = path.charAt(0) === '/' ? path : API + path;
        opts = { method: method, credentials: 'same-origin',
                 headers: { 'Accept': 'application/json' } };
        if (method !== 'GET' && method !== 'HEAD') {
            if (csrf) {
                opts.headers['X-CSRF-Token'] = csrf;
            }
            if (body !== undefined) {
                opts.headers['Content-Type'] = 'application/json';
                opts.body = JSON.stringify(body);
            }
        }

        return fetch(url, opts).then(function (res) {
            return res.text().then(function (text) {
                var json = null;

                try {
                    json = text ? JSON.parse(text) : null;
                } catch (e) {
                    json = null;
                }
                if (res.ok) {
                    return json === null ? {} : json;
                }
                if (res.status === 401 && url.indexOf(API + 'log') !== 0
                    && url !== API + 'session')
                {
                    signedOut('Your session ended: sign in again.');
                }
                throw refusal(res.status, json, explain(res.status));
            });
        }, function () {
            throw refusal(0, null, 'The server cannot be reached: check '
                          + 'the connection and try again.');
        });
    };

    DR.when = function (t) {
        var d;

        if (!t) {
            return '—';
        }
        d = new Date(t);
        if (isNaN(d.getTime())) {
            return String(t);
        }
        return d.toLocaleString(undefined, { year: 'numeric',
            month: 'short', day: 'numeric', hour: '2-digit',
            minute: '2-digit' });
    };

    DR.table = function (heads, rows, empty) {
        if (!rows.length) {
            return el('p', { 'class': 'empty', text: empty || 'None.' });
        }
        return el('div', { 'class': 'table-wrap' }, el('table',
            { 'class': 'stack' }, [
            el('thead', null, el('tr', null, heads.map(function (h) {
                return el('th', { scope: 'col', text: h });
            }))),
            el('tbody', null, rows.map(function (r) {
                return el('tr', null, r.map(function (c, i) {
                    return el('td', { 'data-label': heads[i] },
                              c === null || c === undefined || c === ''
                              ? '—' : c);
                }));
            }))]));
    };

    var fieldSeq = 0;

    DR.field = function (label, input, hint) {
        if (!input.id) {
            input.id = 'f' + (++fieldSeq);
        }
        return el('div', { 'class': 'field' }, [
            el('label', { 'for': input.id, text: label }), input,
            hint ? el('small', { 'class': 'hint', text: hint }) : null]);
    };

    DR.has = function (name) {
        return Object.prototype.hasOwnProperty.call(pages, name);
    };

    /* ---------------------------------------------------- pages, router */

    DR.page = function (name, spec) {
        if (!pages[name]) {
            order.push(name);
        }
        spec.name = name;
        pages[name] = spec;
        if (started && DR.me) {
            drawNav();
        }
    };

    DR.can = function (role) {
        if (!DR.me) {
            return false;
        }
        if (!role || role === 'staff') {
            return true;
        }
        return DR.me.role === 'owner';
    };

    DR.go = function (name, params) {
        var hash = '#' + name, q = [], k;

        if (typeof params === 'string' || typeof params === 'number') {
            hash += '/' + encodeURIComponent(params);
        } else if (Array.isArray(params)) {
            hash += params.map(function (p) {
                return '/' + encodeURIComponent(p);
            }).join('');
        } else if (params) {
            for (k in params) {
                if (Object.prototype.hasOwnProperty.call(params, k)
                    && params[k] !== null && params[k] !== undefined
                    && params[k] !== '')
                {
                    q.push(encodeURIComponent(k) + '='
                           + encodeURIComponent(params[k]));
                }
            }
            if (q.length) {
                hash += '?' + q.join('&');
            }
        }
        if (location.hash === hash) {
            route();
        } else {
            location.hash = hash;
        }
    };

    function parse(hash) {
        var h = hash.replace(/^#\/?/, ''), qi = h.indexOf('?'), q = '',
            segs, params;

        if (qi >= 0) {
            q = h.slice(qi + 1);
            h = h.slice(0, qi);
        }
        segs = h.split('/').filter(function (s) { return s !== ''; })
            .map(function (s) {
                try {
                    return decodeURIComponent(s);
                } catch (e) {
                    return s;
                }
            });
        params = segs.slice(1);
        q.split('&').forEach(function (kv) {
            var i = kv.indexOf('='), k, v;

            if (!kv) {
                return;
            }
            k = i < 0 ? kv : kv.slice(0, i);
            v = i < 0 ? '' : kv.slice(i + 1);
            try {
                params[decodeURIComponent(k)] =
                    decodeURIComponent(v.replace(/\+/g, ' '));
            } catch (e) {
                params[k] = v;
            }
        });
        return { name: segs[0] || 'dashboard', params: params };
    }

    function current() {
        return parse(location.hash).name;
    }

    function route() {
        var r = parse(location.hash), p = pages[r.name],
            main = document.getElementById('main'), root, res;

        if (r.name === 'reset') {
            resetForm(r.params[0] || r.params.token || '');
            return;
        }
        if (!DR.me) {
            return;
        }
        drawNav();
        main.textContent = '';
        DR.notice('');
        if (!p) {
            document.title = 'Not found · darkroom';
            main.appendChild(el('h1', { id: 'page-title',
                                        text: 'Page not found' }));
            main.appendChild(el('p', null, ['There is no page “' + r.name
                + '”. ', el('a', { href: '#dashboard',
                                   text: 'Go to the dashboard' })]));
            focusMain();
            return;
        }
        document.title = (p.title || r.name) + ' · darkroom';
        main.appendChild(el('h1', { id: 'page-title',
                                    text: p.title || r.name }));
        if (!DR.can(p.role)) {
            main.appendChild(el('p', { 'class': 'error', role: 'alert',
                text: 'Only the owner can open this page.' }));
            focusMain();
            return;
        }
        root = el('div', { 'class': 'page page-' + r.name });
        main.appendChild(root);
        focusMain();
        try {
            res = p.render(root, r.params);
        } catch (e) {
            showFailure(root, e);
            return;
        }
        if (res && typeof res.then === 'function') {
            res.then(null, function (e) {
                showFailure(root, e);
            });
        }
    }

    function showFailure(root, e) {
        if (e && e.status === 401) {
            return;
        }
        root.appendChild(el('p', { 'class': 'error', role: 'alert',
                                   text: DR.error(e) }));
        if (window.console) {
            console.error(e);
        }
    }

    function focusMain() {
        var h = document.getElementById('page-title');

        if (h && document.activeElement
            && document.activeElement.closest
            && !document.activeElement.closest('#nav'))
        {
            h.setAttribute('tabindex', '-1');
            h.focus({ preventScroll: true });
        }
    }

    DR.notice = function (text, bad) {
        var n = document.getElementById('notice');

        if (!n) {
            return;
        }
        n.textContent = text || '';
        n.className = 'notice' + (text ? (bad ? ' bad' : ' good') : '');
        n.hidden = !text;
    };

    /* ----------------------------------------------------------- chrome */

    function drawNav() {
        var nav = document.getElementById('nav'), here = current(),
            ul = el('ul');

        order.forEach(function (name) {
            var p = pages[name];

            if (!p.nav || !DR.can(p.role)) {
                return;
            }
            ul.appendChild(el('li', null, el('a', {
                href: '#' + name, text: p.nav,
                'aria-current': name === here ? 'page' : null
            })));
        });
        nav.textContent = '';
        nav.appendChild(ul);

        var who = document.getElementById('who');
        who.textContent = '';
        who.appendChild(el('span', { 'class': 'me', text:
            (DR.me.name || DR.me.email) + ' · ' + DR.me.role }));
        who.appendChild(el('button', { type: 'button', id: 'logout',
                                       'class': 'quiet', text: 'Sign out',
                                       onclick: logout }));
        document.body.classList.add('signed-in');
    }

    function signedIn(json) {
        DR.me = json.account;
        csrf = json.csrf || null;
        route();
    }

    function signedOut(message) {
        DR.me = null;
        csrf = null;
        document.body.classList.remove('signed-in');
        document.getElementById('nav').textContent = '';
        document.getElementById('who').textContent = '';
        DR.notice('');
        loginForm(message);
    }

    function logout() {
        DR.api('POST', 'logout').then(function () {
            signedOut('You are signed out.');
        }, function (e) {
            if (e.status === 401) {
                signedOut('You are signed out.');
            } else {
                DR.notice('Could not sign out: ' + DR.error(e), true);
            }
        });
    }

    function loginForm(message) {
        var main = document.getElementById('main'),
            email = el('input', { id: 'login-email', type: 'email',
                                  name: 'email', autocomplete: 'username',
                                  required: true }),
            pass = el('input', { id: 'login-password', type: 'password',
                                 name: 'password', required: true,
                                 autocomplete: 'current-password' }),
            status = el('p', { id: 'login-status', 'class': 'status',
                               role: 'status', 'aria-live': 'polite' }),
            button = el('button', { type: 'submit', id: 'login-submit',
                                    'class': 'primary', text: 'Sign in' }),
            form;

        function say(text, bad) {
            status.textContent = text || '';
            status.className = 'status' + (bad ? ' error' : '');
            status.setAttribute('role', bad ? 'alert' : 'status');
        }

        form = el('form', { id: 'login', 'class': 'login', novalidate: true,
            onsubmit: function (ev) {
                var e = email.value.trim();

                ev.preventDefault();
                if (!/^[^\s@]+@[^\s@]+$/.test(e)) {
                    say('Enter the email address of your account.', true);
                    email.focus();
                    return;
                }
                if (!pass.value) {
                    say('Enter your password.', true);
                    pass.focus();
                    return;
                }
                button.disabled = true;
                say('Signing in…');
                DR.api('POST', 'login', { email: e, password: pass.value })
                    .then(function (json) {
                        button.disabled = false;
                        pass.value = '';
                        signedIn(json);
                    }, function (err) {
                        button.disabled = false;
                        pass.value = '';
                        if (err.status === 401) {
                            say('Wrong email or password.', true);
                        } else if (err.status === 429) {
                            say(DR.error(err) || 'Too many failed '
                                + 'attempts: wait and try again.', true);
                        } else {
                            say(DR.error(err), true);
                        }
                        pass.focus();
                    });
            } }, [
            el('h1', { id: 'page-title', text: 'Sign in' }),
            el('div', { 'class': 'field' }, [
                el('label', { 'for': 'login-email', text: 'Email' }), email]),
            el('div', { 'class': 'field' }, [
                el('label', { 'for': 'login-password', text: 'Password' }),
                pass]),
            button, status,
            el('p', null, el('button', { type: 'button', 'class': 'link',
                id: 'forgot', text: 'Forgot your password?',
                onclick: function () {
                    forgotForm(email.value.trim());
                } }))]);

        document.title = 'Sign in · darkroom';
        main.textContent = '';
        main.appendChild(form);
        if (message) {
            say(message);
        }
        email.focus();
    }

    /* a small form of the signed-out pages: fields, a button, a status */
    function outForm(id, title, intro, fields, label, submit) {
        var status = el('p', { id: id + '-status', 'class': 'status',
                               role: 'status', 'aria-live': 'polite' }),
            button = el('button', { type: 'submit', id: id + '-submit',
                                    'class': 'primary', text: label }),
            main = document.getElementById('main'), form;

        function say(text, bad) {
            status.textContent = text || '';
            status.className = 'status' + (bad ? ' error' : ' ok');
            status.setAttribute('role', bad ? 'alert' : 'status');
        }

        form = el('form', { id: id, 'class': 'login', novalidate: true,
            onsubmit: function (ev) {
                ev.preventDefault();
                submit(say, button);
            } }, [el('h1', { id: 'page-title', text: title }),
                   el('p', { 'class': 'muted', text: intro })].concat(
                fields, [button, status, el('p', null, el('a', {
                    href: '#', text: 'Back to sign in',
                    onclick: function (ev) {
                        ev.preventDefault();
                        history.replaceState(null, '',
                                             location.pathname);
                        loginForm();
                    } }))]));
        document.title = title + ' · darkroom';
        main.textContent = '';
        main.appendChild(form);
        form.querySelector('input').focus();
    }

    function forgotForm(value) {
        var email = el('input', { id: 'forgot-email', type: 'email',
                                  autocomplete: 'username',
                                  value: value || '' });

        outForm('forgot-form', 'Forgot your password',
            'We email a link to choose a new password; it works once, '
            + 'for an hour.', [DR.field('Email', email)], 'Email me a link',
            function (say, button) {
                var e = email.value.trim();

                if (!/^[^\s@]+@[^\s@]+$/.test(e)) {
                    say('Enter the email address of your account.', true);
                    email.focus();
                    return;
                }
                button.disabled = true;
                DR.api('POST', 'password-reset', { email: e })
                    .then(function () {
                        button.disabled = false;
                        say('If an account has that email, a link is on '
                            + 'its way.');
                    }, function (err) {
                        button.disabled = false;
                        say(DR.error(err), true);
                    });
            });
    }

    function resetForm(token) {
        var pass = el('input', { id: 'reset-password', type: 'password',
                                 autocomplete: 'new-password' }),
            again = el('input', { id: 'reset-again', type: 'password',
                                  autocomplete: 'new-password' });

        outForm('reset-form', 'Choose a new password',
            'At least 10 characters. Every session of the account ends.',
            [DR.field('New password', pass),
             DR.field('The same again', again)], 'Change the password',
            function (say, button) {
                if (pass.value.length < 10) {
                    say('A password has at least 10 characters.', true);
                    pass.focus();
                    return;
                }
                if (pass.value !== again.value) {
                    say('The two passwords differ.', true);
                    again.focus();
                    return;
                }
                button.disabled = true;
                DR.api('POST', 'password-reset/confirm',
                       { token: token, password: pass.value })
                    .then(function () {
                        history.replaceState(null, '', location.pathname);
                        DR.me = null;
                        loginForm('Your password is changed: sign in '
                                  + 'with it.');
                    }, function (err) {
                        button.disabled = false;
                        say(err.code === 'invalid_token'
                            ? 'This link does not work any more (used, or '
                              + 'older than an hour): ask for a new one.'
                            : DR.error(err), true);
                    });
            });
    }

    /* ------------------------------------------------------------ start */

    function start() {
        started = true;
        window.addEventListener('hashchange', route);
        if (parse(location.hash).name === 'reset') {
            route();
            return;
        }
        DR.api('GET', 'session').then(signedIn, function (e) {
            if (e.status === 401) {
                signedOut();
            } else {
                loginForm(DR.error(e));
            }
        });
    }

    window.DR = DR;
    if (document.readyState === 'loading') {
        document.addEventListener('DOMContentLoaded', start);
    } else {
        setTimeout(start, 0);
    }
}());
