
/*
 * darkroom metrics: the job queue's gauges.
 *
 * A scrape never queries PostgreSQL, so the depth of the job queue and the
 * age of its oldest due job, per registered kind, are read by a timer of
 * the first worker only (darkroom_metrics_jobs_interval), in a pool thread
 * (metrics_job_queue() in sql/functions/metrics.sql), into the gauges of
 * the shared memory.  One refresh at a time; a failed one leaves the
 * gauges as they were, and darkroom_jobs_refreshed_timestamp_seconds says
 * how old they are.  The same thread task then runs the owner's alerts
 * (darkroom_alerts, ngx_http_darkroom_alerts.c).
 */


#include "ngx_http_darkroom.h"


#define NGX_HTTP_DARKROOM_METRICS_KINDS_LEN  2048


typedef struct {
    ngx_http_darkroom_db_t       db;
    ngx_http_darkroom_error_t    err;
    char                         kinds[NGX_HTTP_DARKROOM_METRICS_KINDS_LEN];
    ngx_thread_pool_t           *pool;
    ngx_thread_task_t           *task;
    ngx_msec_t                   interval;
    ngx_event_t                  timer;
    ngx_http_darkroom_alerts_run_t  alerts;    /* darkroom_alerts */
    unsigned                     busy:1;
} ngx_http_darkroom_metrics_jobs_t;


static void ngx_http_darkroom_metrics_jobs_tick(ngx_event_t *ev);
static void ngx_http_darkroom_metrics_jobs_thread(void *data, ngx_log_t *log);
static void ngx_http_darkroom_metrics_jobs_done(ngx_event_t *ev);
static void ngx_http_darkroom_metrics_lab_orders(
    ngx_http_darkroom_metrics_jobs_t *mj);


/* the timer's data, for nginx's timer logs, which read it as a connection */
static ngx_connection_t                   ngx_http_darkroom_metrics_jobs_dumb;
static ngx_http_darkroom_metrics_jobs_t  *ngx_http_darkroom_metrics_jobs_ctx;


/* init_process: the first worker, with a database, refreshes the gauges */

ngx_int_t
ngx_http_darkroom_metrics_jobs_start(ngx_cycle_t *cycle,
    ngx_http_darkroom_metrics_main_conf_t *mmcf)
{
    u_char                            *p, *last;
    ngx_uint_t                         i;
    ngx_http_darkroom_job_kind_t      *k;
    ngx_http_darkroom_main_conf_t     *dmcf;
    ngx_http_darkroom_metrics_jobs_t  *mj;

    dmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_darkroom_module);

    if (dmcf == NULL || dmcf->conninfo.data == NULL || dmcf->pool == NULL
        || dmcf->job_kinds == NULL || ngx_http_darkroom_metrics == NULL
        || (ngx_process != NGX_PROCESS_WORKER
            && ngx_process != NGX_PROCESS_SINGLE)
        || ngx_worker != 0)
    {
        return NGX_OK;
    }

    mj = ngx_pcalloc(cycle->pool, sizeof(ngx_http_darkroom_metrics_jobs_t));
    if (mj == NULL) {
        return NGX_ERROR;
    }

    mj->task = ngx_thread_task_alloc(cycle->pool, 0);
    if (mj->task == NULL) {
        return NGX_ERROR;
    }

    /* the registered kinds, a text[] literal: names of [a-z0-9_] */

    p = (u_char *) mj->kinds;
    last = p + sizeof(mj->kinds) - 2;
    *p++ = '{';
    k = dmcf->job_kinds->elts;

    for (i = 0; i < dmcf->job_kinds->nelts; i++) {
        p = ngx_slprintf(p, last, "%s%s", i ? "," : "", k[i].kind);
    }

    *p++ = '}';
    *p = '\0';

    mj->db.conninfo = (const char *) dmcf->conninfo.data;
    mj->db.timeout = dmcf->db_timeout;
    mj->pool = dmcf->pool;
    mj->interval = mmcf->jobs_interval;
    mj->alerts.conf = &mmcf->alerts;

    mj->task->ctx = mj;
    mj->task->handler = ngx_http_darkroom_metrics_jobs_thread;
    mj->task->event.data = mj;
    mj->task->event.handler = ngx_http_darkroom_metrics_jobs_done;
    mj->task->event.log = cycle->log;

    ngx_http_darkroom_metrics_jobs_dumb.fd = (ngx_socket_t) -1;

    mj->timer.handler = ngx_http_darkroom_metrics_jobs_tick;
    mj->timer.data = &ngx_http_darkroom_metrics_jobs_dumb;
    mj->timer.log = cycle->log;
    mj->timer.cancelable = 1;

    ngx_http_darkroom_metrics_jobs_ctx = mj;

    ngx_add_timer(&mj->timer, 1);

    return NGX_OK;
}


