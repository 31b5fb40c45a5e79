
/*
 * darkroom: theprintspace, through the creativehub API (JSON,
 * "Authorization: ApiKey <key>").
 *
 *   POST /api/v1/orders/embryonic   a draft order; answers its delivery
 *                                   options
 *   POST /api/v1/orders/confirmed   confirm the draft with one option
 *   GET  /api/v1/orders/{id}        the order as it is now
 *
 * The API has no idempotency key, so the draft's id is recorded the
 * moment it exists (lab_submit_draft): a retry confirms that draft instead
 * of making another, and an unconfirmed draft is never produced.  There
 * are no webhooks either: the lab_poll job follows each open order.
 */


#include "ngx_http_darkroom_labs.h"


static const char *ngx_http_darkroom_ps_str(cJSON *obj, const char *name);
static char *ngx_http_darkroom_printspace_order(
    ngx_http_darkroom_labs_conf_t *lcf, cJSON *doc,
    ngx_http_darkroom_lab_result_t *res);
static cJSON *ngx_http_darkroom_printspace_option(
    ngx_http_darkroom_labs_conf_t *lcf, cJSON *options);


static const char *
ngx_http_darkroom_ps_str(cJSON *obj, const char *name)
{
    cJSON  *v;

    v = cJSON_GetObjectItemCaseSensitive(obj, name);

    return cJSON_IsString(v) ? v->valuestring : NULL;
}


static char *
ngx_http_darkroom_printspace_order(ngx_http_darkroom_labs_conf_t *lcf,
    cJSON *doc, ngx_http_darkroom_lab_result_t *res)
{
    char        *text, first[200], ref[200], url[4096];
    cJSON       *body, *addr, *a, *items, *item, *it, *attrs, *v, *line;
    size_t       n;
    const char  *name, *last, *s, *order, *print;

    order = ngx_http_darkroom_ps_str(doc, "order");
    name = ngx_http_darkroom_ps_str(doc, "name");
    a = cJSON_GetObjectItemCaseSensitive(doc, "address");

    if (name == NULL) {
        name = "";
    }

    /* "Ada Lovelace" → FirstName "Ada", LastName "Lovelace" */
    last = strchr(name, ' ');
    n = last ? (size_t) (last - name) : strlen(name);
    n = ngx_min(n, sizeof(first) - 1);
    ngx_memcpy(first, name, n);
    first[n] = '\0';
    last = last ? last + 1 : name;

    body = cJSON_CreateObject();
    if (body == NULL) {
        ngx_http_darkroom_lab_error(res, "no memory");
        return NULL;
    }

    cJSON_AddStringToObject(body, "ExternalReference",
                            ngx_http_darkroom_ps_str(doc,
                                                     "idempotency_key"));
    cJSON_AddStringToObject(body, "FirstName", first);
    cJSON_AddStringToObject(body, "LastName", last);
    s = ngx_http_darkroom_ps_str(doc, "email");
    cJSON_AddStringToObject(body, "Email", s ? s : "");
    cJSON_AddStringToObject(body, "MessageToLab", order ? order : "");

    addr = cJSON_AddObjectToObject(body, "ShippingAddress");
    cJSON_AddStringToObject(addr, "FirstName", first);
    cJSON_AddStringToObject(addr, "LastName", last);
    s = ngx_http_darkroom_ps_str(a, "line1");
    cJSON_AddStringToObject(addr, "Line1", s ? s : "");
    s = ngx_http_darkroom_ps_str(a, "line2");
    cJSON_AddStringToObject(addr, "Line2", s ? s : "");
    s = ngx_http_darkroom_ps_str(a, "city");
    cJSON_AddStringToObject(addr, "Town", s ? s : "");
    s = ngx_http_darkroom_ps_str(a, "state");
    cJSON_AddStringToObject(addr, "County", s ? s : "");
    s = ngx_http_darkroom_ps_str(a, "postal_code");
    cJSON_AddStringToObject(addr, "PostCode", s ? s : "");
    s = ngx_http_darkroom_ps_str(a, "country");
    cJSON_AddStringToObject(addr, "CountryCode", s ? s : "");

    items = cJSON_AddArrayToObject(body, "OrderItems");

    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(doc, "items")) {
        print = ngx_http_darkroom_ps_str(it, "print");
        line = cJSON_GetObjectItemCaseSensitive(it, "line");

        if (print == NULL || *print == '\0'
            || ngx_http_darkroom_lab_asset_url(lcf, print, url, sizeof(url))
               != NGX_OK)
        {
            cJSON_Delete(body);
            res->rc = NGX_DECLINED;
            ngx_http_darkroom_lab_error(res, "no signed URL for the print "
                                        "file of photo \"%s\"",
                                        ngx_http_darkroom_ps_str(it,
                                                                 "photo"));
            return NULL;
        }

        item = cJSON_CreateObject();
        cJSON_AddItemToArray(items, item);

        attrs = cJSON_GetObjectItemCaseSensitive(it, "attributes");

        /* creativehub's own ids of the artwork and paper, when mapped */
        v = cJSON_GetObjectItemCaseSensitive(attrs, "ProductId");
        if (v) {
            cJSON_AddItemToObject(item, "ProductId", cJSON_Duplicate(v, 1));
        }

        v = cJSON_GetObjectItemCaseSensitive(attrs, "PrintOptionId");
        if (v) {
            cJSON_AddItemToObject(item, "PrintOptionId",
                                  cJSON_Duplicate(v, 1));
        }

        cJSON_AddNumberToObject(item, "Quantity", cJSON_GetNumberValue(
            cJSON_GetObjectItemCaseSensitive(it, "copies")));

        snprintf(ref, sizeof(ref), "%s-%d", order ? order : "",
                 cJSON_IsNumber(line) ? line->valueint : 0);
        cJSON_AddStringToObject(item, "ExternalReference", ref);
        cJSON_AddStringToObject(item, "ExternalSku",
                                ngx_http_darkroom_ps_str(it, "sku"));
        cJSON_AddStringToObject(item, "ImageUrl", url);
    }

    text = cJSON_PrintUnformatted(body);
    cJSON_Delete(body);

    if (text == NULL) {
        ngx_http_darkroom_lab_error(res, "no memory");
    }

    return text;
}


