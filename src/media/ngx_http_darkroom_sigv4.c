
/*
 * darkroom: AWS Signature Version 4 presigned URLs (see the header).
 *
 *   canonical request = method \n encoded path \n sorted query \n
 *                       "host:" host \n \n "host" \n "UNSIGNED-PAYLOAD"
 *   string to sign    = "AWS4-HMAC-SHA256" \n date-time \n scope \n
 *                       hex(SHA-256(canonical request))
 *   signing key       = HMAC(HMAC(HMAC(HMAC("AWS4" secret, date), region),
 *                       service), "aws4_request")
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "ngx_http_darkroom_sigv4.h"


typedef struct {
    char                            *data;
    size_t                           len;
    size_t                           cap;
    int                              failed;
} ngx_http_darkroom_sigv4_buf_t;


typedef struct {
    char                            *name;      /* encoded */
    char                            *value;     /* encoded */
} ngx_http_darkroom_sigv4_pair_t;


/* the algorithm's fixed parameters, at most six, then the caller's */
#define NGX_HTTP_DARKROOM_SIGV4_PAIRS  6


static int ngx_http_darkroom_sigv4_scope(const ngx_http_darkroom_sigv4_t *req,
    const char *date, ngx_http_darkroom_sigv4_buf_t *scope,
    ngx_http_darkroom_sigv4_buf_t *cred);
static int ngx_http_darkroom_sigv4_query(const ngx_http_darkroom_sigv4_t *req,
    const char *credential, const char *stamp,
    ngx_http_darkroom_sigv4_buf_t *q);
static int ngx_http_darkroom_sigv4_pair(ngx_http_darkroom_sigv4_pair_t *qp,
    size_t *n, const char *name, const char *value);
static int ngx_http_darkroom_sigv4_canonical(
    const ngx_http_darkroom_sigv4_t *req, ngx_http_darkroom_sigv4_buf_t *q,
    char *hex);
static int ngx_http_darkroom_sigv4_signature(
    const ngx_http_darkroom_sigv4_t *req, const char *date,
    const char *stamp, const char *scope, const char *hash, char *hex);
static int ngx_http_darkroom_sigv4_key(const ngx_http_darkroom_sigv4_t *req,
    const char *date, unsigned char *key);
static void ngx_http_darkroom_sigv4_add(ngx_http_darkroom_sigv4_buf_t *b,
    const char *s, size_t len);
static void ngx_http_darkroom_sigv4_str(ngx_http_darkroom_sigv4_buf_t *b,
    const char *s);
static void ngx_http_darkroom_sigv4_enc(ngx_http_darkroom_sigv4_buf_t *b,
    const char *s, int slash);
static char *ngx_http_darkroom_sigv4_encoded(const char *s);
static int ngx_http_darkroom_sigv4_pair_cmp(const void *a, const void *b);
static void ngx_http_darkroom_sigv4_hex(const unsigned char *p, size_t len,
    char *out);
static int ngx_http_darkroom_sigv4_hmac(const unsigned char *key,
    size_t key_len, const char *msg, unsigned char *out);


