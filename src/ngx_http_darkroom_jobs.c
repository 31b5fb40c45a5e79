
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
 */


#include "ngx_http_darkroom.h"


#define NGX_HTTP_DARKROOM_JOBS_LOG  8


typedef struct {
    ngx_uint_t                      level;
    char                            text[400];
} ngx_http_darkroom_jobs_log_t;


typedef struct {
    ngx_event_t                     timer;
    ngx_thread_task_t              *task;
    ngx_http_darkroom_main_conf_t  *dmcf;
    ngx_http_darkroom_db_t          db;
    char                            owner[64];
    unsigned                        seed;

    /* filled by the thread, read on the event loop when it is done */
    ngx_uint_t                      claimed;
    ngx_uint_t                      nlog;
    ngx_http_darkroom_jobs_log_t    log[NGX_HTTP_DARKROOM_JOBS_LOG];

    unsigned                        busy:1;
    unsigned                        seeded:1;  /* recurring rows exist */
} ngx_http_darkroom_jobs_t;


static void ngx_http_darkroom_jobs_tick(ngx_event_t *ev);
static void ngx_http_darkroom_jobs_thread(void *data, ngx_log_t *log);
static ngx_int_t ngx_http_darkroom_jobs_run_one(
    ngx_http_darkroom_jobs_t *jobs);
static void ngx_http_darkroom_jobs_finish(ngx_http_darkroom_jobs_t *jobs,
    ngx_http_darkroom_job_t *job, ngx_int_t rc,
    ngx_http_darkroom_error_t *err);
static ngx_msec_t ngx_http_darkroom_jobs_backoff(
    ngx_http_darkroom_jobs_t *jobs, ngx_http_darkroom_job_t *job);
static void ngx_http_darkroom_jobs_note(ngx_http_darkroom_jobs_t *jobs,
    ngx_uint_t level, const char *fmt, ...);
static void ngx_http_darkroom_jobs_done(ngx_event_t *ev);


static ngx_http_darkroom_job_kind_t  ngx_http_darkroom_builtin_kinds[] = {
    { "http_post", ngx_http_darkroom_job_http_post, 0 },
    { "checkout_reconcile", ngx_http_darkroom_job_checkout_reconcile, 0 },
    { NULL, NULL, 0 }
};



/* the registered kinds, and the same as a Postgres array literal */
static ngx_http_darkroom_job_kind_t  *ngx_http_darkroom_job_kinds;
static ngx_uint_t                     ngx_http_darkroom_njob_kinds;
static char                           ngx_http_darkroom_job_kind_list[1024];


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
    u_char                         *p, *last;
    ngx_uint_t                      i, n;
    ngx_http_darkroom_jobs_t       *jobs, *runners;
    ngx_http_darkroom_job_kind_t   *k;
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

    ngx_http_darkroom_job_kinds = dmcf->job_kinds->elts;
    ngx_http_darkroom_njob_kinds = dmcf->job_kinds->nelts;

    p = (u_char *) ngx_http_darkroom_job_kind_list;
    last = p + sizeof(ngx_http_darkroom_job_kind_list) - 2;
    *p++ = '{';

    for (i = 0; i < ngx_http_darkroom_njob_kinds; i++) {
        k = &ngx_http_darkroom_job_kinds[i];
        p = ngx_slprintf(p, last, "%s%s", i ? "," : "", k->kind);
    }

    *p++ = '}';
    *p = '\0';

    for (n = 0; n < dmcf->jobs_concurrency; n++) {
        jobs = &runners[n];

        jobs->dmcf = dmcf;
        jobs->seed = (unsigned) (ngx_pid ^ ngx_time() ^ ngx_current_msec)
                     + n;

        ngx_snprintf((u_char *) jobs->owner, sizeof(jobs->owner) - 1,
                     "%V/%P", &cycle->hostname, ngx_pid);

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

        /* workers start together: spread their first ticks */
        ngx_add_timer(&jobs->timer,
                      1 + (ngx_msec_t) rand_r(&jobs->seed)
                          % dmcf->jobs_interval);
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

    jobs->claimed = 0;
    jobs->nlog = 0;
    jobs->db.conninfo = (const char *) jobs->dmcf->conninfo.data;
    jobs->db.timeout = jobs->dmcf->db_timeout;
    jobs->db.deadline = 0;

    if (ngx_thread_task_post(jobs->dmcf->pool, jobs->task) != NGX_OK) {
        ngx_add_timer(&jobs->timer, jobs->dmcf->jobs_interval);
        return;
    }

    jobs->busy = 1;
}


