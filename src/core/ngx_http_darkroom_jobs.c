
/*
 * darkroom: the background job runner.
 *
 * Jobs are rows, written in the same transaction as the change that causes
 * them.  Each worker has darkroom_jobs_concurrency runners, each with a
 * timer; when one fires and its run is not in flight, a
 * pool thread claims due jobs one at a time with FOR UPDATE SKIP LOCKED,
 * leases each for darkroom_jobs_lease, runs the handler registered for its
 * kind and records the outcome: done, retried later with exponential
 * backoff and jitter, or dead after max_attempts.  A job whose worker died
 * is claimed again once its lease has expired.  Every claim increments
 * attempts, and the outcome is written only while (id, attempts) still
 * match, so a worker that lost its lease can never overwrite a newer run.
 *
 * A lease names its owner, "host/pid/start/ns" (start: the process's
 * start time in clock ticks, so a reused pid is not mistaken for the
 * owner; ns: the boot and the PID namespace, so a pid is only read where
 * it means the same process).  A runner releases the leases of owners
 * with our host and ns that are gone, so a job of a killed worker runs
 * again at once rather than after its lease.
 * An outcome that cannot be written because Postgres is unreachable is
 * kept by the runner and written when Postgres answers again.  Each kind
 * takes at most its share of a worker's runners (by default all but one),
 * so one slow kind cannot hold every runner.
 *
 * With a debug log, a run is traced: the thread notes each claim, provider
 * call and outcome in the runner's trace (it never logs), which the event
 * loop logs at debug level when the run is done.
 */


#include "ngx_http_darkroom.h"

#include <signal.h>


#define NGX_HTTP_DARKROOM_JOBS_LOG     8
#define NGX_HTTP_DARKROOM_JOBS_OWNERS  100

/* the claim's array of kinds, "{kind,kind,...}" */
#define NGX_HTTP_DARKROOM_JOBS_KINDS_LEN  1024

/* boot_id without dashes (32), '.', the PID namespace's inode (20) */
#define NGX_HTTP_DARKROOM_JOBS_NS_LEN  (32 + 1 + NGX_INT64_LEN)


typedef struct {
    ngx_uint_t                      level;
    char                            text[NGX_HTTP_DARKROOM_DETAIL_LEN];
} ngx_http_darkroom_jobs_log_t;


/* what to write for a job once its handler returned */

typedef struct {
    int64_t                         id;
    ngx_uint_t                      attempts;
    ngx_int_t                       rc;        /* NGX_OK, NGX_AGAIN, other */
    ngx_uint_t                      dead;
    ngx_msec_t                      delay;
    char                            error[NGX_HTTP_DARKROOM_DETAIL_LEN];
    unsigned                        set:1;
} ngx_http_darkroom_jobs_outcome_t;


typedef struct {
    ngx_event_t                     timer;
    ngx_event_t                     exit_watch;
    ngx_thread_task_t              *task;
    ngx_http_darkroom_main_conf_t  *dmcf;
    ngx_http_darkroom_db_t          db;
    char                            host[NGX_MAXHOSTNAMELEN + 1];

    /* set by the first thread run: /proc is not read on the event loop */
    char                            ns[NGX_HTTP_DARKROOM_JOBS_NS_LEN + 1];
    char                            owner[NGX_MAXHOSTNAMELEN
                                          + 2 * NGX_INT64_LEN
                                          + NGX_HTTP_DARKROOM_JOBS_NS_LEN
                                          + 4];
    unsigned                        seed;

    /*
     * an outcome Postgres could not take yet; written by the thread, read
     * on the event loop only while no run is out (!busy)
     */
    ngx_http_darkroom_jobs_outcome_t  pending;

    /* filled by the thread, read on the event loop when it is done */
    ngx_uint_t                      claimed;
    ngx_uint_t                      nlog;
    ngx_http_darkroom_jobs_log_t    log[NGX_HTTP_DARKROOM_JOBS_LOG];

#if (NGX_DEBUG)
    ngx_http_darkroom_trace_t       trace;
    unsigned                        tracing:1; /* the debug log is on */
#endif

    unsigned                        busy:1;
    unsigned                        seeded:1;  /* recurring rows exist */
    unsigned                        final:1;   /* exiting: record only */
} ngx_http_darkroom_jobs_t;


static void ngx_http_darkroom_jobs_tick(ngx_event_t *ev);
static void ngx_http_darkroom_jobs_post(ngx_http_darkroom_jobs_t *jobs,
    ngx_log_t *log);
static void ngx_http_darkroom_jobs_exit_watch(ngx_event_t *ev);
static void ngx_http_darkroom_jobs_last(ngx_http_darkroom_jobs_t *jobs,
    ngx_log_t *log);
static void ngx_http_darkroom_jobs_thread(void *data, ngx_log_t *log);
static void ngx_http_darkroom_jobs_run(ngx_http_darkroom_jobs_t *jobs);
static ngx_int_t ngx_http_darkroom_jobs_pending(
    ngx_http_darkroom_jobs_t *jobs);
static void ngx_http_darkroom_jobs_final(ngx_http_darkroom_jobs_t *jobs);
static ngx_int_t ngx_http_darkroom_jobs_seed(ngx_http_darkroom_jobs_t *jobs);
static ngx_int_t ngx_http_darkroom_jobs_run_one(
    ngx_http_darkroom_jobs_t *jobs);
