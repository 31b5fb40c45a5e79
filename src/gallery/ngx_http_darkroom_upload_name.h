
/*
 * darkroom: the pure part of a gallery upload: what a photo's file name
 * may be, and the first bytes of the image kinds taken.  Nothing here
 * knows about nginx: t/fuzz/upload_name.c drives it with any bytes.
 */


#ifndef _NGX_HTTP_DARKROOM_UPLOAD_NAME_H_INCLUDED_
#define _NGX_HTTP_DARKROOM_UPLOAD_NAME_H_INCLUDED_


#include <stddef.h>


#define NGX_HTTP_DARKROOM_UPLOAD_NAME_MAX  200
#define NGX_HTTP_DARKROOM_UPLOAD_HEAD      12      /* bytes sniffed */


/*
 * 1: 1 to 200 of A-Z a-z 0-9 space . _ - ( ), not starting with a dot,
 * ending .jpg .jpeg .png .tif .tiff or .webp in any case; 0 otherwise
 */
int ngx_http_darkroom_upload_name_valid(const unsigned char *name,
    size_t len);

/* 1: the first n bytes (at least 12) are a JPEG's, PNG's, TIFF's or WebP's */
int ngx_http_darkroom_upload_image_head(const unsigned char *h, size_t n);


#endif /* _NGX_HTTP_DARKROOM_UPLOAD_NAME_H_INCLUDED_ */
