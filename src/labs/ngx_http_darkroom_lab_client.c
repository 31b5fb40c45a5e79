
/*
 * darkroom: the lab client, what every lab driver uses.
 *
 * One call to a lab (its account's URL and key, the driver's auth header,
 * JSON both ways, what the answer means), the common "GET the order and
 * read it", results and errors, the signed links labs download print files
 * from, callback tokens and the check on a lab's order ids.  Drivers call
 * only this file; this file calls only core.  Thread side throughout: no
 * nginx pools, no nginx logging.
 */


#include "ngx_http_darkroom_labs.h"
#include "ngx_http_darkroom_sign.h"

#include <stdarg.h>


#define NGX_HTTP_DARKROOM_LAB_AUTH_LEN  512   /* the auth header */
#define NGX_HTTP_DARKROOM_LAB_IDEM_LEN  200   /* the Idempotency-Key one */
#define NGX_HTTP_DARKROOM_LAB_FILE_LEN  2048  /* a print file's link path */


static void ngx_http_darkroom_lab_answer(
    ngx_http_darkroom_fetch_resp_t *resp, const char *brand,
    const char *method, const char *path, cJSON **out,
    ngx_http_darkroom_lab_result_t *res);


void
ngx_http_darkroom_lab_error(ngx_http_darkroom_lab_result_t *res,
    const char *fmt, ...)
{
    va_list  args;

    va_start(args, fmt);
    vsnprintf(res->error, sizeof(res->error), fmt, args);
    va_end(args);
}


/* a lab refused a request: why, and its answer kept (res->detail) */

void
ngx_http_darkroom_lab_refused(ngx_http_darkroom_lab_result_t *res,
    cJSON *answer, const char *fmt, ...)
{
    va_list  args;

    va_start(args, fmt);
    vsnprintf(res->error, sizeof(res->error), fmt, args);
    va_end(args);

    free(res->detail);
    res->detail = answer ? cJSON_PrintUnformatted(answer) : NULL;
}


/*
 * A lab's order id goes into URL paths and the database: only [A-Za-z0-9_-]
 * and shorter than size, never cut (a cut id names another order).
 */

ngx_int_t
ngx_http_darkroom_lab_id_ok(const char *id, size_t size)
{
    size_t  i;

    for (i = 0; id[i]; i++) {
        if (i + 1 >= size
            || !(ngx_http_darkroom_lab_alnum(id[i])
                 || id[i] == '_' || id[i] == '-'))
        {
            return NGX_ERROR;
        }
    }

    return i ? NGX_OK : NGX_ERROR;
}


/* what a lab's answer means: rc, the parsed body, Retry-After */

static void
ngx_http_darkroom_lab_answer(ngx_http_darkroom_fetch_resp_t *resp,
    const char *brand, const char *method, const char *path, cJSON **out,
    ngx_http_darkroom_lab_result_t *res)
{
    char  retry[32];

    res->status = resp->status;

    if (resp->body_len) {
        *out = cJSON_ParseWithLength(resp->body, resp->body_len);
    }

    if (resp->status >= 200 && resp->status < 300) {
        res->rc = NGX_OK;

        if (*out == NULL) {
            res->rc = NGX_AGAIN;
            ngx_http_darkroom_lab_error(res, "%s %s %s: answer %ld is not "
                                        "JSON", brand, method, path,
                                        resp->status);
        }

    } else if (resp->status >= 500 || resp->status == 408
               || resp->status == 425 || resp->status == 429
               || resp->status == 401 || resp->status == 403)
    {
        res->rc = NGX_AGAIN;
        ngx_http_darkroom_lab_error(res, "%s %s %s answered %ld", brand,
                                    method, path, resp->status);

        if (ngx_http_darkroom_fetch_header(resp, "Retry-After", retry,
                                           sizeof(retry)))
        {
            res->retry_after = strtoul(retry, NULL, 10) * 1000;
        }

    } else {
        res->rc = NGX_DECLINED;
        ngx_http_darkroom_lab_error(res, "%s %s %s answered %ld", brand,
                                    method, path, resp->status);
    }
}