size_t
ngx_http_darkroom_sigv4_presign(const ngx_http_darkroom_sigv4_t *req,
    char *buf, size_t size, char *hash)
{
    size_t                          len;
    struct tm                       tm;
    ngx_http_darkroom_sigv4_buf_t   scope, cred, q, url;
    char                            date[9], stamp[17], hex[65], sig[65];

    if (req->host == NULL || req->path == NULL || req->path[0] != '/'
        || req->region == NULL || req->service == NULL
        || req->access_key == NULL || req->secret_key == NULL
        || req->expires == 0
        || req->expires > NGX_HTTP_DARKROOM_SIGV4_EXPIRES_MAX
        || gmtime_r(&req->now, &tm) == NULL)
    {
        return 0;
    }

    strftime(date, sizeof(date), "%Y%m%d", &tm);
    strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);

    memset(&scope, 0, sizeof(ngx_http_darkroom_sigv4_buf_t));
    memset(&cred, 0, sizeof(ngx_http_darkroom_sigv4_buf_t));
    memset(&q, 0, sizeof(ngx_http_darkroom_sigv4_buf_t));
    memset(&url, 0, sizeof(ngx_http_darkroom_sigv4_buf_t));

    len = 0;

    if (!ngx_http_darkroom_sigv4_scope(req, date, &scope, &cred)
        || !ngx_http_darkroom_sigv4_query(req, cred.data, stamp, &q)
        || !ngx_http_darkroom_sigv4_canonical(req, &q, hex))
    {
        goto done;
    }

    if (hash) {
        memcpy(hash, hex, 65);
    }

    if (!ngx_http_darkroom_sigv4_signature(req, date, stamp, scope.data, hex,
                                           sig))
    {
        goto done;
    }

    /* the URL */

    ngx_http_darkroom_sigv4_str(&url, req->scheme ? req->scheme : "https");
    ngx_http_darkroom_sigv4_str(&url, "://");
    ngx_http_darkroom_sigv4_str(&url, req->host);
    ngx_http_darkroom_sigv4_enc(&url, req->path, 1);
    ngx_http_darkroom_sigv4_str(&url, "?");
    ngx_http_darkroom_sigv4_add(&url, q.data, q.len);
    ngx_http_darkroom_sigv4_str(&url, "&X-Amz-Signature=");
    ngx_http_darkroom_sigv4_str(&url, sig);

    if (url.failed) {
        goto done;
    }

    len = url.len;

    if (buf && len <= size) {
        memcpy(buf, url.data, len);
    }

done:

    free(scope.data);
    free(cred.data);
    free(q.data);
    free(url.data);

    return len;
}


/*
 * The scope, <date>/<region>/<service>/aws4_request, and the credential,
 * <access key>/<scope>, both NUL-terminated.
 */

static int
ngx_http_darkroom_sigv4_scope(const ngx_http_darkroom_sigv4_t *req,
    const char *date, ngx_http_darkroom_sigv4_buf_t *scope,
    ngx_http_darkroom_sigv4_buf_t *cred)
{
    ngx_http_darkroom_sigv4_str(scope, date);
    ngx_http_darkroom_sigv4_str(scope, "/");
    ngx_http_darkroom_sigv4_str(scope, req->region);
    ngx_http_darkroom_sigv4_str(scope, "/");
    ngx_http_darkroom_sigv4_str(scope, req->service);
    ngx_http_darkroom_sigv4_str(scope, "/aws4_request");
    ngx_http_darkroom_sigv4_add(scope, "", 1);

    if (scope->failed) {
        return 0;
    }

    ngx_http_darkroom_sigv4_str(cred, req->access_key);
    ngx_http_darkroom_sigv4_str(cred, "/");
    ngx_http_darkroom_sigv4_add(cred, scope->data, scope->len);

    return !cred->failed;
}


/* the canonical query string: every parameter encoded, sorted by name */

static int
ngx_http_darkroom_sigv4_query(const ngx_http_darkroom_sigv4_t *req,
    const char *credential, const char *stamp,
    ngx_http_darkroom_sigv4_buf_t *q)
{
    int                              ok;
    size_t                           i, n;
    char                             expires[16];
    ngx_http_darkroom_sigv4_pair_t  *qp;

    qp = calloc(NGX_HTTP_DARKROOM_SIGV4_PAIRS + req->nparams,
                sizeof(ngx_http_darkroom_sigv4_pair_t));
    if (qp == NULL) {
        return 0;
    }

    snprintf(expires, sizeof(expires), "%u", req->expires);

    n = 0;

    ok = ngx_http_darkroom_sigv4_pair(qp, &n, "X-Amz-Algorithm",
                                      "AWS4-HMAC-SHA256")
         && ngx_http_darkroom_sigv4_pair(qp, &n, "X-Amz-Credential",
                                         credential)
         && ngx_http_darkroom_sigv4_pair(qp, &n, "X-Amz-Date", stamp)
         && ngx_http_darkroom_sigv4_pair(qp, &n, "X-Amz-Expires", expires)
         && (req->session_token == NULL
             || ngx_http_darkroom_sigv4_pair(qp, &n, "X-Amz-Security-Token",
                                             req->session_token))
         && ngx_http_darkroom_sigv4_pair(qp, &n, "X-Amz-SignedHeaders",
                                         "host");

    for (i = 0; ok && i < req->nparams; i++) {
        ok = ngx_http_darkroom_sigv4_pair(qp, &n, req->params[i].name,
                                          req->params[i].value);
    }

    if (ok) {
        qsort(qp, n, sizeof(ngx_http_darkroom_sigv4_pair_t),
              ngx_http_darkroom_sigv4_pair_cmp);

        for (i = 0; i < n; i++) {
            if (i) {
                ngx_http_darkroom_sigv4_str(q, "&");
            }

            ngx_http_darkroom_sigv4_str(q, qp[i].name);
            ngx_http_darkroom_sigv4_str(q, "=");
            ngx_http_darkroom_sigv4_str(q, qp[i].value);
        }

        ok = !q->failed;
    }

    for (i = 0; i < n; i++) {
        free(qp[i].name);
        free(qp[i].value);
    }

    free(qp);

    return ok;
}


