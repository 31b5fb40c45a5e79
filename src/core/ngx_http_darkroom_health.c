
/*
 * darkroom: the health endpoint.
 *
 * One query in a pool thread: the schema version and the job backlog.
 * 200 when Postgres answers, 503 naming the failing part when it does not;
 * nothing is cached, so it recovers as soon as Postgres does.
 */


#include "ngx_http_darkroom.h"


static ngx_int_t ngx_http_darkroom_health_handler(ngx_http_request_t *r);
static void ngx_http_darkroom_health_work(ngx_http_darkroom_task_t *t);
static ngx_int_t ngx_http_darkroom_health_done(ngx_http_request_t *r,
    ngx_http_darkroom_task_t *t);


typedef struct {
    char     schema[NGX_INT64_LEN + 1];
    char     due[NGX_INT64_LEN + 1];
    char     dead[NGX_INT64_LEN + 1];
    char     running[NGX_INT64_LEN + 1];
    char     labs_stuck[NGX_INT64_LEN + 1];
    char     labs_failed[NGX_INT64_LEN + 1];
} ngx_http_darkroom_health_t;


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


static ngx_int_t
ngx_http_darkroom_health_handler(ngx_http_request_t *r)
{
    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    return ngx_http_darkroom_task_start(r, sizeof(ngx_http_darkroom_health_t),
                                        NULL, ngx_http_darkroom_health_work,
                                        ngx_http_darkroom_health_done);
}


static void
ngx_http_darkroom_health_work(ngx_http_darkroom_task_t *t)
{
    PGresult                    *res;
    ngx_http_darkroom_health_t  *h = t->data;

    res = ngx_http_darkroom_db_exec(&t->db,
        "SELECT (SELECT coalesce(max(version), 0) FROM schema_migrations),"
        " j.due, j.running, (SELECT count(*) FROM jobs WHERE dead),"
        " l.stuck, l.failed"
        " FROM (SELECT count(*) FILTER (WHERE run_at <= now()"
                                  " AND (locked_until IS NULL"
                                       " OR locked_until < now())) AS due,"
                     " count(*) FILTER (WHERE locked_until >= now())"
                     " AS running"
                " FROM jobs WHERE NOT dead AND done_at IS NULL) j,"
        " lab_health() l",
        0, NULL, &t->err);

    if (res == NULL) {
        return;
    }

    ngx_cpystrn((u_char *) h->schema, (u_char *) PQgetvalue(res, 0, 0),
                sizeof(h->schema));
    ngx_cpystrn((u_char *) h->due, (u_char *) PQgetvalue(res, 0, 1),
                sizeof(h->due));
    ngx_cpystrn((u_char *) h->running, (u_char *) PQgetvalue(res, 0, 2),
                sizeof(h->running));
    ngx_cpystrn((u_char *) h->dead, (u_char *) PQgetvalue(res, 0, 3),
                sizeof(h->dead));
    ngx_cpystrn((u_char *) h->labs_stuck, (u_char *) PQgetvalue(res, 0, 4),
                sizeof(h->labs_stuck));
    ngx_cpystrn((u_char *) h->labs_failed, (u_char *) PQgetvalue(res, 0, 5),
                sizeof(h->labs_failed));

    PQclear(res);
}


static ngx_int_t
ngx_http_darkroom_health_done(ngx_http_request_t *r,
    ngx_http_darkroom_task_t *t)
{
    u_char                      *p, *last;
    ngx_http_darkroom_health_t  *hc = t->data;

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

    p = ngx_pnalloc(r->pool, 256);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    last = ngx_snprintf(p, 256,
                        "{\"status\":\"ok\",\"db\":\"ok\",\"schema\":%s,"
                        "\"jobs\":{\"due\":%s,\"running\":%s,\"dead\":%s},"
                        "\"labs\":{\"stuck\":%s,\"failed\":%s},"
                        "\"version\":\"" NGX_HTTP_DARKROOM_VERSION "\"}",
                        hc->schema, hc->due, hc->running, hc->dead,
                        hc->labs_stuck, hc->labs_failed);

    return ngx_http_darkroom_send_json(r, NGX_HTTP_OK, p, last - p);
}
