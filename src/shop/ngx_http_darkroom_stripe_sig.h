
/*
 * darkroom: Stripe webhook signatures (plain C, no nginx inside).
 */


#ifndef _NGX_HTTP_DARKROOM_STRIPE_SIG_H_INCLUDED_
#define _NGX_HTTP_DARKROOM_STRIPE_SIG_H_INCLUDED_


#include <stddef.h>


typedef struct {
    const unsigned char  *data;
    size_t                len;
} ngx_http_darkroom_stripe_secret_t;


#define NGX_HTTP_DARKROOM_STRIPE_SIG_OK         0
#define NGX_HTTP_DARKROOM_STRIPE_SIG_MISSING    1   /* no header */
#define NGX_HTTP_DARKROOM_STRIPE_SIG_MALFORMED  2   /* no t=, not k=v */
#define NGX_HTTP_DARKROOM_STRIPE_SIG_NO_V1      3   /* no v1 at all */
#define NGX_HTTP_DARKROOM_STRIPE_SIG_MISMATCH   4   /* no v1 matches */
#define NGX_HTTP_DARKROOM_STRIPE_SIG_STALE      5   /* out of tolerance */
#define NGX_HTTP_DARKROOM_STRIPE_SIG_ERROR      6   /* OpenSSL failed */


int ngx_http_darkroom_stripe_verify(const unsigned char *header,
    size_t header_len, const unsigned char *body, size_t body_len,
    const ngx_http_darkroom_stripe_secret_t *secrets, size_t nsecrets,
    long long now, long long tolerance);

int ngx_http_darkroom_stripe_sign(
    const ngx_http_darkroom_stripe_secret_t *secret, long long ts,
    const unsigned char *body, size_t body_len, char *out, size_t size);


#endif /* _NGX_HTTP_DARKROOM_STRIPE_SIG_H_INCLUDED_ */
