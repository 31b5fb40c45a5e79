
/*
 * darkroom: bookings (issue 16), the module and the public API.  Paths are
 * relative to the location of darkroom_bookings (/api/bookings/):
 *
 *   GET  types
 *   GET  slots?type=<id>&from=YYYY-MM-DD&to=YYYY-MM-DD&tz=<IANA>
 *   POST book {"type","start","name","email","time_zone","answers"}
 *   GET  <ref>?token=<manage token>
 *   POST <ref>/cancel, <ref>/reschedule, <ref>/pay (_bookings_changes.c)
 *
 * The rules are SQL (sql/functions/bookings.sql), called from the work in
 * ngx_http_darkroom_bookings.c.  POST book holds the slot and writes its
 * deposit order in one transaction; done() then hands the order to the
 * shop through the core hook ngx_http_darkroom_order_checkout, which asks
 * Stripe for the Checkout session and answers 201.
 */


#include "ngx_http_darkroom_bookings.h"


static char *ngx_http_darkroom_bookings(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static void *ngx_http_darkroom_bookings_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_darkroom_bookings_merge_loc_conf(ngx_conf_t *cf,
    void *parent, void *child);
static ngx_int_t ngx_http_darkroom_bookings_handler(ngx_http_request_t *r);
static ngx_http_darkroom_bookings_route_e ngx_http_darkroom_bookings_route(
    ngx_http_request_t *r, ngx_str_t *ref);
static ngx_int_t ngx_http_darkroom_bookings_prepare(ngx_http_request_t *r,
    ngx_http_darkroom_task_t *t);
static ngx_int_t ngx_http_darkroom_bookings_done(ngx_http_request_t *r,
    ngx_http_darkroom_task_t *t);

/* the private calendar feed: ngx_http_darkroom_bookings_feed.c */
char *ngx_http_darkroom_bookings_feed(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


static ngx_command_t  ngx_http_darkroom_bookings_commands[] = {

    { ngx_string("darkroom_bookings"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_darkroom_bookings,
      0,
      0,
      NULL },

    { ngx_string("darkroom_bookings_hold"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_darkroom_bookings_loc_conf_t, hold),
      NULL },

    { ngx_string("darkroom_bookings_admin"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_darkroom_bookings_admin,
      0,
      0,
      NULL },

    { ngx_string("darkroom_bookings_feed"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_darkroom_bookings_feed,
      0,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_darkroom_bookings_module_ctx = {
    NULL,                                  /* preconfiguration */
    NULL,                                  /* postconfiguration */
    NULL,                                  /* create main configuration */
    NULL,                                  /* init main configuration */
    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */
    ngx_http_darkroom_bookings_create_loc_conf, /* create location conf */
    ngx_http_darkroom_bookings_merge_loc_conf   /* merge location conf */
};


ngx_module_t  ngx_http_darkroom_bookings_module = {
    NGX_MODULE_V1,
    &ngx_http_darkroom_bookings_module_ctx, /* module context */
    ngx_http_darkroom_bookings_commands,   /* module directives */
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
ngx_http_darkroom_bookings(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    if (ngx_http_darkroom_use(cf, cmd, ngx_http_darkroom_bookings_handler,
                              NULL)
        == NULL
        || ngx_http_darkroom_public_source(cf,
                                           &ngx_http_darkroom_bookings_types)
           != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static void *
ngx_http_darkroom_bookings_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_darkroom_bookings_loc_conf_t  *blcf;

    blcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_darkroom_bookings_loc_conf_t));
    if (blcf == NULL) {
        return NULL;
    }

    blcf->hold = NGX_CONF_UNSET;

    return blcf;
}


static char *
ngx_http_darkroom_bookings_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child)
{
    ngx_http_darkroom_bookings_loc_conf_t  *prev = parent;
    ngx_http_darkroom_bookings_loc_conf_t  *conf = child;

    ngx_conf_merge_sec_value(conf->hold, prev->hold,
                             NGX_HTTP_DARKROOM_BOOKINGS_HOLD);

    if (conf->hold < 60 || conf->hold > 24 * 60 * 60) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"darkroom_bookings_hold\" takes a time between "
                           "1m and 24h");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_darkroom_bookings_handler(ngx_http_request_t *r)
{
    ngx_int_t                           rc;
    ngx_str_t                           ref, key;
    ngx_http_darkroom_bookings_route_e  route;

    route = ngx_http_darkroom_bookings_route(r, &ref);

    if (route == NGX_HTTP_DARKROOM_BOOKINGS_NONE) {
        (void) ngx_http_discard_request_body(r);
        return ngx_http_darkroom_send_error(r, NGX_HTTP_NOT_FOUND,
                   "not_found", "There is no such booking resource.");
    }

    /* the types from the public cache if it has them (no body to read) */

    if (route == NGX_HTTP_DARKROOM_BOOKINGS_TYPES
        && r->headers_in.content_length_n <= 0 && !r->headers_in.chunked)
    {
        ngx_str_set(&key, "booking_types");

        rc = ngx_http_darkroom_public_send(r, &key);

        if (rc != NGX_DECLINED) {
            return rc;
        }
    }

    return ngx_http_darkroom_task_start(r,
                                        sizeof(ngx_http_darkroom_bookings_t),
                                        ngx_http_darkroom_bookings_prepare,
                                        ngx_http_darkroom_bookings_work,
                                        ngx_http_darkroom_bookings_done);
}


static ngx_http_darkroom_bookings_route_e
ngx_http_darkroom_bookings_route(ngx_http_request_t *r, ngx_str_t *ref)
{
    ngx_int_t   n;
    ngx_str_t   seg[2];
    ngx_uint_t  get;

    n = ngx_http_darkroom_path_split(r, seg, 2);
    get = (r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD)) ? 1 : 0;

    if (n == 2 && r->method == NGX_HTTP_POST) {
        return ngx_http_darkroom_bookings_change_route(seg, ref);
    }

    if (n != 1) {
        return NGX_HTTP_DARKROOM_BOOKINGS_NONE;
    }

    if (r->method == NGX_HTTP_POST) {
        return ngx_http_darkroom_is(seg[0], "book")
               ? NGX_HTTP_DARKROOM_BOOKINGS_BOOK
               : NGX_HTTP_DARKROOM_BOOKINGS_NONE;
    }

    if (!get) {
        return NGX_HTTP_DARKROOM_BOOKINGS_NONE;
    }

    if (ngx_http_darkroom_is(seg[0], "types")) {
        return NGX_HTTP_DARKROOM_BOOKINGS_TYPES;
    }

    if (ngx_http_darkroom_is(seg[0], "slots")) {
        return NGX_HTTP_DARKROOM_BOOKINGS_SLOTS;
    }

    if (seg[0].len > 3 && seg[0].len <= 24
        && ngx_strncmp(seg[0].data, "BK-", 3) == 0)
    {
        *ref = seg[0];
        return NGX_HTTP_DARKROOM_BOOKINGS_SHOW;
    }

    return NGX_HTTP_DARKROOM_BOOKINGS_NONE;
}


static ngx_int_t
ngx_http_darkroom_bookings_prepare(ngx_http_request_t *r,
    ngx_http_darkroom_task_t *t)
{
    ngx_str_t                               ref;
    ngx_http_darkroom_bookings_t           *b = t->data;
    ngx_http_darkroom_bookings_loc_conf_t  *blcf;

    blcf = ngx_http_get_module_loc_conf(r, ngx_http_darkroom_bookings_module);

    b->route = ngx_http_darkroom_bookings_route(r, &ref);

    switch (b->route) {

    case NGX_HTTP_DARKROOM_BOOKINGS_SLOTS:
        b->arg[0] = ngx_http_darkroom_query_arg(r, "type");
        b->arg[1] = ngx_http_darkroom_query_arg(r, "from");
        b->arg[2] = ngx_http_darkroom_query_arg(r, "to");
        b->arg[3] = ngx_http_darkroom_query_arg(r, "tz");
        break;

    case NGX_HTTP_DARKROOM_BOOKINGS_SHOW:
        b->arg[0] = ngx_http_darkroom_cstr(r->pool, ref.data, ref.len);
        b->arg[1] = ngx_http_darkroom_query_arg(r, "token");
        if (b->arg[0] == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
        break;

    case NGX_HTTP_DARKROOM_BOOKINGS_CANCEL:
    case NGX_HTTP_DARKROOM_BOOKINGS_RESCHEDULE:
        b->arg[0] = ngx_http_darkroom_cstr(r->pool, ref.data, ref.len);
        b->body = ngx_http_darkroom_cstr(r->pool, t->body.data, t->body.len);
        if (b->arg[0] == NULL || b->body == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
        break;

    case NGX_HTTP_DARKROOM_BOOKINGS_PAY:
        b->arg[0] = ngx_http_darkroom_cstr(r->pool, ref.data, ref.len);
        b->body = ngx_http_darkroom_cstr(r->pool, t->body.data, t->body.len);
        if (b->arg[0] == NULL || b->body == NULL
            || ngx_http_darkroom_token((u_char *) b->otoken,
                                       (u_char *) b->ohash)
               != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
        break;

    case NGX_HTTP_DARKROOM_BOOKINGS_BOOK:
        b->body = ngx_http_darkroom_cstr(r->pool, t->body.data, t->body.len);
        if (b->body == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_sprintf((u_char *) b->hold, "%T%Z", blcf->hold);

        if (ngx_http_darkroom_token((u_char *) b->token, (u_char *) b->hash)
            != NGX_OK
            || ngx_http_darkroom_token((u_char *) b->otoken,
                                       (u_char *) b->ohash)
               != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
        break;

    default:
        break;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "darkroom bookings: route %d", (int) b->route);

    return NGX_OK;
}


static ngx_int_t
ngx_http_darkroom_bookings_done(ngx_http_request_t *r,
    ngx_http_darkroom_task_t *t)
{
    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "darkroom bookings: route %d: %ui %s",
                   (int) ((ngx_http_darkroom_bookings_t *) t->data)->route,
                   t->err.status ? t->err.status : t->status,
                   t->err.status ? t->err.code
                   : (t->status == NGX_HTTP_CREATED ? "held" : "ok"));

    if (t->err.status) {
        return ngx_http_darkroom_send_task_error(r, &t->err);
    }

    return ngx_http_darkroom_send_json(r, t->status ? t->status : NGX_HTTP_OK,
                                       (u_char *) t->out, t->out_len);
}
