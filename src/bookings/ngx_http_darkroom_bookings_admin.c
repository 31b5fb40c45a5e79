
/*
 * darkroom: bookings, the admin API (darkroom_bookings_admin), behind the
 * admin credentials (ngx_http_darkroom_admin_auth: a bearer token, an API
 * key, or a console session with its CSRF token; GET needs the scope
 * read, everything else write; each change is in the audit log).  Paths
 * are relative to the location, e.g. location /admin/api/bookings/:
 *
 *   GET    photographers
 *   POST   photographers/<id>       {"name", "email", "time_zone",
 *                                    "min_notice_hours", "horizon_days",
 *                                    "max_per_day"}: create or update
 *   GET    types
 *   POST   types/<id>               every member of a session type
 *   GET    hours?photographer=<id>
 *   PUT    hours/<photographer>     the whole week:
 *                                   [{"weekday", "starts", "ends"}]
 *   GET    exceptions?photographer=<id>
 *   POST   exceptions               {"photographer", "day", "kind",
 *                                    "starts", "ends", "note"}
 *   DELETE exceptions/<id>
 *   GET    bookings?from=YYYY-MM-DD&to=YYYY-MM-DD&state=
 *   GET    bookings/<ref>           with its events
 *   POST   bookings/<ref>/reschedule {"start", "reason", "notify",
 *                                    "force"}
 *   POST   bookings/<ref>/cancel    {"reason"}
 *   POST   bookings/<ref>/balance-link   the balance's link mailed now
 *
 * Every rule is in SQL (sql/functions/bookings_admin.sql): this file maps
 * a route to its function and passes the path's ids, the query's values
 * and the body as parameters.
 */


#include "ngx_http_darkroom_bookings.h"


#define NGX_HTTP_DARKROOM_BADMIN_PARAMS  3


/*
 * A route: the method, the number of path segments, the first segment
 * and the third (or NULL), the statement, and its parameters, one letter
 * each: i the second segment, b the body, p f t s the query's
 * photographer, from, to and state, a the admin (set in the thread).
 */

typedef struct {
    ngx_uint_t                  method;
    ngx_uint_t                  n;
    const char                 *first;
    const char                 *third;
    const char                 *sql;
    const char                 *params;
    const char                 *missing;
} ngx_http_darkroom_badmin_route_t;


typedef struct {
    ngx_http_darkroom_badmin_route_t  *route;
    const char                        *values[NGX_HTTP_DARKROOM_BADMIN_PARAMS];
} ngx_http_darkroom_badmin_t;


static ngx_int_t ngx_http_darkroom_bookings_admin_handler(
    ngx_http_request_t *r);
static ngx_int_t ngx_http_darkroom_badmin_prepare(ngx_http_request_t *r,
    ngx_http_darkroom_task_t *t);
static ngx_int_t ngx_http_darkroom_badmin_value(ngx_http_request_t *r,
    ngx_http_darkroom_task_t *t, u_char c, ngx_str_t *seg,
    const char **value);
static void ngx_http_darkroom_badmin_work(ngx_http_darkroom_task_t *t);
static ngx_int_t ngx_http_darkroom_badmin_done(ngx_http_request_t *r,
    ngx_http_darkroom_task_t *t);


#define NGX_HTTP_DARKROOM_BADMIN_GET  (NGX_HTTP_GET|NGX_HTTP_HEAD)

static ngx_http_darkroom_badmin_route_t  ngx_http_darkroom_badmin_routes[] = {

    { NGX_HTTP_DARKROOM_BADMIN_GET, 1, "photographers", NULL,
      "SELECT bookings_admin_photographers()", "", "" },

    { NGX_HTTP_POST, 2, "photographers", NULL,
      "SELECT bookings_admin_photographer_upsert($1, $2)", "ib", "" },

    { NGX_HTTP_DARKROOM_BADMIN_GET, 1, "types", NULL,
      "SELECT bookings_admin_types()", "", "" },

    { NGX_HTTP_POST, 2, "types", NULL,
      "SELECT bookings_admin_type_upsert($1, $2)", "ib", "" },

    { NGX_HTTP_DARKROOM_BADMIN_GET, 1, "hours", NULL,
      "SELECT bookings_admin_hours($1)", "p",
      "There is no such photographer." },

    { NGX_HTTP_PUT, 2, "hours", NULL,
      "SELECT bookings_admin_hours_set($1, $2)", "ib",
      "There is no such photographer." },

    { NGX_HTTP_DARKROOM_BADMIN_GET, 1, "exceptions", NULL,
      "SELECT bookings_admin_exceptions($1)", "p",
      "There is no such photographer." },

    { NGX_HTTP_POST, 1, "exceptions", NULL,
      "SELECT bookings_admin_exception_add($1)", "b", "" },

    { NGX_HTTP_DELETE, 2, "exceptions", NULL,
      "SELECT bookings_admin_exception_delete($1)", "i",
      "There is no such exception." },

    { NGX_HTTP_DARKROOM_BADMIN_GET, 1, "bookings", NULL,
      "SELECT bookings_admin_list($1, $2, $3)", "fts", "" },

    { NGX_HTTP_DARKROOM_BADMIN_GET, 2, "bookings", NULL,
      "SELECT bookings_admin_get($1)", "i", "There is no such booking." },

    { NGX_HTTP_POST, 3, "bookings", "reschedule",
      "SELECT bookings_admin_reschedule($1, $2, $3)", "iba",
      "There is no such booking." },

    { NGX_HTTP_POST, 3, "bookings", "cancel",
      "SELECT bookings_admin_cancel($1, $2, $3)", "iba",
      "There is no such booking." },

    { NGX_HTTP_POST, 3, "bookings", "balance-link",
      "SELECT bookings_admin_balance_link($1, $2)", "ia",
      "There is no such booking." },

    { 0, 0, NULL, NULL, NULL, NULL, NULL }
};


