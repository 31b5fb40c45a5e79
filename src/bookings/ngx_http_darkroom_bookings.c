
/*
 * darkroom: bookings (issue 16), the public API's work (in pool threads:
 * no pools, no logging).  Each route is one SQL function of
 * sql/functions/bookings.sql, whose refusals come back as the error.
 */


#include "ngx_http_darkroom_bookings.h"


static void ngx_http_darkroom_bookings_call(ngx_http_darkroom_task_t *t,
    const char *sql, int n, const char *const *params, const char *missing);
static void ngx_http_darkroom_bookings_book(ngx_http_darkroom_task_t *t,
    ngx_http_darkroom_bookings_t *b);
static void ngx_http_darkroom_bookings_booked(ngx_http_darkroom_task_t *t,
    cJSON *j, const char *url);
static ngx_int_t ngx_http_darkroom_bookings_types_build(
    ngx_http_darkroom_public_build_t *b);


/* the session types are the same for every visitor: the public cache's */

ngx_http_darkroom_public_source_t  ngx_http_darkroom_bookings_types = {
    "booking_types", ngx_http_darkroom_bookings_types_build
};


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

    case NGX_HTTP_DARKROOM_BOOKINGS_BOOK:
        ngx_http_darkroom_bookings_book(t, b);
        return;

    case NGX_HTTP_DARKROOM_BOOKINGS_SHOW:
        ngx_http_darkroom_bookings_call(t,
            "SELECT bookings_show_json($1, $2)", 2,
            (const char **) b->arg, "There is no such booking.");
        return;

    case NGX_HTTP_DARKROOM_BOOKINGS_CANCEL:
    case NGX_HTTP_DARKROOM_BOOKINGS_RESCHEDULE:
    case NGX_HTTP_DARKROOM_BOOKINGS_PAY:
        ngx_http_darkroom_bookings_change_work(t, b);
        return;

    default:
        ngx_http_darkroom_error_set(&t->err, NGX_HTTP_NOT_FOUND,
                                    "not_found", "There is no such route.");
        return;
    }
}


/* in the zone's builder thread: GET types, kept as "booking_types" */

static ngx_int_t
ngx_http_darkroom_bookings_types_build(ngx_http_darkroom_public_build_t *b)
{
    PGresult    *res;
    ngx_int_t    rc;
    const char  *v;

    res = ngx_http_darkroom_db_exec(b->db, "SELECT bookings_types_json()", 0,
                                    NULL, b->err);
    if (res == NULL) {
        return NGX_ERROR;
    }

    v = ngx_http_darkroom_db_only(res);
    rc = v ? ngx_http_darkroom_public_put(b, "booking_types",
                                          "application/json", v,
                                          ngx_strlen(v))
           : NGX_OK;

    PQclear(res);

    return rc;
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


/*
 * POST book: the hold and its deposit order (bookings_book(), one
 * transaction), then the order's Checkout Session through the shop (the
 * core hook ngx_http_darkroom_order_checkout).  When Stripe gives no page
 * the hold stays until its time is up (or the shop cancels the order).
 */

static void
ngx_http_darkroom_bookings_book(ngx_http_darkroom_task_t *t,
    ngx_http_darkroom_bookings_t *b)
{
    char        *url, order[NGX_INT64_LEN + 1];
    cJSON       *j;
    const char  *params[4];

    params[0] = b->body;
    params[1] = b->token;
    params[2] = b->ohash;
    params[3] = b->hold;

    j = ngx_http_darkroom_bookings_order(t,
            "SELECT bookings_book($1, $2, $3, $4::int)", 4, params, order);
    if (j == NULL) {
        return;
    }

    ngx_http_darkroom_trace("booking: deposit order %s", order);

    url = NULL;

    if (ngx_http_darkroom_order_checkout(t, order, b->otoken, &url)
        == NGX_OK)
    {
        ngx_http_darkroom_bookings_booked(t, j, url);
    }

    free(url);
    cJSON_Delete(j);
}


/*
 * The SQL function of a route that writes an order of a booking (POST
 * book: the deposit's, POST <ref>/pay: the balance's) and answers
 * {"order_id", ...}: that answer, order_id taken out of it into order
 * (NGX_INT64_LEN + 1 bytes).  NULL, t->err set, when refused.
 */

cJSON *
ngx_http_darkroom_bookings_order(ngx_http_darkroom_task_t *t,
    const char *sql, int n, const char *const *params, char *order)
{
    cJSON       *j, *id;
    PGresult    *res;
    const char  *v;

    res = ngx_http_darkroom_db_exec(&t->db, sql, n, params, &t->err);
    if (res == NULL) {
        return NULL;
    }

    v = ngx_http_darkroom_db_only(res);
    j = v ? cJSON_Parse(v) : NULL;
    PQclear(res);

    id = cJSON_GetObjectItemCaseSensitive(j, "order_id");

    if (!cJSON_IsNumber(id)) {
        cJSON_Delete(j);
        ngx_http_darkroom_error_set(&t->err, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                    "internal_error", "No order written.");
        return NULL;
    }

    snprintf(order, NGX_INT64_LEN + 1, "%.0f", id->valuedouble);
    cJSON_DeleteItemFromObjectCaseSensitive(j, "order_id");

    return j;
}


/* 201 {"booking" (with its "manage_token"), "checkout_url"} */

static void
ngx_http_darkroom_bookings_booked(ngx_http_darkroom_task_t *t, cJSON *j,
    const char *url)
{
    cJSON                         *bk;
    ngx_http_darkroom_bookings_t  *b = t->data;

    bk = cJSON_GetObjectItemCaseSensitive(j, "booking");

    if (!cJSON_IsObject(bk)
        || !cJSON_AddStringToObject(bk, "manage_token", b->token))
    {
        ngx_http_darkroom_error_set(&t->err, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                    "internal_error", "Out of memory.");
        return;
    }

    ngx_http_darkroom_bookings_checkout_answer(t, j, url, NGX_HTTP_CREATED);
}


/* the answer j of a route that wrote an order, with its checkout_url */

void
ngx_http_darkroom_bookings_checkout_answer(ngx_http_darkroom_task_t *t,
    cJSON *j, const char *url, ngx_uint_t status)
{
    cJSON_DeleteItemFromObjectCaseSensitive(j, "checkout_url");

    if (cJSON_AddStringToObject(j, "checkout_url", url)) {
        t->out = cJSON_PrintUnformatted(j);
    }

    if (t->out == NULL) {
        ngx_http_darkroom_error_set(&t->err, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                    "internal_error", "Out of memory.");
        return;
    }

    t->out_len = ngx_strlen(t->out);
    t->status = status;
}
