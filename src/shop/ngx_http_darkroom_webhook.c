
/*
 * darkroom: the Stripe webhook endpoint.
 *
 * On the event loop: the signature is checked over the raw body before
 * anything is parsed, then the event's envelope is read once, strictly
 * (stripe_event.c): the id and type it yields are what is logged, answered
 * and handed to SQL, so all three name the same event.  The event is
 * applied by stripe_handle_event(), keyed by the event id so a repeat
 * changes nothing.  200 only once committed; Postgres down is 503 so that
 * Stripe delivers again later.
 *
 * Group commit: the verified events of a worker wait in one queue.  With
 * no batch in flight a lone event is posted at once; while one is, those
 * that arrive wait and go together, up to darkroom_stripe_batch of them,
 * when the batch in flight is done, when that many wait, or when the
 * oldest has waited darkroom_stripe_batch_wait.  A batch is one thread
 * task and one statement, stripe_handle_events(): one transaction, each
 * event in a savepoint of its own, so one that raises is rolled back and
 * answered its own error while the others commit.  Every request of the
 * batch is answered only once the statement, and so the commit, is done;
 * a batch that fails as a whole (database down, commit failed, thread
 * pool full) answers each of its events that error.  A queued request
 * stays parked (r->main->blocked) and held by the worker like any task,
 * so a client that goes away or a worker that exits finds it intact.
 */


#include "ngx_http_darkroom_shop.h"
#include "ngx_http_darkroom_stripe_sig.h"
#include "ngx_http_darkroom_stripe_event.h"


#define NGX_HTTP_DARKROOM_MAX_SECRETS  16


typedef struct {
    ngx_queue_t                   queue;    /* waiting for a batch */
    ngx_http_darkroom_task_t     *task;
    char                         *event;    /* the raw body, NUL-terminated */
    char                          id[256];  /* checked: evt_ [A-Za-z0-9_]+ */
    char                          type[128]; /* checked: [A-Za-z0-9_.-]+ */

    /* results, set by the batch's thread */
    char                          result[256];
    unsigned                      outcome:1;  /* result or task->err set */
} ngx_http_darkroom_webhook_t;


/* a group commit: the events of one transaction, one thread task */

typedef struct {
    ngx_thread_task_t             task;
    ngx_queue_t                   queue;    /* the batches in flight */
    ngx_http_darkroom_db_t        db;
    ngx_http_darkroom_error_t     err;      /* the batch failed as a whole */
    uint64_t                      posted;   /* for the task metrics */
    ngx_uint_t                    n;
    ngx_http_darkroom_webhook_t  *ev[1];    /* n of them */
} ngx_http_darkroom_webhook_batch_t;


static ngx_int_t ngx_http_darkroom_webhook_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_darkroom_webhook_prepare(ngx_http_request_t *r,
    ngx_http_darkroom_task_t *t);
static ngx_int_t ngx_http_darkroom_webhook_verify(ngx_http_request_t *r,
    ngx_http_darkroom_task_t *t);
static ngx_int_t ngx_http_darkroom_webhook_queue(ngx_http_request_t *r,
    ngx_http_darkroom_task_t *t);
static void ngx_http_darkroom_webhook_wait_handler(ngx_event_t *ev);
static void ngx_http_darkroom_webhook_flush(void);
static ngx_uint_t ngx_http_darkroom_webhook_fill(
    ngx_http_darkroom_webhook_batch_t *b, ngx_uint_t max);
static ngx_uint_t ngx_http_darkroom_webhook_in_flight(const char *id);
static ngx_uint_t ngx_http_darkroom_webhook_repeats(
    ngx_http_darkroom_webhook_batch_t *b);
static ngx_uint_t ngx_http_darkroom_webhook_has(
    ngx_http_darkroom_webhook_batch_t *b, const char *id);
static void ngx_http_darkroom_webhook_post(
    ngx_http_darkroom_webhook_batch_t *b);
static void ngx_http_darkroom_webhook_thread(void *data, ngx_log_t *log);
static char *ngx_http_darkroom_webhook_array(
    ngx_http_darkroom_webhook_batch_t *b, ngx_uint_t field);
