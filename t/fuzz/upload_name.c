/* fuzz-sources: src/gallery/ngx_http_darkroom_upload_name.c */

/*
 * darkroom: fuzz target for a console upload's file name and first bytes
 * (ngx_http_darkroom_upload_name.c): the name, from the request's URI,
 * becomes a file in the gallery's folder; the first bytes decide whether
 * the file is kept.
 *
 * Input: the URI's last segment, percent-decoded here as nginx does.  A
 * name taken must be 1 to 200 bytes, every one from the whitelist (so no
 * "/", "\\", NUL or "%"), not starting with "." (so never "." or ".."),
 * ending with an image's extension.  The input's first bytes, when taken
 * as an image's, must begin with one of the five signatures.  Any
 * mismatch aborts (a finding).
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ngx_http_darkroom_upload_name.h"


static void
check(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "upload_name: %s\n", what);
        abort();
    }
}


static int
hex(int c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }

    c |= 0x20;

    return (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
}


static int
ends(const unsigned char *p, size_t n, const char *ext)
{
    size_t  e = strlen(ext);

    return n > e && strncasecmp((const char *) p + n - e, ext, e) == 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t          i, n;
    unsigned char  *name, c;

    name = malloc(size + 1);
    if (name == NULL) {
        return 0;
    }

    for (i = 0, n = 0; i < size; n++) {
        if (data[i] == '%' && i + 2 < size && hex(data[i + 1]) >= 0
            && hex(data[i + 2]) >= 0)
        {
            name[n] = (unsigned char) (hex(data[i + 1]) * 16
                                       + hex(data[i + 2]));
            i += 3;

        } else {
            name[n] = data[i++];
        }
    }

    if (ngx_http_darkroom_upload_name_valid(name, n)) {
        check(n >= 1 && n <= NGX_HTTP_DARKROOM_UPLOAD_NAME_MAX, "length");
        check(name[0] != '.', "a leading dot");

        for (i = 0; i < n; i++) {
            c = name[i];
            check(c != '/' && c != '\\' && c != '\0' && c != '%'
                  && c >= 0x20 && c < 0x7f, "a byte outside the whitelist");
        }

        check(ends(name, n, ".jpg") || ends(name, n, ".jpeg")
              || ends(name, n, ".png") || ends(name, n, ".tif")
              || ends(name, n, ".tiff") || ends(name, n, ".webp"),
              "no image extension");
    }

    free(name);

    if (ngx_http_darkroom_upload_image_head(data, size)) {
        check(size >= NGX_HTTP_DARKROOM_UPLOAD_HEAD, "a short head taken");
        check((data[0] == 0xff && data[1] == 0xd8 && data[2] == 0xff)
              || memcmp(data, "\x89PNG", 4) == 0
              || memcmp(data, "II*", 3) == 0 || memcmp(data, "MM\0*", 4) == 0
              || (memcmp(data, "RIFF", 4) == 0
                  && memcmp(data + 8, "WEBP", 4) == 0),
              "a head without a signature taken");
    }

    return 0;
}
