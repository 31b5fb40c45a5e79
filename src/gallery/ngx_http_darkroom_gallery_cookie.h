
/*
 * darkroom: the gallery cookie, the pure part (no nginx), unit-tested and
 * fuzzed.
 *
 *   darkroom_gallery=<id>.<generation>.<expiry>.<signature>
 *
 * The numbers are decimal, without sign, spaces or leading zeros (so each
 * has exactly one form, the one the signature was made over), id in
 * 1 .. 2^63-1, generation in 1 .. 2^31-1, expiry (unix time) in
 * 1 .. 2^63-1; the signature is 43 base64url characters (an HMAC-SHA256,
 * unpadded).
 *
 * The visitor cookie of proofing, in the same form with the visitor's id
 * (1 .. 2^63-1) before the expiry, its MAC over a domain of its own:
 *
 *   darkroom_visitor=<id>.<generation>.<visitor>.<expiry>.<signature>
 */


#ifndef _NGX_HTTP_DARKROOM_GALLERY_COOKIE_H_INCLUDED_
#define _NGX_HTTP_DARKROOM_GALLERY_COOKIE_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>


#define NGX_HTTP_DARKROOM_GALLERY_COOKIE_NAME     "darkroom_gallery"
#define NGX_HTTP_DARKROOM_GALLERY_VISITOR_NAME    "darkroom_visitor"
#define NGX_HTTP_DARKROOM_GALLERY_COOKIE_SIG_LEN  43


typedef struct {
    uint64_t                      id;
    uint32_t                      generation;
    int64_t                       expires;
    const unsigned char          *sig;      /* in the value parsed */
} ngx_http_darkroom_gallery_cookie_t;


typedef struct {
    uint64_t                      id;
    uint32_t                      generation;
    uint64_t                      visitor;
    int64_t                       expires;
    const unsigned char          *sig;      /* in the value parsed */
} ngx_http_darkroom_gallery_visitor_t;


/*
 * The next darkroom_gallery value in a Cookie header's value (RFC 6265
 * 4.2.1: pairs separated by ";", spaces and tabs around a pair ignored; the
 * name compared exactly).  Every occurrence is returned in turn: returns
 * 1 with *val and *vlen set and *pos advanced, 0 when there is none left.
 */
int ngx_http_darkroom_gallery_cookie_next(const unsigned char **pos,
    const unsigned char *end, const unsigned char **val, size_t *vlen);

/* parses a value strictly; 0 or -1 */
int ngx_http_darkroom_gallery_cookie_parse(const unsigned char *v,
    size_t len, ngx_http_darkroom_gallery_cookie_t *c);

/* the same for darkroom_visitor values */
int ngx_http_darkroom_gallery_visitor_next(const unsigned char **pos,
    const unsigned char *end, const unsigned char **val, size_t *vlen);
int ngx_http_darkroom_gallery_visitor_parse(const unsigned char *v,
    size_t len, ngx_http_darkroom_gallery_visitor_t *c);


#endif /* _NGX_HTTP_DARKROOM_GALLERY_COOKIE_H_INCLUDED_ */
