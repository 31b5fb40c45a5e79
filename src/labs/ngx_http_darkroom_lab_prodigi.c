
/*
 * darkroom: Prodigi, print API v4 (JSON, X-API-Key).
 *
 *   POST /v4.0/Orders                      create, with idempotencyKey
 *   GET  /v4.0/Orders/{id}                 the order as it is now
 *   POST /v4.0/Orders/{id}/actions/cancel  cancel before production
 *
 * Every documented outcome of a create (Created, CreatedWithIssues,
 * AlreadyExists, OnHold; compared case-insensitively) means the lab has
 * the order: AlreadyExists is what a retry with the same idempotency key
 * gets, so a lost answer never makes a second order.  The key carries a
 * random part (sql/013), and an AlreadyExists order must be this one (its
 * key and merchantReference), or it needs a person.  A 400 carries
 * Prodigi's validation failures; they are kept for the admin API.
 */


#include "ngx_http_darkroom_labs.h"


static cJSON *ngx_http_darkroom_prodigi_recipient(cJSON *doc);
static ngx_int_t ngx_http_darkroom_prodigi_asset(
    ngx_http_darkroom_lab_call_t *call, cJSON *it, const char *print,
    char *url, size_t size, ngx_http_darkroom_lab_result_t *res);
static ngx_int_t ngx_http_darkroom_prodigi_item(
    ngx_http_darkroom_lab_call_t *call, cJSON *doc, cJSON *it, cJSON *items,
    ngx_http_darkroom_lab_result_t *res);
static const char *ngx_http_darkroom_prodigi_method(
    ngx_http_darkroom_lab_call_t *call, cJSON *doc);
static char *ngx_http_darkroom_prodigi_order(
    ngx_http_darkroom_lab_call_t *call, cJSON *doc,
    ngx_http_darkroom_lab_result_t *res);
static void ngx_http_darkroom_prodigi_submit(
    ngx_http_darkroom_lab_call_t *call, cJSON *doc,
    ngx_http_darkroom_lab_result_t *res);
static void ngx_http_darkroom_prodigi_refused(cJSON *answer,
    ngx_http_darkroom_lab_result_t *res);
static ngx_int_t ngx_http_darkroom_prodigi_state(cJSON *order,
    ngx_http_darkroom_lab_state_t *st);
static void ngx_http_darkroom_prodigi_fetch(ngx_http_darkroom_lab_call_t *call,
    const char *order, ngx_http_darkroom_lab_state_t *st,
    ngx_http_darkroom_lab_result_t *res);
static void ngx_http_darkroom_prodigi_cancel(
    ngx_http_darkroom_lab_call_t *call, const char *order,
    ngx_http_darkroom_lab_result_t *res);
static const char *ngx_http_darkroom_prodigi_event(cJSON *body);
static ngx_int_t ngx_http_darkroom_prodigi_same(cJSON *doc, cJSON *order,
    ngx_http_darkroom_lab_result_t *res);
static void ngx_http_darkroom_prodigi_issues(cJSON *status,
    ngx_http_darkroom_lab_state_t *st);
static ngx_int_t ngx_http_darkroom_prodigi_shipments(cJSON *ships,
    ngx_http_darkroom_lab_state_t *st);


/*
 * Prodigi resends a create safely (idempotencyKey) and a cancel repeats;
 * it calls back (darkroom_lab_callback prodigi) and cancels by API.
 */

const ngx_http_darkroom_lab_driver_t  ngx_http_darkroom_lab_prodigi = {
    "prodigi",                             /* name */
    NULL,                                  /* api: one */
    0,                                     /* protocol */
    "prodigi",                             /* brand */
    "Prodigi's dashboard",                 /* site */
    "X-API-Key: %.*s",                     /* auth */
    offsetof(ngx_http_darkroom_labs_conf_t, prodigi),
    1,                                     /* resend_safe */
    ngx_http_darkroom_prodigi_submit,
    ngx_http_darkroom_prodigi_fetch,
    ngx_http_darkroom_prodigi_cancel,
    ngx_http_darkroom_prodigi_event
};