static const char *ngx_http_darkroom_webhook_field(
    ngx_http_darkroom_webhook_t *wh, ngx_uint_t field);
static void ngx_http_darkroom_webhook_outcomes(
    ngx_http_darkroom_webhook_batch_t *b, PGresult *res);
static void ngx_http_darkroom_webhook_result(ngx_http_darkroom_webhook_t *wh,
    const char *value);
static void ngx_http_darkroom_webhook_batch_done(ngx_event_t *ev);
static ngx_int_t ngx_http_darkroom_webhook_done(ngx_http_request_t *r,
    ngx_http_darkroom_task_t *t);
static u_char *ngx_http_darkroom_webhook_escape(ngx_pool_t *pool,
    const char *s);


/* per worker: the events waiting for a batch, the batches in flight */
static ngx_queue_t                     ngx_http_darkroom_webhook_waiting;
static ngx_queue_t                     ngx_http_darkroom_webhook_batches;
static ngx_uint_t                      ngx_http_darkroom_webhook_nwaiting;
static ngx_uint_t                      ngx_http_darkroom_webhook_inflight;
static ngx_event_t                     ngx_http_darkroom_webhook_wait_ev;
static ngx_connection_t                ngx_http_darkroom_webhook_dumb;
static ngx_http_darkroom_shop_conf_t  *ngx_http_darkroom_webhook_conf;


static const char  *ngx_http_darkroom_sig_errors[][2] = {
    { "", "" },
    { "missing_signature", "The Stripe-Signature header is missing." },
    { "malformed_signature", "The Stripe-Signature header is malformed." },
    { "missing_signature", "The Stripe-Signature header has no v1 "
                           "signature." },
    { "bad_signature", "No signature matches the payload." },
    { "stale_timestamp", "The signature's timestamp is outside the "
                         "tolerance." },
    { "bad_signature", "The signature could not be checked." },
};


/* indexed by NGX_HTTP_DARKROOM_STRIPE_EVENT_* */

static const char  *ngx_http_darkroom_event_errors[][2] = {
    { "", "" },
    { "invalid_json", "The event is not a JSON object (valid UTF-8, no "
                      "\\u0000)." },
    { "duplicate_key", "The event has a key twice in one object." },
    { "thin_event_unsupported", "Thin events are not supported: point this "
                                "endpoint at a snapshot event destination." },
    { "invalid_event", "The event needs an id, a type and data.object." },
    { "invalid_event_id", "The event id is not of Stripe's form "
                          "(evt_ and letters, digits or _)." },
};


