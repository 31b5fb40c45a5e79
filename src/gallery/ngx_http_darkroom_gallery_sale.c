
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


static ngx_int_t ngx_http_darkroom_gallery_cancel_url(ngx_http_request_t *r,
    ngx_http_darkroom_gallery_req_t *g, ngx_str_t *url);


/* on the event loop: the shop takes the request over */

ngx_int_t
ngx_http_darkroom_gallery_buy_done(ngx_http_request_t *r,
    ngx_http_darkroom_gallery_req_t *g)
{
    char       id[NGX_INT64_LEN + 1];
    ngx_str_t  cancel;

    ngx_snprintf((u_char *) id, sizeof(id), "%uL%Z", (uint64_t) g->id);

    if (ngx_http_darkroom_gallery_cancel_url(r, g, &cancel) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "darkroom gallery \"%s\": %s in %s", g->slug,
                   g->route == NGX_HTTP_DARKROOM_GALLERY_QUOTE
                   ? "quote" : "checkout",
                   g->currency[0] ? g->currency : "the shop's");

    return ngx_http_darkroom_gallery_sale(r, id,
               g->currency[0] ? g->currency : NULL,
               cancel.len ? &cancel : NULL,
               g->route == NGX_HTTP_DARKROOM_GALLERY_QUOTE);
}


/*
 * darkroom_gallery_cancel_url with {GALLERY} the gallery's slug (letters,
 * digits and dashes: nothing to escape); {ORDER_REF} and {ORDER_TOKEN} are
 * the shop's to fill.  Not set: an empty url, the shop's own.
 */

static ngx_int_t
ngx_http_darkroom_gallery_cancel_url(ngx_http_request_t *r,
    ngx_http_darkroom_gallery_req_t *g, ngx_str_t *url)
{
    u_char     *p, *s, *end;
    size_t      slug;
    ngx_str_t  *tpl;

    tpl = &g->conf->cancel_url;
    slug = ngx_strlen(g->slug);

    url->len = 0;

    if (tpl->len == 0) {
        return NGX_OK;
    }

    /* each "{GALLERY}" (9 bytes) becomes at most the slug's 64 */
    url->data = ngx_pnalloc(r->pool,
                            tpl->len / 9 * NGX_HTTP_DARKROOM_GALLERY_SLUG_MAX
                            + tpl->len);
    if (url->data == NULL) {
        return NGX_ERROR;
    }

    p = url->data;
    s = tpl->data;
    end = s + tpl->len;

    while (s < end) {
        if (end - s >= 9 && ngx_strncmp(s, "{GALLERY}", 9) == 0) {
            p = ngx_cpymem(p, g->slug, slug);
            s += 9;
            continue;
        }

        *p++ = *s++;
    }

    url->len = p - url->data;

    return NGX_OK;
}
