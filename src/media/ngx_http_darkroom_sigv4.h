
/*
 * darkroom: AWS Signature Version 4 presigned URLs (query string
 * authentication), for redirecting a verified download to an S3-compatible
 * bucket (AWS, R2, MinIO).  Pure C with libcrypto: no nginx, no I/O, no
 * network call.  Checked against AWS's published example in t/unit/.
 */


#ifndef _NGX_HTTP_DARKROOM_SIGV4_H_INCLUDED_
#define _NGX_HTTP_DARKROOM_SIGV4_H_INCLUDED_


#include <stddef.h>
#include <time.h>


#define NGX_HTTP_DARKROOM_SIGV4_EXPIRES_MAX  604800   /* 7 days */


typedef struct {
    const char                        *name;     /* not yet encoded */
    const char                        *value;
} ngx_http_darkroom_sigv4_param_t;


typedef struct {
    const char                        *scheme;   /* "https" */
    const char                        *method;   /* "GET" */
    const char                        *host;     /* with ":port" if any */
    const char                        *path;     /* decoded, "/key" or
                                                    "/bucket/key" */
    const char                        *region;   /* "us-east-1", "auto" */
    const char                        *service;  /* "s3" */
    const char                        *access_key;
    const char                        *secret_key;
    const char                        *session_token;   /* or NULL */
    time_t                             now;
    unsigned                           expires;  /* seconds */

    /* more signed query parameters, e.g. response-content-disposition */
    const ngx_http_darkroom_sigv4_param_t  *params;
    size_t                             nparams;
} ngx_http_darkroom_sigv4_t;


/*
 * Writes "<scheme>://<host><path>?<query>&X-Amz-Signature=<hex>" into buf.
 * Returns the URL's length; if buf is NULL or size too small, the length
 * needed; 0 on error (bad input, memory, libcrypto).  If hash is not NULL
 * it receives the hex SHA-256 of the canonical request (65 bytes with NUL).
 */
size_t ngx_http_darkroom_sigv4_presign(const ngx_http_darkroom_sigv4_t *req,
    char *buf, size_t size, char *hash);


#endif /* _NGX_HTTP_DARKROOM_SIGV4_H_INCLUDED_ */
