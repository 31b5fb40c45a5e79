
/*
 * darkroom: originals kept in an S3-compatible bucket (AWS S3, Cloudflare
 * R2, MinIO).  Once darkroom_media has verified a link, the client is sent
 * with 302 to a presigned URL of the object, computed here with SigV4 and
 * no network call: the bucket stays private, nginx serves no bytes, and
 * the presigned URL lives only "expires" long.  A signed download name
 * travels as response-content-disposition, which S3 echoes back.
 */


#include "ngx_http_darkroom_media_s3.h"
#include "ngx_http_darkroom_sigv4.h"


static char *ngx_http_darkroom_media_s3_credentials(ngx_conf_t *cf,
    ngx_http_darkroom_media_s3_t *s3, ngx_str_t *file);


/*
 * darkroom_media_s3 endpoint=https://s3.eu-west-1.amazonaws.com
 *     bucket=photos region=eu-west-1 credentials=/etc/darkroom/s3
 *     [prefix=originals/] [expires=5m] [style=path|virtual];
 */

char *
ngx_http_darkroom_media_s3_parse(ngx_conf_t *cf,
    ngx_http_darkroom_media_s3_t **out)
{
    u_char                        *p;
    ngx_str_t                     *value, v, credentials;
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

        if (ngx_strncmp(value[i].data, "endpoint=", 9) == 0) {
            v.data = value[i].data + 9;
            v.len = value[i].len - 9;

            if (v.len > 8 && ngx_strncmp(v.data, "https://", 8) == 0) {
                ngx_str_set(&s3->scheme, "https");
                s3->host.data = v.data + 8;
                s3->host.len = v.len - 8;

            } else if (v.len > 7 && ngx_strncmp(v.data, "http://", 7) == 0) {
                ngx_str_set(&s3->scheme, "http");
                s3->host.data = v.data + 7;
                s3->host.len = v.len - 7;

            } else {
                goto invalid;
            }

            while (s3->host.len && s3->host.data[s3->host.len - 1] == '/') {
                s3->host.len--;
            }

            if (s3->host.len == 0
                || ngx_strlchr(s3->host.data, s3->host.data + s3->host.len,
                               '/'))
            {
                goto invalid;
            }

            s3->host.data[s3->host.len] = '\0';
            continue;
        }

        if (ngx_strncmp(value[i].data, "bucket=", 7) == 0) {
            s3->bucket.data = value[i].data + 7;
            s3->bucket.len = value[i].len - 7;

            for (p = s3->bucket.data; p < s3->bucket.data + s3->bucket.len;
                 p++)
            {
                if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')
                      || *p == '-' || *p == '.'))
                {
                    goto invalid;
                }
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "region=", 7) == 0) {
            s3->region.data = value[i].data + 7;
            s3->region.len = value[i].len - 7;
            continue;
        }

        if (ngx_strncmp(value[i].data, "prefix=", 7) == 0) {
            s3->prefix.data = value[i].data + 7;
            s3->prefix.len = value[i].len - 7;

            if (s3->prefix.len && s3->prefix.data[0] == '/') {
                goto invalid;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "credentials=", 12) == 0) {
            credentials.data = value[i].data + 12;
            credentials.len = value[i].len - 12;
            continue;
        }

        if (ngx_strncmp(value[i].data, "expires=", 8) == 0) {
            v.data = value[i].data + 8;
            v.len = value[i].len - 8;

            s3->expires = ngx_parse_time(&v, 1);
            if (s3->expires == (time_t) NGX_ERROR || s3->expires < 1
                || s3->expires > NGX_HTTP_DARKROOM_SIGV4_EXPIRES_MAX)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid expires \"%V\", it must be "
                                   "between 1s and 7d", &v);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strcmp(value[i].data, "style=path") == 0) {
            s3->virtual_host = 0;
            continue;
        }

        if (ngx_strcmp(value[i].data, "style=virtual") == 0) {
            s3->virtual_host = 1;
            continue;
        }

    invalid:

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\"", &value[i]);
        return NGX_CONF_ERROR;
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


/* the first line of the file: ACCESS_KEY_ID:SECRET_ACCESS_KEY */

