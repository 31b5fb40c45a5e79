
/*
 * darkroom: unit test of the one UTF-8 decoder (ngx_http_darkroom_utf8.c).
 * Prints TAP.  Built and run by t/300_media_unit.t (under ASan: each input
 * is decoded from an exact-size heap copy, so reading past n is caught).
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_http_darkroom_utf8.h"


typedef struct {
    const char  *bytes;
    size_t       n;
    size_t       len;       /* expected return */
    uint32_t     cp;        /* expected code point when len > 0 */
    const char  *name;
} case_t;


static int  n_test, n_failed;


static void
ok(int cond, const char *name)
{
    n_test++;

    if (!cond) {
        n_failed++;
    }

    printf("%sok %d - %s\n", cond ? "" : "not ", n_test, name);
}


/* decodes an exact-size heap copy of the first n bytes */

static size_t
decode(const char *bytes, size_t n, uint32_t *cp)
{
    size_t          len;
    unsigned char  *p;

    p = malloc(n ? n : 1);

    if (p == NULL) {
        abort();
    }

    memcpy(p, bytes, n);

    len = ngx_http_darkroom_utf8_decode(p, n, cp);

    free(p);

    return len;
}


static int
valid(const char *bytes, size_t n)
{
    int             rc;
    unsigned char  *p;

    p = malloc(n ? n : 1);

    if (p == NULL) {
        abort();
    }

    memcpy(p, bytes, n);

    rc = ngx_http_darkroom_utf8_valid(p, n);

    free(p);

    return rc;
}


static const case_t  cases[] = {

    /* valid, 1 to 4 bytes, at the edges of each length */
    { "A", 1, 1, 0x41, "ASCII" },
    { "\x00", 1, 1, 0, "NUL is a character" },
    { "\x7f", 1, 1, 0x7f, "U+007F, last 1-byte" },
    { "\xc2\x80", 2, 2, 0x80, "U+0080, first 2-byte" },
    { "\xc3\xa9", 2, 2, 0xe9, "U+00E9" },
    { "\xdf\xbf", 2, 2, 0x7ff, "U+07FF, last 2-byte" },
    { "\xe0\xa0\x80", 3, 3, 0x800, "U+0800, first 3-byte" },
    { "\xe2\x82\xac", 3, 3, 0x20ac, "U+20AC" },
    { "\xed\x9f\xbf", 3, 3, 0xd7ff, "U+D7FF, before the surrogates" },
    { "\xee\x80\x80", 3, 3, 0xe000, "U+E000, after the surrogates" },
    { "\xef\xbf\xbf", 3, 3, 0xffff, "U+FFFF, last 3-byte" },
    { "\xf0\x90\x80\x80", 4, 4, 0x10000, "U+10000, first 4-byte" },
    { "\xf0\x9f\x93\xb7", 4, 4, 0x1f4f7, "U+1F4F7" },
    { "\xf4\x8f\xbf\xbf", 4, 4, 0x10ffff, "U+10FFFF, last" },

    /* only the first character is decoded */
    { "A\x80", 2, 1, 0x41, "ASCII before a stray byte" },
    { "\xc3\xa9\xc3", 3, 2, 0xe9, "a character before a truncated one" },

    /* overlong forms */
    { "\xc0\x80", 2, 0, 0, "overlong NUL C0 80" },
    { "\xc0\xaf", 2, 0, 0, "overlong / C0 AF" },
    { "\xc1\xbf", 2, 0, 0, "overlong C1 BF" },
    { "\xe0\x80\x80", 3, 0, 0, "overlong E0 80 80" },
    { "\xe0\x80\xae", 3, 0, 0, "overlong . E0 80 AE" },
    { "\xe0\x9f\xbf", 3, 0, 0, "overlong E0 9F BF" },
    { "\xf0\x80\x80\x80", 4, 0, 0, "overlong F0 80 80 80" },
    { "\xf0\x8f\xbf\xbf", 4, 0, 0, "overlong F0 8F BF BF" },

    /* surrogates */
    { "\xed\xa0\x80", 3, 0, 0, "surrogate ED A0 80 (U+D800)" },
    { "\xed\xb0\x80", 3, 0, 0, "surrogate ED B0 80 (U+DC00)" },
    { "\xed\xbf\xbf", 3, 0, 0, "surrogate ED BF BF (U+DFFF)" },

    /* above U+10FFFF, and bytes that never start a character */
    { "\xf4\x90\x80\x80", 4, 0, 0, "F4 90 80 80 (U+110000)" },
    { "\xf5\x80\x80\x80", 4, 0, 0, "F5 80 80 80" },
    { "\xf7\xbf\xbf\xbf", 4, 0, 0, "F7 BF BF BF" },
    { "\xf8\x88\x80\x80\x80", 5, 0, 0, "5-byte form F8" },
    { "\xfc\x84\x80\x80\x80\x80", 6, 0, 0, "6-byte form FC" },
    { "\xfe", 1, 0, 0, "FE" },
    { "\xff", 1, 0, 0, "FF" },

    /* truncated: n ends the sequence early */
    { "", 0, 0, 0, "empty" },
    { "\xc3", 1, 0, 0, "C3 alone" },
    { "\xe2\x82", 2, 0, 0, "E2 82 alone" },
    { "\xe2\x82\xac", 2, 0, 0, "E2 82 AC cut at 2" },
    { "\xf0\x9f\x93", 3, 0, 0, "F0 9F 93 alone" },
    { "\xf0\x9f\x93\xb7", 3, 0, 0, "F0 9F 93 B7 cut at 3" },
    { "\xf0", 1, 0, 0, "F0 alone" },

    /* stray continuation bytes, and a lead byte without them */
    { "\x80", 1, 0, 0, "stray 80" },
    { "\xbf", 1, 0, 0, "stray BF" },
    { "\x80\x80", 2, 0, 0, "stray 80 80" },
    { "\xc3\x41", 2, 0, 0, "C3 then ASCII" },
    { "\xc3\xc3\xa9", 3, 0, 0, "C3 then a lead byte" },
    { "\xe2\x28\xa1", 3, 0, 0, "E2 28 A1" },
    { "\xe2\x82\x41", 3, 0, 0, "E2 82 then ASCII" },
    { "\xf0\x9f\x41\xb7", 4, 0, 0, "F0 9F then ASCII" },
    { "\xf0\x9f\x93\x41", 4, 0, 0, "F0 9F 93 then ASCII" },
};


