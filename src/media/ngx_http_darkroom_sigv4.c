
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
    char    *data;
    size_t   len;
    size_t   cap;
    int      failed;
} dr_sb_t;


typedef struct {
    char    *name;      /* encoded */
    char    *value;     /* encoded */
} dr_qp_t;


static void dr_sb_add(dr_sb_t *sb, const char *s, size_t len);
static void dr_sb_str(dr_sb_t *sb, const char *s);
static void dr_sb_enc(dr_sb_t *sb, const char *s, int slash);
static char *dr_enc(const char *s);
static int dr_qp_cmp(const void *a, const void *b);
static void dr_hex(const unsigned char *p, size_t len, char *out);
static int dr_hmac(const unsigned char *key, size_t key_len, const char *msg,
    unsigned char *out);


size_t
ngx_http_darkroom_sigv4_presign(const ngx_http_darkroom_sigv4_t *req,
    char *buf, size_t size, char *hash)
{
    size_t          i, n, len;
    dr_qp_t        *qp;
    dr_sb_t         q, cr, sts, url, cred;
    struct tm       tm;
    unsigned int    dlen;
    unsigned char   digest[EVP_MAX_MD_SIZE], k[32], k2[32];
    char            date[9], stamp[17], expires[16], hex[65], *secret;

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
    snprintf(expires, sizeof(expires), "%u", req->expires);

    memset(&q, 0, sizeof(dr_sb_t));
    memset(&cr, 0, sizeof(dr_sb_t));
    memset(&sts, 0, sizeof(dr_sb_t));
    memset(&url, 0, sizeof(dr_sb_t));
    memset(&cred, 0, sizeof(dr_sb_t));

    len = 0;
    qp = NULL;
    n = 0;

    /* the credential: <access key>/<date>/<region>/<service>/aws4_request */

    dr_sb_str(&cred, req->access_key);
    dr_sb_str(&cred, "/");
    dr_sb_str(&cred, date);
    dr_sb_str(&cred, "/");
    dr_sb_str(&cred, req->region);
    dr_sb_str(&cred, "/");
    dr_sb_str(&cred, req->service);
    dr_sb_str(&cred, "/aws4_request");
    dr_sb_add(&cred, "", 1);

    if (cred.failed) {
        goto done;
    }

    qp = calloc(6 + req->nparams, sizeof(dr_qp_t));
    if (qp == NULL) {
        goto done;
    }

#define DR_QP(nm, val)                                                        \
    qp[n].name = dr_enc(nm);                                                  \
    qp[n].value = dr_enc(val);                                                \
    if (qp[n].name == NULL || qp[n].value == NULL) {                          \
        n++;                                                                  \
        goto done;                                                            \
    }                                                                         \
    n++

    DR_QP("X-Amz-Algorithm", "AWS4-HMAC-SHA256");
    DR_QP("X-Amz-Credential", cred.data);
    DR_QP("X-Amz-Date", stamp);
    DR_QP("X-Amz-Expires", expires);

    if (req->session_token) {
        DR_QP("X-Amz-Security-Token", req->session_token);
    }

    DR_QP("X-Amz-SignedHeaders", "host");

    for (i = 0; i < req->nparams; i++) {
        DR_QP(req->params[i].name, req->params[i].value);
    }

#undef DR_QP

    qsort(qp, n, sizeof(dr_qp_t), dr_qp_cmp);

    for (i = 0; i < n; i++) {
        if (i) {
            dr_sb_str(&q, "&");
        }

        dr_sb_str(&q, qp[i].name);
        dr_sb_str(&q, "=");
        dr_sb_str(&q, qp[i].value);
    }

    /* the canonical request */

    dr_sb_str(&cr, req->method ? req->method : "GET");
    dr_sb_str(&cr, "\n");
    dr_sb_enc(&cr, req->path, 1);
    dr_sb_str(&cr, "\n");
    dr_sb_add(&cr, q.data, q.len);
    dr_sb_str(&cr, "\nhost:");
    dr_sb_str(&cr, req->host);
    dr_sb_str(&cr, "\n\nhost\nUNSIGNED-PAYLOAD");

    if (cr.failed || q.failed) {
        goto done;
    }

    if (EVP_Digest(cr.data, cr.len, digest, &dlen, EVP_sha256(), NULL) != 1
        || dlen != 32)
    {
        goto done;
    }

    dr_hex(digest, 32, hex);

    if (hash) {
        memcpy(hash, hex, 65);
    }

    /* the string to sign */

    dr_sb_str(&sts, "AWS4-HMAC-SHA256\n");
    dr_sb_str(&sts, stamp);
    dr_sb_str(&sts, "\n");
    dr_sb_str(&sts, strchr(cred.data, '/') + 1);
    dr_sb_str(&sts, "\n");
    dr_sb_str(&sts, hex);
    dr_sb_add(&sts, "", 1);

    if (sts.failed) {
        goto done;
    }

    /* the signing key */

    n = strlen(req->secret_key);
    secret = malloc(n + 4);
    if (secret == NULL) {
        goto done;
    }

    memcpy(secret, "AWS4", 4);
    memcpy(secret + 4, req->secret_key, n);

    i = dr_hmac((unsigned char *) secret, n + 4, date, k)
        && dr_hmac(k, 32, req->region, k2)
        && dr_hmac(k2, 32, req->service, k)
        && dr_hmac(k, 32, "aws4_request", k2)
        && dr_hmac(k2, 32, sts.data, digest);

    OPENSSL_cleanse(secret, n + 4);
    free(secret);
    OPENSSL_cleanse(k, sizeof(k));
    OPENSSL_cleanse(k2, sizeof(k2));

    n = 0;

    if (!i) {
        goto done;
    }

    dr_hex(digest, 32, hex);

    /* the URL */

    dr_sb_str(&url, req->scheme ? req->scheme : "https");
    dr_sb_str(&url, "://");
    dr_sb_str(&url, req->host);
    dr_sb_enc(&url, req->path, 1);
    dr_sb_str(&url, "?");
    dr_sb_add(&url, q.data, q.len);
    dr_sb_str(&url, "&X-Amz-Signature=");
    dr_sb_str(&url, hex);

    if (url.failed) {
        goto done;
    }

    len = url.len;

    if (buf && len <= size) {
        memcpy(buf, url.data, len);
    }

done:

    if (qp) {
        for (i = 0; i < 6 + req->nparams; i++) {
            free(qp[i].name);
            free(qp[i].value);
        }

        free(qp);
    }

    free(q.data);
    free(cr.data);
    free(sts.data);
    free(url.data);
    free(cred.data);

    return len;
}