/* the option the configuration names, or the cheapest */

static cJSON *
ngx_http_darkroom_printspace_option(ngx_http_darkroom_labs_conf_t *lcf,
    cJSON *options)
{
    cJSON       *o, *best;
    double       price, min;
    const char  *method, *name;

    best = NULL;
    min = 0;

    cJSON_ArrayForEach(o, options) {

        if (lcf->printspace_delivery.len) {
            method = ngx_http_darkroom_ps_str(o, "Method");
            name = ngx_http_darkroom_ps_str(o, "Name");

            if ((method && strcasecmp(method,
                                  (char *) lcf->printspace_delivery.data)
                           == 0)
                || (name && strcasecmp(name,
                                (char *) lcf->printspace_delivery.data)
                            == 0))
            {
                return o;
            }

            continue;
        }

        price = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(o,
                    "DeliveryChargeExcludingSalesTax"))
                + cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(o,
                    "DeliveryChargeSalesTax"));

        if (best == NULL || price < min) {
            best = o;
            min = price;
        }
    }

    return best;
}


void
ngx_http_darkroom_printspace_submit(ngx_http_darkroom_labs_conf_t *lcf,
    ngx_msec_t timeout, cJSON *doc, ngx_http_darkroom_db_t *db,
    const char *cause, ngx_http_darkroom_lab_result_t *res)
{
    char                       *body, path[300], idbuf[64];
    cJSON                      *answer, *option, *confirm, *id;
    const char                 *draft, *state, *params[3];
    ngx_http_darkroom_error_t   err;

    answer = NULL;
    draft = ngx_http_darkroom_ps_str(doc, "lab_order_id");

    if (draft == NULL) {
        body = ngx_http_darkroom_printspace_order(lcf, doc, res);
        if (body == NULL) {
            if (res->rc == NGX_OK) {
                res->rc = NGX_AGAIN;
            }
            return;
        }

        ngx_http_darkroom_lab_http(lcf, NGX_HTTP_DARKROOM_LAB_PRINTSPACE,
                                   timeout, "POST", "/api/v1/orders/embryonic",
                                   body, &answer, res);
        free(body);

    } else {
        snprintf(path, sizeof(path), "/api/v1/orders/%s", draft);
        ngx_http_darkroom_lab_http(lcf, NGX_HTTP_DARKROOM_LAB_PRINTSPACE,
                                   timeout, "GET", path, NULL, &answer, res);
    }

    if (res->rc == NGX_DECLINED) {
        free(res->detail);
        res->detail = answer ? cJSON_PrintUnformatted(answer) : NULL;
        snprintf(res->error, sizeof(res->error),
                 "theprintspace refused the order (%ld): %s", res->status,
                 ngx_http_darkroom_ps_str(answer, "Message")
                 ? ngx_http_darkroom_ps_str(answer, "Message")
                 : "no message");
        cJSON_Delete(answer);
        return;
    }

    if (res->rc != NGX_OK) {
        cJSON_Delete(answer);
        return;
    }

    id = cJSON_GetObjectItemCaseSensitive(answer, "Id");

    if (cJSON_IsNumber(id)) {
        snprintf(idbuf, sizeof(idbuf), "%.0f", id->valuedouble);

    } else if (cJSON_IsString(id)) {
        ngx_cpystrn((u_char *) idbuf, (u_char *) id->valuestring,
                    sizeof(idbuf));

    } else {
        cJSON_Delete(answer);
        res->rc = NGX_AGAIN;
        ngx_http_darkroom_lab_error(res, "theprintspace: answer has no Id");
        return;
    }

    ngx_cpystrn((u_char *) res->lab_order_id, (u_char *) idbuf,
                sizeof(res->lab_order_id));

    if (draft == NULL) {
        /* recorded before anything else: a retry confirms this draft */
        ngx_memzero(&err, sizeof(ngx_http_darkroom_error_t));
        params[0] = ngx_http_darkroom_ps_str(doc, "id_text");
        params[1] = idbuf;
        params[2] = cause;

        if (ngx_http_darkroom_db_command(db,
                "SELECT lab_submit_draft($1::bigint, $2, $3)",
                3, params, &err)
            != NGX_OK)
        {
            cJSON_Delete(answer);
            res->rc = NGX_AGAIN;
            ngx_http_darkroom_lab_error(res, "draft %s not recorded: %s",
                                        idbuf, err.detail);
            return;
        }
    }

    state = ngx_http_darkroom_ps_str(answer, "OrderState");

    if (state && strcasecmp(state, "Embryonic") != 0
        && strcasecmp(state, "Draft") != 0)
    {
        /* confirmed by an earlier attempt whose answer was lost */
        ngx_cpystrn((u_char *) res->outcome, (u_char *) state,
                    sizeof(res->outcome));
        cJSON_Delete(answer);
        return;
    }

    option = ngx_http_darkroom_printspace_option(lcf,
                 cJSON_GetObjectItemCaseSensitive(answer, "DeliveryOptions"));

    if (option == NULL) {
        res->rc = NGX_DECLINED;
        snprintf(res->error, sizeof(res->error),
                 "theprintspace offers no delivery option%s%s for this "
                 "address", lcf->printspace_delivery.len ? " named " : "",
                 lcf->printspace_delivery.len
                 ? (char *) lcf->printspace_delivery.data : "");
        res->detail = cJSON_PrintUnformatted(
            cJSON_GetObjectItemCaseSensitive(answer, "DeliveryOptions"));
        cJSON_Delete(answer);
        return;
    }

    confirm = cJSON_CreateObject();
    cJSON_AddItemToObject(confirm, "OrderId", cJSON_Duplicate(id, 1));
    cJSON_AddItemToObject(confirm, "DeliveryOptionId", cJSON_Duplicate(
        cJSON_GetObjectItemCaseSensitive(option, "Id"), 1));
    cJSON_AddNumberToObject(confirm, "DeliveryChargeExcludingSalesTax",
        cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(option,
            "DeliveryChargeExcludingSalesTax")));
    cJSON_AddNumberToObject(confirm, "DeliveryChargeSalesTax",
        cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(option,
            "DeliveryChargeSalesTax")));
    cJSON_AddStringToObject(confirm, "ExternalReference",
                            ngx_http_darkroom_ps_str(doc,
                                                     "idempotency_key"));

    body = cJSON_PrintUnformatted(confirm);
    cJSON_Delete(confirm);
    cJSON_Delete(answer);

    if (body == NULL) {
        res->rc = NGX_AGAIN;
        ngx_http_darkroom_lab_error(res, "no memory");
        return;
    }

    answer = NULL;

    ngx_http_darkroom_lab_http(lcf, NGX_HTTP_DARKROOM_LAB_PRINTSPACE, timeout,
                               "POST", "/api/v1/orders/confirmed", body,
                               &answer, res);
    free(body);

    if (res->rc == NGX_DECLINED) {
        res->detail = answer ? cJSON_PrintUnformatted(answer) : NULL;
        snprintf(res->error, sizeof(res->error),
                 "theprintspace refused to confirm order %s (%ld): %s",
                 idbuf, res->status,
                 ngx_http_darkroom_ps_str(answer, "Message")
                 ? ngx_http_darkroom_ps_str(answer, "Message")
                 : "no message");
    }

    if (res->rc == NGX_OK) {
        state = ngx_http_darkroom_ps_str(answer, "OrderState");
        ngx_cpystrn((u_char *) res->outcome,
                    (u_char *) (state ? state : "Confirmed"),
                    sizeof(res->outcome));
    }

    cJSON_Delete(answer);
}


