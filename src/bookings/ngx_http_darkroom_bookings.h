
/*
 * darkroom: bookings (issue 16), what the files of src/bookings/ share.
 * One nginx module, ngx_http_darkroom_bookings_module
 * (ngx_http_darkroom_bookings_module.c); the public API's work is in
 * ngx_http_darkroom_bookings.c, the admin API (darkroom_bookings_admin) in
 * ngx_http_darkroom_bookings_admin.c.
 */


#ifndef _NGX_HTTP_DARKROOM_BOOKINGS_H_INCLUDED_
#define _NGX_HTTP_DARKROOM_BOOKINGS_H_INCLUDED_


#include "ngx_http_darkroom.h"


/* darkroom_bookings_hold: how long a hold waits for its deposit */
#define NGX_HTTP_DARKROOM_BOOKINGS_HOLD  (30 * 60)


typedef struct {
    time_t                               hold;    /* seconds */
} ngx_http_darkroom_bookings_loc_conf_t;


typedef enum {
    NGX_HTTP_DARKROOM_BOOKINGS_NONE = 0,
    NGX_HTTP_DARKROOM_BOOKINGS_TYPES,
    NGX_HTTP_DARKROOM_BOOKINGS_SLOTS,
    NGX_HTTP_DARKROOM_BOOKINGS_BOOK,
    NGX_HTTP_DARKROOM_BOOKINGS_SHOW,
    NGX_HTTP_DARKROOM_BOOKINGS_CANCEL,            /* _bookings_changes.c */
    NGX_HTTP_DARKROOM_BOOKINGS_RESCHEDULE,
    NGX_HTTP_DARKROOM_BOOKINGS_PAY                /* the balance */
} ngx_http_darkroom_bookings_route_e;


/* a request of the public API, the task's data */

typedef struct {
    ngx_http_darkroom_bookings_route_e   route;
    char                                *arg[4];
    char                                *body;    /* POST book: JSON */
    char                                 hold[NGX_INT64_LEN + 1];

    /* POST book: the manage token; the deposit order's (POST <ref>/pay:
     * the balance order's) status token and its hash (what the order
     * keeps) */
    char                                 token[NGX_HTTP_DARKROOM_TOKEN_SIZE];
    char                                 hash[NGX_HTTP_DARKROOM_HASH_SIZE];
    char                                 otoken[NGX_HTTP_DARKROOM_TOKEN_SIZE];
    char                                 ohash[NGX_HTTP_DARKROOM_HASH_SIZE];
} ngx_http_darkroom_bookings_t;


extern ngx_module_t  ngx_http_darkroom_bookings_module;


void ngx_http_darkroom_bookings_work(ngx_http_darkroom_task_t *t);
cJSON *ngx_http_darkroom_bookings_order(ngx_http_darkroom_task_t *t,
    const char *sql, int n, const char *const *params, char *order);
void ngx_http_darkroom_bookings_checkout_answer(ngx_http_darkroom_task_t *t,
    cJSON *j, const char *url, ngx_uint_t status);
/* GET types in the public cache (darkroom_public_cache) */
extern ngx_http_darkroom_public_source_t  ngx_http_darkroom_bookings_types;

/* ngx_http_darkroom_bookings_admin.c: darkroom_bookings_admin */
char *ngx_http_darkroom_bookings_admin(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* POST <ref>/cancel, <ref>/reschedule and <ref>/pay:
 * _bookings_changes.c */
ngx_http_darkroom_bookings_route_e ngx_http_darkroom_bookings_change_route(
    ngx_str_t *seg, ngx_str_t *ref);
void ngx_http_darkroom_bookings_change_work(ngx_http_darkroom_task_t *t,
    ngx_http_darkroom_bookings_t *b);


#endif /* _NGX_HTTP_DARKROOM_BOOKINGS_H_INCLUDED_ */
