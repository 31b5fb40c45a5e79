
/*
 * darkroom: the Stripe API client, used inside pool threads.
 *
 * Form-encoded requests with the secret key as a Bearer token and an
 * Idempotency-Key on every POST, so a retry (ours, or a job's after a
 * crash) never creates a second session or refund.  Network errors, 409,
 * 429 and 5xx are retried a few times with backoff; Stripe-Should-Retry,
 * when present, decides.  Stripe's error message goes to the log, the
 * client gets a clean 502.  Every call names the API version the code
 * reads (Stripe-Version), so a change of the account's default version
 * never changes what darkroom gets back.
 */


#include "ngx_http_darkroom_shop.h"
#include "ngx_http_darkroom_stripe_event.h"

#include <time.h>


#define NGX_HTTP_DARKROOM_STRIPE_TRIES  3


static void ngx_http_darkroom_stripe_error(ngx_http_darkroom_error_t *err,
    const char *path, ngx_http_darkroom_fetch_resp_t *resp);
static ngx_int_t ngx_http_darkroom_reconcile_no_session(
    ngx_http_darkroom_job_t *job, const char *id, long wait,
    ngx_http_darkroom_error_t *err);
static ngx_int_t ngx_http_darkroom_reconcile_apply(
    ngx_http_darkroom_job_t *job, cJSON *session, const char *id,
    const char *type, ngx_http_darkroom_error_t *err);


ngx_int_t
ngx_http_darkroom_stripe_call(ngx_http_darkroom_shop_conf_t *scf,
    ngx_msec_t timeout, const char *method, const char *path,
    const char *form, const char *idempotency_key, cJSON **out,
    ngx_http_darkroom_error_t *err)
{
    char                             url[1024], auth[300], idem[300];
    char                             retry[16];
    ngx_int_t                        rc;
    ngx_str_t                       *key;
    ngx_uint_t                       try, again;
    const char                      *headers[6];
    struct timespec                  ts;
    ngx_http_darkroom_fetch_req_t    req;
    ngx_http_darkroom_fetch_resp_t   resp;

    *out = NULL;
    key = scf->stripe_keys->elts;

    snprintf(url, sizeof(url), "%s%s", scf->stripe_api.data, path);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %.*s",
             (int) key[0].len, key[0].data);

    headers[0] = auth;
    headers[1] = "Content-Type: application/x-www-form-urlencoded";
    headers[2] = "Stripe-Version: " NGX_HTTP_DARKROOM_STRIPE_API_VERSION;
    headers[3] = NULL;

    if (idempotency_key) {
        snprintf(idem, sizeof(idem), "Idempotency-Key: %s", idempotency_key);
        headers[3] = idem;
        headers[4] = NULL;
    }

    ngx_memzero(&req, sizeof(ngx_http_darkroom_fetch_req_t));
    req.method = method;
    req.url = url;
    req.headers = headers;
    req.body = form;
    req.body_len = form ? strlen(form) : 0;
    req.timeout = timeout;

    for (try = 1; /* void */ ; try++) {

        rc = ngx_http_darkroom_fetch(&req, &resp, err);

        if (rc == NGX_OK && resp.status >= 200 && resp.status < 300) {
            *out = cJSON_ParseWithLength(resp.body, resp.body_len);
            ngx_http_darkroom_fetch_free(&resp);

            if (*out == NULL) {
                /* a 2xx: done at Stripe, whatever it was */
                err->provider_status = 200;
                ngx_http_darkroom_error_set(err, NGX_HTTP_BAD_GATEWAY,
                                            "payment_provider_error",
                                            "The payment provider could "
                                            "not be reached, please try "
                                            "again.");
                snprintf(err->detail, sizeof(err->detail),
                         "stripe %s: answer is not JSON", path);
                return NGX_ERROR;
            }

            ngx_memzero(err, sizeof(ngx_http_darkroom_error_t));
            return NGX_OK;
        }

        if (rc == NGX_OK) {
            again = (resp.status == 409 || resp.status == 429
                     || resp.status >= 500);

            if (ngx_http_darkroom_fetch_header(&resp, "Stripe-Should-Retry",
                                               retry, sizeof(retry)))
            {
                again = (ngx_strcmp(retry, "true") == 0);
            }

            err->provider_status = resp.status;
            ngx_http_darkroom_stripe_error(err, path, &resp);
            ngx_http_darkroom_fetch_free(&resp);

        } else {
            /* no answer at all: the request may or may not have landed,
             * which the idempotency key makes safe to repeat */
            again = 1;
            err->provider_status = 0;
            ngx_http_darkroom_fetch_free(&resp);
        }

        if (!again || try == NGX_HTTP_DARKROOM_STRIPE_TRIES) {
            return NGX_ERROR;
        }

        ts.tv_sec = 0;
        ts.tv_nsec = 250000000L << (try - 1);
        nanosleep(&ts, NULL);
    }
}


