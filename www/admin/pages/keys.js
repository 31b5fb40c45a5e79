/*
 * darkroom console: API keys (owner only), through the console API:
 * GET keys, POST keys {"name","scopes"} (the secret is shown once),
 * DELETE keys/<id>.
 */

(function () {
    'use strict';

    var h = DRP.h, API = DRP.CONSOLE + 'keys',
        SCOPES = ['read', 'write', 'refunds'];

    function createForm(reload, shown) {
        var name = h('input', { name: 'name', autocomplete: 'off' }),
            boxes = SCOPES.map(function (s) {
                return h('input', { type: 'checkbox', name: 'scope',
                                    value: s, checked: s === 'read' });
            });

        function scopes() {
            return boxes.filter(function (b) {
                return b.checked;
            }).map(function (b) {
                return b.value;
            });
        }

        return DRP.form({ id: 'key-new' }, [
            DRP.field('Name', name, 'What uses it, e.g. "Lightroom sync".'),
            h('fieldset', null, [h('legend', { text: 'Scopes' })].concat(
                boxes.map(function (b) {
                    return h('label', { 'class': 'check' },
                             [b, ' ' + b.value]);
                })))
        ], 'Create the key', function () {
            if (name.value.trim() === '') {
                return 'Give the key a name.';
            }
            if (!scopes().length) {
                return 'Choose at least one scope.';
            }
            return null;
        }, function () {
            return DR.api('POST', API, { name: name.value.trim(),
                                         scopes: scopes() });
        }, function (r) {
            shown.secret = r.secret;
            shown.name = name.value.trim();
            reload();
        });
    }

    function secretBox(shown) {
        var code = h('code', { id: 'key-secret', text: shown.secret });

        return h('div', { 'class': 'secret', role: 'alert' }, [
            h('p', null, h('strong', { text: 'The secret of "' + shown.name
                + '": copy it now, it is shown only once.' })),
            h('p', null, code),
            h('p', { 'class': 'hint', text: 'Use it as "Authorization: '
                     + 'Bearer <secret>".' })]);
    }

    function render(root) {
        var shown = {};

        function load(note) {
            DRP.loading(root);
            return DR.api('GET', API).then(function (r) {
                var status = DRP.status();

                root.textContent = '';
                if (shown.secret) {
                    root.appendChild(secretBox(shown));
                    shown.secret = null;
                }
                if (note) {
                    DRP.say(status, note);
                }
                root.appendChild(status);
                root.appendChild(DRP.table(['Name', 'Key', 'Scopes',
                    'Created', 'Last used', ''],
                    (r.keys || []).map(function (k) {
                        var b = null;

                        if (!k.revoked_at) {
                            b = h('button', { type: 'button',
                                              'data-action': 'revoke',
                                              'data-key': k.id,
                                              text: 'Revoke' });
                            b.addEventListener('click', function () {
                                DR.api('DELETE', API + '/' + DRP.enc(k.id))
                                    .then(function () {
                                        load('Key "' + k.name
                                             + '" revoked.');
                                    }, function (e) {
                                        DRP.say(status, DRP.error(e), true);
                                    });
                            });
                        }
                        return [k.name, 'drk_' + k.id + '_…',
                                (k.scopes || []).join(', '),
                                DRP.when(k.created_at),
                                DRP.when(k.last_used_at),
                                k.revoked_at ? 'revoked '
                                    + DRP.when(k.revoked_at) : b];
                    }), 'No key.'));
                root.appendChild(h('section', null, [
                    h('h2', { text: 'New key' }), createForm(load, shown)]));
            }, function (e) {
                DRP.failed(root, e);
            });
        }
        return load();
    }

    DR.page('keys', { title: 'API keys', nav: 'API keys',
                      role: 'owner', render: render });
}());
