
/*
 * darkroom: JSON answers and the uniform error body
 * {"error":{"code":"...","message":"..."}}.
 */


#include "ngx_http_darkroom.h"

#include <stdarg.h>


void
ngx_http_darkroom_error_set(ngx_http_darkroom_error_t *err, ngx_uint_t status,
    const char *code, const char *fmt, ...)
{
    va_list  args;

    err->status = status;
    ngx_cpystrn((u_char *) err->code, (u_char *) code, sizeof(err->code));

    va_start(args, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, args);
    va_end(args);
}


/*
 * In a thread: a request body parsed as a JSON object, for the caller to
 * cJSON_Delete(), or NULL with 400 invalid_json in err.  With empty_ok an
 * empty body is an empty object: the actions whose body is optional.
 */

cJSON *
ngx_http_darkroom_json_object(ngx_http_darkroom_error_t *err,
    const char *body, ngx_uint_t empty_ok)
{
    cJSON  *json;

    if (empty_ok && (body == NULL || body[0] == '\0')) {
        json = cJSON_CreateObject();

        if (json == NULL) {
            ngx_http_darkroom_error_set(err, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                        "internal_error", "Out of memory.");
        }

        return json;
    }

    json = cJSON_Parse(body);

    if (!cJSON_IsObject(json)) {
        cJSON_Delete(json);
        ngx_http_darkroom_error_set(err, NGX_HTTP_BAD_REQUEST, "invalid_json",
                                    "The body must be a JSON object.");
        return NULL;
    }

    return json;
}


ngx_int_t
ngx_http_darkroom_send_json(ngx_http_request_t *r, ngx_uint_t status,
    u_char *json, size_t len)
{
    return ngx_http_darkroom_send_body(r, status, "application/json", json,
                                       len);
}


/* an answer of any type; body lives as long as the request */

ngx_int_t
ngx_http_darkroom_send_body(ngx_http_request_t *r, ngx_uint_t status,
    const char *type, u_char *body, size_t len)
{
    ngx_int_t     rc;
    ngx_buf_t    *b;
    ngx_chain_t   out;

    r->headers_out.status = status;
    r->headers_out.content_length_n = len;
    r->headers_out.content_type.data = (u_char *) type;
    r->headers_out.content_type.len = ngx_strlen(type);
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;

    if (r->method == NGX_HTTP_HEAD || len == 0) {
        r->header_only = (r->method == NGX_HTTP_HEAD);
        return ngx_http_send_header(r);
    }

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->pos = body;
    b->last = body + len;
    b->memory = 1;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


ngx_int_t
ngx_http_darkroom_send_error(ngx_http_request_t *r, ngx_uint_t status,
    const char *code, const char *message)
{
    size_t     clen, mlen, len;
    u_char    *p, *body;

    clen = ngx_strlen(code);
    mlen = ngx_strlen(message);

    ngx_http_darkroom_log_note(r, NGX_HTTP_DARKROOM_LOG_RESULT, code);

    len = sizeof("{\"error\":{\"code\":\"\",\"message\":\"\"}}") - 1
          + clen + ngx_escape_json(NULL, (u_char *) code, clen)
          + mlen + ngx_escape_json(NULL, (u_char *) message, mlen);

    body = ngx_pnalloc(r->pool, len);
    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_cpymem(body, "{\"error\":{\"code\":\"",
                   sizeof("{\"error\":{\"code\":\"") - 1);
    p = (u_char *) ngx_escape_json(p, (u_char *) code, clen);
    p = ngx_cpymem(p, "\",\"message\":\"", sizeof("\",\"message\":\"") - 1);
    p = (u_char *) ngx_escape_json(p, (u_char *) message, mlen);
    p = ngx_cpymem(p, "\"}}", 3);

    /* the body is ours: drop what an earlier phase may have set */
    r->headers_out.content_encoding = NULL;
    r->headers_out.last_modified_time = -1;

    return ngx_http_darkroom_send_json(r, status, body, p - body);
}


/* adds a response header; the value must live as long as the request */

ngx_table_elt_t *
ngx_http_darkroom_header_out(ngx_http_request_t *r, const char *name,
    u_char *value, size_t len)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NULL;
    }

    h->hash = 1;
    h->key.data = (u_char *) name;
    h->key.len = ngx_strlen(name);
    h->value.data = value;
    h->value.len = len;

    return h;
}


