
/*
 * darkroom: buying from a gallery (issue 14), POST <slug>/quote and
 * POST <slug>/checkout of the client API.
 *
 * The gallery's thread lets the visitor in as for every route (the
 * gallery exists, is neither revoked nor expired, and a password-protected
 * gallery has its cookie), reading the gallery's currency with its state;
 * then, on the event loop, the gallery's done() hands the request to the
 * shop through the core hook ngx_http_darkroom_gallery_sale, which starts
 * the shop's quote or checkout task on the same request with the gallery's
 * id.  The shop answers as /api/cart/quote and /api/checkout answer; the
 * lines are priced by gallery_cart_lines() (sql/functions/gallery_shop.sql).
 */


#include "ngx_http_darkroom_gallery_req.h"


/* on the event loop: the shop takes the request over */

ngx_int_t
ngx_http_darkroom_gallery_buy_done(ngx_http_request_t *r,
    ngx_http_darkroom_gallery_req_t *g)
{
    char  id[NGX_INT64_LEN + 1];

    ngx_snprintf((u_char *) id, sizeof(id), "%uL%Z", (uint64_t) g->id);

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "darkroom gallery \"%s\": %s in %s", g->slug,
                   g->route == NGX_HTTP_DARKROOM_GALLERY_QUOTE
                   ? "quote" : "checkout",
                   g->currency[0] ? g->currency : "the shop's");

    return ngx_http_darkroom_gallery_sale(r, id,
               g->currency[0] ? g->currency : NULL,
               g->route == NGX_HTTP_DARKROOM_GALLERY_QUOTE);
}
