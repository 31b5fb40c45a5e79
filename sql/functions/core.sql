-- sql/functions/core.sql: generic functions every area uses.
--
-- darkroom_refuse() raises the error the C side turns into the JSON reply
-- {"error":{"code","message"}} (SQLSTATE DR<status>, message: the code,
-- detail: the message);
-- the admin views of the job queue (admin_jobs_json, admin_job_retry).
-- Tables: jobs.  Calls no function of another area.
--
-- Like every file in sql/functions/: the ONE definition of each of its
-- functions (CREATE OR REPLACE), re-applied by tools/darkroom-migrate after
-- the migrations on every run, in one transaction with bodies unchecked
-- (check_function_bodies = off).  Never define a function in sql/NNN_*.sql.


CREATE OR REPLACE FUNCTION darkroom_refuse(p_status int, p_code text, p_message text)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = 'DR' || p_status::text,
                          MESSAGE = p_code, DETAIL = p_message;
END $$;


CREATE OR REPLACE FUNCTION admin_jobs_json(p_state text, p_limit int) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT json_build_object('jobs', coalesce(json_agg(json_build_object(
               'id', j.id, 'kind', j.kind, 'payload', j.payload,
               'attempts', j.attempts, 'max_attempts', j.max_attempts,
               'run_at', j.run_at, 'dead', j.dead,
               'done_at', j.done_at, 'last_error', j.last_error)
               ORDER BY j.id DESC), '[]'))::text
      FROM (SELECT * FROM jobs j
             WHERE CASE p_state
                   WHEN 'dead' THEN j.dead
                   WHEN 'due' THEN NOT j.dead AND j.done_at IS NULL
                   WHEN 'done' THEN j.done_at IS NOT NULL
                   ELSE true END
             ORDER BY j.id DESC LIMIT p_limit) j;
$$;


-- A dead or waiting job runs again at once, with a fresh set of attempts.
CREATE OR REPLACE FUNCTION admin_job_retry(p_id bigint) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE jobs SET dead = false, attempts = 0, run_at = now(),
                    locked_until = NULL
     WHERE id = p_id AND done_at IS NULL
       AND (locked_until IS NULL OR locked_until < now());
    IF NOT FOUND THEN
        PERFORM darkroom_refuse(409, 'not_retryable',
            'There is no such job waiting or dead; running and finished '
            'jobs cannot be retried.');
    END IF;
    RETURN json_build_object('retried', p_id)::text;
END $$;
