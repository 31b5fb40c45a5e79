-- The request that queued a job (issue 18, tracing): nginx's $request_id
-- of the request task whose transaction inserted the row, so one order
-- can be followed from its checkout to its jobs and their provider calls
-- in the logs.  core's db layer sets the session's darkroom.request_id
-- (ngx_http_darkroom_db.c) before the transactions of a request that may
-- write (not GET or HEAD), and to '' otherwise (a job runner, a read):
-- the DEFAULT reads it, so no function that inserts a job changes.  NULL:
-- queued by a job, the owner's psql, or a webhook's group commit.

ALTER TABLE jobs ADD COLUMN request_id text
    DEFAULT NULLIF(current_setting('darkroom.request_id', true), '');
