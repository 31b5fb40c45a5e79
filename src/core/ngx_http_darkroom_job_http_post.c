
/*
 * darkroom: the "http_post" job, core's own kind.
 *
 * Delivers a JSON document to a URL, for a shop's own systems (accounting,
 * a chat hook).  Payload: {"url": "...", "body": any JSON, "headers":
 * {"Name": "value"}}.  The job id is sent as Idempotency-Key so a receiver
 * can drop the repeat of a delivery whose answer was lost.  Runs in a job
 * runner's thread: plain C, libcurl through ngx_http_darkroom_fetch().
 */


#include "ngx_http_darkroom.h"


/* headers of the payload, and the two the job always sends */
#define NGX_HTTP_DARKROOM_POST_HEADERS     16
#define NGX_HTTP_DARKROOM_POST_HEADER_LEN  256
#define NGX_HTTP_DARKROOM_POST_OWN         2


typedef struct {
    char          key[sizeof("Idempotency-Key: darkroom-job-")
                      + NGX_INT64_LEN];
    char          text[NGX_HTTP_DARKROOM_POST_HEADERS]
                      [NGX_HTTP_DARKROOM_POST_HEADER_LEN];
    const char   *list[NGX_HTTP_DARKROOM_POST_OWN
                       + NGX_HTTP_DARKROOM_POST_HEADERS + 1];
} ngx_http_darkroom_post_headers_t;


static ngx_int_t ngx_http_darkroom_post_headers(ngx_http_darkroom_job_t *job,
    cJSON *headers, ngx_http_darkroom_post_headers_t *h,
    ngx_http_darkroom_error_t *err);
static ngx_int_t ngx_http_darkroom_post_answer(ngx_http_darkroom_job_t *job,
    const char *url, ngx_http_darkroom_fetch_resp_t *resp,
    ngx_http_darkroom_error_t *err);


ngx_int_t
ngx_http_darkroom_job_http_post(ngx_http_darkroom_job_t *job,
    ngx_http_darkroom_error_t *err)
{
    char                              *text;
    cJSON                             *url, *body;
    ngx_int_t                          rc;
    ngx_http_darkroom_fetch_req_t      req;
    ngx_http_darkroom_fetch_resp_t     resp;
    ngx_http_darkroom_post_headers_t   h;

    url = cJSON_GetObjectItemCaseSensitive(job->payload, "url");
    body = cJSON_GetObjectItemCaseSensitive(job->payload, "body");

    if (!cJSON_IsString(url)
        || (ngx_strncmp(url->valuestring, "http://", 7) != 0
            && ngx_strncmp(url->valuestring, "https://", 8) != 0))
    {
        snprintf(err->detail, sizeof(err->detail),
                 "http_post: payload needs an http(s) \"url\"");
        return NGX_DECLINED;
    }

    if (ngx_http_darkroom_post_headers(job,
            cJSON_GetObjectItemCaseSensitive(job->payload, "headers"),
            &h, err)
        != NGX_OK)
    {
        return NGX_DECLINED;
    }

    text = body ? (cJSON_IsString(body) ? strdup(body->valuestring)
                                        : cJSON_PrintUnformatted(body))
                : strdup("{}");
    if (text == NULL) {
        snprintf(err->detail, sizeof(err->detail), "http_post: no memory");
        return NGX_ERROR;
    }

    ngx_memzero(&req, sizeof(ngx_http_darkroom_fetch_req_t));
    req.method = "POST";
    req.url = url->valuestring;
    req.headers = h.list;
    req.body = text;
    req.body_len = strlen(text);
    req.timeout = job->fetch_timeout;

    rc = ngx_http_darkroom_fetch(&req, &resp, err);

    free(text);

    if (rc == NGX_OK) {
        rc = ngx_http_darkroom_post_answer(job, url->valuestring, &resp, err);
    }

    ngx_http_darkroom_fetch_free(&resp);

    return (rc == NGX_OK || rc == NGX_DECLINED) ? rc : NGX_ERROR;
}


/* the job's own headers, then the payload's: NGX_ERROR if one is bad */

static ngx_int_t
ngx_http_darkroom_post_headers(ngx_http_darkroom_job_t *job, cJSON *headers,
    ngx_http_darkroom_post_headers_t *h, ngx_http_darkroom_error_t *err)
{
    cJSON       *e;
    ngx_uint_t   i, n;

    snprintf(h->key, sizeof(h->key), "Idempotency-Key: darkroom-job-%lld",
             (long long) job->id);

    i = 0;
    h->list[i++] = h->key;
    h->list[i++] = "Content-Type: application/json";

    n = 0;

    cJSON_ArrayForEach(e, headers) {
        if (n == NGX_HTTP_DARKROOM_POST_HEADERS
            || !cJSON_IsString(e) || e->string == NULL
            || strpbrk(e->string, "\r\n:") || strpbrk(e->valuestring, "\r\n"))
        {
            snprintf(err->detail, sizeof(err->detail),
                     "http_post: bad or too many headers");
            return NGX_ERROR;
        }

        snprintf(h->text[n], sizeof(h->text[n]), "%s: %s", e->string,
                 e->valuestring);
        h->list[i++] = h->text[n++];
    }

    h->list[i] = NULL;

    return NGX_OK;
}


/* a 2xx is delivered; a client error the receiver will repeat is final */

static ngx_int_t
ngx_http_darkroom_post_answer(ngx_http_darkroom_job_t *job, const char *url,
    ngx_http_darkroom_fetch_resp_t *resp, ngx_http_darkroom_error_t *err)
{
    char  retry[NGX_INT64_LEN + 1];

    if (resp->status >= 200 && resp->status < 300) {
        return NGX_OK;
    }

    snprintf(err->detail, sizeof(err->detail), "http_post: %s answered %ld",
             url, resp->status);

    if (ngx_http_darkroom_fetch_header(resp, "Retry-After", retry,
                                       sizeof(retry)))
    {
        job->retry_after = strtoul(retry, NULL, 10) * 1000;
    }

    /* a client error other than these will fail the same way again */
    return (resp->status >= 400 && resp->status < 500
            && resp->status != 408 && resp->status != 409
            && resp->status != 425 && resp->status != 429)
           ? NGX_DECLINED : NGX_ERROR;
}
