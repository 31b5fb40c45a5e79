
/*
 * darkroom: theprintspace, through the creativehub API as its swagger
 * ("api.creativehub.io" 1.0.0; sandbox host api.sandbox.tps-test.io)
 * defines it: JSON, "Authorization: ApiKey <key>".
 *
 *   POST   /api/v1/orders/query       orders by ExternalReference
 *   DELETE /api/v1/orders/{id}        cancel an embryonic order
 *   POST   /api/v1/orders/embryonic   a draft (OrderState EmbryonicOrder)
 *                                     with its DeliveryOptions
 *   POST   /api/v1/orders/confirmed   confirm the draft with one option
 *   GET    /api/v1/orders/{id}        the order as it is now
 *
 * An item is the artwork's creativehub product (ProductId, per photo) in a
 * print option (PrintOptionId, per darkroom product): creativehub prints
 * the file it holds, darkroom sends no image.  The API has no idempotency
 * key, so each send first looks for orders under the lab order's
 * ExternalReference: a confirmed one is the answer a crash lost; a draft
 * (whose delivery options only its creation answered) is cancelled before
 * a new one is made, so no orphan draft is left.  No webhooks: the
 * lab_poll job follows each open order.
 */


#include "ngx_http_darkroom_labs.h"


typedef struct {
    const char  *name;
    const char  *carrier;
    const char  *url;            /* %s: the tracking number */
} ngx_http_darkroom_ps_carrier_t;


/* carriers a delivery method names, and their public tracking pages */

static ngx_http_darkroom_ps_carrier_t  ngx_http_darkroom_ps_carriers[] = {
    { "royal mail", "Royal Mail",
      "https://www.royalmail.com/track-your-item#/tracking-results/%s" },
    { "parcelforce", "Parcelforce",
      "https://www.parcelforce.com/track-trace?trackNumber=%s" },
    { "dhl", "DHL",
      "https://www.dhl.com/global-en/home/tracking/tracking-express.html"
      "?submit=1&tracking-id=%s" },
    { "ups", "UPS", "https://www.ups.com/track?tracknum=%s" },
    { "fedex", "FedEx", "https://www.fedex.com/fedextrack/?trknbr=%s" },
    { "dpd", "DPD", "https://track.dpd.co.uk/parcels/%s" },
    { "usps", "USPS",
      "https://tools.usps.com/go/TrackConfirmAction?tLabels=%s" },
    { NULL, NULL, NULL }
};


/* OrderState → stage; failure states need a person */

typedef struct {
    const char  *state;
    const char  *stage;
} ngx_http_darkroom_ps_state_t;


static ngx_http_darkroom_ps_state_t  ngx_http_darkroom_ps_states[] = {
    { "EmbryonicOrder", "submitted" },
    { "ProcessingPayment", "submitted" },
    { "NewOrder", "submitted" },
    { "NotSet", "submitted" },
    { "ImageFileReceived", "in_production" },
    { "Printed", "in_production" },
    { "ToBeRedone", "in_production" },
    { "InFraming", "in_production" },
    { "FramingStarted", "in_production" },
    { "FramingComplete", "in_production" },
    { "ASFFraming", "in_production" },
    { "InMounting", "in_production" },
    { "MountingStarted", "in_production" },
    { "MountingComplete", "in_production" },
    { "Packed", "in_production" },
    { "DispatchQC", "in_production" },
    { "Dispatch", "in_production" },
    { "Dispatched", "shipped" },
    { "ReadyForCollection", "shipped" },
    { "Collected", "shipped" },
    { "Delivered", "shipped" },
    { "Cancelled", "cancelled" },
    { "PaymentFailed", "attention" },
    { "CardRequired", "attention" },
    { "OrderFailed", "attention" },
    { "ShippingFailed", "attention" },
    { "OnHold", "attention" },
    { "SuspendedOrder", "attention" },
    { "DuplicateOrder", "attention" },
    { "ForReturn", "attention" },
    { "ReturnReceived", "attention" },
    { "RefundInitiated", "attention" },
    { NULL, NULL }
};


