
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


#define NGX_HTTP_DARKROOM_PRINTSPACE_ID_LEN  64   /* an order's Id, NUL */


typedef struct {
    const char  *name;
    const char  *carrier;
    const char  *url;            /* %s: the tracking number */
} ngx_http_darkroom_printspace_carrier_t;


/* carriers a delivery method names, and their public tracking pages */

static ngx_http_darkroom_printspace_carrier_t
    ngx_http_darkroom_printspace_carriers[] =
{
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
} ngx_http_darkroom_printspace_stage_t;


static ngx_http_darkroom_printspace_stage_t
    ngx_http_darkroom_printspace_stages[] =
{
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


static ngx_int_t ngx_http_darkroom_printspace_id(cJSON *obj, char *buf,
    size_t size);
static cJSON *ngx_http_darkroom_printspace_address(cJSON *doc,
    const char *first, const char *last);
static ngx_int_t ngx_http_darkroom_printspace_items(cJSON *doc, cJSON *body,
    ngx_http_darkroom_lab_result_t *res);
static char *ngx_http_darkroom_printspace_order(cJSON *doc,
    ngx_http_darkroom_lab_result_t *res);
static cJSON *ngx_http_darkroom_printspace_option(
    ngx_http_darkroom_labs_conf_t *lcf, cJSON *options, const char *paid);
static cJSON *ngx_http_darkroom_printspace_fastest(cJSON *options);
static char *ngx_http_darkroom_printspace_query(const char *key);
static ngx_int_t ngx_http_darkroom_printspace_lookup(
    ngx_http_darkroom_lab_call_t *call, cJSON *doc,
    ngx_http_darkroom_lab_result_t *res);
static void ngx_http_darkroom_printspace_confirm(
    ngx_http_darkroom_lab_call_t *call, cJSON *doc, cJSON *draft,
    const char *idbuf, ngx_http_darkroom_lab_result_t *res);
static void ngx_http_darkroom_printspace_submit(
    ngx_http_darkroom_lab_call_t *call, cJSON *doc,
    ngx_http_darkroom_lab_result_t *res);
static ngx_int_t ngx_http_darkroom_printspace_state(cJSON *order,
    ngx_http_darkroom_lab_state_t *st);
static void ngx_http_darkroom_printspace_fetch(
    ngx_http_darkroom_lab_call_t *call, const char *order,
    ngx_http_darkroom_lab_state_t *st, ngx_http_darkroom_lab_result_t *res);
static void ngx_http_darkroom_printspace_refused(cJSON *answer,
    const char *what, ngx_http_darkroom_lab_result_t *res);
static ngx_int_t ngx_http_darkroom_printspace_shipment(cJSON *order,
    cJSON *out);
static ngx_int_t ngx_http_darkroom_printspace_escape(const char *s, char *buf,
    size_t size);



/*
 * theprintspace's lab orders (lab "printspace") sent through the earlier
 * API (lab_api "legacy", darkroom_printspace_protocol legacy): no safe
 * resend (each send looks first), no callbacks (polled), no cancel of a
 * confirmed order (by hand).
 */

const ngx_http_darkroom_lab_driver_t
    ngx_http_darkroom_lab_printspace_legacy =
{
    "printspace",                          /* name */
    "legacy",                              /* api */
    NGX_HTTP_DARKROOM_PRINTSPACE_LEGACY,   /* protocol */
    "theprintspace",                       /* brand */
    "creativehub",                         /* site */
    "Authorization: ApiKey %.*s",          /* auth */
    offsetof(ngx_http_darkroom_labs_conf_t, printspace),
    0,                                     /* resend_safe */
    ngx_http_darkroom_printspace_submit,
    ngx_http_darkroom_printspace_fetch,
    NULL,                                  /* cancel: none */
    NULL                                   /* callback: none, polled */
};


/*
 * The order's Id (a number in the API) as text: a whole number that a
 * double holds exactly, or a string of [A-Za-z0-9_-] that fits; never
 * rounded or cut into another order's id.
 */

static ngx_int_t
ngx_http_darkroom_printspace_id(cJSON *obj, char *buf, size_t size)
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
    char         ref[NGX_HTTP_DARKROOM_LAB_REF_LEN];
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
 * The option for the shipping the customer paid for ("paid", the order's
 * method): express or overnight, the one that arrives first; else the
 * option the configuration names by Method, BranchName or
 * "BranchName/Method" (the fields a DeliveryOption has), or the cheapest.
 */

static cJSON *
ngx_http_darkroom_printspace_option(ngx_http_darkroom_labs_conf_t *lcf,
    cJSON *options, const char *paid)
{
    char         both[400];
    cJSON       *o, *best;
    double       price, min;
    const char  *method, *branch, *want;

    if (paid && (strcmp(paid, "express") == 0
                 || strcmp(paid, "overnight") == 0))
    {
        return ngx_http_darkroom_printspace_fastest(options);
    }

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


/* the option whose latest estimated delivery date is the earliest */

static cJSON *
ngx_http_darkroom_printspace_fastest(cJSON *options)
{
    cJSON       *o, *best;
    const char  *to, *min;

    best = NULL;
    min = NULL;

    cJSON_ArrayForEach(o, options) {
        to = ngx_http_darkroom_json_str(o, "EstimatedDeliveryDateTo");

        /* ISO 8601 dates of one form order as strings do */
        if (best == NULL || (to && (min == NULL || strcmp(to, min) < 0))) {
            best = o;
            min = to;
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
ngx_http_darkroom_printspace_lookup(ngx_http_darkroom_lab_call_t *call,
    cJSON *doc, ngx_http_darkroom_lab_result_t *res)
{
    char         *body, id[NGX_HTTP_DARKROOM_PRINTSPACE_ID_LEN];
    char          path[NGX_HTTP_DARKROOM_LAB_PATH_LEN];
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
    ngx_http_darkroom_lab_http(call, "POST", "/api/v1/orders/query", body,
                               &answer, res);
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
            || ngx_http_darkroom_printspace_id(o, id, sizeof(id)) != NGX_OK
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
        ngx_http_darkroom_lab_http(call, "DELETE", path, NULL, &none, res);
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
ngx_http_darkroom_printspace_confirm(ngx_http_darkroom_lab_call_t *call,
    cJSON *doc, cJSON *draft, const char *idbuf,
    ngx_http_darkroom_lab_result_t *res)
{
    ngx_http_darkroom_labs_conf_t  *lcf = call->lcf;

    char         *body, what[100];
    cJSON        *option, *confirm, *answer;
    const char   *state;

    option = ngx_http_darkroom_printspace_option(lcf,
                 cJSON_GetObjectItemCaseSensitive(draft, "DeliveryOptions"),
                 ngx_http_darkroom_json_str(doc, "shipping_method"));

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
    ngx_http_darkroom_lab_http(call, "POST", "/api/v1/orders/confirmed",
                               body, &answer, res);
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


static void
ngx_http_darkroom_printspace_submit(ngx_http_darkroom_lab_call_t *call,
    cJSON *doc, ngx_http_darkroom_lab_result_t *res)
{
    char        *body, idbuf[NGX_HTTP_DARKROOM_PRINTSPACE_ID_LEN];
    cJSON       *answer;
    const char  *state;

    body = ngx_http_darkroom_printspace_order(doc, res);
    if (body == NULL) {
        if (res->rc == NGX_OK) {
            res->rc = NGX_AGAIN;
        }
        return;
    }

    if (ngx_http_darkroom_printspace_lookup(call, doc, res)
        != NGX_DECLINED)
    {
        free(body);
        return;
    }

    answer = NULL;
    ngx_http_darkroom_lab_http(call, "POST", "/api/v1/orders/embryonic",
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
        && ngx_http_darkroom_printspace_id(answer, idbuf, sizeof(idbuf))
           != NGX_OK)
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

    if (ngx_http_darkroom_printspace_id(answer, idbuf, sizeof(idbuf)) != NGX_OK
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
    if (ngx_http_darkroom_lab_draft(call, idbuf, res) != NGX_OK) {
        cJSON_Delete(answer);
        return;
    }

    ngx_http_darkroom_printspace_confirm(call, doc, answer, idbuf, res);
    cJSON_Delete(answer);
}


/*
 * A tracking number as a URL component (it goes into a link emailed to
 * the customer): all but A-Z a-z 0-9 - . _ ~ percent-encoded.
 */

static ngx_int_t
ngx_http_darkroom_printspace_escape(const char *s, char *buf, size_t size)
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
    ngx_http_darkroom_printspace_carrier_t  *c;

    if (ngx_http_darkroom_printspace_id(order, sid, sizeof(sid) - 2)
        != NGX_OK)
    {
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

        for (c = ngx_http_darkroom_printspace_carriers; c->name; c++) {
            if (ngx_strstr(low, c->name)) {
                carrier = c->carrier;
                break;
            }
        }

        cJSON_AddStringToObject(o, "service", method);
        cJSON_AddStringToObject(o, "carrier", carrier);

        /* the API gives no link: the carrier's page for the number */
        if (number && *number && c->name
            && ngx_http_darkroom_printspace_escape(number, esc, sizeof(esc))
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

static ngx_int_t
ngx_http_darkroom_printspace_state(cJSON *order,
    ngx_http_darkroom_lab_state_t *st)
{
    cJSON                         *out;
    const char                    *state;
    ngx_http_darkroom_printspace_stage_t  *s;

    state = ngx_http_darkroom_json_str(order, "OrderState");

    if (state == NULL) {
        return NGX_ERROR;
    }

    snprintf(st->lab_status, sizeof(st->lab_status), "%s", state);
    st->stage = "submitted";

    for (s = ngx_http_darkroom_printspace_stages; s->state; s++) {
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


static void
ngx_http_darkroom_printspace_fetch(ngx_http_darkroom_lab_call_t *call,
    const char *order, ngx_http_darkroom_lab_state_t *st,
    ngx_http_darkroom_lab_result_t *res)
{
    char  path[NGX_HTTP_DARKROOM_LAB_PATH_LEN];

    snprintf(path, sizeof(path), "/api/v1/orders/%s", order);

    ngx_http_darkroom_lab_fetch(call, path, NULL,
                                ngx_http_darkroom_printspace_state, st, res);
}

