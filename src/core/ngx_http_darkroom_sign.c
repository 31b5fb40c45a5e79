
/*
 * darkroom: signed media URLs, the pure part (see the header).
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

/* SHA256_Init() and friends: see ngx_http_darkroom_sign_hmac() */
#define OPENSSL_SUPPRESS_DEPRECATED  1

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include "ngx_http_darkroom_sign.h"
#include "ngx_http_darkroom_utf8.h"


#define DR_STACK_CANONICAL  1024

/* HMAC-SHA256: the hash's block (the longest key used as is), its digest */
#define DR_SHA256_BLOCK     64
#define DR_SHA256_LEN       SHA256_DIGEST_LENGTH


static int dr_name_char(unsigned char c);
static int dr_hex_value(unsigned char c);
static size_t dr_unescape(const unsigned char *p, size_t len,
    unsigned char *dst);
static int dr_equal(const unsigned char *a, const unsigned char *b,
    size_t len);


static const char  *dr_param_names[NGX_HTTP_DARKROOM_P_N] = {
    "disposition",
    "exp",
    "filename",
    "g",
    "ip",
    "kid"
};


static const size_t  dr_param_lens[NGX_HTTP_DARKROOM_P_N] = {
    sizeof("disposition") - 1,
    sizeof("exp") - 1,
    sizeof("filename") - 1,
    sizeof("g") - 1,
    sizeof("ip") - 1,
    sizeof("kid") - 1
};


static const char  *dr_codes[] = {
    "ok",
    "missing_signature",
    "unknown_parameter",
    "duplicate_parameter",
    "bad_parameter",
    "bad_path",
    "bad_signature",
    "internal_error"
};


const char *
ngx_http_darkroom_sign_param_name(int param)
{
    if (param < 0 || param >= NGX_HTTP_DARKROOM_P_N) {
        return NULL;
    }

    return dr_param_names[param];
}


const char *
ngx_http_darkroom_sign_code(int rc)
{
    if (rc < 0 || rc > NGX_HTTP_DARKROOM_SIGN_ERROR) {
        return "internal_error";
    }

    return dr_codes[rc];
}


int
ngx_http_darkroom_sign_parse(const unsigned char *args, size_t len,
    ngx_http_darkroom_sign_link_t *link, unsigned char *buf)
{
    int                   i, rc;
    size_t                n, nlen, vlen;
    const unsigned char  *p, *end, *q, *eq, *value;

    memset(link->param, 0, sizeof(link->param));
    link->sig.len = 0;
    link->sig.data = NULL;

    p = args;
    end = args + len;

    while (p < end) {

        q = memchr(p, '&', end - p);
        if (q == NULL) {
            q = end;
        }

        if (q == p) {
            p++;
            continue;
        }

        eq = memchr(p, '=', q - p);

        if (eq) {
            nlen = eq - p;
            value = eq + 1;
            vlen = q - value;

        } else {
            nlen = q - p;
            value = q;
            vlen = 0;
        }

        if (nlen == 3 && memcmp(p, "sig", 3) == 0) {

            if (link->sig.data) {
                return NGX_HTTP_DARKROOM_SIGN_DUPLICATE;
            }

            /* base64url needs no escaping: the value is taken as sent */

            link->sig.data = (unsigned char *) value;
            link->sig.len = vlen;

            p = q + 1;
            continue;
        }

        for (i = 0; i < NGX_HTTP_DARKROOM_P_N; i++) {
            if (dr_param_lens[i] == nlen
                && memcmp(dr_param_names[i], p, nlen) == 0)
            {
                break;
            }
        }

        if (i == NGX_HTTP_DARKROOM_P_N) {
            return NGX_HTTP_DARKROOM_SIGN_UNKNOWN;
        }

        if (link->param[i].data) {
            return NGX_HTTP_DARKROOM_SIGN_DUPLICATE;
        }

        n = dr_unescape(value, vlen, buf);
        if (n == (size_t) -1) {
            return NGX_HTTP_DARKROOM_SIGN_BAD_VALUE;
        }

        rc = ngx_http_darkroom_sign_value(i, buf, n);
        if (rc != NGX_HTTP_DARKROOM_SIGN_OK) {
            return rc;
        }

        link->param[i].data = buf;
        link->param[i].len = n;
        buf += n;

        p = q + 1;
    }

    if (link->sig.data == NULL
        || link->param[NGX_HTTP_DARKROOM_P_EXP].data == NULL
        || link->param[NGX_HTTP_DARKROOM_P_KID].data == NULL)
    {
        return NGX_HTTP_DARKROOM_SIGN_MISSING;
    }

    return NGX_HTTP_DARKROOM_SIGN_OK;
}


