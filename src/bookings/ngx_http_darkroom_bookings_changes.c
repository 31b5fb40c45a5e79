
/*
 * darkroom: bookings (issue 16), the client's changes, paths relative to
 * the location of darkroom_bookings:
 *
 *   POST <ref>/cancel      {"token", "reason"}
 *   POST <ref>/reschedule  {"token", "start"}
 *   POST <ref>/pay         {"token"}: the balance's payment page
 *
 * The rules (the manage token, the type's refund and reschedule hours,
 * the slot, the refund job, the email with its invite) are SQL:
 * booking_cancel() and booking_reschedule() in
 * sql/functions/bookings_mail.sql, one transaction each.  The balance
 * order is bookings_balance_pay()'s (sql/functions/bookings_balance.sql:
 * made, or reused while it waits for payment), its Checkout Session the
 * shop's (the core hook ngx_http_darkroom_order_checkout), as for the
 * deposit.
 */


#include "ngx_http_darkroom_bookings.h"


static void ngx_http_darkroom_bookings_pay(ngx_http_darkroom_task_t *t,
    ngx_http_darkroom_bookings_t *b);


/* seg: the path's two segments, <ref> and the change */

ngx_http_darkroom_bookings_route_e
ngx_http_darkroom_bookings_change_route(ngx_str_t *seg, ngx_str_t *ref)
{
    if (seg[0].len <= 3 || seg[0].len > 24
        || ngx_strncmp(seg[0].data, "BK-", 3) != 0)
    {
        return NGX_HTTP_DARKROOM_BOOKINGS_NONE;
    }

    *ref = seg[0];

    if (ngx_http_darkroom_is(seg[1], "cancel")) {
        return NGX_HTTP_DARKROOM_BOOKINGS_CANCEL;
    }

    if (ngx_http_darkroom_is(seg[1], "reschedule")) {
        return NGX_HTTP_DARKROOM_BOOKINGS_RESCHEDULE;
    }

    if (ngx_http_darkroom_is(seg[1], "pay")) {
        return NGX_HTTP_DARKROOM_BOOKINGS_PAY;
    }

    return NGX_HTTP_DARKROOM_BOOKINGS_NONE;
}


/* in a pool thread: b->arg[0] the ref, b->body the JSON body */

void
ngx_http_darkroom_bookings_change_work(ngx_http_darkroom_task_t *t,
    ngx_http_darkroom_bookings_t *b)
{
    PGresult    *res;
    const char  *params[3], *sql;

    if (b->route == NGX_HTTP_DARKROOM_BOOKINGS_PAY) {
        ngx_http_darkroom_bookings_pay(t, b);
        return;
    }

    sql = (b->route == NGX_HTTP_DARKROOM_BOOKINGS_CANCEL)
          ? "SELECT booking_cancel($1, $2, $3)"
          : "SELECT booking_reschedule($1, $2, $3)";

    params[0] = b->arg[0];
    params[1] = b->body;
    params[2] = "client";

    res = ngx_http_darkroom_db_exec(&t->db, sql, 3, params, &t->err);
    if (res == NULL) {
        return;
    }

    ngx_http_darkroom_task_answer(t, res, "There is no such booking.");
}


/*
 * POST <ref>/pay: the balance order (bookings_balance_pay(), one
 * transaction), then its Checkout Session through the shop, unless the
 * order reused has one already.  200 {"checkout_url", "amount",
 * "currency"}.
 */

static void
ngx_http_darkroom_bookings_pay(ngx_http_darkroom_task_t *t,
    ngx_http_darkroom_bookings_t *b)
{
    char        *url, order[NGX_INT64_LEN + 1];
    cJSON       *j, *saved;
    const char  *params[3];

    params[0] = b->arg[0];
    params[1] = b->body;
    params[2] = b->ohash;

    j = ngx_http_darkroom_bookings_order(t,
            "SELECT bookings_balance_pay($1, $2, $3)", 3, params, order);
    if (j == NULL) {
        return;
    }

    saved = cJSON_GetObjectItemCaseSensitive(j, "checkout_url");

    ngx_http_darkroom_trace("booking: balance order %s", order);

    url = cJSON_IsString(saved) ? strdup(saved->valuestring) : NULL;

    if (url != NULL
        || ngx_http_darkroom_order_checkout(t, order, b->otoken, &url)
           == NGX_OK)
    {
        ngx_http_darkroom_bookings_checkout_answer(t, j, url, NGX_HTTP_OK);
    }

    free(url);
    cJSON_Delete(j);
}
