
/*
 * darkroom: private client galleries, proofing: the routes of the client
 * API (darkroom_gallery) for visitors and their lists, dispatched from
 * ngx_http_darkroom_gallery.c.  Paths are relative to the location:
 *
 *   POST <slug>/visitor            {"name", "email"}: the visitor cookie
 *   POST <slug>/visitor/logout     clears it
 *   GET  <slug>/lists              the visitor's lists ("Favourites" made
 *                                  on demand) and the gallery's selection
 *   POST <slug>/lists              {"name"}: a new list
 *   POST <slug>/lists/<id>/photos  {"photo", "note"}: adds, or sets the note
 *   POST <slug>/lists/<id>/remove  {"photo"}
 *   POST <slug>/lists/<id>/submit  {}: locks the list, mails the
 *                                  photographer (402 when extras are due)
 *
 * The visitor cookie darkroom_visitor=<id>.<gen>.<visitor>.<exp>.<sig> is
 * an HMAC with the gallery cookie keys over a domain of its own, bound to
 * the gallery, its generation (rotating ends it) and the visitor.  The
 * rules (ownership, the limit, locking) are in sql/functions/proofing.sql;
 * all of this runs in the thread pool.
 */


#include "ngx_http_darkroom_gallery.h"
#include "ngx_http_darkroom_gallery_req.h"
#include "ngx_http_darkroom_gallery_cookie.h"

#include <openssl/crypto.h>


#define NGX_HTTP_DARKROOM_GALLERY_NAME_MAX   100
#define NGX_HTTP_DARKROOM_GALLERY_EMAIL_MAX  254
#define NGX_HTTP_DARKROOM_GALLERY_NOTE_MAX   2000


static ngx_int_t ngx_http_darkroom_gallery_visitor_mac(
    ngx_http_darkroom_gallery_req_t *g, ngx_str_t *key, uint64_t visitor,
    int64_t exp, u_char *sig);
static ngx_int_t ngx_http_darkroom_gallery_visitor_cookie(
    ngx_http_darkroom_gallery_req_t *g, uint64_t visitor);
static void ngx_http_darkroom_gallery_visitor_join(
    ngx_http_darkroom_task_t *t, ngx_http_darkroom_gallery_req_t *g,
    cJSON *body);
static ngx_int_t ngx_http_darkroom_gallery_proof_id(cJSON *body,
    const char *name, char *buf, size_t size);
static const char *ngx_http_darkroom_gallery_proof_str(cJSON *body,
    const char *name, size_t max, ngx_uint_t *bad);
static void ngx_http_darkroom_gallery_proof_answer(
    ngx_http_darkroom_task_t *t, PGresult *res);


/* on the event loop: the proofing routes; NGX_DECLINED: none of them */

