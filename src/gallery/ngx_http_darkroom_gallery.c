
/*
 * darkroom: private client galleries, the client API (darkroom_gallery).
 *
 * Paths are relative to the location, e.g. location /api/galleries/:
 *
 *   GET  <slug>                   the gallery and its photos, with short-
 *                                 lived signed proof URLs and favourites
 *   POST <slug>/unlock            {"password"}: sets the gallery cookie
 *   POST <slug>/logout            clears it
 *   POST <slug>/favourites        {"photo": id, "favourite": true|false}
 *   POST <slug>/download          {"photos": [id, ...] | "all": true,
 *                                  "pin"}: signed original URLs and a ZIP
 *   GET  <slug>/zip/<token>       the ZIP, streamed (one Range works)
 *   ...  <slug>/visitor, lists    proofing: ngx_http_darkroom_gallery_proof.c
 *
 * A gallery with a password needs the cookie set by unlock: an HMAC over
 * the gallery, its generation and the cookie's expiry, so rotating or
 * revoking the gallery ends every cookie too.  Password and PIN attempts
 * are counted in the database per gallery and client address and per
 * gallery, before scrypt runs; too many wrong ones lock the client (or the
 * gallery) out for a while (429 with Retry-After).  All database work,
 * scrypt included, runs in the thread pool.
 */


#include "ngx_http_darkroom_gallery.h"
#include "ngx_http_darkroom_gallery_req.h"
#include "ngx_http_darkroom_gallery_cookie.h"
#include "ngx_http_darkroom_zip.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <openssl/crypto.h>


#define NGX_HTTP_DARKROOM_GALLERY_COOKIE                                      \
    NGX_HTTP_DARKROOM_GALLERY_COOKIE_NAME

/* a ZIP token: 16 random bytes in hex; the database keeps its SHA-256 */

/* the bytes of a stored file path used, at most */
#define NGX_HTTP_DARKROOM_GALLERY_FILE_MAX   4096

/* a PIN's bytes, at most (a password's: _GALLERY_SECRET_MAX) */
#define NGX_HTTP_DARKROOM_GALLERY_PIN_MAX    64


/* the columns read, by name: gallery_state() */
enum {
    NGX_HTTP_DARKROOM_GALLERY_STATE_ID = 0,
    NGX_HTTP_DARKROOM_GALLERY_STATE_GEN,
    NGX_HTTP_DARKROOM_GALLERY_STATE_TITLE,
    NGX_HTTP_DARKROOM_GALLERY_STATE_EXPIRES_AT,
    NGX_HTTP_DARKROOM_GALLERY_STATE_EXPIRES,
    NGX_HTTP_DARKROOM_GALLERY_STATE_REVOKED,
    NGX_HTTP_DARKROOM_GALLERY_STATE_PW_HASH,
    NGX_HTTP_DARKROOM_GALLERY_STATE_PIN_HASH,
    NGX_HTTP_DARKROOM_GALLERY_STATE_DOWNLOADS,
    NGX_HTTP_DARKROOM_GALLERY_STATE_SIZE,
    NGX_HTTP_DARKROOM_GALLERY_STATE_CURRENCY,
    NGX_HTTP_DARKROOM_GALLERY_STATE_LISTING,
    NGX_HTTP_DARKROOM_GALLERY_STATE_N
};

static const char  *const ngx_http_darkroom_gallery_state_cols[] = {
    "id", "generation", "title", "expires_at", "expires_epoch", "revoked",
    "password_hash", "pin_hash", "downloads", "download_size", "currency",
    "listing_version"
};


/*
 * The listing (GET <slug>) in darkroom_public_cache: this header, then the
 * answer's bytes, as the query path made them for a visitor without a
 * proofing cookie.  Its proof links expire at a whole bucket, at least
 * half a bucket past darkroom_gallery_proof_ttl, and it is served while
 * they still have proof_ttl to live; then the next request rebuilds it.
 */

#define NGX_HTTP_DARKROOM_GALLERY_BUCKET     60
#define NGX_HTTP_DARKROOM_GALLERY_CACHE_KEY  "gallery:"

typedef struct {
    uint64_t                           id;
    int64_t                            version;   /* listing's, at build */
    int64_t                            expires;   /* the gallery's, 0 */
    int64_t                            until;     /* served before */
    uint32_t                           generation;
    uint32_t                           password;
} ngx_http_darkroom_gallery_listing_t;


/* gallery_photos_list() */
enum {
    NGX_HTTP_DARKROOM_GALLERY_PHOTO_ID = 0,
    NGX_HTTP_DARKROOM_GALLERY_PHOTO_NAME,
    NGX_HTTP_DARKROOM_GALLERY_PHOTO_PROOF,
    NGX_HTTP_DARKROOM_GALLERY_PHOTO_BYTES,
    NGX_HTTP_DARKROOM_GALLERY_PHOTO_FAVOURITE,
    NGX_HTTP_DARKROOM_GALLERY_PHOTO_WIDTH,
    NGX_HTTP_DARKROOM_GALLERY_PHOTO_HEIGHT,
    NGX_HTTP_DARKROOM_GALLERY_PHOTO_PRODUCTS,
    NGX_HTTP_DARKROOM_GALLERY_PHOTO_N
};

static const char  *const ngx_http_darkroom_gallery_photo_cols[] = {
    "id", "name", "proof_path", "bytes", "favourite", "width", "height",
    "products"
};


/* gallery_download_files() and gallery_zip_files(): a download's files */
enum {
    NGX_HTTP_DARKROOM_GALLERY_FILE_ID = 0,
    NGX_HTTP_DARKROOM_GALLERY_FILE_NAME,
    NGX_HTTP_DARKROOM_GALLERY_FILE_PATH,
    NGX_HTTP_DARKROOM_GALLERY_FILE_BYTES,
    NGX_HTTP_DARKROOM_GALLERY_FILE_CRC32,
    NGX_HTTP_DARKROOM_GALLERY_FILE_CREATED,
    NGX_HTTP_DARKROOM_GALLERY_FILE_N
};

static const char  *const ngx_http_darkroom_gallery_file_cols[] = {
    "id", "name", "path", "bytes", "crc32", "created"
};




static ngx_int_t ngx_http_darkroom_gallery_cached(ngx_http_request_t *r);
static ngx_int_t ngx_http_darkroom_gallery_cache_key(ngx_http_request_t *r,
    ngx_http_darkroom_gallery_req_t *g, ngx_str_t *key);
static void ngx_http_darkroom_gallery_cache_put(ngx_http_request_t *r,
    ngx_http_darkroom_task_t *t);
static ngx_int_t ngx_http_darkroom_gallery_prepare(ngx_http_request_t *r,
    ngx_http_darkroom_task_t *t);
static ngx_int_t ngx_http_darkroom_gallery_route(ngx_http_request_t *r,
    ngx_http_darkroom_gallery_req_t *g);
static ngx_int_t ngx_http_darkroom_gallery_cookies(ngx_http_request_t *r,
    ngx_http_darkroom_gallery_req_t *g);
static void ngx_http_darkroom_gallery_cleanup(void *data);
static void ngx_http_darkroom_gallery_work(ngx_http_darkroom_task_t *t);
static ngx_int_t ngx_http_darkroom_gallery_load(ngx_http_darkroom_task_t *t,
    ngx_http_darkroom_gallery_req_t *g);
static ngx_int_t ngx_http_darkroom_gallery_mac(
    ngx_http_darkroom_gallery_req_t *g, ngx_str_t *key, int64_t exp,
    u_char *sig);
static ngx_int_t ngx_http_darkroom_gallery_cookie_ok(
    ngx_http_darkroom_gallery_req_t *g);
static ngx_int_t ngx_http_darkroom_gallery_set_cookie(
    ngx_http_darkroom_gallery_req_t *g, ngx_uint_t clear);
static ngx_int_t ngx_http_darkroom_gallery_secret(
    ngx_http_darkroom_task_t *t, ngx_http_darkroom_gallery_req_t *g,
    const char *kind, const char *value, const char *hash);
static long ngx_http_darkroom_gallery_attempt(ngx_http_darkroom_task_t *t,
    ngx_http_darkroom_gallery_req_t *g, const char *kind, ngx_int_t ok);
static void ngx_http_darkroom_gallery_unlock(ngx_http_darkroom_task_t *t,
    ngx_http_darkroom_gallery_req_t *g, cJSON *body);
static cJSON *ngx_http_darkroom_gallery_info(
    ngx_http_darkroom_gallery_req_t *g);
static void ngx_http_darkroom_gallery_list(ngx_http_darkroom_task_t *t,
    ngx_http_darkroom_gallery_req_t *g);
static void ngx_http_darkroom_gallery_favourite(ngx_http_darkroom_task_t *t,
    ngx_http_darkroom_gallery_req_t *g, cJSON *body);
static char *ngx_http_darkroom_gallery_ids(cJSON *body, ngx_uint_t *bad);
static void ngx_http_darkroom_gallery_download(ngx_http_darkroom_task_t *t,
    ngx_http_darkroom_gallery_req_t *g, cJSON *body);
static cJSON *ngx_http_darkroom_gallery_download_files(
    ngx_http_darkroom_task_t *t, ngx_http_darkroom_gallery_req_t *g,
    char *ids);
static ngx_int_t ngx_http_darkroom_gallery_download_zip(
    ngx_http_darkroom_task_t *t, ngx_http_darkroom_gallery_req_t *g,
    char *ids, cJSON *json);
static void ngx_http_darkroom_gallery_zip_files(ngx_http_darkroom_task_t *t,
    ngx_http_darkroom_gallery_req_t *g);
static ngx_int_t ngx_http_darkroom_gallery_zip_open(
    ngx_http_darkroom_task_t *t, ngx_http_darkroom_gallery_req_t *g,
    PGresult *res, int *col);
static ngx_int_t ngx_http_darkroom_gallery_entries(
    ngx_http_darkroom_task_t *t, ngx_http_darkroom_gallery_req_t *g,
    PGresult *res, int *col);
