
/*
 * darkroom: the libcurl client used inside pool threads.
 *
 * One easy handle per thread, reset between calls, so connections to a
 * provider are kept alive across calls.  Answers are bounded in size; no
 * nginx memory and no nginx logging are touched here.
 *
 * A POST that nothing deduplicates (no Idempotency-Key: Postmark,
 * SendGrid, theprintspace's legacy drafts) goes on a fresh connection:
 * libcurl's Curl_retry_request() silently resends a request whose reused
 * connection died before any answer, which could be a second email or
 * order.  libcurl has no option to turn only that off (curl PR #18417,
 * CURLOPT_FORBID_RETRY_ON_REUSE, is not in any release we build with);
 * the cost is one connection setup for such calls.
 *
 * Each call is traced (NGX_DEBUG builds, debug log on): method, the URL
 * without credentials, query or fragment, status and duration.  No header
 * and no body is: that is where the keys are.
 */


#include "ngx_http_darkroom.h"

#include <curl/curl.h>


/* what a provider's answer may have of headers; a buffer's first size */
#define NGX_HTTP_DARKROOM_FETCH_HEADERS_MAX  (64 * 1024)
#define NGX_HTTP_DARKROOM_FETCH_BUF          4096


typedef struct {
    char     *data;
    size_t    len;
    size_t    size;
    size_t    max;
} ngx_http_darkroom_fetch_buf_t;


static __thread CURL  *ngx_http_darkroom_curl;


static size_t ngx_http_darkroom_fetch_write(char *ptr, size_t size,
    size_t nmemb, void *userdata);
static void ngx_http_darkroom_fetch_setup(CURL *curl,
    ngx_http_darkroom_fetch_req_t *req, struct curl_slist *list,
    ngx_http_darkroom_fetch_buf_t *body,
    ngx_http_darkroom_fetch_buf_t *headers);
static ngx_int_t ngx_http_darkroom_fetch_headers(
    ngx_http_darkroom_fetch_req_t *req, struct curl_slist **list);
static ngx_uint_t ngx_http_darkroom_fetch_resend_safe(
    ngx_http_darkroom_fetch_req_t *req);
#if (NGX_DEBUG)
static void ngx_http_darkroom_fetch_trace(ngx_http_darkroom_fetch_req_t *req,
    long status, uint64_t start, const char *failure);
#endif


ngx_int_t
ngx_http_darkroom_fetch(ngx_http_darkroom_fetch_req_t *req,
    ngx_http_darkroom_fetch_resp_t *resp, ngx_http_darkroom_error_t *err)
{
    CURL                           *curl;
    CURLcode                        rc;
    struct curl_slist              *list;
    ngx_http_darkroom_fetch_buf_t   body, headers;
#if (NGX_DEBUG)
    uint64_t                        start;
#endif

    ngx_memzero(resp, sizeof(ngx_http_darkroom_fetch_resp_t));
    ngx_memzero(&body, sizeof(ngx_http_darkroom_fetch_buf_t));
    ngx_memzero(&headers, sizeof(ngx_http_darkroom_fetch_buf_t));

    body.max = NGX_HTTP_DARKROOM_FETCH_MAX;
    headers.max = NGX_HTTP_DARKROOM_FETCH_HEADERS_MAX;

    curl = ngx_http_darkroom_curl;

    if (curl == NULL) {
        curl = curl_easy_init();
        if (curl == NULL) {
            ngx_http_darkroom_error_set(err, NGX_HTTP_BAD_GATEWAY,
                                        "provider_unavailable",
                                        "The provider could not be "
                                        "reached.");
            snprintf(err->detail, sizeof(err->detail),
                     "curl_easy_init() failed");
            return NGX_ERROR;
        }

        ngx_http_darkroom_curl = curl;

    } else {
        curl_easy_reset(curl);
    }

    if (ngx_http_darkroom_fetch_headers(req, &list) != NGX_OK) {
        ngx_http_darkroom_error_set(err, NGX_HTTP_BAD_GATEWAY,
                                    "provider_unavailable",
                                    "The provider could not be reached.");
        snprintf(err->detail, sizeof(err->detail), "out of memory");
        return NGX_ERROR;
    }

    ngx_http_darkroom_fetch_setup(curl, req, list, &body, &headers);

#if (NGX_DEBUG)
    start = ngx_http_darkroom_tracing() ? ngx_http_darkroom_monotonic_ms()
                                        : 0;
#endif

    rc = curl_easy_perform(curl);

    curl_slist_free_all(list);

    resp->body = body.data;
    resp->body_len = body.len;
    resp->headers = headers.data;
    resp->headers_len = headers.len;

    if (rc != CURLE_OK) {
        ngx_http_darkroom_error_set(err, NGX_HTTP_BAD_GATEWAY,
                                    "provider_unavailable",
                                    "The provider could not be reached.");
        snprintf(err->detail, sizeof(err->detail), "%s %s: %s",
                 req->method ? req->method : "POST", req->url,
                 curl_easy_strerror(rc));

#if (NGX_DEBUG)
        ngx_http_darkroom_fetch_trace(req, 0, start, curl_easy_strerror(rc));
#endif

        /* a broken connection must not be reused */
        curl_easy_cleanup(curl);
        ngx_http_darkroom_curl = NULL;

        return NGX_ERROR;
    }

    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &resp->status);

