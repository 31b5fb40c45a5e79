
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


#define DARKROOM_STRIPE_MAX_V1  8


static EVP_MAC         *darkroom_hmac;
static pthread_once_t   darkroom_hmac_once = PTHREAD_ONCE_INIT;


static int darkroom_hex_decode(const unsigned char *hex, size_t len,
    unsigned char *out);
static int darkroom_stripe_mac(const darkroom_secret_t *secret,
    const unsigned char *ts, size_t ts_len, const unsigned char *body,
    size_t body_len, unsigned char *mac);


int
darkroom_stripe_verify(const unsigned char *header, size_t header_len,
    const unsigned char *body, size_t body_len,
    const darkroom_secret_t *secrets, size_t nsecrets,
    long long now, long long tolerance)
{
    int                   found_t, matched;
    size_t                i, k, nv1, len, tlen;
    long long             ts;
    const unsigned char  *p, *end, *item, *eq, *tval;
    unsigned char         v1[DARKROOM_STRIPE_MAX_V1][32];
    unsigned char         mac[32];

    if (header == NULL || header_len == 0) {
        return DARKROOM_STRIPE_SIG_MISSING;
    }

    found_t = 0;
    nv1 = 0;
    ts = 0;
    tval = NULL;
    tlen = 0;

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
            return DARKROOM_STRIPE_SIG_MALFORMED;
        }

        if (eq - item == 1 && item[0] == 't') {
            if (found_t) {
                return DARKROOM_STRIPE_SIG_MALFORMED;
            }

            tval = eq + 1;
            tlen = item + len - tval;

            if (tlen == 0 || tlen > 12) {
                return DARKROOM_STRIPE_SIG_MALFORMED;
            }

            for (k = 0; k < tlen; k++) {
                if (tval[k] < '0' || tval[k] > '9') {
                    return DARKROOM_STRIPE_SIG_MALFORMED;
                }

                ts = ts * 10 + (tval[k] - '0');
            }

            found_t = 1;

        } else if (eq - item == 2 && item[0] == 'v' && item[1] == '1') {
            if (item + len - (eq + 1) == 64
                && nv1 < DARKROOM_STRIPE_MAX_V1
                && darkroom_hex_decode(eq + 1, 64, v1[nv1]) == 0)
            {
                nv1++;
            }
        }

        /* v0 and schemes Stripe may add later are not ours to check */
    }

    if (!found_t) {
        return DARKROOM_STRIPE_SIG_MALFORMED;
    }

    if (nv1 == 0) {
        return DARKROOM_STRIPE_SIG_NO_V1;
    }

    matched = 0;

    for (i = 0; i < nsecrets; i++) {
        if (darkroom_stripe_mac(&secrets[i], tval, tlen, body, body_len,
                                mac)
            != 0)
        {
            return DARKROOM_STRIPE_SIG_ERROR;
        }

        for (k = 0; k < nv1; k++) {
            matched |= (CRYPTO_memcmp(mac, v1[k], 32) == 0);
        }
    }

    if (!matched) {
        return DARKROOM_STRIPE_SIG_MISMATCH;
    }

    if (now - ts > tolerance || ts - now > tolerance) {
        return DARKROOM_STRIPE_SIG_STALE;
    }

    return DARKROOM_STRIPE_SIG_OK;
}


/* the header a sender computes: for tests and the sandbox-free tools */

int
darkroom_stripe_sign(const darkroom_secret_t *secret, long long ts,
    const unsigned char *body, size_t body_len, char *out, size_t size)
{
    int            n;
    char           tbuf[24];
    size_t         i;
    unsigned char  mac[32];

    static const char  hex[] = "0123456789abcdef";

    n = snprintf(tbuf, sizeof(tbuf), "%lld", ts);

    if (darkroom_stripe_mac(secret, (const unsigned char *) tbuf,
                            (size_t) n, body, body_len, mac)
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
darkroom_hmac_fetch(void)
{
    darkroom_hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
}


static int
darkroom_stripe_mac(const darkroom_secret_t *secret, const unsigned char *ts,
    size_t ts_len, const unsigned char *body, size_t body_len,
    unsigned char *mac)
{
    int            rc;
    size_t         len;
    EVP_MAC_CTX   *ctx;
    OSSL_PARAM     params[2];

    /* fetched once: an EVP_MAC is safe to share between threads */

    pthread_once(&darkroom_hmac_once, darkroom_hmac_fetch);

    if (darkroom_hmac == NULL) {
        return -1;
    }

    ctx = EVP_MAC_CTX_new(darkroom_hmac);
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
darkroom_hex_decode(const unsigned char *hex, size_t len, unsigned char *out)
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