static ngx_int_t ngx_http_darkroom_ps_id(cJSON *obj, char *buf, size_t size);
static cJSON *ngx_http_darkroom_printspace_address(cJSON *doc,
    const char *first, const char *last);
static ngx_int_t ngx_http_darkroom_printspace_items(cJSON *doc, cJSON *body,
    ngx_http_darkroom_lab_result_t *res);
static char *ngx_http_darkroom_printspace_order(cJSON *doc,
    ngx_http_darkroom_lab_result_t *res);
static cJSON *ngx_http_darkroom_printspace_option(
    ngx_http_darkroom_labs_conf_t *lcf, cJSON *options);
static char *ngx_http_darkroom_printspace_query(const char *key);
static ngx_int_t ngx_http_darkroom_printspace_lookup(
    ngx_http_darkroom_labs_conf_t *lcf, ngx_msec_t timeout, cJSON *doc,
    ngx_http_darkroom_lab_result_t *res);
static void ngx_http_darkroom_printspace_confirm(
    ngx_http_darkroom_labs_conf_t *lcf, ngx_msec_t timeout, cJSON *doc,
    cJSON *draft, const char *idbuf, ngx_http_darkroom_lab_result_t *res);
static void ngx_http_darkroom_printspace_refused(cJSON *answer,
    const char *what, ngx_http_darkroom_lab_result_t *res);
static ngx_int_t ngx_http_darkroom_printspace_shipment(cJSON *order,
    cJSON *out);
static ngx_int_t ngx_http_darkroom_ps_escape(const char *s, char *buf,
    size_t size);



/*
 * The order's Id (a number in the API) as text: a whole number that a
 * double holds exactly, or a string of [A-Za-z0-9_-] that fits; never
 * rounded or cut into another order's id.
 */

static ngx_int_t
ngx_http_darkroom_ps_id(cJSON *obj, char *buf, size_t size)
{
    cJSON  *id;

    id = cJSON_GetObjectItemCaseSensitive(obj, "Id");

    if (cJSON_IsNumber(id)) {
        if (id->valuedouble < 1 || id->valuedouble > 9007199254740992.0
            || id->valuedouble != (double) (int64_t) id->valuedouble
            || (size_t) snprintf(buf, size, "%.0f", id->valuedouble)
               >= size)
        {
            return NGX_ERROR;
        }

        return NGX_OK;
    }

    if (cJSON_IsString(id)
        && ngx_http_darkroom_lab_id_ok(id->valuestring, size) == NGX_OK)
    {
        ngx_cpystrn((u_char *) buf, (u_char *) id->valuestring, size);
        return NGX_OK;
    }

    return NGX_ERROR;
}


/* Address: PhoneNumber is required; CountryCode is the ISO code */

static cJSON *
ngx_http_darkroom_printspace_address(cJSON *doc, const char *first,
    const char *last)
{
    cJSON       *addr, *a;
    const char  *s;

    a = cJSON_GetObjectItemCaseSensitive(doc, "address");

    addr = cJSON_CreateObject();
    if (addr == NULL) {
        return NULL;
    }

    cJSON_AddStringToObject(addr, "FirstName", first);
    cJSON_AddStringToObject(addr, "LastName", last);
    s = ngx_http_darkroom_json_str(a, "line1");
    cJSON_AddStringToObject(addr, "Line1", s ? s : "");

    if ((s = ngx_http_darkroom_json_str(a, "line2")) && *s) {
        cJSON_AddStringToObject(addr, "Line2", s);
    }

    if ((s = ngx_http_darkroom_json_str(a, "city")) && *s) {
        cJSON_AddStringToObject(addr, "Town", s);
    }

    if ((s = ngx_http_darkroom_json_str(a, "state")) && *s) {
        cJSON_AddStringToObject(addr, "County", s);
    }

    s = ngx_http_darkroom_json_str(a, "postal_code");
    cJSON_AddStringToObject(addr, "PostCode", s ? s : "");
    s = ngx_http_darkroom_json_str(a, "country");
    cJSON_AddStringToObject(addr, "CountryCode", s ? s : "");
    s = ngx_http_darkroom_json_str(doc, "phone");
    cJSON_AddStringToObject(addr, "PhoneNumber", s ? s : "");

    return addr;
}


