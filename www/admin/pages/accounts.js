/*
 * darkroom console: accounts (owner only), through the console API:
 * GET accounts, POST accounts {"email","name","role","password"},
 * PUT accounts/<id> {"role","name","disabled"}.
 */

(function () {
    'use strict';

    var h = DRP.h, API = DRP.CONSOLE + 'accounts',
        EMAIL = /^[^@\s]+@[^@\s]+$/;

    function roleSelect(value, name) {
        var s = h('select', { name: name || 'role' }, [
            h('option', { value: 'staff', text: 'Staff' }),
            h('option', { value: 'owner', text: 'Owner' })]);
        s.value = value || 'staff';
        return s;
    }

    function createForm(reload) {
        var email = h('input', { name: 'email', type: 'email',
                                 autocomplete: 'off' }),
            name = h('input', { name: 'name', autocomplete: 'off' }),
            role = roleSelect('staff'),
            pass = h('input', { name: 'password', type: 'password',
                                autocomplete: 'new-password' });

        return DRP.form({ id: 'account-new' }, [
            DRP.field('Email', email),
            DRP.field('Name', name),
            DRP.field('Role', role, 'Staff: orders, fulfilment, galleries; '
                      + 'no refunds, accounts or keys.'),
            DRP.field('Password', pass, 'At least 10 characters.')
        ], 'Create the account', function () {
            if (!EMAIL.test(email.value.trim())) {
                return 'The email is not an email address.';
            }
            if (name.value.trim() === '') {
                return 'Give the account a name.';
            }
            if (pass.value.length < 10) {
                return 'The password must be at least 10 characters.';
            }
            return null;
        }, function () {
            return DR.api('POST', API, { email: email.value.trim(),
                name: name.value.trim(), role: role.value,
                password: pass.value });
        }, function (r) {
            reload('Account ' + ((r.account && r.account.email)
                                 || email.value.trim()) + ' created.');
        });
    }

    function row(a, reload, status) {
        var role = roleSelect(a.role, 'role-' + a.id), save, toggle,
            me = window.DR && DR.me && DR.me.id === a.id;

        role.setAttribute('aria-label', 'Role of ' + a.email);

        function put(body, what) {
            return DR.api('PUT', API + '/' + DRP.enc(a.id), body).then(
                function () {
                    reload(a.email + ': ' + what + '.');
                }, function (e) {
                    DRP.say(status, a.email + ': ' + DRP.error(e), true);
                });
        }

        save = h('button', { type: 'button', 'data-action': 'role',
                             text: 'Change role' });
        save.addEventListener('click', function () {
            if (role.value === a.role) {
                DRP.say(status, a.email + ' is ' + a.role + ' already.',
                        true);
                return;
            }
            put({ role: role.value }, 'now ' + role.value);
        });

        toggle = h('button', { type: 'button', 'data-action': 'disable',
                               text: a.disabled ? 'Enable' : 'Disable' });
        toggle.addEventListener('click', function () {
            put({ disabled: !a.disabled },
                a.disabled ? 'enabled' : 'disabled (signed out)');
        });

        return [a.email + (me ? ' (you)' : ''), a.name || '',
                h('span', null, [role, ' ', save]),
                a.disabled ? 'disabled' : 'active',
                DRP.when(a.created_at),
                toggle];
    }

    function render(root) {
        function load(note) {
            DRP.loading(root);
            return DR.api('GET', API).then(function (r) {
                var status = DRP.status();

                root.textContent = '';
                if (note) {
                    DRP.say(status, note);
                }
                root.appendChild(status);
                root.appendChild(DRP.table(['Email', 'Name', 'Role',
                    'State', 'Created', ''],
                    (r.accounts || []).map(function (a) {
                        return row(a, load, status);
                    }), 'No account.'));
                root.appendChild(h('section', null, [
                    h('h2', { text: 'New account' }), createForm(load)]));
            }, function (e) {
                DRP.failed(root, e);
            });
        }
        return load();
    }

    DR.page('accounts', { title: 'Accounts', nav: 'Accounts',
                          role: 'owner', render: render });
}());
