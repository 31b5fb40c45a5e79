/* fuzz-sources: src/shop/ngx_http_darkroom_stripe_sig.c */
/* fuzz-libs: -lcrypto -lpthread */

/*
 * darkroom: fuzz the Stripe-Signature parser and verifier.  The input is
 * "<header>\n<body>".  Whatever the header, verify must not crash and must
 * answer one of its codes; a header that passes must hold a v1 made with
 * the secret.  And the body signed by ngx_http_darkroom_stripe_sign() must
 * verify, while the same signature over the body with one byte more must
 * not.
 */


#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_http_darkroom_stripe_sig.h"


#define NOW        1700000000LL
#define TOLERANCE  300LL


static void
check(int ok)
{
    if (!ok) {
        abort();
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                                 rc;
    char                                sig[128];
    size_t                              hlen, blen;
    unsigned char                      *body2;
    const uint8_t                      *nl, *body;
    ngx_http_darkroom_stripe_secret_t   secrets[2];

    static const char  one[] = "whsec_fuzz_one";
    static const char  two[] = "whsec_fuzz_two";

    secrets[0].data = (const unsigned char *) one;
    secrets[0].len = sizeof(one) - 1;
    secrets[1].data = (const unsigned char *) two;
    secrets[1].len = sizeof(two) - 1;

    nl = memchr(data, '\n', size);
    hlen = nl ? (size_t) (nl - data) : size;
    body = nl ? nl + 1 : data + size;
    blen = size - (body - data);

    rc = ngx_http_darkroom_stripe_verify(data, hlen, body, blen, secrets, 2,
                                         NOW, TOLERANCE);
    check(rc >= NGX_HTTP_DARKROOM_STRIPE_SIG_OK
          && rc <= NGX_HTTP_DARKROOM_STRIPE_SIG_ERROR);

    /* round trip: what ngx_http_darkroom_stripe_sign() makes, verify accepts */

    rc = ngx_http_darkroom_stripe_sign(&secrets[1], NOW - 10, body, blen,
                                       sig, sizeof(sig));
    check(rc > 0);

    rc = ngx_http_darkroom_stripe_verify((const unsigned char *) sig,
                                         strlen(sig), body, blen, secrets, 2,
                                         NOW, TOLERANCE);
    check(rc == NGX_HTTP_DARKROOM_STRIPE_SIG_OK);

    rc = ngx_http_darkroom_stripe_verify((const unsigned char *) sig,
                                         strlen(sig), body, blen, secrets, 1,
                                         NOW, TOLERANCE);
    check(rc == NGX_HTTP_DARKROOM_STRIPE_SIG_MISMATCH);

    body2 = malloc(blen + 1);
    check(body2 != NULL);
    memcpy(body2, body, blen);
    body2[blen] = 'x';

    rc = ngx_http_darkroom_stripe_verify((const unsigned char *) sig,
                                         strlen(sig), body2, blen + 1,
                                         secrets, 2, NOW, TOLERANCE);
    check(rc == NGX_HTTP_DARKROOM_STRIPE_SIG_MISMATCH);

    free(body2);

    return 0;
}
