
/*
 * darkroom: park a request, run its work in a thread pool, resume it.
 *
 * A handler calls ngx_http_darkroom_task_start().  The request body is read
 * (bounded by client_max_body_size, and by NGX_HTTP_DARKROOM_BODY_MAX: a
 * larger one is 413 too_large before it is read into memory) into one
 * contiguous buffer, the area's
 * prepare callback validates it on the event loop, then the work callback
 * runs in a thread of the configured pool while the request is parked with
 * r->main->blocked.  On completion nginx calls our event handler on the
 * event loop, which resumes the request through its write event handler,
 * the way nginx's own thread-backed reads resume.
 *
 * ngx_http_darkroom_task_start_file() is the same for a body of any size
 * (an uploaded photo): nginx writes it to a temp file only, as the DAV
 * module's PUT does, and the task gets the file's name and size instead of
 * its bytes; the work may rename it away (on failure the file is removed
 * with the request, as is that of a request interrupted mid-body).
 *
 * A parked request has no timer of its own, and an exiting worker (reload,
 * quit) leaves as soon as no timer but cancelable ones is left: it would
 * close the connection after the work was done but before the answer.  So
 * while anything is in flight a non-cancelable "hold" timer is armed, and
 * the worker stays until every parked request has been answered.
 *
 * With a debug log, each step is logged on the event loop: the post, what
 * the thread did (its trace: provider calls), the completion, the resume.
 * The thread itself never logs: it appends to the task's trace, plain
 * memory made current for it by ngx_http_darkroom_task_thread(), and the
 * completion logs the entries.
 */


#include "ngx_http_darkroom.h"

#include <time.h>


typedef struct {
    ngx_http_darkroom_task_t   task;
    unsigned                   completed:1;
    unsigned                   file:1;       /* task_start_file */
} ngx_http_darkroom_task_ctx_t;


static ngx_int_t ngx_http_darkroom_task_init(ngx_http_request_t *r,
    size_t size, ngx_http_darkroom_prepare_pt prepare,
    ngx_http_darkroom_work_pt work, ngx_http_darkroom_done_pt done);
static void ngx_http_darkroom_task_body(ngx_http_request_t *r);
static ngx_int_t ngx_http_darkroom_task_too_large(ngx_http_request_t *r);
static ngx_int_t ngx_http_darkroom_task_file(ngx_http_request_t *r,
    ngx_http_darkroom_task_t *t);
static ngx_int_t ngx_http_darkroom_task_read_body(ngx_http_request_t *r,
    ngx_str_t *body);
static ngx_int_t ngx_http_darkroom_task_post(ngx_http_request_t *r,
    ngx_http_darkroom_task_ctx_t *ctx);
static ngx_int_t ngx_http_darkroom_task_thread_post(ngx_http_request_t *r,
    ngx_http_darkroom_task_ctx_t *ctx, ngx_http_darkroom_main_conf_t *dmcf);
static void ngx_http_darkroom_task_thread(void *data, ngx_log_t *log);
static void ngx_http_darkroom_task_event(ngx_event_t *ev);
static void ngx_http_darkroom_task_resume(ngx_http_request_t *r);
static void ngx_http_darkroom_task_cleanup(void *data);
static void ngx_http_darkroom_hold_handler(ngx_event_t *ev);
#if (NGX_DEBUG)
static void ngx_http_darkroom_task_trace(ngx_http_request_t *r,
    ngx_http_darkroom_task_t *t);
#endif


#define NGX_HTTP_DARKROOM_HOLD_PERIOD  1000


/* per worker: what is in flight, and the timer that keeps the worker */
static ngx_uint_t        ngx_http_darkroom_held;
static ngx_uint_t        ngx_http_darkroom_held_logged;
static ngx_event_t       ngx_http_darkroom_hold_ev;
static ngx_connection_t  ngx_http_darkroom_hold_dumb;  /* for timer logs */

#if (NGX_DEBUG)
/* the trace the work running in this thread appends to, or NULL */
static __thread ngx_http_darkroom_trace_t  *ngx_http_darkroom_trace_current;

/* the request task this thread runs (NULL: none, a job's) */
static __thread ngx_http_darkroom_task_t   *ngx_http_darkroom_task_current;
/* the request id of the job this thread runs (NULL: none) */
static __thread const char                 *ngx_http_darkroom_job_rid;
#endif


