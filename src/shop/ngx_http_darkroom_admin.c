
/*
 * darkroom: the admin API, for the shop's owner and their tools.
 *
 * Bearer tokens from darkroom_admin_token_file (several for rotation),
 * compared in constant time before anything else.  Paths are relative to
 * the location:
 *
 *   GET  products | photos           POST products | photos (upsert)
 *   GET  orders?status=&email=&since=&until=&limit=&offset=
 *   GET  orders/<ref>                POST orders/<ref>/review {"reason"}
 *   POST orders/<ref>/refund {"amount"}   (omit amount: all that is left)
 *   POST orders/<ref>/resolve {"to": "paid"|"cancelled", "note",
 *                             "refund": true}   (cancel with refund)
 *   POST orders/<ref>/note {"note"}
 *   POST orders/<ref>/downloads/reissue   (new links, expiry, count)
 *   GET  jobs?state=due|dead|done    POST jobs/<id>/retry
 *   GET  emails?status=queued|sent|failed&order=<ref>&limit=
 *   POST emails/<id>/resend          (a new job; 409 while still queued)
 *   GET | POST  settings | zones | rates | tax
 *   DELETE      zones/<id> | rates/<id> | tax/<country>
 *   GET  discounts | discounts/<code> | discounts/<code>/redemptions
 *   POST discounts | discounts/<code> (upsert)
 *   POST discounts/<code>/deactivate
 *   GET  price-sheets | price-sheets/<id>
 *   PUT  price-sheets/<id> {"name","items":[{"product","position",
 *                           "prices":{"GBP":2500}}]}   (replaces it)
 *   DELETE price-sheets/<id>
 *   GET | POST retention             (the retention periods, owner only)
 *   GET  personal-data?email=        (all held about an address, owner)
 *   POST personal-data/erase {"email"}  (anonymised, money kept; owner)
 *
 * Reads and writes are SQL functions (sql/005_admin.sql) taking the body
 * as one jsonb parameter; a refund also asks Stripe, in the same task.
 * Actions on an order name who took them (detail "actor" of its events):
 * the console account's email, "key:<name>", or "admin" for a token.  A
 * refund, and a resolve with "refund": true, need the refunds scope.
 */


#include "ngx_http_darkroom_shop.h"


typedef enum {
    NGX_HTTP_DARKROOM_ADMIN_PRODUCTS = 0,
    NGX_HTTP_DARKROOM_ADMIN_PRODUCT_PUT,
    NGX_HTTP_DARKROOM_ADMIN_PHOTOS,
    NGX_HTTP_DARKROOM_ADMIN_PHOTO_PUT,
    NGX_HTTP_DARKROOM_ADMIN_ORDERS,
    NGX_HTTP_DARKROOM_ADMIN_ORDER,
    NGX_HTTP_DARKROOM_ADMIN_REVIEW,
    NGX_HTTP_DARKROOM_ADMIN_REFUND,
    NGX_HTTP_DARKROOM_ADMIN_RESOLVE,
    NGX_HTTP_DARKROOM_ADMIN_REISSUE,
    NGX_HTTP_DARKROOM_ADMIN_NOTE,
    NGX_HTTP_DARKROOM_ADMIN_JOBS,
    NGX_HTTP_DARKROOM_ADMIN_JOB_RETRY,
    NGX_HTTP_DARKROOM_ADMIN_EMAILS,
    NGX_HTTP_DARKROOM_ADMIN_EMAIL_RESEND,
    NGX_HTTP_DARKROOM_ADMIN_DISCOUNTS,
    NGX_HTTP_DARKROOM_ADMIN_PRICE_SHEETS
} ngx_http_darkroom_admin_route_e;


#define NGX_HTTP_DARKROOM_ADMIN_ARGS  6
/* who acts: a console account's email, "key:<name>", or "admin" (token) */
#define NGX_HTTP_DARKROOM_ADMIN_ACTOR                                        \
    ((t->auth && t->auth->kind != NGX_HTTP_DARKROOM_AUTH_TOKEN                \
      && t->auth->actor[0]) ? t->auth->actor : "admin")


typedef struct {
    ngx_http_darkroom_admin_route_e   route;
    char                             *body;      /* NUL-terminated */
    char                             *arg[NGX_HTTP_DARKROOM_ADMIN_ARGS];
    ngx_http_darkroom_shop_conf_t    *scf;       /* read-only */
    const char                       *sql;       /* a data route's: arg[0] */
    unsigned                          pricing:1; /* admin_pricing() */
} ngx_http_darkroom_admin_t;


static ngx_int_t ngx_http_darkroom_admin_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_darkroom_admin_prepare(ngx_http_request_t *r,
    ngx_http_darkroom_task_t *t);
static ngx_int_t ngx_http_darkroom_admin_route(ngx_http_request_t *r,
    ngx_http_darkroom_admin_t *a, ngx_str_t *seg, ngx_uint_t n);