ngx_int_t
ngx_http_darkroom_gallery_proof_route(ngx_http_darkroom_gallery_req_t *g,
    ngx_str_t *seg, ngx_int_t n, ngx_uint_t get)
{
    ngx_uint_t  i;

    if (n == 2 && ngx_http_darkroom_is(seg[1], "visitor")) {
        g->route = NGX_HTTP_DARKROOM_GALLERY_VISITOR;
        return NGX_OK;
    }

    if (n == 3 && ngx_http_darkroom_is(seg[1], "visitor")
        && ngx_http_darkroom_is(seg[2], "logout"))
    {
        g->route = NGX_HTTP_DARKROOM_GALLERY_VISITOR_LOGOUT;
        return NGX_OK;
    }

    if (n == 2 && ngx_http_darkroom_is(seg[1], "lists")) {
        g->route = get ? NGX_HTTP_DARKROOM_GALLERY_LISTS
                       : NGX_HTTP_DARKROOM_GALLERY_LIST_CREATE;
        return NGX_OK;
    }

    if (n != 4 || !ngx_http_darkroom_is(seg[1], "lists")
        || seg[2].len == 0 || seg[2].len > 18 || seg[2].data[0] == '0')
    {
        return NGX_DECLINED;
    }

    for (i = 0; i < seg[2].len; i++) {
        if (seg[2].data[i] < '0' || seg[2].data[i] > '9') {
            return NGX_DECLINED;
        }
    }

    g->list = (uint64_t) ngx_atoof(seg[2].data, seg[2].len);

    if (ngx_http_darkroom_is(seg[3], "photos")) {
        g->route = NGX_HTTP_DARKROOM_GALLERY_LIST_ADD;

    } else if (ngx_http_darkroom_is(seg[3], "remove")) {
        g->route = NGX_HTTP_DARKROOM_GALLERY_LIST_REMOVE;

    } else if (ngx_http_darkroom_is(seg[3], "submit")) {
        g->route = NGX_HTTP_DARKROOM_GALLERY_LIST_SUBMIT;

    } else {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/* in a thread from here on */

/*
 * base64url(HMAC-SHA256(key,
 *     "darkroom-visitor-v1\n<slug>\n<id>.<gen>\n<visitor>\n<exp>\n"))
 */

static ngx_int_t
ngx_http_darkroom_gallery_visitor_mac(ngx_http_darkroom_gallery_req_t *g,
    ngx_str_t *key, uint64_t visitor, int64_t exp, u_char *sig)
{
    int   len;
    char  msg[256];

    len = snprintf(msg, sizeof(msg),
                   "darkroom-visitor-v1\n%s\n%llu.%u\n%llu\n%lld\n",
                   g->slug, (unsigned long long) g->id,
                   (unsigned) g->generation, (unsigned long long) visitor,
                   (long long) exp);

    return ngx_http_darkroom_gallery_hmac(key, msg, len, sizeof(msg), sig);
}


/*
 * g->visitor: the visitor of the first darkroom_visitor cookie of this
 * gallery and generation, not expired, signed by one of the keys; 0 if
 * there is none.  The database still checks the visitor exists.
 */

void
ngx_http_darkroom_gallery_visitor_check(ngx_http_darkroom_gallery_req_t *g)
{
    size_t                                vlen;
    ngx_str_t                            *keys;
    ngx_uint_t                            k, match;
    const u_char                         *pos, *end, *val;
    ngx_http_darkroom_gallery_visitor_t   c;
    u_char                                sig[NGX_HTTP_DARKROOM_SIGN_SIG_LEN
                                              + 1];

    g->visitor = 0;

    if (g->cookies == NULL) {
        return;
    }

    keys = g->conf->cookie_keys->elts;

    pos = g->cookies;
    end = g->cookies + g->cookies_len;

    while (ngx_http_darkroom_gallery_visitor_next(&pos, end, &val, &vlen)) {

        if (ngx_http_darkroom_gallery_visitor_parse(val, vlen, &c) != 0
            || c.id != g->id || c.generation != g->generation
            || c.expires <= (int64_t) g->now)
        {
            continue;
        }

        match = 0;

        for (k = 0; k < g->conf->cookie_keys->nelts; k++) {
            if (ngx_http_darkroom_gallery_visitor_mac(g, &keys[k], c.visitor,
                                                      c.expires, sig)
                != NGX_OK)
            {
                continue;
            }

            match |= (CRYPTO_memcmp(sig, c.sig,
                                    NGX_HTTP_DARKROOM_SIGN_SIG_LEN) == 0);
        }

        if (match) {
            g->visitor = c.visitor;
            return;
        }
    }
}


/* the visitor cookie in g->set_visitor; visitor 0 clears it */

static ngx_int_t
ngx_http_darkroom_gallery_visitor_cookie(ngx_http_darkroom_gallery_req_t *g,
    uint64_t visitor)
{
    char        value[NGX_HTTP_DARKROOM_GALLERY_COOKIE_VALUE_MAX];
    int64_t     exp;
    ngx_str_t  *keys;
    u_char      sig[NGX_HTTP_DARKROOM_SIGN_SIG_LEN + 1];

    if (visitor == 0) {
        ngx_http_darkroom_gallery_cookie_header(g, g->set_visitor,
                   sizeof(g->set_visitor),
                   NGX_HTTP_DARKROOM_GALLERY_VISITOR_NAME, "", 0);
        return NGX_OK;
    }

    exp = ngx_http_darkroom_gallery_cookie_expiry(g);

    keys = g->conf->cookie_keys->elts;

    if (ngx_http_darkroom_gallery_visitor_mac(g, &keys[0], visitor, exp, sig)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    sig[NGX_HTTP_DARKROOM_SIGN_SIG_LEN] = '\0';

    snprintf(value, sizeof(value), "%llu.%u.%llu.%lld.%s",
             (unsigned long long) g->id, (unsigned) g->generation,
             (unsigned long long) visitor, (long long) exp, sig);

    ngx_http_darkroom_gallery_cookie_header(g, g->set_visitor,
               sizeof(g->set_visitor),
               NGX_HTTP_DARKROOM_GALLERY_VISITOR_NAME, value, exp);

    return NGX_OK;
}


/* the proofing routes, once the gallery's access is checked */

void
ngx_http_darkroom_gallery_proof(ngx_http_darkroom_task_t *t,
    ngx_http_darkroom_gallery_req_t *g, cJSON *body)
{
    char         id[NGX_INT64_LEN + 1], vid[NGX_INT64_LEN + 1],
                 list[NGX_INT64_LEN + 1], photo[NGX_INT64_LEN + 1];
    cJSON       *json;
    PGresult    *res;
    ngx_uint_t   bad;
    const char  *sql, *params[5];

    snprintf(id, sizeof(id), "%llu", (unsigned long long) g->id);
    snprintf(vid, sizeof(vid), "%llu", (unsigned long long) g->visitor);
    snprintf(list, sizeof(list), "%llu", (unsigned long long) g->list);

    params[0] = id;
    params[1] = g->visitor ? vid : NULL;   /* NULL: 401 visitor_required */
    params[2] = list;
    bad = 0;

    switch (g->route) {

    case NGX_HTTP_DARKROOM_GALLERY_VISITOR:
        ngx_http_darkroom_gallery_visitor_join(t, g, body);
        return;

    case NGX_HTTP_DARKROOM_GALLERY_VISITOR_LOGOUT:
        (void) ngx_http_darkroom_gallery_visitor_cookie(g, 0);
        json = cJSON_CreateObject();
        cJSON_AddNullToObject(json, "visitor");
        ngx_http_darkroom_gallery_answer(t, NGX_HTTP_OK, json);
        return;

    case NGX_HTTP_DARKROOM_GALLERY_LISTS:
        res = ngx_http_darkroom_db_exec(&t->db,
                  "SELECT gallery_lists_get($1, $2)", 2, params, &t->err);
        break;

    case NGX_HTTP_DARKROOM_GALLERY_LIST_CREATE:
        params[2] = ngx_http_darkroom_gallery_proof_str(body, "name",
                                  NGX_HTTP_DARKROOM_GALLERY_NAME_MAX, &bad);
        if (params[2] == NULL) {
            bad = 1;
            break;
        }

        res = ngx_http_darkroom_db_exec(&t->db,
                  "SELECT gallery_list_create($1, $2, $3)", 3, params,
                  &t->err);
        break;

    case NGX_HTTP_DARKROOM_GALLERY_LIST_ADD:
    case NGX_HTTP_DARKROOM_GALLERY_LIST_REMOVE:
        if (ngx_http_darkroom_gallery_proof_id(body, "photo", photo,
                                               sizeof(photo))
            != NGX_OK)
        {
            bad = 1;
            break;
        }

        params[3] = photo;

        params[4] = ngx_http_darkroom_gallery_proof_str(body, "note",
                                  NGX_HTTP_DARKROOM_GALLERY_NOTE_MAX, &bad);

        sql = (g->route == NGX_HTTP_DARKROOM_GALLERY_LIST_REMOVE)
              ? "SELECT gallery_list_remove($1, $2, $3, $4)"
              : "SELECT gallery_list_add($1, $2, $3, $4, $5)";

        res = bad ? NULL
                  : ngx_http_darkroom_db_exec(&t->db, sql,
                        g->route == NGX_HTTP_DARKROOM_GALLERY_LIST_REMOVE
                        ? 4 : 5, params, &t->err);
        break;

    default: /* NGX_HTTP_DARKROOM_GALLERY_LIST_SUBMIT */
        res = ngx_http_darkroom_db_exec(&t->db,
                  "SELECT gallery_list_submit($1, $2, $3)", 3, params,
                  &t->err);
        break;
    }

    if (bad) {
        ngx_http_darkroom_error_set(&t->err, NGX_HTTP_BAD_REQUEST,
                   "invalid_request",
                   g->route == NGX_HTTP_DARKROOM_GALLERY_LIST_CREATE
                   ? "Send {\"name\": \"...\"} (at most 100 characters)."
                   : "Send {\"photo\": id} and optionally \"note\" (a string "
                     "of at most 2000 characters).");
        return;
    }

    if (res == NULL) {
        return;
    }

    ngx_http_darkroom_gallery_proof_answer(t, res);
}


/* POST <slug>/visitor {"name", "email"}: the visitor and their cookie */

static void
ngx_http_darkroom_gallery_visitor_join(ngx_http_darkroom_task_t *t,
    ngx_http_darkroom_gallery_req_t *g, cJSON *body)
{
    char         id[NGX_INT64_LEN + 1];
    cJSON       *json, *v;
    uint64_t     visitor;
    PGresult    *res;
    ngx_uint_t   bad;
    const char  *params[3], *value;

    bad = 0;
    params[1] = ngx_http_darkroom_gallery_proof_str(body, "name",
                                  NGX_HTTP_DARKROOM_GALLERY_NAME_MAX, &bad);
    params[2] = ngx_http_darkroom_gallery_proof_str(body, "email",
                                  NGX_HTTP_DARKROOM_GALLERY_EMAIL_MAX, &bad);

    if (bad || params[1] == NULL || params[2] == NULL) {
        ngx_http_darkroom_error_set(&t->err, NGX_HTTP_BAD_REQUEST,
                                    "invalid_visitor",
                                    "Send {\"name\": \"...\", \"email\": "
                                    "\"...\"}.");
        return;
    }

    snprintf(id, sizeof(id), "%llu", (unsigned long long) g->id);
    params[0] = id;

    res = ngx_http_darkroom_db_exec(&t->db,
              "SELECT gallery_visitor_join($1, $2, $3)", 3, params, &t->err);
    if (res == NULL) {
        return;
    }

    value = ngx_http_darkroom_db_only(res);
    json = value ? cJSON_Parse(value) : NULL;
    PQclear(res);

    v = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(json, "visitor"), "id");

    visitor = cJSON_IsNumber(v) ? (uint64_t) v->valuedouble : 0;

    if (visitor == 0
        || ngx_http_darkroom_gallery_visitor_cookie(g, visitor) != NGX_OK)
    {
        cJSON_Delete(json);
        ngx_http_darkroom_error_set(&t->err, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                    "internal_error", "Please retry.");
        return;
    }

    ngx_http_darkroom_gallery_answer(t, NGX_HTTP_OK, json);
}


/* a positive integer member as decimal text */

static ngx_int_t
ngx_http_darkroom_gallery_proof_id(cJSON *body, const char *name, char *buf,
    size_t size)
{
    cJSON  *v;

    v = cJSON_GetObjectItemCaseSensitive(body, name);

    if (!cJSON_IsNumber(v) || v->valuedouble < 1
        || v->valuedouble > 9007199254740991.0
        || v->valuedouble != (double) (int64_t) v->valuedouble)
    {
        return NGX_ERROR;
    }

    snprintf(buf, size, "%.0f", v->valuedouble);

    return NGX_OK;
}


/* a string member of at most max bytes; absent or null: NULL, not bad */

static const char *
ngx_http_darkroom_gallery_proof_str(cJSON *body, const char *name,
    size_t max, ngx_uint_t *bad)
{
    cJSON  *v;

    v = cJSON_GetObjectItemCaseSensitive(body, name);

    if (v == NULL || cJSON_IsNull(v)) {
        return NULL;
    }

    if (!cJSON_IsString(v) || ngx_strlen(v->valuestring) > max * 4) {
        *bad = 1;
        return NULL;
    }

    return v->valuestring;
}


/*
 * The JSON a proofing function answered; one with "status" (a 402 of
 * submit) is that status, without the member.  Takes the result.
 */

static void
ngx_http_darkroom_gallery_proof_answer(ngx_http_darkroom_task_t *t,
    PGresult *res)
{
    cJSON       *json, *status;
    const char  *value;

    value = ngx_http_darkroom_db_only(res);

    if (value == NULL || ngx_strstr(value, "\"status\"") == NULL) {
        ngx_http_darkroom_task_answer(t, res, "There is no such list.");
        return;
    }

    json = cJSON_Parse(value);
    PQclear(res);

    status = cJSON_GetObjectItemCaseSensitive(json, "status");

    if (!cJSON_IsNumber(status)) {
        ngx_http_darkroom_gallery_answer(t, NGX_HTTP_OK, json);
        return;
    }

    cJSON_DetachItemViaPointer(json, status);
    ngx_http_darkroom_gallery_answer(t, (ngx_uint_t) status->valueint, json);
    cJSON_Delete(status);
}


/* "selection" and "visitor" of the listing's gallery */

ngx_int_t
ngx_http_darkroom_gallery_proof_info(ngx_http_darkroom_task_t *t,
    ngx_http_darkroom_gallery_req_t *g, cJSON *gallery)
{
    char         id[NGX_INT64_LEN + 1], vid[NGX_INT64_LEN + 1];
    PGresult    *res;
    const char  *params[2], *sel, *vis;

    snprintf(id, sizeof(id), "%llu", (unsigned long long) g->id);
    snprintf(vid, sizeof(vid), "%llu", (unsigned long long) g->visitor);

    params[0] = id;
    params[1] = g->visitor ? vid : NULL;

    res = ngx_http_darkroom_db_exec(&t->db,
              "SELECT gallery_selection_json($1)::text AS selection, "
              "gallery_visitor_get($1, $2) AS visitor", 2, params, &t->err);
    if (res == NULL) {
        return NGX_ERROR;
    }

    sel = ngx_http_darkroom_db_value(res, 0, "selection");
    vis = ngx_http_darkroom_db_value(res, 0, "visitor");

    cJSON_AddRawToObject(gallery, "selection", sel[0] ? sel : "null");
    cJSON_AddRawToObject(gallery, "visitor", vis[0] ? vis : "null");

    PQclear(res);

    return NGX_OK;
}


/*
 * POST <slug>/download of n photos: counted against the visitor's limit
 * (a gallery with one needs a visitor); the signed links and the ZIP then
 * carry the visitor, g = "<id>.<gen>.<visitor>", for the download log.
 */

ngx_int_t
ngx_http_darkroom_gallery_proof_download(ngx_http_darkroom_task_t *t,
    ngx_http_darkroom_gallery_req_t *g, ngx_uint_t n)
{
    char         id[NGX_INT64_LEN + 1], vid[NGX_INT64_LEN + 1],
                 num[NGX_INT_T_LEN + 1];
    const char  *params[3];

    if (n == 0) {
        if (g->visitor) {
            snprintf(g->g, sizeof(g->g), "%llu.%u.%llu",
                     (unsigned long long) g->id, (unsigned) g->generation,
                     (unsigned long long) g->visitor);
        }

        return NGX_OK;
    }

    snprintf(id, sizeof(id), "%llu", (unsigned long long) g->id);
    snprintf(vid, sizeof(vid), "%llu", (unsigned long long) g->visitor);
    snprintf(num, sizeof(num), "%lu", (unsigned long) n);

    params[0] = id;
    params[1] = g->visitor ? vid : NULL;
    params[2] = num;

    return ngx_http_darkroom_db_command(&t->db,
               "SELECT gallery_visitor_download($1, $2, $3)", 3, params,
               &t->err);
}


/*
 * The ZIP's visitor: make 1 records g->visitor with the token's hash;
 * make 0 reads it back into g->g for the download log.
 */

ngx_int_t
ngx_http_darkroom_gallery_proof_zip(ngx_http_darkroom_task_t *t,
    ngx_http_darkroom_gallery_req_t *g, const char *hash, ngx_uint_t make)
{
    char         vid[NGX_INT64_LEN + 1];
    PGresult    *res;
    const char  *params[2], *v;

    params[0] = hash;

    if (make) {
        if (g->visitor == 0) {
            return NGX_OK;
        }

        snprintf(vid, sizeof(vid), "%llu", (unsigned long long) g->visitor);
        params[1] = vid;

        return ngx_http_darkroom_db_command(&t->db,
                   "SELECT gallery_zip_visitor($1, $2)", 2, params, &t->err);
    }

    res = ngx_http_darkroom_db_exec(&t->db,
              "SELECT gallery_zip_visitor_of($1) AS visitor", 1, params,
              &t->err);
    if (res == NULL) {
        return NGX_ERROR;
    }

    v = ngx_http_darkroom_db_value(res, 0, "visitor");

    if (v[0]) {
        g->visitor = strtoull(v, NULL, 10);
        snprintf(g->g, sizeof(g->g), "%llu.%u.%llu",
                 (unsigned long long) g->id, (unsigned) g->generation,
                 (unsigned long long) g->visitor);
    }

    PQclear(res);

    return NGX_OK;
}
