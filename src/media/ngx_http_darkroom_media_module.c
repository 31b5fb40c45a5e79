
/*
 * darkroom: signed media URLs.
 *
 * An access phase check of <path>?exp=..&kid=..&sig=.. links, so any
 * content behind it is protected (root, alias, proxy_pass, slice), a header
 * filter adding the signed Content-Disposition, and a variable that signs a
 * URL in the configuration.  The signing itself is pure C in
 * ngx_http_darkroom_sign.c; docs/signed-urls.md has the algorithm.
 */


#include "ngx_http_darkroom.h"
#include "ngx_http_darkroom_sign.h"
#include "ngx_http_darkroom_media_s3.h"
#include "ngx_http_darkroom_media_download.h"

#define NGX_HTTP_DARKROOM_MEDIA_MAX_TTL   (30 * 86400)

/* slack for the clock of a signer on another machine */
#define NGX_HTTP_DARKROOM_MEDIA_SKEW      300


/* binding to the client address: bind 0 = optional, 1 = required */

typedef struct {
    ngx_int_t                          bind;
    ngx_uint_t                         v4;     /* prefix bits */
    ngx_uint_t                         v6;
} ngx_http_darkroom_media_bind_t;


typedef struct {
    ngx_array_t                        signers;  /* signer_t * */
    time_t                             max_ttl;  /* largest where enabled */
    ngx_http_darkroom_use_t            use_download;
} ngx_http_darkroom_media_main_conf_t;


typedef struct {
    ngx_flag_t                         enable;
    ngx_uint_t                         status;
    ngx_http_darkroom_media_bind_t     bind;
    ngx_http_darkroom_media_s3_t      *s3;
    time_t                             max_ttl;
    ngx_str_t                          download_gallery_root;
} ngx_http_darkroom_media_loc_conf_t;


/* one darkroom_media_sign directive, the data of its variable */

typedef struct {
    ngx_str_t                          name;
    ngx_http_complex_value_t           path;
    ngx_http_complex_value_t          *filename;
    ngx_http_complex_value_t          *gallery;
    ngx_str_t                          disposition;
    time_t                             ttl;
    ngx_str_t                          ttl_text;  /* for messages */
    ngx_str_t                          file;      /* where it was set */
    ngx_uint_t                         line;
    ngx_http_darkroom_media_bind_t     bind;
} ngx_http_darkroom_media_signer_t;


typedef struct {
    ngx_str_t                          disposition;  /* header value */
    ngx_str_t                          gallery;
    ngx_str_t                          kid;
    const char                        *error;
    unsigned                           attachment:1;
} ngx_http_darkroom_media_ctx_t;


static ngx_int_t ngx_http_darkroom_media_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_darkroom_media_authentic(ngx_http_request_t *r,
    ngx_http_darkroom_media_ctx_t *ctx,
    ngx_http_darkroom_media_loc_conf_t *mlcf,
    ngx_http_darkroom_sign_link_t *link, u_char *buf);
static ngx_int_t ngx_http_darkroom_media_lifetime(ngx_http_request_t *r,
    ngx_http_darkroom_media_ctx_t *ctx,
    ngx_http_darkroom_media_loc_conf_t *mlcf,
    ngx_http_darkroom_sign_link_t *link);
static ngx_int_t ngx_http_darkroom_media_address(ngx_http_request_t *r,
    ngx_http_darkroom_media_ctx_t *ctx,
    ngx_http_darkroom_media_loc_conf_t *mlcf,
    ngx_http_darkroom_sign_link_t *link);
static ngx_int_t ngx_http_darkroom_media_gallery(ngx_http_request_t *r,
    ngx_http_darkroom_media_ctx_t *ctx,
    ngx_http_darkroom_media_loc_conf_t *mlcf,
    ngx_http_darkroom_sign_link_t *link);
static ngx_int_t ngx_http_darkroom_media_disposition(ngx_http_request_t *r,
    ngx_http_darkroom_media_ctx_t *ctx, ngx_http_darkroom_sign_link_t *link);
static ngx_int_t ngx_http_darkroom_media_fail(ngx_http_request_t *r,
    ngx_http_darkroom_media_ctx_t *ctx, ngx_uint_t status, const char *code,
    u_char *message);
static ngx_int_t ngx_http_darkroom_media_client(ngx_http_request_t *r,
    int *family, u_char **addr);
static ngx_int_t ngx_http_darkroom_media_header_filter(
    ngx_http_request_t *r);
static ngx_int_t ngx_http_darkroom_media_log_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_darkroom_media_sign_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_darkroom_media_sign_params(ngx_http_request_t *r,
    ngx_http_darkroom_media_signer_t *signer,
    ngx_http_darkroom_sign_link_t *link);
static ngx_int_t ngx_http_darkroom_media_sign_bind(ngx_http_request_t *r,
    ngx_http_darkroom_media_signer_t *signer,
    ngx_http_darkroom_sign_link_t *link, u_char *ip);
static ngx_int_t ngx_http_darkroom_media_ctx_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_darkroom_media_parse_bind(ngx_str_t *value,
    ngx_http_darkroom_media_bind_t *bind);