char *
ngx_http_darkroom_stripe_webhook(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_darkroom_shop_conf_t  *scf;

    scf = ngx_http_conf_get_module_main_conf(cf,
                                             ngx_http_darkroom_shop_module);

    if (ngx_http_darkroom_use(cf, cmd, ngx_http_darkroom_webhook_handler,
                              &scf->use_webhook)
        == NULL)
    {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_darkroom_webhook_handler(ngx_http_request_t *r)
{
    if (r->method != NGX_HTTP_POST) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    /* no work of its own: prepare hands the task to the group commit */

    return ngx_http_darkroom_task_start(r,
                                        sizeof(ngx_http_darkroom_webhook_t),
                                        ngx_http_darkroom_webhook_prepare,
                                        NULL,
                                        ngx_http_darkroom_webhook_done);
}


static ngx_int_t
ngx_http_darkroom_webhook_prepare(ngx_http_request_t *r,
    ngx_http_darkroom_task_t *t)
{
    int                                rc;
    ngx_int_t                          sent;
    ngx_http_darkroom_webhook_t       *wh = t->data;
    ngx_http_darkroom_stripe_event_t   ev;

    sent = ngx_http_darkroom_webhook_verify(r, t);
    if (sent != NGX_OK) {
        return sent;
    }

    /* signed by Stripe: now it is worth reading, once, and only this
     * reading is logged, answered and handed to PostgreSQL */

    rc = ngx_http_darkroom_stripe_event_parse(t->body.data, t->body.len,
                                              &ev);

    if (rc != NGX_HTTP_DARKROOM_STRIPE_EVENT_OK) {
        ngx_http_darkroom_metric_inc(webhooks[NGX_HTTP_DARKROOM_WH_REFUSED]);
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "darkroom: stripe event refused: %s",
                      ngx_http_darkroom_event_errors[rc][0]);

        return ngx_http_darkroom_send_error(r, NGX_HTTP_BAD_REQUEST,
                   ngx_http_darkroom_event_errors[rc][0],
                   ngx_http_darkroom_event_errors[rc][1]);
    }

    ngx_cpystrn((u_char *) wh->id, (u_char *) ev.id, sizeof(wh->id));
    ngx_cpystrn((u_char *) wh->type, (u_char *) ev.type, sizeof(wh->type));

    wh->event = ngx_pnalloc(r->pool, t->body.len + 1);
    if (wh->event == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (t->body.len) {
        ngx_memcpy(wh->event, t->body.data, t->body.len);
    }

    wh->event[t->body.len] = '\0';

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "darkroom: stripe event %s %s verified", wh->id, wh->type);

    wh->task = t;
    t->post = ngx_http_darkroom_webhook_queue;

    return NGX_OK;
}


/* NGX_OK when signed by one of our secrets, else the refusal was sent */

static ngx_int_t
ngx_http_darkroom_webhook_verify(ngx_http_request_t *r,
    ngx_http_darkroom_task_t *t)
{
    int                                 rc;
    ngx_str_t                          *s;
    ngx_uint_t                          i, n;
    ngx_table_elt_t                    *h;
    ngx_http_darkroom_shop_conf_t      *scf;
    ngx_http_darkroom_stripe_secret_t   secrets[NGX_HTTP_DARKROOM_MAX_SECRETS];

    scf = ngx_http_get_module_main_conf(r, ngx_http_darkroom_shop_module);

    s = scf->stripe_webhook_secrets->elts;
    n = ngx_min(scf->stripe_webhook_secrets->nelts,
                NGX_HTTP_DARKROOM_MAX_SECRETS);

    for (i = 0; i < n; i++) {
        secrets[i].data = s[i].data;
        secrets[i].len = s[i].len;
    }

    h = ngx_http_darkroom_header_in(r, "Stripe-Signature",
                                    sizeof("Stripe-Signature") - 1);

    rc = ngx_http_darkroom_stripe_verify(h ? h->value.data : NULL,
                                         h ? h->value.len : 0,
                                         t->body.data, t->body.len,
                                         secrets, n, (long long) ngx_time(),
                                         (long long) scf->stripe_tolerance);

    /* a run of failures with none good: a wrong secret (darkroom_alerts) */
    ngx_http_darkroom_alerts_signature("stripe",
                                       rc == NGX_HTTP_DARKROOM_STRIPE_SIG_OK);

    if (rc == NGX_HTTP_DARKROOM_STRIPE_SIG_OK) {
        return NGX_OK;
    }

    ngx_http_darkroom_metric_inc(webhooks[
        rc == NGX_HTTP_DARKROOM_STRIPE_SIG_STALE ? NGX_HTTP_DARKROOM_WH_STALE
                                   : NGX_HTTP_DARKROOM_WH_BAD_SIGNATURE]);
    ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                  "darkroom: stripe webhook refused: %s",
                  ngx_http_darkroom_sig_errors[rc][0]);

    return ngx_http_darkroom_send_error(r, NGX_HTTP_BAD_REQUEST,
                                        ngx_http_darkroom_sig_errors[rc][0],
                                        ngx_http_darkroom_sig_errors[rc][1]);
}


/*
 * The task's post (ngx_http_darkroom_task_post): the verified event joins
 * the worker's queue.  It is answered later, from the event loop, once
 * its batch is done (ngx_http_darkroom_webhook_batch_done).
 */

