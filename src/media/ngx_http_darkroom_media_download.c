
/*
 * darkroom: digital delivery, the download location (darkroom_download).
 *
 * A link /<location>/<grant>/<nonce>/<name>?exp=..&kid=..&sig=.. signed by
 * core's download signer (ngx_http_darkroom_download.c) is checked on the
 * event loop: the signature with darkroom_download_keys (403), the expiry
 * it carries (410).  Then a task counts the download in PostgreSQL in one
 * statement (download_take(): exact under parallel downloads) and answers
 * with the grant's file: from the location's root with sendfile, Range and
 * HEAD as nginx's static files, or a presigned redirect when the location
 * has darkroom_media_s3.  Always with Content-Disposition: attachment.
 *
 * What counts: a GET from byte 0 (no Range, or a Range starting at 0).  A
 * GET whose Range starts later continues a counted download and is served
 * without counting while the grant stands; HEAD counts nothing.
 */


#include "ngx_http_darkroom.h"
#include "ngx_http_darkroom_sign.h"
#include "ngx_http_darkroom_media_s3.h"
#include "ngx_http_darkroom_media_download.h"


#define NGX_HTTP_DARKROOM_DL_FILE_MAX   1024
#define NGX_HTTP_DARKROOM_DL_NAME_MAX   256


typedef struct {
    char              grant[NGX_INT64_LEN + 1];
    char              nonce[17];
    const char       *mode;        /* "count", "continue", "head" */

    /* the answer of download_take(); "gallery:<path>": a gallery's */
    char              file[NGX_HTTP_DARKROOM_DL_FILE_MAX];
    unsigned          gallery:1;   /* file is under the gallery root */
    char              name[NGX_HTTP_DARKROOM_DL_NAME_MAX];
} ngx_http_darkroom_dl_t;


static ngx_int_t ngx_http_darkroom_dl_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_darkroom_dl_prepare(ngx_http_request_t *r,
    ngx_http_darkroom_task_t *t);
static ngx_int_t ngx_http_darkroom_dl_verify(ngx_http_request_t *r);
static ngx_int_t ngx_http_darkroom_dl_route(ngx_http_request_t *r,
    ngx_http_darkroom_dl_t *dl);
static void ngx_http_darkroom_dl_work(ngx_http_darkroom_task_t *t);
static void ngx_http_darkroom_dl_refuse(ngx_http_darkroom_task_t *t,
    const char *result);
static ngx_int_t ngx_http_darkroom_dl_done(ngx_http_request_t *r,
    ngx_http_darkroom_task_t *t);
static ngx_int_t ngx_http_darkroom_dl_disposition(ngx_http_request_t *r,
    ngx_http_darkroom_dl_t *dl, ngx_str_t *value);
static ngx_int_t ngx_http_darkroom_dl_path(ngx_http_request_t *r,
    ngx_http_darkroom_dl_t *dl, ngx_str_t *path);
static u_char *ngx_http_darkroom_dl_gallery_path(ngx_http_request_t *r,
    ngx_str_t *path);
static ngx_int_t ngx_http_darkroom_dl_send(ngx_http_request_t *r,
    ngx_http_darkroom_dl_t *dl, ngx_str_t *disposition);


/* the content handler of darkroom_download (set in _media_module.c) */

ngx_int_t
ngx_http_darkroom_media_download_handler(ngx_http_request_t *r)
{
    return ngx_http_darkroom_dl_handler(r);
}


static ngx_int_t
ngx_http_darkroom_dl_handler(ngx_http_request_t *r)
{
    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return ngx_http_darkroom_send_error(r, NGX_HTTP_NOT_ALLOWED,
                   "method_not_allowed", "Use GET to download.");
    }

    return ngx_http_darkroom_task_start(r, sizeof(ngx_http_darkroom_dl_t),
                                        ngx_http_darkroom_dl_prepare,
                                        ngx_http_darkroom_dl_work,
                                        ngx_http_darkroom_dl_done);
}


/* on the event loop: the link is authentic and not expired, or answered */

static ngx_int_t
ngx_http_darkroom_dl_prepare(ngx_http_request_t *r,
    ngx_http_darkroom_task_t *t)
{
    u_char                  *p;
    ngx_int_t                rc;
    ngx_table_elt_t         *range;
    ngx_http_darkroom_dl_t  *dl = t->data;

    rc = ngx_http_darkroom_dl_verify(r);
    if (rc != NGX_OK) {
        return rc;
    }

    if (ngx_http_darkroom_dl_route(r, dl) != NGX_OK) {
        return ngx_http_darkroom_send_error(r, NGX_HTTP_FORBIDDEN,
                   "bad_link", "The link is not a download link.");
    }

    /* what counts: see the top of the file */

    range = r->headers_in.range;
    dl->mode = "count";

    if (r->method == NGX_HTTP_HEAD) {
        dl->mode = "head";

    } else if (range && range->value.len > 6
               && ngx_strncasecmp(range->value.data, (u_char *) "bytes=", 6)
                  == 0)
    {
        p = range->value.data + 6;

        while (*p == ' ') {
            p++;
        }

        if (*p != '0' || (p[1] != '-' && p[1] != ' ')) {
            dl->mode = "continue";
        }
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "darkroom download: grant %s, link authentic, %s",
                   dl->grant, dl->mode);

    return NGX_OK;
}