/*
 * OrderState: Embryonic, Confirmed, InProduction (Printing, Packing),
 * Dispatched (Shipped, Complete), Cancelled; a dispatched order carries
 * DispatchedDate, Carrier (or DeliveryMethod), TrackingNumber and
 * TrackingUrl.
 */

ngx_int_t
ngx_http_darkroom_printspace_state(cJSON *order,
    ngx_http_darkroom_lab_state_t *st)
{
    char        sid[80];
    cJSON      *out, *o, *id;
    const char *state, *v;

    state = ngx_http_darkroom_ps_str(order, "OrderState");

    if (state == NULL) {
        return NGX_ERROR;
    }

    snprintf(st->lab_status, sizeof(st->lab_status), "%s", state);

    if (strcasecmp(state, "Cancelled") == 0
        || strcasecmp(state, "Canceled") == 0)
    {
        st->stage = "cancelled";

    } else if (strcasecmp(state, "Dispatched") == 0
               || strcasecmp(state, "Shipped") == 0
               || strcasecmp(state, "Complete") == 0
               || strcasecmp(state, "Completed") == 0)
    {
        st->stage = "shipped";

    } else if (strcasecmp(state, "InProduction") == 0
               || strcasecmp(state, "Printing") == 0
               || strcasecmp(state, "Packing") == 0)
    {
        st->stage = "in_production";

    } else {
        st->stage = "submitted";
    }

    out = cJSON_CreateArray();
    if (out == NULL) {
        return NGX_ERROR;
    }

    if (ngx_strcmp(st->stage, "shipped") == 0
        || ngx_http_darkroom_ps_str(order, "TrackingNumber"))
    {
        id = cJSON_GetObjectItemCaseSensitive(order, "Id");

        if (cJSON_IsNumber(id)) {
            snprintf(sid, sizeof(sid), "%.0f-1", id->valuedouble);
        } else {
            snprintf(sid, sizeof(sid), "%s-1",
                     cJSON_IsString(id) ? id->valuestring : "order");
        }

        o = cJSON_CreateObject();
        cJSON_AddItemToArray(out, o);
        cJSON_AddStringToObject(o, "id", sid);

        v = ngx_http_darkroom_ps_str(order, "Carrier");
        if (v == NULL) {
            v = ngx_http_darkroom_ps_str(order, "DeliveryMethod");
        }

        if (v) {
            cJSON_AddStringToObject(o, "carrier", v);
        }

        if ((v = ngx_http_darkroom_ps_str(order, "TrackingNumber"))) {
            cJSON_AddStringToObject(o, "tracking_number", v);
        }

        if ((v = ngx_http_darkroom_ps_str(order, "TrackingUrl"))) {
            cJSON_AddStringToObject(o, "tracking_url", v);
        }

        if ((v = ngx_http_darkroom_ps_str(order, "DispatchedDate"))) {
            cJSON_AddStringToObject(o, "dispatched_at", v);
        }
    }

    st->shipments = cJSON_PrintUnformatted(out);
    cJSON_Delete(out);

    return st->shipments ? NGX_OK : NGX_ERROR;
}


void
ngx_http_darkroom_printspace_fetch(ngx_http_darkroom_labs_conf_t *lcf,
    ngx_msec_t timeout, const char *id, ngx_http_darkroom_lab_state_t *st,
    ngx_http_darkroom_lab_result_t *res)
{
    char    path[300];
    cJSON  *answer;

    snprintf(path, sizeof(path), "/api/v1/orders/%s", id);

    answer = NULL;

    ngx_http_darkroom_lab_http(lcf, NGX_HTTP_DARKROOM_LAB_PRINTSPACE,
                               timeout, "GET", path, NULL, &answer, res);

    if (res->rc == NGX_OK
        && ngx_http_darkroom_printspace_state(answer, st) != NGX_OK)
    {
        res->rc = NGX_AGAIN;
        ngx_http_darkroom_lab_error(res, "theprintspace: order %s has no "
                                    "OrderState", id);
    }

    cJSON_Delete(answer);
}