static ngx_int_t
ngx_http_darkroom_webhook_queue(ngx_http_request_t *r,
    ngx_http_darkroom_task_t *t)
{
    ngx_event_t                    *ev;
    ngx_http_darkroom_webhook_t    *wh = t->data;
    ngx_http_darkroom_shop_conf_t  *scf;

    ev = &ngx_http_darkroom_webhook_wait_ev;
    scf = ngx_http_get_module_main_conf(r, ngx_http_darkroom_shop_module);

    if (ngx_http_darkroom_webhook_waiting.next == NULL) {
        ngx_queue_init(&ngx_http_darkroom_webhook_waiting);
        ngx_queue_init(&ngx_http_darkroom_webhook_batches);

        ev->handler = ngx_http_darkroom_webhook_wait_handler;
        ev->log = ngx_cycle->log;
        ngx_http_darkroom_webhook_dumb.fd = (ngx_socket_t) -1;
        ev->data = &ngx_http_darkroom_webhook_dumb;
        ev->cancelable = 1;    /* the queued requests hold the worker */

        ngx_http_darkroom_webhook_conf = scf;
    }

    ngx_queue_insert_tail(&ngx_http_darkroom_webhook_waiting, &wh->queue);
    ngx_http_darkroom_webhook_nwaiting++;

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "darkroom webhook: event %s queued, %ui waiting, "
                   "%ui batch(es) in flight", wh->id,
                   ngx_http_darkroom_webhook_nwaiting,
                   ngx_http_darkroom_webhook_inflight);

    if (ngx_http_darkroom_webhook_inflight == 0
        || ngx_http_darkroom_webhook_nwaiting
           >= (ngx_uint_t) scf->stripe_batch
        || scf->stripe_batch_wait == 0)
    {
        ngx_http_darkroom_webhook_flush();

    } else if (!ev->timer_set) {
        ngx_add_timer(ev, scf->stripe_batch_wait);
    }

    return NGX_OK;
}


/* the oldest waiting event has waited darkroom_stripe_batch_wait */

static void
ngx_http_darkroom_webhook_wait_handler(ngx_event_t *ev)
{
    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ev->log, 0,
                   "darkroom webhook: waited, %ui waiting, "
                   "%ui batch(es) in flight",
                   ngx_http_darkroom_webhook_nwaiting,
                   ngx_http_darkroom_webhook_inflight);

    ngx_http_darkroom_webhook_flush();
}


/*
 * Every waiting event goes, in batches of at most darkroom_stripe_batch,
 * while fewer than darkroom_stripe_batches are in flight (the others go
 * when one is done), but a repeat of an event that a batch in flight
 * applies: it waits for that batch (then it is a duplicate at once), for
 * two transactions that insert one event id wait for each other, and with
 * the other rows each holds that is a deadlock.
 */

static void
ngx_http_darkroom_webhook_flush(void)
{
    ngx_uint_t                          n, max;
    ngx_event_t                        *ev;
    ngx_http_darkroom_shop_conf_t      *scf;
    ngx_http_darkroom_webhook_batch_t  *b;

    ev = &ngx_http_darkroom_webhook_wait_ev;
    scf = ngx_http_darkroom_webhook_conf;

    if (ev->timer_set) {
        ngx_del_timer(ev);
    }

    while (ngx_http_darkroom_webhook_inflight
           < (ngx_uint_t) scf->stripe_batches)
    {
        max = ngx_min(ngx_http_darkroom_webhook_nwaiting,
                      (ngx_uint_t) scf->stripe_batch);
        if (max == 0) {
            return;
        }

        b = ngx_calloc(sizeof(ngx_http_darkroom_webhook_batch_t)
                       + (max - 1) * sizeof(ngx_http_darkroom_webhook_t *),
                       ngx_cycle->log);

        if (b == NULL) {
            break;
        }

        n = ngx_http_darkroom_webhook_fill(b, max);

        if (n == 0) {
            ngx_free(b);
            break;
        }

        ngx_http_darkroom_webhook_post(b);

        if (n < max) {
            break;
        }
    }

    /*
     * repeats held back (or no memory): tried again after a while; with
     * darkroom_stripe_batches in flight, when one is done
     */

    if (ngx_http_darkroom_webhook_nwaiting
        && ngx_http_darkroom_webhook_inflight
           < (ngx_uint_t) scf->stripe_batches
        && !ev->timer_set)
    {
        ngx_add_timer(ev, ngx_max(scf->stripe_batch_wait, 1));
    }
}