/* OrderItems: ProductId (the photo's), PrintOptionId (the product's) */

static ngx_int_t
ngx_http_darkroom_printspace_items(cJSON *doc, cJSON *body,
    ngx_http_darkroom_lab_result_t *res)
{
    char         ref[200];
    cJSON       *items, *item, *it, *product, *option, *copies, *line;
    const char  *order, *sku;

    order = ngx_http_darkroom_json_str(doc, "order");
    items = cJSON_AddArrayToObject(body, "OrderItems");

    if (items == NULL) {
        goto nomem;
    }

    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(doc, "items")) {
        product = cJSON_GetObjectItemCaseSensitive(it, "creativehub_product");
        option = cJSON_GetObjectItemCaseSensitive(
                     cJSON_GetObjectItemCaseSensitive(it, "attributes"),
                     "PrintOptionId");
        copies = cJSON_GetObjectItemCaseSensitive(it, "copies");
        line = cJSON_GetObjectItemCaseSensitive(it, "line");

        if (!cJSON_IsNumber(product) || !cJSON_IsNumber(option)) {
            res->rc = NGX_DECLINED;
            ngx_http_darkroom_lab_error(res, "theprintspace needs the "
                "creativehub %s of photo \"%s\"",
                cJSON_IsNumber(product) ? "print option (PrintOptionId)"
                                        : "product id",
                ngx_http_darkroom_json_str(it, "photo"));
            return NGX_ERROR;
        }

        /* every part checked: a line lost to no memory is not an order */
        item = cJSON_CreateObject();
        if (!cJSON_AddItemToArray(items, item)) {
            cJSON_Delete(item);
            goto nomem;
        }

        snprintf(ref, sizeof(ref), "%s-%d", order ? order : "",
                 cJSON_IsNumber(line) ? line->valueint : 0);
        sku = ngx_http_darkroom_json_str(it, "sku");

        if (!cJSON_AddNumberToObject(item, "ProductId", product->valuedouble)
            || !cJSON_AddNumberToObject(item, "PrintOptionId",
                                        option->valuedouble)
            || !cJSON_AddNumberToObject(item, "Quantity",
                                        cJSON_IsNumber(copies)
                                        ? copies->valueint : 1)
            || !cJSON_AddStringToObject(item, "ExternalReference", ref)
            || (sku && !cJSON_AddStringToObject(item, "ExternalSku", sku)))
        {
            goto nomem;
        }
    }

    return NGX_OK;

nomem:

    res->rc = NGX_AGAIN;
    ngx_http_darkroom_lab_error(res, "theprintspace: no memory for the "
                                "order's items");
    return NGX_ERROR;
}


/* the embryonic order request: a malloc'd JSON text, or NULL */

