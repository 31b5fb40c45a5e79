
/*
 * darkroom: the shop's side of an order another area wrote (issue 16, a
 * booking's deposit).
 *
 * ngx_http_darkroom_order_checkout (the core hook, in a pool thread): the
 * Stripe Checkout Session of a pending order, made with the idempotency
 * key the shop's checkout uses (darkroom-checkout-<id>) and attached with
 * checkout_attach() (the exact-amount rule), so that the payment comes
 * back through the same webhook and order_mark_paid() as every order.
 *
 * The job kind "stripe_refund" {"order_id","amount","reason",
 * "idempotency_key"}: Stripe's POST /v1/refunds of the order's payment
 * with the job's idempotency key (a retry is the same refund), recorded
 * by stripe_refund_sent(); the money is charge.refunded's, as for every
 * refund.
 */


#include "ngx_http_darkroom_shop.h"


static char *ngx_http_darkroom_order_checkout_form(
    ngx_http_darkroom_shop_conf_t *scf, PGresult *o, const char *token);
static void ngx_http_darkroom_order_checkout_failed(
    ngx_http_darkroom_task_t *t, const char *order);


ngx_int_t
ngx_http_darkroom_order_checkout_stripe(ngx_http_darkroom_task_t *t,
    const char *order, const char *token, char **url)
{
    char                           *form, key[64];
    cJSON                          *session;
    PGresult                       *o;
    ngx_int_t                       rc;
    const char                     *params[1];
    ngx_http_darkroom_shop_conf_t  *scf = ngx_http_darkroom_shop_conf;

    if (scf == NULL || scf->stripe_keys == NULL) {
        ngx_http_darkroom_error_set(&t->err, NGX_HTTP_NOT_FOUND, "no_shop",
                                    "There is no shop here.");
        return NGX_ERROR;
    }

    params[0] = order;

    o = ngx_http_darkroom_db_exec(&t->db,
            "SELECT order_id, order_ref, email, currency, total,"
            " expires_epoch, lines::text AS lines, checkout_url"
            " FROM order_checkout_info($1)", 1, params, &t->err);
    if (o == NULL) {
        return NGX_ERROR;
    }

    if (PQntuples(o) == 0) {
        PQclear(o);
        ngx_http_darkroom_error_set(&t->err, NGX_HTTP_CONFLICT,
                                    "checkout_closed",
                                    "This order is no longer waiting for "
                                    "payment.");
        return NGX_ERROR;
    }

    form = ngx_http_darkroom_order_checkout_form(scf, o, token);

    if (form == NULL) {
        PQclear(o);
        ngx_http_darkroom_error_set(&t->err, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                    "internal_error", "Out of memory.");
        return NGX_ERROR;
    }

    snprintf(key, sizeof(key), "darkroom-checkout-%s", order);
    session = NULL;

    rc = ngx_http_darkroom_stripe_call(scf, t->fetch_timeout, "POST",
                                       "/v1/checkout/sessions", form, key,
                                       &session, &t->err);
    free(form);

    if (rc != NGX_OK) {
        PQclear(o);
        cJSON_Delete(session);
        ngx_http_darkroom_order_checkout_failed(t, order);
        return NGX_ERROR;
    }

    rc = ngx_http_darkroom_checkout_attach(t, order,
             ngx_http_darkroom_db_value(o, 0, "total"), session, url);
    PQclear(o);
    cJSON_Delete(session);

    return rc;
}


/*
 * Stripe made no session.  A definite refusal (a 4xx but 409 and 429)
 * cancels the order (checkout_failed(): its hold gives its time up);
 * anything else may have made one: the order stays, checkout_reconcile
 * settles it, and the client is told to retry later.
 */

static void
ngx_http_darkroom_order_checkout_failed(ngx_http_darkroom_task_t *t,
    const char *order)
{
    ngx_uint_t                  st;
    const char                 *params[2];
    ngx_http_darkroom_error_t   ignored;

    st = t->err.provider_status;

    if (!(st >= 400 && st < 500 && st != 409 && st != 429)) {
        ngx_http_darkroom_error_set(&t->err, NGX_HTTP_SERVICE_UNAVAILABLE,
                                    "checkout_unconfirmed",
                                    "The payment provider has not "
                                    "confirmed the payment page yet, please "
                                    "retry shortly.");
        t->err.retry_after = NGX_HTTP_DARKROOM_RETRY_AFTER;
        return;
    }

    params[0] = order;
    params[1] = t->err.detail;
    ngx_memzero(&ignored, sizeof(ngx_http_darkroom_error_t));

    (void) ngx_http_darkroom_db_command(&t->db,
               "SELECT checkout_failed($1, $2)", 2, params, &ignored);
}


/* the Checkout Session's parameters; malloc'd, NULL: out of memory */