static PGresult *ngx_http_darkroom_jobs_claim(ngx_http_darkroom_jobs_t *jobs,
    ngx_http_darkroom_error_t *err);
static ngx_int_t ngx_http_darkroom_jobs_take(ngx_http_darkroom_jobs_t *jobs,
    ngx_uint_t k, int64_t id, ngx_uint_t attempts);
static ngx_int_t ngx_http_darkroom_jobs_finish(ngx_http_darkroom_jobs_t *jobs,
    ngx_http_darkroom_job_t *job, ngx_int_t rc,
    ngx_http_darkroom_error_t *err);
static ngx_int_t ngx_http_darkroom_jobs_record(ngx_http_darkroom_jobs_t *jobs,
    ngx_http_darkroom_jobs_outcome_t *o, ngx_http_darkroom_error_t *dberr);
static void ngx_http_darkroom_jobs_sweep(ngx_http_darkroom_jobs_t *jobs);
static ngx_uint_t ngx_http_darkroom_jobs_owner_gone(
    ngx_http_darkroom_jobs_t *jobs, const char *owner);
static unsigned long long ngx_http_darkroom_jobs_start_time(long pid);
static void ngx_http_darkroom_jobs_identify(ngx_http_darkroom_jobs_t *jobs);
static void ngx_http_darkroom_jobs_ns(char *ns, size_t size);
static ngx_int_t ngx_http_darkroom_jobs_caps(ngx_cycle_t *cycle,
    ngx_http_darkroom_main_conf_t *dmcf);
static ngx_msec_t ngx_http_darkroom_jobs_delay(
    ngx_http_darkroom_jobs_t *jobs, ngx_http_darkroom_job_t *job);
static void ngx_http_darkroom_jobs_note(ngx_http_darkroom_jobs_t *jobs,
    ngx_uint_t level, const char *fmt, ...);
static void ngx_http_darkroom_jobs_done(ngx_event_t *ev);


static ngx_http_darkroom_job_kind_t  ngx_http_darkroom_builtin_kinds[] = {
    { "http_post", ngx_http_darkroom_job_http_post, 0 },
    { NULL, NULL, 0 }
};



/* the registered kinds; per kind, its cap and its runners in this worker */
static ngx_http_darkroom_job_kind_t  *ngx_http_darkroom_job_kinds;
static ngx_uint_t                     ngx_http_darkroom_njob_kinds;
static ngx_uint_t                    *ngx_http_darkroom_job_caps;
static ngx_atomic_t                  *ngx_http_darkroom_job_running;

/* when a runner of this worker last looked for leases of dead owners */
static ngx_atomic_t                   ngx_http_darkroom_jobs_swept;


/*
 * Job kinds are registered at configuration time, by this module and by
 * the other darkroom modules (labs, mail), from their postconfiguration.
 */

ngx_int_t
ngx_http_darkroom_job_register(ngx_conf_t *cf, const char *kind,
    ngx_http_darkroom_job_pt handler)
{
    ngx_http_darkroom_job_kind_t   *k;
    ngx_http_darkroom_main_conf_t  *dmcf;

    dmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_darkroom_module);

    if (dmcf->job_kinds == NULL) {
        dmcf->job_kinds = ngx_array_create(cf->pool, 8,
                                      sizeof(ngx_http_darkroom_job_kind_t));
        if (dmcf->job_kinds == NULL) {
            return NGX_ERROR;
        }
    }

    k = ngx_array_push(dmcf->job_kinds);
    if (k == NULL) {
        return NGX_ERROR;
    }

    k->kind = kind;
    k->handler = handler;
    k->recurring = 0;

    return NGX_OK;
}


/*
 * A recurring kind has one row, made by the runners of the nginx that
 * registers it (so a shop without the feature has none); its handler
 * answers NGX_AGAIN with the time until its next run.
 */

ngx_int_t
ngx_http_darkroom_job_register_recurring(ngx_conf_t *cf, const char *kind,
    ngx_http_darkroom_job_pt handler)
{
    ngx_http_darkroom_job_kind_t   *k;
    ngx_http_darkroom_main_conf_t  *dmcf;

    if (ngx_http_darkroom_job_register(cf, kind, handler) != NGX_OK) {
        return NGX_ERROR;
    }

    dmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_darkroom_module);

    k = dmcf->job_kinds->elts;
    k[dmcf->job_kinds->nelts - 1].recurring = 1;

    return NGX_OK;
}


