
/*
 * darkroom: the console API, the work (in pool threads: no pools, no
 * logging).  Each route is one SQL function of sql/functions/console.sql;
 * the secrets are made and hashed here: session ids, API key secrets and
 * reset tokens (256 random bits, base64url, the database keeps SHA-256),
 * passwords (scrypt).
 */


#include "ngx_http_darkroom_console.h"


/* checked when the address has no account: a login takes as long */
#define NGX_HTTP_DARKROOM_CONSOLE_DUMMY                                      \
    "scrypt$14$8$1$AAAAAAAAAAAAAAAAAAAAAA$"                                  \
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"


/* the routes that are one function of their query arguments (arg[]) */

typedef struct {
    ngx_http_darkroom_console_route_e   route;
    const char                         *sql;
    int                                 nargs;
} ngx_http_darkroom_console_call_t;


static ngx_http_darkroom_console_call_t  ngx_http_darkroom_console_calls[] = {
    { NGX_HTTP_DARKROOM_CONSOLE_DASHBOARD,
      "SELECT console_dashboard()", 0 },
    { NGX_HTTP_DARKROOM_CONSOLE_ACCOUNTS,
      "SELECT console_accounts_json()", 0 },
    { NGX_HTTP_DARKROOM_CONSOLE_KEYS,
      "SELECT console_keys_json()", 0 },
    { NGX_HTTP_DARKROOM_CONSOLE_KEY_REVOKE,
      "SELECT console_key_revoke($1)", 1 },
    { NGX_HTTP_DARKROOM_CONSOLE_AUDIT,
      "SELECT console_audit_json($1, $2, $3)", 3 },
    { NGX_HTTP_DARKROOM_CONSOLE_AUDIT_CSV,
      "SELECT console_audit_csv($1, $2, $3)", 3 },
    { NGX_HTTP_DARKROOM_CONSOLE_NONE, NULL, 0 }
};


static void ngx_http_darkroom_console_login(ngx_http_darkroom_task_t *t,
    ngx_http_darkroom_console_t *c);
static ngx_int_t ngx_http_darkroom_console_login_end(
    ngx_http_darkroom_task_t *t, ngx_http_darkroom_console_t *c,
    ngx_uint_t ok);
static cJSON *ngx_http_darkroom_console_json(ngx_http_darkroom_task_t *t,
    const char *sql, int n, const char *const *params);
static void ngx_http_darkroom_console_locked(ngx_http_darkroom_task_t *t,
    ngx_http_darkroom_console_t *c, cJSON *j);
static void ngx_http_darkroom_console_out(ngx_http_darkroom_task_t *t,
    cJSON *j);
static void ngx_http_darkroom_console_key(ngx_http_darkroom_task_t *t,
    ngx_http_darkroom_console_t *c);
static void ngx_http_darkroom_console_reset(ngx_http_darkroom_task_t *t,
    ngx_http_darkroom_console_t *c);
static ngx_int_t ngx_http_darkroom_console_pw(ngx_http_darkroom_task_t *t,
    ngx_http_darkroom_console_t *c, char *out);
static void ngx_http_darkroom_console_call(ngx_http_darkroom_task_t *t,
    const char *sql, int n, const char *const *params);


void
ngx_http_darkroom_console_work(ngx_http_darkroom_task_t *t)
{
    char                               id[NGX_INT64_LEN + 1];
    const char                        *p[3];
    ngx_http_darkroom_auth_t          *a = t->auth;
    ngx_http_darkroom_console_t       *c = t->data;
    ngx_http_darkroom_console_call_t  *call;
    char                               pw[128];

    for (call = ngx_http_darkroom_console_calls; call->sql; call++) {
        if (call->route == c->route) {
            ngx_http_darkroom_console_call(t, call->sql, call->nargs,
                                           (const char **) c->arg);
            return;
        }
    }

    ngx_memzero(p, sizeof(p));
    id[0] = '\0';

    if (a && a->session) {
        ngx_sprintf((u_char *) id, "%L%Z", a->session);
    }

    switch (c->route) {

    case NGX_HTTP_DARKROOM_CONSOLE_LOGIN:
        ngx_http_darkroom_console_login(t, c);
        return;

    case NGX_HTTP_DARKROOM_CONSOLE_RESET:
    case NGX_HTTP_DARKROOM_CONSOLE_RESET_CONFIRM:
        ngx_http_darkroom_console_reset(t, c);
        return;

    case NGX_HTTP_DARKROOM_CONSOLE_LOGOUT:
        c->cookie_clear = 1;
        p[0] = id[0] ? id : NULL;
        ngx_http_darkroom_console_call(t, "SELECT console_logout($1)", 1, p);
        return;

    case NGX_HTTP_DARKROOM_CONSOLE_KEY_CREATE:
        ngx_http_darkroom_console_key(t, c);
        return;

    case NGX_HTTP_DARKROOM_CONSOLE_LOGOUT_ALL:
        if (a->account == 0) {
            ngx_http_darkroom_error_set(&t->err, NGX_HTTP_BAD_REQUEST,
                "no_account", "Sign in with an account to do this.");
            return;
        }

        c->cookie_clear = 1;
        ngx_sprintf((u_char *) id, "%L%Z", a->account);
        p[0] = id;
        ngx_http_darkroom_console_call(t, "SELECT console_logout_all($1)", 1,
                                       p);
        return;

    case NGX_HTTP_DARKROOM_CONSOLE_SESSION:
        if (id[0] == '\0') {
            ngx_http_darkroom_error_set(&t->err, NGX_HTTP_UNAUTHORIZED,
                "unauthorized", "There is no session: sign in.");
            return;
        }

        p[0] = id;
        ngx_http_darkroom_console_call(t, "SELECT console_me($1)", 1, p);
        return;

    case NGX_HTTP_DARKROOM_CONSOLE_ACCOUNT_CREATE:
        if (ngx_http_darkroom_console_pw(t, c, pw) != NGX_OK) {
            return;
        }

        p[0] = c->body;
        p[1] = pw;
        ngx_http_darkroom_console_call(t,
            "SELECT console_account_create($1::jsonb, $2)", 2, p);
        return;

    case NGX_HTTP_DARKROOM_CONSOLE_ACCOUNT_UPDATE:
        p[0] = c->arg[0];
        p[1] = c->body;
        ngx_http_darkroom_console_call(t,
            "SELECT console_account_update($1, $2::jsonb)", 2, p);
        return;

    default:
        ngx_http_darkroom_error_set(&t->err, NGX_HTTP_NOT_FOUND, "not_found",
                                    "There is no such console resource.");
        return;
    }
}