static cJSON *
ngx_http_darkroom_prodigi_recipient(cJSON *doc)
{
    cJSON       *rcpt, *addr, *a;
    const char  *s;

    a = cJSON_GetObjectItemCaseSensitive(doc, "address");

    rcpt = cJSON_CreateObject();
    addr = cJSON_AddObjectToObject(rcpt, "address");

    if (rcpt == NULL || addr == NULL) {
        cJSON_Delete(rcpt);
        return NULL;
    }

    s = ngx_http_darkroom_json_str(doc, "name");
    cJSON_AddStringToObject(rcpt, "name", s ? s : "");

    s = ngx_http_darkroom_json_str(doc, "email");
    if (s) {
        cJSON_AddStringToObject(rcpt, "email", s);
    }

    /* recommended: carriers call when a delivery needs it */
    s = ngx_http_darkroom_json_str(doc, "phone");
    if (s && *s) {
        cJSON_AddStringToObject(rcpt, "phoneNumber", s);
    }

    s = ngx_http_darkroom_json_str(a, "line1");
    cJSON_AddStringToObject(addr, "line1", s ? s : "");

    s = ngx_http_darkroom_json_str(a, "line2");
    if (s && *s) {
        cJSON_AddStringToObject(addr, "line2", s);
    }

    s = ngx_http_darkroom_json_str(a, "postal_code");
    cJSON_AddStringToObject(addr, "postalOrZipCode", s ? s : "");

    s = ngx_http_darkroom_json_str(a, "country");
    cJSON_AddStringToObject(addr, "countryCode", s ? s : "");

    s = ngx_http_darkroom_json_str(a, "city");
    cJSON_AddStringToObject(addr, "townOrCity", s ? s : "");

    s = ngx_http_darkroom_json_str(a, "state");
    if (s && *s) {
        cJSON_AddStringToObject(addr, "stateOrCounty", s);
    }

    return rcpt;
}


/*
 * the signed link of an item's print file: a gallery line's (the item's
 * "gallery") is the gallery's original
 */