ngx_int_t
ngx_http_darkroom_jobs_postconfiguration(ngx_conf_t *cf)
{
    ngx_http_darkroom_job_kind_t  *k;

    for (k = ngx_http_darkroom_builtin_kinds; k->kind; k++) {
        if (ngx_http_darkroom_job_register(cf, k->kind, k->handler)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_darkroom_jobs_init_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                      n;
    ngx_http_darkroom_jobs_t       *jobs, *runners;
    ngx_http_darkroom_main_conf_t  *dmcf;

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        /* thread pools run in workers only */
        return NGX_OK;
    }

    dmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_darkroom_module);

    if (dmcf == NULL || dmcf->conninfo.data == NULL || !dmcf->jobs) {
        return NGX_OK;
    }

    /*
     * Several runners per worker, each with its own timer and task, so a
     * slow provider call holds up one runner, not every job of the worker.
     */

    runners = ngx_pcalloc(cycle->pool,
                          dmcf->jobs_concurrency
                          * sizeof(ngx_http_darkroom_jobs_t));
    if (runners == NULL) {
        return NGX_ERROR;
    }

    if (ngx_http_darkroom_jobs_caps(cycle, dmcf) != NGX_OK) {
        return NGX_ERROR;
    }

    for (n = 0; n < dmcf->jobs_concurrency; n++) {
        jobs = &runners[n];

        jobs->dmcf = dmcf;
        jobs->seed = (unsigned) (ngx_pid ^ ngx_time() ^ ngx_current_msec)
                     + n;

        ngx_snprintf((u_char *) jobs->host, sizeof(jobs->host) - 1, "%V",
                     &cycle->hostname);

        jobs->task = ngx_thread_task_alloc(cycle->pool, 0);
        if (jobs->task == NULL) {
            return NGX_ERROR;
        }

        jobs->task->ctx = jobs;
        jobs->task->handler = ngx_http_darkroom_jobs_thread;
        jobs->task->event.data = jobs;
        jobs->task->event.handler = ngx_http_darkroom_jobs_done;

        jobs->timer.handler = ngx_http_darkroom_jobs_tick;
        jobs->timer.data = jobs;
        jobs->timer.log = cycle->log;

        /* a pending tick must not hold a worker on graceful shutdown */
        jobs->timer.cancelable = 1;

        /* armed only while an outcome waits: that one must hold it */
        jobs->exit_watch.handler = ngx_http_darkroom_jobs_exit_watch;
        jobs->exit_watch.data = jobs;
        jobs->exit_watch.log = cycle->log;

        /* workers start together: spread their first ticks */
        ngx_add_timer(&jobs->timer,
                      1 + (ngx_msec_t) rand_r(&jobs->seed)
                          % dmcf->jobs_interval);
    }

    return NGX_OK;
}


/*
 * Each kind's cap: darkroom_jobs_kind_concurrency, else every runner but
 * one, so that whatever else is due always finds a runner.
 */

static ngx_int_t
ngx_http_darkroom_jobs_caps(ngx_cycle_t *cycle,
    ngx_http_darkroom_main_conf_t *dmcf)
{
    ngx_uint_t                     i, j, n;
    ngx_http_darkroom_kind_cap_t  *cap;

    ngx_http_darkroom_job_kinds = dmcf->job_kinds->elts;
    n = dmcf->job_kinds->nelts;
    ngx_http_darkroom_njob_kinds = n;

    ngx_http_darkroom_job_caps = ngx_pcalloc(cycle->pool,
                                             n * sizeof(ngx_uint_t));
    ngx_http_darkroom_job_running = ngx_pcalloc(cycle->pool,
                                                n * sizeof(ngx_atomic_t));

    if (ngx_http_darkroom_job_caps == NULL
        || ngx_http_darkroom_job_running == NULL)
    {
        return NGX_ERROR;
    }

    for (i = 0; i < n; i++) {
        ngx_http_darkroom_job_caps[i] = (dmcf->jobs_concurrency > 1)
                                        ? dmcf->jobs_concurrency - 1 : 1;
    }

    if (dmcf->jobs_kind_caps == NULL) {
        return NGX_OK;
    }

    cap = dmcf->jobs_kind_caps->elts;

    for (j = 0; j < dmcf->jobs_kind_caps->nelts; j++) {

        for (i = 0; i < n; i++) {
            if (ngx_strlen(ngx_http_darkroom_job_kinds[i].kind)
                    == cap[j].kind.len
                && ngx_strncmp(ngx_http_darkroom_job_kinds[i].kind,
                               cap[j].kind.data, cap[j].kind.len) == 0)
            {
                ngx_http_darkroom_job_caps[i] = cap[j].n;
                break;
            }
        }

        if (i == n) {
            /* maybe a kind of another version: a warning, not an error */
            ngx_log_error(NGX_LOG_WARN, cycle->log, 0,
                          "darkroom_jobs_kind_concurrency: no module runs "
                          "job kind \"%V\" (%s:%ui)", &cap[j].kind,
                          cap[j].file, cap[j].line);
        }
    }

    return NGX_OK;
}


static void
ngx_http_darkroom_jobs_tick(ngx_event_t *ev)
{
    ngx_http_darkroom_jobs_t  *jobs = ev->data;

    if (ngx_exiting || ngx_quit || ngx_terminate || jobs->busy) {
        return;
    }

    ngx_http_darkroom_jobs_post(jobs, ev->log);

    if (!jobs->busy) {
        ngx_add_timer(&jobs->timer, jobs->dmcf->jobs_interval);
    }
}


static void
ngx_http_darkroom_jobs_post(ngx_http_darkroom_jobs_t *jobs, ngx_log_t *log)
{
    jobs->claimed = 0;
    jobs->nlog = 0;
    jobs->db.conninfo = (const char *) jobs->dmcf->conninfo.data;
    jobs->db.timeout = jobs->dmcf->db_timeout;
    jobs->db.deadline = 0;

#if (NGX_DEBUG)
    jobs->tracing = (log->log_level & NGX_LOG_DEBUG_HTTP) ? 1 : 0;
    jobs->trace.posted = ngx_http_darkroom_monotonic_ms();
#endif

    if (ngx_thread_task_post(jobs->dmcf->pool, jobs->task) != NGX_OK) {
        return;
    }

    jobs->busy = 1;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, log, 0,
                   "darkroom jobs: run posted%s",
                   jobs->final ? ", to record the last outcome" : "");

    /* an exiting worker stays until the runner is back and has logged */
    ngx_http_darkroom_hold(log);
}


