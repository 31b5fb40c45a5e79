-- darkroom: what the metrics module reads (src/core/ngx_http_darkroom_metrics_jobs.c)
--
-- metrics_job_queue: per job kind the nginx registered, the jobs due now
-- (not leased), the age of the oldest of them, and the dead ones; read by
-- one worker's timer in a pool thread, never by a scrape.
-- Tables: jobs, lab_orders.  Calls no function of another area.
--
-- Like every file in sql/functions/: the ONE definition of each of its
-- functions (CREATE OR REPLACE), re-applied by tools/darkroom-migrate after
-- the migrations on every run.


CREATE OR REPLACE FUNCTION metrics_job_queue(p_kinds text[])
RETURNS TABLE (kind text, due bigint, oldest_due_ms bigint, dead bigint)
LANGUAGE sql STABLE AS $$
    SELECT k.kind,
           count(j.id) FILTER (WHERE d.due),
           coalesce((extract(epoch FROM now()
                     - min(j.run_at) FILTER (WHERE d.due)) * 1000)::bigint,
                    0),
           count(j.id) FILTER (WHERE j.dead)
      FROM unnest(p_kinds) AS k(kind)
      LEFT JOIN jobs j ON j.kind = k.kind
                      AND (j.dead OR j.done_at IS NULL)
      CROSS JOIN LATERAL (SELECT j.id IS NOT NULL AND NOT j.dead
                                 AND j.run_at <= now()
                                 AND (j.locked_until IS NULL
                                      OR j.locked_until < now()) AS due) d
     GROUP BY k.kind;
$$;


-- metrics_lab_orders: lab orders by lab and state (both bounded by the
-- table's CHECK constraints), read by the same timer.
CREATE OR REPLACE FUNCTION metrics_lab_orders()
RETURNS TABLE (lab text, status text, orders bigint)
LANGUAGE sql STABLE AS $$
    SELECT o.lab, o.status, count(*)
      FROM lab_orders o
     GROUP BY o.lab, o.status
     ORDER BY o.lab, o.status;
$$;
