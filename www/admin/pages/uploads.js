/*
 * darkroom console: photos uploaded from the browser into a gallery, for
 * the gallery page (galleries.js):
 *
 *   DRP.uploads(slug, changed)  the "Upload photos" section: a file
 *       picker (a labelled <input type="file" multiple>) and a drop zone,
 *       and a queue with one row per file.  changed() runs when photos
 *       were imported (the page refreshes its photo list).
 *
 * Each file is the body of its own PUT /admin/api/galleries/<slug>/
 * uploads/<name> (an XMLHttpRequest: upload progress, and the File sent
 * as it is, never read into memory), two at a time.  A name the server
 * would refuse is shown refused and never sent.  A transfer that breaks
 * (network, 5xx) is sent again, up to three times, then the row offers
 * Retry: the same name again, which replaces the upload (no second
 * photo).  Then GET <slug>/uploads is polled until every file is imported
 * (done) or failed (tools/darkroom-importer does the import).
 *
 * The section of a gallery is kept while the console is open: the page
 * redraws itself after each change, the queue goes on.
 */

(function () {
    'use strict';

    var h = DRP.h,
        NAME = /^[A-Za-z0-9 ._()\-]{1,200}$/,
        TYPE = /\.(jpe?g|png|tiff?|webp)$/i,
        PARALLEL = 2,
        TRIES = 3,
        POLL_MS = 1500,
        widgets = {};

    /* why the server would refuse this name, or null */
    function refusal(name) {
        if (name.length < 1 || name.length > 200) {
            return 'Refused: the name must be 1 to 200 characters; '
                + 'rename the file.';
        }
        if (name.charAt(0) === '.') {
            return 'Refused: the name must not start with a dot.';
        }
        if (!NAME.test(name)) {
            return 'Refused: only letters, digits, spaces and . _ - ( ) '
                + 'in a name; rename the file.';
        }
        if (!TYPE.test(name)) {
            return 'Refused: not a photo the gallery takes (.jpg, .jpeg, '
                + '.png, .tif, .tiff or .webp).';
        }
        return null;
    }

    function size(n) {
        if (n >= 1048576) {
            return (n / 1048576).toFixed(1) + ' MB';
        }
        return Math.max(1, Math.round(n / 1024)) + ' KB';
    }

    var LABEL = {
        waiting: 'Waiting', sending: 'Uploading', retrying: 'Trying again',
        lost: 'Upload failed', refused: 'Refused', received: 'Uploaded, '
        + 'waiting for import', importing: 'Importing', done: 'Done',
        failed: 'Import failed'
    };

    function widget(slug, changed) {
        var base = DRP.GALLERIES + DRP.enc(slug) + '/uploads',
            items = {}, queue = [], active = 0, polling = false,
            input, drop, list, status, section, w;

        w = { changed: changed };

        function draw(it) {
            var settled = it.state === 'done' || it.state === 'failed'
                          || it.state === 'refused' || it.state === 'lost';

            it.row.setAttribute('data-state', it.state);
            it.row.className = 'upload upload-' + it.state;
            it.label.textContent = LABEL[it.state]
                + (it.state === 'sending' && it.bar.max
                   ? ' ' + Math.floor(100 * it.bar.value / it.bar.max)
                     + ' %' : '');
            it.note.textContent = it.error || '';
            it.bar.hidden = it.state !== 'sending';
            it.retry.hidden = !(it.file && (it.state === 'lost'
                                            || it.state === 'failed'));
            if (settled || it.state === 'received') {
                it.bar.value = it.bar.max;
            }
        }

        function row(name) {
            var it = items[name];

            if (it) {
                return it;
            }
            it = { name: name, tries: 0, state: 'waiting', file: null };
            it.bar = h('progress', { max: 1, value: 0,
                                     'aria-label': 'Upload of ' + name });
            it.label = h('span', { 'class': 'upload-state' });
            it.note = h('span', { 'class': 'upload-note' });
            it.size = h('span', { 'class': 'hint' });
            it.retry = h('button', { type: 'button', 'class': 'upload-retry',
                                     text: 'Retry',
                                     'aria-label': 'Retry ' + name });
            it.retry.addEventListener('click', function () {
                it.tries = 0;
                it.error = '';
                it.state = 'waiting';
                draw(it);
                queue.push(it);
                pump();
            });
            it.row = h('li', { 'data-name': name }, [
                h('span', { 'class': 'upload-name', text: name }), ' ',
                it.size, ' ', it.label, ' ', it.bar, ' ', it.note, ' ',
                it.retry]);
            items[name] = it;
            list.appendChild(it.row);
            return it;
        }

        function add(files) {
            var i, f, it, why, n = 0;

            for (i = 0; i < files.length; i++) {
                f = files[i];
                it = row(f.name);
                if (it.state === 'sending' || it.state === 'retrying') {
                    continue;       /* on its way already */
                }
                it.file = f;
                it.tries = 0;
                it.size.textContent = size(f.size);
                why = refusal(f.name);
                it.error = why || (f.size === 0 ? 'Refused: the file is '
                                                 + 'empty.' : '');
                it.state = it.error ? 'refused' : 'waiting';
                if (!it.error) {
                    queue.push(it);
                    n++;
                }
                draw(it);
            }
            DRP.say(status, n + ' of ' + files.length + ' file'
                    + (files.length === 1 ? '' : 's') + ' queued'
                    + (n < files.length ? ': ' + (files.length - n)
                       + ' refused, see why below.' : '.'),
                    n < files.length);
            pump();
        }

        function pump() {
            while (active < PARALLEL && queue.length) {
                send(queue.shift());
            }
        }

        function answer(x) {
            try {
                return JSON.parse(x.responseText) || {};
            } catch (e) {
                return {};
            }
        }

        function finish(it, x) {
            var st = x ? x.status : 0, j = x ? answer(x) : {},
                msg = j.error && j.error.message;

            active--;
            if (st >= 200 && st < 300) {
                it.state = (j.upload && j.upload.state) || 'received';
                it.error = '';
                poll();
            } else if (st === 0 || st >= 500 || st === 408 || st === 429) {
                it.tries++;
                it.error = msg || (st ? 'The server failed (' + st + ').'
                                      : 'The connection broke.');
                if (it.tries < TRIES) {
                    it.state = 'retrying';
                    setTimeout(function () {
                        queue.push(it);
                        pump();
                    }, 1000 * it.tries);
                } else {
                    it.state = 'lost';
                    it.error += ' Tried ' + TRIES + ' times: press Retry.';
                }
            } else {
                it.state = 'refused';
                it.error = st === 401
                    ? 'Your session ended: sign in again, then upload it.'
                    : (msg || (st === 413 ? 'Refused: the file is larger '
                               + 'than the server takes.'
                               : 'Refused (' + st + ').'));
                if (st === 401 || st === 403) {
                    it.state = 'lost';
                }
            }
            draw(it);
            pump();
        }

        function send(it) {
            var x = new XMLHttpRequest(), hd = DR.headers(), k;

            active++;
            it.state = 'sending';
            it.bar.max = it.file.size;
            it.bar.value = 0;
            draw(it);

            x.open('PUT', base + '/' + DRP.enc(it.name));
            for (k in hd) {
                if (Object.prototype.hasOwnProperty.call(hd, k)) {
                    x.setRequestHeader(k, hd[k]);
                }
            }
            x.setRequestHeader('Content-Type',
                               it.file.type || 'application/octet-stream');
            x.setRequestHeader('Accept', 'application/json');
            x.upload.onprogress = function (e) {
                if (e.lengthComputable) {
                    it.bar.max = e.total;
                    it.bar.value = e.loaded;
                    draw(it);
                }
            };
            x.onload = function () {
                finish(it, x);
            };
            x.onerror = x.onabort = x.ontimeout = function () {
                finish(it, null);
            };
            x.send(it.file);
        }

        /* the import: GET uploads until no file of ours waits for it */
        function poll() {
            if (polling) {
                return;
            }
            polling = true;
            setTimeout(tick, POLL_MS);
        }

        function tick() {
            DR.api('GET', base).then(function (r) {
                var waiting = false, imported = false;

                (r.uploads || []).forEach(function (u) {
                    var it = items[u.name];

                    /* ours only, and only once the server has it */
                    if (!it || it.state === 'sending'
                        || it.state === 'waiting' || it.state === 'retrying'
                        || it.state === 'refused' || it.state === 'lost')
                    {
                        return;
                    }
                    if (u.state === 'done' && it.state !== 'done') {
                        imported = true;
                    }
                    it.state = u.state;
                    /* received with an error: the import tries again */
                    it.error = u.state === 'failed'
                        ? (u.error || 'The file could not be imported.')
                        : (u.error && u.state !== 'done'
                           ? 'Import will be tried again: ' + u.error : '');
                    draw(it);
                });
                Object.keys(items).forEach(function (n) {
                    var s = items[n].state;
                    if (s === 'received' || s === 'importing'
                        || s === 'sending' || s === 'waiting'
                        || s === 'retrying')
                    {
                        waiting = true;
                    }
                });
                if (imported && w.changed) {
                    w.changed();
                }
                polling = false;
                if (waiting) {
                    poll();
                }
            }, function (e) {
                polling = false;
                DRP.say(status, 'The import state cannot be read: '
                        + DRP.error(e), true);
                if (e && e.status !== 401) {
                    poll();
                }
            });
        }

        input = h('input', { type: 'file', id: 'upload-files',
                             name: 'files', multiple: true,
                             accept: '.jpg,.jpeg,.png,.tif,.tiff,.webp,'
                                     + 'image/jpeg,image/png,image/tiff,'
                                     + 'image/webp' });
        input.addEventListener('change', function () {
            add(Array.prototype.slice.call(input.files));
            input.value = '';
        });

        drop = h('div', { 'class': 'upload-drop', id: 'upload-drop' }, [
            h('label', { 'for': 'upload-files', text: 'Choose photos' }),
            input,
            h('p', { 'class': 'hint', text: '…or drop them here. JPEG, '
                     + 'PNG, TIFF or WebP; a name sent again replaces '
                     + 'that upload.' })]);
        ['dragenter', 'dragover'].forEach(function (ev) {
            drop.addEventListener(ev, function (e) {
                e.preventDefault();
                drop.classList.add('over');
            });
        });
        drop.addEventListener('dragleave', function () {
            drop.classList.remove('over');
        });
        drop.addEventListener('drop', function (e) {
            e.preventDefault();
            drop.classList.remove('over');
            if (e.dataTransfer && e.dataTransfer.files) {
                add(Array.prototype.slice.call(e.dataTransfer.files));
            }
        });

        list = h('ul', { 'class': 'upload-queue', id: 'upload-queue',
                         'aria-live': 'polite' });
        status = DRP.status();

        section = h('section', { id: 'gallery-uploads' }, [
            h('h2', { text: 'Upload photos' }), drop, status, list]);

        w.section = section;
        return w;
    }

    DRP.uploads = function (slug, changed) {
        var w = widgets[slug];

        if (!w) {
            w = widgets[slug] = widget(slug, changed);
        }
        w.changed = changed;
        return w.section;
    };
}());