/* the signature (403) with darkroom_download_keys, the expiry (410) */

static ngx_int_t
ngx_http_darkroom_dl_verify(ngx_http_request_t *r)
{
    int                             rc;
    u_char                         *buf;
    int64_t                         exp;
    ngx_http_darkroom_key_t        *key;
    ngx_http_darkroom_sign_str_t   *kid, *e;
    ngx_http_darkroom_sign_link_t   link;
    ngx_http_darkroom_main_conf_t  *dmcf;

    dmcf = ngx_http_get_module_main_conf(r, ngx_http_darkroom_module);

    if (dmcf->download_keys == NULL) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "darkroom download: no \"darkroom_download_keys\", "
                      "links cannot be checked");
        return ngx_http_darkroom_send_error(r,
                   NGX_HTTP_INTERNAL_SERVER_ERROR, "internal_error",
                   "Downloads are not configured.");
    }

    buf = ngx_pnalloc(r->pool, r->args.len + 1);
    if (buf == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memzero(&link, sizeof(ngx_http_darkroom_sign_link_t));
    link.path.data = r->uri.data;
    link.path.len = r->uri.len;

    rc = ngx_http_darkroom_sign_path(r->uri.data, r->uri.len);

    if (rc == NGX_HTTP_DARKROOM_SIGN_OK) {
        rc = ngx_http_darkroom_sign_parse(r->args.data, r->args.len, &link,
                                          buf);
    }

    kid = &link.param[NGX_HTTP_DARKROOM_P_KID];
    key = NULL;

    if (rc == NGX_HTTP_DARKROOM_SIGN_OK) {
        key = ngx_http_darkroom_keyring_find(dmcf->download_keys, kid->data,
                                             kid->len);
    }

    if (key == NULL
        || ngx_http_darkroom_sign_verify(&link, key->key.data, key->key.len)
           != NGX_HTTP_DARKROOM_SIGN_OK)
    {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "darkroom download: bad signature for \"%V\"",
                      &r->uri);
        return ngx_http_darkroom_send_error(r, NGX_HTTP_FORBIDDEN,
                   "bad_signature", "The link's signature does not match.");
    }

    e = &link.param[NGX_HTTP_DARKROOM_P_EXP];

    if (ngx_http_darkroom_sign_time(e->data, e->len, &exp)
        != NGX_HTTP_DARKROOM_SIGN_OK
        || exp <= (int64_t) ngx_time())
    {
        return ngx_http_darkroom_send_error(r, NGX_HTTP_DARKROOM_MEDIA_GONE,
                   "link_expired", "The download link has expired.");
    }

    return NGX_OK;
}


/* .../<grant>/<nonce>/<name>: the last three segments of the path */

static ngx_int_t
ngx_http_darkroom_dl_route(ngx_http_request_t *r, ngx_http_darkroom_dl_t *dl)
{
    u_char      *end, *p, *seg[3];
    size_t       len[3];
    ngx_uint_t   i, k;

    end = r->uri.data + r->uri.len;

    for (i = 0; i < 3; i++) {
        p = end;

        while (p > r->uri.data && p[-1] != '/') {
            p--;
        }

        if (p == r->uri.data || p == end) {
            return NGX_DECLINED;
        }

        seg[i] = p;
        len[i] = end - p;
        end = p - 1;
    }

    /* seg[0] the name, seg[1] the nonce, seg[2] the grant */

    if (len[1] != 16 || len[2] > NGX_INT64_LEN
        || ngx_atoi(seg[2], len[2]) == NGX_ERROR)
    {
        return NGX_DECLINED;
    }

    for (k = 0; k < 16; k++) {
        if (!((seg[1][k] >= '0' && seg[1][k] <= '9')
              || (seg[1][k] >= 'a' && seg[1][k] <= 'f')))
        {
            return NGX_DECLINED;
        }
    }

    ngx_memcpy(dl->grant, seg[2], len[2]);
    dl->grant[len[2]] = '\0';
    ngx_memcpy(dl->nonce, seg[1], 16);
    dl->nonce[16] = '\0';

    return NGX_OK;
}


/* in a thread: one statement counts (or refuses) the download */