static void
ngx_http_darkroom_console_call(ngx_http_darkroom_task_t *t, const char *sql,
    int n, const char *const *params)
{
    PGresult  *res;

    res = ngx_http_darkroom_db_exec(&t->db, sql, n, params, &t->err);

    if (res) {
        ngx_http_darkroom_task_answer(t, res, "There is nothing here.");
    }
}


/* the scrypt hash of the password the body gave, into out (128 bytes) */

static ngx_int_t
ngx_http_darkroom_console_pw(ngx_http_darkroom_task_t *t,
    ngx_http_darkroom_console_t *c, char *out)
{
    if (c->password == NULL
        || ngx_http_darkroom_scrypt_hash((u_char *) c->password,
                                         ngx_strlen(c->password),
                                         (u_char *) out, 128)
           != NGX_OK)
    {
        ngx_http_darkroom_error_set(&t->err, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                    "internal_error", "scrypt failed");
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_http_darkroom_console_login(ngx_http_darkroom_task_t *t,
    ngx_http_darkroom_console_t *c)
{
    cJSON       *j;
    ngx_int_t    ok;
    const char  *hash, *p[2];

    p[0] = c->email;
    p[1] = c->ip;

    j = ngx_http_darkroom_console_json(t,
                                       "SELECT console_login_begin($1, $2)",
                                       2, p);
    if (j == NULL) {
        return;
    }

    if (cJSON_GetObjectItem(j, "wait")
        && cJSON_GetObjectItem(j, "wait")->valueint > 0)
    {
        ngx_http_darkroom_console_locked(t, c, j);
        return;
    }

    /* the same work whether the address has an account or not */

    hash = ngx_http_darkroom_json_str(j, "hash");

    ok = ngx_http_darkroom_scrypt_verify((u_char *) c->password,
                                         ngx_strlen(c->password),
                                         (u_char *) (hash ? hash
                                         : NGX_HTTP_DARKROOM_CONSOLE_DUMMY));

    ok = (ok == 1 && hash != NULL);

    cJSON_Delete(j);

    if (ngx_http_darkroom_console_login_end(t, c, ok) == NGX_OK) {
        return;
    }

    if (t->err.status == 0) {
        ngx_http_darkroom_error_set(&t->err, NGX_HTTP_UNAUTHORIZED,
                                    "bad_login", "The email or the password "
                                    "is wrong.");
    }
}


/* NGX_OK: an answer (signed in, or locked out); else a wrong login */

static ngx_int_t
ngx_http_darkroom_console_login_end(ngx_http_darkroom_task_t *t,
    ngx_http_darkroom_console_t *c, ngx_uint_t ok)
{
    cJSON       *j;
    const char  *p[5];
    u_char       csrf[48];

    if (ok) {
        if (ngx_http_darkroom_random_b64(c->secret, c->hash) != NGX_OK
            || ngx_http_darkroom_random_b64(csrf, NULL) != NGX_OK)
        {
            ngx_http_darkroom_error_set(&t->err,
                NGX_HTTP_INTERNAL_SERVER_ERROR, "internal_error",
                "no random bytes");
            return NGX_ERROR;
        }
    }

    p[0] = c->email;
    p[1] = ok ? "t" : "f";
    p[2] = ok ? c->hash : NULL;
    p[3] = ok ? (char *) csrf : NULL;
    p[4] = c->ip;

    j = ngx_http_darkroom_console_json(t,
            "SELECT console_login_end($1, $2::boolean, $3, $4, $5)", 5, p);
    if (j == NULL) {
        return NGX_ERROR;
    }

    if (cJSON_GetObjectItem(j, "wait")
        && cJSON_GetObjectItem(j, "wait")->valueint > 0)
    {
        ngx_http_darkroom_console_locked(t, c, j);
        return NGX_OK;
    }

    if (!cJSON_IsObject(cJSON_GetObjectItem(j, "account"))) {
        cJSON_Delete(j);
        return NGX_DECLINED;
    }

    cJSON_DeleteItemFromObject(j, "wait");
    c->cookie_set = 1;
    ngx_http_darkroom_console_out(t, j);

    return NGX_OK;
}


static void
ngx_http_darkroom_console_locked(ngx_http_darkroom_task_t *t,
    ngx_http_darkroom_console_t *c, cJSON *j)
{
    t->err.retry_after = cJSON_GetObjectItem(j, "wait")->valueint;
    cJSON_Delete(j);

    ngx_http_darkroom_error_set(&t->err, NGX_HTTP_TOO_MANY_REQUESTS,
                                "locked_out", "Too many wrong passwords: "
                                "try again later.");
}


/* the answer of a function returning one JSON document, parsed */

static cJSON *
ngx_http_darkroom_console_json(ngx_http_darkroom_task_t *t, const char *sql,
    int n, const char *const *params)
{
    cJSON       *j;
    PGresult    *res;
    const char  *v;

    res = ngx_http_darkroom_db_exec(&t->db, sql, n, params, &t->err);
    if (res == NULL) {
        return NULL;
    }

    v = ngx_http_darkroom_db_only(res);
    j = v ? cJSON_Parse(v) : NULL;
    PQclear(res);

    if (j == NULL) {
        ngx_http_darkroom_error_set(&t->err, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                    "internal_error", "%s: no answer", sql);
    }

    return j;
}


static void
ngx_http_darkroom_console_out(ngx_http_darkroom_task_t *t, cJSON *j)
{
    t->out = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);

    if (t->out == NULL) {
        ngx_http_darkroom_error_set(&t->err, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                    "internal_error", "Out of memory.");
        return;
    }

    t->out_len = ngx_strlen(t->out);
    t->status = t->status ? t->status : NGX_HTTP_OK;
}


/* a new API key: its secret shown once, "drk_<id>_<secret>" */

static void
ngx_http_darkroom_console_key(ngx_http_darkroom_task_t *t,
    ngx_http_darkroom_console_t *c)
{
    cJSON       *j, *id;
    const char  *p[3];
    char         account[NGX_INT64_LEN + 1];
    u_char       full[NGX_INT64_LEN + 64];

    if (ngx_http_darkroom_random_b64(c->secret, c->hash) != NGX_OK) {
        ngx_http_darkroom_error_set(&t->err, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                    "internal_error", "no random bytes");
        return;
    }

    ngx_sprintf((u_char *) account, "%L%Z", t->auth->account);

    p[0] = c->body;
    p[1] = c->hash;
    p[2] = t->auth->account ? account : NULL;

    j = ngx_http_darkroom_console_json(t,
            "SELECT console_key_create($1::jsonb, $2, $3::bigint)", 3, p);
    if (j == NULL) {
        return;
    }

    id = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "key"), "id");

    if (!cJSON_IsNumber(id)) {
        cJSON_Delete(j);
        ngx_http_darkroom_error_set(&t->err, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                    "internal_error", "no key id");
        return;
    }

    ngx_sprintf(full, "drk_%L_%s%Z", (int64_t) id->valuedouble, c->secret);
    cJSON_AddStringToObject(j, "secret", (char *) full);
    ngx_explicit_memzero(full, sizeof(full));

    t->status = NGX_HTTP_CREATED;
    ngx_http_darkroom_console_out(t, j);
}


