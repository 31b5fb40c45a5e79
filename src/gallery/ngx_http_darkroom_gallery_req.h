/*
 * darkroom: the client API's request, shared by the files of the gallery
 * folder that answer its routes (ngx_http_darkroom_gallery.c and those it
 * dispatches to).  Private to src/gallery/.
 */


#ifndef _NGX_HTTP_DARKROOM_GALLERY_REQ_H_INCLUDED_
#define _NGX_HTTP_DARKROOM_GALLERY_REQ_H_INCLUDED_


#include "ngx_http_darkroom_gallery.h"
#include "ngx_http_darkroom_zip.h"


typedef enum {
    NGX_HTTP_DARKROOM_GALLERY_GET = 0,
    NGX_HTTP_DARKROOM_GALLERY_UNLOCK,
    NGX_HTTP_DARKROOM_GALLERY_LOGOUT,
    NGX_HTTP_DARKROOM_GALLERY_FAVOURITE,
    NGX_HTTP_DARKROOM_GALLERY_DOWNLOAD,
    NGX_HTTP_DARKROOM_GALLERY_ZIP,

    /* buying (ngx_http_darkroom_gallery_sale.c) */
    NGX_HTTP_DARKROOM_GALLERY_QUOTE,
    NGX_HTTP_DARKROOM_GALLERY_CHECKOUT,

    /* proofing (ngx_http_darkroom_gallery_proof.c) */
    NGX_HTTP_DARKROOM_GALLERY_VISITOR,         /* POST visitor */
    NGX_HTTP_DARKROOM_GALLERY_VISITOR_LOGOUT,  /* POST visitor/logout */
    NGX_HTTP_DARKROOM_GALLERY_LISTS,           /* GET lists */
    NGX_HTTP_DARKROOM_GALLERY_LIST_CREATE,     /* POST lists */
    NGX_HTTP_DARKROOM_GALLERY_LIST_ADD,        /* POST lists/<id>/photos */
    NGX_HTTP_DARKROOM_GALLERY_LIST_REMOVE,     /* POST lists/<id>/remove */
    NGX_HTTP_DARKROOM_GALLERY_LIST_SUBMIT      /* POST lists/<id>/submit */
} ngx_http_darkroom_gallery_route_e;


/* what the thread made of the request's gallery cookies, for the debug log */
typedef enum {
    NGX_HTTP_DARKROOM_GALLERY_COOKIE_UNCHECKED = 0,
    NGX_HTTP_DARKROOM_GALLERY_COOKIE_NONE,      /* none for this gallery */
    NGX_HTTP_DARKROOM_GALLERY_COOKIE_REFUSED,   /* not signed by a key */
    NGX_HTTP_DARKROOM_GALLERY_COOKIE_EXPIRED,   /* or of a rotated link */
    NGX_HTTP_DARKROOM_GALLERY_COOKIE_ACCEPTED
} ngx_http_darkroom_gallery_cookie_e;


typedef struct {
    ngx_http_darkroom_gallery_route_e      route;
    char                                   slug[
        NGX_HTTP_DARKROOM_GALLERY_SLUG_MAX + 1];
    char                                   token[
        NGX_HTTP_DARKROOM_TOKEN_SIZE];
    char                                   client[NGX_SOCKADDR_STRLEN + 1];
    char                                  *body;
    u_char                                *cookies;  /* all, "; " */
    size_t                                 cookies_len;
    ngx_http_darkroom_gallery_loc_conf_t  *conf;
    ngx_str_t                              kid;
    ngx_str_t                              key;
    ngx_str_t                              api;      /* location name */
    time_t                                 now;
    unsigned                               secure:1;

    /* the gallery */
    uint64_t                               id;
    uint32_t                               generation;
    char                                   g[48];    /* "<id>.<gen>" */
    char                                   title[256];
    char                                   expires_at[32];
    int64_t                                expires;  /* 0: never */
    int64_t                                listing_version;
    int64_t                                proof_exp; /* the listing's */
    unsigned                               cacheable:1;
    char                                   pw_hash[
        NGX_HTTP_DARKROOM_GALLERY_HASH_MAX];
    char                                   pin_hash[
        NGX_HTTP_DARKROOM_GALLERY_HASH_MAX];
    unsigned                               downloads:1;
    char                                   download_size[16];

    /* answers */
    char                                   set_cookie[512];
    ngx_http_darkroom_gallery_cookie_e     cookie;   /* for the debug log */

    /* the ZIP: malloc'd, freed with the request */
    ngx_http_darkroom_zip_entry_t         *entries;
    int                                   *fds;
    ngx_uint_t                             nentries;
    u_char                                *names;
    ngx_http_darkroom_zip_t                zip;
    time_t                                 last_modified;
    uint32_t                               etag;

    /* proofing: the visitor of a valid cookie (0: none), the list routed */
    uint64_t                               visitor;
    uint64_t                               list;
    char                                   set_visitor[512];
    /* the gallery's currency, else the shop's; "": neither */
    char                                   currency[4];
} ngx_http_darkroom_gallery_req_t;