static char *ngx_http_darkroom_gallery_sign(
    ngx_http_darkroom_gallery_req_t *g, const char *rel, time_t ttl,
    const char *filename);
static ngx_int_t ngx_http_darkroom_gallery_done(ngx_http_request_t *r,
    ngx_http_darkroom_task_t *t);
static void ngx_http_darkroom_gallery_debug(ngx_http_request_t *r,
    ngx_http_darkroom_task_t *t);
static ngx_int_t ngx_http_darkroom_gallery_send_zip(ngx_http_request_t *r,
    ngx_http_darkroom_gallery_req_t *g);
static ngx_int_t ngx_http_darkroom_gallery_zip_body(ngx_http_request_t *r,
    ngx_http_darkroom_gallery_req_t *g);


ngx_int_t
ngx_http_darkroom_gallery_handler(ngx_http_request_t *r)
{
    ngx_int_t  rc;

    rc = ngx_http_darkroom_gallery_cached(r);

    if (rc != NGX_DECLINED) {
        return rc;
    }

    return ngx_http_darkroom_task_start(r,
                                    sizeof(ngx_http_darkroom_gallery_req_t),
                                    ngx_http_darkroom_gallery_prepare,
                                    ngx_http_darkroom_gallery_work,
                                    ngx_http_darkroom_gallery_done);
}


/*
 * GET <slug> from darkroom_public_cache, on the event loop: the listing as
 * the query path last made it, when its version is the one polled, the
 * revocation list neither revokes nor rotates it, it has not expired, its
 * links have proof_ttl to live, the cookie (with a password) checks and
 * the request has no proofing visitor of this gallery.  NGX_DECLINED for
 * everything else: the query path answers (and refused answers, a
 * visitor's listing, are never cached).
 */

static ngx_int_t
ngx_http_darkroom_gallery_cached(ngx_http_request_t *r)
{
    time_t                                now;
    ngx_str_t                             key, value;
    ngx_http_darkroom_gallery_req_t      *g;
    ngx_http_darkroom_gallery_listing_t   l;

    if (r->method != NGX_HTTP_GET || r->headers_in.content_length_n > 0
        || r->headers_in.chunked)
    {
        return NGX_DECLINED;
    }

    g = ngx_pcalloc(r->pool, sizeof(ngx_http_darkroom_gallery_req_t));
    if (g == NULL) {
        return NGX_DECLINED;
    }

    if (ngx_http_darkroom_gallery_route(r, g) != NGX_OK
        || g->route != NGX_HTTP_DARKROOM_GALLERY_GET
        || ngx_http_darkroom_gallery_cache_key(r, g, &key) != NGX_OK
        || ngx_http_darkroom_public_get(r, &key, &value) != NGX_OK
        || value.len < sizeof(l))
    {
        return NGX_DECLINED;
    }

    ngx_memcpy(&l, value.data, sizeof(l));
    now = ngx_time();

    if ((l.expires && l.expires <= (int64_t) now) || (int64_t) now >= l.until
        || !ngx_http_darkroom_gallery_listing_fresh(r, l.id, l.generation,
                                                    l.version))
    {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "darkroom gallery: listing of %s in the cache is "
                       "stale", g->slug);
        return NGX_DECLINED;
    }

    g->conf = ngx_http_get_module_loc_conf(r,
                                           ngx_http_darkroom_gallery_module);
    g->id = l.id;
    g->generation = l.generation;
    g->now = now;
    snprintf(g->g, sizeof(g->g), "%llu.%u", (unsigned long long) g->id,
             (unsigned) g->generation);

    if (ngx_http_darkroom_gallery_cookies(r, g) != NGX_OK
        || (l.password && !ngx_http_darkroom_gallery_cookie_ok(g)))
    {
        return NGX_DECLINED;
    }

    ngx_http_darkroom_gallery_visitor_check(g);

    if (g->visitor) {
        return NGX_DECLINED;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "darkroom gallery: listing of %s from the cache, "
                   "version %L", g->slug, l.version);

    if (ngx_http_darkroom_header_out(r, "Cache-Control",
                                     (u_char *) "no-store", 8)
        == NULL)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_darkroom_send_json(r, NGX_HTTP_OK,
                                       value.data + sizeof(l),
                                       value.len - sizeof(l));
}


/* "gallery:<location's configuration>:<slug>": a location's own links */

static ngx_int_t
ngx_http_darkroom_gallery_cache_key(ngx_http_request_t *r,
    ngx_http_darkroom_gallery_req_t *g, ngx_str_t *key)
{
    void  *conf;

    conf = ngx_http_get_module_loc_conf(r, ngx_http_darkroom_gallery_module);

    key->data = ngx_pnalloc(r->pool,
                            sizeof(NGX_HTTP_DARKROOM_GALLERY_CACHE_KEY)
                            + NGX_PTR_SIZE * 2 + 1
                            + NGX_HTTP_DARKROOM_GALLERY_SLUG_MAX);
    if (key->data == NULL) {
        return NGX_ERROR;
    }

    key->len = ngx_sprintf(key->data, NGX_HTTP_DARKROOM_GALLERY_CACHE_KEY
                           "%p:%s", conf, g->slug)
               - key->data;

    return NGX_OK;
}


/* on the event loop, a listing the query path made for no visitor: kept */

static void
ngx_http_darkroom_gallery_cache_put(ngx_http_request_t *r,
    ngx_http_darkroom_task_t *t)
{
    u_char                               *p;
    ngx_str_t                             key;
    ngx_http_darkroom_gallery_req_t      *g = t->data;
    ngx_http_darkroom_gallery_listing_t   l;

    if (!g->cacheable || t->err.status || t->out == NULL
        || t->status != NGX_HTTP_OK || g->visitor || g->set_cookie[0]
        || g->set_visitor[0])
    {
        return;
    }

    ngx_memzero(&l, sizeof(l));
    l.id = g->id;
    l.version = g->listing_version;
    l.expires = g->expires;
    l.until = g->proof_exp - g->conf->proof_ttl;
    l.generation = g->generation;
    l.password = (g->pw_hash[0] != '\0');

    p = ngx_pnalloc(r->pool, sizeof(l) + t->out_len);

    if (p == NULL
        || ngx_http_darkroom_gallery_cache_key(r, g, &key) != NGX_OK)
    {
        return;
    }

    ngx_memcpy(ngx_cpymem(p, &l, sizeof(l)), t->out, t->out_len);

    if (ngx_http_darkroom_public_set(r, &key, p, sizeof(l) + t->out_len)
        == NGX_OK)
    {
        ngx_http_darkroom_gallery_listing_built(r, l.id, l.version);

        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "darkroom gallery: listing of %s cached, version %L",
                       g->slug, l.version);
    }
}


static ngx_int_t
ngx_http_darkroom_gallery_prepare(ngx_http_request_t *r,
    ngx_http_darkroom_task_t *t)
{
    ngx_uint_t                         get;
    ngx_pool_cleanup_t                *cln;
    ngx_http_core_loc_conf_t          *clcf;
    ngx_http_darkroom_main_conf_t     *dmcf;
    ngx_http_darkroom_gallery_req_t   *g = t->data;

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln->handler = ngx_http_darkroom_gallery_cleanup;
    cln->data = g;

    if (ngx_http_darkroom_gallery_route(r, g) != NGX_OK) {
        return ngx_http_darkroom_send_error(r, NGX_HTTP_NOT_FOUND,
                                            "not_found",
                                            "There is no such gallery.");
    }

    get = (r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD)) ? 1 : 0;

    if ((g->route == NGX_HTTP_DARKROOM_GALLERY_GET
         || g->route == NGX_HTTP_DARKROOM_GALLERY_ZIP
         || g->route == NGX_HTTP_DARKROOM_GALLERY_LISTS) != get
        || (!get && r->method != NGX_HTTP_POST))
    {
        return ngx_http_darkroom_send_error(r, NGX_HTTP_NOT_ALLOWED,
                   "method_not_allowed",
                   get ? "Use POST for this." : "Use GET for this.");
    }

    g->conf = ngx_http_get_module_loc_conf(r,
                                           ngx_http_darkroom_gallery_module);

    if (ngx_http_darkroom_link_key(r, &g->kid, &g->key) != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "darkroom gallery: no \"darkroom_media_keys\" where "
                      "\"darkroom_gallery\" is, links cannot be signed");
        return ngx_http_darkroom_send_error(r,
                   NGX_HTTP_INTERNAL_SERVER_ERROR, "internal_error",
                   "The gallery is not configured.");
    }

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);
    g->api = clcf->name;

    dmcf = ngx_http_get_module_main_conf(r, ngx_http_darkroom_module);
    ngx_memcpy(g->currency, dmcf->shop_currency.data,
               ngx_min(dmcf->shop_currency.len, 3));

    g->now = ngx_time();

#if (NGX_HTTP_SSL)
    g->secure = (r->connection->ssl != NULL);