static char *
ngx_http_darkroom_printspace_order(cJSON *doc,
    ngx_http_darkroom_lab_result_t *res)
{
    char        *text, first[200];
    cJSON       *body, *addr;
    size_t       n;
    const char  *name, *last, *s, *order;

    order = ngx_http_darkroom_json_str(doc, "order");
    name = ngx_http_darkroom_json_str(doc, "name");

    if (ngx_http_darkroom_json_str(doc, "phone") == NULL) {
        res->rc = NGX_DECLINED;
        ngx_http_darkroom_lab_error(res, "theprintspace needs the "
                                    "recipient's phone number; the order "
                                    "has none");
        return NULL;
    }

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
    addr = ngx_http_darkroom_printspace_address(doc, first, last);

    if (body == NULL || addr == NULL) {
        cJSON_Delete(body);
        cJSON_Delete(addr);
        ngx_http_darkroom_lab_error(res, "no memory");
        return NULL;
    }

    cJSON_AddStringToObject(body, "ExternalReference",
                            ngx_http_darkroom_json_str(doc,
                                                      "idempotency_key"));
    cJSON_AddStringToObject(body, "FirstName", first);
    cJSON_AddStringToObject(body, "LastName", last);
    s = ngx_http_darkroom_json_str(doc, "email");
    cJSON_AddStringToObject(body, "Email", s ? s : "");
    cJSON_AddStringToObject(body, "MessageToLab", order ? order : "");
    cJSON_AddItemToObject(body, "ShippingAddress", addr);

    if (ngx_http_darkroom_printspace_items(doc, body, res) != NGX_OK) {
        cJSON_Delete(body);
        return NULL;
    }

    text = cJSON_PrintUnformatted(body);
    cJSON_Delete(body);

    if (text == NULL) {
        ngx_http_darkroom_lab_error(res, "no memory");
    }

    return text;
}


/*
 * The option the configuration names by Method, BranchName or
 * "BranchName/Method" (the fields a DeliveryOption has), or the cheapest.
 */

