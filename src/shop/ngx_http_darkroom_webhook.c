
/*
 * darkroom: the Stripe webhook endpoint.
 *
 * On the event loop: the signature is checked over the raw body before
 * anything is parsed, then the event's envelope is read once, strictly
 * (stripe_event.c): the id and type it yields are what is logged, answered
 * and handed to SQL, so all three name the same event.  In a pool thread the
 * event is applied by stripe_handle_event() in one transaction, keyed by
 * the event id so a repeat changes nothing.  200 only once committed;
 * Postgres down is 503 so that Stripe delivers again later.
 */


#include "ngx_http_darkroom_shop.h"
#include "ngx_http_darkroom_stripe_sig.h"
#include "ngx_http_darkroom_stripe_event.h"


#define NGX_HTTP_DARKROOM_MAX_SECRETS  16


typedef struct {
    char         *event;          /* the raw body, NUL-terminated */
    char          id[256];        /* checked: evt_ [A-Za-z0-9_]+ */
    char          type[128];      /* checked: [A-Za-z0-9_.-]+ */

    /* results */
    char          result[256];
} ngx_http_darkroom_webhook_t;


static ngx_int_t ngx_http_darkroom_webhook_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_darkroom_webhook_prepare(ngx_http_request_t *r,
    ngx_http_darkroom_task_t *t);
static ngx_int_t ngx_http_darkroom_webhook_verify(ngx_http_request_t *r,
    ngx_http_darkroom_task_t *t);
static void ngx_http_darkroom_webhook_work(ngx_http_darkroom_task_t *t);
static ngx_int_t ngx_http_darkroom_webhook_done(ngx_http_request_t *r,
    ngx_http_darkroom_task_t *t);
static u_char *ngx_http_darkroom_webhook_escape(ngx_pool_t *pool,
    const char *s);


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

    return ngx_http_darkroom_task_start(r,
                                        sizeof(ngx_http_darkroom_webhook_t),
                                        ngx_http_darkroom_webhook_prepare,
                                        ngx_http_darkroom_webhook_work,
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


static void
ngx_http_darkroom_webhook_work(ngx_http_darkroom_task_t *t)
{
    size_t                        n;
    PGresult                     *res;
    const char                   *params[3];
    ngx_http_darkroom_webhook_t  *wh = t->data;

    params[0] = wh->event;
    params[1] = wh->id;
    params[2] = wh->type;

    res = ngx_http_darkroom_db_exec(&t->db,
              "SELECT result FROM stripe_handle_event($1::jsonb, $2, $3)",
              3, params, &t->err);

    if (res == NULL) {
        return;
    }

    ngx_cpystrn((u_char *) wh->result,
                (u_char *) ngx_http_darkroom_db_value(res, 0, "result"),
                sizeof(wh->result));

    PQclear(res);

    /* a long reason cut short must not end inside a UTF-8 sequence */

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


static ngx_int_t
ngx_http_darkroom_webhook_done(ngx_http_request_t *r,
    ngx_http_darkroom_task_t *t)
{
    u_char                       *p, *last, *result;
    size_t                        len, idlen, rlen;
    ngx_uint_t                    level;
    ngx_http_darkroom_webhook_t  *wh = t->data;

    if (t->err.status) {
        /* not committed: Stripe must deliver it again */
        ngx_http_darkroom_metric_inc(webhooks[NGX_HTTP_DARKROOM_WH_ERROR]);
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "darkroom: stripe event %s not processed, "
                      "answering %ui so that Stripe retries",
                      wh->id, t->err.status);
        return ngx_http_darkroom_send_task_error(r, &t->err);
    }

    ngx_http_darkroom_metrics_webhook_result(wh->result);

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
                  "darkroom: stripe event %s %s: %s",
                  wh->id, wh->type, result);

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
