
/*
 * darkroom: originals kept in an S3-compatible bucket (AWS S3, Cloudflare
 * R2, MinIO).  Once darkroom_media has verified a link, the client is sent
 * with 302 to a presigned URL of the object, computed here with SigV4 and
 * no network call: the bucket stays private, nginx serves no bytes, and
 * the presigned URL lives only "expires" long.  A signed download name
 * travels as response-content-disposition, which S3 echoes back.
 */


#include "ngx_http_darkroom.h"
#include "ngx_http_darkroom_media_s3.h"
#include "ngx_http_darkroom_sigv4.h"


/* the credentials file: one line, ACCESS_KEY_ID:SECRET_ACCESS_KEY */
#define NGX_HTTP_DARKROOM_MEDIA_S3_CRED_MAX  4096


static ngx_int_t ngx_http_darkroom_media_s3_param(ngx_conf_t *cf,
    ngx_http_darkroom_media_s3_t *s3, ngx_str_t *value,
    ngx_str_t *credentials);
static ngx_int_t ngx_http_darkroom_media_s3_endpoint(
    ngx_http_darkroom_media_s3_t *s3, ngx_str_t *v);
static ngx_int_t ngx_http_darkroom_media_s3_bucket(
    ngx_http_darkroom_media_s3_t *s3, ngx_str_t *v);
static char *ngx_http_darkroom_media_s3_credentials(ngx_conf_t *cf,
    ngx_http_darkroom_media_s3_t *s3, ngx_str_t *file);
static ngx_int_t ngx_http_darkroom_media_s3_key(ngx_http_request_t *r,
    ngx_str_t *key);
static ngx_int_t ngx_http_darkroom_media_s3_object(ngx_http_request_t *r,
    ngx_http_darkroom_media_s3_t *s3, ngx_str_t *key, u_char **host,
    u_char **path);
static ngx_int_t ngx_http_darkroom_media_s3_location(ngx_http_request_t *r,
    ngx_http_darkroom_sigv4_t *req);


/*
 * darkroom_media_s3 endpoint=https://s3.eu-west-1.amazonaws.com
 *     bucket=photos region=eu-west-1 credentials=/etc/darkroom/s3
 *     [prefix=originals/] [expires=5m] [style=path|virtual];
 */

char *
ngx_http_darkroom_media_s3_parse(ngx_conf_t *cf,
    ngx_http_darkroom_media_s3_t **out)
{
    ngx_str_t                     *value, credentials;
    ngx_uint_t                     i;
    ngx_http_darkroom_media_s3_t  *s3;

    s3 = ngx_pcalloc(cf->pool, sizeof(ngx_http_darkroom_media_s3_t));
    if (s3 == NULL) {
        return NGX_CONF_ERROR;
    }

    s3->expires = 300;
    ngx_str_null(&credentials);

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        switch (ngx_http_darkroom_media_s3_param(cf, s3, &value[i],
                                                 &credentials))
        {
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

    if (s3->host.len == 0 || s3->bucket.len == 0 || s3->region.len == 0
        || credentials.len == 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"darkroom_media_s3\" needs endpoint=, bucket=, "
                           "region= and credentials=");
        return NGX_CONF_ERROR;
    }

    /* arguments are NUL-terminated; the values are used as C strings */

    if (ngx_http_darkroom_media_s3_credentials(cf, s3, &credentials)
        != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    *out = s3;

    return NGX_CONF_OK;
}


/*
 * One name=value of darkroom_media_s3: NGX_DECLINED if it is not valid,
 * NGX_ERROR once it has said why.
 */

static ngx_int_t
ngx_http_darkroom_media_s3_param(ngx_conf_t *cf,
    ngx_http_darkroom_media_s3_t *s3, ngx_str_t *value,
    ngx_str_t *credentials)
{
    ngx_str_t  v;

    if (ngx_strncmp(value->data, "endpoint=", 9) == 0) {
        v.data = value->data + 9;
        v.len = value->len - 9;

        return ngx_http_darkroom_media_s3_endpoint(s3, &v);
    }

    if (ngx_strncmp(value->data, "bucket=", 7) == 0) {
        v.data = value->data + 7;
        v.len = value->len - 7;

        return ngx_http_darkroom_media_s3_bucket(s3, &v);
    }

    if (ngx_strncmp(value->data, "region=", 7) == 0) {
        s3->region.data = value->data + 7;
        s3->region.len = value->len - 7;
        return NGX_OK;
    }

    if (ngx_strncmp(value->data, "prefix=", 7) == 0) {
        s3->prefix.data = value->data + 7;
        s3->prefix.len = value->len - 7;

        return (s3->prefix.len && s3->prefix.data[0] == '/') ? NGX_DECLINED
                                                             : NGX_OK;
    }

    if (ngx_strncmp(value->data, "credentials=", 12) == 0) {
        credentials->data = value->data + 12;
        credentials->len = value->len - 12;
        return NGX_OK;
    }

    if (ngx_strncmp(value->data, "expires=", 8) == 0) {
        v.data = value->data + 8;
        v.len = value->len - 8;

        s3->expires = ngx_parse_time(&v, 1);
        if (s3->expires == (time_t) NGX_ERROR || s3->expires < 1
            || s3->expires > NGX_HTTP_DARKROOM_SIGV4_EXPIRES_MAX)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid expires \"%V\", it must be "
                               "between 1s and 7d", &v);
            return NGX_ERROR;
        }

        return NGX_OK;
    }

    if (ngx_strcmp(value->data, "style=path") == 0) {
        s3->virtual_host = 0;
        return NGX_OK;
    }

    if (ngx_strcmp(value->data, "style=virtual") == 0) {
        s3->virtual_host = 1;
        return NGX_OK;
    }

    return NGX_DECLINED;
}


