
/*
 * darkroom: unit test of the pure signed URL code (ngx_http_darkroom_sign.c).
 * Prints TAP.  Built and run by t/300_media_unit.t.
 *
 * The expected signatures were made by tools/darkroom-sign (Perl's
 * Digest::SHA), an implementation independent of the C one.
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include "ngx_http_darkroom_sign.h"


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


static void
is_str(const unsigned char *got, size_t len, const char *want,
    const char *name)
{
    int  cond;

    cond = (len == strlen(want) && memcmp(got, want, len) == 0);

    ok(cond, name);

    if (!cond) {
        printf("#   got:  \"%.*s\"\n#   want: \"%s\"\n", (int) len, got, want);
    }
}


static int
parse(const char *args, ngx_http_darkroom_sign_link_t *link,
    unsigned char *buf)
{
    return ngx_http_darkroom_sign_parse((const unsigned char *) args,
                                        strlen(args), link, buf);
}


static int
path_ok(const char *p, size_t len)
{
    return ngx_http_darkroom_sign_path((const unsigned char *) p, len)
           == NGX_HTTP_DARKROOM_SIGN_OK;
}


#define KEY      "0123456789abcdef0123456789abcdef"
#define PATH     "/photos/\xc3\xa9t\xc3\xa9 2024/IMG_0001.jpg"
#define SIG      "VIU8Z7sX_WFWEuwUbqyAidHGsTM_1AHWR09tutGEaX4"
#define QUERY    "disposition=attachment&exp=1767225600" \
                 "&filename=%C3%A9t%C3%A9%201.jpg&kid=k2025"
#define URL      "/photos/%C3%A9t%C3%A9%202024/IMG_0001.jpg?" QUERY \
                 "&sig=" SIG


int
main(void)
{
    int                            rc, i;
    size_t                         n;
    int64_t                        t;
    unsigned char                  buf[2048], out[2048], sig[64];
    unsigned char                  a4[4], a6[16];
    ngx_http_darkroom_sign_net_t   net;
    ngx_http_darkroom_sign_link_t  link, l2;
    char                           q[512];

    static const struct {
        const char  *in;
        const char  *out;
    } b64[] = {
        { "", "" }, { "f", "Zg" }, { "fo", "Zm8" }, { "foo", "Zm9v" },
        { "foob", "Zm9vYg" }, { "fooba", "Zm9vYmE" },
        { "foobar", "Zm9vYmFy" }, { "\xfb\xff", "-_8" }
    };

    static const char  *bad_paths[] = {
        "", "a.jpg", "//a.jpg", "/a//b.jpg", "/../etc/passwd",
        "/a/../b", "/a/./b", "/a/..", "/a/.", "/.", "/..",
        "/a\\..\\b", "/a\x01", "/a\x7f", "/a\nb",
        "/\xc0\xae\xc0\xae/etc/passwd",      /* overlong "." */
        "/\xe0\x80\xae",                     /* overlong "." */
        "/\xed\xa0\x80",                     /* surrogate */
        "/\xf4\x90\x80\x80",                 /* above U+10FFFF */
        "/\xff", "/\xc3"                     /* truncated */
    };

    static const char  *good_paths[] = {
        "/", "/a.jpg", "/photos/", "/a/b/c.jpg", "/a/..b/c", "/a/.b",
        "/a/b..", "/%2e%2e", PATH, "/\xe2\x82\xac.jpg"
    };

    /* base64url */

    for (i = 0; i < (int) (sizeof(b64) / sizeof(b64[0])); i++) {
        n = ngx_http_darkroom_sign_base64url((const unsigned char *) b64[i].in,
                                             strlen(b64[i].in), out);
        snprintf(q, sizeof(q), "base64url(\"%s\")", b64[i].out);
        is_str(out, n, b64[i].out, q);
    }

    /* HMAC-SHA256: RFC 4231 test cases 2 and 6 (key longer than a block) */

    ok(ngx_http_darkroom_sign_hmac((unsigned char *) "Jefe", 4,
                                   (unsigned char *)
                                   "what do ya want for nothing?", 28, out)
       && memcmp(out, "\x5b\xdc\xc1\x46\xbf\x60\x75\x4e\x6a\x04\x24\x26"
                      "\x08\x95\x75\xc7\x5a\x00\x3f\x08\x9d\x27\x39\x83"
                      "\x9d\xec\x58\xb9\x64\xec\x38\x43", 32) == 0,
       "HMAC-SHA256 RFC 4231 case 2");

    memset(buf, 0xaa, 131);
    ok(ngx_http_darkroom_sign_hmac(buf, 131, (unsigned char *)
                                   "Test Using Larger Than Block-Size Key - "
                                   "Hash Key First", 54, out)
       && memcmp(out, "\x60\xe4\x31\x59\x1e\xe0\xb6\x7f\x0d\x8a\x26\xaa"
                      "\xcb\xf5\xb7\x7f\x8e\x0b\xc6\x21\x37\x28\xc5\x14"
                      "\x05\x46\x04\x0f\x0e\xe3\x7f\x54", 32) == 0,
       "HMAC-SHA256 RFC 4231 case 6");

    /* paths */

    for (i = 0; i < (int) (sizeof(bad_paths) / sizeof(bad_paths[0])); i++) {
        snprintf(q, sizeof(q), "bad path %d refused", i);
        ok(!path_ok(bad_paths[i], strlen(bad_paths[i])), q);
    }

    ok(!path_ok("/a\0b", 4), "path with NUL refused");

    for (i = 0; i < (int) (sizeof(good_paths) / sizeof(good_paths[0])); i++) {
        snprintf(q, sizeof(q), "good path \"%s\" accepted", good_paths[i]);
        ok(path_ok(good_paths[i], strlen(good_paths[i])), q);
    }

    /* parse */

    rc = parse(QUERY "&sig=" SIG, &link, buf);
    ok(rc == NGX_HTTP_DARKROOM_SIGN_OK, "parse a full link");
    is_str(link.param[NGX_HTTP_DARKROOM_P_FILENAME].data,
           link.param[NGX_HTTP_DARKROOM_P_FILENAME].len,
           "\xc3\xa9t\xc3\xa9 1.jpg", "filename is percent-decoded");
    is_str(link.sig.data, link.sig.len, SIG, "sig as sent");
    ok(link.param[NGX_HTTP_DARKROOM_P_IP].data == NULL, "ip absent");

    ok(parse("exp=1&kid=k&sig=x&utm_source=mail", &link, buf)
       == NGX_HTTP_DARKROOM_SIGN_UNKNOWN, "unknown parameter refused");
    ok(parse("exp=1&kid=k&sig=x&%65xp=1", &link, buf)
       == NGX_HTTP_DARKROOM_SIGN_UNKNOWN, "escaped name is unknown");
    ok(parse("exp=1&kid=k&sig=x&exp=2", &link, buf)
       == NGX_HTTP_DARKROOM_SIGN_DUPLICATE, "duplicate exp refused");
    ok(parse("exp=1&kid=k&sig=x&sig=y", &link, buf)
       == NGX_HTTP_DARKROOM_SIGN_DUPLICATE, "duplicate sig refused");
    ok(parse("exp=1&kid=k", &link, buf)
       == NGX_HTTP_DARKROOM_SIGN_MISSING, "missing sig");
    ok(parse("kid=k&sig=x", &link, buf)
       == NGX_HTTP_DARKROOM_SIGN_MISSING, "missing exp");
    ok(parse("exp=1&sig=x", &link, buf)
       == NGX_HTTP_DARKROOM_SIGN_MISSING, "missing kid");
    ok(parse("", &link, buf)
       == NGX_HTTP_DARKROOM_SIGN_MISSING, "empty query");
    ok(parse("&&exp=1&&kid=k&sig=x&", &link, buf)
       == NGX_HTTP_DARKROOM_SIGN_OK, "empty segments ignored");
    ok(parse("exp=1x&kid=k&sig=x", &link, buf)
       == NGX_HTTP_DARKROOM_SIGN_BAD_VALUE, "non-numeric exp");
    ok(parse("exp=1234567890123&kid=k&sig=x", &link, buf)
       == NGX_HTTP_DARKROOM_SIGN_BAD_VALUE, "13-digit exp");
    ok(parse("exp=1&kid=k%2Fx&sig=x", &link, buf)
       == NGX_HTTP_DARKROOM_SIGN_BAD_VALUE, "kid with /");
    ok(parse("exp=1&kid=k&sig=x&disposition=evil", &link, buf)
       == NGX_HTTP_DARKROOM_SIGN_BAD_VALUE, "unknown disposition");
    ok(parse("exp=1&kid=k&sig=x&filename=a%0d%0aX-Evil:1", &link, buf)
       == NGX_HTTP_DARKROOM_SIGN_BAD_VALUE, "CRLF in filename");
    ok(parse("exp=1&kid=k&sig=x&filename=..%2Fa", &link, buf)
       == NGX_HTTP_DARKROOM_SIGN_BAD_VALUE, "slash in filename");
    ok(parse("exp=1&kid=k&sig=x&filename=%C0%AE", &link, buf)
       == NGX_HTTP_DARKROOM_SIGN_BAD_VALUE, "overlong UTF-8 in filename");
    ok(parse("exp=1&kid=k&sig=x&filename=%zz", &link, buf)
       == NGX_HTTP_DARKROOM_SIGN_BAD_VALUE, "bad escape");
    ok(parse("exp=1&kid=k&sig=x&filename=a%2", &link, buf)
       == NGX_HTTP_DARKROOM_SIGN_BAD_VALUE, "truncated escape");
    ok(parse("exp=1&kid=k&sig=x&ip=300.1.1.1", &link, buf)
       == NGX_HTTP_DARKROOM_SIGN_BAD_VALUE, "bad ip");
    ok(parse("exp=1&kid=k&sig=x&ip=10.0.0.0/33", &link, buf)
       == NGX_HTTP_DARKROOM_SIGN_BAD_VALUE, "bad prefix length");
    ok(parse("exp=1&kid=k&sig=x&g=gal_42", &link, buf)
       == NGX_HTTP_DARKROOM_SIGN_OK, "gallery parameter");
    ok(parse("exp=1&kid=k&sig=x&filename=a+b", &link, buf)
       == NGX_HTTP_DARKROOM_SIGN_OK
       && link.param[NGX_HTTP_DARKROOM_P_FILENAME].len == 3
       && memcmp(link.param[NGX_HTTP_DARKROOM_P_FILENAME].data, "a+b", 3)
          == 0,
       "plus is a literal plus");

    /* canonical string and MAC */

    rc = parse(QUERY "&sig=" SIG, &link, buf);
    link.path.data = (unsigned char *) PATH;
    link.path.len = strlen(PATH);

    n = ngx_http_darkroom_sign_canonical(&link, out, sizeof(out));
    is_str(out, n,
           "darkroom-media-v1\n" PATH "\n"
           "disposition=attachment\nexp=1767225600\n"
           "filename=\xc3\xa9t\xc3\xa9 1.jpg\nkid=k2025\n",
           "canonical string");
    ok(ngx_http_darkroom_sign_canonical(&link, NULL, 0) == n,
       "canonical length without a buffer");

    rc = ngx_http_darkroom_sign_mac(&link, (unsigned char *) KEY,
                                    strlen(KEY), sig);
    ok(rc == NGX_HTTP_DARKROOM_SIGN_OK, "mac");
    is_str(sig, NGX_HTTP_DARKROOM_SIGN_SIG_LEN, SIG,
           "mac equals tools/darkroom-sign's");

    ok(ngx_http_darkroom_sign_verify(&link, (unsigned char *) KEY,
                                     strlen(KEY))
       == NGX_HTTP_DARKROOM_SIGN_OK, "verify");

    ok(ngx_http_darkroom_sign_verify(&link, (unsigned char *) KEY "x",
                                     strlen(KEY) + 1)
       == NGX_HTTP_DARKROOM_SIGN_MISMATCH, "another key: mismatch");

    /* one changed character anywhere */

    l2 = link;
    memcpy(q, PATH, strlen(PATH) + 1);
    q[3] = 'X';
    l2.path.data = (unsigned char *) q;
    ok(ngx_http_darkroom_sign_verify(&l2, (unsigned char *) KEY, strlen(KEY))
       == NGX_HTTP_DARKROOM_SIGN_MISMATCH, "changed path: mismatch");

    for (i = 0; i < NGX_HTTP_DARKROOM_SIGN_SIG_LEN; i++) {
        memcpy(q, SIG, NGX_HTTP_DARKROOM_SIGN_SIG_LEN);
        q[i] = (q[i] == 'A') ? 'B' : 'A';
        l2 = link;
        l2.sig.data = (unsigned char *) q;

        if (ngx_http_darkroom_sign_verify(&l2, (unsigned char *) KEY,
                                          strlen(KEY))
            != NGX_HTTP_DARKROOM_SIGN_MISMATCH)
        {
            break;
        }
    }

    ok(i == NGX_HTTP_DARKROOM_SIGN_SIG_LEN,
       "every one-character change of sig: mismatch");

    l2 = link;
    l2.sig.len--;
    ok(ngx_http_darkroom_sign_verify(&l2, (unsigned char *) KEY, strlen(KEY))
       == NGX_HTTP_DARKROOM_SIGN_MISMATCH, "short sig: mismatch");

    l2 = link;
    l2.param[NGX_HTTP_DARKROOM_P_DISPOSITION].data = NULL;
    ok(ngx_http_darkroom_sign_verify(&l2, (unsigned char *) KEY, strlen(KEY))
       == NGX_HTTP_DARKROOM_SIGN_MISMATCH, "dropped parameter: mismatch");

    l2 = link;
    l2.param[NGX_HTTP_DARKROOM_P_G].data = (unsigned char *) "g1";
    l2.param[NGX_HTTP_DARKROOM_P_G].len = 2;
    ok(ngx_http_darkroom_sign_verify(&l2, (unsigned char *) KEY, strlen(KEY))
       == NGX_HTTP_DARKROOM_SIGN_MISMATCH, "added parameter: mismatch");

    /* signing a URL */

    memset(&l2, 0, sizeof(l2));
    l2.path = link.path;
    memcpy(l2.param, link.param, sizeof(link.param));

    n = ngx_http_darkroom_sign_url(&l2, (unsigned char *) KEY, strlen(KEY),
                                   NULL, 0, &rc);
    ok(n == strlen(URL), "url length");

    n = ngx_http_darkroom_sign_url(&l2, (unsigned char *) KEY, strlen(KEY),
                                   out, sizeof(out), &rc);
    is_str(out, n, URL, "url equals tools/darkroom-sign's");

    l2.path.data = (unsigned char *) "/a/../b";
    l2.path.len = 7;
    n = ngx_http_darkroom_sign_url(&l2, (unsigned char *) KEY, strlen(KEY),
                                   out, sizeof(out), &rc);
    ok(n == 0 && rc == NGX_HTTP_DARKROOM_SIGN_BAD_PATH,
       "refuses to sign a non-canonical path");

    /* time */

    ok(ngx_http_darkroom_sign_time((unsigned char *) "1767225600", 10, &t)
       == NGX_HTTP_DARKROOM_SIGN_OK && t == 1767225600, "time");
    ok(ngx_http_darkroom_sign_time((unsigned char *) "-1", 2, &t)
       != NGX_HTTP_DARKROOM_SIGN_OK, "negative time refused");

    /* addresses */

    inet_pton(AF_INET, "203.0.113.77", a4);
    inet_pton(AF_INET6, "2001:db8:1:2::5", a6);

    ngx_http_darkroom_sign_net_parse((unsigned char *) "203.0.113.0/24", 14,
                                     &net);
    ok(ngx_http_darkroom_sign_net_match(&net, AF_INET, a4), "v4 in /24");

    ngx_http_darkroom_sign_net_parse((unsigned char *) "203.0.112.0/24", 14,
                                     &net);
    ok(!ngx_http_darkroom_sign_net_match(&net, AF_INET, a4),
       "v4 not in another /24");

    ngx_http_darkroom_sign_net_parse((unsigned char *) "203.0.113.76/31", 15,
                                     &net);
    ok(ngx_http_darkroom_sign_net_match(&net, AF_INET, a4), "v4 in /31");

    ngx_http_darkroom_sign_net_parse((unsigned char *) "203.0.113.77", 12,
                                     &net);
    ok(net.bits == 32 && ngx_http_darkroom_sign_net_match(&net, AF_INET, a4),
       "v4 exact");
    ok(!ngx_http_darkroom_sign_net_match(&net, AF_INET6, a6),
       "v6 client against a v4 link");

    inet_pton(AF_INET6, "::ffff:203.0.113.77", buf);
    ok(ngx_http_darkroom_sign_net_match(&net, AF_INET6, buf),
       "v4-mapped v6 client");

    ngx_http_darkroom_sign_net_parse((unsigned char *) "2001:db8:1::/48", 15,
                                     &net);
    ok(ngx_http_darkroom_sign_net_match(&net, AF_INET6, a6), "v6 in /48");
    ok(!ngx_http_darkroom_sign_net_match(&net, AF_INET, a4),
       "v4 client against a v6 link");

    n = ngx_http_darkroom_sign_net_format(AF_INET, a4, 24, out, sizeof(out));
    is_str(out, n, "203.0.113.0/24", "format v4 /24");
    n = ngx_http_darkroom_sign_net_format(AF_INET, a4, 32, out, sizeof(out));
    is_str(out, n, "203.0.113.77", "format v4 exact");
    n = ngx_http_darkroom_sign_net_format(AF_INET6, a6, 56, out, sizeof(out));
    is_str(out, n, "2001:db8:1::/56", "format v6 /56");
    n = ngx_http_darkroom_sign_net_format(AF_INET, a4, 20, out, sizeof(out));
    is_str(out, n, "203.0.112.0/20", "format v4 /20");

    /* Content-Disposition */

    n = ngx_http_darkroom_sign_disposition((unsigned char *) "attachment", 10,
                                           (unsigned char *)
                                           "\xc3\xa9t\xc3\xa9 \"1\".jpg",
                                           13, out, sizeof(out));
    is_str(out, n,
           "attachment; filename=\"_t_ _1_.jpg\"; "
           "filename*=UTF-8''%C3%A9t%C3%A9%20%221%22.jpg",
           "disposition with UTF-8 and quotes");

    n = ngx_http_darkroom_sign_disposition((unsigned char *) "inline", 6,
                                           NULL, 0, out, sizeof(out));
    is_str(out, n, "inline", "disposition without a name");

    ok(ngx_http_darkroom_sign_disposition((unsigned char *) "attachment", 10,
                                          (unsigned char *) "a.jpg", 5,
                                          NULL, 0)
       == strlen("attachment; filename=\"a.jpg\"; filename*=UTF-8''a.jpg"),
       "disposition length");

    /* error codes */

    ok(strcmp(ngx_http_darkroom_sign_code(NGX_HTTP_DARKROOM_SIGN_MISMATCH),
              "bad_signature") == 0, "code names");

    printf("1..%d\n", n_test);

    return n_failed ? 1 : 0;
}