int
ngx_http_darkroom_sign_path(const unsigned char *p, size_t len)
{
    size_t         i, seg;
    unsigned char  high;

    if (len == 0 || p[0] != '/') {
        return NGX_HTTP_DARKROOM_SIGN_BAD_PATH;
    }

    /* one pass over an ASCII path; UTF-8 decoding only for another */

    high = 0;
    seg = 0;

    for (i = 0; i <= len; i++) {

        if (i == len || p[i] == '/') {

            /* a segment is p[seg + 1 .. i - 1]; p[seg] is its "/" */

            if (i > 0 && i < len && i - seg == 1) {
                return NGX_HTTP_DARKROOM_SIGN_BAD_PATH;       /* "//" */
            }

            if ((i - seg == 2 && p[seg + 1] == '.')
                || (i - seg == 3 && p[seg + 1] == '.' && p[seg + 2] == '.'))
            {
                return NGX_HTTP_DARKROOM_SIGN_BAD_PATH;       /* . and .. */
            }

            seg = i;
            continue;
        }

        if (p[i] < 0x20 || p[i] == 0x7f || p[i] == '\\') {
            return NGX_HTTP_DARKROOM_SIGN_BAD_PATH;
        }

        high |= p[i];
    }

    if ((high & 0x80) && !ngx_http_darkroom_utf8_valid(p, len)) {
        return NGX_HTTP_DARKROOM_SIGN_BAD_PATH;
    }

    return NGX_HTTP_DARKROOM_SIGN_OK;
}


int
ngx_http_darkroom_sign_value(int param, const unsigned char *p, size_t len)
{
    size_t                        i;
    int64_t                       t;
    ngx_http_darkroom_sign_net_t  net;

    switch (param) {

    case NGX_HTTP_DARKROOM_P_EXP:
        if (ngx_http_darkroom_sign_time(p, len, &t)
            != NGX_HTTP_DARKROOM_SIGN_OK)
        {
            return NGX_HTTP_DARKROOM_SIGN_BAD_VALUE;
        }

        return NGX_HTTP_DARKROOM_SIGN_OK;

    case NGX_HTTP_DARKROOM_P_KID:
    case NGX_HTTP_DARKROOM_P_G:
        if (len == 0
            || len > (param == NGX_HTTP_DARKROOM_P_KID
                      ? NGX_HTTP_DARKROOM_SIGN_KID_MAX
                      : NGX_HTTP_DARKROOM_SIGN_G_MAX))
        {
            return NGX_HTTP_DARKROOM_SIGN_BAD_VALUE;
        }

        for (i = 0; i < len; i++) {
            if (!dr_name_char(p[i])) {
                return NGX_HTTP_DARKROOM_SIGN_BAD_VALUE;
            }
        }

        return NGX_HTTP_DARKROOM_SIGN_OK;

    case NGX_HTTP_DARKROOM_P_DISPOSITION:
        if ((len == 10 && memcmp(p, "attachment", 10) == 0)
            || (len == 6 && memcmp(p, "inline", 6) == 0))
        {
            return NGX_HTTP_DARKROOM_SIGN_OK;
        }

        return NGX_HTTP_DARKROOM_SIGN_BAD_VALUE;

    case NGX_HTTP_DARKROOM_P_FILENAME:
        if (len == 0 || len > NGX_HTTP_DARKROOM_SIGN_NAME_MAX
            || (len == 1 && p[0] == '.')
            || (len == 2 && p[0] == '.' && p[1] == '.')
            || !ngx_http_darkroom_utf8_valid(p, len))
        {
            return NGX_HTTP_DARKROOM_SIGN_BAD_VALUE;
        }

        for (i = 0; i < len; i++) {
            if (p[i] < 0x20 || p[i] == 0x7f || p[i] == '/' || p[i] == '\\') {
                return NGX_HTTP_DARKROOM_SIGN_BAD_VALUE;
            }
        }

        return NGX_HTTP_DARKROOM_SIGN_OK;

    case NGX_HTTP_DARKROOM_P_IP:
        return ngx_http_darkroom_sign_net_parse(p, len, &net);

    default:
        return NGX_HTTP_DARKROOM_SIGN_UNKNOWN;
    }
}


