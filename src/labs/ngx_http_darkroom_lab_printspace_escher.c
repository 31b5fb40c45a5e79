
/*
 * darkroom: theprintspace through creativehub's current API, "Escher V2"
 * (https://sell.creativehub.io/api-docs; base
 * https://escher-v2.creativehub.io, "Authorization: Bearer <token>", no
 * sandbox, no webhooks yet), which replaced the earlier one
 * (ngx_http_darkroom_lab_printspace_legacy.c):
 *
 *   POST /v1/orders        {items: [{variant_id, quantity}], delivery_*}
 *                          with an Idempotency-Key header: the lab order's
 *                          key, so a retry never makes a second order
 *   GET  /v1/orders/{id}   the order and its status
 *
 * An item is a variant (size, frame) of the artwork's product there: per
 * photo and darkroom product (creativehub_variants).  Errors are
 * {"detail": "reason"}.  The order's status words are not published: only
 * the exact words cancel or ship it, others are read by what they say
 * (fail or hold, production), anything else is "submitted" and shown to
 * the admin as it is.
 */


#include "ngx_http_darkroom_labs.h"


static char *ngx_http_darkroom_escher_order(cJSON *doc,
    ngx_http_darkroom_lab_result_t *res);
static void ngx_http_darkroom_escher_refused(cJSON *answer,
    ngx_http_darkroom_lab_result_t *res);
static void ngx_http_darkroom_escher_submit(ngx_http_darkroom_lab_call_t *call,
    cJSON *doc, ngx_http_darkroom_lab_result_t *res);
static ngx_int_t ngx_http_darkroom_escher_state(cJSON *order,
    ngx_http_darkroom_lab_state_t *st);
static void ngx_http_darkroom_escher_fetch(ngx_http_darkroom_lab_call_t *call,
    const char *order, ngx_http_darkroom_lab_state_t *st,
    ngx_http_darkroom_lab_result_t *res);


/*
 * theprintspace's lab orders (lab "printspace") sent through this API
 * (lab_api "escher", darkroom_printspace_protocol escher): no safe resend
 * but the Idempotency-Key; no callbacks (polled); no cancel (by hand).
 */

const ngx_http_darkroom_lab_driver_t
    ngx_http_darkroom_lab_printspace_escher =
{
    "printspace",                          /* name */
    "escher",                              /* api */
    NGX_HTTP_DARKROOM_PRINTSPACE_ESCHER,   /* protocol */
    "theprintspace",                       /* brand */
    "creativehub",                         /* site */
    "Authorization: Bearer %.*s",          /* auth */
    offsetof(ngx_http_darkroom_labs_conf_t, printspace),
    0,                                     /* resend_safe */
    ngx_http_darkroom_escher_submit,
    ngx_http_darkroom_escher_fetch,
    NULL,                                  /* cancel: none */
    NULL                                   /* callback: none, polled */
};