uint64_t
ngx_http_darkroom_monotonic_ms(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return (uint64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


/* the request's task if it has one (the log phase's variables), or NULL */

ngx_http_darkroom_task_t *
ngx_http_darkroom_task_peek(ngx_http_request_t *r)
{
    ngx_http_darkroom_task_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_darkroom_module);

    return ctx ? &ctx->task : NULL;
}


/* the request's task, made empty the first time (admin_auth records) */

ngx_http_darkroom_task_t *
ngx_http_darkroom_task_of(ngx_http_request_t *r)
{
    ngx_http_darkroom_task_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_darkroom_module);

    if (ctx == NULL) {
        ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_darkroom_task_ctx_t));
        if (ctx == NULL) {
            return NULL;
        }

        ngx_http_set_ctx(r, ctx, ngx_http_darkroom_module);
    }

    return &ctx->task;
}


ngx_int_t
ngx_http_darkroom_task_start(ngx_http_request_t *r, size_t size,
    ngx_http_darkroom_prepare_pt prepare, ngx_http_darkroom_work_pt work,
    ngx_http_darkroom_done_pt done)
{
    ngx_int_t  rc;

    if (r->headers_in.content_length_n > NGX_HTTP_DARKROOM_BODY_MAX) {
        return ngx_http_darkroom_task_too_large(r);
    }

    if (ngx_http_darkroom_task_init(r, size, prepare, work, done) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->request_body_in_single_buf = 1;

    rc = ngx_http_read_client_request_body(r, ngx_http_darkroom_task_body);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


/*
 * The same, the body written to a temp file only (never held in memory):
 * the work gets t->body_file and t->body_size.  The flags are those of
 * ngx_http_dav_module's PUT: the file has a name (persistent), removed
 * with the request (clean) unless the work renamed it.
 */

ngx_int_t
ngx_http_darkroom_task_start_file(ngx_http_request_t *r, size_t size,
    ngx_http_darkroom_prepare_pt prepare, ngx_http_darkroom_work_pt work,
    ngx_http_darkroom_done_pt done)
{
    ngx_int_t                      rc;
    ngx_http_darkroom_task_ctx_t  *ctx;

    if (ngx_http_darkroom_task_init(r, size, prepare, work, done) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_darkroom_module);
    ctx->file = 1;

    r->request_body_in_file_only = 1;
    r->request_body_in_persistent_file = 1;
    r->request_body_in_clean_file = 1;
    r->request_body_file_group_access = 1;
    r->request_body_file_log_level = 0;

    rc = ngx_http_read_client_request_body(r, ngx_http_darkroom_task_body);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


static ngx_int_t
ngx_http_darkroom_task_init(ngx_http_request_t *r, size_t size,
    ngx_http_darkroom_prepare_pt prepare, ngx_http_darkroom_work_pt work,
    ngx_http_darkroom_done_pt done)
{
    ngx_pool_cleanup_t            *cln;
    ngx_http_darkroom_task_ctx_t  *ctx;

    if (ngx_http_darkroom_task_of(r) == NULL) {
        return NGX_ERROR;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_darkroom_module);

    if (size) {
        ctx->task.data = ngx_pcalloc(r->pool, size);
        if (ctx->task.data == NULL) {
            return NGX_ERROR;
        }
    }

    /* output a thread malloc'd is freed with the request, whatever happens */

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    cln->handler = ngx_http_darkroom_task_cleanup;
    cln->data = &ctx->task;

    ctx->task.prepare = prepare;
    ctx->task.work = work;
    ctx->task.done = done;
    ctx->task.request = r;

    return NGX_OK;
}


/* a body over NGX_HTTP_DARKROOM_BODY_MAX: refused, never read into memory */

static ngx_int_t
ngx_http_darkroom_task_too_large(ngx_http_request_t *r)
{
    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "darkroom task: body of \"%V\" over the cap", &r->uri);

    /* nginx reads the rest into a small buffer and drops it */

    if (ngx_http_discard_request_body(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_darkroom_send_error(r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
               "too_large", "The request body is too large.");
}


static void
ngx_http_darkroom_task_body(ngx_http_request_t *r)
{
    ngx_int_t                      rc;
    ngx_http_darkroom_task_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_darkroom_module);

    rc = ctx->file ? ngx_http_darkroom_task_file(r, &ctx->task)
                   : ngx_http_darkroom_task_read_body(r, &ctx->task.body);

    if (rc != NGX_OK) {
        ngx_http_finalize_request(r, rc == NGX_DECLINED
                                     ? ngx_http_darkroom_task_too_large(r)
                                     : NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (ctx->task.prepare) {
        rc = ctx->task.prepare(r, &ctx->task);

        /* anything but NGX_OK, or an answer already sent, ends it here */

        if (rc != NGX_OK || r->header_sent) {
            ngx_http_finalize_request(r, rc);
            return;
        }
    }

    if (ngx_http_darkroom_task_post(r, ctx) != NGX_OK) {
        /* nginx has logged "thread pool queue overflow" */
        ngx_http_darkroom_error_set(&ctx->task.err,
                                    NGX_HTTP_SERVICE_UNAVAILABLE, "busy",
                                    "The server is busy, please retry "
                                    "shortly.");
        ngx_http_finalize_request(r,
                       ngx_http_darkroom_send_task_error(r, &ctx->task.err));
        return;
    }
}


/* the body as one contiguous buffer, read back from a temp file if needed */

static ngx_int_t
ngx_http_darkroom_task_read_body(ngx_http_request_t *r, ngx_str_t *body)
{
    off_t         len;
    u_char       *p;
    ssize_t       n;
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    ngx_str_null(body);

    if (r->request_body == NULL || r->request_body->bufs == NULL) {
        return NGX_OK;
    }

    cl = r->request_body->bufs;

    if (cl->next == NULL && !cl->buf->in_file) {
        body->data = cl->buf->pos;
        body->len = cl->buf->last - cl->buf->pos;
        return NGX_OK;
    }

    len = 0;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        len += ngx_buf_size(cl->buf);
    }

    if (len == 0) {
        return NGX_OK;
    }

    /* chunked, so not refused by its length: over the cap, not read */

    if (len > NGX_HTTP_DARKROOM_BODY_MAX) {
        return NGX_DECLINED;
    }

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    body->data = p;
    body->len = len;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;

        if (!b->in_file) {
            p = ngx_cpymem(p, b->pos, b->last - b->pos);
            continue;
        }

        n = ngx_read_file(b->file, p, b->file_last - b->file_pos,
                          b->file_pos);
        if (n != b->file_last - b->file_pos) {
            return NGX_ERROR;
        }

        p += n;
    }

    return NGX_OK;
}


/* task_start_file: the temp file's name and size (none: an empty body) */

static ngx_int_t
ngx_http_darkroom_task_file(ngx_http_request_t *r,
    ngx_http_darkroom_task_t *t)
{
    ngx_temp_file_t  *tf;

    ngx_str_null(&t->body_file);
    t->body_size = 0;

    if (r->request_body == NULL || r->request_body->temp_file == NULL) {
        return NGX_OK;
    }

    tf = r->request_body->temp_file;

    /* ngx_create_temp_file() made the name NUL-terminated */

    t->body_file = tf->file.name;
    t->body_size = tf->file.offset;

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "darkroom task: body of \"%V\" in \"%V\", %O bytes",
                   &r->uri, &t->body_file, t->body_size);

    return NGX_OK;
}


static ngx_int_t
ngx_http_darkroom_task_post(ngx_http_request_t *r,
    ngx_http_darkroom_task_ctx_t *ctx)
{
    ngx_http_darkroom_main_conf_t  *dmcf;

    dmcf = ngx_http_get_module_main_conf(r, ngx_http_darkroom_module);

    ctx->task.db.conninfo = (const char *) dmcf->conninfo.data;
    ctx->task.db.timeout = dmcf->db_timeout;
    ctx->task.db.deadline = ngx_http_darkroom_monotonic_ms()
                            + dmcf->db_timeout;
    ctx->task.fetch_timeout = dmcf->fetch_timeout;
    ctx->task.conf = dmcf;

    ngx_http_darkroom_request_id_copy(r, &ctx->task);

#if (NGX_DEBUG)
    ngx_http_darkroom_task_trace(r, &ctx->task);
#endif

    /*
     * The area's own post queues the task with others; it completes
     * later from the event loop, never from inside this call.
     */

    if (ctx->task.post) {
        if (ctx->task.post(r, &ctx->task) != NGX_OK) {
            return NGX_ERROR;
        }

    } else if (ngx_http_darkroom_task_thread_post(r, ctx, dmcf) != NGX_OK) {
        return NGX_ERROR;
    }

    r->main->blocked++;
    r->write_event_handler = ngx_http_darkroom_task_resume;

    ngx_http_darkroom_hold(r->connection->log);

    return NGX_OK;
}


static ngx_int_t
ngx_http_darkroom_task_thread_post(ngx_http_request_t *r,
    ngx_http_darkroom_task_ctx_t *ctx, ngx_http_darkroom_main_conf_t *dmcf)
{
    ngx_thread_task_t  *task;

    task = ngx_thread_task_alloc(r->pool, 0);
    if (task == NULL) {
        return NGX_ERROR;
    }

    task->ctx = &ctx->task;
    task->handler = ngx_http_darkroom_task_thread;
    task->event.data = r;
    task->event.handler = ngx_http_darkroom_task_event;

    ctx->task.posted = ngx_http_darkroom_metrics_now();

    if (ngx_thread_task_post(dmcf->pool, task) != NGX_OK) {
        ngx_http_darkroom_metric_inc(tasks_queue_full);
        return NGX_ERROR;
    }

    ngx_http_darkroom_metric_inc(tasks_posted);

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "darkroom task: posted \"%V\" to thread pool \"%V\" "
                   "as task #%ui", &r->uri, &dmcf->pool_name, task->id);

    return NGX_OK;
}


#if (NGX_DEBUG)

/* a trace for the task if the request's log takes debug lines */

static void
ngx_http_darkroom_task_trace(ngx_http_request_t *r,
    ngx_http_darkroom_task_t *t)
{
    if (!(r->connection->log->log_level & NGX_LOG_DEBUG_HTTP)) {
        return;
    }

    t->trace = ngx_palloc(r->pool, sizeof(ngx_http_darkroom_trace_t));
    if (t->trace == NULL) {
        return;
    }

    t->trace->len = 0;
    t->trace->dropped = 0;
    t->trace->posted = ngx_http_darkroom_monotonic_ms();
    t->trace->started = 0;
    t->trace->ended = 0;
}

#endif


static void
ngx_http_darkroom_task_thread(void *data, ngx_log_t *log)
{
    ngx_http_darkroom_task_t  *t = data;

    uint64_t  start;

    start = ngx_http_darkroom_metrics_now();
    ngx_http_darkroom_metric_observe(task_wait, start - t->posted);

#if (NGX_DEBUG)
    ngx_http_darkroom_trace_begin(t->trace);
#endif

    ngx_http_darkroom_task_current = t;

    /* an admin request's credential first: refused, the work never runs */

    if (t->auth == NULL || ngx_http_darkroom_auth_check(t) == NGX_OK) {
        t->work(t);

        if (t->auth) {
            ngx_http_darkroom_auth_audit(t);
        }
    }

    ngx_http_darkroom_task_current = NULL;

    ngx_http_darkroom_metric_since(task_run, start);

    ngx_http_darkroom_trace_end();
}


/*
 * In a thread: the $request_id of the request task it runs, for the
 * X-Request-Id of provider calls; with db, only that of a task that may
 * write (for darkroom.request_id, the jobs' request_id).  A job runner's:
 * that of the request which queued the job (jobs.request_id), so the jobs
 * a job queues inherit it.  NULL: none.
 */

const char *
ngx_http_darkroom_request_id(ngx_uint_t db)
{
    ngx_http_darkroom_task_t  *t;

    t = ngx_http_darkroom_task_current;

    if (t == NULL) {
        return (ngx_http_darkroom_job_rid && ngx_http_darkroom_job_rid[0])
               ? ngx_http_darkroom_job_rid : NULL;
    }

    if (t->request_id[0] == '\0' || (db && !t->writes)) {
        return NULL;
    }

    return t->request_id;
}


/* in a job runner's thread: the request id of the job it runs, or NULL */

void
ngx_http_darkroom_request_id_job(const char *rid)
{
    ngx_http_darkroom_job_rid = rid;
}


static void
ngx_http_darkroom_task_event(ngx_event_t *ev)
{
    ngx_http_request_t            *r;
    ngx_http_darkroom_task_ctx_t  *ctx;

    r = ev->data;
    ctx = ngx_http_get_module_ctx(r, ngx_http_darkroom_module);

    ngx_http_darkroom_task_complete(&ctx->task);
}


/*
 * On the event loop: the work of t is done (its own thread task, or an
 * area's that ran it with others): the request resumes and answers.
 */

void
ngx_http_darkroom_task_complete(ngx_http_darkroom_task_t *t)
{
    ngx_connection_t              *c;
    ngx_http_request_t            *r;
    ngx_http_darkroom_task_ctx_t  *ctx;

    r = t->request;
    c = r->connection;

    ngx_http_set_log_request(c->log, r);

    r->main->blocked--;

    ngx_http_darkroom_release();

    ctx = ngx_http_get_module_ctx(r, ngx_http_darkroom_module);
    ctx->completed = 1;

#if (NGX_DEBUG)
    if (ctx->task.trace) {
        ngx_http_darkroom_trace_log(c->log, ctx->task.trace, "darkroom task");
    }
#endif

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, c->log, 0,
                   "darkroom task: complete \"%V\"%s", &r->uri,
                   ctx->task.err.status ? ", failed" : "");

    /*
     * If the request was terminated while parked, nginx has replaced the
     * write handler with its finalizer, which now completes the teardown.
     */

    r->write_event_handler(r);

    ngx_http_run_posted_requests(c);
}


