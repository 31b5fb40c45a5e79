/* fuzz-sources: src/gallery/ngx_http_darkroom_gallery_cookie.c */

/*
 * darkroom: fuzz target for the gallery cookie
 * (ngx_http_darkroom_gallery_cookie.c), the Cookie header a client sends.
 *
 * Input: a Cookie header's value.  Every darkroom_gallery value found must
 * lie inside the input, after the one before; each that parses must print
 * back as exactly itself ("%llu.%u.%lld.<sig>": one form per cookie, the
 * one signed), with numbers in range.  The whole input is parsed as a value
 * too, with the same checks.  The same for the visitor cookie
 * (darkroom_visitor, "%llu.%u.%llu.%lld.<sig>").  Any mismatch aborts (a
 * finding).
 */

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_http_darkroom_gallery_cookie.h"


static void
check(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "gallery_cookie: %s\n", what);
        abort();
    }
}


static void
value(const unsigned char *v, size_t len)
{
    int                                  n;
    char                                 buf[128];
    ngx_http_darkroom_gallery_cookie_t   c;

    if (ngx_http_darkroom_gallery_cookie_parse(v, len, &c) != 0) {
        return;
    }

    check(c.id >= 1 && c.id <= INT64_MAX, "id out of range");
    check(c.generation >= 1 && c.generation <= INT32_MAX,
          "generation out of range");
    check(c.expires >= 1, "expiry out of range");
    check(c.sig >= v && c.sig + NGX_HTTP_DARKROOM_GALLERY_COOKIE_SIG_LEN
                        == v + len, "signature not at the end");

    n = snprintf(buf, sizeof(buf), "%" PRIu64 ".%" PRIu32 ".%" PRId64 ".%.*s",
                 c.id, c.generation, c.expires,
                 NGX_HTTP_DARKROOM_GALLERY_COOKIE_SIG_LEN,
                 (const char *) c.sig);

    check(n > 0 && (size_t) n == len && memcmp(buf, v, len) == 0,
          "a value that is not in its one form");
}


static void
visitor(const unsigned char *v, size_t len)
{
    int                                   n;
    char                                  buf[160];
    ngx_http_darkroom_gallery_visitor_t   c;

    if (ngx_http_darkroom_gallery_visitor_parse(v, len, &c) != 0) {
        return;
    }

    check(c.id >= 1 && c.id <= INT64_MAX, "visitor: id out of range");
    check(c.generation >= 1 && c.generation <= INT32_MAX,
          "visitor: generation out of range");
    check(c.visitor >= 1 && c.visitor <= INT64_MAX,
          "visitor: visitor out of range");
    check(c.expires >= 1, "visitor: expiry out of range");

    n = snprintf(buf, sizeof(buf),
                 "%" PRIu64 ".%" PRIu32 ".%" PRIu64 ".%" PRId64 ".%.*s",
                 c.id, c.generation, c.visitor, c.expires,
                 NGX_HTTP_DARKROOM_GALLERY_COOKIE_SIG_LEN,
                 (const char *) c.sig);

    check(n > 0 && (size_t) n == len && memcmp(buf, v, len) == 0,
          "visitor: a value that is not in its one form");
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t                vlen, n;
    unsigned char        *copy;
    const unsigned char  *pos, *end, *val, *last;

    /* a copy of exactly the input's size, so ASan sees any overread */

    copy = malloc(size ? size : 1);
    check(copy != NULL, "no memory");
    memcpy(copy, data, size);

    pos = copy;
    end = copy + size;
    last = copy;
    n = 0;

    while (ngx_http_darkroom_gallery_cookie_next(&pos, end, &val, &vlen)) {
        check(val >= last && val + vlen <= end, "a value outside the input");
        check(pos >= val + vlen && pos <= end, "no progress");
        check(n++ <= size, "more values than bytes");
        value(val, vlen);
        last = val + vlen;
    }

    check(pos == end, "did not reach the end");

    value(copy, size);

    pos = copy;
    last = copy;
    n = 0;

    while (ngx_http_darkroom_gallery_visitor_next(&pos, end, &val, &vlen)) {
        check(val >= last && val + vlen <= end,
              "visitor: a value outside the input");
        check(pos >= val + vlen && pos <= end, "visitor: no progress");
        check(n++ <= size, "visitor: more values than bytes");
        visitor(val, vlen);
        last = val + vlen;
    }

    check(pos == end, "visitor: did not reach the end");

    visitor(copy, size);

    free(copy);

    return 0;
}
