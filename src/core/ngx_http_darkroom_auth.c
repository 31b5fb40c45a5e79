
/*
 * darkroom: the credentials of every admin API (shop, labs, galleries,
 * console).
 *
 *   Authorization: Bearer <darkroom_admin_token_file token>  the bootstrap
 *       owner key: compared here, in constant time, no database check;
 *   Authorization: Bearer drk_<id>_<secret>  an API key with scopes;
 *   Cookie: darkroom_admin=<session id>  a signed-in console account; a
 *       request that is not GET or HEAD carries X-CSRF-Token.
 *
 * ngx_http_darkroom_admin_auth() records the credential in the request's
 * task; the task's thread asks admin_authorize() (sql/functions/console.sql)
 * before the area's work runs, and writes an audit row for every request
 * that is not GET or HEAD.  Only the SHA-256 of a secret leaves this file.
 */


#include "ngx_http_darkroom.h"

#include <openssl/rand.h>


#define NGX_HTTP_DARKROOM_COOKIE      "darkroom_admin"
#define NGX_HTTP_DARKROOM_SECRET_MAX  128


static ngx_int_t ngx_http_darkroom_auth_bearer(ngx_http_request_t *r,
    ngx_http_darkroom_auth_t *a, u_char *token, size_t len);
static ngx_int_t ngx_http_darkroom_auth_session(ngx_http_request_t *r,
    ngx_http_darkroom_auth_t *a);
static void ngx_http_darkroom_auth_request(ngx_http_request_t *r,
    ngx_http_darkroom_auth_t *a);


ngx_int_t
ngx_http_darkroom_admin_auth(ngx_http_request_t *r)
{
    ngx_table_elt_t           *auth;
    ngx_http_darkroom_task_t  *t;
    ngx_http_darkroom_auth_t  *a;

    t = ngx_http_darkroom_task_of(r);
    if (t == NULL) {
        return NGX_ERROR;
    }

    a = ngx_pcalloc(r->pool, sizeof(ngx_http_darkroom_auth_t));
    if (a == NULL) {
        return NGX_ERROR;
    }

    ngx_http_darkroom_auth_request(r, a);

    if (a->path == NULL) {
        return NGX_ERROR;
    }

    t->auth = NULL;

    auth = r->headers_in.authorization;

    if (auth && auth->value.len > 7
        && ngx_strncasecmp(auth->value.data, (u_char *) "Bearer ", 7) == 0)
    {
        if (ngx_http_darkroom_auth_bearer(r, a, auth->value.data + 7,
                                          auth->value.len - 7)
            != NGX_OK)
        {
            ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                          "darkroom: admin API refused a bad token");
            return NGX_DECLINED;
        }

        t->auth = a;
        return NGX_OK;
    }

    if (auth) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "darkroom: admin API refused a bad token");
        return NGX_DECLINED;
    }

    if (ngx_http_darkroom_auth_session(r, a) != NGX_OK) {
        return NGX_DECLINED;
    }

    t->auth = a;

    return a->csrf_missing ? NGX_DECLINED : NGX_OK;
}


/* method, path, address, the scope the method needs, the timeouts */

static void
ngx_http_darkroom_auth_request(ngx_http_request_t *r,
    ngx_http_darkroom_auth_t *a)
{
    ngx_int_t                       n;
    ngx_str_t                       seg[3];
    ngx_http_darkroom_main_conf_t  *dmcf;

    dmcf = ngx_http_get_module_main_conf(r, ngx_http_darkroom_module);

    ngx_cpystrn((u_char *) a->method, r->method_name.data,
                ngx_min(r->method_name.len + 1, sizeof(a->method)));
    ngx_cpystrn((u_char *) a->ip, r->connection->addr_text.data,
                ngx_min(r->connection->addr_text.len + 1, sizeof(a->ip)));

    a->idle = dmcf->session_idle / 1000;
    a->max = dmcf->session_max / 1000;
    a->scope = (r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD)) ? "read" : "write";

    /* a refund of an order (the shop's admin API) needs its own scope */

    n = ngx_http_darkroom_path_split(r, seg, 3);

    if (n == 3 && ngx_http_darkroom_is(seg[0], "orders")
        && ngx_http_darkroom_is(seg[2], "refund"))
    {
        a->scope = "refunds";
    }

    a->path = ngx_http_darkroom_cstr(r->pool, r->uri.data, r->uri.len);
}


