
/*
 * darkroom: bookings (issue 16), the public API's work (in pool threads:
 * no pools, no logging).  Each route is one SQL function of
 * sql/functions/bookings.sql, whose refusals come back as the error.
 */


#include "ngx_http_darkroom_bookings.h"


static void ngx_http_darkroom_bookings_call(ngx_http_darkroom_task_t *t,
    const char *sql, int n, const char *const *params, const char *missing);


void
ngx_http_darkroom_bookings_work(ngx_http_darkroom_task_t *t)
{
    ngx_http_darkroom_bookings_t  *b = t->data;

    switch (b->route) {

    case NGX_HTTP_DARKROOM_BOOKINGS_TYPES:
        ngx_http_darkroom_bookings_call(t, "SELECT bookings_types_json()", 0,
                                        NULL, "No session types.");
        return;

    case NGX_HTTP_DARKROOM_BOOKINGS_SLOTS:
        ngx_http_darkroom_bookings_call(t,
            "SELECT bookings_slots_json($1, $2, $3, $4)", 4,
            (const char **) b->arg, "No slots.");
        return;

    case NGX_HTTP_DARKROOM_BOOKINGS_SHOW:
        ngx_http_darkroom_bookings_call(t,
            "SELECT bookings_show_json($1, $2)", 2,
            (const char **) b->arg, "There is no such booking.");
        return;

    default:
        ngx_http_darkroom_error_set(&t->err, NGX_HTTP_NOT_FOUND,
                                    "not_found", "There is no such route.");
        return;
    }
}


static void
ngx_http_darkroom_bookings_call(ngx_http_darkroom_task_t *t, const char *sql,
    int n, const char *const *params, const char *missing)
{
    PGresult  *res;

    res = ngx_http_darkroom_db_exec(&t->db, sql, n, params, &t->err);
    if (res == NULL) {
        return;
    }

    ngx_http_darkroom_task_answer(t, res, missing);
}