#if (NGX_DEBUG)
    ngx_http_darkroom_fetch_trace(req, resp->status, start, NULL);
#endif

    return NGX_OK;
}


#if (NGX_DEBUG)

/*
 * In a thread: "provider call POST https://host/path: 200 in 35 ms".  The
 * URL loses its user:password@, its query and its fragment.
 */

static void
ngx_http_darkroom_fetch_trace(ngx_http_darkroom_fetch_req_t *req,
    long status, uint64_t start, const char *failure)
{
    size_t       len;
    uint64_t     ms;
    const char  *url, *host, *at, *end;

    if (!ngx_http_darkroom_tracing()) {
        return;
    }

    ms = ngx_http_darkroom_monotonic_ms() - start;

    url = req->url;
    host = strstr(url, "://");
    host = host ? host + 3 : url;
    len = host - url;

    end = host + strcspn(host, "/?#");
    at = memchr(host, '@', end - host);

    if (at) {
        host = at + 1;
    }

    end += strcspn(end, "?#");

    if (failure) {
        ngx_http_darkroom_trace("provider call %s %.*s%.*s: %s after %llu ms",
                                req->method ? req->method : "POST",
                                (int) len, url, (int) (end - host), host,
                                failure, (unsigned long long) ms);
        return;
    }

    ngx_http_darkroom_trace("provider call %s %.*s%.*s: %ld in %llu ms",
                            req->method ? req->method : "POST",
                            (int) len, url, (int) (end - host), host,
                            status, (unsigned long long) ms);
}

#endif


/* the request's headers as curl takes them */

static ngx_int_t
ngx_http_darkroom_fetch_headers(ngx_http_darkroom_fetch_req_t *req,
    struct curl_slist **list)
{
    char                 line[sizeof("X-Request-Id: ")
                              + NGX_HTTP_DARKROOM_REQUEST_ID_LEN];
    const char         **h, *rid;
    struct curl_slist   *l;

    *list = NULL;

    for (h = req->headers; h && *h; h++) {
        l = curl_slist_append(*list, *h);
        if (l == NULL) {
            curl_slist_free_all(*list);
            *list = NULL;
            return NGX_ERROR;
        }

        *list = l;
    }

    /* a request task's call says which request made it (curl copies) */

    rid = ngx_http_darkroom_request_id(0);

    if (rid) {
        (void) snprintf(line, sizeof(line), "X-Request-Id: %s", rid);

        l = curl_slist_append(*list, line);
        if (l) {
            *list = l;
        }
    }

    /* an empty Expect keeps curl from waiting for "100 Continue" */
    l = curl_slist_append(*list, "Expect:");
    if (l) {
        *list = l;
    }

    return NGX_OK;
}


void
ngx_http_darkroom_fetch_free(ngx_http_darkroom_fetch_resp_t *resp)
{
    free(resp->body);
    free(resp->headers);
    resp->body = NULL;
    resp->headers = NULL;
}


/*
 * The value of the last header with this name (a redirect or "100
 * Continue" may precede the final answer's headers), trimmed.
 */

