
/*
 * darkroom: private client galleries.
 *
 * ngx_http_darkroom_gallery_module: the client API (darkroom_gallery), the
 * admin API (darkroom_gallery_admin), streaming ZIPs, and the revocation
 * list and download log kept in shared memory (darkroom_gallery_zone).
 * The media module asks this one, through the core's link hooks, whether
 * a signed link's gallery still stands, and hands it downloads to log.
 */


#ifndef _NGX_HTTP_DARKROOM_GALLERY_H_INCLUDED_
#define _NGX_HTTP_DARKROOM_GALLERY_H_INCLUDED_


#include "ngx_http_darkroom.h"
#include "ngx_http_darkroom_sign.h"


#define NGX_HTTP_DARKROOM_GALLERY_SLUG_MAX   64


typedef struct {
    ngx_shm_zone_t                    *shm_zone;
    ngx_msec_t                         interval;
    ngx_uint_t                         batch;
    ngx_http_darkroom_use_t            use_admin;
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
    ngx_flag_t                         api;         /* darkroom_gallery */
    u_char                            *api_file;
    ngx_uint_t                         api_line;
} ngx_http_darkroom_gallery_loc_conf_t;


extern ngx_module_t  ngx_http_darkroom_gallery_module;


/*
 * For the media module's access check of a link carrying g=<id>.<gen>:
 * NGX_OK it stands (or no zone is configured), NGX_DECLINED the gallery
 * is revoked or expired, NGX_ABORT the link's generation was rotated out,
 * NGX_ERROR g is not of that form, NGX_AGAIN the list is not loaded yet.
 */
ngx_int_t ngx_http_darkroom_gallery_check(ngx_http_request_t *r,
    ngx_str_t *g);

/* records a download in shared memory, written to the database in batches */
void ngx_http_darkroom_gallery_log(ngx_http_request_t *r, ngx_str_t *g,
    ngx_str_t *path, ngx_uint_t status, off_t bytes);

/* scrypt: "scrypt$<log2 N>$<r>$<p>$<salt>$<key>", base64url; in threads */
ngx_int_t ngx_http_darkroom_gallery_scrypt_hash(const u_char *pw, size_t len,
    u_char *out, size_t size);
ngx_int_t ngx_http_darkroom_gallery_scrypt_verify(const u_char *pw,
    size_t len, const u_char *stored);

/* content handlers (ngx_http_darkroom_gallery.c, _gallery_admin.c) */
ngx_int_t ngx_http_darkroom_gallery_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_darkroom_gallery_admin_handler(ngx_http_request_t *r);



#endif /* _NGX_HTTP_DARKROOM_GALLERY_H_INCLUDED_ */