#endif

    ngx_memcpy(g->client, r->connection->addr_text.data,
               ngx_min(r->connection->addr_text.len, NGX_SOCKADDR_STRLEN));

    if (ngx_http_darkroom_gallery_cookies(r, g) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    g->body = ngx_pnalloc(r->pool, t->body.len + 1);
    if (g->body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* a GET has no body: data is NULL, and memcpy from NULL is undefined */
    if (t->body.len) {
        ngx_memcpy(g->body, t->body.data, t->body.len);
    }

    g->body[t->body.len] = '\0';

    return NGX_OK;
}


/* the slug, the route and the ZIP token from the path; NGX_DECLINED: 404 */

static ngx_int_t
ngx_http_darkroom_gallery_route(ngx_http_request_t *r,
    ngx_http_darkroom_gallery_req_t *g)
{
    ngx_int_t   n;
    ngx_str_t   seg[4];
    ngx_uint_t  i;

    n = ngx_http_darkroom_path_split(r, seg, 4);

    if (n < 1 || seg[0].len > NGX_HTTP_DARKROOM_GALLERY_SLUG_MAX) {
        return NGX_DECLINED;
    }

    for (i = 0; i < seg[0].len; i++) {
        if (!((seg[0].data[i] >= 'a' && seg[0].data[i] <= 'z')
              || (seg[0].data[i] >= '0' && seg[0].data[i] <= '9')
              || (seg[0].data[i] == '-' && i > 0)))
        {
            return NGX_DECLINED;
        }
    }

    ngx_memcpy(g->slug, seg[0].data, seg[0].len);

    if (n == 1) {
        g->route = NGX_HTTP_DARKROOM_GALLERY_GET;

    } else if (n == 3 && ngx_http_darkroom_is(seg[1], "zip")
               && seg[2].len == NGX_HTTP_DARKROOM_TOKEN_LEN)
    {
        for (i = 0; i < NGX_HTTP_DARKROOM_TOKEN_LEN; i++) {
            if (!((seg[2].data[i] >= '0' && seg[2].data[i] <= '9')
                  || (seg[2].data[i] >= 'a' && seg[2].data[i] <= 'f')))
            {
                return NGX_DECLINED;
            }
        }

        ngx_memcpy(g->token, seg[2].data, NGX_HTTP_DARKROOM_TOKEN_LEN);
        g->route = NGX_HTTP_DARKROOM_GALLERY_ZIP;

    } else if (n == 2 && ngx_http_darkroom_is(seg[1], "unlock")) {
        g->route = NGX_HTTP_DARKROOM_GALLERY_UNLOCK;

    } else if (n == 2 && ngx_http_darkroom_is(seg[1], "logout")) {
        g->route = NGX_HTTP_DARKROOM_GALLERY_LOGOUT;

    } else if (n == 2 && ngx_http_darkroom_is(seg[1], "favourites")) {
        g->route = NGX_HTTP_DARKROOM_GALLERY_FAVOURITE;

    } else if (n == 2 && ngx_http_darkroom_is(seg[1], "download")) {
        g->route = NGX_HTTP_DARKROOM_GALLERY_DOWNLOAD;

    } else if (n == 2 && ngx_http_darkroom_is(seg[1], "quote")) {
        g->route = NGX_HTTP_DARKROOM_GALLERY_QUOTE;

    } else if (n == 2 && ngx_http_darkroom_is(seg[1], "checkout")) {
        g->route = NGX_HTTP_DARKROOM_GALLERY_CHECKOUT;

    } else {
        return ngx_http_darkroom_gallery_proof_route(g, seg, n,
                   (r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD)) ? 1 : 0);
    }

    return NGX_OK;
}


/*
 * Every Cookie header the request carries, joined with "; " for the thread
 * to look at every darkroom_gallery value in (however many there are: the
 * headers are bounded by large_client_header_buffers).
 */

static ngx_int_t
ngx_http_darkroom_gallery_cookies(ngx_http_request_t *r,
    ngx_http_darkroom_gallery_req_t *g)
{
    u_char           *p;
    size_t            len;
    ngx_uint_t        i, pass;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    len = 0;
    p = NULL;

    for (pass = 0; pass < 2; pass++) {

        part = &r->headers_in.headers.part;
        h = part->elts;

        for (i = 0; /* void */; i++) {

            if (i >= part->nelts) {
                if (part->next == NULL) {
                    break;
                }

                part = part->next;
                h = part->elts;
                i = 0;
            }

            if (h[i].key.len != 6
                || ngx_strncasecmp(h[i].key.data, (u_char *) "Cookie", 6)
                   != 0)
            {
                continue;
            }

            if (pass == 0) {
                len += h[i].value.len + 2;
                continue;
            }

            p = ngx_cpymem(p, h[i].value.data, h[i].value.len);
            *p++ = ';';
            *p++ = ' ';
        }

        if (pass == 0) {
            if (len == 0) {
                return NGX_OK;
            }

            g->cookies = ngx_pnalloc(r->pool, len);
            if (g->cookies == NULL) {
                return NGX_ERROR;
            }

            g->cookies_len = len;
            p = g->cookies;
        }
    }

    return NGX_OK;
}


static void
ngx_http_darkroom_gallery_cleanup(void *data)
{
    ngx_http_darkroom_gallery_req_t *g = data;

    ngx_uint_t  i;

    if (g->fds) {
        for (i = 0; i < g->nentries; i++) {
            if (g->fds[i] != -1) {
                (void) close(g->fds[i]);
            }
        }

        free(g->fds);
        g->fds = NULL;
    }

    free(g->entries);
    g->entries = NULL;
    free(g->names);
    g->names = NULL;
}


/* in a thread from here on */

static void
ngx_http_darkroom_gallery_work(ngx_http_darkroom_task_t *t)
{
    cJSON                            *body, *json, *err;
    ngx_http_darkroom_gallery_req_t  *g = t->data;

    if (ngx_http_darkroom_gallery_load(t, g) != NGX_OK) {
        return;
    }

    if (g->expires && g->expires <= (int64_t) g->now) {
        json = cJSON_CreateObject();
        err = cJSON_AddObjectToObject(json, "error");
        cJSON_AddStringToObject(err, "code", "gallery_expired");
        cJSON_AddStringToObject(err, "message",
                                "This gallery has expired.");
        cJSON_AddStringToObject(err, "expires_at", g->expires_at);
        ngx_http_darkroom_gallery_answer(t, 410, json);
        return;
    }

    if (g->route == NGX_HTTP_DARKROOM_GALLERY_ZIP) {
        ngx_http_darkroom_gallery_zip_files(t, g);
        return;
    }

    body = NULL;

    ngx_http_darkroom_gallery_visitor_check(g);

    if (g->route != NGX_HTTP_DARKROOM_GALLERY_GET
        && g->route != NGX_HTTP_DARKROOM_GALLERY_LOGOUT
        && g->route != NGX_HTTP_DARKROOM_GALLERY_LISTS
        && g->route != NGX_HTTP_DARKROOM_GALLERY_VISITOR_LOGOUT)
    {
        body = ngx_http_darkroom_json_object(&t->err, g->body, 0);

        if (body == NULL) {
            return;
        }
    }

    if (g->route == NGX_HTTP_DARKROOM_GALLERY_UNLOCK) {
        ngx_http_darkroom_gallery_unlock(t, g, body);
        cJSON_Delete(body);
        return;
    }

    if (g->route == NGX_HTTP_DARKROOM_GALLERY_VISITOR_LOGOUT) {
        ngx_http_darkroom_gallery_proof(t, g, body);
        return;
    }

    if (g->route == NGX_HTTP_DARKROOM_GALLERY_LOGOUT) {
        (void) ngx_http_darkroom_gallery_set_cookie(g, 1);
        json = cJSON_CreateObject();
        cJSON_AddBoolToObject(json, "unlocked", 0);
        ngx_http_darkroom_gallery_answer(t, NGX_HTTP_OK, json);
        return;
    }

    if (g->pw_hash[0] && !ngx_http_darkroom_gallery_cookie_ok(g)) {
        cJSON_Delete(body);
        ngx_http_darkroom_error_set(&t->err, NGX_HTTP_UNAUTHORIZED,
                                    "locked",
                                    "This gallery needs its password.");
        return;
    }

    switch (g->route) {

    case NGX_HTTP_DARKROOM_GALLERY_FAVOURITE:
        ngx_http_darkroom_gallery_favourite(t, g, body);
        break;

    case NGX_HTTP_DARKROOM_GALLERY_DOWNLOAD:
        ngx_http_darkroom_gallery_download(t, g, body);
        break;

    case NGX_HTTP_DARKROOM_GALLERY_QUOTE:
    case NGX_HTTP_DARKROOM_GALLERY_CHECKOUT:
        /* let in: done() hands the request to the shop */
        break;

    case NGX_HTTP_DARKROOM_GALLERY_GET:
        ngx_http_darkroom_gallery_list(t, g);
        break;

    default:
        ngx_http_darkroom_gallery_proof(t, g, body);
    }

    cJSON_Delete(body);
}