static char *
ngx_http_darkroom_media_s3_credentials(ngx_conf_t *cf,
    ngx_http_darkroom_media_s3_t *s3, ngx_str_t *file)
{
    u_char           *buf, *p, *end, *colon;
    ssize_t           n;
    ngx_fd_t          fd;
    ngx_file_t        f;
    ngx_file_info_t   fi;

    if (ngx_conf_full_name(cf->cycle, file, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    fd = ngx_open_file(file->data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_open_file_n " \"%s\" failed", file->data);
        return NGX_CONF_ERROR;
    }

    if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR || ngx_file_size(&fi) > 4096) {
        ngx_close_file(fd);
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "credentials file \"%s\" is unreadable or too "
                           "large", file->data);
        return NGX_CONF_ERROR;
    }

    buf = ngx_pnalloc(cf->pool, ngx_file_size(&fi) + 1);
    if (buf == NULL) {
        ngx_close_file(fd);
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&f, sizeof(ngx_file_t));
    f.fd = fd;
    f.name = *file;
    f.log = cf->log;

    n = ngx_read_file(&f, buf, ngx_file_size(&fi), 0);
    ngx_close_file(fd);

    if (n != (ssize_t) ngx_file_size(&fi)) {
        return NGX_CONF_ERROR;
    }

    end = buf + n;
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
 * The object key is the request's path inside the location (after a
 * prefix location's name), behind the configured key prefix.
 */

ngx_int_t
ngx_http_darkroom_media_s3_redirect(ngx_http_request_t *r,
    ngx_http_darkroom_media_s3_t *s3, ngx_str_t *disposition)
{
    u_char                           *p, *host, *path, *url;
    size_t                            len, klen;
    ngx_str_t                         key;
    ngx_table_elt_t                  *h;
    ngx_http_core_loc_conf_t         *clcf;
    ngx_http_darkroom_sigv4_t         req;
    ngx_http_darkroom_sigv4_param_t   param;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    key = r->uri;

    if (!clcf->exact_match && !clcf->regex
        && key.len > clcf->name.len
        && ngx_strncmp(key.data, clcf->name.data, clcf->name.len) == 0)
    {
        key.data += clcf->name.len;
        key.len -= clcf->name.len;
    }

    while (key.len && key.data[0] == '/') {
        key.data++;
        key.len--;
    }

    if (key.len == 0) {
        return NGX_HTTP_NOT_FOUND;
    }

    klen = s3->prefix.len + key.len;

    host = ngx_pnalloc(r->pool, s3->bucket.len + 1 + s3->host.len + 1);
    path = ngx_pnalloc(r->pool, 2 + s3->bucket.len + klen + 1);
    if (host == NULL || path == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = path;
    *p++ = '/';

    if (s3->virtual_host) {
        p = ngx_cpymem(host, s3->bucket.data, s3->bucket.len);
        *p++ = '.';
        p = ngx_cpymem(p, s3->host.data, s3->host.len);
        *p = '\0';
        p = path + 1;

    } else {
        ngx_memcpy(host, s3->host.data, s3->host.len + 1);
        p = ngx_cpymem(p, s3->bucket.data, s3->bucket.len);
        *p++ = '/';
    }

    /* no prefix= leaves prefix.data NULL: memcpy() from NULL is undefined */

    if (s3->prefix.len) {
        p = ngx_cpymem(p, s3->prefix.data, s3->prefix.len);
    }

    p = ngx_cpymem(p, key.data, key.len);
    *p = '\0';

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
        param.value = ngx_pnalloc(r->pool, disposition->len + 1);
        if (param.value == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_memcpy((u_char *) param.value, disposition->data,
                   disposition->len);
        ((u_char *) param.value)[disposition->len] = '\0';

        req.params = &param;
        req.nparams = 1;
    }

    len = ngx_http_darkroom_sigv4_presign(&req, NULL, 0, NULL);
    if (len == 0) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    url = ngx_pnalloc(r->pool, len + 1);
    if (url == NULL
        || ngx_http_darkroom_sigv4_presign(&req, (char *) url, len + 1, NULL)
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

    return NGX_HTTP_MOVED_TEMPORARILY;
}