static void
ngx_http_darkroom_stripe_error(ngx_http_darkroom_error_t *err,
    const char *path, ngx_http_darkroom_fetch_resp_t *resp)
{
    cJSON       *json, *error, *message, *type;
    const char  *msg, *kind;

    msg = "no error message";
    kind = "";

    json = resp->body ? cJSON_ParseWithLength(resp->body, resp->body_len)
                      : NULL;
    error = cJSON_GetObjectItemCaseSensitive(json, "error");
    message = cJSON_GetObjectItemCaseSensitive(error, "message");
    type = cJSON_GetObjectItemCaseSensitive(error, "type");

    if (cJSON_IsString(message)) {
        msg = message->valuestring;
    }

    if (cJSON_IsString(type)) {
        kind = type->valuestring;
    }

    ngx_http_darkroom_error_set(err, NGX_HTTP_BAD_GATEWAY,
                                "payment_provider_error",
                                "The payment provider refused the request, "
                                "please try again later.");
    snprintf(err->detail, sizeof(err->detail), "stripe %s answered %ld %s: %s",
             path, resp->status, kind, msg);

    cJSON_Delete(json);
}


/*
 * Appends name=value to a form body, percent-encoding both as
 * application/x-www-form-urlencoded wants.  The buffer is malloc'd.
 */

ngx_int_t
ngx_http_darkroom_form_add(char **buf, size_t *len, size_t *size,
    const char *name, const char *value)
{
    char        *p;
    size_t       need;
    ngx_uint_t   part;
    const char  *s;

    static const char  hex[] = "0123456789ABCDEF";

    need = *len + 3 * (strlen(name) + strlen(value)) + 3;

    if (need > *size) {
        need = ngx_max(need, *size * 2);
        need = ngx_max(need, 1024);

        p = realloc(*buf, need);
        if (p == NULL) {
            return NGX_ERROR;
        }

        *buf = p;
        *size = need;
    }

    p = *buf + *len;

    if (*len) {
        *p++ = '&';
    }

    for (part = 0; part < 2; part++) {
        for (s = part ? value : name; *s; s++) {
            u_char  c = (u_char) *s;

            if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
                || (c >= '0' && c <= '9')
                || c == '-' || c == '_' || c == '.' || c == '~')
            {
                *p++ = c;

            } else {
                *p++ = '%';
                *p++ = hex[c >> 4];
                *p++ = hex[c & 0xf];
            }
        }

        if (part == 0) {
            *p++ = '=';
        }
    }

    *p = '\0';
    *len = p - *buf;

    return NGX_OK;
}


/*
 * "checkout_reconcile": a missed webhook must never lose a paid order.
 * Some time after checkout, and again after the session expires, ask
 * Stripe what became of the session and apply the answer through the same
 * function the webhook uses, under an event id of our own so that it
 * happens once whichever comes first.
 */