static ngx_int_t
ngx_http_darkroom_prodigi_asset(ngx_http_darkroom_lab_call_t *call,
    cJSON *it, const char *print, char *url, size_t size,
    ngx_http_darkroom_lab_result_t *res)
{
    ngx_uint_t  gallery;

    gallery = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(it, "gallery"));

    if (ngx_http_darkroom_lab_asset_url(call, print, gallery, url, size)
        != NGX_OK)
    {
        res->rc = NGX_DECLINED;
        ngx_http_darkroom_lab_error(res, "cannot sign a URL for the "
                                    "print file \"%s\"%s", print,
                                    gallery ? " of the gallery (is "
                                    "darkroom_lab_gallery_asset_url set?)"
                                    : "");
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* one item: SKU, copies, sizing, what the customer paid, the asset */

static ngx_int_t
ngx_http_darkroom_prodigi_item(ngx_http_darkroom_lab_call_t *call,
    cJSON *doc, cJSON *it, cJSON *items, ngx_http_darkroom_lab_result_t *res)
{
    char         ref[NGX_HTTP_DARKROOM_LAB_REF_LEN];
    char         url[NGX_HTTP_DARKROOM_LAB_ASSET_LEN];
    cJSON       *item, *assets, *asset, *attrs, *line, *copies, *cost;
    const char  *order, *print, *amount, *currency, *sku, *sizing;

    order = ngx_http_darkroom_json_str(doc, "order");
    currency = ngx_http_darkroom_json_str(doc, "currency");

    line = cJSON_GetObjectItemCaseSensitive(it, "line");
    copies = cJSON_GetObjectItemCaseSensitive(it, "copies");
    print = ngx_http_darkroom_json_str(it, "print");

    if (print == NULL || *print == '\0') {
        res->rc = NGX_DECLINED;
        ngx_http_darkroom_lab_error(res, "photo \"%s\" has no print "
                                    "file",
                                    ngx_http_darkroom_json_str(it,
                                                              "photo"));
        return NGX_ERROR;
    }

    if (ngx_http_darkroom_prodigi_asset(call, it, print, url, sizeof(url),
                                        res)
        != NGX_OK)
    {
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
    sizing = ngx_http_darkroom_json_str(it, "sizing");

    if (cJSON_AddStringToObject(item, "merchantReference", ref) == NULL
        || cJSON_AddStringToObject(item, "sku", sku ? sku : "") == NULL
        || cJSON_AddNumberToObject(item, "copies",
                                   cJSON_IsNumber(copies) ? copies->valueint
                                                          : 1) == NULL
        || (sizing && cJSON_AddStringToObject(item, "sizing", sizing)
                      == NULL))
    {
        goto nomem;
    }

    /* what the customer paid per copy: customs declarations */
    amount = ngx_http_darkroom_json_str(it, "cost");
    if (amount && currency) {
        cost = cJSON_AddObjectToObject(item, "recipientCost");
        if (cJSON_AddStringToObject(cost, "amount", amount) == NULL
            || cJSON_AddStringToObject(cost, "currency", currency) == NULL)
        {
            goto nomem;
        }
    }

    attrs = cJSON_GetObjectItemCaseSensitive(it, "attributes");
    assets = cJSON_AddArrayToObject(item, "assets");
    asset = cJSON_CreateObject();

    if (!cJSON_AddItemToArray(assets, asset)) {
        cJSON_Delete(asset);
        goto nomem;
    }

    if (!cJSON_AddItemToObject(item, "attributes",
                               attrs ? cJSON_Duplicate(attrs, 1)
                                     : cJSON_CreateObject())
        || cJSON_AddStringToObject(asset, "printArea", "default") == NULL
        || cJSON_AddStringToObject(asset, "url", url) == NULL)
    {
        goto nomem;
    }

    return NGX_OK;

nomem:

    res->rc = NGX_AGAIN;
    ngx_http_darkroom_lab_error(res, "prodigi: no memory for the order's "
                                "items");
    return NGX_ERROR;
}


/*
 * Prodigi's shippingMethod for the shipping the customer paid for (the
 * order's method, one of Prodigi's own in lower case); an order priced
 * before shipping methods, darkroom_prodigi_shipping_method.
 */

static const char *
ngx_http_darkroom_prodigi_method(ngx_http_darkroom_lab_call_t *call,
    cJSON *doc)
{
    ngx_uint_t    i;
    const char   *paid;

    static const char  *methods[] = {
        "Budget", "Standard", "Express", "Overnight", NULL
    };

    paid = ngx_http_darkroom_json_str(doc, "shipping_method");

    for (i = 0; paid && methods[i]; i++) {
        if (strcasecmp(paid, methods[i]) == 0) {
            return methods[i];
        }
    }

    return (const char *) call->lcf->prodigi_shipping.data;
}


/*
 * The create request from lab_submit_json(): a malloc'd JSON text, or
 * NULL with res->error set.
 */

static char *
ngx_http_darkroom_prodigi_order(ngx_http_darkroom_lab_call_t *call,
    cJSON *doc, ngx_http_darkroom_lab_result_t *res)
{
    char        *text;
    cJSON       *body, *items, *it, *rcpt, *meta;
    const char  *order;

    order = ngx_http_darkroom_json_str(doc, "order");

    body = cJSON_CreateObject();
    if (body == NULL) {
        ngx_http_darkroom_lab_error(res, "no memory");
        return NULL;
    }

    cJSON_AddStringToObject(body, "merchantReference", order ? order : "");
    cJSON_AddStringToObject(body, "idempotencyKey",
                            ngx_http_darkroom_json_str(doc,
                                                      "idempotency_key"));
    cJSON_AddStringToObject(body, "shippingMethod",
                            ngx_http_darkroom_prodigi_method(call, doc));

    if (call->callback) {
        cJSON_AddStringToObject(body, "callbackUrl", call->callback);
    }

    rcpt = ngx_http_darkroom_prodigi_recipient(doc);
    if (rcpt == NULL) {
        cJSON_Delete(body);
        ngx_http_darkroom_lab_error(res, "no memory");
        return NULL;
    }

    cJSON_AddItemToObject(body, "recipient", rcpt);

    items = cJSON_AddArrayToObject(body, "items");
    if (items == NULL) {
        cJSON_Delete(body);
        ngx_http_darkroom_lab_error(res, "no memory");
        return NULL;
    }

    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(doc, "items")) {
        if (ngx_http_darkroom_prodigi_item(call, doc, it, items, res)
            != NGX_OK)
        {
            cJSON_Delete(body);
            return NULL;
        }
    }

    meta = cJSON_AddObjectToObject(body, "metadata");
    cJSON_AddNumberToObject(meta, "darkroomLabOrder",
                            cJSON_GetNumberValue(
                                cJSON_GetObjectItemCaseSensitive(doc, "id")));

    text = cJSON_PrintUnformatted(body);
    cJSON_Delete(body);

    if (text == NULL) {
        ngx_http_darkroom_lab_error(res, "no memory");
    }

    return text;
}


static void
ngx_http_darkroom_prodigi_submit(ngx_http_darkroom_lab_call_t *call,
    cJSON *doc, ngx_http_darkroom_lab_result_t *res)
{
    char        *body;
    cJSON       *answer, *order;
    const char  *outcome, *id;

    body = ngx_http_darkroom_prodigi_order(call, doc, res);
    if (body == NULL) {
        if (res->rc == NGX_OK) {
            res->rc = NGX_AGAIN;
        }
        return;
    }

    answer = NULL;

    ngx_http_darkroom_lab_http(call, "POST", "/v4.0/Orders", body, &answer,
                               res);
    free(body);

    if (res->rc == NGX_DECLINED) {
        ngx_http_darkroom_prodigi_refused(answer, res);
        cJSON_Delete(answer);
        return;
    }

    if (res->rc != NGX_OK) {
        cJSON_Delete(answer);
        return;
    }

    outcome = ngx_http_darkroom_json_str(answer, "outcome");
    order = cJSON_GetObjectItemCaseSensitive(answer, "order");
    id = ngx_http_darkroom_json_str(order, "id");

    if (outcome == NULL || id == NULL || *id == '\0') {
        res->rc = NGX_AGAIN;
        ngx_http_darkroom_lab_error(res, "prodigi: answer %ld has no "
                                    "outcome or order id", res->status);
        cJSON_Delete(answer);
        return;
    }

    if (strcasecmp(outcome, "AlreadyExists") == 0
        && ngx_http_darkroom_prodigi_same(doc, order, res) != NGX_OK)
    {
        free(res->detail);
        res->detail = cJSON_PrintUnformatted(answer);
        cJSON_Delete(answer);
        return;
    }

    if (strcasecmp(outcome, "Created") != 0
        && strcasecmp(outcome, "CreatedWithIssues") != 0
        && strcasecmp(outcome, "AlreadyExists") != 0
        && strcasecmp(outcome, "OnHold") != 0)
    {
        /* an outcome we do not know, with an order: keep it, say so */
        ngx_http_darkroom_lab_error(res, "prodigi: unknown outcome \"%s\"",
                                    outcome);
    }

    ngx_cpystrn((u_char *) res->lab_order_id, (u_char *) id,
                sizeof(res->lab_order_id));
    ngx_cpystrn((u_char *) res->outcome, (u_char *) outcome,
                sizeof(res->outcome));

    /* the issues of CreatedWithIssues and OnHold, for the admin API */
    res->detail = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(
                      cJSON_GetObjectItemCaseSensitive(order, "status"),
                      "issues"));

    cJSON_Delete(answer);
}