static char *
ngx_http_darkroom_escher_order(cJSON *doc, ngx_http_darkroom_lab_result_t *res)
{
    char         *text;
    cJSON        *body, *items, *item, *it, *a, *copies;
    size_t        i;
    const char   *s, *variant;

    static const char  *fields[][2] = {
        { "line1", "delivery_line1" }, { "line2", "delivery_line2" },
        { "city", "delivery_city" }, { "state", "delivery_county" },
        { "postal_code", "delivery_postcode" },
        { "country", "delivery_country_code" }
    };

    body = cJSON_CreateObject();
    if (body == NULL) {
        ngx_http_darkroom_lab_error(res, "no memory");
        return NULL;
    }

    items = cJSON_AddArrayToObject(body, "items");
    if (items == NULL) {
        goto nomem;
    }

    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(doc, "items")) {
        variant = ngx_http_darkroom_json_str(it, "creativehub_variant");
        copies = cJSON_GetObjectItemCaseSensitive(it, "copies");

        if (variant == NULL || *variant == '\0') {
            cJSON_Delete(body);
            res->rc = NGX_DECLINED;
            ngx_http_darkroom_lab_error(res, "theprintspace needs the "
                "creativehub variant of photo \"%s\" as product \"%s\" "
                "(creativehub_variants)",
                ngx_http_darkroom_json_str(it, "photo"),
                ngx_http_darkroom_json_str(it, "product"));
            return NULL;
        }

        /* every part checked: a line lost to no memory is not an order */
        item = cJSON_CreateObject();
        if (!cJSON_AddItemToArray(items, item)) {
            cJSON_Delete(item);
            goto nomem;
        }

        if (!cJSON_AddStringToObject(item, "variant_id", variant)
            || !cJSON_AddNumberToObject(item, "quantity",
                                        cJSON_IsNumber(copies)
                                        ? copies->valueint : 1))
        {
            goto nomem;
        }
    }

    s = ngx_http_darkroom_json_str(doc, "name");
    cJSON_AddStringToObject(body, "delivery_name", s ? s : "");

    a = cJSON_GetObjectItemCaseSensitive(doc, "address");

    for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        s = ngx_http_darkroom_json_str(a, fields[i][0]);
        if (s && *s) {
            cJSON_AddStringToObject(body, fields[i][1], s);
        }
    }

    if ((s = ngx_http_darkroom_json_str(doc, "email"))) {
        cJSON_AddStringToObject(body, "delivery_email", s);
    }

    if ((s = ngx_http_darkroom_json_str(doc, "phone"))) {
        cJSON_AddStringToObject(body, "delivery_phone", s);
    }

    text = cJSON_PrintUnformatted(body);
    cJSON_Delete(body);

    if (text == NULL) {
        ngx_http_darkroom_lab_error(res, "no memory");
    }

    return text;

nomem:

    cJSON_Delete(body);
    res->rc = NGX_AGAIN;
    ngx_http_darkroom_lab_error(res, "theprintspace: no memory for the "
                                "order's items");
    return NULL;
}


static void
ngx_http_darkroom_escher_refused(cJSON *answer,
    ngx_http_darkroom_lab_result_t *res)
{
    cJSON       *d;
    char        *text;

    d = cJSON_GetObjectItemCaseSensitive(answer, "detail");

    /* "detail" is a reason, or a list of field errors */
    text = cJSON_IsString(d) ? NULL : cJSON_PrintUnformatted(d);

    ngx_http_darkroom_lab_refused(res, answer, "theprintspace refused the "
                                  "order (%ld): %s", res->status,
                                  cJSON_IsString(d)
                                  ? d->valuestring
                                  : (text ? text : "no detail"));
    free(text);
}


static void
ngx_http_darkroom_escher_submit(ngx_http_darkroom_lab_call_t *call,
    cJSON *doc, ngx_http_darkroom_lab_result_t *res)
{
    char        *body;
    cJSON       *answer, *id;
    const char  *status;

    body = ngx_http_darkroom_escher_order(doc, res);
    if (body == NULL) {
        if (res->rc == NGX_OK) {
            res->rc = NGX_AGAIN;
        }
        return;
    }

    answer = NULL;
    res->idempotency_key = ngx_http_darkroom_json_str(doc, "idempotency_key");

    ngx_http_darkroom_lab_http(call, "POST", "/v1/orders", body, &answer,
                               res);
    free(body);
    res->idempotency_key = NULL;

    if (res->rc == NGX_DECLINED) {
        ngx_http_darkroom_escher_refused(answer, res);
    }

    if (res->rc != NGX_OK) {
        cJSON_Delete(answer);
        return;
    }

    id = cJSON_GetObjectItemCaseSensitive(answer, "order_id");

    if (!cJSON_IsString(id) || id->valuestring[0] == '\0') {
        cJSON_Delete(answer);
        res->rc = NGX_AGAIN;
        ngx_http_darkroom_lab_error(res, "theprintspace: answer %ld has no "
                                    "order_id", res->status);
        return;
    }

    if (ngx_http_darkroom_lab_id_ok(id->valuestring,
                                    sizeof(res->lab_order_id))
        != NGX_OK)
    {
        /* made at the lab, but not to be put in a path: a person looks */
        cJSON_Delete(answer);
        res->rc = NGX_DECLINED;
        ngx_http_darkroom_lab_error(res, "theprintspace: the order was made "
                                    "but its order_id is not one darkroom "
                                    "can use (up to 127 of A-Z a-z 0-9 _ "
                                    "-): see it in creativehub");
        return;
    }

    ngx_cpystrn((u_char *) res->lab_order_id, (u_char *) id->valuestring,
                sizeof(res->lab_order_id));

    status = ngx_http_darkroom_json_str(answer, "status");
    ngx_cpystrn((u_char *) res->outcome,
                (u_char *) (status ? status : "created"),
                sizeof(res->outcome));

    cJSON_Delete(answer);
}