static void
ngx_http_darkroom_dl_work(ngx_http_darkroom_task_t *t)
{
    PGresult                *res;
    const char              *params[3], *result, *v;
    ngx_http_darkroom_dl_t  *dl = t->data;

    params[0] = dl->grant;
    params[1] = dl->nonce;
    params[2] = dl->mode;

    res = ngx_http_darkroom_db_exec(&t->db,
              "SELECT * FROM download_take($1::bigint, $2, $3)",
              3, params, &t->err);
    if (res == NULL) {
        return;
    }

    result = ngx_http_darkroom_db_value(res, 0, "result");

    if (ngx_strcmp(result, "ok") != 0) {
        ngx_http_darkroom_dl_refuse(t, result);
        PQclear(res);
        return;
    }

    v = ngx_http_darkroom_db_value(res, 0, "file");

    if (ngx_strlen(v) >= sizeof(dl->file) - 1) {
        ngx_http_darkroom_error_set(&t->err, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                    "internal_error", "The file is not "
                                    "available.");
        PQclear(res);
        return;
    }

    /* a gallery line's original: its path under the gallery root */

    if (ngx_strncmp(v, "gallery:", 8) == 0) {
        dl->gallery = 1;
        v += 8;
    }

    ngx_cpystrn((u_char *) dl->file, (u_char *) v, sizeof(dl->file));

    v = ngx_http_darkroom_db_value(res, 0, "name");
    ngx_cpystrn((u_char *) dl->name, (u_char *) v, sizeof(dl->name));

    PQclear(res);
}


static void
ngx_http_darkroom_dl_refuse(ngx_http_darkroom_task_t *t, const char *result)
{
    ngx_http_darkroom_error_t  *err = &t->err;

    if (ngx_strcmp(result, "exhausted") == 0) {
        ngx_http_darkroom_error_set(err, NGX_HTTP_DARKROOM_MEDIA_GONE,
            "download_limit_reached",
            "This link has been used as many times as it may be.");

    } else if (ngx_strcmp(result, "expired") == 0) {
        ngx_http_darkroom_error_set(err, NGX_HTTP_DARKROOM_MEDIA_GONE,
            "link_expired", "The download link has expired.");

    } else if (ngx_strcmp(result, "revoked") == 0) {
        ngx_http_darkroom_error_set(err, NGX_HTTP_DARKROOM_MEDIA_GONE,
            "download_revoked", "The order was refunded: its downloads "
            "are withdrawn.");

    } else if (ngx_strcmp(result, "replaced") == 0) {
        ngx_http_darkroom_error_set(err, NGX_HTTP_DARKROOM_MEDIA_GONE,
            "link_replaced", "This link was replaced by a newer one: see "
            "your order page or the latest email.");

    } else {
        ngx_http_darkroom_error_set(err, NGX_HTTP_NOT_FOUND, "not_found",
            "There is no such download.");
    }
}


/* on the event loop: the refusal, the redirect, or the file */

static ngx_int_t
ngx_http_darkroom_dl_done(ngx_http_request_t *r, ngx_http_darkroom_task_t *t)
{
    u_char                        *p;
    ngx_str_t                      disposition, uri;
    ngx_http_core_loc_conf_t      *clcf;
    ngx_http_darkroom_dl_t        *dl = t->data;
    ngx_http_darkroom_media_s3_t  *s3;

    if (t->err.status) {
        return ngx_http_darkroom_send_task_error(r, &t->err);
    }

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "darkroom download: grant %s %s, \"%s\"",
                   dl->grant, dl->mode, dl->file);

    if (ngx_http_darkroom_dl_disposition(r, dl, &disposition) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_darkroom_header_out(r, "Cache-Control",
                                     (u_char *) "private, no-store",
                                     sizeof("private, no-store") - 1)
        == NULL)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    s3 = ngx_http_darkroom_media_loc_s3(r);

    if (s3 == NULL) {
        return ngx_http_darkroom_dl_send(r, dl, &disposition);
    }

    /* the object key is the file: the S3 helper takes it from r->uri */

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    uri.len = clcf->name.len + ngx_strlen(dl->file);
    uri.data = ngx_pnalloc(r->pool, uri.len);
    if (uri.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_cpymem(uri.data, clcf->name.data, clcf->name.len);
    ngx_memcpy(p, dl->file, ngx_strlen(dl->file));
    r->uri = uri;

    return ngx_http_darkroom_media_s3_redirect(r, s3, &disposition);
}


static ngx_int_t
ngx_http_darkroom_dl_disposition(ngx_http_request_t *r,
    ngx_http_darkroom_dl_t *dl, ngx_str_t *value)
{
    size_t  len;

    len = ngx_strlen(dl->name);

    value->len = ngx_http_darkroom_sign_disposition((u_char *) "attachment",
                     10, (u_char *) dl->name, len, NULL, 0);
    value->data = ngx_pnalloc(r->pool, value->len);
    if (value->data == NULL) {
        return NGX_ERROR;
    }

    value->len = ngx_http_darkroom_sign_disposition((u_char *) "attachment",
                     10, (u_char *) dl->name, len, value->data, value->len);

    return NGX_OK;
}