static ngx_int_t ngx_http_darkroom_admin_pricing_route(ngx_http_request_t *r,
    ngx_http_darkroom_admin_t *a, ngx_str_t *seg, ngx_uint_t n);
static ngx_int_t ngx_http_darkroom_admin_order_route(ngx_http_request_t *r,
    ngx_http_darkroom_admin_t *a, ngx_str_t *seg, ngx_uint_t n,
    ngx_uint_t get, ngx_uint_t post);
static ngx_int_t ngx_http_darkroom_admin_discount_route(
    ngx_http_darkroom_admin_t *a, ngx_pool_t *pool, ngx_str_t *seg,
    ngx_uint_t n, ngx_uint_t get);
static ngx_int_t ngx_http_darkroom_admin_sheet_route(ngx_http_request_t *r,
    ngx_http_darkroom_admin_t *a, ngx_str_t *seg, ngx_uint_t n);
static ngx_int_t ngx_http_darkroom_admin_data_route(ngx_http_request_t *r,
    ngx_http_darkroom_admin_t *a, ngx_str_t *seg, ngx_uint_t n,
    ngx_uint_t get);
static PGresult *ngx_http_darkroom_admin_upsert(ngx_http_darkroom_task_t *t);
static PGresult *ngx_http_darkroom_admin_orders(ngx_http_darkroom_task_t *t);
static PGresult *ngx_http_darkroom_admin_action(ngx_http_darkroom_task_t *t);
static void ngx_http_darkroom_admin_data(ngx_http_darkroom_task_t *t);
static void ngx_http_darkroom_admin_work(ngx_http_darkroom_task_t *t);
static void ngx_http_darkroom_admin_pricing(ngx_http_darkroom_task_t *t);
static void ngx_http_darkroom_admin_answer(ngx_http_darkroom_task_t *t,
    PGresult *res);
static void ngx_http_darkroom_admin_refund(ngx_http_darkroom_task_t *t);
static void ngx_http_darkroom_admin_resolve(ngx_http_darkroom_task_t *t);
static ngx_int_t ngx_http_darkroom_admin_refund_call(
    ngx_http_darkroom_task_t *t, PGresult *res, cJSON **refund);
static ngx_int_t ngx_http_darkroom_admin_amount(ngx_http_darkroom_task_t *t,
    char *amt, size_t size, const char **param);
static void ngx_http_darkroom_admin_refunded(ngx_http_darkroom_task_t *t,
    PGresult *res, cJSON *refund);