/*
 * While an outcome waits for Postgres, a timer that is not cancelable
 * keeps an exiting worker (reload, quit) long enough to notice and make
 * one more run that only records it; the tick, being cancelable, would
 * never fire then.
 */

static void
ngx_http_darkroom_jobs_exit_watch(ngx_event_t *ev)
{
    ngx_http_darkroom_jobs_t  *jobs = ev->data;

    if (jobs->busy || !jobs->pending.set || jobs->final) {
        /* a run is out (its completion looks), or nothing waits */
        return;
    }

    if (ngx_terminate) {
        return;
    }

    if (ngx_exiting || ngx_quit) {
        ngx_http_darkroom_jobs_last(jobs, ev->log);
        return;
    }

    ngx_add_timer(ev, ngx_min(jobs->dmcf->jobs_interval, 1000));
}


/* the exiting worker's last run, which only records the kept outcome */

static void
ngx_http_darkroom_jobs_last(ngx_http_darkroom_jobs_t *jobs, ngx_log_t *log)
{
    jobs->final = 1;

    ngx_http_darkroom_jobs_post(jobs, log);

    if (!jobs->busy) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "darkroom jobs: outcome of job %L not recorded on "
                      "exit: no thread, its lease runs out",
                      jobs->pending.id);
    }
}


static void
ngx_http_darkroom_jobs_thread(void *data, ngx_log_t *log)
{
    ngx_http_darkroom_jobs_t   *jobs = data;

#if (NGX_DEBUG)
    ngx_http_darkroom_trace_begin(jobs->tracing ? &jobs->trace : NULL);
#endif

    ngx_http_darkroom_jobs_run(jobs);

    ngx_http_darkroom_trace_end();
}


/* in a thread: the kept outcome, then due jobs up to a batch */

static void
ngx_http_darkroom_jobs_run(ngx_http_darkroom_jobs_t *jobs)
{
    if (jobs->owner[0] == '\0') {
        ngx_http_darkroom_jobs_identify(jobs);
    }

    if (jobs->final) {
        ngx_http_darkroom_jobs_final(jobs);
        return;
    }

    if (ngx_http_darkroom_jobs_seed(jobs) != NGX_OK) {
        return;
    }

    if (ngx_http_darkroom_jobs_pending(jobs) != NGX_OK) {
        /* still unreachable: nothing else can be recorded either */
        return;
    }

    ngx_http_darkroom_jobs_sweep(jobs);

    while (jobs->claimed < jobs->dmcf->jobs_batch) {

        /* on reload or quit finish the job at hand, claim no more */
        if (ngx_quit || ngx_terminate || ngx_exiting) {
            break;
        }

        if (ngx_http_darkroom_jobs_run_one(jobs) != NGX_OK) {
            break;
        }

        jobs->claimed++;
    }
}


/* the kept outcome, if any; NGX_AGAIN while Postgres is unreachable */

static ngx_int_t
ngx_http_darkroom_jobs_pending(ngx_http_darkroom_jobs_t *jobs)
{
    ngx_http_darkroom_error_t  err;

    if (!jobs->pending.set) {
        return NGX_OK;
    }

    ngx_memzero(&err, sizeof(ngx_http_darkroom_error_t));

    if (ngx_http_darkroom_jobs_record(jobs, &jobs->pending, &err) == NGX_OK) {
        ngx_http_darkroom_jobs_note(jobs, NGX_LOG_NOTICE,
                                    "darkroom jobs: outcome of job %lld "
                                    "recorded, the database answers "
                                    "again", (long long) jobs->pending.id);

    } else if (err.status == NGX_HTTP_SERVICE_UNAVAILABLE) {
        return NGX_AGAIN;

    } else {
        /* refused for good: the lease runs out, the job runs again */
        ngx_http_darkroom_jobs_note(jobs, NGX_LOG_ERR,
                                    "darkroom jobs: outcome of job %lld "
                                    "not recorded: %s",
                                    (long long) jobs->pending.id,
                                    err.detail);
    }

    jobs->pending.set = 0;

    return NGX_OK;
}


/*
 * The exiting worker's last run: the kept outcome only, tried again for up
 * to darkroom_db_timeout (each try bounded by it too); then it is given up
 * and the job's lease runs out (or is released once this worker is gone).
 */

static void
ngx_http_darkroom_jobs_final(ngx_http_darkroom_jobs_t *jobs)
{
    uint64_t  end;

    end = ngx_http_darkroom_monotonic_ms() + jobs->dmcf->db_timeout;

    while (ngx_http_darkroom_jobs_pending(jobs) == NGX_AGAIN) {

        if (ngx_terminate || ngx_http_darkroom_monotonic_ms() >= end) {
            ngx_http_darkroom_jobs_note(jobs, NGX_LOG_ERR,
                                        "darkroom jobs: outcome of job %lld "
                                        "not recorded on exit: the "
                                        "database does not answer, its "
                                        "lease runs out",
                                        (long long) jobs->pending.id);
            jobs->pending.set = 0;
            return;
        }

        ngx_msleep(100);
    }
}


/* the rows of recurring kinds, once per runner */