/* ngx_http_darkroom_gallery.c, in threads: the answer (json is freed) */
void ngx_http_darkroom_gallery_answer(ngx_http_darkroom_task_t *t,
    ngx_uint_t status, cJSON *json);

/* a MAC of a message snprintf made (len, of size), base64url into sig */
ngx_int_t ngx_http_darkroom_gallery_hmac(ngx_str_t *key, const char *msg,
    int len, size_t size, u_char *sig);

/* a cookie's value: ids, expiry and a MAC, at most */
#define NGX_HTTP_DARKROOM_GALLERY_COOKIE_VALUE_MAX  192

/* when a cookie signed now ends, and its Set-Cookie value */
int64_t ngx_http_darkroom_gallery_cookie_expiry(
    ngx_http_darkroom_gallery_req_t *g);
void ngx_http_darkroom_gallery_cookie_header(
    ngx_http_darkroom_gallery_req_t *g, char *buf, size_t size,
    const char *name, const char *value, int64_t exp);

/*
 * ngx_http_darkroom_gallery_prints.c, in threads: "shop" of the listing's
 * gallery object (null without a price sheet); err set on an error
 */
ngx_int_t ngx_http_darkroom_gallery_shop(ngx_http_darkroom_task_t *t,
    ngx_http_darkroom_gallery_req_t *g, cJSON *gallery);
/* a photo's "width", "height" (pixels; NULL: null) and "products" */
void ngx_http_darkroom_gallery_photo_prints(cJSON *photo, const char *width,
    const char *height, const char *products);

/* ngx_http_darkroom_gallery_sale.c: quote and checkout */
ngx_int_t ngx_http_darkroom_gallery_buy_done(ngx_http_request_t *r,
    ngx_http_darkroom_gallery_req_t *g);
/* ngx_http_darkroom_gallery_proof.c */
ngx_int_t ngx_http_darkroom_gallery_proof_route(
    ngx_http_darkroom_gallery_req_t *g, ngx_str_t *seg, ngx_int_t n,
    ngx_uint_t get);
void ngx_http_darkroom_gallery_proof(ngx_http_darkroom_task_t *t,
    ngx_http_darkroom_gallery_req_t *g, cJSON *body);
void ngx_http_darkroom_gallery_visitor_check(
    ngx_http_darkroom_gallery_req_t *g);
ngx_int_t ngx_http_darkroom_gallery_proof_info(ngx_http_darkroom_task_t *t,
    ngx_http_darkroom_gallery_req_t *g, cJSON *gallery);
ngx_int_t ngx_http_darkroom_gallery_proof_download(
    ngx_http_darkroom_task_t *t, ngx_http_darkroom_gallery_req_t *g,
    ngx_uint_t n);
ngx_int_t ngx_http_darkroom_gallery_proof_zip(ngx_http_darkroom_task_t *t,
    ngx_http_darkroom_gallery_req_t *g, const char *hash, ngx_uint_t make);


#endif /* _NGX_HTTP_DARKROOM_GALLERY_REQ_H_INCLUDED_ */
