
/*
 * darkroom: Stripe webhook signatures, as Stripe documents them.
 *
 * Stripe-Signature: t=<unix time>,v1=<hex>[,v1=<hex>...][,v0=<hex>]
 * v1 is HMAC-SHA256 keyed with the whole endpoint secret ("whsec_..."), over
 * "<t>.<raw body>".  Any v1 matching any configured secret passes; v0 and
 * unknown schemes are ignored.  The timestamp must be within the tolerance
 * either way, so a captured request cannot be replayed later.
 *
 * Plain C with no nginx inside, so t/unit tests it on its own.
 */


#include "ngx_http_darkroom_stripe_sig.h"

#include <string.h>
#include <stdlib.h>
#include <stdio.h>
#include <pthread.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>


#define DR_STRIPE_MAX_V1  8


static EVP_MAC         *dr_stripe_hmac;
static pthread_once_t   dr_stripe_hmac_once = PTHREAD_ONCE_INIT;


/* the signed timestamp and the v1 signatures Stripe-Signature carries */

typedef struct {
    long long              ts;
    const unsigned char   *tval;          /* the timestamp's digits */
    size_t                 tlen;
    size_t                 nv1;
    unsigned char          v1[DR_STRIPE_MAX_V1][32];
} dr_stripe_header_t;


static int dr_stripe_header_parse(const unsigned char *header,
    size_t header_len, dr_stripe_header_t *h);
static int dr_hex_decode(const unsigned char *hex, size_t len,
    unsigned char *out);
static int dr_stripe_mac(const ngx_http_darkroom_stripe_secret_t *secret,
    const unsigned char *ts, size_t ts_len, const unsigned char *body,
    size_t body_len, unsigned char *mac);


int
ngx_http_darkroom_stripe_verify(const unsigned char *header,
    size_t header_len, const unsigned char *body, size_t body_len,
    const ngx_http_darkroom_stripe_secret_t *secrets, size_t nsecrets,
    long long now, long long tolerance)
{
    int                  rc, matched;
    size_t               i, k;
    unsigned char        mac[32];
    dr_stripe_header_t   h;

    if (header == NULL || header_len == 0) {
        return NGX_HTTP_DARKROOM_STRIPE_SIG_MISSING;
    }

    rc = dr_stripe_header_parse(header, header_len, &h);
    if (rc != NGX_HTTP_DARKROOM_STRIPE_SIG_OK) {
        return rc;
    }

    matched = 0;

    for (i = 0; i < nsecrets; i++) {
        if (dr_stripe_mac(&secrets[i], h.tval, h.tlen, body, body_len, mac)
            != 0)
        {
            return NGX_HTTP_DARKROOM_STRIPE_SIG_ERROR;
        }

        for (k = 0; k < h.nv1; k++) {
            matched |= (CRYPTO_memcmp(mac, h.v1[k], 32) == 0);
        }
    }

    if (!matched) {
        return NGX_HTTP_DARKROOM_STRIPE_SIG_MISMATCH;
    }

    if (now - h.ts > tolerance || h.ts - now > tolerance) {
        return NGX_HTTP_DARKROOM_STRIPE_SIG_STALE;
    }

    return NGX_HTTP_DARKROOM_STRIPE_SIG_OK;
}


/* t=<digits> once, any number of v1=<64 hex>; other schemes are skipped */