/* one query parameter, encoded; on failure n still counts it for freeing */

static int
ngx_http_darkroom_sigv4_pair(ngx_http_darkroom_sigv4_pair_t *qp, size_t *n,
    const char *name, const char *value)
{
    ngx_http_darkroom_sigv4_pair_t  *p;

    p = &qp[(*n)++];

    p->name = ngx_http_darkroom_sigv4_encoded(name);
    p->value = ngx_http_darkroom_sigv4_encoded(value);

    return p->name != NULL && p->value != NULL;
}


/* hex SHA-256 of the canonical request */

static int
ngx_http_darkroom_sigv4_canonical(const ngx_http_darkroom_sigv4_t *req,
    ngx_http_darkroom_sigv4_buf_t *q, char *hex)
{
    int                             ok;
    unsigned int                    dlen;
    unsigned char                   digest[EVP_MAX_MD_SIZE];
    ngx_http_darkroom_sigv4_buf_t   cr;

    memset(&cr, 0, sizeof(ngx_http_darkroom_sigv4_buf_t));

    ngx_http_darkroom_sigv4_str(&cr, req->method ? req->method : "GET");
    ngx_http_darkroom_sigv4_str(&cr, "\n");
    ngx_http_darkroom_sigv4_enc(&cr, req->path, 1);
    ngx_http_darkroom_sigv4_str(&cr, "\n");
    ngx_http_darkroom_sigv4_add(&cr, q->data, q->len);
    ngx_http_darkroom_sigv4_str(&cr, "\nhost:");
    ngx_http_darkroom_sigv4_str(&cr, req->host);
    ngx_http_darkroom_sigv4_str(&cr, "\n\nhost\nUNSIGNED-PAYLOAD");

    ok = !cr.failed
         && EVP_Digest(cr.data, cr.len, digest, &dlen, EVP_sha256(), NULL)
            == 1
         && dlen == 32;

    free(cr.data);

    if (ok) {
        ngx_http_darkroom_sigv4_hex(digest, 32, hex);
    }

    return ok;
}


/* the hex HMAC of the string to sign with the signing key */

static int
ngx_http_darkroom_sigv4_signature(const ngx_http_darkroom_sigv4_t *req,
    const char *date, const char *stamp, const char *scope, const char *hash,
    char *hex)
{
    int                             ok;
    unsigned char                   key[32], mac[32];
    ngx_http_darkroom_sigv4_buf_t   sts;

    memset(&sts, 0, sizeof(ngx_http_darkroom_sigv4_buf_t));

    ngx_http_darkroom_sigv4_str(&sts, "AWS4-HMAC-SHA256\n");
    ngx_http_darkroom_sigv4_str(&sts, stamp);
    ngx_http_darkroom_sigv4_str(&sts, "\n");
    ngx_http_darkroom_sigv4_str(&sts, scope);
    ngx_http_darkroom_sigv4_str(&sts, "\n");
    ngx_http_darkroom_sigv4_str(&sts, hash);
    ngx_http_darkroom_sigv4_add(&sts, "", 1);

    ok = !sts.failed
         && ngx_http_darkroom_sigv4_key(req, date, key)
         && ngx_http_darkroom_sigv4_hmac(key, 32, sts.data, mac);

    OPENSSL_cleanse(key, sizeof(key));
    free(sts.data);

    if (ok) {
        ngx_http_darkroom_sigv4_hex(mac, 32, hex);
    }

    return ok;
}


/* the signing key: see the top of the file */

