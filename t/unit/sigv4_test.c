
/*
 * darkroom: unit test of the SigV4 presigned URL (ngx_http_darkroom_sigv4.c)
 * against AWS's published example ("Authenticating Requests: Using Query
 * Parameters (AWS Signature Version 4)", Amazon S3 API reference), and a
 * second case (path-style MinIO host with a port, UTF-8 key, session token,
 * response-content-disposition) whose expected value was computed with
 * Perl's Digest::SHA, independently of this code.  Prints TAP.
 */


#include <stdio.h>
#include <string.h>

#include "ngx_http_darkroom_sigv4.h"


static int  n_test, n_failed;


static void
is_str(const char *got, size_t len, const char *want, const char *name)
{
    int  cond;

    cond = (len == strlen(want) && memcmp(got, want, len) == 0);

    n_test++;

    if (!cond) {
        n_failed++;
    }

    printf("%sok %d - %s\n", cond ? "" : "not ", n_test, name);

    if (!cond) {
        printf("#   got:  %.*s\n#   want: %s\n", (int) len, got, want);
    }
}


static void
ok(int cond, const char *name)
{
    n_test++;

    if (!cond) {
        n_failed++;
    }

    printf("%sok %d - %s\n", cond ? "" : "not ", n_test, name);
}


int
main(void)
{
    char                              url[2048], hash[65];
    size_t                            n;
    ngx_http_darkroom_sigv4_t         req;
    ngx_http_darkroom_sigv4_param_t   rcd;

    /* AWS: GET examplebucket/test.txt, 2013-05-24T00:00:00Z, 86400 s */

    memset(&req, 0, sizeof(req));
    req.scheme = "https";
    req.method = "GET";
    req.host = "examplebucket.s3.amazonaws.com";
    req.path = "/test.txt";
    req.region = "us-east-1";
    req.service = "s3";
    req.access_key = "AKIAIOSFODNN7EXAMPLE";
    req.secret_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    req.now = 1369353600;           /* 20130524T000000Z */
    req.expires = 86400;

    n = ngx_http_darkroom_sigv4_presign(&req, url, sizeof(url), hash);

    is_str(hash, strlen(hash),
           "3bfa292879f6447bbcda7001decf97f4a54dc650c8942174ae0a9121cf58ad04",
           "AWS example: canonical request hash");

    is_str(url, n,
           "https://examplebucket.s3.amazonaws.com/test.txt"
           "?X-Amz-Algorithm=AWS4-HMAC-SHA256"
           "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1"
           "%2Fs3%2Faws4_request"
           "&X-Amz-Date=20130524T000000Z"
           "&X-Amz-Expires=86400"
           "&X-Amz-SignedHeaders=host"
           "&X-Amz-Signature="
           "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404",
           "AWS example: presigned URL byte for byte");

    ok(ngx_http_darkroom_sigv4_presign(&req, NULL, 0, NULL) == n,
       "length without a buffer");
    ok(ngx_http_darkroom_sigv4_presign(&req, url, 10, NULL) == n,
       "length when the buffer is too small");

    req.expires = 604801;
    ok(ngx_http_darkroom_sigv4_presign(&req, url, sizeof(url), NULL) == 0,
       "expiry over 7 days refused");
    req.expires = 86400;

    req.path = "test.txt";
    ok(ngx_http_darkroom_sigv4_presign(&req, url, sizeof(url), NULL) == 0,
       "relative path refused");
    req.path = "/test.txt";

    /* found by t/fuzz/sigv4.c: an empty string first into a buffer was
     * memcpy() to NULL + 0 (undefined; UBSan aborts the unit build) */

    req.access_key = "";
    n = ngx_http_darkroom_sigv4_presign(&req, url, sizeof(url), NULL);
    url[n < sizeof(url) ? n : 0] = '\0';
    ok(n > 0 && strstr(url, "X-Amz-Credential=%2F20130524%2F") != NULL,
       "empty access key: a URL, no undefined behaviour");
    req.access_key = "AKIAIOSFODNN7EXAMPLE";

    /*
     * the scope in the string to sign is its own, not what follows the
     * first "/" of the credential: an access key with a "/" (expected
     * value computed with Python's hmac and hashlib)
     */

    req.access_key = "AKIA/SLASH";
    n = ngx_http_darkroom_sigv4_presign(&req, url, sizeof(url), hash);

    is_str(url, n,
           "https://examplebucket.s3.amazonaws.com/test.txt"
           "?X-Amz-Algorithm=AWS4-HMAC-SHA256"
           "&X-Amz-Credential=AKIA%2FSLASH%2F20130524%2Fus-east-1"
           "%2Fs3%2Faws4_request"
           "&X-Amz-Date=20130524T000000Z"
           "&X-Amz-Expires=86400"
           "&X-Amz-SignedHeaders=host"
           "&X-Amz-Signature="
           "cdd8f60d298ee4c3bde56f80044f86be9ad1c8d83efd113344aafb68d4bd538b",
           "access key with a slash: the scope is the date's onwards");
    req.access_key = "AKIAIOSFODNN7EXAMPLE";

    /* MinIO, path style */

    rcd.name = "response-content-disposition";
    rcd.value = "attachment; filename=\"a.jpg\"";

    memset(&req, 0, sizeof(req));
    req.scheme = "http";
    req.host = "localhost:9000";
    req.path = "/photos/\xc3\xa9t\xc3\xa9 1.jpg";
    req.region = "auto";
    req.service = "s3";
    req.access_key = "minioadmin";
    req.secret_key = "minio secret/+key";
    req.session_token = "tok/en+1=";
    req.now = 1709251199;           /* 20240229T235959Z */
    req.expires = 300;
    req.params = &rcd;
    req.nparams = 1;

    n = ngx_http_darkroom_sigv4_presign(&req, url, sizeof(url), hash);

    is_str(hash, strlen(hash),
           "899960199e5eccbebca6f32c52958fbc4036834baf6849e4ef55cdfdd1972e2d",
           "MinIO case: canonical request hash");

    is_str(url, n,
           "http://localhost:9000/photos/%C3%A9t%C3%A9%201.jpg"
           "?X-Amz-Algorithm=AWS4-HMAC-SHA256"
           "&X-Amz-Credential=minioadmin%2F20240229%2Fauto%2Fs3"
           "%2Faws4_request"
           "&X-Amz-Date=20240229T235959Z"
           "&X-Amz-Expires=300"
           "&X-Amz-Security-Token=tok%2Fen%2B1%3D"
           "&X-Amz-SignedHeaders=host"
           "&response-content-disposition="
           "attachment%3B%20filename%3D%22a.jpg%22"
           "&X-Amz-Signature="
           "70f209d79bed1707842eabbc235c93d9540000a3c552f290ef9924907ffb9cda",
           "MinIO case: presigned URL");

    printf("1..%d\n", n_test);

    return n_failed ? 1 : 0;
}