size_t
ngx_http_darkroom_fetch_header(ngx_http_darkroom_fetch_resp_t *resp,
    const char *name, char *value, size_t size)
{
    size_t   nlen, len;
    char    *p, *end, *eol, *v;

    len = 0;
    nlen = ngx_strlen(name);

    if (resp->headers == NULL || size == 0) {
        return 0;
    }

    p = resp->headers;
    end = resp->headers + resp->headers_len;

    while (p < end) {
        eol = memchr(p, '\n', end - p);
        if (eol == NULL) {
            eol = end;
        }

        if ((size_t) (eol - p) > nlen && p[nlen] == ':'
            && ngx_strncasecmp((u_char *) p, (u_char *) name, nlen) == 0)
        {
            v = p + nlen + 1;

            while (v < eol && (*v == ' ' || *v == '\t')) {
                v++;
            }

            len = eol - v;

            while (len && (v[len - 1] == '\r' || v[len - 1] == ' ')) {
                len--;
            }

            len = ngx_min(len, size - 1);
            ngx_memcpy(value, v, len);
            value[len] = '\0';
        }

        p = eol + 1;
    }

    return len;
}


static size_t
ngx_http_darkroom_fetch_write(char *ptr, size_t size, size_t nmemb,
    void *userdata)
{
    ngx_http_darkroom_fetch_buf_t *b = userdata;

    char    *p;
    size_t   n, want;

    n = size * nmemb;

    if (b->len + n > b->max) {
        /* returning less than given makes curl fail the transfer */
        return 0;
    }

    if (b->len + n + 1 > b->size) {
        want = ngx_max(b->size * 2, b->len + n + 1);
        want = ngx_max(want, NGX_HTTP_DARKROOM_FETCH_BUF);

        p = realloc(b->data, want);
        if (p == NULL) {
            return 0;
        }

        b->data = p;
        b->size = want;
    }

    ngx_memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = '\0';

    return n;
}


/*
 * Whether the same request twice is harmless: methods idempotent by
 * definition (GET, HEAD, PUT, DELETE, ...), a request carrying an
 * Idempotency-Key, or one the caller marks (a key in the body).
 */

static ngx_uint_t
ngx_http_darkroom_fetch_resend_safe(ngx_http_darkroom_fetch_req_t *req)
{
    const char  **h;

    if (req->resend_safe) {
        return 1;
    }

    if (req->method == NULL ? req->body == NULL
        : (ngx_strcmp(req->method, "POST") != 0
           && ngx_strcmp(req->method, "PATCH") != 0))
    {
        return 1;
    }

    for (h = req->headers; h && *h; h++) {
        if (ngx_strncasecmp((u_char *) *h, (u_char *) "Idempotency-Key:",
                            sizeof("Idempotency-Key:") - 1)
            == 0)
        {
            return 1;
        }
    }

    return 0;
}


/* the transfer's options; the handle was just made or reset */

static void
ngx_http_darkroom_fetch_setup(CURL *curl, ngx_http_darkroom_fetch_req_t *req,
    struct curl_slist *list, ngx_http_darkroom_fetch_buf_t *body,
    ngx_http_darkroom_fetch_buf_t *headers)
{
    curl_easy_setopt(curl, CURLOPT_URL, req->url);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long) req->timeout);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                     (long) ngx_min(req->timeout, 10000));
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(curl, CURLOPT_USERAGENT,
                     "darkroom/" NGX_HTTP_DARKROOM_VERSION);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION,
                     ngx_http_darkroom_fetch_write);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, body);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION,
                     ngx_http_darkroom_fetch_write);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, headers);

    if (req->body) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, req->body);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long) req->body_len);
    }

    if (!ngx_http_darkroom_fetch_resend_safe(req)) {
        /*
         * libcurl resends a request by itself when a reused connection
         * dies before any byte of an answer ("Connection died, retrying a
         * fresh connect"), though the server may have acted on it.  On a
         * new connection it never does: the loss reaches the caller, whose
         * retry (a job's backoff) is deliberate and logged.
         */
        curl_easy_setopt(curl, CURLOPT_FRESH_CONNECT, 1L);
    }

    if (req->method && ngx_strcmp(req->method, "POST") != 0) {
        curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, req->method);
        if (ngx_strcmp(req->method, "GET") == 0) {
            curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
        }
    }
}