size_t
ngx_http_darkroom_sign_canonical(const ngx_http_darkroom_sign_link_t *link,
    unsigned char *buf, size_t size)
{
    int             i;
    size_t          len, nlen;
    unsigned char  *p;

    len = sizeof(NGX_HTTP_DARKROOM_SIGN_VERSION) + link->path.len + 1;

    for (i = 0; i < NGX_HTTP_DARKROOM_P_N; i++) {
        if (link->param[i].data) {
            len += dr_param_lens[i] + 1 + link->param[i].len + 1;
        }
    }

    if (buf == NULL || len > size) {
        return len;
    }

    p = buf;

    memcpy(p, NGX_HTTP_DARKROOM_SIGN_VERSION "\n",
           sizeof(NGX_HTTP_DARKROOM_SIGN_VERSION));
    p += sizeof(NGX_HTTP_DARKROOM_SIGN_VERSION);

    memcpy(p, link->path.data, link->path.len);
    p += link->path.len;
    *p++ = '\n';

    for (i = 0; i < NGX_HTTP_DARKROOM_P_N; i++) {

        if (link->param[i].data == NULL) {
            continue;
        }

        nlen = dr_param_lens[i];
        memcpy(p, dr_param_names[i], nlen);
        p += nlen;
        *p++ = '=';
        memcpy(p, link->param[i].data, link->param[i].len);
        p += link->param[i].len;
        *p++ = '\n';
    }

    return len;
}


int
ngx_http_darkroom_sign_mac(const ngx_http_darkroom_sign_link_t *link,
    const unsigned char *key, size_t key_len, unsigned char *sig)
{
    size_t          len;
    unsigned char  *buf, *heap;
    unsigned char   stack[DR_STACK_CANONICAL];
    unsigned char   mac[EVP_MAX_MD_SIZE];

    len = ngx_http_darkroom_sign_canonical(link, NULL, 0);

    heap = NULL;

    if (len <= sizeof(stack)) {
        buf = stack;

    } else {
        heap = malloc(len);
        if (heap == NULL) {
            return NGX_HTTP_DARKROOM_SIGN_ERROR;
        }

        buf = heap;
    }

    (void) ngx_http_darkroom_sign_canonical(link, buf, len);

    if (!ngx_http_darkroom_sign_hmac(key, key_len, buf, len, mac)) {
        free(heap);
        return NGX_HTTP_DARKROOM_SIGN_ERROR;
    }

    free(heap);

    (void) ngx_http_darkroom_sign_base64url(mac,
                                            NGX_HTTP_DARKROOM_SIGN_MAC_LEN,
                                            sig);

    return NGX_HTTP_DARKROOM_SIGN_OK;
}