static void
ngx_http_darkroom_metrics_jobs_tick(ngx_event_t *ev)
{
    ngx_http_darkroom_metrics_jobs_t  *mj;

    mj = ngx_http_darkroom_metrics_jobs_ctx;

    if (ngx_exiting || ngx_terminate || ngx_quit || mj->busy) {
        return;
    }

    ngx_memzero(&mj->err, sizeof(ngx_http_darkroom_error_t));

    if (ngx_thread_task_post(mj->pool, mj->task) != NGX_OK) {
        /* the queue is full: try again next time */
        ngx_add_timer(&mj->timer, mj->interval);
        return;
    }

    mj->busy = 1;

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, ev->log, 0,
                   "darkroom metrics: job queue refresh posted");
}


/* in a thread: no nginx memory, no logging */

static void
ngx_http_darkroom_metrics_jobs_thread(void *data, ngx_log_t *log)
{
    ngx_http_darkroom_metrics_jobs_t *mj = data;

    int                              row, n;
    ngx_uint_t                       slot;
    PGresult                        *res;
    const char                      *kind, *params[1];
    ngx_http_darkroom_metrics_sh_t  *sh;

    sh = ngx_http_darkroom_metrics;
    params[0] = mj->kinds;

    res = ngx_http_darkroom_db_exec(&mj->db,
              "SELECT kind, due, oldest_due_ms, dead "
              "FROM metrics_job_queue($1)", 1, params, &mj->err);

    if (res == NULL) {
        /* the alerts that need no database still do: an outage's */
        ngx_http_darkroom_alerts_run(&mj->db, 0, &mj->alerts);
        return;
    }

    n = PQntuples(res);

    for (row = 0; row < n; row++) {
        kind = ngx_http_darkroom_db_value(res, row, "kind");
        slot = ngx_http_darkroom_metrics_name(
                   NGX_HTTP_DARKROOM_NAMES_JOB_KIND, (u_char *) kind,
                   ngx_strlen(kind));

        sh->jobs_due[slot] = strtoul(
            ngx_http_darkroom_db_value(res, row, "due"), NULL, 10);
        sh->jobs_oldest_ms[slot] = strtoul(
            ngx_http_darkroom_db_value(res, row, "oldest_due_ms"), NULL, 10);
        sh->jobs_dead[slot] = strtoul(
            ngx_http_darkroom_db_value(res, row, "dead"), NULL, 10);
    }

    PQclear(res);

    ngx_http_darkroom_metrics_lab_orders(mj);

    if (mj->err.status == 0) {
        sh->jobs_refreshed = (ngx_atomic_uint_t) time(NULL);
    }

    ngx_http_darkroom_alerts_run(&mj->db, 1, &mj->alerts);
}


/* in a thread: lab orders by "lab:state"; a state no row has any more is 0 */

static void
ngx_http_darkroom_metrics_lab_orders(ngx_http_darkroom_metrics_jobs_t *mj)
{
    int                              row, n;
    char                             name[NGX_HTTP_DARKROOM_METRICS_NAME_LEN];
    size_t                           len;
    uint64_t                         orders[NGX_HTTP_DARKROOM_METRICS_NAMES];
    ngx_uint_t                       i, slot;
    PGresult                        *res;
    ngx_http_darkroom_metrics_sh_t  *sh;

    sh = ngx_http_darkroom_metrics;

    res = ngx_http_darkroom_db_exec(&mj->db,
              "SELECT lab, status, orders FROM metrics_lab_orders()", 0, NULL,
              &mj->err);

    if (res == NULL) {
        return;
    }

    ngx_memzero(orders, sizeof(orders));
    n = PQntuples(res);

    for (row = 0; row < n; row++) {
        len = snprintf(name, sizeof(name), "%s:%s",
                       ngx_http_darkroom_db_value(res, row, "lab"),
                       ngx_http_darkroom_db_value(res, row, "status"));

        slot = ngx_http_darkroom_metrics_name(
                   NGX_HTTP_DARKROOM_NAMES_LAB_STATE, (u_char *) name,
                   ngx_min(len, sizeof(name) - 1));

        orders[slot] += strtoull(
            ngx_http_darkroom_db_value(res, row, "orders"), NULL, 10);
    }

    PQclear(res);

    for (i = 0; i < NGX_HTTP_DARKROOM_METRICS_NAMES; i++) {
        sh->lab_orders[i] = orders[i];
    }
}


static void
ngx_http_darkroom_metrics_jobs_done(ngx_event_t *ev)
{
    ngx_http_darkroom_metrics_jobs_t  *mj = ev->data;

    mj->busy = 0;

    if (mj->err.status) {
        ngx_log_error(NGX_LOG_WARN, ev->log, 0,
                      "darkroom metrics: job queue not read: %s",
                      mj->err.detail[0] ? mj->err.detail : mj->err.message);
    }

    if (mj->alerts.level) {
        ngx_log_error(mj->alerts.level, ev->log, 0, "%s", mj->alerts.note);
    }

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, ev->log, 0,
                   "darkroom metrics: job queue refreshed");

    if (!(ngx_exiting || ngx_terminate || ngx_quit)) {
        ngx_add_timer(&mj->timer, mj->interval);
    }
}