/* up to max waiting events into b, oldest first; how many */

static ngx_uint_t
ngx_http_darkroom_webhook_fill(ngx_http_darkroom_webhook_batch_t *b,
    ngx_uint_t max)
{
    ngx_queue_t                  *q, *next;
    ngx_http_darkroom_webhook_t  *wh;

    for (q = ngx_queue_head(&ngx_http_darkroom_webhook_waiting);
         q != ngx_queue_sentinel(&ngx_http_darkroom_webhook_waiting)
         && b->n < max;
         q = next)
    {
        next = ngx_queue_next(q);
        wh = ngx_queue_data(q, ngx_http_darkroom_webhook_t, queue);

        if (ngx_http_darkroom_webhook_in_flight(wh->id)) {
            ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                           "darkroom webhook: event %s waits for its "
                           "repeat in flight", wh->id);
            continue;
        }

        ngx_queue_remove(q);
        b->ev[b->n++] = wh;
        ngx_http_darkroom_webhook_nwaiting--;
    }

    return b->n;
}


static ngx_uint_t
ngx_http_darkroom_webhook_in_flight(const char *id)
{
    ngx_queue_t                        *q;
    ngx_http_darkroom_webhook_batch_t  *b;

    for (q = ngx_queue_head(&ngx_http_darkroom_webhook_batches);
         q != ngx_queue_sentinel(&ngx_http_darkroom_webhook_batches);
         q = ngx_queue_next(q))
    {
        b = ngx_queue_data(q, ngx_http_darkroom_webhook_batch_t, queue);

        if (ngx_http_darkroom_webhook_has(b, id)) {
            return 1;
        }
    }

    return 0;
}


static ngx_uint_t
ngx_http_darkroom_webhook_has(ngx_http_darkroom_webhook_batch_t *b,
    const char *id)
{
    ngx_uint_t  i;

    for (i = 0; i < b->n; i++) {
        if (ngx_strcmp(b->ev[i]->id, id) == 0) {
            return 1;
        }
    }

    return 0;
}


/* a waiting event repeats one of b's: held back for b, it can go now */

static ngx_uint_t
ngx_http_darkroom_webhook_repeats(ngx_http_darkroom_webhook_batch_t *b)
{
    ngx_queue_t                  *q;
    ngx_http_darkroom_webhook_t  *wh;

    for (q = ngx_queue_head(&ngx_http_darkroom_webhook_waiting);
         q != ngx_queue_sentinel(&ngx_http_darkroom_webhook_waiting);
         q = ngx_queue_next(q))
    {
        wh = ngx_queue_data(q, ngx_http_darkroom_webhook_t, queue);

        if (ngx_http_darkroom_webhook_has(b, wh->id)) {
            return 1;
        }
    }

    return 0;
}


static void
ngx_http_darkroom_webhook_post(ngx_http_darkroom_webhook_batch_t *b)
{
    ngx_http_darkroom_task_t  *t;

    t = b->ev[0]->task;

    /* the oldest event's: the bound on its wait applies to the batch */
    b->db = t->db;

    b->task.ctx = b;
    b->task.handler = ngx_http_darkroom_webhook_thread;
    b->task.event.data = b;
    b->task.event.handler = ngx_http_darkroom_webhook_batch_done;
    b->task.event.log = ngx_cycle->log;

    ngx_http_darkroom_webhook_inflight++;
    ngx_queue_insert_tail(&ngx_http_darkroom_webhook_batches, &b->queue);

    b->posted = ngx_http_darkroom_metrics_now();

    if (ngx_thread_task_post(t->conf->pool, &b->task) == NGX_OK) {
        ngx_http_darkroom_metric_inc(tasks_posted);
        ngx_log_debug3(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                       "darkroom webhook: batch of %ui event(s) posted as "
                       "task #%ui, %ui in flight", b->n, b->task.id,
                       ngx_http_darkroom_webhook_inflight);
        return;
    }

    /* nginx has logged "thread pool queue overflow": each event is 503 */

    ngx_http_darkroom_metric_inc(tasks_queue_full);

    ngx_http_darkroom_error_set(&b->err, NGX_HTTP_SERVICE_UNAVAILABLE,
                                "busy", "The server is busy, please retry "
                                "shortly.");

    ngx_post_event(&b->task.event, &ngx_posted_events);
}