static void
dr_sb_add(dr_sb_t *sb, const char *s, size_t len)
{
    char    *p;
    size_t   cap;

    /* nothing to add: memcpy() to a still NULL data would be undefined */

    if (sb->failed || len == 0) {
        return;
    }

    if (sb->len + len > sb->cap) {
        cap = (sb->cap ? sb->cap * 2 : 256);

        while (cap < sb->len + len) {
            cap *= 2;
        }

        p = realloc(sb->data, cap);
        if (p == NULL) {
            sb->failed = 1;
            return;
        }

        sb->data = p;
        sb->cap = cap;
    }

    memcpy(sb->data + sb->len, s, len);
    sb->len += len;
}


static void
dr_sb_str(dr_sb_t *sb, const char *s)
{
    dr_sb_add(sb, s, strlen(s));
}


/* SigV4 URI encoding: unreserved characters kept, the rest %XX */

static void
dr_sb_enc(dr_sb_t *sb, const char *s, int slash)
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
            dr_sb_add(sb, (char *) &c, 1);
            continue;
        }

        e[0] = '%';
        e[1] = hex[c >> 4];
        e[2] = hex[c & 0x0f];
        dr_sb_add(sb, e, 3);
    }
}


static char *
dr_enc(const char *s)
{
    dr_sb_t  sb;

    memset(&sb, 0, sizeof(dr_sb_t));

    dr_sb_enc(&sb, s, 0);
    dr_sb_add(&sb, "", 1);

    if (sb.failed) {
        free(sb.data);
        return NULL;
    }

    return sb.data;
}


static int
dr_qp_cmp(const void *a, const void *b)
{
    int             rc;
    const dr_qp_t  *x = a, *y = b;

    rc = strcmp(x->name, y->name);

    return rc ? rc : strcmp(x->value, y->value);
}


static void
dr_hex(const unsigned char *p, size_t len, char *out)
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
dr_hmac(const unsigned char *key, size_t key_len, const char *msg,
    unsigned char *out)
{
    unsigned int  len;

    len = 0;

    return HMAC(EVP_sha256(), key, (int) key_len,
                (const unsigned char *) msg, strlen(msg), out, &len)
               != NULL
           && len == 32;
}
