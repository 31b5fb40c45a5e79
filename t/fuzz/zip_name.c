/* fuzz-sources: src/gallery/ngx_http_darkroom_zip.c src/core/ngx_http_darkroom_utf8.c */

/*
 * darkroom: fuzz target for ZIP entry names (ngx_http_darkroom_zip.c), the
 * names a photographer gives photos, which end up as files on a client's
 * disk.
 *
 * Input: names separated by "\n" (at most 64).  Each name's safe form must
 * be valid UTF-8 of at most NGX_HTTP_DARKROOM_ZIP_SAFE_UNITS UTF-16 units,
 * with no character Windows refuses, no leading dot, no trailing dot or
 * space, not a reserved device name, not empty, and the same when made
 * safe again.  Then all are made unique: every name keeps those
 * properties (but for length, which the suffix may add to), no two are
 * equal ASCII case-insensitively, and the planned archive's headers are
 * as long as announced.  Any mismatch aborts (a finding).
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_http_darkroom_zip.h"


#define MAX_NAMES  64


static void
check(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "zip_name: %s\n", what);
        abort();
    }
}


/* UTF-16 units of valid UTF-8, or -1 */

static long
units(const unsigned char *p, size_t n)
{
    long      u;
    size_t    i, k, len;
    uint32_t  c;

    u = 0;

    for (i = 0; i < n; i += len) {
        if (p[i] < 0x80) {
            len = 1;
            c = p[i];

        } else if (p[i] >= 0xc2 && p[i] <= 0xdf) {
            len = 2;
            c = p[i] & 0x1f;

        } else if (p[i] >= 0xe0 && p[i] <= 0xef) {
            len = 3;
            c = p[i] & 0x0f;

        } else if (p[i] >= 0xf0 && p[i] <= 0xf4) {
            len = 4;
            c = p[i] & 0x07;

        } else {
            return -1;
        }

        if (n - i < len) {
            return -1;
        }

        for (k = 1; k < len; k++) {
            if ((p[i + k] & 0xc0) != 0x80) {
                return -1;
            }

            c = (c << 6) | (p[i + k] & 0x3f);
        }

        if ((len == 2 && c < 0x80) || (len == 3 && c < 0x800)
            || (c >= 0xd800 && c <= 0xdfff) || (len == 4 && c < 0x10000)
            || c > 0x10ffff)
        {
            return -1;
        }

        u += (c >= 0x10000) ? 2 : 1;
    }

    return u;
}


static int
reserved(const unsigned char *p, size_t n)
{
    size_t       i, k;
    char         b[16];
    const char  *dev[] = { "CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$" };

    for (k = 0; k < n && p[k] != '.'; k++) { /* void */ }

    while (k && p[k - 1] == ' ') {
        k--;
    }

    if (k >= sizeof(b)) {
        return 0;
    }

    for (i = 0; i < k; i++) {
        b[i] = (p[i] >= 'a' && p[i] <= 'z') ? p[i] - 0x20 : p[i];
    }

    b[k] = '\0';

    for (i = 0; i < sizeof(dev) / sizeof(dev[0]); i++) {
        if (strcmp(b, dev[i]) == 0) {
            return 1;
        }
    }

    if (strncmp(b, "COM", 3) != 0 && strncmp(b, "LPT", 3) != 0) {
        return 0;
    }

    return (k == 4 && b[3] >= '0' && b[3] <= '9')
           || (k == 5 && (unsigned char) b[3] == 0xc2
               && ((unsigned char) b[4] == 0xb9
                   || (unsigned char) b[4] == 0xb2
                   || (unsigned char) b[4] == 0xb3));
}


static void
check_safe(const unsigned char *p, size_t n, int whole)
{
    size_t  i;
    long    u;

    check(n > 0, "empty name");
    u = units(p, n);
    check(u >= 0, "not UTF-8");
    check(!whole || u <= NGX_HTTP_DARKROOM_ZIP_SAFE_UNITS, "too long");
    check(n <= NGX_HTTP_DARKROOM_ZIP_NAME_MAX, "longer than a ZIP name");
    check(p[0] != '.', "a leading dot");
    check(p[n - 1] != '.' && p[n - 1] != ' ', "a trailing dot or space");
    check(!reserved(p, n), "a reserved device name");

    for (i = 0; i < n; i++) {
        check(p[i] >= 0x20 && p[i] != 0x7f
              && strchr("<>:\"/\\|?*", p[i]) == NULL,
              "a character Windows refuses");
    }
}


static int
same(const ngx_http_darkroom_zip_entry_t *a,
    const ngx_http_darkroom_zip_entry_t *b)
{
    size_t  i;
    int     x, y;

    if (a->name_len != b->name_len) {
        return 0;
    }

    for (i = 0; i < a->name_len; i++) {
        x = a->name[i];
        y = b->name[i];
        x = (x >= 'A' && x <= 'Z') ? x | 0x20 : x;
        y = (y >= 'A' && y <= 'Z') ? y | 0x20 : y;

        if (x != y) {
            return 0;
        }
    }

    return 1;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t                          i, j, n, len, len2, at;
    unsigned char                  *out, *again, *names, *buf;
    ngx_http_darkroom_zip_t         zip;
    ngx_http_darkroom_zip_entry_t   e[MAX_NAMES];

    n = 0;
    at = 0;

    for (i = 0; i <= size && n < MAX_NAMES; i++) {
        if (i == size || data[i] == '\n') {
            memset(&e[n], 0, sizeof(e[n]));
            e[n].name = data + at;
            e[n].name_len = i - at;
            e[n].size = n;
            n++;
            at = i + 1;
        }
    }

    /* exactly the room promised, so ASan sees any overrun */

    for (i = 0; i < n; i++) {
        len = e[i].name_len < NGX_HTTP_DARKROOM_ZIP_SAFE_MAX
              ? e[i].name_len : NGX_HTTP_DARKROOM_ZIP_SAFE_MAX;
        out = malloc(len + 5);
        again = malloc(NGX_HTTP_DARKROOM_ZIP_SAFE_MAX + 5);
        check(out != NULL && again != NULL, "no memory");

        len = ngx_http_darkroom_zip_safe_name(e[i].name, e[i].name_len, out);
        check(len >= 1 && len <= NGX_HTTP_DARKROOM_ZIP_SAFE_MAX,
              "length out of bounds");
        check_safe(out, len, 1);

        len2 = ngx_http_darkroom_zip_safe_name(out, len, again);
        check(len2 == len && memcmp(out, again, len) == 0, "not idempotent");

        free(out);
        free(again);
    }

    names = ngx_http_darkroom_zip_unique(e, n);
    check(names != NULL, "no memory for names");

    for (i = 0; i < n; i++) {
        check_safe(e[i].name, e[i].name_len, 0);

        for (j = 0; j < i; j++) {
            check(!same(&e[i], &e[j]), "two names the same");
        }
    }

    check(ngx_http_darkroom_zip_plan(e, n, &zip) == 0, "plan refused");

    buf = malloc(NGX_HTTP_DARKROOM_ZIP_CENTRAL_MAX);
    check(buf != NULL, "no memory");

    for (i = 0; i < n; i++) {
        check(ngx_http_darkroom_zip_local(&e[i], buf)
              == ngx_http_darkroom_zip_local_len(&e[i]), "local length");
        check(ngx_http_darkroom_zip_central(&e[i], buf)
              == ngx_http_darkroom_zip_central_len(&e[i]), "central length");
    }

    free(buf);
    free(names);

    return 0;
}