int
ngx_http_darkroom_sign_order_token(const unsigned char *key, size_t key_len,
    const unsigned char *seed, size_t seed_len, char *token)
{
    size_t                n, i;
    unsigned char         msg[sizeof(NGX_HTTP_DARKROOM_ORDER_VERSION)
                              + NGX_HTTP_DARKROOM_ORDER_SEED_MAX];
    unsigned char         mac[DR_SHA256_LEN];
    static const char     hex[] = "0123456789abcdef";

    if (seed_len > NGX_HTTP_DARKROOM_ORDER_SEED_MAX) {
        return 0;
    }

    n = sizeof(NGX_HTTP_DARKROOM_ORDER_VERSION) - 1;
    memcpy(msg, NGX_HTTP_DARKROOM_ORDER_VERSION, n);
    msg[n++] = '\n';
    memcpy(msg + n, seed, seed_len);
    n += seed_len;

    if (!ngx_http_darkroom_sign_hmac(key, key_len, msg, n, mac)) {
        return 0;
    }

    for (i = 0; i < NGX_HTTP_DARKROOM_ORDER_TOKEN_LEN / 2; i++) {
        token[2 * i] = hex[mac[i] >> 4];
        token[2 * i + 1] = hex[mac[i] & 0xf];
    }

    token[NGX_HTTP_DARKROOM_ORDER_TOKEN_LEN] = '\0';

    OPENSSL_cleanse(mac, sizeof(mac));

    return 1;
}


int
ngx_http_darkroom_sign_verify(const ngx_http_darkroom_sign_link_t *link,
    const unsigned char *key, size_t key_len)
{
    int            rc;
    unsigned char  sig[NGX_HTTP_DARKROOM_SIGN_SIG_LEN + 1];

    if (link->sig.data == NULL
        || link->sig.len != NGX_HTTP_DARKROOM_SIGN_SIG_LEN)
    {
        return NGX_HTTP_DARKROOM_SIGN_MISMATCH;
    }

    rc = ngx_http_darkroom_sign_mac(link, key, key_len, sig);
    if (rc != NGX_HTTP_DARKROOM_SIGN_OK) {
        return rc;
    }

    if (!dr_equal(sig, link->sig.data, NGX_HTTP_DARKROOM_SIGN_SIG_LEN)) {
        return NGX_HTTP_DARKROOM_SIGN_MISMATCH;
    }

    return NGX_HTTP_DARKROOM_SIGN_OK;
}


size_t
ngx_http_darkroom_sign_url(const ngx_http_darkroom_sign_link_t *link,
    const unsigned char *key, size_t key_len, unsigned char *buf,
    size_t size, int *rc)
{
    int             i;
    size_t          len, nlen;
    unsigned char  *p;
    unsigned char   sig[NGX_HTTP_DARKROOM_SIGN_SIG_LEN + 1];

    *rc = ngx_http_darkroom_sign_path(link->path.data, link->path.len);
    if (*rc != NGX_HTTP_DARKROOM_SIGN_OK) {
        return 0;
    }

    if (link->param[NGX_HTTP_DARKROOM_P_EXP].data == NULL
        || link->param[NGX_HTTP_DARKROOM_P_KID].data == NULL)
    {
        *rc = NGX_HTTP_DARKROOM_SIGN_MISSING;
        return 0;
    }

    len = ngx_http_darkroom_sign_escape(link->path.data, link->path.len,
                                        NULL, 1)
          + sizeof("?sig=") - 1 + NGX_HTTP_DARKROOM_SIGN_SIG_LEN;

    for (i = 0; i < NGX_HTTP_DARKROOM_P_N; i++) {

        if (link->param[i].data == NULL) {
            continue;
        }

        *rc = ngx_http_darkroom_sign_value(i, link->param[i].data,
                                           link->param[i].len);
        if (*rc != NGX_HTTP_DARKROOM_SIGN_OK) {
            return 0;
        }

        len += strlen(dr_param_names[i]) + 2
               + ngx_http_darkroom_sign_escape(link->param[i].data,
                                               link->param[i].len, NULL, 0);
    }

    if (buf == NULL || len > size) {
        return len;
    }

    *rc = ngx_http_darkroom_sign_mac(link, key, key_len, sig);
    if (*rc != NGX_HTTP_DARKROOM_SIGN_OK) {
        return 0;
    }

    p = buf;
    p += ngx_http_darkroom_sign_escape(link->path.data, link->path.len, p, 1);

    *p++ = '?';

    for (i = 0; i < NGX_HTTP_DARKROOM_P_N; i++) {

        if (link->param[i].data == NULL) {
            continue;
        }

        nlen = strlen(dr_param_names[i]);
        memcpy(p, dr_param_names[i], nlen);
        p += nlen;
        *p++ = '=';
        p += ngx_http_darkroom_sign_escape(link->param[i].data,
                                           link->param[i].len, p, 0);
        *p++ = '&';
    }

    memcpy(p, "sig=", 4);
    p += 4;
    memcpy(p, sig, NGX_HTTP_DARKROOM_SIGN_SIG_LEN);
    p += NGX_HTTP_DARKROOM_SIGN_SIG_LEN;

    return p - buf;
}