static ngx_int_t
ngx_http_darkroom_gallery_load(ngx_http_darkroom_task_t *t,
    ngx_http_darkroom_gallery_req_t *g)
{
    int          col[NGX_HTTP_DARKROOM_GALLERY_STATE_N];
    char        *v[NGX_HTTP_DARKROOM_GALLERY_STATE_N];
    PGresult    *res;
    ngx_uint_t   i, revoked;
    const char  *params[1];

    params[0] = g->slug;

    /* a NULL reads as "": no expiry, no password, no PIN */

    res = ngx_http_darkroom_gallery_query(&t->db,
              "SELECT id, generation, title, expires_at, expires_epoch, "
              "revoked, password_hash, pin_hash, downloads, download_size, "
              "currency, gallery_listing_version(id) AS listing_version "
              "FROM gallery_state($1)", 1, params,
              ngx_http_darkroom_gallery_state_cols, col,
              NGX_HTTP_DARKROOM_GALLERY_STATE_N, &t->err);
    if (res == NULL) {
        return NGX_ERROR;
    }

    if (PQntuples(res) != 1) {
        PQclear(res);
        ngx_http_darkroom_error_set(&t->err, NGX_HTTP_NOT_FOUND, "not_found",
                                    "There is no such gallery.");
        return NGX_ERROR;
    }

    for (i = 0; i < NGX_HTTP_DARKROOM_GALLERY_STATE_N; i++) {
        v[i] = PQgetvalue(res, 0, col[i]);
    }

    g->id = strtoull(v[NGX_HTTP_DARKROOM_GALLERY_STATE_ID], NULL, 10);
    g->generation = strtoul(v[NGX_HTTP_DARKROOM_GALLERY_STATE_GEN], NULL, 10);
    ngx_cpystrn((u_char *) g->title,
                (u_char *) v[NGX_HTTP_DARKROOM_GALLERY_STATE_TITLE],
                sizeof(g->title));
    ngx_cpystrn((u_char *) g->expires_at,
                (u_char *) v[NGX_HTTP_DARKROOM_GALLERY_STATE_EXPIRES_AT],
                sizeof(g->expires_at));
    g->expires = strtoll(v[NGX_HTTP_DARKROOM_GALLERY_STATE_EXPIRES], NULL, 10);
    g->listing_version = strtoll(v[NGX_HTTP_DARKROOM_GALLERY_STATE_LISTING],
                                 NULL, 10);
    ngx_cpystrn((u_char *) g->pw_hash,
                (u_char *) v[NGX_HTTP_DARKROOM_GALLERY_STATE_PW_HASH],
                sizeof(g->pw_hash));
    ngx_cpystrn((u_char *) g->pin_hash,
                (u_char *) v[NGX_HTTP_DARKROOM_GALLERY_STATE_PIN_HASH],
                sizeof(g->pin_hash));
    g->downloads = (v[NGX_HTTP_DARKROOM_GALLERY_STATE_DOWNLOADS][0] == 't');
    ngx_cpystrn((u_char *) g->download_size,
                (u_char *) v[NGX_HTTP_DARKROOM_GALLERY_STATE_SIZE],
                sizeof(g->download_size));

    snprintf(g->g, sizeof(g->g), "%llu.%u", (unsigned long long) g->id,
             (unsigned) g->generation);

    /* the gallery's own currency over the shop's */
    if (ngx_strlen(v[NGX_HTTP_DARKROOM_GALLERY_STATE_CURRENCY]) == 3) {
        ngx_memcpy(g->currency, v[NGX_HTTP_DARKROOM_GALLERY_STATE_CURRENCY],
                   3);
    }

    revoked = (v[NGX_HTTP_DARKROOM_GALLERY_STATE_REVOKED][0] == 't');

    PQclear(res);

    if (revoked) {
        ngx_http_darkroom_error_set(&t->err, 410, "gallery_revoked",
                                    "This gallery has been withdrawn.");
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* base64url(HMAC-SHA256(key, "darkroom-gallery-v1\n<slug>\n<g>\n<exp>\n")) */

static ngx_int_t
ngx_http_darkroom_gallery_mac(ngx_http_darkroom_gallery_req_t *g,
    ngx_str_t *key, int64_t exp, u_char *sig)
{
    int   len;
    char  msg[256];

    len = snprintf(msg, sizeof(msg), "darkroom-gallery-v1\n%s\n%s\n%lld\n",
                   g->slug, g->g, (long long) exp);

    return ngx_http_darkroom_gallery_hmac(key, msg, len, sizeof(msg), sig);
}


/* sig: base64url(HMAC-SHA256(key, msg)) of a message snprintf made */

ngx_int_t
ngx_http_darkroom_gallery_hmac(ngx_str_t *key, const char *msg, int len,
    size_t size, u_char *sig)
{
    u_char  mac[NGX_HTTP_DARKROOM_SIGN_MAC_LEN];

    if (len < 0 || (size_t) len >= size) {
        return NGX_ERROR;
    }

    if (!ngx_http_darkroom_sign_hmac(key->data, key->len, (u_char *) msg,
                                     len, mac))
    {
        return NGX_ERROR;
    }

    (void) ngx_http_darkroom_sign_base64url(mac, sizeof(mac), sig);

    return NGX_OK;
}


/*
 * Any darkroom_gallery cookie "<id>.<gen>.<exp>.<sig>" for this gallery and
 * generation, not expired, signed by one of the keys.  The value is parsed
 * strictly, so the expiry has the one form the signature was made over.
 * g->cookie says what was found, for the debug log.
 */

static ngx_int_t
ngx_http_darkroom_gallery_cookie_ok(ngx_http_darkroom_gallery_req_t *g)
{
    size_t                               vlen;
    ngx_str_t                           *keys;
    ngx_uint_t                           k, match;
    const u_char                        *pos, *end, *val;
    ngx_http_darkroom_gallery_cookie_t   c;
    u_char                               sig[NGX_HTTP_DARKROOM_SIGN_SIG_LEN
                                             + 1];

    g->cookie = NGX_HTTP_DARKROOM_GALLERY_COOKIE_NONE;

    if (g->cookies == NULL) {
        return 0;
    }

    keys = g->conf->cookie_keys->elts;
    match = 0;

    pos = g->cookies;
    end = g->cookies + g->cookies_len;

    while (ngx_http_darkroom_gallery_cookie_next(&pos, end, &val, &vlen)) {

        if (ngx_http_darkroom_gallery_cookie_parse(val, vlen, &c) != 0
            || c.id != g->id)
        {
            continue;
        }

        if (c.generation != g->generation || c.expires <= (int64_t) g->now) {
            g->cookie = ngx_max(g->cookie,
                                NGX_HTTP_DARKROOM_GALLERY_COOKIE_EXPIRED);
            continue;
        }

        g->cookie = ngx_max(g->cookie,
                            NGX_HTTP_DARKROOM_GALLERY_COOKIE_REFUSED);

        for (k = 0; k < g->conf->cookie_keys->nelts; k++) {
            if (ngx_http_darkroom_gallery_mac(g, &keys[k], c.expires, sig)
                != NGX_OK)
            {
                continue;
            }

            match |= (CRYPTO_memcmp(sig, c.sig,
                                    NGX_HTTP_DARKROOM_SIGN_SIG_LEN) == 0);
        }
    }

    if (match) {
        g->cookie = NGX_HTTP_DARKROOM_GALLERY_COOKIE_ACCEPTED;
    }

    return match;
}


static ngx_int_t
ngx_http_darkroom_gallery_set_cookie(ngx_http_darkroom_gallery_req_t *g,
    ngx_uint_t clear)
{
    char        value[NGX_HTTP_DARKROOM_GALLERY_COOKIE_VALUE_MAX];
    int64_t     exp;
    ngx_str_t  *keys;
    u_char      sig[NGX_HTTP_DARKROOM_SIGN_SIG_LEN + 1];

    if (clear) {
        ngx_http_darkroom_gallery_cookie_header(g, g->set_cookie,
                   sizeof(g->set_cookie), NGX_HTTP_DARKROOM_GALLERY_COOKIE,
                   "", 0);
        return NGX_OK;
    }

    exp = ngx_http_darkroom_gallery_cookie_expiry(g);

    keys = g->conf->cookie_keys->elts;

    if (ngx_http_darkroom_gallery_mac(g, &keys[0], exp, sig) != NGX_OK) {
        return NGX_ERROR;
    }

    sig[NGX_HTTP_DARKROOM_SIGN_SIG_LEN] = '\0';

    snprintf(value, sizeof(value), "%s.%lld.%s", g->g, (long long) exp,
             sig);

    ngx_http_darkroom_gallery_cookie_header(g, g->set_cookie,
                                            sizeof(g->set_cookie),
                                            NGX_HTTP_DARKROOM_GALLERY_COOKIE,
                                            value, exp);

    return NGX_OK;
}


/* a cookie signed now lives cookie_ttl, and no longer than the gallery */

int64_t
ngx_http_darkroom_gallery_cookie_expiry(ngx_http_darkroom_gallery_req_t *g)
{
    int64_t  exp;

    exp = (int64_t) g->now + g->conf->cookie_ttl;

    if (g->expires && g->expires < exp) {
        exp = g->expires;
    }

    return exp;
}


/*
 * The Set-Cookie value of one of the client API's cookies, scoped to the
 * gallery's path: name=value until exp; an empty value clears it.
 */

void
ngx_http_darkroom_gallery_cookie_header(ngx_http_darkroom_gallery_req_t *g,
    char *buf, size_t size, const char *name, const char *value, int64_t exp)
{
    snprintf(buf, size,
             "%s=%s; Path=%.*s%s; Max-Age=%lld; HttpOnly; SameSite=Lax%s",
             name, value, (int) g->api.len, g->api.data, g->slug,
             value[0] ? (long long) (exp - g->now) : 0LL,
             g->secure ? "; Secure" : "");
}


/*
 * Checks a password or PIN with the lockout: NGX_OK it matches; otherwise
 * t->err is set (403 wrong, 429 locked out, 5xx).  The attempt is counted
 * in the database before scrypt runs, so parallel attempts cannot all pass
 * a check made before any of them is recorded; the outcome is recorded
 * after, and a lock that came meanwhile refuses even the right answer.
 */

static ngx_int_t
ngx_http_darkroom_gallery_secret(ngx_http_darkroom_task_t *t,
    ngx_http_darkroom_gallery_req_t *g, const char *kind, const char *value,
    const char *hash)
{
    long       locked;
    ngx_int_t  ok;

    locked = ngx_http_darkroom_gallery_attempt(t, g, kind, -1);

    if (locked < 0) {
        return NGX_ERROR;
    }

    if (locked > 0) {
        goto locked_out;
    }

    ok = ngx_http_darkroom_scrypt_verify((u_char *) value,
                                                 ngx_strlen(value),
                                                 (u_char *) hash);
    if (ok == NGX_ERROR) {
        /* the attempt stays counted: a bad hash is no way around it */
        ngx_http_darkroom_error_set(&t->err, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                    "internal_error",
                                    "The %s could not be checked.", kind);
        snprintf(t->err.detail, sizeof(t->err.detail),
                 "gallery %s: the stored %s hash is not valid scrypt",
                 g->slug, kind);
        return NGX_ERROR;
    }

    locked = ngx_http_darkroom_gallery_attempt(t, g, kind, ok);

    if (locked < 0) {
        return NGX_ERROR;
    }

    if (locked > 0) {
        goto locked_out;
    }

    if (ok) {
        return NGX_OK;
    }

    ngx_http_darkroom_error_set(&t->err, NGX_HTTP_FORBIDDEN,
                                kind[1] == 'a' ? "wrong_password"
                                               : "wrong_pin",
                                "That %s is not right.", kind);
    return NGX_ERROR;

locked_out:

    ngx_http_darkroom_error_set(&t->err, NGX_HTTP_TOO_MANY_REQUESTS,
                                "locked_out", "Too many attempts: try again "
                                "in %ld second%s.", locked,
                                locked == 1 ? "" : "s");
    t->err.retry_after = locked;

    return NGX_ERROR;
}


/*
 * ok -1: gallery_attempt_begin() counts the attempt; ok 0 or 1:
 * gallery_attempt_end() records its outcome.  Returns the seconds locked
 * out, 0 to go on, -1 on a database error (t->err set).
 */

static long
ngx_http_darkroom_gallery_attempt(ngx_http_darkroom_task_t *t,
    ngx_http_darkroom_gallery_req_t *g, const char *kind, ngx_int_t ok)
{
    char         id[NGX_INT64_LEN + 1], max[NGX_INT_T_LEN + 1],
                 window[NGX_INT_T_LEN + 1], lock[NGX_INT_T_LEN + 1],
                 gmax[NGX_INT_T_LEN + 1];
    int          n, col[1];
    long         locked;
    PGresult    *res;
    const char  *sql, *params[8];

    static const char  *const locked_col[] = { "locked" };

    snprintf(id, sizeof(id), "%llu", (unsigned long long) g->id);
    snprintf(max, sizeof(max), "%lu", (unsigned long) g->conf->lock_max);
    snprintf(window, sizeof(window), "%ld", (long) g->conf->lock_window);
    snprintf(lock, sizeof(lock), "%ld", (long) g->conf->lock_time);
    snprintf(gmax, sizeof(gmax), "%lu",
             (unsigned long) g->conf->lock_gallery_max);

    params[0] = id;
    params[1] = g->client;
    params[2] = kind;

    if (ok == -1) {
        params[3] = max;
        params[4] = window;
        params[5] = lock;
        params[6] = gmax;

        sql = "SELECT gallery_attempt_begin($1, $2, $3, $4, $5, $6, $7) "
              "AS locked";
        n = 7;

    } else {
        params[3] = ok ? "true" : "false";
        params[4] = max;
        params[5] = window;
        params[6] = lock;
        params[7] = gmax;

        sql = "SELECT gallery_attempt_end($1, $2, $3, $4, $5, $6, $7, $8) "
              "AS locked";
        n = 8;
    }

    res = ngx_http_darkroom_gallery_query(&t->db, sql, n, params, locked_col,
                                          col, 1, &t->err);
    if (res == NULL) {
        return -1;
    }

    locked = strtol(PQgetvalue(res, 0, col[0]), NULL, 10);
    PQclear(res);

    return locked;
}


static void
ngx_http_darkroom_gallery_unlock(ngx_http_darkroom_task_t *t,
    ngx_http_darkroom_gallery_req_t *g, cJSON *body)
{
    cJSON  *pw, *json;

    if (g->pw_hash[0]) {
        pw = cJSON_GetObjectItemCaseSensitive(body, "password");

        if (!cJSON_IsString(pw) || pw->valuestring[0] == '\0'
            || ngx_strlen(pw->valuestring)
               > NGX_HTTP_DARKROOM_GALLERY_SECRET_MAX)
        {
            ngx_http_darkroom_error_set(&t->err, NGX_HTTP_BAD_REQUEST,
                                        "password_required",
                                        "Send the gallery's password.");
            return;
        }

        if (ngx_http_darkroom_gallery_secret(t, g, "password",
                                             pw->valuestring, g->pw_hash)
            != NGX_OK)
        {
            return;
        }
    }

    if (ngx_http_darkroom_gallery_set_cookie(g, 0) != NGX_OK) {
        ngx_http_darkroom_error_set(&t->err, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                    "internal_error", "Please retry.");
        return;
    }

    json = cJSON_CreateObject();
    cJSON_AddBoolToObject(json, "unlocked", 1);
    ngx_http_darkroom_gallery_answer(t, NGX_HTTP_OK, json);
}


/* {"gallery": {...}}, the photos to be added */

static cJSON *
ngx_http_darkroom_gallery_info(ngx_http_darkroom_gallery_req_t *g)
{
    cJSON  *json, *gal;

    json = cJSON_CreateObject();
    gal = cJSON_AddObjectToObject(json, "gallery");
    cJSON_AddStringToObject(gal, "slug", g->slug);
    cJSON_AddStringToObject(gal, "title", g->title);

    if (g->expires_at[0]) {
        cJSON_AddStringToObject(gal, "expires_at", g->expires_at);

    } else {
        cJSON_AddNullToObject(gal, "expires_at");
    }

    cJSON_AddBoolToObject(gal, "downloads", g->downloads);
    cJSON_AddBoolToObject(gal, "pin", g->pin_hash[0] != '\0');
    cJSON_AddBoolToObject(gal, "password", g->pw_hash[0] != '\0');
    cJSON_AddStringToObject(gal, "download_size", g->download_size);
    cJSON_AddNumberToObject(gal, "proof_ttl", (double) g->conf->proof_ttl);

    return json;
}


/*
 * When the listing's proof links end: on a bucket's edge, the same for
 * every visitor, half a bucket to a bucket and a half past proof_ttl
 * (within the media check's slack over darkroom_media_max_ttl)
 */

static int64_t
ngx_http_darkroom_gallery_proof_exp(ngx_http_darkroom_gallery_req_t *g)
{
    int64_t  exp;

    exp = (int64_t) g->now + g->conf->proof_ttl
          + NGX_HTTP_DARKROOM_GALLERY_BUCKET / 2;

    return exp + NGX_HTTP_DARKROOM_GALLERY_BUCKET
           - exp % NGX_HTTP_DARKROOM_GALLERY_BUCKET;
}


/* GET <slug>: the gallery and its photos, with signed proof links */

static void
ngx_http_darkroom_gallery_list(ngx_http_darkroom_task_t *t,
    ngx_http_darkroom_gallery_req_t *g)
{
    int          i, n, k;
    char        *url, id[NGX_INT64_LEN + 1];
    cJSON       *json, *photos, *o;
    ngx_uint_t   skipped;
    PGresult    *res;
    const char  *params[2];
    int          col[NGX_HTTP_DARKROOM_GALLERY_PHOTO_N];
    char        *v[NGX_HTTP_DARKROOM_GALLERY_PHOTO_N];

    snprintf(id, sizeof(id), "%llu", (unsigned long long) g->id);
    params[0] = id;
    params[1] = g->currency;

    res = ngx_http_darkroom_gallery_query(&t->db,
              "SELECT id, name, proof_path, bytes, favourite, width, height, "
              "products FROM gallery_photos_listing($1, $2)", 2, params,
              ngx_http_darkroom_gallery_photo_cols, col,
              NGX_HTTP_DARKROOM_GALLERY_PHOTO_N, &t->err);
    if (res == NULL) {
        return;
    }

    json = ngx_http_darkroom_gallery_info(g);

    if (ngx_http_darkroom_gallery_proof_info(t, g,
                     cJSON_GetObjectItemCaseSensitive(json, "gallery"))
        != NGX_OK
        || ngx_http_darkroom_gallery_shop(t, g,
               cJSON_GetObjectItemCaseSensitive(json, "gallery"))
           != NGX_OK)
    {
        PQclear(res);
        cJSON_Delete(json);
        return;
    }

    photos = cJSON_AddArrayToObject(json, "photos");
    n = PQntuples(res);
    skipped = 0;
    g->proof_exp = ngx_http_darkroom_gallery_proof_exp(g);

    for (i = 0; i < n; i++) {

        for (k = 0; k < NGX_HTTP_DARKROOM_GALLERY_PHOTO_N; k++) {
            v[k] = PQgetvalue(res, i, col[k]);
        }

        /* no proof copy: no image, never the original or web copy */

        url = NULL;

        if (!PQgetisnull(res, i, col[NGX_HTTP_DARKROOM_GALLERY_PHOTO_PROOF])) {
            url = ngx_http_darkroom_gallery_sign(g,
                                     v[NGX_HTTP_DARKROOM_GALLERY_PHOTO_PROOF],
                                     (time_t) (g->proof_exp - g->now), NULL);
            if (url == NULL) {
                skipped = 1;
                continue;
            }
        }

        o = cJSON_CreateObject();
        cJSON_AddItemToArray(photos, o);
        cJSON_AddRawToObject(o, "id", v[NGX_HTTP_DARKROOM_GALLERY_PHOTO_ID]);
        cJSON_AddStringToObject(o, "name",
                                v[NGX_HTTP_DARKROOM_GALLERY_PHOTO_NAME]);

        if (url) {
            cJSON_AddStringToObject(o, "proof", url);

        } else {
            cJSON_AddNullToObject(o, "proof");
        }

        cJSON_AddRawToObject(o, "bytes",
                             v[NGX_HTTP_DARKROOM_GALLERY_PHOTO_BYTES]);
        cJSON_AddBoolToObject(o, "favourite",
                           v[NGX_HTTP_DARKROOM_GALLERY_PHOTO_FAVOURITE][0]
                           == 't');

        ngx_http_darkroom_gallery_photo_prints(o,
            PQgetisnull(res, i, col[NGX_HTTP_DARKROOM_GALLERY_PHOTO_WIDTH])
            ? NULL : v[NGX_HTTP_DARKROOM_GALLERY_PHOTO_WIDTH],
            PQgetisnull(res, i, col[NGX_HTTP_DARKROOM_GALLERY_PHOTO_HEIGHT])
            ? NULL : v[NGX_HTTP_DARKROOM_GALLERY_PHOTO_HEIGHT],
            v[NGX_HTTP_DARKROOM_GALLERY_PHOTO_PRODUCTS]);

        free(url);
    }

    PQclear(res);

    /* the same for every visitor without a proofing cookie */
    g->cacheable = (g->visitor == 0 && !skipped);

    ngx_http_darkroom_gallery_answer(t, NGX_HTTP_OK, json);
}


static void
ngx_http_darkroom_gallery_favourite(ngx_http_darkroom_task_t *t,
    ngx_http_darkroom_gallery_req_t *g, cJSON *body)
{
    char         id[NGX_INT64_LEN + 1], photo[NGX_INT64_LEN + 1];
    cJSON       *p, *on;
    PGresult    *res;
    const char  *params[3];

    p = cJSON_GetObjectItemCaseSensitive(body, "photo");
    on = cJSON_GetObjectItemCaseSensitive(body, "favourite");

    if (!cJSON_IsNumber(p) || p->valuedouble < 1
        || p->valuedouble > 9007199254740991.0
        || (on != NULL && !cJSON_IsBool(on)))
    {
        ngx_http_darkroom_error_set(&t->err, NGX_HTTP_BAD_REQUEST,
                                    "invalid_favourite",
                                    "Send {\"photo\": id, \"favourite\": "
                                    "true or false}.");
        return;
    }

    snprintf(id, sizeof(id), "%llu", (unsigned long long) g->id);
    snprintf(photo, sizeof(photo), "%.0f", p->valuedouble);

    params[0] = id;
    params[1] = photo;
    params[2] = (on == NULL || cJSON_IsTrue(on)) ? "true" : "false";

    res = ngx_http_darkroom_db_exec(&t->db,
                                    "SELECT gallery_favourite($1, $2, $3)",
                                    3, params, &t->err);
    if (res == NULL) {
        return;
    }

    ngx_http_darkroom_task_answer(t, res, "There is no such photo.");
}


/* the selection as a Postgres array literal, NULL for the whole gallery */

static char *
ngx_http_darkroom_gallery_ids(cJSON *body, ngx_uint_t *bad)
{
    char    *ids, *p;
    cJSON   *arr, *it;
    size_t   n;

    *bad = 0;

    arr = cJSON_GetObjectItemCaseSensitive(body, "photos");

    if (arr == NULL || cJSON_IsNull(arr)
        || cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(body, "all")))
    {
        return NULL;
    }

    n = cJSON_GetArraySize(arr);

    if (!cJSON_IsArray(arr) || n == 0 || n > 100000) {
        *bad = 1;
        return NULL;
    }

    ids = malloc(n * (NGX_INT64_LEN + 1) + 3);
    if (ids == NULL) {
        *bad = 1;
        return NULL;
    }

    p = ids;
    *p++ = '{';

    cJSON_ArrayForEach(it, arr) {
        if (!cJSON_IsNumber(it) || it->valuedouble < 1
            || it->valuedouble > 9007199254740991.0)
        {
            free(ids);
            *bad = 1;
            return NULL;
        }

        p += sprintf(p, "%s%.0f", p == ids + 1 ? "" : ",", it->valuedouble);
    }

    *p++ = '}';
    *p = '\0';

    return ids;
}


/*
 * POST <slug>/download: the PIN checked, signed links to the selected
 * originals (or web copies) and a ZIP of them all, its size known now.
 */

static void
ngx_http_darkroom_gallery_download(ngx_http_darkroom_task_t *t,
    ngx_http_darkroom_gallery_req_t *g, cJSON *body)
{
    char        *ids;
    cJSON       *pin, *json;
    ngx_uint_t   bad;

    if (!g->downloads) {
        ngx_http_darkroom_error_set(&t->err, NGX_HTTP_FORBIDDEN,
                                    "downloads_off",
                                    "Downloads are not open for this "
                                    "gallery.");
        return;
    }

    if (g->pin_hash[0]) {
        pin = cJSON_GetObjectItemCaseSensitive(body, "pin");

        if (!cJSON_IsString(pin) || pin->valuestring[0] == '\0'
            || ngx_strlen(pin->valuestring)
               > NGX_HTTP_DARKROOM_GALLERY_PIN_MAX)
        {
            ngx_http_darkroom_error_set(&t->err, NGX_HTTP_UNAUTHORIZED,
                                        "pin_required",
                                        "Downloads need the gallery's PIN.");
            return;
        }

        if (ngx_http_darkroom_gallery_secret(t, g, "pin", pin->valuestring,
                                             g->pin_hash)
            != NGX_OK)
        {
            return;
        }
    }

    ids = ngx_http_darkroom_gallery_ids(body, &bad);

    if (bad) {
        ngx_http_darkroom_error_set(&t->err, NGX_HTTP_BAD_REQUEST,
                                    "invalid_selection",
                                    "Send {\"photos\": [id, ...]} or "
                                    "{\"all\": true}.");
        return;
    }

    /* proofing: the visitor in the links, their count and limit */

    (void) ngx_http_darkroom_gallery_proof_download(t, g, 0);

    json = ngx_http_darkroom_gallery_download_files(t, g, ids);

    if (json == NULL
        || (g->nentries
            && ngx_http_darkroom_gallery_proof_download(t, g, g->nentries)
               != NGX_OK)
        || ngx_http_darkroom_gallery_download_zip(t, g, ids, json) != NGX_OK)
    {
        free(ids);
        cJSON_Delete(json);
        return;
    }

    free(ids);

    ngx_http_darkroom_gallery_answer(t, NGX_HTTP_OK, json);
}


/*
 * {"files": [{"id", "name", "bytes", "url"}, ...]} for the selection (ids
 * NULL: the whole gallery), and the ZIP of them planned (g->entries,
 * g->zip); NULL with t->err set on an error.
 */

static cJSON *
ngx_http_darkroom_gallery_download_files(ngx_http_darkroom_task_t *t,
    ngx_http_darkroom_gallery_req_t *g, char *ids)
{
    int          i, n, k;
    char        *url, id[NGX_INT64_LEN + 1];
    cJSON       *json, *files, *o;
    PGresult    *res;
    const char  *params[2];
    int          col[NGX_HTTP_DARKROOM_GALLERY_FILE_N];
    char        *v[NGX_HTTP_DARKROOM_GALLERY_FILE_N];

    snprintf(id, sizeof(id), "%llu", (unsigned long long) g->id);
    params[0] = id;
    params[1] = ids;

    res = ngx_http_darkroom_gallery_query(&t->db,
              "SELECT id, name, path, bytes, crc32, created "
              "FROM gallery_download_files($1, $2::bigint[])", 2, params,
              ngx_http_darkroom_gallery_file_cols, col,
              NGX_HTTP_DARKROOM_GALLERY_FILE_N, &t->err);
    if (res == NULL) {
        return NULL;
    }

    n = PQntuples(res);

    if ((ngx_uint_t) n > g->conf->zip_max) {
        PQclear(res);
        ngx_http_darkroom_error_set(&t->err, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                    "too_many_photos",
                                    "Select at most %lu photos at once.",
                                    (unsigned long) g->conf->zip_max);
        return NULL;
    }

    json = cJSON_CreateObject();
    files = cJSON_AddArrayToObject(json, "files");

    for (i = 0; i < n; i++) {

        for (k = 0; k < NGX_HTTP_DARKROOM_GALLERY_FILE_N; k++) {
            v[k] = PQgetvalue(res, i, col[k]);
        }

        url = ngx_http_darkroom_gallery_sign(g,
                                      v[NGX_HTTP_DARKROOM_GALLERY_FILE_PATH],
                                      g->conf->download_ttl,
                                      v[NGX_HTTP_DARKROOM_GALLERY_FILE_NAME]);
        if (url == NULL) {
            continue;
        }

        o = cJSON_CreateObject();
        cJSON_AddItemToArray(files, o);
        cJSON_AddRawToObject(o, "id", v[NGX_HTTP_DARKROOM_GALLERY_FILE_ID]);
        cJSON_AddStringToObject(o, "name",
                                v[NGX_HTTP_DARKROOM_GALLERY_FILE_NAME]);
        cJSON_AddRawToObject(o, "bytes",
                             v[NGX_HTTP_DARKROOM_GALLERY_FILE_BYTES]);
        cJSON_AddStringToObject(o, "url", url);
        free(url);
    }

    /* the ZIP: its size now, its token in the database */

    if (ngx_http_darkroom_gallery_entries(t, g, res, col) != NGX_OK) {
        PQclear(res);
        cJSON_Delete(json);
        return NULL;
    }

    PQclear(res);

    return json;
}


/* a ZIP token, kept hashed in the database, and "zip": {...} in json */

static ngx_int_t
ngx_http_darkroom_gallery_download_zip(ngx_http_darkroom_task_t *t,
    ngx_http_darkroom_gallery_req_t *g, char *ids, cJSON *json)
{
    char        *url, id[NGX_INT64_LEN + 1], gen[NGX_INT_T_LEN + 1],
                 ttl[NGX_INT_T_LEN + 1],
                 hash[NGX_HTTP_DARKROOM_HASH_SIZE];
    cJSON       *zip;
    const char  *params[5];
    u_char       token[NGX_HTTP_DARKROOM_TOKEN_SIZE];

    if (ngx_http_darkroom_token(token, (u_char *) hash) != NGX_OK) {
        ngx_http_darkroom_error_set(&t->err, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                    "internal_error", "Please retry.");
        return NGX_ERROR;
    }

    snprintf(id, sizeof(id), "%llu", (unsigned long long) g->id);
    snprintf(gen, sizeof(gen), "%u", (unsigned) g->generation);
    snprintf(ttl, sizeof(ttl), "%ld", (long) g->conf->download_ttl);

    params[0] = id;
    params[1] = gen;
    params[2] = ids;
    params[3] = hash;
    params[4] = ttl;

    if (ngx_http_darkroom_db_command(&t->db,
            "SELECT gallery_zip_create($1, $2, $3::bigint[], $4, $5)",
            5, params, &t->err)
        != NGX_OK
        || ngx_http_darkroom_gallery_proof_zip(t, g, hash, 1) != NGX_OK)
    {
        return NGX_ERROR;
    }

    url = malloc(g->api.len + sizeof(g->slug) + 64);
    if (url == NULL) {
        ngx_http_darkroom_error_set(&t->err, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                    "internal_error", "Out of memory.");
        return NGX_ERROR;
    }

    sprintf(url, "%.*s%s/zip/%s", (int) g->api.len, g->api.data, g->slug,
            token);

    zip = cJSON_AddObjectToObject(json, "zip");
    cJSON_AddStringToObject(zip, "url", url);
    cJSON_AddNumberToObject(zip, "bytes", (double) g->zip.size);
    cJSON_AddNumberToObject(zip, "files", (double) g->zip.entries);
    cJSON_AddNumberToObject(zip, "expires_in",
                            (double) g->conf->download_ttl);
    free(url);

    return NGX_OK;
}


/* GET <slug>/zip/<token>: the archive planned and its files opened */

static void
ngx_http_darkroom_gallery_zip_files(ngx_http_darkroom_task_t *t,
    ngx_http_darkroom_gallery_req_t *g)
{
    int          col[NGX_HTTP_DARKROOM_GALLERY_FILE_N];
    char         hash[NGX_HTTP_DARKROOM_HASH_SIZE];
    PGresult    *res;
    const char  *params[2];

    (void) ngx_http_darkroom_sha256_hex((u_char *) g->token,
                                        NGX_HTTP_DARKROOM_TOKEN_LEN,
                                        hash);

    params[0] = g->slug;
    params[1] = hash;

    res = ngx_http_darkroom_gallery_query(&t->db,
              "SELECT id, name, path, bytes, crc32, created "
              "FROM gallery_zip_files($1, $2)", 2, params,
              ngx_http_darkroom_gallery_file_cols, col,
              NGX_HTTP_DARKROOM_GALLERY_FILE_N, &t->err);
    if (res == NULL) {
        return;
    }

    if ((ngx_uint_t) PQntuples(res) > g->conf->zip_max) {
        PQclear(res);
        ngx_http_darkroom_error_set(&t->err, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                    "too_many_photos",
                                    "The archive has too many photos.");
        return;
    }

    if (g->conf->root.len == 0) {
        PQclear(res);
        ngx_http_darkroom_error_set(&t->err, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                    "internal_error",
                                    "ZIP downloads are not configured.");
        snprintf(t->err.detail, sizeof(t->err.detail),
                 "darkroom_gallery_root is not set");
        return;
    }

    if (ngx_http_darkroom_gallery_entries(t, g, res, col) == NGX_OK
        && ngx_http_darkroom_gallery_proof_zip(t, g, hash, 0) == NGX_OK)
    {
        (void) ngx_http_darkroom_gallery_zip_open(t, g, res, col);
    }

    PQclear(res);
}


/*
 * Opens each entry's file under darkroom_gallery_root into g->fds (closed
 * with the request), checking it is a regular file of the planned size.
 */

static ngx_int_t
ngx_http_darkroom_gallery_zip_open(ngx_http_darkroom_task_t *t,
    ngx_http_darkroom_gallery_req_t *g, PGresult *res, int *col)
{
    int          path;
    char        *file;
    size_t       rlen, plen;
    ngx_int_t    rc;
    ngx_uint_t   i;
    struct stat  st;

    g->fds = malloc((g->nentries ? g->nentries : 1) * sizeof(int));
    if (g->fds == NULL) {
        ngx_http_darkroom_error_set(&t->err, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                    "internal_error", "Out of memory.");
        return NGX_ERROR;
    }

    for (i = 0; i < g->nentries; i++) {
        g->fds[i] = -1;
    }

    rlen = g->conf->root.len;
    file = malloc(rlen + NGX_HTTP_DARKROOM_GALLERY_FILE_MAX + 1);

    if (file == NULL) {
        ngx_http_darkroom_error_set(&t->err, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                    "internal_error", "Out of memory.");
        return NGX_ERROR;
    }

    ngx_memcpy(file, g->conf->root.data, rlen);

    path = col[NGX_HTTP_DARKROOM_GALLERY_FILE_PATH];
    rc = NGX_OK;

    for (i = 0; i < g->nentries; i++) {
        plen = ngx_min((size_t) PQgetlength(res, i, path),
                       NGX_HTTP_DARKROOM_GALLERY_FILE_MAX);

        ngx_memcpy(file + rlen, PQgetvalue(res, i, path), plen);
        file[rlen + plen] = '\0';

        g->fds[i] = open(file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

        if (g->fds[i] == -1 || fstat(g->fds[i], &st) == -1
            || !S_ISREG(st.st_mode)
            || (uint64_t) st.st_size != g->entries[i].size)
        {
            ngx_http_darkroom_error_set(&t->err,
                                        NGX_HTTP_INTERNAL_SERVER_ERROR,
                                        "file_unavailable",
                                        "A photo of the archive cannot be "
                                        "read, please tell the "
                                        "photographer.");
            snprintf(t->err.detail, sizeof(t->err.detail),
                     "gallery %s: \"%s\" is missing or not %llu bytes",
                     g->slug, file,
                     (unsigned long long) g->entries[i].size);
            rc = NGX_ERROR;
            break;
        }
    }

    free(file);

    return rc;
}


/* ZIP entries from rows of a download's files (columns in col) */

static ngx_int_t
ngx_http_darkroom_gallery_entries(ngx_http_darkroom_task_t *t,
    ngx_http_darkroom_gallery_req_t *g, PGresult *res, int *col)
{
    time_t                          created;
    uint32_t                        h;
    ngx_uint_t                      i, n;
    ngx_http_darkroom_zip_entry_t  *e;

    n = PQntuples(res);

    g->entries = calloc(n ? n : 1, sizeof(ngx_http_darkroom_zip_entry_t));
    if (g->entries == NULL) {
        goto nomem;
    }

    g->nentries = n;
    h = 2166136261U;

    for (i = 0; i < n; i++) {
        e = &g->entries[i];
        e->name = (u_char *) PQgetvalue(res, i,
                                    col[NGX_HTTP_DARKROOM_GALLERY_FILE_NAME]);
        e->name_len = PQgetlength(res, i,
                                  col[NGX_HTTP_DARKROOM_GALLERY_FILE_NAME]);
        e->size = strtoull(PQgetvalue(res, i,
                                   col[NGX_HTTP_DARKROOM_GALLERY_FILE_BYTES]),
                           NULL, 10);
        e->crc32 = (uint32_t) strtoul(PQgetvalue(res, i,
                                   col[NGX_HTTP_DARKROOM_GALLERY_FILE_CRC32]),
                                      NULL, 10);
        created = (time_t) strtoll(PQgetvalue(res, i,
                                 col[NGX_HTTP_DARKROOM_GALLERY_FILE_CREATED]),
                                   NULL, 10);
        ngx_http_darkroom_zip_dos_time(created, &e->dos_time, &e->dos_date);

        if (created > g->last_modified) {
            g->last_modified = created;
        }

        h = (h ^ e->crc32) * 16777619U;
        h = (h ^ (uint32_t) e->size) * 16777619U;
    }

    g->etag = h;

    /* safe for every system, unique, and short enough for the format */

    g->names = ngx_http_darkroom_zip_unique(g->entries, n);
    if (g->names == NULL) {
        goto nomem;
    }

    (void) ngx_http_darkroom_zip_plan(g->entries, n, &g->zip);

    return NGX_OK;

nomem:

    ngx_http_darkroom_error_set(&t->err, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                "internal_error", "Out of memory.");
    return NGX_ERROR;
}


/* a signed link to <media prefix><rel>, malloc'd */

static char *
ngx_http_darkroom_gallery_sign(ngx_http_darkroom_gallery_req_t *g,
    const char *rel, time_t ttl, const char *filename)
{
    int                            rc;
    char                          *path, *url;
    size_t                         len, flen;
    ngx_http_darkroom_sign_link_t  link;
    u_char                         exp[NGX_TIME_T_LEN + 1];

    static u_char  attachment[] = "attachment";

    len = g->conf->media.len + ngx_strlen(rel);

    path = malloc(len + 1);
    if (path == NULL) {
        return NULL;
    }

    ngx_memcpy(path, g->conf->media.data, g->conf->media.len);
    ngx_memcpy(path + g->conf->media.len, rel, len - g->conf->media.len);
    path[len] = '\0';

    ngx_memzero(&link, sizeof(ngx_http_darkroom_sign_link_t));

    link.path.data = (u_char *) path;
    link.path.len = len;

    link.param[NGX_HTTP_DARKROOM_P_EXP].data = exp;
    link.param[NGX_HTTP_DARKROOM_P_EXP].len =
                        ngx_sprintf(exp, "%T", g->now + ttl) - exp;
    link.param[NGX_HTTP_DARKROOM_P_KID].data = g->kid.data;
    link.param[NGX_HTTP_DARKROOM_P_KID].len = g->kid.len;
    link.param[NGX_HTTP_DARKROOM_P_G].data = (u_char *) g->g;
    link.param[NGX_HTTP_DARKROOM_P_G].len = ngx_strlen(g->g);

    if (filename) {
        link.param[NGX_HTTP_DARKROOM_P_DISPOSITION].data = attachment;
        link.param[NGX_HTTP_DARKROOM_P_DISPOSITION].len =
                                                    sizeof(attachment) - 1;

        flen = ngx_strlen(filename);

        if (ngx_http_darkroom_sign_value(NGX_HTTP_DARKROOM_P_FILENAME,
                                         (u_char *) filename, flen)
            == NGX_HTTP_DARKROOM_SIGN_OK)
        {
            link.param[NGX_HTTP_DARKROOM_P_FILENAME].data =
                                                        (u_char *) filename;
            link.param[NGX_HTTP_DARKROOM_P_FILENAME].len = flen;
        }
    }

    len = ngx_http_darkroom_sign_url(&link, g->key.data, g->key.len, NULL, 0,
                                     &rc);
    if (len == 0) {
        free(path);
        return NULL;
    }

    url = malloc(len + 1);
    if (url == NULL) {
        free(path);
        return NULL;
    }

    len = ngx_http_darkroom_sign_url(&link, g->key.data, g->key.len,
                                     (u_char *) url, len, &rc);
    free(path);

    if (len == 0) {
        free(url);
        return NULL;
    }

    url[len] = '\0';

    return url;
}


void
ngx_http_darkroom_gallery_answer(ngx_http_darkroom_task_t *t,
    ngx_uint_t status, cJSON *json)
{
    t->out = json ? cJSON_PrintUnformatted(json) : NULL;
    cJSON_Delete(json);

    if (t->out == NULL) {
        ngx_http_darkroom_error_set(&t->err, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                    "internal_error", "Out of memory.");
        return;
    }

    t->out_len = ngx_strlen(t->out);
    t->status = status;
}


/* on the event loop again */

static ngx_int_t
ngx_http_darkroom_gallery_done(ngx_http_request_t *r,
    ngx_http_darkroom_task_t *t)
{
    ngx_http_darkroom_gallery_req_t  *g = t->data;

    ngx_http_darkroom_gallery_debug(r, t);

    if (g->route == NGX_HTTP_DARKROOM_GALLERY_ZIP && t->err.status == 0) {
        return ngx_http_darkroom_gallery_send_zip(r, g);
    }

    /* the values live as long as the request: g is in its pool */

    if (ngx_http_darkroom_header_out(r, "Cache-Control",
                                     (u_char *) "no-store", 8)
        == NULL)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (g->set_cookie[0]
        && ngx_http_darkroom_header_out(r, "Set-Cookie",
                                        (u_char *) g->set_cookie,
                                        ngx_strlen(g->set_cookie))
           == NULL)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (g->set_visitor[0]
        && ngx_http_darkroom_header_out(r, "Set-Cookie",
                                        (u_char *) g->set_visitor,
                                        ngx_strlen(g->set_visitor))
           == NULL)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (t->err.status) {
        return ngx_http_darkroom_send_task_error(r, &t->err);
    }

    /* the visitor may buy (no answer made: not expired, not locked) */

    if ((g->route == NGX_HTTP_DARKROOM_GALLERY_QUOTE
         || g->route == NGX_HTTP_DARKROOM_GALLERY_CHECKOUT)
        && t->out == NULL)
    {
        return ngx_http_darkroom_gallery_buy_done(r, g);
    }

    if (t->out == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_darkroom_gallery_cache_put(r, t);

    return ngx_http_darkroom_send_json(r, t->status ? t->status : NGX_HTTP_OK,
                                       (u_char *) t->out, t->out_len);
}


/* what the thread did to the gallery's state, at debug level */

static void
ngx_http_darkroom_gallery_debug(ngx_http_request_t *r,
    ngx_http_darkroom_task_t *t)
{
#if (NGX_DEBUG)
    ngx_log_t                        *log;
    ngx_http_darkroom_gallery_req_t  *g = t->data;

    static const char  *cookie[] = {
        "unchecked", "none", "refused", "expired or rotated", "accepted"
    };

    log = r->connection->log;

    if (g->cookie != NGX_HTTP_DARKROOM_GALLERY_COOKIE_UNCHECKED) {
        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, log, 0,
                       "darkroom gallery \"%s\": cookie %s",
                       g->slug, cookie[g->cookie]);
    }

    if (g->visitor) {
        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, log, 0,
                       "darkroom gallery \"%s\": visitor %uL",
                       g->slug, g->visitor);
    }

    switch (g->route) {

    case NGX_HTTP_DARKROOM_GALLERY_UNLOCK:
    case NGX_HTTP_DARKROOM_GALLERY_DOWNLOAD:

        if (t->err.status == NGX_HTTP_TOO_MANY_REQUESTS) {
            ngx_log_debug3(NGX_LOG_DEBUG_HTTP, log, 0,
                           "darkroom gallery \"%s\": %s locked out for %ui s",
                           g->slug,
                           g->route == NGX_HTTP_DARKROOM_GALLERY_UNLOCK
                           ? "unlock" : "PIN", t->err.retry_after);
            return;
        }

        if (t->err.status) {
            ngx_log_debug3(NGX_LOG_DEBUG_HTTP, log, 0,
                           "darkroom gallery \"%s\": %s refused: %s",
                           g->slug,
                           g->route == NGX_HTTP_DARKROOM_GALLERY_UNLOCK
                           ? "unlock" : "download", t->err.code);
            return;
        }

        if (g->route == NGX_HTTP_DARKROOM_GALLERY_UNLOCK) {
            ngx_log_debug1(NGX_LOG_DEBUG_HTTP, log, 0,
                           "darkroom gallery \"%s\": unlocked, cookie set",
                           g->slug);
            return;
        }

        ngx_log_debug3(NGX_LOG_DEBUG_HTTP, log, 0,
                       "darkroom gallery \"%s\": zip planned, %uL entries, "
                       "%uL bytes", g->slug, g->zip.entries, g->zip.size);
        return;

    case NGX_HTTP_DARKROOM_GALLERY_ZIP:

        if (t->err.status) {
            ngx_log_debug2(NGX_LOG_DEBUG_HTTP, log, 0,
                           "darkroom gallery \"%s\": zip refused: %s",
                           g->slug, t->err.code);
            return;
        }

        ngx_log_debug3(NGX_LOG_DEBUG_HTTP, log, 0,
                       "darkroom gallery \"%s\": zip of %ui entries, "
                       "%uL bytes, files open", g->slug, g->nentries,
                       g->zip.size);
        return;

    default:
        return;
    }
#endif
}


/*
 * The archive as one chain: a memory buffer with each local header, the
 * file's bytes as a file buffer (sendfile), then the central directory and
 * end records.  The length is exact, so nginx's range filter serves a
 * Range request (resume) from the same chain.
 */

static ngx_int_t
ngx_http_darkroom_gallery_send_zip(ngx_http_request_t *r,
    ngx_http_darkroom_gallery_req_t *g)
{
    u_char                         *name;
    size_t                          len;
    ngx_int_t                       rc;
    ngx_str_t                       gs;
    ngx_table_elt_t                *h;

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = g->zip.size;
    r->headers_out.last_modified_time = g->last_modified;
    ngx_str_set(&r->headers_out.content_type, "application/zip");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "ETag");
    h->value.data = ngx_pnalloc(r->pool, NGX_OFF_T_LEN + 16);
    if (h->value.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->value.len = ngx_sprintf(h->value.data, "\"%xO-%08xD\"",
                               (off_t) g->zip.size, g->etag)
                   - h->value.data;
    r->headers_out.etag = h;

    /* Content-Disposition: attachment; filename="<slug>.zip" */

    name = ngx_pnalloc(r->pool, NGX_HTTP_DARKROOM_GALLERY_SLUG_MAX + 5);
    if (name == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    len = ngx_sprintf(name, "%s.zip", g->slug) - name;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Content-Disposition");
    h->value.len = ngx_http_darkroom_sign_disposition(
                                   (u_char *) "attachment", 10, name, len,
                                   NULL, 0);
    h->value.data = ngx_pnalloc(r->pool, h->value.len);
    if (h->value.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->value.len = ngx_http_darkroom_sign_disposition(
                                   (u_char *) "attachment", 10, name, len,
                                   h->value.data, h->value.len);

    /*
     * The range filter cuts a multipart answer only out of a body in one
     * buffer; this chain has many, so several ranges get the whole
     * archive (200), as for proxied or sliced answers.
     */

    r->allow_ranges = 1;
    r->single_range = 1;

    gs.data = (u_char *) g->g;
    gs.len = ngx_strlen(g->g);
    ngx_http_darkroom_gallery_log(r, &gs, &r->uri, NGX_HTTP_OK,
                                  (off_t) g->zip.size);

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    return ngx_http_darkroom_gallery_zip_body(r, g);
}


/* the chain: local headers and files, then the directory and end records */

static ngx_int_t
ngx_http_darkroom_gallery_zip_body(ngx_http_request_t *r,
    ngx_http_darkroom_gallery_req_t *g)
{
    u_char                         *p;
    size_t                          len;
    ngx_buf_t                      *b;
    ngx_uint_t                      i;
    ngx_file_t                     *file;
    ngx_chain_t                    *out, **ll, *cl;
    ngx_http_darkroom_zip_entry_t  *e;

    out = NULL;
    ll = &out;

    for (i = 0; i < g->nentries; i++) {
        e = &g->entries[i];

        len = ngx_http_darkroom_zip_local_len(e);

        b = ngx_create_temp_buf(r->pool, len);
        if (b == NULL) {
            return NGX_ERROR;
        }

        b->last += ngx_http_darkroom_zip_local(e, b->pos);

        cl = ngx_alloc_chain_link(r->pool);
        if (cl == NULL) {
            return NGX_ERROR;
        }

        cl->buf = b;
        *ll = cl;
        ll = &cl->next;

        if (e->size == 0) {
            continue;
        }

        b = ngx_calloc_buf(r->pool);
        file = ngx_pcalloc(r->pool, sizeof(ngx_file_t));

        if (b == NULL || file == NULL) {
            return NGX_ERROR;
        }

        file->fd = g->fds[i];
        file->name.data = (u_char *) e->name;     /* for logs only */
        file->name.len = e->name_len;
        file->log = r->connection->log;

        b->file = file;
        b->in_file = 1;
        b->file_pos = 0;
        b->file_last = e->size;

        cl = ngx_alloc_chain_link(r->pool);
        if (cl == NULL) {
            return NGX_ERROR;
        }

        cl->buf = b;
        *ll = cl;
        ll = &cl->next;
    }

    len = g->zip.cd_size + ngx_http_darkroom_zip_end_len(&g->zip);

    b = ngx_create_temp_buf(r->pool, len);
    if (b == NULL) {
        return NGX_ERROR;
    }

    p = b->pos;

    for (i = 0; i < g->nentries; i++) {
        p += ngx_http_darkroom_zip_central(&g->entries[i], p);
    }

    p += ngx_http_darkroom_zip_end(&g->zip, p);
    b->last = p;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    cl = ngx_alloc_chain_link(r->pool);
    if (cl == NULL) {
        return NGX_ERROR;
    }

    cl->buf = b;
    cl->next = NULL;
    *ll = cl;

    return ngx_http_output_filter(r, out);
}
