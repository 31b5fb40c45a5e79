
/*
 * darkroom: the Stripe webhook endpoint.
 *
 * On the event loop: the signature is checked over the raw body before
 * anything is parsed, then the event's envelope.  In a pool thread the
 * event is applied by stripe_handle_event() in one transaction, keyed by
 * the event id so a repeat changes nothing.  200 only once committed;
 * Postgres down is 503 so that Stripe delivers again later.
 */


#include "ngx_http_darkroom.h"
#include "ngx_http_darkroom_stripe_sig.h"


#define NGX_HTTP_DARKROOM_MAX_SECRETS  16


typedef struct {
    char         *event;          /* the raw body, NUL-terminated */
    char          id[256];
    char          type[128];

    /* results */
    char          result[128];
} ngx_http_darkroom_webhook_t;


static ngx_int_t ngx_http_darkroom_webhook_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_darkroom_webhook_prepare(ngx_http_request_t *r,
    ngx_http_darkroom_task_t *t);
static void ngx_http_darkroom_webhook_work(ngx_http_darkroom_task_t *t);
static ngx_int_t ngx_http_darkroom_webhook_done(ngx_http_request_t *r,
    ngx_http_darkroom_task_t *t);


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


char *
ngx_http_darkroom_stripe_webhook(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_darkroom_main_conf_t  *dmcf;

    dmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_darkroom_module);

    if (ngx_http_darkroom_use(cf, cmd, ngx_http_darkroom_webhook_handler,
                              &dmcf->use_webhook)
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
    int                             rc;
    cJSON                          *event, *id, *type, *object;
    ngx_str_t                      *s;
    ngx_uint_t                      i, n;
    ngx_table_elt_t                *h;
    darkroom_secret_t               secrets[NGX_HTTP_DARKROOM_MAX_SECRETS];
    ngx_http_darkroom_webhook_t    *wh = t->data;
    ngx_http_darkroom_main_conf_t  *dmcf;

    dmcf = ngx_http_get_module_main_conf(r, ngx_http_darkroom_module);

    s = dmcf->stripe_webhook_secrets->elts;
    n = ngx_min(dmcf->stripe_webhook_secrets->nelts,
                NGX_HTTP_DARKROOM_MAX_SECRETS);

    for (i = 0; i < n; i++) {
        secrets[i].data = s[i].data;
        secrets[i].len = s[i].len;
    }

    h = ngx_http_darkroom_header_in(r, "Stripe-Signature",
                                    sizeof("Stripe-Signature") - 1);

    rc = darkroom_stripe_verify(h ? h->value.data : NULL,
                                h ? h->value.len : 0,
                                t->body.data, t->body.len, secrets, n,
                                (long long) ngx_time(),
                                (long long) dmcf->stripe_tolerance);

    if (rc != DARKROOM_STRIPE_SIG_OK) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "darkroom: stripe webhook refused: %s",
                      ngx_http_darkroom_sig_errors[rc][0]);

        return ngx_http_darkroom_send_error(r, NGX_HTTP_BAD_REQUEST,
                                            ngx_http_darkroom_sig_errors[rc][0],
                                            ngx_http_darkroom_sig_errors[rc][1]);
    }

    /* signed by Stripe: now it is worth parsing */

    event = cJSON_ParseWithLength((char *) t->body.data, t->body.len);

    if (event == NULL || !cJSON_IsObject(event)) {
        cJSON_Delete(event);
        return ngx_http_darkroom_send_error(r, NGX_HTTP_BAD_REQUEST,
                   "invalid_json", "The event is not a JSON object.");
    }

    id = cJSON_GetObjectItemCaseSensitive(event, "id");
    type = cJSON_GetObjectItemCaseSensitive(event, "type");
    object = cJSON_GetObjectItemCaseSensitive(event, "object");

    if (cJSON_IsString(object)
        && ngx_strcmp(object->valuestring, "v2.core.event") == 0)
    {
        cJSON_Delete(event);
        return ngx_http_darkroom_send_error(r, NGX_HTTP_BAD_REQUEST,
                   "thin_event_unsupported",
                   "Thin events are not supported: point this endpoint at "
                   "a snapshot event destination.");
    }

    if (!cJSON_IsString(id) || !cJSON_IsString(type)
        || ngx_strlen(id->valuestring) == 0
        || ngx_strlen(id->valuestring) >= sizeof(wh->id)
        || ngx_strlen(type->valuestring) >= sizeof(wh->type)
        || !cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(
                               cJSON_GetObjectItemCaseSensitive(event,
                                                                "data"),
                               "object")))
    {
        cJSON_Delete(event);
        return ngx_http_darkroom_send_error(r, NGX_HTTP_BAD_REQUEST,
                   "invalid_event",
                   "The event needs an id, a type and data.object.");
    }

    ngx_cpystrn((u_char *) wh->id, (u_char *) id->valuestring,
                sizeof(wh->id));
    ngx_cpystrn((u_char *) wh->type, (u_char *) type->valuestring,
                sizeof(wh->type));

    cJSON_Delete(event);

    wh->event = ngx_pnalloc(r->pool, t->body.len + 1);
    if (wh->event == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(wh->event, t->body.data, t->body.len);
    wh->event[t->body.len] = '\0';

    return NGX_OK;
}


static void
ngx_http_darkroom_webhook_work(ngx_http_darkroom_task_t *t)
{
    PGresult                     *res;
    const char                   *params[1];
    ngx_http_darkroom_webhook_t  *wh = t->data;

    params[0] = wh->event;

    res = ngx_http_darkroom_db_exec(&t->db,
              "SELECT result FROM stripe_handle_event($1::jsonb)",
              1, params, &t->err);

    if (res == NULL) {
        return;
    }

    ngx_cpystrn((u_char *) wh->result, (u_char *) PQgetvalue(res, 0, 0),
                sizeof(wh->result));

    PQclear(res);
}


static ngx_int_t
ngx_http_darkroom_webhook_done(ngx_http_request_t *r,
    ngx_http_darkroom_task_t *t)
{
    u_char                       *p, *last;
    size_t                        len;
    ngx_uint_t                    level;
    ngx_http_darkroom_webhook_t  *wh = t->data;

    if (t->err.status) {
        /* not committed: Stripe must deliver it again */
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "darkroom: stripe event %s not processed, "
                      "answering %ui so that Stripe retries",
                      wh->id, t->err.status);
        return ngx_http_darkroom_send_task_error(r, &t->err);
    }

    level = (ngx_strncmp(wh->result, "ignored", 7) == 0)
            ? NGX_LOG_NOTICE : NGX_LOG_INFO;

    ngx_log_error(level, r->connection->log, 0,
                  "darkroom: stripe event %s %s: %s",
                  wh->id, wh->type, wh->result);

    len = sizeof("{\"received\":true,\"id\":\"\",\"result\":\"\"}") + 2 * 256
          + 2 * 128;

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    last = ngx_cpymem(p, "{\"received\":true,\"id\":\"",
                      sizeof("{\"received\":true,\"id\":\"") - 1);
    last = (u_char *) ngx_escape_json(last, (u_char *) wh->id,
                                      ngx_strlen(wh->id));
    last = ngx_cpymem(last, "\",\"result\":\"", sizeof("\",\"result\":\"") - 1);
    last = (u_char *) ngx_escape_json(last, (u_char *) wh->result,
                                      ngx_strlen(wh->result));
    last = ngx_cpymem(last, "\"}", 2);

    return ngx_http_darkroom_send_json(r, NGX_HTTP_OK, p, last - p);
}