static void
ngx_http_darkroom_jobs_thread(void *data, ngx_log_t *log)
{
    ngx_uint_t                  i;
    const char                 *params[1];
    ngx_http_darkroom_error_t   err;
    ngx_http_darkroom_jobs_t   *jobs = data;

    ngx_memzero(&err, sizeof(ngx_http_darkroom_error_t));

    for (i = 0; !jobs->seeded && i < ngx_http_darkroom_njob_kinds; i++) {

        if (!ngx_http_darkroom_job_kinds[i].recurring) {
            continue;
        }

        params[0] = ngx_http_darkroom_job_kinds[i].kind;

        if (ngx_http_darkroom_db_command(&jobs->db,
                "INSERT INTO jobs (kind, dedupe_key)"
                " VALUES ($1, 'recurring:' || $1)"
                " ON CONFLICT (dedupe_key) DO NOTHING",
                1, params, &err)
            != NGX_OK)
        {
            ngx_http_darkroom_jobs_note(jobs, NGX_LOG_ERR,
                                        "darkroom jobs: recurring job %s "
                                        "not created: %s", params[0],
                                        err.detail);
            return;
        }
    }

    jobs->seeded = 1;

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


static ngx_int_t
ngx_http_darkroom_jobs_run_one(ngx_http_darkroom_jobs_t *jobs)
{
    char                           lease[NGX_INT64_LEN + 1];
    ngx_int_t                      rc;
    ngx_uint_t                     i;
    PGresult                      *res;
    const char                    *params[3];
    ngx_http_darkroom_job_t        job;
    ngx_http_darkroom_error_t      err;
    ngx_http_darkroom_job_kind_t  *k;

    ngx_memzero(&err, sizeof(ngx_http_darkroom_error_t));

    snprintf(lease, sizeof(lease), "%lu",
             (unsigned long) jobs->dmcf->jobs_lease);

    params[0] = jobs->owner;
    params[1] = lease;
    params[2] = ngx_http_darkroom_job_kind_list;

    /*
     * Only kinds this build can run are claimed: a job written by a newer
     * version waits for a worker that knows it instead of dying here.
     */

    res = ngx_http_darkroom_db_exec(&jobs->db,
        "UPDATE jobs SET attempts = attempts + 1, locked_by = $1,"
        " locked_until = now() + $2::bigint * interval '1 millisecond'"
        " WHERE id = (SELECT id FROM jobs"
                    " WHERE NOT dead AND done_at IS NULL"
                    " AND run_at <= now()"
                    " AND (locked_until IS NULL OR locked_until < now())"
                    " AND kind = ANY ($3::text[])"
                    " ORDER BY run_at, id LIMIT 1"
                    " FOR UPDATE SKIP LOCKED)"
        " RETURNING id, kind, payload::text, attempts, max_attempts",
        3, params, &err);

    if (res == NULL) {
        ngx_http_darkroom_jobs_note(jobs, NGX_LOG_ERR,
                                    "darkroom jobs: claim failed: %s",
                                    err.detail);
        return NGX_ERROR;
    }

    if (PQntuples(res) == 0) {
        PQclear(res);
        return NGX_DECLINED;
    }

    ngx_memzero(&job, sizeof(ngx_http_darkroom_job_t));

    job.id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    job.kind = PQgetvalue(res, 0, 1);
    job.payload = cJSON_Parse(PQgetvalue(res, 0, 2));
    job.attempts = strtoul(PQgetvalue(res, 0, 3), NULL, 10);
    job.max_attempts = strtoul(PQgetvalue(res, 0, 4), NULL, 10);
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
        rc = k->handler(&job, &err);
    }

    ngx_http_darkroom_jobs_finish(jobs, &job, rc, &err);

    cJSON_Delete(job.payload);
    PQclear(res);

    return NGX_OK;
}