static char *ngx_http_darkroom_media_keys(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_darkroom_media_status(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_darkroom_media_bind_ip(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_darkroom_media_s3(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_darkroom_media_max_ttl(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_darkroom_media_gallery_root(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_darkroom_media_download(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_darkroom_media_sign(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_http_darkroom_media_sign_param(ngx_conf_t *cf,
    ngx_http_darkroom_media_signer_t *signer, ngx_str_t *value);
static ngx_int_t ngx_http_darkroom_media_check_ttls(ngx_conf_t *cf);
static ngx_int_t ngx_http_darkroom_media_add_variables(ngx_conf_t *cf);
static void *ngx_http_darkroom_media_create_main_conf(ngx_conf_t *cf);
static void *ngx_http_darkroom_media_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_darkroom_media_merge_loc_conf(ngx_conf_t *cf,
    void *parent, void *child);
static ngx_int_t ngx_http_darkroom_media_init(ngx_conf_t *cf);


static ngx_command_t  ngx_http_darkroom_media_commands[] = {

    { ngx_string("darkroom_media"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_darkroom_media_loc_conf_t, enable),
      NULL },

    { ngx_string("darkroom_media_keys"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_darkroom_media_keys,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("darkroom_media_status"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_darkroom_media_status,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("darkroom_media_bind_ip"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_darkroom_media_bind_ip,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("darkroom_media_max_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_darkroom_media_max_ttl,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_darkroom_media_loc_conf_t, max_ttl),
      NULL },

    { ngx_string("darkroom_media_s3"),
      NGX_HTTP_LOC_CONF|NGX_CONF_2MORE,
      ngx_http_darkroom_media_s3,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("darkroom_download"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_darkroom_media_download,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("darkroom_download_gallery_root"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_darkroom_media_gallery_root,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_darkroom_media_loc_conf_t, download_gallery_root),
      NULL },

    { ngx_string("darkroom_media_sign"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_2MORE,
      ngx_http_darkroom_media_sign,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_darkroom_media_module_ctx = {
    ngx_http_darkroom_media_add_variables,  /* preconfiguration */
    ngx_http_darkroom_media_init,           /* postconfiguration */

    ngx_http_darkroom_media_create_main_conf, /* create main configuration */
    NULL,                                   /* init main configuration */

    NULL,                                   /* create server configuration */
    NULL,                                   /* merge server configuration */

    ngx_http_darkroom_media_create_loc_conf, /* create location config */
    ngx_http_darkroom_media_merge_loc_conf  /* merge location configuration */
};


ngx_module_t  ngx_http_darkroom_media_module = {
    NGX_MODULE_V1,
    &ngx_http_darkroom_media_module_ctx,    /* module context */
    ngx_http_darkroom_media_commands,       /* module directives */
    NGX_HTTP_MODULE,                        /* module type */
    NULL,                                   /* init master */
    NULL,                                   /* init module */
    NULL,                                   /* init process */
    NULL,                                   /* init thread */
    NULL,                                   /* exit thread */
    NULL,                                   /* exit process */
    NULL,                                   /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_http_variable_t  ngx_http_darkroom_media_vars[] = {

    { ngx_string("darkroom_media_gallery"), NULL,
      ngx_http_darkroom_media_ctx_variable,
      offsetof(ngx_http_darkroom_media_ctx_t, gallery), 0, 0 },

    { ngx_string("darkroom_media_kid"), NULL,
      ngx_http_darkroom_media_ctx_variable,
      offsetof(ngx_http_darkroom_media_ctx_t, kid), 0, 0 },

    { ngx_string("darkroom_media_error"), NULL,
      ngx_http_darkroom_media_ctx_variable,
      offsetof(ngx_http_darkroom_media_ctx_t, error), 0, 0 },

      ngx_http_null_variable
};


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;


/*
 * The access phase check, one step after another; each step answers the
 * request itself (and returns what the handler must) or returns NGX_OK.
 */

static ngx_int_t
ngx_http_darkroom_media_handler(ngx_http_request_t *r)
{
    u_char                              *buf;
    ngx_int_t                            rc;
    ngx_http_darkroom_media_ctx_t       *ctx;
    ngx_http_darkroom_sign_link_t        link;
    ngx_http_darkroom_media_loc_conf_t  *mlcf;

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_darkroom_media_module);

    if (!mlcf->enable) {
        return NGX_DECLINED;
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_darkroom_media_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_set_ctx(r, ctx, ngx_http_darkroom_media_module);

    /* r->uri is decoded and normalized by nginx; refuse anything odd left */

    if (ngx_http_darkroom_sign_path(r->uri.data, r->uri.len)
        != NGX_HTTP_DARKROOM_SIGN_OK)
    {
        return ngx_http_darkroom_media_fail(r, ctx, mlcf->status, "bad_path",
                   (u_char *) "The path is not one a link can be signed for.");
    }

    buf = ngx_pnalloc(r->pool, r->args.len + 1);
    if (buf == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_darkroom_media_authentic(r, ctx, mlcf, &link, buf);
    if (rc != NGX_OK) {
        return rc;
    }

    /* the link is authentic from here on */

    rc = ngx_http_darkroom_media_lifetime(r, ctx, mlcf, &link);
    if (rc != NGX_OK) {
        return rc;
    }

    rc = ngx_http_darkroom_media_address(r, ctx, mlcf, &link);
    if (rc != NGX_OK) {
        return rc;
    }

    rc = ngx_http_darkroom_media_gallery(r, ctx, mlcf, &link);
    if (rc != NGX_OK) {
        return rc;
    }

    rc = ngx_http_darkroom_media_disposition(r, ctx, &link);
    if (rc != NGX_OK) {
        return rc;
    }

    ngx_http_darkroom_metric_inc(media_links);

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "darkroom media: link accepted, kid \"%V\"", &ctx->kid);

    if (mlcf->s3) {
        return ngx_http_darkroom_media_s3_redirect(r, mlcf->s3,
                                                   &ctx->disposition);
    }

    return NGX_OK;
}


/*
 * darkroom_download: the location serves counted download links
 * (ngx_http_darkroom_media_download.c); the file is its print path under
 * the location's root, so not an alias.
 */

static char *
ngx_http_darkroom_media_download(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_darkroom_media_main_conf_t *mmcf = conf;

    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->alias) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"darkroom_download\" serves files under the "
                           "location's \"root\", not an \"alias\"");
        return NGX_CONF_ERROR;
    }

    if (ngx_http_darkroom_use(cf, cmd,
                              ngx_http_darkroom_media_download_handler,
                              &mmcf->use_download)
        == NULL)
    {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * darkroom_download_gallery_root: a directory, relative to the prefix as
 * "root" is, kept without a trailing slash (the file's path starts with
 * one)
 */

static char *
ngx_http_darkroom_media_gallery_root(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_darkroom_media_loc_conf_t *mlcf = conf;

    ngx_str_t  *value;

    if (mlcf->download_gallery_root.data) {
        return "is duplicate";
    }

    value = cf->args->elts;
    mlcf->download_gallery_root = value[1];

    if (ngx_conf_full_name(cf->cycle, &mlcf->download_gallery_root, 0)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    while (mlcf->download_gallery_root.len > 1
           && mlcf->download_gallery_root.data[
                  mlcf->download_gallery_root.len - 1] == '/')
    {
        mlcf->download_gallery_root.len--;
    }

    return NGX_CONF_OK;
}


/* for the download location (ngx_http_darkroom_media_download.c) */

ngx_http_darkroom_media_s3_t *
ngx_http_darkroom_media_loc_s3(ngx_http_request_t *r)
{
    ngx_http_darkroom_media_loc_conf_t  *mlcf;

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_darkroom_media_module);

    return mlcf->s3;
}


/* where a gallery line's download is: darkroom_download_gallery_root */

ngx_str_t *
ngx_http_darkroom_media_loc_gallery_root(ngx_http_request_t *r)
{
    ngx_http_darkroom_media_loc_conf_t  *mlcf;

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_darkroom_media_module);

    return &mlcf->download_gallery_root;
}


/* parses the query into link and checks its signature with its key */

static ngx_int_t
ngx_http_darkroom_media_authentic(ngx_http_request_t *r,
    ngx_http_darkroom_media_ctx_t *ctx,
    ngx_http_darkroom_media_loc_conf_t *mlcf,
    ngx_http_darkroom_sign_link_t *link, u_char *buf)
{
    int                            rc;
    ngx_http_darkroom_key_t       *key;
    ngx_http_darkroom_sign_str_t  *kid;
    ngx_http_darkroom_loc_conf_t  *dlcf;

    link->path.data = r->uri.data;
    link->path.len = r->uri.len;

    rc = ngx_http_darkroom_sign_parse(r->args.data, r->args.len, link, buf);

    if (rc != NGX_HTTP_DARKROOM_SIGN_OK) {
        return ngx_http_darkroom_media_fail(r, ctx, mlcf->status,
                   ngx_http_darkroom_sign_code(rc),
                   (u_char *) (rc == NGX_HTTP_DARKROOM_SIGN_MISSING
                   ? "The link has no signature, expiry or key id."
                   : "The link has a parameter that is not signed or "
                     "not valid."));
    }

    dlcf = ngx_http_get_module_loc_conf(r, ngx_http_darkroom_module);
    kid = &link->param[NGX_HTTP_DARKROOM_P_KID];

    key = ngx_http_darkroom_keyring_find(dlcf->link_keys, kid->data,
                                         kid->len);
    if (key == NULL) {
        return ngx_http_darkroom_media_fail(r, ctx, mlcf->status,
                   "unknown_key",
                   (u_char *) "The link was signed with a key that is not "
                              "in use.");
    }

    rc = ngx_http_darkroom_sign_verify(link, key->key.data, key->key.len);

    if (rc == NGX_HTTP_DARKROOM_SIGN_ERROR) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "darkroom media: HMAC failed");
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc != NGX_HTTP_DARKROOM_SIGN_OK) {
        return ngx_http_darkroom_media_fail(r, ctx, mlcf->status,
                   "bad_signature",
                   (u_char *) "The link's signature does not match.");
    }

    ctx->kid = key->kid;

    return NGX_OK;
}


/*
 * Expired links are gone (410).  A link expiring further ahead than
 * darkroom_media_max_ttl (with some slack for the clocks of signers on
 * other machines) is refused: whoever holds a signing key must not be
 * able to make links that outlive every key rotation plan.
 */

static ngx_int_t
ngx_http_darkroom_media_lifetime(ngx_http_request_t *r,
    ngx_http_darkroom_media_ctx_t *ctx,
    ngx_http_darkroom_media_loc_conf_t *mlcf,
    ngx_http_darkroom_sign_link_t *link)
{
    u_char                        *p;
    time_t                         max;
    int64_t                        exp, now;
    ngx_tm_t                       tm;
    ngx_http_darkroom_sign_str_t  *e;
    u_char                         msg[128];

    e = &link->param[NGX_HTTP_DARKROOM_P_EXP];

    (void) ngx_http_darkroom_sign_time(e->data, e->len, &exp);

    now = (int64_t) ngx_time();

    if (exp < now) {
        ngx_gmtime((time_t) exp, &tm);
        p = ngx_snprintf(msg, sizeof(msg) - 1,
                         "The link expired at %4d-%02d-%02dT%02d:%02d:%02dZ.",
                         tm.ngx_tm_year, tm.ngx_tm_mon, tm.ngx_tm_mday,
                         tm.ngx_tm_hour, tm.ngx_tm_min, tm.ngx_tm_sec);
        *p = '\0';

        return ngx_http_darkroom_media_fail(r, ctx,
                                            NGX_HTTP_DARKROOM_MEDIA_GONE,
                                            "link_expired", msg);
    }

    max = mlcf->max_ttl;

    if (exp - now <= (int64_t) max + NGX_HTTP_DARKROOM_MEDIA_SKEW) {
        return NGX_OK;
    }

    if (max % 86400 == 0) {
        p = ngx_snprintf(msg, sizeof(msg) - 1,
                         "The link lives longer than the %T days links "
                         "here may live.", max / 86400);

    } else {
        p = ngx_snprintf(msg, sizeof(msg) - 1,
                         "The link lives longer than the %T seconds links "
                         "here may live.", max);
    }

    *p = '\0';

    return ngx_http_darkroom_media_fail(r, ctx, mlcf->status,
                                        "lifetime_too_long", msg);
}


/* a link bound to a client address or prefix, or a location that wants it */

static ngx_int_t
ngx_http_darkroom_media_address(ngx_http_request_t *r,
    ngx_http_darkroom_media_ctx_t *ctx,
    ngx_http_darkroom_media_loc_conf_t *mlcf,
    ngx_http_darkroom_sign_link_t *link)
{
    int                            family;
    u_char                        *addr;
    ngx_uint_t                     min;
    ngx_http_darkroom_sign_net_t   net;
    ngx_http_darkroom_sign_str_t  *ip;

    ip = &link->param[NGX_HTTP_DARKROOM_P_IP];

    if (ip->data == NULL && !mlcf->bind.bind) {
        return NGX_OK;
    }

    if (ip->data == NULL) {
        return ngx_http_darkroom_media_fail(r, ctx, mlcf->status,
                   "address_required",
                   (u_char *) "The link is not bound to a client address.");
    }

    (void) ngx_http_darkroom_sign_net_parse(ip->data, ip->len, &net);

    if (mlcf->bind.bind) {
        min = (net.family == AF_INET) ? mlcf->bind.v4 : mlcf->bind.v6;

        if (net.bits < min) {
            return ngx_http_darkroom_media_fail(r, ctx, mlcf->status,
                       "address_required",
                       (u_char *) "The link is bound to too wide a "
                                  "range of addresses.");
        }
    }

    if (ngx_http_darkroom_media_client(r, &family, &addr) != NGX_OK
        || !ngx_http_darkroom_sign_net_match(&net, family, addr))
    {
        return ngx_http_darkroom_media_fail(r, ctx, mlcf->status,
                   "address_mismatch",
                   (u_char *) "The link was made for another client "
                              "address.");
    }

    return NGX_OK;
}


/*
 * A link of a gallery: checked by the gallery module through the core's
 * hook, against its revocation list in shared memory: no query.
 */

static ngx_int_t
ngx_http_darkroom_media_gallery(ngx_http_request_t *r,
    ngx_http_darkroom_media_ctx_t *ctx,
    ngx_http_darkroom_media_loc_conf_t *mlcf,
    ngx_http_darkroom_sign_link_t *link)
{
    if (link->param[NGX_HTTP_DARKROOM_P_G].data == NULL) {
        return NGX_OK;
    }

    ctx->gallery.data = link->param[NGX_HTTP_DARKROOM_P_G].data;
    ctx->gallery.len = link->param[NGX_HTTP_DARKROOM_P_G].len;

    /* every other outcome is logged as the refusal's code */

    switch (ngx_http_darkroom_link_check(r, &ctx->gallery)) {

    case NGX_OK:
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "darkroom media: gallery \"%V\" stands", &ctx->gallery);
        return NGX_OK;

    case NGX_DECLINED:
        return ngx_http_darkroom_media_fail(r, ctx,
                   NGX_HTTP_DARKROOM_MEDIA_GONE, "gallery_revoked",
                   (u_char *) "The gallery of this link has been "
                              "withdrawn or has expired.");

    case NGX_ABORT:
        return ngx_http_darkroom_media_fail(r, ctx, mlcf->status,
                   "link_rotated",
                   (u_char *) "The gallery's links have been replaced: "
                              "reload the gallery for new ones.");

    case NGX_AGAIN:
        return ngx_http_darkroom_media_fail(r, ctx,
                   NGX_HTTP_SERVICE_UNAVAILABLE, "not_ready",
                   (u_char *) "The server is starting, please retry "
                              "shortly.");

    default:
        return ngx_http_darkroom_media_fail(r, ctx, mlcf->status,
                   "bad_gallery",
                   (u_char *) "The link's gallery is not valid.");
    }
}


/* the Content-Disposition a signed disposition or filename asks for */

static ngx_int_t
ngx_http_darkroom_media_disposition(ngx_http_request_t *r,
    ngx_http_darkroom_media_ctx_t *ctx, ngx_http_darkroom_sign_link_t *link)
{
    u_char                        *name;
    size_t                         len, size;
    ngx_str_t                     *type;
    ngx_http_darkroom_sign_str_t  *param;

    static ngx_str_t  inline_type = ngx_string("inline");

    param = link->param;

    if (param[NGX_HTTP_DARKROOM_P_DISPOSITION].data == NULL
        && param[NGX_HTTP_DARKROOM_P_FILENAME].data == NULL)
    {
        return NGX_OK;
    }

    type = &inline_type;

    if (param[NGX_HTTP_DARKROOM_P_DISPOSITION].data) {
        type = (ngx_str_t *) &param[NGX_HTTP_DARKROOM_P_DISPOSITION];
    }

    ctx->attachment = (type->len == 10
                       && ngx_strncmp(type->data, "attachment", 10) == 0);

    name = param[NGX_HTTP_DARKROOM_P_FILENAME].data;
    len = param[NGX_HTTP_DARKROOM_P_FILENAME].len;

    if (name == NULL && r->uri.data[r->uri.len - 1] != '/') {

        /* the last segment of the path */

        name = r->uri.data + r->uri.len;

        while (name[-1] != '/') {
            name--;
        }

        len = r->uri.data + r->uri.len - name;
    }

    size = ngx_http_darkroom_sign_disposition(type->data, type->len,
                                              name, len, NULL, 0);

    ctx->disposition.data = ngx_pnalloc(r->pool, size);
    if (ctx->disposition.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->disposition.len = ngx_http_darkroom_sign_disposition(
                               type->data, type->len, name, len,
                               ctx->disposition.data, size);

    return NGX_OK;
}


static ngx_int_t
ngx_http_darkroom_media_fail(ngx_http_request_t *r,
    ngx_http_darkroom_media_ctx_t *ctx, ngx_uint_t status, const char *code,
    u_char *message)
{
    ngx_int_t  rc;

    ctx->error = code;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "darkroom media: link refused, %s, status %ui",
                   code, status);

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "darkroom media: %s for \"%V\"", code, &r->uri);

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    if (ngx_http_darkroom_header_out(r, "Cache-Control", (u_char *) "no-store",
                                     sizeof("no-store") - 1)
        == NULL)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* answered here, in the access phase: the request ends with it */

    ngx_http_finalize_request(r,
        ngx_http_darkroom_send_error(r, status, code, (const char *) message));

    return NGX_DONE;
}


static ngx_int_t
ngx_http_darkroom_media_client(ngx_http_request_t *r, int *family,
    u_char **addr)
{
    struct sockaddr      *sa;
#if (NGX_HAVE_INET6)
    struct sockaddr_in6  *sin6;
#endif

    sa = r->connection->sockaddr;

    switch (sa->sa_family) {

    case AF_INET:
        *family = AF_INET;
        *addr = (u_char *) &((struct sockaddr_in *) sa)->sin_addr;
        return NGX_OK;

#if (NGX_HAVE_INET6)
    case AF_INET6:
        sin6 = (struct sockaddr_in6 *) sa;
        *family = AF_INET6;
        *addr = sin6->sin6_addr.s6_addr;
        return NGX_OK;
#endif

    default:
        return NGX_DECLINED;
    }
}


static ngx_int_t
ngx_http_darkroom_media_header_filter(ngx_http_request_t *r)
{
    ngx_uint_t                      i;
    ngx_list_part_t                *part;
    ngx_table_elt_t                *h;
    ngx_http_darkroom_media_ctx_t  *ctx;

    if (r != r->main) {
        return ngx_http_next_header_filter(r);
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_darkroom_media_module);

    if (ctx == NULL || ctx->disposition.len == 0
        || (r->headers_out.status != NGX_HTTP_OK
            && r->headers_out.status != NGX_HTTP_PARTIAL_CONTENT
            && r->headers_out.status != NGX_HTTP_NOT_MODIFIED))
    {
        return ngx_http_next_header_filter(r);
    }

    /* the signed disposition replaces one from upstream */

    part = &r->headers_out.headers.part;
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

        if (h[i].hash
            && h[i].key.len == sizeof("Content-Disposition") - 1
            && ngx_strncasecmp(h[i].key.data, (u_char *) "Content-Disposition",
                               sizeof("Content-Disposition") - 1)
               == 0)
        {
            h[i].value = ctx->disposition;
            return ngx_http_next_header_filter(r);
        }
    }

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Content-Disposition");
    h->value = ctx->disposition;

    return ngx_http_next_header_filter(r);
}


/*
 * $<name> of darkroom_media_sign: a link signed with the first key where
 * the variable is used; empty (and the reason logged) if it cannot be.
 */

static ngx_int_t
ngx_http_darkroom_media_sign_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_darkroom_media_signer_t *signer =
                                     (ngx_http_darkroom_media_signer_t *) data;

    int                             rc;
    u_char                         *buf;
    size_t                          len;
    ngx_int_t                       n;
    ngx_str_t                       path;
    ngx_http_darkroom_key_t        *key;
    ngx_http_darkroom_loc_conf_t   *dlcf;
    ngx_http_darkroom_sign_link_t   link;
    u_char                          exp[NGX_TIME_T_LEN];
    u_char                          ip[NGX_HTTP_DARKROOM_SIGN_IP_LEN];

    v->not_found = 1;

    dlcf = ngx_http_get_module_loc_conf(r, ngx_http_darkroom_module);

    if (dlcf->link_keys == NULL) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "darkroom media: \"$%V\" used where no "
                      "\"darkroom_media_keys\" is set", &signer->name);
        return NGX_OK;
    }

    key = dlcf->link_keys->keys.elts;

    if (ngx_http_complex_value(r, &signer->path, &path) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_memzero(&link, sizeof(ngx_http_darkroom_sign_link_t));

    link.path.data = path.data;
    link.path.len = path.len;

    link.param[NGX_HTTP_DARKROOM_P_EXP].data = exp;
    link.param[NGX_HTTP_DARKROOM_P_EXP].len =
                              ngx_sprintf(exp, "%T", ngx_time() + signer->ttl)
                              - exp;

    link.param[NGX_HTTP_DARKROOM_P_KID].data = key->kid.data;
    link.param[NGX_HTTP_DARKROOM_P_KID].len = key->kid.len;

    if (ngx_http_darkroom_media_sign_params(r, signer, &link) != NGX_OK) {
        return NGX_ERROR;
    }

    n = ngx_http_darkroom_media_sign_bind(r, signer, &link, ip);
    if (n != NGX_OK) {
        return (n == NGX_DECLINED) ? NGX_OK : NGX_ERROR;
    }

    len = ngx_http_darkroom_sign_url(&link, key->key.data, key->key.len,
                                     NULL, 0, &rc);
    if (len == 0) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "darkroom media: \"$%V\" cannot sign \"%V\": %s",
                      &signer->name, &path, ngx_http_darkroom_sign_code(rc));
        return NGX_OK;
    }

    buf = ngx_pnalloc(r->pool, len);
    if (buf == NULL) {
        return NGX_ERROR;
    }

    len = ngx_http_darkroom_sign_url(&link, key->key.data, key->key.len,
                                     buf, len, &rc);
    if (len == 0) {
        return NGX_ERROR;
    }

    v->data = buf;
    v->len = len;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;

    return NGX_OK;
}


/* the signer's disposition, and its filename and g where not empty */

static ngx_int_t
ngx_http_darkroom_media_sign_params(ngx_http_request_t *r,
    ngx_http_darkroom_media_signer_t *signer,
    ngx_http_darkroom_sign_link_t *link)
{
    ngx_str_t  filename, gallery;

    if (signer->disposition.len) {
        link->param[NGX_HTTP_DARKROOM_P_DISPOSITION].data =
                                                     signer->disposition.data;
        link->param[NGX_HTTP_DARKROOM_P_DISPOSITION].len =
                                                     signer->disposition.len;
    }

    if (signer->filename) {
        if (ngx_http_complex_value(r, signer->filename, &filename) != NGX_OK) {
            return NGX_ERROR;
        }

        if (filename.len) {
            link->param[NGX_HTTP_DARKROOM_P_FILENAME].data = filename.data;
            link->param[NGX_HTTP_DARKROOM_P_FILENAME].len = filename.len;
        }
    }

    if (signer->gallery) {
        if (ngx_http_complex_value(r, signer->gallery, &gallery) != NGX_OK) {
            return NGX_ERROR;
        }

        if (gallery.len) {
            link->param[NGX_HTTP_DARKROOM_P_G].data = gallery.data;
            link->param[NGX_HTTP_DARKROOM_P_G].len = gallery.len;
        }
    }

    return NGX_OK;
}


/*
 * bind_ip=: the link bound to the client's address or prefix, written to
 * ip (NGX_HTTP_DARKROOM_SIGN_IP_LEN bytes); NGX_DECLINED, logged, for a
 * client without an IP address.
 */

static ngx_int_t
ngx_http_darkroom_media_sign_bind(ngx_http_request_t *r,
    ngx_http_darkroom_media_signer_t *signer,
    ngx_http_darkroom_sign_link_t *link, u_char *ip)
{
    int          family;
    u_char      *addr;
    size_t       len;
    ngx_uint_t   bits;

    if (!signer->bind.bind) {
        return NGX_OK;
    }

    if (ngx_http_darkroom_media_client(r, &family, &addr) != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "darkroom media: \"$%V\" cannot bind a link to a "
                      "non-IP client", &signer->name);
        return NGX_DECLINED;
    }

    bits = (family == AF_INET) ? signer->bind.v4 : signer->bind.v6;

    len = ngx_http_darkroom_sign_net_format(family, addr, bits, ip,
                                            NGX_HTTP_DARKROOM_SIGN_IP_LEN);
    if (len == 0) {
        return NGX_ERROR;
    }

    link->param[NGX_HTTP_DARKROOM_P_IP].data = ip;
    link->param[NGX_HTTP_DARKROOM_P_IP].len = len;

    return NGX_OK;
}


static ngx_int_t
ngx_http_darkroom_media_ctx_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    const char                     *code;
    ngx_str_t                      *s;
    ngx_http_darkroom_media_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_darkroom_media_module);

    if (ctx == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    if (data == offsetof(ngx_http_darkroom_media_ctx_t, error)) {
        code = ctx->error;

        if (code == NULL) {
            v->not_found = 1;
            return NGX_OK;
        }

        v->data = (u_char *) code;
        v->len = ngx_strlen(code);

    } else {
        s = (ngx_str_t *) ((char *) ctx + data);

        if (s->len == 0) {
            v->not_found = 1;
            return NGX_OK;
        }

        v->data = s->data;
        v->len = s->len;
    }

    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;

    return NGX_OK;
}


/* "off", "on", "<v4 bits>" or "<v4 bits>,<v6 bits>" */

static ngx_int_t
ngx_http_darkroom_media_parse_bind(ngx_str_t *value,
    ngx_http_darkroom_media_bind_t *bind)
{
    u_char     *comma;
    ngx_int_t   v4, v6;

    if (value->len == 3 && ngx_strncmp(value->data, "off", 3) == 0) {
        bind->bind = 0;
        bind->v4 = 32;
        bind->v6 = 128;
        return NGX_OK;
    }

    if (value->len == 2 && ngx_strncmp(value->data, "on", 2) == 0) {
        bind->bind = 1;
        bind->v4 = 32;
        bind->v6 = 128;
        return NGX_OK;
    }

    comma = ngx_strlchr(value->data, value->data + value->len, ',');

    if (comma) {
        v4 = ngx_atoi(value->data, comma - value->data);
        v6 = ngx_atoi(comma + 1, value->data + value->len - comma - 1);

    } else {
        v4 = ngx_atoi(value->data, value->len);
        v6 = 64;
    }

    if (v4 < 1 || v4 > 32 || v6 < 1 || v6 > 128) {
        return NGX_ERROR;
    }

    bind->bind = 1;
    bind->v4 = v4;
    bind->v6 = v6;

    return NGX_OK;
}


static char *
ngx_http_darkroom_media_keys(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_str_t                     *value;
    ngx_http_darkroom_loc_conf_t  *dlcf;

    /* kept in the core's configuration: galleries and labs sign with it */

    dlcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_darkroom_module);

    if (dlcf->link_keys) {
        return "is duplicate";
    }

    value = cf->args->elts;

    dlcf->link_keys = ngx_http_darkroom_keyring_read(cf, &value[1]);
    if (dlcf->link_keys == NULL) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_darkroom_media_s3(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_darkroom_media_loc_conf_t *mlcf = conf;

    if (mlcf->s3 != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    return ngx_http_darkroom_media_s3_parse(cf, &mlcf->s3);
}


static char *
ngx_http_darkroom_media_status(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_darkroom_media_loc_conf_t *mlcf = conf;

    ngx_int_t   n;
    ngx_str_t  *value;

    if (mlcf->status != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    n = ngx_atoi(value[1].data, value[1].len);

    if (n < 400 || n > 599) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "status \"%V\" is not between 400 and 599",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    mlcf->status = n;

    return NGX_CONF_OK;
}


static char *
ngx_http_darkroom_media_bind_ip(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_darkroom_media_loc_conf_t *mlcf = conf;

    ngx_str_t  *value;

    if (mlcf->bind.bind != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_http_darkroom_media_parse_bind(&value[1], &mlcf->bind)
        != NGX_OK)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\": use off, on, <ipv4 bits> "
                           "or <ipv4 bits>,<ipv6 bits>", &value[1]);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_darkroom_media_max_ttl(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_darkroom_media_loc_conf_t *mlcf = conf;

    ngx_str_t  *value;

    if (mlcf->max_ttl != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    mlcf->max_ttl = ngx_parse_time(&value[1], 1);

    if (mlcf->max_ttl == (time_t) NGX_ERROR || mlcf->max_ttl == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid \"darkroom_media_max_ttl\" \"%V\": "
                           "a time of at least one second, e.g. 30d",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * darkroom_media_sign $var <path> [ttl=<time>] [disposition=<type>]
 *                     [filename=<value>] [g=<value>] [bind_ip=<bind>];
 */

static char *
ngx_http_darkroom_media_sign(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_darkroom_media_main_conf_t *mmcf = conf;

    ngx_str_t                          *value;
    ngx_uint_t                          i;
    ngx_http_variable_t                *var;
    ngx_http_darkroom_media_signer_t   *signer, **sp;
    ngx_http_compile_complex_value_t    ccv;

    value = cf->args->elts;

    if (value[1].len < 2 || value[1].data[0] != '$') {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid variable name \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    signer = ngx_pcalloc(cf->pool, sizeof(ngx_http_darkroom_media_signer_t));
    if (signer == NULL) {
        return NGX_CONF_ERROR;
    }

    signer->name.data = value[1].data + 1;
    signer->name.len = value[1].len - 1;
    signer->ttl = 3600;
    ngx_str_set(&signer->ttl_text, "1h");
    signer->file = cf->conf_file->file.name;
    signer->line = cf->conf_file->line;
    signer->bind.bind = 0;

    ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

    ccv.cf = cf;
    ccv.value = &value[2];
    ccv.complex_value = &signer->path;

    if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    for (i = 3; i < cf->args->nelts; i++) {

        switch (ngx_http_darkroom_media_sign_param(cf, signer, &value[i])) {

        case NGX_OK:
            continue;

        case NGX_DECLINED:
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\"", &value[i]);
            return NGX_CONF_ERROR;

        default:
            return NGX_CONF_ERROR;
        }
    }

    var = ngx_http_add_variable(cf, &signer->name, 0);
    if (var == NULL) {
        return NGX_CONF_ERROR;
    }

    if (var->get_handler) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "variable \"%V\" is already defined", &value[1]);
        return NGX_CONF_ERROR;
    }

    var->get_handler = ngx_http_darkroom_media_sign_variable;
    var->data = (uintptr_t) signer;

    /* checked against darkroom_media_max_ttl once every location is known */

    sp = ngx_array_push(&mmcf->signers);
    if (sp == NULL) {
        return NGX_CONF_ERROR;
    }

    *sp = signer;

    return NGX_CONF_OK;
}


/* one name=value of darkroom_media_sign: NGX_DECLINED if it is invalid */

static ngx_int_t
ngx_http_darkroom_media_sign_param(ngx_conf_t *cf,
    ngx_http_darkroom_media_signer_t *signer, ngx_str_t *value)
{
    ngx_str_t                          s;
    ngx_http_compile_complex_value_t   ccv;

    if (ngx_strncmp(value->data, "ttl=", 4) == 0) {
        s.data = value->data + 4;
        s.len = value->len - 4;

        signer->ttl = ngx_parse_time(&s, 1);
        if (signer->ttl == (time_t) NGX_ERROR || signer->ttl == 0) {
            return NGX_DECLINED;
        }

        signer->ttl_text = s;
        return NGX_OK;
    }

    if (ngx_strncmp(value->data, "disposition=", 12) == 0) {
        s.data = value->data + 12;
        s.len = value->len - 12;

        if (ngx_http_darkroom_sign_value(NGX_HTTP_DARKROOM_P_DISPOSITION,
                                         s.data, s.len)
            != NGX_HTTP_DARKROOM_SIGN_OK)
        {
            return NGX_DECLINED;
        }

        signer->disposition = s;
        return NGX_OK;
    }

    if (ngx_strncmp(value->data, "bind_ip=", 8) == 0) {
        s.data = value->data + 8;
        s.len = value->len - 8;

        return ngx_http_darkroom_media_parse_bind(&s, &signer->bind)
               == NGX_OK ? NGX_OK : NGX_DECLINED;
    }

    if (ngx_strncmp(value->data, "filename=", 9) != 0
        && ngx_strncmp(value->data, "g=", 2) != 0)
    {
        return NGX_DECLINED;
    }

    s.data = (u_char *) ngx_strchr(value->data, '=') + 1;
    s.len = value->data + value->len - s.data;

    ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

    ccv.cf = cf;
    ccv.value = &s;
    ccv.complex_value = ngx_palloc(cf->pool, sizeof(ngx_http_complex_value_t));
    if (ccv.complex_value == NULL) {
        return NGX_ERROR;
    }

    if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
        return NGX_ERROR;
    }

    if (value->data[0] == 'g') {
        signer->gallery = ccv.complex_value;

    } else {
        signer->filename = ccv.complex_value;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_darkroom_media_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_darkroom_media_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


static void *
ngx_http_darkroom_media_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_darkroom_media_main_conf_t  *mmcf;

    mmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_darkroom_media_main_conf_t));
    if (mmcf == NULL) {
        return NULL;
    }

    if (ngx_array_init(&mmcf->signers, cf->pool, 2,
                       sizeof(ngx_http_darkroom_media_signer_t *))
        != NGX_OK)
    {
        return NULL;
    }

    return mmcf;
}


static void *
ngx_http_darkroom_media_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_darkroom_media_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_darkroom_media_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    conf->enable = NGX_CONF_UNSET;
    conf->status = NGX_CONF_UNSET_UINT;
    conf->bind.bind = NGX_CONF_UNSET;
    conf->s3 = NGX_CONF_UNSET_PTR;
    conf->max_ttl = NGX_CONF_UNSET;

    return conf;
}


static char *
ngx_http_darkroom_media_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child)
{
    ngx_http_darkroom_media_loc_conf_t *prev = parent;
    ngx_http_darkroom_media_loc_conf_t *conf = child;

    ngx_http_darkroom_loc_conf_t         *dlcf;
    ngx_http_darkroom_media_main_conf_t  *mmcf;

    ngx_conf_merge_value(conf->enable, prev->enable, 0);
    ngx_conf_merge_str_value(conf->download_gallery_root,
                             prev->download_gallery_root, "");
    ngx_conf_merge_sec_value(conf->max_ttl, prev->max_ttl,
                             NGX_HTTP_DARKROOM_MEDIA_MAX_TTL);

    /* the longest lifetime any location here accepts, for check_ttls() */

    if (conf->enable) {
        mmcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_http_darkroom_media_module);
        if (conf->max_ttl > mmcf->max_ttl) {
            mmcf->max_ttl = conf->max_ttl;
        }
    }
    ngx_conf_merge_uint_value(conf->status, prev->status,
                              NGX_HTTP_FORBIDDEN);

    if (conf->bind.bind == NGX_CONF_UNSET) {
        if (prev->bind.bind == NGX_CONF_UNSET) {
            conf->bind.bind = 0;
            conf->bind.v4 = 32;
            conf->bind.v6 = 128;

        } else {
            conf->bind = prev->bind;
        }
    }

    dlcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_darkroom_module);

    if (conf->enable && dlcf->link_keys == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"darkroom_media on\" needs "
                           "\"darkroom_media_keys\"");
        return NGX_CONF_ERROR;
    }

    ngx_conf_merge_ptr_value(conf->s3, prev->s3, NULL);

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_darkroom_media_init(ngx_conf_t *cf)
{
    ngx_http_handler_pt                  *h;
    ngx_http_core_main_conf_t            *cmcf;
    ngx_http_darkroom_main_conf_t        *dmcf;
    ngx_http_darkroom_media_main_conf_t  *mmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_ACCESS_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_darkroom_media_handler;

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_LOG_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_darkroom_media_log_handler;

    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_darkroom_media_header_filter;

    mmcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_http_darkroom_media_module);
    dmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_darkroom_module);

    if (ngx_http_darkroom_require(cf, &mmcf->use_download,
                                  "darkroom_download", dmcf->download_keys,
                                  "darkroom_download_keys")
        != NGX_CONF_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_darkroom_media_check_ttls(cf);
}