static ngx_int_t
ngx_http_darkroom_jobs_seed(ngx_http_darkroom_jobs_t *jobs)
{
    ngx_uint_t                  i;
    const char                 *params[1];
    ngx_http_darkroom_error_t   err;

    ngx_memzero(&err, sizeof(ngx_http_darkroom_error_t));

    for (i = 0; !jobs->seeded && i < ngx_http_darkroom_njob_kinds; i++) {

        if (!ngx_http_darkroom_job_kinds[i].recurring) {
            continue;
        }

        params[0] = ngx_http_darkroom_job_kinds[i].kind;

        if (ngx_http_darkroom_db_command(&jobs->db,
                                         "SELECT job_recurring($1)",
                                         1, params, &err)
            != NGX_OK)
        {
            ngx_http_darkroom_jobs_note(jobs, NGX_LOG_ERR,
                                        "darkroom jobs: recurring job %s "
                                        "not created: %s", params[0],
                                        err.detail);
            return NGX_ERROR;
        }
    }

    jobs->seeded = 1;

    return NGX_OK;
}


static ngx_int_t
ngx_http_darkroom_jobs_run_one(ngx_http_darkroom_jobs_t *jobs)
{
    ngx_int_t                      rc;
    ngx_uint_t                     i;
    PGresult                      *res;
    ngx_http_darkroom_job_t        job;
    ngx_http_darkroom_error_t      err;
    ngx_http_darkroom_job_kind_t  *k;

    ngx_memzero(&err, sizeof(ngx_http_darkroom_error_t));

    res = ngx_http_darkroom_jobs_claim(jobs, &err);

    if (res == NULL) {
        return err.status ? NGX_ERROR : NGX_DECLINED;
    }

    ngx_memzero(&job, sizeof(ngx_http_darkroom_job_t));

    job.id = strtoll(ngx_http_darkroom_db_value(res, 0, "id"), NULL, 10);
    job.kind = ngx_http_darkroom_db_value(res, 0, "kind");
    job.attempts = strtoul(ngx_http_darkroom_db_value(res, 0, "attempts"),
                           NULL, 10);
    job.max_attempts = strtoul(ngx_http_darkroom_db_value(res, 0,
                                                          "max_attempts"),
                               NULL, 10);
    job.request_id = ngx_http_darkroom_db_value(res, 0, "request_id");
    job.fetch_timeout = jobs->dmcf->fetch_timeout;
    job.db = &jobs->db;
    job.conf = jobs->dmcf;

    k = NULL;

    for (i = 0; i < ngx_http_darkroom_njob_kinds; i++) {
        if (ngx_strcmp(ngx_http_darkroom_job_kinds[i].kind, job.kind) == 0) {
            k = &ngx_http_darkroom_job_kinds[i];
            break;
        }
    }

    if (k && ngx_http_darkroom_jobs_take(jobs, i, job.id, job.attempts)
             != NGX_OK)
    {
        /* another runner took the kind's last place meanwhile */
        ngx_http_darkroom_trace("job %lld %s given back: the kind has no "
                                "free runner", (long long) job.id, job.kind);
        PQclear(res);
        return NGX_DECLINED;
    }

    ngx_http_darkroom_trace("job %lld %s claimed, attempt %lu/%lu",
                            (long long) job.id, job.kind,
                            (unsigned long) job.attempts,
                            (unsigned long) job.max_attempts);

    job.payload = cJSON_Parse(ngx_http_darkroom_db_value(res, 0, "payload"));

    if (k == NULL) {
        /* not claimable: only registered kinds are claimed */
        ngx_http_darkroom_error_set(&err, 0, "unknown_kind", "");
        snprintf(err.detail, sizeof(err.detail),
                 "no handler for job kind \"%s\"", job.kind);
        rc = NGX_ERROR;

    } else if (job.payload == NULL) {
        ngx_http_darkroom_error_set(&err, 0, "bad_payload", "");
        snprintf(err.detail, sizeof(err.detail), "payload is not JSON");
        rc = NGX_DECLINED;

    } else {
        /* the request that queued it, on its calls and the jobs it queues */
        ngx_http_darkroom_request_id_job(job.request_id);

        rc = k->handler(&job, &err);

        ngx_http_darkroom_request_id_job(NULL);
    }

    if (k) {
        ngx_http_darkroom_metrics_job(k->kind, rc);
        (void) ngx_atomic_fetch_add(&ngx_http_darkroom_job_running[i], -1);
    }

    rc = ngx_http_darkroom_jobs_finish(jobs, &job, rc, &err);

    cJSON_Delete(job.payload);
    PQclear(res);

    return rc;
}


/*
 * Claims the next due job of a kind below its cap.  Only kinds this build
 * can run are claimed: a job written by a newer version waits for a worker
 * that knows it instead of dying here.  NULL with err->status 0: nothing.
 */