static cJSON *
ngx_http_darkroom_printspace_option(ngx_http_darkroom_labs_conf_t *lcf,
    cJSON *options)
{
    char         both[400];
    cJSON       *o, *best;
    double       price, min;
    const char  *method, *branch, *want;

    best = NULL;
    min = 0;
    want = (const char *) lcf->printspace_delivery.data;

    cJSON_ArrayForEach(o, options) {

        if (lcf->printspace_delivery.len) {
            method = ngx_http_darkroom_json_str(o, "Method");
            branch = ngx_http_darkroom_json_str(o, "BranchName");
            snprintf(both, sizeof(both), "%s/%s", branch ? branch : "",
                     method ? method : "");

            if ((method && strcasecmp(method, want) == 0)
                || (branch && strcasecmp(branch, want) == 0)
                || strcasecmp(both, want) == 0)
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


static void
ngx_http_darkroom_printspace_refused(cJSON *answer, const char *what,
    ngx_http_darkroom_lab_result_t *res)
{
    const char  *msg;

    msg = ngx_http_darkroom_json_str(answer, "Message");

    ngx_http_darkroom_lab_refused(res, answer, "theprintspace refused %s "
                                  "(%ld): %s", what, res->status,
                                  msg ? msg : "no message");
}


/* the order query for one ExternalReference: malloc'd JSON, or NULL */

static char *
ngx_http_darkroom_printspace_query(const char *key)
{
    char   *body;
    cJSON  *q, *f, *descs, *p;

    if (key == NULL || *key == '\0') {
        return NULL;
    }

    q = cJSON_CreateObject();
    f = cJSON_AddObjectToObject(q, "Filter");
    descs = cJSON_AddArrayToObject(f, "FilterDescriptors");
    p = cJSON_CreateObject();

    if (!cJSON_AddItemToArray(descs, p)) {
        cJSON_Delete(p);
        p = NULL;
    }

    body = NULL;

    if (p != NULL
        && cJSON_AddNumberToObject(q, "Page", 1)
        && cJSON_AddNumberToObject(q, "PageSize", 50)
        && cJSON_AddStringToObject(f, "LogicalOperator", "And")
        && cJSON_AddStringToObject(p, "Member", "ExternalReference")
        && cJSON_AddStringToObject(p, "PredicateOperator", "IsEqualTo")
        && cJSON_AddStringToObject(p, "Value", key))
    {
        body = cJSON_PrintUnformatted(q);
    }

    cJSON_Delete(q);

    return body;
}


/*
 * Orders already under this lab order's ExternalReference.  NGX_OK: one
 * was confirmed earlier (its id and state are in res); NGX_DECLINED:
 * none (drafts found were cancelled); NGX_ERROR: res says why.
 */

static ngx_int_t
ngx_http_darkroom_printspace_lookup(ngx_http_darkroom_labs_conf_t *lcf,
    ngx_msec_t timeout, cJSON *doc, ngx_http_darkroom_lab_result_t *res)
{
    char         *body, id[64], path[300];
    cJSON        *answer, *o, *none;
    const char   *state, *key, *ref;
    ngx_int_t     rc;

    key = ngx_http_darkroom_json_str(doc, "idempotency_key");
    body = ngx_http_darkroom_printspace_query(key);

    if (body == NULL) {
        /* without the filter the query would answer other orders */
        res->rc = NGX_AGAIN;
        ngx_http_darkroom_lab_error(res, "theprintspace: the order query "
                                    "could not be built");
        return NGX_ERROR;
    }

    answer = NULL;
    ngx_http_darkroom_lab_http(lcf, NGX_HTTP_DARKROOM_LAB_PRINTSPACE,
                               timeout, "POST", "/api/v1/orders/query",
                               body, &answer, res);
    free(body);

    if (res->rc != NGX_OK) {
        if (res->rc == NGX_DECLINED) {
            ngx_http_darkroom_printspace_refused(answer, "the order query",
                                                 res);
        }

        cJSON_Delete(answer);
        return NGX_ERROR;
    }

    rc = NGX_DECLINED;

    cJSON_ArrayForEach(o, cJSON_GetObjectItemCaseSensitive(answer, "Data")) {
        state = ngx_http_darkroom_json_str(o, "OrderState");
        ref = ngx_http_darkroom_json_str(o, "ExternalReference");

        /* only this lab order's: a filter the API ignored adopts no other */
        if (state == NULL || ref == NULL || strcmp(ref, key) != 0
            || ngx_http_darkroom_ps_id(o, id, sizeof(id)) != NGX_OK
            || strcmp(state, "Cancelled") == 0)
        {
            continue;
        }

        if (strcmp(state, "EmbryonicOrder") != 0) {
            /* confirmed by an attempt whose answer was lost */
            ngx_cpystrn((u_char *) res->lab_order_id, (u_char *) id,
                        sizeof(res->lab_order_id));
            ngx_cpystrn((u_char *) res->outcome, (u_char *) state,
                        sizeof(res->outcome));
            rc = NGX_OK;
            break;
        }

        /* a draft whose options are lost with its answer: cancel it */
        snprintf(path, sizeof(path), "/api/v1/orders/%s", id);
        none = NULL;
        ngx_http_darkroom_lab_http(lcf, NGX_HTTP_DARKROOM_LAB_PRINTSPACE,
                                   timeout, "DELETE", path, NULL, &none, res);
        cJSON_Delete(none);

        if (res->status < 200 || res->status > 299) {
            cJSON_Delete(answer);
            res->rc = NGX_AGAIN;
            ngx_http_darkroom_lab_error(res, "theprintspace: draft %s not "
                                        "cancelled (%ld)", id, res->status);
            return NGX_ERROR;
        }
    }

    cJSON_Delete(answer);
    res->rc = NGX_OK;
    res->error[0] = '\0';

    return rc;
}


/* confirm a fresh draft with the chosen delivery option */

static void
ngx_http_darkroom_printspace_confirm(ngx_http_darkroom_labs_conf_t *lcf,
    ngx_msec_t timeout, cJSON *doc, cJSON *draft, const char *idbuf,
    ngx_http_darkroom_lab_result_t *res)
{
    char         *body, what[100];
    cJSON        *option, *confirm, *answer;
    const char   *state;

    option = ngx_http_darkroom_printspace_option(lcf,
                 cJSON_GetObjectItemCaseSensitive(draft, "DeliveryOptions"));

    if (option == NULL) {
        res->rc = NGX_DECLINED;
        snprintf(res->error, sizeof(res->error),
                 "theprintspace offers no delivery option%s%s for this "
                 "address", lcf->printspace_delivery.len ? " matching " : "",
                 lcf->printspace_delivery.len
                 ? (char *) lcf->printspace_delivery.data : "");
        res->detail = cJSON_PrintUnformatted(
            cJSON_GetObjectItemCaseSensitive(draft, "DeliveryOptions"));
        return;
    }

    confirm = cJSON_CreateObject();
    cJSON_AddNumberToObject(confirm, "OrderId", strtod(idbuf, NULL));
    cJSON_AddItemToObject(confirm, "DeliveryOptionId", cJSON_Duplicate(
        cJSON_GetObjectItemCaseSensitive(option, "Id"), 1));
    cJSON_AddNumberToObject(confirm, "DeliveryChargeExcludingSalesTax",
        cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(option,
            "DeliveryChargeExcludingSalesTax")));
    cJSON_AddNumberToObject(confirm, "DeliveryChargeSalesTax",
        cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(option,
            "DeliveryChargeSalesTax")));
    cJSON_AddStringToObject(confirm, "ExternalReference",
                            ngx_http_darkroom_json_str(doc,
                                                      "idempotency_key"));

    body = cJSON_PrintUnformatted(confirm);
    cJSON_Delete(confirm);

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
        snprintf(what, sizeof(what), "to confirm order %s", idbuf);
        ngx_http_darkroom_printspace_refused(answer, what, res);
    }

    if (res->rc == NGX_OK) {
        state = ngx_http_darkroom_json_str(answer, "OrderState");
        ngx_cpystrn((u_char *) res->outcome,
                    (u_char *) (state ? state : "NewOrder"),
                    sizeof(res->outcome));
    }

    cJSON_Delete(answer);
}


