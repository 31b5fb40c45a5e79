
/*
 * darkroom: the cost of one signed link check without nginx around it:
 * parse the query, HMAC-SHA256 the canonical string, compare.  Built and run
 * by bench/media:
 *
 *   cc -O2 -Isrc/core -o /tmp/mv bench/media-verify.c src/core/ngx_http_darkroom_sign.c
 *       src/core/ngx_http_darkroom_utf8.c -lcrypto && /tmp/mv
 */


#include <stdio.h>
#include <string.h>
#include <time.h>

#include "ngx_http_darkroom_sign.h"


#define KEY  "0123456789abcdef0123456789abcdef"
#define N    2000000


int
main(void)
{
    int                            i, bad;
    double                         ns;
    unsigned char                  buf[512];
    struct timespec                a, b;
    ngx_http_darkroom_sign_link_t  link;

    static const char  args[] = "exp=1767225600&kid=k2025"
                                "&sig=L5ph-VwI0-UUnXHoVd1Sw7q-x5qrruTq3qqFV18vTPA";

    bad = 0;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &a);

    for (i = 0; i < N; i++) {
        link.path.data = (unsigned char *) "/photos/a.jpg";
        link.path.len = sizeof("/photos/a.jpg") - 1;

        if (ngx_http_darkroom_sign_path(link.path.data, link.path.len)
            != NGX_HTTP_DARKROOM_SIGN_OK
            || ngx_http_darkroom_sign_parse((unsigned char *) args,
                                            sizeof(args) - 1, &link, buf)
               != NGX_HTTP_DARKROOM_SIGN_OK
            || ngx_http_darkroom_sign_verify(&link, (unsigned char *) KEY,
                                             sizeof(KEY) - 1)
               != NGX_HTTP_DARKROOM_SIGN_OK)
        {
            bad++;
        }
    }

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &b);

    ns = ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / N;

    printf("%d checks, %.3f us per check%s\n", N, ns / 1000,
           bad ? " (FAILED)" : "");

    return bad ? 1 : 0;
}