/*
 * Links signed here for longer than any location here accepts would all
 * be refused: say so at start rather than when a lab or a client follows
 * one.  Only when this configuration serves signed media at all: links
 * may be made here for another server.
 */

static ngx_int_t
ngx_http_darkroom_media_check_ttls(ngx_conf_t *cf)
{
    ngx_uint_t                            i;
    ngx_http_darkroom_link_ttl_t         *lt;
    ngx_http_darkroom_main_conf_t        *dmcf;
    ngx_http_darkroom_media_signer_t    **signer;
    ngx_http_darkroom_media_main_conf_t  *mmcf;

    mmcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_http_darkroom_media_module);

    if (mmcf->max_ttl == 0) {
        return NGX_OK;
    }

    signer = mmcf->signers.elts;

    for (i = 0; i < mmcf->signers.nelts; i++) {
        if (signer[i]->ttl > mmcf->max_ttl) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "\"darkroom_media_sign\" ttl=%V is longer than "
                          "every \"darkroom_media_max_ttl\" (%T seconds): "
                          "its links would be refused in %V:%ui",
                          &signer[i]->ttl_text, mmcf->max_ttl,
                          &signer[i]->file, signer[i]->line);
            return NGX_ERROR;
        }
    }

    dmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_darkroom_module);

    lt = dmcf->link_ttls.elts;

    for (i = 0; i < dmcf->link_ttls.nelts; i++) {
        if (lt[i].ttl <= mmcf->max_ttl) {
            continue;
        }

        if (lt[i].file) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "\"%s\" (%T seconds) is longer than every "
                          "\"darkroom_media_max_ttl\" (%T seconds): %s, "
                          "in %s:%ui", lt[i].directive, lt[i].ttl,
                          mmcf->max_ttl, lt[i].consequence, lt[i].file,
                          lt[i].line);
        } else {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "\"%s\" (%T seconds) is longer than every "
                          "\"darkroom_media_max_ttl\" (%T seconds): %s",
                          lt[i].directive, lt[i].ttl, mmcf->max_ttl,
                          lt[i].consequence);
        }

        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * A download of a gallery (a signed attachment link carrying g) that was
 * served goes to the gallery module's ring in shared memory, written to
 * the database in batches: never a write per request.
 */

static ngx_int_t
ngx_http_darkroom_media_log_handler(ngx_http_request_t *r)
{
    ngx_uint_t                      status;
    ngx_http_darkroom_media_ctx_t  *ctx;

    if (r != r->main) {
        return NGX_OK;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_darkroom_media_module);

    if (ctx == NULL || ctx->error || !ctx->attachment
        || ctx->gallery.len == 0)
    {
        return NGX_OK;
    }

    status = r->headers_out.status;

    if (status != NGX_HTTP_OK && status != NGX_HTTP_PARTIAL_CONTENT
        && status != NGX_HTTP_MOVED_TEMPORARILY)
    {
        return NGX_OK;
    }

    ngx_http_darkroom_link_log(r, &ctx->gallery, &r->uri, status,
                               r->connection->sent
                               - (off_t) r->header_size);

    return NGX_OK;
}
