
/*
 * darkroom: signed media URLs, the pure part.
 *
 * Nothing here knows about nginx: no pools, no logs, no I/O.  The access
 * phase check, the signing variable, galleries and the unit tests in t/unit/
 * all call these functions.  Only OpenSSL's libcrypto is used (HMAC-SHA256
 * and CRYPTO_memcmp).  The algorithm is described in docs/signed-urls.md.
 *
 * A link is <path>?<name>=<value>&...&sig=<base64url HMAC-SHA256>.  The MAC
 * covers the canonical string
 *
 *     "darkroom-media-v1\n" <decoded path> "\n"
 *     then, for every signed parameter present, in the byte-wise order of
 *     the names below: <name> "=" <decoded value> "\n"
 *
 * A new signed parameter is added by adding its name to the table in the
 * right sorted position: links signed without it keep their canonical form.
 */


#ifndef _NGX_HTTP_DARKROOM_SIGN_H_INCLUDED_
#define _NGX_HTTP_DARKROOM_SIGN_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>


#define NGX_HTTP_DARKROOM_SIGN_VERSION   "darkroom-media-v1"
#define NGX_HTTP_DARKROOM_SIGN_MAC_LEN   32
#define NGX_HTTP_DARKROOM_SIGN_SIG_LEN   43    /* base64url, no padding */
#define NGX_HTTP_DARKROOM_SIGN_KID_MAX   32
#define NGX_HTTP_DARKROOM_SIGN_KEY_MIN   16
#define NGX_HTTP_DARKROOM_SIGN_G_MAX     64
#define NGX_HTTP_DARKROOM_SIGN_NAME_MAX  255   /* filename, bytes */
#define NGX_HTTP_DARKROOM_SIGN_IP_LEN    49    /* v6 text and "/128" */

#define NGX_HTTP_DARKROOM_ORDER_VERSION  "darkroom-order-v1"
#define NGX_HTTP_DARKROOM_ORDER_SEED_MAX 64
#define NGX_HTTP_DARKROOM_ORDER_TOKEN_LEN 32   /* hex digits, 128 bits */


/* the signed parameters, in canonical (byte-wise sorted) order */

typedef enum {
    NGX_HTTP_DARKROOM_P_DISPOSITION = 0,   /* "attachment" or "inline" */
    NGX_HTTP_DARKROOM_P_EXP,               /* unix time, decimal */
    NGX_HTTP_DARKROOM_P_FILENAME,          /* UTF-8 download name */
    NGX_HTTP_DARKROOM_P_G,                 /* gallery id (galleries) */
    NGX_HTTP_DARKROOM_P_IP,                /* address or address/bits */
    NGX_HTTP_DARKROOM_P_KID,               /* key id */
    NGX_HTTP_DARKROOM_P_N
} ngx_http_darkroom_sign_param_e;


typedef enum {
    NGX_HTTP_DARKROOM_SIGN_OK = 0,
    NGX_HTTP_DARKROOM_SIGN_MISSING,        /* no sig, exp or kid */
    NGX_HTTP_DARKROOM_SIGN_UNKNOWN,        /* a parameter that is not signed */
    NGX_HTTP_DARKROOM_SIGN_DUPLICATE,      /* a parameter given twice */
    NGX_HTTP_DARKROOM_SIGN_BAD_VALUE,      /* bad escape or value */
    NGX_HTTP_DARKROOM_SIGN_BAD_PATH,       /* not a canonical path */
    NGX_HTTP_DARKROOM_SIGN_MISMATCH,       /* the signature does not match */
    NGX_HTTP_DARKROOM_SIGN_ERROR           /* libcrypto or memory failure */
} ngx_http_darkroom_sign_rc_e;


/* same layout as ngx_str_t */

typedef struct {
    size_t                           len;
    unsigned char                   *data;     /* NULL: absent */
} ngx_http_darkroom_sign_str_t;


typedef struct {
    ngx_http_darkroom_sign_str_t     path;     /* decoded */
    ngx_http_darkroom_sign_str_t     param[NGX_HTTP_DARKROOM_P_N];
    ngx_http_darkroom_sign_str_t     sig;      /* as sent */
} ngx_http_darkroom_sign_link_t;


typedef struct {
    int                              family;   /* AF_INET or AF_INET6 */
    unsigned                         bits;
    unsigned char                    addr[16];
} ngx_http_darkroom_sign_net_t;


/* the parameter's name, e.g. "exp" */
const char *ngx_http_darkroom_sign_param_name(int param);

/* a short snake_case reason for an rc, e.g. "bad_signature" */
const char *ngx_http_darkroom_sign_code(int rc);