ngx_int_t
ngx_http_darkroom_send_task_error(ngx_http_request_t *r,
    ngx_http_darkroom_error_t *err)
{
    u_char  *p;

    ngx_http_darkroom_metric_add(db_unavailable,
                                 ngx_strcmp(err->code, "db_unavailable") == 0);

    if (err->retry_after
        || err->status == NGX_HTTP_SERVICE_UNAVAILABLE
        || err->status == NGX_HTTP_TOO_MANY_REQUESTS)
    {
        p = ngx_pnalloc(r->pool, NGX_INT_T_LEN);
        if (p == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (ngx_http_darkroom_header_out(r, "Retry-After", p,
                ngx_sprintf(p, "%ui", err->retry_after
                                      ? err->retry_after
                                      : NGX_HTTP_DARKROOM_RETRY_AFTER) - p)
            == NULL)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    return ngx_http_darkroom_send_error(r, err->status, err->code,
                                        err->message);
}


/*
 * Errors nginx makes itself in a darkroom location (413 before the body is
 * read, 405, 500 ...) would be HTML pages.  A header filter turns them into
 * the same JSON as every other error: it sees nginx's special response by
 * its text/html type, sends the JSON body itself and marks the request
 * header-only so nginx's page is not sent after it.
 */

static ngx_http_output_header_filter_pt  ngx_http_darkroom_next_header_filter;


static ngx_int_t
ngx_http_darkroom_error_filter(ngx_http_request_t *r)
{
    u_char                        *p, *body;
    size_t                         len;
    ngx_int_t                      rc;
    ngx_buf_t                     *b;
    ngx_chain_t                    out;
    const char                    *code, *message;
    ngx_http_darkroom_loc_conf_t  *dlcf;

    dlcf = ngx_http_get_module_loc_conf(r, ngx_http_darkroom_module);

    if (!dlcf->json_errors
        || r != r->main
        || r->header_only
        || r->headers_out.status < NGX_HTTP_BAD_REQUEST
        || r->headers_out.content_type.len < sizeof("text/html") - 1
        || ngx_strncmp(r->headers_out.content_type.data, "text/html",
                       sizeof("text/html") - 1) != 0)
    {
        return ngx_http_darkroom_next_header_filter(r);
    }

    switch (r->headers_out.status) {
    case NGX_HTTP_BAD_REQUEST:
        code = "bad_request";
        message = "The request is malformed.";
        break;
    case NGX_HTTP_FORBIDDEN:
        code = "forbidden";
        message = "This is not allowed.";
        break;
    case NGX_HTTP_NOT_FOUND:
        code = "not_found";
        message = "There is nothing here.";
        break;
    case NGX_HTTP_NOT_ALLOWED:
        code = "method_not_allowed";
        message = "This method is not allowed here.";
        break;
    case NGX_HTTP_REQUEST_ENTITY_TOO_LARGE:
        code = "body_too_large";
        message = "The request body is larger than this endpoint accepts.";
        break;
    case NGX_HTTP_SERVICE_UNAVAILABLE:
        code = "unavailable";
        message = "The service is unavailable, please retry shortly.";
        break;
    default:
        code = (r->headers_out.status >= NGX_HTTP_INTERNAL_SERVER_ERROR)
               ? "internal_error" : "request_error";
        message = "The request could not be completed.";
        break;
    }

    len = sizeof("{\"error\":{\"code\":\"\",\"message\":\"\"}}") - 1
          + ngx_strlen(code) + ngx_strlen(message);

    body = ngx_pnalloc(r->pool, len);
    b = ngx_calloc_buf(r->pool);
    if (body == NULL || b == NULL) {
        return NGX_ERROR;
    }

    p = ngx_sprintf(body, "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}",
                    code, message);

    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;
    r->headers_out.content_length_n = p - body;

    if (r->headers_out.content_length) {
        r->headers_out.content_length->hash = 0;
        r->headers_out.content_length = NULL;
    }

    rc = ngx_http_darkroom_next_header_filter(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->method == NGX_HTTP_HEAD) {
        return rc;
    }

    b->pos = body;
    b->last = p;
    b->memory = 1;
    b->last_buf = 1;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    /* nginx sends no page of its own after a header-only answer */
    r->header_only = 1;

    return ngx_http_output_filter(r, &out);
}


ngx_int_t
ngx_http_darkroom_reply_init(ngx_conf_t *cf)
{
    ngx_http_darkroom_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_darkroom_error_filter;

    return NGX_OK;
}
