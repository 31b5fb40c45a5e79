/*
 * darkroom console: jobs.  GET /admin/api/jobs?state=dead|due|done, each
 * with its last error; POST /admin/api/jobs/<id>/retry runs a dead or
 * waiting job again at once.
 */

(function () {
    'use strict';

    var el = DR.el,
        STATES = [['dead', 'Dead'], ['due', 'Waiting'], ['done', 'Done']];

    function retry(job, button, cell) {
        button.disabled = true;
        cell.textContent = 'Retrying…';
        DR.api('POST', '/admin/api/jobs/' + encodeURIComponent(job.id)
               + '/retry', {}).then(function () {
            cell.textContent = 'Queued to run again.';
            cell.className = 'ok';
            DR.notice('Job ' + job.id + ' will run again.');
        }, function (e) {
            button.disabled = false;
            cell.textContent = DR.error(e);
            cell.className = 'error';
            cell.setAttribute('role', 'alert');
        });
    }

    function row(j) {
        var cell = el('span', { 'class': 'muted', 'aria-live': 'polite' }),
            button = j.done_at ? null
                : el('button', { type: 'button', 'class': 'retry',
                                 'data-job': j.id,
                                 'aria-label': 'Retry job ' + j.id,
                                 text: 'Retry',
                                 onclick: function () {
                                     retry(j, button, cell);
                                 } });

        return [String(j.id), j.kind,
                j.attempts + ' of ' + j.max_attempts,
                el('span', { 'class': 'last-error',
                             text: j.last_error || '—' }),
                DR.when(j.done_at || j.run_at),
                el('span', null, [button, ' ', cell])];
    }

    function render(root, params) {
        var state = params.state || 'dead',
            select = el('select', { id: 'jobs-state',
                onchange: function () {
                    DR.go('jobs', { state: select.value });
                } }, STATES.map(function (s) {
                    return el('option', { value: s[0], text: s[1],
                                          selected: s[0] === state });
                })),
            list = el('div', { id: 'jobs-list' });

        if (!STATES.some(function (s) { return s[0] === state; })) {
            state = 'dead';
        }
        root.appendChild(el('div', { 'class': 'filters' },
                            DR.field('Show', select)));
        root.appendChild(list);
        list.appendChild(el('p', { 'class': 'loading', text: 'Loading…' }));
        return DR.api('GET', '/admin/api/jobs?state=' + state)
            .then(function (d) {
                list.textContent = '';
                list.appendChild(DR.table(['Job', 'Kind', 'Attempts',
                    'Last error', state === 'done' ? 'Done' : 'Runs at', ''],
                    (d.jobs || []).map(row),
                    state === 'dead' ? 'No dead job: all is well.'
                                     : 'No job.'));
            }, function (e) {
                list.textContent = '';
                list.appendChild(el('p', { 'class': 'error', role: 'alert',
                                           text: DR.error(e) }));
            });
    }

    DR.page('jobs', { title: 'Jobs', nav: 'Jobs', render: render });
}());
