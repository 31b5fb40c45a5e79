
/*
 * darkroom: the console API, the module.  Paths are relative to the
 * location of darkroom_console_api (/admin/console/api/):
 *
 *   POST login {"email","password"}    POST logout | logout-all
 *   GET  session                        GET  dashboard
 *   POST password-reset {"email"}       (always 202)
 *   POST password-reset/confirm {"token","password"}
 *   GET | POST accounts                 PUT  accounts/<id>    (owner)
 *   GET | POST keys                     DELETE keys/<id>      (owner)
 *   GET  audit?account=&since=&limit=   GET  audit.csv        (owner)
 *
 * Every route but login and the password reset takes the credentials of
 * every admin API (core: ngx_http_darkroom_auth.c).  A signed-in session
 * is the cookie darkroom_admin: HttpOnly, SameSite=Strict, Path=/admin/,
 * Secure under TLS.
 */


#include "ngx_http_darkroom_console.h"


static char *ngx_http_darkroom_console_api(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_darkroom_console_timeout(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static ngx_int_t ngx_http_darkroom_console_handler(ngx_http_request_t *r);
static ngx_http_darkroom_console_route_e ngx_http_darkroom_console_route(
    ngx_http_request_t *r, ngx_str_t *id);
static ngx_int_t ngx_http_darkroom_console_prepare(ngx_http_request_t *r,
    ngx_http_darkroom_task_t *t);
static ngx_int_t ngx_http_darkroom_console_body(ngx_http_request_t *r,
    ngx_http_darkroom_task_t *t, ngx_http_darkroom_console_t *c);
static ngx_int_t ngx_http_darkroom_console_done(ngx_http_request_t *r,
    ngx_http_darkroom_task_t *t);
static ngx_int_t ngx_http_darkroom_console_cookie(ngx_http_request_t *r,
    ngx_http_darkroom_console_t *c);


static ngx_command_t  ngx_http_darkroom_console_commands[] = {

    { ngx_string("darkroom_console_api"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_darkroom_console_api,
      0,
      0,
      NULL },

    { ngx_string("darkroom_console_session_idle"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_darkroom_console_timeout,
      0,
      offsetof(ngx_http_darkroom_main_conf_t, session_idle),
      NULL },

    { ngx_string("darkroom_console_session_max"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_darkroom_console_timeout,
      0,
      offsetof(ngx_http_darkroom_main_conf_t, session_max),
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_darkroom_console_module_ctx = {
    NULL,                                  /* preconfiguration */
    NULL,                                  /* postconfiguration */
    NULL,                                  /* create main configuration */
    NULL,                                  /* init main configuration */
    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */
    NULL,                                  /* create location configuration */
    NULL                                   /* merge location configuration */
};


ngx_module_t  ngx_http_darkroom_console_module = {
    NGX_MODULE_V1,
    &ngx_http_darkroom_console_module_ctx, /* module context */
    ngx_http_darkroom_console_commands,    /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    NULL,                                  /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static char *
ngx_http_darkroom_console_api(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    if (ngx_http_darkroom_use(cf, cmd, ngx_http_darkroom_console_handler,
                              NULL)
        == NULL)
    {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* darkroom_console_session_idle | _max <time>: into the core's conf */

static char *
ngx_http_darkroom_console_timeout(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_str_t                      *value;
    ngx_msec_t                     *field;
    ngx_http_darkroom_main_conf_t  *dmcf;

    dmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_darkroom_module);
    field = (ngx_msec_t *) ((u_char *) dmcf + cmd->offset);

    if (*field != NGX_CONF_UNSET_MSEC) {
        return "is duplicate";
    }

    value = cf->args->elts;

    *field = ngx_parse_time(&value[1], 0);

    if (*field == (ngx_msec_t) NGX_ERROR || *field < 1000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" takes a time of a second or more, "
                           "not \"%V\"", &cmd->name, &value[1]);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_darkroom_console_handler(ngx_http_request_t *r)
{
    ngx_int_t                           rc;
    ngx_str_t                           id;
    ngx_http_darkroom_console_route_e   route;

    route = ngx_http_darkroom_console_route(r, &id);

    if (route >= NGX_HTTP_DARKROOM_CONSOLE_LOGOUT
        || route == NGX_HTTP_DARKROOM_CONSOLE_NONE)
    {
        rc = ngx_http_darkroom_admin_auth(r);

        if (rc == NGX_ERROR) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (rc != NGX_OK) {
            return ngx_http_darkroom_admin_refuse(r);
        }

        if (route >= NGX_HTTP_DARKROOM_CONSOLE_ACCOUNTS) {
            ngx_http_darkroom_admin_scope(r, "owner");
        }
    }

    if (route == NGX_HTTP_DARKROOM_CONSOLE_NONE) {
        (void) ngx_http_discard_request_body(r);
        return ngx_http_darkroom_send_error(r, NGX_HTTP_NOT_FOUND,
                   "not_found", "There is no such console resource.");
    }

    return ngx_http_darkroom_task_start(r,
                                        sizeof(ngx_http_darkroom_console_t),
                                        ngx_http_darkroom_console_prepare,
                                        ngx_http_darkroom_console_work,
                                        ngx_http_darkroom_console_done);
}


#define ngx_http_darkroom_console_m(m)  (r->method == NGX_HTTP_ ## m)

static ngx_http_darkroom_console_route_e
ngx_http_darkroom_console_route(ngx_http_request_t *r, ngx_str_t *id)
{
    ngx_int_t   n;
    ngx_str_t   seg[3];
    ngx_uint_t  get, post;

    n = ngx_http_darkroom_path_split(r, seg, 3);
    get = (r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD)) ? 1 : 0;
    post = ngx_http_darkroom_console_m(POST);

    if (n == 1 && post) {
        if (ngx_http_darkroom_is(seg[0], "login")) {
            return NGX_HTTP_DARKROOM_CONSOLE_LOGIN;
        }
        if (ngx_http_darkroom_is(seg[0], "logout")) {
            return NGX_HTTP_DARKROOM_CONSOLE_LOGOUT;
        }
        if (ngx_http_darkroom_is(seg[0], "logout-all")) {
            return NGX_HTTP_DARKROOM_CONSOLE_LOGOUT_ALL;
        }
        if (ngx_http_darkroom_is(seg[0], "password-reset")) {
            return NGX_HTTP_DARKROOM_CONSOLE_RESET;
        }
        if (ngx_http_darkroom_is(seg[0], "accounts")) {
            return NGX_HTTP_DARKROOM_CONSOLE_ACCOUNT_CREATE;
        }
        if (ngx_http_darkroom_is(seg[0], "keys")) {
            return NGX_HTTP_DARKROOM_CONSOLE_KEY_CREATE;
        }
    }

    if (n == 2 && post && ngx_http_darkroom_is(seg[0], "password-reset")
        && ngx_http_darkroom_is(seg[1], "confirm"))
    {
        return NGX_HTTP_DARKROOM_CONSOLE_RESET_CONFIRM;
    }

    if (n == 1 && get) {
        if (ngx_http_darkroom_is(seg[0], "session")) {
            return NGX_HTTP_DARKROOM_CONSOLE_SESSION;
        }
        if (ngx_http_darkroom_is(seg[0], "dashboard")) {
            return NGX_HTTP_DARKROOM_CONSOLE_DASHBOARD;
        }
        if (ngx_http_darkroom_is(seg[0], "accounts")) {
            return NGX_HTTP_DARKROOM_CONSOLE_ACCOUNTS;
        }
        if (ngx_http_darkroom_is(seg[0], "keys")) {
            return NGX_HTTP_DARKROOM_CONSOLE_KEYS;
        }
        if (ngx_http_darkroom_is(seg[0], "audit")) {
            return NGX_HTTP_DARKROOM_CONSOLE_AUDIT;
        }
        if (ngx_http_darkroom_is(seg[0], "audit.csv")) {
            return NGX_HTTP_DARKROOM_CONSOLE_AUDIT_CSV;
        }
    }

    if (n == 2 && ngx_atoi(seg[1].data, seg[1].len) > 0
        && seg[1].len <= 18)
    {
        *id = seg[1];

        if (ngx_http_darkroom_console_m(PUT)
            && ngx_http_darkroom_is(seg[0], "accounts"))
        {
            return NGX_HTTP_DARKROOM_CONSOLE_ACCOUNT_UPDATE;
        }

        if (ngx_http_darkroom_console_m(DELETE)
            && ngx_http_darkroom_is(seg[0], "keys"))
        {
            return NGX_HTTP_DARKROOM_CONSOLE_KEY_REVOKE;
        }
    }

    return NGX_HTTP_DARKROOM_CONSOLE_NONE;
}


static ngx_int_t
ngx_http_darkroom_console_prepare(ngx_http_request_t *r,
    ngx_http_darkroom_task_t *t)
{
    ngx_str_t                     id;
    ngx_http_darkroom_console_t  *c = t->data;

    c->route = ngx_http_darkroom_console_route(r, &id);

    c->ip = ngx_http_darkroom_cstr(r->pool, r->connection->addr_text.data,
                                   r->connection->addr_text.len);
    if (c->ip == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    switch (c->route) {

    case NGX_HTTP_DARKROOM_CONSOLE_ACCOUNT_UPDATE:
    case NGX_HTTP_DARKROOM_CONSOLE_KEY_REVOKE:
        c->arg[0] = ngx_http_darkroom_cstr(r->pool, id.data, id.len);
        break;

    case NGX_HTTP_DARKROOM_CONSOLE_AUDIT:
    case NGX_HTTP_DARKROOM_CONSOLE_AUDIT_CSV:
        c->arg[0] = ngx_http_darkroom_query_arg(r, "account");
        c->arg[1] = ngx_http_darkroom_query_arg(r, "since");
        c->arg[2] = ngx_http_darkroom_query_arg(r, "limit");
        c->csv = (c->route == NGX_HTTP_DARKROOM_CONSOLE_AUDIT_CSV);
        return NGX_OK;

    default:
        break;
    }

    return ngx_http_darkroom_console_body(r, t, c);
}


/*
 * The body, where the route takes one: a JSON object; the password is
 * taken out (it is hashed in the thread, never sent to the database).
 */

static ngx_int_t
ngx_http_darkroom_console_body(ngx_http_request_t *r,
    ngx_http_darkroom_task_t *t, ngx_http_darkroom_console_t *c)
{
    char        *s;
    cJSON       *j, *pw;
    size_t       len;
    ngx_uint_t   need_pw;
    const char  *v, *msg, *code;

    switch (c->route) {
    case NGX_HTTP_DARKROOM_CONSOLE_LOGIN:
    case NGX_HTTP_DARKROOM_CONSOLE_RESET:
    case NGX_HTTP_DARKROOM_CONSOLE_RESET_CONFIRM:
    case NGX_HTTP_DARKROOM_CONSOLE_ACCOUNT_CREATE:
    case NGX_HTTP_DARKROOM_CONSOLE_ACCOUNT_UPDATE:
    case NGX_HTTP_DARKROOM_CONSOLE_KEY_CREATE:
        break;
    default:
        return NGX_OK;
    }

    need_pw = (c->route == NGX_HTTP_DARKROOM_CONSOLE_LOGIN
               || c->route == NGX_HTTP_DARKROOM_CONSOLE_RESET_CONFIRM
               || c->route == NGX_HTTP_DARKROOM_CONSOLE_ACCOUNT_CREATE);

    j = cJSON_ParseWithLength((const char *) t->body.data, t->body.len);

    if (j == NULL || !cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return ngx_http_darkroom_send_error(r, NGX_HTTP_BAD_REQUEST,
                   "bad_json", "The body is a JSON object.");
    }

    msg = NULL;
    code = "bad_password";

    v = ngx_http_darkroom_json_str(j, "email");
    if (v) {
        c->email = ngx_http_darkroom_cstr(r->pool, (u_char *) v,
                                          ngx_strlen(v));
    }

    v = ngx_http_darkroom_json_str(j, "token");
    if (v) {
        c->token = ngx_http_darkroom_cstr(r->pool, (u_char *) v,
                                          ngx_strlen(v));
    }

    pw = cJSON_DetachItemFromObjectCaseSensitive(j, "password");
    v = cJSON_IsString(pw) ? pw->valuestring : NULL;
    len = v ? ngx_strlen(v) : 0;

    if (need_pw && (v == NULL || len == 0
                    || len > NGX_HTTP_DARKROOM_CONSOLE_PW_MAX))
    {
        msg = "Give a password.";

    } else if (need_pw && c->route != NGX_HTTP_DARKROOM_CONSOLE_LOGIN
               && len < NGX_HTTP_DARKROOM_CONSOLE_PW_MIN)
    {
        msg = "A password has at least 10 characters.";

    } else if (v) {
        c->password = ngx_http_darkroom_cstr(r->pool, (u_char *) v, len);
    }

    if (msg == NULL
        && ((c->route <= NGX_HTTP_DARKROOM_CONSOLE_RESET && c->email == NULL)
            || (c->route == NGX_HTTP_DARKROOM_CONSOLE_RESET_CONFIRM
                && c->token == NULL)))
    {
        code = "bad_request";
        msg = (c->route == NGX_HTTP_DARKROOM_CONSOLE_RESET_CONFIRM)
              ? "Give the token of the link." : "Give an email address.";
    }

    if (v) {
        ngx_explicit_memzero(pw->valuestring, len);
    }

    cJSON_Delete(pw);

    s = msg ? NULL : cJSON_PrintUnformatted(j);
    cJSON_Delete(j);

    if (msg) {
        return ngx_http_darkroom_send_error(r, NGX_HTTP_BAD_REQUEST, code,
                                            msg);
    }

    if (s == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    c->body = ngx_http_darkroom_cstr(r->pool, (u_char *) s, ngx_strlen(s));
    free(s);

    return c->body ? NGX_OK : NGX_HTTP_INTERNAL_SERVER_ERROR;
}


static ngx_int_t
ngx_http_darkroom_console_done(ngx_http_request_t *r,
    ngx_http_darkroom_task_t *t)
{
    ngx_http_darkroom_console_t  *c = t->data;

    if ((c->cookie_set || c->cookie_clear)
        && ngx_http_darkroom_console_cookie(r, c) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (t->err.status) {
        return ngx_http_darkroom_send_task_error(r, &t->err);
    }

    return ngx_http_darkroom_send_body(r, t->status ? t->status : NGX_HTTP_OK,
                                       c->csv ? "text/csv"
                                              : "application/json",
                                       (u_char *) t->out, t->out_len);
}


static ngx_int_t
ngx_http_darkroom_console_cookie(ngx_http_request_t *r,
    ngx_http_darkroom_console_t *c)
{
    u_char           *p, *v;
    size_t            len;
    ngx_table_elt_t  *h;

    len = sizeof("darkroom_admin=; Path=/admin/; HttpOnly; SameSite=Strict"
                 "; Max-Age=0; Secure") + sizeof(c->secret);

    v = ngx_pnalloc(r->pool, len);
    if (v == NULL) {
        return NGX_ERROR;
    }

    p = ngx_sprintf(v, "darkroom_admin=%s; Path=/admin/; HttpOnly; "
                    "SameSite=Strict",
                    c->cookie_set ? (char *) c->secret : "");

    if (c->cookie_clear) {
        p = ngx_sprintf(p, "; Max-Age=0");
    }

#if (NGX_HTTP_SSL)
    if (r->connection->ssl) {
        p = ngx_sprintf(p, "; Secure");
    }
#endif

    h = ngx_http_darkroom_header_out(r, "Set-Cookie", v, p - v);

    return h ? NGX_OK : NGX_ERROR;
}

