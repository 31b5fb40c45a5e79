/* fuzz-sources: src/core/ngx_http_darkroom_sign.c src/core/ngx_http_darkroom_utf8.c */

/*
 * darkroom: fuzz target for signed media links (ngx_http_darkroom_sign.c),
 * the bytes a client sends: the decoded path and the raw query string.
 *
 * Input: <path> "\n" <query>.  The path goes through the path check and
 * the query through the parser, into a buffer of exactly the query's
 * length, as the access handler does.  A link that parses is verified,
 * its parameters checked as the handler uses them, then signed again:
 * the URL written must be as long as announced, and must parse back to
 * the same link and verify.  Any mismatch aborts (a finding).
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include "ngx_http_darkroom_sign.h"


static const unsigned char  key[] = "0123456789abcdef0123456789abcdef";


static void
check(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "media_link: %s\n", what);
        abort();
    }
}


static int
hexval(unsigned char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }

    c |= 0x20;

    return (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
}


/* a strict percent-decoder, for the round trip only */

static size_t
unescape(const unsigned char *p, size_t len, unsigned char *dst)
{
    size_t  i, n;

    for (i = 0, n = 0; i < len; i++) {
        if (p[i] == '%') {
            check(i + 2 < len, "escape at the end of the path");
            check(hexval(p[i + 1]) >= 0 && hexval(p[i + 2]) >= 0,
                  "bad escape in the path");
            dst[n++] = (unsigned char) (hexval(p[i + 1]) * 16
                                        + hexval(p[i + 2]));
            i += 2;
            continue;
        }

        dst[n++] = p[i];
    }

    return n;
}


static void
use_params(const ngx_http_darkroom_sign_link_t *link)
{
    int64_t                        t;
    size_t                         n, m;
    unsigned char                  out[NGX_HTTP_DARKROOM_SIGN_IP_LEN + 1];
    unsigned char                 *buf;
    const unsigned char           *name;
    ngx_http_darkroom_sign_net_t   net;
    const ngx_http_darkroom_sign_str_t  *p = link->param;

    check(ngx_http_darkroom_sign_time(p[NGX_HTTP_DARKROOM_P_EXP].data,
                                      p[NGX_HTTP_DARKROOM_P_EXP].len, &t)
          == NGX_HTTP_DARKROOM_SIGN_OK, "exp parsed but not a time");

    if (p[NGX_HTTP_DARKROOM_P_IP].data) {
        check(ngx_http_darkroom_sign_net_parse(p[NGX_HTTP_DARKROOM_P_IP].data,
                                               p[NGX_HTTP_DARKROOM_P_IP].len,
                                               &net)
              == NGX_HTTP_DARKROOM_SIGN_OK, "ip parsed but not a net");
        check(net.family == AF_INET ? net.bits <= 32 : net.bits <= 128,
              "prefix too long");
        (void) ngx_http_darkroom_sign_net_match(&net, net.family, net.addr);
        n = ngx_http_darkroom_sign_net_format(net.family, net.addr, net.bits,
                                              out, sizeof(out));
        check(n <= NGX_HTTP_DARKROOM_SIGN_IP_LEN, "net format too long");
    }

    /* the Content-Disposition, sized first, as the handler does */

    name = p[NGX_HTTP_DARKROOM_P_FILENAME].data;
    n = p[NGX_HTTP_DARKROOM_P_FILENAME].len;

    if (name == NULL && link->path.data[link->path.len - 1] != '/') {
        name = link->path.data + link->path.len;

        while (name[-1] != '/') {
            name--;
        }

        n = link->path.data + link->path.len - name;
    }

    m = ngx_http_darkroom_sign_disposition((const unsigned char *) "inline",
                                           6, name, n, NULL, 0);
    buf = malloc(m ? m : 1);
    check(buf != NULL, "no memory");
    check(ngx_http_darkroom_sign_disposition((const unsigned char *) "inline",
                                             6, name, n, buf, m) <= m,
          "disposition longer than announced");
    free(buf);
}