char *
ngx_http_darkroom_admin(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_darkroom_shop_conf_t  *scf;

    scf = ngx_http_conf_get_module_main_conf(cf,
                                             ngx_http_darkroom_shop_module);

    if (ngx_http_darkroom_use(cf, cmd, ngx_http_darkroom_admin_handler,
                              &scf->use_admin)
        == NULL)
    {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_darkroom_admin_handler(ngx_http_request_t *r)
{
    if (ngx_http_darkroom_admin_auth(r) != NGX_OK) {
        return ngx_http_darkroom_admin_refuse(r);
    }

    return ngx_http_darkroom_task_start(r, sizeof(ngx_http_darkroom_admin_t),
                                        ngx_http_darkroom_admin_prepare,
                                        ngx_http_darkroom_admin_work, NULL);
}


static ngx_int_t
ngx_http_darkroom_admin_prepare(ngx_http_request_t *r,
    ngx_http_darkroom_task_t *t)
{
    cJSON                      *j;
    ngx_int_t                   n;
    ngx_str_t                   seg[4];
    ngx_http_darkroom_admin_t  *a = t->data;

    a->scf = ngx_http_get_module_main_conf(r, ngx_http_darkroom_shop_module);

    n = ngx_http_darkroom_path_split(r, seg, 4);

    if (n <= 0 || ngx_http_darkroom_admin_route(r, a, seg, n) != NGX_OK) {
        if (r->header_sent) {
            return NGX_ERROR;
        }

        return ngx_http_darkroom_send_error(r, NGX_HTTP_NOT_FOUND,
                   "not_found", "There is no such admin resource.");
    }

    if (r->header_sent) {
        return NGX_ERROR;
    }

    a->body = ngx_http_darkroom_cstr(r->pool, t->body.data, t->body.len);
    if (a->body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (a->pricing) {
        t->work = ngx_http_darkroom_admin_pricing;
    }

    if (a->sql) {
        t->work = ngx_http_darkroom_admin_data;

        if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
            a->arg[0] = a->body;
        }
    }

    /* a way out of review that refunds asks for the refunds scope too */

    if (a->route == NGX_HTTP_DARKROOM_ADMIN_RESOLVE) {
        j = cJSON_Parse(a->body);

        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "refund"))) {
            ngx_http_darkroom_admin_scope(r, "refunds");
        }

        cJSON_Delete(j);
    }

    if (a->route == NGX_HTTP_DARKROOM_ADMIN_REFUND) {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "darkroom admin: refund of order \"%s\" asked",
                       a->arg[0]);
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_darkroom_admin_route(ngx_http_request_t *r,
    ngx_http_darkroom_admin_t *a, ngx_str_t *seg, ngx_uint_t n)
{
    ngx_uint_t  get, post;

    get = (r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD)) ? 1 : 0;
    post = (r->method & (NGX_HTTP_POST|NGX_HTTP_PUT)) ? 1 : 0;

    if (ngx_http_darkroom_is(seg[0], "settings")
        || ngx_http_darkroom_is(seg[0], "zones")
        || ngx_http_darkroom_is(seg[0], "rates")
        || ngx_http_darkroom_is(seg[0], "tax"))
    {
        return ngx_http_darkroom_admin_pricing_route(r, a, seg, n);
    }

    if (ngx_http_darkroom_is(seg[0], "price-sheets")) {
        return ngx_http_darkroom_admin_sheet_route(r, a, seg, n);
    }

    if (!get && !post) {
        (void) ngx_http_darkroom_send_error(r, NGX_HTTP_NOT_ALLOWED,
                   "method_not_allowed", "Use GET to read and POST to "
                   "change.");
        return NGX_OK;
    }

    if (n == 1 && ngx_http_darkroom_is(seg[0], "products")) {
        a->route = get ? NGX_HTTP_DARKROOM_ADMIN_PRODUCTS
                       : NGX_HTTP_DARKROOM_ADMIN_PRODUCT_PUT;
        return NGX_OK;
    }

    if (n == 1 && ngx_http_darkroom_is(seg[0], "photos")) {
        a->route = get ? NGX_HTTP_DARKROOM_ADMIN_PHOTOS
                       : NGX_HTTP_DARKROOM_ADMIN_PHOTO_PUT;
        return NGX_OK;
    }

    if (n == 1 && get && ngx_http_darkroom_is(seg[0], "jobs")) {
        a->route = NGX_HTTP_DARKROOM_ADMIN_JOBS;
        a->arg[0] = ngx_http_darkroom_query_arg(r, "state");
        a->arg[1] = ngx_http_darkroom_query_arg(r, "limit");
        return NGX_OK;
    }

    if (n == 1 && get && ngx_http_darkroom_is(seg[0], "emails")) {
        a->route = NGX_HTTP_DARKROOM_ADMIN_EMAILS;
        a->arg[0] = ngx_http_darkroom_query_arg(r, "status");
        a->arg[1] = ngx_http_darkroom_query_arg(r, "order");
        a->arg[2] = ngx_http_darkroom_query_arg(r, "limit");
        return NGX_OK;
    }

    if (n == 3 && post && ngx_http_darkroom_is(seg[0], "jobs")
        && ngx_http_darkroom_is(seg[2], "retry")
        && ngx_atoi(seg[1].data, seg[1].len) != NGX_ERROR)
    {
        a->route = NGX_HTTP_DARKROOM_ADMIN_JOB_RETRY;
        a->arg[0] = ngx_http_darkroom_cstr(r->pool, seg[1].data, seg[1].len);
        return NGX_OK;
    }

    if (n == 3 && post && ngx_http_darkroom_is(seg[0], "emails")
        && ngx_http_darkroom_is(seg[2], "resend")
        && ngx_atoi(seg[1].data, seg[1].len) != NGX_ERROR)
    {
        a->route = NGX_HTTP_DARKROOM_ADMIN_EMAIL_RESEND;
        a->arg[0] = ngx_http_darkroom_cstr(r->pool, seg[1].data, seg[1].len);
        return NGX_OK;
    }

    if (ngx_http_darkroom_is(seg[0], "orders")) {
        return ngx_http_darkroom_admin_order_route(r, a, seg, n, get, post);
    }

    if (ngx_http_darkroom_is(seg[0], "discounts")) {
        return ngx_http_darkroom_admin_discount_route(a, r->pool, seg, n,
                                                      get);
    }

    if (ngx_http_darkroom_is(seg[0], "retention")
        || ngx_http_darkroom_is(seg[0], "personal-data"))
    {
        return ngx_http_darkroom_admin_data_route(r, a, seg, n, get);
    }

    return NGX_DECLINED;
}


/*
 * retention (GET, POST), personal-data?email= (GET), personal-data/erase
 * (POST {"email"}: the address in the body, so the audit row's path does
 * not name it): the owner's alone
 */

static ngx_int_t
ngx_http_darkroom_admin_data_route(ngx_http_request_t *r,
    ngx_http_darkroom_admin_t *a, ngx_str_t *seg, ngx_uint_t n,
    ngx_uint_t get)
{
    if (n == 1 && ngx_http_darkroom_is(seg[0], "retention")) {
        a->sql = get ? "SELECT retention_settings_json()"
                     : "SELECT retention_settings_update($1)";

    } else if (n == 1 && get) {
        a->sql = "SELECT data_request_export($1)";
        a->arg[0] = ngx_http_darkroom_query_arg(r, "email");

    } else if (n == 2 && !get && ngx_http_darkroom_is(seg[1], "erase")) {
        a->sql = "SELECT data_request_erase($1)";

    } else {
        return NGX_DECLINED;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "darkroom admin: %s", a->sql);

    ngx_http_darkroom_admin_scope(r, "owner");

    return NGX_OK;
}