/* password-reset: always 202; password-reset/confirm: a new password */

static void
ngx_http_darkroom_console_reset(ngx_http_darkroom_task_t *t,
    ngx_http_darkroom_console_t *c)
{
    const char  *p[3];
    u_char       token[48];
    char         hash[65], pw[128];

    if (c->route == NGX_HTTP_DARKROOM_CONSOLE_RESET) {
        if (ngx_http_darkroom_random_b64(token, hash) != NGX_OK) {
            ngx_http_darkroom_error_set(&t->err,
                NGX_HTTP_INTERNAL_SERVER_ERROR, "internal_error",
                "no random bytes");
            return;
        }

        p[0] = c->email;
        p[1] = hash;
        p[2] = (char *) token;

        ngx_http_darkroom_console_call(t,
            "SELECT console_reset_request($1, $2, $3)", 3, p);

        if (t->err.status == 0) {
            t->status = NGX_HTTP_ACCEPTED;
        }

        return;
    }

    if (ngx_http_darkroom_sha256_hex((u_char *) c->token,
                                     ngx_strlen(c->token), hash)
        != NGX_OK
        || ngx_http_darkroom_console_pw(t, c, pw) != NGX_OK)
    {
        return;
    }

    p[0] = hash;
    p[1] = pw;

    ngx_http_darkroom_console_call(t,
        "SELECT console_reset_confirm($1, $2)", 2, p);
}