static void
ngx_http_darkroom_task_resume(ngx_http_request_t *r)
{
    ngx_int_t                      rc;
    ngx_uint_t                     level;
    ngx_http_darkroom_task_t      *t;
    ngx_http_darkroom_task_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_darkroom_module);

    if (!ctx->completed) {
        /* a write event while the work runs: nothing to send yet */
        return;
    }

    r->write_event_handler = ngx_http_request_empty_handler;

    t = &ctx->task;

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "darkroom task: resume \"%V\", %s%s", &r->uri,
                   t->err.status ? "error " : "answer",
                   t->err.status ? t->err.code : "");

    if (t->err.detail[0]) {
        level = (t->err.status >= NGX_HTTP_INTERNAL_SERVER_ERROR)
                ? NGX_LOG_ERR : NGX_LOG_INFO;
        ngx_log_error(level, r->connection->log, 0,
                      "darkroom: %s%s%s", t->err.detail,
                      t->request_id[0] ? ", request_id=" : "",
                      t->request_id);
    }

    if (t->done) {
        rc = t->done(r, t);

    } else if (t->err.status) {
        rc = ngx_http_darkroom_send_task_error(r, &t->err);

    } else if (t->out) {
        rc = ngx_http_darkroom_send_json(r, t->status ? t->status
                                                      : NGX_HTTP_OK,
                                         (u_char *) t->out, t->out_len);
    } else {
        rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_finalize_request(r, rc);
}


