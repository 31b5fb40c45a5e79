-- The request that queued a job (issue 18, tracing): nginx's $request_id
-- of the request task whose transaction inserted the row, so one order
-- can be followed from its checkout to its jobs and their provider calls
-- in the logs.  core's db layer sets the session's darkroom.request_id
-- (ngx_http_darkroom_db.c) before the transactions of a request that may
-- write (not GET or HEAD), and to '' otherwise (a job runner, a read):
-- the DEFAULT reads it, so no function that inserts a job changes.  A job
-- runner sets it to the job's own request_id while the job runs.  NULL:
-- queued by the owner's psql, a timer, or a webhook's group commit.

ALTER TABLE jobs ADD COLUMN request_id text
    DEFAULT NULLIF(current_setting('darkroom.request_id', true), '');

-- job_claim() (functions/core.sql) returns it too, so the runner sends
-- it on the job's provider calls and the jobs a job queues inherit it: a
-- new result column, so the old function goes first.
DROP FUNCTION IF EXISTS job_claim(text, bigint, text[]);