void
ngx_http_darkroom_printspace_submit(ngx_http_darkroom_labs_conf_t *lcf,
    ngx_msec_t timeout, cJSON *doc, ngx_http_darkroom_db_t *db,
    const char *cause, ngx_http_darkroom_lab_result_t *res)
{
    char                       *body, idbuf[64];
    cJSON                      *answer;
    const char                 *state, *params[3];
    ngx_http_darkroom_error_t   err;

    body = ngx_http_darkroom_printspace_order(doc, res);
    if (body == NULL) {
        if (res->rc == NGX_OK) {
            res->rc = NGX_AGAIN;
        }
        return;
    }

    if (ngx_http_darkroom_printspace_lookup(lcf, timeout, doc, res)
        != NGX_DECLINED)
    {
        free(body);
        return;
    }

    answer = NULL;
    ngx_http_darkroom_lab_http(lcf, NGX_HTTP_DARKROOM_LAB_PRINTSPACE,
                               timeout, "POST", "/api/v1/orders/embryonic",
                               body, &answer, res);
    free(body);

    if (res->rc == NGX_DECLINED) {
        ngx_http_darkroom_printspace_refused(answer, "the order", res);
    }

    if (res->rc != NGX_OK) {
        cJSON_Delete(answer);
        return;
    }

    state = ngx_http_darkroom_json_str(answer, "OrderState");

    if (cJSON_GetObjectItemCaseSensitive(answer, "Id")
        && ngx_http_darkroom_ps_id(answer, idbuf, sizeof(idbuf)) != NGX_OK)
    {
        /* a draft darkroom cannot name: a person must look at it */
        cJSON_Delete(answer);
        res->rc = NGX_DECLINED;
        ngx_http_darkroom_lab_error(res, "theprintspace: the draft's Id is "
                                    "not one darkroom can use (a whole "
                                    "number, or up to 63 of A-Z a-z 0-9 _ "
                                    "-): see the order in creativehub");
        return;
    }

    if (ngx_http_darkroom_ps_id(answer, idbuf, sizeof(idbuf)) != NGX_OK
        || state == NULL || strcmp(state, "EmbryonicOrder") != 0)
    {
        cJSON_Delete(answer);
        res->rc = NGX_AGAIN;
        ngx_http_darkroom_lab_error(res, "theprintspace: the draft answer "
                                    "has no Id or is not an EmbryonicOrder");
        return;
    }

    ngx_cpystrn((u_char *) res->lab_order_id, (u_char *) idbuf,
                sizeof(res->lab_order_id));

    /* recorded first: the admin sees the draft, a retry finds it anyway */
    ngx_memzero(&err, sizeof(ngx_http_darkroom_error_t));
    params[0] = ngx_http_darkroom_json_str(doc, "id_text");
    params[1] = idbuf;
    params[2] = cause;

    if (ngx_http_darkroom_db_command(db,
            "SELECT lab_submit_draft($1::bigint, $2, $3)", 3, params, &err)
        != NGX_OK)
    {
        cJSON_Delete(answer);
        res->rc = NGX_AGAIN;
        ngx_http_darkroom_lab_error(res, "draft %s not recorded: %s",
                                    idbuf, err.detail);
        return;
    }

    ngx_http_darkroom_printspace_confirm(lcf, timeout, doc, answer, idbuf,
                                         res);
    cJSON_Delete(answer);
}