/*
 * An AlreadyExists answer is ours only if it is the order this key made:
 * the same key and merchantReference (a restored database, another shop on
 * the account or a reused key would name someone else's).
 */

static ngx_int_t
ngx_http_darkroom_prodigi_same(cJSON *doc, cJSON *order,
    ngx_http_darkroom_lab_result_t *res)
{
    const char  *key, *ref, *their_key, *their_ref;

    key = ngx_http_darkroom_json_str(doc, "idempotency_key");
    ref = ngx_http_darkroom_json_str(doc, "order");
    their_key = ngx_http_darkroom_json_str(order, "idempotencyKey");
    their_ref = ngx_http_darkroom_json_str(order, "merchantReference");

    if ((their_key == NULL || (key && strcmp(key, their_key) == 0))
        && their_ref && ref && strcmp(ref, their_ref) == 0)
    {
        return NGX_OK;
    }

    res->rc = NGX_DECLINED;
    ngx_http_darkroom_lab_error(res, "prodigi answered AlreadyExists with "
        "order %s (merchantReference \"%s\"), not this one: the "
        "idempotency key was used before",
        ngx_http_darkroom_json_str(order, "id")
        ? ngx_http_darkroom_json_str(order, "id") : "?",
        their_ref ? their_ref : "");

    return NGX_ERROR;
}


/*
 * 400 {"statusCode":400,"outcome":"ValidationFailed","failures":
 * {"recipient.address.countryCode":[{"code":"Required",...}], ...}}
 */