/* every scalar value, encoded by hand, decodes to itself */

static int
round_trip(void)
{
    size_t         n;
    uint32_t       c, got;
    unsigned char  u[4];

    for (c = 0; c <= 0x10ffff; c++) {
        if (c >= 0xd800 && c <= 0xdfff) {
            continue;
        }

        if (c < 0x80) {
            u[0] = (unsigned char) c;
            n = 1;

        } else if (c < 0x800) {
            u[0] = 0xc0 | (c >> 6);
            u[1] = 0x80 | (c & 0x3f);
            n = 2;

        } else if (c < 0x10000) {
            u[0] = 0xe0 | (c >> 12);
            u[1] = 0x80 | ((c >> 6) & 0x3f);
            u[2] = 0x80 | (c & 0x3f);
            n = 3;

        } else {
            u[0] = 0xf0 | (c >> 18);
            u[1] = 0x80 | ((c >> 12) & 0x3f);
            u[2] = 0x80 | ((c >> 6) & 0x3f);
            u[3] = 0x80 | (c & 0x3f);
            n = 4;
        }

        got = 0xffffffff;

        if (ngx_http_darkroom_utf8_decode(u, n, &got) != n || got != c
            || ngx_http_darkroom_utf8_decode(u, n - 1, NULL) != 0)
        {
            printf("#   U+%04X\n", (unsigned) c);
            return 0;
        }
    }

    return 1;
}


/*
 * Every 1, 2 and 3 byte input: exactly as many complete characters of
 * each length are accepted as there are scalar values of that length.
 */

static int
count_all(void)
{
    size_t         len, count[4];
    uint32_t       i;
    unsigned char  u[3];

    memset(count, 0, sizeof(count));

    for (i = 0; i < 0x1000000; i++) {
        u[0] = (unsigned char) (i >> 16);
        u[1] = (unsigned char) (i >> 8);
        u[2] = (unsigned char) i;

        len = ngx_http_darkroom_utf8_decode(u, 3, NULL);

        if (len == 3) {
            count[3]++;
        }

        if (u[2] == 0) {
            len = ngx_http_darkroom_utf8_decode(u, 2, NULL);
            count[2] += (len == 2);

            if (u[1] == 0) {
                len = ngx_http_darkroom_utf8_decode(u, 1, NULL);
                count[1] += (len == 1);
            }
        }
    }

    if (count[1] == 0x80 && count[2] == 0x800 - 0x80
        && count[3] == 0x10000 - 0x800 - 0x800)
    {
        return 1;
    }

    printf("#   1-byte %zu, 2-byte %zu, 3-byte %zu\n",
           count[1], count[2], count[3]);

    return 0;
}


int
main(void)
{
    size_t          i, len;
    uint32_t        cp;
    const case_t   *c;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        c = &cases[i];
        cp = 0xffffffff;

        len = decode(c->bytes, c->n, &cp);

        ok(len == c->len && (len == 0 || cp == c->cp), c->name);

        if (len != c->len || (len && cp != c->cp)) {
            printf("#   got %zu U+%04X, want %zu U+%04X\n", len,
                   (unsigned) cp, c->len, (unsigned) c->cp);
        }
    }

    ok(decode("\xe2\x82\xac", 3, NULL) == 3, "cp may be NULL");

    cp = 0x1234;
    ok(decode("\xed\xa0\x80", 3, &cp) == 0 && cp == 0x1234,
       "cp untouched when invalid");

    ok(round_trip(), "every scalar value decodes to itself, and not cut");
    ok(count_all(), "all 1 to 3 byte inputs: only well formed accepted");

    /* whole strings */

    ok(valid("", 0), "valid: empty");
    ok(valid("a\0b", 3), "valid: NUL inside");
    ok(valid("/photos/\xc3\xa9t\xc3\xa9 \xf0\x9f\x93\xb7.jpg", 22),
       "valid: mixed 1, 2 and 4 byte");
    ok(valid("\xe2\x82\xac\xe2\x82\xac", 6), "valid: two 3-byte");
    ok(!valid("ab\x80", 3), "invalid: stray continuation at the end");
    ok(!valid("ab\xc3", 3), "invalid: truncated at the end");
    ok(!valid("\xe2\x82\xac\xe2\x82", 5), "invalid: second truncated");
    ok(!valid("/\xc0\xae\xc0\xae/etc", 9), "invalid: overlong dots");
    ok(!valid("x\xed\xa0\x80y", 5), "invalid: surrogate inside");
    ok(!valid("a\xf4\x90\x80\x80", 5), "invalid: above U+10FFFF");
    ok(!valid("\xc3\xa9\xa9", 3), "invalid: one continuation too many");

    printf("1..%d\n", n_test);

    return n_failed ? 1 : 0;
}
