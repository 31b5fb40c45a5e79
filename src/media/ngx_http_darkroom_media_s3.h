
/*
 * darkroom: answering a verified media request with a redirect to an
 * S3-compatible bucket, presigned with AWS Signature Version 4.
 */


#ifndef _NGX_HTTP_DARKROOM_MEDIA_S3_H_INCLUDED_
#define _NGX_HTTP_DARKROOM_MEDIA_S3_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


typedef struct {
    ngx_str_t                    scheme;       /* "https" */
    ngx_str_t                    host;         /* endpoint, with port */
    ngx_str_t                    bucket;
    ngx_str_t                    region;
    ngx_str_t                    prefix;       /* key prefix, may be empty */
    ngx_str_t                    access_key;
    ngx_str_t                    secret_key;
    time_t                       expires;
    ngx_flag_t                   virtual_host; /* bucket.host/key */
} ngx_http_darkroom_media_s3_t;


char *ngx_http_darkroom_media_s3_parse(ngx_conf_t *cf,
    ngx_http_darkroom_media_s3_t **s3);
ngx_int_t ngx_http_darkroom_media_s3_redirect(ngx_http_request_t *r,
    ngx_http_darkroom_media_s3_t *s3, ngx_str_t *disposition);


#endif /* _NGX_HTTP_DARKROOM_MEDIA_S3_H_INCLUDED_ */