/* in a pool thread: the batch in one statement, so one transaction */

static void
ngx_http_darkroom_webhook_thread(void *data, ngx_log_t *log)
{
    ngx_http_darkroom_webhook_batch_t *b = data;

    char       *params[4];
    uint64_t    start;
    PGresult   *res;
    ngx_uint_t  i;

    start = ngx_http_darkroom_metrics_now();
    ngx_http_darkroom_metric_observe(task_wait, start - b->posted);

    for (i = 0; i < 4; i++) {
        params[i] = ngx_http_darkroom_webhook_array(b, i);
    }

    if (params[0] == NULL || params[1] == NULL || params[2] == NULL
        || params[3] == NULL)
    {
        ngx_http_darkroom_error_set(&b->err, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                    "internal_error", "Out of memory.");
        goto done;
    }

    res = ngx_http_darkroom_db_exec(&b->db,
              "SELECT ev_n, ev_result, ev_state, ev_message, ev_detail "
              "FROM stripe_handle_events($1::text[], $2::text[], "
              "$3::text[], $4::text[])",
              4, (const char *const *) params, &b->err);

    if (res) {
        ngx_http_darkroom_webhook_outcomes(b, res);
        PQclear(res);
    }

done:

    for (i = 0; i < 4; i++) {
        free(params[i]);
    }

    ngx_http_darkroom_metric_since(task_run, start);
}


/*
 * In a thread: one field of every event (0 the body, 1 the id, 2 the
 * type, 3 its request's $request_id, so that the jobs the event queues
 * carry it) as a text[] literal, each element quoted: data for a
 * parameter, never SQL.  malloc'd.
 */

static char *
ngx_http_darkroom_webhook_array(ngx_http_darkroom_webhook_batch_t *b,
    ngx_uint_t field)
{
    char                         *a, *p;
    size_t                        len;
    ngx_uint_t                    i;
    const char                   *s, *c;
    ngx_http_darkroom_webhook_t  *wh;

    len = sizeof("{}");

    for (i = 0; i < b->n; i++) {
        wh = b->ev[i];
        s = ngx_http_darkroom_webhook_field(wh, field);

        len += sizeof(",\"\"");

        for (c = s; *c; c++) {
            len += (*c == '"' || *c == '\\') ? 2 : 1;
        }
    }

    a = malloc(len);
    if (a == NULL) {
        return NULL;
    }

    p = a;
    *p++ = '{';

    for (i = 0; i < b->n; i++) {
        wh = b->ev[i];
        s = ngx_http_darkroom_webhook_field(wh, field);

        if (i) {
            *p++ = ',';
        }

        *p++ = '"';

        for (c = s; *c; c++) {
            if (*c == '"' || *c == '\\') {
                *p++ = '\\';
            }

            *p++ = *c;
        }

        *p++ = '"';
    }

    *p++ = '}';
    *p = '\0';

    return a;
}


static const char *
ngx_http_darkroom_webhook_field(ngx_http_darkroom_webhook_t *wh,
    ngx_uint_t field)
{
    switch (field) {

    case 0:
        return wh->event;

    case 1:
        return wh->id;

    case 2:
        return wh->type;

    default:
        return wh->task->request_id;
    }
}


/* in a thread: each event's row, its result or the error it raised */