static PGresult *
ngx_http_darkroom_jobs_claim(ngx_http_darkroom_jobs_t *jobs,
    ngx_http_darkroom_error_t *err)
{
    char         lease[NGX_INT64_LEN + 1];
    char         kinds[NGX_HTTP_DARKROOM_JOBS_KINDS_LEN];
    u_char      *p, *last;
    ngx_uint_t   i, n;
    PGresult    *res;
    const char  *params[3];

    p = (u_char *) kinds;
    last = p + sizeof(kinds) - 2;
    *p++ = '{';

    for (i = 0, n = 0; i < ngx_http_darkroom_njob_kinds; i++) {
        if (ngx_http_darkroom_job_running[i] < ngx_http_darkroom_job_caps[i]) {
            p = ngx_slprintf(p, last, "%s%s", n++ ? "," : "",
                             ngx_http_darkroom_job_kinds[i].kind);
        }
    }

    *p++ = '}';
    *p = '\0';

    if (n == 0) {
        return NULL;
    }

    snprintf(lease, sizeof(lease), "%lu",
             (unsigned long) jobs->dmcf->jobs_lease);

    params[0] = jobs->owner;
    params[1] = lease;
    params[2] = kinds;

    /* columns: id, kind, payload, attempts, max_attempts, request_id */
    res = ngx_http_darkroom_db_exec(&jobs->db,
                                    "SELECT * FROM job_claim($1, $2, $3)",
                                    3, params, err);

    if (res == NULL) {
        ngx_http_darkroom_jobs_note(jobs, NGX_LOG_ERR,
                                    "darkroom jobs: claim failed: %s",
                                    err->detail);
        return NULL;
    }

    if (PQntuples(res) == 0) {
        PQclear(res);
        return NULL;
    }

    return res;
}


/*
 * Counts a runner in for kind k.  Two runners may both have seen a free
 * place: the one over the cap gives its job back as it found it.
 */

static ngx_int_t
ngx_http_darkroom_jobs_take(ngx_http_darkroom_jobs_t *jobs, ngx_uint_t k,
    int64_t id, ngx_uint_t attempts)
{
    char                        sid[NGX_INT64_LEN + 1];
    char                        sattempts[NGX_INT_T_LEN + 1];
    const char                 *params[2];
    ngx_http_darkroom_error_t   err;

    if (ngx_atomic_fetch_add(&ngx_http_darkroom_job_running[k], 1)
        < ngx_http_darkroom_job_caps[k])
    {
        return NGX_OK;
    }

    (void) ngx_atomic_fetch_add(&ngx_http_darkroom_job_running[k], -1);

    ngx_memzero(&err, sizeof(ngx_http_darkroom_error_t));

    snprintf(sid, sizeof(sid), "%lld", (long long) id);
    snprintf(sattempts, sizeof(sattempts), "%lu", (unsigned long) attempts);

    params[0] = sid;
    params[1] = sattempts;

    /* if this fails the lease runs out, as after any lost outcome */
    (void) ngx_http_darkroom_db_command(&jobs->db,
                                        "SELECT job_give_back($1, $2)",
                                        2, params, &err);

    return NGX_DECLINED;
}


/*
 * Records the outcome.  If Postgres cannot be reached it is kept for the
 * runner's next run (NGX_ERROR: claim nothing more meanwhile), so the job
 * is neither left leased nor run again.
 */

static ngx_int_t
ngx_http_darkroom_jobs_finish(ngx_http_darkroom_jobs_t *jobs,
    ngx_http_darkroom_job_t *job, ngx_int_t rc,
    ngx_http_darkroom_error_t *err)
{
    const char                        *what;
    ngx_http_darkroom_error_t          dberr;
    ngx_http_darkroom_jobs_outcome_t   o;

    ngx_memzero(&o, sizeof(ngx_http_darkroom_jobs_outcome_t));
    ngx_memzero(&dberr, sizeof(ngx_http_darkroom_error_t));

    o.id = job->id;
    o.attempts = job->attempts;
    o.rc = (rc == NGX_OK || rc == NGX_AGAIN) ? rc : NGX_ERROR;
    o.set = 1;

    if (rc == NGX_AGAIN) {
        o.delay = job->retry_after;

    } else if (rc != NGX_OK) {
        o.dead = (rc == NGX_DECLINED || job->attempts >= job->max_attempts);
        o.delay = ngx_http_darkroom_jobs_delay(jobs, job);
        ngx_cpystrn((u_char *) o.error,
                    (u_char *) (err->detail[0] ? err->detail : err->message),
                    sizeof(o.error));
    }

    what = (rc == NGX_OK) ? "done" : (rc == NGX_AGAIN) ? "rescheduled"
                                                       : "failed";

    /* the error is logged as a warning or an error: not here again */
    if (rc == NGX_OK || o.dead) {
        ngx_http_darkroom_trace("job %lld %s %s%s", (long long) o.id,
                                job->kind, what, o.dead ? ", dead" : "");
    } else {
        ngx_http_darkroom_trace("job %lld %s %s, runs again in %lu ms",
                                (long long) o.id, job->kind, what,
                                (unsigned long) o.delay);
    }

    if (ngx_http_darkroom_jobs_record(jobs, &o, &dberr) != NGX_OK) {

        if (dberr.status == NGX_HTTP_SERVICE_UNAVAILABLE) {
            jobs->pending = o;
            ngx_http_darkroom_jobs_note(jobs, NGX_LOG_ERR,
                                        "darkroom jobs: job %lld %s but not "
                                        "recorded, kept to record when the "
                                        "database answers: %s",
                                        (long long) o.id, what, dberr.detail);
            return NGX_ERROR;
        }

        /* the lease runs out and the job is claimed again */
        ngx_http_darkroom_jobs_note(jobs, NGX_LOG_ERR,
                                    "darkroom jobs: job %lld %s but not "
                                    "recorded: %s", (long long) o.id, what,
                                    dberr.detail);
        return NGX_OK;
    }

    if (o.rc == NGX_ERROR) {
        ngx_http_darkroom_jobs_note(jobs, o.dead ? NGX_LOG_ERR : NGX_LOG_WARN,
                                    "darkroom jobs: %s job %lld attempt "
                                    "%lu/%lu failed%s: %s%s%s", job->kind,
                                    (long long) o.id,
                                    (unsigned long) o.attempts,
                                    (unsigned long) job->max_attempts,
                                    o.dead ? ", job is dead" : "", o.error,
                                    job->request_id[0] ? ", request_id="
                                                       : "",
                                    job->request_id);
    }

    return NGX_OK;
}


