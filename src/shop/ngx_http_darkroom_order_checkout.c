
/*
 * darkroom: the shop's side of an order another area wrote (issue 16, a
 * booking's deposit or balance).
 *
 * ngx_http_darkroom_order_checkout (the core hook, in a pool thread): the
 * Stripe Checkout Session of a pending order, made with the idempotency
 * key the shop's checkout uses (darkroom-checkout-<id>) and attached with
 * checkout_attach() (the exact-amount rule), so that the payment comes
 * back through the same webhook and order_mark_paid() as every order.
 * The session's form and the handling of a session Stripe did not give
 * are the shop checkout's own (ngx_http_darkroom_checkout_form.c); Stripe
 * sends a booking's payer back to the booking's page (return_path of
 * order_checkout_info(), relative to darkroom_checkout_success_url).
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
static char *ngx_http_darkroom_order_return_url(ngx_str_t *tpl,
    const char *path, const char *tail);


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
            " expires_epoch, lines::text AS lines, checkout_url, return_path"
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
        ngx_http_darkroom_checkout_failed(t, order, 0, 1,
                                          "The payment provider has not "
                                          "confirmed the payment page yet, "
                                          "please retry shortly.");
        return NGX_ERROR;
    }

    rc = ngx_http_darkroom_checkout_attach(t, order,
             ngx_http_darkroom_db_value(o, 0, "total"), session, url);
    PQclear(o);
    cJSON_Delete(session);

    return rc;
}


/*
 * The Checkout Session's parameters (checkout_form.c); malloc'd, NULL:
 * out of memory.  An order with a return_path (a booking's) sends its
 * payer back to that page, with "&paid=1" once paid (the page waits for
 * the webhook); others to the shop's success and cancel URLs with the
 * order's token.
 */

static char *
ngx_http_darkroom_order_checkout_form(ngx_http_darkroom_shop_conf_t *scf,
    PGresult *o, const char *token)
{
    int                                 n;
    char                               *form, *success, *cancel;
    const char                         *ref;
    ngx_http_darkroom_checkout_form_t   f;

    ref = ngx_http_darkroom_db_value(o, 0, "order_ref");

    if (ngx_http_darkroom_db_null(o, 0, "return_path")) {
        success = ngx_http_darkroom_order_url(&scf->success_url, token, ref);
        cancel = ngx_http_darkroom_order_url(&scf->cancel_url, token, ref);

    } else {
        success = ngx_http_darkroom_order_return_url(&scf->success_url,
                      ngx_http_darkroom_db_value(o, 0, "return_path"),
                      "&paid=1");
        cancel = ngx_http_darkroom_order_return_url(&scf->success_url,
                      ngx_http_darkroom_db_value(o, 0, "return_path"), "");
    }

    f.order_id = ngx_http_darkroom_db_value(o, 0, "order_id");
    f.ref = ref;
    f.email = ngx_http_darkroom_db_value(o, 0, "email");
    f.expires = ngx_http_darkroom_db_value(o, 0, "expires_epoch");
    f.currency = ngx_http_darkroom_db_value(o, 0, "currency");
    f.success_url = success;
    f.cancel_url = cancel;
    f.lines = cJSON_Parse(ngx_http_darkroom_db_value(o, 0, "lines"));

    n = 0;
    form = (success && cancel) ? ngx_http_darkroom_checkout_form_make(&f, &n)
                               : NULL;

    cJSON_Delete(f.lines);
    free(success);
    free(cancel);

    return form;
}


/*
 * A page of the shop: path relative to the directory of the success URL
 * ("https://shop.example.com/order.html?token=..." and
 * "booking.html?ref=..." give "https://shop.example.com/booking.html?
 * ref=..."), then tail.  malloc'd, NULL when out of memory.
 */

static char *
ngx_http_darkroom_order_return_url(ngx_str_t *tpl, const char *path,
    const char *tail)
{
    char    *out;
    u_char  *q;
    size_t   base, plen, tlen;

    /* the query and the last segment of the path are not the base's */
    q = ngx_strlchr(tpl->data, tpl->data + tpl->len, '?');
    base = q ? (size_t) (q - tpl->data) : tpl->len;

    while (base && tpl->data[base - 1] != '/') {
        base--;
    }

    plen = ngx_strlen(path);
    tlen = ngx_strlen(tail);

    out = malloc(base + plen + tlen + 1);
    if (out == NULL) {
        return NULL;
    }

    ngx_memcpy(out, tpl->data, base);
    ngx_memcpy(out + base, path, plen);
    ngx_memcpy(out + base + plen, tail, tlen + 1);

    return out;
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
