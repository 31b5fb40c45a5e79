
/*
 * darkroom: the public read endpoints: the catalogue for the shop page and
 * an order's status for its customer.
 *
 * The JSON is made by Postgres (catalogue_json, order_public_json), one
 * query each.  With darkroom_public_cache the catalogue of each currency
 * is kept in shared memory (catalogue_public() builds them all) and
 * answered from there; a currency it does not hold, or no zone, is the
 * query.  An order is found by its status token, 128 random bits the
 * customer holds; the database keeps only its SHA-256, so a lookup never
 * compares the secret itself and a leaked table reveals no live link.
 */


#include "ngx_http_darkroom_shop.h"


/* a catalogue's key in the public cache: the prefix, an ISO 4217 code */
#define NGX_HTTP_DARKROOM_CATALOGUE_KEY      "catalogue:"
#define NGX_HTTP_DARKROOM_CATALOGUE_KEY_LEN                                  \
    (sizeof(NGX_HTTP_DARKROOM_CATALOGUE_KEY) - 1 + 3)


typedef struct {
    char        arg[NGX_HTTP_DARKROOM_HASH_SIZE];  /* currency, or a hash */
} ngx_http_darkroom_read_t;


static ngx_int_t ngx_http_darkroom_catalogue_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_darkroom_catalogue_prepare(ngx_http_request_t *r,
    ngx_http_darkroom_task_t *t);
static void ngx_http_darkroom_catalogue_work(ngx_http_darkroom_task_t *t);
static ngx_int_t ngx_http_darkroom_catalogue_build(
    ngx_http_darkroom_public_build_t *b);
static ngx_int_t ngx_http_darkroom_catalogue_cached(ngx_http_request_t *r);
static ngx_int_t ngx_http_darkroom_order_status_handler(
    ngx_http_request_t *r);
static ngx_int_t ngx_http_darkroom_order_status_prepare(
    ngx_http_request_t *r, ngx_http_darkroom_task_t *t);
static void ngx_http_darkroom_order_status_work(ngx_http_darkroom_task_t *t);


static ngx_http_darkroom_public_source_t  ngx_http_darkroom_catalogue_source = {
    "catalogue", ngx_http_darkroom_catalogue_build
};