static ngx_int_t
ngx_http_darkroom_bookings_admin_handler(ngx_http_request_t *r)
{
    if (ngx_http_darkroom_admin_auth(r) != NGX_OK) {
        return ngx_http_darkroom_admin_refuse(r);
    }

    return ngx_http_darkroom_task_start(r, sizeof(ngx_http_darkroom_badmin_t),
                                        ngx_http_darkroom_badmin_prepare,
                                        ngx_http_darkroom_badmin_work,
                                        ngx_http_darkroom_badmin_done);
}


/* "darkroom_bookings_admin" in a location */

char *
ngx_http_darkroom_bookings_admin(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    if (ngx_http_darkroom_use(cf, cmd, ngx_http_darkroom_bookings_admin_handler,
                              NULL)
        == NULL)
    {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* on the event loop: the route and its parameters */

static ngx_int_t
ngx_http_darkroom_badmin_prepare(ngx_http_request_t *r,
    ngx_http_darkroom_task_t *t)
{
    ngx_int_t                          n;
    ngx_str_t                          seg[3];
    ngx_uint_t                         i, path;
    ngx_http_darkroom_badmin_t        *a = t->data;
    ngx_http_darkroom_badmin_route_t  *rt;

    n = ngx_http_darkroom_path_split(r, seg, 3);
    path = 0;

    for (rt = ngx_http_darkroom_badmin_routes; n > 0 && rt->sql; rt++) {

        if ((ngx_uint_t) n != rt->n
            || seg[0].len != ngx_strlen(rt->first)
            || ngx_strncmp(seg[0].data, rt->first, seg[0].len) != 0
            || (rt->third
                && (seg[2].len != ngx_strlen(rt->third)
                    || ngx_strncmp(seg[2].data, rt->third, seg[2].len) != 0))
            || (n >= 2 && seg[1].len == 0))
        {
            continue;
        }

        path = 1;

        if (r->method & rt->method) {
            break;
        }
    }

    if (n <= 0 || rt->sql == NULL) {
        return ngx_http_darkroom_send_error(r,
                   path ? NGX_HTTP_NOT_ALLOWED : NGX_HTTP_NOT_FOUND,
                   path ? "method_not_allowed" : "not_found",
                   path ? "This method is not allowed here."
                        : "There is no such admin resource.");
    }

    a->route = rt;

    for (i = 0; rt->params[i]; i++) {
        if (ngx_http_darkroom_badmin_value(r, t, rt->params[i], &seg[1],
                                           &a->values[i])
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "darkroom bookings admin: \"%s\" %ui params",
                   rt->sql, i);

    return NGX_OK;
}


static ngx_int_t
ngx_http_darkroom_badmin_value(ngx_http_request_t *r,
    ngx_http_darkroom_task_t *t, u_char c, ngx_str_t *seg,
    const char **value)
{
    switch (c) {

    case 'i':
        *value = ngx_http_darkroom_cstr(r->pool, seg->data, seg->len);
        break;

    case 'b':
        *value = ngx_http_darkroom_cstr(r->pool, t->body.data, t->body.len);
        break;

    case 'p':
        *value = ngx_http_darkroom_query_arg(r, "photographer");
        return NGX_OK;

    case 'f':
        *value = ngx_http_darkroom_query_arg(r, "from");
        return NGX_OK;

    case 't':
        *value = ngx_http_darkroom_query_arg(r, "to");
        return NGX_OK;

    case 's':
        *value = ngx_http_darkroom_query_arg(r, "state");
        return NGX_OK;

    default: /* 'a': in the thread, once the credential is checked */
        *value = "";
        return NGX_OK;
    }

    return (*value == NULL) ? NGX_ERROR : NGX_OK;
}


/* in a thread */

static void
ngx_http_darkroom_badmin_work(ngx_http_darkroom_task_t *t)
{
    int                                n;
    PGresult                          *res;
    ngx_http_darkroom_badmin_t        *a = t->data;
    ngx_http_darkroom_badmin_route_t  *rt = a->route;

    for (n = 0; rt->params[n]; n++) {
        if (rt->params[n] == 'a') {
            a->values[n] = t->auth ? t->auth->actor : "";
        }
    }

    res = ngx_http_darkroom_db_exec(&t->db, rt->sql, n, a->values, &t->err);

    if (res == NULL) {
        return;
    }

    ngx_http_darkroom_task_answer(t, res, rt->missing[0]
                                          ? rt->missing
                                          : "There is no such resource.");
}


static ngx_int_t
ngx_http_darkroom_badmin_done(ngx_http_request_t *r,
    ngx_http_darkroom_task_t *t)
{
    if (t->err.status) {
        return ngx_http_darkroom_send_task_error(r, &t->err);
    }

    if (t->out == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "darkroom bookings admin: done, %uz bytes", t->out_len);

    return ngx_http_darkroom_send_json(r, t->status ? t->status
                                                    : NGX_HTTP_OK,
                                       (u_char *) t->out, t->out_len);
}