/*
 * On the event loop: one more thing in flight (a parked request, a job
 * runner's task).  While any is, an exiting worker does not leave.
 */

void
ngx_http_darkroom_hold(ngx_log_t *log)
{
    ngx_event_t  *ev = &ngx_http_darkroom_hold_ev;

    ngx_http_darkroom_held++;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, log, 0,
                   "darkroom hold: %ui in flight", ngx_http_darkroom_held);

    if (ev->timer_set) {
        return;
    }

    ev->handler = ngx_http_darkroom_hold_handler;
    ev->log = ngx_cycle->log;
    ngx_http_darkroom_hold_dumb.fd = (ngx_socket_t) -1;
    ev->data = &ngx_http_darkroom_hold_dumb;

    /* not cancelable: ngx_event_no_timers_left() keeps the worker */
    ev->cancelable = 0;

    ngx_add_timer(ev, NGX_HTTP_DARKROOM_HOLD_PERIOD);
}


void
ngx_http_darkroom_release(void)
{
    if (ngx_http_darkroom_held == 0) {
        return;
    }

    if (--ngx_http_darkroom_held == 0
        && ngx_http_darkroom_hold_ev.timer_set)
    {
        ngx_del_timer(&ngx_http_darkroom_hold_ev);
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "darkroom hold: %ui in flight", ngx_http_darkroom_held);
}


