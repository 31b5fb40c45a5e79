
/*
 * darkroom: private client galleries (ngx_http_darkroom_gallery_module).
 *
 * The files, from the bottom up; each uses only those above it:
 *
 *   ngx_http_darkroom_gallery_cookie.c  the gallery cookie's format, pure C
 *   ngx_http_darkroom_zip.c             streaming ZIP archives, pure C
 *   ngx_http_darkroom_gallery_module.c  the module: directives and confs,
 *                                       the shared memory zone with the
 *                                       revocation list and the download
 *                                       log ring, their per-worker refresher,
 *                                       and the core's link hooks
 *   ngx_http_darkroom_gallery.c         the client API (darkroom_gallery)
 *   ngx_http_darkroom_gallery_upload.c  the admin API's uploads: a
 *                                       photo's body stays in its file
 *   ngx_http_darkroom_gallery_admin.c   the admin API
 *                                       (darkroom_gallery_admin)
 *
 * The module file reaches the two APIs only through their content handlers
 * declared at the end, which its directives install.  The media module asks
 * the gallery, through the core's link hooks, whether a signed link's
 * gallery still stands, and hands it downloads to log.
 */


#ifndef _NGX_HTTP_DARKROOM_GALLERY_H_INCLUDED_
#define _NGX_HTTP_DARKROOM_GALLERY_H_INCLUDED_


#include "ngx_http_darkroom.h"
#include "ngx_http_darkroom_sign.h"


#define NGX_HTTP_DARKROOM_GALLERY_SLUG_MAX   64
#define NGX_HTTP_DARKROOM_GALLERY_HASH_MAX   256     /* a stored hash, NUL */
#define NGX_HTTP_DARKROOM_GALLERY_SECRET_MAX 1024    /* a password or PIN */


/* the configuration (ngx_http_darkroom_gallery_module.c) */

typedef struct {
    ngx_shm_zone_t                    *shm_zone;
    ngx_msec_t                         interval;
    ngx_uint_t                         batch;
    ngx_http_darkroom_use_t            use_admin;
    ngx_array_t                       *roots;       /* ngx_str_t, purge */
} ngx_http_darkroom_gallery_main_conf_t;


typedef struct {
    ngx_str_t                          media;       /* URL prefix, "/" end */
    ngx_str_t                          root;        /* files, "/" end */
    ngx_array_t                       *cookie_keys; /* the first signs */
    time_t                             proof_ttl;
    time_t                             download_ttl;
    u_char                            *proof_file;  /* where set, or NULL */
    ngx_uint_t                         proof_line;
    u_char                            *download_file;
    ngx_uint_t                         download_line;
    time_t                             cookie_ttl;
    ngx_uint_t                         lock_max;
    time_t                             lock_window;
    time_t                             lock_time;
    ngx_uint_t                         lock_gallery_max;
    ngx_uint_t                         zip_max;     /* entries */
    ngx_str_t                          cancel_url;  /* "": the shop's */
    ngx_flag_t                         api;         /* darkroom_gallery */
    u_char                            *api_file;
    ngx_uint_t                         api_line;
} ngx_http_darkroom_gallery_loc_conf_t;


extern ngx_module_t  ngx_http_darkroom_gallery_module;


/* ngx_http_darkroom_gallery_module.c */

/*
 * Records a download in shared memory, written to the database in batches:
 * the core's link log hook (the media module's signed downloads), and the
 * client API's ZIPs.  On the event loop.
 */
void ngx_http_darkroom_gallery_log(ngx_http_request_t *r, ngx_str_t *g,
    ngx_str_t *path, ngx_uint_t status, off_t bytes);

/*
 * The listing cache's versions (GET <slug> from darkroom_public_cache), on
 * the event loop: whether a listing of gallery id built at version for
 * generation may be served (the version polled at the zone's interval, the
 * revocation list), and a listing just built.
 */
ngx_int_t ngx_http_darkroom_gallery_listing_fresh(ngx_http_request_t *r,
    uint64_t id, uint32_t generation, int64_t version);
void ngx_http_darkroom_gallery_listing_built(ngx_http_request_t *r,
    uint64_t id, int64_t version);


/* password hashes: ngx_http_darkroom_scrypt.c in core */


/*
 * A query of an SQL function whose result columns are read by name (in
 * threads).  The reader names its columns in an enum and a table of names
 * in the same order; this runs the query and looks the names up once with
 * PQfnumber into col[].  NULL with err set on an error, a column the
 * answer lacks included: never a wrong value.  The core has no such helper
 * yet, so it is here, static, for the gallery's files.
 */
static ngx_inline PGresult *
ngx_http_darkroom_gallery_query(ngx_http_darkroom_db_t *db, const char *sql,
    int nparams, const char *const *params, const char *const *names,
    int *col, ngx_uint_t ncol, ngx_http_darkroom_error_t *err)
{
    PGresult    *res;
    ngx_uint_t   i;

    res = ngx_http_darkroom_db_exec(db, sql, nparams, params, err);
    if (res == NULL) {
        return NULL;
    }

    for (i = 0; i < ncol; i++) {
        col[i] = PQfnumber(res, names[i]);

        if (col[i] < 0) {
            PQclear(res);
            ngx_http_darkroom_error_set(err, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                        "internal_error", "Please retry.");
            snprintf(err->detail, sizeof(err->detail),
                     "the answer to \"%s\" has no column \"%s\"",
                     sql, names[i]);
            return NULL;
        }
    }

    return res;
}


/* the content handlers the module's directives install */

/* ngx_http_darkroom_gallery.c */
ngx_int_t ngx_http_darkroom_gallery_handler(ngx_http_request_t *r);

/* ngx_http_darkroom_gallery_admin.c */
ngx_int_t ngx_http_darkroom_gallery_admin_handler(ngx_http_request_t *r);

/* the files of expired galleries (ngx_http_darkroom_gallery_purge.c) */
ngx_int_t ngx_http_darkroom_gallery_purge_root(ngx_conf_t *cf,
    ngx_str_t *root);
ngx_int_t ngx_http_darkroom_gallery_purge_init(ngx_conf_t *cf);

/* ngx_http_darkroom_gallery_upload.c: the admin's PUT <slug>/uploads/<name>,
 * NGX_DECLINED for another request */
ngx_int_t ngx_http_darkroom_gallery_upload(ngx_http_request_t *r);


#endif /* _NGX_HTTP_DARKROOM_GALLERY_H_INCLUDED_ */
