
/*
 * darkroom: small helpers for handlers on the event loop, shared by every
 * feature: a location's path and its segments,
 * query arguments, request headers.
 */


#include "ngx_http_darkroom.h"

#include <openssl/rand.h>
#include <openssl/sha.h>


static ngx_int_t ngx_http_darkroom_gallery_sale_none(ngx_http_request_t *r,
    const char *gallery, const char *currency, ngx_str_t *cancel_url,
    ngx_uint_t quote);


static ngx_int_t ngx_http_darkroom_order_checkout_none(
    ngx_http_darkroom_task_t *t, const char *order, const char *token,
    char **url);


ngx_http_darkroom_gallery_sale_pt  ngx_http_darkroom_gallery_sale =
    ngx_http_darkroom_gallery_sale_none;
ngx_http_darkroom_order_checkout_pt  ngx_http_darkroom_order_checkout =
    ngx_http_darkroom_order_checkout_none;


/* a gallery's quote or checkout where no shop sells (no darkroom_checkout) */

static ngx_int_t
ngx_http_darkroom_gallery_sale_none(ngx_http_request_t *r,
    const char *gallery, const char *currency, ngx_str_t *cancel_url,
    ngx_uint_t quote)
{
    return ngx_http_darkroom_send_error(r, NGX_HTTP_NOT_FOUND, "no_shop",
                                        "There is no shop here.");
}


/* an order to check out where no shop sells (thread side) */

static ngx_int_t
ngx_http_darkroom_order_checkout_none(ngx_http_darkroom_task_t *t,
    const char *order, const char *token, char **url)
{
    ngx_http_darkroom_error_set(&t->err, NGX_HTTP_NOT_FOUND, "no_shop",
                                "There is no shop here.");
    return NGX_ERROR;
}


/* the request's path inside its location, without slashes at either end */

void
ngx_http_darkroom_location_path(ngx_http_request_t *r, ngx_str_t *path)
{
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    *path = r->uri;

    if (path->len >= clcf->name.len
        && ngx_strncmp(path->data, clcf->name.data, clcf->name.len) == 0)
    {
        path->data += clcf->name.len;
        path->len -= clcf->name.len;
    }

    while (path->len && path->data[0] == '/') {
        path->data++;
        path->len--;
    }

    while (path->len && path->data[path->len - 1] == '/') {
        path->len--;
    }
}


/*
 * "<location>/<a>/<b>/..." split into at most n segments after the
 * location: the number of segments, or NGX_ERROR when there are more.
 */

ngx_int_t
ngx_http_darkroom_path_split(ngx_http_request_t *r, ngx_str_t *seg,
    ngx_uint_t n)
{
    u_char      *p, *end;
    ngx_str_t    path;
    ngx_uint_t   i;

    ngx_http_darkroom_location_path(r, &path);

    p = path.data;
    end = path.data + path.len;

    for (i = 0; i < n; i++) {
        ngx_str_null(&seg[i]);
    }

    i = 0;

    while (p < end) {
        if (i == n) {
            return NGX_ERROR;
        }

        seg[i].data = p;

        while (p < end && *p != '/') {
            p++;
        }

        seg[i].len = p - seg[i].data;
        i++;
        p++;
    }

    return i;
}


/* a NUL-terminated copy */

char *
ngx_http_darkroom_cstr(ngx_pool_t *pool, u_char *data, size_t len)
{
    char  *s;

    s = ngx_pnalloc(pool, len + 1);
    if (s == NULL) {
        return NULL;
    }

    /* an empty value may have no data: memcpy() from NULL is undefined */

    if (len) {
        ngx_memcpy(s, data, len);
    }

    s[len] = '\0';

    return s;
}


/* a query argument, unescaped, or NULL when absent or empty */

char *
ngx_http_darkroom_query_arg(ngx_http_request_t *r, const char *name)
{
    u_char     *dst, *src;
    ngx_str_t   v;

    if (ngx_http_arg(r, (u_char *) name, ngx_strlen(name), &v) != NGX_OK
        || v.len == 0)
    {
        return NULL;
    }

    dst = ngx_pnalloc(r->pool, v.len + 1);
    if (dst == NULL) {
        return NULL;
    }

    src = v.data;
    v.data = dst;
    ngx_unescape_uri(&dst, &src, v.len, NGX_UNESCAPE_URI);
    *dst = '\0';

    return (char *) v.data;
}


ngx_table_elt_t *
ngx_http_darkroom_header_in(ngx_http_request_t *r, const char *name,
    size_t len)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return NULL;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == len
            && ngx_strncasecmp(h[i].key.data, (u_char *) name, len) == 0)
        {
            return &h[i];
        }
    }
}


ngx_int_t
ngx_http_darkroom_sha256_hex(const u_char *data, size_t len, char *out)
{
    u_char  md[SHA256_DIGEST_LENGTH];

    if (SHA256(data, len, md) == NULL) {
        return NGX_ERROR;
    }

    ngx_hex_dump((u_char *) out, md, sizeof(md));
    out[NGX_HTTP_DARKROOM_SHA256_HEX_LEN] = '\0';

    return NGX_OK;
}


/*
 * A token a client keeps (an order's status link, a gallery's ZIP link):
 * 128 random bits as hex, and the SHA-256 of that text in hex, which is
 * all the database keeps.  Safe in threads.
 */

ngx_int_t
ngx_http_darkroom_token(u_char *token, u_char *hash)
{
    u_char  raw[NGX_HTTP_DARKROOM_TOKEN_LEN / 2];

    if (RAND_bytes(raw, sizeof(raw)) != 1) {
        return NGX_ERROR;
    }

    ngx_hex_dump(token, raw, sizeof(raw));
    token[NGX_HTTP_DARKROOM_TOKEN_LEN] = '\0';

    return ngx_http_darkroom_sha256_hex(token, NGX_HTTP_DARKROOM_TOKEN_LEN,
                                        (char *) hash);
}


/*
 * A configured URL with {ORDER_TOKEN} and {ORDER_REF} filled in (the
 * shop's darkroom_order_status_url and checkout URLs, the mail module's
 * darkroom_mail_order_url); malloc'd, NULL when out of memory.  Safe in
 * threads.
 */

char *
ngx_http_darkroom_order_url(ngx_str_t *tpl, const char *token, const char *ref)
{
    char        *out, *p;
    size_t       len;
    const char  *s, *end, *v;

    len = tpl->len + 1 + 32 + 32;

    out = malloc(len * 2);
    if (out == NULL) {
        return NULL;
    }

    p = out;
    s = (const char *) tpl->data;
    end = s + tpl->len;

    while (s < end) {
        v = NULL;

        if (*s == '{' && end - s >= 13 && ngx_strncmp(s, "{ORDER_TOKEN}", 13)
                                          == 0)
        {
            v = token;
            s += 13;

        } else if (*s == '{' && end - s >= 11
                   && ngx_strncmp(s, "{ORDER_REF}", 11) == 0)
        {
            v = ref;
            s += 11;
        }

        if (v) {
            if ((size_t) (p - out) + ngx_strlen(v) >= len * 2 - 1) {
                break;
            }

            p = (char *) ngx_cpymem(p, v, ngx_strlen(v));
            continue;
        }

        if ((size_t) (p - out) >= len * 2 - 1) {
            break;
        }

        *p++ = *s++;
    }

    *p = '\0';

    return out;
}