static void
ngx_http_darkroom_prodigi_refused(cJSON *answer,
    ngx_http_darkroom_lab_result_t *res)
{
    int          n;
    char        *p, *last;
    cJSON       *failures, *f, *e;
    const char  *outcome, *code;

    outcome = ngx_http_darkroom_json_str(answer, "outcome");
    failures = cJSON_GetObjectItemCaseSensitive(answer, "failures");

    ngx_http_darkroom_lab_refused(res, answer,
                                  "prodigi refused the order (%ld %s)",
                                  res->status,
                                  outcome ? outcome : "no outcome");

    p = res->error + ngx_strlen(res->error);
    last = res->error + sizeof(res->error);

    cJSON_ArrayForEach(f, failures) {
        cJSON_ArrayForEach(e, f) {
            code = ngx_http_darkroom_json_str(e, "code");
            n = snprintf(p, last - p, "; %s: %s", f->string ? f->string : "",
                         code ? code : "invalid");
            p += ngx_min(n, last - p - 1);
        }
    }
}


/*
 * What needs a person in an order's status: its issues (errorCode and
 * description, e.g. order.items.assets.FailedToDownload) and any step of
 * its details in "Error".  st->stage becomes "attention", with the reason.
 */

static void
ngx_http_darkroom_prodigi_issues(cJSON *status,
    ngx_http_darkroom_lab_state_t *st)
{
    int          n;
    char        *p, *last;
    cJSON       *i, *d;
    const char  *code, *desc;

    p = st->reason;
    last = st->reason + sizeof(st->reason);

    cJSON_ArrayForEach(i, cJSON_GetObjectItemCaseSensitive(status, "issues"))
    {
        code = ngx_http_darkroom_json_str(i, "errorCode");
        desc = ngx_http_darkroom_json_str(i, "description");
        n = snprintf(p, last - p, "%s%s%s%s", p == st->reason
                     ? "prodigi: " : "; ", code ? code : "issue",
                     desc ? ": " : "", desc ? desc : "");
        p += ngx_min(n, last - p - 1);
    }

    cJSON_ArrayForEach(d, cJSON_GetObjectItemCaseSensitive(status, "details"))
    {
        if (d->string && cJSON_IsString(d)
            && strcasecmp(d->valuestring, "Error") == 0)
        {
            n = snprintf(p, last - p, "%s%s failed", p == st->reason
                         ? "prodigi: " : "; ", d->string);
            p += ngx_min(n, last - p - 1);
        }
    }

    if (p != st->reason) {
        st->stage = "attention";
    }
}


/* the shipments made so far, in darkroom's words */

static ngx_int_t
ngx_http_darkroom_prodigi_shipments(cJSON *ships,
    ngx_http_darkroom_lab_state_t *st)
{
    cJSON       *s, *out, *o, *carrier, *tracking;
    const char  *v;

    out = cJSON_CreateArray();
    if (out == NULL) {
        return NGX_ERROR;
    }

    cJSON_ArrayForEach(s, ships) {
        o = cJSON_CreateObject();
        cJSON_AddItemToArray(out, o);

        carrier = cJSON_GetObjectItemCaseSensitive(s, "carrier");
        tracking = cJSON_GetObjectItemCaseSensitive(s, "tracking");

        v = ngx_http_darkroom_json_str(s, "id");
        cJSON_AddStringToObject(o, "id", v ? v : "");

        if ((v = ngx_http_darkroom_json_str(carrier, "name"))) {
            cJSON_AddStringToObject(o, "carrier", v);
        }

        if ((v = ngx_http_darkroom_json_str(carrier, "service"))) {
            cJSON_AddStringToObject(o, "service", v);
        }

        if ((v = ngx_http_darkroom_json_str(tracking, "number"))) {
            cJSON_AddStringToObject(o, "tracking_number", v);
        }

        if ((v = ngx_http_darkroom_json_str(tracking, "url"))) {
            cJSON_AddStringToObject(o, "tracking_url", v);
        }

        if ((v = ngx_http_darkroom_json_str(s, "dispatchDate"))) {
            cJSON_AddStringToObject(o, "dispatched_at", v);
        }

        if (cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(s, "items"))) {
            cJSON_AddItemToObject(o, "items", cJSON_Duplicate(
                cJSON_GetObjectItemCaseSensitive(s, "items"), 1));
        }
    }

    st->shipments = cJSON_PrintUnformatted(out);
    cJSON_Delete(out);

    return st->shipments ? NGX_OK : NGX_ERROR;
}