/*
 * discounts, discounts/<code>, discounts/<code>/redemptions | deactivate:
 * arg[0] the verb admin_discount() takes, arg[1] the code (NULL: none)
 */

static ngx_int_t
ngx_http_darkroom_admin_discount_route(ngx_http_darkroom_admin_t *a,
    ngx_pool_t *pool, ngx_str_t *seg, ngx_uint_t n, ngx_uint_t get)
{
    a->route = NGX_HTTP_DARKROOM_ADMIN_DISCOUNTS;

    if (n == 1) {
        a->arg[0] = get ? "list" : "put";
        return NGX_OK;
    }

    if (seg[1].len == 0 || seg[1].len > 32) {
        return NGX_DECLINED;
    }

    a->arg[1] = ngx_http_darkroom_cstr(pool, seg[1].data, seg[1].len);

    if (n == 2) {
        a->arg[0] = get ? "get" : "put";
        return NGX_OK;
    }

    if (get && ngx_http_darkroom_is(seg[2], "redemptions")) {
        a->arg[0] = "redemptions";
        return NGX_OK;
    }

    if (!get && ngx_http_darkroom_is(seg[2], "deactivate")) {
        a->arg[0] = "deactivate";
        return NGX_OK;
    }

    return NGX_DECLINED;
}


/*
 * price-sheets (GET), price-sheets/<id> (GET, PUT, DELETE): arg[0] the
 * verb, arg[1] the id (NULL: all), for admin_price_sheet() in SQL
 */

static ngx_int_t
ngx_http_darkroom_admin_sheet_route(ngx_http_request_t *r,
    ngx_http_darkroom_admin_t *a, ngx_str_t *seg, ngx_uint_t n)
{
    if (n > 2 || (n == 2 && (seg[1].len == 0 || seg[1].len > 64))) {
        return NGX_DECLINED;
    }

    a->route = NGX_HTTP_DARKROOM_ADMIN_PRICE_SHEETS;

    if (r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD)) {
        a->arg[0] = "GET";

    } else if (n == 2 && (r->method & (NGX_HTTP_PUT|NGX_HTTP_POST))) {
        a->arg[0] = "PUT";

    } else if (n == 2 && (r->method & NGX_HTTP_DELETE)) {
        a->arg[0] = "DELETE";

    } else {
        (void) ngx_http_darkroom_send_error(r, NGX_HTTP_NOT_ALLOWED,
                   "method_not_allowed", (n == 1)
                   ? "Use GET to list the price sheets."
                   : "Use GET to read, PUT to write and DELETE to remove.");
        return NGX_OK;
    }

    if (n == 2) {
        a->arg[1] = ngx_http_darkroom_cstr(r->pool, seg[1].data, seg[1].len);
        if (a->arg[1] == NULL) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/*
 * The shop's settings, shipping zones and rates, and tax rates: GET and
 * POST the collection, DELETE one by id (admin_pricing in SQL).
 */

static ngx_int_t
ngx_http_darkroom_admin_pricing_route(ngx_http_request_t *r,
    ngx_http_darkroom_admin_t *a, ngx_str_t *seg, ngx_uint_t n)
{
    if (n > 2 || (n == 2 && seg[1].len == 0)) {
        return NGX_DECLINED;
    }

    if (r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD)) {
        a->arg[2] = "GET";

    } else if (r->method & (NGX_HTTP_POST|NGX_HTTP_PUT)) {
        a->arg[2] = "POST";

    } else if (r->method & NGX_HTTP_DELETE) {
        a->arg[2] = "DELETE";

    } else {
        (void) ngx_http_darkroom_send_error(r, NGX_HTTP_NOT_ALLOWED,
                   "method_not_allowed", "Use GET to read, POST to change "
                   "and DELETE to remove.");
        return NGX_OK;
    }

    a->pricing = 1;
    a->arg[0] = ngx_http_darkroom_cstr(r->pool, seg[0].data, seg[0].len);
    a->arg[1] = (n == 2) ? ngx_http_darkroom_cstr(r->pool, seg[1].data,
                                                  seg[1].len)
                         : NULL;

    return (a->arg[0] == NULL || (n == 2 && a->arg[1] == NULL))
           ? NGX_ERROR : NGX_OK;
}


/*
 * orders, orders/<ref>, orders/<ref>/refund | review | resolve | note,
 * orders/<ref>/downloads/reissue
 */