ngx_int_t
ngx_http_darkroom_job_checkout_reconcile(ngx_http_darkroom_job_t *job,
    ngx_http_darkroom_error_t *err)
{
    char                           path[300];
    char                           id[NGX_INT64_LEN + 1];
    long                           wait;
    cJSON                         *order, *session, *status, *paid;
    PGresult                      *res;
    const char                    *params[1], *type, *pay;
    ngx_http_darkroom_shop_conf_t *scf = ngx_http_darkroom_shop_conf;

    order = cJSON_GetObjectItemCaseSensitive(job->payload, "order_id");

    if (!cJSON_IsNumber(order)) {
        snprintf(err->detail, sizeof(err->detail),
                 "checkout_reconcile: payload has no order_id");
        return NGX_DECLINED;
    }

    if (scf->stripe_keys == NULL) {
        snprintf(err->detail, sizeof(err->detail),
                 "checkout_reconcile: no darkroom_stripe_key_file");
        return NGX_ERROR;
    }

    snprintf(id, sizeof(id), "%.0f", order->valuedouble);
    params[0] = id;

    res = ngx_http_darkroom_db_exec(job->db,
              "SELECT stripe_session_id, status, expires_in"
              " FROM checkout_reconcile_state($1)", 1, params, err);

    if (res == NULL) {
        return NGX_ERROR;
    }

    if (PQntuples(res) == 0
        || ngx_strcmp(ngx_http_darkroom_db_value(res, 0, "status"),
                      "pending_payment")
           != 0)
    {
        /* settled already */
        PQclear(res);
        return NGX_OK;
    }

    wait = strtol(ngx_http_darkroom_db_value(res, 0, "expires_in"), NULL, 10);

    if (ngx_http_darkroom_db_null(res, 0, "stripe_session_id")) {
        PQclear(res);
        return ngx_http_darkroom_reconcile_no_session(job, id, wait, err);
    }

    snprintf(path, sizeof(path), "/v1/checkout/sessions/%s",
             ngx_http_darkroom_db_value(res, 0, "stripe_session_id"));
    PQclear(res);

    if (ngx_http_darkroom_stripe_call(scf, job->fetch_timeout, "GET", path,
                                      NULL, NULL, &session, err)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    status = cJSON_GetObjectItemCaseSensitive(session, "status");
    paid = cJSON_GetObjectItemCaseSensitive(session, "payment_status");
    pay = cJSON_IsString(paid) ? paid->valuestring : "";
    type = NULL;

    if (cJSON_IsString(status)) {
        if (ngx_strcmp(status->valuestring, "expired") == 0) {
            type = "checkout.session.expired";

        } else if (ngx_strcmp(status->valuestring, "complete") == 0
                   && (ngx_strcmp(pay, "paid") == 0
                       || ngx_strcmp(pay, "no_payment_required") == 0))
        {
            type = "checkout.session.completed";
        }
    }

    if (type == NULL) {
        /* still open, or paid by a method that settles later */
        cJSON_Delete(session);
        job->retry_after = (wait > 0 ? wait * 1000 : 3600 * 1000) + 60000;
        return NGX_AGAIN;
    }

    return ngx_http_darkroom_reconcile_apply(job, session,
               path + sizeof("/v1/checkout/sessions/") - 1, type, err);
}


/*
 * No session was recorded: the checkout's call to Stripe had no definite
 * answer (or the order was written and the worker died).  A session made
 * meanwhile is found by its webhook (its metadata names the order), and
 * expires with the order's payment page.  After that nothing can be paid,
 * so the order expires; a payment reported later still puts it in review.
 */

static ngx_int_t
ngx_http_darkroom_reconcile_no_session(ngx_http_darkroom_job_t *job,
    const char *id, long wait, ngx_http_darkroom_error_t *err)
{
    const char  *params[1];

    if (wait > 0) {
        job->retry_after = wait * 1000 + 60000;
        return NGX_AGAIN;
    }

    params[0] = id;

    return ngx_http_darkroom_db_command(job->db,
               "SELECT order_transition($1::bigint, 'expired', 'reconcile',"
               " jsonb_build_object('reason', 'no checkout session was"
               " recorded'))", 1, params, err);
}


/*
 * The session Stripe answered, wrapped as the event it stands for (in the
 * pinned API version, which the GET asked for) and applied by the same
 * function as the webhook.  Takes the session.
 */

static ngx_int_t
ngx_http_darkroom_reconcile_apply(ngx_http_darkroom_job_t *job,
    cJSON *session, const char *id, const char *type,
    ngx_http_darkroom_error_t *err)
{
    char        event_id[400], *text;
    cJSON      *event, *data;
    PGresult   *res;
    ngx_int_t   rc;
    const char *params[1];

    snprintf(event_id, sizeof(event_id), "reconcile:%s:%s", id, type);

    event = cJSON_CreateObject();
    data = cJSON_AddObjectToObject(event, "data");

    if (event == NULL || data == NULL
        || cJSON_AddStringToObject(event, "id", event_id) == NULL
        || cJSON_AddStringToObject(event, "object", "event") == NULL
        || cJSON_AddStringToObject(event, "api_version",
                                   NGX_HTTP_DARKROOM_STRIPE_API_VERSION)
           == NULL
        || cJSON_AddStringToObject(event, "type", type) == NULL)
    {
        cJSON_Delete(event);
        cJSON_Delete(session);
        return NGX_ERROR;
    }

    cJSON_AddItemToObject(data, "object", session);

    text = cJSON_PrintUnformatted(event);
    cJSON_Delete(event);

    if (text == NULL) {
        return NGX_ERROR;
    }

    params[0] = text;
    res = ngx_http_darkroom_db_exec(job->db,
              "SELECT result FROM stripe_handle_event($1::jsonb)",
              1, params, err);
    free(text);

    rc = (res == NULL) ? NGX_ERROR : NGX_OK;

    if (res) {
        PQclear(res);
    }

    /* no log here (a pool thread): the jobs' completion notes the run */

    return rc;
}