static void
ngx_http_darkroom_hold_handler(ngx_event_t *ev)
{
    if (ngx_http_darkroom_held == 0) {
        return;
    }

    if (ngx_exiting && !ngx_http_darkroom_held_logged) {
        ngx_http_darkroom_held_logged = 1;
        ngx_log_error(NGX_LOG_NOTICE, ev->log, 0,
                      "darkroom: exiting worker waits for %ui parked "
                      "request(s) and job(s) to finish",
                      ngx_http_darkroom_held);
    }

    ngx_add_timer(ev, NGX_HTTP_DARKROOM_HOLD_PERIOD);
}


static void
ngx_http_darkroom_task_cleanup(void *data)
{
    ngx_http_darkroom_task_t  *t = data;

    if (t->out) {
        free(t->out);
        t->out = NULL;
    }
}


/*
 * In a thread: the answer of "SELECT f(...)", a function returning the JSON
 * document, becomes the task's output; no row or NULL is a 404 with the
 * given sentence.  Takes the result.
 */

void
ngx_http_darkroom_task_answer(ngx_http_darkroom_task_t *t, PGresult *res,
    const char *missing)
{
    const char  *value;

    value = ngx_http_darkroom_db_only(res);

    if (value == NULL) {
        ngx_http_darkroom_error_set(&t->err, NGX_HTTP_NOT_FOUND, "not_found",
                                    "%s", missing);
        PQclear(res);
        return;
    }

    t->out_len = ngx_strlen(value);
    t->out = malloc(t->out_len + 1);

    if (t->out == NULL) {
        ngx_http_darkroom_error_set(&t->err, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                    "internal_error", "Out of memory.");
    } else {
        ngx_memcpy(t->out, value, t->out_len + 1);
        t->status = NGX_HTTP_OK;
    }

    PQclear(res);
}