/*
 * A tracking number as a URL component (it goes into a link emailed to
 * the customer): all but A-Z a-z 0-9 - . _ ~ percent-encoded.
 */

static ngx_int_t
ngx_http_darkroom_ps_escape(const char *s, char *buf, size_t size)
{
    u_char       c;
    size_t       n;

    static const char  hex[] = "0123456789ABCDEF";

    for (n = 0; *s; s++) {
        c = (u_char) *s;

        if (ngx_http_darkroom_lab_alnum(c)
            || c == '-' || c == '.' || c == '_' || c == '~')
        {
            if (n + 1 >= size) {
                return NGX_ERROR;
            }

            buf[n++] = c;
            continue;
        }

        if (n + 3 >= size) {
            return NGX_ERROR;
        }

        buf[n++] = '%';
        buf[n++] = hex[c >> 4];
        buf[n++] = hex[c & 0xf];
    }

    buf[n] = '\0';

    return NGX_OK;
}


/* a dispatched order's parcel: DeliveryOption.Method, DateDispatched */

static ngx_int_t
ngx_http_darkroom_printspace_shipment(cJSON *order, cJSON *out)
{
    char                             sid[80], url[600], low[200];
    char                             esc[300];
    cJSON                           *o, *opt;
    size_t                           i;
    const char                      *method, *number, *v, *carrier;
    ngx_http_darkroom_ps_carrier_t  *c;

    if (ngx_http_darkroom_ps_id(order, sid, sizeof(sid) - 2) != NGX_OK) {
        ngx_cpystrn((u_char *) sid, (u_char *) "order", sizeof(sid));
    }

    ngx_cpystrn((u_char *) sid + ngx_strlen(sid), (u_char *) "-1", 3);

    o = cJSON_CreateObject();
    if (o == NULL) {
        return NGX_ERROR;
    }

    cJSON_AddItemToArray(out, o);
    cJSON_AddStringToObject(o, "id", sid);

    opt = cJSON_GetObjectItemCaseSensitive(order, "DeliveryOption");
    method = ngx_http_darkroom_json_str(opt, "Method");
    number = ngx_http_darkroom_json_str(order, "TrackingNumber");
    carrier = method;

    if (method) {
        for (i = 0; method[i] && i < sizeof(low) - 1; i++) {
            low[i] = ngx_tolower(method[i]);
        }

        low[i] = '\0';

        for (c = ngx_http_darkroom_ps_carriers; c->name; c++) {
            if (ngx_strstr(low, c->name)) {
                carrier = c->carrier;
                break;
            }
        }

        cJSON_AddStringToObject(o, "service", method);
        cJSON_AddStringToObject(o, "carrier", carrier);

        /* the API gives no link: the carrier's page for the number */
        if (number && *number && c->name
            && ngx_http_darkroom_ps_escape(number, esc, sizeof(esc))
               == NGX_OK)
        {
            snprintf(url, sizeof(url), c->url, esc);
            cJSON_AddStringToObject(o, "tracking_url", url);
        }
    }

    if (number && *number) {
        cJSON_AddStringToObject(o, "tracking_number", number);
    }

    if ((v = ngx_http_darkroom_json_str(order, "DateDispatched"))) {
        cJSON_AddStringToObject(o, "dispatched_at", v);
    }

    return NGX_OK;
}