/*
 * The order's status: stage InProgress, Complete or Cancelled, with
 * issues, details (downloadAssets, printReadyAssetsPrepared,
 * allocateProductionLocation, inProduction, shipping: NotStarted,
 * InProgress, Complete, Error) and the shipments made so far.
 */

static ngx_int_t
ngx_http_darkroom_prodigi_state(cJSON *order,
    ngx_http_darkroom_lab_state_t *st)
{
    cJSON       *status, *details, *ships;
    const char  *stage, *prod, *ship;

    status = cJSON_GetObjectItemCaseSensitive(order, "status");
    details = cJSON_GetObjectItemCaseSensitive(status, "details");
    ships = cJSON_GetObjectItemCaseSensitive(order, "shipments");

    stage = ngx_http_darkroom_json_str(status, "stage");
    prod = ngx_http_darkroom_json_str(details, "inProduction");
    ship = ngx_http_darkroom_json_str(details, "shipping");

    if (stage == NULL) {
        return NGX_ERROR;
    }

    snprintf(st->lab_status, sizeof(st->lab_status), "%s", stage);

    if (strcasecmp(stage, "Cancelled") == 0) {
        st->stage = "cancelled";

    } else if (strcasecmp(stage, "Complete") == 0
               || (ship && strcasecmp(ship, "Complete") == 0))
    {
        st->stage = "shipped";

    } else if ((prod && (strcasecmp(prod, "InProgress") == 0
                         || strcasecmp(prod, "Complete") == 0))
               || cJSON_GetArraySize(ships) > 0)
    {
        st->stage = "in_production";

    } else {
        st->stage = "submitted";
    }

    /* an issue holds up an order still being made, not one that shipped */
    if (strcasecmp(stage, "InProgress") == 0
        && (ngx_strcmp(st->stage, "submitted") == 0
            || ngx_strcmp(st->stage, "in_production") == 0))
    {
        ngx_http_darkroom_prodigi_issues(status, st);
    }

    return ngx_http_darkroom_prodigi_shipments(ships, st);
}


static void
ngx_http_darkroom_prodigi_fetch(ngx_http_darkroom_lab_call_t *call,
    const char *order, ngx_http_darkroom_lab_state_t *st,
    ngx_http_darkroom_lab_result_t *res)
{
    char  path[NGX_HTTP_DARKROOM_LAB_PATH_LEN];

    snprintf(path, sizeof(path), "/v4.0/Orders/%s", order);

    ngx_http_darkroom_lab_fetch(call, path, "order",
                                ngx_http_darkroom_prodigi_state, st, res);
}


/*
 * 200 {"outcome":"Cancelled","order":{...}}, or an outcome saying it is
 * too late (FailedToCancel, ActionNotAvailable): rc NGX_DECLINED then.
 */

static void
ngx_http_darkroom_prodigi_cancel(ngx_http_darkroom_lab_call_t *call,
    const char *id, ngx_http_darkroom_lab_result_t *res)
{
    char         path[NGX_HTTP_DARKROOM_LAB_PATH_LEN];
    cJSON       *answer;
    const char  *outcome;

    snprintf(path, sizeof(path), "/v4.0/Orders/%s/actions/cancel", id);

    answer = NULL;

    ngx_http_darkroom_lab_http(call, "POST", path, "{}", &answer, res);

    outcome = ngx_http_darkroom_json_str(answer, "outcome");

    if (outcome) {
        ngx_cpystrn((u_char *) res->outcome, (u_char *) outcome,
                    sizeof(res->outcome));
    }

    if (res->rc == NGX_OK
        && (outcome == NULL || strcasecmp(outcome, "Cancelled") != 0))
    {
        res->rc = NGX_DECLINED;
        ngx_http_darkroom_lab_error(res, "prodigi did not cancel order %s: "
                                    "%s", id,
                                    outcome ? outcome : "no outcome");

    } else if (res->rc == NGX_DECLINED) {
        ngx_http_darkroom_lab_error(res, "prodigi did not cancel order %s: "
                                    "%ld %s", id, res->status,
                                    outcome ? outcome : "");
    }

    cJSON_Delete(answer);
}


/* a callback's body is not trusted: only its event id is kept */

static const char *
ngx_http_darkroom_prodigi_event(cJSON *body)
{
    return ngx_http_darkroom_json_str(body, "id");
}