int
ngx_http_darkroom_sign_time(const unsigned char *p, size_t len, int64_t *t)
{
    size_t   i;
    int64_t  v;

    if (len == 0 || len > 12) {
        return NGX_HTTP_DARKROOM_SIGN_BAD_VALUE;
    }

    v = 0;

    for (i = 0; i < len; i++) {
        if (p[i] < '0' || p[i] > '9') {
            return NGX_HTTP_DARKROOM_SIGN_BAD_VALUE;
        }

        v = v * 10 + (p[i] - '0');
    }

    *t = v;

    return NGX_HTTP_DARKROOM_SIGN_OK;
}


int
ngx_http_darkroom_sign_net_parse(const unsigned char *p, size_t len,
    ngx_http_darkroom_sign_net_t *net)
{
    char            text[NGX_HTTP_DARKROOM_SIGN_IP_LEN + 1];
    char           *slash;
    size_t          i;
    unsigned        bits, max;

    if (len == 0 || len > NGX_HTTP_DARKROOM_SIGN_IP_LEN) {
        return NGX_HTTP_DARKROOM_SIGN_BAD_VALUE;
    }

    memcpy(text, p, len);
    text[len] = '\0';

    slash = strchr(text, '/');
    if (slash) {
        *slash++ = '\0';
    }

    memset(net, 0, sizeof(ngx_http_darkroom_sign_net_t));

    if (inet_pton(AF_INET, text, net->addr) == 1) {
        net->family = AF_INET;
        max = 32;

    } else if (inet_pton(AF_INET6, text, net->addr) == 1) {
        net->family = AF_INET6;
        max = 128;

    } else {
        return NGX_HTTP_DARKROOM_SIGN_BAD_VALUE;
    }

    if (slash == NULL) {
        net->bits = max;
        return NGX_HTTP_DARKROOM_SIGN_OK;
    }

    if (*slash == '\0' || strlen(slash) > 3) {
        return NGX_HTTP_DARKROOM_SIGN_BAD_VALUE;
    }

    bits = 0;

    for (i = 0; slash[i]; i++) {
        if (slash[i] < '0' || slash[i] > '9') {
            return NGX_HTTP_DARKROOM_SIGN_BAD_VALUE;
        }

        bits = bits * 10 + (slash[i] - '0');
    }

    if (bits > max) {
        return NGX_HTTP_DARKROOM_SIGN_BAD_VALUE;
    }

    net->bits = bits;

    return NGX_HTTP_DARKROOM_SIGN_OK;
}


int
ngx_http_darkroom_sign_net_match(const ngx_http_darkroom_sign_net_t *net,
    int family, const unsigned char *addr)
{
    unsigned              n, rest;
    const unsigned char  *a;

    static const unsigned char  v4mapped[12] = {
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
    };

    a = addr;

    if (family == AF_INET6 && net->family == AF_INET
        && memcmp(addr, v4mapped, 12) == 0)
    {
        family = AF_INET;
        a = addr + 12;
    }

    if (family != net->family) {
        return 0;
    }

    n = net->bits / 8;
    rest = net->bits % 8;

    if (memcmp(a, net->addr, n) != 0) {
        return 0;
    }

    if (rest
        && ((a[n] ^ net->addr[n]) & (unsigned char) (0xff << (8 - rest))))
    {
        return 0;
    }

    return 1;
}


