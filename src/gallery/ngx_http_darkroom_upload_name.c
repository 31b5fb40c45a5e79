
/*
 * darkroom: the pure part of a gallery upload (see the header).  The name
 * becomes a file in the gallery's folder, so it is a whitelist: no slash,
 * no NUL, no leading dot, nothing a shell or a ZIP reader could misread.
 */


#include <string.h>
#include <strings.h>

#include "ngx_http_darkroom_upload_name.h"


int
ngx_http_darkroom_upload_name_valid(const unsigned char *name, size_t len)
{
    size_t          i, n, k;
    unsigned char   c;

    static const char  *ext[] = { ".jpg", ".jpeg", ".png", ".tif", ".tiff",
                                  ".webp" };

    if (len == 0 || len > NGX_HTTP_DARKROOM_UPLOAD_NAME_MAX
        || name[0] == '.')
    {
        return 0;
    }

    for (i = 0; i < len; i++) {
        c = name[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == ' ' || c == '.' || c == '_'
              || c == '-' || c == '(' || c == ')'))
        {
            return 0;
        }
    }

    for (k = 0; k < sizeof(ext) / sizeof(ext[0]); k++) {
        n = strlen(ext[k]);

        if (len > n
            && strncasecmp((const char *) name + len - n, ext[k], n) == 0)
        {
            return 1;
        }
    }

    return 0;
}


int
ngx_http_darkroom_upload_image_head(const unsigned char *h, size_t n)
{
    if (n < NGX_HTTP_DARKROOM_UPLOAD_HEAD) {
        return 0;
    }

    return (h[0] == 0xff && h[1] == 0xd8 && h[2] == 0xff)
           || memcmp(h, "\x89PNG\r\n\x1a\n", 8) == 0
           || memcmp(h, "II*\0", 4) == 0
           || memcmp(h, "MM\0*", 4) == 0
           || (memcmp(h, "RIFF", 4) == 0 && memcmp(h + 8, "WEBP", 4) == 0);
}