static void
round_trip(const ngx_http_darkroom_sign_link_t *link)
{
    int                            rc, i;
    size_t                         len, n, plen;
    unsigned char                 *url, *q, *path, *buf;
    ngx_http_darkroom_sign_link_t  again;

    len = ngx_http_darkroom_sign_url(link, key, sizeof(key) - 1, NULL, 0, &rc);
    check(len > 0, "a parsed link cannot be signed");

    url = malloc(len);
    check(url != NULL, "no memory");
    n = ngx_http_darkroom_sign_url(link, key, sizeof(key) - 1, url, len, &rc);
    check(n == len, "URL length differs from the announced one");

    q = memchr(url, '?', len);
    check(q != NULL, "no query in a signed URL");

    path = malloc(q - url + 1);
    buf = malloc(len - (q + 1 - url) + 1);
    check(path != NULL && buf != NULL, "no memory");

    plen = unescape(url, q - url, path);
    check(plen == link->path.len
          && memcmp(path, link->path.data, plen) == 0,
          "the signed URL's path decodes to another path");

    again.path.data = path;
    again.path.len = plen;

    rc = ngx_http_darkroom_sign_parse(q + 1, len - (q + 1 - url), &again,
                                      buf);
    check(rc == NGX_HTTP_DARKROOM_SIGN_OK, "a signed URL does not parse");

    for (i = 0; i < NGX_HTTP_DARKROOM_P_N; i++) {
        check(again.param[i].len == link->param[i].len
              && (again.param[i].data == NULL) == (link->param[i].data == NULL)
              && (again.param[i].len == 0
                  || memcmp(again.param[i].data, link->param[i].data,
                            again.param[i].len) == 0),
              "a signed URL parses to other parameters");
    }

    check(ngx_http_darkroom_sign_verify(&again, key, sizeof(key) - 1)
          == NGX_HTTP_DARKROOM_SIGN_OK, "a signed URL does not verify");

    free(buf);
    free(path);
    free(url);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                            rc;
    size_t                         plen, qlen, n;
    unsigned char                 *path, *query, *buf, *canon;
    const uint8_t                 *nl;
    ngx_http_darkroom_sign_link_t  link;

    nl = memchr(data, '\n', size);
    plen = nl ? (size_t) (nl - data) : size;
    qlen = nl ? size - plen - 1 : 0;

    /* exact-size heap copies, so any overread is caught */

    path = malloc(plen ? plen : 1);
    query = malloc(qlen ? qlen : 1);
    buf = malloc(qlen + 1);

    if (path == NULL || query == NULL || buf == NULL) {
        free(path);
        free(query);
        free(buf);
        return 0;
    }

    memcpy(path, data, plen);
    memcpy(query, data + plen + (nl ? 1 : 0), qlen);

    (void) ngx_http_darkroom_utf8_valid(path, plen);

    rc = ngx_http_darkroom_sign_parse(query, qlen, &link, buf);
    (void) ngx_http_darkroom_sign_code(rc);

    if (ngx_http_darkroom_sign_path(path, plen) == NGX_HTTP_DARKROOM_SIGN_OK
        && rc == NGX_HTTP_DARKROOM_SIGN_OK)
    {
        link.path.data = path;
        link.path.len = plen;

        n = ngx_http_darkroom_sign_canonical(&link, NULL, 0);
        canon = malloc(n ? n : 1);
        check(canon != NULL, "no memory");
        check(ngx_http_darkroom_sign_canonical(&link, canon, n) == n,
              "canonical length differs from the announced one");
        free(canon);

        rc = ngx_http_darkroom_sign_verify(&link, key, sizeof(key) - 1);
        check(rc == NGX_HTTP_DARKROOM_SIGN_OK
              || rc == NGX_HTTP_DARKROOM_SIGN_MISMATCH,
              "verify failed for another reason than a mismatch");

        use_params(&link);
        round_trip(&link);
    }

    free(buf);
    free(query);
    free(path);

    return 0;
}
