/* fuzz-sources: src/media/ngx_http_darkroom_sigv4.c */

/*
 * darkroom: fuzz target for SigV4 canonicalisation
 * (ngx_http_darkroom_sigv4.c).  The object key (from the download's path)
 * and the response-content-disposition value (from a client's filename)
 * are the untrusted parts; the rest is configuration, fuzzed too.
 *
 * Input: fields separated by "\n": key, disposition, host, region,
 * access key, secret key, session token (absent if empty), then 8 bytes:
 * the time and the expiry.  The URL must be as long as announced, and
 * contain only URL-safe bytes after the host (every other byte is
 * percent-encoded).  Any mismatch aborts (a finding).
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_http_darkroom_sigv4.h"


#define NFIELDS  7


static void
check(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "sigv4: %s\n", what);
        abort();
    }
}


static int
url_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
           || (c >= '0' && c <= '9') || strchr("-._~%/?=&", c) != NULL;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                               i;
    char                             *f[NFIELDS], *copy, *p, *end, *url;
    char                              hash[65];
    size_t                            len, n, hlen;
    uint32_t                          t, e;
    ngx_http_darkroom_sigv4_t         req;
    ngx_http_darkroom_sigv4_param_t   param;

    if (size < 8) {
        return 0;
    }

    memcpy(&t, data + size - 8, 4);
    memcpy(&e, data + size - 4, 4);
    size -= 8;

    copy = malloc(size + 1);
    if (copy == NULL) {
        return 0;
    }

    memcpy(copy, data, size);
    copy[size] = '\0';

    p = copy;
    end = copy + strlen(copy);       /* C strings: stop at a NUL */

    for (i = 0; i < NFIELDS; i++) {
        f[i] = p;
        p = memchr(p, '\n', end - p);

        if (p == NULL) {
            p = end;

        } else {
            *p++ = '\0';
        }
    }

    /* the key as media_s3 builds the path: "/" then the bucket and key */

    n = strlen(f[0]);
    url = malloc(n + 2);
    check(url != NULL, "no memory");
    url[0] = '/';
    memcpy(url + 1, f[0], n + 1);

    memset(&req, 0, sizeof(req));
    req.scheme = "https";
    req.method = "GET";
    req.path = url;
    req.host = f[2][0] ? f[2] : "bucket.s3.amazonaws.com";
    req.region = f[3][0] ? f[3] : "us-east-1";
    req.service = "s3";
    req.access_key = f[4];
    req.secret_key = f[5];
    req.session_token = f[6][0] ? f[6] : NULL;
    req.now = (time_t) t;
    req.expires = e % (NGX_HTTP_DARKROOM_SIGV4_EXPIRES_MAX + 2);

    if (f[1][0]) {
        param.name = "response-content-disposition";
        param.value = f[1];
        req.params = &param;
        req.nparams = 1;
    }

    len = ngx_http_darkroom_sigv4_presign(&req, NULL, 0, NULL);

    if (len) {
        p = malloc(len + 1);
        check(p != NULL, "no memory");

        n = ngx_http_darkroom_sigv4_presign(&req, p, len, hash);
        check(n == len, "URL length differs from the announced one");
        check(strlen(hash) == 64, "canonical request hash not 64 hex");

        /* after "https://<host>", everything is encoded */

        hlen = sizeof("https://") - 1 + strlen(req.host);
        check(n > hlen && memcmp(p, "https://", 8) == 0,
              "URL does not start with the scheme and host");

        for (i = 0; (size_t) (hlen + i) < n; i++) {
            check(url_char((unsigned char) p[hlen + i]),
                  "a raw byte in the URL's path or query");
        }

        check(n > 81 && memcmp(p + n - 81, "&X-Amz-Signature=", 17) == 0,
              "URL does not end with the signature");

        free(p);

    } else {
        check(req.expires == 0
              || req.expires > NGX_HTTP_DARKROOM_SIGV4_EXPIRES_MAX,
              "presign failed on valid input");
    }

    free(url);
    free(copy);

    return 0;
}