char *
ngx_http_darkroom_catalogue(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    if (ngx_http_darkroom_use(cf, cmd, ngx_http_darkroom_catalogue_handler,
                              NULL)
        == NULL
        || ngx_http_darkroom_public_source(cf,
                                         &ngx_http_darkroom_catalogue_source)
           != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


char *
ngx_http_darkroom_order_status(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    if (ngx_http_darkroom_use(cf, cmd,
                              ngx_http_darkroom_order_status_handler, NULL)
        == NULL)
    {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_darkroom_catalogue_handler(ngx_http_request_t *r)
{
    ngx_int_t  rc;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_darkroom_catalogue_cached(r);

    if (rc != NGX_DECLINED) {
        return rc;
    }

    return ngx_http_darkroom_task_start(r, sizeof(ngx_http_darkroom_read_t),
                                        ngx_http_darkroom_catalogue_prepare,
                                        ngx_http_darkroom_catalogue_work,
                                        NULL);
}


static ngx_int_t
ngx_http_darkroom_catalogue_prepare(ngx_http_request_t *r,
    ngx_http_darkroom_task_t *t)
{
    ngx_str_t                       cur;
    ngx_http_darkroom_read_t       *rd = t->data;
    ngx_http_darkroom_shop_conf_t  *scf;

    scf = ngx_http_get_module_main_conf(r, ngx_http_darkroom_shop_module);

    cur = scf->currency;

    if (ngx_http_arg(r, (u_char *) "currency", 8, &cur) == NGX_OK
        && (cur.len != 3 || !isalpha(cur.data[0]) || !isalpha(cur.data[1])
            || !isalpha(cur.data[2])))
    {
        return ngx_http_darkroom_send_error(r, NGX_HTTP_BAD_REQUEST,
                   "invalid_currency",
                   "The currency must be a three-letter ISO code.");
    }

    rd->arg[0] = ngx_toupper(cur.data[0]);
    rd->arg[1] = ngx_toupper(cur.data[1]);
    rd->arg[2] = ngx_toupper(cur.data[2]);
    rd->arg[3] = '\0';

    return NGX_OK;
}


static void
ngx_http_darkroom_catalogue_work(ngx_http_darkroom_task_t *t)
{
    ngx_http_darkroom_read_t  *rd = t->data;

    PGresult                  *res;
    const char                *params[1];

    params[0] = rd->arg;

    res = ngx_http_darkroom_db_exec(&t->db, "SELECT catalogue_json($1)",
                                    1, params, &t->err);
    if (res) {
        ngx_http_darkroom_task_answer(t, res, "There is no catalogue.");
    }
}


/*
 * The catalogue of the currency asked (else the shop's) from the zone;
 * NGX_DECLINED: not there (a bad currency too: the query path says so).
 */

static ngx_int_t
ngx_http_darkroom_catalogue_cached(ngx_http_request_t *r)
{
    u_char                          key[NGX_HTTP_DARKROOM_CATALOGUE_KEY_LEN];
    ngx_uint_t                      i;
    ngx_str_t                       cur, k;
    ngx_http_darkroom_shop_conf_t  *scf;

    if (r->headers_in.content_length_n > 0 || r->headers_in.chunked) {
        /* a body to read and drop: the task path does that */
        return NGX_DECLINED;
    }

    scf = ngx_http_get_module_main_conf(r, ngx_http_darkroom_shop_module);

    cur = scf->currency;

    if (ngx_http_arg(r, (u_char *) "currency", 8, &cur) == NGX_OK
        && (cur.len != 3 || !isalpha(cur.data[0]) || !isalpha(cur.data[1])
            || !isalpha(cur.data[2])))
    {
        return NGX_DECLINED;
    }

    k.data = key;
    k.len = sizeof(key);

    ngx_memcpy(key, NGX_HTTP_DARKROOM_CATALOGUE_KEY,
               sizeof(NGX_HTTP_DARKROOM_CATALOGUE_KEY) - 1);

    for (i = 0; i < 3; i++) {
        key[sizeof(NGX_HTTP_DARKROOM_CATALOGUE_KEY) - 1 + i] =
                                                  ngx_toupper(cur.data[i]);
    }

    return ngx_http_darkroom_public_send(r, &k);
}


/* in the zone's builder thread: the catalogue in each currency it keeps */

static ngx_int_t
ngx_http_darkroom_catalogue_build(ngx_http_darkroom_public_build_t *b)
{
    int          row, n, ccur, cbody;
    char         key[NGX_HTTP_DARKROOM_CATALOGUE_KEY_LEN + 1];
    PGresult    *res;
    ngx_int_t    rc;
    const char  *params[1];

    params[0] = (const char *) b->conf->shop_currency.data;

    res = ngx_http_darkroom_db_exec(b->db, "SELECT currency, body"
                                    " FROM catalogue_public($1)",
                                    1, params, b->err);
    if (res == NULL) {
        return NGX_ERROR;
    }

    n = PQntuples(res);
    ccur = ngx_http_darkroom_db_col(res, "currency");
    cbody = ngx_http_darkroom_db_col(res, "body");
    rc = NGX_OK;

    for (row = 0; ccur >= 0 && cbody >= 0 && row < n; row++) {
        if (PQgetisnull(res, row, cbody)
            || ngx_strlen(PQgetvalue(res, row, ccur)) != 3)
        {
            continue;
        }

        ngx_sprintf((u_char *) key, NGX_HTTP_DARKROOM_CATALOGUE_KEY "%s%Z",
                    PQgetvalue(res, row, ccur));

        rc = ngx_http_darkroom_public_put(b, key, "application/json",
                                          PQgetvalue(res, row, cbody),
                                          PQgetlength(res, row, cbody));
        if (rc != NGX_OK) {
            break;
        }
    }

    PQclear(res);

    return rc;
}


static ngx_int_t
ngx_http_darkroom_order_status_handler(ngx_http_request_t *r)
{
    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    return ngx_http_darkroom_task_start(r, sizeof(ngx_http_darkroom_read_t),
                                        ngx_http_darkroom_order_status_prepare,
                                        ngx_http_darkroom_order_status_work,
                                        NULL);
}


/* the token is the last path segment: /api/orders/<token> */

static ngx_int_t
ngx_http_darkroom_order_status_prepare(ngx_http_request_t *r,
    ngx_http_darkroom_task_t *t)
{
    u_char                    *token;
    size_t                     len;
    ngx_uint_t                 i;
    ngx_http_darkroom_read_t  *rd = t->data;

    token = r->uri.data + r->uri.len;
    len = 0;

    while (token > r->uri.data && token[-1] != '/') {
        token--;
        len++;
    }

    for (i = 0; i < len; i++) {
        if (!((token[i] >= '0' && token[i] <= '9')
              || (token[i] >= 'a' && token[i] <= 'f')))
        {
            break;
        }
    }

    if (len != 32 || i != len) {
        return ngx_http_darkroom_send_error(r, NGX_HTTP_NOT_FOUND,
                   "not_found", "There is no order at this address.");
    }

    if (ngx_http_darkroom_sha256_hex(token, len, rd->arg) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return NGX_OK;
}


static void
ngx_http_darkroom_order_status_work(ngx_http_darkroom_task_t *t)
{
    ngx_http_darkroom_read_t  *rd = t->data;

    PGresult                  *res;
    const char                *params[1];

    params[0] = rd->arg;

    res = ngx_http_darkroom_db_exec(&t->db, "SELECT order_public_json($1)",
                                    1, params, &t->err);
    if (res) {
        ngx_http_darkroom_task_answer(t, res,
                                      "There is no order at this address.");
    }

    if (t->out) {
        ngx_http_darkroom_order_downloads(t);
    }
}


/*
 * The order's "downloads" come with what signing needs (grant, nonce,
 * exp); core's signer (darkroom_download_url, darkroom_download_keys)
 * turns them into "url".  In the thread: cJSON and HMAC, no nginx memory.
 * Also for the admin's re-issue answer.  The order's reference is noted
 * for $darkroom_order.
 */

void
ngx_http_darkroom_order_downloads(ngx_http_darkroom_task_t *t)
{
    char   *text;
    cJSON  *json, *downloads, *ref;

    json = cJSON_Parse(t->out);
    if (json == NULL) {
        return;
    }

    /* $darkroom_order: the task's plain array, read once it completed */

    ref = cJSON_GetObjectItemCaseSensitive(json, "order");

    if (cJSON_IsString(ref)) {
        ngx_cpystrn((u_char *) t->log_order, (u_char *) ref->valuestring,
                    sizeof(t->log_order));
    }

    downloads = cJSON_GetObjectItemCaseSensitive(json, "downloads");

    if (!cJSON_IsArray(downloads) || cJSON_GetArraySize(downloads) == 0) {
        cJSON_Delete(json);
        return;
    }

    text = NULL;

    if (ngx_http_darkroom_download_sign_json(t->conf, downloads) == NGX_OK) {
        text = cJSON_PrintUnformatted(json);
    }

    cJSON_Delete(json);

    free(t->out);
    t->out = text;
    t->out_len = text ? ngx_strlen(text) : 0;

    if (text == NULL) {
        ngx_http_darkroom_error_set(&t->err, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                    "internal_error", "Out of memory.");
    }
}