static ngx_int_t
ngx_http_darkroom_admin_order_route(ngx_http_request_t *r,
    ngx_http_darkroom_admin_t *a, ngx_str_t *seg, ngx_uint_t n,
    ngx_uint_t get, ngx_uint_t post)
{
    if (n == 1 && get) {
        a->route = NGX_HTTP_DARKROOM_ADMIN_ORDERS;
        a->arg[0] = ngx_http_darkroom_query_arg(r, "status");
        a->arg[1] = ngx_http_darkroom_query_arg(r, "email");
        a->arg[2] = ngx_http_darkroom_query_arg(r, "since");
        a->arg[3] = ngx_http_darkroom_query_arg(r, "until");
        a->arg[4] = ngx_http_darkroom_query_arg(r, "limit");
        a->arg[5] = ngx_http_darkroom_query_arg(r, "offset");
        return NGX_OK;
    }

    if (n < 2 || seg[1].len == 0) {
        return NGX_DECLINED;
    }

    a->arg[0] = ngx_http_darkroom_cstr(r->pool, seg[1].data, seg[1].len);

    if (n == 2 && get) {
        a->route = NGX_HTTP_DARKROOM_ADMIN_ORDER;
        return NGX_OK;
    }

    if (n == 3 && post && ngx_http_darkroom_is(seg[2], "refund")) {
        a->route = NGX_HTTP_DARKROOM_ADMIN_REFUND;
        return NGX_OK;
    }

    if (n == 3 && post && ngx_http_darkroom_is(seg[2], "review")) {
        a->route = NGX_HTTP_DARKROOM_ADMIN_REVIEW;
        return NGX_OK;
    }

    if (n == 3 && post && ngx_http_darkroom_is(seg[2], "resolve")) {
        a->route = NGX_HTTP_DARKROOM_ADMIN_RESOLVE;
        return NGX_OK;
    }

    if (n == 4 && post && ngx_http_darkroom_is(seg[2], "downloads")
        && ngx_http_darkroom_is(seg[3], "reissue"))
    {
        a->route = NGX_HTTP_DARKROOM_ADMIN_REISSUE;
        return NGX_OK;
    }

    if (n == 3 && post && ngx_http_darkroom_is(seg[2], "note")) {
        a->route = NGX_HTTP_DARKROOM_ADMIN_NOTE;
        return NGX_OK;
    }

    return NGX_DECLINED;
}


/*
 * POST products | photos: the body, checked to be JSON, to SQL; and all
 * of discounts: the verb, the code and the body (parsed in SQL: bad JSON
 * is a 400 from there)
 */

static PGresult *
ngx_http_darkroom_admin_upsert(ngx_http_darkroom_task_t *t)
{
    cJSON                      *json;
    const char                 *params[3];
    ngx_http_darkroom_admin_t  *a = t->data;

    if (a->route == NGX_HTTP_DARKROOM_ADMIN_DISCOUNTS) {
        params[0] = a->arg[0];
        params[1] = a->arg[1];
        params[2] = a->body;

        return ngx_http_darkroom_db_exec(&t->db,
                   "SELECT admin_discount($1, $2, $3)", 3, params, &t->err);
    }

    params[0] = a->body;

    /* malformed JSON is the client's fault, not a server error */
    json = ngx_http_darkroom_json_object(&t->err, a->body, 0);

    if (json == NULL) {
        return NULL;
    }

    cJSON_Delete(json);

    return ngx_http_darkroom_db_exec(&t->db,
               a->route == NGX_HTTP_DARKROOM_ADMIN_PRODUCT_PUT
               ? "SELECT admin_product_upsert($1::jsonb)"
               : "SELECT admin_photo_upsert($1::jsonb)",
               1, params, &t->err);
}


/* GET orders: the filters, bounded; a malformed one is the client's */

static PGresult *
ngx_http_darkroom_admin_orders(ngx_http_darkroom_task_t *t)
{
    PGresult                   *res;
    const char                 *params[6];
    ngx_http_darkroom_admin_t  *a = t->data;

    params[0] = a->arg[0];
    params[1] = a->arg[1];
    params[2] = a->arg[2];
    params[3] = a->arg[3];
    params[4] = a->arg[4] ? a->arg[4] : "50";
    params[5] = a->arg[5] ? a->arg[5] : "0";

    res = ngx_http_darkroom_db_exec(&t->db,
              "SELECT admin_orders_json($1, $2, $3::timestamptz,"
              " $4::timestamptz, least(greatest($5::int, 1), 500),"
              " greatest($6::int, 0))",
              6, params, &t->err);

    if (res == NULL && t->err.sqlstate[0] == '2'
        && t->err.sqlstate[1] == '2')
    {
        /* data exception: a malformed date or number in the query */
        ngx_http_darkroom_error_set(&t->err, NGX_HTTP_BAD_REQUEST,
                                    "invalid_query",
                                    "since and until are timestamps, "
                                    "limit and offset numbers.");
        t->err.detail[0] = '\0';
    }

    return res;
}