/*
 * One call to the driver's lab: its auth header, JSON both ways, and what
 * the answer means (see ngx_http_darkroom_lab_result_t).  *out is the
 * parsed answer, also for a refusal, so that its messages can be kept.
 */

ngx_int_t
ngx_http_darkroom_lab_http(ngx_http_darkroom_lab_call_t *call,
    const char *method, const char *path, const char *body, cJSON **out,
    ngx_http_darkroom_lab_result_t *res)
{
    char                              url[NGX_HTTP_DARKROOM_LAB_URL_LEN];
    char                              auth[NGX_HTTP_DARKROOM_LAB_AUTH_LEN];
    char                              idem[NGX_HTTP_DARKROOM_LAB_IDEM_LEN];
    uint64_t                          start;
    ngx_str_t                        *key;
    ngx_int_t                         rc;
    const char                       *headers[5], *brand;
    ngx_http_darkroom_error_t         err;
    ngx_http_darkroom_fetch_req_t     req;
    ngx_http_darkroom_fetch_resp_t    resp;
    ngx_http_darkroom_lab_account_t  *acct;

    *out = NULL;
    res->status = 0;
    acct = ngx_http_darkroom_lab_account(call->lcf, call->driver);
    brand = call->driver->brand;

    if (acct->keys == NULL) {
        res->rc = NGX_AGAIN;
        ngx_http_darkroom_lab_error(res, "%s is not configured (no key "
                                    "file)", brand);
        return res->rc;
    }

    key = acct->keys->elts;

    snprintf(url, sizeof(url), "%s%s", acct->api.data, path);
    snprintf(auth, sizeof(auth), call->driver->auth, (int) key[0].len,
             key[0].data);

    headers[0] = auth;
    headers[1] = "Content-Type: application/json";
    headers[2] = "Accept: application/json";
    headers[3] = NULL;

    if (res->idempotency_key) {
        snprintf(idem, sizeof(idem), "Idempotency-Key: %s",
                 res->idempotency_key);
        headers[3] = idem;
        headers[4] = NULL;
    }

    ngx_memzero(&req, sizeof(ngx_http_darkroom_fetch_req_t));
    req.method = method;
    req.url = url;
    req.headers = headers;
    req.body = body;
    req.body_len = body ? strlen(body) : 0;
    req.timeout = call->timeout;
    req.resend_safe = call->driver->resend_safe;

    ngx_memzero(&err, sizeof(ngx_http_darkroom_error_t));

    start = ngx_http_darkroom_metrics_now();
    rc = ngx_http_darkroom_fetch(&req, &resp, &err);

    if (rc != NGX_OK) {
        /* no answer: it may have landed; a retry is safe (the driver's) */
        ngx_http_darkroom_fetch_free(&resp);
        res->rc = NGX_AGAIN;
        ngx_http_darkroom_metrics_lab(call->driver->name, 1, start);
        ngx_http_darkroom_lab_error(res, "%s %s %s: %s", brand, method,
                                    path, err.detail[0] ? err.detail
                                                        : "no answer");
        return res->rc;
    }

    ngx_http_darkroom_lab_answer(&resp, brand, method, path, out, res);
    ngx_http_darkroom_metrics_lab(call->driver->name, res->rc != NGX_OK,
                                  start);

    ngx_http_darkroom_fetch_free(&resp);

    return res->rc;
}


/*
 * An order as its lab has it now: GET path, then the driver's reader on
 * the answer (or its member, when the lab wraps the order).
 */