/*
 * The order's status, by what its words say.  Only the exact words end an
 * order (cancelled, shipped): "cancellation_requested" or
 * "awaiting_dispatch" name both and mean neither.  Words of a failure need
 * a person; the rest is production or, unknown, submitted.
 */

static ngx_int_t
ngx_http_darkroom_escher_state(cJSON *order, ngx_http_darkroom_lab_state_t *st)
{
    char         low[NGX_HTTP_DARKROOM_LAB_WORD_LEN];
    size_t       i;
    const char  *status;

    static const char  *exact[][2] = {
        { "cancelled", "cancelled" }, { "canceled", "cancelled" },
        { "shipped", "shipped" }, { "dispatched", "shipped" },
        { "delivered", "shipped" }, { "collected", "shipped" }
    };

    static const char  *words[][2] = {
        { "refund", "attention" }, { "fail", "attention" },
        { "hold", "attention" }, { "error", "attention" },
        { "reject", "attention" }, { "suspend", "attention" },
        { "undeliverable", "attention" }, { "return", "attention" },
        { "produc", "in_production" }, { "print", "in_production" },
        { "fram", "in_production" }, { "pack", "in_production" }
    };

    status = ngx_http_darkroom_json_str(order, "status");

    if (status == NULL) {
        return NGX_ERROR;
    }

    snprintf(st->lab_status, sizeof(st->lab_status), "%s", status);

    for (i = 0; status[i] && i < sizeof(low) - 1; i++) {
        low[i] = ngx_tolower(status[i]);
    }

    low[i] = '\0';
    st->stage = "submitted";

    for (i = 0; i < sizeof(exact) / sizeof(exact[0]); i++) {
        if (ngx_strcmp(low, exact[i][0]) == 0) {
            st->stage = exact[i][1];
            goto done;
        }
    }

    for (i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        if (ngx_strstr(low, words[i][0])) {
            st->stage = words[i][1];
            break;
        }
    }

done:

    if (ngx_strcmp(st->stage, "attention") == 0) {
        snprintf(st->reason, sizeof(st->reason), "theprintspace: the order "
                 "is %s", status);
    }

    /* the API publishes no tracking yet: no parcels to record */
    st->shipments = strdup("[]");

    return st->shipments ? NGX_OK : NGX_ERROR;
}


static void
ngx_http_darkroom_escher_fetch(ngx_http_darkroom_lab_call_t *call,
    const char *order, ngx_http_darkroom_lab_state_t *st,
    ngx_http_darkroom_lab_result_t *res)
{
    char  path[NGX_HTTP_DARKROOM_LAB_PATH_LEN];

    snprintf(path, sizeof(path), "/v1/orders/%s", order);

    ngx_http_darkroom_lab_fetch(call, path, NULL,
                                ngx_http_darkroom_escher_state, st, res);
}