size_t
ngx_http_darkroom_sign_net_format(int family, const unsigned char *addr,
    unsigned bits, unsigned char *buf, size_t size)
{
    char           text[NGX_HTTP_DARKROOM_SIGN_IP_LEN + 1];
    size_t         len, i, alen;
    unsigned       max;
    unsigned char  a[16];

    alen = (family == AF_INET) ? 4 : 16;
    max = alen * 8;

    if (bits > max) {
        return 0;
    }

    memcpy(a, addr, alen);

    for (i = 0; i < alen; i++) {
        if (bits <= i * 8) {
            a[i] = 0;

        } else if (bits < (i + 1) * 8) {
            a[i] &= (unsigned char) (0xff << ((i + 1) * 8 - bits));
        }
    }

    if (inet_ntop(family, a, text, sizeof(text)) == NULL) {
        return 0;
    }

    len = strlen(text);

    if (bits != max) {
        len += snprintf(text + len, sizeof(text) - len, "/%u", bits);
    }

    if (len > size) {
        return 0;
    }

    memcpy(buf, text, len);

    return len;
}


size_t
ngx_http_darkroom_sign_disposition(const unsigned char *type,
    size_t type_len, const unsigned char *name, size_t name_len,
    unsigned char *buf, size_t size)
{
    size_t          i, len;
    unsigned char  *p;

    len = type_len;

    if (name_len) {
        len += sizeof("; filename=\"\"; filename*=UTF-8''") - 1 + name_len
               + ngx_http_darkroom_sign_escape(name, name_len, NULL, 0);
    }

    if (buf == NULL || len > size) {
        return len;
    }

    p = buf;
    memcpy(p, type, type_len);
    p += type_len;

    if (name_len == 0) {
        return p - buf;
    }

    memcpy(p, "; filename=\"", sizeof("; filename=\"") - 1);
    p += sizeof("; filename=\"") - 1;

    /* an ASCII fallback: one "_" for each other character */

    for (i = 0; i < name_len; i++) {

        if (name[i] >= 0x80 && name[i] < 0xc0) {
            continue;                       /* UTF-8 continuation byte */
        }

        if (name[i] < 0x20 || name[i] >= 0x7f
            || name[i] == '"' || name[i] == '\\')
        {
            *p++ = '_';

        } else {
            *p++ = name[i];
        }
    }

    memcpy(p, "\"; filename*=UTF-8''", sizeof("\"; filename*=UTF-8''") - 1);
    p += sizeof("\"; filename*=UTF-8''") - 1;

    p += ngx_http_darkroom_sign_escape(name, name_len, p, 0);

    return p - buf;
}


size_t
ngx_http_darkroom_sign_base64url(const unsigned char *src, size_t len,
    unsigned char *dst)
{
    unsigned char  *d;

    static const char  b64[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

    d = dst;

    while (len > 2) {
        *d++ = b64[(src[0] >> 2) & 0x3f];
        *d++ = b64[((src[0] & 3) << 4) | (src[1] >> 4)];
        *d++ = b64[((src[1] & 0x0f) << 2) | (src[2] >> 6)];
        *d++ = b64[src[2] & 0x3f];

        src += 3;
        len -= 3;
    }

    if (len) {
        *d++ = b64[(src[0] >> 2) & 0x3f];

        if (len == 1) {
            *d++ = b64[(src[0] & 3) << 4];

        } else {
            *d++ = b64[((src[0] & 3) << 4) | (src[1] >> 4)];
            *d++ = b64[(src[1] & 0x0f) << 2];
        }
    }

    return d - dst;
}


size_t
ngx_http_darkroom_sign_escape(const unsigned char *src, size_t len,
    unsigned char *dst, int slash)
{
    size_t          i, n;
    unsigned char   c;

    static const char  hex[] = "0123456789ABCDEF";

    n = 0;

    for (i = 0; i < len; i++) {
        c = src[i];

        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
            || (c >= '0' && c <= '9')
            || c == '-' || c == '.' || c == '_' || c == '~'
            || (slash && c == '/'))
        {
            if (dst) {
                dst[n] = c;
            }

            n++;
            continue;
        }

        if (dst) {
            dst[n] = '%';
            dst[n + 1] = hex[c >> 4];
            dst[n + 2] = hex[c & 0x0f];
        }

        n += 3;
    }

    return n;
}