/*
 * Splits a raw query string (r->args) into link->param and link->sig,
 * percent-decoding the values into buf, which must hold len bytes.
 * "+" is a literal plus.  Checks each value (ngx_http_darkroom_sign_value).
 */
int ngx_http_darkroom_sign_parse(const unsigned char *args, size_t len,
    ngx_http_darkroom_sign_link_t *link, unsigned char *buf);

/* a decoded path darkroom signs and accepts: see docs/signed-urls.md */
int ngx_http_darkroom_sign_path(const unsigned char *p, size_t len);

/* a decoded value of a signed parameter */
int ngx_http_darkroom_sign_value(int param, const unsigned char *p,
    size_t len);

/* the canonical string: returns its length, writes it if it fits in size */
size_t ngx_http_darkroom_sign_canonical(
    const ngx_http_darkroom_sign_link_t *link, unsigned char *buf,
    size_t size);

/*
 * HMAC-SHA256 of msg into out (32 bytes); returns 1, or 0 on a libcrypto
 * failure.  Thread-safe: the digest context is per thread.  Also for other
 * HMACs of the module (e.g. gallery cookies).
 */
int ngx_http_darkroom_sign_hmac(const unsigned char *key, size_t key_len,
    const unsigned char *msg, size_t len, unsigned char *out);

/*
 * An order's status token: the first 128 bits of
 *
 *     HMAC-SHA256(key, "darkroom-order-v1\n" <seed>)
 *
 * as 32 lowercase hex digits and a NUL in token (33 bytes).  The seed is
 * the order's random value, kept in clear (orders.token_seed): without the
 * key it tells nothing of the token.  Returns 1, or 0 on a libcrypto
 * failure or a seed longer than NGX_HTTP_DARKROOM_ORDER_SEED_MAX.
 * Thread-safe, allocates nothing.
 */
int ngx_http_darkroom_sign_order_token(const unsigned char *key,
    size_t key_len, const unsigned char *seed, size_t seed_len,
    char *token);

/* base64url(HMAC-SHA256(key, canonical)), NGX_HTTP_DARKROOM_SIGN_SIG_LEN */
int ngx_http_darkroom_sign_mac(const ngx_http_darkroom_sign_link_t *link,
    const unsigned char *key, size_t key_len, unsigned char *sig);

/* compares link->sig with the expected one in constant time */
int ngx_http_darkroom_sign_verify(const ngx_http_darkroom_sign_link_t *link,
    const unsigned char *key, size_t key_len);

/*
 * Signs link (path and parameters set, kid included) and writes the URL
 * "<escaped path>?<params in canonical order>&sig=<sig>".  Returns its
 * length, 0 on error, or the needed length if it does not fit in size.
 */
size_t ngx_http_darkroom_sign_url(const ngx_http_darkroom_sign_link_t *link,
    const unsigned char *key, size_t key_len, unsigned char *buf,
    size_t size, int *rc);

/* unix time from a decimal string, up to 12 digits */
int ngx_http_darkroom_sign_time(const unsigned char *p, size_t len,
    int64_t *t);

/* "192.0.2.1", "192.0.2.0/24", "2001:db8::/48" */
int ngx_http_darkroom_sign_net_parse(const unsigned char *p, size_t len,
    ngx_http_darkroom_sign_net_t *net);

/* is addr (4 or 16 bytes of family) inside net; v4-mapped v6 is v4 */
int ngx_http_darkroom_sign_net_match(const ngx_http_darkroom_sign_net_t *net,
    int family, const unsigned char *addr);

/* "a.b.c.d" when bits is the full length, else the masked "net/bits" */
size_t ngx_http_darkroom_sign_net_format(int family,
    const unsigned char *addr, unsigned bits, unsigned char *buf,
    size_t size);

/*
 * Content-Disposition value (RFC 6266, RFC 5987):
 * <type>; filename="<ascii fallback>"; filename*=UTF-8''<percent-encoded>
 * Returns its length, or the needed length if it does not fit.
 */
size_t ngx_http_darkroom_sign_disposition(const unsigned char *type,
    size_t type_len, const unsigned char *name, size_t name_len,
    unsigned char *buf, size_t size);

/* base64url without padding; returns the encoded length */
size_t ngx_http_darkroom_sign_base64url(const unsigned char *src,
    size_t len, unsigned char *dst);

/* percent-encodes; keeps unreserved characters (and "/" if slash) */
size_t ngx_http_darkroom_sign_escape(const unsigned char *src, size_t len,
    unsigned char *dst, int slash);


#endif /* _NGX_HTTP_DARKROOM_SIGN_H_INCLUDED_ */