/* endpoint=http[s]://host[:port][/]: no path */

static ngx_int_t
ngx_http_darkroom_media_s3_endpoint(ngx_http_darkroom_media_s3_t *s3,
    ngx_str_t *v)
{
    if (v->len > 8 && ngx_strncmp(v->data, "https://", 8) == 0) {
        ngx_str_set(&s3->scheme, "https");
        s3->host.data = v->data + 8;
        s3->host.len = v->len - 8;

    } else if (v->len > 7 && ngx_strncmp(v->data, "http://", 7) == 0) {
        ngx_str_set(&s3->scheme, "http");
        s3->host.data = v->data + 7;
        s3->host.len = v->len - 7;

    } else {
        return NGX_DECLINED;
    }

    while (s3->host.len && s3->host.data[s3->host.len - 1] == '/') {
        s3->host.len--;
    }

    if (s3->host.len == 0
        || ngx_strlchr(s3->host.data, s3->host.data + s3->host.len, '/'))
    {
        return NGX_DECLINED;
    }

    s3->host.data[s3->host.len] = '\0';

    return NGX_OK;
}


/* a bucket name: a-z 0-9 - . */

static ngx_int_t
ngx_http_darkroom_media_s3_bucket(ngx_http_darkroom_media_s3_t *s3,
    ngx_str_t *v)
{
    u_char  *p;

    for (p = v->data; p < v->data + v->len; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')
              || *p == '-' || *p == '.'))
        {
            return NGX_DECLINED;
        }
    }

    s3->bucket = *v;

    return NGX_OK;
}


/* the first line of the file: ACCESS_KEY_ID:SECRET_ACCESS_KEY */

static char *
ngx_http_darkroom_media_s3_credentials(ngx_conf_t *cf,
    ngx_http_darkroom_media_s3_t *s3, ngx_str_t *file)
{
    u_char     *buf, *p, *end, *colon;
    ngx_str_t   text;

    if (ngx_conf_full_name(cf->cycle, file, 1) != NGX_OK
        || ngx_http_darkroom_file_read(cf, cf->pool, file,
                                       NGX_HTTP_DARKROOM_MEDIA_S3_CRED_MAX,
                                       "credentials", &text)
           != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    buf = text.data;
    end = buf + text.len;

    p = ngx_strlchr(buf, end, '\n');
    if (p) {
        end = p;
    }

    while (end > buf && (end[-1] == '\r' || end[-1] == ' ')) {
        end--;
    }

    *end = '\0';

    colon = ngx_strlchr(buf, end, ':');

    if (colon == NULL || colon == buf || colon + 1 == end) {
        /* never echo the line: it holds the secret */
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "credentials file \"%s\" must hold "
                           "ACCESS_KEY_ID:SECRET_ACCESS_KEY", file->data);
        return NGX_CONF_ERROR;
    }

    *colon = '\0';

    s3->access_key.data = buf;
    s3->access_key.len = colon - buf;
    s3->secret_key.data = colon + 1;
    s3->secret_key.len = end - colon - 1;

    return NGX_CONF_OK;
}


/*
 * The answer to a verified request: 302 to the object, presigned.  A signed
 * download name travels as response-content-disposition.
 */