static void
ngx_http_darkroom_admin_work(ngx_http_darkroom_task_t *t)
{
    PGresult                   *res;
    const char                 *params[NGX_HTTP_DARKROOM_ADMIN_ARGS];
    ngx_http_darkroom_admin_t  *a = t->data;

    res = NULL;

    switch (a->route) {

    case NGX_HTTP_DARKROOM_ADMIN_PRODUCTS:
        res = ngx_http_darkroom_db_exec(&t->db,
                  "SELECT admin_products_json()", 0, NULL, &t->err);
        break;

    case NGX_HTTP_DARKROOM_ADMIN_PHOTOS:
        res = ngx_http_darkroom_db_exec(&t->db,
                  "SELECT admin_photos_json()", 0, NULL, &t->err);
        break;

    case NGX_HTTP_DARKROOM_ADMIN_PRODUCT_PUT:
    case NGX_HTTP_DARKROOM_ADMIN_PHOTO_PUT:
    case NGX_HTTP_DARKROOM_ADMIN_DISCOUNTS:
        res = ngx_http_darkroom_admin_upsert(t);
        break;

    case NGX_HTTP_DARKROOM_ADMIN_ORDERS:
        res = ngx_http_darkroom_admin_orders(t);
        break;

    case NGX_HTTP_DARKROOM_ADMIN_ORDER:
        params[0] = a->arg[0];
        res = ngx_http_darkroom_db_exec(&t->db,
                  "SELECT admin_order_json($1)", 1, params, &t->err);
        break;

    case NGX_HTTP_DARKROOM_ADMIN_REVIEW:
    case NGX_HTTP_DARKROOM_ADMIN_NOTE:
        res = ngx_http_darkroom_admin_action(t);
        break;

    case NGX_HTTP_DARKROOM_ADMIN_RESOLVE:
        ngx_http_darkroom_admin_resolve(t);
        return;

    case NGX_HTTP_DARKROOM_ADMIN_REISSUE:
        params[0] = a->arg[0];
        res = ngx_http_darkroom_db_exec(&t->db,
                  "SELECT admin_downloads_reissue($1)", 1, params, &t->err);
        break;

    case NGX_HTTP_DARKROOM_ADMIN_REFUND:
        ngx_http_darkroom_admin_refund(t);
        return;

    case NGX_HTTP_DARKROOM_ADMIN_JOBS:
        params[0] = a->arg[0];
        params[1] = a->arg[1] ? a->arg[1] : "100";
        res = ngx_http_darkroom_db_exec(&t->db,
                  "SELECT admin_jobs_json($1,"
                  " least(greatest($2::int, 1), 1000))",
                  2, params, &t->err);
        break;

    case NGX_HTTP_DARKROOM_ADMIN_EMAILS:
        params[0] = a->arg[0];
        params[1] = a->arg[1];
        params[2] = a->arg[2] ? a->arg[2] : "100";
        res = ngx_http_darkroom_db_exec(&t->db,
                  "SELECT admin_emails_json($1, $2,"
                  " least(greatest($3::int, 1), 1000))",
                  3, params, &t->err);
        break;

    case NGX_HTTP_DARKROOM_ADMIN_JOB_RETRY:
        params[0] = a->arg[0];
        res = ngx_http_darkroom_db_exec(&t->db,
                  "SELECT admin_job_retry($1::bigint)", 1, params, &t->err);
        break;

    case NGX_HTTP_DARKROOM_ADMIN_EMAIL_RESEND:
        params[0] = a->arg[0];
        res = ngx_http_darkroom_db_exec(&t->db,
                  "SELECT admin_email_resend($1::bigint)", 1, params,
                  &t->err);
        break;

    case NGX_HTTP_DARKROOM_ADMIN_PRICE_SHEETS:
        params[0] = a->arg[0];
        params[1] = a->arg[1];
        params[2] = a->body;
        res = ngx_http_darkroom_db_exec(&t->db,
                  "SELECT admin_price_sheet($1, $2, $3)", 3, params,
                  &t->err);
        break;
    }

    ngx_http_darkroom_admin_answer(t, res);
}


/* retention settings and data requests: SQL decides (400, 404) */

static void
ngx_http_darkroom_admin_data(ngx_http_darkroom_task_t *t)
{
    PGresult                   *res;
    const char                 *params[1];
    ngx_http_darkroom_admin_t  *a = t->data;

    params[0] = a->arg[0];

    res = ngx_http_darkroom_db_exec(&t->db, a->sql,
                                    ngx_strstr(a->sql, "$1") ? 1 : 0,
                                    params, &t->err);

    ngx_http_darkroom_admin_answer(t, res);
}


/* the answer of a read or write: a data exception is the client's */

static void
ngx_http_darkroom_admin_answer(ngx_http_darkroom_task_t *t, PGresult *res)
{
    ngx_http_darkroom_admin_t  *a = t->data;

    if (res == NULL) {
        if (t->err.sqlstate[0] == '2' && t->err.sqlstate[1] == '2'
            && t->err.status == NGX_HTTP_INTERNAL_SERVER_ERROR)
        {
            ngx_http_darkroom_error_set(&t->err, NGX_HTTP_BAD_REQUEST,
                                        "invalid_request",
                                        "A value in the request is not "
                                        "valid.");
        }

        return;
    }

    ngx_http_darkroom_task_answer(t, res, "There is no such record.");

    if (a->route == NGX_HTTP_DARKROOM_ADMIN_REISSUE && t->out) {
        ngx_http_darkroom_order_downloads(t);     /* sign the new links */
    }
}