/*
 * the file's path under the location's root: "/<file>" mapped by nginx; a
 * gallery original's under darkroom_download_gallery_root (NGX_DECLINED:
 * none here)
 */

static ngx_int_t
ngx_http_darkroom_dl_path(ngx_http_request_t *r, ngx_http_darkroom_dl_t *dl,
    ngx_str_t *path)
{
    u_char     *last;
    size_t      root;
    ngx_str_t   saved;

    if (dl->gallery
        && ngx_http_darkroom_media_loc_gallery_root(r)->len == 0)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "darkroom download: grant %s is a gallery photo's, "
                      "and no \"darkroom_download_gallery_root\" here",
                      dl->grant);
        return NGX_DECLINED;
    }

    saved = r->uri;
    r->uri.len = ngx_strlen(dl->file) + 1;
    r->uri.data = ngx_pnalloc(r->pool, r->uri.len);
    if (r->uri.data == NULL) {
        r->uri = saved;
        return NGX_ERROR;
    }

    r->uri.data[0] = '/';
    ngx_memcpy(r->uri.data + 1, dl->file, r->uri.len - 1);

    /* a file name with "..", "//" or the like never leaves the root */

    last = NULL;

    if (ngx_http_darkroom_sign_path(r->uri.data, r->uri.len)
        == NGX_HTTP_DARKROOM_SIGN_OK)
    {
        last = dl->gallery ? ngx_http_darkroom_dl_gallery_path(r, path)
                           : ngx_http_map_uri_to_path(r, path, &root, 0);
    }

    r->uri = saved;

    if (last == NULL) {
        return NGX_ERROR;
    }

    path->len = last - path->data;

    return NGX_OK;
}


/* r->uri under darkroom_download_gallery_root: the path, NUL-terminated */

static u_char *
ngx_http_darkroom_dl_gallery_path(ngx_http_request_t *r, ngx_str_t *path)
{
    u_char     *p;
    ngx_str_t  *root;

    root = ngx_http_darkroom_media_loc_gallery_root(r);

    path->data = ngx_pnalloc(r->pool, root->len + r->uri.len + 1);
    if (path->data == NULL) {
        return NULL;
    }

    p = ngx_cpymem(path->data, root->data, root->len);
    p = ngx_cpymem(p, r->uri.data, r->uri.len);
    *p = '\0';

    return p;
}


/* the file, as nginx's static module sends one: sendfile, Range, HEAD */

static ngx_int_t
ngx_http_darkroom_dl_send(ngx_http_request_t *r, ngx_http_darkroom_dl_t *dl,
    ngx_str_t *disposition)
{
    ngx_int_t                  rc;
    ngx_str_t                  path;
    ngx_buf_t                 *b;
    ngx_chain_t                out;
    ngx_open_file_info_t       of;
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    rc = ngx_http_darkroom_dl_path(r, dl, &path);

    if (rc == NGX_DECLINED) {
        return ngx_http_darkroom_send_error(r, NGX_HTTP_NOT_FOUND,
                   "file_missing", "The file of this download is missing.");
    }

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memzero(&of, sizeof(ngx_open_file_info_t));
    of.read_ahead = clcf->read_ahead;
    of.directio = clcf->directio;
    of.valid = clcf->open_file_cache_valid;
    of.min_uses = clcf->open_file_cache_min_uses;
    of.errors = clcf->open_file_cache_errors;
    of.events = clcf->open_file_cache_events;

    if (ngx_http_set_disable_symlinks(r, clcf, &path, &of) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_open_cached_file(clcf->open_file_cache, &path, &of, r->pool)
        != NGX_OK || !of.is_file)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, of.err,
                      "darkroom download: the file \"%V\" of grant %s "
                      "cannot be opened", &path, dl->grant);
        return ngx_http_darkroom_send_error(r, NGX_HTTP_NOT_FOUND,
                   "file_missing", "The file of this download is missing.");
    }

    if (ngx_http_darkroom_header_out(r, "Content-Disposition",
                                     disposition->data, disposition->len)
        == NULL)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = of.size;
    r->headers_out.last_modified_time = of.mtime;
    ngx_str_set(&r->headers_out.content_type, "application/octet-stream");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->allow_ranges = 1;

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->file = ngx_pcalloc(r->pool, sizeof(ngx_file_t));
    if (b->file == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    b->file_pos = 0;
    b->file_last = of.size;
    b->in_file = b->file_last ? 1 : 0;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;
    b->sync = b->in_file ? 0 : 1;

    b->file->fd = of.fd;
    b->file->name = path;
    b->file->log = r->connection->log;
    b->file->directio = of.is_directio;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}