static int
ngx_http_darkroom_sigv4_key(const ngx_http_darkroom_sigv4_t *req,
    const char *date, unsigned char *key)
{
    int             ok;
    char           *secret;
    size_t          n;
    unsigned char   k[32];

    n = strlen(req->secret_key);

    secret = malloc(n + 4);
    if (secret == NULL) {
        return 0;
    }

    memcpy(secret, "AWS4", 4);
    memcpy(secret + 4, req->secret_key, n);

    ok = ngx_http_darkroom_sigv4_hmac((unsigned char *) secret, n + 4, date,
                                      k)
         && ngx_http_darkroom_sigv4_hmac(k, 32, req->region, key)
         && ngx_http_darkroom_sigv4_hmac(key, 32, req->service, k)
         && ngx_http_darkroom_sigv4_hmac(k, 32, "aws4_request", key);

    OPENSSL_cleanse(secret, n + 4);
    free(secret);
    OPENSSL_cleanse(k, sizeof(k));

    return ok;
}


/* a growing string: a failure sticks, so steps check once at their end */

static void
ngx_http_darkroom_sigv4_add(ngx_http_darkroom_sigv4_buf_t *b, const char *s,
    size_t len)
{
    char    *p;
    size_t   cap;

    /* nothing to add: memcpy() to a still NULL data would be undefined */

    if (b->failed || len == 0) {
        return;
    }

    if (b->len + len > b->cap) {
        cap = (b->cap ? b->cap * 2 : 256);

        while (cap < b->len + len) {
            cap *= 2;
        }

        p = realloc(b->data, cap);
        if (p == NULL) {
            b->failed = 1;
            return;
        }

        b->data = p;
        b->cap = cap;
    }

    memcpy(b->data + b->len, s, len);
    b->len += len;
}


static void
ngx_http_darkroom_sigv4_str(ngx_http_darkroom_sigv4_buf_t *b, const char *s)
{
    ngx_http_darkroom_sigv4_add(b, s, strlen(s));
}


/* SigV4 URI encoding: unreserved characters kept, the rest %XX */

static void
ngx_http_darkroom_sigv4_enc(ngx_http_darkroom_sigv4_buf_t *b, const char *s,
    int slash)
{
    char           e[3];
    unsigned char  c;

    static const char  hex[] = "0123456789ABCDEF";

    for ( /* void */ ; *s; s++) {
        c = (unsigned char) *s;

        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
            || (c >= '0' && c <= '9')
            || c == '-' || c == '.' || c == '_' || c == '~'
            || (slash && c == '/'))
        {
            ngx_http_darkroom_sigv4_add(b, (char *) &c, 1);
            continue;
        }

        e[0] = '%';
        e[1] = hex[c >> 4];
        e[2] = hex[c & 0x0f];
        ngx_http_darkroom_sigv4_add(b, e, 3);
    }
}


/* s encoded, as a string of its own (malloc()), or NULL */

static char *
ngx_http_darkroom_sigv4_encoded(const char *s)
{
    ngx_http_darkroom_sigv4_buf_t  b;

    memset(&b, 0, sizeof(ngx_http_darkroom_sigv4_buf_t));

    ngx_http_darkroom_sigv4_enc(&b, s, 0);
    ngx_http_darkroom_sigv4_add(&b, "", 1);

    if (b.failed) {
        free(b.data);
        return NULL;
    }

    return b.data;
}


static int
ngx_http_darkroom_sigv4_pair_cmp(const void *a, const void *b)
{
    int                                    rc;
    const ngx_http_darkroom_sigv4_pair_t  *x = a, *y = b;

    rc = strcmp(x->name, y->name);

    return rc ? rc : strcmp(x->value, y->value);
}


static void
ngx_http_darkroom_sigv4_hex(const unsigned char *p, size_t len, char *out)
{
    size_t  i;

    static const char  hex[] = "0123456789abcdef";

    for (i = 0; i < len; i++) {
        out[2 * i] = hex[p[i] >> 4];
        out[2 * i + 1] = hex[p[i] & 0x0f];
    }

    out[2 * len] = '\0';
}


static int
ngx_http_darkroom_sigv4_hmac(const unsigned char *key, size_t key_len,
    const char *msg, unsigned char *out)
{
    unsigned int  len;

    len = 0;

    return HMAC(EVP_sha256(), key, (int) key_len,
                (const unsigned char *) msg, strlen(msg), out, &len)
               != NULL
           && len == 32;
}