static void
ngx_http_darkroom_webhook_outcomes(ngx_http_darkroom_webhook_batch_t *b,
    PGresult *res)
{
    int                           row, cn, cr, cs, cm, cd;
    char                         *v;
    ngx_int_t                     i;
    ngx_http_darkroom_webhook_t  *wh;

    cn = ngx_http_darkroom_db_col(res, "ev_n");
    cr = ngx_http_darkroom_db_col(res, "ev_result");
    cs = ngx_http_darkroom_db_col(res, "ev_state");
    cm = ngx_http_darkroom_db_col(res, "ev_message");
    cd = ngx_http_darkroom_db_col(res, "ev_detail");

    for (row = 0; cn >= 0 && row < PQntuples(res); row++) {
        v = PQgetvalue(res, row, cn);
        i = ngx_atoi((u_char *) v, ngx_strlen(v));

        if (i < 1 || (ngx_uint_t) i > b->n || b->ev[i - 1]->outcome) {
            continue;
        }

        wh = b->ev[i - 1];
        wh->outcome = 1;

        if (cs < 0 || PQgetisnull(res, row, cs)) {
            ngx_http_darkroom_webhook_result(wh, cr < 0 ? ""
                                                 : PQgetvalue(res, row, cr));
            continue;
        }

        /* rolled back to its savepoint: this event alone */

        ngx_http_darkroom_db_error(&wh->task->err, PQgetvalue(res, row, cs),
                                   cm < 0 ? "" : PQgetvalue(res, row, cm),
                                   cd < 0 ? "" : PQgetvalue(res, row, cd),
                                   cm < 0 ? "" : PQgetvalue(res, row, cm));
    }

    for (i = 0; (ngx_uint_t) i < b->n; i++) {
        if (!b->ev[i]->outcome) {
            ngx_http_darkroom_error_set(&b->ev[i]->task->err,
                                        NGX_HTTP_INTERNAL_SERVER_ERROR,
                                        "internal_error",
                                        "The request could not be "
                                        "completed.");
            snprintf(b->ev[i]->task->err.detail,
                     sizeof(b->ev[i]->task->err.detail),
                     "postgres: no outcome for the event");
        }
    }
}


/* in a thread: the result, a long reason cut short on a UTF-8 boundary */

static void
ngx_http_darkroom_webhook_result(ngx_http_darkroom_webhook_t *wh,
    const char *value)
{
    size_t  n;

    ngx_cpystrn((u_char *) wh->result, (u_char *) value,
                sizeof(wh->result));

    n = ngx_strlen(wh->result);

    if (n == sizeof(wh->result) - 1 && ((u_char) wh->result[n - 1] & 0x80)) {
        while (n && ((u_char) wh->result[n - 1] & 0xc0) == 0x80) {
            n--;
        }

        if (n) {
            n--;    /* the lead byte */
        }

        wh->result[n] = '\0';
    }
}


/*
 * On the event loop: the batch's transaction is over.  The next batch
 * goes to PostgreSQL first, then each request of this one is answered
 * (a request whose client went away is torn down instead).
 */

static void
ngx_http_darkroom_webhook_batch_done(ngx_event_t *ev)
{
    ngx_uint_t                          i;
    ngx_http_darkroom_task_t           *t;
    ngx_http_darkroom_webhook_batch_t  *b = ev->data;

    ngx_http_darkroom_webhook_inflight--;
    ngx_queue_remove(&b->queue);

    ngx_log_debug4(NGX_LOG_DEBUG_HTTP, ev->log, 0,
                   "darkroom webhook: batch of %ui event(s) done%s, "
                   "%ui waiting, %ui batch(es) in flight", b->n,
                   b->err.status ? ", failed" : "",
                   ngx_http_darkroom_webhook_nwaiting,
                   ngx_http_darkroom_webhook_inflight);

    /*
     * the waiting events go now when none is in flight, when their wait is
     * over (they were held by darkroom_stripe_batches) or when one repeats
     * an event of this batch
     */

    if (ngx_http_darkroom_webhook_nwaiting
        && (ngx_http_darkroom_webhook_inflight == 0
            || !ngx_http_darkroom_webhook_wait_ev.timer_set
            || ngx_http_darkroom_webhook_repeats(b)))
    {
        ngx_http_darkroom_webhook_flush();
    }

    for (i = 0; i < b->n; i++) {
        t = b->ev[i]->task;

        if (b->err.status) {
            /* not committed: none of its events was applied */
            t->err = b->err;
        }

        ngx_http_darkroom_task_complete(t);
    }

    ngx_free(b);
}


