
/*
 * darkroom: the health endpoint.
 *
 * In a pool thread: the schema version and the job backlog (core_health()
 * in sql/functions/core.sql), and what each feature added with
 * ngx_http_darkroom_health_add() (labs: stuck orders).
 * 200 when Postgres answers, 503 naming the failing part when it does not;
 * nothing is cached, so it recovers as soon as Postgres does.
 */


#include "ngx_http_darkroom.h"


static ngx_int_t ngx_http_darkroom_health_handler(ngx_http_request_t *r);
static void ngx_http_darkroom_health_work(ngx_http_darkroom_task_t *t);
static ngx_int_t ngx_http_darkroom_health_done(ngx_http_request_t *r,
    ngx_http_darkroom_task_t *t);
static ngx_int_t ngx_http_darkroom_health_check(ngx_http_darkroom_task_t *t,
    ngx_http_darkroom_health_check_t *hc, u_char *p, u_char *last,
    u_char **end);


#define NGX_HTTP_DARKROOM_HEALTH_MAX      4096
#define NGX_HTTP_DARKROOM_HEALTH_SQL_LEN  128


char *
ngx_http_darkroom_health(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    if (ngx_http_darkroom_use(cf, cmd, ngx_http_darkroom_health_handler,
                              NULL)
        == NULL)
    {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * A feature adds its part of the answer: the function returns one row,
 * answered as "name": {column: value, ...}.
 */

ngx_int_t
ngx_http_darkroom_health_add(ngx_conf_t *cf, const char *name,
    const char *function)
{
    ngx_http_darkroom_main_conf_t     *dmcf;
    ngx_http_darkroom_health_check_t  *hc;

    dmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_darkroom_module);

    hc = ngx_array_push(&dmcf->health_checks);
    if (hc == NULL) {
        return NGX_ERROR;
    }

    hc->name = name;
    hc->function = function;

    return NGX_OK;
}


static ngx_int_t
ngx_http_darkroom_health_handler(ngx_http_request_t *r)
{
    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    return ngx_http_darkroom_task_start(r, 0, NULL,
                                        ngx_http_darkroom_health_work,
                                        ngx_http_darkroom_health_done);
}


/* in a thread: appends "name": <the function's row as JSON> */

static ngx_int_t
ngx_http_darkroom_health_check(ngx_http_darkroom_task_t *t,
    ngx_http_darkroom_health_check_t *hc, u_char *p, u_char *last,
    u_char **end)
{
    char         sql[NGX_HTTP_DARKROOM_HEALTH_SQL_LEN];
    PGresult    *res;
    const char  *json;

    ngx_snprintf((u_char *) sql, sizeof(sql),
                 "SELECT row_to_json(c)::text FROM %s() c%Z", hc->function);

    res = ngx_http_darkroom_db_exec(&t->db, sql, 0, NULL, &t->err);
    if (res == NULL) {
        return NGX_ERROR;
    }

    json = ngx_http_darkroom_db_only(res);

    if (json) {
        p = ngx_slprintf(p, last, ",\"%s\":%s", hc->name, json);
    }

    PQclear(res);

    *end = p;

    return NGX_OK;
}


static void
ngx_http_darkroom_health_work(ngx_http_darkroom_task_t *t)
{
    u_char                            *p, *last;
    PGresult                          *res;
    ngx_uint_t                         i;
    ngx_http_darkroom_health_check_t  *hc;

    res = ngx_http_darkroom_db_exec(&t->db, "SELECT * FROM core_health()",
                                    0, NULL, &t->err);

    if (res == NULL) {
        return;
    }

    if (PQntuples(res) != 1) {
        PQclear(res);
        ngx_http_darkroom_error_set(&t->err, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                    "internal_error",
                                    "The request could not be completed.");
        snprintf(t->err.detail, sizeof(t->err.detail),
                 "core_health() answered no row");
        return;
    }

    t->out = malloc(NGX_HTTP_DARKROOM_HEALTH_MAX);
    if (t->out == NULL) {
        PQclear(res);
        ngx_http_darkroom_error_set(&t->err, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                    "internal_error", "Out of memory.");
        return;
    }

    p = (u_char *) t->out;
    last = p + NGX_HTTP_DARKROOM_HEALTH_MAX;

    p = ngx_slprintf(p, last,
                     "{\"status\":\"ok\",\"db\":\"ok\",\"schema\":%s,"
                     "\"jobs\":{\"due\":%s,\"running\":%s,\"dead\":%s}",
                     ngx_http_darkroom_db_value(res, 0, "schema"),
                     ngx_http_darkroom_db_value(res, 0, "due"),
                     ngx_http_darkroom_db_value(res, 0, "running"),
                     ngx_http_darkroom_db_value(res, 0, "dead"));
    PQclear(res);

    hc = t->conf->health_checks.elts;

    for (i = 0; i < t->conf->health_checks.nelts; i++) {
        if (ngx_http_darkroom_health_check(t, &hc[i], p, last, &p)
            != NGX_OK)
        {
            return;
        }
    }

    p = ngx_slprintf(p, last,
                     ",\"version\":\"" NGX_HTTP_DARKROOM_VERSION "\"}");

    t->out_len = p - (u_char *) t->out;
    t->status = NGX_HTTP_OK;
}


static ngx_int_t
ngx_http_darkroom_health_done(ngx_http_request_t *r,
    ngx_http_darkroom_task_t *t)
{
    static u_char  fail[] =
        "{\"status\":\"fail\",\"db\":\"unavailable\","
        "\"version\":\"" NGX_HTTP_DARKROOM_VERSION "\","
        "\"error\":{\"code\":\"db_unavailable\","
        "\"message\":\"The database is unavailable.\"}}";

    r->headers_out.last_modified_time = -1;

    if (ngx_http_darkroom_header_out(r, "Cache-Control", (u_char *) "no-store",
                                     sizeof("no-store") - 1)
        == NULL)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (t->err.status) {
        if (t->err.status != NGX_HTTP_SERVICE_UNAVAILABLE) {
            return ngx_http_darkroom_send_task_error(r, &t->err);
        }

        if (ngx_http_darkroom_header_out(r, "Retry-After", (u_char *) "5", 1)
            == NULL)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_darkroom_send_json(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                           fail, sizeof(fail) - 1);
    }

    return ngx_http_darkroom_send_json(r, NGX_HTTP_OK, (u_char *) t->out,
                                       t->out_len);
}
