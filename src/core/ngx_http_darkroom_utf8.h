
/*
 * darkroom: the one UTF-8 decoder (RFC 3629), the pure part.
 *
 * Nothing here knows about nginx, so the signed URL checks, the ZIP name
 * cleaner, the Stripe envelope reader, the unit tests in t/unit/ and the
 * fuzz targets in t/fuzz/ all link the same code.  Valid means what
 * PostgreSQL and the RFC accept: no overlong forms, no surrogates
 * (U+D800..U+DFFF), nothing above U+10FFFF, no truncated sequence.
 */


#ifndef _NGX_HTTP_DARKROOM_UTF8_H_INCLUDED_
#define _NGX_HTTP_DARKROOM_UTF8_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>


/*
 * The length (1 to 4) of the valid character starting at p, of at most n
 * bytes, and its code point in *cp (if cp is not NULL); 0 if p does not
 * start one, or n is 0.
 */
size_t ngx_http_darkroom_utf8_decode(const unsigned char *p, size_t n,
    uint32_t *cp);

/* 1 if all len bytes at p are valid UTF-8, else 0 */
int ngx_http_darkroom_utf8_valid(const unsigned char *p, size_t len);


#endif /* _NGX_HTTP_DARKROOM_UTF8_H_INCLUDED_ */