/*
 * HMAC-SHA256 (RFC 2104).  The check is on the path of every download, so
 * it avoids OpenSSL 3's per-call algorithm fetch (HMAC() is about five
 * times slower for short messages): with the low-level SHA-256 functions
 * (deprecated in 3.0 but present), the inner and outer states after the
 * key block are computed once per key and thread and kept in a small
 * thread-local cache; a check then costs three SHA-256 blocks.  Without
 * them (OPENSSL_NO_DEPRECATED_3_0) it falls back to EVP digests.
 */

#if !defined(OPENSSL_NO_DEPRECATED_3_0)

#define DR_HMAC_CACHE  4

typedef struct {
    size_t         key_len;                /* 0: an empty slot */
    unsigned char  key[DR_SHA256_BLOCK];
    SHA256_CTX     inner;
    SHA256_CTX     outer;
} dr_hmac_key_t;


int
ngx_http_darkroom_sign_hmac(const unsigned char *key, size_t key_len,
    const unsigned char *msg, size_t len, unsigned char *out)
{
    size_t          i;
    SHA256_CTX      c;
    dr_hmac_key_t  *hk, tmp;
    unsigned char   k[DR_SHA256_BLOCK], pad[DR_SHA256_BLOCK],
                    inner[DR_SHA256_LEN];

    static __thread dr_hmac_key_t  cache[DR_HMAC_CACHE];
    static __thread unsigned       next;

    hk = NULL;

    if (key_len > 0 && key_len <= sizeof(k)) {
        for (i = 0; i < DR_HMAC_CACHE; i++) {
            if (cache[i].key_len == key_len
                && memcmp(cache[i].key, key, key_len) == 0)
            {
                hk = &cache[i];
                break;
            }
        }
    }

    if (hk == NULL) {
        memset(k, 0, sizeof(k));

        if (key_len > sizeof(k)) {
            if (SHA256(key, key_len, k) == NULL) {
                return 0;
            }

            hk = &tmp;

        } else {
            memcpy(k, key, key_len);

            hk = &cache[next++ % DR_HMAC_CACHE];
        }

        for (i = 0; i < sizeof(pad); i++) {
            pad[i] = k[i] ^ 0x36;
        }

        if (SHA256_Init(&hk->inner) != 1
            || SHA256_Update(&hk->inner, pad, sizeof(pad)) != 1)
        {
            hk->key_len = 0;
            return 0;
        }

        for (i = 0; i < sizeof(pad); i++) {
            pad[i] = k[i] ^ 0x5c;
        }

        if (SHA256_Init(&hk->outer) != 1
            || SHA256_Update(&hk->outer, pad, sizeof(pad)) != 1)
        {
            hk->key_len = 0;
            return 0;
        }

        hk->key_len = (hk == &tmp) ? 0 : key_len;
        memcpy(hk->key, k, key_len <= sizeof(k) ? key_len : 0);

        OPENSSL_cleanse(k, sizeof(k));
        OPENSSL_cleanse(pad, sizeof(pad));
    }

    c = hk->inner;

    if (SHA256_Update(&c, msg, len) != 1 || SHA256_Final(inner, &c) != 1) {
        return 0;
    }

    c = hk->outer;

    if (SHA256_Update(&c, inner, sizeof(inner)) != 1
        || SHA256_Final(out, &c) != 1)
    {
        return 0;
    }

    if (hk == &tmp) {
        OPENSSL_cleanse(&tmp, sizeof(tmp));
    }

    OPENSSL_cleanse(&c, sizeof(c));

    return 1;
}

