
/*
 * darkroom: the gallery cookie, the pure part (see the header).
 */


#include <string.h>

#include "ngx_http_darkroom_gallery_cookie.h"


static int dr_next(const char *name, size_t nlen,
    const unsigned char **pos, const unsigned char *end,
    const unsigned char **val, size_t *vlen);
static const unsigned char *dr_field(const unsigned char *p,
    const unsigned char *end, uint64_t max, uint64_t *n);
static int dr_sig(const unsigned char *p, const unsigned char *end);


int
ngx_http_darkroom_gallery_cookie_next(const unsigned char **pos,
    const unsigned char *end, const unsigned char **val, size_t *vlen)
{
    return dr_next(NGX_HTTP_DARKROOM_GALLERY_COOKIE_NAME,
                   sizeof(NGX_HTTP_DARKROOM_GALLERY_COOKIE_NAME) - 1,
                   pos, end, val, vlen);
}


int
ngx_http_darkroom_gallery_visitor_next(const unsigned char **pos,
    const unsigned char *end, const unsigned char **val, size_t *vlen)
{
    return dr_next(NGX_HTTP_DARKROOM_GALLERY_VISITOR_NAME,
                   sizeof(NGX_HTTP_DARKROOM_GALLERY_VISITOR_NAME) - 1,
                   pos, end, val, vlen);
}


/* the next value of cookie name (nlen bytes) */

static int
dr_next(const char *name, size_t nlen, const unsigned char **pos,
    const unsigned char *end, const unsigned char **val, size_t *vlen)
{
    const unsigned char  *p, *s, *e;

    p = *pos;

    while (p < end) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == ';')) {
            p++;
        }

        s = p;

        while (p < end && *p != ';') {
            p++;
        }

        e = p;

        while (e > s && (e[-1] == ' ' || e[-1] == '\t')) {
            e--;
        }

        if ((size_t) (e - s) > nlen
            && memcmp(s, name, nlen) == 0
            && s[nlen] == '=')
        {
            *val = s + nlen + 1;
            *vlen = e - s - nlen - 1;
            *pos = p;
            return 1;
        }
    }

    *pos = end;

    return 0;
}


/*
 * A field: 1 .. max in decimal (no sign, space or leading zero) and the
 * dot after it; what follows the dot, NULL if not
 */

static const unsigned char *
dr_field(const unsigned char *p, const unsigned char *end, uint64_t max,
    uint64_t *n)
{
    uint64_t  v, d;

    if (p == end || *p < '1' || *p > '9') {
        return NULL;
    }

    v = 0;

    while (p < end && *p >= '0' && *p <= '9') {
        d = *p++ - '0';

        if (v > (max - d) / 10) {
            return NULL;
        }

        v = v * 10 + d;
    }

    if (p == end || *p != '.') {
        return NULL;
    }

    *n = v;

    return p + 1;
}


int
ngx_http_darkroom_gallery_cookie_parse(const unsigned char *v, size_t len,
    ngx_http_darkroom_gallery_cookie_t *c)
{
    uint64_t              id, gen, exp;
    const unsigned char  *p, *end;

    p = v;
    end = v + len;

    p = dr_field(p, end, INT64_MAX, &id);
    if (p == NULL) {
        return -1;
    }

    p = dr_field(p, end, INT32_MAX, &gen);
    if (p == NULL) {
        return -1;
    }

    p = dr_field(p, end, INT64_MAX, &exp);
    if (p == NULL) {
        return -1;
    }

    if (dr_sig(p, end) != 0) {
        return -1;
    }

    c->id = id;
    c->generation = (uint32_t) gen;
    c->expires = (int64_t) exp;
    c->sig = p;

    return 0;
}


int
ngx_http_darkroom_gallery_visitor_parse(const unsigned char *v, size_t len,
    ngx_http_darkroom_gallery_visitor_t *c)
{
    uint64_t              id, gen, vid, exp;
    const unsigned char  *p, *end;

    p = v;
    end = v + len;

    p = dr_field(p, end, INT64_MAX, &id);
    if (p == NULL) {
        return -1;
    }

    p = dr_field(p, end, INT32_MAX, &gen);
    if (p == NULL) {
        return -1;
    }

    p = dr_field(p, end, INT64_MAX, &vid);
    if (p == NULL) {
        return -1;
    }

    p = dr_field(p, end, INT64_MAX, &exp);
    if (p == NULL) {
        return -1;
    }

    if (dr_sig(p, end) != 0) {
        return -1;
    }

    c->id = id;
    c->generation = (uint32_t) gen;
    c->visitor = vid;
    c->expires = (int64_t) exp;
    c->sig = p;

    return 0;
}


/* exactly a signature's base64url characters from p to end: 0 or -1 */

static int
dr_sig(const unsigned char *p, const unsigned char *end)
{
    size_t  i;

    if ((size_t) (end - p) != NGX_HTTP_DARKROOM_GALLERY_COOKIE_SIG_LEN) {
        return -1;
    }

    for (i = 0; i < NGX_HTTP_DARKROOM_GALLERY_COOKIE_SIG_LEN; i++) {
        if (!((p[i] >= 'A' && p[i] <= 'Z') || (p[i] >= 'a' && p[i] <= 'z')
              || (p[i] >= '0' && p[i] <= '9') || p[i] == '-' || p[i] == '_'))
        {
            return -1;
        }
    }

    return 0;
}
