
/*
 * darkroom: private client galleries, the admin API
 * (darkroom_gallery_admin), behind the admin bearer tokens.  Paths are
 * relative to the location, e.g. location /api/admin/galleries/:
 *
 *   GET  /                       every gallery
 *   POST /                       {"slug", "title", "client_email",
 *                                 "expires_at", "password", "pin",
 *                                 "downloads", "download_size"}: create or
 *                                 update; "password": null clears it
 *   GET  <slug>                  the gallery and its photos
 *   POST <slug>                  update (same fields)
 *   POST <slug>/photos           {"photos": [{"original", "bytes", "crc32",
 *                                 "sha256", "web", "proof", ...}]}
 *   POST <slug>/revoke | rotate | restore | deliver
 *   POST <slug>/share            {"email", "message"}: email the gallery's
 *                                link to anyone
 *   PUT  <slug>/uploads/<name>   a photo's bytes, imported by a job
 *                                (ngx_http_darkroom_gallery_upload.c)
 *   GET  <slug>/uploads          the uploads and their import's state
 *   GET  <slug>/downloads        the download log
 *   GET  <slug>/visitors         proofing: the visitors, their lists and
 *                                downloads
 *   GET  <slug>/lists/<id>/export?format=lightroom|csv
 *                                a list's file names for Lightroom's
 *                                filter (text/plain), or CSV (text/csv)
 *
 * Passwords and PINs are hashed here, in the thread, with scrypt; the
 * database only ever sees the hash.
 */


#include "ngx_http_darkroom_gallery.h"


typedef enum {
    NGX_HTTP_DARKROOM_GADMIN_LIST = 0,
    NGX_HTTP_DARKROOM_GADMIN_UPSERT,
    NGX_HTTP_DARKROOM_GADMIN_GET,
    NGX_HTTP_DARKROOM_GADMIN_PHOTOS,
    NGX_HTTP_DARKROOM_GADMIN_ACTION,
    NGX_HTTP_DARKROOM_GADMIN_DOWNLOADS,
    NGX_HTTP_DARKROOM_GADMIN_VISITORS,
    NGX_HTTP_DARKROOM_GADMIN_EXPORT,
    NGX_HTTP_DARKROOM_GADMIN_SHARE,
    NGX_HTTP_DARKROOM_GADMIN_UPLOADS
} ngx_http_darkroom_gadmin_route_e;


typedef struct {
    ngx_http_darkroom_gadmin_route_e   route;
    char                              *slug;      /* NULL: from the body */
    char                              *action;
    char                              *body;
    char                              *list;      /* export */
    char                              *format;
} ngx_http_darkroom_gadmin_t;


static ngx_int_t ngx_http_darkroom_gadmin_prepare(ngx_http_request_t *r,
    ngx_http_darkroom_task_t *t);
static void ngx_http_darkroom_gadmin_work(ngx_http_darkroom_task_t *t);
static ngx_int_t ngx_http_darkroom_gadmin_hash(ngx_http_darkroom_task_t *t,
    cJSON *body, const char *field, const char *hash_field, size_t min);
static PGresult *ngx_http_darkroom_gadmin_views(ngx_http_darkroom_task_t *t,
    ngx_http_darkroom_gadmin_t *a);
static ngx_int_t ngx_http_darkroom_gadmin_export_route(ngx_http_request_t *r,
    ngx_http_darkroom_gadmin_t *a, ngx_str_t *seg);
static ngx_int_t ngx_http_darkroom_gadmin_done(ngx_http_request_t *r,
    ngx_http_darkroom_task_t *t);


ngx_int_t
ngx_http_darkroom_gallery_admin_handler(ngx_http_request_t *r)
{
    ngx_int_t  rc;

    if (ngx_http_darkroom_admin_auth(r) != NGX_OK) {
        return ngx_http_darkroom_admin_refuse(r);
    }

    /* a photo's bytes (ngx_http_darkroom_gallery_upload.c) */

    rc = ngx_http_darkroom_gallery_upload(r);

    if (rc != NGX_DECLINED) {
        return rc;
    }

    return ngx_http_darkroom_task_start(r, sizeof(ngx_http_darkroom_gadmin_t),
                                        ngx_http_darkroom_gadmin_prepare,
                                        ngx_http_darkroom_gadmin_work,
                                        ngx_http_darkroom_gadmin_done);
}