static void
ngx_http_darkroom_jobs_finish(ngx_http_darkroom_jobs_t *jobs,
    ngx_http_darkroom_job_t *job, ngx_int_t rc,
    ngx_http_darkroom_error_t *err)
{
    char                        id[NGX_INT64_LEN + 1];
    char                        attempts[NGX_INT_T_LEN + 1];
    char                        delay[NGX_INT64_LEN + 1];
    ngx_uint_t                  dead;
    const char                 *params[5];
    ngx_http_darkroom_error_t   dberr;

    ngx_memzero(&dberr, sizeof(ngx_http_darkroom_error_t));

    snprintf(id, sizeof(id), "%lld", (long long) job->id);
    snprintf(attempts, sizeof(attempts), "%lu",
             (unsigned long) job->attempts);

    params[0] = id;
    params[1] = attempts;

    if (rc == NGX_OK) {
        if (ngx_http_darkroom_db_command(job->db,
                "UPDATE jobs SET done_at = now(), locked_until = NULL,"
                " last_error = NULL"
                " WHERE id = $1 AND attempts = $2",
                2, params, &dberr)
            != NGX_OK)
        {
            ngx_http_darkroom_jobs_note(jobs, NGX_LOG_ERR,
                                        "darkroom jobs: job %s done but not "
                                        "recorded: %s", id, dberr.detail);
        }

        return;
    }

    if (rc == NGX_AGAIN) {
        /* not a failure: come back later, the attempt is given back */
        snprintf(delay, sizeof(delay), "%lu",
                 (unsigned long) job->retry_after);
        params[2] = delay;

        if (ngx_http_darkroom_db_command(job->db,
                "UPDATE jobs SET locked_until = NULL,"
                " attempts = attempts - 1,"
                " run_at = now() + $3::bigint * interval '1 millisecond'"
                " WHERE id = $1 AND attempts = $2",
                3, params, &dberr)
            != NGX_OK)
        {
            ngx_http_darkroom_jobs_note(jobs, NGX_LOG_ERR,
                                        "darkroom jobs: job %s not "
                                        "rescheduled: %s", id, dberr.detail);
        }

        return;
    }

    dead = (rc == NGX_DECLINED || job->attempts >= job->max_attempts);

    snprintf(delay, sizeof(delay), "%lu",
             (unsigned long) ngx_http_darkroom_jobs_backoff(jobs, job));

    params[2] = delay;
    params[3] = err->detail[0] ? err->detail : err->message;
    params[4] = dead ? "t" : "f";

    if (ngx_http_darkroom_db_command(job->db,
            "UPDATE jobs SET locked_until = NULL, last_error = $4,"
            " dead = $5::boolean,"
            " run_at = now() + $3::bigint * interval '1 millisecond'"
            " WHERE id = $1 AND attempts = $2",
            5, params, &dberr)
        != NGX_OK)
    {
        /* the lease runs out and the job is claimed again */
        ngx_http_darkroom_jobs_note(jobs, NGX_LOG_ERR,
                                    "darkroom jobs: job %s failed and the "
                                    "failure was not recorded: %s",
                                    id, dberr.detail);
        return;
    }

    ngx_http_darkroom_jobs_note(jobs, dead ? NGX_LOG_ERR : NGX_LOG_WARN,
                                "darkroom jobs: %s job %s attempt %s/%lu "
                                "failed%s: %s", job->kind, id, attempts,
                                (unsigned long) job->max_attempts,
                                dead ? ", job is dead" : "",
                                params[3]);
}


/* base * 2^(attempts - 1), capped, plus up to a quarter more of jitter */

