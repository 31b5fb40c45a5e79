
/*
 * darkroom: checkout.
 *
 * POST a cart as JSON {"items":[{"photo","product","quantity"}],"email",
 * "currency"} or as an HTML form (one item: photo, product, quantity,
 * email).  The cart is checked on the event loop; in a pool thread it is
 * priced from the catalogue and written as an order (one statement, so
 * nothing is written when anything is wrong), then a Stripe Checkout
 * Session is created with an idempotency key derived from the order (a
 * discounted order first gets a coupon of its own, which the session
 * takes, so that Stripe's total is the order's).
 * JSON clients get {"order","checkout_url","status_url"}; forms are sent
 * to Stripe with 303 See Other.
 *
 * An Idempotency-Key header makes a client's retry safe: the key (hashed)
 * and the normalised cart (hashed) are remembered with the order for
 * NGX_HTTP_DARKROOM_IDEM_KEEP (a day), and the same key with the same cart
 * answers 200 with the first order, session and status link; with another
 * cart it is refused with 422.  A replay while the first request is still
 * at Stripe answers 409 checkout_in_progress with Retry-After.  Stripe
 * giving no definite answer (409, 429, 5xx, nothing) leaves the order
 * pending for a retry or checkout_reconcile: 503 checkout_unconfirmed;
 * a replay of an order that expired or was cancelled meanwhile, 409
 * checkout_closed.
 *
 * A gallery sells through the same checkout (issue 14): the gallery's
 * POST <slug>/quote and <slug>/checkout, once the gallery has let the
 * visitor in, start this file's quote or checkout task again on the same
 * request through the core hook ngx_http_darkroom_gallery_sale, with the
 * gallery's id and currency in the shop module's request context.  Its
 * items are gallery photos and selections (_gallery_items), priced by
 * gallery_cart_lines() in SQL; the order records the gallery.
 */


#include "ngx_http_darkroom_shop.h"



#define NGX_HTTP_DARKROOM_MAX_LINES  100
#define NGX_HTTP_DARKROOM_IDEM_MIN    8
#define NGX_HTTP_DARKROOM_IDEM_MAX    255
#define NGX_HTTP_DARKROOM_IDEM_KEEP   "24 hours"


typedef struct {
    ngx_http_darkroom_shop_conf_t  *scf;            /* read-only */
    char                           *items;          /* normalised cart,
                                                       JSON, pool memory */
    char                           *email;
    char                            currency[4];
    char                           *country;        /* NULL: the shop's */
    char                           *code;           /* discount code */
    char                           *method;         /* shipping method */
    char                           *gallery;        /* id; NULL: the shop */
    ngx_str_t                      *cancel_url;     /* Stripe's Cancel */
    ngx_http_darkroom_keyring_t    *keys;           /* darkroom_order_keys */

    /* the status token: a MAC of the seed with the key kid (stored) */
    u_char                          seed[NGX_HTTP_DARKROOM_TOKEN_SIZE];
    char                           *kid;            /* the signing key's */
    u_char                          token[NGX_HTTP_DARKROOM_TOKEN_SIZE];
    u_char                          token_hash[NGX_HTTP_DARKROOM_HASH_SIZE];
    unsigned                        form:1;
    unsigned                        idempotent:1;
    unsigned                        quote:1;        /* price, write nothing */

    /* with an Idempotency-Key: the hashes of the key and of the cart */
    char                            key_hash[NGX_HTTP_DARKROOM_HASH_SIZE];
    char                            request_hash[NGX_HTTP_DARKROOM_HASH_SIZE];

    /* results */
    char                            ref[32];
    char                           *checkout_url;   /* malloc'd */
    unsigned                        replay:1;
} ngx_http_darkroom_checkout_t;


/* the shop module's request context of a gallery's quote or checkout */

typedef struct {
    char                            id[NGX_INT64_LEN + 1];
    char                            currency[4];    /* "": the shop's */
    ngx_str_t                       cancel_url;     /* "": the shop's */
} ngx_http_darkroom_checkout_sale_t;


static ngx_int_t ngx_http_darkroom_checkout_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_darkroom_quote_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_darkroom_quote_prepare(ngx_http_request_t *r,
    ngx_http_darkroom_task_t *t);
static void ngx_http_darkroom_quote_work(ngx_http_darkroom_task_t *t);
static ngx_int_t ngx_http_darkroom_checkout_prepare(ngx_http_request_t *r,
    ngx_http_darkroom_task_t *t);
static ngx_int_t ngx_http_darkroom_checkout_parse(ngx_http_request_t *r,
    ngx_http_darkroom_task_t *t, cJSON **out);
static ngx_int_t ngx_http_darkroom_checkout_currency(ngx_http_request_t *r,
    ngx_http_darkroom_checkout_t *co, cJSON *currency, ngx_uint_t *given);
static cJSON *ngx_http_darkroom_checkout_form(ngx_http_request_t *r,
    ngx_str_t *body);
static ngx_int_t ngx_http_darkroom_checkout_lines(cJSON *items,
    const char **code, char *reason, size_t size);
static ngx_int_t ngx_http_darkroom_checkout_items(cJSON *items,
    cJSON *out, char *currency, ngx_uint_t given, const char **code,
    char *reason, size_t size);
static ngx_int_t ngx_http_darkroom_checkout_gallery_items(cJSON *items,
    cJSON *out, const char **code, char *reason, size_t size);
static ngx_int_t ngx_http_darkroom_checkout_gallery_item(cJSON *item,
    int line, cJSON *out, const char **code, char *reason, size_t size);
static ngx_int_t ngx_http_darkroom_checkout_options(ngx_http_request_t *r,
    ngx_http_darkroom_checkout_t *co, cJSON *json);
static char *ngx_http_darkroom_checkout_option(ngx_pool_t *pool,
    cJSON *json, const char *name, size_t max, ngx_uint_t upper,
    ngx_int_t *rc);
static ngx_int_t ngx_http_darkroom_valid_email(const char *email);
static ngx_int_t ngx_http_darkroom_valid_slug(cJSON *s);
static ngx_int_t ngx_http_darkroom_checkout_key(ngx_http_request_t *r,
    ngx_http_darkroom_checkout_t *co);
static ngx_int_t ngx_http_darkroom_checkout_ready(ngx_http_request_t *r,
    ngx_http_darkroom_checkout_t *co);
static ngx_int_t ngx_http_darkroom_checkout_token(ngx_http_request_t *r,
    ngx_http_darkroom_checkout_t *co);
static ngx_int_t ngx_http_darkroom_checkout_replay_token(
    ngx_http_darkroom_checkout_t *co, PGresult *order);
static void ngx_http_darkroom_checkout_work(ngx_http_darkroom_task_t *t);
static PGresult *ngx_http_darkroom_checkout_order(
    ngx_http_darkroom_task_t *t);
static ngx_int_t ngx_http_darkroom_checkout_session(
    ngx_http_darkroom_task_t *t, PGresult *order, char **url);
static ngx_int_t ngx_http_darkroom_checkout_coupon(
    ngx_http_darkroom_task_t *t, PGresult *order, cJSON *cart, char **form,
    ngx_uint_t *called);
static void ngx_http_darkroom_checkout_answer(ngx_http_darkroom_task_t *t,
    const char *url);
static char *ngx_http_darkroom_checkout_form_body(ngx_http_darkroom_task_t *t,
    PGresult *order, cJSON *cart);
static ngx_int_t ngx_http_darkroom_checkout_charges(
    ngx_http_darkroom_task_t *t, PGresult *order, cJSON *cart, int i,
    char **buf, size_t *len, size_t *size);
static ngx_int_t ngx_http_darkroom_checkout_shipping(
    ngx_http_darkroom_shop_conf_t *scf, cJSON *cart, const char *currency,
    char **buf, size_t *len, size_t *size);