/*
 * settings | zones | rates | tax: the resource, the method, the id and
 * the body (parsed in SQL: bad JSON is a 400 from there) to
 * admin_pricing()
 */

static void
ngx_http_darkroom_admin_pricing(ngx_http_darkroom_task_t *t)
{
    PGresult                   *res;
    const char                 *params[4];
    ngx_http_darkroom_admin_t  *a = t->data;

    params[0] = a->arg[0];
    params[1] = a->arg[2];
    params[2] = a->arg[1];
    params[3] = a->body;

    res = ngx_http_darkroom_db_exec(&t->db,
              "SELECT admin_pricing($1, $2, $3, $4)", 4, params, &t->err);

    ngx_http_darkroom_admin_answer(t, res);
}


/* POST orders/<ref>/review | note, by the admin (the actor) */

static PGresult *
ngx_http_darkroom_admin_action(ngx_http_darkroom_task_t *t)
{
    const char                 *params[3];
    ngx_http_darkroom_admin_t  *a = t->data;

    params[0] = a->arg[0];
    params[1] = a->body;
    params[2] = NGX_HTTP_DARKROOM_ADMIN_ACTOR;

    if (a->route == NGX_HTTP_DARKROOM_ADMIN_REVIEW) {
        return ngx_http_darkroom_db_exec(&t->db,
                   "SELECT admin_order_review($1,"
                   " CASE WHEN $2 = '' THEN NULL"
                   " ELSE ($2::jsonb)->>'reason' END, $3)",
                   3, params, &t->err);
    }

    /* the body is parsed in SQL: bad JSON is a 400 from there */
    return ngx_http_darkroom_db_exec(&t->db,
               "SELECT admin_order_note($1, $2, $3)", 3, params, &t->err);
}


/*
 * Refunds go through Stripe with an idempotency key made from the order's
 * refunded total so far and the amount: a repeated click is the same
 * refund.  The order's amounts change when Stripe's charge.refunded event
 * arrives, so the webhook stays the one writer of money state.
 */

static void
ngx_http_darkroom_admin_refund(ngx_http_darkroom_task_t *t)
{
    cJSON                      *refund;
    PGresult                   *res;
    const char                 *params[2];
    char                        amt[NGX_INT64_LEN + 1];
    ngx_http_darkroom_admin_t  *a = t->data;

    params[0] = a->arg[0];

    if (ngx_http_darkroom_admin_amount(t, amt, sizeof(amt), &params[1])
        != NGX_OK)
    {
        return;
    }

    res = ngx_http_darkroom_db_exec(&t->db,
              "SELECT order_id, payment_intent, amount, idempotency_key"
              " FROM admin_refund_check($1, $2::bigint)",
              2, params, &t->err);

    if (res == NULL) {
        return;
    }

    if (ngx_http_darkroom_admin_refund_call(t, res, &refund) == NGX_OK) {
        ngx_http_darkroom_admin_refunded(t, res, refund);
        cJSON_Delete(refund);
    }

    PQclear(res);
}


/* Stripe's POST /v1/refunds for the row admin_refund_check() gave */

static ngx_int_t
ngx_http_darkroom_admin_refund_call(ngx_http_darkroom_task_t *t,
    PGresult *res, cJSON **refund)
{
    char                       *form;
    size_t                      len, size;
    ngx_int_t                   rc;
    ngx_http_darkroom_admin_t  *a = t->data;

    form = NULL;
    len = 0;
    size = 0;

    rc = ngx_http_darkroom_form_add(&form, &len, &size, "payment_intent",
             ngx_http_darkroom_db_value(res, 0, "payment_intent"));
    if (rc == NGX_OK) {
        rc = ngx_http_darkroom_form_add(&form, &len, &size, "amount",
                 ngx_http_darkroom_db_value(res, 0, "amount"));
    }

    if (rc == NGX_OK) {
        rc = ngx_http_darkroom_form_add(&form, &len, &size,
                 "metadata[order_id]",
                 ngx_http_darkroom_db_value(res, 0, "order_id"));
    }

    *refund = NULL;

    if (rc != NGX_OK
        || ngx_http_darkroom_stripe_call(a->scf, t->fetch_timeout, "POST",
               "/v1/refunds", form,
               ngx_http_darkroom_db_value(res, 0, "idempotency_key"),
               refund, &t->err)
           != NGX_OK)
    {
        if (t->err.status == 0) {
            ngx_http_darkroom_error_set(&t->err,
                                        NGX_HTTP_INTERNAL_SERVER_ERROR,
                                        "internal_error", "Out of memory.");
        }

        free(form);
        return NGX_ERROR;
    }

    free(form);

    return NGX_OK;
}