static ngx_msec_t
ngx_http_darkroom_jobs_backoff(ngx_http_darkroom_jobs_t *jobs,
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

    for (i = 0; i < jobs->nlog; i++) {
        ngx_log_error(jobs->log[i].level, jobs->timer.log, 0, "%s",
                      jobs->log[i].text);
    }

    if (ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    /* a full batch means more may be due: come back at once */
    next = (jobs->claimed == jobs->dmcf->jobs_batch)
           ? 1 : jobs->dmcf->jobs_interval;

    ngx_add_timer(&jobs->timer, next);
}


/*
 * "http_post": deliver a JSON document to a URL, for a shop's own systems
 * (accounting, a chat hook).  Payload: {"url": "...", "body": any JSON,
 * "headers": {"Name": "value"}}.  The job id is sent as Idempotency-Key so
 * a receiver can drop the repeat of a delivery whose answer was lost.
 */

ngx_int_t
ngx_http_darkroom_job_http_post(ngx_http_darkroom_job_t *job,
    ngx_http_darkroom_error_t *err)
{
    char                            *text, retry[32];
    char                             key[64];
    char                             hbuf[16][256];
    size_t                           n;
    cJSON                           *url, *body, *headers, *h;
    ngx_int_t                        rc;
    ngx_uint_t                       i;
    const char                      *hdrs[20];
    ngx_http_darkroom_fetch_req_t    req;
    ngx_http_darkroom_fetch_resp_t   resp;

    url = cJSON_GetObjectItemCaseSensitive(job->payload, "url");
    body = cJSON_GetObjectItemCaseSensitive(job->payload, "body");
    headers = cJSON_GetObjectItemCaseSensitive(job->payload, "headers");

    if (!cJSON_IsString(url)
        || (ngx_strncmp(url->valuestring, "http://", 7) != 0
            && ngx_strncmp(url->valuestring, "https://", 8) != 0))
    {
        snprintf(err->detail, sizeof(err->detail),
                 "http_post: payload needs an http(s) \"url\"");
        return NGX_DECLINED;
    }

    i = 0;

    snprintf(key, sizeof(key), "Idempotency-Key: darkroom-job-%lld",
             (long long) job->id);
    hdrs[i++] = key;
    hdrs[i++] = "Content-Type: application/json";

    cJSON_ArrayForEach(h, headers) {
        if (i == 18 || !cJSON_IsString(h) || h->string == NULL
            || strpbrk(h->string, "\r\n:") || strpbrk(h->valuestring, "\r\n"))
        {
            snprintf(err->detail, sizeof(err->detail),
                     "http_post: bad or too many headers");
            return NGX_DECLINED;
        }

        snprintf(hbuf[i - 2], sizeof(hbuf[0]), "%s: %s", h->string,
                 h->valuestring);
        hdrs[i] = hbuf[i - 2];
        i++;
    }

    hdrs[i] = NULL;

    text = body ? (cJSON_IsString(body) ? strdup(body->valuestring)
                                        : cJSON_PrintUnformatted(body))
                : strdup("{}");
    if (text == NULL) {
        snprintf(err->detail, sizeof(err->detail), "http_post: no memory");
        return NGX_ERROR;
    }

    ngx_memzero(&req, sizeof(ngx_http_darkroom_fetch_req_t));
    req.method = "POST";
    req.url = url->valuestring;
    req.headers = hdrs;
    req.body = text;
    req.body_len = strlen(text);
    req.timeout = job->fetch_timeout;

    rc = ngx_http_darkroom_fetch(&req, &resp, err);

    free(text);

    if (rc != NGX_OK) {
        ngx_http_darkroom_fetch_free(&resp);
        return NGX_ERROR;
    }

    if (resp.status >= 200 && resp.status < 300) {
        rc = NGX_OK;

    } else {
        snprintf(err->detail, sizeof(err->detail),
                 "http_post: %s answered %ld", url->valuestring,
                 resp.status);

        n = ngx_http_darkroom_fetch_header(&resp, "Retry-After", retry,
                                           sizeof(retry));
        if (n) {
            job->retry_after = strtoul(retry, NULL, 10) * 1000;
        }

        /* a client error other than these will fail the same way again */
        rc = (resp.status >= 400 && resp.status < 500
              && resp.status != 408 && resp.status != 409
              && resp.status != 425 && resp.status != 429)
             ? NGX_DECLINED : NGX_ERROR;
    }

    ngx_http_darkroom_fetch_free(&resp);

    return rc;
}
