
/*
 * darkroom: the download location of the media module (digital delivery),
 * and what it takes from the media module's location configuration.
 */


#ifndef _NGX_HTTP_DARKROOM_MEDIA_DOWNLOAD_H_INCLUDED_
#define _NGX_HTTP_DARKROOM_MEDIA_DOWNLOAD_H_INCLUDED_


#include "ngx_http_darkroom.h"
#include "ngx_http_darkroom_media_s3.h"


#define NGX_HTTP_DARKROOM_MEDIA_GONE      410


/* darkroom_download: the content handler of a download location */
ngx_int_t ngx_http_darkroom_media_download_handler(ngx_http_request_t *r);

/* the location's darkroom_media_s3, or NULL */
ngx_http_darkroom_media_s3_t *ngx_http_darkroom_media_loc_s3(
    ngx_http_request_t *r);

/* the location's darkroom_download_gallery_root ("": none) */
ngx_str_t *ngx_http_darkroom_media_loc_gallery_root(ngx_http_request_t *r);


#endif /* _NGX_HTTP_DARKROOM_MEDIA_DOWNLOAD_H_INCLUDED_ */