static char *
ngx_http_darkroom_order_checkout_form(ngx_http_darkroom_shop_conf_t *scf,
    PGresult *o, const char *token)
{
    int          i;
    char        *buf, *u, name[96], num[32];
    cJSON       *lines, *line;
    size_t       len, size;
    ngx_int_t    rc;
    const char  *id, *ref, *currency;

    buf = NULL;
    len = 0;
    size = 0;
    rc = NGX_OK;

    id = ngx_http_darkroom_db_value(o, 0, "order_id");
    ref = ngx_http_darkroom_db_value(o, 0, "order_ref");
    currency = ngx_http_darkroom_db_value(o, 0, "currency");

#define add(k, v)                                                            \
    if (rc == NGX_OK) {                                                      \
        rc = ngx_http_darkroom_form_add(&buf, &len, &size, k, v);           \
    }

    add("mode", "payment");
    add("client_reference_id", ref);
    add("customer_email", ngx_http_darkroom_db_value(o, 0, "email"));
    add("metadata[order_id]", id);
    add("metadata[order_ref]", ref);
    add("payment_intent_data[metadata][order_id]", id);
    add("payment_intent_data[metadata][order_ref]", ref);
    add("expires_at", ngx_http_darkroom_db_value(o, 0, "expires_epoch"));

    u = ngx_http_darkroom_order_url(&scf->success_url, token, ref);
    add("success_url", u ? u : "");
    free(u);

    u = ngx_http_darkroom_order_url(&scf->cancel_url, token, ref);
    add("cancel_url", u ? u : "");
    free(u);

    lines = cJSON_Parse(ngx_http_darkroom_db_value(o, 0, "lines"));
    i = 0;

    cJSON_ArrayForEach(line, lines) {
        snprintf(name, sizeof(name), "line_items[%d][price_data][currency]",
                 i);
        add(name, currency);

        snprintf(name, sizeof(name),
                 "line_items[%d][price_data][product_data][name]", i);
        add(name, ngx_http_darkroom_json_str(line, "name"));

        snprintf(name, sizeof(name),
                 "line_items[%d][price_data][unit_amount]", i);
        snprintf(num, sizeof(num), "%.0f", cJSON_GetNumberValue(
                     cJSON_GetObjectItemCaseSensitive(line, "unit_amount")));
        add(name, num);

        snprintf(name, sizeof(name), "line_items[%d][quantity]", i);
        snprintf(num, sizeof(num), "%.0f", cJSON_GetNumberValue(
                     cJSON_GetObjectItemCaseSensitive(line, "quantity")));
        add(name, num);

        i++;
    }

#undef add

    cJSON_Delete(lines);

    if (rc != NGX_OK || i == 0) {
        free(buf);
        return NULL;
    }

    return buf;
}


/* the job "stripe_refund" */

ngx_int_t
ngx_http_darkroom_job_stripe_refund(ngx_http_darkroom_job_t *job,
    ngx_http_darkroom_error_t *err)
{
    char                           *form, order[NGX_INT64_LEN + 1];
    char                            amount[32], cause[48];
    cJSON                          *o, *a, *refund, *rid;
    size_t                          len, size;
    PGresult                       *res;
    ngx_int_t                       rc;
    const char                     *key, *reason, *params[5];
    ngx_http_darkroom_shop_conf_t  *scf = ngx_http_darkroom_shop_conf;

    o = cJSON_GetObjectItemCaseSensitive(job->payload, "order_id");
    a = cJSON_GetObjectItemCaseSensitive(job->payload, "amount");
    key = ngx_http_darkroom_json_str(job->payload, "idempotency_key");
    reason = ngx_http_darkroom_json_str(job->payload, "reason");

    if (!cJSON_IsNumber(o) || !cJSON_IsNumber(a) || a->valuedouble < 1
        || key == NULL || key[0] == '\0')
    {
        snprintf(err->detail, sizeof(err->detail),
                 "stripe_refund: payload needs order_id, amount and "
                 "idempotency_key");
        return NGX_DECLINED;
    }

    if (scf == NULL || scf->stripe_keys == NULL) {
        snprintf(err->detail, sizeof(err->detail),
                 "stripe_refund: no darkroom_stripe_key_file");
        return NGX_ERROR;
    }

    snprintf(order, sizeof(order), "%.0f", o->valuedouble);
    snprintf(amount, sizeof(amount), "%.0f", a->valuedouble);
    params[0] = order;

    res = ngx_http_darkroom_db_exec(job->db,
              "SELECT payment_intent FROM stripe_refund_target($1)", 1,
              params, err);
    if (res == NULL) {
        return NGX_ERROR;
    }

    if (PQntuples(res) == 0) {
        PQclear(res);
        snprintf(err->detail, sizeof(err->detail),
                 "stripe_refund: order %s has no payment", order);
        return NGX_DECLINED;
    }

    form = NULL;
    len = 0;
    size = 0;

    rc = ngx_http_darkroom_form_add(&form, &len, &size, "payment_intent",
             ngx_http_darkroom_db_value(res, 0, "payment_intent"));
    PQclear(res);

#define add(k, v)                                                            \
    if (rc == NGX_OK) {                                                      \
        rc = ngx_http_darkroom_form_add(&form, &len, &size, k, v);          \
    }

    add("amount", amount);
    add("metadata[order_id]", order);
    add("metadata[reason]", reason ? reason : "");

#undef add

    refund = NULL;

    if (rc != NGX_OK
        || ngx_http_darkroom_stripe_call(scf, job->fetch_timeout, "POST",
                                         "/v1/refunds", form, key, &refund,
                                         err)
           != NGX_OK)
    {
        free(form);
        cJSON_Delete(refund);
        return NGX_ERROR;
    }

    free(form);

    rid = cJSON_GetObjectItemCaseSensitive(refund, "id");
    snprintf(cause, sizeof(cause), "job:%lld", (long long) job->id);

    params[1] = cJSON_IsString(rid) ? rid->valuestring : "";
    params[2] = amount;
    params[3] = key;
    params[4] = cause;

    rc = ngx_http_darkroom_db_command(job->db,
             "SELECT stripe_refund_sent($1, $2, $3::bigint, $4, $5)", 5,
             params, err);
    cJSON_Delete(refund);

    return rc == NGX_OK ? NGX_OK : NGX_ERROR;
}