static ngx_int_t
ngx_http_darkroom_gadmin_prepare(ngx_http_request_t *r,
    ngx_http_darkroom_task_t *t)
{
    ngx_int_t                    n;
    ngx_str_t                    seg[4], b;
    ngx_uint_t                   get;
    ngx_http_darkroom_gadmin_t  *a = t->data;

    n = ngx_http_darkroom_path_split(r, seg, 4);

    get = (r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD)) ? 1 : 0;

    if (!get && r->method != NGX_HTTP_POST && r->method != NGX_HTTP_PUT) {
        return ngx_http_darkroom_send_error(r, NGX_HTTP_NOT_ALLOWED,
                   "method_not_allowed",
                   "Use GET to read and POST to change.");
    }

    if (n == 0) {
        a->route = get ? NGX_HTTP_DARKROOM_GADMIN_LIST
                       : NGX_HTTP_DARKROOM_GADMIN_UPSERT;

    } else if (n == 1) {
        a->route = get ? NGX_HTTP_DARKROOM_GADMIN_GET
                       : NGX_HTTP_DARKROOM_GADMIN_UPSERT;

    } else if (n == 2 && !get && ngx_http_darkroom_is(seg[1], "photos")) {
        a->route = NGX_HTTP_DARKROOM_GADMIN_PHOTOS;

    } else if (n == 2 && get && ngx_http_darkroom_is(seg[1], "downloads")) {
        a->route = NGX_HTTP_DARKROOM_GADMIN_DOWNLOADS;

    } else if (n == 2 && get && ngx_http_darkroom_is(seg[1], "visitors")) {
        a->route = NGX_HTTP_DARKROOM_GADMIN_VISITORS;

    } else if (n == 2 && !get && ngx_http_darkroom_is(seg[1], "share")) {
        a->route = NGX_HTTP_DARKROOM_GADMIN_SHARE;

    } else if (n == 2 && get && ngx_http_darkroom_is(seg[1], "uploads")) {
        a->route = NGX_HTTP_DARKROOM_GADMIN_UPLOADS;

    } else if (n == 4 && get && ngx_http_darkroom_is(seg[1], "lists")
               && ngx_http_darkroom_is(seg[3], "export"))
    {
        if (ngx_http_darkroom_gadmin_export_route(r, a, seg) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

    } else if (n == 2 && !get
               && (ngx_http_darkroom_is(seg[1], "revoke")
                   || ngx_http_darkroom_is(seg[1], "rotate")
                   || ngx_http_darkroom_is(seg[1], "restore")
                   || ngx_http_darkroom_is(seg[1], "deliver")))
    {
        a->route = NGX_HTTP_DARKROOM_GADMIN_ACTION;
        a->action = ngx_http_darkroom_cstr(r->pool, seg[1].data, seg[1].len);

    } else {
        return ngx_http_darkroom_send_error(r, NGX_HTTP_NOT_FOUND,
                   "not_found", "There is no such admin resource.");
    }

    if (n >= 1) {
        a->slug = ngx_http_darkroom_cstr(r->pool, seg[0].data, seg[0].len);
        if (a->slug == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    b = t->body;

    a->body = ngx_http_darkroom_cstr(r->pool, b.data, b.len);
    if (a->body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return NGX_OK;
}




/* in a thread */

static void
ngx_http_darkroom_gadmin_work(ngx_http_darkroom_task_t *t)
{
    char                        *text;
    cJSON                       *body;
    PGresult                    *res;
    const char                  *sql, *params[2];
    ngx_http_darkroom_gadmin_t  *a = t->data;

    params[0] = a->slug;
    params[1] = a->body;
    text = NULL;

    switch (a->route) {

    case NGX_HTTP_DARKROOM_GADMIN_LIST:
        res = ngx_http_darkroom_db_exec(&t->db,
                                        "SELECT gallery_admin_list()", 0,
                                        NULL, &t->err);
        break;

    case NGX_HTTP_DARKROOM_GADMIN_GET:
        res = ngx_http_darkroom_db_exec(&t->db,
                                        "SELECT gallery_admin_get($1)", 1,
                                        params, &t->err);
        break;

    case NGX_HTTP_DARKROOM_GADMIN_DOWNLOADS:
    case NGX_HTTP_DARKROOM_GADMIN_VISITORS:
    case NGX_HTTP_DARKROOM_GADMIN_EXPORT:
    case NGX_HTTP_DARKROOM_GADMIN_SHARE:
    case NGX_HTTP_DARKROOM_GADMIN_UPLOADS:
        res = ngx_http_darkroom_gadmin_views(t, a);
        break;

    case NGX_HTTP_DARKROOM_GADMIN_ACTION:
        params[1] = a->action;
        res = ngx_http_darkroom_db_exec(&t->db,
                                        "SELECT gallery_admin_action($1, $2)",
                                        2, params, &t->err);
        break;

    case NGX_HTTP_DARKROOM_GADMIN_PHOTOS:
        res = ngx_http_darkroom_db_exec(&t->db,
                           "SELECT gallery_admin_photos($1, $2::jsonb)", 2,
                           params, &t->err);
        break;

    default: /* NGX_HTTP_DARKROOM_GADMIN_UPSERT */

        body = ngx_http_darkroom_json_object(&t->err, a->body, 0);

        if (body == NULL) {
            return;
        }

        if (ngx_http_darkroom_gadmin_hash(t, body, "password",
                                          "password_hash", 4)
            != NGX_OK
            || ngx_http_darkroom_gadmin_hash(t, body, "pin", "pin_hash", 4)
               != NGX_OK)
        {
            cJSON_Delete(body);
            return;
        }

        /* hashes come only from here */
        cJSON_DeleteItemFromObjectCaseSensitive(body, "password");
        cJSON_DeleteItemFromObjectCaseSensitive(body, "pin");

        text = cJSON_PrintUnformatted(body);
        cJSON_Delete(body);

        if (text == NULL) {
            ngx_http_darkroom_error_set(&t->err,
                                        NGX_HTTP_INTERNAL_SERVER_ERROR,
                                        "internal_error", "Out of memory.");
            return;
        }

        params[1] = text;
        sql = "SELECT gallery_admin_upsert($1, $2::jsonb)";

        res = ngx_http_darkroom_db_exec(&t->db, sql, 2, params, &t->err);
        break;
    }

    free(text);

    if (res == NULL) {
        return;
    }

    ngx_http_darkroom_task_answer(t, res, "There is no such gallery.");
}


/*
 * the download log, the uploads, proofing (the visitors, a list's
 * export), and a share by email (the body is parsed in SQL: bad JSON
 * is a 400 there)
 */

static PGresult *
ngx_http_darkroom_gadmin_views(ngx_http_darkroom_task_t *t,
    ngx_http_darkroom_gadmin_t *a)
{
    const char  *params[3];

    params[0] = a->slug;
    params[1] = a->list;
    params[2] = a->format;

    if (a->route == NGX_HTTP_DARKROOM_GADMIN_SHARE) {
        params[1] = a->body;
        return ngx_http_darkroom_db_exec(&t->db,
                                         "SELECT gallery_admin_share($1, $2)",
                                         2, params, &t->err);
    }

    if (a->route == NGX_HTTP_DARKROOM_GADMIN_DOWNLOADS) {
        return ngx_http_darkroom_db_exec(&t->db,
                                         "SELECT gallery_admin_downloads($1)",
                                         1, params, &t->err);
    }

    if (a->route == NGX_HTTP_DARKROOM_GADMIN_UPLOADS) {
        return ngx_http_darkroom_db_exec(&t->db,
                                         "SELECT gallery_upload_list($1)",
                                         1, params, &t->err);
    }

    if (a->route == NGX_HTTP_DARKROOM_GADMIN_VISITORS) {
        return ngx_http_darkroom_db_exec(&t->db,
                                         "SELECT gallery_admin_visitors($1)",
                                         1, params, &t->err);
    }

    return ngx_http_darkroom_db_exec(&t->db,
               "SELECT gallery_admin_export($1, $2::bigint, $3)", 3, params,
               &t->err);
}


/*
 * "password": "..." becomes "password_hash": "scrypt$...", and
 * "password": null (or "") becomes "password_hash": null.
 */

static ngx_int_t
ngx_http_darkroom_gadmin_hash(ngx_http_darkroom_task_t *t, cJSON *body,
    const char *field, const char *hash_field, size_t min)
{
    cJSON   *v;
    size_t   len;
    u_char   hash[NGX_HTTP_DARKROOM_GALLERY_HASH_MAX];

    v = cJSON_GetObjectItemCaseSensitive(body, field);

    cJSON_DeleteItemFromObjectCaseSensitive(body, hash_field);

    if (v == NULL) {
        return NGX_OK;
    }

    if (cJSON_IsNull(v) || (cJSON_IsString(v) && v->valuestring[0] == '\0'))
    {
        cJSON_AddNullToObject(body, hash_field);
        return NGX_OK;
    }

    len = cJSON_IsString(v) ? ngx_strlen(v->valuestring) : 0;

    if (len < min || len > NGX_HTTP_DARKROOM_GALLERY_SECRET_MAX) {
        ngx_http_darkroom_error_set(&t->err, NGX_HTTP_BAD_REQUEST,
                                    "invalid_value",
                                    "The %s must be a string of %zu to %d "
                                    "characters.", field, min,
                                    NGX_HTTP_DARKROOM_GALLERY_SECRET_MAX);
        return NGX_ERROR;
    }

    if (ngx_http_darkroom_scrypt_hash((u_char *) v->valuestring, len,
                                              hash, sizeof(hash))
        != NGX_OK)
    {
        ngx_http_darkroom_error_set(&t->err, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                    "internal_error",
                                    "The %s could not be hashed.", field);
        return NGX_ERROR;
    }

    cJSON_AddStringToObject(body, hash_field, (char *) hash);

    return NGX_OK;
}


/* on the event loop: GET <slug>/lists/<id>/export?format=... */

static ngx_int_t
ngx_http_darkroom_gadmin_export_route(ngx_http_request_t *r,
    ngx_http_darkroom_gadmin_t *a, ngx_str_t *seg)
{
    ngx_uint_t  i;

    a->route = NGX_HTTP_DARKROOM_GADMIN_EXPORT;

    /* not a number: no list (404 from the database) */

    for (i = 0; i < seg[2].len && i < 18; i++) {
        if (seg[2].data[i] < '0' || seg[2].data[i] > '9') {
            break;
        }
    }

    a->list = (i == seg[2].len && i > 0)
              ? ngx_http_darkroom_cstr(r->pool, seg[2].data, seg[2].len)
              : "0";

    a->format = ngx_http_darkroom_query_arg(r, "format");

    if (a->list == NULL) {
        return NGX_ERROR;
    }

    if (a->format == NULL) {
        a->format = "lightroom";
    }

    return NGX_OK;
}


/* an export is text or CSV; everything else JSON */

static ngx_int_t
ngx_http_darkroom_gadmin_done(ngx_http_request_t *r,
    ngx_http_darkroom_task_t *t)
{
    ngx_http_darkroom_gadmin_t  *a = t->data;

    if (t->err.status) {
        return ngx_http_darkroom_send_task_error(r, &t->err);
    }

    if (t->out == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (a->route != NGX_HTTP_DARKROOM_GADMIN_EXPORT) {
        return ngx_http_darkroom_send_json(r, t->status ? t->status
                                                        : NGX_HTTP_OK,
                                           (u_char *) t->out, t->out_len);
    }

    if (ngx_http_darkroom_header_out(r, "Cache-Control",
                                     (u_char *) "no-store", 8)
        == NULL)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_darkroom_send_body(r, NGX_HTTP_OK,
               (a->format[0] == 'c') ? "text/csv; charset=utf-8"
                                     : "text/plain; charset=utf-8",
               (u_char *) t->out, t->out_len);
}