/* OrderState (the swagger's enum) in darkroom's words */

ngx_int_t
ngx_http_darkroom_printspace_state(cJSON *order,
    ngx_http_darkroom_lab_state_t *st)
{
    cJSON                         *out;
    const char                    *state;
    ngx_http_darkroom_ps_state_t  *s;

    state = ngx_http_darkroom_json_str(order, "OrderState");

    if (state == NULL) {
        return NGX_ERROR;
    }

    snprintf(st->lab_status, sizeof(st->lab_status), "%s", state);
    st->stage = "submitted";

    for (s = ngx_http_darkroom_ps_states; s->state; s++) {
        if (strcmp(s->state, state) == 0) {
            st->stage = s->stage;
            break;
        }
    }

    if (ngx_strcmp(st->stage, "attention") == 0) {
        snprintf(st->reason, sizeof(st->reason), "theprintspace: the order "
                 "is %s", state);
    }

    out = cJSON_CreateArray();
    if (out == NULL) {
        return NGX_ERROR;
    }

    if ((ngx_strcmp(st->stage, "shipped") == 0
         || ngx_http_darkroom_json_str(order, "TrackingNumber"))
        && ngx_http_darkroom_printspace_shipment(order, out) != NGX_OK)
    {
        cJSON_Delete(out);
        return NGX_ERROR;
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
    char  path[300];

    snprintf(path, sizeof(path), "/api/v1/orders/%s", id);

    ngx_http_darkroom_lab_fetch(lcf, NGX_HTTP_DARKROOM_LAB_PRINTSPACE,
                                timeout, path, NULL,
                                ngx_http_darkroom_printspace_state, st, res);
}


/*
 * creativehub's current API, "Escher V2" (https://sell.creativehub.io/
 * api-docs; base https://escher-v2.creativehub.io, "Authorization: Bearer
 * <token>", no sandbox, no webhooks yet), which replaced the one above:
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

static char *ngx_http_darkroom_escher_order(cJSON *doc,
    ngx_http_darkroom_lab_result_t *res);
static void ngx_http_darkroom_escher_refused(cJSON *answer,
    ngx_http_darkroom_lab_result_t *res);


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


void
ngx_http_darkroom_escher_submit(ngx_http_darkroom_labs_conf_t *lcf,
    ngx_msec_t timeout, cJSON *doc, ngx_http_darkroom_lab_result_t *res)
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

    ngx_http_darkroom_lab_http(lcf, NGX_HTTP_DARKROOM_LAB_PRINTSPACE,
                               timeout, "POST", "/v1/orders", body, &answer,
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

ngx_int_t
ngx_http_darkroom_escher_state(cJSON *order, ngx_http_darkroom_lab_state_t *st)
{
    char         low[64];
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


void
ngx_http_darkroom_escher_fetch(ngx_http_darkroom_labs_conf_t *lcf,
    ngx_msec_t timeout, const char *id, ngx_http_darkroom_lab_state_t *st,
    ngx_http_darkroom_lab_result_t *res)
{
    char  path[300];

    snprintf(path, sizeof(path), "/v1/orders/%s", id);

    ngx_http_darkroom_lab_fetch(lcf, NGX_HTTP_DARKROOM_LAB_PRINTSPACE,
                                timeout, path, NULL,
                                ngx_http_darkroom_escher_state, st, res);
}