/* only while (id, attempts) match: a newer run's record is never touched */

static ngx_int_t
ngx_http_darkroom_jobs_record(ngx_http_darkroom_jobs_t *jobs,
    ngx_http_darkroom_jobs_outcome_t *o, ngx_http_darkroom_error_t *dberr)
{
    char         id[NGX_INT64_LEN + 1];
    char         attempts[NGX_INT_T_LEN + 1];
    char         delay[NGX_INT64_LEN + 1];
    const char  *params[5];

    snprintf(id, sizeof(id), "%lld", (long long) o->id);
    snprintf(attempts, sizeof(attempts), "%lu", (unsigned long) o->attempts);
    snprintf(delay, sizeof(delay), "%lu", (unsigned long) o->delay);

    params[0] = id;
    params[1] = attempts;
    params[2] = delay;
    params[3] = o->error;
    params[4] = o->dead ? "t" : "f";

    if (o->rc == NGX_OK) {
        return ngx_http_darkroom_db_command(&jobs->db,
                                            "SELECT job_done($1, $2)",
                                            2, params, dberr);
    }

    if (o->rc == NGX_AGAIN) {
        /* not a failure: come back later, the attempt is given back */
        return ngx_http_darkroom_db_command(&jobs->db,
                                            "SELECT job_again($1, $2, $3)",
                                            3, params, dberr);
    }

    return ngx_http_darkroom_db_command(&jobs->db,
                                        "SELECT job_failed($1, $2, $3, $4,"
                                        " $5)", 5, params, dberr);
}


/*
 * Leases of owners on this host that are gone (killed, crashed) are given
 * back at once instead of after darkroom_jobs_lease.  One runner of the
 * worker looks, at most every ten intervals (1 to 60 s).  Without our own
 * namespace identity nothing can be judged: every lease runs out instead.
 */

static void
ngx_http_darkroom_jobs_sweep(ngx_http_darkroom_jobs_t *jobs)
{
    int                         i, n, col;
    uint64_t                    now, last, period;
    PGresult                   *res;
    const char                 *params[3], *owner;
    ngx_http_darkroom_error_t   err;

    now = ngx_http_darkroom_monotonic_ms();
    last = ngx_http_darkroom_jobs_swept;
    period = ngx_max(1000, ngx_min(60000, jobs->dmcf->jobs_interval * 10));

    if (jobs->ns[0] == '\0'
        || now - last < period
        || !ngx_atomic_cmp_set(&ngx_http_darkroom_jobs_swept, last, now))
    {
        return;
    }

    ngx_memzero(&err, sizeof(ngx_http_darkroom_error_t));

    params[0] = jobs->host;
    params[1] = jobs->ns;
    params[2] = ngx_value(NGX_HTTP_DARKROOM_JOBS_OWNERS);

    /* our host and namespace only: no other owner can take our places */
    res = ngx_http_darkroom_db_exec(&jobs->db,
                                    "SELECT owner FROM job_owners($1, $2, $3)",
                                    3, params, &err);

    if (res == NULL) {
        return;
    }

    n = PQntuples(res);
    col = ngx_http_darkroom_db_col(res, "owner");

    for (i = 0; i < n && col >= 0; i++) {
        owner = PQgetvalue(res, i, col);

        if (!ngx_http_darkroom_jobs_owner_gone(jobs, owner)) {
            continue;
        }

        params[0] = owner;

        if (ngx_http_darkroom_db_command(&jobs->db,
                                         "SELECT job_release($1)",
                                         1, params, &err)
            == NGX_OK)
        {
            ngx_http_darkroom_jobs_note(jobs, NGX_LOG_WARN,
                                        "darkroom jobs: leases of %s "
                                        "released: that process is gone",
                                        owner);
        }
    }

    PQclear(res);
}


/*
 * "host/pid/start/ns" on this host: gone if the pid does not exist, or now
 * belongs to a process started at another time (the pid was reused).  A
 * process of another user answers EPERM: it exists.  Only an owner of our
 * boot and PID namespace is judged: with the same hostname, another
 * container or a cloned machine has pids that mean nothing here.  Owners
 * written before the namespace was part of the name ("host/pid/start",
 * "host/pid") cannot be placed either: their leases run out.
 */

static ngx_uint_t
ngx_http_darkroom_jobs_owner_gone(ngx_http_darkroom_jobs_t *jobs,
    const char *owner)
{
    long                 pid;
    char                *end, *ns;
    unsigned long long   start, now;

    pid = strtol(owner + ngx_strlen(jobs->host) + 1, &end, 10);

    if (*end != '/' || pid <= 1 || pid == (long) getpid()) {
        return 0;
    }

    start = strtoull(end + 1, &ns, 10);

    if (*ns != '/' || ngx_strcmp(ns + 1, jobs->ns) != 0) {
        return 0;
    }

    if (kill((pid_t) pid, 0) == -1 && errno == ESRCH) {
        return 1;
    }

    now = ngx_http_darkroom_jobs_start_time(pid);

    return (now != 0 && now != start);
}