void
ngx_http_darkroom_lab_fetch(ngx_http_darkroom_lab_call_t *call,
    const char *path, const char *member, ngx_http_darkroom_lab_read_pt reader,
    ngx_http_darkroom_lab_state_t *st, ngx_http_darkroom_lab_result_t *res)
{
    cJSON  *answer, *order;

    answer = NULL;

    ngx_http_darkroom_lab_http(call, "GET", path, NULL, &answer, res);

    order = member ? cJSON_GetObjectItemCaseSensitive(answer, member)
                   : answer;

    if (res->rc == NGX_OK && reader(order, st) != NGX_OK) {
        res->rc = NGX_AGAIN;
        ngx_http_darkroom_lab_error(res, "%s: GET %s: the answer has no "
                                    "order status", call->driver->brand,
                                    path);
    }

    cJSON_Delete(answer);
}


/*
 * An order the lab made but that is not confirmed yet (a draft), recorded
 * before it is confirmed: the admin sees it, a retry finds it anyway.
 */

ngx_int_t
ngx_http_darkroom_lab_draft(ngx_http_darkroom_lab_call_t *call,
    const char *order, ngx_http_darkroom_lab_result_t *res)
{
    const char                 *params[3];
    ngx_http_darkroom_error_t   err;

    ngx_memzero(&err, sizeof(ngx_http_darkroom_error_t));
    params[0] = call->id;
    params[1] = order;
    params[2] = call->cause;

    if (ngx_http_darkroom_db_command(call->db,
            "SELECT lab_submit_draft($1::bigint, $2, $3)", 3, params, &err)
        != NGX_OK)
    {
        res->rc = NGX_AGAIN;
        ngx_http_darkroom_lab_error(res, "draft %s not recorded: %s",
                                    order, err.detail);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * a long-lived signed darkroom URL of a print file, NUL-terminated: a shop
 * print file under darkroom_lab_asset_url, a gallery original (a gallery
 * line's) under darkroom_lab_gallery_asset_url
 */

ngx_int_t
ngx_http_darkroom_lab_asset_url(ngx_http_darkroom_lab_call_t *call,
    const char *print_path, ngx_uint_t gallery, char *buf, size_t size)
{
    u_char                          path[NGX_HTTP_DARKROOM_LAB_FILE_LEN];
    size_t                          plen, n, origin;
    ngx_str_t                      *base;
    ngx_http_darkroom_key_t        *key;
    ngx_http_darkroom_labs_conf_t  *lcf = call->lcf;

    base = gallery ? &lcf->gallery_asset_url : &lcf->asset_url;
    origin = gallery ? lcf->gallery_asset_origin : lcf->asset_origin;

    if (base->data == NULL || lcf->asset_keys == NULL) {
        return NGX_ERROR;
    }

    key = lcf->asset_keys->keys.elts;     /* the first signs */

    plen = base->len - origin;
    n = strlen(print_path);

    if (plen + 1 + n >= sizeof(path) || origin + 1 >= size) {
        return NGX_ERROR;
    }

    ngx_memcpy(path, base->data + origin, plen);
    path[plen++] = '/';
    ngx_memcpy(path + plen, print_path, n);
    plen += n;

    return ngx_http_darkroom_link_url(base, origin, key, path, plen,
                                      time(NULL) + lcf->asset_ttl, buf, size)
           ? NGX_OK : NGX_ERROR;
}


/* the callback token of a lab order: hex HMAC-SHA256(secret, id) */

ngx_int_t
ngx_http_darkroom_lab_token(ngx_str_t *secret, const char *id, char *hex)
{
    u_char  msg[128], mac[NGX_HTTP_DARKROOM_SIGN_MAC_LEN];
    size_t  len;

    len = snprintf((char *) msg, sizeof(msg), "darkroom-lab-callback\n%s",
                   id);

    if (!ngx_http_darkroom_sign_hmac(secret->data, secret->len, msg, len,
                                     mac))
    {
        return NGX_ERROR;
    }

    ngx_hex_dump((u_char *) hex, mac, sizeof(mac));
    hex[NGX_HTTP_DARKROOM_LAB_TOKEN_LEN] = '\0';

    return NGX_OK;
}
