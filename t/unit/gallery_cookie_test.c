
/*
 * darkroom: unit test of the gallery cookie parser
 * (ngx_http_darkroom_gallery_cookie.c), the gallery cookie's and the
 * visitor cookie's.  Prints TAP.  Built and run by
 * t/319_gallery_cookie.t.
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_http_darkroom_gallery_cookie.h"


#define SIG  "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA_"


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


static int
parses(const char *v, ngx_http_darkroom_gallery_cookie_t *c)
{
    return ngx_http_darkroom_gallery_cookie_parse((const unsigned char *) v,
                                                  strlen(v), c) == 0;
}


static int
vparses(const char *v, ngx_http_darkroom_gallery_visitor_t *c)
{
    return ngx_http_darkroom_gallery_visitor_parse((const unsigned char *) v,
                                                   strlen(v), c) == 0;
}


/* the values of darkroom_visitor in a header, joined with "|" */

static int
visitors_are(const char *header, const char *want)
{
    char                  got[1024];
    size_t                vlen, n, k;
    const unsigned char  *pos, *end, *val;

    pos = (const unsigned char *) header;
    end = pos + strlen(header);
    n = 0;
    k = 0;
    got[0] = '\0';

    while (ngx_http_darkroom_gallery_visitor_next(&pos, end, &val, &vlen)) {
        n += snprintf(got + n, sizeof(got) - n, "%s%.*s", k++ ? "|" : "",
                      (int) vlen, (const char *) val);
    }

    return strcmp(got, want) == 0;
}


/* the values of darkroom_gallery in a header, joined with "|" */

static int
values_are(const char *header, const char *want)
{
    char                  got[1024];
    size_t                vlen, n, k;
    const unsigned char  *pos, *end, *val;

    pos = (const unsigned char *) header;
    end = pos + strlen(header);
    n = 0;
    k = 0;
    got[0] = '\0';

    while (ngx_http_darkroom_gallery_cookie_next(&pos, end, &val, &vlen)) {
        n += snprintf(got + n, sizeof(got) - n, "%s%.*s", k++ ? "|" : "",
                      (int) vlen, (const char *) val);
    }

    if (strcmp(got, want) != 0) {
        printf("#   got \"%s\", want \"%s\"\n", got, want);
        return 0;
    }

    return 1;
}


int
main(void)
{
    char                                 buf[256];
    ngx_http_darkroom_gallery_cookie_t   c;
    ngx_http_darkroom_gallery_visitor_t  v;

    /* the value */

    ok(parses("12.3.1700000000." SIG, &c) && c.id == 12
       && c.generation == 3 && c.expires == 1700000000
       && memcmp(c.sig, SIG, 43) == 0, "a valid value");
    ok(parses("9223372036854775807.2147483647.9223372036854775807." SIG, &c)
       && c.id == 9223372036854775807ULL && c.generation == 2147483647U,
       "the largest numbers");

    ok(!parses("12.3.+1700000000." SIG, &c), "expiry with +");
    ok(!parses("12.3.01700000000." SIG, &c), "expiry with a leading 0");
    ok(!parses("12.3. 1700000000." SIG, &c), "expiry with a leading space");
    ok(!parses("12.3.-1700000000." SIG, &c), "negative expiry");
    ok(!parses("12.3.1700000000 ." SIG, &c), "expiry with a trailing space");
    ok(!parses("12.3.." SIG, &c), "empty expiry");
    ok(!parses("12.3.0." SIG, &c), "expiry 0");
    ok(!parses("12.3.9223372036854775808." SIG, &c), "expiry overflow");
    ok(!parses("12.3.99999999999999999999." SIG, &c), "expiry of 20 digits");
    ok(!parses("012.3.1700000000." SIG, &c), "id with a leading 0");
    ok(!parses("+12.3.1700000000." SIG, &c), "id with +");
    ok(!parses("0.3.1700000000." SIG, &c), "id 0");
    ok(!parses("9223372036854775808.3.1700000000." SIG, &c), "id overflow");
    ok(!parses("12.03.1700000000." SIG, &c), "generation with a leading 0");
    ok(!parses("12.0.1700000000." SIG, &c), "generation 0");
    ok(!parses("12.2147483648.1700000000." SIG, &c), "generation overflow");
    ok(!parses("12.3.1700000000." SIG "A", &c), "a longer signature");
    ok(!parses("12.3.1700000000." "AAAA", &c), "a shorter signature");
    ok(!parses("12.3.1700000000.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
               &c), "a signature with base64 padding");
    ok(!parses("12.3.1700000000.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA+",
               &c), "a signature with +");
    ok(!parses("12.3.1700000000", &c), "no signature");
    ok(!parses("", &c), "empty");
    ok(!parses("\"12.3.1700000000." SIG "\"", &c), "quoted");

    snprintf(buf, sizeof(buf), "12.3.1700000000.%s", SIG);
    buf[10] = '\0';
    ok(ngx_http_darkroom_gallery_cookie_parse((unsigned char *) buf,
                                              strlen(SIG) + 16, &c) != 0,
       "a NUL inside");

    /* the header */

    ok(values_are("darkroom_gallery=a", "a"), "one");
    ok(values_are("x=1; darkroom_gallery=a; y=2", "a"), "among others");
    ok(values_are("darkroom_gallery=a;darkroom_gallery=b; darkroom_gallery=c;"
                  "  darkroom_gallery=d ;darkroom_gallery=e; "
                  "darkroom_gallery=f", "a|b|c|d|e|f"),
       "all of them, not the first four");
    ok(values_are("Darkroom_gallery=a; darkroom_galleryx=b; xdarkroom_gallery"
                  "=c; darkroom_gallery", ""), "other names");
    ok(values_are("darkroom_gallery=; darkroom_gallery==x", "|=x"),
       "empty values are values");
    ok(values_are("; ;;darkroom_gallery=a;", "a"), "empty pairs");
    ok(values_are("", ""), "empty header");
    ok(values_are("darkroom_gallery=a b", "a b"),
       "a value with a space is kept whole (and then refused)");

    /* the visitor cookie */

    ok(vparses("12.3.77.1700000000." SIG, &v) && v.id == 12
       && v.generation == 3 && v.visitor == 77 && v.expires == 1700000000
       && memcmp(v.sig, SIG, 43) == 0, "visitor: a valid value");
    ok(!vparses("12.3.1700000000." SIG, &v),
       "visitor: a gallery cookie's value is not one");
    ok(!parses("12.3.77.1700000000." SIG, &c),
       "visitor: nor the other way round");
    ok(!vparses("12.3.077.1700000000." SIG, &v),
       "visitor: id with a leading 0");
    ok(!vparses("12.3.0.1700000000." SIG, &v), "visitor: id 0");
    ok(!vparses("12.3.9223372036854775808.1700000000." SIG, &v),
       "visitor: id overflow");
    ok(!vparses("12.3.77.1700000000.7." SIG, &v), "visitor: a part more");
    ok(!vparses("12.3.77.1700000000." SIG "A", &v),
       "visitor: a longer signature");
    ok(visitors_are("darkroom_gallery=a; darkroom_visitor=b; "
                    "darkroom_visitor=c", "b|c"),
       "visitor: its values, not the gallery's");
    ok(values_are("darkroom_visitor=b; darkroom_gallery=a", "a"),
       "the gallery's values, not the visitor's");

    printf("1..%d\n", n_test);

    return n_failed ? 1 : 0;
}