#if (NGX_DEBUG)

/*
 * In a thread: the trace entries go to, NULL for none.  Set by the task
 * layer's thread handler and by the job runner around their work.
 */

void
ngx_http_darkroom_trace_begin(ngx_http_darkroom_trace_t *tr)
{
    ngx_http_darkroom_trace_current = tr;

    if (tr) {
        tr->started = ngx_http_darkroom_monotonic_ms();
    }
}


void
ngx_http_darkroom_trace_end(void)
{
    ngx_http_darkroom_trace_t  *tr;

    tr = ngx_http_darkroom_trace_current;

    if (tr) {
        tr->ended = ngx_http_darkroom_monotonic_ms();
    }

    ngx_http_darkroom_trace_current = NULL;
}


/* in a thread: whether entries are kept (worth measuring for) */

ngx_uint_t
ngx_http_darkroom_tracing(void)
{
    return ngx_http_darkroom_trace_current != NULL;
}


/* in a thread: one entry, or a count of those that no longer fit */

void
ngx_http_darkroom_trace(const char *fmt, ...)
{
    int                         n;
    size_t                      room;
    va_list                     args;
    ngx_http_darkroom_trace_t  *tr;

    tr = ngx_http_darkroom_trace_current;

    if (tr == NULL) {
        return;
    }

    room = sizeof(tr->text) - tr->len;

    if (room < 2) {
        tr->dropped++;
        return;
    }

    va_start(args, fmt);
    n = vsnprintf(tr->text + tr->len, room, fmt, args);
    va_end(args);

    if (n < 0 || (size_t) n >= room) {
        /* an entry is kept whole or not at all */
        tr->text[tr->len] = '\0';
        tr->dropped++;
        return;
    }

    tr->len += n + 1;
}


/* on the event loop: the entries at debug level, then the trace is empty */

void
ngx_http_darkroom_trace_log(ngx_log_t *log, ngx_http_darkroom_trace_t *tr,
    const char *who)
{
    char  *p, *last;

    last = tr->text + tr->len;

    for (p = tr->text; p < last; p += ngx_strlen(p) + 1) {
        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, log, 0, "%s: %s", who, p);
    }

    if (tr->dropped) {
        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, log, 0,
                       "%s: %ui more trace entries did not fit", who,
                       tr->dropped);
    }

    if (tr->started) {
        ngx_log_debug3(NGX_LOG_DEBUG_HTTP, log, 0,
                       "%s: thread work took %uL ms after %uL ms queued",
                       who, (uint64_t) (tr->ended - tr->started),
                       (uint64_t) (tr->started - tr->posted));
    }

    tr->len = 0;
    tr->dropped = 0;
    tr->started = 0;
    tr->ended = 0;
}

#endif