/*
 * The owner name, in the runner's first thread run.  Without a namespace
 * identity (no /proc) the name ends in "-", which no sweep ever matches.
 */

static void
ngx_http_darkroom_jobs_identify(ngx_http_darkroom_jobs_t *jobs)
{
    long  pid;

    pid = (long) getpid();

    ngx_http_darkroom_jobs_ns(jobs->ns, sizeof(jobs->ns));

    snprintf(jobs->owner, sizeof(jobs->owner), "%s/%ld/%llu/%s", jobs->host,
             pid, ngx_http_darkroom_jobs_start_time(pid),
             jobs->ns[0] ? jobs->ns : "-");
}


/* "<boot_id without dashes>.<inode of our PID namespace>", or "" */

static void
ngx_http_darkroom_jobs_ns(char *ns, size_t size)
{
    int          fd;
    char         buf[64], *p;
    size_t       n;
    ssize_t      len;
    struct stat  st;

    ns[0] = '\0';

    fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY);
    if (fd == -1) {
        return;
    }

    len = read(fd, buf, sizeof(buf) - 1);
    close(fd);

    if (len <= 0 || stat("/proc/self/ns/pid", &st) == -1) {
        return;
    }

    n = 0;

    for (p = buf; p < buf + len && n < 32; p++) {
        if (isxdigit((unsigned char) *p)) {
            buf[n++] = *p;
        }
    }

    if (n != 32) {
        return;
    }

    snprintf(ns, size, "%.32s.%llu", buf, (unsigned long long) st.st_ino);
}


/* field 22 of /proc/<pid>/stat, 0 if unknown; plain C, safe in a thread */

static unsigned long long
ngx_http_darkroom_jobs_start_time(long pid)
{
    int      fd, field;
    char     path[64], buf[1024], *p;
    ssize_t  n;

    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);

    fd = open(path, O_RDONLY);
    if (fd == -1) {
        return 0;
    }

    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);

    if (n <= 0) {
        return 0;
    }

    buf[n] = '\0';

    /* the command name may hold spaces and parentheses: skip to its end */
    p = strrchr(buf, ')');
    if (p == NULL) {
        return 0;
    }

    for (field = 2; field < 22 && p; field++) {
        p = strchr(p + 1, ' ');
    }

    return p ? strtoull(p + 1, NULL, 10) : 0;
}


/* base * 2^(attempts - 1), capped, plus up to a quarter more of jitter */

static ngx_msec_t
ngx_http_darkroom_jobs_delay(ngx_http_darkroom_jobs_t *jobs,
    ngx_http_darkroom_job_t *job)
{
    ngx_uint_t   n;
    ngx_msec_t   delay, max;

    max = jobs->dmcf->jobs_backoff_max;
    delay = jobs->dmcf->jobs_backoff;

    for (n = 1; n < job->attempts && delay < max; n++) {
        delay *= 2;
    }

    if (job->retry_after > delay) {
        /* the provider said when: never earlier than that */
        delay = job->retry_after;
    }

    delay = ngx_min(delay, max);

    return delay + (ngx_msec_t) rand_r(&jobs->seed) % (delay / 4 + 1);
}


static void
ngx_http_darkroom_jobs_note(ngx_http_darkroom_jobs_t *jobs, ngx_uint_t level,
    const char *fmt, ...)
{
    va_list                        args;
    ngx_http_darkroom_jobs_log_t  *l;

    if (jobs->nlog == NGX_HTTP_DARKROOM_JOBS_LOG) {
        return;
    }

    l = &jobs->log[jobs->nlog++];
    l->level = level;

    va_start(args, fmt);
    vsnprintf(l->text, sizeof(l->text), fmt, args);
    va_end(args);
}


static void
ngx_http_darkroom_jobs_done(ngx_event_t *ev)
{
    ngx_uint_t                 i;
    ngx_msec_t                 next;
    ngx_http_darkroom_jobs_t  *jobs = ev->data;

    jobs->busy = 0;

    ngx_http_darkroom_release();

#if (NGX_DEBUG)
    /* a run that found nothing to do has nothing to tell */
    if (jobs->tracing && (jobs->trace.len || jobs->trace.dropped)) {
        ngx_http_darkroom_trace_log(jobs->timer.log, &jobs->trace,
                                    "darkroom jobs");
    }
#endif

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, jobs->timer.log, 0,
                   "darkroom jobs: run done, %ui claimed", jobs->claimed);

    for (i = 0; i < jobs->nlog; i++) {
        ngx_log_error(jobs->log[i].level, jobs->timer.log, 0, "%s",
                      jobs->log[i].text);
    }

    if (ngx_exiting || ngx_quit || ngx_terminate) {
        if (jobs->pending.set && !jobs->final && !ngx_terminate) {
            ngx_http_darkroom_jobs_last(jobs, jobs->timer.log);
        }

        return;
    }

    if (jobs->pending.set && !jobs->exit_watch.timer_set) {
        ngx_add_timer(&jobs->exit_watch,
                      ngx_min(jobs->dmcf->jobs_interval, 1000));
    }

    /* a full batch means more may be due: come back at once */
    next = (jobs->claimed == jobs->dmcf->jobs_batch)
           ? 1 : jobs->dmcf->jobs_interval;

    ngx_add_timer(&jobs->timer, next);
}