/*
 * POST orders/<ref>/resolve.  {"to": "cancelled", "refund": true} on an
 * order that holds money is the refund above (all that is left), recorded
 * in the order's history once Stripe took it, and answered 202 like a
 * refund: the order stays in review until Stripe's charge.refunded makes
 * it refunded.  Anything else is admin_order_resolve(), which parses the
 * body (bad JSON is a 400 from there).
 */

static void
ngx_http_darkroom_admin_resolve(ngx_http_darkroom_task_t *t)
{
    cJSON                      *refund, *id;
    PGresult                   *res, *check;
    const char                 *params[5];
    ngx_http_darkroom_admin_t  *a = t->data;

    params[0] = a->arg[0];
    params[1] = a->body;
    params[2] = NGX_HTTP_DARKROOM_ADMIN_ACTOR;

    check = ngx_http_darkroom_db_exec(&t->db,
                "SELECT order_id, payment_intent, amount, idempotency_key"
                " FROM admin_resolve_refund_check($1, $2)",
                2, params, &t->err);

    if (check == NULL) {
        return;
    }

    if (PQntuples(check) == 0) {
        PQclear(check);

        res = ngx_http_darkroom_db_exec(&t->db,
                  "SELECT admin_order_resolve($1, $2, $3)", 3, params,
                  &t->err);
        if (res != NULL) {
            ngx_http_darkroom_task_answer(t, res, "There is no such order.");
        }

        return;
    }

    if (ngx_http_darkroom_admin_refund_call(t, check, &refund) != NGX_OK) {
        PQclear(check);
        return;
    }

    id = cJSON_GetObjectItemCaseSensitive(refund, "id");

    params[2] = cJSON_IsString(id) ? id->valuestring : "";
    params[3] = ngx_http_darkroom_db_value(check, 0, "amount");
    params[4] = NGX_HTTP_DARKROOM_ADMIN_ACTOR;

    /* the refund is made: if recording it fails, the error is answered
     * and Stripe's charge.refunded still ends the review */
    res = ngx_http_darkroom_db_exec(&t->db,
              "SELECT admin_resolve_refund_requested($1, $2, $3,"
              " $4::bigint, $5)", 5, params, &t->err);

    if (res != NULL) {
        PQclear(res);
        ngx_http_darkroom_admin_refunded(t, check, refund);
    }

    cJSON_Delete(refund);
    PQclear(check);
}


/*
 * The body's {"amount"}: a whole number of minor units, or absent for all
 * that is left (*param NULL).  NGX_ERROR: the client's mistake is set.
 */

static ngx_int_t
ngx_http_darkroom_admin_amount(ngx_http_darkroom_task_t *t, char *amt,
    size_t size, const char **param)
{
    cJSON                      *body, *amount;
    ngx_http_darkroom_admin_t  *a = t->data;

    *param = NULL;

    body = ngx_http_darkroom_json_object(&t->err, a->body, 1);

    if (body == NULL) {
        return NGX_ERROR;
    }

    amount = cJSON_GetObjectItemCaseSensitive(body, "amount");

    if (amount) {
        if (!cJSON_IsNumber(amount) || amount->valuedouble < 1
            || amount->valuedouble > 1e12
            || amount->valuedouble != (double) (int64_t) amount->valuedouble)
        {
            cJSON_Delete(body);
            ngx_http_darkroom_error_set(&t->err, NGX_HTTP_BAD_REQUEST,
                                        "invalid_amount",
                                        "The amount is a whole number of "
                                        "minor units.");
            return NGX_ERROR;
        }

        snprintf(amt, size, "%.0f", amount->valuedouble);
        *param = amt;
    }

    cJSON_Delete(body);

    return NGX_OK;
}


/* 202 {order, refund, amount, status: "requested"} */

static void
ngx_http_darkroom_admin_refunded(ngx_http_darkroom_task_t *t, PGresult *res,
    cJSON *refund)
{
    char                       *text;
    cJSON                      *out, *id;
    ngx_http_darkroom_admin_t  *a = t->data;

    id = cJSON_GetObjectItemCaseSensitive(refund, "id");

    out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "order", a->arg[0]);
    cJSON_AddStringToObject(out, "refund",
                            cJSON_IsString(id) ? id->valuestring : "");
    cJSON_AddNumberToObject(out, "amount",
                    strtod(ngx_http_darkroom_db_value(res, 0, "amount"), NULL));
    cJSON_AddStringToObject(out, "status", "requested");

    text = cJSON_PrintUnformatted(out);

    cJSON_Delete(out);

    if (text == NULL) {
        ngx_http_darkroom_error_set(&t->err, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                    "internal_error", "Out of memory.");
        return;
    }

    t->out = text;
    t->out_len = ngx_strlen(text);
    t->status = NGX_HTTP_ACCEPTED;
}