static ngx_int_t ngx_http_darkroom_checkout_countries(
    ngx_http_darkroom_shop_conf_t *scf, cJSON *ship, char **buf,
    size_t *len, size_t *size);
static ngx_int_t ngx_http_darkroom_checkout_tax(cJSON *cart,
    const char *currency, int i, char **buf, size_t *len, size_t *size);
static ngx_int_t ngx_http_darkroom_checkout_done(ngx_http_request_t *r,
    ngx_http_darkroom_task_t *t);
static void ngx_http_darkroom_checkout_cleanup(void *data);


char *
ngx_http_darkroom_checkout(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_darkroom_shop_conf_t  *scf;

    scf = ngx_http_conf_get_module_main_conf(cf,
                                             ngx_http_darkroom_shop_module);

    if (ngx_http_darkroom_use(cf, cmd, ngx_http_darkroom_checkout_handler,
                              &scf->use_checkout)
        == NULL)
    {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* the cart priced as checkout would price it: the cart page's totals */

char *
ngx_http_darkroom_cart_quote(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_darkroom_shop_conf_t  *scf;

    scf = ngx_http_conf_get_module_main_conf(cf,
                                             ngx_http_darkroom_shop_module);

    if (ngx_http_darkroom_use(cf, cmd, ngx_http_darkroom_quote_handler,
                              &scf->use_quote)
        == NULL)
    {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_darkroom_quote_handler(ngx_http_request_t *r)
{
    if (r->method != NGX_HTTP_POST) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    return ngx_http_darkroom_task_start(r,
                                        sizeof(ngx_http_darkroom_checkout_t),
                                        ngx_http_darkroom_quote_prepare,
                                        ngx_http_darkroom_quote_work,
                                        ngx_http_darkroom_checkout_done);
}


static ngx_int_t
ngx_http_darkroom_quote_prepare(ngx_http_request_t *r,
    ngx_http_darkroom_task_t *t)
{
    ngx_http_darkroom_checkout_t  *co = t->data;

    co->quote = 1;

    return ngx_http_darkroom_checkout_prepare(r, t);
}


static void
ngx_http_darkroom_quote_work(ngx_http_darkroom_task_t *t)
{
    PGresult                      *res;
    const char                    *params[7], *cart;
    ngx_http_darkroom_checkout_t  *co = t->data;

    params[0] = co->items;
    params[1] = co->currency;
    params[2] = co->country;
    params[3] = co->code;
    params[4] = co->email;
    params[5] = co->method;
    params[6] = co->gallery;

    res = ngx_http_darkroom_db_exec(&t->db,
              "SELECT cart_price($1::jsonb, $2, $3, $4, $5, $6,"
              " $7::bigint)::text AS cart", 7, params, &t->err);
    if (res == NULL) {
        return;
    }

    cart = ngx_http_darkroom_db_value(res, 0, "cart");

    t->out = strdup(cart);
    t->out_len = ngx_strlen(cart);
    t->status = NGX_HTTP_OK;
    PQclear(res);

    if (t->out == NULL) {
        ngx_http_darkroom_error_set(&t->err, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                    "internal_error", "Out of memory.");
    }
}


/*
 * The core hook ngx_http_darkroom_gallery_sale: a gallery's quote or
 * checkout, from the gallery's done() on the event loop.  The body has been
 * read: ngx_http_darkroom_task_start() runs the prepare at once (taking
 * the request's count as a handler's call does) and posts the task; the
 * gallery's done() returns what this returns.
 */

ngx_int_t
ngx_http_darkroom_checkout_gallery(ngx_http_request_t *r,
    const char *gallery, const char *currency, ngx_str_t *cancel_url,
    ngx_uint_t quote)
{
    size_t                              len;
    ngx_http_darkroom_shop_conf_t      *scf;
    ngx_http_darkroom_checkout_sale_t  *sale;

    scf = ngx_http_get_module_main_conf(r, ngx_http_darkroom_shop_module);

    len = ngx_strlen(gallery);

    if (scf->use_checkout.file == NULL) {
        return ngx_http_darkroom_send_error(r, NGX_HTTP_NOT_FOUND,
                                            "no_shop",
                                            "There is no shop here.");
    }

    if (len == 0 || len > NGX_INT64_LEN
        || (currency && ngx_strlen(currency) != 3))
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    sale = ngx_pcalloc(r->pool, sizeof(ngx_http_darkroom_checkout_sale_t));
    if (sale == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(sale->id, gallery, len);

    if (currency) {
        ngx_memcpy(sale->currency, currency, 3);
    }

    if (cancel_url) {
        sale->cancel_url = *cancel_url;
    }

    ngx_http_set_ctx(r, sale, ngx_http_darkroom_shop_module);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "darkroom checkout: gallery %s %s", sale->id,
                   quote ? "quote" : "checkout");

    if (quote) {
        return ngx_http_darkroom_task_start(r,
                                        sizeof(ngx_http_darkroom_checkout_t),
                                        ngx_http_darkroom_quote_prepare,
                                        ngx_http_darkroom_quote_work,
                                        ngx_http_darkroom_checkout_done);
    }

    return ngx_http_darkroom_task_start(r,
                                        sizeof(ngx_http_darkroom_checkout_t),
                                        ngx_http_darkroom_checkout_prepare,
                                        ngx_http_darkroom_checkout_work,
                                        ngx_http_darkroom_checkout_done);
}


static ngx_int_t
ngx_http_darkroom_checkout_handler(ngx_http_request_t *r)
{
    if (r->method != NGX_HTTP_POST) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    return ngx_http_darkroom_task_start(r,
                                        sizeof(ngx_http_darkroom_checkout_t),
                                        ngx_http_darkroom_checkout_prepare,
                                        ngx_http_darkroom_checkout_work,
                                        ngx_http_darkroom_checkout_done);
}


static ngx_int_t
ngx_http_darkroom_checkout_prepare(ngx_http_request_t *r,
    ngx_http_darkroom_task_t *t)
{
    char                          *text, reason[200];
    cJSON                         *json, *email, *items, *out;
    ngx_int_t                      rc;
    ngx_uint_t                     given;
    const char                    *code;
    ngx_pool_cleanup_t            *cln;
    ngx_http_darkroom_checkout_t  *co = t->data;

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln->handler = ngx_http_darkroom_checkout_cleanup;
    cln->data = co;

    co->scf = ngx_http_get_module_main_conf(r, ngx_http_darkroom_shop_module);

    rc = ngx_http_darkroom_checkout_parse(r, t, &json);
    if (rc != NGX_OK || json == NULL) {
        /* refused: the answer has gone */
        return rc;
    }

    email = cJSON_GetObjectItemCaseSensitive(json, "email");
    items = cJSON_GetObjectItemCaseSensitive(json, "items");

    if (co->quote && (email == NULL || cJSON_IsNull(email))) {
        email = NULL;

    } else if (!cJSON_IsString(email)
               || ngx_http_darkroom_valid_email(email->valuestring) != NGX_OK)
    {
        cJSON_Delete(json);
        return ngx_http_darkroom_send_error(r, NGX_HTTP_BAD_REQUEST,
                   "invalid_email", "Give an email address for the receipt.");
    }

    rc = ngx_http_darkroom_checkout_currency(r, co,
             cJSON_GetObjectItemCaseSensitive(json, "currency"), &given);
    if (rc != NGX_OK) {
        cJSON_Delete(json);
        return ngx_http_darkroom_send_error(r, NGX_HTTP_BAD_REQUEST,
                   "invalid_currency", (rc == NGX_DECLINED)
                   ? "This gallery sells in its own currency: leave "
                     "\"currency\" out."
                   : "The currency must be a three-letter ISO code.");
    }

    rc = ngx_http_darkroom_checkout_options(r, co, json);
    if (rc != NGX_OK || r->header_sent) {
        cJSON_Delete(json);
        return rc;
    }

    out = cJSON_CreateArray();
    if (out == NULL) {
        cJSON_Delete(json);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = co->gallery
         ? ngx_http_darkroom_checkout_gallery_items(items, out, &code, reason,
                                                    sizeof(reason))
         : ngx_http_darkroom_checkout_items(items, out, co->currency, given,
                                            &code, reason, sizeof(reason));
    if (rc != NGX_OK) {
        cJSON_Delete(json);
        cJSON_Delete(out);
        return ngx_http_darkroom_send_error(r, NGX_HTTP_BAD_REQUEST, code,
                                            reason);
    }

    text = cJSON_PrintUnformatted(out);
    cJSON_Delete(out);

    if (text == NULL) {
        cJSON_Delete(json);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    co->items = ngx_http_darkroom_cstr(r->pool, (u_char *) text,
                                       ngx_strlen(text));
    co->email = email ? ngx_http_darkroom_cstr(r->pool,
                                (u_char *) email->valuestring,
                                ngx_strlen(email->valuestring))
                      : NULL;
    free(text);
    cJSON_Delete(json);

    if (co->items == NULL || (email && co->email == NULL)) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_darkroom_checkout_ready(r, co);
}


/*
 * The cart is checked: a quote is priced as it is; a checkout gets its
 * status token and its Idempotency-Key read.
 */

static ngx_int_t
ngx_http_darkroom_checkout_ready(ngx_http_request_t *r,
    ngx_http_darkroom_checkout_t *co)
{
    ngx_int_t  rc;

    if (co->quote) {
        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "darkroom quote: cart posted (%*s)", (size_t) 3,
                       co->currency);
        return NGX_OK;
    }

    if (ngx_http_darkroom_checkout_token(r, co) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_darkroom_checkout_key(r, co);

    if (rc == NGX_OK) {
        ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "darkroom checkout: cart posted (%s, %*s)",
                       co->form ? "form" : "json", (size_t) 3, co->currency);
    }

    return rc;
}


/* the body as a JSON object, from JSON or from a form; else the answer */

static ngx_int_t
ngx_http_darkroom_checkout_parse(ngx_http_request_t *r,
    ngx_http_darkroom_task_t *t, cJSON **out)
{
    cJSON                         *json;
    ngx_str_t                     *ct;
    ngx_http_darkroom_checkout_t  *co = t->data;

    *out = NULL;

    ct = r->headers_in.content_type ? &r->headers_in.content_type->value
                                    : NULL;

    if (ct && ngx_strncasecmp(ct->data,
                              (u_char *) "application/x-www-form-urlencoded",
                              33) == 0)
    {
        co->form = 1;
        json = ngx_http_darkroom_checkout_form(r, &t->body);

    } else if (ct == NULL
               || ngx_strncasecmp(ct->data, (u_char *) "application/json",
                                  16) == 0)
    {
        json = cJSON_ParseWithLength((char *) t->body.data, t->body.len);

        if (json == NULL || !cJSON_IsObject(json)) {
            cJSON_Delete(json);
            return ngx_http_darkroom_send_error(r, NGX_HTTP_BAD_REQUEST,
                       "invalid_json", "The body must be a JSON object.");
        }

    } else {
        return ngx_http_darkroom_send_error(r,
                   NGX_HTTP_UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type",
                   "Send the cart as application/json or as a form.");
    }

    if (json == NULL) {
        return ngx_http_darkroom_send_error(r, NGX_HTTP_BAD_REQUEST,
                   "invalid_form", "The form is incomplete.");
    }

    *out = json;

    return NGX_OK;
}


/*
 * The cart's currency, upper case; *given: the client named one.  A
 * gallery's cart (co->gallery set here) is in the gallery's currency, else
 * the shop's: the client may only repeat it (NGX_DECLINED otherwise).
 */

static ngx_int_t
ngx_http_darkroom_checkout_currency(ngx_http_request_t *r,
    ngx_http_darkroom_checkout_t *co, cJSON *currency, ngx_uint_t *given)
{
    ngx_http_darkroom_checkout_sale_t  *sale;

    *given = 1;

    sale = ngx_http_get_module_ctx(r, ngx_http_darkroom_shop_module);

    co->gallery = sale ? sale->id : NULL;
    co->cancel_url = (sale && sale->cancel_url.len) ? &sale->cancel_url
                                                     : &co->scf->cancel_url;

    if (sale) {
        /* a gallery's: its own, else the shop's; the cart may repeat it */
        ngx_memcpy(co->currency, sale->currency[0] ? (u_char *) sale->currency
                                                   : co->scf->currency.data,
                   3);

        return (currency == NULL || cJSON_IsNull(currency)
                || (cJSON_IsString(currency)
                    && ngx_strlen(currency->valuestring) == 3
                    && ngx_strncasecmp((u_char *) currency->valuestring,
                                       (u_char *) co->currency, 3) == 0))
               ? NGX_OK : NGX_DECLINED;
    }

    if (currency == NULL || cJSON_IsNull(currency)) {
        ngx_memcpy(co->currency, co->scf->currency.data, 3);
        *given = 0;
        return NGX_OK;
    }

    if (cJSON_IsString(currency)
        && ngx_strlen(currency->valuestring) == 3
        && isalpha((u_char) currency->valuestring[0])
        && isalpha((u_char) currency->valuestring[1])
        && isalpha((u_char) currency->valuestring[2]))
    {
        co->currency[0] = ngx_toupper(currency->valuestring[0]);
        co->currency[1] = ngx_toupper(currency->valuestring[1]);
        co->currency[2] = ngx_toupper(currency->valuestring[2]);
        return NGX_OK;
    }

    return NGX_ERROR;
}


/*
 * What prices the cart besides its lines, each optional: "country" (the
 * buyer's, ISO 3166 alpha-2), "discount_code" and "shipping_method".
 * Codes and countries are upper case, methods lower case.
 */

static ngx_int_t
ngx_http_darkroom_checkout_options(ngx_http_request_t *r,
    ngx_http_darkroom_checkout_t *co, cJSON *json)
{
    ngx_int_t  rc;

    co->country = ngx_http_darkroom_checkout_option(r->pool, json, "country",
                                                    2, 1, &rc);
    if (rc == NGX_DECLINED
        || (co->country && (ngx_strlen(co->country) != 2
                            || !isalpha((u_char) co->country[0])
                            || !isalpha((u_char) co->country[1]))))
    {
        return ngx_http_darkroom_send_error(r, NGX_HTTP_BAD_REQUEST,
                   "invalid_country",
                   "The country must be a two-letter ISO code, such as "
                   "\"GB\".");
    }

    co->code = ngx_http_darkroom_checkout_option(r->pool, json,
                                                 "discount_code", 32, 1, &rc);
    if (rc == NGX_DECLINED) {
        return ngx_http_darkroom_send_error(r, NGX_HTTP_BAD_REQUEST,
                   "invalid_code",
                   "A discount code is 1 to 32 letters, digits, '-' or "
                   "'_'.");
    }

    co->method = ngx_http_darkroom_checkout_option(r->pool, json,
                                                   "shipping_method", 32, 0,
                                                   &rc);
    if (rc == NGX_DECLINED) {
        return ngx_http_darkroom_send_error(r, NGX_HTTP_BAD_REQUEST,
                   "invalid_shipping_method",
                   "A shipping method is 1 to 32 letters, digits, '-' or "
                   "'_'.");
    }

    return rc;
}


/*
 * One option: absent, null or "" is NULL; else 1 to max characters of
 * [A-Za-z0-9_-], case folded, copied into the pool.  *rc: NGX_DECLINED
 * for a bad value, NGX_ERROR without memory.
 */

static char *
ngx_http_darkroom_checkout_option(ngx_pool_t *pool, cJSON *json,
    const char *name, size_t max, ngx_uint_t upper, ngx_int_t *rc)
{
    char    *out;
    size_t   i, len;
    cJSON   *v;
    u_char   c;

    *rc = NGX_OK;

    v = cJSON_GetObjectItemCaseSensitive(json, name);

    if (v == NULL || cJSON_IsNull(v)
        || (cJSON_IsString(v) && v->valuestring[0] == '\0'))
    {
        return NULL;
    }

    len = cJSON_IsString(v) ? ngx_strlen(v->valuestring) : 0;

    if (len == 0 || len > max) {
        *rc = NGX_DECLINED;
        return NULL;
    }

    out = ngx_pnalloc(pool, len + 1);
    if (out == NULL) {
        *rc = NGX_ERROR;
        return NULL;
    }

    for (i = 0; i < len; i++) {
        c = v->valuestring[i];

        if (!isalnum(c) && c != '-' && c != '_') {
            *rc = NGX_DECLINED;
            return NULL;
        }

        out[i] = upper ? ngx_toupper(c) : ngx_tolower(c);
    }

    out[len] = '\0';

    return out;
}


/*
 * The Idempotency-Key: 8 to 255 visible ASCII characters (a UUID fits).
 * The database gets the key's hash and the hash of the cart as
 * normalised here (so the same cart written differently is the same
 * request); a replay derives the first order's status token again from
 * its seed and key id (ngx_http_darkroom_checkout_replay_token).
 */

static ngx_int_t
ngx_http_darkroom_checkout_key(ngx_http_request_t *r,
    ngx_http_darkroom_checkout_t *co)
{
    u_char           *p, *text;
    size_t            len;
    ngx_table_elt_t  *h;

    h = ngx_http_darkroom_header_in(r, "Idempotency-Key",
                                    sizeof("Idempotency-Key") - 1);
    if (h == NULL) {
        return NGX_OK;
    }

    for (p = h->value.data; p < h->value.data + h->value.len; p++) {
        if (*p < 0x21 || *p > 0x7e) {
            break;
        }
    }

    if (h->value.len < NGX_HTTP_DARKROOM_IDEM_MIN
        || h->value.len > NGX_HTTP_DARKROOM_IDEM_MAX
        || p != h->value.data + h->value.len)
    {
        return ngx_http_darkroom_send_error(r, NGX_HTTP_BAD_REQUEST,
                   "invalid_idempotency_key",
                   "The Idempotency-Key must be 8 to 255 visible ASCII "
                   "characters, such as a UUID.");
    }

    len = 3 + 1 + ngx_strlen(co->email) + 1 + ngx_strlen(co->items)
          + 3 * (1 + 32) + sizeof("\ngallery:") - 1 + NGX_INT64_LEN;

    text = ngx_pnalloc(r->pool, len);
    if (text == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_darkroom_sha256_hex(h->value.data, h->value.len,
                                     co->key_hash)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_sprintf(text, "%*s\n%s\n%s\n%s\n%s\n%s", (size_t) 3,
                    co->currency, co->email, co->items,
                    co->country ? co->country : "",
                    co->code ? co->code : "", co->method ? co->method : "");

    if (co->gallery) {
        p = ngx_sprintf(p, "\ngallery:%s", co->gallery);
    }

    if (ngx_http_darkroom_sha256_hex(text, p - text, co->request_hash)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    co->idempotent = 1;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "darkroom checkout: idempotency key hash %s",
                   co->key_hash);

    return NGX_OK;
}


/*
 * A new order's status token: a random seed, MAC'd with the first key of
 * darkroom_order_keys (ngx_http_darkroom_order_token); the order keeps the
 * seed, the key id and the token's SHA-256, so the mail job can derive the
 * link again and GET /api/orders/<token> finds the order by its hash.
 */

static ngx_int_t
ngx_http_darkroom_checkout_token(ngx_http_request_t *r,
    ngx_http_darkroom_checkout_t *co)
{
    u_char                          unused[NGX_HTTP_DARKROOM_HASH_SIZE];
    ngx_http_darkroom_key_t        *k;
    ngx_http_darkroom_main_conf_t  *dmcf;

    dmcf = ngx_http_get_module_main_conf(r, ngx_http_darkroom_module);

    co->keys = dmcf->order_keys;

    if (co->keys == NULL) {
        /* nginx -t refuses darkroom_checkout without darkroom_order_keys */
        return NGX_ERROR;
    }

    k = co->keys->keys.elts;

    co->kid = ngx_http_darkroom_cstr(r->pool, k[0].kid.data, k[0].kid.len);

    /* the seed: 128 random bits in hex, as a random token is made */

    if (co->kid == NULL
        || ngx_http_darkroom_token(co->seed, unused) != NGX_OK
        || ngx_http_darkroom_order_token(co->keys, co->kid, (char *) co->seed,
                                         co->token, co->token_hash)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "darkroom checkout: status token with key \"%s\"",
                   co->kid);

    return NGX_OK;
}


/*
 * A replay's status token: the first order's, derived from the seed and
 * key id it was made with.  An order made before the tokens were derived,
 * or whose key has left the keyring, has none to give: the answer then
 * goes without status_url.  Runs in a pool thread.
 */

static ngx_int_t
ngx_http_darkroom_checkout_replay_token(ngx_http_darkroom_checkout_t *co,
    PGresult *order)
{
    if (ngx_http_darkroom_db_null(order, 0, "token_seed")
        || ngx_http_darkroom_db_null(order, 0, "token_kid")
        || ngx_http_darkroom_order_token(co->keys,
               ngx_http_darkroom_db_value(order, 0, "token_kid"),
               ngx_http_darkroom_db_value(order, 0, "token_seed"),
               co->token, NULL)
           != NGX_OK)
    {
        co->token[0] = '\0';
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/* a plain HTML form buys one item: photo, product, quantity, email */

static cJSON *
ngx_http_darkroom_checkout_form(ngx_http_request_t *r, ngx_str_t *body)
{
    u_char     *p, *end, *amp, *eq, *k, *v, *dst;
    cJSON      *json, *items, *item;
    ngx_str_t   key, val;

    json = cJSON_CreateObject();
    items = cJSON_AddArrayToObject(json, "items");
    item = cJSON_CreateObject();

    if (json == NULL || items == NULL || item == NULL) {
        cJSON_Delete(item);
        cJSON_Delete(json);
        return NULL;
    }

    cJSON_AddItemToArray(items, item);

    p = body->data;
    end = body->data + body->len;

    while (p < end) {
        amp = ngx_strlchr(p, end, '&');
        if (amp == NULL) {
            amp = end;
        }

        eq = ngx_strlchr(p, amp, '=');

        if (eq) {
            /* decode in place copies: '+' is a space in forms */
            k = ngx_pnalloc(r->pool, eq - p + 1);
            v = ngx_pnalloc(r->pool, amp - eq);
            if (k == NULL || v == NULL) {
                cJSON_Delete(json);
                return NULL;
            }

            key.data = p;
            key.len = eq - p;
            val.data = eq + 1;
            val.len = amp - eq - 1;

            for (dst = val.data; dst < val.data + val.len; dst++) {
                if (*dst == '+') {
                    *dst = ' ';
                }
            }

            dst = k;
            ngx_unescape_uri(&dst, &key.data, key.len, 0);
            *dst = '\0';

            dst = v;
            ngx_unescape_uri(&dst, &val.data, val.len, 0);
            *dst = '\0';

            if (ngx_strcmp(k, "email") == 0 || ngx_strcmp(k, "currency") == 0
                || ngx_strcmp(k, "country") == 0
                || ngx_strcmp(k, "discount_code") == 0
                || ngx_strcmp(k, "shipping_method") == 0)
            {
                cJSON_DeleteItemFromObjectCaseSensitive(json, (char *) k);
                cJSON_AddStringToObject(json, (char *) k, (char *) v);

            } else if (ngx_strcmp(k, "photo") == 0
                       || ngx_strcmp(k, "product") == 0)
            {
                cJSON_DeleteItemFromObjectCaseSensitive(item, (char *) k);
                cJSON_AddStringToObject(item, (char *) k, (char *) v);

            } else if (ngx_strcmp(k, "quantity") == 0) {
                cJSON_DeleteItemFromObjectCaseSensitive(item, "quantity");
                cJSON_AddNumberToObject(item, "quantity",
                    (dst - v > 0 && dst - v < 4
                     && ngx_atoi(v, dst - v) != NGX_ERROR)
                    ? (double) ngx_atoi(v, dst - v) : -1);
            }
        }

        p = amp + 1;
    }

    if (cJSON_GetObjectItemCaseSensitive(item, "quantity") == NULL) {
        cJSON_AddNumberToObject(item, "quantity", 1);
    }

    return json;
}


/* a cart's items: an array of 1 to NGX_HTTP_DARKROOM_MAX_LINES lines */

static ngx_int_t
ngx_http_darkroom_checkout_lines(cJSON *items, const char **code,
    char *reason, size_t size)
{
    int  n;

    *code = "invalid_items";

    if (!cJSON_IsArray(items) || cJSON_GetArraySize(items) == 0) {
        snprintf(reason, size, "The cart is empty: \"items\" must list "
                 "what to buy.");
        return NGX_ERROR;
    }

    n = cJSON_GetArraySize(items);

    if (n > NGX_HTTP_DARKROOM_MAX_LINES) {
        *code = "too_many_items";
        snprintf(reason, size, "A cart holds at most %d lines, not %d.",
                 NGX_HTTP_DARKROOM_MAX_LINES, n);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * Checks each line and copies only what is read: photo, product, quantity.
 * A line may name a currency; all of them and the cart's must agree.
 */

static ngx_int_t
ngx_http_darkroom_checkout_items(cJSON *items, cJSON *out, char *currency,
    ngx_uint_t given, const char **code, char *reason, size_t size)
{
    int     line;
    cJSON  *item, *photo, *product, *quantity, *o;

    if (ngx_http_darkroom_checkout_lines(items, code, reason, size)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    line = 0;

    cJSON_ArrayForEach(item, items) {
        line++;

        photo = cJSON_GetObjectItemCaseSensitive(item, "photo");
        product = cJSON_GetObjectItemCaseSensitive(item, "product");
        quantity = cJSON_GetObjectItemCaseSensitive(item, "quantity");

        if (!cJSON_IsObject(item)
            || ngx_http_darkroom_valid_slug(photo) != NGX_OK
            || ngx_http_darkroom_valid_slug(product) != NGX_OK)
        {
            snprintf(reason, size, "Item %d needs a \"photo\" and a "
                     "\"product\".", line);
            return NGX_ERROR;
        }

        if (!cJSON_IsNumber(quantity)
            || quantity->valuedouble < 1 || quantity->valuedouble > 99
            || quantity->valuedouble != (double) (int) quantity->valuedouble)
        {
            *code = "invalid_quantity";
            snprintf(reason, size, "Item %d: the quantity must be a whole "
                     "number from 1 to 99.", line);
            return NGX_ERROR;
        }

        o = cJSON_GetObjectItemCaseSensitive(item, "currency");

        if (o && !cJSON_IsNull(o)) {
            if (!cJSON_IsString(o) || ngx_strlen(o->valuestring) != 3) {
                *code = "invalid_currency";
                snprintf(reason, size, "Item %d: the currency must be a "
                         "three-letter ISO code.", line);
                return NGX_ERROR;
            }

            if (!given) {
                currency[0] = ngx_toupper(o->valuestring[0]);
                currency[1] = ngx_toupper(o->valuestring[1]);
                currency[2] = ngx_toupper(o->valuestring[2]);
                given = 1;

            } else if (ngx_strncasecmp((u_char *) currency,
                                       (u_char *) o->valuestring, 3) != 0)
            {
                *code = "mixed_currency";
                snprintf(reason, size, "All items must be paid in one "
                         "currency: item %d is in %s, the cart in %.3s.",
                         line, o->valuestring, currency);
                return NGX_ERROR;
            }
        }

        o = cJSON_CreateObject();
        if (o == NULL
            || cJSON_AddStringToObject(o, "photo", photo->valuestring) == NULL
            || cJSON_AddStringToObject(o, "product", product->valuestring)
               == NULL
            || cJSON_AddNumberToObject(o, "quantity", quantity->valuedouble)
               == NULL)
        {
            cJSON_Delete(o);
            snprintf(reason, size, "Out of memory.");
            return NGX_ERROR;
        }

        cJSON_AddItemToArray(out, o);
    }

    return NGX_OK;
}


/*
 * A gallery's cart: each line a gallery photo {"photo": <id>, "product",
 * "quantity", "sizing": "crop"|"fit"} or a selection's extra photos
 * {"selection": <list id>}; only what is read is copied.  The shop's own
 * lines (a photo named by a string) are refused, as the shop refuses
 * these.
 */

static ngx_int_t
ngx_http_darkroom_checkout_gallery_items(cJSON *items, cJSON *out,
    const char **code, char *reason, size_t size)
{
    int     line;
    cJSON  *item;

    if (ngx_http_darkroom_checkout_lines(items, code, reason, size)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    line = 0;

    cJSON_ArrayForEach(item, items) {
        line++;

        if (ngx_http_darkroom_checkout_gallery_item(item, line, out, code,
                                                    reason, size)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/* a whole number from 1 to max */

static ngx_inline ngx_uint_t
ngx_http_darkroom_checkout_whole(cJSON *v, double max)
{
    return cJSON_IsNumber(v) && v->valuedouble >= 1 && v->valuedouble <= max
           && v->valuedouble == (double) (int64_t) v->valuedouble;
}


static ngx_int_t
ngx_http_darkroom_checkout_gallery_item(cJSON *item, int line, cJSON *out,
    const char **code, char *reason, size_t size)
{
    cJSON  *photo, *product, *quantity, *sizing, *selection, *o;

    photo = cJSON_GetObjectItemCaseSensitive(item, "photo");
    product = cJSON_GetObjectItemCaseSensitive(item, "product");
    quantity = cJSON_GetObjectItemCaseSensitive(item, "quantity");
    sizing = cJSON_GetObjectItemCaseSensitive(item, "sizing");
    selection = cJSON_GetObjectItemCaseSensitive(item, "selection");

    o = cJSON_CreateObject();
    if (o == NULL) {
        snprintf(reason, size, "Out of memory.");
        return NGX_ERROR;
    }

    if (cJSON_IsObject(item) && selection && photo == NULL) {

        if (!ngx_http_darkroom_checkout_whole(selection, 9e15)) {
            cJSON_Delete(o);
            snprintf(reason, size, "Item %d: \"selection\" is the id of a "
                     "list.", line);
            return NGX_ERROR;
        }

        cJSON_AddNumberToObject(o, "selection", selection->valuedouble);
        cJSON_AddItemToArray(out, o);
        return NGX_OK;
    }

    if (!cJSON_IsObject(item)
        || !ngx_http_darkroom_checkout_whole(photo, 9e15)
        || ngx_http_darkroom_valid_slug(product) != NGX_OK)
    {
        cJSON_Delete(o);
        snprintf(reason, size, "Item %d needs a \"photo\" (the id of a "
                 "photo of the gallery) and a \"product\".", line);
        return NGX_ERROR;
    }

    if (!ngx_http_darkroom_checkout_whole(quantity, 99)) {
        cJSON_Delete(o);
        *code = "invalid_quantity";
        snprintf(reason, size, "Item %d: the quantity must be a whole "
                 "number from 1 to 99.", line);
        return NGX_ERROR;
    }

    if (sizing && !cJSON_IsNull(sizing)
        && !(cJSON_IsString(sizing)
             && (ngx_strcmp(sizing->valuestring, "crop") == 0
                 || ngx_strcmp(sizing->valuestring, "fit") == 0)))
    {
        cJSON_Delete(o);
        *code = "invalid_sizing";
        snprintf(reason, size, "Item %d: \"sizing\" is \"crop\" or "
                 "\"fit\".", line);
        return NGX_ERROR;
    }

    cJSON_AddNumberToObject(o, "photo", photo->valuedouble);
    cJSON_AddStringToObject(o, "product", product->valuestring);
    cJSON_AddNumberToObject(o, "quantity", quantity->valuedouble);

    if (cJSON_IsString(sizing)) {
        cJSON_AddStringToObject(o, "sizing", sizing->valuestring);
    }

    cJSON_AddItemToArray(out, o);

    return NGX_OK;
}


static ngx_int_t
ngx_http_darkroom_valid_slug(cJSON *s)
{
    size_t       len;
    const char  *p;

    if (!cJSON_IsString(s)) {
        return NGX_ERROR;
    }

    len = ngx_strlen(s->valuestring);

    if (len == 0 || len > 64) {
        return NGX_ERROR;
    }

    for (p = s->valuestring; *p; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')
              || (*p == '-' && p != s->valuestring)))
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/* enough to catch typos and abuse; the provider has the last word */

static ngx_int_t
ngx_http_darkroom_valid_email(const char *email)
{
    size_t       len;
    const char  *p, *at;

    len = ngx_strlen(email);

    if (len < 3 || len > 254) {
        return NGX_ERROR;
    }

    at = NULL;

    for (p = email; *p; p++) {
        if ((u_char) *p <= ' ' || *p == 0x7f || *p == '<' || *p == '>'
            || *p == ',' || *p == ';' || *p == '"' || *p == '\\')
        {
            return NGX_ERROR;
        }

        if (*p == '@') {
            if (at) {
                return NGX_ERROR;
            }

            at = p;
        }
    }

    if (at == NULL || at == email || at[1] == '\0'
        || ngx_strchr(at, '.') == NULL || email[len - 1] == '.')
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_http_darkroom_checkout_work(ngx_http_darkroom_task_t *t)
{
    char                          *url;
    PGresult                      *order;
    ngx_http_darkroom_checkout_t  *co = t->data;

    order = ngx_http_darkroom_checkout_order(t);
    if (order == NULL) {
        return;
    }

    ngx_cpystrn((u_char *) co->ref,
                (u_char *) ngx_http_darkroom_db_value(order, 0, "order_ref"),
                sizeof(co->ref));

    co->replay = (ngx_http_darkroom_db_value(order, 0, "replay")[0] == 't');

    if (co->replay) {
        /* the first request's status link, derived again */
        (void) ngx_http_darkroom_checkout_replay_token(co, order);
    }

    if (co->replay && !ngx_http_darkroom_db_null(order, 0, "saved_url")) {
        /* the session is attached: answer as the first time, ask no one */
        ngx_http_darkroom_checkout_answer(t,
                      ngx_http_darkroom_db_value(order, 0, "saved_url"));
        PQclear(order);
        return;
    }

    /*
     * A new order, or a replay whose first request has not attached its
     * session (still running, or its answer lost): Stripe's idempotency
     * key, derived from the order, gives the same session back.
     */

    if (ngx_http_darkroom_checkout_session(t, order, &url) == NGX_OK) {
        ngx_http_darkroom_checkout_answer(t, url);
        free(url);
    }

    PQclear(order);
}


static PGresult *
ngx_http_darkroom_checkout_order(ngx_http_darkroom_task_t *t)
{
    char                           expires[24], reconcile[24];
    const char                    *params[15];
    ngx_http_darkroom_checkout_t  *co = t->data;

    snprintf(expires, sizeof(expires), "%ld",
             (long) co->scf->checkout_expires);
    snprintf(reconcile, sizeof(reconcile), "%ld",
             (long) co->scf->checkout_reconcile);

    params[0] = co->idempotent ? co->key_hash : NULL;
    params[1] = co->idempotent ? co->request_hash : NULL;
    params[2] = NGX_HTTP_DARKROOM_IDEM_KEEP;
    params[3] = co->items;
    params[4] = co->email;
    params[5] = co->currency;
    params[6] = co->country;
    params[7] = co->code;
    params[8] = co->method;
    params[9] = (char *) co->token_hash;
    params[10] = (char *) co->seed;
    params[11] = co->kid;
    params[12] = expires;
    params[13] = reconcile;
    params[14] = co->gallery;

    return ngx_http_darkroom_db_exec(&t->db,
        "SELECT order_id, order_ref, total, physical, cart::text AS cart,"
        " replay, token_seed, token_kid, saved_url, expires_epoch"
        " FROM checkout_create_idempotent($1, $2, $3::interval,"
        " $4::jsonb, $5, $6, $7, $8, $9, $10, $11, $12,"
        " now() + $13::int * interval '1 second',"
        " now() + $14::int * interval '1 second', $15::bigint)",
        15, params, &t->err);
}


/* the Stripe Checkout Session, attached to the order; *url malloc'd */

static ngx_int_t
ngx_http_darkroom_checkout_session(ngx_http_darkroom_task_t *t,
    PGresult *order, char **url)
{
    char                           *form, key[64];
    cJSON                          *cart, *session;
    ngx_int_t                       rc;
    ngx_uint_t                      called;
    ngx_http_darkroom_checkout_t   *co = t->data;

    /* the priced cart, read once for the form and the coupon */
    cart = cJSON_Parse(ngx_http_darkroom_db_value(order, 0, "cart"));
    form = cart ? ngx_http_darkroom_checkout_form_body(t, order, cart) : NULL;

    snprintf(key, sizeof(key), "darkroom-checkout-%s",
             ngx_http_darkroom_db_value(order, 0, "order_id"));

    session = NULL;
    called = 0;

    rc = (form == NULL) ? NGX_ERROR
         : ngx_http_darkroom_checkout_coupon(t, order, cart, &form, &called);

    cJSON_Delete(cart);

    if (rc == NGX_OK) {
        called = 1;
        rc = ngx_http_darkroom_stripe_call(co->scf, t->fetch_timeout, "POST",
                                           "/v1/checkout/sessions", form, key,
                                           &session, &t->err);
    }

    if (rc != NGX_OK) {
        free(form);

        if (t->err.status == 0) {
            ngx_http_darkroom_error_set(&t->err,
                                        NGX_HTTP_INTERNAL_SERVER_ERROR,
                                        "internal_error", "Out of memory.");
        }

        ngx_http_darkroom_checkout_failed(t,
            ngx_http_darkroom_db_value(order, 0, "order_id"), co->replay,
            called, "The payment provider has not confirmed the payment "
                    "page yet, please retry shortly with the same "
                    "Idempotency-Key.");
        return NGX_ERROR;
    }

    free(form);

    rc = ngx_http_darkroom_checkout_attach(t,
             ngx_http_darkroom_db_value(order, 0, "order_id"),
             ngx_http_darkroom_db_value(order, 0, "total"), session, url);
    cJSON_Delete(session);

    return rc;
}


/*
 * A cart with a discount: Stripe Checkout takes it only as a coupon, so
 * one is made for this order alone (the order's discount as amount_off in
 * its currency, duration once, one redemption, named by the code) and the
 * session form gets discounts[0][coupon].  Its id and idempotency key come
 * from the order: a replay, or a retry after an unknown outcome, gets the
 * same coupon and makes no second one.  *called: a call was made.
 */

static ngx_int_t
ngx_http_darkroom_checkout_coupon(ngx_http_darkroom_task_t *t,
    PGresult *order, cJSON *cart, char **form, ngx_uint_t *called)
{
    char                          *body, id[64], key[64], num[32];
    char                           currency[4];
    cJSON                         *discount, *amount, *code, *coupon;
    size_t                         len, size;
    ngx_int_t                      rc;
    const char                    *order_id;
    ngx_http_darkroom_checkout_t  *co = t->data;

    discount = cJSON_GetObjectItemCaseSensitive(cart, "discount");
    amount = cJSON_GetObjectItemCaseSensitive(discount, "amount");
    code = cJSON_GetObjectItemCaseSensitive(discount, "code");

    if (!cJSON_IsNumber(amount) || amount->valuedouble < 1
        || !cJSON_IsString(code))
    {
        /* no discount, or one of nothing: Stripe needs no coupon */
        return NGX_OK;
    }

    order_id = ngx_http_darkroom_db_value(order, 0, "order_id");
    snprintf(id, sizeof(id), "darkroom-order-%s", order_id);
    snprintf(key, sizeof(key), "darkroom-coupon-%s", order_id);
    snprintf(num, sizeof(num), "%.0f", amount->valuedouble);

    currency[0] = ngx_tolower(co->currency[0]);
    currency[1] = ngx_tolower(co->currency[1]);
    currency[2] = ngx_tolower(co->currency[2]);
    currency[3] = '\0';

    body = NULL;
    len = 0;
    size = 0;

    rc = ngx_http_darkroom_form_add(&body, &len, &size, "id", id);

#define add(k, v)                                                            \
    if (rc == NGX_OK) {                                                      \
        rc = ngx_http_darkroom_form_add(&body, &len, &size, k, v);          \
    }

    add("amount_off", num);
    add("currency", currency);
    add("duration", "once");
    add("max_redemptions", "1");
    add("name", code->valuestring);
    add("metadata[order_id]", order_id);
    add("metadata[order_ref]", co->ref);

#undef add

    coupon = NULL;

    if (rc == NGX_OK) {
        *called = 1;
        rc = ngx_http_darkroom_stripe_call(co->scf, t->fetch_timeout, "POST",
                                           "/v1/coupons", body, key, &coupon,
                                           &t->err);
    }

    free(body);
    cJSON_Delete(coupon);

    if (rc != NGX_OK) {
        return NGX_ERROR;
    }

    len = ngx_strlen(*form);
    size = len + 1;

    return ngx_http_darkroom_form_add(form, &len, &size,
                                      "discounts[0][coupon]", id);
}


/*
 * Stripe's session for an order (the shop's, or one another area wrote: a
 * booking's deposit): its id and url present, recorded with the total
 * Stripe computed for it, and the url copied for the answer (free() it).
 * A total that is not the order's (the exact-amount rule) cancels the
 * order in SQL and is answered 502: the payment page is never handed out.
 */

ngx_int_t
ngx_http_darkroom_checkout_attach(ngx_http_darkroom_task_t *t,
    const char *order_id, const char *total, cJSON *session, char **url)
{
    char         amount[32];
    cJSON       *id, *u, *v;
    PGresult    *res;
    ngx_uint_t   attached;
    const char  *params[4];

    id = cJSON_GetObjectItemCaseSensitive(session, "id");
    u = cJSON_GetObjectItemCaseSensitive(session, "url");
    v = cJSON_GetObjectItemCaseSensitive(session, "amount_total");

    if (!cJSON_IsString(id) || !cJSON_IsString(u)) {
        ngx_http_darkroom_error_set(&t->err, NGX_HTTP_BAD_GATEWAY,
                                    "payment_provider_error",
                                    "The payment provider gave no "
                                    "payment page.");
        snprintf(t->err.detail, sizeof(t->err.detail),
                 "stripe session without id or url");
        return NGX_ERROR;
    }

    params[0] = order_id;
    params[1] = id->valuestring;
    params[2] = u->valuestring;
    params[3] = NULL;

    if (cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble < 1e15
        && v->valuedouble == (double) (int64_t) v->valuedouble)
    {
        snprintf(amount, sizeof(amount), "%.0f", v->valuedouble);
        params[3] = amount;
    }

    res = ngx_http_darkroom_db_exec(&t->db,
              "SELECT attached FROM checkout_attach($1, $2, $3, $4::bigint)",
              4, params, &t->err);

    if (res == NULL) {
        /* the webhook's metadata still finds the order */
        return NGX_ERROR;
    }

    attached = (ngx_http_darkroom_db_value(res, 0, "attached")[0] == 't');
    PQclear(res);

    if (!attached) {
        ngx_http_darkroom_error_set(&t->err, NGX_HTTP_BAD_GATEWAY,
                                    "payment_amount_mismatch",
                                    "The payment page's total is not the "
                                    "order's: nothing was charged, please "
                                    "try again later.");
        snprintf(t->err.detail, sizeof(t->err.detail),
                 "stripe session total %s is not the order total %s",
                 params[3] ? params[3] : "(none)", total);
        return NGX_ERROR;
    }

    ngx_http_darkroom_metric_inc(checkouts);

    *url = strdup(u->valuestring);

    if (*url == NULL) {
        ngx_http_darkroom_error_set(&t->err, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                    "internal_error", "Out of memory.");
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* {order, checkout_url, status_url}: 201 the first time, 200 on a replay */

static void
ngx_http_darkroom_checkout_answer(ngx_http_darkroom_task_t *t,
    const char *url)
{
    char                           *status_url;
    cJSON                          *out;
    ngx_http_darkroom_checkout_t   *co = t->data;

    co->checkout_url = strdup(url);
    status_url = ngx_http_darkroom_order_url(&co->scf->status_url,
                                            (char *) co->token, co->ref);

    out = cJSON_CreateObject();

    if (out && co->checkout_url && status_url
        && cJSON_AddStringToObject(out, "order", co->ref)
        && cJSON_AddStringToObject(out, "checkout_url", co->checkout_url)
        && (co->token[0] == '\0'
            || cJSON_AddStringToObject(out, "status_url", status_url)))
    {
        t->out = cJSON_PrintUnformatted(out);
        t->out_len = t->out ? ngx_strlen(t->out) : 0;
        t->status = co->replay ? NGX_HTTP_OK : NGX_HTTP_CREATED;
    }

    if (t->out == NULL) {
        ngx_http_darkroom_error_set(&t->err, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                    "internal_error", "Out of memory.");
    }

    free(status_url);
    cJSON_Delete(out);
}


/*
 * the Checkout Session's parameters: the order's (checkout_form.c), then
 * the shop's shipping and tax
 */

static char *
ngx_http_darkroom_checkout_form_body(ngx_http_darkroom_task_t *t,
    PGresult *order, cJSON *cart)
{
    int                                 i;
    char                               *buf, *success, *cancel;
    char                                currency[4];
    size_t                              len, size;
    ngx_int_t                           rc;
    ngx_http_darkroom_checkout_t       *co = t->data;
    ngx_http_darkroom_checkout_form_t   f;

    currency[0] = ngx_tolower(co->currency[0]);
    currency[1] = ngx_tolower(co->currency[1]);
    currency[2] = ngx_tolower(co->currency[2]);
    currency[3] = '\0';

    success = ngx_http_darkroom_order_url(&co->scf->success_url,
                                         (char *) co->token, co->ref);
    cancel = ngx_http_darkroom_order_url(co->cancel_url, (char *) co->token,
                                        co->ref);

    f.order_id = ngx_http_darkroom_db_value(order, 0, "order_id");
    f.ref = co->ref;
    f.email = co->email;
    f.expires = ngx_http_darkroom_db_value(order, 0, "expires_epoch");
    f.currency = currency;
    f.success_url = success;
    f.cancel_url = cancel;
    f.lines = cJSON_GetObjectItemCaseSensitive(cart, "lines");

    i = 0;
    buf = ngx_http_darkroom_checkout_form_make(&f, &i);

    free(success);
    free(cancel);

    if (buf == NULL) {
        return NULL;
    }

    len = ngx_strlen(buf);
    size = len + 1;

    rc = ngx_http_darkroom_checkout_charges(t, order, cart, i, &buf, &len,
                                            &size);
    if (rc != NGX_OK) {
        free(buf);
        return NULL;
    }

    return buf;
}


/* what the order charges besides its goods: shipping, and tax on top */

static ngx_int_t
ngx_http_darkroom_checkout_charges(ngx_http_darkroom_task_t *t,
    PGresult *order, cJSON *cart, int i, char **buf, size_t *len,
    size_t *size)
{
    char                           currency[4];
    ngx_http_darkroom_checkout_t  *co = t->data;

    currency[0] = ngx_tolower(co->currency[0]);
    currency[1] = ngx_tolower(co->currency[1]);
    currency[2] = ngx_tolower(co->currency[2]);
    currency[3] = '\0';

    if (ngx_http_darkroom_db_value(order, 0, "physical")[0] == 't'
        && ngx_http_darkroom_checkout_shipping(co->scf, cart, currency, buf,
                                               len, size)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_darkroom_checkout_tax(cart, currency, i, buf, len, size);
}


/*
 * A print is shipped: the address, in the countries of the cart's
 * shipping zone priced as the buyer's (cart_shipping_countries), so that
 * no address Stripe takes changes the price; the phone labs need for
 * carriers; and the shipping the cart was priced with as the session's
 * one fixed-amount shipping option, so that Stripe's amount_total is the
 * order's total.
 */

static ngx_int_t
ngx_http_darkroom_checkout_shipping(ngx_http_darkroom_shop_conf_t *scf,
    cJSON *cart, const char *currency, char **buf, size_t *len, size_t *size)
{
    char         num[32];
    cJSON       *ship, *amount;
    ngx_int_t    rc;
    const char  *display;

    ship = cJSON_GetObjectItemCaseSensitive(cart, "shipping");
    amount = cJSON_GetObjectItemCaseSensitive(ship, "amount");

    if (!cJSON_IsObject(ship) || !cJSON_IsNumber(amount)) {
        return NGX_ERROR;
    }

    rc = ngx_http_darkroom_checkout_countries(scf, ship, buf, len, size);

    display = ngx_http_darkroom_json_str(ship, "name");
    snprintf(num, sizeof(num), "%.0f", cJSON_GetNumberValue(amount));

#define add(k, v)                                                            \
    if (rc == NGX_OK) {                                                      \
        rc = ngx_http_darkroom_form_add(buf, len, size, k, v);              \
    }

    add("phone_number_collection[enabled]", "true");
    add("shipping_options[0][shipping_rate_data][type]", "fixed_amount");
    add("shipping_options[0][shipping_rate_data][fixed_amount][amount]", num);
    add("shipping_options[0][shipping_rate_data][fixed_amount][currency]",
        currency);
    add("shipping_options[0][shipping_rate_data][display_name]",
        (display && display[0]) ? display : "Shipping");

#undef add

    return rc;
}


/*
 * The countries of the shipping address: the cart's, or while the shop
 * has no shipping zone (the cart's zone is null), the deprecated
 * darkroom_shipping_countries when it is set.
 */

static ngx_int_t
ngx_http_darkroom_checkout_countries(ngx_http_darkroom_shop_conf_t *scf,
    cJSON *ship, char **buf, size_t *len, size_t *size)
{
    char         name[96];
    cJSON       *c;
    ngx_int_t    rc;
    ngx_str_t   *cc;
    ngx_uint_t   n;

    rc = NGX_OK;
    n = 0;

    if (scf->shipping_countries != NULL
        && cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(ship, "zone")))
    {
        cc = scf->shipping_countries->elts;

        for (n = 0; rc == NGX_OK && n < scf->shipping_countries->nelts; n++)
        {
            snprintf(name, sizeof(name),
                     "shipping_address_collection[allowed_countries][%u]",
                     (unsigned) n);
            rc = ngx_http_darkroom_form_add(buf, len, size, name,
                                            (char *) cc[n].data);
        }

        return rc;
    }

    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(ship,
                                                           "countries"))
    {
        if (rc != NGX_OK || !cJSON_IsString(c)) {
            continue;
        }

        snprintf(name, sizeof(name),
                 "shipping_address_collection[allowed_countries][%u]",
                 (unsigned) n++);
        rc = ngx_http_darkroom_form_add(buf, len, size, name, c->valuestring);
    }

    return (n == 0) ? NGX_ERROR : rc;
}


/*
 * Prices that exclude tax: the tax (lines and shipping) as one more line,
 * named by the cart's tax_label ("Sales tax 8 %"), so that Stripe's total
 * is the order's.  Stripe Tax (automatic_tax) is not used: it computes
 * its own amounts once the order's total is fixed (docs/directives.md).
 */

static ngx_int_t
ngx_http_darkroom_checkout_tax(cJSON *cart, const char *currency, int i,
    char **buf, size_t *len, size_t *size)
{
    char         name[96], num[32];
    cJSON       *incl, *tax;
    ngx_int_t    rc;
    const char  *label;

    incl = cJSON_GetObjectItemCaseSensitive(cart, "tax_inclusive");
    tax = cJSON_GetObjectItemCaseSensitive(cart, "tax_amount");

    if (!cJSON_IsFalse(incl) || !cJSON_IsNumber(tax)
        || cJSON_GetNumberValue(tax) < 1)
    {
        return NGX_OK;
    }

    label = ngx_http_darkroom_json_str(cart, "tax_label");
    snprintf(num, sizeof(num), "%.0f", cJSON_GetNumberValue(tax));

    snprintf(name, sizeof(name), "line_items[%d][price_data][currency]", i);
    rc = ngx_http_darkroom_form_add(buf, len, size, name, currency);

    snprintf(name, sizeof(name),
             "line_items[%d][price_data][product_data][name]", i);
    if (rc == NGX_OK) {
        rc = ngx_http_darkroom_form_add(buf, len, size, name,
                                        (label && label[0]) ? label : "Tax");
    }

    snprintf(name, sizeof(name), "line_items[%d][price_data][unit_amount]",
             i);
    if (rc == NGX_OK) {
        rc = ngx_http_darkroom_form_add(buf, len, size, name, num);
    }

    snprintf(name, sizeof(name), "line_items[%d][quantity]", i);
    if (rc == NGX_OK) {
        rc = ngx_http_darkroom_form_add(buf, len, size, name, "1");
    }

    return rc;
}


static ngx_int_t
ngx_http_darkroom_checkout_done(ngx_http_request_t *r,
    ngx_http_darkroom_task_t *t)
{
    size_t                         len;
    ngx_table_elt_t               *h;
    ngx_http_darkroom_checkout_t  *co = t->data;

    ngx_http_darkroom_log_note(r, NGX_HTTP_DARKROOM_LOG_ORDER, co->ref);

    if (t->err.status) {
        ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "darkroom checkout: order \"%s\" refused %ui %s",
                       co->ref, t->err.status, t->err.code);

        return ngx_http_darkroom_send_task_error(r, &t->err);
    }

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "darkroom checkout: order %s answered %ui%s", co->ref,
                   co->form ? (ngx_uint_t) NGX_HTTP_SEE_OTHER : t->status,
                   co->replay ? " (replay)" : "");

    ngx_http_darkroom_log_note(r, NGX_HTTP_DARKROOM_LOG_RESULT,
                               co->replay ? "replay" : "created");

    if (co->form) {
        len = ngx_strlen(co->checkout_url);

        /* the URL is freed with the request's pool, after the header went */
        h = ngx_http_darkroom_header_out(r, "Location",
                                         (u_char *) co->checkout_url, len);
        if (h == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        r->headers_out.location = h;

        return ngx_http_darkroom_send_json(r, NGX_HTTP_SEE_OTHER,
                                           (u_char *) t->out, t->out_len);
    }

    return ngx_http_darkroom_send_json(r, t->status, (u_char *) t->out,
                                       t->out_len);
}


static void
ngx_http_darkroom_checkout_cleanup(void *data)
{
    ngx_http_darkroom_checkout_t  *co = data;

    free(co->checkout_url);
    co->checkout_url = NULL;
}