static ngx_int_t
ngx_http_darkroom_auth_bearer(ngx_http_request_t *r,
    ngx_http_darkroom_auth_t *a, u_char *token, size_t len)
{
    u_char                         *p, *end;
    ngx_http_darkroom_main_conf_t  *dmcf;

    dmcf = ngx_http_get_module_main_conf(r, ngx_http_darkroom_module);

    if (ngx_http_darkroom_secret_match(dmcf->admin_tokens, token, len)) {
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "darkroom admin: token accepted");
        a->kind = NGX_HTTP_DARKROOM_AUTH_TOKEN;
        ngx_cpystrn((u_char *) a->actor, (u_char *) "token",
                    sizeof(a->actor));
        return NGX_OK;
    }

    /* drk_<id>_<secret> */

    if (len < 7 || len > NGX_HTTP_DARKROOM_SECRET_MAX
        || ngx_strncmp(token, "drk_", 4) != 0)
    {
        return NGX_DECLINED;
    }

    end = token + len;

    for (p = token + 4; p < end && *p >= '0' && *p <= '9'; p++) {
        /* void */
    }

    if (p == token + 4 || p - token - 4 >= (ssize_t) sizeof(a->key) - 1
        || p + 1 >= end || *p != '_')
    {
        return NGX_DECLINED;
    }

    ngx_cpystrn((u_char *) a->key, token + 4, p - token - 4 + 1);

    p++;

    if (ngx_http_darkroom_sha256_hex(p, end - p, a->hash) != NGX_OK) {
        return NGX_DECLINED;
    }

    a->kind = NGX_HTTP_DARKROOM_AUTH_KEY;

    return NGX_OK;
}


static ngx_int_t
ngx_http_darkroom_auth_session(ngx_http_request_t *r,
    ngx_http_darkroom_auth_t *a)
{
    ngx_str_t         value;
    ngx_table_elt_t  *h;

    if (ngx_http_darkroom_cookie(r, NGX_HTTP_DARKROOM_COOKIE, &value)
        != NGX_OK
        || value.len == 0 || value.len > NGX_HTTP_DARKROOM_SECRET_MAX)
    {
        return NGX_DECLINED;
    }

    if (ngx_http_darkroom_sha256_hex(value.data, value.len, a->hash)
        != NGX_OK)
    {
        return NGX_DECLINED;
    }

    a->kind = NGX_HTTP_DARKROOM_AUTH_SESSION;

    h = ngx_http_darkroom_header_in(r, "X-CSRF-Token",
                                    sizeof("X-CSRF-Token") - 1);

    if (h && h->value.len) {
        a->csrf = ngx_http_darkroom_cstr(r->pool, h->value.data,
                                         h->value.len);
        if (a->csrf == NULL) {
            return NGX_DECLINED;
        }

    } else if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        a->csrf_missing = 1;
    }

    return NGX_OK;
}


/* a cookie's value (NGX_DECLINED: none) */

ngx_int_t
ngx_http_darkroom_cookie(ngx_http_request_t *r, const char *name,
    ngx_str_t *value)
{
    ngx_str_t  n;

    n.data = (u_char *) name;
    n.len = ngx_strlen(name);

#if (nginx_version >= 1023000)
    if (ngx_http_parse_multi_header_lines(r, r->headers_in.cookie, &n, value)
        == NULL)
    {
        return NGX_DECLINED;
    }
#else
    if (ngx_http_parse_multi_header_lines(&r->headers_in.cookies, &n, value)
        == NGX_DECLINED)
    {
        return NGX_DECLINED;
    }
#endif

    return NGX_OK;
}


/* a feature asks more of the request than its method does ("owner") */

void
ngx_http_darkroom_admin_scope(ngx_http_request_t *r, const char *scope)
{
    ngx_http_darkroom_task_t  *t;

    t = ngx_http_darkroom_task_of(r);

    if (t && t->auth) {
        t->auth->scope = scope;
    }
}


/* 401 with the challenge, or 403 csrf_required, for what _auth() refused */

ngx_int_t
ngx_http_darkroom_admin_refuse(ngx_http_request_t *r)
{
    ngx_table_elt_t           *h;
    ngx_http_darkroom_task_t  *t;

    t = ngx_http_darkroom_task_of(r);

    (void) ngx_http_discard_request_body(r);

    if (t && t->auth && t->auth->csrf_missing) {
        return ngx_http_darkroom_send_error(r, NGX_HTTP_FORBIDDEN,
                   "csrf_required", "The X-CSRF-Token header is required.");
    }

    h = ngx_http_darkroom_header_out(r, "WWW-Authenticate",
                                     (u_char *) "Bearer realm=\"darkroom\"",
                                     sizeof("Bearer realm=\"darkroom\"") - 1);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->headers_out.www_authenticate = h;

    return ngx_http_darkroom_send_error(r, NGX_HTTP_UNAUTHORIZED,
                                        "unauthorized",
                                        "A valid admin token is required.");
}


