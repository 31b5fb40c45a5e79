
/*
 * darkroom: what every order's Stripe Checkout Session shares, the shop's
 * cart (checkout.c) and an order another area wrote (order_checkout.c, a
 * booking's deposit or balance), in pool threads:
 *
 * - ngx_http_darkroom_checkout_form_make(): the session's parameters, from the
 *   order (id, ref, email, expiry, the two return URLs) and its lines
 *   ({"title","product_name","unit_amount","quantity"}, as the shop's
 *   priced cart and order_checkout_info() give them); the shop adds its
 *   shipping and tax after them.
 * - ngx_http_darkroom_checkout_failed(): what a session Stripe did not
 *   give does to the order and to the answer.
 */


#include "ngx_http_darkroom_shop.h"


static ngx_uint_t ngx_http_darkroom_checkout_closed(
    ngx_http_darkroom_task_t *t, const char *order_id);


/*
 * The session's parameters, form-encoded the way Stripe wants: malloc'd,
 * NULL when out of memory or without a line; *n the number of lines.
 */

char *
ngx_http_darkroom_checkout_form_make(ngx_http_darkroom_checkout_form_t *f,
    int *n)
{
    int          i;
    char        *buf, name[96], num[32], title[512];
    cJSON       *line, *v;
    size_t       len, size;
    ngx_int_t    rc;

    buf = NULL;
    len = 0;
    size = 0;
    rc = NGX_OK;

#define add(k, v)                                                            \
    if (rc == NGX_OK) {                                                      \
        rc = ngx_http_darkroom_form_add(&buf, &len, &size, k, v);           \
    }

    add("mode", "payment");
    add("client_reference_id", f->ref);
    add("customer_email", f->email);
    add("metadata[order_id]", f->order_id);
    add("metadata[order_ref]", f->ref);
    add("payment_intent_data[metadata][order_id]", f->order_id);
    add("payment_intent_data[metadata][order_ref]", f->ref);

    /* the order's own expiry: a replay sends Stripe the same parameters */
    add("expires_at", f->expires);
    add("success_url", f->success_url ? f->success_url : "");
    add("cancel_url", f->cancel_url ? f->cancel_url : "");

    i = 0;

    cJSON_ArrayForEach(line, f->lines) {
        snprintf(name, sizeof(name), "line_items[%d][price_data][currency]",
                 i);
        add(name, f->currency);

        snprintf(name, sizeof(name),
                 "line_items[%d][price_data][product_data][name]", i);
        snprintf(title, sizeof(title), "%s \xe2\x80\x94 %s",
                 ngx_http_darkroom_json_str(line, "title"),
                 ngx_http_darkroom_json_str(line, "product_name"));
        add(name, title);

        v = cJSON_GetObjectItemCaseSensitive(line, "unit_amount");
        snprintf(name, sizeof(name),
                 "line_items[%d][price_data][unit_amount]", i);
        snprintf(num, sizeof(num), "%.0f", cJSON_GetNumberValue(v));
        add(name, num);

        v = cJSON_GetObjectItemCaseSensitive(line, "quantity");
        snprintf(name, sizeof(name), "line_items[%d][quantity]", i);
        snprintf(num, sizeof(num), "%.0f", cJSON_GetNumberValue(v));
        add(name, num);

        i++;
    }

#undef add

    if (rc != NGX_OK || i == 0) {
        free(buf);
        return NULL;
    }

    *n = i;

    return buf;
}


/*
 * Stripe gave no session.  Only a definite refusal (a 4xx other than 409
 * and 429, or no call made) cancels the order (checkout_failed(): a
 * booking's hold gives its time up), and only in the request that
 * created it.  Anything else leaves the outcome unknown: a 409 is
 * idempotency_key_in_use (a replay's call with the same key is at Stripe,
 * and may already have handed out the payment page), no answer or a 5xx
 * may have made the session.  The order stays pending_payment, its key
 * still replays, and checkout_reconcile settles it if no one comes back.
 * retry: the 503's message.
 */

void
ngx_http_darkroom_checkout_failed(ngx_http_darkroom_task_t *t,
    const char *order_id, ngx_uint_t replay, ngx_uint_t called,
    const char *retry)
{
    ngx_uint_t                  st;
    const char                 *params[2];
    ngx_http_darkroom_error_t   ignored;

    st = t->err.provider_status;

    if (replay && ngx_http_darkroom_checkout_closed(t, order_id)) {
        /* expired or cancelled meanwhile: retrying would never help */
        ngx_http_darkroom_error_set(&t->err, NGX_HTTP_CONFLICT,
                                    "checkout_closed",
                                    "This checkout has expired or was "
                                    "cancelled: please start a new one.");
        return;
    }

    if (replay) {
        /* the cause stays in the error log, the client sees "in progress" */
        ngx_http_darkroom_error_set(&t->err, NGX_HTTP_CONFLICT,
                                    "checkout_in_progress",
                                    "This checkout is still being prepared, "
                                    "please retry shortly.");
        t->err.retry_after = NGX_HTTP_DARKROOM_RETRY_AFTER;
        return;
    }

    if (called && !(st >= 400 && st < 500 && st != 409 && st != 429)) {
        ngx_http_darkroom_error_set(&t->err, NGX_HTTP_SERVICE_UNAVAILABLE,
                                    "checkout_unconfirmed", retry);
        t->err.retry_after = NGX_HTTP_DARKROOM_RETRY_AFTER;
        return;
    }

    params[0] = order_id;
    params[1] = t->err.detail;
    ngx_memzero(&ignored, sizeof(ngx_http_darkroom_error_t));
    (void) ngx_http_darkroom_db_command(&t->db,
               "SELECT checkout_failed($1, $2)", 2, params, &ignored);
}


/* a replayed order that is no longer waiting for payment */

static ngx_uint_t
ngx_http_darkroom_checkout_closed(ngx_http_darkroom_task_t *t,
    const char *order_id)
{
    PGresult                   *res;
    ngx_uint_t                  closed;
    const char                 *params[1];
    ngx_http_darkroom_error_t   ignored;

    params[0] = order_id;
    ngx_memzero(&ignored, sizeof(ngx_http_darkroom_error_t));

    res = ngx_http_darkroom_db_exec(&t->db,
              "SELECT checkout_closed($1) AS closed", 1, params, &ignored);

    closed = (res != NULL
              && ngx_http_darkroom_db_value(res, 0, "closed")[0] == 't');
    PQclear(res);

    return closed;
}
