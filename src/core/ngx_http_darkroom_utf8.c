
/*
 * darkroom: the one UTF-8 decoder (RFC 3629), the pure part (see the
 * header).
 */


#include "ngx_http_darkroom_utf8.h"


size_t
ngx_http_darkroom_utf8_decode(const unsigned char *p, size_t n,
    uint32_t *cp)
{
    size_t    len, i;
    uint32_t  c, min;

    if (n == 0) {
        return 0;
    }

    if (p[0] < 0x80) {
        if (cp) {
            *cp = p[0];
        }

        return 1;
    }

    /* C0, C1 and F5..FF can only start overlong or too large forms */

    if (p[0] >= 0xc2 && p[0] <= 0xdf) {
        len = 2; c = p[0] & 0x1f; min = 0x80;

    } else if (p[0] >= 0xe0 && p[0] <= 0xef) {
        len = 3; c = p[0] & 0x0f; min = 0x800;

    } else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
        len = 4; c = p[0] & 0x07; min = 0x10000;

    } else {
        return 0;
    }

    if (n < len) {
        return 0;
    }

    for (i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            return 0;
        }

        c = (c << 6) | (p[i] & 0x3f);
    }

    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) {
        return 0;
    }

    if (cp) {
        *cp = c;
    }

    return len;
}


int
ngx_http_darkroom_utf8_valid(const unsigned char *p, size_t len)
{
    size_t  i, n;

    for (i = 0; i < len; i += n) {
        if (p[i] < 0x80) {
            n = 1;                  /* ASCII without a call: every path */
            continue;
        }

        n = ngx_http_darkroom_utf8_decode(p + i, len - i, NULL);

        if (n == 0) {
            return 0;
        }
    }

    return 1;
}