static int
dr_stripe_header_parse(const unsigned char *header, size_t header_len,
    dr_stripe_header_t *h)
{
    int                   found_t;
    size_t                k, len;
    const unsigned char  *p, *end, *item, *eq;

    found_t = 0;
    h->nv1 = 0;
    h->ts = 0;
    h->tval = NULL;
    h->tlen = 0;

    p = header;
    end = header + header_len;

    while (p < end) {
        item = p;

        while (p < end && *p != ',') {
            p++;
        }

        len = p - item;
        p++;

        while (len && *item == ' ') {
            item++;
            len--;
        }

        eq = memchr(item, '=', len);
        if (eq == NULL) {
            return NGX_HTTP_DARKROOM_STRIPE_SIG_MALFORMED;
        }

        if (eq - item == 1 && item[0] == 't') {
            if (found_t) {
                return NGX_HTTP_DARKROOM_STRIPE_SIG_MALFORMED;
            }

            h->tval = eq + 1;
            h->tlen = item + len - h->tval;

            if (h->tlen == 0 || h->tlen > 12) {
                return NGX_HTTP_DARKROOM_STRIPE_SIG_MALFORMED;
            }

            for (k = 0; k < h->tlen; k++) {
                if (h->tval[k] < '0' || h->tval[k] > '9') {
                    return NGX_HTTP_DARKROOM_STRIPE_SIG_MALFORMED;
                }

                h->ts = h->ts * 10 + (h->tval[k] - '0');
            }

            found_t = 1;

        } else if (eq - item == 2 && item[0] == 'v' && item[1] == '1') {
            if (item + len - (eq + 1) == 64
                && h->nv1 < DR_STRIPE_MAX_V1
                && dr_hex_decode(eq + 1, 64, h->v1[h->nv1]) == 0)
            {
                h->nv1++;
            }
        }

        /* v0 and schemes Stripe may add later are not ours to check */
    }

    if (!found_t) {
        return NGX_HTTP_DARKROOM_STRIPE_SIG_MALFORMED;
    }

    if (h->nv1 == 0) {
        return NGX_HTTP_DARKROOM_STRIPE_SIG_NO_V1;
    }

    return NGX_HTTP_DARKROOM_STRIPE_SIG_OK;
}


/* the header a sender computes: for tests and the sandbox-free tools */

int
ngx_http_darkroom_stripe_sign(const ngx_http_darkroom_stripe_secret_t *secret,
    long long ts, const unsigned char *body, size_t body_len, char *out,
    size_t size)
{
    int            n;
    char           tbuf[24];
    size_t         i;
    unsigned char  mac[32];

    static const char  hex[] = "0123456789abcdef";

    n = snprintf(tbuf, sizeof(tbuf), "%lld", ts);

    if (dr_stripe_mac(secret, (const unsigned char *) tbuf, (size_t) n,
                      body, body_len, mac)
        != 0)
    {
        return -1;
    }

    if (size < (size_t) n + 6 + 64 + 1) {
        return -1;
    }

    n = snprintf(out, size, "t=%s,v1=", tbuf);

    for (i = 0; i < 32; i++) {
        out[n++] = hex[mac[i] >> 4];
        out[n++] = hex[mac[i] & 0xf];
    }

    out[n] = '\0';

    return n;
}


static void
dr_stripe_hmac_fetch(void)
{
    dr_stripe_hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
}


static int
dr_stripe_mac(const ngx_http_darkroom_stripe_secret_t *secret,
    const unsigned char *ts, size_t ts_len, const unsigned char *body,
    size_t body_len, unsigned char *mac)
{
    int            rc;
    size_t         len;
    EVP_MAC_CTX   *ctx;
    OSSL_PARAM     params[2];

    /* fetched once: an EVP_MAC is safe to share between threads */

    pthread_once(&dr_stripe_hmac_once, dr_stripe_hmac_fetch);

    if (dr_stripe_hmac == NULL) {
        return -1;
    }

    ctx = EVP_MAC_CTX_new(dr_stripe_hmac);
    if (ctx == NULL) {
        return -1;
    }

    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
                                                 (char *) "SHA256", 0);
    params[1] = OSSL_PARAM_construct_end();

    rc = -1;

    if (EVP_MAC_init(ctx, secret->data, secret->len, params)
        && EVP_MAC_update(ctx, ts, ts_len)
        && EVP_MAC_update(ctx, (const unsigned char *) ".", 1)
        && EVP_MAC_update(ctx, body, body_len)
        && EVP_MAC_final(ctx, mac, &len, 32)
        && len == 32)
    {
        rc = 0;
    }

    EVP_MAC_CTX_free(ctx);

    return rc;
}


static int
dr_hex_decode(const unsigned char *hex, size_t len, unsigned char *out)
{
    size_t         i;
    unsigned char  c, v;

    for (i = 0; i < len; i++) {
        c = hex[i];

        if (c >= '0' && c <= '9') {
            v = c - '0';

        } else if (c >= 'a' && c <= 'f') {
            v = c - 'a' + 10;

        } else if (c >= 'A' && c <= 'F') {
            v = c - 'A' + 10;

        } else {
            return -1;
        }

        if (i % 2 == 0) {
            out[i / 2] = v << 4;

        } else {
            out[i / 2] |= v;
        }
    }

    return 0;
}