/* in the thread, before the work: who it is, or t->err set */

ngx_int_t
ngx_http_darkroom_auth_check(ngx_http_darkroom_task_t *t)
{
    cJSON                     *j;
    PGresult                  *res;
    const char                *v, *params[8];
    ngx_http_darkroom_auth_t  *a = t->auth;
    char                       idle[NGX_INT_T_LEN + 1],
                               max[NGX_INT_T_LEN + 1];

    if (a->kind == NGX_HTTP_DARKROOM_AUTH_TOKEN) {
        return NGX_OK;
    }

    ngx_sprintf((u_char *) idle, "%ui%Z", a->idle);
    ngx_sprintf((u_char *) max, "%ui%Z", a->max);

    params[0] = (a->kind == NGX_HTTP_DARKROOM_AUTH_KEY) ? "key" : "session";
    params[1] = a->key[0] ? a->key : NULL;
    params[2] = a->hash;
    params[3] = a->csrf;
    params[4] = a->method;
    params[5] = a->scope;
    params[6] = idle;
    params[7] = max;

    res = ngx_http_darkroom_db_exec(&t->db,
              "SELECT admin_authorize($1, $2, $3, $4, $5, $6, $7::int, "
              "$8::int)", 8, params, &t->err);
    if (res == NULL) {
        return NGX_ERROR;
    }

    v = ngx_http_darkroom_db_only(res);
    j = v ? cJSON_Parse(v) : NULL;
    PQclear(res);

    if (j == NULL) {
        ngx_http_darkroom_error_set(&t->err, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                    "internal_error", "admin_authorize: "
                                    "no answer");
        return NGX_ERROR;
    }

#define ngx_http_darkroom_auth_id(name)                                      \
    (cJSON_IsNumber(cJSON_GetObjectItem(j, name))                            \
     ? (int64_t) cJSON_GetObjectItem(j, name)->valuedouble : 0)

    a->account = ngx_http_darkroom_auth_id("account");
    a->key_id = ngx_http_darkroom_auth_id("key");
    a->session = ngx_http_darkroom_auth_id("session");

    v = ngx_http_darkroom_json_str(j, "actor");
    ngx_cpystrn((u_char *) a->actor, (u_char *) (v ? v : "?"),
                sizeof(a->actor));
    v = ngx_http_darkroom_json_str(j, "role");
    ngx_cpystrn((u_char *) a->role, (u_char *) (v ? v : ""),
                sizeof(a->role));

    cJSON_Delete(j);

    return NGX_OK;
}


/* in the thread, after the work: the audit row of a change (best effort) */

void
ngx_http_darkroom_auth_audit(ngx_http_darkroom_task_t *t)
{
    ngx_uint_t                 status;
    const char                *params[7];
    ngx_http_darkroom_error_t  err;
    ngx_http_darkroom_auth_t  *a = t->auth;
    char                       account[NGX_INT64_LEN + 1],
                               key[NGX_INT64_LEN + 1],
                               st[NGX_INT_T_LEN + 1];

    if (ngx_strcmp(a->method, "GET") == 0
        || ngx_strcmp(a->method, "HEAD") == 0)
    {
        return;
    }

    status = t->err.status ? t->err.status
                           : (t->status ? t->status : NGX_HTTP_OK);

    ngx_sprintf((u_char *) account, "%L%Z", a->account);
    ngx_sprintf((u_char *) key, "%L%Z", a->key_id);
    ngx_sprintf((u_char *) st, "%ui%Z", status);

    params[0] = a->account ? account : NULL;
    params[1] = a->key_id ? key : NULL;
    params[2] = a->actor;
    params[3] = a->method;
    params[4] = a->path;
    params[5] = a->ip;
    params[6] = st;

    ngx_memzero(&err, sizeof(err));

    (void) ngx_http_darkroom_db_command(&t->db,
               "SELECT console_audit_write($1::bigint, $2::bigint, $3, $4, "
               "$5, $6, $7::int)", 7, params, &err);
}


/* 256 random bits base64url (43 characters and a NUL), and their SHA-256 */

ngx_int_t
ngx_http_darkroom_random_b64(u_char *out, char *hash)
{
    ngx_str_t  src, dst;
    u_char     raw[32];

    if (RAND_bytes(raw, sizeof(raw)) != 1) {
        return NGX_ERROR;
    }

    src.data = raw;
    src.len = sizeof(raw);
    dst.data = out;
    ngx_encode_base64url(&dst, &src);
    out[dst.len] = '\0';

    if (hash == NULL) {
        return NGX_OK;
    }

    return ngx_http_darkroom_sha256_hex(out, dst.len, hash);
}