ngx_int_t
ngx_http_darkroom_media_s3_redirect(ngx_http_request_t *r,
    ngx_http_darkroom_media_s3_t *s3, ngx_str_t *disposition)
{
    u_char                           *host, *path;
    ngx_int_t                         rc;
    ngx_str_t                         key;
    ngx_http_darkroom_sigv4_t         req;
    ngx_http_darkroom_sigv4_param_t   param;

    if (ngx_http_darkroom_media_s3_key(r, &key) != NGX_OK) {
        return NGX_HTTP_NOT_FOUND;
    }

    rc = ngx_http_darkroom_media_s3_object(r, s3, &key, &host, &path);
    if (rc != NGX_OK) {
        return rc;
    }

    ngx_memzero(&req, sizeof(ngx_http_darkroom_sigv4_t));
    req.scheme = (const char *) s3->scheme.data;
    req.method = "GET";
    req.host = (const char *) host;
    req.path = (const char *) path;
    req.region = (const char *) s3->region.data;
    req.service = "s3";
    req.access_key = (const char *) s3->access_key.data;
    req.secret_key = (const char *) s3->secret_key.data;
    req.now = ngx_time();
    req.expires = (unsigned) s3->expires;

    if (disposition && disposition->len) {
        param.name = "response-content-disposition";
        param.value = (const char *) ngx_http_darkroom_cstr(r->pool,
                                                         disposition->data,
                                                         disposition->len);
        if (param.value == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        req.params = &param;
        req.nparams = 1;
    }

    return ngx_http_darkroom_media_s3_location(r, &req);
}


/*
 * The object key is the request's path inside the location (after a
 * prefix location's name); NGX_DECLINED if that is empty.
 */

static ngx_int_t
ngx_http_darkroom_media_s3_key(ngx_http_request_t *r, ngx_str_t *key)
{
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    *key = r->uri;

    if (!clcf->exact_match && !clcf->regex
        && key->len > clcf->name.len
        && ngx_strncmp(key->data, clcf->name.data, clcf->name.len) == 0)
    {
        key->data += clcf->name.len;
        key->len -= clcf->name.len;
    }

    while (key->len && key->data[0] == '/') {
        key->data++;
        key->len--;
    }

    return key->len ? NGX_OK : NGX_DECLINED;
}


/*
 * The host and path of the object, behind the configured key prefix, as
 * C strings: bucket.host and /prefix+key (style=virtual), or host and
 * /bucket/prefix+key (style=path).
 */

static ngx_int_t
ngx_http_darkroom_media_s3_object(ngx_http_request_t *r,
    ngx_http_darkroom_media_s3_t *s3, ngx_str_t *key, u_char **host,
    u_char **path)
{
    u_char  *p, *h;
    size_t   klen;

    klen = s3->prefix.len + key->len;

    h = ngx_pnalloc(r->pool, s3->bucket.len + 1 + s3->host.len + 1);
    *path = ngx_pnalloc(r->pool, 2 + s3->bucket.len + klen + 1);
    if (h == NULL || *path == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = *path;
    *p++ = '/';

    if (s3->virtual_host) {
        p = ngx_cpymem(h, s3->bucket.data, s3->bucket.len);
        *p++ = '.';
        p = ngx_cpymem(p, s3->host.data, s3->host.len);
        *p = '\0';
        p = *path + 1;

    } else {
        ngx_memcpy(h, s3->host.data, s3->host.len + 1);
        p = ngx_cpymem(p, s3->bucket.data, s3->bucket.len);
        *p++ = '/';
    }

    /* no prefix= leaves prefix.data NULL: memcpy() from NULL is undefined */

    if (s3->prefix.len) {
        p = ngx_cpymem(p, s3->prefix.data, s3->prefix.len);
    }

    p = ngx_cpymem(p, key->data, key->len);
    *p = '\0';

    *host = h;

    return NGX_OK;
}


/* the presigned URL as the Location of a 302 */

static ngx_int_t
ngx_http_darkroom_media_s3_location(ngx_http_request_t *r,
    ngx_http_darkroom_sigv4_t *req)
{
    u_char           *url;
    size_t            len;
    ngx_table_elt_t  *h;

    len = ngx_http_darkroom_sigv4_presign(req, NULL, 0, NULL);
    if (len == 0) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    url = ngx_pnalloc(r->pool, len + 1);
    if (url == NULL
        || ngx_http_darkroom_sigv4_presign(req, (char *) url, len + 1, NULL)
           != len)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Location");
    h->value.data = url;
    h->value.len = len;

    ngx_http_clear_location(r);
    r->headers_out.location = h;

    /* the query is a credential for as long as it lives: not logged */

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "darkroom media: S3 redirect to %s%s for %uis",
                   req->host, req->path, (ngx_uint_t) req->expires);

    return NGX_HTTP_MOVED_TEMPORARILY;
}