static ngx_int_t
ngx_http_darkroom_webhook_done(ngx_http_request_t *r,
    ngx_http_darkroom_task_t *t)
{
    u_char                       *p, *last, *result;
    size_t                        len, idlen, rlen;
    ngx_uint_t                    level;
    ngx_http_darkroom_webhook_t  *wh = t->data;

    ngx_http_darkroom_log_note(r, NGX_HTTP_DARKROOM_LOG_EVENT, wh->id);

    if (t->err.status) {
        /* not committed: Stripe must deliver it again */
        ngx_http_darkroom_metric_inc(webhooks[NGX_HTTP_DARKROOM_WH_ERROR]);
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "darkroom: stripe event %s not processed, "
                      "answering %ui so that Stripe retries, "
                      "request_id=%s", wh->id, t->err.status,
                      t->request_id);
        return ngx_http_darkroom_send_task_error(r, &t->err);
    }

    ngx_http_darkroom_log_note(r, NGX_HTTP_DARKROOM_LOG_RESULT,
                               ngx_http_darkroom_metrics_webhook_result(
                                   wh->result));

    level = (ngx_strncmp(wh->result, "ignored", 7) == 0)
            ? NGX_LOG_NOTICE
            : (ngx_strncmp(wh->result, "unprocessable", 13) == 0)
              ? NGX_LOG_WARN : NGX_LOG_INFO;

    /* the result may quote the event (a value PostgreSQL refused) */

    result = ngx_http_darkroom_webhook_escape(r->pool, wh->result);
    if (result == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_log_error(level, r->connection->log, 0,
                  "darkroom: stripe event %s %s: %s, request_id=%s",
                  wh->id, wh->type, result, t->request_id);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "darkroom: stripe event %s %s, answering 200", wh->id,
                   ngx_strcmp(wh->result, "duplicate") == 0
                   ? "was a duplicate" : "applied");

    idlen = ngx_strlen(wh->id);
    rlen = ngx_strlen(wh->result);

    len = sizeof("{\"received\":true,\"id\":\"\",\"result\":\"\"}") - 1
          + idlen + ngx_escape_json(NULL, (u_char *) wh->id, idlen)
          + rlen + ngx_escape_json(NULL, (u_char *) wh->result, rlen);

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    last = ngx_cpymem(p, "{\"received\":true,\"id\":\"",
                      sizeof("{\"received\":true,\"id\":\"") - 1);
    last = (u_char *) ngx_escape_json(last, (u_char *) wh->id, idlen);
    last = ngx_cpymem(last, "\",\"result\":\"", sizeof("\",\"result\":\"") - 1);
    last = (u_char *) ngx_escape_json(last, (u_char *) wh->result, rlen);
    last = ngx_cpymem(last, "\"}", 2);

    return ngx_http_darkroom_send_json(r, NGX_HTTP_OK, p, last - p);
}


/* printable ASCII as is, "\\" and every other byte as \xNN, as nginx
 * escapes what a client sent before it logs it */

static u_char *
ngx_http_darkroom_webhook_escape(ngx_pool_t *pool, const char *s)
{
    u_char       *out, *o;
    size_t        n;
    const char   *c;

    static const u_char  hex[] = "0123456789ABCDEF";

    n = 1;

    for (c = s; *c; c++) {
        n += ((u_char) *c < 0x20 || (u_char) *c >= 0x7f || *c == '\\')
             ? 4 : 1;
    }

    out = ngx_pnalloc(pool, n);
    if (out == NULL) {
        return NULL;
    }

    for (o = out, c = s; *c; c++) {
        if ((u_char) *c < 0x20 || (u_char) *c >= 0x7f || *c == '\\') {
            *o++ = '\\';
            *o++ = 'x';
            *o++ = hex[(u_char) *c >> 4];
            *o++ = hex[(u_char) *c & 0xf];

        } else {
            *o++ = (u_char) *c;
        }
    }

    *o = '\0';

    return out;
}
