-- sql/functions/core.sql: generic functions every area uses.
--
-- darkroom_refuse() raises the error the C side turns into the JSON reply
-- {"error":{"code","message"}} (SQLSTATE DR<status>, message: the code,
-- detail: the message);
-- the job runner's statements (job_claim, job_give_back, job_done,
-- job_again, job_failed, job_owners, job_release, job_recurring), which
-- the C side calls and reads by column name; the schema and job counts
-- of /health (core_health); the admin views of the job queue
-- (admin_jobs_json, admin_job_retry).
-- Tables: jobs, schema_migrations, public_versions (public_version_bump,
-- the triggers of darkroom_public_cache).  Calls no function of another
-- area.
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


-- The job runner (src/core/ngx_http_darkroom_jobs.c).  A claim leases the
-- next due job of the kinds the runner may take to p_owner ("host/pid/
-- start/ns") and counts the attempt; every outcome is written only while
-- (id, attempts) still match, so a runner that lost its lease never
-- overwrites a newer run.

CREATE OR REPLACE FUNCTION job_claim(p_owner text, p_lease_ms bigint,
    p_kinds text[])
RETURNS TABLE (id bigint, kind text, payload text, attempts integer,
               max_attempts integer, request_id text)
LANGUAGE sql AS $$
    UPDATE jobs j
       SET attempts = j.attempts + 1, locked_by = p_owner,
           locked_until = now() + p_lease_ms * interval '1 millisecond'
     WHERE j.id = (SELECT q.id FROM jobs q
                    WHERE NOT q.dead AND q.done_at IS NULL
                      AND q.run_at <= now()
                      AND (q.locked_until IS NULL OR q.locked_until < now())
                      AND q.kind = ANY (p_kinds)
                    ORDER BY q.run_at, q.id LIMIT 1
                    FOR UPDATE SKIP LOCKED)
    RETURNING j.id, j.kind, j.payload::text, j.attempts, j.max_attempts,
              j.request_id;
$$;


-- A claim over its kind's cap of runners: the job back as it was found.
CREATE OR REPLACE FUNCTION job_give_back(p_id bigint, p_attempts integer)
RETURNS void LANGUAGE sql AS $$
    UPDATE jobs SET attempts = attempts - 1, locked_until = NULL
     WHERE id = p_id AND attempts = p_attempts;
$$;


CREATE OR REPLACE FUNCTION job_done(p_id bigint, p_attempts integer)
RETURNS void LANGUAGE sql AS $$
    UPDATE jobs SET done_at = now(), locked_until = NULL, last_error = NULL
     WHERE id = p_id AND attempts = p_attempts;
$$;


-- Not a failure: the job comes back later, the attempt is given back.
CREATE OR REPLACE FUNCTION job_again(p_id bigint, p_attempts integer,
    p_delay_ms bigint)
RETURNS void LANGUAGE sql AS $$
    UPDATE jobs SET locked_until = NULL, attempts = attempts - 1,
                    run_at = now() + p_delay_ms * interval '1 millisecond'
     WHERE id = p_id AND attempts = p_attempts;
$$;


CREATE OR REPLACE FUNCTION job_failed(p_id bigint, p_attempts integer,
    p_delay_ms bigint, p_error text, p_dead boolean)
RETURNS void LANGUAGE sql AS $$
    UPDATE jobs SET locked_until = NULL, last_error = p_error, dead = p_dead,
                    run_at = now() + p_delay_ms * interval '1 millisecond'
     WHERE id = p_id AND attempts = p_attempts;
$$;


-- The owners of open leases on this host and PID namespace: p_host is the
-- owner's first part, p_ns its last.
CREATE OR REPLACE FUNCTION job_owners(p_host text, p_ns text,
    p_limit integer)
RETURNS TABLE (owner text) LANGUAGE sql STABLE AS $$
    SELECT DISTINCT j.locked_by FROM jobs j
     WHERE j.done_at IS NULL AND j.locked_until > now()
       AND starts_with(j.locked_by, p_host || '/')
       AND right(j.locked_by, length(p_ns) + 1) = '/' || p_ns
     LIMIT p_limit;
$$;


-- The leases of an owner that is gone: its jobs can be claimed at once.
CREATE OR REPLACE FUNCTION job_release(p_owner text)
RETURNS void LANGUAGE sql AS $$
    UPDATE jobs SET locked_until = NULL
     WHERE locked_by = p_owner AND done_at IS NULL AND locked_until > now();
$$;


-- The one row of a recurring kind, made if it is not there.
CREATE OR REPLACE FUNCTION job_recurring(p_kind text)
RETURNS void LANGUAGE sql AS $$
    INSERT INTO jobs (kind, dedupe_key) VALUES (p_kind, 'recurring:' || p_kind)
    ON CONFLICT (dedupe_key) DO NOTHING;
$$;


-- /health: the schema version and the job queue (due, running, dead).
CREATE OR REPLACE FUNCTION core_health()
RETURNS TABLE (schema integer, due bigint, running bigint, dead bigint)
LANGUAGE sql STABLE AS $$
    SELECT (SELECT coalesce(max(m.version), 0) FROM schema_migrations m),
           j.due, j.running,
           (SELECT count(*) FROM jobs d WHERE d.dead)
      FROM (SELECT count(*) FILTER (WHERE q.run_at <= now()
                                      AND (q.locked_until IS NULL
                                           OR q.locked_until < now())) AS due,
                   count(*) FILTER (WHERE q.locked_until >= now())
                   AS running
              FROM jobs q WHERE NOT q.dead AND q.done_at IS NULL) j;
$$;


-- darkroom_public_cache (issue 17): the trigger that bumps an answer's
-- row of public_versions (sql/034), named by its argument, in the
-- transaction of the change.  A statement trigger: once per statement.
CREATE OR REPLACE FUNCTION public_version_bump() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE public_versions SET version = version + 1
     WHERE name = TG_ARGV[0];
    RETURN NULL;
END $$;