#else

int
ngx_http_darkroom_sign_hmac(const unsigned char *key, size_t key_len,
    const unsigned char *msg, size_t len, unsigned char *out)
{
    int            ok;
    size_t         i;
    unsigned int   n;
    unsigned char  k[DR_SHA256_BLOCK], pad[DR_SHA256_BLOCK],
                   inner[DR_SHA256_LEN];

    static __thread EVP_MD      *md;
    static __thread EVP_MD_CTX  *ctx;

    if (md == NULL) {
        md = EVP_MD_fetch(NULL, "SHA256", NULL);
        if (md == NULL) {
            return 0;
        }
    }

    if (ctx == NULL) {
        ctx = EVP_MD_CTX_new();
        if (ctx == NULL) {
            return 0;
        }
    }

    memset(k, 0, sizeof(k));

    if (key_len > sizeof(k)) {
        if (EVP_Digest(key, key_len, k, &n, md, NULL) != 1) {
            return 0;
        }

    } else {
        memcpy(k, key, key_len);
    }

    for (i = 0; i < sizeof(pad); i++) {
        pad[i] = k[i] ^ 0x36;
    }

    ok = EVP_DigestInit_ex(ctx, md, NULL) == 1
         && EVP_DigestUpdate(ctx, pad, sizeof(pad)) == 1
         && EVP_DigestUpdate(ctx, msg, len) == 1
         && EVP_DigestFinal_ex(ctx, inner, &n) == 1;

    if (ok) {
        for (i = 0; i < sizeof(pad); i++) {
            pad[i] = k[i] ^ 0x5c;
        }

        ok = EVP_DigestInit_ex(ctx, md, NULL) == 1
             && EVP_DigestUpdate(ctx, pad, sizeof(pad)) == 1
             && EVP_DigestUpdate(ctx, inner, sizeof(inner)) == 1
             && EVP_DigestFinal_ex(ctx, out, &n) == 1;
    }

    OPENSSL_cleanse(k, sizeof(k));
    OPENSSL_cleanse(pad, sizeof(pad));
    OPENSSL_cleanse(inner, sizeof(inner));

    return ok;
}

#endif


static int
dr_name_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
           || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_';
}


static int
dr_hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }

    c |= 0x20;

    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }

    return -1;
}


/* strict percent-decoding: returns the length or (size_t) -1 */

static size_t
dr_unescape(const unsigned char *p, size_t len, unsigned char *dst)
{
    int     h, l;
    size_t  i, n;

    n = 0;

    for (i = 0; i < len; i++) {

        if (p[i] != '%') {
            dst[n++] = p[i];
            continue;
        }

        if (len - i < 3) {
            return (size_t) -1;
        }

        h = dr_hex_value(p[i + 1]);
        l = dr_hex_value(p[i + 2]);

        if (h < 0 || l < 0) {
            return (size_t) -1;
        }

        dst[n++] = (unsigned char) ((h << 4) | l);
        i += 2;
    }

    return n;
}


/*
 * a == b in constant time, eight bytes a step (CRYPTO_memcmp() takes one,
 * which was a tenth of a link check): every byte of both is read whatever
 * they hold, the differences OR-ed together behind an empty asm the
 * compiler cannot see through, so it cannot end the loop at the first.
 */

static int
dr_equal(const unsigned char *a, const unsigned char *b, size_t len)
{
    size_t    i;
    uint64_t  x, y, d;

    d = 0;

    for (i = 0; i + sizeof(uint64_t) <= len; i += sizeof(uint64_t)) {
        memcpy(&x, a + i, sizeof(uint64_t));
        memcpy(&y, b + i, sizeof(uint64_t));
        d |= x ^ y;
        __asm__ __volatile__ ("" : "+r" (d));
    }

    for ( /* void */ ; i < len; i++) {
        d |= (uint64_t) (a[i] ^ b[i]);
        __asm__ __volatile__ ("" : "+r" (d));
    }

    return d == 0;
}
